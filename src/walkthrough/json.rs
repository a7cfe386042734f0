//! Just enough JSON for one flat object per line (no dependency for that).

use std::fmt::Write as _;

/// A JSON string literal, with quotes, backslashes and control characters escaped.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
    out
}

/// A JSON value, already encoded.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// An integer.
    Int(i64),
    /// null.
    Null,
}

/// `{"k": v, ...}` in the given order.
pub fn object(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&string(k));
        out.push_str(": ");
        match v {
            Value::Str(s) => out.push_str(&string(s)),
            Value::Num(n) => {
                let _ = write!(out, "{n:.6}");
            }
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Null => out.push_str("null"),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b\\c\n\u{1}约"), "\"a\\\"b\\\\c\\n\\u0001约\"");
        assert_eq!(object(&[("a", Value::Int(1)), ("b", Value::Null)]), "{\"a\": 1, \"b\": null}");
    }
}
