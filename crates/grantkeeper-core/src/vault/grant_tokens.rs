//! A grant's secrets in the local vault: the cached tokens sealed in its row, the refresh token
//! in the keychain, the refresh journal (steps 3–6 of the crash analysis in [`crate::grants`])
//! and the lock file around a refresh.

use rusqlite::{params, OptionalExtension};

use crate::audit::{self, NewEvent};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{now_ms, ConnectionId, ConnectionStatus};
use crate::secret::{AccessToken, HandOut, RefreshToken, SecretText};
use crate::store::{GrantLock, GrantState, HandOutEvents, Refreshed, SecretColumn, TokenStore};

use super::grant_lock::RefreshLock;
use super::local::Sealed;
use super::LocalStore;

impl LocalStore<'_> {
    fn not_found(id: &ConnectionId) -> Error {
        Error::NotFound {
            what: "connection",
            name: id.to_string(),
        }
    }

    /// Moves a journaled refresh token into the keychain (step 4 of the crash analysis).
    fn recover_journal(&self, id: &ConnectionId) -> Result<()> {
        let blob: Option<Vec<u8>> = self
            .vault
            .conn()
            .query_row(
                "SELECT refresh_token FROM refresh_journal WHERE connection_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(blob) = blob else { return Ok(()) };
        let rt = self.open(Sealed::JournaledRefreshToken, id.as_str(), &blob)?;
        self.vault.keychain.set(&self.refresh_entry(id), &rt)?;
        self.vault.conn().execute(
            "DELETE FROM refresh_journal WHERE connection_id = ?1",
            [id.as_str()],
        )?;
        tracing::info!(connection = %id, "recovered a rotated refresh token from the journal");
        Ok(())
    }

    /// The grant's last use, with the hand-out events of the same write.
    fn mark_used(tx: &audit::HistoryTx<'_>, id: &ConnectionId, at: i64) -> Result<()> {
        tx.prepare_cached("UPDATE connections SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), at])?;
        Ok(())
    }
}

impl TokenStore for LocalStore<'_> {
    fn grant_state(&self, id: &ConnectionId) -> Result<GrantState> {
        self.vault
            .conn()
            .prepare_cached(
                "SELECT status, access_token IS NOT NULL FROM connections WHERE id = ?1 AND tenant_id = ?2",
            )?
            .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| {
                Ok(GrantState {
                    status: r.get(0)?,
                    has_access: r.get(1)?,
                })
            })
            .optional()?
            .ok_or_else(|| Self::not_found(id))
    }

    fn take_access_token(
        &self,
        id: &ConnectionId,
        min_valid_ms: i64,
        events: HandOutEvents<'_>,
    ) -> Result<Option<HandOut>> {
        // A read first: an expiring token must not take the write lock.
        let (status, expires): (ConnectionStatus, Option<i64>) = self
            .vault
            .conn()
            .prepare_cached("SELECT status, access_expires_at FROM connections WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| Self::not_found(id))?;
        if status != ConnectionStatus::Active
            || expires.is_some_and(|e| e.saturating_sub(now_ms()) < min_valid_ms)
        {
            return Ok(None);
        }
        self.vault.write(|tx| {
            let (status, expires, blob): (ConnectionStatus, Option<i64>, Option<Vec<u8>>) = tx
                .prepare_cached(
                    "SELECT status, access_expires_at, access_token FROM connections WHERE id = ?1 AND tenant_id = ?2",
                )?
                .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?
                .ok_or_else(|| Self::not_found(id))?;
            let now = now_ms();
            if status != ConnectionStatus::Active {
                return Ok(None);
            }
            let Some(blob) = blob else { return Ok(None) };
            if expires.is_some_and(|e| e.saturating_sub(now) < min_valid_ms) {
                return Ok(None);
            }
            let token = AccessToken::new(self.open(Sealed::AccessToken, id.as_str(), &blob)?.expose());
            audit::append_batch(tx, &events(&token, now))?;
            Self::mark_used(tx, id, now)?;
            Ok(Some(HandOut {
                token,
                expires_at: expires,
            }))
        })
    }

    fn secret(&self, id: &ConnectionId, column: SecretColumn) -> Result<Option<SecretText>> {
        let sealed = Sealed::from(column);
        let (_, name) = sealed.place();
        let blob: Option<Option<Vec<u8>>> = self
            .vault
            .conn()
            .query_row(
                &format!("SELECT {name} FROM connections WHERE id = ?1 AND tenant_id = ?2"),
                params![id.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let blob = blob.ok_or_else(|| Self::not_found(id))?;
        blob.map(|b| self.open(sealed, id.as_str(), &b)).transpose()
    }

    fn lock_grant(&self, id: &ConnectionId, deadline: &Deadline) -> Result<GrantLock> {
        let lock = RefreshLock::acquire(self.lock_path(id)?, deadline)?;
        self.recover_journal(id)?;
        Ok(GrantLock::new(lock))
    }

    fn refresh_token(&self, id: &ConnectionId) -> Result<Option<RefreshToken>> {
        Ok(self
            .vault
            .keychain
            .get(&self.refresh_entry(id))?
            .map(|t| RefreshToken::new(t.expose())))
    }

    fn dpop_key(&self, id: &ConnectionId) -> Result<Option<SecretText>> {
        Ok(self.vault.keychain.get(&self.dpop_entry(id))?)
    }

    fn keep_refresh_token(&self, id: &ConnectionId, token: &RefreshToken) -> Result<()> {
        let blob = self.seal(Sealed::JournaledRefreshToken, id.as_str(), token.expose());
        self.vault.conn().execute(
            "INSERT OR REPLACE INTO refresh_journal (connection_id, refresh_token, created_at) VALUES (?1, ?2, ?3)",
            params![id.as_str(), blob, now_ms()],
        )?;
        crate::testing::crash_point("after_journal");
        self.vault
            .keychain
            .set(&self.refresh_entry(id), &SecretText::new(token.expose()))?;
        crate::testing::crash_point("after_keychain");
        Ok(())
    }

    fn save_refreshed(
        &self,
        id: &ConnectionId,
        refreshed: &Refreshed<'_>,
        events: &mut dyn FnMut() -> Vec<NewEvent>,
    ) -> Result<()> {
        let (access_blob, id_blob) = self.seal_tokens(id, refreshed.tokens);
        let scopes = refreshed
            .scopes_granted
            .map(|s| serde_json::to_string(s).expect("strings serialize"));
        let expiry = refreshed.expiry;
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET access_token = ?2, access_expires_at = ?3, access_expiry_source = ?4,
                        id_token = COALESCE(?5, id_token), last_refresh_at = ?6, status = ?9,
                        status_detail = NULL, scopes_granted = COALESCE(?7, scopes_granted),
                        refresh_expires_at = ?8,
                        refresh_hard_expires_at = COALESCE(?10, refresh_hard_expires_at)
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    access_blob,
                    expiry.map(|(t, _)| t),
                    expiry.map(|(_, s)| serde_json::to_string(&s).expect("enums serialize")),
                    id_blob,
                    refreshed.at,
                    scopes,
                    refreshed.refresh_expires_at,
                    ConnectionStatus::Active,
                    refreshed.refresh_hard_expires_at,
                ],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append_batch(tx, &events())?;
            Self::mark_used(tx, id, refreshed.at)
        })
    }

    fn record_failure(
        &self,
        id: &ConnectionId,
        status: Option<(ConnectionStatus, &str)>,
        event: NewEvent,
    ) -> Result<()> {
        self.vault.write(|tx| {
            if let Some((s, detail)) = status {
                tx.execute(
                    "UPDATE connections SET status = ?2, status_detail = ?3 WHERE id = ?1",
                    params![id.as_str(), s, detail],
                )?;
            }
            audit::append(tx, &event)?;
            Ok(())
        })
    }

    fn forget_tokens(&self, id: &ConnectionId, detail: &str, event: NewEvent) -> Result<()> {
        self.vault.keychain.delete(&self.refresh_entry(id))?;
        self.vault.keychain.delete(&self.dpop_entry(id))?;
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET status = ?3, status_detail = ?2, access_token = NULL, id_token = NULL,
                        has_refresh_token = 0, access_expires_at = NULL WHERE id = ?1",
                params![id.as_str(), detail, ConnectionStatus::Revoked],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(tx, &event)?;
            Ok(())
        })
    }
}
