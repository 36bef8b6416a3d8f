//! Why a vault was locked ([`LockReason`]), and the watchers that tell when the desktop says the
//! user stepped away: the keychain's default
//! collection locks (Secret Service `CollectionChanged` / `PropertiesChanged`, then its `Locked`
//! property is read), the screen saver starts (`org.freedesktop.ScreenSaver` or
//! `org.gnome.ScreenSaver` `ActiveChanged(true)` on the session bus), or logind locks this
//! session (`Lock` on the system bus). Signals only ever lock; unlocking stays explicit.
//!
//! Without a session or system bus (a server, a container) the watcher for it logs once and
//! ends; the idle lock still applies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::Connection;
use dbus::message::MatchRule;

use serde::{Deserialize, Serialize};

use crate::oauth::loopback::CancelToken;

/// Why the agent locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    /// No hand-out for the idle time.
    Idle,
    /// The keychain's default collection locked.
    KeychainLocked,
    /// The desktop session locked (screen saver, logind).
    SessionLocked,
    /// Someone asked (`grantkeeper agent lock`, the tray's "Lock now").
    User,
}

impl LockReason {
    /// The stored form (the `reason` of the `locked` event).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::KeychainLocked => "keychain_locked",
            Self::SessionLocked => "session_locked",
            Self::User => "user",
        }
    }

    /// What a hand-out from the locked agent answers.
    pub fn refusal(self) -> String {
        format!(
            "the agent is locked ({}): run `grantkeeper agent unlock` to open the vault again from the keychain",
            self.describe()
        )
    }

    /// Why, in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Idle => "it was idle for its idle time",
            Self::KeychainLocked => "the keychain was locked",
            Self::SessionLocked => "the desktop session was locked",
            Self::User => "it was locked on request",
        }
    }
}

/// What a watcher calls when the desktop locks.
pub type Lock = Arc<dyn Fn(LockReason) + Send + Sync>;

const SECRETS: &str = "org.freedesktop.secrets";
const SECRETS_PATH: &str = "/org/freedesktop/secrets";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one wait for signals lasts; the watchers notice `stop` within it.
const TICK: Duration = Duration::from_millis(200);

/// Starts the session-bus and system-bus watchers; each calls `lock` with its reason.
pub fn spawn_watchers(held: Lock, stop: &CancelToken) -> Vec<std::thread::JoinHandle<()>> {
    let session = {
        let (held, stop) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            if let Err(e) = watch_session(&held, &stop) {
                tracing::info!(error = %e, "not watching the keychain and screen saver for locks");
            }
        })
    };
    let system = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Err(e) = watch_logind(&held, &stop) {
                tracing::debug!(error = %e, "not watching logind for session locks");
            }
        })
    };
    vec![session, system]
}

fn watch_session(held: &Lock, stop: &CancelToken) -> Result<(), dbus::Error> {
    let conn = Connection::new_session()?;
    let screen_locked = Arc::new(AtomicBool::new(false));
    for interface in ["org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"] {
        let flag = screen_locked.clone();
        conn.add_match(
            MatchRule::new_signal(interface, "ActiveChanged"),
            move |(active,): (bool,), _, _| {
                if active {
                    flag.store(true, Ordering::Release);
                }
                true
            },
        )?;
    }
    // Any change of a collection (or of its properties): read whether the default one is locked.
    let keychain_changed = Arc::new(AtomicBool::new(false));
    for rule in [
        MatchRule::new_signal("org.freedesktop.Secret.Service", "CollectionChanged"),
        MatchRule::new_signal("org.freedesktop.DBus.Properties", "PropertiesChanged")
            .with_namespaced_path(SECRETS_PATH),
    ] {
        let flag = keychain_changed.clone();
        conn.add_match(rule, move |(): (), _, _| {
            flag.store(true, Ordering::Release);
            true
        })?;
    }
    while !stop.is_cancelled() {
        conn.process(TICK)?;
        if screen_locked.swap(false, Ordering::AcqRel) {
            held(LockReason::SessionLocked);
        }
        if keychain_changed.swap(false, Ordering::AcqRel) {
            match default_collection_locked(&conn) {
                Ok(true) => {
                    held(LockReason::KeychainLocked);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot tell whether the keychain locked"),
            }
        }
    }
    Ok(())
}

/// Whether the Secret Service's default collection is locked (false when there is none).
fn default_collection_locked(conn: &Connection) -> Result<bool, dbus::Error> {
    let service = conn.with_proxy(SECRETS, SECRETS_PATH, CALL_TIMEOUT);
    let (path,): (dbus::Path<'static>,) =
        service.method_call("org.freedesktop.Secret.Service", "ReadAlias", ("default",))?;
    if &*path == "/" {
        return Ok(false);
    }
    conn.with_proxy(SECRETS, path, CALL_TIMEOUT)
        .get("org.freedesktop.Secret.Collection", "Locked")
}

fn watch_logind(held: &Lock, stop: &CancelToken) -> Result<(), dbus::Error> {
    let conn = Connection::new_system()?;
    let manager = conn.with_proxy(
        "org.freedesktop.login1",
        "/org/freedesktop/login1",
        CALL_TIMEOUT,
    );
    let (session,): (dbus::Path<'static>,) = manager.method_call(
        "org.freedesktop.login1.Manager",
        "GetSessionByPID",
        (std::process::id(),),
    )?;
    let locked = Arc::new(AtomicBool::new(false));
    let flag = locked.clone();
    conn.add_match(
        MatchRule::new_signal("org.freedesktop.login1.Session", "Lock")
            .with_sender("org.freedesktop.login1")
            .with_path(session),
        move |(): (), _, _| {
            flag.store(true, Ordering::Release);
            true
        },
    )?;
    while !stop.is_cancelled() {
        conn.process(TICK)?;
        if locked.swap(false, Ordering::AcqRel) {
            held(LockReason::SessionLocked);
        }
    }
    Ok(())
}
