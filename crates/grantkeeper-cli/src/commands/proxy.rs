//! `grantkeeper proxy`: serve a connection's API on a loopback port with its token added (the
//! proxy itself is the grantkeeper-proxy crate).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use grantkeeper_proxy::{check_listen, Grant, Options, Proxy};
use serde_json::json;

use super::args::resolve;
use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// The loopback address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Clients must send a bearer of this proxy's own (`Proxy-Authorization: Bearer …`); it is
    /// printed once, or written to --bearer-file.
    #[arg(long)]
    require_bearer: bool,
    /// Write the bearer to this file (mode 0600) instead of printing it.
    #[arg(long, requires = "require_bearer")]
    bearer_file: Option<PathBuf>,
    /// The API's base URL, for providers the catalog has none for (or to override it).
    #[arg(long)]
    api_base: Option<String>,
    /// A value for a placeholder of the catalog's API address or headers, e.g.
    /// `--var xero_tenant_id=ID`; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
}

pub fn proxy(args: &ProxyArgs, out: &Output) -> Result<(), Failure> {
    check_listen(args.listen).map_err(|e| Failure::invalid(e.to_string()))?;
    let mut values = BTreeMap::new();
    for v in &args.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Failure::invalid(format!("--var '{v}' is not NAME=VALUE")))?;
        values.insert(k.trim().to_owned(), val.trim().to_owned());
    }
    let vault = Arc::new(crate::open_vault()?);
    let (tenant, connection, api) = {
        let (scope, c) = resolve(&vault, &args.target)?;
        let api = scope.api_target(&c, args.api_base.as_deref(), &values)?;
        (scope.tenant().id.clone(), c.id, api)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::other(format!("cannot start the proxy's runtime: {e}")))?;
    runtime.block_on(async {
        let grant = Grant {
            vault: vault.clone(),
            tenant,
            connection,
            api: api.clone(),
        };
        let options = Options {
            listen: args.listen,
            require_bearer: args.require_bearer,
        };
        let proxy = Proxy::start(grant, &options)
            .await
            .map_err(|e| Failure::other(e.to_string()))?;
        let listen = format!("http://{}", proxy.local_addr());
        let mut shown_bearer = None;
        if let (Some(bearer), Some(path)) = (proxy.bearer(), &args.bearer_file) {
            bearer.write_to(path).map_err(|e| {
                Failure::other(format!(
                    "cannot write the bearer to {}: {e}",
                    path.display()
                ))
            })?;
        } else if let Some(bearer) = proxy.bearer() {
            shown_bearer = Some(bearer.expose().to_owned());
        }
        let value = json!({
            "listen": listen,
            "api_base": api.base.as_str(),
            "bearer": shown_bearer,
            "bearer_file": args.bearer_file,
        });
        out.value(&value, || {
            let mut line = format!(
                "proxy for {} listening on {listen}, forwarding to {} (Ctrl+C stops it)",
                args.target, api.base
            );
            if let Some(b) = &shown_bearer {
                line.push_str(&format!(
                    "\nclients must send: Proxy-Authorization: Bearer {b}"
                ));
            }
            line
        })?;
        wait_for_stop().await;
        proxy.stop().await;
        Ok(())
    })
}

/// Until Ctrl+C or SIGTERM.
async fn wait_for_stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
