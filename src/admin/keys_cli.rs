//! `switchyard keys ...`: the admin key API from the command line, straight against the
//! ledger named by the config file. A running gateway sees the change within its key refresh
//! interval (5 s).

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::keys::KeysApi;
use crate::auth::LimitReset;
use crate::ledger::{block_on, Ledger};
use crate::limits::Budgets;
use crate::metering::Cost;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List every key created through the admin API (never their secrets).
    List,
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// Budget in USD per period.
        #[arg(long)]
        limit: Option<f64>,
        /// daily, weekly, monthly or never.
        #[arg(long)]
        limit_reset: Option<String>,
        #[arg(long)]
        rpm: Option<u32>,
        #[arg(long)]
        tpm: Option<u64>,
        /// A model pattern the key may use (`openai/*`); repeat for several.
        #[arg(long = "allow")]
        allowed_models: Vec<String>,
    },
    /// Show one key by its hash.
    Get { hash: String },
    /// Change a key.
    Update {
        hash: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "no_limit")]
        limit: Option<f64>,
        /// Remove the budget.
        #[arg(long)]
        no_limit: bool,
        #[arg(long)]
        limit_reset: Option<String>,
        #[arg(long)]
        rpm: Option<u32>,
        #[arg(long)]
        tpm: Option<u64>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Delete a key.
    Delete { hash: String },
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(k.to_string(), json!(v));
    }
}

/// What the command sends to the keys API: method, path after `/v1/keys`, body.
fn request(cmd: KeysCommand) -> (&'static str, String, Value) {
    match cmd {
        KeysCommand::List => ("GET", String::new(), Value::Null),
        KeysCommand::Create {
            name,
            limit,
            limit_reset,
            rpm,
            tpm,
            allowed_models,
        } => {
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            put(&mut m, "limit", limit);
            put(&mut m, "limit_reset", limit_reset);
            put(&mut m, "rpm", rpm);
            put(&mut m, "tpm", tpm);
            if !allowed_models.is_empty() {
                m.insert("allowed_models".into(), json!(allowed_models));
            }
            ("POST", String::new(), Value::Object(m))
        }
        KeysCommand::Get { hash } => ("GET", format!("/{hash}"), Value::Null),
        KeysCommand::Update {
            hash,
            name,
            limit,
            no_limit,
            limit_reset,
            rpm,
            tpm,
            disable,
            enable,
        } => {
            let mut m = Map::new();
            put(&mut m, "name", name);
            put(&mut m, "limit", limit);
            if no_limit {
                m.insert("limit".into(), Value::Null);
            }
            put(&mut m, "limit_reset", limit_reset);
            put(&mut m, "rpm", rpm);
            put(&mut m, "tpm", tpm);
            if disable || enable {
                m.insert("disabled".into(), json!(disable));
            }
            ("PATCH", format!("/{hash}"), Value::Object(m))
        }
        KeysCommand::Delete { hash } => ("DELETE", format!("/{hash}"), Value::Null),
    }
}

/// Runs one keys command against the ledger at `database_url`; prints the JSON answer.
pub fn run(database_url: &str, cmd: KeysCommand) -> Result<Value, String> {
    let ledger = Ledger::open(database_url).map_err(|e| {
        format!(
            "cannot open the ledger at {}: {e}",
            crate::ledger::redacted_url(database_url)
        )
    })?;
    // Show each key's real spend, as the admin API does.
    let budgets = Budgets::default();
    let now = (crate::ledger::now_ms() / 1000) as u64;
    for key in block_on(ledger.load_keys()).map_err(|e| e.to_string())? {
        for reset in [
            LimitReset::Daily,
            LimitReset::Weekly,
            LimitReset::Monthly,
            LimitReset::Never,
        ] {
            let spent = block_on(ledger.spend_for(&key.hash, reset)).map_err(|e| e.to_string())?;
            budgets.seed(&key.hash, reset, now, Cost(spent));
        }
    }
    let (method, rest, body) = request(cmd);
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let api = KeysApi {
        ledger: &ledger,
        budgets: &budgets,
    };
    block_on(api.handle(method, &rest, "", &body))
        .map(|(_, v)| v)
        .map_err(|e| e.message)
}
