/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "arb-risk-common.h"

void
arb_risk_set_range_error (GError **error, const char *what, const GError *cause)
{
  g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL, "%s: %s", what,
               cause != NULL ? cause->message : "out of range");
}

static ArbDecimal
decimal_of_int (gint64 n)
{
  return arb_decimal_from_raw (n * ARB_DECIMAL_SCALE);
}

gboolean
arb_risk_percent_of (ArbDecimal amount, ArbDecimal pct, ArbDecimal *out, GError **error)
{
  return arb_decimal_mul_div (amount, pct, decimal_of_int (100), ARB_ROUND_FLOOR, out, error);
}

gboolean
arb_risk_order_loss (const ArbOrderView *order, ArbRiskLoss *out, GError **error)
{
  ArbDecimal qty = arb_order_view_get_quantity (order);
  ArbDecimal diff, close_notional, factor;
  gboolean is_long = arb_order_view_is_buy (order);

  memset (out, 0, sizeof *out);
  out->entry = arb_order_view_get_price (order);
  out->open_fee = arb_order_view_get_fee (order);
  out->has_stop = arb_order_view_get_stop_loss (order, &out->stop);
  if (!out->has_stop)
    {
      /* nothing bounds the loss but what the order ties up: the margin of a
       * crypto position, the whole cost of prediction shares */
      out->margin = arb_order_view_get_margin (order);
      return arb_decimal_add (out->margin, out->open_fee, &out->total, error);
    }
  /* the close at the stop fills as the host fills a close: a long sells
   * at the stop less the slippage, a short buys at the stop plus it,
   * rounded against the trader */
  out->slippage_bps = CLAMP (arb_order_view_get_slippage_bps (order), 0, 10000);
  if (!arb_decimal_from_fraction (is_long ? 10000 - out->slippage_bps : 10000 + out->slippage_bps, 10000,
                                  ARB_ROUND_EXACT, &factor, error)
      || !arb_decimal_mul (out->stop, factor, is_long ? ARB_ROUND_FLOOR : ARB_ROUND_CEILING, &out->exit, error))
    return FALSE;
  /* the move to that price rounds up and the closing fee is the one the
   * host would charge for the fill (its notional rounded half to even, the
   * fee rounded up): a loss is never understated */
  return arb_decimal_sub (out->entry, out->exit, &diff, error) && arb_decimal_abs (diff, &diff, error)
         && arb_decimal_mul (diff, qty, ARB_ROUND_UP, &out->distance, error)
         && arb_decimal_mul (out->exit, qty, ARB_ROUND_HALF_EVEN, &close_notional, error)
         && arb_decimal_mul_div (close_notional, decimal_of_int (arb_order_view_get_fee_bps (order)),
                                 decimal_of_int (10000), ARB_ROUND_CEILING, &out->close_fee, error)
         && arb_decimal_add (out->distance, out->open_fee, &out->total, error)
         && arb_decimal_add (out->total, out->close_fee, &out->total, error);
}

char *
arb_risk_format (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE])
{
  char *dot, *end;

  arb_decimal_format (d, buf); /* always eight places */
  dot = strchr (buf, '.');
  end = buf + strlen (buf);
  /* keep two places, drop the zeros after them */
  while (end > dot + 3 && end[-1] == '0')
    end--;
  *end = '\0';
  return buf;
}

char *
arb_risk_format_pct (ArbDecimal pct, char buf[ARB_DECIMAL_BUFSIZE])
{
  return arb_decimal_format_short (pct, buf);
}

char *
arb_risk_loss_describe (const ArbRiskLoss *loss, const ArbOrderView *order)
{
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE], c[ARB_DECIMAL_BUFSIZE], d[ARB_DECIMAL_BUFSIZE],
      e[ARB_DECIMAL_BUFSIZE], f[ARB_DECIMAL_BUFSIZE], x[ARB_DECIMAL_BUFSIZE];
  g_autofree char *slipped = NULL;

  if (!loss->has_stop)
    return g_strdup_printf ("no stop-loss: %s %s + opening fee %s",
                            arb_order_view_is_prediction (order) ? "cost" : "margin",
                            arb_risk_format (loss->margin, a), arb_risk_format (loss->open_fee, b));
  /* "stop 49000.00 less 5 bps slippage 48975.50": where the close fills */
  if (loss->slippage_bps > 0)
    slipped = g_strdup_printf (" %s %" G_GINT64_FORMAT " bps slippage %s",
                               arb_order_view_is_buy (order) ? "less" : "plus", loss->slippage_bps,
                               arb_risk_format (loss->exit, x));
  return g_strdup_printf ("|entry %s − stop %s%s| × %s = %s + opening fee %s + closing fee at the stop %s",
                          arb_risk_format (loss->entry, a), arb_risk_format (loss->stop, b),
                          slipped != NULL ? slipped : "",
                          arb_decimal_format_short (arb_order_view_get_quantity (order), c),
                          arb_risk_format (loss->distance, d), arb_risk_format (loss->open_fee, e),
                          arb_risk_format (loss->close_fee, f));
}
