//! Crash points for the crash-safety tests: when `GRANTKEEPER_TEST_CRASH_AT` names a point, the
//! process pauses there for `GRANTKEEPER_TEST_CRASH_PAUSE_MS` (default 2000 ms), announcing it
//! on stderr, so a test can kill -9 it at exactly that step. Unset, a crash point costs one
//! environment lookup on the refresh path only.

/// Pauses at `point` if a test asked for it.
pub fn crash_point(point: &str) {
    if std::env::var("GRANTKEEPER_TEST_CRASH_AT").is_ok_and(|p| p == point) {
        let ms = std::env::var("GRANTKEEPER_TEST_CRASH_PAUSE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2000);
        eprintln!("grantkeeper: crash point {point}");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
