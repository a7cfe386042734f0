//! Probes the target and emits `cfg`s for the capabilities socklab uses that
//! not every Unix has, so the portable core builds everywhere and the
//! Linux-only parts switch themselves off elsewhere.
//!
//! Each cfg is named `socklab_<capability>` and is declared with
//! `cargo::rustc-check-cfg`, so a typo in a `#[cfg(...)]` is a compiler warning.

use std::env;

/// (cfg name, target OSes that have it, what it is).
const CAPABILITIES: &[(&str, &[&str], &str)] = &[
    (
        "socklab_accept4",
        &["linux", "android", "freebsd", "netbsd", "openbsd", "dragonfly", "illumos"],
        "accept4(2): accept and set SOCK_CLOEXEC in one call",
    ),
    (
        "socklab_sock_flags",
        &["linux", "android", "freebsd", "netbsd", "openbsd", "dragonfly", "illumos"],
        "SOCK_CLOEXEC / SOCK_NONBLOCK or'ed into socket(2)'s type",
    ),
    (
        "socklab_msg_nosignal",
        &["linux", "android", "freebsd", "netbsd", "openbsd", "dragonfly", "illumos"],
        "MSG_NOSIGNAL: send(2) returns EPIPE instead of raising SIGPIPE",
    ),
    (
        "socklab_so_nosigpipe",
        &["macos", "ios", "tvos", "watchos", "visionos"],
        "SO_NOSIGPIPE: the per-socket way to suppress SIGPIPE",
    ),
    ("socklab_epoll", &["linux", "android"], "epoll(7)"),
    ("socklab_tcp_info", &["linux", "android"], "getsockopt(TCP_INFO)"),
    ("socklab_af_packet", &["linux", "android"], "AF_PACKET raw capture"),
    ("socklab_sock_diag", &["linux", "android"], "NETLINK_SOCK_DIAG"),
    ("socklab_uring", &["linux"], "io_uring(7): io_uring_setup, io_uring_enter, io_uring_register"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    link_the_usual_path();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    for (cfg, oses, _what) in CAPABILITIES {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if oses.contains(&os.as_str()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

/// `.cargo/config.toml` names the host as the build's target (so that the static-linking flag
/// reaches socklab but not the proc macros), and cargo then puts the binary under
/// `target/<host tuple>/<profile>/`. Students, scripts and the README expect
/// `target/release/socklab` (or `target/debug/socklab`): leave a symlink there to the real one.
/// Nothing is done for a cross build or when the layout is not the expected one.
fn link_the_usual_path() {
    use std::path::Path;
    let (Ok(out), Ok(target), Ok(host)) = (env::var("OUT_DIR"), env::var("TARGET"), env::var("HOST")) else {
        return;
    };
    // OUT_DIR is <target dir>/<tuple>/<profile>/build/socklab-<hash>/out.
    let Some(profile_dir) = Path::new(&out).ancestors().nth(3) else { return };
    let (Some(profile), Some(tuple_dir)) = (profile_dir.file_name(), profile_dir.parent()) else { return };
    if target != host || tuple_dir.file_name() != Some(target.as_ref()) {
        return;
    }
    let Some(target_dir) = tuple_dir.parent() else { return };
    let usual = target_dir.join(profile).join("socklab");
    let real = Path::new("..").join(&target).join(profile).join("socklab");
    if std::fs::read_link(&usual).ok().as_deref() == Some(real.as_path()) {
        return;
    }
    // A stale file or link from an older layout is replaced; failing here must not fail the build.
    let _ = std::fs::remove_file(&usual);
    let _ = std::fs::create_dir_all(target_dir.join(profile));
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(&real, &usual);
}
