/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the risk plugins share: the loss an order can cause, percentages of
 * an amount, and amounts written for people. Linked into each module with
 * hidden visibility; not part of the plugin ABI. Pure: no I/O, and nothing
 * here allocates. */

#include <arbiter/arb-plugin.h>

G_BEGIN_DECLS

/**
 * ArbRiskLoss:
 * @has_stop: the order carries a stop-loss
 * @stop: the stop-loss price, with @has_stop
 * @slippage_bps: the market's slippage, which a close at the stop suffers
 * @exit: with a stop, where a close at the stop fills: a long sells at
 *   stop × (1 − slippage_bps/10000) rounded down, a short buys at
 *   stop × (1 + slippage_bps/10000) rounded up, as the host fills
 * @entry: the estimated fill price, slippage included
 * @distance: with a stop, |entry − exit| × quantity, rounded up
 * @open_fee: the fee of the opening fill
 * @close_fee: with a stop, the fee of a close at the stop: exit × quantity
 *   (rounded half to even, as the host does) × fee_bps / 10000, rounded up
 * @margin: without a stop, what the order ties up (prediction: its cost)
 * @total: @distance + @open_fee + @close_fee with a stop, @margin + @open_fee
 *   without one
 *
 * The most an order can lose, by the parts a message names.
 */
typedef struct {
  gboolean   has_stop;
  ArbDecimal stop;
  gint64     slippage_bps;
  ArbDecimal exit;
  ArbDecimal entry;
  ArbDecimal distance;
  ArbDecimal open_fee;
  ArbDecimal close_fee;
  ArbDecimal margin;
  ArbDecimal total;
} ArbRiskLoss;

G_GNUC_INTERNAL gboolean arb_risk_order_loss (const ArbOrderView *order, ArbRiskLoss *out, GError **error);

/* @amount × @pct / 100, rounded toward negative infinity, so that a limit or
 * an allowance is never loosened by rounding */
G_GNUC_INTERNAL gboolean arb_risk_percent_of (ArbDecimal amount, ArbDecimal pct, ArbDecimal *out, GError **error);

/* exact, with at least two decimal places and no trailing zeros past them:
 * "2512.50", "100000.00", "-0.125", "0.00000001" */
G_GNUC_INTERNAL char *arb_risk_format (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE]);

/* a percentage as configured: "2", "2.5" */
G_GNUC_INTERNAL char *arb_risk_format_pct (ArbDecimal pct, char buf[ARB_DECIMAL_BUFSIZE]);

/* the loss in words, for a message: "|entry 50000.00 − stop 49000.00| × 2.5 =
 * 2500.00 + opening fee 12.50 + closing fee at the stop 12.25" (with
 * slippage: "|entry 50000.00 − stop 49000.00 less 5 bps slippage 48975.50| ×
 * ..."), or "margin 5000.00 + opening fee 5.00" ("cost" for prediction
 * shares) */
G_GNUC_INTERNAL char *arb_risk_loss_describe (const ArbRiskLoss *loss, const ArbOrderView *order);

/* an arithmetic failure (an amount outside ±92,233,720,368) as the plugin's
 * error: the rule cannot decide, so the host refuses the order */
G_GNUC_INTERNAL void arb_risk_set_range_error (GError **error, const char *what, const GError *cause);

G_END_DECLS
