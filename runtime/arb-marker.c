/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-json-private.h"
#include "arb-marker-private.h"
#include "arb-risk-private.h"
#include "arb-util-private.h"

/* a rule-driven close that has not happened yet is not asked for again
 * before this long (it may have failed, for want of a quote) */
#define RETRY_CLOSE_US (5 * G_USEC_PER_SEC)
/* marks move the equity high-water mark in memory; it reaches the store at
 * most this often per account (and with every ledger change) */
#define PERSIST_EVERY_MS 1000

#define DAY_US (G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC)
#define TIME_RULES_EVERY_S 60
/* a new trading day's anchors wait for a quote of every market the account
 * holds (its equity is not known before), at most this long after the
 * daemon started; after that, a market still without one counts at cost */
#define ANCHOR_WAIT_US (60 * G_USEC_PER_SEC)

struct _ArbMarker {
  ArbHost    *host;
  ArbTrading *trading;
  ArbSaga    *saga;
  GHashTable *closing;  /* position id → gint64 when asked */
  GHashTable *failing;  /* account id → gint64 when asked */
  GHashTable *dirty;    /* set of ArbAccount whose row changed in memory */
  /* set of ArbAccount whose new day's anchors wait for quotes; not
   * evaluated against the rules until they have them */
  GHashTable *unanchored;
  gint64      anchor_deadline; /* until when they may wait */
  guint       persist_source;
  guint       reset_source;
  guint       time_rules_source;
  guint       anchor_source; /* the wait's end */
  guint64     marks;    /* account evaluations */
};

static void schedule_reset (ArbMarker *marker);
static gboolean check_time_rules (gpointer data);

/* @s (taken) on the host's context, calling @func with @m: its id */
static guint
attach (ArbMarker *m, GSource *s, GSourceFunc func, const char *name)
{
  guint id;
  g_source_set_callback (s, func, m, NULL);
  g_source_set_name (s, name);
  id = g_source_attach (s, m->host->context);
  g_source_unref (s);
  return id;
}

static gboolean
persist_dirty (gpointer data)
{
  ArbMarker *m = data;
  GHashTableIter it;
  gpointer a;

  g_hash_table_iter_init (&it, m->dirty);
  while (g_hash_table_iter_next (&it, &a, NULL))
    {
      ArbAccount *account = a;
      /* a batch in flight writes the row anyway */
      if (!account->busy)
        arb_saga_persist_account (m->saga, account);
      g_hash_table_iter_remove (&it);
    }
  return G_SOURCE_CONTINUE;
}

ArbMarker *
arb_marker_new (ArbHost *host, ArbTrading *trading, ArbSaga *saga)
{
  ArbMarker *m = g_new0 (ArbMarker, 1);

  m->host = host;
  m->trading = trading;
  m->saga = saga;
  m->closing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->failing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->dirty = g_hash_table_new (g_direct_hash, g_direct_equal);
  m->unanchored = g_hash_table_new (g_direct_hash, g_direct_equal);
  m->anchor_deadline = arb_now_us () + ANCHOR_WAIT_US;
  m->persist_source = attach (m, g_timeout_source_new (PERSIST_EVERY_MS), persist_dirty, "arb-marker-persist");
  arb_metrics_declare (host->metrics, "arb_marks_total", ARB_METRIC_COUNTER,
                       "account evaluations after a price move of a market it holds");
  arb_metrics_declare (host->metrics, "arb_rule_closes_total", ARB_METRIC_COUNTER,
                       "positions closed by stop-loss or take-profit");
  arb_metrics_declare (host->metrics, "arb_breaches_total", ARB_METRIC_COUNTER, "risk rule breaches");
  m->time_rules_source = attach (m, g_timeout_source_new_seconds (TIME_RULES_EVERY_S), check_time_rules,
                                 "arb-marker-time-rules");
  arb_marker_take_day_anchors (m);
  schedule_reset (m);
  return m;
}

static void
remove_source (GMainContext *ctx, guint id)
{
  GSource *s;
  if (id != 0 && (s = g_main_context_find_source_by_id (ctx, id)) != NULL)
    g_source_destroy (s);
}

void
arb_marker_free (ArbMarker *marker)
{
  if (marker == NULL)
    return;
  remove_source (marker->host->context, marker->persist_source);
  remove_source (marker->host->context, marker->reset_source);
  remove_source (marker->host->context, marker->time_rules_source);
  remove_source (marker->host->context, marker->anchor_source);
  g_hash_table_unref (marker->unanchored);
  g_hash_table_unref (marker->closing);
  g_hash_table_unref (marker->failing);
  g_hash_table_unref (marker->dirty);
  g_free (marker);
}

guint64
arb_marker_get_marks (ArbMarker *marker)
{
  return marker->marks;
}

static gboolean
asked_recently (GHashTable *table, const char *key, gint64 now)
{
  gint64 *when = g_hash_table_lookup (table, key);
  return when != NULL && now - *when < RETRY_CLOSE_US;
}

static void
remember (GHashTable *table, const char *key, gint64 now)
{
  gint64 *when = g_new (gint64, 1);
  *when = now;
  g_hash_table_replace (table, g_strdup (key), when);
}

/* stop-loss and take-profit of the positions of @account in @market */
static void
check_brackets (ArbMarker *m, ArbAccount *account, const char *market, const ArbQuote *quote, gint64 now)
{
  ArbExposure *e = g_hash_table_lookup (account->exposure, market);
  ArbDecimal bid, ask;
  gboolean has_bid, has_ask;
  g_autoptr(GPtrArray) hits = NULL;

  if (e == NULL)
    return;
  has_bid = (arb_quote_get_bid (quote, &bid) && bid.raw > 0) || arb_quote_get_last (quote, &bid);
  has_ask = (arb_quote_get_ask (quote, &ask) && ask.raw > 0) || arb_quote_get_last (quote, &ask);
  /* only the positions with a bracket: an account with a thousand
   * positions and no stops costs nothing here */
  for (guint i = 0; i < e->bracketed->len; i++)
    {
      ArbPositionRow *p = g_ptr_array_index (e->bracketed, i);
      ArbTradeReason reason = ARB_TRADE_CLOSE;
      /* a long exits at the bid, a short at the ask */
      gboolean is_long = p->side == ARB_SIDE_LONG;
      ArbDecimal px = is_long ? bid : ask;

      if (!(is_long ? has_bid : has_ask))
        continue;
      if (p->has_stop_loss && (is_long ? arb_decimal_cmp (px, p->stop_loss) <= 0
                                       : arb_decimal_cmp (px, p->stop_loss) >= 0))
        reason = ARB_TRADE_STOP_LOSS;
      else if (p->has_take_profit && (is_long ? arb_decimal_cmp (px, p->take_profit) >= 0
                                              : arb_decimal_cmp (px, p->take_profit) <= 0))
        reason = ARB_TRADE_TAKE_PROFIT;
      else
        continue;
      if (asked_recently (m->closing, p->id, now))
        continue;
      if (hits == NULL)
        hits = g_ptr_array_new_with_free_func (g_free);
      /* the id and the reason; the closes are asked for after the loop,
       * because one may run at once and change this array */
      g_ptr_array_add (hits, g_strdup_printf ("%d:%s", (int) reason, p->id));
    }
  for (guint i = 0; hits != NULL && i < hits->len; i++)
    {
      const char *hit = g_ptr_array_index (hits, i);
      const char *id = strchr (hit, ':') + 1;
      ArbTradeReason reason = (ArbTradeReason) g_ascii_strtoll (hit, NULL, 10);
      remember (m->closing, id, now);
      arb_metrics_counter_add (m->host->metrics, "arb_rule_closes_total", NULL, 1);
      arb_saga_close_by_rule (m->saga, account, id, reason, NULL);
    }
}

/* evidence of a breach: the rule's own, the account, and every quote used */
static char *
breach_evidence (ArbMarker *m, ArbAccount *account, const ArbAccountView *view, const char *instance,
                 const ArbRiskVerdict *verdict)
{
  ArbJson j;
  GHashTableIter it;
  gpointer v;

  arb_json_init (&j, 1024);
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "rule", verdict->rule);
  arb_json_kv_string (&j, "riskInstance", instance);
  arb_json_kv_string (&j, "message", verdict->message);
  arb_json_kv_decimal (&j, "equity", view->value.equity);
  arb_json_kv_decimal (&j, "balance", account->row->balance);
  arb_json_kv_decimal (&j, "unrealizedPnl", view->value.unrealized);
  arb_json_kv_time (&j, "time", view->now_us);
  arb_json_key (&j, "details");
  arb_json_begin_object (&j);
  for (guint i = 0; i + 1 < verdict->evidence->len; i += 2)
    arb_json_kv_string (&j, g_ptr_array_index (verdict->evidence, i), g_ptr_array_index (verdict->evidence, i + 1));
  arb_json_end_object (&j);
  arb_json_key (&j, "quotes");
  arb_json_begin_array (&j);
  g_hash_table_iter_init (&it, account->exposure);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      ArbExposure *e = v;
      g_autoptr(ArbQuote) q = arb_price_book_get (m->host->book, e->market);
      ArbDecimal d;
      arb_json_begin_object (&j);
      arb_json_kv_string (&j, "market", e->market);
      if (q != NULL)
        {
          if (arb_quote_get_bid (q, &d))
            arb_json_kv_decimal (&j, "bid", d);
          if (arb_quote_get_ask (q, &d))
            arb_json_kv_decimal (&j, "ask", d);
          if (arb_quote_get_last (q, &d))
            arb_json_kv_decimal (&j, "last", d);
          arb_json_kv_string (&j, "source", q->source);
          arb_json_kv_time (&j, "sourceTime", q->source_time_us);
          arb_json_kv_time (&j, "receiveTime", q->receive_time_us);
        }
      arb_json_end_object (&j);
    }
  arb_json_end_array (&j);
  arb_json_end_object (&j);
  return arb_json_steal (&j, NULL);
}

/* passed: equity at or above the target with no open position, enough
 * trading days, and the best day within the consistency share (a gate: it
 * delays the pass, it never fails anyone) */
static void
check_pass (ArbMarker *m, ArbAccount *account, ArbProgram *program, const ArbAccountValue *v, gint64 now)
{
  ArbAssessmentRow *r = account->row;
  ArbDecimal gain, target, total, today, best, share_limit;
  ArbJson j;
  g_autofree char *evidence = NULL;
  g_autofree char *reason = NULL;
  char a[ARB_DECIMAL_BUFSIZE];

  if (program == NULL || !program->has_profit_target || account->positions->len > 0
      || asked_recently (m->failing, r->id, now))
    return;
  if (!arb_decimal_mul_div (r->starting_balance, program->profit_target_pct, arb_decimal_from_raw (100 * ARB_DECIMAL_SCALE),
                            ARB_ROUND_CEILING, &gain, NULL)
      || !arb_decimal_add (r->starting_balance, gain, &target, NULL))
    return;
  if (arb_decimal_cmp (v->equity, target) < 0 || r->trading_days < program->min_trading_days)
    return;
  if (!arb_decimal_sub (v->equity, r->starting_balance, &total, NULL)
      || !arb_decimal_sub (v->equity, r->day_start_equity, &today, NULL))
    return;
  best = arb_decimal_max (r->best_day_profit, today);
  if (program->has_consistency)
    {
      if (!arb_decimal_mul_div (total, program->consistency_pct, arb_decimal_from_raw (100 * ARB_DECIMAL_SCALE),
                                ARB_ROUND_FLOOR, &share_limit, NULL))
        return;
      if (arb_decimal_cmp (best, share_limit) > 0)
        return;
    }
  arb_json_init (&j, 512);
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "rule", "profit_target");
  arb_json_kv_decimal (&j, "equity", v->equity);
  arb_json_kv_decimal (&j, "target", target);
  arb_json_kv_decimal (&j, "profitTargetPct", program->profit_target_pct);
  arb_json_kv_int (&j, "tradingDays", r->trading_days);
  arb_json_kv_int (&j, "minTradingDays", program->min_trading_days);
  arb_json_kv_decimal (&j, "totalProfit", total);
  arb_json_kv_decimal (&j, "bestDayProfit", best);
  if (program->has_consistency)
    arb_json_kv_decimal (&j, "consistencyPct", program->consistency_pct);
  arb_json_kv_time (&j, "time", now);
  arb_json_end_object (&j);
  evidence = arb_json_steal (&j, NULL);
  reason = g_strdup_printf ("profit target reached: equity %s", arb_decimal_format (v->equity, a));
  remember (m->failing, r->id, now);
  arb_saga_set_status_by_rule (m->saga, account, ARB_ASSESSMENT_PASSED, reason, evidence, FALSE, NULL);
}

static void
fail_by_time (ArbMarker *m, ArbAccount *account, const char *rule, const char *reason, gint64 now)
{
  ArbJson j;
  g_autofree char *evidence = NULL;

  arb_json_init (&j, 256);
  arb_json_begin_object (&j);
  arb_json_kv_string (&j, "rule", rule);
  arb_json_kv_time (&j, "createdAt", account->row->created_us);
  arb_json_kv_time (&j, "lastFillAt", account->row->last_fill_us);
  arb_json_kv_int (&j, "tradingDays", account->row->trading_days);
  arb_json_kv_time (&j, "time", now);
  arb_json_end_object (&j);
  evidence = arb_json_steal (&j, NULL);
  remember (m->failing, account->row->id, now);
  arb_saga_set_status_by_rule (m->saga, account, ARB_ASSESSMENT_FAILED, reason, evidence, TRUE, NULL);
}

/* max_days and inactivity_days: checked every minute */
static gboolean
check_time_rules (gpointer data)
{
  arb_marker_check_time_rules (data);
  return G_SOURCE_CONTINUE;
}

void
arb_marker_check_time_rules (ArbMarker *m)
{
  g_autoptr(GPtrArray) accounts = arb_trading_list_accounts (m->trading, NULL);
  gint64 now = arb_now_us ();

  for (guint i = 0; i < accounts->len; i++)
    {
      ArbAccount *account = g_ptr_array_index (accounts, i);
      ArbProgram *p = arb_trading_get_program (m->trading, account->row->program);
      gint64 last;

      if (p == NULL || account->row->status != ARB_ASSESSMENT_ACTIVE || asked_recently (m->failing, account->row->id, now))
        continue;
      if (p->max_days > 0 && now >= account->row->created_us + p->max_days * DAY_US)
        {
          g_autofree char *reason = g_strdup_printf ("max_days: %" G_GINT64_FORMAT " days passed without passing",
                                                     p->max_days);
          fail_by_time (m, account, "max_days", reason, now);
          continue;
        }
      last = account->row->last_fill_us != 0 ? account->row->last_fill_us : account->row->created_us;
      if (p->inactivity_days > 0 && now >= last + p->inactivity_days * DAY_US)
        {
          g_autofree char *reason = g_strdup_printf ("inactivity: no fill for %" G_GINT64_FORMAT " days",
                                                     p->inactivity_days);
          fail_by_time (m, account, "inactivity_days", reason, now);
        }
    }
}

static void
evaluate (ArbMarker *m, ArbAccount *account, const char *market, const ArbQuote *quote, gint64 now)
{
  ArbProgram *program = arb_trading_get_program (m->trading, account->row->program);
  ArbAccountView view;
  ArbRiskVerdict pause;
  gboolean has_pause = FALSE, paused = FALSE;
  g_autofree char *pause_instance = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok = market != NULL ? arb_account_view_init_after_mark (&view, m->trading, account, market, quote, &error)
                               : arb_account_view_init (&view, m->trading, account, &error);

  if (!ok)
    {
      arb_log_for (NULL, "marker", G_LOG_LEVEL_WARNING, error->message);
      return;
    }
  m->marks++;
  if (arb_decimal_cmp (view.value.equity, account->row->equity_hwm) > 0)
    {
      account->row->equity_hwm = view.value.equity;
      g_hash_table_add (m->dirty, account);
    }
  if (arb_decimal_cmp (view.value.equity, account->row->day_high_equity) > 0)
    {
      account->row->day_high_equity = view.value.equity;
      g_hash_table_add (m->dirty, account);
    }
  if (arb_decimal_cmp (account->row->balance, account->row->balance_hwm) > 0)
    {
      account->row->balance_hwm = account->row->balance;
      g_hash_table_add (m->dirty, account);
    }
  if (program == NULL || asked_recently (m->failing, account->row->id, now))
    return;
  for (guint i = 0; program->risk != NULL && program->risk[i] != NULL; i++)
    {
      g_autofree char *name = g_strdup_printf ("risk:%s", program->risk[i]);
      ArbInstance *inst = arb_host_find_instance (m->host, name);
      ArbRiskVerdict verdict;
      gboolean keep = FALSE;

      if (inst == NULL || !arb_instance_is_up (inst))
        continue; /* orders are refused meanwhile; a mark cannot fail anyone on a rule that is down */
      arb_risk_verdict_init (&verdict);
      if (!arb_instance_risk_on_mark (inst, &view, &verdict, &error))
        {
          arb_log_for (inst->name, NULL, G_LOG_LEVEL_WARNING, error->message);
          g_clear_error (&error);
        }
      else if (verdict.pause)
        {
          /* a soft limit: the first one is kept, and taken once every rule
           * has been asked, so that a breach of a later rule still fails
           * the assessment rather than pausing it */
          paused = TRUE;
          if (!has_pause && account->row->paused_until_us < verdict.pause_until_us)
            {
              pause = verdict;
              pause_instance = g_strdup (name);
              has_pause = keep = TRUE;
            }
        }
      else if (verdict.breach)
        {
          g_autofree char *evidence = breach_evidence (m, account, &view, name, &verdict);
          g_autofree char *reason = g_strdup_printf ("%s: %s", verdict.rule != NULL ? verdict.rule : name,
                                                     verdict.message != NULL ? verdict.message : "breach");
          remember (m->failing, account->row->id, now);
          arb_metrics_counter_add (m->host->metrics, "arb_breaches_total", inst->labels, 1);
          arb_log_for (inst->name, NULL, G_LOG_LEVEL_MESSAGE, reason);
          arb_saga_set_status_by_rule (m->saga, account, ARB_ASSESSMENT_FAILED, reason, evidence, TRUE, NULL);
          arb_risk_verdict_clear (&verdict);
          if (has_pause)
            arb_risk_verdict_clear (&pause);
          return;
        }
      if (!keep)
        arb_risk_verdict_clear (&verdict);
    }
  if (has_pause)
    {
      g_autofree char *evidence = breach_evidence (m, account, &view, pause_instance, &pause);
      g_autofree char *reason = g_strdup_printf ("%s: %s", pause.rule, pause.message != NULL ? pause.message : "pause");
      remember (m->failing, account->row->id, now);
      arb_log_for (pause_instance, NULL, G_LOG_LEVEL_MESSAGE, reason);
      arb_saga_pause_by_rule (m->saga, account, pause.pause_until_us, reason, evidence, NULL);
      arb_risk_verdict_clear (&pause);
      return;
    }
  /* no pass while a soft limit holds */
  if (!paused)
    check_pass (m, account, program, &view.value, now);
}

static gboolean anchor_account (ArbMarker *m, ArbAccount *account, gint64 now);

void
arb_marker_after_change (ArbMarker *m, ArbAccount *account)
{
  if (account->row->status == ARB_ASSESSMENT_ACTIVE && !g_hash_table_contains (m->unanchored, account))
    evaluate (m, account, NULL, NULL, arb_now_us ());
}

void
arb_marker_on_quote (ArbMarker *m, const char *market)
{
  GHashTable *holders = arb_trading_holders (m->trading, market);
  g_autoptr(GPtrArray) accounts = NULL;
  g_autoptr(ArbQuote) quote = NULL;
  gint64 now = arb_now_us ();
  GHashTableIter it;
  gpointer a;

  if (holders == NULL)
    return;
  quote = arb_price_book_get (m->host->book, market);
  if (quote == NULL)
    return;
  /* a copy: a close asked for below may run at once and change the set */
  accounts = g_ptr_array_sized_new (g_hash_table_size (holders));
  g_hash_table_iter_init (&it, holders);
  while (g_hash_table_iter_next (&it, &a, NULL))
    g_ptr_array_add (accounts, a);
  for (guint i = 0; i < accounts->len; i++)
    {
      ArbAccount *account = g_ptr_array_index (accounts, i);
      if (account->row->status != ARB_ASSESSMENT_ACTIVE)
        continue;
      if (g_hash_table_contains (m->unanchored, account) && anchor_account (m, account, now))
        g_hash_table_remove (m->unanchored, account);
      check_brackets (m, account, market, quote, now);
      if (account->row->status == ARB_ASSESSMENT_ACTIVE && !g_hash_table_contains (m->unanchored, account))
        evaluate (m, account, market, quote, now);
    }
  arb_metrics_counter_add (m->host->metrics, "arb_marks_total", NULL, accounts->len);
}

/* ---- the trading day ------------------------------------------------------ */

/* Takes @account's anchors if a new trading day began since it last did.
 * FALSE: they wait for a quote of a market it holds (until the deadline). */
static gboolean
anchor_account (ArbMarker *m, ArbAccount *account, gint64 now)
{
  ArbProgram *program = arb_trading_get_program (m->trading, account->row->program);
  gint64 day_start;
  ArbAccountValue v;

  if (program == NULL || account->row->status != ARB_ASSESSMENT_ACTIVE)
    return TRUE;
  day_start = arb_program_day_start (program, now);
  if (account->row->day_start_us >= day_start)
    return TRUE;
  /* a new trading day: the anchors are the values at its start (taken
   * now; a daemon that was down at the reset takes them when it starts) */
  if (!arb_trading_value (m->trading, account, &v, NULL))
    return TRUE;
  /* the equity at the start of the day needs the price of every position */
  if (v.unquoted != NULL && now < m->anchor_deadline)
    return FALSE;
  if (v.unquoted != NULL)
    {
      g_autofree char *msg = g_strdup_printf ("assessment %s: the day's anchors are taken without a quote for %s, "
                                              "which counts at its entry price",
                                              account->row->id, v.unquoted);
      arb_log_for (NULL, "marker", G_LOG_LEVEL_WARNING, msg);
    }
  /* the day that ended: its gain counts for the consistency rule */
  if (account->row->day_start_us != 0)
    {
      ArbDecimal gained;
      if (arb_decimal_sub (v.equity, account->row->day_start_equity, &gained, NULL))
        account->row->best_day_profit = arb_decimal_max (account->row->best_day_profit, gained);
    }
  account->row->eod_high_balance = arb_decimal_max (account->row->eod_high_balance, account->row->balance);
  account->row->eod_high_equity = arb_decimal_max (account->row->eod_high_equity, v.equity);
  account->row->day_high_equity = v.equity;
  account->row->day_start_balance = account->row->balance;
  account->row->day_start_equity = v.equity;
  account->row->day_start_us = day_start;
  g_hash_table_add (m->dirty, account);
  return TRUE;
}

/* the anchors due now, written at once */
static void
anchor_and_persist (ArbMarker *m)
{
  arb_marker_take_day_anchors (m);
  persist_dirty (m);
}

void
arb_marker_end_anchor_wait (ArbMarker *m)
{
  m->anchor_deadline = MIN (m->anchor_deadline, arb_now_us ());
  remove_source (m->host->context, m->anchor_source);
  m->anchor_source = 0;
  anchor_and_persist (m);
}

static gboolean
on_anchor_deadline (gpointer data)
{
  ArbMarker *m = data;
  m->anchor_source = 0;
  arb_marker_end_anchor_wait (m);
  return G_SOURCE_REMOVE;
}

void
arb_marker_take_day_anchors (ArbMarker *m)
{
  g_autoptr(GPtrArray) accounts = arb_trading_list_accounts (m->trading, NULL);
  gint64 now = arb_now_us ();

  for (guint i = 0; i < accounts->len; i++)
    {
      ArbAccount *account = g_ptr_array_index (accounts, i);
      if (anchor_account (m, account, now))
        g_hash_table_remove (m->unanchored, account);
      else
        g_hash_table_add (m->unanchored, account);
    }
  /* those that wait are taken at the deadline with what there is */
  if (g_hash_table_size (m->unanchored) > 0 && m->anchor_source == 0)
    m->anchor_source = attach (m, g_timeout_source_new ((guint) ((m->anchor_deadline - now) / 1000 + 1)),
                               on_anchor_deadline, "arb-marker-anchor-deadline");
}

static gboolean
on_reset (gpointer data)
{
  ArbMarker *m = data;
  m->reset_source = 0;
  anchor_and_persist (m);
  schedule_reset (m);
  return G_SOURCE_REMOVE;
}

/* a timer for the earliest next daily reset of any program */
static void
schedule_reset (ArbMarker *m)
{
  g_auto(GStrv) names = arb_trading_program_names (m->trading);
  gint64 now = arb_now_us ();
  gint64 next = G_MAXINT64;

  for (guint i = 0; names[i] != NULL; i++)
    {
      ArbProgram *p = arb_trading_get_program (m->trading, names[i]);
      next = MIN (next, arb_program_next_day_start (p, now));
    }
  if (next == G_MAXINT64)
    return;
  /* a millisecond late rather than early: the anchor belongs to the new day */
  m->reset_source = attach (m, g_timeout_source_new ((guint) MIN ((next - now) / 1000 + 1, G_MAXUINT32)), on_reset,
                            "arb-marker-daily-reset");
}

void
arb_marker_on_status (ArbMarker *m, const char *market, ArbMarketState state, const ArbDecimal *settlement)
{
  GHashTable *holders;
  g_autoptr(GPtrArray) accounts = NULL;
  GHashTableIter it;
  gpointer a;

  if (state != ARB_MARKET_RESOLVED && state != ARB_MARKET_CANCELLED)
    return;
  holders = arb_trading_holders (m->trading, market);
  if (holders == NULL)
    return;
  accounts = g_ptr_array_new ();
  g_hash_table_iter_init (&it, holders);
  while (g_hash_table_iter_next (&it, &a, NULL))
    g_ptr_array_add (accounts, a);
  for (guint i = 0; i < accounts->len; i++)
    arb_saga_settle (m->saga, g_ptr_array_index (accounts, i), market, state, settlement, NULL);
}

gboolean
arb_marker_flush (ArbMarker *m)
{
  g_autoptr(GPtrArray) accounts = arb_trading_list_accounts (m->trading, NULL);
  GHashTableIter it;
  gpointer a;
  gboolean idle = TRUE;

  /* every row whose marks changed goes to the store, busy or not: a batch in
   * flight wrote the row as it was when it began */
  g_hash_table_iter_init (&it, m->dirty);
  while (g_hash_table_iter_next (&it, &a, NULL))
    {
      arb_saga_persist_account (m->saga, a);
      g_hash_table_iter_remove (&it);
    }
  for (guint i = 0; i < accounts->len; i++)
    {
      ArbAccount *account = g_ptr_array_index (accounts, i);
      if (account->busy || !g_queue_is_empty (&account->waiting))
        idle = FALSE;
    }
  return idle;
}
