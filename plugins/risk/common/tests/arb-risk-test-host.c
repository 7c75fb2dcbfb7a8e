/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>

#include "arb-marker-private.h"
#include "arb-risk-test-host.h"

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  g_rmdir (path);
}

ArbRiskTestHost *
arb_risk_test_host_new (const char *groups)
{
  ArbRiskTestHost *h = g_new0 (ArbRiskTestHost, 1);
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *text = NULL;
  g_autofree char *all = NULL;

  h->dir = g_dir_make_tmp ("arb-risk-XXXXXX", &error);
  g_assert_no_error (error);
  h->log = g_build_filename (h->dir, "arbiterd.log", NULL);
  conf = g_build_filename (h->dir, "arbiter.conf", NULL);
  text = g_strdup_printf ("[runtime]\n"
                          "listen=127.0.0.1:0\n"
                          "state_dir=state\n"
                          "shutdown_timeout=5s\n"
                          "\n%s",
                          groups);
  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  g_assert_no_error (error);
  /* run by hand rather than by meson test: the build's risk plugins, only */
  if (g_getenv ("ARBITER_PLUGIN_PATH") == NULL)
    {
      g_setenv ("ARBITER_PLUGIN_PATH", ARB_RISK_PLUGIN_DIR, TRUE);
      g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
    }
  arb_log_set_output_file (h->log);
  h->host = arb_host_new (conf, problems, &error);
  all = arb_config_problems_join (problems);
  /* compared as strings, so a failure prints the problems */
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_nonnull (h->host);
  g_assert_true (arb_host_start (h->host, &error));
  g_assert_no_error (error);
  return h;
}

void
arb_risk_test_host_free (ArbRiskTestHost *h)
{
  if (h == NULL)
    return;
  arb_host_stop (h->host);
  g_clear_pointer (&h->host, arb_host_free);
  arb_log_set_output_file (NULL);
  remove_tree (h->dir);
  g_free (h->dir);
  g_free (h->log);
  g_free (h);
}

char *
arb_risk_test_failed_reason (ArbRiskTestHost *h, const char *instance)
{
  ArbInstance *inst = arb_host_find_instance (h->host, instance);

  g_assert_nonnull (inst);
  g_assert_cmpstr (arb_instance_state_to_string (arb_instance_get_state (inst)), ==,
                   arb_instance_state_to_string (ARB_INSTANCE_FAILED));
  return arb_instance_dup_reason (inst);
}

ArbDecimal
arb_risk_test_decimal (const char *text)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d = ARB_DECIMAL_ZERO;

  arb_decimal_parse (text, ARB_ROUND_EXACT, &d, &error);
  g_assert_no_error (error);
  return d;
}

static ArbDecimal
dec_or (const char *text, ArbDecimal fallback)
{
  return text != NULL ? arb_risk_test_decimal (text) : fallback;
}

ArbAccount *
arb_risk_test_add_account (ArbRiskTestHost *h, const ArbRiskTestAccount *spec)
{
  ArbProgram *program = arb_trading_get_program (h->host->trading, spec->program);
  ArbAssessmentRow *row = g_new0 (ArbAssessmentRow, 1);
  gint64 now = arb_now_us ();
  ArbAccount *account;

  g_assert_nonnull (program);
  row->id = g_strdup (spec->id);
  row->owner = g_strdup ("trader-1");
  row->program = g_strdup (spec->program);
  row->status = ARB_ASSESSMENT_ACTIVE;
  row->starting_balance = dec_or (spec->start, program->starting_balance);
  row->balance = dec_or (spec->balance, row->starting_balance);
  row->equity_hwm = dec_or (spec->equity_hwm, row->starting_balance);
  row->day_start_balance = dec_or (spec->day_start_balance, row->balance);
  row->day_start_equity = dec_or (spec->day_start_equity, row->day_start_balance);
  /* the peaks the host keeps, as a new assessment starts them (arb-saga.c)
   * and the marker moves them */
  row->balance_hwm = arb_decimal_max (row->starting_balance, row->balance);
  row->day_high_equity = arb_decimal_max (row->day_start_equity, row->equity_hwm);
  row->eod_high_balance = arb_decimal_max (row->starting_balance, row->day_start_balance);
  row->eod_high_equity = arb_decimal_max (row->starting_balance, row->day_start_equity);
  /* the current trading day's anchors: the host's daily reset leaves them be */
  row->day_start_us = arb_program_day_start (program, now);
  row->created_us = now;
  row->updated_us = now;
  arb_trading_add_account (h->host->trading, row);
  account = arb_trading_get_account (h->host->trading, spec->id);
  g_assert_nonnull (account);
  return account;
}

void
arb_risk_test_set_day_anchors (ArbAccount *account, const char *balance, const char *equity)
{
  account->row->day_start_balance = arb_risk_test_decimal (balance);
  account->row->day_start_equity = arb_risk_test_decimal (equity);
}

void
arb_risk_test_set_balance (ArbAccount *account, const char *balance)
{
  account->row->balance = arb_risk_test_decimal (balance);
}

#define ANCHOR_MARKET "crypto:ANCHOR-USD"
#define ANCHOR_BID    "100000"

void
arb_risk_test_new_day (ArbRiskTestHost *h, ArbAccount *account, const char *balance, const char *equity)
{
  ArbProgram *program = arb_trading_get_program (h->host->trading, account->row->program);
  ArbDecimal b = arb_risk_test_decimal (balance);
  ArbDecimal e = arb_risk_test_decimal (equity);
  ArbDecimal unreal, entry;
  ArbPositionRow *pos = NULL;
  g_autofree char *entry_text = NULL;
  g_autofree char *got = NULL;
  char want[ARB_DECIMAL_BUFSIZE];

  g_assert_cmpuint (account->positions->len, ==, 0);
  account->row->balance = b;
  /* equity − balance as the unrealised P&L of one unit long of a market of
   * the test's own, bid 100,000: entry = bid − (equity − balance) */
  g_assert_true (arb_decimal_sub (e, b, &unreal, NULL));
  if (unreal.raw != 0)
    {
      arb_risk_test_quote (h, ANCHOR_MARKET, ANCHOR_BID, ANCHOR_BID);
      g_assert_true (arb_decimal_sub (arb_risk_test_decimal (ANCHOR_BID), unreal, &entry, NULL));
      g_assert_cmpint (entry.raw, >, 0);
      entry_text = arb_decimal_to_string (entry);
      pos = arb_risk_test_add_position (h, account, ANCHOR_MARKET, TRUE, "1", entry_text);
    }
  got = arb_risk_test_equity (h, account);
  g_assert_cmpstr (got, ==, arb_decimal_format (e, want));
  /* yesterday's anchors: the host's reset takes today's now */
  account->row->day_start_us = arb_program_day_start (program, arb_now_us ()) - 1;
  arb_marker_take_day_anchors (h->host->marker);
  g_assert_cmpint (account->row->day_start_us, ==, arb_program_day_start (program, arb_now_us ()));
  if (pos != NULL)
    arb_trading_remove_position (h->host->trading, account, pos);
}

void
arb_risk_test_host_mark (ArbRiskTestHost *h, ArbAccount *account)
{
  arb_marker_after_change (h->host->marker, account);
}

ArbPositionRow *
arb_risk_test_add_position (ArbRiskTestHost *h, ArbAccount *account, const char *market, gboolean is_long,
                            const char *qty, const char *entry)
{
  ArbProgram *program = arb_trading_get_program (h->host->trading, account->row->program);
  ArbPositionRow *pos = g_new0 (ArbPositionRow, 1);
  g_autoptr(GError) error = NULL;
  ArbDecimal notional;

  pos->id = g_strdup_printf ("pos-%u", ++h->next_id);
  pos->assessment_id = g_strdup (account->row->id);
  pos->order_id = g_strdup_printf ("order-%u", h->next_id);
  pos->market = g_strdup (market);
  pos->side = is_long ? ARB_SIDE_LONG : ARB_SIDE_SHORT;
  pos->status = ARB_POSITION_OPEN;
  pos->quantity = arb_risk_test_decimal (qty);
  pos->initial_quantity = pos->quantity;
  pos->entry_price = arb_risk_test_decimal (entry);
  g_assert_true (arb_decimal_mul (pos->entry_price, pos->quantity, ARB_ROUND_HALF_EVEN, &notional, &error));
  if (g_strcmp0 (arb_market_class (market), "prediction") == 0)
    pos->margin = notional;
  else
    g_assert_true (arb_decimal_div (notional, program->leverage, ARB_ROUND_CEILING, &pos->margin, &error));
  g_assert_no_error (error);
  pos->opened_us = arb_now_us ();
  pos->updated_us = pos->opened_us;
  arb_trading_insert_position (h->host->trading, account, pos);
  return pos;
}

void
arb_risk_test_quote (ArbRiskTestHost *h, const char *market, const char *bid, const char *ask)
{
  g_autoptr(ArbQuote) q = arb_quote_new (market);
  gint64 now = arb_now_us ();

  if (bid != NULL)
    arb_quote_set_bid (q, arb_risk_test_decimal (bid));
  if (ask != NULL)
    arb_quote_set_ask (q, arb_risk_test_decimal (ask));
  arb_quote_set_source_time (q, now);
  q->receive_time_us = now;
  q->source = g_strdup ("ingest:test");
  g_assert_true (arb_price_book_update (h->host->book, q));
}

void
arb_risk_test_publish_event (ArbRiskTestHost *h, const char *market, const char *event)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (h->host->instances->len, >, 0);
  g_assert_true (arb_instance_publish_market_event (g_ptr_array_index (h->host->instances, 0), market, event, &error));
  g_assert_no_error (error);
}

void
arb_risk_test_order (ArbRiskTestHost *h, ArbAccount *account, const char *market, gboolean is_buy,
                     const char *qty, const char *stop_loss, ArbOrderView *out)
{
  ArbTrading *t = h->host->trading;
  ArbProgram *program = arb_trading_get_program (t, account->row->program);
  g_autoptr(ArbQuote) quote = NULL;
  g_autoptr(GError) error = NULL;
  ArbMarketRules rules;
  ArbFill fill = { 0 };

  g_assert_true (arb_trading_quote_for (t, market, &quote, &error));
  g_assert_no_error (error);
  g_assert_true (arb_trading_estimate (t, program, market, quote, is_buy, arb_risk_test_decimal (qty), &fill, &error));
  g_assert_no_error (error);
  arb_trading_market_rules (t, market, &rules);
  *out = (ArbOrderView){
    .market = market,
    .prediction = g_strcmp0 (arb_market_class (market), "prediction") == 0,
    .is_buy = is_buy,
    .quantity = fill.quantity,
    .price = fill.price,
    .notional = fill.notional,
    .fee = fill.fee,
    .margin = fill.margin,
    .fee_bps = rules.fee_bps,
    .slippage_bps = rules.slippage_bps,
    .has_stop_loss = stop_loss != NULL,
    .stop_loss = stop_loss != NULL ? arb_risk_test_decimal (stop_loss) : ARB_DECIMAL_ZERO,
  };
  arb_fill_clear (&fill);
}

static ArbInstance *
find_risk (ArbRiskTestHost *h, const char *instance)
{
  ArbInstance *inst = arb_host_find_instance (h->host, instance);
  g_assert_nonnull (inst);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RUNNING);
  return inst;
}

void
arb_risk_test_check (ArbRiskTestHost *h, const char *instance, ArbAccount *account, const ArbOrderView *order,
                     ArbRiskVerdict *verdict)
{
  ArbInstance *inst = find_risk (h, instance);
  g_autoptr(GError) error = NULL;
  ArbAccountView view;

  g_assert_true (arb_account_view_init (&view, h->host->trading, account, &error));
  g_assert_no_error (error);
  arb_risk_verdict_init (verdict);
  g_assert_true (arb_instance_risk_check_order (inst, order, &view, verdict, &error));
  g_assert_no_error (error);
  /* check_order refuses; it never reports a breach */
  g_assert_false (verdict->breach);
}

void
arb_risk_test_mark (ArbRiskTestHost *h, const char *instance, ArbAccount *account, ArbRiskVerdict *verdict)
{
  ArbInstance *inst = find_risk (h, instance);
  g_autoptr(GError) error = NULL;
  ArbAccountView view;

  g_assert_true (arb_account_view_init (&view, h->host->trading, account, &error));
  g_assert_no_error (error);
  arb_risk_verdict_init (verdict);
  g_assert_true (arb_instance_risk_on_mark (inst, &view, verdict, &error));
  g_assert_no_error (error);
  /* on_mark reports breaches; it never refuses */
  g_assert_cmpint (verdict->rejection, ==, 0);
}

static void
report_clear (gpointer data)
{
  ArbRuleReport *r = data;
  g_free (r->rule);
  g_free (r->instance);
}

GArray *
arb_risk_test_mark_reports (ArbRiskTestHost *h, const char *instance, ArbAccount *account, ArbRiskVerdict *verdict)
{
  ArbInstance *inst = find_risk (h, instance);
  g_autoptr(GError) error = NULL;
  GArray *reports = g_array_new (FALSE, TRUE, sizeof (ArbRuleReport));
  ArbAccountView view;

  g_array_set_clear_func (reports, report_clear);
  g_assert_true (arb_account_view_init (&view, h->host->trading, account, &error));
  g_assert_no_error (error);
  arb_risk_verdict_init (verdict);
  verdict->reports = reports;
  g_assert_true (arb_instance_risk_on_mark (inst, &view, verdict, &error));
  g_assert_no_error (error);
  verdict->reports = NULL;
  return reports;
}

const char *
arb_risk_test_evidence (const ArbRiskVerdict *verdict, const char *key)
{
  for (guint i = 0; i + 1 < verdict->evidence->len; i += 2)
    if (g_str_equal (g_ptr_array_index (verdict->evidence, i), key))
      return g_ptr_array_index (verdict->evidence, i + 1);
  return NULL;
}

char *
arb_risk_test_equity (ArbRiskTestHost *h, ArbAccount *account)
{
  g_autoptr(GError) error = NULL;
  ArbAccountValue v;

  g_assert_true (arb_trading_value (h->host->trading, account, &v, &error));
  g_assert_no_error (error);
  return arb_decimal_to_string (v.equity);
}
