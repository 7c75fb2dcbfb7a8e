/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "arb-store-backend-private.h"

/* The production store, through libpq. Money travels as text both ways
 * (NUMERIC(20,8), parsed with ARB_ROUND_EXACT), times as ISO text with an
 * explicit UTC offset. Statements are prepared once per connection.
 *
 * A group is sent in ONE round trip with libpq's pipeline mode: BEGIN, every
 * statement of every txn, a sync; then COMMIT in a second one. When a
 * statement fails the server skips the rest of the pipeline, so the group is
 * rolled back and run again statement by statement, each txn inside a
 * savepoint, where the failing txn fails alone. Savepoints are kept off the
 * fast path on purpose: a transaction with more than 64 subtransactions
 * makes every other backend's snapshots slower (pg_subtrans lookups). */

/* longest wait for the server inside a group or a read */
#define IO_TIMEOUT_MS 30000
#define MAX_PARAMS    20

typedef enum {
  ST_INSERT_ASSESSMENT,
  ST_UPDATE_ASSESSMENT,
  ST_INSERT_ORDER,
  ST_INSERT_TRADE,
  ST_UPSERT_POSITION,
  ST_INSERT_OUTBOX,
  ST_INSERT_OUTBOX_POS,
  ST_RESERVE_POS,
  ST_INSERT_IDEMPOTENCY,
  ST_EXPIRE_IDEMPOTENCY,
  ST_EXPIRE_IDEMPOTENCY_KEY,
  ST_LOAD_ASSESSMENTS,
  ST_LOAD_POSITIONS,
  ST_LOAD_IDEMPOTENCY,
  ST_MAX_SEQ,
  ST_LIST_TRADES,
  ST_LIST_CLOSED,
  ST_LIST_EVENTS,
  ST_OUTBOX_PENDING,
  ST_AUDIT,
  ST_INSERT_DELIVERY,
  ST_PRUNE_OUTBOX,
  ST_OUTBOX_FOR_SINK,
  ST_OUTBOX_BACKLOG,
  /* the same writes for a whole group at once: one array per column */
  ST_BATCH_INSERT_ASSESSMENT,
  ST_BATCH_UPDATE_ASSESSMENT,
  ST_BATCH_INSERT_ORDER,
  ST_BATCH_INSERT_TRADE,
  ST_BATCH_UPSERT_POSITION,
  ST_BATCH_INSERT_OUTBOX,
  ST_BATCH_INSERT_OUTBOX_POS,
  ST_BATCH_EXPIRE_IDEMPOTENCY_KEY,
  ST_BATCH_INSERT_IDEMPOTENCY,
  ST_BATCH_INSERT_DELIVERY,
  ST_GROUP_WRITE, /* built at start: group_statement () */
  N_STATEMENTS
} Statement;

#define ASSESSMENT_COLUMNS \
  "id, owner, program, status, status_reason, status_at, starting_balance, balance, equity_hwm, " \
  "day_start_equity, day_start_balance, day_start_at, created_at, updated_at, version, lifecycle"
#define POSITION_COLUMNS \
  "id, assessment_id, order_id, market, side, status, quantity, initial_quantity, entry_price, margin, " \
  "realized_pnl, fees, stop_loss, take_profit, close_reason, opened_at, closed_at, updated_at"
#define TRADE_COLUMNS \
  "id, seq, assessment_id, order_id, position_id, market, side, direction, reason, quantity, price, fee, " \
  "realized_pnl, cash_effect, quote_source, quote_at, executed_at"
#define POSITION_UPDATE \
  "ON CONFLICT (id, opened_at) DO UPDATE SET status = EXCLUDED.status, " \
  "quantity = EXCLUDED.quantity, margin = EXCLUDED.margin, " \
  "realized_pnl = EXCLUDED.realized_pnl, fees = EXCLUDED.fees, " \
  "stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, " \
  "close_reason = EXCLUDED.close_reason, closed_at = EXCLUDED.closed_at, " \
  "updated_at = EXCLUDED.updated_at"

/* the batch UPDATE of assessments, $1-$13, on its own and inside the group
 * statement (arb_group_write) */
#define BATCH_UPDATE_ASSESSMENT \
  "UPDATE assessments a SET status = u.status, status_reason = u.status_reason, " \
  "status_at = u.status_at, starting_balance = u.starting_balance, " \
  "balance = u.balance, equity_hwm = u.equity_hwm, " \
  "day_start_equity = u.day_start_equity, day_start_balance = u.day_start_balance, " \
  "day_start_at = u.day_start_at, updated_at = u.updated_at, version = u.version, " \
  "lifecycle = u.lifecycle " \
  "FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], " \
  "$5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], " \
  "$10::timestamptz[], $11::timestamptz[], $12::int8[], $13::text[]) " \
  "AS u (id, status, status_reason, status_at, starting_balance, balance, " \
  "equity_hwm, day_start_equity, day_start_balance, day_start_at, updated_at, " \
  "version, lifecycle) WHERE a.id = u.id"

static const struct {
  const char *name;
  const char *sql;
} statements[N_STATEMENTS] = {
  [ST_INSERT_ASSESSMENT] = { "arb_insert_assessment",
                             "INSERT INTO assessments (" ASSESSMENT_COLUMNS ") "
                             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)" },
  [ST_UPDATE_ASSESSMENT] = { "arb_update_assessment",
                             "UPDATE assessments SET status = $2, status_reason = $3, status_at = $4, "
                             "starting_balance = $5, balance = $6, equity_hwm = $7, day_start_equity = $8, "
                             "day_start_balance = $9, day_start_at = $10, updated_at = $11, version = $12, "
                             "lifecycle = $13 WHERE id = $1" },
  [ST_INSERT_ORDER] = { "arb_insert_order",
                        "INSERT INTO orders (id, assessment_id, client_order_id, market, direction, quantity, "
                        "stop_loss, take_profit, status, correlation_id, created_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)" },
  [ST_INSERT_TRADE] = { "arb_insert_trade",
                        "INSERT INTO trades (" TRADE_COLUMNS ") "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)" },
  [ST_UPSERT_POSITION] = { "arb_upsert_position",
                           "INSERT INTO positions (" POSITION_COLUMNS ") "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) "
                           POSITION_UPDATE },
  [ST_INSERT_OUTBOX] = { "arb_insert_outbox",
                         "INSERT INTO outbox (id, type, key, assessment_id, payload, created_at) "
                         "VALUES ($1, $2, $3, $4, $5, $6)" },
  /* with the pos the store reserved (several ledger writers) */
  [ST_INSERT_OUTBOX_POS] = { "arb_insert_outbox_pos",
                             "INSERT INTO outbox (id, type, key, assessment_id, payload, created_at, pos) "
                             "VALUES ($1, $2, $3, $4, $5, $6, $7)" },
  [ST_RESERVE_POS] = { "arb_reserve_pos",
                       "SELECT nextval (pg_get_serial_sequence ('outbox', 'pos')) FROM generate_series (1, $1::int)" },
  [ST_INSERT_IDEMPOTENCY] = { "arb_insert_idempotency",
                              "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) "
                              "VALUES ($1, $2, $3, $4, $5, $6)" },
  [ST_EXPIRE_IDEMPOTENCY] = { "arb_expire_idempotency", "DELETE FROM idempotency_keys WHERE created_at < $1" },
  [ST_EXPIRE_IDEMPOTENCY_KEY] = { "arb_expire_idempotency_key",
                                  "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3" },
  [ST_LOAD_ASSESSMENTS] = { "arb_load_assessments", "SELECT " ASSESSMENT_COLUMNS " FROM assessments" },
  [ST_LOAD_POSITIONS] = { "arb_load_positions", "SELECT " POSITION_COLUMNS " FROM positions WHERE status = 'open'" },
  [ST_LOAD_IDEMPOTENCY] = { "arb_load_idempotency",
                            "SELECT user_id, key, request_hash, status, body, created_at FROM idempotency_keys "
                            "WHERE created_at >= $1" },
  [ST_MAX_SEQ] = { "arb_max_seq", "SELECT COALESCE(MAX(seq), 0) FROM trades" },
  [ST_LIST_TRADES] = { "arb_list_trades",
                       "SELECT " TRADE_COLUMNS " FROM trades WHERE assessment_id = $1 AND seq < $2 "
                       "ORDER BY seq DESC LIMIT $3" },
  /* keyset: after ($3, $4) in (closed_at, id) descending; written so that
   * the index on (assessment_id, closed_at) bounds the scan */
  [ST_LIST_CLOSED] = { "arb_list_closed",
                       "SELECT " POSITION_COLUMNS " FROM positions WHERE assessment_id = $1 AND status = 'closed' "
                       "AND closed_at <= $3::timestamptz AND (closed_at < $3::timestamptz OR id < $4) "
                       "ORDER BY closed_at DESC, id DESC LIMIT $2" },
  [ST_LIST_EVENTS] = { "arb_list_events",
                       "SELECT id, type, assessment_id, assessment_id, payload, created_at FROM assessment_events "
                       "WHERE assessment_id = $1 ORDER BY created_at, id LIMIT $2" },
  [ST_OUTBOX_PENDING] = { "arb_outbox_pending",
                          "SELECT id, type, key, assessment_id, payload, created_at FROM outbox o "
                          "WHERE NOT EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.event_id = o.id) "
                          "ORDER BY pos LIMIT $1" },
  /* the ledger invariant (doc/store.md) */
  [ST_AUDIT] = { "arb_audit",
                 "SELECT a.id, a.balance - a.starting_balance, COALESCE(t.total, 0) FROM assessments a "
                 "LEFT JOIN (SELECT assessment_id, SUM(cash_effect) AS total FROM trades GROUP BY assessment_id) t "
                 "ON t.assessment_id = a.id "
                 "WHERE a.balance - a.starting_balance <> COALESCE(t.total, 0) ORDER BY a.id" },
  /* the outbox relay (doc/outbox.md). A mark for an event that is gone
   * (pruned: delivered everywhere) or already marked is no error. */
  [ST_INSERT_DELIVERY] = { "arb_insert_delivery",
                           "INSERT INTO outbox_delivery (event_id, sink, delivered_at) "
                           "SELECT $1::text, $2::text, $3::timestamptz "
                           "WHERE EXISTS (SELECT 1 FROM outbox WHERE id = $1::text) ON CONFLICT DO NOTHING" },
  /* rows old enough that no subscribed sink lacks; $2 is the JSON array of
   * [sink, pattern] pairs ("*", "prefix.*" or a type) */
  /* written so that the plan walks outbox_created_idx and probes
   * outbox_delivery's key per row, and deletes by pos (= ANY): an IN
   * (subquery) became a hash join over the whole table, and the inner
   * NOT EXISTS a hash of all of outbox_delivery */
  [ST_PRUNE_OUTBOX] = { "arb_prune_outbox",
                        "DELETE FROM outbox WHERE pos = ANY (ARRAY (SELECT o.pos FROM outbox o "
                        "WHERE o.created_at < $1 AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements ($2::jsonb) AS s "
                        "LEFT JOIN outbox_delivery d ON d.event_id = o.id AND d.sink = s->>0 "
                        "WHERE d.event_id IS NULL AND (s->>1 = o.type OR (substr (s->>1, length (s->>1), 1) = '*' "
                        "AND substr (o.type, 1, length (s->>1) - 1) = substr (s->>1, 1, length (s->>1) - 1)))) "
                        "ORDER BY o.created_at LIMIT $3))" },
  [ST_OUTBOX_FOR_SINK] = { "arb_outbox_for_sink",
                           "SELECT pos, id, type, key, assessment_id, payload, created_at FROM outbox o "
                           "WHERE o.pos > $2 AND o.pos <= $4 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d "
                           "WHERE d.event_id = o.id AND d.sink = $1) ORDER BY o.pos LIMIT $3" },
  [ST_OUTBOX_BACKLOG] = { "arb_outbox_backlog",
                          "SELECT type, count(*), min(created_at) FROM outbox o "
                          "WHERE o.pos > $2 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d "
                          "WHERE d.event_id = o.id AND d.sink = $1) GROUP BY type ORDER BY type" },
  /* the parameters are those of the single-row statements, each an array */
  [ST_BATCH_INSERT_ASSESSMENT] = { "arb_batch_insert_assessment",
                                   "INSERT INTO assessments (" ASSESSMENT_COLUMNS ") SELECT * FROM unnest("
                                   "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], "
                                   "$7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], "
                                   "$12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::int8[], $16::text[])" },
  /* $14: how many rows it must find. The group commits at the pipeline's
   * Sync without a round trip in between, so a missing assessment must fail
   * in the server: a division by zero (22012) aborts the group, which then
   * goes statement by statement and reports the txn */
  [ST_BATCH_UPDATE_ASSESSMENT] = { "arb_batch_update_assessment",
                                   "WITH changed AS (" BATCH_UPDATE_ASSESSMENT " RETURNING 1) "
                                   "SELECT 1 / (count(*) = $14::int8)::int FROM changed" },
  [ST_BATCH_INSERT_ORDER] = { "arb_batch_insert_order",
                              "INSERT INTO orders (id, assessment_id, client_order_id, market, direction, quantity, "
                              "stop_loss, take_profit, status, correlation_id, created_at) SELECT * FROM unnest("
                              "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], "
                              "$7::numeric[], $8::numeric[], $9::text[], $10::text[], $11::timestamptz[])" },
  [ST_BATCH_INSERT_TRADE] = { "arb_batch_insert_trade",
                              "INSERT INTO trades (" TRADE_COLUMNS ") SELECT * FROM unnest("
                              "$1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
                              "$8::text[], $9::text[], $10::numeric[], $11::numeric[], $12::numeric[], "
                              "$13::numeric[], $14::numeric[], $15::text[], $16::timestamptz[], "
                              "$17::timestamptz[])" },
  [ST_BATCH_UPSERT_POSITION] = { "arb_batch_upsert_position",
                                 "INSERT INTO positions (" POSITION_COLUMNS ") SELECT * FROM unnest("
                                 "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
                                 "$7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], "
                                 "$12::numeric[], $13::numeric[], $14::numeric[], $15::text[], "
                                 "$16::timestamptz[], $17::timestamptz[], $18::timestamptz[]) " POSITION_UPDATE },
  /* in the order they were written, which is what pos records */
  [ST_BATCH_INSERT_OUTBOX] = { "arb_batch_insert_outbox",
                               "INSERT INTO outbox (id, type, key, assessment_id, payload, created_at) "
                               "SELECT id, type, key, assessment_id, payload, created_at FROM unnest("
                               "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) "
                               "WITH ORDINALITY AS u (id, type, key, assessment_id, payload, created_at, n) "
                               "ORDER BY n" },
  [ST_BATCH_INSERT_OUTBOX_POS] = { "arb_batch_insert_outbox_pos",
                                   "INSERT INTO outbox (id, type, key, assessment_id, payload, created_at, pos) "
                                   "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                                   "$5::text[], $6::timestamptz[], $7::int8[])" },
  /* a primary-key probe per key (a nested loop over the keys, with
   * enable_seqscan off: see pg_connect) */
  [ST_BATCH_EXPIRE_IDEMPOTENCY_KEY] = { "arb_batch_expire_idempotency_key",
                                        "DELETE FROM idempotency_keys AS i USING unnest($1::text[], $2::text[], "
                                        "$3::timestamptz[]) AS u (user_id, key, before) "
                                        "WHERE i.user_id = u.user_id AND i.key = u.key AND i.created_at < u.before" },
  [ST_BATCH_INSERT_IDEMPOTENCY] = { "arb_batch_insert_idempotency",
                                    "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, "
                                    "created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                                    "$4::int4[], $5::text[], $6::timestamptz[])" },
  [ST_GROUP_WRITE] = { "arb_group_write", NULL },
  [ST_BATCH_INSERT_DELIVERY] = { "arb_batch_insert_delivery",
                                 "INSERT INTO outbox_delivery (event_id, sink, delivered_at) "
                                 "SELECT u.e, u.s, u.t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) "
                                 "AS u (e, s, t) WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.id = u.e) "
                                 "ON CONFLICT DO NOTHING" },
};

typedef struct {
  PGconn  *pg;
  gboolean prepared;
  gboolean broken;
} PgConn;

/* what a parameter holds, for the binary arrays of the batch statements */
enum {
  P_OTHER = 0, /* text format only (numbers: short, cheap to parse) */
  P_TEXT,      /* a string, or NULL */
  P_TIME,      /* a time (us), or NULL */
};

typedef struct {
  int         n;
  const char *values[MAX_PARAMS];
  char        kind[MAX_PARAMS];
  gint64      us[MAX_PARAMS];   /* P_TIME */
  char        buf[MAX_PARAMS][ARB_STORE_TIME_BUFSIZE];
  char        big[1024]; /* one longer text per row: the lifecycle JSON (bounded: numbers only) */
} Params;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

/* ---- errors ------------------------------------------------------------- */

typedef enum {
  FAIL_TXN,   /* this txn's rows were refused: it fails alone */
  FAIL_RETRY, /* 40001, 40P01: run the group again */
  FAIL_LOST,  /* the connection is gone */
  FAIL_GROUP, /* the database cannot take writes now */
} FailKind;

static FailKind
classify (PgConn *c, const PGresult *res)
{
  const char *state = res != NULL ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;

  if (PQstatus (c->pg) == CONNECTION_BAD || state == NULL)
    return FAIL_LOST;
  if (g_str_equal (state, "40001") || g_str_equal (state, "40P01"))
    return FAIL_RETRY;
  /* connection exceptions; admin, crash and startup shutdowns */
  if (g_str_has_prefix (state, "08") || g_str_equal (state, "57P01") || g_str_equal (state, "57P02")
      || g_str_equal (state, "57P03"))
    return FAIL_LOST;
  /* insufficient resources, operator intervention, system and internal
   * errors, read-only transactions (a standby, or a paused primary) */
  if (g_str_has_prefix (state, "53") || g_str_has_prefix (state, "57") || g_str_has_prefix (state, "58")
      || g_str_has_prefix (state, "XX") || g_str_equal (state, "25006"))
    return FAIL_GROUP;
  return FAIL_TXN;
}

/* "duplicate key value violates unique constraint "x" (23505): Key (id)=(…) already exists." */
static char *
describe_failure (PgConn *c, const PGresult *res)
{
  const char *primary = res != NULL ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *state = res != NULL ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
  const char *detail = res != NULL ? PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL) : NULL;

  if (primary == NULL)
    {
      const char *m = res != NULL && *PQresultErrorMessage (res) != '\0' ? PQresultErrorMessage (res)
                                                                          : PQerrorMessage (c->pg);
      g_autofree char *flat = g_strstrip (g_strdup (m != NULL && *m != '\0' ? m : "no answer from the server"));
      g_strdelimit (flat, "\n\t", ' ');
      return g_steal_pointer (&flat);
    }
  return g_strdup_printf ("%s (%s)%s%s", primary, state != NULL ? state : "?", detail != NULL ? ": " : "",
                          detail != NULL ? detail : "");
}

/* sets @error from a failed result; marks the connection broken when it is */
static FailKind
set_error (PgConn *c, const PGresult *res, GError **error, const char *what)
{
  FailKind kind = classify (c, res);
  g_autofree char *msg = describe_failure (c, res);
  int code = kind == FAIL_TXN ? ARB_STORE_ERROR_CONFLICT : kind == FAIL_RETRY ? ARB_STORE_ERROR_CONFLICT
                                                                               : ARB_STORE_ERROR_UNAVAILABLE;
  if (kind == FAIL_LOST)
    c->broken = TRUE;
  g_set_error (error, ARB_STORE_ERROR, code, "%s: %s", what, msg);
  return kind;
}

static gboolean
result_ok (const PGresult *res)
{
  ExecStatusType st = res != NULL ? PQresultStatus (res) : PGRES_FATAL_ERROR;
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* ---- connection --------------------------------------------------------- */

static void
quiet_notices (void *arg, const char *message)
{
  /* "relation already exists, skipping" and the like: nothing to act on */
}

static gboolean
pg_check_target (const char *uri, const char *display, GError **error)
{
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse (uri, &errmsg);

  if (opts == NULL)
    {
      g_autofree char *msg = g_strstrip (g_strdup (errmsg != NULL ? errmsg : "out of memory"));
      PQfreemem (errmsg);
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI, "store=%s: %s", display, msg);
      return FALSE;
    }
  PQconninfoFree (opts);
  return TRUE;
}

static void
pg_disconnect (gpointer data)
{
  PgConn *c = data;
  PQfinish (c->pg);
  g_free (c);
}

static gboolean
pg_is_broken (gpointer data)
{
  PgConn *c = data;
  return c->broken || PQstatus (c->pg) != CONNECTION_OK;
}

static gboolean
pg_exec_script (gpointer data, const char *sql, GError **error)
{
  PgConn *c = data;
  g_autoptr(PGresult) res = PQexec (c->pg, sql);

  if (!result_ok (res))
    {
      set_error (c, res, error, "SQL");
      return FALSE;
    }
  return TRUE;
}

static gpointer
pg_connect (const char *uri, GError **error)
{
  /* defaults first: what the URI itself says wins (expand_dbname) */
  static const char *const keywords[] = {
    "fallback_application_name", "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "dbname", NULL
  };
  const char *values[] = { "arbiterd", "10", "30", "10", "3", "30000", uri, NULL };
  PgConn *c = g_new0 (PgConn, 1);

  c->pg = PQconnectdbParams (keywords, values, 1);
  if (PQstatus (c->pg) != CONNECTION_OK)
    {
      g_autofree char *msg = g_strstrip (g_strdup (PQerrorMessage (c->pg)));
      g_strdelimit (msg, "\n\t", ' ');
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE, "cannot connect: %s", msg);
      pg_disconnect (c);
      return NULL;
    }
  PQsetNoticeProcessor (c->pg, quiet_notices, NULL);
  /* the text forms the parsers below expect, whatever the server's
   * defaults; and every statement here finds its rows by an index. The
   * prepared statements get a generic plan after five runs, planned once on
   * whatever the tables held then: on a new database, empty tables, where a
   * sequential scan is cheapest, and that plan stayed until autovacuum's
   * next ANALYZE (a benchmark's first minute read 12 million idempotency
   * rows to delete none). Statements with no index to use still scan.
   * With that, the generic plans are the index plans, and
   * plan_cache_mode=force_generic_plan keeps PostgreSQL from planning the
   * batch UPDATE and DELETE again at every group (it did: 65 µs each, a
   * tenth of a small group's time in the server). CockroachDB has neither
   * setting (and needs none): refused there, and that is fine. */
  if (!pg_exec_script (c, "SET datestyle = 'ISO, MDY'; SET TIME ZONE 'UTC'", error))
    {
      pg_disconnect (c);
      return NULL;
    }
  {
    g_autoptr(PGresult) res = PQexec (c->pg, "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan");
    if (!result_ok (res))
      g_debug ("this server does not take enable_seqscan: %s", PQresultErrorMessage (res));
    if (PQstatus (c->pg) != CONNECTION_OK)
      {
        set_error (c, res, error, "SET enable_seqscan");
        pg_disconnect (c);
        return NULL;
      }
  }
  return c;
}

static const char *group_statement_sql (void);

static gboolean
pg_prepare (gpointer data, GError **error)
{
  PgConn *c = data;

  if (c->prepared)
    return TRUE;
  for (guint i = 0; i < N_STATEMENTS; i++)
    {
      const char *sql = i == ST_GROUP_WRITE ? group_statement_sql () : statements[i].sql;
      g_autoptr(PGresult) res = PQprepare (c->pg, statements[i].name, sql, 0, NULL);
      if (!result_ok (res))
        {
          g_autofree char *what = g_strdup_printf ("preparing %s", statements[i].name);
          set_error (c, res, error, what);
          if (!c->broken)
            (*error)->code = ARB_STORE_ERROR_FAILED;
          return FALSE;
        }
    }
  c->prepared = TRUE;
  return TRUE;
}

/* ---- migrations --------------------------------------------------------- */

static gboolean
pg_ensure_migrations_table (gpointer conn, GError **error)
{
  return pg_exec_script (conn,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version INTEGER NOT NULL PRIMARY KEY,"
                         " name TEXT NOT NULL,"
                         " applied_at TIMESTAMPTZ NOT NULL)",
                         error);
}

static gboolean
pg_applied_versions (gpointer data, GHashTable *versions, GError **error)
{
  PgConn *c = data;
  g_autoptr(PGresult) res = PQexec (c->pg, "SELECT version FROM schema_migrations");

  if (!result_ok (res))
    {
      set_error (c, res, error, "reading schema_migrations");
      return FALSE;
    }
  for (int i = 0; i < PQntuples (res); i++)
    g_hash_table_add (versions, GINT_TO_POINTER (atoi (PQgetvalue (res, i, 0))));
  return TRUE;
}

static gboolean
pg_record_migration (gpointer data, const ArbStoreMigration *m, gint64 now_us, GError **error)
{
  PgConn *c = data;
  char version[16], at[ARB_STORE_TIME_BUFSIZE];
  const char *values[3] = { version, m->name, arb_store_format_timestamptz (now_us, at) };
  g_autoptr(PGresult) res = NULL;

  g_snprintf (version, sizeof version, "%d", m->version);
  res = PQexecParams (c->pg, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", 3,
                      NULL, values, NULL, NULL, 0);
  if (!result_ok (res))
    {
      FailKind kind = set_error (c, res, error, "recording the migration");
      const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
      /* only "someone else recorded it" is a CONFLICT here */
      if (kind == FAIL_TXN && g_strcmp0 (state, "23505") != 0)
        (*error)->code = ARB_STORE_ERROR_FAILED;
      return FALSE;
    }
  return TRUE;
}

static gboolean
pg_ensure_partitions (gpointer data, guint months_ahead, GError **error)
{
  PgConn *c = data;
  char months[16];
  const char *values[1] = { months };
  g_autoptr(PGresult) res = NULL;

  g_snprintf (months, sizeof months, "%u", months_ahead);
  res = PQexecParams (c->pg, "SELECT arb_ensure_partitions($1::integer)", 1, NULL, values, NULL, NULL, 0);
  if (!result_ok (res))
    {
      set_error (c, res, error, "arb_ensure_partitions");
      return FALSE;
    }
  return TRUE;
}

/* ---- parameters --------------------------------------------------------- */

static void
p_text (Params *p, const char *text)
{
  p->kind[p->n] = P_TEXT;
  p->values[p->n++] = text;
}

/* takes @text, keeps a copy in the row's one long buffer */
static void
p_text_take (Params *p, char *text)
{
  /* the lifecycle holds a fixed set of numbers: far below the buffer */
  g_assert (strlen (text) < sizeof p->big);
  g_strlcpy (p->big, text, sizeof p->big);
  g_free (text);
  p->kind[p->n] = P_TEXT;
  p->values[p->n++] = p->big;
}

static void
p_money (Params *p, ArbDecimal d)
{
  p->kind[p->n] = P_OTHER;
  p->values[p->n] = arb_decimal_format (d, p->buf[p->n]);
  p->n++;
}

static void
p_opt_money (Params *p, gboolean has, ArbDecimal d)
{
  if (has)
    p_money (p, d);
  else
    {
      p->kind[p->n] = P_OTHER;
      p->values[p->n++] = NULL;
    }
}

static void
p_int (Params *p, gint64 v)
{
  g_snprintf (p->buf[p->n], sizeof p->buf[p->n], "%" G_GINT64_FORMAT, v);
  p->kind[p->n] = P_OTHER;
  p->values[p->n] = p->buf[p->n];
  p->n++;
}

static void
p_time (Params *p, gint64 us)
{
  p->kind[p->n] = P_TIME;
  p->us[p->n] = us;
  p->values[p->n] = arb_store_format_timestamptz (us, p->buf[p->n]);
  p->n++;
}

/* 0 stands for "no time" in the rows, NULL in the database */
static void
p_opt_time (Params *p, gint64 us)
{
  if (us != 0)
    p_time (p, us);
  else
    {
      p->kind[p->n] = P_TIME;
      p->values[p->n++] = NULL;
    }
}

static const char *
position_status_name (ArbPositionStatus status)
{
  return status == ARB_POSITION_CLOSED ? "closed" : "open";
}

/* the statement and parameters of one row operation */
static Statement
op_params (const ArbStoreOp *op, Params *p)
{
  p->n = 0;
  switch (op->kind)
    {
    case ARB_STORE_OP_INSERT_ASSESSMENT:
      {
        const ArbAssessmentRow *r = op->u.assessment;
        p_text (p, r->id);
        p_text (p, r->owner);
        p_text (p, r->program);
        p_text (p, arb_assessment_status_to_string (r->status));
        p_text (p, r->status_reason);
        p_opt_time (p, r->status_time_us);
        p_money (p, r->starting_balance);
        p_money (p, r->balance);
        p_money (p, r->equity_hwm);
        p_money (p, r->day_start_equity);
        p_money (p, r->day_start_balance);
        p_time (p, r->day_start_us);
        p_time (p, r->created_us);
        p_time (p, r->updated_us);
        p_int (p, r->version);
        p_text_take (p, arb_assessment_lifecycle_to_json (r));
        return ST_INSERT_ASSESSMENT;
      }
    case ARB_STORE_OP_UPDATE_ASSESSMENT:
      {
        const ArbAssessmentRow *r = op->u.assessment;
        p_text (p, r->id);
        p_text (p, arb_assessment_status_to_string (r->status));
        p_text (p, r->status_reason);
        p_opt_time (p, r->status_time_us);
        p_money (p, r->starting_balance);
        p_money (p, r->balance);
        p_money (p, r->equity_hwm);
        p_money (p, r->day_start_equity);
        p_money (p, r->day_start_balance);
        p_time (p, r->day_start_us);
        p_time (p, r->updated_us);
        p_int (p, r->version);
        p_text_take (p, arb_assessment_lifecycle_to_json (r));
        return ST_UPDATE_ASSESSMENT;
      }
    case ARB_STORE_OP_INSERT_ORDER:
      {
        const ArbOrderRow *r = op->u.order;
        p_text (p, r->id);
        p_text (p, r->assessment_id);
        p_text (p, r->client_order_id);
        p_text (p, r->market);
        p_text (p, r->is_buy ? "buy" : "sell");
        p_money (p, r->quantity);
        p_opt_money (p, r->has_stop_loss, r->stop_loss);
        p_opt_money (p, r->has_take_profit, r->take_profit);
        p_text (p, r->status);
        p_text (p, r->correlation_id);
        p_time (p, r->created_us);
        return ST_INSERT_ORDER;
      }
    case ARB_STORE_OP_INSERT_TRADE:
      {
        const ArbTradeRow *r = op->u.trade;
        p_text (p, r->id);
        p_int (p, r->seq);
        p_text (p, r->assessment_id);
        p_text (p, r->order_id);
        p_text (p, r->position_id);
        p_text (p, r->market);
        p_text (p, arb_position_side_to_string (r->side));
        p_text (p, r->is_buy ? "buy" : "sell");
        p_text (p, arb_trade_reason_to_string (r->reason));
        p_money (p, r->quantity);
        p_money (p, r->price);
        p_money (p, r->fee);
        p_money (p, r->realized_pnl);
        p_money (p, r->cash_effect);
        p_text (p, r->quote_source);
        p_opt_time (p, r->quote_time_us);
        p_time (p, r->executed_us);
        return ST_INSERT_TRADE;
      }
    case ARB_STORE_OP_UPSERT_POSITION:
      {
        const ArbPositionRow *r = op->u.position;
        p_text (p, r->id);
        p_text (p, r->assessment_id);
        p_text (p, r->order_id);
        p_text (p, r->market);
        p_text (p, arb_position_side_to_string (r->side));
        p_text (p, position_status_name (r->status));
        p_money (p, r->quantity);
        p_money (p, r->initial_quantity);
        p_money (p, r->entry_price);
        p_money (p, r->margin);
        p_money (p, r->realized_pnl);
        p_money (p, r->fees);
        p_opt_money (p, r->has_stop_loss, r->stop_loss);
        p_opt_money (p, r->has_take_profit, r->take_profit);
        p_text (p, r->close_reason);
        p_time (p, r->opened_us);
        p_opt_time (p, r->closed_us);
        p_time (p, r->updated_us);
        return ST_UPSERT_POSITION;
      }
    case ARB_STORE_OP_INSERT_OUTBOX:
      {
        const ArbOutboxRow *r = op->u.outbox;
        p_text (p, r->id);
        p_text (p, r->type);
        p_text (p, r->key);
        p_text (p, r->assessment_id);
        p_text (p, r->payload);
        p_time (p, r->created_us);
        if (op->pos <= 0)
          return ST_INSERT_OUTBOX;
        p_int (p, op->pos);
        return ST_INSERT_OUTBOX_POS;
      }
    case ARB_STORE_OP_INSERT_IDEMPOTENCY:
      {
        const ArbIdempotencyRow *r = op->u.idempotency;
        p_text (p, r->user);
        p_text (p, r->key);
        p_text (p, r->request_hash);
        p_int (p, r->status);
        p_text (p, r->body);
        p_time (p, r->created_us);
        return ST_INSERT_IDEMPOTENCY;
      }
    case ARB_STORE_OP_INSERT_DELIVERY:
      p_text (p, op->u.delivery->event_id);
      p_text (p, op->u.delivery->sink);
      p_time (p, op->u.delivery->delivered_us);
      return ST_INSERT_DELIVERY;
    case ARB_STORE_OP_PRUNE_OUTBOX:
      p_time (p, op->u.prune->before_us);
      p_text (p, op->u.prune->pairs_json);
      p_int (p, op->u.prune->limit);
      return ST_PRUNE_OUTBOX;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY:
      p_text (p, op->u.key_expiry->user);
      p_text (p, op->u.key_expiry->key);
      p_time (p, op->u.key_expiry->before_us);
      return ST_EXPIRE_IDEMPOTENCY_KEY;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
    default:
      p_time (p, op->u.before_us);
      return ST_EXPIRE_IDEMPOTENCY;
    }
}

/* an UPDATE that found nothing to update */
static gboolean
missed_update (const ArbStoreOp *op, const PGresult *res)
{
  return op->kind == ARB_STORE_OP_UPDATE_ASSESSMENT && g_strcmp0 (PQcmdTuples ((PGresult *) res), "0") == 0;
}

static void
set_missed_update (const ArbStoreOp *op, GError **error)
{
  g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT, "update assessment %s: no such assessment",
               op->u.assessment->id);
}

/* ---- pipeline I/O ------------------------------------------------------- */

/* waits until the socket is ready for what libpq needs, sending what is
 * still buffered and taking in what arrived; FALSE: broken or timed out */
static gboolean
pump (PgConn *c, gint64 deadline, gboolean need_input)
{
  int flushed = PQflush (c->pg);
  struct pollfd pfd = { .fd = PQsocket (c->pg) };
  int timeout_ms, rc;

  if (flushed < 0 || pfd.fd < 0)
    return FALSE;
  if (flushed == 0 && !need_input)
    return TRUE;
  pfd.events = POLLIN | (flushed == 1 ? POLLOUT : 0);
  timeout_ms = (int) MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
  do
    rc = poll (&pfd, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  if (rc <= 0)
    return FALSE;
  if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput (c->pg))
    return FALSE;
  return TRUE;
}

/* everything queued goes out, taking in answers meanwhile so that neither
 * side can stall on a full socket buffer */
static gboolean
flush_all (PgConn *c, gint64 deadline)
{
  int flushed;
  while ((flushed = PQflush (c->pg)) == 1)
    if (!pump (c, deadline, FALSE))
      return FALSE;
  return flushed == 0;
}

/* the next result of the pipeline, without blocking past @deadline; NULL
 * marks the end of one query's results, and also a broken connection (then
 * c->broken is set) */
static PGresult *
next_result (PgConn *c, gint64 deadline)
{
  while (PQisBusy (c->pg))
    if (!pump (c, deadline, TRUE))
      {
        c->broken = TRUE;
        return NULL;
      }
  return PQgetResult (c->pg);
}

/* the result of one query sent in the pipeline, with its closing NULL read */
static PGresult *
query_result (PgConn *c, gint64 deadline)
{
  PGresult *res = next_result (c, deadline);
  if (res != NULL && PQresultStatus (res) != PGRES_PIPELINE_SYNC)
    {
      PGresult *end = next_result (c, deadline);
      /* more than one result for one query: not something we sent */
      if (end != NULL)
        {
          PQclear (end);
          c->broken = TRUE;
        }
    }
  return res;
}

static gboolean
expect_sync (PgConn *c, gint64 deadline)
{
  g_autoptr(PGresult) res = next_result (c, deadline);
  if (res == NULL || PQresultStatus (res) != PGRES_PIPELINE_SYNC)
    {
      c->broken = TRUE;
      return FALSE;
    }
  return TRUE;
}

static gboolean
leave_pipeline (PgConn *c)
{
  gboolean ok = PQexitPipelineMode (c->pg) == 1;
  PQsetnonblocking (c->pg, 0);
  if (!ok)
    c->broken = TRUE;
  return ok;
}

typedef enum {
  PIPE_OK,          /* committed */
  PIPE_TXN_FAILED,  /* a statement was refused: rolled back, go statement by statement */
  PIPE_RETRY,
  PIPE_LOST,        /* before COMMIT was sent */
  PIPE_FAILED,
} PipeResult;

static PipeResult
pipe_failure (FailKind kind)
{
  switch (kind)
    {
    case FAIL_TXN:
      return PIPE_TXN_FAILED;
    case FAIL_RETRY:
      return PIPE_RETRY;
    case FAIL_LOST:
      return PIPE_LOST;
    case FAIL_GROUP:
    default:
      return PIPE_FAILED;
    }
}

/* ---- the fast path: a group as a handful of array statements ---------- */

/* One INSERT per table for the whole group, with one array parameter per
 * column (unnest), instead of one statement per row: each statement pays
 * for executor start-up, tuple routing into the partition, and foreign-key
 * trigger set-up, which costs more than the row itself. The outcome must be
 * the one the txns would have had one after the other, or the group goes
 * statement by statement (sequential_group), so:
 * - an assessment is updated by every order; every UPDATE writes all the
 *   mutable columns, so the last one per assessment is the outcome (and one
 *   UPDATE per row, not a chain of row versions inside one transaction);
 * - a position upserted more than once: the first one's fixed columns with
 *   the last one's mutable columns, as ON CONFLICT would have left it;
 * - expiring idempotency keys: the earliest cut-off of the group (it never
 *   deletes more than one of the txns would have);
 * - anything that refers to an assessment a later op inserts, a duplicate
 *   key, an UPDATE that finds no row: statement by statement. */

typedef enum {
  B_INSERT_ASSESSMENT,
  B_UPDATE_ASSESSMENT,
  B_INSERT_ORDER,
  B_INSERT_TRADE,
  B_UPSERT_POSITION,
  B_INSERT_OUTBOX,
  B_EXPIRE_IDEMPOTENCY_KEY, /* before the inserts of the same keys */
  B_INSERT_IDEMPOTENCY,
  B_INSERT_DELIVERY,
  N_BATCHES
} BatchKind;

static const Statement batch_statement[N_BATCHES] = {
  [B_INSERT_ASSESSMENT] = ST_BATCH_INSERT_ASSESSMENT, [B_UPDATE_ASSESSMENT] = ST_BATCH_UPDATE_ASSESSMENT,
  [B_INSERT_ORDER] = ST_BATCH_INSERT_ORDER,           [B_INSERT_TRADE] = ST_BATCH_INSERT_TRADE,
  [B_UPSERT_POSITION] = ST_BATCH_UPSERT_POSITION,     [B_INSERT_OUTBOX] = ST_BATCH_INSERT_OUTBOX,
  [B_EXPIRE_IDEMPOTENCY_KEY] = ST_BATCH_EXPIRE_IDEMPOTENCY_KEY,
  [B_INSERT_IDEMPOTENCY] = ST_BATCH_INSERT_IDEMPOTENCY, [B_INSERT_DELIVERY] = ST_BATCH_INSERT_DELIVERY,
};

/* ---- the group statement ------------------------------------------------ */

/* An order's group writes five tables. One statement per table costs an
 * executor start, a snapshot, a portal and a protocol exchange each; the
 * group statement does it once, each table's batch statement a
 * data-modifying CTE of it (executed in full whether read or not; the
 * foreign-key checks run at its end, when every CTE has written). Groups
 * with anything else (a new assessment, outbox rows with a pos from the
 * store, delivery marks, a prune) go statement by table as before. */
static const BatchKind group_kinds[] = {
  B_UPDATE_ASSESSMENT, B_INSERT_ORDER, B_INSERT_TRADE, B_UPSERT_POSITION, B_INSERT_OUTBOX, B_INSERT_IDEMPOTENCY,
};
#define GROUP_MAX_PARAMS 80

/* Inside the group statement, the keys' expiry is part of their insert
 * rather than a DELETE sent before it (a statement of its own: an executor
 * start, a snapshot and a protocol exchange a group; sibling CTEs cannot
 * be ordered). A key already stored is replaced only where its expiry,
 * $7-$9 (the columns of the expiry batch: user, key, before), says it is
 * older than that; any other conflict leaves the row out, the count check
 * at the end fails the group, and it goes statement by statement, where
 * the insert reports the conflict as before. */
#define GROUP_INSERT_IDEMPOTENCY \
  "INSERT INTO idempotency_keys AS i (user_id, key, request_hash, status, body, created_at) " \
  "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[]) " \
  "ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, " \
  "status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at " \
  "WHERE i.created_at < (SELECT x.before FROM unnest($7::text[], $8::text[], $9::timestamptz[]) " \
  "AS x (user_id, key, before) WHERE x.user_id = i.user_id AND x.key = i.key LIMIT 1) RETURNING 1"

/* the highest $N of @sql */
static int
max_param (const char *sql)
{
  int max = 0;
  for (const char *c = strchr (sql, '$'); c != NULL; c = strchr (c + 1, '$'))
    if (g_ascii_isdigit (c[1]))
      max = MAX (max, atoi (c + 1));
  return max;
}

/* @sql with every $N made $(N + @offset) */
static void
append_renumbered (GString *out, const char *sql, int offset)
{
  for (const char *c = sql; *c != '\0'; c++)
    {
      if (*c == '$' && g_ascii_isdigit (c[1]))
        {
          char *end;
          long n = strtol (c + 1, &end, 10);
          g_string_append_printf (out, "$%ld", n + offset);
          c = end - 1;
        }
      else
        g_string_append_c (out, *c);
    }
}

typedef struct {
  char *sql;
  int   params[G_N_ELEMENTS (group_kinds)]; /* columns of each kind (the keys' with their expiry's) */
  int   total;                               /* with the two row counts last */
} GroupStatement;

static const GroupStatement *
group_statement (void)
{
  static GroupStatement gs;
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      GString *sql = g_string_new ("WITH ");
      int offset = 0;
      for (guint k = 0; k < G_N_ELEMENTS (group_kinds); k++)
        {
          BatchKind b = group_kinds[k];
          const char *body = b == B_UPDATE_ASSESSMENT    ? BATCH_UPDATE_ASSESSMENT
                             : b == B_INSERT_IDEMPOTENCY ? GROUP_INSERT_IDEMPOTENCY
                                                         : statements[batch_statement[b]].sql;
          gs.params[k] = max_param (body);
          g_string_append_printf (sql, "%sw%u AS (", k > 0 ? ", " : "", k);
          append_renumbered (sql, body, offset);
          g_string_append (sql, b == B_UPDATE_ASSESSMENT ? " RETURNING 1)" : ")");
          offset += gs.params[k];
        }
      gs.total = offset + 2;
      g_assert (gs.total <= GROUP_MAX_PARAMS);
      g_assert (group_kinds[0] == B_UPDATE_ASSESSMENT && group_kinds[5] == B_INSERT_IDEMPOTENCY);
      /* the assessment rows it must find and the keys it must write: a
       * division by zero otherwise */
      g_string_append_printf (sql, " SELECT 1 / ((SELECT count(*) FROM w0) = $%d::int8 "
                              "AND (SELECT count(*) FROM w5) = $%d::int8)::int", gs.total - 1, gs.total);
      gs.sql = g_string_free (sql, FALSE);
      g_once_init_leave (&done, 1);
    }
  return &gs;
}

static const char *
group_statement_sql (void)
{
  return group_statement ()->sql;
}


/* A column of a batch statement. Text and timestamptz columns go in
 * PostgreSQL's binary array format (array_recv): the server then copies
 * strings instead of parsing a quoted literal character by character
 * (array_in was the largest function in its profile, the outbox payloads
 * being long), and the daemon skips the escaping. Numbers stay array
 * literals: short, and numeric's binary form is base 10000. */
typedef struct {
  char     kind;     /* P_TEXT or P_TIME: binary; P_OTHER: a literal */
  gboolean has_null;
  GString *buf;      /* {"a","b",NULL}, or the binary header and elements */
} Column;

typedef struct {
  guint    rows;
  int      n_cols;
  Column   cols[MAX_PARAMS];
} Batch;

typedef struct {
  Batch          batches[N_BATCHES];
  gboolean       expire;
  gint64         expire_before_us;
  ArbStorePrune *prune; /* one prune a group, sent last; nullable */
  gboolean       outbox_pos; /* the outbox rows carry the store's pos */
} GroupPlan;

static void
group_plan_clear (GroupPlan *plan)
{
  for (guint b = 0; b < N_BATCHES; b++)
    for (int i = 0; i < plan->batches[b].n_cols; i++)
      g_string_free (plan->batches[b].cols[i].buf, TRUE);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (GroupPlan, group_plan_clear)

/* the binary array header: one dimension, flags, element type, length,
 * lower bound; written when the column is complete */
#define ARRAY_HEADER 20
#define OID_TEXT        25
#define OID_TIMESTAMPTZ 1184
/* 2000-01-01 (PostgreSQL's epoch) in Unix microseconds */
#define PG_EPOCH_US     G_GINT64_CONSTANT (946684800000000)

static void
put_be32 (GString *s, guint32 v)
{
  v = GUINT32_TO_BE (v);
  g_string_append_len (s, (const char *) &v, 4);
}

static void
put_be64 (GString *s, guint64 v)
{
  v = GUINT64_TO_BE (v);
  g_string_append_len (s, (const char *) &v, 8);
}

static void
column_add_literal (GString *s, const char *value)
{
  if (value == NULL)
    {
      g_string_append (s, "NULL");
      return;
    }
  g_string_append_c (s, '"');
  for (const char *c = value;;)
    {
      gsize run = strcspn (c, "\"\\");
      g_string_append_len (s, c, (gssize) run);
      c += run;
      if (*c == '\0')
        break;
      g_string_append_c (s, '\\');
      g_string_append_c (s, *c++);
    }
  g_string_append_c (s, '"');
}

static void
batch_add (Batch *b, const Params *p)
{
  if (b->rows == 0)
    {
      b->n_cols = p->n;
      for (int i = 0; i < p->n; i++)
        {
          Column *col = &b->cols[i];
          col->kind = p->kind[i];
          col->has_null = FALSE;
          col->buf = g_string_sized_new (256);
          if (col->kind == P_OTHER)
            g_string_append_c (col->buf, '{');
          else
            g_string_set_size (col->buf, ARRAY_HEADER);
        }
    }
  for (int i = 0; i < p->n; i++)
    {
      Column *col = &b->cols[i];
      GString *s = col->buf;

      /* one op kind per batch: a column's kind never changes */
      g_assert (p->kind[i] == col->kind);
      if (col->kind == P_OTHER)
        {
          if (b->rows > 0)
            g_string_append_c (s, ',');
          column_add_literal (s, p->values[i]);
        }
      else if (p->values[i] == NULL)
        {
          put_be32 (s, (guint32) -1);
          col->has_null = TRUE;
        }
      else if (col->kind == P_TEXT)
        {
          gsize len = strlen (p->values[i]);
          put_be32 (s, (guint32) len);
          g_string_append_len (s, p->values[i], (gssize) len);
        }
      else
        {
          put_be32 (s, 8);
          put_be64 (s, (guint64) (p->us[i] - PG_EPOCH_US));
        }
    }
  b->rows++;
}

/* closes the columns: the literal's brace, or the binary header */
static void
batch_finish (Batch *b)
{
  for (int i = 0; i < b->n_cols; i++)
    {
      Column *col = &b->cols[i];
      guint32 header[5];

      if (col->kind == P_OTHER)
        {
          g_string_append_c (col->buf, '}');
          continue;
        }
      header[0] = GUINT32_TO_BE (1);
      header[1] = GUINT32_TO_BE (col->has_null ? 1 : 0);
      header[2] = GUINT32_TO_BE (col->kind == P_TEXT ? OID_TEXT : OID_TIMESTAMPTZ);
      header[3] = GUINT32_TO_BE (b->rows);
      header[4] = GUINT32_TO_BE (1);
      memcpy (col->buf->str, header, ARRAY_HEADER);
    }
}

static void
batch_add_op (Batch *b, const ArbStoreOp *op)
{
  Params p;
  op_params (op, &p);
  batch_add (b, &p);
}

typedef struct {
  const ArbPositionRow *first;
  const ArbPositionRow *last;
} PositionUpserts;

/* the assessment a row operation depends on, if any */
static const char *
op_assessment (const ArbStoreOp *op)
{
  switch (op->kind)
    {
    case ARB_STORE_OP_UPDATE_ASSESSMENT:
      return op->u.assessment->id;
    case ARB_STORE_OP_INSERT_ORDER:
      return op->u.order->assessment_id;
    case ARB_STORE_OP_INSERT_TRADE:
      return op->u.trade->assessment_id;
    case ARB_STORE_OP_UPSERT_POSITION:
      return op->u.position->assessment_id;
    default:
      return NULL;
    }
}

/* FALSE: this group must go statement by statement */
static gboolean
plan_group (ArbStoreTxn **txns, guint n_txns, GroupPlan *plan)
{
  g_autoptr(GHashTable) inserted = g_hash_table_new (g_str_hash, g_str_equal); /* id → flat index + 1 */
  g_autoptr(GHashTable) updates = g_hash_table_new (g_str_hash, g_str_equal);  /* id → last row */
  g_autoptr(GHashTable) positions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GPtrArray) position_order = g_ptr_array_new (); /* keys, first seen first */
  GHashTableIter iter;
  gpointer value;
  guint k = 0;

  for (guint t = 0; t < n_txns; t++)
    for (guint i = 0; i < txns[t]->ops->len; i++, k++)
      {
        const ArbStoreOp *op = &g_array_index (txns[t]->ops, ArbStoreOp, i);
        if (op->kind == ARB_STORE_OP_INSERT_ASSESSMENT && !g_hash_table_contains (inserted, op->u.assessment->id))
          g_hash_table_insert (inserted, op->u.assessment->id, GUINT_TO_POINTER (k + 1));
      }
  k = 0;
  for (guint t = 0; t < n_txns; t++)
    for (guint i = 0; i < txns[t]->ops->len; i++, k++)
      {
        const ArbStoreOp *op = &g_array_index (txns[t]->ops, ArbStoreOp, i);
        const char *depends = op_assessment (op);
        guint at = depends != NULL ? GPOINTER_TO_UINT (g_hash_table_lookup (inserted, depends)) : 0;

        /* one after the other, this op would have found no assessment */
        if (at > k + 1)
          return FALSE;
        switch (op->kind)
          {
          case ARB_STORE_OP_INSERT_ASSESSMENT:
            batch_add_op (&plan->batches[B_INSERT_ASSESSMENT], op);
            break;
          case ARB_STORE_OP_UPDATE_ASSESSMENT:
            g_hash_table_insert (updates, op->u.assessment->id, (gpointer) op);
            break;
          case ARB_STORE_OP_INSERT_ORDER:
            batch_add_op (&plan->batches[B_INSERT_ORDER], op);
            break;
          case ARB_STORE_OP_INSERT_TRADE:
            batch_add_op (&plan->batches[B_INSERT_TRADE], op);
            break;
          case ARB_STORE_OP_UPSERT_POSITION:
            {
              char *key = g_strdup_printf ("%s/%" G_GINT64_FORMAT, op->u.position->id, op->u.position->opened_us);
              PositionUpserts *pu = g_hash_table_lookup (positions, key);
              if (pu == NULL)
                {
                  pu = g_new0 (PositionUpserts, 1);
                  pu->first = op->u.position;
                  g_hash_table_insert (positions, key, pu);
                  g_ptr_array_add (position_order, pu);
                }
              else
                g_free (key);
              pu->last = op->u.position;
              break;
            }
          case ARB_STORE_OP_INSERT_OUTBOX:
            /* rows with the store's pos and rows without: one statement
             * cannot take both (it never happens: the store gives pos to
             * all or to none) */
            if (plan->batches[B_INSERT_OUTBOX].rows > 0 && plan->outbox_pos != (op->pos > 0))
              return FALSE;
            plan->outbox_pos = op->pos > 0;
            batch_add_op (&plan->batches[B_INSERT_OUTBOX], op);
            break;
          case ARB_STORE_OP_INSERT_IDEMPOTENCY:
            batch_add_op (&plan->batches[B_INSERT_IDEMPOTENCY], op);
            break;
          case ARB_STORE_OP_INSERT_DELIVERY:
            batch_add_op (&plan->batches[B_INSERT_DELIVERY], op);
            break;
          case ARB_STORE_OP_PRUNE_OUTBOX:
            /* two prunes in one group: rare, and fine statement by statement */
            if (plan->prune != NULL)
              return FALSE;
            plan->prune = op->u.prune;
            break;
          case ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY:
            batch_add_op (&plan->batches[B_EXPIRE_IDEMPOTENCY_KEY], op);
            break;
          case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
            plan->expire_before_us = plan->expire ? MIN (plan->expire_before_us, op->u.before_us) : op->u.before_us;
            plan->expire = TRUE;
            break;
          default:
            return FALSE;
          }
      }
  g_hash_table_iter_init (&iter, updates);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    batch_add_op (&plan->batches[B_UPDATE_ASSESSMENT], value);
  for (guint i = 0; i < position_order->len; i++)
    {
      const PositionUpserts *pu = g_ptr_array_index (position_order, i);
      ArbPositionRow merged = *pu->first;
      ArbStoreOp op = { .kind = ARB_STORE_OP_UPSERT_POSITION };

      /* what ON CONFLICT DO UPDATE sets (POSITION_UPDATE) comes from the last */
      merged.status = pu->last->status;
      merged.quantity = pu->last->quantity;
      merged.margin = pu->last->margin;
      merged.realized_pnl = pu->last->realized_pnl;
      merged.fees = pu->last->fees;
      merged.has_stop_loss = pu->last->has_stop_loss;
      merged.stop_loss = pu->last->stop_loss;
      merged.has_take_profit = pu->last->has_take_profit;
      merged.take_profit = pu->last->take_profit;
      merged.close_reason = pu->last->close_reason;
      merged.closed_us = pu->last->closed_us;
      merged.updated_us = pu->last->updated_us;
      op.u.position = &merged;
      batch_add_op (&plan->batches[B_UPSERT_POSITION], &op);
    }
  for (guint b = 0; b < N_BATCHES; b++)
    batch_finish (&plan->batches[b]);
  return TRUE;
}

/* the statements of a plan, in the order they are sent: the expiry of
 * idempotency keys goes before their inserts */
typedef struct {
  Statement st;
  int       n;
  const char *values[GROUP_MAX_PARAMS];
  int       lengths[GROUP_MAX_PARAMS];
  int       formats[GROUP_MAX_PARAMS]; /* 0 text, 1 binary */
  char      buf[ARB_STORE_TIME_BUFSIZE];
  char      buf2[24];
  ArbStorePrune *prune; /* a prune: its count of deleted rows goes there */
} Sent;

static gboolean
is_group_kind (guint b)
{
  for (guint k = 0; k < G_N_ELEMENTS (group_kinds); k++)
    if (group_kinds[k] == b)
      return TRUE;
  return FALSE;
}

/* the group statement takes the plan: only the order path's tables (and
 * the expiry of keys, part of their insert), and at least two of them */
static gboolean
group_fits (const GroupPlan *plan)
{
  guint kinds = 0;

  if (plan->prune != NULL || plan->outbox_pos)
    return FALSE;
  /* each key's expiry goes with its insert (the saga makes them in pairs) */
  if (plan->batches[B_EXPIRE_IDEMPOTENCY_KEY].rows > 0
      && plan->batches[B_EXPIRE_IDEMPOTENCY_KEY].rows != plan->batches[B_INSERT_IDEMPOTENCY].rows)
    return FALSE;
  for (guint b = 0; b < N_BATCHES; b++)
    {
      if (plan->batches[b].rows == 0 || b == B_EXPIRE_IDEMPOTENCY_KEY)
        continue;
      if (!is_group_kind (b))
        return FALSE;
      kinds++;
    }
  return kinds >= 2;
}

/* one batch's columns as parameters @at.. of @out */
static void
sent_columns (Sent *out, int at, const Batch *batch)
{
  for (int i = 0; i < batch->n_cols; i++)
    {
      out->values[at + i] = batch->cols[i].buf->str;
      out->lengths[at + i] = (int) batch->cols[i].buf->len;
      out->formats[at + i] = batch->cols[i].kind != P_OTHER;
    }
}

static void
sent_group (Sent *out, const GroupPlan *plan)
{
  const GroupStatement *gs = group_statement ();
  int at = 0;

  out->st = ST_GROUP_WRITE;
  out->prune = NULL;
  for (guint k = 0; k < G_N_ELEMENTS (group_kinds); k++)
    {
      const Batch *parts[2] = { &plan->batches[group_kinds[k]], NULL };
      int end = at + gs->params[k];
      if (group_kinds[k] == B_INSERT_IDEMPOTENCY)
        parts[1] = &plan->batches[B_EXPIRE_IDEMPOTENCY_KEY];
      for (guint j = 0; j < G_N_ELEMENTS (parts) && parts[j] != NULL; j++)
        {
          const Batch *batch = parts[j];
          if (batch->rows > 0)
            {
              sent_columns (out, at, batch);
              at += batch->n_cols;
            }
          else
            /* an empty array of any type, as text, for each column */
            for (int n = j == 0 ? gs->params[k] - (parts[1] != NULL ? 3 : 0) : 3; n > 0; n--, at++)
              {
                out->values[at] = "{}";
                out->lengths[at] = 0;
                out->formats[at] = 0;
              }
        }
      g_assert (at == end);
    }
  g_snprintf (out->buf2, sizeof out->buf2, "%u", plan->batches[B_UPDATE_ASSESSMENT].rows);
  out->values[at] = out->buf2;
  out->lengths[at] = 0;
  out->formats[at] = 0;
  g_snprintf (out->buf, sizeof out->buf, "%u", plan->batches[B_INSERT_IDEMPOTENCY].rows);
  out->values[at + 1] = out->buf;
  out->lengths[at + 1] = 0;
  out->formats[at + 1] = 0;
  out->n = at + 2;
  g_assert (out->n == gs->total);
}

static guint
plan_statements (GroupPlan *plan, Sent *out)
{
  gboolean whole = group_fits (plan);
  guint n = 0;

  for (guint b = 0; b < N_BATCHES; b++)
    {
      Batch *batch = &plan->batches[b];
      if (b == B_EXPIRE_IDEMPOTENCY_KEY && plan->expire)
        {
          Sent *e = &out[n++];
          e->st = ST_EXPIRE_IDEMPOTENCY;
          e->n = 1;
          memset (e->formats, 0, sizeof e->formats);
          e->values[0] = arb_store_format_timestamptz (plan->expire_before_us, e->buf);
          e->prune = NULL;
        }
      if (batch->rows == 0 || (whole && (is_group_kind (b) || b == B_EXPIRE_IDEMPOTENCY_KEY)))
        continue;
      out[n].st = b == B_INSERT_OUTBOX && plan->outbox_pos ? ST_BATCH_INSERT_OUTBOX_POS : batch_statement[b];
      out[n].n = batch->n_cols;
      sent_columns (&out[n], 0, batch);
      if (b == B_UPDATE_ASSESSMENT)
        {
          g_snprintf (out[n].buf2, sizeof out[n].buf2, "%u", batch->rows);
          out[n].lengths[out[n].n] = 0;
          out[n].formats[out[n].n] = 0;
          out[n].values[out[n].n++] = out[n].buf2;
        }
      out[n].prune = NULL;
      n++;
    }
  if (whole)
    sent_group (&out[n++], plan);
  /* last, so that it sees the delivery marks of the same group */
  if (plan->prune != NULL)
    {
      Sent *e = &out[n++];
      e->st = ST_PRUNE_OUTBOX;
      e->n = 3;
      memset (e->formats, 0, sizeof e->formats);
      e->values[0] = arb_store_format_timestamptz (plan->prune->before_us, e->buf);
      e->values[1] = plan->prune->pairs_json;
      g_snprintf (e->buf2, sizeof e->buf2, "%u", plan->prune->limit);
      e->values[2] = e->buf2;
      e->prune = plan->prune;
    }
  return n;
}

/* queues the statements and a sync, and sends them */
static gboolean
send_group (PgConn *c, const Sent *sent, guint n_sent, gint64 deadline)
{
  for (guint i = 0; i < n_sent; i++)
    if (!PQsendQueryPrepared (c->pg, statements[sent[i].st].name, sent[i].n, sent[i].values, sent[i].lengths,
                              sent[i].formats, 0))
      return FALSE;
  return PQpipelineSync (c->pg) == 1 && flush_all (c, deadline);
}

static PipeResult
pipeline_lost (PgConn *c, GError **error, const char *what)
{
  c->broken = TRUE;
  g_clear_error (error);
  set_error (c, NULL, error, what);
  return PIPE_LOST;
}

/* A connection the server closed while it was idle (a restart, an
 * administrator, idle_session_timeout) has the server's last words, or the
 * end of the stream, waiting to be read. Nothing else comes unasked to a
 * writer's idle connection, so readable means closing: found before
 * anything is sent, the group can go on a new connection. */
static gboolean
still_connected (PgConn *c)
{
  struct pollfd pfd = { .fd = PQsocket (c->pg), .events = POLLIN };

  if (pfd.fd < 0 || PQstatus (c->pg) != CONNECTION_OK)
    return FALSE;
  return poll (&pfd, 1, 0) == 0;
}

/* One round trip: the statements and a Sync. Without BEGIN, everything up
 * to the Sync is one transaction, which the server commits at the Sync if
 * every statement succeeded and rolls back otherwise (the extended query
 * protocol's implicit transaction), and its answer comes after the commit.
 * The price: once the group is sent, a lost connection leaves its outcome
 * unknown, so the group fails and is not run again. */
static PipeResult
pipeline_group (PgConn *c, ArbStoreTxn **txns, guint n_txns, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + IO_TIMEOUT_MS * 1000;
  PipeResult outcome = PIPE_OK;
  g_auto(GroupPlan) plan = { 0 };
  Sent sent[N_BATCHES + 2];
  guint n_sent;

  if (!plan_group (txns, n_txns, &plan))
    return PIPE_TXN_FAILED;
  n_sent = plan_statements (&plan, sent);
  if (!still_connected (c))
    return pipeline_lost (c, error, "checking the connection");
  if (PQsetnonblocking (c->pg, 1) != 0 || PQenterPipelineMode (c->pg) != 1)
    return pipeline_lost (c, error, "entering pipeline mode");
  if (!send_group (c, sent, n_sent, deadline))
    {
      c->broken = TRUE;
      set_error (c, NULL, error, "sending the group");
      return PIPE_FAILED;
    }
  for (guint i = 0; i < n_sent; i++)
    {
      g_autoptr(PGresult) res = query_result (c, deadline);

      if (c->broken)
        break;
      if (outcome != PIPE_OK)
        continue; /* PGRES_PIPELINE_ABORTED after the first failure */
      if (!result_ok (res))
        {
          g_autoptr(GError) local = NULL;
          outcome = pipe_failure (set_error (c, res, &local, statements[sent[i].st].name));
          /* a refused row is found again, and reported, statement by statement */
          if (outcome != PIPE_TXN_FAILED)
            g_propagate_error (error, g_steal_pointer (&local));
        }
      else if (sent[i].prune != NULL)
        sent[i].prune->deleted = g_ascii_strtoll (PQcmdTuples (res), NULL, 10);
    }
  if (!c->broken)
    {
      /* the commit at the Sync can fail too (a serialization failure in
       * CockroachDB): then an error comes before the Sync's answer */
      g_autoptr(PGresult) res = next_result (c, deadline);
      if (res != NULL && PQresultStatus (res) != PGRES_PIPELINE_SYNC)
        {
          if (outcome == PIPE_OK)
            {
              FailKind kind = set_error (c, res, error, "COMMIT");
              outcome = kind == FAIL_RETRY ? PIPE_RETRY : PIPE_FAILED;
            }
          g_clear_pointer (&res, PQclear);
          expect_sync (c, deadline);
        }
      else if (res == NULL)
        c->broken = TRUE;
    }
  /* a statement failed because the server is going away: nothing was
   * committed, and the group may go again on a new connection */
  if (outcome == PIPE_LOST)
    return pipeline_lost (c, error, "the server closed the connection");
  if (c->broken)
    {
      /* sent and lost: committed or not, nobody knows */
      g_clear_error (error);
      set_error (c, NULL, error, "reading the answers");
      return PIPE_FAILED;
    }
  /* the Sync has answered: committed or rolled back, whatever happens to
   * the connection now (a broken one is replaced before the next group) */
  leave_pipeline (c);
  return outcome;
}

/* ---- statement by statement, a savepoint per txn ------------------------ */

static ArbStoreGroupResult
group_failure (FailKind kind, gboolean commit_sent)
{
  if (kind == FAIL_RETRY)
    return ARB_STORE_GROUP_RETRY;
  if (kind == FAIL_LOST && !commit_sent)
    return ARB_STORE_GROUP_LOST;
  return ARB_STORE_GROUP_FAILED;
}

static void
rollback_quietly (PgConn *c)
{
  if (!c->broken && PQtransactionStatus (c->pg) != PQTRANS_IDLE)
    {
      g_autoptr(PGresult) res = PQexec (c->pg, "ROLLBACK");
      if (!result_ok (res))
        c->broken = TRUE;
    }
}

static ArbStoreGroupResult
sequential_group (PgConn *c, ArbStoreTxn **txns, guint n_txns, GError **error)
{
  Params p;

  {
    g_autoptr(PGresult) res = PQexec (c->pg, "BEGIN");
    if (!result_ok (res))
      return group_failure (set_error (c, res, error, "BEGIN"), FALSE);
  }
  for (guint t = 0; t < n_txns; t++)
    {
      ArbStoreTxn *txn = txns[t];
      g_autoptr(PGresult) sp = PQexec (c->pg, "SAVEPOINT txn");

      if (!result_ok (sp))
        {
          FailKind kind = set_error (c, sp, error, "SAVEPOINT");
          rollback_quietly (c);
          return group_failure (kind == FAIL_TXN ? FAIL_GROUP : kind, FALSE);
        }
      for (guint i = 0; i < txn->ops->len; i++)
        {
          const ArbStoreOp *op = &g_array_index (txn->ops, ArbStoreOp, i);
          Statement st = op_params (op, &p);
          g_autoptr(PGresult) res = PQexecPrepared (c->pg, statements[st].name, p.n, p.values, NULL, NULL, 0);
          g_autoptr(GError) local = NULL;
          g_autoptr(PGresult) back = NULL;

          if (result_ok (res) && op->kind == ARB_STORE_OP_PRUNE_OUTBOX)
            op->u.prune->deleted = g_ascii_strtoll (PQcmdTuples (res), NULL, 10);
          if (result_ok (res) && !missed_update (op, res))
            continue;
          if (result_ok (res))
            set_missed_update (op, &local);
          else
            {
              g_autofree char *what = arb_store_op_describe (op);
              FailKind kind = set_error (c, res, &local, what);
              if (kind != FAIL_TXN)
                {
                  g_propagate_error (error, g_steal_pointer (&local));
                  rollback_quietly (c);
                  return group_failure (kind, FALSE);
                }
            }
          txn->error = g_steal_pointer (&local);
          back = PQexec (c->pg, "ROLLBACK TO SAVEPOINT txn");
          if (!result_ok (back))
            {
              FailKind kind = set_error (c, back, error, "ROLLBACK TO SAVEPOINT");
              rollback_quietly (c);
              return group_failure (kind == FAIL_TXN ? FAIL_GROUP : kind, FALSE);
            }
          break;
        }
      {
        g_autoptr(PGresult) rel = PQexec (c->pg, "RELEASE SAVEPOINT txn");
        if (!result_ok (rel))
          {
            FailKind kind = set_error (c, rel, error, "RELEASE SAVEPOINT");
            rollback_quietly (c);
            return group_failure (kind == FAIL_TXN ? FAIL_GROUP : kind, FALSE);
          }
      }
    }
  {
    g_autoptr(PGresult) res = PQexec (c->pg, "COMMIT");
    if (!result_ok (res))
      {
        FailKind kind = set_error (c, res, error, "COMMIT");
        rollback_quietly (c);
        return group_failure (kind, TRUE);
      }
  }
  return ARB_STORE_GROUP_COMMITTED;
}

static ArbStoreGroupResult
pg_commit_group (gpointer data, ArbStoreTxn **txns, guint n_txns, GError **error)
{
  PgConn *c = data;

  switch (pipeline_group (c, txns, n_txns, error))
    {
    case PIPE_OK:
      return ARB_STORE_GROUP_COMMITTED;
    case PIPE_TXN_FAILED:
      return sequential_group (c, txns, n_txns, error);
    case PIPE_RETRY:
      return ARB_STORE_GROUP_RETRY;
    case PIPE_LOST:
      return ARB_STORE_GROUP_LOST;
    case PIPE_FAILED:
    default:
      return ARB_STORE_GROUP_FAILED;
    }
}

/* ---- reads -------------------------------------------------------------- */

typedef struct {
  const PGresult *res;
  int             row;
  GError        **error;
  const char     *table;
  gboolean        failed;
} Cursor;

static char *
col_text (Cursor *cur, int col)
{
  if (PQgetisnull (cur->res, cur->row, col))
    return NULL;
  return g_strdup (PQgetvalue (cur->res, cur->row, col));
}

static const char *
col_str (Cursor *cur, int col)
{
  return PQgetisnull (cur->res, cur->row, col) ? NULL : PQgetvalue (cur->res, cur->row, col);
}

static void
bad_value (Cursor *cur, int col, const char *why)
{
  if (cur->failed)
    return;
  cur->failed = TRUE;
  g_set_error (cur->error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED, "%s.%s holds \"%s\": %s", cur->table,
               PQfname (cur->res, col), PQgetisnull (cur->res, cur->row, col) ? "NULL" : PQgetvalue (cur->res, cur->row, col),
               why);
}

static ArbDecimal
col_money (Cursor *cur, int col)
{
  g_autoptr(GError) local = NULL;
  ArbDecimal d = ARB_DECIMAL_ZERO;

  if (PQgetisnull (cur->res, cur->row, col))
    bad_value (cur, col, "no amount");
  else if (!arb_decimal_parse (PQgetvalue (cur->res, cur->row, col), ARB_ROUND_EXACT, &d, &local))
    bad_value (cur, col, local->message);
  return d;
}

static gboolean
col_opt_money (Cursor *cur, int col, ArbDecimal *out)
{
  if (PQgetisnull (cur->res, cur->row, col))
    {
      *out = ARB_DECIMAL_ZERO;
      return FALSE;
    }
  *out = col_money (cur, col);
  return TRUE;
}

static gint64
col_int (Cursor *cur, int col)
{
  const char *text = col_str (cur, col);
  char *end = NULL;
  gint64 v;

  if (text == NULL)
    {
      bad_value (cur, col, "no number");
      return 0;
    }
  errno = 0;
  v = g_ascii_strtoll (text, &end, 10);
  if (errno != 0 || end == text || *end != '\0')
    bad_value (cur, col, "not an integer");
  return v;
}

static gint64
col_time (Cursor *cur, int col)
{
  gint64 us = 0;
  if (PQgetisnull (cur->res, cur->row, col))
    return 0;
  if (!arb_store_parse_timestamptz (PQgetvalue (cur->res, cur->row, col), &us))
    bad_value (cur, col, "not an ISO timestamptz");
  return us;
}

static ArbAssessmentRow *
read_assessment (Cursor *cur)
{
  g_autoptr(ArbAssessmentRow) r = g_new0 (ArbAssessmentRow, 1);

  cur->table = "assessments";
  r->id = col_text (cur, 0);
  r->owner = col_text (cur, 1);
  r->program = col_text (cur, 2);
  if (!arb_assessment_status_from_string (col_str (cur, 3), &r->status))
    bad_value (cur, 3, "not a status");
  r->status_reason = col_text (cur, 4);
  r->status_time_us = col_time (cur, 5);
  r->starting_balance = col_money (cur, 6);
  r->balance = col_money (cur, 7);
  r->equity_hwm = col_money (cur, 8);
  r->day_start_equity = col_money (cur, 9);
  r->day_start_balance = col_money (cur, 10);
  r->day_start_us = col_time (cur, 11);
  r->created_us = col_time (cur, 12);
  r->updated_us = col_time (cur, 13);
  r->version = col_int (cur, 14);
  if (!cur->failed)
    {
      g_autoptr(GError) e = NULL;
      if (!arb_assessment_lifecycle_from_json (r, col_str (cur, 15), &e))
        bad_value (cur, 15, e->message);
    }
  return cur->failed ? NULL : g_steal_pointer (&r);
}

static ArbPositionRow *
read_position (Cursor *cur)
{
  g_autoptr(ArbPositionRow) r = g_new0 (ArbPositionRow, 1);
  const char *status;

  cur->table = "positions";
  r->id = col_text (cur, 0);
  r->assessment_id = col_text (cur, 1);
  r->order_id = col_text (cur, 2);
  r->market = col_text (cur, 3);
  if (!arb_position_side_from_string (col_str (cur, 4), &r->side))
    bad_value (cur, 4, "not a side");
  status = col_str (cur, 5);
  if (g_strcmp0 (status, "open") == 0)
    r->status = ARB_POSITION_OPEN;
  else if (g_strcmp0 (status, "closed") == 0)
    r->status = ARB_POSITION_CLOSED;
  else
    bad_value (cur, 5, "not a position status");
  r->quantity = col_money (cur, 6);
  r->initial_quantity = col_money (cur, 7);
  r->entry_price = col_money (cur, 8);
  r->margin = col_money (cur, 9);
  r->realized_pnl = col_money (cur, 10);
  r->fees = col_money (cur, 11);
  r->has_stop_loss = col_opt_money (cur, 12, &r->stop_loss);
  r->has_take_profit = col_opt_money (cur, 13, &r->take_profit);
  r->close_reason = col_text (cur, 14);
  r->opened_us = col_time (cur, 15);
  r->closed_us = col_time (cur, 16);
  r->updated_us = col_time (cur, 17);
  return cur->failed ? NULL : g_steal_pointer (&r);
}

static ArbTradeRow *
read_trade (Cursor *cur)
{
  g_autoptr(ArbTradeRow) r = g_new0 (ArbTradeRow, 1);

  cur->table = "trades";
  r->id = col_text (cur, 0);
  r->seq = col_int (cur, 1);
  r->assessment_id = col_text (cur, 2);
  r->order_id = col_text (cur, 3);
  r->position_id = col_text (cur, 4);
  r->market = col_text (cur, 5);
  if (!arb_position_side_from_string (col_str (cur, 6), &r->side))
    bad_value (cur, 6, "not a side");
  r->is_buy = g_strcmp0 (col_str (cur, 7), "buy") == 0;
  if (!arb_trade_reason_from_string (col_str (cur, 8), &r->reason))
    bad_value (cur, 8, "not a trade reason");
  r->quantity = col_money (cur, 9);
  r->price = col_money (cur, 10);
  r->fee = col_money (cur, 11);
  r->realized_pnl = col_money (cur, 12);
  r->cash_effect = col_money (cur, 13);
  r->quote_source = col_text (cur, 14);
  r->quote_time_us = col_time (cur, 15);
  r->executed_us = col_time (cur, 16);
  return cur->failed ? NULL : g_steal_pointer (&r);
}

static ArbOutboxRow *
read_outbox (Cursor *cur)
{
  ArbOutboxRow *r = g_new0 (ArbOutboxRow, 1);

  cur->table = "outbox";
  r->id = col_text (cur, 0);
  r->type = col_text (cur, 1);
  r->key = col_text (cur, 2);
  r->assessment_id = col_text (cur, 3);
  r->payload = col_text (cur, 4);
  r->created_us = col_time (cur, 5);
  if (cur->failed)
    g_clear_pointer (&r, arb_outbox_row_free);
  return r;
}

static ArbIdempotencyRow *
read_idempotency (Cursor *cur)
{
  ArbIdempotencyRow *r = g_new0 (ArbIdempotencyRow, 1);

  cur->table = "idempotency_keys";
  r->user = col_text (cur, 0);
  r->key = col_text (cur, 1);
  r->request_hash = col_text (cur, 2);
  r->status = (guint) col_int (cur, 3);
  r->body = col_text (cur, 4);
  r->created_us = col_time (cur, 5);
  if (cur->failed)
    g_clear_pointer (&r, arb_idempotency_row_free);
  return r;
}

static ArbOutboxEntry *
read_outbox_entry (Cursor *cur)
{
  ArbOutboxEntry *e = g_new0 (ArbOutboxEntry, 1);

  cur->table = "outbox";
  e->pos = col_int (cur, 0);
  e->row.id = col_text (cur, 1);
  e->row.type = col_text (cur, 2);
  e->row.key = col_text (cur, 3);
  e->row.assessment_id = col_text (cur, 4);
  e->row.payload = col_text (cur, 5);
  e->row.created_us = col_time (cur, 6);
  if (cur->failed)
    g_clear_pointer (&e, arb_outbox_entry_free);
  return e;
}

static ArbOutboxBacklog *
read_backlog (Cursor *cur)
{
  ArbOutboxBacklog *b = g_new0 (ArbOutboxBacklog, 1);

  cur->table = "outbox";
  b->type = col_text (cur, 0);
  b->count = col_int (cur, 1);
  b->oldest_us = col_time (cur, 2);
  if (cur->failed)
    g_clear_pointer (&b, arb_outbox_backlog_free);
  return b;
}

static char *
read_audit_line (Cursor *cur)
{
  char delta[ARB_DECIMAL_BUFSIZE], total[ARB_DECIMAL_BUFSIZE];
  ArbDecimal d, t;

  cur->table = "assessments";
  d = col_money (cur, 1);
  t = col_money (cur, 2);
  if (cur->failed)
    return NULL;
  return g_strdup_printf ("%s: balance - starting_balance = %s, sum(cash_effect) = %s", col_str (cur, 0),
                          arb_decimal_format (d, delta), arb_decimal_format (t, total));
}

typedef gpointer (*RowReader) (Cursor *cur);
typedef void (*RowSink) (gpointer row, gpointer data);

/* runs a prepared query; each row goes to @sink (which takes it), or into
 * @out when there is no sink, or is freed when there is neither */
static gboolean
query_rows (PgConn *c, Statement st, int n_params, const char *const *values, RowReader reader, GPtrArray *out,
            RowSink sink, gpointer sink_data, GDestroyNotify free_row, GError **error)
{
  g_autoptr(PGresult) res = PQexecPrepared (c->pg, statements[st].name, n_params, values, NULL, NULL, 0);
  Cursor cur = { .res = res, .error = error };

  if (!result_ok (res))
    {
      FailKind kind = set_error (c, res, error, statements[st].name);
      if (kind == FAIL_TXN || kind == FAIL_RETRY)
        (*error)->code = ARB_STORE_ERROR_FAILED;
      return FALSE;
    }
  for (cur.row = 0; cur.row < PQntuples (res); cur.row++)
    {
      gpointer row = reader (&cur);
      if (row == NULL)
        return FALSE;
      if (sink != NULL)
        sink (row, sink_data);
      else if (out != NULL)
        g_ptr_array_add (out, row);
      else
        free_row (row);
    }
  return TRUE;
}

/* @n values of the outbox's own sequence, in one statement: unique across
 * hosts, and increasing, which is all the relay's cursor needs. Where pos is
 * not a sequence (CockroachDB's unique_rowid()), this fails, and the store
 * keeps one ledger writer. */
static gboolean
pg_reserve_pos (gpointer data, guint n, gint64 *out, GError **error)
{
  PgConn *c = data;
  char count[16];
  const char *values[1] = { count };
  g_autoptr(PGresult) res = NULL;

  g_snprintf (count, sizeof count, "%u", n);
  res = PQexecPrepared (c->pg, statements[ST_RESERVE_POS].name, 1, values, NULL, NULL, 0);
  if (!result_ok (res))
    {
      set_error (c, res, error, "reserving outbox positions");
      return FALSE;
    }
  if ((guint) PQntuples (res) != n)
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED, "reserving outbox positions: %d rows, not %u",
                   PQntuples (res), n);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      out[i] = g_ascii_strtoll (PQgetvalue (res, (int) i, 0), NULL, 10);
      if (out[i] <= 0 || (i > 0 && out[i] <= out[i - 1]))
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED,
                       "reserving outbox positions: not increasing at %" G_GINT64_FORMAT, out[i]);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
pg_load (gpointer data, const ArbStoreLoadFuncs *funcs, gint64 idempotency_since_us, gpointer user_data,
         GError **error)
{
  PgConn *c = data;
  char since[ARB_STORE_TIME_BUFSIZE];
  const char *values[1] = { arb_store_format_timestamptz (idempotency_since_us, since) };
  gboolean ok;

  if (!pg_prepare (c, error))
    return FALSE;
  /* one snapshot for the whole load */
  if (!pg_exec_script (c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error))
    return FALSE;
  ok = query_rows (c, ST_LOAD_ASSESSMENTS, 0, NULL, (RowReader) read_assessment, NULL, (RowSink) funcs->assessment,
                   user_data, (GDestroyNotify) arb_assessment_row_free, error)
       && query_rows (c, ST_LOAD_POSITIONS, 0, NULL, (RowReader) read_position, NULL, (RowSink) funcs->position,
                      user_data, (GDestroyNotify) arb_position_row_free, error)
       && query_rows (c, ST_LOAD_IDEMPOTENCY, 1, values, (RowReader) read_idempotency, NULL,
                      (RowSink) funcs->idempotency, user_data, (GDestroyNotify) arb_idempotency_row_free, error);
  if (ok)
    {
      g_autoptr(PGresult) res = PQexecPrepared (c->pg, statements[ST_MAX_SEQ].name, 0, NULL, NULL, NULL, 0);
      Cursor cur = { .res = res, .error = error, .table = "trades" };
      if (!result_ok (res) || PQntuples (res) != 1)
        {
          set_error (c, res, error, "SELECT MAX(seq)");
          ok = FALSE;
        }
      else
        {
          gint64 seq = col_int (&cur, 0);
          ok = !cur.failed;
          if (ok && funcs->max_trade_seq != NULL)
            funcs->max_trade_seq (seq, user_data);
        }
    }
  if (ok)
    ok = pg_exec_script (c, "COMMIT", error);
  else
    rollback_quietly (c);
  return ok;
}

/* a prepared query's rows, read by @reader, as a new array; NULL with @error */
static GPtrArray *
list_rows (PgConn *c, Statement st, int n_params, const char *const *values, RowReader reader,
           GDestroyNotify free_row, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (free_row);

  if (!query_rows (c, st, n_params, values, reader, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static GPtrArray *
pg_list_trades (gpointer data, const char *assessment_id, gint64 before_seq, guint limit, GError **error)
{
  char before[24], lim[16];
  const char *values[3] = { assessment_id, before, lim };

  g_snprintf (before, sizeof before, "%" G_GINT64_FORMAT, before_seq > 0 ? before_seq : G_MAXINT64);
  g_snprintf (lim, sizeof lim, "%u", limit);
  return list_rows (data, ST_LIST_TRADES, 3, values, (RowReader) read_trade, (GDestroyNotify) arb_trade_row_free,
                    error);
}

static GPtrArray *
pg_list_assessment_events (gpointer data, const char *assessment_id, guint limit, GError **error)
{
  char lim[16];
  const char *values[2] = { assessment_id, lim };

  g_snprintf (lim, sizeof lim, "%u", limit);
  return list_rows (data, ST_LIST_EVENTS, 2, values, (RowReader) read_outbox, (GDestroyNotify) arb_outbox_row_free,
                    error);
}

static GPtrArray *
pg_list_closed_positions (gpointer data, const char *assessment_id, const ArbPositionCursor *after, guint limit,
                          GError **error)
{
  char lim[16], before[ARB_STORE_TIME_BUFSIZE];
  const char *values[4] = { assessment_id, lim, "infinity", "" };

  g_snprintf (lim, sizeof lim, "%u", limit);
  if (after != NULL)
    {
      values[2] = arb_store_format_timestamptz (after->closed_us, before);
      values[3] = after->id;
    }
  return list_rows (data, ST_LIST_CLOSED, 4, values, (RowReader) read_position,
                    (GDestroyNotify) arb_position_row_free, error);
}

static GPtrArray *
pg_outbox_pending (gpointer data, guint limit, GError **error)
{
  char lim[16];
  const char *values[1] = { lim };

  g_snprintf (lim, sizeof lim, "%u", limit);
  return list_rows (data, ST_OUTBOX_PENDING, 1, values, (RowReader) read_outbox,
                    (GDestroyNotify) arb_outbox_row_free, error);
}

static GPtrArray *
pg_outbox_pending_for_sink (gpointer data, const char *sink, gint64 after_pos, gint64 upto_pos, guint limit,
                            GError **error)
{
  char after[24], upto[24], lim[16];
  const char *values[4] = { sink, after, lim, upto };

  g_snprintf (after, sizeof after, "%" G_GINT64_FORMAT, after_pos);
  g_snprintf (upto, sizeof upto, "%" G_GINT64_FORMAT, upto_pos);
  g_snprintf (lim, sizeof lim, "%u", limit);
  return list_rows (data, ST_OUTBOX_FOR_SINK, 4, values, (RowReader) read_outbox_entry,
                    (GDestroyNotify) arb_outbox_entry_free, error);
}

static GPtrArray *
pg_outbox_backlog (gpointer data, const char *sink, gint64 after_pos, GError **error)
{
  char after[24];
  const char *values[2] = { sink, after };

  g_snprintf (after, sizeof after, "%" G_GINT64_FORMAT, after_pos);
  return list_rows (data, ST_OUTBOX_BACKLOG, 2, values, (RowReader) read_backlog,
                    (GDestroyNotify) arb_outbox_backlog_free, error);
}

static GPtrArray *
pg_audit_ledger (gpointer data, GError **error)
{
  return list_rows (data, ST_AUDIT, 0, NULL, (RowReader) read_audit_line, g_free, error);
}

const ArbStoreBackend arb_store_pg_backend = {
  .name = "postgresql",
  .max_ledger_writers = 4,
  .background_writer = TRUE,
  .reserve_pos = pg_reserve_pos,
  .check_target = pg_check_target,
  .connect = pg_connect,
  .disconnect = pg_disconnect,
  .is_broken = pg_is_broken,
  .exec_script = pg_exec_script,
  .ensure_migrations_table = pg_ensure_migrations_table,
  .applied_versions = pg_applied_versions,
  .record_migration = pg_record_migration,
  .prepare = pg_prepare,
  .ensure_partitions = pg_ensure_partitions,
  .commit_group = pg_commit_group,
  .load = pg_load,
  .list_trades = pg_list_trades,
  .list_closed_positions = pg_list_closed_positions,
  .list_assessment_events = pg_list_assessment_events,
  .outbox_pending = pg_outbox_pending,
  .audit_ledger = pg_audit_ledger,
  .outbox_pending_for_sink = pg_outbox_pending_for_sink,
  .outbox_backlog = pg_outbox_backlog,
};
