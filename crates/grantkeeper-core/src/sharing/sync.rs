//! Keeping up with a team vault at once: the login renewed, the grants teammates added copied
//! here, and this member's events pushed to the team's history (which also happens on its own,
//! in batches: see [`crate::team::history`]).

use serde::Serialize;

use crate::audit::Actor;
use crate::error::Result;
use crate::model::TenantId;
use crate::Vault;

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Synced {
    /// Team logins renewed (renewable tokens only).
    pub logins_renewed: usize,
    /// Shared connections teammates added, now here too.
    pub connections_added: usize,
    /// This member's events appended to the team history.
    pub history_events_appended: usize,
}

impl Vault {
    /// Renews every renewable team login, brings every shared tenant up to its team vault
    /// (provider apps and grants teammates added) and appends this member's new events to the
    /// team history.
    pub fn team_sync(&self, actor: &Actor) -> Result<Synced> {
        let config = self.teams.get();
        let mut synced = Synced::default();
        for login in config.teams.values() {
            let client = login.client(self.http.clone())?;
            if client.lookup_self()?.renewable {
                client.renew_self()?;
                synced.logins_renewed += 1;
            }
        }
        for (tenant, shared) in &config.tenants {
            let login = self.login_of(&config, &shared.team)?;
            let client = login.client(self.http.clone())?;
            let id = TenantId::from_string(tenant);
            let key = self.teams.data_key(&id, shared, login)?;
            let store = self.team_store(&id, login, key)?;
            let apps = self.join_apps(&client, &store, actor)?;
            synced.connections_added += self.join_grants(&client, &store, &apps)?;
        }
        synced.history_events_appended = self.push_team_history()?;
        Ok(synced)
    }

    /// Appends this member's events on shared tenants that the team's history lacks; returns
    /// how many (see [`crate::team::history`]).
    pub fn push_team_history(&self) -> Result<usize> {
        crate::team::history::push(&self.conn(), &self.teams.get(), &self.http)
    }
}
