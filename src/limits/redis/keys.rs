//! Where one API key's limits live in Redis.
//!
//! ```text
//! sy:v1:{<key hash hex>}:spend:<daily|weekly|monthly|never>:<period start, unix s>
//!                                       hash: usd — settled pico-USD, seeded from the
//!                                       ledger where absent, then HINCRBY on settle;
//!                                       at — when the ledger was read (ms). Expires an
//!                                       hour after its period
//! sy:v1:{<hex>}:holds                   zset of outstanding holds "id:pico:tokens",
//!                                       scored by lease deadline (ms)
//! sy:v1:{<hex>}:held                    hash: usd, tok — the sums of the holds
//! sy:v1:{<hex>}:rq:<window start, ms>   requests admitted in that minute
//! sy:v1:{<hex>}:tk:<window start, ms>   tokens settled in that minute
//! sy:v1:{<hex>}:charged:<id>            marker of a replayed fallback charge (exactly once)
//! ```
//!
//! `v1` names the format of these keys *and* the scripts' semantics: a change to either
//! bumps it, so during a rolling upgrade old and new instances use disjoint keys and never
//! misread each other (each generation enforces the limits among its own instances until
//! the old one is gone). The braces are a Redis Cluster hash tag: every key of one API key
//! lands in one slot, so each script touches a single slot.

use crate::auth::{KeyHash, LimitReset};

use super::super::local::PERIODS;
use super::super::period::period_start;

/// The version of the key layout and of the scripts' semantics.
pub const FORMAT: &str = "sy:v1";

/// The keys of one API key.
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub fn new(key: &KeyHash) -> KeySpace {
        KeySpace {
            prefix: format!("{FORMAT}:{{{}}}:", hex::encode(key)),
        }
    }

    /// The spend keys of the periods containing `now_unix`, in [`PERIODS`] order.
    pub fn spends(&self, now_unix: u64) -> [String; 4] {
        PERIODS.map(|reset| {
            format!(
                "{}spend:{}:{}",
                self.prefix,
                reset.as_str(),
                period_start(reset, now_unix)
            )
        })
    }

    pub fn holds(&self) -> String {
        format!("{}holds", self.prefix)
    }

    pub fn held(&self) -> String {
        format!("{}held", self.prefix)
    }

    pub fn requests(&self, window_start_ms: u64) -> String {
        format!("{}rq:{window_start_ms}", self.prefix)
    }

    pub fn tokens(&self, window_start_ms: u64) -> String {
        format!("{}tk:{window_start_ms}", self.prefix)
    }

    pub fn charged(&self, id: &str) -> String {
        format!("{}charged:{id}", self.prefix)
    }
}

/// Which of [`KeySpace::spends`] a key's limit reads (1-based, as the scripts index KEYS).
pub fn spend_slot(reset: LimitReset) -> usize {
    PERIODS.iter().position(|r| *r == reset).unwrap_or(3) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_one_api_key_shares_a_cluster_hash_tag() {
        let keys = KeySpace::new(&[0xab; 32]);
        let tag = format!("{{{}}}", "ab".repeat(32));
        let spends = keys.spends(1_795_302_900);
        assert_eq!(
            spends[0],
            format!("sy:v1:{tag}:spend:daily:1795219200"),
            "2026-11-21 00:00 UTC"
        );
        assert_eq!(spends[3], format!("sy:v1:{tag}:spend:never:0"));
        for k in [
            keys.holds(),
            keys.held(),
            keys.requests(60_000),
            keys.charged("x"),
        ] {
            assert!(k.starts_with(&format!("sy:v1:{tag}:")), "{k}");
        }
        assert_eq!(spend_slot(LimitReset::Monthly), 3);
    }
}
