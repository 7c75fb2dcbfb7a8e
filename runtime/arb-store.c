/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-log-private.h"
#include "arb-metrics-private.h"
#include "arb-store-backend-private.h"
#include "arb-util-private.h"

/* the most transactions one database transaction takes */
#define GROUP_CAP           512
/* beyond this many waiting transactions a commit fails at once: the database
 * is not keeping up, and a 503 now beats a timeout later */
#define QUEUE_CAP           65536
/* whole-group runs after a serialization failure or a lost connection */
#define GROUP_RETRIES       3
#define READER_THREADS      2
/* writer threads, each with its connection: the ledger's (1 unless
 * arb_store_open_full() asks for more, up to backend->max_ledger_writers),
 * and where the backend has one, the background's */
#define MAX_LEDGER_WRITERS  4
#define MAX_WRITERS         (MAX_LEDGER_WRITERS + 1)
/* outbox positions reserved at once, and the stock below which a ledger
 * writer reserves more (a group of 512 orders writes about 1,500 rows) */
#define POS_RESERVE         4096
#define POS_LOW             2048
#define PARTITION_MONTHS    2
#define MAINTENANCE_EVERY_US (G_GINT64_CONSTANT (6 * 3600) * G_USEC_PER_SEC)
#define US_PER_DAY           (G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC)

G_DEFINE_QUARK (arb-store-error-quark, arb_store_error)

struct _ArbStoreWaiter {
  GMutex   lock;
  GCond    cond;
  gboolean done;
};

typedef struct _ReadJob ReadJob;

/* a writer thread's own. The ledger writers commit every txn that changes
 * an account or writes the outbox; writer 0 also keeps the partitions. A
 * background writer, where the backend has one, commits the txns that
 * write no ledger row (outbox delivery marks and prunes, the expiry of
 * idempotency keys), so that these never hold up an order. With several
 * ledger writers the groups commit in any order, so the store gives each
 * outbox row its pos when a group is formed, and the relay reads only up to
 * the lowest pos still in flight (doc/store.md, "Writers"). */
typedef struct {
  ArbStore *store;
  guint     index;
  gboolean  takes_ledger;
  gboolean  takes_background;
  gint64    min_pos;  /* the lowest outbox pos of its group in flight; G_MAXINT64: none */
  GCond     cond;     /* it waits on it, with store->lock */
  GThread  *thread;
  gpointer  conn;    /* nullable: reconnect before the next group */
} Writer;
/* runs on a reader thread; returns the result or NULL with @error */
typedef gpointer (*ReadFunc) (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error);

struct _ReadJob {
  ReadFunc            run;      /* NULL: the reader quits */
  ArbStore           *store;
  char               *assessment_id;
  gint64              before_seq;
  char               *before_id;  /* closed positions: the cursor's id (nullable) */
  guint               limit;
  gpointer            result;   /* owned, nullable */
  GDestroyNotify      result_free;
  GError             *error;    /* owned, nullable */
  ArbStoreRowsFunc    rows_done;
  gpointer            done_data;
  GMainContext       *context;  /* owned ref, nullable */
  ArbStoreWaiter     *waiter;   /* a blocked _sync caller, nullable */
};

struct _ArbStore {
  const ArbStoreBackend *backend;
  char                  *target;  /* file path or libpq conninfo */
  char                  *display; /* for messages: no password */
  int                    schema_version;

  GMutex                 lock;    /* guards everything down to stats */
  GQueue                 queue;   /* ArbStoreTxn, owned: the ledger's */
  GQueue                 background; /* ArbStoreTxn, owned: no ledger rows */
  gboolean               quit;
  gboolean               held;
  ArbStoreStats          stats;
  ArbMetrics            *metrics; /* nullable, the host's: it outlives the store */

  Writer                 writers[MAX_WRITERS];
  guint                  n_writers;
  /* outbox positions (several ledger writers): reserved, not yet given */
  gboolean               outage;  /* logged once, and again on recovery */
  gboolean               explicit_pos;
  GArray                *pos_stock;     /* gint64, increasing */
  guint                  pos_head;      /* the next to give */
  gboolean               pos_reserving; /* a writer is reserving more */
  gint64                 pos_last;      /* the last given (or below the first) */
  gint64                 next_maintenance_us; /* the first writer's */

  GAsyncQueue           *reads;   /* ReadJob */
  GThread               *readers[READER_THREADS];
  gpointer               rconns[READER_THREADS]; /* until the reader threads take them */
};

typedef struct {
  ArbStore *store;
  gpointer  conn; /* owned, nullable */
} ReaderArgs;

static void store_log (GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
store_log (GLogLevelFlags level, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  arb_log_for (NULL, "store", level, message);
}

/* ---- rows ---------------------------------------------------------------- */

static ArbOrderRow *
order_row_copy (const ArbOrderRow *row)
{
  ArbOrderRow *c = g_memdup2 (row, sizeof *row);
  c->id = g_strdup (row->id);
  c->assessment_id = g_strdup (row->assessment_id);
  c->client_order_id = g_strdup (row->client_order_id);
  c->market = g_strdup (row->market);
  c->status = g_strdup (row->status);
  c->correlation_id = g_strdup (row->correlation_id);
  return c;
}

static ArbOutboxRow *
outbox_row_copy (const ArbOutboxRow *row)
{
  ArbOutboxRow *c = g_memdup2 (row, sizeof *row);
  c->id = g_strdup (row->id);
  c->type = g_strdup (row->type);
  c->key = g_strdup (row->key);
  c->assessment_id = g_strdup (row->assessment_id);
  c->payload = g_strdup (row->payload);
  return c;
}

static ArbIdempotencyRow *
idempotency_row_copy (const ArbIdempotencyRow *row)
{
  ArbIdempotencyRow *c = g_memdup2 (row, sizeof *row);
  c->user = g_strdup (row->user);
  c->key = g_strdup (row->key);
  c->request_hash = g_strdup (row->request_hash);
  c->body = g_strdup (row->body);
  return c;
}

static void
op_clear (gpointer data)
{
  ArbStoreOp *op = data;
  switch (op->kind)
    {
    case ARB_STORE_OP_INSERT_ASSESSMENT:
    case ARB_STORE_OP_UPDATE_ASSESSMENT:
      arb_assessment_row_free (op->u.assessment);
      break;
    case ARB_STORE_OP_INSERT_ORDER:
      arb_order_row_free (op->u.order);
      break;
    case ARB_STORE_OP_INSERT_TRADE:
      arb_trade_row_free (op->u.trade);
      break;
    case ARB_STORE_OP_UPSERT_POSITION:
      arb_position_row_free (op->u.position);
      break;
    case ARB_STORE_OP_INSERT_OUTBOX:
      arb_outbox_row_free (op->u.outbox);
      break;
    case ARB_STORE_OP_INSERT_IDEMPOTENCY:
      arb_idempotency_row_free (op->u.idempotency);
      break;
    case ARB_STORE_OP_INSERT_DELIVERY:
      g_free (op->u.delivery->event_id);
      g_free (op->u.delivery->sink);
      g_free (op->u.delivery);
      break;
    case ARB_STORE_OP_PRUNE_OUTBOX:
      g_free (op->u.prune->pairs_json);
      g_free (op->u.prune);
      break;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY:
      g_free (op->u.key_expiry->user);
      g_free (op->u.key_expiry->key);
      g_free (op->u.key_expiry);
      break;
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
    default:
      break;
    }
}

char *
arb_store_op_describe (const ArbStoreOp *op)
{
  switch (op->kind)
    {
    case ARB_STORE_OP_INSERT_ASSESSMENT:
      return g_strdup_printf ("insert assessment %s", op->u.assessment->id);
    case ARB_STORE_OP_UPDATE_ASSESSMENT:
      return g_strdup_printf ("update assessment %s", op->u.assessment->id);
    case ARB_STORE_OP_INSERT_ORDER:
      return g_strdup_printf ("insert order %s", op->u.order->id);
    case ARB_STORE_OP_INSERT_TRADE:
      return g_strdup_printf ("insert trade %s (seq %" G_GINT64_FORMAT ")", op->u.trade->id, op->u.trade->seq);
    case ARB_STORE_OP_UPSERT_POSITION:
      return g_strdup_printf ("upsert position %s", op->u.position->id);
    case ARB_STORE_OP_INSERT_OUTBOX:
      return g_strdup_printf ("insert outbox event %s", op->u.outbox->id);
    case ARB_STORE_OP_INSERT_IDEMPOTENCY:
      return g_strdup_printf ("insert idempotency key %s of %s", op->u.idempotency->key, op->u.idempotency->user);
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
      return g_strdup ("expire idempotency keys");
    case ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY:
      return g_strdup_printf ("expire idempotency key %s of %s", op->u.key_expiry->key, op->u.key_expiry->user);
    case ARB_STORE_OP_INSERT_DELIVERY:
      return g_strdup_printf ("mark event %s delivered to %s", op->u.delivery->event_id, op->u.delivery->sink);
    case ARB_STORE_OP_PRUNE_OUTBOX:
      return g_strdup ("prune the outbox");
    default:
      return g_strdup ("unknown operation");
    }
}

/* ---- timestamptz text ----------------------------------------------------- */

char *
arb_store_format_timestamptz (gint64 unix_us, char buf[ARB_STORE_TIME_BUFSIZE])
{
  arb_format_utc_us (unix_us, ' ', "+00", buf, ARB_STORE_TIME_BUFSIZE);
  return buf;
}

static gboolean
read_digits (const char **p, guint n, guint *out)
{
  guint v = 0;
  for (guint i = 0; i < n; i++)
    {
      if (!g_ascii_isdigit ((*p)[i]))
        return FALSE;
      v = v * 10 + (guint) ((*p)[i] - '0');
    }
  *p += n;
  *out = v;
  return TRUE;
}

/* "2026-01-15 10:20:30[.123456](+00|+00:00|+05:30|-08|Z)", as PostgreSQL
 * and CockroachDB print a timestamptz in ISO style */
gboolean
arb_store_parse_timestamptz (const char *text, gint64 *out_us)
{
  const char *p = text;
  guint y, mo, d, h, mi, s, frac = 0, oh = 0, om = 0;
  int sign = 0;
  gint64 us;

  if (text == NULL)
    return FALSE;
  if (!read_digits (&p, 4, &y) || *p++ != '-' || !read_digits (&p, 2, &mo) || *p++ != '-'
      || !read_digits (&p, 2, &d) || (*p != ' ' && *p != 'T') || !(p++, read_digits (&p, 2, &h))
      || *p++ != ':' || !read_digits (&p, 2, &mi) || *p++ != ':' || !read_digits (&p, 2, &s))
    return FALSE;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return FALSE;
  if (*p == '.')
    {
      guint scale = 100000;
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      for (; g_ascii_isdigit (*p); p++)
        {
          frac += (guint) (*p - '0') * scale;
          scale /= 10;
        }
    }
  if (*p == 'Z')
    p++;
  else if (*p == '+' || *p == '-')
    {
      sign = *p++ == '-' ? -1 : 1;
      if (!read_digits (&p, 2, &oh))
        return FALSE;
      if (*p == ':')
        p++;
      if (g_ascii_isdigit (*p) && !read_digits (&p, 2, &om))
        return FALSE;
      if (*p == ':') /* seconds of an offset: only historic local times have them */
        return FALSE;
    }
  else
    return FALSE;
  if (*p != '\0')
    return FALSE;
  us = (arb_days_from_civil (y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * G_USEC_PER_SEC + frac;
  us -= (gint64) sign * ((gint64) oh * 3600 + om * 60) * G_USEC_PER_SEC;
  *out_us = us;
  return TRUE;
}

/* ---- transactions --------------------------------------------------------- */

ArbStoreTxn *
arb_store_txn_new (void)
{
  ArbStoreTxn *txn = g_new0 (ArbStoreTxn, 1);
  txn->ops = g_array_sized_new (FALSE, FALSE, sizeof (ArbStoreOp), 8);
  g_array_set_clear_func (txn->ops, op_clear);
  return txn;
}

void
arb_store_txn_free (ArbStoreTxn *txn)
{
  if (txn == NULL)
    return;
  g_array_unref (txn->ops);
  if (txn->context != NULL)
    g_main_context_unref (txn->context);
  g_clear_error (&txn->error);
  g_free (txn);
}

static void
txn_add (ArbStoreTxn *txn, ArbStoreOpKind kind, gpointer row)
{
  ArbStoreOp op = { .kind = kind };
  op.u.assessment = row; /* every member of the union but before_us is a pointer */
  g_array_append_val (txn->ops, op);
}

void
arb_store_txn_insert_assessment (ArbStoreTxn *txn, const ArbAssessmentRow *row)
{
  txn_add (txn, ARB_STORE_OP_INSERT_ASSESSMENT, arb_assessment_row_copy (row));
}

void
arb_store_txn_update_assessment (ArbStoreTxn *txn, const ArbAssessmentRow *row)
{
  txn_add (txn, ARB_STORE_OP_UPDATE_ASSESSMENT, arb_assessment_row_copy (row));
}

void
arb_store_txn_insert_order (ArbStoreTxn *txn, const ArbOrderRow *row)
{
  txn_add (txn, ARB_STORE_OP_INSERT_ORDER, order_row_copy (row));
}

void
arb_store_txn_insert_trade (ArbStoreTxn *txn, const ArbTradeRow *row)
{
  txn_add (txn, ARB_STORE_OP_INSERT_TRADE, arb_trade_row_copy (row));
}

void
arb_store_txn_upsert_position (ArbStoreTxn *txn, const ArbPositionRow *row)
{
  txn_add (txn, ARB_STORE_OP_UPSERT_POSITION, arb_position_row_copy (row));
}

void
arb_store_txn_insert_outbox (ArbStoreTxn *txn, const ArbOutboxRow *row)
{
  txn_add (txn, ARB_STORE_OP_INSERT_OUTBOX, outbox_row_copy (row));
}

void
arb_store_txn_insert_idempotency (ArbStoreTxn *txn, const ArbIdempotencyRow *row)
{
  txn_add (txn, ARB_STORE_OP_INSERT_IDEMPOTENCY, idempotency_row_copy (row));
}

void
arb_store_txn_expire_idempotency (ArbStoreTxn *txn, gint64 before_us)
{
  ArbStoreOp op = { .kind = ARB_STORE_OP_EXPIRE_IDEMPOTENCY };
  op.u.before_us = before_us;
  g_array_append_val (txn->ops, op);
}

void
arb_store_txn_expire_idempotency_key (ArbStoreTxn *txn, const char *user, const char *key, gint64 before_us)
{
  ArbStoreKeyExpiry *e = g_new0 (ArbStoreKeyExpiry, 1);
  e->user = g_strdup (user);
  e->key = g_strdup (key);
  e->before_us = before_us;
  txn_add (txn, ARB_STORE_OP_EXPIRE_IDEMPOTENCY_KEY, e);
}

void
arb_store_txn_insert_delivery (ArbStoreTxn *txn, const char *event_id, const char *sink, gint64 delivered_us)
{
  ArbStoreDelivery *d = g_new0 (ArbStoreDelivery, 1);
  d->event_id = g_strdup (event_id);
  d->sink = g_strdup (sink);
  d->delivered_us = delivered_us;
  txn_add (txn, ARB_STORE_OP_INSERT_DELIVERY, d);
}

void
arb_outbox_entry_free (ArbOutboxEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->row.id);
  g_free (entry->row.type);
  g_free (entry->row.key);
  g_free (entry->row.assessment_id);
  g_free (entry->row.payload);
  g_free (entry);
}

void
arb_outbox_backlog_free (ArbOutboxBacklog *backlog)
{
  if (backlog == NULL)
    return;
  g_free (backlog->type);
  g_free (backlog);
}

static void
json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if ((guchar) *p < 0x20)
        g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

/* the (sink, pattern) pairs as one JSON text, which both backends take
 * apart in SQL (json_each, jsonb_array_elements) */
static char *
prune_pairs_json (const char *const *sinks, const char *const *patterns)
{
  GString *out = g_string_new ("[");
  for (guint i = 0; sinks != NULL && patterns != NULL && sinks[i] != NULL && patterns[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      g_string_append_c (out, '[');
      json_string (out, sinks[i]);
      g_string_append_c (out, ',');
      json_string (out, patterns[i]);
      g_string_append_c (out, ']');
    }
  g_string_append_c (out, ']');
  return g_string_free (out, FALSE);
}

static ArbStoreTxn *
prune_txn_new (gint64 before_us, const char *const *sinks, const char *const *patterns, guint limit)
{
  ArbStoreTxn *txn = arb_store_txn_new ();
  ArbStoreOp op = { .kind = ARB_STORE_OP_PRUNE_OUTBOX };
  op.u.prune = g_new0 (ArbStorePrune, 1);
  op.u.prune->before_us = before_us;
  op.u.prune->pairs_json = prune_pairs_json (sinks, patterns);
  op.u.prune->limit = MAX (limit, 1);
  g_array_append_val (txn->ops, op);
  return txn;
}

guint
arb_store_txn_length (ArbStoreTxn *txn)
{
  return txn->ops->len;
}

/* ---- URI ------------------------------------------------------------------ */

#define ACCEPTED_FORMS \
  "sqlite:PATH (relative to the state directory), postgresql://user@host:port/db or postgres://user@host:port/db"

/* postgresql://user:secret@host/db → postgresql://user:***@host/db */
static char *
redact_uri (const char *uri)
{
  const char *scheme_end = strstr (uri, "://");
  const char *at, *colon, *slash;

  if (scheme_end == NULL)
    return g_strdup (uri);
  at = strrchr (scheme_end + 3, '@');
  slash = strchr (scheme_end + 3, '/');
  if (at == NULL || (slash != NULL && slash < at))
    return g_strdup (uri);
  colon = memchr (scheme_end + 3, ':', (gsize) (at - (scheme_end + 3)));
  if (colon == NULL)
    return g_strdup (uri);
  return g_strdup_printf ("%.*s:***%s", (int) (colon - uri), uri, at);
}

static gboolean
parse_uri (ArbStore *store, const char *uri, const char *base_dir, GError **error)
{
  if (uri == NULL || *uri == '\0')
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI, "store= is empty; use " ACCEPTED_FORMS);
      return FALSE;
    }
  if (g_str_has_prefix (uri, "sqlite:"))
    {
      const char *path = uri + strlen ("sqlite:");
      if (*path == '\0' || g_str_equal (path, ":memory:") || g_str_has_prefix (path, "file:"))
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI,
                       "store=%s: needs the path of a database file; use " ACCEPTED_FORMS, uri);
          return FALSE;
        }
      store->backend = &arb_store_sqlite_backend;
      if (g_path_is_absolute (path) || base_dir == NULL)
        store->target = g_strdup (path);
      else
        store->target = g_build_filename (base_dir, path, NULL);
      store->display = g_strdup_printf ("sqlite:%s", store->target);
      return TRUE;
    }
  if (g_str_has_prefix (uri, "postgresql://") || g_str_has_prefix (uri, "postgres://"))
    {
      g_autofree char *display = redact_uri (uri);

      /* libpq is the judge of its own URIs */
      if (!arb_store_pg_backend.check_target (uri, display, error))
        return FALSE;
      store->backend = &arb_store_pg_backend;
      store->target = g_strdup (uri);
      store->display = g_steal_pointer (&display);
      return TRUE;
    }
  {
    g_autofree char *display = redact_uri (uri);
    g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI, "store=%s: unknown kind of store; use " ACCEPTED_FORMS,
                 display);
  }
  return FALSE;
}

/* ---- migrations ----------------------------------------------------------- */

static void
migration_free (gpointer data)
{
  ArbStoreMigration *m = data;
  g_free (m->name);
  g_free (m->file);
  g_free (m->sql);
  g_free (m);
}

static int
migration_cmp (gconstpointer a, gconstpointer b)
{
  const ArbStoreMigration *ma = *(ArbStoreMigration *const *) a;
  const ArbStoreMigration *mb = *(ArbStoreMigration *const *) b;
  return (ma->version > mb->version) - (ma->version < mb->version);
}

/* NNN_name.sql → version and name; anything else is not a migration */
static gboolean
parse_migration_name (const char *file, int *version, char **name)
{
  const char *p = file;
  gint64 v = 0;

  if (!g_str_has_suffix (file, ".sql"))
    return FALSE;
  for (; g_ascii_isdigit (*p); p++)
    {
      v = v * 10 + (*p - '0');
      if (v > G_MAXINT)
        return FALSE;
    }
  if (p == file || *p != '_' || p[1] == '\0' || g_str_equal (p + 1, ".sql") || v == 0)
    return FALSE;
  *version = (int) v;
  *name = g_strndup (p + 1, strlen (p + 1) - strlen (".sql"));
  return TRUE;
}

/* data/migrations/<backend>/NNN_name.sql, in order */
static GPtrArray *
load_migrations (const char *migrations_dir, const char *backend, GError **error)
{
  g_autofree char *dir_path = g_build_filename (migrations_dir, backend, NULL);
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (migration_free);
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) local = NULL;
  const char *file;

  dir = g_dir_open (dir_path, 0, &local);
  if (dir == NULL)
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "migrations: %s", local->message);
      return NULL;
    }
  while ((file = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      ArbStoreMigration *m;
      int version;
      char *name;

      if (!parse_migration_name (file, &version, &name))
        continue;
      m = g_new0 (ArbStoreMigration, 1);
      m->version = version;
      m->name = name;
      m->file = g_build_filename (backend, file, NULL);
      g_ptr_array_add (list, m);
      path = g_build_filename (dir_path, file, NULL);
      if (!g_file_get_contents (path, &m->sql, NULL, &local))
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "migration %s: %s", m->file,
                       local->message);
          return NULL;
        }
    }
  if (list->len == 0)
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "migrations: no NNN_name.sql file in %s",
                   dir_path);
      return NULL;
    }
  g_ptr_array_sort (list, migration_cmp);
  for (guint i = 1; i < list->len; i++)
    {
      ArbStoreMigration *a = g_ptr_array_index (list, i - 1), *b = g_ptr_array_index (list, i);
      if (a->version == b->version)
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION,
                       "migrations: %s and %s have the same version %d", a->file, b->file, a->version);
          return NULL;
        }
    }
  return g_steal_pointer (&list);
}

static void
rollback_quietly (const ArbStoreBackend *backend, gpointer conn)
{
  g_autoptr(GError) ignored = NULL;
  backend->exec_script (conn, "ROLLBACK", &ignored);
}

/* each migration not yet recorded in schema_migrations, in order, each in
 * its own transaction together with its record */
static gboolean
apply_migrations (ArbStore *store, gpointer conn, GPtrArray *migrations, GError **error)
{
  const ArbStoreBackend *backend = store->backend;
  g_autoptr(GHashTable) applied = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) local = NULL;
  GHashTableIter iter;
  gpointer key;
  int version = 0;

  if (!backend->ensure_migrations_table (conn, &local) || !backend->applied_versions (conn, applied, &local))
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "%s: schema_migrations: %s", store->display,
                   local->message);
      return FALSE;
    }
  for (guint i = 0; i < migrations->len; i++)
    {
      ArbStoreMigration *m = g_ptr_array_index (migrations, i);

      if (g_hash_table_contains (applied, GINT_TO_POINTER (m->version)))
        continue;
      if (!backend->exec_script (conn, "BEGIN", &local))
        {
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "%s: %s: %s", store->display, m->file,
                       local->message);
          return FALSE;
        }
      /* recorded first: a second host migrating at the same moment waits
       * here for the first and then finds the version taken */
      if (!backend->record_migration (conn, m, g_get_real_time (), &local))
        {
          rollback_quietly (backend, conn);
          if (g_error_matches (local, ARB_STORE_ERROR, ARB_STORE_ERROR_CONFLICT))
            {
              g_clear_error (&local);
              g_hash_table_add (applied, GINT_TO_POINTER (m->version));
              continue;
            }
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "%s: %s: %s", store->display, m->file,
                       local->message);
          return FALSE;
        }
      if (!backend->exec_script (conn, m->sql, &local) || !backend->exec_script (conn, "COMMIT", &local))
        {
          rollback_quietly (backend, conn);
          g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_MIGRATION, "%s: %s: %s", store->display, m->file,
                       local->message);
          return FALSE;
        }
      g_hash_table_add (applied, GINT_TO_POINTER (m->version));
      store_log (G_LOG_LEVEL_INFO, "%s: applied migration %s", store->display, m->file);
    }
  g_hash_table_iter_init (&iter, applied);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    version = MAX (version, GPOINTER_TO_INT (key));
  store->schema_version = version;
  return TRUE;
}

/* ---- the writer: group commit --------------------------------------------- */

/* a txn that writes nothing of the ledger: delivery marks, prunes, expiry */
static gboolean
txn_is_background (ArbStoreTxn *txn)
{
  for (guint i = 0; i < txn->ops->len; i++)
    switch (g_array_index (txn->ops, ArbStoreOp, i).kind)
      {
      case ARB_STORE_OP_EXPIRE_IDEMPOTENCY:
      case ARB_STORE_OP_INSERT_DELIVERY:
      case ARB_STORE_OP_PRUNE_OUTBOX:
        break;
      default:
        return FALSE;
      }
  return txn->ops->len > 0;
}

static guint
queued_locked (ArbStore *store)
{
  return store->queue.length + store->background.length;
}

/* with store->lock held */
static void
enqueue_locked (ArbStore *store, ArbStoreTxn *txn)
{
  gboolean background = txn_is_background (txn);

  txn->queued_us = g_get_monotonic_time ();
  g_queue_push_tail (background ? &store->background : &store->queue, txn);
  /* only the writers that take this kind: an order does not wake the
   * background writer */
  for (guint i = 0; i < store->n_writers; i++)
    if (background ? store->writers[i].takes_background : store->writers[i].takes_ledger)
      g_cond_signal (&store->writers[i].cond);
}

/* with store->lock held: every writer looks again (hold, quit, positions) */
static void
wake_all_locked (ArbStore *store)
{
  for (guint i = 0; i < MAX_WRITERS; i++)
    g_cond_signal (&store->writers[i].cond);
}

/* with store->lock held: whether anything @w takes is queued */
static gboolean
own_work_locked (ArbStore *store, Writer *w)
{
  return (w->takes_ledger && store->queue.length > 0) || (w->takes_background && store->background.length > 0);
}

/* the same, unless the writers are held */
static gboolean
work_for_locked (ArbStore *store, Writer *w)
{
  return !store->held && own_work_locked (store, w);
}

static void
waiter_wake (ArbStoreWaiter *w)
{
  g_mutex_lock (&w->lock);
  w->done = TRUE;
  g_cond_signal (&w->cond);
  g_mutex_unlock (&w->lock);
}

static void
waiter_wait (ArbStoreWaiter *w)
{
  g_mutex_lock (&w->lock);
  while (!w->done)
    g_cond_wait (&w->cond, &w->lock);
  g_mutex_unlock (&w->lock);
}

/* The txn's (or job's) own reference on @context goes when the callback
 * has run, on the context's thread, possibly before g_main_context_invoke_full()
 * is done with the context here: hold one more for the call. */
static void
invoke_on (GMainContext *context, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  g_autoptr(GMainContext) hold = g_main_context_ref (context);
  g_main_context_invoke_full (hold, G_PRIORITY_DEFAULT, func, data, destroy);
}

static gboolean
txn_dispatch (gpointer data)
{
  ArbStoreTxn *txn = data;
  txn->done (txn->error, txn->done_data);
  return G_SOURCE_REMOVE;
}

/* hands a finished txn back: to a blocked arb_store_commit_sync(), or as a
 * callback on the caller's context (the workers push a context of their own,
 * so g_main_context_invoke_full() never runs it on this thread) */
static void
txn_deliver (ArbStoreTxn *txn)
{
  if (txn->waiter != NULL)
    waiter_wake (txn->waiter);
  else if (txn->done == NULL)
    arb_store_txn_free (txn);
  else
    invoke_on (txn->context, txn_dispatch, txn, (GDestroyNotify) arb_store_txn_free);
}

static gpointer
connect_prepared (ArbStore *store, GError **error)
{
  gpointer conn = store->backend->connect (store->target, error);
  if (conn != NULL && !store->backend->prepare (conn, error))
    g_clear_pointer (&conn, store->backend->disconnect);
  return conn;
}

static void
writer_drop_connection (Writer *w)
{
  if (w->conn != NULL)
    {
      w->store->backend->disconnect (w->conn);
      w->conn = NULL;
    }
}

static gboolean
writer_connect (Writer *w, GError **error)
{
  ArbStore *store = w->store;
  gpointer conn;

  if (w->conn != NULL)
    return TRUE;
  conn = connect_prepared (store, error);
  if (conn == NULL)
    return FALSE;
  w->conn = conn;
  g_mutex_lock (&store->lock);
  store->stats.reconnects++;
  g_mutex_unlock (&store->lock);
  return TRUE;
}

/* @prefail: the group fails with it, without going to the database */
static void
run_group (Writer *w, ArbStoreTxn **txns, guint n, const GError *prefail)
{
  ArbStore *store = w->store;
  const ArbStoreBackend *backend = store->backend;
  ArbStoreGroupResult result = ARB_STORE_GROUP_FAILED;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  guint retries = 0, failed = 0;

  if (store->metrics != NULL)
    for (guint i = 0; i < n; i++)
      arb_metrics_histogram_observe (store->metrics, "arb_store_queue_wait_seconds", NULL,
                                     (gdouble) (start - txns[i]->queued_us) / G_USEC_PER_SEC);

  if (prefail != NULL)
    error = g_error_copy (prefail);
  for (guint attempt = 0; prefail == NULL; attempt++)
    {
      for (guint i = 0; i < n; i++)
        g_clear_error (&txns[i]->error);
      g_clear_error (&error);
      if (!writer_connect (w, &error))
        {
          result = ARB_STORE_GROUP_FAILED;
          break;
        }
      result = backend->commit_group (w->conn, txns, n, &error);
      if (result == ARB_STORE_GROUP_COMMITTED)
        break;
      if (result == ARB_STORE_GROUP_LOST || backend->is_broken (w->conn))
        writer_drop_connection (w);
      if ((result == ARB_STORE_GROUP_RETRY || result == ARB_STORE_GROUP_LOST) && attempt < GROUP_RETRIES)
        {
          retries++;
          /* a little jitter, so that two hosts that deadlocked part ways */
          if (result == ARB_STORE_GROUP_RETRY)
            g_usleep (g_random_int_range (1000, 5000) << attempt);
          continue;
        }
      break;
    }

  if (result == ARB_STORE_GROUP_COMMITTED)
    {
      for (guint i = 0; i < n; i++)
        failed += txns[i]->error != NULL;
    }
  else
    {
      failed = n;
      for (guint i = 0; i < n; i++)
        {
          g_clear_error (&txns[i]->error);
          g_set_error (&txns[i]->error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE, "%s: %s", store->display,
                       error != NULL ? error->message : "the store failed without a reason");
        }
    }

  g_mutex_lock (&store->lock);
  /* an outage is logged once, whichever writer meets it, and the end of it */
  if ((result == ARB_STORE_GROUP_COMMITTED) == store->outage)
    {
      store->outage = !store->outage;
      if (store->outage)
        store_log (G_LOG_LEVEL_WARNING, "%s: commits fail: %s", store->display,
                   error != NULL ? error->message : "no reason given");
      else
        store_log (G_LOG_LEVEL_MESSAGE, "%s: commits succeed again", store->display);
    }
  /* committed or given up: its rows are readable, or never will be */
  w->min_pos = G_MAXINT64;
  if (result == ARB_STORE_GROUP_COMMITTED)
    store->stats.groups++;
  else
    store->stats.groups_failed++;
  store->stats.txns_committed += n - failed;
  store->stats.txns_failed += failed;
  store->stats.retries += retries;
  store->stats.largest_group = MAX (store->stats.largest_group, n);
  store->stats.group_us_total += g_get_monotonic_time () - start;
  g_mutex_unlock (&store->lock);
  if (store->metrics != NULL)
    {
      arb_metrics_histogram_observe (store->metrics, "arb_store_group_duration_seconds", NULL,
                                     (gdouble) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);
      arb_metrics_counter_add (store->metrics, "arb_store_groups_total", NULL, 1);
      arb_metrics_counter_add (store->metrics, "arb_store_txns_total", NULL, n);
      if (failed > 0)
        arb_metrics_counter_add (store->metrics, "arb_store_txns_failed_total", NULL, failed);
    }

  for (guint i = 0; i < n; i++)
    txn_deliver (txns[i]);
}

static void
run_maintenance (Writer *w)
{
  ArbStore *store = w->store;
  g_autoptr(GError) error = NULL;

  if (store->backend->ensure_partitions == NULL)
    return;
  if (!writer_connect (w, &error) || !store->backend->ensure_partitions (w->conn, PARTITION_MONTHS, &error))
    {
      /* not fatal: rows land in the default partition meanwhile, and move
       * when their partition is made */
      store_log (G_LOG_LEVEL_WARNING, "%s: creating partitions ahead: %s", store->display, error->message);
      if (w->conn != NULL && store->backend->is_broken (w->conn))
        writer_drop_connection (w);
    }
}

/* ---- outbox positions (several ledger writers) ---------------------------- */

gint64
arb_store_outbox_visible_pos (ArbStore *store)
{
  gint64 upto;

  g_mutex_lock (&store->lock);
  if (!store->explicit_pos)
    upto = G_MAXINT64; /* one ledger writer: pos is the commit order */
  else
    {
      upto = store->pos_last;
      for (guint i = 0; i < store->n_writers; i++)
        if (store->writers[i].min_pos != G_MAXINT64)
          upto = MIN (upto, store->writers[i].min_pos - 1);
    }
  g_mutex_unlock (&store->lock);
  return upto;
}

static guint
pos_left_locked (ArbStore *store)
{
  return store->pos_stock->len - store->pos_head;
}

/* reserves more positions on @w's connection; store->lock is held on entry
 * and exit, and dropped meanwhile */
static void
pos_reserve_locked (Writer *w)
{
  ArbStore *store = w->store;
  gint64 *fresh = g_new (gint64, POS_RESERVE);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  store->pos_reserving = TRUE;
  g_mutex_unlock (&store->lock);
  ok = writer_connect (w, &error) && store->backend->reserve_pos (w->conn, POS_RESERVE, fresh, &error);
  if (!ok && w->conn != NULL && store->backend->is_broken (w->conn))
    writer_drop_connection (w);
  g_mutex_lock (&store->lock);
  if (ok)
    {
      /* drop what was given, keep what was not, then the new ones (which
       * the sequence makes higher than any before) */
      if (store->pos_head > 0)
        {
          g_array_remove_range (store->pos_stock, 0, store->pos_head);
          store->pos_head = 0;
        }
      g_array_append_vals (store->pos_stock, fresh, POS_RESERVE);
    }
  else if (!store->outage)
    store_log (G_LOG_LEVEL_WARNING, "%s: reserving outbox positions: %s", store->display, error->message);
  store->pos_reserving = FALSE;
  wake_all_locked (store);
  g_free (fresh);
}

static guint
txn_outbox_rows (ArbStoreTxn *txn)
{
  guint n = 0;
  for (guint i = 0; i < txn->ops->len; i++)
    n += g_array_index (txn->ops, ArbStoreOp, i).kind == ARB_STORE_OP_INSERT_OUTBOX;
  return n;
}

/* gives the outbox rows of @group their pos, txn by txn; the txns that do
 * not fit in what is reserved go back to the head of the queue. Returns how
 * many txns stay in the group. */
static guint
pos_assign_locked (Writer *w, ArbStoreTxn **group, guint n)
{
  ArbStore *store = w->store;
  guint kept = 0;

  for (; kept < n; kept++)
    {
      ArbStoreTxn *txn = group[kept];
      if (txn_outbox_rows (txn) > pos_left_locked (store))
        break;
      for (guint i = 0; i < txn->ops->len; i++)
        {
          ArbStoreOp *op = &g_array_index (txn->ops, ArbStoreOp, i);
          if (op->kind != ARB_STORE_OP_INSERT_OUTBOX)
            continue;
          op->pos = g_array_index (store->pos_stock, gint64, store->pos_head++);
          w->min_pos = MIN (w->min_pos, op->pos);
          store->pos_last = op->pos;
        }
    }
  for (guint i = n; i > kept; i--)
    g_queue_push_head (&store->queue, group[i - 1]);
  return kept;
}

static gpointer
writer_main (gpointer data)
{
  Writer *w = data;
  ArbStore *store = w->store;
  g_autoptr(GMainContext) own = g_main_context_new ();
  ArbStoreTxn **group = g_new (ArbStoreTxn *, GROUP_CAP);
  /* the first writer keeps the partitions; the others only wait for work */
  gboolean maintainer = w->index == 0;

  g_main_context_push_thread_default (own);
  for (;;)
    {
      gboolean maintain = FALSE;
      GError *prefail = NULL;
      guint n = 0;

      g_mutex_lock (&store->lock);
      while (!store->quit && !work_for_locked (store, w))
        {
          if (!maintainer)
            g_cond_wait (&w->cond, &store->lock);
          else if (!g_cond_wait_until (&w->cond, &store->lock, store->next_maintenance_us))
            {
              maintain = TRUE;
              break;
            }
        }
      /* at quit the queues are emptied, held or not */
      if (store->quit && !own_work_locked (store, w))
        {
          g_mutex_unlock (&store->lock);
          break;
        }
      if (w->takes_ledger && store->explicit_pos && pos_left_locked (store) < POS_LOW && !store->pos_reserving)
        pos_reserve_locked (w);
      if (!store->held || store->quit)
        {
          /* the ledger first; a writer that takes both fills up with the
           * background */
          if (w->takes_ledger)
            while (n < GROUP_CAP && store->queue.length > 0)
              group[n++] = g_queue_pop_head (&store->queue);
          if (w->takes_background)
            while (n < GROUP_CAP && store->background.length > 0)
              group[n++] = g_queue_pop_head (&store->background);
        }
      if (n > 0 && store->explicit_pos)
        {
          n = pos_assign_locked (w, group, n);
          if (n == 0 && store->pos_reserving)
            {
              /* another writer is reserving: wait for it, then start over */
              g_cond_wait (&w->cond, &store->lock);
              g_mutex_unlock (&store->lock);
              continue;
            }
          if (n == 0)
            {
              /* nothing reserved, and reserving failed: the first txn fails
               * (the database is away), so that no caller waits forever */
              group[0] = g_queue_pop_head (&store->queue);
              prefail = g_error_new (ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE,
                                     "%s: no outbox positions could be reserved", store->display);
              n = 1;
            }
        }
      store->stats.queued = queued_locked (store);
      g_mutex_unlock (&store->lock);

      if (n > 0)
        run_group (w, group, n, prefail);
      g_clear_error (&prefail);
      if (maintainer && (maintain || g_get_monotonic_time () >= store->next_maintenance_us))
        {
          store->next_maintenance_us = g_get_monotonic_time () + MAINTENANCE_EVERY_US;
          run_maintenance (w);
        }
    }
  writer_drop_connection (w);
  g_main_context_pop_thread_default (own);
  g_free (group);
  return NULL;
}

/* ---- readers -------------------------------------------------------------- */

static void
read_job_free (ReadJob *job)
{
  g_free (job->assessment_id);
  g_free (job->before_id);
  if (job->result != NULL && job->result_free != NULL)
    job->result_free (job->result);
  g_clear_error (&job->error);
  if (job->context != NULL)
    g_main_context_unref (job->context);
  g_free (job);
}

static gboolean
read_job_dispatch (gpointer data)
{
  ReadJob *job = data;
  /* the array is lent to the callback, which refs it to keep it */
  job->rows_done (job->result, job->error, job->done_data);
  return G_SOURCE_REMOVE;
}

static gpointer
reader_main (gpointer data)
{
  ReaderArgs *args = data;
  ArbStore *store = args->store;
  const ArbStoreBackend *backend = store->backend;
  gpointer conn = g_steal_pointer (&args->conn);
  g_autoptr(GMainContext) own = g_main_context_new ();

  g_main_context_push_thread_default (own);
  g_free (args);
  for (;;)
    {
      ReadJob *job = g_async_queue_pop (store->reads);

      if (job->run == NULL)
        {
          read_job_free (job);
          break;
        }
      /* a read is safe to repeat: once more on a fresh connection when the
       * old one turns out to be gone */
      for (guint attempt = 0; attempt < 2; attempt++)
        {
          g_clear_error (&job->error);
          if (conn == NULL)
            {
              conn = connect_prepared (store, &job->error);
              if (conn == NULL)
                break;
            }
          job->result = job->run (backend, conn, job, &job->error);
          if (job->result != NULL || !backend->is_broken (conn))
            break;
          g_clear_pointer (&conn, backend->disconnect);
        }
      if (job->error != NULL)
        g_prefix_error (&job->error, "%s: ", store->display);
      if (job->waiter != NULL)
        waiter_wake (job->waiter);
      else
        invoke_on (job->context, read_job_dispatch, job, (GDestroyNotify) read_job_free);
    }
  if (conn != NULL)
    backend->disconnect (conn);
  g_main_context_pop_thread_default (own);
  return NULL;
}

/* runs @job on a reader thread and waits for it; returns the result */
static gpointer
read_sync (ArbStore *store, ReadJob *job, GError **error)
{
  ArbStoreWaiter waiter = { 0 };
  gpointer result;

  g_mutex_init (&waiter.lock);
  g_cond_init (&waiter.cond);
  job->waiter = &waiter;
  job->store = store;
  g_async_queue_push (store->reads, job);
  waiter_wait (&waiter);
  g_mutex_clear (&waiter.lock);
  g_cond_clear (&waiter.cond);
  result = g_steal_pointer (&job->result);
  if (result == NULL)
    {
      if (job->error != NULL)
        g_propagate_error (error, g_steal_pointer (&job->error));
      else
        g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_FAILED, "%s: the read failed without a reason",
                     store->display);
    }
  read_job_free (job);
  return result;
}

static gpointer
run_list_trades (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  return backend->list_trades (conn, job->assessment_id, job->before_seq, job->limit, error);
}

static gpointer
run_list_closed_positions (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  ArbPositionCursor after = { job->before_seq, job->before_id };
  return backend->list_closed_positions (conn, job->assessment_id, job->before_id != NULL ? &after : NULL, job->limit,
                                         error);
}

static gpointer
run_list_assessment_events (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  return backend->list_assessment_events (conn, job->assessment_id, job->limit, error);
}

static gpointer
run_outbox_pending (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  return backend->outbox_pending (conn, job->limit, error);
}

static gpointer
run_outbox_pending_for_sink (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  /* taken now, before the read's snapshot: every row up to it has
   * committed, or never will */
  gint64 upto = arb_store_outbox_visible_pos (job->store);
  return backend->outbox_pending_for_sink (conn, job->assessment_id, job->before_seq, upto, job->limit, error);
}

static gpointer
run_outbox_backlog (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  return backend->outbox_backlog (conn, job->assessment_id, job->before_seq, error);
}

static gpointer
run_audit_ledger (const ArbStoreBackend *backend, gpointer conn, ReadJob *job, GError **error)
{
  return backend->audit_ledger (conn, error);
}

static ReadJob *
read_job_new (ReadFunc run, const char *assessment_id, gint64 before_seq, guint limit)
{
  ReadJob *job = g_new0 (ReadJob, 1);
  job->run = run;
  job->assessment_id = g_strdup (assessment_id);
  job->before_seq = before_seq;
  job->limit = limit;
  job->result_free = (GDestroyNotify) g_ptr_array_unref;
  return job;
}

/* ---- the store ------------------------------------------------------------ */

void
arb_store_free (ArbStore *store)
{
  if (store == NULL)
    return;
  g_mutex_lock (&store->lock);
  store->quit = TRUE;
  wake_all_locked (store);
  g_mutex_unlock (&store->lock);
  for (guint i = 0; i < MAX_WRITERS; i++)
    if (store->writers[i].thread != NULL)
      g_thread_join (store->writers[i].thread);
  if (store->reads != NULL)
    {
      for (guint i = 0; i < READER_THREADS; i++)
        if (store->readers[i] != NULL)
          g_async_queue_push (store->reads, g_new0 (ReadJob, 1));
      for (guint i = 0; i < READER_THREADS; i++)
        if (store->readers[i] != NULL)
          g_thread_join (store->readers[i]);
      g_async_queue_unref (store->reads);
    }
  for (guint i = 0; i < READER_THREADS; i++)
    if (store->rconns[i] != NULL)
      store->backend->disconnect (store->rconns[i]);
  for (guint i = 0; i < MAX_WRITERS; i++)
    writer_drop_connection (&store->writers[i]);
  g_queue_clear_full (&store->queue, (GDestroyNotify) arb_store_txn_free);
  g_queue_clear_full (&store->background, (GDestroyNotify) arb_store_txn_free);
  if (store->pos_stock != NULL)
    g_array_unref (store->pos_stock);
  g_mutex_clear (&store->lock);
  for (guint i = 0; i < MAX_WRITERS; i++)
    g_cond_clear (&store->writers[i].cond);
  g_free (store->target);
  g_free (store->display);
  g_free (store);
}

/* how many writers, and which takes what; with several ledger writers, the
 * first outbox positions (on writer 0's connection, which is prepared) */
static void
store_plan_writers (ArbStore *store, guint ledger)
{
  const ArbStoreBackend *backend = store->backend;

  if (ledger > 1)
    {
      gint64 *first = g_new (gint64, POS_RESERVE);
      g_autoptr(GError) error = NULL;

      if (backend->reserve_pos != NULL && backend->reserve_pos (store->writers[0].conn, POS_RESERVE, first, &error))
        {
          store->explicit_pos = TRUE;
          g_array_append_vals (store->pos_stock, first, POS_RESERVE);
          /* every row there already has a lower pos */
          store->pos_last = first[0] - 1;
        }
      else
        {
          store_log (G_LOG_LEVEL_MESSAGE, "%s: one ledger writer (outbox positions cannot be reserved: %s)",
                     store->display, error != NULL ? error->message : "not supported");
          ledger = 1;
        }
      g_free (first);
    }
  store->n_writers = ledger + (backend->background_writer ? 1 : 0);
  for (guint i = 0; i < MAX_WRITERS; i++)
    {
      Writer *w = &store->writers[i];
      w->store = store;
      w->index = i;
      w->min_pos = G_MAXINT64;
      w->takes_ledger = i < ledger;
      w->takes_background = backend->background_writer ? i == ledger : i == 0;
    }
}

ArbStore *
arb_store_open (const char *uri, const char *base_dir, const char *migrations_dir, GError **error)
{
  return arb_store_open_full (uri, base_dir, migrations_dir, 1, error);
}

ArbStore *
arb_store_open_full (const char *uri, const char *base_dir, const char *migrations_dir, guint ledger_writers,
                     GError **error)
{
  g_autoptr(ArbStore) store = g_new0 (ArbStore, 1);
  g_autoptr(GPtrArray) migrations = NULL;

  g_mutex_init (&store->lock);
  for (guint i = 0; i < MAX_WRITERS; i++)
    g_cond_init (&store->writers[i].cond);
  g_queue_init (&store->queue);
  g_queue_init (&store->background);
  if (!parse_uri (store, uri, base_dir, error))
    return NULL;
  if (ledger_writers < 1 || ledger_writers > MIN (store->backend->max_ledger_writers, MAX_LEDGER_WRITERS))
    {
      g_set_error (error, ARB_STORE_ERROR, ARB_STORE_ERROR_URI,
                   "%s: %u ledger writers asked (store_ledger_writers): %s takes 1 to %u",
                   store->display, ledger_writers, store->backend->name,
                   MIN (store->backend->max_ledger_writers, MAX_LEDGER_WRITERS));
      return NULL;
    }
  migrations = load_migrations (migrations_dir, store->backend->name, error);
  if (migrations == NULL)
    return NULL;

  store->pos_stock = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < MAX_WRITERS; i++)
    store->writers[i].store = store;
  store->writers[0].conn = store->backend->connect (store->target, error);
  if (store->writers[0].conn == NULL)
    {
      g_prefix_error (error, "%s: ", store->display);
      return NULL;
    }
  if (!apply_migrations (store, store->writers[0].conn, migrations, error))
    return NULL;
  if ((store->backend->ensure_partitions != NULL
       && !store->backend->ensure_partitions (store->writers[0].conn, PARTITION_MONTHS, error))
      || !store->backend->prepare (store->writers[0].conn, error))
    {
      g_prefix_error (error, "%s: ", store->display);
      return NULL;
    }
  store_plan_writers (store, ledger_writers);
  for (guint i = 1; i < store->n_writers; i++)
    {
      store->writers[i].conn = connect_prepared (store, error);
      if (store->writers[i].conn == NULL)
        {
          g_prefix_error (error, "%s: ", store->display);
          return NULL;
        }
    }
  for (guint i = 0; i < READER_THREADS; i++)
    {
      store->rconns[i] = connect_prepared (store, error);
      if (store->rconns[i] == NULL)
        {
          g_prefix_error (error, "%s: ", store->display);
          return NULL;
        }
    }

  store->next_maintenance_us = g_get_monotonic_time () + MAINTENANCE_EVERY_US;
  for (guint i = 0; i < store->n_writers; i++)
    store->writers[i].thread = g_thread_new ("arb-store-writer", writer_main, &store->writers[i]);
  store->reads = g_async_queue_new ();
  for (guint i = 0; i < READER_THREADS; i++)
    {
      ReaderArgs *args = g_new0 (ReaderArgs, 1);
      args->store = store;
      args->conn = g_steal_pointer (&store->rconns[i]);
      store->readers[i] = g_thread_new ("arb-store-reader", reader_main, args);
    }
  return g_steal_pointer (&store);
}

const char *
arb_store_backend (ArbStore *store)
{
  return store->backend->name;
}

const char *
arb_store_display_uri (ArbStore *store)
{
  return store->display;
}

int
arb_store_schema_version (ArbStore *store)
{
  return store->schema_version;
}

void
arb_store_get_stats (ArbStore *store, ArbStoreStats *out)
{
  g_mutex_lock (&store->lock);
  *out = store->stats;
  out->queued = queued_locked (store);
  g_mutex_unlock (&store->lock);
}

void
arb_store_hold_writer (ArbStore *store, gboolean hold)
{
  g_mutex_lock (&store->lock);
  store->held = hold;
  wake_all_locked (store);
  g_mutex_unlock (&store->lock);
}

gboolean
arb_store_load (ArbStore *store, const ArbStoreLoadFuncs *funcs, gint64 idempotency_since_us, gpointer data,
                GError **error)
{
  gpointer conn;
  gboolean ok;

  /* a connection of its own, so that the callbacks run on this thread */
  conn = store->backend->connect (store->target, error);
  if (conn == NULL)
    {
      g_prefix_error (error, "%s: load: ", store->display);
      return FALSE;
    }
  ok = store->backend->load (conn, funcs, idempotency_since_us, data, error);
  store->backend->disconnect (conn);
  if (!ok)
    g_prefix_error (error, "%s: load: ", store->display);
  return ok;
}

gboolean
arb_store_ensure_partitions (ArbStore *store, guint months_ahead, GError **error)
{
  gpointer conn;
  gboolean ok;

  if (store->backend->ensure_partitions == NULL)
    return TRUE;
  conn = store->backend->connect (store->target, error);
  ok = conn != NULL && store->backend->ensure_partitions (conn, months_ahead, error);
  if (conn != NULL)
    store->backend->disconnect (conn);
  if (!ok)
    g_prefix_error (error, "%s: partitions: ", store->display);
  return ok;
}

static gboolean
fail_at_once (gpointer data)
{
  ArbStoreTxn *txn = data;
  txn_dispatch (txn);
  return G_SOURCE_REMOVE;
}

void
arb_store_commit_async (ArbStore *store, ArbStoreTxn *txn, ArbStoreDoneFunc done, gpointer data)
{
  txn->done = done;
  txn->done_data = data;
  txn->context = g_main_context_ref_thread_default ();

  g_mutex_lock (&store->lock);
  if (queued_locked (store) >= QUEUE_CAP)
    {
      store->stats.txns_failed++;
      g_mutex_unlock (&store->lock);
      g_set_error (&txn->error, ARB_STORE_ERROR, ARB_STORE_ERROR_UNAVAILABLE,
                   "%s: %u commits are waiting already", store->display, (guint) QUEUE_CAP);
      if (done == NULL)
        arb_store_txn_free (txn);
      else
        {
          /* never call back before this function has returned */
          GSource *source = g_idle_source_new ();
          g_source_set_priority (source, G_PRIORITY_DEFAULT);
          g_source_set_callback (source, fail_at_once, txn, (GDestroyNotify) arb_store_txn_free);
          g_source_attach (source, txn->context);
          g_source_unref (source);
        }
      return;
    }
  enqueue_locked (store, txn);
  g_mutex_unlock (&store->lock);
}

void
arb_store_set_metrics (ArbStore *store, ArbMetrics *metrics)
{
  g_mutex_lock (&store->lock);
  store->metrics = metrics;
  g_mutex_unlock (&store->lock);
}

gboolean
arb_store_commit_sync (ArbStore *store, ArbStoreTxn *txn, GError **error)
{
  ArbStoreWaiter waiter = { 0 };
  gboolean ok;

  g_mutex_init (&waiter.lock);
  g_cond_init (&waiter.cond);
  txn->waiter = &waiter;
  g_mutex_lock (&store->lock);
  enqueue_locked (store, txn);
  g_mutex_unlock (&store->lock);
  waiter_wait (&waiter);
  g_mutex_clear (&waiter.lock);
  g_cond_clear (&waiter.cond);
  ok = txn->error == NULL;
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&txn->error));
  arb_store_txn_free (txn);
  return ok;
}

static void
read_async (ArbStore *store, ReadJob *job, ArbStoreRowsFunc done, gpointer data)
{
  job->rows_done = done;
  job->done_data = data;
  job->context = g_main_context_ref_thread_default ();
  job->store = store;
  g_async_queue_push (store->reads, job);
}

void
arb_store_list_trades_async (ArbStore *store, const char *assessment_id, gint64 before_seq, guint limit,
                             ArbStoreTradesFunc done, gpointer data)
{
  read_async (store, read_job_new (run_list_trades, assessment_id, before_seq, limit), done, data);
}

GPtrArray *
arb_store_list_trades_sync (ArbStore *store, const char *assessment_id, gint64 before_seq, guint limit,
                            GError **error)
{
  return read_sync (store, read_job_new (run_list_trades, assessment_id, before_seq, limit), error);
}

static ReadJob *
closed_positions_job (const char *assessment_id, const ArbPositionCursor *after, guint limit)
{
  ReadJob *job = read_job_new (run_list_closed_positions, assessment_id, after != NULL ? after->closed_us : 0, limit);
  job->before_id = after != NULL ? g_strdup (after->id) : NULL;
  return job;
}

GPtrArray *
arb_store_list_closed_positions_sync (ArbStore *store, const char *assessment_id, const ArbPositionCursor *after,
                                      guint limit, GError **error)
{
  return read_sync (store, closed_positions_job (assessment_id, after, limit), error);
}

void
arb_store_list_closed_positions_async (ArbStore *store, const char *assessment_id, const ArbPositionCursor *after,
                                       guint limit, ArbStoreRowsFunc done, gpointer data)
{
  read_async (store, closed_positions_job (assessment_id, after, limit), done, data);
}

void
arb_store_list_assessment_events_async (ArbStore *store, const char *assessment_id, guint limit, ArbStoreRowsFunc done,
                                        gpointer data)
{
  read_async (store, read_job_new (run_list_assessment_events, assessment_id, 0, limit), done, data);
}

GPtrArray *
arb_store_outbox_pending_sync (ArbStore *store, guint limit, GError **error)
{
  return read_sync (store, read_job_new (run_outbox_pending, NULL, 0, limit), error);
}

GPtrArray *
arb_store_audit_ledger_sync (ArbStore *store, GError **error)
{
  return read_sync (store, read_job_new (run_audit_ledger, NULL, 0, 0), error);
}

/* ---- the outbox relay's reads and the prune -------------------------------- */

/* the sink's name travels in the job's assessment_id, the position in before_seq */
void
arb_store_outbox_pending_for_sink_async (ArbStore *store, const char *sink, gint64 after_pos, guint limit,
                                         ArbStoreRowsFunc done, gpointer data)
{
  read_async (store, read_job_new (run_outbox_pending_for_sink, sink, after_pos, limit), done, data);
}

GPtrArray *
arb_store_outbox_pending_for_sink_sync (ArbStore *store, const char *sink, gint64 after_pos, guint limit,
                                        GError **error)
{
  return read_sync (store, read_job_new (run_outbox_pending_for_sink, sink, after_pos, limit), error);
}

void
arb_store_outbox_backlog_async (ArbStore *store, const char *sink, gint64 after_pos, ArbStoreRowsFunc done,
                                gpointer data)
{
  read_async (store, read_job_new (run_outbox_backlog, sink, after_pos, 0), done, data);
}

GPtrArray *
arb_store_outbox_backlog_sync (ArbStore *store, const char *sink, gint64 after_pos, GError **error)
{
  return read_sync (store, read_job_new (run_outbox_backlog, sink, after_pos, 0), error);
}

/* the txn is alive while its callback runs (it is freed right after), and
 * the prune op it holds carries the caller's callback */
static void
prune_done (const GError *error, gpointer data)
{
  ArbStorePrune *prune = data;
  prune->done (error == NULL ? prune->deleted : 0, error, prune->done_data);
}

void
arb_store_prune_outbox_async (ArbStore *store, gint64 before_us, const char *const *sinks,
                              const char *const *patterns, guint limit, ArbStorePruneFunc done, gpointer data)
{
  ArbStoreTxn *txn = prune_txn_new (before_us, sinks, patterns, limit);
  ArbStorePrune *prune = g_array_index (txn->ops, ArbStoreOp, 0).u.prune;

  prune->done = done;
  prune->done_data = data;
  arb_store_commit_async (store, txn, done != NULL ? prune_done : NULL, prune);
}

gint64
arb_store_prune_outbox_sync (ArbStore *store, gint64 before_us, const char *const *sinks,
                             const char *const *patterns, guint limit, GError **error)
{
  ArbStoreTxn *txn = prune_txn_new (before_us, sinks, patterns, limit);
  ArbStoreWaiter waiter = { 0 };
  gint64 deleted;

  g_mutex_init (&waiter.lock);
  g_cond_init (&waiter.cond);
  txn->waiter = &waiter;
  g_mutex_lock (&store->lock);
  enqueue_locked (store, txn);
  g_mutex_unlock (&store->lock);
  waiter_wait (&waiter);
  g_mutex_clear (&waiter.lock);
  g_cond_clear (&waiter.cond);
  deleted = g_array_index (txn->ops, ArbStoreOp, 0).u.prune->deleted;
  if (txn->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&txn->error));
      deleted = -1;
    }
  arb_store_txn_free (txn);
  return deleted;
}
