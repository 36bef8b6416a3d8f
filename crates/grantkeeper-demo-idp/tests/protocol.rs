//! The demo provider over real HTTP on 127.0.0.1: consent, PKCE, rotation with reuse detection,
//! revocation and introspection.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use grantkeeper_demo_idp::{DemoIdp, CLIENT_ID};
use serde_json::Value;
use sha2::{Digest, Sha256};
use ureq::Agent;

const VERIFIER: &str = "a-verifier-of-more-than-forty-three-characters-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn agent() -> Agent {
    Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Walks the consent page: returns the redirect's query.
fn consent(idp: &DemoIdp, scope: &str, decision: &str) -> HashMap<String, String> {
    let a = agent();
    let mut url = url::Url::parse(&format!("{}/authorize", idp.issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("code_challenge", &challenge())
        .append_pair("code_challenge_method", "S256");
    let mut page = a.get(url.as_str()).call().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().unwrap();
    let request = html
        .split("name=request value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let resp = a
        .post(&format!("{}/authorize/decision", idp.issuer()))
        .send_form([("request", request.as_str()), ("decision", decision)])
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with(REDIRECT));
    query(location)
}

fn token(idp: &DemoIdp, form: &[(&str, &str)]) -> (u16, Value) {
    let mut resp = agent()
        .post(&format!("{}/token", idp.issuer()))
        .send_form(form.iter().copied())
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

fn exchange(idp: &DemoIdp, code: &str, verifier: &str) -> (u16, Value) {
    token(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
}

fn refresh(idp: &DemoIdp, rt: &str) -> (u16, Value) {
    token(
        idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", rt),
        ],
    )
}

fn introspect(idp: &DemoIdp, t: &str) -> Value {
    let mut resp = agent()
        .post(&format!("{}/introspect", idp.issuer()))
        .send_form([("token", t)])
        .unwrap();
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn metadata_advertises_s256_and_iss() {
    let idp = DemoIdp::start(0).unwrap();
    let mut resp = agent()
        .get(&format!(
            "{}/.well-known/oauth-authorization-server",
            idp.issuer()
        ))
        .call()
        .unwrap();
    let meta: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(meta["issuer"], idp.issuer());
    assert_eq!(meta["code_challenge_methods_supported"][0], "S256");
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
}

#[test]
fn approve_exchange_refresh_rotate_revoke() {
    let idp = DemoIdp::start(0).unwrap();
    let q = consent(&idp, "profile invoices.read offline_access", "approve");
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], idp.issuer());
    let code = q["code"].clone();

    assert_eq!(
        exchange(&idp, &code, "wrong-verifier-wrong-verifier-wrong-verifier").0,
        400
    );
    // The failed attempt used the code up.
    assert_eq!(exchange(&idp, &code, VERIFIER).0, 400);

    let code = consent(&idp, "profile invoices.read offline_access", "approve")["code"].clone();
    let (status, tokens) = exchange(&idp, &code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "profile invoices.read offline_access");
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&idp, &at)["active"], true);
    assert_eq!(exchange(&idp, &code, VERIFIER).0, 400, "a code serves once");

    let (status, rotated) = refresh(&idp, &rt1);
    assert_eq!(status, 200);
    let rt2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "refresh tokens rotate");
    assert_eq!(refresh(&idp, &rt2).0, 200, "the new one works");

    let revoke = agent()
        .post(&format!("{}/revoke", idp.issuer()))
        .send_form([("token", rt2.as_str())])
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(
        introspect(&idp, &at)["active"],
        false,
        "revocation ends the access token"
    );
}

#[test]
fn reusing_a_rotated_refresh_token_ends_the_grant() {
    let idp = DemoIdp::start(0).unwrap();
    let code = consent(&idp, "profile offline_access", "approve")["code"].clone();
    let tokens = exchange(&idp, &code, VERIFIER).1;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rt2 = refresh(&idp, &rt1).1["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, err) = refresh(&idp, &rt1);
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(refresh(&idp, &rt2).0, 400, "the whole grant is revoked");
}

#[test]
fn deny_bad_scope_plain_pkce_and_foreign_redirects_are_refused() {
    let idp = DemoIdp::start(0).unwrap();
    let q = consent(&idp, "profile", "deny");
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");

    let a = agent();
    let base = format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}",
        idp.issuer()
    );
    let plain = a
        .get(&format!(
            "{base}&redirect_uri={REDIRECT}&scope=profile&code_challenge={}&code_challenge_method=plain",
            challenge()
        ))
        .call()
        .unwrap();
    assert_eq!(plain.status(), 302);
    assert_eq!(
        query(plain.headers().get("location").unwrap().to_str().unwrap())["error"],
        "invalid_request"
    );
    let scope = a
        .get(&format!(
            "{base}&redirect_uri={REDIRECT}&scope=admin&code_challenge={}&code_challenge_method=S256",
            challenge()
        ))
        .call()
        .unwrap();
    assert_eq!(
        query(scope.headers().get("location").unwrap().to_str().unwrap())["error"],
        "invalid_scope"
    );
    let foreign = a
        .get(&format!(
            "{base}&redirect_uri=https://evil.example/cb&scope=profile&code_challenge={}&code_challenge_method=S256",
            challenge()
        ))
        .call()
        .unwrap();
    assert_eq!(foreign.status(), 400, "never redirects to an unchecked URI");
}
