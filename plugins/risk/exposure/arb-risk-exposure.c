/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* risk-exposure: caps how much an assessment holds at once: open positions,
 * notional per market, and for prediction markets the cost held across all
 * outcomes of one event. Checked before each order; nothing to check on a
 * mark (prices do not change what is held).
 *
 * The plugin API knows markets, not events, and cannot list the markets an
 * account holds; so the event of a market is derived from its id here
 * (Kalshi) or is the market itself (Polymarket), and the markets of an event
 * that an account holds are the ones this instance saw orders for
 * (README.md says what that misses and which API additions would fix it). */
#include <string.h>

#include "arb-risk-common.h"

typedef struct {
  ArbInstance *inst;
  gboolean     has_max_positions;
  gint64       max_positions;
  gboolean     has_market_pct;
  ArbDecimal   market_pct;
  gboolean     has_event_pct;
  ArbDecimal   event_pct;
  gboolean     kalshi_event_ticker; /* kalshi_event=event; else one market's yes and no */
  GHashTable  *accounts;            /* assessment id → GHashTable of market ids (a set) */
} Exposure;

static const ArbConfigKey exposure_config[] = {
  { "max_open_positions", ARB_CFG_INT, 0, NULL, 1, 1000000, NULL,
    "most positions an assessment may hold open at once, the order's included; unset: no limit" },
  { "max_position_notional_pct", ARB_CFG_DECIMAL, 0, NULL, 0, 100000, NULL,
    "largest notional (entry × quantity) held in one market, the order's included, in percent of the starting "
    "balance (25 = 25%); unset: no limit" },
  { "max_event_exposure_pct", ARB_CFG_DECIMAL, 0, NULL, 0, 100000, NULL,
    "prediction markets: largest cost (price × shares) held across all outcomes of one event, the order's "
    "included, in percent of the starting balance; unset: no limit" },
  { "kalshi_event", ARB_CFG_ENUM, 0, "event", 0, 0, "event,market",
    "what one Kalshi event is: event (every market whose ticker shares the event ticker, the ticker up to its "
    "last '-': KXHIGHNY-26NOV21-B50.5 is in KXHIGHNY-26NOV21) or market (the yes and no sides of one ticker)" },
  { NULL }
};

static void
exposure_destroy (gpointer data)
{
  Exposure *self = data;
  if (self == NULL)
    return;
  g_clear_pointer (&self->accounts, g_hash_table_unref);
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Exposure, exposure_destroy)

static gpointer
exposure_create (ArbInstance *inst, GError **error)
{
  g_autoptr(Exposure) self = g_new0 (Exposure, 1);

  self->inst = inst;
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref);
  self->has_max_positions = arb_instance_has_key (inst, "max_open_positions");
  self->max_positions = arb_instance_get_int (inst, "max_open_positions");
  self->has_market_pct = arb_instance_has_key (inst, "max_position_notional_pct");
  self->market_pct = arb_instance_get_decimal (inst, "max_position_notional_pct");
  self->has_event_pct = arb_instance_has_key (inst, "max_event_exposure_pct");
  self->event_pct = arb_instance_get_decimal (inst, "max_event_exposure_pct");
  self->kalshi_event_ticker = g_strcmp0 (arb_instance_get_string (inst, "kalshi_event"), "market") != 0;
  if (!self->has_max_positions && !self->has_market_pct && !self->has_event_pct)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "nothing to check: set max_open_positions, max_position_notional_pct or max_event_exposure_pct");
      return NULL;
    }
  if ((self->has_market_pct && self->market_pct.raw <= 0) || (self->has_event_pct && self->event_pct.raw <= 0))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "%s must be above 0 (leave it out for no limit)",
                   self->has_market_pct && self->market_pct.raw <= 0 ? "max_position_notional_pct"
                                                                     : "max_event_exposure_pct");
      return NULL;
    }
  return g_steal_pointer (&self);
}

static gboolean
exposure_start (gpointer data, GError **error)
{
  Exposure *self = data;
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, NULL);
  return TRUE;
}

static void
exposure_stop (gpointer data)
{
}

/* ---- events ------------------------------------------------------------------ */

/* The event of a prediction market, as the length of the prefix of @market
 * that names it (so nothing is allocated): "kalshi:KXHIGHNY-26NOV21" of
 * "kalshi:KXHIGHNY-26NOV21-B50.5:yes" (or "kalshi:KXHIGHNY-26NOV21-B50.5"
 * with kalshi_event=market); a Polymarket token is its own event. */
static gsize
event_length (Exposure *self, const char *market)
{
  gsize len = strlen (market);

  if (g_str_has_prefix (market, "kalshi:"))
    {
      const char *ticker = market + strlen ("kalshi:");
      const char *side = strrchr (ticker, ':');
      const char *dash;
      gsize ticker_len = side != NULL ? (gsize) (side - ticker) : strlen (ticker);

      if (!self->kalshi_event_ticker)
        return (gsize) (ticker - market) + ticker_len;
      /* the event ticker is the market ticker up to its last '-' */
      dash = g_strrstr_len (ticker, (gssize) ticker_len, "-");
      return (gsize) (ticker - market) + (dash != NULL ? (gsize) (dash - ticker) : ticker_len);
    }
  return len;
}

static gboolean
same_event (Exposure *self, const char *market, const char *event, gsize event_len)
{
  return strncmp (market, event, event_len) == 0 && event_length (self, market) == event_len;
}

/* the markets this instance saw @account order in; created on first use */
static GHashTable *
markets_of (Exposure *self, const char *account_id)
{
  GHashTable *set = g_hash_table_lookup (self->accounts, account_id);
  if (set == NULL)
    {
      set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (self->accounts, g_strdup (account_id), set);
    }
  return set;
}

/* Σ notional held in the markets of @event; markets found empty are
 * forgotten, since a new position there passes through check_order again */
static gboolean
event_notional (Exposure *self, const ArbAccountView *account, GHashTable *known, const char *event,
                gsize event_len, const char *order_market, ArbDecimal *out, GError **error)
{
  GHashTableIter it;
  gpointer key;
  gboolean seen_order_market = FALSE;

  *out = ARB_DECIMAL_ZERO;
  g_hash_table_iter_init (&it, known);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *market = key;
      ArbDecimal held;
      if (!same_event (self, market, event, event_len))
        continue;
      held = arb_account_view_get_market_notional (account, market);
      seen_order_market |= g_str_equal (market, order_market);
      if (held.raw == 0)
        {
          g_hash_table_iter_remove (&it);
          continue;
        }
      if (!arb_decimal_add (*out, held, out, error))
        return FALSE;
    }
  if (!seen_order_market)
    {
      ArbDecimal held = arb_account_view_get_market_notional (account, order_market);
      if (!arb_decimal_add (*out, held, out, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- the check -------------------------------------------------------------- */

static gboolean
exposure_check_order (gpointer data, const ArbOrderView *order, const ArbAccountView *account,
                      ArbRiskVerdict *verdict, GError **error)
{
  Exposure *self = data;
  const char *market = arb_order_view_get_market (order);
  ArbDecimal start = arb_account_view_get_starting_balance (account);
  ArbDecimal notional = arb_order_view_get_notional (order);
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE], c[ARB_DECIMAL_BUFSIZE], d[ARB_DECIMAL_BUFSIZE],
      e[ARB_DECIMAL_BUFSIZE], p[ARB_DECIMAL_BUFSIZE];
  g_autoptr(GError) local = NULL;

  if (self->has_max_positions && (gint64) arb_account_view_get_n_positions (account) >= self->max_positions)
    {
      guint n = arb_account_view_get_n_positions (account);
      arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_LIMIT,
                               "%u position%s open: the order would open one more, above max_open_positions %"
                               G_GINT64_FORMAT,
                               n, n == 1 ? " is" : "s are", self->max_positions);
      return TRUE;
    }
  if (self->has_market_pct)
    {
      ArbDecimal held = arb_account_view_get_market_notional (account, market);
      ArbDecimal total, limit;
      if (!arb_decimal_add (held, notional, &total, &local)
          || !arb_risk_percent_of (start, self->market_pct, &limit, &local))
        {
          arb_risk_set_range_error (error, "the notional in the market cannot be computed", local);
          return FALSE;
        }
      if (arb_decimal_cmp (total, limit) > 0)
        {
          arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_LIMIT,
                                   "notional in %s would be %s (held %s + order %s), above %s%% of starting balance "
                                   "%s = %s",
                                   market, arb_risk_format (total, a), arb_risk_format (held, b),
                                   arb_risk_format (notional, c), arb_risk_format_pct (self->market_pct, p),
                                   arb_risk_format (start, d), arb_risk_format (limit, e));
          return TRUE;
        }
    }
  if (self->has_event_pct && arb_order_view_is_prediction (order))
    {
      GHashTable *known = markets_of (self, arb_account_view_get_id (account));
      gsize event_len = event_length (self, market);
      ArbDecimal held, total, limit;

      /* the other side of a Kalshi market is in the event whatever the
       * instance saw: ask for it directly */
      if (g_str_has_prefix (market, "kalshi:") && (g_str_has_suffix (market, ":yes") || g_str_has_suffix (market, ":no")))
        {
          gboolean yes = g_str_has_suffix (market, ":yes");
          int base = (int) (strlen (market) - (yes ? strlen (":yes") : strlen (":no")));
          char other[512];
          /* market ids are at most 256 bytes; a longer one has no other side to look up */
          if (g_snprintf (other, sizeof other, "%.*s:%s", base, market, yes ? "no" : "yes") < (int) sizeof other
              && !g_hash_table_contains (known, other) && arb_account_view_get_market_notional (account, other).raw != 0)
            g_hash_table_add (known, g_strdup (other));
        }
      if (!event_notional (self, account, known, market, event_len, market, &held, &local)
          || !arb_decimal_add (held, notional, &total, &local)
          || !arb_risk_percent_of (start, self->event_pct, &limit, &local))
        {
          arb_risk_set_range_error (error, "the exposure to the event cannot be computed", local);
          return FALSE;
        }
      if (arb_decimal_cmp (total, limit) > 0)
        {
          arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_LIMIT,
                                   "exposure to event %.*s would be %s (held %s + order %s), above %s%% of starting "
                                   "balance %s = %s",
                                   (int) event_len, market, arb_risk_format (total, a), arb_risk_format (held, b),
                                   arb_risk_format (notional, c), arb_risk_format_pct (self->event_pct, p),
                                   arb_risk_format (start, d), arb_risk_format (limit, e));
          return TRUE;
        }
      /* allowed: remember the market, for the next order in this event */
      if (!g_hash_table_contains (known, market))
        g_hash_table_add (known, g_strdup (market));
    }
  return TRUE;
}

static const ArbRiskVTable exposure_vtable = {
  .size = sizeof (ArbRiskVTable),
  .create = exposure_create,
  .start = exposure_start,
  .check_order = exposure_check_order,
  /* a price move does not change what is held; and the position count is
   * not reported for GET /assessments/{id}, whose "binds first" compares
   * rooms across rules as amounts of money */
  .on_mark = NULL,
  .stop = exposure_stop,
  .destroy = exposure_destroy,
};

static const ArbPluginDesc exposure_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "risk-exposure",
  .version = "0.1.0",
  .summary = "Cap open positions, notional per market and prediction exposure per event",
  .kind = ARB_PLUGIN_RISK,
  .config = exposure_config,
  .vtable = &exposure_vtable,
};

ARB_PLUGIN_DEFINE (risk_exposure, exposure_desc)
