/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-coinmarketcap: polls CoinMarketCap's v2 quotes endpoint and
 * publishes one quote (a last price) per market, stamped with the quote's
 * `last_updated`.
 *
 *   GET {base_url}/v2/cryptocurrency/quotes/latest?id=1,1027&convert=USD&skip_invalid=true
 *   X-CMC_PRO_API_KEY: …
 *
 * Lookups are by id (recommended: ids never change) or by symbol. By id,
 * `data` is keyed by the id as a string, one object each. By symbol, v2 gives
 * an array per symbol with every coin that shares it (inactive ones too), so
 * a symbol entry may pin the coin it means with `SYMBOL/ID`; without a pin it
 * must name exactly one active coin, or that market is an error: a price of
 * the wrong coin is worse than none. v1's one-object-per-symbol shape is read
 * too.
 *
 * CoinMarketCap says what went wrong in `status.error_code`, on errors and
 * sometimes with HTTP 200: 1001/1002 (key invalid or missing), 1003–1007
 * (payment, plan, disabled key), 1008/1011 (per-minute or per-IP rate limit),
 * 1009/1010 (daily or monthly allowance spent). The request loop (interval,
 * timeout, Retry-After, backoff, the feed's hold-off) is ArbIngestPoll in
 * plugins/common.
 */

#include <string.h>

#include "arb-ingest-common.h"

#define CMC_PRO_URL     "https://pro-api.coinmarketcap.com"
#define CMC_SANDBOX_URL "https://sandbox-api.coinmarketcap.com"
/* the public key of CoinMarketCap's sandbox, published in its documentation
 * and examples; it reaches only made-up data */
#define CMC_SANDBOX_KEY "b54bcf4d-1bca-4e8e-9a24-22ff2c3d462c"
#define CMC_PATH        "/v2/cryptocurrency/quotes/latest"

/* without a Retry-After: the per-minute limits reset within a minute; the
 * daily and monthly allowances are checked again hourly */
#define CMC_MINUTE_LIMIT_MS (60 * 1000)
#define CMC_ALLOWANCE_MS    (60 * 60 * 1000)

typedef struct {
  char   *lookup;  /* owned: what is asked for: "1", or "BTC" */
  gint64  id;      /* the coin: by id, or pinned by SYMBOL/ID; 0 when not pinned */
  char   *market;  /* owned */
} CmcMarket;

typedef struct {
  ArbInstance   *inst;         /* borrowed; outlives self */
  GPtrArray     *markets;      /* owned: CmcMarket */
  gboolean       by_symbol;
  char          *convert;      /* owned: "USD" */
  char          *base_url;     /* owned: without a trailing slash */
  gboolean       sandbox;
  gint64         interval_ms;
  gint64         timeout_ms;
  char          *api_key;      /* owned (arb_secret_free) */
  gboolean       reload_key;
  ArbIngestPoll *poll;         /* owned */
  GHashTable    *refused;      /* owned: markets whose refusal by the host was logged */
} CmcPlugin;

static void
cmc_market_free (CmcMarket *m)
{
  g_free (m->lookup);
  g_free (m->market);
  g_free (m);
}

/* ------------------------------------------------------------------------ */
/* Config                                                                   */

static gboolean
all_digits (const char *s)
{
  return *s != '\0' && strspn (s, "0123456789") == strlen (s) && strlen (s) <= 18;
}

/* `markets` entries → CmcMarket; every entry by id ("1") or every entry by
 * symbol ("BTC", "BTC/1"), since one request can ask only one way */
static GPtrArray *
cmc_markets_parse (const char *const *entries, gboolean *by_symbol, GError **error)
{
  g_autoptr(GPtrArray) parsed = arb_ingest_markets_parse (entries, error);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) cmc_market_free);
  guint n_ids = 0;

  if (parsed == NULL)
    return NULL;
  for (guint i = 0; i < parsed->len; i++)
    {
      const ArbIngestMarket *p = g_ptr_array_index (parsed, i);
      const char *slash = strchr (p->upstream, '/');
      CmcMarket *m = g_new0 (CmcMarket, 1);

      g_ptr_array_add (out, m);
      m->market = g_strdup (p->market);
      if (all_digits (p->upstream))
        {
          m->lookup = g_strdup (p->upstream);
          m->id = g_ascii_strtoll (p->upstream, NULL, 10);
          n_ids++;
          continue;
        }
      m->lookup = slash != NULL ? g_strndup (p->upstream, (gsize) (slash - p->upstream)) : g_strdup (p->upstream);
      if (*m->lookup == '\0' || strpbrk (m->lookup, ",/ ") != NULL
          || (slash != NULL && !all_digits (slash + 1)))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "markets: \"%s\" is neither a CoinMarketCap id (1), a symbol (BTC) nor a symbol with the id "
                       "it means (BTC/1)", p->upstream);
          return NULL;
        }
      if (slash != NULL)
        m->id = g_ascii_strtoll (slash + 1, NULL, 10);
    }
  if (n_ids != 0 && n_ids != out->len)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "markets: mixes ids and symbols; CoinMarketCap answers one kind per request: use ids "
                           "(1:crypto:BTC-USD, recommended) or symbols (BTC/1:crypto:BTC-USD) throughout");
      return NULL;
    }
  *by_symbol = n_ids == 0;
  return g_steal_pointer (&out);
}

/* ------------------------------------------------------------------------ */
/* Decoding an answer (pure)                                                */

typedef struct {
  GPtrArray *quotes;   /* ArbQuote: one per market with a usable price */
  GPtrArray *missing;  /* char *: lookups absent from the answer */
  GPtrArray *problems; /* char *: "BTC: …", one per other unusable market */
} CmcDecoded;

static void
cmc_decoded_init (CmcDecoded *d)
{
  d->quotes = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_quote_unref);
  d->missing = g_ptr_array_new_with_free_func (g_free);
  d->problems = g_ptr_array_new_with_free_func (g_free);
}

static void
cmc_decoded_clear (CmcDecoded *d)
{
  g_clear_pointer (&d->quotes, g_ptr_array_unref);
  g_clear_pointer (&d->missing, g_ptr_array_unref);
  g_clear_pointer (&d->problems, g_ptr_array_unref);
}

/* The envelope's status: FALSE when the answer is not a CoinMarketCap
 * envelope at all. *code is 0 when all is well. */
static gboolean
cmc_decode_status (JsonObject *root, gint64 *code, const char **message)
{
  JsonObject *status = arb_ingest_json_get_object (root, "status");

  *code = 0;
  *message = NULL;
  if (status == NULL)
    return FALSE;
  /* an integer, or "0" as a string (v3) */
  if (!arb_ingest_json_get_int (status, "error_code", code))
    *code = 0;
  *message = arb_ingest_json_get_string (status, "error_message");
  return TRUE;
}

static gboolean
cmc_coin_is_active (JsonObject *coin)
{
  gint64 active = 1;

  /* absent (v1) counts as active */
  if (json_object_has_member (coin, "is_active") && !arb_ingest_json_get_int (coin, "is_active", &active))
    return FALSE;
  return active == 1;
}

/* the coin @m means, from what the answer holds for its lookup: an object,
 * or (by symbol, v2) an array of candidates */
static JsonObject *
cmc_pick_coin (const CmcMarket *m, JsonNode *node, char **why)
{
  JsonArray *candidates;
  JsonObject *chosen = NULL;
  g_autoptr(GString) active_ids = g_string_new (NULL);
  guint n_active = 0;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *coin = json_node_get_object (node);
      gint64 id = 0;

      if (m->id != 0 && (!arb_ingest_json_get_int (coin, "id", &id) || id != m->id))
        {
          *why = g_strdup_printf ("the answer is for id %" G_GINT64_FORMAT ", not %" G_GINT64_FORMAT, id, m->id);
          return NULL;
        }
      return coin;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      *why = g_strdup_printf ("%s, not a coin", arb_ingest_json_kind (node));
      return NULL;
    }
  candidates = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (candidates); i++)
    {
      JsonNode *c = json_array_get_element (candidates, i);
      JsonObject *coin;
      gint64 id = 0;

      if (!JSON_NODE_HOLDS_OBJECT (c))
        continue;
      coin = json_node_get_object (c);
      if (!arb_ingest_json_get_int (coin, "id", &id))
        continue;
      if (m->id != 0)
        {
          if (id == m->id)
            return coin;
          continue;
        }
      if (!cmc_coin_is_active (coin))
        continue;
      n_active++;
      chosen = coin;
      g_string_append_printf (active_ids, "%s%" G_GINT64_FORMAT, active_ids->len > 0 ? ", " : "", id);
    }
  if (m->id != 0)
    {
      *why = g_strdup_printf ("no coin with id %" G_GINT64_FORMAT " among the %u with this symbol", m->id,
                              json_array_get_length (candidates));
      return NULL;
    }
  if (n_active == 1)
    return chosen;
  if (n_active == 0)
    *why = g_strdup_printf ("none of the %u coins with this symbol is active", json_array_get_length (candidates));
  else
    *why = g_strdup_printf ("the symbol is ambiguous (active ids %s): pin one as %s/ID", active_ids->str, m->lookup);
  return NULL;
}

static gboolean
cmc_coin_price (JsonObject *coin, const char *convert, ArbDecimal *out, gint64 *time_us, char **why)
{
  JsonObject *quote = arb_ingest_json_get_object (arb_ingest_json_get_object (coin, "quote"), convert);
  g_autoptr(GError) error = NULL;

  if (quote == NULL)
    {
      *why = g_strdup_printf ("no quote in %s", convert);
      return FALSE;
    }
  if (!arb_ingest_json_to_decimal (json_object_get_member (quote, "price"), ARB_ROUND_HALF_EVEN, out, &error))
    {
      *why = g_strdup_printf ("the %s price is %s", convert, error->message);
      return FALSE;
    }
  if (out->raw <= 0)
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      *why = g_strdup_printf ("the %s price is %s, not a positive price at eight decimal places", convert,
                              arb_decimal_format_short (*out, buf));
      return FALSE;
    }
  *time_us = 0;
  if (!arb_ingest_parse_time_us (arb_ingest_json_get_string (quote, "last_updated"), time_us)
      && !arb_ingest_parse_time_us (arb_ingest_json_get_string (coin, "last_updated"), time_us))
    *time_us = 0;
  return TRUE;
}

/* Decodes a quotes/latest answer for @markets. FALSE with an error when the
 * answer as a whole is unusable: not JSON, not an envelope, no data. An
 * envelope whose status carries an error code gives TRUE with *status_code
 * set and nothing decoded: the caller turns it into a verdict. */
static gboolean
cmc_decode_quotes (GPtrArray *markets, const char *convert, const char *body, gsize length, CmcDecoded *out,
                   gint64 *status_code, GError **error)
{
  g_autoptr(JsonNode) root = arb_ingest_json_parse (body, length, error);
  JsonObject *object;
  JsonObject *data;
  const char *message;

  *status_code = 0;
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the answer is %s, not a {\"status\", \"data\"} object",
                   arb_ingest_json_kind (root));
      return FALSE;
    }
  object = json_node_get_object (root);
  if (!cmc_decode_status (object, status_code, &message))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the answer has no \"status\" object");
      return FALSE;
    }
  if (*status_code != 0)
    return TRUE;
  data = arb_ingest_json_get_object (object, "data");
  if (data == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the answer's \"data\" is %s, not an object",
                   arb_ingest_json_kind (json_object_get_member (object, "data")));
      return FALSE;
    }

  for (guint i = 0; i < markets->len; i++)
    {
      const CmcMarket *m = g_ptr_array_index (markets, i);
      JsonNode *node = json_object_get_member (data, m->lookup);
      g_autofree char *why = NULL;
      g_autoptr(ArbQuote) quote = NULL;
      JsonObject *coin;
      ArbDecimal price;
      gint64 time_us = 0;

      if (node == NULL)
        {
          g_ptr_array_add (out->missing, g_strdup (m->lookup));
          continue;
        }
      coin = cmc_pick_coin (m, node, &why);
      if (coin == NULL || !cmc_coin_price (coin, convert, &price, &time_us, &why))
        {
          g_ptr_array_add (out->problems, g_strdup_printf ("%s: %s", m->lookup, why));
          continue;
        }
      quote = arb_quote_new (m->market);
      arb_quote_set_last (quote, price);
      if (time_us > 0)
        arb_quote_set_source_time (quote, time_us);
      g_ptr_array_add (out->quotes, g_steal_pointer (&quote));
    }
  return TRUE;
}

/* what a CoinMarketCap error means for the request loop */
static ArbIngestOutcome
cmc_outcome (gint64 code, guint http_status, gint64 *retry_after_ms, const char **hint)
{
  *hint = NULL;
  *retry_after_ms = 0;
  switch (code)
    {
    case 1001:
    case 1002:
      *hint = "check api_key_env or api_key_file";
      return ARB_INGEST_AUTH;
    case 1003:
    case 1004:
      *hint = "the key's subscription needs attention";
      return ARB_INGEST_AUTH;
    case 1005:
    case 1006:
    case 1007:
      *hint = code == 1006 ? "the key's plan does not include this endpoint" : NULL;
      return ARB_INGEST_AUTH;
    case 1008:
    case 1011:
      *retry_after_ms = CMC_MINUTE_LIMIT_MS;
      return ARB_INGEST_RATE_LIMITED;
    case 1009:
    case 1010:
      *hint = code == 1009 ? "the daily allowance is spent" : "the monthly credits are spent";
      *retry_after_ms = CMC_ALLOWANCE_MS;
      return ARB_INGEST_RATE_LIMITED;
    default:
      break;
    }
  if (http_status == 429 /* Too Many Requests */)
    return ARB_INGEST_RATE_LIMITED;
  if (http_status == SOUP_STATUS_UNAUTHORIZED || http_status == SOUP_STATUS_PAYMENT_REQUIRED
      || http_status == SOUP_STATUS_FORBIDDEN)
    return ARB_INGEST_AUTH;
  return ARB_INGEST_FAILED;
}

/* "CoinMarketCap HTTP 401 Unauthorized: error 1001: This API Key is invalid. (hint)" */
static char *
cmc_describe_error (guint http_status, const char *reason_phrase, const char *body, gsize length,
                    ArbIngestOutcome *outcome, gint64 *retry_after_ms)
{
  ArbIngestErrorBody e;
  g_autoptr(GString) s = g_string_new ("CoinMarketCap");
  const char *hint = NULL;

  arb_ingest_error_body_decode (body, length, &e);
  *outcome = cmc_outcome (e.has_code ? e.code : 0, http_status, retry_after_ms, &hint);
  g_string_append_printf (s, " HTTP %u", http_status);
  if (reason_phrase != NULL && *reason_phrase != '\0')
    g_string_append_printf (s, " %s", reason_phrase);
  if (e.has_code && e.code != 0)
    g_string_append_printf (s, ": error %" G_GINT64_FORMAT, e.code);
  if (e.message != NULL)
    g_string_append_printf (s, ": %s", e.message);
  if (hint != NULL)
    g_string_append_printf (s, " (%s)", hint);
  arb_ingest_error_body_clear (&e);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* ------------------------------------------------------------------------ */
/* Requests and answers                                                     */

static gboolean
cmc_read_key (CmcPlugin *self, GError **error)
{
  g_autoptr(GError) local = NULL;
  char *key = arb_instance_get_secret (self->inst, "api_key", &local);

  if (key == NULL && local != NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "api_key: %s", local->message);
      return FALSE;
    }
  if (key == NULL && self->sandbox)
    key = g_strdup (CMC_SANDBOX_KEY);
  if (key == NULL)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "api_key: CoinMarketCap answers only with a key: set api_key_env=VARIABLE or "
                           "api_key_file=PATH (a free Basic key will do)");
      return FALSE;
    }
  g_clear_pointer (&self->api_key, arb_secret_free);
  self->api_key = key;
  return TRUE;
}

static char *
cmc_request_uri (CmcPlugin *self)
{
  g_autoptr(GString) uri = g_string_new (self->base_url);

  g_string_append (uri, CMC_PATH);
  g_string_append (uri, self->by_symbol ? "?symbol=" : "?id=");
  for (guint i = 0; i < self->markets->len; i++)
    {
      const CmcMarket *m = g_ptr_array_index (self->markets, i);
      if (i > 0)
        g_string_append (uri, ",");
      g_string_append_uri_escaped (uri, m->lookup, NULL, TRUE);
    }
  g_string_append (uri, "&convert=");
  g_string_append_uri_escaped (uri, self->convert, NULL, TRUE);
  /* an unknown id or symbol is dropped instead of failing the whole answer */
  g_string_append (uri, "&skip_invalid=true");
  return g_string_free (g_steal_pointer (&uri), FALSE);
}

static SoupMessage *
cmc_build_request (gpointer data, GError **error)
{
  CmcPlugin *self = data;
  g_autofree char *uri = cmc_request_uri (self);
  SoupMessage *msg;

  if (self->reload_key)
    {
      if (!cmc_read_key (self, error))
        return NULL;
      self->reload_key = FALSE;
    }
  msg = soup_message_new (SOUP_METHOD_GET, uri);
  if (msg == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "base_url: %s is not a usable URL", uri);
      return NULL;
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "X-CMC_PRO_API_KEY", self->api_key);
  return msg;
}

static void
cmc_publish (CmcPlugin *self, GPtrArray *quotes)
{
  for (guint i = 0; i < quotes->len; i++)
    {
      ArbQuote *quote = g_ptr_array_index (quotes, i);
      g_autoptr(GError) error = NULL;

      if (arb_instance_publish_quote (self->inst, quote, &error))
        {
          arb_instance_counter_add (self->inst, "quotes_published_total", 1);
          continue;
        }
      arb_instance_counter_add (self->inst, "publish_errors_total", 1);
      if (g_hash_table_add (self->refused, g_strdup (arb_quote_get_market (quote))))
        arb_warning (self->inst, "the host refused the quote for %s: %s (later refusals are only counted, in "
                     "publish_errors_total)", arb_quote_get_market (quote), error->message);
    }
}

static void
cmc_handle_answer (gpointer data, SoupMessage *msg, GBytes *body, ArbIngestVerdict *verdict)
{
  CmcPlugin *self = data;
  guint status = soup_message_get_status (msg);
  gsize length = 0;
  const char *text = g_bytes_get_data (body, &length);
  g_autoptr(GError) error = NULL;
  CmcDecoded decoded;
  gint64 code = 0;

  cmc_decoded_init (&decoded);
  if (status == SOUP_STATUS_OK && !cmc_decode_quotes (self->markets, self->convert, text, length, &decoded, &code,
                                                      &error))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      arb_ingest_verdict_set (verdict, ARB_INGEST_FAILED, "CoinMarketCap: %s", error->message);
      cmc_decoded_clear (&decoded);
      return;
    }
  if (status != SOUP_STATUS_OK || code != 0)
    {
      /* status.error_code rules, with HTTP 200 too */
      ArbIngestOutcome outcome;
      gint64 fallback_ms = 0;
      const char *phrase = arb_ingest_status_phrase (status, soup_message_get_reason_phrase (msg));
      g_autofree char *why = cmc_describe_error (status, phrase, text, length, &outcome, &fallback_ms);

      arb_ingest_verdict_set (verdict, outcome, "%s", why);
      if (outcome == ARB_INGEST_RATE_LIMITED)
        {
          const char *retry = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After");
          if (!arb_ingest_retry_after_ms (retry, arb_now_us (), &verdict->retry_after_ms))
            verdict->retry_after_ms = fallback_ms;
        }
      if (outcome == ARB_INGEST_AUTH)
        self->reload_key = TRUE;
      cmc_decoded_clear (&decoded);
      return;
    }

  cmc_publish (self, decoded.quotes);
  if (decoded.missing->len > 0 || decoded.problems->len > 0)
    {
      g_autoptr(GString) why = g_string_new ("CoinMarketCap has no price for ");
      guint n_bad = decoded.missing->len + decoded.problems->len;

      arb_instance_counter_add (self->inst, "market_errors_total", n_bad);
      if (decoded.missing->len > 0)
        {
          g_ptr_array_add (decoded.missing, NULL);
          g_autofree char *ids = g_strjoinv (", ", (char **) decoded.missing->pdata);
          g_string_append_printf (why, "%s (not in the answer: unknown %s)", ids, self->by_symbol ? "symbols" : "ids");
        }
      if (decoded.problems->len > 0)
        {
          g_ptr_array_add (decoded.problems, NULL);
          g_autofree char *list = g_strjoinv ("; ", (char **) decoded.problems->pdata);
          g_string_append_printf (why, "%s%s", decoded.missing->len > 0 ? "; " : "", list);
        }
      g_string_append_printf (why, "; %u of %u markets quoted", decoded.quotes->len, self->markets->len);
      arb_ingest_verdict_set (verdict, ARB_INGEST_PARTIAL, "%s", why->str);
    }
  cmc_decoded_clear (&decoded);
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                               */

static const ArbConfigKey cmc_config[] = {
  { "markets", ARB_CFG_STRV, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "CoinMarketCap ids (or symbols, SYMBOL/ID to pin one) to our markets: 1:crypto:BTC-USD,1027:crypto:ETH-USD" },
  { "convert", ARB_CFG_STRING, ARB_CFG_NONE, "USD", 0, 0, NULL, "the currency prices are asked in, upper case" },
  { "interval", ARB_CFG_DURATION, ARB_CFG_NONE, "5m", 100, 86400000, NULL,
    "time between two requests; each costs a credit (a free key has 10,000 a month: 5m spends 8,640)" },
  { "timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "a request without a whole answer by then is abandoned and counts as a failure" },
  { "plan", ARB_CFG_ENUM, ARB_CFG_NONE, "pro", 0, 0, "pro,sandbox",
    "pro: pro-api.coinmarketcap.com, a key is required; sandbox: sandbox-api.coinmarketcap.com, made-up data, "
    "its public key by default" },
  { "base_url", ARB_CFG_STRING, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "root URL instead of the plan's (a proxy, a test server), for example http://127.0.0.1:8089" },
  { "api_key", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "the API key, sent as X-CMC_PRO_API_KEY; without one (plan=pro) the instance does not start" },
  { NULL }
};

static gboolean
cmc_on_timer (gpointer data)
{
  return arb_ingest_poll_on_timer (((CmcPlugin *) data)->poll);
}

static const ArbIngestPollFuncs cmc_poll_funcs = {
  .build_request = cmc_build_request,
  .handle_answer = cmc_handle_answer,
};

static void
cmc_stop (gpointer data)
{
  CmcPlugin *self = data;

  if (self->poll != NULL)
    arb_ingest_poll_stop (self->poll);
  g_clear_pointer (&self->api_key, arb_secret_free);
}

static void
cmc_destroy (gpointer data)
{
  CmcPlugin *self = data;

  cmc_stop (self);
  g_clear_pointer (&self->poll, arb_ingest_poll_free);
  g_clear_pointer (&self->markets, g_ptr_array_unref);
  g_clear_pointer (&self->refused, g_hash_table_unref);
  g_free (self->convert);
  g_free (self->base_url);
  g_free (self);
}

static gpointer
cmc_create (ArbInstance *inst, GError **error)
{
  g_autofree CmcPlugin *self = g_new0 (CmcPlugin, 1);
  g_autoptr(GPtrArray) markets = NULL;
  const char *base = arb_instance_get_string (inst, "base_url");
  const char *convert = arb_instance_get_string (inst, "convert");
  g_autofree char *base_url = NULL;

  markets = cmc_markets_parse (arb_instance_get_strv (inst, "markets"), &self->by_symbol, error);
  if (markets == NULL)
    return NULL;
  if (*convert == '\0' || strspn (convert, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen (convert))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "convert: \"%s\" is not an upper-case currency code such as USD", convert);
      return NULL;
    }
  self->sandbox = g_strcmp0 (arb_instance_get_string (inst, "plan"), "sandbox") == 0;
  base_url = arb_ingest_base_url_check (base != NULL ? base : self->sandbox ? CMC_SANDBOX_URL : CMC_PRO_URL, error);
  if (base_url == NULL)
    return NULL;

  self->inst = inst;
  self->markets = g_steal_pointer (&markets);
  self->convert = g_strdup (convert);
  self->base_url = g_steal_pointer (&base_url);
  self->interval_ms = arb_instance_get_duration_ms (inst, "interval");
  self->timeout_ms = arb_instance_get_duration_ms (inst, "timeout");
  self->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->poll = arb_ingest_poll_new (inst, "CoinMarketCap", &cmc_poll_funcs, self, self->interval_ms,
                                    self->timeout_ms, cmc_on_timer);
  return g_steal_pointer (&self);
}

static gboolean
cmc_start (gpointer data, GError **error)
{
  CmcPlugin *self = data;

  cmc_stop (self);
  /* no key, no start: the reason stays on the instance, in /ready */
  if (!cmc_read_key (self, error))
    return FALSE;
  self->reload_key = FALSE;
  arb_info (self->inst, "polling %s%s by %s for %u market%s every %" G_GINT64_FORMAT " ms%s", self->base_url,
            CMC_PATH, self->by_symbol ? "symbol" : "id", self->markets->len, self->markets->len == 1 ? "" : "s",
            self->interval_ms, self->sandbox ? " (sandbox)" : "");
  arb_ingest_poll_start (self->poll);
  return TRUE;
}

static const ArbIngestVTable cmc_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = cmc_create,
  .start = cmc_start,
  .stop = cmc_stop,
  .destroy = cmc_destroy,
};

static const ArbPluginDesc cmc_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-coinmarketcap",
  .version = "1.0.0",
  .summary = "Crypto prices from CoinMarketCap's v2 quotes/latest, polled (needs an API key)",
  .kind = ARB_PLUGIN_INGEST,
  .config = cmc_config,
  .vtable = &cmc_vtable,
};

ARB_PLUGIN_DEFINE (ingest_coinmarketcap, cmc_desc)
