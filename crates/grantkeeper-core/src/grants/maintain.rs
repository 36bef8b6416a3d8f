//! Keeping idle refresh tokens alive and warning about expiring ones.

use crate::audit::Actor;
use crate::deadline::Deadline;
use crate::error::Result;
use crate::model::{ConnectionId, ExpiryWarning};
use serde::Serialize;
use std::time::Duration;
use ts_rs::TS;

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
