//! Where a connection's API lives and what every request to it needs: the catalog's `api` table
//! (a base URL template and required headers), filled from the grant's metadata (Salesforce's
//! `instance_url`, QuickBooks' `realmId`) and values the user gives, for the proxy and the git
//! credential helper.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A preset's API: where requests go and the headers they need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApiSpec {
    /// The API base URL; `{name}` placeholders are filled from values given with the proxy
    /// (`--var name=value`), else the grant's metadata, else `defaults`.
    #[serde(default)]
    pub base: Option<String>,
    /// Headers every request needs besides `Authorization` (Xero's `xero-tenant-id`); values may
    /// hold placeholders like `base`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Values for placeholders that neither the metadata nor the user gives.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Git hosts whose HTTPS remotes take this provider's access tokens (`github.com`).
    #[serde(default)]
    pub git_hosts: Vec<String>,
    /// The user name git sends with the token (GitHub: `x-access-token`; GitLab: `oauth2`).
    #[serde(default)]
    pub git_username: Option<String>,
    /// Where the base and headers are documented.
    #[serde(default)]
    pub source: Option<String>,
}

/// A connection's API, resolved: an absolute base URL and the headers to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTarget {
    /// The base URL (HTTPS, or plain HTTP to a loopback address); no query or fragment.
    pub base: url::Url,
    /// Headers to set on every request, name → value.
    pub headers: Vec<(String, String)>,
}

/// Why a connection's API cannot be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// The preset names no API base and none was given.
    #[error("Grantkeeper does not know this provider's API address: give it with --api-base URL")]
    NoBase,
    /// A placeholder has no value in the grant's metadata nor among the given values.
    #[error("the API address needs a value for '{0}', which this connection's metadata does not hold: give it with --var {0}=VALUE")]
    MissingValue(String),
    /// A value would change more than its part of the URL.
    #[error("'{value}' is not a valid value for '{name}' in the API address")]
    BadValue {
        /// The placeholder.
        name: String,
        /// The value.
        value: String,
    },
    /// The resulting base is not an HTTPS URL (or plain HTTP to a loopback address).
    #[error("the API address '{0}' must be an https:// URL (plain http only to 127.0.0.1, ::1 or localhost), without query or fragment")]
    BadBase(String),
}

impl ApiSpec {
    /// The API of a grant: `base_override` (a generic provider's `--api-base`) or the preset's
    /// base, its placeholders and the headers' filled from `values` (given by the user), else
    /// from the grant's `metadata`, else from the preset's `defaults`.
    pub fn resolve(
        &self,
        base_override: Option<&str>,
        metadata: &BTreeMap<String, String>,
        values: &BTreeMap<String, String>,
    ) -> Result<ApiTarget, ApiError> {
        let lookup = |name: &str| {
            values
                .get(name)
                .or_else(|| metadata.get(name))
                .or_else(|| self.defaults.get(name))
                .cloned()
                .ok_or_else(|| ApiError::MissingValue(name.to_owned()))
        };
        let base = match base_override {
            Some(b) => b.to_owned(),
            None => fill(self.base.as_deref().ok_or(ApiError::NoBase)?, &lookup, true)?,
        };
        let base = check_base(&base)?;
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill(v, &lookup, false)?)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(ApiTarget { base, headers })
    }

    /// Whether git remotes on `host` take this provider's tokens.
    pub fn serves_git_host(&self, host: &str) -> bool {
        self.git_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// `template` with each `{name}` replaced. A value at the very start of a base may be a whole
/// origin (`https://acme.my.salesforce.com`); any other value is one identifier (letters,
/// digits, `.`, `-`, `_`), so it cannot add a path, a query or another host.
fn fill(
    template: &str,
    lookup: &dyn Fn(&str) -> Result<String, ApiError>,
    is_base: bool,
) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| ApiError::BadBase(template.to_owned()))?;
        let name = &rest[open + 1..close];
        let value = lookup(name)?;
        let origin_ok = is_base && out.is_empty() && is_origin(&value);
        let ident = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !(origin_ok || ident) || value == ".." || value == "." {
            return Err(ApiError::BadValue {
                name: name.to_owned(),
                value,
            });
        }
        out.push_str(value.trim_end_matches('/'));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `https://host[:port]` with nothing after the host but an optional `/`.
fn is_origin(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host_str().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.path() == "/"
            && u.query().is_none()
            && u.fragment().is_none()
            && !value.trim_end_matches('/').ends_with(':')
    })
}

fn check_base(base: &str) -> Result<url::Url, ApiError> {
    let bad = || ApiError::BadBase(base.to_owned());
    let (url, _) = crate::http::check(base).map_err(|_| bad())?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
