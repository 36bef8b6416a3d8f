//! The CLI against a keychain that cannot be used: no D-Bus, no Secret Service, a locked keyring
//! (with the unlock prompt failing, and with it waiting on the X display). Each gives one clear
//! line on stderr, exit code 4, and writes nothing. Needs `dbus-daemon`, `gnome-keyring-daemon`
//! and `gdbus`; the prompt case needs the Xvfb display of `scripts/with-test-session`. The
//! agent's own locks (idle, keychain, desktop session) are tested here too, on such buses.

#[path = "keychain_failures/agent_locks.rs"]
mod agent_locks;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{reader, Kid, BIN};

/// A private D-Bus session bus, killed on drop.
struct Bus {
    daemon: Child,
    address: String,
    keyring: Option<Child>,
    dir: tempfile::TempDir,
}

impl Bus {
    /// `with_services`: the standard session config, which can start the keyring's unlock
    /// prompter; otherwise a bus on which no service can be activated.
    fn start(with_services: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("dbus-daemon");
        if with_services {
            cmd.arg("--session");
        } else {
            let conf = dir.path().join("bus.conf");
            std::fs::write(
                &conf,
                format!(
                    r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir={}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>"#,
                    dir.path().display()
                ),
            )
            .unwrap();
            cmd.arg(format!("--config-file={}", conf.display()));
        }
        let mut daemon = cmd
            .args(["--nofork", "--print-address=1"])
            .envs(private_env(dir.path()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon starts");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Bus {
            daemon,
            address: line.trim().to_owned(),
            keyring: None,
            dir,
        }
    }

    /// Starts gnome-keyring on this bus with an unlocked login keyring.
    fn start_keyring(&mut self) {
        let mut child = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .envs(private_env(self.dir.path()))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-password")
            .unwrap();
        self.keyring = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.name_has_owner("org.freedesktop.secrets") {
            assert!(
                Instant::now() < deadline,
                "gnome-keyring did not register on the bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn gdbus(&self, args: &[&str]) -> String {
        let out = Command::new("gdbus")
            .args(["call", "--session"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn name_has_owner(&self, name: &str) -> bool {
        self.gdbus(&[
            "-d",
            "org.freedesktop.DBus",
            "-o",
            "/org/freedesktop/DBus",
            "-m",
            "org.freedesktop.DBus.NameHasOwner",
            name,
        ])
        .contains("true")
    }

    fn lock_all(&self) {
        let out = self.gdbus(&[
            "-d",
            "org.freedesktop.secrets",
            "-o",
            "/org/freedesktop/secrets",
            "-m",
            "org.freedesktop.Secret.Service.Lock",
            "['/org/freedesktop/secrets/collection/login']",
        ]);
        assert!(out.contains("collection/login"), "lock failed: {out}");
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(k) = self.keyring.as_mut() {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn private_env(dir: &Path) -> Vec<(String, PathBuf)> {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    vec![
        ("HOME".into(), dir.to_owned()),
        ("XDG_RUNTIME_DIR".into(), run),
        ("XDG_DATA_HOME".into(), dir.join("data")),
        ("XDG_CONFIG_HOME".into(), dir.join("config")),
    ]
}

/// Runs the CLI with a 60 s guard, so a hanging keychain fails the test instead of blocking it.
fn grantkeeper(home: &Path, bus: Option<&str>, display: bool, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("GRANTKEEPER_HOME", home)
        .env("GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS", "3")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(addr) = bus {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", addr);
    }
    if !display {
        cmd.env_remove("DISPLAY");
    }
    let mut kid = Kid(Some(cmd.spawn().unwrap()));
    let stdout = reader(kid.child().stdout.take().unwrap());
    let stderr = reader(kid.child().stderr.take().unwrap());
    let status = kid.wait_for(Duration::from_secs(60), &format!("grantkeeper {args:?}"));
    Output {
        status,
        stdout: stdout.join().unwrap().into_bytes(),
        stderr: stderr.join().unwrap().into_bytes(),
    }
}

fn assert_keychain_failure(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("grantkeeper: "), "{stderr}");
    assert!(stderr.contains(expect), "expected '{expect}' in: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("panicked"));
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "no file created or removed");
    for (path, bytes) in before {
        assert!(after[path] == *bytes, "{} was modified", path.display());
    }
}

#[test]
fn no_dbus_session_bus() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("vault");
    let out = grantkeeper(&home, None, false, &["tenant", "add", "Acme"]);
    assert_keychain_failure(&out, "No D-Bus session bus");
    let out = grantkeeper(
        &home,
        Some("unix:path=/nonexistent/bus"),
        false,
        &["tenant", "add", "Acme"],
    );
    assert_keychain_failure(&out, "No D-Bus session bus");
    assert!(!home.exists(), "nothing written");
}

#[test]
fn no_secret_service_on_the_bus() {
    let bus = Bus::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("vault");
    let out = grantkeeper(&home, Some(&bus.address), false, &["tenant", "add", "Acme"]);
    assert_keychain_failure(&out, "No Secret Service");
    assert!(!home.exists(), "nothing written");
}

fn locked_vault(with_services: bool) -> (Bus, tempfile::TempDir, PathBuf) {
    let mut bus = Bus::start(with_services);
    bus.start_keyring();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("vault");
    let out = grantkeeper(&home, Some(&bus.address), false, &["tenant", "add", "Acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bus.lock_all();
    (bus, tmp, home)
}

#[test]
fn locked_keyring_with_the_prompt_dismissed() {
    let (bus, _tmp, home) = locked_vault(false);
    let before = snapshot(&home);
    for args in [&["tenant", "add", "Other"][..], &["tenant", "list"][..]] {
        let out = grantkeeper(&home, Some(&bus.address), false, args);
        assert_keychain_failure(&out, "The keychain is locked");
    }
    assert_unchanged(&before, &snapshot(&home));
}

#[test]
fn locked_keyring_with_an_unanswered_prompt_times_out() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display for the unlock prompt: run under scripts/with-test-session"
    );
    let (bus, _tmp, home) = locked_vault(true);
    let before = snapshot(&home);
    let started = Instant::now();
    let out = grantkeeper(&home, Some(&bus.address), true, &["tenant", "add", "Other"]);
    assert_keychain_failure(&out, "did not answer within 3 s");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_unchanged(&before, &snapshot(&home));
}
