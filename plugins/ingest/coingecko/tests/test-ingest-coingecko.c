/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoding tests of ingest-coingecko against every recorded CoinGecko payload
 * in ../shared/fixtures/upstream/coingecko ($ARB_FIXTURES_DIR/coingecko): the
 * normal answers give exactly the recorded prices and times, the error bodies
 * give a clear reason, and the malformed or unexpected ones give no price at
 * all. The plugin's source is compiled in to reach its static decoders; the
 * plugin against a live (fake) upstream is tests/test-ingest-http.c.
 */

#include "arb-ingest-coingecko.c"

typedef struct {
  const char *id;
  const char *market;
} Mapping;

static const Mapping all_coins[] = {
  { "bitcoin", "crypto:BTC-USD" },
  { "ethereum", "crypto:ETH-USD" },
  { "solana", "crypto:SOL-USD" },
  { "not-a-real-coin-xyz", "crypto:XYZ-USD" },
};

/* what each 200 answer must give for all_coins in usd; NULL price: missing */
typedef struct {
  const char *market;
  const char *price;
  gint64      source_time; /* unix seconds, 0: none */
} Expect;

static char *
fixtures_dir (void)
{
  const char *dir = g_getenv ("ARB_FIXTURES_DIR");
  g_autofree char *path = NULL;

  if (dir == NULL)
    return NULL;
  path = g_build_filename (dir, "coingecko", NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return NULL;
  return g_steal_pointer (&path);
}

static gboolean
need_fixtures (char **dir)
{
  *dir = fixtures_dir ();
  if (*dir == NULL)
    {
      g_test_skip ("no CoinGecko fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream (CI clones shared/ "
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
markets_of (const Mapping *map, guint n)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  GPtrArray *markets;

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (entries, g_strdup_printf ("%s:%s", map[i].id, map[i].market));
  g_ptr_array_add (entries, NULL);
  markets = arb_ingest_markets_parse ((const char *const *) entries->pdata, &error);
  g_assert_no_error (error);
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
assert_quote (GPtrArray *quotes, const char *market, const char *price, gint64 source_time_s)
{
  ArbQuote *q = find_quote (quotes, market);
  ArbDecimal d;
  char buf[ARB_DECIMAL_BUFSIZE];

  g_assert_nonnull (q);
  g_assert_false (arb_quote_get_bid (q, &d));
  g_assert_false (arb_quote_get_ask (q, &d));
  g_assert_true (arb_quote_get_last (q, &d));
  g_assert_cmpstr (arb_decimal_format_short (d, buf), ==, price);
  g_assert_cmpint (arb_quote_get_source_time (q), ==, source_time_s * G_USEC_PER_SEC);
}

/* ------------------------------------------------------------------------ */

static void
test_full (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  CgDecoded d;

  if (!need_fixtures (&dir))
    return;
  body = read_fixture (dir, "simple_price_full.json", &length);
  markets = markets_of (all_coins, 3);

  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "usd", body, length, &d, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (d.quotes->len, ==, 3);
  g_assert_cmpuint (d.missing->len, ==, 0);
  g_assert_cmpuint (d.problems->len, ==, 0);
  assert_quote (d.quotes, "crypto:BTC-USD", "91234.56", 1795186790);
  assert_quote (d.quotes, "crypto:ETH-USD", "3021.44", 1795186781);
  assert_quote (d.quotes, "crypto:SOL-USD", "141.87", 1795186795);
  cg_decoded_clear (&d);

  /* the same answer read in eur */
  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "eur", body, length, &d, &error));
  assert_quote (d.quotes, "crypto:BTC-USD", "86012.31", 1795186790);
  assert_quote (d.quotes, "crypto:ETH-USD", "2848.52", 1795186781);
  assert_quote (d.quotes, "crypto:SOL-USD", "133.75", 1795186795);
  cg_decoded_clear (&d);

  /* a currency the answer does not have: a per-market problem each */
  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "gbp", body, length, &d, &error));
  g_assert_cmpuint (d.quotes->len, ==, 0);
  g_assert_cmpuint (d.problems->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==, "bitcoin: no gbp price");
  cg_decoded_clear (&d);
}

static void
test_usd_only (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  CgDecoded d;

  if (!need_fixtures (&dir))
    return;
  body = read_fixture (dir, "simple_price_usd_only.json", &length);
  markets = markets_of (all_coins, 2);
  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "usd", body, length, &d, &error));
  /* an integer-valued JSON number, and no last_updated_at: no source time */
  assert_quote (d.quotes, "crypto:BTC-USD", "91234", 0);
  assert_quote (d.quotes, "crypto:ETH-USD", "3021.44", 0);
  cg_decoded_clear (&d);
}

static void
test_unknown_ids (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *empty = NULL;
  g_autofree char *partial = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gsize n_empty = 0, n_partial = 0;
  CgDecoded d;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (all_coins, G_N_ELEMENTS (all_coins));

  /* {}: every id missing, which is not a malformed answer */
  empty = read_fixture (dir, "simple_price_unknown_id.json", &n_empty);
  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "usd", empty, n_empty, &d, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (d.quotes->len, ==, 0);
  g_assert_cmpuint (d.missing->len, ==, 4);
  cg_decoded_clear (&d);

  /* the known one is there, the unknown ones are per-market errors */
  partial = read_fixture (dir, "simple_price_partial_unknown.json", &n_partial);
  cg_decoded_init (&d);
  g_assert_true (cg_decode_simple_price (markets, "usd", partial, n_partial, &d, &error));
  g_assert_cmpuint (d.quotes->len, ==, 1);
  assert_quote (d.quotes, "crypto:BTC-USD", "91230.12", 1795186850);
  g_assert_cmpuint (d.missing->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (d.missing, 0), ==, "ethereum");
  g_assert_cmpstr (g_ptr_array_index (d.missing, 2), ==, "not-a-real-coin-xyz");
  cg_decoded_clear (&d);
}

typedef struct {
  const char *file;
  guint       status;
  gboolean    auth;
  const char *reason;
} ErrorFixture;

static const ErrorFixture error_fixtures[] = {
  { "rate_limit_429.json", 429, FALSE,
    "CoinGecko HTTP 429 Too Many Requests: error 429: You've exceeded the Rate Limit. Please visit "
    "https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits." },
  { "auth_401_missing_key.json", 401, TRUE,
    "CoinGecko HTTP 401 Unauthorized: error 10002: API Key Missing. Please make sure you're using the right "
    "authentication method. For Pro API, please visit: https://docs.coingecko.com/reference/authentication. For "
    "Public/Demo API, please visit: https://docs.coingecko.com/v3.0.1/reference/authentication. (set api_key_env or "
    "api_key_file, or check the key)" },
  { "auth_400_pro_key_on_demo_root.json", 400, TRUE,
    "CoinGecko HTTP 400 Bad Request: error 10010: If you are using Pro API key, please change your root URL from "
    "api.coingecko.com to pro-api.coingecko.com (a Pro key: use plan=pro)" },
  { "error_400_missing_vs_currencies.json", 400, FALSE,
    "CoinGecko HTTP 400 Bad Request: Missing parameter vs_currencies" },
  { "coins_unknown_404.json", 404, FALSE, "CoinGecko HTTP 404 Not Found: coin not found" },
};

static void
test_error_bodies (gconstpointer data)
{
  const ErrorFixture *f = data;
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  gboolean auth = !f->auth;
  gsize length = 0;
  CgDecoded d;

  if (!need_fixtures (&dir))
    return;
  body = read_fixture (dir, f->file, &length);
  reason = cg_describe_error (f->status, arb_ingest_status_phrase (f->status, NULL), body, length, &auth);
  g_test_message ("%s", reason);
  g_assert_cmpstr (reason, ==, f->reason);
  g_assert_cmpint (auth, ==, f->auth);

  /* the same body with status 200 is an error answer, never "every id missing" */
  markets = markets_of (all_coins, G_N_ELEMENTS (all_coins));
  cg_decoded_init (&d);
  g_assert_false (cg_decode_simple_price (markets, "usd", body, length, &d, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_test_message ("as 200: %s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "an error answer with status 200: "));
  g_assert_cmpuint (d.quotes->len, ==, 0);
  cg_decoded_clear (&d);
}

static void
test_cloudflare (void)
{
  gboolean auth = FALSE;
  g_autofree char *reason = cg_describe_error (403, "Forbidden", "error code: 1020", 16, &auth);

  g_assert_cmpstr (reason, ==, "CoinGecko HTTP 403 Forbidden: error code: 1020 (Cloudflare refused this address "
                               "(error 1020))");
  g_assert_true (auth);
}

static void
test_unexpected_shapes (void)
{
  static const struct { const char *file; const char *why; } cases[] = {
    { "malformed_truncated.json", "not JSON: the text ends inside an object or array (truncated?)" },
    { "coins_markets_usd.json", "the answer is an array, not an object keyed by coin id" },
  };
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) markets = NULL;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (all_coins, G_N_ELEMENTS (all_coins));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = NULL;
      g_autoptr(GError) error = NULL;
      gsize length = 0;
      CgDecoded d;

      body = read_fixture (dir, cases[i].file, &length);
      cg_decoded_init (&d);
      g_assert_false (cg_decode_simple_price (markets, "usd", body, length, &d, &error));
      g_test_message ("%s: %s", cases[i].file, error->message);
      g_assert_true (g_str_has_prefix (error->message, cases[i].why));
      g_assert_cmpuint (d.quotes->len, ==, 0);
      cg_decoded_clear (&d);
    }

  /* ping's answer holds none of our ids */
  {
    g_autofree char *body = NULL;
    g_autoptr(GError) error = NULL;
    gsize length = 0;
    CgDecoded d;

    body = read_fixture (dir, "ping.json", &length);
    cg_decoded_init (&d);
    g_assert_true (cg_decode_simple_price (markets, "usd", body, length, &d, &error));
    g_assert_cmpuint (d.quotes->len, ==, 0);
    g_assert_cmpuint (d.missing->len, ==, G_N_ELEMENTS (all_coins));
    cg_decoded_clear (&d);
  }
}

/* Every file of the folder, whatever comes: with the manifest's status, the
 * answer decodes to exactly the prices in this table or to none at all, and
 * an error body gives a non-empty reason. A fixture added later is covered
 * (and gives no price until the table says which). */
static const struct {
  const char  *file;
  const Expect expect[4];
} price_table[] = {
  { "simple_price_full.json",
    { { "crypto:BTC-USD", "91234.56", 1795186790 }, { "crypto:ETH-USD", "3021.44", 1795186781 },
      { "crypto:SOL-USD", "141.87", 1795186795 } } },
  { "simple_price_usd_only.json", { { "crypto:BTC-USD", "91234", 0 }, { "crypto:ETH-USD", "3021.44", 0 } } },
  { "simple_price_partial_unknown.json", { { "crypto:BTC-USD", "91230.12", 1795186850 } } },
};

static void
test_every_fixture (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *manifest_text = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GDir) listing = NULL;
  JsonArray *fixtures;
  gsize length = 0;
  const char *name;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (all_coins, G_N_ELEMENTS (all_coins));
  manifest_text = read_fixture (dir, "manifest.json", &length);
  manifest = arb_ingest_json_parse (manifest_text, length, &error);
  g_assert_no_error (error);
  fixtures = json_object_get_array_member (json_node_get_object (manifest), "fixtures");
  g_assert_cmpuint (json_array_get_length (fixtures), >=, 12);

  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *f = json_array_get_object_element (fixtures, i);
      const char *file = json_object_get_string_member (f, "file");
      guint status = (guint) json_object_get_int_member (f, "status");
      g_autofree char *body = NULL;
      g_autoptr(GError) e = NULL;
      const Expect *expect = NULL;
      CgDecoded d;

      g_hash_table_add (seen, g_strdup (file));
      body = read_fixture (dir, file, &length);
      for (guint t = 0; t < G_N_ELEMENTS (price_table); t++)
        if (g_str_equal (price_table[t].file, file))
          expect = price_table[t].expect;

      if (status != 200)
        {
          gboolean auth;
          g_autofree char *reason = cg_describe_error (status, arb_ingest_status_phrase (status, NULL), body, length,
                                                       &auth);
          g_test_message ("%s (%u): %s", file, status, reason);
          g_assert_true (g_str_has_prefix (reason, "CoinGecko HTTP "));
          g_assert_cmpuint (strlen (reason), >, strlen ("CoinGecko HTTP 400 Bad Request: "));
          g_assert_null (expect);
          continue;
        }
      cg_decoded_init (&d);
      if (!cg_decode_simple_price (markets, "usd", body, length, &d, &e))
        {
          g_test_message ("%s: refused: %s", file, e->message);
          g_assert_cmpuint (d.quotes->len, ==, 0);
          g_assert_null (expect);
          cg_decoded_clear (&d);
          continue;
        }
      g_test_message ("%s: %u quotes, %u missing, %u problems", file, d.quotes->len, d.missing->len,
                      d.problems->len);
      g_assert_cmpuint (d.quotes->len + d.missing->len + d.problems->len, ==, markets->len);
      for (guint q = 0; q < d.quotes->len; q++)
        {
          const char *market = arb_quote_get_market (g_ptr_array_index (d.quotes, q));
          gboolean found = FALSE;

          g_assert_nonnull (expect);
          for (guint k = 0; k < 4 && expect[k].market != NULL; k++)
            if (g_str_equal (expect[k].market, market))
              {
                assert_quote (d.quotes, market, expect[k].price, expect[k].source_time);
                found = TRUE;
              }
          g_assert_true (found);
        }
      for (guint k = 0; expect != NULL && k < 4 && expect[k].market != NULL; k++)
        g_assert_nonnull (find_quote (d.quotes, expect[k].market));
      cg_decoded_clear (&d);
    }

  /* the manifest names every file of the folder */
  listing = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (listing)) != NULL)
    if (g_str_has_suffix (name, ".json") && !g_str_equal (name, "manifest.json"))
      {
        if (!g_hash_table_contains (seen, name))
          g_test_fail_printf ("%s is not in manifest.json", name);
      }
}

/* truncated anywhere: never a crash, never a price that differs from the whole answer's */
static void
test_every_truncation (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GPtrArray) markets = NULL;
  gsize length = 0;

  if (!need_fixtures (&dir))
    return;
  markets = markets_of (all_coins, G_N_ELEMENTS (all_coins));
  body = read_fixture (dir, "simple_price_full.json", &length);
  while (length > 0 && g_ascii_isspace (body[length - 1]))
    length--;
  for (gsize cut = 0; cut < length; cut++)
    {
      g_autoptr(GError) error = NULL;
      CgDecoded d;

      cg_decoded_init (&d);
      g_assert_false (cg_decode_simple_price (markets, "usd", body, cut, &d, &error));
      g_assert_cmpuint (d.quotes->len, ==, 0);
      cg_decoded_clear (&d);
    }
}

static void
test_bad_prices (void)
{
  static const struct { const char *json; const char *problem; } cases[] = {
    { "{\"bitcoin\":{\"usd\":null}}", "bitcoin: usd is null, not a number" },
    { "{\"bitcoin\":{\"usd\":\"abc\"}}", "bitcoin: usd is \"abc\" is not a decimal number in range" },
    { "{\"bitcoin\":{\"usd\":0}}", "bitcoin: usd is 0, not a positive price at eight decimal places" },
    { "{\"bitcoin\":{\"usd\":-3}}", "bitcoin: usd is -3, not a positive price at eight decimal places" },
    { "{\"bitcoin\":{\"usd\":1e-9}}", "bitcoin: usd is 0, not a positive price at eight decimal places" },
    { "{\"bitcoin\":{\"usd\":5e15}}", "bitcoin: usd is 5e+15 is out of range" },
    { "{\"bitcoin\":[1,2]}", "bitcoin: an array, not an object" },
    { "{\"bitcoin\":\"91234\"}", "bitcoin: a string, not an object" },
  };
  const Mapping btc[] = { { "bitcoin", "crypto:BTC-USD" } };
  g_autoptr(GPtrArray) markets = markets_of (btc, 1);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      CgDecoded d;

      cg_decoded_init (&d);
      g_assert_true (cg_decode_simple_price (markets, "usd", cases[i].json, strlen (cases[i].json), &d, &error));
      g_assert_cmpuint (d.quotes->len, ==, 0);
      g_assert_cmpuint (d.problems->len, ==, 1);
      g_assert_cmpstr (g_ptr_array_index (d.problems, 0), ==, cases[i].problem);
      cg_decoded_clear (&d);
    }

  /* a silly last_updated_at is ignored, the price stands */
  {
    const char *json = "{\"bitcoin\":{\"usd\":1.5,\"last_updated_at\":\"soon\"}}";
    g_autoptr(GError) error = NULL;
    CgDecoded d;

    cg_decoded_init (&d);
    g_assert_true (cg_decode_simple_price (markets, "usd", json, strlen (json), &d, &error));
    assert_quote (d.quotes, "crypto:BTC-USD", "1.5", 0);
    cg_decoded_clear (&d);
  }
}

static void
test_request_uri (void)
{
  const Mapping two[] = { { "bitcoin", "crypto:BTC-USD" }, { "usd-coin", "crypto:USDC-USD" } };
  CgPlugin self = { 0 };
  g_autofree char *uri = NULL;

  self.markets = markets_of (two, 2);
  self.vs = (char *) "usd";
  self.base_url = (char *) "http://127.0.0.1:8089/api/v3";
  uri = cg_request_uri (&self);
  g_assert_cmpstr (uri, ==, "http://127.0.0.1:8089/api/v3/simple/price?ids=bitcoin,usd-coin&vs_currencies=usd"
                            "&include_last_updated_at=true&precision=full");
  g_ptr_array_unref (self.markets);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/ingest-coingecko/decode/full", test_full);
  g_test_add_func ("/ingest-coingecko/decode/usd-only", test_usd_only);
  g_test_add_func ("/ingest-coingecko/decode/unknown-ids", test_unknown_ids);
  for (guint i = 0; i < G_N_ELEMENTS (error_fixtures); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ingest-coingecko/errors/%s", error_fixtures[i].file);
      g_test_add_data_func (path, &error_fixtures[i], test_error_bodies);
    }
  g_test_add_func ("/ingest-coingecko/errors/cloudflare-1020", test_cloudflare);
  g_test_add_func ("/ingest-coingecko/decode/unexpected-shapes", test_unexpected_shapes);
  g_test_add_func ("/ingest-coingecko/decode/every-fixture", test_every_fixture);
  g_test_add_func ("/ingest-coingecko/decode/every-truncation", test_every_truncation);
  g_test_add_func ("/ingest-coingecko/decode/bad-prices", test_bad_prices);
  g_test_add_func ("/ingest-coingecko/request-uri", test_request_uri);

  return g_test_run ();
}
