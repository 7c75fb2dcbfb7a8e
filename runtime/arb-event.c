/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-host-private.h"
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
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *time_text = arb_format_time_us (time_us);

  ev->ref_count = 1;
  ev->id = arb_uuid_new ();
  ev->type = g_strdup (type);
  ev->key = g_strdup (key);
  ev->assessment_id = g_strdup (assessment_id);
  ev->correlation_id = g_strdup (correlation_id);
  ev->time_us = time_us;
  ev->ledger = ledger;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, ev->id);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, time_text);
  json_builder_set_member_name (b, "correlationId");
  if (correlation_id != NULL)
    json_builder_add_string_value (b, correlation_id);
  else
    json_builder_add_null_value (b);
  if (assessment_id != NULL)
    {
      json_builder_set_member_name (b, "assessmentId");
      json_builder_add_string_value (b, assessment_id);
    }
  json_builder_set_member_name (b, "data");
  if (data_json != NULL && json_parser_load_from_data (parser, data_json, -1, NULL))
    json_builder_add_value (b, json_node_copy (json_parser_get_root (parser)));
  else
    {
      json_builder_begin_object (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  ev->json = json_generator_to_data (gen, &ev->json_len);
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

static void
add_decimal (JsonBuilder *b, const char *name, ArbDecimal d)
{
  char buf[ARB_DECIMAL_BUFSIZE];
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, arb_decimal_format (d, buf));
}

static char *
builder_to_json (JsonBuilder *b)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

ArbEvent *
arb_event_new_quote (const ArbQuote *quote)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *data = NULL;
  g_autofree char *st = quote->source_time_us != 0 ? arb_format_time_us (quote->source_time_us) : NULL;
  g_autofree char *rt = arb_format_time_us (quote->receive_time_us);
  ArbDecimal d;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "market");
  json_builder_add_string_value (b, quote->market);
  if (arb_quote_get_bid (quote, &d))
    add_decimal (b, "bid", d);
  if (arb_quote_get_ask (quote, &d))
    add_decimal (b, "ask", d);
  if (arb_quote_get_last (quote, &d))
    add_decimal (b, "last", d);
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, quote->source);
  json_builder_set_member_name (b, "sourceTime");
  if (st != NULL)
    json_builder_add_string_value (b, st);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "receiveTime");
  json_builder_add_string_value (b, rt);
  json_builder_end_object (b);
  data = builder_to_json (b);
  return arb_event_new ("quote", quote->market, NULL, arb_current_correlation_id (), quote->receive_time_us, data,
                        FALSE);
}

ArbEvent *
arb_event_new_market_status (const char *market, ArbMarketState state, const ArbDecimal *settlement,
                             const char *reason, const char *source, gint64 source_time_us)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *data = NULL;
  g_autofree char *st = source_time_us != 0 ? arb_format_time_us (source_time_us) : NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "market");
  json_builder_add_string_value (b, market);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, arb_market_state_to_string (state));
  if (settlement != NULL)
    add_decimal (b, "settlement", *settlement);
  if (reason != NULL)
    {
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, reason);
    }
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, source);
  json_builder_set_member_name (b, "sourceTime");
  if (st != NULL)
    json_builder_add_string_value (b, st);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  data = builder_to_json (b);
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
