//! `unsafe` stays in `src/sys/`. The compiler enforces it (`#![deny(unsafe_code)]` on the crate
//! roots, `#[allow(unsafe_code)]` on `sys` alone); this test guards the guard — it fails if the
//! attributes go, or if an `unsafe` keyword appears outside `src/sys/` — and prints the count
//! of unsafe blocks per file, the number the README quotes.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Occurrences of the keyword `unsafe` in code (comments and the lint name `unsafe_code` do not count).
fn unsafe_keywords(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("unsafe") {
            let before = rest[..i].chars().next_back();
            let after = rest[i + 6..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !ident(before) && !ident(after) && !rest[..i].contains('"') {
                found.push((n + 1, line.trim().to_string()));
            }
            rest = &rest[i + 6..];
        }
    }
    found
}

#[test]
fn unsafe_only_in_src_sys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let sys = root.join("src").join("sys");
    let mut total = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let hits = unsafe_keywords(&text);
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        if file.starts_with(&sys) {
            let safety_comments = text.matches("// SAFETY:").count();
            let blocks = hits.iter().filter(|(_, l)| l.contains("unsafe {") || l.ends_with("unsafe")).count();
            if !hits.is_empty() {
                eprintln!("{shown}: {} unsafe ({blocks} blocks), {safety_comments} SAFETY comments", hits.len());
            }
            total += hits.len();
        } else {
            assert!(hits.is_empty(), "unsafe outside src/sys/ in {shown}: {hits:?}");
        }
    }
    eprintln!("total: {total} uses of unsafe, all in src/sys/");
    assert!(total > 0, "the scan found no unsafe at all in src/sys: is it scanning the right tree?");

    let lib = fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"), "src/lib.rs lost #![deny(unsafe_code)]");
    assert!(lib.contains("#[allow(unsafe_code)]\npub mod sys;"), "only `sys` may be allow(unsafe_code)");
    let allows = lib.lines().filter(|l| !l.trim_start().starts_with("//") && l.contains("allow(unsafe_code)")).count();
    assert_eq!(allows, 1, "allow(unsafe_code) outside `pub mod sys`");
    let main = fs::read_to_string(root.join("src/main.rs")).unwrap();
    assert!(main.contains("#![deny(unsafe_code)]"), "src/main.rs lost #![deny(unsafe_code)]");
    let sys_mod = fs::read_to_string(sys.join("mod.rs")).unwrap();
    assert!(sys_mod.contains("clippy::undocumented_unsafe_blocks"), "sys must require SAFETY comments");
}

#[test]
fn the_scanner_sees_what_it_should() {
    assert_eq!(unsafe_keywords("let x = unsafe { f() };").len(), 1);
    assert_eq!(unsafe_keywords("unsafe fn f() {}").len(), 1);
    assert!(unsafe_keywords("#![deny(unsafe_code)]").is_empty());
    assert!(unsafe_keywords("// unsafe in a comment").is_empty());
    assert!(unsafe_keywords("let s = \"unsafe\";").is_empty());
}
