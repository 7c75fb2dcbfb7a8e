/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "arb-host-private.h"
#include "arb-ledger-private.h"
#include "arb-outbox-private.h"

/* how long a queue must be idle before the sink is asked to flush */
#define IDLE_FLUSH_US   (200 * 1000)
#define MAX_BATCH       256
#define BACKOFF_FIRST_MS 100
#define BACKOFF_CAP_MS   5000

struct _ArbSinkQueue {
  ArbRelay    *relay;
  ArbInstance *inst;
  GMutex       lock;
  GCond        cond;
  GQueue       events;     /* ArbEvent, owned: published, bounded by capacity */
  GQueue       ledger;     /* ArbEvent, owned: from the outbox, bounded by it */
  guint        capacity;
  GHashTable  *in_flight;  /* ArbEvent → ArbEvent (owned ref) */
  gboolean     quit;
  gint64       quit_deadline; /* monotonic */
  gboolean     unflushed;  /* something was written since the last flush */
  GThread     *thread;
  char        *labels;
};

struct _ArbRelay {
  ArbHost   *host;
  GMutex     lock;   /* guards queues */
  GPtrArray *queues; /* ArbSinkQueue */
  ArbOutbox *outbox; /* owned, nullable; set before the sinks start */
};

ArbRelay *
arb_relay_new (ArbHost *host)
{
  ArbRelay *relay = g_new0 (ArbRelay, 1);
  relay->host = host;
  g_mutex_init (&relay->lock);
  relay->queues = g_ptr_array_new ();
  return relay;
}

static void
queue_free (ArbSinkQueue *q)
{
  g_queue_clear_full (&q->events, (GDestroyNotify) arb_event_unref);
  g_queue_clear_full (&q->ledger, (GDestroyNotify) arb_event_unref);
  g_hash_table_unref (q->in_flight);
  g_mutex_clear (&q->lock);
  g_cond_clear (&q->cond);
  g_free (q->labels);
  g_free (q);
}

void
arb_relay_free (ArbRelay *relay)
{
  if (relay == NULL)
    return;
  arb_relay_shutdown (relay, 0);
  for (guint i = 0; i < relay->queues->len; i++)
    {
      ArbSinkQueue *q = g_ptr_array_index (relay->queues, i);
      q->inst->queue = NULL;
      queue_free (q);
    }
  g_ptr_array_unref (relay->queues);
  g_clear_pointer (&relay->outbox, arb_outbox_free);
  g_mutex_clear (&relay->lock);
  g_free (relay);
}

/* what waits in the queue: published events and the outbox's */
static guint
queue_depth (ArbSinkQueue *q)
{
  return q->events.length + q->ledger.length;
}

static void
export_depth (ArbSinkQueue *q)
{
  ArbMetrics *m = q->relay->host->metrics;
  arb_metrics_gauge_set (m, "arb_sink_queued", q->labels, (gdouble) queue_depth (q));
  arb_metrics_gauge_set (m, "arb_sink_in_flight", q->labels, (gdouble) g_hash_table_size (q->in_flight));
}

/* fails every event of @batch the sink has not acknowledged */
static void
fail_unacked (ArbSinkQueue *q, ArbBatch *batch, const GError *error)
{
  for (guint i = 0; i < arb_batch_get_length (batch); i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);
      gboolean pending;
      g_mutex_lock (&q->lock);
      pending = g_hash_table_contains (q->in_flight, ev);
      g_mutex_unlock (&q->lock);
      if (pending)
        arb_relay_ack (q->relay, q->inst, ev, error);
    }
}

/* moves events from @from into @batch (up to MAX_BATCH) and in flight */
static void
take_into (ArbSinkQueue *q, GQueue *from, ArbBatch *batch)
{
  while (from->length > 0 && arb_batch_get_length (batch) < MAX_BATCH)
    {
      ArbEvent *ev = g_queue_pop_head (from);
      arb_batch_add (batch, ev);
      /* the in-flight table takes over the queue's reference */
      g_hash_table_insert (q->in_flight, ev, ev);
    }
}

static gpointer
worker (gpointer data)
{
  ArbSinkQueue *q = data;
  guint backoff_ms = 0;

  for (;;)
    {
      g_autoptr(ArbBatch) batch = NULL;
      g_autoptr(GError) error = NULL;
      gboolean flush_now = FALSE;

      g_mutex_lock (&q->lock);
      while (queue_depth (q) == 0 && !q->quit)
        {
          gint64 until = g_get_monotonic_time () + IDLE_FLUSH_US;
          if (!g_cond_wait_until (&q->cond, &q->lock, until) && q->unflushed && queue_depth (q) == 0)
            {
              flush_now = TRUE;
              break;
            }
        }
      if (flush_now)
        {
          q->unflushed = FALSE;
          g_mutex_unlock (&q->lock);
          if (!arb_instance_sink_flush (q->inst, &error))
            arb_log_for (q->inst->name, NULL, G_LOG_LEVEL_WARNING, error->message);
          continue;
        }
      if (q->quit && (queue_depth (q) == 0 || g_get_monotonic_time () >= q->quit_deadline))
        {
          gboolean unflushed = q->unflushed;
          g_mutex_unlock (&q->lock);
          if (unflushed && !arb_instance_sink_flush (q->inst, &error))
            arb_log_for (q->inst->name, NULL, G_LOG_LEVEL_WARNING, error->message);
          break;
        }
      batch = arb_batch_new (MIN (queue_depth (q), MAX_BATCH));
      /* the outbox's first: each of the two queues keeps its own order, and
       * ledger events are what someone waits for */
      take_into (q, &q->ledger, batch);
      take_into (q, &q->events, batch);
      q->unflushed = TRUE;
      export_depth (q);
      g_mutex_unlock (&q->lock);

      if (!arb_instance_sink_write (q->inst, batch, &error))
        {
          fail_unacked (q, batch, error);
          backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS : MIN (backoff_ms * 2, BACKOFF_CAP_MS);
          /* a sink that fails now will likely fail on the next batch too */
          g_mutex_lock (&q->lock);
          if (!q->quit)
            g_cond_wait_until (&q->cond, &q->lock, g_get_monotonic_time () + (gint64) backoff_ms * 1000);
          g_mutex_unlock (&q->lock);
        }
      else
        backoff_ms = 0;
    }
  return NULL;
}

void
arb_relay_attach (ArbRelay *relay, ArbInstance *inst, guint capacity)
{
  ArbSinkQueue *q;
  g_autofree char *thread_name = NULL;

  if (inst->queue != NULL)
    return;
  q = g_new0 (ArbSinkQueue, 1);
  q->relay = relay;
  q->inst = inst;
  q->capacity = capacity > 0 ? capacity : 10000;
  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  g_queue_init (&q->events);
  g_queue_init (&q->ledger);
  q->in_flight = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) arb_event_unref);
  q->labels = g_strdup (inst->labels);
  inst->queue = q;
  thread_name = g_strdup_printf ("sink-%.10s", inst->id);
  q->thread = g_thread_new (thread_name, worker, q);
  g_mutex_lock (&relay->lock);
  g_ptr_array_add (relay->queues, q);
  g_mutex_unlock (&relay->lock);
  export_depth (q);
  if (relay->outbox != NULL)
    arb_outbox_attach (relay->outbox, inst);
}

void
arb_relay_publish (ArbRelay *relay, ArbEvent *event)
{
  const char *type = arb_event_get_event_type (event);
  gboolean ledger = arb_event_is_ledger (event);

  g_mutex_lock (&relay->lock);
  for (guint i = 0; i < relay->queues->len; i++)
    {
      ArbSinkQueue *q = g_ptr_array_index (relay->queues, i);
      ArbMetrics *m = relay->host->metrics;

      if (!arb_event_type_matches ((const char *const *) q->inst->events, type, ledger))
        continue;
      g_mutex_lock (&q->lock);
      if (q->quit)
        {
          g_mutex_unlock (&q->lock);
          continue;
        }
      if (q->events.length >= q->capacity)
        {
          /* never wait here: the order path and the feeds call this. The
           * oldest market event is worth least; drop it and count it */
          ArbEvent *old = g_queue_pop_head (&q->events);
          arb_event_unref (old);
          arb_metrics_counter_add (m, "arb_sink_dropped_total", q->labels, 1);
        }
      g_queue_push_tail (&q->events, arb_event_ref (event));
      g_cond_signal (&q->cond);
      arb_metrics_gauge_set (m, "arb_sink_queued", q->labels, (gdouble) queue_depth (q));
      g_mutex_unlock (&q->lock);
    }
  g_mutex_unlock (&relay->lock);
}

void
arb_relay_ack (ArbRelay *relay, ArbInstance *inst, ArbEvent *event, const GError *error)
{
  ArbSinkQueue *q = inst->queue;
  ArbMetrics *m = relay->host->metrics;
  gboolean known;
  gpointer stolen = NULL;

  if (q == NULL)
    return;
  g_mutex_lock (&q->lock);
  /* steal, so the event lives until the counting below is done */
  known = g_hash_table_steal_extended (q->in_flight, event, NULL, &stolen);
  arb_metrics_gauge_set (m, "arb_sink_in_flight", q->labels, (gdouble) g_hash_table_size (q->in_flight));
  g_mutex_unlock (&q->lock);
  if (!known)
    {
      g_autofree char *line = g_strdup_printf ("plugin bug: acknowledged event %s twice or one it was never given",
                                               arb_event_get_id (event));
      arb_log_for (inst->name, NULL, G_LOG_LEVEL_WARNING, line);
      return;
    }
  if (error == NULL)
    {
      gdouble age = (gdouble) (arb_now_us () - arb_event_get_time (event)) / G_USEC_PER_SEC;
      arb_metrics_counter_add (m, "arb_sink_published_total", q->labels, 1);
      arb_metrics_histogram_observe (m, "arb_sink_publish_latency_seconds", q->labels, age);
    }
  else
    arb_metrics_counter_add (m, "arb_sink_failed_total", q->labels, 1);
  /* the outbox marks it delivered, or delivers it again */
  if (relay->outbox != NULL && arb_event_is_ledger (event))
    arb_outbox_on_ack (relay->outbox, inst, stolen, error);
  arb_event_unref (stolen);
}

guint
arb_relay_queued (ArbRelay *relay, ArbInstance *inst)
{
  guint n;
  if (inst->queue == NULL)
    return 0;
  g_mutex_lock (&inst->queue->lock);
  n = queue_depth (inst->queue);
  g_mutex_unlock (&inst->queue->lock);
  return n;
}

void
arb_relay_shutdown (ArbRelay *relay, gint64 timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();

  g_mutex_lock (&relay->lock);
  for (guint i = 0; i < relay->queues->len; i++)
    {
      ArbSinkQueue *q = g_ptr_array_index (relay->queues, i);
      g_mutex_lock (&q->lock);
      if (!q->quit)
        {
          q->quit = TRUE;
          q->quit_deadline = deadline;
          g_cond_signal (&q->cond);
        }
      g_mutex_unlock (&q->lock);
      if (q->thread != NULL)
        g_ptr_array_add (threads, g_steal_pointer (&q->thread));
    }
  g_mutex_unlock (&relay->lock);
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (g_ptr_array_index (threads, i));
}

/* ------------------------------------------------------------------------ */
/* The outbox's side                                                        */

void
arb_relay_set_outbox (ArbRelay *relay, ArbOutbox *outbox)
{
  g_clear_pointer (&relay->outbox, arb_outbox_free);
  relay->outbox = outbox;
}

ArbOutbox *
arb_relay_get_outbox (ArbRelay *relay)
{
  return relay->outbox;
}

void
arb_relay_ledger_committed (ArbRelay *relay, GPtrArray *rows, const char *correlation_id)
{
  if (relay->outbox != NULL)
    {
      arb_outbox_notify (relay->outbox);
      return;
    }
  for (guint i = 0; i < rows->len; i++)
    {
      ArbOutboxRow *o = g_ptr_array_index (rows, i);
      g_autoptr(ArbEvent) ev = arb_event_new_from_outbox (o->id, o->type, o->key, o->assessment_id, correlation_id,
                                                          o->created_us, o->payload);
      arb_relay_publish (relay, ev);
    }
}

void
arb_relay_ledger_failed (ArbRelay *relay)
{
  if (relay->outbox != NULL)
    arb_outbox_notify (relay->outbox);
}

gboolean
arb_relay_push_ledger (ArbRelay *relay, ArbInstance *inst, ArbEvent *event)
{
  ArbSinkQueue *q = inst->queue;

  if (q == NULL)
    return FALSE;
  g_mutex_lock (&q->lock);
  if (q->quit)
    {
      g_mutex_unlock (&q->lock);
      return FALSE;
    }
  g_queue_push_tail (&q->ledger, arb_event_ref (event));
  g_cond_signal (&q->cond);
  arb_metrics_gauge_set (relay->host->metrics, "arb_sink_queued", q->labels, (gdouble) queue_depth (q));
  g_mutex_unlock (&q->lock);
  return TRUE;
}

GPtrArray *
arb_relay_take_back_ledger (ArbRelay *relay, ArbInstance *inst)
{
  ArbSinkQueue *q = inst->queue;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  ArbEvent *ev;

  if (q == NULL)
    return out;
  g_mutex_lock (&q->lock);
  while ((ev = g_queue_pop_head (&q->ledger)) != NULL)
    g_ptr_array_add (out, ev);
  arb_metrics_gauge_set (relay->host->metrics, "arb_sink_queued", q->labels, (gdouble) queue_depth (q));
  g_mutex_unlock (&q->lock);
  return out;
}
