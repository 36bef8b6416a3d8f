//! `grantkeeper policy show|set`: which programs may take a connection's tokens.

use clap::Subcommand;
use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::policy::{Mode, Rule};
use grantkeeper_core::{ConnectionFilter, Vault};
use serde::Serialize;

use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the hand-out policy of a tenant (its default and each connection) or of one
    /// connection.
    Show {
        /// `<tenant>` or `<tenant>/<connection>`.
        target: String,
    },
    /// Set who may take tokens: `any` program of this user, only `listed` programs (by
    /// executable path), or `ask` in the window each time (refused without an answer within
    /// 60 s or the hand-out's `--timeout`, or when no window runs). `default` removes a connection's own rule (the tenant default applies), or the
    /// tenant default (any program applies).
    Set {
        /// `<tenant>` (its default) or `<tenant>/<connection>`.
        target: String,
        /// any, listed, ask or default.
        mode: String,
        /// A program allowed by `listed`: its absolute executable path (repeat for more; the
        /// list replaces the old one).
        #[arg(long = "allow", value_name = "PATH")]
        allow: Vec<String>,
    },
}

/// One line of `policy show`.
#[derive(Debug, Serialize)]
struct Line {
    /// `<tenant>` for the default, `<tenant>/<connection>` for a connection.
    target: String,
    /// The mode in force.
    mode: Mode,
    /// The programs allowed (`listed`).
    allow: Vec<String>,
    /// Where the rule comes from: `connection`, `tenant` or `built-in`.
    from: &'static str,
}

pub fn run(cmd: &PolicyCommand, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    match cmd {
        PolicyCommand::Show { target } => show(&vault, target, out),
        PolicyCommand::Set {
            target,
            mode,
            allow,
        } => {
            let rule = match mode.as_str() {
                "default" if !allow.is_empty() => {
                    return Err(Failure::invalid(
                        "--allow goes with `listed`, not with `default`",
                    ))
                }
                "default" => None,
                m => {
                    let mode = Mode::parse(m).ok_or_else(|| {
                        Failure::invalid(format!(
                            "'{m}' is not a mode: use any, listed, ask or default"
                        ))
                    })?;
                    if mode != Mode::Listed && !allow.is_empty() {
                        return Err(Failure::invalid(
                            "--allow goes with `listed`: use `listed --allow PATH`",
                        ));
                    }
                    Some(Rule::new(mode, allow)?)
                }
            };
            let (tenant, connection) = split(target);
            let t = vault.find_tenant(tenant)?;
            let id = match connection {
                Some(name) => Some(vault.tenant(&t.id)?.connection_named(name)?.id),
                None => None,
            };
            vault.set_hand_out_rule(&t.id, id.as_ref(), rule, &Actor::new(ActorKind::Cli))?;
            show(&vault, target, out)
        }
    }
}

fn split(target: &str) -> (&str, Option<&str>) {
    match target.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (target, None),
    }
}

fn show(vault: &Vault, target: &str, out: &Output) -> Result<(), Failure> {
    let (tenant, connection) = split(target);
    let t = vault.find_tenant(tenant)?;
    let policy = vault.hand_out_policy(&t.id)?;
    let mut lines = Vec::new();
    let default = policy.default.clone();
    if connection.is_none() {
        let (rule, from) = match &default {
            Some(r) => (r.clone(), "tenant"),
            None => (Rule::any(), "built-in"),
        };
        lines.push(Line {
            target: t.slug.clone(),
            mode: rule.mode,
            allow: rule.allow,
            from,
        });
    }
    let connections = match connection {
        Some(name) => vec![vault.tenant(&t.id)?.connection_named(name)?],
        None => vault.connections(&ConnectionFilter {
            tenant: Some(t.id.clone()),
            status: None,
        })?,
    };
    for c in connections {
        let (rule, own) = policy.rule_for(c.id.as_str());
        let from = match (own, &default) {
            (true, _) => "connection",
            (false, Some(_)) => "tenant",
            (false, None) => "built-in",
        };
        lines.push(Line {
            target: format!("{}/{}", t.slug, c.name),
            mode: rule.mode,
            allow: rule.allow,
            from,
        });
    }
    out.table(
        &lines,
        &["TARGET", "MODE", "FROM", "ALLOWED PROGRAMS"],
        |l| {
            vec![
                l.target.clone(),
                l.mode.as_str().to_owned(),
                l.from.to_owned(),
                l.allow.join(" "),
            ]
        },
    )
}
