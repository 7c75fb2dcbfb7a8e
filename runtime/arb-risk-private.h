/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-trading-private.h"

G_BEGIN_DECLS

/* The risk views handed to plugins (arb-plugin.h), filled by the host. */
struct _ArbOrderView {
  const char *market;
  gboolean    prediction;
  gboolean    is_buy;
  ArbDecimal  quantity, price, notional, fee, margin;
  gint64      fee_bps;
  gint64      slippage_bps;
  gboolean    has_stop_loss, has_take_profit;
  ArbDecimal  stop_loss, take_profit;
  /* borrowed, nullable: the market's event; NULL until the host looks it
   * up (arb_risk_check_order, arb_instance_risk_check_order), so whoever
   * fills a view need not */
  const char *event;
};

struct _ArbAccountView {
  ArbTrading     *trading;
  ArbAccount     *account;
  ArbAccountValue value;
  gint64          now_us;
};

struct _ArbRiskVerdict {
  int        rejection;  /* ArbRiskRejection, 0: allowed */
  char      *message;    /* owned, nullable */
  gboolean   breach;
  char      *rule;       /* owned, nullable */
  GPtrArray *evidence;   /* owned: key, value, key, value... */
  GArray    *reports;    /* owned, nullable: ArbRuleReport, when the host asks */
  gboolean   pause;
  gint64     pause_until_us;
};

typedef struct {
  char       *rule;      /* owned */
  char       *instance;  /* owned: the risk instance that reported it */
  ArbDecimal  limit, current, room;
} ArbRuleReport;

/* every rule of the program's risk instances, for GET /assessments/{id};
 * (element-type ArbRuleReport) */
GArray *arb_risk_report (ArbHost *host, ArbTrading *trading, ArbAccount *account);

void arb_risk_verdict_init (ArbRiskVerdict *verdict);
void arb_risk_verdict_clear (ArbRiskVerdict *verdict);

/* fills an account view from the live state; FALSE on overflow */
gboolean arb_account_view_init (ArbAccountView *view, ArbTrading *trading, ArbAccount *account, GError **error);
/* the same, cheaply, right after a quote of @market (arb_trading_value_after_mark) */
gboolean arb_account_view_init_after_mark (ArbAccountView *view, ArbTrading *trading, ArbAccount *account,
                                           const char *market, const ArbQuote *quote, GError **error);

/* the saga's risk step: every risk instance of the program must be running
 * (fail closed) and allow the order; the first refusal wins */
gboolean arb_risk_check_order (ArbHost *host, ArbTrading *trading, ArbProgram *program, ArbAccount *account,
                               const ArbOrderView *order, GError **error);

/* the host's wrappers of the risk callbacks (arb-instance.c) */
gboolean arb_instance_risk_check_order (ArbInstance *inst, const ArbOrderView *order, const ArbAccountView *account,
                                        ArbRiskVerdict *verdict, GError **error);
gboolean arb_instance_risk_on_mark (ArbInstance *inst, const ArbAccountView *account, ArbRiskVerdict *verdict,
                                    GError **error);

G_END_DECLS
