//! The hand-out policy: which programs of this user may take a connection's access token.
//!
//! Each connection follows its own rule, else its tenant's default rule, else [`Mode::Any`]
//! (the built-in default, see the README's security model):
//! - [`Mode::Any`]: any program of this user;
//! - [`Mode::Listed`]: only the programs whose executable path is listed;
//! - [`Mode::Ask`]: the window asks the user each time (see [`ask`]); no answer within
//!   [`ask::ASK_TIMEOUT`], or no window running, is a refusal.
//!
//! The program is the process that asked, identified by the kernel, never by what it says: the
//! agent takes the peer's pid from `SO_PEERCRED` and its path from `/proc/<pid>/exe`; the command
//! line (in process, or through the agent) stands for the program that ran it, its parent
//! ([`Program::asking`]). The window's own reveal and copy are the user's acts, not hand-outs
//! to a program, and the proxy never hands the token out: the policy gates the command line and
//! the agent.
//!
//! # Authenticated, and not deletable without notice
//! A tenant's policy is one row of `hand_out_policies` (its rules as JSON and a version), with an
//! HMAC-SHA-256 over the vault id, the tenant id, the version and the rules, under a key derived
//! from the master key (which only the keychain gives). The tenant's current version is also
//! kept in the keychain entry of the vault's keys ([`crate::crypto::VaultKeys::policies`]). So a
//! process that can write `vault.db` but cannot read the keychain:
//! - cannot edit or forge a row (the MAC fails),
//! - cannot put back an older row (its version is below the keychain's),
//! - cannot delete the row (the keychain says a version exists),
//!
//! and each of these refuses every hand-out of the tenant with [`Error::Tampered`] until
//! `grantkeeper policy set` writes the policy again; never a silent fall back to `any`.
//!
//! A change writes the row first (with its `policy_changed` event), then the keychain's version:
//! a crash between the two leaves a row newer than the keychain, which is accepted (only
//! Grantkeeper can MAC it). A process remembers the newest version it has seen and reads the
//! keychain's again at most every [`KEYCHAIN_RECHECK`], so a long-running agent notices a row
//! removed or rolled back after another process changed the policy within that time.

pub mod ask;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::audit::{Actor, ActorKind};
use crate::error::{Error, Result};

/// How often a process reads the policy versions from the keychain again.
pub const KEYCHAIN_RECHECK: Duration = Duration::from_secs(30);

/// Who may take a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, rename = "PolicyMode")]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Any program of this user.
    Any,
    /// Only the listed programs.
    Listed,
    /// Ask in the window each time.
    Ask,
}

impl Mode {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Listed => "listed",
            Self::Ask => "ask",
        }
    }

    /// Parses [`Mode::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Any, Self::Listed, Self::Ask]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// One rule: a mode and, for [`Mode::Listed`], the executable paths allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, rename = "PolicyRule")]
pub struct Rule {
    /// Who may take a token.
    pub mode: Mode,
    /// Absolute executable paths allowed (used by [`Mode::Listed`]).
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Rule {
    /// A rule, its paths checked: absolute, without `..`, and made canonical when they exist
    /// (a symlink such as `/usr/bin/python3` is listed as the file it points to, the path the
    /// kernel reports). `listed` needs at least one path.
    pub fn new(mode: Mode, allow: &[String]) -> Result<Self> {
        let mut paths = Vec::new();
        for p in allow {
            let path = Path::new(p.trim());
            if !path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
                return Err(Error::Invalid(format!(
                    "'{p}' is not an absolute program path: give the full path, e.g. /usr/bin/python3"
                )));
            }
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
            let path = path.display().to_string();
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        if mode == Mode::Listed && paths.is_empty() {
            return Err(Error::Invalid(
                "`listed` needs at least one program: add --allow /path/to/program".into(),
            ));
        }
        Ok(Self { mode, allow: paths })
    }

    /// The built-in default: any program.
    pub fn any() -> Self {
        Self {
            mode: Mode::Any,
            allow: Vec::new(),
        }
    }
}

/// A tenant's policy: its default rule and the connections' own rules (by connection id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TenantPolicy {
    /// The tenant's default (`None`: the built-in [`Mode::Any`]).
    pub default: Option<Rule>,
    /// Rules of single connections, by connection id.
    pub connections: BTreeMap<String, Rule>,
}

impl TenantPolicy {
    /// The rule a connection follows, and whether it is the connection's own.
    pub fn rule_for(&self, connection: &str) -> (Rule, bool) {
        match self.connections.get(connection) {
            Some(r) => (r.clone(), true),
            None => (self.default.clone().unwrap_or_else(Rule::any), false),
        }
    }
}

/// What the policy says to one hand-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it out.
    Allow,
    /// Ask the user in the window.
    Ask,
    /// Refuse, for this reason (one sentence, no secrets).
    Refuse(String),
}

/// A program that asks for a token: its pid and executable path, as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its process id.
    pub pid: u32,
    /// Its executable, when it can be read.
    pub exe: Option<String>,
}

impl Program {
    /// The process `pid`, its executable read from `/proc`.
    pub fn of_pid(pid: u32) -> Self {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.display().to_string());
        Self { pid, exe }
    }

    /// The program a peer of the agent stands for: the peer itself, or, when the peer is the
    /// command line (this binary, or `grantkeeper` or `grantkeeper-full` beside it), the program
    /// that ran it, as the command line does in process ([`Program::asking`]).
    pub fn agent_peer(pid: u32) -> Self {
        let peer = Self::of_pid(pid);
        let me = std::fs::read_link("/proc/self/exe").ok();
        let command_line = |exe: &Path, me: &Path| {
            exe == me
                || (exe.parent() == me.parent()
                    && exe
                        .file_name()
                        .is_some_and(|n| n == "grantkeeper" || n == "grantkeeper-full"))
        };
        match (&peer.exe, me) {
            (Some(exe), Some(me)) if command_line(Path::new(exe), &me) => {
                parent_of(pid).map_or(peer, Self::of_pid)
            }
            _ => peer,
        }
    }

    /// The program that ran this process (the command line stands for it).
    pub fn asking() -> Self {
        Self::of_pid(std::os::unix::process::parent_id())
    }

    /// As the history records a caller: `pid 4242 /usr/bin/python3`.
    pub fn to_caller(&self) -> String {
        match &self.exe {
            Some(exe) => format!("pid {} {exe}", self.pid),
            None => format!("pid {}", self.pid),
        }
    }

    /// Reads [`Program::to_caller`] back.
    pub fn from_caller(caller: &str) -> Option<Self> {
        let rest = caller.strip_prefix("pid ")?;
        let (pid, exe) = match rest.split_once(' ') {
            Some((pid, exe)) => (pid, Some(exe.trim().to_owned()).filter(|e| !e.is_empty())),
            None => (rest, None),
        };
        Some(Self {
            pid: pid.parse().ok()?,
            exe,
        })
    }

    /// `/usr/bin/python3 (pid 4242)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {})",
            self.exe.as_deref().unwrap_or("an unknown program"),
            self.pid
        )
    }
}

/// The parent pid of `pid`, from `/proc/<pid>/stat` (the field after the command's closing
/// parenthesis and the state).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the policy gates hand-outs to this actor: the command line and the agent hand tokens
/// to programs; the window (the user's own act) and background jobs do not.
pub fn gates(actor: &Actor) -> bool {
    matches!(actor.kind, ActorKind::Cli | ActorKind::Agent)
}

/// What `rule` says to `program`.
pub fn judge(rule: &Rule, program: Option<&Program>) -> Verdict {
    match rule.mode {
        Mode::Any => Verdict::Allow,
        Mode::Ask => Verdict::Ask,
        Mode::Listed => match program.and_then(|p| p.exe.as_deref()) {
            Some(exe) if rule.allow.iter().any(|a| a == exe) => Verdict::Allow,
            Some(exe) => Verdict::Refuse(format!("{exe} is not a listed program")),
            None => Verdict::Refuse("the calling program could not be identified".into()),
        },
    }
}
