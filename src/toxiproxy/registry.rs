//! The named proxies of one API server and what each request does to them (no HTTP here: the
//! answers are JSON values and status codes, or an [`ApiError`]).
//!
//! Each enabled proxy is a running [`fixture::Proxy`](crate::fixture::Proxy) (its own thread and
//! epoll loop); a disabled one keeps its name, addresses and toxics but no listener, so
//! connections to it are refused (the kernel answers the SYN with RST), as Toxiproxy's are.
//! Toxics map one to one onto the fixture's named faults.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use super::error::ApiError;
use super::toxic::Toxic;
use crate::fixture::Proxy;
use crate::resolve::{resolve, split_host_port};
use crate::timeline::json::Value;

/// A status code and a JSON body (`None`: no body, as for 204).
pub type Answer = (u16, Option<Value>);

/// One named proxy.
#[derive(Debug)]
struct Entry {
    name: String,
    /// As shown: what was asked for until the proxy first listens, then the bound address.
    listen: String,
    upstream: String,
    enabled: bool,
    toxics: Vec<Toxic>,
    running: Option<Proxy>,
}

/// The proxies of one API server.
#[derive(Debug, Default)]
pub struct Registry {
    proxies: Mutex<Vec<Entry>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /proxies`: every proxy with its toxics, keyed by name.
    pub fn list(&self) -> Answer {
        let proxies = self.lock();
        (200, Some(Value::Object(proxies.iter().map(|e| (e.name.clone(), e.to_json())).collect())))
    }

    /// `POST /proxies`: `name` and `upstream` required; `listen` defaults to `127.0.0.1:0`,
    /// `enabled` to true. 201 with the proxy, 409 if the name is taken.
    pub fn create(&self, body: &Value) -> Result<Answer, ApiError> {
        let input = ProxyInput::read(body, None)?;
        let mut proxies = self.lock();
        if proxies.iter().any(|e| e.name == input.name) {
            return Err(ApiError::proxy_exists(&input.name));
        }
        let mut entry = Entry::new(input);
        if entry.enabled {
            entry.start()?;
        }
        let json = entry.to_json();
        proxies.push(entry);
        Ok((201, Some(json)))
    }

    /// `POST /populate`: creates or replaces each proxy of a list (one whose listen and upstream
    /// are unchanged is kept as it is, toxics and connections too). 201 with `{"proxies": [...]}`;
    /// on the first failure, its status with the error and the proxies done so far.
    pub fn populate(&self, body: &Value) -> Answer {
        let Value::Array(items) = body else {
            let err = ApiError::bad_body("populate takes a JSON array of proxies: [{\"name\": ...}, ...]");
            return (err.status, Some(err.to_json()));
        };
        // Check every item before creating any, as Toxiproxy does.
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match ProxyInput::read(item, Some(i + 1)) {
                Ok(input) => inputs.push(input),
                Err(err) => return (err.status, Some(err.to_json())),
            }
        }
        let mut done = Vec::new();
        let mut failed = None;
        let mut proxies = self.lock();
        for input in inputs {
            match add_or_replace(&mut proxies, input) {
                Ok(json) => done.push(json),
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        let mut fields = Vec::new();
        let status = match failed {
            Some(err) => {
                fields.push(("error".to_owned(), Value::Str(err.message)));
                fields.push(("status".to_owned(), Value::Int(err.status.into())));
                err.status
            }
            None => 201,
        };
        fields.push(("proxies".to_owned(), Value::Array(done)));
        (status, Some(Value::Object(fields)))
    }

    /// `GET /proxies/{name}`.
    pub fn show(&self, name: &str) -> Result<Answer, ApiError> {
        let proxies = self.lock();
        Ok((200, Some(find(&proxies, name)?.to_json())))
    }

    /// `POST|PATCH /proxies/{name}`: new `listen`, `upstream` (the proxy restarts, dropping its
    /// connections) and `enabled` (false: the listener and every connection close).
    pub fn update(&self, name: &str, body: &Value) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        let entry = find_mut(&mut proxies, name)?;
        let input = ProxyInput::read_update(body, entry)?;
        let moved = input.listen != entry.listen || input.upstream != entry.upstream;
        if moved {
            entry.stop();
            entry.listen = input.listen;
            entry.upstream = input.upstream;
        }
        if input.enabled {
            entry.start()?;
        } else {
            entry.stop();
        }
        Ok((200, Some(entry.to_json())))
    }

    /// `DELETE /proxies/{name}`: 204.
    pub fn delete(&self, name: &str) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        let i = proxies.iter().position(|e| e.name == name).ok_or_else(|| ApiError::proxy_not_found(name))?;
        let mut entry = proxies.remove(i);
        drop(proxies);
        entry.stop();
        Ok((204, None))
    }

    /// `POST /reset`: every proxy enabled, every toxic removed. 204.
    pub fn reset(&self) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        for entry in proxies.iter_mut() {
            entry.toxics.clear();
            if let Some(proxy) = &entry.running {
                proxy.set_faults([]);
            }
            entry.start()?;
        }
        Ok((204, None))
    }

    /// `GET /proxies/{name}/toxics`: the toxics as an array.
    pub fn toxics(&self, name: &str) -> Result<Answer, ApiError> {
        let proxies = self.lock();
        let entry = find(&proxies, name)?;
        Ok((200, Some(Value::Array(entry.toxics.iter().map(Toxic::to_json).collect()))))
    }

    /// `POST /proxies/{name}/toxics`: 200 with the toxic (Toxiproxy answers 200 here, not 201),
    /// 409 if its name is taken.
    pub fn add_toxic(&self, name: &str, body: &Value) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        let entry = find_mut(&mut proxies, name)?;
        let toxic = Toxic::from_create(body)?;
        if entry.toxics.iter().any(|t| t.name == toxic.name) {
            return Err(ApiError::toxic_exists(&toxic.name));
        }
        if let Some(proxy) = &entry.running {
            proxy.add_fault(&toxic.name, toxic.fault).map_err(|e| ApiError::new(500, e.to_string()))?;
        }
        let json = toxic.to_json();
        entry.toxics.push(toxic);
        Ok((200, Some(json)))
    }

    /// `GET /proxies/{name}/toxics/{toxic}`.
    pub fn show_toxic(&self, name: &str, toxic: &str) -> Result<Answer, ApiError> {
        let proxies = self.lock();
        let entry = find(&proxies, name)?;
        let toxic = entry.toxics.iter().find(|t| t.name == toxic).ok_or_else(|| ApiError::toxic_not_found(toxic))?;
        Ok((200, Some(toxic.to_json())))
    }

    /// `POST|PATCH /proxies/{name}/toxics/{toxic}`: new attributes and toxicity; open connections
    /// get them for the next chunk they read.
    pub fn update_toxic(&self, name: &str, toxic: &str, body: &Value) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        let entry = find_mut(&mut proxies, name)?;
        let slot = entry.toxics.iter_mut().find(|t| t.name == toxic).ok_or_else(|| ApiError::toxic_not_found(toxic))?;
        let updated = slot.updated(body)?;
        if let Some(proxy) = &entry.running {
            proxy.update_fault(&updated.name, updated.fault).map_err(|e| ApiError::new(500, e.to_string()))?;
        }
        *slot = updated;
        Ok((200, Some(slot.to_json())))
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}`: 204.
    pub fn remove_toxic(&self, name: &str, toxic: &str) -> Result<Answer, ApiError> {
        let mut proxies = self.lock();
        let entry = find_mut(&mut proxies, name)?;
        let i = entry.toxics.iter().position(|t| t.name == toxic).ok_or_else(|| ApiError::toxic_not_found(toxic))?;
        entry.toxics.remove(i);
        if let Some(proxy) = &entry.running {
            proxy.remove_fault(toxic).map_err(|e| ApiError::new(500, e.to_string()))?;
        }
        Ok((204, None))
    }

    /// Stops every proxy (their listeners and connections close).
    pub fn stop_all(&self) {
        for entry in self.lock().iter_mut() {
            entry.stop();
        }
    }
}

fn find<'a>(proxies: &'a [Entry], name: &str) -> Result<&'a Entry, ApiError> {
    proxies.iter().find(|e| e.name == name).ok_or_else(|| ApiError::proxy_not_found(name))
}

fn find_mut<'a>(proxies: &'a mut [Entry], name: &str) -> Result<&'a mut Entry, ApiError> {
    proxies.iter_mut().find(|e| e.name == name).ok_or_else(|| ApiError::proxy_not_found(name))
}

/// Populate's add-or-replace: a proxy of the same name whose listen and upstream are unchanged
/// is kept (and not re-enabled); otherwise it is stopped and replaced.
fn add_or_replace(proxies: &mut Vec<Entry>, input: ProxyInput) -> Result<Value, ApiError> {
    if let Some(i) = proxies.iter().position(|e| e.name == input.name) {
        let same = proxies[i].upstream == input.upstream && same_listen(&proxies[i].listen, &input.listen);
        if same {
            return Ok(proxies[i].to_json());
        }
        proxies.remove(i).stop();
    }
    let mut entry = Entry::new(input);
    if entry.enabled {
        entry.start()?;
    }
    let json = entry.to_json();
    proxies.push(entry);
    Ok(json)
}

/// Whether a requested listen address names the one a proxy has (`127.0.0.1:0` never does).
fn same_listen(current: &str, asked: &str) -> bool {
    current == asked
        || matches!((address(current, true), address(asked, true)), (Ok(a), Ok(b)) if a == b && a.port() != 0)
}

/// The fields of a proxy in a create, populate or update request.
#[derive(Debug)]
struct ProxyInput {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
}

impl ProxyInput {
    /// A create or populate item; `item` numbers populate's entries in messages (from 1).
    fn read(body: &Value, item: Option<usize>) -> Result<ProxyInput, ApiError> {
        let at = item.map(|i| format!(" at proxy {i}")).unwrap_or_default();
        if !matches!(body, Value::Object(_)) {
            return Err(ApiError::bad_body(&format!(
                "a proxy is a JSON object{at}: {{\"name\": ..., \"upstream\": ...}}"
            )));
        }
        let name = text(body, "name")?.unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::missing_field(&format!("name{at}")));
        }
        let upstream = text(body, "upstream")?.unwrap_or_default();
        if upstream.is_empty() {
            return Err(ApiError::missing_field(&format!("upstream{at}")));
        }
        let listen = text(body, "listen")?.filter(|l| !l.is_empty()).unwrap_or_else(|| "127.0.0.1:0".into());
        let enabled = flag(body, "enabled")?.unwrap_or(true);
        Ok(ProxyInput { name, listen, upstream, enabled })
    }

    /// An update: fields left out keep the proxy's values.
    fn read_update(body: &Value, entry: &Entry) -> Result<ProxyInput, ApiError> {
        if !matches!(body, Value::Object(_)) {
            return Err(ApiError::bad_body("an update is a JSON object: {\"enabled\": false}"));
        }
        Ok(ProxyInput {
            name: entry.name.clone(),
            listen: text(body, "listen")?.filter(|l| !l.is_empty()).unwrap_or_else(|| entry.listen.clone()),
            upstream: text(body, "upstream")?.filter(|u| !u.is_empty()).unwrap_or_else(|| entry.upstream.clone()),
            enabled: flag(body, "enabled")?.unwrap_or(entry.enabled),
        })
    }
}

fn text(body: &Value, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_body(&format!("'{key}' must be a string"))),
    }
}

fn flag(body: &Value, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_body(&format!("'{key}' must be true or false"))),
    }
}

/// `HOST:PORT` (a name, an IP, `[v6]`) → the first address it resolves to. Port 0 (the kernel
/// picks) is for listening only; an empty host is Go's: every address to listen on, this host to
/// connect to.
fn address(text: &str, listen: bool) -> Result<SocketAddr, String> {
    let text = text.trim();
    let (host, port) = match text.strip_suffix(":0") {
        Some(host) if listen => (host.trim_start_matches('[').trim_end_matches(']'), 0),
        _ => split_host_port(text).map_err(|e| e.to_string())?,
    };
    let host = match host {
        "" if listen => "0.0.0.0",
        "" => "localhost",
        host => host,
    };
    let addrs = resolve(host, port).map_err(|e| e.to_string())?;
    addrs.first().copied().ok_or_else(|| format!("{text} has no address"))
}

impl Entry {
    fn new(input: ProxyInput) -> Entry {
        Entry {
            name: input.name,
            listen: input.listen,
            upstream: input.upstream,
            enabled: input.enabled,
            toxics: Vec::new(),
            running: None,
        }
    }

    /// Listens (if not already) with the toxics in force. Port in use and other bind failures
    /// are 500, as in Toxiproxy (whose message is Go's `listen tcp ...: bind: address already in
    /// use`); an address that does not parse is 400.
    fn start(&mut self) -> Result<(), ApiError> {
        if self.running.is_some() {
            self.enabled = true;
            return Ok(());
        }
        let listen = address(&self.listen, true).map_err(|e| ApiError::bad_body(&format!("listen: {e}")))?;
        let upstream = address(&self.upstream, false).map_err(|e| ApiError::bad_body(&format!("upstream: {e}")))?;
        let proxy = Proxy::builder(upstream)
            .listen(listen)
            .spawn()
            .map_err(|e| ApiError::new(500, format!("listen {}: {e}", self.listen)))?;
        for toxic in &self.toxics {
            proxy.add_fault(&toxic.name, toxic.fault).map_err(|e| ApiError::new(500, e.to_string()))?;
        }
        self.listen = proxy.local_addr().to_string();
        self.running = Some(proxy);
        self.enabled = true;
        Ok(())
    }

    /// Closes the listener and every connection; the proxy stays, disabled.
    fn stop(&mut self) {
        if let Some(proxy) = self.running.take() {
            let _ = proxy.shutdown();
        }
        self.enabled = false;
    }

    fn to_json(&self) -> Value {
        Value::Object(vec![
            ("name".into(), Value::Str(self.name.clone())),
            ("listen".into(), Value::Str(self.listen.clone())),
            ("upstream".into(), Value::Str(self.upstream.clone())),
            ("enabled".into(), Value::Bool(self.enabled)),
            ("toxics".into(), Value::Array(self.toxics.iter().map(Toxic::to_json).collect())),
        ])
    }
}
