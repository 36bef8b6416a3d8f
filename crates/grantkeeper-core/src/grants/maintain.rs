//! Keeping idle refresh tokens alive and warning about expiring ones.

use crate::audit::Actor;
use crate::deadline::Deadline;
use crate::error::Result;
use crate::model::{now_ms, ConnectionId, UnixMillis};
use serde::Serialize;
use std::time::Duration;
use ts_rs::TS;

/// A refresh token that will die soon unless something happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ExpiryWarning {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: crate::model::TenantId,
    /// Its name.
    pub name: String,
    /// When the refresh token expires.
    #[ts(type = "number")]
    pub expires_at: UnixMillis,
    /// Whether the expiry is a hard one (only re-consent helps) or from inactivity (a refresh
    /// renews it).
    pub hard: bool,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MaintenanceReport {
    /// Connections refreshed to keep an idle refresh token alive.
    pub refreshed: Vec<ConnectionId>,
    /// Connections whose keep-alive refresh failed (recorded in their history).
    pub failed: Vec<ConnectionId>,
    /// Refresh tokens expiring within the warning window.
    pub warnings: Vec<ExpiryWarning>,
}

impl crate::Vault {
    /// Refresh tokens that expire within `within`, soonest first.
    pub fn expiry_warnings(&self, within: Duration) -> Result<Vec<ExpiryWarning>> {
        let horizon =
            now_ms().saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, tenant_id, name, refresh_expires_at, refresh_hard_expires_at FROM connections
             WHERE status = 'active' AND has_refresh_token = 1
               AND (refresh_expires_at <= ?1 OR refresh_hard_expires_at <= ?1)",
        )?;
        let rows = stmt.query_map([horizon], |r| {
            let sliding: Option<i64> = r.get(3)?;
            let hard: Option<i64> = r.get(4)?;
            let (expires_at, is_hard) = match (sliding, hard) {
                (Some(s), Some(h)) if h <= s => (h, true),
                (Some(s), _) => (s, false),
                (None, Some(h)) => (h, true),
                (None, None) => (i64::MAX, false),
            };
            Ok(ExpiryWarning {
                connection_id: ConnectionId::from_string(r.get::<_, String>(0)?),
                tenant_id: crate::model::TenantId::from_string(r.get::<_, String>(1)?),
                name: r.get(2)?,
                expires_at,
                hard: is_hard,
            })
        })?;
        let mut out: Vec<ExpiryWarning> = rows.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|w| w.expires_at);
        Ok(out)
    }

    /// One background pass: refreshes every grant whose refresh token would die from inactivity
    /// within `keep_alive` (Xero after 60 idle days, QuickBooks 100, Google 180), so unused
    /// connections stay alive, and lists the refresh tokens expiring within `warn`.
    pub fn maintain(&self, keep_alive: Duration, warn: Duration) -> Result<MaintenanceReport> {
        let actor = Actor::new(crate::audit::ActorKind::Background);
        let mut report = MaintenanceReport::default();
        for w in self.expiry_warnings(keep_alive)? {
            if w.hard {
                continue;
            }
            let scope = self.tenant(&w.tenant_id)?;
            match scope.refresh(&w.connection_id, &Deadline::default(), &actor) {
                Ok(token) => {
                    drop(token);
                    report.refreshed.push(w.connection_id);
                }
                Err(e) => {
                    tracing::warn!(connection = %w.connection_id, error = %e, "keep-alive refresh failed");
                    report.failed.push(w.connection_id);
                }
            }
        }
        report.warnings = self.expiry_warnings(warn)?;
        Ok(report)
    }
}
