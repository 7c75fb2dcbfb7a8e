/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* risk-per-trade: refuses an order that could lose more than a share of the
 * starting balance, the balance or the equity. The risk of an order is what
 * it loses at its stop-loss, fees included, or without a stop what it ties
 * up. Pure: no I/O, no state, nothing allocated unless an order is refused. */
#include "arb-risk-common.h"

typedef enum {
  BASIS_INITIAL,
  BASIS_BALANCE,
  BASIS_EQUITY,
} Basis;

typedef struct {
  ArbInstance *inst;
  ArbDecimal   max_pct;
  Basis        basis;
  gboolean     require_stop_loss;
} PerTrade;

static const ArbConfigKey per_trade_config[] = {
  { "max_risk_per_trade_pct", ARB_CFG_DECIMAL, ARB_CFG_REQUIRED, NULL, 0, 100, NULL,
    "largest risk of one order, in percent of the basis (2 = 2%); risk = the distance from entry to stop-loss × "
    "quantity + opening and closing fees, or without a stop-loss the margin (prediction: the cost) + fee" },
  { "basis", ARB_CFG_ENUM, 0, "initial", 0, 0, "initial,balance,equity",
    "what the percentage is of: initial (the starting balance), balance (cash now) or equity (balance + "
    "unrealised P&L now)" },
  { "require_stop_loss", ARB_CFG_BOOL, 0, "false", 0, 0, NULL, "when true, an order without a stop-loss is refused" },
  { NULL }
};

static gpointer
per_trade_create (ArbInstance *inst, GError **error)
{
  g_autofree PerTrade *self = g_new0 (PerTrade, 1);
  const char *basis = arb_instance_get_string (inst, "basis");

  self->inst = inst;
  self->max_pct = arb_instance_get_decimal (inst, "max_risk_per_trade_pct");
  self->require_stop_loss = arb_instance_get_boolean (inst, "require_stop_loss");
  if (self->max_pct.raw <= 0)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "max_risk_per_trade_pct must be above 0: 0 would refuse every order");
      return NULL;
    }
  if (g_strcmp0 (basis, "balance") == 0)
    self->basis = BASIS_BALANCE;
  else if (g_strcmp0 (basis, "equity") == 0)
    self->basis = BASIS_EQUITY;
  else
    self->basis = BASIS_INITIAL;
  return g_steal_pointer (&self);
}

static gboolean
per_trade_start (gpointer data, GError **error)
{
  PerTrade *self = data;
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, NULL);
  return TRUE;
}

static const char *
basis_name (Basis basis)
{
  switch (basis)
    {
    case BASIS_BALANCE: return "balance";
    case BASIS_EQUITY: return "equity";
    case BASIS_INITIAL:
    default: return "initial balance";
    }
}

static ArbDecimal
basis_value (Basis basis, const ArbAccountView *account)
{
  switch (basis)
    {
    case BASIS_BALANCE: return arb_account_view_get_balance (account);
    case BASIS_EQUITY: return arb_account_view_get_equity (account);
    case BASIS_INITIAL:
    default: return arb_account_view_get_starting_balance (account);
    }
}

static gboolean
per_trade_check_order (gpointer data, const ArbOrderView *order, const ArbAccountView *account,
                       ArbRiskVerdict *verdict, GError **error)
{
  PerTrade *self = data;
  ArbRiskLoss loss;
  ArbDecimal base, limit, stop;
  g_autoptr(GError) local = NULL;

  if (self->require_stop_loss && !arb_order_view_get_stop_loss (order, &stop))
    {
      arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_LIMIT,
                               "a stop-loss is required: this program refuses orders without one");
      return TRUE;
    }
  base = basis_value (self->basis, account);
  if (!arb_risk_order_loss (order, &loss, &local) || !arb_risk_percent_of (base, self->max_pct, &limit, &local))
    {
      arb_risk_set_range_error (error, "the risk of the order cannot be computed", local);
      return FALSE;
    }
  if (arb_decimal_cmp (loss.total, limit) > 0)
    {
      char r[ARB_DECIMAL_BUFSIZE], p[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE], l[ARB_DECIMAL_BUFSIZE];
      g_autofree char *how = arb_risk_loss_describe (&loss, order);
      arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_LIMIT, "risk %s exceeds %s%% of %s %s = %s (%s)",
                               arb_risk_format (loss.total, r), arb_risk_format_pct (self->max_pct, p),
                               basis_name (self->basis), arb_risk_format (base, b), arb_risk_format (limit, l), how);
    }
  return TRUE;
}

static void
per_trade_stop (gpointer data)
{
}

static void
per_trade_destroy (gpointer data)
{
  g_free (data);
}

static const ArbRiskVTable per_trade_vtable = {
  .size = sizeof (ArbRiskVTable),
  .create = per_trade_create,
  .start = per_trade_start,
  .check_order = per_trade_check_order,
  .on_mark = NULL, /* the risk of an order is judged once, before its fill */
  .stop = per_trade_stop,
  .destroy = per_trade_destroy,
};

static const ArbPluginDesc per_trade_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "risk-per-trade",
  .version = "0.2.0",
  .summary = "Refuse an order that risks more than a share of the balance",
  .kind = ARB_PLUGIN_RISK,
  .config = per_trade_config,
  .vtable = &per_trade_vtable,
};

ARB_PLUGIN_DEFINE (risk_per_trade, per_trade_desc)
