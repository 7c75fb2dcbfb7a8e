/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-redis: keeps the latest quote of every market and a summary of every
 * assessment in Redis hashes and PUBLISHes every event, through a blocking
 * hiredis connection on the relay's worker thread (one MULTI/EXEC pipeline
 * per batch). A thread of its own connects, reconnects with backoff and
 * pings while idle. See README.md for the keys, channels and guarantees. */

#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include <arbiter/arb-plugin.h>

#include "arb-sink-health.h"
#include "arb-sink-json.h"

#define BACKOFF_FIRST_MS 100
/* an idle connection is checked this often */
#define PING_IDLE_US     (5 * G_USEC_PER_SEC)

typedef struct {
  ArbInstance  *inst;            /* borrowed; outlives us */
  char         *host;            /* owned */
  gint          port;
  char         *unix_socket;     /* owned, nullable */
  char         *where;           /* owned: "127.0.0.1:6379", for messages */
  gint64        db;
  char         *username;        /* owned, nullable */
  char         *prefix;          /* owned */
  gboolean      publish;
  struct timeval connect_timeout;
  struct timeval command_timeout;
  gint64        backoff_max_ms;
  SinkHealth    health;

  GMutex        lock;            /* guards what follows, and the use of ctx */
  GCond         cond;            /* wakes the keeper: quit, or the connection dropped */
  redisContext *ctx;             /* owned, nullable: NULL while disconnected */
  gboolean      quit;
  gint64        last_io_us;      /* monotonic */
  GHashTable   *catch_up;        /* market → ArbEvent (owned ref): latest quote not written */
  GThread      *keeper;          /* owned, nullable */

  /* the worker thread's scratch, reused across batches */
  GPtrArray    *argv;            /* element-type utf8 (owned): every argument of the batch */
  GArray       *argc;            /* element-type int: arguments per command */
  GArray       *owner;           /* element-type int: the batch index of each command, -1 for MULTI */
  GString      *json_scratch;
} RedisSink;

static const ArbConfigKey redis_config[] = {
  { "host", ARB_CFG_STRING, ARB_CFG_NONE, "127.0.0.1", 0, 0, NULL, "Redis server host name or address" },
  { "port", ARB_CFG_INT, ARB_CFG_NONE, "6379", 1, 65535, NULL, "Redis server TCP port" },
  { "unix_socket", ARB_CFG_PATH, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "connect through this Unix socket instead of host and port" },
  { "db", ARB_CFG_INT, ARB_CFG_NONE, "0", 0, 65535, NULL, "database number (SELECT)" },
  { "username", ARB_CFG_STRING, ARB_CFG_NONE, NULL, 0, 0, NULL, "ACL user name for AUTH (Redis 6 and later)" },
  { "password", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL, "password for AUTH" },
  { "key_prefix", ARB_CFG_STRING, ARB_CFG_NONE, "arbiter", 0, 0, NULL,
    "keys are PREFIX:quote:<market>, PREFIX:assessment:<id>[:positions]; channels PREFIX:events:<type>" },
  { "publish", ARB_CFG_BOOL, ARB_CFG_NONE, "true", 0, 0, NULL, "PUBLISH every event on PREFIX:events:<type>" },
  { "connect_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "2s", 10, 60000, NULL, "longest wait for a connection" },
  { "command_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 10, 600000, NULL,
    "longest wait for the answer to a batch; then the connection is dropped and made again" },
  { "reconnect_max", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 600000, NULL,
    "longest wait between two connection attempts (the wait doubles from 100 ms)" },
  { "down_after", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 0, 3600000, NULL,
    "how long Redis may be unreachable (health degraded) before health is down" },
  { NULL },
};

static struct timeval
timeval_of_ms (gint64 ms)
{
  struct timeval tv = { (time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000) };
  return tv;
}

/* ------------------------------------------------------------------------ */
/* The connection                                                           */

/* one command and its answer, while connecting; FALSE with the reason */
static gboolean
command_ok (redisContext *c, char **why, int argc, const char **argv)
{
  redisReply *reply = redisCommandArgv (c, argc, argv, NULL);
  gboolean ok;

  if (reply == NULL)
    {
      *why = g_strdup_printf ("%s: %s", argv[0], c->errstr[0] != '\0' ? c->errstr : "no answer");
      return FALSE;
    }
  ok = reply->type != REDIS_REPLY_ERROR;
  if (!ok)
    *why = g_strdup_printf ("%s: %.*s", argv[0], (int) reply->len, reply->str);
  freeReplyObject (reply);
  return ok;
}

/* a new, ready connection (authenticated, database selected), or NULL */
static redisContext *
connect_once (RedisSink *self, char **why)
{
  g_autofree char *password = NULL;
  redisContext *c;

  if (arb_instance_has_key (self->inst, "password"))
    {
      g_autoptr(GError) error = NULL;
      password = arb_instance_get_secret (self->inst, "password", &error);
      if (error != NULL)
        {
          *why = g_strdup_printf ("password: %s", error->message);
          return NULL;
        }
    }
  if (self->unix_socket != NULL)
    c = redisConnectUnixWithTimeout (self->unix_socket, self->connect_timeout);
  else
    c = redisConnectWithTimeout (self->host, self->port, self->connect_timeout);
  if (c == NULL || c->err != 0)
    {
      *why = g_strdup_printf ("cannot connect to %s: %s", self->where, c != NULL ? c->errstr : "out of memory");
      if (c != NULL)
        redisFree (c);
      if (password != NULL)
        arb_secret_free (g_steal_pointer (&password));
      return NULL;
    }
  redisSetTimeout (c, self->command_timeout);
  redisEnableKeepAlive (c);
  if (password != NULL)
    {
      const char *argv[3] = { "AUTH", self->username != NULL ? self->username : password, password };
      gboolean ok = command_ok (c, why, self->username != NULL ? 3 : 2, argv);
      arb_secret_free (g_steal_pointer (&password));
      if (!ok)
        {
          redisFree (c);
          return NULL;
        }
    }
  if (self->db != 0)
    {
      g_autofree char *db = g_strdup_printf ("%" G_GINT64_FORMAT, self->db);
      const char *argv[2] = { "SELECT", db };
      if (!command_ok (c, why, 2, argv))
        {
          redisFree (c);
          return NULL;
        }
    }
  {
    const char *argv[1] = { "PING" };
    if (!command_ok (c, why, 1, argv))
      {
        redisFree (c);
        return NULL;
      }
  }
  return c;
}

/* with the lock held: the connection broke; the keeper makes a new one */
static void
drop_connection_locked (RedisSink *self)
{
  if (self->ctx == NULL)
    return;
  redisFree (self->ctx);
  self->ctx = NULL;
  g_cond_broadcast (&self->cond);
}

static gboolean write_catch_up_locked (RedisSink *self, char **why);

static gpointer
keeper_main (gpointer data)
{
  RedisSink *self = data;
  gint64 backoff_ms = 0;

  g_mutex_lock (&self->lock);
  while (!self->quit)
    {
      if (self->ctx == NULL)
        {
          g_autofree char *why = NULL;
          redisContext *c;

          /* connecting blocks: without the lock, so that write() can fail
           * its batches at once meanwhile */
          g_mutex_unlock (&self->lock);
          c = connect_once (self, &why);
          g_mutex_lock (&self->lock);
          if (c != NULL && !self->quit)
            {
              g_autofree char *catch_up_why = NULL;
              guint n = g_hash_table_size (self->catch_up);

              self->ctx = c;
              self->last_io_us = g_get_monotonic_time ();
              backoff_ms = 0;
              if (!write_catch_up_locked (self, &catch_up_why))
                {
                  drop_connection_locked (self);
                  why = g_steal_pointer (&catch_up_why);
                }
              else
                {
                  if (n > 0)
                    arb_info (self->inst, "connected to %s; wrote the latest quote of %u markets missed meanwhile",
                              self->where, n);
                  sink_health_ok (&self->health, "connected to %s", self->where);
                  continue;
                }
            }
          else if (c != NULL)
            {
              redisFree (c);
              break;
            }
          sink_health_unreachable (&self->health, "%s", why);
          backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS : MIN (backoff_ms * 2, self->backoff_max_ms);
          g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () + backoff_ms * 1000);
          continue;
        }

      /* connected: wait for a drop, or check an idle connection now and then */
      if (!g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () + G_USEC_PER_SEC)
          && self->ctx != NULL && g_get_monotonic_time () - self->last_io_us >= PING_IDLE_US)
        {
          g_autofree char *why = NULL;
          const char *argv[1] = { "PING" };

          if (command_ok (self->ctx, &why, 1, argv))
            self->last_io_us = g_get_monotonic_time ();
          else
            {
              arb_info (self->inst, "connection to %s lost: %s", self->where, why);
              drop_connection_locked (self);
              sink_health_unreachable (&self->health, "connection to %s lost: %s", self->where, why);
            }
        }
      sink_health_tick (&self->health);
    }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */

static void
push_arg (RedisSink *self, char *arg /* owned */)
{
  g_ptr_array_add (self->argv, arg);
}

static void
end_command (RedisSink *self, int argc, int owner)
{
  g_array_append_val (self->argc, argc);
  g_array_append_val (self->owner, owner);
}

typedef struct {
  RedisSink *self;
  int        argc;     /* arguments pushed for the command being built */
  gboolean   has[3];   /* quote: bid, ask, last */
  char      *position; /* position events: the position id, owned */
  char      *assessment; /* status events: the assessment id in data, owned */
} FieldWalk;

static void
push_field (FieldWalk *w, const char *name, gsize name_len, const char *value, gsize value_len)
{
  push_arg (w->self, g_strndup (name, name_len));
  push_arg (w->self, g_strndup (value, value_len));
  w->argc += 2;
}

/* quote data: bid, ask, last, source, sourceTime, receiveTime */
static void
quote_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
              gpointer user_data)
{
  static const char *const prices[] = { "bid", "ask", "last" };
  FieldWalk *w = user_data;

  if (kind != SINK_JSON_STRING && kind != SINK_JSON_NUMBER)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (prices); i++)
    if (sink_json_name_is (name, name_len, prices[i]))
      {
        w->has[i] = TRUE;
        push_field (w, name, name_len, value, value_len);
        return;
      }
  if (sink_json_name_is (name, name_len, "source") || sink_json_name_is (name, name_len, "sourceTime")
      || sink_json_name_is (name, name_len, "receiveTime"))
    push_field (w, name, name_len, value, value_len);
}

/* the scalar fields of an assessment (assessment.created) */
static void
assessment_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
                   gpointer user_data)
{
  FieldWalk *w = user_data;

  if (kind != SINK_JSON_STRING && kind != SINK_JSON_NUMBER && kind != SINK_JSON_BOOL)
    return;
  /* derived from the open positions, which the positions hash holds */
  if (sink_json_name_is (name, name_len, "openPositions"))
    return;
  push_field (w, name, name_len, value, value_len);
}

/* assessment.passed and .failed: the new status */
static void
status_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
               gpointer user_data)
{
  FieldWalk *w = user_data;

  if (kind != SINK_JSON_STRING && kind != SINK_JSON_NUMBER)
    return;
  if (sink_json_name_is (name, name_len, "status") || sink_json_name_is (name, name_len, "balance")
      || sink_json_name_is (name, name_len, "equity"))
    push_field (w, name, name_len, value, value_len);
  else if (sink_json_name_is (name, name_len, "reason"))
    push_field (w, "statusReason", strlen ("statusReason"), value, value_len);
  else if (sink_json_name_is (name, name_len, "time"))
    push_field (w, "statusTime", strlen ("statusTime"), value, value_len);
}

/* position events: the position id */
static void
position_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
                 gpointer user_data)
{
  FieldWalk *w = user_data;

  if (kind == SINK_JSON_STRING && sink_json_name_is (name, name_len, "id") && w->position == NULL)
    w->position = g_strndup (value, value_len);
}

/* trade.executed and order.filled: the last one's id and time */
static void
trade_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
              gpointer user_data)
{
  FieldWalk *w = user_data;

  if (kind != SINK_JSON_STRING)
    return;
  if (sink_json_name_is (name, name_len, "id"))
    push_field (w, "lastTradeId", strlen ("lastTradeId"), value, value_len);
  else if (sink_json_name_is (name, name_len, "executedAt"))
    push_field (w, "lastTradeAt", strlen ("lastTradeAt"), value, value_len);
  else if (sink_json_name_is (name, name_len, "market"))
    push_field (w, "lastTradeMarket", strlen ("lastTradeMarket"), value, value_len);
}

static void
order_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
              gpointer user_data)
{
  FieldWalk *w = user_data;

  if (kind == SINK_JSON_STRING && sink_json_name_is (name, name_len, "id"))
    push_field (w, "lastOrderId", strlen ("lastOrderId"), value, value_len);
}

/* HSET PREFIX:quote:<market> ..., and HDEL of the prices the quote lacks */
static gboolean
add_quote (RedisSink *self, ArbEvent *ev, int owner)
{
  static const char *const prices[] = { "bid", "ask", "last" };
  FieldWalk w = { self, 0 };
  guint mark = self->argv->len;
  g_autofree char *key = g_strdup_printf ("%s:quote:%s", self->prefix, arb_event_get_key (ev));
  int missing = 0;

  push_arg (self, g_strdup ("HSET"));
  push_arg (self, g_strdup (key));
  w.argc = 2;
  if (!sink_json_each_data_member (arb_event_get_json (ev), arb_event_get_json_length (ev), self->json_scratch,
                                   quote_member, &w)
      || w.argc == 2)
    {
      g_ptr_array_set_size (self->argv, mark);
      return FALSE;
    }
  end_command (self, w.argc, owner);
  for (guint i = 0; i < G_N_ELEMENTS (prices); i++)
    if (!w.has[i])
      missing++;
  if (missing > 0)
    {
      push_arg (self, g_strdup ("HDEL"));
      push_arg (self, g_strdup (key));
      for (guint i = 0; i < G_N_ELEMENTS (prices); i++)
        if (!w.has[i])
          push_arg (self, g_strdup (prices[i]));
      end_command (self, 2 + missing, owner);
    }
  return TRUE;
}

/* the summary hash and, for position events, the positions hash */
static gboolean
add_ledger (RedisSink *self, ArbEvent *ev, int owner)
{
  const char *type = arb_event_get_event_type (ev);
  const char *json = arb_event_get_json (ev);
  gsize len = arb_event_get_json_length (ev);
  const char *id = arb_event_get_key (ev);
  g_autofree char *key = NULL;
  g_autofree char *time = NULL;
  SinkJsonMemberFunc fn = NULL;
  FieldWalk w = { self, 0 };
  guint mark = self->argv->len;
  GDateTime *dt;

  if (id == NULL)
    return FALSE;
  key = g_strdup_printf ("%s:assessment:%s", self->prefix, id);
  dt = g_date_time_new_from_unix_utc (arb_event_get_time (ev) / G_USEC_PER_SEC);
  time = dt != NULL ? g_date_time_format (dt, "%FT%TZ") : g_strdup ("");
  g_clear_pointer (&dt, g_date_time_unref);

  if (g_str_equal (type, "assessment.created"))
    fn = assessment_member;
  else if (g_str_equal (type, "assessment.passed") || g_str_equal (type, "assessment.failed"))
    fn = status_member;
  else if (g_str_equal (type, "trade.executed"))
    fn = trade_member;
  else if (g_str_equal (type, "order.filled"))
    fn = order_member;

  push_arg (self, g_strdup ("HSET"));
  push_arg (self, g_strdup (key));
  w.argc = 2;
  if (fn != NULL && !sink_json_each_data_member (json, len, self->json_scratch, fn, &w))
    {
      g_ptr_array_set_size (self->argv, mark);
      return FALSE;
    }
  push_field (&w, "lastEventId", strlen ("lastEventId"), arb_event_get_id (ev), strlen (arb_event_get_id (ev)));
  push_field (&w, "lastEventType", strlen ("lastEventType"), type, strlen (type));
  push_field (&w, "lastEventTime", strlen ("lastEventTime"), time, strlen (time));
  end_command (self, w.argc, owner);

  if (g_str_has_prefix (type, "position."))
    {
      g_autofree char *positions = g_strdup_printf ("%s:positions", key);

      if (!sink_json_each_data_member (json, len, self->json_scratch, position_member, &w) || w.position == NULL)
        {
          g_free (w.position);
          return TRUE; /* the summary still counts */
        }
      if (g_str_equal (type, "position.opened"))
        {
          /* the position as the event has it: the data object */
          const char *data = "{}";
          gsize data_len = 2;

          sink_json_get_data (json, len, self->json_scratch, &data, &data_len);
          push_arg (self, g_strdup ("HSET"));
          push_arg (self, g_strdup (positions));
          push_arg (self, g_strdup (w.position));
          push_arg (self, g_strndup (data, data_len));
          end_command (self, 4, owner);
        }
      else
        {
          /* closed, settled: no longer open */
          push_arg (self, g_strdup ("HDEL"));
          push_arg (self, g_strdup (positions));
          push_arg (self, g_strdup (w.position));
          end_command (self, 3, owner);
        }
      g_free (w.position);
    }
  return TRUE;
}

static void
add_publish (RedisSink *self, ArbEvent *ev, int owner)
{
  push_arg (self, g_strdup ("PUBLISH"));
  push_arg (self, g_strdup_printf ("%s:events:%s", self->prefix, arb_event_get_event_type (ev)));
  push_arg (self, g_strndup (arb_event_get_json (ev), arb_event_get_json_length (ev)));
  end_command (self, 3, owner);
}

static void
clear_commands (RedisSink *self)
{
  g_ptr_array_set_size (self->argv, 0);
  g_array_set_size (self->argc, 0);
  g_array_set_size (self->owner, 0);
}

static void
add_simple (RedisSink *self, const char *word)
{
  push_arg (self, g_strdup (word));
  end_command (self, 1, -1);
}

/* Sends the commands built so far as one MULTI/EXEC pipeline and reads the
 * answers. FALSE with @why when the connection failed (nothing is known
 * then); else @failed (may be NULL) gets, per batch index, the first error
 * Redis gave for one of its commands. */
static gboolean
run_pipeline_locked (RedisSink *self, guint n_events, char **failed, char **why)
{
  const char **argv = (const char **) self->argv->pdata;
  redisReply *exec = NULL;
  guint n_commands = self->argc->len;
  guint arg = 0;

  for (guint i = 0; i < n_commands; i++)
    {
      int argc = g_array_index (self->argc, int, i);
      if (redisAppendCommandArgv (self->ctx, argc, argv + arg, NULL) != REDIS_OK)
        {
          *why = g_strdup_printf ("%s: %s", self->where, self->ctx->errstr);
          return FALSE;
        }
      arg += (guint) argc;
    }
  /* MULTI and each queued command answer +OK / +QUEUED; EXEC answers all */
  for (guint i = 0; i < n_commands; i++)
    {
      redisReply *reply = NULL;

      if (redisGetReply (self->ctx, (void **) &reply) != REDIS_OK || reply == NULL)
        {
          *why = g_strdup_printf ("%s: %s", self->where,
                                  self->ctx->errstr[0] != '\0' ? self->ctx->errstr : "no answer");
          return FALSE;
        }
      if (i + 1 == n_commands)
        exec = reply;
      else
        {
          int owner = g_array_index (self->owner, int, i);
          if (reply->type == REDIS_REPLY_ERROR && owner >= 0 && failed != NULL && failed[owner] == NULL)
            failed[owner] = g_strndup (reply->str, reply->len);
          freeReplyObject (reply);
        }
    }
  self->last_io_us = g_get_monotonic_time ();
  if (exec->type == REDIS_REPLY_ARRAY)
    {
      /* commands 1 .. n-2 are the queued ones */
      for (gsize i = 0; i < exec->elements && i + 1 < n_commands; i++)
        {
          int owner = g_array_index (self->owner, int, i + 1);
          redisReply *r = exec->element[i];
          if (r->type == REDIS_REPLY_ERROR && owner >= 0 && failed != NULL && failed[owner] == NULL)
            failed[owner] = g_strndup (r->str, r->len);
        }
    }
  else
    {
      /* EXECABORT: a command was refused while queueing, so none ran */
      g_autofree char *text = exec->type == REDIS_REPLY_ERROR ? g_strndup (exec->str, exec->len)
                                                              : g_strdup ("EXEC did not run");
      for (guint i = 0; failed != NULL && i < n_events; i++)
        if (failed[i] == NULL)
          failed[i] = g_strdup (text);
    }
  freeReplyObject (exec);
  return TRUE;
}

/* with the lock held, right after connecting: the latest quote of every
 * market whose quotes could not be written while Redis was away */
static gboolean
write_catch_up_locked (RedisSink *self, char **why)
{
  g_autoptr(GPtrArray) events = NULL;
  GHashTableIter it;
  gpointer ev;
  gboolean ok;

  if (g_hash_table_size (self->catch_up) == 0)
    return TRUE;
  events = g_ptr_array_new ();
  clear_commands (self);
  add_simple (self, "MULTI");
  g_hash_table_iter_init (&it, self->catch_up);
  while (g_hash_table_iter_next (&it, NULL, &ev))
    if (add_quote (self, ev, (int) events->len))
      g_ptr_array_add (events, ev);
  add_simple (self, "EXEC");
  ok = run_pipeline_locked (self, events->len, NULL, why);
  clear_commands (self);
  if (ok)
    g_hash_table_remove_all (self->catch_up);
  return ok;
}

/* with the lock held: the latest quotes of @batch, to write once Redis is back */
static void
remember_quotes_locked (RedisSink *self, ArbBatch *batch)
{
  for (guint i = 0; i < arb_batch_get_length (batch); i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);
      if (g_str_equal (arb_event_get_event_type (ev), "quote") && arb_event_get_key (ev) != NULL)
        g_hash_table_replace (self->catch_up, g_strdup (arb_event_get_key (ev)), arb_event_ref (ev));
    }
}

/* ------------------------------------------------------------------------ */
/* The sink                                                                 */

static gpointer
redis_create (ArbInstance *inst, GError **error)
{
  RedisSink *self = g_new0 (RedisSink, 1);
  const char *sock = arb_instance_get_path (inst, "unix_socket");

  self->inst = inst;
  self->host = g_strdup (arb_instance_get_string (inst, "host"));
  self->port = (gint) arb_instance_get_int (inst, "port");
  self->unix_socket = sock != NULL && *sock != '\0' ? g_strdup (sock) : NULL;
  self->where = self->unix_socket != NULL ? g_strdup_printf ("unix:%s", self->unix_socket)
                                          : g_strdup_printf ("%s:%d", self->host, self->port);
  self->db = arb_instance_get_int (inst, "db");
  self->username = g_strdup (arb_instance_get_string (inst, "username"));
  self->prefix = g_strdup (arb_instance_get_string (inst, "key_prefix"));
  self->publish = arb_instance_get_boolean (inst, "publish");
  self->connect_timeout = timeval_of_ms (arb_instance_get_duration_ms (inst, "connect_timeout"));
  self->command_timeout = timeval_of_ms (arb_instance_get_duration_ms (inst, "command_timeout"));
  self->backoff_max_ms = arb_instance_get_duration_ms (inst, "reconnect_max");
  sink_health_init (&self->health, inst, arb_instance_get_duration_ms (inst, "down_after"));
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->catch_up = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) arb_event_unref);
  self->argv = g_ptr_array_new_with_free_func (g_free);
  self->argc = g_array_new (FALSE, FALSE, sizeof (int));
  self->owner = g_array_new (FALSE, FALSE, sizeof (int));
  self->json_scratch = g_string_new (NULL);
  return self;
}

static gboolean
redis_start (gpointer data, GError **error)
{
  RedisSink *self = data;

  if (self->keeper != NULL)
    return TRUE;
  /* a password that cannot be read now will not be readable on reconnect
   * either: say so at start (the file may still appear: retried) */
  if (arb_instance_has_key (self->inst, "password"))
    {
      g_autoptr(GError) local = NULL;
      char *password = arb_instance_get_secret (self->inst, "password", &local);
      if (local != NULL)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE, "password: %s", local->message);
          return FALSE;
        }
      arb_secret_free (password);
    }
  g_mutex_lock (&self->health.lock);
  self->health.trouble_since_us = 0;
  g_mutex_unlock (&self->health.lock);
  sink_health_degraded (&self->health, "connecting to %s", self->where);
  self->quit = FALSE;
  /* connecting blocks, so the keeper does it, never the main context */
  self->keeper = g_thread_new ("redis-keeper", keeper_main, self);
  return TRUE;
}

static gboolean
redis_write (gpointer data, ArbBatch *batch, GError **error)
{
  RedisSink *self = data;
  guint n = arb_batch_get_length (batch);
  g_autofree char **failed = g_new0 (char *, n);
  g_autofree gboolean *written = g_new0 (gboolean, n);
  g_autofree char *why = NULL;
  guint n_ok = 0;

  g_mutex_lock (&self->lock);
  if (self->ctx == NULL)
    {
      remember_quotes_locked (self, batch);
      g_mutex_unlock (&self->lock);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE, "not connected to %s (reconnecting)",
                   self->where);
      for (guint i = 0; i < n; i++)
        arb_instance_ack (self->inst, arb_batch_get (batch, i), *error);
      arb_instance_counter_add (self->inst, "failed_total", n);
      return FALSE;
    }

  clear_commands (self);
  add_simple (self, "MULTI");
  for (guint i = 0; i < n; i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);
      const char *type = arb_event_get_event_type (ev);
      gboolean ok = TRUE;

      if (g_str_equal (type, "quote"))
        ok = arb_event_get_key (ev) != NULL && add_quote (self, ev, (int) i);
      else if (arb_event_is_ledger (ev))
        ok = add_ledger (self, ev, (int) i);
      if (!ok)
        {
          failed[i] = g_strdup ("the event's envelope cannot be read");
          continue;
        }
      if (self->publish)
        add_publish (self, ev, (int) i);
      written[i] = TRUE;
    }
  add_simple (self, "EXEC");

  if (!run_pipeline_locked (self, n, failed, &why))
    {
      g_autoptr(GError) local = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                                             "writing to Redis failed: %s", why);
      drop_connection_locked (self);
      remember_quotes_locked (self, batch);
      clear_commands (self);
      g_mutex_unlock (&self->lock);
      arb_info (self->inst, "%s; reconnecting", local->message);
      sink_health_unreachable (&self->health, "connection to %s lost: %s", self->where, why);
      for (guint i = 0; i < n; i++)
        {
          arb_instance_ack (self->inst, arb_batch_get (batch, i), local);
          g_free (failed[i]);
        }
      arb_instance_counter_add (self->inst, "failed_total", n);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  clear_commands (self);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < n; i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);

      if (failed[i] == NULL)
        {
          arb_instance_ack (self->inst, ev, NULL);
          n_ok++;
          continue;
        }
      {
        /* Redis refused it (a key of another type, say): sending it again
         * would not help */
        g_autoptr(GError) refused = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL, "event %s: %s",
                                                 arb_event_get_id (ev), failed[i]);
        arb_warning (self->inst, "%s", refused->message);
        arb_instance_ack (self->inst, ev, refused);
        g_free (failed[i]);
      }
    }
  arb_instance_counter_add (self->inst, "published_total", n_ok);
  if (n_ok < n)
    arb_instance_counter_add (self->inst, "failed_total", n - n_ok);
  return TRUE;
}

static gboolean
redis_flush (gpointer data, GError **error)
{
  /* write() waits for Redis' answers: nothing is pending here */
  return TRUE;
}

static void
redis_stop (gpointer data)
{
  RedisSink *self = data;

  if (self->keeper == NULL)
    return;
  g_mutex_lock (&self->lock);
  self->quit = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  /* at most one connection attempt (connect_timeout) away */
  g_thread_join (g_steal_pointer (&self->keeper));
  g_mutex_lock (&self->lock);
  drop_connection_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
redis_destroy (gpointer data)
{
  RedisSink *self = data;

  redis_stop (self);
  g_hash_table_unref (self->catch_up);
  g_ptr_array_unref (self->argv);
  g_array_unref (self->argc);
  g_array_unref (self->owner);
  g_string_free (self->json_scratch, TRUE);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  sink_health_clear (&self->health);
  g_free (self->host);
  g_free (self->unix_socket);
  g_free (self->where);
  g_free (self->username);
  g_free (self->prefix);
  g_free (self);
}

static const ArbSinkVTable redis_vtable = {
  .size = sizeof (ArbSinkVTable),
  .create = redis_create,
  .start = redis_start,
  .write = redis_write,
  .flush = redis_flush,
  .stop = redis_stop,
  .destroy = redis_destroy,
};

static const ArbPluginDesc redis_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "sink-redis",
  .version = "0.1.0",
  .summary = "Latest quotes, assessment summaries and open positions in Redis hashes; every event PUBLISHed",
  .kind = ARB_PLUGIN_SINK,
  .config = redis_config,
  .vtable = &redis_vtable,
};

ARB_PLUGIN_DEFINE (sink_redis, redis_desc)
