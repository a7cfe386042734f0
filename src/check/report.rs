//! A run as JSON lines and as JUnit XML: the machine-readable reports (`--json`, `--junit`).

use std::fmt::Write as _;

use super::{CaseResult, Outcome, Report};
use crate::timeline::json::{self, Value};

/// One JSON object per case, then a summary object: `--json`.
///
/// Each case: `case`, `group`, `passed` (true, false, or null for informational and skipped
/// cases), `informational`, `skipped`, `expected`, `observed`, `lesson`, `seconds`, `seed`.
/// The summary: `summary: true`, the counts, `seed`, `seconds`, `target`, and with `--spawn` the
/// server's deaths and stop.
pub fn json_lines(report: &Report) -> Vec<String> {
    let mut lines: Vec<String> = report.results.iter().map(case_json).collect();
    let mut summary = vec![
        ("summary", Value::Bool(true)),
        ("target", Value::Str(report.target.clone())),
        ("cases", Value::Int(report.results.len() as i64)),
        ("passed", Value::Int(report.passed() as i64)),
        ("failed", Value::Int(report.failed() as i64)),
        ("informational", Value::Int(report.informational() as i64)),
        ("skipped", Value::Int(report.skipped() as i64)),
        ("need_spawn", Value::Int(report.need_spawn as i64)),
        ("seed", Value::Int(report.seed as i64)),
        ("seconds", Value::Fixed(report.seconds, 3)),
    ];
    if let Some(server) = &report.server {
        summary.push(("server_starts", Value::Int(server.starts as i64)));
        summary.push(("server_deaths", Value::Array(server.deaths.iter().cloned().map(Value::Str).collect())));
        if let Some(stop) = &server.stop {
            summary
                .push(("server_stop", Value::Str(format!("{} after {:.3} s", stop.status, stop.after.as_secs_f64()))));
        }
        if !server.strace.is_empty() {
            summary.push(("strace", Value::Array(server.strace.iter().cloned().map(Value::Str).collect())));
        }
    }
    lines.push(json::object(&summary));
    lines
}

fn case_json(r: &CaseResult) -> String {
    let passed = match r.passed() {
        Some(b) => Value::Bool(b),
        None => Value::Null,
    };
    json::object(&[
        ("case", Value::Str(r.id.to_string())),
        ("group", Value::Str(r.group.to_string())),
        ("passed", passed),
        ("informational", Value::Bool(r.outcome == Outcome::Informational)),
        ("skipped", Value::Bool(r.outcome == Outcome::Skipped)),
        ("expected", Value::Str(r.expected.clone())),
        ("observed", Value::Str(r.observed.clone())),
        ("lesson", Value::Str(r.lesson.clone())),
        ("seconds", Value::Fixed(r.seconds, 3)),
        ("seed", Value::Int(r.seed as i64)),
    ])
}

/// XML text with `&`, `<`, `>`, `"` and `'` escaped, and characters XML 1.0 forbids dropped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML (`--junit FILE`), as CI test reporters read it: one `<testsuite>` per group, one
/// `<testcase>` per case; a failed case has a `<failure>` with what was observed and the lesson,
/// an informational or skipped one a `<skipped>` with its observation.
pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"socklab check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        report.results.len(),
        report.failed(),
        report.informational() + report.skipped(),
        report.seconds
    );
    let mut groups: Vec<&str> = Vec::new();
    for r in &report.results {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    for group in groups {
        let cases: Vec<&CaseResult> = report.results.iter().filter(|r| r.group == group).collect();
        let failures = cases.iter().filter(|r| r.outcome == Outcome::Failed).count();
        let skipped = cases.iter().filter(|r| matches!(r.outcome, Outcome::Informational | Outcome::Skipped)).count();
        let time: f64 = cases.iter().map(|r| r.seconds).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
            xml_escape(group),
            cases.len()
        );
        for r in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"socklab.check.{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(r.group),
                xml_escape(r.id),
                r.seconds
            );
            match r.outcome {
                Outcome::Passed => out.push_str("/>\n"),
                Outcome::Failed => {
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\">expected: {}\nobserved: {}\n\n{}\n\nreplay: --case {} --seed {}</failure>\n    </testcase>\n",
                        xml_escape(&r.observed),
                        xml_escape(&r.expected),
                        xml_escape(&r.observed),
                        xml_escape(&r.lesson),
                        xml_escape(r.id),
                        report.seed
                    );
                }
                Outcome::Informational | Outcome::Skipped => {
                    let kind = if r.outcome == Outcome::Informational { "informational" } else { "skipped" };
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{kind}: {}\"/>\n    </testcase>\n",
                        xml_escape(&r.observed)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
