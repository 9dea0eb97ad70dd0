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
