//! The README and the book work as written: every shell block in them is either run here or says
//! why not, and every block that shows output is compared with a real run.
//!
//! A block is marked by the HTML comment on the line before its fence (invisible once rendered):
//!
//! - `<!-- run -->` before a ```` ```sh ```` block: the block runs as a bash script (`set -euo
//!   pipefail`) and must exit 0.
//! - `<!-- run: compare [exact|head|excerpt|calls] -->` before a ```` ```console ```` block: the lines
//!   starting with `$ ` are commands, run in order in one bash; every other line is output, compared
//!   with what the commands printed (stdout and stderr together, as a terminal shows them) after one
//!   normalisation (ports, pids, times, temporary names). `exact` (the default): line for line;
//!   `head`: the block ends with `...` and shows the start; `excerpt`: the shown lines appear in
//!   order, others between them; `calls`: a walkthrough's calls, per process, by name and count.
//!   A command ending in `&` runs in the background (its output is not shown), and the next
//!   command starts once it has printed its first line; `kill -INT %1` is Ctrl-C for it (job
//!   control is on, so the signal goes to the job's process group, as a terminal's would).
//! - `<!-- run: ci -->` before the GitHub Actions ```` ```yaml ```` block: its `run:` script runs
//!   end to end, the user's own test command stood in for by a real client.
//! - `<!-- not run: WHY -->`: shown, not run (building, installing, the suite itself).
//!
//! Every block runs in a fresh directory, with the `socklab` under test first on PATH (so
//! `cargo run --release --` and `target/release/socklab` become `socklab`), as root inside a
//! network namespace of its own (`unshare --net`, loopback up) so fixed ports such as 5000 never
//! meet another test's; `sudo` is dropped as root, and a block needing root is skipped otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How one block is checked.
#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Run,
    Compare(Mode),
    Ci,
    NotRun(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Exact,
    Head,
    Excerpt,
    Calls,
}

#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    lang: String,
    marker: Option<Marker>,
    body: Vec<String>,
}

/// The fence languages that hold commands: each such block must be marked.
const SHELL_LANGS: [&str; 5] = ["sh", "bash", "shell", "console", "yaml"];

fn parse_marker(comment: &str) -> Option<Marker> {
    let inner = comment.trim().strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    if let Some(why) = inner.strip_prefix("not run:") {
        return Some(Marker::NotRun(why.trim().to_string()));
    }
    match inner.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["run"] => Some(Marker::Run),
        ["run:", "ci"] => Some(Marker::Ci),
        ["run:", "compare"] | ["run:", "compare", "exact"] => Some(Marker::Compare(Mode::Exact)),
        ["run:", "compare", "head"] => Some(Marker::Compare(Mode::Head)),
        ["run:", "compare", "excerpt"] => Some(Marker::Compare(Mode::Excerpt)),
        ["run:", "compare", "calls"] => Some(Marker::Compare(Mode::Calls)),
        _ => None,
    }
}

fn blocks(file: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = lang.trim().to_string();
        let marker = (i > 0).then(|| parse_marker(lines[i - 1])).flatten();
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push(lines[i].to_string());
            i += 1;
        }
        i += 1;
        out.push(Block { file: file.to_string(), line: start + 1, lang, marker, body });
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every chapter of the book.
fn documents() -> Vec<(String, String)> {
    let mut docs = vec![("README.md".to_string(), std::fs::read_to_string(repo().join("README.md")).unwrap())];
    let src = repo().join("docs/src");
    if let Ok(dir) = std::fs::read_dir(&src) {
        let mut chapters: Vec<PathBuf> =
            dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
        chapters.sort();
        for path in chapters {
            let name = format!("docs/src/{}", path.file_name().unwrap().to_string_lossy());
            docs.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    docs
}

fn is_root() -> bool {
    // SAFETY-free: the effective uid, as `id -u` prints it.
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// The commands as the test runs them: the binary under test for every spelling of socklab.
fn rewrite(command: &str) -> String {
    let mut c = command.replace("cargo run --release -- ", "socklab ").replace("target/release/socklab", "socklab");
    if let Some(rest) = c.strip_prefix("sudo ") {
        c = rest.to_string();
    }
    c
}

/// Why a block cannot run here, if it cannot.
fn cannot_run(text: &str) -> Option<String> {
    let needs_root = text.contains("sudo ") || text.contains("socklab netns") || text.contains("walkthrough");
    if needs_root && !is_root() {
        return Some("needs root (sudo, netns or a walkthrough's capture)".into());
    }
    for tool in ["strace", "ss", "nft", "tcpdump"] {
        if text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').any(|w| w == tool) && !common::have(tool) {
            return Some(format!("needs {tool}"));
        }
    }
    None
}

/// Runs `script` with bash in a fresh directory (inside a network namespace of its own when root),
/// killing it after `limit`. Returns its exit code and everything it printed.
fn run_bash(script: &str, limit: Duration) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("socklab-docs-{}-{}", std::process::id(), next_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_socklab")).parent().unwrap().to_path_buf();
    let prelude = format!(
        r#"export PATH="{bin}:$PATH" SOCKLAB_REPO="{repo}"
set -m
started() {{ for _ in $(seq 500); do [ -s "$1" ] && return 0; sleep 0.02; done; echo "background command printed nothing in 10 s" >&2; return 1; }}
stop_jobs() {{ status=$?; set +em; for p in $(jobs -p); do kill -INT -- -"$p" 2>/dev/null; done; wait; exit $status; }}
trap stop_jobs EXIT
# Descriptors the test's own parent left open would shift every fd the block's commands are given
# (a new user's shell has only 0, 1 and 2); 255 is bash's own copy of this script.
for fd in /proc/$$/fd/*; do fd=${{fd##*/}}; case $fd in 0|1|2|255) ;; *) eval "exec $fd>&-" 2>/dev/null || true;; esac; done
"#,
        bin = bin.display(),
        repo = repo().display()
    );
    let file = dir.join("block.sh");
    std::fs::write(&file, format!("{prelude}{script}\n")).unwrap();
    let out_path = dir.join(".out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut cmd = if is_root() && common::have("unshare") && common::have("ip") {
        let mut c = Command::new("unshare");
        c.args(["--net", "bash", "-c", "ip link set lo up && exec bash \"$0\""]).arg(&file);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg(&file);
        c
    };
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    (status, text)
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The digits right after each `prefix` in `text`, replaced by `word`.
fn digits_after(text: &str, prefix: &str, word: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let after = i + prefix.len();
        let digits = rest[after..].find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len() - after);
        out.push_str(&rest[..after]);
        if digits > 0 {
            out.push_str(word);
        }
        rest = &rest[after + digits..];
    }
    out.push_str(rest);
    out
}

/// Ports, pids, times, pointers and temporary names are whatever this run got; everything else
/// must match.
fn normal(line: &str) -> String {
    // Runs of spaces are one (strace pads `[pid  123]` and aligns `= 0`).
    let mut text = common::decode_timeo(&line.split_whitespace().collect::<Vec<_>>().join(" "));
    // `strace -f -o FILE`'s lines start with the task's id; a fork's or clone's result is one.
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
    if digits > 0 && text[digits..].starts_with(' ') {
        text.replace_range(..digits, "PID");
    }
    if text.contains("clone(") || text.contains("clone3(") || text.contains("wait4(") {
        if let Some(eq) = text.rfind(") = ") {
            if text[eq + 4..].trim().chars().all(|c| c.is_ascii_digit()) {
                text.replace_range(eq + 4.., "PID");
            }
        }
    }
    for (prefix, word) in [
        ("htons(", "PORT"),
        ("listening ", "PORT"),
        ("[pid ", "PID"),
        ("pid ", "PID"),
        ("pid=", "PID"),
        ("socklab-walkthrough-", "N"),
        ("wait4(", "PID"),
    ] {
        text = digits_after(&text, prefix, word);
    }
    // `127.0.0.1:41946` → `127.0.0.1:PORT`.
    let mut from = 0;
    while let Some(i) = text[from..].find(':').map(|i| from + i) {
        let end = text[i + 1..].find(|c: char| !c.is_ascii_digit()).map_or(text.len(), |e| i + 1 + e);
        if end > i + 1 && text[..i].ends_with(|c: char| c.is_ascii_digit() || c == ']') {
            text.replace_range(i + 1..end, "PORT");
        }
        from = i + 1;
    }
    // Pointers: `0x7ffe5356c2d0` → `0xADDR`.
    let mut from = 0;
    while let Some(i) = text[from..].find("0x").map(|i| from + i) {
        let end = text[i + 2..].find(|c: char| !c.is_ascii_hexdigit()).map_or(text.len(), |e| i + 2 + e);
        if end - (i + 2) >= 8 {
            text.replace_range(i + 2..end, "ADDR");
        }
        from = i + 2;
    }
    // Measured fractions (`rtt 0.028/0.014 ms`, `1.5 ms after`): `N.N`.
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() && !prev.is_ascii_alphanumeric() && prev != '+' {
            let mut number = c.to_string();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                number.push(d);
                chars.next();
            }
            let fraction = number.split('.').count() == 2 && !number.ends_with('.');
            out.push_str(if fraction { "N.N" } else { &number });
            prev = '0';
            continue;
        }
        out.push(c);
        prev = c;
    }
    text = out;
    // `+1.031504` at the start of a walkthrough line.
    if text.starts_with('+') && text[1..].starts_with(|c: char| c.is_ascii_digit()) {
        if let Some(sp) = text.find(' ') {
            text.replace_range(..sp, "+T");
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A walkthrough's calls per process, by name, sorted: threads interleave differently from run to
/// run, and segments and samples depend on timing.
fn calls(lines: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| {
            let mut words = l.splitn(3, ' ');
            let (_, who, rest) = (words.next()?, words.next()?, words.next()?);
            matches!(who, "server" | "client")
                .then(|| (who.to_string(), rest.split('(').next().unwrap_or("").to_string()))
        })
        .collect();
    out.sort();
    out
}

/// A line that starts a job (`server &  # comment`) waits, as a reader would, until the job has
/// printed its first line; its output is kept apart.
fn background(line: &str, n: usize) -> String {
    let code = line.split(" #").next().unwrap_or("").trim_end();
    match code.strip_suffix('&') {
        Some(job) if !job.trim_end().ends_with('&') => format!("{job} > .job{n} 2>&1 &\nstarted .job{n}"),
        _ => line.to_string(),
    }
}

/// Checks one block; `Err` says what differs.
fn check(block: &Block) -> Result<(), String> {
    let Some(marker) = &block.marker else { return Ok(()) };
    let text = block.body.join("\n");
    if matches!(marker, Marker::NotRun(_)) {
        return Ok(());
    }
    if let Some(why) = cannot_run(&text) {
        common::skip(&format!("{}:{}: {why}", block.file, block.line));
        return Ok(());
    }
    let limit = Duration::from_secs(90);
    match marker {
        Marker::NotRun(_) => Ok(()),
        Marker::Run => {
            let script: Vec<String> = block.body.iter().enumerate().map(|(i, l)| background(&rewrite(l), i)).collect();
            // `set -x`: a failure shows which command it was (each command is printed before it runs).
            let (code, out) = run_bash(&format!("set -euxo pipefail\n{}", script.join("\n")), limit);
            if code == Some(0) { Ok(()) } else { Err(format!("exit {code:?}; it printed:\n{out}")) }
        }
        Marker::Ci => check_ci(block, limit),
        Marker::Compare(mode) => {
            let mut script = String::new();
            let mut want = Vec::new();
            let mut background = 0;
            for line in &block.body {
                match line.strip_prefix("$ ") {
                    Some(command) => {
                        let command = rewrite(command);
                        // A trailing comment is the reader's; `&` before it starts a job.
                        let code = command.split(" #").next().unwrap().trim_end();
                        script.push_str(&format!("echo {MARK}\n"));
                        if let Some(job) = code.strip_suffix('&') {
                            background += 1;
                            // Its output goes where the command sends it, or nowhere shown.
                            match job.split_once(" > ") {
                                Some((_, target)) => {
                                    let file = target.split_whitespace().next().unwrap_or(".bg");
                                    script.push_str(&format!("{job} &\nstarted {file}\n"));
                                }
                                None => script
                                    .push_str(&format!("{job} > .bg{background} 2>&1 &\nstarted .bg{background}\n")),
                            }
                        } else {
                            script.push_str(&format!("{command}\n"));
                        }
                    }
                    None => want.push(normal(line)),
                }
            }
            // What the jobs print while the test stops them (after the block's last command) is
            // the test's doing, not the block's: it is cut off at this line.
            script.push_str(&format!("echo {END}\n"));
            let (_, out) = run_bash(&script, limit);
            let out = out.split(&format!("{END}\n")).next().unwrap_or("").to_string();
            let got: Vec<String> = out.lines().filter(|l| *l != MARK).map(normal).collect();
            let result = compare(*mode, &want, &got).map_err(|e| format!("{e}\nthe run printed:\n{out}"));
            if result.is_err()
                && std::env::var_os("SOCKLAB_DOCS_WRITE").is_some()
                && matches!(mode, Mode::Exact | Mode::Calls)
            {
                rewritten(block, &out);
            }
            result
        }
    }
}

/// Separates the commands' outputs in a compare block's run.
const MARK: &str = "\u{1e}socklab-docs-next-command";
/// Ends a compare block's run: the cleanup that follows stops its background jobs.
const END: &str = "\u{1e}socklab-docs-end";

/// `SOCKLAB_DOCS_WRITE=1 cargo test --test docs`: an `exact` block that differs is written back
/// with this run's output under each command (then read the diff: the new output must be right).
fn rewritten(block: &Block, out: &str) {
    let mark = format!("{MARK}\n");
    let mut outputs = out.split(&mark).skip(1);
    let mut body = Vec::new();
    for line in block.body.iter().filter(|l| l.starts_with("$ ")) {
        body.push(line.clone());
        body.extend(outputs.next().unwrap_or("").lines().map(String::from));
    }
    let path = repo().join(&block.file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // The block's fence is at `block.line`; its body follows until the closing fence.
    let start = block.line;
    let end = start + lines[start..].iter().position(|l| l.starts_with("```")).unwrap();
    if lines[start..end] != block.body[..] {
        return; // written already in this run: line numbers moved
    }
    lines.splice(start..end, body);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

fn compare(mode: Mode, want: &[String], got: &[String]) -> Result<(), String> {
    match mode {
        Mode::Exact if want == got => Ok(()),
        Mode::Exact => Err(first_difference(want, got)),
        Mode::Head => {
            let shown = want.strip_suffix(&["...".to_string()]).ok_or("a `head` block ends with `...`")?;
            if got.len() >= shown.len() && got[..shown.len()] == *shown {
                Ok(())
            } else {
                Err(first_difference(shown, &got[..shown.len().min(got.len())]))
            }
        }
        Mode::Excerpt => {
            let mut rest = got.iter();
            for line in want.iter().filter(|l| l.as_str() != "...") {
                if !rest.any(|g| g == line) {
                    return Err(format!("not printed (in this order): {line}"));
                }
            }
            Ok(())
        }
        Mode::Calls => {
            let (want, got) = (calls(want), calls(got));
            if want.is_empty() {
                return Err("a `calls` block shows no server or client calls".into());
            }
            if want == got { Ok(()) } else { Err(format!("the calls differ:\nshown {want:?}\nmade  {got:?}")) }
        }
    }
}

fn first_difference(want: &[String], got: &[String]) -> String {
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            return format!("line {} differs:\nshown: {w}\nprinted: {g}", i + 1);
        }
    }
    format!("{} lines shown, {} printed", want.len(), got.len())
}

/// The GitHub Actions step: its `run:` script, as the runner would run it (`bash -e`), with
/// `RUNNER_TEMP` set and the user's own test command (`cargo test --test integration`) stood in
/// for by a real client of the echo server the script started. The proxy must have written its
/// JSON lines.
fn check_ci(block: &Block, limit: Duration) -> Result<(), String> {
    let start =
        block.body.iter().position(|l| l.trim_start().starts_with("run: |")).ok_or("no `run: |` in the YAML")?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(&block.body[start + 1]);
    let mut script = Vec::new();
    let mut stood_in = false;
    for line in &block.body[start + 1..] {
        if !line.trim().is_empty() && indent(line) < base {
            break;
        }
        let line = line.get(base..).unwrap_or("").to_string();
        if line.starts_with("cargo test --test integration") {
            stood_in = true;
            script.push(r#"socklab client --host "${ECHO_ADDR%:*}" --port "${ECHO_ADDR##*:}" --json > "$RUNNER_TEMP/client.jsonl""#.to_string());
        } else {
            script.push(rewrite(&line));
        }
    }
    if !stood_in {
        return Err("the script has no `cargo test --test integration` line to stand a client in for".into());
    }
    let body = format!(
        "set -e\nexport RUNNER_TEMP=\"$PWD/runner-temp\"; mkdir -p \"$RUNNER_TEMP\"\n{}\n\
         echo '--- client'; cat \"$RUNNER_TEMP/client.jsonl\"; echo '--- proxy'; cat \"$RUNNER_TEMP/proxy.jsonl\"",
        script.join("\n")
    );
    let (code, out) = run_bash(&body, limit);
    if code != Some(0) {
        return Err(format!("the step failed: exit {code:?}\nthe script:\n{body}\nit printed:\n{out}"));
    }
    let section = |name: &str| -> Vec<String> {
        out.split(&format!("--- {name}\n"))
            .nth(1)
            .unwrap_or("")
            .lines()
            .take_while(|l| !l.starts_with("--- "))
            .map(String::from)
            .collect()
    };
    let (client, proxy) = (section("client"), section("proxy"));
    if !client.iter().any(|l| l.contains(r#""event": "connected""#) || l.contains(r#""event":"connected""#)) {
        return Err(format!("the stand-in client did not connect:\n{out}"));
    }
    if proxy.is_empty() || !proxy.iter().all(|l| l.starts_with('{')) {
        return Err(format!("the proxy's JSON lines are missing:\n{out}"));
    }
    if !proxy.iter().any(|l| l.contains("stopped")) {
        return Err(format!("the proxy did not stop cleanly (no `stopped` line):\n{out}"));
    }
    Ok(())
}

#[test]
fn every_shell_block_is_marked() {
    let mut unmarked = Vec::new();
    let mut bad = Vec::new();
    for (file, text) in documents() {
        for b in blocks(&file, &text) {
            if !SHELL_LANGS.contains(&b.lang.as_str()) {
                continue;
            }
            match &b.marker {
                None => unmarked.push(format!("{}:{} ```{}", b.file, b.line, b.lang)),
                Some(Marker::Compare(_)) if !b.body.iter().any(|l| l.starts_with("$ ")) => {
                    bad.push(format!("{}:{}: a compare block needs `$ ` command lines", b.file, b.line))
                }
                Some(Marker::NotRun(why)) if why.is_empty() => {
                    bad.push(format!("{}:{}: say why it is not run", b.file, b.line))
                }
                _ => {}
            }
        }
    }
    assert!(
        unmarked.is_empty(),
        "shell blocks with no <!-- run --> or <!-- not run: WHY --> mark:\n{}",
        unmarked.join("\n")
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn check_document(name: &str) {
    let (file, text) = documents().into_iter().find(|(f, _)| f == name).unwrap_or_else(|| panic!("no {name}"));
    let mut failures = Vec::new();
    let mut ran = 0;
    for block in blocks(&file, &text) {
        if matches!(block.marker, None | Some(Marker::NotRun(_))) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        let result = check(&block);
        println!("{}:{}: {:.1} s", block.file, block.line, started.elapsed().as_secs_f64());
        if let Err(e) = result {
            failures.push(format!("{}:{} ({:?}): {e}", block.file, block.line, block.marker.as_ref().unwrap()));
        }
    }
    println!("{name}: {ran} blocks run");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn readme_works_as_written() {
    check_document("README.md");
}

/// The chapters in parallel (each block has a network namespace of its own).
#[test]
fn book_works_as_written() {
    let chapters: Vec<String> = documents().into_iter().map(|(f, _)| f).filter(|f| f.starts_with("docs/")).collect();
    assert!(chapters.len() >= 10, "the book has {} chapters", chapters.len());
    let failed: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = chapters
            .iter()
            .map(|c| (c, s.spawn(move || std::panic::catch_unwind(|| check_document(c)).is_err())))
            .collect();
        runs.into_iter().filter_map(|(c, h)| h.join().unwrap().then(|| c.clone())).collect()
    });
    assert!(failed.is_empty(), "chapters that do not work as written: {failed:?} (their messages are above)");
}

#[test]
fn normal_replaces_ports_pids_times_and_pointers() {
    assert_eq!(
        normal("+1.0  client  connect(3, {sin_port=htons(38223), x}, 16)   = 0  127.0.0.1:43302 [pid 42] [::1]:80"),
        "+T client connect(3, {sin_port=htons(PORT), x}, 16) = 0 127.0.0.1:PORT [pid PID] [::1]:PORT"
    );
    assert_eq!(
        normal("Server start, listening 44157 (on 127.0.0.1:44157)"),
        "Server start, listening PORT (on 127.0.0.1:PORT)"
    );
    assert_eq!(normal("accept4(3, 0x7ffe5356c2d0, [128], SOCK_CLOEXEC)"), "accept4(3, 0xADDR, [128], SOCK_CLOEXEC)");
    assert_eq!(normal("sa_mask=[], x: 5"), "sa_mask=[], x: 5");
}

#[test]
fn markers_parse() {
    assert_eq!(parse_marker("<!-- run -->"), Some(Marker::Run));
    assert_eq!(parse_marker("<!-- run: compare head -->"), Some(Marker::Compare(Mode::Head)));
    assert_eq!(parse_marker("<!-- not run: installs -->"), Some(Marker::NotRun("installs".into())));
    assert_eq!(parse_marker("<!-- something else -->"), None);
}

/// `mdbook`, on PATH or where `cargo install` puts it.
fn mdbook() -> Option<PathBuf> {
    if common::have("mdbook") {
        return Some(PathBuf::from("mdbook"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    Some(home.join(".cargo/bin/mdbook")).filter(|p| p.exists())
}

/// The book builds with no warning, and every link in it leads to a page that exists and, with a
/// `#fragment`, to an element with that id. External links are only checked for their form (no
/// network here).
#[test]
fn the_book_builds_without_warnings_and_its_links_resolve() {
    let Some(mdbook) = mdbook() else {
        common::skip("needs mdbook (cargo install mdbook --locked; .ci/run installs it)");
        return;
    };
    let out_dir = std::env::temp_dir().join(format!("socklab-book-{}", std::process::id()));
    let out = Command::new(&mdbook).arg("build").arg(repo().join("docs")).arg("-d").arg(&out_dir).output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mdbook build failed:\n{log}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    assert!(warnings.is_empty(), "mdbook warned:\n{}", warnings.join("\n"));
    let pages = html_files(&out_dir);
    assert!(pages.len() >= 12, "only {} pages built", pages.len());
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        for link in attribute_values(&html, "href").into_iter().chain(attribute_values(&html, "src")) {
            if link.starts_with("http://") || link.starts_with("https://") {
                if link.contains(' ') {
                    broken.push(format!("{}: malformed {link}", page.display()));
                }
                continue;
            }
            if link.starts_with("mailto:") || link.starts_with("javascript:") || link.starts_with("data:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = match path {
                "" => page.clone(),
                absolute if absolute.starts_with('/') => out_dir.join(absolute.trim_start_matches('/')),
                relative => page.parent().unwrap().join(relative),
            };
            let target = if target.is_dir() { target.join("index.html") } else { target };
            let Ok(text) = std::fs::read(&target) else {
                broken.push(format!("{}: {link} (no {})", page.display(), target.display()));
                continue;
            };
            if !fragment.is_empty() && !String::from_utf8_lossy(&text).contains(&format!("id=\"{fragment}\"")) {
                broken.push(format!("{}: {link} (no id {fragment:?} there)", page.display()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    println!("{} pages, {checked} local links checked", pages.len());
    assert!(broken.is_empty(), "broken links in the book:\n{}", broken.join("\n"));
}

fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(html_files(&path));
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    out
}

/// Every `name="value"` in `html`, HTML entities for `&` decoded.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let key = format!(" {name}=\"");
    html.split(&key).skip(1).filter_map(|rest| rest.split('"').next()).map(|v| v.replace("&amp;", "&")).collect()
}

/// The README's own links (to the book's pages, BENCHMARKS.md...) lead to files that exist.
#[test]
fn the_readmes_links_lead_to_files() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut broken = Vec::new();
    for part in readme.split("](").skip(1) {
        let link = part.split(')').next().unwrap_or("");
        if link.starts_with("http") || link.starts_with('#') {
            continue;
        }
        let path = link.split('#').next().unwrap();
        if !repo().join(path).exists() {
            broken.push(link.to_string());
        }
    }
    assert!(broken.is_empty(), "README links to missing files: {broken:?}");
}

/// The book's pictures come from real runs: `scripts/docs-pictures.sh` makes them again (here into
/// a temporary directory), and the committed picture shows what a new run shows — the handshake's
/// three segments and the two FINs, each drawn from a captured segment.
#[test]
fn the_pictures_are_made_from_real_runs_by_the_script() {
    if !is_root() {
        common::skip("needs root: the walkthrough captures packets");
        return;
    }
    let dir = std::env::temp_dir().join(format!("socklab-pictures-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(repo().join("scripts/docs-pictures.sh"))
        .arg(&dir)
        .env("SOCKLAB", env!("CARGO_BIN_EXE_socklab"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let segments = |svg: &str| attribute_values(svg, "data-flags");
    let made = std::fs::read_to_string(dir.join("walkthrough.svg")).unwrap();
    let committed = std::fs::read_to_string(repo().join("docs/src/pictures/walkthrough.svg")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for svg in [&made, &committed] {
        let flags = segments(svg);
        assert_eq!(flags[..3], ["SYN", "SYN-ACK", "ACK"], "the handshake: {flags:?}");
        assert_eq!(flags.iter().filter(|f| *f == "FIN-ACK").count(), 2, "the two FINs: {flags:?}");
        assert!(svg.contains("[TIME-WAIT]"), "the client's TIME-WAIT, as sock_diag reported it");
    }
}
