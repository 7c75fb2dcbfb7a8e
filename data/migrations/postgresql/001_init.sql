-- SPDX-License-Identifier: LGPL-2.1-or-later
-- arbiter ledger, PostgreSQL (and, except where noted, CockroachDB).
-- Money is NUMERIC(20,8): exact, and wide enough for every ArbDecimal
-- (±92233720368.54775807). Times are TIMESTAMPTZ; an optional time is NULL.
-- schema_migrations is created by the store before this file runs.

CREATE TABLE assessments (
  id                TEXT          NOT NULL PRIMARY KEY,
  owner             TEXT          NOT NULL,
  program           TEXT          NOT NULL,
  status            TEXT          NOT NULL CHECK (status IN ('active', 'passed', 'failed')),
  status_reason     TEXT,
  status_at         TIMESTAMPTZ,
  starting_balance  NUMERIC(20,8) NOT NULL,
  balance           NUMERIC(20,8) NOT NULL,
  equity_hwm        NUMERIC(20,8) NOT NULL,
  day_start_equity  NUMERIC(20,8) NOT NULL,
  day_start_balance NUMERIC(20,8) NOT NULL,
  day_start_at      TIMESTAMPTZ   NOT NULL,
  created_at        TIMESTAMPTZ   NOT NULL,
  updated_at        TIMESTAMPTZ   NOT NULL,
  version           BIGINT        NOT NULL
);
CREATE INDEX assessments_owner_idx ON assessments (owner);

CREATE TABLE orders (
  id              TEXT          NOT NULL PRIMARY KEY,
  assessment_id   TEXT          NOT NULL REFERENCES assessments (id),
  client_order_id TEXT,
  market          TEXT          NOT NULL,
  direction       TEXT          NOT NULL CHECK (direction IN ('buy', 'sell')),
  quantity        NUMERIC(20,8) NOT NULL,
  stop_loss       NUMERIC(20,8),
  take_profit     NUMERIC(20,8),
  status          TEXT          NOT NULL,
  correlation_id  TEXT,
  created_at      TIMESTAMPTZ   NOT NULL
);
CREATE INDEX orders_assessment_idx ON orders (assessment_id, created_at);

-- Trades and positions are partitioned by month on their time column
-- (PostgreSQL declarative partitioning; CockroachDB has its own PARTITION BY
-- syntax and no PL/pgSQL before 23.2: see doc/store.md). A unique constraint
-- of a partitioned table must contain the partition column, so the keys are
-- (id, executed_at) and (seq, executed_at): a trade id or seq is unique per
-- instant, and the host makes ids (UUIDs) and seqs (one writer, increasing).
CREATE TABLE trades (
  id            TEXT          NOT NULL,
  seq           BIGINT        NOT NULL,
  assessment_id TEXT          NOT NULL REFERENCES assessments (id),
  order_id      TEXT,
  position_id   TEXT          NOT NULL,
  market        TEXT          NOT NULL,
  side          TEXT          NOT NULL CHECK (side IN ('long', 'short')),
  direction     TEXT          NOT NULL CHECK (direction IN ('buy', 'sell')),
  reason        TEXT          NOT NULL
                CHECK (reason IN ('open', 'close', 'stop_loss', 'take_profit', 'settlement', 'liquidation')),
  quantity      NUMERIC(20,8) NOT NULL,
  price         NUMERIC(20,8) NOT NULL,
  fee           NUMERIC(20,8) NOT NULL,
  realized_pnl  NUMERIC(20,8) NOT NULL,
  cash_effect   NUMERIC(20,8) NOT NULL,
  quote_source  TEXT,
  quote_at      TIMESTAMPTZ,
  executed_at   TIMESTAMPTZ   NOT NULL,
  PRIMARY KEY (id, executed_at),
  UNIQUE (seq, executed_at)
) PARTITION BY RANGE (executed_at);
CREATE TABLE trades_default PARTITION OF trades DEFAULT;
-- trade history: WHERE assessment_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3
CREATE INDEX trades_assessment_seq_idx ON trades (assessment_id, seq DESC);

CREATE TABLE positions (
  id               TEXT          NOT NULL,
  assessment_id    TEXT          NOT NULL REFERENCES assessments (id),
  order_id         TEXT,
  market           TEXT          NOT NULL,
  side             TEXT          NOT NULL CHECK (side IN ('long', 'short')),
  status           TEXT          NOT NULL CHECK (status IN ('open', 'closed')),
  quantity         NUMERIC(20,8) NOT NULL,
  initial_quantity NUMERIC(20,8) NOT NULL,
  entry_price      NUMERIC(20,8) NOT NULL,
  margin           NUMERIC(20,8) NOT NULL,
  realized_pnl     NUMERIC(20,8) NOT NULL,
  fees             NUMERIC(20,8) NOT NULL,
  stop_loss        NUMERIC(20,8),
  take_profit      NUMERIC(20,8),
  close_reason     TEXT,
  opened_at        TIMESTAMPTZ   NOT NULL,
  closed_at        TIMESTAMPTZ,
  updated_at       TIMESTAMPTZ   NOT NULL,
  PRIMARY KEY (id, opened_at)
) PARTITION BY RANGE (opened_at);
CREATE TABLE positions_default PARTITION OF positions DEFAULT;
CREATE INDEX positions_open_idx ON positions (assessment_id) WHERE status = 'open';
CREATE INDEX positions_closed_idx ON positions (assessment_id, closed_at DESC) WHERE status = 'closed';

-- events written in the same transaction as the change they describe; pos
-- keeps the order in which they were written (unique_rowid() on CockroachDB)
CREATE TABLE outbox (
  pos           BIGSERIAL   NOT NULL PRIMARY KEY,
  id            TEXT        NOT NULL UNIQUE,
  type          TEXT        NOT NULL,
  key           TEXT        NOT NULL,
  assessment_id TEXT,
  payload       TEXT        NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL
);

-- one row per event and sink once that sink acknowledged it
CREATE TABLE outbox_delivery (
  event_id     TEXT        NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
  sink         TEXT        NOT NULL,
  delivered_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (event_id, sink)
);

CREATE TABLE idempotency_keys (
  user_id      TEXT        NOT NULL,
  key          TEXT        NOT NULL,
  request_hash TEXT        NOT NULL,
  status       INTEGER     NOT NULL,
  body         TEXT        NOT NULL,
  created_at   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Monthly partitions, UTC: trades_2026_11 holds executed_at in
-- [2026-11-01, 2026-12-01). Creates this month's and the next @months_ahead
-- months' partitions of trades and positions when missing; rows that landed
-- in a DEFAULT partition meanwhile move into the new partition (PostgreSQL
-- refuses to attach a range the default partition already has rows for).
-- The store calls it at open and daily; returns how many it created.
CREATE FUNCTION arb_ensure_partitions (months_ahead INTEGER DEFAULT 2) RETURNS INTEGER
LANGUAGE plpgsql AS $fn$
DECLARE
  t       RECORD;
  first   DATE := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  m       DATE;
  part    TEXT;
  lo      TEXT;
  hi      TEXT;
  created INTEGER := 0;
BEGIN
  -- two hosts starting at once must not race on the catalog
  PERFORM pg_advisory_xact_lock(hashtext('arb_ensure_partitions'));
  FOR t IN SELECT * FROM (VALUES ('trades', 'executed_at'), ('positions', 'opened_at')) AS v (parent, col) LOOP
    FOR i IN 0 .. months_ahead LOOP
      m := (first + make_interval(months => i))::date;
      part := format('%s_%s', t.parent, to_char(m, 'YYYY_MM'));
      CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
      lo := to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00';
      hi := to_char((m + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
      EXECUTE format('CREATE TEMP TABLE arb_moving (LIKE %I) ON COMMIT DROP', t.parent);
      EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %L::timestamptz AND %I < %L::timestamptz RETURNING *) '
                     'INSERT INTO arb_moving SELECT * FROM moved', t.parent || '_default', t.col, lo, t.col, hi);
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, t.parent, lo, hi);
      EXECUTE format('INSERT INTO %I SELECT * FROM arb_moving', t.parent);
      DROP TABLE arb_moving;
      created := created + 1;
    END LOOP;
  END LOOP;
  RETURN created;
END
$fn$;

SELECT arb_ensure_partitions(2);
