//! Prices as exact integers. Operators write USD per million tokens (`0.15`); the gateway
//! keeps pico-USD per token (`150_000`), so a cost is an integer product with no float drift.

/// 1 USD = 10^12 pico-USD. One token priced at $0.15 per million costs 150,000 pico-USD.
pub const PICO_USD_PER_USD: u64 = 1_000_000_000_000;

/// Pico-USD per token for each token kind. `None` means "same as prompt" for cached prompt
/// tokens and prompt tokens written to the cache, and "same as completion" for reasoning
/// tokens, as providers bill them by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub prompt: u64,
    pub completion: u64,
    pub cached_prompt: Option<u64>,
    pub reasoning: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic: 1.25x the prompt
    /// price for its 5-minute cache).
    pub cache_write: Option<u64>,
}

impl Price {
    /// Converts USD per million tokens into pico-USD per token, rounding to the nearest unit
    /// (1e-12 USD: far below any published price's precision).
    pub fn per_token_from_usd_per_million(usd_per_million: f64) -> Option<u64> {
        if !usd_per_million.is_finite() || usd_per_million < 0.0 {
            return None;
        }
        let pico = (usd_per_million * 1_000_000.0).round();
        (pico <= u64::MAX as f64).then_some(pico as u64)
    }

    /// USD per million tokens, for display (`/v1/models` shows USD per token as strings).
    pub fn usd_per_token(pico_per_token: u64) -> f64 {
        pico_per_token as f64 / PICO_USD_PER_USD as f64
    }

    pub fn cached_prompt_or_prompt(&self) -> u64 {
        self.cached_prompt.unwrap_or(self.prompt)
    }

    pub fn cache_write_or_prompt(&self) -> u64 {
        self.cache_write.unwrap_or(self.prompt)
    }

    pub fn reasoning_or_completion(&self) -> u64 {
        self.reasoning.unwrap_or(self.completion)
    }

    /// The blended price used to rank endpoints by cost (OpenRouter weighs prompt and
    /// completion alike for its default 1/price² draw).
    pub fn blended(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_published_prices_exactly() {
        assert_eq!(Price::per_token_from_usd_per_million(0.15), Some(150_000));
        assert_eq!(Price::per_token_from_usd_per_million(0.075), Some(75_000));
        assert_eq!(
            Price::per_token_from_usd_per_million(15.0),
            Some(15_000_000)
        );
        assert_eq!(Price::per_token_from_usd_per_million(0.0), Some(0));
        assert_eq!(Price::per_token_from_usd_per_million(-1.0), None);
        assert_eq!(Price::per_token_from_usd_per_million(f64::NAN), None);
    }
}
