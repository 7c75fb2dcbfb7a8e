/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * End to end: the real arbiterd with CoinGecko as the primary and
 * CoinMarketCap as the secondary source of one feed, both pointed at the
 * fake upstream, read from the outside: the JSON-lines file its sink writes,
 * /ready, /metrics, and the requests the fake upstream counts.
 *
 * Quotes flow from CoinGecko; CoinGecko starts failing (500) and the feed
 * fails over to CoinMarketCap, whose quotes then reach the book; while the
 * breaker is open CoinGecko gets one probe per cooldown, not a request
 * storm; CoinGecko recovers and the feed switches back after recover_after;
 * both fail and /ready says so. A CoinGecko that keeps answering but stops
 * updating its timestamps goes stale and loses the feed the same way; a
 * CoinMarketCap instance without a key does not start, and /ready says why.
 *
 * Orders go through the real order path all along: placed on CoinGecko's
 * price, placed again on CoinMarketCap's after the failover, and refused with
 * 503 MARKET_DATA_UNAVAILABLE (and Retry-After) while both are down.
 *
 * Timings are short (200 ms polls, 1 s cooldown) so the whole file runs in
 * about 15 s.
 */

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "arb-test-daemon.h"
#include "fake-upstream/fake-upstream.h"

#define CG_PATH   "/api/v3/simple/price"
#define CMC_PATH  "/v2/cryptocurrency/quotes/latest"
#define FEED      "feed:crypto"
#define CMC_KEY   "cmc-test-key-0000"

typedef struct {
  char          *dir;
  char          *conf;
  char          *events;
  char          *fixtures;
  FakeUpstream  *fu;
  SoupSession   *session;
  ArbTestDaemon *d;
  char          *admin;  /* tokens */
  char          *alice;
} Fixture;

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->fixtures = fake_upstream_find_fixtures ();
  fx->dir = g_dir_make_tmp ("arb-test-e2e-feeds-XXXXXX", &error);
  g_assert_no_error (error);
  fx->conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  fx->events = g_build_filename (fx->dir, "events.jsonl", NULL);
  fx->session = arb_test_session_new ();
  if (fx->fixtures == NULL)
    return;
  fx->fu = fake_upstream_new (fx->fixtures, &error);
  g_assert_no_error (error);
  fake_upstream_serve_file (fx->fu, CG_PATH, "coingecko/simple_price_full.json");
  fake_upstream_serve_file (fx->fu, CMC_PATH, "coinmarketcap/v2_quotes_latest_id.json");
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *full = g_build_filename (path, name, NULL);
      if (g_file_test (full, G_FILE_TEST_IS_DIR) && !g_file_test (full, G_FILE_TEST_IS_SYMLINK))
        remove_tree (full);
      else
        g_unlink (full);
    }
  g_rmdir (path);
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  g_clear_pointer (&fx->d, arb_test_daemon_free);
  g_clear_pointer (&fx->fu, fake_upstream_free);
  g_clear_object (&fx->session);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->conf);
  g_free (fx->events);
  g_free (fx->fixtures);
  g_free (fx->admin);
  g_free (fx->alice);
}

/* the feed as issue 5 draws it, with every duration short */
static void
write_conf (Fixture *fx, const char *cmc_key_line)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *cg = fake_upstream_url (fx->fu, "/api/v3");
  g_autofree char *cmc = fake_upstream_url (fx->fu, NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=3s\n"
                                           "\n"
                                           "[ingest:coingecko]\n"
                                           "plugin=ingest-coingecko\n"
                                           "base_url=%s\n"
                                           "markets=bitcoin:crypto:BTC-USD,ethereum:crypto:ETH-USD\n"
                                           "interval=200ms\n"
                                           "timeout=1s\n"
                                           "\n"
                                           "[ingest:coinmarketcap]\n"
                                           "plugin=ingest-coinmarketcap\n"
                                           "base_url=%s\n"
                                           "markets=1:crypto:BTC-USD,1027:crypto:ETH-USD\n"
                                           "interval=200ms\n"
                                           "timeout=1s\n"
                                           "%s\n"
                                           "\n"
                                           "[feed:crypto]\n"
                                           "sources=coingecko,coinmarketcap   # instance names, in priority order\n"
                                           "failure_threshold=3\n"
                                           "stale_after=2s\n"
                                           "cooldown=1s\n"
                                           "recover_after=1s\n"
                                           "\n"
                                           "[sink:events]\n"
                                           "plugin=sink-jsonl\n"
                                           "path=%s\n"
                                           "fsync=always\n"
                                           "\n"
                                           "[program:standard]\n"
                                           "starting_balance=100000\n"
                                           "leverage=1\n"
                                           "\n"
                                           "[market-class:crypto]\n"
                                           "slippage_bps=0   # a fill at the book's price, to see whose it is\n",
                                           cg, cmc, cmc_key_line, fx->events);

  g_file_set_contents (fx->conf, text, -1, &error);
  g_assert_no_error (error);
}

/* a host without the feeds cannot take the config: skip, saying why */
static gboolean
host_has_feeds (Fixture *fx)
{
  g_autofree char *output = NULL;
  int status;

  if (fx->fixtures == NULL)
    {
      g_test_skip ("no fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream");
      return FALSE;
    }
  write_conf (fx, "api_key_env=ARB_TEST_CMC_KEY");
  status = arb_test_check_config (fx->conf, &output);
  if (status != 0 && strstr (output, "[feed:crypto] unknown group") != NULL)
    {
      g_test_skip ("this arbiterd does not read [feed:NAME] groups yet (runtime/arb-feed.c is not wired into the "
                   "host)");
      return FALSE;
    }
  g_test_message ("--check-config: %s", output);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (output, ": OK (3 instances)"));
  return TRUE;
}

static void
start_daemon (Fixture *fx)
{
  const char *env[] = { "ARB_TEST_CMC_KEY", CMC_KEY, NULL };

  /* signed with the secret the first of these generates into state_dir */
  fx->admin = arb_test_mint_token (fx->conf, "ops", TRUE);
  fx->alice = arb_test_mint_token (fx->conf, "alice", FALSE);
  g_assert_nonnull (fx->admin);
  g_assert_nonnull (fx->alice);
  fx->d = arb_test_daemon_start (fx->conf, env);
  g_assert_nonnull (fx->d);
}

/* ------------------------------------------------------------------------ */
/* The events file                                                          */

static GPtrArray *
read_events (Fixture *fx)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  if (!g_file_get_contents (fx->events, &text, NULL, NULL))
    return out;
  lines = g_strsplit (text, "\n", -1);
  /* the last element follows the last newline: not a whole line yet */
  for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      g_autoptr(GError) error = NULL;

      json_parser_load_from_data (p, lines[i], -1, &error);
      g_assert_no_error (error);
      g_ptr_array_add (out, json_object_ref (json_node_get_object (json_parser_get_root (p))));
    }
  return out;
}

static const char *
ev_type (JsonObject *ev)
{
  return json_object_get_string_member (ev, "type");
}

static JsonObject *
ev_data (JsonObject *ev)
{
  return json_object_get_object_member (ev, "data");
}

/* quotes of @source (an instance id) at or after @from */
static guint
count_quotes (GPtrArray *events, const char *source, guint from)
{
  guint n = 0;

  for (guint i = from; i < events->len; i++)
    {
      JsonObject *ev = g_ptr_array_index (events, i);
      if (g_str_equal (ev_type (ev), "quote")
          && g_strcmp0 (json_object_get_string_member (ev_data (ev), "source"), source) == 0)
        n++;
    }
  return n;
}

typedef struct {
  Fixture    *fx;
  const char *type;
  guint       from;
  const char *source; /* quote: from this source */
  guint       n;
  int         found;  /* out: the index of the n-th match */
} EventWanted;

static gboolean
has_event (gpointer data)
{
  EventWanted *w = data;
  g_autoptr(GPtrArray) events = read_events (w->fx);
  guint n = 0;

  for (guint i = w->from; i < events->len; i++)
    {
      JsonObject *ev = g_ptr_array_index (events, i);
      if (!g_str_equal (ev_type (ev), w->type))
        continue;
      if (w->source != NULL && g_strcmp0 (json_object_get_string_member (ev_data (ev), "source"), w->source) != 0)
        continue;
      if (++n >= w->n)
        {
          w->found = (int) i;
          return TRUE;
        }
    }
  return FALSE;
}

/* waits for the @n-th event of @type (a quote from @source) after @from */
static int
wait_event (Fixture *fx, const char *type, const char *source, guint from, guint n, guint timeout_ms)
{
  EventWanted w = { fx, type, from, source, n, -1 };

  if (!arb_test_wait_for (has_event, &w, timeout_ms))
    g_error ("no %s%s%s in %s within %u ms; arbiterd logged:\n%s", type, source != NULL ? " from " : "",
             source != NULL ? source : "", fx->events, timeout_ms, arb_test_daemon_get_log (fx->d));
  return w.found;
}

typedef struct {
  Fixture    *fx;
  const char *text;
} LogWanted;

static gboolean
has_log (gpointer data)
{
  LogWanted *w = data;
  return strstr (arb_test_daemon_get_log (w->fx->d), w->text) != NULL;
}

static void
wait_log (Fixture *fx, const char *text)
{
  LogWanted w = { fx, text };

  if (!arb_test_wait_for (has_log, &w, 3000))
    g_error ("arbiterd did not log \"%s\"; it logged:\n%s", text, arb_test_daemon_get_log (fx->d));
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

static JsonObject *
get_object (Fixture *fx, const char *path, guint *status)
{
  g_autoptr(ArbTestReply) r = arb_test_http_get (fx->session, fx->d, path);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (p, r->body, -1, &error);
  g_assert_no_error (error);
  *status = r->status;
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static JsonObject *
ready_feed (JsonObject *ready)
{
  JsonArray *feeds = json_object_get_array_member (ready, "feeds");
  g_assert_nonnull (feeds);
  g_assert_cmpuint (json_array_get_length (feeds), ==, 1);
  return json_array_get_object_element (feeds, 0);
}

static JsonObject *
ready_instance (JsonObject *ready, const char *name)
{
  JsonArray *instances = json_object_get_array_member (ready, "instances");
  for (guint i = 0; i < json_array_get_length (instances); i++)
    {
      JsonObject *inst = json_array_get_object_element (instances, i);
      if (g_strcmp0 (json_object_get_string_member (inst, "name"), name) == 0)
        return inst;
    }
  g_error ("/ready does not list %s", name);
  return NULL;
}

static gdouble
metric (Fixture *fx, const char *series)
{
  g_autoptr(ArbTestReply) r = arb_test_http_get (fx->session, fx->d, "/metrics");
  g_auto(GStrv) lines = g_strsplit (r->body, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], series) && lines[i][strlen (series)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (series) + 1, NULL);
  g_error ("no sample %s in /metrics", series);
  return -1;
}

static JsonObject *
parse (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (p, text, -1, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

/* a new assessment of alice's; its id */
static char *
create_assessment (Fixture *fx)
{
  g_autoptr(ArbTestReply) r = arb_test_http_request (fx->session, fx->d, "POST", "/assessments", fx->admin,
                                                     "{\"userId\":\"alice\",\"program\":\"standard\"}");
  g_autoptr(JsonObject) o = NULL;

  if (r->status != 201)
    g_error ("POST /assessments: %u %s", r->status, r->body);
  o = parse (r->body);
  return g_strdup (json_object_get_string_member (o, "id"));
}

/* the fill price of the order in @r */
static char *
fill_price (ArbTestReply *r)
{
  g_autoptr(JsonObject) o = parse (r->body);
  return g_strdup (json_object_get_string_member (json_object_get_object_member (o, "trade"), "price"));
}

/* alice buys 0.01 BTC */
static ArbTestReply *
buy (Fixture *fx, const char *assessment)
{
  g_autofree char *body = g_strdup_printf ("{\"assessmentId\":\"%s\",\"market\":\"crypto:BTC-USD\",\"side\":\"buy\","
                                           "\"quantity\":\"0.01\"}", assessment);
  ArbTestReply *r = arb_test_http_request (fx->session, fx->d, "POST", "/orders", fx->alice, body);

  g_test_message ("POST /orders: %u %s", r->status, r->body);
  return r;
}

/* ------------------------------------------------------------------------ */

static void
test_failover_and_back (Fixture *fx, gconstpointer data)
{
  g_autoptr(JsonObject) ready = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autofree char *cmc_key = NULL;
  g_autofree char *cg_query = NULL;
  g_autofree char *assessment = NULL;
  g_autoptr(ArbTestReply) order = NULL;
  g_autofree char *price = NULL;
  JsonObject *ev;
  guint status = 0;
  guint during_open;
  gint64 t0;
  int at;

  if (!host_has_feeds (fx))
    return;
  start_daemon (fx);

  /* quotes flow from the primary only */
  at = wait_event (fx, "quote", "coingecko", 0, 4, 5000);
  events = read_events (fx);
  g_assert_cmpuint (count_quotes (events, "coinmarketcap", 0), ==, 0);
  ev = ev_data (g_ptr_array_index (events, at));
  g_assert_true (g_str_has_prefix (json_object_get_string_member (ev, "market"), "crypto:"));
  cg_query = fake_upstream_dup_last_query (fx->fu, CG_PATH);
  g_assert_cmpstr (cg_query, ==, "ids=bitcoin,ethereum&vs_currencies=usd&include_last_updated_at=true&precision=full");
  /* the standby polls too, with its key */
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CMC_PATH), >, 0);
  cmc_key = fake_upstream_dup_last_header (fx->fu, CMC_PATH, "X-CMC_PRO_API_KEY");
  g_assert_cmpstr (cmc_key, ==, CMC_KEY);

  ready = get_object (fx, "/ready", &status);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (ready_feed (ready), "state"), ==, "up");
  g_assert_cmpstr (json_object_get_string_member (ready_feed (ready), "active"), ==, "ingest:coingecko");
  g_clear_pointer (&ready, json_object_unref);

  /* trading on CoinGecko's price (simple_price_full.json) */
  assessment = create_assessment (fx);
  order = buy (fx, assessment);
  g_assert_cmpuint (order->status, ==, 201);
  price = fill_price (order);
  g_assert_cmpstr (price, ==, "91234.56000000");
  g_clear_pointer (&order, arb_test_reply_free);
  g_clear_pointer (&price, g_free);

  /* CoinGecko fails: the feed moves to CoinMarketCap within three polls and a tick */
  t0 = g_get_monotonic_time ();
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_500, 0);
  at = wait_event (fx, "feed.failover", NULL, events->len, 1, 3000);
  g_test_message ("failover after %" G_GINT64_FORMAT " ms", (g_get_monotonic_time () - t0) / 1000);
  g_clear_pointer (&events, g_ptr_array_unref);
  events = read_events (fx);
  ev = ev_data (g_ptr_array_index (events, at));
  g_assert_cmpstr (json_object_get_string_member (ev, "feed"), ==, FEED);
  g_assert_cmpstr (json_object_get_string_member (ev, "from"), ==, "ingest:coingecko");
  g_assert_cmpstr (json_object_get_string_member (ev, "to"), ==, "ingest:coinmarketcap");
  g_test_message ("reason: %s", json_object_get_string_member (ev, "reason"));
  g_assert_nonnull (strstr (json_object_get_string_member (ev, "reason"), "CoinGecko HTTP 500"));
  /* and said so in its log (read from its stderr, maybe a moment later) */
  wait_log (fx, "failover to ingest:coinmarketcap");

  /* trading goes on: the book gets CoinMarketCap's prices, and orders fill on them */
  wait_event (fx, "quote", "coinmarketcap", at, 2, 3000);
  order = buy (fx, assessment);
  g_assert_cmpuint (order->status, ==, 201);
  /* v2_quotes_latest_id.json's 91236.02004781559, at eight places */
  price = fill_price (order);
  g_assert_cmpstr (price, ==, "91236.02004782");
  g_clear_pointer (&order, arb_test_reply_free);
  g_clear_pointer (&price, g_free);
  g_assert_cmpfloat (metric (fx, "arb_feed_failovers_total{feed=\"" FEED "\"}"), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_active{feed=\"" FEED "\",source=\"ingest:coinmarketcap\"}"), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_active{feed=\"" FEED "\",source=\"ingest:coingecko\"}"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_feed_up{feed=\"" FEED "\"}"), ==, 1);

  /* no request storm while open: one probe per cooldown (1 s), where
   * polling on would have sent one every 200 ms */
  fake_upstream_reset_counts (fx->fu);
  arb_test_run_for (3000);
  during_open = fake_upstream_get_request_count (fx->fu, CG_PATH);
  g_test_message ("CoinGecko got %u requests in 3 s with its breaker open", during_open);
  g_assert_cmpuint (during_open, >=, 2);
  g_assert_cmpuint (during_open, <=, 4);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CMC_PATH), >=, 10);
  g_assert_cmpfloat (metric (fx, "arb_plugin_held_off_total{instance=\"ingest:coingecko\","
                                 "plugin=\"ingest-coingecko\"}"), >, 0);
  g_assert_cmpfloat (metric (fx, "arb_feed_probes_total{feed=\"" FEED "\",source=\"ingest:coingecko\"}"), >=, 2);

  /* CoinGecko recovers: its probe closes the breaker, and after
   * recover_after (1 s) the feed is back on it */
  g_clear_pointer (&events, g_ptr_array_unref);
  events = read_events (fx);
  t0 = g_get_monotonic_time ();
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_NONE, 0);
  at = wait_event (fx, "feed.recovered", NULL, events->len, 1, 5000);
  g_test_message ("back after %" G_GINT64_FORMAT " ms", (g_get_monotonic_time () - t0) / 1000);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 1000 * 1000);
  g_clear_pointer (&events, g_ptr_array_unref);
  events = read_events (fx);
  ev = ev_data (g_ptr_array_index (events, at));
  g_assert_cmpstr (json_object_get_string_member (ev, "from"), ==, "ingest:coinmarketcap");
  g_assert_cmpstr (json_object_get_string_member (ev, "to"), ==, "ingest:coingecko");
  wait_event (fx, "quote", "coingecko", at, 2, 3000);
  g_assert_cmpfloat (metric (fx, "arb_feed_recoveries_total{feed=\"" FEED "\"}"), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_active{feed=\"" FEED "\",source=\"ingest:coingecko\"}"), ==, 1);

  /* both fail: the feed is down and /ready says so */
  fake_upstream_set_fault (fx->fu, NULL, FAKE_FAULT_500, 0);
  at = wait_event (fx, "feed.down", NULL, at, 1, 4000);
  ready = get_object (fx, "/ready", &status);
  g_test_message ("/ready: %u", status);
  g_assert_cmpuint (status, ==, 503);
  g_assert_cmpstr (json_object_get_string_member (ready, "status"), ==, "not ready");
  g_assert_cmpstr (json_object_get_string_member (ready_feed (ready), "state"), ==, "down");
  g_assert_true (json_object_get_null_member (ready_feed (ready), "active"));
  g_assert_nonnull (strstr (json_object_get_string_member (ready_feed (ready), "reason"), " HTTP 500"));
  g_assert_cmpstr (json_object_get_string_member (ready_instance (ready, "ingest:coinmarketcap"), "health"), !=, "ok");
  g_assert_cmpfloat (metric (fx, "arb_feed_up{feed=\"" FEED "\"}"), ==, 0);
  g_clear_pointer (&ready, json_object_unref);
  /* and orders on its markets are refused, with a time to come back */
  order = buy (fx, assessment);
  g_assert_cmpuint (order->status, ==, 503);
  g_assert_nonnull (strstr (order->body, "\"code\":\"MARKET_DATA_UNAVAILABLE\""));
  g_assert_nonnull (order->retry_after);
  g_clear_pointer (&order, arb_test_reply_free);

  /* and comes back with its sources */
  fake_upstream_set_fault (fx->fu, NULL, FAKE_FAULT_NONE, 0);
  wait_event (fx, "feed.recovered", NULL, at, 1, 5000);
  ready = get_object (fx, "/ready", &status);
  g_assert_cmpuint (status, ==, 200);

  g_assert_cmpint (arb_test_daemon_terminate (fx->d), ==, 0);
}

/* CoinGecko answers, but its last_updated_at stops moving: stale after 2 s */
static void
test_stale_primary (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) events = NULL;
  JsonObject *ev;
  int at;

  if (!host_has_feeds (fx))
    return;
  start_daemon (fx);
  wait_event (fx, "quote", "coingecko", 0, 2, 5000);
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_STALE, 0);
  at = wait_event (fx, "feed.failover", NULL, 0, 1, 5000);
  events = read_events (fx);
  ev = ev_data (g_ptr_array_index (events, at));
  g_test_message ("reason: %s", json_object_get_string_member (ev, "reason"));
  g_assert_nonnull (strstr (json_object_get_string_member (ev, "reason"), "no fresh quote for"));
  /* CoinGecko was asked all along: staleness, not errors */
  g_assert_cmpuint (count_quotes (events, "coingecko", 0), >, 0);
  g_assert_cmpint (arb_test_daemon_terminate (fx->d), ==, 0);
}

/* CoinMarketCap without a key does not start; /ready says why; CoinGecko feeds alone */
static void
test_cmc_without_key (Fixture *fx, gconstpointer data)
{
  g_autoptr(JsonObject) ready = NULL;
  JsonObject *cmc, *feed, *source;
  guint status = 0;

  if (!host_has_feeds (fx))
    return;
  write_conf (fx, "");
  fx->d = arb_test_daemon_start (fx->conf, NULL);
  g_assert_nonnull (fx->d);
  wait_event (fx, "quote", "coingecko", 0, 2, 5000);
  ready = get_object (fx, "/ready", &status);
  cmc = ready_instance (ready, "ingest:coinmarketcap");
  g_assert_cmpstr (json_object_get_string_member (cmc, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (cmc, "reason"), ==,
                   "start: api_key: CoinMarketCap answers only with a key: set api_key_env=VARIABLE or "
                   "api_key_file=PATH (a free Basic key will do)");
  /* the feed runs on its primary, and shows its secondary cannot help */
  g_assert_cmpuint (status, ==, 200);
  feed = ready_feed (ready);
  g_assert_cmpstr (json_object_get_string_member (feed, "active"), ==, "ingest:coingecko");
  source = json_array_get_object_element (json_object_get_array_member (feed, "sources"), 1);
  g_assert_cmpstr (json_object_get_string_member (source, "name"), ==, "ingest:coinmarketcap");
  g_assert_cmpstr (json_object_get_string_member (source, "instance"), ==, "failed");
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CMC_PATH), ==, 0);
  g_assert_cmpint (arb_test_daemon_terminate (fx->d), ==, 0);
}

static void
drop_message (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* GSocketClient asks for the default proxy resolver even when the session
   * has its own; GNOME's reads GSettings, whose schemas the isolated dirs hide */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_log_set_handler ("GLib", G_LOG_LEVEL_DEBUG, drop_message, NULL);
  g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG, drop_message, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/e2e-feeds/failover-and-back", test_failover_and_back);
  ADD ("/e2e-feeds/stale-primary", test_stale_primary);
  ADD ("/e2e-feeds/coinmarketcap-without-key", test_cmc_without_key);
#undef ADD

  return g_test_run ();
}
