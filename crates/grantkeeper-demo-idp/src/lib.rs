//! The demo identity provider: an OAuth 2.0 authorization server on 127.0.0.1 that the desktop
//! app starts with `--demo`, so a newcomer can try the whole consent flow with no network and no
//! account anywhere.
//!
//! It speaks what Grantkeeper expects from a careful provider: RFC 8414 metadata, authorization
//! code with PKCE S256 only (plain refused), loopback redirect URIs only, RFC 9207 `iss` in the
//! redirect, refresh-token rotation with reuse detection (a replayed refresh token revokes the
//! whole grant), RFC 7009 revocation and RFC 7662 introspection. Access tokens are short-lived
//! JWTs (10 minutes) so expiry countdowns and refreshes are visible. The consent page lets the
//! user approve or deny. One demo account, one public client (`grantkeeper-demo`). State lives
//! in memory: grants end when the app quits.

mod pages;
mod server;

pub use server::{DemoIdp, CLIENT_ID, DEFAULT_PORT};
