//! The processes under test, each started from scratch for its turn and stopped after: the
//! mock provider (started once, the upstream of every target), nginx, the bare Pingora
//! passthrough, Switchyard, and the optional peers. All listen on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs::Watched;

/// The client key Switchyard accepts (its sha256 is in the generated config).
pub const CLIENT_KEY: &str = "sk-bench-client";
/// What Switchyard and the peers send upstream; the mock accepts anything.
const UPSTREAM_KEY: &str = "sk-bench-upstream";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where things are and what to run.
pub struct Env {
    pub switchyard: PathBuf,
    pub nginx: Option<PathBuf>,
    pub tmp: PathBuf,
    pub mock: SocketAddr,
    /// A command Switchyard and the Pingora passthrough run under (a profiler:
    /// `valgrind --tool=callgrind ...`).
    pub wrap: Vec<String>,
}

/// How the load reaches one target.
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub path: &'static str,
    /// The `model` clients ask for at this target.
    pub model: &'static str,
    /// Extra request header lines (`Name: value\r\n`), for peers that route by header.
    pub headers: String,
    /// The proxy process whose CPU and memory are measured (`None`: the mock directly).
    pub watched: Option<Watched>,
    child: Option<Child>,
    /// nginx must be told to stop (SIGQUIT) or its workers outlive a killed master.
    graceful_stop: bool,
}

impl Drop for Target {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.graceful_stop {
            signal(child.id(), "TERM");
            // A profiler writes its data on the way out, which can take a while.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::File::create(dir.join(format!("{name}.log")))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// The mock provider, as its own process so that its CPU is not the load generator's.
pub fn start_mock(switchyard: &Path, tmp: &Path) -> Result<(Child, SocketAddr), String> {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(switchyard)
        .args(["mock", "--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(log_file(tmp, "mock"))
        .spawn()
        .map_err(|e| format!("cannot start the mock ({}): {e}", switchyard.display()))?;
    let mut target = Target {
        name: "mock".into(),
        addr,
        path: "/v1/chat/completions",
        model: "mock-small",
        headers: String::new(),
        watched: None,
        child: Some(child),
        graceful_stop: false,
    };
    wait_ready(&mut target)?;
    Ok((target.child.take().expect("started"), addr))
}

/// The mock itself: the baseline every added latency is measured against.
pub fn direct(env: &Env) -> Target {
    Target {
        name: "direct (mock)".into(),
        addr: env.mock,
        path: "/v1/chat/completions",
        model: "mock-small",
        headers: String::new(),
        watched: None,
        child: None,
        graceful_stop: false,
    }
}

/// nginx as a plain reverse proxy: HTTP/1.1 upstream keep-alive, no buffering of streams,
/// access log on (as Switchyard logs one line per request), one worker per core.
pub fn nginx(env: &Env) -> Result<Target, String> {
    let bin = env.nginx.as_ref().ok_or("nginx not found")?;
    let dir = env.tmp.join("nginx");
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let port = free_port();
    // As root, nginx would switch its workers to `nobody`, who cannot write the temp prefix.
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        r#"{user}worker_processes auto;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 1000000;
    upstream mock {{
        server {mock};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#,
        dir = dir.display(),
        mock = env.mock,
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "stderr"))
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let pid = child.id();
    let mut target = Target {
        name: "nginx".into(),
        addr: ([127, 0, 0, 1], port).into(),
        path: "/v1/chat/completions",
        model: "mock-small",
        headers: String::new(),
        watched: Some(Watched { pid, tree: true }),
        child: Some(child),
        graceful_stop: true,
    };
    wait_ready(&mut target)?;
    Ok(target)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The bare Pingora passthrough: this same binary, in its `passthrough` mode.
pub fn pingora(env: &Env, threads: usize) -> Result<Target, String> {
    let dir = env.tmp.join(format!("pingora-{threads}t"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = wrapped(env, &exe)
        .args([
            "passthrough",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &env.mock.to_string(),
            "--threads",
            &threads.to_string(),
            "--dir",
            &dir.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "stderr"))
        .spawn()
        .map_err(|e| format!("cannot start the passthrough: {e}"))?;
    let pid = child.id();
    let mut target = Target {
        name: format!("pingora bare {threads}t"),
        addr: ([127, 0, 0, 1], port).into(),
        path: "/v1/chat/completions",
        model: "mock-small",
        headers: String::new(),
        watched: Some(Watched { pid, tree: false }),
        child: Some(child),
        graceful_stop: !env.wrap.is_empty(),
    };
    wait_ready(&mut target)?;
    Ok(target)
}

/// `program`, or `program` under the `--wrap` command.
fn wrapped(env: &Env, program: &Path) -> Command {
    match env.wrap.split_first() {
        Some((wrapper, args)) => {
            let mut c = Command::new(wrapper);
            c.args(args).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Switchyard with everything a production request goes through: key auth, a budget and
/// rate limits (set high enough never to refuse), route planning, the OpenAI-dialect body
/// rewrite, metering, the SQLite ledger, access logging at the default level.
pub fn switchyard(env: &Env, threads: usize) -> Result<Target, String> {
    let dir = env.tmp.join(format!("switchyard-{threads}t"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port();
    let config = format!(
        r#"server:
  listen: ["127.0.0.1:{port}"]
  threads: {threads}
  grace_period: 1s
  pid_file: "{dir}/switchyard.pid"
  upgrade_sock: "{dir}/upgrade.sock"
storage:
  database_url: "sqlite://{dir}/ledger.db"
providers:
  mock:
    dialect: openai
    base_url: "http://{mock}/v1"
    api_key_env: BENCH_UPSTREAM_KEY
    timeouts: {{ connect: 2s, first_byte: 30s, idle: 30s }}
models:
  bench/model:
    context_length: 128000
    endpoints:
      - {{ provider: mock, model: mock-small, price: {{ prompt: 0.15, completion: 0.60 }}, supports: [tools, stream] }}
keys:
  - name: bench
    key_sha256: "{hash}"
    limit_usd: 1000000
    limit_reset: never
    rpm: 1000000000
    tpm: 1000000000000
"#,
        dir = dir.display(),
        mock = env.mock,
        hash = sha256_hex(CLIENT_KEY),
    );
    let conf_path = dir.join("switchyard.yaml");
    std::fs::write(&conf_path, config).map_err(|e| e.to_string())?;
    let child = wrapped(env, &env.switchyard)
        .args(["serve", "-c"])
        .arg(&conf_path)
        .env("BENCH_UPSTREAM_KEY", UPSTREAM_KEY)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "switchyard"))
        .spawn()
        .map_err(|e| format!("cannot start switchyard: {e}"))?;
    let pid = child.id();
    let mut target = Target {
        name: format!("switchyard {threads}t"),
        addr: ([127, 0, 0, 1], port).into(),
        path: "/v1/chat/completions",
        model: "bench/model",
        headers: String::new(),
        watched: Some(Watched { pid, tree: false }),
        child: Some(child),
        // SIGTERM lets a wrapping profiler see a normal exit and write its output.
        graceful_stop: !env.wrap.is_empty(),
    };
    wait_ready(&mut target)?;
    Ok(target)
}

/// LiteLLM's proxy (pip `litellm[proxy]`), one worker, if `litellm` is on PATH.
pub fn litellm(env: &Env) -> Result<Target, String> {
    let bin = which("litellm").ok_or("litellm is not installed (pip install 'litellm[proxy]')")?;
    let dir = env.tmp.join("litellm");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port();
    let config = format!(
        "model_list:\n  - model_name: bench/model\n    litellm_params:\n      model: openai/mock-small\n      api_base: http://{}/v1\n      api_key: {UPSTREAM_KEY}\nlitellm_settings:\n  telemetry: false\ngeneral_settings:\n  master_key: {CLIENT_KEY}\n",
        env.mock
    );
    let conf_path = dir.join("litellm.yaml");
    std::fs::write(&conf_path, config).map_err(|e| e.to_string())?;
    // The client key is LiteLLM's master key (it refuses to start without one, and then
    // authenticates every request as Switchyard does); its cost map is the bundled one (no
    // machine here reaches the internet).
    let child = Command::new(bin)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .arg("--config")
        .arg(&conf_path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num_workers", "1"])
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "litellm"))
        .spawn()
        .map_err(|e| format!("cannot start litellm: {e}"))?;
    let pid = child.id();
    let mut target = Target {
        name: "litellm".into(),
        addr: ([127, 0, 0, 1], port).into(),
        path: "/v1/chat/completions",
        model: "bench/model",
        headers: String::new(),
        watched: Some(Watched { pid, tree: true }),
        child: Some(child),
        graceful_stop: true,
    };
    wait_ready(&mut target)?;
    Ok(target)
}

/// Portkey's open-source gateway (npm `@portkey-ai/gateway`), when it is installed globally;
/// `npx --no` refuses to download it. It routes by headers: provider `openai` at the mock.
pub fn portkey(env: &Env) -> Result<Target, String> {
    let npx = which("npx").ok_or("npx is not installed")?;
    let installed = Command::new("npm")
        .args(["ls", "-g", "--depth=0", "@portkey-ai/gateway"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("@portkey-ai/gateway")
        });
    if !installed {
        return Err(
            "the Portkey gateway is not installed (npm install -g @portkey-ai/gateway)".into(),
        );
    }
    let dir = env.tmp.join("portkey");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port();
    let child = Command::new(npx)
        .args(["--no", "@portkey-ai/gateway", &format!("--port={port}")])
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "portkey"))
        .spawn()
        .map_err(|e| format!("cannot start the Portkey gateway: {e}"))?;
    let pid = child.id();
    let mut target = Target {
        name: "portkey".into(),
        addr: ([127, 0, 0, 1], port).into(),
        path: "/v1/chat/completions",
        model: "mock-small",
        headers: format!(
            "x-portkey-provider: openai\r\nx-portkey-custom-host: http://{}/v1\r\n",
            env.mock
        ),
        watched: Some(Watched { pid, tree: true }),
        child: Some(child),
        graceful_stop: true,
    };
    wait_ready(&mut target)?;
    Ok(target)
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The exact bytes of one non-stream (or stream) chat request to `target`.
pub fn chat_request(target: &Target, stream_knobs: Option<(u32, u32)>) -> Vec<u8> {
    let body = match stream_knobs {
        None => format!(
            r#"{{"model":"{}","messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"Say hello and tell me one fact about gateways."}}],"max_tokens":128,"temperature":0.2}}"#,
            target.model
        ),
        Some((deltas, delay_ms)) => format!(
            r#"{{"model":"{}","messages":[{{"role":"user","content":"Stream a long answer."}}],"max_tokens":256,"stream":true,"stream_options":{{"include_usage":true}},"mock":{{"chunks":{deltas},"chunk_delay_ms":{delay_ms}}}}}"#,
            target.model
        ),
    };
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {CLIENT_KEY}\r\nContent-Type: application/json\r\nAccept: {}\r\n{}Content-Length: {}\r\n\r\n{body}",
        target.path,
        target.addr,
        if stream_knobs.is_some() { "text/event-stream" } else { "application/json" },
        target.headers,
        body.len()
    )
    .into_bytes()
}

/// Waits until the target answers a chat request with 200, or its process dies.
fn wait_ready(target: &mut Target) -> Result<(), String> {
    let request = chat_request(target, None);
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Some(child) = target.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{} exited early ({status})", target.name));
            }
        }
        match probe(target.addr, &request) {
            Ok(head) if head.starts_with("HTTP/1.1 200") => return Ok(()),
            Ok(head) => last = head.lines().next().unwrap_or("").to_string(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{} not ready: {last}", target.name))
}

fn probe(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request)?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
