//! Desktop notifications: what deserves one, decided here, and what was already shown.
//!
//! A connection can be in a few conditions worth a notification: its refresh token ends within
//! [`NoticeSettings::expiring_days`] days (the earlier of its idle and hard expiries, which come
//! from the grant's own answers and the catalog's lifetime facts), it needs re-consent, its
//! refreshes keep failing, or it carries another anomaly flag. [`Vault::take_notices`] returns
//! the conditions not notified yet and remembers them, so each is notified once per connection;
//! once it clears it is forgotten and notified again should it come back. A notice holds the
//! connection's name and the core's sentences, never a token.

use std::collections::BTreeSet;

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::anomaly::AnomalyKind;
use crate::error::Result;
use crate::model::{now_ms, ConnectionId, ConnectionStatus, TenantId, UnixMillis};
use crate::report::GrantReportRow;
use crate::{ConnectionFilter, Vault};

/// The `meta` key of the conditions already notified.
const META_NOTIFIED: &str = "notified";
/// The `meta` key of the settings.
const META_SETTINGS: &str = "notice_settings";
const DAY: i64 = 86_400_000;

/// What the user wants notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NoticeSettings {
    /// Notify when a refresh token ends within this many days.
    pub expiring_days: u32,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        Self { expiring_days: 7 }
    }
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case", tag = "kind", content = "flag")]
pub enum NoticeCondition {
    /// The refresh token ends soon.
    RefreshExpiring,
    /// The provider refused the grant: someone must consent again.
    NeedsReconsent,
    /// An anomaly flag (repeated refresh failures are one).
    Flag(AnomalyKind),
}

impl NoticeCondition {
    /// The condition's stable name, as remembered.
    fn key(self) -> String {
        match self {
            Self::RefreshExpiring => "refresh_expiring".into(),
            Self::NeedsReconsent => "needs_reconsent".into(),
            Self::Flag(k) => format!("flag:{}", k.as_str()),
        }
    }
}

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Notice {
    /// What it is about.
    pub condition: NoticeCondition,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The connection.
    pub connection_id: ConnectionId,
    /// The notification's title: what happened, to which connection (`<tenant>/<name>`).
    pub summary: String,
    /// One or two sentences: why, and what to do.
    pub body: String,
}

impl Notice {
    fn remembered(&self) -> String {
        format!("{} {}", self.connection_id.as_str(), self.condition.key())
    }
}

/// The notices the conditions of `rows` (and their anomaly flags) call for at `now`.
pub fn notices(
    rows: &[GrantReportRow],
    flags: &[crate::anomaly::Anomaly],
    settings: NoticeSettings,
    tenant_of: impl Fn(&GrantReportRow) -> TenantId,
    now: UnixMillis,
) -> Vec<Notice> {
    let mut out = Vec::new();
    for r in rows {
        let target = format!("{}/{}", r.tenant, r.connection);
        let notice = |condition, summary: String, body: String| Notice {
            condition,
            tenant_id: tenant_of(r),
            connection_id: r.connection_id.clone(),
            summary,
            body,
        };
        match r.status {
            ConnectionStatus::NeedsReconsent => out.push(notice(
                NoticeCondition::NeedsReconsent,
                format!("Re-consent needed: {target}"),
                "The provider no longer accepts this grant. Open Grantkeeper and reconnect it."
                    .into(),
            )),
            ConnectionStatus::Active => {
                if let Some(ends) = refresh_ends_at(r) {
                    if ends - now <= i64::from(settings.expiring_days) * DAY {
                        let when = if ends <= now {
                            "has ended".to_owned()
                        } else {
                            let days = (ends - now + DAY - 1) / DAY;
                            format!(
                                "ends in {days} day{} ({})",
                                if days == 1 { "" } else { "s" },
                                crate::timefmt::format_rfc3339(ends)
                            )
                        };
                        out.push(notice(
                            NoticeCondition::RefreshExpiring,
                            format!("Refresh token expiring: {target}"),
                            format!("Its refresh token {when}. Re-consent to keep it working."),
                        ));
                    }
                }
            }
            ConnectionStatus::Revoked | ConnectionStatus::Error => {}
        }
        if r.status == ConnectionStatus::Revoked {
            continue;
        }
        for a in flags.iter().filter(|a| a.connection_id == r.connection_id) {
            let summary = match a.kind {
                AnomalyKind::RefreshFailures => format!("Refreshes failing: {target}"),
                kind => format!("New anomaly flag ({}): {target}", kind.as_str()),
            };
            out.push(notice(
                NoticeCondition::Flag(a.kind),
                summary,
                a.explanation.clone(),
            ));
        }
    }
    out
}

/// When the grant's refresh token ends, if one is held and its end is known.
fn refresh_ends_at(r: &GrantReportRow) -> Option<UnixMillis> {
    if !r.has_refresh_token {
        return None;
    }
    [r.refresh_expires_at, r.refresh_hard_expires_at]
        .into_iter()
        .flatten()
        .min()
}

impl Vault {
    /// The notification settings (the defaults until set).
    pub fn notice_settings(&self) -> Result<NoticeSettings> {
        let conn = self.conn();
        let text: Option<String> = conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([META_SETTINGS], |r| r.get(0))
            .optional()?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Changes the notification settings.
    pub fn set_notice_settings(&self, settings: NoticeSettings) -> Result<()> {
        let text = serde_json::to_string(&settings)
            .map_err(|e| crate::Error::Invalid(format!("the settings cannot be written: {e}")))?;
        self.write(|tx| {
            put_meta(tx, META_SETTINGS, &text)?;
            Ok(())
        })
    }

    /// The notices due now: conditions that hold and were not notified since they last began.
    /// They are remembered as notified when returned; conditions that cleared are forgotten.
    pub fn take_notices(&self) -> Result<Vec<Notice>> {
        self.take_notices_at(now_ms())
    }

    pub(crate) fn take_notices_at(&self, now: UnixMillis) -> Result<Vec<Notice>> {
        let settings = self.notice_settings()?;
        let all = ConnectionFilter::default();
        let rows = self.grant_report(&all)?;
        let flags = self.anomalies_at(&all, None, now)?;
        let tenants: std::collections::HashMap<String, TenantId> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached("SELECT slug, id FROM tenants")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, TenantId::from_string(r.get::<_, String>(1)?)))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let tenant_of = |r: &GrantReportRow| {
            tenants
                .get(&r.tenant)
                .cloned()
                .unwrap_or_else(|| TenantId::from_string(r.tenant.clone()))
        };
        let current = notices(&rows, &flags, settings, tenant_of, now);
        self.write(|tx| {
            let before: Option<String> = tx
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([META_NOTIFIED], |r| r.get(0))
                .optional()?;
            let before: BTreeSet<String> = before
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let now_held: BTreeSet<String> = current.iter().map(Notice::remembered).collect();
            if now_held != before {
                let text = serde_json::to_string(&now_held).expect("a set of strings");
                put_meta(tx, META_NOTIFIED, &text)?;
            }
            Ok(current
                .into_iter()
                .filter(|n| !before.contains(&n.remembered()))
                .collect())
        })
    }
}

fn put_meta(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
