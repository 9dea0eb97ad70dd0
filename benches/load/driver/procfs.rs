//! What a target process costs, read from /proc: CPU time (utime + stime of the whole thread
//! group, children included for multi-process servers such as nginx) and memory (VmRSS now,
//! VmHWM the peak).

use std::time::Duration;

/// Clock ticks per second for /proc's utime and stime (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of one process, in ticks.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ... utime(14) stime(15), numbered from 1 with pid and comm.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The live children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A process whose cost is measured; `tree` adds its children (nginx workers).
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    pub pid: u32,
    pub tree: bool,
}

impl Watched {
    /// The process, and with `tree` its descendants (npx -> node, nginx master -> workers).
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        if self.tree {
            let mut at = 0;
            // Bounded: no process tree under test is anywhere near this deep or wide.
            while at < pids.len() && pids.len() < 256 {
                let kids = children(pids[at]);
                pids.extend(kids);
                at += 1;
            }
        }
        pids
    }

    /// CPU time used so far by the process (and its live children).
    pub fn cpu(&self, ticks_per_sec: u64) -> Duration {
        let total: u64 = self.pids().into_iter().filter_map(ticks).sum();
        Duration::from_nanos(total * 1_000_000_000 / ticks_per_sec.max(1))
    }

    /// Resident memory now, in KiB (summed over the tree).
    pub fn rss_kib(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| status_kib(p, "VmRSS:"))
            .sum()
    }

    /// Peak resident memory, in KiB (summed over the tree: an upper bound for nginx).
    pub fn hwm_kib(&self) -> u64 {
        self.pids()
            .into_iter()
            .filter_map(|p| status_kib(p, "VmHWM:"))
            .sum()
    }

    /// Context switches so far (voluntary and not), summed over every live thread: each is a
    /// thread going to sleep or being preempted, so per request they show cross-thread
    /// hand-offs (a wake-up of another thread costs a switch on each side).
    pub fn context_switches(&self) -> u64 {
        self.pids()
            .into_iter()
            .flat_map(|pid| {
                std::fs::read_dir(format!("/proc/{pid}/task"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|task| task.path().join("status"))
            })
            .filter_map(|status| std::fs::read_to_string(status).ok())
            .map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum()
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
