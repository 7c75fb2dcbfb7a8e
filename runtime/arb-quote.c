/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-host-private.h"

enum { HAS_BID = 1, HAS_ASK = 2, HAS_LAST = 4 };

ArbQuote *
arb_quote_new (const char *market_id)
{
  ArbQuote *q = g_new0 (ArbQuote, 1);
  g_return_val_if_fail (market_id != NULL, NULL);
  q->ref_count = 1;
  q->market = g_strdup (market_id);
  return q;
}

ArbQuote *
arb_quote_ref (ArbQuote *quote)
{
  g_return_val_if_fail (quote != NULL, NULL);
  g_atomic_int_inc (&quote->ref_count);
  return quote;
}

void
arb_quote_unref (ArbQuote *quote)
{
  if (quote == NULL)
    return;
  if (!g_atomic_int_dec_and_test (&quote->ref_count))
    return;
  g_free (quote->market);
  g_free (quote->source);
  g_free (quote);
}

ArbQuote *
arb_quote_copy (const ArbQuote *quote)
{
  ArbQuote *q = g_new0 (ArbQuote, 1);
  *q = *quote;
  q->ref_count = 1;
  q->market = g_strdup (quote->market);
  q->source = g_strdup (quote->source);
  return q;
}

void
arb_quote_set_bid (ArbQuote *quote, ArbDecimal bid)
{
  quote->bid = bid;
  quote->has |= HAS_BID;
}

void
arb_quote_set_ask (ArbQuote *quote, ArbDecimal ask)
{
  quote->ask = ask;
  quote->has |= HAS_ASK;
}

void
arb_quote_set_last (ArbQuote *quote, ArbDecimal last)
{
  quote->last = last;
  quote->has |= HAS_LAST;
}

void
arb_quote_set_source_time (ArbQuote *quote, gint64 unix_us)
{
  quote->source_time_us = unix_us;
}

const char *
arb_quote_get_market (const ArbQuote *quote)
{
  return quote->market;
}

gboolean
arb_quote_get_bid (const ArbQuote *quote, ArbDecimal *out)
{
  if (!(quote->has & HAS_BID))
    return FALSE;
  *out = quote->bid;
  return TRUE;
}

gboolean
arb_quote_get_ask (const ArbQuote *quote, ArbDecimal *out)
{
  if (!(quote->has & HAS_ASK))
    return FALSE;
  *out = quote->ask;
  return TRUE;
}

gboolean
arb_quote_get_last (const ArbQuote *quote, ArbDecimal *out)
{
  if (!(quote->has & HAS_LAST))
    return FALSE;
  *out = quote->last;
  return TRUE;
}

gint64
arb_quote_get_source_time (const ArbQuote *quote)
{
  return quote->source_time_us;
}

gint64
arb_quote_get_receive_time (const ArbQuote *quote)
{
  return quote->receive_time_us;
}

const char *
arb_quote_get_source (const ArbQuote *quote)
{
  return quote->source;
}

const char *
arb_market_class (const char *market_id)
{
  if (g_str_has_prefix (market_id, "crypto:"))
    return "crypto";
  if (g_str_has_prefix (market_id, "polymarket:") || g_str_has_prefix (market_id, "kalshi:"))
    return "prediction";
  return NULL;
}

gboolean
arb_market_id_is_valid (const char *market_id)
{
  const char *colon;
  gsize len;

  if (market_id == NULL || arb_market_class (market_id) == NULL)
    return FALSE;
  len = strlen (market_id);
  if (len > 200)
    return FALSE;
  colon = strchr (market_id, ':');
  if (colon[1] == '\0')
    return FALSE;
  for (const char *p = colon + 1; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.' || *p == ':'))
      return FALSE;
  /* kalshi:<TICKER>:yes|no names one side of a binary market */
  if (g_str_has_prefix (market_id, "kalshi:") && !g_str_has_suffix (market_id, ":yes")
      && !g_str_has_suffix (market_id, ":no"))
    return FALSE;
  return TRUE;
}

gboolean
arb_event_id_is_valid (const char *event_id, const char **why)
{
  const char *colon;
  const char *dummy;

  if (why == NULL)
    why = &dummy;
  if (event_id == NULL || *event_id == '\0')
    {
      *why = "no event id";
      return FALSE;
    }
  if (strlen (event_id) > 200)
    {
      *why = "longer than 200 bytes";
      return FALSE;
    }
  colon = strchr (event_id, ':');
  if (colon == NULL || colon == event_id || colon[1] == '\0')
    {
      *why = "not namespaced (NAMESPACE:ID, for example polymarket-event:903)";
      return FALSE;
    }
  for (const char *p = event_id; p < colon; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '-'))
      {
        *why = "the namespace is not lower case letters, digits and '-'";
        return FALSE;
      }
  /* an event named like a market would be taken for that market's own
   * event (a market nobody gave an event is its own) */
  if (arb_market_class (event_id) != NULL)
    {
      *why = "in a market namespace (crypto, polymarket, kalshi); use the plugin's own, such as polymarket-event";
      return FALSE;
    }
  for (const char *p = colon + 1; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.' || *p == ':'))
      {
        *why = "the id has a character other than letters, digits and -_.:";
        return FALSE;
      }
  return TRUE;
}

gboolean
arb_quote_validate (const ArbQuote *quote, GError **error)
{
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE];

  if (!arb_market_id_is_valid (quote->market))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG,
                   "quote for \"%s\": not a market id (crypto:BASE-QUOTE, polymarket:TOKEN, kalshi:TICKER:yes|no)",
                   quote->market);
      return FALSE;
    }
  if (quote->has == 0)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "quote for %s has no price at all", quote->market);
      return FALSE;
    }
  if (((quote->has & HAS_BID) && quote->bid.raw < 0) || ((quote->has & HAS_ASK) && quote->ask.raw <= 0)
      || ((quote->has & HAS_LAST) && quote->last.raw <= 0))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "quote for %s has a negative or zero price",
                   quote->market);
      return FALSE;
    }
  if ((quote->has & (HAS_BID | HAS_ASK)) == (HAS_BID | HAS_ASK) && arb_decimal_cmp (quote->bid, quote->ask) > 0)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "quote for %s has bid %s above ask %s",
                   quote->market, arb_decimal_format (quote->bid, a), arb_decimal_format (quote->ask, b));
      return FALSE;
    }
  return TRUE;
}

const char *
arb_market_state_to_string (ArbMarketState state)
{
  switch (state)
    {
    case ARB_MARKET_OPEN: return "open";
    case ARB_MARKET_HALTED: return "halted";
    case ARB_MARKET_CLOSED: return "closed";
    case ARB_MARKET_DISPUTED: return "disputed";
    case ARB_MARKET_RESOLVED: return "resolved";
    case ARB_MARKET_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}
