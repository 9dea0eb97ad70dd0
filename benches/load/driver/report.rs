//! Turning runs into the markdown tables of BENCHMARKS.md: the median of each metric over
//! the runs (each run measured every target once, in the same order), added latency over the
//! mock directly, and ratios to nginx and to the bare Pingora passthrough.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

use crate::work::{Level, Streams};

/// One target's results in one run (a line of the `--raw` file).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRun {
    pub target: String,
    pub run: usize,
    pub idle_rss_kib: Option<u64>,
    pub levels: Vec<Level>,
    pub streams: Option<Streams>,
    pub peak_rss_kib: Option<u64>,
}

pub const DIRECT: &str = "direct (mock)";
pub const NGINX: &str = "nginx";

/// The bare Pingora passthrough with the same thread count (2 threads for targets that have
/// no such setting: nginx runs one worker per core, two here).
fn pingora_peer(name: &str) -> String {
    let threads = name
        .rsplit(' ')
        .next()
        .and_then(|t| t.strip_suffix('t'))
        .filter(|t| t.parse::<usize>().is_ok())
        .unwrap_or("2");
    format!("pingora bare {threads}t")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// All runs, grouped by target in the order targets were measured.
pub struct Results {
    pub order: Vec<String>,
    pub runs: Vec<TargetRun>,
}

impl Results {
    /// The runs of a `--raw` file, targets in the order they first appear.
    pub fn from_raw(text: &str) -> Result<Results, String> {
        let mut results = Results {
            order: Vec::new(),
            runs: Vec::new(),
        };
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let run: TargetRun =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            if !results.order.contains(&run.target) {
                results.order.push(run.target.clone());
            }
            results.runs.push(run);
        }
        Ok(results)
    }

    fn of(&self, target: &str) -> impl Iterator<Item = &TargetRun> {
        let target = target.to_string();
        self.runs.iter().filter(move |r| r.target == target)
    }

    fn level_median(
        &self,
        target: &str,
        c: usize,
        f: impl Fn(&Level) -> Option<f64>,
    ) -> Option<f64> {
        median(
            self.of(target)
                .filter_map(|r| r.levels.iter().find(|l| l.concurrency == c))
                .filter_map(&f)
                .collect(),
        )
    }

    /// Per run, the target's value minus the direct value of the same run; then the median.
    fn added_median(&self, target: &str, c: usize, f: impl Fn(&Level) -> f64) -> Option<f64> {
        let direct: Vec<&TargetRun> = self.of(DIRECT).collect();
        median(
            self.of(target)
                .filter_map(|r| {
                    let d = direct.iter().find(|d| d.run == r.run)?;
                    let l = r.levels.iter().find(|l| l.concurrency == c)?;
                    let dl = d.levels.iter().find(|l| l.concurrency == c)?;
                    Some(f(l) - f(dl))
                })
                .collect(),
        )
    }

    /// Per run, the target's value over `baseline`'s in the same run; then the median. On a
    /// shared machine both move together within a run, and far apart between runs: the
    /// ratio of two medians (each maybe from a different run) swung 1.8x-2.2x where the
    /// per-run ratios held within 1.7-2.0x.
    fn ratio_median(
        &self,
        target: &str,
        baseline: &str,
        c: usize,
        f: impl Fn(&Level) -> Option<f64>,
    ) -> Option<f64> {
        let base: Vec<&TargetRun> = self.of(baseline).collect();
        median(
            self.of(target)
                .filter_map(|r| {
                    let b = base.iter().find(|b| b.run == r.run)?;
                    let value = f(r.levels.iter().find(|l| l.concurrency == c)?)?;
                    let base_value = f(b.levels.iter().find(|l| l.concurrency == c)?)?;
                    (base_value > 0.0).then(|| value / base_value)
                })
                .collect(),
        )
    }

    fn stream_median(&self, target: &str, f: impl Fn(&Streams) -> Option<f64>) -> Option<f64> {
        median(
            self.of(target)
                .filter_map(|r| r.streams.as_ref())
                .filter_map(&f)
                .collect(),
        )
    }

    fn stream_added(&self, target: &str, f: impl Fn(&Streams) -> f64) -> Option<f64> {
        let direct: Vec<&TargetRun> = self.of(DIRECT).collect();
        median(
            self.of(target)
                .filter_map(|r| {
                    let d = direct.iter().find(|d| d.run == r.run)?.streams.as_ref()?;
                    Some(f(r.streams.as_ref()?) - f(d))
                })
                .collect(),
        )
    }

    fn run_median(&self, target: &str, f: impl Fn(&TargetRun) -> Option<f64>) -> Option<f64> {
        median(self.of(target).filter_map(f).collect())
    }

    fn concurrencies(&self) -> Vec<usize> {
        let mut cs: Vec<usize> = self
            .runs
            .iter()
            .flat_map(|r| r.levels.iter().map(|l| l.concurrency))
            .collect();
        cs.sort_unstable();
        cs.dedup();
        cs
    }

    /// The markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let runs = self.runs.iter().map(|r| r.run).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "Medians of {runs} run(s). CPU = utime+stime of the proxy process(es) per request. \
             Added = target minus the mock directly, same run. x Pingora = against the bare \
             Pingora passthrough with the same thread count (2 for nginx and peers). Ratios \
             are taken within each run, then their median.\n"
        );
        for c in self.concurrencies() {
            let _ = writeln!(out, "### Non-stream chat, concurrency {c}\n");
            let _ = writeln!(
                out,
                "| target | RPS | p50 us | p99 us | added p50 us | added p99 us | CPU us/req | CPU x nginx | CPU x Pingora | RPS x nginx | ctx sw/req | errors |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let cpu_of = |l: &Level| l.cpu_us_per_req;
            let rps_of = |l: &Level| Some(l.rps);
            for t in &self.order {
                let rps = self.level_median(t, c, rps_of);
                let cpu = self.level_median(t, c, cpu_of);
                let errors: u64 = self
                    .of(t)
                    .filter_map(|r| r.levels.iter().find(|l| l.concurrency == c))
                    .map(|l| l.errors)
                    .sum();
                let direct = t == DIRECT;
                let _ = writeln!(
                    out,
                    "| {t} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {errors} |",
                    num(rps, 0),
                    num(self.level_median(t, c, |l| Some(l.p50_us)), 0),
                    num(self.level_median(t, c, |l| Some(l.p99_us)), 0),
                    if direct {
                        "-".into()
                    } else {
                        num(self.added_median(t, c, |l| l.p50_us), 0)
                    },
                    if direct {
                        "-".into()
                    } else {
                        num(self.added_median(t, c, |l| l.p99_us), 0)
                    },
                    num(cpu, 1),
                    num(self.ratio_median(t, NGINX, c, cpu_of), 2),
                    num(self.ratio_median(t, &pingora_peer(t), c, cpu_of), 2),
                    num(self.ratio_median(t, NGINX, c, rps_of), 2),
                    num(self.level_median(t, c, |l| l.ctx_switches_per_req), 2),
                );
            }
            let _ = writeln!(out);
        }
        if self.runs.iter().any(|r| r.streams.is_some()) {
            let plan = self.runs.iter().find_map(|r| r.streams.as_ref());
            let n = plan.map_or(0, |s| s.streams);
            let _ = writeln!(out, "### {n} concurrent paced streams; memory\n");
            let _ = writeln!(
                out,
                "| target | stall-free (min of runs) | TTFT p50 ms | TTFT p99 ms | added TTFT p50 ms | added TTFT p99 ms | worst gap p99 ms | idle RSS MB | RSS/open stream KB | RSS/stream x nginx | RSS/stream x Pingora | peak RSS MB | CPU us/event |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let per_stream = |t: &str| self.stream_median(t, |s| s.rss_per_stream_kib);
            for t in &self.order {
                let stall_free = self
                    .of(t)
                    .filter_map(|r| r.streams.as_ref())
                    .map(|s| s.stall_free)
                    .min();
                let direct = t == DIRECT;
                let _ = writeln!(
                    out,
                    "| {t} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    stall_free.map_or("-".into(), |s| format!("{s}/{n}")),
                    num(self.stream_median(t, |s| Some(s.ttft_p50_ms)), 2),
                    num(self.stream_median(t, |s| Some(s.ttft_p99_ms)), 2),
                    if direct {
                        "-".into()
                    } else {
                        num(self.stream_added(t, |s| s.ttft_p50_ms), 2)
                    },
                    if direct {
                        "-".into()
                    } else {
                        num(self.stream_added(t, |s| s.ttft_p99_ms), 2)
                    },
                    num(self.stream_median(t, |s| Some(s.max_gap_p99_ms)), 1),
                    num(
                        self.run_median(t, |r| r.idle_rss_kib.map(|k| k as f64 / 1024.0)),
                        1
                    ),
                    num(per_stream(t), 1),
                    ratio(per_stream(t), per_stream(NGINX)),
                    ratio(per_stream(t), per_stream(&pingora_peer(t))),
                    num(
                        self.run_median(t, |r| r.peak_rss_kib.map(|k| k as f64 / 1024.0)),
                        1
                    ),
                    num(self.stream_median(t, |s| s.cpu_us_per_event), 2),
                );
            }
            let _ = writeln!(out);
        }
        out
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}
