//! The test identity provider and plain HTTP requests to it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{line_reader, repo_root, Kid};

/// The test identity provider (tests/idp/server.mjs, oidc-provider) on 127.0.0.1; stopped on drop.
pub struct Idp {
    pub issuer: String,
    child: Kid,
    _dir: tempfile::TempDir,
}

impl Idp {
    /// Starts it with a JSON config (see the top of tests/idp/server.mjs).
    pub fn start(config: &Value) -> Self {
        Self::start_on(0, config)
    }

    /// Stops it and starts it again on the same port (so with the same issuer) with another
    /// config; whatever it held is gone.
    pub fn restart(&mut self, config: &Value) {
        self.stop();
        let port: u16 = self.issuer.rsplit(':').next().unwrap().parse().unwrap();
        *self = Self::start_on(port, config);
    }

    /// A server that is not up within 20 s is killed and started again, twice at most: runs of
    /// the full suite now and then saw a server never print its ready line (its stderr is in
    /// the message of the last try).
    fn start_on(port: u16, config: &Value) -> Self {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::try_start_on(port, config) {
                Ok(idp) => return idp,
                // Straight to stderr, past the test harness's capture: a run shows each retry.
                Err(why) if tries < 3 => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "test IdP start on port {port}: {why}; again"
                    );
                }
                Err(why) => panic!("the test IdP did not start on port {port}: {why}"),
            }
        }
    }

    /// Starts the server and waits for its ready line; a server that does not print it within
    /// 20 s is killed.
    fn try_start_on(port: u16, config: &Value) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("idp.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut child = Kid(Some(
            Command::new("node")
                .arg(repo_root().join("tests/idp/server.mjs"))
                .args(["--port", &port.to_string(), "--config"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .expect("node runs the test IdP"),
        ));
        let lines = line_reader(child.child().stdout.take().unwrap());
        let line = lines.recv_timeout(Duration::from_secs(20)).map_err(|e| {
            let said = std::fs::read_to_string(&stderr).unwrap_or_default();
            let last: Vec<&str> = said.lines().rev().take(20).collect();
            format!("no ready line within 20 s ({e}); the end of its stderr: {last:?}")
        })?;
        let ready: Value = serde_json::from_str(&line).map_err(|e| format!("ready line: {e}"))?;
        Ok(Idp {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            child,
            _dir: dir,
        })
    }

    /// Stops the server (SIGKILL).
    pub fn stop(&mut self) {
        self.child.kill();
    }

    /// The server-side counters.
    pub fn stats(&self) -> Value {
        let (status, body) = http("GET", &format!("{}/__test/stats", self.issuer), None);
        assert_eq!(status, 200, "stats");
        serde_json::from_str(&body).unwrap()
    }

    pub fn reset_stats(&self) {
        let (status, _) = http("POST", &format!("{}/__test/reset-stats", self.issuer), None);
        assert_eq!(status, 200, "reset-stats");
    }

    pub fn refresh_requests(&self) -> i64 {
        self.stats()["token_requests"]["refresh_token"]
            .as_i64()
            .unwrap()
    }

    /// OpenID discovery.
    pub fn metadata(&self) -> Value {
        let (status, body) = http(
            "GET",
            &format!("{}/.well-known/openid-configuration", self.issuer),
            None,
        );
        assert_eq!(status, 200, "discovery");
        serde_json::from_str(&body).unwrap()
    }
}

/// One HTTP request to the local IdP with curl: (status, body). A form body goes through stdin,
/// so no token appears on a command line.
pub fn http(method: &str, url: &str, form: Option<&[(&str, &str)]>) -> (u16, String) {
    assert!(url.starts_with("http://127.0.0.1:"), "local only: {url}");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "10",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ]);
    let body = form.map(|f| {
        f.iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    });
    if body.is_some() {
        cmd.args([
            "-H",
            "content-type: application/x-www-form-urlencoded",
            "--data-binary",
            "@-",
        ]);
    }
    let mut child = cmd
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl runs");
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = &body {
            stdin.write_all(b.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GET (or other body-less) request to the local IdP with `headers`, which curl reads from a
/// private file (no token on a command line): (status, response headers in lower case, body).
pub fn http_with_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    assert!(url.starts_with("http://127.0.0.1:"), "local only: {url}");
    let dir = tempfile::tempdir().unwrap();
    let (sent, received) = (dir.path().join("sent"), dir.path().join("received"));
    let lines: String = headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    std::fs::write(&sent, lines).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ])
        .arg("-H")
        .arg(format!("@{}", sent.display()))
        .arg("-D")
        .arg(&received)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let response_headers = std::fs::read_to_string(&received)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (
        code.trim().parse().unwrap_or(0),
        response_headers,
        body.to_owned(),
    )
}
