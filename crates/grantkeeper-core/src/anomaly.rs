//! Anomaly flags: where a connection's use looks wrong, each flag explained in one sentence.
//!
//! They read the usage profiles folded from the history ([`crate::audit::rollup`]) and the
//! connections, never the raw events, so one pass over a vault costs a row per connection
//! whatever the length of its history. Each rule compares a connection with its own past:
//!
//! - **burst**: a clock hour (this one or the last) with far more hand-outs than the busiest hour
//!   of the 14 days before today ([`BURST_FACTOR`] times, and at least [`BURST_MIN`]);
//! - **new program**: a program took a token for the first time in the last 7 days, while others
//!   had used the connection before;
//! - **off hours**: hand-outs in the last 24 hours at an hour of the day that saw under 1% of the
//!   connection's earlier hand-outs (once it has [`OFF_HOURS_MIN`] of them over 7 days or more);
//! - **unused**: an active grant not used for [`UNUSED_DAYS`] days;
//! - **scopes added**: a re-consent in the last 30 days added scopes;
//! - **refresh failures**: [`FAILURES_MIN`] or more refreshes failed in a row;
//! - **refused hand-outs**: the hand-out policy ([`crate::policy`]) refused [`REFUSED_MIN`] or
//!   more hand-outs in the last 24 hours.

mod rules;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::audit::rollup;
use crate::error::Result;
use crate::model::{now_ms, ConnectionId, ConnectionStatus, TenantId, UnixMillis};
use crate::{ConnectionFilter, Vault};

pub use rules::{
    flags, BURST_FACTOR, BURST_MIN, FAILURES_MIN, OFF_HOURS_MIN, REFUSED_MIN, UNUSED_DAYS,
};

/// What looks wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Far more hand-outs in an hour than the connection's busiest hours.
    Burst,
    /// A program never seen before for this connection.
    NewProgram,
    /// Use at an hour of the day the connection is not used at.
    OffHours,
    /// An active grant nobody uses.
    Unused,
    /// A re-consent added scopes.
    ScopesAdded,
    /// Refreshes fail again and again.
    RefreshFailures,
    /// The hand-out policy refused hand-outs again and again.
    RefusedHandOuts,
}

impl AnomalyKind {
    /// Every kind, in the order flags are listed.
    pub const ALL: [Self; 7] = [
        Self::Burst,
        Self::NewProgram,
        Self::OffHours,
        Self::RefreshFailures,
        Self::RefusedHandOuts,
        Self::ScopesAdded,
        Self::Unused,
    ];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Burst => "burst",
            Self::NewProgram => "new_program",
            Self::OffHours => "off_hours",
            Self::Unused => "unused",
            Self::ScopesAdded => "scopes_added",
            Self::RefreshFailures => "refresh_failures",
            Self::RefusedHandOuts => "refused_hand_outs",
        }
    }
}

/// One flag on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Anomaly {
    /// What looks wrong.
    pub kind: AnomalyKind,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The connection.
    pub connection_id: ConnectionId,
    /// The connection as `<tenant>/<name>`.
    pub target: String,
    /// Since when (the start of the pattern).
    #[ts(type = "number")]
    pub since: UnixMillis,
    /// Why, in one sentence.
    pub explanation: String,
}

/// What a rule needs to know of a connection besides its profile.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The connection.
    pub id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// `<tenant>/<name>`.
    pub target: String,
    /// Whether it is active (not revoked, not awaiting re-consent).
    pub active: bool,
    /// When it was connected.
    pub created_at: UnixMillis,
    /// Its last hand-out.
    pub last_used_at: Option<UnixMillis>,
}

impl Vault {
    /// The anomaly flags of the connections `filter` selects, by tenant and connection, as of
    /// now. Folds history written since the last reading first.
    pub fn anomalies(&self, filter: &ConnectionFilter) -> Result<Vec<Anomaly>> {
        self.anomalies_at(filter, None, now_ms())
    }

    /// The anomaly flags of one connection, as of now.
    pub fn connection_anomalies(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<Vec<Anomaly>> {
        let filter = ConnectionFilter {
            tenant: Some(tenant.clone()),
            status: None,
        };
        self.anomalies_at(&filter, Some(id), now_ms())
    }

    /// The flags of the connections `filter` selects (only `one`, when given), as of `now`.
    pub(crate) fn anomalies_at(
        &self,
        filter: &ConnectionFilter,
        one: Option<&ConnectionId>,
        now: UnixMillis,
    ) -> Result<Vec<Anomaly>> {
        let (subjects, profiles, programs) = {
            let conn = self.conn();
            let subjects = subjects(&conn, filter, one)?;
            let profiles = rollup::profiles(&conn, one)?;
            (subjects, profiles, rollup::programs(&conn, one)?)
        };
        let mut by_connection: HashMap<ConnectionId, Vec<rollup::ProgramUse>> = HashMap::new();
        for p in programs {
            by_connection
                .entry(p.connection_id.clone())
                .or_default()
                .push(p);
        }
        Ok(subjects
            .iter()
            .flat_map(|s| {
                let programs = by_connection.get(&s.id).map_or(&[][..], Vec::as_slice);
                flags(s, profiles.get(&s.id), programs, now)
            })
            .collect())
    }
}

/// What the rules need of each connection `filter` (and `one`) selects, by tenant and name.
fn subjects(
    conn: &rusqlite::Connection,
    filter: &ConnectionFilter,
    one: Option<&ConnectionId>,
) -> Result<Vec<Subject>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.tenant_id, t.slug || '/' || c.name, c.status, c.created_at, c.last_used_at
         FROM connections c JOIN tenants t ON t.id = c.tenant_id
         WHERE (?1 IS NULL OR c.tenant_id = ?1) AND (?2 IS NULL OR c.status = ?2)
               AND (?3 IS NULL OR c.id = ?3)
         ORDER BY t.slug, c.name",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![
            filter.tenant.as_ref().map(TenantId::as_str),
            filter.status.map(ConnectionStatus::as_str),
            one.map(ConnectionId::as_str)
        ],
        |r| {
            Ok(Subject {
                id: ConnectionId::from_string(r.get::<_, String>(0)?),
                tenant_id: TenantId::from_string(r.get::<_, String>(1)?),
                target: r.get(2)?,
                active: r.get_ref(3)?.as_str()? == ConnectionStatus::Active.as_str(),
                created_at: r.get(4)?,
                last_used_at: r.get(5)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests;
