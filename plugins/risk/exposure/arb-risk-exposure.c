/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* risk-exposure: caps how much an assessment holds at once: open positions,
 * notional per market, and for prediction markets the cost held across all
 * outcomes of one event. Checked before each order; nothing to check on a
 * mark (prices do not change what is held).
 *
 * Events come from the host (plugin ABI 1.1): the ingest instances publish
 * which event each market belongs to (Polymarket: every outcome token of
 * every market of one Gamma event; Kalshi: both sides of every market of one
 * event ticker), arb_order_view_get_event() names the order's, and
 * arb_account_view_get_event_notional() sums what the account holds in all
 * of its markets from the host's per-market sums. So the plugin keeps no
 * state of its own, and what a restart loaded from the store counts at once.
 * A market nobody published an event for is an event of its own; for a
 * Kalshi market that means its yes and no sides together, which is also what
 * kalshi_event=market asks for (README.md). */
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
    "what one Kalshi event is: event (every market of the event ticker ingest-kalshi published, e.g. "
    "KXHIGHNY-26NOV21-B50.5 and KXHIGHNY-26NOV21-T54 in KXHIGHNY-26NOV21; a market without one: its yes and no "
    "sides) or market (the yes and no sides of one ticker)" },
  { NULL }
};

static void
exposure_destroy (gpointer data)
{
  Exposure *self = data;
  if (self == NULL)
    return;
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Exposure, exposure_destroy)

static gpointer
exposure_create (ArbInstance *inst, GError **error)
{
  g_autoptr(Exposure) self = g_new0 (Exposure, 1);

  self->inst = inst;
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

/* "kalshi:<TICKER>" of "kalshi:<TICKER>:yes|no" as its length, and the
 * other side's market id in @other; 0 for any other market (market ids are
 * at most 200 bytes, so @other always has room) */
static gsize
kalshi_market (const char *market, char other[512])
{
  gboolean yes;
  gsize base;

  if (!g_str_has_prefix (market, "kalshi:"))
    return 0;
  yes = g_str_has_suffix (market, ":yes");
  if (!yes && !g_str_has_suffix (market, ":no"))
    return 0;
  base = strlen (market) - (yes ? strlen (":yes") : strlen (":no"));
  if (g_snprintf (other, 512, "%.*s:%s", (int) base, market, yes ? "no" : "yes") >= 512)
    return 0;
  return base;
}

/* Σ notional held in the event of @order, and the event's name for a
 * message (@name_len bytes of *@name) */
static gboolean
event_held (Exposure *self, const ArbOrderView *order, const ArbAccountView *account, const char **name,
            int *name_len, ArbDecimal *out, GError **error)
{
  const char *market = arb_order_view_get_market (order);
  const char *event = arb_order_view_get_event (order);
  char other[512];
  gsize base = kalshi_market (market, other);

  /* one Kalshi market's two sides: asked for (kalshi_event=market), or all
   * that is known of the event (nobody published one for the market) */
  if (base > 0 && (!self->kalshi_event_ticker || g_str_equal (event, market)))
    {
      *name = market;
      *name_len = (int) base;
      return arb_decimal_add (arb_account_view_get_market_notional (account, market),
                              arb_account_view_get_market_notional (account, other), out, error);
    }
  *name = event;
  *name_len = (int) strlen (event);
  if (!arb_account_view_get_event_notional (account, event, out))
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW, "the cost held in %s is beyond the range",
                   event);
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
      const char *name = NULL;
      int name_len = 0;
      ArbDecimal held, total, limit;

      if (!event_held (self, order, account, &name, &name_len, &held, &local)
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
                                   name_len, name, arb_risk_format (total, a), arb_risk_format (held, b),
                                   arb_risk_format (notional, c), arb_risk_format_pct (self->event_pct, p),
                                   arb_risk_format (start, d), arb_risk_format (limit, e));
          return TRUE;
        }
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
  .version = "0.2.0",
  .summary = "Cap open positions, notional per market and prediction exposure per event",
  .kind = ARB_PLUGIN_RISK,
  .config = exposure_config,
  .vtable = &exposure_vtable,
};

ARB_PLUGIN_DEFINE (risk_exposure, exposure_desc)
