//! Toxiproxy's error answer: `{"error": "proxy not found", "status": 404}`, with its status codes
//! and its messages (`api.go`'s `Err…` values), followed where socklab knows more by what exactly
//! was wrong.

use std::fmt;

use crate::timeline::json::Value;

/// An API error: the HTTP status and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    /// 400 `bad request body: WHY`.
    pub fn bad_body(why: &str) -> ApiError {
        ApiError::new(400, format!("bad request body: {why}"))
    }

    /// 400 `missing required field: FIELD`.
    pub fn missing_field(field: &str) -> ApiError {
        ApiError::new(400, format!("missing required field: {field}"))
    }

    /// 404 `proxy not found` (Toxiproxy's words), naming it.
    pub fn proxy_not_found(name: &str) -> ApiError {
        ApiError::new(404, format!("proxy not found: {name}"))
    }

    /// 409 `proxy already exists`.
    pub fn proxy_exists(name: &str) -> ApiError {
        ApiError::new(409, format!("proxy already exists: {name}"))
    }

    /// 400 `stream was invalid, can be either upstream or downstream`.
    pub fn invalid_stream(stream: &str) -> ApiError {
        ApiError::new(400, format!("stream was invalid, can be either upstream or downstream (got '{stream}')"))
    }

    /// 400 `invalid toxic type`.
    pub fn invalid_type(kind: &str) -> ApiError {
        ApiError::new(400, format!("invalid toxic type: {kind} (known: {})", super::toxic::TYPES))
    }

    /// 409 `toxic already exists`.
    pub fn toxic_exists(name: &str) -> ApiError {
        ApiError::new(409, format!("toxic already exists: {name}"))
    }

    /// 404 `toxic not found`.
    pub fn toxic_not_found(name: &str) -> ApiError {
        ApiError::new(404, format!("toxic not found: {name}"))
    }

    /// The JSON body: `{"error": MESSAGE, "status": N}`.
    pub fn to_json(&self) -> Value {
        Value::Object(vec![
            ("error".into(), Value::Str(self.message.clone())),
            ("status".into(), Value::Int(self.status.into())),
        ])
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}
