/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-store-private.h"

G_BEGIN_DECLS

/* What arb-store.c (URI, threads, queues, group commit, retries) asks of a
 * backend (arb-store-sqlite.c, arb-store-pg.c). A connection is used by one
 * thread at a time; every call below may block. */

typedef enum {
  ARB_STORE_OP_INSERT_ASSESSMENT,
  ARB_STORE_OP_UPDATE_ASSESSMENT,
  ARB_STORE_OP_INSERT_ORDER,
  ARB_STORE_OP_INSERT_TRADE,
  ARB_STORE_OP_UPSERT_POSITION,
  ARB_STORE_OP_INSERT_OUTBOX,
  ARB_STORE_OP_INSERT_IDEMPOTENCY,
  ARB_STORE_OP_EXPIRE_IDEMPOTENCY,
  ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY,
  ARB_STORE_OP_INSERT_DELIVERY,
  ARB_STORE_OP_PRUNE_OUTBOX,
} ArbStoreOpKind;

typedef struct {
  char  *event_id;
  char  *sink;
  gint64 delivered_us;
} ArbStoreDelivery;

/* EXPIRE_IDEMPOTENCY_KEY: the row of one (user, key), if created before
 * before_us */
typedef struct {
  char  *user;
  char  *key;
  gint64 before_us;
} ArbStoreKeyExpiry;

typedef struct {
  gint64            before_us;
  char             *pairs_json; /* [["sink:a","*"],["sink:b","trade.executed"]] */
  guint             limit;
  gint64            deleted;    /* set by the backend when the group commits */
  ArbStorePruneFunc done;
  gpointer          done_data;
} ArbStorePrune;

typedef struct {
  ArbStoreOpKind kind;
  /* INSERT_OUTBOX: the pos the store gave the row; 0: the database's */
  gint64         pos;
  union {
    ArbAssessmentRow  *assessment;  /* owned */
    ArbOrderRow       *order;       /* owned */
    ArbTradeRow       *trade;       /* owned */
    ArbPositionRow    *position;    /* owned */
    ArbOutboxRow      *outbox;      /* owned */
    ArbIdempotencyRow *idempotency; /* owned */
    gint64             before_us;   /* EXPIRE_IDEMPOTENCY */
    ArbStoreKeyExpiry *key_expiry;  /* owned */
    ArbStoreDelivery  *delivery;    /* owned */
    ArbStorePrune     *prune;       /* owned */
  } u;
} ArbStoreOp;

typedef struct _ArbStoreWaiter ArbStoreWaiter;

struct _ArbStoreTxn {
  GArray          *ops;     /* ArbStoreOp, rows owned */
  /* set by arb_store_commit_*(), owned by the store from then on */
  ArbStoreDoneFunc done;
  gpointer         done_data;
  GMainContext    *context; /* owned ref, nullable for a sync commit */
  ArbStoreWaiter  *waiter;  /* a blocked arb_store_commit_sync(), nullable */
  GError          *error;   /* owned, nullable: why this one failed */
  gint64           queued_us; /* monotonic, when it was queued for the writer */
};

/* how a group ended */
typedef enum {
  /* COMMIT returned: every txn without txn->error is durable */
  ARB_STORE_GROUP_COMMITTED,
  /* serialization failure or deadlock (40001, 40P01): nothing was committed,
   * the whole group may run again */
  ARB_STORE_GROUP_RETRY,
  /* the connection broke before COMMIT was sent: nothing was committed, the
   * group may run again on a new connection */
  ARB_STORE_GROUP_LOST,
  /* anything else, COMMIT failures included (in doubt): the group fails */
  ARB_STORE_GROUP_FAILED,
} ArbStoreGroupResult;

typedef struct {
  int   version;
  char *name; /* "init" */
  char *file; /* "postgresql/001_init.sql" */
  char *sql;
} ArbStoreMigration;

typedef struct {
  const char *name; /* "sqlite", "postgresql" */
  /* the most writer connections that may commit the ledger, each its own
   * groups: 1 where the database takes one writer at a time (SQLite). More
   * than one needs reserve_pos: the outbox rows then carry a pos the store
   * gives them */
  guint       max_ledger_writers;
  /* one more writer connection for the background txns (delivery marks,
   * prunes, expiry); FALSE: the ledger writer takes those too */
  gboolean    background_writer;

  /* URI errors (ARB_STORE_ERROR_URI) before anything connects; NULL: none */
  gboolean (*check_target) (const char *target, const char *display, GError **error);


  /* @target: the file path (sqlite) or the libpq URI (postgresql). Error
   * messages of the backend never name the target (it may hold a password):
   * arb-store.c puts the redacted URI in front. A lost or unreachable
   * database is ARB_STORE_ERROR_UNAVAILABLE. */
  gpointer (*connect) (const char *target, GError **error);
  void     (*disconnect) (gpointer conn);
  /* the connection is lost and must be replaced */
  gboolean (*is_broken) (gpointer conn);

  /* migrations: run a script (several statements), begin/commit/rollback,
   * create schema_migrations if missing, read the applied versions, record one */
  gboolean (*exec_script) (gpointer conn, const char *sql, GError **error);
  gboolean (*ensure_migrations_table) (gpointer conn, GError **error);
  gboolean (*applied_versions) (gpointer conn, GHashTable *versions, GError **error);
  /* CONFLICT when someone else recorded it first */
  gboolean (*record_migration) (gpointer conn, const ArbStoreMigration *m, gint64 now_us, GError **error);
  /* after the migrations: prepare statements and the like */
  gboolean (*prepare) (gpointer conn, GError **error);
  /* time partitions for @months_ahead months after this one; NULL: none */
  gboolean (*ensure_partitions) (gpointer conn, guint months_ahead, GError **error);

  /* group commit: one database transaction; sets txn->error (CONFLICT) on
   * the txns that failed alone; @error says why a non-COMMITTED group failed */
  ArbStoreGroupResult (*commit_group) (gpointer conn, ArbStoreTxn **txns, guint n_txns, GError **error);
  /* @n fresh outbox positions, increasing, unique in the database (also
   * across hosts); NULL or FALSE: the database assigns pos itself */
  gboolean (*reserve_pos) (gpointer conn, guint n, gint64 *out, GError **error);

  gboolean   (*load) (gpointer conn, const ArbStoreLoadFuncs *funcs, gint64 idempotency_since_us, gpointer data,
                      GError **error);
  GPtrArray *(*list_trades) (gpointer conn, const char *assessment_id, gint64 before_seq, guint limit, GError **error);
  /* @after: nullable */
  GPtrArray *(*list_closed_positions) (gpointer conn, const char *assessment_id, const ArbPositionCursor *after,
                                       guint limit, GError **error);
  GPtrArray *(*outbox_pending) (gpointer conn, guint limit, GError **error);
  /* (element-type ArbOutboxRow) an assessment's status changes, oldest first */
  GPtrArray *(*list_assessment_events) (gpointer conn, const char *assessment_id, guint limit, GError **error);
  GPtrArray *(*audit_ledger) (gpointer conn, GError **error);
  /* the relay's reads (arb-outbox.c): (element-type ArbOutboxEntry) and
   * (element-type ArbOutboxBacklog) */
  /* rows with after_pos < pos <= upto_pos */
  GPtrArray *(*outbox_pending_for_sink) (gpointer conn, const char *sink, gint64 after_pos, gint64 upto_pos, guint limit,
                                         GError **error);
  GPtrArray *(*outbox_backlog) (gpointer conn, const char *sink, gint64 after_pos, GError **error);
} ArbStoreBackend;

extern const ArbStoreBackend arb_store_sqlite_backend;
extern const ArbStoreBackend arb_store_pg_backend;

/* helpers shared by the backends (arb-store.c) */
/* "2026-01-15 10:20:30.123456+00" and back; the parser takes any offset,
 * "Z", and no or up to six fractional digits, and refuses anything else */
#define ARB_STORE_TIME_BUFSIZE 48
char    *arb_store_format_timestamptz (gint64 unix_us, char buf[ARB_STORE_TIME_BUFSIZE]);
gboolean arb_store_parse_timestamptz (const char *text, gint64 *out_us);
/* what one op is about, for error messages: "insert trade 5c0e…" */
char    *arb_store_op_describe (const ArbStoreOp *op);

G_END_DECLS
