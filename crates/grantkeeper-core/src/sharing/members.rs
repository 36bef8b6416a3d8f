//! Late joiners: a member who connected to the team after a tenant was shared is given the
//! tenant's data key, wrapped for the public key they published (`members/<member>`), without
//! sharing the tenant again. Only a member who holds the key can do it; the team vault's policy
//! decides who may write the tenant's `keys` record.

use serde_json::{json, Value};

use crate::audit::Actor;
use crate::bao::BaoError;
use crate::error::{Error, Result};
use crate::model::TenantId;
use crate::team::config::key_aad;
use crate::team::keys::wrap_for;
use crate::team::record::tenant_path;
use crate::Vault;

use super::Shared;

impl Vault {
    /// Wraps a shared tenant's data key for `member` (their published key), so they can join it.
    /// Returns every member the key is now wrapped for.
    pub fn share_with_member(
        &self,
        tenant: &TenantId,
        member: &str,
        actor: &Actor,
    ) -> Result<Shared> {
        crate::vault::validate_slug(member)
            .map_err(|_| Error::Invalid(format!("'{member}' is not a member name")))?;
        let config = self.teams.get();
        let (shared, login) = config.shared(tenant)?.ok_or_else(|| {
            Error::Invalid(
                "this tenant is not shared yet: share it with a team first (grantkeeper tenant share TENANT --team NAME)".into(),
            )
        })?;
        let key = self.teams.data_key(tenant, shared, login)?;
        let client = login.client(self.http.clone())?;
        let public = client
            .read(&format!("members/{member}"))?
            .and_then(|v| v.data.get("public_key").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the team has no member '{member}' yet: ask them to run grantkeeper team connect, then try again"
                ))
            })?;
        let path = format!("{}/keys", tenant_path(tenant));
        let added = loop {
            let found = client.read(&path)?.ok_or_else(|| {
                Error::Invalid(
                    "the team vault holds no keys for this tenant: share it again (grantkeeper tenant share TENANT --team NAME)".into(),
                )
            })?;
            let mut wrapped = found.data;
            if wrapped.contains_key(member) {
                break (wrapped, false);
            }
            wrapped.insert(
                member.to_owned(),
                json!(wrap_for(&public, &key, &key_aad(tenant, member))?),
            );
            match client.write_cas(&path, &wrapped, found.version) {
                Ok(_) => break (wrapped, true),
                Err(BaoError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let (wrapped, new) = added;
        if new {
            self.record_team_event(
                tenant,
                actor,
                json!({ "shared_with_member": member, "team": shared.team }),
            )?;
        }
        Ok(Shared {
            members: wrapped.keys().cloned().collect(),
            apps: 0,
            connections: 0,
        })
    }
}
