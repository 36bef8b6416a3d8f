//! One module per command group.

pub mod audit;
pub mod connect;
pub mod provider;
pub mod tenant;
pub mod token;

use crate::exit::Failure;

/// Splits `<tenant>/<name>`.
pub fn split_ref(s: &str) -> Result<(&str, &str), Failure> {
    match s.split_once('/') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() && !n.contains('/') => Ok((t, n)),
        _ => Err(Failure::invalid(format!(
            "'{s}' is not of the form <tenant>/<name>"
        ))),
    }
}
