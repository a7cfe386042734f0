//! Floor 4: the crate's one JSON writer and reader (no dependency for JSON this small).
//!
//! Everything socklab prints as JSON goes through [`write()`]: the walkthrough's events
//! ([`jsonl`](super::jsonl)), `socklab states --json` and `socklab bench --json`. [`parse`] reads
//! it back, for scripts written in Rust and for the integration tests, so what is printed and what
//! is checked cannot drift apart.
//!
//! Two layouts, both one line: [`Style::Spaced`] (`{"a": 1, "b": "x"}`, the event lines) and
//! [`Style::Compact`] (`{"a":1,"b":"x"}`, the bench report).

use std::fmt::{self, Write as _};

/// A JSON value: what [`write()`] prints and what [`parse`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number, written with 6 decimals (read back from any number that is not an integer).
    Num(f64),
    /// A number written with this many decimals (read back as [`Value::Num`]).
    Fixed(f64, usize),
    /// A string.
    Str(String),
    /// `[...]`.
    Array(Vec<Value>),
    /// `{...}`, keys in the order given (and read).
    Object(Vec<(String, Value)>),
}

/// How [`write()`] separates keys, values and members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `{"a": 1, "b": 2}`.
    Spaced,
    /// `{"a":1,"b":2}`.
    Compact,
}

/// A JSON string literal, with quotes, backslashes and control characters escaped.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{"k": v, ...}` in the given order ([`Style::Spaced`]): one event or one socket per line.
pub fn object(fields: &[(&str, Value)]) -> String {
    object_in(fields, Style::Spaced)
}

/// `{"k":v,...}` in the given order ([`Style::Compact`]).
pub fn compact_object(fields: &[(&str, Value)]) -> String {
    object_in(fields, Style::Compact)
}

fn object_in(fields: &[(&str, Value)], style: Style) -> String {
    let mut out = String::new();
    push_object(&mut out, fields.iter().map(|(k, v)| (*k, v)), style);
    out
}

/// `value` as JSON text on one line. Numbers that are not finite (JSON has no NaN) are `null`.
pub fn write(value: &Value, style: Style) -> String {
    let mut out = String::new();
    push_value(&mut out, value, style);
    out
}

fn push_object<'a>(out: &mut String, fields: impl Iterator<Item = (&'a str, &'a Value)>, style: Style) {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push_str(if style == Style::Spaced { ", " } else { "," });
        }
        push_string(out, k);
        out.push_str(if style == Style::Spaced { ": " } else { ":" });
        push_value(out, v, style);
    }
    out.push('}');
}

fn push_value(out: &mut String, value: &Value, style: Style) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Num(n) => push_number(out, *n, 6),
        Value::Fixed(n, decimals) => push_number(out, *n, *decimals),
        Value::Str(s) => push_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if style == Style::Spaced { ", " } else { "," });
                }
                push_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(fields) => push_object(out, fields.iter().map(|(k, v)| (k.as_str(), v)), style),
    }
}

fn push_number(out: &mut String, n: f64, decimals: usize) {
    if n.is_finite() {
        let _ = write!(out, "{n:.decimals$}");
    } else {
        out.push_str("null");
    }
}

impl Value {
    /// The member `key` of an object (the first one, if it is repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Any number, as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(n) => Some(n as f64),
            Value::Num(n) | Value::Fixed(n, _) => Some(n),
            _ => None,
        }
    }

    /// An integer.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(n) => Some(n),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Why [`parse`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for Error {}

/// Nesting deeper than this is refused (the reader is recursive; socklab writes depth 2 at most).
const MAX_DEPTH: usize = 64;

/// Reads one JSON value (surrounding whitespace allowed, nothing else after it). Integers that fit
/// an i64 become [`Value::Int`], other numbers [`Value::Num`].
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut r = Reader { s: text.as_bytes(), at: 0 };
    let value = r.value(0)?;
    r.skip_ws();
    if r.at != r.s.len() {
        return Err(r.err("text after the value"));
    }
    Ok(value)
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn err(&self, what: &'static str) -> Error {
        Error { offset: self.at, what }
    }

    fn skip_ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let found = self.s.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, Error> {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.err("unknown word"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.skip_ws();
        match self.s.get(self.at) {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Value::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected , or ]"));
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') {
                    return Ok(Value::Object(fields));
                }
                loop {
                    self.skip_ws();
                    if self.s.get(self.at) != Some(&b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.err("expected :"));
                    }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Value::Object(fields));
                    }
                    if !self.eat(b',') {
                        return Err(self.err("expected , or }"));
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while matches!(r.s.get(r.at), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at > from
        };
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if !digits(self) {
            return Err(self.err("expected digits"));
        }
        let mut integer = true;
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            integer = false;
            if !digits(self) {
                return Err(self.err("expected digits after ."));
            }
        }
        if matches!(self.s.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.s.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed: the slice is valid UTF-8.
        let text = std::str::from_utf8(&self.s[start..self.at]).map_err(|_| self.err("bad number"))?;
        if integer {
            if let Ok(n) = text.parse() {
                return Ok(Value::Int(n));
            }
        }
        text.parse().map(Value::Num).map_err(|_| Error { offset: start, what: "bad number" })
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.s.get(self.at..self.at + 4).ok_or_else(|| self.err("short \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("bad \\u escape"))?;
        let n = u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(n)
    }

    /// A string literal; `self.at` is on its opening quote.
    fn string(&mut self) -> Result<String, Error> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.at) else { return Err(self.err("unterminated string")) };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else { return Err(self.err("unterminated escape")) };
                    self.at += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut n = self.hex4()?;
                            if (0xD800..0xDC00).contains(&n) && self.s[self.at..].starts_with(b"\\u") {
                                self.at += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                n = 0x10000 + ((n - 0xD800) << 10) + (low - 0xDC00);
                            }
                            char::from_u32(n).ok_or_else(|| self.err("unpaired surrogate"))?
                        }
                        _ => return Err(self.err("unknown escape")),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..0x20 => return Err(self.err("control character in a string")),
                _ => out.push(b),
            }
        }
        // The input is a &str and escapes produce whole characters, so this cannot fail.
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b\\c\n\u{1}约"), "\"a\\\"b\\\\c\\n\\u0001约\"");
        assert_eq!(object(&[("a", Value::Int(1)), ("b", Value::Null)]), "{\"a\": 1, \"b\": null}");
    }

    #[test]
    fn styles_and_numbers() {
        let nested = Value::Object(vec![("n".into(), Value::Int(2)), ("x".into(), Value::Null)]);
        let fields = [("f", Value::Fixed(1.23456, 2)), ("o", nested), ("nan", Value::Num(f64::NAN))];
        assert_eq!(compact_object(&fields), r#"{"f":1.23,"o":{"n":2,"x":null},"nan":null}"#);
        assert_eq!(object(&fields), r#"{"f": 1.23, "o": {"n": 2, "x": null}, "nan": null}"#);
        assert_eq!(write(&Value::Array(vec![Value::Bool(true), Value::Num(0.5)]), Style::Spaced), "[true, 0.500000]");
    }

    #[test]
    fn what_is_written_reads_back() {
        let nasty = "quote\" back\\ nl\n tab\t bell\u{7} esc\u{1b} 约 🦀";
        let line = object(&[("s", Value::Str(nasty.into())), ("i", Value::Int(-42)), ("t", Value::Num(1.5))]);
        let v = parse(&line).unwrap();
        assert_eq!(v.get("s").and_then(Value::as_str), Some(nasty));
        assert_eq!(v.get("i").and_then(Value::as_i64), Some(-42));
        assert_eq!(v.get("t").and_then(Value::as_f64), Some(1.5));
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn reads_standard_json() {
        let v = parse(" {\"a\" : [1, -2.5e1, true, false, null, {}], \"u\": \"\\u00e9\\ud83e\\udd80\\/\"} ").unwrap();
        let a = v.get("a").unwrap();
        let Value::Array(items) = a else { panic!("{a:?}") };
        assert_eq!(items[..5], [Value::Int(1), Value::Num(-25.0), Value::Bool(true), Value::Bool(false), Value::Null]);
        assert_eq!(v.get("u").and_then(Value::as_str), Some("é🦀/"));
    }

    #[test]
    fn rejects_what_is_not_json() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "\"open",
            "01x",
            "1.",
            "-",
            "nul",
            "\"\\x\"",
            "\"\\ud800\"",
            "{} {}",
            "\"a\u{1}\"",
            "{a:1}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let deep = "[".repeat(1000);
        assert_eq!(parse(&deep).unwrap_err().what, "nested too deeply");
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = b"{}[]\",:\\-+.eE0123456789 truefalsnu\\u00d8";
        let mut state = 0x9e37_79b9;
        for len in 0..2000 {
            let bytes = crate::testutil::garbage(&mut state, len % 40);
            let text: String = bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect();
            let _ = parse(&text);
        }
    }
}
