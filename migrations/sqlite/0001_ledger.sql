-- The ledger (src/ledger): generations, keys and spend.
-- Keep in step with migrations/postgres: the same tables, columns and meaning.
-- Money: generations.cost_pico is the exact pico-USD amount as decimal TEXT (a u128 needs
-- no cap); spend.spent_pico is an INTEGER (i64) so several writers can add to it atomically
-- in SQL; it saturates at 9223372036854775807 pico-USD (~9.2 million USD per key per period).
-- Flags are INTEGER 0/1 and times are unix milliseconds, as in the Postgres schema, so the
-- same queries and decoders serve both through sqlx's Any driver.

CREATE TABLE generations (
    id                   TEXT PRIMARY KEY NOT NULL,
    key_hash             TEXT NOT NULL,
    key_name             TEXT NOT NULL,
    model                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    upstream_model       TEXT NOT NULL,
    attempts             TEXT NOT NULL,
    tokens_prompt        INTEGER NOT NULL,
    tokens_completion    INTEGER NOT NULL,
    tokens_cached_prompt INTEGER NOT NULL,
    tokens_reasoning     INTEGER NOT NULL,
    cost_pico            TEXT NOT NULL,
    latency_ms           INTEGER NOT NULL,
    ttft_ms              INTEGER,
    finish_reason        TEXT,
    status               INTEGER NOT NULL,
    streamed             INTEGER NOT NULL,
    cancelled            INTEGER NOT NULL,
    estimated            INTEGER NOT NULL,
    error                TEXT,
    created_at           INTEGER NOT NULL
);
CREATE INDEX generations_by_key ON generations (key_hash, created_at);
CREATE INDEX generations_by_time ON generations (created_at);

CREATE TABLE keys (
    hash           TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    label          TEXT NOT NULL,
    limit_usd      REAL,
    limit_reset    TEXT NOT NULL,
    rpm            INTEGER,
    tpm            INTEGER,
    allowed_models TEXT,
    provider_prefs TEXT NOT NULL,
    disabled       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Each generation's cost is added to four rows of its key, one per kind of period
-- ('daily', 'weekly', 'monthly', 'never'), so the spend of any period is known whatever
-- the key's limit_reset is now or becomes. period_start is unix ms of the period's start
-- (UTC midnight, Monday midnight, the 1st at midnight; 0 for 'never').
CREATE TABLE spend (
    key_hash     TEXT NOT NULL,
    period       TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    spent_pico   INTEGER NOT NULL,
    PRIMARY KEY (key_hash, period, period_start)
);
