//! What /proc says about a spawned server: its descriptors, threads, children, memory and CPU
//! time. Each reading is what the kernel reported at that moment; nothing here is inferred.

use std::path::Path;

use crate::file;
use crate::process::Pid;

/// `/proc/PID/comm`: the program name (at most 15 bytes).
pub fn comm(pid: Pid) -> Option<String> {
    file::read_to_string(Path::new(&format!("/proc/{pid}/comm"))).ok().map(|s| s.trim().to_string())
}

/// The process's children, from every thread's `/proc/PID/task/TID/children`.
pub fn children(pid: Pid) -> Vec<Pid> {
    let mut kids = Vec::new();
    let Ok(tasks) = file::read_dir(Path::new(&format!("/proc/{pid}/task"))) else { return kids };
    for task in tasks {
        let path = format!("/proc/{pid}/task/{}/children", task.to_string_lossy());
        if let Ok(text) = file::read_to_string(Path::new(&path)) {
            kids.extend(text.split_whitespace().filter_map(|w| w.parse::<Pid>().ok()));
        }
    }
    kids
}

/// Open descriptors: the entries of `/proc/PID/fd`, each with what it points to.
pub fn fds(pid: Pid) -> Option<Vec<String>> {
    let dir = format!("/proc/{pid}/fd");
    let names = file::read_dir(Path::new(&dir)).ok()?;
    Some(
        names
            .iter()
            .map(|n| {
                let target = file::read_link(Path::new(&format!("{dir}/{}", n.to_string_lossy())))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{} -> {target}", n.to_string_lossy())
            })
            .collect(),
    )
}

/// A field of `/proc/PID/status` (`Threads`, `VmRSS`), its first word.
pub fn status_field(pid: Pid, name: &str) -> Option<String> {
    let text = file::read_to_string(Path::new(&format!("/proc/{pid}/status"))).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
}

/// Threads (`Threads:` in status).
pub fn threads(pid: Pid) -> Option<u64> {
    status_field(pid, "Threads")?.parse().ok()
}

/// Resident memory in KiB (`VmRSS:`), of the process and its children together.
pub fn rss_kib_tree(pid: Pid) -> u64 {
    let own: u64 = status_field(pid, "VmRSS").and_then(|v| v.parse().ok()).unwrap_or(0);
    own + children(pid).into_iter().map(rss_kib_tree).sum::<u64>()
}

/// The state letter of `/proc/PID/stat` (`Z`: a zombie, ended and not yet waited for).
pub fn state(pid: Pid) -> Option<char> {
    let stat = file::read_to_string(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // The name in parentheses may hold spaces; the fields after its last ')' are fixed.
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Children that are zombies.
pub fn zombies(pid: Pid) -> Vec<Pid> {
    children(pid).into_iter().filter(|&c| state(c) == Some('Z')).collect()
}

/// CPU time (user + system) in clock ticks (`/proc/PID/stat` fields 14 and 15), of the process
/// alone; threads are included, children not.
pub fn cpu_ticks(pid: Pid) -> Option<u64> {
    let stat = file::read_to_string(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
