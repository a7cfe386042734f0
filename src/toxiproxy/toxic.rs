//! A toxic as Toxiproxy's API spells it, and the socklab fault it becomes.
//!
//! ```text
//! {"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0,
//!  "attributes": {"latency": 100, "jitter": 10}}          ⇄  Fault { Latency{100 ms, 10 ms}, … }
//! ```
//!
//! Toxiproxy's types and their attributes (units as Toxiproxy has them):
//!
//! ```text
//! latency      latency, jitter (ms)                   → latency=LATENCYms~JITTERms
//! bandwidth    rate (KB/s: 1,000 bytes a second)       → bandwidth=RATEkb
//! slicer       average_size, size_variation (bytes), delay (µs)
//! limit_data   bytes                                   → limit_data=BYTES
//! reset_peer   timeout (ms)                            → reset_peer=TIMEOUTms
//! timeout      timeout (ms; 0: hold open, never close) → timeout=TIMEOUTms
//! slow_close   delay (ms)                              → slow_close=DELAYms
//! half_open    (none; socklab only)                    → half_open
//! refuse       (none; socklab only, the whole listener) → refuse
//! ```
//!
//! Attributes left out are 0, as Go's JSON decoder leaves them; an update changes only the
//! attributes it names. socklab is stricter than Toxiproxy in one way: a negative number, a
//! fraction, or a value that would make the fault do nothing useful (a bandwidth or slice of 0)
//! is refused with a message naming the attribute, where Toxiproxy would silently pass data.

use std::time::Duration;

use super::error::ApiError;
use crate::fault::{Direction, Fault, Kind, ResetAfter};
use crate::timeline::json::Value;

/// The toxic types this API accepts, for error messages.
pub const TYPES: &str = "latency, bandwidth, slicer, limit_data, reset_peer, timeout, slow_close (Toxiproxy's), half_open, refuse (socklab's)";

/// One toxic of a proxy: its name, stream and toxicity, and the fault it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique within its proxy.
    pub name: String,
    /// The fault: its kind gives the type and attributes, its direction the stream, its
    /// probability the toxicity.
    pub fault: Fault,
}

impl Toxic {
    /// Reads a toxic from a create request: `type` is required; `stream` defaults to
    /// `downstream`, `toxicity` to 1.0, `name` to `TYPE_STREAM`.
    pub fn from_create(body: &Value) -> Result<Toxic, ApiError> {
        if !matches!(body, Value::Object(_)) {
            return Err(ApiError::bad_body("a toxic is a JSON object: {\"type\": \"latency\", ...}"));
        }
        let kind = match body.get("type") {
            Some(Value::Str(t)) => t.as_str(),
            Some(Value::Null) | None => "",
            Some(_) => return Err(ApiError::bad_body("'type' must be a string")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => "downstream",
            Some(Value::Str(s)) => s.as_str(),
            Some(_) => return Err(ApiError::bad_body("'stream' must be a string")),
        };
        let direction = match stream {
            "downstream" => Direction::Downstream,
            "upstream" => Direction::Upstream,
            _ => return Err(ApiError::invalid_stream(stream)),
        };
        let toxicity = toxicity(body.get("toxicity"), 1.0)?;
        let name = match body.get("name") {
            Some(Value::Str(n)) if !n.is_empty() => n.clone(),
            None | Some(Value::Null) | Some(Value::Str(_)) => format!("{kind}_{stream}"),
            Some(_) => return Err(ApiError::bad_body("'name' must be a string")),
        };
        let attributes = attributes(body.get("attributes"))?;
        let fault = fault(kind, &attributes)?.direction(direction).probability(toxicity);
        Ok(Toxic { name, fault })
    }

    /// The toxic after an update request: the attributes it names replace the old ones, the rest
    /// stay; `toxicity` too. Toxiproxy ignores `name`, `type` and `stream` in an update; so does this.
    pub fn updated(&self, body: &Value) -> Result<Toxic, ApiError> {
        if !matches!(body, Value::Object(_)) {
            return Err(ApiError::bad_body("an update is a JSON object: {\"attributes\": {...}}"));
        }
        let mut merged = self.attributes();
        for (key, value) in attributes(body.get("attributes"))? {
            match merged.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => merged.push((key, value)),
            }
        }
        let toxicity = toxicity(body.get("toxicity"), self.fault.probability)?;
        let fault = fault(self.kind(), &merged)?.direction(self.fault.direction).probability(toxicity);
        Ok(Toxic { name: self.name.clone(), fault })
    }

    /// The toxic type: the fault's name.
    pub fn kind(&self) -> &'static str {
        self.fault.kind.name()
    }

    /// `upstream` or `downstream`.
    pub fn stream(&self) -> &'static str {
        self.fault.direction.name()
    }

    /// The attributes in Toxiproxy's units, every one the type has.
    pub fn attributes(&self) -> Vec<(String, Value)> {
        let ms = |d: Duration| Value::Int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let n = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        let fields: Vec<(&str, Value)> = match self.fault.kind {
            Kind::Latency { delay, jitter } => vec![("latency", ms(delay)), ("jitter", ms(jitter))],
            Kind::Bandwidth(rate) => vec![("rate", n(rate / 1000))],
            Kind::Slicer { size, variation, delay } => vec![
                ("average_size", n(size as u64)),
                ("size_variation", n(variation as u64)),
                ("delay", Value::Int(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX))),
            ],
            Kind::LimitData(bytes) => vec![("bytes", n(bytes))],
            Kind::ResetPeer(ResetAfter::Delay(d)) => vec![("timeout", ms(d))],
            Kind::ResetPeer(ResetAfter::Bytes(b)) => vec![("bytes", n(b))],
            Kind::Timeout(d) => vec![("timeout", ms(d.unwrap_or(Duration::ZERO)))],
            Kind::SlowClose(d) => vec![("delay", ms(d))],
            Kind::HalfOpen | Kind::Refuse => vec![],
        };
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// The toxic as Toxiproxy prints it.
    pub fn to_json(&self) -> Value {
        Value::Object(vec![
            ("attributes".into(), Value::Object(self.attributes())),
            ("name".into(), Value::Str(self.name.clone())),
            ("type".into(), Value::Str(self.kind().into())),
            ("stream".into(), Value::Str(self.stream().into())),
            ("toxicity".into(), Value::Num(self.fault.probability)),
        ])
    }
}

/// `toxicity`: a number from 0 to 1 (`default` when absent).
fn toxicity(value: Option<&Value>, default: f64) -> Result<f64, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Ok(t),
            _ => Err(ApiError::bad_body("'toxicity' must be a number from 0.0 to 1.0 (the share of connections)")),
        },
    }
}

/// The `attributes` object's members (absent or null: none).
fn attributes(value: Option<&Value>) -> Result<Vec<(String, Value)>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(fields)) => Ok(fields.clone()),
        Some(_) => Err(ApiError::bad_body("'attributes' must be a JSON object")),
    }
}

/// Attribute `key` as a whole number ≥ 0 (absent: 0, as Go leaves a field it did not decode).
fn whole(attrs: &[(String, Value)], key: &str, unit: &str) -> Result<u64, ApiError> {
    match attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
        Some(other) => Err(ApiError::bad_body(&format!(
            "attributes.{key} must be a whole number ≥ 0 ({unit}), not {}",
            crate::timeline::json::write(other, crate::timeline::json::Style::Compact)
        ))),
    }
}

/// The fault of toxic type `kind` with `attrs`.
fn fault(kind: &str, attrs: &[(String, Value)]) -> Result<Fault, ApiError> {
    let ms = |key: &str| whole(attrs, key, "milliseconds").map(Duration::from_millis);
    let kind = match kind {
        "latency" => Kind::Latency { delay: ms("latency")?, jitter: ms("jitter")? },
        "bandwidth" => match whole(attrs, "rate", "KB/s")? {
            0 => {
                return Err(ApiError::bad_body(
                    "attributes.rate must be at least 1 (KB/s): socklab has no unlimited rate; remove the toxic instead",
                ));
            }
            rate => Kind::Bandwidth(rate.saturating_mul(1000)),
        },
        "slicer" => {
            let size = whole(attrs, "average_size", "bytes")?;
            if size == 0 {
                return Err(ApiError::bad_body("attributes.average_size must be at least 1 (bytes in a slice)"));
            }
            let variation = whole(attrs, "size_variation", "bytes")?.min(size - 1);
            let delay = Duration::from_micros(whole(attrs, "delay", "microseconds")?);
            Kind::Slicer { size: size as usize, variation: variation as usize, delay }
        }
        "limit_data" => Kind::LimitData(whole(attrs, "bytes", "bytes")?),
        "reset_peer" => Kind::ResetPeer(ResetAfter::Delay(ms("timeout")?)),
        "timeout" => Kind::Timeout(Some(ms("timeout")?).filter(|d| !d.is_zero())),
        "slow_close" => Kind::SlowClose(ms("delay")?),
        "half_open" => Kind::HalfOpen,
        "refuse" => Kind::Refuse,
        "" => return Err(ApiError::missing_field("type")),
        other => return Err(ApiError::invalid_type(other)),
    };
    Ok(Fault::new(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::json::parse;

    fn create(text: &str) -> Result<Toxic, ApiError> {
        Toxic::from_create(&parse(text).unwrap())
    }

    #[test]
    fn a_latency_toxic_round_trips_in_toxiproxys_units() {
        let toxic = create(r#"{"type": "latency", "attributes": {"latency": 100, "jitter": 5}}"#).unwrap();
        assert_eq!(toxic.name, "latency_downstream");
        assert_eq!(
            toxic.fault.kind,
            Kind::Latency { delay: Duration::from_millis(100), jitter: Duration::from_millis(5) }
        );
        let json = toxic.to_json();
        assert_eq!(json.get("attributes").and_then(|a| a.get("latency")), Some(&Value::Int(100)));
        assert_eq!(json.get("stream").and_then(Value::as_str), Some("downstream"));
    }

    #[test]
    fn an_update_keeps_the_attributes_it_does_not_name() {
        let toxic = create(r#"{"type": "latency", "stream": "upstream", "attributes": {"latency": 100, "jitter": 5}}"#)
            .unwrap();
        let updated = toxic.updated(&parse(r#"{"attributes": {"latency": 7}}"#).unwrap()).unwrap();
        assert_eq!(
            updated.fault.kind,
            Kind::Latency { delay: Duration::from_millis(7), jitter: Duration::from_millis(5) }
        );
        assert_eq!(updated.fault.direction, Direction::Upstream);
    }

    #[test]
    fn bad_toxics_get_toxiproxys_errors_naming_the_field() {
        let err = create(r#"{"type": "jitterbug"}"#).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (
                400,
                "invalid toxic type: jitterbug (known: latency, bandwidth, slicer, limit_data, reset_peer, timeout, slow_close (Toxiproxy's), half_open, refuse (socklab's))"
            )
        );
        let err = create(r#"{"type": "latency", "stream": "sideways"}"#).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.starts_with("stream was invalid"), "{}", err.message);
        let err = create(r#"{"type": "latency", "attributes": {"latency": "1s"}}"#).unwrap_err();
        assert!(err.message.contains("attributes.latency"), "{}", err.message);
        let err = create(r#"{"type": "bandwidth", "attributes": {}}"#).unwrap_err();
        assert!(err.message.contains("attributes.rate"), "{}", err.message);
        let err = create(r#"{"type": "latency", "toxicity": 2}"#).unwrap_err();
        assert!(err.message.contains("toxicity"), "{}", err.message);
    }
}
