//! The app's own heap: glibc's allocator tuned for a long-running process that handles bursts
//! of large, short-lived data (a 10,000-connection list, a page of history), and the pages such
//! a burst used (the database's page cache included) handed back to the system once the
//! commands go quiet.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use grantkeeper_core::Vault;

/// How long the commands must be quiet before freed memory is handed back: longer than the
/// pauses between a user's clicks through lists and histories, so their database pages stay
/// cached while the user works.
const QUIET: Duration = Duration::from_secs(3);

/// Tunes the allocator. Call first thing in `main`, before any other thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; no other thread runs yet.
    unsafe {
        // Large buffers (a list on its way to the window) come from mmap and go back to the
        // system when freed, instead of staying in the heap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        // Two heaps instead of up to eight per core: commands run on a pool of blocking
        // threads, and each thread's heap would keep the pages of the last list it built
        // (about 35 MB at 10,000 connections, measured by scripts/bench-app).
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Asks for `vault`'s page cache and the heap's free pages to go back to the system once the
/// commands have been quiet for a few seconds (after a large read, whose rows are freed only after
/// they were sent). The page cache holds up to `state::APP_DB_CACHE_KIB` after a list of
/// 10,000 connections or a page of a long history; the next read fills it again from the file.
pub fn trim_soon(vault: Arc<Vault>) {
    static TRIMMER: OnceLock<Sender<Arc<Vault>>> = OnceLock::new();
    let sender = TRIMMER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<Vault>>();
        std::thread::spawn(move || {
            // Wait for a request, then for a quiet period, then trim.
            while let Ok(mut vault) = rx.recv() {
                loop {
                    match rx.recv_timeout(QUIET) {
                        Ok(newer) => vault = newer,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                if let Err(e) = vault.release_memory() {
                    eprintln!("grantkeeper: the database's cache could not be freed: {e}");
                }
                drop(vault);
                trim();
            }
        });
        tx
    });
    let _ = sender.send(vault);
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
