/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-json-private.h"
#include "arb-store-private.h"
#include "arb-trading-private.h"

G_BEGIN_DECLS

/* The order saga. Each step is a function with a typed failure
 * (ARB_TRADING_ERROR); every step that changed state has its compensation.
 *
 *   authenticate/authorise (REST layer) → validate → load the assessment
 *   (active) → fresh price → execution estimate → balance and margin → risk
 *   plugins → reserve in memory → commit to the store → answer
 *
 * The answer callback runs only after the store committed, or after the
 * reservation was undone. */

typedef struct {
  char      *user;           /* the JWT subject placing it */
  char      *assessment_id;
  char      *market;
  gboolean   is_buy;
  ArbDecimal quantity;
  gboolean   has_stop_loss;
  ArbDecimal stop_loss;
  gboolean   has_take_profit;
  ArbDecimal take_profit;
  char      *client_order_id; /* nullable */
  char      *correlation_id;  /* nullable */
} ArbOrderRequest;

void arb_order_request_clear (ArbOrderRequest *req);

/* what a successful saga made; rows owned by the result */
typedef struct {
  ArbOrderRow    *order;    /* nullable: closes have none */
  ArbTradeRow    *trade;
  ArbPositionRow *position; /* after the change */
  ArbAssessmentRow *assessment; /* after the change */
} ArbSagaResult;

void arb_saga_result_free (ArbSagaResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbSagaResult, arb_saga_result_free)

/* @idempotency (nullable) is committed in the same transaction; its status
 * and body are filled in by @encode before the commit */
typedef char *(*ArbSagaEncodeFunc) (ArbSagaResult *result, guint *status, gpointer data);
typedef void  (*ArbSagaDoneFunc) (ArbSagaResult *result, const GError *error, gpointer data);

typedef struct _ArbSaga ArbSaga;

ArbSaga *arb_saga_new (ArbHost *host, ArbTrading *trading, ArbStore *store);
void     arb_saga_free (ArbSaga *saga);

/* POST /orders */
void arb_saga_place_order (ArbSaga *saga, const ArbOrderRequest *req, ArbIdempotencyRow *idempotency,
                           ArbSagaEncodeFunc encode, ArbSagaDoneFunc done, gpointer data);
/* POST /positions/{id}/close; @quantity NULL closes it all */
void arb_saga_close_position (ArbSaga *saga, const char *user, const char *position_id, const ArbDecimal *quantity,
                              const char *correlation_id, ArbSagaDoneFunc done, gpointer data);
/* POST /assessments */
void arb_saga_create_assessment (ArbSaga *saga, const char *owner, const char *program, const char *correlation_id,
                                 ArbSagaDoneFunc done, gpointer data);

/* a stop-loss or take-profit hit: close @position_id at the market */
void arb_saga_close_by_rule (ArbSaga *saga, ArbAccount *account, const char *position_id, ArbTradeReason reason,
                             const char *correlation_id);
/* pass or fail an assessment; @liquidate closes every open position at the
 * market first, in the same transaction; @evidence_json is an object */
void arb_saga_set_status_by_rule (ArbSaga *saga, ArbAccount *account, ArbAssessmentStatus status, const char *reason,
                                  const char *evidence_json, gboolean liquidate, const char *correlation_id);

/* a soft daily limit: every position closes at the market and no order is
 * taken before @until_us; the assessment stays active */
void arb_saga_pause_by_rule (ArbSaga *saga, ArbAccount *account, gint64 until_us, const char *reason,
                             const char *evidence_json, const char *correlation_id);

/* a prediction market resolved or was voided: every open position of
 * @account in @market settles, as a trade with reason settlement */
void arb_saga_settle (ArbSaga *saga, ArbAccount *account, const char *market, ArbMarketState state,
                      const ArbDecimal *settlement, const char *correlation_id);

/* writes the account row as it is in memory (marks and day anchors) */
void arb_saga_persist_account (ArbSaga *saga, ArbAccount *account);

/* the JSON of the domain objects, as the REST API and the events show them */
char *arb_json_assessment (ArbTrading *trading, ArbAccount *account);
void  arb_json_add_assessment (ArbJson *j, ArbTrading *trading, ArbAccount *account);
void  arb_json_add_assessment_with_rules (ArbJson *j, ArbTrading *trading, ArbAccount *account, GArray *rules);
void  arb_json_add_position (ArbJson *j, ArbTrading *trading, const ArbPositionRow *pos, gboolean with_mark);
void  arb_json_add_trade (ArbJson *j, const ArbTradeRow *trade);
/* (element-type ArbRuleReport) the rules' standing, the least room binding */
void  arb_json_add_rules (ArbJson *j, GArray *reports);
void  arb_json_add_order (ArbJson *j, const ArbOrderRow *order);

G_END_DECLS
