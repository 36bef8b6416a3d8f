//! `grantkeeper tenant …`

use clap::Subcommand;
use grantkeeper_core::audit::{Actor, ActorKind};

use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Display name.
        name: String,
        /// Short name for the command line (default: derived from the name).
        #[arg(long)]
        slug: Option<String>,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// List tenants.
    List,
    /// Change a tenant's display name.
    Rename {
        /// Slug or id.
        tenant: String,
        /// New display name.
        name: String,
    },
    /// Share a tenant with a team: its grants move to the team vault, sealed for its members.
    /// With --member, give a teammate who connected later the tenant's key (then they can join).
    Share {
        /// Slug or id.
        tenant: String,
        /// The team (see `grantkeeper team connect`).
        #[arg(long, required_unless_present = "member", conflicts_with = "member")]
        team: Option<String>,
        /// A member who connected to the team after the tenant was shared.
        #[arg(long)]
        member: Option<String>,
    },
    /// Join a tenant a teammate shared: its grants become usable here without consenting.
    Join {
        /// The shared tenant's slug or id.
        tenant: String,
        /// The team it is shared through.
        #[arg(long)]
        team: String,
    },
    /// Delete a tenant: its grants are revoked at their providers, then its connections,
    /// keychain entries and data key are deleted.
    Delete {
        /// Slug or id.
        tenant: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(cmd: &TenantCommand, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let actor = Actor::new(ActorKind::Cli);
    match cmd {
        TenantCommand::Add { name, slug, notes } => {
            let t = vault.create_tenant(name, slug.as_deref(), notes, &actor)?;
            out.value(&t, || format!("created tenant {} ({})", t.slug, t.name))?;
        }
        TenantCommand::List => {
            let tenants = vault.list_tenants()?;
            out.table(
                &tenants,
                &["SLUG", "NAME", "CONNECTIONS", "ATTENTION"],
                |s| {
                    vec![
                        s.tenant.slug.clone(),
                        s.tenant.name.clone(),
                        s.connections.to_string(),
                        s.needs_attention.to_string(),
                    ]
                },
            )?;
        }
        TenantCommand::Rename { tenant, name } => {
            let t = vault.find_tenant(tenant)?;
            vault.rename_tenant(&t.id, name, &actor)?;
            out.message(&format!("renamed tenant {}", t.slug))?;
        }
        TenantCommand::Share {
            tenant,
            member: Some(member),
            ..
        } => {
            let t = vault.find_tenant(tenant)?;
            let s = vault.share_with_member(&t.id, member, &actor)?;
            out.value(&s, || {
                format!(
                    "tenant {}'s key is wrapped for {member}: they can join it now (grantkeeper tenant join {}); key wrapped for {}",
                    t.slug,
                    t.slug,
                    s.members.join(", ")
                )
            })?;
        }
        TenantCommand::Share {
            tenant,
            team: Some(team),
            ..
        } => {
            let t = vault.find_tenant(tenant)?;
            let s = vault.share_tenant(&t.id, team, &actor)?;
            out.value(&s, || {
                format!(
                    "shared tenant {} with team {team}: {} provider apps, {} connections, key wrapped for {}",
                    t.slug,
                    s.apps,
                    s.connections,
                    s.members.join(", ")
                )
            })?;
        }
        TenantCommand::Share { .. } => {
            return Err(Failure::invalid(
                "say whom to share with: --team NAME or --member NAME",
            ));
        }
        TenantCommand::Join { tenant, team } => {
            let t = vault.join_tenant(tenant, team, &actor)?;
            out.value(&t, || {
                format!("joined tenant {} ({}) from team {team}", t.slug, t.name)
            })?;
        }
        TenantCommand::Delete { tenant, yes } => {
            let t = vault.find_tenant(tenant)?;
            if !yes {
                return Err(Failure::invalid(format!(
                    "deleting tenant '{}' removes its connections and keys for good; add --yes to confirm",
                    t.slug
                )));
            }
            let deleted = vault.revoke_and_delete_tenant(&t.id, &actor)?;
            let summary = serde_json::json!({ "deleted": t.slug, "connections": deleted });
            out.value(&summary, || {
                let mut text = format!(
                    "deleted tenant {}: its keys are gone, so no copy of its data can be decrypted",
                    t.slug
                );
                for d in &deleted {
                    let what = d
                        .revocation
                        .as_ref()
                        .map_or("it was revoked already", |r| r.detail.as_str());
                    text.push_str(&format!("\ndeleted {}/{}; {what}", t.slug, d.name));
                }
                text
            })?;
            for d in &deleted {
                if let Some(outcome) = &d.revocation {
                    super::revoke::confirmed(&format!("{}/{}", t.slug, d.name), outcome)?;
                }
            }
        }
    }
    Ok(())
}
