/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-host-private.h"
#include "arb-ledger-private.h"

G_BEGIN_DECLS

/* Typed failures of the trading core; the REST layer maps each to its HTTP
 * status and error code (doc/api.md). */
#define ARB_TRADING_ERROR (arb_trading_error_quark ())
typedef enum {
  ARB_TRADING_ERROR_VALIDATION,            /* 400 VALIDATION_ERROR */
  ARB_TRADING_ERROR_UNAUTHENTICATED,       /* 401 */
  ARB_TRADING_ERROR_FORBIDDEN,             /* 403 */
  ARB_TRADING_ERROR_NOT_FOUND,             /* 404 */
  ARB_TRADING_ERROR_ASSESSMENT_NOT_ACTIVE, /* 409 */
  ARB_TRADING_ERROR_MARKET_CLOSED,         /* 409 */
  ARB_TRADING_ERROR_IDEMPOTENCY_MISMATCH,  /* 422 IDEMPOTENCY_KEY_REUSED */
  ARB_TRADING_ERROR_INSUFFICIENT_BALANCE,  /* 422 */
  ARB_TRADING_ERROR_RISK_LIMIT,            /* 422 RISK_LIMIT_EXCEEDED */
  ARB_TRADING_ERROR_DRAWDOWN_LIMIT,        /* 422 DRAWDOWN_LIMIT_EXCEEDED */
  ARB_TRADING_ERROR_MARKET_DATA,           /* 503 MARKET_DATA_UNAVAILABLE */
  ARB_TRADING_ERROR_RISK_UNAVAILABLE,      /* 503 RISK_UNAVAILABLE: a risk instance is down */
  ARB_TRADING_ERROR_STORE,                 /* 503 STORE_UNAVAILABLE */
  ARB_TRADING_ERROR_PAYLOAD_TOO_LARGE,     /* 413 */
  ARB_TRADING_ERROR_INTERNAL,              /* 500 */
} ArbTradingError;
GQuark      arb_trading_error_quark (void);
const char *arb_trading_error_code (int code);
guint       arb_trading_error_status (int code);

/* [market-class:crypto], [market-class:prediction], [market:ID] */
typedef struct {
  gint64 slippage_bps;
  gint64 fee_bps;
  gint64 max_quote_age_ms;
} ArbMarketRules;

/* [program:NAME] */
typedef struct {
  char      *name;
  ArbDecimal starting_balance;
  ArbDecimal leverage;
  GStrv      risk; /* [risk:INSTANCE] names */
  GTimeZone *timezone;      /* the trading day's zone */
  int        reset_minute;  /* minutes after local midnight the day starts */
  /* the lifecycle; 0 / unset means no such rule */
  gboolean   has_profit_target;
  ArbDecimal profit_target_pct;
  gint64     min_trading_days;
  gboolean   has_consistency;
  ArbDecimal consistency_pct;
  gint64     max_days;
  gint64     inactivity_days;
} ArbProgram;


/* the start of the trading day that contains @t_us, and of the next one, in
 * the program's zone (DST-correct: a day may be 23 or 25 hours long) */
gint64 arb_program_day_start (const ArbProgram *program, gint64 t_us);
gint64 arb_program_next_day_start (const ArbProgram *program, gint64 t_us);

/* what an account holds in one market, summed over its open positions, so
 * that valuing an account costs one price lookup per market it holds, not one
 * per position (exact: 128-bit sums, rounded once) */
typedef struct {
  char     *market;
  __int128  long_qty;   /* Σ quantity.raw of longs */
  __int128  long_cost;  /* Σ entry.raw × quantity.raw of longs (scale 10^16) */
  __int128  short_qty;
  __int128  short_cost;
  guint     n_positions;
  GPtrArray *positions; /* the open ArbPositionRow in this market, borrowed */
  GPtrArray *bracketed; /* those of them with a stop-loss or a take-profit (set
                         * at open, never changed): what a mark must look at */
  __int128  unreal;     /* its unrealised P&L at the last mark (scale 10^16) */
} ArbExposure;

/* the live state of one assessment */
typedef struct {
  ArbAssessmentRow *row;       /* owned */
  GPtrArray        *positions; /* open ArbPositionRow, owned */
  GHashTable       *exposure;  /* market → ArbExposure, owned */
  __int128          unreal;    /* Σ exposure unreal: the marker keeps it current */
  ArbDecimal        used_margin; /* Σ margin of the open positions */
  /* one batch of changes of an assessment commits at a time; the changes
   * that arrive meanwhile wait here and go as the next batch (arb-saga.c) */
  gboolean          busy;
  GQueue            waiting;   /* SagaRun, owned by the saga */
} ArbAccount;


/* an execution estimate: what a fill would be now */
typedef struct {
  gboolean   is_buy;
  ArbDecimal quantity;
  ArbDecimal ref_price;  /* bid, ask, or last when the feed has no book */
  ArbDecimal price;      /* with slippage */
  ArbDecimal notional;   /* price × quantity */
  ArbDecimal fee;
  ArbDecimal margin;     /* notional / leverage; prediction: the notional */
  char      *quote_source;
  gint64     quote_time_us;
} ArbFill;

void arb_fill_clear (ArbFill *fill);

typedef struct _ArbTrading ArbTrading;

/* reads [program:*], [market-class:*], [market:*] from the config; problems
 * go to @problems */
ArbTrading *arb_trading_new (ArbHost *host, GPtrArray *problems);
void        arb_trading_free (ArbTrading *trading);
/* the schemas, for --check-config and the reference */
const ArbConfigKey *arb_trading_program_schema (void);
const ArbConfigKey *arb_trading_class_schema (void);
const ArbConfigKey *arb_trading_market_schema (void);

ArbProgram *arb_trading_get_program (ArbTrading *trading, const char *name);
GStrv       arb_trading_program_names (ArbTrading *trading);
void        arb_trading_market_rules (ArbTrading *trading, const char *market, ArbMarketRules *out);

/* the ledger in memory */
void        arb_trading_add_account (ArbTrading *trading, ArbAssessmentRow *row); /* takes it */
void        arb_trading_add_position (ArbTrading *trading, ArbPositionRow *row);  /* takes it; open only */
ArbAccount *arb_trading_get_account (ArbTrading *trading, const char *id);
/* (element-type ArbAccount) the accounts holding @market, or NULL; borrowed */
GHashTable *arb_trading_holders (ArbTrading *trading, const char *market);
/* (element-type ArbAccount) (transfer container) */
GPtrArray  *arb_trading_list_accounts (ArbTrading *trading, const char *owner);
/* the same without a copy: every account (@owner NULL) or @owner's, in
 * (created, id) order; borrowed, valid until an account is added */
const GPtrArray *arb_trading_accounts_in_order (ArbTrading *trading, const char *owner);
ArbPositionRow *arb_trading_get_position (ArbTrading *trading, const char *id, ArbAccount **account_out);
gint64      arb_trading_next_trade_seq (ArbTrading *trading);
void        arb_trading_set_trade_seq (ArbTrading *trading, gint64 last);



/* Pure pricing. A market is tradable when its status is open (or unknown) and
 * its quote is younger than max_quote_age. */
gboolean arb_trading_quote_for (ArbTrading *trading, const char *market, ArbQuote **quote_out, GError **error);
gboolean arb_trading_estimate (ArbTrading *trading, const ArbProgram *program, const char *market,
                               const ArbQuote *quote, gboolean is_buy, ArbDecimal quantity, ArbFill *out,
                               GError **error);
/* the mark of an open position: bid for longs, ask for shorts (last when
 * the feed has no book); FALSE when the book has no price */
gboolean arb_trading_mark (ArbTrading *trading, const ArbPositionRow *pos, ArbDecimal *mark, gint64 *mark_time_us,
                           char **source);
/* (exit − entry) × qty for longs, (entry − exit) × qty for shorts */
gboolean arb_position_pnl (const ArbPositionRow *pos, ArbDecimal exit_price, ArbDecimal quantity, ArbDecimal *out,
                           GError **error);
/* a fill happened now: counts the trading day */
void arb_trading_note_fill (ArbTrading *trading, ArbAccount *account, gint64 now_us);

/* the live positions: insert takes @pos, remove frees it */
void arb_trading_insert_position (ArbTrading *trading, ArbAccount *account, ArbPositionRow *pos);
void arb_trading_remove_position (ArbTrading *trading, ArbAccount *account, ArbPositionRow *pos);
/* keeps an account's sums right around a change of an open position:
 * sign -1 before changing it, +1 after */
void arb_trading_exposure_add (ArbTrading *trading, ArbAccount *account, const ArbPositionRow *pos, int sign);

/* balance + unrealised P&L (positions without a price count at entry) */
typedef struct {
  ArbDecimal  equity;
  ArbDecimal  unrealized;
  ArbDecimal  used_margin;
  ArbDecimal  free_margin;
  /* arb_trading_value(): a market held that has no quote in the book (so
   * counted at entry), or NULL; always NULL from a mark */
  const char *unquoted;
} ArbAccountValue;
gboolean arb_trading_value (ArbTrading *trading, ArbAccount *account, ArbAccountValue *out, GError **error);
/* the same, adding to @unquoted_all (nullable) every market held that has no
 * quote, sorted; its strings are the account's, valid while it holds them */
gboolean arb_trading_value_full (ArbTrading *trading, ArbAccount *account, ArbAccountValue *out,
                                 GPtrArray *unquoted_all, GError **error);
/* the same after a move of @market only: re-prices that market with @quote
 * and takes the others from the last marks, O(1) instead of O(markets held).
 * Every book update is followed by a mark of the market's holders, so the
 * marks are the book. */
gboolean arb_trading_value_after_mark (ArbTrading *trading, ArbAccount *account, const char *market,
                                       const ArbQuote *quote, ArbAccountValue *out, GError **error);

/* Σ entry × open quantity of @account in the markets of @event (the ones
 * whose published event it is, or the market of that id when nothing was
 * published for it), rounded up once; O(markets held). FALSE, with *@out
 * the largest decimal, when beyond the decimal range. */
gboolean arb_trading_event_notional (ArbTrading *trading, ArbAccount *account, const char *event, ArbDecimal *out);

G_END_DECLS
