//! Warnings to a log file in the vault folder (`grantkeeper.log`, 0600), so that what the core
//! notices in the background (a refused peer, a repaired file mode, settings changed outside
//! Grantkeeper, a failed keep-alive) is kept. Log lines carry identifiers and hosts, never
//! secrets (the planted-secret test scans this file too). `GRANTKEEPER_LOG` sets the level
//! (`warn` by default; `info`, `debug`, or a `tracing` filter).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The log file's name in the vault folder.
pub const LOG_FILE: &str = "grantkeeper.log";

/// The environment variable that sets the log level.
pub const LEVEL_ENV: &str = "GRANTKEEPER_LOG";

/// Past this size the log is moved to `grantkeeper.log.old` when a program starts.
const MAX_LEN: u64 = 1024 * 1024;

/// Opens the vault's log file for appending (created 0600), moving a full one aside first.
/// `None` when the vault folder does not exist yet or cannot be written.
pub fn open(home: &Path) -> Option<File> {
    if !home.is_dir() {
        return None;
    }
    let path = home.join(LOG_FILE);
    crate::private::ensure_file(&path).ok()?;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_LEN) {
        let _ = std::fs::rename(&path, home.join(format!("{LOG_FILE}.old")));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .ok()
}

/// Sends this process's log to the vault's log file (the program calls it once at start). The
/// file is opened at the first line logged: a command that logs nothing writes nothing.
pub fn init(home: &Path) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LEVEL_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let file = Arc::new(Mutex::new(LazyFile {
        home: home.to_owned(),
        file: None,
    }));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || Writer(file.clone()))
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The log file, opened when first written to.
struct LazyFile {
    home: PathBuf,
    file: Option<File>,
}

/// One log line's writer.
struct Writer(Arc<Mutex<LazyFile>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut lazy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lazy.file.is_none() {
            lazy.file = open(&lazy.home);
        }
        match lazy.file.as_mut() {
            // One write per line: O_APPEND keeps lines of several processes whole.
            Some(f) => f.write_all(buf).map(|()| buf.len()),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
