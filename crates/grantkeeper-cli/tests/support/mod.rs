//! Helpers for the CLI's end-to-end tests: the real `grantkeeper` binary on a private vault, the
//! test identity provider (tests/idp/server.mjs), the test user's browser
//! (tests/browser/gk-test-browser as `$BROWSER`), and a transcript of every run, so that a test
//! can check at the end that no token or secret appeared anywhere it should not.
//!
//! Needs the private session of `scripts/with-test-session` (Xvfb, D-Bus, gnome-keyring).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_grantkeeper");

/// The longest any one CLI run may take (a browser sign-in included).
pub const RUN_LIMIT: Duration = Duration::from_secs(150);

// The test IdP, the repository root and the session check are shared with the lifecycle tests.
#[path = "../common/mod.rs"]
pub mod common;
pub use common::{repo_root, require_test_session, Idp};

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
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "grantkeeper {:?}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
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

/// A private vault and the environment every run gets.
pub struct Cli {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    transcript: Mutex<Vec<Run>>,
    secrets: Mutex<Vec<String>>,
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    /// A new, empty vault; `$BROWSER` is the test browser, approving by default.
    pub fn new() -> Self {
        require_test_session();
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            (
                "GRANTKEEPER_HOME".into(),
                dir.path().join("vault").display().to_string(),
            ),
            ("GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS".into(), "20".into()),
            (
                "BROWSER".into(),
                repo_root()
                    .join("tests/browser/gk-test-browser")
                    .display()
                    .to_string(),
            ),
            ("GK_TEST_BROWSER_ACTION".into(), "approve".into()),
            // Ask for colors every way there is: the output must stay plain all the same.
            ("CLICOLOR_FORCE".into(), "1".into()),
            ("FORCE_COLOR".into(), "1".into()),
            ("TERM".into(), "xterm-256color".into()),
        ];
        Self {
            dir,
            env,
            transcript: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    /// The vault folder.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("vault")
    }

    /// Runs `grantkeeper args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs `grantkeeper args…` with extra environment and, if given, text on stdin.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("NO_COLOR")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the grantkeeper binary runs");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let (code, stdout, stderr) = wait_bounded(child, RUN_LIMIT, args);
        let run = Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code,
            stdout,
            stderr,
        };
        self.transcript.lock().unwrap().push(run.clone());
        run
    }

    /// The tenant `acme` with the provider app `acme/idp` for the test IdP (client
    /// `grantkeeper-test`); `extra` arguments go to `provider add` (scopes, redirect…).
    pub fn acme_with_idp(&self, idp: &Idp, extra: &[&str]) {
        self.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
        let mut args = vec!["provider", "add", "acme/idp", "--issuer", &idp.issuer];
        args.extend(["--client-id", "grantkeeper-test"]);
        args.extend_from_slice(extra);
        self.run(&args).ok();
    }

    /// `grantkeeper token args…`: asserts success and returns the printed line, which is
    /// remembered as a secret for [`Cli::assert_no_secret_leaked`].
    #[track_caller]
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        run.ok();
        assert_eq!(run.stdout.lines().count(), 1, "one line: {:?}", run.stdout);
        run.stdout.trim_end().to_owned()
    }

    /// Remembers a secret value: no run's output may contain it (except `token`'s stdout).
    pub fn secret(&self, value: &str) {
        assert!(value.len() >= 8, "too short to scan for: {value:?}");
        self.secrets.lock().unwrap().push(value.to_owned());
    }

    /// How many secrets are known.
    pub fn secrets(&self) -> usize {
        self.secrets.lock().unwrap().len()
    }

    /// Every run so far.
    pub fn transcript(&self) -> Vec<Run> {
        self.transcript.lock().unwrap().clone()
    }

    /// Scans every output of every run: no remembered secret outside `token`'s own stdout, and
    /// no terminal escape anywhere. Returns how many runs were scanned.
    #[track_caller]
    pub fn assert_no_secret_leaked(&self) -> usize {
        let secrets = self.secrets.lock().unwrap().clone();
        let runs = self.transcript();
        for run in &runs {
            let is_token = run.args.first().map(String::as_str) == Some("token");
            let outputs: Vec<(&str, &str)> = if is_token {
                vec![("stderr", &run.stderr)]
            } else {
                vec![("stdout", &run.stdout), ("stderr", &run.stderr)]
            };
            for (name, text) in outputs {
                for s in &secrets {
                    assert!(
                        !text.contains(s.as_str()),
                        "a secret appeared on {name} of grantkeeper {:?}",
                        run.args
                    );
                }
            }
            for text in [&run.stdout, &run.stderr] {
                assert!(
                    !text.contains('\u{1b}'),
                    "a terminal escape in the output of grantkeeper {:?}",
                    run.args
                );
            }
        }
        runs.len()
    }
}

/// Waits for `child` at most `limit`, reading its output meanwhile; kills it and fails the test
/// when it takes longer.
fn wait_bounded(mut child: Child, limit: Duration, args: &[&str]) -> (Option<i32>, String, String) {
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("grantkeeper {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

/// A 127.0.0.1 port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The secrets the keychain holds for Grantkeeper (master keys and refresh tokens of every
/// vault in this session), read with `secret-tool`.
pub fn keychain_secrets() -> Vec<String> {
    // secret-tool prints attributes on stderr and the rest on stdout: merge them unbuffered.
    let out = Command::new("sh")
        .args([
            "-c",
            "stdbuf -o0 -e0 secret-tool search --all service grantkeeper 2>&1",
        ])
        .output()
        .expect("secret-tool runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("secret = "))
        .filter(|s| s.len() >= 8)
        .map(str::to_owned)
        .collect()
}
