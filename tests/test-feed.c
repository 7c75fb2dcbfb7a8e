/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Feeds (runtime/arb-feed.c): the [feed:NAME] config checks with their
 * messages, and the breakers and failover walked through on an explicit
 * clock, minutes of breaker life in microseconds. The sources are real ingest
 * instances of a real host (ingest-hello, silent here), and the feed events
 * land in a real sink-jsonl file. arb-feed.c is compiled in to reach its
 * clocked functions (accept_quote_at, tick_at, ...).
 */

#include "arb-feed.c"

#include <glib/gstdio.h>

#include "arb-test-log.h"

#define S G_GINT64_CONSTANT (1000000)
#define FEED "feed:crypto"
#define BTC  "crypto:BTC-USD"

typedef struct {
  char        *dir;
  char        *events;
  ArbHost     *host;
  ArbFeeds    *feeds;
  ArbInstance *a, *b, *c;
  FeedClock    now;
} Fixture;

static const char host_conf[] =
  "[runtime]\n"
  "state_dir=state\n"
  "[ingest:a]\nplugin=ingest-hello\nmarket=crypto:BTC-USD\nprice=100\ninterval=1d\n"
  "[ingest:b]\nplugin=ingest-hello\nmarket=crypto:BTC-USD\nprice=101\ninterval=1d\n"
  "[ingest:c]\nplugin=ingest-hello\nmarket=crypto:ETH-USD\nprice=5\ninterval=1d\n"
  "[sink:events]\nplugin=sink-jsonl\npath=events.jsonl\nfsync=always\nevents=feed.*\n";

static const char feed_conf[] =
  "[feed:crypto]\n"
  "sources=a,b\n"
  "failure_threshold=3\n"
  "stale_after=60s\n"
  "cooldown=30s\n"
  "recover_after=60s\n";

static char *
write_file (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  return path;
}

static ArbFeeds *
feeds_from (Fixture *fx, const char *text, GPtrArray *problems)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_file (fx->dir, "feeds.conf", text);
  g_autoptr(ArbConfig) config = arb_config_load (path, problems, &error);

  g_assert_no_error (error);
  return arb_feeds_new (fx->host, config, problems);
}

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *plugins = g_build_filename (g_getenv ("ARB_BUILD_ROOT"), "plugins", NULL);
  g_autofree char *joined = NULL;
  static const guint32 order[] = { ARB_PLUGIN_SINK, ARB_PLUGIN_INGEST };

  fx->dir = g_dir_make_tmp ("arb-test-feed-XXXXXX", &error);
  g_assert_no_error (error);
  conf = write_file (fx->dir, "arbiter.conf", host_conf);
  fx->events = g_build_filename (fx->dir, "events.jsonl", NULL);
  g_setenv ("ARBITER_PLUGIN_PATH", plugins, TRUE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
  fx->host = arb_host_new (conf, problems, &error);
  joined = arb_config_problems_join (problems);
  g_assert_cmpstr (joined, ==, "");
  g_assert_no_error (error);

  for (guint i = 0; i < fx->host->instances->len; i++)
    g_assert_true (arb_instance_create (g_ptr_array_index (fx->host->instances, i), NULL));
  for (guint k = 0; k < G_N_ELEMENTS (order); k++)
    for (guint i = 0; i < fx->host->instances->len; i++)
      {
        ArbInstance *inst = g_ptr_array_index (fx->host->instances, i);
        if (inst->kind == order[k])
          g_assert_true (arb_instance_start (inst, NULL));
      }
  fx->a = arb_host_find_instance (fx->host, "ingest:a");
  fx->b = arb_host_find_instance (fx->host, "ingest:b");
  fx->c = arb_host_find_instance (fx->host, "ingest:c");

  /* an arbitrary origin: every duration in the tests is relative to it */
  fx->now.mono = G_GINT64_CONSTANT (1000) * S;
  fx->now.real = G_GINT64_CONSTANT (1795240800) * S;
  arb_test_log_allow (G_LOG_LEVEL_WARNING, FEED);
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  g_autoptr(GDir) d = NULL;
  const char *name;

  g_clear_pointer (&fx->feeds, arb_feeds_free);
  for (guint i = fx->host->instances->len; i > 0; i--)
    arb_instance_stop (g_ptr_array_index (fx->host->instances, i - 1));
  arb_relay_shutdown (fx->host->relay, 5000);
  g_clear_pointer (&fx->host, arb_host_free);
  d = g_dir_open (fx->dir, 0, NULL);
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (fx->dir, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        g_rmdir (p);
      else
        g_unlink (p);
    }
  g_rmdir (fx->dir);
  g_free (fx->dir);
  g_free (fx->events);
  arb_test_log_check ();
}

static void
advance (Fixture *fx, gint64 us)
{
  fx->now.mono += us;
  fx->now.real += us;
}

static void
start_feeds (Fixture *fx, const char *text)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autofree char *joined = NULL;

  fx->feeds = feeds_from (fx, text, problems);
  joined = arb_config_problems_join (problems);
  g_assert_cmpstr (joined, ==, "");
  start_at (fx->feeds, &fx->now);
}

/* a quote for @market made @age_us ago by the upstream */
static gboolean
quote (Fixture *fx, ArbInstance *inst, const char *market, gint64 age_us)
{
  g_autoptr(ArbQuote) q = arb_quote_new (market);

  arb_quote_set_last (q, ARB_DECIMAL_ONE);
  arb_quote_set_source_time (q, fx->now.real - age_us);
  return accept_quote_at (fx->feeds, inst, q, &fx->now);
}

static void
report (Fixture *fx, ArbInstance *inst, ArbHealth health, const char *reason)
{
  on_health_at (fx->feeds, inst, health, reason, &fx->now);
}

static void
tick (Fixture *fx)
{
  tick_at (fx->feeds, &fx->now);
}

static gint64
hold_off (Fixture *fx, ArbInstance *inst)
{
  return hold_off_at (fx->feeds, inst, &fx->now);
}

static void
assert_active (Fixture *fx, const char *name)
{
  g_autofree char *active = arb_feeds_dup_active (fx->feeds, FEED);
  g_assert_cmpstr (active, ==, name);
}

static gdouble
metric (Fixture *fx, const char *name, const char *source)
{
  g_autofree char *labels = source != NULL ? arb_metrics_labels ("feed", FEED, "source", source, NULL)
                                           : arb_metrics_labels ("feed", FEED, NULL);
  return arb_metrics_get (fx->host->metrics, name, labels);
}

/* the feed events the sink wrote, as "type from to" lines */
static GPtrArray *
read_events (Fixture *fx, guint n)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gint64 deadline = g_get_monotonic_time () + 5 * S;

  for (;;)
    {
      g_autofree char *text = NULL;
      g_auto(GStrv) lines = NULL;

      g_ptr_array_set_size (out, 0);
      if (g_file_get_contents (fx->events, &text, NULL, NULL))
        {
          lines = g_strsplit (text, "\n", -1);
          /* the last element follows the last newline: a line still being written */
          for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL && lines[i][0] != '\0'; i++)
            {
              g_autoptr(JsonParser) p = json_parser_new ();
              JsonObject *ev, *d;

              g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
              ev = json_node_get_object (json_parser_get_root (p));
              d = json_object_get_object_member (ev, "data");
              g_assert_cmpstr (json_object_get_string_member (d, "feed"), ==, FEED);
              g_assert_cmpstr (json_object_get_string_member (ev, "type"), !=, NULL);
              g_ptr_array_add (out, g_strdup_printf ("%s %s %s", json_object_get_string_member (ev, "type"),
                                                     json_object_get_string_member_with_default (d, "from", "-"),
                                                     json_object_get_string_member_with_default (d, "to", "-")));
            }
        }
      if (out->len >= n || g_get_monotonic_time () > deadline)
        break;
      g_main_context_iteration (fx->host->context, FALSE);
      g_usleep (10000);
    }
  for (guint i = 0; i < out->len; i++)
    g_test_message ("event: %s", (char *) g_ptr_array_index (out, i));
  g_assert_cmpuint (out->len, ==, n);
  return out;
}

/* ------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  const char *conf;
  const char *problems;
} ConfigCase;

static const ConfigCase config_cases[] = {
  { "unknown-source", "[feed:crypto]\nsources=coingeko,b\n",
    "feeds.conf: [feed:crypto] \"coingeko\" is not an ingest instance; a source is the NAME of an [ingest:NAME] "
    "group (there are: a, b, c)" },
  { "did-you-mean", "[feed:crypto]\nsources=ingest:aa,b\n",
    "feeds.conf: [feed:crypto] \"ingest:aa\" is not an ingest instance (did you mean \"a\"? there are: a, b, c)" },
  { "sink-as-source", "[feed:crypto]\nsources=events\n",
    "feeds.conf: [feed:crypto] \"events\" is not an ingest instance; a source is the NAME of an [ingest:NAME] "
    "group (there are: a, b, c)" },
  { "twice", "[feed:crypto]\nsources=a,b,a\n", "feeds.conf: [feed:crypto] a is listed twice" },
  { "two-feeds", "[feed:crypto]\nsources=a,b\n[feed:other]\nsources=c,a\n",
    "feeds.conf: [feed:other] a is already a source of [feed:crypto]; an instance feeds one feed" },
  { "no-sources", "[feed:crypto]\nfailure_threshold=2\n",
    "feeds.conf: [feed:crypto] missing required key \"sources\": ingest instances in priority order, by the NAME of "
    "[ingest:NAME]: coingecko,coinmarketcap" },
  { "empty-sources", "[feed:crypto]\nsources= , \n", "feeds.conf: [feed:crypto] names no ingest instance" },
  { "unknown-key", "[feed:crypto]\nsources=a\ncooldwn=5s\n",
    "feeds.conf: [feed:crypto] unknown key \"cooldwn\" (did you mean \"cooldown\"? allowed: sources, "
    "failure_threshold, stale_after, cooldown, recover_after, required)" },
  { "bad-name", "[feed:a b]\nsources=a\n", "feeds.conf: [feed:a b] \"a b\" is not a valid feed name (letters, digits, "
    "'-', '_', '.')" },
  { "threshold-range", "[feed:crypto]\nsources=a\nfailure_threshold=0\n",
    "feeds.conf: [feed:crypto] failure_threshold=0: 0 is outside the allowed range 1 to 1000" },
  { "bare-duration", "[feed:crypto]\nsources=a\nstale_after=60\n", NULL },
};

static void
test_config (Fixture *fx, gconstpointer data)
{
  for (guint i = 0; i < G_N_ELEMENTS (config_cases); i++)
    {
      const ConfigCase *c = &config_cases[i];
      g_autoptr(GPtrArray) problems = arb_config_problems_new ();
      g_autoptr(ArbFeeds) feeds = NULL;
      g_autofree char *joined = NULL;
      g_autofree char *want = NULL;

      g_test_message ("%s", c->name);
      feeds = feeds_from (fx, c->conf, problems);
      joined = arb_config_problems_join (problems);
      /* the problems name the file with its full path */
      want = c->problems != NULL ? g_strdup_printf ("%s/%s", fx->dir, c->problems) : NULL;
      if (want != NULL)
        g_assert_cmpstr (joined, ==, want);
      else
        {
          g_test_message ("%s", joined);
          g_assert_cmpuint (problems->len, ==, 1);
          g_assert_nonnull (strstr (joined, "stale_after"));
        }
    }

  /* a good one */
  {
    g_autoptr(GPtrArray) problems = arb_config_problems_new ();
    g_autoptr(ArbFeeds) feeds = feeds_from (fx, feed_conf, problems);
    g_assert_cmpuint (problems->len, ==, 0);
    g_assert_cmpuint (arb_feeds_get_count (feeds), ==, 1);
    /* a fifth of the shortest wait, within bounds */
    g_assert_cmpuint (feeds->tick_ms, ==, 1000);
  }
}

static void
test_failover_and_back (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) events = NULL;

  start_feeds (fx, feed_conf);
  assert_active (fx, "ingest:a");
  g_assert_cmpfloat (metric (fx, "arb_feed_up", NULL), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_active", "ingest:a"), ==, 1);

  /* quotes flow: only the active source's reach the book */
  g_assert_true (quote (fx, fx->a, BTC, 2 * S));
  g_assert_false (quote (fx, fx->b, BTC, 2 * S));
  g_assert_cmpfloat (metric (fx, "arb_feed_standby_quotes_total", "ingest:b"), ==, 1);
  report (fx, fx->a, ARB_HEALTH_OK, NULL);
  report (fx, fx->b, ARB_HEALTH_OK, NULL);

  /* two failures: still closed; the third opens it and b takes over */
  advance (fx, 10 * S);
  report (fx, fx->a, ARB_HEALTH_DEGRADED, "retrying: CoinGecko HTTP 500");
  advance (fx, 10 * S);
  report (fx, fx->a, ARB_HEALTH_DEGRADED, "retrying: CoinGecko HTTP 500");
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  assert_active (fx, "ingest:a");
  g_assert_true (quote (fx, fx->b, BTC, 1 * S) == FALSE);
  report (fx, fx->b, ARB_HEALTH_OK, NULL);
  advance (fx, 10 * S);
  report (fx, fx->a, ARB_HEALTH_DOWN, "CoinGecko HTTP 500");
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  assert_active (fx, "ingest:b");
  g_assert_true (quote (fx, fx->b, BTC, 1 * S));
  g_assert_false (quote (fx, fx->a, BTC, 1 * S)); /* an open source's quote goes nowhere */
  g_assert_cmpfloat (metric (fx, "arb_feed_failovers_total", NULL), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_breaker_state", "ingest:a"), ==, 2);
  g_assert_cmpfloat (metric (fx, "arb_feed_active", "ingest:a"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_feed_active", "ingest:b"), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_feed_breaker_trips_total", "ingest:a"), ==, 1);

  /* open: a is told to wait out the cooldown, and nothing counts it out sooner */
  advance (fx, 5 * S);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 25000);
  g_assert_cmpint (hold_off (fx, fx->b), ==, 0);
  advance (fx, 24 * S);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 1000);

  /* half-open: one probe; it fails; open again for a whole cooldown */
  advance (fx, 1 * S);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_HALF_OPEN);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 0);
  g_assert_cmpint (hold_off (fx, fx->a), >, 0); /* the probe is out: no second request */
  g_assert_cmpfloat (metric (fx, "arb_feed_probes_total", "ingest:a"), ==, 1);
  report (fx, fx->a, ARB_HEALTH_DOWN, "CoinGecko HTTP 500");
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 30000);

  /* the next probe brings a fresh quote: closed, but b stays active for now */
  advance (fx, 30 * S);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 0); /* the cooldown ends at the call, before any tick */
  g_assert_false (quote (fx, fx->a, BTC, 1 * S));
  report (fx, fx->a, ARB_HEALTH_OK, NULL);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 0);
  assert_active (fx, "ingest:b");

  /* healthy for recover_after, quotes flowing: back to a */
  for (guint i = 0; i < 5; i++)
    {
      advance (fx, 10 * S);
      quote (fx, fx->a, BTC, 1 * S);
      quote (fx, fx->b, BTC, 1 * S);
      tick (fx);
      assert_active (fx, "ingest:b");
    }
  advance (fx, 10 * S);
  quote (fx, fx->b, BTC, 1 * S);
  g_assert_true (quote (fx, fx->a, BTC, 1 * S));
  assert_active (fx, "ingest:a");
  g_assert_cmpfloat (metric (fx, "arb_feed_recoveries_total", NULL), ==, 1);
  g_assert_false (quote (fx, fx->b, BTC, 1 * S));

  events = read_events (fx, 2);
  g_assert_cmpstr (g_ptr_array_index (events, 0), ==, "feed.failover ingest:a ingest:b");
  g_assert_cmpstr (g_ptr_array_index (events, 1), ==, "feed.recovered ingest:b ingest:a");
}

/* a failure during the recovery window starts it again */
static void
test_recovery_restarts (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, feed_conf);
  for (guint i = 0; i < 3; i++)
    report (fx, fx->a, ARB_HEALTH_DOWN, "x");
  assert_active (fx, "ingest:b");
  advance (fx, 30 * S);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 0);
  quote (fx, fx->a, BTC, 0);
  report (fx, fx->a, ARB_HEALTH_OK, NULL);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  quote (fx, fx->b, BTC, 0);

  advance (fx, 50 * S);
  quote (fx, fx->b, BTC, 0);
  report (fx, fx->a, ARB_HEALTH_DEGRADED, "retrying: a hiccup");
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  advance (fx, 20 * S);
  quote (fx, fx->a, BTC, 0);
  quote (fx, fx->b, BTC, 0);
  tick (fx);
  assert_active (fx, "ingest:b"); /* 70 s since closing, 20 s since the hiccup */
  /* healthy again from its next fresh quote on: 60 s from there */
  advance (fx, 40 * S);
  quote (fx, fx->a, BTC, 0);
  quote (fx, fx->b, BTC, 0);
  tick (fx);
  assert_active (fx, "ingest:b");
  advance (fx, 20 * S);
  quote (fx, fx->b, BTC, 0);
  tick (fx);
  assert_active (fx, "ingest:a");
  read_events (fx, 2);
}

/* a partial answer (quotes, then a DEGRADED report) is not a failure */
static void
test_partial_is_not_failure (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, feed_conf);
  for (guint i = 0; i < 10; i++)
    {
      advance (fx, 10 * S);
      g_assert_true (quote (fx, fx->a, BTC, 1 * S));
      report (fx, fx->a, ARB_HEALTH_DEGRADED, "CoinGecko has no price for solana");
      quote (fx, fx->b, BTC, 1 * S);
      tick (fx);
    }
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  assert_active (fx, "ingest:a");
  g_assert_cmpfloat (metric (fx, "arb_feed_failures_total", "ingest:a"), ==, 0);

  /* but a DEGRADED report with nothing delivered is */
  for (guint i = 0; i < 3; i++)
    report (fx, fx->a, ARB_HEALTH_DEGRADED, "CoinGecko has no price for any market");
  assert_active (fx, "ingest:b");
}

/* silence, and quotes the upstream stopped updating, open the breaker */
static void
test_stale (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, feed_conf);
  quote (fx, fx->a, BTC, 1 * S);
  quote (fx, fx->b, BTC, 1 * S);
  /* a's upstream stopped updating its time: every quote is over 60 s old; b stays fresh */
  for (guint i = 0; i < 5; i++)
    {
      advance (fx, 10 * S);
      g_assert_true (quote (fx, fx->a, BTC, (51 + 10 * (gint64) (i + 1)) * S));
      report (fx, fx->a, ARB_HEALTH_OK, NULL);
      quote (fx, fx->b, BTC, 1 * S);
      tick (fx);
    }
  assert_active (fx, "ingest:a"); /* 50 s since the last fresh quote */
  advance (fx, 11 * S);
  quote (fx, fx->b, BTC, 1 * S);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  assert_active (fx, "ingest:b");

  /* and silence */
  advance (fx, 61 * S);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->b), ==, ARB_BREAKER_OPEN);
  assert_active (fx, NULL);
  read_events (fx, 2);
}

static void
test_both_down (Fixture *fx, gconstpointer data)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autoptr(GPtrArray) events = NULL;
  gboolean ready = TRUE;

  start_feeds (fx, feed_conf);
  g_assert_true (quote (fx, fx->a, BTC, 0));
  report (fx, fx->a, ARB_HEALTH_OK, NULL);
  g_assert_true (arb_feeds_market_has_healthy_source (fx->feeds, BTC));
  for (guint i = 0; i < 3; i++)
    {
      report (fx, fx->a, ARB_HEALTH_DOWN, "CoinGecko HTTP 500");
      report (fx, fx->b, ARB_HEALTH_DOWN, "CoinMarketCap HTTP 401: error 1001");
    }
  assert_active (fx, NULL);
  g_assert_false (arb_feeds_market_has_healthy_source (fx->feeds, BTC));
  /* a market no source of a feed quoted is not the feeds' business */
  g_assert_true (arb_feeds_market_has_healthy_source (fx->feeds, "crypto:DOGE-USD"));
  g_assert_cmpfloat (metric (fx, "arb_feed_up", NULL), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_feed_down_total", NULL), ==, 1);

  json_builder_begin_object (b);
  arb_feeds_add_ready_json (fx->feeds, b, &ready);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, NULL);
  g_test_message ("%s", json);
  g_assert_false (ready);
  g_assert_nonnull (strstr (json, "\"name\":\"feed:crypto\",\"required\":true,\"state\":\"down\",\"active\":null"));
  g_assert_nonnull (strstr (json, "\"name\":\"ingest:a\",\"breaker\":\"open\",\"instance\":\"running\""));
  g_assert_nonnull (strstr (json, "\"reason\":\"3 failures in a row, the last: down: CoinMarketCap HTTP 401: error "
                                  "1001\""));

  /* b comes back first: it takes over from nothing */
  advance (fx, 30 * S);
  g_assert_cmpint (hold_off (fx, fx->b), ==, 0);
  g_assert_true (quote (fx, fx->b, BTC, 0));
  assert_active (fx, "ingest:b");
  g_assert_true (arb_feeds_market_has_healthy_source (fx->feeds, BTC));
  events = read_events (fx, 3);
  g_assert_cmpstr (g_ptr_array_index (events, 1), ==, "feed.down ingest:b -");
  g_assert_cmpstr (g_ptr_array_index (events, 2), ==, "feed.failover - ingest:b");
}

/* a source whose instance stops is out, whatever its breaker says */
static void
test_instance_stops (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, feed_conf);
  quote (fx, fx->a, BTC, 0);
  arb_instance_stop (fx->a);
  tick (fx);
  assert_active (fx, "ingest:b");
  read_events (fx, 1);
}

static void
test_publish_errors_and_probe_timeout (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, "[feed:crypto]\nsources=a\nfailure_threshold=2\nstale_after=10s\ncooldown=20s\n");
  on_publish_error_at (fx->feeds, fx->a, "quote for crypto:BTC-USD has bid 2 above ask 1", &fx->now);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_CLOSED);
  on_publish_error_at (fx->feeds, fx->a, "quote for crypto:BTC-USD has bid 2 above ask 1", &fx->now);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  assert_active (fx, NULL);

  /* a probe that never comes back: open again after max(stale_after, cooldown) */
  advance (fx, 20 * S);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 0);
  advance (fx, 15 * S);
  g_assert_cmpint (hold_off (fx, fx->a), ==, 5000);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_HALF_OPEN);
  advance (fx, 6 * S);
  tick (fx);
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  g_assert_cmpfloat (metric (fx, "arb_feed_breaker_trips_total", "ingest:a"), ==, 2);
  g_assert_cmpfloat (metric (fx, "arb_feed_held_off_total", "ingest:a"), ==, 1);
}

/* before the host starts the feeds, the first source's quotes go on and nothing switches */
static void
test_before_start (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();

  fx->feeds = feeds_from (fx, feed_conf, problems);
  g_assert_cmpuint (problems->len, ==, 0);
  g_assert_true (quote (fx, fx->a, BTC, 0));
  g_assert_false (quote (fx, fx->b, BTC, 0));
  for (guint i = 0; i < 5; i++)
    report (fx, fx->a, ARB_HEALTH_DOWN, "early trouble");
  assert_active (fx, "ingest:a");
  /* the breaker counted them all the same, and the feed starts with b */
  g_assert_cmpint (arb_feeds_get_breaker (fx->feeds, fx->a), ==, ARB_BREAKER_OPEN);
  start_at (fx->feeds, &fx->now);
  assert_active (fx, "ingest:b");
  tick (fx);
  assert_active (fx, "ingest:b");
  g_assert_cmpfloat (metric (fx, "arb_feed_failovers_total", NULL), ==, 0);
}

/* an instance in no feed: every quote goes on, no hold-off ever */
static void
test_not_in_a_feed (Fixture *fx, gconstpointer data)
{
  start_feeds (fx, feed_conf);
  for (guint i = 0; i < 5; i++)
    report (fx, fx->c, ARB_HEALTH_DOWN, "whatever");
  g_assert_true (quote (fx, fx->c, "crypto:ETH-USD", 3600 * S));
  g_assert_cmpint (hold_off (fx, fx->c), ==, 0);
  g_assert_true (arb_feeds_market_has_healthy_source (fx->feeds, "crypto:ETH-USD"));
  /* and the NULL feeds the host has before it reads any */
  g_assert_true (arb_feeds_accept_quote (NULL, fx->c, NULL));
  g_assert_cmpint (arb_feeds_hold_off_ms (NULL, fx->c), ==, 0);
}

/* the real timer on the host's context, with real clocks */
static void
test_real_timer (Fixture *fx, gconstpointer data)
{
  gint64 deadline;

  fx->feeds = NULL;
  {
    g_autoptr(GPtrArray) problems = arb_config_problems_new ();
    fx->feeds = feeds_from (fx, "[feed:crypto]\nsources=a,b\nstale_after=300ms\ncooldown=200ms\nrecover_after=0ms\n",
                            problems);
    g_assert_cmpuint (problems->len, ==, 0);
  }
  g_assert_cmpuint (fx->feeds->tick_ms, ==, 40); /* a fifth of the 200 ms cooldown */
  arb_feeds_start (fx->feeds);
  assert_active (fx, "ingest:a");
  /* nobody quotes: both go stale within stale_after and a tick */
  deadline = g_get_monotonic_time () + 2 * S;
  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *active = arb_feeds_dup_active (fx->feeds, FEED);
      if (active == NULL)
        break;
      g_main_context_iteration (fx->host->context, FALSE);
      g_usleep (5000);
    }
  assert_active (fx, NULL);
  arb_feeds_stop (fx->feeds);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  arb_test_log_install ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/feed/config", test_config);
  ADD ("/feed/failover-and-back", test_failover_and_back);
  ADD ("/feed/recovery-restarts", test_recovery_restarts);
  ADD ("/feed/partial-is-not-failure", test_partial_is_not_failure);
  ADD ("/feed/stale", test_stale);
  ADD ("/feed/both-down", test_both_down);
  ADD ("/feed/instance-stops", test_instance_stops);
  ADD ("/feed/publish-errors-and-probe-timeout", test_publish_errors_and_probe_timeout);
  ADD ("/feed/before-start", test_before_start);
  ADD ("/feed/not-in-a-feed", test_not_in_a_feed);
  ADD ("/feed/real-timer", test_real_timer);
#undef ADD

  return g_test_run ();
}
