//! Files only this user can touch: the vault folder is 0700 and every file in it 0600, checked
//! and repaired at each open; the agent's socket folder must be this user's own real folder.
//! Another local user then reads nothing (tenant names, accounts, usage history) and cannot plant
//! a lock file, a database or a socket for us to use.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and missing parents) as a 0700 folder, or checks an existing one: it must be a
/// folder owned by this user; group or other permissions are removed (with a warning).
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    check_owner(dir, &meta)?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!("{} is not a folder", dir.display())));
    }
    restrict(dir, &meta, 0o700)
}

/// Checks an existing file of the vault (owned by this user) and removes group and other
/// permissions. A missing file is fine.
pub fn ensure_file(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(Error::Invalid(format!(
            "{} is a symbolic link; the vault uses only its own files. Move it aside",
            path.display()
        )));
    }
    check_owner(path, &meta)?;
    restrict(path, &meta, 0o600)
}

/// Opens (creating, mode 0600) a file for locking; an existing one is checked first.
pub fn open_lock_file(path: &Path) -> Result<fs::File> {
    ensure_file(path)?;
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Checks the agent's socket folder without following links: this user's own folder, 0700.
/// Creates it when missing. A folder someone else made (or a link to one) is refused.
pub fn ensure_socket_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(dir, e)),
            }
        }
        Err(e) => return Err(Error::io(dir, e)),
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    let unsafe_dir = |why: &str| {
        Error::Invalid(format!(
            "refusing the agent folder {}: {why}. Remove it, or set XDG_RUNTIME_DIR to a private folder",
            dir.display()
        ))
    };
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir("it is not a real folder (a link or a file)"));
    }
    if meta.uid() != euid() {
        return Err(unsafe_dir(&format!("it belongs to uid {}", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_dir(&format!(
            "other users may use it (mode {:o})",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<()> {
    if meta.uid() != euid() {
        return Err(Error::Invalid(format!(
            "{} belongs to uid {}, not to you (uid {}): Grantkeeper uses only its own files. Choose another GRANTKEEPER_HOME",
            path.display(),
            meta.uid(),
            euid()
        )));
    }
    Ok(())
}

fn restrict(path: &Path, meta: &fs::Metadata, mode: u32) -> Result<()> {
    let current = meta.mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{current:o}"),
        now = format!("{mode:o}"),
        "made a vault file private: other users could read it"
    );
    Ok(())
}

/// The peer's uid and pid (`SO_PEERCRED`).
pub(crate) fn peer(stream: &std::os::unix::net::UnixStream) -> Option<(u32, i32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            std::os::unix::io::AsRawFd::as_raw_fd(stream),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((cred.uid, cred.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn repairs_modes_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("vault");
        ensure_dir(&home).unwrap();
        assert_eq!(mode(&home), 0o700);
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&home).unwrap();
        assert_eq!(mode(&home), 0o700);

        let f = home.join("vault.db");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        ensure_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        ensure_file(&home.join("missing")).unwrap();

        let lock = open_lock_file(&home.join("a.lock")).unwrap();
        drop(lock);
        assert_eq!(mode(&home.join("a.lock")), 0o600);

        let link = home.join("link.lock");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(open_lock_file(&link).is_err());

        let sock = dir.path().join("run");
        ensure_socket_dir(&sock).unwrap();
        assert_eq!(mode(&sock), 0o700);
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_socket_dir(&sock).unwrap_err().to_string();
        assert!(e.contains("other users may use it"), "{e}");
        let linked = dir.path().join("run-link");
        std::os::unix::fs::symlink(&home, &linked).unwrap();
        let e = ensure_socket_dir(&linked).unwrap_err().to_string();
        assert!(e.contains("not a real folder"), "{e}");
    }
}
