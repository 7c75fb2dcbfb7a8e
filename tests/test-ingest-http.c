/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-coingecko and ingest-coinmarketcap in a real host, against the fake
 * upstream: quotes reach the price book with the exact recorded prices and
 * the upstream's time; every fault the fake can make turns into the health
 * the plugin README promises, with the reason decoded from the provider's own
 * error body; Retry-After and the auth backoff are honoured (the fake counts
 * the requests); keys travel in the right header and are read again after a
 * refusal.
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "arb-host-private.h"
#include "arb-test-log.h"
#include "fake-upstream/fake-upstream.h"

#define CG_PATH  "/api/v3/simple/price"
#define CMC_PATH "/v2/cryptocurrency/quotes/latest"
#define S        G_GINT64_CONSTANT (1000000)
/* the fake's clock: 2026-11-21T06:00:00Z */
#define CLOCK    (G_GINT64_CONSTANT (1795240800) * S)

typedef struct {
  char         *fixtures;
  FakeUpstream *fu;
  char         *dir;
  ArbHost      *host;
  ArbInstance  *inst;
} Fixture;

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->fixtures = fake_upstream_find_fixtures ();
  if (fx->fixtures == NULL)
    return;
  fx->fu = fake_upstream_new (fx->fixtures, &error);
  g_assert_no_error (error);
  fake_upstream_set_clock (fx->fu, CLOCK);
  fake_upstream_serve_file (fx->fu, CG_PATH, "coingecko/simple_price_full.json");
  fake_upstream_serve_file (fx->fu, CMC_PATH, "coinmarketcap/v2_quotes_latest_id.json");
  fx->dir = g_dir_make_tmp ("arb-test-ingest-http-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  if (fx->host != NULL)
    {
      for (guint i = 0; i < fx->host->instances->len; i++)
        {
          ArbInstance *inst = g_ptr_array_index (fx->host->instances, i);
          arb_instance_stop (inst);
          arb_instance_destroy (inst);
        }
      g_clear_pointer (&fx->host, arb_host_free);
    }
  g_clear_pointer (&fx->fu, fake_upstream_free);
  if (fx->dir != NULL)
    {
      g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
      g_autofree char *key = g_build_filename (fx->dir, "key", NULL);
      g_remove (conf);
      g_remove (key);
      g_rmdir (fx->dir);
    }
  g_free (fx->dir);
  g_free (fx->fixtures);
  arb_test_log_check ();
}

static gboolean
need_fixtures (Fixture *fx)
{
  if (fx->fixtures != NULL)
    return TRUE;
  g_test_skip ("no fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream");
  return FALSE;
}

/* a host with one ingest instance, @group_body after [ingest:x]; created and
 * started, with the shared session the real host lends */
static void
start_instance (Fixture *fx, const char *group_body)
{
  g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\nstate_dir=state\n[ingest:x]\n%s", group_body);
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GProxyResolver) direct = g_simple_proxy_resolver_new ("direct://", NULL);
  g_autofree char *joined = NULL;

  g_file_set_contents (conf, text, -1, &error);
  g_assert_no_error (error);
  fx->host = arb_host_new (conf, problems, &error);
  joined = arb_config_problems_join (problems);
  g_assert_cmpstr (joined, ==, "");
  g_assert_no_error (error);
  fx->host->soup_session = soup_session_new_with_options ("proxy-resolver", direct, NULL);
  fx->inst = arb_host_find_instance (fx->host, "ingest:x");
  g_assert_true (arb_instance_create (fx->inst, &error));
  g_assert_no_error (error);
  /* going DOWN is a warning of the host's; these tests cause it on purpose */
  arb_test_log_allow (G_LOG_LEVEL_WARNING, "ingest:x");
  g_assert_true (arb_instance_start (fx->inst, &error));
  g_assert_no_error (error);
}

static char *
cg_conf (Fixture *fx, const char *extra)
{
  g_autofree char *url = fake_upstream_url (fx->fu, "/api/v3");
  return g_strdup_printf ("plugin=ingest-coingecko\nbase_url=%s\n"
                          "markets=bitcoin:crypto:BTC-USD,ethereum:crypto:ETH-USD\n"
                          "interval=100ms\ntimeout=500ms\n%s", url, extra != NULL ? extra : "");
}

static char *
cmc_conf (Fixture *fx, const char *extra)
{
  g_autofree char *url = fake_upstream_url (fx->fu, NULL);
  return g_strdup_printf ("plugin=ingest-coinmarketcap\nbase_url=%s\nmarkets=1:crypto:BTC-USD,1027:crypto:ETH-USD\n"
                          "interval=100ms\ntimeout=500ms\napi_key_env=ARB_TEST_CMC_KEY\n%s", url,
                          extra != NULL ? extra : "");
}

static gboolean
set_true (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* runs the host's context for @ms */
static void
run_for (Fixture *fx, guint ms)
{
  gboolean done = FALSE;
  GSource *s = g_timeout_source_new (ms);

  g_source_set_callback (s, set_true, &done, NULL);
  g_source_attach (s, fx->host->context);
  while (!done)
    g_main_context_iteration (fx->host->context, TRUE);
  g_source_destroy (s);
  g_source_unref (s);
}

/* runs the host's context until the instance's health is @health with a
 * reason starting with @prefix (NULL: any), for up to 5 s; returns the reason */
static char *
wait_health (Fixture *fx, ArbHealth health, const char *prefix)
{
  gint64 deadline = g_get_monotonic_time () + 5 * S;

  for (;;)
    {
      g_autofree char *reason = arb_instance_dup_reason (fx->inst);

      if (arb_instance_get_health (fx->inst) == health
          && (prefix == NULL || (reason != NULL && g_str_has_prefix (reason, prefix))))
        return g_steal_pointer (&reason);
      if (g_get_monotonic_time () > deadline)
        g_error ("health %s \"%s\", waited for %s \"%s…\"", arb_health_to_string (arb_instance_get_health (fx->inst)),
                 reason, arb_health_to_string (health), prefix != NULL ? prefix : "");
      run_for (fx, 10);
    }
}

/* runs the host's context until the book has a quote for @market with a
 * source time of at least @source_time, for up to 5 s */
static void
wait_book (Fixture *fx, const char *market, gint64 source_time)
{
  gint64 deadline = g_get_monotonic_time () + 5 * S;

  for (;;)
    {
      g_autoptr(ArbQuote) q = arb_price_book_get (fx->host->book, market);

      if (q != NULL && arb_quote_get_source_time (q) >= source_time)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("no quote for %s in the book after 5 s (health %s: %s)", market,
                 arb_health_to_string (arb_instance_get_health (fx->inst)), arb_instance_dup_reason (fx->inst));
      run_for (fx, 10);
    }
}

static void
assert_book (Fixture *fx, const char *market, const char *price, gint64 source_time)
{
  g_autoptr(ArbQuote) q = arb_price_book_get (fx->host->book, market);
  char buf[ARB_DECIMAL_BUFSIZE];
  ArbDecimal d;

  g_assert_nonnull (q);
  g_assert_true (arb_quote_get_last (q, &d));
  g_assert_cmpstr (arb_decimal_format_short (d, buf), ==, price);
  g_assert_cmpint (arb_quote_get_source_time (q), ==, source_time);
  g_assert_cmpstr (arb_quote_get_source (q), ==, "x");
}

static gdouble
plugin_metric (Fixture *fx, const char *name)
{
  g_autofree char *full = g_strdup_printf ("arb_plugin_%s", name);
  return arb_metrics_get (fx->host->metrics, full, fx->inst->labels);
}

/* ------------------------------------------------------------------------ */
/* CoinGecko                                                                */

static void
test_cg_quotes (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *query = NULL;
  g_autofree char *demo_key = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  conf = cg_conf (fx, NULL);
  start_instance (fx, conf);
  wait_book (fx, "crypto:ETH-USD", CLOCK);
  reason = wait_health (fx, ARB_HEALTH_OK, NULL);
  g_assert_null (reason);
  /* the recorded prices to the digit, the fake's clock as the source time */
  assert_book (fx, "crypto:BTC-USD", "91234.56", CLOCK);
  assert_book (fx, "crypto:ETH-USD", "3021.44", CLOCK);
  query = fake_upstream_dup_last_query (fx->fu, CG_PATH);
  g_assert_cmpstr (query, ==, "ids=bitcoin,ethereum&vs_currencies=usd&include_last_updated_at=true&precision=full");
  /* keyless demo: no key header at all */
  demo_key = fake_upstream_dup_last_header (fx->fu, CG_PATH, "x-cg-demo-api-key");
  g_assert_null (demo_key);

  /* a new price on the next poll */
  fake_upstream_set_clock (fx->fu, CLOCK + 10 * S);
  fake_upstream_replace (fx->fu, CG_PATH, "\"usd\":91234.56,", "\"usd\":91300.5,");
  wait_book (fx, "crypto:BTC-USD", CLOCK + 10 * S);
  assert_book (fx, "crypto:BTC-USD", "91300.5", CLOCK + 10 * S);
  g_assert_cmpfloat (plugin_metric (fx, "quotes_published_total"), >=, 4);
  g_assert_cmpfloat (plugin_metric (fx, "requests_total"), >=, 2);
}

static void
test_cg_pro_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *pro = NULL;
  g_autofree char *demo = NULL;

  if (!need_fixtures (fx))
    return;
  g_setenv ("ARB_TEST_CG_KEY", "CG-pro-test", TRUE);
  conf = cg_conf (fx, "plan=pro\napi_key_env=ARB_TEST_CG_KEY\n");
  start_instance (fx, conf);
  wait_book (fx, "crypto:BTC-USD", CLOCK);
  pro = fake_upstream_dup_last_header (fx->fu, CG_PATH, "x-cg-pro-api-key");
  demo = fake_upstream_dup_last_header (fx->fu, CG_PATH, "x-cg-demo-api-key");
  g_assert_cmpstr (pro, ==, "CG-pro-test");
  g_assert_null (demo);
}

static void
test_cg_partial (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, CG_PATH, "coingecko/simple_price_partial_unknown.json");
  conf = cg_conf (fx, NULL);
  start_instance (fx, conf);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, NULL);
  g_assert_cmpstr (reason, ==, "CoinGecko has no price for ethereum (not in the answer: unknown or delisted ids); "
                               "1 of 2 markets quoted");
  assert_book (fx, "crypto:BTC-USD", "91230.12", CLOCK);
  g_assert_null (arb_price_book_get (fx->host->book, "crypto:ETH-USD"));
  g_assert_cmpfloat (plugin_metric (fx, "market_errors_total"), >=, 1);
  /* a per-market error, not a failure: it stays DEGRADED, never DOWN */
  run_for (fx, 500);
  g_assert_cmpint (arb_instance_get_health (fx->inst), ==, ARB_HEALTH_DEGRADED);
}

typedef struct {
  const char *name;
  FakeFault   fault;
  ArbHealth   first;        /* the health after the first failed request */
  const char *reason;       /* its reason's beginning; @ROOT@: the fake's root URL */
  gboolean    malformed;
} FaultCase;

static const FaultCase cg_faults[] = {
  { "500", FAKE_FAULT_500, ARB_HEALTH_DEGRADED,
    "retrying: CoinGecko HTTP 500 Internal Server Error: 500 Internal Server Error", FALSE },
  { "401", FAKE_FAULT_401, ARB_HEALTH_DOWN,
    "CoinGecko HTTP 401 Unauthorized: error 10002: API Key Missing. Please make sure you're using the right "
    "authentication method.", FALSE },
  { "403", FAKE_FAULT_403, ARB_HEALTH_DOWN,
    "CoinGecko HTTP 403 Forbidden: error code: 1020 (Cloudflare refused this address (error 1020))", FALSE },
  { "hang", FAKE_FAULT_HANG, ARB_HEALTH_DEGRADED, "retrying: CoinGecko: no answer from @ROOT@ within 500 ms", FALSE },
  { "drop", FAKE_FAULT_DROP, ARB_HEALTH_DEGRADED, "retrying: CoinGecko: cannot reach @ROOT@: ", FALSE },
  { "truncated", FAKE_FAULT_TRUNCATED, ARB_HEALTH_DEGRADED,
    "retrying: CoinGecko: not JSON: the text ends inside ", TRUE },
  { "malformed", FAKE_FAULT_MALFORMED, ARB_HEALTH_DEGRADED,
    "retrying: CoinGecko: not JSON: the text ends inside an object or array (truncated?)", TRUE },
};

static void
test_cg_fault (Fixture *fx, gconstpointer data)
{
  const FaultCase *c = data;
  g_autofree char *conf = NULL;
  g_autofree char *root = NULL;
  g_autofree char *want = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  conf = cg_conf (fx, NULL);
  start_instance (fx, conf);
  wait_book (fx, "crypto:ETH-USD", CLOCK);
  fake_upstream_set_fault (fx->fu, CG_PATH, c->fault, 0);
  root = fake_upstream_url (fx->fu, NULL);
  {
    GString *w = g_string_new (c->reason);
    g_string_replace (w, "@ROOT@", root, 0);
    want = g_string_free (w, FALSE);
  }
  reason = wait_health (fx, c->first, want);
  g_test_message ("%s", reason);
  if (c->malformed)
    g_assert_cmpfloat (plugin_metric (fx, "malformed_answers_total"), >=, 1);
  /* three failures in a row: DOWN */
  if (c->first == ARB_HEALTH_DEGRADED)
    {
      g_autofree char *down = wait_health (fx, ARB_HEALTH_DOWN, NULL);
      g_test_message ("%s", down);
      g_assert_false (g_str_has_prefix (down, "retrying: "));
    }
  /* the book keeps the last good prices; nothing wrong went in */
  assert_book (fx, "crypto:BTC-USD", "91234.56", CLOCK);
  /* and the next good answer heals it */
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_NONE, 0);
  g_clear_pointer (&reason, g_free);
  reason = wait_health (fx, ARB_HEALTH_OK, NULL);
}

/* 429: nothing before Retry-After, then on again */
static void
test_cg_retry_after (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  guint before;

  if (!need_fixtures (fx))
    return;
  conf = cg_conf (fx, NULL);
  start_instance (fx, conf);
  wait_book (fx, "crypto:ETH-USD", CLOCK);
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_429, 2);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, "rate limited");
  g_assert_cmpstr (reason, ==, "rate limited, next request in 2 s: CoinGecko HTTP 429 Too Many Requests: error 429: "
                               "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
                               "to subscribe to our API plans for higher rate limits.");
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_NONE, 0);
  before = fake_upstream_get_request_count (fx->fu, CG_PATH);
  /* polling every 100 ms would have sent 15 */
  run_for (fx, 1500);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PATH), ==, before);
  wait_health (fx, ARB_HEALTH_OK, NULL);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PATH), ==, before + 1);
  g_assert_cmpfloat (plugin_metric (fx, "rate_limited_total"), ==, 1);
}

/* a refused key backs off, doubling from the interval */
static void
test_cg_auth_backoff (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  guint n;

  if (!need_fixtures (fx))
    return;
  fake_upstream_set_fault (fx->fu, CG_PATH, FAKE_FAULT_401, 0);
  conf = cg_conf (fx, NULL);
  start_instance (fx, conf);
  g_free (wait_health (fx, ARB_HEALTH_DOWN, "CoinGecko HTTP 401"));
  fake_upstream_reset_counts (fx->fu);
  /* waits of 200, 400, 800 ms after the first: about 3 in 1.5 s, not 15 */
  run_for (fx, 1500);
  n = fake_upstream_get_request_count (fx->fu, CG_PATH);
  g_test_message ("%u requests in 1.5 s", n);
  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpuint (n, <=, 4);
}

/* no network at all: it runs, and says why it gets nothing */
static void
test_cg_unreachable (Fixture *fx, gconstpointer data)
{
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  start_instance (fx, "plugin=ingest-coingecko\nbase_url=http://127.0.0.1:9/api/v3\nmarkets=bitcoin:crypto:BTC-USD\n"
                      "interval=100ms\n");
  g_assert_cmpint (arb_instance_get_state (fx->inst), ==, ARB_INSTANCE_RUNNING);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, "retrying: CoinGecko: cannot reach http://127.0.0.1:9: ");
  g_test_message ("%s", reason);
}

/* ------------------------------------------------------------------------ */
/* CoinMarketCap                                                            */

static void
test_cmc_quotes (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *key = NULL;
  g_autofree char *query = NULL;

  if (!need_fixtures (fx))
    return;
  g_setenv ("ARB_TEST_CMC_KEY", "cmc-key-1", TRUE);
  conf = cmc_conf (fx, NULL);
  start_instance (fx, conf);
  wait_book (fx, "crypto:ETH-USD", CLOCK);
  assert_book (fx, "crypto:BTC-USD", "91236.02004782", CLOCK);
  assert_book (fx, "crypto:ETH-USD", "3021.558112", CLOCK);
  key = fake_upstream_dup_last_header (fx->fu, CMC_PATH, "X-CMC_PRO_API_KEY");
  g_assert_cmpstr (key, ==, "cmc-key-1");
  query = fake_upstream_dup_last_query (fx->fu, CMC_PATH);
  g_assert_cmpstr (query, ==, "id=1,1027&convert=USD&skip_invalid=true");
}

/* 1008 without Retry-After: a minute; with one: what it says */
static void
test_cmc_rate_limit (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  g_setenv ("ARB_TEST_CMC_KEY", "cmc-key-1", TRUE);
  conf = cmc_conf (fx, NULL);
  start_instance (fx, conf);
  wait_book (fx, "crypto:ETH-USD", CLOCK);
  fake_upstream_set_fault (fx->fu, CMC_PATH, FAKE_FAULT_429, -1);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, "rate limited");
  g_assert_cmpstr (reason, ==, "rate limited, next request in 60 s: CoinMarketCap HTTP 429 Too Many Requests: error "
                               "1008: You've exceeded your API Key's HTTP request rate limit. Rate limits reset every "
                               "minute.");
}

/* an invalid key: DOWN, and the key is read again before the next try */
static void
test_cmc_key_rotation (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *key = NULL;
  g_autofree char *key_file = g_build_filename (fx->dir, "key", NULL);
  g_autofree char *extra = NULL;
  g_autoptr(GError) error = NULL;

  if (!need_fixtures (fx))
    return;
  g_file_set_contents (key_file, "old-key\n", -1, &error);
  g_assert_no_error (error);
  fake_upstream_set_fault (fx->fu, CMC_PATH, FAKE_FAULT_401, 0);
  {
    g_autofree char *url = fake_upstream_url (fx->fu, NULL);
    conf = g_strdup_printf ("plugin=ingest-coinmarketcap\nbase_url=%s\nmarkets=1:crypto:BTC-USD\ninterval=100ms\n"
                            "api_key_file=%s\n", url, key_file);
  }
  start_instance (fx, conf);
  reason = wait_health (fx, ARB_HEALTH_DOWN, NULL);
  g_assert_cmpstr (reason, ==, "CoinMarketCap HTTP 401 Unauthorized: error 1001: This API Key is invalid. (check "
                               "api_key_env or api_key_file)");
  key = fake_upstream_dup_last_header (fx->fu, CMC_PATH, "X-CMC_PRO_API_KEY");
  g_assert_cmpstr (key, ==, "old-key");

  g_file_set_contents (key_file, "new-key\n", -1, &error);
  fake_upstream_set_fault (fx->fu, CMC_PATH, FAKE_FAULT_NONE, 0);
  wait_book (fx, "crypto:BTC-USD", CLOCK);
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  g_clear_pointer (&key, g_free);
  key = fake_upstream_dup_last_header (fx->fu, CMC_PATH, "X-CMC_PRO_API_KEY");
  g_assert_cmpstr (key, ==, "new-key");
}

/* status.error_code with HTTP 200 */
static void
test_cmc_error_with_200 (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  g_setenv ("ARB_TEST_CMC_KEY", "cmc-key-1", TRUE);
  fake_upstream_serve_text (fx->fu, CMC_PATH, 200, "application/json",
                            "{\"status\":{\"timestamp\":\"2026-11-21T06:00:00.000Z\",\"error_code\":1006,"
                            "\"error_message\":\"Your API Key subscription plan doesn't support this endpoint.\","
                            "\"elapsed\":0,\"credit_count\":0}}");
  conf = cmc_conf (fx, NULL);
  start_instance (fx, conf);
  reason = wait_health (fx, ARB_HEALTH_DOWN, NULL);
  g_assert_cmpstr (reason, ==, "CoinMarketCap HTTP 200 OK: error 1006: Your API Key subscription plan doesn't "
                               "support this endpoint. (the key's plan does not include this endpoint)");
}

/* no key, no start, and the reason says what to do */
static void
test_cmc_no_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (fx->dir, "arbiter.conf", NULL);

  if (!need_fixtures (fx))
    return;
  conf = g_strdup ("[runtime]\nstate_dir=state\n[ingest:x]\nplugin=ingest-coinmarketcap\nmarkets=1:crypto:BTC-USD\n");
  g_file_set_contents (path, conf, -1, &error);
  fx->host = arb_host_new (path, problems, &error);
  g_assert_cmpuint (problems->len, ==, 0);
  fx->inst = arb_host_find_instance (fx->host, "ingest:x");
  g_assert_true (arb_instance_create (fx->inst, NULL));
  arb_test_log_allow (G_LOG_LEVEL_WARNING, "ingest:x");
  g_assert_false (arb_instance_start (fx->inst, &error));
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
  g_assert_cmpint (arb_instance_get_state (fx->inst), ==, ARB_INSTANCE_FAILED);
  reason = arb_instance_dup_reason (fx->inst);
  g_assert_cmpstr (reason, ==, "start: api_key: CoinMarketCap answers only with a key: set api_key_env=VARIABLE or "
                               "api_key_file=PATH (a free Basic key will do)");
}

static void
drop_message (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  arb_test_log_install ();
  /* GSocketClient asks for the default proxy resolver even when the session
   * has its own; GNOME's reads GSettings, whose schemas the isolated dirs hide */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_log_set_handler ("GLib", G_LOG_LEVEL_DEBUG, drop_message, NULL);
  g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG, drop_message, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/ingest-http/coingecko/quotes", test_cg_quotes);
  ADD ("/ingest-http/coingecko/pro-key", test_cg_pro_key);
  ADD ("/ingest-http/coingecko/partial", test_cg_partial);
  for (guint i = 0; i < G_N_ELEMENTS (cg_faults); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ingest-http/coingecko/fault/%s", cg_faults[i].name);
      g_test_add (path, Fixture, &cg_faults[i], fixture_up, test_cg_fault, fixture_down);
    }
  ADD ("/ingest-http/coingecko/retry-after", test_cg_retry_after);
  ADD ("/ingest-http/coingecko/auth-backoff", test_cg_auth_backoff);
  ADD ("/ingest-http/coingecko/unreachable", test_cg_unreachable);
  ADD ("/ingest-http/coinmarketcap/quotes", test_cmc_quotes);
  ADD ("/ingest-http/coinmarketcap/rate-limit", test_cmc_rate_limit);
  ADD ("/ingest-http/coinmarketcap/key-rotation", test_cmc_key_rotation);
  ADD ("/ingest-http/coinmarketcap/error-with-200", test_cmc_error_with_200);
  ADD ("/ingest-http/coinmarketcap/no-key", test_cmc_no_key);
#undef ADD

  return g_test_run ();
}
