/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* risk-drawdown: the overall (max) loss floor and the daily loss floor of a
 * prop-firm assessment, in the variants firms use (doc/risk-rules.md maps
 * them to DOMAIN.md's ML-1…ML-7 and DL-1…DL-5). on_mark reports a breach when
 * equity reaches a floor; check_order refuses an order whose worst case would.
 *
 * Pure and fast: no state per assessment (the host keeps and persists every
 * peak a floor follows: the equity and balance high-water marks, the highest
 * end-of-day values, the day's peak equity), nothing allocated unless a rule
 * fires, no I/O. A soft daily limit is a pause verdict: the host closes the
 * positions and refuses orders until the next daily reset. */
#include <string.h>

#include "arb-risk-common.h"

typedef enum {
  MODE_STATIC,
  MODE_TRAILING_EOD,
  MODE_TRAILING_INTRADAY,
} Mode;

typedef enum {
  ANCHOR_BALANCE,
  ANCHOR_EQUITY,
  ANCHOR_MAX,
  ANCHOR_DAY_PEAK, /* the highest equity since the reset: DL-4, intraday trailing */
} Anchor;

typedef struct {
  ArbInstance *inst;
  /* overall loss */
  gboolean     has_max_loss;
  ArbDecimal   max_loss_pct;
  Mode         mode;
  gboolean     trail_on_equity;
  gboolean     lock_at_start;    /* trailing_eod */
  gboolean     has_lock_offset;  /* trailing_intraday */
  ArbDecimal   lock_offset;
  gboolean     allowance_of_peak; /* max_loss_basis=peak */
  /* daily loss */
  gboolean     has_daily;
  ArbDecimal   daily_pct;
  Anchor       daily_anchor;
  gboolean     daily_of_anchor;  /* daily_loss_basis=anchor */
  gboolean     daily_pause;
  /* lte: at or below a floor breaches; lt: only below it */
  gboolean     breach_at_equal;
} Drawdown;

static const ArbConfigKey drawdown_config[] = {
  { "max_loss_pct", ARB_CFG_DECIMAL, 0, NULL, 0, 100, NULL,
    "overall loss allowance in percent of the starting balance (10 = 10%), or of the peak with "
    "max_loss_basis=peak; unset: no overall limit" },
  { "mode", ARB_CFG_ENUM, 0, "static", 0, 0, "static,trailing_eod,trailing_intraday",
    "static: floor = start − allowance; trailing_eod: highest end-of-day balance or equity − allowance; "
    "trailing_intraday: peak equity (unrealised P&L included), or peak balance, − allowance, in real time" },
  { "trail_on", ARB_CFG_ENUM, 0, NULL, 0, 0, "balance,equity",
    "what a trailing floor follows; unset: balance for trailing_eod, equity for trailing_intraday" },
  { "lock_at_start", ARB_CFG_BOOL, 0, "false", 0, 0, NULL,
    "trailing_eod: the floor stops rising once it reaches the starting balance" },
  { "lock_offset", ARB_CFG_DECIMAL, 0, NULL, 0, 1000000000, NULL,
    "trailing_intraday: the floor stops rising at start + lock_offset (an amount, 0 locks at the start); "
    "unset: it never stops" },
  { "max_loss_basis", ARB_CFG_ENUM, 0, "initial", 0, 0, "initial,peak",
    "what max_loss_pct is a percentage of: initial (the starting balance) or peak (the peak a trailing floor "
    "follows, so floor = peak × (1 − max_loss_pct/100))" },
  { "daily_loss_pct", ARB_CFG_DECIMAL, 0, NULL, 0, 100, NULL,
    "daily loss allowance in percent of the starting balance (5 = 5%), or of the day anchor with "
    "daily_loss_basis=anchor, measured from the day anchor; unset: no daily limit" },
  { "daily_anchor", ARB_CFG_ENUM, 0, "balance", 0, 0, "balance,equity,max,day_peak",
    "the day anchor: the balance, the equity, or the higher of the two, taken at the program's daily reset; or "
    "day_peak, the highest equity since the reset (unrealised P&L included), so that the daily floor trails it "
    "intraday" },
  { "daily_loss_basis", ARB_CFG_ENUM, 0, "initial", 0, 0, "initial,anchor",
    "what daily_loss_pct is a percentage of: initial (the starting balance) or anchor (the day anchor)" },
  { "daily_mode", ARB_CFG_ENUM, 0, "fail", 0, 0, "fail,pause",
    "fail: reaching the daily floor fails the assessment; pause: a soft limit (rule daily_loss_pause): the host "
    "closes every position and refuses orders until the next daily reset, and the assessment goes on" },
  { "breach_at", ARB_CFG_ENUM, 0, "lte", 0, 0, "lte,lt",
    "lte: equity at or below a floor breaches (\"reaches or falls below\"); lt: only below it (\"cannot drop "
    "below\")" },
  { NULL }
};

/* ---- config ---------------------------------------------------------------- */

static gboolean
config_error (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
config_error (GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, msg);
  return FALSE;
}

static void
drawdown_destroy (gpointer data)
{
  g_free (data);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Drawdown, drawdown_destroy)

/* what the schema cannot say: combinations */
static gboolean
read_config (Drawdown *self, ArbInstance *inst, GError **error)
{
  const char *mode = arb_instance_get_string (inst, "mode");
  const char *trail_on = arb_instance_get_string (inst, "trail_on");
  const char *anchor = arb_instance_get_string (inst, "daily_anchor");

  self->has_max_loss = arb_instance_has_key (inst, "max_loss_pct");
  self->max_loss_pct = arb_instance_get_decimal (inst, "max_loss_pct");
  self->has_daily = arb_instance_has_key (inst, "daily_loss_pct");
  self->daily_pct = arb_instance_get_decimal (inst, "daily_loss_pct");
  if (!self->has_max_loss && !self->has_daily)
    return config_error (error, "nothing to check: set max_loss_pct, daily_loss_pct or both");
  if (self->has_max_loss && self->max_loss_pct.raw <= 0)
    return config_error (error, "max_loss_pct must be above 0 (leave it out for no overall limit)");
  if (self->has_daily && self->daily_pct.raw <= 0)
    return config_error (error, "daily_loss_pct must be above 0 (leave it out for no daily limit)");

  if (g_strcmp0 (mode, "trailing_eod") == 0)
    self->mode = MODE_TRAILING_EOD;
  else if (g_strcmp0 (mode, "trailing_intraday") == 0)
    self->mode = MODE_TRAILING_INTRADAY;
  else
    self->mode = MODE_STATIC;
  self->trail_on_equity = trail_on != NULL ? g_str_equal (trail_on, "equity") : self->mode == MODE_TRAILING_INTRADAY;
  self->lock_at_start = arb_instance_get_boolean (inst, "lock_at_start");
  self->has_lock_offset = arb_instance_has_key (inst, "lock_offset");
  self->lock_offset = arb_instance_get_decimal (inst, "lock_offset");
  self->allowance_of_peak = g_strcmp0 (arb_instance_get_string (inst, "max_loss_basis"), "peak") == 0;
  if (self->mode == MODE_STATIC && trail_on != NULL)
    return config_error (error, "trail_on=%s applies to the trailing modes; mode is static", trail_on);
  if (self->mode != MODE_TRAILING_EOD && self->lock_at_start)
    return config_error (error, "lock_at_start applies to mode=trailing_eod%s", self->mode == MODE_TRAILING_INTRADAY
                                                                                   ? " (trailing_intraday locks with "
                                                                                     "lock_offset; 0 locks at the "
                                                                                     "start)"
                                                                                   : "");
  if (self->mode != MODE_TRAILING_INTRADAY && self->has_lock_offset)
    return config_error (error, "lock_offset applies to mode=trailing_intraday%s",
                         self->mode == MODE_TRAILING_EOD ? " (trailing_eod locks at the start with lock_at_start)"
                                                         : "");
  if (self->mode == MODE_STATIC && self->allowance_of_peak)
    return config_error (error, "max_loss_basis=peak needs a trailing mode: a static floor has no peak");

  if (g_strcmp0 (anchor, "equity") == 0)
    self->daily_anchor = ANCHOR_EQUITY;
  else if (g_strcmp0 (anchor, "max") == 0)
    self->daily_anchor = ANCHOR_MAX;
  else if (g_strcmp0 (anchor, "day_peak") == 0)
    self->daily_anchor = ANCHOR_DAY_PEAK;
  else
    self->daily_anchor = ANCHOR_BALANCE;
  self->daily_of_anchor = g_strcmp0 (arb_instance_get_string (inst, "daily_loss_basis"), "anchor") == 0;
  self->daily_pause = g_strcmp0 (arb_instance_get_string (inst, "daily_mode"), "pause") == 0;
  self->breach_at_equal = g_strcmp0 (arb_instance_get_string (inst, "breach_at"), "lt") != 0;
  return TRUE;
}

static gpointer
drawdown_create (ArbInstance *inst, GError **error)
{
  g_autoptr(Drawdown) self = g_new0 (Drawdown, 1);

  self->inst = inst;
  if (!read_config (self, inst, error))
    return NULL;
  return g_steal_pointer (&self);
}

static gboolean
drawdown_start (gpointer data, GError **error)
{
  Drawdown *self = data;
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, NULL);
  return TRUE;
}

static void
drawdown_stop (gpointer data)
{
}

/* ---- the floors ------------------------------------------------------------- */

typedef struct {
  ArbDecimal  floor;
  ArbDecimal  allowance;
  ArbDecimal  trailing;    /* trailing modes: peak − allowance, before a lock */
  ArbDecimal  peak;        /* trailing modes */
  const char *peak_source; /* trailing modes */
  gboolean    has_lock;
  ArbDecimal  lock_level;
  gboolean    locked;
} MaxLossFloor;

static gboolean
max_loss_floor (Drawdown *self, const ArbAccountView *account, MaxLossFloor *out, GError **error)
{
  ArbDecimal start = arb_account_view_get_starting_balance (account);

  memset (out, 0, sizeof *out);
  switch (self->mode)
    {
    case MODE_STATIC:
      return arb_risk_percent_of (start, self->max_loss_pct, &out->allowance, error)
             && arb_decimal_sub (start, out->allowance, &out->floor, error);
    case MODE_TRAILING_EOD:
      /* the host's highest balance or equity at a daily reset: the
       * end-of-day high, intraday moves never count */
      out->peak = arb_account_view_get_eod_high (account, self->trail_on_equity);
      out->peak_source = self->trail_on_equity ? "highest end-of-day equity" : "highest end-of-day balance";
      out->has_lock = self->lock_at_start;
      out->lock_level = start;
      break;
    case MODE_TRAILING_INTRADAY:
    default:
      out->peak = self->trail_on_equity ? arb_account_view_get_equity_high_water_mark (account)
                                        : arb_account_view_get_balance_high_water_mark (account);
      out->peak_source = self->trail_on_equity ? "equity high-water mark" : "balance high-water mark";
      out->has_lock = self->has_lock_offset;
      if (out->has_lock && !arb_decimal_add (start, self->lock_offset, &out->lock_level, error))
        return FALSE;
      break;
    }
  /* the floor never starts below the static one */
  out->peak = arb_decimal_max (out->peak, start);
  if (!arb_risk_percent_of (self->allowance_of_peak ? out->peak : start, self->max_loss_pct, &out->allowance, error)
      || !arb_decimal_sub (out->peak, out->allowance, &out->trailing, error))
    return FALSE;
  out->floor = out->trailing;
  if (out->has_lock && arb_decimal_cmp (out->trailing, out->lock_level) >= 0)
    {
      out->floor = out->lock_level;
      out->locked = TRUE;
    }
  return TRUE;
}

typedef struct {
  ArbDecimal  floor;
  ArbDecimal  anchor;
  ArbDecimal  allowance;
} DailyFloor;

static gboolean
daily_floor (Drawdown *self, const ArbAccountView *account, DailyFloor *out, GError **error)
{
  ArbDecimal b = arb_account_view_get_day_start_balance (account);
  ArbDecimal e = arb_account_view_get_day_start_equity (account);

  switch (self->daily_anchor)
    {
    case ANCHOR_EQUITY: out->anchor = e; break;
    case ANCHOR_MAX: out->anchor = arb_decimal_max (b, e); break;
    /* the host's highest equity since the reset, which is at least the
     * equity at the reset and at least the equity now */
    case ANCHOR_DAY_PEAK: out->anchor = arb_account_view_get_day_high_equity (account); break;
    case ANCHOR_BALANCE:
    default: out->anchor = b; break;
    }
  return arb_risk_percent_of (self->daily_of_anchor ? out->anchor : arb_account_view_get_starting_balance (account),
                              self->daily_pct, &out->allowance, error)
         && arb_decimal_sub (out->anchor, out->allowance, &out->floor, error);
}

static gboolean
breaches (Drawdown *self, ArbDecimal equity, ArbDecimal floor)
{
  int c = arb_decimal_cmp (equity, floor);
  return self->breach_at_equal ? c <= 0 : c < 0;
}

static const char *
mode_name (Mode mode)
{
  switch (mode)
    {
    case MODE_TRAILING_EOD: return "trailing_eod";
    case MODE_TRAILING_INTRADAY: return "trailing_intraday";
    case MODE_STATIC:
    default: return "static";
    }
}

static const char *
anchor_name (Anchor anchor)
{
  switch (anchor)
    {
    case ANCHOR_EQUITY: return "equity";
    case ANCHOR_MAX: return "max";
    case ANCHOR_DAY_PEAK: return "day_peak";
    case ANCHOR_BALANCE:
    default: return "balance";
    }
}

/* "static: start 100000.00 − 10% of start = 90000.00" and the like */
static char *
max_loss_describe (Drawdown *self, const ArbAccountView *account, const MaxLossFloor *f)
{
  char s[ARB_DECIMAL_BUFSIZE], p[ARB_DECIMAL_BUFSIZE], a[ARB_DECIMAL_BUFSIZE], fl[ARB_DECIMAL_BUFSIZE],
      pk[ARB_DECIMAL_BUFSIZE], lk[ARB_DECIMAL_BUFSIZE], tr[ARB_DECIMAL_BUFSIZE];
  ArbDecimal start = arb_account_view_get_starting_balance (account);
  g_autofree char *lock = NULL;

  arb_risk_format (start, s);
  arb_risk_format_pct (self->max_loss_pct, p);
  arb_risk_format (f->allowance, a);
  arb_risk_format (f->floor, fl);
  if (self->mode == MODE_STATIC)
    return g_strdup_printf ("static: start %s − %s%% of start (%s) = %s", s, p, a, fl);
  arb_risk_format (f->peak, pk);
  arb_risk_format (f->trailing, tr);
  /* a locked floor says what the trail reached and where it stopped */
  if (f->has_lock)
    lock = g_strdup_printf (f->locked ? ", locked at %s" : ", locks at %s", arb_risk_format (f->lock_level, lk));
  return g_strdup_printf ("%s: max(start, %s) %s − %s%% of %s (%s) = %s%s", mode_name (self->mode), f->peak_source,
                          pk, p, self->allowance_of_peak ? "peak" : "start", a, tr, lock != NULL ? lock : "");
}

static char *
daily_describe (Drawdown *self, const ArbAccountView *account, const DailyFloor *f)
{
  char an[ARB_DECIMAL_BUFSIZE], p[ARB_DECIMAL_BUFSIZE], a[ARB_DECIMAL_BUFSIZE], fl[ARB_DECIMAL_BUFSIZE];
  static const char *const what[] = { "day-start balance", "day-start equity", "max(day-start balance, equity)",
                                      "the day's peak equity" };

  return g_strdup_printf ("%s %s − %s%% of %s (%s) = %s", what[self->daily_anchor], arb_risk_format (f->anchor, an),
                          arb_risk_format_pct (self->daily_pct, p), self->daily_of_anchor ? "the anchor" : "start",
                          arb_risk_format (f->allowance, a), arb_risk_format (f->floor, fl));
}

static void
evidence_common (Drawdown *self, const ArbAccountView *account, ArbRiskVerdict *verdict, ArbDecimal floor,
                 const char *computed)
{
  arb_risk_verdict_add_evidence_decimal (verdict, "equity", arb_account_view_get_equity (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "balance", arb_account_view_get_balance (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "unrealizedPnl", arb_account_view_get_unrealized_pnl (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "startingBalance", arb_account_view_get_starting_balance (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "floor", floor);
  arb_risk_verdict_add_evidence (verdict, "floorComputation", computed);
  arb_risk_verdict_add_evidence (verdict, "breachAt", self->breach_at_equal ? "lte" : "lt");
}

static void
evidence_day (Drawdown *self, const ArbAccountView *account, ArbRiskVerdict *verdict)
{
  arb_risk_verdict_add_evidence (verdict, "dayAnchor", anchor_name (self->daily_anchor));
  arb_risk_verdict_add_evidence_decimal (verdict, "dayStartBalance", arb_account_view_get_day_start_balance (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "dayStartEquity", arb_account_view_get_day_start_equity (account));
  arb_risk_verdict_add_evidence_decimal (verdict, "dayHighEquity", arb_account_view_get_day_high_equity (account));
}

static void
breach_max_loss (Drawdown *self, const ArbAccountView *account, const MaxLossFloor *f, ArbRiskVerdict *verdict)
{
  g_autofree char *computed = max_loss_describe (self, account, f);
  char e[ARB_DECIMAL_BUFSIZE], fl[ARB_DECIMAL_BUFSIZE];

  arb_risk_verdict_breach (verdict, "max_loss", "equity %s is %s the max-loss floor %s (%s)",
                           arb_risk_format (arb_account_view_get_equity (account), e),
                           self->breach_at_equal ? "at or below" : "below", arb_risk_format (f->floor, fl), computed);
  evidence_common (self, account, verdict, f->floor, computed);
  arb_risk_verdict_add_evidence (verdict, "mode", mode_name (self->mode));
  arb_risk_verdict_add_evidence_decimal (verdict, "allowance", f->allowance);
  if (self->mode != MODE_STATIC)
    {
      arb_risk_verdict_add_evidence (verdict, "trailOn", self->trail_on_equity ? "equity" : "balance");
      arb_risk_verdict_add_evidence_decimal (verdict, "peak", f->peak);
      arb_risk_verdict_add_evidence (verdict, "peakSource", f->peak_source);
    }
  if (f->has_lock)
    {
      arb_risk_verdict_add_evidence (verdict, "lock", f->locked ? "locked" : "not reached");
      arb_risk_verdict_add_evidence_decimal (verdict, "lockLevel", f->lock_level);
    }
  else
    arb_risk_verdict_add_evidence (verdict, "lock", "none");
  evidence_day (self, account, verdict);
}

/* "2026-11-22T00:00:00Z" */
static char *
format_time (gint64 us)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  return t != NULL ? g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("the next daily reset");
}

static void
breach_daily (Drawdown *self, const ArbAccountView *account, const DailyFloor *f, ArbRiskVerdict *verdict)
{
  g_autofree char *computed = daily_describe (self, account, f);
  char e[ARB_DECIMAL_BUFSIZE], fl[ARB_DECIMAL_BUFSIZE];

  arb_risk_format (arb_account_view_get_equity (account), e);
  arb_risk_format (f->floor, fl);
  if (self->daily_pause)
    {
      /* a soft limit: the host closes every position and takes no order
       * before the next trading day starts; the assessment goes on */
      gint64 until = arb_account_view_get_next_day_start (account);
      g_autofree char *when = format_time (until);
      arb_risk_verdict_pause (verdict, until,
                              "equity %s is %s the daily loss floor %s (%s); trading pauses until the next daily "
                              "reset, %s",
                              e, self->breach_at_equal ? "at or below" : "below", fl, computed, when);
      arb_risk_verdict_add_evidence (verdict, "pausedUntil", when);
    }
  else
    arb_risk_verdict_breach (verdict, "daily_loss", "equity %s is %s the daily loss floor %s (%s)", e,
                             self->breach_at_equal ? "at or below" : "below", fl, computed);
  evidence_common (self, account, verdict, f->floor, computed);
  arb_risk_verdict_add_evidence (verdict, "mode", self->daily_pause ? "pause" : "fail");
  arb_risk_verdict_add_evidence_decimal (verdict, "allowance", f->allowance);
  arb_risk_verdict_add_evidence_decimal (verdict, "anchor", f->anchor);
  evidence_day (self, account, verdict);
}

/* ---- the callbacks ------------------------------------------------------------ */

/* where a floor stands, for GET /assessments/{id}: room is how far equity
 * may fall before the first value that breaches (under lt that is one step
 * below the floor) */
static void
report (Drawdown *self, ArbRiskVerdict *verdict, const char *rule, ArbDecimal floor, ArbDecimal equity)
{
  ArbDecimal room;
  if (!arb_decimal_sub (equity, floor, &room, NULL))
    room = arb_decimal_from_raw (arb_decimal_cmp (equity, floor) < 0 ? G_MININT64 : G_MAXINT64);
  else if (!self->breach_at_equal && room.raw < G_MAXINT64)
    room.raw += 1;
  arb_risk_verdict_report_rule (verdict, rule, floor, equity, room);
}

static gboolean
drawdown_on_mark (gpointer data, const ArbAccountView *account, ArbRiskVerdict *verdict, GError **error)
{
  Drawdown *self = data;
  ArbDecimal equity = arb_account_view_get_equity (account);
  gboolean breached = FALSE;
  g_autoptr(GError) local = NULL;

  /* every rule is reported on every call; the first breach is the one
   * reported, and the overall loss comes first: it fails for good */
  if (self->has_max_loss)
    {
      MaxLossFloor f;
      if (!max_loss_floor (self, account, &f, &local))
        {
          arb_risk_set_range_error (error, "the max-loss floor cannot be computed", local);
          return FALSE;
        }
      report (self, verdict, "max_loss", f.floor, equity);
      if (breaches (self, equity, f.floor))
        {
          breach_max_loss (self, account, &f, verdict);
          breached = TRUE;
        }
    }
  if (self->has_daily)
    {
      DailyFloor f;
      if (!daily_floor (self, account, &f, &local))
        {
          arb_risk_set_range_error (error, "the daily loss floor cannot be computed", local);
          return FALSE;
        }
      report (self, verdict, "daily_loss", f.floor, equity);
      if (!breached && breaches (self, equity, f.floor))
        breach_daily (self, account, &f, verdict);
    }
  return TRUE;
}

/* "the worst case of the order (equity 90000.00 − 1025.00: ...) is 88975.00,
 * at or below the max-loss floor 89000.00 (static: ...)" */
static void
reject_worst_case (Drawdown *self, ArbRiskVerdict *verdict, const ArbOrderView *order, const ArbRiskLoss *loss,
                   ArbDecimal equity, ArbDecimal worst, const char *which, ArbDecimal floor, const char *computed)
{
  char e[ARB_DECIMAL_BUFSIZE], l[ARB_DECIMAL_BUFSIZE], w[ARB_DECIMAL_BUFSIZE], f[ARB_DECIMAL_BUFSIZE];
  g_autofree char *how = arb_risk_loss_describe (loss, order);

  arb_risk_verdict_reject (verdict, ARB_RISK_REJECT_DRAWDOWN,
                           "the order's worst case would take equity to %s (equity %s − loss %s; %s), %s the %s "
                           "floor %s (%s)",
                           arb_risk_format (worst, w), arb_risk_format (equity, e), arb_risk_format (loss->total, l),
                           how, self->breach_at_equal ? "at or below" : "below", which, arb_risk_format (floor, f),
                           computed);
}

static gboolean
drawdown_check_order (gpointer data, const ArbOrderView *order, const ArbAccountView *account,
                      ArbRiskVerdict *verdict, GError **error)
{
  Drawdown *self = data;
  ArbDecimal equity = arb_account_view_get_equity (account);
  ArbRiskLoss loss;
  ArbDecimal worst;
  g_autoptr(GError) local = NULL;

  /* a paused assessment never gets here: the host refuses its orders until
   * the pause ends */
  if (!arb_risk_order_loss (order, &loss, &local) || !arb_decimal_sub (equity, loss.total, &worst, &local))
    {
      arb_risk_set_range_error (error, "the worst case of the order cannot be computed", local);
      return FALSE;
    }
  if (self->has_max_loss)
    {
      MaxLossFloor f;
      if (!max_loss_floor (self, account, &f, &local))
        {
          arb_risk_set_range_error (error, "the max-loss floor cannot be computed", local);
          return FALSE;
        }
      if (breaches (self, worst, f.floor))
        {
          g_autofree char *computed = max_loss_describe (self, account, &f);
          reject_worst_case (self, verdict, order, &loss, equity, worst, "max-loss", f.floor, computed);
          return TRUE;
        }
    }
  if (self->has_daily)
    {
      DailyFloor f;
      if (!daily_floor (self, account, &f, &local))
        {
          arb_risk_set_range_error (error, "the daily loss floor cannot be computed", local);
          return FALSE;
        }
      if (breaches (self, worst, f.floor))
        {
          g_autofree char *computed = daily_describe (self, account, &f);
          reject_worst_case (self, verdict, order, &loss, equity, worst, "daily loss", f.floor, computed);
          return TRUE;
        }
    }
  return TRUE;
}

static const ArbRiskVTable drawdown_vtable = {
  .size = sizeof (ArbRiskVTable),
  .create = drawdown_create,
  .start = drawdown_start,
  .check_order = drawdown_check_order,
  .on_mark = drawdown_on_mark,
  .stop = drawdown_stop,
  .destroy = drawdown_destroy,
};

static const ArbPluginDesc drawdown_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "risk-drawdown",
  .version = "0.2.0",
  .summary = "Overall and daily loss floors: static, trailing end-of-day or intraday, with locks",
  .kind = ARB_PLUGIN_RISK,
  .config = drawdown_config,
  .vtable = &drawdown_vtable,
};

ARB_PLUGIN_DEFINE (risk_drawdown, drawdown_desc)
