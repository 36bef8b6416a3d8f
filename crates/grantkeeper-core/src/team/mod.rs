//! Team vaults: tenants shared through an OpenBao (or HashiCorp Vault) server, so that
//! teammates use one grant without consenting again and refresh it once for everyone.
//!
//! - [`config`]: the team logins and shared tenants, in the keychain with the vault's keys;
//! - [`keys`]: each shared tenant's team data key, wrapped per member;
//! - [`history`]: each member's events on shared tenants, pushed in batches to the team vault;
//! - [`record`]: what the team vault holds for a shared grant (sealed secrets, state, lease);
//! - [`store`] and `tokens`: [`TeamStore`], a shared tenant behind the storage seam.
//!
//! The grant logic does not know about teams: a shared tenant's [`crate::TenantVault`] simply
//! holds a [`TeamStore`] instead of the local store.
//!
//! KV v2 layout under the team's mount: `members/<member>` (public key),
//! `tenants/<tenant>/tenant` (name, slug), `tenants/<tenant>/keys` (the data key wrapped for each
//! member), `tenants/<tenant>/apps/<app>` (settings, client secret sealed),
//! `tenants/<tenant>/grants/<connection>` (sealed tokens, state, lease; review metadata in its
//! custom metadata). A policy per tenant path decides who may use which tenant.

pub mod config;
pub mod history;
pub mod keys;
pub mod record;
pub mod store;
mod tokens;

use std::sync::Arc;

pub use config::{ConfigCache, TeamConfig, TeamLogin};
pub use store::{TeamContext, TeamStore};

use crate::error::Result;
use crate::http::HttpClient;
use crate::keychain::Keychain;
use crate::model::TenantId;
use crate::store::TenantStore;

/// The OpenBao policy that gives a member one shared tenant: its records (data), their review
/// metadata, and the one-request listing of a folder's metadata (`detailed-metadata`, OpenBao).
/// A member's policy is the base one (their key, the list of tenants) plus one of these per
/// tenant they are assigned to.
pub fn tenant_policy(mount: &str, tenant: &TenantId) -> String {
    let mut hcl = format!("# Grantkeeper: shared tenant {tenant}\n");
    for kind in ["data", "metadata", "detailed-metadata"] {
        hcl.push_str(&format!(
            "path \"{mount}/{kind}/tenants/{tenant}/*\" {{\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}}\n"
        ));
    }
    hcl
}

/// The store of a tenant: a [`TeamStore`] over `local` when the tenant is shared, else `local`.
pub fn store_for<'v>(
    local: Box<dyn TenantStore + 'v>,
    tenant: &TenantId,
    cache: &'v ConfigCache,
    keychain: &Arc<dyn Keychain>,
    vault_id: &str,
    http: &HttpClient,
) -> Result<Box<dyn TenantStore + 'v>> {
    let config = cache.get();
    let Some((shared, login)) = config.shared(tenant)? else {
        return Ok(local);
    };
    let key = cache.data_key(tenant, shared, login)?;
    Ok(Box::new(TeamStore::new(TeamContext {
        local,
        bao: login.client(http.clone())?,
        tenant: tenant.clone(),
        key,
        member: login.member.clone(),
        cache,
        keychain: keychain.clone(),
        vault_id: vault_id.to_owned(),
    })))
}
