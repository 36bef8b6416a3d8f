//! Refreshing: the request with its retries, the failure record, the journal and the store.

use crate::audit::{Actor, EventKind};
use crate::catalog::Preset;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::http::HttpError;
use crate::model::{
    now_ms, ConnectionId, ConnectionStatus, ExpirySource, TokenBinding, UnixMillis,
};
use crate::oauth::jwt::DecodedJwt;
use crate::oauth::protocol::ProviderClient;
use crate::oauth::token::{expiry_after, TokenResponse};
use crate::oauth::OAuthError;
use crate::secret::RefreshToken;
use crate::store::Refreshed;
use crate::vault::TenantVault;
use rand::Rng;
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

    pub(super) fn record_failure(
        &self,
        id: &ConnectionId,
        e: OAuthError,
        preset: Option<&Preset>,
        actor: &Actor,
    ) -> Error {
        let class = FailureClass::of(&e);
        let message = e.to_string();
        // A cause the provider's answer does not name, from the catalog.
        let testing = preset
            .and_then(|p| p.expiry.testing_refresh_days)
            .map(|d| {
                format!(
                    " If the provider app is still in testing status, its refresh tokens end {d} days after consent: publish it to keep access longer."
                )
            })
            .unwrap_or_default();
        let (status, detail) = match class {
            FailureClass::NeedsReconsent => (
                Some(ConnectionStatus::NeedsReconsent),
                format!("The provider rejected the refresh token ({message}). Consent again to restore access.{testing}"),
            ),
            FailureClass::Configuration => (
                Some(ConnectionStatus::Error),
                format!("The provider rejected the client ({message}). Check the client id and secret."),
            ),
            FailureClass::Transient => (None, message.clone()),
        };
        let event = self
            .event(EventKind::RefreshFailed, id, actor)
            .detail(json!({ "class": class, "error": message }));
        let written = self
            .store
            .record_failure(id, status.map(|s| (s, detail.as_str())), event);
        match written {
            Ok(()) => Error::Refresh { class, source: e },
            Err(w) => w,
        }
    }

    /// Records a refresh that could not even be sent (the provider app has no token endpoint,
    /// discovery failed, its settings were changed outside Grantkeeper) as a failed refresh; the
    /// connection's state stays. Returns `e`, or the failure to write the event.
    pub(super) fn record_unsent(&self, id: &ConnectionId, e: Error, actor: &Actor) -> Error {
        let class = if e.provider_unreachable() {
            FailureClass::Transient
        } else {
            FailureClass::Configuration
        };
        let event = self
            .event(EventKind::RefreshFailed, id, actor)
            .detail(json!({ "class": class, "error": e.to_string(), "sent": false }));
        match self.store.record_failure(id, None, event) {
            Ok(()) => e,
            Err(w) => w,
        }
    }

    /// The connection's provider app, checked, as requests need it, with the connection's
    /// DPoP key when its tokens are bound to one.
    pub(super) fn grant_context(&self, id: &ConnectionId) -> Result<AppContext> {
        let connection = self.connection(id)?;
        let app = self.connection_app(&connection)?;
        let mut context = self.app_context(app, Discovery::WhenMissing)?;
        if connection.binding() == Some(TokenBinding::Dpop) {
            context.dpop = Some(self.dpop_key(&connection)?);
        }
        Ok(context)
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
        let rotated = response.tokens.refresh_token.is_some();
        if let Some(new_rt) = &response.tokens.refresh_token {
            self.store.keep_refresh_token(id, new_rt)?;
        }
        let token = response.tokens.access_token.clone();
        let expiry = refreshed_expiry(&response, preset, now);
        let sliding = response
            .refresh_expires_in
            .map(|s| expiry_after(now, s))
            .or_else(|| {
                preset
                    .and_then(|p| p.expiry.refresh_idle_days)
                    .map(|d| now + i64::from(d) * 86_400_000)
            });
        let refreshed = Refreshed {
            tokens: &response.tokens,
            expiry,
            scopes_granted: response.scopes.as_deref(),
            refresh_expires_at: sliding,
            refresh_hard_expires_at: response
                .refresh_hard_expires_in
                .map(|s| expiry_after(now, s)),
            at: now,
        };
        let fingerprint = self.vault.fingerprint(token.expose());
        self.store.save_refreshed(id, &refreshed, &mut || {
            let mut events = vec![
                self.event(EventKind::Refreshed, id, actor)
                    .at(now)
                    .fingerprint(fingerprint.clone())
                    .detail(json!({ "rotated": rotated })),
                self.hand_out_event(id, &token, now, actor, None),
            ];
            // Threads of this process waiting at the gate get the same token, recorded here.
            let valid_ms = expiry.map_or(i64::MAX, |(t, _)| t.saturating_sub(now));
            served.clear();
            for w in gate.waiters().iter().filter(|w| w.min_valid_ms <= valid_ms) {
                events.push(
                    self.event(EventKind::HandedOut, id, &w.actor)
                        .at(now)
                        .fingerprint(fingerprint.clone()),
                );
                served.push(w.clone());
            }
            events
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
