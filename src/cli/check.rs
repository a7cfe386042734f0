//! `socklab check`: arguments, the live progress line, the terminal table, and the report files.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use socklab::check::{self, CaseResult, Expect, Options, Outcome, Progress, Report, Target};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A running TCP server: HOST:PORT (an IPv6 address in brackets: [::1]:5000).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["unix", "spawn"], help_heading = super::REACH)]
    addr: Option<String>,
    /// A running server on a Unix stream socket at PATH (`@NAME`: the abstract namespace).
    #[arg(long, value_name = "PATH", conflicts_with = "spawn", help_heading = super::REACH)]
    unix: Option<String>,
    /// Start the server: a command line with {port} where the port goes, e.g. './a.out {port}' or
    /// 'python3 server.py {port}'. It is started on a free port, awaited until it accepts a
    /// connection, watched (descriptors, threads, memory), stopped with SIGTERM (SIGKILL after 3 s)
    /// and reaped; a death during a case fails that case and a fresh one serves the next.
    #[arg(long, value_name = "'CMD ... {port}'", help_heading = super::REACH)]
    spawn: Option<String>,
    /// Run only this case or group (repeatable): echo.basic, load, process... (--list shows them).
    #[arg(long = "case", value_name = "ID|GROUP", help_heading = super::HOW)]
    cases: Vec<String>,
    /// The suite's seed (each case derives its own): replay a failure with --case ID --seed N
    /// [default: a new one each run, printed in the report].
    #[arg(long, help_heading = super::HOW)]
    seed: Option<u64>,
    /// Smaller sizes and counts: seconds instead of tens of seconds.
    #[arg(long, help_heading = super::HOW)]
    quick: bool,
    /// `concurrent`: a server that serves one client at a time fails the idle-client, slowloris
    /// and concurrency cases instead of being reported as such.
    #[arg(long, value_name = "any|concurrent", default_value = "any", value_parser = parse_expect, help_heading = super::HOW)]
    expect: Expect,
    /// One JSON object per case (case, group, passed, informational, expected, observed, lesson,
    /// seconds), then a summary object, instead of the table.
    #[arg(long, help_heading = super::OUTPUT)]
    json: bool,
    /// Also write a JUnit XML report to FILE (for CI test reporters).
    #[arg(long, value_name = "FILE", help_heading = super::OUTPUT)]
    junit: Option<PathBuf>,
    /// Also write one self-contained HTML page to FILE (nothing fetched from the network): the
    /// table, and each failed case open with its transcript (sent, came back, where it diverged).
    #[arg(long, value_name = "FILE", help_heading = super::OUTPUT)]
    html: Option<PathBuf>,
    /// With --spawn: run the server under `strace -f` and report what its calls show (SIGPIPE
    /// left at its default, short sends never finished, accept failing with EMFILE, a blocking
    /// call on a socket in a server that waits with epoll/poll/select), each finding quoting the
    /// line; with --html, each failed case also lists the server's calls made while it ran.
    #[arg(long, requires = "spawn", help_heading = super::OBSERVING)]
    strace: bool,
    /// With --spawn: how long the server may take to accept its first connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = super::duration::limit, help_heading = super::LIMITS)]
    ready_timeout: Duration,
    /// List the cases (id, group, limits, what each checks) and exit.
    #[arg(long, help_heading = super::OUTPUT)]
    list: bool,
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    match text {
        "any" => Ok(Expect::Any),
        "concurrent" => Ok(Expect::Concurrent),
        _ => Err(format!("'{text}' is neither any nor concurrent")),
    }
}

/// Runs the suite; exit 1 (through [`super::ChildExit`], printed by nobody) when a case failed.
pub fn check(args: CheckArgs) -> io::Result<()> {
    if args.list {
        for case in check::CASES {
            let needs = if case.needs == check::Needs::Spawn { "  (--spawn only)" } else { "" };
            super::say(&format!("{:<28} {:>3} s  {}{needs}", case.id, case.limit.as_secs(), case.title));
        }
        return Ok(());
    }
    let target = target(&args)?;
    if args.strace && !std::path::Path::new("/usr/bin/strace").exists() && !std::path::Path::new("/bin/strace").exists()
    {
        return Err(super::usage(
            "--strace",
            io::Error::new(io::ErrorKind::NotFound, "strace is not installed (apt-get install strace)"),
        ));
    }
    let seed = args.seed.unwrap_or_else(|| socklab::clock::realtime_ns() % 1_000_000_007);
    let options = Options {
        seed,
        cases: args.cases.clone(),
        quick: args.quick,
        expect: args.expect,
        ready_timeout: args.ready_timeout,
        strace: args.strace,
    };
    // An unknown case is bad usage (exit 2), found before anything starts.
    check::select(&target, &options).map_err(|e| super::usage("--case", e))?;
    let live = !args.json && socklab::process::is_terminal(io::stderr());
    let colour = !args.json && socklab::process::is_terminal(io::stdout());
    if !args.json {
        super::say(&format!("socklab check: {} (seed {seed})", describe(&target)));
    }
    let mut group = "";
    let mut progress = |p: &Progress<'_>| match p {
        Progress::Start { index, total, case } => {
            if live {
                let _ = write!(io::stderr(), "\r\x1b[K[{}/{total}] {} ...", index + 1, case.id);
            }
        }
        Progress::Done(result) => {
            if live {
                let _ = write!(io::stderr(), "\r\x1b[K");
            }
            if !args.json {
                if result.group != group {
                    group = result.group;
                    super::say(&format!("\n{}", paint(colour, "1", group)));
                }
                print_case(result, colour);
            }
        }
        Progress::Server(what) => {
            if !args.json {
                super::say(&format!("  note: {what}"));
            }
        }
    };
    let report = check::run(&target, &options, &mut progress)?;
    if args.json {
        for line in check::report::json_lines(&report) {
            super::say(&line);
        }
    } else {
        print_summary(&report, &args, colour);
    }
    if let Some(path) = &args.junit {
        socklab::file::write_atomically(path, check::report::junit(&report).as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("--junit {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.html {
        socklab::file::write_atomically(path, check::html::page(&report).as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("--html {}: {e}", path.display())))?;
    }
    if report.failed() > 0 { Err(io::Error::other(super::ChildExit(1))) } else { Ok(()) }
}

fn target(args: &CheckArgs) -> io::Result<Target> {
    if let Some(addr) = &args.addr {
        let (host, port) = socklab::resolve::split_host_port(addr).map_err(|e| super::usage("--addr", e))?;
        let addrs = socklab::resolve::resolve(host, port).map_err(|e| super::usage("--addr", e))?;
        let first = addrs.first().ok_or_else(|| super::usage("--addr", io::Error::other("no address")))?;
        return Ok(Target::Tcp(*first));
    }
    if let Some(path) = &args.unix {
        return Ok(Target::Unix(socklab::unix::unix_addr(path).map_err(|e| super::usage("--unix", e))?));
    }
    if let Some(command) = &args.spawn {
        if !command.contains("{port}") {
            return Err(super::usage(
                "--spawn",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("'{command}' has no {{port}}: write where the port goes, e.g. --spawn './a.out {{port}}'"),
                ),
            ));
        }
        return Ok(Target::Spawn(command.clone()));
    }
    Err(super::usage(
        "--addr",
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "say which server: --addr HOST:PORT, --unix PATH or --spawn 'CMD ... {port}' (or --list)",
        ),
    ))
}

fn describe(target: &Target) -> String {
    match target {
        Target::Tcp(a) => a.to_string(),
        Target::Unix(a) => socklab::trace::format::sockaddr(a),
        Target::Spawn(c) => format!("spawn '{c}'"),
    }
}

/// ANSI SGR `code` around `text` when colour is on.
fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

fn label(outcome: Outcome, colour: bool) -> String {
    match outcome {
        Outcome::Passed => paint(colour, "32", "PASS"),
        Outcome::Failed => paint(colour, "1;31", "FAIL"),
        Outcome::Informational => paint(colour, "33", "INFO"),
        Outcome::Skipped => paint(colour, "2", "SKIP"),
    }
}

/// Words of `text` wrapped at `width`, each line indented by `indent`.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
    }
    out.trim_end_matches('\n').to_string()
}

fn print_case(r: &CaseResult, colour: bool) {
    super::say(&format!("  {}  {:<26} {:>6.2} s  {}", label(r.outcome, colour), r.id, r.seconds, r.title));
    match r.outcome {
        Outcome::Passed | Outcome::Skipped => super::say(&wrap(&r.observed, "        ", 100)),
        Outcome::Informational => {
            super::say(&wrap(&r.observed, "        ", 100));
        }
        Outcome::Failed => {
            super::say(&wrap(&format!("expected: {}", r.expected), "        ", 100));
            super::say(&wrap(&format!("observed: {}", r.observed), "        ", 100));
            super::say(&wrap(&format!("lesson: {}", r.lesson), "        ", 100));
        }
    }
}

fn print_summary(report: &Report, args: &CheckArgs, colour: bool) {
    if let Some(server) = &report.server {
        super::say(&format!("\nserver: {} (started {} time(s))", server.command, server.starts));
        for death in &server.deaths {
            super::say(&format!("  died during {death}"));
        }
        if let Some(stop) = &server.stop {
            super::say(&format!(
                "  stopped: {} {:.2} s after SIGTERM{}",
                stop.status,
                stop.after.as_secs_f64(),
                if stop.killed { " (SIGKILL)" } else { "" }
            ));
        }
        let stderr: Vec<&str> = server.stderr.lines().collect();
        if !stderr.is_empty() {
            super::say(&format!("  its stderr ends ({} lines kept):", stderr.len().min(10)));
            for line in &stderr[stderr.len().saturating_sub(10)..] {
                super::say(&format!("    {line}"));
            }
        }
    }
    let summary = format!(
        "\n{} passed, {} failed, {} informational, {} skipped in {:.1} s (seed {})",
        report.passed(),
        report.failed(),
        report.informational(),
        report.skipped(),
        report.seconds,
        report.seed
    );
    super::say(&paint(colour, if report.failed() > 0 { "1;31" } else { "1;32" }, &summary));
    if let Some(server) = report.server.as_ref().filter(|_| args.strace) {
        super::say(&"\nwhat strace showed:");
        if server.strace.is_empty() {
            super::say(&"  nothing of note (no SIGPIPE, no unfinished short send, no EMFILE at accept)");
        }
        for finding in &server.strace {
            super::say(&wrap(finding, "  ", 100));
        }
    }
    if report.need_spawn > 0 {
        super::say(&format!(
            "{} process cases (descriptor leaks, threads, memory, SIGPIPE, EMFILE, SIGTERM, restart) run only with --spawn",
            report.need_spawn
        ));
    }
    if let Some(first) = report.results.iter().find(|r| r.outcome == Outcome::Failed) {
        let how = match (&args.addr, &args.unix, &args.spawn) {
            (Some(a), _, _) => format!("--addr {a}"),
            (_, Some(u), _) => format!("--unix {u}"),
            (_, _, Some(s)) => format!("--spawn '{s}'"),
            _ => String::new(),
        };
        super::say(&format!(
            "replay the first failure: socklab check {how} --case {} --seed {}",
            first.id, report.seed
        ));
    }
}
