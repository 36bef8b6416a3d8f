//! A grant's status computed from its facts: the stored state (re-consent, revoked, error after
//! the last refresh) and the expiry times. The one place the CLI and the window take it from.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{Connection, ConnectionStatus, UnixMillis};

/// An access token this close to its expiry is "expiring".
pub const ACCESS_EXPIRING_MS: i64 = 5 * 60_000;
/// A grant whose refresh token ends this soon (only re-consent renews it then) is "expiring".
pub const GRANT_EXPIRING_MS: i64 = 7 * 24 * 3_600_000;

/// What a grant's facts say about it at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Usable.
    Active,
    /// The access token ends within 5 minutes, or the grant itself within 7 days.
    Expiring,
    /// The access token is past its expiry. Renewed on the next use while a live refresh token
    /// is held; otherwise nothing usable is left.
    Expired,
    /// The provider refused the grant: the user must consent again.
    NeedsReconsent,
    /// Revoked.
    Revoked,
    /// The last refresh failed (configuration or provider); see the detail.
    Error,
}

impl GrantState {
    /// Every state, in the order front ends list them.
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Expiring,
        Self::Expired,
        Self::NeedsReconsent,
        Self::Revoked,
        Self::Error,
    ];

    /// Parses [`GrantState::as_str`]'s text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Its name in text output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::NeedsReconsent => "needs_reconsent",
            Self::Revoked => "revoked",
            Self::Error => "error",
        }
    }
}

/// A grant's status at one moment, and whether someone must act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StatusStep {
    /// From when this holds (milliseconds since the epoch; 0: since the grant's facts changed).
    #[ts(type = "number")]
    pub from: UnixMillis,
    /// The state.
    pub state: GrantState,
    /// Someone must act: re-consent, fix an error, or connect again (an expired grant with no
    /// live refresh token). An expired access token that the next use renews needs nobody.
    pub attention: bool,
}

/// The facts status is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFacts {
    /// The stored state.
    pub status: ConnectionStatus,
    /// When the cached access token expires.
    pub access_expires_at: Option<UnixMillis>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// Sliding refresh-token expiry.
    pub refresh_expires_at: Option<UnixMillis>,
    /// Hard refresh-token expiry.
    pub refresh_hard_expires_at: Option<UnixMillis>,
}

impl From<&Connection> for StatusFacts {
    fn from(c: &Connection) -> Self {
        Self {
            status: c.status,
            access_expires_at: c.access_expires_at,
            has_refresh_token: c.has_refresh_token,
            refresh_expires_at: c.refresh_expires_at,
            refresh_hard_expires_at: c.refresh_hard_expires_at,
        }
    }
}

impl StatusFacts {
    /// When the refresh token dies (the earlier of its expiries), if one is held and it is known.
    fn refresh_ends_at(&self) -> Option<UnixMillis> {
        if !self.has_refresh_token {
            return None;
        }
        match (self.refresh_expires_at, self.refresh_hard_expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a refresh token is held that has not reached its expiry at `at`.
    fn renewable_at(&self, at: UnixMillis) -> bool {
        self.has_refresh_token && self.refresh_ends_at().is_none_or(|end| at < end)
    }

    /// The status at `at`.
    pub fn at(&self, at: UnixMillis) -> StatusStep {
        let (state, attention) = match self.status {
            ConnectionStatus::Revoked => (GrantState::Revoked, false),
            ConnectionStatus::NeedsReconsent => (GrantState::NeedsReconsent, true),
            ConnectionStatus::Error => (GrantState::Error, true),
            ConnectionStatus::Active => {
                let renewable = self.renewable_at(at);
                // No access token cached and none to get: as good as expired.
                let access_over = self.access_expires_at.is_some_and(|e| e <= at)
                    || (self.access_expires_at.is_none() && !renewable && self.has_refresh_token);
                let grant_ends = self.refresh_ends_at();
                if access_over {
                    (GrantState::Expired, !renewable)
                } else if self
                    .access_expires_at
                    .is_some_and(|e| e - at <= ACCESS_EXPIRING_MS)
                    || grant_ends.is_some_and(|e| e - at <= GRANT_EXPIRING_MS)
                {
                    (GrantState::Expiring, false)
                } else {
                    (GrantState::Active, false)
                }
            }
        };
        StatusStep {
            from: at,
            state,
            attention,
        }
    }

    /// The status from `now` on: the first step holds now (its `from` is the last expiry
    /// boundary passed, 0 if none), each later one from its `from`, as long as the facts stay the
    /// same. At most five steps.
    pub fn steps(&self, now: UnixMillis) -> Vec<StatusStep> {
        let mut bounds: Vec<UnixMillis> = Vec::with_capacity(4);
        if let Some(e) = self.access_expires_at {
            bounds.extend([e - ACCESS_EXPIRING_MS, e]);
        }
        if let Some(end) = self.refresh_ends_at() {
            bounds.extend([end - GRANT_EXPIRING_MS, end]);
        }
        bounds.sort_unstable();
        let since = bounds
            .iter()
            .rev()
            .find(|b| **b <= now)
            .copied()
            .unwrap_or(0);
        let mut steps = vec![StatusStep {
            from: since,
            ..self.at(now)
        }];
        for b in bounds.into_iter().filter(|b| *b > now) {
            let step = self.at(b);
            let last = steps.last().expect("one step at least");
            if (step.state, step.attention) != (last.state, last.attention) {
                steps.push(step);
            }
        }
        steps
    }
}

/// The step in force at `at` (the first one before any step starts).
pub fn step_at(steps: &[StatusStep], at: UnixMillis) -> Option<&StatusStep> {
    steps.iter().rev().find(|s| s.from <= at).or(steps.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn facts() -> StatusFacts {
        StatusFacts {
            status: ConnectionStatus::Active,
            access_expires_at: Some(NOW + HOUR),
            has_refresh_token: true,
            refresh_expires_at: None,
            refresh_hard_expires_at: None,
        }
    }

    #[test]
    fn an_access_token_past_its_expiry_is_expired_never_active() {
        let f = facts();
        assert_eq!(f.at(NOW).state, GrantState::Active);
        assert_eq!(f.at(NOW + HOUR - 60_000).state, GrantState::Expiring);
        let after = f.at(NOW + HOUR);
        assert_eq!(after.state, GrantState::Expired);
        assert!(
            !after.attention,
            "a live refresh token renews it on the next use"
        );
        let no_refresh = StatusFacts {
            has_refresh_token: false,
            ..f
        };
        let after = no_refresh.at(NOW + HOUR + 1);
        assert_eq!(after.state, GrantState::Expired);
        assert!(after.attention, "nothing is left to get a token with");
    }

    #[test]
    fn a_refresh_token_past_its_expiry_leaves_an_expired_grant_that_needs_someone() {
        let f = StatusFacts {
            access_expires_at: Some(NOW - HOUR),
            refresh_expires_at: Some(NOW + 10 * 24 * HOUR),
            refresh_hard_expires_at: Some(NOW + 2 * 24 * HOUR),
            ..facts()
        };
        assert_eq!(f.at(NOW), step(NOW, GrantState::Expired, false));
        assert_eq!(
            f.at(NOW + 2 * 24 * HOUR),
            step(NOW + 2 * 24 * HOUR, GrantState::Expired, true)
        );
        // The grant ends within 7 days: expiring, as long as the access token is live.
        let live = StatusFacts {
            access_expires_at: Some(NOW + HOUR),
            ..f
        };
        assert_eq!(live.at(NOW).state, GrantState::Expiring);
    }

    #[test]
    fn the_stored_state_wins_over_the_clock() {
        for (status, state, attention) in [
            (ConnectionStatus::Revoked, GrantState::Revoked, false),
            (
                ConnectionStatus::NeedsReconsent,
                GrantState::NeedsReconsent,
                true,
            ),
            (ConnectionStatus::Error, GrantState::Error, true),
        ] {
            let f = StatusFacts {
                status,
                access_expires_at: Some(NOW - HOUR),
                ..facts()
            };
            assert_eq!(f.steps(NOW), vec![step(NOW - HOUR, state, attention)]);
        }
    }

    #[test]
    fn steps_list_each_change_ahead_once() {
        let f = StatusFacts {
            has_refresh_token: false,
            ..facts()
        };
        let steps = f.steps(NOW);
        assert_eq!(
            steps,
            vec![
                step(0, GrantState::Active, false),
                step(NOW + HOUR - ACCESS_EXPIRING_MS, GrantState::Expiring, false),
                step(NOW + HOUR, GrantState::Expired, true),
            ]
        );
        assert_eq!(
            step_at(&steps, NOW + HOUR - 1).unwrap().state,
            GrantState::Expiring
        );
        assert_eq!(
            step_at(&steps, NOW + 5 * HOUR).unwrap().state,
            GrantState::Expired
        );
        assert_eq!(step_at(&steps, NOW - 1).unwrap().state, GrantState::Active);
    }

    fn step(from: UnixMillis, state: GrantState, attention: bool) -> StatusStep {
        StatusStep {
            from,
            state,
            attention,
        }
    }
}
