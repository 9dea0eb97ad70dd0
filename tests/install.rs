//! The binary as operators install and check it: the systemd unit, `switchyard check`, and
//! the allocator settings it runs with. No gateway is served here (`operations.rs` serves).

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze not installed: unit not verified");
        return;
    };
    assert!(out.status.success());
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/switchyard.service"
    ))
    .unwrap();
    // Verify against this build's binary in place of the installed path.
    let dir = std::env::temp_dir().join(format!("switchyard-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("switchyard.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/switchyard",
            env!("CARGO_BIN_EXE_switchyard"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for directive in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=switchyard",
        "User=switchyard",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(directive), "{directive}");
    }
}

#[test]
fn check_validates_and_reports_what_a_reload_would_change() {
    let dir = std::env::temp_dir().join(format!("switchyard-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml")).unwrap();
    let (old, new, bad) = (
        dir.join("old.yaml"),
        dir.join("new.yaml"),
        dir.join("bad.yaml"),
    );
    std::fs::write(&old, &demo).unwrap();
    std::fs::write(&new, demo.replace("demo/smart:", "demo/smarter:")).unwrap();
    std::fs::write(&bad, "server:\n  listen: [nowhere]\nmodels:\n  a/b:\n    endpoints:\n      - { provider: none, model: m, extra: 1 }\n").unwrap();
    let check = |args: &[&std::path::Path]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("check").arg("-c").arg(args[0]);
        if let Some(against) = args.get(1) {
            cmd.arg("--against").arg(against);
        }
        cmd.output().unwrap()
    };
    let out = check(&[&new, &old]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("would change: model demo/smarter added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would change: model demo/smart removed"),
        "{stdout}"
    );
    let out = check(&[&bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:2:12: server.listen[0]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:6:"),
        "every error, with its position: {stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The binary's allocator settings (src/main.rs) take effect: jemalloc reports the options
/// it runs with when asked to print its statistics at exit.
#[test]
fn the_allocator_caches_pingoras_body_buffers_per_thread() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(stats.contains("opt.tcache_max: 131072"), "{stats}");
}

/// A ledger that cannot be opened is named in the error without its password (the docs
/// tell operators to write it in `database_url`, and stderr goes to the journal).
#[test]
fn an_unreachable_ledger_is_named_without_its_password() {
    let dir = std::env::temp_dir().join(format!("switchyard-install-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "storage:\n  database_url: \"postgres://sy:hunter2-secret@127.0.0.1:{port}/ledger\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["keys", "-c"])
        .arg(&config)
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("postgres://sy:***@127.0.0.1:{port}/ledger")),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A listen address already taken stops `serve` at once with the reason, rather than leaving
/// a process up (and systemd content) without the listener.
#[test]
fn serve_fails_when_it_cannot_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (dir, mut child) = spawn_serve("bind", addr, "", std::process::Stdio::piped());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running without its listener on {addr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    drop(taken);
    let _ = std::fs::remove_dir_all(&dir);
}

/// README's service install steps, followed into a scratch directory standing for
/// /etc/switchyard: what they copy is a config that checks (the shipped config includes
/// `catalog/*.yaml` beside it, so the steps must copy the catalog too).
#[test]
fn the_readme_install_steps_give_a_config_that_checks() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(manifest.join("README.md")).unwrap();
    let etc = std::env::temp_dir().join(format!("switchyard-install-etc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&etc);
    std::fs::create_dir_all(&etc).unwrap();
    // `sudo install ... SOURCES /etc/switchyard/DIR/`: the copies into /etc/switchyard.
    let copies = readme
        .lines()
        .flat_map(|line| line.split("&&"))
        .map(str::split_whitespace)
        .map(|words| words.filter(|w| *w != "sudo").collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&"install") && !w.contains(&"-d"))
        .filter(|w| w.last().is_some_and(|d| d.starts_with("/etc/switchyard/")));
    let mut copied = 0;
    for words in copies {
        let dest = etc.join(words.last().unwrap().trim_start_matches("/etc/switchyard/"));
        std::fs::create_dir_all(&dest).unwrap();
        for source in words.iter().filter(|w| w.starts_with("conf/")) {
            let (dir, pattern) = source.rsplit_once('/').unwrap();
            for entry in std::fs::read_dir(manifest.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                let matches = match pattern.strip_prefix('*') {
                    Some(suffix) => name.ends_with(suffix),
                    None => name == pattern,
                };
                if matches {
                    std::fs::copy(&path, dest.join(&name)).unwrap();
                    copied += 1;
                }
            }
        }
    }
    assert!(copied > 1, "no install steps found in README.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "-c"])
        .arg(etc.join("switchyard.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&etc);
}

/// `systemctl reload` right after `start`: a SIGHUP while the gateway is still starting (here
/// waiting up to 2 s for a Redis that is not there) must not end it; it serves once up.
#[test]
fn a_sighup_during_startup_does_not_stop_the_gateway() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (listen, no_redis) = (free(), free());
    let (dir, mut child) = spawn_serve(
        "hup",
        listen,
        &format!("  redis_url: \"redis://{no_redis}\"\n"),
        std::process::Stdio::null(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let healthy = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway ended on a SIGHUP during startup: {status}");
        }
        let answered = std::net::TcpStream::connect(listen).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut head = [0u8; 12];
            s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
        });
        if answered || std::time::Instant::now() > deadline {
            break answered;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "the gateway never answered /healthz");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `switchyard serve` on a scratch config (in the returned folder) listening on `listen`,
/// its ledger beside it, with `storage` lines added under `storage:`.
fn spawn_serve(
    name: &str,
    listen: std::net::SocketAddr,
    storage: &str,
    stderr: std::process::Stdio,
) -> (std::path::PathBuf, std::process::Child) {
    let dir =
        std::env::temp_dir().join(format!("switchyard-install-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: [\"{listen}\"]\n  grace_period: 1s\nstorage:\n  database_url: \"sqlite://{}/ledger.db\"\n{storage}",
            dir.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--no-watch", "-c"])
        .arg(&config)
        .stderr(stderr)
        .spawn()
        .unwrap();
    (dir, child)
}
