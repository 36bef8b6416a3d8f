//! Another local user gets nothing: the vault folder is 0700 and its files 0600 (repaired at the
//! next open when they are not), a vault folder of another user is refused, and the agent's
//! socket never lives in a folder someone else made, nor is a socket answered by another user's
//! process used. The real `grantkeeper` binary and keychain; the other user is a real Unix user
//! (`gk-other`, created when missing), so these tests run as root, as CI does.
//!
//!   scripts/with-test-session cargo test -p grantkeeper-cli --test local_user_e2e

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const OTHER: &str = "gk-other";

/// The other user's uid, creating the user when missing.
fn other_user() -> u32 {
    let me = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&me.stdout).trim(),
        "0",
        "these tests create a second Unix user: run them as root (CI does)"
    );
    let exists = Command::new("id").arg("-u").arg(OTHER).output().unwrap();
    if !exists.status.success() {
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                OTHER,
            ])
            .status()
            .unwrap();
        assert!(made.success(), "useradd {OTHER}");
    }
    let out = Command::new("id").arg("-u").arg(OTHER).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `args` as the other user, exec'd in place (no session process in between), so killing it
/// kills the program itself.
fn as_other_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={OTHER}"),
        &format!("--regid={OTHER}"),
        "--clear-groups",
        "--",
    ])
    .args(args);
    cmd
}

/// Runs `args` as the other user; whether it succeeded.
fn as_other(args: &[&str]) -> bool {
    as_other_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o777
}

/// A world-traversable temporary folder (so only the vault's own modes protect it).
fn open_tmp() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

#[test]
fn vault_files_are_private_and_repaired() {
    require_test_session();
    other_user();
    let tmp = open_tmp();
    let gk = Gk::new(tmp.path().join("vault"));
    gk.run(&["tenant", "add", "Acme", "--slug", "acme"])
        .expect_ok("tenant add");
    let home = &gk.home;
    assert_eq!(mode(home), 0o700);
    for f in ["vault.db", "vault.lock"] {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    let db = home.join("vault.db");
    assert!(
        !as_other(&["cat", db.to_str().unwrap()]),
        "another user cannot read vault.db"
    );

    // A vault left readable (an older version, a copy): the next command makes it private.
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir_all(home.join("locks")).unwrap();
    std::fs::set_permissions(home.join("locks"), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(as_other(&["cat", db.to_str().unwrap()]), "readable before");
    gk.run(&["tenant", "list"]).expect_ok("tenant list");
    assert_eq!(mode(home), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&home.join("locks")), 0o700);
    assert!(!as_other(&["cat", db.to_str().unwrap()]), "private again");
}

#[test]
fn another_users_vault_folder_is_refused() {
    require_test_session();
    let uid = other_user();
    let tmp = open_tmp();
    let home = tmp.path().join("theirs");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), None).unwrap();
    let r = Gk::new(home.clone()).run(&["tenant", "add", "Acme"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("belongs to uid {uid}, not to you")),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "nothing written"
    );
}

/// A vault whose agent would use `runtime` as XDG_RUNTIME_DIR.
fn vault_with_runtime(tmp: &Path, runtime: &Path) -> Gk {
    let mut gk = Gk::new(tmp.join("vault"));
    gk.env.push(("XDG_RUNTIME_DIR".into(), runtime.into()));
    gk.run(&["tenant", "add", "Acme", "--slug", "acme"])
        .expect_ok("tenant add");
    gk
}

#[test]
fn a_squatted_agent_folder_is_refused() {
    require_test_session();
    other_user();
    let tmp = open_tmp();
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The other user creates the agent's folder first, open to everyone.
    let squat = runtime.join("grantkeeper");
    assert!(as_other(&["mkdir", "-m", "0777", squat.to_str().unwrap()]));
    let gk = vault_with_runtime(tmp.path(), &runtime);
    let r = gk.run(&["agent", "run"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("refusing the agent folder") && r.stderr.contains("belongs to uid"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(&squat).unwrap().count(),
        0,
        "no socket in it"
    );
    expect_no_agent(&gk);
}

#[test]
fn without_a_runtime_folder_the_socket_lives_in_the_vault() {
    require_test_session();
    let tmp = open_tmp();
    let mut gk = Gk::new(tmp.path().join("vault"));
    gk.env.push(("XDG_RUNTIME_DIR".into(), "".into()));
    gk.run(&["tenant", "add", "Acme"]).expect_ok("tenant add");
    let mut agent = gk.spawn(&mut gk.command(&["agent", "run"]));
    let socket = gk.home.join("agent.sock");
    wait_until(|| socket.exists(), "the agent's socket in the vault folder");
    assert_eq!(mode(&socket), 0o600);
    gk.run(&["agent", "status"]).expect_ok("agent status");
    agent.kill();
}

#[test]
fn a_socket_served_by_another_user_is_not_used() {
    require_test_session();
    other_user();
    let tmp = open_tmp();
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let gk = vault_with_runtime(tmp.path(), &runtime);
    // Our own agent, to learn the socket's place; then stopped.
    let mut agent = gk.spawn(&mut gk.command(&["agent", "run"]));
    let dir = runtime.join("grantkeeper");
    wait_until(
        || std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()),
        "the agent's socket",
    );
    let socket = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    agent.kill();

    // The other user serves a socket; it is moved to where our agent's socket was (the
    // folder checks pass: this is the one case only the peer check catches).
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let their_socket = theirs.join("s.sock");
    let heard = theirs.join("heard");
    let script = format!(
        "const net=require('net'),fs=require('fs');\
         net.createServer(c=>c.on('data',d=>fs.appendFileSync({heard:?},d)))\
         .listen({sock:?},()=>fs.chmodSync({sock:?},0o777));",
        sock = their_socket.to_str().unwrap(),
        heard = heard.to_str().unwrap()
    );
    let mut listener = Kid(Some(
        as_other_command(&["node", "-e", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    wait_until(|| their_socket.exists(), "the other user's socket");
    std::fs::rename(&their_socket, &socket).unwrap();
    expect_no_agent(&gk);
    std::thread::sleep(Duration::from_millis(300));
    let said = std::fs::read(&heard).unwrap_or_default();
    assert!(
        said.is_empty(),
        "nothing was sent to the other user's socket"
    );
    listener.kill();
}

/// `agent status` finds no agent it may use.
fn expect_no_agent(gk: &Gk) {
    let r = gk.run(&["agent", "status"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("no agent runs for this vault"),
        "{}",
        r.stderr
    );
}

fn wait_until(ok: impl Fn() -> bool, what: &str) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The proxy closes a connection another user's process opens (its socket's owner, from
/// /proc/net/tcp), before reading a request; this user's requests go through.
#[test]
fn the_proxy_serves_only_its_own_user() {
    other_user();
    let idp = Idp::start(&serde_json::json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let resource = format!("{}/resource", idp.issuer);
    let mut proxy = Kid(Some(
        cli.command(&["proxy", "acme/main", "--api-base", &resource, "--json"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(proxy.child().stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let listen = serde_json::from_str::<serde_json::Value>(&line).unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{listen}/echo");
    let curl = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ];
    let mine = Command::new(curl[0])
        .args(&curl[1..])
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&mine.stdout), "200");
    let mut theirs = as_other_command(&curl);
    let theirs = theirs.arg(&url).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&theirs.stdout),
        "000",
        "another user gets no answer"
    );
    // curl: 52 empty reply, or 56 connection reset: the connection was closed unanswered.
    assert!(
        matches!(theirs.status.code(), Some(52 | 56)),
        "curl exit {:?}",
        theirs.status.code()
    );
    proxy.kill();
}
