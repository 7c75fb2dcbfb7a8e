/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of ingest-replay's pure parts: the line decoder, the file loader
 * and merge, path resolution and pacing arithmetic. The plugin's source is
 * compiled in so its static functions are reachable; the lifecycle against a
 * host is the conformance test's job.
 */

#include "arb-ingest-replay.c"

#include <glib/gstdio.h>

#define POLY_YES "polymarket:46096662783338673092330110558598013304958671615798781518556281431378005814059"
#define POLY_NO  "polymarket:86246268009048762669948111922835778640552258264973944583659196153404398703833"
#define KALSHI   "kalshi:KXBTCD-26NOV2117-T91999.99"
#define DEMO     "kalshi:KXBTCD-26NOV2017-T92499.99"

static char *
data_path (const char *name)
{
  const char *root = g_getenv ("ARB_SOURCE_ROOT");

  if (root != NULL)
    return g_build_filename (root, "data", "replay", name, NULL);
  return g_test_build_filename (G_TEST_DIST, "..", "..", "..", "data", "replay", name, NULL);
}

static ArbDecimal
dec (const char *text)
{
  ArbDecimal d = ARB_DECIMAL_ZERO;
  g_autoptr(GError) error = NULL;

  g_assert_true (arb_decimal_parse (text, ARB_ROUND_EXACT, &d, &error));
  g_assert_no_error (error);
  return d;
}

#define assert_dec(d, text)                                                    \
  G_STMT_START {                                                               \
    char _buf[ARB_DECIMAL_BUFSIZE];                                            \
    g_assert_cmpstr (arb_decimal_format_short ((d), _buf), ==, (text));        \
  } G_STMT_END

static ReplayLineResult
decode (const char *line, ReplayEvent *ev, GError **error)
{
  return replay_decode_line (line, strlen (line), ev, error);
}

static void
decode_ok (const char *line, ReplayEvent *ev)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (decode (line, ev, &error), ==, REPLAY_LINE_EVENT);
  g_assert_no_error (error);
}

/* ------------------------------------------------------------------------ */

static void
test_decode_quote_strings (void)
{
  ReplayEvent ev;

  decode_ok ("{\"at_ms\":1500,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"bid\":\"64250.10\","
             "\"ask\":\"64251.30\",\"last\":\"64250.70\",\"source\":\"coingecko\","
             "\"source_time\":\"2026-11-20T12:00:00.250Z\"}", &ev);
  g_assert_cmpint (ev.at_ms, ==, 1500);
  g_assert_cmpint (ev.type, ==, REPLAY_EVENT_QUOTE);
  g_assert_cmpstr (ev.market, ==, "crypto:BTC-USD");
  g_assert_true (ev.has_bid && ev.has_ask && ev.has_last);
  assert_dec (ev.bid, "64250.1");
  assert_dec (ev.ask, "64251.3");
  assert_dec (ev.last, "64250.7");
  /* 2026-11-20T12:00:00Z is 1795176000 */
  g_assert_cmpint (ev.source_time_us, ==, G_GINT64_CONSTANT (1795176000250000));
  replay_event_clear (&ev);

  /* eight places are exact; a zone offset other than Z is fine */
  decode_ok ("{\"at_ms\":0,\"type\":\"quote\",\"market\":\"" POLY_YES "\",\"bid\":\"0.12345678\","
             "\"source_time\":\"2026-11-20T13:00:00+01:00\"}", &ev);
  g_assert_cmpstr (ev.market, ==, POLY_YES);
  g_assert_cmpint (ev.bid.raw, ==, 12345678);
  g_assert_cmpint (ev.source_time_us, ==, G_GINT64_CONSTANT (1795176000000000));
  replay_event_clear (&ev);

  /* member order does not matter; a zero price is a price */
  decode_ok ("{\"market\":\"" KALSHI ":no\",\"ask\":\"0\",\"type\":\"quote\",\"at_ms\":7}", &ev);
  g_assert_cmpstr (ev.market, ==, KALSHI ":no");
  g_assert_true (ev.has_ask && !ev.has_bid && !ev.has_last);
  g_assert_true (arb_decimal_is_zero (ev.ask));
  g_assert_cmpint (ev.source_time_us, ==, 0);
  replay_event_clear (&ev);
}

static void
test_decode_quote_partial (void)
{
  ReplayEvent ev;

  decode_ok ("{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:SOL-USD\",\"last\":\"141.87\"}", &ev);
  g_assert_true (!ev.has_bid && !ev.has_ask && ev.has_last);
  assert_dec (ev.last, "141.87");
  replay_event_clear (&ev);

  decode_ok ("{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:SOL-USD\",\"bid\":\"141.86\",\"ask\":\"141.86\"}",
             &ev);
  g_assert_true (ev.has_bid && ev.has_ask && !ev.has_last);
  g_assert_cmpint (arb_decimal_cmp (ev.bid, ev.ask), ==, 0);
  replay_event_clear (&ev);
}

static void
test_decode_quote_numbers (void)
{
  struct { const char *json; const char *value; } cases[] = {
    { "64250", "64250" },                 /* a JSON integer is exact */
    { "0", "0" },
    { "92233720368", "92233720368" },
    { "64250.1", "64250.1" },             /* not 64250.10000000000582 */
    { "0.1", "0.1" },
    { "0.545", "0.545" },
    { "3021.44", "3021.44" },
    { "1e-3", "0.001" },
    { "1.5E2", "150" },
    { "6.18e-06", "0.00000618" },
    { "0.00000001", "0.00000001" },
    { "0.123456785", "0.12345678" },      /* the shortest text is a tie: half-even */
    { "0.123456775", "0.12345678" },
    { "0.000000005", "0" },
    { "0.000000015", "0.00000002" },
    { "9.999999999", "10" },
    { "1e-30", "0" },
    { "123456.000000001", "123456" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *line = g_strdup_printf ("{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:X-USD\",\"last\":%s}",
                                               cases[i].json);
      ReplayEvent ev;

      g_test_message ("last=%s", cases[i].json);
      decode_ok (line, &ev);
      assert_dec (ev.last, cases[i].value);
      replay_event_clear (&ev);
    }

  /* strings never round: nine places is an error, not 0.12345678 */
  {
    ReplayEvent ev;
    g_autoptr(GError) error = NULL;

    g_assert_cmpint (decode ("{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:X-USD\",\"last\":\"0.123456785\"}",
                             &ev, &error), ==, REPLAY_LINE_MALFORMED);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    replay_event_clear (&ev);
  }
}

/* the text a JSON fraction is read from (arb_ingest_double_to_text, shared
 * with the HTTP ingest plugins) */
static void
test_double_to_text (void)
{
  struct { double v; const char *text; } cases[] = {
    { 0.0, "0" }, { 1.0, "1" }, { 0.1, "0.1" }, { 64250.1, "64250.1" }, { 1e-3, "0.001" },
    { 150.0, "150" }, { 1e20, "100000000000000000000" }, { 123.456, "123.456" },
    { -2.5, "-2.5" }, { 6.18e-06, "0.00000618" }, { 0.30000000000000004, "0.30000000000000004" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char buf[512];

      arb_ingest_double_to_text (cases[i].v, buf, sizeof buf);
      g_assert_cmpstr (buf, ==, cases[i].text);
    }
}

static void
test_decode_status (void)
{
  struct { const char *state; ArbMarketState expect; } states[] = {
    { "open", ARB_MARKET_OPEN }, { "halted", ARB_MARKET_HALTED }, { "closed", ARB_MARKET_CLOSED },
    { "disputed", ARB_MARKET_DISPUTED }, { "cancelled", ARB_MARKET_CANCELLED },
  };
  ReplayEvent ev;

  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    {
      g_autofree char *line = g_strdup_printf ("{\"at_ms\":5000,\"type\":\"status\",\"market\":\"" KALSHI ":yes\","
                                               "\"state\":\"%s\"}", states[i].state);
      decode_ok (line, &ev);
      g_assert_cmpint (ev.type, ==, REPLAY_EVENT_STATUS);
      g_assert_cmpint (ev.state, ==, states[i].expect);
      g_assert_false (ev.has_settlement);
      g_assert_null (ev.reason);
      replay_event_clear (&ev);
    }

  decode_ok ("{\"at_ms\":5000,\"type\":\"status\",\"market\":\"" POLY_YES "\",\"state\":\"resolved\","
             "\"settlement\":\"1\",\"reason\":\"UMA: resolved yes\",\"source_time\":\"2026-11-21T04:00:05Z\"}", &ev);
  g_assert_cmpint (ev.state, ==, ARB_MARKET_RESOLVED);
  g_assert_true (ev.has_settlement);
  g_assert_cmpint (arb_decimal_cmp (ev.settlement, ARB_DECIMAL_ONE), ==, 0);
  g_assert_cmpstr (ev.reason, ==, "UMA: resolved yes");
  g_assert_cmpint (ev.source_time_us, ==, G_GINT64_CONSTANT (1795233605000000));
  replay_event_clear (&ev);

  /* a 50-50 void as a number, a scalar as a string */
  decode_ok ("{\"at_ms\":1,\"type\":\"status\",\"market\":\"" POLY_NO "\",\"state\":\"resolved\",\"settlement\":0.5}",
             &ev);
  assert_dec (ev.settlement, "0.5");
  replay_event_clear (&ev);
  decode_ok ("{\"at_ms\":1,\"type\":\"status\",\"market\":\"kalshi:X:yes\",\"state\":\"resolved\",\"settlement\":\"0.37\"}",
             &ev);
  g_assert_cmpint (arb_decimal_cmp (ev.settlement, dec ("0.37")), ==, 0);
  replay_event_clear (&ev);
}

static void
test_decode_blank (void)
{
  const char *blanks[] = { "", " ", "\t", "  \t  " };

  for (guint i = 0; i < G_N_ELEMENTS (blanks); i++)
    {
      g_autoptr(GError) error = NULL;
      ReplayEvent ev;

      g_assert_cmpint (decode (blanks[i], &ev, &error), ==, REPLAY_LINE_BLANK);
      g_assert_no_error (error);
      g_assert_null (ev.market);
    }
}

typedef struct {
  const char *name;
  const char *line;
  const char *message; /* a part of the error message */
} Malformed;

#define Q "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\""
#define S "{\"at_ms\":0,\"type\":\"status\",\"market\":\"" KALSHI ":yes\""

static const Malformed malformed[] = {
  { "not-json", "at_ms=0 type=quote", "not JSON" },
  { "truncated", Q ",\"bid\":\"1", "not JSON" },
  /* json-glib 1.6 would take these; the strict pre-check refuses them */
  { "two-values", Q ",\"last\":\"1\"} {}", "more text after the value" },
  { "two-objects-no-space", Q ",\"last\":\"1\"}" Q ",\"last\":\"2\"}", "more text after the value" },
  { "comment", Q ",\"last\":\"1\" /* why */}", "not JSON: expected ',' or '}'" },
  { "single-quotes", "{'at_ms':0,'type':'quote','market':'crypto:BTC-USD','last':'1'}", "not a string" },
  { "assignment", "var x = " Q ",\"last\":\"1\"};", "not JSON: unexpected text at byte 1 of" },
  { "trailing-comma", Q ",\"last\":\"1\",}", "member name that is not a string" },
  { "leading-zero", "{\"at_ms\":01,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}", "leading zero" },
  { "bare-point", Q ",\"last\":1.}", "without digits after the point" },
  { "huge-integer", "{\"at_ms\":18446744073709551617,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "more than 18 digits" },
  { "nul-escape", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:BTC\\u0000X\",\"last\":\"1\"}", "\\u0000" },
  { "bad-escape", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:\\q\",\"last\":\"1\"}", "unknown escape" },
  { "control-char", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:\tX\",\"last\":\"1\"}", "control character" },
  { "duplicate-member", Q ",\"last\":\"1\",\"last\":\"2\"}", "a member given twice" },
  { "too-deep", Q ",\"last\":\"1\",\"source\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", "nesting too deep" },
  { "nan-literal", Q ",\"last\":NaN}", "unexpected text" },
  { "infinity-number", Q ",\"last\":1e400}", "\"last\": inf is out of range" },
  { "array", "[0,\"quote\",\"crypto:BTC-USD\"]", "one JSON object, not an array" },
  { "string", "\"quote\"", "one JSON object, not a string" },
  { "null", "null", "one JSON object, not null" },
  { "bad-utf8", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:\xff\xfe\",\"last\":\"1\"}", "not valid UTF-8" },
  { "at-ms-missing", "{\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}", "\"at_ms\" is missing" },
  { "at-ms-string", "{\"at_ms\":\"0\",\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "whole number of milliseconds, not a string" },
  { "at-ms-fraction", "{\"at_ms\":1.5,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "not a fraction" },
  { "at-ms-negative", "{\"at_ms\":-1,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "-1 is outside" },
  { "at-ms-huge", "{\"at_ms\":86400000001,\"type\":\"quote\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "is outside" },
  { "type-missing", "{\"at_ms\":0,\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}", "\"type\" is missing" },
  { "type-unknown", "{\"at_ms\":0,\"type\":\"trade\",\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "\"trade\" is neither" },
  { "type-number", "{\"at_ms\":0,\"type\":1,\"market\":\"crypto:BTC-USD\",\"last\":\"1\"}",
    "\"type\" must be a string" },
  { "unknown-member", Q ",\"bidd\":\"1\",\"ask\":\"2\"}", "unknown member \"bidd\"" },
  { "status-member-in-quote", Q ",\"last\":\"1\",\"state\":\"open\"}", "unknown member \"state\" in a quote" },
  { "quote-member-in-status", S ",\"state\":\"open\",\"bid\":\"1\"}", "unknown member \"bid\" in a status" },
  { "market-missing", "{\"at_ms\":0,\"type\":\"quote\",\"last\":\"1\"}", "\"market\" is missing" },
  { "market-empty", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"\",\"last\":\"1\"}", "is empty" },
  { "market-not-namespaced", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"BTC-USD\",\"last\":\"1\"}",
    "must start with a lower-case namespace" },
  { "market-no-colon", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto\",\"last\":\"1\"}",
    "must be namespaced" },
  { "market-nothing-after", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:\",\"last\":\"1\"}",
    "nothing after the namespace" },
  { "market-space", "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:BTC USD\",\"last\":\"1\"}",
    "printable ASCII without spaces" },
  { "market-number", "{\"at_ms\":0,\"type\":\"quote\",\"market\":7,\"last\":\"1\"}", "\"market\" must be a string" },
  { "quote-no-price", Q ",\"source\":\"coingecko\"}", "at least one of" },
  { "price-not-decimal", Q ",\"bid\":\"abc\"}", "\"bid\": \"abc\" is not a decimal number" },
  { "price-empty", Q ",\"bid\":\"\"}", "is not a decimal" },
  { "price-spaces", Q ",\"bid\":\" 1\"}", "is not a decimal" },
  { "price-nan", Q ",\"bid\":\"NaN\"}", "is not a decimal" },
  { "price-nine-places", Q ",\"ask\":\"0.123456789\"}", "has more than 8 decimal places" },
  { "price-negative-string", Q ",\"last\":\"-1\"}", "\"last\": -1 is negative" },
  { "price-negative-number", Q ",\"last\":-0.5}", "\"last\": -0.5 is negative" },
  { "price-overflow", Q ",\"last\":\"100000000000\"}", "\"100000000000\" is out of range" },
  { "price-overflow-number", Q ",\"last\":1e300}", "\"last\": 1e+300 is out of range" },
  { "price-overflow-number-near", Q ",\"last\":92233720368.6}", "cannot be read as a decimal" },
  { "price-overflow-integer", Q ",\"last\":92233720369}", "\"last\": 92233720369 is out of range" },
  { "price-bool", Q ",\"last\":true}", "\"last\": true or false, not a number" },
  { "price-null", Q ",\"last\":null}", "\"last\": null, not a number" },
  { "price-object", Q ",\"last\":{\"v\":\"1\"}}", "\"last\": an object, not a number" },
  { "crossed", Q ",\"bid\":\"5\",\"ask\":\"4\"}", "crossed quote: bid 5 is above ask 4" },
  { "source-number", Q ",\"last\":\"1\",\"source\":1}", "\"source\" must be a string" },
  { "source-time-garbage", Q ",\"last\":\"1\",\"source_time\":\"yesterday\"}", "not an RFC 3339 time" },
  { "source-time-no-zone", Q ",\"last\":\"1\",\"source_time\":\"2026-11-21T04:00:00\"}", "not an RFC 3339 time" },
  { "source-time-number", Q ",\"last\":\"1\",\"source_time\":1795233600}", "\"source_time\" must be a string" },
  { "state-missing", S "}", "\"state\" is missing" },
  { "state-unknown", S ",\"state\":\"settled\"}", "\"settled\" is not one of" },
  { "state-canceled", S ",\"state\":\"canceled\"}", "is not one of" },
  { "resolved-no-settlement", S ",\"state\":\"resolved\"}", "needs a \"settlement\"" },
  { "settlement-not-resolved", S ",\"state\":\"closed\",\"settlement\":\"1\"}", "belongs only to state \"resolved\"" },
  { "settlement-negative", S ",\"state\":\"resolved\",\"settlement\":\"-1\"}", "is negative" },
  { "settlement-bad", S ",\"state\":\"resolved\",\"settlement\":\"yes\"}", "is not a decimal" },
  { "reason-number", S ",\"state\":\"halted\",\"reason\":42}", "\"reason\" must be a string" },
};

static void
test_decode_malformed (gconstpointer data)
{
  const Malformed *m = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *shown = g_strescape (m->line, NULL); /* TAP output must stay UTF-8 */
  ReplayEvent ev;

  g_test_message ("%s", shown);
  g_assert_cmpint (decode (m->line, &ev, &error), ==, REPLAY_LINE_MALFORMED);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_test_message ("error: %s", error->message);
  g_assert_nonnull (strstr (error->message, m->message));
  replay_event_clear (&ev);
}

static void
test_decode_line_too_long (void)
{
  g_autoptr(GString) line = g_string_new (Q ",\"last\":\"1\",\"source\":\"");
  g_autoptr(GError) error = NULL;
  ReplayEvent ev;

  while (line->len <= REPLAY_MAX_LINE_LENGTH)
    g_string_append_c (line, 'x');
  g_string_append (line, "\"}");
  g_assert_cmpint (decode (line->str, &ev, &error), ==, REPLAY_LINE_MALFORMED);
  g_assert_nonnull (strstr (error->message, "longer than"));
  replay_event_clear (&ev);
}

/* ------------------------------------------------------------------------ */

static GArray *
load (const char *const *paths, GArray **reports, GError **error)
{
  *reports = g_array_new (FALSE, TRUE, sizeof (ReplayFileReport));
  return replay_load_files (paths, *reports, error);
}

static gboolean
is_prediction (const char *market)
{
  return g_str_has_prefix (market, "polymarket:") || g_str_has_prefix (market, "kalshi:");
}

static void
test_load_shipped_session (void)
{
  g_autofree char *path = data_path ("session-10m.jsonl");
  const char *paths[] = { path, NULL };
  g_autoptr(GArray) reports = NULL;
  g_autoptr(GArray) events = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) quotes = g_hash_table_new (g_str_hash, g_str_equal);
  const char *markets[] = { "crypto:BTC-USD", "crypto:ETH-USD", "crypto:SOL-USD", POLY_YES, POLY_NO,
                            KALSHI ":yes", KALSHI ":no" };
  ReplayFileReport *report;
  gint64 last_at = 0;

  events = load (paths, &reports, &error);
  g_assert_no_error (error);
  g_assert_nonnull (events);
  report = &g_array_index (reports, ReplayFileReport, 0);
  g_assert_cmpuint (report->n_malformed, ==, 0);
  g_assert_null (report->first_problem);
  g_assert_cmpuint (report->n_events, ==, events->len);
  g_assert_cmpuint (events->len, >, 1000);

  for (guint i = 0; i < events->len; i++)
    {
      const ReplayEvent *ev = &g_array_index (events, ReplayEvent, i);

      g_assert_cmpint (ev->at_ms, >=, last_at);
      last_at = ev->at_ms;
      /* traders must be able to trade: nothing but "open" in the session */
      if (ev->type == REPLAY_EVENT_STATUS)
        {
          g_assert_cmpint (ev->state, ==, ARB_MARKET_OPEN);
          continue;
        }
      g_assert_true (ev->has_bid && ev->has_ask && ev->has_last);
      g_assert_cmpint (arb_decimal_cmp (ev->bid, ev->ask), <, 0);
      g_assert_cmpint (arb_decimal_cmp (ev->last, ev->bid), >=, 0);
      g_assert_cmpint (arb_decimal_cmp (ev->last, ev->ask), <=, 0);
      g_assert_cmpint (ev->source_time_us, >, 0);
      if (is_prediction (ev->market))
        {
          g_assert_cmpint (arb_decimal_cmp (ev->bid, ARB_DECIMAL_ZERO), >, 0);
          g_assert_cmpint (arb_decimal_cmp (ev->ask, ARB_DECIMAL_ONE), <, 0);
        }
      g_hash_table_insert (quotes, ev->market,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (quotes, ev->market)) + 1));
    }
  /* ten minutes, every market quoted regularly */
  g_assert_cmpint (last_at, >=, 590000);
  g_assert_cmpint (last_at, <, 600000);
  for (guint i = 0; i < G_N_ELEMENTS (markets); i++)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (quotes, markets[i]));
      g_test_message ("%s: %u quotes", markets[i], n);
      g_assert_cmpuint (n, >=, g_str_has_prefix (markets[i], "crypto:") ? 300 : 60);
    }
  g_assert_cmpuint (g_hash_table_size (quotes), ==, G_N_ELEMENTS (markets));
}

static void
test_load_resolution_demo (void)
{
  g_autofree char *path = data_path ("resolution-demo.jsonl");
  const char *paths[] = { path, NULL };
  const ArbMarketState expect[] = { ARB_MARKET_OPEN, ARB_MARKET_HALTED, ARB_MARKET_OPEN, ARB_MARKET_CLOSED,
                                    ARB_MARKET_RESOLVED };
  const char *outcomes[] = { DEMO ":yes", DEMO ":no" };
  g_autoptr(GArray) reports = NULL;
  g_autoptr(GArray) events = NULL;
  g_autoptr(GError) error = NULL;

  events = load (paths, &reports, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_array_index (reports, ReplayFileReport, 0).n_malformed, ==, 0);

  for (guint o = 0; o < G_N_ELEMENTS (outcomes); o++)
    {
      guint n = 0;

      for (guint i = 0; i < events->len; i++)
        {
          const ReplayEvent *ev = &g_array_index (events, ReplayEvent, i);

          if (ev->type != REPLAY_EVENT_STATUS || !g_str_equal (ev->market, outcomes[o]))
            continue;
          g_assert_cmpuint (n, <, G_N_ELEMENTS (expect));
          g_assert_cmpint (ev->state, ==, expect[n]);
          if (ev->state == ARB_MARKET_RESOLVED)
            {
              /* determined "no": the yes share pays 0, the no share 1 */
              g_assert_true (ev->has_settlement);
              g_assert_cmpint (arb_decimal_cmp (ev->settlement, o == 0 ? ARB_DECIMAL_ZERO : ARB_DECIMAL_ONE), ==, 0);
            }
          n++;
        }
      g_assert_cmpuint (n, ==, G_N_ELEMENTS (expect));
    }
}

static char *
write_temp (const char *dir, const char *name, const char *contents, gssize length)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (path, contents, length, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_load_merge (void)
{
  g_autofree char *dir = g_dir_make_tmp ("replay-XXXXXX", NULL);
  g_autofree char *a = write_temp (dir, "a.jsonl",
                                   "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:A-USD\",\"last\":\"1\"}\n"
                                   "{\"at_ms\":2000,\"type\":\"quote\",\"market\":\"crypto:A-USD\",\"last\":\"2\"}\n"
                                   "\n"
                                   "garbage\n"
                                   "{\"at_ms\":1000,\"type\":\"quote\",\"market\":\"crypto:A-USD\",\"last\":\"3\"}\n"
                                   "{\"at_ms\":3000,\"type\":\"quote\",\"market\":\"crypto:A-USD\",\"bid\":\"2\",\"ask\":\"1\"}\n",
                                   -1);
  /* a BOM, CRLF line ends and no final newline */
  g_autofree char *b = write_temp (dir, "b.jsonl",
                                   "\xEF\xBB\xBF{\"at_ms\":1000,\"type\":\"status\",\"market\":\"kalshi:B:yes\",\"state\":\"halted\"}\r\n"
                                   "{\"at_ms\":500,\"type\":\"quote\",\"market\":\"crypto:B-USD\",\"last\":\"5\"}\r\n"
                                   "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:B-USD\",\"last\":\"4\"}",
                                   -1);
  const char *paths[] = { a, b, NULL };
  struct { gint64 at; const char *market; guint16 file; guint32 line; } expect[] = {
    { 0, "crypto:A-USD", 0, 1 },
    { 0, "crypto:B-USD", 1, 3 },
    { 500, "crypto:B-USD", 1, 2 },
    { 1000, "crypto:A-USD", 0, 5 }, /* ties: the first file first */
    { 1000, "kalshi:B:yes", 1, 1 },
    { 2000, "crypto:A-USD", 0, 2 },
  };
  g_autoptr(GArray) reports = NULL;
  g_autoptr(GArray) events = NULL;
  g_autoptr(GError) error = NULL;
  ReplayFileReport *ra, *rb;

  events = load (paths, &reports, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, G_N_ELEMENTS (expect));
  for (guint i = 0; i < events->len; i++)
    {
      const ReplayEvent *ev = &g_array_index (events, ReplayEvent, i);
      g_assert_cmpint (ev->at_ms, ==, expect[i].at);
      g_assert_cmpstr (ev->market, ==, expect[i].market);
      g_assert_cmpuint (ev->file, ==, expect[i].file);
      g_assert_cmpuint (ev->line, ==, expect[i].line);
    }

  ra = &g_array_index (reports, ReplayFileReport, 0);
  rb = &g_array_index (reports, ReplayFileReport, 1);
  g_assert_cmpuint (ra->n_events, ==, 3);
  g_assert_cmpuint (ra->n_malformed, ==, 2);
  g_assert_true (g_str_has_prefix (ra->first_problem, "4: not JSON"));
  g_assert_cmpuint (rb->n_events, ==, 3);
  g_assert_cmpuint (rb->n_malformed, ==, 0);
  g_assert_null (rb->first_problem);

  g_unlink (a);
  g_unlink (b);
  g_rmdir (dir);
}

static void
test_load_missing_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("replay-XXXXXX", NULL);
  g_autofree char *good = write_temp (dir, "good.jsonl",
                                      "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:A-USD\",\"last\":\"1\"}\n", -1);
  g_autofree char *missing = g_build_filename (dir, "missing.jsonl", NULL);
  const char *paths[] = { good, missing, NULL };
  const char *dirs[] = { dir, NULL };
  const char *devices[] = { "/dev/null", NULL };
  g_autoptr(GArray) reports = NULL;
  g_autoptr(GArray) reports2 = NULL;
  g_autoptr(GArray) reports3 = NULL;
  g_autoptr(GArray) events = NULL;
  g_autoptr(GError) error = NULL;

  events = load (paths, &reports, &error);
  g_assert_null (events);
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, missing));
  g_assert_nonnull (strstr (error->message, "No such file"));
  g_clear_error (&error);

  events = load (dirs, &reports2, &error);
  g_assert_null (events);
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "is a directory"));
  g_clear_error (&error);

  events = load (devices, &reports3, &error);
  g_assert_null (events);
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "not a regular file"));

  g_unlink (good);
  g_rmdir (dir);
}

static void
test_load_nothing_valid (void)
{
  g_autofree char *dir = g_dir_make_tmp ("replay-XXXXXX", NULL);
  g_autofree char *empty = write_temp (dir, "empty.jsonl", "", 0);
  g_autofree char *bad = write_temp (dir, "bad.jsonl", "\n{}\n[]\n", -1);
  const char *paths[] = { empty, bad, NULL };
  g_autoptr(GArray) reports = NULL;
  g_autoptr(GArray) events = NULL;
  g_autoptr(GError) error = NULL;

  /* the loader itself succeeds; start turns an empty result into an error */
  events = load (paths, &reports, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 0);
  g_assert_cmpuint (g_array_index (reports, ReplayFileReport, 0).n_malformed, ==, 0);
  g_assert_cmpuint (g_array_index (reports, ReplayFileReport, 1).n_malformed, ==, 2);
  g_assert_cmpstr (g_array_index (reports, ReplayFileReport, 1).first_problem, ==, "2: \"at_ms\" is missing");

  g_unlink (empty);
  g_unlink (bad);
  g_rmdir (dir);
}

static void
test_resolve_files (void)
{
  const char *entries[] = { "session-10m.jsonl", " sub/../other.jsonl ", "", "/abs/x.jsonl", NULL };
  g_auto(GStrv) paths = replay_resolve_files ("/etc/arbiter/replay", entries);

  g_assert_cmpuint (g_strv_length (paths), ==, 3);
  g_assert_cmpstr (paths[0], ==, "/etc/arbiter/replay/session-10m.jsonl");
  g_assert_cmpstr (paths[1], ==, "/etc/arbiter/replay/other.jsonl");
  g_assert_cmpstr (paths[2], ==, "/abs/x.jsonl");
}

static void
test_pacing (void)
{
  g_assert_cmpint (replay_scaled_us (1000, dec ("1")), ==, 1000000);
  g_assert_cmpint (replay_scaled_us (1000, dec ("10")), ==, 100000);
  g_assert_cmpint (replay_scaled_us (1000, dec ("0.5")), ==, 2000000);
  g_assert_cmpint (replay_scaled_us (1, dec ("3")), ==, 333);
  g_assert_cmpint (replay_scaled_us (600000, dec ("100000")), ==, 6000);
  g_assert_cmpint (replay_scaled_us (1000, dec ("0")), ==, 0);
  g_assert_cmpint (replay_scaled_us (0, dec ("1")), ==, 0);
  g_assert_cmpint (replay_scaled_us (-5, dec ("1")), ==, 0);
  g_assert_cmpint (replay_scaled_us (REPLAY_MAX_AT_MS, dec ("1")), ==, REPLAY_MAX_AT_MS * 1000);
  /* too slow to represent: a pause nobody waits for, never a wrap */
  g_assert_cmpint (replay_scaled_us (REPLAY_MAX_AT_MS, dec ("0.00000001")), >, G_GINT64_CONSTANT (1) << 60);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/ingest-replay/decode/quote-strings", test_decode_quote_strings);
  g_test_add_func ("/ingest-replay/decode/quote-partial", test_decode_quote_partial);
  g_test_add_func ("/ingest-replay/decode/quote-numbers", test_decode_quote_numbers);
  g_test_add_func ("/ingest-replay/decode/double-to-text", test_double_to_text);
  g_test_add_func ("/ingest-replay/decode/status", test_decode_status);
  g_test_add_func ("/ingest-replay/decode/blank", test_decode_blank);
  g_test_add_func ("/ingest-replay/decode/malformed/line-too-long", test_decode_line_too_long);
  for (guint i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      g_autofree char *name = g_strdup_printf ("/ingest-replay/decode/malformed/%s", malformed[i].name);
      g_test_add_data_func (name, &malformed[i], test_decode_malformed);
    }
  g_test_add_func ("/ingest-replay/load/shipped-session", test_load_shipped_session);
  g_test_add_func ("/ingest-replay/load/resolution-demo", test_load_resolution_demo);
  g_test_add_func ("/ingest-replay/load/merge", test_load_merge);
  g_test_add_func ("/ingest-replay/load/missing-file", test_load_missing_file);
  g_test_add_func ("/ingest-replay/load/nothing-valid", test_load_nothing_valid);
  g_test_add_func ("/ingest-replay/config/resolve-files", test_resolve_files);
  g_test_add_func ("/ingest-replay/pacing/scaled", test_pacing);

  return g_test_run ();
}
