//! Team membership and shared tenants: logging in to a team vault, its status, sharing a tenant
//! with the team and joining a tenant a teammate shared (see [`crate::team`]).

mod members;
mod oidc;
mod review;
mod status;
mod sync;

pub use oidc::{PendingTeamLogin, DEFAULT_OIDC_MOUNT};
pub use review::SharedGrant;
pub use status::TenantSharing;
pub use sync::Synced;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::audit::{Actor, EventKind, NewEvent};
use crate::bao::{BaoClient, BaoError};
use crate::crypto::DataKey;
use crate::error::{Error, Result};
use crate::model::{ConnectionStatus, ProviderApp, Tenant, TenantId};
use crate::secret::{AccessToken, IdToken, SecretText, TokenSet};
use crate::store::{NewConnection, NewProviderApp, SecretColumn};
use crate::team::config::{key_aad, SharedTenant};
use crate::team::keys::wrap_for;
use crate::team::record::{tenant_path, GrantRecord};
use crate::team::{TeamConfig, TeamContext, TeamLogin, TeamStore};
use crate::Vault;

/// How a member logs in to a team vault.
#[derive(Debug)]
pub enum Login {
    /// An OpenBao token.
    Token(SecretText),
    /// AppRole (for CI machines).
    AppRole {
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: SecretText,
    },
}

/// A team vault as this member sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamStatus {
    /// The team's name here.
    pub name: String,
    /// The server.
    pub url: String,
    /// The KV v2 mount.
    pub mount: String,
    /// This member's name in the team.
    pub member: String,
    /// Whether the server answered and the login is valid.
    pub reachable: bool,
    /// What is wrong, when something is.
    pub problem: Option<String>,
    /// Seconds the login has left (0: it does not expire).
    pub login_ttl_secs: Option<u64>,
    /// The tenants shared through it (slugs).
    pub tenants: Vec<String>,
    /// The tenants shared through it, with their members.
    pub shared: Vec<TenantSharing>,
}

/// What sharing a tenant did.
#[derive(Debug, Clone, Serialize)]
pub struct Shared {
    /// The members the tenant's data key was wrapped for.
    pub members: Vec<String>,
    /// Provider apps published.
    pub apps: usize,
    /// Connections published.
    pub connections: usize,
}

impl Vault {
    fn team_client(&self, login: &TeamLogin) -> Result<BaoClient> {
        login.client(self.http.clone())
    }

    /// Logs in to a team vault as `name` (a new team, or a new login for a known one: its
    /// address and member key kept) and publishes this member's public key.
    pub fn team_login(
        &self,
        name: &str,
        place: Option<(&str, &str)>,
        login: Login,
        member: Option<&str>,
    ) -> Result<TeamStatus> {
        crate::vault::validate_slug(name)?;
        let config = self.teams.get();
        let known = config.teams.get(name).cloned();
        let (url, mount) = match (place, &known) {
            (Some(p), _) => p,
            (None, Some(k)) => (k.url.as_str(), k.mount.as_str()),
            (None, None) => {
                return Err(Error::NotFound {
                    what: "team",
                    name: name.to_owned(),
                });
            }
        };
        let client = match login {
            Login::Token(t) => BaoClient::new(self.http.clone(), url, mount, t)?,
            Login::AppRole { role_id, secret_id } => {
                BaoClient::approle_login(self.http.clone(), url, mount, &role_id, &secret_id)?
            }
        };
        let info = client.lookup_self()?;
        let member = member
            .map(str::to_owned)
            .or_else(|| known.as_ref().map(|k| k.member.clone()))
            .unwrap_or_else(|| info.display_name.trim_start_matches("token-").to_owned());
        crate::vault::validate_slug(&member).map_err(|_| {
            Error::Invalid(format!(
                "'{member}' cannot be a member name: choose one with --member (letters, digits, -)"
            ))
        })?;
        let entry = match known {
            Some(k) if k.url == client.url() && k.mount == client.mount() && k.member == member => {
                k.with_token(client.token())
            }
            _ => TeamLogin::new(&client, &member),
        };
        let public = entry.member_key()?.public();
        let path = format!("members/{member}");
        match client.read(&path)? {
            Some(v) if v.data.get("public_key").and_then(Value::as_str) == Some(public.as_str()) => {}
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "the team already has a member '{member}' with another key; log in with another --member name"
                )))
            }
            None => {
                let data: Map<String, Value> = [("public_key".to_owned(), json!(public))].into_iter().collect();
                client.write_cas(&path, &data, 0)?;
            }
        }
        self.change_teams(|c| {
            c.teams.insert(name.to_owned(), entry);
            Ok(())
        })?;
        Ok(self
            .team_status()?
            .into_iter()
            .find(|t| t.name == name)
            .expect("just saved"))
    }

    /// Every team vault this vault is logged in to, asked whether it is reachable.
    pub fn team_status(&self) -> Result<Vec<TeamStatus>> {
        let config = self.teams.get();
        let sharing = self.tenant_sharing()?;
        let mut out = Vec::new();
        for (name, login) in &config.teams {
            let looked = self.team_client(login).and_then(|c| Ok(c.lookup_self()?));
            let tenants = config
                .tenants
                .iter()
                .filter(|(_, s)| &s.team == name)
                .map(|(id, _)| self.find_tenant(id).map_or_else(|_| id.clone(), |t| t.slug))
                .collect();
            out.push(TeamStatus {
                name: name.clone(),
                url: login.url.clone(),
                mount: login.mount.clone(),
                member: login.member.clone(),
                reachable: looked.is_ok(),
                problem: looked.as_ref().err().map(ToString::to_string),
                login_ttl_secs: looked.ok().map(|i| i.ttl_secs),
                tenants,
                shared: sharing
                    .iter()
                    .filter(|s| &s.team == name)
                    .cloned()
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The OpenBao policy that gives a member a tenant shared through `team` (see
    /// [`crate::team::tenant_policy`]).
    pub fn team_policy(&self, team: &str, tenant: &TenantId) -> Result<String> {
        let config = self.teams.get();
        let login = self.login_of(&config, team)?;
        Ok(crate::team::tenant_policy(&login.mount, tenant))
    }

    fn login_of<'c>(&self, config: &'c TeamConfig, team: &str) -> Result<&'c TeamLogin> {
        config.teams.get(team).ok_or_else(|| {
            Error::Invalid(format!("this vault is not logged in to a team named '{team}': run grantkeeper team connect first"))
        })
    }

    /// A team store over a tenant's local store, with `key`.
    fn team_store(
        &self,
        tenant: &TenantId,
        login: &TeamLogin,
        key: DataKey,
    ) -> Result<TeamStore<'_>> {
        Ok(TeamStore::new(TeamContext {
            local: Box::new(self.local_store(tenant)?),
            bao: self.team_client(login)?,
            tenant: tenant.clone(),
            key,
            member: login.member.clone(),
            cache: &self.teams,
            keychain: self.keychain.clone(),
            vault_id: self.id().to_owned(),
        }))
    }

    /// Shares a tenant with a team: its data key wrapped for every member whose key the team
    /// vault publishes, its provider apps and grants (refresh tokens included) published, sealed.
    /// From then on its refresh tokens live in the team vault only.
    pub fn share_tenant(&self, tenant: &TenantId, team: &str, actor: &Actor) -> Result<Shared> {
        let config = self.teams.get();
        let login = self.login_of(&config, team)?.clone();
        if let Some(s) = config.tenants.get(tenant.as_str()) {
            return Err(Error::Invalid(format!(
                "this tenant is shared through the team '{}' already",
                s.team
            )));
        }
        let t = self.find_tenant(tenant.as_str())?;
        // A DPoP- or certificate-bound grant works only with this device's key: a teammate
        // could not use it.
        let filter = crate::ConnectionFilter {
            tenant: Some(t.id.clone()),
            status: None,
        };
        if let Some(bound) = self
            .connections(&filter)?
            .into_iter()
            .find(|c| c.binding().is_some())
        {
            return Err(Error::Invalid(format!(
                "'{}/{}' is bound to this device's DPoP key or client certificate, so a teammate could not use it: delete it (or connect it again with --dpop off on its provider app) before sharing the tenant",
                t.slug, bound.name
            )));
        }
        let client = self.team_client(&login)?;
        let key = DataKey::generate();
        let mut wrapped = Map::new();
        for member in client
            .list("members/")?
            .iter()
            .filter(|m| !m.ends_with('/'))
        {
            let Some(found) = client.read(&format!("members/{member}"))? else {
                continue;
            };
            let Some(public) = found.data.get("public_key").and_then(Value::as_str) else {
                continue;
            };
            wrapped.insert(
                member.clone(),
                json!(wrap_for(public, &key, &key_aad(&t.id, member))?),
            );
        }
        let mine = wrapped
            .get(&login.member)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Invalid("this member's key is not published in the team vault: run grantkeeper team login".into()))?;
        let folder = tenant_path(&t.id);
        if client.read(&format!("{folder}/tenant"))?.is_some() {
            return Err(Error::AlreadyExists {
                what: "shared tenant",
                name: t.slug,
            });
        }
        let about: Map<String, Value> = [
            ("slug", json!(t.slug)),
            ("name", json!(t.name)),
            ("notes", json!(t.notes)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        client.write_cas(&format!("{folder}/keys"), &wrapped, 0)?;
        let store = self.team_store(&t.id, &login, key)?;
        let local = store.local();
        let apps = local.provider_apps()?;
        for app in &apps {
            store.publish_app(app)?;
        }
        let mut connections = 0;
        for app in &apps {
            for c in local.connections_using(&app.id)? {
                let Some(access) = local.secret(&c.id, SecretColumn::AccessToken)? else {
                    continue;
                };
                let tokens = TokenSet {
                    access_token: AccessToken::new(access.expose()),
                    refresh_token: local.refresh_token(&c.id)?,
                    id_token: local
                        .secret(&c.id, SecretColumn::IdToken)?
                        .map(|t| IdToken::new(t.expose())),
                };
                store.publish_grant(&c.id, &tokens)?;
                connections += 1;
            }
        }
        // Last: the tenant is listed for joining once everything else is in place.
        client.write_cas(&format!("{folder}/tenant"), &about, 0)?;
        let shared = SharedTenant {
            team: team.to_owned(),
            wrapped_key: mine,
        };
        self.change_teams(|c| {
            c.tenants.insert(t.id.to_string(), shared);
            Ok(())
        })?;
        self.record_team_event(
            &t.id,
            actor,
            json!({ "shared_with_team": team, "connections": connections }),
        )?;
        Ok(Shared {
            members: wrapped.keys().cloned().collect(),
            apps: apps.len(),
            connections,
        })
    }

    /// Joins a tenant a teammate shared: creates it here with the same id, its provider apps
    /// and grants copied from the team vault (refresh tokens stay there).
    pub fn join_tenant(&self, slug_or_id: &str, team: &str, actor: &Actor) -> Result<Tenant> {
        let config = self.teams.get();
        let login = self.login_of(&config, team)?.clone();
        let client = self.team_client(&login)?;
        let mut found = None;
        for folder in client.list("tenants/")? {
            let id = folder.trim_end_matches('/');
            let about = match client.read(&format!("tenants/{id}/tenant")) {
                Ok(Some(v)) => v.data,
                Ok(None) | Err(BaoError::NotShared { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if id == slug_or_id || about.get("slug").and_then(Value::as_str) == Some(slug_or_id) {
                found = Some((TenantId::from_string(id), about));
                break;
            }
        }
        let (id, about) = found.ok_or_else(|| Error::NotFound {
            what: "tenant shared with you",
            name: slug_or_id.to_owned(),
        })?;
        let keys = client
            .read(&format!("{}/keys", tenant_path(&id)))?
            .map(|v| v.data)
            .unwrap_or_default();
        let wrapped = keys.get(&login.member).and_then(Value::as_str).ok_or_else(|| {
            Error::Invalid(format!(
                "the tenant's key was not wrapped for '{0}' yet: ask a teammate who uses it to run grantkeeper tenant share {1} --member {0}",
                login.member,
                about_slug(&about, slug_or_id)
            ))
        })?;
        let key = login
            .member_key()?
            .unwrap(wrapped, &key_aad(&id, &login.member))?;
        let text = |k: &str| {
            about
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tenant = match self.find_tenant(id.as_str()) {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => self.create_tenant_as(
                id.clone(),
                &text("name"),
                Some(&text("slug")),
                &text("notes"),
                actor,
            )?,
            Err(e) => return Err(e),
        };
        let store = self.team_store(&id, &login, key)?;
        let apps = self.join_apps(&client, &store, actor)?;
        self.join_grants(&client, &store, &apps)?;
        let shared = SharedTenant {
            team: team.to_owned(),
            wrapped_key: wrapped.to_owned(),
        };
        self.change_teams(|c| {
            c.tenants.insert(id.to_string(), shared);
            Ok(())
        })?;
        self.record_team_event(&id, actor, json!({ "joined_from_team": team }))?;
        Ok(tenant)
    }

    /// Copies the team's provider apps of a tenant here; returns the local ones by their id in
    /// the team vault.
    fn join_apps(
        &self,
        client: &BaoClient,
        store: &TeamStore<'_>,
        actor: &Actor,
    ) -> Result<BTreeMap<String, ProviderApp>> {
        let local = store.local();
        let mut by_remote = BTreeMap::new();
        let folder = format!("{}/apps", tenant_path(&local_tenant(store)));
        for key in client.list(&format!("{folder}/"))? {
            let Some(v) = client.read(&format!("{folder}/{key}"))? else {
                continue;
            };
            let app: ProviderApp = serde_json::from_value(
                v.data.get("app").cloned().unwrap_or_default(),
            )
            .map_err(|e| Error::Invalid(format!("a shared provider app is not readable ({e})")))?;
            let here = match local.provider_app(&app.name) {
                Ok(a) => a,
                Err(Error::NotFound { .. }) => {
                    let secret = match v.data.get("client_secret").and_then(Value::as_str) {
                        Some(s) => Some(store.open_app_secret(app.id.as_str(), s)?),
                        None => None,
                    };
                    local.add_provider_app(
                        NewProviderApp {
                            name: app.name.clone(),
                            preset: app.preset.clone(),
                            endpoints: app.endpoints.clone(),
                            client_id: app.client_id.clone(),
                            client_secret: secret,
                            client_auth: app.client_auth,
                            client_key: None,
                            dpop: app.dpop,
                            redirect_mode: app.redirect_mode,
                            redirect_port: app.redirect_port,
                            relay_url: app.relay_url.clone(),
                            default_scopes: app.default_scopes.clone(),
                        },
                        actor,
                    )?
                }
                Err(e) => return Err(e),
            };
            by_remote.insert(app.id.to_string(), here);
        }
        Ok(by_remote)
    }

    /// Copies the team's grants of a tenant here: records and the last access token, no refresh
    /// token.
    fn join_grants(
        &self,
        client: &BaoClient,
        store: &TeamStore<'_>,
        apps: &BTreeMap<String, ProviderApp>,
    ) -> Result<usize> {
        let mut added = 0;
        let local = store.local();
        let tenant = local_tenant(store);
        let folder = format!("{}/grants", tenant_path(&tenant));
        for key in client.list(&format!("{folder}/"))? {
            let Some(v) = client.read(&format!("{folder}/{key}"))? else {
                continue;
            };
            let record = GrantRecord::from_data(v.data)?;
            let c = &record.connection;
            if local.connection(&c.id).is_ok() {
                continue;
            }
            let (Some(app), Some(access), ConnectionStatus::Active) = (
                apps.get(c.provider_app_id.as_str()),
                &record.access_token,
                record.status,
            ) else {
                continue;
            };
            let tokens = TokenSet {
                access_token: AccessToken::new(
                    store
                        .open_grant_secret("access_token", &c.id, access)?
                        .expose(),
                ),
                refresh_token: None,
                id_token: match &record.id_token {
                    Some(t) => Some(IdToken::new(
                        store.open_grant_secret("id_token", &c.id, t)?.expose(),
                    )),
                    None => None,
                },
            };
            let new = NewConnection {
                name: c.name.clone(),
                provider_app_id: app.id.clone(),
                account: c.account.clone(),
                scopes_requested: c.scopes_requested.clone(),
                scopes_granted: c.scopes_granted_reported.then(|| c.scopes_granted.clone()),
                consented_by: c.consented_by.clone(),
                access_expiry: record.access_expires_at.zip(record.access_expiry_source),
                refresh_expires_at: c.refresh_expires_at,
                refresh_hard_expires_at: c.refresh_hard_expires_at,
                metadata: c.metadata.clone(),
                dpop_key: None,
            };
            let event = NewEvent::new(EventKind::ConfigChanged, &store_actor())
                .tenant(&tenant)
                .connection(&c.id)
                .detail(json!({ "joined": c.name }));
            local.insert_connection(&c.id, &new, &tokens, event)?;
            added += 1;
        }
        Ok(added)
    }

    fn record_team_event(&self, tenant: &TenantId, actor: &Actor, detail: Value) -> Result<()> {
        self.write(|tx| {
            crate::audit::append(
                tx,
                &NewEvent::new(EventKind::ConfigChanged, actor)
                    .tenant(tenant)
                    .detail(detail),
            )?;
            Ok(())
        })
    }
}

/// The slug a shared tenant's `tenant` record gives, else what the member asked for.
fn about_slug<'a>(about: &'a Map<String, Value>, asked: &'a str) -> &'a str {
    about.get("slug").and_then(Value::as_str).unwrap_or(asked)
}

fn local_tenant(store: &TeamStore<'_>) -> TenantId {
    store.tenant_id().clone()
}

fn store_actor() -> Actor {
    Actor::new(crate::audit::ActorKind::Background).with_hint(Some("team join".into()))
}
