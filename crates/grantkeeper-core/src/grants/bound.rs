//! Grants bound to this device: the DPoP key a connection's tokens are bound to, and the headers
//! of one resource request made with them (what `grantkeeper token --dpop-proof` prints and the
//! authenticating proxy sends).

use crate::error::{Error, Result};
use crate::model::{Connection, TokenBinding};
use crate::oauth::dpop::{DpopHeaders, DpopKey};
use crate::secret::AccessToken;
use crate::vault::TenantVault;

impl TenantVault<'_> {
    /// The DPoP key `connection`'s tokens are bound to, from the store.
    pub fn dpop_key(&self, connection: &Connection) -> Result<DpopKey> {
        if connection.binding() != Some(TokenBinding::Dpop) {
            return Err(self.not_bound(connection));
        }
        let text = self.store.dpop_key(&connection.id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "the DPoP key of connection '{}/{}' is gone from this computer's secret store, and its tokens are useless without it: connect the account again (grantkeeper reconsent)",
                self.tenant().slug,
                connection.name
            ))
        })?;
        Ok(DpopKey::from_secret(&text)?)
    }

    /// The `Authorization` and `DPoP` headers of one `method` request to `url` with `token`
    /// (handed out for `connection`), the resource server's `nonce` in the proof when it asked
    /// for one.
    pub fn dpop_headers(
        &self,
        connection: &Connection,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        token: &AccessToken,
    ) -> Result<DpopHeaders> {
        crate::http::check(url).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self
            .dpop_key(connection)?
            .resource_headers(method, url, nonce, token)?)
    }

    fn not_bound(&self, connection: &Connection) -> Error {
        Error::Invalid(format!(
            "connection '{}/{}' is not DPoP-bound: its access token is a bearer token, sent as 'Authorization: Bearer <token>' without a proof",
            self.tenant().slug,
            connection.name
        ))
    }
}
