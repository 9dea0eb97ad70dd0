//! What the scripts answer, read back into the limiter's types; and the `X-RateLimit-*`
//! figures computed from a window's counts exactly as rate.rs computes them in-process.

use ::redis::Value;

use crate::auth::ApiKey;
use crate::metering::Cost;

use super::super::RateStatus;

pub const WINDOW_MS: u64 = 60_000;

/// admit.lua's answer.
#[derive(Debug, PartialEq)]
pub enum AdmitReply {
    /// A spend key is missing: seed it from the ledger and ask again.
    Seed,
    Rate {
        kind: &'static str,
        window: Window,
    },
    Budget {
        spent: Cost,
        held: Cost,
    },
    Admitted {
        requests: Window,
        spends: [Option<Cost>; 4],
        /// The tokens this minute and the tokens held in flight (this request's included).
        tokens: Window,
        tokens_held: u64,
    },
}

/// Counts of one fixed minute and the one before (requests or tokens).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start_ms: u64,
    pub previous: u64,
    pub current: u64,
}

impl Window {
    /// The sliding-minute estimate (rate.rs `Window::estimate`).
    fn estimate(&self, now_ms: u64) -> f64 {
        let into = now_ms.saturating_sub(self.start_ms) as f64 / WINDOW_MS as f64;
        self.previous as f64 * (1.0 - into) + self.current as f64
    }

    /// Milliseconds until the estimate drops one unit below `limit` (rate.rs `wait_ms`).
    fn wait_ms(&self, now_ms: u64, limit: u64) -> u64 {
        let into_ms = now_ms.saturating_sub(self.start_ms);
        if self.previous == 0 {
            return WINDOW_MS.saturating_sub(into_ms);
        }
        let excess = self.estimate(now_ms) + 1.0 - limit as f64;
        let per_ms = self.previous as f64 / WINDOW_MS as f64;
        ((excess / per_ms).ceil().max(1.0) as u64).min(WINDOW_MS * 2)
    }

    fn reset_unix(&self) -> u64 {
        (self.start_ms + WINDOW_MS) / 1000
    }
}

/// The status of a request refused by `kind` ("requests" or "tokens").
pub fn refused(key: &ApiKey, kind: &'static str, window: &Window, now_ms: u64) -> RateStatus {
    let limit = match kind {
        "requests" => key.rpm.map_or(0, u64::from),
        _ => key.tpm.unwrap_or(0),
    };
    RateStatus {
        limit,
        remaining: 0,
        reset_unix: window.reset_unix(),
        retry_after: Some(window.wait_ms(now_ms, limit).div_ceil(1000).max(1)),
        kind,
    }
}

/// The status of an admitted request (`requests` counts it already, `tokens_held` its prompt
/// estimate); `None` when the key has no rate limits.
pub fn admitted(
    key: &ApiKey,
    requests: &Window,
    tokens: &Window,
    tokens_held: u64,
    now_ms: u64,
) -> Option<RateStatus> {
    if key.rpm.is_none() && key.tpm.is_none() {
        return None;
    }
    Some(match key.rpm.map(u64::from) {
        Some(rpm) => RateStatus {
            limit: rpm,
            remaining: (rpm as f64 - requests.estimate(now_ms)).max(0.0) as u64,
            reset_unix: requests.reset_unix(),
            retry_after: None,
            kind: "requests",
        },
        None => RateStatus {
            limit: key.tpm.unwrap_or(0),
            remaining: crate::limits::rate::tokens_remaining(
                key.tpm.unwrap_or(0),
                tokens.estimate(now_ms) + tokens_held as f64,
            ),
            reset_unix: requests.reset_unix(),
            retry_after: None,
            kind: "tokens",
        },
    })
}

pub fn parse_admit(reply: &[Value], window_start_ms: u64) -> Result<AdmitReply, String> {
    let window = |prev: Option<&Value>, cur: Option<&Value>| -> Result<Window, String> {
        Ok(Window {
            start_ms: window_start_ms,
            previous: count(prev)?,
            current: count(cur)?,
        })
    };
    match text(reply.first()).as_deref() {
        Some("seed") => Ok(AdmitReply::Seed),
        Some("rate") => {
            let kind = match text(reply.get(1)).as_deref() {
                Some("requests") => "requests",
                Some("tokens") => "tokens",
                other => return Err(format!("admit: unknown rate kind {other:?}")),
            };
            Ok(AdmitReply::Rate {
                kind,
                window: window(reply.get(2), reply.get(3))?,
            })
        }
        Some("budget") => Ok(AdmitReply::Budget {
            spent: pico(reply.get(1))?.unwrap_or_default(),
            held: pico(reply.get(2))?.unwrap_or_default(),
        }),
        Some("ok") => Ok(AdmitReply::Admitted {
            requests: window(reply.get(1), reply.get(2))?,
            spends: spends(&reply[3.min(reply.len())..7.min(reply.len())])?,
            tokens: window(reply.get(7), reply.get(8))?,
            tokens_held: count(reply.get(9))?,
        }),
        other => Err(format!("admit: unexpected reply {other:?}")),
    }
}

/// settle.lua's answer: whether this call settled the hold, and the spend after it.
pub fn parse_settle(reply: &[Value]) -> Result<(bool, [Option<Cost>; 4]), String> {
    let settled = count(reply.first())? == 1;
    Ok((settled, spends(&reply[1.min(reply.len())..])?))
}

/// report.lua's answer: `None` when the spend must be seeded first.
pub fn parse_report(reply: &[Value]) -> Result<Option<([Cost; 4], Cost)>, String> {
    match text(reply.first()).as_deref() {
        Some("seed") => Ok(None),
        Some("ok") => {
            let s = spends(&reply[1.min(reply.len())..])?;
            let held = pico(reply.get(5))?.unwrap_or_default();
            Ok(Some((s.map(Option::unwrap_or_default), held)))
        }
        other => Err(format!("report: unexpected reply {other:?}")),
    }
}

fn spends(values: &[Value]) -> Result<[Option<Cost>; 4], String> {
    let mut out = [None; 4];
    for (slot, v) in out.iter_mut().zip(values) {
        *slot = pico(Some(v))?;
    }
    Ok(out)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// A non-negative integer (Lua numbers arrive as integers, counters as strings).
fn count(v: Option<&Value>) -> Result<u64, String> {
    match v {
        Some(Value::Int(n)) => Ok((*n).max(0) as u64),
        other => match text(other) {
            Some(s) => s
                .parse::<i64>()
                .map(|n| n.max(0) as u64)
                .map_err(|_| format!("not a count: {s}")),
            None => Err(format!("not a count: {other:?}")),
        },
    }
}

/// A pico-USD amount; `None` for an absent key (Lua false → nil). A negative figure (a
/// hand-edited key) reads as zero rather than wrapping.
fn pico(v: Option<&Value>) -> Result<Option<Cost>, String> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Int(n)) => Ok(Some(Cost((*n).max(0) as u128))),
        other => match text(other) {
            Some(s) => s
                .parse::<i128>()
                .map(|n| Some(Cost(n.max(0) as u128)))
                .map_err(|_| format!("not an amount: {s}")),
            None => Err(format!("not an amount: {other:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_every_admit_reply() {
        assert_eq!(parse_admit(&[bulk("seed")], 0), Ok(AdmitReply::Seed));
        assert_eq!(
            parse_admit(
                &[bulk("rate"), bulk("tokens"), Value::Int(7), Value::Int(3)],
                60_000
            ),
            Ok(AdmitReply::Rate {
                kind: "tokens",
                window: Window {
                    start_ms: 60_000,
                    previous: 7,
                    current: 3
                }
            })
        );
        assert_eq!(
            parse_admit(&[bulk("budget"), bulk("100"), bulk("0")], 0),
            Ok(AdmitReply::Budget {
                spent: Cost(100),
                held: Cost(0)
            })
        );
        let ok = [
            bulk("ok"),
            Value::Int(0),
            Value::Int(2),
            bulk("5"),
            Value::Nil,
            bulk("340282366920938463463"),
            bulk("0"),
            Value::Int(3),
            Value::Int(4),
            bulk("10"),
        ];
        assert_eq!(
            parse_admit(&ok, 0),
            Ok(AdmitReply::Admitted {
                requests: Window {
                    start_ms: 0,
                    previous: 0,
                    current: 2
                },
                spends: [
                    Some(Cost(5)),
                    None,
                    Some(Cost(340_282_366_920_938_463_463)),
                    Some(Cost(0))
                ],
                tokens: Window {
                    start_ms: 0,
                    previous: 3,
                    current: 4
                },
                tokens_held: 10,
            })
        );
        assert!(parse_admit(&[bulk("what")], 0).is_err());
        assert!(parse_admit(&[], 0).is_err());
    }

    #[test]
    fn wait_matches_the_in_process_window() {
        // No previous window: wait for the current one to end.
        let w = Window {
            start_ms: 0,
            previous: 0,
            current: 3,
        };
        assert_eq!(w.wait_ms(20_000, 3), 40_000);
        // A full previous window decays linearly: one unit frees every 60 s / previous.
        let w = Window {
            start_ms: 60_000,
            previous: 10,
            current: 0,
        };
        assert_eq!(w.wait_ms(60_000, 10), 6_000);
    }
}
