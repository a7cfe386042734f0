//! Floor 4: Toxiproxy's HTTP API over socklab's fault proxies, so a test suite written against
//! Toxiproxy (its daemon on port 8474 and its client libraries) runs against `socklab proxy --api`
//! unchanged. Built with the `toxiproxy` feature (the CLI's default; a `default-features = false`
//! library build leaves the HTTP server out).
//!
//! ```text
//! client library ──HTTP──▶ ApiServer (http.rs: a thread per connection) ──▶ Registry: named proxies
//!                                                                   ├─ "redis": fixture::Proxy (its own epoll thread)
//!                                                                   └─ "db":    disabled (no listener)
//! ```
//!
//! ```text
//! GET    /version                          {"version": "socklab-X.Y.Z"}
//! GET    /proxies                          {"NAME": {proxy}, ...}
//! POST   /proxies                          201 {proxy}; 409 name taken; 400 name/upstream missing
//! POST   /populate                         201 {"proxies": [...]}: create or replace each
//! GET    /proxies/NAME                     {proxy}; 404 unknown
//! POST   /proxies/NAME  (or PATCH)         {proxy}: listen, upstream, enabled
//! DELETE /proxies/NAME                     204
//! GET    /proxies/NAME/toxics              [{toxic}, ...]
//! POST   /proxies/NAME/toxics              200 {toxic}; 409 name taken; 400 type, stream, attributes
//! GET    /proxies/NAME/toxics/TOXIC        {toxic}; 404 unknown
//! POST   /proxies/NAME/toxics/TOXIC (or PATCH)  {toxic}: attributes, toxicity
//! DELETE /proxies/NAME/toxics/TOXIC        204
//! POST   /reset                            204: every proxy enabled, every toxic removed
//! {proxy}: {"name", "listen", "upstream", "enabled", "toxics": [...]}
//! {toxic}: {"attributes": {...}, "name", "type", "stream", "toxicity"}
//! errors:  {"error": "proxy not found: NAME", "status": 404}
//! ```
//!
//! The toxic types and their attributes are in `toxic.rs`; docs/src/toxiproxy.md has the coverage
//! table and what differs from Toxiproxy.

mod error;
mod http;
mod registry;
mod toxic;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use error::ApiError;
pub use registry::{Answer, Registry};
pub use toxic::Toxic;

use crate::timeline::json::{self, Style, Value};

/// What `GET /version` reports.
pub const VERSION: &str = concat!("socklab-", env!("CARGO_PKG_VERSION"));

/// Toxiproxy's API on threads of its own (one accepting, one per connection). Dropping it (or [`shutdown`](ApiServer::shutdown))
/// stops the API and every proxy it made.
///
/// ```no_run
/// let api = socklab::toxiproxy::ApiServer::bind("127.0.0.1:8474".parse()?)?;
/// println!("Toxiproxy's API on {}", api.local_addr());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ApiServer {
    http: http::Server,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").field("http", &self.http).field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Binds `addr` and serves the API on a new thread.
    pub fn bind(addr: SocketAddr) -> io::Result<ApiServer> {
        ApiServer::with_registry(addr, Arc::new(Registry::default()))
    }

    /// Serves the API over proxies already in `registry` (e.g. made from a config file first).
    pub fn with_registry(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<ApiServer> {
        let proxies = Arc::clone(&registry);
        let http = http::Server::bind(addr, move |request| respond(request, &proxies))?;
        Ok(ApiServer { http, registry })
    }

    /// Where the API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// The proxies (to read or change them from the same process).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops answering, then stops every proxy (closing their listeners and connections).
    pub fn shutdown(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.http.stop();
        self.registry.stop_all();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Reads Toxiproxy's JSON config (the file `toxiproxy-server -config` takes: an array of
/// `{"name", "listen", "upstream", "enabled"}`) into `registry`, as `POST /populate` would.
/// Returns how many proxies it holds, or the error naming what was wrong.
pub fn populate_from(registry: &Registry, text: &str) -> Result<usize, ApiError> {
    let body = json::parse(text).map_err(|e| ApiError::bad_body(&e.to_string()))?;
    match registry.populate(&body) {
        (201, Some(answer)) => {
            Ok(answer.get("proxies").map_or(0, |p| if let Value::Array(p) = p { p.len() } else { 0 }))
        }
        (status, answer) => {
            let message = answer.as_ref().and_then(|a| a.get("error")).and_then(Value::as_str).unwrap_or("failed");
            Err(ApiError::new(status, message))
        }
    }
}

/// One request's answer: its status and JSON body.
fn respond(request: &http::Request, registry: &Registry) -> http::Response {
    let (status, body) = answer(request, registry).unwrap_or_else(|err| (err.status, Some(err.to_json())));
    (status, body.as_ref().map(json_text))
}

/// A JSON body as sent: compact, one line.
fn json_text(body: &Value) -> String {
    let mut text = json::write(body, Style::Compact);
    text.push('\n');
    text
}

/// Routes one request.
fn answer(request: &http::Request, registry: &Registry) -> Result<Answer, ApiError> {
    let method = request.method.as_str();
    let path = request.target.split(['?', '#']).next().unwrap_or("");
    let parts: Vec<String> = path.split('/').filter(|p| !p.is_empty()).map(unescape).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let update = matches!(method, "POST" | "PATCH");
    match (parts.as_slice(), method) {
        (["version"], "GET") => Ok((200, Some(Value::Object(vec![("version".into(), Value::Str(VERSION.into()))])))),
        (["proxies"], "GET") => Ok(registry.list()),
        (["proxies"], "POST") => registry.create(&body(request)?),
        (["populate"], "POST") => Ok(registry.populate(&body(request)?)),
        (["reset"], "POST") => registry.reset(),
        (["proxies", name], "GET") => registry.show(name),
        (["proxies", name], _) if update => registry.update(name, &body(request)?),
        (["proxies", name], "DELETE") => registry.delete(name),
        (["proxies", name, "toxics"], "GET") => registry.toxics(name),
        (["proxies", name, "toxics"], "POST") => registry.add_toxic(name, &body(request)?),
        (["proxies", name, "toxics", toxic], "GET") => registry.show_toxic(name, toxic),
        (["proxies", name, "toxics", toxic], _) if update => registry.update_toxic(name, toxic, &body(request)?),
        (["proxies", name, "toxics", toxic], "DELETE") => registry.remove_toxic(name, toxic),
        (
            ["version"]
            | ["proxies"]
            | ["populate"]
            | ["reset"]
            | ["proxies", _]
            | ["proxies", _, "toxics"]
            | ["proxies", _, "toxics", _],
            _,
        ) => Err(ApiError::new(405, format!("method {method} is not allowed on {path}"))),
        _ => Err(ApiError::new(404, format!("no such endpoint: {path} (see GET /proxies)"))),
    }
}

/// The request body as JSON (at most [`http::MAX_BODY`] bytes: the HTTP layer refuses larger).
fn body(request: &http::Request) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(&request.body)
        .map_err(|e| ApiError::bad_body(&format!("could not read it as UTF-8 text: {e}")))?;
    if text.trim().is_empty() {
        // Go's json.Decoder answers EOF here; Toxiproxy reports it as a bad body.
        return Err(ApiError::bad_body("EOF (the request has no JSON body)"));
    }
    json::parse(text).map_err(|e| ApiError::bad_body(&e.to_string()))
}

/// `%XX` escapes in a path segment (a proxy named `a b` arrives as `a%20b`).
fn unescape(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
