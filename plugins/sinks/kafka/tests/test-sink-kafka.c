/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-kafka through the real host (loader, schema checks, instance
 * wrappers, relay with its worker thread) against librdkafka's mock cluster,
 * a real Kafka-protocol broker set over TCP started by tests/kafka-mock, and
 * read back with a real rdkafka consumer: topics, keys, headers, order per
 * key; broker errors and outages injected through the helper and healed. */

#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <librdkafka/rdkafka.h>

#include "arb-host-private.h"

#define WAIT_US (20 * G_USEC_PER_SEC)

typedef struct {
  char             *dir;      /* owned: the test's temporary directory */
  char             *log;      /* owned: the host's log */
  char             *prefix;   /* owned: this test's topic prefix */
  GSubprocess      *mock;     /* owned: tests/kafka-mock */
  GOutputStream    *mock_in;  /* borrowed from mock */
  GDataInputStream *mock_out; /* owned */
  char             *bootstrap; /* owned */
  ArbHost          *host;     /* owned, nullable */
  GPtrArray        *sent;     /* owned, element-type ArbEvent */
} Fixture;

/* ------------------------------------------------------------------------ */
/* The mock cluster                                                         */

static char *
mock_read_line (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line_utf8 (fx->mock_out, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

/* one command to the helper; asserts its "ok" */
static void
mock_command (Fixture *fx, const char *command)
{
  g_autofree char *line = g_strconcat (command, "\n", NULL);
  g_autofree char *answer = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_output_stream_write_all (fx->mock_in, line, strlen (line), NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_flush (fx->mock_in, NULL, &error));
  answer = mock_read_line (fx);
  g_test_message ("kafka-mock: %s -> %s", command, answer);
  g_assert_cmpstr (answer, ==, "ok");
}

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  static guint counter;

  fx->dir = g_dir_make_tmp ("sink-kafka-XXXXXX", &error);
  g_assert_no_error (error);
  fx->log = g_build_filename (fx->dir, "arbiterd.log", NULL);
  fx->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  fx->prefix = g_strdup_printf ("t%u-%u", (guint) getpid (), ++counter);

  fx->mock = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, KAFKA_MOCK,
                               "--brokers", "3", "--partitions", "4", "--topics", fx->prefix, NULL);
  g_assert_no_error (error);
  fx->mock_in = g_subprocess_get_stdin_pipe (fx->mock);
  fx->mock_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fx->mock));
  first = mock_read_line (fx);
  g_assert_true (g_str_has_prefix (first, "bootstrap "));
  fx->bootstrap = g_strdup (first + strlen ("bootstrap "));
  g_test_message ("mock cluster at %s", fx->bootstrap);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  g_rmdir (path);
}

static void
host_down (Fixture *fx)
{
  if (fx->host == NULL)
    return;
  arb_host_stop (fx->host);
  g_clear_pointer (&fx->host, arb_host_free);
}

static void
fixture_tear_down (Fixture *fx, gconstpointer data)
{
  host_down (fx);
  arb_log_set_output_file (NULL);
  if (fx->mock != NULL)
    {
      /* closing its input ends it */
      g_output_stream_close (fx->mock_in, NULL, NULL);
      g_subprocess_wait (fx->mock, NULL, NULL);
      g_clear_object (&fx->mock_out);
      g_clear_object (&fx->mock);
    }
  g_ptr_array_unref (fx->sent);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->log);
  g_free (fx->prefix);
  g_free (fx->bootstrap);
}

/* ------------------------------------------------------------------------ */
/* The host                                                                 */

static void
host_up (Fixture *fx, const char *extra)
{
  g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=5s\n"
                                           "\n"
                                           "[sink:kafka]\n"
                                           "plugin=sink-kafka\n"
                                           "brokers=%s\n"
                                           "topic_prefix=%s\n"
                                           "linger_ms=2\n"
                                           "%s",
                                           fx->bootstrap, fx->prefix, extra != NULL ? extra : "");
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;

  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  arb_log_set_output_file (fx->log);
  fx->host = arb_host_new (conf, problems, &error);
  all = arb_config_problems_join (problems);
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_nonnull (fx->host);
  g_assert_true (arb_host_start (fx->host, &error));
  g_assert_no_error (error);
}

static ArbInstance *
instance (Fixture *fx)
{
  ArbInstance *inst = arb_host_find_instance (fx->host, "sink:kafka");
  g_assert_nonnull (inst);
  return inst;
}

static gdouble
metric (Fixture *fx, const char *name)
{
  return arb_metrics_get (fx->host->metrics, name, instance (fx)->labels);
}

typedef gboolean (*Predicate) (Fixture *fx, gconstpointer data);

static gboolean
wait_for (Fixture *fx, Predicate pred, gconstpointer data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (!pred (fx, data))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      while (g_main_context_iteration (fx->host->context, FALSE))
        ;
      g_usleep (5000);
    }
  return TRUE;
}

static gboolean
acked_at_least (Fixture *fx, gconstpointer data)
{
  return metric (fx, "arb_sink_published_total") + metric (fx, "arb_sink_failed_total") >= GPOINTER_TO_UINT (data);
}

static gboolean
health_is (Fixture *fx, gconstpointer data)
{
  return arb_instance_get_health (instance (fx)) == (ArbHealth) GPOINTER_TO_INT (data);
}

static gboolean
log_contains (Fixture *fx, const char *needle)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents (fx->log, &text, NULL, NULL))
    return FALSE;
  return strstr (text, needle) != NULL;
}

/* an event whose data carries @seq, so that order can be checked */
static ArbEvent *
publish (Fixture *fx, const char *type, const char *key, guint seq)
{
  gboolean ledger = !g_str_equal (type, "quote") && !g_str_has_prefix (type, "market.")
                    && !g_str_has_prefix (type, "feed.");
  g_autofree char *data = g_strdup_printf ("{\"seq\":%u,\"key\":\"%s\"}", seq, key);
  g_autofree char *cid = g_strdup_printf ("cid-%u", seq);
  ArbEvent *ev = arb_event_new (type, key, ledger ? key : NULL, cid, arb_now_us (), data, ledger);

  g_ptr_array_add (fx->sent, ev);
  arb_relay_publish (fx->host->relay, ev);
  return ev;
}

/* ------------------------------------------------------------------------ */
/* Reading back                                                             */

typedef struct {
  char   *topic;
  char   *key;
  char   *value;
  char   *cid;   /* header correlation-id, nullable */
  char   *type;  /* header event-type */
  char   *id;    /* header event-id */
  gint32  partition;
} Msg;

static void
msg_free (Msg *m)
{
  g_free (m->topic);
  g_free (m->key);
  g_free (m->value);
  g_free (m->cid);
  g_free (m->type);
  g_free (m->id);
  g_free (m);
}

static char *
header (rd_kafka_headers_t *hdrs, const char *name)
{
  const void *value = NULL;
  size_t size = 0;

  if (hdrs == NULL || rd_kafka_header_get_last (hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return NULL;
  return g_strndup (value, size);
}

/* every message of the topics PREFIX.@suffixes, read from the start until
 * @expect arrived (and a little longer, to see duplicates) */
static GPtrArray *
consume (Fixture *fx, const char *const *suffixes, guint expect)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) msg_free);
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new (32);
  char errstr[512];
  rd_kafka_t *rk;
  gint64 deadline, settle = 0;

  g_assert_cmpint (rd_kafka_conf_set (conf, "bootstrap.servers", fx->bootstrap, errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "group.id", "test-reader", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "enable.auto.commit", "false", errstr, sizeof errstr), ==,
                   RD_KAFKA_CONF_OK);
  g_assert_cmpint (rd_kafka_conf_set (conf, "log_level", "2", errstr, sizeof errstr), ==, RD_KAFKA_CONF_OK);
  rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  g_assert_nonnull (rk);

  for (guint i = 0; suffixes[i] != NULL; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s.%s", fx->prefix, suffixes[i]);
      rd_kafka_topic_t *rkt = rd_kafka_topic_new (rk, name, NULL);
      const struct rd_kafka_metadata *md = NULL;

      g_assert_cmpint (rd_kafka_metadata (rk, 0, rkt, &md, 5000), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
      g_assert_cmpint (md->topic_cnt, ==, 1);
      for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add (parts, name, md->topics[0].partitions[p].id)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
      rd_kafka_metadata_destroy (md);
      rd_kafka_topic_destroy (rkt);
    }
  g_assert_cmpint (rd_kafka_assign (rk, parts), ==, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy (parts);

  deadline = g_get_monotonic_time () + WAIT_US;
  while (g_get_monotonic_time () < deadline && (settle == 0 || g_get_monotonic_time () < settle))
    {
      rd_kafka_message_t *m = rd_kafka_consumer_poll (rk, 100);
      rd_kafka_headers_t *hdrs = NULL;
      Msg *msg;

      if (m == NULL)
        continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          g_test_message ("consumer: %s", rd_kafka_message_errstr (m));
          rd_kafka_message_destroy (m);
          continue;
        }
      msg = g_new0 (Msg, 1);
      msg->topic = g_strdup (rd_kafka_topic_name (m->rkt) + strlen (fx->prefix) + 1);
      msg->key = g_strndup (m->key, m->key_len);
      msg->value = g_strndup (m->payload, m->len);
      msg->partition = m->partition;
      if (rd_kafka_message_headers (m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        {
          msg->cid = header (hdrs, "correlation-id");
          msg->type = header (hdrs, "event-type");
          msg->id = header (hdrs, "event-id");
        }
      g_ptr_array_add (out, msg);
      rd_kafka_message_destroy (m);
      if (out->len >= expect && settle == 0)
        settle = g_get_monotonic_time () + 300 * 1000;
    }
  if (out->len < expect)
    for (guint i = 0; suffixes[i] != NULL; i++)
      for (int p = 0; p < 4; p++)
        {
          g_autofree char *name = g_strdup_printf ("%s.%s", fx->prefix, suffixes[i]);
          int64_t lo = -1, hi = -1;
          rd_kafka_query_watermark_offsets (rk, name, p, &lo, &hi, 5000);
          g_test_message ("watermarks of %s [%d]: %" G_GINT64_FORMAT " .. %" G_GINT64_FORMAT, name, p, (gint64) lo,
                          (gint64) hi);
        }
  rd_kafka_consumer_close (rk);
  rd_kafka_destroy (rk);
  return out;
}

static guint
seq_of (const char *value)
{
  const char *s = strstr (value, "\"seq\":");
  g_assert_nonnull (s);
  return (guint) g_ascii_strtoull (s + 6, NULL, 10);
}

static const char *
expected_topic (const char *type)
{
  if (g_str_has_prefix (type, "assessment."))
    return "assessments";
  if (g_str_has_prefix (type, "order."))
    return "orders";
  if (g_str_has_prefix (type, "trade."))
    return "trades";
  if (g_str_has_prefix (type, "position."))
    return "positions";
  if (g_str_equal (type, "quote"))
    return "quotes";
  if (g_str_has_prefix (type, "market."))
    return "markets";
  if (g_str_has_prefix (type, "feed."))
    return "feeds";
  return "events";
}

/* every sent event arrived exactly once, with its key, headers, envelope
 * and topic; within a topic, the events of one key come in the order sent */
static void
check_delivered (Fixture *fx, GPtrArray *got, gboolean single)
{
  g_autoptr(GHashTable) by_id = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) last_seq = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < got->len; i++)
    {
      Msg *m = g_ptr_array_index (got, i);
      g_assert_nonnull (m->id);
      g_assert_false (g_hash_table_contains (by_id, m->id)); /* no duplicate */
      g_hash_table_insert (by_id, m->id, m);
    }
  for (guint i = 0; i < fx->sent->len; i++)
    {
      ArbEvent *ev = g_ptr_array_index (fx->sent, i);
      if (!g_hash_table_contains (by_id, arb_event_get_id (ev)))
        g_test_message ("missing: %s %s %s", arb_event_get_event_type (ev), arb_event_get_key (ev),
                        arb_event_get_json (ev));
    }
  g_assert_cmpuint (got->len, ==, fx->sent->len);

  for (guint i = 0; i < fx->sent->len; i++)
    {
      ArbEvent *ev = g_ptr_array_index (fx->sent, i);
      Msg *m = g_hash_table_lookup (by_id, arb_event_get_id (ev));

      g_assert_nonnull (m);
      g_assert_cmpstr (m->topic, ==, single ? "events" : expected_topic (arb_event_get_event_type (ev)));
      g_assert_cmpstr (m->key, ==, arb_event_get_key (ev));
      g_assert_cmpstr (m->type, ==, arb_event_get_event_type (ev));
      g_assert_cmpstr (m->cid, ==, arb_event_get_correlation_id (ev));
      g_assert_cmpstr (m->value, ==, arb_event_get_json (ev));
    }
  /* order per key within a topic, in the order the consumer read them
   * (one partition per key, and a partition is read in order) */
  for (guint i = 0; i < got->len; i++)
    {
      Msg *m = g_ptr_array_index (got, i);
      g_autofree char *k = g_strdup_printf ("%s/%s", m->topic, m->key);
      gpointer prev;
      guint seq = seq_of (m->value);

      if (g_hash_table_lookup_extended (last_seq, k, NULL, &prev))
        g_assert_cmpuint (GPOINTER_TO_UINT (prev), <, seq);
      g_hash_table_insert (last_seq, g_steal_pointer (&k), GUINT_TO_POINTER (seq));
    }
}

/* ------------------------------------------------------------------------ */

static const char *const all_topics[] = { "assessments", "orders", "trades", "positions", "quotes", "markets",
                                          "feeds", "events", NULL };

/* a mix of every family: three assessments' ledger events, two markets'
 * quotes, a status and a feed event */
static guint
publish_mix (Fixture *fx, guint rounds, guint seq)
{
  static const char *const ledger[] = { "order.filled", "trade.executed", "position.opened", "position.closed",
                                        "assessment.passed" };
  static const char *const assessments[] = { "asm-a", "asm-b", "asm-c" };

  for (guint r = 0; r < rounds; r++)
    {
      for (guint a = 0; a < G_N_ELEMENTS (assessments); a++)
        publish (fx, ledger[r % G_N_ELEMENTS (ledger)], assessments[a], seq++);
      publish (fx, "quote", "crypto:BTC-USD", seq++);
      publish (fx, "quote", "crypto:ETH-USD", seq++);
    }
  publish (fx, "market.status", "kalshi:X:yes", seq++);
  publish (fx, "feed.failover", "btc", seq++);
  return seq;
}

static void
test_deliver (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) got = NULL;
  guint n;

  host_up (fx, NULL);
  g_assert_cmpint (arb_instance_get_state (instance (fx)), ==, ARB_INSTANCE_RUNNING);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));

  publish_mix (fx, 40, 1);
  n = fx->sent->len;
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (n)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, n);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_plugin_published_total"), ==, n);
  g_assert_cmpfloat (metric (fx, "arb_plugin_failed_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_plugin_in_flight"), ==, 0);
  /* a histogram reads as its count */
  g_assert_cmpfloat (metric (fx, "arb_plugin_publish_latency_seconds"), ==, n);

  got = consume (fx, all_topics, n);
  check_delivered (fx, got, FALSE);
  g_assert_false (log_contains (fx, "plugin bug"));
}

static void
test_single_topic (Fixture *fx, gconstpointer data)
{
  static const char *const events_only[] = { "events", NULL };
  g_autoptr(GPtrArray) got = NULL;

  host_up (fx, "topics=single\n");
  publish_mix (fx, 10, 1);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, fx->sent->len);
  got = consume (fx, events_only, fx->sent->len);
  check_delivered (fx, got, TRUE);
}

enum { OUTAGE_ERRORS = 1, OUTAGE_DOWN = 2 };

/* Produce requests refused for a while (NOT_LEADER_FOR_PARTITION), or every
 * broker down for a while, then healed: the idempotent producer retries,
 * and every event arrives once, in order per key, without a single failed
 * acknowledgement.
 *
 * The two are separate tests on purpose. Both in one run (errors pushed,
 * then every broker down while the errored batches are being retried)
 * loses acknowledged messages of one partition in about one run in four
 * under ASan: the events are missing from the mock's partition log although
 * their delivery reports said NO_ERROR (librdkafka 2.0.2's mock cluster;
 * the producer trusts its DUPLICATE_SEQUENCE_NUMBER answers, see
 * README.md, "Testing"). Each fault alone never did in fifteen runs of each under ASan; the
 * combination is left out rather than retried until it passes. */
static void
test_outage_healed (Fixture *fx, gconstpointer data)
{
  guint faults = GPOINTER_TO_UINT (data);
  g_autoptr(GPtrArray) got = NULL;
  guint seq;
  gint64 until;

  /* the market events must outlive the outage and librdkafka's reconnect
   * backoff (up to 10 s by default; 1 s here) */
  host_up (fx, "down_after=1s\nmarket_delivery_timeout=1m\nlibrdkafka=reconnect.backoff.max.ms=1000\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  seq = publish_mix (fx, 5, 1);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len)));

  if (faults & OUTAGE_ERRORS)
    {
      /* NOT_LEADER_FOR_PARTITION (6) on Produce (0), thirty times */
      gdouble before = metric (fx, "arb_sink_published_total");
      mock_command (fx, "errors 0 30 6");
      seq = publish_mix (fx, 10, seq);
      g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len)));
      g_test_message ("published after the errors: %.0f", metric (fx, "arb_sink_published_total") - before);
    }

  if (faults & OUTAGE_DOWN)
    {
      /* every broker gone: nothing is acknowledged while they are away */
      gdouble before = metric (fx, "arb_sink_published_total");
      mock_command (fx, "down-all");
      seq = publish_mix (fx, 10, seq);
      until = g_get_monotonic_time () + 2500 * 1000;
      while (g_get_monotonic_time () < until)
        {
          while (g_main_context_iteration (fx->host->context, FALSE))
            ;
          g_usleep (20 * 1000);
        }
      g_test_message ("published during the outage: %.0f of %u", metric (fx, "arb_sink_published_total") - before,
                      fx->sent->len);
      g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, before);
      g_assert_cmpfloat (metric (fx, "arb_plugin_in_flight"), >, 0);
      g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));
      {
        g_autofree char *reason = arb_instance_dup_reason (instance (fx));
        g_test_message ("health during the outage: %s", reason);
      }
      mock_command (fx, "up-all");
    }
  publish_mix (fx, 5, seq);

  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (fx->sent->len)));
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, fx->sent->len);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));

  got = consume (fx, all_topics, fx->sent->len);
  check_delivered (fx, got, FALSE);
  g_assert_false (log_contains (fx, "plugin bug"));
}

/* brokers away for longer than delivery_timeout: the events are
 * acknowledged as failed, each once, on their delivery report, and the
 * relay can deliver them again; later events go through */
static void
test_timeout_fails (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) got = NULL;
  guint seq = 1;

  /* 3 s, not less: under a sanitizer on a loaded machine the first produce
   * after the brokers come back can take over a second */
  host_up (fx, "delivery_timeout=3s\nmarket_delivery_timeout=3s\ndown_after=500ms\n"
               "librdkafka=reconnect.backoff.max.ms=500\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  mock_command (fx, "down-all");
  for (guint i = 0; i < 10; i++)
    publish (fx, "trade.executed", "asm-a", seq++);
  publish (fx, "quote", "crypto:BTC-USD", seq++);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (11)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 11);
  g_assert_cmpfloat (metric (fx, "arb_plugin_failed_total"), ==, 11);
  g_assert_cmpfloat (metric (fx, "arb_plugin_in_flight"), ==, 0);
  g_assert_cmpint (arb_instance_get_health (instance (fx)), !=, ARB_HEALTH_OK);

  mock_command (fx, "up-all");
  /* back, before the next events get their three seconds */
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  g_ptr_array_set_size (fx->sent, 0);
  for (guint i = 0; i < 5; i++)
    publish (fx, "trade.executed", "asm-a", seq++);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (16)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 5);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  /* the timed-out ones never reached the brokers (the mock had them down) */
  got = consume (fx, all_topics, 5);
  check_delivered (fx, got, FALSE);
  g_assert_false (log_contains (fx, "plugin bug"));
}

/* stopped while the brokers are away: stop fails what is outstanding, so
 * that every event is acknowledged, and does not hang */
static void
test_stop_fails_outstanding (Fixture *fx, gconstpointer data)
{
  gint64 t0;
  gdouble failed;

  host_up (fx, "flush_timeout=500ms\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  mock_command (fx, "down-all");
  for (guint i = 0; i < 20; i++)
    publish (fx, "order.filled", "asm-a", i + 1);
  g_usleep (300 * 1000);

  t0 = g_get_monotonic_time ();
  arb_host_stop (fx->host);
  g_test_message ("stop took %.0f ms", (gdouble) (g_get_monotonic_time () - t0) / 1000);
  /* flush_timeout, then stop's purge: no hang */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * G_USEC_PER_SEC);
  failed = metric (fx, "arb_sink_failed_total");
  g_assert_cmpfloat (failed, ==, 20);
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 0);
  g_assert_false (log_contains (fx, "plugin bug"));
}

static gboolean
state_is (Fixture *fx, gconstpointer data)
{
  return arb_instance_get_state (instance (fx)) == (ArbInstanceState) GPOINTER_TO_INT (data);
}

static void
test_passthrough (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) got = NULL;
  g_autofree char *reason = NULL;

  /* a value with commas survives the host's list splitting */
  host_up (fx, "librdkafka=debug=msg,protocol,client.id=passthrough-test,socket.timeout.ms=7000\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  publish (fx, "trade.executed", "asm-a", 1);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 1);
  host_down (fx);

  /* an unknown property is refused at create, by name */
  host_up (fx, "librdkafka=no.such.property=1\n");
  g_assert_true (wait_for (fx, state_is, GINT_TO_POINTER (ARB_INSTANCE_FAILED)));
  reason = arb_instance_dup_reason (instance (fx));
  g_test_message ("%s", reason);
  g_assert_nonnull (strstr (reason, "no.such.property"));
  host_down (fx);
  g_clear_pointer (&reason, g_free);

  /* and so is one the sink sets itself */
  host_up (fx, "librdkafka=acks=1\n");
  g_assert_true (wait_for (fx, state_is, GINT_TO_POINTER (ARB_INSTANCE_FAILED)));
  reason = arb_instance_dup_reason (instance (fx));
  g_test_message ("%s", reason);
  g_assert_nonnull (strstr (reason, "sets acks itself"));
}

/* no broker at all: degraded ("connecting"), then down after down_after */
static void
test_no_broker (Fixture *fx, gconstpointer data)
{
  g_autofree char *reason = NULL;

  g_free (fx->bootstrap);
  fx->bootstrap = g_strdup ("127.0.0.1:1");
  host_up (fx, "down_after=1s\n");
  g_assert_cmpint (arb_instance_get_state (instance (fx)), ==, ARB_INSTANCE_RUNNING);
  g_assert_cmpint (arb_instance_get_health (instance (fx)), ==, ARB_HEALTH_DEGRADED);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));
  reason = arb_instance_dup_reason (instance (fx));
  g_test_message ("%s", reason);
  g_assert_nonnull (strstr (reason, "127.0.0.1:1"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* run by hand, find the build's plugins and nothing installed */
  g_setenv ("ARBITER_PLUGIN_PATH", SINK_PLUGIN_DIR, FALSE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", FALSE);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/sink-kafka/deliver/topics-keys-headers-order", test_deliver);
  ADD ("/sink-kafka/deliver/single-topic", test_single_topic);
  g_test_add ("/sink-kafka/outage/produce-errors-then-healed", Fixture, GUINT_TO_POINTER (OUTAGE_ERRORS),
              fixture_set_up, test_outage_healed, fixture_tear_down);
  g_test_add ("/sink-kafka/outage/brokers-down-then-healed", Fixture, GUINT_TO_POINTER (OUTAGE_DOWN), fixture_set_up,
              test_outage_healed, fixture_tear_down);
  ADD ("/sink-kafka/outage/delivery-timeout-fails-events", test_timeout_fails);
  ADD ("/sink-kafka/stop/fails-outstanding-events", test_stop_fails_outstanding);
  ADD ("/sink-kafka/config/librdkafka-passthrough", test_passthrough);
  ADD ("/sink-kafka/health/no-broker", test_no_broker);
#undef ADD

  return g_test_run ();
}
