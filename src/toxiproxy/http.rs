//! The API's HTTP/1.1, on socklab's own sockets (so `proxy --api --trace` shows its calls too):
//! a thread per connection, requests answered in turn on each (keep-alive), and a bound on
//! everything a client decides — the head's size, the body's, the connections open at once, the
//! time a request may take to arrive.
//!
//! ```text
//! accept thread:   accept ─▶ at most MAX_CONNS open: a thread each, else 503 and closed
//! connection:      loop { read the head (≤ 16 KiB) ─▶ the body (Content-Length or chunked,
//!                  ≤ 1 MiB) ─▶ answer ─▶ write the response }   until the client closes, says
//!                  `Connection: close`, or is idle for IDLE
//! ```
//!
//! What it does not do: TLS, pipelining beyond answering buffered requests in order, trailers
//! (read and dropped), `Expect` other than `100-continue`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::process::SpawnCounted;
use crate::tcp::{TcpListener, TcpStream};

/// The largest request head (request line and headers).
const MAX_HEAD: usize = 16 << 10;
/// The largest request body.
pub const MAX_BODY: usize = 1 << 20;
/// Connections served at once; more are answered 503 and closed as they come. Each has a thread
/// with a small stack (its work is a request's JSON and the registry's calls).
const MAX_CONNS: usize = 1024;
const STACK: usize = 256 << 10;
/// How long a connection may sit between requests, or a request take between two reads.
const IDLE: Duration = Duration::from_secs(60);

/// One request: its method, its target (path and query) and its body.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `/proxies/redis/toxics`.
    pub target: String,
    /// The body (empty without one).
    pub body: Vec<u8>,
}

/// What a handler answers: the status and, if any, a JSON body.
pub type Response = (u16, Option<String>);

/// Why a request could not be read: the status to answer (then the connection is closed).
#[derive(Debug)]
struct Refused(u16, String);

/// The connections being served, to shut down on [`Server::stop`].
type Open = Arc<Mutex<HashMap<u64, (Arc<TcpStream>, JoinHandle<()>)>>>;

/// A listening HTTP server; its threads stop with [`Server::stop`] (or when dropped).
pub struct Server {
    listener: Arc<TcpListener>,
    addr: SocketAddr,
    open: Open,
    accepting: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` and answers each request with `handler` (called from the connections' threads).
    pub fn bind<H>(addr: SocketAddr, handler: H) -> io::Result<Server>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let listener = Arc::new(TcpListener::bind(&addr).map_err(io::Error::from)?);
        let addr = listener.local_addr()?;
        let open: Open = Arc::default();
        let (listening, conns, handler) = (Arc::clone(&listener), Arc::clone(&open), Arc::new(handler));
        let accepting = thread::Builder::new()
            .name("socklab-http-accept".into())
            .spawn_counted(move || accept_loop(&listening, &conns, &handler))?;
        Ok(Server { listener, addr, open, accepting: Some(accepting) })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends every open connection and waits for their threads.
    pub fn stop(&mut self) {
        // shutdown(2) on a listening socket wakes the accept blocked in it (it fails: EINVAL).
        let _ = self.listener.socket().shutdown(Shutdown::Both);
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
        let conns: Vec<_> = lock(&self.open).drain().map(|(_, conn)| conn).collect();
        for (stream, thread) in conns {
            let _ = stream.shutdown(Shutdown::Both); // its blocked recv returns 0
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop<H>(listener: &TcpListener, open: &Open, handler: &Arc<H>)
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => Arc::new(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return, // shut down by stop()
            // A connection that failed before it was taken (ECONNABORTED, the network errors
            // accept(2) passes on), or no descriptor or memory for it (EMFILE, ENOBUFS: it waits
            // in the queue): try again shortly, without spinning on an error that lasts.
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Held until the new thread is listed: it removes itself from the list when it ends.
        let mut conns = lock(open);
        if conns.len() >= MAX_CONNS {
            // A few bytes into a new connection's empty send buffer: this does not block.
            let why = format!("more than {MAX_CONNS} connections to the API are open; close some and try again");
            let _ = write_response(&stream, 503, Some(&error_body(503, why)), false, false);
            continue; // dropped: closed
        }
        next_id += 1;
        let (serving, handler, conns_of) = (Arc::clone(&stream), Arc::clone(handler), Arc::clone(open));
        let id = next_id;
        let spawned =
            thread::Builder::new().name("socklab-http-conn".into()).stack_size(STACK).spawn_counted(move || {
                let _ = serve(&serving, &*handler);
                let _ = serving.shutdown(Shutdown::Both);
                drop(serving);
                // The entry's stream is the last reference: removing it closes the socket.
                drop(lock(&conns_of).remove(&id).map(|(stream, _)| stream));
            });
        if let Ok(thread) = spawned {
            conns.insert(id, (stream, thread));
        }
    }
}

/// Answers the requests of one connection in turn until it ends.
fn serve(stream: &TcpStream, handler: &dyn Fn(&Request) -> Response) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut input = Vec::new();
    loop {
        let (request, keep_alive) = match read_request(stream, &mut input) {
            Ok(Some(read)) => read,
            Ok(None) => return Ok(()), // closed (or idle too long) between requests
            Err(Refused(status, why)) => {
                return write_response(stream, status, Some(&error_body(status, why)), false, false);
            }
        };
        let (status, body) = handler(&request);
        write_response(stream, status, body.as_deref(), keep_alive, request.method == "HEAD")?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request from `stream`, `input` holding what was read past the previous one.
/// `Ok(None)`: the connection ended before a request began.
fn read_request(stream: &TcpStream, input: &mut Vec<u8>) -> Result<Option<(Request, bool)>, Refused> {
    let head_len = loop {
        if let Some(i) = find(input, b"\r\n\r\n") {
            break i + 4;
        }
        if input.len() > MAX_HEAD {
            return Err(Refused(431, format!("the request's head is larger than {} KiB", MAX_HEAD >> 10)));
        }
        let between_requests = input.iter().all(u8::is_ascii_whitespace);
        match read_more(stream, input) {
            // Closed, or idle too long, between requests: ended without a word (an answer here
            // would be read as the answer to the client's next request).
            Ok(0) | Err(Refused(408, _)) if between_requests => return Ok(None),
            Ok(0) => return Err(Refused(400, "the connection ended inside a request's head".into())),
            Ok(_) => {}
            Err(refused) => return Err(refused),
        }
    };
    let head = std::str::from_utf8(&input[..head_len])
        .map_err(|_| Refused(400, "the request's head is not UTF-8 text".into()))?
        .trim_start_matches("\r\n"); // a stray CRLF before a request is allowed (RFC 9112 2.2)
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(Refused(400, format!("not an HTTP request line: {:?}", truncated(request_line)))),
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(Refused(505, format!("HTTP version {:?} is not served (HTTP/1.1 is)", truncated(version)))),
    };
    let (mut length, mut chunked, mut close, mut keep, mut expect) = (None::<usize>, false, false, false, false);
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) =
            line.split_once(':').ok_or_else(|| Refused(400, format!("not a header line: {:?}", truncated(line))))?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n =
                    value.parse::<usize>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit())).ok_or_else(
                        || Refused(400, format!("Content-Length is not a number: {:?}", truncated(value))),
                    )?;
                if length.is_some_and(|l| l != n) {
                    return Err(Refused(400, "two different Content-Length headers".into()));
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(Refused(501, format!("Transfer-Encoding {:?} is not served", truncated(value))));
                }
                chunked = true;
            }
            "connection" => {
                close |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
                keep |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive"));
            }
            "expect" => expect = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if chunked && length.is_some() {
        return Err(Refused(400, "both Content-Length and Transfer-Encoding".into()));
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(Refused(413, format!("the body is larger than {} MiB", MAX_BODY >> 20)));
    }
    let (method, target) = (method.to_string(), target.to_string());
    input.drain(..head_len);
    if expect && (chunked || length.unwrap_or(0) > 0) && input.is_empty() {
        // The client waits for this before it sends the body.
        write_all(stream, b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if chunked {
        read_chunked(stream, input)?
    } else {
        let n = length.unwrap_or(0);
        while input.len() < n {
            if read_more(stream, input)? == 0 {
                return Err(Refused(400, format!("the connection ended {} bytes into a body of {n}", input.len())));
            }
        }
        input.drain(..n).collect()
    };
    let keep_alive = if http11 { !close } else { keep && !close };
    Ok(Some((Request { method, target, body }, keep_alive)))
}

/// A chunked body (RFC 9112 7.1), its chunk extensions and trailers dropped.
fn read_chunked(stream: &TcpStream, input: &mut Vec<u8>) -> Result<Vec<u8>, Refused> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, input)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .ok()
            .filter(|_| !size.is_empty() && size.len() <= 8)
            .ok_or_else(|| Refused(400, format!("not a chunk size: {:?}", truncated(&line))))?;
        if size == 0 {
            while !read_line(stream, input)?.is_empty() {} // trailers, up to the empty line
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(Refused(413, format!("the body is larger than {} MiB", MAX_BODY >> 20)));
        }
        while input.len() < size + 2 {
            if read_more(stream, input)? == 0 {
                return Err(Refused(400, "the connection ended inside a chunk".into()));
            }
        }
        if &input[size..size + 2] != b"\r\n" {
            return Err(Refused(400, "a chunk does not end with CRLF".into()));
        }
        body.extend(input.drain(..size + 2).take(size));
    }
}

/// One CRLF-terminated line (without it), at most MAX_HEAD long.
fn read_line(stream: &TcpStream, input: &mut Vec<u8>) -> Result<String, Refused> {
    loop {
        if let Some(i) = find(input, b"\r\n") {
            let line = String::from_utf8_lossy(&input[..i]).into_owned();
            input.drain(..i + 2);
            return Ok(line);
        }
        if input.len() > MAX_HEAD {
            return Err(Refused(400, "a chunk line is too long".into()));
        }
        if read_more(stream, input)? == 0 {
            return Err(Refused(400, "the connection ended inside a chunked body".into()));
        }
    }
}

/// One recv into the end of `input`: how many bytes came (0: the client closed).
fn read_more(stream: &TcpStream, input: &mut Vec<u8>) -> Result<usize, Refused> {
    let mut buf = [0u8; 8192];
    loop {
        return match (&*stream).read(&mut buf) {
            Ok(n) => {
                input.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err(Refused(408, format!("no byte of the request for {} s", IDLE.as_secs())))
            }
            Err(_) => Ok(0), // reset: as good as closed
        };
    }
}

fn write_all(stream: &TcpStream, bytes: &[u8]) -> Result<(), Refused> {
    (&*stream).write_all(bytes).map_err(|e| Refused(500, e.to_string()))
}

/// Writes a response: JSON when there is a body; none for 204 or a HEAD request.
fn write_response(stream: &TcpStream, status: u16, body: Option<&str>, keep_alive: bool, head: bool) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let body = if status == 204 { None } else { body };
    if let Some(body) = body {
        out.push_str("Content-Type: application/json\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if status != 204 {
        out.push_str("Content-Length: 0\r\n");
    }
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if let Some(body) = body.filter(|_| !head) {
        out.push_str(body);
    }
    (&*stream).write_all(out.as_bytes())
}

/// The reason phrase of the statuses the API answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// At most 60 characters of what the client sent, for an error message.
fn truncated(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Toxiproxy's error body: `{"error": WHY, "status": N}`, as the API's own errors.
fn error_body(status: u16, why: String) -> String {
    super::json_text(&super::ApiError::new(status, why).to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases_cover_every_status_the_api_answers() {
        for status in [200, 201, 204, 400, 404, 405, 408, 409, 413, 431, 500, 501, 503, 505] {
            assert_ne!(reason(status), "Unknown", "{status}");
        }
    }
}
