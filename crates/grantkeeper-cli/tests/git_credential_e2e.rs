//! The git credential helper end to end: `git ls-remote` against a local smart-HTTP git server
//! (`git http-backend` behind tests/git/server.mjs, which accepts only a password the test
//! IdP's API accepts as an access token) fails without the helper and succeeds through
//! `grantkeeper git-credential`. Real git, IdP, browser consent and Secret Service (run inside
//! `scripts/with-test-session`).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::*;

fn git(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    out
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A bare repository `project.git` under `root` with one commit; its commit id.
fn repository(root: &Path) -> String {
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    ok(&git(&work, &["init", "-q", "-b", "main"]), "git init");
    std::fs::write(work.join("README"), "hello\n").unwrap();
    ok(&git(&work, &["add", "README"]), "git add");
    ok(
        &git(
            &work,
            &[
                "-c",
                "user.name=Test",
                "-c",
                "user.email=t@example.test",
                "commit",
                "-q",
                "-m",
                "first",
            ],
        ),
        "git commit",
    );
    let head = ok(&git(&work, &["rev-parse", "HEAD"]), "rev-parse")
        .trim()
        .to_owned();
    ok(
        &git(root, &["clone", "-q", "--bare", "work", "project.git"]),
        "git clone --bare",
    );
    head
}

#[test]
fn git_ls_remote_succeeds_through_the_helper_and_fails_without() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();

    let root = tempfile::tempdir().unwrap();
    let head = repository(root.path());
    let mut server = Kid(Some(
        Command::new("node")
            .arg(repo_root().join("tests/git/server.mjs"))
            .args([
                "--root",
                root.path().to_str().unwrap(),
                "--issuer",
                &idp.issuer,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the git server"),
    ));
    let mut line = String::new();
    BufReader::new(server.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = serde_json::from_str::<Value>(&line).unwrap()["port"]
        .as_u64()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let remote = format!("{base}/project.git");
    let helper = format!("!{} git-credential", BIN);
    let env_home = cli.home();
    let with_vault = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(root.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GRANTKEEPER_HOME", &env_home)
            .env("GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS", "20")
            .stdin(Stdio::null());
        cmd.output().expect("git runs")
    };

    // Without the helper, git has no credential and the server refuses.
    let without = with_vault(&["ls-remote", &remote]);
    assert!(!without.status.success(), "ls-remote without a credential");
    // With a helper that answers for nothing here (no connection named, no catalog host), too.
    let unmatched = with_vault(&[
        "-c",
        &format!("credential.helper={helper}"),
        "ls-remote",
        &remote,
    ]);
    assert!(!unmatched.status.success());

    // Named by git config for this URL: ls-remote lists the repository's commit.
    let named = with_vault(&[
        "-c",
        &format!("credential.helper={helper}"),
        "-c",
        &format!("credential.{base}.grantkeeper-connection=acme/main"),
        "ls-remote",
        &remote,
    ]);
    let refs = ok(&named, "ls-remote through the helper (git config)");
    assert!(
        refs.contains(&head) && refs.contains("refs/heads/main"),
        "{refs}"
    );
    // Named on the helper's command line.
    let by_arg = with_vault(&[
        "-c",
        &format!("credential.helper={helper} --connection acme/main"),
        "ls-remote",
        &remote,
    ]);
    assert!(ok(&by_arg, "ls-remote through the helper (--connection)").contains(&head));

    let stats: Value =
        serde_json::from_str(&http("GET", &format!("{base}/__test/stats"), None).1).unwrap();
    assert!(stats["authorized"].as_u64().unwrap() >= 2, "{stats}");
    assert!(stats["refused"].as_u64().unwrap() >= 2, "{stats}");

    // The helper's own answer: username, the token, and its expiry in seconds.
    let token = cli.token(&["acme/main"]);
    cli.secret(&token);
    let get = cli.gk_run_raw(
        &["git-credential", "--connection", "acme/main", "get"],
        &format!("protocol=http\nhost=127.0.0.1:{port}\npath=project.git\n\n"),
    );
    assert_eq!(get.code, Some(0), "{}", get.stderr);
    let fields: Vec<(String, String)> = get
        .stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(fields[0], ("username".into(), "oauth2".into()));
    assert_eq!(fields[1], ("password".into(), token.clone()));
    let expiry: i64 = fields[2].1.parse().unwrap();
    assert_eq!(fields[2].0, "password_expiry_utc");
    assert!(
        expiry > now_ms() / 1000 + 240,
        "valid for minutes yet: {expiry}"
    );

    // No token for a host nothing serves, nor over plain HTTP to another machine.
    for request in [
        "protocol=https\nhost=github.com\npath=acme/x.git\n\n",
        "protocol=http\nhost=git.example.com\n\n",
    ] {
        let r = cli.run_with(&["git-credential", "get"], &[], Some(request));
        r.ok();
        assert!(r.stdout.is_empty(), "{request:?}: {}", r.stdout);
    }
    let r = cli.run_with(
        &["git-credential", "--connection", "acme/main", "get"],
        &[],
        Some("protocol=http\nhost=git.example.com\n\n"),
    );
    r.ok();
    assert!(r.stdout.is_empty());
    // store and erase read the request and change nothing.
    for op in ["store", "erase"] {
        cli.run_with(
            &["git-credential", op],
            &[],
            Some("protocol=https\nhost=github.com\nusername=x\npassword=y\n\n"),
        )
        .ok();
    }

    // The hand-outs to git are in the history, with their hint.
    let history = cli
        .run(&[
            "history",
            "acme/main",
            "--kind",
            "handed_out",
            "--json",
            "--limit",
            "100",
        ])
        .ok()
        .json();
    let to_git = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["app_hint"] == "git")
        .count();
    assert!(to_git >= 3, "{history}");
    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
    server.kill();
}
