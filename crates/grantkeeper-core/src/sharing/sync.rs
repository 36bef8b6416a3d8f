//! Keeping up with a team vault: the login renewed, the grants teammates added copied here, and
//! the team's history: each member's events on shared tenants, appended in batches to
//! `tenants/<tenant>/history/<member>/` in the team vault (a head record says how far), so an
//! admin's review shows who used which grant and when. Each member's own chain stays the
//! tamper-evident record; fingerprints are keyed per member, never tokens.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::audit::{Actor, HistoryFilter};
use crate::bao::BaoError;
use crate::error::Result;
use crate::model::TenantId;
use crate::{ConnectionFilter, Vault};

/// Events per batch record.
const BATCH: usize = 500;

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Synced {
    /// Team logins renewed (renewable tokens only).
    pub logins_renewed: usize,
    /// Shared connections teammates added, now here too.
    pub connections_added: usize,
    /// This member's events appended to the team history.
    pub history_events_appended: usize,
}

impl Vault {
    /// Renews every renewable team login, brings every shared tenant up to its team vault
    /// (provider apps and grants teammates added) and appends this member's new events to the
    /// team history.
    pub fn team_sync(&self, actor: &Actor) -> Result<Synced> {
        let config = self.teams.get();
        let mut synced = Synced::default();
        for login in config.teams.values() {
            let client = login.client(self.http.clone())?;
            if client.lookup_self()?.renewable {
                client.renew_self()?;
                synced.logins_renewed += 1;
            }
        }
        for (tenant, shared) in &config.tenants {
            let login = self.login_of(&config, &shared.team)?;
            let client = login.client(self.http.clone())?;
            let id = TenantId::from_string(tenant);
            let key = self.teams.data_key(&id, shared, login)?;
            let store = self.team_store(&id, login, key)?;
            let apps = self.join_apps(&client, &store, actor)?;
            synced.connections_added += self.join_grants(&client, &store, &apps)?;
        }
        synced.history_events_appended = self.push_team_history()?;
        Ok(synced)
    }

    /// Appends this member's events on shared tenants that the team's history lacks; returns
    /// how many. Another process pushing at the same time makes this one stop early.
    pub fn push_team_history(&self) -> Result<usize> {
        let config = self.teams.get();
        let mut pushed = 0;
        for (tenant, shared) in &config.tenants {
            let Some(login) = config.teams.get(&shared.team) else {
                continue;
            };
            let client = login.client(self.http.clone())?;
            let folder = format!("tenants/{tenant}/history/{}", login.member);
            let head = client.read(&format!("{folder}/head"))?;
            let (last, mut version) = head.map_or((0, 0), |h| {
                (
                    h.data.get("seq").and_then(Value::as_i64).unwrap_or(0),
                    h.version,
                )
            });
            let filter = ConnectionFilter {
                tenant: Some(TenantId::from_string(tenant)),
                status: None,
            };
            let mut events = Vec::new();
            for c in self.connections(&filter)? {
                let all = self.history(&HistoryFilter {
                    connection: Some(c.id),
                    since: None,
                    kind: None,
                    limit: u32::MAX,
                })?;
                events.extend(all.into_iter().filter(|e| e.seq > last));
            }
            events.sort_by_key(|e| e.seq);
            for batch in events.chunks(BATCH) {
                let (first, end) = (batch[0].seq, batch[batch.len() - 1].seq);
                let rows: Vec<Value> = batch
                    .iter()
                    .map(|e| {
                        json!({
                            "seq": e.seq, "ts": e.ts, "kind": e.kind.as_str(),
                            "connection": e.connection_id, "actor": e.actor,
                            "app_hint": e.app_hint, "fingerprint": e.fingerprint,
                        })
                    })
                    .collect();
                let data: Map<String, Value> =
                    [("events".to_owned(), json!(rows))].into_iter().collect();
                match client.write_cas(&format!("{folder}/{first:012}-{end:012}"), &data, 0) {
                    Ok(_) | Err(BaoError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
                let head: Map<String, Value> =
                    [("seq".to_owned(), json!(end))].into_iter().collect();
                match client.write_cas(&format!("{folder}/head"), &head, version) {
                    Ok(v) => version = v,
                    Err(BaoError::Conflict) => return Ok(pushed),
                    Err(e) => return Err(e.into()),
                }
                pushed += batch.len();
            }
        }
        Ok(pushed)
    }
}
