/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-postgres: archives quotes (and, with archive_events=true, every event)
 * in PostgreSQL tables partitioned by day, over its own libpq connection used
 * on the relay's worker thread: one transaction per batch, quotes by COPY,
 * events by one multi-row INSERT ... ON CONFLICT DO NOTHING. A thread of its
 * own connects, reconnects with backoff, creates partitions ahead and drops
 * the ones past retention_days. See README.md. */

#include <string.h>

#include <libpq-fe.h>

#include <arbiter/arb-plugin.h>

#include "arb-sink-health.h"
#include "arb-sink-json.h"

#define BACKOFF_FIRST_MS   100
#define PING_IDLE_US       (5 * G_USEC_PER_SEC)
#define MAINTENANCE_US     (G_USEC_PER_SEC * (gint64) 3600)
#define DAY_US             (G_USEC_PER_SEC * (gint64) 86400)
#define EVENT_PARAMS       7

typedef enum {
  TABLE_QUOTES,
  TABLE_EVENTS,
  N_TABLES,
} Table;

static const char *const table_names[N_TABLES] = { "quotes_archive", "events_archive" };

typedef struct {
  ArbInstance *inst;            /* borrowed; outlives us */
  char        *conninfo;        /* owned */
  char        *schema;          /* owned, quoted identifier */
  char        *schema_raw;      /* owned, as configured */
  gint64       retention_days;
  gint64       ahead_days;
  gboolean     archive_events;
  gint64       connect_timeout_s;
  gint64       backoff_max_ms;
  SinkHealth   health;

  GMutex       lock;            /* guards what follows, and the use of conn */
  GCond        cond;            /* wakes the keeper */
  PGconn      *conn;            /* owned, nullable: NULL while disconnected */
  gboolean     quit;
  gint64       last_io_us;      /* monotonic */
  gint64       last_maintenance_us; /* monotonic, 0: never */
  gint64       maintained_day;  /* the UTC day (days since the epoch) of the last maintenance */
  GHashTable  *partitions;      /* "quotes_archive_p20260121": partitions known to exist */
  GThread     *keeper;          /* owned, nullable */

  /* the worker thread's scratch */
  GString     *copy;
  GString     *sql;
  GPtrArray   *params;          /* element-type utf8 (owned) */
  GString     *json_scratch;
} PgSink;

static const ArbConfigKey pg_config[] = {
  { "conninfo", ARB_CFG_STRING, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "libpq connection string or URI (postgresql://user@host:5432/db); keep the password in password_file" },
  { "password", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL, "the database password, if conninfo has none" },
  { "schema", ARB_CFG_STRING, ARB_CFG_NONE, "public", 0, 0, NULL,
    "schema of the tables quotes_archive and events_archive (created if missing)" },
  { "retention_days", ARB_CFG_INT, ARB_CFG_NONE, "30", 1, 36500, NULL,
    "partitions whose day ended more than this many days ago are dropped" },
  { "partitions_ahead", ARB_CFG_INT, ARB_CFG_NONE, "3", 1, 366, NULL,
    "daily partitions created ahead of today (UTC)" },
  { "archive_events", ARB_CFG_BOOL, ARB_CFG_NONE, "false", 0, 0, NULL,
    "also archive every event the sink receives in events_archive, de-duplicated by id" },
  { "connect_timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 1000, 600000, NULL,
    "longest wait for a connection (libpq connect_timeout, whole seconds)" },
  { "reconnect_max", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 600000, NULL,
    "longest wait between two connection attempts (the wait doubles from 100 ms)" },
  { "down_after", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 0, 3600000, NULL,
    "how long PostgreSQL may be unreachable (health degraded) before health is down" },
  { NULL },
};

/* ------------------------------------------------------------------------ */
/* Days and partitions                                                      */

static gint64
day_of (gint64 unix_us)
{
  return unix_us >= 0 ? unix_us / DAY_US : -((-unix_us + DAY_US - 1) / DAY_US);
}

static char *
day_text (gint64 day, const char *format)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (day * 86400);
  return dt != NULL ? g_date_time_format (dt, format) : g_strdup ("");
}

static char *
partition_name (Table t, gint64 day)
{
  g_autofree char *ymd = day_text (day, "%Y%m%d");
  return g_strdup_printf ("%s_p%s", table_names[t], ymd);
}

/* "YYYY-MM-DD HH:MM:SS.uuuuuu+00" */
static char *
timestamp_text (gint64 unix_us)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_us / G_USEC_PER_SEC);
  g_autofree char *base = dt != NULL ? g_date_time_format (dt, "%F %T") : g_strdup ("1970-01-01 00:00:00");
  return g_strdup_printf ("%s.%06d+00", base, (int) (unix_us % G_USEC_PER_SEC + (unix_us < 0 ? G_USEC_PER_SEC : 0)));
}

/* ------------------------------------------------------------------------ */
/* SQL helpers                                                              */

/* libpq's message as one line: it ends in a newline and may hold more */
static char *
error_text (PGconn *conn)
{
  char *text = g_strstrip (g_strdup (conn != NULL ? PQerrorMessage (conn) : "out of memory"));

  for (char *p = text; *p != '\0'; p++)
    if (*p == '\n' || *p == '\t')
      *p = ' ';
  return text;
}

/* runs @sql; FALSE with the server's words in @why */
static gboolean
exec_ok (PGconn *conn, const char *sql, char **why)
{
  PGresult *res = PQexec (conn, sql);
  ExecStatusType st = PQresultStatus (res);
  gboolean ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

  if (!ok && why != NULL)
    *why = error_text (conn);
  PQclear (res);
  return ok;
}

static gboolean
connection_lost (PGconn *conn)
{
  return PQstatus (conn) != CONNECTION_OK;
}

static gboolean
create_tables (PgSink *self, PGconn *conn, char **why)
{
  g_autofree char *sql = g_strdup_printf (
    "CREATE SCHEMA IF NOT EXISTS %1$s;"
    "CREATE TABLE IF NOT EXISTS %1$s.quotes_archive ("
    "  receive_time timestamptz NOT NULL,"
    "  market text NOT NULL,"
    "  bid numeric, ask numeric, last numeric,"
    "  source text, source_time timestamptz,"
    "  event_id text NOT NULL"
    ") PARTITION BY RANGE (receive_time);"
    "CREATE INDEX IF NOT EXISTS quotes_archive_market_time ON %1$s.quotes_archive (market, receive_time);"
    "CREATE TABLE IF NOT EXISTS %1$s.events_archive ("
    "  time timestamptz NOT NULL,"
    "  id text NOT NULL,"
    "  type text NOT NULL,"
    "  key text,"
    "  assessment_id text,"
    "  correlation_id text,"
    "  envelope jsonb NOT NULL,"
    "  PRIMARY KEY (time, id)"
    ") PARTITION BY RANGE (time);"
    "CREATE INDEX IF NOT EXISTS events_archive_assessment ON %1$s.events_archive (assessment_id, time)"
    "  WHERE assessment_id IS NOT NULL;",
    self->schema);

  /* two daemons starting at once: one creates, the other waits */
  return exec_ok (conn, "BEGIN", why) && exec_ok (conn, "SELECT pg_advisory_xact_lock(hashtext('arbiter-sink-postgres'))", why)
         && exec_ok (conn, sql, why) && exec_ok (conn, "COMMIT", why);
}

/* CREATE TABLE IF NOT EXISTS ... PARTITION OF for @day, unless known */
static gboolean
ensure_partition (PgSink *self, PGconn *conn, Table t, gint64 day, char **why)
{
  g_autofree char *name = partition_name (t, day);
  g_autofree char *from = NULL;
  g_autofree char *to = NULL;
  g_autofree char *sql = NULL;

  if (g_hash_table_contains (self->partitions, name))
    return TRUE;
  from = day_text (day, "%F 00:00:00+00");
  to = day_text (day + 1, "%F 00:00:00+00");
  sql = g_strdup_printf ("CREATE TABLE IF NOT EXISTS %s.%s PARTITION OF %s.%s FOR VALUES FROM ('%s') TO ('%s')",
                         self->schema, name, self->schema, table_names[t], from, to);
  if (!exec_ok (conn, sql, why))
    return FALSE;
  g_hash_table_add (self->partitions, g_steal_pointer (&name));
  return TRUE;
}

/* the body of maintain(), inside its transaction */
static gboolean
maintain_txn (PgSink *self, PGconn *conn, guint *dropped, char **why)
{
  gint64 today = day_of (arb_now_us ());
  /* a partition whose day ended before this is dropped */
  gint64 keep_from = day_of (arb_now_us () - self->retention_days * DAY_US);
  const char *params[1] = { self->schema_raw };
  gboolean ok = TRUE;
  PGresult *res;

  for (guint t = 0; t < N_TABLES; t++)
    {
      if (t == TABLE_EVENTS && !self->archive_events)
        continue;
      for (gint64 d = today; d <= today + self->ahead_days; d++)
        if (!ensure_partition (self, conn, t, d, why))
          return FALSE;
    }

  res = PQexecParams (conn,
                      "SELECT c.relname, p.relname FROM pg_inherits i"
                      " JOIN pg_class c ON c.oid = i.inhrelid"
                      " JOIN pg_class p ON p.oid = i.inhparent"
                      " JOIN pg_namespace n ON n.oid = p.relnamespace"
                      " WHERE n.nspname = $1 AND p.relname IN ('quotes_archive', 'events_archive')",
                      1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    {
      *why = error_text (conn);
      PQclear (res);
      return FALSE;
    }
  for (int i = 0; ok && i < PQntuples (res); i++)
    {
      const char *child = PQgetvalue (res, i, 0);
      const char *parent = PQgetvalue (res, i, 1);
      g_autofree char *prefix = g_strdup_printf ("%s_p", parent);
      g_autofree char *sql = NULL;
      g_autoptr(GDateTime) dt = NULL;
      guint y, m, d;

      /* only our own names: an operator's partition is theirs */
      if (!g_str_has_prefix (child, prefix) || strlen (child) != strlen (prefix) + 8
          || sscanf (child + strlen (prefix), "%4u%2u%2u", &y, &m, &d) != 3)
        continue;
      dt = g_date_time_new_utc ((gint) y, (gint) m, (gint) d, 0, 0, 0);
      if (dt == NULL || g_date_time_to_unix (dt) / 86400 >= keep_from)
        continue;
      sql = g_strdup_printf ("DROP TABLE IF EXISTS %s.%s", self->schema, child);
      ok = exec_ok (conn, sql, why);
      if (ok)
        {
          g_hash_table_remove (self->partitions, child);
          (*dropped)++;
        }
    }
  PQclear (res);
  return ok;
}

/* creates today's and the days ahead, drops those past retention; in one
 * transaction under an advisory lock, so that two daemons sharing the
 * tables take turns */
static gboolean
maintain (PgSink *self, PGconn *conn, char **why)
{
  guint dropped = 0;

  if (exec_ok (conn, "BEGIN", why)
      && exec_ok (conn, "SELECT pg_advisory_xact_lock(hashtext('arbiter-sink-postgres'))", why)
      && maintain_txn (self, conn, &dropped, why) && exec_ok (conn, "COMMIT", why))
    {
      if (dropped > 0)
        {
          arb_info (self->inst, "dropped %u partitions older than %" G_GINT64_FORMAT " days", dropped,
                    self->retention_days);
          arb_instance_counter_add (self->inst, "partitions_dropped_total", dropped);
        }
      self->maintained_day = day_of (arb_now_us ());
      self->last_maintenance_us = g_get_monotonic_time ();
      return TRUE;
    }
  /* what the transaction created is rolled back: forget it */
  g_hash_table_remove_all (self->partitions);
  if (!connection_lost (conn))
    exec_ok (conn, "ROLLBACK", NULL);
  return FALSE;
}

/* ------------------------------------------------------------------------ */
/* The connection                                                           */

static PGconn *
connect_once (PgSink *self, char **why)
{
  g_autofree char *password = NULL;
  g_autofree char *timeout = g_strdup_printf ("%" G_GINT64_FORMAT, self->connect_timeout_s);
  const char *keys[5] = { "dbname", "connect_timeout", "application_name", NULL, NULL };
  const char *values[5] = { self->conninfo, timeout, "arbiterd-sink-postgres", NULL, NULL };
  PGconn *conn;

  if (arb_instance_has_key (self->inst, "password"))
    {
      g_autoptr(GError) error = NULL;
      password = arb_instance_get_secret (self->inst, "password", &error);
      if (error != NULL)
        {
          *why = g_strdup_printf ("password: %s", error->message);
          return NULL;
        }
      if (password != NULL)
        {
          keys[3] = "password";
          values[3] = password;
        }
    }
  /* expand_dbname: conninfo is a whole connection string; what follows it
   * only fills in what it does not say */
  conn = PQconnectdbParams (keys, values, 1);
  if (password != NULL)
    arb_secret_free (g_steal_pointer (&password));
  if (conn == NULL || PQstatus (conn) != CONNECTION_OK)
    {
      g_autofree char *text = error_text (conn);
      *why = g_strdup_printf ("cannot connect to PostgreSQL: %s", text);
      PQfinish (conn);
      return NULL;
    }
  /* "already exists, skipping" is no news */
  if (!exec_ok (conn, "SET TIME ZONE 'UTC'", why) || !exec_ok (conn, "SET client_min_messages TO warning", why)
      || !create_tables (self, conn, why))
    {
      PQfinish (conn);
      return NULL;
    }
  g_hash_table_remove_all (self->partitions);
  if (!maintain (self, conn, why))
    {
      PQfinish (conn);
      return NULL;
    }
  return conn;
}

static void
drop_connection_locked (PgSink *self)
{
  if (self->conn == NULL)
    return;
  PQfinish (self->conn);
  self->conn = NULL;
  g_cond_broadcast (&self->cond);
}

static char *
where (PgSink *self)
{
  PGconn *c = self->conn;
  if (c == NULL)
    return g_strdup ("PostgreSQL");
  return g_strdup_printf ("%s:%s/%s", PQhost (c), PQport (c), PQdb (c));
}

static gpointer
keeper_main (gpointer data)
{
  PgSink *self = data;
  gint64 backoff_ms = 0;

  g_mutex_lock (&self->lock);
  while (!self->quit)
    {
      if (self->conn == NULL)
        {
          g_autofree char *why = NULL;
          PGconn *c;

          g_mutex_unlock (&self->lock);
          c = connect_once (self, &why);
          g_mutex_lock (&self->lock);
          if (c != NULL && !self->quit)
            {
              g_autofree char *w = NULL;
              self->conn = c;
              self->last_io_us = g_get_monotonic_time ();
              backoff_ms = 0;
              w = where (self);
              sink_health_ok (&self->health, "connected to %s", w);
              continue;
            }
          if (c != NULL)
            {
              PQfinish (c);
              break;
            }
          sink_health_unreachable (&self->health, "%s", why);
          backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS : MIN (backoff_ms * 2, self->backoff_max_ms);
          g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () + backoff_ms * 1000);
          continue;
        }

      if (!g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () + G_USEC_PER_SEC)
          && self->conn != NULL)
        {
          g_autofree char *why = NULL;
          gint64 now = g_get_monotonic_time ();
          gboolean ok = TRUE;

          /* a new UTC day, or an hour gone: partitions ahead and retention */
          if (day_of (arb_now_us ()) != self->maintained_day || now - self->last_maintenance_us >= MAINTENANCE_US)
            ok = maintain (self, self->conn, &why);
          else if (now - self->last_io_us >= PING_IDLE_US)
            ok = exec_ok (self->conn, "SELECT 1", &why);
          if (ok)
            self->last_io_us = g_get_monotonic_time ();
          else if (connection_lost (self->conn))
            {
              arb_info (self->inst, "connection lost: %s", why);
              drop_connection_locked (self);
              sink_health_unreachable (&self->health, "connection lost: %s", why);
            }
          else
            sink_health_degraded (&self->health, "partition maintenance failed: %s", why);
        }
      sink_health_tick (&self->health);
    }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* COPY text format: backslash, tab, newline and CR escaped */
static void
copy_field (GString *s, const char *value, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      char c = value[i];
      switch (c)
        {
        case '\\': g_string_append (s, "\\\\"); break;
        case '\t': g_string_append (s, "\\t"); break;
        case '\n': g_string_append (s, "\\n"); break;
        case '\r': g_string_append (s, "\\r"); break;
        default: g_string_append_c (s, c); break;
        }
    }
}

typedef struct {
  char *bid, *ask, *last, *source, *source_time; /* owned, nullable */
  char *market;
} QuoteRow;

static void
quote_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
              gpointer user_data)
{
  QuoteRow *q = user_data;
  char **slot = NULL;

  if (kind != SINK_JSON_STRING && kind != SINK_JSON_NUMBER)
    return;
  if (sink_json_name_is (name, name_len, "bid"))
    slot = &q->bid;
  else if (sink_json_name_is (name, name_len, "ask"))
    slot = &q->ask;
  else if (sink_json_name_is (name, name_len, "last"))
    slot = &q->last;
  else if (sink_json_name_is (name, name_len, "source"))
    slot = &q->source;
  else if (sink_json_name_is (name, name_len, "sourceTime"))
    slot = &q->source_time;
  else if (sink_json_name_is (name, name_len, "market"))
    slot = &q->market;
  if (slot != NULL && *slot == NULL)
    *slot = g_strndup (value, value_len);
}

static void
quote_row_clear (QuoteRow *q)
{
  g_free (q->bid);
  g_free (q->ask);
  g_free (q->last);
  g_free (q->source);
  g_free (q->source_time);
  g_free (q->market);
}

static void
copy_value (GString *s, const char *value, gboolean last)
{
  if (value == NULL)
    g_string_append (s, "\\N");
  else
    copy_field (s, value, strlen (value));
  g_string_append_c (s, last ? '\n' : '\t');
}

/* appends @ev's row to the COPY text; FALSE when its data cannot be read */
static gboolean
add_quote_row (PgSink *self, ArbEvent *ev)
{
  QuoteRow q = { 0 };
  g_autofree char *receive = timestamp_text (arb_event_get_time (ev));
  gboolean ok = sink_json_each_data_member (arb_event_get_json (ev), arb_event_get_json_length (ev),
                                            self->json_scratch, quote_member, &q);

  if (ok)
    {
      copy_value (self->copy, receive, FALSE);
      copy_value (self->copy, q.market != NULL ? q.market : arb_event_get_key (ev), FALSE);
      copy_value (self->copy, q.bid, FALSE);
      copy_value (self->copy, q.ask, FALSE);
      copy_value (self->copy, q.last, FALSE);
      copy_value (self->copy, q.source, FALSE);
      copy_value (self->copy, q.source_time, FALSE);
      copy_value (self->copy, arb_event_get_id (ev), TRUE);
    }
  quote_row_clear (&q);
  return ok;
}

static void
add_event_row (PgSink *self, ArbEvent *ev)
{
  guint base = self->params->len;

  g_string_append_printf (self->sql, "%s($%u,$%u,$%u,$%u,$%u,$%u,$%u::jsonb)", base > 0 ? "," : "", base + 1,
                          base + 2, base + 3, base + 4, base + 5, base + 6, base + 7);
  g_ptr_array_add (self->params, timestamp_text (arb_event_get_time (ev)));
  g_ptr_array_add (self->params, g_strdup (arb_event_get_id (ev)));
  g_ptr_array_add (self->params, g_strdup (arb_event_get_event_type (ev)));
  g_ptr_array_add (self->params, g_strdup (arb_event_get_key (ev)));
  g_ptr_array_add (self->params, arb_event_is_ledger (ev) ? g_strdup (arb_event_get_key (ev)) : NULL);
  g_ptr_array_add (self->params, g_strdup (arb_event_get_correlation_id (ev)));
  g_ptr_array_add (self->params, g_strndup (arb_event_get_json (ev), arb_event_get_json_length (ev)));
}

typedef enum {
  WRITE_OK,
  WRITE_REFUSED,  /* the server refused the data: the connection is fine */
  WRITE_LOST,     /* the connection failed */
} WriteResult;

/* COPY of the rows in self->copy */
static gboolean
copy_quotes (PgSink *self, PGconn *conn, char **why)
{
  g_autofree char *sql = g_strdup_printf ("COPY %s.quotes_archive (receive_time, market, bid, ask, last, "
                                          "source, source_time, event_id) FROM STDIN",
                                          self->schema);
  PGresult *res = PQexec (conn, sql);
  gboolean ok;

  if (PQresultStatus (res) != PGRES_COPY_IN)
    {
      PQclear (res);
      *why = error_text (conn);
      return FALSE;
    }
  PQclear (res);
  if (PQputCopyData (conn, self->copy->str, (int) self->copy->len) != 1 || PQputCopyEnd (conn, NULL) != 1)
    {
      *why = error_text (conn);
      return FALSE;
    }
  res = PQgetResult (conn);
  ok = PQresultStatus (res) == PGRES_COMMAND_OK;
  if (!ok)
    *why = error_text (conn);
  PQclear (res);
  /* to the end of the COPY */
  while ((res = PQgetResult (conn)) != NULL)
    PQclear (res);
  return ok;
}

/* the body of write_events_locked(), inside its transaction */
static gboolean
write_txn (PgSink *self, PGconn *conn, ArbEvent **events, guint n, char **why)
{
  gint64 oldest = day_of (arb_now_us () - self->retention_days * DAY_US);
  guint n_quotes = 0;

  for (guint i = 0; i < n; i++)
    {
      ArbEvent *ev = events[i];
      gint64 day = day_of (arb_event_get_time (ev));

      /* older than what is kept: it would be dropped at once */
      if (day < oldest)
        continue;
      if (g_str_equal (arb_event_get_event_type (ev), "quote"))
        {
          if (!ensure_partition (self, conn, TABLE_QUOTES, day, why))
            return FALSE;
          if (!add_quote_row (self, ev))
            {
              *why = g_strdup_printf ("event %s: the quote's data cannot be read", arb_event_get_id (ev));
              return FALSE;
            }
          n_quotes++;
        }
      if (self->archive_events)
        {
          if (!ensure_partition (self, conn, TABLE_EVENTS, day, why))
            return FALSE;
          add_event_row (self, ev);
        }
    }

  if (n_quotes > 0 && !copy_quotes (self, conn, why))
    return FALSE;
  if (self->params->len > 0)
    {
      g_autofree char *sql = g_strdup_printf ("INSERT INTO %s.events_archive (time, id, type, key, assessment_id, "
                                              "correlation_id, envelope) VALUES %s ON CONFLICT DO NOTHING",
                                              self->schema, self->sql->str);
      PGresult *res = PQexecParams (conn, sql, (int) self->params->len, NULL,
                                    (const char *const *) self->params->pdata, NULL, NULL, 0);
      gboolean ok = PQresultStatus (res) == PGRES_COMMAND_OK;

      if (!ok)
        *why = error_text (conn);
      PQclear (res);
      return ok;
    }
  return TRUE;
}

/* with the lock held: @events (n of them) in one transaction */
static WriteResult
write_events_locked (PgSink *self, ArbEvent **events, guint n, char **why)
{
  PGconn *conn = self->conn;

  g_string_truncate (self->copy, 0);
  g_string_truncate (self->sql, 0);
  g_ptr_array_set_size (self->params, 0);

  if (exec_ok (conn, "BEGIN", why) && write_txn (self, conn, events, n, why) && exec_ok (conn, "COMMIT", why))
    {
      self->last_io_us = g_get_monotonic_time ();
      return WRITE_OK;
    }
  /* partitions created in this transaction are gone with it */
  g_hash_table_remove_all (self->partitions);
  if (connection_lost (conn))
    return WRITE_LOST;
  exec_ok (conn, "ROLLBACK", NULL);
  return WRITE_REFUSED;
}

/* ------------------------------------------------------------------------ */
/* The sink                                                                 */

static gpointer
pg_create (ArbInstance *inst, GError **error)
{
  const char *schema = arb_instance_get_string (inst, "schema");
  PgSink *self;

  if (schema == NULL || *schema == '\0')
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "schema is empty");
      return NULL;
    }
  self = g_new0 (PgSink, 1);
  self->inst = inst;
  self->conninfo = g_strdup (arb_instance_get_string (inst, "conninfo"));
  self->schema_raw = g_strdup (schema);
  {
    /* a quoted identifier: whatever the name, it is one name */
    GString *q = g_string_new ("\"");
    for (const char *p = schema; *p != '\0'; p++)
      {
        if (*p == '"')
          g_string_append_c (q, '"');
        g_string_append_c (q, *p);
      }
    g_string_append_c (q, '"');
    self->schema = g_string_free (q, FALSE);
  }
  self->retention_days = arb_instance_get_int (inst, "retention_days");
  self->ahead_days = arb_instance_get_int (inst, "partitions_ahead");
  self->archive_events = arb_instance_get_boolean (inst, "archive_events");
  self->connect_timeout_s = MAX ((arb_instance_get_duration_ms (inst, "connect_timeout") + 999) / 1000, 1);
  self->backoff_max_ms = arb_instance_get_duration_ms (inst, "reconnect_max");
  sink_health_init (&self->health, inst, arb_instance_get_duration_ms (inst, "down_after"));
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->partitions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->copy = g_string_new (NULL);
  self->sql = g_string_new (NULL);
  self->params = g_ptr_array_new_with_free_func (g_free);
  self->json_scratch = g_string_new (NULL);
  return self;
}

static gboolean
pg_start (gpointer data, GError **error)
{
  PgSink *self = data;

  if (self->keeper != NULL)
    return TRUE;
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
  sink_health_degraded (&self->health, "connecting to PostgreSQL");
  self->quit = FALSE;
  self->keeper = g_thread_new ("pg-keeper", keeper_main, self);
  return TRUE;
}

static void
ack_all (PgSink *self, ArbEvent **events, guint n, const GError *error)
{
  for (guint i = 0; i < n; i++)
    arb_instance_ack (self->inst, events[i], error);
  arb_instance_counter_add (self->inst, error == NULL ? "published_total" : "failed_total", n);
}

static gboolean
pg_write (gpointer data, ArbBatch *batch, GError **error)
{
  PgSink *self = data;
  guint n = arb_batch_get_length (batch);
  g_autofree ArbEvent **events = g_new (ArbEvent *, n);
  g_autofree char *why = NULL;
  WriteResult result;
  guint n_rows = 0;

  for (guint i = 0; i < n; i++)
    {
      ArbEvent *ev = arb_batch_get (batch, i);
      /* without archive_events, only quotes have a table */
      if (!self->archive_events && !g_str_equal (arb_event_get_event_type (ev), "quote"))
        arb_instance_ack (self->inst, ev, NULL);
      else
        events[n_rows++] = ev;
    }
  if (n_rows == 0)
    return TRUE;

  g_mutex_lock (&self->lock);
  if (self->conn == NULL)
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                   "not connected to PostgreSQL (reconnecting)");
      ack_all (self, events, n_rows, *error);
      return FALSE;
    }
  result = write_events_locked (self, events, n_rows, &why);
  if (result == WRITE_REFUSED && n_rows > 1)
    {
      /* one bad row fails a whole transaction: find it, one event at a time */
      guint n_refused = 0;

      arb_info (self->inst, "a batch of %u was refused (%s); writing its events one by one", n_rows, why);
      for (guint i = 0; i < n_rows && result != WRITE_LOST; i++)
        {
          g_autofree char *one_why = NULL;
          result = write_events_locked (self, &events[i], 1, &one_why);
          if (result == WRITE_OK)
            ack_all (self, &events[i], 1, NULL);
          else if (result == WRITE_REFUSED)
            {
              g_autoptr(GError) refused = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL, "event %s: %s",
                                                       arb_event_get_id (events[i]), one_why);
              arb_warning (self->inst, "%s", refused->message);
              ack_all (self, &events[i], 1, refused);
              n_refused++;
            }
          else
            {
              g_free (why);
              why = g_steal_pointer (&one_why);
              /* the rest, from i on, fails below */
              memmove (events, events + i, (n_rows - i) * sizeof *events);
              n_rows -= i;
            }
        }
      if (result != WRITE_LOST)
        {
          g_mutex_unlock (&self->lock);
          return TRUE;
        }
    }
  if (result == WRITE_LOST)
    {
      g_autoptr(GError) local = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                                             "writing to PostgreSQL failed: %s", why);
      drop_connection_locked (self);
      g_mutex_unlock (&self->lock);
      arb_info (self->inst, "%s; reconnecting", local->message);
      sink_health_unreachable (&self->health, "connection lost: %s", why);
      ack_all (self, events, n_rows, local);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_mutex_unlock (&self->lock);
  if (result == WRITE_REFUSED)
    {
      g_autoptr(GError) refused = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL, "event %s: %s",
                                               arb_event_get_id (events[0]), why);
      arb_warning (self->inst, "%s", refused->message);
      ack_all (self, events, n_rows, refused);
      return TRUE;
    }
  ack_all (self, events, n_rows, NULL);
  return TRUE;
}

static gboolean
pg_flush (gpointer data, GError **error)
{
  /* write() commits before it acknowledges: nothing is pending here */
  return TRUE;
}

static void
pg_stop (gpointer data)
{
  PgSink *self = data;

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
pg_destroy (gpointer data)
{
  PgSink *self = data;

  pg_stop (self);
  g_hash_table_unref (self->partitions);
  g_string_free (self->copy, TRUE);
  g_string_free (self->sql, TRUE);
  g_ptr_array_unref (self->params);
  g_string_free (self->json_scratch, TRUE);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  sink_health_clear (&self->health);
  g_free (self->conninfo);
  g_free (self->schema);
  g_free (self->schema_raw);
  g_free (self);
}

static const ArbSinkVTable pg_vtable = {
  .size = sizeof (ArbSinkVTable),
  .create = pg_create,
  .start = pg_start,
  .write = pg_write,
  .flush = pg_flush,
  .stop = pg_stop,
  .destroy = pg_destroy,
};

static const ArbPluginDesc pg_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "sink-postgres",
  .version = "0.1.0",
  .summary = "Archive quotes (and optionally every event) in PostgreSQL tables partitioned by day",
  .kind = ARB_PLUGIN_SINK,
  .config = pg_config,
  .vtable = &pg_vtable,
};

ARB_PLUGIN_DEFINE (sink_postgres, pg_desc)
