//! Grantkeeper's core: the vault of OAuth grants, shared by the CLI and the desktop app.
//!
//! - [`store`] is the seam behind which a tenant's provider apps, connections and secrets live;
//!   [`vault`] stores tenants, provider apps and connections in SQLite, with secrets encrypted
//!   under per-tenant keys ([`crypto`]) and refresh tokens in the OS keychain ([`keychain`]).
//! - [`audit`] is the tamper-evident usage history every operation writes to.
//! - [`report`] is the secret-free grant report (CSV or JSON) for audits and handovers.
#![warn(missing_docs)]

pub mod agent;
pub mod anomaly;
pub mod audit;
pub mod bao;
pub mod catalog;
pub mod connect;
pub mod crypto;
pub mod db;
pub mod deadline;
pub mod desktop_lock;
pub mod diagnosis;
pub mod error;
pub mod fuzzing;
mod gate;
pub mod grants;
pub mod http;
pub mod keychain;
pub mod logging;
pub mod model;
pub mod notice;
pub mod oauth;
pub mod paths;
pub mod policy;
pub mod private;
pub mod provider_app;
pub mod report;
pub mod secret;
pub mod sharing;
pub mod status;
pub mod store;
pub mod team;
#[cfg(test)]
mod test_support;
pub mod testing;
pub mod timefmt;
pub mod vault;

pub use error::{Error, ErrorKind, Result};
pub use vault::{ConnectionFilter, NewConnection, NewProviderApp, TenantVault, Vault};
