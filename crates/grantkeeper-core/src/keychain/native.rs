//! The macOS Keychain and the Windows Credential Manager, through the `keyring` crate.

use super::{classify, EntryName, KeychainError};
use crate::secret::SecretText;

/// Reads the entry; `None` when there is none.
pub(super) fn get(name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
    match entry(name)?.get_password() {
        Ok(p) => Ok(Some(SecretText::new(p))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(err) => Err(classify(err.to_string())),
    }
}

/// Creates or replaces the entry.
pub(super) fn set(name: &EntryName, value: &SecretText) -> Result<(), KeychainError> {
    entry(name)?
        .set_password(value.expose())
        .map_err(|err| classify(err.to_string()))
}

/// Deletes the entry; none is fine.
pub(super) fn delete(name: &EntryName) -> Result<(), KeychainError> {
    match entry(name)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(classify(err.to_string())),
    }
}

fn entry(name: &EntryName) -> Result<keyring::Entry, KeychainError> {
    keyring::Entry::new(name.service(), name.user()).map_err(|err| classify(err.to_string()))
}
