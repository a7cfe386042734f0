//! `--html FILE`: one self-contained page a teacher can hand back. Inline style and a few lines of
//! inline script, nothing fetched (a Content-Security-Policy forbids it). Each case is a
//! `<details>`: failed ones are open, with what was expected, what was observed, the lesson and
//! the transcript (the steps, and where the echo diverged from what was sent).

use std::fmt::Write as _;

use super::report::xml_escape as esc;
use super::{CaseResult, Divergence, Outcome, Report};

/// The nonce that lets the page's own style and script run under its Content-Security-Policy
/// (which forbids everything else: no request leaves the page).
const NONCE: &str = "socklab-check";

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
details{margin:.3em 0;border:1px solid #ddd;border-radius:4px;padding:.3em .6em}
summary{cursor:pointer}.id{font-family:monospace;font-weight:600}
.tag{display:inline-block;width:4.5em;font-weight:700}.PASS{color:#1a7f37}.FAIL{color:#cf222e}.INFO{color:#9a6700}.SKIP{color:#777}
dl{margin:.4em 0}dt{font-weight:600}dd{margin:0 0 .4em 1.2em}
pre{background:#f6f8fa;padding:.5em;overflow-x:auto;font-size:13px}
.diff b{background:#ffd7d5}.sum{font-size:1.1em;font-weight:600}";

/// A byte string shown as text where it is printable ASCII, `\xNN` elsewhere; the byte at
/// `mark` (if any) bold.
fn bytes(b: &[u8], mark: Option<usize>) -> String {
    let mut out = String::new();
    for (i, &c) in b.iter().enumerate() {
        let shown =
            if (0x20..0x7f).contains(&c) && c != b'\\' { (c as char).to_string() } else { format!("\\x{c:02x}") };
        if Some(i) == mark {
            let _ = write!(out, "<b>{}</b>", esc(&shown));
        } else {
            out.push_str(&esc(&shown));
        }
    }
    out
}

fn divergence(d: &Divergence) -> String {
    let at = d.offset - d.window_start;
    format!(
        "<p>The echo first differs at byte {} of the stream (the window below starts at byte {}):</p>\
<pre class=\"diff\">sent:       {}\ncame back:  {}</pre>",
        d.offset,
        d.window_start,
        bytes(&d.sent, Some(at)),
        bytes(&d.came_back, Some(at))
    )
}

fn case(out: &mut String, r: &CaseResult, seed: u64) {
    let tag = match r.outcome {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Informational => "INFO",
        Outcome::Skipped => "SKIP",
    };
    let open = if r.outcome == Outcome::Failed { " open" } else { "" };
    let _ = write!(
        out,
        "<details class=\"case {tag}\" id=\"{}\"{open}><summary><span class=\"tag {tag}\">{tag}</span> \
<span class=\"id\">{}</span> — {} <small>({:.2} s)</small></summary><dl>\
<dt>expected</dt><dd>{}</dd><dt>observed</dt><dd>{}</dd>",
        esc(r.id),
        esc(r.id),
        esc(r.title),
        r.seconds,
        esc(&r.expected),
        esc(&r.observed)
    );
    if matches!(r.outcome, Outcome::Failed | Outcome::Informational) {
        let _ = write!(out, "<dt>lesson</dt><dd>{}</dd>", esc(&r.lesson));
    }
    if r.outcome == Outcome::Failed {
        let _ =
            write!(out, "<dt>replay</dt><dd><code>socklab check ... --case {} --seed {seed}</code></dd>", esc(r.id));
    }
    out.push_str("</dl>");
    if !r.transcript.steps.is_empty() || r.transcript.divergence.is_some() {
        out.push_str("<div class=\"transcript\"><b>transcript</b><pre>");
        for step in &r.transcript.steps {
            let _ = writeln!(out, "{}", esc(step));
        }
        out.push_str("</pre>");
        if let Some(d) = &r.transcript.divergence {
            out.push_str(&divergence(d));
        }
        out.push_str("</div>");
    }
    if !r.strace.is_empty() {
        out.push_str("<div class=\"strace\"><b>the server's calls while this case ran (strace)</b><pre>");
        for line in &r.strace {
            let _ = writeln!(out, "{}", esc(line));
        }
        out.push_str("</pre></div>");
    }
    out.push_str("</details>\n");
}

/// The page.
pub fn page(report: &Report) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'nonce-{NONCE}'; \
script-src 'nonce-{NONCE}'\">\n",
    );
    let _ = writeln!(
        out,
        "<title>socklab check: {}</title><style nonce=\"{NONCE}\">{STYLE}</style></head><body>",
        esc(&report.target)
    );
    let _ = write!(
        out,
        "<h1>socklab check: <code>{}</code></h1>\n<p class=\"sum\" id=\"summary\">{} passed, {} failed, {} informational, \
{} skipped in {:.1} s (seed {})</p>\n<p><a href=\"#all\" id=\"expand\">expand all</a> · <a href=\"#failed\" \
id=\"collapse\">failed only</a></p>\n",
        esc(&report.target),
        report.passed(),
        report.failed(),
        report.informational(),
        report.skipped(),
        report.seconds,
        report.seed
    );
    let mut group = "";
    for r in &report.results {
        if r.group != group {
            group = r.group;
            let _ = writeln!(out, "<h2>{}</h2>", esc(group));
        }
        case(&mut out, r, report.seed);
    }
    if let Some(server) = &report.server {
        let _ = write!(
            out,
            "<h2>server</h2><p><code>{}</code>, started {} time(s)</p>",
            esc(&server.command),
            server.starts
        );
        if !server.deaths.is_empty() {
            out.push_str("<p>died during:</p><ul>");
            for d in &server.deaths {
                let _ = write!(out, "<li>{}</li>", esc(d));
            }
            out.push_str("</ul>");
        }
        if !server.strace.is_empty() {
            out.push_str("<p>what strace showed:</p><pre>");
            for line in &server.strace {
                let _ = writeln!(out, "{}", esc(line));
            }
            out.push_str("</pre>");
        }
        if !server.stderr.is_empty() {
            let _ = write!(
                out,
                "<details><summary>its stderr (the end)</summary><pre>{}</pre></details>",
                esc(&server.stderr)
            );
        }
    }
    // #all opens every case, #failed only the failed ones; the page works without it too.
    out.push_str(
        "<script nonce=\"socklab-check\">function show(){var all=location.hash=='#all';document.querySelectorAll('details.case')\
.forEach(function(d){d.open=all||d.classList.contains('FAIL')});document.body.dataset.rendered='yes'}\
window.addEventListener('hashchange',show);show();</script>\n</body></html>\n",
    );
    out
}
