-- SPDX-License-Identifier: LGPL-2.1-or-later
-- arbiter ledger, SQLite. Money is INTEGER in raw units (the value times
-- 10^8, exactly what ArbDecimal holds); times are INTEGER microseconds since
-- the epoch, UTC; an optional time is NULL rather than 0. STRICT tables, so
-- that a stray REAL can never sneak into a money column.
-- schema_migrations is created by the store before this file runs.

CREATE TABLE assessments (
  id                TEXT    NOT NULL PRIMARY KEY,
  owner             TEXT    NOT NULL,
  program           TEXT    NOT NULL,
  status            TEXT    NOT NULL CHECK (status IN ('active', 'passed', 'failed')),
  status_reason     TEXT,
  status_at         INTEGER,
  starting_balance  INTEGER NOT NULL,
  balance           INTEGER NOT NULL,
  equity_hwm        INTEGER NOT NULL,
  day_start_equity  INTEGER NOT NULL,
  day_start_balance INTEGER NOT NULL,
  day_start_at      INTEGER NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  version           INTEGER NOT NULL
) STRICT;
CREATE INDEX assessments_owner_idx ON assessments (owner);

CREATE TABLE orders (
  id              TEXT    NOT NULL PRIMARY KEY,
  assessment_id   TEXT    NOT NULL REFERENCES assessments (id),
  client_order_id TEXT,
  market          TEXT    NOT NULL,
  direction       TEXT    NOT NULL CHECK (direction IN ('buy', 'sell')),
  quantity        INTEGER NOT NULL,
  stop_loss       INTEGER,
  take_profit     INTEGER,
  status          TEXT    NOT NULL,
  correlation_id  TEXT,
  created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_assessment_idx ON orders (assessment_id, created_at);

CREATE TABLE trades (
  id            TEXT    NOT NULL PRIMARY KEY,
  seq           INTEGER NOT NULL UNIQUE,
  assessment_id TEXT    NOT NULL REFERENCES assessments (id),
  order_id      TEXT,
  position_id   TEXT    NOT NULL,
  market        TEXT    NOT NULL,
  side          TEXT    NOT NULL CHECK (side IN ('long', 'short')),
  direction     TEXT    NOT NULL CHECK (direction IN ('buy', 'sell')),
  reason        TEXT    NOT NULL
                CHECK (reason IN ('open', 'close', 'stop_loss', 'take_profit', 'settlement', 'liquidation')),
  quantity      INTEGER NOT NULL,
  price         INTEGER NOT NULL,
  fee           INTEGER NOT NULL,
  realized_pnl  INTEGER NOT NULL,
  cash_effect   INTEGER NOT NULL,
  quote_source  TEXT,
  quote_at      INTEGER,
  executed_at   INTEGER NOT NULL
) STRICT;
-- trade history: WHERE assessment_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?
CREATE INDEX trades_assessment_seq_idx ON trades (assessment_id, seq DESC);

CREATE TABLE positions (
  id               TEXT    NOT NULL PRIMARY KEY,
  assessment_id    TEXT    NOT NULL REFERENCES assessments (id),
  order_id         TEXT,
  market           TEXT    NOT NULL,
  side             TEXT    NOT NULL CHECK (side IN ('long', 'short')),
  status           TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
  quantity         INTEGER NOT NULL,
  initial_quantity INTEGER NOT NULL,
  entry_price      INTEGER NOT NULL,
  margin           INTEGER NOT NULL,
  realized_pnl     INTEGER NOT NULL,
  fees             INTEGER NOT NULL,
  stop_loss        INTEGER,
  take_profit      INTEGER,
  close_reason     TEXT,
  opened_at        INTEGER NOT NULL,
  closed_at        INTEGER,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX positions_open_idx ON positions (assessment_id) WHERE status = 'open';
CREATE INDEX positions_closed_idx ON positions (assessment_id, closed_at DESC) WHERE status = 'closed';

-- events written in the same transaction as the change they describe; pos
-- keeps the order in which they were written
CREATE TABLE outbox (
  pos           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
  id            TEXT    NOT NULL UNIQUE,
  type          TEXT    NOT NULL,
  key           TEXT    NOT NULL,
  assessment_id TEXT,
  payload       TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;

-- one row per event and sink once that sink acknowledged it
CREATE TABLE outbox_delivery (
  event_id     TEXT    NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
  sink         TEXT    NOT NULL,
  delivered_at INTEGER NOT NULL,
  PRIMARY KEY (event_id, sink)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency_keys (
  user_id      TEXT    NOT NULL,
  key          TEXT    NOT NULL,
  request_hash TEXT    NOT NULL,
  status       INTEGER NOT NULL,
  body         TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
