/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The outbox relay (doc/outbox.md), with real parts only:
 *
 * - /outbox/store/...: the store's side (delivery rows, the pending rows of
 *   a sink after a position, the backlog count, the prune) against SQLite
 *   and a real PostgreSQL server (arb-test-pg);
 * - /outbox/host/...: the in-process host with its saga, the store and the
 *   sink-jsonl plugin on a path that stops being writable and heals;
 *   orders go through the saga, events come back from the sink's file;
 * - /outbox/kafka/...: the same against sink-kafka and librdkafka's mock
 *   cluster (tests/kafka-mock), read back with a real consumer;
 * - /outbox/daemon/...: the real arbiterd over its REST API, killed with
 *   SIGKILL while events are undelivered, started again. */

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libpq-fe.h>
#include <libsoup/soup.h>
#include <sqlite3.h>
#ifdef ARB_TEST_KAFKA
#include <librdkafka/rdkafka.h>
#endif

#include "arb-host-private.h"
#include "arb-outbox-private.h"
#include "arb-saga-private.h"
#include "arb-store-private.h"
#include "arb-test-daemon.h"
#include "arb-test-pg.h"

#define WAIT_US (30 * G_USEC_PER_SEC)

static ArbTestPg *pg_server;
static guint      db_counter;

static const char *
source_root (void)
{
  const char *root = g_getenv ("ARB_SOURCE_ROOT");
  return root != NULL ? root : ARB_SOURCE_ROOT;
}

static const char *
build_root (void)
{
  const char *root = g_getenv ("ARB_BUILD_ROOT");
  return root != NULL ? root : ARB_BUILD_ROOT;
}

static ArbTestPg *
pg (void)
{
  if (pg_server == NULL)
    {
      g_autoptr(GError) error = NULL;
      pg_server = arb_test_pg_new (&error);
      g_assert_no_error (error);
    }
  return pg_server;
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

/* ======================================================================== */
/* The store                                                                */

typedef struct {
  const char *backend;
  char       *dir;
  char       *uri;
  ArbStore   *store;
} StoreFx;

static gboolean
is_pg (StoreFx *f)
{
  return g_str_equal (f->backend, "postgresql");
}

static void
store_setup (StoreFx *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *migrations = g_build_filename (source_root (), "data", "migrations", NULL);

  f->backend = data;
  f->dir = g_dir_make_tmp ("arb-outbox-XXXXXX", &error);
  g_assert_no_error (error);
  if (is_pg (f))
    {
      g_autofree char *name = g_strdup_printf ("outbox_%u", ++db_counter);
      f->uri = arb_test_pg_create_database (pg (), name, &error);
      g_assert_no_error (error);
    }
  else
    f->uri = g_strdup ("sqlite:store.db");
  f->store = arb_store_open (f->uri, f->dir, migrations, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
  g_assert_cmpint (arb_store_schema_version (f->store), >=, 4);
}

static void
store_teardown (StoreFx *f, gconstpointer data)
{
  g_clear_pointer (&f->store, arb_store_free);
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->uri);
}

/* one number from the database, by SQL straight to it */
static gint64
raw_count (StoreFx *f, const char *sql)
{
  gint64 v = -1;

  if (is_pg (f))
    {
      PGconn *conn = PQconnectdb (f->uri);
      PGresult *res = PQexec (conn, sql);
      if (PQresultStatus (res) != PGRES_TUPLES_OK)
        g_error ("%s: %s", sql, PQresultErrorMessage (res));
      v = g_ascii_strtoll (PQgetvalue (res, 0, 0), NULL, 10);
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
      g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
      v = sqlite3_column_int64 (stmt, 0);
      sqlite3_finalize (stmt);
      sqlite3_close (db);
    }
  return v;
}

static void
commit_ok (StoreFx *f, ArbStoreTxn *txn)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (arb_store_commit_sync (f->store, txn, &error) || error != NULL);
  g_assert_no_error (error);
}

/* an outbox row as the saga writes it */
static void
add_event (ArbStoreTxn *txn, const char *id, const char *type, const char *assessment, gint64 at_us)
{
  ArbOutboxRow row = { 0 };
  g_autofree char *payload = g_strdup_printf ("{\"id\":\"%s\",\"type\":\"%s\",\"correlationId\":\"cid-%s\","
                                              "\"assessmentId\":\"%s\",\"data\":{}}",
                                              id, type, id, assessment);
  row.id = (char *) id;
  row.type = (char *) type;
  row.key = (char *) assessment;
  row.assessment_id = (char *) assessment;
  row.payload = payload;
  row.created_us = at_us;
  arb_store_txn_insert_outbox (txn, &row);
}

/* e1..e@n, types cycling through trade.executed, order.filled,
 * assessment.passed, assessments a and b, @at_us apart by a second */
static void
seed_events_named (StoreFx *f, const char *prefix, guint n, gint64 at_us)
{
  static const char *const types[] = { "trade.executed", "order.filled", "assessment.passed" };
  ArbStoreTxn *txn = arb_store_txn_new ();

  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *id = g_strdup_printf ("%s%u", prefix, i);
      add_event (txn, id, types[(i - 1) % 3], i % 2 ? "a" : "b", at_us + (gint64) i * G_USEC_PER_SEC);
    }
  commit_ok (f, txn);
}

static void
seed_events (StoreFx *f, guint n, gint64 at_us)
{
  seed_events_named (f, "e", n, at_us);
}

static void
mark (StoreFx *f, const char *sink, guint first, guint last)
{
  ArbStoreTxn *txn = arb_store_txn_new ();
  for (guint i = first; i <= last; i++)
    {
      g_autofree char *id = g_strdup_printf ("e%u", i);
      arb_store_txn_insert_delivery (txn, id, sink, arb_now_us ());
    }
  commit_ok (f, txn);
}

/* the ids of the pending rows, "e1 e3 ..." */
static char *
pending_ids (StoreFx *f, const char *sink, gint64 after, guint limit, gint64 *last_pos)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) rows = arb_store_outbox_pending_for_sink_sync (f->store, sink, after, limit, &error);
  g_autoptr(GString) s = g_string_new (NULL);
  gint64 prev = after;

  g_assert_no_error (error);
  for (guint i = 0; i < rows->len; i++)
    {
      ArbOutboxEntry *e = g_ptr_array_index (rows, i);
      g_assert_cmpint (e->pos, >, prev);
      prev = e->pos;
      g_assert_nonnull (strstr (e->row.payload, e->row.id));
      g_assert_cmpstr (e->row.key, ==, e->row.assessment_id);
      g_string_append_printf (s, "%s%s", s->len > 0 ? " " : "", e->row.id);
    }
  if (last_pos != NULL)
    *last_pos = prev;
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
test_store_pending (StoreFx *f, gconstpointer data)
{
  gint64 t = arb_now_us () - 60 * G_USEC_PER_SEC, pos = 0;
  g_autofree char *all = NULL, *page1 = NULL, *page2 = NULL, *left = NULL, *other = NULL;
  g_autoptr(GError) error = NULL;

  seed_events (f, 7, t);
  all = pending_ids (f, "sink:a", 0, 100, NULL);
  g_assert_cmpstr (all, ==, "e1 e2 e3 e4 e5 e6 e7");
  /* keyset pages by pos */
  page1 = pending_ids (f, "sink:a", 0, 3, &pos);
  g_assert_cmpstr (page1, ==, "e1 e2 e3");
  page2 = pending_ids (f, "sink:a", pos, 3, &pos);
  g_assert_cmpstr (page2, ==, "e4 e5 e6");

  /* delivery rows take events out for that sink only; marking twice, or an
   * event that does not exist, is no error */
  mark (f, "sink:a", 2, 4);
  mark (f, "sink:a", 3, 3);
  {
    ArbStoreTxn *txn = arb_store_txn_new ();
    arb_store_txn_insert_delivery (txn, "no-such-event", "sink:a", arb_now_us ());
    commit_ok (f, txn);
  }
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox_delivery"), ==, 3);
  left = pending_ids (f, "sink:a", 0, 100, NULL);
  g_assert_cmpstr (left, ==, "e1 e5 e6 e7");
  other = pending_ids (f, "sink:b", 0, 100, NULL);
  g_assert_cmpstr (other, ==, "e1 e2 e3 e4 e5 e6 e7");

  /* the backlog, per type, from a position */
  {
    g_autoptr(GPtrArray) b = arb_store_outbox_backlog_sync (f->store, "sink:a", 0, &error);
    g_assert_no_error (error);
    /* e1 trade, e5 order, e6 assessment, e7 trade: sorted by type */
    g_assert_cmpuint (b->len, ==, 3);
    g_assert_cmpstr (((ArbOutboxBacklog *) b->pdata[0])->type, ==, "assessment.passed");
    g_assert_cmpint (((ArbOutboxBacklog *) b->pdata[0])->count, ==, 1);
    g_assert_cmpint (((ArbOutboxBacklog *) b->pdata[0])->oldest_us, ==, t + 6 * G_USEC_PER_SEC);
    g_assert_cmpstr (((ArbOutboxBacklog *) b->pdata[2])->type, ==, "trade.executed");
    g_assert_cmpint (((ArbOutboxBacklog *) b->pdata[2])->count, ==, 2);
    g_assert_cmpint (((ArbOutboxBacklog *) b->pdata[2])->oldest_us, ==, t + 1 * G_USEC_PER_SEC);
  }
  {
    g_autoptr(GPtrArray) rows = arb_store_outbox_pending_for_sink_sync (f->store, "sink:a", 0, 1, &error);
    gint64 first = ((ArbOutboxEntry *) rows->pdata[0])->pos;
    g_autoptr(GPtrArray) b = arb_store_outbox_backlog_sync (f->store, "sink:a", first, &error);
    gint64 n = 0;
    g_assert_no_error (error);
    for (guint i = 0; i < b->len; i++)
      n += ((ArbOutboxBacklog *) b->pdata[i])->count;
    g_assert_cmpint (n, ==, 3);
  }
}

static gint64
prune (StoreFx *f, gint64 before_us, const char *const *sinks, const char *const *patterns, guint limit)
{
  g_autoptr(GError) error = NULL;
  gint64 n = arb_store_prune_outbox_sync (f->store, before_us, sinks, patterns, limit, &error);
  g_assert_no_error (error);
  return n;
}

static void
test_store_prune (StoreFx *f, gconstpointer data)
{
  gint64 t = arb_now_us () - G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC;
  /* sink:all takes everything, sink:trades only trade.executed, sink:asm
   * the assessment.* family */
  const char *const sinks[] = { "sink:all", "sink:trades", "sink:asm", NULL };
  const char *const patterns[] = { "*", "trade.executed", "assessment.*", NULL };
  g_autofree char *left = NULL;

  seed_events (f, 9, t);
  /* e1..e9: trade e1 e4 e7, order e2 e5 e8, assessment e3 e6 e9 */
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM assessment_events"), ==, 3);
  /* nothing delivered: nothing goes, however old */
  g_assert_cmpint (prune (f, arb_now_us (), sinks, patterns, 100), ==, 0);

  mark (f, "sink:all", 1, 9);
  /* the orders need sink:all only: e2 e5 e8 go */
  g_assert_cmpint (prune (f, arb_now_us (), sinks, patterns, 100), ==, 3);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox_delivery"), ==, 6);
  mark (f, "sink:trades", 1, 9); /* the marks of e2.. are gone or never were: no error */
  g_assert_cmpint (prune (f, arb_now_us (), sinks, patterns, 100), ==, 3);
  left = pending_ids (f, "sink:nobody", 0, 100, NULL);
  g_assert_cmpstr (left, ==, "e3 e6 e9");

  /* the retention: only rows created before the cut-off */
  mark (f, "sink:asm", 1, 9);
  g_assert_cmpint (prune (f, t + 6 * G_USEC_PER_SEC + 1, sinks, patterns, 100), ==, 2);
  /* the limit, oldest first */
  g_assert_cmpint (prune (f, arb_now_us (), sinks, patterns, 100), ==, 1);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox"), ==, 0);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox_delivery"), ==, 0);
  /* the assessment's own history stays */
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM assessment_events"), ==, 3);

  /* no sink takes ledger events: the retention alone decides, by batches */
  seed_events_named (f, "f", 5, t);
  g_assert_cmpint (prune (f, arb_now_us (), NULL, NULL, 2), ==, 2);
  g_assert_cmpint (prune (f, arb_now_us (), NULL, NULL, 2), ==, 2);
  g_assert_cmpint (prune (f, arb_now_us (), NULL, NULL, 2), ==, 1);
  g_assert_cmpint (prune (f, arb_now_us (), NULL, NULL, 2), ==, 0);
}

typedef struct {
  guint   done;
  gint64  deleted;
  GError *error;
} Waiter;

static void
commit_done (const GError *error, gpointer data)
{
  Waiter *w = data;
  g_assert_no_error (error);
  w->done++;
}

static void
prune_done (gint64 deleted, const GError *error, gpointer data)
{
  Waiter *w = data;
  g_assert_no_error (error);
  w->deleted = deleted;
  w->done++;
}

/* marks and a prune in one group (PostgreSQL's array statements), the prune
 * after the marks */
static void
test_store_group (StoreFx *f, gconstpointer data)
{
  gint64 t = arb_now_us () - G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC;
  const char *const sinks[] = { "sink:a", "sink:b", NULL };
  const char *const patterns[] = { "*", "*", NULL };
  Waiter w = { 0 };
  ArbStoreStats before, after;

  seed_events (f, 6, t);
  arb_store_get_stats (f->store, &before);
  arb_store_hold_writer (f->store, TRUE);
  for (guint i = 1; i <= 6; i++)
    {
      ArbStoreTxn *txn = arb_store_txn_new ();
      g_autofree char *id = g_strdup_printf ("e%u", i);
      arb_store_txn_insert_delivery (txn, id, "sink:a", arb_now_us ());
      if (i <= 4)
        arb_store_txn_insert_delivery (txn, id, "sink:b", arb_now_us ());
      /* and a duplicate in the same group */
      arb_store_txn_insert_delivery (txn, id, "sink:a", arb_now_us ());
      arb_store_commit_async (f->store, txn, commit_done, &w);
    }
  arb_store_prune_outbox_async (f->store, arb_now_us (), sinks, patterns, 100, prune_done, &w);
  arb_store_hold_writer (f->store, FALSE);
  while (w.done < 7)
    g_main_context_iteration (NULL, TRUE);
  arb_store_get_stats (f->store, &after);
  g_assert_cmpuint (after.groups - before.groups, ==, 1);
  g_assert_cmpint (w.deleted, ==, 4);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox"), ==, 2);
  g_assert_cmpint (raw_count (f, "SELECT count(*) FROM outbox_delivery"), ==, 2);
}

/* The relay's reads on an outbox of 200,000 delivered rows and a few
 * pending ones: the catch-up read at start (a scan from pos 0) and the
 * steady-state read from a cursor near the end. Printed, bounded loosely. */
static void
test_store_perf (StoreFx *f, gconstpointer data)
{
  gint64 t = arb_now_us () - G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC;
  guint n = 200000, chunk = 5000;
  gint64 t0, cold, warm, last = 0;
  g_autoptr(GError) error = NULL;

  for (guint c = 0; c < n / chunk; c++)
    {
      ArbStoreTxn *txn = arb_store_txn_new ();
      for (guint i = 0; i < chunk; i++)
        {
          g_autofree char *id = g_strdup_printf ("p%u", c * chunk + i);
          add_event (txn, id, "trade.executed", "a", t + c * chunk + i);
          arb_store_txn_insert_delivery (txn, id, "sink:a", t);
        }
      commit_ok (f, txn);
    }
  seed_events (f, 10, t);
  t0 = g_get_monotonic_time ();
  {
    g_autoptr(GPtrArray) rows = arb_store_outbox_pending_for_sink_sync (f->store, "sink:a", 0, 512, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (rows->len, ==, 10);
    last = ((ArbOutboxEntry *) rows->pdata[0])->pos - 1;
  }
  cold = g_get_monotonic_time () - t0;
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GPtrArray) rows = arb_store_outbox_pending_for_sink_sync (f->store, "sink:a", last, 512, &error);
      g_assert_cmpuint (rows->len, ==, 10);
    }
  warm = (g_get_monotonic_time () - t0) / 100;
  g_test_message ("%s: %u delivered rows: catch-up read from pos 0 %.1f ms, read from the cursor %.3f ms", f->backend,
                  n, cold / 1000.0, warm / 1000.0);
  g_assert_cmpint (warm, <, 50 * 1000);
  t0 = g_get_monotonic_time ();
  {
    const char *const sinks[] = { "sink:a", NULL };
    const char *const patterns[] = { "*", NULL };
    gint64 total = 0, got;
    while ((got = prune (f, arb_now_us (), sinks, patterns, 1000)) > 0)
      total += got;
    g_assert_cmpint (total, ==, n);
  }
  g_test_message ("%s: pruning %u rows in batches of 1000: %.0f ms", f->backend, n,
                  (g_get_monotonic_time () - t0) / 1000.0);
}


/* ======================================================================== */
/* The host: saga, store, relay and sink-jsonl in this process              */

#define MARKET "crypto:FIX-USD"

typedef struct {
  char    *dir;
  char    *conf;
  char    *out;     /* the sink's directory */
  char    *path;    /* the sink's file: out/events.jsonl */
  char    *log;
  ArbHost *host;    /* nullable */
  guint    breaks;  /* how often the path was broken (rotated files: events.jsonl.N) */
  const char *events; /* sink:jsonl's events=, "ledger" unless set */
} HostFx;

static void
host_setup (HostFx *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("arb-outbox-host-XXXXXX", &error);
  g_assert_no_error (error);
  fx->conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  fx->out = g_build_filename (fx->dir, "out", NULL);
  fx->path = g_build_filename (fx->out, "events.jsonl", NULL);
  fx->log = g_build_filename (fx->dir, "arbiterd.log", NULL);
}

static void
host_down (HostFx *fx)
{
  if (fx->host == NULL)
    return;
  arb_host_stop (fx->host);
  g_clear_pointer (&fx->host, arb_host_free);
}

static void
host_teardown (HostFx *fx, gconstpointer data)
{
  host_down (fx);
  arb_log_set_output_file (NULL);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->conf);
  g_free (fx->out);
  g_free (fx->path);
  g_free (fx->log);
}

/* [runtime] with @runtime_extra, a program, sink:jsonl (every ledger event)
 * with @sink_extra, then @groups */
static void
host_up (HostFx *fx, const char *runtime_extra, const char *sink_extra, const char *groups)
{
  g_autofree char *migrations = g_build_filename (source_root (), "data", "migrations", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "migrations_dir=%s\n"
                                           "shutdown_timeout=3s\n"
                                           "%s\n"
                                           "[program:test]\n"
                                           "starting_balance=1000000\n"
                                           "leverage=10\n"
                                           "\n"
                                           "[sink:jsonl]\n"
                                           "plugin=sink-jsonl\n"
                                           "path=out/events.jsonl\n"
                                           "events=%s\n"
                                           "%s\n"
                                           "%s",
                                           migrations, runtime_extra != NULL ? runtime_extra : "",
                                           fx->events != NULL ? fx->events : "ledger",
                                           sink_extra != NULL ? sink_extra : "fsync=always\n",
                                           groups != NULL ? groups : "");
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;

  g_assert_null (fx->host);
  g_assert_true (g_file_set_contents (fx->conf, text, -1, &error));
  arb_log_set_output_file (fx->log);
  fx->host = arb_host_new (fx->conf, problems, &error);
  all = arb_config_problems_join (problems);
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_true (arb_host_start (fx->host, &error));
  g_assert_no_error (error);
}

static ArbInstance *
sink (HostFx *fx, const char *name)
{
  ArbInstance *inst = arb_host_find_instance (fx->host, name);
  g_assert_nonnull (inst);
  return inst;
}

static gdouble
metric (HostFx *fx, const char *name, const char *instance)
{
  return arb_metrics_get (fx->host->metrics, name, sink (fx, instance)->labels);
}

typedef gboolean (*HostPredicate) (HostFx *fx, gconstpointer data);

/* runs the host's context until @pred holds */
static gboolean
host_wait (HostFx *fx, HostPredicate pred, gconstpointer data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (!pred (fx, data))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      while (g_main_context_iteration (fx->host->context, FALSE))
        ;
      g_usleep (2000);
    }
  return TRUE;
}

static gboolean
never (HostFx *fx, gconstpointer data)
{
  return FALSE;
}

static void
host_run_for (HostFx *fx, guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < until)
    {
      while (g_main_context_iteration (fx->host->context, FALSE))
        ;
      g_usleep (2000);
    }
  (void) never;
}

/* a fresh quote, so that orders find a price */
static void
quote (HostFx *fx)
{
  g_autoptr(ArbQuote) q = arb_quote_new (MARKET);
  arb_quote_set_bid (q, arb_decimal_from_raw (100 * ARB_DECIMAL_SCALE));
  arb_quote_set_ask (q, arb_decimal_from_raw (100 * ARB_DECIMAL_SCALE + ARB_DECIMAL_SCALE / 10));
  q->source = g_strdup ("test");
  q->receive_time_us = q->source_time_us = arb_now_us ();
  arb_price_book_update (fx->host->book, q);
}

typedef struct {
  gboolean done;
  char    *id;
  GError  *error;
} SagaWait;

static void
saga_done (ArbSagaResult *result, const GError *error, gpointer data)
{
  SagaWait *w = data;
  if (error != NULL)
    w->error = g_error_copy (error);
  else
    w->id = g_strdup (result->assessment->id);
  w->done = TRUE;
}

static gboolean
saga_finished (HostFx *fx, gconstpointer data)
{
  return ((const SagaWait *) data)->done;
}

static char *
create_assessment (HostFx *fx, const char *owner)
{
  SagaWait w = { 0 };
  g_autofree char *cid = g_strdup_printf ("cid-create-%s", owner);

  arb_saga_create_assessment (fx->host->saga, owner, "test", cid, saga_done, &w);
  g_assert_true (host_wait (fx, saga_finished, &w));
  g_assert_no_error (w.error);
  return w.id;
}

/* @n orders on each of @ids, interleaved, all in flight at once: each
 * commits with its three events (order.filled, trade.executed,
 * position.opened) */
static void
place_orders (HostFx *fx, char **ids, guint n)
{
  guint count = g_strv_length (ids) * n;
  g_autofree SagaWait *w = g_new0 (SagaWait, count);
  guint k = 0;

  quote (fx);
  for (guint r = 0; r < n; r++)
    for (guint a = 0; ids[a] != NULL; a++, k++)
      {
        ArbOrderRequest req = { 0 };
        g_autofree char *cid = g_strdup_printf ("cid-%s-%u", ids[a], r);
        req.user = g_strdup ("trader");
        req.assessment_id = g_strdup (ids[a]);
        req.market = g_strdup (MARKET);
        req.is_buy = r % 2 == 0;
        req.quantity = arb_decimal_from_raw (ARB_DECIMAL_SCALE);
        req.correlation_id = g_strdup (cid);
        arb_saga_place_order (fx->host->saga, &req, NULL, NULL, saga_done, &w[k]);
        arb_order_request_clear (&req);
      }
  for (k = 0; k < count; k++)
    {
      g_assert_true (host_wait (fx, saga_finished, &w[k]));
      g_assert_no_error (w[k].error);
      g_free (w[k].id);
    }
}

/* every row of the outbox, by pos (element-type ArbOutboxEntry) */
static GPtrArray *
outbox_rows (HostFx *fx)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *rows = arb_store_outbox_pending_for_sink_sync (fx->host->store, "sink:nobody", 0, 1000000, &error);
  g_assert_no_error (error);
  return rows;
}

static gint64
delivery_rows (HostFx *fx, const char *sink_name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = outbox_rows (fx);
  g_autoptr(GPtrArray) left = arb_store_outbox_pending_for_sink_sync (fx->host->store, sink_name, 0, 1000000, &error);
  g_assert_no_error (error);
  return (gint64) all->len - (gint64) left->len;
}

/* The sink's path stops being usable: the file is rotated away (the sink
 * notices within a second, on a write) and a directory takes its name, so
 * that opening it again fails (EISDIR; a read-only directory would not stop
 * root). */
static void
break_path (HostFx *fx)
{
  g_autofree char *rotated = g_strdup_printf ("%s.%u", fx->path, ++fx->breaks);
  if (g_file_test (fx->path, G_FILE_TEST_EXISTS))
    g_assert_cmpint (g_rename (fx->path, rotated), ==, 0);
  g_assert_cmpint (g_mkdir (fx->path, 0750), ==, 0);
}

static void
heal_path (HostFx *fx)
{
  g_assert_cmpint (g_rmdir (fx->path), ==, 0);
}

/* every whole line the sink wrote, oldest file first (element-type utf8) */
static GPtrArray *
sink_lines_at (const char *path, guint breaks)
{
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 1; i <= breaks + 1; i++)
    {
      g_autofree char *file = i <= breaks ? g_strdup_printf ("%s.%u", path, i) : g_strdup (path);
      g_autofree char *text = NULL;
      g_auto(GStrv) split = NULL;

      if (!g_file_test (file, G_FILE_TEST_IS_REGULAR) || !g_file_get_contents (file, &text, NULL, NULL))
        continue;
      split = g_strsplit (text, "\n", -1);
      /* a line counts once its newline is written: the text after the last
       * newline is a line the sink is still writing (a reader can see part
       * of a writev()), not one to parse yet */
      for (guint j = 0; split[j] != NULL && split[j + 1] != NULL; j++)
        if (*split[j] != '\0')
          g_ptr_array_add (lines, g_strdup (split[j]));
    }
  return lines;
}

static char *
json_member (const char *line, const char *name)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *o;

  json_parser_load_from_data (p, line, -1, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (p));
  return g_strdup (json_object_get_string_member_with_default (o, name, NULL));
}

/* The events of the outbox @expected (ArbOutboxEntry, by pos) against what a
 * consumer read (@got, ids in the order read, duplicates included): none
 * missing, nothing else, and per assessment, with the duplicates dropped,
 * in the outbox's order. Returns the number of duplicates. */
static guint
check_order (GPtrArray *expected, GPtrArray *got_ids, GPtrArray *got_assessments)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) want = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                      (GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GHashTable) have = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                      (GDestroyNotify) g_ptr_array_unref);
  GHashTableIter it;
  gpointer key, value;
  guint dups = 0;

  for (guint i = 0; i < expected->len; i++)
    {
      ArbOutboxEntry *e = g_ptr_array_index (expected, i);
      GPtrArray *list = g_hash_table_lookup (want, e->row.assessment_id);
      if (list == NULL)
        g_hash_table_insert (want, g_strdup (e->row.assessment_id), list = g_ptr_array_new ());
      g_ptr_array_add (list, e->row.id);
    }
  for (guint i = 0; i < got_ids->len; i++)
    {
      const char *id = g_ptr_array_index (got_ids, i);
      const char *aid = g_ptr_array_index (got_assessments, i);
      GPtrArray *list;
      if (g_hash_table_contains (seen, id))
        {
          dups++;
          continue;
        }
      g_hash_table_add (seen, (gpointer) id);
      list = g_hash_table_lookup (have, aid);
      if (list == NULL)
        g_hash_table_insert (have, g_strdup (aid), list = g_ptr_array_new ());
      g_ptr_array_add (list, (gpointer) id);
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, expected->len);
  g_assert_cmpuint (g_hash_table_size (have), ==, g_hash_table_size (want));
  g_hash_table_iter_init (&it, want);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      GPtrArray *w = value, *h = g_hash_table_lookup (have, key);
      g_assert_nonnull (h);
      g_assert_cmpuint (h->len, ==, w->len);
      for (guint i = 0; i < w->len; i++)
        g_assert_cmpstr (g_ptr_array_index (h, i), ==, g_ptr_array_index (w, i));
    }
  return dups;
}

/* the lines of the sink's files against the outbox */
static guint
check_file (HostFx *fx, GPtrArray *expected)
{
  g_autoptr(GPtrArray) lines = sink_lines_at (fx->path, fx->breaks);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) aids = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < lines->len; i++)
    {
      g_ptr_array_add (ids, json_member (g_ptr_array_index (lines, i), "id"));
      g_ptr_array_add (aids, json_member (g_ptr_array_index (lines, i), "assessmentId"));
    }
  return check_order (expected, ids, aids);
}

static gboolean
file_has_all (HostFx *fx, gconstpointer data)
{
  GPtrArray *expected = (GPtrArray *) data;
  g_autoptr(GPtrArray) lines = sink_lines_at (fx->path, fx->breaks);
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < lines->len; i++)
    g_hash_table_add (ids, json_member (g_ptr_array_index (lines, i), "id"));
  for (guint i = 0; i < expected->len; i++)
    if (!g_hash_table_contains (ids, ((ArbOutboxEntry *) g_ptr_array_index (expected, i))->row.id))
      return FALSE;
  return TRUE;
}

static gboolean
all_marked (HostFx *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) all = outbox_rows (fx);
  return delivery_rows (fx, data) == (gint64) all->len;
}

static gboolean
health_down (HostFx *fx, gconstpointer data)
{
  return arb_instance_get_health (sink (fx, data)) == ARB_HEALTH_DOWN;
}

static gboolean
is_ready (HostFx *fx)
{
  gboolean ready = FALSE;
  g_autofree char *json = arb_host_ready_json (fx->host, &ready);
  return ready;
}

static gboolean
not_ready (HostFx *fx, gconstpointer data)
{
  return !is_ready (fx);
}

static gboolean
lag_at_least (HostFx *fx, gconstpointer data)
{
  gint64 pending = 0;
  gdouble lag = 0;
  g_assert_true (arb_outbox_get_backlog (arb_relay_get_outbox (fx->host->relay), sink (fx, "sink:jsonl"), &pending,
                                         &lag));
  return pending > 0 && lag >= *(const gdouble *) data;
}

static gboolean
caught_up (HostFx *fx, gconstpointer data)
{
  gint64 pending = -1;
  gdouble lag = -1;
  arb_outbox_get_backlog (arb_relay_get_outbox (fx->host->relay), sink (fx, data), &pending, &lag);
  return pending == 0 && lag == 0 && metric (fx, "arb_sink_outbox_pending", data) == 0
         && metric (fx, "arb_outbox_lag_seconds", data) == 0;
}

/* the counter moves when the store answered, after the rows are in */
static gboolean
delivered_metric_is (HostFx *fx, gconstpointer data)
{
  return metric (fx, "arb_outbox_delivered_total", "sink:jsonl") == GPOINTER_TO_UINT (data);
}

/* Orders for three assessments; the sink's path breaks (writes fail: EISDIR)
 * and more orders come; nothing of those is marked delivered, the sink is
 * down and, being required, makes the daemon not ready; the backlog and its
 * lag are counted. The path heals: every event arrives, in order per
 * assessment, each marked delivered once. */
static void
test_host_outage (HostFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 4);
  g_autoptr(GPtrArray) before = NULL;
  g_autoptr(GPtrArray) all = NULL;
  gdouble lag_min = 1.5;
  gint64 marked;
  guint dups;

  host_up (fx, NULL, "fsync=always\nrequired=true\n", NULL);
  g_assert_true (is_ready (fx));
  for (guint i = 0; i < 3; i++)
    ids[i] = create_assessment (fx, "trader");
  place_orders (fx, ids, 4);
  before = outbox_rows (fx);
  g_assert_cmpuint (before->len, ==, 3 + 3 * 4 * 3);
  g_assert_true (host_wait (fx, file_has_all, before));
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  g_assert_true (host_wait (fx, caught_up, "sink:jsonl"));

  /* the outage */
  break_path (fx);
  host_run_for (fx, 1100); /* the sink looks at its path at most once a second */
  place_orders (fx, ids, 6);
  g_assert_true (host_wait (fx, health_down, "sink:jsonl"));
  g_assert_true (host_wait (fx, not_ready, NULL));
  g_assert_true (host_wait (fx, lag_at_least, &lag_min));
  all = outbox_rows (fx);
  marked = delivery_rows (fx, "sink:jsonl");
  g_test_message ("during the outage: %" G_GINT64_FORMAT " of %u marked; pending %.0f, lag %.1f s, failed %.0f",
                  marked, all->len, metric (fx, "arb_sink_outbox_pending", "sink:jsonl"),
                  metric (fx, "arb_outbox_lag_seconds", "sink:jsonl"),
                  metric (fx, "arb_sink_failed_total", "sink:jsonl"));
  g_assert_cmpint (marked, <, all->len);
  g_assert_cmpfloat (metric (fx, "arb_sink_outbox_pending", "sink:jsonl"), ==, all->len - marked);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total", "sink:jsonl"), >, 0);

  /* healed */
  heal_path (fx);
  g_assert_true (host_wait (fx, file_has_all, all));
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  g_assert_true (host_wait (fx, caught_up, "sink:jsonl"));
  g_assert_true (host_wait (fx, delivered_metric_is, GUINT_TO_POINTER (all->len)));
  g_assert_true (is_ready (fx));
  dups = check_file (fx, all);
  g_test_message ("after the outage: %u events, %u delivered twice; delivered %.0f, redelivered %.0f", all->len, dups,
                  metric (fx, "arb_outbox_delivered_total", "sink:jsonl"),
                  metric (fx, "arb_outbox_redelivered_total", "sink:jsonl"));
  g_assert_cmpfloat (metric (fx, "arb_outbox_delivered_total", "sink:jsonl"), ==, all->len);
  g_assert_cmpfloat (metric (fx, "arb_outbox_redelivered_total", "sink:jsonl"), >, 0);
}

/* stopped with events undelivered (the path broken), started again healed:
 * the new host delivers what the old one could not, oldest first */
static void
test_host_restart (HostFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 3);
  g_autoptr(GPtrArray) all = NULL;
  guint dups;

  host_up (fx, NULL, NULL, NULL);
  ids[0] = create_assessment (fx, "trader");
  ids[1] = create_assessment (fx, "trader");
  place_orders (fx, ids, 3);
  break_path (fx);
  host_run_for (fx, 1100);
  place_orders (fx, ids, 5);
  g_assert_true (host_wait (fx, health_down, "sink:jsonl"));
  all = outbox_rows (fx);
  g_assert_cmpint (delivery_rows (fx, "sink:jsonl"), <, all->len);
  host_down (fx);

  heal_path (fx);
  host_up (fx, NULL, NULL, NULL);
  g_assert_true (host_wait (fx, file_has_all, all));
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  dups = check_file (fx, all);
  g_test_message ("%u events, %u delivered twice", all->len, dups);
}


/* a host on a database of its own on the test PostgreSQL */
static void
host_up_pg (HostFx *fx, const char *runtime_extra)
{
  g_autofree char *name = g_strdup_printf ("outbox_%u", ++db_counter);
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = arb_test_pg_create_database (pg (), name, &error);
  g_autofree char *runtime = NULL;

  g_assert_no_error (error);
  runtime = g_strdup_printf ("store=%s\n%s", uri, runtime_extra != NULL ? runtime_extra : "");
  host_up (fx, runtime, NULL, NULL);
}

/* Two ledger writers: orders of eight assessments commit on two connections
 * in any order; the relay, reading only up to the lowest pos in flight,
 * hands every event to the sink once, and each assessment's in order */
static void
test_host_pg_two_writers (HostFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 9);
  g_autoptr(GPtrArray) all = NULL;
  ArbStoreStats stats;
  guint dups;

  host_up_pg (fx, "store_ledger_writers=2\n");
  for (guint i = 0; i < 8; i++)
    ids[i] = create_assessment (fx, "trader");
  for (guint round = 0; round < 4; round++)
    place_orders (fx, ids, 5);
  all = outbox_rows (fx);
  g_assert_cmpuint (all->len, >=, 8 * 20);
  g_assert_true (host_wait (fx, file_has_all, all));
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  dups = check_file (fx, all);
  g_assert_cmpuint (dups, ==, 0);
  arb_store_get_stats (fx->host->store, &stats);
  g_test_message ("%u events over %" G_GUINT64_FORMAT " groups", all->len, (guint64) stats.groups);
}

/* PostgreSQL goes away while delivery rows wait to be written: they are
 * kept and written once it is back; the relay reads on after it */
static void
test_host_pg_outage (HostFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) first = NULL;
  g_autoptr(GPtrArray) all = NULL;

  host_up_pg (fx, NULL);
  ids[0] = create_assessment (fx, "trader");
  ids[1] = create_assessment (fx, "trader");
  place_orders (fx, ids, 3);
  first = outbox_rows (fx);
  /* delivered, but their rows wait behind a held writer */
  arb_store_hold_writer (fx->host->store, TRUE);
  g_assert_true (host_wait (fx, file_has_all, first));
  host_run_for (fx, 300);
  g_assert_true (arb_test_pg_stop (pg (), &error));
  g_assert_no_error (error);
  arb_store_hold_writer (fx->host->store, FALSE);
  host_run_for (fx, 500);
  g_assert_true (arb_test_pg_start (pg (), &error));
  g_assert_no_error (error);
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));

  place_orders (fx, ids, 3);
  all = outbox_rows (fx);
  g_assert_true (host_wait (fx, file_has_all, all));
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  check_file (fx, all);
  g_assert_true (host_wait (fx, delivered_metric_is, GUINT_TO_POINTER (all->len)));
}


static gdouble
cpu_seconds (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return (gdouble) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* What the outbox costs: the process's CPU time (every thread: saga, store
 * writer and readers, relay, sink) per order, with a sink that takes the
 * ledger events (fsync=never) and with one that takes none, alternately. */
static void
test_host_perf (HostFx *fx, gconstpointer data)
{
  static const char *const variants[] = { "quote", "ledger" };
  gdouble per_order[2][3];

  for (guint round = 0; round < 3; round++)
    for (guint v = 0; v < 2; v++)
      {
        g_auto(GStrv) ids = g_new0 (char *, 11);
        g_autoptr(GPtrArray) all = NULL;
        gdouble t0;
        guint orders = 0;

        fx->events = variants[v];
        host_up (fx, NULL, "fsync=never\n", NULL);
        for (guint i = 0; i < 10; i++)
          ids[i] = create_assessment (fx, "trader");
        host_run_for (fx, 200);
        t0 = cpu_seconds ();
        for (guint batch = 0; batch < 50; batch++, orders += 10 * 4)
          place_orders (fx, ids, 4);
        if (v == 1)
          {
            all = outbox_rows (fx);
            g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
          }
        per_order[v][round] = (cpu_seconds () - t0) * 1e6 / orders;
        host_down (fx);
        remove_tree (fx->out);
        {
          g_autofree char *state = g_build_filename (fx->dir, "state", NULL);
          remove_tree (state);
        }
      }
  g_test_message ("CPU per order, no ledger sink: %.0f %.0f %.0f us; a ledger sink: %.0f %.0f %.0f us", per_order[0][0],
                  per_order[0][1], per_order[0][2], per_order[1][0], per_order[1][1], per_order[1][2]);
}

static gboolean
outbox_size_is (HostFx *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) all = outbox_rows (fx);
  return all->len == GPOINTER_TO_UINT (data);
}

static gboolean
pruned_at_least (HostFx *fx, gconstpointer data)
{
  return arb_metrics_get (fx->host->metrics, "arb_outbox_pruned_total", NULL) >= GPOINTER_TO_UINT (data);
}

/* a tiny retention: delivered rows go; what a sink still lacks stays until
 * it has it; a type no sink takes goes after the retention alone */
static void
test_host_prune (HostFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 2);
  g_autoptr(GPtrArray) kept = NULL;

  /* sink:audit takes the assessment events only */
  host_up (fx, "outbox_retention=300ms\n", NULL,
           "[sink:audit]\nplugin=sink-jsonl\npath=audit/a.jsonl\nfsync=always\nevents=assessment.*\n");
  ids[0] = create_assessment (fx, "trader");
  place_orders (fx, ids, 3);
  g_assert_true (host_wait (fx, all_marked, "sink:jsonl"));
  /* assessment.created waits for sink:audit; it had it: everything goes */
  g_assert_true (host_wait (fx, outbox_size_is, GUINT_TO_POINTER (0)));
  g_assert_true (host_wait (fx, pruned_at_least, GUINT_TO_POINTER (1 + 3 * 3)));
  g_assert_cmpfloat (arb_metrics_get (fx->host->metrics, "arb_outbox_pruned_total", NULL), ==, 1 + 3 * 3);

  /* sink:jsonl down: its rows stay past the retention */
  break_path (fx);
  host_run_for (fx, 1100);
  place_orders (fx, ids, 2);
  g_assert_true (host_wait (fx, health_down, "sink:jsonl"));
  host_run_for (fx, 1000);
  kept = outbox_rows (fx);
  g_test_message ("kept while sink:jsonl is down: %u rows", kept->len);
  g_assert_cmpuint (kept->len, >, 0);
  heal_path (fx);
  g_assert_true (host_wait (fx, outbox_size_is, GUINT_TO_POINTER (0)));
}



/* ======================================================================== */
/* sink-kafka against librdkafka's mock cluster                             */

#ifdef ARB_TEST_KAFKA

typedef struct {
  HostFx            h;
  char             *prefix;
  GSubprocess      *mock;
  GOutputStream    *mock_in;  /* borrowed */
  GDataInputStream *mock_out;
  char             *bootstrap;
} KafkaFx;

static char *
mock_read_line (KafkaFx *fx)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line_utf8 (fx->mock_out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

static void
mock_command (KafkaFx *fx, const char *command)
{
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  g_autofree char *answer = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_output_stream_write_all (fx->mock_in, line, strlen (line), NULL, NULL, &error));
  g_assert_true (g_output_stream_flush (fx->mock_in, NULL, &error));
  g_assert_no_error (error);
  answer = mock_read_line (fx);
  g_test_message ("kafka-mock: %s -> %s", command, answer);
  g_assert_cmpstr (answer, ==, "ok");
}

static void
kafka_setup (KafkaFx *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  static guint counter;

  host_setup (&fx->h, data);
  fx->prefix = g_strdup_printf ("ob%u-%u", (guint) getpid (), ++counter);
  fx->mock = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, KAFKA_MOCK,
                               "--brokers", "3", "--partitions", "4", "--topics", fx->prefix, NULL);
  g_assert_no_error (error);
  fx->mock_in = g_subprocess_get_stdin_pipe (fx->mock);
  fx->mock_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fx->mock));
  first = mock_read_line (fx);
  g_assert_true (g_str_has_prefix (first, "bootstrap "));
  fx->bootstrap = g_strdup (first + strlen ("bootstrap "));
}

static void
kafka_teardown (KafkaFx *fx, gconstpointer data)
{
  host_teardown (&fx->h, data);
  g_output_stream_close (fx->mock_in, NULL, NULL);
  g_subprocess_wait (fx->mock, NULL, NULL);
  g_clear_object (&fx->mock_out);
  g_clear_object (&fx->mock);
  g_free (fx->prefix);
  g_free (fx->bootstrap);
}

typedef struct {
  char *key;
  char *id;
  char *cid;
  char *value;
} Msg;

static void
msg_free (Msg *m)
{
  g_free (m->key);
  g_free (m->id);
  g_free (m->cid);
  g_free (m->value);
  g_free (m);
}

static char *
header (rd_kafka_headers_t *hdrs, const char *name)
{
  const void *value = NULL;
  size_t size = 0;

  if (hdrs == NULL || rd_kafka_header_get_last (hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return NULL;
  return g_strndup (value, size);
}

/* every message of PREFIX.events from the start, until @expect distinct
 * events came and a little longer (to see duplicates) */
static GPtrArray *
consume (KafkaFx *fx, guint expect)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) msg_free);
  g_autoptr(GHashTable) distinct = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *topic = g_strdup_printf ("%s.events", fx->prefix);
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new (8);
  rd_kafka_topic_t *rkt;
  const struct rd_kafka_metadata *md = NULL;
  char errstr[512];
  rd_kafka_t *rk;
  gint64 deadline, settle = 0;

  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", fx->bootstrap, errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "group.id", "outbox-reader", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "2", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);
  rkt = rd_kafka_topic_new (rk, topic, NULL);
  g_assert_cmpint (rd_kafka_metadata (rk, 0, rkt, &md, 5000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int p = 0; p < md->topics[0].partition_cnt; p++)
    rd_kafka_topic_partition_list_add (parts, topic, md->topics[0].partitions[p].id)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_metadata_destroy (md);
  rd_kafka_topic_destroy (rkt);
  g_assert_cmpint (rd_kafka_assign (rk, parts), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy (parts);

  deadline = g_get_monotonic_time () + WAIT_US;
  while (g_get_monotonic_time () < deadline && (settle == 0 || g_get_monotonic_time () < settle))
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, 100);
      rd_kafka_headers_t *hdrs = NULL;
      Msg *msg;

      if (m == NULL)
        continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          rd_kafka_message_destroy (m);
          continue;
        }
      msg = g_new0 (Msg, 1);
      msg->key = g_strndup (m->key, m->key_len);
      msg->value = g_strndup (m->payload, m->len);
      if (rd_kafka_message_headers (m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          msg->id = header (hdrs, "event-id");
          msg->cid = header (hdrs, "correlation-id");
        }
      g_assert_nonnull (msg->id);
      g_hash_table_add (distinct, g_strdup (msg->id));
      g_ptr_array_add (out, msg);
      rd_kafka_message_destroy (m);
      if (g_hash_table_size (distinct) >= expect && settle == 0)
        settle = g_get_monotonic_time () + 500 * 1000;
    }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return out;
}

static gboolean
kafka_marked (HostFx *h, gconstpointer data)
{
  return all_marked (h, "sink:kafka");
}

/* Orders while every broker is away for longer than delivery_timeout: the
 * sink fails the events on their delivery reports, the outbox keeps them
 * and hands them over again with a backoff; the brokers come back: every
 * ledger event is in the topic, per assessment (one key, one partition) in
 * the outbox's order, each with its correlation id. */
static void
test_kafka_outage (KafkaFx *fx, gconstpointer data)
{
  HostFx *h = &fx->h;
  g_auto(GStrv) ids = g_new0 (char *, 4);
  g_autofree char *group = g_strdup_printf ("[sink:kafka]\nplugin=sink-kafka\nbrokers=%s\ntopic_prefix=%s\n"
                                            "topics=single\nlinger_ms=2\nevents=ledger\ndelivery_timeout=1s\n"
                                            "down_after=500ms\n",
                                            fx->bootstrap, fx->prefix);
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GPtrArray) got = NULL;
  g_autoptr(GPtrArray) got_ids = g_ptr_array_new ();
  g_autoptr(GPtrArray) got_keys = g_ptr_array_new ();
  gdouble lag_min = 1.0;
  guint dups;

  host_up (h, NULL, NULL, group);
  for (guint i = 0; i < 3; i++)
    ids[i] = create_assessment (h, "trader");
  place_orders (h, ids, 3);
  g_assert_true (host_wait (h, kafka_marked, NULL));

  mock_command (fx, "down-all");
  place_orders (h, ids, 5);
  g_assert_true (host_wait (h, health_down, "sink:kafka"));
  {
    /* the lag of sink:kafka grows while sink:jsonl keeps up */
    gint64 pending = 0;
    gdouble lag = 0;
    gint64 until = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
    while (g_get_monotonic_time () < until)
      {
        arb_outbox_get_backlog (arb_relay_get_outbox (h->host->relay), sink (h, "sink:kafka"), &pending, &lag);
        if (pending > 0 && lag >= lag_min && metric (h, "arb_sink_failed_total", "sink:kafka") > 0)
          break;
        host_run_for (h, 50);
      }
    g_test_message ("brokers down: pending %" G_GINT64_FORMAT ", lag %.1f s, failed %.0f", pending, lag,
                    metric (h, "arb_sink_failed_total", "sink:kafka"));
    g_assert_cmpint (pending, >, 0);
    g_assert_cmpfloat (lag, >=, lag_min);
    g_assert_cmpfloat (metric (h, "arb_sink_failed_total", "sink:kafka"), >, 0);
  }
  g_assert_true (host_wait (h, all_marked, "sink:jsonl"));

  mock_command (fx, "up-all");
  g_assert_true (host_wait (h, kafka_marked, NULL));
  g_assert_true (host_wait (h, caught_up, "sink:kafka"));
  all = outbox_rows (h);
  got = consume (fx, all->len);
  for (guint i = 0; i < got->len; i++)
    {
      Msg *m = g_ptr_array_index (got, i);
      g_autofree char *cid = json_member (m->value, "correlationId");
      g_autofree char *id = json_member (m->value, "id");
      g_assert_cmpstr (m->id, ==, id);
      g_assert_cmpstr (m->cid, ==, cid);
      g_assert_nonnull (m->cid);
      g_ptr_array_add (got_ids, m->id);
      g_ptr_array_add (got_keys, m->key);
    }
  dups = check_order (all, got_ids, got_keys);
  g_test_message ("%u events, %u messages, %u duplicates; redelivered %.0f", all->len, got->len, dups,
                  metric (h, "arb_outbox_redelivered_total", "sink:kafka"));
}

#endif

/* ======================================================================== */
/* The real arbiterd, killed with SIGKILL                                   */

typedef struct {
  char          *dir;
  char          *conf;
  char          *db;
  char          *path;    /* the sink's file */
  guint          breaks;
  SoupSession   *session;
  ArbTestDaemon *d;       /* nullable */
  char          *admin;
  char          *trader;
} DaemonFx;

static void
daemon_setup (DaemonFx *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *migrations = g_build_filename (source_root (), "data", "migrations", NULL);
  g_autofree char *secret = NULL;
  g_autofree char *feed = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GString) quotes = g_string_new (NULL);

  fx->dir = g_dir_make_tmp ("arb-outbox-daemon-XXXXXX", &error);
  g_assert_no_error (error);
  fx->conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  fx->db = g_build_filename (fx->dir, "ledger.db", NULL);
  fx->path = g_build_filename (fx->dir, "out", "events.jsonl", NULL);
  secret = g_build_filename (fx->dir, "jwt-secret", NULL);
  feed = g_build_filename (fx->dir, "fixed.jsonl", NULL);
  g_assert_true (g_file_set_contents (secret, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
                                      -1, &error));
  for (guint at = 0; at <= 800; at += 200)
    g_string_append_printf (quotes, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"" MARKET "\","
                            "\"bid\":\"100\",\"ask\":\"100.1\"}\n", at);
  g_assert_true (g_file_set_contents (feed, quotes->str, -1, &error));
  text = g_strdup_printf ("[runtime]\n"
                          "listen=127.0.0.1:0\n"
                          "state_dir=%s/state\n"
                          "store=sqlite:%s\n"
                          "migrations_dir=%s\n"
                          "shutdown_timeout=3s\n"
                          "\n"
                          "[api]\n"
                          "jwt_alg=HS256\n"
                          "jwt_secret_file=%s\n"
                          "\n"
                          "[program:test]\n"
                          "starting_balance=1000000\n"
                          "leverage=10\n"
                          "\n"
                          "[ingest:fixed]\n"
                          "plugin=ingest-replay\n"
                          "dir=%s\n"
                          "files=fixed.jsonl\n"
                          "loop=true\n"
                          "\n"
                          "[sink:events]\n"
                          "plugin=sink-jsonl\n"
                          "path=%s\n"
                          "fsync=always\n"
                          "events=ledger\n"
                          "required=true\n",
                          fx->dir, fx->db, migrations, secret, fx->dir, fx->path);
  g_assert_true (g_file_set_contents (fx->conf, text, -1, &error));
  fx->session = arb_test_session_new ();
  fx->admin = arb_test_mint_token (fx->conf, "boss", TRUE);
  fx->trader = arb_test_mint_token (fx->conf, "trader", FALSE);
  g_assert_nonnull (fx->admin);
  g_assert_nonnull (fx->trader);
}

static void
daemon_teardown (DaemonFx *fx, gconstpointer data)
{
  g_clear_pointer (&fx->d, arb_test_daemon_free);
  g_clear_object (&fx->session);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->conf);
  g_free (fx->db);
  g_free (fx->path);
  g_free (fx->admin);
  g_free (fx->trader);
}

static void
daemon_up (DaemonFx *fx)
{
  g_assert_null (fx->d);
  fx->d = arb_test_daemon_start (fx->conf, NULL);
  g_assert_nonnull (fx->d);
}

static char *
rest_create_assessment (DaemonFx *fx)
{
  g_autoptr(ArbTestReply) r = arb_test_http_request (fx->session, fx->d, "POST", "/assessments", fx->admin,
                                                     "{\"userId\":\"trader\",\"program\":\"test\"}");
  g_assert_cmpuint (r->status, ==, 201);
  return json_member (r->body, "id");
}

/* one order; a 503 while the first quote has not come is tried again */
static void
rest_order (DaemonFx *fx, const char *aid, gboolean buy)
{
  g_autofree char *body = g_strdup_printf ("{\"assessmentId\":\"%s\",\"market\":\"" MARKET "\",\"side\":\"%s\","
                                           "\"quantity\":\"1\"}", aid, buy ? "buy" : "sell");
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr(ArbTestReply) r = arb_test_http_request (fx->session, fx->d, "POST", "/orders", fx->trader, body);
      if (r->status == 503 && attempt < 100)
        {
          arb_test_run_for (50);
          continue;
        }
      if (r->status != 201)
        g_test_message ("POST /orders: %u %s", r->status, r->body);
      g_assert_cmpuint (r->status, ==, 201);
      return;
    }
}

/* the outbox as the daemon's database holds it, by pos (ArbOutboxEntry),
 * and how many of its rows @sink_name has a delivery row for */
static GPtrArray *
db_outbox (DaemonFx *fx, const char *sink_name, gint64 *delivered)
{
  GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_entry_free);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open_v2 (fx->db, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT pos, id, assessment_id, (SELECT count(*) FROM outbox_delivery d "
                                           "WHERE d.event_id = o.id AND d.sink = ?1) FROM outbox o ORDER BY pos",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, sink_name, -1, SQLITE_STATIC);
  *delivered = 0;
  while (sqlite3_step (stmt) == SQLITE_ROW)
    {
      ArbOutboxEntry *e = g_new0 (ArbOutboxEntry, 1);
      e->pos = sqlite3_column_int64 (stmt, 0);
      e->row.id = g_strdup ((const char *) sqlite3_column_text (stmt, 1));
      e->row.assessment_id = g_strdup ((const char *) sqlite3_column_text (stmt, 2));
      *delivered += sqlite3_column_int64 (stmt, 3);
      g_ptr_array_add (rows, e);
    }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return rows;
}

typedef struct {
  DaemonFx  *fx;
  GPtrArray *expected;
} FileWait;

static gboolean
daemon_file_has_all (gpointer data)
{
  FileWait *w = data;
  g_autoptr(GPtrArray) lines = sink_lines_at (w->fx->path, w->fx->breaks);
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < lines->len; i++)
    g_hash_table_add (ids, json_member (g_ptr_array_index (lines, i), "id"));
  for (guint i = 0; i < w->expected->len; i++)
    if (!g_hash_table_contains (ids, ((ArbOutboxEntry *) g_ptr_array_index (w->expected, i))->row.id))
      return FALSE;
  return TRUE;
}

static gboolean
daemon_not_ready (gpointer data)
{
  DaemonFx *fx = data;
  g_autoptr(ArbTestReply) r = arb_test_http_get (fx->session, fx->d, "/ready");
  return r->status == 503;
}

static gboolean
daemon_all_marked (gpointer data)
{
  DaemonFx *fx = data;
  gint64 delivered = 0;
  g_autoptr(GPtrArray) rows = db_outbox (fx, "sink:events", &delivered);
  return delivered == (gint64) rows->len;
}

static void
daemon_orders (DaemonFx *fx, char **ids, guint n)
{
  for (guint r = 0; r < n; r++)
    for (guint a = 0; ids[a] != NULL; a++)
      rest_order (fx, ids[a], r % 2 == 0);
}

static void
test_daemon_kill9 (DaemonFx *fx, gconstpointer data)
{
  g_auto(GStrv) ids = g_new0 (char *, 3);
  g_autoptr(GPtrArray) lines = NULL;
  g_autoptr(GPtrArray) got_ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) got_aids = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *all = NULL;
  FileWait w = { fx, NULL };
  gint64 delivered = 0;
  guint dups;

  daemon_up (fx);
  ids[0] = rest_create_assessment (fx);
  ids[1] = rest_create_assessment (fx);
  daemon_orders (fx, ids, 3);
  w.expected = db_outbox (fx, "sink:events", &delivered);
  g_assert_true (arb_test_wait_for (daemon_file_has_all, &w, 20000));
  g_ptr_array_unref (w.expected);

  /* the sink's path breaks; orders go on; SIGKILL with events undelivered */
  {
    g_autofree char *rotated = g_strdup_printf ("%s.%u", fx->path, ++fx->breaks);
    g_assert_cmpint (g_rename (fx->path, rotated), ==, 0);
    g_assert_cmpint (g_mkdir (fx->path, 0750), ==, 0);
  }
  arb_test_run_for (1100);
  daemon_orders (fx, ids, 4);
  g_assert_true (arb_test_wait_for (daemon_not_ready, fx, 20000));
  g_clear_pointer (&fx->d, arb_test_daemon_free); /* SIGKILL */
  all = db_outbox (fx, "sink:events", &delivered);
  g_test_message ("killed with %" G_GINT64_FORMAT " of %u events delivered", delivered, all->len);
  g_assert_cmpint (delivered, <, all->len);
  g_assert_cmpuint (all->len, ==, 2 + 2 * 7 * 3);

  /* healed and started again: what was not delivered arrives */
  g_assert_cmpint (g_rmdir (fx->path), ==, 0);
  daemon_up (fx);
  w.expected = all;
  g_assert_true (arb_test_wait_for (daemon_file_has_all, &w, 20000));
  g_assert_true (arb_test_wait_for (daemon_all_marked, fx, 20000));
  lines = sink_lines_at (fx->path, fx->breaks);
  for (guint i = 0; i < lines->len; i++)
    {
      g_ptr_array_add (got_ids, json_member (g_ptr_array_index (lines, i), "id"));
      g_ptr_array_add (got_aids, json_member (g_ptr_array_index (lines, i), "assessmentId"));
    }
  dups = check_order (all, got_ids, got_aids);
  g_test_message ("%u events, %u delivered twice", all->len, dups);
  g_assert_cmpint (arb_test_daemon_terminate (fx->d), ==, 0);
  g_clear_pointer (&fx->d, arb_test_daemon_free);
  g_ptr_array_unref (all);
}

/* ======================================================================== */
/* main                                                                     */

static void
add_store (const char *backend, const char *name, void (*func) (StoreFx *, gconstpointer))
{
  g_autofree char *path = g_strdup_printf ("/outbox/store/%s/%s", backend, name);
  g_test_add (path, StoreFx, backend, store_setup, func, store_teardown);
}

int
main (int argc, char **argv)
{
  static const char *const backends[] = { "sqlite", "postgresql" };
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* no GSettings in the isolated directories: no system proxy lookup */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("ARBITER_PLUGIN_PATH", g_build_filename (build_root (), "plugins", NULL), FALSE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (backends); i++)
    {
      add_store (backends[i], "pending-and-marks", test_store_pending);
      add_store (backends[i], "prune", test_store_prune);
      add_store (backends[i], "one-group", test_store_group);
      if (g_test_perf ())
        add_store (backends[i], "perf", test_store_perf);
    }

#define ADD_HOST(path, func) g_test_add (path, HostFx, NULL, host_setup, func, host_teardown)
  ADD_HOST ("/outbox/host/jsonl/outage-healed", test_host_outage);
  ADD_HOST ("/outbox/host/jsonl/restart", test_host_restart);
  ADD_HOST ("/outbox/host/jsonl/prune", test_host_prune);
  ADD_HOST ("/outbox/host/postgresql/store-away-while-marking", test_host_pg_outage);
  ADD_HOST ("/outbox/host/postgresql/two-ledger-writers", test_host_pg_two_writers);
  if (g_test_perf ())
    ADD_HOST ("/outbox/host/perf/cpu-per-order", test_host_perf);
#undef ADD_HOST
#ifdef ARB_TEST_KAFKA
  g_test_add ("/outbox/kafka/brokers-down-then-healed", KafkaFx, NULL, kafka_setup, test_kafka_outage,
              kafka_teardown);
#endif
  g_test_add ("/outbox/daemon/kill-9-then-restart", DaemonFx, NULL, daemon_setup, test_daemon_kill9, daemon_teardown);

  rc = g_test_run ();
  g_clear_pointer (&pg_server, arb_test_pg_free);
  return rc;
}
