//! Where hand-out policies live: one MAC'd row per tenant, its version in the keychain (the
//! design is in [`crate::policy`]), and the check before each hand-out.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use hmac::{Hmac, Mac};
use rusqlite::{params, OptionalExtension};
use serde_json::json;
use sha2::Sha256;

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::crypto::VaultKeys;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::{ConnectionId, Tenant, TenantId};
use crate::policy::{self, ask, Mode, Program, Rule, TenantPolicy, Verdict};

use super::{TenantVault, Vault};

/// The newest policy version known of each tenant (from the keychain, or from a row whose MAC
/// verified), and when the keychain was last read.
#[derive(Default)]
pub(super) struct KnownVersions(Mutex<(BTreeMap<String, u64>, Option<Instant>)>);

impl KnownVersions {
    /// Takes in the versions just read from the keychain.
    pub(super) fn learn(&self, from_keychain: &BTreeMap<String, u64>) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (tenant, &v) in from_keychain {
            let slot = known.0.entry(tenant.clone()).or_default();
            *slot = (*slot).max(v);
        }
        known.1 = Some(Instant::now());
    }

    fn saw(&self, tenant: &TenantId, version: u64) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = known.0.entry(tenant.to_string()).or_default();
        *slot = (*slot).max(version);
    }

    fn get(&self, tenant: &TenantId) -> u64 {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known.0.get(tenant.as_str()).copied().unwrap_or(0)
    }

    fn stale(&self) -> bool {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        known
            .1
            .is_none_or(|at| at.elapsed() >= policy::KEYCHAIN_RECHECK)
    }
}

/// A stored row: version, rules (JSON) and MAC.
type Row = (u64, String, Vec<u8>);

impl Vault {
    /// A tenant's hand-out policy, verified (see [`crate::policy`]): a row edited, rolled back
    /// or deleted outside Grantkeeper is [`Error::Tampered`].
    pub fn hand_out_policy(&self, tenant: &TenantId) -> Result<TenantPolicy> {
        let t = self.find_tenant(tenant.as_str())?;
        Ok(self.verified_policy(&t)?.1)
    }

    /// Sets (`Some`) or removes (`None`) the rule of one connection, or the tenant's default
    /// when `connection` is `None`, and records a `policy_changed` event. A policy changed
    /// outside Grantkeeper is replaced (its rules cannot be trusted), and the event says so.
    pub fn set_hand_out_rule(
        &self,
        tenant: &TenantId,
        connection: Option<&ConnectionId>,
        rule: Option<Rule>,
        actor: &Actor,
    ) -> Result<TenantPolicy> {
        let t = self.find_tenant(tenant.as_str())?;
        let name = match connection {
            Some(id) => Some(self.tenant(&t.id)?.store.connection(id)?.name),
            None => None,
        };
        let _keys_lock = self.keys_lock()?;
        self.read_policy_versions()?;
        let (mut policy, replaced) = match self.verified_policy(&t) {
            Ok((_, p)) => (p, false),
            Err(Error::Tampered(_)) => (TenantPolicy::default(), true),
            Err(e) => return Err(e),
        };
        match (connection, rule.clone()) {
            (Some(id), Some(r)) => {
                policy.connections.insert(id.to_string(), r);
            }
            (Some(id), None) => {
                policy.connections.remove(id.as_str());
            }
            (None, r) => policy.default = r,
        }
        let stored = self.policy_row(&t.id)?.map_or(0, |r| r.0);
        let version = self.policy_versions.get(&t.id).max(stored) + 1;
        let body = serde_json::to_string(&policy).expect("policies serialize");
        let mac = self.policy_mac(&t.id, version, &body);
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO hand_out_policies (tenant_id, version, body, mac)
                 VALUES (?1, ?2, ?3, ?4)",
                params![t.id.as_str(), version as i64, body, mac],
            )?;
            let mut event = NewEvent::new(EventKind::PolicyChanged, actor)
                .tenant(&t.id)
                .detail(json!({
                    "scope": if connection.is_some() { "connection" } else { "tenant" },
                    "connection": name,
                    "mode": rule.as_ref().map(|r| r.mode.as_str()),
                    "allow": rule.as_ref().map(|r| &r.allow),
                    "version": version,
                    "replaced_changed_outside": replaced,
                }));
            if let Some(id) = connection {
                event = event.connection(id);
            }
            audit::append(tx, &event)?;
            Ok(())
        })?;
        self.change_tenant_keys(|keys| {
            keys.policies.insert(t.id.to_string(), version);
        })?;
        self.policy_versions.saw(&t.id, version);
        Ok(policy)
    }

    /// The tenant's policy and its version, checked against the keychain's version.
    fn verified_policy(&self, t: &Tenant) -> Result<(u64, TenantPolicy)> {
        if self.policy_versions.stale() {
            self.read_policy_versions()?;
        }
        let known = self.policy_versions.get(&t.id);
        let changed = |why: &str| {
            tracing::warn!(tenant = %t.id, why, "hand-out policy changed outside Grantkeeper");
            Error::Tampered(format!(
                "the hand-out policy of tenant '{}' was changed outside Grantkeeper ({why}), so no token is handed out: check what else writes to the vault folder, then run `grantkeeper policy set {} any|listed|ask` to restore it",
                t.slug, t.slug
            ))
        };
        match self.policy_row(&t.id)? {
            None if known == 0 => Ok((0, TenantPolicy::default())),
            None => Err(changed("its record was deleted")),
            Some((version, body, mac)) => {
                if !self.policy_mac_verifies(&t.id, version, &body, &mac) {
                    return Err(changed("its record does not authenticate"));
                }
                if version < known {
                    return Err(changed("an older record was put back"));
                }
                let policy = serde_json::from_str(&body)
                    .map_err(|_| changed("its record does not parse"))?;
                self.policy_versions.saw(&t.id, version);
                Ok((version, policy))
            }
        }
    }

    fn policy_row(&self, tenant: &TenantId) -> Result<Option<Row>> {
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT version, body, mac FROM hand_out_policies WHERE tenant_id = ?1",
            )?
            .query_row([tenant.as_str()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        Ok(row.map(|(v, body, mac)| (u64::try_from(v).unwrap_or(0), body, mac)))
    }

    /// Reads the policy versions from the keychain entry of the vault's keys.
    fn read_policy_versions(&self) -> Result<()> {
        if let Some(text) = self.keychain.get(&EntryName::master_key(&self.id))? {
            self.policy_versions
                .learn(&VaultKeys::from_keychain_text(&text)?.policies);
        }
        Ok(())
    }

    fn policy_hmac(&self, tenant: &TenantId, version: u64, body: &str) -> Hmac<Sha256> {
        let key = zeroize::Zeroizing::new(self.master.derive(b"grantkeeper/hand-out-policy/v1"));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&*key).expect("any key length");
        for field in [self.id.as_bytes(), tenant.as_str().as_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.update(&version.to_be_bytes());
        mac.update(body.as_bytes());
        mac
    }

    fn policy_mac(&self, tenant: &TenantId, version: u64, body: &str) -> Vec<u8> {
        self.policy_hmac(tenant, version, body)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    fn policy_mac_verifies(&self, tenant: &TenantId, version: u64, body: &str, tag: &[u8]) -> bool {
        self.policy_hmac(tenant, version, body)
            .verify_slice(tag)
            .is_ok()
    }
}

impl TenantVault<'_> {
    /// Checks the hand-out policy before a token goes to `actor`'s program (the command line and
    /// the agent; see [`policy::gates`]). An `ask` waits for the user until `deadline`, at most
    /// [`ask::ASK_TIMEOUT`]. A refusal is recorded as a `hand_out_refused` event
    /// with the program and the reason, and returned as an error saying what to do.
    pub(crate) fn check_hand_out(
        &self,
        id: &ConnectionId,
        actor: &Actor,
        deadline: &Deadline,
    ) -> Result<()> {
        if !policy::gates(actor) {
            return Ok(());
        }
        let program = actor.caller.as_deref().and_then(Program::from_caller);
        let rule = match self.vault.verified_policy(&self.tenant) {
            Ok((_, p)) => p.rule_for(id.as_str()).0,
            Err(e @ Error::Tampered(_)) => {
                self.record_refusal(
                    id,
                    actor,
                    None,
                    "the hand-out policy was changed outside Grantkeeper",
                );
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let verdict = policy::judge(&rule, program.as_ref());
        if verdict == Verdict::Allow {
            return Ok(());
        }
        let name = self.store.connection(id)?.name;
        let target = format!("{}/{name}", self.tenant.slug);
        let who = program
            .as_ref()
            .map_or_else(|| "an unknown program".to_owned(), Program::describe);
        let reason = match verdict {
            Verdict::Allow => return Ok(()),
            Verdict::Refuse(reason) => reason,
            Verdict::Ask => {
                let question = ask::Question {
                    tenant: self.tenant.slug.clone(),
                    connection: name.clone(),
                    program: program.as_ref().and_then(|p| p.exe.clone()),
                    pid: program.as_ref().map(|p| p.pid),
                    wait_ms: u64::try_from(ask::ASK_TIMEOUT.min(deadline.remaining()).as_millis())
                        .unwrap_or(u64::MAX),
                };
                match ask::ask_window(self.vault.home(), &question) {
                    Ok(true) => return Ok(()),
                    Ok(false) => "the user denied it in the window".to_owned(),
                    Err(why) => why,
                }
            }
        };
        self.record_refusal(id, actor, Some(rule.mode), &reason);
        let fix = match rule.mode {
            Mode::Listed => format!(
                "to allow it, add its path to the list: `grantkeeper policy show {target}`, then `grantkeeper policy set {target} listed --allow PATH…`"
            ),
            Mode::Ask => "answer Allow in the Grantkeeper window (open it first), or list the program with `grantkeeper policy set`".to_owned(),
            Mode::Any => String::new(),
        };
        Err(Error::HandOutRefused(format!(
            "the hand-out policy of {target} refused {who}: {reason}; {fix}"
        )))
    }

    /// Records a refused hand-out; a failure to record is logged (the refusal stands).
    fn record_refusal(&self, id: &ConnectionId, actor: &Actor, mode: Option<Mode>, reason: &str) {
        let event = NewEvent::new(EventKind::HandOutRefused, actor)
            .tenant(&self.tenant.id)
            .connection(id)
            .detail(json!({ "mode": mode.map(Mode::as_str), "reason": reason }));
        if let Err(e) = self.vault.record_events(&[event]) {
            tracing::warn!(error = %e, "a refused hand-out could not be recorded");
        }
    }
}
