//! The Secret Service (gnome-keyring, KWallet, KeePassXC) over D-Bus.
//!
//! One connection and one encrypted session (DH key exchange, AES on the bus) per process,
//! opened at the first call and kept until the process ends. A connection per call, as the
//! `keyring` crate makes, costs the daemon a key exchange each time, and gnome-keyring 42 can
//! abort when many new clients arrive while it is busy (it handles a client's `OpenSession`
//! before registering the client; seen with `dbus-monitor` under the stress test). Fewer, longer
//! connections make that rarer, not impossible.
//!
//! Entries are items of the default collection with the attributes `service`, `username` and
//! `target = default`, the same the `keyring` crate used, so entries written by earlier versions
//! are found.

use std::collections::HashMap;
use std::sync::Mutex;

use dbus_secret_service::{EncryptionType, Error, Item, SecretService};
use zeroize::Zeroize;

use super::{classify, EntryName, KeychainError};
use crate::secret::SecretText;

/// The `target` attribute: the default collection.
const TARGET: &str = "default";
/// Content type of every secret written.
const TEXT: &str = "text/plain";

/// This process's connection, opened at the first call.
static CONNECTION: Mutex<Option<SecretService>> = Mutex::new(None);

/// Reads the entry; `None` when there is none.
pub(super) fn get(name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
    with_service(name, |ss| {
        let Some(item) = find(ss, name)? else {
            return Ok(None);
        };
        match String::from_utf8(item.get_secret()?) {
            Ok(text) => Ok(Some(SecretText::new(text))),
            Err(not_text) => {
                not_text.into_bytes().zeroize();
                Err(Error::UnsupportedSecretFormat.into())
            }
        }
    })
}

/// Replaces the entry's secret, or creates the entry in the default collection.
pub(super) fn set(name: &EntryName, value: &SecretText) -> Result<(), KeychainError> {
    with_service(name, |ss| {
        if let Some(item) = find(ss, name)? {
            return Ok(item.set_secret(value.expose().as_bytes(), TEXT)?);
        }
        let collection = ss.get_default_collection()?;
        collection.ensure_unlocked()?;
        let mut attributes = search_attributes(name);
        attributes.insert("application", "grantkeeper");
        let label = format!("Grantkeeper {}", name.user());
        collection.create_item(&label, attributes, value.expose().as_bytes(), true, TEXT)?;
        Ok(())
    })
}

/// Deletes every item of the entry; none is fine.
pub(super) fn delete(name: &EntryName) -> Result<(), KeychainError> {
    with_service(name, |ss| {
        let found = ss.search_items(search_attributes(name))?;
        for item in found.unlocked.iter().chain(&found.locked) {
            item.delete()?;
        }
        Ok(())
    })
}

/// Why one call failed.
enum Failed {
    /// The Secret Service's answer, or no answer.
    Service(Error),
    /// Two or more items for one entry: which one holds the current secret cannot be told.
    Ambiguous,
}

impl From<Error> for Failed {
    fn from(err: Error) -> Self {
        Self::Service(err)
    }
}

impl Failed {
    /// A failure of the connection rather than of the request.
    fn on_the_bus(&self) -> bool {
        matches!(self, Self::Service(Error::Dbus(_) | Error::Unavailable))
    }

    /// The Secret Service left the bus (or hung) before it answered: a new connection reaches
    /// the daemon D-Bus starts in its place.
    fn no_reply(&self) -> bool {
        matches!(self, Self::Service(Error::Dbus(e)) if e.name() == Some("org.freedesktop.DBus.Error.NoReply"))
    }

    fn into_keychain(self, name: &EntryName) -> KeychainError {
        match self {
            Self::Service(err @ (Error::Locked | Error::Prompt)) => KeychainError::Locked {
                detail: err.to_string(),
            },
            Self::Service(err @ Error::Unavailable) => KeychainError::NoSecretService {
                detail: err.to_string(),
            },
            Self::Service(err) => classify(err.to_string()),
            Self::Ambiguous => KeychainError::Other {
                detail: format!(
                    "it holds several items for {}: delete the extra ones in your keyring manager (e.g. Seahorse)",
                    name.user()
                ),
            },
        }
    }
}

fn search_attributes(name: &EntryName) -> HashMap<&str, &str> {
    HashMap::from([
        ("service", name.service()),
        ("username", name.user()),
        ("target", TARGET),
    ])
}

/// The entry's one item, unlocked (which may prompt).
fn find<'a>(ss: &'a SecretService, name: &EntryName) -> Result<Option<Item<'a>>, Failed> {
    let found = ss.search_items(search_attributes(name))?;
    let mut items = found.unlocked.into_iter().chain(found.locked);
    let Some(item) = items.next() else {
        return Ok(None);
    };
    if items.next().is_some() {
        return Err(Failed::Ambiguous);
    }
    item.ensure_unlocked()?;
    Ok(Some(item))
}

/// Runs `op` on this process's connection, connecting first if needed. A connection that fails
/// on the bus is dropped, and `op` runs once more on a new one when the connection had served
/// earlier calls (the daemon may have restarted since) or the daemon left without answering.
/// Every operation here may run twice: reads, and writes of the same value.
fn with_service<T>(
    name: &EntryName,
    op: impl Fn(&SecretService) -> Result<T, Failed>,
) -> Result<T, KeychainError> {
    let mut held = CONNECTION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let reused = held.is_some();
    let result = match run(&mut held, &op) {
        Err(failed) if failed.on_the_bus() && (reused || failed.no_reply()) => {
            tracing::debug!("the keychain connection failed; connecting once more");
            run(&mut held, &op)
        }
        result => result,
    };
    result.map_err(|failed| failed.into_keychain(name))
}

fn run<T>(
    held: &mut Option<SecretService>,
    op: &impl Fn(&SecretService) -> Result<T, Failed>,
) -> Result<T, Failed> {
    let ss = match held {
        Some(ss) => ss,
        None => held.insert(SecretService::connect(EncryptionType::Dh)?),
    };
    let result = op(ss);
    if result.as_ref().is_err_and(Failed::on_the_bus) {
        *held = None;
    }
    result
}
