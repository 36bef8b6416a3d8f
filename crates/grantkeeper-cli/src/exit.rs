//! Documented exit codes and the failure type that carries them.

use grantkeeper_core::ErrorKind;

/// Any other failure.
pub const OTHER: u8 = 1;
/// Bad input (also clap's usage errors).
pub const INVALID: u8 = 2;
/// The named tenant or connection does not exist.
pub const NOT_FOUND: u8 = 3;
/// The OS keychain cannot be used.
pub const KEYCHAIN: u8 = 4;
/// The provider refused (consent denied, invalid grant, a rejected redirect), or the connection
/// cannot be used until someone acts: it needs re-consent or was revoked.
pub const REFUSED: u8 = 5;
/// The network or the provider could not be reached, or answered nonsense.
pub const NETWORK: u8 = 6;
/// The usage history failed verification, or a setting that decides where secrets go was
/// changed outside Grantkeeper (nothing was sent).
pub const AUDIT_BROKEN: u8 = 7;
/// Nobody completed the sign-in in time, a `token` or `exec` ran past its `--timeout`, or the
/// user cancelled.
pub const TIMED_OUT: u8 = 8;
/// `revoke` or `delete` forgot the grant here, but the provider did not confirm its revocation:
/// the grant may still be live at the provider.
pub const NOT_CONFIRMED: u8 = 9;

/// A failure: one line for stderr and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(INVALID, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(OTHER, message)
    }
}

/// The exit code for a kind of failure, the same whether the CLI answered alone or through the
/// agent.
pub fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::Invalid => INVALID,
        ErrorKind::Keychain | ErrorKind::Locked => KEYCHAIN,
        ErrorKind::Refused => REFUSED,
        ErrorKind::Network => NETWORK,
        ErrorKind::TimedOut | ErrorKind::Cancelled => TIMED_OUT,
        ErrorKind::Tampered => AUDIT_BROKEN,
        ErrorKind::Other => OTHER,
    }
}

impl From<grantkeeper_core::Error> for Failure {
    fn from(e: grantkeeper_core::Error) -> Self {
        Failure::new(code(e.kind()), e.to_string())
    }
}
