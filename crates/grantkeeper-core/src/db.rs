//! The SQLite file: connection settings and versioned migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Schema migrations; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL
) STRICT;

CREATE TABLE provider_apps (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    preset         TEXT,
    endpoints      TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    client_secret  BLOB,
    redirect_mode  TEXT NOT NULL,
    redirect_port  INTEGER,
    relay_url      TEXT,
    default_scopes TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE connections (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider_app_id         TEXT NOT NULL REFERENCES provider_apps(id) ON DELETE RESTRICT,
    name                    TEXT NOT NULL,
    account_subject         TEXT,
    account_username        TEXT,
    account_org_id          TEXT,
    scopes_requested        TEXT NOT NULL,
    scopes_granted          TEXT NOT NULL,
    scopes_granted_reported INTEGER NOT NULL,
    consented_at            INTEGER NOT NULL,
    consented_by            TEXT,
    status                  TEXT NOT NULL CHECK (status IN ('active', 'needs_reconsent', 'revoked', 'error')),
    status_detail           TEXT,
    access_expires_at       INTEGER,
    access_expiry_source    TEXT,
    refresh_expires_at      INTEGER,
    refresh_hard_expires_at INTEGER,
    last_refresh_at         INTEGER,
    last_used_at            INTEGER,
    has_refresh_token       INTEGER NOT NULL,
    metadata                TEXT NOT NULL,
    access_token            BLOB,
    id_token                BLOB,
    created_at              INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;
CREATE INDEX connections_app ON connections(provider_app_id);

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    ts            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    tenant_id     TEXT,
    connection_id TEXT,
    actor         TEXT,
    app_hint      TEXT,
    caller        TEXT,
    detail        TEXT,
    fingerprint   TEXT,
    salt          BLOB,
    redacted      INTEGER NOT NULL DEFAULT 0,
    body_hash     BLOB NOT NULL,
    chain_hash    BLOB NOT NULL
) STRICT;
CREATE INDEX events_connection ON events(connection_id, ts, kind) WHERE connection_id IS NOT NULL;
CREATE INDEX events_tenant ON events(tenant_id) WHERE tenant_id IS NOT NULL;
"#,
    r#"
-- A rotated refresh token received but not yet in the keychain (see grants/mod.rs).
CREATE TABLE refresh_journal (
    connection_id TEXT PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    refresh_token BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
"#,
    r#"
-- The keyed usage history (see audit.rs): `digest` covers an event's erasable part, `mac` is the
-- chain's HMAC under a key derived from the master key. Until the vault is next opened with its
-- master key they hold the old unkeyed hashes; audit::ensure_keyed then verifies the old chain,
-- MACs every event in order (numbers, times and content unchanged) and replaces 'unkeyed' with
-- the record of when it did. The renamed columns also stop older builds from appending
-- unkeyed events to a keyed history.
ALTER TABLE events RENAME COLUMN body_hash TO digest;
ALTER TABLE events RENAME COLUMN chain_hash TO mac;
INSERT INTO meta (key, value) VALUES ('history', 'unkeyed');
"#,
    r#"
-- MACs under the tenant's data key over the settings that decide where secrets go (see
-- vault.rs); NULL only in vaults made before them, until the tenant's first use.
ALTER TABLE provider_apps ADD COLUMN settings_mac BLOB;
ALTER TABLE connections ADD COLUMN link_mac BLOB;
"#,
    r#"
-- How a provider app authenticates, when chosen at registration (NULL: as its preset says). Its
-- private key, for private_key_jwt, is in the keychain.
ALTER TABLE provider_apps ADD COLUMN client_auth TEXT;
"#,
    r#"
-- Usage profiles folded from the history for anomaly flags (see audit/rollup.rs); derived data,
-- rebuilt from the events after meta.usage_through.
CREATE TABLE usage_profiles (
    connection_id    TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    first_ts         INTEGER NOT NULL,
    handouts         INTEGER NOT NULL,
    hour_of_day      BLOB NOT NULL,
    hours            BLOB NOT NULL,
    days             BLOB NOT NULL,
    failed_refreshes INTEGER NOT NULL,
    failing_since    INTEGER,
    last_failure     TEXT,
    scopes_added_at  INTEGER,
    scopes_added     TEXT
) STRICT, WITHOUT ROWID;
CREATE TABLE usage_programs (
    connection_id TEXT NOT NULL,
    program       TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    first_ts      INTEGER NOT NULL,
    last_ts       INTEGER NOT NULL,
    uses          INTEGER NOT NULL,
    PRIMARY KEY (connection_id, program)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_profiles_tenant ON usage_profiles(tenant_id);
CREATE INDEX usage_programs_tenant ON usage_programs(tenant_id);
"#,
    r#"
-- Whether a provider app's grants are DPoP-bound (RFC 9449), when chosen (NULL: when discovery
-- offers it). Each grant's DPoP key is in the keychain.
ALTER TABLE provider_apps ADD COLUMN dpop INTEGER;
"#,
    r#"
-- Each tenant's hand-out policy (see `crate::policy`): one MAC'd row, its version also kept in
-- the keychain; and refused hand-outs per clock hour in the usage profiles.
CREATE TABLE hand_out_policies (
    tenant_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    mac       BLOB NOT NULL
) STRICT, WITHOUT ROWID;
ALTER TABLE usage_profiles ADD COLUMN refused BLOB NOT NULL DEFAULT x'';
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Opens (creating if asked) the database with the vault's settings and applies migrations.
pub fn open(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut conn = connect(path, create)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens (creating) a database at the schema an older build left: every migration before the
/// first one containing `before`.
#[cfg(test)]
pub(crate) fn open_before(path: &Path, before: &str) -> rusqlite::Result<Connection> {
    let version = MIGRATIONS
        .iter()
        .position(|m| m.contains(before))
        .expect("a known migration");
    let conn = connect(path, true)?;
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "user_version", version)?;
    Ok(conn)
}

/// Opens the database with the vault's settings, without migrating: reads take SQLite's usual
/// shared locks and see the WAL, so they are correct while other processes write and
/// checkpoint. (Never `immutable=1` on a file others write: SQLite may then return
/// SQLITE_CORRUPT.)
pub fn connect(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache and memory-mapped reads keeps the event indexes hot at millions of events.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
    // Deleted secrets and tenants are overwritten with zeros, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// Applies the migrations this build knows, once, under the write lock.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for sql in &MIGRATIONS[version.min(MIGRATIONS.len())..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrates_once_and_sets_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.db");
        let c = super::open(&p, true).unwrap();
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::SCHEMA_VERSION);
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = c
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(c);
        super::open(&p, false).unwrap();
        assert!(super::open(&dir.path().join("missing.db"), false).is_err());
    }
}
