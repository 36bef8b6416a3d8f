//! The catalog's API table resolved for real grants' metadata, one fixture per provider.

use std::collections::BTreeMap;

use super::*;
use crate::catalog::Catalog;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn api(preset: &str) -> &'static ApiSpec {
    &Catalog::builtin().get(preset).unwrap().api
}

fn resolve(preset: &str, metadata: &[(&str, &str)], vars: &[(&str, &str)]) -> ApiTarget {
    api(preset)
        .resolve(None, &map(metadata), &map(vars))
        .unwrap_or_else(|e| panic!("{preset}: {e}"))
}

#[test]
fn salesforce_uses_the_grants_instance_url() {
    for preset in ["salesforce", "salesforce-sandbox", "salesforce-my-domain"] {
        let t = resolve(
            preset,
            &[("instance_url", "https://acme.my.salesforce.com")],
            &[],
        );
        assert_eq!(t.base.as_str(), "https://acme.my.salesforce.com/");
        assert!(t.headers.is_empty());
    }
    // Without the metadata, the error says what to give.
    let e = api("salesforce")
        .resolve(None, &map(&[]), &map(&[]))
        .unwrap_err();
    assert_eq!(e, ApiError::MissingValue("instance_url".into()));
    assert!(e.to_string().contains("--var instance_url="), "{e}");
    // An instance_url that is more than an origin, or not HTTPS, is refused.
    for bad in [
        "http://acme.my.salesforce.com",
        "https://evil.example/x",
        "https://user@acme.my.salesforce.com",
        "https://acme.my.salesforce.com?x=1",
        "acme.my.salesforce.com/../x",
    ] {
        let r = api("salesforce").resolve(None, &map(&[("instance_url", bad)]), &map(&[]));
        assert!(
            matches!(r, Err(ApiError::BadValue { .. } | ApiError::BadBase(_))),
            "{bad}: {r:?}"
        );
    }
}

#[test]
fn quickbooks_puts_the_company_in_the_path() {
    let t = resolve("quickbooks", &[("realmId", "9130350000000000")], &[]);
    assert_eq!(
        t.base.as_str(),
        "https://quickbooks.api.intuit.com/v3/company/9130350000000000"
    );
    let sandbox = resolve(
        "quickbooks",
        &[("realmId", "4620816365")],
        &[("qbo_host", "sandbox-quickbooks.api.intuit.com")],
    );
    assert_eq!(
        sandbox.base.as_str(),
        "https://sandbox-quickbooks.api.intuit.com/v3/company/4620816365"
    );
    // A realmId cannot add path segments or a query.
    for bad in ["1/../../admin", "1?x=y", "..", "1#f", "a b"] {
        let r = api("quickbooks").resolve(None, &map(&[("realmId", bad)]), &map(&[]));
        assert!(matches!(r, Err(ApiError::BadValue { .. })), "{bad}: {r:?}");
    }
}

#[test]
fn xero_sends_its_tenant_header() {
    let t = resolve(
        "xero",
        &[],
        &[("xero_tenant_id", "a3f9c0de-1111-4c2b-9a0e-5d7c1b2e3f40")],
    );
    assert_eq!(t.base.as_str(), "https://api.xero.com/");
    assert_eq!(
        t.headers,
        vec![(
            "xero-tenant-id".to_owned(),
            "a3f9c0de-1111-4c2b-9a0e-5d7c1b2e3f40".to_owned()
        )]
    );
    let e = api("xero").resolve(None, &map(&[]), &map(&[])).unwrap_err();
    assert_eq!(e, ApiError::MissingValue("xero_tenant_id".into()));
}

#[test]
fn fixed_bases_of_graph_slack_hubspot_and_github() {
    let cases = [
        ("microsoft-entra", "https://graph.microsoft.com/"),
        ("slack", "https://slack.com/api"),
        ("slack-user", "https://slack.com/api"),
        ("hubspot", "https://api.hubapi.com/"),
        ("github", "https://api.github.com/"),
        ("github-app", "https://api.github.com/"),
    ];
    for (preset, base) in cases {
        assert_eq!(resolve(preset, &[], &[]).base.as_str(), base, "{preset}");
        assert!(api(preset).source.is_some(), "{preset} names its source");
    }
    let gh = resolve("github", &[], &[]);
    assert!(gh
        .headers
        .contains(&("X-GitHub-Api-Version".into(), "2022-11-28".into())));
    assert!(api("github").serves_git_host("GitHub.com"));
    assert_eq!(
        api("github").git_username.as_deref(),
        Some("x-access-token")
    );
    assert!(!api("slack").serves_git_host("github.com"));
}

#[test]
fn generic_providers_take_a_configured_base() {
    let generic = api("generic-oidc");
    assert_eq!(
        generic.resolve(None, &map(&[]), &map(&[])).unwrap_err(),
        ApiError::NoBase
    );
    let t = generic
        .resolve(Some("https://api.acme.example/v2"), &map(&[]), &map(&[]))
        .unwrap();
    assert_eq!(t.base.as_str(), "https://api.acme.example/v2");
    // Plain HTTP only to loopback (the core's HTTP rule), no query.
    assert!(generic
        .resolve(Some("http://127.0.0.1:8080/api"), &map(&[]), &map(&[]))
        .is_ok());
    for bad in [
        "http://api.acme.example",
        "https://api.acme.example/?k=v",
        "ftp://x",
        "not a url",
    ] {
        assert!(
            matches!(
                generic.resolve(Some(bad), &map(&[]), &map(&[])),
                Err(ApiError::BadBase(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn every_api_base_in_the_catalog_is_https() {
    for p in &Catalog::builtin().providers {
        let Some(base) = &p.api.base else { continue };
        assert!(
            base.starts_with("https://") || base.starts_with('{'),
            "{}: {base}",
            p.id
        );
        assert!(
            p.api.source.is_some(),
            "{} names where its API is documented",
            p.id
        );
    }
}
