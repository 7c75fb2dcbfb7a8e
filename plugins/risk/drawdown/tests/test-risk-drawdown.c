/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* risk-drawdown through the real host: the key file below, the loader and
 * the instance wrappers, assessments and positions in the trading core,
 * quotes in the price book. Each table was computed by hand; a row gives the
 * state of the account and the floor that must follow from it.
 *
 * A floor is checked from both sides: a mark with equity one step (10^-8)
 * above it breaches nothing, a mark with equity on it breaches (breach_at=lte)
 * and the breach's evidence names that floor. A new trading day is the
 * host's own daily reset (arb_marker_take_day_anchors) at the balance and
 * equity the day ended with, and the peaks a floor follows (the high-water
 * marks of equity and balance, the end-of-day highs, the day's peak equity)
 * are the host's, moved by its marker: the plugin keeps no state of its own,
 * so a restart forgets nothing (the host persists them). */

#include "arb-risk-test-host.h"

#define BTC "crypto:BTC-USD"
#define ETH "crypto:ETH-USD"
#define SOL "crypto:SOL-USD"

static const char groups[] =
  "[program:p]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "\n"
  "[program:p50]\n"
  "starting_balance=50000\n"
  "leverage=10\n"
  "\n"
  "[market-class:crypto]\n"
  "slippage_bps=0\n"
  "fee_bps=10\n"
  "max_quote_age=1h\n"
  "\n"
  "[market:crypto:ETH-USD]\n"
  "fee_bps=0\n"
  "\n"
  /* a close at the stop suffers this too */
  "[market:crypto:SOL-USD]\n"
  "slippage_bps=5\n"
  "\n"
  /* ML-1: FTMO 2-Step */
  "[risk:static]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "\n"
  "[risk:static-lt]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "breach_at=lt\n"
  "\n"
  /* ML-2: FTMO 1-Step */
  "[risk:eod]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "mode=trailing_eod\n"
  "\n"
  "[risk:eod-equity]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "mode=trailing_eod\n"
  "trail_on=equity\n"
  "\n"
  /* ML-3: Topstep 50K, $2,000 = 4% */
  "[risk:eod-lock]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=4\n"
  "mode=trailing_eod\n"
  "lock_at_start=true\n"
  "\n"
  /* ML-4: Apex 50K intraday, $2,500 = 5%, locks at start + $100 */
  "[risk:intraday]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=5\n"
  "mode=trailing_intraday\n"
  "lock_offset=100\n"
  "\n"
  /* ML-7: PolyFundr, 20% below the highest equity */
  "[risk:intraday-peak]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=20\n"
  "mode=trailing_intraday\n"
  "max_loss_basis=peak\n"
  "\n"
  /* ML-6: Breakout 2-Step, 8% below the balance high-water mark, locks at the start */
  "[risk:intraday-balance]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=8\n"
  "mode=trailing_intraday\n"
  "trail_on=balance\n"
  "lock_offset=0\n"
  "\n"
  /* DL-1: FTMO */
  "[risk:daily-balance]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "\n"
  /* DL-2, equity anchor: Fintokei */
  "[risk:daily-equity]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=equity\n"
  "daily_loss_basis=anchor\n"
  "\n"
  "[risk:daily-equity-initial]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=equity\n"
  "\n"
  /* DL-3 as FundingPips words it (x of the start) */
  "[risk:daily-max]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=max\n"
  "\n"
  /* DL-2, balance anchor: Breakout, TradePrime, The5ers 2026 */
  "[risk:daily-anchor]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_loss_basis=anchor\n"
  "\n"
  /* DL-3: The5ers High Stakes (x of the anchor) */
  "[risk:daily-max-anchor]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=max\n"
  "daily_loss_basis=anchor\n"
  "\n"
  /* DL-4: HyroTrader, 5% of the start below the day's peak equity */
  "[risk:daily-peak]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=day_peak\n"
  "\n"
  "[risk:daily-peak-anchor]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_anchor=day_peak\n"
  "daily_loss_basis=anchor\n"
  "\n"
  /* DL-5: Topstep-style soft limit */
  "[risk:daily-pause]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_mode=pause\n"
  "\n"
  "[risk:both]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "daily_loss_pct=5\n"
  "\n"
  /* refused by create */
  "[risk:nothing]\n"
  "plugin=risk-drawdown\n"
  "\n"
  "[risk:zero]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=0\n"
  "\n"
  "[risk:static-trail]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "trail_on=equity\n"
  "\n"
  "[risk:static-peak]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "max_loss_basis=peak\n"
  "\n"
  "[risk:intraday-lock-at-start]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "mode=trailing_intraday\n"
  "lock_at_start=true\n"
  "\n"
  "[risk:eod-offset]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n"
  "mode=trailing_eod\n"
  "lock_offset=100\n";

static ArbRiskTestHost *
host_up (void)
{
  ArbRiskTestHost *h = arb_risk_test_host_new (groups);
  arb_risk_test_quote (h, BTC, "49990", "50000");
  arb_risk_test_quote (h, ETH, "1999", "2000");
  arb_risk_test_quote (h, SOL, "149.95", "150");
  return h;
}

static ArbAccount *
account_new (ArbRiskTestHost *h, const char *id, const char *program)
{
  return arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = id, .program = program });
}

/* d + 10^-8, as text */
static char *
one_step_above (const char *d)
{
  ArbDecimal x = arb_risk_test_decimal (d);
  x.raw += 1;
  return arb_decimal_to_string (x);
}

static char *
eight_places (const char *d)
{
  return arb_decimal_to_string (arb_risk_test_decimal (d));
}

/* marks @a (no positions: equity = balance) at one step above @floor, then
 * at @floor, which must breach @rule with that floor as evidence; returns
 * the breach for more checks, to be cleared by the caller */
static void
assert_floor (ArbRiskTestHost *h, const char *instance, ArbAccount *a, const char *rule, const char *floor,
              ArbRiskVerdict *breach)
{
  g_autofree char *above = one_step_above (floor);
  g_autofree char *expect = eight_places (floor);
  ArbRiskVerdict v;

  arb_risk_test_set_balance (a, above);
  arb_risk_test_mark (h, instance, a, &v);
  if (v.breach)
    g_test_fail_printf ("%s: equity %s breached %s: %s", instance, above, v.rule, v.message);
  arb_risk_verdict_clear (&v);

  arb_risk_test_set_balance (a, floor);
  arb_risk_test_mark (h, instance, a, breach);
  g_assert_true (breach->breach);
  g_assert_cmpstr (breach->rule, ==, rule);
  g_assert_cmpstr (arb_risk_test_evidence (breach, "floor"), ==, expect);
}

/* ---- the overall loss ------------------------------------------------------ */

typedef struct {
  const char *day_balance;  /* a new day that the last one ended at, or NULL for the same day */
  const char *day_equity;
  const char *hwm;          /* the host's equity high-water mark, or NULL */
  const char *peak_balance; /* the host marks this balance first, or NULL */
  const char *floor;
  const char *lock;         /* evidence "lock" */
} Step;

static void
run_steps (ArbRiskTestHost *h, const char *instance, ArbAccount *a, const Step *steps, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      const Step *s = &steps[i];
      ArbRiskVerdict v;

      g_test_message ("%s step %u: floor %s", instance, i, s->floor);
      if (s->day_balance != NULL)
        arb_risk_test_new_day (h, a, s->day_balance, s->day_equity);
      if (s->hwm != NULL)
        a->row->equity_hwm = arb_risk_test_decimal (s->hwm);
      if (s->peak_balance != NULL)
        {
          /* the host's marker sees it (and keeps the balance high-water mark) */
          arb_risk_test_set_balance (a, s->peak_balance);
          arb_risk_test_host_mark (h, a);
          arb_risk_test_mark (h, instance, a, &v);
          g_assert_false (v.breach);
          arb_risk_verdict_clear (&v);
        }
      assert_floor (h, instance, a, "max_loss", s->floor, &v);
      g_assert_cmpstr (arb_risk_test_evidence (&v, "lock"), ==, s->lock);
      arb_risk_verdict_clear (&v);
    }
}

/* ML-1: floor = 100,000 × (1 − 10%), whatever happens */
static void
test_static (void)
{
  static const Step steps[] = {
    { NULL, NULL, NULL, NULL, "90000", "none" },
    { "104000", "104000", "110000", NULL, "90000", "none" },
    { "95000", "95000", NULL, NULL, "90000", "none" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  ArbRiskVerdict v;

  run_steps (h, "risk:static", a, steps, G_N_ELEMENTS (steps));

  /* breach_at=lt: on the floor is still allowed, one step under is not */
  arb_risk_test_set_balance (b, "90000");
  arb_risk_test_mark (h, "risk:static-lt", b, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);
  arb_risk_test_set_balance (b, "89999.99999999");
  arb_risk_test_mark (h, "risk:static-lt", b, &v);
  g_assert_true (v.breach);
  g_assert_cmpstr (v.message, ==,
                   "equity 89999.99999999 is below the max-loss floor 90000.00 (static: start 100000.00 − 10% of "
                   "start (10000.00) = 90000.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "breachAt"), ==, "lt");
  arb_risk_verdict_clear (&v);
}

/* a breach by unrealised loss alone: the balance never moves */
static void
test_unrealised (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbRiskVerdict v;

  /* long 2 BTC from 50,000: at the bid 45,000.00000001 equity is
   * 100,000 − 2 × 4,999.99999999 = 90,000.00000002 */
  arb_risk_test_add_position (h, a, BTC, TRUE, "2", "50000");
  arb_risk_test_quote (h, BTC, "45000.00000001", "45010");
  arb_risk_test_mark (h, "risk:static", a, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);

  /* at 45,000: 100,000 − 10,000 = 90,000, on the floor */
  arb_risk_test_quote (h, BTC, "45000", "45010");
  arb_risk_test_mark (h, "risk:static", a, &v);
  g_assert_true (v.breach);
  g_assert_cmpstr (v.rule, ==, "max_loss");
  g_assert_cmpstr (v.message, ==,
                   "equity 90000.00 is at or below the max-loss floor 90000.00 (static: start 100000.00 − 10% of "
                   "start (10000.00) = 90000.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "equity"), ==, "90000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "balance"), ==, "100000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "unrealizedPnl"), ==, "-10000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "startingBalance"), ==, "100000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floor"), ==, "90000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floorComputation"), ==,
                   "static: start 100000.00 − 10% of start (10000.00) = 90000.00");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "mode"), ==, "static");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "allowance"), ==, "10000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "lock"), ==, "none");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "breachAt"), ==, "lte");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayAnchor"), ==, "balance");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartBalance"), ==, "100000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartEquity"), ==, "100000.00000000");
  g_assert_null (arb_risk_test_evidence (&v, "peak"));
  arb_risk_verdict_clear (&v);

  /* the daily floor falls to unrealised loss alone too: anchor 102,000,
   * floor 102,000 − 5% of 100,000 = 97,000; long 2 BTC from 50,000 at the
   * bid 47,500 is −5,000 */
  {
    ArbAccount *b = arb_risk_test_add_account (
      h, &(ArbRiskTestAccount){ .id = "b1", .program = "p", .balance = "102000", .day_start_equity = "101000" });
    arb_risk_test_add_position (h, b, BTC, TRUE, "2", "50000");
    arb_risk_test_quote (h, BTC, "47500.00000001", "47510");
    arb_risk_test_mark (h, "risk:daily-balance", b, &v);
    g_assert_false (v.breach);
    arb_risk_verdict_clear (&v);
    arb_risk_test_quote (h, BTC, "47500", "47510");
    arb_risk_test_mark (h, "risk:daily-balance", b, &v);
    g_assert_true (v.breach);
    g_assert_cmpstr (v.rule, ==, "daily_loss");
    g_assert_cmpstr (v.message, ==,
                     "equity 97000.00 is at or below the daily loss floor 97000.00 (day-start balance 102000.00 − 5% "
                     "of start (5000.00) = 97000.00)");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "balance"), ==, "102000.00000000");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "unrealizedPnl"), ==, "-5000.00000000");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "mode"), ==, "fail");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "anchor"), ==, "102000.00000000");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "allowance"), ==, "5000.00000000");
    g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartEquity"), ==, "101000.00000000");
    arb_risk_verdict_clear (&v);
  }
}

/* ML-2, FTMO 1-Step: floor = max(start, highest end-of-day balance) − 10% of
 * start; intraday peaks do not count */
static void
test_trailing_eod (void)
{
  static const Step on_balance[] = {
    { "100000", "100000", NULL, NULL, "90000", "none" },
    /* FTMO's example: 104,000 → 94,000; the equity at the reset and the
     * intraday high do not matter */
    { "104000", "103500", "110000", NULL, "94000", "none" },
    /* a lower day keeps the high */
    { "101000", "101000", NULL, NULL, "94000", "none" },
    { "108000", "109000", NULL, NULL, "98000", "none" },
    /* no lock: it passes the start */
    { "112000", "112000", NULL, NULL, "102000", "none" },
  };
  static const Step on_equity[] = {
    { "104000", "103500", NULL, NULL, "93500", "none" },
    { "101000", "101000", NULL, NULL, "93500", "none" },
    { "108000", "109000", NULL, NULL, "99000", "none" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  ArbRiskVerdict v;

  run_steps (h, "risk:eod", a, on_balance, G_N_ELEMENTS (on_balance));
  run_steps (h, "risk:eod-equity", b, on_equity, G_N_ELEMENTS (on_equity));

  arb_risk_test_set_balance (a, "102000");
  arb_risk_test_mark (h, "risk:eod", a, &v);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floorComputation"), ==,
                   "trailing_eod: max(start, highest end-of-day balance) 112000.00 − 10% of start (10000.00) = "
                   "102000.00");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "peak"), ==, "112000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "peakSource"), ==, "highest end-of-day balance");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "trailOn"), ==, "balance");
  arb_risk_verdict_clear (&v);
}

/* ML-3, Topstep 50K: floor = min(start, highest end-of-day balance − 2,000) */
static void
test_trailing_eod_lock (void)
{
  static const Step steps[] = {
    { "50000", "50000", NULL, NULL, "48000", "not reached" },
    { "51000", "51000", NULL, NULL, "49000", "not reached" },
    /* 52,000 − 2,000 reaches the start: locked */
    { "52000", "52000", NULL, NULL, "50000", "locked" },
    { "52500", "52400", NULL, NULL, "50000", "locked" },
    { "51000", "51000", NULL, NULL, "50000", "locked" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p50");
  ArbRiskVerdict v;

  run_steps (h, "risk:eod-lock", a, steps, G_N_ELEMENTS (steps));
  arb_risk_test_set_balance (a, "50000");
  arb_risk_test_mark (h, "risk:eod-lock", a, &v);
  g_assert_cmpstr (v.message, ==,
                   "equity 50000.00 is at or below the max-loss floor 50000.00 (trailing_eod: max(start, highest "
                   "end-of-day balance) 52500.00 − 4% of start (2000.00) = 50500.00, locked at 50000.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "lockLevel"), ==, "50000.00000000");
  arb_risk_verdict_clear (&v);

  /* without a lock, the same days would have moved it to 50,500 */
  {
    ArbAccount *b = account_new (h, "b1", "p50");
    arb_risk_test_new_day (h, b, "52500", "52400");
    assert_floor (h, "risk:eod", b, "max_loss", "47500", &v); /* 10%: 52,500 − 5,000 */
    arb_risk_verdict_clear (&v);
  }
}

/* ML-4, Apex 50K intraday: floor = min(peak equity − 2,500, 50,100) */
static void
test_trailing_intraday (void)
{
  static const Step steps[] = {
    { NULL, NULL, "50000", NULL, "47500", "not reached" },
    { NULL, NULL, "51000", NULL, "48500", "not reached" },
    { NULL, NULL, "52599.99", NULL, "50099.99", "not reached" },
    /* the peak reaches start + 2,500 + 100: locked at 50,100 */
    { NULL, NULL, "52600", NULL, "50100", "locked" },
    { NULL, NULL, "53000", NULL, "50100", "locked" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p50");
  ArbAccount *b = account_new (h, "b1", "p50");
  ArbRiskVerdict v;

  run_steps (h, "risk:intraday", a, steps, G_N_ELEMENTS (steps));

  /* the peak includes unrealised profit, live: long 1 BTC from 50,000 at
   * the bid 52,000 makes equity and the peak 52,000 (the recorded mark is
   * still 50,000), floor 49,500 */
  arb_risk_test_add_position (h, b, BTC, TRUE, "1", "50000");
  arb_risk_test_quote (h, BTC, "52000", "52010");
  arb_risk_test_mark (h, "risk:intraday", b, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);
  /* the host keeps that peak (its marker moves the recorded mark); the
   * giveback to 49,500, all of it unrealised, breaches */
  b->row->equity_hwm = arb_risk_test_decimal ("52000");
  arb_risk_test_quote (h, BTC, "49500", "49510");
  arb_risk_test_mark (h, "risk:intraday", b, &v);
  g_assert_true (v.breach);
  g_assert_cmpstr (v.message, ==,
                   "equity 49500.00 is at or below the max-loss floor 49500.00 (trailing_intraday: max(start, equity "
                   "high-water mark) 52000.00 − 5% of start (2500.00) = 49500.00, locks at 50100.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "mode"), ==, "trailing_intraday");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "trailOn"), ==, "equity");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "peak"), ==, "52000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "peakSource"), ==, "equity high-water mark");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "allowance"), ==, "2500.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "lock"), ==, "not reached");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "lockLevel"), ==, "50100.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "unrealizedPnl"), ==, "-500.00000000");
  arb_risk_verdict_clear (&v);
  /* the same path under a static 10% floor (45,000) survives: LuxAlgo's point */
  arb_risk_test_mark (h, "risk:static", b, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);
}

/* ML-7, PolyFundr: floor = peak equity × (1 − 20%); ML-6, Breakout 2-Step:
 * floor = min(start, balance high-water mark − 8% of start) */
static void
test_trailing_variants (void)
{
  static const Step of_peak[] = {
    { NULL, NULL, "100000", NULL, "80000", "none" },
    { NULL, NULL, "125000", NULL, "100000", "none" },
    /* 20% of 130,000.5 = 26,000.1 */
    { NULL, NULL, "130000.5", NULL, "104000.4", "none" },
  };
  static const Step on_balance[] = {
    { NULL, NULL, NULL, "100000", "92000", "not reached" },
    /* Breakout's example: HWM 105,000 → 97,000 */
    { NULL, NULL, NULL, "105000", "97000", "not reached" },
    { NULL, NULL, NULL, "103000", "97000", "not reached" },
    /* the equity high-water mark does not matter */
    { NULL, NULL, "120000", "106000", "98000", "not reached" },
    { NULL, NULL, NULL, "108000", "100000", "locked" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  ArbRiskVerdict v;

  run_steps (h, "risk:intraday-peak", a, of_peak, G_N_ELEMENTS (of_peak));
  arb_risk_test_mark (h, "risk:intraday-peak", a, &v);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floorComputation"), ==,
                   "trailing_intraday: max(start, equity high-water mark) 130000.50 − 20% of peak (26000.10) = "
                   "104000.40");
  arb_risk_verdict_clear (&v);
  run_steps (h, "risk:intraday-balance", b, on_balance, G_N_ELEMENTS (on_balance));
  arb_risk_test_mark (h, "risk:intraday-balance", b, &v);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "peakSource"), ==, "balance high-water mark");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "trailOn"), ==, "balance");
  arb_risk_verdict_clear (&v);
}

/* ---- the daily loss ----------------------------------------------------------- */

typedef struct {
  const char *instance;
  const char *day_balance, *day_equity;
  const char *floor;
  const char *anchor; /* evidence "anchor" */
} DailyRow;

static void
test_daily_anchors (void)
{
  static const DailyRow rows[] = {
    /* DL-1: anchor − 5% of 100,000. LuxAlgo's example: yesterday's close
     * 102,000 → 97,000 "under initial" */
    { "risk:daily-balance", "102000", "101000", "97000", "102000" },
    { "risk:daily-balance", "98000", "99500", "93000", "98000" },
    /* DL-2 on equity: anchor × 95% */
    { "risk:daily-equity", "102000", "101000", "95950", "101000" },
    { "risk:daily-equity", "98000", "99500", "94525", "99500" },
    /* equity anchor, 5% of the start */
    { "risk:daily-equity-initial", "102000", "101000", "96000", "101000" },
    { "risk:daily-equity-initial", "98000", "99500", "94500", "99500" },
    /* DL-3 (FundingPips): max(balance, equity) − 5% of the start */
    { "risk:daily-max", "102000", "101000", "97000", "102000" },
    { "risk:daily-max", "98000", "99500", "94500", "99500" },
    /* DL-2 on balance: LuxAlgo's 102,000 → 96,900 "under anchor" */
    { "risk:daily-anchor", "102000", "101000", "96900", "102000" },
    { "risk:daily-anchor", "98000", "99500", "93100", "98000" },
    /* DL-3 (The5ers): max(balance, equity) × 95% */
    { "risk:daily-max-anchor", "102000", "101000", "96900", "102000" },
    { "risk:daily-max-anchor", "98000", "99500", "94525", "99500" },
    /* 5% of 99,999.99999999 = 4,999.9999999995, rounded down to
     * 4,999.99999999 (an allowance is never loosened by rounding): the
     * floor is 95,000.00000000, not 94,999.9999999995 */
    { "risk:daily-anchor", "99999.99999999", "99999.99999999", "95000.00000000", "99999.99999999" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      const DailyRow *r = &rows[i];
      g_autofree char *id = g_strdup_printf ("a%u", i);
      g_autofree char *anchor = eight_places (r->anchor);
      ArbAccount *a = account_new (h, id, "p");
      ArbRiskVerdict v;

      g_test_message ("%s anchors %s / %s: floor %s", r->instance, r->day_balance, r->day_equity, r->floor);
      arb_risk_test_new_day (h, a, r->day_balance, r->day_equity);
      assert_floor (h, r->instance, a, "daily_loss", r->floor, &v);
      g_assert_cmpstr (arb_risk_test_evidence (&v, "anchor"), ==, anchor);
      g_assert_cmpstr (arb_risk_test_evidence (&v, "mode"), ==, "fail");
      arb_risk_verdict_clear (&v);
    }
}

static void
test_daily_message (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbRiskVerdict v;

  arb_risk_test_new_day (h, a, "98000", "99500");
  assert_floor (h, "risk:daily-max-anchor", a, "daily_loss", "94525", &v);
  g_assert_cmpstr (v.message, ==,
                   "equity 94525.00 is at or below the daily loss floor 94525.00 (max(day-start balance, equity) "
                   "99500.00 − 5% of the anchor (4975.00) = 94525.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayAnchor"), ==, "max");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartBalance"), ==, "98000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartEquity"), ==, "99500.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "allowance"), ==, "4975.00000000");
  arb_risk_verdict_clear (&v);

  /* both rules breached: the overall loss is reported (it fails for good) */
  arb_risk_test_new_day (h, a, "100000", "100000");
  arb_risk_test_set_balance (a, "89000");
  arb_risk_test_mark (h, "risk:both", a, &v);
  g_assert_cmpstr (v.rule, ==, "max_loss");
  arb_risk_verdict_clear (&v);
  arb_risk_test_set_balance (a, "94000");
  arb_risk_test_mark (h, "risk:both", a, &v);
  g_assert_cmpstr (v.rule, ==, "daily_loss");
  arb_risk_verdict_clear (&v);
}

/* DL-4, HyroTrader: floor = the day's peak equity − 5% of the start. Their
 * example: equity 110,000 → 105,000 on 100,000 breaches. The peak is the
 * host's (arb_account_view_get_day_high_equity): its marker raises it on
 * every mark, its daily reset starts it again from the equity then. */
static void
test_daily_peak (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  ArbOrderView order;
  ArbRiskVerdict v;
  char buf[ARB_DECIMAL_BUFSIZE];

  /* the day starts at 100,000: floor 95,000 */
  arb_risk_test_new_day (h, a, "100000", "100000");
  assert_floor (h, "risk:daily-peak", a, "daily_loss", "95000", &v);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "anchor"), ==, "100000.00000000");
  arb_risk_verdict_clear (&v);

  /* long 2 BTC from 50,000 on a balance of 100,000: at the bid 55,000 the
   * host marks equity 110,000, the day's peak */
  arb_risk_test_set_balance (a, "100000");
  arb_risk_test_add_position (h, a, BTC, TRUE, "2", "50000");
  arb_risk_test_quote (h, BTC, "55000", "55010");
  arb_risk_test_host_mark (h, a);
  g_assert_cmpstr (arb_decimal_format (a->row->day_high_equity, buf), ==, "110000.00000000");
  /* at the peak, an order may lose up to the 5,000 of room, not reach it:
   * 5 ETH at 2,000 (no fee, no slippage) with a stop at 1,000.00000001
   * loses 4,999.99999995, with a stop at 1,000 exactly 5,000 */
  arb_risk_test_order (h, a, ETH, TRUE, "5", "1000.00000001", &order);
  arb_risk_test_check (h, "risk:daily-peak", a, &order, &v);
  g_assert_cmpint (v.rejection, ==, 0);
  arb_risk_verdict_clear (&v);
  arb_risk_test_order (h, a, ETH, TRUE, "5", "1000", &order);
  arb_risk_test_check (h, "risk:daily-peak", a, &order, &v);
  g_assert_cmpint (v.rejection, ==, ARB_RISK_REJECT_DRAWDOWN);
  g_assert_cmpstr (v.message, ==,
                   "the order's worst case would take equity to 105000.00 (equity 110000.00 − loss 5000.00; |entry "
                   "2000.00 − stop 1000.00| × 5 = 5000.00 + opening fee 0.00 + closing fee at the stop 0.00), at or "
                   "below the daily loss floor 105000.00 (the day's peak equity 110000.00 − 5% of start (5000.00) = "
                   "105000.00)");
  arb_risk_verdict_clear (&v);
  /* bid 52,500.00000001: equity 105,000.00000002, floor 110,000 − 5,000 */
  arb_risk_test_quote (h, BTC, "52500.00000001", "52510");
  arb_risk_test_mark (h, "risk:daily-peak", a, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);
  /* the same equity is far above a floor from the day-start balance (95,000) */
  arb_risk_test_mark (h, "risk:daily-balance", a, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);
  /* bid 52,500: equity 105,000, on the floor, by unrealised loss alone */
  arb_risk_test_quote (h, BTC, "52500", "52510");
  arb_risk_test_mark (h, "risk:daily-peak", a, &v);
  g_assert_true (v.breach);
  g_assert_cmpstr (v.rule, ==, "daily_loss");
  g_assert_cmpstr (v.message, ==,
                   "equity 105000.00 is at or below the daily loss floor 105000.00 (the day's peak equity 110000.00 − "
                   "5% of start (5000.00) = 105000.00)");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayAnchor"), ==, "day_peak");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "anchor"), ==, "110000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayHighEquity"), ==, "110000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "dayStartEquity"), ==, "100000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floor"), ==, "105000.00000000");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "unrealizedPnl"), ==, "5000.00000000");
  arb_risk_verdict_clear (&v);
  /* daily_loss_basis=anchor: 5% of the peak, 5,500: floor 104,500 */
  arb_risk_test_mark (h, "risk:daily-peak-anchor", a, &v);
  g_assert_false (v.breach);
  arb_risk_verdict_clear (&v);

  /* the next day starts from the equity at the reset, whatever the peak
   * before: ended at 103,000, floor 98,000; a balance that rises to
   * 104,000 (a close in profit) raises it to 99,000, and it stays there
   * when the balance falls back */
  {
    static const struct {
      const char *balance, *floor_initial, *floor_anchor;
    } rows[] = {
      { "103000", "98000", "97850" },  /* 103,000 − 5,150 */
      { "104000", "99000", "98800" },  /* 104,000 − 5,200 */
      { "103500", "99000", "98800" },
    };
    arb_risk_test_new_day (h, b, "103000", "103000");
    for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
      {
        arb_risk_test_set_balance (b, rows[i].balance);
        arb_risk_test_host_mark (h, b);
        assert_floor (h, "risk:daily-peak", b, "daily_loss", rows[i].floor_initial, &v);
        arb_risk_verdict_clear (&v);
        arb_risk_test_set_balance (b, rows[i].balance);
        assert_floor (h, "risk:daily-peak-anchor", b, "daily_loss", rows[i].floor_anchor, &v);
        arb_risk_verdict_clear (&v);
      }
    /* the reset: the peak starts again from the equity then, 99,500 */
    arb_risk_test_new_day (h, b, "99500", "99500");
    assert_floor (h, "risk:daily-peak", b, "daily_loss", "94500", &v);
    arb_risk_verdict_clear (&v);
  }
}

/* DL-5: the soft daily limit is a pause verdict: the host closes the
 * positions and refuses orders until the next daily reset (the host's
 * lifecycle tests check that part); the plugin itself keeps nothing */
static void
test_daily_pause (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbProgram *program = arb_trading_get_program (h->host->trading, "p");
  g_autofree char *above = one_step_above ("95000");
  g_autofree char *message = NULL;
  g_autofree char *when = NULL;
  ArbOrderView order;
  ArbRiskVerdict v;
  gint64 next;

  arb_risk_test_set_balance (a, above);
  arb_risk_test_mark (h, "risk:daily-pause", a, &v);
  g_assert_false (v.breach);
  g_assert_false (v.pause);
  arb_risk_verdict_clear (&v);

  arb_risk_test_set_balance (a, "95000");
  arb_risk_test_mark (h, "risk:daily-pause", a, &v);
  next = arb_program_next_day_start (program, arb_now_us ());
  {
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (next / G_USEC_PER_SEC);
    when = g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ");
  }
  message = g_strdup_printf ("equity 95000.00 is at or below the daily loss floor 95000.00 (day-start balance "
                             "100000.00 − 5%% of start (5000.00) = 95000.00); trading pauses until the next daily "
                             "reset, %s",
                             when);
  /* not a breach: the assessment goes on */
  g_assert_false (v.breach);
  g_assert_true (v.pause);
  g_assert_cmpint (v.pause_until_us, ==, next);
  g_assert_cmpstr (v.rule, ==, "daily_loss_pause");
  g_assert_cmpstr (v.message, ==, message);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "mode"), ==, "pause");
  g_assert_cmpstr (arb_risk_test_evidence (&v, "pausedUntil"), ==, when);
  g_assert_cmpstr (arb_risk_test_evidence (&v, "floor"), ==, "95000.00000000");
  arb_risk_verdict_clear (&v);

  /* the plugin refuses nothing itself: the host's pause does (it never asks
   * a paused assessment's rules); an order that fits is allowed */
  arb_risk_test_set_balance (a, "99000");
  arb_risk_test_order (h, a, ETH, TRUE, "0.1", "1800", &order);
  arb_risk_test_check (h, "risk:daily-pause", a, &order, &v);
  g_assert_cmpint (v.rejection, ==, 0);
  arb_risk_verdict_clear (&v);

  /* the overall floor of the same instance still fails for good: a breach,
   * not a pause */
  arb_risk_test_set_balance (a, "89000");
  arb_risk_test_mark (h, "risk:both", a, &v);
  g_assert_true (v.breach);
  g_assert_false (v.pause);
  arb_risk_verdict_clear (&v);
}

/* What a restarted host loads from the store is all the plugin needs: a
 * fresh instance that has never seen the assessment gets the end-of-day
 * high and the balance high-water mark from the host. */
static void
test_restart (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  ArbRiskVerdict v;

  /* as the loader reads them from the lifecycle column */
  a->row->eod_high_balance = arb_risk_test_decimal ("104000");
  a->row->eod_high_equity = arb_risk_test_decimal ("103500");
  assert_floor (h, "risk:eod", a, "max_loss", "94000", &v);
  arb_risk_verdict_clear (&v);
  assert_floor (h, "risk:eod-equity", a, "max_loss", "93500", &v);
  arb_risk_verdict_clear (&v);
  b->row->balance_hwm = arb_risk_test_decimal ("105000");
  assert_floor (h, "risk:intraday-balance", b, "max_loss", "97000", &v);
  arb_risk_verdict_clear (&v);
}

/* ---- before the trade ----------------------------------------------------------- */

typedef struct {
  const char *instance;
  const char *market;
  gboolean    is_buy;
  const char *qty;
  const char *stop;
  const char *message; /* NULL: allowed */
} OrderRow;

static void
run_orders (ArbRiskTestHost *h, ArbAccount *a, const OrderRow *rows, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      const OrderRow *r = &rows[i];
      ArbOrderView order;
      ArbRiskVerdict v;

      g_test_message ("%s: %s %s %s stop %s", r->instance, r->is_buy ? "buy" : "sell", r->qty, r->market,
                      r->stop != NULL ? r->stop : "none");
      arb_risk_test_order (h, a, r->market, r->is_buy, r->qty, r->stop, &order);
      arb_risk_test_check (h, r->instance, a, &order, &v);
      if (r->message == NULL)
        {
          if (v.rejection != 0)
            g_test_fail_printf ("refused: %s", v.message);
        }
      else
        {
          g_assert_cmpint (v.rejection, ==, ARB_RISK_REJECT_DRAWDOWN);
          g_assert_cmpstr (v.message, ==, r->message);
        }
      arb_risk_verdict_clear (&v);
    }
}

static void
test_check_order (void)
{
  /* equity 100,000, static floor 90,000 */
  static const OrderRow flat[] = {
    /* 10 × 1,000 + 500 + 490 = 10,990: 89,010 */
    { "risk:static", BTC, TRUE, "10", "49000",
      "the order's worst case would take equity to 89010.00 (equity 100000.00 − loss 10990.00; |entry 50000.00 − "
      "stop 49000.00| × 10 = 10000.00 + opening fee 500.00 + closing fee at the stop 490.00), at or below the "
      "max-loss floor 90000.00 (static: start 100000.00 − 10% of start (10000.00) = 90000.00)" },
    /* 9,000 + 450 + 441 = 9,891: 90,109 */
    { "risk:static", BTC, TRUE, "9", "49000", NULL },
    /* no stop: the margin 100,000 / 10 = 10,000 + fee 100: 89,900 */
    { "risk:static", BTC, TRUE, "2", NULL,
      "the order's worst case would take equity to 89900.00 (equity 100000.00 − loss 10100.00; no stop-loss: margin "
      "10000.00 + opening fee 100.00), at or below the max-loss floor 90000.00 (static: start 100000.00 − 10% of "
      "start (10000.00) = 90000.00)" },
    /* 8,500 + 85: 91,415 */
    { "risk:static", BTC, TRUE, "1.7", NULL, NULL },
    /* a short: 10 × 1,000 + 499.90 + 509.90: 88,990.20 */
    { "risk:static", BTC, FALSE, "10", "50990",
      "the order's worst case would take equity to 88990.20 (equity 100000.00 − loss 11009.80; |entry 49990.00 − "
      "stop 50990.00| × 10 = 10000.00 + opening fee 499.90 + closing fee at the stop 509.90), at or below the "
      "max-loss floor 90000.00 (static: start 100000.00 − 10% of start (10000.00) = 90000.00)" },
    /* exactly onto the floor: 50 × 200 = 10,000, no fees: 90,000 */
    { "risk:static", ETH, TRUE, "50", "1800",
      "the order's worst case would take equity to 90000.00 (equity 100000.00 − loss 10000.00; |entry 2000.00 − "
      "stop 1800.00| × 50 = 10000.00 + opening fee 0.00 + closing fee at the stop 0.00), at or below the max-loss "
      "floor 90000.00 (static: start 100000.00 − 10% of start (10000.00) = 90000.00)" },
    /* breach_at=lt: onto the floor is allowed, past it is not */
    { "risk:static-lt", ETH, TRUE, "50", "1800", NULL },
    /* SOL slips 5 bps: the close at the stop fills at 140 × 0.9995 =
     * 139.93, entry 150 × 1.0005 = 150.075: 960 × 10.145 = 9,739.20 + 144.072
     * + 134,332.80 × 0.001 = 134.3328: 10,017.6048 (without the slippage of
     * the close, 9,950.472: allowed) */
    { "risk:static", SOL, TRUE, "960", "140",
      "the order's worst case would take equity to 89982.3952 (equity 100000.00 − loss 10017.6048; |entry 150.075 − "
      "stop 140.00 less 5 bps slippage 139.93| × 960 = 9739.20 + opening fee 144.072 + closing fee at the stop "
      "134.3328), at or below the max-loss floor 90000.00 (static: start 100000.00 − 10% of start (10000.00) = "
      "90000.00)" },
    /* 950 × 10.145 = 9,637.75 + 142.57125 + 132.9335 = 9,913.25475: 90,086.74525 */
    { "risk:static", SOL, TRUE, "950", "140", NULL },
    { "risk:static-lt", ETH, TRUE, "50", "1799.99999999",
      "the order's worst case would take equity to 89999.9999995 (equity 100000.00 − loss 10000.0000005; |entry "
      "2000.00 − stop 1799.99999999| × 50 = 10000.0000005 + opening fee 0.00 + closing fee at the stop 0.00), below "
      "the max-loss floor 90000.00 (static: start 100000.00 − 10% of start (10000.00) = 90000.00)" },
  };
  /* equity 96,990 (long 1 BTC from 53,000 at the bid 49,990), daily floor
   * 100,000 − 5,000 = 95,000 */
  static const OrderRow losing[] = {
    /* 9.95 × 200 = 1,990: 95,000 */
    { "risk:daily-balance", ETH, TRUE, "9.95", "1800",
      "the order's worst case would take equity to 95000.00 (equity 96990.00 − loss 1990.00; |entry 2000.00 − stop "
      "1800.00| × 9.95 = 1990.00 + opening fee 0.00 + closing fee at the stop 0.00), at or below the daily loss "
      "floor 95000.00 (day-start balance 100000.00 − 5% of start (5000.00) = 95000.00)" },
    /* 1,980: 95,010 */
    { "risk:daily-balance", ETH, TRUE, "9.9", "1800", NULL },
    /* the overall floor is far: 96,990 − 1,990 = 95,000 > 90,000 */
    { "risk:static", ETH, TRUE, "9.95", "1800", NULL },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbAccount *b = account_new (h, "b1", "p");
  g_autofree char *equity = NULL;

  run_orders (h, a, flat, G_N_ELEMENTS (flat));
  arb_risk_test_add_position (h, b, BTC, TRUE, "1", "53000");
  equity = arb_risk_test_equity (h, b);
  g_assert_cmpstr (equity, ==, "96990.00000000");
  run_orders (h, b, losing, G_N_ELEMENTS (losing));
}

/* where each floor stands, for GET /assessments/{id}: limit, current
 * equity, room before the first breaching value */
static void
test_reports (void)
{
  static const struct {
    const char *instance, *balance;
    const char *rule[2], *limit[2], *room[2];
  } rows[] = {
    /* 97,500 − 90,000 and 97,500 − 95,000 */
    { "risk:both", "97500", { "max_loss", "daily_loss" }, { "90000", "95000" }, { "7500", "2500" } },
    /* on the daily floor: room 0, breached */
    { "risk:both", "95000", { "max_loss", "daily_loss" }, { "90000", "95000" }, { "5000", "0" } },
    /* both breached: both still reported */
    { "risk:both", "89000", { "max_loss", "daily_loss" }, { "90000", "95000" }, { "-1000", "-6000" } },
    /* under lt the first breaching value is one step below the floor */
    { "risk:static-lt", "90000", { "max_loss", NULL }, { "90000", NULL }, { "0.00000001", NULL } },
    { "risk:daily-balance", "96000", { "daily_loss", NULL }, { "95000", NULL }, { "1000", NULL } },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autoptr(GArray) reports = NULL;
      g_autofree char *equity = eight_places (rows[i].balance);
      ArbRiskVerdict v;

      arb_risk_test_set_balance (a, rows[i].balance);
      reports = arb_risk_test_mark_reports (h, rows[i].instance, a, &v);
      g_assert_cmpuint (reports->len, ==, rows[i].rule[1] != NULL ? 2 : 1);
      for (guint k = 0; k < reports->len; k++)
        {
          const ArbRuleReport *r = &g_array_index (reports, ArbRuleReport, k);
          g_autofree char *limit = eight_places (rows[i].limit[k]);
          g_autofree char *room = eight_places (rows[i].room[k]);
          char buf[ARB_DECIMAL_BUFSIZE];

          g_assert_cmpstr (r->rule, ==, rows[i].rule[k]);
          g_assert_cmpstr (arb_decimal_format (r->limit, buf), ==, limit);
          g_assert_cmpstr (arb_decimal_format (r->current, buf), ==, equity);
          g_assert_cmpstr (arb_decimal_format (r->room, buf), ==, room);
        }
      /* a breach is reported once, the overall loss first, with its own evidence only */
      if (i == 2)
        {
          g_assert_cmpstr (v.rule, ==, "max_loss");
          g_assert_null (arb_risk_test_evidence (&v, "anchor"));
        }
      arb_risk_verdict_clear (&v);
    }
}

/* an amount outside the decimal range: the rule cannot decide, so the call
 * fails (the host then refuses the order) and the instance keeps running */
static void
test_out_of_range (void)
{
  g_autoptr(ArbRiskTestHost) h = host_up ();
  ArbAccount *a = account_new (h, "a1", "p");
  ArbInstance *inst = arb_host_find_instance (h->host, "risk:static");
  g_autoptr(GError) error = NULL;
  ArbAccountView view;
  ArbOrderView order;
  ArbRiskVerdict v;

  arb_risk_test_order (h, a, BTC, TRUE, "1", NULL, &order);
  arb_risk_test_set_balance (a, "-92233720368");
  g_assert_true (arb_account_view_init (&view, h->host->trading, a, &error));
  arb_risk_verdict_init (&v);
  g_assert_false (arb_instance_risk_check_order (inst, &order, &view, &v, &error));
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL);
  g_assert_true (g_str_has_prefix (error->message, "the worst case of the order cannot be computed: "));
  g_assert_cmpint (v.rejection, ==, 0);
  arb_risk_verdict_clear (&v);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RUNNING);
}

static void
test_config (void)
{
  static const struct {
    const char *instance, *reason;
  } rows[] = {
    { "risk:nothing", "create: nothing to check: set max_loss_pct, daily_loss_pct or both" },
    { "risk:zero", "create: max_loss_pct must be above 0 (leave it out for no overall limit)" },
    { "risk:static-trail", "create: trail_on=equity applies to the trailing modes; mode is static" },
    { "risk:static-peak", "create: max_loss_basis=peak needs a trailing mode: a static floor has no peak" },
    { "risk:intraday-lock-at-start",
      "create: lock_at_start applies to mode=trailing_eod (trailing_intraday locks with lock_offset; 0 locks at the "
      "start)" },
    { "risk:eod-offset",
      "create: lock_offset applies to mode=trailing_intraday (trailing_eod locks at the start with lock_at_start)" },
  };
  g_autoptr(ArbRiskTestHost) h = host_up ();

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree char *reason = arb_risk_test_failed_reason (h, rows[i].instance);
      g_assert_cmpstr (reason, ==, rows[i].reason);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/risk-drawdown/max-loss/static", test_static);
  g_test_add_func ("/risk-drawdown/max-loss/unrealised-only", test_unrealised);
  g_test_add_func ("/risk-drawdown/max-loss/trailing-eod", test_trailing_eod);
  g_test_add_func ("/risk-drawdown/max-loss/trailing-eod-lock", test_trailing_eod_lock);
  g_test_add_func ("/risk-drawdown/max-loss/trailing-intraday-lock-offset", test_trailing_intraday);
  g_test_add_func ("/risk-drawdown/max-loss/trailing-variants", test_trailing_variants);
  g_test_add_func ("/risk-drawdown/daily/anchors", test_daily_anchors);
  g_test_add_func ("/risk-drawdown/daily/message", test_daily_message);
  g_test_add_func ("/risk-drawdown/daily/day-peak", test_daily_peak);
  g_test_add_func ("/risk-drawdown/daily/pause", test_daily_pause);
  g_test_add_func ("/risk-drawdown/restart", test_restart);
  g_test_add_func ("/risk-drawdown/check-order", test_check_order);
  g_test_add_func ("/risk-drawdown/reports", test_reports);
  g_test_add_func ("/risk-drawdown/out-of-range", test_out_of_range);
  g_test_add_func ("/risk-drawdown/config", test_config);
  return g_test_run ();
}
