/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-ledger-private.h"

G_BEGIN_DECLS

/* The durable store: one interface, two backends (SQLite, PostgreSQL). All I/O
 * happens on the store's own threads; the main loop never waits on it.
 *
 * Writes: a transaction (ArbStoreTxn) is a list of row operations built on the
 * main thread and handed over with arb_store_commit_async(). A writer thread
 * takes every transaction queued at that moment and applies them in ONE
 * database transaction (group commit), each inside a savepoint so that one
 * failing transaction fails alone. The callback runs on the main context of
 * the caller (captured at commit time) after the database COMMIT returned —
 * durable — or with an error. PostgreSQL serialization failures (40001) and
 * deadlocks (40P01) retry the whole group a few times.
 *
 * Reads: the load at start is synchronous (before the main loop runs); trade
 * history reads go to a reader thread with its own connection. */

#define ARB_STORE_ERROR (arb_store_error_quark ())
typedef enum {
  ARB_STORE_ERROR_UNAVAILABLE, /* cannot reach or write the database: 503 */
  ARB_STORE_ERROR_CONFLICT,    /* a constraint refused the transaction */
  ARB_STORE_ERROR_MIGRATION,   /* the schema could not be brought up to date */
  ARB_STORE_ERROR_URI,         /* store= is not a known form */
  ARB_STORE_ERROR_FAILED,
} ArbStoreError;
GQuark arb_store_error_quark (void);

typedef struct _ArbStore    ArbStore;
typedef struct _ArbStoreTxn ArbStoreTxn;

/* "sqlite:PATH" (relative to @base_dir) or "postgresql://user@host:port/db"
 * (also "postgres://"); applies the migrations in @migrations_dir
 * (data/migrations: sqlite/NNN_name.sql and postgresql/NNN_name.sql) */
ArbStore   *arb_store_open (const char *uri, const char *base_dir, const char *migrations_dir, GError **error);
/* the same, with @ledger_writers connections committing the ledger (1 to 4;
 * SQLite takes 1): more commit in parallel, at the price of smaller groups
 * (doc/store.md, "Writers") */
ArbStore   *arb_store_open_full (const char *uri, const char *base_dir, const char *migrations_dir,
                                 guint ledger_writers, GError **error);
void        arb_store_free (ArbStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbStore, arb_store_free)
/* "sqlite" or "postgresql" */
const char *arb_store_backend (ArbStore *store);
/* the schema version after migrations */
int         arb_store_schema_version (ArbStore *store);

/* Synchronous, at start. Ownership of the rows passes to the callbacks. */
typedef struct {
  void (*assessment) (ArbAssessmentRow *row, gpointer data);
  void (*position) (ArbPositionRow *row, gpointer data);       /* open positions only */
  void (*idempotency) (ArbIdempotencyRow *row, gpointer data); /* younger than the cut-off */
  /* the highest trade seq, so that new trades continue from it */
  void (*max_trade_seq) (gint64 seq, gpointer data);
} ArbStoreLoadFuncs;
gboolean arb_store_load (ArbStore *store, const ArbStoreLoadFuncs *funcs, gint64 idempotency_since_us,
                         gpointer data, GError **error);

/* A transaction: the rows are copied in, the caller keeps its own. */
ArbStoreTxn *arb_store_txn_new (void);
void         arb_store_txn_free (ArbStoreTxn *txn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbStoreTxn, arb_store_txn_free)
void arb_store_txn_insert_assessment (ArbStoreTxn *txn, const ArbAssessmentRow *row);
void arb_store_txn_update_assessment (ArbStoreTxn *txn, const ArbAssessmentRow *row); /* every mutable column */
void arb_store_txn_insert_order (ArbStoreTxn *txn, const ArbOrderRow *row);
void arb_store_txn_insert_trade (ArbStoreTxn *txn, const ArbTradeRow *row);          /* seq set by the caller */
void arb_store_txn_upsert_position (ArbStoreTxn *txn, const ArbPositionRow *row);
void arb_store_txn_insert_outbox (ArbStoreTxn *txn, const ArbOutboxRow *row);
void arb_store_txn_insert_idempotency (ArbStoreTxn *txn, const ArbIdempotencyRow *row);
guint arb_store_txn_length (ArbStoreTxn *txn);

typedef void (*ArbStoreDoneFunc) (const GError *error, gpointer data);
/* takes @txn; @done runs on the thread-default main context of the caller */
void arb_store_commit_async (ArbStore *store, ArbStoreTxn *txn, ArbStoreDoneFunc done, gpointer data);
/* the same, blocking: for tools and tests */
gboolean arb_store_commit_sync (ArbStore *store, ArbStoreTxn *txn, GError **error);

/* Trade history, newest first, keyset-paginated by seq: trades with
 * seq < @before_seq (0: from the newest). (element-type ArbTradeRow)
 * The async callback borrows @trades (NULL on error): g_ptr_array_ref() it
 * to keep it. */
typedef void (*ArbStoreTradesFunc) (GPtrArray *trades, const GError *error, gpointer data);
void       arb_store_list_trades_async (ArbStore *store, const char *assessment_id, gint64 before_seq, guint limit,
                                        ArbStoreTradesFunc done, gpointer data);
GPtrArray *arb_store_list_trades_sync (ArbStore *store, const char *assessment_id, gint64 before_seq, guint limit,
                                       GError **error);

/* where a page of closed positions starts: after this one, in their order
 * (closed_at, then id, both descending) */
typedef struct {
  gint64      closed_us;
  const char *id;
} ArbPositionCursor;

/* closed positions of one assessment, newest first (open ones are in
 * memory), from after @after (nullable: the newest) */
GPtrArray *arb_store_list_closed_positions_sync (ArbStore *store, const char *assessment_id,
                                                 const ArbPositionCursor *after, guint limit, GError **error);

/* outbox: the undelivered rows, oldest first (for the relay, issue 6) */
GPtrArray *arb_store_outbox_pending_sync (ArbStore *store, guint limit, GError **error);

/* ---- added with the implementation (doc/store.md) ---- */

/* closed positions on a reader thread, like the trades: the callback runs
 * on the caller's thread-default context and borrows @rows (NULL on error).
 * (element-type ArbPositionRow) */
typedef void (*ArbStoreRowsFunc) (GPtrArray *rows, const GError *error, gpointer data);
void arb_store_list_closed_positions_async (ArbStore *store, const char *assessment_id,
                                            const ArbPositionCursor *after, guint limit, ArbStoreRowsFunc done,
                                            gpointer data);

/* an assessment's status changes and breaches with their evidence, oldest
 * first, on the reader thread. (element-type ArbOutboxRow) */
void arb_store_list_assessment_events_async (ArbStore *store, const char *assessment_id, guint limit,
                                             ArbStoreRowsFunc done, gpointer data);

/* where the writer reports each group (arb_store_group_duration_seconds,
 * arb_store_queue_wait_seconds, arb_store_groups_total, arb_store_txns_total,
 * arb_store_txns_failed_total); @metrics must outlive the store */
typedef struct _ArbMetrics ArbMetrics;
void arb_store_set_metrics (ArbStore *store, ArbMetrics *metrics);

/* the URI for messages and logs: the password, if any, is "***" */
const char *arb_store_display_uri (ArbStore *store);

/* deletes every idempotency row created before @before_us: housekeeping,
 * in a transaction of its own now and then (an index range over
 * created_at, which may be long after a day of orders) */
void arb_store_txn_expire_idempotency (ArbStoreTxn *txn, gint64 before_us);
/* deletes the row of @user's @key if it was created before @before_us, so
 * that the key can be used again once its window has passed: a primary-key
 * probe, meant to go into the transaction that inserts the key again */
void arb_store_txn_expire_idempotency_key (ArbStoreTxn *txn, const char *user, const char *key, gint64 before_us);

typedef struct {
  guint64 groups;         /* database transactions committed by the writer: one COMMIT each */
  guint64 groups_failed;  /* groups failed as a whole (UNAVAILABLE) */
  guint64 txns_committed;
  guint64 txns_failed;    /* alone (CONFLICT) or with their group (UNAVAILABLE) */
  guint64 retries;        /* group runs repeated: serialization failure, deadlock, lost connection */
  guint64 reconnects;     /* connections the writer (re)opened after the first */
  guint   largest_group;  /* txns */
  guint   queued;         /* waiting for the writer now */
  gint64  group_us_total; /* time spent running groups */
} ArbStoreStats;
void arb_store_get_stats (ArbStore *store, ArbStoreStats *out);

/* PostgreSQL: creates the monthly partitions of trades and positions for this
 * month and @months_ahead more (the store does it at open for 2 months and
 * every 6 hours after); TRUE at once for SQLite. Blocking: for tools, tests
 * and start-up. */
gboolean arb_store_ensure_partitions (ArbStore *store, guint months_ahead, GError **error);

/* the ledger invariant, sum(trades.cash_effect) = balance − starting_balance
 * per assessment: one line per assessment that breaks it, empty when every
 * one holds. (element-type utf8) */
GPtrArray *arb_store_audit_ledger_sync (ArbStore *store, GError **error);

/* for tests: while held, the writer takes nothing from its queue, so that
 * what is queued meanwhile goes into one group (up to 512 a group) */
void arb_store_hold_writer (ArbStore *store, gboolean hold);

/* ---- the outbox relay (doc/outbox.md) ---------------------------------- */

/* an outbox row with its place in the outbox, as the relay reads it */
typedef struct {
  gint64       pos;
  ArbOutboxRow row; /* its strings owned */
} ArbOutboxEntry;
void arb_outbox_entry_free (ArbOutboxEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbOutboxEntry, arb_outbox_entry_free)

/* @sink acknowledged @event_id at @delivered_us: one outbox_delivery row. A
 * row that is there already, or whose event is gone (pruned), is left alone,
 * so that marking twice or late never fails the transaction. */
void arb_store_txn_insert_delivery (ArbStoreTxn *txn, const char *event_id, const char *sink, gint64 delivered_us);

/* The outbox rows after @after_pos that @sink has no delivery row for, by
 * pos, at most @limit, on a reader thread. (element-type ArbOutboxEntry) */
void       arb_store_outbox_pending_for_sink_async (ArbStore *store, const char *sink, gint64 after_pos, guint limit,
                                                    ArbStoreRowsFunc done, gpointer data);
GPtrArray *arb_store_outbox_pending_for_sink_sync (ArbStore *store, const char *sink, gint64 after_pos, guint limit,
                                                   GError **error);
/* the highest pos the relay may read up to now: with several ledger writers,
 * below the lowest pos of a group still in flight (rows above it may commit
 * before it does); G_MAXINT64 with one ledger writer. The reads above apply
 * it themselves. */
gint64     arb_store_outbox_visible_pos (ArbStore *store);

/* what is still to deliver to @sink after @after_pos, one row per event
 * type: the caller keeps the types the sink subscribes to. A range scan from
 * @after_pos: cheap when @after_pos is the sink's low-water mark. */
typedef struct {
  char  *type;
  gint64 count;
  gint64 oldest_us; /* created_at of the oldest */
} ArbOutboxBacklog;
void       arb_outbox_backlog_free (ArbOutboxBacklog *backlog);
/* (element-type ArbOutboxBacklog) */
void       arb_store_outbox_backlog_async (ArbStore *store, const char *sink, gint64 after_pos,
                                           ArbStoreRowsFunc done, gpointer data);
GPtrArray *arb_store_outbox_backlog_sync (ArbStore *store, const char *sink, gint64 after_pos, GError **error);

/* Pruning: deletes up to @limit outbox rows created before @before_us that
 * every subscribed sink has a delivery row for (their delivery rows go with
 * them). @sinks and @patterns pair up: sink @sinks[i] receives the types
 * that @patterns[i] names: "*" (every type), "assessment.*" (a prefix) or
 * one type. A row no pair matches is deleted once it is old enough. Runs on
 * the writer, in a group like any transaction; @done gets how many rows went
 * (on the caller's thread-default context). */
typedef void (*ArbStorePruneFunc) (gint64 deleted, const GError *error, gpointer data);
void arb_store_prune_outbox_async (ArbStore *store, gint64 before_us, const char *const *sinks,
                                   const char *const *patterns, guint limit, ArbStorePruneFunc done, gpointer data);
gint64 arb_store_prune_outbox_sync (ArbStore *store, gint64 before_us, const char *const *sinks,
                                    const char *const *patterns, guint limit, GError **error);

G_END_DECLS
