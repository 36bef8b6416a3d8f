use std::collections::BTreeSet;

use super::*;

/// Presets that know no scopes in advance: GitHub Apps ignore the scope parameter (the app's
/// permissions apply), and a generic OAuth 2.0 server has no standard scopes.
const SCOPELESS: &[&str] = &[
    "github-app",
    "github-enterprise-server-app",
    "generic-oauth2",
];

fn catalog() -> &'static Catalog {
    Catalog::builtin()
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A value for every variable of the preset.
fn test_values(p: &Preset) -> BTreeMap<String, String> {
    p.variables
        .iter()
        .map(|v| (v.name.clone(), "acme.example.com".to_owned()))
        .collect()
}

/// Every endpoint URL template of the preset, with its field name.
fn endpoint_templates(e: &Endpoints) -> Vec<(&'static str, &str)> {
    [
        ("issuer", &e.issuer),
        ("authorization", &e.authorization),
        ("token", &e.token),
        ("revocation", &e.revocation),
        ("introspection", &e.introspection),
        ("device_authorization", &e.device_authorization),
        ("jwks", &e.jwks),
        ("userinfo", &e.userinfo),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    .collect()
}

/// The README's list of rotating presets (with and without a reuse grace) is the catalog's.
#[test]
fn readme_lists_the_rotating_presets_as_the_catalog_does() {
    let readme = include_str!("../../../../README.md");
    let listed = |start: &str| -> BTreeSet<String> {
        let at = readme
            .find(start)
            .unwrap_or_else(|| panic!("README: '{start}'"));
        let item = &readme[at..];
        let item = &item[..item[2..].find("\n- ").map_or(item.len(), |i| i + 2)];
        // The pieces between backquotes: every second one.
        item.split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, code)| code.to_owned())
            .collect()
    };
    let rotating = |grace: bool| -> BTreeSet<String> {
        catalog()
            .providers
            .iter()
            .filter(|p| p.expiry.refresh_rotates && p.expiry.rotation_grace_secs.is_some() == grace)
            .map(|p| p.id.clone())
            .collect()
    };
    assert_eq!(listed("- With a reuse grace:"), rotating(true));
    assert_eq!(listed("- Strictly single use, no grace:"), rotating(false));
}

/// The URL held by the revocation method, if any.
fn revocation_url(p: &Preset) -> Option<&str> {
    match &p.revocation {
        Revocation::BearerPost { url } | Revocation::BasicDeleteJson { url, .. } => Some(url),
        Revocation::Rfc7009 | Revocation::Manual { .. } => None,
    }
}

/// The `{name}` placeholders in a template.
fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("unclosed placeholder") + open;
        out.push(rest[open + 1..close].to_owned());
        rest = &rest[close + 1..];
    }
    out
}

fn assert_https_url(preset: &str, what: &str, url: &str) {
    let parsed = url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{preset} {what}: '{url}' does not parse: {e}"));
    assert_eq!(
        parsed.scheme(),
        "https",
        "{preset} {what}: '{url}' is not https"
    );
    assert!(
        parsed.host_str().is_some_and(|h| !h.is_empty()),
        "{preset} {what}: '{url}' has no host"
    );
}

#[test]
fn catalog_builtin_parses() {
    let parsed = Catalog::parse(CATALOG_TOML).expect("the catalog parses");
    assert!(
        parsed.providers.len() >= 20,
        "only {} presets",
        parsed.providers.len()
    );
    assert_eq!(catalog().providers.len(), parsed.providers.len());
}

#[test]
fn catalog_ids_are_unique_kebab_case() {
    let mut seen = BTreeSet::new();
    for p in &catalog().providers {
        assert!(seen.insert(p.id.as_str()), "duplicate preset id {}", p.id);
        assert!(
            !p.id.is_empty()
                && !p.id.starts_with('-')
                && !p.id.ends_with('-')
                && !p.id.contains("--")
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "preset id '{}' is not kebab-case",
            p.id
        );
        assert!(!p.name.trim().is_empty(), "{} has no name", p.id);
    }
}

#[test]
fn catalog_has_the_expected_presets() {
    let expected = [
        "generic-oidc",
        "generic-oauth2",
        "salesforce",
        "salesforce-sandbox",
        "salesforce-my-domain",
        "google",
        "microsoft-entra",
        "slack",
        "slack-user",
        "github",
        "github-app",
        "github-enterprise-server",
        "github-enterprise-server-app",
        "xero",
        "quickbooks",
        "hubspot",
        "netsuite",
        "zoom",
        "atlassian",
        "dropbox",
        "box",
        "docusign",
        "okta",
        "auth0",
    ];
    for id in expected {
        assert!(catalog().get(id).is_ok(), "preset '{id}' is missing");
    }
    assert!(matches!(catalog().get("nope"), Err(CatalogError::UnknownPreset(id)) if id == "nope"));
}

#[test]
fn catalog_urls_are_https_before_and_after_resolving() {
    for p in &catalog().providers {
        assert_https_url(&p.id, "docs", &p.docs);
        let vals = test_values(p);
        let resolved = p.resolve(&vals).unwrap_or_else(|e| panic!("{}: {e}", p.id));
        let templates = endpoint_templates(&p.endpoints);
        assert!(!templates.is_empty(), "{} has no endpoints", p.id);
        if p.local {
            for (field, url) in templates {
                assert!(
                    url.starts_with("http://127.0.0.1:"),
                    "{} {field}: a local preset's '{url}' must be on 127.0.0.1",
                    p.id
                );
            }
            continue;
        }
        for (field, template) in templates {
            assert!(
                template.starts_with("https://"),
                "{} {field}: '{template}' is not https",
                p.id
            );
        }
        for (field, url) in endpoint_templates(&resolved) {
            assert!(
                !url.contains('{') && !url.contains('}'),
                "{} {field}: '{url}' is not fully resolved",
                p.id
            );
            assert_https_url(&p.id, field, url);
        }
        if let Some(template) = revocation_url(p) {
            assert!(
                template.starts_with("https://"),
                "{} revocation: '{template}' is not https",
                p.id
            );
            let url = p
                .fill(template, &vals)
                .unwrap()
                .replace("{client_id}", "Iv1.0123456789abcdef");
            assert!(
                !url.contains('{'),
                "{} revocation: '{url}' is not fully resolved",
                p.id
            );
            assert_https_url(&p.id, "revocation", &url);
        }
    }
}

#[test]
fn catalog_placeholders_are_declared_and_variables_used() {
    for p in &catalog().providers {
        let declared: BTreeSet<&str> = p.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            declared.len(),
            p.variables.len(),
            "{} declares a variable twice",
            p.id
        );
        let mut used = BTreeSet::new();
        for (field, template) in endpoint_templates(&p.endpoints) {
            for name in placeholders(template) {
                assert!(
                    declared.contains(name.as_str()),
                    "{} {field}: '{{{name}}}' is not declared",
                    p.id
                );
                used.insert(name);
            }
        }
        if let Some(template) = revocation_url(p) {
            for name in placeholders(template) {
                let client_id_ok = name == "client_id"
                    && matches!(p.revocation, Revocation::BasicDeleteJson { .. });
                assert!(
                    client_id_ok || declared.contains(name.as_str()),
                    "{} revocation: '{{{name}}}' is not declared",
                    p.id
                );
                used.insert(name);
            }
        }
        for v in &p.variables {
            assert!(
                used.contains(&v.name),
                "{}: variable '{}' is never used",
                p.id,
                v.name
            );
            assert!(
                !v.description.trim().is_empty(),
                "{}: variable '{}' has no description",
                p.id,
                v.name
            );
        }
    }
}

#[test]
fn catalog_scopes_have_meaning_and_risk() {
    for p in &catalog().providers {
        if !SCOPELESS.contains(&p.id.as_str()) {
            assert!(!p.scopes.is_empty(), "{} lists no scopes", p.id);
        }
        let mut names = BTreeSet::new();
        for s in &p.scopes {
            assert!(
                !s.name.trim().is_empty(),
                "{} has a scope without a name",
                p.id
            );
            assert!(
                names.insert(s.name.as_str()),
                "{} lists scope '{}' twice",
                p.id,
                s.name
            );
            let meaning = s.meaning.trim();
            assert!(
                !meaning.is_empty(),
                "{} scope '{}' has no meaning",
                p.id,
                s.name
            );
            assert!(
                !meaning.contains('\n'),
                "{} scope '{}': the meaning is one line",
                p.id,
                s.name
            );
            assert!(matches!(s.risk, Risk::Low | Risk::Medium | Risk::High));
        }
        for d in &p.default_scopes {
            assert!(
                p.scope(d).is_some(),
                "{}: default scope '{d}' is not in its scope list",
                p.id
            );
        }
        assert!(
            p.scope_separator == " " || p.scope_separator == ",",
            "{}: odd scope separator '{}'",
            p.id,
            p.scope_separator
        );
    }
    // A scope without a risk does not load.
    let no_risk = r#"
        [[provider]]
        id = "x"
        name = "X"
        docs = "https://example.com"
        endpoints = { token = "https://example.com/token" }
        pkce = "supported"
        client_auth = "none"
        revocation = { style = "rfc7009" }
        scopes = [{ name = "read", meaning = "Read" }]
    "#;
    assert!(matches!(
        Catalog::parse(no_risk),
        Err(CatalogError::Malformed(_))
    ));
}

#[test]
fn catalog_risk_levels_of_well_known_scopes() {
    let risk = |preset: &str, scope: &str| {
        catalog()
            .get(preset)
            .unwrap()
            .scope(scope)
            .unwrap_or_else(|| panic!("{preset} lacks {scope}"))
            .risk
    };
    assert_eq!(risk("salesforce", "full"), Risk::High);
    assert_eq!(risk("salesforce", "api"), Risk::High);
    assert_eq!(risk("salesforce", "id"), Risk::Low);
    assert_eq!(risk("google", "https://mail.google.com/"), Risk::High);
    assert_eq!(risk("google", "openid"), Risk::Low);
    assert_eq!(
        risk("microsoft-entra", "Directory.ReadWrite.All"),
        Risk::High
    );
    assert_eq!(risk("microsoft-entra", "User.Read"), Risk::Low);
    assert_eq!(risk("github", "repo"), Risk::High);
    assert_eq!(
        risk("quickbooks", "com.intuit.quickbooks.accounting"),
        Risk::High
    );
}

#[test]
fn catalog_rfc7009_presets_have_a_revocation_endpoint() {
    for p in &catalog().providers {
        // Discovery-only presets learn it from the issuer's metadata.
        let discovery_only = p.endpoints.authorization.is_none() && p.endpoints.issuer.is_some();
        if matches!(p.revocation, Revocation::Rfc7009) && !discovery_only {
            assert!(
                p.endpoints.revocation.is_some(),
                "{} revokes by RFC 7009 without an endpoint",
                p.id
            );
        }
        if !discovery_only {
            assert!(
                p.endpoints.authorization.is_some(),
                "{} has no authorization endpoint",
                p.id
            );
            assert!(
                p.endpoints.token.is_some(),
                "{} has no token endpoint",
                p.id
            );
        }
        if p.device_flow && !discovery_only {
            assert!(
                p.endpoints.device_authorization.is_some(),
                "{} has device_flow but no endpoint",
                p.id
            );
        }
        if let Revocation::Manual { instructions } = &p.revocation {
            assert!(
                !instructions.trim().is_empty(),
                "{} has empty revocation instructions",
                p.id
            );
        }
    }
}

#[test]
fn catalog_provider_quirks() {
    let slack = catalog().get("slack").unwrap();
    assert_eq!(slack.scope_separator, ",");
    assert_eq!(slack.scope_param, "scope");
    assert_eq!(slack.response.scope_separator, ",");
    assert_eq!(slack.response.ok_field.as_deref(), Some("ok"));
    assert_eq!(
        slack.response.metadata.get("team_id").map(String::as_str),
        Some("team.id")
    );
    assert_eq!(
        slack
            .response
            .metadata
            .get("enterprise_id")
            .map(String::as_str),
        Some("enterprise.id")
    );
    assert_eq!(
        slack
            .response
            .metadata
            .get("bot_user_id")
            .map(String::as_str),
        Some("bot_user_id")
    );
    assert!(slack.redirect.https_only);
    assert_eq!(
        slack.revocation,
        Revocation::BearerPost {
            url: "https://slack.com/api/auth.revoke".into()
        }
    );

    let user = catalog().get("slack-user").unwrap();
    assert_eq!(user.scope_param, "user_scope");
    assert_eq!(user.response.access_token, "authed_user.access_token");
    assert_eq!(user.response.scope, "authed_user.scope");
    assert_eq!(user.response.ok_field.as_deref(), Some("ok"));
    assert!(user.redirect.https_only);

    let xero = catalog().get("xero").unwrap();
    assert!(xero.expiry.refresh_rotates);
    assert_eq!(xero.expiry.rotation_grace_secs, Some(1800));
    assert_eq!(xero.expiry.refresh_idle_days, Some(60));
    assert_eq!(xero.expiry.access_default_secs, Some(1800));

    let qb = catalog().get("quickbooks").unwrap();
    assert_eq!(
        qb.response.refresh_expires_in.as_deref(),
        Some("x_refresh_token_expires_in")
    );
    assert_eq!(qb.response.redirect_metadata, vec!["realmId".to_owned()]);
    assert_eq!(
        (qb.expiry.refresh_idle_days, qb.expiry.refresh_max_days),
        (Some(100), Some(1825))
    );
    assert!(qb.redirect.https_only);

    let app = catalog().get("github-app").unwrap();
    assert_eq!(
        app.response.refresh_expires_in.as_deref(),
        Some("refresh_token_expires_in")
    );
    assert_eq!(app.expiry.access_default_secs, Some(8 * 3600));

    let google = catalog().get("google").unwrap();
    assert_eq!(
        google
            .authorize_params
            .get("access_type")
            .map(String::as_str),
        Some("offline")
    );
    let dropbox = catalog().get("dropbox").unwrap();
    assert_eq!(
        dropbox
            .authorize_params
            .get("token_access_type")
            .map(String::as_str),
        Some("offline")
    );
    let atlassian = catalog().get("atlassian").unwrap();
    assert_eq!(
        atlassian
            .authorize_params
            .get("audience")
            .map(String::as_str),
        Some("api.atlassian.com")
    );
    assert_eq!(
        atlassian.authorize_params.get("prompt").map(String::as_str),
        Some("consent")
    );
    assert_eq!(
        catalog().get("netsuite").unwrap().expiry.refresh_max_days,
        Some(7)
    );
}

#[test]
fn resolve_fills_placeholders() {
    let my_domain = catalog().get("salesforce-my-domain").unwrap();
    let e = my_domain
        .resolve(&values(&[("domain", "acme.my.salesforce.com")]))
        .unwrap();
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://acme.my.salesforce.com/services/oauth2/authorize")
    );
    assert_eq!(
        e.token.as_deref(),
        Some("https://acme.my.salesforce.com/services/oauth2/token")
    );
    assert_eq!(e.issuer.as_deref(), Some("https://acme.my.salesforce.com"));

    let okta = catalog().get("okta").unwrap();
    let e = okta
        .resolve(&values(&[("domain", "acme.okta.com")]))
        .unwrap();
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://acme.okta.com/oauth2/v1/authorize")
    );
    assert_eq!(
        e.device_authorization.as_deref(),
        Some("https://acme.okta.com/oauth2/v1/device/authorize")
    );
    assert_eq!(
        e.introspection.as_deref(),
        Some("https://acme.okta.com/oauth2/v1/introspect")
    );
    // A pasted URL with scheme and trailing slash is reduced to its host.
    let pasted = okta
        .resolve(&values(&[("domain", " https://acme.okta.com/ ")]))
        .unwrap();
    assert_eq!(pasted, e);

    let entra = catalog().get("microsoft-entra").unwrap();
    let e = entra.resolve(&BTreeMap::new()).unwrap();
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
    );
    let tenant = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";
    let e = entra.resolve(&values(&[("tenant", tenant)])).unwrap();
    assert_eq!(
        e.token.as_deref(),
        Some(format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token").as_str())
    );

    let netsuite = catalog().get("netsuite").unwrap();
    let e = netsuite
        .resolve(&values(&[("account", "123456-sb1")]))
        .unwrap();
    assert_eq!(
        e.token.as_deref(),
        Some("https://123456-sb1.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token")
    );
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://123456-sb1.app.netsuite.com/app/login/oauth2/authorize.nl")
    );

    // Presets without variables come out unchanged.
    let google = catalog().get("google").unwrap();
    assert_eq!(google.resolve(&BTreeMap::new()).unwrap(), google.endpoints);
}

#[test]
fn resolve_rejects_values_that_change_more_than_the_host() {
    let okta = catalog().get("okta").unwrap();
    for bad in [
        "acme.okta.com/evil",
        "evil.com/x?",
        "acme.okta.com?x=1",
        "acme.okta.com#frag",
        "user@evil.com",
        "acme okta.com",
        "evil.com\\acme.okta.com",
        "evil.com%2Fpath",
        "{domain}",
        "http://acme.okta.com",
        "",
        "   ",
    ] {
        let err = okta.resolve(&values(&[("domain", bad)])).unwrap_err();
        assert!(
            matches!(err, CatalogError::BadValue { ref variable, .. } if variable == "domain"),
            "'{bad}' was accepted"
        );
        let template = "https://{domain}/x";
        assert!(
            okta.fill(template, &values(&[("domain", bad)])).is_err(),
            "fill accepted '{bad}'"
        );
    }
    // A port is fine.
    let e = okta
        .resolve(&values(&[("domain", "acme.okta.com:8443")]))
        .unwrap();
    assert_eq!(
        e.token.as_deref(),
        Some("https://acme.okta.com:8443/oauth2/v1/token")
    );
}

#[test]
fn resolve_reports_a_missing_variable() {
    for (id, variable) in [
        ("salesforce-my-domain", "domain"),
        ("okta", "domain"),
        ("auth0", "domain"),
        ("netsuite", "account"),
        ("github-enterprise-server", "host"),
        ("generic-oidc", "issuer_host"),
    ] {
        let err = catalog()
            .get(id)
            .unwrap()
            .resolve(&BTreeMap::new())
            .unwrap_err();
        match err {
            CatalogError::MissingVariable {
                preset,
                variable: v,
                description,
            } => {
                assert_eq!(preset, id);
                assert_eq!(v, variable);
                assert!(!description.is_empty());
            }
            other => panic!("{id}: expected MissingVariable, got {other}"),
        }
    }
}

#[test]
fn self_hosted_override_keeps_the_quirks() {
    let ghes = catalog().get("github-enterprise-server").unwrap();
    let host = values(&[("host", "github.acme.internal")]);
    let e = ghes.resolve(&host).unwrap();
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://github.acme.internal/login/oauth/authorize")
    );
    assert_eq!(
        e.token.as_deref(),
        Some("https://github.acme.internal/login/oauth/access_token")
    );
    assert_eq!(
        ghes.token_headers.get("Accept").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(ghes.response.scope_separator, ",");
    let Revocation::BasicDeleteJson { url, field } = &ghes.revocation else {
        panic!("GHES revokes by DELETE")
    };
    assert_eq!(field, "access_token");
    assert_eq!(
        ghes.fill(url, &host).unwrap(),
        "https://github.acme.internal/api/v3/applications/{client_id}/grant"
    );

    // github.com by default; a GHE.com host moves every endpoint, quirks included.
    let github = catalog().get("github").unwrap();
    let e = github.resolve(&BTreeMap::new()).unwrap();
    assert_eq!(
        e.token.as_deref(),
        Some("https://github.com/login/oauth/access_token")
    );
    let Revocation::BasicDeleteJson { url, .. } = &github.revocation else {
        panic!("GitHub revokes by DELETE")
    };
    assert_eq!(
        github.fill(url, &BTreeMap::new()).unwrap(),
        "https://api.github.com/applications/{client_id}/grant"
    );
    let ghe = values(&[("host", "acme.ghe.com")]);
    let e = github.resolve(&ghe).unwrap();
    assert_eq!(
        e.authorization.as_deref(),
        Some("https://acme.ghe.com/login/oauth/authorize")
    );
    assert_eq!(
        e.device_authorization.as_deref(),
        Some("https://acme.ghe.com/login/device/code")
    );
    assert_eq!(
        github.fill(url, &ghe).unwrap(),
        "https://api.acme.ghe.com/applications/{client_id}/grant"
    );
    assert_eq!(
        github.token_headers.get("Accept").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(github.response.scope_separator, ",");
    assert!(github.response.token_types.iter().any(|t| t == "bearer"));

    // DocuSign's demo environment is the same preset on another host.
    let docusign = catalog().get("docusign").unwrap();
    let e = docusign
        .resolve(&values(&[("host", "account-d.docusign.com")]))
        .unwrap();
    assert_eq!(
        e.token.as_deref(),
        Some("https://account-d.docusign.com/oauth/token")
    );
    assert_eq!(
        docusign.resolve(&BTreeMap::new()).unwrap().token.as_deref(),
        Some("https://account.docusign.com/oauth/token")
    );
}

/// Redirect notes name what Grantkeeper really sends: 127.0.0.1 (a `localhost` only beside it,
/// as what a provider documents), the /callback path, and a port exactly when the preset needs
/// one; the registration computed for the preset is that URI.
#[test]
fn redirect_notes_name_the_uri_the_app_sends() {
    use crate::provider_app::{registration, RegistrationDraft};
    let urls = |note: &str| -> Vec<String> {
        note.match_indices("http://")
            .map(|(i, _)| {
                let rest = &note[i..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '\''))
                    .unwrap_or(rest.len());
                rest[..end].trim_end_matches('.').to_owned()
            })
            .collect()
    };
    for p in &catalog().providers {
        let Some(note) = &p.redirect.note else {
            continue;
        };
        let draft = RegistrationDraft {
            preset: Some(p.id.clone()),
            ..RegistrationDraft::default()
        };
        let registered = registration(&draft).unwrap();
        for u in urls(note) {
            if u.starts_with("http://localhost") {
                assert!(
                    note.contains("127.0.0.1"),
                    "{}: localhost without 127.0.0.1: {note}",
                    p.id
                );
                continue;
            }
            let shape = if p.redirect.fixed_port {
                "http://127.0.0.1:<port>/callback"
            } else {
                "http://127.0.0.1/callback"
            };
            assert_eq!(u.as_str(), shape, "{}: {note}", p.id);
            let sent = registered.redirect_uri.as_deref().unwrap();
            assert_eq!(sent.replace(":8765", ":<port>"), shape, "{}", p.id);
        }
        if p.redirect.https_only {
            assert!(
                note.contains("relay/"),
                "{}: name the relay page: {note}",
                p.id
            );
        }
    }
}

/// The facts re-checked for issue 14, with their sources in the catalog.
#[test]
fn refreshed_facts_are_in_the_catalog_with_their_sources() {
    let qb = catalog().get("quickbooks").unwrap();
    assert_eq!(
        qb.response.refresh_hard_expires_in.as_deref(),
        Some("x_refresh_token_hard_expires_in")
    );
    assert_eq!(
        qb.token_headers
            .get("x-include-refresh-token-hard-expires-in")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(qb.expiry.refresh_max_days, Some(5 * 365));

    let zoom = catalog().get("zoom").unwrap();
    assert_eq!(zoom.expiry.refresh_idle_days, Some(15 * 365));
    assert!(zoom.expiry.refresh_rotates);

    let hubspot = catalog().get("hubspot").unwrap();
    let e = &hubspot.endpoints;
    assert_eq!(
        e.token.as_deref(),
        Some("https://api.hubapi.com/oauth/2026-03/token")
    );
    assert_eq!(
        e.revocation.as_deref(),
        Some("https://api.hubapi.com/oauth/2026-03/token/revoke")
    );
    assert_eq!(
        e.introspection.as_deref(),
        Some("https://api.hubapi.com/oauth/2026-03/token/introspect")
    );
    assert_eq!(hubspot.expiry.access_default_secs, Some(1800));

    let google = catalog().get("google").unwrap();
    assert_eq!(google.expiry.testing_refresh_days, Some(7));
    assert_eq!(google.expiry.refresh_idle_days, Some(180));
    // Only Google is known to cut testing apps short.
    for p in &catalog().providers {
        assert_eq!(
            p.expiry.testing_refresh_days.is_some(),
            p.id == "google",
            "{}",
            p.id
        );
    }

    let atlassian = catalog().get("atlassian").unwrap();
    assert!(atlassian.expiry.refresh_rotates);
    assert_eq!(atlassian.expiry.rotation_grace_secs, Some(600));
    assert_eq!(
        (
            atlassian.expiry.refresh_idle_days,
            atlassian.expiry.refresh_max_days
        ),
        (Some(90), Some(365))
    );

    for source in [
        "https://blogs.intuit.com/2024/06/03/oauth-token-management-done-the-right-way/",
        "https://blogs.a.intuit.com/2025/11/12/important-changes-to-refresh-token-policy",
        "https://github.com/intuit/QuickBooks-V3-Java-SDK/releases/tag/v6.5.4",
        "https://devsupport.zoom.us/hc/en-us/articles/360060332931-Extending-the-expiration-for-an-OAuth-access-token",
        "https://developers.hubspot.com/changelog/v1-oauth-api-deprecation",
        "https://developers.google.com/identity/protocols/oauth2#expiration",
        "https://community.developer.atlassian.com/t/updated-31-january-2022-action-required-deprecating-persistent-refresh-tokens/54172",
    ] {
        assert!(CATALOG_TOML.contains(source), "no source {source}");
    }
}

/// The client authentication methods each provider accepts are catalog data: every preset
/// lists its default among them, once each; a fixture of what the providers document.
#[test]
fn each_preset_lists_the_client_authentication_methods_its_provider_accepts() {
    use ClientAuth::{
        ClientSecretBasic as Basic, ClientSecretPost as Post, None as Public, PrivateKeyJwt as Jwt,
    };
    for p in &catalog().providers {
        assert!(
            p.auth_methods.contains(&p.client_auth),
            "{}: its default is not listed",
            p.id
        );
        let distinct: BTreeSet<&str> = p.auth_methods.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            distinct.len(),
            p.auth_methods.len(),
            "{}: listed twice",
            p.id
        );
    }
    let fixture: &[(&str, &[ClientAuth])] = &[
        ("grantkeeper-demo", &[Public]),
        ("github", &[Post]),
        ("quickbooks", &[Basic]),
        ("google", &[Post, Basic]),
        ("okta", &[Basic, Post, Jwt, Public]),
        ("auth0", &[Post, Basic, Jwt, Public]),
        ("microsoft-entra", &[Post, Basic, Jwt, Public]),
        ("netsuite", &[Basic, Jwt]),
    ];
    for (id, methods) in fixture {
        assert_eq!(catalog().get(id).unwrap().auth_methods, *methods, "{id}");
    }
    let github = catalog().get("github").unwrap();
    assert!(Catalog::check_auth_method(github, Post).is_ok());
    let refused = Catalog::check_auth_method(github, Jwt)
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "GitHub (OAuth App) does not accept private_key_jwt; it accepts: client_secret_post"
    );
}
