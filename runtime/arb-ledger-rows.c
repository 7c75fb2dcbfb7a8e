/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-ledger-private.h"

static const char *const assessment_status_names[] = { "active", "passed", "failed" };
static const char *const side_names[] = { "long", "short" };
static const char *const reason_names[] = { "open", "close", "stop_loss", "take_profit", "settlement", "liquidation" };

#define NAME_OF(table, v) ((guint) (v) < G_N_ELEMENTS (table) ? table[(v)] : "unknown")

static gboolean
index_of (const char *const *table, guint n, const char *text, int *out)
{
  for (guint i = 0; i < n; i++)
    if (g_strcmp0 (table[i], text) == 0)
      {
        *out = (int) i;
        return TRUE;
      }
  return FALSE;
}

const char *
arb_assessment_status_to_string (ArbAssessmentStatus status)
{
  return NAME_OF (assessment_status_names, status);
}

const char *
arb_position_side_to_string (ArbPositionSide side)
{
  return NAME_OF (side_names, side);
}

const char *
arb_trade_reason_to_string (ArbTradeReason reason)
{
  return NAME_OF (reason_names, reason);
}

gboolean
arb_assessment_status_from_string (const char *text, ArbAssessmentStatus *out)
{
  int i;
  if (!index_of (assessment_status_names, G_N_ELEMENTS (assessment_status_names), text, &i))
    return FALSE;
  *out = (ArbAssessmentStatus) i;
  return TRUE;
}

gboolean
arb_position_side_from_string (const char *text, ArbPositionSide *out)
{
  int i;
  if (!index_of (side_names, G_N_ELEMENTS (side_names), text, &i))
    return FALSE;
  *out = (ArbPositionSide) i;
  return TRUE;
}

gboolean
arb_trade_reason_from_string (const char *text, ArbTradeReason *out)
{
  int i;
  if (!index_of (reason_names, G_N_ELEMENTS (reason_names), text, &i))
    return FALSE;
  *out = (ArbTradeReason) i;
  return TRUE;
}

void
arb_assessment_row_free (ArbAssessmentRow *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->owner);
  g_free (row->program);
  g_free (row->status_reason);
  g_free (row);
}

ArbAssessmentRow *
arb_assessment_row_copy (const ArbAssessmentRow *row)
{
  ArbAssessmentRow *c = g_memdup2 (row, sizeof *row);
  c->id = g_strdup (row->id);
  c->owner = g_strdup (row->owner);
  c->program = g_strdup (row->program);
  c->status_reason = g_strdup (row->status_reason);
  return c;
}

void
arb_position_row_free (ArbPositionRow *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->assessment_id);
  g_free (row->order_id);
  g_free (row->market);
  g_free (row->close_reason);
  g_free (row);
}

ArbPositionRow *
arb_position_row_copy (const ArbPositionRow *row)
{
  ArbPositionRow *c = g_memdup2 (row, sizeof *row);
  c->id = g_strdup (row->id);
  c->assessment_id = g_strdup (row->assessment_id);
  c->order_id = g_strdup (row->order_id);
  c->market = g_strdup (row->market);
  c->close_reason = g_strdup (row->close_reason);
  return c;
}

void
arb_trade_row_free (ArbTradeRow *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->assessment_id);
  g_free (row->order_id);
  g_free (row->position_id);
  g_free (row->market);
  g_free (row->quote_source);
  g_free (row);
}

ArbTradeRow *
arb_trade_row_copy (const ArbTradeRow *row)
{
  ArbTradeRow *c = g_memdup2 (row, sizeof *row);
  c->id = g_strdup (row->id);
  c->assessment_id = g_strdup (row->assessment_id);
  c->order_id = g_strdup (row->order_id);
  c->position_id = g_strdup (row->position_id);
  c->market = g_strdup (row->market);
  c->quote_source = g_strdup (row->quote_source);
  return c;
}

void
arb_order_row_free (ArbOrderRow *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->assessment_id);
  g_free (row->client_order_id);
  g_free (row->market);
  g_free (row->status);
  g_free (row->correlation_id);
  g_free (row);
}

void
arb_outbox_row_free (ArbOutboxRow *row)
{
  if (row == NULL)
    return;
  g_free (row->id);
  g_free (row->type);
  g_free (row->key);
  g_free (row->assessment_id);
  g_free (row->payload);
  g_free (row);
}

void
arb_idempotency_row_free (ArbIdempotencyRow *row)
{
  if (row == NULL)
    return;
  g_free (row->user);
  g_free (row->key);
  g_free (row->request_hash);
  g_free (row->body);
  g_free (row);
}

char *
arb_assessment_lifecycle_to_json (const ArbAssessmentRow *row)
{
  char best[ARB_DECIMAL_BUFSIZE], bal[ARB_DECIMAL_BUFSIZE], day[ARB_DECIMAL_BUFSIZE], eb[ARB_DECIMAL_BUFSIZE],
    ee[ARB_DECIMAL_BUFSIZE];
  return g_strdup_printf ("{\"tradingDays\":%" G_GINT64_FORMAT ",\"lastFillUs\":%" G_GINT64_FORMAT
                          ",\"lastFillDayUs\":%" G_GINT64_FORMAT ",\"bestDayProfit\":\"%s\",\"balanceHwm\":\"%s\""
                          ",\"dayHighEquity\":\"%s\",\"eodHighBalance\":\"%s\",\"eodHighEquity\":\"%s\""
                          ",\"pausedUntilUs\":%" G_GINT64_FORMAT "}",
                          row->trading_days, row->last_fill_us, row->last_fill_day_us,
                          arb_decimal_format (row->best_day_profit, best), arb_decimal_format (row->balance_hwm, bal),
                          arb_decimal_format (row->day_high_equity, day), arb_decimal_format (row->eod_high_balance, eb),
                          arb_decimal_format (row->eod_high_equity, ee), row->paused_until_us);
}

static gboolean
member_decimal (JsonObject *o, const char *name, ArbDecimal fallback, ArbDecimal *out, GError **error)
{
  const char *text = json_object_get_string_member_with_default (o, name, NULL);
  if (text == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  return arb_decimal_parse (text, ARB_ROUND_EXACT, out, error);
}

gboolean
arb_assessment_lifecycle_from_json (ArbAssessmentRow *row, const char *json, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o;

  /* rows from before a counter existed start it from what is known */
  row->balance_hwm = arb_decimal_max (row->starting_balance, row->balance);
  row->day_high_equity = row->day_start_equity;
  row->eod_high_balance = arb_decimal_max (row->starting_balance, row->day_start_balance);
  row->eod_high_equity = arb_decimal_max (row->starting_balance, row->day_start_equity);
  if (json == NULL || *json == '\0')
    return TRUE;
  if (!json_parser_load_from_data (parser, json, -1, error))
    return FALSE;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "lifecycle is not a JSON object");
      return FALSE;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  row->trading_days = json_object_get_int_member_with_default (o, "tradingDays", 0);
  row->last_fill_us = json_object_get_int_member_with_default (o, "lastFillUs", 0);
  row->last_fill_day_us = json_object_get_int_member_with_default (o, "lastFillDayUs", 0);
  row->paused_until_us = json_object_get_int_member_with_default (o, "pausedUntilUs", 0);
  return member_decimal (o, "bestDayProfit", ARB_DECIMAL_ZERO, &row->best_day_profit, error)
         && member_decimal (o, "balanceHwm", row->balance_hwm, &row->balance_hwm, error)
         && member_decimal (o, "dayHighEquity", row->day_high_equity, &row->day_high_equity, error)
         && member_decimal (o, "eodHighBalance", row->eod_high_balance, &row->eod_high_balance, error)
         && member_decimal (o, "eodHighEquity", row->eod_high_equity, &row->eod_high_equity, error);
}
