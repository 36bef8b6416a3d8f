//! What a grant's protocol steps need besides oauth2 ([`super::protocol`]): the provider's quirks
//! from the catalog, the client's credentials, the endpoints, and the checks of the redirect
//! (`state` in constant time, the RFC 9207 issuer) and of a pasted redirect URL.

use std::collections::BTreeMap;

use url::Url;

use super::assertion::ClientKey;
use super::loopback::CallbackParams;
use super::state::constant_time_eq;
use super::OAuthError;
use crate::catalog::{ClientAuth, ExpiryInfo, Pkce, Preset, ResponseShape};
use crate::model::Endpoints;
use crate::secret::ClientSecret;

/// How one provider app behaves: its preset's quirks, or plain-standard defaults.
#[derive(Debug, Clone)]
pub struct Quirks {
    /// Separator of scopes in requests.
    pub scope_separator: String,
    /// The authorization parameter that carries the scopes (`scope`; Slack user tokens: `user_scope`).
    pub scope_param: String,
    /// PKCE support.
    pub pkce: Pkce,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Extra authorization parameters.
    pub authorize_params: BTreeMap<String, String>,
    /// Extra token-request headers.
    pub token_headers: BTreeMap<String, String>,
    /// Token-response shape.
    pub shape: ResponseShape,
    /// Lifetimes.
    pub expiry: ExpiryInfo,
}

impl Quirks {
    /// The quirks of `preset`, or standard behaviour for a custom provider. A client without a
    /// secret is a public client whatever the preset says.
    pub fn new(preset: Option<&Preset>, has_secret: bool) -> Self {
        let mut q = match preset {
            Some(p) => Self {
                scope_separator: p.scope_separator.clone(),
                scope_param: p.scope_param.clone(),
                pkce: p.pkce,
                client_auth: p.client_auth,
                authorize_params: p.authorize_params.clone(),
                token_headers: p.token_headers.clone(),
                shape: p.response.clone(),
                expiry: p.expiry.clone(),
            },
            None => Self {
                scope_separator: " ".into(),
                scope_param: "scope".into(),
                pkce: Pkce::Supported,
                client_auth: ClientAuth::ClientSecretBasic,
                authorize_params: BTreeMap::new(),
                token_headers: BTreeMap::new(),
                shape: ResponseShape::default(),
                expiry: ExpiryInfo::default(),
            },
        };
        if !has_secret {
            q.client_auth = ClientAuth::None;
        }
        q
    }
}

/// The client's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub id: String,
    /// Client secret, for confidential clients.
    pub secret: Option<ClientSecret>,
    /// The provider app's own key, for `private_key_jwt`.
    pub key: Option<ClientKey>,
}

/// Parses a redirect URL pasted by the user into its query parameters.
pub fn parse_pasted_redirect(pasted: &str) -> Result<CallbackParams, OAuthError> {
    let url = Url::parse(pasted.trim()).map_err(|_| {
        OAuthError::Config(
            "that is not a URL: paste the whole address from the browser's address bar".into(),
        )
    })?;
    let params: CallbackParams = url.query_pairs().into_owned().collect();
    if params.contains_key("code") || params.contains_key("error") {
        return Ok(params);
    }
    // Some providers answer in the fragment.
    let frag: CallbackParams = url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    if frag.contains_key("code") || frag.contains_key("error") {
        return Ok(frag);
    }
    Err(OAuthError::MissingCode)
}

/// Checks a redirect's `state`, error and `iss` (RFC 9207); returns the code.
pub fn check_callback<'p>(
    params: &'p CallbackParams,
    state: &str,
    issuer: Option<&str>,
    iss_required: bool,
) -> Result<&'p str, OAuthError> {
    let got_state = params.get("state").map(String::as_str).unwrap_or_default();
    if !constant_time_eq(got_state, state) {
        return Err(OAuthError::StateMismatch);
    }
    match (params.get("iss"), issuer) {
        (Some(got), Some(expected))
            if got.trim_end_matches('/') != expected.trim_end_matches('/') =>
        {
            return Err(OAuthError::IssuerMismatch {
                expected: expected.to_owned(),
                got: got.clone(),
            })
        }
        (None, Some(expected)) if iss_required => {
            return Err(OAuthError::IssuerMismatch {
                expected: expected.to_owned(),
                got: "(none)".into(),
            })
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        return Err(OAuthError::Denied {
            error: error.chars().take(80).collect(),
            description: params
                .get("error_description")
                .map(|d| d.chars().take(200).collect()),
        });
    }
    params
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(OAuthError::MissingCode)
}

/// The resolved endpoints a flow needs, with a clear error for a missing one.
pub fn require<'e>(endpoints: &'e Endpoints, which: &str) -> Result<&'e str, OAuthError> {
    let v = match which {
        "authorization" => &endpoints.authorization,
        "token" => &endpoints.token,
        "device_authorization" => &endpoints.device_authorization,
        "introspection" => &endpoints.introspection,
        "revocation" => &endpoints.revocation,
        _ => &None,
    };
    v.as_deref()
        .ok_or_else(|| OAuthError::Config(format!("the provider app has no {which} endpoint")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> CallbackParams {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callback_checks() {
        let ok = params(&[("code", "c1"), ("state", "s1"), ("iss", "https://idp")]);
        assert_eq!(
            check_callback(&ok, "s1", Some("https://idp/"), true).unwrap(),
            "c1"
        );
        assert!(matches!(
            check_callback(&ok, "s2", Some("https://idp"), true),
            Err(OAuthError::StateMismatch)
        ));
        assert!(matches!(
            check_callback(&ok, "s1", Some("https://evil"), false),
            Err(OAuthError::IssuerMismatch { .. })
        ));
        let no_iss = params(&[("code", "c1"), ("state", "s1")]);
        assert!(check_callback(&no_iss, "s1", Some("https://idp"), false).is_ok());
        assert!(matches!(
            check_callback(&no_iss, "s1", Some("https://idp"), true),
            Err(OAuthError::IssuerMismatch { .. })
        ));
        let denied = params(&[("error", "access_denied"), ("state", "s1")]);
        assert!(matches!(
            check_callback(&denied, "s1", None, false),
            Err(OAuthError::Denied { .. })
        ));
        let forged_denial = params(&[("error", "access_denied"), ("state", "zz")]);
        assert!(matches!(
            check_callback(&forged_denial, "s1", None, false),
            Err(OAuthError::StateMismatch)
        ));
        assert!(matches!(
            check_callback(&params(&[("state", "s1")]), "s1", None, false),
            Err(OAuthError::MissingCode)
        ));
    }

    #[test]
    fn pasted_redirects() {
        let p = parse_pasted_redirect(" https://relay.example/cb?code=abc&state=s~123&realmId=42 ")
            .unwrap();
        assert_eq!(p["realmId"], "42");
        assert!(parse_pasted_redirect("https://relay.example/cb#code=x&state=y").is_ok());
        assert!(matches!(
            parse_pasted_redirect("https://relay.example/cb?foo=1"),
            Err(OAuthError::MissingCode)
        ));
        assert!(parse_pasted_redirect("not a url").is_err());
    }
}
