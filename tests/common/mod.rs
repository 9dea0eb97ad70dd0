//! Test harness: the real `switchyard` binary against in-process mock providers on 127.0.0.1.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use switchyard::mock::MockServer;

/// The client key every test config accepts.
pub const KEY: &str = "sk-test-key";
/// The secret the gateway sends upstream (`api_key_env: UPSTREAM_KEY`).
pub const UPSTREAM_KEY: &str = "sk-upstream-secret";

/// A port free now, below Linux's ephemeral range (32768+): ports the OS hands out as client
/// source ports (every test's outgoing connections) can then never take it before the
/// gateway binds it. Never the same port twice in one test binary: tests run in parallel,
/// and two that drew the same free port before either bound it ran one gateway's admin API
/// on the other's proxy port (a 404 where a 401 was due, seen in CI).
pub fn free_port() -> u16 {
    use rand::Rng;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A running gateway process; killed when dropped.
pub struct Gateway {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Gateway {
    /// Starts the binary with `yaml` (whose `{listen}` is replaced by the gateway address and
    /// `{key_sha256}` by the test key's hash) and waits until `/healthz` answers.
    pub fn start(yaml: &str) -> Gateway {
        Self::start_with_env(yaml, &[])
    }

    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_with(yaml, env, &[])
    }

    /// As `start_with_env`, with more arguments for `serve` (e.g. `--no-watch`).
    pub fn start_with(yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Gateway {
        Self::start_in(yaml, env, args, false)
    }

    /// As `start`, but `config.yaml` is a symbolic link to `real/config.yaml` (a folder of
    /// its own), as when /etc links to a config kept elsewhere.
    pub fn start_linked(yaml: &str) -> Gateway {
        Self::start_in(yaml, &[], &[], true)
    }

    fn start_in(yaml: &str, env: &[(&str, &str)], args: &[&str], linked: bool) -> Gateway {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("switchyard-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yaml");
        let mut text = yaml
            .replace("{listen}", &format!("127.0.0.1:{port}"))
            .replace("{key_sha256}", &sha256_hex(KEY))
            .replace("{dir}", &dir.display().to_string());
        if !text.contains("\nstorage:") && !text.starts_with("storage:") {
            // Each gateway gets its own ledger in its own directory.
            text.push_str(&format!(
                "storage:\n  database_url: \"sqlite://{}/ledger.db\"\n",
                dir.display()
            ));
        }
        if linked {
            std::fs::create_dir_all(dir.join("real")).unwrap();
            std::fs::write(dir.join("real/config.yaml"), &text).unwrap();
            std::os::unix::fs::symlink("real/config.yaml", &config).unwrap();
        } else {
            std::fs::write(&config, &text).unwrap();
        }
        let log = dir.join("gateway.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["serve", "-c"])
            .arg(&config)
            .args(args)
            .env("UPSTREAM_KEY", UPSTREAM_KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start switchyard");
        let mut gw = Gateway {
            child,
            port,
            dir,
            log,
        };
        gw.wait_ready();
        // The admin and metrics listeners are services of their own, up a moment after the
        // front door: a test that goes straight to one must not race its start.
        for listener in ["admin_listen", "metrics_listen"] {
            if let Some(port) = listener_port(&text, listener) {
                gw.wait_port(port, listener);
            }
        }
        gw
    }

    fn wait_port(&mut self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                panic!("{what} 127.0.0.1:{port} not up:\n{}", self.log_text());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited early ({status}):\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited early ({status}):\n{}", self.log_text());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ =
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("gateway not ready:\n{}", self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once `ready` holds of it (polled for 10 s, then a panic). Access lines are
    /// written in batches up to ~100 ms after their request ends (`src/log_batch.rs`).
    pub fn log_when(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log_text();
            if ready(&log) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the log never showed {what}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log once it holds at least `n` access lines.
    pub fn log_with_access_lines(&self, n: usize) -> String {
        self.log_when(&format!("{n} access lines"), |log| {
            log.matches(" access] ").count() >= n
        })
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its exit status if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts a second process on the same config with `serve -u`: it takes over this one's
    /// listening sockets when this one gets SIGQUIT.
    /// The new process of a graceful upgrade; killed when dropped, so a failing test leaves
    /// no gateway behind.
    pub fn spawn_upgrade(&self) -> ChildGuard {
        ChildGuard(
            Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(["serve", "-u", "-c"])
                .arg(self.config_path())
                .env("UPSTREAM_KEY", UPSTREAM_KEY)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(self.dir.join("upgraded.log")).unwrap())
                .spawn()
                .expect("start the upgrade"),
        )
    }

    pub fn ledger_url(&self) -> String {
        format!("sqlite://{}/ledger.db", self.dir.display())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    /// Rewrites the config file the gateway was started with (same substitutions).
    pub fn write_config(&self, yaml: &str) {
        let mut text = yaml
            .replace("{listen}", &format!("127.0.0.1:{}", self.port))
            .replace("{key_sha256}", &sha256_hex(KEY));
        if !text.contains("\nstorage:") && !text.starts_with("storage:") {
            text.push_str(&format!(
                "storage:\n  database_url: \"sqlite://{}/ledger.db\"\n",
                self.dir.display()
            ));
        }
        // Write then rename, as editors and config managers do.
        let tmp = self.dir.join("config.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.config_path()).unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs a chat request with the test key.
pub async fn chat(gw: &Gateway, body: serde_json::Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON body of `GET url`, with `bearer` as the key when given.
pub async fn get_json(url: String, bearer: Option<&str>) -> serde_json::Value {
    let mut request = client().get(url);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// The `data` of `GET /v1/generation?id=` for the test key's request `id`.
pub async fn generation_data(gw: &Gateway, id: &str) -> serde_json::Value {
    let url = gw.url(&format!("/v1/generation?id={id}"));
    get_json(url, Some(KEY)).await["data"].clone()
}

/// Sends raw bytes on a fresh connection and returns everything the server wrote back.
pub fn raw_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The SSE events of a body, each without its trailing blank line.
/// Comment events (`: keep-alive`) are left out, as every SSE client does.
pub fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty() && !e.starts_with(':'))
        .map(str::to_string)
        .collect()
}

/// A provider entry for a mock.
pub fn provider(name: &str, mock: &MockServer) -> String {
    format!(
        "  {name}:\n    dialect: openai\n    base_url: \"{}\"\n    api_key_env: UPSTREAM_KEY\n    timeouts: {{ connect: 1s, first_byte: 3s, idle: 3s }}\n",
        mock.base_url()
    )
}

/// The common head of a test config.
pub fn config_head() -> String {
    "server:\n  listen: [\"{listen}\"]\n  threads: 2\n  grace_period: 1s\n  max_body_bytes: 1048576\nkeys:\n  - name: tester\n    key_sha256: \"{key_sha256}\"\n  - name: limited\n    key_sha256: \"".to_string()
        + &sha256_hex("sk-limited")
        + "\"\n    allowed_models: [\"test/other\"]\n"
}

/// One row of the ledger's `generations` table, read straight from the SQLite file.
#[derive(Clone, Debug)]
pub struct LedgerRow {
    pub id: String,
    pub key_hash: String,
    pub model: String,
    pub provider: String,
    pub status: i64,
    pub streamed: bool,
    pub cancelled: bool,
    pub estimated: bool,
    pub finish_reason: Option<String>,
    pub error: Option<String>,
    pub tokens_completion: i64,
    pub cost_pico: String,
}

/// Every generation record in the ledger at `database_url`, oldest first.
pub async fn read_ledger(database_url: &str) -> Vec<LedgerRow> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("open the ledger");
    let rows = sqlx::query(
        "SELECT id, key_hash, model, provider, status, streamed, cancelled, estimated, \
         finish_reason, error, tokens_completion, cost_pico FROM generations ORDER BY created_at",
    )
    .fetch_all(&pool)
    .await
    .expect("read the generations");
    pool.close().await;
    rows.iter()
        .map(|r| LedgerRow {
            id: r.get(0),
            key_hash: r.get(1),
            model: r.get(2),
            provider: r.get(3),
            status: r.get(4),
            streamed: r.get::<i64, _>(5) != 0,
            cancelled: r.get::<i64, _>(6) != 0,
            estimated: r.get::<i64, _>(7) != 0,
            finish_reason: r.get(8),
            error: r.get(9),
            tokens_completion: r.get(10),
            cost_pico: r.get(11),
        })
        .collect()
}

/// Stops the gateway gracefully (SIGTERM flushes the ledger) and reads every record it wrote.
pub async fn stop_and_read_ledger(gw: &mut Gateway) -> Vec<LedgerRow> {
    gw.signal("TERM");
    assert!(
        gw.wait_exit(Duration::from_secs(20)).is_some(),
        "the gateway did not stop:\n{}",
        gw.log_text()
    );
    read_ledger(&gw.ledger_url()).await
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard(pub Child);

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port of `name: "127.0.0.1:<port>"` in a config's text, if it has one.
fn listener_port(config: &str, name: &str) -> Option<u16> {
    let rest = &config[config.find(&format!("{name}: \"127.0.0.1:"))?..];
    let digits = rest.split(':').nth(2)?;
    digits.split('"').next()?.parse().ok()
}
