/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-risk-private.h"

/* ---- the order ----------------------------------------------------------- */

const char *
arb_order_view_get_market (const ArbOrderView *order)
{
  return order->market;
}

gboolean
arb_order_view_is_prediction (const ArbOrderView *order)
{
  return order->prediction;
}

gboolean
arb_order_view_is_buy (const ArbOrderView *order)
{
  return order->is_buy;
}

ArbDecimal
arb_order_view_get_quantity (const ArbOrderView *order)
{
  return order->quantity;
}

ArbDecimal
arb_order_view_get_price (const ArbOrderView *order)
{
  return order->price;
}

ArbDecimal
arb_order_view_get_notional (const ArbOrderView *order)
{
  return order->notional;
}

ArbDecimal
arb_order_view_get_fee (const ArbOrderView *order)
{
  return order->fee;
}

gint64
arb_order_view_get_fee_bps (const ArbOrderView *order)
{
  return order->fee_bps;
}

gint64
arb_order_view_get_slippage_bps (const ArbOrderView *order)
{
  return order->slippage_bps;
}

ArbDecimal
arb_order_view_get_margin (const ArbOrderView *order)
{
  return order->margin;
}

gboolean
arb_order_view_get_stop_loss (const ArbOrderView *order, ArbDecimal *out)
{
  if (!order->has_stop_loss)
    return FALSE;
  *out = order->stop_loss;
  return TRUE;
}

gboolean
arb_order_view_get_take_profit (const ArbOrderView *order, ArbDecimal *out)
{
  if (!order->has_take_profit)
    return FALSE;
  *out = order->take_profit;
  return TRUE;
}

const char *
arb_order_view_get_event (const ArbOrderView *order)
{
  /* the host's wrappers fill it in; a view without one is its own event */
  return order->event != NULL ? order->event : order->market;
}

/* ---- the account --------------------------------------------------------- */

gboolean
arb_account_view_init (ArbAccountView *view, ArbTrading *trading, ArbAccount *account, GError **error)
{
  view->trading = trading;
  view->account = account;
  view->now_us = arb_now_us ();
  return arb_trading_value (trading, account, &view->value, error);
}

gboolean
arb_account_view_init_after_mark (ArbAccountView *view, ArbTrading *trading, ArbAccount *account, const char *market,
                                  const ArbQuote *quote, GError **error)
{
  view->trading = trading;
  view->account = account;
  view->now_us = arb_now_us ();
  return arb_trading_value_after_mark (trading, account, market, quote, &view->value, error);
}

const char *
arb_account_view_get_id (const ArbAccountView *account)
{
  return account->account->row->id;
}

const char *
arb_account_view_get_program (const ArbAccountView *account)
{
  return account->account->row->program;
}

ArbDecimal
arb_account_view_get_starting_balance (const ArbAccountView *account)
{
  return account->account->row->starting_balance;
}

ArbDecimal
arb_account_view_get_balance (const ArbAccountView *account)
{
  return account->account->row->balance;
}

ArbDecimal
arb_account_view_get_equity (const ArbAccountView *account)
{
  return account->value.equity;
}

ArbDecimal
arb_account_view_get_unrealized_pnl (const ArbAccountView *account)
{
  return account->value.unrealized;
}

ArbDecimal
arb_account_view_get_used_margin (const ArbAccountView *account)
{
  return account->value.used_margin;
}

ArbDecimal
arb_account_view_get_free_margin (const ArbAccountView *account)
{
  return account->value.free_margin;
}

ArbDecimal
arb_account_view_get_equity_high_water_mark (const ArbAccountView *account)
{
  /* the live equity may be above the last recorded mark */
  return arb_decimal_max (account->account->row->equity_hwm, account->value.equity);
}

ArbDecimal
arb_account_view_get_day_start_balance (const ArbAccountView *account)
{
  return account->account->row->day_start_balance;
}

ArbDecimal
arb_account_view_get_day_start_equity (const ArbAccountView *account)
{
  return account->account->row->day_start_equity;
}

ArbDecimal
arb_account_view_get_eod_high (const ArbAccountView *account, gboolean equity)
{
  return equity ? account->account->row->eod_high_equity : account->account->row->eod_high_balance;
}

ArbDecimal
arb_account_view_get_balance_high_water_mark (const ArbAccountView *account)
{
  return arb_decimal_max (account->account->row->balance_hwm, account->account->row->balance);
}

ArbDecimal
arb_account_view_get_day_high_equity (const ArbAccountView *account)
{
  return arb_decimal_max (account->account->row->day_high_equity, account->value.equity);
}

gint64
arb_account_view_get_day_start_time (const ArbAccountView *account)
{
  ArbProgram *p = arb_trading_get_program (account->trading, account->account->row->program);
  return p != NULL ? arb_program_day_start (p, account->now_us) : account->account->row->day_start_us;
}

gint64
arb_account_view_get_next_day_start (const ArbAccountView *account)
{
  ArbProgram *p = arb_trading_get_program (account->trading, account->account->row->program);
  return p != NULL ? arb_program_next_day_start (p, account->now_us) : 0;
}

gint64
arb_account_view_get_time (const ArbAccountView *account)
{
  return account->now_us;
}

guint
arb_account_view_get_n_positions (const ArbAccountView *account)
{
  return account->account->positions->len;
}

ArbDecimal
arb_account_view_get_market_notional (const ArbAccountView *account, const char *market)
{
  ArbExposure *e = g_hash_table_lookup (account->account->exposure, market);
  __int128 cost;
  if (e == NULL)
    return ARB_DECIMAL_ZERO;
  /* entry × quantity at scale 10^16, back to 10^8 rounding up: a limit is
   * never passed by rounding */
  cost = e->long_cost + e->short_cost;
  cost = (cost + ARB_DECIMAL_SCALE - 1) / ARB_DECIMAL_SCALE;
  return arb_decimal_from_raw (cost > G_MAXINT64 ? G_MAXINT64 : (gint64) cost);
}

gboolean
arb_account_view_get_event_notional (const ArbAccountView *account, const char *event_id, ArbDecimal *out)
{
  return arb_trading_event_notional (account->trading, account->account, event_id, out);
}

/* ---- the verdict --------------------------------------------------------- */

void
arb_risk_verdict_init (ArbRiskVerdict *verdict)
{
  memset (verdict, 0, sizeof *verdict);
  verdict->evidence = g_ptr_array_new_with_free_func (g_free);
}

static void
rule_report_clear (gpointer data)
{
  ArbRuleReport *r = data;
  g_free (r->rule);
  g_free (r->instance);
}

void
arb_risk_verdict_report_rule (ArbRiskVerdict *verdict, const char *rule, ArbDecimal limit, ArbDecimal current,
                              ArbDecimal room)
{
  ArbRuleReport r = { NULL, NULL, limit, current, room };
  if (verdict->reports == NULL)
    return; /* nobody asked */
  r.rule = g_strdup (rule);
  g_array_append_val (verdict->reports, r);
}

GArray *
arb_risk_report (ArbHost *host, ArbTrading *trading, ArbAccount *account)
{
  ArbProgram *program = arb_trading_get_program (trading, account->row->program);
  GArray *out = g_array_new (FALSE, TRUE, sizeof (ArbRuleReport));
  ArbAccountView view;

  g_array_set_clear_func (out, rule_report_clear);
  if (program == NULL || program->risk == NULL || !arb_account_view_init (&view, trading, account, NULL))
    return out;
  for (guint i = 0; program->risk[i] != NULL; i++)
    {
      g_autofree char *name = g_strdup_printf ("risk:%s", program->risk[i]);
      ArbInstance *inst = arb_host_find_instance (host, name);
      ArbRiskVerdict verdict;
      g_autoptr(GError) error = NULL;

      if (inst == NULL || !arb_instance_is_up (inst))
        continue;
      arb_risk_verdict_init (&verdict);
      verdict.reports = g_array_new (FALSE, TRUE, sizeof (ArbRuleReport));
      /* on_mark is pure: asking it again only reads */
      if (arb_instance_risk_on_mark (inst, &view, &verdict, &error))
        for (guint k = 0; k < verdict.reports->len; k++)
          {
            ArbRuleReport *r = &g_array_index (verdict.reports, ArbRuleReport, k);
            ArbRuleReport copy = { g_steal_pointer (&r->rule), g_strdup (name), r->limit, r->current, r->room };
            g_array_append_val (out, copy);
          }
      g_array_set_clear_func (verdict.reports, rule_report_clear);
      g_array_unref (verdict.reports);
      verdict.reports = NULL;
      arb_risk_verdict_clear (&verdict);
    }
  return out;
}

void
arb_risk_verdict_clear (ArbRiskVerdict *verdict)
{
  g_clear_pointer (&verdict->message, g_free);
  g_clear_pointer (&verdict->rule, g_free);
  g_clear_pointer (&verdict->evidence, g_ptr_array_unref);
}

void
arb_risk_verdict_reject (ArbRiskVerdict *verdict, ArbRiskRejection kind, const char *format, ...)
{
  va_list args;
  if (verdict->rejection != 0)
    return; /* the first reason stands */
  verdict->rejection = kind == ARB_RISK_REJECT_DRAWDOWN ? ARB_RISK_REJECT_DRAWDOWN : ARB_RISK_REJECT_LIMIT;
  va_start (args, format);
  verdict->message = g_strdup_vprintf (format, args);
  va_end (args);
}

void
arb_risk_verdict_breach (ArbRiskVerdict *verdict, const char *rule, const char *format, ...)
{
  va_list args;
  if (verdict->breach)
    return;
  verdict->breach = TRUE;
  verdict->rule = g_strdup (rule);
  va_start (args, format);
  verdict->message = g_strdup_vprintf (format, args);
  va_end (args);
}

void
arb_risk_verdict_pause (ArbRiskVerdict *verdict, gint64 until_us, const char *format, ...)
{
  va_list args;
  if (verdict->breach || verdict->pause)
    return;
  verdict->pause = TRUE;
  verdict->pause_until_us = until_us;
  verdict->rule = g_strdup ("daily_loss_pause");
  va_start (args, format);
  verdict->message = g_strdup_vprintf (format, args);
  va_end (args);
}

void
arb_risk_verdict_add_evidence (ArbRiskVerdict *verdict, const char *key, const char *value)
{
  g_ptr_array_add (verdict->evidence, g_strdup (key));
  g_ptr_array_add (verdict->evidence, g_strdup (value != NULL ? value : ""));
}

void
arb_risk_verdict_add_evidence_decimal (ArbRiskVerdict *verdict, const char *key, ArbDecimal value)
{
  char buf[ARB_DECIMAL_BUFSIZE];
  arb_risk_verdict_add_evidence (verdict, key, arb_decimal_format (value, buf));
}

/* ---- the saga's step ------------------------------------------------------ */

static gboolean check_each (ArbHost *host, ArbProgram *program, const ArbOrderView *order, ArbAccountView *view,
                            GError **error);

gboolean
arb_risk_check_order (ArbHost *host, ArbTrading *trading, ArbProgram *program, ArbAccount *account,
                      const ArbOrderView *order, GError **error)
{
  ArbAccountView view;
  ArbOrderView with_event = *order;
  g_autoptr(GError) local = NULL;
  char *event = NULL;
  gboolean ok;

  if (program->risk == NULL || program->risk[0] == NULL)
    return TRUE;
  if (!arb_account_view_init (&view, trading, account, &local))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_INTERNAL, "valuing the account: %s", local->message);
      return FALSE;
    }
  /* the market's event, once for every rule: each sees the same one even
   * if an ingest instance moves the market meanwhile */
  if (with_event.event == NULL)
    {
      event = arb_price_book_dup_event (host->book, order->market);
      with_event.event = event != NULL ? event : order->market;
    }
  ok = check_each (host, program, &with_event, &view, error);
  g_clear_pointer (&event, g_ref_string_release);
  return ok;
}

static gboolean
check_each (ArbHost *host, ArbProgram *program, const ArbOrderView *order, ArbAccountView *view, GError **error)
{
  g_autoptr(GError) local = NULL;

  for (guint i = 0; program->risk[i] != NULL; i++)
    {
      g_autofree char *name = g_strdup_printf ("risk:%s", program->risk[i]);
      ArbInstance *inst = arb_host_find_instance (host, name);
      ArbRiskVerdict verdict;
      gboolean ok;

      /* fail closed: a rule that is not there cannot allow anything */
      if (inst == NULL || !arb_instance_is_up (inst))
        {
          g_autofree char *reason = inst != NULL ? arb_instance_dup_reason (inst) : g_strdup ("not configured");
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_RISK_UNAVAILABLE,
                       "risk check %s is not running (%s): orders are refused until it is", name,
                       reason != NULL ? reason : "down");
          return FALSE;
        }
      arb_risk_verdict_init (&verdict);
      ok = arb_instance_risk_check_order (inst, order, view, &verdict, &local);
      if (!ok)
        {
          /* a rule that cannot decide refuses */
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_RISK_UNAVAILABLE, "risk check %s failed: %s",
                       name, local->message);
          arb_risk_verdict_clear (&verdict);
          return FALSE;
        }
      if (verdict.rejection != 0)
        {
          g_set_error (error, ARB_TRADING_ERROR,
                       verdict.rejection == ARB_RISK_REJECT_DRAWDOWN ? ARB_TRADING_ERROR_DRAWDOWN_LIMIT
                                                                     : ARB_TRADING_ERROR_RISK_LIMIT,
                       "%s", verdict.message != NULL ? verdict.message : name);
          arb_risk_verdict_clear (&verdict);
          return FALSE;
        }
      arb_risk_verdict_clear (&verdict);
    }
  return TRUE;
}
