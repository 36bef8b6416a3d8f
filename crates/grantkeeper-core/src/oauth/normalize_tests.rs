//! Tests of the normalizing layer: provider answers in every shape the catalog knows.

use std::collections::BTreeMap;

use super::super::token::*;
use super::*;

/// A token endpoint's answer through the whole path: the normalizer, then oauth2.
fn parse(shape: &ResponseShape, resp: &HttpResponse) -> Result<TokenResponse, OAuthError> {
    crate::oauth::protocol::exchange_answer(shape, resp.clone())
}

fn resp(status: u16, ct: &str, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        content_type: Some(ct.to_owned()),
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn json(body: &str) -> HttpResponse {
    resp(200, "application/json", body)
}

#[test]
fn standard_json() {
    let r = parse(
        &ResponseShape::default(),
        &json(r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"openid email","id_token":"a.b.c"}"#),
    )
    .unwrap();
    assert_eq!(r.tokens.access_token.expose(), "at");
    assert_eq!(r.tokens.refresh_token.unwrap().expose(), "rt");
    assert_eq!(r.tokens.id_token.unwrap().expose(), "a.b.c");
    assert_eq!(r.expires_in, Some(3600));
    assert_eq!(r.scopes.unwrap(), vec!["openid", "email"]);
}

#[test]
fn expires_in_as_string_or_absent() {
    let r = parse(
        &ResponseShape::default(),
        &json(r#"{"access_token":"at","token_type":"bearer","expires_in":"3599"}"#),
    )
    .unwrap();
    assert_eq!(r.expires_in, Some(3599));
    let r = parse(
        &ResponseShape::default(),
        &json(r#"{"access_token":"at","token_type":"bearer"}"#),
    )
    .unwrap();
    assert_eq!(r.expires_in, None);
    assert!(r.scopes.is_none());
    let e = parse(
        &ResponseShape::default(),
        &json(r#"{"access_token":"at","expires_in":"soon"}"#),
    )
    .unwrap_err();
    assert!(matches!(e, OAuthError::Malformed(_)));
}

#[test]
fn absurd_lifetimes_are_clamped_to_ten_years() {
    let shape = ResponseShape {
        refresh_expires_in: Some("x_refresh_token_expires_in".into()),
        refresh_hard_expires_in: Some("x_refresh_token_hard_expires_in".into()),
        ..ResponseShape::default()
    };
    let ten_years = Some(MAX_LIFETIME_SECS);
    for v in [
        u64::MAX.to_string(),
        format!("\"{}\"", u64::MAX),
        i64::MAX.to_string(),
        "1e300".into(),
        "\"99999999999999999999999999999\"".into(),
        "315576001".into(),
    ] {
        let body = format!(
            r#"{{"access_token":"at","token_type":"bearer","expires_in":{v},"x_refresh_token_expires_in":{v},"x_refresh_token_hard_expires_in":{v}}}"#
        );
        let r = parse(&shape, &json(&body)).unwrap();
        assert_eq!(r.expires_in, ten_years, "{v}");
        assert_eq!(r.refresh_expires_in, ten_years, "{v}");
        assert_eq!(r.refresh_hard_expires_in, ten_years, "{v}");
    }
    for v in [
        "-1",
        "-1e300",
        "\"-5\"",
        "\"1.5e3\"",
        i64::MIN.to_string().as_str(),
    ] {
        let body = format!(r#"{{"access_token":"at","expires_in":{v}}}"#);
        assert!(
            matches!(parse(&shape, &json(&body)), Err(OAuthError::Malformed(_))),
            "{v}"
        );
    }
    assert_eq!(lifetime_ms(u64::MAX), 315_576_000_000);
    assert_eq!(expiry_after(i64::MAX - 5, u64::MAX), i64::MAX);
    assert_eq!(expiry_after(1_000, 2), 3_000);
    let now = 1_700_000_000_000;
    assert_eq!(clamp_expiry(now, i64::MAX), now + 315_576_000_000);
    assert_eq!(clamp_expiry(now, i64::MIN), 0);
    assert_eq!(clamp_expiry(now, now + 5), now + 5);
    assert_eq!(clamp_min_valid(std::time::Duration::MAX), MAX_LIFETIME);
}

#[test]
fn form_encoded_body() {
    let r = parse(
        &ResponseShape {
            scope_separator: ",".into(),
            ..ResponseShape::default()
        },
        &resp(
            200,
            "application/x-www-form-urlencoded",
            "access_token=gho_x&scope=repo%2Cgist&token_type=bearer",
        ),
    )
    .unwrap();
    assert_eq!(r.tokens.access_token.expose(), "gho_x");
    assert_eq!(r.scopes.unwrap(), vec!["repo", "gist"]);
}

#[test]
fn errors_with_http_200() {
    let e = parse(&ResponseShape::default(), &json(r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#)).unwrap_err();
    assert!(
        matches!(e, OAuthError::Provider { ref error, status: 200, .. } if error == "bad_verification_code")
    );
    let slack = ResponseShape {
        ok_field: Some("ok".into()),
        ..ResponseShape::default()
    };
    let e = parse(&slack, &json(r#"{"ok":false,"error":"invalid_code"}"#)).unwrap_err();
    assert!(matches!(e, OAuthError::Provider { ref error, .. } if error == "invalid_code"));
}

#[test]
fn nested_tokens_and_metadata() {
    let shape = ResponseShape {
        access_token: "authed_user.access_token".into(),
        scope: "authed_user.scope".into(),
        scope_separator: ",".into(),
        ok_field: Some("ok".into()),
        token_types: vec!["user".into()],
        metadata: BTreeMap::from([
            ("team_id".into(), "team.id".into()),
            ("missing".into(), "nope.x".into()),
        ]),
        ..ResponseShape::default()
    };
    let r = parse(
        &shape,
        &json(r#"{"ok":true,"team":{"id":"T1","name":"Acme"},"authed_user":{"id":"U1","scope":"chat:write,users:read","access_token":"xoxp-1","token_type":"user"}}"#),
    )
    .unwrap();
    assert_eq!(r.tokens.access_token.expose(), "xoxp-1");
    assert_eq!(r.scopes.unwrap(), vec!["chat:write", "users:read"]);
    assert_eq!(r.metadata.get("team_id").map(String::as_str), Some("T1"));
    assert!(!r.metadata.contains_key("missing"));
}

#[test]
fn faults_are_clear() {
    let d = ResponseShape::default();
    assert!(matches!(
        parse(&d, &json(r#"{"token_type":"bearer"}"#)),
        Err(OAuthError::MissingAccessToken)
    ));
    assert!(matches!(
        parse(&d, &json(r#"{"access_token":"","token_type":"bearer"}"#)),
        Err(OAuthError::MissingAccessToken)
    ));
    assert!(matches!(
        parse(&d, &json(r#"{"access_token":"at","token_type":"mac"}"#)),
        Err(OAuthError::WrongTokenType(_))
    ));
    let e = parse(&d, &json(r#"{"access_token": "at-secret", "#)).unwrap_err();
    assert!(matches!(e, OAuthError::Malformed(_)));
    assert!(!e.to_string().contains("at-secret"));
    assert!(matches!(
        parse(&d, &resp(500, "text/html", "<h1>oops</h1>")),
        Err(OAuthError::Malformed(_))
    ));
    let e = parse(
        &d,
        &resp(500, "application/json", r#"{"error":"server_error"}"#),
    )
    .unwrap_err();
    assert!(matches!(e, OAuthError::Provider { status: 500, .. }));
    assert!(matches!(
        parse(&d, &json("[1,2]")),
        Err(OAuthError::Malformed(_))
    ));
}
