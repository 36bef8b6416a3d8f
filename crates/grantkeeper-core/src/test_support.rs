//! What the core's unit tests share: a vault in a temporary folder over an in-memory keychain,
//! the tenant they use, and the provider apps, grants and tokens they store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::audit::{Actor, ActorKind};
use crate::keychain::MemoryKeychain;
use crate::model::{
    now_ms, AccountIdentity, ConnectionId, Endpoints, ExpirySource, ProviderAppId, RedirectMode,
    TenantId,
};
use crate::secret::{AccessToken, RefreshToken, TokenSet};
use crate::store::{NewConnection, NewProviderApp};
use crate::vault::{TenantVault, Vault};

/// A new vault at [`home`] of a new temporary folder (gone when the folder is dropped).
pub(crate) fn temp_vault() -> (tempfile::TempDir, Arc<MemoryKeychain>, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let kc = Arc::new(MemoryKeychain::default());
    let v = Vault::open(&home(&dir), kc.clone()).unwrap();
    (dir, kc, v)
}

/// The vault's folder inside a [`temp_vault`]'s temporary folder, to open it again.
pub(crate) fn home(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("home")
}

/// The actor of the tests' operations.
pub(crate) fn cli() -> Actor {
    Actor::new(ActorKind::Cli)
}

/// The tenant `acme`, created and opened.
pub(crate) fn acme(v: &Vault) -> TenantVault<'_> {
    let t = v.create_tenant("Acme", Some("acme"), "", &cli()).unwrap();
    v.tenant(&t.id).unwrap()
}

/// A public client (client id `cid`, no secret, loopback redirect, no default scopes).
pub(crate) fn public_app(name: &str, endpoints: Endpoints) -> NewProviderApp {
    NewProviderApp {
        name: name.into(),
        preset: None,
        endpoints,
        client_id: "cid".into(),
        client_secret: None,
        redirect_mode: RedirectMode::Loopback,
        client_auth: None,
        dpop: None,
        client_key: None,
        redirect_port: None,
        relay_url: None,
        default_scopes: vec![],
    }
}

/// A grant of `app` named `name`: no scopes, no account, its access token valid for an hour.
pub(crate) fn new_connection(app: &ProviderAppId, name: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        provider_app_id: app.clone(),
        account: AccountIdentity::default(),
        scopes_requested: vec![],
        scopes_granted: None,
        consented_by: None,
        access_expiry: Some((now_ms() + 3_600_000, ExpirySource::Response)),
        refresh_expires_at: None,
        refresh_hard_expires_at: None,
        metadata: BTreeMap::new(),
        dpop_key: None,
    }
}

/// Access token `at-{tag}` and refresh token `rt-{tag}`.
pub(crate) fn tokens(tag: &str) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(format!("at-{tag}")),
        refresh_token: Some(RefreshToken::new(format!("rt-{tag}"))),
        id_token: None,
    }
}

/// Tenant `acme` with the public app `idp` and its grant `crm` holding [`tokens`]`(tag)`.
pub(crate) fn acme_crm(v: &Vault, tag: &str) -> (TenantId, ConnectionId) {
    let t = acme(v);
    let app = t
        .add_provider_app(public_app("idp", Endpoints::default()), &cli())
        .unwrap();
    let c = t
        .store_connection(new_connection(&app.id, "crm"), tokens(tag), &cli())
        .unwrap();
    (t.tenant.id.clone(), c.id)
}
