/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <sqlite3.h>

#include "arb-store-backend-private.h"

/* The embedded store: one file, WAL, synchronous=FULL (a COMMIT that
 * returned is on disk), foreign keys on. Money is INTEGER raw units
 * (ArbDecimal.raw), times INTEGER µs. Statements are prepared once per
 * connection and kept. */

#define BUSY_TIMEOUT_MS 5000

typedef enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SAVEPOINT,
  ST_RELEASE,
  ST_ROLLBACK_TO,
  ST_INSERT_ASSESSMENT,
  ST_UPDATE_ASSESSMENT,
  ST_INSERT_ORDER,
  ST_INSERT_TRADE,
  ST_UPSERT_POSITION,
  ST_INSERT_OUTBOX,
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

static const char *const statement_sql[N_STATEMENTS] = {
  [ST_BEGIN] = "BEGIN IMMEDIATE",
  [ST_COMMIT] = "COMMIT",
  [ST_ROLLBACK] = "ROLLBACK",
  [ST_SAVEPOINT] = "SAVEPOINT txn",
  [ST_RELEASE] = "RELEASE txn",
  [ST_ROLLBACK_TO] = "ROLLBACK TO txn",
  [ST_INSERT_ASSESSMENT] = "INSERT INTO assessments (" ASSESSMENT_COLUMNS ") "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
  [ST_UPDATE_ASSESSMENT] = "UPDATE assessments SET status = ?4, status_reason = ?5, status_at = ?6, "
                           "starting_balance = ?7, balance = ?8, equity_hwm = ?9, day_start_equity = ?10, "
                           "day_start_balance = ?11, day_start_at = ?12, updated_at = ?14, version = ?15, "
                           "lifecycle = ?16 WHERE id = ?1",
  [ST_INSERT_ORDER] = "INSERT INTO orders (id, assessment_id, client_order_id, market, direction, quantity, "
                      "stop_loss, take_profit, status, correlation_id, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
  [ST_INSERT_TRADE] = "INSERT INTO trades (" TRADE_COLUMNS ") "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
  [ST_UPSERT_POSITION] = "INSERT INTO positions (" POSITION_COLUMNS ") "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) "
                         "ON CONFLICT (id) DO UPDATE SET status = excluded.status, quantity = excluded.quantity, "
                         "margin = excluded.margin, realized_pnl = excluded.realized_pnl, fees = excluded.fees, "
                         "stop_loss = excluded.stop_loss, take_profit = excluded.take_profit, "
                         "close_reason = excluded.close_reason, closed_at = excluded.closed_at, "
                         "updated_at = excluded.updated_at",
  [ST_INSERT_OUTBOX] = "INSERT INTO outbox (id, type, key, assessment_id, payload, created_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
  [ST_INSERT_IDEMPOTENCY] = "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
  [ST_EXPIRE_IDEMPOTENCY] = "DELETE FROM idempotency_keys WHERE created_at < ?1",
  [ST_EXPIRE_IDEMPOTENCY_KEY] = "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND created_at < ?3",
  [ST_LOAD_ASSESSMENTS] = "SELECT " ASSESSMENT_COLUMNS " FROM assessments",
  [ST_LOAD_POSITIONS] = "SELECT " POSITION_COLUMNS " FROM positions WHERE status = 'open'",
  [ST_LOAD_IDEMPOTENCY] = "SELECT user_id, key, request_hash, status, body, created_at FROM idempotency_keys "
                          "WHERE created_at >= ?1",
  [ST_MAX_SEQ] = "SELECT COALESCE(MAX(seq), 0) FROM trades",
  [ST_LIST_TRADES] = "SELECT " TRADE_COLUMNS " FROM trades WHERE assessment_id = ?1 AND seq < ?2 "
                     "ORDER BY seq DESC LIMIT ?3",
  /* keyset: after (?3, ?4) in (closed_at, id) descending */
  [ST_LIST_CLOSED] = "SELECT " POSITION_COLUMNS " FROM positions WHERE assessment_id = ?1 AND status = 'closed' "
                     "AND closed_at <= ?3 AND (closed_at < ?3 OR id < ?4) "
                     "ORDER BY closed_at DESC, id DESC LIMIT ?2",
  [ST_LIST_EVENTS] = "SELECT id, type, assessment_id, assessment_id, payload, created_at FROM assessment_events "
                     "WHERE assessment_id = ?1 ORDER BY created_at, id LIMIT ?2",
  [ST_OUTBOX_PENDING] = "SELECT id, type, key, assessment_id, payload, created_at FROM outbox o "
                        "WHERE NOT EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.event_id = o.id) "
                        "ORDER BY pos LIMIT ?1",
  /* the ledger invariant (doc/store.md) */
  [ST_AUDIT] = "SELECT a.id, a.balance - a.starting_balance, COALESCE(t.total, 0) FROM assessments a "
               "LEFT JOIN (SELECT assessment_id, SUM(cash_effect) AS total FROM trades GROUP BY assessment_id) t "
               "ON t.assessment_id = a.id "
               "WHERE a.balance - a.starting_balance <> COALESCE(t.total, 0) ORDER BY a.id",
  /* the outbox relay (doc/outbox.md). A mark for an event that is gone
   * (pruned: delivered everywhere) or already marked is no error. */
  [ST_INSERT_DELIVERY] = "INSERT INTO outbox_delivery (event_id, sink, delivered_at) "
                         "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM outbox WHERE id = ?1) "
                         "ON CONFLICT DO NOTHING",
  /* rows old enough that no subscribed sink lacks; ?2 is the JSON array of
   * [sink, pattern] pairs ("*", "prefix.*" or a type) */
  [ST_PRUNE_OUTBOX] = "WITH s (sink, p) AS (SELECT json_extract (value, '$[0]'), json_extract (value, '$[1]') "
                      "FROM json_each (?2)) "
                      "DELETE FROM outbox WHERE pos IN (SELECT o.pos FROM outbox o WHERE o.created_at < ?1 "
                      "AND NOT EXISTS (SELECT 1 FROM s WHERE (s.p = o.type OR (substr (s.p, length (s.p), 1) = '*' "
                      "AND substr (o.type, 1, length (s.p) - 1) = substr (s.p, 1, length (s.p) - 1))) "
                      "AND NOT EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.event_id = o.id AND d.sink = s.sink)) "
                      "ORDER BY o.created_at LIMIT ?3)",
  [ST_OUTBOX_FOR_SINK] = "SELECT pos, id, type, key, assessment_id, payload, created_at FROM outbox o "
                         "WHERE o.pos > ?2 AND o.pos <= ?4 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d "
                         "WHERE d.event_id = o.id AND d.sink = ?1) ORDER BY o.pos LIMIT ?3",
  [ST_OUTBOX_BACKLOG] = "SELECT type, count(*), min(created_at) FROM outbox o "
                        "WHERE o.pos > ?2 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d "
                        "WHERE d.event_id = o.id AND d.sink = ?1) GROUP BY type ORDER BY type",
};

typedef struct {
  sqlite3      *db;
  sqlite3_stmt *stmts[N_STATEMENTS];
  gboolean      broken;
} SqliteConn;

/* the database file cannot be used right now: 503, and worth a new
 * connection next time for the kinds that may leave this one unusable */
static gboolean
code_is_unavailable (int rc)
{
  switch (rc & 0xff)
    {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
code_breaks_connection (int rc)
{
  switch (rc & 0xff)
    {
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return TRUE;
    default:
      return FALSE;
    }
}

static void
set_error (SqliteConn *c, int rc, GError **error, const char *what)
{
  int code = code_is_unavailable (rc) ? ARB_STORE_ERROR_UNAVAILABLE
             : (rc & 0xff) == SQLITE_CONSTRAINT ? ARB_STORE_ERROR_CONFLICT
                                                : ARB_STORE_ERROR_FAILED;
  int sys = c->db != NULL ? sqlite3_system_errno (c->db) : 0;
  const char *msg = c->db != NULL ? sqlite3_errmsg (c->db) : sqlite3_errstr (rc);

  if (code_breaks_connection (rc))
    c->broken = TRUE;
  if (code == ARB_STORE_ERROR_UNAVAILABLE && sys != 0)
    g_set_error (error, ARB_STORE_ERROR, code, "%s: %s (%s)", what, msg, g_strerror (sys));
  else
    g_set_error (error, ARB_STORE_ERROR, code, "%s: %s", what, msg);
}

static void
sqlite_disconnect (gpointer data)
{
  SqliteConn *c = data;
  for (guint i = 0; i < N_STATEMENTS; i++)
    sqlite3_finalize (c->stmts[i]);
  sqlite3_close_v2 (c->db);
  g_free (c);
}

static gboolean
sqlite_is_broken (gpointer data)
{
  SqliteConn *c = data;
  return c->broken;
}

static gboolean
sqlite_exec_script (gpointer data, const char *sql, GError **error)
{
  SqliteConn *c = data;
  char *errmsg = NULL;
  int rc = sqlite3_exec (c->db, sql, NULL, NULL, &errmsg);

  if (rc != SQLITE_OK)
    {
      set_error (c, rc, error, "SQL");
      sqlite3_free (errmsg);
      return FALSE;
    }
  return TRUE;
}

static gpointer
sqlite_connect (const char *path, GError **error)
{
  SqliteConn *c = g_new0 (SqliteConn, 1);
  sqlite3_stmt *stmt = NULL;
  int rc;

  rc = sqlite3_open_v2 (path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_extended_result_codes (c->db, 1);
      sqlite3_busy_timeout (c->db, BUSY_TIMEOUT_MS);
      /* the first statement that touches the file: an unusable path fails here */
      rc = sqlite3_prepare_v2 (c->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
      if (rc == SQLITE_OK)
        rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW && g_ascii_strcasecmp ((const char *) sqlite3_column_text (stmt, 0), "wal") != 0)
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE,
                       "cannot use write-ahead logging on this file system (journal mode stays %s)",
                       sqlite3_column_text (stmt, 0));
          sqlite3_finalize (stmt);
          sqlite_disconnect (c);
          return NULL;
        }
      sqlite3_finalize (stmt);
      if (rc == SQLITE_ROW)
        rc = SQLITE_OK;
    }
  if (rc != SQLITE_OK)
    {
      set_error (c, rc, error, "cannot open the database file");
      sqlite_disconnect (c);
      return NULL;
    }
  /* the savepoint journals of a group stay in memory (a file by default,
   * written page by page), and a group's pages fit in the cache */
  if (!sqlite_exec_script (c,
                           "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; "
                           "PRAGMA cache_size = -32768",
                           error))
    {
      sqlite_disconnect (c);
      return NULL;
    }
  return c;
}

static gboolean
sqlite_ensure_migrations_table (gpointer conn, GError **error)
{
  return sqlite_exec_script (conn,
                             "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             " version INTEGER NOT NULL PRIMARY KEY,"
                             " name TEXT NOT NULL,"
                             " applied_at INTEGER NOT NULL) STRICT",
                             error);
}

static gboolean
sqlite_applied_versions (gpointer data, GHashTable *versions, GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (c->db, "SELECT version FROM schema_migrations", -1, &stmt, NULL);

  while (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_hash_table_add (versions, GINT_TO_POINTER (sqlite3_column_int (stmt, 0)));
      rc = SQLITE_OK;
    }
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    {
      set_error (c, rc, error, "reading schema_migrations");
      return FALSE;
    }
  return TRUE;
}

static gboolean
sqlite_record_migration (gpointer data, const ArbStoreMigration *m, gint64 now_us, GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (c->db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                               -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int (stmt, 1, m->version);
      sqlite3_bind_text (stmt, 2, m->name, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 3, now_us);
      rc = sqlite3_step (stmt);
    }
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    {
      set_error (c, rc, error, "recording the migration");
      return FALSE;
    }
  return TRUE;
}

/* every statement, now: a schema that does not fit the code fails at open */
static gboolean
sqlite_prepare (gpointer data, GError **error)
{
  SqliteConn *c = data;

  for (guint i = 0; i < N_STATEMENTS; i++)
    {
      int rc;
      if (c->stmts[i] != NULL)
        continue;
      rc = sqlite3_prepare_v3 (c->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[i], NULL);
      if (rc != SQLITE_OK)
        {
          set_error (c, rc, error, "preparing statements");
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- binding and reading -------------------------------------------------- */

static void
bind_text (sqlite3_stmt *stmt, int i, const char *text)
{
  if (text == NULL)
    sqlite3_bind_null (stmt, i);
  else
    sqlite3_bind_text (stmt, i, text, -1, SQLITE_STATIC);
}

static void
bind_money (sqlite3_stmt *stmt, int i, ArbDecimal d)
{
  sqlite3_bind_int64 (stmt, i, d.raw);
}

static void
bind_opt_money (sqlite3_stmt *stmt, int i, gboolean has, ArbDecimal d)
{
  if (has)
    sqlite3_bind_int64 (stmt, i, d.raw);
  else
    sqlite3_bind_null (stmt, i);
}

/* 0 stands for "no time" in the rows, NULL in the database */
static void
bind_opt_time (sqlite3_stmt *stmt, int i, gint64 us)
{
  if (us != 0)
    sqlite3_bind_int64 (stmt, i, us);
  else
    sqlite3_bind_null (stmt, i);
}

static char *
col_text (sqlite3_stmt *stmt, int i)
{
  const unsigned char *t = sqlite3_column_text (stmt, i);
  return t != NULL ? g_strdup ((const char *) t) : NULL;
}

static ArbDecimal
col_money (sqlite3_stmt *stmt, int i)
{
  return arb_decimal_from_raw (sqlite3_column_int64 (stmt, i));
}

static const char *
position_status_name (ArbPositionStatus status)
{
  return status == ARB_POSITION_CLOSED ? "closed" : "open";
}

static void
bind_assessment (sqlite3_stmt *stmt, const ArbAssessmentRow *r)
{
  bind_text (stmt, 1, r->id);
  bind_text (stmt, 2, r->owner);
  bind_text (stmt, 3, r->program);
  bind_text (stmt, 4, arb_assessment_status_to_string (r->status));
  bind_text (stmt, 5, r->status_reason);
  bind_opt_time (stmt, 6, r->status_time_us);
  bind_money (stmt, 7, r->starting_balance);
  bind_money (stmt, 8, r->balance);
  bind_money (stmt, 9, r->equity_hwm);
  bind_money (stmt, 10, r->day_start_equity);
  bind_money (stmt, 11, r->day_start_balance);
  sqlite3_bind_int64 (stmt, 12, r->day_start_us);
  sqlite3_bind_int64 (stmt, 13, r->created_us);
  sqlite3_bind_int64 (stmt, 14, r->updated_us);
  sqlite3_bind_int64 (stmt, 15, r->version);
  sqlite3_bind_text (stmt, 16, arb_assessment_lifecycle_to_json (r), -1, g_free);
}

static void
bind_order (sqlite3_stmt *stmt, const ArbOrderRow *r)
{
  bind_text (stmt, 1, r->id);
  bind_text (stmt, 2, r->assessment_id);
  bind_text (stmt, 3, r->client_order_id);
  bind_text (stmt, 4, r->market);
  bind_text (stmt, 5, r->is_buy ? "buy" : "sell");
  bind_money (stmt, 6, r->quantity);
  bind_opt_money (stmt, 7, r->has_stop_loss, r->stop_loss);
  bind_opt_money (stmt, 8, r->has_take_profit, r->take_profit);
  bind_text (stmt, 9, r->status);
  bind_text (stmt, 10, r->correlation_id);
  sqlite3_bind_int64 (stmt, 11, r->created_us);
}

static void
bind_trade (sqlite3_stmt *stmt, const ArbTradeRow *r)
{
  bind_text (stmt, 1, r->id);
  sqlite3_bind_int64 (stmt, 2, r->seq);
  bind_text (stmt, 3, r->assessment_id);
  bind_text (stmt, 4, r->order_id);
  bind_text (stmt, 5, r->position_id);
  bind_text (stmt, 6, r->market);
  bind_text (stmt, 7, arb_position_side_to_string (r->side));
  bind_text (stmt, 8, r->is_buy ? "buy" : "sell");
  bind_text (stmt, 9, arb_trade_reason_to_string (r->reason));
  bind_money (stmt, 10, r->quantity);
  bind_money (stmt, 11, r->price);
  bind_money (stmt, 12, r->fee);
  bind_money (stmt, 13, r->realized_pnl);
  bind_money (stmt, 14, r->cash_effect);
  bind_text (stmt, 15, r->quote_source);
  bind_opt_time (stmt, 16, r->quote_time_us);
  sqlite3_bind_int64 (stmt, 17, r->executed_us);
}

static void
bind_position (sqlite3_stmt *stmt, const ArbPositionRow *r)
{
  bind_text (stmt, 1, r->id);
  bind_text (stmt, 2, r->assessment_id);
  bind_text (stmt, 3, r->order_id);
  bind_text (stmt, 4, r->market);
  bind_text (stmt, 5, arb_position_side_to_string (r->side));
  bind_text (stmt, 6, position_status_name (r->status));
  bind_money (stmt, 7, r->quantity);
  bind_money (stmt, 8, r->initial_quantity);
  bind_money (stmt, 9, r->entry_price);
  bind_money (stmt, 10, r->margin);
  bind_money (stmt, 11, r->realized_pnl);
  bind_money (stmt, 12, r->fees);
  bind_opt_money (stmt, 13, r->has_stop_loss, r->stop_loss);
  bind_opt_money (stmt, 14, r->has_take_profit, r->take_profit);
  bind_text (stmt, 15, r->close_reason);
  sqlite3_bind_int64 (stmt, 16, r->opened_us);
  bind_opt_time (stmt, 17, r->closed_us);
  sqlite3_bind_int64 (stmt, 18, r->updated_us);
}

static void
bind_outbox (sqlite3_stmt *stmt, const ArbOutboxRow *r)
{
  bind_text (stmt, 1, r->id);
  bind_text (stmt, 2, r->type);
  bind_text (stmt, 3, r->key);
  bind_text (stmt, 4, r->assessment_id);
  bind_text (stmt, 5, r->payload);
  sqlite3_bind_int64 (stmt, 6, r->created_us);
}

static void
bind_idempotency (sqlite3_stmt *stmt, const ArbIdempotencyRow *r)
{
  bind_text (stmt, 1, r->user);
  bind_text (stmt, 2, r->key);
  bind_text (stmt, 3, r->request_hash);
  sqlite3_bind_int (stmt, 4, (int) r->status);
  bind_text (stmt, 5, r->body);
  sqlite3_bind_int64 (stmt, 6, r->created_us);
}

/* a row in an unexpected shape: a CHECK constraint keeps these out, so it
 * means the file was edited by hand */
static gboolean
bad_value (GError **error, const char *table, const char *column, const char *value)
{
  g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED, "%s.%s holds \"%s\", which arbiter does not know",
               table, column, value != NULL ? value : "NULL");
  return FALSE;
}

static ArbAssessmentRow *
read_assessment (sqlite3_stmt *stmt, GError **error)
{
  g_autoptr(ArbAssessmentRow) r = g_new0 (ArbAssessmentRow, 1);
  const char *status = (const char *) sqlite3_column_text (stmt, 3);

  r->id = col_text (stmt, 0);
  r->owner = col_text (stmt, 1);
  r->program = col_text (stmt, 2);
  if (!arb_assessment_status_from_string (status, &r->status))
    return bad_value (error, "assessments", "status", status), NULL;
  r->status_reason = col_text (stmt, 4);
  r->status_time_us = sqlite3_column_int64 (stmt, 5);
  r->starting_balance = col_money (stmt, 6);
  r->balance = col_money (stmt, 7);
  r->equity_hwm = col_money (stmt, 8);
  r->day_start_equity = col_money (stmt, 9);
  r->day_start_balance = col_money (stmt, 10);
  r->day_start_us = sqlite3_column_int64 (stmt, 11);
  r->created_us = sqlite3_column_int64 (stmt, 12);
  r->updated_us = sqlite3_column_int64 (stmt, 13);
  r->version = sqlite3_column_int64 (stmt, 14);
  if (!arb_assessment_lifecycle_from_json (r, (const char *) sqlite3_column_text (stmt, 15), error))
    return NULL;
  return g_steal_pointer (&r);
}

static ArbPositionRow *
read_position (sqlite3_stmt *stmt, GError **error)
{
  g_autoptr(ArbPositionRow) r = g_new0 (ArbPositionRow, 1);
  const char *side = (const char *) sqlite3_column_text (stmt, 4);
  const char *status = (const char *) sqlite3_column_text (stmt, 5);

  r->id = col_text (stmt, 0);
  r->assessment_id = col_text (stmt, 1);
  r->order_id = col_text (stmt, 2);
  r->market = col_text (stmt, 3);
  if (!arb_position_side_from_string (side, &r->side))
    return bad_value (error, "positions", "side", side), NULL;
  if (g_strcmp0 (status, "open") == 0)
    r->status = ARB_POSITION_OPEN;
  else if (g_strcmp0 (status, "closed") == 0)
    r->status = ARB_POSITION_CLOSED;
  else
    return bad_value (error, "positions", "status", status), NULL;
  r->quantity = col_money (stmt, 6);
  r->initial_quantity = col_money (stmt, 7);
  r->entry_price = col_money (stmt, 8);
  r->margin = col_money (stmt, 9);
  r->realized_pnl = col_money (stmt, 10);
  r->fees = col_money (stmt, 11);
  r->has_stop_loss = sqlite3_column_type (stmt, 12) != SQLITE_NULL;
  r->stop_loss = col_money (stmt, 12);
  r->has_take_profit = sqlite3_column_type (stmt, 13) != SQLITE_NULL;
  r->take_profit = col_money (stmt, 13);
  r->close_reason = col_text (stmt, 14);
  r->opened_us = sqlite3_column_int64 (stmt, 15);
  r->closed_us = sqlite3_column_int64 (stmt, 16);
  r->updated_us = sqlite3_column_int64 (stmt, 17);
  return g_steal_pointer (&r);
}

static ArbTradeRow *
read_trade (sqlite3_stmt *stmt, GError **error)
{
  g_autoptr(ArbTradeRow) r = g_new0 (ArbTradeRow, 1);
  const char *side = (const char *) sqlite3_column_text (stmt, 6);
  const char *direction = (const char *) sqlite3_column_text (stmt, 7);
  const char *reason = (const char *) sqlite3_column_text (stmt, 8);

  r->id = col_text (stmt, 0);
  r->seq = sqlite3_column_int64 (stmt, 1);
  r->assessment_id = col_text (stmt, 2);
  r->order_id = col_text (stmt, 3);
  r->position_id = col_text (stmt, 4);
  r->market = col_text (stmt, 5);
  if (!arb_position_side_from_string (side, &r->side))
    return bad_value (error, "trades", "side", side), NULL;
  r->is_buy = g_strcmp0 (direction, "buy") == 0;
  if (!arb_trade_reason_from_string (reason, &r->reason))
    return bad_value (error, "trades", "reason", reason), NULL;
  r->quantity = col_money (stmt, 9);
  r->price = col_money (stmt, 10);
  r->fee = col_money (stmt, 11);
  r->realized_pnl = col_money (stmt, 12);
  r->cash_effect = col_money (stmt, 13);
  r->quote_source = col_text (stmt, 14);
  r->quote_time_us = sqlite3_column_int64 (stmt, 15);
  r->executed_us = sqlite3_column_int64 (stmt, 16);
  return g_steal_pointer (&r);
}

static ArbOutboxRow *
read_outbox (sqlite3_stmt *stmt)
{
  ArbOutboxRow *r = g_new0 (ArbOutboxRow, 1);
  r->id = col_text (stmt, 0);
  r->type = col_text (stmt, 1);
  r->key = col_text (stmt, 2);
  r->assessment_id = col_text (stmt, 3);
  r->payload = col_text (stmt, 4);
  r->created_us = sqlite3_column_int64 (stmt, 5);
  return r;
}

static ArbIdempotencyRow *
read_idempotency (sqlite3_stmt *stmt)
{
  ArbIdempotencyRow *r = g_new0 (ArbIdempotencyRow, 1);
  r->user = col_text (stmt, 0);
  r->key = col_text (stmt, 1);
  r->request_hash = col_text (stmt, 2);
  r->status = (guint) sqlite3_column_int (stmt, 3);
  r->body = col_text (stmt, 4);
  r->created_us = sqlite3_column_int64 (stmt, 5);
  return r;
}

/* ---- writes ------------------------------------------------------------- */

/* runs a cached statement that returns no rows */
static int
step_done (SqliteConn *c, Statement st)
{
  sqlite3_stmt *stmt = c->stmts[st];
  int rc = sqlite3_step (stmt);
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* one row operation; FALSE with @error (CONFLICT for a refused row) */
static gboolean
apply_op (SqliteConn *c, const ArbStoreOp *op, GError **error)
{
  Statement st;
  int rc;

  switch (op->kind)
    {
    case ARB_STORE_OP_INSERT_ASSESSMENT:
      st = ST_INSERT_ASSESSMENT;
      bind_assessment (c->stmts[st], op->u.assessment);
      break;
    case ARB_STORE_OP_UPDATE_ASSESSMENT:
      st = ST_UPDATE_ASSESSMENT;
      bind_assessment (c->stmts[st], op->u.assessment);
      break;
    case ARB_STORE_OP_INSERT_ORDER:
      st = ST_INSERT_ORDER;
      bind_order (c->stmts[st], op->u.order);
      break;
    case ARB_STORE_OP_INSERT_TRADE:
      st = ST_INSERT_TRADE;
      bind_trade (c->stmts[st], op->u.trade);
      break;
    case ARB_STORE_OP_UPSERT_POSITION:
      st = ST_UPSERT_POSITION;
      bind_position (c->stmts[st], op->u.position);
      break;
    case ARB_STORE_OP_INSERT_OUTBOX:
      st = ST_INSERT_OUTBOX;
      bind_outbox (c->stmts[st], op->u.outbox);
      break;
    case ARB_STORE_OP_INSERT_IDEMPOTENCY:
      st = ST_INSERT_IDEMPOTENCY;
      bind_idempotency (c->stmts[st], op->u.idempotency);
      break;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
      st = ST_EXPIRE_IDEMPOTENCY;
      sqlite3_bind_int64 (c->stmts[st], 1, op->u.before_us);
      break;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY:
      st = ST_EXPIRE_IDEMPOTENCY_KEY;
      bind_text (c->stmts[st], 1, op->u.key_expiry->user);
      bind_text (c->stmts[st], 2, op->u.key_expiry->key);
      sqlite3_bind_int64 (c->stmts[st], 3, op->u.key_expiry->before_us);
      break;
    case ARB_STORE_OP_INSERT_DELIVERY:
      st = ST_INSERT_DELIVERY;
      bind_text (c->stmts[st], 1, op->u.delivery->event_id);
      bind_text (c->stmts[st], 2, op->u.delivery->sink);
      sqlite3_bind_int64 (c->stmts[st], 3, op->u.delivery->delivered_us);
      break;
    case ARB_STORE_OP_PRUNE_OUTBOX:
      st = ST_PRUNE_OUTBOX;
      sqlite3_bind_int64 (c->stmts[st], 1, op->u.prune->before_us);
      bind_text (c->stmts[st], 2, op->u.prune->pairs_json);
      sqlite3_bind_int64 (c->stmts[st], 3, op->u.prune->limit);
      break;
    default:
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED, "unknown operation %d", op->kind);
      return FALSE;
    }
  rc = step_done (c, st);
  if (rc != SQLITE_OK)
    {
      g_autofree char *what = arb_store_op_describe (op);
      set_error (c, rc, error, what);
      return FALSE;
    }
  if (op->kind == ARB_STORE_OP_PRUNE_OUTBOX)
    op->u.prune->deleted = sqlite3_changes64 (c->db);
  if (op->kind == ARB_STORE_OP_UPDATE_ASSESSMENT && sqlite3_changes (c->db) == 0)
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT, "update assessment %s: no such assessment",
                   op->u.assessment->id);
      return FALSE;
    }
  return TRUE;
}

static void
rollback_all (SqliteConn *c)
{
  step_done (c, ST_ROLLBACK);
}

static ArbStoreGroupResult
sqlite_commit_group (gpointer data, ArbStoreTxn **txns, guint n_txns, GError **error)
{
  SqliteConn *c = data;
  int rc;

  rc = step_done (c, ST_BEGIN);
  if (rc != SQLITE_OK)
    {
      set_error (c, rc, error, "BEGIN");
      return ARB_STORE_GROUP_FAILED;
    }
  for (guint t = 0; t < n_txns; t++)
    {
      ArbStoreTxn *txn = txns[t];

      rc = step_done (c, ST_SAVEPOINT);
      if (rc != SQLITE_OK)
        {
          set_error (c, rc, error, "SAVEPOINT");
          rollback_all (c);
          return ARB_STORE_GROUP_FAILED;
        }
      for (guint i = 0; i < txn->ops->len; i++)
        {
          g_autoptr(GError) local = NULL;
          if (apply_op (c, &g_array_index (txn->ops, ArbStoreOp, i), &local))
            continue;
          if (g_error_matches (local, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE))
            {
              /* not this txn's fault: the group fails */
              g_propagate_error (error, g_steal_pointer (&local));
              rollback_all (c);
              return ARB_STORE_GROUP_FAILED;
            }
          txn->error = g_error_new (ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT, "%s", local->message);
          rc = step_done (c, ST_ROLLBACK_TO);
          if (rc != SQLITE_OK)
            {
              set_error (c, rc, error, "ROLLBACK TO SAVEPOINT");
              rollback_all (c);
              return ARB_STORE_GROUP_FAILED;
            }
          break;
        }
      rc = step_done (c, ST_RELEASE);
      if (rc != SQLITE_OK)
        {
          set_error (c, rc, error, "RELEASE SAVEPOINT");
          rollback_all (c);
          return ARB_STORE_GROUP_FAILED;
        }
    }
  rc = step_done (c, ST_COMMIT);
  if (rc != SQLITE_OK)
    {
      set_error (c, rc, error, "COMMIT");
      if (!sqlite3_get_autocommit (c->db))
        rollback_all (c);
      return ARB_STORE_GROUP_FAILED;
    }
  return ARB_STORE_GROUP_COMMITTED;
}

/* ---- reads -------------------------------------------------------------- */

typedef gpointer (*RowReader) (sqlite3_stmt *stmt, GError **error);
typedef void (*RowSink) (gpointer row, gpointer data);

static gpointer
read_outbox_row (sqlite3_stmt *stmt, GError **error)
{
  return read_outbox (stmt);
}

static gpointer
read_idempotency_row (sqlite3_stmt *stmt, GError **error)
{
  return read_idempotency (stmt);
}

/* steps a bound, cached statement; each row goes to @sink (which takes it),
 * or into @out when there is no sink, or is freed when there is neither */
static gboolean
collect (SqliteConn *c, Statement st, RowReader reader, GPtrArray *out, RowSink sink, gpointer sink_data,
         GDestroyNotify free_row, GError **error)
{
  sqlite3_stmt *stmt = c->stmts[st];
  gboolean ok = TRUE;
  int rc;

  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      gpointer row = reader (stmt, error);
      if (row == NULL)
        {
          ok = FALSE;
          break;
        }
      if (sink != NULL)
        sink (row, sink_data);
      else if (out != NULL)
        g_ptr_array_add (out, row);
      else
        free_row (row);
    }
  if (ok && rc != SQLITE_DONE)
    {
      set_error (c, rc, error, "SELECT");
      ok = FALSE;
    }
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return ok;
}

static gboolean
sqlite_load (gpointer data, const ArbStoreLoadFuncs *funcs, gint64 idempotency_since_us, gpointer user_data,
             GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt;
  gboolean ok;
  int rc;

  if (!sqlite_prepare (c, error))
    return FALSE;
  /* one snapshot for the whole load */
  if (!sqlite_exec_script (c, "BEGIN", error))
    return FALSE;
  ok = collect (c, ST_LOAD_ASSESSMENTS, (RowReader) read_assessment, NULL, (RowSink) funcs->assessment, user_data,
                (GDestroyNotify) arb_assessment_row_free, error)
       && collect (c, ST_LOAD_POSITIONS, (RowReader) read_position, NULL, (RowSink) funcs->position, user_data,
                   (GDestroyNotify) arb_position_row_free, error);
  if (ok)
    {
      sqlite3_bind_int64 (c->stmts[ST_LOAD_IDEMPOTENCY], 1, idempotency_since_us);
      ok = collect (c, ST_LOAD_IDEMPOTENCY, read_idempotency_row, NULL, (RowSink) funcs->idempotency, user_data,
                    (GDestroyNotify) arb_idempotency_row_free, error);
    }
  if (ok)
    {
      stmt = c->stmts[ST_MAX_SEQ];
      rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW)
        {
          if (funcs->max_trade_seq != NULL)
            funcs->max_trade_seq (sqlite3_column_int64 (stmt, 0), user_data);
        }
      else
        {
          set_error (c, rc, error, "SELECT MAX(seq)");
          ok = FALSE;
        }
      sqlite3_reset (stmt);
    }
  sqlite_exec_script (c, "COMMIT", NULL);
  return ok;
}

static GPtrArray *
sqlite_list_trades (gpointer data, const char *assessment_id, gint64 before_seq, guint limit, GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = c->stmts[ST_LIST_TRADES];
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_trade_row_free);

  bind_text (stmt, 1, assessment_id);
  sqlite3_bind_int64 (stmt, 2, before_seq > 0 ? before_seq : G_MAXINT64);
  sqlite3_bind_int64 (stmt, 3, limit);
  if (!collect (c, ST_LIST_TRADES, (RowReader) read_trade, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static GPtrArray *
sqlite_list_assessment_events (gpointer data, const char *assessment_id, guint limit, GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = c->stmts[ST_LIST_EVENTS];
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);

  bind_text (stmt, 1, assessment_id);
  sqlite3_bind_int64 (stmt, 2, limit);
  if (!collect (c, ST_LIST_EVENTS, read_outbox_row, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static GPtrArray *
sqlite_list_closed_positions (gpointer data, const char *assessment_id, const ArbPositionCursor *after, guint limit,
                              GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = c->stmts[ST_LIST_CLOSED];
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_position_row_free);

  bind_text (stmt, 1, assessment_id);
  sqlite3_bind_int64 (stmt, 2, limit);
  sqlite3_bind_int64 (stmt, 3, after != NULL ? after->closed_us : G_MAXINT64);
  bind_text (stmt, 4, after != NULL ? after->id : "");
  if (!collect (c, ST_LIST_CLOSED, (RowReader) read_position, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static GPtrArray *
sqlite_outbox_pending (gpointer data, guint limit, GError **error)
{
  SqliteConn *c = data;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);

  sqlite3_bind_int64 (c->stmts[ST_OUTBOX_PENDING], 1, limit);
  if (!collect (c, ST_OUTBOX_PENDING, read_outbox_row, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static gpointer
read_outbox_entry (sqlite3_stmt *stmt, GError **error)
{
  ArbOutboxEntry *e = g_new0 (ArbOutboxEntry, 1);
  e->pos = sqlite3_column_int64 (stmt, 0);
  e->row.id = col_text (stmt, 1);
  e->row.type = col_text (stmt, 2);
  e->row.key = col_text (stmt, 3);
  e->row.assessment_id = col_text (stmt, 4);
  e->row.payload = col_text (stmt, 5);
  e->row.created_us = sqlite3_column_int64 (stmt, 6);
  return e;
}

static GPtrArray *
sqlite_outbox_pending_for_sink (gpointer data, const char *sink, gint64 after_pos, gint64 upto_pos, guint limit,
                                GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = c->stmts[ST_OUTBOX_FOR_SINK];
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_entry_free);

  bind_text (stmt, 1, sink);
  sqlite3_bind_int64 (stmt, 2, after_pos);
  sqlite3_bind_int64 (stmt, 3, limit);
  sqlite3_bind_int64 (stmt, 4, upto_pos);
  if (!collect (c, ST_OUTBOX_FOR_SINK, read_outbox_entry, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static gpointer
read_backlog (sqlite3_stmt *stmt, GError **error)
{
  ArbOutboxBacklog *b = g_new0 (ArbOutboxBacklog, 1);
  b->type = col_text (stmt, 0);
  b->count = sqlite3_column_int64 (stmt, 1);
  b->oldest_us = sqlite3_column_int64 (stmt, 2);
  return b;
}

static GPtrArray *
sqlite_outbox_backlog (gpointer data, const char *sink, gint64 after_pos, GError **error)
{
  SqliteConn *c = data;
  sqlite3_stmt *stmt = c->stmts[ST_OUTBOX_BACKLOG];
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_backlog_free);

  bind_text (stmt, 1, sink);
  sqlite3_bind_int64 (stmt, 2, after_pos);
  if (!collect (c, ST_OUTBOX_BACKLOG, read_backlog, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

static gpointer
read_audit_line (sqlite3_stmt *stmt, GError **error)
{
  char delta[ARB_DECIMAL_BUFSIZE], total[ARB_DECIMAL_BUFSIZE];
  return g_strdup_printf ("%s: balance - starting_balance = %s, sum(cash_effect) = %s",
                          sqlite3_column_text (stmt, 0), arb_decimal_format (col_money (stmt, 1), delta),
                          arb_decimal_format (col_money (stmt, 2), total));
}

static GPtrArray *
sqlite_audit_ledger (gpointer data, GError **error)
{
  SqliteConn *c = data;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_free);

  if (!collect (c, ST_AUDIT, read_audit_line, out, NULL, NULL, NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}

const ArbStoreBackend arb_store_sqlite_backend = {
  .name = "sqlite",
  .max_ledger_writers = 1,
  .background_writer = FALSE,
  .connect = sqlite_connect,
  .disconnect = sqlite_disconnect,
  .is_broken = sqlite_is_broken,
  .exec_script = sqlite_exec_script,
  .ensure_migrations_table = sqlite_ensure_migrations_table,
  .applied_versions = sqlite_applied_versions,
  .record_migration = sqlite_record_migration,
  .prepare = sqlite_prepare,
  .ensure_partitions = NULL,
  .commit_group = sqlite_commit_group,
  .load = sqlite_load,
  .list_trades = sqlite_list_trades,
  .list_closed_positions = sqlite_list_closed_positions,
  .list_assessment_events = sqlite_list_assessment_events,
  .outbox_pending = sqlite_outbox_pending,
  .audit_ledger = sqlite_audit_ledger,
  .outbox_pending_for_sink = sqlite_outbox_pending_for_sink,
  .outbox_backlog = sqlite_outbox_backlog,
};
