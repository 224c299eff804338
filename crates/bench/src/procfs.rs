//! A process's resident memory and CPU time, read from `/proc` (Linux only).

use anyhow::Context;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak resident set), KiB.
    pub hwm_kib: u64,
    /// `RssAnon` (heap, stacks) and `RssFile` (mapped pages of the binary and libraries),
    /// KiB: their sum is `VmRSS` (with `RssShmem`).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    /// `utime + stime`, clock ticks.
    pub cpu_ticks: u64,
    /// `cutime + cstime`: CPU of children the process has waited for (exec steps), ticks.
    pub child_ticks: u64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub(crate) fn sample(pid: u32) -> anyhow::Result<Sample> {
    read(&pid.to_string())
}

/// Reads this process (the sandbox and the benchmark driver).
pub(crate) fn sample_self() -> anyhow::Result<Sample> {
    read("self")
}

fn read(pid: &str) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: fields are counted
    // from the last ')'. After it, field 3 (state) is index 0, so field n is index n - 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    Ok(Sample {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        rss_anon_kib: kib("RssAnon:"),
        rss_file_kib: kib("RssFile:"),
        cpu_ticks: field(14) + field(15),
        child_ticks: field(16) + field(17),
    })
}

/// The process's thread count (`Threads:` of `/proc/<pid>/status`).
pub(crate) fn threads(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Threads: in /proc/PID/status")
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on Linux).
pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// `/proc/loadavg`'s three load averages, as printed.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample_self().unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib, "{s:?}");
    }
}
