/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-polymarket and ingest-kalshi in a real host, against the fake
 * upstream speaking the recorded sessions over real WebSockets (text frames,
 * ping/pong, closes) and the recorded REST answers:
 *
 * - quotes reach the price book with the recorded prices (books sorted,
 *   best level last, price_change's own best bid and ask, Kalshi's NO side
 *   as the complement of YES);
 * - the subscriptions the fake receives are the documented ones; a market
 *   found later is added to the open socket; a dropped socket reconnects
 *   and subscribes again; a silent one is closed after stale_after;
 * - Kalshi's signatures are verified by the fake with the public key, and a
 *   wrong key is refused with Kalshi's own 401;
 * - an order book seq gap asks for a new snapshot (on the socket, else over
 *   REST); REST prices only while the socket is down, within the budget,
 *   honouring 429;
 * - statuses: Polymarket's market_resolved closes the market and only
 *   Gamma settles it; Kalshi's lifecycle events halt, reopen and settle;
 * - events: every token of a Gamma event (found by event slug, or named by
 *   the market's own events[]) and both sides of a Kalshi market (its
 *   event_ticker) reach the host's market-to-event mapping.
 */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "arb-host-private.h"
#include "arb-test-log.h"
#include "fake-upstream/fake-kalshi-auth.h"
#include "fake-upstream/fake-upstream.h"

#define S            G_GINT64_CONSTANT (1000000)
#define PM_WS        "/ws/market"
#define KS_WS        "/trade-api/ws/v2"
#define KS_MARKETS   "/trade-api/v2/markets"
#define KS_BTC_PATH  "/trade-api/v2/markets/KXBTCD-26NOV2117-T91999.99"
#define KS_KEY_ID    "ec527188-50e1-4885-b5d9-c9b0dfa2ce45"

#define BTC_YES "20773232163871213384917296104489009032842658986967298485532941984084374884614"
#define BTC_NO  "34723739154358735348092883040308839756380110246987612836492306249427626619927"
#define ETH_YES "46096662783338673092330110558598013304958671615798781518556281431378005814059"
#define ETH_NO  "86246268009048762669948111922835778640552258264973944583659196153404398703833"
#define UP      "70945937133212512974150829279089636051757640928559035835817800969929165047649"
#define DOWN    "19302467774626838573549198877594945407906445297103381493617500201477027898258"
#define BTC_SLUG "will-bitcoin-reach-150000-by-december-31-2026"
#define ETH_SLUG "will-ethereum-be-above-3000-on-november-30-2026"
#define FED_SLUG "fed-decision-in-december-2026"
#define KX_BTC   "KXBTCD-26NOV2117-T91999.99"
#define KX_FED   "KXFED-26DEC-T3.75"

typedef struct {
  char           *fixtures;
  FakeUpstream   *fu;
  FakeKalshiAuth *auth;
  char           *dir;
  char           *key_file;
  char           *public_pem;
  ArbHost        *host;
  ArbInstance    *inst;
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
  fx->dir = g_dir_make_tmp ("arb-test-ingest-prediction-XXXXXX", &error);
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
      /* what the stop left to finish (cancelled requests, closing sockets) */
      for (guint i = 0; i < 50 && g_main_context_iteration (fx->host->context, FALSE); i++)
        ;
      g_clear_pointer (&fx->host, arb_host_free);
    }
  g_clear_pointer (&fx->fu, fake_upstream_free);
  g_clear_pointer (&fx->auth, fake_kalshi_auth_free);
  if (fx->dir != NULL)
    {
      g_autoptr(GDir) d = g_dir_open (fx->dir, 0, NULL);
      const char *name;
      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *full = g_build_filename (fx->dir, name, NULL);
          g_remove (full);
        }
      g_rmdir (fx->dir);
    }
  g_free (fx->dir);
  g_free (fx->key_file);
  g_free (fx->public_pem);
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

static char *
fixture_text (Fixture *fx, const char *name)
{
  g_autofree char *path = g_build_filename (fx->fixtures, name, NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* a host with one ingest instance, @group_body after [ingest:x] */
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

static gboolean
set_true (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

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

typedef gboolean (*Cond) (Fixture *fx, gconstpointer data);

/* runs the host until @cond holds, for up to @seconds; fails saying @what */
static void
wait_until (Fixture *fx, Cond cond, gconstpointer data, guint seconds, const char *what)
{
  gint64 deadline = g_get_monotonic_time () + seconds * S;

  while (!cond (fx, data))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *reason = arb_instance_dup_reason (fx->inst);
          g_error ("waited %u s for %s; health %s: %s", seconds, what,
                   arb_health_to_string (arb_instance_get_health (fx->inst)), reason);
        }
      run_for (fx, 10);
    }
}

/* the book's quote for @market as "bid/ask/last" ("-" where unset) */
static char *
book_text (Fixture *fx, const char *market)
{
  g_autoptr(ArbQuote) q = arb_price_book_get (fx->host->book, market);
  char b[ARB_DECIMAL_BUFSIZE], a[ARB_DECIMAL_BUFSIZE], l[ARB_DECIMAL_BUFSIZE];
  ArbDecimal d;

  if (q == NULL)
    return NULL;
  return g_strdup_printf ("%s/%s/%s", arb_quote_get_bid (q, &d) ? arb_decimal_format_short (d, b) : "-",
                          arb_quote_get_ask (q, &d) ? arb_decimal_format_short (d, a) : "-",
                          arb_quote_get_last (q, &d) ? arb_decimal_format_short (d, l) : "-");
}

typedef struct {
  const char *market;
  const char *text;
} BookWant;

static gboolean
book_is (Fixture *fx, gconstpointer data)
{
  const BookWant *w = data;
  g_autofree char *t = book_text (fx, w->market);
  return g_strcmp0 (t, w->text) == 0;
}

static void
wait_book (Fixture *fx, const char *market, const char *text)
{
  BookWant w = { market, text };
  g_autofree char *what = g_strdup_printf ("%s to be %s", market, text);
  gint64 deadline = g_get_monotonic_time () + 10 * S;

  while (!book_is (fx, &w))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *now = book_text (fx, market);
          g_autofree char *reason = arb_instance_dup_reason (fx->inst);
          g_error ("waited 10 s for %s; it is %s (health %s: %s)", what, now,
                   arb_health_to_string (arb_instance_get_health (fx->inst)), reason);
        }
      run_for (fx, 10);
    }
}

typedef struct {
  ArbHealth   health;
  const char *prefix;
} HealthWant;

static gboolean
health_is (Fixture *fx, gconstpointer data)
{
  const HealthWant *w = data;
  g_autofree char *reason = arb_instance_dup_reason (fx->inst);

  return arb_instance_get_health (fx->inst) == w->health
         && (w->prefix == NULL || (reason != NULL && strstr (reason, w->prefix) != NULL));
}

static char *
wait_health (Fixture *fx, ArbHealth health, const char *contains)
{
  HealthWant w = { health, contains };
  g_autofree char *what = g_strdup_printf ("health %s with \"%s\"", arb_health_to_string (health),
                                           contains != NULL ? contains : "");
  wait_until (fx, health_is, &w, 10, what);
  return arb_instance_dup_reason (fx->inst);
}

/* the market's status in the book as "state" or "state@settlement" */
static char *
status_text (Fixture *fx, const char *market)
{
  ArbMarketStatusInfo st = { 0 };
  char buf[ARB_DECIMAL_BUFSIZE];

  if (!arb_price_book_get_status (fx->host->book, market, &st))
    return NULL;
  g_free (st.reason);
  if (st.has_settlement)
    return g_strdup_printf ("%s@%s", arb_market_state_to_string (st.state), arb_decimal_format_short (st.settlement, buf));
  return g_strdup (arb_market_state_to_string (st.state));
}

static gboolean
status_is (Fixture *fx, gconstpointer data)
{
  const BookWant *w = data;
  g_autofree char *t = status_text (fx, w->market);
  return g_strcmp0 (t, w->text) == 0;
}

static void
wait_status (Fixture *fx, const char *market, const char *text)
{
  BookWant w = { market, text };
  gint64 deadline = g_get_monotonic_time () + 10 * S;

  while (!status_is (fx, &w))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *now = status_text (fx, market);
          g_error ("waited 10 s for the status of %s to be %s; it is %s", market, text, now);
        }
      run_for (fx, 10);
    }
}

/* the event the host's mapping has for @market, or NULL */
static char *
event_text (Fixture *fx, const char *market)
{
  char *ref = arb_price_book_dup_event (fx->host->book, market);
  char *copy = g_strdup (ref);

  g_clear_pointer (&ref, g_ref_string_release);
  return copy;
}

static gboolean
event_is (Fixture *fx, gconstpointer data)
{
  const BookWant *w = data;
  g_autofree char *t = event_text (fx, w->market);
  return g_strcmp0 (t, w->text) == 0;
}

static void
wait_event (Fixture *fx, const char *market, const char *event)
{
  BookWant w = { market, event };
  g_autofree char *what = g_strdup_printf ("%s to be in %s", market, event);

  wait_until (fx, event_is, &w, 10, what);
}

static gdouble
metric (Fixture *fx, const char *name)
{
  g_autofree char *full = g_strdup_printf ("arb_plugin_%s", name);
  return arb_metrics_get (fx->host->metrics, full, fx->inst->labels);
}

typedef struct {
  const char *path;
  guint       n;
} CountWant;

static gboolean
sessions_reach (Fixture *fx, gconstpointer data)
{
  const CountWant *w = data;
  return fake_upstream_get_ws_sessions (fx->fu, w->path) >= w->n;
}

static gboolean
received_reach (Fixture *fx, gconstpointer data)
{
  const CountWant *w = data;
  g_auto(GStrv) got = fake_upstream_dup_ws_received (fx->fu, w->path);
  return g_strv_length (got) >= w->n;
}

static gboolean
metric_reach (Fixture *fx, gconstpointer data)
{
  const CountWant *w = data;
  return metric (fx, w->path) >= w->n;
}

/* @defaults ("k=v\n" lines) with the keys @extra sets replaced by @extra's */
static char *
merge_conf (const char *defaults, const char *extra)
{
  g_auto(GStrv) lines = g_strsplit (defaults, "\n", -1);
  g_auto(GStrv) more = g_strsplit (extra != NULL ? extra : "", "\n", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *eq = strchr (lines[i], '=');
      gboolean overridden = FALSE;

      if (eq == NULL)
        continue;
      for (guint j = 0; more[j] != NULL; j++)
        overridden |= strncmp (more[j], lines[i], (gsize) (eq - lines[i]) + 1) == 0;
      if (!overridden)
        g_string_append_printf (out, "%s\n", lines[i]);
    }
  for (guint j = 0; more[j] != NULL; j++)
    if (*more[j] != '\0')
      g_string_append_printf (out, "%s\n", more[j]);
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Polymarket                                                               */

static char *
pm_conf (Fixture *fx, const char *extra)
{
  g_autofree char *base = fake_upstream_url (fx->fu, NULL);
  g_autofree char *ws = fake_upstream_ws_url (fx->fu, PM_WS);

  g_autofree char *defaults = g_strdup_printf ("plugin=ingest-polymarket\nbase_url=%s\nws_url=%s\nstatus_interval=200ms\n"
                                               "ping_interval=200ms\nstale_after=2s\ntimeout=1s\nreconnect_min=100ms\n"
                                               "reconnect_max=400ms\n", base, ws);
  return merge_conf (defaults, extra);
}

static void
pm_serve_session (Fixture *fx, double speed)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (fake_upstream_serve_ws (fx->fu, PM_WS, "polymarket/ws_market_session.jsonl", speed, &error));
  g_assert_no_error (error);
  fake_upstream_ws_reply (fx->fu, PM_WS, "PING", "PONG");
  fake_upstream_ws_restamp (fx->fu, PM_WS, TRUE);
}

static void
test_pm_quotes (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) received = NULL;
  g_autoptr(ArbQuote) q = NULL;
  gint64 before = g_get_real_time ();

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/markets", "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/712034", "polymarket/gamma_markets_active.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "market_slugs=" BTC_SLUG "\n");
  start_instance (fx, conf);

  /* after the whole first market of the session: price_change's own best
   * bid and ask, the last trade; NO from its own book */
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  wait_book (fx, "polymarket:" BTC_NO, "0.957/0.958/0.958");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  /* the restamped upstream time, not the recorded one */
  q = arb_price_book_get (fx->host->book, "polymarket:" BTC_YES);
  g_assert_cmpint (arb_quote_get_source_time (q), >=, before / 1000 * 1000);
  g_assert_cmpstr (arb_quote_get_source (q), ==, "x");

  /* one subscribe, the documented initial form, every asset of the market */
  received = fake_upstream_dup_ws_received (fx->fu, PM_WS);
  g_assert_cmpuint (g_strv_length (received), >=, 1);
  g_assert_cmpstr (received[0], ==, "{\"assets_ids\":[\"" BTC_YES "\",\"" BTC_NO "\"],\"type\":\"market\","
                                    "\"initial_dump\":true,\"custom_feature_enabled\":true}");
  /* the status from Gamma */
  wait_status (fx, "polymarket:" BTC_YES, "open");
  wait_status (fx, "polymarket:" BTC_NO, "open");
  /* heartbeats: PING answered by PONG keeps the socket alive well past stale_after */
  run_for (fx, 2500);
  g_assert_cmpuint (fake_upstream_get_ws_sessions (fx->fu, PM_WS), ==, 1);
  g_assert_cmpint (arb_instance_get_health (fx->inst), ==, ARB_HEALTH_OK);
  g_assert_cmpfloat (metric (fx, "books_total"), ==, 2);
  g_assert_cmpfloat (metric (fx, "malformed_messages_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "quotes_published_total"), >=, 10);
}

/* the second market is found later: added to the open socket */
static void
test_pm_dynamic_subscribe (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) received = NULL;
  CountWant two = { PM_WS, 2 };

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/markets?slug=" BTC_SLUG, "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets?slug=" ETH_SLUG, "polymarket/gamma_markets_unknown_slug.json");
  fake_upstream_serve_file (fx->fu, "/markets/712034", "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/698421", "polymarket/gamma_market_by_id.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "market_slugs=" BTC_SLUG "," ETH_SLUG "\n");
  start_instance (fx, conf);
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  g_free (wait_health (fx, ARB_HEALTH_DEGRADED, "Gamma has no market for market slug " ETH_SLUG));

  /* Gamma lists it now */
  fake_upstream_serve_file (fx->fu, "/markets?slug=" ETH_SLUG, "polymarket/gamma_markets_active.json");
  wait_until (fx, received_reach, &two, 10, "the added subscription");
  wait_book (fx, "polymarket:" ETH_YES, "0.54/0.55/0.55");
  wait_book (fx, "polymarket:" ETH_NO, "0.45/0.46/0.45");
  received = fake_upstream_dup_ws_received (fx->fu, PM_WS);
  g_assert_cmpstr (received[1], ==, "{\"assets_ids\":[\"" ETH_YES "\",\"" ETH_NO "\"],\"operation\":\"subscribe\","
                                    "\"initial_dump\":true,\"custom_feature_enabled\":true}");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  g_assert_cmpuint (fake_upstream_get_ws_sessions (fx->fu, PM_WS), ==, 1);
  /* the ETH market's own answer names its event; the BTC market's answer
   * here is a list entry without events[]: it is its own */
  wait_event (fx, "polymarket:" ETH_YES, "polymarket-event:82311");
  wait_event (fx, "polymarket:" ETH_NO, "polymarket-event:82311");
  {
    g_autofree char *none = event_text (fx, "polymarket:" BTC_YES);
    g_assert_null (none);
  }
}

/* the token ids of every market of Gamma's answer @text (markets, or events
 * with markets), in order */
static GPtrArray *
gamma_tokens (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  JsonArray *top;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  top = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < json_array_get_length (top); i++)
    {
      JsonObject *o = json_array_get_object_element (top, i);
      JsonArray *markets = json_object_has_member (o, "markets") ? json_object_get_array_member (o, "markets") : NULL;
      guint n = markets != NULL ? json_array_get_length (markets) : 1;

      for (guint j = 0; j < n; j++)
        {
          JsonObject *m = markets != NULL ? json_array_get_object_element (markets, j) : o;
          g_autoptr(JsonParser) ids = json_parser_new ();
          JsonArray *a;

          /* clobTokenIds: a string holding a JSON array */
          json_parser_load_from_data (ids, json_object_get_string_member (m, "clobTokenIds"), -1, &error);
          g_assert_no_error (error);
          a = json_node_get_array (json_parser_get_root (ids));
          for (guint k = 0; k < json_array_get_length (a); k++)
            g_ptr_array_add (out, g_strdup_printf ("polymarket:%s", json_array_get_string_element (a, k)));
        }
    }
  return out;
}

/* an event followed by its slug: its six tokens in Gamma event 79420; a
 * market followed by slug, whose list answer has no events[], is asked for
 * at once and takes the event its own answer names (82311), long before
 * the next status round */
static void
test_pm_events (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *events = NULL;
  g_autoptr(GPtrArray) fed = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/events?slug=" FED_SLUG, "polymarket/gamma_events_by_slug.json");
  fake_upstream_serve_file (fx->fu, "/markets?slug=" ETH_SLUG, "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/698421", "polymarket/gamma_market_by_id.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "event_slugs=" FED_SLUG "\nmarket_slugs=" ETH_SLUG "\nstatus_interval=1h\n");
  start_instance (fx, conf);

  events = fixture_text (fx, "polymarket/gamma_events_by_slug.json");
  fed = gamma_tokens (events);
  g_assert_cmpuint (fed->len, ==, 6);
  for (guint i = 0; i < fed->len; i++)
    wait_event (fx, g_ptr_array_index (fed, i), "polymarket-event:79420");
  wait_event (fx, "polymarket:" ETH_YES, "polymarket-event:82311");
  wait_event (fx, "polymarket:" ETH_NO, "polymarket-event:82311");
  /* one request for the ETH market: the one at discovery (the status round
   * is an hour away); none for the event's markets, whose event was known */
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, "/markets/698421"), ==, 1);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, "/markets/715301"), ==, 0);
  g_assert_cmpfloat (metric (fx, "market_events_published_total"), ==, 8);
  g_assert_cmpfloat (arb_metrics_get (fx->host->metrics, "arb_market_events_received_total", fx->inst->labels), ==, 8);
  /* the socket opened meanwhile: let it settle before the teardown closes
   * it, or the fake's server may accept a connection already gone (libsoup
   * warns about that) */
  {
    CountWant one = { PM_WS, 1 };
    wait_until (fx, sessions_reach, &one, 10, "the socket");
  }
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
}

/* dropped (no close frame) or closed by the server: it reconnects and
 * subscribes again in the initial form */
static void
test_pm_reconnect (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) received = NULL;
  CountWant two = { PM_WS, 2 }, three = { PM_WS, 3 };
  guint subscribes = 0;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/markets", "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/712034", "polymarket/gamma_markets_active.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "market_slugs=" BTC_SLUG "\n");
  start_instance (fx, conf);
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));

  /* the connection breaks */
  g_assert_cmpuint (fake_upstream_ws_close (fx->fu, PM_WS, 0, NULL), ==, 1);
  wait_until (fx, sessions_reach, &two, 10, "a second session");
  /* the server closes it, with a reason */
  wait_until (fx, received_reach, &two, 10, "the second subscribe");
  g_assert_cmpuint (fake_upstream_ws_close (fx->fu, PM_WS, 1008, "no ping received"), ==, 1);
  wait_until (fx, sessions_reach, &three, 10, "a third session");
  wait_until (fx, received_reach, &three, 10, "the third subscribe");
  received = fake_upstream_dup_ws_received (fx->fu, PM_WS);
  for (guint i = 0; received[i] != NULL; i++)
    if (g_str_equal (received[i], "{\"assets_ids\":[\"" BTC_YES "\",\"" BTC_NO "\"],\"type\":\"market\","
                                  "\"initial_dump\":true,\"custom_feature_enabled\":true}"))
      subscribes++;
  g_assert_cmpuint (subscribes, ==, 3);
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  g_assert_cmpfloat (metric (fx, "ws_sessions_total"), ==, 3);
  g_assert_cmpfloat (metric (fx, "ws_failures_total"), ==, 2);
  /* the books came again with each session */
  {
    CountWant books = { "books_total", 6 };
    wait_until (fx, metric_reach, &books, 10, "the third session's books");
  }
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  g_assert_cmpfloat (metric (fx, "books_total"), ==, 6);
}

/* a socket that says nothing (not even PONG) is closed after stale_after;
 * the upstream refusing the handshake then takes it DOWN, and it heals */
static void
test_pm_silent_and_refused (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *root = NULL;
  g_autofree char *want = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/markets", "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/712034", "polymarket/gamma_markets_active.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "market_slugs=" BTC_SLUG "\nstale_after=600ms\nping_interval=150ms\n");
  start_instance (fx, conf);
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));

  fake_upstream_set_fault (fx->fu, PM_WS, FAKE_FAULT_HANG, 0);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, "was silent for");
  g_test_message ("%s", reason);
  g_assert_true (g_str_has_prefix (reason, "reconnecting: Polymarket: the socket at ws://127.0.0.1:"));
  g_assert_cmpfloat (metric (fx, "ws_stale_total"), >=, 1);

  /* the handshake refused: three failures in a row are DOWN */
  fake_upstream_set_fault (fx->fu, PM_WS, FAKE_FAULT_500, 0);
  g_clear_pointer (&reason, g_free);
  root = fake_upstream_url (fx->fu, NULL);
  want = g_strdup_printf ("Polymarket refused the WebSocket handshake at ws://127.0.0.1:%u: HTTP 500 Internal Server "
                          "Error", fake_upstream_get_port (fx->fu));
  reason = wait_health (fx, ARB_HEALTH_DOWN, want);
  g_assert_cmpstr (reason, ==, want);

  /* healed */
  fake_upstream_set_fault (fx->fu, PM_WS, FAKE_FAULT_NONE, 0);
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
}

/* the body Gamma gives for the Up/Down market of ws_market_resolution.jsonl:
 * the resolved-YES fixture with that market's ids, @resolved or still
 * trading */
static char *
updown_gamma (Fixture *fx, gboolean resolved, gboolean as_list)
{
  g_autofree char *text = fixture_text (fx, "polymarket/gamma_market_resolved_yes.json");
  GString *s = g_string_new (text);

  g_string_replace (s, "\"705118\"", "\"1188431\"", 0);
  g_string_replace (s, "0x0c85a1c381e532aed95401a9f6ea4de0051bacd7705bc071f70228e972f4e235",
                    "0x8f9c1e2d3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2", 0);
  g_string_replace (s, "75567331243790295716776893460846463905750098398062047253300665451449119091201", UP, 0);
  g_string_replace (s, "20033365468353542744491439332573233596372985272004533723474159387434949387691", DOWN, 0);
  g_string_replace (s, "\"[\\\"Yes\\\", \\\"No\\\"]\"", "\"[\\\"Up\\\", \\\"Down\\\"]\"", 0);
  g_string_replace (s, "highest-temperature-in-nyc-on-november-18-52f-or-higher", "btc-updown-15m-1795236300", 0);
  if (!resolved)
    {
      g_assert_cmpuint (g_string_replace (s, "\"closed\": true", "\"closed\": false", 0), ==, 1);
      g_assert_cmpuint (g_string_replace (s, "\"acceptingOrders\": false", "\"acceptingOrders\": true", 0), ==, 1);
      g_assert_cmpuint (g_string_replace (s, "\"umaResolutionStatus\": \"resolved\",", "", 0), ==, 1);
      g_assert_cmpuint (g_string_replace (s, "\"outcomePrices\": \"[\\\"1\\\", \\\"0\\\"]\"",
                                          "\"outcomePrices\": \"[\\\"0.97\\\", \\\"0.03\\\"]\"", 0), ==, 1);
    }
  if (as_list)
    {
      g_string_prepend (s, "[");
      g_string_append (s, "]");
    }
  return g_string_free (s, FALSE);
}

/* market_resolved on the socket closes the market; only Gamma settles it */
static void
test_pm_resolution (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *list = NULL;
  g_autofree char *open_one = NULL;
  g_autofree char *resolved = NULL;
  g_autoptr(GError) error = NULL;
  ArbMarketStatusInfo st = { 0 };

  if (!need_fixtures (fx))
    return;
  list = updown_gamma (fx, FALSE, TRUE);
  open_one = updown_gamma (fx, FALSE, FALSE);
  resolved = updown_gamma (fx, TRUE, FALSE);
  fake_upstream_serve_text (fx->fu, "/markets", 200, "application/json", list);
  fake_upstream_serve_text (fx->fu, "/markets/1188431", 200, "application/json", open_one);
  g_assert_true (fake_upstream_serve_ws (fx->fu, PM_WS, "polymarket/ws_market_resolution.jsonl", 0, &error));
  fake_upstream_ws_reply (fx->fu, PM_WS, "PING", "PONG");
  fake_upstream_ws_restamp (fx->fu, PM_WS, TRUE);
  conf = pm_conf (fx, "condition_ids=0x8f9c1e2d3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2\n");
  start_instance (fx, conf);

  /* the replay ends with market_resolved: closed for orders at once, not settled */
  wait_status (fx, "polymarket:" UP, "closed");
  wait_status (fx, "polymarket:" DOWN, "closed");
  g_assert_true (arb_price_book_get_status (fx->host->book, "polymarket:" UP, &st));
  g_assert_nonnull (strstr (st.reason, "winner: Up"));
  g_clear_pointer (&st.reason, g_free);
  g_assert_cmpfloat (metric (fx, "tick_size_changes_total"), ==, 2);
  g_assert_cmpfloat (metric (fx, "resolutions_seen_total"), ==, 1);
  wait_book (fx, "polymarket:" UP, "0.985/0.999/0.99");
  /* Gamma still says it trades: it stays closed */
  run_for (fx, 600);
  {
    g_autofree char *t = status_text (fx, "polymarket:" UP);
    g_assert_cmpstr (t, ==, "closed");
  }
  /* Gamma resolves it */
  fake_upstream_serve_text (fx->fu, "/markets/1188431", 200, "application/json", resolved);
  wait_status (fx, "polymarket:" UP, "resolved@1");
  wait_status (fx, "polymarket:" DOWN, "resolved@0");
  /* settled: nothing is followed any more, the socket is closed */
  run_for (fx, 500);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, "/markets/1188431"), >=, 2);
  {
    guint n = fake_upstream_get_request_count (fx->fu, "/markets/1188431");
    run_for (fx, 600);
    g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, "/markets/1188431"), ==, n);
  }
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
}

/* voided 50-50 and disputed markets, straight from Gamma */
static void
test_pm_void_and_dispute (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *voided = NULL;
  g_autofree char *disputed = NULL;
  g_autofree char *vl = NULL;
  g_autofree char *dl = NULL;

  if (!need_fixtures (fx))
    return;
  voided = fixture_text (fx, "polymarket/gamma_market_voided_5050.json");
  disputed = fixture_text (fx, "polymarket/gamma_market_disputed.json");
  vl = g_strdup_printf ("[%s]", voided);
  dl = g_strdup_printf ("[%s]", disputed);
  fake_upstream_serve_text (fx->fu, "/markets?slug=will-tesla-unveil-the-roadster-2-by-november-15-2026", 200,
                            "application/json", vl);
  fake_upstream_serve_text (fx->fu, "/markets?slug=argentina-monthly-inflation-october-2026-2pt0-or-higher", 200,
                            "application/json", dl);
  fake_upstream_serve_file (fx->fu, "/markets/709775", "polymarket/gamma_market_disputed.json");
  pm_serve_session (fx, 0);
  conf = pm_conf (fx, "market_slugs=will-tesla-unveil-the-roadster-2-by-november-15-2026,"
                      "argentina-monthly-inflation-october-2026-2pt0-or-higher\n");
  start_instance (fx, conf);
  wait_status (fx, "polymarket:69470778783585796299161748890296174117780250927743545151882907749301416092644",
               "resolved@0.5");
  wait_status (fx, "polymarket:87378501998398460450494755671752751589204768287791013335738283567990157161876",
               "resolved@0.5");
  wait_status (fx, "polymarket:34409192881695317787700238977520161029616828548248324023486513052855426358615",
               "disputed");
  /* the voided market is settled: never asked for again */
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, "/markets/688902"), ==, 0);
}

/* malformed frames are counted and dropped; the prices stay right */
static void
test_pm_malformed (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, "/markets", "polymarket/gamma_markets_active.json");
  fake_upstream_serve_file (fx->fu, "/markets/712034", "polymarket/gamma_markets_active.json");
  pm_serve_session (fx, 0);
  /* a price that is not a decimal, and a frame cut short */
  fake_upstream_replace (fx->fu, PM_WS, "\"price\":\"0.041\",\"size\":\"3712.87\"", "\"price\":\"4.1e-2\",\"size\":\"3712.87\"");
  fake_upstream_replace (fx->fu, PM_WS, "\"event_type\":\"best_bid_ask\"}", "\"event_type\":\"best_bid_ask\"");
  conf = pm_conf (fx, "market_slugs=" BTC_SLUG "\n");
  arb_test_log_allow (G_LOG_LEVEL_WARNING, "ingest:x");
  start_instance (fx, conf);
  wait_book (fx, "polymarket:" BTC_YES, "0.042/0.043/0.042");
  wait_book (fx, "polymarket:" BTC_NO, "0.957/0.958/0.958");
  g_assert_cmpfloat (metric (fx, "malformed_messages_total"), ==, 2);
}

/* ------------------------------------------------------------------------ */
/* Kalshi                                                                   */

static void
ks_keys (Fixture *fx, gboolean wrong)
{
  g_autofree char *priv = NULL;
  g_autofree char *pub = NULL;
  g_autofree char *other_priv = NULL;
  g_autofree char *other_pub = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (fake_kalshi_make_key (2048, &priv, &pub, &error));
  fx->key_file = g_build_filename (fx->dir, "kalshi.key", NULL);
  g_file_set_contents (fx->key_file, priv, -1, &error);
  g_assert_no_error (error);
  if (wrong)
    g_assert_true (fake_kalshi_make_key (2048, &other_priv, &other_pub, &error));
  fx->auth = fake_kalshi_auth_new (KS_KEY_ID, wrong ? other_pub : pub, &error);
  g_assert_no_error (error);
  fake_kalshi_auth_install (fx->auth, fx->fu, "/trade-api/");
}

static char *
ks_conf (Fixture *fx, const char *extra)
{
  g_autofree char *base = fake_upstream_url (fx->fu, "/trade-api/v2");
  g_autofree char *ws = fake_upstream_ws_url (fx->fu, KS_WS);

  g_autofree char *defaults = g_strdup_printf ("plugin=ingest-kalshi\nbase_url=%s\nws_url=%s\nrest_interval=200ms\n"
                                               "status_interval=300ms\nping_interval=1s\nstale_after=3s\ntimeout=1s\n"
                                               "reconnect_min=100ms\nreconnect_max=400ms\nrequest_budget=600\n%s%s%s",
                                               base, ws, fx->key_file != NULL ? "api_key_id=" KS_KEY_ID "\nprivate_key_file=" : "",
                                               fx->key_file != NULL ? fx->key_file : "", fx->key_file != NULL ? "\n" : "");
  return merge_conf (defaults, extra);
}

static void
ks_serve_session (Fixture *fx, const char *transcript, double speed)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("kalshi/%s", transcript);

  g_assert_true (fake_upstream_serve_ws (fx->fu, KS_WS, name, speed, &error));
  g_assert_no_error (error);
  fake_upstream_ws_restamp (fx->fu, KS_WS, TRUE);
}

/* signed handshake and REST, verified by the fake; the book by seq, NO as
 * the complement of YES */
static void
test_ks_quotes (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) received = NULL;
  g_autofree char *ws_sig = NULL;
  g_autofree char *query = NULL;
  CountWant snap = { "snapshots_total", 1 };

  if (!need_fixtures (fx))
    return;
  ks_keys (fx, FALSE);
  fake_upstream_serve_file (fx->fu, KS_MARKETS, "kalshi/markets_open.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  conf = ks_conf (fx, "market_tickers=" KX_BTC "," KX_FED "\n");
  start_instance (fx, conf);

  wait_until (fx, metric_reach, &snap, 10, "the order book snapshot");
  /* the book after seq 6: YES bid 0.43 (seq 3), YES ask 1 − 0.56; last 0.44 */
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.43/0.44/0.44");
  wait_book (fx, "kalshi:" KX_BTC ":no", "0.56/0.57/0.56");
  /* the ticker alone (no book for it): 3 decimals on the wire */
  wait_book (fx, "kalshi:" KX_FED ":yes", "0.27/0.28/0.28");
  wait_book (fx, "kalshi:" KX_FED ":no", "0.72/0.73/0.72");
  wait_status (fx, "kalshi:" KX_BTC ":yes", "open");
  wait_status (fx, "kalshi:" KX_FED ":no", "open");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  /* the markets' event_ticker, for both sides */
  wait_event (fx, "kalshi:" KX_BTC ":yes", "kalshi-event:KXBTCD-26NOV2117");
  wait_event (fx, "kalshi:" KX_BTC ":no", "kalshi-event:KXBTCD-26NOV2117");
  wait_event (fx, "kalshi:" KX_FED ":yes", "kalshi-event:KXFED-26DEC");
  wait_event (fx, "kalshi:" KX_FED ":no", "kalshi-event:KXFED-26DEC");

  /* the documented commands; the handshake and REST signed and verified */
  {
    CountWant three = { KS_WS, 3 };
    wait_until (fx, received_reach, &three, 10, "the three commands");
  }
  received = fake_upstream_dup_ws_received (fx->fu, KS_WS);
  g_assert_cmpuint (g_strv_length (received), ==, 3);
  g_assert_cmpstr (received[0], ==, "{\"id\":1,\"cmd\":\"subscribe\",\"params\":{\"channels\":[\"ticker\"],"
                                    "\"market_tickers\":[\"" KX_BTC "\",\"" KX_FED "\"]}}");
  g_assert_cmpstr (received[1], ==, "{\"id\":2,\"cmd\":\"subscribe\",\"params\":{\"channels\":[\"orderbook_delta\"],"
                                    "\"market_tickers\":[\"" KX_BTC "\",\"" KX_FED "\"]}}");
  g_assert_cmpstr (received[2], ==, "{\"id\":3,\"cmd\":\"subscribe\",\"params\":{\"channels\":[\"market_lifecycle_v2\"]}}");
  g_assert_cmpuint (fake_kalshi_auth_get_verified (fx->auth), >=, 2);
  g_assert_cmpuint (fake_kalshi_auth_get_refused (fx->auth), ==, 0);
  query = fake_upstream_dup_last_query (fx->fu, KS_MARKETS);
  g_assert_cmpstr (query, ==, "tickers=" KX_BTC "," KX_FED);
  g_assert_cmpfloat (metric (fx, "deltas_total"), ==, 5);
  g_assert_cmpfloat (metric (fx, "seq_gaps_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "malformed_messages_total"), ==, 0);
  /* the socket delivers: no REST for prices (the first statuses' answer may
   * have brought some before it did); open markets are not polled */
  {
    guint n = fake_upstream_get_request_count (fx->fu, KS_MARKETS);
    gdouble rest = metric (fx, "rest_quotes_total");
    run_for (fx, 1000);
    g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_MARKETS), ==, n);
    g_assert_cmpuint (n, ==, 1);
    g_assert_cmpfloat (metric (fx, "rest_quotes_total"), ==, rest);
  }
}

/* a key the server does not know: Kalshi's 401, DOWN */
static void
test_ks_wrong_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *refusal = NULL;

  if (!need_fixtures (fx))
    return;
  ks_keys (fx, TRUE);
  fake_upstream_serve_file (fx->fu, KS_MARKETS, "kalshi/markets_open.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  conf = ks_conf (fx, "market_tickers=" KX_BTC "\n");
  start_instance (fx, conf);
  reason = wait_health (fx, ARB_HEALTH_DOWN, "(INCORRECT_API_KEY_SIGNATURE)");
  g_test_message ("%s", reason);
  g_assert_nonnull (strstr (reason, "Kalshi refused the WebSocket handshake at ws://127.0.0.1:"));
  g_assert_nonnull (strstr (reason, "Kalshi HTTP 401 Unauthorized: authentication_error (INCORRECT_API_KEY_SIGNATURE)"));
  refusal = fake_kalshi_auth_dup_last_refusal (fx->auth);
  g_assert_cmpstr (refusal, ==, "the signature does not verify");
  g_assert_null (arb_price_book_get (fx->host->book, "kalshi:" KX_BTC ":yes"));
}

/* a gap in the order book's seq: a new snapshot is asked for on the socket */
static void
test_ks_seq_gap (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) received = NULL;
  CountWant gap = { "seq_gaps_total", 1 };
  gboolean asked = FALSE;

  if (!need_fixtures (fx))
    return;
  ks_keys (fx, FALSE);
  fake_upstream_serve_file (fx->fu, KS_MARKETS, "kalshi/markets_open.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  /* seq 3 never arrives as a delta */
  fake_upstream_replace (fx->fu, KS_WS, "\"type\":\"orderbook_delta\",\"sid\":2,\"seq\":3,",
                         "\"type\":\"orderbook_delta_lost\",\"sid\":2,\"seq\":3,");
  fake_upstream_ws_reply_containing (fx->fu, KS_WS, "\"action\":\"get_snapshot\"",
                                     "{\"type\":\"orderbook_snapshot\",\"sid\":2,\"seq\":7,\"msg\":{\"market_ticker\":\""
                                     KX_BTC "\",\"market_id\":\"60d35de3-998d-4ec1-83f1-0d97ab9db58d\","
                                     "\"yes_dollars_fp\":[[\"0.4400\",\"10.00\"],[\"0.4500\",\"100.00\"]],"
                                     "\"no_dollars_fp\":[[\"0.5200\",\"50.00\"]]}}");
  conf = ks_conf (fx, "market_tickers=" KX_BTC "," KX_FED "\n");
  start_instance (fx, conf);
  wait_until (fx, metric_reach, &gap, 10, "a seq gap");
  /* the new snapshot's book: YES 0.45, NO 0.52 → YES ask 0.48 */
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.45/0.48/0.44");
  wait_book (fx, "kalshi:" KX_BTC ":no", "0.52/0.55/0.56");
  received = fake_upstream_dup_ws_received (fx->fu, KS_WS);
  for (guint i = 0; received[i] != NULL; i++)
    asked |= g_str_equal (received[i], "{\"id\":4,\"cmd\":\"update_subscription\",\"params\":{\"sids\":[2],"
                                       "\"action\":\"get_snapshot\"}}");
  g_assert_true (asked);
  g_assert_cmpfloat (metric (fx, "seq_gaps_total"), ==, 1);
  g_assert_cmpfloat (metric (fx, "resnapshots_total"), ==, 1);
  g_assert_cmpfloat (metric (fx, "snapshots_total"), ==, 2);
  g_assert_cmpfloat (metric (fx, "unknown_messages_total"), ==, 1);
}

/* no snapshot on the socket: after 5 s, over REST */
static void
test_ks_seq_gap_rest (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  CountWant gap = { "seq_gaps_total", 1 };

  if (!need_fixtures (fx))
    return;
  ks_keys (fx, FALSE);
  fake_upstream_serve_file (fx->fu, KS_BTC_PATH, "kalshi/market_active.json");
  fake_upstream_serve_file (fx->fu, KS_MARKETS "/" KX_BTC "/orderbook", "kalshi/orderbook.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  fake_upstream_replace (fx->fu, KS_WS, "\"type\":\"orderbook_delta\",\"sid\":2,\"seq\":3,",
                         "\"type\":\"orderbook_delta_lost\",\"sid\":2,\"seq\":3,");
  conf = ks_conf (fx, "market_tickers=" KX_BTC "\n");
  start_instance (fx, conf);
  wait_until (fx, metric_reach, &gap, 10, "a seq gap");
  /* while the book is suspect the ticker's top stands */
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.43/0.44/0.44");
  run_for (fx, 5200);
  /* REST's book (the recorded orderbook.json): YES 0.42, NO 0.56 */
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.42/0.44/0.44");
  g_assert_cmpfloat (metric (fx, "rest_snapshots_total"), ==, 1);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_MARKETS "/" KX_BTC "/orderbook"), ==, 1);
  g_assert_cmpuint (fake_kalshi_auth_get_refused (fx->auth), ==, 0);
}

/* the socket down: REST takes the prices, within the budget, honouring 429 */
static void
test_ks_rest_fallback (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;
  guint n;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, KS_BTC_PATH, "kalshi/market_active.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  fake_upstream_set_fault (fx->fu, KS_WS, FAKE_FAULT_500, 0);
  conf = ks_conf (fx, "market_tickers=" KX_BTC "\n");
  start_instance (fx, conf);
  /* no key: public data only; REST's top of book and last price */
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.42/0.44/0.43");
  wait_book (fx, "kalshi:" KX_BTC ":no", "0.56/0.58/0.57");
  reason = wait_health (fx, ARB_HEALTH_DOWN, "Kalshi refused the WebSocket handshake");
  g_test_message ("%s", reason);
  g_assert_cmpfloat (metric (fx, "rest_quotes_total"), >=, 1);

  /* 429 with Retry-After: 2 → nothing for two seconds */
  fake_upstream_set_fault (fx->fu, KS_BTC_PATH, FAKE_FAULT_429, 2);
  g_free (wait_health (fx, ARB_HEALTH_DOWN, "Kalshi HTTP 429 Too Many Requests: too many requests"));
  n = fake_upstream_get_request_count (fx->fu, KS_BTC_PATH);
  run_for (fx, 1500);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_BTC_PATH), ==, n);
  fake_upstream_set_fault (fx->fu, KS_BTC_PATH, FAKE_FAULT_NONE, 0);
  run_for (fx, 1500);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_BTC_PATH), >, n);

  /* the socket heals: REST stops */
  fake_upstream_set_fault (fx->fu, KS_WS, FAKE_FAULT_NONE, 0);
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  wait_book (fx, "kalshi:" KX_BTC ":yes", "0.43/0.44/0.44");
  n = fake_upstream_get_request_count (fx->fu, KS_BTC_PATH);
  run_for (fx, 1000);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_BTC_PATH), ==, n);
}

/* request_budget: at most that many REST requests a minute */
static void
test_ks_budget (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, KS_BTC_PATH, "kalshi/market_active.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  fake_upstream_set_fault (fx->fu, KS_WS, FAKE_FAULT_500, 0);
  {
    g_autofree char *base = fake_upstream_url (fx->fu, "/trade-api/v2");
    g_autofree char *ws = fake_upstream_ws_url (fx->fu, KS_WS);
    conf = g_strdup_printf ("plugin=ingest-kalshi\nbase_url=%s\nws_url=%s\nrest_interval=100ms\nstatus_interval=100ms\n"
                            "timeout=1s\nreconnect_min=100ms\nreconnect_max=200ms\nrequest_budget=4\nmarket_tickers=" KX_BTC
                            "\n", base, ws);
  }
  start_instance (fx, conf);
  run_for (fx, 2000);
  /* 20 rounds, 4 requests */
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, KS_BTC_PATH), ==, 4);
  g_assert_cmpfloat (metric (fx, "budget_deferred_total"), >=, 10);
}

/* market_lifecycle_v2: paused and reopened, determined yes and no */
static void
test_ks_lifecycle (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  CountWant events = { "lifecycle_events_total", 6 };
  const char *extra = data;

  if (!need_fixtures (fx))
    return;
  ks_keys (fx, FALSE);
  fake_upstream_serve_file (fx->fu, KS_MARKETS, "kalshi/markets_open.json");
  /* settle_on=finalized: at ten times the recorded pace, so the settled
   * events (76 s in) come well after the determinations (15 s in) */
  ks_serve_session (fx, "ws_lifecycle_session.jsonl", strstr (extra, "finalized") != NULL ? 10 : 0);
  {
    g_autofree char *markets = g_strconcat (extra, "market_tickers=" KX_FED ",KXHIGHNY-26NOV20-B51.5,KXHIGHNY-26NOV20-B53.5\n",
                                            NULL);
    conf = ks_conf (fx, markets);
  }
  start_instance (fx, conf);
  if (strstr (extra, "finalized") == NULL)
    {
      wait_until (fx, metric_reach, &events, 10, "the lifecycle events");
      wait_status (fx, "kalshi:" KX_FED ":yes", "open");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B51.5:yes", "resolved@0");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B51.5:no", "resolved@1");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B53.5:yes", "resolved@1");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B53.5:no", "resolved@0");
    }
  else
    {
      /* determined is only closed; settled settles */
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B51.5:yes", "closed");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B53.5:no", "closed");
      wait_status (fx, "kalshi:" KX_FED ":yes", "open");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B51.5:yes", "resolved@0");
      wait_status (fx, "kalshi:KXHIGHNY-26NOV20-B53.5:yes", "resolved@1");
      wait_until (fx, metric_reach, &events, 10, "the lifecycle events");
    }
  /* the paused-then-reopened market went through halted */
  g_assert_cmpfloat (arb_metrics_get (fx->host->metrics, "arb_market_status_received_total", fx->inst->labels), >=, 8);
}

/* every settled: the markets are final and the socket closes */
static void
test_ks_settled (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  const char *path = KS_MARKETS "/KXNBAGAME-26NOV14BOSNYK-BOS";

  if (!need_fixtures (fx))
    return;
  /* one market: GET /markets/{ticker}, the recorded answer as it is */
  fake_upstream_serve_file (fx->fu, path, "kalshi/market_finalized_scalar_void.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  conf = ks_conf (fx, "market_tickers=KXNBAGAME-26NOV14BOSNYK-BOS\n");
  start_instance (fx, conf);
  /* a cancelled game: scalar, both sides at 0.5 */
  wait_status (fx, "kalshi:KXNBAGAME-26NOV14BOSNYK-BOS:yes", "resolved@0.5");
  wait_status (fx, "kalshi:KXNBAGAME-26NOV14BOSNYK-BOS:no", "resolved@0.5");
  g_free (wait_health (fx, ARB_HEALTH_OK, NULL));
  {
    guint n = fake_upstream_get_request_count (fx->fu, path);
    g_assert_cmpuint (n, ==, 1);
    run_for (fx, 800);
    g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, path), ==, n);
  }
}

/* a ticker Kalshi does not know: 404 on GET /markets/{ticker}, DEGRADED */
static void
test_ks_unknown (Fixture *fx, gconstpointer data)
{
  g_autofree char *conf = NULL;
  g_autofree char *reason = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, KS_MARKETS "/KXNOPE-26NOV21-T1", "kalshi/error_404_market_not_found.json");
  ks_serve_session (fx, "ws_session_ticker_orderbook.jsonl", 0);
  conf = ks_conf (fx, "market_tickers=KXNOPE-26NOV21-T1\n");
  start_instance (fx, conf);
  reason = wait_health (fx, ARB_HEALTH_DEGRADED, "Kalshi does not know the market KXNOPE-26NOV21-T1");
  g_assert_cmpstr (reason, ==, "Kalshi does not know the market KXNOPE-26NOV21-T1");
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
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_log_set_handler ("GLib", G_LOG_LEVEL_DEBUG, drop_message, NULL);
  g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG, drop_message, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/ingest-prediction/polymarket/quotes", test_pm_quotes);
  ADD ("/ingest-prediction/polymarket/dynamic-subscribe", test_pm_dynamic_subscribe);
  ADD ("/ingest-prediction/polymarket/events", test_pm_events);
  ADD ("/ingest-prediction/polymarket/reconnect", test_pm_reconnect);
  ADD ("/ingest-prediction/polymarket/silent-and-refused", test_pm_silent_and_refused);
  ADD ("/ingest-prediction/polymarket/resolution", test_pm_resolution);
  ADD ("/ingest-prediction/polymarket/void-and-dispute", test_pm_void_and_dispute);
  ADD ("/ingest-prediction/polymarket/malformed", test_pm_malformed);
  ADD ("/ingest-prediction/kalshi/quotes", test_ks_quotes);
  ADD ("/ingest-prediction/kalshi/wrong-key", test_ks_wrong_key);
  ADD ("/ingest-prediction/kalshi/seq-gap", test_ks_seq_gap);
  ADD ("/ingest-prediction/kalshi/seq-gap-rest", test_ks_seq_gap_rest);
  ADD ("/ingest-prediction/kalshi/rest-fallback", test_ks_rest_fallback);
  ADD ("/ingest-prediction/kalshi/budget", test_ks_budget);
  ADD ("/ingest-prediction/kalshi/settled", test_ks_settled);
  ADD ("/ingest-prediction/kalshi/unknown-market", test_ks_unknown);
#undef ADD
  g_test_add ("/ingest-prediction/kalshi/lifecycle", Fixture, "", fixture_up, test_ks_lifecycle, fixture_down);
  g_test_add ("/ingest-prediction/kalshi/lifecycle-settle-on-finalized", Fixture, "settle_on=finalized\n", fixture_up,
              test_ks_lifecycle, fixture_down);

  return g_test_run ();
}
