/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* risk-exposure through the real host: the key file below, the loader and
 * the instance wrappers, assessments and positions in the trading core,
 * quotes in the price book, orders estimated as the saga estimates them.
 * Every expected total and limit was computed by hand (comments).
 *
 * The program: starting balance 100,000, leverage 10; fills at the quote
 * (slippage 0). Quotes: BTC-USD 49,990 / 50,000, ETH-USD 1,999 / 2,000, the
 * Kalshi and Polymarket markets below at 0.49 / 0.50 unless said otherwise. */

#include "arb-risk-test-host.h"

#define BTC "crypto:BTC-USD"
#define ETH "crypto:ETH-USD"
/* one Kalshi event (the NYC high temperature of 21 Nov), three of its markets */
#define NY_B505_YES "kalshi:KXHIGHNY-26NOV21-B50.5:yes"
#define NY_B525_NO  "kalshi:KXHIGHNY-26NOV21-B52.5:no"
#define NY_T54_YES  "kalshi:KXHIGHNY-26NOV21-T54:yes"
/* another event: the day before */
#define NY20_YES    "kalshi:KXHIGHNY-26NOV20-B51.5:yes"
#define FED_YES     "kalshi:KXFED-26DEC-T3.75:yes"
#define FED_NO      "kalshi:KXFED-26DEC-T3.75:no"
#define POLY_A      "polymarket:1001"
#define POLY_B      "polymarket:1002"

static const char groups[] =
  "[program:p]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "\n"
  "[market-class:crypto]\n"
  "slippage_bps=0\n"
  "max_quote_age=1h\n"
  "\n"
  "[market-class:prediction]\n"
  "slippage_bps=0\n"
  "max_quote_age=1h\n"
  "\n"
  "[risk:positions]\n"
  "plugin=risk-exposure\n"
  "max_open_positions=3\n"
  "\n"
  "[risk:market]\n"
  "plugin=risk-exposure\n"
  "max_position_notional_pct=50\n"
  "\n"
  "[risk:event]\n"
  "plugin=risk-exposure\n"
  "max_event_exposure_pct=5\n"
  "\n"
  "[risk:event-market]\n"
  "plugin=risk-exposure\n"
  "max_event_exposure_pct=5\n"
  "kalshi_event=market\n"
  "\n"
  "[risk:nothing]\n"
  "plugin=risk-exposure\n"
  "kalshi_event=market\n"
  "\n"
  "[risk:zero]\n"
  "plugin=risk-exposure\n"
  "max_event_exposure_pct=0\n";

static ArbRiskTestHost *
host_up (void)
{
  static const char *const prediction[] = { NY_B505_YES, NY_B525_NO, NY_T54_YES, NY20_YES, FED_YES, FED_NO, POLY_A, POLY_B };
  ArbRiskTestHost *h = arb_risk_test_host_new (groups);

  arb_risk_test_quote (h, BTC, "49990", "50000");
  arb_risk_test_quote (h, ETH, "1999", "2000");
  for (guint i = 0; i < G_N_ELEMENTS (prediction); i++)
    arb_risk_test_quote (h, prediction[i], "0.49", "0.50");
  return h;
}

/* checks a buy of @qty in @market; @message NULL means allowed */
static void
check (ArbRiskTestHost *h, const char *instance, ArbAccount *a, const char *market, gboolean is_buy, const char *qty,
       const char *message)
{
  ArbOrderView order;
  ArbRiskVerdict v;

  g_test_message ("%s: %s %s %s", instance, is_buy ? "buy" : "sell", qty, market);
  arb_risk_test_order (h, a, market, is_buy, qty, NULL, &order);
  arb_risk_test_check (h, instance, a, &order, &v);
  if (message == NULL)
    {
      if (v.rejection != 0)
        g_test_fail_printf ("refused: %s", v.message);
    }
  else
    {
      g_assert_cmpint (v.rejection, ==, ARB_RISK_REJECT_LIMIT);
      g_assert_cmpstr (v.message, ==, message);
    }
  arb_risk_verdict_clear (&v);
}

static void
test_open_positions (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  check (h, "risk:positions", a, BTC, TRUE, "0.1", NULL);
  arb_risk_test_add_position (h, a, BTC, TRUE, "0.1", "50000");
  arb_risk_test_add_position (h, a, BTC, FALSE, "0.1", "50000");
  /* two open: a third is allowed */
  check (h, "risk:positions", a, ETH, TRUE, "1", NULL);
  arb_risk_test_add_position (h, a, POLY_A, TRUE, "10", "0.5");
  check (h, "risk:positions", a, ETH, TRUE, "1",
         "3 positions are open: the order would open one more, above max_open_positions 3");
  check (h, "risk:positions", a, POLY_B, TRUE, "1",
         "3 positions are open: the order would open one more, above max_open_positions 3");
}

/* 50% of the 100,000 start = 50,000 of notional per market */
static void
test_market_notional (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  /* held: 0.4 × 50,000 + 0.2 × 50,000 (a short counts the same) = 30,000 */
  arb_risk_test_add_position (h, a, BTC, TRUE, "0.4", "50000");
  arb_risk_test_add_position (h, a, BTC, FALSE, "0.2", "50000");
  /* + 0.4 × 50,000 = 50,000: on the limit */
  check (h, "risk:market", a, BTC, TRUE, "0.4", NULL);
  /* + 0.41 × 50,000 = 20,500: 50,500 */
  check (h, "risk:market", a, BTC, TRUE, "0.41",
         "notional in crypto:BTC-USD would be 50500.00 (held 30000.00 + order 20500.00), above 50% of starting "
         "balance 100000.00 = 50000.00");
  /* a sell fills at the bid: 0.41 × 49,990 = 20,495.90 */
  check (h, "risk:market", a, BTC, FALSE, "0.41",
         "notional in crypto:BTC-USD would be 50495.90 (held 30000.00 + order 20495.90), above 50% of starting "
         "balance 100000.00 = 50000.00");
  /* the held notional is at entry, not at the mark: the same after a move */
  arb_risk_test_quote (h, BTC, "39990", "40000");
  check (h, "risk:market", a, BTC, TRUE, "0.5", NULL); /* 30,000 + 20,000 */
  /* another market starts from nothing: 25 × 2,000 = 50,000 */
  check (h, "risk:market", a, ETH, TRUE, "25", NULL);
  check (h, "risk:market", a, ETH, TRUE, "25.00000001",
         "notional in crypto:ETH-USD would be 50000.00002 (held 0.00 + order 50000.00002), above 50% of starting "
         "balance 100000.00 = 50000.00");
}

/* 5% of the 100,000 start = 5,000 of cost per event; the Kalshi event is
 * the ticker up to its last '-' */
static void
test_event_kalshi (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });
  ArbPositionRow *held;

  /* the orders that opened what is held passed through the rule, as they
   * do through the saga: 4,000 × 0.50 = 2,000 and 3,000 × 0.50 = 1,500 */
  check (h, "risk:event", a, NY_B505_YES, TRUE, "4000", NULL);
  held = arb_risk_test_add_position (h, a, NY_B505_YES, TRUE, "4000", "0.5");
  check (h, "risk:event", a, NY_B525_NO, TRUE, "3000", NULL);
  arb_risk_test_add_position (h, a, NY_B525_NO, TRUE, "3000", "0.5");
  /* 3,500 held + 3,000 × 0.50 = 5,000: on the limit */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3000", NULL);
  /* 3,500 + 3,002 × 0.50 = 1,501: 5,001 */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3002",
         "exposure to event kalshi:KXHIGHNY-26NOV21 would be 5001.00 (held 3500.00 + order 1501.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* adding to a market already held counts it once: 3,500 + 1,501 */
  check (h, "risk:event", a, NY_B505_YES, TRUE, "3002",
         "exposure to event kalshi:KXHIGHNY-26NOV21 would be 5001.00 (held 3500.00 + order 1501.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* another event (another day) starts from nothing: 10,000 × 0.50 */
  check (h, "risk:event", a, NY20_YES, TRUE, "10000", NULL);
  check (h, "risk:event", a, NY20_YES, TRUE, "10002",
         "exposure to event kalshi:KXHIGHNY-26NOV20 would be 5001.00 (held 0.00 + order 5001.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* with kalshi_event=market each ticker is its own event: 2,000 + 1,501 */
  check (h, "risk:event-market", a, NY_B505_YES, TRUE, "3002", NULL);
  /* a closed position no longer counts */
  arb_trading_remove_position (h->host->trading, a, held);
  /* 1,500 + 3,002 × 0.50 = 3,001 */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3002", NULL);
}

/* the yes and no sides of one ticker are one event, also when the rule
 * never saw the order that opened the other side */
static void
test_event_sides (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  arb_risk_test_quote (h, FED_NO, "0.44", "0.45");
  arb_risk_test_add_position (h, a, FED_YES, TRUE, "6000", "0.5"); /* 3,000 */
  /* 3,000 + 5,000 × 0.45 = 2,250: 5,250 */
  check (h, "risk:event-market", a, FED_NO, TRUE, "5000",
         "exposure to event kalshi:KXFED-26DEC-T3.75 would be 5250.00 (held 3000.00 + order 2250.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  check (h, "risk:event", a, FED_NO, TRUE, "5000",
         "exposure to event kalshi:KXFED-26DEC would be 5250.00 (held 3000.00 + order 2250.00), above 5% of starting "
         "balance 100000.00 = 5000.00");
  /* 3,000 + 4,444 × 0.45 = 1,999.80: 4,999.80 */
  check (h, "risk:event-market", a, FED_NO, TRUE, "4444", NULL);
}

/* a Polymarket token is its own event until the host knows better */
static void
test_event_polymarket (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  arb_risk_test_quote (h, POLY_A, "0.18", "0.19");
  arb_risk_test_add_position (h, a, POLY_A, TRUE, "20000", "0.19"); /* 3,800 */
  /* 3,800 + 7,000 × 0.19 = 1,330: 5,130 */
  check (h, "risk:event", a, POLY_A, TRUE, "7000",
         "exposure to event polymarket:1001 would be 5130.00 (held 3800.00 + order 1330.00), above 5% of starting "
         "balance 100000.00 = 5000.00");
  /* 3,800 + 6,300 × 0.19 = 1,197: 4,997 */
  check (h, "risk:event", a, POLY_A, TRUE, "6300", NULL);
  /* another token: 10,000 × 0.50 */
  check (h, "risk:event", a, POLY_B, TRUE, "10000", NULL);
  /* crypto has no events: 2 × 50,000 is no event exposure */
  check (h, "risk:event", a, BTC, TRUE, "2", NULL);
}

static void
test_config (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  g_autofree char *nothing = arb_risk_test_failed_reason (h, "risk:nothing");
  g_autofree char *zero = arb_risk_test_failed_reason (h, "risk:zero");

  g_assert_cmpstr (nothing, ==,
                   "create: nothing to check: set max_open_positions, max_position_notional_pct or "
                   "max_event_exposure_pct");
  g_assert_cmpstr (zero, ==, "create: max_event_exposure_pct must be above 0 (leave it out for no limit)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/risk-exposure/open-positions", test_open_positions);
  g_test_add_func ("/risk-exposure/market-notional", test_market_notional);
  g_test_add_func ("/risk-exposure/event/kalshi", test_event_kalshi);
  g_test_add_func ("/risk-exposure/event/kalshi-sides", test_event_sides);
  g_test_add_func ("/risk-exposure/event/polymarket", test_event_polymarket);
  g_test_add_func ("/risk-exposure/config", test_config);
  return g_test_run ();
}
