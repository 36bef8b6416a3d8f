//! Keeping grants alive: handing out access tokens, refreshing them once per grant across
//! threads and processes, rotation- and crash-safe; revocation and introspection.
//!
//! # One refresh per grant
//! Threads of one process first queue on an in-process gate per connection; the first one takes
//! an exclusive `flock` on `<vault>/locks/<connection>.lock`, which conflicts across processes
//! (and across threads, each of which opens the file itself). After taking it, the
//! connection is read again: if another caller refreshed meanwhile, its token is handed out and
//! no request is sent. So N callers of an expiring token cause one refresh request.
//!
//! # Crash safety, step by step
//! The grant logic here drives the order; the store keeps each step (the local store's steps are
//! in `vault/grant_tokens.rs`, and [`crate::store`] states what any store must promise).
//! 1. *Lock taken, nothing sent.* A kill releases the lock (the kernel drops it); nothing changed.
//! 2. *Request sent, no answer read.* The provider may have rotated the refresh token, and the
//!    new one is lost with the process. The keychain still holds the old one: providers with a
//!    reuse grace period (Xero: 30 min) accept it again, and the next refresh recovers. A
//!    provider with strict single use cannot be made safe here by any client.
//! 3. *Answer read.* A rotated refresh token is first written, encrypted under the tenant key, to
//!    the `refresh_journal` row of the connection (one small SQLite commit, microseconds after the
//!    answer): a kill after this point loses nothing.
//! 4. *Journal written, keychain not yet.* The next refresh (under the lock) finds the journal
//!    row, moves its token to the keychain, deletes the row, then refreshes with it.
//! 5. *Keychain written, database not yet.* The keychain holds the new refresh token and the
//!    database the old access token; the journal row repeats what the keychain already holds. The
//!    next caller sees an expired access token and refreshes with the new refresh token.
//! 6. *Database written.* The new access token is cached; the journal row was deleted in the same
//!    transaction, with the `refreshed` event and the caller's `handed_out` event.
//!
//! The new refresh token always reaches the keychain before the new access token is used or
//! returned. When the answer carries no refresh token, the old one stays.

mod bound;
mod hand_out;
mod inspect;
mod maintain;
mod refresh;
mod revoke;
#[cfg(test)]
mod seam_tests;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::gate::{Entry, Waiter};
pub use inspect::{JwtView, TokenInspection};
pub use maintain::MaintenanceReport;

/// Default minimum remaining validity of a handed-out access token.
pub const DEFAULT_MIN_VALID: Duration = Duration::from_secs(60);
/// Attempts for transient refresh failures (5xx, network, timeouts), all within the caller's
/// [`crate::deadline::Deadline`].
const ATTEMPTS: u32 = 3;

/// How an access token is shown to the user (recorded in the `revealed` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// Copied to the clipboard.
    Copy,
    /// Shown on screen.
    Reveal,
}

/// What revoking a grant achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RevokeOutcome {
    /// Whether the provider confirmed the revocation.
    pub revoked_at_provider: bool,
    /// What happened, in plain words.
    pub detail: String,
    /// Tokens already issued may live on: say so.
    pub caveat: String,
}

/// A connection deleted with its provider app, and what its revocation achieved.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DeletedConnection {
    /// Its name.
    pub name: String,
    /// The revocation at the provider (`None` when it was revoked already).
    pub revocation: Option<RevokeOutcome>,
}
