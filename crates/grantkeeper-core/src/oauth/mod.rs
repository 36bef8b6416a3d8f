//! OAuth 2.0 and OpenID Connect: the protocol through the `oauth2` crate over the core's own
//! HTTP client, with provider answers normalized to standard shape first; the loopback redirect,
//! discovery and ID-token validation.

pub mod assertion;
pub mod browser;
pub mod discovery;
pub mod dpop;
pub mod flow;
pub mod id_token;
pub mod jwt;
pub mod loopback;
pub mod mtls;
pub(crate) mod normalize;
pub(crate) mod par;
pub mod protocol;
#[cfg(test)]
mod quirks_tests;
pub mod state;
#[cfg(test)]
pub(crate) mod stub;
pub mod token;

use crate::http::HttpError;

/// Why a sign-in or token request failed. Messages carry no tokens, codes or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The network or HTTP layer failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The provider answered with an OAuth error.
    #[error("the provider refused the request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        /// The OAuth error code (`invalid_grant`, `invalid_client`, …).
        error: String,
        /// The provider's description, if any.
        description: Option<String>,
        /// The HTTP status.
        status: u16,
    },
    /// The user (or the provider) denied consent.
    #[error("consent was not given at the provider ({error}{}); nothing was stored", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// `access_denied` or another error code from the redirect.
        error: String,
        /// The provider's description.
        description: Option<String>,
    },
    /// The redirect's `state` is not the one this sign-in sent.
    #[error("the redirect does not belong to this sign-in (state mismatch); it was rejected and nothing was stored")]
    StateMismatch,
    /// The redirect's `iss` is not the expected issuer (RFC 9207), or is missing when required.
    #[error("the redirect names issuer '{got}' instead of '{expected}' (possible mix-up attack); rejected, nothing stored")]
    IssuerMismatch {
        /// The issuer this sign-in went to.
        expected: String,
        /// What the redirect said.
        got: String,
    },
    /// The redirect carries neither a code nor an error.
    #[error("the redirect carries no authorization code")]
    MissingCode,
    /// A re-consent signed in as another account than the connection's.
    #[error("signed in as a different account ({got}) than this connection's ({expected}); nothing was changed: sign in as {expected} to renew it, or connect the other account as a new connection")]
    AccountMismatch {
        /// The connection's account.
        expected: String,
        /// The account that signed in.
        got: String,
    },
    /// A re-consent whose account cannot be shown to be the connection's.
    #[error("{0}; nothing was changed")]
    AccountUnconfirmed(String),
    /// The token response cannot be understood.
    #[error("the provider's token response is malformed: {0}")]
    Malformed(String),
    /// The token response has no access token.
    #[error("the provider's token response has no access token")]
    MissingAccessToken,
    /// The token type is not one the provider's preset expects.
    #[error("the provider returned a token of type '{0}', not a bearer token")]
    WrongTokenType(String),
    /// The ID token did not validate.
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    /// Nobody completed the sign-in in time.
    #[error("no sign-in completed within {seconds} s; the listener was closed")]
    TimedOut {
        /// The time waited.
        seconds: u64,
    },
    /// The user cancelled.
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// The loopback listener could not be opened.
    #[error("cannot listen on 127.0.0.1 for the redirect: {0}")]
    Listener(String),
    /// The browser could not be started.
    #[error("cannot open a browser ({0}); open the sign-in URL yourself")]
    Browser(String),
    /// The provider app is not set up for this flow.
    #[error("{0}")]
    Config(String),
}
