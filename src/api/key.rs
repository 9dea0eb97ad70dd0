//! `GET /v1/key`: the caller's own key — limit, usage, what remains, rate limits — in
//! OpenRouter's shape (`data.label`, `data.limit`, `data.usage`, `data.limit_remaining`, ...).

use serde_json::{json, Value};

use crate::auth::{ApiKey, LimitReset};
use crate::limits::{period::period_end, SpendReport};

pub fn key_info(key: &ApiKey, spend: &SpendReport, now_unix: u64) -> Value {
    let usage = spend.for_period(key.limit_reset).usd();
    let remaining = key
        .limit_usd
        .map(|l| (l - usage - spend.reserved.usd()).max(0.0));
    let resets_at = period_end(key.limit_reset, now_unix);
    json!({ "data": {
        "label": key.name,
        "limit": key.limit_usd,
        "limit_remaining": remaining,
        "limit_reset": (key.limit_reset != LimitReset::Never).then(|| key.limit_reset.as_str()),
        "limit_resets_at": resets_at,
        "usage": spend.total.usd(),
        "usage_daily": spend.daily.usd(),
        "usage_weekly": spend.weekly.usd(),
        "usage_monthly": spend.monthly.usd(),
        "usage_current_period": usage,
        "reserved": spend.reserved.usd(),
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "include_byok_in_limit": false,
        "is_free_tier": false,
        "is_management_key": false,
        "is_provisioning_key": false,
        "creator_user_id": null,
        "expires_at": null,
        "hash": key.hash_hex(),
        "rate_limit": {
            "requests": key.rpm.map_or(-1, i64::from),
            "tokens": key.tpm.map_or(-1, |t| t as i64),
            "interval": "1m",
            "note": "requests and tokens per minute for this key; -1 means unlimited",
        },
        "allowed_models": key.allowed_models,
        "disabled": key.disabled,
    }})
}
