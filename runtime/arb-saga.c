/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>


#include "arb-json-private.h"
#include "arb-marker-private.h"
#include "arb-outbox-private.h"
#include "arb-risk-private.h"
#include "arb-saga-private.h"
#include "arb-util-private.h"


struct _ArbSaga {
  ArbHost    *host;
  ArbTrading *trading;
  ArbStore   *store;
};

ArbSaga *
arb_saga_new (ArbHost *host, ArbTrading *trading, ArbStore *store)
{
  ArbSaga *saga = g_new0 (ArbSaga, 1);
  saga->host = host;
  saga->trading = trading;
  saga->store = store;
  return saga;
}

void
arb_saga_free (ArbSaga *saga)
{
  g_free (saga);
}

void
arb_order_request_clear (ArbOrderRequest *req)
{
  g_clear_pointer (&req->user, g_free);
  g_clear_pointer (&req->assessment_id, g_free);
  g_clear_pointer (&req->market, g_free);
  g_clear_pointer (&req->client_order_id, g_free);
  g_clear_pointer (&req->correlation_id, g_free);
}

void
arb_saga_result_free (ArbSagaResult *result)
{
  if (result == NULL)
    return;
  arb_order_row_free (result->order);
  arb_trade_row_free (result->trade);
  arb_position_row_free (result->position);
  arb_assessment_row_free (result->assessment);
  g_free (result);
}

/* ------------------------------------------------------------------------ */
/* JSON of the domain objects                                               */

void
arb_json_add_assessment (ArbJson *j, ArbTrading *trading, ArbAccount *account)
{
  arb_json_add_assessment_with_rules (j, trading, account, NULL);
}

void
arb_json_add_assessment_with_rules (ArbJson *j, ArbTrading *trading, ArbAccount *account, GArray *rules)
{
  ArbAssessmentRow *r = account->row;
  ArbAccountValue v;
  g_autoptr(GPtrArray) unquoted = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;

  arb_json_begin_object (j);
  arb_json_kv_string (j, "id", r->id);
  arb_json_kv_string (j, "userId", r->owner);
  arb_json_kv_string (j, "program", r->program);
  arb_json_kv_string (j, "status", arb_assessment_status_to_string (r->status));
  arb_json_kv_string (j, "statusReason", r->status_reason);
  arb_json_kv_time (j, "statusTime", r->status_time_us);
  arb_json_kv_decimal (j, "startingBalance", r->starting_balance);
  arb_json_kv_decimal (j, "balance", r->balance);
  if (arb_trading_value_full (trading, account, &v, unquoted, &error))
    {
      arb_json_kv_decimal (j, "equity", v.equity);
      arb_json_kv_decimal (j, "unrealizedPnl", v.unrealized);
      arb_json_kv_decimal (j, "usedMargin", v.used_margin);
      arb_json_kv_decimal (j, "freeMargin", v.free_margin);
      /* held, but no quote yet: counted at entry in the figures above */
      arb_json_key (j, "unquotedMarkets");
      arb_json_begin_array (j);
      for (guint i = 0; i < unquoted->len; i++)
        arb_json_string (j, g_ptr_array_index (unquoted, i));
      arb_json_end_array (j);
    }
  arb_json_kv_decimal (j, "equityHighWaterMark", r->equity_hwm);
  arb_json_kv_decimal (j, "dayStartEquity", r->day_start_equity);
  arb_json_kv_decimal (j, "dayStartBalance", r->day_start_balance);
  arb_json_kv_int (j, "openPositions", account->positions->len);
  arb_json_kv_int (j, "tradingDays", r->trading_days);
  arb_json_kv_time (j, "lastFillAt", r->last_fill_us);
  arb_json_kv_time (j, "createdAt", r->created_us);
  arb_json_kv_time (j, "updatedAt", r->updated_us);
  if (rules != NULL)
    {
      arb_json_key (j, "rules");
      arb_json_add_rules (j, rules);
    }
  arb_json_end_object (j);
}

void
arb_json_add_rules (ArbJson *j, GArray *reports)
{
  const ArbRuleReport *binding = NULL;

  for (guint i = 0; i < reports->len; i++)
    {
      const ArbRuleReport *r = &g_array_index (reports, ArbRuleReport, i);
      if (binding == NULL || arb_decimal_cmp (r->room, binding->room) < 0)
        binding = r;
    }
  arb_json_begin_array (j);
  for (guint i = 0; i < reports->len; i++)
    {
      const ArbRuleReport *r = &g_array_index (reports, ArbRuleReport, i);
      arb_json_begin_object (j);
      arb_json_kv_string (j, "rule", r->rule);
      arb_json_kv_string (j, "riskInstance", r->instance);
      arb_json_kv_decimal (j, "limit", r->limit);
      arb_json_kv_decimal (j, "current", r->current);
      arb_json_kv_decimal (j, "room", r->room);
      arb_json_kv_bool (j, "bindsFirst", r == binding);
      arb_json_end_object (j);
    }
  arb_json_end_array (j);
}

char *
arb_json_assessment (ArbTrading *trading, ArbAccount *account)
{
  ArbJson j;
  arb_json_init (&j, 768);
  arb_json_add_assessment (&j, trading, account);
  return arb_json_steal (&j, NULL);
}

static void
kv_optional_decimal (ArbJson *j, const char *key, gboolean has, ArbDecimal value)
{
  arb_json_key (j, key);
  if (has)
    arb_json_decimal (j, value);
  else
    arb_json_null (j);
}

void
arb_json_add_position (ArbJson *j, ArbTrading *trading, const ArbPositionRow *p, gboolean with_mark)
{
  arb_json_begin_object (j);
  arb_json_kv_string (j, "id", p->id);
  arb_json_kv_string (j, "assessmentId", p->assessment_id);
  arb_json_kv_string (j, "orderId", p->order_id);
  arb_json_kv_string (j, "market", p->market);
  arb_json_kv_string (j, "side", arb_position_side_to_string (p->side));
  arb_json_kv_string (j, "status", p->status == ARB_POSITION_OPEN ? "open" : "closed");
  arb_json_kv_decimal (j, "quantity", p->quantity);
  arb_json_kv_decimal (j, "initialQuantity", p->initial_quantity);
  arb_json_kv_decimal (j, "entryPrice", p->entry_price);
  arb_json_kv_decimal (j, "margin", p->margin);
  arb_json_kv_decimal (j, "realizedPnl", p->realized_pnl);
  arb_json_kv_decimal (j, "fees", p->fees);
  kv_optional_decimal (j, "stopLoss", p->has_stop_loss, p->stop_loss);
  kv_optional_decimal (j, "takeProfit", p->has_take_profit, p->take_profit);
  arb_json_kv_string (j, "closeReason", p->close_reason);
  arb_json_kv_time (j, "openedAt", p->opened_us);
  arb_json_kv_time (j, "closedAt", p->closed_us);
  if (with_mark && p->status == ARB_POSITION_OPEN)
    {
      ArbDecimal mark, pnl;
      gint64 mark_time = 0;
      g_autofree char *source = NULL;
      gboolean ok = arb_trading_mark (trading, p, &mark, &mark_time, &source)
                    && arb_position_pnl (p, mark, p->quantity, &pnl, NULL);
      kv_optional_decimal (j, "markPrice", ok, mark);
      kv_optional_decimal (j, "unrealizedPnl", ok, pnl);
      arb_json_kv_string (j, "markSource", ok ? source : NULL);
      arb_json_kv_time (j, "markTime", ok ? mark_time : 0);
    }
  arb_json_end_object (j);
}

void
arb_json_add_trade (ArbJson *j, const ArbTradeRow *t)
{
  arb_json_begin_object (j);
  arb_json_kv_string (j, "id", t->id);
  arb_json_kv_string (j, "assessmentId", t->assessment_id);
  arb_json_kv_string (j, "orderId", t->order_id);
  arb_json_kv_string (j, "positionId", t->position_id);
  arb_json_kv_string (j, "market", t->market);
  arb_json_kv_string (j, "side", t->is_buy ? "buy" : "sell");
  arb_json_kv_string (j, "positionSide", arb_position_side_to_string (t->side));
  arb_json_kv_string (j, "reason", arb_trade_reason_to_string (t->reason));
  arb_json_kv_decimal (j, "quantity", t->quantity);
  arb_json_kv_decimal (j, "price", t->price);
  arb_json_kv_decimal (j, "fee", t->fee);
  arb_json_kv_decimal (j, "realizedPnl", t->realized_pnl);
  arb_json_kv_decimal (j, "cashEffect", t->cash_effect);
  arb_json_kv_string (j, "quoteSource", t->quote_source);
  arb_json_kv_time (j, "quoteTime", t->quote_time_us);
  arb_json_kv_time (j, "executedAt", t->executed_us);
  arb_json_end_object (j);
}

void
arb_json_add_order (ArbJson *j, const ArbOrderRow *o)
{
  arb_json_begin_object (j);
  arb_json_kv_string (j, "id", o->id);
  arb_json_kv_string (j, "assessmentId", o->assessment_id);
  arb_json_kv_string (j, "clientOrderId", o->client_order_id);
  arb_json_kv_string (j, "market", o->market);
  arb_json_kv_string (j, "side", o->is_buy ? "buy" : "sell");
  arb_json_kv_decimal (j, "quantity", o->quantity);
  kv_optional_decimal (j, "stopLoss", o->has_stop_loss, o->stop_loss);
  kv_optional_decimal (j, "takeProfit", o->has_take_profit, o->take_profit);
  arb_json_kv_string (j, "status", o->status);
  arb_json_kv_time (j, "createdAt", o->created_us);
  arb_json_end_object (j);
}

/* the envelope of a ledger event, as the outbox stores it */
static ArbOutboxRow *
outbox_row (const char *type, const char *assessment_id, const char *correlation_id, gint64 time_us, ArbJson *data)
{
  g_autofree char *json = arb_json_steal (data, NULL);
  g_autoptr(ArbEvent) ev = arb_event_new (type, assessment_id, assessment_id, correlation_id, time_us, json, TRUE);
  ArbOutboxRow *row = g_new0 (ArbOutboxRow, 1);

  row->id = g_strdup (arb_event_get_id (ev));
  row->type = g_strdup (type);
  row->key = g_strdup (assessment_id);
  row->assessment_id = g_strdup (assessment_id);
  row->payload = g_strdup (arb_event_get_json (ev));
  row->created_us = time_us;
  return row;
}

/* ------------------------------------------------------------------------ */
/* The steps                                                                */

typedef struct _SagaRun SagaRun;
/* reserves the change in memory and adds its rows to @txn; FALSE with a
 * typed error when the change cannot be made (nothing reserved then) */
typedef gboolean (*SagaPrepareFunc) (SagaRun *run, ArbAccount *account, ArbStoreTxn *txn, GError **error);

struct _SagaRun {
  ArbSaga           *saga;
  SagaPrepareFunc    prepare;
  ArbOrderRequest    req;
  ArbIdempotencyRow *idem;     /* owned, nullable */
  ArbSagaEncodeFunc  encode;
  ArbSagaDoneFunc    done;
  gpointer           data;
  /* what was reserved, for the compensation */
  ArbAccount        *account;
  ArbPositionRow    *opened;   /* borrowed from the account once inserted */
  ArbPositionRow    *before;   /* owned: a changed position as it was */
  ArbAssessmentRow  *account_before; /* owned */
  GPtrArray         *events;   /* ArbOutboxRow, owned */
  ArbSagaResult     *result;
  /* close */
  char              *position_id;
  gboolean           has_close_qty;
  ArbDecimal         close_qty;
  char              *program;
  char              *owner;
  /* closes and status changes the host makes on its own (rules) */
  gboolean           system;
  ArbTradeReason     close_reason;
  ArbAssessmentStatus new_status;
  char              *status_reason;
  char              *evidence_json; /* an object, for the event */
  gint64             pause_until_us;  /* new_status ACTIVE: a pause until then */
  gboolean           settle;          /* a settlement: at settle_price, no fee */
  ArbDecimal         settle_price;
};

static void
saga_run_free (SagaRun *run)
{
  arb_order_request_clear (&run->req);
  arb_idempotency_row_free (run->idem);
  arb_position_row_free (run->before);
  arb_assessment_row_free (run->account_before);
  if (run->events != NULL)
    g_ptr_array_unref (run->events);
  arb_saga_result_free (run->result);
  g_free (run->position_id);
  g_free (run->program);
  g_free (run->owner);
  g_free (run->status_reason);
  g_free (run->evidence_json);
  g_free (run);
}

static void
finish (SagaRun *run, const GError *error)
{
  ArbSagaResult *result = error == NULL ? g_steal_pointer (&run->result) : NULL;

  run->done (result, error, run->data);
  arb_saga_result_free (result);
  saga_run_free (run);
}

static void
fail (SagaRun *run, GError *error)
{
  finish (run, error);
  g_error_free (error);
}

/* an error of another domain (decimal overflow, say) as a typed one */
static GError *
retype (GError *error, int code)
{
  GError *e = g_error_new (ARB_TRADING_ERROR, code, "%s", error->message);
  g_error_free (error);
  return e;
}

#define PREPARE_FAIL(e)                   \
  G_STMT_START                            \
  {                                       \
    g_propagate_error (error_out, (e));   \
    return FALSE;                         \
  }                                       \
  G_STMT_END

/* step: the assessment exists, belongs to the user, and is active */
static gboolean
step_load_assessment (SagaRun *run, ArbAccount *account, GError **error)
{
  if (account->row->status != ARB_ASSESSMENT_ACTIVE)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_ASSESSMENT_NOT_ACTIVE, "assessment %s is %s%s%s",
                   account->row->id, arb_assessment_status_to_string (account->row->status),
                   account->row->status_reason != NULL ? ": " : "",
                   account->row->status_reason != NULL ? account->row->status_reason : "");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_brackets (const ArbOrderRequest *req, ArbDecimal price, GError **error)
{
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE];
  gboolean is_long = req->is_buy;

  if (req->has_stop_loss && (is_long ? arb_decimal_cmp (req->stop_loss, price) >= 0
                                     : arb_decimal_cmp (req->stop_loss, price) <= 0))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                   "stopLoss %s must be %s the fill price %s for a %s", arb_decimal_format (req->stop_loss, a),
                   is_long ? "below" : "above", arb_decimal_format (price, b), is_long ? "long" : "short");
      return FALSE;
    }
  if (req->has_take_profit && (is_long ? arb_decimal_cmp (req->take_profit, price) <= 0
                                       : arb_decimal_cmp (req->take_profit, price) >= 0))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                   "takeProfit %s must be %s the fill price %s for a %s", arb_decimal_format (req->take_profit, a),
                   is_long ? "above" : "below", arb_decimal_format (price, b), is_long ? "long" : "short");
      return FALSE;
    }
  return TRUE;
}

/* compensation of the reservation */
static void
undo (SagaRun *run)
{
  ArbTrading *t = run->saga->trading;
  if (run->opened != NULL)
    {
      arb_trading_remove_position (t, run->account, run->opened);
      run->opened = NULL;
    }
  if (run->before != NULL)
    {
      ArbAccount *owner = NULL;
      ArbPositionRow *now = arb_trading_get_position (t, run->before->id, &owner);
      if (now != NULL)
        arb_trading_remove_position (t, run->account, now);
      arb_trading_insert_position (t, run->account, g_steal_pointer (&run->before));
    }
  if (run->account_before != NULL)
    {
      arb_assessment_row_free (run->account->row);
      run->account->row = g_steal_pointer (&run->account_before);
    }
}

/* A batch: every change of one account that queued while its previous batch
 * was committing, reserved one after the other in memory and committed in one
 * store transaction. One transaction per batch keeps the account's rows in
 * the store exactly as in memory, and makes the compensation exact: undo in
 * reverse order. Batches of different accounts are grouped by the store's
 * writer into one database transaction. */
typedef struct {
  ArbSaga    *saga;
  ArbAccount *account;
  GPtrArray  *runs; /* SagaRun, in reservation order */
} Batch;

static void account_kick (ArbSaga *saga, ArbAccount *account);

/* the events are in the outbox now: its relay takes them from there to the
 * sinks (doc/outbox.md) */
static void
publish_events (SagaRun *run)
{
  arb_relay_ledger_committed (run->saga->host->relay, run->events, run->req.correlation_id);
}

static void
batch_done (const GError *error, gpointer data)
{
  Batch *batch = data;
  ArbSaga *saga = batch->saga;
  ArbAccount *account = batch->account;

  if (error != NULL)
    {
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_STORE,
                                         "the ledger could not be written (%s); nothing was changed",
                                         error->message);
      arb_relay_ledger_failed (saga->host->relay);
      for (guint i = batch->runs->len; i > 0; i--)
        undo (g_ptr_array_index (batch->runs, i - 1));
      for (guint i = 0; i < batch->runs->len; i++)
        finish (g_ptr_array_index (batch->runs, i), e);
    }
  else
    for (guint i = 0; i < batch->runs->len; i++)
      {
        /* durable: the answer and the events may leave now */
        SagaRun *run = g_ptr_array_index (batch->runs, i);
        publish_events (run);
        finish (run, NULL);
      }
  g_ptr_array_unref (batch->runs);
  g_free (batch);
  account->busy = FALSE;
  /* a close may have made a target or broken a rule */
  if (error == NULL && saga->host->marker != NULL)
    arb_marker_after_change (saga->host->marker, account);
  account_kick (saga, account);
}

/* runs every change waiting on @account as one batch, unless a batch of it
 * is committing already */
static void
account_kick (ArbSaga *saga, ArbAccount *account)
{
  g_autoptr(ArbStoreTxn) txn = NULL;
  Batch *batch;
  SagaRun *run;

  if (account->busy || g_queue_is_empty (&account->waiting))
    return;
  txn = arb_store_txn_new ();
  batch = g_new0 (Batch, 1);
  batch->saga = saga;
  batch->account = account;
  batch->runs = g_ptr_array_new ();
  while ((run = g_queue_pop_head (&account->waiting)) != NULL)
    {
      GError *error = NULL;
      run->account = account;
      if (!run->prepare (run, account, txn, &error))
        {
          fail (run, error);
          continue;
        }
      for (guint i = 0; i < run->events->len; i++)
        arb_store_txn_insert_outbox (txn, g_ptr_array_index (run->events, i));
      g_ptr_array_add (batch->runs, run);
    }
  if (batch->runs->len == 0)
    {
      g_ptr_array_unref (batch->runs);
      g_free (batch);
      return;
    }
  /* the account row once, as it is after the whole batch */
  arb_store_txn_update_assessment (txn, account->row);
  account->busy = TRUE;
  arb_store_commit_async (saga->store, g_steal_pointer (&txn), batch_done, batch);
}

static void
account_enqueue (ArbSaga *saga, ArbAccount *account, SagaRun *run)
{
  g_queue_push_tail (&account->waiting, run);
  account_kick (saga, account);
}

/* several changes that must go in one batch (a liquidation and the failure) */
static void
account_enqueue_many (ArbSaga *saga, ArbAccount *account, GPtrArray *runs)
{
  for (guint i = 0; i < runs->len; i++)
    g_queue_push_tail (&account->waiting, g_ptr_array_index (runs, i));
  account_kick (saga, account);
}

static ArbPositionRow *
new_position (SagaRun *run, const ArbFill *fill, const char *order_id, gint64 now)
{
  ArbPositionRow *p = g_new0 (ArbPositionRow, 1);
  p->id = arb_uuid_new ();
  p->assessment_id = g_strdup (run->req.assessment_id);
  p->order_id = g_strdup (order_id);
  p->market = g_strdup (run->req.market);
  p->side = run->req.is_buy ? ARB_SIDE_LONG : ARB_SIDE_SHORT;
  p->status = ARB_POSITION_OPEN;
  p->quantity = fill->quantity;
  p->initial_quantity = fill->quantity;
  p->entry_price = fill->price;
  p->margin = fill->margin;
  p->realized_pnl = ARB_DECIMAL_ZERO;
  p->fees = fill->fee;
  p->has_stop_loss = run->req.has_stop_loss;
  p->stop_loss = run->req.stop_loss;
  p->has_take_profit = run->req.has_take_profit;
  p->take_profit = run->req.take_profit;
  p->opened_us = now;
  p->updated_us = now;
  return p;
}

static void
add_event (SagaRun *run, const char *type, gint64 now, void (*fill) (ArbJson *, gpointer), gpointer obj)
{
  ArbJson j;
  arb_json_init (&j, 512);
  fill (&j, obj);
  g_ptr_array_add (run->events, outbox_row (type, run->account->row->id, run->req.correlation_id, now, &j));
}

static void
event_order (ArbJson *j, gpointer o)
{
  arb_json_add_order (j, o);
}

static void
event_trade (ArbJson *j, gpointer t)
{
  arb_json_add_trade (j, t);
}

typedef struct {
  ArbTrading     *trading;
  ArbPositionRow *pos;
} PosCtx;

static void
event_position (ArbJson *j, gpointer c)
{
  PosCtx *ctx = c;
  arb_json_add_position (j, ctx->trading, ctx->pos, FALSE);
}

static gboolean
prepare_order (SagaRun *run, ArbAccount *account, ArbStoreTxn *txn, GError **error_out)
{
  ArbSaga *saga = run->saga;
  ArbTrading *t = saga->trading;
  ArbProgram *program;
  g_autoptr(ArbQuote) quote = NULL;
  ArbFill fill = { 0 };
  ArbAccountValue value;
  ArbDecimal needed;
  GError *error = NULL;
  gint64 now = arb_now_us ();
  ArbOrderRow *order;
  ArbTradeRow *trade;
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE];

  run->account = account;
  if (!step_load_assessment (run, account, &error))
    PREPARE_FAIL (error);
  if (account->row->paused_until_us > arb_now_us ())
    {
      g_autofree char *until = arb_format_time_us (account->row->paused_until_us);
      PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_RISK_LIMIT,
                                 "trading is paused by the daily loss limit until %s", until));
    }
  program = arb_trading_get_program (t, account->row->program);
  if (program == NULL)
    PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_INTERNAL,
                                   "assessment %s names program %s, which the config no longer has",
                                   account->row->id, account->row->program));
  /* step: fresh price */
  if (!arb_trading_quote_for (t, run->req.market, &quote, &error))
    PREPARE_FAIL (error);
  /* step: execution estimate */
  if (!arb_trading_estimate (t, program, run->req.market, quote, run->req.is_buy, run->req.quantity, &fill, &error))
    PREPARE_FAIL (error);
  if (!check_brackets (&run->req, fill.price, &error))
    {
      arb_fill_clear (&fill);
      PREPARE_FAIL (error);
    }
  /* step: balance and margin */
  if (!arb_trading_value (t, account, &value, &error) || !arb_decimal_add (fill.margin, fill.fee, &needed, &error))
    {
      arb_fill_clear (&fill);
      PREPARE_FAIL (retype (error, ARB_TRADING_ERROR_VALIDATION));
    }
  /* the equity, and so every check below, needs a price for every market
   * the account holds: after a start, before the feeds have sent one */
  if (value.unquoted != NULL)
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA,
                           "no quote yet for %s, which the assessment holds: its equity is not known",
                           value.unquoted);
      arb_fill_clear (&fill);
      PREPARE_FAIL (error);
    }
  if (arb_decimal_cmp (needed, value.free_margin) > 0)
    {
      error = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_INSUFFICIENT_BALANCE,
                           "the order needs %s (margin and fee), free margin is %s", arb_decimal_format (needed, a),
                           arb_decimal_format (value.free_margin, b));
      arb_fill_clear (&fill);
      PREPARE_FAIL (error);
    }
  /* step: risk plugins */
  {
    ArbMarketRules rules;
    ArbOrderView view = {
      .market = run->req.market,
      .prediction = g_strcmp0 (arb_market_class (run->req.market), "prediction") == 0,
      .is_buy = run->req.is_buy,
      .quantity = fill.quantity,
      .price = fill.price,
      .notional = fill.notional,
      .fee = fill.fee,
      .margin = fill.margin,
      .has_stop_loss = run->req.has_stop_loss,
      .stop_loss = run->req.stop_loss,
      .has_take_profit = run->req.has_take_profit,
      .take_profit = run->req.take_profit,
    };
    arb_trading_market_rules (t, run->req.market, &rules);
    view.fee_bps = rules.fee_bps;
    view.slippage_bps = rules.slippage_bps;
    if (!arb_risk_check_order (saga->host, t, program, account, &view, &error))
      {
        arb_fill_clear (&fill);
        PREPARE_FAIL (error);
      }
  }

  /* step: reserve in memory */
  run->account_before = arb_assessment_row_copy (account->row);
  order = g_new0 (ArbOrderRow, 1);
  order->id = arb_uuid_new ();
  order->assessment_id = g_strdup (account->row->id);
  order->client_order_id = g_strdup (run->req.client_order_id);
  order->market = g_strdup (run->req.market);
  order->is_buy = run->req.is_buy;
  order->quantity = run->req.quantity;
  order->has_stop_loss = run->req.has_stop_loss;
  order->stop_loss = run->req.stop_loss;
  order->has_take_profit = run->req.has_take_profit;
  order->take_profit = run->req.take_profit;
  order->status = g_strdup ("filled");
  order->correlation_id = g_strdup (run->req.correlation_id);
  order->created_us = now;

  run->opened = new_position (run, &fill, order->id, now);
  arb_trading_insert_position (t, account, run->opened);

  trade = g_new0 (ArbTradeRow, 1);
  trade->id = arb_uuid_new ();
  trade->seq = arb_trading_next_trade_seq (t);
  trade->assessment_id = g_strdup (account->row->id);
  trade->order_id = g_strdup (order->id);
  trade->position_id = g_strdup (run->opened->id);
  trade->market = g_strdup (run->req.market);
  trade->side = run->opened->side;
  trade->is_buy = run->req.is_buy;
  trade->reason = ARB_TRADE_OPEN;
  trade->quantity = fill.quantity;
  trade->price = fill.price;
  trade->fee = fill.fee;
  trade->realized_pnl = ARB_DECIMAL_ZERO;
  arb_decimal_neg (fill.fee, &trade->cash_effect, NULL);
  trade->quote_source = g_steal_pointer (&fill.quote_source);
  trade->quote_time_us = fill.quote_time_us;
  trade->executed_us = now;

  if (!arb_decimal_sub (account->row->balance, fill.fee, &account->row->balance, &error))
    {
      undo (run);
      arb_order_row_free (order);
      arb_trade_row_free (trade);
      PREPARE_FAIL (error);
    }
  account->row->updated_us = now;
  account->row->version++;
  arb_trading_note_fill (t, account, now);

  run->result = g_new0 (ArbSagaResult, 1);
  run->result->order = order;
  run->result->trade = trade;
  run->result->position = arb_position_row_copy (run->opened);
  run->result->assessment = arb_assessment_row_copy (account->row);

  /* step: commit, with the events in the same transaction */
  arb_store_txn_insert_order (txn, order);
  arb_store_txn_insert_trade (txn, trade);
  arb_store_txn_upsert_position (txn, run->opened);
  run->events = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);
  add_event (run, "order.filled", now, event_order, order);
  add_event (run, "trade.executed", now, event_trade, trade);
  {
    PosCtx ctx = { t, run->opened };
    add_event (run, "position.opened", now, event_position, &ctx);
  }
  if (run->idem != NULL && run->encode != NULL)
    {
      g_free (run->idem->body);
      run->idem->body = run->encode (run->result, &run->idem->status, run->data);
      run->idem->created_us = now;
      /* a key older than 24 h may be used again: its old row goes first
       * (one primary-key probe; the rest expire in the API's housekeeping) */
      arb_store_txn_expire_idempotency_key (txn, run->idem->user, run->idem->key,
                                            now - 24 * G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC);
      arb_store_txn_insert_idempotency (txn, run->idem);
    }
  return TRUE;
}

void
arb_saga_place_order (ArbSaga *saga, const ArbOrderRequest *req, ArbIdempotencyRow *idempotency,
                      ArbSagaEncodeFunc encode, ArbSagaDoneFunc done, gpointer data)
{
  SagaRun *run = g_new0 (SagaRun, 1);
  ArbAccount *account;

  run->saga = saga;
  run->req.user = g_strdup (req->user);
  run->req.assessment_id = g_strdup (req->assessment_id);
  run->req.market = g_strdup (req->market);
  run->req.is_buy = req->is_buy;
  run->req.quantity = req->quantity;
  run->req.has_stop_loss = req->has_stop_loss;
  run->req.stop_loss = req->stop_loss;
  run->req.has_take_profit = req->has_take_profit;
  run->req.take_profit = req->take_profit;
  run->req.client_order_id = g_strdup (req->client_order_id);
  run->req.correlation_id = g_strdup (req->correlation_id);
  run->idem = idempotency;
  run->encode = encode;
  run->done = done;
  run->data = data;

  /* step: the assessment, which must be the user's own: another user's is
   * answered exactly like one that does not exist */
  account = arb_trading_get_account (saga->trading, req->assessment_id);
  if (account == NULL || !g_str_equal (account->row->owner, req->user))
    return fail (run, g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_NOT_FOUND, "no assessment %s",
                                   req->assessment_id));
  run->prepare = prepare_order;
  account_enqueue (saga, account, run);
}

static gboolean
prepare_close (SagaRun *run, ArbAccount *account, ArbStoreTxn *txn, GError **error_out)
{
  gboolean at_entry = FALSE;
  ArbTrading *t = run->saga->trading;
  ArbPositionRow *pos = arb_trading_get_position (t, run->position_id, NULL);
  ArbProgram *program;
  g_autoptr(ArbQuote) quote = NULL;
  ArbFill fill = { 0 };
  ArbDecimal qty, pnl, released, cash;
  GError *error = NULL;
  gint64 now = arb_now_us ();
  ArbTradeRow *trade;
  char a[ARB_DECIMAL_BUFSIZE], b[ARB_DECIMAL_BUFSIZE];
  gboolean full;

  run->account = account;
  if (pos == NULL)
    PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_NOT_FOUND,
                                   "no open position %s (it may have been closed meanwhile)", run->position_id));
  if (!step_load_assessment (run, account, &error))
    PREPARE_FAIL (error);
  program = arb_trading_get_program (t, account->row->program);
  qty = run->has_close_qty ? run->close_qty : pos->quantity;
  if (arb_decimal_cmp (qty, pos->quantity) > 0)
    PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                                   "quantity %s is more than the open %s", arb_decimal_format (qty, a),
                                   arb_decimal_format (pos->quantity, b)));
  full = arb_decimal_cmp (qty, pos->quantity) == 0;
  if (run->settle)
    {
      /* the market decided: every share pays the settlement price, no fee */
      fill.price = run->settle_price;
      fill.quantity = qty;
      fill.fee = ARB_DECIMAL_ZERO;
      fill.quote_source = g_strdup ("settlement");
      fill.quote_time_us = now;
    }
  else if (run->system)
    {
      /* a rule closes at the market as it is: the trigger was the quote */
      quote = arb_price_book_get (run->saga->host->book, pos->market);
      if (quote == NULL && run->close_reason == ARB_TRADE_LIQUIDATION)
        {
          /* an assessment that ends leaves nothing open: a market that never
           * had a price closes at its entry price, no gain, no fee */
          at_entry = TRUE;
          fill.price = pos->entry_price;
          fill.quantity = qty;
          fill.fee = ARB_DECIMAL_ZERO;
          fill.quote_source = g_strdup ("no quote: closed at entry");
          fill.quote_time_us = now;
        }
      else if (quote == NULL)
        PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA, "no quote for %s to close at",
                                   pos->market));
    }
  else if (!arb_trading_quote_for (t, pos->market, &quote, &error))
    PREPARE_FAIL (error);
  /* closing a long sells at the bid; closing a short buys at the ask */
  if (!run->settle && !at_entry
      && !arb_trading_estimate (t, program, pos->market, quote, pos->side == ARB_SIDE_SHORT, qty, &fill, &error))
    PREPARE_FAIL (error);
  if (!arb_position_pnl (pos, fill.price, qty, &pnl, &error) || !arb_decimal_sub (pnl, fill.fee, &cash, &error)
      || !arb_decimal_mul_div (pos->margin, qty, pos->quantity, ARB_ROUND_HALF_EVEN, &released, &error))
    {
      arb_fill_clear (&fill);
      PREPARE_FAIL (retype (error, ARB_TRADING_ERROR_VALIDATION));
    }
  if (full)
    released = pos->margin;

  /* reserve: remember the position and the account as they were */
  run->before = arb_position_row_copy (pos);
  run->account_before = arb_assessment_row_copy (account->row);
  trade = g_new0 (ArbTradeRow, 1);
  trade->id = arb_uuid_new ();
  trade->seq = arb_trading_next_trade_seq (t);
  trade->assessment_id = g_strdup (account->row->id);
  trade->position_id = g_strdup (pos->id);
  trade->market = g_strdup (pos->market);
  trade->side = pos->side;
  trade->is_buy = pos->side == ARB_SIDE_SHORT;
  trade->reason = run->close_reason;
  trade->quantity = qty;
  trade->price = fill.price;
  trade->fee = fill.fee;
  trade->realized_pnl = pnl;
  trade->cash_effect = cash;
  trade->quote_source = g_steal_pointer (&fill.quote_source);
  trade->quote_time_us = fill.quote_time_us;
  trade->executed_us = now;

  /* the account's sums follow the position through its change */
  arb_trading_exposure_add (t, account, pos, -1);
  if (!arb_decimal_add (account->row->balance, cash, &account->row->balance, &error)
      || !arb_decimal_sub (pos->quantity, qty, &pos->quantity, &error)
      || !arb_decimal_sub (pos->margin, released, &pos->margin, &error)
      || !arb_decimal_add (pos->realized_pnl, pnl, &pos->realized_pnl, &error)
      || !arb_decimal_add (pos->fees, fill.fee, &pos->fees, &error))
    {
      arb_trade_row_free (trade);
      arb_trading_exposure_add (t, account, pos, +1);
      undo (run);
      PREPARE_FAIL (retype (error, ARB_TRADING_ERROR_VALIDATION));
    }
  arb_trading_exposure_add (t, account, pos, +1);
  pos->updated_us = now;
  if (full)
    {
      pos->status = ARB_POSITION_CLOSED;
      pos->closed_us = now;
      g_free (pos->close_reason);
      pos->close_reason = g_strdup (arb_trade_reason_to_string (run->close_reason));
    }
  account->row->updated_us = now;
  account->row->version++;
  arb_trading_note_fill (t, account, now);

  run->result = g_new0 (ArbSagaResult, 1);
  run->result->trade = trade;
  run->result->position = arb_position_row_copy (pos);
  run->result->assessment = arb_assessment_row_copy (account->row);

  arb_store_txn_insert_trade (txn, trade);
  arb_store_txn_upsert_position (txn, pos);
  run->events = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);
  add_event (run, "trade.executed", now, event_trade, trade);
  if (full)
    {
      PosCtx ctx = { t, pos };
      add_event (run, run->settle ? "position.settled" : "position.closed", now, event_position, &ctx);
      /* a closed position leaves the live state; the store keeps it */
      arb_trading_remove_position (t, account, pos);
    }
  return TRUE;
}

void
arb_saga_close_position (ArbSaga *saga, const char *user, const char *position_id, const ArbDecimal *quantity,
                         const char *correlation_id, ArbSagaDoneFunc done, gpointer data)
{
  SagaRun *run = g_new0 (SagaRun, 1);
  ArbAccount *account = NULL;
  ArbPositionRow *pos;

  run->saga = saga;
  run->done = done;
  run->data = data;
  run->position_id = g_strdup (position_id);
  run->close_reason = ARB_TRADE_CLOSE;
  run->has_close_qty = quantity != NULL;
  if (quantity != NULL)
    run->close_qty = *quantity;
  run->req.correlation_id = g_strdup (correlation_id);
  pos = arb_trading_get_position (saga->trading, position_id, &account);
  if (pos == NULL || account == NULL || !g_str_equal (account->row->owner, user))
    return fail (run, g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_NOT_FOUND, "no open position %s",
                                   position_id));
  run->prepare = prepare_close;
  account_enqueue (saga, account, run);
}

static void
create_done (const GError *error, gpointer data)
{
  SagaRun *run = data;
  if (error != NULL)
    {
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_STORE,
                                         "the assessment could not be written (%s)", error->message);
      ArbSagaDoneFunc done = run->done;
      gpointer d = run->data;
      arb_relay_ledger_failed (run->saga->host->relay);
      /* nothing was in memory yet */
      saga_run_free (run);
      done (NULL, e, d);
      return;
    }
  arb_trading_add_account (run->saga->trading, arb_assessment_row_copy (run->result->assessment));
  publish_events (run);
  run->done (run->result, NULL, run->data);
  saga_run_free (run);
}

void
arb_saga_create_assessment (ArbSaga *saga, const char *owner, const char *program_name, const char *correlation_id,
                            ArbSagaDoneFunc done, gpointer data)
{
  ArbProgram *program = arb_trading_get_program (saga->trading, program_name);
  SagaRun *run;
  ArbAssessmentRow *row;
  g_autoptr(ArbStoreTxn) txn = NULL;
  gint64 now = arb_now_us ();
  ArbJson j;

  if (program == NULL)
    {
      g_auto(GStrv) names = arb_trading_program_names (saga->trading);
      g_autofree char *list = g_strjoinv (", ", names);
      g_autoptr(GError) e = g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                                         "program \"%s\" is not configured (programs: %s)", program_name,
                                         *list != '\0' ? list : "none");
      done (NULL, e, data);
      return;
    }
  run = g_new0 (SagaRun, 1);
  run->saga = saga;
  run->done = done;
  run->data = data;
  run->req.correlation_id = g_strdup (correlation_id);
  row = g_new0 (ArbAssessmentRow, 1);
  row->id = arb_uuid_new ();
  row->owner = g_strdup (owner);
  row->program = g_strdup (program_name);
  row->status = ARB_ASSESSMENT_ACTIVE;
  row->starting_balance = program->starting_balance;
  row->balance = program->starting_balance;
  row->equity_hwm = program->starting_balance;
  row->day_start_equity = program->starting_balance;
  row->day_start_balance = program->starting_balance;
  row->balance_hwm = program->starting_balance;
  row->day_high_equity = program->starting_balance;
  row->eod_high_balance = program->starting_balance;
  row->eod_high_equity = program->starting_balance;
  row->day_start_us = now;
  row->created_us = now;
  row->updated_us = now;
  row->version = 1;
  run->result = g_new0 (ArbSagaResult, 1);
  run->result->assessment = row;

  txn = arb_store_txn_new ();
  arb_store_txn_insert_assessment (txn, row);
  run->events = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);
  {
    ArbAccount tmp = { .row = row };
    tmp.positions = g_ptr_array_new ();
    tmp.exposure = g_hash_table_new (g_str_hash, g_str_equal);
    arb_json_init (&j, 768);
    arb_json_add_assessment (&j, saga->trading, &tmp);
    g_ptr_array_unref (tmp.positions);
    g_hash_table_unref (tmp.exposure);
    g_ptr_array_add (run->events, outbox_row ("assessment.created", row->id, correlation_id, now, &j));
  }
  for (guint i = 0; i < run->events->len; i++)
    arb_store_txn_insert_outbox (txn, g_ptr_array_index (run->events, i));
  arb_store_commit_async (saga->store, g_steal_pointer (&txn), create_done, run);
}

/* ------------------------------------------------------------------------ */
/* Changes the host makes by rule                                           */

static void
system_done (ArbSagaResult *result, const GError *error, gpointer data)
{
  if (error != NULL)
    arb_log_for (NULL, "saga", G_LOG_LEVEL_WARNING, error->message);
}

static SagaRun *
system_close_run (ArbSaga *saga, const char *position_id, ArbTradeReason reason, const char *correlation_id)
{
  SagaRun *run = g_new0 (SagaRun, 1);
  run->saga = saga;
  run->done = system_done;
  run->system = TRUE;
  run->close_reason = reason;
  run->position_id = g_strdup (position_id);
  run->req.correlation_id = g_strdup (correlation_id);
  run->prepare = prepare_close;
  return run;
}

void
arb_saga_close_by_rule (ArbSaga *saga, ArbAccount *account, const char *position_id, ArbTradeReason reason,
                        const char *correlation_id)
{
  account_enqueue (saga, account, system_close_run (saga, position_id, reason, correlation_id));
}

static void
event_status (ArbJson *j, gpointer data)
{
  SagaRun *run = data;
  ArbAssessmentRow *r = run->account->row;
  ArbAccountValue v;
  g_autoptr(GError) error = NULL;

  arb_json_begin_object (j);
  arb_json_kv_string (j, "assessmentId", r->id);
  arb_json_kv_string (j, "status", arb_assessment_status_to_string (r->status));
  arb_json_kv_string (j, "reason", run->status_reason);
  arb_json_kv_time (j, "time", r->updated_us);
  if (run->new_status == ARB_ASSESSMENT_ACTIVE)
    arb_json_kv_time (j, "pausedUntil", run->pause_until_us);
  arb_json_kv_decimal (j, "balance", r->balance);
  if (arb_trading_value (run->saga->trading, run->account, &v, &error))
    arb_json_kv_decimal (j, "equity", v.equity);
  arb_json_key (j, "evidence");
  arb_json_raw (j, run->evidence_json != NULL ? run->evidence_json : "{}");
  arb_json_end_object (j);
}

static gboolean
prepare_status (SagaRun *run, ArbAccount *account, ArbStoreTxn *txn, GError **error_out)
{
  gint64 now = arb_now_us ();
  ArbAssessmentRow *r = account->row;

  if (r->status != ARB_ASSESSMENT_ACTIVE)
    PREPARE_FAIL (g_error_new (ARB_TRADING_ERROR, ARB_TRADING_ERROR_ASSESSMENT_NOT_ACTIVE,
                               "assessment %s is %s already", r->id, arb_assessment_status_to_string (r->status)));
  run->account_before = arb_assessment_row_copy (r);
  if (run->new_status == ARB_ASSESSMENT_ACTIVE)
    /* a soft limit: trading pauses, the assessment goes on */
    r->paused_until_us = run->pause_until_us;
  else
    {
      r->status = run->new_status;
      g_free (r->status_reason);
      r->status_reason = g_strdup (run->status_reason);
      r->status_time_us = now;
    }
  r->updated_us = now;
  r->version++;
  run->result = g_new0 (ArbSagaResult, 1);
  run->result->assessment = arb_assessment_row_copy (r);
  run->events = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);
  add_event (run,
             run->new_status == ARB_ASSESSMENT_PASSED   ? "assessment.passed"
             : run->new_status == ARB_ASSESSMENT_FAILED ? "assessment.failed"
                                                        : "assessment.paused",
             now, event_status, run);
  return TRUE;
}

static void
status_by_rule (ArbSaga *saga, ArbAccount *account, ArbAssessmentStatus status, gint64 pause_until_us,
                const char *reason, const char *evidence_json, gboolean liquidate, const char *correlation_id);

void
arb_saga_set_status_by_rule (ArbSaga *saga, ArbAccount *account, ArbAssessmentStatus status, const char *reason,
                             const char *evidence_json, gboolean liquidate, const char *correlation_id)
{
  status_by_rule (saga, account, status, 0, reason, evidence_json, liquidate, correlation_id);
}

void
arb_saga_pause_by_rule (ArbSaga *saga, ArbAccount *account, gint64 until_us, const char *reason,
                        const char *evidence_json, const char *correlation_id)
{
  status_by_rule (saga, account, ARB_ASSESSMENT_ACTIVE, until_us, reason, evidence_json, TRUE, correlation_id);
}

static void
status_by_rule (ArbSaga *saga, ArbAccount *account, ArbAssessmentStatus status, gint64 pause_until_us,
                const char *reason, const char *evidence_json, gboolean liquidate, const char *correlation_id)
{
  g_autoptr(GPtrArray) runs = g_ptr_array_new ();
  SagaRun *run;

  /* every open position closes at the market in the same batch, before the
   * status changes */
  if (liquidate)
    for (guint i = 0; i < account->positions->len; i++)
      {
        ArbPositionRow *p = g_ptr_array_index (account->positions, i);
        g_ptr_array_add (runs, system_close_run (saga, p->id, ARB_TRADE_LIQUIDATION, correlation_id));
      }
  run = g_new0 (SagaRun, 1);
  run->saga = saga;
  run->done = system_done;
  run->system = TRUE;
  run->new_status = status;
  run->pause_until_us = pause_until_us;
  run->status_reason = g_strdup (reason);
  run->evidence_json = g_strdup (evidence_json);
  run->req.correlation_id = g_strdup (correlation_id);
  run->prepare = prepare_status;
  g_ptr_array_add (runs, run);
  account_enqueue_many (saga, account, runs);
}

static gboolean
prepare_persist (SagaRun *run, ArbAccount *account, ArbStoreTxn *txn, GError **error_out)
{
  /* nothing to add: the batch writes the account row as it is */
  run->events = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_outbox_row_free);
  return TRUE;
}

void
arb_saga_persist_account (ArbSaga *saga, ArbAccount *account)
{
  SagaRun *run = g_new0 (SagaRun, 1);
  run->saga = saga;
  run->done = system_done;
  run->system = TRUE;
  run->prepare = prepare_persist;
  account_enqueue (saga, account, run);
}

void
arb_saga_settle (ArbSaga *saga, ArbAccount *account, const char *market, ArbMarketState state,
                 const ArbDecimal *settlement, const char *correlation_id)
{
  ArbExposure *e = g_hash_table_lookup (account->exposure, market);
  g_autoptr(GPtrArray) runs = g_ptr_array_new ();

  if (e == NULL)
    return;
  for (guint i = 0; i < e->positions->len; i++)
    {
      ArbPositionRow *p = g_ptr_array_index (e->positions, i);
      SagaRun *run = system_close_run (saga, p->id, ARB_TRADE_SETTLEMENT, correlation_id);
      run->settle = TRUE;
      /* resolved: 1, 0, 0.5 or a scalar value a share; voided: back at cost */
      run->settle_price = state == ARB_MARKET_RESOLVED && settlement != NULL ? *settlement : p->entry_price;
      g_ptr_array_add (runs, run);
    }
  account_enqueue_many (saga, account, runs);
}
