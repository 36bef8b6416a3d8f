use crate::audit::{EventKind, HistoryFilter};
use crate::error::Error;
use crate::model::{Endpoints, RedirectMode};
use crate::oauth::stub::{Stub, StubResponse};
use crate::secret::ClientSecret;
use crate::store::NewProviderApp;
use crate::test_support::{acme, cli, new_connection, public_app, temp_vault, tokens};
use crate::vault::Vault;

use super::ProviderAppEdit;

/// The `config_changed` events' details, oldest first.
fn config_changes(v: &Vault) -> Vec<serde_json::Value> {
    let filter = HistoryFilter {
        kind: Some(EventKind::ConfigChanged),
        ..HistoryFilter::default()
    };
    let mut events = v.history(&filter).unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| e.detail.unwrap_or_default())
        .collect()
}

#[test]
fn an_edit_changes_the_settings_keeps_them_authenticated_and_is_recorded() {
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    let app = t
        .add_provider_app(public_app("idp", Endpoints::default()), &cli())
        .unwrap();
    let crm = new_connection(&app.id, "crm");
    t.store_connection(crm, tokens("1"), &cli()).unwrap();
    let edited = t
        .edit_provider_app(
            "idp",
            ProviderAppEdit {
                client_id: Some("new-client".into()),
                client_secret: Some(ClientSecret::new("s3cret-value")),
                scopes: Some(vec!["read".into(), "write".into()]),
                redirect: Some(RedirectMode::Relay),
                port: Some(Some(8765)),
                relay_url: Some(Some("https://relay.example/callback".into())),
                dpop: Some(false),
                ..ProviderAppEdit::default()
            },
            &cli(),
        )
        .unwrap();
    assert_eq!(
        edited.changed,
        [
            "client id",
            "client secret",
            "scopes",
            "redirect",
            "port",
            "relay URL",
            "DPoP"
        ]
    );
    assert_eq!(edited.reconsent, ["crm"], "granted to the old client id");
    // Read back through the settings' MAC check.
    let app = t.provider_app("idp").unwrap();
    assert_eq!(app.client_id, "new-client");
    assert!(app.has_client_secret);
    assert_eq!(app.default_scopes, ["read", "write"]);
    assert_eq!(
        app.dpop,
        Some(false),
        "kept, and covered by the settings' MAC"
    );
    assert_eq!(
        (
            app.redirect_mode,
            app.redirect_port,
            app.relay_url.as_deref()
        ),
        (
            RedirectMode::Relay,
            Some(8765),
            Some("https://relay.example/callback")
        )
    );
    let secret = t.client_secret(&app.id).unwrap().unwrap();
    assert_eq!(secret.expose(), "s3cret-value");
    let last = config_changes(&v).pop().unwrap();
    assert_eq!(last["change"], "provider_app_edited");
    assert_eq!(last["changed"][1], "client secret");
    assert!(!last.to_string().contains("s3cret-value"));

    // Removing the secret makes a public client; an edit that changes nothing writes nothing.
    let removed = t
        .edit_provider_app(
            "idp",
            ProviderAppEdit {
                remove_client_secret: true,
                ..ProviderAppEdit::default()
            },
            &cli(),
        )
        .unwrap();
    assert_eq!(removed.changed, ["client secret"]);
    assert!(removed.reconsent.is_empty());
    assert!(t.client_secret(&app.id).unwrap().is_none());
    assert!(!t.provider_app("idp").unwrap().has_client_secret);
    let before = config_changes(&v).len();
    let same = t
        .edit_provider_app(
            "idp",
            ProviderAppEdit {
                client_id: Some("new-client".into()),
                ..ProviderAppEdit::default()
            },
            &cli(),
        )
        .unwrap();
    assert!(same.changed.is_empty());
    assert_eq!(config_changes(&v).len(), before);
}

#[test]
fn an_edit_that_cannot_work_is_refused_and_changes_nothing() {
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    t.add_provider_app(public_app("idp", Endpoints::default()), &cli())
        .unwrap();
    let refused = |edit: ProviderAppEdit, expect: &str| {
        let e = t.edit_provider_app("idp", edit, &cli()).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains(expect), "{e}");
    };
    refused(
        ProviderAppEdit {
            redirect: Some(RedirectMode::Relay),
            ..ProviderAppEdit::default()
        },
        "relay page",
    );
    refused(
        ProviderAppEdit {
            relay_url: Some(Some("http://relay.example/".into())),
            ..ProviderAppEdit::default()
        },
        "HTTPS",
    );
    refused(
        ProviderAppEdit {
            client_id: Some(" ".into()),
            ..ProviderAppEdit::default()
        },
        "client id",
    );
    refused(
        ProviderAppEdit {
            client_secret: Some(ClientSecret::new("x")),
            remove_client_secret: true,
            ..ProviderAppEdit::default()
        },
        "not both",
    );
    let app = t.provider_app("idp").unwrap();
    assert_eq!(
        (app.client_id.as_str(), app.redirect_mode),
        ("cid", RedirectMode::Loopback)
    );
    // A relay page served on this machine's loopback address is accepted.
    let local = t
        .add_provider_app(
            NewProviderApp {
                relay_url: Some("http://127.0.0.1:8080/relay/".into()),
                ..public_app("local", Endpoints::default())
            },
            &cli(),
        )
        .unwrap();
    assert!(local.relay_url.is_some());
}

#[test]
fn an_app_in_use_is_deleted_only_with_its_connections_each_revoked_first() {
    let stub = Stub::start(|_| StubResponse::json(200, "{}"));
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    let endpoints = Endpoints {
        token: Some(format!("{}/token", stub.base)),
        revocation: Some(format!("{}/revoke", stub.base)),
        ..Endpoints::default()
    };
    let app = t
        .add_provider_app(public_app("idp", endpoints), &cli())
        .unwrap();
    for name in ["crm", "erp"] {
        let c = new_connection(&app.id, name);
        t.store_connection(c, tokens(name), &cli()).unwrap();
    }
    let e = t.delete_provider_app("idp", false, &cli()).unwrap_err();
    assert!(e.to_string().contains("2 connection(s) (crm, erp)"), "{e}");
    assert!(t.connection_named("crm").is_ok() && t.provider_app("idp").is_ok());

    let deleted = t.delete_provider_app("idp", true, &cli()).unwrap();
    let names: Vec<&str> = deleted.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["crm", "erp"]);
    assert!(deleted
        .iter()
        .all(|d| d.revocation.as_ref().is_some_and(|r| r.revoked_at_provider)));
    let revoked = stub.requests.lock().unwrap();
    assert!(revoked
        .iter()
        .any(|r| r.path == "/revoke" && r.body.contains("rt-crm")));
    assert!(revoked
        .iter()
        .any(|r| r.path == "/revoke" && r.body.contains("rt-erp")));
    assert!(matches!(
        t.connection_named("crm"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(t.provider_app("idp"), Err(Error::NotFound { .. })));
    let last = config_changes(&v).pop().unwrap();
    assert_eq!(
        (last["change"].as_str(), last["connections"].as_u64()),
        (Some("provider_app_deleted"), Some(2))
    );
    // An app nobody uses goes at once.
    t.add_provider_app(public_app("spare", Endpoints::default()), &cli())
        .unwrap();
    assert!(t
        .delete_provider_app("spare", false, &cli())
        .unwrap()
        .is_empty());
}

#[test]
fn discovery_decides_the_authentication_method_when_none_is_chosen() {
    use crate::catalog::ClientAuth::{self, ClientSecretBasic, ClientSecretPost, PrivateKeyJwt};
    let methods = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let d = |preset: ClientAuth, secret: bool, m: &[&str]| {
        super::default_client_auth(preset, secret, &methods(m))
    };
    // The default stands where the server takes it, or says nothing.
    assert_eq!(d(ClientSecretBasic, true, &[]), None);
    assert_eq!(d(ClientSecretBasic, true, &["client_secret_basic"]), None);
    assert_eq!(d(ClientSecretPost, true, &["client_secret_post"]), None);
    assert_eq!(
        d(ClientSecretBasic, false, &["none", "private_key_jwt"]),
        None
    );
    // Otherwise the secret method it lists, or private_key_jwt for a client without a secret.
    assert_eq!(
        d(
            ClientSecretBasic,
            true,
            &["client_secret_post", "private_key_jwt"]
        ),
        Some(ClientSecretPost)
    );
    assert_eq!(
        d(ClientSecretPost, true, &["client_secret_basic"]),
        Some(ClientSecretBasic)
    );
    assert_eq!(d(ClientSecretBasic, true, &["private_key_jwt"]), None);
    assert_eq!(
        d(
            ClientSecretBasic,
            false,
            &["client_secret_basic", "private_key_jwt"]
        ),
        Some(PrivateKeyJwt)
    );

    // Registered from an issuer that takes only private_key_jwt: a key pair, its JWK shown.
    let stub = Stub::start(|req| {
        let base = format!(
            "http://{}",
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                .unwrap()
                .1
        );
        StubResponse::json(
            200,
            &serde_json::json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/auth"),
                "token_endpoint": format!("{base}/token"),
                "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
            })
            .to_string(),
        )
    });
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    let spec = |name: &str, secret: Option<&str>| super::ProviderAppSpec {
        name: name.into(),
        preset: None,
        endpoints: super::EndpointSource::Issuer {
            issuer: stub.base.clone(),
        },
        client_id: "cid".into(),
        client_secret: secret.map(ClientSecret::new),
        client_auth: None,
        dpop: None,
        client_key_pem: None,
        client_cert_pem: None,
        trusted_ca_pem: None,
        scopes: None,
        redirect: None,
        port: None,
        relay_url: None,
    };
    let keyed = t
        .register_provider_app(spec("keyed", None), &cli())
        .unwrap();
    assert_eq!(keyed.client_auth, Some(PrivateKeyJwt));
    let jwks = t.client_jwk("keyed").unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let posted = t
        .register_provider_app(spec("posted", Some("s3cret")), &cli())
        .unwrap();
    assert_eq!(posted.client_auth, Some(ClientSecretPost));
    assert!(t.client_jwk("posted").is_err());

    // What the window shows to register: public material only, from the same functions.
    let keyed = t.client_public_material("keyed").unwrap();
    let shown: serde_json::Value = serde_json::from_str(keyed.jwks.as_deref().unwrap()).unwrap();
    assert_eq!(shown, jwks);
    assert!(!keyed.jwks.unwrap().contains("\"d\""));
    assert_eq!(keyed.certificate_pem, None);
    let none = t.client_public_material("posted").unwrap();
    assert_eq!((none.jwks, none.certificate_pem), (None, None));
    let mut self_signed = spec("cert", None);
    self_signed.client_auth = Some(crate::catalog::ClientAuth::SelfSignedTlsClientAuth);
    t.register_provider_app(self_signed, &cli()).unwrap();
    let cert = t.client_public_material("cert").unwrap();
    let pem = cert.certificate_pem.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE KEY"));
    assert!(cert.jwks.unwrap().contains("x5c"));
}

#[test]
fn removing_the_secret_makes_a_secret_method_public_and_a_new_secret_is_sent() {
    use crate::model::ClientAuth;
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    let mut spec = public_app("idp", Endpoints::default());
    spec.client_secret = Some(ClientSecret::new("first-secret"));
    spec.client_auth = Some(ClientAuth::ClientSecretPost);
    t.add_provider_app(spec, &cli()).unwrap();
    let remove = ProviderAppEdit {
        remove_client_secret: true,
        ..ProviderAppEdit::default()
    };
    let edited = t.edit_provider_app("idp", remove, &cli()).unwrap();
    assert_eq!(edited.changed, ["client secret"]);
    // Read back through the settings' MAC: the method is stored with the secret's removal.
    let app = t.provider_app("idp").unwrap();
    assert_eq!(
        (app.has_client_secret, app.client_auth),
        (false, Some(ClientAuth::None))
    );
    let registered = super::registration(&super::RegistrationDraft::of(&app)).unwrap();
    assert_eq!(registered.client, super::ClientKind::Public);

    // A secret again: sent as the preset says (no method of its own), a confidential client.
    let set = ProviderAppEdit {
        client_secret: Some(ClientSecret::new("second-secret")),
        ..ProviderAppEdit::default()
    };
    t.edit_provider_app("idp", set, &cli()).unwrap();
    let app = t.provider_app("idp").unwrap();
    assert_eq!((app.has_client_secret, app.client_auth), (true, None));
    let registered = super::registration(&super::RegistrationDraft::of(&app)).unwrap();
    assert_eq!(registered.client, super::ClientKind::Confidential);
}

#[test]
fn an_edit_from_the_window_keeps_what_it_does_not_name_and_null_clears() {
    let keep: ProviderAppEdit = serde_json::from_str(r#"{"client_id": "x"}"#).unwrap();
    assert_eq!((keep.port, keep.relay_url), (None, None));
    let clear: ProviderAppEdit =
        serde_json::from_str(r#"{"port": null, "relay_url": null}"#).unwrap();
    assert_eq!((clear.port, clear.relay_url), (Some(None), Some(None)));
    let set: ProviderAppEdit =
        serde_json::from_str(r#"{"port": 8765, "relay_url": "https://r.example/relay/"}"#).unwrap();
    assert_eq!(set.port, Some(Some(8765)));
    assert_eq!(set.relay_url, Some(Some("https://r.example/relay/".into())));
}

mod registration {
    use super::super::{registration, ClientKind, RegistrationDraft, RegistrationField};
    use crate::model::RedirectMode;

    fn draft(preset: &str) -> RegistrationDraft {
        RegistrationDraft {
            preset: Some(preset.into()),
            ..RegistrationDraft::default()
        }
    }

    #[test]
    fn a_loopback_redirect_is_shown_as_the_app_sends_it() {
        // Any port: the path on 127.0.0.1, and what is sent.
        let r = registration(&draft("github")).unwrap();
        assert_eq!(r.redirect, RedirectMode::Loopback);
        assert_eq!(r.redirect_uri.as_deref(), Some("http://127.0.0.1/callback"));
        assert!(r
            .redirect_detail
            .contains("http://127.0.0.1:<port>/callback"));
        assert_eq!(r.port, None);
        assert_eq!(r.problem, None);
        // A provider that matches the port too: the default port, or the chosen one.
        let r = registration(&draft("salesforce")).unwrap();
        assert_eq!(
            r.redirect_uri.as_deref(),
            Some("http://127.0.0.1:8765/callback")
        );
        assert_eq!(r.port, Some(super::super::DEFAULT_FIXED_PORT));
        let mut chosen = draft("xero");
        chosen.port = Some(9100);
        let r = registration(&chosen).unwrap();
        assert_eq!(
            r.redirect_uri.as_deref(),
            Some("http://127.0.0.1:9100/callback")
        );
        assert_eq!(
            r.scopes,
            crate::catalog::Catalog::builtin()
                .get("xero")
                .unwrap()
                .default_scopes
        );
        assert_eq!(r.client, ClientKind::Public);
        assert!(r.client_detail.contains("usually have a client secret"));
        // A secret method without the secret (one being removed) is a public client.
        let mut removing = draft("xero");
        removing.client_auth = Some(crate::model::ClientAuth::ClientSecretBasic);
        assert_eq!(registration(&removing).unwrap().client, ClientKind::Public);
    }

    #[test]
    fn an_https_only_provider_needs_the_relay_page_and_says_which_field() {
        let r = registration(&draft("slack")).unwrap();
        assert_eq!(r.redirect, RedirectMode::Paste);
        assert_eq!(r.redirect_uri, None);
        let p = r.problem.unwrap();
        assert_eq!(p.field, RegistrationField::RelayUrl);
        assert!(p.message.contains("relay/"), "{}", p.message);
        assert!(
            !p.message.contains("--"),
            "no command-line flag: {}",
            p.message
        );

        let mut loopback = draft("quickbooks");
        loopback.redirect = Some(RedirectMode::Loopback);
        let p = registration(&loopback).unwrap().problem.unwrap();
        assert_eq!(p.field, RegistrationField::Redirect);

        let mut relay = draft("slack");
        relay.redirect = Some(RedirectMode::Relay);
        let p = registration(&relay).unwrap().problem.unwrap();
        assert_eq!(p.field, RegistrationField::RelayUrl);
        relay.relay_url = Some("http://relay.example/relay/".into());
        let p = registration(&relay).unwrap().problem.unwrap();
        assert!(p.message.contains("HTTPS"), "{}", p.message);
        relay.relay_url = Some("https://relay.example/relay/".into());
        relay.has_client_secret = true;
        let r = registration(&relay).unwrap();
        assert_eq!(r.problem, None);
        assert_eq!(
            r.redirect_uri.as_deref(),
            Some("https://relay.example/relay/")
        );
        assert_eq!(r.client, ClientKind::Confidential);
        assert!(r.client_detail.contains("client_secret_basic"));
        // Without a chosen mode, a relay page makes it the relay.
        relay.redirect = None;
        assert_eq!(registration(&relay).unwrap().redirect, RedirectMode::Relay);
    }

    #[test]
    fn a_pasted_address_is_a_registered_one() {
        let mut paste = draft("generic-oidc");
        paste.redirect = Some(RedirectMode::Paste);
        let r = registration(&paste).unwrap();
        assert_eq!(
            r.redirect_uri.as_deref(),
            Some("http://127.0.0.1:8765/callback")
        );
        assert_eq!(r.port, Some(8765));
        assert!(registration(&RegistrationDraft {
            preset: Some("no-such-preset".into()),
            ..RegistrationDraft::default()
        })
        .is_err());
    }
}

/// `provider add --auth` with a method the preset's provider does not accept is refused, with
/// the ones it does; nothing is registered.
#[test]
fn a_method_the_catalog_says_the_provider_refuses_is_refused() {
    let (_dir, _kc, v) = temp_vault();
    let t = acme(&v);
    let spec = super::ProviderAppSpec {
        name: "gh".into(),
        preset: Some("github".into()),
        endpoints: super::EndpointSource::Preset {
            vars: Default::default(),
        },
        client_id: "cid".into(),
        client_secret: None,
        client_auth: Some(crate::model::ClientAuth::PrivateKeyJwt),
        dpop: None,
        client_key_pem: None,
        client_cert_pem: None,
        trusted_ca_pem: None,
        scopes: None,
        redirect: None,
        port: None,
        relay_url: None,
    };
    let err = t
        .register_provider_app(spec, &cli())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not accept private_key_jwt; it accepts: client_secret_post"),
        "{err}"
    );
    assert!(t.provider_apps().unwrap().is_empty());
}
