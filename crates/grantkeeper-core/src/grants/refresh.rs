//! Refreshing: the request with its retries, the failure record, the journal and the store.

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::catalog::Preset;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::http::HttpError;
use crate::model::{now_ms, ConnectionId, ConnectionStatus, ExpirySource, UnixMillis};
use crate::oauth::jwt::DecodedJwt;
use crate::oauth::protocol::ProviderClient;
use crate::oauth::token::{expiry_after, TokenResponse};
use crate::oauth::OAuthError;
use crate::secret::{RefreshToken, SecretText};
use crate::vault::TenantVault;
use rand::Rng;
use rusqlite::{params, OptionalExtension};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::{Waiter, ATTEMPTS};
use crate::error::FailureClass;
use crate::gate::RefreshGate;
use crate::provider_app::{AppContext, Discovery};
use crate::secret::HandOut;

impl TenantVault<'_> {
    /// Sends the refresh, retrying transient failures with back-off while the deadline allows.
    pub(super) fn request_refresh(
        &self,
        client: &ProviderClient<'_>,
        rt: &RefreshToken,
        deadline: &Deadline,
    ) -> Result<TokenResponse, OAuthError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match client.refresh(rt) {
                Ok(r) => return Ok(r),
                Err(e)
                    if FailureClass::of(&e) == FailureClass::Transient
                        && attempt < ATTEMPTS
                        && retryable(&e) =>
                {
                    let base = 250u64 << (attempt - 1);
                    let jitter = rand::thread_rng().gen_range(0..=base / 2);
                    if deadline
                        .sleep(Duration::from_millis(base + jitter))
                        .is_err()
                    {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn record_failure(&self, id: &ConnectionId, e: OAuthError, actor: &Actor) -> Error {
        let class = FailureClass::of(&e);
        let message = e.to_string();
        let (status, detail) = match class {
            FailureClass::NeedsReconsent => (
                Some(ConnectionStatus::NeedsReconsent),
                format!("The provider rejected the refresh token ({message}). Consent again to restore access."),
            ),
            FailureClass::Configuration => (
                Some(ConnectionStatus::Error),
                format!("The provider rejected the client ({message}). Check the client id and secret."),
            ),
            FailureClass::Transient => (None, message.clone()),
        };
        let written = self.vault.write(|tx| {
            if let Some(s) = status {
                tx.execute(
                    "UPDATE connections SET status = ?2, status_detail = ?3 WHERE id = ?1",
                    params![id.as_str(), s, detail],
                )?;
            }
            audit::append(
                tx,
                &self
                    .event(EventKind::RefreshFailed, id, actor)
                    .detail(json!({ "class": class, "error": message })),
            )?;
            Ok(())
        });
        match written {
            Ok(()) => Error::Refresh { class, source: e },
            Err(w) => w,
        }
    }

    /// The connection's provider app, checked, as requests need it.
    pub(super) fn grant_context(&self, id: &ConnectionId) -> Result<AppContext> {
        let app = self.connection_app(&self.connection(id)?)?;
        self.app_context(app, Discovery::WhenMissing)
    }

    /// Moves a journaled refresh token into the keychain (step 4 of the crash analysis).
    pub(super) fn recover_journal(&self, id: &ConnectionId) -> Result<()> {
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
        let rt = self.key.open(
            &self.aad("refresh_journal", "refresh_token", id.as_str()),
            &blob,
        )?;
        self.vault.keychain.set(&self.refresh_entry(id), &rt)?;
        self.vault.conn().execute(
            "DELETE FROM refresh_journal WHERE connection_id = ?1",
            [id.as_str()],
        )?;
        tracing::info!(connection = %id, "recovered a rotated refresh token from the journal");
        Ok(())
    }

    pub(super) fn store_refresh(
        &self,
        id: &ConnectionId,
        response: TokenResponse,
        preset: Option<&Preset>,
        actor: &Actor,
        gate: &RefreshGate,
    ) -> Result<HandOut> {
        let mut served: Vec<Arc<Waiter>> = Vec::new();
        let now = now_ms();
        let rotated = response.tokens.refresh_token.clone();
        if let Some(new_rt) = &rotated {
            let blob = self.key.seal(
                &self.aad("refresh_journal", "refresh_token", id.as_str()),
                new_rt.expose(),
            );
            self.vault.conn().execute(
                "INSERT OR REPLACE INTO refresh_journal (connection_id, refresh_token, created_at) VALUES (?1, ?2, ?3)",
                params![id.as_str(), blob, now],
            )?;
            crate::testing::crash_point("after_journal");
            self.vault
                .keychain
                .set(&self.refresh_entry(id), &SecretText::new(new_rt.expose()))?;
            crate::testing::crash_point("after_keychain");
        }
        let token = response.tokens.access_token.clone();
        let expiry = refreshed_expiry(&response, preset, now);
        let (access_blob, id_blob) = self.seal_tokens(id, &response.tokens);
        let scopes = response
            .scopes
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("strings serialize"));
        let sliding = response
            .refresh_expires_in
            .map(|s| expiry_after(now, s))
            .or_else(|| {
                preset
                    .and_then(|p| p.expiry.refresh_idle_days)
                    .map(|d| now + i64::from(d) * 86_400_000)
            });
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET access_token = ?2, access_expires_at = ?3, access_expiry_source = ?4,
                        id_token = COALESCE(?5, id_token), last_refresh_at = ?6, status = 'active',
                        status_detail = NULL, scopes_granted = COALESCE(?7, scopes_granted),
                        refresh_expires_at = ?8
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    access_blob,
                    expiry.map(|(t, _)| t),
                    expiry.map(|(_, s)| serde_json::to_string(&s).expect("enums serialize")),
                    id_blob,
                    now,
                    scopes,
                    sliding,
                ],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::Refreshed, actor)
                    .at(now)
                    .tenant(&self.tenant.id)
                    .connection(id)
                    .fingerprint(self.vault.fingerprint(token.expose()))
                    .detail(json!({ "rotated": rotated.is_some() })),
            )?;
            self.record_hand_out(tx, id, &token, now, actor, None)?;
            // Threads of this process waiting at the gate get the same token, recorded here.
            let valid_ms = expiry.map_or(i64::MAX, |(t, _)| t.saturating_sub(now));
            let mut events = Vec::new();
            for w in gate.waiters().iter().filter(|w| w.min_valid_ms <= valid_ms) {
                events.push(self.event(EventKind::HandedOut, id, &w.actor).at(now).fingerprint(self.vault.fingerprint(token.expose())));
                served.push(w.clone());
            }
            if !events.is_empty() {
                audit::append_batch(tx, &events)?;
            }
            Ok(())
        })?;
        let handed = HandOut {
            token,
            expires_at: expiry.map(|(t, _)| t),
        };
        for w in served {
            *w.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(handed.clone());
        }
        crate::testing::crash_point("after_commit");
        Ok(handed)
    }
}

fn retryable(e: &OAuthError) -> bool {
    match e {
        OAuthError::Http(HttpError::Timeout { .. } | HttpError::Network { .. }) => true,
        OAuthError::Provider { status, .. } => *status >= 500 || *status == 429,
        OAuthError::Malformed(m) => m.contains("HTTP 5"),
        _ => false,
    }
}

fn refreshed_expiry(
    response: &TokenResponse,
    preset: Option<&Preset>,
    now: UnixMillis,
) -> Option<(UnixMillis, ExpirySource)> {
    if let Some(s) = response.expires_in {
        return Some((expiry_after(now, s), ExpirySource::Response));
    }
    if let Some(exp) =
        DecodedJwt::decode(response.tokens.access_token.expose()).and_then(|d| d.expires_at_ms())
    {
        return Some((exp, ExpirySource::JwtExp));
    }
    preset
        .and_then(|p| p.expiry.access_default_secs)
        .map(|s| (expiry_after(now, s), ExpirySource::CatalogDefault))
}
