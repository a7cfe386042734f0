//! Floor 4: the timeline as a sequence diagram for a terminal — two lifelines (client, server),
//! each captured segment an arrow between them, each system call beside the lifeline of the
//! process that made it, each observed socket state a label on its side. At most 100 columns;
//! [`render`] draws with Unicode box characters, [`render_ascii`] with ASCII only.
//!
//! The rows come from [`super::ladder`], shared with the SVG view.

use super::Timeline;
use super::ladder::{self, Item, Ladder, to_ascii, width, wrap};
use crate::timeline::Side;

/// Columns of each part of a row: time, client text, client lifeline, arrows, server lifeline,
/// server text. They add up to [`WIDTH`].
const TIME_W: usize = 9;
const LEFT_W: usize = 28;
const ARROW_W: usize = 30;
const RIGHT_W: usize = 29;
/// The widest line drawn.
pub const WIDTH: usize = TIME_W + LEFT_W + 1 + 1 + ARROW_W + 1 + 1 + RIGHT_W;

struct Pen {
    ascii: bool,
}

impl Pen {
    fn life(&self) -> char {
        if self.ascii { '|' } else { '│' }
    }
    fn dash(&self) -> char {
        if self.ascii { '-' } else { '─' }
    }
    fn right(&self) -> char {
        if self.ascii { '>' } else { '▶' }
    }
    fn left(&self) -> char {
        if self.ascii { '<' } else { '◀' }
    }
    fn text(&self, s: &str) -> String {
        if self.ascii { to_ascii(s) } else { s.to_string() }
    }
}

/// The diagram with Unicode lifelines and arrows (the tutorial's words in Chinese).
pub fn render(timeline: &Timeline) -> String {
    draw(&ladder::build(timeline), &Pen { ascii: false })
}

/// The diagram in pure ASCII (the tutorial's words in pinyin with their meaning).
pub fn render_ascii(timeline: &Timeline) -> String {
    draw(&ladder::build(timeline), &Pen { ascii: true })
}

fn pad_right(s: &str, cols: usize) -> String {
    format!("{s}{}", " ".repeat(cols.saturating_sub(width(s))))
}

fn pad_left(s: &str, cols: usize) -> String {
    format!("{}{s}", " ".repeat(cols.saturating_sub(width(s))))
}

/// One line: time, client text, lifeline, middle, lifeline, server text (trailing blanks cut).
fn line(pen: &Pen, time: &str, left: &str, middle: &str, right: &str) -> String {
    let l = pen.life();
    let row = format!(
        "{}{} {l}{}{l} {}",
        pad_right(time, TIME_W),
        pad_left(left, LEFT_W),
        pad_right(middle, ARROW_W),
        pad_right(right, RIGHT_W)
    );
    row.trim_end().to_string()
}

/// `── SYN seq 0 ack 0 ───────────▶` (or pointing left), exactly [`ARROW_W`] columns.
fn arrow(pen: &Pen, from: Side, label: &str) -> String {
    let d = pen.dash();
    let body = format!("{d}{d} {label} ");
    let fill = ARROW_W.saturating_sub(width(&body) + 1);
    let body = format!("{body}{}", d.to_string().repeat(fill));
    if from == Side::Client { format!("{body}{}", pen.right()) } else { format!("{}{body}", pen.left()) }
}

/// `SYN seq 0 ack 0`, `PSH-ACK len 5 seq 1 ack 1`; with several connections (`--clients`) the
/// client's port first (`:41234 SYN`), and seq/ack only if they fit.
fn arrow_label(conn: Option<u16>, flags: &str, seq: u32, ack: u32, len: usize) -> String {
    let mut label = conn.map_or(String::new(), |port| format!(":{port} "));
    label.push_str(flags);
    if len > 0 {
        label.push_str(&format!(" len {len}"));
    }
    let full = format!("{label} seq {seq} ack {ack}");
    // Two dashes, two blanks and the head around it.
    if width(&full) <= ARROW_W - 5 { full } else { label.chars().take(ARROW_W - 5).collect() }
}

/// `[#.....]`: the accept queue's cells (backlog + 1, the most Linux queues one handshake at a
/// time, or more if more were seen waiting), `waiting` filled.
fn queue_cells(pen: &Pen, waiting: u32, backlog: u32) -> String {
    let cells = (backlog + 1).max(waiting).min(12);
    let (full, empty) = if pen.ascii { ('#', '.') } else { ('■', '□') };
    let shown = waiting.min(cells);
    let mut s: String = std::iter::repeat_n(full, shown as usize).collect();
    s.extend(std::iter::repeat_n(empty, (cells - shown) as usize));
    s
}

fn draw(ladder: &Ladder, pen: &Pen) -> String {
    let mut out = Vec::new();
    out.push(pen.text(&format!(
        "Sequence diagram of this session: echo client and server on {} (time: s since start)",
        ladder.server_addr()
    )));
    for c in &ladder.caveats {
        for (i, l) in wrap(&pen.text(c), WIDTH - 2).into_iter().enumerate() {
            out.push(format!("{}{l}", if i == 0 { "! " } else { "  " }));
        }
    }
    out.push(String::new());
    // Each name centred over its lifeline.
    let client_at = TIME_W + LEFT_W + 1;
    let server_at = client_at + 1 + ARROW_W;
    let head = format!("{}client{}server", " ".repeat(client_at - 3), " ".repeat(server_at - client_at - 6));
    out.push(head.trim_end().to_string());
    out.push(line(pen, "", "", "", ""));
    for row in &ladder.rows {
        let time = format!("{:+.4}", row.t);
        let side_text = |side: Side, lines: Vec<String>| -> Vec<(String, String, String)> {
            lines
                .into_iter()
                .map(|l| {
                    if side == Side::Client {
                        (l, String::new(), String::new())
                    } else {
                        (String::new(), String::new(), l)
                    }
                })
                .collect()
        };
        let parts: Vec<(String, String, String)> = match &row.item {
            Item::Call { side, short, .. } => {
                let w = if *side == Side::Client { LEFT_W } else { RIGHT_W };
                side_text(*side, wrap(&pen.text(short), w))
            }
            Item::State { side, role, state, inferred, queue } => {
                let w = if *side == Side::Client { LEFT_W } else { RIGHT_W };
                let text = match queue {
                    Some((waiting, backlog)) => {
                        format!("[LISTEN] queue {} {waiting}/{backlog}", queue_cells(pen, *waiting, *backlog))
                    }
                    None if *inferred && role == "server" => "[conn gone from sock_diag]".to_string(),
                    None if *inferred => format!("[{role} gone from sock_diag]"),
                    None if role == "server" => format!("[conn {state}]"),
                    None if role == "listener" => format!("[listener {state}]"),
                    None => format!("[{state}]"),
                };
                side_text(*side, wrap(&pen.text(&text), w))
            }
            Item::Arrow { from, flags, seq, ack, len, caption, note, conn } => {
                let label = arrow_label(*conn, flags, *seq, *ack, *len);
                let mut parts = vec![(String::new(), arrow(pen, *from, &label), String::new())];
                let words: Vec<String> =
                    [caption.as_deref(), note.as_deref()].into_iter().flatten().map(|s| pen.text(s)).collect();
                let w = if *from == Side::Client { LEFT_W } else { RIGHT_W };
                let said = wrap(&words.join(" - "), w);
                for (i, l) in said.into_iter().enumerate().filter(|_| !words.is_empty()) {
                    if i >= parts.len() {
                        parts.push((String::new(), String::new(), String::new()));
                    }
                    if *from == Side::Client { parts[i].0 = l } else { parts[i].2 = l }
                }
                parts
            }
            Item::Note(n) => wrap(&pen.text(&format!("note: {n}")), ARROW_W - 2)
                .into_iter()
                .map(|l| (String::new(), format!(" {l}"), String::new()))
                .collect(),
        };
        for (i, (left, middle, right)) in parts.iter().enumerate() {
            out.push(line(pen, if i == 0 { &time } else { "" }, left, middle, right));
        }
    }
    out.push(line(pen, "", "", "", ""));
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_add_up_to_100_columns() {
        assert_eq!(WIDTH, 100);
        let pen = Pen { ascii: false };
        assert_eq!(width(&arrow(&pen, Side::Client, "SYN seq 0 ack 0")), ARROW_W);
        assert_eq!(width(&arrow(&pen, Side::Server, "SYN-ACK")), ARROW_W);
    }
}
