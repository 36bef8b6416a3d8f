//! The local store: a tenant's records in the vault's SQLite file, its secrets sealed under the
//! tenant's data key, its refresh tokens in the OS keychain, one lock file per grant.

use crate::crypto::{Aad, DataKey};
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::{ConnectionId, Tenant};
use crate::secret::{SecretText, TokenSet};
use crate::store::SecretColumn;

use super::{Vault, LOCKS_DIR};

/// One tenant's records in the local vault, with its unwrapped data key.
pub(crate) struct LocalStore<'v> {
    pub(crate) vault: &'v Vault,
    pub(crate) tenant: Tenant,
    pub(crate) key: DataKey,
}

/// The sealed columns of the local store.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sealed {
    /// `connections.access_token`.
    AccessToken,
    /// `connections.id_token`.
    IdToken,
    /// `refresh_journal.refresh_token`: a rotated refresh token on its way to the keychain.
    JournaledRefreshToken,
    /// `provider_apps.client_secret`.
    ClientSecret,
}

impl Sealed {
    /// Its table and column.
    pub(super) fn place(self) -> (&'static str, &'static str) {
        match self {
            Self::AccessToken => ("connections", "access_token"),
            Self::IdToken => ("connections", "id_token"),
            Self::JournaledRefreshToken => ("refresh_journal", "refresh_token"),
            Self::ClientSecret => ("provider_apps", "client_secret"),
        }
    }
}

impl From<SecretColumn> for Sealed {
    fn from(c: SecretColumn) -> Self {
        match c {
            SecretColumn::AccessToken => Self::AccessToken,
            SecretColumn::IdToken => Self::IdToken,
        }
    }
}

impl LocalStore<'_> {
    /// Seals `text` for one column of one row under the tenant's key, bound to the vault,
    /// tenant, table, column and row: a sealed value copied anywhere else does not open.
    pub(crate) fn seal(&self, what: Sealed, row: &str, text: &str) -> Vec<u8> {
        self.key.seal(&self.aad(what, row), text)
    }

    /// Opens what [`Self::seal`] sealed for the same column and row.
    pub(crate) fn open(&self, what: Sealed, row: &str, blob: &[u8]) -> Result<SecretText> {
        Ok(self.key.open(&self.aad(what, row), blob)?)
    }

    fn aad(&self, what: Sealed, row: &str) -> Aad {
        let (table, column) = what.place();
        Aad::column(&self.vault.id, self.tenant.id.as_str(), table, column, row)
    }

    /// A connection's tokens sealed for its `access_token` and `id_token` columns.
    pub(super) fn seal_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            self.seal(
                Sealed::AccessToken,
                id.as_str(),
                tokens.access_token.expose(),
            ),
            tokens
                .id_token
                .as_ref()
                .map(|t| self.seal(Sealed::IdToken, id.as_str(), t.expose())),
        )
    }

    /// The keychain entry of a connection's refresh token.
    pub(crate) fn refresh_entry(&self, connection: &ConnectionId) -> EntryName {
        EntryName::refresh_token(&self.vault.id, self.tenant.id.as_str(), connection.as_str())
    }

    /// The keychain entry of a connection's DPoP key.
    pub(crate) fn dpop_entry(&self, connection: &ConnectionId) -> EntryName {
        EntryName::dpop_key(&self.vault.id, self.tenant.id.as_str(), connection.as_str())
    }

    /// The connection's lock file. Ids come from callers (the window, the agent), so only a
    /// well-formed id (a UUID, as the vault makes them) becomes part of a path.
    pub(super) fn lock_path(&self, id: &ConnectionId) -> Result<std::path::PathBuf> {
        if uuid::Uuid::try_parse(id.as_str()).is_err() {
            return Err(Error::NotFound {
                what: "connection",
                name: id.to_string(),
            });
        }
        Ok(self.vault.home().join(LOCKS_DIR).join(format!("{id}.lock")))
    }
}
