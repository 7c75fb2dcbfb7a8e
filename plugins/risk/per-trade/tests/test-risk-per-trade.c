/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* risk-per-trade through the real host: the key file below, the loader and
 * the instance wrappers, assessments and positions in the trading core,
 * quotes in the price book, orders estimated as the saga estimates them.
 * Every expected risk, limit and message was computed by hand; the
 * arithmetic is in the comment of each row.
 *
 * The program: starting balance 100,000, leverage 10. Crypto fills at the
 * quote (slippage 0) with a 10 bps fee, except ETH-USD (0 bps, so a risk
 * can sit exactly on a limit) and SOL-USD (5 bps of slippage, which the
 * close at the stop suffers too); prediction fills at the ask with 20 bps.
 * Quotes: BTC-USD 49,990 / 50,000, ETH-USD 1,999 / 2,000, SOL-USD 149.95 /
 * 150, polymarket:1001 0.18 / 0.19. */

#include "arb-risk-test-host.h"

#define BTC  "crypto:BTC-USD"
#define ETH  "crypto:ETH-USD"
#define SOL  "crypto:SOL-USD"
#define POLY "polymarket:1001"

static const char groups[] =
  "[program:p]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "risk=initial\n"
  "\n"
  "[market-class:crypto]\n"
  "slippage_bps=0\n"
  "fee_bps=10\n"
  "max_quote_age=1h\n"
  "\n"
  "[market-class:prediction]\n"
  "slippage_bps=0\n"
  "fee_bps=20\n"
  "max_quote_age=1h\n"
  "\n"
  "[market:crypto:ETH-USD]\n"
  "fee_bps=0\n"
  "\n"
  "[market:crypto:SOL-USD]\n"
  "slippage_bps=5\n"
  "\n"
  "[risk:initial]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=2\n"
  "\n"
  "[risk:balance]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=2\n"
  "basis=balance\n"
  "\n"
  "[risk:equity]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=2\n"
  "basis=equity\n"
  "\n"
  "[risk:fine]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=1.5\n"
  "basis=balance\n"
  "\n"
  "[risk:strict]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=2\n"
  "require_stop_loss=true\n"
  "\n"
  "[risk:slip]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=1.05\n"
  "\n"
  "[risk:slip-tight]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=1.04\n"
  "\n"
  "[risk:tiny]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=0.01\n"
  "\n"
  "[risk:micro]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=0.0004\n"
  "\n"
  "[risk:zero]\n"
  "plugin=risk-per-trade\n"
  "max_risk_per_trade_pct=0\n";

typedef struct {
  const char *instance;
  const char *market;
  gboolean    is_buy;
  const char *qty;
  const char *stop;    /* NULL: no stop-loss */
  const char *message; /* NULL: allowed */
} Case;

static ArbRiskTestHost *
host_up (void)
{
  ArbRiskTestHost *h = arb_risk_test_host_new (groups);
  arb_risk_test_quote (h, BTC, "49990", "50000");
  arb_risk_test_quote (h, ETH, "1999", "2000");
  arb_risk_test_quote (h, SOL, "149.95", "150");
  arb_risk_test_quote (h, POLY, "0.18", "0.19");
  return h;
}

static void
run_cases (ArbRiskTestHost *h, ArbAccount *account, const Case *cases, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      const Case *c = &cases[i];
      ArbOrderView order;
      ArbRiskVerdict verdict;

      g_test_message ("case %u: %s %s %s %s stop %s", i, c->instance, c->is_buy ? "buy" : "sell", c->qty, c->market,
                      c->stop != NULL ? c->stop : "none");
      arb_risk_test_order (h, account, c->market, c->is_buy, c->qty, c->stop, &order);
      arb_risk_test_check (h, c->instance, account, &order, &verdict);
      if (c->message == NULL)
        g_assert_cmpint (verdict.rejection, ==, 0);
      else
        {
          g_assert_cmpint (verdict.rejection, ==, ARB_RISK_REJECT_LIMIT);
          g_assert_cmpstr (verdict.message, ==, c->message);
        }
      arb_risk_verdict_clear (&verdict);
    }
}

/* basis=initial: the limit is 2% of 100,000 = 2,000.00 */
static void
test_initial (void)
{
  static const Case cases[] = {
    /* |50,000 − 49,000| × 2 = 2,000; fees 100,000 × 0.001 = 100 and 98,000 × 0.001 = 98: 2,198 */
    { "risk:initial", BTC, TRUE, "2", "49000",
      "risk 2198.00 exceeds 2% of initial balance 100000.00 = 2000.00 (|entry 50000.00 − stop 49000.00| × 2 = "
      "2000.00 + opening fee 100.00 + closing fee at the stop 98.00)" },
    /* 1,800 + 90 + 88.20 = 1,978.20 */
    { "risk:initial", BTC, TRUE, "1.8", "49000", NULL },
    /* a sell opens a short at the bid: |49,990 − 50,990| × 2 = 2,000; fees 99.98 and 101.98 */
    { "risk:initial", BTC, FALSE, "2", "50990",
      "risk 2201.96 exceeds 2% of initial balance 100000.00 = 2000.00 (|entry 49990.00 − stop 50990.00| × 2 = "
      "2000.00 + opening fee 99.98 + closing fee at the stop 101.98)" },
    /* |2,000 − 1,800| × 10 = 2,000.00 exactly, no fees: on the limit is allowed */
    { "risk:initial", ETH, TRUE, "10", "1800", NULL },
    /* 200.00000001 × 10 = 2,000.0000001: one step over */
    { "risk:initial", ETH, TRUE, "10", "1799.99999999",
      "risk 2000.0000001 exceeds 2% of initial balance 100000.00 = 2000.00 (|entry 2000.00 − stop 1799.99999999| × "
      "10 = 2000.0000001 + opening fee 0.00 + closing fee at the stop 0.00)" },
    /* no stop: margin 50,000 / 10 = 5,000 + fee 50 */
    { "risk:initial", BTC, TRUE, "1", NULL,
      "risk 5050.00 exceeds 2% of initial balance 100000.00 = 2000.00 (no stop-loss: margin 5000.00 + opening fee "
      "50.00)" },
    /* no stop: 19,500 / 10 = 1,950 + 19.50 = 1,969.50 */
    { "risk:initial", BTC, TRUE, "0.39", NULL, NULL },
    /* prediction shares without a stop risk their cost: 10,000 × 0.19 = 1,900 + 3.80 */
    { "risk:initial", POLY, TRUE, "10000", NULL, NULL },
    /* 10,600 × 0.19 = 2,014 + 2,014 × 0.002 = 4.028 */
    { "risk:initial", POLY, TRUE, "10600", NULL,
      "risk 2018.028 exceeds 2% of initial balance 100000.00 = 2000.00 (no stop-loss: cost 2014.00 + opening fee "
      "4.028)" },
    /* with a stop, shares risk the move to it: 0.14 × 10,000 = 1,400 + 3.80 + 500 × 0.002 = 1.00 */
    { "risk:initial", POLY, TRUE, "10000", "0.05", NULL },
    /* 0.14 × 15,000 = 2,100 + 5.70 + 750 × 0.002 = 1.50 */
    { "risk:initial", POLY, TRUE, "15000", "0.05",
      "risk 2107.20 exceeds 2% of initial balance 100000.00 = 2000.00 (|entry 0.19 − stop 0.05| × 15000 = 2100.00 + "
      "opening fee 5.70 + closing fee at the stop 1.50)" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  run_cases (h, a, cases, G_N_ELEMENTS (cases));
}

/* basis=balance: 2% of the balance now */
static void
test_balance (void)
{
  static const Case at_95k[] = {
    /* 2% of 95,000 = 1,900: 1,978.20 is over it, though under 2% of the start */
    { "risk:balance", BTC, TRUE, "1.8", "49000",
      "risk 1978.20 exceeds 2% of balance 95000.00 = 1900.00 (|entry 50000.00 − stop 49000.00| × 1.8 = 1800.00 + "
      "opening fee 90.00 + closing fee at the stop 88.20)" },
    { "risk:initial", BTC, TRUE, "1.8", "49000", NULL },
    /* 1,700 + 85 + 83.30 = 1,868.30 */
    { "risk:balance", BTC, TRUE, "1.7", "49000", NULL },
  };
  static const Case rounding[] = {
    /* 1.5% of 99,999.99999999 = 1,499.9999999998500, rounded down to
     * 1,499.99999999: a limit is never loosened by rounding */
    { "risk:fine", ETH, TRUE, "7.5", "1800",
      "risk 1500.00 exceeds 1.5% of balance 99999.99999999 = 1499.99999999 (|entry 2000.00 − stop 1800.00| × 7.5 = "
      "1500.00 + opening fee 0.00 + closing fee at the stop 0.00)" },
    /* 1,499.99 */
    { "risk:fine", ETH, TRUE, "7.49995", "1800", NULL },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p", .balance = "95000" });
  ArbAccount *b =
    arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "b1", .program = "p", .balance = "99999.99999999" });

  run_cases (h, a, at_95k, G_N_ELEMENTS (at_95k));
  run_cases (h, b, rounding, G_N_ELEMENTS (rounding));
}

/* basis=equity: the balance plus the unrealised P&L now */
static void
test_equity (void)
{
  static const Case cases[] = {
    /* 2% of 97,990 = 1,959.80 */
    { "risk:equity", BTC, TRUE, "1.8", "49000",
      "risk 1978.20 exceeds 2% of equity 97990.00 = 1959.80 (|entry 50000.00 − stop 49000.00| × 1.8 = 1800.00 + "
      "opening fee 90.00 + closing fee at the stop 88.20)" },
    /* 1,780 + 89 + 87.22 = 1,956.22 */
    { "risk:equity", BTC, TRUE, "1.78", "49000", NULL },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });
  g_autofree char *equity = NULL;

  /* a long 1 BTC from 52,000 marked at the bid 49,990: −2,010 */
  arb_risk_test_add_position (h, a, BTC, TRUE, "1", "52000");
  equity = arb_risk_test_equity (h, a);
  g_assert_cmpstr (equity, ==, "97990.00000000");
  run_cases (h, a, cases, G_N_ELEMENTS (cases));
}

/* the close at the stop fills as the host fills a close: a long sells at
 * stop × (1 − 5 bps) rounded down, a short buys at stop × (1 + 5 bps)
 * rounded up; the limit is 1.05% of 100,000 = 1,050 */
static void
test_slippage (void)
{
  static const Case cases[] = {
    /* buy 100: entry 150 × 1.0005 = 150.075, fee 15,007.50 × 0.001 =
     * 15.0075; the stop fills at 140 × 0.9995 = 139.93: 100 × 10.145 =
     * 1,014.50 + 15.0075 + 13,993 × 0.001 = 13.993: 1,043.5005 (at the
     * stop itself it would be 1,007.50 + 15.0075 + 14: 1,036.5075) */
    { "risk:slip", SOL, TRUE, "100", "140", NULL },
    /* so 1.04% (1,040) refuses it, though the stop itself is 3.4925 inside */
    { "risk:slip-tight", SOL, TRUE, "100", "140",
      "risk 1043.5005 exceeds 1.04% of initial balance 100000.00 = 1040.00 (|entry 150.075 − stop 140.00 less 5 bps "
      "slippage 139.93| × 100 = 1014.50 + opening fee 15.0075 + closing fee at the stop 13.993)" },
    /* sell 100: entry 149.95 × 0.9995 = 149.875025, fee 14.9875025; the
     * stop fills at 160 × 1.0005 = 160.08: 100 × 10.204975 = 1,020.4975 +
     * 16,008 × 0.001 = 16.008: 1,051.4930025 */
    { "risk:slip", SOL, FALSE, "100", "160",
      "risk 1051.4930025 exceeds 1.05% of initial balance 100000.00 = 1050.00 (|entry 149.875025 − stop 160.00 plus "
      "5 bps slippage 160.08| × 100 = 1020.4975 + opening fee 14.9875025 + closing fee at the stop 16.008)" },
    /* rounded against the trader: 140.00000003 × 0.9995 = 139.930000029985,
     * down to 139.93000002; 150.075 − 139.93000002 = 10.14499998 + 0.150075
     * + 0.13993000002 up to 0.13993001: 10.43500499, over 0.01% = 10 */
    { "risk:tiny", SOL, TRUE, "1", "140.00000003",
      "risk 10.43500499 exceeds 0.01% of initial balance 100000.00 = 10.00 (|entry 150.075 − stop 140.00000003 less "
      "5 bps slippage 139.93000002| × 1 = 10.14499998 + opening fee 0.150075 + closing fee at the stop 0.13993001)" },
    /* a short, sell 1: 150.00000001 × 1.0005 = 150.075000010005, up to
     * 150.07500002; |149.875025 − 150.07500002| = 0.19997502 + the opening
     * fee 0.149875025 up to 0.14987503 + 0.15007500002 up to 0.15007501 =
     * 0.49992506, over 0.0004% = 0.40 */
    { "risk:micro", SOL, FALSE, "1", "150.00000001",
      "risk 0.49992506 exceeds 0.0004% of initial balance 100000.00 = 0.40 (|entry 149.875025 − stop 150.00000001 "
      "plus 5 bps slippage 150.07500002| × 1 = 0.19997502 + opening fee 0.14987503 + closing fee at the stop "
      "0.15007501)" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  run_cases (h, a, cases, G_N_ELEMENTS (cases));
}

static void
test_require_stop_loss (void)
{
  static const Case cases[] = {
    { "risk:strict", BTC, TRUE, "0.01", NULL, "a stop-loss is required: this program refuses orders without one" },
    { "risk:strict", POLY, TRUE, "1", NULL, "a stop-loss is required: this program refuses orders without one" },
    /* 500 + 50 + 49.50 = 599.50 */
    { "risk:strict", BTC, TRUE, "1", "49500", NULL },
    /* the same order without a stop is fine where a stop is optional: 5,000 + 50 */
    { "risk:initial", BTC, TRUE, "0.01", NULL, NULL },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });

  run_cases (h, a, cases, G_N_ELEMENTS (cases));
}

static void
test_config (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  g_autofree char *reason = arb_risk_test_failed_reason (h, "risk:zero");

  g_assert_cmpstr (reason, ==, "create: max_risk_per_trade_pct must be above 0: 0 would refuse every order");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/risk-per-trade/basis/initial", test_initial);
  g_test_add_func ("/risk-per-trade/basis/balance", test_balance);
  g_test_add_func ("/risk-per-trade/basis/equity", test_equity);
  g_test_add_func ("/risk-per-trade/slippage-at-the-stop", test_slippage);
  g_test_add_func ("/risk-per-trade/require-stop-loss", test_require_stop_loss);
  g_test_add_func ("/risk-per-trade/config", test_config);
  return g_test_run ();
}
