/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-redis through the real host (loader, schema checks, instance
 * wrappers, relay with its worker thread) against a real redis-server the
 * test starts on a free loopback port: hash contents, PUBLISHed events,
 * a refused command, and Redis restarted mid-run. */

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <hiredis/hiredis.h>

#include "arb-host-private.h"

#define WAIT_US (15 * G_USEC_PER_SEC)

typedef struct {
  char         *dir;    /* owned: the test's temporary directory */
  char         *log;    /* owned: the host's log */
  guint16       port;
  GSubprocess  *redis;  /* owned, nullable: redis-server */
  redisContext *c;      /* owned, nullable: the test's own connection */
  ArbHost      *host;   /* owned, nullable */
} Fixture;

/* ------------------------------------------------------------------------ */
/* redis-server                                                             */

static guint16
free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &a, sizeof a), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &a, &len), ==, 0);
  close (fd);
  return ntohs (a.sin_port);
}

static redisContext *
connect_test (Fixture *fx)
{
  struct timeval tv = { 1, 0 };
  redisContext *c = redisConnectWithTimeout ("127.0.0.1", fx->port, tv);

  if (c != NULL && c->err != 0)
    g_clear_pointer (&c, redisFree);
  if (c != NULL)
    redisSetTimeout (c, tv);
  return c;
}

static void
redis_up (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *port = g_strdup_printf ("%u", fx->port);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  g_assert_null (fx->redis);
  fx->redis = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error, "redis-server", "--port", port, "--bind",
                                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", fx->dir, NULL);
  g_assert_no_error (error);
  /* ready when it answers */
  while (fx->c == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (20 * 1000);
      fx->c = connect_test (fx);
    }
}

static void
redis_down (Fixture *fx)
{
  g_clear_pointer (&fx->c, redisFree);
  if (fx->redis == NULL)
    return;
  g_subprocess_send_signal (fx->redis, SIGKILL);
  g_subprocess_wait (fx->redis, NULL, NULL);
  g_clear_object (&fx->redis);
}

static redisReply *
command (Fixture *fx, const char *format, ...)
{
  redisReply *reply;
  va_list args;

  va_start (args, format);
  reply = redisvCommand (fx->c, format, args);
  va_end (args);
  g_assert_nonnull (reply);
  return reply;
}

/* HGET key field, or NULL */
static char *
hget (Fixture *fx, const char *key, const char *field)
{
  redisReply *r = command (fx, "HGET %s %s", key, field);
  char *value = r->type == REDIS_REPLY_STRING ? g_strndup (r->str, r->len) : NULL;

  freeReplyObject (r);
  return value;
}

#define assert_field(fx, key, field, expected)                                                                 \
  G_STMT_START                                                                                                   \
  {                                                                                                              \
    g_autofree char *value_ = hget ((fx), (key), (field));                                                       \
    g_assert_cmpstr (value_, ==, (expected));                                                                    \
  }                                                                                                              \
  G_STMT_END

static long long
integer (Fixture *fx, const char *format, const char *arg)
{
  redisReply *r = command (fx, format, arg);
  long long n;

  g_assert_cmpint (r->type, ==, REDIS_REPLY_INTEGER);
  n = r->integer;
  freeReplyObject (r);
  return n;
}

/* ------------------------------------------------------------------------ */
/* The fixture and the host                                                 */

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("sink-redis-XXXXXX", &error);
  g_assert_no_error (error);
  fx->log = g_build_filename (fx->dir, "arbiterd.log", NULL);
  fx->port = free_port ();
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
  redis_down (fx);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->log);
}

static void
host_up (Fixture *fx, const char *extra)
{
  g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=5s\n"
                                           "\n"
                                           "[sink:redis]\n"
                                           "plugin=sink-redis\n"
                                           "port=%u\n"
                                           "key_prefix=p\n"
                                           "%s",
                                           fx->port, extra != NULL ? extra : "");
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;

  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  arb_log_set_output_file (fx->log);
  fx->host = arb_host_new (conf, problems, &error);
  all = arb_config_problems_join (problems);
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_true (arb_host_start (fx->host, &error));
  g_assert_no_error (error);
}

static ArbInstance *
instance (Fixture *fx)
{
  ArbInstance *inst = arb_host_find_instance (fx->host, "sink:redis");
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

static ArbEvent *
publish_json (Fixture *fx, const char *type, const char *key, gboolean ledger, const char *data)
{
  ArbEvent *ev = arb_event_new (type, key, ledger ? key : NULL, "cid-redis", arb_now_us (), data, ledger);

  arb_relay_publish (fx->host->relay, ev);
  return ev;
}

static ArbEvent *
publish_quote (Fixture *fx, const char *market, const char *bid, const char *ask, const char *last)
{
  g_autoptr(GString) data = g_string_new (NULL);

  g_string_append_printf (data, "{\"market\":\"%s\"", market);
  if (bid != NULL)
    g_string_append_printf (data, ",\"bid\":\"%s\"", bid);
  if (ask != NULL)
    g_string_append_printf (data, ",\"ask\":\"%s\"", ask);
  if (last != NULL)
    g_string_append_printf (data, ",\"last\":\"%s\"", last);
  g_string_append (data, ",\"source\":\"replay\",\"sourceTime\":\"2026-01-02T03:04:05.000001Z\","
                         "\"receiveTime\":\"2026-01-02T03:04:05.000002Z\"}");
  return publish_json (fx, "quote", market, FALSE, data->str);
}

/* ------------------------------------------------------------------------ */

static const char created[] =
  "{\"id\":\"asm-1\",\"userId\":\"alice\",\"program\":\"standard-50k\",\"status\":\"active\",\"statusReason\":null,"
  "\"statusTime\":null,\"startingBalance\":\"50000.00000000\",\"balance\":\"50000.00000000\","
  "\"equity\":\"50000.00000000\",\"openPositions\":0,\"createdAt\":\"2026-01-02T03:04:05.000000Z\"}";
static const char filled[] =
  "{\"id\":\"ord-1\",\"assessmentId\":\"asm-1\",\"market\":\"crypto:BTC-USD\",\"side\":\"buy\","
  "\"quantity\":\"0.10000000\",\"status\":\"filled\"}";
static const char traded[] =
  "{\"id\":\"trd-1\",\"assessmentId\":\"asm-1\",\"orderId\":\"ord-1\",\"market\":\"crypto:BTC-USD\","
  "\"price\":\"64250.12500000\",\"executedAt\":\"2026-01-02T03:04:06.000000Z\"}";
static const char opened1[] =
  "{\"id\":\"pos-1\",\"assessmentId\":\"asm-1\",\"market\":\"crypto:BTC-USD\",\"side\":\"long\",\"status\":\"open\","
  "\"quantity\":\"0.10000000\",\"entryPrice\":\"64250.12500000\",\"stopLoss\":null}";
static const char opened2[] =
  "{\"id\":\"pos-2\",\"assessmentId\":\"asm-1\",\"market\":\"crypto:ETH-USD\",\"side\":\"short\",\"status\":\"open\","
  "\"quantity\":\"1.00000000\",\"entryPrice\":\"3100.00000000\",\"stopLoss\":\"3200.00000000\"}";
static const char closed1[] =
  "{\"id\":\"pos-1\",\"assessmentId\":\"asm-1\",\"market\":\"crypto:BTC-USD\",\"side\":\"long\",\"status\":\"closed\","
  "\"quantity\":\"0.00000000\"}";
static const char failed_json[] =
  "{\"assessmentId\":\"asm-1\",\"status\":\"failed\",\"reason\":\"daily loss \\\"5%\\\" breached\","
  "\"time\":\"2026-01-02T03:05:00.000000Z\",\"balance\":\"47400.00000000\",\"equity\":\"47350.00000000\","
  "\"evidence\":{\"rule\":\"daily_loss\",\"limit\":\"2500.00000000\"}}";

static void
test_hashes_and_channels (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  redisContext *sub;
  redisReply *r;

  redis_up (fx);
  sub = connect_test (fx);
  g_assert_nonnull (sub);
  r = redisCommand (sub, "PSUBSCRIBE p:events:*");
  g_assert_nonnull (r);
  freeReplyObject (r);

  host_up (fx, NULL);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));

  g_ptr_array_add (sent, publish_json (fx, "assessment.created", "asm-1", TRUE, created));
  g_ptr_array_add (sent, publish_quote (fx, "crypto:BTC-USD", "64250.1", "64251.2", "64250.5"));
  g_ptr_array_add (sent, publish_json (fx, "order.filled", "asm-1", TRUE, filled));
  g_ptr_array_add (sent, publish_json (fx, "trade.executed", "asm-1", TRUE, traded));
  g_ptr_array_add (sent, publish_json (fx, "position.opened", "asm-1", TRUE, opened1));
  g_ptr_array_add (sent, publish_json (fx, "position.opened", "asm-1", TRUE, opened2));
  g_ptr_array_add (sent, publish_json (fx, "position.closed", "asm-1", TRUE, closed1));
  /* the later quote has no last: the hash must not keep the old one */
  g_ptr_array_add (sent, publish_quote (fx, "crypto:BTC-USD", "64260.0", "64261.0", NULL));
  g_ptr_array_add (sent, publish_quote (fx, "crypto:ETH-USD", NULL, NULL, "3101.5"));
  g_ptr_array_add (sent, publish_json (fx, "assessment.failed", "asm-1", TRUE, failed_json));
  g_ptr_array_add (sent, publish_json (fx, "market.status", "kalshi:X:yes", FALSE,
                                       "{\"market\":\"kalshi:X:yes\",\"status\":\"halted\"}"));
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (sent->len)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, sent->len);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 0);
  g_assert_cmpfloat (metric (fx, "arb_plugin_published_total"), ==, sent->len);

  /* the latest quote per market */
  assert_field (fx, "p:quote:crypto:BTC-USD", "bid", "64260.0");
  assert_field (fx, "p:quote:crypto:BTC-USD", "ask", "64261.0");
  g_assert_null (hget (fx, "p:quote:crypto:BTC-USD", "last"));
  assert_field (fx, "p:quote:crypto:BTC-USD", "source", "replay");
  assert_field (fx, "p:quote:crypto:BTC-USD", "sourceTime", "2026-01-02T03:04:05.000001Z");
  assert_field (fx, "p:quote:crypto:BTC-USD", "receiveTime", "2026-01-02T03:04:05.000002Z");
  assert_field (fx, "p:quote:crypto:ETH-USD", "last", "3101.5");
  g_assert_null (hget (fx, "p:quote:crypto:ETH-USD", "bid"));
  g_assert_cmpint (integer (fx, "HLEN %s", "p:quote:crypto:ETH-USD"), ==, 4);

  /* the assessment's summary */
  assert_field (fx, "p:assessment:asm-1", "program", "standard-50k");
  assert_field (fx, "p:assessment:asm-1", "startingBalance", "50000.00000000");
  assert_field (fx, "p:assessment:asm-1", "status", "failed");
  assert_field (fx, "p:assessment:asm-1", "statusReason", "daily loss \"5%\" breached");
  assert_field (fx, "p:assessment:asm-1", "statusTime", "2026-01-02T03:05:00.000000Z");
  assert_field (fx, "p:assessment:asm-1", "balance", "47400.00000000");
  assert_field (fx, "p:assessment:asm-1", "equity", "47350.00000000");
  assert_field (fx, "p:assessment:asm-1", "lastOrderId", "ord-1");
  assert_field (fx, "p:assessment:asm-1", "lastTradeId", "trd-1");
  assert_field (fx, "p:assessment:asm-1", "lastTradeAt", "2026-01-02T03:04:06.000000Z");
  assert_field (fx, "p:assessment:asm-1", "lastEventType", "assessment.failed");
  assert_field (fx, "p:assessment:asm-1", "lastEventId", arb_event_get_id (g_ptr_array_index (sent, 9)));
  g_assert_null (hget (fx, "p:assessment:asm-1", "openPositions"));
  g_assert_null (hget (fx, "p:assessment:asm-1", "statusReasonX"));
  /* the open positions: pos-1 closed, pos-2 as the event had it */
  g_assert_cmpint (integer (fx, "HLEN %s", "p:assessment:asm-1:positions"), ==, 1);
  assert_field (fx, "p:assessment:asm-1:positions", "pos-2", opened2);
  /* market events do not touch summaries */
  g_assert_cmpint (integer (fx, "EXISTS %s", "p:assessment:kalshi:X:yes"), ==, 0);

  /* every event on its channel, in order, as its envelope */
  for (guint i = 0; i < sent->len; i++)
    {
      ArbEvent *ev = g_ptr_array_index (sent, i);
      g_autofree char *channel = g_strdup_printf ("p:events:%s", arb_event_get_event_type (ev));
      redisReply *m = NULL;

      g_assert_cmpint (redisGetReply (sub, (void **) &m), ==, REDIS_OK);
      g_assert_nonnull (m);
      g_assert_cmpint (m->type, ==, REDIS_REPLY_ARRAY);
      g_assert_cmpuint (m->elements, ==, 4); /* pmessage, pattern, channel, payload */
      g_assert_cmpstr (m->element[2]->str, ==, channel);
      g_assert_cmpstr (m->element[3]->str, ==, arb_event_get_json (ev));
      freeReplyObject (m);
    }
  redisFree (sub);
}

/* a key of another type makes Redis refuse that one event; the rest of the
 * batch is written */
static void
test_refused_event (Fixture *fx, gconstpointer data)
{
  g_autoptr(ArbEvent) bad = NULL;
  g_autoptr(ArbEvent) good = NULL;

  redis_up (fx);
  freeReplyObject (command (fx, "SET %s %s", "p:quote:crypto:BAD-USD", "a string"));
  host_up (fx, NULL);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  bad = publish_quote (fx, "crypto:BAD-USD", "1", "2", "1.5");
  good = publish_quote (fx, "crypto:GOOD-USD", "1", "2", "1.5");
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (2)));
  g_assert_cmpfloat (metric (fx, "arb_sink_published_total"), ==, 1);
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), ==, 1);
  assert_field (fx, "p:quote:crypto:GOOD-USD", "last", "1.5");
  g_assert_cmpint (arb_instance_get_health (instance (fx)), ==, ARB_HEALTH_OK);
}

/* Redis killed mid-run and started again, empty: the sink reconnects, and
 * the hashes catch up with the latest quote of every market, including the
 * quotes it could not write while Redis was away */
static void
test_restart (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  gdouble acked;

  redis_up (fx);
  host_up (fx, "reconnect_max=200ms\ndown_after=500ms\n");
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *price = g_strdup_printf ("%u.5", 100 + i);
      g_ptr_array_add (sent, publish_quote (fx, i % 2 ? "crypto:BTC-USD" : "crypto:ETH-USD", NULL, NULL, price));
    }
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (sent->len)));
  assert_field (fx, "p:quote:crypto:BTC-USD", "last", "149.5");

  redis_down (fx);
  /* quotes while Redis is away: failed (best effort), but remembered */
  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *price = g_strdup_printf ("%u.25", 200 + i);
      g_ptr_array_add (sent, publish_quote (fx, i % 2 ? "crypto:BTC-USD" : "crypto:SOL-USD", NULL, NULL, price));
      g_usleep (20 * 1000);
    }
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (sent->len)));
  g_assert_cmpfloat (metric (fx, "arb_sink_failed_total"), >, 0);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));
  {
    g_autofree char *reason = arb_instance_dup_reason (instance (fx));
    g_test_message ("while Redis is away: %s", reason);
  }
  acked = metric (fx, "arb_sink_published_total") + metric (fx, "arb_sink_failed_total");
  g_assert_cmpfloat (acked, ==, sent->len);

  redis_up (fx);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  /* caught up without a new quote: the latest of each market seen */
  assert_field (fx, "p:quote:crypto:BTC-USD", "last", "219.25");
  assert_field (fx, "p:quote:crypto:SOL-USD", "last", "218.25");

  /* and goes on */
  g_ptr_array_add (sent, publish_quote (fx, "crypto:ETH-USD", NULL, NULL, "300.75"));
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (sent->len)));
  assert_field (fx, "p:quote:crypto:ETH-USD", "last", "300.75");
}

static void
test_no_server (Fixture *fx, gconstpointer data)
{
  g_autofree char *reason = NULL;

  host_up (fx, "down_after=500ms\n");
  g_assert_cmpint (arb_instance_get_state (instance (fx)), ==, ARB_INSTANCE_RUNNING);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));
  reason = arb_instance_dup_reason (instance (fx));
  g_test_message ("%s", reason);
  g_assert_nonnull (strstr (reason, "Connection refused"));
  /* and comes up when Redis does */
  redis_up (fx);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
}

static void
test_no_redis_server (void)
{
  g_test_skip ("redis-server is not installed (scripts/deps.txt lists it)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* run by hand, find the build's plugins and nothing installed */
  g_setenv ("ARBITER_PLUGIN_PATH", SINK_PLUGIN_DIR, FALSE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", FALSE);

  {
    g_autofree char *server = g_find_program_in_path ("redis-server");
    if (server == NULL)
      {
        g_test_add_func ("/sink-redis/no-redis-server", test_no_redis_server);
        return g_test_run ();
      }
  }

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/sink-redis/write/hashes-and-channels", test_hashes_and_channels);
  ADD ("/sink-redis/write/refused-event", test_refused_event);
  ADD ("/sink-redis/reconnect/restart-mid-run", test_restart);
  ADD ("/sink-redis/health/no-server", test_no_server);
#undef ADD

  return g_test_run ();
}
