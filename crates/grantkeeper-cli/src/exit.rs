//! Documented exit codes and the failure type that carries them.

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

/// Prints the failure as the one `grantkeeper: …` line on stderr (line breaks and control
/// characters of provider messages flattened) and returns its exit code.
pub fn report(f: &Failure) -> u8 {
    use std::io::Write;
    let line = crate::output::one_line(&f.message);
    let _ = writeln!(std::io::stderr().lock(), "grantkeeper: {}", line.trim());
    f.code
}

impl From<grantkeeper_core::Error> for Failure {
    fn from(e: grantkeeper_core::Error) -> Self {
        use grantkeeper_core::oauth::OAuthError as O;
        use grantkeeper_core::Error as E;
        let code = match &e {
            E::Keychain(_) | E::MasterKeyMissing { .. } => KEYCHAIN,
            E::NotFound { .. } => NOT_FOUND,
            E::Invalid(_) | E::AlreadyExists { .. } => INVALID,
            E::Tampered(_) => AUDIT_BROKEN,
            E::NotUsable { .. } => REFUSED,
            E::TimedOut { .. } | E::Cancelled => TIMED_OUT,
            E::Refresh { class, .. } => match class {
                grantkeeper_core::lifecycle::FailureClass::Transient => NETWORK,
                _ => REFUSED,
            },
            E::OAuth(o) => match o {
                O::Http(_) | O::Malformed(_) | O::MissingAccessToken | O::WrongTokenType(_) => {
                    NETWORK
                }
                O::TimedOut { .. } | O::Cancelled => TIMED_OUT,
                O::Config(_) | O::Listener(_) | O::Browser(_) => INVALID,
                _ => REFUSED,
            },
            _ => OTHER,
        };
        Failure::new(code, e.to_string())
    }
}
