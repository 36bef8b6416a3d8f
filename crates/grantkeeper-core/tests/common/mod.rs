//! Helpers shared by the tests that use the real Secret Service.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::model::{
    AccountIdentity, Endpoints, ExpirySource, ProviderApp, RedirectMode,
};
use grantkeeper_core::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, TokenSet};
use grantkeeper_core::{NewConnection, NewProviderApp, TenantVault};

pub fn keychain() -> Arc<OsKeychain> {
    assert_eq!(
        std::env::var("GRANTKEEPER_TEST_SECRET_SERVICE").as_deref(),
        Ok("1"),
        "these tests need the private Secret Service session that scripts/run-tests starts"
    );
    Arc::new(OsKeychain::new(Duration::from_secs(20)))
}

pub fn actor() -> Actor {
    Actor::new(ActorKind::Cli)
}

pub fn app(t: &TenantVault<'_>, secret: &str) -> ProviderApp {
    t.add_provider_app(
        NewProviderApp {
            name: "idp".into(),
            preset: None,
            endpoints: Endpoints {
                token: Some("https://idp.example/token".into()),
                ..Endpoints::default()
            },
            client_id: "client-1".into(),
            client_secret: Some(ClientSecret::new(secret)),
            redirect_mode: RedirectMode::Loopback,
            client_auth: None,
            dpop: None,
            client_key: None,
            redirect_port: None,
            relay_url: None,
            default_scopes: vec!["openid".into()],
        },
        &actor(),
    )
    .unwrap()
}

pub fn new_conn(app: &ProviderApp, name: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        provider_app_id: app.id.clone(),
        account: AccountIdentity {
            subject: Some("user-1".into()),
            username: Some("ada@example.com".into()),
            org_id: None,
        },
        scopes_requested: vec!["openid".into(), "offline_access".into()],
        scopes_granted: None,
        consented_by: Some("ada@example.com".into()),
        access_expiry: Some((
            grantkeeper_core::model::now_ms() + 3_600_000,
            ExpirySource::Response,
        )),
        refresh_expires_at: None,
        refresh_hard_expires_at: None,
        metadata: BTreeMap::new(),
        dpop_key: None,
    }
}

pub fn tokens(access: &str, refresh: &str, id: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: Some(RefreshToken::new(refresh)),
        id_token: id.map(IdToken::new),
    }
}

/// `secret-tool search --all service grantkeeper` for the entries of one vault: (label and
/// attribute lines, secret) per item.
pub fn secret_tool_items(vault_id: &str) -> Vec<(Vec<String>, String)> {
    // secret-tool prints attributes on stderr and the rest on stdout: merge them unbuffered.
    let out = Command::new("sh")
        .args([
            "-c",
            "timeout 30 stdbuf -o0 -e0 secret-tool search --all service grantkeeper 2>&1",
        ])
        .output()
        .expect("secret-tool runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut items = Vec::new();
    let mut current: Option<(Vec<String>, String)> = None;
    for line in text.lines() {
        if line.starts_with('[') {
            if let Some(item) = current.take() {
                items.push(item);
            }
            current = Some((Vec::new(), String::new()));
        } else if let Some((meta, secret)) = current.as_mut() {
            match line.strip_prefix("secret = ") {
                Some(s) => *secret = s.to_owned(),
                None => meta.push(line.to_owned()),
            }
        }
    }
    items.extend(current);
    items.retain(|(meta, _)| meta.iter().any(|l| l.contains(vault_id)));
    items
}

pub fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The test identity provider (tests/idp/server.mjs, oidc-provider) on 127.0.0.1; stopped on drop.
pub struct Idp {
    pub issuer: String,
    child: std::process::Child,
}

impl Idp {
    /// Starts it with a JSON config (see tests/idp/server.mjs). A server that prints no ready
    /// line within 20 s is killed and started again, twice at most: runs of the full suite now
    /// and then see a server that never does (its stderr is in the last try's message).
    pub fn start(config: &serde_json::Value) -> Self {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::try_start(config) {
                Ok(idp) => return idp,
                // Straight to stderr, past the test harness's capture: a run shows each retry.
                Err(why) if tries < 3 => {
                    let _ = writeln!(std::io::stderr(), "test IdP start: {why}; again");
                }
                Err(why) => panic!("the test IdP did not start: {why}"),
            }
        }
    }

    fn try_start(config: &serde_json::Value) -> Result<Self, String> {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap().keep();
        let cfg = dir.join("idp.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let stderr = dir.join("stderr.log");
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/idp/server.mjs"))
            .args(["--port", "0", "--config"])
            .arg(&cfg)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("node runs the test IdP");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .filter(|line| !line.is_empty());
        let Some(line) = line else {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&stderr).unwrap_or_default();
            let last: Vec<&str> = said.lines().rev().take(20).collect();
            return Err(format!(
                "no ready line within 20 s; the end of its stderr: {last:?}"
            ));
        };
        let ready: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("ready line: {e}"))?;
        Ok(Idp {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            child,
        })
    }

    /// The server-side counters.
    pub fn stats(&self) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "10"])
            .arg(format!("{}/__test/stats", self.issuer))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test user's browser (tests/browser/gk-test-browser), for `$BROWSER`.
pub fn test_browser() -> std::path::PathBuf {
    repo_root().join("tests/browser/gk-test-browser")
}

/// A vault with tenant `acme`, a provider app `idp` for the test IdP's public client, and one
/// connection `main` consented through the test browser. Returns the vault and the connection id.
pub fn connected_vault(
    dir: &Path,
    idp: &Idp,
) -> (
    grantkeeper_core::Vault,
    grantkeeper_core::model::ConnectionId,
) {
    let vault = grantkeeper_core::Vault::open(dir, keychain()).unwrap();
    let t = vault
        .create_tenant("Acme", Some("acme"), "", &actor())
        .unwrap();
    let id = {
        let scope = vault.tenant(&t.id).unwrap();
        add_idp_app(&vault, &scope, idp);
        let (pending, params) = approve_in_browser(&scope, "main");
        scope.finish_connect(pending, &params, &actor()).unwrap().id
    };
    (vault, id)
}

/// Starts a sign-in to app `idp` for connection `name` and lets the test browser approve it;
/// returns the pending sign-in and the redirect it received, not yet finished.
pub fn approve_in_browser(
    scope: &TenantVault<'_>,
    name: &str,
) -> (
    grantkeeper_core::connect::PendingConnect,
    grantkeeper_core::oauth::loopback::CallbackParams,
) {
    use grantkeeper_core::connect::ConnectRequest;
    use grantkeeper_core::oauth::loopback::CancelToken;
    let mut pending = scope
        .begin_connect(ConnectRequest {
            name: name.into(),
            provider_app: "idp".into(),
            scopes: None,
            redirect: None,
        })
        .unwrap();
    Command::new(test_browser())
        .arg(&pending.url)
        .env("GK_TEST_BROWSER_ACTION", "approve")
        .status()
        .unwrap();
    let params = pending
        .wait_for_redirect(Duration::from_secs(60), &CancelToken::default())
        .unwrap();
    (pending, params)
}

/// Registers the test IdP's public client as provider app `idp` (discovery, loopback redirect).
pub fn add_idp_app(vault: &grantkeeper_core::Vault, scope: &TenantVault<'_>, idp: &Idp) {
    scope
        .add_provider_app(
            NewProviderApp {
                name: "idp".into(),
                preset: Some("generic-oidc".into()),
                endpoints: vault.discover(&idp.issuer).unwrap(),
                client_id: "grantkeeper-test".into(),
                client_secret: None,
                redirect_mode: RedirectMode::Loopback,
                client_auth: None,
                dpop: None,
                client_key: None,
                redirect_port: None,
                relay_url: None,
                default_scopes: ["openid", "email", "offline_access", "api:read"]
                    .map(String::from)
                    .to_vec(),
            },
            &actor(),
        )
        .unwrap();
}
