//! The grant report: every grant of the vault (or of one tenant) with its account, its scopes
//! and their risk from the catalog, when and by whom it was consented, and its expiries. It holds
//! no secret, only what the vault's records already show, for audits and client handovers.
//!
//! [`Vault::grant_report`] builds it; [`Vault::export_grant_report`] builds it and records an
//! `exported` event first, so every export is in the usage history. [`to_csv`] renders it.
//! The views' read models live here too: [`ConnectionRow`] (the connections list, sent to the
//! window as [`ConnectionColumns`]) and [`ConnectionDetail`] (one connection).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ts_rs::TS;

use crate::anomaly::AnomalyKind;
use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::catalog::{Catalog, Risk};
use crate::error::Result;
use crate::model::{ConnectionId, ConnectionStatus, TenantId, UnixMillis};
use crate::timefmt::format_rfc3339;
use crate::{ConnectionFilter, Vault};

mod columns;
mod packed;
mod rows;
pub use columns::ConnectionColumns;
pub use packed::PackedStrings;
pub use rows::ConnectionRow;

/// One scope of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReportScope {
    /// The scope string.
    pub scope: String,
    /// Whether it was asked for.
    pub requested: bool,
    /// Whether it was granted (as reported by the provider, or assumed as requested).
    pub granted: bool,
    /// Its risk, when the provider's preset knows the scope.
    pub risk: Option<Risk>,
    /// What it grants, when the preset knows the scope.
    pub meaning: Option<String>,
}

/// Every scope a connection asked for or was granted, with its meaning and risk from the
/// preset's catalog entry when it knows the scope.
pub fn scope_views(
    c: &crate::model::Connection,
    preset: Option<&crate::catalog::Preset>,
) -> Vec<ReportScope> {
    c.scopes_requested
        .iter()
        .chain(
            c.scopes_granted
                .iter()
                .filter(|s| !c.scopes_requested.contains(s)),
        )
        .map(|s| {
            let info = preset.and_then(|p| p.scope(s));
            ReportScope {
                scope: s.clone(),
                requested: c.scopes_requested.contains(s),
                granted: c.scopes_granted.contains(s),
                risk: info.map(|i| i.risk),
                meaning: info.map(|i| i.meaning.clone()),
            }
        })
        .collect()
}

/// One grant in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GrantReportRow {
    /// The tenant's slug.
    pub tenant: String,
    /// The tenant's display name.
    pub tenant_name: String,
    /// The connection's name.
    pub connection: String,
    /// The connection's id.
    pub connection_id: ConnectionId,
    /// The provider app it was made with.
    pub provider_app: String,
    /// The app's catalog preset, if any.
    pub preset: Option<String>,
    /// The account at the provider: username, else subject.
    pub account: Option<String>,
    /// Organisation, tenant or instance id at the provider.
    pub account_org: Option<String>,
    /// Current state.
    pub status: ConnectionStatus,
    /// Why it is not active.
    pub status_detail: Option<String>,
    /// The status computed from the facts, from the report's time on (see [`crate::status`]).
    pub status_steps: Vec<crate::status::StatusStep>,
    /// Requested scopes in request order, then scopes granted without being asked for.
    pub scopes: Vec<ReportScope>,
    /// The highest known risk among the granted scopes.
    pub highest_risk: Option<Risk>,
    /// Whether the provider reported the granted scopes (else they are assumed as requested).
    pub scopes_granted_reported: bool,
    /// When consent was given.
    #[ts(type = "number")]
    pub consented_at: UnixMillis,
    /// Who consented.
    pub consented_by: Option<String>,
    /// When the cached access token expires.
    #[ts(type = "number | null")]
    pub access_expires_at: Option<UnixMillis>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// Sliding (inactivity) refresh-token expiry.
    #[ts(type = "number | null")]
    pub refresh_expires_at: Option<UnixMillis>,
    /// Hard refresh-token expiry.
    #[ts(type = "number | null")]
    pub refresh_hard_expires_at: Option<UnixMillis>,
    /// Last successful refresh.
    #[ts(type = "number | null")]
    pub last_refresh_at: Option<UnixMillis>,
    /// Last hand-out of a token.
    #[ts(type = "number | null")]
    pub last_used_at: Option<UnixMillis>,
}

/// What an admin's grant review looks for; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReviewFilter {
    /// Only this tenant's grants.
    pub tenant: Option<TenantId>,
    /// Only grants holding a granted scope of high risk.
    pub high_risk: bool,
    /// Only grants not used for this many days (never used counts from consent).
    pub unused_days: Option<u32>,
    /// Only grants whose refresh token expires within this many days.
    pub refresh_expiring_days: Option<u32>,
    /// Only grants that need re-consent.
    pub needs_reconsent: bool,
    /// Only grants carrying this anomaly flag (or any flag).
    #[serde(default)]
    pub flag: Option<FlagFilter>,
}

/// Which anomaly flags a review keeps grants for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum FlagFilter {
    /// Any flag at all.
    Any,
    /// This kind of flag.
    Kind(AnomalyKind),
}

impl FlagFilter {
    /// Whether a grant with these flags is kept.
    pub fn keeps(self, flags: &[AnomalyKind]) -> bool {
        match self {
            Self::Any => !flags.is_empty(),
            Self::Kind(k) => flags.contains(&k),
        }
    }
}

impl ReviewFilter {
    /// Whether `row` matches at time `now`.
    pub fn matches(&self, row: &GrantReportRow, now: UnixMillis) -> bool {
        const DAY: i64 = 86_400_000;
        if self.high_risk && row.highest_risk != Some(Risk::High) {
            return false;
        }
        if let Some(days) = self.unused_days {
            let last = row.last_used_at.unwrap_or(row.consented_at);
            if now - last < i64::from(days) * DAY {
                return false;
            }
        }
        if let Some(days) = self.refresh_expiring_days {
            let ends = [row.refresh_expires_at, row.refresh_hard_expires_at]
                .into_iter()
                .flatten()
                .min();
            if ends.is_none_or(|e| e - now > i64::from(days) * DAY) {
                return false;
            }
        }
        if self.needs_reconsent && row.status != ConnectionStatus::NeedsReconsent {
            return false;
        }
        true
    }
}

/// The form an export is written in (recorded in the `exported` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// Comma-separated values, see [`to_csv`].
    Csv,
    /// JSON, an array of [`GrantReportRow`].
    Json,
}

impl Vault {
    /// The grant report of the connections `filter` selects, by tenant and name. Reads only.
    pub fn grant_report(&self, filter: &ConnectionFilter) -> Result<Vec<GrantReportRow>> {
        let connections = self.connections(filter)?;
        let (tenants, apps) = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached("SELECT id, slug, name FROM tenants")?;
            let tenants: HashMap<String, (String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare_cached("SELECT id, name, preset FROM provider_apps")?;
            let apps: HashMap<String, (String, Option<String>)> = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<rusqlite::Result<_>>()?;
            (tenants, apps)
        };
        let now = crate::model::now_ms();
        Ok(connections
            .into_iter()
            .map(|c| {
                let (tenant, tenant_name) = tenants
                    .get(c.tenant_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let (provider_app, preset) = apps
                    .get(c.provider_app_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let preset_info = Catalog::preset_named(preset.as_deref()).ok().flatten();
                let scopes = scope_views(&c, preset_info);
                let status_steps = crate::status::StatusFacts::from(&c).steps(now);
                let highest_risk = scopes
                    .iter()
                    .filter(|s| s.granted)
                    .filter_map(|s| s.risk)
                    .max();
                GrantReportRow {
                    tenant,
                    tenant_name,
                    connection: c.name,
                    connection_id: c.id,
                    provider_app,
                    preset,
                    account: c.account.username.or(c.account.subject),
                    account_org: c.account.org_id,
                    status_steps,
                    status: c.status,
                    status_detail: c.status_detail,
                    scopes,
                    highest_risk,
                    scopes_granted_reported: c.scopes_granted_reported,
                    consented_at: c.consented_at,
                    consented_by: c.consented_by,
                    access_expires_at: c.access_expires_at,
                    has_refresh_token: c.has_refresh_token,
                    refresh_expires_at: c.refresh_expires_at,
                    refresh_hard_expires_at: c.refresh_hard_expires_at,
                    last_refresh_at: c.last_refresh_at,
                    last_used_at: c.last_used_at,
                }
            })
            .collect())
    }

    /// The grants an admin review selects, by tenant and name. Reads only.
    pub fn grant_review(&self, filter: &ReviewFilter) -> Result<Vec<GrantReportRow>> {
        let now = crate::model::now_ms();
        let mut rows = self.grant_report(&ConnectionFilter {
            tenant: filter.tenant.clone(),
            status: None,
        })?;
        rows.retain(|r| filter.matches(r, now));
        if let Some(flag) = filter.flag {
            let mut flagged: HashMap<ConnectionId, Vec<AnomalyKind>> = HashMap::new();
            let all = ConnectionFilter {
                tenant: filter.tenant.clone(),
                status: None,
            };
            for a in self.anomalies(&all)? {
                flagged.entry(a.connection_id).or_default().push(a.kind);
            }
            rows.retain(|r| flag.keeps(flagged.get(&r.connection_id).map_or(&[], Vec::as_slice)));
        }
        Ok(rows)
    }

    /// The review, for export, recorded like [`Vault::export_grant_report`] (with the filter).
    pub fn export_review(
        &self,
        filter: &ReviewFilter,
        format: ReportFormat,
        actor: &Actor,
    ) -> Result<Vec<GrantReportRow>> {
        let rows = self.grant_review(filter)?;
        let detail = json!({ "what": "grant_review", "filter": filter });
        self.record_export(detail, format, &rows, filter.tenant.as_ref(), actor)?;
        Ok(rows)
    }

    /// Writes the review to `path` (the file the user chose) in `format`, recorded like
    /// [`Vault::export_review`]; returns the number of grants written. Nothing is recorded when
    /// the review cannot be read; a file that cannot be written is named in the error.
    pub fn save_review(
        &self,
        filter: &ReviewFilter,
        format: ReportFormat,
        path: &std::path::Path,
        actor: &Actor,
    ) -> Result<usize> {
        let rows = self.export_review(filter, format, actor)?;
        let text = match format {
            ReportFormat::Csv => to_csv(&rows),
            ReportFormat::Json => serde_json::to_string_pretty(&rows)
                .map_err(|e| crate::Error::Invalid(format!("the report cannot be written: {e}")))?,
        };
        std::fs::write(path, text).map_err(|e| crate::Error::io(path, e))?;
        Ok(rows.len())
    }

    /// The grant report, for export: the `exported` event (format, row count, the tenant when
    /// filtered) is written first, and no report is returned when it cannot be.
    pub fn export_grant_report(
        &self,
        filter: &ConnectionFilter,
        format: ReportFormat,
        actor: &Actor,
    ) -> Result<Vec<GrantReportRow>> {
        let rows = self.grant_report(filter)?;
        let detail = json!({
            "what": "grant_report",
            "status": filter.status.map(ConnectionStatus::as_str),
        });
        self.record_export(detail, format, &rows, filter.tenant.as_ref(), actor)?;
        Ok(rows)
    }

    /// Writes the `exported` event: `detail` plus the format and the row count.
    fn record_export(
        &self,
        mut detail: serde_json::Value,
        format: ReportFormat,
        rows: &[GrantReportRow],
        tenant: Option<&TenantId>,
        actor: &Actor,
    ) -> Result<()> {
        detail["format"] = json!(format);
        detail["rows"] = json!(rows.len());
        self.write(|tx| {
            let mut event = NewEvent::new(EventKind::Exported, actor).detail(detail);
            if let Some(t) = tenant {
                event = event.tenant(t);
            }
            audit::append(tx, &event)?;
            Ok(())
        })
    }
}

/// The CSV columns of [`to_csv`], in order.
pub const CSV_COLUMNS: [&str; 21] = [
    "tenant",
    "tenant_name",
    "connection",
    "provider_app",
    "preset",
    "account",
    "account_org",
    "status",
    "scopes_requested",
    "scopes_granted",
    "scope_risks",
    "highest_risk",
    "consented_at",
    "consented_by",
    "access_expires_at",
    "has_refresh_token",
    "refresh_expires_at",
    "refresh_hard_expires_at",
    "last_refresh_at",
    "last_used_at",
    "status_detail",
];

/// The report as CSV (RFC 4180: a header line, CRLF line ends, fields quoted when they hold a
/// comma, quote or line break, quotes doubled). Times are RFC 3339 UTC, scope lists are
/// space-separated, `scope_risks` is `scope=risk` per scope (`?` when the catalog does not know
/// it), and empty fields are unknown. A field that a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`.
pub fn to_csv(rows: &[GrantReportRow]) -> String {
    let mut out = String::new();
    push_record(&mut out, CSV_COLUMNS.iter().map(|c| (*c).to_owned()));
    let time = |t: Option<UnixMillis>| t.map(format_rfc3339).unwrap_or_default();
    let risk = |r: Option<Risk>| match r {
        Some(Risk::Low) => "low",
        Some(Risk::Medium) => "medium",
        Some(Risk::High) => "high",
        None => "",
    };
    for r in rows {
        let list = |pick: fn(&ReportScope) -> bool| {
            r.scopes
                .iter()
                .filter(|s| pick(s))
                .map(|s| s.scope.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let risks = r
            .scopes
            .iter()
            .map(|s| {
                let level = risk(s.risk);
                format!("{}={}", s.scope, if level.is_empty() { "?" } else { level })
            })
            .collect::<Vec<_>>()
            .join(" ");
        push_record(
            &mut out,
            [
                r.tenant.clone(),
                r.tenant_name.clone(),
                r.connection.clone(),
                r.provider_app.clone(),
                r.preset.clone().unwrap_or_default(),
                r.account.clone().unwrap_or_default(),
                r.account_org.clone().unwrap_or_default(),
                r.status.as_str().to_owned(),
                list(|s| s.requested),
                list(|s| s.granted),
                risks,
                risk(r.highest_risk).to_owned(),
                time(Some(r.consented_at)),
                r.consented_by.clone().unwrap_or_default(),
                time(r.access_expires_at),
                r.has_refresh_token.to_string(),
                time(r.refresh_expires_at),
                time(r.refresh_hard_expires_at),
                time(r.last_refresh_at),
                time(r.last_used_at),
                r.status_detail.clone().unwrap_or_default(),
            ],
        );
    }
    out
}

fn push_record(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(&field));
    }
    out.push_str("\r\n");
}

/// One CSV field, neutralised against formula injection and quoted as RFC 4180 requires.
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Everything a detail view shows of one connection, without any secret.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ConnectionDetail {
    /// The connection.
    pub connection: crate::model::Connection,
    /// Its tenant's slug.
    pub tenant: String,
    /// The provider app's name.
    pub provider_app: String,
    /// The app's catalog preset and its display name.
    pub preset: Option<String>,
    /// The preset's display name.
    pub provider_name: Option<String>,
    /// Scopes with meaning and risk.
    pub scopes: Vec<ReportScope>,
    /// The newest events, newest first.
    pub history: Vec<crate::audit::UsageEvent>,
    /// Events per day and kind over the last 90 days.
    pub daily: Vec<crate::audit::DailyCount>,
    /// Decoded JWT claims of the cached tokens (offline).
    pub inspection: crate::grants::TokenInspection,
    /// Where its use looks wrong.
    pub anomalies: Vec<crate::anomaly::Anomaly>,
    /// What its tokens are bound to (a DPoP key of this device), if anything.
    pub binding: Option<crate::model::TokenBinding>,
    /// The status computed from the facts, from now on (see [`crate::status`]).
    pub status_steps: Vec<crate::status::StatusStep>,
}

impl Vault {
    /// The detail of one connection: scopes with meaning and risk, history, per-day counts,
    /// offline token inspection and anomaly flags. Reads only; needs no network.
    pub fn connection_detail(
        &self,
        tenant: &crate::model::TenantId,
        id: &ConnectionId,
        history: u32,
    ) -> Result<ConnectionDetail> {
        let scope = self.tenant(tenant)?;
        let connection = scope.connection(id)?;
        let app = scope.provider_app(connection.provider_app_id.as_str())?;
        let preset = Catalog::preset_named(app.preset.as_deref()).ok().flatten();
        let since = crate::model::now_ms() - 90 * 86_400_000;
        Ok(ConnectionDetail {
            tenant: scope.tenant().slug.clone(),
            provider_app: app.name.clone(),
            preset: app.preset.clone(),
            provider_name: preset.map(|p| p.name.clone()),
            scopes: scope_views(&connection, preset),
            history: self.connection_history(id, None, history)?,
            daily: self.daily_counts(id, since)?,
            inspection: scope.inspect(id)?,
            anomalies: self.connection_anomalies(tenant, id)?,
            binding: connection.binding(),
            status_steps: crate::status::StatusFacts::from(&connection)
                .steps(crate::model::now_ms()),
            connection,
        })
    }
}

#[cfg(test)]
mod tests;
