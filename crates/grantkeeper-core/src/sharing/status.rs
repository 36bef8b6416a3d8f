//! Which tenants are shared, with which team and members, and whether the team vault answers:
//! computed here once for the CLI's `team status` and the window's sidebar and tenant settings.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::bao::BaoClient;
use crate::error::Result;
use crate::model::TenantId;
use crate::team::record::tenant_path;
use crate::Vault;

/// The longest the status waits for a team vault (the window asks it while drawing).
const STATUS_BUDGET: Duration = Duration::from_secs(3);

/// A tenant shared through a team, as this member sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TenantSharing {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The team's name here.
    pub team: String,
    /// This member's name in the team.
    pub member: String,
    /// The members the tenant's key is wrapped for (empty while the team vault is unreachable).
    pub members: Vec<String>,
    /// Whether the team vault answered and the login is valid.
    pub reachable: bool,
    /// What is wrong, when something is (one line, says what to do).
    pub problem: Option<String>,
}

impl Vault {
    /// Every shared tenant with its team, members and whether the team vault answers (one
    /// login check per team and one read per tenant, each within a few seconds).
    pub fn tenant_sharing(&self) -> Result<Vec<TenantSharing>> {
        let config = self.teams.get();
        let until = Instant::now() + STATUS_BUDGET;
        let mut out = Vec::new();
        for (team, login) in &config.teams {
            let client = login.client(self.http.bounded_by(until))?;
            let checked = client.lookup_self().map(|_| ());
            for (tenant, _) in config.tenants.iter().filter(|(_, s)| &s.team == team) {
                let id = TenantId::from_string(tenant);
                let found = checked.clone().and_then(|()| members(&client, &id));
                out.push(TenantSharing {
                    tenant_id: id,
                    team: team.clone(),
                    member: login.member.clone(),
                    reachable: found.is_ok(),
                    problem: found.as_ref().err().map(ToString::to_string),
                    members: found.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}

/// The members a tenant's key is wrapped for.
fn members(
    client: &BaoClient,
    tenant: &TenantId,
) -> std::result::Result<Vec<String>, crate::bao::BaoError> {
    Ok(client
        .read(&format!("{}/keys", tenant_path(tenant)))?
        .map(|v| {
            v.data
                .into_iter()
                .filter(|(_, w)| matches!(w, Value::String(_)))
                .map(|(m, _)| m)
                .collect()
        })
        .unwrap_or_default())
}
