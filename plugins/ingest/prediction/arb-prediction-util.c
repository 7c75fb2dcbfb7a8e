/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The rest of what the prediction-market plugins share: one-off REST
 * requests with a timeout, price levels, wire decimals, and market statuses
 * published once per change.
 */

#include <string.h>

#include "arb-prediction-common.h"

/* ------------------------------------------------------------------------ */
/* One-off REST requests                                                    */

typedef struct _HttpRequest HttpRequest;

struct _ArbPredictionHttp {
  ArbInstance *inst;        /* borrowed */
  gint64       timeout_ms;
  SoupSession *own_session; /* owned, nullable */
  GPtrArray   *in_flight;   /* HttpRequest, not owned (each owns itself) */
};

struct _HttpRequest {
  ArbPredictionHttp     *http;      /* NULL once cancelled: nothing else is touched */
  SoupMessage           *msg;       /* owned */
  GCancellable          *cancel;    /* owned */
  GSource               *timer;     /* owned, nullable */
  ArbPredictionHttpDone  done;
  gpointer               plugin;
  gpointer               tag;
  GDestroyNotify         tag_free;
  gboolean               timed_out;
  gint64                 started_us;
};

static void
http_request_free (HttpRequest *r)
{
  arb_prediction_timer_clear (&r->timer);
  g_clear_object (&r->msg);
  g_clear_object (&r->cancel);
  if (r->tag_free != NULL && r->tag != NULL)
    r->tag_free (r->tag);
  g_free (r);
}

ArbPredictionHttp *
arb_prediction_http_new (ArbInstance *inst, gint64 timeout_ms)
{
  ArbPredictionHttp *http = g_new0 (ArbPredictionHttp, 1);

  http->inst = inst;
  http->timeout_ms = MAX (timeout_ms, 1);
  http->in_flight = g_ptr_array_new ();
  return http;
}

SoupSession *
arb_prediction_http_session (ArbPredictionHttp *http)
{
  SoupSession *shared = arb_instance_get_soup_session (http->inst);

  if (shared != NULL)
    return shared;
  if (http->own_session == NULL)
    http->own_session = soup_session_new_with_options ("user-agent", "arbiter-ingest", "proxy-resolver", NULL, NULL);
  return http->own_session;
}

static gboolean
http_on_timeout (gpointer data)
{
  HttpRequest *r = data;

  g_clear_pointer (&r->timer, g_source_unref);
  r->timed_out = TRUE;
  g_cancellable_cancel (r->cancel);
  return G_SOURCE_REMOVE;
}

static void
http_on_done (GObject *source, GAsyncResult *result, gpointer data)
{
  HttpRequest *r = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  ArbPredictionHttp *http = r->http;

  if (http == NULL)
    {
      http_request_free (r);
      return;
    }
  g_ptr_array_remove_fast (http->in_flight, r);
  arb_prediction_timer_clear (&r->timer);
  arb_instance_histogram_observe (http->inst, "request_duration_seconds",
                                  (gdouble) (g_get_monotonic_time () - r->started_us) / G_USEC_PER_SEC);
  if (body == NULL)
    {
      g_autofree char *where = arb_prediction_where (soup_message_get_uri (r->msg));
      g_autoptr(GError) why = NULL;

      arb_instance_counter_add (http->inst, "request_errors_total", 1);
      if (r->timed_out)
        why = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "no answer from %s within %" G_GINT64_FORMAT " ms",
                           where, http->timeout_ms);
      else
        why = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "cannot reach %s: %s", where, error->message);
      r->done (r->plugin, r->tag, r->msg, NULL, why);
    }
  else
    r->done (r->plugin, r->tag, r->msg, body, NULL);
  http_request_free (r);
}

void
arb_prediction_http_send (ArbPredictionHttp *http, SoupMessage *msg, ArbPredictionHttpDone done, gpointer plugin,
                          gpointer tag, GDestroyNotify tag_free)
{
  HttpRequest *r = g_new0 (HttpRequest, 1);
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

  if (soup_message_headers_get_one (headers, "Accept") == NULL)
    soup_message_headers_replace (headers, "Accept", "application/json");
  r->http = http;
  r->msg = msg;
  r->cancel = g_cancellable_new ();
  r->done = done;
  r->plugin = plugin;
  r->tag = tag;
  r->tag_free = tag_free;
  r->started_us = g_get_monotonic_time ();
  r->timer = arb_prediction_timer_new (http->inst, http->timeout_ms, http_on_timeout, r);
  g_ptr_array_add (http->in_flight, r);
  arb_instance_counter_add (http->inst, "requests_total", 1);
  soup_session_send_and_read_async (arb_prediction_http_session (http), msg, G_PRIORITY_DEFAULT, r->cancel,
                                    http_on_done, r);
}

guint
arb_prediction_http_in_flight (ArbPredictionHttp *http)
{
  return http->in_flight->len;
}

void
arb_prediction_http_cancel_all (ArbPredictionHttp *http)
{
  while (http->in_flight->len > 0)
    {
      HttpRequest *r = g_ptr_array_steal_index_fast (http->in_flight, http->in_flight->len - 1);

      /* its callback still runs, sees http == NULL and only frees it */
      r->http = NULL;
      arb_prediction_timer_clear (&r->timer);
      g_cancellable_cancel (r->cancel);
    }
}

void
arb_prediction_http_free (ArbPredictionHttp *http)
{
  if (http == NULL)
    return;
  arb_prediction_http_cancel_all (http);
  g_ptr_array_unref (http->in_flight);
  g_clear_object (&http->own_session);
  g_free (http);
}

/* ------------------------------------------------------------------------ */
/* Price levels: a sorted array, small and cache-friendly                   */

typedef struct {
  gint64 price;
  gint64 size;
} Level;

struct _ArbPredictionLevels {
  GArray *levels; /* Level, by price ascending */
};

ArbPredictionLevels *
arb_prediction_levels_new (void)
{
  ArbPredictionLevels *l = g_new0 (ArbPredictionLevels, 1);
  l->levels = g_array_new (FALSE, FALSE, sizeof (Level));
  return l;
}

void
arb_prediction_levels_free (ArbPredictionLevels *l)
{
  if (l == NULL)
    return;
  g_array_unref (l->levels);
  g_free (l);
}

void
arb_prediction_levels_clear (ArbPredictionLevels *l)
{
  g_array_set_size (l->levels, 0);
}

/* the index of @price, or where it would go (*found FALSE) */
static guint
levels_find (ArbPredictionLevels *l, gint64 price, gboolean *found)
{
  guint lo = 0, hi = l->levels->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      gint64 p = g_array_index (l->levels, Level, mid).price;
      if (p == price)
        {
          *found = TRUE;
          return mid;
        }
      if (p < price)
        lo = mid + 1;
      else
        hi = mid;
    }
  *found = FALSE;
  return lo;
}

void
arb_prediction_levels_set (ArbPredictionLevels *l, ArbDecimal price, ArbDecimal size)
{
  gboolean found;
  guint i = levels_find (l, price.raw, &found);

  if (size.raw <= 0)
    {
      if (found)
        g_array_remove_index (l->levels, i);
      return;
    }
  if (found)
    g_array_index (l->levels, Level, i).size = size.raw;
  else
    {
      Level lv = { price.raw, size.raw };
      g_array_insert_val (l->levels, i, lv);
    }
}

gboolean
arb_prediction_levels_add (ArbPredictionLevels *l, ArbDecimal price, ArbDecimal delta)
{
  gboolean found;
  guint i = levels_find (l, price.raw, &found);
  gint64 now = found ? g_array_index (l->levels, Level, i).size : 0;

  if ((delta.raw < 0 && now < -delta.raw) || (delta.raw > 0 && now > G_MAXINT64 - delta.raw))
    return FALSE;
  arb_prediction_levels_set (l, price, arb_decimal_from_raw (now + delta.raw));
  return TRUE;
}

gboolean
arb_prediction_levels_max (ArbPredictionLevels *l, ArbDecimal *price, ArbDecimal *size)
{
  Level *lv;

  if (l->levels->len == 0)
    return FALSE;
  lv = &g_array_index (l->levels, Level, l->levels->len - 1);
  *price = arb_decimal_from_raw (lv->price);
  if (size != NULL)
    *size = arb_decimal_from_raw (lv->size);
  return TRUE;
}

gboolean
arb_prediction_levels_min (ArbPredictionLevels *l, ArbDecimal *price, ArbDecimal *size)
{
  Level *lv;

  if (l->levels->len == 0)
    return FALSE;
  lv = &g_array_index (l->levels, Level, 0);
  *price = arb_decimal_from_raw (lv->price);
  if (size != NULL)
    *size = arb_decimal_from_raw (lv->size);
  return TRUE;
}

guint
arb_prediction_levels_count (ArbPredictionLevels *l)
{
  return l->levels->len;
}

ArbDecimal
arb_prediction_levels_get (ArbPredictionLevels *l, ArbDecimal price)
{
  gboolean found;
  guint i = levels_find (l, price.raw, &found);

  return arb_decimal_from_raw (found ? g_array_index (l->levels, Level, i).size : 0);
}

/* ------------------------------------------------------------------------ */
/* Decimals from the wire                                                   */

gboolean
arb_prediction_decimal (const char *text, ArbDecimal *out)
{
  const char *p = text;
  gint64 ip = 0, fp = 0;
  int places = 0;
  gboolean neg = FALSE, digits = FALSE;

  if (text == NULL)
    return FALSE;
  /* the plain form only: [-]digits[.digits], at most 8 places, no exponent,
   * no blanks; anything else is not a price we can trust */
  if (*p == '-')
    {
      neg = TRUE;
      p++;
    }
  for (; g_ascii_isdigit (*p); p++)
    {
      if (ip > (G_MAXINT64 / ARB_DECIMAL_SCALE) / 10)
        return FALSE;
      ip = ip * 10 + (*p - '0');
      digits = TRUE;
    }
  if (!digits)
    return FALSE;
  if (*p == '.')
    {
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      for (; g_ascii_isdigit (*p); p++)
        {
          if (places == ARB_DECIMAL_PLACES)
            {
              /* trailing zeros past the eighth place are harmless */
              if (*p != '0')
                return FALSE;
              continue;
            }
          fp = fp * 10 + (*p - '0');
          places++;
        }
    }
  if (*p != '\0')
    return FALSE;
  for (; places < ARB_DECIMAL_PLACES; places++)
    fp *= 10;
  *out = arb_decimal_from_raw ((neg ? -1 : 1) * (ip * ARB_DECIMAL_SCALE + fp));
  return TRUE;
}

gboolean
arb_prediction_price (const char *text, ArbDecimal *out)
{
  ArbDecimal d;

  if (!arb_prediction_decimal (text, &d) || d.raw < 0 || d.raw > ARB_DECIMAL_SCALE)
    return FALSE;
  *out = d;
  return TRUE;
}

gboolean
arb_prediction_cents (gint64 cents, ArbDecimal *out)
{
  if (cents < 0 || cents > 100)
    return FALSE;
  *out = arb_decimal_from_raw (cents * (ARB_DECIMAL_SCALE / 100));
  return TRUE;
}

ArbDecimal
arb_prediction_complement (ArbDecimal p)
{
  return arb_decimal_from_raw (ARB_DECIMAL_SCALE - p.raw);
}

gboolean
arb_prediction_ms_member (JsonObject *o, const char *member, gint64 *out_us)
{
  JsonNode *n = json_object_get_member (o, member);
  gint64 ms = 0;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  if (json_node_get_value_type (n) == G_TYPE_STRING)
    {
      const char *s = json_node_get_string (n);
      char *end = NULL;
      if (s == NULL || !g_ascii_isdigit (*s) || strlen (s) > 15)
        return FALSE;
      ms = g_ascii_strtoll (s, &end, 10);
      if (end == NULL || *end != '\0')
        return FALSE;
    }
  else if (json_node_get_value_type (n) == G_TYPE_INT64)
    ms = json_node_get_int (n);
  else
    return FALSE;
  /* 2001 to 2286: anything else is not a time in milliseconds */
  if (ms < G_GINT64_CONSTANT (1000000000000) || ms > G_GINT64_CONSTANT (9999999999999))
    return FALSE;
  *out_us = ms * 1000;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Statuses                                                                 */

typedef struct {
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     settlement;
} StatusEntry;

struct _ArbPredictionStatus {
  ArbInstance *inst;
  GHashTable  *last;   /* market (owned) → StatusEntry (owned) */
  GHashTable  *events; /* market (owned) → event id (owned), as published */
};

ArbPredictionStatus *
arb_prediction_status_new (ArbInstance *inst)
{
  ArbPredictionStatus *s = g_new0 (ArbPredictionStatus, 1);

  s->inst = inst;
  s->last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  s->events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return s;
}

void
arb_prediction_status_free (ArbPredictionStatus *s)
{
  if (s == NULL)
    return;
  g_hash_table_unref (s->last);
  g_hash_table_unref (s->events);
  g_free (s);
}

gboolean
arb_prediction_status_publish (ArbPredictionStatus *s, const char *market, ArbMarketState state,
                               const ArbDecimal *settlement, const char *reason, gint64 source_time_us)
{
  StatusEntry *e = g_hash_table_lookup (s->last, market);
  g_autoptr(GError) error = NULL;

  if (e != NULL && e->state == state && e->has_settlement == (settlement != NULL)
      && (settlement == NULL || e->settlement.raw == settlement->raw))
    return FALSE;
  if (!arb_instance_publish_status (s->inst, market, state, settlement, reason, source_time_us, &error))
    {
      arb_instance_counter_add (s->inst, "publish_errors_total", 1);
      arb_warning (s->inst, "the host refused the status of %s: %s", market, error->message);
      return FALSE;
    }
  if (e == NULL)
    {
      e = g_new0 (StatusEntry, 1);
      g_hash_table_insert (s->last, g_strdup (market), e);
    }
  e->state = state;
  e->has_settlement = settlement != NULL;
  e->settlement = settlement != NULL ? *settlement : ARB_DECIMAL_ZERO;
  arb_instance_counter_add (s->inst, "statuses_published_total", 1);
  return TRUE;
}

gboolean
arb_prediction_status_get (ArbPredictionStatus *s, const char *market, ArbMarketState *state, ArbDecimal *settlement,
                           gboolean *has_settlement)
{
  StatusEntry *e = g_hash_table_lookup (s->last, market);

  if (e == NULL)
    return FALSE;
  if (state != NULL)
    *state = e->state;
  if (settlement != NULL)
    *settlement = e->settlement;
  if (has_settlement != NULL)
    *has_settlement = e->has_settlement;
  return TRUE;
}

gboolean
arb_prediction_status_publish_event (ArbPredictionStatus *s, const char *market, const char *event)
{
  const char *last = g_hash_table_lookup (s->events, market);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (last, event) == 0)
    return FALSE;
  if (!arb_instance_publish_market_event (s->inst, market, event, &error))
    {
      arb_instance_counter_add (s->inst, "publish_errors_total", 1);
      arb_warning (s->inst, "the host refused the event of %s: %s", market, error->message);
      return FALSE;
    }
  g_hash_table_replace (s->events, g_strdup (market), g_strdup (event));
  arb_instance_counter_add (s->inst, "market_events_published_total", 1);
  return TRUE;
}

const char *
arb_prediction_status_get_event (ArbPredictionStatus *s, const char *market)
{
  return g_hash_table_lookup (s->events, market);
}

gboolean
arb_prediction_state_is_final (ArbMarketState state)
{
  return state == ARB_MARKET_RESOLVED || state == ARB_MARKET_CANCELLED;
}
