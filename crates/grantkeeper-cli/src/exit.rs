//! Documented exit codes and the failure type that carries them.

/// Any other failure.
pub const OTHER: u8 = 1;
/// Bad input (also clap's usage errors).
pub const INVALID: u8 = 2;
/// The named tenant or connection does not exist.
pub const NOT_FOUND: u8 = 3;
/// The OS keychain cannot be used.
pub const KEYCHAIN: u8 = 4;
/// The usage history failed verification.
pub const AUDIT_BROKEN: u8 = 7;

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
