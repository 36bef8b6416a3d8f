//! The vault's doors to the usage history.

use crate::audit::{self, DailyCount, NewEvent, UsageEvent, VerifyReport};
use crate::error::Result;
use crate::model::*;

use super::Vault;

impl Vault {
    /// The newest events of one connection, newest first.
    pub fn connection_history(
        &self,
        id: &ConnectionId,
        before: Option<UnixMillis>,
        limit: u32,
    ) -> Result<Vec<UsageEvent>> {
        Ok(audit::connection_history(&self.conn(), id, before, limit)?)
    }

    /// The newest event's sequence number (0 for none): every change writes an event, so a
    /// watcher that sees it move knows the vault changed, whoever changed it.
    pub fn newest_event_seq(&self) -> Result<i64> {
        Ok(audit::newest_seq(&self.conn())?)
    }

    /// The newest events of the whole vault.
    pub fn recent_events(&self, limit: u32) -> Result<Vec<UsageEvent>> {
        Ok(audit::recent(&self.conn(), limit)?)
    }

    /// The newest events of one connection or of the whole vault, optionally only those since
    /// a time, newest first.
    pub fn history(&self, filter: &audit::HistoryFilter) -> Result<Vec<UsageEvent>> {
        Ok(audit::events(&self.conn(), filter)?)
    }

    /// Per-day event counts of one connection since `since`.
    pub fn daily_counts(&self, id: &ConnectionId, since: UnixMillis) -> Result<Vec<DailyCount>> {
        Ok(audit::daily_counts(&self.conn(), id, since)?)
    }

    /// Verifies the whole usage history against its keyed chain and the keychain's checkpoint.
    pub fn verify_history(&self) -> Result<VerifyReport> {
        // The checkpoint first: every event it anchors was committed before it was written.
        let anchor = audit::read_anchor(&*self.keychain, &self.history, &self.id)?;
        Ok(audit::verify(&self.conn(), &self.history, &anchor)?)
    }

    /// Writes a checkpoint of the usage history to the keychain now, if it has new events that
    /// verify (the agent at lock and stop, the app when it quits).
    pub fn anchor_history(&self) -> Result<audit::AnchorOutcome> {
        self.anchorer.now(&self.conn())
    }

    /// Appends events in one transaction (imports, benchmarks).
    pub fn record_events(&self, events: &[NewEvent]) -> Result<i64> {
        self.write(|tx| Ok(audit::append_batch(tx, events)?))
    }
}
