/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A real host for the risk plugins' tests: a key file in a temporary
 * directory, arb_host_new() and arb_host_start() (loader, schema checks,
 * instance wrappers, store, trading core), then assessments and positions put
 * into the trading core, quotes into the price book, orders estimated as the
 * saga does, and the plugin called through the host's wrappers with views
 * from arb_account_view_init(). No fake host anywhere. */

#include "arb-risk-private.h"

G_BEGIN_DECLS

typedef struct {
  char    *dir;  /* owned: the temporary directory */
  char    *log;  /* owned: the host's log file */
  ArbHost *host; /* owned */
  guint    next_id;
} ArbRiskTestHost;

/* [runtime] (listen on an ephemeral port, state in the temporary directory)
 * followed by @groups; every config problem fails the test */
ArbRiskTestHost *arb_risk_test_host_new (const char *groups);
void             arb_risk_test_host_free (ArbRiskTestHost *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbRiskTestHost, arb_risk_test_host_free)

/* the reason a risk instance of @h is FAILED with (a create that refused
 * its config); fails the test when it is running */
char *arb_risk_test_failed_reason (ArbRiskTestHost *h, const char *instance);

/* exact: asserts @text parses without rounding */
ArbDecimal arb_risk_test_decimal (const char *text);

/* an active assessment; NULL amounts default as noted */
typedef struct {
  const char *id;
  const char *program;
  const char *start;             /* the starting balance; NULL: the program's */
  const char *balance;           /* NULL: start */
  const char *equity_hwm;        /* NULL: start */
  const char *day_start_balance; /* NULL: balance */
  const char *day_start_equity;  /* NULL: day_start_balance */
} ArbRiskTestAccount;

ArbAccount *arb_risk_test_add_account (ArbRiskTestHost *h, const ArbRiskTestAccount *spec);

/* the anchors the host takes at a daily reset, set by hand (the host's
 * end-of-day highs do not move) */
void arb_risk_test_set_day_anchors (ArbAccount *account, const char *balance, const char *equity);
void arb_risk_test_set_balance (ArbAccount *account, const char *balance);

/* a new trading day as the host starts it: @account (without positions)
 * ends the day at @balance and @equity (the difference held for the reset
 * as one open position of a market of the helper's own), then the host's
 * marker takes the day anchors (arb_marker_take_day_anchors: the anchors,
 * the end-of-day highs, the day's peak equity); the account is left at
 * @balance without positions */
void arb_risk_test_new_day (ArbRiskTestHost *h, ArbAccount *account, const char *balance, const char *equity);

/* the host's marker re-values @account as after a change of it
 * (arb_marker_after_change): the equity and balance high-water marks and
 * the day's peak equity move, and the program's own risk instances run */
void arb_risk_test_host_mark (ArbRiskTestHost *h, ArbAccount *account);

/* an open position at @entry; its margin is entry × qty / the program's
 * leverage (the whole cost for a prediction market), rounded up */
ArbPositionRow *arb_risk_test_add_position (ArbRiskTestHost *h, ArbAccount *account, const char *market,
                                            gboolean is_long, const char *qty, const char *entry);

/* a fresh quote into the host's price book; NULL leaves a side unset */
void arb_risk_test_quote (ArbRiskTestHost *h, const char *market, const char *bid, const char *ask);

/* @market is in @event, published through arb_instance_publish_market_event()
 * as an ingest plugin publishes it (the host takes it from any instance; the
 * test host has risk instances only); the call must succeed */
void arb_risk_test_publish_event (ArbRiskTestHost *h, const char *market, const char *event);

/* The order view as the saga fills it: a fresh quote from the book, the
 * host's execution estimate (slippage, notional, fee, margin), the market's
 * fee rate. @market must outlive @out. @stop_loss may be NULL. */
void arb_risk_test_order (ArbRiskTestHost *h, ArbAccount *account, const char *market, gboolean is_buy,
                          const char *qty, const char *stop_loss, ArbOrderView *out);

/* through arb_instance_risk_check_order / arb_instance_risk_on_mark, with a
 * fresh account view; @verdict is initialised here and cleared by the
 * caller with arb_risk_verdict_clear(); the call must succeed */
void arb_risk_test_check (ArbRiskTestHost *h, const char *instance, ArbAccount *account, const ArbOrderView *order,
                          ArbRiskVerdict *verdict);
void arb_risk_test_mark (ArbRiskTestHost *h, const char *instance, ArbAccount *account, ArbRiskVerdict *verdict);

/* the same as arb_risk_test_mark(), with the rules' standing asked for as
 * GET /assessments/{id} asks: returns the reports, (element-type
 * ArbRuleReport), to be freed with g_array_unref() */
GArray *arb_risk_test_mark_reports (ArbRiskTestHost *h, const char *instance, ArbAccount *account,
                                    ArbRiskVerdict *verdict);

/* the value of evidence @key, or NULL */
const char *arb_risk_test_evidence (const ArbRiskVerdict *verdict, const char *key);

/* the equity the host computes now, formatted by arb_decimal_format() */
char *arb_risk_test_equity (ArbRiskTestHost *h, ArbAccount *account);

G_END_DECLS
