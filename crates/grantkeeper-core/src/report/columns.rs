//! The connections list in column form, the shape it travels to the window in: one array per
//! field instead of one object per connection, each tenant and provider app id once, and each
//! text field packed into one string ([`PackedStrings`]). A window holding 10,000 connections
//! keeps a few dozen arrays and strings instead of about 100,000 small objects and strings (the
//! rows, their accounts, status steps, ids and names), and parsing it leaves that much less
//! garbage.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{
    AccountIdentity, ConnectionId, ConnectionStatus, ProviderAppId, TenantId, UnixMillis,
};
use crate::status::{GrantState, StatusStep};

use super::{ConnectionRow, PackedStrings};

/// The connections list, one array per field of [`ConnectionRow`]: row `i` is element `i` of
/// each per-row array or packed column. Build it from rows with `From`, read a row back with
/// [`Self::row`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConnectionColumns {
    /// The distinct tenants, in order of first appearance.
    pub tenants: Vec<TenantId>,
    /// The distinct provider apps, in order of first appearance.
    pub apps: Vec<ProviderAppId>,
    /// Per row: identifier.
    pub id: PackedStrings,
    /// Per row: index into `tenants`.
    pub tenant: Vec<u32>,
    /// Per row: index into `apps`.
    pub app: Vec<u32>,
    /// Per row: name.
    pub name: PackedStrings,
    /// Per row: the account's subject.
    pub subject: PackedStrings,
    /// Per row: the account's user name.
    pub username: PackedStrings,
    /// Per row: the account's organization.
    pub org_id: PackedStrings,
    /// Per row: the stored state.
    pub status: Vec<ConnectionStatus>,
    /// Per row: why it is not active.
    pub status_detail: PackedStrings,
    /// Per row: where its status steps start in the `step_*` arrays; one more entry than rows,
    /// so row `i`'s steps are `step_start[i]..step_start[i + 1]`.
    pub step_start: Vec<u32>,
    /// Per step: from when it holds.
    #[ts(type = "Array<number>")]
    pub step_from: Vec<UnixMillis>,
    /// Per step: the state.
    pub step_state: Vec<GrantState>,
    /// Per step: someone must act.
    pub step_attention: Vec<bool>,
    /// Per row: when the cached access token expires.
    #[ts(type = "Array<number | null>")]
    pub access_expires_at: Vec<Option<UnixMillis>>,
    /// Per row: whether a refresh token is held.
    pub has_refresh_token: Vec<bool>,
    /// Per row: sliding refresh-token expiry.
    #[ts(type = "Array<number | null>")]
    pub refresh_expires_at: Vec<Option<UnixMillis>>,
    /// Per row: hard refresh-token expiry.
    #[ts(type = "Array<number | null>")]
    pub refresh_hard_expires_at: Vec<Option<UnixMillis>>,
    /// Per row: last hand-out of a token.
    #[ts(type = "Array<number | null>")]
    pub last_used_at: Vec<Option<UnixMillis>>,
}

/// Index of `value` in `distinct`, appended on first sight.
fn intern<T: Clone + Eq + std::hash::Hash>(
    value: T,
    distinct: &mut Vec<T>,
    seen: &mut HashMap<T, u32>,
) -> u32 {
    *seen.entry(value.clone()).or_insert_with(|| {
        distinct.push(value);
        u32::try_from(distinct.len() - 1).expect("fewer than 2^32 tenants or apps")
    })
}

impl From<Vec<ConnectionRow>> for ConnectionColumns {
    fn from(rows: Vec<ConnectionRow>) -> Self {
        let text = |field: fn(&ConnectionRow) -> Option<&str>| rows.iter().map(field).collect();
        let mut out = Self {
            id: text(|r| Some(r.id.as_str())),
            name: text(|r| Some(&r.name)),
            subject: text(|r| r.account.subject.as_deref()),
            username: text(|r| r.account.username.as_deref()),
            org_id: text(|r| r.account.org_id.as_deref()),
            status_detail: text(|r| r.status_detail.as_deref()),
            step_start: Vec::with_capacity(rows.len() + 1),
            ..Self::default()
        };
        let mut tenants = HashMap::new();
        let mut apps = HashMap::new();
        for r in rows {
            out.tenant
                .push(intern(r.tenant_id, &mut out.tenants, &mut tenants));
            out.app
                .push(intern(r.provider_app_id, &mut out.apps, &mut apps));
            out.status.push(r.status);
            out.step_start.push(step_index(out.step_from.len()));
            for s in r.status_steps {
                out.step_from.push(s.from);
                out.step_state.push(s.state);
                out.step_attention.push(s.attention);
            }
            out.access_expires_at.push(r.access_expires_at);
            out.has_refresh_token.push(r.has_refresh_token);
            out.refresh_expires_at.push(r.refresh_expires_at);
            out.refresh_hard_expires_at.push(r.refresh_hard_expires_at);
            out.last_used_at.push(r.last_used_at);
        }
        out.step_start.push(step_index(out.step_from.len()));
        out
    }
}

fn step_index(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 status steps")
}

impl ConnectionColumns {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Row `i` as a [`ConnectionRow`]; `None` past the end. Reading the packed text walks it,
    /// so this is for checks of a few rows, not for reading the whole list.
    pub fn row(&self, i: usize) -> Option<ConnectionRow> {
        let steps = *self.step_start.get(i)? as usize..*self.step_start.get(i + 1)? as usize;
        let text = |column: &PackedStrings| column.get(i).flatten().map(str::to_owned);
        Some(ConnectionRow {
            id: ConnectionId::from_string(text(&self.id)?),
            tenant_id: self.tenants[self.tenant[i] as usize].clone(),
            provider_app_id: self.apps[self.app[i] as usize].clone(),
            name: text(&self.name)?,
            account: AccountIdentity {
                subject: text(&self.subject),
                username: text(&self.username),
                org_id: text(&self.org_id),
            },
            status: self.status[i],
            status_detail: text(&self.status_detail),
            status_steps: steps
                .map(|s| StatusStep {
                    from: self.step_from[s],
                    state: self.step_state[s],
                    attention: self.step_attention[s],
                })
                .collect(),
            access_expires_at: self.access_expires_at[i],
            has_refresh_token: self.has_refresh_token[i],
            refresh_expires_at: self.refresh_expires_at[i],
            refresh_hard_expires_at: self.refresh_hard_expires_at[i],
            last_used_at: self.last_used_at[i],
        })
    }
}
