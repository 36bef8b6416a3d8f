//! A shared grant's secrets: one refresh across the team.
//!
//! A member about to refresh first takes the grant's lock on this machine, then the grant's
//! refresh lease in the team vault: the record is read, and written back with the lease in it
//! with check-and-set on the version read, so of two members only one write succeeds. The
//! loser polls until the lease is released (or lapses after [`LEASE_MS`]) and finds the winner's
//! access token in the record. The rotated refresh token is written with check-and-set on the
//! lease's version before its access token is used; releasing the lease writes the new access
//! token. A provider with single-use refresh tokens never sees one twice.

use std::time::Duration;

use rand::Rng;

use crate::audit::NewEvent;
use crate::bao::{BaoClient, BaoError};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::model::{now_ms, ConnectionId, ConnectionStatus};
use crate::secret::{HandOut, RefreshToken, SecretText};
use crate::store::{GrantLock, GrantState, HandOutEvents, Refreshed, SecretColumn, TokenStore};

use super::record::{Lease, LEASE_MS};
use super::store::{Held, Leases, TeamStore};

/// Releases a lease still held when the refresh ends without storing a result.
struct LeaseGuard {
    bao: BaoClient,
    leases: Leases,
    id: ConnectionId,
    path: String,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let held = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.id.as_str());
        if let Some(Held {
            version,
            mut record,
        }) = held
        {
            record.lease = None;
            // If this fails the lease lapses on its own after LEASE_MS.
            if let Err(e) = self.bao.write_cas(&self.path, &record.to_data(), version) {
                tracing::warn!(connection = %self.id, error = %e, "could not release a refresh lease");
            }
        }
    }
}

impl TeamStore<'_> {
    /// Writes the grant's new refresh token with check-and-set on the version of this member's
    /// lease.
    fn write_refresh_token(&self, id: &ConnectionId, token: &RefreshToken) -> Result<()> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let held = leases.get_mut(id.as_str()).ok_or_else(|| {
            Error::Invalid("a rotated refresh token arrived without this member's refresh lease; nothing was stored".into())
        })?;
        let mut record = held.record.clone();
        record.refresh_token = Some(self.sealer.seal("refresh_token", id, token.expose()));
        let path = super::record::grant_path(self.tenant(), id);
        held.version = self.bao.write_cas(&path, &record.to_data(), held.version)?;
        held.record = record;
        Ok(())
    }

    /// Looks at the grant in the team vault unless this process did within the sync interval;
    /// an unreachable team vault leaves the local cache in use.
    fn sync(&self, id: &ConnectionId) -> Result<()> {
        if self.recently_synced(id) {
            return Ok(());
        }
        match self.read_grant(&self.bao, id) {
            Ok((record, _)) => {
                self.apply_remote(id, &record)?;
                self.mark_synced(id);
                Ok(())
            }
            Err(Error::Team(BaoError::Unreachable { detail })) => {
                tracing::info!(connection = %id, %detail, "team vault unreachable; using the local cache");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl TokenStore for TeamStore<'_> {
    fn grant_state(&self, id: &ConnectionId) -> Result<GrantState> {
        self.local.grant_state(id)
    }

    fn take_access_token(
        &self,
        id: &ConnectionId,
        min_valid_ms: i64,
        events: HandOutEvents<'_>,
    ) -> Result<Option<HandOut>> {
        self.sync(id)?;
        self.local.take_access_token(id, min_valid_ms, events)
    }

    fn secret(&self, id: &ConnectionId, column: SecretColumn) -> Result<Option<SecretText>> {
        self.local.secret(id, column)
    }

    /// Shared grants are never DPoP-bound (sharing refuses them); a key would be this member's.
    fn dpop_key(&self, id: &ConnectionId) -> Result<Option<SecretText>> {
        self.local.dpop_key(id)
    }

    fn lock_grant(&self, id: &ConnectionId, deadline: &Deadline) -> Result<GrantLock> {
        let local = self.local.lock_grant(id, deadline)?;
        let bao = self.bao.bounded_by(deadline.instant());
        loop {
            let (record, version) = self.read_grant(&bao, id)?;
            // A teammate's refresh (or revocation) lands here first.
            self.apply_remote(id, &record)?;
            self.mark_synced(id);
            let now = now_ms();
            if record
                .lease
                .as_ref()
                .is_some_and(|l| l.holder != self.holder && l.until > now)
            {
                deadline.check(Some(&"a teammate is refreshing this grant"))?;
                let pause = rand::thread_rng().gen_range(15..40);
                std::thread::sleep(Duration::from_millis(pause));
                continue;
            }
            let mut mine = record;
            mine.lease = Some(Lease {
                holder: self.holder.clone(),
                until: now + LEASE_MS,
            });
            let path = super::record::grant_path(self.tenant(), id);
            match bao.write_cas(&path, &mine.to_data(), version) {
                Ok(version) => {
                    self.leases
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            id.as_str().to_owned(),
                            Held {
                                version,
                                record: mine,
                            },
                        );
                    let guard = LeaseGuard {
                        bao,
                        leases: self.leases.clone(),
                        id: id.clone(),
                        path,
                    };
                    return Ok(GrantLock::new((local, guard)));
                }
                Err(BaoError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn refresh_token(&self, id: &ConnectionId) -> Result<Option<RefreshToken>> {
        // A rotated refresh token that never reached the team vault (see `keep_refresh_token`)
        // is the grant's current one: it goes to the team vault first.
        if let Some(pending) = self.local.refresh_token(id)? {
            self.write_refresh_token(id, &pending)?;
            self.forget_local_refresh_token(id)?;
            tracing::info!(connection = %id, "moved a kept refresh token to the team vault");
            return Ok(Some(pending));
        }
        let sealed = match self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id.as_str())
        {
            Some(held) => held.record.refresh_token.clone(),
            None => self.read_grant(&self.bao, id)?.0.refresh_token,
        };
        sealed
            .map(|s| {
                Ok(RefreshToken::new(
                    self.sealer.open("refresh_token", id, &s)?.expose(),
                ))
            })
            .transpose()
    }

    fn keep_refresh_token(&self, id: &ConnectionId, token: &RefreshToken) -> Result<()> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.write_refresh_token(id, token) {
                Ok(()) => return Ok(()),
                Err(Error::Team(BaoError::Unreachable { .. })) if tries < 3 => {
                    std::thread::sleep(Duration::from_millis(250 * tries));
                }
                Err(e) => {
                    // The provider has rotated: the new refresh token is never dropped. It is
                    // kept here (the local journal, then the keychain) and this member's next
                    // refresh of the grant moves it to the team vault before anything else.
                    self.local.keep_refresh_token(id, token)?;
                    return Err(e);
                }
            }
        }
    }

    fn save_refreshed(
        &self,
        id: &ConnectionId,
        refreshed: &Refreshed<'_>,
        events: &mut dyn FnMut() -> Vec<NewEvent>,
    ) -> Result<()> {
        let tokens = refreshed.tokens;
        let member = self.member.clone();
        let (access, id_token) = (
            self.sealer
                .seal("access_token", id, tokens.access_token.expose()),
            tokens
                .id_token
                .as_ref()
                .map(|t| self.sealer.seal("id_token", id, t.expose())),
        );
        self.update_grant(id, |r| {
            r.access_token = Some(access.clone());
            if id_token.is_some() {
                r.id_token = id_token.clone();
            }
            r.access_expires_at = refreshed.expiry.map(|(t, _)| t);
            r.access_expiry_source = refreshed.expiry.map(|(_, s)| s);
            r.status = ConnectionStatus::Active;
            r.status_detail = None;
            r.refreshed_at = Some(refreshed.at);
            r.refreshed_by = Some(member.clone());
        })?;
        self.local.save_refreshed(id, refreshed, events)?;
        self.mark_synced(id);
        Ok(())
    }

    fn record_failure(
        &self,
        id: &ConnectionId,
        status: Option<(ConnectionStatus, &str)>,
        event: NewEvent,
    ) -> Result<()> {
        if let Some((s, detail)) = status {
            // The whole team learns the grant needs attention; if the team vault cannot be
            // told now, this member's record still says so.
            let shared = self.update_grant(id, |r| {
                r.status = s;
                r.status_detail = Some(detail.to_owned());
            });
            if let Err(e) = shared {
                tracing::warn!(connection = %id, error = %e, "could not record the failure in the team vault");
            }
        }
        self.local.record_failure(id, status, event)
    }

    fn forget_tokens(&self, id: &ConnectionId, detail: &str, event: NewEvent) -> Result<()> {
        let shared = self.update_grant(id, |r| {
            r.refresh_token = None;
            r.access_token = None;
            r.id_token = None;
            r.access_expires_at = None;
            r.status = ConnectionStatus::Revoked;
            r.status_detail = Some(detail.to_owned());
        });
        self.local.forget_tokens(id, detail, event)?;
        shared
    }
}
