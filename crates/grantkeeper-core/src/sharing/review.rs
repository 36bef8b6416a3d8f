//! An admin's review of a team's shared grants, from the team vault's custom metadata alone:
//! no secret is read, so a reviewer's policy needs `read` on metadata paths only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::bao::{BaoClient, BaoError};
use crate::error::Result;
use crate::Vault;

/// Requests to the team vault in flight at once during a review.
const PARALLEL: usize = 16;

/// One shared grant as the team vault describes it.
#[derive(Debug, Clone, Serialize)]
pub struct SharedGrant {
    /// The tenant's id.
    pub tenant: String,
    /// The connection's id.
    pub connection: String,
    /// The review metadata (name, provider app, account, scopes, status, expiry, last refresh
    /// and by whom).
    pub metadata: Map<String, Value>,
}

impl Vault {
    /// Every grant shared through `team` that this member's policy lets them see, from the team
    /// vault's metadata (tenants the policy hides are left out).
    pub fn team_review(&self, team: &str) -> Result<Vec<SharedGrant>> {
        let config = self.teams.get();
        let login = config
            .teams
            .get(team)
            .ok_or_else(|| crate::Error::NotFound {
                what: "team",
                name: team.to_owned(),
            })?;
        let client = login.client(self.http.clone())?;
        let mut listed = Vec::new();
        let mut missing = Vec::new();
        for folder in client.list("tenants/")? {
            let tenant = folder.trim_end_matches('/').to_owned();
            let grants = format!("tenants/{tenant}/grants/");
            let keys = match client.list(&grants) {
                Ok(keys) => keys,
                Err(BaoError::NotShared { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            // One request for the whole folder where the server offers it (OpenBao), else one
            // metadata read per grant (HashiCorp Vault, or a policy without the path).
            let mut detailed = match client.list_detailed(&grants) {
                Ok(found) => found,
                Err(BaoError::NotShared { .. } | BaoError::Refused(_)) => Map::new(),
                Err(e) => return Err(e.into()),
            };
            for key in keys {
                match detailed.remove(&key) {
                    Some(Value::Object(metadata)) => listed.push(SharedGrant {
                        tenant: tenant.clone(),
                        connection: key,
                        metadata,
                    }),
                    _ => missing.push((tenant.clone(), key)),
                }
            }
        }
        listed.extend(read_all(&client, &missing)?);
        listed.sort_by(|a, b| (&a.tenant, &a.connection).cmp(&(&b.tenant, &b.connection)));
        Ok(listed)
    }
}

/// Reads the metadata of every `(tenant, connection)`, [`PARALLEL`] at a time, in order.
fn read_all(client: &BaoClient, paths: &[(String, String)]) -> Result<Vec<SharedGrant>> {
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<(usize, SharedGrant)>> = Mutex::default();
    let failed: Mutex<Option<BaoError>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(paths.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((tenant, connection)) = paths.get(i) else {
                    return;
                };
                match client.read_metadata(&format!("tenants/{tenant}/grants/{connection}")) {
                    Ok(Some(metadata)) => found.lock().unwrap_or_else(|p| p.into_inner()).push((
                        i,
                        SharedGrant {
                            tenant: tenant.clone(),
                            connection: connection.clone(),
                            metadata,
                        },
                    )),
                    Ok(None) | Err(BaoError::NotShared { .. }) => {}
                    Err(e) => {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        next.store(paths.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e.into());
    }
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_by_key(|(i, _)| *i);
    Ok(found.into_iter().map(|(_, g)| g).collect())
}
