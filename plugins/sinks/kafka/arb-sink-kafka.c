/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-kafka: publishes every event to Kafka through librdkafka's idempotent
 * producer (acks=all) and acknowledges an event to the relay only on its
 * delivery report. See README.md for the contract with operators. */

#include <string.h>

#include <librdkafka/rdkafka.h>

#include <arbiter/arb-plugin.h>

#include "arb-sink-health.h"

/* how often the plugin's thread asks the brokers for metadata while the
 * health is not OK, to notice that they are back */
#define PROBE_INTERVAL_US (1 * G_USEC_PER_SEC)
#define PROBE_TIMEOUT_MS  500
/* how long stop waits for the delivery reports of purged messages */
#define STOP_DRAIN_US     (2 * G_USEC_PER_SEC)

/* the topics, by event family; see README.md */
typedef enum {
  FAMILY_ASSESSMENTS,
  FAMILY_ORDERS,
  FAMILY_TRADES,
  FAMILY_POSITIONS,
  FAMILY_QUOTES,
  FAMILY_MARKETS,
  FAMILY_FEEDS,
  FAMILY_EVENTS, /* anything else, and every event with topics=single */
  N_FAMILIES,
} Family;

static const struct {
  const char *suffix;
  gboolean    market; /* best effort: the short delivery timeout */
} families[N_FAMILIES] = {
  [FAMILY_ASSESSMENTS] = { "assessments", FALSE },
  [FAMILY_ORDERS] = { "orders", FALSE },
  [FAMILY_TRADES] = { "trades", FALSE },
  [FAMILY_POSITIONS] = { "positions", FALSE },
  [FAMILY_QUOTES] = { "quotes", TRUE },
  [FAMILY_MARKETS] = { "markets", TRUE },
  [FAMILY_FEEDS] = { "feeds", TRUE },
  [FAMILY_EVENTS] = { "events", FALSE },
};

/* properties the sink sets itself; librdkafka= may not change them */
static const char *const owned_properties[] = {
  "bootstrap.servers", "metadata.broker.list", "enable.idempotence", "acks", "request.required.acks",
  "linger.ms", "queue.buffering.max.ms", "compression.codec", "compression.type", "message.timeout.ms",
  "delivery.timeout.ms", "sasl.password", NULL,
};

typedef struct {
  ArbInstance       *inst;            /* borrowed; outlives us */
  char              *brokers;         /* owned: "h1:9092,h2:9092" */
  char              *prefix;          /* owned */
  gboolean           single_topic;
  gint64             ledger_timeout_ms;
  gint64             market_timeout_ms;
  gint64             flush_timeout_us;
  rd_kafka_conf_t   *conf;            /* owned: the template every producer is made from */
  SinkHealth         health;

  /* while started */
  rd_kafka_t        *rk;              /* owned, nullable */
  rd_kafka_topic_t  *topics[N_FAMILIES]; /* owned, nullable */
  GThread           *poller;          /* owned, nullable */
  gint               quit;            /* atomic: the poller stops */
  gint               fatal;           /* atomic: the producer raised a fatal error */

  GMutex             lock;            /* guards what follows */
  GCond              drained;         /* signalled when outstanding empties */
  GHashTable        *outstanding;     /* ArbEvent → ArbEvent (owned ref): produced, no report yet */
} KafkaSink;

static const ArbConfigKey kafka_config[] = {
  { "brokers", ARB_CFG_STRV, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "bootstrap servers, host:port, comma-separated (bootstrap.servers)" },
  { "topic_prefix", ARB_CFG_STRING, ARB_CFG_NONE, "arbiter", 0, 0, NULL,
    "topics are PREFIX.assessments, .orders, .trades, .positions, .quotes, .markets, .feeds (and .events)" },
  { "topics", ARB_CFG_ENUM, ARB_CFG_NONE, "by-type", 0, 0, "by-type,single",
    "by-type: one topic per event family; single: every event in PREFIX.events, one ordered stream per key" },
  { "linger_ms", ARB_CFG_INT, ARB_CFG_NONE, "5", 0, 900000, NULL,
    "how long the producer waits to fill a batch before sending it, ms (linger.ms)" },
  { "compression", ARB_CFG_ENUM, ARB_CFG_NONE, "lz4", 0, 0, "none,gzip,snappy,lz4,zstd",
    "compression of produced batches (compression.codec)" },
  { "delivery_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "5m", 1000, 86400000, NULL,
    "how long a ledger event is retried before it is acknowledged as failed (message.timeout.ms)" },
  { "market_delivery_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 1000, 86400000, NULL,
    "the same for quotes, market status and feed events, which nobody delivers again" },
  { "flush_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "3s", 0, 600000, NULL,
    "longest wait of flush (when idle, and at shutdown) for outstanding delivery reports" },
  { "down_after", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 0, 3600000, NULL,
    "how long the brokers may be unreachable (health degraded) before health is down" },
  { "sasl_password", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "sasl.password, for a SASL mechanism set with librdkafka=" },
  { "librdkafka", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "extra librdkafka properties as name=value items; an item without = continues the value before it" },
  { NULL },
};

static Family
family_of (const char *type)
{
  if (g_str_has_prefix (type, "assessment."))
    return FAMILY_ASSESSMENTS;
  if (g_str_has_prefix (type, "order."))
    return FAMILY_ORDERS;
  if (g_str_has_prefix (type, "trade."))
    return FAMILY_TRADES;
  if (g_str_has_prefix (type, "position."))
    return FAMILY_POSITIONS;
  if (g_str_equal (type, "quote"))
    return FAMILY_QUOTES;
  if (g_str_has_prefix (type, "market."))
    return FAMILY_MARKETS;
  if (g_str_has_prefix (type, "feed."))
    return FAMILY_FEEDS;
  return FAMILY_EVENTS;
}

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *name, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "librdkafka property %s: %s", name, errstr);
      return FALSE;
    }
  return TRUE;
}

/* librdkafka= items: "name=value"; the host's lists split at every comma, so
 * an item without "=" belongs to the value before it (debug=broker,topic) */
static gboolean
apply_passthrough (rd_kafka_conf_t *conf, const char *const *items, GError **error)
{
  g_autofree char *name = NULL;
  g_autoptr(GString) value = NULL;

  for (guint i = 0; items != NULL && items[i] != NULL; i++)
    {
      const char *eq = strchr (items[i], '=');

      if (eq == NULL)
        {
          if (name == NULL)
            {
              g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "librdkafka=%s: expected name=value", items[i]);
              return FALSE;
            }
          g_string_append_printf (value, ",%s", items[i]);
          continue;
        }
      if (name != NULL && !conf_set (conf, name, value->str, error))
        return FALSE;
      g_free (name);
      name = g_strstrip (g_strndup (items[i], (gsize) (eq - items[i])));
      if (value == NULL)
        value = g_string_new (NULL);
      g_string_assign (value, eq + 1);
      if (g_strv_contains (owned_properties, name))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "librdkafka=%s=...: the sink sets %s itself; use its own key instead (see its README)", name,
                       name);
          return FALSE;
        }
    }
  if (name != NULL && !conf_set (conf, name, value->str, error))
    return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Callbacks from librdkafka, on the poller thread (or the thread that polls) */

static void
on_delivery (rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
  KafkaSink *self = opaque;
  ArbEvent *ev = msg->_private;
  gboolean known;
  guint left;

  g_mutex_lock (&self->lock);
  known = g_hash_table_steal (self->outstanding, ev);
  left = g_hash_table_size (self->outstanding);
  if (left == 0)
    g_cond_broadcast (&self->drained);
  g_mutex_unlock (&self->lock);
  if (!known)
    return; /* acknowledged already (stop gave up on it) */

  arb_instance_gauge_set (self->inst, "in_flight", (gdouble) left);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      gint64 latency_us = rd_kafka_message_latency (msg);

      arb_instance_ack (self->inst, ev, NULL);
      arb_instance_counter_add (self->inst, "published_total", 1);
      if (latency_us >= 0)
        arb_instance_histogram_observe (self->inst, "publish_latency_seconds", (gdouble) latency_us / G_USEC_PER_SEC);
      if (!sink_health_is_ok (&self->health))
        sink_health_ok (&self->health, "delivering to %s", self->brokers);
    }
  else
    {
      g_autoptr(GError) error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                                             "event %s: delivery to %s failed: %s", arb_event_get_id (ev),
                                             rd_kafka_topic_name (msg->rkt), rd_kafka_err2str (msg->err));
      arb_instance_ack (self->inst, ev, error);
      arb_instance_counter_add (self->inst, "failed_total", 1);
      /* a purge is ours (stop), not the brokers' */
      if (msg->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && msg->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        sink_health_degraded (&self->health, "%s", error->message);
    }
  arb_event_unref (ev);
}

static void
on_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  KafkaSink *self = opaque;

  if (err == RD_KAFKA_RESP_ERR__FATAL)
    {
      char why[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error (rk, why, sizeof why);

      g_atomic_int_set (&self->fatal, 1);
      sink_health_down (&self->health, "fatal producer error %s: %s; the next write makes a new producer",
                        rd_kafka_err2name (orig), why);
    }
  else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    sink_health_unreachable (&self->health, "all brokers down (%s): %s", self->brokers, reason);
  else
    /* transport errors and the like: librdkafka retries them itself */
    arb_debug (self->inst, "librdkafka: %s: %s", rd_kafka_err2name (err), reason);
}

static void
on_log (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  KafkaSink *self = rd_kafka_opaque (rk);

  /* health carries the news; the library's own complaints stay below
   * warning so that a broker outage is one warning, from the host */
  if (level <= 4)
    arb_message (self->inst, "librdkafka %s: %s", fac, buf);
  else if (level <= 6)
    arb_info (self->inst, "librdkafka %s: %s", fac, buf);
  else
    arb_debug (self->inst, "librdkafka %s: %s", fac, buf);
}

/* while the health is not OK: do the brokers answer? */
static void
probe (KafkaSink *self)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata (self->rk, 0, NULL, &md, PROBE_TIMEOUT_MS);

  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL && md->broker_cnt > 0)
    {
      if (!g_atomic_int_get (&self->fatal))
        sink_health_ok (&self->health, "connected to %s (%d brokers)", self->brokers, md->broker_cnt);
    }
  else
    sink_health_unreachable (&self->health, "no broker of %s answers: %s", self->brokers, rd_kafka_err2str (err));
  if (md != NULL)
    rd_kafka_metadata_destroy (md);
}

static gpointer
poller_main (gpointer data)
{
  KafkaSink *self = data;
  gint64 next_probe = 0;

  while (!g_atomic_int_get (&self->quit))
    {
      gint64 now;

      rd_kafka_poll (self->rk, 100);
      now = g_get_monotonic_time ();
      if (now >= next_probe)
        {
          if (!sink_health_is_ok (&self->health))
            probe (self);
          sink_health_tick (&self->health);
          next_probe = g_get_monotonic_time () + PROBE_INTERVAL_US;
        }
    }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* The producer                                                             */

static void
producer_close (KafkaSink *self, const char *why)
{
  gint64 deadline;
  g_autoptr(GPtrArray) left = NULL;

  if (self->rk == NULL)
    return;
  if (self->poller != NULL)
    {
      g_atomic_int_set (&self->quit, 1);
      g_thread_join (g_steal_pointer (&self->poller));
    }
  /* whatever the brokers did not confirm yet is failed now: the relay
   * delivers ledger events again later */
  rd_kafka_purge (self->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  deadline = g_get_monotonic_time () + STOP_DRAIN_US;
  for (;;)
    {
      guint n;

      rd_kafka_poll (self->rk, 10);
      g_mutex_lock (&self->lock);
      n = g_hash_table_size (self->outstanding);
      g_mutex_unlock (&self->lock);
      if (n == 0 || g_get_monotonic_time () >= deadline)
        break;
    }
  for (guint i = 0; i < N_FAMILIES; i++)
    g_clear_pointer (&self->topics[i], rd_kafka_topic_destroy);
  rd_kafka_destroy (g_steal_pointer (&self->rk));

  /* no report can come any more: fail what never got one */
  left = g_ptr_array_new ();
  g_mutex_lock (&self->lock);
  {
    GHashTableIter it;
    gpointer ev;

    g_hash_table_iter_init (&it, self->outstanding);
    while (g_hash_table_iter_next (&it, &ev, NULL))
      g_ptr_array_add (left, ev);
    g_hash_table_steal_all (self->outstanding);
  }
  g_cond_broadcast (&self->drained);
  g_mutex_unlock (&self->lock);
  if (left->len > 0)
    {
      g_autoptr(GError) error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                                             "producer %s before the brokers confirmed the event", why);
      for (guint i = 0; i < left->len; i++)
        {
          ArbEvent *ev = g_ptr_array_index (left, i);
          arb_instance_ack (self->inst, ev, error);
          arb_instance_counter_add (self->inst, "failed_total", 1);
          arb_event_unref (ev);
        }
    }
  arb_instance_gauge_set (self->inst, "in_flight", 0);
}

static gboolean
producer_open (KafkaSink *self, GError **error)
{
  g_autofree char *password = NULL;
  g_autoptr(GError) local = NULL;
  rd_kafka_conf_t *conf;
  char errstr[512];

  if (arb_instance_has_key (self->inst, "sasl_password"))
    {
      password = arb_instance_get_secret (self->inst, "sasl_password", &local);
      if (local != NULL)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE, "sasl_password: %s", local->message);
          return FALSE;
        }
    }

  conf = rd_kafka_conf_dup (self->conf);
  if (password != NULL && !conf_set (conf, "sasl.password", password, error))
    {
      rd_kafka_conf_destroy (conf);
      arb_secret_free (g_steal_pointer (&password));
      return FALSE;
    }
  if (password != NULL)
    arb_secret_free (g_steal_pointer (&password));
  rd_kafka_conf_set_opaque (conf, self);
  /* rd_kafka_new takes the conf only when it succeeds */
  self->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (self->rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      /* a file librdkafka could not read (a CA, a keytab) may appear; the
       * rest is a wrong setting, but retrying costs little and says so */
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE, "cannot create the producer: %s", errstr);
      return FALSE;
    }

  for (guint i = 0; i < N_FAMILIES; i++)
    {
      g_autofree char *name = NULL;
      g_autofree char *timeout = NULL;
      rd_kafka_topic_conf_t *tconf;

      if (self->single_topic && i != FAMILY_EVENTS)
        continue;
      name = g_strdup_printf ("%s.%s", self->prefix, families[i].suffix);
      timeout = g_strdup_printf ("%" G_GINT64_FORMAT,
                                 families[i].market ? self->market_timeout_ms : self->ledger_timeout_ms);
      tconf = rd_kafka_topic_conf_new ();
      if (rd_kafka_topic_conf_set (tconf, "message.timeout.ms", timeout, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        {
          rd_kafka_topic_conf_destroy (tconf);
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "topic %s: %s", name, errstr);
          producer_close (self, "closed");
          return FALSE;
        }
      self->topics[i] = rd_kafka_topic_new (self->rk, name, tconf);
      if (self->topics[i] == NULL)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "topic %s: %s", name,
                       rd_kafka_err2str (rd_kafka_last_error ()));
          producer_close (self, "closed");
          return FALSE;
        }
    }

  g_atomic_int_set (&self->quit, 0);
  g_atomic_int_set (&self->fatal, 0);
  self->poller = g_thread_new ("kafka-poll", poller_main, self);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* The sink                                                                 */

static gpointer
kafka_create (ArbInstance *inst, GError **error)
{
  const char *const *brokers = arb_instance_get_strv (inst, "brokers");
  const char *compression = arb_instance_get_string (inst, "compression");
  gint64 linger = arb_instance_get_int (inst, "linger_ms");
  g_autofree char *joined = NULL;
  g_autofree char *linger_text = NULL;
  g_autofree char *client_id = NULL;
  rd_kafka_conf_t *conf;
  KafkaSink *self;

  if (brokers == NULL || brokers[0] == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "brokers is empty");
      return NULL;
    }
  joined = g_strjoinv (",", (char **) brokers);
  linger_text = g_strdup_printf ("%" G_GINT64_FORMAT, linger);
  client_id = g_strdup_printf ("arbiterd-%s", arb_instance_get_id (inst));

  conf = rd_kafka_conf_new ();
  /* defaults an operator may change, then theirs, then what the sink's
   * promises rest on */
  if (!conf_set (conf, "client.id", client_id, error)
      || !conf_set (conf, "socket.keepalive.enable", "true", error)
      /* small produce requests at low rates: Nagle and delayed ACKs would
       * hold each one back by up to 40 ms */
      || !conf_set (conf, "socket.nagle.disable", "true", error)
      || !apply_passthrough (conf, arb_instance_get_strv (inst, "librdkafka"), error)
      || !conf_set (conf, "bootstrap.servers", joined, error)
      || !conf_set (conf, "enable.idempotence", "true", error)
      || !conf_set (conf, "acks", "all", error)
      || !conf_set (conf, "linger.ms", linger_text, error)
      || !conf_set (conf, "compression.codec", compression != NULL ? compression : "none", error))
    {
      rd_kafka_conf_destroy (conf);
      return NULL;
    }
  if (linger >= MIN (arb_instance_get_duration_ms (inst, "delivery_timeout"),
                     arb_instance_get_duration_ms (inst, "market_delivery_timeout")))
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "linger_ms=%" G_GINT64_FORMAT " must be below delivery_timeout and market_delivery_timeout",
                   linger);
      return NULL;
    }
  rd_kafka_conf_set_dr_msg_cb (conf, on_delivery);
  rd_kafka_conf_set_error_cb (conf, on_error);
  rd_kafka_conf_set_log_cb (conf, on_log);

  self = g_new0 (KafkaSink, 1);
  self->inst = inst;
  self->brokers = g_steal_pointer (&joined);
  self->prefix = g_strdup (arb_instance_get_string (inst, "topic_prefix"));
  self->single_topic = g_strcmp0 (arb_instance_get_string (inst, "topics"), "single") == 0;
  self->ledger_timeout_ms = arb_instance_get_duration_ms (inst, "delivery_timeout");
  self->market_timeout_ms = arb_instance_get_duration_ms (inst, "market_delivery_timeout");
  self->flush_timeout_us = arb_instance_get_duration_ms (inst, "flush_timeout") * 1000;
  self->conf = conf;
  sink_health_init (&self->health, inst, arb_instance_get_duration_ms (inst, "down_after"));
  g_mutex_init (&self->lock);
  g_cond_init (&self->drained);
  self->outstanding = g_hash_table_new (g_direct_hash, g_direct_equal);
  return self;
}

static gboolean
kafka_start (gpointer data, GError **error)
{
  KafkaSink *self = data;

  if (self->rk != NULL)
    return TRUE;
  /* nothing is known about the brokers yet; the poller finds out */
  g_mutex_lock (&self->health.lock);
  self->health.trouble_since_us = 0;
  g_mutex_unlock (&self->health.lock);
  sink_health_degraded (&self->health, "connecting to %s", self->brokers);
  return producer_open (self, error);
}

/* fails one event now, with the reason */
static void
refuse (KafkaSink *self, ArbEvent *ev, int code, const char *format, ...) G_GNUC_PRINTF (4, 5);
static void
refuse (KafkaSink *self, ArbEvent *ev, int code, const char *format, ...)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  error = g_error_new (ARB_PLUGIN_ERROR, code, "event %s: %s", arb_event_get_id (ev), what);
  arb_instance_ack (self->inst, ev, error);
  arb_instance_counter_add (self->inst, "failed_total", 1);
}

static rd_kafka_resp_err_t
produce (KafkaSink *self, ArbEvent *ev)
{
  const char *type = arb_event_get_event_type (ev);
  const char *key = arb_event_get_key (ev);
  const char *cid = arb_event_get_correlation_id (ev);
  const char *id = arb_event_get_id (ev);
  rd_kafka_topic_t *rkt = self->topics[self->single_topic ? FAMILY_EVENTS : family_of (type)];
  rd_kafka_headers_t *headers = rd_kafka_headers_new (3);
  size_t key_len = key != NULL ? strlen (key) : 0;
  void *value = (void *) arb_event_get_json (ev);
  size_t value_len = arb_event_get_json_length (ev);
  rd_kafka_resp_err_t err;

  if (cid != NULL)
    rd_kafka_header_add (headers, "correlation-id", -1, cid, -1);
  rd_kafka_header_add (headers, "event-type", -1, type, -1);
  rd_kafka_header_add (headers, "event-id", -1, id, -1);
  /* no copy of key and value: the reference the outstanding table holds
   * keeps the event alive until its delivery report */
  err = rd_kafka_producev (self->rk, RD_KAFKA_V_RKT (rkt), RD_KAFKA_V_PARTITION (RD_KAFKA_PARTITION_UA),
                           RD_KAFKA_V_MSGFLAGS (0),
                           RD_KAFKA_V_KEY (key, key_len), RD_KAFKA_V_VALUE (value, value_len),
                           RD_KAFKA_V_HEADERS (headers), RD_KAFKA_V_OPAQUE (ev), RD_KAFKA_V_END);
  /* on success the message owns the headers */
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    rd_kafka_headers_destroy (headers);
  return err;
}

static gboolean
kafka_write (gpointer data, ArbBatch *batch, GError **error)
{
  KafkaSink *self = data;
  guint n = arb_batch_get_length (batch);
  g_autoptr(GError) sink_error = NULL;

  if (g_atomic_int_get (&self->fatal) || self->rk == NULL)
    {
      g_autoptr(GError) local = NULL;

      arb_message (self->inst, "making a new producer after a fatal error");
      producer_close (self, "replaced after a fatal error");
      if (!producer_open (self, &local))
        {
          for (guint i = 0; i < n; i++)
            refuse (self, arb_batch_get (batch, i), ARB_PLUGIN_ERROR_UNAVAILABLE, "no producer: %s", local->message);
          sink_health_down (&self->health, "cannot make a producer: %s", local->message);
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }

  for (guint i = 0; i < n; i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);
      gint64 give_up = 0;
      rd_kafka_resp_err_t err;

      g_mutex_lock (&self->lock);
      g_hash_table_add (self->outstanding, arb_event_ref (ev));
      g_mutex_unlock (&self->lock);

      for (;;)
        {
          err = produce (self, ev);
          if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || !arb_event_is_ledger (ev))
            break;
          /* the producer's queue is full (brokers slow or gone): a ledger
           * event waits a while for room; a market event is not worth it */
          if (give_up == 0)
            give_up = g_get_monotonic_time () + self->flush_timeout_us;
          if (g_get_monotonic_time () >= give_up)
            break;
          g_usleep (5000);
        }
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        continue;

      g_mutex_lock (&self->lock);
      g_hash_table_remove (self->outstanding, ev);
      g_mutex_unlock (&self->lock);
      arb_event_unref (ev);
      if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        /* never deliverable; the rest of the batch goes on */
        refuse (self, ev, ARB_PLUGIN_ERROR_FATAL, "%s (%" G_GSIZE_FORMAT " bytes)", rd_kafka_err2str (err),
                arb_event_get_json_length (ev));
      else
        {
          refuse (self, ev, ARB_PLUGIN_ERROR_UNAVAILABLE, "%s", rd_kafka_err2str (err));
          if (sink_error == NULL)
            sink_error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE, "producing to %s: %s",
                                      self->brokers, rd_kafka_err2str (err));
          if (err == RD_KAFKA_RESP_ERR__FATAL)
            g_atomic_int_set (&self->fatal, 1);
        }
    }

  g_mutex_lock (&self->lock);
  n = g_hash_table_size (self->outstanding);
  g_mutex_unlock (&self->lock);
  arb_instance_gauge_set (self->inst, "in_flight", (gdouble) n);

  if (sink_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&sink_error));
      return FALSE;
    }
  return TRUE;
}

static gboolean
kafka_flush (gpointer data, GError **error)
{
  KafkaSink *self = data;
  gint64 deadline = g_get_monotonic_time () + self->flush_timeout_us;
  guint left;

  g_mutex_lock (&self->lock);
  while ((left = g_hash_table_size (self->outstanding)) > 0)
    if (!g_cond_wait_until (&self->drained, &self->lock, deadline))
      {
        left = g_hash_table_size (self->outstanding);
        break;
      }
  g_mutex_unlock (&self->lock);
  if (left > 0)
    {
      /* not a loss: they stay outstanding and are acknowledged on their
       * delivery report, or failed on timeout */
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                   "%u events still wait for the brokers of %s after %" G_GINT64_FORMAT " ms", left, self->brokers,
                   self->flush_timeout_us / 1000);
      return FALSE;
    }
  return TRUE;
}

static void
kafka_stop (gpointer data)
{
  KafkaSink *self = data;

  producer_close (self, "stopped");
}

static void
kafka_destroy (gpointer data)
{
  KafkaSink *self = data;

  producer_close (self, "destroyed");
  rd_kafka_conf_destroy (self->conf);
  g_hash_table_unref (self->outstanding);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->drained);
  sink_health_clear (&self->health);
  g_free (self->brokers);
  g_free (self->prefix);
  g_free (self);
}

static const ArbSinkVTable kafka_vtable = {
  .size = sizeof (ArbSinkVTable),
  .create = kafka_create,
  .start = kafka_start,
  .write = kafka_write,
  .flush = kafka_flush,
  .stop = kafka_stop,
  .destroy = kafka_destroy,
};

static const ArbPluginDesc kafka_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "sink-kafka",
  .version = "0.1.0",
  .summary = "Publish events to Kafka (idempotent producer, acks=all), acknowledged on delivery reports",
  .kind = ARB_PLUGIN_SINK,
  .config = kafka_config,
  .vtable = &kafka_vtable,
};

ARB_PLUGIN_DEFINE (sink_kafka, kafka_desc)
