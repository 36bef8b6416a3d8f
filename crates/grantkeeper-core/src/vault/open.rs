//! Opening a vault: creating it on first use, its private folder, the master key from the keychain.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::params;

use crate::audit::{self};
use crate::crypto::{MasterKey, VaultKeys};
use crate::db;
use crate::error::{Error, Result};
use crate::keychain::{EntryName, Keychain};
use crate::model::*;

use super::{Vault, DB_FILE, KEYS_LOCK_FILE, LOCK_FILE};

impl Vault {
    /// Opens the vault in `home`, creating it on first use.
    ///
    /// The keychain is checked first: a new vault's master key is written to it and read back
    /// before any file is created, and an existing vault's master key is read before anything
    /// is written. When the keychain cannot be used the error says why, and nothing is written.
    ///
    /// An existing vault folder must be this user's; it is made 0700 and its files 0600 at each
    /// open (a vault made by an older version, or files copied in, are repaired with a warning).
    pub fn open(home: &Path, keychain: Arc<dyn Keychain>) -> Result<Self> {
        let db_path = home.join(DB_FILE);
        if db_path.exists() {
            make_private(home)?;
            return Self::open_existing(home, keychain);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let master = MasterKey::generate();
        let entry = EntryName::master_key(&id);
        keychain.set(&entry, &master.to_keychain_text())?;
        // Compared without copies: both texts are wiped when dropped.
        let read_back = keychain.get(&entry)?;
        if read_back.is_none_or(|t| t.expose() != master.to_keychain_text().expose()) {
            let _ = keychain.delete(&entry);
            return Err(crate::keychain::KeychainError::Other {
                detail: "the keychain did not return the value just stored".into(),
            }
            .into());
        }
        match create_db(home, &id) {
            Ok(true) => Self::finish_open(home, id, keychain, master),
            Ok(false) => {
                // Another process created the vault meanwhile: use theirs.
                let _ = keychain.delete(&entry);
                Self::open_existing(home, keychain)
            }
            Err(e) => {
                let _ = keychain.delete(&entry);
                Err(e)
            }
        }
    }

    pub(super) fn open_existing(home: &Path, keychain: Arc<dyn Keychain>) -> Result<Self> {
        let db_path = home.join(DB_FILE);
        // The vault id is read through the same locking connection the vault then uses; nothing
        // is written (no migration) until the keychain has given the master key.
        let mut conn = db::connect(&db_path, false)?;
        let id: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'vault_id'", [], |r| {
                r.get(0)
            })?;
        let text =
            keychain
                .get(&EntryName::master_key(&id))?
                .ok_or_else(|| Error::MasterKeyMissing {
                    backend: keychain.describe(),
                    path: db_path.clone(),
                })?;
        let VaultKeys {
            master,
            tenants,
            adopting,
            teams,
            policies,
        } = VaultKeys::from_keychain_text(&text)?;
        db::migrate(&mut conn)?;
        audit::ensure_keyed(&mut conn, &master.history_key(), &*keychain, &id)?;
        let vault = Self::with_connection(home, id, conn, keychain, master);
        *vault.tenant_keys.lock().unwrap_or_else(|p| p.into_inner()) = (tenants, adopting);
        vault.policy_versions.learn(&policies);
        vault.teams.load(teams.as_ref())?;
        Ok(vault)
    }

    pub(super) fn finish_open(
        home: &Path,
        id: String,
        keychain: Arc<dyn Keychain>,
        master: MasterKey,
    ) -> Result<Self> {
        let mut conn = db::open(&home.join(DB_FILE), false)?;
        audit::ensure_keyed(&mut conn, &master.history_key(), &*keychain, &id)?;
        Ok(Self::with_connection(home, id, conn, keychain, master))
    }

    pub(super) fn with_connection(
        home: &Path,
        id: String,
        conn: rusqlite::Connection,
        keychain: Arc<dyn Keychain>,
        master: MasterKey,
    ) -> Self {
        let history = master.history_key();
        let anchorer = audit::Anchorer::new(
            home.join(DB_FILE),
            home.join(LOCK_FILE),
            keychain.clone(),
            history.clone(),
            id.clone(),
        );
        Self {
            history,
            anchorer,
            http: crate::http::HttpClient::default(),
            refresh_gates: Mutex::default(),
            teams: crate::team::ConfigCache::default(),
            team_history: crate::team::history::HistoryPusher::new(home.join(DB_FILE)),
            data_keys: Mutex::default(),
            tenant_keys: Mutex::default(),
            policy_versions: Default::default(),
            home: home.to_owned(),
            fingerprints: master.fingerprint_key(),
            id,
            db: Mutex::new(conn),
            keychain,
            master,
        }
    }
}

/// Creates the database under the vault lock. Returns `false` if another process won the race.
pub(super) fn create_db(home: &Path, vault_id: &str) -> Result<bool> {
    crate::private::ensure_dir(home)?;
    let lock_path = home.join(LOCK_FILE);
    let lock = crate::private::open_lock_file(&lock_path)?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let db_path = home.join(DB_FILE);
    if db_path.exists() {
        return Ok(false);
    }
    let tmp = home.join(format!("{DB_FILE}.creating-{}", std::process::id()));
    let build = || -> Result<()> {
        // Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        drop(crate::private::open_lock_file(&tmp)?);
        let conn = db::open(&tmp, true)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('vault_id', ?1), ('created_at', ?2)",
            params![vault_id, now_ms().to_string()],
        )?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        fs::rename(&tmp, &db_path).map_err(|e| Error::io(&db_path, e))
    };
    let result = build();
    if result.is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    }
    result.map(|()| true)
}

/// Makes an existing vault folder and its files private (see [`crate::private`]).
pub(super) fn make_private(home: &Path) -> Result<()> {
    crate::private::ensure_dir(home)?;
    for name in [
        DB_FILE,
        "vault.db-wal",
        "vault.db-shm",
        LOCK_FILE,
        KEYS_LOCK_FILE,
    ] {
        crate::private::ensure_file(&home.join(name))?;
    }
    let locks = home.join(super::LOCKS_DIR);
    if locks.exists() {
        crate::private::ensure_dir(&locks)?;
    }
    Ok(())
}
