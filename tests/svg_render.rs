//! The walkthrough's SVG draws the tutorial's CJK captions (约么? / 约 / 好的) as glyphs even where
//! no CJK font is installed: rendered by headless Chromium, the picture differs from the same
//! picture with those four characters swapped for private-use code points (which no font has:
//! boxes). Without the embedded font, on a machine with no CJK font, the two would be the same
//! boxes. And the README's picture is made by a script, not by the command the README shows.

mod common;

use std::path::Path;
use std::process::Command;

use common::socklab;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|c| common::have(c))
}

/// A PNG of `svg` as Chromium draws it.
fn render(browser: &str, svg: &Path, png: &Path) -> Vec<u8> {
    let status = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=940,2000"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", svg.display()))
        .output()
        .unwrap();
    let image = std::fs::read(png).unwrap_or_else(|e| panic!("{browser} made no screenshot ({e}): {status:?}"));
    assert!(image.starts_with(b"\x89PNG"), "not a PNG");
    image
}

#[test]
fn the_cjk_captions_are_drawn_without_a_cjk_font() {
    let Some(browser) = chromium() else {
        common::skip("chromium is not installed (.ci/run installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("socklab-svg-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("walkthrough.svg");
    let out = socklab().args(["walkthrough", "--accept-delay", "100ms", "--svg"]).arg(&svg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    if !text.contains("约么?") {
        // The captions come from captured segments.
        common::skip("no handshake captured (no CAP_NET_RAW): no captions to render");
        return;
    }
    assert!(text.contains("@font-face") && text.contains("data:font/woff;base64,"), "no embedded font");
    assert!(text.contains("\"Noto Sans CJK SC\"") && text.contains("monospace"), "no fallback list");
    let boxes =
        text.replace('约', "\u{E000}").replace('么', "\u{E001}").replace('好', "\u{E002}").replace('的', "\u{E003}");
    let svg_boxes = dir.join("boxes.svg");
    std::fs::write(&svg_boxes, boxes).unwrap();
    let drawn = render(browser, &svg, &dir.join("drawn.png"));
    let boxed = render(browser, &svg_boxes, &dir.join("boxed.png"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(drawn, boxed, "the CJK captions render like code points no font has (boxes)");
}

/// The book's picture (docs/src/pictures/, made by scripts/docs-pictures.sh; tests/docs.rs runs
/// the script) is the current renderer's, and no documented command overwrites it.
#[test]
fn the_book_picture_is_made_by_a_script_and_its_command_writes_elsewhere() {
    for page in [include_str!("../README.md"), include_str!("../docs/src/handshake.md")] {
        assert!(!page.contains("--svg docs/"), "a documented command overwrites the tracked picture");
    }
    let script = include_str!("../scripts/docs-pictures.sh");
    assert!(script.contains("--svg \"$out/walkthrough.svg\""));
    let picture = include_str!("../docs/src/pictures/walkthrough.svg");
    assert!(picture.contains("@font-face") && picture.contains("约么?"), "the picture is not the script's");
}
