//! Demo mode (`--demo`): the embedded demo identity provider on 127.0.0.1 and a demo tenant
//! whose provider app points at it, so a newcomer can connect, see scopes, expiry and history,
//! and revoke, with no network. Unless `GRANTKEEPER_HOME` says otherwise, the demo keeps its own
//! vault (`~/.local/share/grantkeeper-demo`) apart from the real one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::model::{ProviderApp, TenantId};
use grantkeeper_core::provider_app::{EndpointSource, ProviderAppSpec};
use grantkeeper_core::{paths, Error, Vault};
use grantkeeper_demo_idp::{DemoIdp, CLIENT_ID, DEFAULT_PORT};

static ENABLED: AtomicBool = AtomicBool::new(false);
static IDP: OnceLock<DemoIdp> = OnceLock::new();

/// The demo tenant's slug and its provider app's name.
const TENANT: (&str, &str) = ("demo-client", "Demo Client");
const APP: &str = "demo";

/// Whether the app runs in demo mode (asked for with `--demo`).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Asks for demo mode: the vault is then opened by [`start`].
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Points `GRANTKEEPER_HOME` at the demo's own vault unless it is set. Call before any other
/// thread starts.
pub fn use_demo_home() {
    if std::env::var_os(paths::HOME_ENV).is_none_or(|h| h.is_empty()) {
        if let Some(data) = dirs::data_dir() {
            std::env::set_var(paths::HOME_ENV, data.join("grantkeeper-demo"));
        }
    }
}

/// Starts the demo provider and makes sure the demo tenant and provider app exist; returns the
/// opened vault for the window to use (after [`use_demo_home`]).
pub fn start() -> Result<Vault, String> {
    start_idp()?;
    let home = paths::default_home().ok_or("cannot find a data folder")?;
    let vault = crate::state::open_vault(&home).map_err(|e| e.to_string())?;
    let actor = Actor::new(ActorKind::App).with_hint(Some("demo set-up".into()));
    let tenant = match vault.find_tenant(TENANT.0) {
        Ok(t) => t,
        Err(Error::NotFound { .. }) => vault
            .create_tenant(TENANT.1, Some(TENANT.0), "Created by --demo", &actor)
            .map_err(|e| e.to_string())?,
        Err(e) => return Err(e.to_string()),
    };
    ensure_app(&vault, &tenant.id, &actor).map_err(|e| e.to_string())?;
    Ok(vault)
}

/// Starts the embedded demo provider on 127.0.0.1 unless it runs already.
fn start_idp() -> Result<(), String> {
    if IDP.get().is_some() {
        return Ok(());
    }
    let idp = DemoIdp::start(DEFAULT_PORT).map_err(|e| {
        format!("127.0.0.1:{DEFAULT_PORT} is not free for the demo provider ({e}); is another demo running?")
    })?;
    let _ = IDP.set(idp);
    Ok(())
}

/// The tenant's demo provider app (`demo`), registered if it does not exist yet.
fn ensure_app(vault: &Vault, tenant: &TenantId, actor: &Actor) -> Result<ProviderApp, Error> {
    let scope = vault.tenant(tenant)?;
    match scope.provider_app(APP) {
        Err(Error::NotFound { .. }) => scope.register_provider_app(
            ProviderAppSpec {
                name: APP.into(),
                preset: Some("grantkeeper-demo".into()),
                endpoints: EndpointSource::Preset {
                    vars: Default::default(),
                },
                client_id: CLIENT_ID.into(),
                client_secret: None,
                client_auth: None,
                dpop: None,
                client_key_pem: None,
                client_cert_pem: None,
                trusted_ca_pem: None,
                scopes: None,
                redirect: None,
                port: None,
                relay_url: None,
            },
            actor,
        ),
        found => found,
    }
}

/// Offers the demo provider in a real vault (the first run's welcome): starts it and gives
/// `tenant` a provider app for it. Its grants end when the app quits, like in `--demo`.
pub fn add_to_tenant(
    vault: &Vault,
    tenant: &TenantId,
    actor: &Actor,
) -> Result<ProviderApp, String> {
    start_idp()?;
    ensure_app(vault, tenant, actor).map_err(|e| e.to_string())
}
