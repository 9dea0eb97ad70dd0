//! The side-by-side load bench (issue 12): the same work, in one invocation, against the mock
//! provider directly, nginx as a plain reverse proxy, a bare Pingora passthrough (1 and 2
//! threads) and Switchyard (1 and 2 threads) with auth, routing, metering and the ledger on;
//! `--peers` adds LiteLLM and Portkey when they are installed.
//!
//! Run it through `benches/load/run.sh` (which installs nginx and raises the fd limit). It is
//! a `harness = false` bench so that only `cargo bench` builds it, in the release profile and
//! with `CARGO_BIN_EXE_switchyard` pointing at the release binary; `cargo test --all-targets`
//! runs bench binaries without `--bench`, and then this one only says it skipped.
//!
//! Targets run one after another (never two at once) and each run measures every target, so
//! the machine's noise falls on all of them alike; tables report medians over runs.

mod http;
mod passthrough;
mod procfs;
mod report;
mod targets;
mod work;

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use report::{Results, TargetRun};
use targets::{Env, Target};
use work::{LevelPlan, StreamPlan};

struct Options {
    runs: usize,
    warmup: Duration,
    window: Duration,
    levels: Vec<usize>,
    streams: usize,
    deltas: u32,
    delay_ms: u32,
    ramp: Duration,
    threads: Vec<usize>,
    peers: bool,
    only: Option<Vec<String>>,
    out: Option<PathBuf>,
    raw: Option<PathBuf>,
    switchyard: PathBuf,
    nginx: Option<PathBuf>,
    wrap: Vec<String>,
    on_ready: Option<String>,
}

const USAGE: &str = "\
load_driver [--runs N] [--seconds S] [--warmup-ms MS] [--levels 1,32,128] [--streams N]
            [--deltas N] [--delay-ms MS] [--ramp-ms MS] [--threads 1,2] [--peers]
            [--only direct,nginx,pingora,switchyard,litellm,portkey] [--out FILE.md]
            [--raw FILE.jsonl] [--switchyard PATH] [--nginx PATH]
            [--wrap 'valgrind --tool=callgrind ...'] [--on-ready 'perf record -p {pid} ...']
load_driver passthrough --listen ADDR --upstream ADDR --threads N --dir DIR
load_driver --render FILE.jsonl    (the tables again from a --raw file)";

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("bad list item `{x}`")))
        .collect()
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: 3,
        warmup: Duration::from_millis(500),
        window: Duration::from_secs(4),
        levels: vec![1, 32, 128],
        streams: 1000,
        deltas: 64,
        delay_ms: 20,
        ramp: Duration::from_millis(500),
        threads: vec![1, 2],
        peers: false,
        only: None,
        out: None,
        raw: None,
        switchyard: PathBuf::from(env!("CARGO_BIN_EXE_switchyard")),
        nginx: targets::which("nginx").or_else(|| {
            let p = PathBuf::from("/usr/sbin/nginx");
            p.is_file().then_some(p)
        }),
        wrap: Vec::new(),
        on_ready: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: bad number"));
        match flag.as_str() {
            "--bench" => {}
            "--runs" => o.runs = num(value()?)?.clamp(1, 20) as usize,
            "--seconds" => o.window = Duration::from_secs(num(value()?)?.clamp(1, 60)),
            "--warmup-ms" => o.warmup = Duration::from_millis(num(value()?)?.min(10_000)),
            "--levels" => o.levels = list(&value()?)?,
            "--streams" => o.streams = num(value()?)?.min(10_000) as usize,
            "--deltas" => o.deltas = num(value()?)?.clamp(1, 10_000) as u32,
            "--delay-ms" => o.delay_ms = num(value()?)?.clamp(1, 1_000) as u32,
            "--ramp-ms" => o.ramp = Duration::from_millis(num(value()?)?.min(10_000)),
            "--threads" => o.threads = list(&value()?)?,
            "--peers" => o.peers = true,
            "--only" => o.only = Some(list(&value()?)?),
            "--out" => o.out = Some(value()?.into()),
            "--raw" => o.raw = Some(value()?.into()),
            "--switchyard" => o.switchyard = value()?.into(),
            "--nginx" => o.nginx = Some(value()?.into()),
            "--wrap" => o.wrap = value()?.split_whitespace().map(String::from).collect(),
            "--on-ready" => o.on_ready = Some(value()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if o.levels.iter().any(|c| *c == 0 || *c > 4096) || o.threads.contains(&0) {
        return Err("levels must be 1..=4096 and threads >= 1".into());
    }
    Ok(o)
}

fn passthrough_main(args: &[String]) -> ! {
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| {
                eprintln!("passthrough: {name} is required\n{USAGE}");
                std::process::exit(2)
            })
    };
    let upstream = get("--upstream").parse().unwrap_or_else(|_| {
        eprintln!("passthrough: bad --upstream");
        std::process::exit(2)
    });
    let threads = get("--threads").parse().unwrap_or(1);
    passthrough::serve(&get("--listen"), upstream, threads, &get("--dir"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("passthrough") {
        passthrough_main(&args[1..]);
    }
    if let Some(path) = args
        .iter()
        .position(|a| a == "--render")
        .and_then(|i| args.get(i + 1))
    {
        // The tables again from a `--raw` file, without measuring anything.
        match std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|text| Results::from_raw(&text))
        {
            Ok(results) => println!("{}", results.markdown()),
            Err(e) => {
                eprintln!("load_driver --render: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("load_driver: skipped (not under `cargo bench`); run benches/load/run.sh");
        return;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = drive(&opts) {
        eprintln!("load_driver: {e}");
        std::process::exit(1);
    }
}

fn wanted(opts: &Options, kind: &str) -> bool {
    opts.only
        .as_ref()
        .is_none_or(|only| only.iter().any(|o| o == kind))
}

/// The targets of one run, in order; each is started when its turn comes.
fn target_kinds(opts: &Options) -> Vec<(String, usize)> {
    let mut kinds = vec![("direct".to_string(), 0), ("nginx".to_string(), 0)];
    for t in &opts.threads {
        kinds.push(("pingora".into(), *t));
    }
    for t in &opts.threads {
        kinds.push(("switchyard".into(), *t));
    }
    if opts.peers {
        kinds.push(("litellm".into(), 0));
        kinds.push(("portkey".into(), 0));
    }
    kinds.retain(|(k, _)| wanted(opts, k));
    kinds
}

fn start(env: &Env, kind: &str, threads: usize) -> Result<Target, String> {
    match kind {
        "direct" => Ok(targets::direct(env)),
        "nginx" => targets::nginx(env),
        "pingora" => targets::pingora(env, threads),
        "switchyard" => targets::switchyard(env, threads),
        "litellm" => targets::litellm(env),
        "portkey" => targets::portkey(env),
        other => Err(format!("unknown target {other}")),
    }
}

fn drive(opts: &Options) -> Result<(), String> {
    if !opts.switchyard.is_file() {
        return Err(format!(
            "no switchyard binary at {} (cargo build --release)",
            opts.switchyard.display()
        ));
    }
    let tmp = std::env::temp_dir().join(format!("switchyard-load-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let (mut mock_child, mock_addr) = targets::start_mock(&opts.switchyard, &tmp)?;
    let mock = procfs::Watched {
        pid: mock_child.id(),
        tree: false,
    };
    let env = Env {
        switchyard: opts.switchyard.clone(),
        nginx: opts.nginx.clone(),
        tmp: tmp.clone(),
        mock: mock_addr,
        wrap: opts.wrap.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let ticks = procfs::clock_ticks();
    let mut results = Results {
        order: Vec::new(),
        runs: Vec::new(),
    };
    let mut skipped: Vec<String> = Vec::new();
    eprintln!(
        "load bench: {} run(s); levels {:?} x {:?} each; {} streams of {} deltas x {} ms",
        opts.runs, opts.levels, opts.window, opts.streams, opts.deltas, opts.delay_ms
    );
    for run in 1..=opts.runs {
        for (kind, threads) in target_kinds(opts) {
            let target = match start(&env, &kind, threads) {
                Ok(t) => t,
                Err(e) => {
                    if !skipped.contains(&kind) {
                        eprintln!("skipping {kind}: {e}");
                        skipped.push(kind.clone());
                    }
                    continue;
                }
            };
            eprintln!("run {run}: {}", target.name);
            let hook = on_ready(opts, &target);
            let measured = local.block_on(&rt, measure(&target, opts, mock, ticks, run));
            if !results.order.contains(&target.name) {
                results.order.push(target.name.clone());
            }
            results.runs.push(measured);
            if let Some(hook) = hook {
                finish_hook(hook);
            }
            drop(target);
        }
    }
    let _ = mock_child.kill();
    let _ = mock_child.wait();
    let table = results.markdown();
    println!("{table}");
    if let Some(path) = &opts.out {
        std::fs::write(path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &opts.raw {
        let lines: Vec<String> = results
            .runs
            .iter()
            .filter_map(|r| serde_json::to_string(r).ok())
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Starts the `--on-ready` command (a profiler attaching to the target) without waiting.
fn on_ready(opts: &Options, target: &Target) -> Option<std::process::Child> {
    let cmd = opts.on_ready.as_ref()?;
    let pid = target.watched?.pid;
    std::process::Command::new("sh")
        .args(["-c", &cmd.replace("{pid}", &pid.to_string())])
        .spawn()
        .map_err(|e| eprintln!("--on-ready: {e}"))
        .ok()
}

/// The hook must end on its own (e.g. `perf record ... -- sleep 10`); it gets 60 s.
fn finish_hook(mut hook: std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = hook.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("--on-ready command still running after 60 s; killing it");
    let _ = hook.kill();
    let _ = hook.wait();
}

async fn measure(
    target: &Target,
    opts: &Options,
    mock: procfs::Watched,
    ticks: u64,
    run: usize,
) -> TargetRun {
    let idle_rss_kib = target.watched.map(|w| w.rss_kib());
    let request = Rc::new(targets::chat_request(target, None));
    let mut levels = Vec::new();
    for &concurrency in &opts.levels {
        let plan = LevelPlan {
            concurrency,
            warmup: opts.warmup,
            window: opts.window,
        };
        let level = work::closed_loop(
            target.addr,
            request.clone(),
            &plan,
            target.watched,
            mock,
            ticks,
        )
        .await;
        eprintln!(
            "  c={concurrency}: {:.0} rps, p50 {:.0} us, p99 {:.0} us, cpu {} us/req, {} errors",
            level.rps,
            level.p50_us,
            level.p99_us,
            level
                .cpu_us_per_req
                .map_or("-".into(), |c| format!("{c:.1}")),
            level.errors
        );
        levels.push(level);
    }
    let streams = if opts.streams > 0 {
        // Let connections of the closed loop close and memory settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let plan = StreamPlan {
            streams: opts.streams,
            deltas: opts.deltas,
            delay: Duration::from_millis(opts.delay_ms as u64),
            ramp: opts.ramp,
        };
        let request = Rc::new(targets::chat_request(
            target,
            Some((opts.deltas, opts.delay_ms)),
        ));
        let s = work::paced_streams(target.addr, request, &plan, target.watched, ticks).await;
        eprintln!(
            "  streams: {}/{} stall-free ({} stalls at the end), {} complete, ttft p50 {:.2} ms p99 {:.2} ms, worst gap {:.1} ms, {} KiB/stream, {} us cpu/event",
            s.stall_free,
            s.streams,
            s.stalls_at_end,
            s.completed,
            s.ttft_p50_ms,
            s.ttft_p99_ms,
            s.max_gap_ms,
            s.rss_per_stream_kib.map_or("-".into(), |k| format!("{k:.1}")),
            s.cpu_us_per_event.map_or("-".into(), |c| format!("{c:.2}"))
        );
        Some(s)
    } else {
        None
    };
    TargetRun {
        target: target.name.clone(),
        run,
        idle_rss_kib,
        levels,
        streams,
        peak_rss_kib: target.watched.map(|w| w.hwm_kib()),
    }
}
