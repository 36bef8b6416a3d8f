//! What the history records: events, their actors, and what verification reports.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{now_ms, ConnectionId, TenantId, UnixMillis};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A grant was obtained (consent).
    Consented,
    /// Tokens were refreshed.
    Refreshed,
    /// A refresh failed.
    RefreshFailed,
    /// An access token was handed to a caller.
    HandedOut,
    /// A secret was shown or copied at the user's request.
    Revealed,
    /// A grant was revoked.
    Revoked,
    /// A connection was deleted.
    Deleted,
    /// Data was exported.
    Exported,
    /// Configuration changed (tenant renamed, provider app added, …).
    ConfigChanged,
    /// A tenant was created.
    TenantCreated,
    /// A tenant was deleted (and its events redacted).
    TenantDeleted,
    /// A request went through the authenticating proxy (method, host, path without query,
    /// status, bytes, duration; never bodies or query strings).
    Proxied,
    /// The hand-out agent locked (its `reason`: idle, keychain_locked, session_locked, user).
    Locked,
    /// A hand-out policy was set or changed (see [`crate::policy`]).
    PolicyChanged,
    /// The hand-out policy refused a program (its path and pid are the event's caller).
    HandOutRefused,
}

impl EventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consented => "consented",
            Self::Refreshed => "refreshed",
            Self::RefreshFailed => "refresh_failed",
            Self::HandedOut => "handed_out",
            Self::Revealed => "revealed",
            Self::Revoked => "revoked",
            Self::Deleted => "deleted",
            Self::Exported => "exported",
            Self::ConfigChanged => "config_changed",
            Self::TenantCreated => "tenant_created",
            Self::TenantDeleted => "tenant_deleted",
            Self::Proxied => "proxied",
            Self::Locked => "locked",
            Self::PolicyChanged => "policy_changed",
            Self::HandOutRefused => "hand_out_refused",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Consented,
            Self::Refreshed,
            Self::RefreshFailed,
            Self::HandedOut,
            Self::Revealed,
            Self::Revoked,
            Self::Deleted,
            Self::Exported,
            Self::ConfigChanged,
            Self::TenantCreated,
            Self::TenantDeleted,
            Self::Proxied,
            Self::Locked,
            Self::PolicyChanged,
            Self::HandOutRefused,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Which front end acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The desktop app.
    App,
    /// The command line.
    Cli,
    /// The hand-out agent, on behalf of a local program.
    Agent,
    /// A background job (proactive refresh).
    Background,
    /// The authenticating proxy, on behalf of a local program.
    Proxy,
}

impl ActorKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Cli => "cli",
            Self::Agent => "agent",
            Self::Background => "background",
            Self::Proxy => "proxy",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "app" => Self::App,
            "cli" => Self::Cli,
            "agent" => Self::Agent,
            "background" => Self::Background,
            "proxy" => Self::Proxy,
            _ => return None,
        })
    }
}

/// Who asked for an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The front end.
    pub kind: ActorKind,
    /// The application hint the caller gave (`--hint nightly-sync`).
    pub app_hint: Option<String>,
    /// The calling process, when known (`pid 4242 /usr/bin/python3`).
    pub caller: Option<String>,
}

impl Actor {
    /// An actor with no hint or caller details.
    pub fn new(kind: ActorKind) -> Self {
        Self {
            kind,
            app_hint: None,
            caller: None,
        }
    }

    /// Adds an application hint.
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.app_hint = hint;
        self
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub(super) ts: UnixMillis,
    pub(super) kind: EventKind,
    pub(super) tenant_id: Option<TenantId>,
    pub(super) connection_id: Option<ConnectionId>,
    pub(super) actor: Actor,
    pub(super) detail: Option<String>,
    pub(super) fingerprint: Option<String>,
}

impl NewEvent {
    /// An event of `kind` by `actor`, stamped now.
    pub fn new(kind: EventKind, actor: &Actor) -> Self {
        Self {
            ts: now_ms(),
            kind,
            tenant_id: None,
            connection_id: None,
            actor: actor.clone(),
            detail: None,
            fingerprint: None,
        }
    }

    /// The tenant concerned.
    pub fn tenant(mut self, id: &TenantId) -> Self {
        self.tenant_id = Some(id.clone());
        self
    }

    /// The connection concerned.
    pub fn connection(mut self, id: &ConnectionId) -> Self {
        self.connection_id = Some(id.clone());
        self
    }

    /// Structured, secret-free details.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// The fingerprint of the token concerned.
    pub fn fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Overrides the time stamp (imports, benchmarks).
    pub fn at(mut self, ts: UnixMillis) -> Self {
        self.ts = ts;
        self
    }
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct UsageEvent {
    /// Position in the chain, from 1.
    #[ts(type = "number")]
    pub seq: i64,
    /// When it happened.
    #[ts(type = "number")]
    pub ts: UnixMillis,
    /// What happened.
    pub kind: EventKind,
    /// Tenant concerned.
    pub tenant_id: Option<TenantId>,
    /// Connection concerned.
    pub connection_id: Option<ConnectionId>,
    /// Which front end acted.
    pub actor: Option<ActorKind>,
    /// The caller's application hint.
    pub app_hint: Option<String>,
    /// The calling process.
    pub caller: Option<String>,
    /// Structured details.
    #[ts(type = "unknown")]
    pub detail: Option<serde_json::Value>,
    /// Keyed fingerprint of the token concerned.
    pub fingerprint: Option<String>,
    /// Whether the content was erased with its tenant.
    pub redacted: bool,
}

/// Events of one kind on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DailyCount {
    /// Days since 1970-01-01 (UTC).
    #[ts(type = "number")]
    pub day: i64,
    /// Event kind.
    pub kind: EventKind,
    /// Number of events.
    #[ts(type = "number")]
    pub count: u64,
}

/// What is wrong with the history at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// An event's content, time, kind or tenant was changed.
    Edited,
    /// Events are gone: a gap in the numbering, events deleted and the later ones renumbered, or
    /// fewer events than the keychain's checkpoint anchors (the newest, or all of them).
    Missing,
    /// An event Grantkeeper did not write (or a copy of one it did) sits among the others.
    Inserted,
    /// Events are not in the order they were written.
    Reordered,
    /// Events were not written with this vault's key: the chain was recomputed or forged.
    Forged,
    /// An event's erasure does not match a tenant deletion, or its `redacted` mark was changed.
    Erased,
    /// The history up to the checkpoint is not the one the checkpoint anchored.
    Replaced,
    /// The history was already broken when it was first keyed (its old unkeyed chain failed).
    BrokenBeforeKeyed,
    /// The record of when the history was keyed is missing or was changed.
    KeyRecord,
    /// The checkpoint in the keychain is missing or does not verify.
    Anchor,
}

/// One place where the history does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BadEvent {
    /// The first sequence number concerned (0 for the history as a whole).
    #[ts(type = "number")]
    pub seq: i64,
    /// The last sequence number concerned (`seq` for one event).
    #[ts(type = "number")]
    pub through: i64,
    /// What kind of problem it is.
    pub problem: Problem,
    /// What is wrong, in plain words.
    pub reason: String,
}

/// The keychain checkpoint a verification measured the history against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AnchorInfo {
    /// The last event it anchors.
    #[ts(type = "number")]
    pub seq: i64,
    /// When it was written.
    #[ts(type = "number")]
    pub at: UnixMillis,
}

/// The outcome of [`crate::audit::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VerifyReport {
    /// Events checked.
    #[ts(type = "number")]
    pub checked: u64,
    /// The first problem, if any (the first of `problems`).
    pub first_bad: Option<BadEvent>,
    /// Every problem found, by sequence number (at most [`crate::audit::MAX_PROBLEMS`]).
    pub problems: Vec<BadEvent>,
    /// The checkpoint in the keychain, when there is a valid one.
    pub anchor: Option<AnchorInfo>,
    /// Events after the checkpoint: they verify, but deleting them would not be noticed.
    #[ts(type = "number")]
    pub unanchored: u64,
}

impl VerifyReport {
    /// Whether the whole history verified.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}
