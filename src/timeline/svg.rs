//! Floor 4: the sequence diagram as a standalone SVG picture — black on white, no scripts, nothing
//! fetched, so it prints and opens anywhere. Text is `monospace`, except the four CJK characters
//! of the tutorial's handshake words (约 么 好 的): those come from a font embedded in the picture
//! (`@font-face` with a `data:` URL: a 2.7 kB subset of Noto Sans Mono CJK SC Bold, SIL Open Font
//! License, made by `scripts/make-cjk-subset.sh`), then from a fallback list of common CJK fonts,
//! so they are drawn, not boxes, even where no CJK font is installed.
//!
//! Drawn from [`super::ladder`]'s rows, like the terminal diagram: each captured segment an arrow
//! (`<g class="segment">`, in captured order), the tutorial's handshake words (C: 约么? / S: 约 /
//! C: 好的) as captions on SYN, SYN-ACK and ACK, system calls beside their lifeline, observed
//! states as labels, and the listener's accept queue as a row of cells (backlog + 1, the most
//! Linux queues) filled with the connections sock_diag saw waiting (Recv-Q).
//!
//! Time runs down. Rows are spaced by their real time gaps, compressed (logarithmically, so a
//! microsecond handshake and a one-second accept delay both fit); a gap longer than 5 ms is
//! marked with its length. Arrows are placed at the kernel's capture time and slanted by a fixed
//! amount only to show their direction (on lo, sending and arriving are the same microsecond).

use std::fmt::Write as _;

use super::ladder::{self, Item, Ladder, width, wrap};
use super::{Side, Timeline};

const W: f64 = 940.0;

/// The handshake captions' CJK characters: the embedded font holds exactly these.
const CJK: [char; 4] = ['约', '么', '好', '的'];

/// The embedded subset (see the module doc), base64 in lines of 100.
const CJK_WOFF_B64: &str = include_str!("tutorial-cjk.woff.b64");

/// The font list: the embedded subset (for its four characters only), monospace for the rest,
/// then CJK fonts common on Linux, macOS and Windows should a viewer ignore the embedded one.
const FONTS: &str = "socklab-tutorial-cjk, monospace, \"Noto Sans Mono CJK SC\", \"Noto Sans CJK SC\", \
    \"WenQuanYi Micro Hei\", \"Source Han Sans SC\", \"PingFang SC\", \"Hiragino Sans GB\", \"Microsoft YaHei\", \
    \"SimHei\", sans-serif";

/// The `@font-face` rule of the embedded subset.
fn cjk_font_face() -> String {
    let data: String = CJK_WOFF_B64.split_whitespace().collect();
    let range: Vec<String> = CJK.iter().map(|c| format!("U+{:04X}", *c as u32)).collect();
    format!(
        "@font-face {{ font-family: socklab-tutorial-cjk; font-weight: normal bold; unicode-range: {}; \
         src: url(data:font/woff;base64,{data}) format(\"woff\"); }}\n",
        range.join(", ")
    )
}
const CLIENT_X: f64 = 350.0;
const SERVER_X: f64 = 610.0;
const TEXT_GAP: f64 = 10.0;
/// Characters of 11 px monospace that fit beside a lifeline.
const SIDE_CHARS: usize = 40;
const MIDDLE_CHARS: usize = 36;
const LINE: f64 = 13.0;
const SLANT: f64 = 10.0;

/// The diagram as an SVG document.
pub fn render(timeline: &Timeline) -> String {
    draw(&ladder::build(timeline))
}

/// `s` with XML's special characters escaped (text and attribute values alike).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn cut(s: &str, chars: usize) -> String {
    if width(s) <= chars {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if width(&out) + 4 > chars {
            break;
        }
        out.push(c);
    }
    out.push_str("...");
    out
}

/// Vertical room for a time gap: a little for microseconds, more (logarithmically) for longer.
fn gap_px(seconds: f64) -> f64 {
    let us = (seconds * 1e6).max(0.0);
    if us <= 10.0 { 0.0 } else { (8.0 * (us / 10.0).log10()).min(40.0) }
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = writeln!(out, r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}">{}</text>"#, escape(s));
}

fn side_x(side: Side) -> (f64, &'static str) {
    if side == Side::Client { (CLIENT_X - TEXT_GAP, "end") } else { (SERVER_X + TEXT_GAP, "start") }
}

fn draw(ladder: &Ladder) -> String {
    let mut body = String::new();
    let mut y = 24.0;
    let title = format!("socklab walkthrough: echo client and server on {}", ladder.server_addr());
    text(&mut body, 12.0, y, "start", "title", &title);
    y += 16.0;
    let legend = "time runs down (s since start; gaps compressed, long ones marked); arrows: segments captured on lo, \
                  in captured order, placed at capture time (slant shows direction only)";
    for l in wrap(legend, 140) {
        text(&mut body, 12.0, y, "start", "small", &l);
        y += LINE;
    }
    for c in &ladder.caveats {
        for (i, l) in wrap(c, 136).into_iter().enumerate() {
            text(&mut body, 12.0, y, "start", "caveat", &format!("{}{l}", if i == 0 { "! " } else { "  " }));
            y += LINE;
        }
    }
    y += 12.0;
    let top = y;
    for (x, name) in [(CLIENT_X, "client"), (SERVER_X, "server")] {
        let _ = writeln!(body, r#"<rect x="{:.1}" y="{top:.1}" width="80" height="22" class="box"/>"#, x - 40.0);
        text(&mut body, x, top + 15.0, "middle", "head", name);
    }
    y = top + 40.0;
    let mut last_t: Option<f64> = None;
    for row in &ladder.rows {
        if let Some(prev) = last_t {
            let gap = row.t - prev;
            y += gap_px(gap);
            if gap > 0.005 {
                let label = if gap >= 1.0 { format!("{gap:.2} s later") } else { format!("{:.0} ms later", gap * 1e3) };
                let _ = writeln!(
                    body,
                    r#"<line x1="60" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="gap"/>"#,
                    y - 6.0,
                    W - 12.0,
                    y - 6.0
                );
                text(&mut body, 64.0, y - 9.0, "start", "small", &format!("≈ {label}"));
                y += 8.0;
            }
        }
        last_t = Some(row.t);
        let time = format!("{:+.6}", row.t);
        match &row.item {
            Item::Call { side, short, line } => {
                y += LINE;
                let (x, anchor) = side_x(*side);
                text(&mut body, 12.0, y, "start", "time", &time);
                let _ = writeln!(
                    body,
                    r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="call"><title>{}</title>{}</text>"#,
                    escape(line),
                    escape(&cut(short, SIDE_CHARS))
                );
            }
            Item::State { side, role, state, inferred, queue } => {
                y += LINE + 3.0;
                let (x, anchor) = side_x(*side);
                text(&mut body, 12.0, y, "start", "time", &time);
                match queue {
                    Some((waiting, backlog)) => {
                        let label = format!("accept queue {waiting} (backlog {backlog})");
                        text(&mut body, x, y, anchor, "state", &label);
                        // backlog + 1 cells, or more if more were seen waiting.
                        let cells = (backlog + 1).max(*waiting).min(40);
                        let x0 = x + 8.0 + 6.6 * width(&label) as f64;
                        let _ =
                            writeln!(body, r#"<g class="queue" data-waiting="{waiting}" data-backlog="{backlog}">"#);
                        for i in 0..cells {
                            let fill = if i < *waiting { "full" } else { "empty" };
                            let _ = writeln!(
                                body,
                                r#"<rect x="{:.1}" y="{:.1}" width="8" height="10" class="{fill}"/>"#,
                                x0 + 9.0 * f64::from(i),
                                y - 9.0
                            );
                        }
                        let _ = writeln!(body, "</g>");
                    }
                    None => {
                        let label = if *inferred {
                            format!("{role}: gone from sock_diag")
                        } else if role == "client" {
                            state.clone()
                        } else {
                            format!("{role}: {state}")
                        };
                        text(&mut body, x, y, anchor, "state", &format!("[{label}]"));
                    }
                }
            }
            Item::Arrow { from, flags, seq, ack, len, caption, note, conn } => {
                let said: Vec<String> = note.iter().flat_map(|n| wrap(n, SIDE_CHARS)).collect();
                y += LINE + 12.0;
                let (x1, x2) = if *from == Side::Client { (CLIENT_X, SERVER_X) } else { (SERVER_X, CLIENT_X) };
                let (y1, y2) = (y - SLANT, y);
                text(&mut body, 12.0, y, "start", "time", &time);
                let _ = writeln!(
                    body,
                    r#"<g class="segment" data-from="{}" data-flags="{}" data-seq="{seq}" data-ack="{ack}" data-len="{len}"{}>"#,
                    from.name(),
                    escape(flags),
                    conn.map_or(String::new(), |p| format!(r#" data-client-port="{p}""#))
                );
                let _ = writeln!(body, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" class="arrow"/>"#);
                // The head: a triangle along the line's direction.
                let (dx, dy) = (x2 - x1, y2 - y1);
                let norm = (dx * dx + dy * dy).sqrt();
                let (ux, uy) = (dx / norm, dy / norm);
                let (bx, by) = (x2 - 9.0 * ux, y2 - 9.0 * uy);
                let _ = writeln!(
                    body,
                    r#"<polygon points="{x2:.1},{y2:.1} {:.1},{:.1} {:.1},{:.1}" class="head"/>"#,
                    bx - 4.0 * uy,
                    by + 4.0 * ux,
                    bx + 4.0 * uy,
                    by - 4.0 * ux
                );
                let mut label = conn.map_or(String::new(), |p| format!("client :{p}  "));
                label.push_str(flags);
                if *len > 0 {
                    label.push_str(&format!(" len {len}"));
                }
                label.push_str(&format!("  seq {seq} ack {ack}"));
                text(&mut body, (x1 + x2) / 2.0, y - SLANT / 2.0 - 5.0, "middle", "label", &cut(&label, MIDDLE_CHARS));
                let (sx, anchor) = side_x(*from);
                let mut ly = y - SLANT / 2.0;
                if let Some(c) = caption {
                    text(&mut body, sx, ly, anchor, "caption", c);
                    ly += LINE + 2.0;
                }
                for l in &said {
                    text(&mut body, sx, ly, anchor, "small", l);
                    ly += LINE;
                }
                let _ = writeln!(body, "</g>");
                y = y.max(ly - LINE);
            }
            Item::Note(n) => {
                text(&mut body, 12.0, y + LINE, "start", "time", &time);
                for l in wrap(&format!("note: {n}"), MIDDLE_CHARS) {
                    y += LINE;
                    text(&mut body, (CLIENT_X + SERVER_X) / 2.0, y, "middle", "note", &l);
                }
            }
        }
    }
    let bottom = y + 20.0;
    let mut out = String::new();
    let height = bottom + 12.0;
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W:.0}" height="{height:.0}" viewBox="0 0 {W:.0} {height:.0}">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    let _ = writeln!(
        out,
        "<style>\n{}text {{ font-family: {FONTS}; font-size: 11px; fill: #000; }}\n\
         .title {{ font-size: 14px; font-weight: bold; }}\n.head, .full {{ fill: #000; }}\n\
         .small, .time, .note {{ font-size: 10px; }}\n.note {{ font-style: italic; }}\n\
         .caption {{ font-size: 13px; font-weight: bold; }}\n.state {{ font-weight: bold; }}\n\
         .caveat {{ font-size: 11px; font-weight: bold; }}\n\
         .life, .arrow {{ stroke: #000; stroke-width: 1.2; }}\n.life {{ stroke-dasharray: 4 3; }}\n\
         .gap {{ stroke: #000; stroke-width: 0.5; stroke-dasharray: 2 4; }}\n\
         .box, .empty {{ fill: #fff; stroke: #000; }}\n.full {{ stroke: #000; }}\n</style>",
        if body.contains(CJK) { cjk_font_face() } else { String::new() }
    );
    let _ = writeln!(out, r##"<rect x="0" y="0" width="{W:.0}" height="{height:.0}" fill="#fff"/>"##);
    for x in [CLIENT_X, SERVER_X] {
        let _ =
            writeln!(out, r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" class="life"/>"#, top + 22.0);
    }
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;?");
        assert_eq!(cut("abcdefghij", 6), "abc...");
        assert_eq!(gap_px(0.000_001), 0.0);
        assert!(gap_px(1.0) <= 40.0);
    }
}
