//! Handing out access tokens: the fast path, and a refresh when the cached token is too old.

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{now_ms, ConnectionId, ConnectionStatus, UnixMillis};
use crate::oauth::token::clamp_min_valid;
use crate::secret::{AccessToken, RefreshToken};
use crate::vault::TenantVault;
use rusqlite::{params, OptionalExtension};
use std::path::PathBuf;
use std::time::Duration;

use super::{Disclosure, Entry, RefreshLock, DEFAULT_MIN_VALID};
use crate::secret::HandOut;
use crate::vault::LOCKS_DIR;

/// The connection fields a refresh decision needs.
pub(super) struct Row {
    pub(super) status: ConnectionStatus,
    pub(super) has_access: bool,
}

impl TenantVault<'_> {
    /// A valid access token for the connection, refreshed if it would expire within
    /// `min_valid` (at most 10 years: [`crate::oauth::token::MAX_LIFETIME`]), or a failure by
    /// `deadline`. Every hand-out is recorded (who asked, application hint) before the token is
    /// returned; if the record cannot be written, no token is returned.
    pub fn access_token(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        let min_valid = clamp_min_valid(min_valid);
        if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
            return Ok(token);
        }
        self.refresh_then_hand_out(id, min_valid, deadline, actor, false)
    }

    /// The access token for the user's eyes or clipboard, valid for at least a minute
    /// (refreshed first if needed, recorded as usual). The disclosure is recorded as a
    /// `revealed` event, in the same transaction that reads the token.
    ///
    /// A refresh needed first ends by `deadline`; when the caller cancels while it runs, its new
    /// tokens are kept but nothing is disclosed (and no `revealed` event written). A token that
    /// lives less than a minute even when fresh is disclosed right after its refresh.
    pub fn disclose_access_token(
        &self,
        id: &ConnectionId,
        how: Disclosure,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        const MIN_VALID: Duration = Duration::from_secs(60);
        if let Some(token) = self.hand_out_if_valid(id, MIN_VALID, actor, Some(how))? {
            return Ok(token);
        }
        drop(self.refresh(id, deadline, actor)?);
        deadline.check(None)?;
        self.hand_out_if_valid(id, Duration::from_secs(1), actor, Some(how))?
            .ok_or_else(|| Error::NotUsable {
                status: self.row(id).map_or(ConnectionStatus::Error, |r| r.status),
                message: "the connection has no valid access token; refresh or re-consent it"
                    .into(),
            })
    }

    /// Refreshes now, whatever the cached token's expiry, and hands out the new token; or a
    /// failure by `deadline` (which the window's Cancel ends early).
    pub fn refresh(
        &self,
        id: &ConnectionId,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        self.refresh_then_hand_out(id, DEFAULT_MIN_VALID, deadline, actor, true)
    }

    pub(super) fn row(&self, id: &ConnectionId) -> Result<Row> {
        let conn = self.vault.conn();
        let row = conn
            .query_row(
                "SELECT status, access_token IS NOT NULL FROM connections WHERE id = ?1 AND tenant_id = ?2",
                params![id.as_str(), self.tenant.id.as_str()],
                |r| {
                    Ok(Row {
                        status: r.get(0)?,
                        has_access: r.get(1)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "connection",
                name: id.to_string(),
            })?;
        Ok(row)
    }

    /// The fast path: one write transaction that checks validity, decrypts, records the
    /// hand-out and returns the token; `None` when a refresh is needed.
    fn hand_out_if_valid(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> Result<Option<HandOut>> {
        let aad = self.aad("connections", "access_token", id.as_str());
        let min_ms = i64::try_from(min_valid.as_millis()).unwrap_or(i64::MAX);
        // A read first: an expiring token must not take the write lock.
        let (status, expires): (ConnectionStatus, Option<i64>) = self
            .vault
            .conn()
            .prepare_cached("SELECT status, access_expires_at FROM connections WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "connection",
                name: id.to_string(),
            })?;
        if status != ConnectionStatus::Active
            || expires.is_some_and(|e| e.saturating_sub(now_ms()) < min_ms)
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
                .ok_or_else(|| Error::NotFound {
                    what: "connection",
                    name: id.to_string(),
                })?;
            let now = now_ms();
            if status != ConnectionStatus::Active {
                return Ok(None);
            }
            let Some(blob) = blob else { return Ok(None) };
            if expires.is_some_and(|e| e.saturating_sub(now) < min_ms) {
                return Ok(None);
            }
            let token = AccessToken::new(self.key.open(&aad, &blob)?.expose());
            self.record_hand_out(tx, id, &token, now, actor, shown)?;
            Ok(Some(HandOut {
                token,
                expires_at: expires,
            }))
        })
    }

    pub(super) fn record_hand_out(
        &self,
        tx: &audit::HistoryTx<'_>,
        id: &ConnectionId,
        token: &AccessToken,
        now: UnixMillis,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> Result<()> {
        let event = match shown {
            None => NewEvent::new(EventKind::HandedOut, actor),
            Some(how) => NewEvent::new(EventKind::Revealed, actor)
                .detail(serde_json::json!({ "secret": "access_token", "how": how })),
        };
        audit::append(
            tx,
            &event
                .at(now)
                .tenant(&self.tenant.id)
                .connection(id)
                .fingerprint(self.vault.fingerprint(token.expose())),
        )?;
        tx.prepare_cached("UPDATE connections SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), now])?;
        Ok(())
    }

    /// The connection's lock file. Ids come from callers (the window, the agent), so only a
    /// well-formed id (a UUID, as the vault makes them) becomes part of a path.
    pub(super) fn lock_path(&self, id: &ConnectionId) -> Result<PathBuf> {
        if uuid::Uuid::try_parse(id.as_str()).is_err() {
            return Err(Error::NotFound {
                what: "connection",
                name: id.to_string(),
            });
        }
        Ok(self.vault.home().join(LOCKS_DIR).join(format!("{id}.lock")))
    }

    fn refresh_then_hand_out(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        deadline: &Deadline,
        actor: &Actor,
        force: bool,
    ) -> Result<HandOut> {
        // Threads of this process wait at the gate while one of them refreshes, then all try
        // the fast path at once; only the thread that opens the gate reaches the file lock.
        let gate = self.vault.refresh_gate(id);
        let min_ms = if force {
            i64::MAX
        } else {
            i64::try_from(min_valid.as_millis()).unwrap_or(i64::MAX)
        };
        let _turn = loop {
            match gate.enter(actor, min_ms, deadline)? {
                Entry::Turn(turn) => break turn,
                Entry::Served(token) => return Ok(token),
                Entry::Retry if force => continue,
                Entry::Retry => {
                    if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                        return Ok(token);
                    }
                }
            }
        };
        if !force {
            if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                return Ok(token);
            }
        }
        let _lock = RefreshLock::acquire(self.lock_path(id)?, deadline)?;
        self.recover_journal(id)?;
        // Another process may have refreshed while this one waited for the lock.
        if !force {
            if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                return Ok(token);
            }
        }
        let row = self.row(id)?;
        let not_usable = |message: &str| Error::NotUsable {
            status: row.status,
            message: message.into(),
        };
        match row.status {
            ConnectionStatus::Active | ConnectionStatus::Error => {}
            ConnectionStatus::NeedsReconsent => {
                return Err(not_usable(
                    "this connection needs re-consent: the provider no longer accepts its refresh token",
                ))
            }
            ConnectionStatus::Revoked => {
                return Err(not_usable(
                    "this connection was revoked: consent again to use it",
                ))
            }
        }
        let rt = self
            .vault
            .keychain
            .get(&self.refresh_entry(id))?
            .map(|t| RefreshToken::new(t.expose()));
        let Some(rt) = rt else {
            return Err(not_usable(if row.has_access {
                "the access token has expired and this connection has no refresh token: connect again"
            } else {
                "this connection holds no token: connect again"
            }));
        };
        let ctx = self.grant_context(id)?;
        let http = self.vault.http.bounded_by(deadline.instant());
        crate::oauth::flow::require(&ctx.app.endpoints, "token").map_err(Error::OAuth)?;
        let response = match self.request_refresh(&ctx.protocol(&http), &rt, deadline) {
            Ok(r) => r,
            Err(e) => {
                let over = deadline.is_over();
                let recorded = self.record_failure(id, e, actor);
                // The deadline is what the caller ran into; the attempt's failure says why.
                return Err(if over && !matches!(recorded, Error::Database(_)) {
                    deadline.error(Some(&recorded))
                } else {
                    recorded
                });
            }
        };
        self.store_refresh(id, response, ctx.preset, actor, &gate)
    }
}
