/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-host-private.h"

G_BEGIN_DECLS

/* The outbox relay (doc/outbox.md): ledger events reach the sinks from the
 * store's outbox, never from memory. Per sink that subscribes to ledger
 * events, a cursor walks the outbox by pos and hands the rows the sink has
 * no delivery row for to its queue (arb-relay.c); an acknowledged event is
 * marked delivered for that sink (outbox_delivery, batched into store
 * transactions); a failed one rewinds the cursor to the first row not
 * acknowledged, and the rows from there are delivered again after a
 * backoff. Delivered rows are pruned after [runtime] outbox_retention.
 *
 * Everything runs on the host's main context, except arb_outbox_on_ack(),
 * which sinks call from any thread. */

typedef struct _ArbOutbox ArbOutbox;

/* needs host->store open and host->runtime */
ArbOutbox *arb_outbox_new (ArbHost *host);
void       arb_outbox_free (ArbOutbox *outbox);
/* the prune timer and the per-sink bookkeeping */
void       arb_outbox_start (ArbOutbox *outbox);
/* Takes the acknowledgements that arrived, writes the delivery rows not yet
 * written (blocking, on the store's writer) and stops reading. Idempotent;
 * call it after the sinks stopped and before the store is freed. */
void       arb_outbox_stop (ArbOutbox *outbox);

/* @inst, a sink, got its queue: if it subscribes to ledger events, it gets
 * every outbox row it has no delivery row for, oldest first, then the new
 * ones as they commit */
void       arb_outbox_attach (ArbOutbox *outbox, ArbInstance *inst);
/* ledger events committed (after the store's COMMIT): the cursors read on */
void       arb_outbox_notify (ArbOutbox *outbox);
/* a sink acknowledged a ledger event; any thread, never blocks for long */
void       arb_outbox_on_ack (ArbOutbox *outbox, ArbInstance *inst, ArbEvent *event, const GError *error);

/* per sink, for tests and /ready: rows not yet delivered (as last counted)
 * and the age of the oldest, in seconds; FALSE when @inst has no cursor */
gboolean   arb_outbox_get_backlog (ArbOutbox *outbox, ArbInstance *inst, gint64 *pending, gdouble *lag_seconds);

/* The glue in arb-relay.c. The relay owns the outbox once set. */
void       arb_relay_set_outbox (ArbRelay *relay, ArbOutbox *outbox);
ArbOutbox *arb_relay_get_outbox (ArbRelay *relay);
/* the saga, after a commit that wrote @rows (ArbOutboxRow) to the outbox:
 * with an outbox, its cursors read them from the store; without one (a
 * host that never started the store), they are published at once */
void       arb_relay_ledger_committed (ArbRelay *relay, GPtrArray *rows, const char *correlation_id);
/* a ledger transaction failed: with several ledger writers, rows of other
 * groups held back behind it (arb_store_outbox_visible_pos) may be read now */
void       arb_relay_ledger_failed (ArbRelay *relay);
/* hands a ledger event from the outbox to @inst's queue; never dropped (the
 * outbox bounds what is outstanding). FALSE when the queue is closing. */
gboolean   arb_relay_push_ledger (ArbRelay *relay, ArbInstance *inst, ArbEvent *event);
/* takes back the outbox events of @inst's queue that were not handed to the
 * sink yet (after a failure they would only fail too); (transfer full)
 * (element-type ArbEvent) */
GPtrArray *arb_relay_take_back_ledger (ArbRelay *relay, ArbInstance *inst);

G_END_DECLS
