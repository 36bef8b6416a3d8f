//! [`Cli`]: the CLI on a private vault, every run kept in a transcript and scanned for secrets.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use super::{require_test_session, test_browser, Gk, Idp, Run, RUN_LIMIT};

/// A private vault and the environment every run gets.
pub struct Cli {
    dir: tempfile::TempDir,
    gk: Gk,
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
        let mut gk = Gk::new(dir.path().join("vault"));
        gk.env = vec![
            ("BROWSER".into(), test_browser().into()),
            ("GK_TEST_BROWSER_ACTION".into(), "approve".into()),
            // Ask for colors every way there is: the output must stay plain all the same.
            ("CLICOLOR_FORCE".into(), "1".into()),
            ("FORCE_COLOR".into(), "1".into()),
            ("TERM".into(), "xterm-256color".into()),
        ];
        Self {
            dir,
            gk,
            transcript: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    /// The plain runner on the same vault, to look into its files and keychain entries.
    pub fn gk(&self) -> &Gk {
        &self.gk
    }

    /// The vault folder.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("vault")
    }

    /// `grantkeeper args…` not yet started (for long-running commands such as `proxy`; its
    /// output is not in the transcript).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.gk.command(args);
        cmd.env_remove("NO_COLOR");
        cmd
    }

    /// Runs `grantkeeper args…` with `stdin`, outside the transcript (for output that carries a
    /// token by design, such as the git credential helper's answer).
    pub fn gk_run_raw(&self, args: &[&str], stdin: &str) -> Run {
        self.gk.run_fed(self.command(args), Some(stdin), RUN_LIMIT)
    }

    /// Runs `grantkeeper args…`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs `grantkeeper args…` with extra environment and, if given, text on stdin.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = self.gk.command(args);
        cmd.env_remove("NO_COLOR").envs(env.iter().copied());
        let run = self.gk.run_fed(cmd, stdin, RUN_LIMIT);
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
            "timeout 30 stdbuf -o0 -e0 secret-tool search --all service grantkeeper 2>&1",
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
