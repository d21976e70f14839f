//! CPU seconds of the processes sharing this machine during a bench, read from `/proc`:
//! where a request's cost goes when the load generator, the service, PostgreSQL and
//! the simulator share two cores.

// Each bench uses only part of this module.
#![allow(dead_code)]

/// CPU seconds (user + system) of one process from `/proc/<pid>/stat`, with what it
/// reaped of its children when `children`.
pub fn process_cpu(pid: &str, children: bool) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let tick = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    let mut ticks = tick(14)? + tick(15)?;
    if children {
        ticks += tick(16)? + tick(17)?;
    }
    Some((comm, ticks / 100.0))
}

/// CPU seconds of every process named `comm`, with what each reaped of its children
/// (PostgreSQL's postmaster reaps the backends that ended).
pub fn named_cpu(comm: &str) -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some((found, secs)) = process_cpu(pid, true)
            && found == comm
        {
            total += secs;
        }
    }
    total
}

/// CPU seconds of every PostgreSQL process.
pub fn postgres() -> f64 {
    named_cpu("postgres")
}

/// CPU seconds of one process by id (0 when it is gone).
pub fn of(pid: u32) -> f64 {
    process_cpu(&pid.to_string(), false).map_or(0.0, |(_, s)| s)
}

/// CPU seconds of this process.
pub fn own() -> f64 {
    process_cpu("self", false).map_or(0.0, |(_, s)| s)
}
