//! The `switchyard` command: serve the gateway, check a config, or run the mock provider.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use switchyard::admin::keys_cli::{self, KeysCommand};
use switchyard::catalog::import::cli::{self as catalog_cli, CatalogCommand};
use switchyard::config::{self, Loaded};
use switchyard::server::{serve, ServeOptions};

/// jemalloc rather than glibc's malloc: a request makes a few hundred small allocations, and
/// glibc spent ~250 instructions on each (about a fifth of the gateway's CPU per request in
/// the callgrind profile, issue 12). mimalloc was as fast but held ~190 KB per open stream
/// (glibc and jemalloc ~70 KB) and stalled 1,000 paced streams on one thread (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at start (`_RJEM_MALLOC_CONF` in the environment still
/// adds to them). `tcache_max`: Pingora allocates a 64 KiB body buffer per request, above
/// jemalloc's default thread-cache limit (32 KiB), so each one took the arena's extent path
/// (~2,200 instructions per request, issue 12); cached per thread, it is a pop and a push.
#[used]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 18] = b"tcache_max:131072\0";

/// The demo config, built into the binary so `switchyard serve --demo` needs no files.
const DEMO_CONFIG: &str = include_str!("../conf/demo.yaml");

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A self-hosted LLM gateway on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The config file.
        #[arg(short, long, default_value = "conf/switchyard.yaml")]
        config: PathBuf,
        /// Run the built-in demo config (mock provider included; no API keys needed).
        #[arg(long, conflicts_with = "config")]
        demo: bool,
        /// Take over the listening sockets of a running instance (graceful upgrade).
        #[arg(short, long)]
        upgrade: bool,
        /// Reload only on SIGHUP and `POST /admin/reload`, not when the config files change.
        #[arg(long)]
        no_watch: bool,
    },
    /// Validate a config file and print every problem with its line and column.
    Check {
        #[arg(short, long, default_value = "conf/switchyard.yaml")]
        config: PathBuf,
        /// Also list what would change relative to this file (e.g. the running config).
        #[arg(long)]
        against: Option<PathBuf>,
    },
    /// Provision client keys in the ledger (what the admin API's /v1/keys does).
    Keys {
        #[arg(short, long, default_value = "conf/switchyard.yaml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Build catalog YAML from public price maps (litellm, OpenRouter).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run the mock provider (OpenAI dialect, with fault injection) on its own.
    Mock {
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: String,
    },
}

/// `println!` for the commands: a reader that stops early (`| head`) ends nothing but the
/// output; any other failure to write stdout ends the command with an error.
macro_rules! out {
    ($($arg:tt)*) => {
        if let Err(e) = switchyard::cli_out::print(&format!("{}\n", format_args!($($arg)*))) {
            eout!("error: cannot write to stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
}

/// `eprintln!` that cannot panic on a closed stderr.
macro_rules! eout {
    ($($arg:tt)*) => {
        switchyard::cli_out::eprint(&format!("{}\n", format_args!($($arg)*)))
    };
}

fn init_logging() {
    // Pingora logs whole upstream request heads at debug level, provider keys included: its
    // modules stay at info whatever RUST_LOG says (directives naming them included), so no log
    // setting can leak a secret.
    switchyard::logging::init();
}

fn print_warnings(file: &str, loaded: &Loaded) {
    for w in &loaded.warnings {
        eout!("{} (warning)", w.located(file));
    }
}

/// What reloading from `old` to `new` would change (`check --against`).
fn print_changes(old: &std::path::Path, new: &Loaded) -> ExitCode {
    match config::load_file(old) {
        Ok(old) => {
            let report = switchyard::reload::report(&old.snapshot, new);
            if report.changes.is_empty() {
                out!("a reload would change nothing in models or providers");
            }
            for change in report.changes {
                out!("would change: {change}");
            }
            // The new file's own warnings are printed already; these are the reload's.
            for warning in report.warnings.iter().skip(new.warnings.len()) {
                out!("would warn: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eout!("cannot compare with {}:\n{e}", old.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, against } => {
            let file = config.display().to_string();
            match config::load_file(&config) {
                Ok(loaded) => {
                    print_warnings(&file, &loaded);
                    let c = &loaded.snapshot.catalog;
                    out!(
                        "{file}: OK ({} providers, {} models, {} keys)",
                        c.providers.len(),
                        c.models.len(),
                        loaded.snapshot.keys.len()
                    );
                    if let Some(old) = against {
                        return print_changes(&old, &loaded);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eout!("{e}");
                    eout!("{file}: {} error(s)", e.errors.len());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            config,
            demo,
            upgrade,
            no_watch,
        } => {
            switchyard::reload::ignore_sighup_until_listening();
            init_logging();
            let loaded = if demo {
                config::load_str(DEMO_CONFIG, "demo.yaml (built in)", &|v| {
                    std::env::var(v).ok()
                })
            } else {
                config::load_file(&config)
            };
            let loaded = match loaded {
                Ok(l) => l,
                Err(e) => {
                    eout!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let file = config.display().to_string();
            print_warnings(&file, &loaded);
            let served = serve(
                loaded.snapshot,
                ServeOptions {
                    upgrade,
                    watch_config: !no_watch,
                },
            );
            // The last access lines may still sit in the log's batch.
            log::logger().flush();
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eout!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys { config, command } => {
            let loaded = match config::load_file(&config) {
                Ok(l) => l,
                Err(e) => {
                    eout!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let url = loaded
                .snapshot
                .storage
                .database_url
                .clone()
                .unwrap_or_else(|| switchyard::server::DEFAULT_DATABASE_URL.to_string());
            match keys_cli::run(&url, command) {
                Ok(answer) => {
                    out!(
                        "{}",
                        serde_json::to_string_pretty(&answer).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eout!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Catalog { command } => match catalog_cli::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eout!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Mock { listen } => {
            init_logging();
            match switchyard::mock::run_forever(&listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eout!("error: mock provider on {listen}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
