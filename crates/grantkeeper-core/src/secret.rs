//! Secret values: newtypes that zeroize on drop and never print themselves.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret itself. Call only where the value leaves for its destination
            /// (a request body, the keychain, an encrypted column, the user's explicit reveal).
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl Clone for $name {
            fn clone(&self) -> Self {
                Self::new(self.expose())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}

secret_type!(
    /// An OAuth access token.
    AccessToken
);
secret_type!(
    /// An OAuth refresh token. Lives in the OS keychain only.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token (a JWT).
    IdToken
);
secret_type!(
    /// An OAuth client secret.
    ClientSecret
);

/// A client secret typed into a form arrives as a string and is wrapped at once.
impl<'de> serde::Deserialize<'de> for ClientSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}
secret_type!(
    /// Any other secret string (keychain payloads).
    SecretText
);

/// The tokens one grant holds at a time.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<RefreshToken>,
    /// The ID token, when the provider issued one.
    pub id_token: Option<IdToken>,
}

/// An access token handed out, with the expiry it was handed out with (read in the same
/// transaction, so it is this token's and not a newer one's).
#[derive(Debug, Clone)]
pub struct HandOut {
    /// The token.
    pub token: AccessToken,
    /// When it expires; `None` when the provider did not say.
    pub expires_at: Option<crate::model::UnixMillis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let t = AccessToken::new("planted-secret-value");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        assert_eq!(format!("{t}"), "[redacted]");
        let set = TokenSet {
            access_token: t.clone(),
            refresh_token: Some(RefreshToken::new("planted-refresh")),
            id_token: None,
        };
        let dbg = format!("{set:?}");
        assert!(!dbg.contains("planted"), "{dbg}");
        assert_eq!(t.expose(), "planted-secret-value");
    }
}
