/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>


#include "arb-host-private.h"
#include "arb-json-private.h"
#include "arb-util-private.h"

struct _ArbEvent {
  gint     ref_count;
  char    *id;
  char    *type;
  char    *key;
  char    *correlation_id;
  char    *assessment_id;
  gint64   time_us;
  char    *json;
  gsize    json_len;
  gboolean ledger;
};

struct _ArbBatch {
  GPtrArray *events;
};

ArbEvent *
arb_event_new (const char *type, const char *key, const char *assessment_id, const char *correlation_id,
               gint64 time_us, const char *data_json, gboolean ledger)
{
  ArbEvent *ev = g_new0 (ArbEvent, 1);
  ArbJson j;

  ev->ref_count = 1;
  ev->id = arb_uuid_new ();
  ev->type = g_strdup (type);
  ev->key = g_strdup (key);
  ev->assessment_id = g_strdup (assessment_id);
  ev->correlation_id = g_strdup (correlation_id);
  ev->time_us = time_us;
  ev->ledger = ledger;

  /* the envelope around data, which the caller wrote as one JSON object */
  arb_json_init (&j, 256 + (data_json != NULL ? strlen (data_json) : 2));
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "id", ev->id);
  arb_json_kv_string (&j, "type", type);
  arb_json_kv_time (&j, "time", time_us);
  arb_json_kv_string (&j, "correlationId", correlation_id);
  if (assessment_id != NULL)
    arb_json_kv_string (&j, "assessmentId", assessment_id);
  arb_json_key (&j, "data");
  arb_json_raw (&j, data_json != NULL ? data_json : "{}");
  arb_json_end_object (&j);
  ev->json = arb_json_steal (&j, &ev->json_len);
  return ev;
}

ArbEvent *
arb_event_new_from_outbox (const char *id, const char *type, const char *key, const char *assessment_id,
                           const char *correlation_id, gint64 time_us, const char *json)
{
  ArbEvent *ev = g_new0 (ArbEvent, 1);
  ev->ref_count = 1;
  ev->id = g_strdup (id);
  ev->type = g_strdup (type);
  ev->key = g_strdup (key);
  ev->assessment_id = g_strdup (assessment_id);
  ev->correlation_id = g_strdup (correlation_id);
  ev->time_us = time_us;
  ev->json = g_strdup (json);
  ev->json_len = strlen (json);
  ev->ledger = TRUE;
  return ev;
}

ArbEvent *
arb_event_new_quote (const ArbQuote *quote)
{
  ArbJson j;
  g_autofree char *data = NULL;
  ArbDecimal d;

  arb_json_init (&j, 320);
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "market", quote->market);
  if (arb_quote_get_bid (quote, &d))
    arb_json_kv_decimal (&j, "bid", d);
  if (arb_quote_get_ask (quote, &d))
    arb_json_kv_decimal (&j, "ask", d);
  if (arb_quote_get_last (quote, &d))
    arb_json_kv_decimal (&j, "last", d);
  arb_json_kv_string (&j, "source", quote->source);
  arb_json_kv_time (&j, "sourceTime", quote->source_time_us);
  arb_json_kv_time (&j, "receiveTime", quote->receive_time_us);
  arb_json_end_object (&j);
  data = arb_json_steal (&j, NULL);
  return arb_event_new ("quote", quote->market, NULL, arb_current_correlation_id (), quote->receive_time_us, data,
                        FALSE);
}

ArbEvent *
arb_event_new_market_status (const char *market, ArbMarketState state, const ArbDecimal *settlement,
                             const char *reason, const char *source, gint64 source_time_us)
{
  ArbJson j;
  g_autofree char *data = NULL;

  arb_json_init (&j, 256);
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "market", market);
  arb_json_kv_string (&j, "status", arb_market_state_to_string (state));
  if (settlement != NULL)
    arb_json_kv_decimal (&j, "settlement", *settlement);
  if (reason != NULL)
    arb_json_kv_string (&j, "reason", reason);
  arb_json_kv_string (&j, "source", source);
  arb_json_kv_time (&j, "sourceTime", source_time_us);
  arb_json_end_object (&j);
  data = arb_json_steal (&j, NULL);
  return arb_event_new ("market.status", market, NULL, arb_current_correlation_id (), arb_now_us (), data, FALSE);
}

ArbEvent *
arb_event_ref (ArbEvent *event)
{
  g_atomic_int_inc (&event->ref_count);
  return event;
}

void
arb_event_unref (ArbEvent *event)
{
  if (event == NULL || !g_atomic_int_dec_and_test (&event->ref_count))
    return;
  g_free (event->id);
  g_free (event->type);
  g_free (event->key);
  g_free (event->correlation_id);
  g_free (event->assessment_id);
  g_free (event->json);
  g_free (event);
}

const char *
arb_event_get_id (const ArbEvent *event)
{
  return event->id;
}

const char *
arb_event_get_event_type (const ArbEvent *event)
{
  return event->type;
}

const char *
arb_event_get_key (const ArbEvent *event)
{
  return event->key;
}

const char *
arb_event_get_correlation_id (const ArbEvent *event)
{
  return event->correlation_id;
}

gint64
arb_event_get_time (const ArbEvent *event)
{
  return event->time_us;
}

const char *
arb_event_get_json (const ArbEvent *event)
{
  return event->json;
}

gsize
arb_event_get_json_length (const ArbEvent *event)
{
  return event->json_len;
}

gboolean
arb_event_is_ledger (const ArbEvent *event)
{
  return event->ledger;
}

ArbBatch *
arb_batch_new (guint reserve)
{
  ArbBatch *batch = g_new0 (ArbBatch, 1);
  batch->events = g_ptr_array_new_full (reserve, (GDestroyNotify) arb_event_unref);
  return batch;
}

void
arb_batch_add (ArbBatch *batch, ArbEvent *event)
{
  g_ptr_array_add (batch->events, arb_event_ref (event));
}

void
arb_batch_free (ArbBatch *batch)
{
  if (batch == NULL)
    return;
  g_ptr_array_unref (batch->events);
  g_free (batch);
}

guint
arb_batch_get_length (ArbBatch *batch)
{
  return batch->events->len;
}

ArbEvent *
arb_batch_get (ArbBatch *batch, guint index)
{
  g_return_val_if_fail (index < batch->events->len, NULL);
  return g_ptr_array_index (batch->events, index);
}

gboolean
arb_event_type_matches (const char *const *types, const char *type, gboolean ledger)
{
  if (types == NULL || types[0] == NULL)
    return TRUE;
  for (guint i = 0; types[i] != NULL; i++)
    {
      const char *t = types[i];
      if (g_str_equal (t, "all") || g_str_equal (t, type))
        return TRUE;
      if (ledger && g_str_equal (t, "ledger"))
        return TRUE;
      if (!ledger && g_str_equal (t, "market"))
        return TRUE;
      /* "assessment.*" takes every assessment event */
      if (g_str_has_suffix (t, ".*") && strncmp (type, t, strlen (t) - 1) == 0)
        return TRUE;
    }
  return FALSE;
}
