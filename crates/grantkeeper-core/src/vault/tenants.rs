//! Tenants: created, listed, found, renamed, deleted, and the only way to one's key (`Vault::tenant`).

use rusqlite::{params, OptionalExtension};
use serde_json::json;

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::crypto::{Aad, DataKey, TenantKey};
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::*;
use crate::status::{GrantState, StatusFacts, StatusStep};
use std::collections::HashMap;

use super::{unless_taken, LocalStore, TenantVault, Vault};

impl Vault {
    /// Creates a tenant with its own data key. `slug` defaults to one derived from `name`.
    pub fn create_tenant(
        &self,
        name: &str,
        slug: Option<&str>,
        notes: &str,
        actor: &Actor,
    ) -> Result<Tenant> {
        self.create_tenant_as(TenantId::generate(), name, slug, notes, actor)
    }

    /// [`Self::create_tenant`] with a given id (a tenant a teammate shared).
    pub(crate) fn create_tenant_as(
        &self,
        id: TenantId,
        name: &str,
        slug: Option<&str>,
        notes: &str,
        actor: &Actor,
    ) -> Result<Tenant> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("a tenant needs a name".into()));
        }
        let slug = match slug {
            Some(s) => validate_slug(s)?,
            None => validate_slug(&slugify(name))?,
        };
        let tenant = Tenant {
            id,
            slug,
            name: name.to_owned(),
            notes: notes.to_owned(),
            created_at: now_ms(),
        };
        let _keys_lock = self.keys_lock()?;
        let tenant_key = TenantKey::generate();
        self.change_tenant_keys(|keys| {
            keys.tenants
                .insert(tenant.id.to_string(), tenant_key.clone());
        })?;
        let wrapped = tenant_key.wrap(
            &DataKey::generate(),
            &Aad::tenant_data_key(&self.id, tenant.id.as_str()),
        );
        let written = self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO tenants (id, slug, name, notes, created_at, wrapped_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant.id.as_str(), tenant.slug, tenant.name, tenant.notes, tenant.created_at, wrapped],
            );
            unless_taken(inserted, "tenant", &tenant.slug)?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::TenantCreated, actor)
                    .tenant(&tenant.id)
                    .detail(json!({ "name": tenant.name, "slug": tenant.slug })),
            )?;
            Ok(())
        });
        if let Err(e) = written {
            let _ = self.change_tenant_keys(|keys| {
                keys.tenants.remove(tenant.id.as_str());
            });
            return Err(e);
        }
        tracing::info!(tenant = %tenant.id, slug = %tenant.slug, "tenant created");
        Ok(tenant)
    }

    /// All tenants with their connection counts and attention marks (from each connection's
    /// status computed now, see [`crate::status`]), by name.
    pub fn list_tenants(&self) -> Result<Vec<TenantSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, t.slug, t.name, t.notes, t.created_at, COUNT(c.id)
             FROM tenants t LEFT JOIN connections c ON c.tenant_id = t.id
             GROUP BY t.id ORDER BY t.name COLLATE NOCASE",
        )?;
        let mut tenants = stmt
            .query_map([], |r| {
                Ok(TenantSummary {
                    tenant: row_to_tenant(r)?,
                    connections: r.get(5)?,
                    needs_attention: 0,
                    attention_label: String::new(),
                    recount_at: None,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = conn.prepare(
            "SELECT tenant_id, status, access_expires_at, has_refresh_token, refresh_expires_at,
                    refresh_hard_expires_at
             FROM connections",
        )?;
        let facts = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StatusFacts {
                    status: r.get(1)?,
                    access_expires_at: r.get(2)?,
                    has_refresh_token: r.get(3)?,
                    refresh_expires_at: r.get(4)?,
                    refresh_hard_expires_at: r.get(5)?,
                },
            ))
        })?;
        let now = crate::model::now_ms();
        let mut marks: HashMap<String, AttentionCount> = HashMap::new();
        for row in facts {
            let (tenant, facts) = row?;
            marks.entry(tenant).or_default().add(&facts.steps(now));
        }
        for t in &mut tenants {
            if let Some(m) = marks.remove(t.tenant.id.as_str()) {
                t.needs_attention = m.total();
                t.attention_label = m.label();
                t.recount_at = m.recount_at;
            }
        }
        Ok(tenants)
    }

    /// Finds a tenant by slug or id.
    pub fn find_tenant(&self, slug_or_id: &str) -> Result<Tenant> {
        let conn = self.conn();
        let found = conn
            .prepare_cached(
                "SELECT id, slug, name, notes, created_at FROM tenants WHERE slug = ?1 OR id = ?1",
            )?
            .query_row([slug_or_id], row_to_tenant)
            .optional()?;
        found.ok_or_else(|| Error::NotFound {
            what: "tenant",
            name: slug_or_id.to_owned(),
        })
    }

    /// Renames a tenant (display name only; the slug stays).
    pub fn rename_tenant(&self, id: &TenantId, name: &str, actor: &Actor) -> Result<()> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("a tenant needs a name".into()));
        }
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tenants SET name = ?2 WHERE id = ?1",
                params![id.as_str(), name],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    what: "tenant",
                    name: id.to_string(),
                });
            }
            audit::append(
                tx,
                &NewEvent::new(EventKind::ConfigChanged, actor)
                    .tenant(id)
                    .detail(json!({ "change": "tenant_renamed", "name": name })),
            )?;
            Ok(())
        })
    }

    /// Deletes a tenant: its refresh tokens and provider-app keys leave the keychain, its rows and its data key leave
    /// the database (crypto-shredding what any backup still holds), and its events are redacted.
    pub fn delete_tenant(&self, id: &TenantId, actor: &Actor) -> Result<()> {
        let connections: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT id FROM connections WHERE tenant_id = ?1")?;
            let rows = stmt.query_map([id.as_str()], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let apps: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT id FROM provider_apps WHERE tenant_id = ?1")?;
            let rows = stmt.query_map([id.as_str()], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        self.find_tenant(id.as_str())?;
        for c in &connections {
            self.keychain
                .delete(&EntryName::refresh_token(&self.id, id.as_str(), c))?;
            self.keychain
                .delete(&EntryName::dpop_key(&self.id, id.as_str(), c))?;
        }
        for a in &apps {
            self.keychain
                .delete(&EntryName::client_key(&self.id, id.as_str(), a))?;
        }
        // Crypto-shredding: without its key, no copy of the database decrypts the tenant.
        {
            let _keys_lock = self.keys_lock()?;
            self.change_tenant_keys(|keys| {
                keys.tenants.remove(id.as_str());
                keys.adopting.remove(id.as_str());
                keys.policies.remove(id.as_str());
            })?;
        }
        self.data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.write(|tx| {
            audit::redact_tenant(tx, id)?;
            tx.execute(
                "DELETE FROM connections WHERE tenant_id = ?1",
                [id.as_str()],
            )?;
            tx.execute("DELETE FROM tenants WHERE id = ?1", [id.as_str()])?;
            tx.execute(
                "DELETE FROM hand_out_policies WHERE tenant_id = ?1",
                [id.as_str()],
            )?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::TenantDeleted, actor)
                    .tenant(id)
                    .detail(json!({ "connections": connections.len() })),
            )?;
            Ok(())
        })?;
        tracing::info!(tenant = %id, connections = connections.len(), "tenant deleted");
        // Push the deleted pages out of the write-ahead log too.
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Opens a tenant's scope: the only way to reach its secrets.
    pub fn tenant(&self, id: &TenantId) -> Result<TenantVault<'_>> {
        let local = self.local_store(id)?;
        let tenant = local.tenant.clone();
        let store = crate::team::store_for(
            Box::new(local),
            &tenant.id,
            &self.teams,
            &self.keychain,
            &self.id,
            &self.http,
        )?;
        Ok(TenantVault {
            vault: self,
            tenant,
            store,
        })
    }

    /// A tenant's records in this vault, its data key unwrapped.
    pub(crate) fn local_store(&self, id: &TenantId) -> Result<LocalStore<'_>> {
        let (tenant, wrapped): (Tenant, Vec<u8>) = self
            .conn()
            .prepare_cached(
                "SELECT id, slug, name, notes, created_at, wrapped_key FROM tenants WHERE id = ?1",
            )?
            .query_row([id.as_str()], |r| Ok((row_to_tenant(r)?, r.get(5)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "tenant",
                name: id.to_string(),
            })?;
        let key = self.data_key(&tenant, &wrapped)?;
        Ok(LocalStore {
            vault: self,
            tenant,
            key,
        })
    }
}

pub(super) fn row_to_tenant(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId::from_string(r.get::<_, String>(0)?),
        slug: r.get(1)?,
        name: r.get(2)?,
        notes: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

pub(crate) fn validate_slug(slug: &str) -> Result<String> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(Error::Invalid(format!(
            "'{slug}' is not a valid tenant slug: use 1-64 lowercase letters, digits and dashes"
        )))
    }
}

pub(super) fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{name}' is not a valid {what} name: use letters, digits, '-', '_' and '.'"
        )))
    }
}

/// A tenant's connections needing attention now, by state, and when that changes next.
#[derive(Default)]
struct AttentionCount {
    by_state: std::collections::BTreeMap<&'static str, u32>,
    recount_at: Option<crate::model::UnixMillis>,
}

impl AttentionCount {
    fn add(&mut self, steps: &[StatusStep]) {
        let now = &steps[0];
        if now.attention {
            *self.by_state.entry(state_words(now.state)).or_default() += 1;
        }
        if let Some(next) = steps.iter().skip(1).find(|s| s.attention != now.attention) {
            self.recount_at = Some(self.recount_at.map_or(next.from, |r| r.min(next.from)));
        }
    }

    fn total(&self) -> u32 {
        self.by_state.values().sum()
    }

    fn label(&self) -> String {
        let parts: Vec<String> = self
            .by_state
            .iter()
            .map(|(words, n)| format!("{n} {words}"))
            .collect();
        parts.join(", ")
    }
}

/// A state as the attention label names it.
fn state_words(state: GrantState) -> &'static str {
    match state {
        GrantState::Expired => "expired",
        GrantState::NeedsReconsent => "need re-consent",
        GrantState::Error => "failed to refresh",
        GrantState::Revoked => "revoked",
        GrantState::Expiring => "expiring",
        GrantState::Active => "active",
    }
}
