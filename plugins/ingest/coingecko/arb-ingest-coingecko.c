/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-coingecko: polls CoinGecko's GET /simple/price for the configured
 * coins and publishes one quote (a last price) per market, stamped with the
 * coin's `last_updated_at`.
 *
 *   GET {base_url}/simple/price?ids=bitcoin,ethereum&vs_currencies=usd
 *       &include_last_updated_at=true&precision=full
 *   x-cg-demo-api-key: … (plan=demo, optional) / x-cg-pro-api-key: … (plan=pro)
 *
 * The answer is an object keyed by coin id; an unknown id is simply absent
 * (all unknown: `{}`), which is a per-market error here, never a failure of
 * the source. The request loop (interval, timeout, Retry-After, backoff, the
 * feed's hold-off) is ArbIngestPoll in plugins/common.
 */

#include <string.h>

#include "arb-ingest-common.h"

#define CG_DEMO_URL "https://api.coingecko.com/api/v3"
#define CG_PRO_URL  "https://pro-api.coingecko.com/api/v3"

typedef struct {
  ArbInstance   *inst;         /* borrowed; outlives self */
  GPtrArray     *markets;      /* owned: ArbIngestMarket, upstream = coin id */
  char          *vs;           /* owned: "usd" */
  char          *base_url;     /* owned: without a trailing slash */
  gboolean       pro;
  gint64         interval_ms;
  gint64         timeout_ms;
  char          *api_key;      /* owned (arb_secret_free), nullable */
  gboolean       reload_key;   /* the upstream refused it: read it again */
  ArbIngestPoll *poll;         /* owned */
  GHashTable    *refused;      /* owned: markets whose refusal by the host was logged */
} CgPlugin;

/* ------------------------------------------------------------------------ */
/* Decoding an answer (pure)                                                */

typedef struct {
  GPtrArray *quotes;   /* ArbQuote: one per market with a usable price */
  GPtrArray *missing;  /* char *: coin ids absent from the answer */
  GPtrArray *problems; /* char *: "solana: usd is null", one per other unusable market */
} CgDecoded;

static void
cg_decoded_init (CgDecoded *d)
{
  d->quotes = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_quote_unref);
  d->missing = g_ptr_array_new_with_free_func (g_free);
  d->problems = g_ptr_array_new_with_free_func (g_free);
}

static void
cg_decoded_clear (CgDecoded *d)
{
  g_clear_pointer (&d->quotes, g_ptr_array_unref);
  g_clear_pointer (&d->missing, g_ptr_array_unref);
  g_clear_pointer (&d->problems, g_ptr_array_unref);
}

/* a price the book can take: positive once rounded to eight places */
static gboolean
cg_price (JsonObject *coin, const char *vs, ArbDecimal *out, char **why)
{
  JsonNode *node = json_object_get_member (coin, vs);
  g_autoptr(GError) error = NULL;

  if (node == NULL)
    {
      *why = g_strdup_printf ("no %s price", vs);
      return FALSE;
    }
  if (!arb_ingest_json_to_decimal (node, ARB_ROUND_HALF_EVEN, out, &error))
    {
      *why = g_strdup_printf ("%s is %s", vs, error->message);
      return FALSE;
    }
  if (out->raw <= 0)
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      *why = g_strdup_printf ("%s is %s, not a positive price at eight decimal places", vs,
                              arb_decimal_format_short (*out, buf));
      return FALSE;
    }
  return TRUE;
}

/* Decodes a /simple/price answer for @markets. FALSE with an error when the
 * answer as a whole is unusable (not JSON, not an object, an error body);
 * otherwise each market lands in exactly one of quotes, missing, problems. */
static gboolean
cg_decode_simple_price (GPtrArray *markets, const char *vs, const char *body, gsize length, CgDecoded *out,
                        GError **error)
{
  g_autoptr(JsonNode) root = arb_ingest_json_parse (body, length, error);
  JsonObject *object;

  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the answer is %s, not an object keyed by coin id",
                   arb_ingest_json_kind (root));
      return FALSE;
    }
  object = json_node_get_object (root);

  /* an error body with status 200 would otherwise read as "every id missing" */
  if ((json_object_has_member (object, "status") && arb_ingest_json_get_object (object, "status") != NULL
       && json_object_has_member (arb_ingest_json_get_object (object, "status"), "error_message"))
      || arb_ingest_json_get_string (object, "error") != NULL)
    {
      gboolean is_coin = FALSE;
      for (guint i = 0; i < markets->len; i++)
        {
          const ArbIngestMarket *m = g_ptr_array_index (markets, i);
          is_coin |= g_str_equal (m->upstream, "status") || g_str_equal (m->upstream, "error");
        }
      if (!is_coin)
        {
          ArbIngestErrorBody e;
          arb_ingest_error_body_decode (body, length, &e);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "an error answer with status 200: %s",
                       e.message != NULL ? e.message : "no message");
          arb_ingest_error_body_clear (&e);
          return FALSE;
        }
    }

  for (guint i = 0; i < markets->len; i++)
    {
      const ArbIngestMarket *m = g_ptr_array_index (markets, i);
      JsonNode *node = json_object_get_member (object, m->upstream);
      g_autofree char *why = NULL;
      g_autoptr(ArbQuote) quote = NULL;
      JsonObject *coin;
      ArbDecimal price;
      gint64 updated = 0;

      if (node == NULL)
        {
          g_ptr_array_add (out->missing, g_strdup (m->upstream));
          continue;
        }
      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          g_ptr_array_add (out->problems, g_strdup_printf ("%s: %s, not an object", m->upstream,
                                                           arb_ingest_json_kind (node)));
          continue;
        }
      coin = json_node_get_object (node);
      if (!cg_price (coin, vs, &price, &why))
        {
          g_ptr_array_add (out->problems, g_strdup_printf ("%s: %s", m->upstream, why));
          continue;
        }
      quote = arb_quote_new (m->market);
      arb_quote_set_last (quote, price);
      /* unix seconds; anything else is ignored and the receive time stands */
      if (arb_ingest_json_get_int (coin, "last_updated_at", &updated) && updated > 0
          && updated < G_GINT64_CONSTANT (32503680000) /* year 3000 */)
        arb_quote_set_source_time (quote, updated * G_USEC_PER_SEC);
      g_ptr_array_add (out->quotes, g_steal_pointer (&quote));
    }
  return TRUE;
}

/* "HTTP 401 Unauthorized: CoinGecko error 10002: API Key Missing…" plus a
 * hint for the codes whose cure is in the config; sets *auth for the errors
 * that retrying cannot fix (key, plan, root URL, access denied) */
static char *
cg_describe_error (guint status, const char *reason_phrase, const char *body, gsize length, gboolean *auth)
{
  ArbIngestErrorBody e;
  g_autoptr(GString) s = g_string_new (NULL);
  const char *hint = NULL;

  arb_ingest_error_body_decode (body, length, &e);
  *auth = status == 401 || status == 403;
  if (e.has_code)
    switch (e.code)
      {
      case 10002:
        *auth = TRUE;
        hint = "set api_key_env or api_key_file, or check the key";
        break;
      case 10005:
        *auth = TRUE;
        hint = "the plan of this key does not include /simple/price";
        break;
      case 10010:
        *auth = TRUE;
        hint = "a Pro key: use plan=pro";
        break;
      case 10011:
        *auth = TRUE;
        hint = "a Demo key: use plan=demo";
        break;
      default:
        break;
      }
  if (status == 403 && e.message != NULL && strstr (e.message, "1020") != NULL)
    hint = "Cloudflare refused this address (error 1020)";

  g_string_append_printf (s, "CoinGecko HTTP %u", status);
  if (reason_phrase != NULL && *reason_phrase != '\0')
    g_string_append_printf (s, " %s", reason_phrase);
  if (e.has_code)
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
cg_read_key (CgPlugin *self, GError **error)
{
  g_autoptr(GError) local = NULL;
  char *key = arb_instance_get_secret (self->inst, "api_key", &local);

  if (key == NULL && local != NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "api_key: %s", local->message);
      return FALSE;
    }
  if (key == NULL && self->pro)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "api_key: plan=pro needs a key: set api_key_env=VARIABLE or api_key_file=PATH");
      return FALSE;
    }
  g_clear_pointer (&self->api_key, arb_secret_free);
  self->api_key = key;
  return TRUE;
}

static char *
cg_request_uri (CgPlugin *self)
{
  g_autoptr(GString) uri = g_string_new (self->base_url);

  g_string_append (uri, "/simple/price?ids=");
  for (guint i = 0; i < self->markets->len; i++)
    {
      const ArbIngestMarket *m = g_ptr_array_index (self->markets, i);
      if (i > 0)
        g_string_append (uri, ",");
      g_string_append_uri_escaped (uri, m->upstream, NULL, TRUE);
    }
  g_string_append (uri, "&vs_currencies=");
  g_string_append_uri_escaped (uri, self->vs, NULL, TRUE);
  g_string_append (uri, "&include_last_updated_at=true&precision=full");
  return g_string_free (g_steal_pointer (&uri), FALSE);
}

static SoupMessage *
cg_build_request (gpointer data, GError **error)
{
  CgPlugin *self = data;
  g_autofree char *uri = cg_request_uri (self);
  SoupMessage *msg;

  if (self->reload_key)
    {
      /* the key was refused: a rotated key file is picked up without a restart */
      if (!cg_read_key (self, error))
        return NULL;
      self->reload_key = FALSE;
    }
  msg = soup_message_new (SOUP_METHOD_GET, uri);
  if (msg == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "base_url: %s is not a usable URL", uri);
      return NULL;
    }
  if (self->api_key != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
                                  self->pro ? "x-cg-pro-api-key" : "x-cg-demo-api-key", self->api_key);
  return msg;
}

static void
cg_publish (CgPlugin *self, GPtrArray *quotes)
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
cg_handle_answer (gpointer data, SoupMessage *msg, GBytes *body, ArbIngestVerdict *verdict)
{
  CgPlugin *self = data;
  guint status = soup_message_get_status (msg);
  gsize length = 0;
  const char *text = g_bytes_get_data (body, &length);
  g_autoptr(GError) error = NULL;
  CgDecoded decoded;

  if (status != SOUP_STATUS_OK)
    {
      gboolean auth = FALSE;
      const char *phrase = arb_ingest_status_phrase (status, soup_message_get_reason_phrase (msg));
      g_autofree char *why = cg_describe_error (status, phrase, text, length, &auth);

      if (status == 429 /* Too Many Requests */)
        {
          const char *retry = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After");
          arb_ingest_verdict_set (verdict, ARB_INGEST_RATE_LIMITED, "%s", why);
          if (!arb_ingest_retry_after_ms (retry, arb_now_us (), &verdict->retry_after_ms))
            verdict->retry_after_ms = 0;
          return;
        }
      if (auth)
        self->reload_key = TRUE;
      arb_ingest_verdict_set (verdict, auth ? ARB_INGEST_AUTH : ARB_INGEST_FAILED, "%s", why);
      return;
    }

  cg_decoded_init (&decoded);
  if (!cg_decode_simple_price (self->markets, self->vs, text, length, &decoded, &error))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      arb_ingest_verdict_set (verdict, ARB_INGEST_FAILED, "CoinGecko: %s", error->message);
      cg_decoded_clear (&decoded);
      return;
    }
  cg_publish (self, decoded.quotes);
  if (decoded.missing->len > 0 || decoded.problems->len > 0)
    {
      g_autoptr(GString) why = g_string_new ("CoinGecko has no price for ");
      guint n_bad = decoded.missing->len + decoded.problems->len;

      arb_instance_counter_add (self->inst, "market_errors_total", n_bad);
      if (decoded.missing->len > 0)
        {
          g_ptr_array_add (decoded.missing, NULL);
          g_autofree char *ids = g_strjoinv (", ", (char **) decoded.missing->pdata);
          g_string_append_printf (why, "%s (not in the answer: unknown or delisted ids)", ids);
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
  cg_decoded_clear (&decoded);
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                               */

static const ArbConfigKey cg_config[] = {
  { "markets", ARB_CFG_STRV, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "CoinGecko coin ids to our markets, COIN_ID:MARKET comma-separated: "
    "bitcoin:crypto:BTC-USD,ethereum:crypto:ETH-USD" },
  { "vs_currency", ARB_CFG_STRING, ARB_CFG_NONE, "usd", 0, 0, NULL,
    "the currency prices are asked in (CoinGecko's vs_currencies), lower case" },
  { "interval", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 86400000, NULL,
    "time between two requests; every request costs one call of the plan's rate limit" },
  { "timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "a request without a whole answer by then is abandoned and counts as a failure" },
  { "plan", ARB_CFG_ENUM, ARB_CFG_NONE, "demo", 0, 0, "demo,pro",
    "demo (also keyless): api.coingecko.com, header x-cg-demo-api-key; pro: pro-api.coingecko.com, x-cg-pro-api-key" },
  { "base_url", ARB_CFG_STRING, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "root URL instead of the plan's (a proxy, a test server), for example http://127.0.0.1:8089/api/v3" },
  { "api_key", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "the API key; optional for plan=demo, required for plan=pro" },
  { NULL }
};

static gboolean
cg_on_timer (gpointer data)
{
  return arb_ingest_poll_on_timer (((CgPlugin *) data)->poll);
}

static const ArbIngestPollFuncs cg_poll_funcs = {
  .build_request = cg_build_request,
  .handle_answer = cg_handle_answer,
};

static void
cg_stop (gpointer data)
{
  CgPlugin *self = data;

  if (self->poll != NULL)
    arb_ingest_poll_stop (self->poll);
  g_clear_pointer (&self->api_key, arb_secret_free);
}

static void
cg_destroy (gpointer data)
{
  CgPlugin *self = data;

  cg_stop (self);
  g_clear_pointer (&self->poll, arb_ingest_poll_free);
  g_clear_pointer (&self->markets, g_ptr_array_unref);
  g_clear_pointer (&self->refused, g_hash_table_unref);
  g_free (self->vs);
  g_free (self->base_url);
  g_free (self);
}

static gpointer
cg_create (ArbInstance *inst, GError **error)
{
  g_autofree CgPlugin *self = g_new0 (CgPlugin, 1);
  g_autoptr(GPtrArray) markets = NULL;
  const char *base = arb_instance_get_string (inst, "base_url");
  const char *vs = arb_instance_get_string (inst, "vs_currency");
  g_autofree char *base_url = NULL;

  markets = arb_ingest_markets_parse (arb_instance_get_strv (inst, "markets"), error);
  if (markets == NULL)
    return NULL;
  if (*vs == '\0' || strspn (vs, "abcdefghijklmnopqrstuvwxyz") != strlen (vs))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "vs_currency: \"%s\" is not a lower-case currency code such as usd", vs);
      return NULL;
    }
  self->pro = g_strcmp0 (arb_instance_get_string (inst, "plan"), "pro") == 0;
  base_url = arb_ingest_base_url_check (base != NULL ? base : self->pro ? CG_PRO_URL : CG_DEMO_URL, error);
  if (base_url == NULL)
    return NULL;

  self->inst = inst;
  self->markets = g_steal_pointer (&markets);
  self->vs = g_strdup (vs);
  self->base_url = g_steal_pointer (&base_url);
  self->interval_ms = arb_instance_get_duration_ms (inst, "interval");
  self->timeout_ms = arb_instance_get_duration_ms (inst, "timeout");
  self->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->poll = arb_ingest_poll_new (inst, "CoinGecko", &cg_poll_funcs, self, self->interval_ms, self->timeout_ms,
                                    cg_on_timer);
  return g_steal_pointer (&self);
}

static gboolean
cg_start (gpointer data, GError **error)
{
  CgPlugin *self = data;

  cg_stop (self);
  /* a missing or unreadable key is a config error; an unreachable upstream
   * is not: the first request reports it as health, and the loop retries */
  if (!cg_read_key (self, error))
    return FALSE;
  self->reload_key = FALSE;
  arb_info (self->inst, "polling %s/simple/price for %u market%s every %" G_GINT64_FORMAT " ms (%s plan%s)",
            self->base_url, self->markets->len, self->markets->len == 1 ? "" : "s", self->interval_ms,
            self->pro ? "pro" : "demo", self->api_key != NULL ? ", with a key" : ", keyless");
  arb_ingest_poll_start (self->poll);
  return TRUE;
}

static const ArbIngestVTable cg_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = cg_create,
  .start = cg_start,
  .stop = cg_stop,
  .destroy = cg_destroy,
};

static const ArbPluginDesc cg_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-coingecko",
  .version = "1.0.0",
  .summary = "Crypto prices from CoinGecko's /simple/price, polled",
  .kind = ARB_PLUGIN_INGEST,
  .config = cg_config,
  .vtable = &cg_vtable,
};

ARB_PLUGIN_DEFINE (ingest_coingecko, cg_desc)
