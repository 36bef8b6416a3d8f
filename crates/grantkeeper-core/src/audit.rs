//! The usage history: an append-only event log that whoever can write the database cannot
//! rewrite unnoticed.
//!
//! - **Keyed chain.** Each event stores `digest`, SHA-256 over its erasable part (connection,
//!   actor, hint, caller, detail, fingerprint and a random salt), and `mac`, HMAC-SHA-256 under
//!   the history key ([`crate::crypto::MasterKey::history_key`], derived from the master key in
//!   the keychain) over the previous event's MAC, its sequence number, time, kind, tenant and
//!   digest. The chain starts from a MAC over the record of when the history was keyed. Without
//!   the keychain nobody can write, re-number or re-chain an event that verifies.
//! - **Anchor.** A checkpoint (a sequence number and that event's MAC, itself MACed) lives in the
//!   keychain ([`anchor`]): events at or before it cannot be removed unnoticed, the newest ones
//!   and all of them included. It is written [`ANCHOR_INTERVAL`] after a running agent or app
//!   writes events, when a command that wrote events ends (unless the last checkpoint is younger
//!   than that interval), at agent lock and stop, and when the app quits; never on the hand-out
//!   path. Events after it verify but could be removed unnoticed: [`verify`] counts them.
//! - **Erasure.** Deleting a tenant erases its events' erasable part; their digest stays, so
//!   their number, time, kind and tenant still verify. An erased event is accepted only when a
//!   later `tenant_deleted` event names its tenant.
//!
//! [`verify`] names each problem: what is missing (a range), edited, inserted, reordered, forged
//! without the key, wrongly erased, or not what the checkpoint anchored.
//!
//! Tokens never enter an event; a keyed fingerprint does (see [`crate::crypto::FingerprintKey`]).

mod anchorer;
mod chain;
mod checkpoint;
mod event;
mod migrate;
mod query;
pub mod rollup;
mod verify;

use std::time::Duration;

pub(crate) use anchorer::Anchorer;
pub use chain::{append, append_batch, redact_tenant, HistoryKey, HistoryTx};
use chain::{
    genesis, hex, link, put, record, rows_between, same, tail, unhex, Erasable, HmacSha256,
    KeyedRecord, OldBreak, Row, ROW_COLUMNS,
};
use checkpoint::write_anchor;
pub use checkpoint::{anchor, anchor_due, read_anchor, Anchor, AnchorOutcome, Checkpoint};
pub use event::{
    Actor, ActorKind, AnchorInfo, BadEvent, DailyCount, EventKind, NewEvent, Problem, UsageEvent,
    VerifyReport,
};
pub use migrate::{ensure_keyed, Keyed};
pub use query::{
    connection_history, daily_counts, events, newest_seq, recent, tenant_events_after,
    HistoryFilter,
};
pub use verify::verify;

/// How long events written by a running agent or app wait at most for a checkpoint; a command
/// that recorded events writes one when it ends unless the last one is younger than this.
pub const ANCHOR_INTERVAL: Duration = Duration::from_secs(30);

/// A verification stops after this many problems.
pub const MAX_PROBLEMS: usize = 20;

/// How far (in sequence numbers) a moved event is looked for.
const SEARCH: i64 = 8;

/// `meta` keys: the record of when the history was keyed, and the last checkpoint's time.
const META_RECORD: &str = "history";
const META_HINT: &str = "history_anchor";
/// The record's value until the history is keyed (set by the schema migration).
const UNKEYED: &str = "unkeyed";

#[cfg(test)]
mod tests;
