//! CPU time and resident memory of the measured proxies, read from
//! `/proc`: `utime + stime` (fields 14 and 15 of `/proc/PID/stat`, in clock
//! ticks of 1/100 s) and `VmRSS` of `/proc/PID/status`. A proxy that forks
//! workers (nginx) is measured as its whole process tree.

use std::fs;

use anyhow::Context;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`).
pub const TICKS_PER_SECOND: u64 = 100;

/// `utime + stime` of one process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))
}

/// `utime + stime` from the text of `/proc/PID/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields
    // are counted from the last ')'. After it comes field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of one process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(ppid) = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_ppid(&stat))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree
}

fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Summed `utime + stime` ticks of a process tree (processes that vanish
/// mid-read count as zero).
pub fn tree_cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| cpu_ticks(pid).ok()).sum()
}

/// Summed `VmRSS` of a process tree, in KiB.
pub fn tree_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| rss_kib(pid).ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (weft (proxy)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        150 25 0 0 20 0 1 0 100 12345678 900 18446744073709551615";

    #[test]
    fn cpu_ticks_count_from_the_last_parenthesis() {
        assert_eq!(parse_cpu_ticks(STAT), Some(175));
        assert_eq!(parse_ppid(STAT), Some(1));
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tweft-proxy\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_ticks(me).is_ok());
        assert_eq!(process_tree(me)[0], me);
    }
}
