//! The sequence diagrams (`walkthrough --diagram`, `--svg`, `socklab draw`) of recorded sessions:
//! a saved `--json` session reads back losslessly, the terminal diagram matches its committed
//! snapshot, `--ascii` is pure ASCII within 100 columns, and the SVG is well-formed XML with one
//! arrow per captured segment, in the captured order.
//!
//! The fixtures are real sessions recorded with `socklab walkthrough --json --accept-delay 100ms`
//! (`session-no-capture.jsonl` without CAP_NET_RAW; the binary's path in its message shortened).
//! To refresh the snapshots after a deliberate change of the drawing: `UPDATE_SNAPSHOTS=1 cargo
//! test --test diagram`, then review the diff.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, socklab};
use socklab::timeline::json::{self, Value};
use socklab::timeline::{diagram, jsonl, svg};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn matches_snapshot(drawn: &str, name: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(fixture(name), drawn).unwrap();
        return;
    }
    let want = read(name);
    if drawn != want {
        let first = drawn.lines().zip(want.lines()).position(|(a, b)| a != b);
        panic!(
            "the diagram differs from tests/fixtures/{name} (first differing line: {first:?}); \
             if the change is intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff\n{drawn}"
        );
    }
}

/// (from, flags) of every segment line of a saved session, in order.
fn segments_of(session: &str) -> Vec<(String, String)> {
    session
        .lines()
        .map(|l| json::parse(l).unwrap())
        .filter(|v| v.get("source").and_then(Value::as_str) == Some("segment"))
        .map(|v| {
            let s = |k| v.get(k).and_then(Value::as_str).unwrap().to_string();
            (s("from"), s("flags"))
        })
        .collect()
}

#[test]
fn a_saved_session_reads_back_without_loss() {
    for name in ["session.jsonl", "session-no-capture.jsonl"] {
        let saved = read(name);
        let timeline = jsonl::read(&saved).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(jsonl::render(&timeline), saved, "{name} does not round-trip");
    }
    let timeline = jsonl::read(&read("session.jsonl")).unwrap();
    assert_ne!(timeline.port, 0);
    assert_eq!(timeline.server_addr().to_string(), format!("127.0.0.1:{}", timeline.port));
    // A session saved before walkthroughs had --host has no "host": it was 127.0.0.1.
    let older = read("session.jsonl").replacen("\"host\": \"127.0.0.1\", ", "", 1);
    assert_eq!(jsonl::read(&older).unwrap().host, timeline.host);
    // An IPv6 session names its server [::1]:PORT in the diagram's title.
    let v6 = read("session.jsonl").replacen("\"host\": \"127.0.0.1\"", "\"host\": \"::1\"", 1);
    let v6 = jsonl::read(&v6).unwrap();
    assert!(jsonl::render(&v6).lines().next().unwrap().contains("\"host\": \"::1\""));
    assert!(diagram::render_ascii(&v6).contains(&format!("echo client and server on [::1]:{}", v6.port)));
    assert!(timeline.capture_error.is_none());
    let timeline = jsonl::read(&read("session-no-capture.jsonl")).unwrap();
    assert!(timeline.capture_error.unwrap().contains("CAP_NET_RAW"));
}

#[test]
fn what_is_not_a_session_is_refused_with_its_line() {
    let bad = "{\"t\": 0.0, \"source\": \"note\", \"text\": \"ok\"}\n{\"t\": 1.0, \"source\": \"segment\"}\n";
    let err = jsonl::read(bad).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert!(jsonl::read("not json\n").is_err());
    assert!(jsonl::read("{\"t\": 0.0, \"source\": \"telepathy\"}\n").is_err());
    let out = socklab().args(["draw", "Cargo.toml"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a saved `walkthrough --json` session") && stderr.contains("line 1"), "{stderr}");
}

#[test]
fn the_terminal_diagram_matches_its_snapshot() {
    let timeline = jsonl::read(&read("session.jsonl")).unwrap();
    matches_snapshot(&diagram::render(&timeline), "session.diagram.txt");
    matches_snapshot(&diagram::render_ascii(&timeline), "session.diagram-ascii.txt");
    let timeline = jsonl::read(&read("session-no-capture.jsonl")).unwrap();
    matches_snapshot(&diagram::render_ascii(&timeline), "session-no-capture.diagram-ascii.txt");
}

#[test]
fn socklab_draw_prints_the_same_diagram() {
    let session = fixture("session.jsonl");
    let out = socklab().arg("draw").arg(&session).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), read("session.diagram.txt"));

    let out = socklab().arg("draw").arg(&session).arg("--ascii").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), read("session.diagram-ascii.txt"));
}

#[test]
fn ascii_is_ascii_and_everything_fits_100_columns() {
    for name in ["session.jsonl", "session-no-capture.jsonl"] {
        let timeline = jsonl::read(&read(name)).unwrap();
        let ascii = diagram::render_ascii(&timeline);
        assert!(ascii.is_ascii(), "{name}: --ascii drew a non-ASCII character");
        for line in ascii.lines() {
            assert!(line.len() <= 100, "{name}: {} columns: {line}", line.len());
        }
        // The Unicode drawing fits too, counting East Asian wide characters as two columns.
        for line in diagram::render(&timeline).lines() {
            let cols = socklab::timeline::ladder::width(line);
            assert!(cols <= 100, "{name}: {cols} columns: {line}");
        }
    }
}

#[test]
fn every_word_true_without_a_capture() {
    let timeline = jsonl::read(&read("session-no-capture.jsonl")).unwrap();
    let drawn = diagram::render_ascii(&timeline);
    assert!(drawn.contains("segments not captured: needs CAP_NET_RAW"), "{drawn}");
    assert!(
        !drawn.contains("SYN seq") && !drawn.contains("ACK seq"),
        "an arrow was drawn that was never captured:\n{drawn}"
    );
    let picture = svg::render(&timeline);
    assert!(picture.contains("segments not captured: needs CAP_NET_RAW"));
    assert!(!picture.contains("class=\"segment\""));
    // Only states sock_diag reported are drawn: never one that is not in the session.
    let timeline = jsonl::read(&read("session.jsonl")).unwrap();
    let seen: Vec<String> = read("session.jsonl")
        .lines()
        .filter_map(|l| json::parse(l).ok()?.get("state")?.as_str().map(str::to_string))
        .collect();
    let drawn = diagram::render(&timeline);
    for state in ["SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "TIME-WAIT", "ESTAB"] {
        assert_eq!(
            drawn.contains(&format!("[{state}]")) || drawn.contains(&format!(" {state}]")),
            seen.iter().any(|s| s == state),
            "{state}"
        );
    }
}

/// Runs python3's XML parser on `path` and prints (from, flags) of each `<g class="segment">`,
/// one per line, in document order; None when python3 is missing.
fn svg_arrows(path: &Path) -> Option<Vec<(String, String)>> {
    if !have("python3") {
        return None;
    }
    let script = "import sys, xml.etree.ElementTree as E\n\
                  root = E.parse(sys.argv[1]).getroot()\n\
                  assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag\n\
                  for g in root.iter('{http://www.w3.org/2000/svg}g'):\n\
                  \x20   if g.get('class') == 'segment': print(g.get('data-from'), g.get('data-flags'))\n";
    let out = Command::new("python3").arg("-c").arg(script).arg(path).output().unwrap();
    assert!(out.status.success(), "the SVG is not well-formed XML: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                (a.to_string(), b.to_string())
            })
            .collect(),
    )
}

/// What the SVG must not need: scripts, external fonts, links, anything fetched. The one
/// `@font-face` allowed is the embedded one (a `data:` URL: nothing fetched).
fn assert_standalone(picture: &str) {
    let embedded = |l: &&str| {
        l.starts_with("@font-face { font-family: socklab-tutorial-cjk;")
            && l.contains("src: url(data:font/woff;base64,")
            && l.matches("url(").count() == 1
    };
    let rest: Vec<&str> = picture.lines().filter(|l| !embedded(l)).collect();
    let picture = &rest.join("\n");
    for banned in ["<script", "href", "@import", "url(", "@font-face", "<image", "<foreignObject"] {
        assert!(!picture.contains(banned), "the SVG has {banned}");
    }
    let http: Vec<&str> =
        picture.match_indices("http").map(|(i, _)| &picture[i..(i + 30).min(picture.len())]).collect();
    assert!(http.iter().all(|h| h.starts_with("http://www.w3.org/2000/svg")), "{http:?}");
}

#[test]
fn socklab_draw_writes_a_well_formed_svg_with_one_arrow_per_segment() {
    let dir = std::env::temp_dir().join(format!("socklab-diagram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["session.jsonl", "session-no-capture.jsonl"] {
        let out_path = dir.join(format!("{name}.svg"));
        let out = socklab().arg("draw").arg(fixture(name)).arg("--svg").arg(&out_path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
        let picture = std::fs::read_to_string(&out_path).unwrap();
        assert_standalone(&picture);
        // The tutorial's three lines caption the handshake when it was captured.
        let captured = segments_of(&read(name));
        if !captured.is_empty() {
            for words in ["C: 约么?", "S: 约", "C: 好的"] {
                assert!(picture.contains(words), "{words} missing");
            }
            assert!(picture.contains("class=\"queue\" data-waiting=\"1\" data-backlog=\"5\""), "no queue of 1 drawn");
        }
        match svg_arrows(&out_path) {
            Some(arrows) => assert_eq!(arrows, captured, "{name}: the SVG's arrows are not the captured segments"),
            None => common::skip("the XML parse: python3 is not installed"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
