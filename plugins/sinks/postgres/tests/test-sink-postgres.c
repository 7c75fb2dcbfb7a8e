/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-postgres through the real host (loader, schema checks, instance
 * wrappers, relay with its worker thread) against a real PostgreSQL started
 * by arb-test-pg: the archive tables and their daily partitions after a run,
 * retention, de-duplication of redelivered events, a refused row, and the
 * server restarted mid-run. */

#include <string.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "arb-host-private.h"
#include "arb-test-pg.h"

#define WAIT_US (20 * G_USEC_PER_SEC)
#define DAY_US  (G_USEC_PER_SEC * (gint64) 86400)

static ArbTestPg *pg_server; /* one server for the whole run */
static guint      db_counter;

typedef struct {
  char      *dir;   /* owned */
  char      *log;   /* owned */
  char      *uri;   /* owned: this test's database */
  PGconn    *conn;  /* owned: the test's own connection */
  ArbHost   *host;  /* owned, nullable */
  GPtrArray *sent;  /* owned, element-type ArbEvent */
} Fixture;

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;

  fx->dir = g_dir_make_tmp ("sink-postgres-XXXXXX", &error);
  g_assert_no_error (error);
  fx->log = g_build_filename (fx->dir, "arbiterd.log", NULL);
  fx->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  if (pg_server == NULL)
    {
      pg_server = arb_test_pg_new (&error);
      g_assert_no_error (error);
    }
  name = g_strdup_printf ("sink_%u", ++db_counter);
  fx->uri = arb_test_pg_create_database (pg_server, name, &error);
  g_assert_no_error (error);
  fx->conn = PQconnectdb (fx->uri);
  g_assert_cmpint (PQstatus (fx->conn), ==, CONNECTION_OK);
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
      remove_tree (child);
    }
  g_rmdir (path);
}

static void
host_down (Fixture *fx)
{
  if (fx->host == NULL)
    return;
  arb_host_stop (fx->host);
  g_clear_pointer (&fx->host, arb_host_free);
}

static void
fixture_tear_down (Fixture *fx, gconstpointer data)
{
  host_down (fx);
  arb_log_set_output_file (NULL);
  PQfinish (fx->conn);
  g_ptr_array_unref (fx->sent);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->log);
  g_free (fx->uri);
}

static void
host_up (Fixture *fx, const char *extra)
{
  g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=5s\n"
                                           "\n"
                                           "[sink:postgres]\n"
                                           "plugin=sink-postgres\n"
                                           "conninfo=%s\n"
                                           "%s",
                                           fx->uri, extra != NULL ? extra : "");
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;

  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  arb_log_set_output_file (fx->log);
  fx->host = arb_host_new (conf, problems, &error);
  all = arb_config_problems_join (problems);
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_true (arb_host_start (fx->host, &error));
  g_assert_no_error (error);
}

static ArbInstance *
instance (Fixture *fx)
{
  ArbInstance *inst = arb_host_find_instance (fx->host, "sink:postgres");
  g_assert_nonnull (inst);
  return inst;
}

static gdouble
metric (Fixture *fx, const char *name)
{
  return arb_metrics_get (fx->host->metrics, name, instance (fx)->labels);
}

typedef gboolean (*Predicate) (Fixture *fx, gconstpointer data);

static gboolean
wait_for (Fixture *fx, Predicate pred, gconstpointer data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (!pred (fx, data))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      while (g_main_context_iteration (fx->host->context, FALSE))
        ;
      g_usleep (5000);
    }
  return TRUE;
}

static gboolean
acked_at_least (Fixture *fx, gconstpointer data)
{
  return metric (fx, "arb_sink_published_total") + metric (fx, "arb_sink_failed_total") >= GPOINTER_TO_UINT (data);
}

static gboolean
health_is (Fixture *fx, gconstpointer data)
{
  return arb_instance_get_health (instance (fx)) == (ArbHealth) GPOINTER_TO_INT (data);
}

/* the one value @sql answers, as text (NULL for SQL NULL) */
static char *
query_value (Fixture *fx, const char *sql)
{
  PGresult *res = PQexec (fx->conn, sql);
  char *v;

  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (fx->conn));
  g_assert_cmpint (PQntuples (res), ==, 1);
  v = PQgetisnull (res, 0, 0) ? NULL : g_strdup (PQgetvalue (res, 0, 0));
  PQclear (res);
  return v;
}

static void
exec (Fixture *fx, const char *sql)
{
  PGresult *res = PQexec (fx->conn, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK)
    g_error ("%s: %s", sql, PQerrorMessage (fx->conn));
  PQclear (res);
}

#define assert_query(fx, sql, expected)                                                                        \
  G_STMT_START                                                                                                 \
  {                                                                                                            \
    g_autofree char *value_ = query_value ((fx), (sql));                                                       \
    g_assert_cmpstr (value_, ==, (expected));                                                                  \
  }                                                                                                            \
  G_STMT_END

/* the partitions of @table, their names joined by spaces */
static char *
partitions (Fixture *fx, const char *table)
{
  g_autofree char *sql = g_strdup_printf ("SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '')"
                                          " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                          " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = '%s'",
                                          table);
  return query_value (fx, sql);
}

static char *
partition_for (const char *table, gint64 unix_us)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_us / G_USEC_PER_SEC);
  g_autofree char *ymd = g_date_time_format (dt, "%Y%m%d");
  return g_strdup_printf ("%s_p%s", table, ymd);
}

static ArbEvent *
publish_at (Fixture *fx, const char *type, const char *key, gint64 time_us, const char *data)
{
  gboolean ledger = !g_str_equal (type, "quote") && !g_str_has_prefix (type, "market.");
  ArbEvent *ev = arb_event_new (type, key, ledger ? key : NULL, "cid-pg", time_us, data, ledger);

  g_ptr_array_add (fx->sent, ev);
  arb_relay_publish (fx->host->relay, ev);
  return ev;
}

static ArbEvent *
publish_quote (Fixture *fx, const char *market, gint64 time_us, guint i)
{
  g_autofree char *data = g_strdup_printf ("{\"market\":\"%s\",\"bid\":\"%u.12500000\",\"ask\":\"%u.37500000\","
                                           "\"source\":\"replay\\tfeed\",\"sourceTime\":\"2026-01-02T03:04:05.000001Z\","
                                           "\"receiveTime\":\"2026-01-02T03:04:05.000002Z\"}",
                                           market, 100 + i, 100 + i);
  return publish_at (fx, "quote", market, time_us, data);
}

/* ------------------------------------------------------------------------ */

static void
test_archive (Fixture *fx, gconstpointer data)
{
  gint64 now = arb_now_us ();
  g_autofree char *quotes_before = NULL;
  g_autofree char *quotes_after = NULL;
  g_autofree char *events_after = NULL;
  g_autofree char *old = partition_for ("quotes_archive", now - 10 * DAY_US);
  g_autofree char *expect = NULL;
  ArbEvent *ledger;
  guint n_quotes = 0;

  host_up (fx, "retention_days=3\npartitions_ahead=2\narchive_events=true\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));

  /* today and two days ahead, for both tables */
  quotes_before = partitions (fx, "quotes_archive");
  {
    g_autofree char *p0 = partition_for ("quotes_archive", now);
    g_autofree char *p1 = partition_for ("quotes_archive", now + DAY_US);
    g_autofree char *p2 = partition_for ("quotes_archive", now + 2 * DAY_US);
    expect = g_strjoin (" ", p0, p1, p2, NULL);
    g_assert_cmpstr (quotes_before, ==, expect);
  }

  /* more than one relay batch of quotes, ledger events, a status */
  for (guint i = 0; i < 600; i++, n_quotes++)
    publish_quote (fx, i % 3 == 0 ? "crypto:BTC-USD" : "crypto:ETH-USD", now, i);
  ledger = publish_at (fx, "trade.executed", "asm-1", now, "{\"id\":\"trd-1\",\"note\":\"a \\\"quoted\\\" word\"}");
  publish_at (fx, "market.status", "kalshi:X:yes", now, "{\"market\":\"kalshi:X:yes\",\"status\":\"halted\"}");
  /* a quote stamped in five days: its partition is made on demand */
  publish_quote (fx, "crypto:SOL-USD", now + 5 * DAY_US, 7);
  n_quotes++;
  /* one older than the retention: not kept */
  publish_quote (fx, "crypto:OLD-USD", now - 10 * DAY_US, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len)));
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_plugin_published_total"), ==, fx->sent->len);

  {
    g_autofree char *n = g_strdup_printf ("%u", n_quotes);
    assert_query (fx, "SELECT count(*) FROM quotes_archive", n);
  }
  assert_query (fx, "SELECT count(*) FROM quotes_archive WHERE market = 'crypto:BTC-USD'", "200");
  assert_query (fx, "SELECT bid::text || ' ' || ask::text || ' ' || coalesce(last::text, '-') FROM quotes_archive"
                    " WHERE market = 'crypto:BTC-USD' ORDER BY bid LIMIT 1",
                "100.12500000 100.37500000 -");
  /* a tab in a value survives COPY's escaping */
  assert_query (fx, "SELECT DISTINCT source FROM quotes_archive", "replay\tfeed");
  assert_query (fx, "SELECT DISTINCT source_time::text FROM quotes_archive", "2026-01-02 03:04:05.000001+00");
  assert_query (fx, "SELECT count(*) FROM quotes_archive WHERE market = 'crypto:OLD-USD'", "0");
  {
    g_autofree char *future = partition_for ("quotes_archive", now + 5 * DAY_US);
    g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM %s", future);
    assert_query (fx, sql, "1");
  }

  /* every event in events_archive, the envelope as jsonb */
  {
    g_autofree char *n = g_strdup_printf ("%u", fx->sent->len - 1);
    assert_query (fx, "SELECT count(*) FROM events_archive", n);
  }
  {
    g_autofree char *sql = g_strdup_printf ("SELECT type || ' ' || assessment_id || ' ' || correlation_id || ' ' ||"
                                            " (envelope->'data'->>'note') FROM events_archive WHERE id = '%s'",
                                            arb_event_get_id (ledger));
    assert_query (fx, sql, "trade.executed asm-1 cid-pg a \"quoted\" word");
  }
  assert_query (fx, "SELECT count(*) FROM events_archive WHERE type = 'market.status' AND assessment_id IS NULL", "1");

  /* a redelivered ledger event is not archived twice */
  arb_relay_publish (fx->host->relay, ledger);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len + 1)));
  {
    g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM events_archive WHERE id = '%s'",
                                            arb_event_get_id (ledger));
    assert_query (fx, sql, "1");
  }

  /* retention: a partition of ten days ago goes at the next maintenance
   * (here: the next connection) */
  host_down (fx);
  {
    /* with the bounds of its name's day */
    g_autoptr(GDateTime) day = g_date_time_new_from_unix_utc ((now - 10 * DAY_US) / G_USEC_PER_SEC);
    g_autofree char *from = g_date_time_format (day, "%F");
    g_autoptr(GDateTime) next = g_date_time_add_days (day, 1);
    g_autofree char *to = g_date_time_format (next, "%F");
    g_autofree char *sql = g_strdup_printf ("CREATE TABLE %s PARTITION OF quotes_archive FOR VALUES FROM "
                                            "('%s 00:00:00+00') TO ('%s 00:00:00+00')",
                                            old, from, to);
    exec (fx, sql);
    /* an operator's own partition, not named by the sink's rule, stays */
    exec (fx, "CREATE TABLE quotes_archive_history PARTITION OF quotes_archive FOR VALUES FROM "
              "('1999-01-01 00:00:00+00') TO ('1999-01-02 00:00:00+00')");
  }
  quotes_after = partitions (fx, "quotes_archive");
  g_assert_nonnull (strstr (quotes_after, old));
  g_clear_pointer (&quotes_after, g_free);
  host_up (fx, "retention_days=3\npartitions_ahead=2\narchive_events=true\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  quotes_after = partitions (fx, "quotes_archive");
  g_test_message ("quotes_archive partitions: %s", quotes_after);
  g_assert_null (strstr (quotes_after, old));
  g_assert_nonnull (strstr (quotes_after, "quotes_archive_history"));
  g_assert_cmpfloat (metric (fx, "arb_plugin_partitions_dropped_total"), ==, 1);
  events_after = partitions (fx, "events_archive");
  g_test_message ("events_archive partitions: %s", events_after);
  g_assert_nonnull (strstr (events_after, "events_archive_p"));
}

/* without archive_events only quotes are stored; other events are
 * acknowledged without a table */
static void
test_quotes_only (Fixture *fx, gconstpointer data)
{
  gint64 now = arb_now_us ();

  host_up (fx, NULL);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  publish_quote (fx, "crypto:BTC-USD", now, 1);
  publish_at (fx, "order.filled", "asm-1", now, "{\"id\":\"o\"}");
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (2)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 2);
  assert_query (fx, "SELECT count(*) FROM quotes_archive", "1");
  assert_query (fx, "SELECT count(*) FROM events_archive", "0");
  /* and no partitions for a table that gets nothing */
  assert_query (fx, "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
                    " WHERE p.relname = 'events_archive'",
                "0");
}

/* a row the server refuses (a price that is not a number) fails that event
 * only: the rest of its batch is archived */
static void
test_refused_row (Fixture *fx, gconstpointer data)
{
  gint64 now = arb_now_us ();

  host_up (fx, NULL);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  for (guint i = 0; i < 10; i++)
    publish_quote (fx, "crypto:BTC-USD", now, i);
  publish_at (fx, "quote", "crypto:BAD-USD", now, "{\"market\":\"crypto:BAD-USD\",\"bid\":\"not a number\"}");
  for (guint i = 0; i < 10; i++)
    publish_quote (fx, "crypto:ETH-USD", now, i);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (21)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 20);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 1);
  assert_query (fx, "SELECT count(*) FROM quotes_archive", "20");
  g_assert_cmpint (arb_instance_get_health (instance (fx)), ==, ARB_HEALTH_OK);
}

/* the server stopped mid-run and started again: what came meanwhile is
 * failed (the relay can deliver it again), health goes down, and the sink
 * reconnects by itself */
static void
test_restart (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 now = arb_now_us ();

  host_up (fx, "reconnect_max=200ms\ndown_after=500ms\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  for (guint i = 0; i < 20; i++)
    publish_quote (fx, "crypto:BTC-USD", now, i);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (20)));

  g_assert_true (arb_test_pg_stop (pg_server, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 5; i++)
    {
      publish_quote (fx, "crypto:BTC-USD", now, 100 + i);
      g_usleep (50 * 1000);
    }
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (25)));
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 5);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));
  {
    g_autofree char *reason = arb_instance_dup_reason (instance (fx));
    g_test_message ("while the server is away: %s", reason);
  }

  g_assert_true (arb_test_pg_start (pg_server, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  for (guint i = 0; i < 5; i++)
    publish_quote (fx, "crypto:BTC-USD", now, 200 + i);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (30)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 25);

  PQreset (fx->conn);
  g_assert_cmpint (PQstatus (fx->conn), ==, CONNECTION_OK);
  assert_query (fx, "SELECT count(*) FROM quotes_archive", "25");
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* run by hand, find the build's plugins and nothing installed */
  g_setenv ("ARBITER_PLUGIN_PATH", SINK_PLUGIN_DIR, FALSE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", FALSE);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/sink-postgres/archive/partitions-retention-dedup", test_archive);
  ADD ("/sink-postgres/archive/quotes-only", test_quotes_only);
  ADD ("/sink-postgres/archive/refused-row", test_refused_row);
  ADD ("/sink-postgres/reconnect/server-restarted", test_restart);
#undef ADD

  rc = g_test_run ();
  g_clear_pointer (&pg_server, arb_test_pg_free);
  return rc;
}
