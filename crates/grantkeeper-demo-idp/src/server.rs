//! The HTTP server and the OAuth state machine of the demo provider.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::pages;

/// The port the demo provider listens on (the catalog's `grantkeeper-demo` preset points here).
pub const DEFAULT_PORT: u16 = 47631;
/// The one client the demo provider knows (public: PKCE, no secret).
pub const CLIENT_ID: &str = "grantkeeper-demo";
/// The demo account.
const SUBJECT: &str = "demo-user-1";
const USERNAME: &str = "ada@demo.example";
/// Access-token lifetime: short, so countdowns and refreshes show.
const ACCESS_SECS: u64 = 600;
/// Authorization codes live this long and serve once.
const CODE_SECS: u64 = 60;
const SCOPES: [&str; 5] = [
    "profile",
    "contacts.read",
    "invoices.read",
    "invoices.write",
    "offline_access",
];

/// A running demo provider; stops when dropped.
pub struct DemoIdp {
    issuer: String,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

impl DemoIdp {
    /// Listens on `127.0.0.1:port` (0 picks a free port).
    pub fn start(port: u16) -> std::io::Result<Self> {
        let server = Server::http(SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrInUse, e.to_string()))?;
        let port = server.server_addr().to_ip().map_or(port, |a| a.port());
        let issuer = format!("http://127.0.0.1:{port}");
        let server = Arc::new(server);
        let state = Arc::new(Mutex::new(State::new(issuer.clone())));
        let thread = {
            let server = server.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let state = state.clone();
                    std::thread::spawn(move || handle(request, &state));
                }
            })
        };
        Ok(Self {
            issuer,
            server,
            thread: Some(thread),
        })
    }

    /// The issuer URL (`http://127.0.0.1:<port>`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl Drop for DemoIdp {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct PendingAuthorization {
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    scopes: Vec<String>,
}

struct CodeGrant {
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
    expires: u64,
}

/// One consent: its refresh tokens rotate, and all of it dies on revocation or reuse.
struct Grant {
    scopes: Vec<String>,
    current_refresh: String,
    revoked: bool,
}

struct State {
    issuer: String,
    key: [u8; 32],
    pending: HashMap<String, PendingAuthorization>,
    codes: HashMap<String, CodeGrant>,
    grants: Vec<Grant>,
    /// Every refresh token ever issued → its grant (old ones detect reuse).
    refresh_index: HashMap<String, usize>,
    /// Access-token ids of revoked grants.
    revoked_access: HashSet<usize>,
}

impl State {
    fn new(issuer: String) -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            issuer,
            key,
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_index: HashMap::new(),
            revoked_access: HashSet::new(),
        }
    }

    fn metadata(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "revocation_endpoint": format!("{i}/revoke"),
            "introspection_endpoint": format!("{i}/introspect"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": SCOPES,
            "authorization_response_iss_parameter_supported": true,
        })
    }

    fn issue(&mut self, grant: usize, with_refresh: bool) -> Value {
        let now = now();
        let claims = json!({
            "iss": self.issuer,
            "sub": SUBJECT,
            "aud": CLIENT_ID,
            "client_id": CLIENT_ID,
            "scope": self.grants[grant].scopes.join(" "),
            "iat": now,
            "exp": now + ACCESS_SECS,
            "gid": grant,
            "jti": random_token(),
        });
        let access = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.key).expect("a 32-byte HMAC key"),
        )
        .expect("HS256 encoding cannot fail");
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_SECS,
            "scope": self.grants[grant].scopes.join(" "),
            "user": { "id": SUBJECT, "email": USERNAME },
        });
        if with_refresh {
            let refresh = random_token();
            self.refresh_index.insert(refresh.clone(), grant);
            self.grants[grant].current_refresh = refresh.clone();
            body["refresh_token"] = json!(refresh);
        }
        body
    }

    /// The grant an access token belongs to, if it is genuine, unexpired and not revoked.
    fn access_claims(&self, token: &str) -> Option<Value> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(&self.key).ok()?,
            &validation,
        )
        .ok()?;
        let gid = usize::try_from(data.claims.get("gid")?.as_u64()?).ok()?;
        (!self.revoked_access.contains(&gid) && !self.grants.get(gid)?.revoked)
            .then_some(data.claims)
    }

    fn revoke_grant(&mut self, grant: usize) {
        if let Some(g) = self.grants.get_mut(grant) {
            g.revoked = true;
        }
        self.revoked_access.insert(grant);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn send_json(request: Request, status: u16, body: &Value) {
    let _ = request.respond(
        Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(header("Content-Type", "application/json"))
            .with_header(header("Cache-Control", "no-store")),
    );
}

fn send_html(request: Request, status: u16, body: String) {
    let _ = request.respond(
        Response::from_string(body)
            .with_status_code(status)
            .with_header(header("Content-Type", "text/html; charset=utf-8")),
    );
}

fn oauth_error(request: Request, status: u16, error: &str, description: &str) {
    send_json(
        request,
        status,
        &json!({ "error": error, "error_description": description }),
    );
}

fn form(request: &mut Request) -> HashMap<String, String> {
    let mut body = String::new();
    let _ = request
        .as_reader()
        .take(64 * 1024)
        .read_to_string(&mut body);
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn handle(mut request: Request, state: &Mutex<State>) {
    let url = url::Url::parse(&format!("http://127.0.0.1{}", request.url()))
        .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1/").expect("valid"));
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match (request.method(), url.path()) {
        (Method::Get, "/.well-known/oauth-authorization-server") => {
            let meta = st.metadata();
            drop(st);
            send_json(request, 200, &meta);
        }
        (Method::Get, "/authorize") => authorize(request, &mut st, &query),
        (Method::Post, "/authorize/decision") => {
            let f = form(&mut request);
            decision(request, &mut st, &f);
        }
        (Method::Post, "/token") => {
            let f = form(&mut request);
            token(request, &mut st, &f);
        }
        (Method::Post, "/revoke") => {
            let f = form(&mut request);
            let t = f.get("token").map(String::as_str).unwrap_or("");
            if let Some(&g) = st.refresh_index.get(t) {
                st.revoke_grant(g);
            } else if let Some(gid) = st
                .access_claims(t)
                .and_then(|c| c.get("gid")?.as_u64())
                .and_then(|g| usize::try_from(g).ok())
            {
                st.revoke_grant(gid);
            }
            drop(st);
            // RFC 7009: 200 whether or not the token was known.
            let _ = request.respond(Response::empty(200));
        }
        (Method::Post, "/introspect") => {
            let f = form(&mut request);
            let t = f.get("token").map(String::as_str).unwrap_or("");
            let answer = match st.access_claims(t) {
                Some(c) => json!({
                    "active": true,
                    "scope": c["scope"], "client_id": CLIENT_ID, "sub": SUBJECT,
                    "username": USERNAME, "exp": c["exp"], "iat": c["iat"],
                    "token_type": "access_token", "iss": st.issuer,
                }),
                None => match st.refresh_index.get(t) {
                    Some(&g) if !st.grants[g].revoked && st.grants[g].current_refresh == t => {
                        json!({
                            "active": true, "client_id": CLIENT_ID, "sub": SUBJECT,
                            "scope": st.grants[g].scopes.join(" "), "token_type": "refresh_token",
                        })
                    }
                    _ => json!({ "active": false }),
                },
            };
            drop(st);
            send_json(request, 200, &answer);
        }
        _ => {
            drop(st);
            send_html(request, 404, pages::problem("Nothing here."));
        }
    }
}

fn authorize(request: Request, st: &mut State, q: &HashMap<String, String>) {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID {
        return send_html(request, 400, pages::problem("Unknown client_id."));
    }
    let redirect_uri = get("redirect_uri");
    let loopback = url::Url::parse(redirect_uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    });
    if !loopback {
        return send_html(
            request,
            400,
            pages::problem("The redirect URI must be a loopback address (RFC 8252)."),
        );
    }
    let redirect_error = |request: Request, error: &str| {
        let mut to = url::Url::parse(redirect_uri).expect("checked above");
        to.query_pairs_mut().append_pair("error", error);
        if let Some(s) = q.get("state") {
            to.query_pairs_mut().append_pair("state", s);
        }
        to.query_pairs_mut().append_pair("iss", &st.issuer);
        let _ = request.respond(Response::empty(302).with_header(header("Location", to.as_str())));
    };
    if get("response_type") != "code" {
        return redirect_error(request, "unsupported_response_type");
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        return redirect_error(request, "invalid_request");
    }
    let scopes: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !SCOPES.contains(&s.as_str())) {
        return redirect_error(request, "invalid_scope");
    }
    let id = random_token();
    st.pending.insert(
        id.clone(),
        PendingAuthorization {
            redirect_uri: redirect_uri.to_owned(),
            state: q.get("state").cloned(),
            challenge: get("code_challenge").to_owned(),
            scopes: scopes.clone(),
        },
    );
    send_html(
        request,
        200,
        pages::consent(&id, CLIENT_ID, &scopes, USERNAME),
    );
}

fn decision(request: Request, st: &mut State, f: &HashMap<String, String>) {
    let Some(p) = f.get("request").and_then(|id| st.pending.remove(id)) else {
        return send_html(
            request,
            400,
            pages::problem("This sign-in has expired or was already answered; start it again from Grantkeeper."),
        );
    };
    let mut to = url::Url::parse(&p.redirect_uri).expect("checked at /authorize");
    if f.get("decision").map(String::as_str) == Some("approve") {
        let code = random_token();
        st.codes.insert(
            code.clone(),
            CodeGrant {
                redirect_uri: p.redirect_uri.clone(),
                challenge: p.challenge,
                scopes: p.scopes,
                expires: now() + CODE_SECS,
            },
        );
        to.query_pairs_mut().append_pair("code", &code);
    } else {
        to.query_pairs_mut().append_pair("error", "access_denied");
    }
    if let Some(s) = &p.state {
        to.query_pairs_mut().append_pair("state", s);
    }
    to.query_pairs_mut().append_pair("iss", &st.issuer);
    let _ = request.respond(Response::empty(302).with_header(header("Location", to.as_str())));
}

fn token(request: Request, st: &mut State, f: &HashMap<String, String>) {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID {
        return oauth_error(request, 401, "invalid_client", "unknown client");
    }
    match get("grant_type") {
        "authorization_code" => {
            // A code serves once, whatever happens next.
            let Some(code) = st.codes.remove(get("code")) else {
                return oauth_error(request, 400, "invalid_grant", "unknown or used code");
            };
            if code.expires < now() || code.redirect_uri != get("redirect_uri") {
                return oauth_error(
                    request,
                    400,
                    "invalid_grant",
                    "expired code or wrong redirect_uri",
                );
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
            if computed != code.challenge {
                return oauth_error(request, 400, "invalid_grant", "PKCE verification failed");
            }
            let offline = code.scopes.iter().any(|s| s == "offline_access");
            st.grants.push(Grant {
                scopes: code.scopes,
                current_refresh: String::new(),
                revoked: false,
            });
            let body = st.issue(st.grants.len() - 1, offline);
            send_json(request, 200, &body);
        }
        "refresh_token" => {
            let presented = get("refresh_token");
            let Some(&g) = st.refresh_index.get(presented) else {
                return oauth_error(request, 400, "invalid_grant", "unknown refresh token");
            };
            if st.grants[g].revoked {
                return oauth_error(request, 400, "invalid_grant", "the grant was revoked");
            }
            if st.grants[g].current_refresh != presented {
                // Reuse of a rotated refresh token: someone else may hold it. End the grant.
                st.revoke_grant(g);
                return oauth_error(
                    request,
                    400,
                    "invalid_grant",
                    "refresh token reused; the grant is revoked",
                );
            }
            let body = st.issue(g, true);
            send_json(request, 200, &body);
        }
        _ => oauth_error(
            request,
            400,
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        ),
    }
}
