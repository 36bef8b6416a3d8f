//! Commands that act: refresh, copy or reveal a token, revoke, delete, introspect, register a
//! provider app, export the review, open a provider link. Copy and reveal are the only ways a
//! token reaches the user, and each writes a `revealed` event first. Refresh, and copy or reveal
//! when they must refresh first, are operations the window can cancel (see `operations`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::deadline::Deadline;
use grantkeeper_core::grants::{Disclosure, RevokeOutcome};
use grantkeeper_core::model::{Connection, ConnectionId, ProviderApp, TenantId};
use grantkeeper_core::oauth::browser;
use grantkeeper_core::provider_app::{read_key_files, ProviderAppSpec};
use grantkeeper_core::secret::AccessToken;
use grantkeeper_core::Vault;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use ts_rs::TS;

use crate::operations;
use crate::state::{with_vault, AppState, CmdResult, CommandError};

/// How long a copied token stays on the clipboard.
const CLIPBOARD_CLEAR_AFTER: Duration = Duration::from_secs(30);

pub(crate) fn app_actor(hint: &str) -> Actor {
    Actor::new(ActorKind::App).with_hint(Some(hint.to_owned()))
}

/// Refreshes a connection's tokens now; returns the updated connection (never the token).
/// `operation` is the window's id for it: `cancel_refresh` with it ends the wait.
#[tauri::command]
pub async fn refresh_connection(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    operation: String,
) -> CmdResult<Connection> {
    let (late_tenant, late_connection, late_op) =
        (tenant.clone(), connection.clone(), operation.clone());
    operations::run(
        app,
        operation,
        move |v, deadline| {
            let scope = v.tenant(&tenant)?;
            scope.refresh(&connection, deadline, &app_actor("refresh now"))?;
            Ok(scope.connection(&connection)?)
        },
        move |app, result| {
            if result.is_ok() {
                operations::refreshed_late(app, late_op, late_tenant, late_connection, "");
            }
        },
    )
    .await
}

/// Discloses the access token (recorded), refreshing it first, when needed, within `deadline`:
/// a Cancel while the refresh runs means nothing is disclosed. `refreshed` is set once a
/// refresh stored new tokens.
fn disclose(
    v: &Vault,
    tenant: &TenantId,
    connection: &ConnectionId,
    how: Disclosure,
    deadline: &Deadline,
    refreshed: &AtomicBool,
) -> CmdResult<(AccessToken, Connection)> {
    let hint = match how {
        Disclosure::Copy => "copied to the clipboard",
        Disclosure::Reveal => "revealed in the window",
    };
    let actor = app_actor(hint);
    let scope = v.tenant(tenant)?;
    let before = scope.connection(connection)?.last_refresh_at;
    let token = scope.disclose_access_token(connection, how, deadline, &actor);
    let after = scope.connection(connection)?;
    if after.last_refresh_at != before {
        refreshed.store(true, Ordering::SeqCst);
    }
    Ok((token?.token, after))
}

/// Runs a copy or reveal as an operation the window can cancel while it refreshes.
async fn disclose_cancellable(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    operation: String,
    how: Disclosure,
) -> CmdResult<(AccessToken, Connection)> {
    let refreshed = Arc::new(AtomicBool::new(false));
    let seen = refreshed.clone();
    let (late_tenant, late_connection, late_op) =
        (tenant.clone(), connection.clone(), operation.clone());
    operations::run(
        app,
        operation,
        move |v, deadline| disclose(v, &tenant, &connection, how, deadline, &refreshed),
        move |app, _| {
            if seen.load(Ordering::SeqCst) {
                let not_done = match how {
                    Disclosure::Copy => " Nothing was copied.",
                    Disclosure::Reveal => " Nothing was shown.",
                };
                operations::refreshed_late(app, late_op, late_tenant, late_connection, not_done);
            }
        },
    )
    .await
}

/// What a copy did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Copied {
    /// Seconds until the clipboard is cleared (if it still holds the token).
    pub clear_after_secs: u32,
}

/// Copies a valid access token to the clipboard (recorded); the window never receives it.
/// The clipboard is cleared after 30 seconds unless something else was copied meanwhile.
/// When the token must be refreshed first, `cancel_refresh` with `operation` ends the wait.
#[tauri::command]
pub async fn copy_access_token(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    operation: String,
) -> CmdResult<Copied> {
    let handle = app.clone();
    let (token, _) =
        disclose_cancellable(app, tenant, connection, operation, Disclosure::Copy).await?;
    let fingerprint = crate::state::vault(&handle)?.fingerprint(token.expose());
    let unusable =
        |e: arboard::Error| CommandError::new(format!("the clipboard cannot be used: {e}"));
    {
        let state = handle.state::<AppState>();
        let mut clip = state.clipboard.lock().unwrap_or_else(|p| p.into_inner());
        let board = match clip.as_mut() {
            Some(board) => board,
            None => clip.insert(arboard::Clipboard::new().map_err(unusable)?),
        };
        board.set_text(token.expose()).map_err(unusable)?;
    }
    drop(token);
    // Clear it later if it still holds this token (compared by fingerprint, so the token itself
    // is not kept meanwhile).
    std::thread::spawn(move || {
        std::thread::sleep(CLIPBOARD_CLEAR_AFTER);
        let Ok(v) = crate::state::vault(&handle) else {
            return;
        };
        let state = handle.state::<AppState>();
        let mut clip = state.clipboard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(board) = clip.as_mut() {
            if board
                .get_text()
                .is_ok_and(|t| v.fingerprint(&t) == fingerprint)
            {
                let _ = board.clear();
            }
        }
    });
    Ok(Copied {
        clear_after_secs: u32::try_from(CLIPBOARD_CLEAR_AFTER.as_secs()).unwrap_or(30),
    })
}

/// A token the user asked to see.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RevealedToken {
    /// The access token.
    pub token: String,
    /// When it expires (Unix milliseconds).
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
}

/// Shows a valid access token (recorded as `revealed`). When the token must be refreshed
/// first, `cancel_refresh` with `operation` ends the wait.
#[tauri::command]
pub async fn reveal_access_token(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    operation: String,
) -> CmdResult<RevealedToken> {
    let (token, c) =
        disclose_cancellable(app, tenant, connection, operation, Disclosure::Reveal).await?;
    Ok(RevealedToken {
        token: token.expose().to_owned(),
        expires_at: c.access_expires_at,
    })
}

/// Revokes a grant at the provider and forgets its tokens.
#[tauri::command]
pub async fn revoke_connection(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
) -> CmdResult<RevokeOutcome> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?
            .revoke(&connection, &app_actor("revoke"))?)
    })
    .await
}

/// One grant of a bulk revoke.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct GrantRef {
    /// The tenant.
    pub tenant: TenantId,
    /// The connection.
    pub connection: ConnectionId,
}

/// The result of revoking one grant of a bulk revoke.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BulkRevokeResult {
    /// The connection.
    pub connection: ConnectionId,
    /// What happened, when it worked.
    pub outcome: Option<RevokeOutcome>,
    /// Why it failed.
    pub error: Option<CommandError>,
}

/// Revokes several grants, one after another; one failure does not stop the others.
#[tauri::command]
pub async fn revoke_many(
    app: AppHandle,
    grants: Vec<GrantRef>,
) -> CmdResult<Vec<BulkRevokeResult>> {
    with_vault(app, move |v| {
        let actor = app_actor("bulk revoke (review)");
        Ok(grants
            .into_iter()
            .map(|g| {
                let result = v
                    .tenant(&g.tenant)
                    .and_then(|s| s.revoke(&g.connection, &actor));
                match result {
                    Ok(outcome) => BulkRevokeResult {
                        connection: g.connection,
                        outcome: Some(outcome),
                        error: None,
                    },
                    Err(e) => BulkRevokeResult {
                        connection: g.connection,
                        outcome: None,
                        error: Some(e.into()),
                    },
                }
            })
            .collect())
    })
    .await
}

/// Deletes a connection, revoking it at the provider first when `revoke` is set; returns what
/// the revocation achieved (`null` when none was asked or the grant was revoked already).
#[tauri::command]
pub async fn delete_connection(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    revoke: bool,
) -> CmdResult<Option<RevokeOutcome>> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?
            .revoke_and_delete(&connection, revoke, &app_actor("delete"))?)
    })
    .await
}

/// Asks the provider about the cached access token (RFC 7662); the answer has no token.
#[tauri::command]
pub async fn introspect_connection(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
) -> CmdResult<serde_json::Map<String, serde_json::Value>> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?.introspect(&connection)?)
    })
    .await
}

/// Registers a provider app (discovery needs the network).
#[tauri::command]
pub async fn add_provider_app(
    app: AppHandle,
    tenant: TenantId,
    mut spec: ProviderAppSpec,
    files: Option<KeyFiles>,
) -> CmdResult<ProviderApp> {
    let files = files.unwrap_or_default();
    let (key, cert) = read_key_files(
        files.key_file.as_deref().map(std::path::Path::new),
        files.cert_file.as_deref().map(std::path::Path::new),
    )?;
    spec.client_key_pem = key;
    spec.client_cert_pem = cert;
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?
            .register_provider_app(spec, &app_actor("connect wizard"))?)
    })
    .await
}

/// Files of the user's own a new provider app authenticates with: a `private_key_jwt` key, or
/// a `tls_client_auth` certificate (and its key when apart). Their keys move to the keychain.
#[derive(Debug, Default, Deserialize, TS)]
#[ts(export)]
pub struct KeyFiles {
    /// A PEM private key file (P-256 PKCS #8, or RSA).
    pub key_file: Option<String>,
    /// A PEM client certificate file.
    pub cert_file: Option<String>,
}

/// Opens a provider link in the system browser after checking it: HTTPS (plain HTTP only on
/// 127.0.0.1), no user name or password in it, and its host is one this connection's provider
/// uses (an endpoint or a URL in the connection's metadata, like Salesforce's `instance_url`).
#[tauri::command]
pub async fn open_provider_link(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    url: String,
) -> CmdResult<()> {
    with_vault(app, move |v| {
        let scope = v.tenant(&tenant)?;
        let c = scope.connection(&connection)?;
        let provider = scope.provider_app(c.provider_app_id.as_str())?;
        let e = &provider.endpoints;
        let known = [&e.issuer, &e.authorization, &e.token, &e.revocation]
            .into_iter()
            .flatten()
            .chain(c.metadata.values());
        let link = checked_link(&url, known)?;
        browser::open(link.as_str())?;
        Ok(())
    })
    .await
}

/// `url` if it may be opened as a link of a provider known by `known` URLs: HTTPS (plain HTTP
/// only on 127.0.0.1), no credentials, and a host one of the known URLs has.
fn checked_link<'a>(url: &str, known: impl IntoIterator<Item = &'a String>) -> CmdResult<url::Url> {
    let link =
        url::Url::parse(url).map_err(|_| CommandError::new("this link is not a valid URL"))?;
    let loopback = link.host_str() == Some("127.0.0.1");
    let scheme_ok = link.scheme() == "https" || (loopback && link.scheme() == "http");
    if !scheme_ok || !link.username().is_empty() || link.password().is_some() {
        return Err(CommandError::new(
            "only HTTPS links without credentials are opened",
        ));
    }
    let host = link.host_str().unwrap_or_default();
    let ours = known
        .into_iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .any(|u| u.host_str() == Some(host));
    if !ours {
        return Err(CommandError::new(
            "this link does not point at the connection's provider; it was not opened",
        ));
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::checked_link;

    #[test]
    fn provider_links_are_checked_before_opening() {
        let known = [
            "https://login.salesforce.com/services/oauth2/token".to_owned(),
            "https://acme.my.salesforce.com".to_owned(),
            "not a url".to_owned(),
        ];
        assert!(checked_link("https://acme.my.salesforce.com/lightning", &known).is_ok());
        assert!(checked_link("https://login.salesforce.com/", &known).is_ok());
        for bad in [
            "http://acme.my.salesforce.com/",
            "https://evil.example/",
            "https://acme.my.salesforce.com.evil.example/",
            "https://user:pw@acme.my.salesforce.com/",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(checked_link(bad, &known).is_err(), "{bad} must be refused");
        }
        let local = ["http://127.0.0.1:47631".to_owned()];
        assert!(checked_link("http://127.0.0.1:47631/authorize", &local).is_ok());
    }
}
