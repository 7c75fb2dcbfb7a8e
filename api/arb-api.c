/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "arb-api-private.h"
#include "arb-json-strict-private.h"
#include "arb-risk-private.h"
#include "arb-util-private.h"

#define MAX_BODY          (64 * 1024)
#define IDEMPOTENCY_TTL_US (24 * G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC)
#define DEFAULT_TRADES_LIMIT 50
#define MAX_TRADES_LIMIT     500
/* closed positions: a page, and the default (the most one answer had before
 * pages) */
#define MAX_CLOSED_LIMIT     500
/* assessments: a page by default, and at most */
#define DEFAULT_ASSESSMENTS_LIMIT 500
#define MAX_ASSESSMENTS_LIMIT     1000

typedef struct {
  char      *hash;
  guint      status;
  char      *body;
  gint64     created_us;
  gboolean   pending;
  GPtrArray *waiters; /* SoupServerMessage, owned refs */
} IdemEntry;

struct _ArbApi {
  ArbHost        *host;
  ArbTrading     *trading;
  ArbSaga        *saga;
  ArbStore       *store;
  ArbJwtVerifier *verifier;
  GHashTable     *idempotency; /* "user\nkey" → IdemEntry */
  GHashTable     *tokens;      /* token → ArbPrincipal: verified, not yet expired */
  guint           in_flight;
  guint           prune_source;
};

static void
idem_free (gpointer data)
{
  IdemEntry *e = data;
  g_free (e->hash);
  g_free (e->body);
  if (e->waiters != NULL)
    g_ptr_array_unref (e->waiters);
  g_free (e);
}

static void
store_expired (const GError *error, gpointer data)
{
  if (error != NULL)
    g_warning ("expiring idempotency keys older than 24 h in the store: %s (tried again in a minute)",
               error->message);
}

/* once a minute: the keys whose 24 hours have passed, here and in the
 * store (a key used again before then has its own old row deleted in the
 * order's transaction) */
static gboolean
prune_idempotency (gpointer data)
{
  ArbApi *api = data;
  GHashTableIter it;
  gpointer v;
  gint64 cutoff = arb_now_us () - IDEMPOTENCY_TTL_US;
  ArbStoreTxn *txn;

  g_hash_table_iter_init (&it, api->idempotency);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      IdemEntry *e = v;
      if (!e->pending && e->created_us < cutoff)
        g_hash_table_iter_remove (&it);
    }
  if (api->store != NULL)
    {
      txn = arb_store_txn_new ();
      arb_store_txn_expire_idempotency (txn, cutoff);
      arb_store_commit_async (api->store, txn, store_expired, NULL);
    }
  return G_SOURCE_CONTINUE;
}

ArbApi *
arb_api_new (ArbHost *host, ArbTrading *trading, ArbSaga *saga, ArbStore *store, ArbJwtVerifier *verifier)
{
  ArbApi *api = g_new0 (ArbApi, 1);
  GSource *s;
  api->host = host;
  api->trading = trading;
  api->saga = saga;
  api->store = store;
  api->verifier = verifier;
  api->idempotency = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, idem_free);
  api->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) arb_principal_free);
  s = g_timeout_source_new_seconds (60);
  g_source_set_callback (s, prune_idempotency, api, NULL);
  api->prune_source = g_source_attach (s, host->context);
  g_source_unref (s);
  return api;
}

void
arb_api_free (ArbApi *api)
{
  if (api == NULL)
    return;
  if (api->prune_source != 0)
    {
      GSource *s = g_main_context_find_source_by_id (api->host->context, api->prune_source);
      if (s != NULL)
        g_source_destroy (s);
    }
  g_hash_table_unref (api->idempotency);
  g_hash_table_unref (api->tokens);
  g_free (api);
}

guint
arb_api_in_flight (ArbApi *api)
{
  return api->in_flight;
}

void
arb_api_restore_idempotency (ArbApi *api, ArbIdempotencyRow *row)
{
  IdemEntry *e = g_new0 (IdemEntry, 1);
  e->hash = g_steal_pointer (&row->request_hash);
  e->status = row->status;
  e->body = g_steal_pointer (&row->body);
  e->created_us = row->created_us;
  g_hash_table_replace (api->idempotency, g_strdup_printf ("%s\n%s", row->user, row->key), e);
  arb_idempotency_row_free (row);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */

static char *
error_json (const char *code, const char *message, const char *cid)
{
  ArbJson j;
  arb_json_init (&j, 256);
  arb_json_begin_object (&j);
  arb_json_key (&j, "error");
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "code", code);
  arb_json_kv_string (&j, "message", message);
  arb_json_kv_string (&j, "correlationId", cid != NULL ? cid : "");
  arb_json_end_object (&j);
  arb_json_end_object (&j);
  return arb_json_steal (&j, NULL);
}

static void
reply_error (SoupServerMessage *msg, const GError *error, const char *cid)
{
  int code = error->domain == ARB_TRADING_ERROR ? error->code : ARB_TRADING_ERROR_INTERNAL;
  guint status = arb_trading_error_status (code);
  g_autofree char *body = error_json (arb_trading_error_code (code), error->message, cid);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (status == 401)
    soup_message_headers_replace (h, "WWW-Authenticate", "Bearer realm=\"arbiter\", error=\"invalid_token\"");
  if (status == 503)
    soup_message_headers_replace (h, "Retry-After", code == ARB_TRADING_ERROR_MARKET_DATA ? "5" : "2");
  arb_http_reply_json (msg, status, body);
}

static void
reply_writer (SoupServerMessage *msg, guint status, ArbJson *j)
{
  gsize len = 0;
  char *body = arb_json_steal (j, &len);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, body, len);
}

#define FAIL(msg, cid, code, ...)                                                   \
  G_STMT_START                                                                      \
  {                                                                                 \
    g_autoptr(GError) _e = g_error_new (ARB_TRADING_ERROR, (code), __VA_ARGS__);    \
    reply_error ((msg), _e, (cid));                                                 \
  }                                                                                 \
  G_STMT_END

#define FAIL_RETURN(msg, cid, code, ...)    \
  G_STMT_START                              \
  {                                         \
    FAIL ((msg), (cid), (code), __VA_ARGS__); \
    return;                                 \
  }                                         \
  G_STMT_END

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

gboolean
arb_api_decimal_from_node (gpointer json_node, const char *field, ArbDecimal *out, GError **error)
{
  JsonNode *node = json_node;
  g_autoptr(GError) local = NULL;

  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      if (!arb_decimal_parse (json_node_get_string (node), ARB_ROUND_EXACT, out, &local))
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s: %s", field, local->message);
          return FALSE;
        }
      return TRUE;
    }
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    {
      if (!arb_decimal_from_int (json_node_get_int (node), out, &local))
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s: %s", field, local->message);
          return FALSE;
        }
      return TRUE;
    }
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_DOUBLE)
    {
      gdouble d = json_node_get_double (node);
      char buf[64];
      int digits = 0;
      if (!isfinite (d))
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s is not a finite number", field);
          return FALSE;
        }
      /* the shortest text that reads back as the same double is what the
       * client wrote, as long as it has at most 15 significant digits */
      for (int prec = 1; prec <= 17; prec++)
        {
          g_ascii_formatd (buf, sizeof buf, prec == 17 ? "%.17g" : (char[]){ '%', '.', (char) ('0' + prec / 10),
                                                                                (char) ('0' + prec % 10), 'g', 0 },
                           d);
          if (g_ascii_strtod (buf, NULL) == d)
            {
              digits = prec;
              break;
            }
        }
      if (digits == 0 || digits > 15)
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                       "%s has more significant digits than a JSON number carries exactly; send it as a string",
                       field);
          return FALSE;
        }
      if (!arb_decimal_parse (buf, ARB_ROUND_EXACT, out, &local))
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s: %s", field, local->message);
          return FALSE;
        }
      return TRUE;
    }
  g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
               "%s must be a decimal number, as a string (\"64250.5\") or a number", field);
  return FALSE;
}

/* parses the body as one JSON object whose members are all in @allowed */
static JsonObject *
parse_object (SoupServerMessage *msg, const char *const *allowed, JsonParser *parser, GError **error)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr(GError) local = NULL;
  g_autofree char *twice = NULL;
  JsonNode *root;
  JsonObject *obj;
  g_autoptr(GList) members = NULL;

  if (len > MAX_BODY)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_PAYLOAD_TOO_LARGE,
                   "the body is %zu bytes; the limit is %d", len, MAX_BODY);
      return NULL;
    }
  if (len == 0)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "the body must be a JSON object");
      return NULL;
    }
  if (!g_utf8_validate (data, (gssize) len, NULL))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "the body is not UTF-8");
      return NULL;
    }
  if (!arb_json_load_strict (parser, data, len, &twice, &local))
    {
      if (twice != NULL)
        g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                     "the body names \"%s\" twice (which one counts is not defined)", twice);
      else
        g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "the body is not valid JSON: %s",
                     local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "the body must be a JSON object");
      return NULL;
    }
  obj = json_node_get_object (root);
  members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      {
        const char *near = arb_closest_word (l->data, allowed);
        g_autofree char *list = g_strjoinv (", ", (char **) allowed);
        if (near != NULL)
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                       "unknown field \"%s\" (did you mean \"%s\"? allowed: %s)", (char *) l->data, near, list);
        else
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                       "unknown field \"%s\" (allowed: %s)", (char *) l->data, list);
        return NULL;
      }
  return obj;
}

static const char *
get_string (JsonObject *obj, const char *field, gboolean required, gsize max_len, GError **error)
{
  JsonNode *n = json_object_get_member (obj, field);
  const char *s;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (required)
        g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s is required", field);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s must be a string", field);
      return NULL;
    }
  s = json_node_get_string (n);
  if (*s == '\0' || strlen (s) > max_len)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s must be 1 to %zu characters", field,
                   max_len);
      return NULL;
    }
  return s;
}

/* an optional positive decimal field; FALSE on error, *has tells presence */
static gboolean
get_positive (JsonObject *obj, const char *field, gboolean *has, ArbDecimal *out, GError **error)
{
  JsonNode *n = json_object_get_member (obj, field);
  *has = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!arb_api_decimal_from_node (n, field, out, error))
    return FALSE;
  if (out->raw <= 0)
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "%s must be above zero, not %s", field,
                   arb_decimal_format_short (*out, buf));
      return FALSE;
    }
  *has = TRUE;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Pending answers                                                          */

typedef struct {
  ArbApi            *api;
  SoupServerMessage *msg;
  char              *cid;
  char              *idem_key; /* "user\nkey", nullable */
  char              *answer;   /* the 201 body as stored with the key, nullable */
  guint              ok_status;
} Pending;

static Pending *
pending_new (ArbApi *api, SoupServerMessage *msg, const char *cid, guint ok_status)
{
  Pending *p = g_new0 (Pending, 1);
  p->api = api;
  p->msg = g_object_ref (msg);
  p->cid = g_strdup (cid);
  p->ok_status = ok_status;
  api->in_flight++;
  soup_server_message_pause (msg);
  return p;
}

static void
pending_finish (Pending *p)
{
  soup_server_message_unpause (p->msg);
  p->api->in_flight--;
  g_object_unref (p->msg);
  g_free (p->cid);
  g_free (p->idem_key);
  g_free (p->answer);
  g_free (p);
}

static char *
encode_trade_result (ArbApi *api, ArbSagaResult *r, gboolean with_order)
{
  ArbJson j;
  arb_json_init (&j, 2048);
  arb_json_begin_object (&j);
  if (with_order && r->order != NULL)
    {
      arb_json_key (&j, "order");
      arb_json_add_order (&j, r->order);
    }
  arb_json_key (&j, "trade");
  arb_json_add_trade (&j, r->trade);
  arb_json_key (&j, "position");
  arb_json_add_position (&j, api->trading, r->position, FALSE);
  arb_json_end_object (&j);
  return arb_json_steal (&j, NULL);
}

static char *
encode_order (ArbSagaResult *result, guint *status, gpointer data)
{
  Pending *p = data;
  char *body = encode_trade_result (p->api, result, TRUE);
  *status = 201;
  /* kept, so the answer is encoded once: the result cannot change between
   * here and order_done, and the first answer is the stored one */
  g_free (p->answer);
  p->answer = g_strdup (body);
  return body;
}

static void
idem_complete (ArbApi *api, const char *idem_key, guint status, const char *body, gboolean keep)
{
  IdemEntry *e = g_hash_table_lookup (api->idempotency, idem_key);
  g_autoptr(GPtrArray) waiters = NULL;
  if (e == NULL)
    return;
  waiters = g_steal_pointer (&e->waiters);
  if (keep)
    {
      e->pending = FALSE;
      e->status = status;
      g_free (e->body);
      e->body = g_strdup (body);
    }
  else
    g_hash_table_remove (api->idempotency, idem_key);
  /* a retry that arrived while the first was in flight gets the same answer */
  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    {
      SoupServerMessage *w = g_ptr_array_index (waiters, i);
      soup_message_headers_replace (soup_server_message_get_response_headers (w), "Idempotent-Replayed", "true");
      arb_http_reply_json (w, status, body);
      soup_server_message_unpause (w);
      api->in_flight--;
    }
}

static void
order_done (ArbSagaResult *result, const GError *error, gpointer data)
{
  Pending *p = data;
  g_autofree char *body = NULL;
  guint status;

  if (error != NULL)
    {
      reply_error (p->msg, error, p->cid);
      status = soup_server_message_get_status (p->msg);
      if (p->idem_key != NULL)
        {
          SoupMessageBody *rb = soup_server_message_get_response_body (p->msg);
          g_autoptr(GBytes) bytes = soup_message_body_flatten (rb);
          g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
          /* nothing was placed: a retry may try again */
          idem_complete (p->api, p->idem_key, status, text, FALSE);
        }
      pending_finish (p);
      return;
    }
  body = p->answer != NULL ? g_steal_pointer (&p->answer) : encode_trade_result (p->api, result, TRUE);
  arb_http_reply_json (p->msg, 201, body);
  if (p->idem_key != NULL)
    idem_complete (p->api, p->idem_key, 201, body, TRUE);
  pending_finish (p);
}

static void
close_done (ArbSagaResult *result, const GError *error, gpointer data)
{
  Pending *p = data;
  if (error != NULL)
    reply_error (p->msg, error, p->cid);
  else
    {
      g_autofree char *body = encode_trade_result (p->api, result, FALSE);
      arb_http_reply_json (p->msg, 200, body);
    }
  pending_finish (p);
}

static void
assessment_done (ArbSagaResult *result, const GError *error, gpointer data)
{
  Pending *p = data;
  if (error != NULL)
    reply_error (p->msg, error, p->cid);
  else
    {
      ArbAccount *a = arb_trading_get_account (p->api->trading, result->assessment->id);
      g_autofree char *body = arb_json_assessment (p->api->trading, a);
      soup_message_headers_replace (soup_server_message_get_response_headers (p->msg), "Location",
                                    g_strconcat ("/assessments/", result->assessment->id, NULL));
      arb_http_reply_json (p->msg, 201, body);
    }
  pending_finish (p);
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */

static char *
request_hash (SoupServerMessage *msg, const char *path)
{
  g_autoptr(GChecksum) c = g_checksum_new (G_CHECKSUM_SHA256);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  const char *method = soup_server_message_get_method (msg);
  g_checksum_update (c, (const guchar *) method, (gssize) strlen (method));
  g_checksum_update (c, (const guchar *) "\n", 1);
  g_checksum_update (c, (const guchar *) path, (gssize) strlen (path));
  g_checksum_update (c, (const guchar *) "\n", 1);
  g_checksum_update (c, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes));
  return g_strdup (g_checksum_get_string (c));
}

static void
post_orders (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *path, const char *cid)
{
  static const char *const allowed[] = { "assessmentId", "market", "side", "quantity", "stopLoss", "takeProfit",
                                         "clientOrderId", NULL };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *obj;
  ArbOrderRequest req = { 0 };
  const char *s, *side, *key;
  gboolean has_qty;
  ArbIdempotencyRow *idem = NULL;
  Pending *p;

  /* step: validate */
  obj = parse_object (msg, allowed, parser, &error);
  if (obj == NULL)
    return reply_error (msg, error, cid);
  if ((s = get_string (obj, "assessmentId", TRUE, 64, &error)) == NULL)
    return reply_error (msg, error, cid);
  req.assessment_id = g_strdup (s);
  if ((s = get_string (obj, "market", TRUE, 200, &error)) == NULL)
    goto bad;
  req.market = g_strdup (s);
  if (!arb_market_id_is_valid (req.market))
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                           "market \"%s\" is not a market id (crypto:BASE-QUOTE, polymarket:TOKEN, "
                           "kalshi:TICKER:yes|no)",
                           req.market);
      goto bad;
    }
  if ((side = get_string (obj, "side", TRUE, 8, &error)) == NULL)
    goto bad;
  if (!g_str_equal (side, "buy") && !g_str_equal (side, "sell"))
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "side must be \"buy\" or \"sell\", not \"%s\"",
                           side);
      goto bad;
    }
  req.is_buy = g_str_equal (side, "buy");
  if (!req.is_buy && g_strcmp0 (arb_market_class (req.market), "prediction") == 0)
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                           "prediction markets are long only: buy the other outcome instead of selling this one");
      goto bad;
    }
  if (!get_positive (obj, "quantity", &has_qty, &req.quantity, &error))
    goto bad;
  if (!has_qty)
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "quantity is required");
      goto bad;
    }
  if (!get_positive (obj, "stopLoss", &req.has_stop_loss, &req.stop_loss, &error)
      || !get_positive (obj, "takeProfit", &req.has_take_profit, &req.take_profit, &error))
    goto bad;
  if (json_object_has_member (obj, "clientOrderId"))
    {
      if ((s = get_string (obj, "clientOrderId", FALSE, 64, &error)) == NULL && error != NULL)
        goto bad;
      req.client_order_id = g_strdup (s);
    }
  req.user = g_strdup (who->subject);
  req.correlation_id = g_strdup (cid);

  p = pending_new (api, msg, cid, 201);
  /* Idempotency-Key: the same key from the same user within 24 h gets the
   * first answer and places nothing */
  key = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Idempotency-Key");
  if (key != NULL)
    {
      g_autofree char *hash = request_hash (msg, path);
      g_autofree char *ikey = g_strdup_printf ("%s\n%s", who->subject, key);
      IdemEntry *e = g_hash_table_lookup (api->idempotency, ikey);
      if (strlen (key) == 0 || strlen (key) > 255)
        {
          error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                               "Idempotency-Key must be 1 to 255 characters");
          reply_error (msg, error, cid);
          pending_finish (p);
          arb_order_request_clear (&req);
          return;
        }
      if (e != NULL && e->created_us != 0 && !e->pending && e->created_us < arb_now_us () - IDEMPOTENCY_TTL_US)
        {
          g_hash_table_remove (api->idempotency, ikey);
          e = NULL;
        }
      if (e != NULL)
        {
          if (!g_str_equal (e->hash, hash))
            {
              error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_IDEMPOTENCY_MISMATCH,
                                   "Idempotency-Key \"%s\" was used for a different request", key);
              reply_error (msg, error, cid);
            }
          else if (e->pending)
            {
              /* answered when the first completes (idem_complete): the
               * message stays paused and counted in flight as pending_new
               * left it; only the Pending goes. (Pausing it once more and
               * letting pending_finish unpause it sent an empty 500 at once,
               * and idem_complete then unpaused a finished message.) */
              g_ptr_array_add (e->waiters, g_object_ref (msg));
              g_object_unref (p->msg);
              g_free (p->cid);
              g_free (p);
              arb_order_request_clear (&req);
              return;
            }
          else
            {
              soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Idempotent-Replayed",
                                            "true");
              arb_http_reply_json (msg, e->status, e->body);
            }
          pending_finish (p);
          arb_order_request_clear (&req);
          return;
        }
      e = g_new0 (IdemEntry, 1);
      e->hash = g_strdup (hash);
      e->pending = TRUE;
      e->created_us = arb_now_us ();
      e->waiters = g_ptr_array_new_with_free_func (g_object_unref);
      g_hash_table_replace (api->idempotency, g_strdup (ikey), e);
      p->idem_key = g_strdup (ikey);
      idem = g_new0 (ArbIdempotencyRow, 1);
      idem->user = g_strdup (who->subject);
      idem->key = g_strdup (key);
      idem->request_hash = g_strdup (hash);
    }
  arb_saga_place_order (api->saga, &req, idem, encode_order, order_done, p);
  arb_order_request_clear (&req);
  return;

bad:
  reply_error (msg, error, cid);
  arb_order_request_clear (&req);
}

static void
post_close (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *position_id, const char *cid)
{
  static const char *const allowed[] = { "quantity", NULL };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  gboolean has_qty = FALSE;
  ArbDecimal qty = ARB_DECIMAL_ZERO;

  if (body->length > 0)
    {
      JsonObject *obj = parse_object (msg, allowed, parser, &error);
      if (obj == NULL || !get_positive (obj, "quantity", &has_qty, &qty, &error))
        return reply_error (msg, error, cid);
    }
  arb_saga_close_position (api->saga, who->subject, position_id, has_qty ? &qty : NULL, cid, close_done,
                           pending_new (api, msg, cid, 200));
}

static void
post_assessments (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *cid)
{
  static const char *const allowed[] = { "userId", "program", NULL };
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *obj;
  const char *user, *program;

  if (!who->admin)
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_FORBIDDEN, "creating an assessment needs the admin role");
  obj = parse_object (msg, allowed, parser, &error);
  if (obj == NULL || (user = get_string (obj, "userId", TRUE, 256, &error)) == NULL
      || (program = get_string (obj, "program", TRUE, 128, &error)) == NULL)
    return reply_error (msg, error, cid);
  arb_saga_create_assessment (api->saga, user, program, cid, assessment_done, pending_new (api, msg, cid, 201));
}

/* the account @id if @who may see it; NULL after answering 404 */
static ArbAccount *
visible_account (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *id, const char *cid)
{
  ArbAccount *a = arb_trading_get_account (api->trading, id);
  if (a == NULL || (!who->admin && !g_str_equal (a->row->owner, who->subject)))
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_NOT_FOUND, "no assessment %s", id != NULL ? id : "");
      return NULL;
    }
  return a;
}

static void
get_assessment (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *id, const char *cid)
{
  ArbAccount *a = visible_account (api, msg, who, id, cid);
  g_autoptr(GArray) rules = NULL;
  g_auto(ArbJson) bj = { 0 };

  if (a == NULL)
    return;
  rules = arb_risk_report (api->host, api->trading, a);
  arb_json_init (&bj, 1024);
  arb_json_add_assessment_with_rules (&bj, api->trading, a, rules);
  reply_writer (msg, 200, &bj);
}

static void
events_done (GPtrArray *rows, const GError *error, gpointer data)
{
  Pending *p = data;

  if (error != NULL)
    {
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_STORE, "assessment events: %s",
                                         error->message);
      reply_error (p->msg, e, p->cid);
    }
  else
    {
      g_auto(ArbJson) bj = { 0 };
      arb_json_init (&bj, 1024);
      arb_json_begin_object (&bj);
      arb_json_key (&bj, "events");
      arb_json_begin_array (&bj);
      /* each is the event's own envelope, as the sinks got it */
      for (guint i = 0; i < rows->len; i++)
        arb_json_raw (&bj, ((ArbOutboxRow *) g_ptr_array_index (rows, i))->payload);
      arb_json_end_array (&bj);
      arb_json_end_object (&bj);
      reply_writer (p->msg, 200, &bj);
    }
  pending_finish (p);
}

static void
get_assessment_events (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, const char *id, const char *cid)
{
  if (visible_account (api, msg, who, id, cid) == NULL)
    return;
  arb_store_list_assessment_events_async (api->store, id, 1000, events_done, pending_new (api, msg, cid, 200));
}

/* Cursors are opaque to clients: base64url (unpadded) of "t1:SEQ" for the
 * trades, "p1:CLOSED_US:ID" for closed positions, "a1:CREATED_US:ID" for
 * assessments. */
static char *
cursor_encode (const char *raw)
{
  char *b64 = g_base64_encode ((const guchar *) raw, strlen (raw));
  g_strdelimit (b64, "+", '-');
  g_strdelimit (b64, "/", '_');
  for (char *e = b64 + strlen (b64); e > b64 && e[-1] == '='; e--)
    e[-1] = '\0';
  return b64;
}

/* the text of @cursor, when it is one of ours with @prefix; NULL otherwise */
static char *
cursor_decode (const char *cursor, const char *prefix)
{
  g_autofree char *b64 = NULL;
  g_autofree guchar *raw = NULL;
  gsize len = 0, n = strlen (cursor);
  g_autofree char *text = NULL;

  if (n == 0 || n > 160 || strspn (cursor, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != n)
    return NULL;
  b64 = g_malloc0 (n + 4);
  memcpy (b64, cursor, n);
  g_strdelimit (b64, "-", '+');
  g_strdelimit (b64, "_", '/');
  while (strlen (b64) % 4 != 0)
    strcat (b64, "=");
  raw = g_base64_decode (b64, &len);
  text = g_strndup ((const char *) raw, len);
  if (strlen (text) != len || !g_utf8_validate (text, -1, NULL) || !g_str_has_prefix (text, prefix))
    return NULL;
  return g_strdup (text + strlen (prefix));
}

static char *
trades_cursor_encode (gint64 seq)
{
  g_autofree char *raw = g_strdup_printf ("t1:%" G_GINT64_FORMAT, seq);
  return cursor_encode (raw);
}

static gboolean
trades_cursor_decode (const char *cursor, gint64 *seq)
{
  g_autofree char *text = cursor_decode (cursor, "t1:");
  return text != NULL && g_ascii_string_to_signed (text, 10, 1, G_MAXINT64, seq, NULL);
}

/* a place in a list ordered by (time, id): "PREFIX US:ID" */
static char *
time_id_cursor_encode (const char *prefix, gint64 us, const char *id)
{
  g_autofree char *raw = g_strdup_printf ("%s%" G_GINT64_FORMAT ":%s", prefix, us, id);
  return cursor_encode (raw);
}

/* @id_out: owned by the caller */
static gboolean
time_id_cursor_decode (const char *cursor, const char *prefix, gint64 *us_out, char **id_out)
{
  g_autofree char *text = cursor_decode (cursor, prefix);
  const char *colon = text != NULL ? strchr (text, ':') : NULL;
  g_autofree char *us = NULL;

  if (colon == NULL || colon[1] == '\0')
    return FALSE;
  us = g_strndup (text, (gsize) (colon - text));
  if (!g_ascii_string_to_signed (us, 10, 1, G_MAXINT64, us_out, NULL))
    return FALSE;
  *id_out = g_strdup (colon + 1);
  return TRUE;
}

static void
get_assessments (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, GHashTable *query, const char *cid)
{
  const char *user = query != NULL ? g_hash_table_lookup (query, "userId") : NULL;
  const char *limit_s = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  const char *cursor = query != NULL ? g_hash_table_lookup (query, "cursor") : NULL;
  guint64 limit = DEFAULT_ASSESSMENTS_LIMIT;
  gint64 after_us = 0;
  g_autofree char *after_id = NULL;
  const GPtrArray *list;
  g_auto(ArbJson) bj = { 0 };
  ArbJson *b = &bj;
  guint first = 0, shown;

  if (user != NULL && !who->admin && !g_str_equal (user, who->subject))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_FORBIDDEN, "listing another user's assessments needs the admin role");
  if (limit_s != NULL && !g_ascii_string_to_unsigned (limit_s, 10, 1, MAX_ASSESSMENTS_LIMIT, &limit, NULL))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "limit must be a whole number from 1 to %d",
                 MAX_ASSESSMENTS_LIMIT);
  if (cursor != NULL && !time_id_cursor_decode (cursor, "a1:", &after_us, &after_id))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "cursor is not one this API gave out for assessments");
  /* oldest first, by (created, id): a page starts after the cursor's,
   * found by bisection in the list the trading state keeps in that order */
  list = arb_trading_accounts_in_order (api->trading, who->admin ? user : who->subject);
  if (cursor != NULL)
    {
      guint hi = list->len;
      while (first < hi)
        {
          guint mid = first + (hi - first) / 2;
          const ArbAssessmentRow *r = ((ArbAccount *) g_ptr_array_index (list, mid))->row;
          if (r->created_us > after_us || (r->created_us == after_us && strcmp (r->id, after_id) > 0))
            hi = mid;
          else
            first = mid + 1;
        }
    }
  shown = MIN (list->len - first, (guint) limit);
  arb_json_init (b, 4096);
  arb_json_begin_object (b);
  arb_json_key (b, "assessments");
  arb_json_begin_array (b);
  for (guint i = first; i < first + shown; i++)
    arb_json_add_assessment (b, api->trading, g_ptr_array_index (list, i));
  arb_json_end_array (b);
  arb_json_key (b, "nextCursor");
  if (first + shown < list->len)
    {
      const ArbAssessmentRow *last = ((ArbAccount *) g_ptr_array_index (list, first + shown - 1))->row;
      g_autofree char *c = time_id_cursor_encode ("a1:", last->created_us, last->id);
      arb_json_string (b, c);
    }
  else
    arb_json_null (b);
  arb_json_end_object (b);
  reply_writer (msg, 200, b);
}

typedef struct {
  Pending *p;
  char    *assessment_id;
  gboolean with_open;
  guint    limit;
} PositionsRead;

/* @closed: one row more than @limit when there is a next page */
static void
positions_reply (ArbApi *api, SoupServerMessage *msg, ArbAccount *a, gboolean open, GPtrArray *closed, guint limit)
{
  g_auto(ArbJson) bj = { 0 };
  ArbJson *b = &bj;
  guint shown = closed != NULL ? MIN (closed->len, limit) : 0;

  arb_json_init (b, 4096);
  arb_json_begin_object (b);
  arb_json_key (b, "positions");
  arb_json_begin_array (b);
  /* open ones, newest first, from the live state; then the closed ones */
  if (open && a != NULL)
    for (guint i = a->positions->len; i > 0; i--)
      arb_json_add_position (b, api->trading, g_ptr_array_index (a->positions, i - 1), TRUE);
  for (guint i = 0; i < shown; i++)
    arb_json_add_position (b, api->trading, g_ptr_array_index (closed, i), FALSE);
  arb_json_end_array (b);
  arb_json_key (b, "nextCursor");
  if (closed != NULL && closed->len > limit)
    {
      const ArbPositionRow *last = g_ptr_array_index (closed, shown - 1);
      g_autofree char *c = time_id_cursor_encode ("p1:", last->closed_us, last->id);
      arb_json_string (b, c);
    }
  else
    arb_json_null (b);
  arb_json_end_object (b);
  reply_writer (msg, 200, b);
}

static void
closed_positions_done (GPtrArray *rows, const GError *error, gpointer data)
{
  PositionsRead *r = data;
  Pending *p = r->p;

  if (error != NULL)
    {
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_STORE, "closed positions: %s",
                                         error->message);
      reply_error (p->msg, e, p->cid);
    }
  else
    /* the live state as it is now, with what the store had */
    positions_reply (p->api, p->msg, arb_trading_get_account (p->api->trading, r->assessment_id), r->with_open,
                     rows, r->limit);
  pending_finish (p);
  g_free (r->assessment_id);
  g_free (r);
}

static void
get_positions (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, GHashTable *query, const char *cid)
{
  const char *id = query != NULL ? g_hash_table_lookup (query, "assessmentId") : NULL;
  const char *status = query != NULL ? g_hash_table_lookup (query, "status") : NULL;
  const char *limit_s = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  const char *cursor = query != NULL ? g_hash_table_lookup (query, "cursor") : NULL;
  guint64 limit = MAX_CLOSED_LIMIT;
  ArbPositionCursor after = { 0 };
  g_autofree char *after_id = NULL;
  ArbAccount *a;
  gboolean open = TRUE, closed = FALSE;
  PositionsRead *r;

  if (id == NULL)
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "assessmentId is required");
  if (status != NULL)
    {
      open = g_str_equal (status, "open") || g_str_equal (status, "all");
      closed = g_str_equal (status, "closed") || g_str_equal (status, "all");
      if (!open && !closed)
        FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "status must be open, closed or all, not \"%s\"",
                     status);
    }
  /* open positions are all in every answer; the closed ones come in pages */
  if (!closed && (limit_s != NULL || cursor != NULL))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION,
                 "limit and cursor page the closed positions: ask with status=closed or status=all");
  if (limit_s != NULL && !g_ascii_string_to_unsigned (limit_s, 10, 1, MAX_CLOSED_LIMIT, &limit, NULL))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "limit must be a whole number from 1 to %d",
                 MAX_CLOSED_LIMIT);
  if (cursor != NULL && !time_id_cursor_decode (cursor, "p1:", &after.closed_us, &after_id))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "cursor is not one this API gave out for positions");
  after.id = after_id;
  if ((a = visible_account (api, msg, who, id, cid)) == NULL)
    return;
  if (!closed)
    {
      positions_reply (api, msg, a, TRUE, NULL, 0);
      return;
    }
  /* the closed ones are in the store: read on its reader thread; a next
   * page shows only closed ones (the open ones were on the first) */
  r = g_new0 (PositionsRead, 1);
  r->p = pending_new (api, msg, cid, 200);
  r->assessment_id = g_strdup (id);
  r->with_open = open && cursor == NULL;
  r->limit = (guint) limit;
  arb_store_list_closed_positions_async (api->store, id, cursor != NULL ? &after : NULL, (guint) limit + 1,
                                         closed_positions_done, r);
}

typedef struct {
  Pending *p;
  guint    limit;
} TradesRead;

static void
trades_done (GPtrArray *trades, const GError *error, gpointer data)
{
  TradesRead *r = data;
  Pending *p = r->p;

  if (error != NULL)
    {
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_STORE, "trade history: %s",
                                         error->message);
      reply_error (p->msg, e, p->cid);
    }
  else
    {
      g_auto(ArbJson) bj = { 0 };
      ArbJson *b = &bj;

      arb_json_init (b, 4096);
      guint shown = MIN (trades->len, r->limit);
      arb_json_begin_object (b);
      arb_json_key (b, "trades");
      arb_json_begin_array (b);
      for (guint i = 0; i < shown; i++)
        arb_json_add_trade (b, g_ptr_array_index (trades, i));
      arb_json_end_array (b);
      arb_json_key (b, "nextCursor");
      /* one row more than asked tells whether there is a next page */
      if (trades->len > r->limit)
        {
          g_autofree char *c = trades_cursor_encode (((ArbTradeRow *) g_ptr_array_index (trades, shown - 1))->seq);
          arb_json_string (b, c);
        }
      else
        arb_json_null (b);
      arb_json_end_object (b);
      reply_writer (p->msg, 200, b);
    }
  pending_finish (p);
  g_free (r);
}

static void
get_trades (ArbApi *api, SoupServerMessage *msg, ArbPrincipal *who, GHashTable *query, const char *cid)
{
  const char *id = query != NULL ? g_hash_table_lookup (query, "assessmentId") : NULL;
  const char *limit_s = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  const char *cursor = query != NULL ? g_hash_table_lookup (query, "cursor") : NULL;
  guint64 limit = DEFAULT_TRADES_LIMIT;
  gint64 before = 0;
  TradesRead *r;

  if (id == NULL)
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "assessmentId is required");
  if (limit_s != NULL && !g_ascii_string_to_unsigned (limit_s, 10, 1, MAX_TRADES_LIMIT, &limit, NULL))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "limit must be a whole number from 1 to %d", MAX_TRADES_LIMIT);
  if (cursor != NULL && !trades_cursor_decode (cursor, &before))
    FAIL_RETURN (msg, cid, ARB_TRADING_ERROR_VALIDATION, "cursor is not one this API gave out");
  if (visible_account (api, msg, who, id, cid) == NULL)
    return;
  r = g_new0 (TradesRead, 1);
  r->p = pending_new (api, msg, cid, 200);
  r->limit = (guint) limit;
  arb_store_list_trades_async (api->store, id, before, (guint) limit + 1, trades_done, r);
}

static void
get_markets (ArbApi *api, SoupServerMessage *msg, const char *cid)
{
  g_auto(GStrv) ids = arb_price_book_list (api->host->book);
  g_auto(ArbJson) bj = { 0 };
  ArbJson *b = &bj;

  arb_json_init (b, 4096);
  gint64 now = arb_now_us ();

  arb_json_begin_object (b);
  arb_json_key (b, "markets");
  arb_json_begin_array (b);
  for (guint i = 0; ids[i] != NULL; i++)
    {
      g_autoptr(ArbQuote) q = arb_price_book_get (api->host->book, ids[i]);
      ArbMarketStatusInfo st = { 0 };
      gboolean has_status = arb_price_book_get_status (api->host->book, ids[i], &st);
      g_autofree char *reason = st.reason;
      ArbMarketRules rules;
      ArbDecimal d;
      gint64 when = 0;
      char buf[ARB_DECIMAL_BUFSIZE];
      gboolean open = !has_status || st.state == ARB_MARKET_OPEN;

      arb_trading_market_rules (api->trading, ids[i], &rules);
      arb_json_begin_object (b);
      arb_json_key (b, "market");
      arb_json_string (b, ids[i]);
      arb_json_key (b, "class");
      arb_json_string (b, arb_market_class (ids[i]));
      arb_json_key (b, "status");
      arb_json_string (b, has_status ? arb_market_state_to_string (st.state) : "open");
      if (has_status && st.has_settlement)
        {
          arb_json_key (b, "settlement");
          arb_json_string (b, arb_decimal_format (st.settlement, buf));
        }
      if (reason != NULL)
        {
          arb_json_key (b, "statusReason");
          arb_json_string (b, reason);
        }
      if (q != NULL)
        {
          g_autofree char *st_text = q->source_time_us != 0 ? arb_format_time_us (q->source_time_us) : NULL;
          if (arb_quote_get_bid (q, &d))
            {
              arb_json_key (b, "bid");
              arb_json_string (b, arb_decimal_format (d, buf));
            }
          if (arb_quote_get_ask (q, &d))
            {
              arb_json_key (b, "ask");
              arb_json_string (b, arb_decimal_format (d, buf));
            }
          if (arb_quote_get_last (q, &d))
            {
              arb_json_key (b, "last");
              arb_json_string (b, arb_decimal_format (d, buf));
            }
          arb_json_key (b, "source");
          arb_json_string (b, q->source);
          arb_json_key (b, "sourceTime");
          if (st_text != NULL)
            arb_json_string (b, st_text);
          else
            arb_json_null (b);
          when = q->source_time_us != 0 ? MIN (q->source_time_us, q->receive_time_us) : q->receive_time_us;
          arb_json_key (b, "ageMs");
          arb_json_int (b, (now - when) / 1000);
        }
      arb_json_key (b, "tradable");
      arb_json_bool (b, open && q != NULL && (now - when) / 1000 <= rules.max_quote_age_ms);
      arb_json_key (b, "slippageBps");
      arb_json_int (b, rules.slippage_bps);
      arb_json_key (b, "feeBps");
      arb_json_int (b, rules.fee_bps);
      arb_json_end_object (b);
    }
  arb_json_end_array (b);
  arb_json_end_object (b);
  reply_writer (msg, 200, b);
}

static ArbPrincipal *
principal_copy (const ArbPrincipal *p)
{
  ArbPrincipal *c = g_new0 (ArbPrincipal, 1);
  c->subject = g_strdup (p->subject);
  c->admin = p->admin;
  c->expires_us = p->expires_us;
  c->roles = g_strdupv (p->roles);
  return c;
}

/* Verified tokens, by their exact text, until their `exp`: a front end
 * sends the same token with every request, and checking its signature and
 * parsing its JSON each time was a tenth of an order's CPU. Only a token
 * that verified goes in; one past its `exp` is verified again (and then
 * refused, or accepted within the leeway, as arb_jwt_verify says). The
 * table is bounded: when full, the expired go, and if that is not enough,
 * everything. A key change restarts the daemon, and the table with it. */
#define TOKEN_CACHE_MAX 4096

static ArbPrincipal *
cached_principal (ArbApi *api, const char *token, gint64 now_us)
{
  ArbPrincipal *p = g_hash_table_lookup (api->tokens, token);

  if (p == NULL)
    return NULL;
  if (now_us >= p->expires_us)
    {
      g_hash_table_remove (api->tokens, token);
      return NULL;
    }
  return principal_copy (p);
}

static void
cache_principal (ArbApi *api, const char *token, const ArbPrincipal *who, gint64 now_us)
{
  if (g_hash_table_size (api->tokens) >= TOKEN_CACHE_MAX)
    {
      GHashTableIter it;
      gpointer v;
      g_hash_table_iter_init (&it, api->tokens);
      while (g_hash_table_iter_next (&it, NULL, &v))
        if (now_us >= ((ArbPrincipal *) v)->expires_us)
          g_hash_table_iter_remove (&it);
      if (g_hash_table_size (api->tokens) >= TOKEN_CACHE_MAX)
        g_hash_table_remove_all (api->tokens);
    }
  g_hash_table_replace (api->tokens, g_strdup (token), principal_copy (who));
}

/* step: authenticate; NULL after answering 401 */
static ArbPrincipal *
authenticate (ArbApi *api, SoupServerMessage *msg, const char *cid)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  g_autoptr(GError) error = NULL;
  ArbPrincipal *who = NULL;
  gint64 now_us = arb_now_us ();

  if (auth == NULL || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0 || auth[7] == '\0')
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_UNAUTHENTICATED, "a bearer token is required (Authorization: Bearer <JWT>)");
      return NULL;
    }
  if (api->verifier == NULL)
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_UNAUTHENTICATED, "no token can be accepted: [api] has no JWT key configured");
      return NULL;
    }
  who = cached_principal (api, auth + 7, now_us);
  if (who != NULL)
    return who;
  if (!arb_jwt_verify (api->verifier, auth + 7, now_us / G_USEC_PER_SEC, &who, &error))
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_UNAUTHENTICATED, "invalid token: %s", error->message);
      return NULL;
    }
  cache_principal (api, auth + 7, who, now_us);
  return who;
}

static gboolean
method_is (SoupServerMessage *msg, const char *method)
{
  return g_str_equal (soup_server_message_get_method (msg), method);
}

static void
not_allowed (SoupServerMessage *msg, const char *allow, const char *cid)
{
  g_autofree char *body = error_json ("METHOD_NOT_ALLOWED", "this path does not take that method", cid);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  arb_http_reply_json (msg, 405, body);
}

/* TRUE when every parameter of @query_text (nullable) is in @allowed and
 * none comes twice; otherwise a 400 naming it has been sent. A misspelt
 * "staus=closed" must not quietly answer the open positions. */
static gboolean
query_ok (SoupServerMessage *msg, const char *query_text, const char *const *allowed, const char *cid)
{
  GUriParamsIter it;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  char *attr = NULL, *value = NULL;

  if (query_text == NULL || *query_text == '\0')
    return TRUE;
  g_uri_params_iter_init (&it, query_text, -1, "&", G_URI_PARAMS_NONE);
  while (g_uri_params_iter_next (&it, &attr, &value, &error))
    {
      g_autofree char *name = attr;
      g_free (value);
      if (!g_strv_contains (allowed, name))
        {
          const char *near = arb_closest_word (name, allowed);
          g_autofree char *list = g_strjoinv (", ", (char **) allowed);
          if (allowed[0] == NULL)
            FAIL (msg, cid, ARB_TRADING_ERROR_VALIDATION, "unknown query parameter \"%s\" (this path takes none)",
                  name);
          else if (near != NULL)
            FAIL (msg, cid, ARB_TRADING_ERROR_VALIDATION,
                  "unknown query parameter \"%s\" (did you mean \"%s\"? allowed: %s)", name, near, list);
          else
            FAIL (msg, cid, ARB_TRADING_ERROR_VALIDATION, "unknown query parameter \"%s\" (allowed: %s)", name,
                  list);
          return FALSE;
        }
      if (!g_hash_table_add (seen, g_steal_pointer (&name)))
        {
          FAIL (msg, cid, ARB_TRADING_ERROR_VALIDATION, "query parameter \"%s\" is given twice", attr);
          return FALSE;
        }
    }
  if (error != NULL)
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_VALIDATION, "the query string is malformed: %s", error->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
arb_api_handle (ArbApi *api, gpointer m, const char *path, const char *cid)
{
  static const char *const none[] = { NULL };
  static const char *const q_assessments[] = { "userId", "limit", "cursor", NULL };
  static const char *const q_positions[] = { "assessmentId", "status", "limit", "cursor", NULL };
  static const char *const q_trades[] = { "assessmentId", "limit", "cursor", NULL };
  SoupServerMessage *msg = m;
  g_autoptr(ArbPrincipal) who = NULL;
  GUri *uri = soup_server_message_get_uri (msg);
  const char *query_text = g_uri_get_query (uri);
  g_autoptr(GHashTable) query = query_text != NULL ? soup_form_decode (query_text) : NULL;
  g_auto(GStrv) parts = NULL;
  guint n;

  if (!g_str_equal (path, "/assessments") && !g_str_has_prefix (path, "/assessments/")
      && !g_str_equal (path, "/orders") && !g_str_equal (path, "/positions") && !g_str_has_prefix (path, "/positions/")
      && !g_str_equal (path, "/trades") && !g_str_equal (path, "/markets"))
    return FALSE;

  /* a body over the limit is refused before anything else */
  if (soup_server_message_get_request_body (m)->length > MAX_BODY)
    {
      FAIL (msg, cid, ARB_TRADING_ERROR_PAYLOAD_TOO_LARGE, "the body is over %d bytes", MAX_BODY);
      return TRUE;
    }
  if ((who = authenticate (api, msg, cid)) == NULL)
    return TRUE;

  parts = g_strsplit (path + 1, "/", -1);
  n = g_strv_length (parts);
  if (n == 1 && g_str_equal (parts[0], "orders"))
    {
      if (method_is (msg, "POST"))
        {
          if (query_ok (msg, query_text, none, cid))
            post_orders (api, msg, who, path, cid);
        }
      else
        not_allowed (msg, "POST", cid);
    }
  else if (n == 1 && g_str_equal (parts[0], "assessments"))
    {
      if (method_is (msg, "POST"))
        {
          if (query_ok (msg, query_text, none, cid))
            post_assessments (api, msg, who, cid);
        }
      else if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, q_assessments, cid))
            get_assessments (api, msg, who, query, cid);
        }
      else
        not_allowed (msg, "GET, POST", cid);
    }
  else if (n == 2 && g_str_equal (parts[0], "assessments") && *parts[1] != '\0')
    {
      if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, none, cid))
            get_assessment (api, msg, who, parts[1], cid);
        }
      else
        not_allowed (msg, "GET", cid);
    }
  else if (n == 3 && g_str_equal (parts[0], "assessments") && g_str_equal (parts[2], "events") && *parts[1] != '\0')
    {
      if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, none, cid))
            get_assessment_events (api, msg, who, parts[1], cid);
        }
      else
        not_allowed (msg, "GET", cid);
    }
  else if (n == 1 && g_str_equal (parts[0], "positions"))
    {
      if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, q_positions, cid))
            get_positions (api, msg, who, query, cid);
        }
      else
        not_allowed (msg, "GET", cid);
    }
  else if (n == 3 && g_str_equal (parts[0], "positions") && g_str_equal (parts[2], "close") && *parts[1] != '\0')
    {
      if (method_is (msg, "POST"))
        {
          if (query_ok (msg, query_text, none, cid))
            post_close (api, msg, who, parts[1], cid);
        }
      else
        not_allowed (msg, "POST", cid);
    }
  else if (n == 1 && g_str_equal (parts[0], "trades"))
    {
      if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, q_trades, cid))
            get_trades (api, msg, who, query, cid);
        }
      else
        not_allowed (msg, "GET", cid);
    }
  else if (n == 1 && g_str_equal (parts[0], "markets"))
    {
      if (method_is (msg, "GET"))
        {
          if (query_ok (msg, query_text, none, cid))
            get_markets (api, msg, cid);
        }
      else
        not_allowed (msg, "GET", cid);
    }
  else
    FAIL (msg, cid, ARB_TRADING_ERROR_NOT_FOUND, "no route for %s %s", soup_server_message_get_method (msg), path);
  return TRUE;
}
