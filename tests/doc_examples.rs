//! Every public type of floors 1-3 and of the fixtures carries a runnable example (a doc-test,
//! run by `cargo test` with the rest), and every `sys` function that makes a system call links its
//! man page on man7.org, as socket2 does. The examples themselves are checked by running them;
//! this test checks that none is missing, that none is hidden from the run (`ignore`, `no_run`,
//! `text`), and that each linked man page exists (when the man pages are installed here).

use std::path::{Path, PathBuf};

/// The files of floors 1-3 and the fixtures.
fn floor_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> =
        ["socket.rs", "process.rs", "file.rs", "error.rs", "tcp.rs", "udp.rs", "unix.rs", "nfqueue.rs"]
            .iter()
            .map(|f| root.join(f))
            .collect();
    for dir in ["sys", "ready", "fixture"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// An item's doc comment: the `///` lines right above it (attributes skipped).
fn doc_above(lines: &[&str], at: usize) -> Vec<String> {
    let mut doc = Vec::new();
    let mut i = at;
    while i > 0 {
        i -= 1;
        let line = lines[i].trim_start();
        if line.starts_with("#[") {
            continue;
        }
        match line.strip_prefix("///") {
            Some(text) => doc.push(text.trim().to_string()),
            None => break,
        }
    }
    doc.reverse();
    doc
}

/// Whether a doc comment holds a code block rustdoc runs.
fn has_runnable_example(doc: &[String]) -> bool {
    doc.iter().any(|l| {
        let Some(info) = l.strip_prefix("```") else { return false };
        !info.is_empty() && info.split(',').all(|w| matches!(w.trim(), "rust" | "standalone_crate"))
            || info.is_empty() && doc.iter().filter(|l| l.starts_with("```")).count() >= 2
    })
}

#[test]
fn every_public_type_of_floors_1_to_3_and_the_fixtures_has_a_runnable_example() {
    let mut missing = Vec::new();
    let mut count = 0;
    for file in floor_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let item = ["pub struct ", "pub enum ", "pub trait "].iter().find_map(|p| line.strip_prefix(p));
            let Some(item) = item else { continue };
            let name: String = item.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            count += 1;
            if !has_runnable_example(&doc_above(&lines, i)) {
                missing.push(format!("{}:{} {name}", file.display(), i + 1));
            }
        }
    }
    println!("{count} public types on floors 1-3 and in the fixtures, each with an example");
    assert!(count >= 40, "only {count} public types found: is the scan still looking at the floors?");
    assert!(missing.is_empty(), "public types without a runnable example:\n{}", missing.join("\n"));
}

/// The body of the function starting at `at`, by brace matching.
fn body(lines: &[&str], at: usize) -> String {
    let mut depth = 0i32;
    let mut out = String::new();
    for line in &lines[at..] {
        out.push_str(line);
        out.push('\n');
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth <= 0 && line.contains('}') || depth == 0 && line.trim_end().ends_with(';') {
            break;
        }
    }
    out
}

/// `(page name, section)` of each man7.org link in `doc`.
fn man_links(doc: &[String]) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for line in doc {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("https://man7.org/linux/man-pages/man") {
            rest = &rest[i + "https://man7.org/linux/man-pages/man".len()..];
            let end = rest.find(".html").unwrap_or(rest.len());
            let (section, page) = rest[..end].split_once('/').unwrap_or(("?", "?"));
            let name = page.strip_suffix(&format!(".{section}")).unwrap_or(page);
            links.push((name.to_string(), section.to_string()));
        }
    }
    links
}

/// Every function in the one-call-per-function files, and every function anywhere in `sys` that
/// makes a call through `syscall!`, links its page.
#[test]
fn every_sys_function_links_its_man_page() {
    const ONE_CALL_FILES: [&str; 11] = [
        "socket.rs",
        "sockopt.rs",
        "fs.rs",
        "process.rs",
        "epoll.rs",
        "poll.rs",
        "fcntl.rs",
        "timer.rs",
        "resource.rs",
        "packet.rs",
        "clock.rs",
    ];
    let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sys");
    let mut missing = Vec::new();
    let mut pages = Vec::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&sys).unwrap() {
        let file = entry.unwrap().path();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed.strip_prefix("pub fn ").or_else(|| trimmed.strip_prefix("pub unsafe fn ")) else {
                continue;
            };
            let makes_call = body(&lines, i).contains("syscall!(") || body(&lines, i).contains("syscall_noreturn!(");
            if !(ONE_CALL_FILES.contains(&name.as_str()) || makes_call) {
                continue;
            }
            count += 1;
            let links = man_links(&doc_above(&lines, i));
            if links.is_empty() {
                let function: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                missing.push(format!("src/sys/{name}:{} {function}", i + 1));
            }
            pages.extend(links);
        }
    }
    println!("{count} sys functions, each linking its man page");
    assert!(count >= 60, "only {count} sys functions found: is the scan still looking at src/sys?");
    assert!(missing.is_empty(), "sys functions without a man7.org link:\n{}", missing.join("\n"));

    // Each page exists, under its own name (not an alias that man7 may lack), where the man
    // pages are installed (Debian: manpages, manpages-dev; io_uring's: liburing-dev).
    let man = Path::new("/usr/share/man");
    if !man.join("man2/socket.2.gz").exists() {
        println!("SKIP the pages' existence: no man pages here (apt-get install manpages manpages-dev liburing-dev)");
        return;
    }
    pages.sort();
    pages.dedup();
    let mut absent = Vec::new();
    for (page, section) in &pages {
        let path = man.join(format!("man{section}/{page}.{section}.gz"));
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_symlink() => {}
            Ok(_) => absent.push(format!("{page}({section}) is an alias: link the page it points to")),
            Err(_) => absent.push(format!("{page}({section}): no {}", path.display())),
        }
    }
    assert!(absent.is_empty(), "{}", absent.join("\n"));
}
