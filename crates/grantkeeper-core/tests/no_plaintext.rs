//! Plants distinctive token strings through every storage path and scans the SQLite file, its
//! write-ahead log and all log output for them. Runs in its own test binary so that the log
//! capture sees every log line of the process. Needs the private Secret Service session that
//! `scripts/run-tests` starts.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use grantkeeper_core::catalog::ClientAuth;
use grantkeeper_core::keychain::{EntryName, Keychain};
use grantkeeper_core::model::{Endpoints, RedirectMode, TokenBinding};
use grantkeeper_core::secret::SecretText;
use grantkeeper_core::{NewProviderApp, Vault};

/// Collects everything the core logs, at every level.
#[derive(Clone, Default)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        // The vault's own log file gets every line too, so the folder scan covers it.
        if let Some(file) = LOG_FILE.lock().unwrap().as_mut() {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The vault folder's log file (`grantkeeper_core::logging`), once the vault exists.
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

#[test]
fn planted_tokens_appear_nowhere_in_the_database_or_logs() {
    let kc = keychain();
    let sink = LogSink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let planted = [
        "PLANTED-ACCESS-7f3a9c",
        "PLANTED-REFRESH-2b8d1e",
        "PLANTED-IDTOKEN-5c4e0a",
        "PLANTED-CLIENTSECRET-9e1f7b",
        "PLANTED-ACCESS2-0d2c6f",
        "PLANTED-CLIENTKEY-3a7e5d",
        "PLANTED-DPOPKEY-8b1c4f",
        "PLANTED-CERTKEY-6d2a9e",
    ];
    {
        let vault = Vault::open(dir.path(), kc.clone()).unwrap();
        *LOG_FILE.lock().unwrap() = grantkeeper_core::logging::open(dir.path());
        assert!(
            LOG_FILE.lock().unwrap().is_some(),
            "the vault's log file opens"
        );
        let t = vault.create_tenant("Plant", None, "", &actor()).unwrap();
        let scope = vault.tenant(&t.id).unwrap();
        let a = app(&scope, planted[3]);
        // A private_key_jwt app's private key: to the keychain, and nowhere else.
        let keyed = scope
            .add_provider_app(
                NewProviderApp {
                    name: "keyed".into(),
                    preset: None,
                    endpoints: Endpoints {
                        token: Some("https://idp.example/token".into()),
                        ..Endpoints::default()
                    },
                    client_id: "client-2".into(),
                    client_secret: None,
                    client_auth: Some(ClientAuth::PrivateKeyJwt),
                    dpop: None,
                    client_key: Some(SecretText::new(planted[5])),
                    redirect_mode: RedirectMode::Loopback,
                    redirect_port: None,
                    relay_url: None,
                    default_scopes: vec![],
                },
                &actor(),
            )
            .unwrap();
        let key_entry = EntryName::client_key(vault.id(), t.id.as_str(), keyed.id.as_str());
        assert_eq!(
            kc.get(&key_entry).unwrap().map(|k| k.expose().to_owned()),
            Some(planted[5].to_owned())
        );
        // Not a usable key: the error (logged, as a front end would) names no part of it.
        let err = scope.client_jwk("keyed").unwrap_err();
        tracing::error!("{err} / {err:?}");
        // A client certificate's key (mutual TLS): the same.
        let certified = scope
            .add_provider_app(
                NewProviderApp {
                    name: "certified".into(),
                    preset: None,
                    endpoints: Endpoints {
                        token: Some("https://idp.example/token".into()),
                        ..Endpoints::default()
                    },
                    client_id: "client-3".into(),
                    client_secret: None,
                    client_auth: Some(ClientAuth::SelfSignedTlsClientAuth),
                    dpop: None,
                    client_key: Some(SecretText::new(planted[7])),
                    redirect_mode: RedirectMode::Loopback,
                    redirect_port: None,
                    relay_url: None,
                    default_scopes: vec![],
                },
                &actor(),
            )
            .unwrap();
        let cert_entry = EntryName::client_key(vault.id(), t.id.as_str(), certified.id.as_str());
        assert_eq!(
            kc.get(&cert_entry).unwrap().map(|k| k.expose().to_owned()),
            Some(planted[7].to_owned())
        );
        for err in [
            scope.client_jwk("certified").unwrap_err(),
            scope.client_certificate("certified").unwrap_err(),
        ] {
            tracing::error!("{err} / {err:?}");
        }
        tracing::info!("{keyed:?}");
        let c = scope
            .store_connection(
                new_conn(&a, "crm"),
                tokens(planted[0], planted[1], Some(planted[2])),
                &actor(),
            )
            .unwrap();
        let handed = scope
            .access_token(
                &c.id,
                grantkeeper_core::grants::DEFAULT_MIN_VALID,
                &grantkeeper_core::deadline::Deadline::default(),
                &actor(),
            )
            .unwrap();
        tracing::info!("handed {} {handed:?}", handed.token);
        scope.client_secret(&a.id).unwrap();
        // A failed store (duplicate name) goes through the error paths too.
        let err = scope
            .store_connection(
                new_conn(&a, "crm"),
                tokens(planted[4], planted[1], None),
                &actor(),
            )
            .unwrap_err();
        tracing::error!("{err} / {err:?}");
        let c2 = scope
            .store_connection(
                new_conn(&a, "erp"),
                tokens(planted[4], "rt-other", None),
                &actor(),
            )
            .unwrap();
        scope.delete_connection(&c2.id, &actor()).unwrap();
        // A DPoP-bound grant's key: to the keychain, and nowhere else; gone with its connection.
        let mut bound = new_conn(&a, "bound");
        bound.metadata.insert(
            TokenBinding::METADATA_KEY.into(),
            TokenBinding::Dpop.as_str().into(),
        );
        bound.dpop_key = Some(SecretText::new(planted[6]));
        let c3 = scope
            .store_connection(bound, tokens(planted[4], "rt-bound", None), &actor())
            .unwrap();
        assert_eq!(c3.binding(), Some(TokenBinding::Dpop));
        let dpop_entry = EntryName::dpop_key(vault.id(), t.id.as_str(), c3.id.as_str());
        assert_eq!(
            kc.get(&dpop_entry).unwrap().map(|k| k.expose().to_owned()),
            Some(planted[6].to_owned())
        );
        // Not a usable key: the error (logged, as a front end would) names no part of it.
        let err = scope.dpop_key(&c3).unwrap_err();
        tracing::error!("{err} / {err:?}");
        scope.delete_connection(&c3.id, &actor()).unwrap();
        assert!(kc.get(&dpop_entry).unwrap().is_none());
        scan(dir.path(), &planted);
        // The key leaves the keychain with its app.
        scope.delete_provider_app("keyed", false, &actor()).unwrap();
        assert!(kc.get(&key_entry).unwrap().is_none());
        scope
            .delete_provider_app("certified", false, &actor())
            .unwrap();
        assert!(kc.get(&cert_entry).unwrap().is_none());
        // Every event carries a fingerprint, not the token.
        for e in vault.recent_events(100).unwrap() {
            assert!(!format!("{e:?}").contains("PLANTED"));
        }
        assert!(vault
            .recent_events(100)
            .unwrap()
            .iter()
            .any(|e| e.fingerprint.as_deref() == Some(vault.fingerprint(planted[0]).as_str())));
        // Scan while open, so the write-ahead log still holds recent pages.
        scan(dir.path(), &planted);
    }
    scan(dir.path(), &planted);
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("connection stored"), "logging was captured");
    let file =
        std::fs::read_to_string(dir.path().join(grantkeeper_core::logging::LOG_FILE)).unwrap();
    assert!(
        file.contains("connection stored"),
        "the vault's log file was written and scanned"
    );
    for p in planted {
        assert!(!logs.contains(p), "{p} in logs");
    }
}

fn scan(dir: &Path, planted: &[&str]) {
    let mut scanned = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        scanned += 1;
        for p in planted {
            assert!(!file_contains(&path, p), "{p} found in {}", path.display());
        }
    }
    assert!(scanned >= 2, "database files were scanned");
}
