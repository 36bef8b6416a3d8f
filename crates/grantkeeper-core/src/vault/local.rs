//! The local store: a tenant's records in the vault's SQLite file, its secrets sealed under the
//! tenant's data key, its refresh tokens in the OS keychain, one lock file per grant.

use crate::crypto::{Aad, DataKey};
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::{ConnectionId, Tenant};
use crate::secret::TokenSet;

use super::{Vault, LOCKS_DIR};

/// One tenant's records in the local vault, with its unwrapped data key.
pub(crate) struct LocalStore<'v> {
    pub(crate) vault: &'v Vault,
    pub(crate) tenant: Tenant,
    pub(crate) key: DataKey,
}

impl LocalStore<'_> {
    /// The additional data that binds a sealed value to its vault, tenant, table, column and row.
    pub(crate) fn aad(&self, table: &str, column: &str, row: &str) -> Aad {
        Aad::column(&self.vault.id, self.tenant.id.as_str(), table, column, row)
    }

    /// A connection's tokens sealed for its `access_token` and `id_token` columns.
    pub(super) fn seal_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let seal = |column, text: &str| {
            self.key
                .seal(&self.aad("connections", column, id.as_str()), text)
        };
        (
            seal("access_token", tokens.access_token.expose()),
            tokens
                .id_token
                .as_ref()
                .map(|t| seal("id_token", t.expose())),
        )
    }

    /// The keychain entry of a connection's refresh token.
    pub(crate) fn refresh_entry(&self, connection: &ConnectionId) -> EntryName {
        EntryName::refresh_token(&self.vault.id, self.tenant.id.as_str(), connection.as_str())
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
