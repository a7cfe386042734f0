//! `cargo bench`: a short `socklab bench` run of every mode against the epoll model in this
//! process. For the comparison with other servers, run scripts/bench-peers.sh.

#[cfg(target_os = "linux")]
fn main() {
    use std::sync::Arc;
    use std::time::Duration;

    use socklab::bench::{self, BenchConfig, Mode};
    use socklab::echo::{Event, Model, Server, ServerConfig};

    // The epoll model's own defaults: the kernel's somaxconn backlog and a 256 KiB buffer.
    let config = ServerConfig::for_model(([127, 0, 0, 1], 0).into(), Model::Epoll);
    let server = Server::bind(config).expect("bind").spawn(Arc::new(|_: &Event<'_>| {})).expect("spawn");
    for (mode, conns, size) in
        [(Mode::Pingpong, 1, 64), (Mode::Pingpong, 100, 64), (Mode::Bulk, 1, 65536), (Mode::Connrate, 4, 64)]
    {
        let config = BenchConfig {
            addr: server.addr(),
            mode,
            conns,
            size,
            duration: Duration::from_secs(2),
            grace: bench::GRACE,
            seed: 1,
            server_pids: Vec::new(),
        };
        let report = bench::run(&config, &mut |_| {}).expect("bench");
        println!("{report}\n");
        assert!(report.is_correct(), "the echo was not byte-exact");
    }
    server.stop().expect("stop");
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("socklab bench needs epoll (Linux)");
}
