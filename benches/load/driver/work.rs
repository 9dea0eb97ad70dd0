//! The work, the same for every target: closed-loop non-stream chat at a fixed concurrency,
//! and a burst of long paced streams held open at once. Every loop is bounded by a deadline.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::time::sleep_until;

use crate::http::Conn;
use crate::procfs::Watched;

/// One concurrency level against one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Level {
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// CPU time of the proxy process per request (None for the mock directly).
    pub cpu_us_per_req: Option<f64>,
    /// Context switches of the proxy's threads per request.
    pub ctx_switches_per_req: Option<f64>,
    /// CPU time of the mock per request, as a check that the upstream's share is constant.
    pub mock_cpu_us_per_req: f64,
}

pub struct LevelPlan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub window: Duration,
}

/// `concurrency` connections, each sending the next request as soon as the last answered.
/// Only requests that finish inside the window count, and CPU is read at its two ends.
pub async fn closed_loop(
    addr: SocketAddr,
    request: Rc<Vec<u8>>,
    plan: &LevelPlan,
    watched: Option<Watched>,
    mock: Watched,
    ticks: u64,
) -> Level {
    let start = tokio::time::Instant::now();
    let win_start = start + plan.warmup;
    let win_end = win_start + plan.window;
    let mut tasks = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        let request = request.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            let mut conn: Option<Conn> = None;
            while tokio::time::Instant::now() < win_end {
                if conn.as_ref().is_none_or(|c| c.closed) {
                    match Conn::connect(addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected");
                let t0 = tokio::time::Instant::now();
                let outcome = c.exchange(&request).await;
                let t1 = tokio::time::Instant::now();
                let ok = matches!(&outcome, Ok(r) if r.status == 200);
                if outcome.is_err() {
                    conn = None;
                }
                if t1 >= win_start && t1 < win_end {
                    if ok {
                        latencies.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    sleep_until(win_start).await;
    let cpu0 = watched.map(|w| w.cpu(ticks));
    let cs0 = watched.map(|w| w.context_switches());
    let mock0 = mock.cpu(ticks);
    let t0 = Instant::now();
    sleep_until(win_end).await;
    let cpu1 = watched.map(|w| w.cpu(ticks));
    let cs1 = watched.map(|w| w.context_switches());
    let mock1 = mock.cpu(ticks);
    let seconds = t0.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    let per_req = |d: Duration| d.as_secs_f64() * 1e6 / requests.max(1) as f64;
    Level {
        concurrency: plan.concurrency,
        requests,
        errors,
        seconds,
        rps: requests as f64 / seconds,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        cpu_us_per_req: cpu0.zip(cpu1).map(|(a, b)| per_req(b.saturating_sub(a))),
        ctx_switches_per_req: cs0
            .zip(cs1)
            .map(|(a, b)| b.saturating_sub(a) as f64 / requests.max(1) as f64),
        mock_cpu_us_per_req: per_req(mock1.saturating_sub(mock0)),
    }
}

pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// The paced-stream phase against one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Streams {
    pub streams: usize,
    pub completed: usize,
    pub stall_free: usize,
    pub errors: usize,
    pub ttft_p50_ms: f64,
    pub ttft_p99_ms: f64,
    /// The 99th percentile over streams of each stream's longest inter-chunk gap.
    pub max_gap_p99_ms: f64,
    pub max_gap_ms: f64,
    /// Stalled streams whose longest gap came right before their last read (the closing
    /// usage chunk and `[DONE]`): a stall at the end, not in the middle.
    pub stalls_at_end: usize,
    /// Proxy RSS before the streams (after the non-stream phase), and the most seen while
    /// every stream was open at once.
    pub rss_before_kib: Option<u64>,
    pub rss_open_kib: Option<u64>,
    pub rss_per_stream_kib: Option<f64>,
    /// Proxy CPU over the whole phase divided by the upstream events relayed (each stream is
    /// `deltas` content events plus role, finish, usage and `[DONE]`).
    pub cpu_us_per_event: Option<f64>,
}

pub struct StreamPlan {
    pub streams: usize,
    pub deltas: u32,
    pub delay: Duration,
    /// Requests are spread over this long, so no listener's accept backlog overflows (a
    /// dropped SYN costs a 1 s retransmit and would be blamed on the target).
    pub ramp: Duration,
}

struct StreamOutcome {
    ok: bool,
    complete: bool,
    ttft_us: u32,
    max_gap: Duration,
    last_gap: Duration,
}

pub async fn paced_streams(
    addr: SocketAddr,
    request: Rc<Vec<u8>>,
    plan: &StreamPlan,
    watched: Option<Watched>,
    ticks: u64,
) -> Streams {
    let rss_before = watched.map(|w| w.rss_kib());
    let cpu_before = watched.map(|w| w.cpu(ticks));
    // Connections first, a batch at a time, so that the timed part starts with them open.
    let mut conns = Vec::with_capacity(plan.streams);
    let mut connect_errors = 0;
    for batch in (0..plan.streams).collect::<Vec<_>>().chunks(50) {
        let opened = futures_util::future::join_all(batch.iter().map(|_| Conn::connect(addr)));
        for c in opened.await {
            match c {
                Ok(c) => conns.push(c),
                Err(_) => connect_errors += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let open = Rc::new(Cell::new(0usize));
    let start = tokio::time::Instant::now();
    let n = conns.len().max(1);
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, mut conn) in conns.into_iter().enumerate() {
        let request = request.clone();
        let open = open.clone();
        let at = start + plan.ramp * i as u32 / n as u32;
        tasks.push(tokio::task::spawn_local(async move {
            sleep_until(at).await;
            let sent = Instant::now();
            open.set(open.get() + 1);
            let r = conn.exchange(&request).await;
            open.set(open.get() - 1);
            match r {
                Ok(r) => StreamOutcome {
                    ok: r.status == 200,
                    complete: memchr::memmem::find(&r.tail, b"[DONE]").is_some(),
                    ttft_us: r
                        .first_body_at
                        .map_or(u32::MAX, |t| (t - sent).as_micros() as u32),
                    max_gap: r.max_gap,
                    last_gap: r.last_gap,
                },
                Err(_) => StreamOutcome {
                    ok: false,
                    complete: false,
                    ttft_us: u32::MAX,
                    max_gap: Duration::ZERO,
                    last_gap: Duration::ZERO,
                },
            }
        }));
    }
    // Sample memory while every stream is open: after the ramp, before the first can end.
    let stream_len = plan.delay * plan.deltas;
    let mut rss_open = None;
    if let Some(w) = watched {
        let from = start + plan.ramp + Duration::from_millis(50);
        let until = start + stream_len.saturating_sub(Duration::from_millis(50));
        sleep_until(from).await;
        while tokio::time::Instant::now() < until {
            if open.get() >= n {
                rss_open = rss_open.max(Some(w.rss_kib()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(o) = t.await {
            outcomes.push(o);
        }
    }
    let cpu_used = watched
        .map(|w| w.cpu(ticks))
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let events = outcomes.len() as f64 * (plan.deltas as f64 + 4.0);
    let stall_limit = plan.delay * 2;
    let mut ttft: Vec<u32> = outcomes
        .iter()
        .filter(|o| o.ok)
        .map(|o| o.ttft_us)
        .collect();
    ttft.sort_unstable();
    let mut gaps: Vec<u32> = outcomes
        .iter()
        .filter(|o| o.ok)
        .map(|o| o.max_gap.as_micros() as u32)
        .collect();
    gaps.sort_unstable();
    let completed = outcomes.iter().filter(|o| o.ok && o.complete).count();
    Streams {
        streams: plan.streams,
        completed,
        stall_free: outcomes
            .iter()
            .filter(|o| o.ok && o.complete && o.max_gap <= stall_limit)
            .count(),
        errors: connect_errors + outcomes.iter().filter(|o| !o.ok).count(),
        ttft_p50_ms: percentile(&ttft, 0.50) / 1e3,
        ttft_p99_ms: percentile(&ttft, 0.99) / 1e3,
        max_gap_p99_ms: percentile(&gaps, 0.99) / 1e3,
        max_gap_ms: gaps.last().map_or(f64::NAN, |g| *g as f64 / 1e3),
        stalls_at_end: outcomes
            .iter()
            .filter(|o| o.ok && o.max_gap > stall_limit && o.last_gap == o.max_gap)
            .count(),
        rss_before_kib: rss_before,
        rss_open_kib: rss_open,
        rss_per_stream_kib: rss_before
            .zip(rss_open)
            .map(|(b, o)| o.saturating_sub(b) as f64 / plan.streams as f64),
        cpu_us_per_event: cpu_used.map(|c| c.as_secs_f64() * 1e6 / events.max(1.0)),
    }
}
