//! The agent locks itself: after its idle time, when the real gnome-keyring locks its login
//! collection, and when the screen saver says the session locked. Each test has its own bus and
//! keyring, so locking them does not disturb other tests. After each lock a hand-out says why
//! the agent is locked and how to unlock it, and the history records the lock with its reason.

use serde_json::Value;

use super::*;

/// A running `grantkeeper agent run`, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A vault with a tenant, and its agent started with `--idle-lock idle` on the private bus.
fn vault_with_agent(idle: &str) -> (Bus, tempfile::TempDir, PathBuf, Agent) {
    let mut bus = Bus::start(false);
    bus.start_keyring();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("vault");
    let out = grantkeeper(&home, Some(&bus.address), false, &["tenant", "add", "Acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = Command::new(BIN)
        .args(["agent", "run", "--idle-lock", idle])
        .env("GRANTKEEPER_HOME", &home)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !grantkeeper(&home, Some(&bus.address), false, &["agent", "status"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (bus, tmp, home, agent)
}

fn status(home: &Path, bus: &Bus) -> Value {
    let out = grantkeeper(
        home,
        Some(&bus.address),
        false,
        &["agent", "status", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits up to `within` for the agent to lock; its status then.
fn wait_locked(home: &Path, bus: &Bus, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(home, bus);
        if s["locked"] == true {
            return s;
        }
        assert!(Instant::now() < deadline, "the agent did not lock: {s}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A hand-out from the locked agent fails with exit 4 and one line saying why and what to do.
fn assert_hand_out_refused(home: &Path, bus: &Bus, why: &str) {
    let out = grantkeeper(home, Some(&bus.address), false, &["token", "acme/main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("the agent is locked"), "{stderr}");
    assert!(stderr.contains(why), "expected '{why}' in: {stderr}");
    assert!(stderr.contains("grantkeeper agent unlock"), "{stderr}");
    assert!(out.stdout.is_empty());
}

fn unlock(home: &Path, bus: &Bus) {
    let out = grantkeeper(home, Some(&bus.address), false, &["agent", "unlock"]);
    assert!(
        out.status.success(),
        "agent unlock: {} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(home, bus)["locked"], false);
}

/// The reasons of the `locked` events, oldest first.
fn lock_reasons(home: &Path, bus: &Bus) -> Vec<String> {
    let out = grantkeeper(
        home,
        Some(&bus.address),
        false,
        &["history", "--kind", "locked", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut reasons: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e["actor"], "agent");
            e["detail"]["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    reasons.reverse();
    reasons
}

#[test]
fn the_agent_locks_when_idle() {
    let (bus, _tmp, home, _agent) = vault_with_agent("2s");
    // Hand-out requests (here for a connection that does not exist) keep it open past 2 s.
    let started = Instant::now();
    let mut last_use = Instant::now();
    while started.elapsed() < Duration::from_millis(4000) {
        let out = grantkeeper(&home, Some(&bus.address), false, &["token", "acme/nope"]);
        last_use = Instant::now();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        status(&home, &bus)["locked"],
        false,
        "status is not use, hand-outs are"
    );
    let s = wait_locked(&home, &bus, Duration::from_secs(8));
    let after = last_use.elapsed();
    assert_eq!(s["locked_by"], "idle");
    assert!(
        after >= Duration::from_millis(1800) && after < Duration::from_millis(4000),
        "locked {after:?} after the last hand-out, idle time 2 s"
    );
    assert_hand_out_refused(&home, &bus, "idle");
    unlock(&home, &bus);
    // Locked on request, then idle again.
    let out = grantkeeper(&home, Some(&bus.address), false, &["agent", "lock"]);
    assert!(out.status.success());
    assert_eq!(status(&home, &bus)["locked_by"], "user");
    assert_hand_out_refused(&home, &bus, "locked on request");
    unlock(&home, &bus);
    assert_eq!(
        wait_locked(&home, &bus, Duration::from_secs(8))["locked_by"],
        "idle"
    );
    unlock(&home, &bus);
    assert_eq!(lock_reasons(&home, &bus), ["idle", "user", "idle"]);
}

#[test]
fn the_agent_locks_with_the_keychain() {
    let (mut bus, _tmp, home, _agent) = vault_with_agent("off");
    // The real gnome-keyring locks its login collection (Secret Service `Lock`, as
    // `seahorse` or the desktop does): the keyring announces it and the agent follows.
    let locking = Instant::now();
    bus.lock_all();
    let s = wait_locked(&home, &bus, Duration::from_secs(5));
    eprintln!("agent locked {:?} after the keychain", locking.elapsed());
    assert_eq!(s["locked_by"], "keychain_locked");
    assert_hand_out_refused(&home, &bus, "the keychain was locked");
    // The keyring unlocked again (restarted with its password): the agent opens on request.
    if let Some(mut k) = bus.keyring.take() {
        let _ = k.kill();
        let _ = k.wait();
    }
    bus.start_keyring();
    unlock(&home, &bus);
    assert_eq!(lock_reasons(&home, &bus), ["keychain_locked"]);
}

/// A desktop's screen saver (GNOME Shell, KDE's ksmserver, xscreensaver's bridges) announces a
/// lock with `ActiveChanged(true)` on the session bus. CI has no screen saver, and Xvfb has no
/// screen to lock: emitting the same signal on the test's own bus is the one real trigger
/// available, and it goes through the same bus, match rule and code as a desktop's would.
#[test]
fn the_agent_locks_with_the_desktop_session() {
    let (bus, _tmp, home, _agent) = vault_with_agent("off");
    let emit = |interface: &str, path: &str, active: &str| {
        let out = Command::new("gdbus")
            .args(["emit", "--session", "--object-path", path, "--signal"])
            .arg(format!("{interface}.ActiveChanged"))
            .arg(active)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The screen saver ending does not lock.
    emit(
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        "false",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&home, &bus)["locked"], false);
    emit(
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        "true",
    );
    let s = wait_locked(&home, &bus, Duration::from_secs(5));
    assert_eq!(s["locked_by"], "session_locked");
    assert_hand_out_refused(&home, &bus, "the desktop session was locked");
    unlock(&home, &bus);
    // GNOME's own name for it.
    emit("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "true");
    assert_eq!(
        wait_locked(&home, &bus, Duration::from_secs(5))["locked_by"],
        "session_locked"
    );
    unlock(&home, &bus);
    assert_eq!(
        lock_reasons(&home, &bus),
        ["session_locked", "session_locked"]
    );
}
