//! Provider apps: registered, listed, found, their client secrets, and the MACs over their settings.

use rusqlite::{params, OptionalExtension};
use serde_json::json;

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::crypto::Aad;
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::*;
use crate::secret::{ClientSecret, SecretText};

use crate::store::{NewProviderApp, ProviderAppStore, SecretChange};

use super::local::Sealed;
use super::{from_json, to_json, unless_taken, LocalStore};

impl LocalStore<'_> {
    /// The MAC over a provider app's settings: everything that decides where its grants' secrets
    /// go and how they are asked for.
    pub(super) fn app_mac(&self, app: &ProviderApp) -> Vec<u8> {
        self.key.mac(
            &Aad::settings(
                &self.vault.id,
                self.tenant.id.as_str(),
                "provider_apps",
                app.id.as_str(),
            ),
            &app_settings(app),
        )
    }

    /// The keychain entry of a provider app's private key.
    fn client_key_entry(&self, app: &ProviderAppId) -> EntryName {
        EntryName::client_key(&self.vault.id, self.tenant.id.as_str(), app.as_str())
    }

    /// The MAC over a connection's link to its provider app.
    pub(super) fn link_mac(&self, connection: &str, app: &str) -> Vec<u8> {
        self.key.mac(
            &Aad::settings(
                &self.vault.id,
                self.tenant.id.as_str(),
                "connections",
                connection,
            ),
            &[app.as_bytes()],
        )
    }

    /// Refuses a record changed outside Grantkeeper: records a `config_changed` event saying
    /// what was refused, and returns the error to report.
    pub(super) fn refuse_outside_change(&self, what: String) -> Error {
        let message = format!(
            "{what} was changed outside Grantkeeper (its authentication does not match), so nothing was sent. Check the vault folder for other programs writing to it, then register the provider app again"
        );
        tracing::warn!(tenant = %self.tenant.id, what = %what, "refused settings changed outside Grantkeeper");
        let recorded = self.vault.write(|tx| {
            audit::append(
                tx,
                &NewEvent::new(
                    EventKind::ConfigChanged,
                    &Actor::new(audit::ActorKind::Background),
                )
                .tenant(&self.tenant.id)
                .detail(json!({ "change": "outside_change_refused", "what": what })),
            )?;
            Ok(())
        });
        recorded.err().unwrap_or(Error::Tampered(message))
    }

    /// The provider app a connection is linked to, both checked: the link's and the app's
    /// settings' MACs.
    pub(super) fn linked_app(&self, connection: &Connection) -> Result<ProviderApp> {
        let mac: Option<Vec<u8>> = self
            .vault
            .conn()
            .prepare_cached("SELECT link_mac FROM connections WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(
                params![connection.id.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let app = connection.provider_app_id.as_str();
        let expected = self.link_mac(connection.id.as_str(), app);
        if mac.as_deref() != Some(expected.as_slice()) {
            return Err(self.refuse_outside_change(format!(
                "the link of connection '{}/{}' to its provider app",
                self.tenant.slug, connection.name
            )));
        }
        self.provider_app(app)
    }
}

impl ProviderAppStore for LocalStore<'_> {
    fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp> {
        let id = ProviderAppId::generate();
        let secret = app
            .client_secret
            .as_ref()
            .map(|s| self.seal(Sealed::ClientSecret, id.as_str(), s.expose()));
        let record = ProviderApp {
            id,
            tenant_id: self.tenant.id.clone(),
            name: app.name,
            preset: app.preset,
            endpoints: app.endpoints,
            client_id: app.client_id,
            has_client_secret: secret.is_some(),
            client_auth: app.client_auth,
            dpop: app.dpop,
            redirect_mode: app.redirect_mode,
            redirect_port: app.redirect_port,
            relay_url: app.relay_url,
            default_scopes: app.default_scopes,
            created_at: now_ms(),
        };
        // The key goes to the keychain first; it leaves again when the row cannot be written.
        let key_entry = self.client_key_entry(&record.id);
        if let Some(key) = &app.client_key {
            self.vault.keychain.set(&key_entry, key)?;
        }
        let written = self.vault.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO provider_apps (id, tenant_id, name, preset, endpoints, client_id, client_secret,
                     redirect_mode, redirect_port, relay_url, default_scopes, created_at, settings_mac,
                     client_auth, dpop)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    record.id.as_str(),
                    self.tenant.id.as_str(),
                    record.name,
                    record.preset,
                    to_json(&record.endpoints),
                    record.client_id,
                    secret,
                    to_json(&record.redirect_mode),
                    record.redirect_port,
                    record.relay_url,
                    to_json(&record.default_scopes),
                    record.created_at,
                    self.app_mac(&record),
                    record.client_auth.map(|a| to_json(&a)),
                    record.dpop,
                ],
            );
            unless_taken(inserted, "provider app", &record.name)?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::ConfigChanged, actor)
                    .tenant(&self.tenant.id)
                    .detail(json!({ "change": "provider_app_added", "name": record.name, "preset": record.preset })),
            )?;
            Ok(())
        });
        if let Err(e) = written {
            if app.client_key.is_some() {
                if let Err(k) = self.vault.keychain.delete(&key_entry) {
                    tracing::warn!(error = %k, "an unused provider-app key stays in the keychain");
                }
            }
            return Err(e);
        }
        Ok(record)
    }

    fn provider_apps(&self) -> Result<Vec<ProviderApp>> {
        let conn = self.vault.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PROVIDER_APP_COLUMNS} FROM provider_apps WHERE tenant_id = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map([self.tenant.id.as_str()], row_to_provider_app)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp> {
        let found = self
            .vault
            .conn()
            .query_row(
                &format!("SELECT {PROVIDER_APP_COLUMNS}, settings_mac FROM provider_apps WHERE tenant_id = ?1 AND (id = ?2 OR name = ?2)"),
                params![self.tenant.id.as_str(), id_or_name],
                |r| Ok((row_to_provider_app(r)?, r.get::<_, Option<Vec<u8>>>(14)?)),
            )
            .optional()?;
        let (app, mac) = found.ok_or_else(|| Error::NotFound {
            what: "provider app",
            name: format!("{}/{id_or_name}", self.tenant.slug),
        })?;
        let aad = Aad::settings(
            &self.vault.id,
            self.tenant.id.as_str(),
            "provider_apps",
            app.id.as_str(),
        );
        if !mac.is_some_and(|m| self.key.verify_mac(&aad, &app_settings(&app), &m)) {
            return Err(self.refuse_outside_change(format!(
                "the settings of provider app '{}/{}'",
                self.tenant.slug, app.name
            )));
        }
        Ok(app)
    }

    fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>> {
        let blob: Option<Option<Vec<u8>>> = self
            .vault
            .conn()
            .query_row(
                "SELECT client_secret FROM provider_apps WHERE id = ?1 AND tenant_id = ?2",
                params![app.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(blob) = blob else {
            return Err(Error::NotFound {
                what: "provider app",
                name: app.to_string(),
            });
        };
        blob.map(|b| {
            let text = self.open(Sealed::ClientSecret, app.as_str(), &b)?;
            Ok(ClientSecret::new(text.expose()))
        })
        .transpose()
    }

    fn client_key(&self, app: &ProviderAppId) -> Result<Option<SecretText>> {
        Ok(self.vault.keychain.get(&self.client_key_entry(app))?)
    }

    fn update_provider_app(
        &self,
        app: &ProviderApp,
        secret: SecretChange<'_>,
        event: NewEvent,
    ) -> Result<()> {
        let sealed = match secret {
            SecretChange::Set(s) => {
                Some(self.seal(Sealed::ClientSecret, app.id.as_str(), s.expose()))
            }
            SecretChange::Keep | SecretChange::Remove => None,
        };
        let mut record = app.clone();
        record.has_client_secret = match secret {
            SecretChange::Keep => app.has_client_secret,
            SecretChange::Set(_) => true,
            SecretChange::Remove => false,
        };
        self.vault.write(|tx| {
            let changed = tx.execute(
                "UPDATE provider_apps SET endpoints = ?3, client_id = ?4, redirect_mode = ?5,
                        redirect_port = ?6, relay_url = ?7, default_scopes = ?8, settings_mac = ?9,
                        client_secret = CASE ?10 WHEN 'keep' THEN client_secret WHEN 'set' THEN ?11 ELSE NULL END,
                        client_auth = ?12, dpop = ?13
                 WHERE id = ?1 AND tenant_id = ?2",
                params![
                    record.id.as_str(),
                    self.tenant.id.as_str(),
                    to_json(&record.endpoints),
                    record.client_id,
                    to_json(&record.redirect_mode),
                    record.redirect_port,
                    record.relay_url,
                    to_json(&record.default_scopes),
                    self.app_mac(&record),
                    match secret {
                        SecretChange::Keep => "keep",
                        SecretChange::Set(_) => "set",
                        SecretChange::Remove => "remove",
                    },
                    sealed,
                    record.client_auth.map(|a| to_json(&a)),
                    record.dpop,
                ],
            )?;
            if changed == 0 {
                return Err(Error::NotFound {
                    what: "provider app",
                    name: record.name.clone(),
                });
            }
            audit::append(tx, &event)?;
            Ok(())
        })
    }

    fn delete_provider_app(&self, id: &ProviderAppId, event: NewEvent) -> Result<()> {
        self.vault.write(|tx| {
            tx.execute(
                "DELETE FROM provider_apps WHERE id = ?1 AND tenant_id = ?2",
                params![id.as_str(), self.tenant.id.as_str()],
            )?;
            audit::append(tx, &event)?;
            Ok(())
        })?;
        Ok(self.vault.keychain.delete(&self.client_key_entry(id))?)
    }
}

/// The authenticated fields of a provider app (its id and tenant are in the MAC's binding). The
/// authentication method is one only when chosen, so apps registered before it keep their MAC.
pub(super) fn app_settings(app: &ProviderApp) -> Vec<Vec<u8>> {
    let mut fields = vec![
        app.name.as_bytes().to_vec(),
        to_json(&app.preset).into_bytes(),
        to_json(&app.endpoints).into_bytes(),
        app.client_id.as_bytes().to_vec(),
        vec![u8::from(app.has_client_secret)],
        to_json(&app.redirect_mode).into_bytes(),
        to_json(&app.redirect_port).into_bytes(),
        to_json(&app.relay_url).into_bytes(),
        to_json(&app.default_scopes).into_bytes(),
    ];
    if let Some(auth) = app.client_auth {
        fields.push(to_json(&auth).into_bytes());
    }
    if let Some(dpop) = app.dpop {
        fields.push(format!("dpop={dpop}").into_bytes());
    }
    fields
}

pub(super) const PROVIDER_APP_COLUMNS: &str =
    "id, tenant_id, name, preset, endpoints, client_id, client_secret IS NOT NULL,
    redirect_mode, redirect_port, relay_url, default_scopes, created_at, client_auth, dpop";

pub(super) fn row_to_provider_app(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProviderApp> {
    Ok(ProviderApp {
        id: ProviderAppId::from_string(r.get::<_, String>(0)?),
        tenant_id: TenantId::from_string(r.get::<_, String>(1)?),
        name: r.get(2)?,
        preset: r.get(3)?,
        endpoints: from_json(r, 4)?,
        client_id: r.get(5)?,
        has_client_secret: r.get(6)?,
        redirect_mode: from_json(r, 7)?,
        redirect_port: r.get(8)?,
        relay_url: r.get(9)?,
        default_scopes: from_json(r, 10)?,
        created_at: r.get(11)?,
        client_auth: match r.get::<_, Option<String>>(12)? {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    12,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?),
            None => None,
        },
        dpop: r.get(13)?,
    })
}
