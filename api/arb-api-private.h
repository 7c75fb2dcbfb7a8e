/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-jwt-private.h"
#include "arb-saga-private.h"

G_BEGIN_DECLS

/* The REST API (doc/api.md): routes, JWT authentication, JSON requests and
 * answers, errors, idempotency. Runs on the host's main context; an answer
 * that waits on the store pauses its message. */

typedef struct _ArbApi ArbApi;

ArbApi  *arb_api_new (ArbHost *host, ArbTrading *trading, ArbSaga *saga, ArbStore *store, ArbJwtVerifier *verifier);
void     arb_api_free (ArbApi *api);
/* restores an Idempotency-Key answer loaded from the store (takes it) */
void     arb_api_restore_idempotency (ArbApi *api, ArbIdempotencyRow *row);
/* TRUE when it answered (the path is the API's) */
gboolean arb_api_handle (ArbApi *api, gpointer msg, const char *path, const char *correlation_id);
/* requests waiting on the saga or the store */
guint    arb_api_in_flight (ArbApi *api);

/* decimals in requests: a JSON string is read exactly; a JSON number through
 * its shortest round-trip text, refused when that has more than 15
 * significant digits (a double cannot carry them: send a string) */
gboolean arb_api_decimal_from_node (gpointer json_node, const char *field, ArbDecimal *out, GError **error);

G_END_DECLS
