/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-outbox-private.h"
#include "arb-store-private.h"

/* The outbox relay. See doc/outbox.md for the contract; the shape:
 *
 *   saga COMMIT ─notify─▶ cursor (per sink) ─read pos > cursor─▶ store reader
 *        rows ─▶ the sink's ledger queue (arb-relay.c) ─write─▶ plugin
 *        ack ─▶ (any thread) acks ─idle─▶ main: mark, or fail and rewind
 *        marks ─every 100 ms or 256─▶ store writer: outbox_delivery rows
 *
 * A sink has at most WINDOW events outstanding (queued or in flight). On a
 * failed acknowledgement the sink's queue is taken back, the sink settles
 * what it holds, its delivery rows are written, and after a backoff the
 * cursor goes back to the first row that failed: everything after it that
 * has no delivery row is handed over again, in pos order. An event of an
 * assessment that had an earlier event fail in the same pass is not marked
 * even when it was acknowledged, so that the next pass hands the two over
 * again in their order. */

/* events a sink may have outstanding: queued in the relay or in flight. It
 * bounds the memory a slow sink takes, and the throughput of a sink that
 * acknowledges late (sink-jsonl with fsync=interval acknowledges once a
 * second: at most WINDOW events a second) */
#define WINDOW              10000
/* rows one read asks for; a read waits until the sink has this much room */
#define READ_LIMIT          1000
/* acknowledgements that make a delivery transaction at once */
#define MARK_BATCH          256
/* the longest an acknowledgement waits before its row is written */
#define MARK_INTERVAL_US    (100 * 1000)
#define TICK_MS             100
/* after a failure: the first wait, doubling up to the cap */
#define BACKOFF_FIRST_MS    250
#define BACKOFF_CAP_MS      30000
/* after a failure, the longest the sink may take to settle what it holds
 * before the cursor rewinds anyway. Long: sink-kafka holds events up to its
 * delivery_timeout (5 minutes by default), and rewinding while it still
 * holds newer ones would put them before the older ones' new copies. */
#define DRAIN_TIMEOUT_US    (G_GINT64_CONSTANT (15) * 60 * G_USEC_PER_SEC)
/* a failed read of the store is tried again after this */
#define READ_RETRY_US       G_USEC_PER_SEC
/* the backlog count: at most this often, and never more than 2 % of the
 * time of one reader thread */
#define STATS_MIN_US        (1 * G_USEC_PER_SEC)
#define STATS_MAX_US        (60 * G_USEC_PER_SEC)
/* rows one prune deletes: it runs on the store's background writer (on
 * SQLite its one writer, between order commits), so it must stay short
 * (about 10 ms) */
#define PRUNE_LIMIT         1000
#define PRUNE_EVERY_MIN_MS  200
#define PRUNE_EVERY_MAX_MS  60000

/* what the async callbacks hold: the outbox may be gone when they run */
typedef struct {
  gint       refs;
  ArbOutbox *outbox; /* NULL once freed */
} Handle;

typedef enum {
  SINK_RUNNING,
  SINK_BACKOFF, /* a failure: waiting to rewind */
} SinkState;

typedef struct {
  gint64    pos;
  gint64    created_us;
  char     *assessment; /* owned, nullable */
  ArbEvent *event;      /* owned ref */
} Entry;

typedef struct _OutboxSink OutboxSink;

struct _OutboxSink {
  ArbOutbox   *outbox;
  ArbInstance *inst;
  char        *name;        /* "sink:kafka": the outbox_delivery.sink value */
  GHashTable  *outstanding; /* ArbEvent → Entry (owned) */
  gint64       cursor;      /* the last pos read in this pass */
  gint64       given_max;   /* the highest pos handed over in this process */
  guint        epoch;       /* one pass: bumped by each rewind */
  gboolean     reading;
  gboolean     dirty;       /* committed since the read in flight was sent */
  gboolean     more;        /* the last read filled its page */
  gint64       read_retry_at; /* monotonic */
  gboolean     read_failing;  /* logged once */

  SinkState    state;
  guint        backoff_ms;
  gint64       retry_at;      /* monotonic */
  gint64       failed_since;  /* monotonic */
  gboolean     down_at_failure;
  gint64       failed_min_pos;   /* G_MAXINT64: nothing failed this pass */
  GHashTable  *poisoned;         /* assessment ids with an event failed this pass */
  guint        marks_waiting;    /* in outbox->marks */
  guint        marks_writing;    /* in transactions not answered yet */

  gboolean     counting;
  gint64       count_next;       /* monotonic */
  gint64       count_every;
  gboolean     counted_once;
  gint64       pending;
  gdouble      lag_seconds;
};

typedef struct {
  ArbInstance *inst;
  ArbEvent    *event; /* owned ref */
  gboolean     ok;
} Ack;

typedef struct {
  char       *event_id;
  OutboxSink *sink;
  gint64      at_us;
} Mark;

struct _ArbOutbox {
  ArbHost   *host;
  ArbStore  *store;
  Handle    *handle;
  gint64     retention_us;
  GPtrArray *sinks;       /* OutboxSink, owned */
  gboolean   stopped;
  GSource   *tick;        /* owned */
  GSource   *prune_timer; /* owned */
  gboolean   pruning;
  gboolean   prune_failing;

  GMutex     ack_lock;    /* guards what follows */
  GArray    *acks;        /* Ack */
  gboolean   acks_scheduled;
  gboolean   acks_closed; /* stopped: later acknowledgements are dropped */

  GPtrArray *marks;       /* Mark, owned: delivery rows not yet sent to the store */
  gint64     marks_since; /* monotonic: when the oldest of them came */
  gboolean   marks_failing;
};

static void kick (OutboxSink *s);
static void flush_marks (ArbOutbox *o);

/* ------------------------------------------------------------------------ */
/* Plumbing                                                                 */

static Handle *
handle_ref (Handle *h)
{
  g_atomic_int_inc (&h->refs);
  return h;
}

static void
handle_unref (Handle *h)
{
  if (g_atomic_int_dec_and_test (&h->refs))
    g_free (h);
}

typedef struct {
  Handle     *handle;
  OutboxSink *sink;
  guint       epoch;
  guint       limit;
  gint64      started; /* monotonic */
} Call;

static Call *
call_new (OutboxSink *s)
{
  Call *c = g_new0 (Call, 1);
  c->handle = handle_ref (s->outbox->handle);
  c->sink = s;
  c->epoch = s->epoch;
  c->started = g_get_monotonic_time ();
  return c;
}

static void
call_free (Call *c)
{
  handle_unref (c->handle);
  g_free (c);
}

static void
sink_log (OutboxSink *s, GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
sink_log (OutboxSink *s, GLogLevelFlags level, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  arb_log_for (s->name, "outbox", level, message);
}

static void outbox_log (GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
outbox_log (GLogLevelFlags level, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  arb_log_for (NULL, "outbox", level, message);
}

static void
entry_free (Entry *e)
{
  arb_event_unref (e->event);
  g_free (e->assessment);
  g_free (e);
}

static void
mark_free (Mark *m)
{
  if (m == NULL)
    return; /* a slot taken back for the next try */
  g_free (m->event_id);
  g_free (m);
}

static void
sink_free (OutboxSink *s)
{
  g_hash_table_unref (s->outstanding);
  g_hash_table_unref (s->poisoned);
  g_free (s->name);
  g_free (s);
}

static OutboxSink *
find_sink (ArbOutbox *o, ArbInstance *inst)
{
  for (guint i = 0; i < o->sinks->len; i++)
    {
      OutboxSink *s = g_ptr_array_index (o->sinks, i);
      if (s->inst == inst)
        return s;
    }
  return NULL;
}

static ArbMetrics *
metrics (OutboxSink *s)
{
  return s->outbox->host->metrics;
}

/* ------------------------------------------------------------------------ */
/* Subscriptions                                                            */

/* a market event type or family, which the outbox never holds */
static gboolean
is_market_type (const char *t)
{
  return g_str_equal (t, "market") || g_str_equal (t, "quote") || g_str_has_prefix (t, "market.")
         || g_str_has_prefix (t, "feed.");
}

/* What @events (a sink's events= list) takes from the outbox, as the
 * patterns of the prune statement: "*" (everything), "prefix.*" or a type.
 * Empty: the sink takes no ledger event. The same reading as
 * arb_event_type_matches(). */
static GStrv
ledger_patterns (const char *const *events)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  if (events == NULL || events[0] == NULL)
    g_strv_builder_add (b, "*");
  for (guint i = 0; events != NULL && events[i] != NULL; i++)
    {
      const char *t = events[i];
      if (g_str_equal (t, "all") || g_str_equal (t, "ledger"))
        g_strv_builder_add (b, "*");
      else if (!is_market_type (t))
        g_strv_builder_add (b, t);
    }
  return g_strv_builder_end (b);
}

static gboolean
sink_takes (OutboxSink *s, const char *type)
{
  return arb_event_type_matches ((const char *const *) s->inst->events, type, TRUE);
}

/* ------------------------------------------------------------------------ */
/* Events from rows                                                         */

/* the correlationId of an envelope; the outbox keeps it only there */
static char *
envelope_correlation_id (const char *json)
{
  static const char key[] = "\"correlationId\":";
  const char *p = json != NULL ? strstr (json, key) : NULL;
  const char *end;
  g_autoptr(JsonParser) parser = NULL;
  JsonNode *root;

  if (p == NULL)
    return NULL;
  p += strlen (key);
  while (*p == ' ')
    p++;
  if (*p != '"')
    return NULL; /* null */
  end = strchr (p + 1, '"');
  if (end != NULL && memchr (p + 1, '\\', (gsize) (end - p - 1)) == NULL)
    return g_strndup (p + 1, (gsize) (end - p - 1));
  /* an escape in it: the real parser */
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, json, -1, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return g_strdup (json_object_get_string_member_with_default (json_node_get_object (root), "correlationId", NULL));
}

static ArbEvent *
event_from_entry (const ArbOutboxEntry *e)
{
  g_autofree char *cid = envelope_correlation_id (e->row.payload);
  return arb_event_new_from_outbox (e->row.id, e->row.type, e->row.key, e->row.assessment_id, cid,
                                    e->row.created_us, e->row.payload);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

static void
on_read (GPtrArray *rows, const GError *error, gpointer data)
{
  Call *c = data;
  ArbOutbox *o = c->handle->outbox;
  OutboxSink *s = c->sink;
  guint again = 0;

  if (o == NULL)
    {
      call_free (c);
      return;
    }
  s->reading = FALSE;
  if (error != NULL)
    {
      if (!s->read_failing)
        sink_log (s, G_LOG_LEVEL_WARNING, "reading the outbox: %s (trying again every second)", error->message);
      s->read_failing = TRUE;
      s->dirty = TRUE;
      s->read_retry_at = g_get_monotonic_time () + READ_RETRY_US;
      call_free (c);
      return;
    }
  if (s->read_failing)
    sink_log (s, G_LOG_LEVEL_MESSAGE, "reading the outbox again");
  s->read_failing = FALSE;
  /* rewound (or stopped) while the read was out: these rows come again */
  if (o->stopped || c->epoch != s->epoch || s->state != SINK_RUNNING)
    {
      s->dirty = TRUE;
      call_free (c);
      kick (s);
      return;
    }
  for (guint i = 0; i < rows->len; i++)
    {
      const ArbOutboxEntry *row = g_ptr_array_index (rows, i);
      Entry *e;

      s->cursor = MAX (s->cursor, row->pos);
      if (!sink_takes (s, row->row.type))
        continue;
      e = g_new0 (Entry, 1);
      e->pos = row->pos;
      e->created_us = row->row.created_us;
      e->assessment = g_strdup (row->row.assessment_id);
      e->event = event_from_entry (row);
      g_hash_table_insert (s->outstanding, e->event, e);
      if (row->pos <= s->given_max)
        again++;
      else
        s->given_max = row->pos;
      if (!arb_relay_push_ledger (o->host->relay, s->inst, e->event))
        {
          /* the relay is shutting down; the rest stays in the outbox */
          g_hash_table_remove (s->outstanding, e->event);
          break;
        }
    }
  if (again > 0)
    arb_metrics_counter_add (metrics (s), "arb_outbox_redelivered_total", s->inst->labels, again);
  s->more = rows->len >= c->limit;
  call_free (c);
  kick (s);
}

/* reads on when something new committed or the last page was full, and the
 * sink has room */
static void
kick (OutboxSink *s)
{
  ArbOutbox *o = s->outbox;
  guint outstanding = g_hash_table_size (s->outstanding);
  guint room = outstanding < WINDOW ? WINDOW - outstanding : 0;
  Call *c;

  if (o->stopped || s->state != SINK_RUNNING || s->reading || (!s->dirty && !s->more))
    return;
  if (g_get_monotonic_time () < s->read_retry_at)
    return;
  /* small reads while the sink is busy cost more than they bring */
  if (room < READ_LIMIT)
    return;
  c = call_new (s);
  c->limit = MIN (room, READ_LIMIT);
  s->reading = TRUE;
  s->dirty = FALSE;
  arb_store_outbox_pending_for_sink_async (o->store, s->name, s->cursor, c->limit, on_read, c);
}

/* ------------------------------------------------------------------------ */
/* Failures and rewinds                                                     */

/* @pos was not delivered in this pass: the next pass starts at or before it */
static void
not_delivered (OutboxSink *s, gint64 pos)
{
  s->failed_min_pos = MIN (s->failed_min_pos, pos);
}

static void
enter_backoff (OutboxSink *s, const char *why)
{
  ArbOutbox *o = s->outbox;
  g_autoptr(GPtrArray) back = NULL;
  gint64 now = g_get_monotonic_time ();

  s->state = SINK_BACKOFF;
  s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_FIRST_MS : MIN (s->backoff_ms * 2, BACKOFF_CAP_MS);
  s->retry_at = now + (gint64) s->backoff_ms * 1000;
  s->failed_since = now;
  s->down_at_failure = !arb_instance_is_up (s->inst);
  /* what the sink was not given yet would only fail too */
  back = arb_relay_take_back_ledger (o->host->relay, s->inst);
  for (guint i = 0; i < back->len; i++)
    {
      Entry *e = g_hash_table_lookup (s->outstanding, g_ptr_array_index (back, i));
      if (e == NULL)
        continue;
      not_delivered (s, e->pos);
      g_hash_table_remove (s->outstanding, g_ptr_array_index (back, i));
    }
  /* one line per outage, not one per event; none for what stop fails */
  if (s->backoff_ms == BACKOFF_FIRST_MS && !o->stopped)
    sink_log (s, G_LOG_LEVEL_WARNING, "ledger event not delivered (%s); delivering again from outbox position %"
              G_GINT64_FORMAT " once the sink takes events again", why, s->failed_min_pos);
}

static void
rewind_cursor (OutboxSink *s)
{
  if (s->failed_min_pos != G_MAXINT64)
    s->cursor = MIN (s->cursor, s->failed_min_pos - 1);
  s->failed_min_pos = G_MAXINT64;
  g_hash_table_remove_all (s->poisoned);
  s->epoch++;
  s->state = SINK_RUNNING;
  s->dirty = TRUE;
  s->more = FALSE;
  kick (s);
}

/* called each tick for a sink in backoff */
static void
maybe_rewind (OutboxSink *s)
{
  gint64 now = g_get_monotonic_time ();
  gboolean ready;

  /* the sink must settle what it holds first, or an old event could reach it
   * after a newer copy; a sink that never answers is not waited for forever */
  if (g_hash_table_size (s->outstanding) > 0)
    {
      GHashTableIter it;
      gpointer value;

      if (now - s->failed_since < DRAIN_TIMEOUT_US)
        return;
      sink_log (s, G_LOG_LEVEL_WARNING, "%u ledger events still unanswered after %d min; delivering them again",
                g_hash_table_size (s->outstanding), (int) (DRAIN_TIMEOUT_US / G_USEC_PER_SEC / 60));
      g_hash_table_iter_init (&it, s->outstanding);
      while (g_hash_table_iter_next (&it, NULL, &value))
        not_delivered (s, ((Entry *) value)->pos);
      g_hash_table_remove_all (s->outstanding);
    }
  /* early when the sink was down and is up again */
  ready = now >= s->retry_at || (s->down_at_failure && arb_instance_is_up (s->inst));
  if (!ready)
    return;
  /* its delivery rows first, so that the next pass skips what arrived */
  if (s->marks_waiting > 0)
    {
      flush_marks (s->outbox);
      return;
    }
  if (s->marks_writing > 0)
    return;
  rewind_cursor (s);
}

/* ------------------------------------------------------------------------ */
/* Acknowledgements                                                         */

static void
take_ack (ArbOutbox *o, const Ack *a)
{
  OutboxSink *s = find_sink (o, a->inst);
  Entry *e;

  if (s == NULL)
    return;
  e = g_hash_table_lookup (s->outstanding, a->event);
  /* published straight to the relay, or given up on after a timeout */
  if (e == NULL)
    return;
  if (a->ok && (e->assessment == NULL || !g_hash_table_contains (s->poisoned, e->assessment)))
    {
      Mark *m = g_new0 (Mark, 1);
      m->event_id = g_strdup (arb_event_get_id (e->event));
      m->sink = s;
      m->at_us = arb_now_us ();
      if (o->marks->len == 0)
        o->marks_since = g_get_monotonic_time ();
      g_ptr_array_add (o->marks, m);
      s->marks_waiting++;
      if (s->state == SINK_RUNNING)
        s->backoff_ms = 0;
    }
  else
    {
      /* failed, or acknowledged after an earlier event of its assessment
       * failed: it goes again, after that one */
      not_delivered (s, e->pos);
      if (e->assessment != NULL)
        g_hash_table_add (s->poisoned, g_strdup (e->assessment));
      if (s->state == SINK_RUNNING)
        {
          g_autofree char *why = g_strdup_printf ("event %s failed", arb_event_get_id (e->event));
          enter_backoff (s, why);
        }
    }
  g_hash_table_remove (s->outstanding, a->event);
}

static void
process_acks (ArbOutbox *o)
{
  g_autoptr(GArray) acks = NULL;

  g_mutex_lock (&o->ack_lock);
  acks = o->acks;
  o->acks = g_array_new (FALSE, FALSE, sizeof (Ack));
  o->acks_scheduled = FALSE;
  g_mutex_unlock (&o->ack_lock);

  for (guint i = 0; i < acks->len; i++)
    {
      Ack *a = &g_array_index (acks, Ack, i);
      take_ack (o, a);
      arb_event_unref (a->event);
    }
  if (o->marks->len >= MARK_BATCH && !o->stopped)
    flush_marks (o);
  for (guint i = 0; i < o->sinks->len && acks->len > 0; i++)
    kick (g_ptr_array_index (o->sinks, i));
}

static gboolean
acks_dispatch (gpointer data)
{
  Handle *h = data;
  if (h->outbox != NULL)
    process_acks (h->outbox);
  return G_SOURCE_REMOVE;
}

void
arb_outbox_on_ack (ArbOutbox *outbox, ArbInstance *inst, ArbEvent *event, const GError *error)
{
  Ack a = { inst, NULL, error == NULL };
  gboolean schedule;

  g_mutex_lock (&outbox->ack_lock);
  if (outbox->acks_closed)
    {
      g_mutex_unlock (&outbox->ack_lock);
      return;
    }
  a.event = arb_event_ref (event);
  g_array_append_val (outbox->acks, a);
  schedule = !outbox->acks_scheduled;
  outbox->acks_scheduled = TRUE;
  g_mutex_unlock (&outbox->ack_lock);
  /* one idle source per burst; never inline, even on the main thread: the
   * caller may be inside the relay or the plugin */
  if (schedule)
    {
      GSource *source = g_idle_source_new ();
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, acks_dispatch, handle_ref (outbox->handle), (GDestroyNotify) handle_unref);
      g_source_set_name (source, "arb-outbox-acks");
      g_source_attach (source, outbox->host->context);
      g_source_unref (source);
    }
}

/* ------------------------------------------------------------------------ */
/* Delivery rows                                                            */

typedef struct {
  Handle    *handle;
  GPtrArray *marks; /* Mark, owned */
} MarkBatch;

static void
marks_done (const GError *error, gpointer data)
{
  MarkBatch *b = data;
  ArbOutbox *o = b->handle->outbox;

  if (o != NULL)
    {
      for (guint i = 0; i < b->marks->len; i++)
        ((Mark *) g_ptr_array_index (b->marks, i))->sink->marks_writing--;
      if (error != NULL)
        {
          /* kept for the next try: the events are delivered, only their rows are missing */
          if (!o->marks_failing)
            outbox_log (G_LOG_LEVEL_WARNING, "writing delivery rows: %s (trying again)", error->message);
          o->marks_failing = TRUE;
          if (o->marks->len == 0)
            o->marks_since = g_get_monotonic_time ();
          for (guint i = 0; i < b->marks->len; i++)
            {
              Mark *m = g_ptr_array_index (b->marks, i);
              m->sink->marks_waiting++;
              g_ptr_array_add (o->marks, g_steal_pointer (&b->marks->pdata[i]));
            }
        }
      else
        {
          if (o->marks_failing)
            outbox_log (G_LOG_LEVEL_MESSAGE, "delivery rows are written again");
          o->marks_failing = FALSE;
          for (guint i = 0; i < b->marks->len; i++)
            {
              Mark *m = g_ptr_array_index (b->marks, i);
              arb_metrics_counter_add (o->host->metrics, "arb_outbox_delivered_total", m->sink->inst->labels, 1);
            }
        }
    }
  g_ptr_array_unref (b->marks);
  handle_unref (b->handle);
  g_free (b);
}

static ArbStoreTxn *
marks_txn (GPtrArray *marks)
{
  ArbStoreTxn *txn = arb_store_txn_new ();
  for (guint i = 0; i < marks->len; i++)
    {
      Mark *m = g_ptr_array_index (marks, i);
      arb_store_txn_insert_delivery (txn, m->event_id, m->sink->name, m->at_us);
    }
  return txn;
}

/* the waiting delivery rows, as one transaction on the store's background writer */
static void
flush_marks (ArbOutbox *o)
{
  MarkBatch *b;

  if (o->marks->len == 0)
    return;
  b = g_new0 (MarkBatch, 1);
  b->handle = handle_ref (o->handle);
  b->marks = g_steal_pointer (&o->marks);
  o->marks = g_ptr_array_new_with_free_func ((GDestroyNotify) mark_free);
  for (guint i = 0; i < b->marks->len; i++)
    {
      Mark *m = g_ptr_array_index (b->marks, i);
      m->sink->marks_waiting--;
      m->sink->marks_writing++;
    }
  arb_store_commit_async (o->store, marks_txn (b->marks), marks_done, b);
}

/* ------------------------------------------------------------------------ */
/* Counting what is left                                                    */

static void
on_backlog (GPtrArray *rows, const GError *error, gpointer data)
{
  Call *c = data;
  ArbOutbox *o = c->handle->outbox;
  OutboxSink *s = c->sink;
  gint64 took, pending = 0, oldest = 0;

  if (o == NULL)
    {
      call_free (c);
      return;
    }
  s->counting = FALSE;
  took = g_get_monotonic_time () - c->started;
  s->count_every = CLAMP (took * 50, STATS_MIN_US, STATS_MAX_US);
  s->count_next = g_get_monotonic_time () + s->count_every;
  if (error == NULL)
    {
      for (guint i = 0; i < rows->len; i++)
        {
          const ArbOutboxBacklog *b = g_ptr_array_index (rows, i);
          if (!sink_takes (s, b->type))
            continue;
          pending += b->count;
          if (oldest == 0 || b->oldest_us < oldest)
            oldest = b->oldest_us;
        }
      s->pending = pending;
      s->lag_seconds = oldest != 0 ? MAX (0, (gdouble) (arb_now_us () - oldest) / G_USEC_PER_SEC) : 0;
      arb_metrics_gauge_set (metrics (s), "arb_sink_outbox_pending", s->inst->labels, (gdouble) s->pending);
      arb_metrics_gauge_set (metrics (s), "arb_outbox_lag_seconds", s->inst->labels, s->lag_seconds);
      if (!s->counted_once && pending > 0)
        sink_log (s, G_LOG_LEVEL_INFO, "%" G_GINT64_FORMAT " ledger events to deliver from the outbox, the oldest "
                  "%.0f s old", pending, s->lag_seconds);
      s->counted_once = TRUE;
    }
  call_free (c);
}

/* the lowest pos that may still be undelivered, minus one: everything up to
 * it is delivered, or is not for this sink */
static gint64
low_water (OutboxSink *s)
{
  gint64 low = s->cursor;
  GHashTableIter it;
  gpointer value;

  if (s->failed_min_pos != G_MAXINT64)
    low = MIN (low, s->failed_min_pos - 1);
  g_hash_table_iter_init (&it, s->outstanding);
  while (g_hash_table_iter_next (&it, NULL, &value))
    low = MIN (low, ((Entry *) value)->pos - 1);
  return MAX (low, 0);
}

static void
count_backlog (OutboxSink *s)
{
  s->counting = TRUE;
  arb_store_outbox_backlog_async (s->outbox->store, s->name, low_water (s), on_backlog, call_new (s));
}

/* ------------------------------------------------------------------------ */
/* Pruning                                                                  */

static void prune (ArbOutbox *o);

static void
on_pruned (gint64 deleted, const GError *error, gpointer data)
{
  Handle *h = data;
  ArbOutbox *o = h->outbox;

  if (o != NULL)
    {
      o->pruning = FALSE;
      if (error != NULL)
        {
          if (!o->prune_failing)
            outbox_log (G_LOG_LEVEL_WARNING, "pruning the outbox: %s (trying again later)", error->message);
          o->prune_failing = TRUE;
        }
      else
        {
          o->prune_failing = FALSE;
          arb_metrics_counter_add (o->host->metrics, "arb_outbox_pruned_total", NULL, (guint64) deleted);
          /* a full batch: there is more, go on at once */
          if (deleted >= PRUNE_LIMIT && !o->stopped)
            prune (o);
        }
    }
  handle_unref (h);
}

static void
prune (ArbOutbox *o)
{
  g_autoptr(GStrvBuilder) sinks = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) patterns = g_strv_builder_new ();
  g_auto(GStrv) sink_v = NULL;
  g_auto(GStrv) pattern_v = NULL;

  if (o->pruning || o->stopped)
    return;
  /* every sink the config names, running or not: one that is down keeps
   * its rows until it had them; a plugin that cannot load holds nothing */
  for (guint i = 0; i < o->host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (o->host->instances, i);
      g_auto(GStrv) p = NULL;

      if (inst->kind != ARB_PLUGIN_SINK || inst->module == NULL)
        continue;
      p = ledger_patterns ((const char *const *) inst->events);
      for (guint j = 0; p[j] != NULL; j++)
        {
          g_strv_builder_add (sinks, inst->name);
          g_strv_builder_add (patterns, p[j]);
        }
    }
  sink_v = g_strv_builder_end (sinks);
  pattern_v = g_strv_builder_end (patterns);
  o->pruning = TRUE;
  arb_store_prune_outbox_async (o->store, arb_now_us () - o->retention_us, (const char *const *) sink_v,
                                (const char *const *) pattern_v, PRUNE_LIMIT, on_pruned, handle_ref (o->handle));
}

static gboolean
prune_tick (gpointer data)
{
  prune (data);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* The tick                                                                 */

static gboolean
tick (gpointer data)
{
  ArbOutbox *o = data;
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < o->sinks->len; i++)
    {
      OutboxSink *s = g_ptr_array_index (o->sinks, i);
      if (s->state == SINK_BACKOFF)
        maybe_rewind (s);
      else
        kick (s);
      if (!s->counting && now >= s->count_next)
        count_backlog (s);
    }
  if (o->marks->len > 0 && now - o->marks_since >= MARK_INTERVAL_US)
    flush_marks (o);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* The outbox                                                               */

static GSource *
attach_timeout (ArbOutbox *o, guint interval_ms, GSourceFunc func, const char *name)
{
  GSource *source = g_timeout_source_new (interval_ms);
  g_source_set_callback (source, func, o, NULL);
  g_source_set_name (source, name);
  g_source_attach (source, o->host->context);
  return source;
}

ArbOutbox *
arb_outbox_new (ArbHost *host)
{
  ArbOutbox *o = g_new0 (ArbOutbox, 1);
  ArbMetrics *m = host->metrics;
  gint64 retention_ms = arb_config_values_get_duration_ms (host->runtime, "outbox_retention");

  o->host = host;
  o->store = host->store;
  o->handle = g_new0 (Handle, 1);
  o->handle->refs = 1;
  o->handle->outbox = o;
  o->retention_us = retention_ms * 1000;
  o->sinks = g_ptr_array_new_with_free_func ((GDestroyNotify) sink_free);
  g_mutex_init (&o->ack_lock);
  o->acks = g_array_new (FALSE, FALSE, sizeof (Ack));
  o->marks = g_ptr_array_new_with_free_func ((GDestroyNotify) mark_free);

  arb_metrics_declare (m, "arb_sink_outbox_pending", ARB_METRIC_GAUGE,
                       "ledger events in the outbox not yet delivered to the sink (counted every few seconds)");
  arb_metrics_declare (m, "arb_outbox_lag_seconds", ARB_METRIC_GAUGE,
                       "age of the oldest ledger event not yet delivered to the sink");
  arb_metrics_declare (m, "arb_outbox_delivered_total", ARB_METRIC_COUNTER,
                       "ledger events the sink acknowledged, marked delivered in the store");
  arb_metrics_declare (m, "arb_outbox_redelivered_total", ARB_METRIC_COUNTER,
                       "ledger events handed to the sink again after a failure");
  arb_metrics_declare (m, "arb_outbox_pruned_total", ARB_METRIC_COUNTER,
                       "outbox rows deleted after the retention");

  o->tick = attach_timeout (o, TICK_MS, tick, "arb-outbox-tick");
  o->prune_timer = attach_timeout (o, (guint) CLAMP (retention_ms / 4, PRUNE_EVERY_MIN_MS, PRUNE_EVERY_MAX_MS),
                                   prune_tick, "arb-outbox-prune");
  return o;
}

void
arb_outbox_attach (ArbOutbox *outbox, ArbInstance *inst)
{
  g_auto(GStrv) patterns = NULL;
  OutboxSink *s;

  if (outbox->stopped || find_sink (outbox, inst) != NULL)
    return;
  patterns = ledger_patterns ((const char *const *) inst->events);
  if (patterns[0] == NULL)
    return;
  s = g_new0 (OutboxSink, 1);
  s->outbox = outbox;
  s->inst = inst;
  s->name = g_strdup (inst->name);
  s->outstanding = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) entry_free);
  s->poisoned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  s->failed_min_pos = G_MAXINT64;
  s->state = SINK_RUNNING;
  /* from the start of the outbox: whatever it has no delivery row for */
  s->dirty = TRUE;
  s->count_every = STATS_MIN_US;
  g_ptr_array_add (outbox->sinks, s);
  arb_metrics_counter_add (outbox->host->metrics, "arb_outbox_delivered_total", inst->labels, 0);
  arb_metrics_counter_add (outbox->host->metrics, "arb_outbox_redelivered_total", inst->labels, 0);
  kick (s);
  count_backlog (s);
}

void
arb_outbox_notify (ArbOutbox *outbox)
{
  if (outbox->stopped)
    return;
  for (guint i = 0; i < outbox->sinks->len; i++)
    {
      OutboxSink *s = g_ptr_array_index (outbox->sinks, i);
      s->dirty = TRUE;
      kick (s);
    }
}

gboolean
arb_outbox_get_backlog (ArbOutbox *outbox, ArbInstance *inst, gint64 *pending, gdouble *lag_seconds)
{
  OutboxSink *s = outbox != NULL ? find_sink (outbox, inst) : NULL;

  if (s == NULL)
    return FALSE;
  if (pending != NULL)
    *pending = s->pending;
  if (lag_seconds != NULL)
    *lag_seconds = s->lag_seconds;
  return TRUE;
}

static void
destroy_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

void
arb_outbox_stop (ArbOutbox *outbox)
{
  g_autoptr(GError) error = NULL;

  if (outbox == NULL || outbox->stopped)
    return;
  outbox->stopped = TRUE;
  destroy_source (&outbox->tick);
  destroy_source (&outbox->prune_timer);
  /* what the sinks acknowledged while draining, and nothing after */
  process_acks (outbox);
  g_mutex_lock (&outbox->ack_lock);
  outbox->acks_closed = TRUE;
  g_mutex_unlock (&outbox->ack_lock);
  if (outbox->marks->len > 0)
    {
      guint n = outbox->marks->len;
      if (!arb_store_commit_sync (outbox->store, marks_txn (outbox->marks), &error))
        outbox_log (G_LOG_LEVEL_WARNING, "writing %u delivery rows at stop: %s (those events are delivered again "
                    "at the next start)", n, error->message);
      else
        for (guint i = 0; i < n; i++)
          {
            Mark *m = g_ptr_array_index (outbox->marks, i);
            arb_metrics_counter_add (outbox->host->metrics, "arb_outbox_delivered_total", m->sink->inst->labels, 1);
          }
      g_ptr_array_set_size (outbox->marks, 0);
    }
  for (guint i = 0; i < outbox->sinks->len; i++)
    g_hash_table_remove_all (((OutboxSink *) g_ptr_array_index (outbox->sinks, i))->outstanding);
}

void
arb_outbox_free (ArbOutbox *outbox)
{
  if (outbox == NULL)
    return;
  /* not stopped: the store may be gone already, so nothing is written (what
   * was acknowledged meanwhile is delivered again at the next start) */
  if (!outbox->stopped)
    {
      outbox->stopped = TRUE;
      destroy_source (&outbox->tick);
      destroy_source (&outbox->prune_timer);
    }
  outbox->handle->outbox = NULL;
  handle_unref (outbox->handle);
  for (guint i = 0; i < outbox->acks->len; i++)
    arb_event_unref (g_array_index (outbox->acks, Ack, i).event);
  g_array_unref (outbox->acks);
  g_ptr_array_unref (outbox->marks);
  g_ptr_array_unref (outbox->sinks);
  g_mutex_clear (&outbox->ack_lock);
  g_free (outbox);
}
