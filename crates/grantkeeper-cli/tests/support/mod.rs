//! Helpers for the CLI's end-to-end tests: the real `grantkeeper` binary on a private vault
//! ([`Cli`] keeps a transcript of every run, so that a test can check at the end that no token or
//! secret appeared anywhere it should not; [`Gk`] is the plain runner and looks into the vault's
//! files), processes killed when dropped ([`Kid`]), the test identity provider
//! (tests/idp/server.mjs) and the test user's browser (tests/browser/gk-test-browser as
//! `$BROWSER`).
//!
//! Needs the private session of `scripts/with-test-session` (Xvfb, D-Bus, gnome-keyring).
// Each test binary uses a part of these.
#![allow(dead_code, unused_imports)]

mod bao;
mod cli;
mod idp;
mod process;

pub use bao::{Bao, MOUNT};
pub use cli::{closed_port, keychain_secrets, Cli};
pub use idp::{enc, http, http_with_headers, Idp};
pub use process::{line_reader, reader, vm_rss_kb, Gk, Kid};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_grantkeeper");

/// The longest any one CLI run of [`Cli`] may take (a browser sign-in included).
pub const RUN_LIMIT: Duration = Duration::from_secs(150);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The test user's browser (tests/browser/gk-test-browser), for `$BROWSER`.
pub fn test_browser() -> PathBuf {
    repo_root().join("tests/browser/gk-test-browser")
}

/// These tests use the real Secret Service of `scripts/with-test-session`.
pub fn require_test_session() {
    assert_eq!(
        std::env::var("GRANTKEEPER_TEST_SECRET_SERVICE").as_deref(),
        Ok("1"),
        "these tests need the private Secret Service session: run them under scripts/with-test-session"
    );
}

pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// One finished run of the CLI.
#[derive(Debug, Clone)]
pub struct Run {
    /// The arguments.
    pub args: Vec<String>,
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "grantkeeper {:?}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Whether it exited 0.
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics unless it succeeded (showing stderr, which never holds a token).
    #[track_caller]
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(
            self.succeeded(),
            "{what}: exit {:?}, stderr: {}",
            self.code,
            self.stderr
        );
        self
    }

    /// Asserts success and nothing on stderr; returns the run.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        assert!(
            self.stderr.is_empty(),
            "a success prints nothing on stderr: {}",
            self.describe()
        );
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }

    /// Asserts a failure as documented: exit `code`, exactly one line `grantkeeper: …` on
    /// stderr containing `expect`, nothing on stdout, no panic.
    #[track_caller]
    pub fn fails(&self, code: i32, expect: &str) -> &Self {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one line on stderr: {}",
            self.describe()
        );
        assert!(
            self.stderr.ends_with('\n') && lines[0].starts_with("grantkeeper: "),
            "{}",
            self.describe()
        );
        assert!(
            lines[0].contains(expect),
            "expected '{expect}': {}",
            self.describe()
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.describe());
        assert!(self.stdout.is_empty(), "{}", self.describe());
        self
    }
}
