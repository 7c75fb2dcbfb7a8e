/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoding tests of ingest-coinmarketcap against every recorded CoinMarketCap
 * payload in ../shared/fixtures/upstream/coinmarketcap ($ARB_FIXTURES_DIR):
 * by id and by symbol (v1's object per symbol, v2's array per symbol and its
 * duplicate tickers), status.error_code on errors and with HTTP 200, and
 * malformed answers that give no price at all. The plugin's source is
 * compiled in to reach its static decoders.
 */

#include "arb-ingest-coinmarketcap.c"

static gboolean
need_fixtures (char **dir)
{
  const char *root = g_getenv ("ARB_FIXTURES_DIR");

  *dir = root != NULL ? g_build_filename (root, "coinmarketcap", NULL) : NULL;
  if (*dir == NULL || !g_file_test (*dir, G_FILE_TEST_IS_DIR))
    {
      g_clear_pointer (dir, g_free);
      g_test_skip ("no CoinMarketCap fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream (CI clones shared/ "
                   "beside this repository)");
      return FALSE;
    }
  return TRUE;
}

static char *
read_fixture (const char *dir, const char *name, gsize *length)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, length, &error);
  g_assert_no_error (error);
  return text;
}

static GPtrArray *
markets_of (const char *const *entries, gboolean expect_symbols)
{
  g_autoptr(GError) error = NULL;
  gboolean by_symbol = !expect_symbols;
  GPtrArray *markets = cmc_markets_parse (entries, &by_symbol, &error);

  g_assert_no_error (error);
  g_assert_cmpint (by_symbol, ==, expect_symbols);
  return markets;
}

static ArbQuote *
find_quote (GPtrArray *quotes, const char *market)
{
  for (guint i = 0; i < quotes->len; i++)
    if (g_str_equal (arb_quote_get_market (g_ptr_array_index (quotes, i)), market))
      return g_ptr_array_index (quotes, i);
  return NULL;
}

static void
assert_quote (GPtrArray *quotes, const char *market, const char *price, const char *time)
{
  ArbQuote *q = find_quote (quotes, market);
  ArbDecimal d;
  char buf[ARB_DECIMAL_BUFSIZE];
  gint64 us = 0;

  g_assert_nonnull (q);
  g_assert_true (arb_quote_get_last (q, &d));
  g_assert_false (arb_quote_get_bid (q, &d) || arb_quote_get_ask (q, &d));
  arb_quote_get_last (q, &d);
  g_assert_cmpstr (arb_decimal_format_short (d, buf), ==, price);
  g_assert_true (arb_ingest_parse_time_us (time, &us));
  g_assert_cmpint (arb_quote_get_source_time (q), ==, us);
}

static gboolean
decode (GPtrArray *markets, const char *body, gsize length, CmcDecoded *d, gint64 *code, GError **error)
{
  cmc_decoded_init (d);
  return cmc_decode_quotes (markets, "USD", body, length, d, code, error);
}

/* ------------------------------------------------------------------------ */

static void
test_by_id (void)
{
  const char *entries[] = { "1:crypto:BTC-USD", "1027:crypto:ETH-USD", "5426:crypto:SOL-USD", NULL };
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  gint64 code = -1;
  CmcDecoded d;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (entries, FALSE);
  body = read_fixture (dir, "v2_quotes_latest_id.json", &length);
  g_assert_true (decode (markets, body, length, &d, &code, &error));
  g_assert_no_error (error);
  g_assert_cmpint (code, ==, 0);
  g_assert_cmpuint (d.quotes->len, ==, 2);
  /* 91236.02004781559 and 3021.5581120034, rounded half-even at eight places */
  assert_quote (d.quotes, "crypto:BTC-USD", "91236.02004782", "2026-11-20T15:03:00.000Z");
  assert_quote (d.quotes, "crypto:ETH-USD", "3021.558112", "2026-11-20T15:03:00.000Z");
  /* skip_invalid drops what it does not know: a per-market error */
  g_assert_cmpuint (d.missing->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (d.missing, 0), ==, "5426");
  cmc_decoded_clear (&d);
}

static void
test_v2_by_symbol (void)
{
  const char *entries[] = { "SOL:crypto:SOL-USD", "XRP/52:crypto:XRP-USD", NULL };
  const char *wrong_pin[] = { "SOL/1:crypto:SOL-USD", NULL };
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GPtrArray) pinned_wrong = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  gint64 code = -1;
  CmcDecoded d;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (entries, TRUE);
  body = read_fixture (dir, "v2_quotes_latest_symbol.json", &length);
  g_assert_true (decode (markets, body, length, &d, &code, &error));
  g_assert_cmpuint (d.quotes->len, ==, 2);
  assert_quote (d.quotes, "crypto:SOL-USD", "141.84122033", "2026-11-20T15:02:00.000Z");
  assert_quote (d.quotes, "crypto:XRP-USD", "2.18512201", "2026-11-20T15:02:00.000Z");
  cmc_decoded_clear (&d);

  /* a pin that names another coin: an error for that market, not SOL's price */
  pinned_wrong = markets_of (wrong_pin, TRUE);
  g_assert_true (decode (pinned_wrong, body, length, &d, &code, &error));
  g_assert_cmpuint (d.quotes->len, ==, 0);
  g_assert_cmpuint (d.problems->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==, "SOL: no coin with id 1 among the 1 with this symbol");
  cmc_decoded_clear (&d);
}

/* v2 gives every coin that shares a ticker; the configured id says which one */
static void
test_duplicate_tickers (void)
{
  static const char *answer =
    "{\"status\":{\"timestamp\":\"2026-11-20T15:03:40.911Z\",\"error_code\":0,\"error_message\":null,\"elapsed\":3,"
    "\"credit_count\":1,\"notice\":null},\"data\":{\"ATOM\":["
    "{\"id\":3794,\"symbol\":\"ATOM\",\"is_active\":1,\"cmc_rank\":25,\"last_updated\":\"2026-11-20T15:02:00.000Z\","
    "\"quote\":{\"USD\":{\"price\":8.123456789,\"last_updated\":\"2026-11-20T15:02:00.000Z\"}}},"
    "{\"id\":9001,\"symbol\":\"ATOM\",\"is_active\":1,\"cmc_rank\":4321,\"last_updated\":\"2026-11-20T15:01:00.000Z\","
    "\"quote\":{\"USD\":{\"price\":0.00421,\"last_updated\":\"2026-11-20T15:01:00.000Z\"}}},"
    "{\"id\":777,\"symbol\":\"ATOM\",\"is_active\":0,\"cmc_rank\":null,\"last_updated\":\"2020-01-01T00:00:00.000Z\","
    "\"quote\":{\"USD\":{\"price\":null,\"last_updated\":\"2020-01-01T00:00:00.000Z\"}}}]}}";
  const char *pinned[] = { "ATOM/3794:crypto:ATOM-USD", NULL };
  const char *other[] = { "ATOM/9001:crypto:ATOM-USD", NULL };
  const char *inactive[] = { "ATOM/777:crypto:ATOM-USD", NULL };
  const char *unpinned[] = { "ATOM:crypto:ATOM-USD", NULL };
  g_autoptr(GPtrArray) m1 = markets_of (pinned, TRUE);
  g_autoptr(GPtrArray) m2 = markets_of (other, TRUE);
  g_autoptr(GPtrArray) m3 = markets_of (inactive, TRUE);
  g_autoptr(GPtrArray) m4 = markets_of (unpinned, TRUE);
  g_autoptr(GError) error = NULL;
  gint64 code;
  CmcDecoded d;

  g_assert_true (decode (m1, answer, strlen (answer), &d, &code, &error));
  assert_quote (d.quotes, "crypto:ATOM-USD", "8.12345679", "2026-11-20T15:02:00.000Z");
  cmc_decoded_clear (&d);

  g_assert_true (decode (m2, answer, strlen (answer), &d, &code, &error));
  assert_quote (d.quotes, "crypto:ATOM-USD", "0.00421", "2026-11-20T15:01:00.000Z");
  cmc_decoded_clear (&d);

  /* pinned to the inactive one: its null price is a problem, not a zero */
  g_assert_true (decode (m3, answer, strlen (answer), &d, &code, &error));
  g_assert_cmpuint (d.quotes->len, ==, 0);
  g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==, "ATOM: the USD price is null, not a number");
  cmc_decoded_clear (&d);

  /* two active coins and no pin: no guess */
  g_assert_true (decode (m4, answer, strlen (answer), &d, &code, &error));
  g_assert_cmpuint (d.quotes->len, ==, 0);
  g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==,
                   "ATOM: the symbol is ambiguous (active ids 3794, 9001): pin one as ATOM/ID");
  cmc_decoded_clear (&d);
}

static void
test_v1_by_symbol (void)
{
  const char *entries[] = { "BTC:crypto:BTC-USD", "ETH/1027:crypto:ETH-USD", NULL };
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  gint64 code = -1;
  CmcDecoded d;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (entries, TRUE);
  body = read_fixture (dir, "v1_quotes_latest_symbol.json", &length);
  g_assert_true (decode (markets, body, length, &d, &code, &error));
  g_assert_cmpuint (d.quotes->len, ==, 2);
  assert_quote (d.quotes, "crypto:BTC-USD", "91241.77359081", "2026-11-20T15:02:00.000Z");
  assert_quote (d.quotes, "crypto:ETH-USD", "3022.11087341", "2026-11-20T15:02:00.000Z");
  cmc_decoded_clear (&d);
}

typedef struct {
  const char      *file;
  guint            http;
  ArbIngestOutcome outcome;
  gint64           code;
  gint64           retry_ms;
  const char      *reason;
} ErrorFixture;

static const ErrorFixture error_fixtures[] = {
  { "rate_limit_429_1008.json", 429, ARB_INGEST_RATE_LIMITED, 1008, CMC_MINUTE_LIMIT_MS,
    "CoinMarketCap HTTP 429 Too Many Requests: error 1008: You've exceeded your API Key's HTTP request rate limit. "
    "Rate limits reset every minute." },
  { "auth_401_1001_invalid_key.json", 401, ARB_INGEST_AUTH, 1001, 0,
    "CoinMarketCap HTTP 401 Unauthorized: error 1001: This API Key is invalid. (check api_key_env or api_key_file)" },
  { "auth_401_1002_missing_key.json", 401, ARB_INGEST_AUTH, 1002, 0,
    "CoinMarketCap HTTP 401 Unauthorized: error 1002: API key missing. (check api_key_env or api_key_file)" },
  { "unknown_symbol_400.json", 400, ARB_INGEST_FAILED, 400, 0,
    "CoinMarketCap HTTP 400 Bad Request: error 400: Invalid value for \"symbol\": \"NOTACOINXYZ\"" },
};

static void
test_error_bodies (gconstpointer data)
{
  const ErrorFixture *f = data;
  const char *entries[] = { "1:crypto:BTC-USD", NULL };
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  ArbIngestOutcome outcome;
  gint64 retry_ms = -1, code = 0;
  gsize length = 0;
  CmcDecoded d;

  if (!need_fixtures (&dir))
    return;
  body = read_fixture (dir, f->file, &length);
  reason = cmc_describe_error (f->http, arb_ingest_status_phrase (f->http, NULL), body, length, &outcome, &retry_ms);
  g_test_message ("%s", reason);
  g_assert_cmpstr (reason, ==, f->reason);
  g_assert_cmpint (outcome, ==, f->outcome);
  g_assert_cmpint (retry_ms, ==, f->retry_ms);

  /* status.error_code rules even when the HTTP status says 200 */
  markets = markets_of (entries, FALSE);
  g_assert_true (decode (markets, body, length, &d, &code, &error));
  g_assert_no_error (error);
  g_assert_cmpint (code, ==, f->code);
  g_assert_cmpuint (d.quotes->len, ==, 0);
  cmc_decoded_clear (&d);
  g_clear_pointer (&reason, g_free);
  reason = cmc_describe_error (200, "OK", body, length, &outcome, &retry_ms);
  g_assert_cmpint (outcome, ==, f->http == 400 ? ARB_INGEST_FAILED : f->outcome);
}

static void
test_status_codes (void)
{
  static const struct { gint64 code; guint http; ArbIngestOutcome outcome; gint64 retry_ms; } cases[] = {
    { 1001, 401, ARB_INGEST_AUTH, 0 },       { 1002, 401, ARB_INGEST_AUTH, 0 },
    { 1003, 402, ARB_INGEST_AUTH, 0 },       { 1004, 402, ARB_INGEST_AUTH, 0 },
    { 1005, 403, ARB_INGEST_AUTH, 0 },       { 1006, 403, ARB_INGEST_AUTH, 0 },
    { 1007, 403, ARB_INGEST_AUTH, 0 },       { 1008, 429, ARB_INGEST_RATE_LIMITED, CMC_MINUTE_LIMIT_MS },
    { 1009, 429, ARB_INGEST_RATE_LIMITED, CMC_ALLOWANCE_MS },
    { 1010, 429, ARB_INGEST_RATE_LIMITED, CMC_ALLOWANCE_MS },
    { 1011, 429, ARB_INGEST_RATE_LIMITED, CMC_MINUTE_LIMIT_MS },
    { 500, 500, ARB_INGEST_FAILED, 0 },      { 0, 503, ARB_INGEST_FAILED, 0 },
    { 0, 429, ARB_INGEST_RATE_LIMITED, 0 },  { 0, 401, ARB_INGEST_AUTH, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"status\":{\"error_code\":%" G_GINT64_FORMAT ","
                                               "\"error_message\":\"m\"}}", cases[i].code);
      ArbIngestOutcome outcome;
      gint64 retry_ms = -1;
      g_autofree char *reason = cmc_describe_error (cases[i].http, NULL, body, strlen (body), &outcome, &retry_ms);

      g_test_message ("%s", reason);
      g_assert_cmpint (outcome, ==, cases[i].outcome);
      g_assert_cmpint (retry_ms, ==, cases[i].retry_ms);
    }
  {
    /* v3 sends the code as a string */
    const char *body = "{\"status\":{\"error_code\":\"0\",\"error_message\":null},\"data\":{}}";
    const char *entries[] = { "1:crypto:BTC-USD", NULL };
    g_autoptr(GPtrArray) markets = markets_of (entries, FALSE);
    g_autoptr(GError) error = NULL;
    gint64 code = -1;
    CmcDecoded d;

    g_assert_true (decode (markets, body, strlen (body), &d, &code, &error));
    g_assert_cmpint (code, ==, 0);
    g_assert_cmpuint (d.missing->len, ==, 1);
    cmc_decoded_clear (&d);
  }
}

static void
test_malformed (void)
{
  const char *entries[] = { "1:crypto:BTC-USD", "1027:crypto:ETH-USD", NULL };
  static const struct { const char *body; const char *why; } cases[] = {
    { "[]", "the answer is an array, not a {\"status\", \"data\"} object" },
    { "{\"data\":{}}", "the answer has no \"status\" object" },
    { "{\"status\":{\"error_code\":0}}", "the answer's \"data\" is missing, not an object" },
    { "{\"status\":{\"error_code\":0},\"data\":[]}", "the answer's \"data\" is an array, not an object" },
  };
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) markets = markets_of (entries, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 code;
      CmcDecoded d;

      g_assert_false (decode (markets, cases[i].body, strlen (cases[i].body), &d, &code, &error));
      g_assert_cmpstr (error->message, ==, cases[i].why);
      cmc_decoded_clear (&d);
    }

  if (!need_fixtures (&dir))
    return;
  {
    g_autofree char *body = NULL;
    g_autoptr(GError) error = NULL;
    gsize length = 0;
    gint64 code;
    CmcDecoded d;

    body = read_fixture (dir, "malformed_truncated.json", &length);
    g_assert_false (decode (markets, body, length, &d, &code, &error));
    g_test_message ("%s", error->message);
    g_assert_true (g_str_has_prefix (error->message, "not JSON: the text ends"));
    g_assert_cmpuint (d.quotes->len, ==, 0);
    cmc_decoded_clear (&d);
  }
  {
    /* every truncation of a good answer: no price at all */
    g_autofree char *body = NULL;
    gsize length = 0;

    body = read_fixture (dir, "v2_quotes_latest_id.json", &length);
    while (length > 0 && g_ascii_isspace (body[length - 1]))
      length--;
    for (gsize cut = 0; cut < length; cut++)
      {
        g_autoptr(GError) error = NULL;
        gint64 code;
        CmcDecoded d;

        g_assert_false (decode (markets, body, cut, &d, &code, &error));
        g_assert_cmpuint (d.quotes->len, ==, 0);
        cmc_decoded_clear (&d);
      }
  }
}

static void
test_bad_prices (void)
{
  static const struct { const char *coin; const char *problem; } cases[] = {
    { "{\"id\":1,\"quote\":{\"USD\":{\"price\":null}}}", "1: the USD price is null, not a number" },
    { "{\"id\":1,\"quote\":{\"USD\":{}}}", "1: the USD price is missing, not a number" },
    { "{\"id\":1,\"quote\":{\"EUR\":{\"price\":1}}}", "1: no quote in USD" },
    { "{\"id\":1}", "1: no quote in USD" },
    { "{\"id\":1,\"quote\":{\"USD\":{\"price\":0}}}",
      "1: the USD price is 0, not a positive price at eight decimal places" },
    { "{\"id\":1,\"quote\":{\"USD\":{\"price\":1e13}}}", "1: the USD price is 1e+13 is out of range" },
    { "{\"id\":2,\"quote\":{\"USD\":{\"price\":5}}}", "1: the answer is for id 2, not 1" },
    { "\"1\"", "1: a string, not a coin" },
  };
  const char *entries[] = { "1:crypto:BTC-USD", NULL };
  g_autoptr(GPtrArray) markets = markets_of (entries, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"status\":{\"error_code\":0},\"data\":{\"1\":%s}}", cases[i].coin);
      g_autoptr(GError) error = NULL;
      gint64 code;
      CmcDecoded d;

      g_assert_true (decode (markets, body, strlen (body), &d, &code, &error));
      g_assert_cmpuint (d.quotes->len, ==, 0);
      g_assert_cmpuint (d.problems->len, ==, 1);
      g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==, cases[i].problem);
      cmc_decoded_clear (&d);
    }
}

/* Every file of the folder, with its manifest status and the lookup its
 * request used: a price only where this table says, a reason for every
 * error. */
static void
test_every_fixture (void)
{
  static const struct { const char *file; const char *prices[3]; } table[] = {
    { "v2_quotes_latest_id.json", { "crypto:A-USD=91236.02004782", "crypto:B-USD=3021.558112" } },
    { "v2_quotes_latest_symbol.json", { "crypto:A-USD=141.84122033", "crypto:B-USD=2.18512201" } },
    { "v1_quotes_latest_symbol.json", { "crypto:A-USD=91241.77359081", "crypto:B-USD=3022.11087341" } },
  };
  g_autofree char *dir = NULL;
  g_autofree char *manifest_text = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  g_autoptr(GError) error = NULL;
  JsonArray *fixtures;
  gsize length = 0;
  guint n_files = 0;

  if (!need_fixtures (&dir))
    return;
  manifest_text = read_fixture (dir, "manifest.json", &length);
  manifest = arb_ingest_json_parse (manifest_text, length, &error);
  g_assert_no_error (error);
  fixtures = json_object_get_array_member (json_node_get_object (manifest), "fixtures");

  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *f = json_array_get_object_element (fixtures, i);
      const char *file = json_object_get_string_member (f, "file");
      const char *query = json_object_get_string_member (f, "query");
      guint status = (guint) json_object_get_int_member (f, "status");
      g_autofree char *body = read_fixture (dir, file, &length);
      g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func (g_free);
      g_autoptr(GPtrArray) markets = NULL;
      g_autoptr(GError) e = NULL;
      g_auto(GStrv) params = g_strsplit (query, "&", -1);
      const char *const *prices = NULL;
      gboolean by_symbol = FALSE;
      gint64 code = -1;
      CmcDecoded d;

      n_files++;
      /* the markets the recorded request asked for: id=1,1027 or symbol=SOL,XRP */
      for (guint p = 0; params[p] != NULL; p++)
        if (g_str_has_prefix (params[p], "id=") || g_str_has_prefix (params[p], "symbol="))
          {
            g_auto(GStrv) lookups = g_strsplit (strchr (params[p], '=') + 1, ",", -1);
            for (guint k = 0; lookups[k] != NULL; k++)
              g_ptr_array_add (entries, g_strdup_printf ("%s:crypto:%c-USD", lookups[k], 'A' + k));
          }
      g_ptr_array_add (entries, NULL);
      markets = cmc_markets_parse ((const char *const *) entries->pdata, &by_symbol, &e);
      g_assert_no_error (e);
      for (guint t = 0; t < G_N_ELEMENTS (table); t++)
        if (g_str_equal (table[t].file, file))
          prices = table[t].prices;

      if (status != 200)
        {
          ArbIngestOutcome outcome;
          gint64 retry_ms;
          g_autofree char *reason = cmc_describe_error (status, arb_ingest_status_phrase (status, NULL), body, length,
                                                        &outcome, &retry_ms);
          g_test_message ("%s (%u): %s", file, status, reason);
          g_assert_true (g_str_has_prefix (reason, "CoinMarketCap HTTP "));
          g_assert_nonnull (strstr (reason, ": error "));
          g_assert_null (prices);
          continue;
        }
      if (!decode (markets, body, length, &d, &code, &e))
        {
          g_test_message ("%s: refused: %s", file, e->message);
          g_assert_null (prices);
          g_assert_cmpuint (d.quotes->len, ==, 0);
          cmc_decoded_clear (&d);
          continue;
        }
      g_assert_cmpint (code, ==, 0);
      g_assert_nonnull (prices);
      g_assert_cmpuint (d.quotes->len, ==, markets->len);
      for (guint k = 0; prices[k] != NULL; k++)
        {
          g_auto(GStrv) kv = g_strsplit (prices[k], "=", 2);
          ArbQuote *q = find_quote (d.quotes, kv[0]);
          ArbDecimal v;
          char buf[ARB_DECIMAL_BUFSIZE];

          g_assert_nonnull (q);
          g_assert_true (arb_quote_get_last (q, &v));
          g_assert_cmpstr (arb_decimal_format_short (v, buf), ==, kv[1]);
          g_assert_cmpint (arb_quote_get_source_time (q), >, 0);
        }
      cmc_decoded_clear (&d);
    }
  g_assert_cmpuint (n_files, >=, 8);
}

static void
test_markets_config (void)
{
  static const struct { const char *entries[3]; const char *why; } bad[] = {
    { { "1:crypto:BTC-USD", "ETH:crypto:ETH-USD" }, "mixes ids and symbols" },
    { { "BTC/x:crypto:BTC-USD" }, "is neither a CoinMarketCap id" },
    { { "/1:crypto:BTC-USD" }, "is neither a CoinMarketCap id" },
    { { "B,C:crypto:BTC-USD" }, "is neither a CoinMarketCap id" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      gboolean by_symbol;
      g_autoptr(GPtrArray) m = cmc_markets_parse (bad[i].entries, &by_symbol, &error);
      g_assert_null (m);
      g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, bad[i].why));
    }
}

static void
test_request_uri (void)
{
  const char *ids[] = { "1:crypto:BTC-USD", "1027:crypto:ETH-USD", NULL };
  const char *symbols[] = { "BTC/1:crypto:BTC-USD", "ETH:crypto:ETH-USD", NULL };
  CmcPlugin self = { 0 };
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;

  self.convert = (char *) "USD";
  self.base_url = (char *) "http://127.0.0.1:8089";
  self.markets = markets_of (ids, FALSE);
  a = cmc_request_uri (&self);
  g_assert_cmpstr (a, ==, "http://127.0.0.1:8089/v2/cryptocurrency/quotes/latest?id=1,1027&convert=USD"
                          "&skip_invalid=true");
  g_ptr_array_unref (self.markets);
  self.markets = markets_of (symbols, TRUE);
  self.by_symbol = TRUE;
  b = cmc_request_uri (&self);
  g_assert_cmpstr (b, ==, "http://127.0.0.1:8089/v2/cryptocurrency/quotes/latest?symbol=BTC,ETH&convert=USD"
                          "&skip_invalid=true");
  g_ptr_array_unref (self.markets);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/ingest-coinmarketcap/decode/by-id", test_by_id);
  g_test_add_func ("/ingest-coinmarketcap/decode/v2-by-symbol", test_v2_by_symbol);
  g_test_add_func ("/ingest-coinmarketcap/decode/duplicate-tickers", test_duplicate_tickers);
  g_test_add_func ("/ingest-coinmarketcap/decode/v1-by-symbol", test_v1_by_symbol);
  for (guint i = 0; i < G_N_ELEMENTS (error_fixtures); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ingest-coinmarketcap/errors/%s", error_fixtures[i].file);
      g_test_add_data_func (path, &error_fixtures[i], test_error_bodies);
    }
  g_test_add_func ("/ingest-coinmarketcap/errors/status-codes", test_status_codes);
  g_test_add_func ("/ingest-coinmarketcap/decode/malformed", test_malformed);
  g_test_add_func ("/ingest-coinmarketcap/decode/bad-prices", test_bad_prices);
  g_test_add_func ("/ingest-coinmarketcap/decode/every-fixture", test_every_fixture);
  g_test_add_func ("/ingest-coinmarketcap/config/markets", test_markets_config);
  g_test_add_func ("/ingest-coinmarketcap/request-uri", test_request_uri);

  return g_test_run ();
}
