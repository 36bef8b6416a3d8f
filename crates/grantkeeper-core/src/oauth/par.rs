//! Pushed authorization requests (RFC 9126): the authorization request's parameters go to the
//! provider first, the client authenticated as at its token endpoint, and the browser gets a
//! short URL naming what was pushed (`request_uri`): the parameters can be neither read nor
//! altered on the way through the browser. A sign-in that binds its tokens to a DPoP key
//! proves possession of it here too (RFC 9449 §10.1), so the code is bound to that key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use url::form_urlencoded::byte_serialize;

use super::assertion::ClientAssertion;
use super::dpop::{self, DpopKey};
use super::flow::{Client, Quirks};
use super::normalize::Wire;
use super::token::{body_to_object, provider_error};
use super::OAuthError;
use crate::catalog::ClientAuth;

/// Pushes the parameters of `authorization_url` to `endpoint` and returns the URL the browser
/// opens instead: the authorization endpoint with `client_id` and the `request_uri` received.
pub(crate) fn push(
    wire: &Wire<'_>,
    endpoint: &str,
    authorization_url: &str,
    client: &Client,
    quirks: &Quirks,
    assertion: Option<&ClientAssertion<'_>>,
    dpop: Option<&DpopKey>,
) -> Result<String, OAuthError> {
    let mut front = url::Url::parse(authorization_url)
        .map_err(|_| OAuthError::Config("the authorization URL is not a URL".into()))?;
    let mut form: Vec<(String, String)> = front.query_pairs().into_owned().collect();
    let mut headers: Vec<(String, String)> = quirks
        .token_headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.push(("Accept".into(), "application/json".into()));
    match (&client.secret, quirks.client_auth) {
        (Some(secret), ClientAuth::ClientSecretPost) => {
            form.push(("client_secret".into(), secret.expose().to_owned()));
        }
        (Some(secret), ClientAuth::ClientSecretBasic) => {
            // RFC 6749 2.3.1: both parts form-encoded, as oauth2 sends them to the token endpoint.
            let enc = |s: &str| byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&client.id), enc(secret.expose()));
            headers.push((
                "Authorization".into(),
                format!("Basic {}", B64.encode(pair)),
            ));
        }
        _ => {}
    }
    if let Some(assertion) = assertion {
        form.extend(assertion.form()?.map(|(k, v)| (k.to_owned(), v)));
    }
    let form_refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let send = |nonce: Option<&str>| -> Result<_, OAuthError> {
        let proof = dpop
            .map(|key| key.proof("POST", endpoint, nonce, None))
            .transpose()?;
        let mut headers = header_refs.clone();
        if let Some(p) = &proof {
            headers.push(("DPoP", p));
        }
        wire.post_form(endpoint, &headers, &form_refs)
    };
    let mut resp = send(None)?;
    // A server that wants a nonce in the proof says which (RFC 9449 §8): once more with it.
    if let Some(nonce) = dpop.and_then(|_| dpop::nonce_asked(&resp)) {
        resp = send(Some(&nonce))?;
    }
    let body = body_to_object(&resp)?;
    if body.contains_key("error") || !(200..300).contains(&resp.status) {
        return Err(provider_error(&body, resp.status));
    }
    let request_uri = body
        .get("request_uri")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OAuthError::Malformed("the pushed authorization request got no request_uri".into())
        })?;
    front
        .query_pairs_mut()
        .clear()
        .append_pair("client_id", &client.id)
        .append_pair("request_uri", request_uri);
    Ok(front.into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::http::HttpClient;
    use crate::oauth::stub::{Stub, StubRequest, StubResponse};
    use crate::secret::ClientSecret;

    const FRONT: &str = "https://idp.example/authorize?tenant=x&response_type=code&client_id=c%20id&state=st&code_challenge=ch&code_challenge_method=S256";

    fn pushed(auth: ClientAuth, secret: Option<&str>) -> (Result<String, OAuthError>, StubRequest) {
        let stub = Stub::start(|_| {
            StubResponse::json(
                201,
                r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#,
            )
        });
        let client = Client {
            id: "c id".into(),
            secret: secret.map(ClientSecret::new),
            key: None,
        };
        let mut quirks = Quirks::new(None, secret.is_some());
        quirks.client_auth = auth;
        let http = HttpClient::default();
        let url = format!("{}/par", stub.base);
        let out = push(
            &Wire::Http(&http),
            &url,
            FRONT,
            &client,
            &quirks,
            None,
            None,
        );
        let req = stub.requests.lock().unwrap()[0].clone();
        (out, req)
    }

    fn form(req: &StubRequest) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(req.body.as_bytes())
            .into_owned()
            .collect()
    }

    fn header<'r>(req: &'r StubRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_browser_gets_the_request_uri_and_the_parameters_go_to_the_provider() {
        let (url, req) = pushed(ClientAuth::None, None);
        assert_eq!(
            url.unwrap(),
            "https://idp.example/authorize?client_id=c+id&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"
        );
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/par"));
        let f = form(&req);
        for (k, v) in [
            ("tenant", "x"),
            ("response_type", "code"),
            ("client_id", "c id"),
            ("state", "st"),
            ("code_challenge", "ch"),
            ("code_challenge_method", "S256"),
        ] {
            assert_eq!(f.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!f.contains_key("client_secret"));
        assert_eq!(header(&req, "authorization"), None);
    }

    #[test]
    fn a_confidential_client_authenticates_as_at_the_token_endpoint() {
        let (url, req) = pushed(ClientAuth::ClientSecretPost, Some("s3cret&x"));
        url.unwrap();
        assert_eq!(form(&req)["client_secret"], "s3cret&x");
        assert_eq!(header(&req, "authorization"), None);
        let (url, req) = pushed(ClientAuth::ClientSecretBasic, Some("s3cret&x"));
        url.unwrap();
        assert!(!form(&req).contains_key("client_secret"));
        let basic = header(&req, "authorization").unwrap();
        let decoded = B64.decode(basic.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "c+id:s3cret%26x");
    }

    #[test]
    fn a_dpop_sign_in_proves_its_key_at_the_par_endpoint_with_the_nonce_asked_for() {
        let stub = Stub::start(|req| {
            let proof = req
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("dpop"));
            let nonce = proof
                .and_then(|(_, p)| crate::oauth::jwt::DecodedJwt::decode(p))
                .and_then(|p| p.claims.get("nonce").cloned());
            match nonce {
                Some(n) if n == "n-1" => StubResponse::json(
                    201,
                    r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#,
                ),
                _ => StubResponse::json(400, r#"{"error":"use_dpop_nonce"}"#)
                    .with_header("DPoP-Nonce", "n-1"),
            }
        });
        let client = Client {
            id: "cid".into(),
            secret: None,
            key: None,
        };
        let quirks = Quirks::new(None, false);
        let key = DpopKey::generate();
        let http = HttpClient::default();
        let url = format!("{}/par", stub.base);
        let out = push(
            &Wire::Http(&http),
            &url,
            FRONT,
            &client,
            &quirks,
            None,
            Some(&key),
        );
        assert!(out.unwrap().contains("request_uri="));
        let requests = stub.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 2, "once, then again with the nonce");
        for req in &requests {
            let proof = header(req, "dpop").expect("a proof on each push");
            let claims = crate::oauth::jwt::DecodedJwt::decode(proof).unwrap().claims;
            assert_eq!(claims["htm"], "POST");
            assert_eq!(claims["htu"], url.as_str());
        }
        // Without a key, no proof.
        let (_, plain) = pushed(ClientAuth::None, None);
        assert!(header(&plain, "dpop").is_none());
    }

    #[test]
    fn refusals_and_answers_without_a_request_uri_fail() {
        let client = Client {
            id: "cid".into(),
            secret: None,
            key: None,
        };
        let quirks = Quirks::new(None, false);
        let answer = |status: u16, body: &str| {
            let resp = crate::http::HttpResponse {
                status,
                content_type: Some("application/json".into()),
                body: body.as_bytes().to_vec(),
                ..Default::default()
            };
            push(
                &Wire::Recorded(resp),
                "https://idp.example/par",
                FRONT,
                &client,
                &quirks,
                None,
                None,
            )
        };
        match answer(
            400,
            r#"{"error":"invalid_request","error_description":"no"}"#,
        ) {
            Err(OAuthError::Provider { error, status, .. }) => {
                assert_eq!((error.as_str(), status), ("invalid_request", 400));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer(201, r#"{"expires_in":60}"#),
            Err(OAuthError::Malformed(m)) if m.contains("request_uri")
        ));
        assert!(matches!(
            answer(500, "{}"),
            Err(OAuthError::Provider { status: 500, .. })
        ));
    }
}
