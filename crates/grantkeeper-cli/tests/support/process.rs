//! Processes of a test: [`Kid`] (killed when dropped), [`Gk`] (the CLI on one vault folder,
//! with looks into its files), output readers.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{now_ms, test_browser, Run, BIN};

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// nothing running.
pub struct Kid(pub Option<Child>);

impl Kid {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not reaped yet")
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("not reaped yet").id()
    }

    /// Waits for the exit, up to `timeout`; on timeout kills it and panics with `what`.
    pub fn wait_for(&mut self, timeout: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child().try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("{what} did not finish within {timeout:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.0.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Takes the child out (after it exited), to read its pipes.
    pub fn into_child(mut self) -> Child {
        self.0.take().expect("not reaped yet")
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A vault folder and the environment the CLI runs with.
pub struct Gk {
    pub home: PathBuf,
    pub env: Vec<(String, OsString)>,
}

impl Gk {
    pub fn new(home: PathBuf) -> Self {
        Self {
            home,
            env: Vec::new(),
        }
    }

    /// The command, not yet started: vault folder set, stdin closed, output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(BIN), args)
    }

    /// [`Gk::command`] with another copy of the `grantkeeper` binary (`grantkeeper-full` beside
    /// it), e.g. one that a rebuild during a long run cannot replace.
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("GRANTKEEPER_HOME", &self.home)
            .env("GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS", "20")
            .env_remove("GRANTKEEPER_TEST_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn spawn(&self, cmd: &mut Command) -> Kid {
        Kid(Some(cmd.spawn().expect("grantkeeper starts")))
    }

    /// Runs `grantkeeper args…`, killing it (and failing) if it takes longer than `timeout`.
    pub fn run_with(&self, cmd: Command, timeout: Duration) -> Run {
        self.run_fed(cmd, None, timeout)
    }

    /// [`Gk::run_with`], writing `stdin` (if given) to the program's standard input first.
    pub fn run_fed(&self, mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Run {
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let args = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let started = Instant::now();
        let mut kid = self.spawn(&mut cmd);
        if let Some(text) = stdin {
            let mut pipe = kid.child().stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let out = reader(kid.child().stdout.take().unwrap());
        let err = reader(kid.child().stderr.take().unwrap());
        let status = kid.wait_for(timeout, &format!("grantkeeper {cmd:?}"));
        let elapsed = started.elapsed();
        Run {
            args,
            code: status.code(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
            elapsed,
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args), Duration::from_secs(60))
    }

    /// `connect target --provider provider`, consented by the test user's browser (headless
    /// Chromium approving), bounded to two minutes.
    pub fn connect_in_browser(&self, target: &str, provider: &str) {
        self.consent_in_browser(&["connect", target, "--provider", provider]);
    }

    /// `reconsent target`, consented the same way.
    pub fn reconsent_in_browser(&self, target: &str) {
        self.consent_in_browser(&["reconsent", target]);
    }

    fn consent_in_browser(&self, args: &[&str]) {
        let mut cmd = self.command(&[args, &["--timeout", "90"]].concat());
        cmd.env("BROWSER", test_browser())
            .env("GK_TEST_BROWSER_ACTION", "approve")
            .env("GK_TEST_BROWSER_TIMEOUT_MS", "30000");
        self.run_with(cmd, Duration::from_secs(120))
            .expect_ok(args[0]);
    }

    /// The vault's SQLite file, opened for test setup and checks.
    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.home.join("vault.db")).unwrap();
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    /// Makes the cached access token of every connection look expired a minute ago (the token
    /// itself stays whatever the server issued).
    pub fn expire_access_tokens(&self) {
        let n = self
            .db()
            .execute(
                "UPDATE connections SET access_expires_at = ?1",
                [now_ms() - 60_000],
            )
            .unwrap();
        assert!(n > 0, "no connection to expire");
    }

    /// When the cached access token expires (Unix ms).
    pub fn access_expires_at(&self, connection: &str) -> Option<i64> {
        self.db()
            .query_row(
                "SELECT access_expires_at FROM connections WHERE name = ?1",
                [connection],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Rows in the rotation journal.
    pub fn journal_rows(&self) -> i64 {
        self.db()
            .query_row("SELECT COUNT(*) FROM refresh_journal", [], |r| r.get(0))
            .unwrap()
    }

    /// The keychain entry (`username` attribute) of a connection's refresh token.
    pub fn refresh_entry(&self, connection: &str) -> String {
        let db = self.db();
        let vault: String = db
            .query_row("SELECT value FROM meta WHERE key = 'vault_id'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let (tenant, id): (String, String) = db
            .query_row(
                "SELECT tenant_id, id FROM connections WHERE name = ?1",
                [connection],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        format!("vault/{vault}/tenant/{tenant}/connection/{id}/refresh-token")
    }

    /// The refresh token in the keychain (`secret-tool lookup`), if any.
    pub fn keychain_refresh_token(&self, connection: &str) -> Option<String> {
        let user = self.refresh_entry(connection);
        let out = Command::new("timeout")
            .args([
                "30",
                "secret-tool",
                "lookup",
                "service",
                "grantkeeper",
                "username",
                &user,
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("secret-tool runs");
        let s = String::from_utf8(out.stdout).unwrap();
        (out.status.success() && !s.is_empty()).then_some(s)
    }

    /// The connection's `status` in `show --json`.
    pub fn status(&self, target: &str) -> String {
        let v = self
            .run(&["show", target, "--json"])
            .expect_ok("show")
            .json();
        v.pointer("/connection/status")
            .or_else(|| v.get("status"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no status in show --json: {v}"))
            .to_owned()
    }

    /// The connection's usage history, oldest first.
    pub fn history(&self, target: &str) -> Vec<Value> {
        let v = self
            .run(&["history", target, "--json", "--limit", "10000"])
            .expect_ok("history")
            .json();
        let mut events = v.as_array().expect("history --json is an array").clone();
        events.sort_by_key(|e| e["seq"].as_i64());
        events
    }
}

/// A process's resident memory in kB (`VmRSS` of /proc/<pid>/status), if it still runs.
pub fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Reads a child's pipe to its end on a thread of its own (so a full pipe never blocks the child).
pub fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Reads a child's stderr line by line, forwarding each line.
pub fn line_reader(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
