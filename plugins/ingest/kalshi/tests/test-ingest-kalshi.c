/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoding tests of ingest-kalshi against every recorded Kalshi payload in
 * ../shared/fixtures/upstream/kalshi ($ARB_FIXTURES_DIR): REST markets,
 * events and order books in the `*_dollars`/`*_fp` dialect and in the older
 * integer cents; what each status and result means (determined, finalized,
 * disputed, amended, scalar, void, with settle_on either way); the
 * WebSocket sessions frame by frame (the book by seq, the ticker's three
 * decimals, lifecycle events); malformed input counted, logged once, never
 * a price the clean frame would not give; and the request signatures
 * (RSA-PSS, verified with the public key: they differ every time). The
 * plugin's source is compiled in; the plugin against a live (fake) upstream
 * is tests/test-ingest-prediction.c.
 */

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "arb-ingest-kalshi.c"
#include "tests/arb-prediction-test.h"

#define KX_BTC "KXBTCD-26NOV2117-T91999.99"
#define KX_FED "KXFED-26DEC-T3.75"

static gboolean
need_fixtures (char **dir)
{
  *dir = pt_fixtures ("kalshi");
  if (*dir == NULL)
    {
      g_test_skip ("no Kalshi fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream");
      return FALSE;
    }
  return TRUE;
}

static PtHost *
host_new (const char *tickers, const char *extra)
{
  g_autofree char *body = g_strdup_printf ("plugin=ingest-kalshi\nbase_url=http://127.0.0.1:9/trade-api/v2\n"
                                           "ws_url=ws://127.0.0.1:9/trade-api/ws/v2\nmarket_tickers=%s\n%s",
                                           tickers, extra != NULL ? extra : "");
  return pt_host_new (body);
}

static KsPlugin *
plugin_new (PtHost *h)
{
  g_autoptr(GError) error = NULL;
  KsPlugin *p = ks_create (h->inst, &error);

  g_assert_no_error (error);
  g_assert_nonnull (p);
  p->publish_quote = pt_capture;
  return p;
}

static void
feed (KsPlugin *p, const char *frame)
{
  ks_on_text (p, frame, strlen (frame));
}

/* ------------------------------------------------------------------------ */
/* Every recorded file                                                      */

static void
count_market (KsPlugin *self, JsonObject *o, gpointer data)
{
  g_autoptr(GError) error = NULL;
  KsRest r;

  g_assert_true (ks_rest_decode (o, &r, &error));
  g_assert_no_error (error);
  ks_rest_clear (&r);
  (*(guint *) data)++;
}

typedef struct {
  const char *file;
  guint       markets;
} Count;

static const Count counts[] = {
  { "markets_open.json", 3 },
  { "market_active.json", 1 },
  { "market_finalized_yes.json", 1 },
  { "market_determined_no.json", 1 },
  { "market_disputed.json", 1 },
  { "market_finalized_scalar_void.json", 1 },
  { "events_nested.json", 4 },
};

static void
test_every_fixture (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *manifest_text = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  JsonArray *fixtures;
  gsize length = 0;
  guint checked = 0;

  if (!need_fixtures (&dir))
    return;
  manifest_text = pt_read (dir, "manifest.json", &length);
  manifest = arb_ingest_json_parse (manifest_text, length, NULL);
  fixtures = json_object_get_array_member (json_node_get_object (manifest), "fixtures");
  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *f = json_array_get_object_element (fixtures, i);
      const char *file = json_object_get_string_member (f, "file");
      const char *kind = json_object_get_string_member_with_default (f, "kind", "http");
      gint64 status = json_object_get_int_member_with_default (f, "status", 200);
      g_autofree char *body = pt_read (dir, file, &length);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = NULL;
      guint n = 0;

      g_test_message ("%s", file);
      checked++;
      if (g_str_equal (kind, "ws"))
        {
          g_autoptr(GPtrArray) frames = pt_transcript (dir, file);
          g_assert_cmpuint (frames->len, >, 0);
          continue; /* frame by frame below */
        }
      root = arb_ingest_json_parse (body, length, &error);
      if (strstr (file, "malformed") != NULL)
        {
          g_assert_null (root);
          g_assert_nonnull (strstr (error->message, "truncated"));
          continue;
        }
      g_assert_no_error (error);
      if (g_str_equal (kind, "ws_client_message"))
        {
          /* our commands have the recorded shape */
          JsonObject *o = json_node_get_object (root);
          g_assert_cmpstr (json_object_get_string_member (o, "cmd"), ==, "subscribe");
          g_assert_true (json_object_has_member (json_object_get_object_member (o, "params"), "channels"));
          continue;
        }
      if (status >= 400)
        {
          ArbIngestErrorBody e;
          arb_ingest_error_body_decode (body, length, &e);
          g_assert_nonnull (e.message);
          arb_ingest_error_body_clear (&e);
          continue;
        }
      if (g_str_equal (file, "orderbook.json"))
        {
          g_autoptr(GArray) yes = g_array_new (FALSE, FALSE, sizeof (ArbDecimal));
          g_autoptr(GArray) no = g_array_new (FALSE, FALSE, sizeof (ArbDecimal));
          JsonObject *book = json_object_get_object_member (json_node_get_object (root), "orderbook_fp");
          char buf[ARB_DECIMAL_BUFSIZE];

          g_assert_true (ks_side (book, "yes_dollars_fp", "yes_dollars", "yes", yes));
          g_assert_true (ks_side (book, "no_dollars_fp", "no_dollars", "no", no));
          g_assert_cmpuint (yes->len, ==, 10);
          g_assert_cmpuint (no->len, ==, 8);
          /* bids only, ascending: the best last */
          g_assert_cmpstr (arb_decimal_format_short (g_array_index (yes, ArbDecimal, 8), buf), ==, "0.42");
          g_assert_cmpstr (arb_decimal_format_short (g_array_index (no, ArbDecimal, 6), buf), ==, "0.56");
          continue;
        }
      if (g_str_equal (file, "exchange_status.json"))
        {
          g_assert_false (ks_each_market (root, count_market, NULL, &n));
          continue;
        }
      g_assert_true (ks_each_market (root, count_market, NULL, &n));
      for (guint k = 0; k < G_N_ELEMENTS (counts); k++)
        if (g_str_equal (counts[k].file, file))
          g_assert_cmpuint (n, ==, counts[k].markets);
    }
  g_assert_cmpuint (checked, ==, json_array_get_length (fixtures));
  g_assert_cmpuint (checked, >=, 18);
}

/* the error bodies, as the health reason shows them */
static void
test_error_bodies (void)
{
  static const struct {
    const char *file;
    guint       status;
    const char *reason;
  } cases[] = {
    { "error_401_bad_signature.json", 401,
      "Kalshi HTTP 401 Unauthorized: authentication_error (INCORRECT_API_KEY_SIGNATURE)" },
    { "error_401_timestamp_expired.json", 401, "Kalshi HTTP 401 Unauthorized: header_timestamp_expired" },
    { "error_404_market_not_found.json", 404, "Kalshi HTTP 404 Not Found: market not found" },
    { "rate_limit_429.json", 429, "Kalshi HTTP 429 Too Many Requests: too many requests" },
  };
  g_autofree char *dir = NULL;

  if (!need_fixtures (&dir))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      PtHost *h = host_new (KX_BTC, NULL);
      KsPlugin *p = plugin_new (h);
      gsize length = 0;
      g_autofree char *text = pt_read (dir, cases[i].file, &length);
      g_autoptr(GBytes) body = g_bytes_new (text, length);

      ks_rest_error (p, cases[i].status, NULL, NULL, body);
      g_assert_cmpstr (p->rest_problem, ==, cases[i].reason);
      g_assert_cmpint (p->auth_refused, ==, cases[i].status == 401);
      ks_destroy (p);
      pt_host_free (h);
    }
}

/* ------------------------------------------------------------------------ */
/* Statuses                                                                 */

typedef struct {
  const char *file;
  const char *from;
  const char *to;
  gboolean    finalized_only;
  const char *want_yes;
  const char *want_no;
} StatusCase;

static const StatusCase status_cases[] = {
  { "market_active.json", NULL, NULL, FALSE, "open", "open" },
  { "market_finalized_yes.json", NULL, NULL, FALSE, "resolved@1", "resolved@0" },
  { "market_finalized_yes.json", NULL, NULL, TRUE, "resolved@1", "resolved@0" },
  { "market_determined_no.json", NULL, NULL, FALSE, "resolved@0", "resolved@1" },
  { "market_determined_no.json", NULL, NULL, TRUE, "closed", "closed" },
  { "market_disputed.json", NULL, NULL, FALSE, "disputed", "disputed" },
  /* a cancelled game: scalar, both sides at 0.5 */
  { "market_finalized_scalar_void.json", NULL, NULL, FALSE, "resolved@0.5", "resolved@0.5" },
  /* void: both sides back at cost */
  { "market_finalized_scalar_void.json", "\"result\": \"scalar\"", "\"result\": \"void\"", FALSE, "cancelled",
    "cancelled" },
  /* scalar without its value yet */
  { "market_finalized_scalar_void.json", "\"settlement_value_dollars\": \"0.5000\",", "", FALSE, "closed", "closed" },
  /* re-determined after a dispute */
  { "market_disputed.json", "\"status\": \"disputed\"", "\"status\": \"amended\"", FALSE, "resolved@1", "resolved@0" },
  { "market_disputed.json", "\"status\": \"disputed\"", "\"status\": \"amended\"", TRUE, "closed", "closed" },
  { "market_active.json", "\"status\": \"active\"", "\"status\": \"inactive\"", FALSE, "halted", "halted" },
  { "market_active.json", "\"status\": \"active\"", "\"status\": \"initialized\"", FALSE, "halted", "halted" },
  { "market_active.json", "\"status\": \"active\"", "\"status\": \"closed\"", FALSE, "closed", "closed" },
  /* a word nobody knows: nothing published, the last status stands */
  { "market_active.json", "\"status\": \"active\"", "\"status\": \"frozen\"", FALSE, NULL, NULL },
};

static void
test_status (gconstpointer data)
{
  const StatusCase *c = data;
  g_autofree char *dir = NULL;
  g_autofree char *text = NULL;
  g_autofree char *yes = NULL;
  g_autofree char *no = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *ticker = NULL;
  GString *s;
  gsize length = 0;
  guint n = 0;
  PtHost *h;
  KsPlugin *p;
  KsTake take = { TRUE, 0, 0 };

  if (!need_fixtures (&dir))
    return;
  text = pt_read (dir, c->file, &length);
  s = g_string_new (text);
  if (c->from != NULL)
    g_assert_cmpuint (g_string_replace (s, c->from, c->to, 0), ==, 1);
  root = arb_ingest_json_parse (s->str, s->len, NULL);
  g_string_free (s, TRUE);
  g_assert_nonnull (root);
  ticker = g_strdup (json_object_get_string_member (json_object_get_object_member (json_node_get_object (root), "market"),
                                                    "ticker"));
  h = host_new (ticker, c->finalized_only ? "settle_on=finalized\n" : NULL);
  p = plugin_new (h);
  pt_reset ();
  g_assert_true (ks_each_market (root, ks_take_rest_market, p, &take));
  g_assert_cmpuint (take.taken, ==, 1);
  {
    g_autofree char *y = g_strdup_printf ("kalshi:%s:yes", ticker);
    g_autofree char *o = g_strdup_printf ("kalshi:%s:no", ticker);
    yes = pt_status (h, y);
    no = pt_status (h, o);
  }
  g_assert_cmpstr (yes, ==, c->want_yes);
  g_assert_cmpstr (no, ==, c->want_no);
  if (c->want_yes == NULL)
    g_assert_cmpuint (pt_warnings, ==, 1);
  (void) n;
  ks_destroy (p);
  pt_host_free (h);
}

/* REST's prices: the recorded dialect and the integer cents before 2026-03 */
static void
test_rest_prices (void)
{
  g_autofree char *dir = NULL;
  PtHost *h;
  KsPlugin *p;
  gsize length = 0;
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) legacy = NULL;
  KsTake take = { FALSE, 0, 0 };
  static const char cents[] =
    "{\"markets\":[{\"ticker\":\"" KX_FED "\",\"status\":\"active\",\"yes_bid\":27,\"yes_ask\":28,\"last_price\":28,"
    "\"result\":\"\"}]}";

  if (!need_fixtures (&dir))
    return;
  h = host_new (KX_BTC "," KX_FED ",KXNFLGAME-26NOV22KCDEN-KC", NULL);
  p = plugin_new (h);
  text = pt_read (dir, "markets_open.json", &length);
  root = arb_ingest_json_parse (text, length, NULL);
  pt_reset ();
  g_assert_true (ks_each_market (root, ks_take_rest_market, p, &take));
  g_assert_cmpuint (take.taken, ==, 3);
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":yes"), ==, "0.42/0.44/0.43");
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":no"), ==, "0.56/0.58/0.57");
  g_assert_cmpstr (pt_last ("kalshi:KXNFLGAME-26NOV22KCDEN-KC:yes"), ==, "0.57/0.58/0.58");
  pt_reset ();
  legacy = arb_ingest_json_parse (cents, strlen (cents), NULL);
  g_assert_true (ks_each_market (legacy, ks_take_rest_market, p, &take));
  g_assert_cmpstr (pt_last ("kalshi:" KX_FED ":yes"), ==, "0.27/0.28/0.28");
  g_assert_cmpstr (pt_last ("kalshi:" KX_FED ":no"), ==, "0.72/0.73/0.72");
  ks_destroy (p);
  pt_host_free (h);
}

/* the event of both sides of @ticker, "-" when they differ */
static char *
event_of (PtHost *h, const char *ticker)
{
  g_autofree char *y = g_strdup_printf ("kalshi:%s:yes", ticker);
  g_autofree char *n = g_strdup_printf ("kalshi:%s:no", ticker);
  g_autofree char *ey = pt_event (h, y);
  g_autofree char *en = pt_event (h, n);

  if (g_strcmp0 (ey, en) != 0)
    return g_strdup ("-");
  return g_steal_pointer (&ey);
}

/* every market object's event_ticker becomes the event of both its sides,
 * published to the host once per change */
static void
test_events (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *nested_text = NULL;
  g_autofree char *open_text = NULL;
  g_autoptr(JsonNode) nested = NULL;
  g_autoptr(JsonNode) open = NULL;
  g_autoptr(JsonNode) moved = NULL;
  g_autoptr(JsonNode) odd = NULL;
  static const char *const buckets[] = { "KXHIGHNY-26NOV21-T49", "KXHIGHNY-26NOV21-B50.5", "KXHIGHNY-26NOV21-B52.5",
                                         "KXHIGHNY-26NOV21-T54" };
  static const char moved_text[] =
    "{\"market\":{\"ticker\":\"" KX_FED "\",\"event_ticker\":\"KXFED-27JAN\",\"status\":\"active\"}}";
  /* an event ticker that is not one, and none at all: nothing published */
  static const char odd_text[] =
    "{\"markets\":[{\"ticker\":\"KXODD-1\",\"event_ticker\":\"KX ODD\",\"status\":\"active\"},"
    "{\"ticker\":\"KXNONE-1\",\"status\":\"active\"}]}";
  KsTake discover = { TRUE, 0, 0 };
  gsize length = 0;
  PtHost *h;
  KsPlugin *p;

  if (!need_fixtures (&dir))
    return;
  h = host_new (KX_BTC "," KX_FED ",KXNFLGAME-26NOV22KCDEN-KC", NULL);
  p = plugin_new (h);
  pt_reset ();
  /* GET /events/{E}?with_nested_markets=true: the four buckets of one day */
  nested_text = pt_read (dir, "events_nested.json", &length);
  nested = arb_ingest_json_parse (nested_text, length, NULL);
  g_assert_true (ks_each_market (nested, ks_take_rest_market, p, &discover));
  g_assert_cmpuint (discover.taken, ==, 4);
  for (guint i = 0; i < G_N_ELEMENTS (buckets); i++)
    {
      g_autofree char *e = event_of (h, buckets[i]);
      g_assert_cmpstr (e, ==, "kalshi-event:KXHIGHNY-26NOV21");
    }
  /* GET /markets?tickers=…: three markets of three events */
  open_text = pt_read (dir, "markets_open.json", &length);
  open = arb_ingest_json_parse (open_text, length, NULL);
  g_assert_true (ks_each_market (open, ks_take_rest_market, p, &discover));
  {
    g_autofree char *btc = event_of (h, KX_BTC);
    g_autofree char *fed = event_of (h, KX_FED);
    g_autofree char *nfl = event_of (h, "KXNFLGAME-26NOV22KCDEN-KC");
    g_assert_cmpstr (btc, ==, "kalshi-event:KXBTCD-26NOV2117");
    g_assert_cmpstr (fed, ==, "kalshi-event:KXFED-26DEC");
    g_assert_cmpstr (nfl, ==, "kalshi-event:KXNFLGAME-26NOV22KCDEN");
  }
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 14);
  /* the same answer again publishes nothing */
  g_assert_true (ks_each_market (open, ks_take_rest_market, p, &discover));
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 14);
  /* Kalshi moves a market: the new event replaces the old */
  moved = arb_ingest_json_parse (moved_text, strlen (moved_text), NULL);
  g_assert_true (ks_each_market (moved, ks_take_rest_market, p, &discover));
  {
    g_autofree char *fed = event_of (h, KX_FED);
    g_assert_cmpstr (fed, ==, "kalshi-event:KXFED-27JAN");
  }
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 16);
  odd = arb_ingest_json_parse (odd_text, strlen (odd_text), NULL);
  g_assert_true (ks_each_market (odd, ks_take_rest_market, p, &discover));
  {
    g_autofree char *e1 = pt_event (h, "kalshi:KXODD-1:yes");
    g_autofree char *e2 = pt_event (h, "kalshi:KXNONE-1:no");
    g_assert_null (e1);
    g_assert_null (e2);
  }
  g_assert_cmpfloat (pt_metric (h, "publish_errors_total"), ==, 0);
  g_assert_cmpuint (pt_warnings, ==, 0);
  ks_destroy (p);
  pt_host_free (h);
}

/* ------------------------------------------------------------------------ */
/* The WebSocket sessions                                                   */

static void
test_ticker_session (void)
{
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  PtHost *h;
  KsPlugin *p;

  if (!need_fixtures (&dir))
    return;
  frames = pt_transcript (dir, "ws_session_ticker_orderbook.jsonl");
  h = host_new (KX_BTC "," KX_FED, NULL);
  p = plugin_new (h);
  pt_reset ();
  for (guint i = 0; i < frames->len; i++)
    feed (p, g_ptr_array_index (frames, i));
  /* the book after seq 6; the ticker's last */
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":yes"), ==, "0.43/0.44/0.44");
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":no"), ==, "0.56/0.57/0.56");
  g_assert_cmpstr (pt_last ("kalshi:" KX_FED ":yes"), ==, "0.27/0.28/0.28");
  {
    KsMarket *m = g_hash_table_lookup (p->by_ticker, KX_BTC);
    ArbDecimal price, size;
    char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE];

    g_assert_true (m->book_valid);
    /* seq 5 emptied the 0.38 level; seq 6 added 300 to NO 0.56 */
    g_assert_cmpuint (arb_prediction_levels_count (m->yes_bids), ==, 5);
    g_assert_true (arb_prediction_levels_max (m->no_bids, &price, &size));
    g_assert_cmpstr (arb_decimal_format_short (price, a), ==, "0.56");
    g_assert_cmpstr (arb_decimal_format_short (size, b), ==, "1080");
  }
  g_assert_cmpfloat (pt_metric (h, "messages_total"), ==, 14);
  g_assert_cmpfloat (pt_metric (h, "deltas_total"), ==, 5);
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 0);
  g_assert_cmpuint (pt_warnings, ==, 0);

  /* a duplicate is ignored; a gap asks for a snapshot */
  feed (p, "{\"type\":\"orderbook_delta\",\"sid\":2,\"seq\":6,\"msg\":{\"market_ticker\":\"" KX_BTC "\",\"price_dollars\":"
           "\"0.4300\",\"delta_fp\":\"1000.00\",\"side\":\"yes\"}}");
  g_assert_cmpfloat (pt_metric (h, "seq_duplicates_total"), ==, 1);
  feed (p, "{\"type\":\"orderbook_delta\",\"sid\":2,\"seq\":9,\"msg\":{\"market_ticker\":\"" KX_BTC "\",\"price_dollars\":"
           "\"0.4300\",\"delta_fp\":\"1000.00\",\"side\":\"yes\"}}");
  g_assert_cmpfloat (pt_metric (h, "seq_gaps_total"), ==, 1);
  g_assert_false (((KsMarket *) g_hash_table_lookup (p->by_ticker, KX_BTC))->book_valid);
  /* while it is suspect the ticker's top stands in */
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":yes"), ==, "0.43/0.44/0.44");
  /* the new snapshot (legacy cents, integer counts) */
  feed (p, "{\"type\":\"orderbook_snapshot\",\"sid\":2,\"seq\":10,\"msg\":{\"market_ticker\":\"" KX_BTC "\","
           "\"yes\":[[40,100],[41,5]],\"no\":[[57,10]]}}");
  g_assert_cmpstr (pt_last ("kalshi:" KX_BTC ":yes"), ==, "0.41/0.43/0.44");
  g_assert_cmpfloat (pt_metric (h, "snapshots_total"), ==, 2);
  /* a delta below zero: the book is wrong, ask again */
  feed (p, "{\"type\":\"orderbook_delta\",\"sid\":2,\"seq\":11,\"msg\":{\"market_ticker\":\"" KX_BTC "\",\"price\":41,"
           "\"delta\":-6,\"side\":\"yes\"}}");
  g_assert_false (((KsMarket *) g_hash_table_lookup (p->by_ticker, KX_BTC))->book_valid);
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 0);
  ks_destroy (p);
  pt_host_free (h);
}

static void
test_lifecycle_session (void)
{
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  PtHost *h;
  KsPlugin *p;
  g_autofree char *fed = NULL;
  g_autofree char *b51 = NULL;
  g_autofree char *b53 = NULL;

  if (!need_fixtures (&dir))
    return;
  frames = pt_transcript (dir, "ws_lifecycle_session.jsonl");
  h = host_new (KX_FED ",KXHIGHNY-26NOV20-B51.5,KXHIGHNY-26NOV20-B53.5,KXNFLGAME-26NOV22KCDEN-KC", NULL);
  p = plugin_new (h);
  pt_reset ();
  for (guint i = 0; i < frames->len; i++)
    {
      feed (p, g_ptr_array_index (frames, i));
      if (i == 3)
        {
          /* after "deactivated" */
          g_autofree char *halted = pt_status (h, "kalshi:" KX_FED ":yes");
          g_assert_cmpstr (halted, ==, "halted");
        }
    }
  fed = pt_status (h, "kalshi:" KX_FED ":yes");
  b51 = pt_status (h, "kalshi:KXHIGHNY-26NOV20-B51.5:no");
  b53 = pt_status (h, "kalshi:KXHIGHNY-26NOV20-B53.5:yes");
  g_assert_cmpstr (fed, ==, "open");
  g_assert_cmpstr (b51, ==, "resolved@1");
  g_assert_cmpstr (b53, ==, "resolved@1");
  /* settled: final, no longer followed */
  g_assert_true (((KsMarket *) g_hash_table_lookup (p->by_ticker, "KXHIGHNY-26NOV20-B53.5"))->final);
  g_assert_cmpuint (((KsMarket *) g_hash_table_lookup (p->by_ticker, "KXNFLGAME-26NOV22KCDEN-KC"))->close_us, ==,
                    G_GINT64_CONSTANT (1795307400) * G_USEC_PER_SEC);
  g_assert_cmpfloat (pt_metric (h, "lifecycle_events_total"), ==, 7);
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 0);
  ks_destroy (p);
  pt_host_free (h);
}

/* ------------------------------------------------------------------------ */
/* Malformed input                                                          */

static const char *const garbage[] = { "abc", "1.5", "-0.01", "0.1e1", " 0.5", "NaN", "", "1,5", NULL };

static gboolean
same_prices (const char *q, const char *c)
{
  g_auto(GStrv) a = g_strsplit (q, "/", 3);
  g_auto(GStrv) b = g_strsplit (c, "/", 3);

  for (guint i = 0; i < 3; i++)
    if (!g_str_equal (a[i], "-") && !g_str_equal (a[i], b[i]))
      return FALSE;
  return TRUE;
}

static GPtrArray *
copy_quotes (guint from, guint to)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) pt_quote_free);

  for (guint i = from; i < to; i++)
    {
      PtQuote *q = g_ptr_array_index (pt_quotes, i), *c = g_new0 (PtQuote, 1);
      c->market = g_strdup (q->market);
      c->text = g_strdup (q->text);
      g_ptr_array_add (out, c);
    }
  return out;
}

static void
check_subset (GPtrArray *before, GPtrArray *clean, guint first, const char *what)
{
  for (guint i = first; i < pt_quotes->len; i++)
    {
      PtQuote *q = g_ptr_array_index (pt_quotes, i);
      gboolean ok = FALSE;

      for (guint k = 0; !ok && k < clean->len; k++)
        {
          PtQuote *c = g_ptr_array_index (clean, k);
          ok = g_str_equal (c->market, q->market) && same_prices (q->text, c->text);
        }
      for (guint k = before->len; !ok && k > 0; k--)
        {
          PtQuote *c = g_ptr_array_index (before, k - 1);
          if (g_str_equal (c->market, q->market))
            {
              ok = same_prices (q->text, c->text);
              break;
            }
        }
      if (!ok)
        g_error ("%s gave %s %s, which the clean frame does not", what, q->market, q->text);
    }
}

static GPtrArray *
variants (const char *frame)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  static GRegex *re;
  g_autoptr(GMatchInfo) mi = NULL;
  gsize n = strlen (frame);

  if (re == NULL)
    re = g_regex_new ("\"([a-z_]*_dollars|[a-z_]*_fp|settlement_value)\":\"([0-9.-]*)\"|\\[\"([0-9.]+)\",\"([0-9.]+)\"\\]",
                      0, 0, NULL);
  for (guint k = 1; k <= 4; k++)
    g_ptr_array_add (out, g_strndup (frame, n * k / 5));
  g_regex_match (re, frame, 0, &mi);
  while (g_match_info_matches (mi))
    {
      for (int group = 2; group <= 4; group++)
        {
          int start = -1, end = -1;
          if (!g_match_info_fetch_pos (mi, group, &start, &end) || start < 0)
            continue;
          for (guint g = 0; garbage[g] != NULL; g++)
            {
              GString *s = g_string_new_len (frame, start);
              g_string_append (s, garbage[g]);
              g_string_append (s, frame + end);
              g_ptr_array_add (out, g_string_free (s, FALSE));
            }
        }
      g_match_info_next (mi, NULL);
    }
  return out;
}

static void
test_malformed_never_wrong (void)
{
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GPtrArray) per_frame = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  PtHost *h;
  KsPlugin *p;
  guint tried = 0;

  if (!need_fixtures (&dir))
    return;
  frames = pt_transcript (dir, "ws_session_ticker_orderbook.jsonl");
  h = host_new (KX_BTC "," KX_FED, NULL);
  p = plugin_new (h);
  pt_reset ();
  for (guint i = 0; i < frames->len; i++)
    {
      guint mark = pt_quotes->len;
      g_ptr_array_add (before, copy_quotes (0, mark));
      feed (p, g_ptr_array_index (frames, i));
      g_ptr_array_add (per_frame, copy_quotes (mark, pt_quotes->len));
    }
  ks_destroy (p);
  pt_host_free (h);

  for (guint i = 0; i < frames->len; i++)
    {
      g_autoptr(GPtrArray) vs = variants (g_ptr_array_index (frames, i));
      for (guint v = 0; v < vs->len; v++)
        {
          g_autofree char *what = g_strdup_printf ("frame %u variant %u", i, v);
          gdouble malformed;
          guint mark;

          h = host_new (KX_BTC "," KX_FED, NULL);
          p = plugin_new (h);
          pt_reset ();
          for (guint k = 0; k < i; k++)
            feed (p, g_ptr_array_index (frames, k));
          mark = pt_quotes->len;
          malformed = pt_metric (h, "malformed_messages_total");
          feed (p, g_ptr_array_index (vs, v));
          check_subset (g_ptr_array_index (before, i), g_ptr_array_index (per_frame, i), mark, what);
          if (v < 4)
            {
              g_assert_cmpuint (pt_quotes->len, ==, mark);
              g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, malformed + 1);
            }
          g_assert_cmpuint (pt_warnings, <=, 1);
          ks_destroy (p);
          pt_host_free (h);
          tried++;
        }
    }
  g_test_message ("%u broken frames, none gave a price the clean frame did not", tried);
  g_assert_cmpuint (tried, >, 100);
}

/* a settlement value that is garbage never settles anything */
static void
test_malformed_lifecycle (void)
{
  PtHost *h = host_new ("KXHIGHNY-26NOV20-B53.5", NULL);
  KsPlugin *p = plugin_new (h);

  for (guint g = 0; garbage[g] != NULL; g++)
    {
      g_autofree char *frame = g_strdup_printf ("{\"type\":\"market_lifecycle_v2\",\"sid\":1,\"msg\":{\"market_ticker\":"
                                                "\"KXHIGHNY-26NOV20-B53.5\",\"event_type\":\"determined\",\"result\":"
                                                "\"scalar\",\"determination_ts\":1795234815,\"settlement_value\":\"%s\"}}",
                                                garbage[g]);
      g_autofree char *st = NULL;
      feed (p, frame);
      st = pt_status (h, "kalshi:KXHIGHNY-26NOV20-B53.5:yes");
      /* refused, or (an empty value) closed until the value comes */
      g_assert_true (st == NULL || g_str_equal (st, "closed"));
    }
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 7);
  ks_destroy (p);
  pt_host_free (h);
}

/* ------------------------------------------------------------------------ */
/* Signatures                                                               */

static char *
pem_of (EVP_PKEY *pkey, int form)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long n;
  char *out;

  if (form == 0)
    PEM_write_bio_PrivateKey (bio, pkey, NULL, NULL, 0, NULL, NULL);
  else if (form == 1)
    PEM_write_bio_PrivateKey_traditional (bio, pkey, NULL, NULL, 0, NULL, NULL);
  else
    PEM_write_bio_PUBKEY (bio, pkey);
  n = BIO_get_mem_data (bio, &data);
  out = g_strndup (data, (gsize) n);
  BIO_free (bio);
  return out;
}

static gboolean
verify (EVP_PKEY *pub, const char *message, const char *b64)
{
  gsize len = 0;
  g_autofree guchar *sig = g_base64_decode (b64, &len);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_PKEY_CTX *pctx = NULL;
  gboolean rsa = EVP_PKEY_get_base_id (pub) == EVP_PKEY_RSA;
  gboolean ok = EVP_DigestVerifyInit (ctx, &pctx, rsa ? EVP_sha256 () : NULL, NULL, pub) == 1;

  if (ok && rsa)
    ok = EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md (pctx, EVP_sha256 ()) == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 32) == 1;
  ok = ok && EVP_DigestVerify (ctx, sig, len, (const guchar *) message, strlen (message)) == 1;
  EVP_MD_CTX_free (ctx);
  return ok;
}

static void
test_signatures (void)
{
  EVP_PKEY *rsa = EVP_RSA_gen (2048);
  EVP_PKEY *small = EVP_RSA_gen (1024);
  EVP_PKEY *ed = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  g_autoptr(GError) error = NULL;

  /* PKCS#8 and PKCS#1 (the .key file Kalshi hands out) alike */
  for (int form = 0; form < 2; form++)
    {
      g_autofree char *pem = pem_of (rsa, form);
      g_autoptr(ArbKalshiKey) key = arb_kalshi_key_new (pem, strlen (pem), &error);
      g_autofree char *a = NULL;
      g_autofree char *b = NULL;
      g_autofree char *what = NULL;

      g_assert_no_error (error);
      what = arb_kalshi_key_describe (key);
      g_assert_cmpstr (what, ==, "RSA 2048 bits");
      a = arb_kalshi_sign (key, "1703123456789", "GET", "/trade-api/v2/portfolio/orders", &error);
      b = arb_kalshi_sign (key, "1703123456789", "GET", "/trade-api/v2/portfolio/orders", &error);
      g_assert_no_error (error);
      /* randomized: never equal, both verify, over the path without a query */
      g_assert_cmpstr (a, !=, b);
      g_assert_true (verify (rsa, "1703123456789GET/trade-api/v2/portfolio/orders", a));
      g_assert_true (verify (rsa, "1703123456789GET/trade-api/v2/portfolio/orders", b));
      g_assert_false (verify (rsa, "1703123456789GET/trade-api/v2/portfolio/orders?limit=5", a));
      g_assert_false (verify (rsa, "1703123456780GET/trade-api/v2/portfolio/orders", a));
    }
  {
    g_autofree char *pem = pem_of (ed, 0);
    g_autoptr(ArbKalshiKey) key = arb_kalshi_key_new (pem, strlen (pem), &error);
    g_autofree char *sig = NULL;

    g_assert_no_error (error);
    sig = arb_kalshi_sign (key, "1795233599950", "GET", "/trade-api/ws/v2", &error);
    g_assert_true (verify (ed, "1795233599950GET/trade-api/ws/v2", sig));
  }
  {
    g_autofree char *pem = pem_of (small, 0);
    g_autoptr(ArbKalshiKey) key = arb_kalshi_key_new (pem, strlen (pem), &error);
    g_assert_null (key);
    g_assert_cmpstr (error->message, ==, "the RSA key has 1024 bits; Kalshi's have 2048 or more");
    g_clear_error (&error);
  }
  {
    g_autofree char *pub = pem_of (rsa, 2);
    g_autoptr(ArbKalshiKey) key = arb_kalshi_key_new (pub, strlen (pub), &error);
    /* a public key is no private key; the message quotes nothing of it */
    g_assert_null (key);
    g_assert_true (g_str_has_prefix (error->message, "the private key is not a PEM RSA or Ed25519 private key"));
    g_assert_null (strstr (error->message, "MII"));
  }
  EVP_PKEY_free (rsa);
  EVP_PKEY_free (small);
  EVP_PKEY_free (ed);
}

/* config errors that the schema cannot see */
static void
test_config (void)
{
  static const struct {
    const char *body;
    const char *message;
  } cases[] = {
    { "plugin=ingest-kalshi\n", "nothing to follow: set market_tickers, event_tickers or series_tickers" },
    { "plugin=ingest-kalshi\nmarket_tickers=KX BAD\n", "market_tickers: \"KX BAD\" is not a Kalshi ticker (letters, digits, '-', '_', '.')" },
    { "plugin=ingest-kalshi\nmarket_tickers=A\nprivate_key_env=NOPE\n",
      "private_key is set but api_key_id is not: set both, or neither for public data only" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      PtHost *h = pt_host_new (cases[i].body);
      g_autoptr(GError) error = NULL;
      gpointer p = ks_create (h->inst, &error);

      g_assert_null (p);
      g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      pt_host_free (h);
    }
  /* a key id without a readable key fails the start, saying what to set */
  {
    PtHost *h = pt_host_new ("plugin=ingest-kalshi\nmarket_tickers=A\napi_key_id=k\n");
    g_autoptr(GError) error = NULL;
    KsPlugin *p = ks_create (h->inst, &error);

    g_assert_no_error (error);
    g_assert_false (ks_start (p, &error));
    g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
    g_assert_true (g_str_has_prefix (error->message, "private_key: api_key_id is set but private_key is not"));
    ks_destroy (p);
    pt_host_free (h);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pt_init ();

  g_test_add_func ("/ingest-kalshi/every-fixture", test_every_fixture);
  g_test_add_func ("/ingest-kalshi/error-bodies", test_error_bodies);
  for (guint i = 0; i < G_N_ELEMENTS (status_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ingest-kalshi/status/%u-%s", i,
                                               status_cases[i].want_yes != NULL ? status_cases[i].want_yes : "none");
      g_test_add_data_func (path, &status_cases[i], test_status);
    }
  g_test_add_func ("/ingest-kalshi/rest-prices", test_rest_prices);
  g_test_add_func ("/ingest-kalshi/events", test_events);
  g_test_add_func ("/ingest-kalshi/ws/ticker-orderbook", test_ticker_session);
  g_test_add_func ("/ingest-kalshi/ws/lifecycle", test_lifecycle_session);
  g_test_add_func ("/ingest-kalshi/ws-malformed/ticker-orderbook", test_malformed_never_wrong);
  g_test_add_func ("/ingest-kalshi/ws-malformed/lifecycle", test_malformed_lifecycle);
  g_test_add_func ("/ingest-kalshi/signatures", test_signatures);
  g_test_add_func ("/ingest-kalshi/config", test_config);
  return g_test_run ();
}
