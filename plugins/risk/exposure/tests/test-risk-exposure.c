/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* risk-exposure through the real host: the key file below, the loader and
 * the instance wrappers, assessments and positions in the trading core,
 * quotes in the price book, the markets' events published through the
 * host's API as the ingest plugins publish them, orders estimated as the
 * saga estimates them. Every expected total and limit was computed by hand
 * (comments).
 *
 * The program: starting balance 100,000, leverage 10; fills at the quote
 * (slippage 0). Quotes: BTC-USD 49,990 / 50,000, ETH-USD 1,999 / 2,000, the
 * Kalshi and Polymarket markets below at 0.49 / 0.50 unless said otherwise.
 * Positions are put into the trading core directly, as a restart loads them
 * from the store: the rule counts what is held, not what it saw. */

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
/* a Polymarket event (Gamma event 903) with two markets, two outcome tokens
 * each; another event (904) with one market; a token nobody gave an event */
#define M1_YES      "polymarket:1001"
#define M1_NO       "polymarket:1002"
#define M2_YES      "polymarket:1003"
#define M2_NO       "polymarket:1004"
#define OTHER_YES   "polymarket:2001"
#define OTHER_NO    "polymarket:2002"
#define LONE        "polymarket:3001"
#define LONE_2      "polymarket:3002"
#define EVENT_903   "polymarket-event:903"
#define EVENT_904   "polymarket-event:904"
#define NY21_EVENT  "kalshi-event:KXHIGHNY-26NOV21"
#define NY20_EVENT  "kalshi-event:KXHIGHNY-26NOV20"

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
  static const char *const prediction[] = { NY_B505_YES, NY_B525_NO, NY_T54_YES, NY20_YES, FED_YES, FED_NO,
                                             M1_YES, M1_NO, M2_YES, M2_NO, OTHER_YES, OTHER_NO, LONE, LONE_2 };
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

/* both sides of a Kalshi market in its event, as ingest-kalshi publishes
 * them (the market's event_ticker) */
static void
publish_kalshi (ArbRiskTestHost *h, const char *ticker, const char *event)
{
  g_autofree char *yes = g_strdup_printf ("kalshi:%s:yes", ticker);
  g_autofree char *no = g_strdup_printf ("kalshi:%s:no", ticker);

  arb_risk_test_publish_event (h, yes, event);
  arb_risk_test_publish_event (h, no, event);
}

/* 5% of the 100,000 start = 5,000 of cost per event; the Kalshi event is
 * the event ticker ingest-kalshi published for each market */
static void
test_event_kalshi (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });
  ArbPositionRow *held;

  publish_kalshi (h, "KXHIGHNY-26NOV21-B50.5", NY21_EVENT);
  publish_kalshi (h, "KXHIGHNY-26NOV21-B52.5", NY21_EVENT);
  publish_kalshi (h, "KXHIGHNY-26NOV21-T54", NY21_EVENT);
  publish_kalshi (h, "KXHIGHNY-26NOV20-B51.5", NY20_EVENT);
  /* held: 4,000 × 0.50 = 2,000 and 3,000 × 0.50 = 1,500 (the no side of
   * another market of the event) */
  held = arb_risk_test_add_position (h, a, NY_B505_YES, TRUE, "4000", "0.5");
  arb_risk_test_add_position (h, a, NY_B525_NO, TRUE, "3000", "0.5");
  /* 3,500 held + 3,000 × 0.50 = 5,000: on the limit */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3000", NULL);
  /* 3,500 + 3,002 × 0.50 = 1,501: 5,001 */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3002",
         "exposure to event kalshi-event:KXHIGHNY-26NOV21 would be 5001.00 (held 3500.00 + order 1501.00), above 5% "
         "of starting balance 100000.00 = 5000.00");
  /* adding to a market already held counts it once: 3,500 + 1,501 */
  check (h, "risk:event", a, NY_B505_YES, TRUE, "3002",
         "exposure to event kalshi-event:KXHIGHNY-26NOV21 would be 5001.00 (held 3500.00 + order 1501.00), above 5% "
         "of starting balance 100000.00 = 5000.00");
  /* another event (another day) starts from nothing: 10,000 × 0.50 */
  check (h, "risk:event", a, NY20_YES, TRUE, "10000", NULL);
  check (h, "risk:event", a, NY20_YES, TRUE, "10002",
         "exposure to event kalshi-event:KXHIGHNY-26NOV20 would be 5001.00 (held 0.00 + order 5001.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* with kalshi_event=market each ticker is its own event: 2,000 + 1,501 */
  check (h, "risk:event-market", a, NY_B505_YES, TRUE, "3002", NULL);
  /* a closed position no longer counts */
  arb_trading_remove_position (h->host->trading, a, held);
  /* 1,500 + 3,002 × 0.50 = 3,001 */
  check (h, "risk:event", a, NY_T54_YES, TRUE, "3002", NULL);
}

/* the yes and no sides of one ticker are one event in either mode, also
 * when no event was published for the market */
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
         "exposure to event kalshi:KXFED-26DEC-T3.75 would be 5250.00 (held 3000.00 + order 2250.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* 3,000 + 4,444 × 0.45 = 1,999.80: 4,999.80 */
  check (h, "risk:event-market", a, FED_NO, TRUE, "4444", NULL);
  check (h, "risk:event", a, FED_NO, TRUE, "4444", NULL);
  /* once ingest-kalshi says the event, the rule names it; the sum is the same */
  publish_kalshi (h, "KXFED-26DEC-T3.75", "kalshi-event:KXFED-26DEC");
  check (h, "risk:event", a, FED_NO, TRUE, "5000",
         "exposure to event kalshi-event:KXFED-26DEC would be 5250.00 (held 3000.00 + order 2250.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  check (h, "risk:event-market", a, FED_NO, TRUE, "5000",
         "exposure to event kalshi:KXFED-26DEC-T3.75 would be 5250.00 (held 3000.00 + order 2250.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
}

/* A Polymarket event groups markets of two outcome tokens each: every token
 * of every market of Gamma event 903 counts together */
static void
test_event_polymarket (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });
  static const char *const event_903[] = { M1_YES, M1_NO, M2_YES, M2_NO };

  for (guint i = 0; i < G_N_ELEMENTS (event_903); i++)
    arb_risk_test_publish_event (h, event_903[i], EVENT_903);
  arb_risk_test_publish_event (h, OTHER_YES, EVENT_904);
  arb_risk_test_publish_event (h, OTHER_NO, EVENT_904);

  /* held in the first market: 6,000 × 0.50 + 1,000 × 0.50 = 3,500; in
   * event 904: 8,000 × 0.50 = 4,000; in the token of no event: 1,000 */
  arb_risk_test_add_position (h, a, M1_YES, TRUE, "6000", "0.5");
  arb_risk_test_add_position (h, a, M1_NO, TRUE, "1000", "0.5");
  arb_risk_test_add_position (h, a, OTHER_YES, TRUE, "8000", "0.5");
  arb_risk_test_add_position (h, a, LONE, TRUE, "2000", "0.5");

  /* the second market: 3,500 + 3,000 × 0.50 = 5,000, on the limit (event
   * 904 and the lone token are not counted) */
  check (h, "risk:event", a, M2_YES, TRUE, "3000", NULL);
  /* 3,500 + 3,002 × 0.50 = 1,501: 5,001 */
  check (h, "risk:event", a, M2_YES, TRUE, "3002",
         "exposure to event polymarket-event:903 would be 5001.00 (held 3500.00 + order 1501.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  check (h, "risk:event", a, M2_NO, TRUE, "3002",
         "exposure to event polymarket-event:903 would be 5001.00 (held 3500.00 + order 1501.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* each token of the second market alone is far below the limit */
  check (h, "risk:market", a, M2_YES, TRUE, "3002", NULL);
  /* another event counts its own: 4,000 + 2,000 × 0.50 = 5,000; + 2 more: 5,001 */
  check (h, "risk:event", a, OTHER_NO, TRUE, "2000", NULL);
  check (h, "risk:event", a, OTHER_NO, TRUE, "2002",
         "exposure to event polymarket-event:904 would be 5001.00 (held 4000.00 + order 1001.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* a token of no event counts alone: 1,000 + 8,000 × 0.50 = 5,000; 8,002: 5,001 */
  check (h, "risk:event", a, LONE, TRUE, "8000", NULL);
  check (h, "risk:event", a, LONE, TRUE, "8002",
         "exposure to event polymarket:3001 would be 5001.00 (held 1000.00 + order 4001.00), above 5% of starting "
         "balance 100000.00 = 5000.00");
  /* and another such token holds nothing of it: 10,000 × 0.50 */
  check (h, "risk:event", a, LONE_2, TRUE, "10000", NULL);
  /* crypto has no events: 2 × 50,000 is no event exposure */
  check (h, "risk:event", a, BTC, TRUE, "2", NULL);
}

/* Gamma moves a market to another event: the latest mapping counts */
static void
test_event_moved (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  arb_risk_test_publish_event (h, M1_YES, EVENT_903);
  arb_risk_test_publish_event (h, M2_YES, EVENT_903);
  arb_risk_test_publish_event (h, OTHER_YES, EVENT_904);
  arb_risk_test_add_position (h, a, M1_YES, TRUE, "7000", "0.5");    /* 3,500 */
  arb_risk_test_add_position (h, a, OTHER_YES, TRUE, "8000", "0.5"); /* 4,000 */
  check (h, "risk:event", a, M2_YES, TRUE, "3002",
         "exposure to event polymarket-event:903 would be 5001.00 (held 3500.00 + order 1501.00), above 5% of "
         "starting balance 100000.00 = 5000.00");
  /* the first market now belongs to event 904: 903 holds nothing */
  arb_risk_test_publish_event (h, M1_YES, EVENT_904);
  check (h, "risk:event", a, M2_YES, TRUE, "3002", NULL);
  /* and 904 holds both: 7,500 + 2 × 0.50 = 7,501 */
  check (h, "risk:event", a, OTHER_YES, TRUE, "2",
         "exposure to event polymarket-event:904 would be 7501.00 (held 7500.00 + order 1.00), above 5% of starting "
         "balance 100000.00 = 5000.00");
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
  g_test_add_func ("/risk-exposure/event/moved", test_event_moved);
  g_test_add_func ("/risk-exposure/config", test_config);
  return g_test_run ();
}
