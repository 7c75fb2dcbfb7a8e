/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the helpers the HTTP ingest plugins share: the strict JSON
 * check, exact prices out of JSON numbers, error bodies of every known shape,
 * Retry-After, market maps and base URLs. Pure functions, no host.
 */

#include <string.h>

#include "arb-ingest-common.h"

#define assert_dec(d, text)                                                    \
  G_STMT_START {                                                               \
    char _buf[ARB_DECIMAL_BUFSIZE];                                            \
    g_assert_cmpstr (arb_decimal_format_short ((d), _buf), ==, (text));        \
  } G_STMT_END

static void
test_json_strict (void)
{
  static const struct { const char *text; const char *why; } bad[] = {
    { "", "empty" },
    { "{\"a\":1} {\"b\":2}", "more text after the value" },
    { "{\"a\":1}x", "more text after the value" },
    { "{\"a\":01}", "leading zero" },
    { "{\"a\":99999999999999999999}", "more than 18 digits" },
    { "{\"a\":1,\"a\":2}", "given twice" },
    { "{\"x\":{\"a\":1,\"a\":2}}", "given twice" },
    { "{'a':1}", "not a string" },
    { "{\"a\":1 /* c */}", "expected ',' or '}'" },
    { "{\"a\":\"x\\u0000y\"}", "\\u0000" },
    { "{\"a\":\"tab\there\"}", "control character" },
    { "{\"a\":1.}", "digits after the point" },
    { "{\"a\":1e}", "exponent" },
    { "{\"a\":NaN}", "unexpected text" },
    { "{\"bitcoin\":{\"usd\":91234.56,\"usd_24h_change\":-1.23456789", "truncated" },
    { "[1,2", "truncated" },
    { "\"abc", "ends inside a string (truncated?) at byte 4 of 4" },
    { "{\"a\":\xff}", "UTF-8" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = arb_ingest_json_parse (bad[i].text, strlen (bad[i].text), &error);
      g_autofree char *shown = g_strescape (bad[i].text, NULL);

      g_test_message ("%s", shown);
      g_assert_null (root);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_test_message ("  %s", error->message);
      g_assert_nonnull (strstr (error->message, bad[i].why));
    }

  {
    /* the same names in different objects are fine; so is white space */
    const char *good = " {\"a\":{\"usd\":1},\"b\":{\"usd\":2}, \"c\": [ {\"usd\":3}, {\"usd\":4} ] }\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) root = arb_ingest_json_parse (good, strlen (good), &error);
    g_assert_no_error (error);
    g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  }
  {
    /* not NUL-terminated: the length rules */
    const char text[] = { '{', '}', 'x' };
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) root = arb_ingest_json_parse (text, 2, &error);
    g_assert_no_error (error);
    g_assert_nonnull (root);
  }
}

/* nesting: the default limit, and a tighter one for a flat format */
static void
test_json_depth (void)
{
  static const struct { guint levels; guint max_depth; gboolean ok; } cases[] = {
    { ARB_INGEST_JSON_MAX_DEPTH, ARB_INGEST_JSON_MAX_DEPTH, TRUE },
    { ARB_INGEST_JSON_MAX_DEPTH + 1, ARB_INGEST_JSON_MAX_DEPTH, FALSE },
    { 16, 16, TRUE },
    { 17, 16, FALSE },
    { 1, 1, TRUE },
    { 2, 1, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GString) text = g_string_new (NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = NULL;

      for (guint l = 0; l < cases[i].levels; l++)
        g_string_append_c (text, '[');
      g_string_append_c (text, '1');
      for (guint l = 0; l < cases[i].levels; l++)
        g_string_append_c (text, ']');
      g_test_message ("%u levels, at most %u", cases[i].levels, cases[i].max_depth);
      if (cases[i].max_depth == ARB_INGEST_JSON_MAX_DEPTH)
        root = arb_ingest_json_parse (text->str, text->len, &error);
      else
        root = arb_ingest_json_parse_depth (text->str, text->len, cases[i].max_depth, &error);
      if (cases[i].ok)
        {
          g_assert_no_error (error);
          g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
        }
      else
        {
          g_assert_null (root);
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
          g_assert_nonnull (strstr (error->message, "nesting too deep"));
        }
    }
}

static void
test_decimal_from_json (void)
{
  static const struct { const char *json; const char *value; } cases[] = {
    { "91234", "91234" },                  /* an integer-valued JSON number is exact */
    { "91234.56", "91234.56" },            /* not 91234.559999999997672 */
    { "3021.44", "3021.44" },
    { "0.1", "0.1" },
    { "6.18e-06", "0.00000618" },
    { "6.18E-6", "0.00000618" },
    { "1.5e2", "150" },
    { "91241.77359081023", "91241.77359081" }, /* rounded once, half-even, at eight places */
    { "2.18512201093", "2.18512201" },
    { "0.123456785", "0.12345678" },       /* a tie in the shortest text: to even */
    { "0.123456795", "0.1234568" },
    { "0.000000005", "0" },                /* rounds to zero: the caller refuses it */
    { "\"0.2325\"", "0.2325" },            /* a decimal string */
    { "\"0.123456789\"", "0.12345679" },
    { "92233720368", "92233720368" },
    { "-5", "-5" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"p\":%s}", cases[i].json);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = arb_ingest_json_parse (text, strlen (text), &error);
      ArbDecimal d = ARB_DECIMAL_ZERO;

      g_assert_no_error (error);
      g_test_message ("%s", cases[i].json);
      g_assert_true (arb_ingest_json_to_decimal (json_object_get_member (json_node_get_object (root), "p"),
                                                 ARB_ROUND_HALF_EVEN, &d, &error));
      g_assert_no_error (error);
      assert_dec (d, cases[i].value);
    }
}

static void
test_decimal_from_json_refused (void)
{
  static const struct { const char *json; const char *why; } cases[] = {
    { "null", "null, not a number" },
    { "true", "true or false, not a number" },
    { "{}", "an object" },
    { "[1]", "an array" },
    { "\"abc\"", "not a decimal number" },
    { "\"\"", "not a decimal number" },
    { "1e12", "out of range" },
    { "123456789012345678", "out of range" },
    { "1e300", "out of range" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"p\":%s}", cases[i].json);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = arb_ingest_json_parse (text, strlen (text), &error);
      ArbDecimal d = ARB_DECIMAL_ONE;

      g_assert_no_error (error);
      g_assert_false (arb_ingest_json_to_decimal (json_object_get_member (json_node_get_object (root), "p"),
                                                  ARB_ROUND_HALF_EVEN, &d, &error));
      g_test_message ("%s: %s", cases[i].json, error->message);
      g_assert_nonnull (strstr (error->message, cases[i].why));
    }
  {
    g_autoptr(GError) error = NULL;
    ArbDecimal d;
    g_assert_false (arb_ingest_json_to_decimal (NULL, ARB_ROUND_HALF_EVEN, &d, &error));
    g_assert_nonnull (strstr (error->message, "missing"));
  }
}

/* strings read with ARB_ROUND_EXACT are taken as written (a format that
 * promises exact strings); a refusal says why */
static void
test_decimal_from_json_exact (void)
{
  static const struct { const char *json; ArbRounding rounding; const char *value; const char *why; } cases[] = {
    { "\"0.12345678\"", ARB_ROUND_EXACT, "0.12345678", NULL },
    { "\"6.18E-06\"", ARB_ROUND_EXACT, "0.00000618", NULL },
    { "0.123456785", ARB_ROUND_HALF_EVEN, "0.12345678", NULL },
    { "\"0.123456789\"", ARB_ROUND_EXACT, NULL, "\"0.123456789\" has more than 8 decimal places" },
    { "\"100000000000\"", ARB_ROUND_EXACT, NULL, "\"100000000000\" is out of range" },
    { "\"100000000000\"", ARB_ROUND_HALF_EVEN, NULL, "\"100000000000\" is out of range" },
    { "\" 1\"", ARB_ROUND_EXACT, NULL, "is not a decimal number" },
    { "\"NaN\"", ARB_ROUND_EXACT, NULL, "\"NaN\" is not a decimal number" },
    { "92233720369", ARB_ROUND_EXACT, NULL, "92233720369 is out of range" },
    { "1e400", ARB_ROUND_HALF_EVEN, NULL, "inf is out of range" },
    { "92233720368.6", ARB_ROUND_HALF_EVEN, NULL, "92233720368.6 cannot be read as a decimal" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"p\":%s}", cases[i].json);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = arb_ingest_json_parse (text, strlen (text), &error);
      JsonNode *p;
      ArbDecimal d = ARB_DECIMAL_ZERO;

      g_assert_no_error (error);
      g_test_message ("%s", cases[i].json);
      p = json_object_get_member (json_node_get_object (root), "p");
      if (cases[i].value != NULL)
        {
          g_assert_true (arb_ingest_json_to_decimal (p, cases[i].rounding, &d, &error));
          g_assert_no_error (error);
          assert_dec (d, cases[i].value);
        }
      else
        {
          g_assert_false (arb_ingest_json_to_decimal (p, cases[i].rounding, &d, &error));
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
          g_test_message ("  %s", error->message);
          g_assert_nonnull (strstr (error->message, cases[i].why));
        }
    }
}

static void
test_double_to_text (void)
{
  static const struct { double v; const char *text; } cases[] = {
    { 0.0, "0" }, { -0.0, "0" }, { 1.0, "1" }, { 0.1, "0.1" }, { 91234.56, "91234.56" }, { 1e-3, "0.001" },
    { 150.0, "150" }, { 1e20, "100000000000000000000" }, { -2.5, "-2.5" }, { 6.18e-06, "0.00000618" },
    { 0.30000000000000004, "0.30000000000000004" }, { 123.456, "123.456" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char buf[400];
      arb_ingest_double_to_text (cases[i].v, buf, sizeof buf);
      g_assert_cmpstr (buf, ==, cases[i].text);
    }
}

typedef struct {
  const char *body;
  gboolean    has_code;
  gint64      code;
  const char *message;
  gboolean    json;
} ErrorCase;

static void
test_error_bodies (void)
{
  static const ErrorCase cases[] = {
    /* CoinGecko 429, CoinMarketCap everything */
    { "{\"status\":{\"error_code\":429,\"error_message\":\"You've exceeded the Rate Limit.\"}}", TRUE, 429,
      "You've exceeded the Rate Limit.", TRUE },
    { "{\"status\":{\"timestamp\":\"x\",\"error_code\":1008,\"error_message\":\"Rate limits reset every minute.\","
      "\"elapsed\":0,\"credit_count\":0}}", TRUE, 1008, "Rate limits reset every minute.", TRUE },
    /* CoinMarketCap v3: the code as a string */
    { "{\"status\":{\"error_code\":\"1002\",\"error_message\":\"API key missing.\"}}", TRUE, 1002,
      "API key missing.", TRUE },
    /* CoinGecko 10010: the code beside status */
    { "{\"timestamp\":\"t\",\"error_code\":10010,\"status\":{\"error_message\":\"change your root URL\"}}", TRUE,
      10010, "change your root URL", TRUE },
    /* flat */
    { "{\"error\":\"Missing parameter vs_currencies\"}", FALSE, 0, "Missing parameter vs_currencies", TRUE },
    /* Polymarket Gamma */
    { "{\"type\":\"not found error\",\"error\":\"id not found\"}", FALSE, 0, "not found error: id not found", TRUE },
    { "{\"type\":\"not found error\"}", FALSE, 0, "not found error", TRUE },
    /* generic */
    { "{\"error\":{\"code\":42,\"message\":\"nope\"}}", TRUE, 42, "nope", TRUE },
    { "{\"message\":\"Internal error\"}", FALSE, 0, "Internal error", TRUE },
    { "{\"status\":{\"error_code\":500,\"error_message\":null}}", TRUE, 500, NULL, TRUE },
    { "[]", FALSE, 0, NULL, TRUE },
    /* not JSON */
    { "error code: 1020", FALSE, 0, "error code: 1020", FALSE },
    { "\n  Bad Gateway\r\nsecond line", FALSE, 0, "Bad Gateway", FALSE },
    { "<html><head><title>502 Bad\n Gateway</title></head><body>…</body></html>", FALSE, 0, "502 Bad Gateway",
      FALSE },
    { "<html><body>no title</body></html>", FALSE, 0, "an HTML page", FALSE },
    { "{\"bitcoin\":{\"usd\":91234.56", FALSE, 0, "{\"bitcoin\":{\"usd\":91234.56", FALSE },
    { "", FALSE, 0, NULL, FALSE },
    { "ctl\x01" "chars\x7f", FALSE, 0, "ctlchars", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ArbIngestErrorBody e;
      g_autofree char *shown = g_strescape (cases[i].body, NULL);

      g_test_message ("%s", shown);
      arb_ingest_error_body_decode (cases[i].body, strlen (cases[i].body), &e);
      g_assert_cmpint (e.has_code, ==, cases[i].has_code);
      if (cases[i].has_code)
        g_assert_cmpint (e.code, ==, cases[i].code);
      g_assert_cmpstr (e.message, ==, cases[i].message);
      g_assert_cmpint (e.json, ==, cases[i].json);
      arb_ingest_error_body_clear (&e);
    }

  {
    /* a long message is cut, with an ellipsis */
    g_autofree char *long_message = g_strnfill (1000, 'x');
    g_autofree char *body = g_strdup_printf ("{\"error\":\"%s\"}", long_message);
    ArbIngestErrorBody e;

    arb_ingest_error_body_decode (body, strlen (body), &e);
    g_assert_cmpuint (g_utf8_strlen (e.message, -1), ==, ARB_INGEST_MAX_MESSAGE + 1);
    g_assert_true (g_str_has_suffix (e.message, "…"));
    arb_ingest_error_body_clear (&e);
  }
}

static void
test_retry_after (void)
{
  /* Sat, 21 Nov 2026 06:00:00 GMT */
  gint64 now = G_GINT64_CONSTANT (1795240800) * G_USEC_PER_SEC;
  gint64 ms = -1;

  g_assert_true (arb_ingest_retry_after_ms ("60", now, &ms));
  g_assert_cmpint (ms, ==, 60000);
  g_assert_true (arb_ingest_retry_after_ms (" 119 ", now, &ms));
  g_assert_cmpint (ms, ==, 119000);
  g_assert_true (arb_ingest_retry_after_ms ("0", now, &ms));
  g_assert_cmpint (ms, ==, 0);
  g_assert_true (arb_ingest_retry_after_ms ("999999999999999999999", now, &ms));
  g_assert_cmpint (ms, ==, 24 * 3600 * 1000);
  g_assert_true (arb_ingest_retry_after_ms ("Sat, 21 Nov 2026 06:02:00 GMT", now, &ms));
  g_assert_cmpint (ms, ==, 120000);
  g_assert_true (arb_ingest_retry_after_ms ("Sat, 21 Nov 2026 05:00:00 GMT", now, &ms));
  g_assert_cmpint (ms, ==, 0);
  g_assert_false (arb_ingest_retry_after_ms (NULL, now, &ms));
  g_assert_false (arb_ingest_retry_after_ms ("", now, &ms));
  g_assert_false (arb_ingest_retry_after_ms ("soon", now, &ms));
  g_assert_false (arb_ingest_retry_after_ms ("-5", now, &ms));
  g_assert_false (arb_ingest_retry_after_ms ("1.5", now, &ms));
}

static void
test_markets (void)
{
  const char *good[] = { "bitcoin:crypto:BTC-USD", " ethereum : crypto:ETH-USD", "", "BTC/1:crypto:BTC2-USD", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) markets = arb_ingest_markets_parse (good, &error);
  ArbIngestMarket *m;

  g_assert_no_error (error);
  g_assert_cmpuint (markets->len, ==, 3);
  m = g_ptr_array_index (markets, 0);
  g_assert_cmpstr (m->upstream, ==, "bitcoin");
  g_assert_cmpstr (m->market, ==, "crypto:BTC-USD");
  /* white space around either part is dropped; the upstream id is what precedes the first colon */
  m = g_ptr_array_index (markets, 1);
  g_assert_cmpstr (m->upstream, ==, "ethereum");
  g_assert_cmpstr (m->market, ==, "crypto:ETH-USD");
  m = g_ptr_array_index (markets, 2);
  g_assert_cmpstr (m->upstream, ==, "BTC/1");

  {
    static const struct { const char *entry; const char *why; } bad[] = {
      { "bitcoin", "is not UPSTREAM_ID:MARKET" },
      { ":crypto:BTC-USD", "is not UPSTREAM_ID:MARKET" },
      { "bitcoin:", "is not UPSTREAM_ID:MARKET" },
      { "bitcoin:BTC-USD", "is not a market id" },
      { "bitcoin:Crypto:BTC-USD", "is not a market id" },
      { "bitcoin:crypto:", "is not a market id" },
      { "bitcoin:crypto:BTC USD", "is not a market id" },
    };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        const char *entries[] = { bad[i].entry, NULL };
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) none = arb_ingest_markets_parse (entries, &e);
        g_assert_null (none);
        g_assert_error (e, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
        g_test_message ("%s: %s", bad[i].entry, e->message);
        g_assert_nonnull (strstr (e->message, bad[i].why));
      }
  }
  {
    const char *twice_id[] = { "bitcoin:crypto:BTC-USD", "bitcoin:crypto:XBT-USD", NULL };
    const char *twice_market[] = { "bitcoin:crypto:BTC-USD", "wrapped-bitcoin:crypto:BTC-USD", NULL };
    const char *none[] = { "", " ", NULL };
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
    g_assert_null (arb_ingest_markets_parse (twice_id, &e1));
    g_assert_nonnull (strstr (e1->message, "\"bitcoin\" is mapped twice"));
    g_assert_null (arb_ingest_markets_parse (twice_market, &e2));
    g_assert_nonnull (strstr (e2->message, "crypto:BTC-USD is mapped twice"));
    g_assert_null (arb_ingest_markets_parse (none, &e3));
    g_assert_nonnull (strstr (e3->message, "names no market"));
  }
}

static void
test_market_id (void)
{
  g_autofree char *longest = g_strnfill (ARB_INGEST_MAX_MARKET_ID, 'x');
  g_autofree char *too_long = NULL;
  static const char *const good[] = {
    "crypto:BTC-USD", "polymarket:46096662783338673092330110558598013304958671615798781518556281431378005814059",
    "kalshi:KXBTCD-26NOV2117-T91999.99:yes", "a_b-9:x",
  };
  static const struct { const char *id; const char *why; } bad[] = {
    { "", "is empty" },
    { "BTC-USD", "must start with a lower-case namespace" },
    { "Crypto:BTC-USD", "must start with a lower-case namespace" },
    { "crypto", "must be namespaced" },
    { "cr.ypto:BTC", "must be namespaced" },
    { "crypto:", "has nothing after the namespace" },
    { "crypto:BTC USD", "printable ASCII without spaces" },
    { "crypto:BTC\x7f", "printable ASCII without spaces" },
    { "crypto:\xc3\xa9", "printable ASCII without spaces" },
  };
  const char *why = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_assert_true (arb_ingest_market_id_check (good[i], &why));
      g_assert_true (arb_ingest_market_id_check (good[i], NULL));
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      why = NULL;
      g_assert_false (arb_ingest_market_id_check (bad[i].id, &why));
      g_assert_false (arb_ingest_market_id_check (bad[i].id, NULL));
      g_test_message ("\"%s\" %s", bad[i].id, why);
      g_assert_nonnull (why);
      g_assert_nonnull (strstr (why, bad[i].why));
    }

  /* at most ARB_INGEST_MAX_MARKET_ID characters */
  memcpy (longest, "crypto:", strlen ("crypto:"));
  too_long = g_strconcat (longest, "x", NULL);
  g_assert_true (arb_ingest_market_id_check (longest, &why));
  g_assert_false (arb_ingest_market_id_check (too_long, &why));
  g_assert_cmpstr (why, ==, "is longer than 256 characters");
}

static void
test_base_url (void)
{
  static const struct { const char *in; const char *out; } good[] = {
    { "https://api.coingecko.com/api/v3", "https://api.coingecko.com/api/v3" },
    { "http://127.0.0.1:8089/api/v3/", "http://127.0.0.1:8089/api/v3" },
    { "http://[::1]:9//", "http://[::1]:9" },
  };
  static const char *const bad[] = { "", "api.coingecko.com", "ftp://x/", "http:///path", "http://x/?a=b",
                                     "http://x/#f" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *url = arb_ingest_base_url_check (good[i].in, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (url, ==, good[i].out);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *url = arb_ingest_base_url_check (bad[i], &error);
      g_assert_null (url);
      g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
      g_assert_true (g_str_has_prefix (error->message, "base_url: "));
    }
}

static void
test_time (void)
{
  gint64 us = 0;

  g_assert_true (arb_ingest_parse_time_us ("2026-11-20T15:03:00.000Z", &us));
  g_assert_cmpint (us, ==, G_GINT64_CONSTANT (1795186980) * G_USEC_PER_SEC);
  g_assert_true (arb_ingest_parse_time_us ("2026-11-20T16:03:00.250+01:00", &us));
  g_assert_cmpint (us, ==, G_GINT64_CONSTANT (1795186980250000));
  g_assert_false (arb_ingest_parse_time_us ("2026-11-20T15:03:00", &us));
  g_assert_false (arb_ingest_parse_time_us ("yesterday", &us));
  g_assert_false (arb_ingest_parse_time_us (NULL, &us));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/ingest-common/json/strict", test_json_strict);
  g_test_add_func ("/ingest-common/json/depth", test_json_depth);
  g_test_add_func ("/ingest-common/json/decimal", test_decimal_from_json);
  g_test_add_func ("/ingest-common/json/decimal-refused", test_decimal_from_json_refused);
  g_test_add_func ("/ingest-common/json/decimal-exact", test_decimal_from_json_exact);
  g_test_add_func ("/ingest-common/json/double-to-text", test_double_to_text);
  g_test_add_func ("/ingest-common/error-bodies", test_error_bodies);
  g_test_add_func ("/ingest-common/retry-after", test_retry_after);
  g_test_add_func ("/ingest-common/markets", test_markets);
  g_test_add_func ("/ingest-common/market-id", test_market_id);
  g_test_add_func ("/ingest-common/base-url", test_base_url);
  g_test_add_func ("/ingest-common/time", test_time);

  return g_test_run ();
}
