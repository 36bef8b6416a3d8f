//! Revoking grants at the provider in each provider's style, then forgetting them here; deleting
//! a provider app with the connections it holds.

use crate::audit::{Actor, EventKind, NewEvent};
use crate::catalog::Revocation;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{ConnectionId, ConnectionStatus, TenantId};
use crate::oauth::protocol::Revocable;
use crate::oauth::OAuthError;
use crate::secret::{AccessToken, RefreshToken};
use crate::vault::{ConnectionFilter, TenantVault, Vault};
use serde_json::json;

use super::{DeletedConnection, RevokeOutcome};
use crate::store::{SecretColumn, LOCK_WAIT};

impl Vault {
    /// Deletes a tenant after revoking each of its grants at the provider (a provider that does
    /// not confirm does not stop the deletion: its outcome says so); then
    /// [`Vault::delete_tenant`] removes its keys, which crypto-shreds whatever copies remain.
    pub fn revoke_and_delete_tenant(
        &self,
        id: &TenantId,
        actor: &Actor,
    ) -> Result<Vec<DeletedConnection>> {
        let scope = self.tenant(id)?;
        let filter = ConnectionFilter {
            tenant: Some(id.clone()),
            status: None,
        };
        let mut deleted = Vec::new();
        for c in self.connections(&filter)? {
            let revocation = if c.status == ConnectionStatus::Revoked {
                None
            } else {
                Some(scope.revoke(&c.id, actor)?)
            };
            deleted.push(DeletedConnection {
                name: c.name,
                revocation,
            });
        }
        drop(scope);
        self.delete_tenant(id, actor)?;
        Ok(deleted)
    }
}

impl TenantVault<'_> {
    /// Deletes a connection, revoking its grant at the provider first when `revoke` is set and
    /// it was not revoked already (a failed revocation keeps the connection).
    pub fn revoke_and_delete(
        &self,
        id: &ConnectionId,
        revoke: bool,
        actor: &Actor,
    ) -> Result<Option<RevokeOutcome>> {
        let outcome = if revoke && self.row(id)?.status != ConnectionStatus::Revoked {
            Some(self.revoke(id, actor)?)
        } else {
            None
        };
        self.delete_connection(id, actor)?;
        Ok(outcome)
    }

    /// Deletes a provider app. One that connections use is deleted only `with_connections`:
    /// each is revoked at the provider and deleted first (see [`Self::revoke_and_delete`]).
    pub fn delete_provider_app(
        &self,
        id_or_name: &str,
        with_connections: bool,
        actor: &Actor,
    ) -> Result<Vec<DeletedConnection>> {
        let app = self.provider_app(id_or_name)?;
        let using = self.store.connections_using(&app.id)?;
        if !using.is_empty() && !with_connections {
            let names: Vec<&str> = using.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::Invalid(format!(
                "provider app '{}/{}' has {} connection(s) ({}): delete them first, or delete them with it (each is revoked at the provider first)",
                self.tenant.slug,
                app.name,
                using.len(),
                names.join(", ")
            )));
        }
        let mut deleted = Vec::new();
        for c in using {
            let revocation = self.revoke_and_delete(&c.id, true, actor)?;
            deleted.push(DeletedConnection {
                name: c.name,
                revocation,
            });
        }
        let event = NewEvent::new(EventKind::ConfigChanged, actor)
            .tenant(&self.tenant.id)
            .detail(json!({ "change": "provider_app_deleted", "name": app.name, "connections": deleted.len() }));
        self.store.delete_provider_app(&app.id, event)?;
        Ok(deleted)
    }

    /// Revokes the grant at the provider (RFC 7009 or the provider's own method), then forgets
    /// its tokens locally, recording whether the provider confirmed.
    pub fn revoke(&self, id: &ConnectionId, actor: &Actor) -> Result<RevokeOutcome> {
        let _lock = self.store.lock_grant(id, &Deadline::within(LOCK_WAIT))?;
        let ctx = self.grant_context(id)?;
        let (client, preset) = (&ctx.client, ctx.preset);
        let rt = self.store.refresh_token(id)?;
        let access = self.cached_access_token(id)?;
        let method = preset
            .map(|p| p.revocation.clone())
            .unwrap_or(Revocation::Rfc7009);
        let http = &ctx.http;
        let attempt = (|| -> Result<String, OAuthError> {
            if let Revocation::Manual { instructions } = &method {
                return Err(OAuthError::Config(format!(
                    "this provider has no revocation API: {instructions}"
                )));
            }
            // Every style goes to the app's own revocation URL, as registered.
            let url = ctx.revocation_url()?;
            match &method {
                Revocation::Rfc7009 | Revocation::Manual { .. } => {
                    let client = ctx.protocol(http);
                    let mut done = Vec::new();
                    if let Some(rt) = &rt {
                        client.revoke(&url, Revocable::Refresh(&RefreshToken::new(rt.expose())))?;
                        done.push("refresh token");
                    }
                    if let Some(at) = &access {
                        client.revoke(&url, Revocable::Access(at))?;
                        done.push("access token");
                    }
                    if done.is_empty() {
                        Ok("nothing to revoke: the connection held no token".into())
                    } else {
                        Ok(format!("the provider revoked the {}", done.join(" and ")))
                    }
                }
                Revocation::BearerPost { .. } => {
                    let at = access.as_ref().ok_or_else(|| {
                        OAuthError::Config("no access token to revoke with".into())
                    })?;
                    let auth = format!("Bearer {}", at.expose());
                    let resp = http.post_form(&url, &[("Authorization", &auth)], &[])?;
                    check_revocation_status(resp.status)?;
                    Ok("the provider revoked the token".into())
                }
                Revocation::BasicDeleteJson { field, .. } => {
                    let at = access
                        .as_ref()
                        .ok_or_else(|| OAuthError::Config("no access token to revoke".into()))?;
                    let secret = client.secret.as_ref().ok_or_else(|| {
                        OAuthError::Config("revoking needs the client secret".into())
                    })?;
                    use base64::Engine;
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        client.id,
                        secret.expose()
                    ));
                    let auth = format!("Basic {basic}");
                    let resp = http.send_json(
                        "DELETE",
                        &url,
                        &[("Authorization", &auth), ("Accept", "application/json")],
                        &json!({ field: at.expose() }),
                    )?;
                    check_revocation_status(resp.status)?;
                    Ok("the provider deleted the authorization".into())
                }
            }
        })();
        let (confirmed, detail) = match attempt {
            Ok(d) => (true, d),
            Err(e) => (false, format!("not revoked at the provider: {e}")),
        };
        let event = self
            .event(EventKind::Revoked, id, actor)
            .detail(json!({ "at_provider": confirmed, "detail": detail }));
        self.store.forget_tokens(id, &detail, event)?;
        Ok(RevokeOutcome {
            revoked_at_provider: confirmed,
            detail,
            caveat: "Access tokens already issued may keep working until they expire; revoking a grant does not recall them everywhere.".into(),
        })
    }

    pub(super) fn cached_access_token(&self, id: &ConnectionId) -> Result<Option<AccessToken>> {
        Ok(self
            .store
            .secret(id, SecretColumn::AccessToken)?
            .map(|t| AccessToken::new(t.expose())))
    }
}

fn check_revocation_status(status: u16) -> Result<(), OAuthError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(OAuthError::Provider {
            error: format!("http_{status}"),
            description: Some("the revocation endpoint refused".into()),
            status,
        })
    }
}
