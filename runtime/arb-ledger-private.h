/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <arbiter/arb-plugin.h>

G_BEGIN_DECLS

/* The trading domain as the host keeps it in memory. The store is the durable
 * truth and loads these at start; the order saga changes them in memory first
 * (a reservation, undone on a failed commit), then commits. Every amount is an
 * ArbDecimal. Times are µs since the epoch, UTC. */

typedef enum {
  ARB_ASSESSMENT_ACTIVE,
  ARB_ASSESSMENT_PASSED,
  ARB_ASSESSMENT_FAILED,
} ArbAssessmentStatus;

typedef enum {
  ARB_SIDE_LONG,  /* a buy opens it */
  ARB_SIDE_SHORT, /* a sell opens it (crypto only) */
} ArbPositionSide;

typedef enum {
  ARB_POSITION_OPEN,
  ARB_POSITION_CLOSED,
} ArbPositionStatus;

/* why a trade happened */
typedef enum {
  ARB_TRADE_OPEN,        /* an order opened a position */
  ARB_TRADE_CLOSE,       /* POST /positions/{id}/close */
  ARB_TRADE_STOP_LOSS,
  ARB_TRADE_TAKE_PROFIT,
  ARB_TRADE_SETTLEMENT,  /* a prediction market resolved or was voided */
  ARB_TRADE_LIQUIDATION, /* a rule breach closed it */
} ArbTradeReason;

const char *arb_assessment_status_to_string (ArbAssessmentStatus status);
const char *arb_position_side_to_string (ArbPositionSide side);
const char *arb_trade_reason_to_string (ArbTradeReason reason);
gboolean    arb_assessment_status_from_string (const char *text, ArbAssessmentStatus *out);
gboolean    arb_position_side_from_string (const char *text, ArbPositionSide *out);
gboolean    arb_trade_reason_from_string (const char *text, ArbTradeReason *out);

typedef struct {
  char               *id;               /* UUID */
  char               *owner;            /* JWT sub */
  char               *program;          /* [program:NAME] */
  ArbAssessmentStatus status;
  char               *status_reason;    /* nullable */
  gint64              status_time_us;   /* 0 while active */
  ArbDecimal          starting_balance;
  ArbDecimal          balance;          /* cash after realised P&L and fees */
  ArbDecimal          equity_hwm;       /* highest equity seen */
  ArbDecimal          day_start_equity;
  ArbDecimal          day_start_balance;
  gint64              day_start_us;     /* when the day anchors were taken */
  gint64              trading_days;     /* distinct trading days with a fill */
  gint64              last_fill_us;     /* 0: none yet */
  gint64              last_fill_day_us; /* start of the trading day of the last fill */
  ArbDecimal          best_day_profit;  /* the best closed trading day's equity gain */
  ArbDecimal          balance_hwm;      /* highest balance seen */
  ArbDecimal          day_high_equity;  /* highest equity since the day's reset */
  ArbDecimal          eod_high_balance; /* highest balance at a daily reset, start included */
  ArbDecimal          eod_high_equity;  /* highest equity at a daily reset, start included */
  gint64              paused_until_us;  /* a soft daily limit: no orders before this */
  gint64              created_us;
  gint64              updated_us;
  gint64              version;          /* bumped by every committed change */
} ArbAssessmentRow;

typedef struct {
  char              *id;
  char              *assessment_id;
  char              *order_id;        /* the order that opened it */
  char              *market;
  ArbPositionSide    side;
  ArbPositionStatus  status;
  ArbDecimal         quantity;        /* still open */
  ArbDecimal         initial_quantity;
  ArbDecimal         entry_price;
  ArbDecimal         margin;          /* still tied up: entry × open qty / leverage */
  ArbDecimal         realized_pnl;    /* over its closed parts, before fees */
  ArbDecimal         fees;            /* paid on open and closes */
  gboolean           has_stop_loss;
  ArbDecimal         stop_loss;
  gboolean           has_take_profit;
  ArbDecimal         take_profit;
  char              *close_reason;    /* nullable: ArbTradeReason of the final close */
  gint64             opened_us;
  gint64             closed_us;       /* 0 while open */
  gint64             updated_us;
} ArbPositionRow;

typedef struct {
  char           *id;
  gint64          seq;            /* store-assigned, increasing: the keyset cursor */
  char           *assessment_id;
  char           *order_id;       /* nullable: closes by rule have none */
  char           *position_id;
  char           *market;
  ArbPositionSide side;           /* of the position */
  gboolean        is_buy;         /* the direction of this fill */
  ArbTradeReason  reason;
  ArbDecimal      quantity;
  ArbDecimal      price;          /* fill price, slippage included */
  ArbDecimal      fee;
  ArbDecimal      realized_pnl;   /* 0 for an open */
  ArbDecimal      cash_effect;    /* realized_pnl − fee: what it did to the balance */
  char           *quote_source;   /* nullable for settlements */
  gint64          quote_time_us;  /* source time of the quote it filled at */
  gint64          executed_us;
} ArbTradeRow;

typedef struct {
  char           *id;
  char           *assessment_id;
  char           *client_order_id; /* nullable */
  char           *market;
  gboolean        is_buy;
  ArbDecimal      quantity;
  gboolean        has_stop_loss;
  ArbDecimal      stop_loss;
  gboolean        has_take_profit;
  ArbDecimal      take_profit;
  char           *status;          /* "filled" */
  char           *correlation_id;  /* nullable */
  gint64          created_us;
} ArbOrderRow;

typedef struct {
  char   *id;              /* the event id */
  char   *type;
  char   *key;             /* assessment id */
  char   *assessment_id;   /* nullable */
  char   *payload;         /* the whole envelope, one line of JSON */
  gint64  created_us;
} ArbOutboxRow;

typedef struct {
  char   *user;            /* JWT sub */
  char   *key;             /* Idempotency-Key */
  char   *request_hash;    /* SHA-256 hex of method, path and body */
  guint   status;          /* HTTP status of the first answer */
  char   *body;            /* its body */
  gint64  created_us;
} ArbIdempotencyRow;

/* the lifecycle counters as stored (one JSON column, schema version 2) */
char    *arb_assessment_lifecycle_to_json (const ArbAssessmentRow *row);
gboolean arb_assessment_lifecycle_from_json (ArbAssessmentRow *row, const char *json, GError **error);

void arb_assessment_row_free (ArbAssessmentRow *row);
void arb_position_row_free (ArbPositionRow *row);
void arb_trade_row_free (ArbTradeRow *row);
void arb_order_row_free (ArbOrderRow *row);
void arb_outbox_row_free (ArbOutboxRow *row);
void arb_idempotency_row_free (ArbIdempotencyRow *row);
ArbAssessmentRow *arb_assessment_row_copy (const ArbAssessmentRow *row);
ArbPositionRow   *arb_position_row_copy (const ArbPositionRow *row);
ArbTradeRow      *arb_trade_row_copy (const ArbTradeRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbAssessmentRow, arb_assessment_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbPositionRow, arb_position_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTradeRow, arb_trade_row_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbOrderRow, arb_order_row_free)

G_END_DECLS
