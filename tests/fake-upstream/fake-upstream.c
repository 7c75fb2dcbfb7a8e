/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FakeUpstream (see fake-upstream.h): a SoupServer on its own thread and
 * GMainContext. The test's thread configures routes and faults under a lock;
 * the server's thread reads them per request. Anything that must touch
 * libsoup objects (WebSocket handlers, held messages) runs on the server's
 * context through fake_run_on_server().
 */

#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "fake-upstream.h"

typedef enum {
  WS_S2C,
  WS_C2S,
} WsDir;

typedef enum {
  WS_TEXT,
  WS_PING,
  WS_PONG,
  WS_CLOSE,
} WsOp;

typedef struct {
  WsDir   dir;
  WsOp    op;
  char   *payload;   /* owned: the frame's text, nullable */
  gint64  at_ms;
  gushort code;      /* close */
} WsFrame;

typedef struct {
  char       *path;           /* owned */
  gboolean    ws;
  /* HTTP */
  guint       status;
  char       *content_type;   /* owned */
  GBytes     *body;           /* owned */
  GPtrArray  *headers;        /* owned: name, value, name, value … */
  char       *provider;       /* owned, nullable: the fixture folder */
  char       *manifest_path;  /* owned, nullable: the path its manifest entry records */
  GPtrArray  *replacements;   /* owned: from, to, from, to … */
  /* faults */
  FakeFault   fault;
  int         fault_arg;
  gint64      frozen_us;      /* FAKE_FAULT_STALE: the clock when it was set */
  /* what came in */
  guint       requests;
  char       *last_query;     /* owned, nullable */
  GHashTable *last_headers;   /* owned, nullable: lower-case name → value */
  /* WebSocket */
  GPtrArray  *frames;         /* owned: WsFrame */
  double      speed;
  GHashTable *replies;        /* owned: text → reply */
  GPtrArray  *reply_matches;  /* owned: needle, reply, needle, reply … */
  gboolean    restamp;        /* text frames get the clock's time */
  guint       sessions;
  guint       frames_sent;
  GPtrArray  *received;       /* owned: char * */
} Route;

struct _FakeUpstream {
  char         *fixtures_dir;  /* owned */
  GThread      *thread;
  GMainContext *context;       /* the server's */
  GMainLoop    *loop;
  SoupServer   *server;        /* server thread only */
  guint16       port;
  GError       *start_error;

  GMutex        lock;          /* guards what follows, and the cond */
  GCond         cond;
  gboolean      started;
  GHashTable   *routes;        /* path → Route */
  GHashTable   *manifests;     /* provider → JsonNode (manifest.json), or a NULL value */
  FakeFault     fault_all;
  int           fault_all_arg;
  gint64        frozen_all_us;
  gint64        clock_us;      /* 0: real time */
  guint         unrouted;      /* requests for a path without a route */
  GPtrArray    *auths;         /* FakeAuth: checks before any handler */
  guint         auth_refusals;

  GPtrArray    *held;          /* server thread: SoupServerMessage paused by HANG */
  GPtrArray    *sessions;      /* server thread: WsSession */
};

typedef struct {
  char         *prefix; /* owned */
  FakeAuthFunc  func;
  gpointer      data;
} FakeAuth;

static void
fake_auth_free (FakeAuth *a)
{
  g_free (a->prefix);
  g_free (a);
}

static void
ws_frame_free (WsFrame *f)
{
  g_free (f->payload);
  g_free (f);
}

static void
route_free (Route *r)
{
  g_free (r->path);
  g_free (r->content_type);
  g_clear_pointer (&r->body, g_bytes_unref);
  g_clear_pointer (&r->headers, g_ptr_array_unref);
  g_free (r->provider);
  g_free (r->manifest_path);
  g_clear_pointer (&r->replacements, g_ptr_array_unref);
  g_free (r->last_query);
  g_clear_pointer (&r->last_headers, g_hash_table_unref);
  g_clear_pointer (&r->frames, g_ptr_array_unref);
  g_clear_pointer (&r->replies, g_hash_table_unref);
  g_clear_pointer (&r->reply_matches, g_ptr_array_unref);
  g_clear_pointer (&r->received, g_ptr_array_unref);
  g_free (r);
}

/* the route for @path, made when missing; under the lock */
static Route *
route_get (FakeUpstream *fu, const char *path)
{
  Route *r = g_hash_table_lookup (fu->routes, path);

  if (r == NULL)
    {
      r = g_new0 (Route, 1);
      r->path = g_strdup (path);
      r->status = 404;
      r->content_type = g_strdup ("text/plain");
      r->body = g_bytes_new_static ("no such route\n", 14);
      r->headers = g_ptr_array_new_with_free_func (g_free);
      r->replacements = g_ptr_array_new_with_free_func (g_free);
      r->received = g_ptr_array_new_with_free_func (g_free);
      r->replies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      r->reply_matches = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (fu->routes, r->path, r);
    }
  return r;
}

/* ------------------------------------------------------------------------ */
/* Running things on the server's thread                                    */

typedef struct {
  FakeUpstream *fu;
  GSourceFunc   func;
  gpointer      data;
  gboolean      done;
} Invoke;

static gboolean
invoke_cb (gpointer data)
{
  Invoke *inv = data;

  inv->func (inv->data);
  g_mutex_lock (&inv->fu->lock);
  inv->done = TRUE;
  g_cond_broadcast (&inv->fu->cond);
  g_mutex_unlock (&inv->fu->lock);
  return G_SOURCE_REMOVE;
}

/* runs @func on the server's context and waits for it */
static void
fake_run_on_server (FakeUpstream *fu, GSourceFunc func, gpointer data)
{
  Invoke inv = { fu, func, data, FALSE };

  g_main_context_invoke (fu->context, invoke_cb, &inv);
  g_mutex_lock (&fu->lock);
  while (!inv.done)
    g_cond_wait (&fu->cond, &fu->lock);
  g_mutex_unlock (&fu->lock);
}

/* ------------------------------------------------------------------------ */
/* Fixtures and manifests                                                   */

char *
fake_upstream_find_fixtures (void)
{
  const char *env = g_getenv ("ARB_FIXTURES_DIR");
  const char *root = g_getenv ("ARB_SOURCE_ROOT");
  g_autofree char *path = NULL;

  if (env != NULL && *env != '\0')
    path = g_strdup (env);
  else if (root != NULL)
    path = g_build_filename (root, "..", "shared", "fixtures", "upstream", NULL);
  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_DIR))
    return NULL;
  return g_canonicalize_filename (path, NULL);
}

/* provider's manifest.json, loaded once; under the lock. NULL when absent */
static JsonObject *
manifest_get (FakeUpstream *fu, const char *provider)
{
  JsonNode *root;

  if (!g_hash_table_lookup_extended (fu->manifests, provider, NULL, (gpointer *) &root))
    {
      g_autofree char *file = g_build_filename (fu->fixtures_dir, provider, "manifest.json", NULL);
      g_autoptr(JsonParser) parser = json_parser_new ();

      root = NULL;
      if (json_parser_load_from_file (parser, file, NULL) && json_parser_get_root (parser) != NULL
          && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        root = json_node_copy (json_parser_get_root (parser));
      g_hash_table_insert (fu->manifests, g_strdup (provider), root);
    }
  return root != NULL ? json_node_get_object (root) : NULL;
}

/* the manifest entry of @file in @provider's folder, or NULL */
static JsonObject *
manifest_entry (FakeUpstream *fu, const char *provider, const char *file)
{
  JsonObject *m = manifest_get (fu, provider);
  JsonArray *fixtures;

  if (m == NULL || !json_object_has_member (m, "fixtures"))
    return NULL;
  fixtures = json_object_get_array_member (m, "fixtures");
  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *e = json_array_get_object_element (fixtures, i);
      if (g_strcmp0 (json_object_get_string_member_with_default (e, "file", NULL), file) == 0)
        return e;
    }
  return NULL;
}

/* the provider's fixture for an answer with @status (or, with @malformed, a
 * malformed one), preferring the route's own API path; under the lock.
 * (transfer full) its file name relative to the provider's folder */
static char *
manifest_find (FakeUpstream *fu, Route *r, guint status, gboolean malformed, char **content_type)
{
  JsonObject *m = r->provider != NULL ? manifest_get (fu, r->provider) : NULL;
  JsonArray *fixtures;
  JsonObject *best = NULL;

  if (m == NULL || !json_object_has_member (m, "fixtures"))
    return NULL;
  fixtures = json_object_get_array_member (m, "fixtures");
  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *e = json_array_get_object_element (fixtures, i);
      const char *file = json_object_get_string_member_with_default (e, "file", "");
      gboolean match = malformed ? strstr (file, "malformed") != NULL
                                 : (guint) json_object_get_int_member_with_default (e, "status", 200) == status;

      if (!match || g_strcmp0 (json_object_get_string_member_with_default (e, "kind", "http"), "http") != 0)
        continue;
      if (g_strcmp0 (json_object_get_string_member_with_default (e, "path", NULL), r->manifest_path) == 0)
        {
          best = e;
          break;
        }
      if (best == NULL)
        best = e;
    }
  if (best == NULL)
    return NULL;
  *content_type = g_strdup (json_object_get_string_member_with_default (best, "content_type", "application/json"));
  return g_strdup (json_object_get_string_member (best, "file"));
}

static GBytes *
read_fixture (FakeUpstream *fu, const char *provider, const char *file)
{
  g_autofree char *path = g_build_filename (fu->fixtures_dir, provider, file, NULL);
  char *contents = NULL;
  gsize length = 0;

  if (!g_file_get_contents (path, &contents, &length, NULL))
    return NULL;
  return g_bytes_new_take (contents, length);
}

/* ------------------------------------------------------------------------ */
/* Bodies: replacements and the clock                                       */

static char *
iso_time (gint64 unix_us)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_us / G_USEC_PER_SEC);
  g_autofree char *base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", base, (int) ((unix_us % G_USEC_PER_SEC) / 1000));
}

typedef struct {
  gint64 unix_us;
} ClockData;

static gboolean
clock_seconds (const GMatchInfo *info, GString *out, gpointer data)
{
  ClockData *c = data;
  g_autofree char *key = g_match_info_fetch (info, 1);

  g_string_append_printf (out, "%s%" G_GINT64_FORMAT, key, c->unix_us / G_USEC_PER_SEC);
  return FALSE;
}

static gboolean
clock_iso (const GMatchInfo *info, GString *out, gpointer data)
{
  ClockData *c = data;
  g_autofree char *key = g_match_info_fetch (info, 1);
  g_autofree char *when = iso_time (c->unix_us);

  g_string_append_printf (out, "%s%s\"", key, when);
  return FALSE;
}

/* the body as served: replacements, then every known timestamp set to
 * @clock_us (CoinGecko's last_updated_at in unix seconds; CoinMarketCap's
 * last_updated and status.timestamp, ISO 8601) */
static GBytes *
render_body (GBytes *body, GPtrArray *replacements, gint64 clock_us)
{
  static GRegex *seconds_re, *iso_re;
  g_autoptr(GString) text = NULL;
  ClockData c = { clock_us };
  gsize length = 0;
  const char *data = g_bytes_get_data (body, &length);
  char *out;

  if (g_once_init_enter (&seconds_re))
    {
      iso_re = g_regex_new ("(\"(?:last_updated|timestamp)\"\\s*:\\s*\")[0-9]{4}-[0-9]{2}-[0-9]{2}T[^\"]*\"",
                            G_REGEX_OPTIMIZE, 0, NULL);
      g_once_init_leave (&seconds_re, g_regex_new ("(\"last_updated_at\"\\s*:\\s*)[0-9]+", G_REGEX_OPTIMIZE, 0,
                                                   NULL));
    }
  text = g_string_new_len (data, (gssize) length);
  for (guint i = 0; i + 1 < replacements->len; i += 2)
    g_string_replace (text, g_ptr_array_index (replacements, i), g_ptr_array_index (replacements, i + 1), 0);
  if (clock_us > 0)
    {
      char *a = g_regex_replace_eval (seconds_re, text->str, (gssize) text->len, 0, 0, clock_seconds, &c, NULL);
      char *b = a != NULL ? g_regex_replace_eval (iso_re, a, -1, 0, 0, clock_iso, &c, NULL) : NULL;

      g_free (a);
      if (b != NULL)
        {
          g_string_assign (text, b);
          g_free (b);
        }
    }
  length = text->len;
  out = g_string_free (g_steal_pointer (&text), FALSE);
  return g_bytes_new_take (out, length);
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

typedef struct {
  guint      status;
  char      *content_type;
  GBytes    *body;
  GPtrArray *headers;
  FakeFault  fault;
  int        fault_arg;
  gint64     clock_us;
} Answer;

static void
answer_clear (Answer *a)
{
  g_free (a->content_type);
  g_clear_pointer (&a->body, g_bytes_unref);
  g_clear_pointer (&a->headers, g_ptr_array_unref);
}

static const char *
phrase (guint status)
{
  switch (status)
    {
    case 429: return "Too Many Requests";
    default: return soup_status_get_phrase (status);
    }
}

/* writes a raw HTTP answer on a stolen connection and closes it: the
 * connection is the test's from here, so the body can be cut short */
static void
send_raw_and_close (SoupServerMessage *msg, const char *head, const void *body, gsize length)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection (msg);
  GOutputStream *out;

  if (stream == NULL)
    return;
  out = g_io_stream_get_output_stream (stream);
  if (head != NULL)
    g_output_stream_write_all (out, head, strlen (head), NULL, NULL, NULL);
  if (length > 0)
    g_output_stream_write_all (out, body, length, NULL, NULL, NULL);
  g_output_stream_flush (out, NULL, NULL);
  g_io_stream_close (stream, NULL, NULL);
}

static void
on_held_finished (SoupServerMessage *msg, gpointer data)
{
  FakeUpstream *fu = data;

  if (g_ptr_array_remove (fu->held, msg))
    g_object_unref (msg);
}

static void
http_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  FakeUpstream *fu = data;
  Answer a = { 0 };
  g_autoptr(GBytes) body = NULL;
  Route *r;
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  g_mutex_lock (&fu->lock);
  /* a route for this exact query first ("/markets?slug=x"), then the path's */
  r = NULL;
  if (g_uri_get_query (uri) != NULL)
    {
      g_autofree char *full = g_strdup_printf ("%s?%s", path, g_uri_get_query (uri));
      r = g_hash_table_lookup (fu->routes, full);
    }
  if (r == NULL)
    r = g_hash_table_lookup (fu->routes, path);
  if (r == NULL || r->ws)
    {
      fu->unrouted++;
      g_mutex_unlock (&fu->lock);
      soup_server_message_set_status (msg, 404, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "no such route\n", 14);
      return;
    }
  r->requests++;
  g_free (r->last_query);
  r->last_query = g_strdup (g_uri_get_query (uri));
  g_clear_pointer (&r->last_headers, g_hash_table_unref);
  r->last_headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  soup_message_headers_iter_init (&iter, req);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    g_hash_table_insert (r->last_headers, g_ascii_strdown (name, -1), g_strdup (value));

  a.fault = r->fault != FAKE_FAULT_NONE ? r->fault : fu->fault_all;
  a.fault_arg = r->fault != FAKE_FAULT_NONE ? r->fault_arg : fu->fault_all_arg;
  a.clock_us = fu->clock_us != 0 ? fu->clock_us : g_get_real_time ();
  if (a.fault == FAKE_FAULT_STALE)
    a.clock_us = r->fault == FAKE_FAULT_STALE ? r->frozen_us : fu->frozen_all_us;
  a.status = r->status;
  a.content_type = g_strdup (r->content_type);
  a.body = g_bytes_ref (r->body);
  a.headers = g_ptr_array_ref (r->headers);

  /* an error body: the provider's own fixture for that status, if it has one */
  if (a.fault == FAKE_FAULT_429 || a.fault == FAKE_FAULT_401 || a.fault == FAKE_FAULT_MALFORMED)
    {
      guint status = a.fault == FAKE_FAULT_429 ? 429 : a.fault == FAKE_FAULT_401 ? 401 : 200;
      g_autofree char *ct = NULL;
      g_autofree char *file = manifest_find (fu, r, status, a.fault == FAKE_FAULT_MALFORMED, &ct);
      GBytes *fixture = file != NULL ? read_fixture (fu, r->provider, file) : NULL;

      if (fixture != NULL)
        {
          g_bytes_unref (a.body);
          a.body = fixture;
          g_free (a.content_type);
          a.content_type = g_steal_pointer (&ct);
        }
      else if (a.fault == FAKE_FAULT_MALFORMED)
        {
          GBytes *half = g_bytes_new_from_bytes (a.body, 0, g_bytes_get_size (a.body) / 2);
          g_bytes_unref (a.body);
          a.body = half;
        }
      else
        {
          const char *generic = status == 429 ? "{\"error\":\"rate limited\"}" : "{\"error\":\"unauthorized\"}";
          g_bytes_unref (a.body);
          a.body = g_bytes_new_static (generic, strlen (generic));
          g_free (a.content_type);
          a.content_type = g_strdup ("application/json");
        }
      a.status = status;
      /* the route's own headers belong to its normal answer */
      g_ptr_array_unref (a.headers);
      a.headers = g_ptr_array_new_with_free_func (g_free);
    }
  body = render_body (a.body, r->replacements, a.clock_us);
  g_mutex_unlock (&fu->lock);

  switch (a.fault)
    {
    case FAKE_FAULT_HANG:
      /* answered when the fault is cleared, or never */
      g_ptr_array_add (fu->held, g_object_ref (msg));
      g_signal_connect (msg, "finished", G_CALLBACK (on_held_finished), fu);
      soup_server_message_pause (msg);
      answer_clear (&a);
      return;
    case FAKE_FAULT_DROP:
      send_raw_and_close (msg, NULL, NULL, 0);
      answer_clear (&a);
      return;
    case FAKE_FAULT_TRUNCATED:
      {
        g_autofree char *head = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                                                 "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                                                 "Connection: close\r\n\r\n",
                                                 a.content_type, g_bytes_get_size (body));
        send_raw_and_close (msg, head, g_bytes_get_data (body, NULL), g_bytes_get_size (body) / 2);
        answer_clear (&a);
        return;
      }
    case FAKE_FAULT_403:
      soup_server_message_set_status (msg, 403, "Forbidden");
      soup_server_message_set_response (msg, "text/plain; charset=UTF-8", SOUP_MEMORY_STATIC, "error code: 1020", 16);
      answer_clear (&a);
      return;
    case FAKE_FAULT_500:
      {
        static const char page[] = "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
                                   "<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n";
        soup_server_message_set_status (msg, 500, "Internal Server Error");
        soup_server_message_set_response (msg, "text/html", SOUP_MEMORY_STATIC, page, sizeof page - 1);
        answer_clear (&a);
        return;
      }
    case FAKE_FAULT_429:
      if (a.fault_arg >= 0)
        {
          g_autofree char *secs = g_strdup_printf ("%d", a.fault_arg);
          soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", secs);
        }
      break;
    case FAKE_FAULT_NONE:
    case FAKE_FAULT_401:
    case FAKE_FAULT_MALFORMED:
    case FAKE_FAULT_STALE:
    default:
      break;
    }

  for (guint i = 0; i + 1 < a.headers->len; i += 2)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), g_ptr_array_index (a.headers, i),
                                  g_ptr_array_index (a.headers, i + 1));
  soup_server_message_set_status (msg, a.status, phrase (a.status));
  soup_server_message_set_response (msg, a.content_type, SOUP_MEMORY_COPY, g_bytes_get_data (body, NULL),
                                    g_bytes_get_size (body));
  answer_clear (&a);
}

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                */

typedef struct {
  FakeUpstream            *fu;
  char                    *path;     /* owned */
  SoupWebsocketConnection *conn;     /* owned */
  GPtrArray               *frames;   /* owned ref: the route's at connection time */
  double                   speed;
  guint                    next;
  guint                    received; /* client text frames that count for the replay */
  guint                    needed;   /* client text frames the transcript showed so far */
  gint64                   start_us;
  GSource                  *timer;   /* owned, nullable */
} WsSession;

static void ws_advance (WsSession *s);

static void
ws_session_free (WsSession *s)
{
  if (s->timer != NULL)
    {
      g_source_destroy (s->timer);
      g_source_unref (s->timer);
    }
  g_clear_object (&s->conn);
  g_clear_pointer (&s->frames, g_ptr_array_unref);
  g_free (s->path);
  g_free (s);
}

static gboolean
ws_on_timer (gpointer data)
{
  WsSession *s = data;

  g_source_unref (s->timer);
  s->timer = NULL;
  ws_advance (s);
  return G_SOURCE_REMOVE;
}

/* a server frame as sent: the route's replacements, then (when the route
 * restamps) every timestamp the providers put in frames set to the clock:
 * Polymarket's "timestamp":"<ms>", Kalshi's "ts_ms", "ts" (seconds or
 * RFC 3339) and "time" */
static char *
render_frame (FakeUpstream *fu, Route *r, const char *payload)
{
  static GRegex *ms_string_re, *ms_re, *s_re, *iso_re;
  g_autoptr(GString) text = g_string_new (payload);
  gint64 clock_us;

  for (guint i = 0; i + 1 < r->replacements->len; i += 2)
    g_string_replace (text, g_ptr_array_index (r->replacements, i), g_ptr_array_index (r->replacements, i + 1), 0);
  if (!r->restamp)
    return g_string_free (g_steal_pointer (&text), FALSE);
  if (g_once_init_enter (&ms_string_re))
    {
      ms_re = g_regex_new ("(\"ts_ms\"\\s*:\\s*)[0-9]{13}", G_REGEX_OPTIMIZE, 0, NULL);
      s_re = g_regex_new ("(\"ts\"\\s*:\\s*)[0-9]{10}(?![0-9])", G_REGEX_OPTIMIZE, 0, NULL);
      iso_re = g_regex_new ("(\"(?:ts|time)\"\\s*:\\s*\")[0-9]{4}-[0-9]{2}-[0-9]{2}T[^\"]*\"", G_REGEX_OPTIMIZE, 0,
                            NULL);
      g_once_init_leave (&ms_string_re, g_regex_new ("(\"timestamp\"\\s*:\\s*\")[0-9]{13}(\")", G_REGEX_OPTIMIZE, 0,
                                                     NULL));
    }
  clock_us = fu->clock_us != 0 ? fu->clock_us : g_get_real_time ();
  {
    g_autofree char *ms = g_strdup_printf ("\\g<1>%" G_GINT64_FORMAT "\\g<2>", clock_us / 1000);
    g_autofree char *ms_bare = g_strdup_printf ("\\g<1>%" G_GINT64_FORMAT, clock_us / 1000);
    g_autofree char *secs = g_strdup_printf ("\\g<1>%" G_GINT64_FORMAT, clock_us / G_USEC_PER_SEC);
    g_autofree char *when = iso_time (clock_us);
    g_autofree char *iso = g_strdup_printf ("\\g<1>%s\"", when);
    GRegex *res[] = { ms_string_re, ms_re, s_re, iso_re };
    const char *subs[] = { ms, ms_bare, secs, iso };

    for (guint i = 0; i < G_N_ELEMENTS (res); i++)
      {
        char *out = g_regex_replace (res[i], text->str, (gssize) text->len, 0, subs[i], 0, NULL);
        if (out != NULL)
          {
            g_string_assign (text, out);
            g_free (out);
          }
      }
  }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* whether @text is a heartbeat the route answers by itself, or such an
 * answer: the transcript's own copies are not replayed (the live exchange
 * stands in) and not waited for; under the lock */
static gboolean
route_is_heartbeat (Route *r, const char *text, gboolean reply)
{
  GHashTableIter it;
  gpointer key, value;

  if (r == NULL || text == NULL)
    return FALSE;
  if (!reply)
    return g_hash_table_contains (r->replies, text);
  g_hash_table_iter_init (&it, r->replies);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_strcmp0 (value, text) == 0)
      return TRUE;
  return FALSE;
}

static void
ws_advance (WsSession *s)
{
  while (s->next < s->frames->len
         && soup_websocket_connection_get_state (s->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    {
      WsFrame *f = g_ptr_array_index (s->frames, s->next);
      g_autofree char *payload = NULL;
      gboolean skip, silent;
      Route *r;

      g_mutex_lock (&s->fu->lock);
      r = g_hash_table_lookup (s->fu->routes, s->path);
      silent = r != NULL && (r->fault == FAKE_FAULT_HANG || s->fu->fault_all == FAKE_FAULT_HANG);
      skip = f->op == WS_TEXT && route_is_heartbeat (r, f->payload, f->dir == WS_S2C);
      if (f->dir == WS_S2C && f->op == WS_TEXT && !skip && r != NULL)
        payload = render_frame (s->fu, r, f->payload);
      g_mutex_unlock (&s->fu->lock);

      if (silent)
        return; /* a hung upstream: nothing until the fault is cleared and the client speaks */
      if (skip)
        {
          s->next++;
          continue;
        }
      if (f->dir == WS_C2S)
        {
          if (f->op == WS_TEXT)
            {
              if (s->received < s->needed + 1)
                return; /* the client speaks next */
              s->needed++;
            }
          s->next++;
          continue;
        }
      if (f->op == WS_TEXT && s->speed > 0)
        {
          gint64 due = s->start_us + (gint64) ((double) f->at_ms * 1000.0 / s->speed);
          gint64 now = g_get_monotonic_time ();

          if (due > now)
            {
              s->timer = g_timeout_source_new ((guint) ((due - now + 999) / 1000));
              g_source_set_callback (s->timer, ws_on_timer, s, NULL);
              g_source_attach (s->timer, s->fu->context);
              return;
            }
        }
      s->next++;
      switch (f->op)
        {
        case WS_TEXT:
          soup_websocket_connection_send_text (s->conn, payload != NULL ? payload : f->payload);
          g_mutex_lock (&s->fu->lock);
          {
            Route *rr = g_hash_table_lookup (s->fu->routes, s->path);
            if (rr != NULL)
              rr->frames_sent++;
          }
          g_mutex_unlock (&s->fu->lock);
          break;
        case WS_CLOSE:
          soup_websocket_connection_close (s->conn, f->code != 0 ? f->code : SOUP_WEBSOCKET_CLOSE_NORMAL, f->payload);
          return;
        case WS_PING:
        case WS_PONG:
        default:
          /* libsoup 3.2 lets a server send no ping of its own choosing;
           * its keepalive pings (on for transcripts that have server
           * pings) and automatic pongs stand in */
          break;
        }
    }
}

static void
ws_on_message (SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer data)
{
  WsSession *s = data;
  g_autofree char *text = NULL;
  g_autofree char *reply = NULL;
  gboolean counts = TRUE, silent = FALSE;
  Route *r;

  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    return;
  text = g_strndup (g_bytes_get_data (message, NULL), g_bytes_get_size (message));
  g_mutex_lock (&s->fu->lock);
  r = g_hash_table_lookup (s->fu->routes, s->path);
  if (r != NULL)
    {
      silent = r->fault == FAKE_FAULT_HANG || s->fu->fault_all == FAKE_FAULT_HANG;
      reply = g_strdup (g_hash_table_lookup (r->replies, text));
      if (reply == NULL)
        {
          g_ptr_array_add (r->received, g_strdup (text));
          for (guint i = 0; i + 1 < r->reply_matches->len; i += 2)
            if (strstr (text, g_ptr_array_index (r->reply_matches, i)) != NULL)
              {
                reply = render_frame (s->fu, r, g_ptr_array_index (r->reply_matches, i + 1));
                counts = FALSE;
                break;
              }
        }
      else
        counts = FALSE;
    }
  g_mutex_unlock (&s->fu->lock);
  if (silent)
    return;
  if (reply != NULL)
    soup_websocket_connection_send_text (conn, reply);
  if (!counts)
    return;
  s->received++;
  if (s->timer == NULL)
    ws_advance (s);
}

static gboolean
ws_session_free_idle (gpointer data)
{
  ws_session_free (data);
  return G_SOURCE_REMOVE;
}

static void
ws_on_closed (SoupWebsocketConnection *conn, gpointer data)
{
  WsSession *s = data;
  FakeUpstream *fu = s->fu;
  guint index;

  g_signal_handlers_disconnect_by_data (conn, s);
  if (s->timer != NULL)
    {
      g_source_destroy (s->timer);
      g_clear_pointer (&s->timer, g_source_unref);
    }
  /* not while the connection is still emitting its signal */
  if (g_ptr_array_find (fu->sessions, s, &index))
    {
      GSource *idle = g_idle_source_new ();

      g_ptr_array_steal_index (fu->sessions, index);
      g_source_set_callback (idle, ws_session_free_idle, s, NULL);
      g_source_attach (idle, fu->context);
      g_source_unref (idle);
    }
}

static void
ws_handler (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *conn,
            gpointer data)
{
  FakeUpstream *fu = data;
  WsSession *s = g_new0 (WsSession, 1);
  Route *r;

  s->fu = fu;
  s->path = g_strdup (path);
  /* libsoup drops the connection when the handler returns unless it is kept */
  s->conn = g_object_ref (conn);
  s->start_us = g_get_monotonic_time ();
  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  s->frames = r != NULL && r->frames != NULL ? g_ptr_array_ref (r->frames) : g_ptr_array_new ();
  s->speed = r != NULL ? r->speed : 1.0;
  if (r != NULL)
    r->sessions++;
  g_mutex_unlock (&fu->lock);

  g_ptr_array_add (fu->sessions, s);
  for (guint i = 0; i < s->frames->len; i++)
    {
      WsFrame *f = g_ptr_array_index (s->frames, i);
      if (f->dir == WS_S2C && f->op == WS_PING)
        {
          /* the recorded heartbeats, as real ping control frames */
          soup_websocket_connection_set_keepalive_interval (conn, 1);
          break;
        }
    }
  g_signal_connect (conn, "message", G_CALLBACK (ws_on_message), s);
  g_signal_connect (conn, "closed", G_CALLBACK (ws_on_closed), s);
  ws_advance (s);
}

typedef struct {
  FakeUpstream *fu;
  const char   *path;
} WsRegister;

static gboolean
ws_register (gpointer data)
{
  WsRegister *w = data;

  soup_server_remove_handler (w->fu->server, w->path);
  soup_server_add_websocket_handler (w->fu->server, w->path, NULL, NULL, ws_handler, w->fu, NULL);
  return G_SOURCE_REMOVE;
}

/* the raw text of member @name's value in the one-line JSON object @line,
 * without the white space between tokens, so numbers keep their exact text
 * (json-glib would print them again as doubles) */
static char *
raw_member (const char *line, const char *name)
{
  g_autofree char *key = g_strdup_printf ("\"%s\"", name);
  const char *p = line;
  int depth = 0;
  gboolean in_string = FALSE;

  /* find the member at depth 1 */
  for (; *p != '\0'; p++)
    {
      if (in_string)
        {
          if (*p == '\\' && p[1] != '\0')
            p++;
          else if (*p == '"')
            in_string = FALSE;
          continue;
        }
      if (*p == '{' || *p == '[')
        depth++;
      else if (*p == '}' || *p == ']')
        depth--;
      else if (*p == '"')
        {
          if (depth == 1 && g_str_has_prefix (p, key))
            {
              const char *q = p + strlen (key);
              while (g_ascii_isspace (*q))
                q++;
              if (*q == ':')
                {
                  p = q + 1;
                  break;
                }
            }
          in_string = TRUE;
        }
    }
  if (*p == '\0')
    return NULL;

  /* copy one value, dropping white space outside strings */
  {
    g_autoptr(GString) out = g_string_new (NULL);
    int level = 0;

    while (g_ascii_isspace (*p))
      p++;
    in_string = FALSE;
    for (; *p != '\0'; p++)
      {
        if (in_string)
          {
            g_string_append_c (out, *p);
            if (*p == '\\' && p[1] != '\0')
              g_string_append_c (out, *++p);
            else if (*p == '"')
              {
                in_string = FALSE;
                if (level == 0)
                  break;
              }
            continue;
          }
        if (*p == '"')
          in_string = TRUE;
        else if (*p == '{' || *p == '[')
          level++;
        else if (*p == '}' || *p == ']')
          {
            if (level == 0)
              break; /* the end of the envelope: a scalar value ended */
            level--;
            if (level == 0)
              {
                g_string_append_c (out, *p);
                break;
              }
          }
        else if (*p == ',' && level == 0)
          break;
        else if (g_ascii_isspace (*p))
          continue;
        g_string_append_c (out, *p);
      }
    return g_string_free (g_steal_pointer (&out), FALSE);
  }
}

static GPtrArray *
load_transcript (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func ((GDestroyNotify) ws_frame_free);
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      JsonObject *o;
      const char *dir, *op;
      WsFrame *f;

      if (*g_strstrip (lines[i]) == '\0')
        continue;
      if (!json_parser_load_from_data (parser, lines[i], -1, error)
          || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          g_prefix_error (error, "%s:%u: ", path, i + 1);
          if (error != NULL && *error == NULL)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s:%u: not a frame object", path, i + 1);
          return NULL;
        }
      o = json_node_get_object (json_parser_get_root (parser));
      dir = json_object_get_string_member_with_default (o, "dir", "s2c");
      op = json_object_get_string_member_with_default (o, "op", "text");
      f = g_new0 (WsFrame, 1);
      g_ptr_array_add (frames, f);
      f->dir = g_str_equal (dir, "c2s") ? WS_C2S : WS_S2C;
      f->op = g_str_equal (op, "ping") ? WS_PING : g_str_equal (op, "pong") ? WS_PONG
            : g_str_equal (op, "close") ? WS_CLOSE : WS_TEXT;
      f->at_ms = json_object_get_int_member_with_default (o, "at_ms", 0);
      f->code = (gushort) json_object_get_int_member_with_default (o, "code", 0);
      if (json_object_has_member (o, "json"))
        f->payload = raw_member (lines[i], "json");
      else if (f->op == WS_CLOSE)
        f->payload = g_strdup (json_object_get_string_member_with_default (o, "reason", NULL));
      else
        f->payload = g_strdup (json_object_get_string_member_with_default (o, "text", ""));
    }
  return g_steal_pointer (&frames);
}

/* ------------------------------------------------------------------------ */
/* Before any handler: authentication, and faults of WebSocket routes       */

/* runs on the server's thread once a request is read, before its handler
 * (libsoup skips the handler, the WebSocket handshake included, once a
 * status is set here) */
static void
on_request_read (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  FakeUpstream *fu = data;
  GUri *uri = soup_server_message_get_uri (msg);
  const char *path = g_uri_get_path (uri);
  g_autoptr(GPtrArray) checks = g_ptr_array_new ();
  g_autoptr(GHashTable) headers = NULL;
  SoupMessageHeadersIter iter;
  const char *name, *value;
  FakeFault fault = FAKE_FAULT_NONE;
  int fault_arg = 0;
  Route *r;

  g_mutex_lock (&fu->lock);
  for (guint i = 0; i < fu->auths->len; i++)
    {
      FakeAuth *a = g_ptr_array_index (fu->auths, i);
      if (g_str_has_prefix (path, a->prefix))
        g_ptr_array_add (checks, a);
    }
  r = g_hash_table_lookup (fu->routes, path);
  if (r != NULL && r->ws)
    {
      fault = r->fault != FAKE_FAULT_NONE ? r->fault : fu->fault_all;
      fault_arg = r->fault != FAKE_FAULT_NONE ? r->fault_arg : fu->fault_all_arg;
      if (fault != FAKE_FAULT_NONE && fault != FAKE_FAULT_HANG)
        r->requests++;
    }
  g_mutex_unlock (&fu->lock);

  if (checks->len > 0)
    {
      headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      soup_message_headers_iter_init (&iter, soup_server_message_get_request_headers (msg));
      while (soup_message_headers_iter_next (&iter, &name, &value))
        g_hash_table_insert (headers, g_ascii_strdown (name, -1), g_strdup (value));
    }
  for (guint i = 0; i < checks->len; i++)
    {
      FakeAuth *a = g_ptr_array_index (checks, i);
      guint status = 401;
      g_autofree char *body = NULL;

      if (a->func (soup_server_message_get_method (msg), path, headers, a->data, &status, &body))
        continue;
      g_mutex_lock (&fu->lock);
      fu->auth_refusals++;
      g_mutex_unlock (&fu->lock);
      soup_server_message_set_status (msg, status, phrase (status));
      soup_server_message_set_response (msg, "application/json; charset=utf-8", SOUP_MEMORY_COPY,
                                        body != NULL ? body : "{}", body != NULL ? strlen (body) : 2);
      return;
    }

  switch (fault)
    {
    case FAKE_FAULT_500:
    case FAKE_FAULT_401:
    case FAKE_FAULT_403:
    case FAKE_FAULT_429:
      {
        guint status = fault == FAKE_FAULT_500   ? 500
                       : fault == FAKE_FAULT_401 ? 401
                       : fault == FAKE_FAULT_403 ? 403
                                                 : 429;
        if (fault == FAKE_FAULT_429 && fault_arg >= 0)
          {
            g_autofree char *secs = g_strdup_printf ("%d", fault_arg);
            soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", secs);
          }
        soup_server_message_set_status (msg, status, phrase (status));
        soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "refused by the fake upstream\n", 29);
        return;
      }
    case FAKE_FAULT_DROP:
    case FAKE_FAULT_TRUNCATED:
    case FAKE_FAULT_MALFORMED:
      send_raw_and_close (msg, NULL, NULL, 0);
      return;
    case FAKE_FAULT_NONE:
    case FAKE_FAULT_HANG:
    case FAKE_FAULT_STALE:
    default:
      return;
    }
}

/* ------------------------------------------------------------------------ */
/* The thread                                                               */

static gpointer
server_thread (gpointer data)
{
  FakeUpstream *fu = data;
  g_autoptr(GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (fu->context);
  fu->server = soup_server_new ("server-header", "fake-upstream", NULL);
  g_signal_connect (fu->server, "request-read", G_CALLBACK (on_request_read), fu);
  soup_server_add_handler (fu->server, NULL, http_handler, fu, NULL);
  if (soup_server_listen_local (fu->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      uris = soup_server_get_uris (fu->server);
      if (uris != NULL)
        fu->port = (guint16) g_uri_get_port (uris->data);
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    }
  g_mutex_lock (&fu->lock);
  fu->start_error = g_steal_pointer (&error);
  fu->started = TRUE;
  g_cond_broadcast (&fu->cond);
  g_mutex_unlock (&fu->lock);

  if (fu->start_error == NULL)
    g_main_loop_run (fu->loop);

  /* closing: held requests are released unanswered, sessions closed */
  for (guint i = 0; i < fu->held->len; i++)
    {
      SoupServerMessage *msg = g_ptr_array_index (fu->held, i);
      g_signal_handlers_disconnect_by_data (msg, fu);
      g_object_unref (msg);
    }
  g_ptr_array_set_size (fu->held, 0);
  while (fu->sessions->len > 0)
    {
      WsSession *s = g_ptr_array_index (fu->sessions, 0);
      g_signal_handlers_disconnect_by_data (s->conn, s);
      if (soup_websocket_connection_get_state (s->conn) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (s->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "fake upstream stopping");
      g_ptr_array_remove_index (fu->sessions, 0);
    }
  soup_server_disconnect (fu->server);
  g_clear_object (&fu->server);
  /* what the disconnects left to do */
  while (g_main_context_iteration (fu->context, FALSE))
    ;
  g_main_context_pop_thread_default (fu->context);
  return NULL;
}

FakeUpstream *
fake_upstream_new (const char *fixtures_dir, GError **error)
{
  FakeUpstream *fu = g_new0 (FakeUpstream, 1);

  fu->fixtures_dir = g_strdup (fixtures_dir != NULL ? fixtures_dir : ".");
  g_mutex_init (&fu->lock);
  g_cond_init (&fu->cond);
  fu->routes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) route_free);
  fu->manifests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_node_unref);
  fu->held = g_ptr_array_new ();
  fu->sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) ws_session_free);
  fu->auths = g_ptr_array_new_with_free_func ((GDestroyNotify) fake_auth_free);
  fu->context = g_main_context_new ();
  fu->loop = g_main_loop_new (fu->context, FALSE);
  fu->thread = g_thread_new ("fake-upstream", server_thread, fu);

  g_mutex_lock (&fu->lock);
  while (!fu->started)
    g_cond_wait (&fu->cond, &fu->lock);
  g_mutex_unlock (&fu->lock);
  if (fu->start_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&fu->start_error));
      fake_upstream_free (fu);
      return NULL;
    }
  return fu;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

void
fake_upstream_free (FakeUpstream *fu)
{
  if (fu == NULL)
    return;
  g_main_context_invoke (fu->context, quit_loop, fu->loop);
  g_thread_join (fu->thread);
  g_clear_pointer (&fu->held, g_ptr_array_unref);
  g_clear_pointer (&fu->sessions, g_ptr_array_unref);
  g_clear_pointer (&fu->auths, g_ptr_array_unref);
  g_hash_table_unref (fu->routes);
  g_hash_table_unref (fu->manifests);
  g_main_loop_unref (fu->loop);
  g_main_context_unref (fu->context);
  g_clear_error (&fu->start_error);
  g_mutex_clear (&fu->lock);
  g_cond_clear (&fu->cond);
  g_free (fu->fixtures_dir);
  g_free (fu);
}

guint16
fake_upstream_get_port (FakeUpstream *fu)
{
  return fu->port;
}

char *
fake_upstream_url (FakeUpstream *fu, const char *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", fu->port, path != NULL ? path : "");
}

char *
fake_upstream_ws_url (FakeUpstream *fu, const char *path)
{
  return g_strdup_printf ("ws://127.0.0.1:%u%s", fu->port, path != NULL ? path : "");
}

/* ------------------------------------------------------------------------ */
/* Control                                                                  */

void
fake_upstream_serve_file (FakeUpstream *fu, const char *path, const char *fixture)
{
  g_autofree char *provider = g_path_get_dirname (fixture);
  g_autofree char *file = g_path_get_basename (fixture);
  g_autofree char *full = g_build_filename (fu->fixtures_dir, fixture, NULL);
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize length = 0;
  JsonObject *entry;
  Route *r;

  if (!g_file_get_contents (full, &contents, &length, &error))
    g_error ("fake upstream: %s", error->message);
  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  r->ws = FALSE;
  g_bytes_unref (r->body);
  r->body = g_bytes_new_take (contents, length);
  g_ptr_array_set_size (r->replacements, 0);
  g_ptr_array_set_size (r->headers, 0);
  g_free (r->provider);
  r->provider = g_str_equal (provider, ".") ? NULL : g_strdup (provider);
  g_clear_pointer (&r->manifest_path, g_free);
  r->status = 200;
  g_free (r->content_type);
  r->content_type = g_strdup ("application/json");
  entry = r->provider != NULL ? manifest_entry (fu, r->provider, file) : NULL;
  if (entry != NULL)
    {
      r->status = (guint) json_object_get_int_member_with_default (entry, "status", 200);
      g_free (r->content_type);
      r->content_type = g_strdup (json_object_get_string_member_with_default (entry, "content_type",
                                                                              "application/json"));
      r->manifest_path = g_strdup (json_object_get_string_member_with_default (entry, "path", NULL));
      if (json_object_has_member (entry, "response_headers"))
        {
          JsonObject *h = json_object_get_object_member (entry, "response_headers");
          g_autoptr(GList) names = json_object_get_members (h);
          for (GList *l = names; l != NULL; l = l->next)
            {
              g_ptr_array_add (r->headers, g_strdup (l->data));
              g_ptr_array_add (r->headers, g_strdup (json_object_get_string_member (h, l->data)));
            }
        }
    }
  g_mutex_unlock (&fu->lock);
}

void
fake_upstream_serve_text (FakeUpstream *fu, const char *path, guint status, const char *content_type,
                          const char *body)
{
  Route *r;

  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  r->ws = FALSE;
  r->status = status;
  g_free (r->content_type);
  r->content_type = g_strdup (content_type);
  g_bytes_unref (r->body);
  r->body = g_bytes_new (body, strlen (body));
  g_ptr_array_set_size (r->replacements, 0);
  g_ptr_array_set_size (r->headers, 0);
  g_mutex_unlock (&fu->lock);
}

void
fake_upstream_replace (FakeUpstream *fu, const char *path, const char *from, const char *to)
{
  Route *r;

  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  g_ptr_array_add (r->replacements, g_strdup (from));
  g_ptr_array_add (r->replacements, g_strdup (to));
  g_mutex_unlock (&fu->lock);
}

void
fake_upstream_set_clock (FakeUpstream *fu, gint64 unix_us)
{
  g_mutex_lock (&fu->lock);
  fu->clock_us = unix_us;
  g_mutex_unlock (&fu->lock);
}

static gboolean
release_held (gpointer data)
{
  FakeUpstream *fu = data;

  while (fu->held->len > 0)
    {
      SoupServerMessage *msg = g_ptr_array_steal_index (fu->held, 0);

      g_signal_handlers_disconnect_by_data (msg, fu);
      soup_server_message_set_status (msg, 503, "Released");
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "released\n", 9);
      soup_server_message_unpause (msg);
      g_object_unref (msg);
    }
  return G_SOURCE_REMOVE;
}

void
fake_upstream_set_fault (FakeUpstream *fu, const char *path, FakeFault fault, int arg)
{
  gint64 now;

  g_mutex_lock (&fu->lock);
  now = fu->clock_us != 0 ? fu->clock_us : g_get_real_time ();
  if (path == NULL)
    {
      fu->fault_all = fault;
      fu->fault_all_arg = arg;
      fu->frozen_all_us = now;
    }
  else
    {
      Route *r = route_get (fu, path);
      r->fault = fault;
      r->fault_arg = arg;
      r->frozen_us = now;
    }
  g_mutex_unlock (&fu->lock);
  if (fault == FAKE_FAULT_NONE)
    fake_run_on_server (fu, release_held, fu);
}

guint
fake_upstream_get_request_count (FakeUpstream *fu, const char *path)
{
  guint n = 0;

  g_mutex_lock (&fu->lock);
  if (path != NULL)
    {
      Route *r = g_hash_table_lookup (fu->routes, path);
      n = r != NULL ? r->requests : 0;
    }
  else
    {
      GHashTableIter it;
      Route *r;

      g_hash_table_iter_init (&it, fu->routes);
      while (g_hash_table_iter_next (&it, NULL, (gpointer *) &r))
        n += r->requests;
      n += fu->unrouted;
    }
  g_mutex_unlock (&fu->lock);
  return n;
}

void
fake_upstream_reset_counts (FakeUpstream *fu)
{
  GHashTableIter it;
  Route *r;

  g_mutex_lock (&fu->lock);
  g_hash_table_iter_init (&it, fu->routes);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &r))
    r->requests = 0;
  fu->unrouted = 0;
  g_mutex_unlock (&fu->lock);
}

char *
fake_upstream_dup_last_query (FakeUpstream *fu, const char *path)
{
  char *q;
  Route *r;

  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  q = r != NULL ? g_strdup (r->last_query) : NULL;
  g_mutex_unlock (&fu->lock);
  return q;
}

char *
fake_upstream_dup_last_header (FakeUpstream *fu, const char *path, const char *header)
{
  g_autofree char *lower = g_ascii_strdown (header, -1);
  char *v = NULL;
  Route *r;

  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  if (r != NULL && r->last_headers != NULL)
    v = g_strdup (g_hash_table_lookup (r->last_headers, lower));
  g_mutex_unlock (&fu->lock);
  return v;
}

gboolean
fake_upstream_serve_ws (FakeUpstream *fu, const char *path, const char *transcript, double speed, GError **error)
{
  g_autofree char *full = g_build_filename (fu->fixtures_dir, transcript, NULL);
  g_autoptr(GPtrArray) frames = load_transcript (full, error);
  WsRegister w = { fu, path };
  Route *r;

  if (frames == NULL)
    return FALSE;
  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  r->ws = TRUE;
  g_clear_pointer (&r->frames, g_ptr_array_unref);
  r->frames = g_steal_pointer (&frames);
  r->speed = speed;
  g_mutex_unlock (&fu->lock);
  fake_run_on_server (fu, ws_register, &w);
  return TRUE;
}

void
fake_upstream_ws_reply (FakeUpstream *fu, const char *path, const char *text, const char *reply)
{
  Route *r;

  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  g_hash_table_replace (r->replies, g_strdup (text), g_strdup (reply));
  g_mutex_unlock (&fu->lock);
}

guint
fake_upstream_get_ws_sessions (FakeUpstream *fu, const char *path)
{
  guint n;
  Route *r;

  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  n = r != NULL ? r->sessions : 0;
  g_mutex_unlock (&fu->lock);
  return n;
}

guint
fake_upstream_get_ws_frames_sent (FakeUpstream *fu, const char *path)
{
  guint n;
  Route *r;

  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  n = r != NULL ? r->frames_sent : 0;
  g_mutex_unlock (&fu->lock);
  return n;
}

GStrv
fake_upstream_dup_ws_received (FakeUpstream *fu, const char *path)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  Route *r;

  g_mutex_lock (&fu->lock);
  r = g_hash_table_lookup (fu->routes, path);
  for (guint i = 0; r != NULL && i < r->received->len; i++)
    g_strv_builder_add (b, g_ptr_array_index (r->received, i));
  g_mutex_unlock (&fu->lock);
  return g_strv_builder_end (b);
}

/* ------------------------------------------------------------------------ */
/* WebSocket control, authentication                                        */

void
fake_upstream_ws_restamp (FakeUpstream *fu, const char *path, gboolean restamp)
{
  Route *r;

  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  r->restamp = restamp;
  g_mutex_unlock (&fu->lock);
}

void
fake_upstream_ws_reply_containing (FakeUpstream *fu, const char *path, const char *needle, const char *reply)
{
  Route *r;

  g_mutex_lock (&fu->lock);
  r = route_get (fu, path);
  g_ptr_array_add (r->reply_matches, g_strdup (needle));
  g_ptr_array_add (r->reply_matches, g_strdup (reply));
  g_mutex_unlock (&fu->lock);
}

typedef struct {
  FakeUpstream *fu;
  const char   *path;
  gushort       code;
  const char   *reason;
  guint         closed;
} WsClose;

static gboolean
ws_close_on_server (gpointer data)
{
  WsClose *c = data;

  for (guint i = 0; i < c->fu->sessions->len; i++)
    {
      WsSession *s = g_ptr_array_index (c->fu->sessions, i);

      if (g_strcmp0 (s->path, c->path) != 0
          || soup_websocket_connection_get_state (s->conn) != SOUP_WEBSOCKET_STATE_OPEN)
        continue;
      c->closed++;
      if (c->code == 0)
        /* no close frame: the connection just breaks */
        g_io_stream_close (soup_websocket_connection_get_io_stream (s->conn), NULL, NULL);
      else
        soup_websocket_connection_close (s->conn, c->code, c->reason);
    }
  return G_SOURCE_REMOVE;
}

guint
fake_upstream_ws_close (FakeUpstream *fu, const char *path, gushort code, const char *reason)
{
  WsClose c = { fu, path, code, reason, 0 };

  fake_run_on_server (fu, ws_close_on_server, &c);
  return c.closed;
}

void
fake_upstream_set_auth (FakeUpstream *fu, const char *prefix, FakeAuthFunc func, gpointer data)
{
  FakeAuth *a = g_new0 (FakeAuth, 1);

  a->prefix = g_strdup (prefix);
  a->func = func;
  a->data = data;
  g_mutex_lock (&fu->lock);
  g_ptr_array_add (fu->auths, a);
  g_mutex_unlock (&fu->lock);
}

guint
fake_upstream_get_auth_refusals (FakeUpstream *fu)
{
  guint n;

  g_mutex_lock (&fu->lock);
  n = fu->auth_refusals;
  g_mutex_unlock (&fu->lock);
  return n;
}
