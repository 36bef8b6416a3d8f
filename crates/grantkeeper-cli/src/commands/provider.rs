//! `grantkeeper provider …`: the catalog, and a tenant's provider apps.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};

use clap::{Subcommand, ValueEnum};
use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::catalog::{Catalog, ClientAuth};
use grantkeeper_core::model::RedirectMode;
use grantkeeper_core::provider_app::{
    read_key_files, registration, EndpointSource, ProviderAppEdit, ProviderAppSpec,
    RegistrationDraft,
};
use grantkeeper_core::secret::ClientSecret;

use super::split_ref;
use crate::exit::Failure;
use crate::output::Output;

/// Redirect modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Redirect {
    /// http://127.0.0.1:<port>/callback
    Loopback,
    /// An HTTPS relay page that forwards to the app.
    Relay,
    /// Paste the redirect URL from the browser.
    Paste,
}

impl From<Redirect> for RedirectMode {
    fn from(r: Redirect) -> Self {
        match r {
            Redirect::Loopback => RedirectMode::Loopback,
            Redirect::Relay => RedirectMode::Relay,
            Redirect::Paste => RedirectMode::Paste,
        }
    }
}

/// Client authentication methods on the command line (OAuth's own names).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Auth {
    /// The client secret in HTTP Basic.
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    /// The client secret in the form body.
    #[value(name = "client_secret_post")]
    ClientSecretPost,
    /// A JWT signed with a key pair Grantkeeper generates (RFC 7523); register its public key
    /// (`provider jwk`) at the provider.
    #[value(name = "private_key_jwt")]
    PrivateKeyJwt,
    /// A public client: the client id alone.
    #[value(name = "none")]
    None,
    /// A client certificate from a CA the provider trusts (RFC 8705), given with --cert-file;
    /// its key moves into the keychain.
    #[value(name = "tls_client_auth")]
    TlsClientAuth,
    /// A self-signed client certificate Grantkeeper makes (RFC 8705); register it
    /// (`provider jwk` or `provider certificate`) at the provider.
    #[value(name = "self_signed_tls_client_auth")]
    SelfSignedTlsClientAuth,
}

/// A setting turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

impl From<Auth> for ClientAuth {
    fn from(a: Auth) -> Self {
        match a {
            Auth::ClientSecretBasic => ClientAuth::ClientSecretBasic,
            Auth::ClientSecretPost => ClientAuth::ClientSecretPost,
            Auth::PrivateKeyJwt => ClientAuth::PrivateKeyJwt,
            Auth::None => ClientAuth::None,
            Auth::TlsClientAuth => ClientAuth::TlsClientAuth,
            Auth::SelfSignedTlsClientAuth => ClientAuth::SelfSignedTlsClientAuth,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List the provider presets of the catalog.
    List,
    /// Register a provider app in a tenant: from a preset, an issuer URL (discovery), or
    /// explicit endpoints.
    Add(Box<AddArgs>),
    /// Print the public key (a JWK set) of a provider app registered with
    /// `--auth private_key_jwt`, to register at the provider.
    Jwk {
        /// `<tenant>/<app-name>`.
        target: String,
    },
    /// Print the client certificate (PEM, no key) of a provider app registered with
    /// `--auth tls_client_auth` or `self_signed_tls_client_auth`, to register at the provider.
    Certificate {
        /// `<tenant>/<app-name>`.
        target: String,
    },
    /// List a tenant's provider apps.
    Apps {
        /// Tenant slug.
        tenant: String,
    },
    /// Change a provider app's client, scopes or redirect. Its connections stay; after a new
    /// client id they need a new consent (`grantkeeper reconsent`).
    Edit(Box<EditArgs>),
    /// Delete a provider app. One that connections use is deleted only with them, each revoked
    /// at the provider first.
    Delete {
        /// `<tenant>/<app-name>`.
        target: String,
        /// Also revoke and delete the connections that use it.
        #[arg(long)]
        with_connections: bool,
        /// Confirm: deleting cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// `<tenant>/<app-name>`.
    pub target: String,
    /// A new OAuth client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read a new client secret from standard input (or a hidden prompt on a terminal).
    #[arg(long, conflicts_with = "no_client_secret")]
    pub client_secret: bool,
    /// Remove the client secret (a public client).
    #[arg(long)]
    pub no_client_secret: bool,
    /// New default scopes, space-separated.
    #[arg(long)]
    pub scopes: Option<String>,
    /// How the authorization response comes back.
    #[arg(long, value_enum)]
    pub redirect: Option<Redirect>,
    /// A fixed loopback port the registration requires.
    #[arg(long, conflicts_with = "no_port")]
    pub port: Option<u16>,
    /// No fixed port (an ephemeral one).
    #[arg(long)]
    pub no_port: bool,
    /// The HTTPS relay page registered as redirect URI.
    #[arg(long, conflicts_with = "no_relay_url")]
    pub relay_url: Option<String>,
    /// No relay page.
    #[arg(long)]
    pub no_relay_url: bool,
    /// Bind new sign-ins' tokens to a key of this device (DPoP): `on` or `off`.
    #[arg(long, value_enum)]
    pub dpop: Option<Switch>,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// `<tenant>/<app-name>`.
    pub target: String,
    /// A catalog preset (see `provider list`): its quirks, scopes and endpoints. With
    /// --issuer, the endpoints are discovered from the issuer instead (a self-hosted server;
    /// revocation then goes to the preset's revocation path on the issuer's host); with
    /// explicit endpoints, those are used.
    #[arg(long)]
    pub preset: Option<String>,
    /// Fill a preset placeholder, e.g. `--var domain=acme.my.salesforce.com`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Discover the endpoints from this issuer (OpenID Connect / RFC 8414).
    #[arg(long)]
    pub issuer: Option<String>,
    /// Authorization endpoint (explicit endpoints, with or without a preset).
    #[arg(long)]
    pub authorize_url: Option<String>,
    /// Token endpoint (explicit endpoints).
    #[arg(long)]
    pub token_url: Option<String>,
    /// Revocation endpoint (explicit endpoints), for whatever revocation style the preset uses.
    #[arg(long)]
    pub revoke_url: Option<String>,
    /// OAuth client id.
    #[arg(long)]
    pub client_id: String,
    /// Read the client secret from standard input (or a hidden prompt on a terminal).
    #[arg(long)]
    pub client_secret: bool,
    /// How the app authenticates at the provider; by default as the preset says, or a public
    /// client without a secret. `private_key_jwt` generates a key pair: the private key stays
    /// in the keychain, `provider jwk` prints the public key to register.
    #[arg(long, value_enum)]
    pub auth: Option<Auth>,
    /// With `--auth private_key_jwt`: your own key pair instead of a generated one, a PEM file
    /// with an unencrypted PKCS #8 P-256 private key. The key moves into the keychain; the file
    /// is not needed afterwards.
    #[arg(long, value_name = "PEM", requires = "auth")]
    pub key_file: Option<std::path::PathBuf>,
    /// With `--auth tls_client_auth`: the client certificate (and any intermediates) as PEM,
    /// with its unencrypted private key in the same file or in --key-file. The key moves into
    /// the keychain; the file is not needed afterwards.
    #[arg(long, value_name = "PEM", requires = "auth")]
    pub cert_file: Option<std::path::PathBuf>,
    /// A PEM file of CA certificates the provider's endpoints chain to (an enterprise's own
    /// CA), trusted for this app besides the public roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Bind the app's tokens to a key of this device (DPoP, RFC 9449): `on` or `off`; by
    /// default on when the provider's discovery offers it.
    #[arg(long, value_enum)]
    pub dpop: Option<Switch>,
    /// Default scopes, space-separated.
    #[arg(long)]
    pub scopes: Option<String>,
    /// How the authorization response comes back.
    #[arg(long, value_enum)]
    pub redirect: Option<Redirect>,
    /// A fixed loopback port the registration requires.
    #[arg(long)]
    pub port: Option<u16>,
    /// The HTTPS relay page registered as redirect URI.
    #[arg(long)]
    pub relay_url: Option<String>,
}

pub fn run(cmd: &ProviderCommand, out: &Output) -> Result<(), Failure> {
    match cmd {
        ProviderCommand::List => {
            let presets = &Catalog::builtin().providers;
            out.table(
                presets,
                &["PRESET", "NAME", "PKCE", "DEVICE", "REDIRECT"],
                |p| {
                    vec![
                        p.id.clone(),
                        p.name.clone(),
                        format!("{:?}", p.pkce).to_lowercase(),
                        if p.device_flow { "yes" } else { "" }.into(),
                        if p.redirect.https_only {
                            "https only"
                        } else {
                            "loopback"
                        }
                        .into(),
                    ]
                },
            )?;
            Ok(())
        }
        ProviderCommand::Apps { tenant } => {
            let vault = crate::open_vault()?;
            let t = vault.find_tenant(tenant)?;
            let apps = vault.tenant(&t.id)?.provider_apps()?;
            out.table(
                &apps,
                &["NAME", "PRESET", "CLIENT ID", "REDIRECT", "TOKEN ENDPOINT"],
                |a| {
                    vec![
                        a.name.clone(),
                        a.preset.clone().unwrap_or_else(|| "custom".into()),
                        a.client_id.clone(),
                        format!("{:?}", a.redirect_mode).to_lowercase(),
                        a.endpoints.token.clone().unwrap_or_default(),
                    ]
                },
            )?;
            Ok(())
        }
        ProviderCommand::Edit(args) => edit(args, out),
        ProviderCommand::Jwk { target } => {
            let (tenant, name) = split_ref(target)?;
            let vault = crate::open_vault()?;
            let t = vault.find_tenant(tenant)?;
            let jwks = vault.tenant(&t.id)?.client_jwk(name)?;
            out.value(&jwks, || {
                serde_json::to_string_pretty(&jwks).unwrap_or_default()
            })?;
            Ok(())
        }
        ProviderCommand::Certificate { target } => {
            let (tenant, name) = split_ref(target)?;
            let vault = crate::open_vault()?;
            let t = vault.find_tenant(tenant)?;
            let pem = vault.tenant(&t.id)?.client_certificate(name)?;
            out.value(&serde_json::json!({ "certificate": pem }), || {
                pem.trim_end().to_owned()
            })?;
            Ok(())
        }
        ProviderCommand::Delete {
            target,
            with_connections,
            yes,
        } => delete(target, *with_connections, *yes, out),
        ProviderCommand::Add(args) => {
            let AddArgs {
                target,
                preset,
                vars,
                issuer,
                authorize_url,
                token_url,
                revoke_url,
                client_id,
                client_secret,
                auth,
                key_file,
                cert_file,
                ca_file,
                dpop,
                scopes,
                redirect,
                port,
                relay_url,
            } = args.as_ref();
            let (tenant, name) = split_ref(target)?;
            let mut values = BTreeMap::new();
            for v in vars {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| Failure::invalid(format!("--var '{v}' is not NAME=VALUE")))?;
                values.insert(k.to_owned(), val.to_owned());
            }
            if revoke_url.is_some() && (authorize_url.is_none() || token_url.is_none()) {
                return Err(Failure::invalid(
                    "--revoke-url goes with --authorize-url and --token-url (explicit endpoints); with --issuer the revocation endpoint is discovered",
                ));
            }
            let endpoints = match (issuer, authorize_url, token_url) {
                (Some(issuer), _, _) => EndpointSource::Issuer {
                    issuer: issuer.clone(),
                },
                (None, Some(a), Some(t)) => EndpointSource::Explicit {
                    authorization: a.clone(),
                    token: t.clone(),
                    revocation: revoke_url.clone(),
                },
                (None, _, _) if preset.is_some() => EndpointSource::Preset { vars: values },
                _ => {
                    return Err(Failure::invalid(
                        "give --preset, --issuer, or both --authorize-url and --token-url",
                    ))
                }
            };
            let secret = if *client_secret {
                Some(read_secret()?)
            } else {
                None
            };
            let (key_pem, cert_pem) = read_key_files(key_file.as_deref(), cert_file.as_deref())?;
            let read = |path: &std::path::Path, what: &str| {
                std::fs::read_to_string(path).map_err(|e| {
                    Failure::invalid(format!(
                        "cannot read the {what} file {}: {e}",
                        path.display()
                    ))
                })
            };
            let ca_pem = ca_file.as_deref().map(|p| read(p, "CA")).transpose()?;
            let vault = crate::open_vault()?;
            let t = vault.find_tenant(tenant)?;
            let app = vault.tenant(&t.id)?.register_provider_app(
                ProviderAppSpec {
                    name: name.to_owned(),
                    preset: preset.clone(),
                    endpoints,
                    client_id: client_id.clone(),
                    client_secret: secret,
                    client_auth: auth.map(Into::into),
                    dpop: dpop.map(|d| d == Switch::On),
                    client_key_pem: key_pem,
                    client_cert_pem: cert_pem,
                    trusted_ca_pem: ca_pem,
                    scopes: scopes
                        .as_ref()
                        .map(|s| s.split_whitespace().map(str::to_owned).collect()),
                    redirect: redirect.map(Into::into),
                    port: *port,
                    relay_url: relay_url.clone(),
                },
                &Actor::new(ActorKind::Cli),
            )?;
            let register = registration(&RegistrationDraft::of(&app))?;
            out.value(&app, || {
                let mut text = format!("added provider app {}/{}", t.slug, app.name);
                match (&register.redirect_uri, &register.problem) {
                    (Some(uri), None) => {
                        text.push_str(&format!("\nregister this redirect URI: {uri}"));
                    }
                    (_, Some(p)) => text.push_str(&format!("\nbefore signing in: {}", p.message)),
                    (None, None) => {}
                }
                text.push_str(&format!(
                    "\nscopes to allow: {}\n{}",
                    register.scopes.join(" "),
                    register.client_detail
                ));
                for path in key_file.iter().chain(cert_file.iter().filter(|_| key_file.is_none())) {
                    text.push_str(&format!(
                        "\nthe private key from {} is now in the keychain; Grantkeeper no longer needs the file: delete it (shred -u {})",
                        path.display(),
                        path.display()
                    ));
                }
                if app.client_auth == Some(ClientAuth::SelfSignedTlsClientAuth) {
                    text.push_str(&format!(
                        "\nregister its certificate at the provider: grantkeeper provider jwk {0}/{1} (a JWK set with x5c), or grantkeeper provider certificate {0}/{1} (PEM)",
                        t.slug, app.name
                    ));
                }
                if app.client_auth == Some(ClientAuth::PrivateKeyJwt) {
                    text.push_str(&format!(
                        "\nregister its public key at the provider: grantkeeper provider jwk {}/{}",
                        t.slug, app.name
                    ));
                }
                text
            })?;
            Ok(())
        }
    }
}

/// A setting to set (`Some(Some(v))`), clear (`Some(None)`) or keep (`None`).
fn set_or_clear<T>(set: Option<T>, clear: bool) -> Option<Option<T>> {
    if clear {
        Some(None)
    } else {
        set.map(Some)
    }
}

fn edit(args: &EditArgs, out: &Output) -> Result<(), Failure> {
    let (tenant, name) = split_ref(&args.target)?;
    let change = ProviderAppEdit {
        client_id: args.client_id.clone(),
        client_secret: if args.client_secret {
            Some(read_secret()?)
        } else {
            None
        },
        remove_client_secret: args.no_client_secret,
        scopes: args
            .scopes
            .as_ref()
            .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        redirect: args.redirect.map(Into::into),
        port: set_or_clear(args.port, args.no_port),
        relay_url: set_or_clear(args.relay_url.clone(), args.no_relay_url),
        dpop: args.dpop.map(|d| d == Switch::On),
    };
    let vault = crate::open_vault()?;
    let t = vault.find_tenant(tenant)?;
    let edited =
        vault
            .tenant(&t.id)?
            .edit_provider_app(name, change, &Actor::new(ActorKind::Cli))?;
    out.value(&edited, || {
        let target = format!("{}/{}", t.slug, edited.app.name);
        let mut text = if edited.changed.is_empty() {
            format!("provider app {target}: nothing changed")
        } else {
            format!("updated provider app {target}: {}", edited.changed.join(", "))
        };
        for c in &edited.reconsent {
            text.push_str(&format!(
                "\n{}/{c} was granted to the old client id: consent again with `grantkeeper reconsent {}/{c}`",
                t.slug, t.slug
            ));
        }
        text
    })
}

fn delete(target: &str, with_connections: bool, yes: bool, out: &Output) -> Result<(), Failure> {
    let (tenant, name) = split_ref(target)?;
    if !yes {
        return Err(Failure::invalid(format!(
            "deleting provider app '{target}' cannot be undone; add --yes to confirm"
        )));
    }
    let vault = crate::open_vault()?;
    let t = vault.find_tenant(tenant)?;
    let deleted = vault.tenant(&t.id)?.delete_provider_app(
        name,
        with_connections,
        &Actor::new(ActorKind::Cli),
    )?;
    let summary = serde_json::json!({ "deleted": target, "connections": deleted });
    out.value(&summary, || {
        let mut text = format!("deleted provider app {target}");
        for d in &deleted {
            let what = d
                .revocation
                .as_ref()
                .map_or("it was revoked already", |r| r.detail.as_str());
            text.push_str(&format!("\ndeleted {}/{}; {what}", t.slug, d.name));
        }
        text
    })?;
    for d in &deleted {
        if let Some(outcome) = &d.revocation {
            super::revoke::confirmed(&format!("{}/{}", t.slug, d.name), outcome)?;
        }
    }
    Ok(())
}

/// The client secret, from a hidden prompt on a terminal, else the first line of stdin.
fn read_secret() -> Result<ClientSecret, Failure> {
    let stdin = std::io::stdin();
    let line = if stdin.is_terminal() {
        rpassword::prompt_password("Client secret: ")
            .map_err(|e| Failure::other(format!("cannot read the secret: {e}")))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::other(format!("cannot read the secret from stdin: {e}")))?;
        line
    };
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(Failure::invalid("the client secret is empty"));
    }
    Ok(ClientSecret::new(secret))
}
