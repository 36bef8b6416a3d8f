//! Handing out access tokens: the fast path, and a refresh when the cached token is too old.

use std::time::Duration;

use crate::audit::{Actor, EventKind, NewEvent};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{ConnectionId, ConnectionStatus, UnixMillis};
use crate::oauth::token::clamp_min_valid;
use crate::secret::{AccessToken, HandOut};
use crate::store::GrantState;
use crate::vault::TenantVault;

use super::{Disclosure, Entry, DEFAULT_MIN_VALID};

impl TenantVault<'_> {
    /// A valid access token for the connection, refreshed if it would expire within
    /// `min_valid` (at most 10 years: [`crate::oauth::token::MAX_LIFETIME`]), or a failure by
    /// `deadline`. Every hand-out is recorded (who asked, application hint) before the token is
    /// returned; if the record cannot be written, no token is returned. The hand-out policy
    /// ([`crate::policy`]) is checked first.
    pub fn access_token(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        let min_valid = clamp_min_valid(min_valid);
        self.check_hand_out(id, actor, deadline)?;
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

    pub(super) fn row(&self, id: &ConnectionId) -> Result<GrantState> {
        self.store.grant_state(id)
    }

    /// The fast path: one write that checks validity, decrypts, records the hand-out and returns
    /// the token; `None` when a refresh is needed.
    fn hand_out_if_valid(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> Result<Option<HandOut>> {
        let min_ms = i64::try_from(min_valid.as_millis()).unwrap_or(i64::MAX);
        self.store.take_access_token(id, min_ms, &mut |token, now| {
            vec![self.hand_out_event(id, token, now, actor, shown)]
        })
    }

    /// The event recording a hand-out (or a disclosure) of `token`.
    pub(super) fn hand_out_event(
        &self,
        id: &ConnectionId,
        token: &AccessToken,
        now: UnixMillis,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> NewEvent {
        let event = match shown {
            None => NewEvent::new(EventKind::HandedOut, actor),
            Some(how) => NewEvent::new(EventKind::Revealed, actor)
                .detail(serde_json::json!({ "secret": "access_token", "how": how })),
        };
        event
            .at(now)
            .tenant(&self.tenant.id)
            .connection(id)
            .fingerprint(self.vault.fingerprint(token.expose()))
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
        let _lock = self.store.lock_grant(id, deadline)?;
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
        let Some(rt) = self.store.refresh_token(id)? else {
            return Err(not_usable(if row.has_access {
                "the access token has expired and this connection has no refresh token: connect again"
            } else {
                "this connection holds no token: connect again"
            }));
        };
        // A refresh that cannot be sent (no token endpoint, discovery failed) failed too.
        let ctx = match self.grant_context(id).and_then(|ctx| {
            crate::oauth::flow::require(&ctx.app.endpoints, "token").map_err(Error::OAuth)?;
            Ok(ctx)
        }) {
            Ok(ctx) => ctx,
            Err(e) => return Err(self.record_unsent(id, e, actor)),
        };
        let http = ctx.http.bounded_by(deadline.instant());
        let response = match self.request_refresh(&ctx.protocol(&http), &rt, deadline) {
            Ok(r) => r,
            Err(e) => {
                let over = deadline.is_over();
                let recorded = self.record_failure(id, e, ctx.preset, actor);
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
