//! A small client for an OpenBao (or HashiCorp Vault) server: KV v2 reads and writes with
//! check-and-set, custom metadata, lists and deletes; token lookup and renewal; token and
//! AppRole logins. It goes through the core's hardened HTTP client ([`crate::http`]): HTTPS,
//! or plain HTTP on loopback only. Errors say what to do and never carry the token.

use serde_json::{json, Map, Value};

use crate::http::{HttpClient, HttpError, HttpResponse};
use crate::secret::SecretText;

/// Why a request to the team vault failed. Each message says what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BaoError {
    /// The login may not read or write that path (its policy does not include it).
    #[error("not shared with you: your team vault login may not use {path}; ask a team admin to add it to your policy")]
    NotShared {
        /// The path refused.
        path: String,
    },
    /// The server cannot be reached, or is sealed.
    #[error("the team vault is unreachable ({detail}); tokens cached here stay usable until they expire. Try again when it is back")]
    Unreachable {
        /// What failed.
        detail: String,
    },
    /// The OpenBao token is no longer valid (expired or revoked).
    #[error("your team vault login has ended: log in again: grantkeeper team login")]
    LoginEnded,
    /// A check-and-set write found another version than the one it was based on.
    #[error("the team vault's record changed while this write was prepared; try again")]
    Conflict,
    /// The server refused the request for another reason.
    #[error("the team vault refused the request: {0}")]
    Refused(String),
    /// The server's answer is not what the API documents.
    #[error("the team vault sent an answer Grantkeeper cannot read: {0}")]
    Malformed(String),
}

/// An OpenBao token (`X-Vault-Token`).
pub type BaoToken = SecretText;

/// One KV v2 secret as read: its data and the version it had.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The secret's data (`data.data`).
    pub data: Map<String, Value>,
    /// Its version, for the next check-and-set.
    pub version: u64,
}

/// What `auth/token/lookup-self` says about the token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Its display name (`token-alice`, `approle`).
    pub display_name: String,
    /// Its policies.
    pub policies: Vec<String>,
    /// Seconds it has left (0: it does not expire).
    pub ttl_secs: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
}

/// A client for one server and one KV v2 mount, logged in with one token.
#[derive(Clone)]
pub struct BaoClient {
    http: HttpClient,
    base: String,
    mount: String,
    token: BaoToken,
}

impl std::fmt::Debug for BaoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaoClient")
            .field("base", &self.base)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl BaoClient {
    /// A client for `url` (scheme, host, port) and the KV v2 mount `mount`.
    pub fn new(
        http: HttpClient,
        url: &str,
        mount: &str,
        token: BaoToken,
    ) -> Result<Self, BaoError> {
        let base = url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base)
            .map_err(|_| BaoError::Refused(format!("'{url}' is not a URL of a team vault")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" {
            return Err(BaoError::Refused(format!(
                "'{url}' is not a team vault's address: give scheme, host and port only"
            )));
        }
        let mount = mount_name(mount)?;
        Ok(Self {
            http,
            base,
            mount: mount.to_owned(),
            token,
        })
    }

    /// Logs in with AppRole (`auth/approle/login`) and returns a client holding the new token.
    pub fn approle_login(
        http: HttpClient,
        url: &str,
        mount: &str,
        role_id: &str,
        secret_id: &SecretText,
    ) -> Result<Self, BaoError> {
        let anonymous = Self::new(http, url, mount, SecretText::new(""))?;
        let body = json!({ "role_id": role_id, "secret_id": secret_id.expose() });
        let answer = anonymous.call("POST", "auth/approle/login", Some(&body), false)?;
        let token = answer
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| BaoError::Malformed("an AppRole login without a client token".into()))?;
        Ok(Self {
            token: SecretText::new(token),
            ..anonymous
        })
    }

    /// Asks the OIDC auth method mounted at `auth_mount` for the sign-in URL of its provider
    /// (`auth/<auth_mount>/oidc/auth_url`), sending the member's browser back to `redirect_uri`
    /// (the role's `allowed_redirect_uris` must allow it; a loopback one on any port). Returns
    /// the URL and the `state` its redirect carries back.
    pub fn oidc_auth_url(
        &self,
        auth_mount: &str,
        role: Option<&str>,
        redirect_uri: &str,
    ) -> Result<(String, String), BaoError> {
        let auth_mount = mount_name(auth_mount)?;
        let mut body = json!({ "redirect_uri": redirect_uri });
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        let v = self.call(
            "POST",
            &format!("auth/{auth_mount}/oidc/auth_url"),
            Some(&body),
            false,
        )?;
        let url = v
            .pointer("/data/auth_url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                BaoError::Refused(format!(
                    "the OIDC role gave no sign-in URL: ask a team admin to allow {redirect_uri} in its allowed_redirect_uris"
                ))
            })?;
        let state = url::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "state")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| BaoError::Malformed("an OIDC sign-in URL without a state".into()))?;
        Ok((url.to_owned(), state))
    }

    /// Finishes an OIDC login with the redirect's `state` and `code`
    /// (`auth/<auth_mount>/oidc/callback`); returns a client holding the new token.
    pub fn oidc_callback(
        &self,
        auth_mount: &str,
        state: &str,
        code: &SecretText,
    ) -> Result<Self, BaoError> {
        let auth_mount = mount_name(auth_mount)?;
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", state)
            .append_pair("code", code.expose())
            .finish();
        let answer = self
            .call(
                "GET",
                &format!("auth/{auth_mount}/oidc/callback?{query}"),
                None,
                false,
            )
            .map_err(|e| match e {
                // The path carries the code: never repeat it.
                BaoError::Refused(m) => BaoError::Refused(format!(
                    "the OIDC login was refused: {}",
                    m.split('?').next().unwrap_or_default()
                )),
                other => other,
            })?;
        let token = answer
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| BaoError::Malformed("an OIDC login without a client token".into()))?;
        Ok(Self {
            token: SecretText::new(token),
            ..self.clone()
        })
    }

    /// The token this client uses (to keep in the keychain).
    pub fn token(&self) -> &BaoToken {
        &self.token
    }

    /// The server's address.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The KV v2 mount.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The same client, its requests also cut off at `until`.
    pub fn bounded_by(&self, until: std::time::Instant) -> Self {
        Self {
            http: self.http.bounded_by(until),
            ..self.clone()
        }
    }

    /// `auth/token/lookup-self`: checks the login and says what it may do.
    pub fn lookup_self(&self) -> Result<TokenInfo, BaoError> {
        let v = self.call("GET", "auth/token/lookup-self", None, false)?;
        let d = v
            .get("data")
            .ok_or_else(|| BaoError::Malformed("lookup-self without data".into()))?;
        Ok(TokenInfo {
            display_name: d["display_name"].as_str().unwrap_or_default().to_owned(),
            policies: d["policies"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            ttl_secs: d["ttl"].as_u64().unwrap_or(0),
            renewable: d["renewable"].as_bool().unwrap_or(false),
        })
    }

    /// `auth/token/renew-self`: extends the login; returns the seconds it now has.
    pub fn renew_self(&self) -> Result<u64, BaoError> {
        let v = self.call("POST", "auth/token/renew-self", Some(&json!({})), false)?;
        Ok(v.pointer("/auth/lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// Reads a KV v2 secret; `None` when it does not exist (or was deleted).
    pub fn read(&self, path: &str) -> Result<Option<Versioned>, BaoError> {
        let Some(v) = self.call_opt("GET", &self.kv("data", path), None)? else {
            return Ok(None);
        };
        let version = v
            .pointer("/data/metadata/version")
            .and_then(Value::as_u64)
            .ok_or_else(|| BaoError::Malformed("a secret without a version".into()))?;
        match v.pointer("/data/data") {
            Some(Value::Object(data)) => Ok(Some(Versioned {
                data: data.clone(),
                version,
            })),
            Some(Value::Null) => Ok(None),
            _ => Err(BaoError::Malformed("a secret without data".into())),
        }
    }

    /// Writes a KV v2 secret if its current version is `cas` (0: only if it does not exist);
    /// returns the new version, or [`BaoError::Conflict`].
    pub fn write_cas(
        &self,
        path: &str,
        data: &Map<String, Value>,
        cas: u64,
    ) -> Result<u64, BaoError> {
        let body = json!({ "options": { "cas": cas }, "data": data });
        let v = self.call("POST", &self.kv("data", path), Some(&body), true)?;
        v.pointer("/data/version")
            .and_then(Value::as_u64)
            .ok_or_else(|| BaoError::Malformed("a write without a version".into()))
    }

    /// Replaces a secret's custom metadata (non-secret, readable without its data).
    pub fn write_metadata(&self, path: &str, custom: &Map<String, Value>) -> Result<(), BaoError> {
        let body = json!({ "custom_metadata": custom });
        self.call("POST", &self.kv("metadata", path), Some(&body), false)?;
        Ok(())
    }

    /// A secret's custom metadata; `None` when it does not exist.
    pub fn read_metadata(&self, path: &str) -> Result<Option<Map<String, Value>>, BaoError> {
        let Some(v) = self.call_opt("GET", &self.kv("metadata", path), None)? else {
            return Ok(None);
        };
        Ok(Some(match v.pointer("/data/custom_metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }))
    }

    /// The keys under a folder (sub-folders end with `/`); empty when there are none.
    pub fn list(&self, folder: &str) -> Result<Vec<String>, BaoError> {
        let path = format!("{}?list=true", self.kv("metadata", folder));
        let Some(v) = self.call_opt("GET", &path, None)? else {
            return Ok(Vec::new());
        };
        Ok(v.pointer("/data/keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every key under a folder with its custom metadata, in one request (OpenBao's
    /// `detailed-metadata` list; empty where the server has no such endpoint or nothing there).
    pub fn list_detailed(&self, folder: &str) -> Result<Map<String, Value>, BaoError> {
        let path = format!("{}?list=true", self.kv("detailed-metadata", folder));
        let Some(v) = self.call_opt("GET", &path, None)? else {
            return Ok(Map::new());
        };
        let Some(Value::Object(info)) = v.pointer("/data/key_info") else {
            return Ok(Map::new());
        };
        Ok(info
            .iter()
            .map(|(k, i)| {
                (
                    k.clone(),
                    i.get("custom_metadata").cloned().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Deletes a secret with all its versions and metadata.
    pub fn delete(&self, path: &str) -> Result<(), BaoError> {
        self.call_opt("DELETE", &self.kv("metadata", path), Some(&json!({})))?;
        Ok(())
    }

    fn kv(&self, kind: &str, path: &str) -> String {
        format!("{}/{kind}/{}", self.mount, path.trim_matches('/'))
    }

    /// A request whose 404 means "nothing there".
    fn call_opt(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, BaoError> {
        match self.call(method, path, body, false) {
            Err(BaoError::Refused(m)) if m.starts_with("404") => Ok(None),
            other => other.map(Some),
        }
    }

    /// One request to `/v1/<path>`, its answer sorted into [`BaoError`]s.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        cas: bool,
    ) -> Result<Value, BaoError> {
        let url = format!("{}/v1/{path}", self.base);
        let mut headers = vec![("Accept", "application/json")];
        if !self.token.expose().is_empty() {
            headers.push(("X-Vault-Token", self.token.expose()));
        }
        let sent = match (method, body) {
            ("GET", _) => self.http.get(&url, &headers),
            (m, Some(b)) => self.http.send_json(m, &url, &headers, b),
            (m, None) => self.http.send_json(m, &url, &headers, &json!({})),
        };
        let r = sent.map_err(unreachable)?;
        let errors = error_text(&r);
        match r.status {
            200..=299 if r.body.is_empty() => Ok(Value::Null),
            200..=299 => serde_json::from_slice(&r.body)
                .map_err(|e| BaoError::Malformed(format!("{path}: {e}"))),
            400 if cas && errors.contains("check-and-set") => Err(BaoError::Conflict),
            403 if path.starts_with("auth/token/") => Err(BaoError::LoginEnded),
            403 if self.token.expose().is_empty() => {
                Err(BaoError::Refused(format!("403 {errors}")))
            }
            403 => match self.lookup_self() {
                Ok(_) => Err(BaoError::NotShared {
                    path: path.split('?').next().unwrap_or(path).to_owned(),
                }),
                Err(e) => Err(e),
            },
            503 if errors.contains("sealed") => Err(BaoError::Unreachable {
                detail: "it is sealed".into(),
            }),
            502..=504 => Err(BaoError::Unreachable {
                detail: format!("HTTP {}", r.status),
            }),
            s => Err(BaoError::Refused(format!("{s} {errors}"))),
        }
    }
}

/// A mount's name, checked: letters, digits, `-` and `_`.
fn mount_name(mount: &str) -> Result<&str, BaoError> {
    let mount = mount.trim_matches('/');
    if mount.is_empty()
        || !mount
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(BaoError::Refused(format!(
            "'{mount}' is not a mount name: use letters, digits, - and _"
        )));
    }
    Ok(mount)
}

fn unreachable(e: HttpError) -> BaoError {
    match e {
        HttpError::BadUrl(_) | HttpError::Insecure(_) => BaoError::Refused(e.to_string()),
        other => BaoError::Unreachable {
            detail: other.to_string(),
        },
    }
}

/// The `errors` of an error answer, joined (they name paths and reasons, never values).
fn error_text(r: &HttpResponse) -> String {
    serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}
