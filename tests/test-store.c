/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "arb-store-private.h"
#include "arb-test-pg.h"

/* The same tests run against SQLite (a file in a temporary directory) and a
 * real PostgreSQL server that arb-test-pg starts for this process. Nothing
 * is mocked, and nothing is skipped: a PostgreSQL that cannot start fails
 * the PostgreSQL tests with the reason. */

#define HOUR_US (G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC)

static ArbTestPg *pg_server;
static guint      db_counter;
static gint       store_warnings;   /* warnings the store logged (atomic) */
static gboolean   warnings_allowed; /* by the test running now */

typedef struct {
  const char *backend; /* "sqlite" or "postgresql" */
  char       *dir;
  char       *uri;
  char       *migrations;
  ArbStore   *store;
} Fixture;

/* ---- plumbing -------------------------------------------------------------- */

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *component = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (fields[i].length == -1 && g_str_equal (fields[i].key, "ARB_COMPONENT"))
      component = fields[i].value;
  if (g_strcmp0 (component, "store") == 0)
    {
      if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL))
        g_atomic_int_inc (&store_warnings);
      if (g_test_verbose ())
        g_printerr ("# store: %s\n", g_log_writer_format_fields (level, fields, n_fields, FALSE));
      return G_LOG_WRITER_HANDLED;
    }
  /* anything else goes the usual way: warnings abort the test */
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static const char *
source_root (void)
{
  const char *root = g_getenv ("ARB_SOURCE_ROOT");
  return root != NULL ? root : ARB_SOURCE_ROOT;
}

static ArbTestPg *
pg (void)
{
  if (pg_server == NULL)
    {
      g_autoptr(GError) error = NULL;
      pg_server = arb_test_pg_new (&error);
      /* no PostgreSQL, no pass: the reason is the failure message */
      g_assert_no_error (error);
    }
  return pg_server;
}

static gboolean
is_pg (Fixture *f)
{
  return g_str_equal (f->backend, "postgresql");
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->backend = data;
  f->dir = g_dir_make_tmp ("arb-store-XXXXXX", &error);
  g_assert_no_error (error);
  f->migrations = g_build_filename (source_root (), "data", "migrations", NULL);
  if (is_pg (f))
    {
      g_autofree char *name = g_strdup_printf ("arb_test_%u", ++db_counter);
      f->uri = arb_test_pg_create_database (pg (), name, &error);
      g_assert_no_error (error);
    }
  else
    f->uri = g_strdup ("sqlite:store.db");
  g_atomic_int_set (&store_warnings, 0);
  warnings_allowed = FALSE;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", f->dir, NULL };

  g_clear_pointer (&f->store, arb_store_free);
  if (!warnings_allowed)
    g_assert_cmpint (g_atomic_int_get (&store_warnings), ==, 0);
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->dir);
  g_free (f->uri);
  g_free (f->migrations);
}

static void
fixture_open_writers (Fixture *f, guint ledger_writers)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (f->store);
  f->store = arb_store_open_full (f->uri, f->dir, f->migrations, ledger_writers, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
  g_assert_cmpstr (arb_store_backend (f->store), ==, f->backend);
}

static void
fixture_open (Fixture *f)
{
  fixture_open_writers (f, 1);
}

/* ---- raw SQL, straight to the database, to check what the store wrote ---- */

static char *
raw_scalar (Fixture *f, const char *sql)
{
  char *value = NULL;

  if (is_pg (f))
    {
      PGconn *conn = PQconnectdb (f->uri);
      PGresult *res;

      g_assert_cmpint (PQstatus (conn), ==, CONNECTION_OK);
      res = PQexec (conn, sql);
      if (PQresultStatus (res) != PGRES_TUPLES_OK)
        g_error ("%s: %s", sql, PQresultErrorMessage (res));
      if (PQntuples (res) > 0 && !PQgetisnull (res, 0, 0))
        value = g_strdup (PQgetvalue (res, 0, 0));
      PQclear (res);
      PQfinish (conn);
    }
  else
    {
      g_autofree char *path = g_build_filename (f->dir, "store.db", NULL);
      sqlite3 *db = NULL;
      sqlite3_stmt *stmt = NULL;
      int rc;

      g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
      if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        g_error ("%s: %s", sql, sqlite3_errmsg (db));
      rc = sqlite3_step (stmt);
      g_assert_true (rc == SQLITE_ROW || rc == SQLITE_DONE);
      if (rc == SQLITE_ROW && sqlite3_column_type (stmt, 0) != SQLITE_NULL)
        value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
      sqlite3_finalize (stmt);
      sqlite3_close (db);
    }
  return value;
}

/* every row, its columns joined by '|', the rows by '\n' */
static char *
raw_text (Fixture *f, const char *sql)
{
  g_autoptr(GString) out = g_string_new (NULL);

  if (is_pg (f))
    {
      PGconn *conn = PQconnectdb (f->uri);
      PGresult *res = PQexec (conn, sql);

      if (PQresultStatus (res) != PGRES_TUPLES_OK)
        g_error ("%s: %s", sql, PQresultErrorMessage (res));
      for (int r = 0; r < PQntuples (res); r++)
        for (int c = 0; c < PQnfields (res); c++)
          g_string_append_printf (out, "%s%s", PQgetvalue (res, r, c), c + 1 < PQnfields (res) ? "|" : "\n");
      PQclear (res);
      PQfinish (conn);
    }
  else
    {
      g_autofree char *path = g_build_filename (f->dir, "store.db", NULL);
      sqlite3 *db = NULL;
      sqlite3_stmt *stmt = NULL;

      g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
      if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
        g_error ("%s: %s", sql, sqlite3_errmsg (db));
      while (sqlite3_step (stmt) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count (stmt); c++)
          g_string_append_printf (out, "%s%s", (const char *) sqlite3_column_text (stmt, c),
                                  c + 1 < sqlite3_column_count (stmt) ? "|" : "\n");
      sqlite3_finalize (stmt);
      sqlite3_close (db);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static gint64
raw_count (Fixture *f, const char *sql)
{
  g_autofree char *v = raw_scalar (f, sql);
  g_assert_nonnull (v);
  return g_ascii_strtoll (v, NULL, 10);
}

/* ---- rows ---------------------------------------------------------------- */

/* the ledger header has no autoptr cleanups for these two; aliases, so that
 * one added there later does not clash */
typedef ArbOutboxRow      OutboxRow;
typedef ArbIdempotencyRow IdempotencyRow;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxRow, arb_outbox_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (IdempotencyRow, arb_idempotency_row_free)

static ArbDecimal
dec (const char *text)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d = ARB_DECIMAL_ZERO;
  arb_decimal_parse (text, ARB_ROUND_EXACT, &d, &error);
  g_assert_no_error (error);
  return d;
}

/* a µs time in this month with a non-zero sub-second part */
static gint64
now_us (void)
{
  return g_get_real_time () / 1000 * 1000 + 123;
}

static ArbAssessmentRow *
make_assessment (const char *id, gint64 t)
{
  ArbAssessmentRow *r = g_new0 (ArbAssessmentRow, 1);
  r->id = g_strdup (id);
  r->owner = g_strdup ("alice");
  r->program = g_strdup ("standard-50k");
  r->status = ARB_ASSESSMENT_ACTIVE;
  r->starting_balance = dec ("100000");
  r->balance = dec ("100000");
  r->equity_hwm = dec ("100000");
  r->day_start_equity = dec ("100000");
  r->day_start_balance = dec ("100000");
  r->day_start_us = t;
  r->created_us = t;
  r->updated_us = t;
  r->version = 1;
  return r;
}

static ArbOrderRow *
make_order (const char *id, const char *assessment_id, gint64 t)
{
  ArbOrderRow *r = g_new0 (ArbOrderRow, 1);
  r->id = g_strdup (id);
  r->assessment_id = g_strdup (assessment_id);
  r->market = g_strdup ("crypto:BTC-USD");
  r->is_buy = TRUE;
  r->quantity = dec ("0.5");
  r->status = g_strdup ("filled");
  r->created_us = t;
  return r;
}

static ArbTradeRow *
make_trade (const char *id, gint64 seq, const char *assessment_id, gint64 t)
{
  ArbTradeRow *r = g_new0 (ArbTradeRow, 1);
  r->id = g_strdup (id);
  r->seq = seq;
  r->assessment_id = g_strdup (assessment_id);
  r->order_id = g_strdup_printf ("order-%s", id);
  r->position_id = g_strdup_printf ("pos-%s", id);
  r->market = g_strdup ("crypto:BTC-USD");
  r->side = ARB_SIDE_LONG;
  r->is_buy = TRUE;
  r->reason = ARB_TRADE_OPEN;
  r->quantity = dec ("0.5");
  r->price = dec ("64250.125");
  r->fee = dec ("3.2125");
  r->realized_pnl = ARB_DECIMAL_ZERO;
  r->cash_effect = dec ("-3.2125");
  r->quote_source = g_strdup ("coingecko");
  r->quote_time_us = t - 1000;
  r->executed_us = t;
  return r;
}

static ArbPositionRow *
make_position (const char *id, const char *assessment_id, gint64 t)
{
  ArbPositionRow *r = g_new0 (ArbPositionRow, 1);
  r->id = g_strdup (id);
  r->assessment_id = g_strdup (assessment_id);
  r->order_id = g_strdup_printf ("order-of-%s", id);
  r->market = g_strdup ("crypto:ETH-USD");
  r->side = ARB_SIDE_LONG;
  r->status = ARB_POSITION_OPEN;
  r->quantity = dec ("2");
  r->initial_quantity = dec ("2");
  r->entry_price = dec ("3000");
  r->margin = dec ("6000");
  r->fees = dec ("6");
  r->opened_us = t;
  r->updated_us = t;
  return r;
}

static ArbOutboxRow *
make_outbox (const char *id, const char *assessment_id, gint64 t)
{
  ArbOutboxRow *r = g_new0 (ArbOutboxRow, 1);
  r->id = g_strdup (id);
  r->type = g_strdup ("order.filled");
  r->key = g_strdup (assessment_id);
  r->assessment_id = g_strdup (assessment_id);
  r->payload = g_strdup_printf ("{\"id\":\"%s\",\"type\":\"order.filled\",\"data\":{\"q\":\"0.5\"}}", id);
  r->created_us = t;
  return r;
}

static ArbIdempotencyRow *
make_idempotency (const char *user, const char *key, gint64 t)
{
  ArbIdempotencyRow *r = g_new0 (ArbIdempotencyRow, 1);
  r->user = g_strdup (user);
  r->key = g_strdup (key);
  r->request_hash = g_strdup ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  r->status = 201;
  r->body = g_strdup ("{\"order\":{\"id\":\"o-1\"}}");
  r->created_us = t;
  return r;
}

#define assert_dec_eq(a, b) \
  G_STMT_START { \
    char _ba[ARB_DECIMAL_BUFSIZE], _bb[ARB_DECIMAL_BUFSIZE]; \
    g_assert_cmpstr (arb_decimal_format ((a), _ba), ==, arb_decimal_format ((b), _bb)); \
  } G_STMT_END

static void
assert_assessment_eq (const ArbAssessmentRow *a, const ArbAssessmentRow *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->owner, ==, b->owner);
  g_assert_cmpstr (a->program, ==, b->program);
  g_assert_cmpint (a->status, ==, b->status);
  g_assert_cmpstr (a->status_reason, ==, b->status_reason);
  g_assert_cmpint (a->status_time_us, ==, b->status_time_us);
  assert_dec_eq (a->starting_balance, b->starting_balance);
  assert_dec_eq (a->balance, b->balance);
  assert_dec_eq (a->equity_hwm, b->equity_hwm);
  assert_dec_eq (a->day_start_equity, b->day_start_equity);
  assert_dec_eq (a->day_start_balance, b->day_start_balance);
  g_assert_cmpint (a->day_start_us, ==, b->day_start_us);
  g_assert_cmpint (a->created_us, ==, b->created_us);
  g_assert_cmpint (a->updated_us, ==, b->updated_us);
  g_assert_cmpint (a->version, ==, b->version);
}

static void
assert_position_eq (const ArbPositionRow *a, const ArbPositionRow *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->assessment_id, ==, b->assessment_id);
  g_assert_cmpstr (a->order_id, ==, b->order_id);
  g_assert_cmpstr (a->market, ==, b->market);
  g_assert_cmpint (a->side, ==, b->side);
  g_assert_cmpint (a->status, ==, b->status);
  assert_dec_eq (a->quantity, b->quantity);
  assert_dec_eq (a->initial_quantity, b->initial_quantity);
  assert_dec_eq (a->entry_price, b->entry_price);
  assert_dec_eq (a->margin, b->margin);
  assert_dec_eq (a->realized_pnl, b->realized_pnl);
  assert_dec_eq (a->fees, b->fees);
  g_assert_cmpint (a->has_stop_loss, ==, b->has_stop_loss);
  if (a->has_stop_loss)
    assert_dec_eq (a->stop_loss, b->stop_loss);
  g_assert_cmpint (a->has_take_profit, ==, b->has_take_profit);
  if (a->has_take_profit)
    assert_dec_eq (a->take_profit, b->take_profit);
  g_assert_cmpstr (a->close_reason, ==, b->close_reason);
  g_assert_cmpint (a->opened_us, ==, b->opened_us);
  g_assert_cmpint (a->closed_us, ==, b->closed_us);
  g_assert_cmpint (a->updated_us, ==, b->updated_us);
}

static void
assert_trade_eq (const ArbTradeRow *a, const ArbTradeRow *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpint (a->seq, ==, b->seq);
  g_assert_cmpstr (a->assessment_id, ==, b->assessment_id);
  g_assert_cmpstr (a->order_id, ==, b->order_id);
  g_assert_cmpstr (a->position_id, ==, b->position_id);
  g_assert_cmpstr (a->market, ==, b->market);
  g_assert_cmpint (a->side, ==, b->side);
  g_assert_cmpint (a->is_buy, ==, b->is_buy);
  g_assert_cmpint (a->reason, ==, b->reason);
  assert_dec_eq (a->quantity, b->quantity);
  assert_dec_eq (a->price, b->price);
  assert_dec_eq (a->fee, b->fee);
  assert_dec_eq (a->realized_pnl, b->realized_pnl);
  assert_dec_eq (a->cash_effect, b->cash_effect);
  g_assert_cmpstr (a->quote_source, ==, b->quote_source);
  g_assert_cmpint (a->quote_time_us, ==, b->quote_time_us);
  g_assert_cmpint (a->executed_us, ==, b->executed_us);
}

static void
assert_outbox_eq (const ArbOutboxRow *a, const ArbOutboxRow *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->type, ==, b->type);
  g_assert_cmpstr (a->key, ==, b->key);
  g_assert_cmpstr (a->assessment_id, ==, b->assessment_id);
  g_assert_cmpstr (a->payload, ==, b->payload);
  g_assert_cmpint (a->created_us, ==, b->created_us);
}

static void
assert_idempotency_eq (const ArbIdempotencyRow *a, const ArbIdempotencyRow *b)
{
  g_assert_cmpstr (a->user, ==, b->user);
  g_assert_cmpstr (a->key, ==, b->key);
  g_assert_cmpstr (a->request_hash, ==, b->request_hash);
  g_assert_cmpuint (a->status, ==, b->status);
  g_assert_cmpstr (a->body, ==, b->body);
  g_assert_cmpint (a->created_us, ==, b->created_us);
}

/* ---- waiting on the main loop ------------------------------------------- */

static gboolean
wake_up (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* iterates the thread-default context until *@counter reaches @target */
static void
iterate_until (const guint *counter, guint target)
{
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  GSource *tick = g_timeout_source_new (100);

  g_source_set_callback (tick, wake_up, NULL, NULL);
  g_source_attach (tick, g_main_context_get_thread_default ());
  while (*counter < target)
    {
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
      if (g_get_monotonic_time () > deadline)
        g_error ("waited 120 s for %u callbacks, %u came", target, *counter);
    }
  g_source_destroy (tick);
  g_source_unref (tick);
}

static void
error_free0 (gpointer error)
{
  if (error != NULL)
    g_error_free (error);
}

typedef struct {
  guint       done;
  guint       failed;
  GPtrArray  *errors;  /* GError, by txn index; NULL: committed */
  GThread    *thread;  /* where the last callback ran */
} Waits;

typedef struct {
  Waits *waits;
  guint  index;
} Slot;

static void
on_committed (const GError *error, gpointer data)
{
  Slot *slot = data;
  Waits *w = slot->waits;

  if (w->errors != NULL)
    g_ptr_array_index (w->errors, slot->index) = error != NULL ? g_error_copy (error) : NULL;
  if (error != NULL)
    w->failed++;
  w->thread = g_thread_self ();
  w->done++;
  g_free (slot);
}

static void
commit_async (Fixture *f, ArbStoreTxn *txn, Waits *w, guint index)
{
  Slot *slot = g_new0 (Slot, 1);
  slot->waits = w;
  slot->index = index;
  arb_store_commit_async (f->store, txn, on_committed, slot);
}

static void
commit_ok (Fixture *f, ArbStoreTxn *txn)
{
  g_autoptr(GError) error = NULL;
  arb_store_commit_sync (f->store, txn, &error);
  g_assert_no_error (error);
}

/* one assessment, committed */
static void
seed_assessment (Fixture *f, const char *id, gint64 t)
{
  ArbStoreTxn *txn = arb_store_txn_new ();
  g_autoptr(ArbAssessmentRow) a = make_assessment (id, t);
  arb_store_txn_insert_assessment (txn, a);
  commit_ok (f, txn);
}

/* ---- load callbacks ------------------------------------------------------- */

typedef struct {
  GPtrArray *assessments;
  GPtrArray *positions;
  GPtrArray *idempotency;
  gint64     max_seq;
  guint      max_seq_calls;
} Loaded;

static void
loaded_assessment (ArbAssessmentRow *row, gpointer data)
{
  g_ptr_array_add (((Loaded *) data)->assessments, row);
}

static void
loaded_position (ArbPositionRow *row, gpointer data)
{
  g_ptr_array_add (((Loaded *) data)->positions, row);
}

static void
loaded_idempotency (ArbIdempotencyRow *row, gpointer data)
{
  g_ptr_array_add (((Loaded *) data)->idempotency, row);
}

static void
loaded_max_seq (gint64 seq, gpointer data)
{
  ((Loaded *) data)->max_seq = seq;
  ((Loaded *) data)->max_seq_calls++;
}

static const ArbStoreLoadFuncs load_funcs = {
  .assessment = loaded_assessment,
  .position = loaded_position,
  .idempotency = loaded_idempotency,
  .max_trade_seq = loaded_max_seq,
};

static void
loaded_clear (Loaded *l)
{
  g_clear_pointer (&l->assessments, g_ptr_array_unref);
  g_clear_pointer (&l->positions, g_ptr_array_unref);
  g_clear_pointer (&l->idempotency, g_ptr_array_unref);
}

static void
load (Fixture *f, gint64 since, Loaded *l)
{
  g_autoptr(GError) error = NULL;

  l->assessments = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_assessment_row_free);
  l->positions = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_position_row_free);
  l->idempotency = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_idempotency_row_free);
  l->max_seq = -1;
  l->max_seq_calls = 0;
  g_assert_true (arb_store_load (f->store, &load_funcs, since, l, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (l->max_seq_calls, ==, 1);
}

/* ---- tests: migrations ---------------------------------------------------- */

static int
latest_migration (Fixture *f, guint *count)
{
  g_autofree char *path = g_build_filename (f->migrations, f->backend, NULL);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  int latest = 0;

  g_assert_nonnull (dir);
  *count = 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".sql") && g_ascii_isdigit (name[0]))
      {
        latest = MAX (latest, atoi (name));
        (*count)++;
      }
  return latest;
}

/* a copy of the real migrations plus @extra_file holding @extra_sql */
static char *
migrations_with (Fixture *f, const char *extra_file, const char *extra_sql)
{
  g_autofree char *src = g_build_filename (f->migrations, f->backend, NULL);
  char *root = g_build_filename (f->dir, "migrations", NULL);
  g_autofree char *dst = g_build_filename (root, f->backend, NULL);
  g_autofree char *extra = g_build_filename (dst, extra_file, NULL);
  g_autoptr(GDir) dir = g_dir_open (src, 0, NULL);
  g_autoptr(GError) error = NULL;
  const char *name;

  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *from = g_build_filename (src, name, NULL);
      g_autofree char *to = g_build_filename (dst, name, NULL);
      g_autofree char *text = NULL;
      g_file_get_contents (from, &text, NULL, &error);
      g_assert_no_error (error);
      g_file_set_contents (to, text, -1, &error);
      g_assert_no_error (error);
    }
  g_file_set_contents (extra, extra_sql, -1, &error);
  g_assert_no_error (error);
  return root;
}

static gint64
table_exists (Fixture *f, const char *table)
{
  g_autofree char *sql = is_pg (f)
    ? g_strdup_printf ("SELECT count(*) FROM pg_class WHERE relname = '%s' AND relkind IN ('r', 'p')", table)
    : g_strdup_printf ("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", table);
  return raw_count (f, sql);
}

static void
test_migrations (Fixture *f, gconstpointer data)
{
  static const char *const tables[] = { "schema_migrations", "assessments", "orders", "trades", "positions",
                                        "outbox", "outbox_delivery", "idempotency_keys" };
  g_autoptr(GError) error = NULL;
  g_autofree char *applied_at = NULL, *applied_again = NULL;
  g_autofree char *broken = NULL, *fixed = NULL;
  ArbStore *store;
  guint n_files;
  int latest = latest_migration (f, &n_files);

  /* fresh */
  fixture_open (f);
  g_assert_cmpint (arb_store_schema_version (f->store), ==, latest);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM schema_migrations"), ==, n_files);
  for (guint i = 0; i < G_N_ELEMENTS (tables); i++)
    g_assert_cmpint (table_exists (f, tables[i]), ==, 1);
  applied_at = raw_scalar (f, "SELECT applied_at FROM schema_migrations WHERE version = 1");
  {
    g_autofree char *name = raw_scalar (f, "SELECT name FROM schema_migrations WHERE version = 1");
    g_assert_cmpstr (name, ==, "init");
  }
  g_clear_pointer (&f->store, arb_store_free);

  /* again: nothing to do, nothing done */
  fixture_open (f);
  g_assert_cmpint (arb_store_schema_version (f->store), ==, latest);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM schema_migrations"), ==, n_files);
  applied_again = raw_scalar (f, "SELECT applied_at FROM schema_migrations WHERE version = 1");
  g_assert_cmpstr (applied_at, ==, applied_again);
  g_clear_pointer (&f->store, arb_store_free);

  /* a failing migration: named in the error with the database's reason,
   * and nothing of it left behind */
  broken = migrations_with (f, "900_broken.sql", "CREATE TABLE half_done (id INTEGER);\nCREATE TABLE broken (;\n");
  store = arb_store_open (f->uri, f->dir, broken, &error);
  g_assert_null (store);
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "900_broken.sql"));
  g_assert_nonnull (strstr (error->message, "syntax error"));
  g_clear_error (&error);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM schema_migrations"), ==, n_files);
  g_assert_cmpint (table_exists (f, "half_done"), ==, 0);

  /* mended, it applies, once */
  g_free (migrations_with (f, "900_broken.sql", "CREATE TABLE half_done (id INTEGER);\n"));
  fixed = g_steal_pointer (&broken);
  for (guint i = 0; i < 2; i++)
    {
      store = arb_store_open (f->uri, f->dir, fixed, &error);
      g_assert_no_error (error);
      g_assert_cmpint (arb_store_schema_version (store), ==, 900);
      arb_store_free (store);
    }
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM schema_migrations"), ==, n_files + 1);
  g_assert_cmpint (table_exists (f, "half_done"), ==, 1);

  /* no migrations at all */
  {
    g_autofree char *empty = g_build_filename (f->dir, "nothing", NULL);
    store = arb_store_open (f->uri, f->dir, empty, &error);
    g_assert_null (store);
    g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION);
    g_clear_error (&error);
  }
}

/* ---- tests: one transaction, every row, read back ------------------------ */

static void
test_roundtrip (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(ArbAssessmentRow) a = make_assessment ("a-roundtrip", t);
  g_autoptr(ArbOrderRow) o = make_order ("o-1", a->id, t + 2);
  g_autoptr(ArbTradeRow) tr = make_trade ("t-1", 1, a->id, t + 3);
  g_autoptr(ArbPositionRow) p = make_position ("p-1", a->id, t + 3);
  g_autoptr(OutboxRow) ev = make_outbox ("e-1", a->id, t + 4);
  g_autoptr(IdempotencyRow) idem = make_idempotency ("alice", "k-1", t + 5);
  g_autoptr(GPtrArray) trades = NULL, pending = NULL;
  g_autoptr(GError) error = NULL;
  ArbStoreTxn *txn;
  Waits w = { 0 };
  Loaded l = { 0 };

  fixture_open (f);

  /* the extremes of ArbDecimal, and the smallest step */
  a->status = ARB_ASSESSMENT_FAILED;
  g_free (a->status_reason);
  /* what an array literal would have to escape, and what a binary array
   * must carry byte for byte: quotes, backslashes, braces, commas, NULL
   * spelt out, spaces, non-ASCII */
  a->status_reason = g_strdup ("daily loss limit: equity 94999.99999999 <= 95000 \\ \"q\" {a,b} NULL  é€");
  /* a time before PostgreSQL's epoch (2000-01-01): negative there */
  a->status_time_us = 1;
  a->balance = dec ("92233720368.54775807");
  a->equity_hwm = dec ("0.00000001");
  a->day_start_equity = dec ("-92233720368.54775808");
  a->day_start_balance = dec ("12345.67890123");
  a->version = 7;
  o->client_order_id = g_strdup ("client-1");
  o->quantity = dec ("0.00000001");
  o->has_stop_loss = TRUE;
  o->stop_loss = dec ("63000.5");
  o->correlation_id = g_strdup ("cid-1");
  g_free (ev->payload);
  ev->payload = g_strdup ("{\"id\":\"e-1\",\"note\":\"a \\\"quoted\\\" word, a \\\\ and {braces}\\n\",\"x\":\"é€\"}");
  tr->side = ARB_SIDE_SHORT;
  tr->is_buy = FALSE;
  tr->quantity = dec ("1.23456789");
  tr->price = dec ("64250.12345678");
  tr->fee = dec ("0.00000001");
  tr->cash_effect = dec ("-0.00000001");
  p->side = ARB_SIDE_SHORT;
  p->quantity = dec ("92233720368.54775807");
  p->entry_price = dec ("64250.12345678");
  p->realized_pnl = dec ("-92233720368.54775808");
  p->has_stop_loss = TRUE;
  p->stop_loss = dec ("70000.00000001");

  txn = arb_store_txn_new ();
  arb_store_txn_insert_assessment (txn, a);
  arb_store_txn_insert_order (txn, o);
  arb_store_txn_insert_trade (txn, tr);
  arb_store_txn_upsert_position (txn, p);
  arb_store_txn_insert_outbox (txn, ev);
  arb_store_txn_insert_idempotency (txn, idem);
  g_assert_cmpuint (arb_store_txn_length (txn), ==, 6);
  commit_async (f, txn, &w, 0);
  iterate_until (&w.done, 1);
  g_assert_cmpuint (w.failed, ==, 0);
  g_assert_true (w.thread == g_thread_self ());

  load (f, t, &l);
  g_assert_cmpuint (l.assessments->len, ==, 1);
  assert_assessment_eq (g_ptr_array_index (l.assessments, 0), a);
  g_assert_cmpuint (l.positions->len, ==, 1);
  assert_position_eq (g_ptr_array_index (l.positions, 0), p);
  g_assert_cmpuint (l.idempotency->len, ==, 1);
  assert_idempotency_eq (g_ptr_array_index (l.idempotency, 0), idem);
  g_assert_cmpint (l.max_seq, ==, 1);
  loaded_clear (&l);

  trades = arb_store_list_trades_sync (f->store, a->id, 0, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (trades->len, ==, 1);
  assert_trade_eq (g_ptr_array_index (trades, 0), tr);

  pending = arb_store_outbox_pending_sync (f->store, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pending->len, ==, 1);
  assert_outbox_eq (g_ptr_array_index (pending, 0), ev);

  /* the order, straight from the table */
  {
    g_autofree char *q = raw_scalar (f, "SELECT quantity FROM orders WHERE id = 'o-1'");
    g_autofree char *sl = raw_scalar (f, "SELECT stop_loss FROM orders WHERE id = 'o-1'");
    g_autofree char *tp = raw_scalar (f, "SELECT take_profit FROM orders WHERE id = 'o-1'");
    g_autofree char *rest = raw_scalar (f, "SELECT assessment_id || '|' || client_order_id || '|' || market || '|' "
                                           "|| direction || '|' || status || '|' || correlation_id FROM orders");
    g_assert_cmpstr (q, ==, is_pg (f) ? "0.00000001" : "1");
    g_assert_cmpstr (sl, ==, is_pg (f) ? "63000.50000000" : "6300050000000");
    g_assert_null (tp);
    g_assert_cmpstr (rest, ==, "a-roundtrip|client-1|crypto:BTC-USD|buy|filled|cid-1");
  }
  /* and the money columns hold exact values, not floats */
  {
    g_autofree char *bal = raw_scalar (f, "SELECT balance FROM assessments");
    g_assert_cmpstr (bal, ==, is_pg (f) ? "92233720368.54775807" : "9223372036854775807");
  }
}

/* ---- tests: load ------------------------------------------------------- */

typedef struct {
  GPtrArray *trades;
  GError    *error;
  guint      done;
  GThread   *thread;
} Page;

static void
on_page (GPtrArray *trades, const GError *error, gpointer data)
{
  Page *page = data;
  page->trades = trades != NULL ? g_ptr_array_ref (trades) : NULL;
  page->error = error != NULL ? g_error_copy (error) : NULL;
  page->thread = g_thread_self ();
  page->done++;
}


static void
test_load (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(ArbPositionRow) open_p = make_position ("p-open", "a-1", t);
  g_autoptr(ArbPositionRow) closed_p = make_position ("p-closed", "a-1", t + 1);
  g_autoptr(IdempotencyRow) old = make_idempotency ("alice", "old", t - 25 * HOUR_US);
  g_autoptr(IdempotencyRow) young = make_idempotency ("alice", "young", t - HOUR_US);
  g_autoptr(IdempotencyRow) again = make_idempotency ("alice", "old", t);
  g_autoptr(IdempotencyRow) young_again = make_idempotency ("alice", "young", t);
  g_autoptr(IdempotencyRow) bobs_old = make_idempotency ("bob", "old", t - 25 * HOUR_US);
  g_autoptr(GPtrArray) closed = NULL;
  g_autoptr(GError) error = NULL;
  ArbStoreTxn *txn;
  Loaded l = { 0 };

  fixture_open (f);

  /* empty */
  load (f, 0, &l);
  g_assert_cmpuint (l.assessments->len, ==, 0);
  g_assert_cmpint (l.max_seq, ==, 0);
  loaded_clear (&l);

  seed_assessment (f, "a-1", t);
  seed_assessment (f, "a-2", t);
  txn = arb_store_txn_new ();
  arb_store_txn_upsert_position (txn, open_p);
  arb_store_txn_upsert_position (txn, closed_p);
  arb_store_txn_insert_idempotency (txn, old);
  arb_store_txn_insert_idempotency (txn, young);
  arb_store_txn_insert_idempotency (txn, bobs_old);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *id = g_strdup_printf ("t-%u", i);
      g_autoptr(ArbTradeRow) tr = make_trade (id, 41 + i * 10, i % 2 ? "a-1" : "a-2", t + i);
      arb_store_txn_insert_trade (txn, tr);
    }
  commit_ok (f, txn);

  /* the position closes: an upsert of the same row */
  closed_p->status = ARB_POSITION_CLOSED;
  closed_p->quantity = ARB_DECIMAL_ZERO;
  closed_p->margin = ARB_DECIMAL_ZERO;
  closed_p->realized_pnl = dec ("150.5");
  closed_p->close_reason = g_strdup ("take_profit");
  closed_p->closed_us = t + 10;
  closed_p->updated_us = t + 10;
  txn = arb_store_txn_new ();
  arb_store_txn_upsert_position (txn, closed_p);
  commit_ok (f, txn);

  load (f, t - 24 * HOUR_US, &l);
  g_assert_cmpuint (l.assessments->len, ==, 2);
  g_assert_cmpuint (l.positions->len, ==, 1);
  assert_position_eq (g_ptr_array_index (l.positions, 0), open_p);
  g_assert_cmpuint (l.idempotency->len, ==, 1);
  assert_idempotency_eq (g_ptr_array_index (l.idempotency, 0), young);
  g_assert_cmpint (l.max_seq, ==, 81);
  loaded_clear (&l);

  closed = arb_store_list_closed_positions_sync (f->store, "a-1", NULL, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (closed->len, ==, 1);
  assert_position_eq (g_ptr_array_index (closed, 0), closed_p);
  {
    Page page = { 0 };
    arb_store_list_closed_positions_async (f->store, "a-1", NULL, 10, on_page, &page);
    iterate_until (&page.done, 1);
    g_assert_no_error (page.error);
    g_assert_true (page.thread == g_thread_self ());
    g_assert_cmpuint (page.trades->len, ==, 1);
    assert_position_eq (g_ptr_array_index (page.trades, 0), closed_p);
    g_ptr_array_unref (page.trades);
  }

  /* a key whose window has passed can be used again once it is expired */
  txn = arb_store_txn_new ();
  arb_store_txn_insert_idempotency (txn, again);
  g_assert_false (arb_store_commit_sync (f->store, txn, &error));
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT);
  g_clear_error (&error);
  /* the expiry of one key: a key still in its window stays, so using it
   * again is still a conflict */
  txn = arb_store_txn_new ();
  arb_store_txn_expire_idempotency_key (txn, "alice", "young", t - 24 * HOUR_US);
  arb_store_txn_insert_idempotency (txn, young_again);
  g_assert_false (arb_store_commit_sync (f->store, txn, &error));
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT);
  g_clear_error (&error);
  /* the same with an outbox row in the transaction, so that on
   * PostgreSQL it is one group statement, where the expiry is part of
   * the insert: still a conflict, and nothing of the transaction stays */
  txn = arb_store_txn_new ();
  {
    g_autoptr(OutboxRow) e = make_outbox ("e-young-again", "a-1", t);
    arb_store_txn_insert_outbox (txn, e);
  }
  arb_store_txn_expire_idempotency_key (txn, "alice", "young", t - 24 * HOUR_US);
  arb_store_txn_insert_idempotency (txn, young_again);
  g_assert_false (arb_store_commit_sync (f->store, txn, &error));
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT);
  g_clear_error (&error);
  load (f, 0, &l);
  g_assert_cmpuint (l.idempotency->len, ==, 3);
  for (guint i = 0; i < l.idempotency->len; i++)
    {
      IdempotencyRow *r = g_ptr_array_index (l.idempotency, i);
      if (g_str_equal (r->key, "young"))
        assert_idempotency_eq (r, young);
    }
  loaded_clear (&l);
  /* an old one goes, and only that one: bob's old key is still there */
  txn = arb_store_txn_new ();
  arb_store_txn_expire_idempotency_key (txn, "alice", "old", t - 24 * HOUR_US);
  arb_store_txn_insert_idempotency (txn, again);
  commit_ok (f, txn);
  load (f, t - 24 * HOUR_US, &l);
  g_assert_cmpuint (l.idempotency->len, ==, 2);
  loaded_clear (&l);
  load (f, 0, &l);
  g_assert_cmpuint (l.idempotency->len, ==, 3);
  loaded_clear (&l);
  /* housekeeping: every key past its window */
  txn = arb_store_txn_new ();
  arb_store_txn_expire_idempotency (txn, t - 24 * HOUR_US);
  commit_ok (f, txn);
  load (f, 0, &l);
  g_assert_cmpuint (l.idempotency->len, ==, 2);
  loaded_clear (&l);
}

/* ---- tests: group commit --------------------------------------------------- */

static ArbStoreTxn *
order_txn (const char *assessment_id, guint i, gint64 seq, gint64 t)
{
  ArbStoreTxn *txn = arb_store_txn_new ();
  g_autofree char *oid = g_strdup_printf ("o-%s-%u", assessment_id, i);
  g_autofree char *tid = g_strdup_printf ("t-%s-%u", assessment_id, i);
  g_autofree char *pid = g_strdup_printf ("p-%s-%u", assessment_id, i);
  g_autofree char *eid = g_strdup_printf ("e-%s-%u", assessment_id, i);
  g_autoptr(ArbOrderRow) o = make_order (oid, assessment_id, t);
  g_autoptr(ArbTradeRow) tr = make_trade (tid, seq, assessment_id, t);
  g_autoptr(ArbPositionRow) p = make_position (pid, assessment_id, t);
  g_autoptr(OutboxRow) ev = make_outbox (eid, assessment_id, t);

  arb_store_txn_insert_order (txn, o);
  arb_store_txn_insert_trade (txn, tr);
  arb_store_txn_upsert_position (txn, p);
  arb_store_txn_insert_outbox (txn, ev);
  return txn;
}

static void
test_group_commit (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  ArbStoreStats before, after;
  Waits w = { 0 };
  gint64 start, took;
  guint n = 500;

  fixture_open (f);
  seed_assessment (f, "a-1", t);

  /* 500 concurrent commits from the main thread */
  arb_store_get_stats (f->store, &before);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    commit_async (f, order_txn ("a-1", i, i + 1, t + i), &w, i);
  iterate_until (&w.done, n);
  took = g_get_monotonic_time () - start;
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (w.failed, ==, 0);
  g_assert_cmpuint (after.txns_committed - before.txns_committed, ==, n);
  g_assert_cmpuint (after.groups_failed, ==, before.groups_failed);
  g_assert_cmpuint (after.largest_group, >, 1);
  /* grouped: far fewer database commits than transactions */
  g_assert_cmpuint (after.groups - before.groups, <, n / 5);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM trades"), ==, n);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox"), ==, n);
  g_test_message ("%s: %u txns (4 rows each) in %.1f ms: %.0f txns/s, %" G_GUINT64_FORMAT " groups, largest %u",
                  f->backend, n, took / 1000.0, n * 1e6 / (double) took, after.groups - before.groups,
                  after.largest_group);

  /* while the writer is held, everything queued goes into one group, up to
   * the cap: 500 → 1 group; 1100 → 512 + 512 + 76 */
  for (guint round = 0; round < 2; round++)
    {
      guint count = round == 0 ? 500 : 1100, base = n + (round == 0 ? 0 : 500);
      Waits held = { 0 };

      arb_store_get_stats (f->store, &before);
      arb_store_hold_writer (f->store, TRUE);
      for (guint i = 0; i < count; i++)
        commit_async (f, order_txn ("a-1", base + i, base + i + 1, t), &held, i);
      arb_store_hold_writer (f->store, FALSE);
      iterate_until (&held.done, count);
      arb_store_get_stats (f->store, &after);
      g_assert_cmpuint (held.failed, ==, 0);
      g_assert_cmpuint (after.groups - before.groups, ==, round == 0 ? 1 : 3);
      g_assert_cmpuint (after.txns_committed - before.txns_committed, ==, count);
    }
  g_assert_cmpuint (after.largest_group, ==, 512);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM trades"), ==, n + 1600);
}

/* one txn in a group breaks a constraint: it fails alone, with CONFLICT,
 * none of its rows stay, and the rest of its group commits */
static void
test_conflict_fails_alone (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func (error_free0);
  ArbStoreStats before, after;
  Waits w = { 0 };
  guint n = 12;

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  commit_ok (f, order_txn ("a-1", 0, 1, t));

  g_ptr_array_set_size (errors, n);
  w.errors = errors;
  arb_store_get_stats (f->store, &before);
  arb_store_hold_writer (f->store, TRUE);
  for (guint i = 0; i < n; i++)
    {
      ArbStoreTxn *txn;
      if (i == 4)
        {
          /* its own order, then the trade already committed: duplicate id */
          g_autoptr(ArbOrderRow) o = make_order ("o-doomed", "a-1", t);
          g_autoptr(ArbTradeRow) dup = make_trade ("t-a-1-0", 1, "a-1", t);
          txn = arb_store_txn_new ();
          arb_store_txn_insert_order (txn, o);
          arb_store_txn_insert_trade (txn, dup);
        }
      else if (i == 8)
        {
          /* an update of an assessment that does not exist */
          g_autoptr(ArbOrderRow) o = make_order ("o-doomed-too", "a-1", t);
          g_autoptr(ArbAssessmentRow) ghost = make_assessment ("a-ghost", t);
          txn = arb_store_txn_new ();
          arb_store_txn_insert_order (txn, o);
          arb_store_txn_update_assessment (txn, ghost);
        }
      else
        txn = order_txn ("a-1", 100 + i, 100 + i, t);
      commit_async (f, txn, &w, i);
    }
  arb_store_hold_writer (f->store, FALSE);
  iterate_until (&w.done, n);
  arb_store_get_stats (f->store, &after);

  for (guint i = 0; i < n; i++)
    {
      GError *e = g_ptr_array_index (errors, i);
      if (i == 4 || i == 8)
        {
          g_assert_error (e, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT);
          g_test_message ("txn %u: %s", i, e->message);
        }
      else
        g_assert_no_error (e);
    }
  g_assert_nonnull (strstr (((GError *) g_ptr_array_index (errors, 4))->message, "insert trade t-a-1-0"));
  g_assert_nonnull (strstr (((GError *) g_ptr_array_index (errors, 8))->message, "a-ghost"));
  g_assert_cmpuint (after.groups - before.groups, ==, 1);
  g_assert_cmpuint (after.txns_committed - before.txns_committed, ==, n - 2);
  g_assert_cmpuint (after.txns_failed - before.txns_failed, ==, 2);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM orders WHERE id LIKE 'o-doomed%'"), ==, 0);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM trades"), ==, 1 + n - 2);

  /* and the same store goes on committing */
  commit_ok (f, order_txn ("a-1", 1000, 1000, t));
}

/* several txns of one group touch the same rows: the outcome is the one
 * they would have had one after the other (PostgreSQL sends a group as one
 * statement per table, and merges what it must) */
static void
test_group_semantics (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(ArbAssessmentRow) a = make_assessment ("a-1", t);
  g_autoptr(ArbAssessmentRow) b = make_assessment ("a-2", t);
  g_autoptr(ArbPositionRow) p_open = make_position ("p-1", "a-1", t);
  g_autoptr(ArbPositionRow) p_closed = make_position ("p-1", "a-1", t);
  g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func (error_free0);
  g_autoptr(GPtrArray) pending = NULL;
  g_autoptr(GError) error = NULL;
  ArbStoreStats before, after;
  ArbStoreTxn *txn;
  Waits w = { 0 };
  Loaded l = { 0 };

  fixture_open (f);
  w.errors = errors;
  g_ptr_array_set_size (errors, 8);

  /* keys used two hours ago: alice's is used again in the group below */
  txn = arb_store_txn_new ();
  {
    g_autoptr(IdempotencyRow) ka = make_idempotency ("alice", "k", t - 2 * HOUR_US);
    g_autoptr(IdempotencyRow) kb = make_idempotency ("bob", "k", t - 2 * HOUR_US);
    arb_store_txn_insert_idempotency (txn, ka);
    arb_store_txn_insert_idempotency (txn, kb);
  }
  commit_ok (f, txn);

  /* one group: insert, update twice; a position opened and closed; events */
  arb_store_get_stats (f->store, &before);
  arb_store_hold_writer (f->store, TRUE);
  txn = arb_store_txn_new ();
  arb_store_txn_insert_assessment (txn, a);
  commit_async (f, txn, &w, 0);

  a->balance = dec ("99990.5");
  a->version = 2;
  a->updated_us = t + 1;
  txn = arb_store_txn_new ();
  arb_store_txn_update_assessment (txn, a);
  arb_store_txn_upsert_position (txn, p_open);
  {
    g_autoptr(OutboxRow) e1 = make_outbox ("e-1", "a-1", t);
    g_autoptr(OutboxRow) e2 = make_outbox ("e-2", "a-1", t);
    arb_store_txn_insert_outbox (txn, e1);
    arb_store_txn_insert_outbox (txn, e2);
  }
  commit_async (f, txn, &w, 1);

  a->balance = dec ("100150.25");
  a->equity_hwm = dec ("100150.25");
  a->version = 3;
  a->updated_us = t + 2;
  p_closed->status = ARB_POSITION_CLOSED;
  p_closed->quantity = ARB_DECIMAL_ZERO;
  p_closed->margin = ARB_DECIMAL_ZERO;
  p_closed->realized_pnl = dec ("160");
  p_closed->fees = dec ("9.75");
  p_closed->close_reason = g_strdup ("close");
  p_closed->closed_us = t + 2;
  p_closed->updated_us = t + 2;
  /* fixed columns of a later upsert do not change the row */
  p_closed->entry_price = dec ("1");
  g_free (p_closed->market);
  p_closed->market = g_strdup ("crypto:ignored");
  txn = arb_store_txn_new ();
  arb_store_txn_update_assessment (txn, a);
  arb_store_txn_upsert_position (txn, p_closed);
  {
    g_autoptr(ArbTradeRow) tr = make_trade ("t-1", 1, "a-1", t + 2);
    arb_store_txn_insert_trade (txn, tr);
  }
  commit_async (f, txn, &w, 2);

  txn = arb_store_txn_new ();
  {
    g_autoptr(OutboxRow) e3 = make_outbox ("e-3", "a-1", t);
    g_autoptr(IdempotencyRow) k = make_idempotency ("alice", "k", t);
    arb_store_txn_insert_outbox (txn, e3);
    arb_store_txn_expire_idempotency_key (txn, "alice", "k", t - HOUR_US);
    arb_store_txn_insert_idempotency (txn, k);
  }
  commit_async (f, txn, &w, 3);
  arb_store_hold_writer (f->store, FALSE);
  iterate_until (&w.done, 4);
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (w.failed, ==, 0);
  g_assert_cmpuint (after.groups - before.groups, ==, 1);

  load (f, 0, &l);
  g_assert_cmpuint (l.assessments->len, ==, 1);
  assert_assessment_eq (g_ptr_array_index (l.assessments, 0), a);
  g_assert_cmpuint (l.positions->len, ==, 0);
  /* alice's key replaced, bob's left alone */
  g_assert_cmpuint (l.idempotency->len, ==, 2);
  for (guint i = 0; i < 2; i++)
    {
      IdempotencyRow *r = g_ptr_array_index (l.idempotency, i);
      g_assert_cmpint (r->created_us, ==, g_str_equal (r->user, "alice") ? t : t - 2 * HOUR_US);
    }
  loaded_clear (&l);
  {
    g_autoptr(GPtrArray) closed = arb_store_list_closed_positions_sync (f->store, "a-1", NULL, 10, &error);
    ArbPositionRow *got;
    g_assert_no_error (error);
    g_assert_cmpuint (closed->len, ==, 1);
    got = g_ptr_array_index (closed, 0);
    g_assert_cmpstr (got->market, ==, p_open->market);
    assert_dec_eq (got->entry_price, p_open->entry_price);
    g_assert_cmpint (got->status, ==, ARB_POSITION_CLOSED);
    assert_dec_eq (got->realized_pnl, p_closed->realized_pnl);
    assert_dec_eq (got->fees, p_closed->fees);
    g_assert_cmpstr (got->close_reason, ==, "close");
    g_assert_cmpint (got->closed_us, ==, t + 2);
  }
  pending = arb_store_outbox_pending_sync (f->store, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pending->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *id = g_strdup_printf ("e-%u", i + 1);
      g_assert_cmpstr (((ArbOutboxRow *) g_ptr_array_index (pending, i))->id, ==, id);
    }

  /* another: an update of an assessment that a later txn inserts fails,
   * as it would have one after the other */
  w = (Waits){ .errors = errors };
  arb_store_hold_writer (f->store, TRUE);
  txn = arb_store_txn_new ();
  arb_store_txn_update_assessment (txn, b);
  commit_async (f, txn, &w, 4);
  txn = arb_store_txn_new ();
  arb_store_txn_insert_assessment (txn, b);
  commit_async (f, txn, &w, 5);
  a->version = 9;
  txn = arb_store_txn_new ();
  arb_store_txn_update_assessment (txn, a);
  commit_async (f, txn, &w, 6);
  arb_store_hold_writer (f->store, FALSE);
  iterate_until (&w.done, 3);
  g_assert_error ((GError *) g_ptr_array_index (errors, 4), ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT);
  g_assert_no_error ((GError *) g_ptr_array_index (errors, 5));
  g_assert_no_error ((GError *) g_ptr_array_index (errors, 6));
  load (f, 0, &l);
  g_assert_cmpuint (l.assessments->len, ==, 2);
  for (guint i = 0; i < 2; i++)
    {
      ArbAssessmentRow *r = g_ptr_array_index (l.assessments, i);
      assert_assessment_eq (r, g_str_equal (r->id, "a-1") ? a : b);
    }
  loaded_clear (&l);
}

/* ---- tests: trade history -------------------------------------------------- */

static GPtrArray *
fetch_page (Fixture *f, const char *assessment_id, gint64 before, guint limit)
{
  Page page = { 0 };
  arb_store_list_trades_async (f->store, assessment_id, before, limit, on_page, &page);
  iterate_until (&page.done, 1);
  g_assert_no_error (page.error);
  g_assert_true (page.thread == g_thread_self ());
  return page.trades;
}

/* 300 of the 1300 trades belong to a-2 */
static gboolean
is_other (gint64 seq)
{
  int r = (int) (seq % 13);
  return r == 0 || r == 5 || r == 9;
}

static void
test_pagination (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  gint64 cursor = 0, seq = 0, last = G_MAXINT64;
  guint pages = 0, mine = 1000;

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  seed_assessment (f, "a-2", t);

  /* 1000 trades of a-1 with 300 of a-2 in between, in chunks */
  for (guint chunk = 0; chunk < 13; chunk++)
    {
      ArbStoreTxn *txn = arb_store_txn_new ();
      for (guint i = 0; i < 100; i++)
        {
          g_autofree char *id = g_strdup_printf ("t-%" G_GINT64_FORMAT, ++seq);
          g_autoptr(ArbTradeRow) tr = make_trade (id, seq, is_other (seq) ? "a-2" : "a-1", t + seq);
          arb_store_txn_insert_trade (txn, tr);
        }
      commit_ok (f, txn);
    }
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM trades WHERE assessment_id = 'a-1'"), ==, mine);

  /* pages of 37, newest first: no overlap, no gap */
  for (;;)
    {
      g_autoptr(GPtrArray) page = fetch_page (f, "a-1", cursor, 37);
      pages++;
      g_assert_cmpuint (page->len, <=, 37);
      for (guint i = 0; i < page->len; i++)
        {
          ArbTradeRow *tr = g_ptr_array_index (page, i);
          g_assert_cmpstr (tr->assessment_id, ==, "a-1");
          g_assert_cmpint (tr->seq, <, last);
          g_assert_false (g_hash_table_contains (seen, &tr->seq));
          g_hash_table_add (seen, g_memdup2 (&tr->seq, sizeof tr->seq));
          last = tr->seq;
        }
      if (page->len < 37)
        break;
      cursor = ((ArbTradeRow *) g_ptr_array_index (page, page->len - 1))->seq;
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, mine);
  g_assert_cmpuint (pages, ==, mine / 37 + 1);
  /* every trade of a-1 was seen: the seqs that are not a-2's */
  for (gint64 s = 1; s <= seq; s++)
    {
      g_assert_cmpint (g_hash_table_contains (seen, &s), ==, !is_other (s));
    }

  /* the page query reads the (assessment_id, seq DESC) index from the
   * cursor on: no sort, no scan of the table */
  {
    g_autofree char *plan = raw_text (f, is_pg (f)
      ? "EXPLAIN SELECT id FROM trades WHERE assessment_id = 'a-1' AND seq < 500 ORDER BY seq DESC LIMIT 37"
      : "EXPLAIN QUERY PLAN SELECT id FROM trades WHERE assessment_id = 'a-1' AND seq < 500 ORDER BY seq DESC LIMIT 37");
    g_test_message ("%s", plan);
    /* each PostgreSQL partition has its own copy of the index */
    g_assert_nonnull (strstr (plan, is_pg (f) ? "assessment_id_seq_idx" : "USING INDEX trades_assessment_seq_idx"));
    g_assert_null (strstr (plan, "Seq Scan"));
    g_assert_null (strstr (plan, "->  Sort"));
    g_assert_null (strstr (plan, "SCAN trades"));
    g_assert_null (strstr (plan, "TEMP B-TREE"));
  }

  /* a cursor past the oldest: empty; the sync variant agrees */
  {
    g_autoptr(GPtrArray) none = fetch_page (f, "a-1", 1, 10);
    g_autoptr(GPtrArray) top = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (none->len, ==, 0);
    top = arb_store_list_trades_sync (f->store, "a-1", 0, 3, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (top->len, ==, 3);
    gint64 newest = seq;
    while (is_other (newest))
      newest--;
    g_assert_cmpint (((ArbTradeRow *) g_ptr_array_index (top, 0))->seq, ==, newest);
  }
}

/* ---- tests: callbacks on the caller's context ---------------------------- */

typedef struct {
  Fixture *f;
  gboolean commit_ok;
  gboolean commit_here;
  gboolean page_here;
} ThreadTest;

static gpointer
other_thread (gpointer data)
{
  ThreadTest *tt = data;
  g_autoptr(GMainContext) ctx = g_main_context_new ();
  Waits w = { 0 };
  Page page = { 0 };

  g_main_context_push_thread_default (ctx);
  commit_async (tt->f, order_txn ("a-1", 7, 7, now_us ()), &w, 0);
  iterate_until (&w.done, 1);
  tt->commit_ok = w.failed == 0;
  tt->commit_here = w.thread == g_thread_self ();
  arb_store_list_trades_async (tt->f->store, "a-1", 0, 10, on_page, &page);
  iterate_until (&page.done, 1);
  tt->page_here = page.thread == g_thread_self () && page.trades != NULL && page.trades->len == 1;
  g_clear_pointer (&page.trades, g_ptr_array_unref);
  g_clear_error (&page.error);
  g_main_context_pop_thread_default (ctx);
  return NULL;
}

static void
test_caller_context (Fixture *f, gconstpointer data)
{
  ThreadTest tt = { .f = f };

  fixture_open (f);
  seed_assessment (f, "a-1", now_us ());
  g_thread_join (g_thread_new ("other", other_thread, &tt));
  g_assert_true (tt.commit_ok);
  g_assert_true (tt.commit_here);
  g_assert_true (tt.page_here);
}

/* ---- tests: the ledger invariant ----------------------------------------- */

static void
test_ledger_audit (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(ArbAssessmentRow) a = make_assessment ("a-1", t);
  g_autoptr(GPtrArray) lines = NULL;
  g_autoptr(GError) error = NULL;
  ArbDecimal balance = a->starting_balance;
  ArbStoreTxn *txn;

  fixture_open (f);
  seed_assessment (f, "a-2", t); /* no trades, untouched: holds */

  /* trades and the balance move together, as the saga commits them */
  txn = arb_store_txn_new ();
  arb_store_txn_insert_assessment (txn, a);
  commit_ok (f, txn);
  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *id = g_strdup_printf ("t-%u", i);
      g_autoptr(ArbTradeRow) tr = make_trade (id, i + 1, "a-1", t + i);
      tr->cash_effect = arb_decimal_from_raw ((i % 3 == 0 ? -1 : 1) * (gint64) (i * 123456789 + 1));
      g_assert_true (arb_decimal_add (balance, tr->cash_effect, &balance, NULL));
      a->balance = balance;
      a->version++;
      txn = arb_store_txn_new ();
      arb_store_txn_insert_trade (txn, tr);
      arb_store_txn_update_assessment (txn, a);
      commit_ok (f, txn);
    }
  lines = arb_store_audit_ledger_sync (f->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lines->len, ==, 0);
  g_clear_pointer (&lines, g_ptr_array_unref);

  /* a balance that moved without a trade breaks it */
  a->balance = dec ("1");
  txn = arb_store_txn_new ();
  arb_store_txn_update_assessment (txn, a);
  commit_ok (f, txn);
  lines = arb_store_audit_ledger_sync (f->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lines->len, ==, 1);
  g_test_message ("%s", (char *) g_ptr_array_index (lines, 0));
  g_assert_true (g_str_has_prefix (g_ptr_array_index (lines, 0), "a-1: balance - starting_balance = -99999.00000000"));
}

/* ---- tests: URIs and paths ------------------------------------------------ */

static void
test_uri (void)
{
  static const char *const bad[] = { "mysql://root@localhost/arb", "sqlite:", "", "arbiter.db", "sqlite::memory:",
                                     "postgresql://u@h:notaport/db?nonsense=1" };
  g_autofree char *migrations = g_build_filename (source_root (), "data", "migrations", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbStore *store = arb_store_open (bad[i], "/tmp", migrations, &error);
      g_assert_null (store);
      g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI);
      g_test_message ("%s -> %s", bad[i], error->message);
      if (i < 4)
        {
          g_assert_nonnull (strstr (error->message, "sqlite:PATH"));
          g_assert_nonnull (strstr (error->message, "postgresql://"));
          g_assert_nonnull (strstr (error->message, "postgres://"));
        }
    }
  /* a password never shows, not even in a refusal */
  {
    g_autoptr(GError) error = NULL;
    ArbStore *store = arb_store_open ("mysql://root:hunter2@db/arb", NULL, migrations, &error);
    g_assert_null (store);
    g_assert_null (strstr (error->message, "hunter2"));
    g_assert_nonnull (strstr (error->message, "mysql://root:***@db/arb"));
  }
  {
    g_autoptr(GError) error = NULL;
    ArbStore *store = arb_store_open ("postgres://arb:hunter2@127.0.0.1:1/arb?connect_timeout=2", NULL, migrations,
                                      &error);
    g_assert_null (store);
    g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
    g_test_message ("%s", error->message);
    g_assert_null (strstr (error->message, "hunter2"));
  }
}

/* the number of ledger writers: SQLite takes one, PostgreSQL up to four */
static void
test_ledger_writers_range (Fixture *f, gconstpointer data)
{
  guint max = is_pg (f) ? 4 : 1;
  const guint bad[] = { 0, max + 1 };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbStore *store = arb_store_open_full (f->uri, f->dir, f->migrations, bad[i], &error);
      g_assert_null (store);
      g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI);
      g_assert_nonnull (strstr (error->message, "store_ledger_writers"));
      g_test_message ("%s", error->message);
    }
  /* the most it takes works, and commits */
  fixture_open_writers (f, max);
  seed_assessment (f, "a-1", now_us ());
  commit_ok (f, order_txn ("a-1", 0, 1, now_us ()));
}

static void
test_sqlite_unwritable (Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename (f->dir, "a-file", NULL);
  g_autofree char *under_file = g_strdup_printf ("sqlite:%s/store.db", file);
  g_autofree char *a_dir = g_build_filename (f->dir, "a-dir", NULL);
  g_autoptr(GError) error = NULL;
  ArbStore *store;

  g_file_set_contents (file, "not a directory", -1, &error);
  g_assert_no_error (error);
  store = arb_store_open (under_file, f->dir, f->migrations, &error);
  g_assert_null (store);
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, file));
  g_assert_nonnull (strstr (error->message, g_strerror (ENOTDIR)));
  g_clear_error (&error);

  /* a directory where the file should be */
  g_assert_cmpint (g_mkdir (a_dir, 0755), ==, 0);
  store = arb_store_open ("sqlite:a-dir", f->dir, f->migrations, &error);
  g_assert_null (store);
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, a_dir));
  g_clear_error (&error);

  /* a file that is not a database */
  store = arb_store_open ("sqlite:a-file", f->dir, f->migrations, &error);
  g_assert_null (store);
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "not a database"));
}

/* ---- tests: PostgreSQL only --------------------------------------------- */

static char *
month_suffix (gint64 t, int months_ahead)
{
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (t / G_USEC_PER_SEC);
  g_autoptr(GDateTime) first = g_date_time_new_utc (g_date_time_get_year (now), g_date_time_get_month (now), 1, 0, 0, 0);
  g_autoptr(GDateTime) then = g_date_time_add_months (first, months_ahead);
  return g_date_time_format (then, "%Y_%m");
}

static gint64
month_start_us (gint64 t, int months_ahead)
{
  g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc (t / G_USEC_PER_SEC);
  g_autoptr(GDateTime) first = g_date_time_new_utc (g_date_time_get_year (now), g_date_time_get_month (now), 1, 0, 0, 0);
  g_autoptr(GDateTime) then = g_date_time_add_months (first, months_ahead);
  return g_date_time_to_unix (then) * G_USEC_PER_SEC;
}

static char *
partition_of (Fixture *f, const char *table, const char *id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT tableoid::regclass::text FROM %s WHERE id = '%s'", table, id);
  return raw_scalar (f, sql);
}

static void
test_pg_partitions (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GError) error = NULL;
  ArbStoreTxn *txn;
  const char *const parents[] = { "trades", "positions" };

  fixture_open (f);

  /* this month, the next two, and a default, for both tables */
  for (guint i = 0; i < G_N_ELEMENTS (parents); i++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i "
                                              "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '%s'::regclass",
                                              parents[i]);
      g_autofree char *children = raw_scalar (f, sql);
      g_autofree char *kind = NULL;
      g_autofree char *sql_kind = g_strdup_printf ("SELECT relkind FROM pg_class WHERE relname = '%s'", parents[i]);
      g_test_message ("%s: %s", parents[i], children);
      for (int m = 0; m < 3; m++)
        {
          g_autofree char *suffix = month_suffix (t, m);
          g_autofree char *name = g_strdup_printf ("%s_%s", parents[i], suffix);
          g_assert_nonnull (strstr (children, name));
        }
      {
        g_autofree char *def = g_strdup_printf ("%s_default", parents[i]);
        g_assert_nonnull (strstr (children, def));
      }
      kind = raw_scalar (f, sql_kind);
      g_assert_cmpstr (kind, ==, "p");
    }

  /* rows land in their month, or in the default partition when it has none */
  seed_assessment (f, "a-1", t);
  {
    g_autoptr(ArbTradeRow) now_t = make_trade ("t-now", 1, "a-1", t);
    g_autoptr(ArbTradeRow) next_t = make_trade ("t-next", 2, "a-1", month_start_us (t, 1) + 5);
    g_autoptr(ArbTradeRow) far_t = make_trade ("t-far", 3, "a-1", month_start_us (t, 5) + 7);
    g_autoptr(ArbPositionRow) now_p = make_position ("p-now", "a-1", t);
    g_autoptr(ArbPositionRow) far_p = make_position ("p-far", "a-1", month_start_us (t, 5));
    g_autofree char *this_month = month_suffix (t, 0);
    g_autofree char *next_month = month_suffix (t, 1);
    g_autofree char *far_month = month_suffix (t, 5);
    g_autofree char *where = NULL;

    txn = arb_store_txn_new ();
    arb_store_txn_insert_trade (txn, now_t);
    arb_store_txn_insert_trade (txn, next_t);
    arb_store_txn_insert_trade (txn, far_t);
    arb_store_txn_upsert_position (txn, now_p);
    arb_store_txn_upsert_position (txn, far_p);
    commit_ok (f, txn);

    where = partition_of (f, "trades", "t-now");
    g_assert_true (g_str_has_suffix (where, this_month));
    g_clear_pointer (&where, g_free);
    where = partition_of (f, "trades", "t-next");
    g_assert_true (g_str_has_suffix (where, next_month));
    g_clear_pointer (&where, g_free);
    where = partition_of (f, "trades", "t-far");
    g_assert_cmpstr (where, ==, "trades_default");
    g_clear_pointer (&where, g_free);
    where = partition_of (f, "positions", "p-now");
    g_assert_true (g_str_has_suffix (where, this_month));
    g_clear_pointer (&where, g_free);
    where = partition_of (f, "positions", "p-far");
    g_assert_cmpstr (where, ==, "positions_default");
    g_clear_pointer (&where, g_free);

    /* partitions made later take over the rows of their range */
    g_assert_true (arb_store_ensure_partitions (f->store, 6, &error));
    g_assert_no_error (error);
    where = partition_of (f, "trades", "t-far");
    g_assert_true (g_str_has_suffix (where, far_month));
    g_clear_pointer (&where, g_free);
    where = partition_of (f, "positions", "p-far");
    g_assert_true (g_str_has_suffix (where, far_month));
    g_clear_pointer (&where, g_free);
    g_assert_cmpint (raw_count (f, "SELECT count(*) FROM ONLY trades_default"), ==, 0);

    /* and the store still reads and updates them */
    far_p->status = ARB_POSITION_CLOSED;
    far_p->closed_us = month_start_us (t, 5) + 99;
    txn = arb_store_txn_new ();
    arb_store_txn_upsert_position (txn, far_p);
    commit_ok (f, txn);
    g_assert_cmpint (raw_count (f, "SELECT count(*) FROM positions WHERE id = 'p-far' AND status = 'closed'"), ==, 1);
    {
      g_autoptr(GPtrArray) trades = arb_store_list_trades_sync (f->store, "a-1", 0, 10, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (trades->len, ==, 3);
      assert_trade_eq (g_ptr_array_index (trades, 0), far_t);
    }
  }
}

static void
test_pg_dead_database (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) trades = NULL;
  ArbStoreStats stats;
  Waits w = { 0 };
  g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func (error_free0);

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  commit_ok (f, order_txn ("a-1", 0, 1, t));

  /* the server goes away */
  warnings_allowed = TRUE;
  g_assert_true (arb_test_pg_stop (pg (), &error));
  g_assert_no_error (error);
  g_ptr_array_set_size (errors, 3);
  w.errors = errors;
  for (guint i = 0; i < 3; i++)
    commit_async (f, order_txn ("a-1", 1 + i, 2 + i, t), &w, i);
  iterate_until (&w.done, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_error ((GError *) g_ptr_array_index (errors, i), ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("commit: %s", ((GError *) g_ptr_array_index (errors, 0))->message);
  g_assert_false (arb_store_commit_sync (f->store, order_txn ("a-1", 9, 9, t), &error));
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  trades = arb_store_list_trades_sync (f->store, "a-1", 0, 10, &error);
  g_assert_null (trades);
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("read: %s", error->message);
  g_clear_error (&error);
  g_assert_cmpint (g_atomic_int_get (&store_warnings), ==, 1); /* said once, not per commit */

  /* it comes back: the next commit reconnects and goes through */
  g_assert_true (arb_test_pg_start (pg (), &error));
  g_assert_no_error (error);
  commit_ok (f, order_txn ("a-1", 10, 10, t));
  trades = arb_store_list_trades_sync (f->store, "a-1", 0, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (trades->len, ==, 2);
  arb_store_get_stats (f->store, &stats);
  g_assert_cmpuint (stats.reconnects, >=, 1);
  g_assert_cmpuint (stats.groups_failed, >=, 2);
}

/* a trigger makes the first @failures inserts of orders fail with
 * serialization_failure (a sequence counts, which no rollback undoes) */
static void
fail_orders_with_40001 (Fixture *f, int failures)
{
  PGconn *conn = PQconnectdb (f->uri);
  g_autofree char *sql = g_strdup_printf (
    "DROP TRIGGER IF EXISTS fail_once ON orders; DROP SEQUENCE IF EXISTS fail_seq; CREATE SEQUENCE fail_seq;"
    "CREATE OR REPLACE FUNCTION fail_once () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "  IF nextval('fail_seq') <= %d THEN "
    "    RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; "
    "  END IF; RETURN NEW; END $$;"
    "CREATE TRIGGER fail_once BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION fail_once ();",
    failures);
  PGresult *res = PQexec (conn, sql);

  if (PQresultStatus (res) != PGRES_COMMAND_OK)
    g_error ("%s", PQresultErrorMessage (res));
  PQclear (res);
  PQfinish (conn);
}

static void
test_pg_serialization_retry (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GError) error = NULL;
  ArbStoreStats before, after;

  fixture_open (f);
  seed_assessment (f, "a-1", t);

  /* twice: the group runs again, and commits on the third run */
  fail_orders_with_40001 (f, 2);
  arb_store_get_stats (f->store, &before);
  commit_ok (f, order_txn ("a-1", 1, 1, t));
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (after.retries - before.retries, ==, 2);
  g_assert_cmpuint (after.groups - before.groups, ==, 1);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM orders"), ==, 1);

  /* every time: after 3 retries the group fails, UNAVAILABLE */
  warnings_allowed = TRUE;
  fail_orders_with_40001 (f, 1000);
  arb_store_get_stats (f->store, &before);
  g_assert_false (arb_store_commit_sync (f->store, order_txn ("a-1", 2, 2, t), &error));
  g_assert_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "40001"));
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (after.retries - before.retries, ==, 3);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM orders"), ==, 1);
}

/* a connection of the test's own, outside the store */
static PGconn *
raw_connect (Fixture *f)
{
  PGconn *conn = PQconnectdb (f->uri);
  g_assert_cmpint (PQstatus (conn), ==, CONNECTION_OK);
  return conn;
}

static void
raw_exec (PGconn *conn, const char *sql)
{
  PGresult *res = PQexec (conn, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK && PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQresultErrorMessage (res));
  PQclear (res);
}

/* iterates until @counter reaches @target or @ms pass; whether it did */
static gboolean
iterate_for (const guint *counter, guint target, guint ms)
{
  gint64 deadline = g_get_monotonic_time () + ms * 1000;
  GSource *tick = g_timeout_source_new (10);

  g_source_set_callback (tick, wake_up, NULL, NULL);
  g_source_attach (tick, g_main_context_get_thread_default ());
  while (*counter < target && g_get_monotonic_time () < deadline)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  return *counter >= target;
}

/* Delivery marks commit on a writer of their own: a mark that waits on a
 * lock does not hold up the ledger. With one writer, the order below would
 * queue behind the mark until the lock goes. */
static void
test_pg_background_writer (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  Waits marks = { 0 }, orders = { 0 };
  PGconn *locker;
  ArbStoreTxn *mark;

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  commit_ok (f, order_txn ("a-1", 0, 1, t));

  locker = raw_connect (f);
  raw_exec (locker, "BEGIN; LOCK TABLE outbox_delivery IN EXCLUSIVE MODE");
  mark = arb_store_txn_new ();
  arb_store_txn_insert_delivery (mark, "e-a-1-0", "sink:a", t);
  commit_async (f, mark, &marks, 0);
  /* the mark is in the server, waiting for the lock */
  g_assert_false (iterate_for (&marks.done, 1, 300));

  for (guint i = 1; i <= 3; i++)
    commit_async (f, order_txn ("a-1", i, 1 + i, t), &orders, i);
  g_assert_true (iterate_for (&orders.done, 3, 10000));
  g_assert_cmpuint (orders.failed, ==, 0);
  g_assert_cmpuint (marks.done, ==, 0);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM orders"), ==, 4);

  raw_exec (locker, "COMMIT");
  PQfinish (locker);
  iterate_until (&marks.done, 1);
  g_assert_cmpuint (marks.failed, ==, 0);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox_delivery"), ==, 1);
}

/* Two ledger writers commit groups in any order, so the relay must not read
 * past a group still in flight: a row with a higher pos that committed
 * first stays out of reach until the lower one is settled, and then both
 * come in pos order. (A cursor that had read the higher row would pass the
 * lower one for good.) */
static void
test_pg_outbox_commit_order (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  Waits first = { 0 }, second = { 0 };
  PGconn *locker;
  const ArbOutboxEntry *e1, *e2;

  fixture_open_writers (f, 2);
  seed_assessment (f, "a-1", t);
  seed_assessment (f, "a-2", t);

  /* the first group waits in the server: its rows refer to a-1, locked */
  locker = raw_connect (f);
  raw_exec (locker, "BEGIN; SELECT 1 FROM assessments WHERE id = 'a-1' FOR UPDATE");
  commit_async (f, order_txn ("a-1", 1, 1, t), &first, 0);
  g_assert_false (iterate_for (&first.done, 1, 300));

  /* the second, formed later (a higher pos), commits on the other writer */
  commit_async (f, order_txn ("a-2", 2, 2, t), &second, 0);
  g_assert_true (iterate_for (&second.done, 1, 10000));
  g_assert_cmpuint (second.failed, ==, 0);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox WHERE id = 'e-a-2-2'"), ==, 1);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox WHERE id = 'e-a-1-1'"), ==, 0);
  rows = arb_store_outbox_pending_for_sink_sync (f->store, "sink:a", 0, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 0);
  g_clear_pointer (&rows, g_ptr_array_unref);

  raw_exec (locker, "COMMIT");
  PQfinish (locker);
  iterate_until (&first.done, 1);
  g_assert_cmpuint (first.failed, ==, 0);
  rows = arb_store_outbox_pending_for_sink_sync (f->store, "sink:a", 0, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 2);
  e1 = g_ptr_array_index (rows, 0);
  e2 = g_ptr_array_index (rows, 1);
  g_assert_cmpstr (e1->row.id, ==, "e-a-1-1");
  g_assert_cmpstr (e2->row.id, ==, "e-a-2-2");
  g_assert_cmpint (e1->pos, <, e2->pos);
  g_assert_cmpint (arb_store_outbox_visible_pos (f->store), >=, e2->pos);
}

/* A group commits in one round trip, so a group sent on a connection that
 * turns out lost has an unknown outcome and fails. A connection the server
 * closed while the writer was idle (here: idle_session_timeout, which says
 * 57P05 and closes; a group that read that answer would fail) is found before anything is sent: the next commit
 * reconnects and goes through. */
static void
test_pg_idle_connection_closed (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  ArbStoreStats before, after;
  PGconn *admin;

  /* the store's sessions end after 300 ms idle */
  admin = raw_connect (f);
  raw_exec (admin, "DO $$ BEGIN EXECUTE format ('ALTER DATABASE %I SET idle_session_timeout = %L', "
                   "current_database (), '300ms'); END $$");
  PQfinish (admin);
  fixture_open (f);
  seed_assessment (f, "a-1", t);
  commit_ok (f, order_txn ("a-1", 0, 1, t));
  arb_store_get_stats (f->store, &before);
  g_usleep (1000 * 1000);

  commit_ok (f, order_txn ("a-1", 1, 2, t));
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (after.groups_failed, ==, before.groups_failed);
  g_assert_cmpuint (after.reconnects, >, before.reconnects);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM orders"), ==, 2);
}

/* ---- perf (-m perf) ------------------------------------------------------ */

static void
test_perf_throughput (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  guint n = 20000, window = 256, sent = 0;
  ArbStoreStats before, after;
  Waits w = { 0 };
  gint64 start, took;
  g_autoptr(ArbAssessmentRow) a = make_assessment ("a-1", t);

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  arb_store_get_stats (f->store, &before);
  start = g_get_monotonic_time ();
  /* @window orders in flight at any time, like that many clients; each is
   * what POST /orders commits: order, trade, position, outbox, assessment */
  while (w.done < n)
    {
      while (sent < n && sent - w.done < window)
        {
          ArbStoreTxn *txn = order_txn ("a-1", sent, sent + 1, t);
          a->version++;
          arb_store_txn_update_assessment (txn, a);
          commit_async (f, txn, &w, sent);
          sent++;
        }
      g_main_context_iteration (NULL, TRUE);
    }
  took = g_get_monotonic_time () - start;
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (w.failed, ==, 0);
  g_test_minimized_result (took / 1e6, "%s: %u order txns, %u in flight: %.0f txns/s, %" G_GUINT64_FORMAT
                           " groups (%.1f txns per group), %.2f ms per group",
                           f->backend, n, window, n * 1e6 / (double) took, after.groups - before.groups,
                           (double) n / (double) (after.groups - before.groups),
                           (after.group_us_total - before.group_us_total) / 1000.0 / (double) (after.groups - before.groups));
}

static int
cmp_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

static void
test_perf_trades (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  guint n = 100000, reads = 2000;
  g_autoptr(GArray) lat = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 seq = 0;

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  seed_assessment (f, "a-2", t);
  for (guint chunk = 0; chunk < n / 1000; chunk++)
    {
      ArbStoreTxn *txn = arb_store_txn_new ();
      for (guint i = 0; i < 1000; i++)
        {
          g_autofree char *id = g_strdup_printf ("t-%" G_GINT64_FORMAT, ++seq);
          g_autoptr(ArbTradeRow) tr = make_trade (id, seq, i % 10 == 9 ? "a-2" : "a-1", t + seq);
          arb_store_txn_insert_trade (txn, tr);
        }
      commit_ok (f, txn);
    }
  if (is_pg (f))
    g_free (raw_scalar (f, "SELECT count(*) FROM (SELECT 1 FROM trades) x")); /* warm */
  for (guint i = 0; i < reads; i++)
    {
      gint64 before = i % 4 == 0 ? 0 : g_random_int_range (1, (gint32) seq);
      gint64 start = g_get_monotonic_time (), took;
      g_autoptr(GPtrArray) page = fetch_page (f, "a-1", before, 50);
      took = g_get_monotonic_time () - start;
      g_array_append_val (lat, took);
    }
  g_array_sort (lat, cmp_gint64);
  g_test_minimized_result (g_array_index (lat, gint64, reads * 99 / 100) / 1000.0,
                           "%s: GET /trades store path, %u trades (90000 of a-1), limit 50: p50 %.3f ms, p99 %.3f ms, "
                           "max %.3f ms",
                           f->backend, n, g_array_index (lat, gint64, reads / 2) / 1000.0,
                           g_array_index (lat, gint64, reads * 99 / 100) / 1000.0,
                           g_array_index (lat, gint64, reads - 1) / 1000.0);
  g_assert_cmpint (g_array_index (lat, gint64, reads * 99 / 100), <=, 5000);
}

/* closed positions in pages after a cursor (closed_at, id), newest first:
 * ties on closed_at (one group closes several at once) are split by id */
static void
test_closed_pages (Fixture *f, gconstpointer data)
{
  gint64 t = now_us ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *after_id = NULL;
  ArbPositionCursor after = { 0 };
  ArbStoreTxn *txn;
  gint64 last_us = G_MAXINT64;
  g_autofree char *last_id = NULL;
  guint pages = 0, total = 0;
  /* 23 closed ones of a-1 at 8 instants (three at each, two at the last),
   * an open one and a closed one of a-2 */
  const guint mine = 23;

  fixture_open (f);
  seed_assessment (f, "a-1", t);
  seed_assessment (f, "a-2", t);
  txn = arb_store_txn_new ();
  for (guint i = 0; i < mine + 2; i++)
    {
      g_autofree char *id = g_strdup_printf ("p-%02u", (i * 7) % 25); /* ids not in time order */
      g_autoptr(ArbPositionRow) p = make_position (id, i < mine ? "a-1" : "a-2", t);
      if (i != mine)
        {
          p->status = ARB_POSITION_CLOSED;
          p->quantity = ARB_DECIMAL_ZERO;
          p->close_reason = g_strdup ("close");
          p->closed_us = t + 1000 * (i / 3);
          p->updated_us = p->closed_us;
        }
      arb_store_txn_upsert_position (txn, p);
    }
  commit_ok (f, txn);

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) page = arb_store_list_closed_positions_sync (f->store, "a-1", pages > 0 ? &after : NULL,
                                                                        4, &error);
      g_assert_no_error (error);
      pages++;
      for (guint i = 0; i < page->len; i++)
        {
          ArbPositionRow *p = g_ptr_array_index (page, i);
          g_assert_cmpstr (p->assessment_id, ==, "a-1");
          g_assert_cmpint (p->status, ==, ARB_POSITION_CLOSED);
          /* strictly after the one before, in (closed_at, id) descending */
          g_assert_true (p->closed_us < last_us || (p->closed_us == last_us && strcmp (p->id, last_id) < 0));
          g_assert_true (g_hash_table_add (seen, g_strdup (p->id)));
          last_us = p->closed_us;
          g_free (last_id);
          last_id = g_strdup (p->id);
          total++;
        }
      if (page->len < 4)
        break;
      g_free (after_id);
      after_id = g_strdup (last_id);
      after.closed_us = last_us;
      after.id = after_id;
    }
  g_assert_cmpuint (total, ==, mine);
  g_assert_cmpuint (pages, ==, mine / 4 + 1);

  /* a page reads the (assessment_id, closed_at) index from the cursor on */
  {
    g_autofree char *plan = raw_text (f, is_pg (f)
      ? "SET enable_seqscan = off; EXPLAIN SELECT id FROM positions WHERE assessment_id = 'a-1' "
        "AND status = 'closed' AND closed_at <= now () AND (closed_at < now () OR id < 'p-10') "
        "ORDER BY closed_at DESC, id DESC LIMIT 4"
      : "EXPLAIN QUERY PLAN SELECT id FROM positions WHERE assessment_id = 'a-1' AND status = 'closed' "
        "AND closed_at <= 1 AND (closed_at < 1 OR id < 'p-10') ORDER BY closed_at DESC, id DESC LIMIT 4");
    g_test_message ("%s", plan);
    g_assert_nonnull (strstr (plan, is_pg (f) ? "closed_at_idx" : "USING INDEX positions_closed_idx"));
  }
}

/* ---- main -------------------------------------------------------------- */

static void
add (const char *backend, const char *name, void (*func) (Fixture *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf ("/store/%s/%s", backend, name);
  g_test_add (path, Fixture, backend, fixture_setup, func, fixture_teardown);
}

int
main (int argc, char **argv)
{
  static const char *const backends[] = { "sqlite", "postgresql" };
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_log_set_writer_func (log_writer, NULL, NULL);

  g_test_add_func ("/store/uri", test_uri);
  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    {
      add (backends[i], "migrations", test_migrations);
      add (backends[i], "roundtrip", test_roundtrip);
      add (backends[i], "load", test_load);
      add (backends[i], "group-commit", test_group_commit);
      add (backends[i], "conflict-fails-alone", test_conflict_fails_alone);
      add (backends[i], "group-semantics", test_group_semantics);
      add (backends[i], "pagination", test_pagination);
      add (backends[i], "closed-pages", test_closed_pages);
      add (backends[i], "caller-context", test_caller_context);
      add (backends[i], "ledger-audit", test_ledger_audit);
      add (backends[i], "ledger-writers", test_ledger_writers_range);
      if (g_test_perf ())
        {
          add (backends[i], "perf/throughput", test_perf_throughput);
          add (backends[i], "perf/trades-100k", test_perf_trades);
        }
    }
  add ("sqlite", "unwritable-path", test_sqlite_unwritable);
  add ("postgresql", "partitions", test_pg_partitions);
  add ("postgresql", "serialization-retry", test_pg_serialization_retry);
  add ("postgresql", "dead-database", test_pg_dead_database);
  add ("postgresql", "background-writer", test_pg_background_writer);
  add ("postgresql", "outbox-commit-order", test_pg_outbox_commit_order);
  add ("postgresql", "idle-connection-closed", test_pg_idle_connection_closed);

  rc = g_test_run ();
  g_clear_pointer (&pg_server, arb_test_pg_free);
  return rc;
}
