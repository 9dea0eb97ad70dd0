//! The baseline of "Pingora used naively": a `ProxyHttp` with only `upstream_peer`, every
//! other hook at its default (upstream keep-alive pool included). Whatever Switchyard costs
//! above this is the price of its own features.
//!
//! Run by the driver as a child process of itself (`load_driver passthrough ...`), so its CPU
//! and memory are read from /proc apart from the load generator's.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};
use std::net::SocketAddr;

struct Passthrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

/// Serves until killed. `dir` holds Pingora's pid file and upgrade socket.
pub fn serve(listen: &str, upstream: SocketAddr, threads: usize, dir: &str) -> ! {
    let conf = ServerConf {
        threads,
        // Pingora's default runtime (work stealing) unless asked: the naive baseline. With
        // LOAD_BENCH_BARE_NO_STEAL set it runs as Switchyard does by default (one
        // single-threaded runtime per thread), to tell the runtime's share from the rest.
        work_stealing: std::env::var_os("LOAD_BENCH_BARE_NO_STEAL").is_none_or(|v| v.is_empty()),
        pid_file: format!("{dir}/passthrough.pid"),
        upgrade_sock: format!("{dir}/passthrough-upgrade.sock"),
        // SIGTERM ends the process at once (a wrapping profiler then writes its output).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Passthrough { upstream });
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
