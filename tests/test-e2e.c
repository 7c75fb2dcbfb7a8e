/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* End to end: the real arbiterd binary on a temporary config, replaying a
 * recorded session into a JSON-lines file, read from the outside the way an
 * operator and a monitoring system would: over HTTP, from its log and from
 * the file it writes. */

#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <arbiter/arb-plugin.h>

#include "arb-test-daemon.h"
#include "arb-test-util.h"

#define LINES_TIMEOUT_MS 10000
#define MIN_LINES        20

static char *source_root;
static char *fixture_dir;     /* tests/e2e-fixtures in the build: libarb-ingest-abi2.so */
static char *fixture_plugins; /* ARBITER_PLUGIN_PATH: the build's plugins, then fixture_dir */

/* ------------------------------------------------------------------------ */
/* The daemon, from the outside                                             */

/* arbiterd on @conf; with @with_fixture, the ABI 2 fixture plugin is found too */
static ArbTestDaemon *
daemon_start (const char *conf, gboolean with_fixture)
{
  const char *const env[] = { "ARBITER_PLUGIN_PATH", fixture_plugins, NULL };
  ArbTestDaemon *d = arb_test_daemon_start (conf, with_fixture ? env : NULL);

  if (d == NULL)
    g_error ("arbiterd did not log the port it listens on (its log is above)");
  return d;
}

/* @method @path, with X-Correlation-ID: @cid when not NULL */
static ArbTestReply *
http (SoupSession *session, ArbTestDaemon *d, const char *method, const char *path, const char *cid)
{
  const char *const headers[] = { "X-Correlation-ID", cid, NULL };

  return arb_test_http_request_full (session, d, method, path, NULL, NULL, cid != NULL ? headers : NULL);
}

static const char *
cid_of (ArbTestReply *r)
{
  return arb_test_reply_header (r, "X-Correlation-ID");
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_object_ref (json_node_get_object (root));
}

static JsonObject *
find_instance (JsonObject *ready, const char *name)
{
  JsonArray *instances = json_object_get_array_member (ready, "instances");
  for (guint i = 0; i < json_array_get_length (instances); i++)
    {
      JsonObject *inst = json_array_get_object_element (instances, i);
      if (g_strcmp0 (json_object_get_string_member (inst, "name"), name) == 0)
        return inst;
    }
  g_error ("/ready does not list instance %s", name);
  return NULL;
}

/* the value of the sample line that starts with @series, e.g. `name{l="v"}` */
static gdouble
metric_value (const char *text, const char *series)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], series) && lines[i][strlen (series)] == ' ')
      {
        char *end = NULL;
        gdouble v = g_ascii_strtod (lines[i] + strlen (series) + 1, &end);
        g_assert_true (end != NULL && *end == '\0');
        return v;
      }
  g_error ("no sample %s in /metrics:\n%s", series, text);
  return -1;
}

static gboolean
has_line (const char *text, const char *line)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  return g_strv_contains ((const char *const *) lines, line);
}

/* ------------------------------------------------------------------------ */
/* The JSON-lines file                                                      */

typedef struct {
  const char *path;
  guint       min_lines;
} LinesWanted;

static guint
count_lines (const char *path)
{
  g_autofree char *text = NULL;
  guint n = 0;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  for (const char *p = text; *p != '\0'; p++)
    if (*p == '\n')
      n++;
  return n;
}

static gboolean
has_lines (gpointer data)
{
  LinesWanted *w = data;
  return count_lines (w->path) >= w->min_lines;
}

static void
assert_decimal_8 (JsonObject *o, const char *member, const char *line)
{
  static GRegex *re = NULL;
  JsonNode *n;

  if (re == NULL)
    re = g_regex_new ("^-?[0-9]+\\.[0-9]{8}$", G_REGEX_OPTIMIZE, 0, NULL);
  n = json_object_get_member (o, member);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return;
  if (json_node_get_value_type (n) != G_TYPE_STRING || !g_regex_match (re, json_node_get_string (n), 0, NULL))
    g_error ("%s is not a decimal string with 8 places in: %s", member, line);
}

/* every complete line is an event envelope; returns how many quotes and
 * status changes there were. With @whole, the file must end with a newline. */
static guint
check_events_file (const char *path, gboolean whole, guint *out_quotes)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GRegex) market_re = g_regex_new ("^[a-z][a-z0-9_-]*:[^\\s:][^\\s]*$", 0, 0, NULL);
  char *last_newline;
  guint n = 0, quotes = 0;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (text), >, 0);
  last_newline = strrchr (text, '\n');
  g_assert_nonnull (last_newline);
  if (whole)
    g_assert_cmpint (last_newline[1], ==, '\0');
  else
    last_newline[1] = '\0'; /* a line being written is not judged yet */
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonObject *ev, *data;
      const char *type, *market;
      g_autoptr(GDateTime) time = NULL;

      if (lines[i + 1] == NULL)
        {
          /* what follows the last newline */
          g_assert_cmpstr (line, ==, "");
          break;
        }
      json_parser_load_from_data (parser, line, -1, &error);
      if (error != NULL)
        g_error ("line %u of %s is not JSON (%s): %s", i + 1, path, error->message, line);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      ev = json_node_get_object (json_parser_get_root (parser));
      g_assert_true (json_object_has_member (ev, "id"));
      g_assert_true (json_object_has_member (ev, "type"));
      g_assert_true (json_object_has_member (ev, "time"));
      g_assert_true (json_object_has_member (ev, "data"));
      g_assert_true (g_uuid_string_is_valid (json_object_get_string_member (ev, "id")));
      time = g_date_time_new_from_iso8601 (json_object_get_string_member (ev, "time"), NULL);
      g_assert_nonnull (time);
      type = json_object_get_string_member (ev, "type");
      data = json_object_get_object_member (ev, "data");
      g_assert_nonnull (data);
      market = json_object_get_string_member_with_default (data, "market", "");
      if (!g_regex_match (market_re, market, 0, NULL))
        g_error ("market id \"%s\" is not namespaced in: %s", market, line);
      if (g_strcmp0 (type, "quote") == 0)
        {
          quotes++;
          g_assert_true (json_object_has_member (data, "bid") || json_object_has_member (data, "ask")
                         || json_object_has_member (data, "last"));
          assert_decimal_8 (data, "bid", line);
          assert_decimal_8 (data, "ask", line);
          assert_decimal_8 (data, "last", line);
        }
      else if (g_strcmp0 (type, "market.status") == 0)
        {
          g_assert_nonnull (json_object_get_string_member (data, "status"));
          assert_decimal_8 (data, "settlement", line);
        }
      else
        g_error ("unexpected event type \"%s\" in: %s", type, line);
      n++;
    }
  if (out_quotes != NULL)
    *out_quotes = quotes;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                  */

typedef struct {
  char        *dir;    /* owned: temporary */
  char        *conf;   /* owned: dir/arbiter.conf */
  char        *events; /* owned: dir/events.jsonl */
  SoupSession *session;
} Fixture;

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  fx->dir = g_dir_make_tmp ("arb-test-e2e-XXXXXX", &error);
  g_assert_no_error (error);
  fx->conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  fx->events = g_build_filename (fx->dir, "events.jsonl", NULL);
  fx->session = arb_test_session_new ();
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->session);
  arb_test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->conf);
  g_free (fx->events);
}

/* [runtime] on a free port, replay at 20x into events.jsonl, plus @extra */
static void
write_conf (Fixture *fx, const char *extra)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *replay_dir = g_build_filename (source_root, "data", "replay", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0   # any free port; the log says which\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=3s\n"
                                           "\n"
                                           "[ingest:replay]\n"
                                           "plugin=ingest-replay\n"
                                           "dir=%s\n"
                                           "files=session-10m.jsonl\n"
                                           "speed=20\n"
                                           "\n"
                                           "[sink:events]\n"
                                           "plugin=sink-jsonl\n"
                                           "path=%s\n"
                                           "fsync=always\n"
                                           "\n"
                                           "%s",
                                           replay_dir, fx->events, extra != NULL ? extra : "");
  g_file_set_contents (fx->conf, text, -1, &error);
  g_assert_no_error (error);
}

static void
wait_for_lines (Fixture *fx, guint n)
{
  LinesWanted w = { fx->events, n };
  if (!arb_test_wait_for (has_lines, &w, LINES_TIMEOUT_MS))
    g_error ("%s has %u lines after %u ms, expected at least %u", fx->events, count_lines (fx->events),
             LINES_TIMEOUT_MS, n);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void
test_replay_to_jsonl (Fixture *fx, gconstpointer user_data)
{
  g_autoptr(ArbTestDaemon) d = NULL;
  g_autoptr(ArbTestReply) r = NULL;
  g_autoptr(JsonObject) o = NULL;
  JsonArray *instances;
  guint before, after, quotes = 0;

  write_conf (fx, NULL);
  d = daemon_start (fx->conf, FALSE);

  /* liveness */
  r = http (fx->session, d, "GET", "/health", NULL);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_true (g_str_has_prefix (r->content_type, "application/json"));
  o = parse_object (r->body);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ok");
  g_assert_cmpstr (json_object_get_string_member (o, "version"), ==, ARB_VERSION);
  g_clear_pointer (&o, json_object_unref);
  g_clear_pointer (&r, arb_test_reply_free);

  /* readiness: both instances run */
  r = http (fx->session, d, "GET", "/ready", NULL);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_true (strstr (r->body, "\"status\":\"ready\"") != NULL);
  o = parse_object (r->body);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ready");
  instances = json_object_get_array_member (o, "instances");
  g_assert_cmpuint (json_array_get_length (instances), ==, 2);
  for (guint i = 0; i < json_array_get_length (instances); i++)
    {
      JsonObject *inst = json_array_get_object_element (instances, i);
      g_assert_cmpstr (json_object_get_string_member (inst, "state"), ==, "running");
      g_assert_cmpstr (json_object_get_string_member (inst, "health"), ==, "ok");
    }
  g_assert_cmpstr (json_object_get_string_member (find_instance (o, "ingest:replay"), "plugin"), ==, "ingest-replay");
  g_assert_cmpstr (json_object_get_string_member (find_instance (o, "sink:events"), "plugin"), ==, "sink-jsonl");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "refusedModules")), ==, 0);
  g_clear_pointer (&o, json_object_unref);
  g_clear_pointer (&r, arb_test_reply_free);

  /* events reach the file, each a whole envelope */
  wait_for_lines (fx, MIN_LINES);
  before = check_events_file (fx->events, FALSE, &quotes);
  g_assert_cmpuint (before, >=, MIN_LINES);
  g_assert_cmpuint (quotes, >, 0);

  /* metrics, after quotes flowed and /health was answered once; a sink
   * counts an event once it acknowledged it, a moment after writing it */
  for (guint attempt = 0;; attempt++)
    {
      r = http (fx->session, d, "GET", "/metrics", NULL);
      g_assert_cmpuint (r->status, ==, 200);
      if (attempt == 50 || strstr (r->body, "\narb_sink_published_total{instance=\"sink:events\"") != NULL)
        break;
      g_clear_pointer (&r, arb_test_reply_free);
      g_usleep (100 * 1000);
    }
  g_assert_true (g_str_has_prefix (r->content_type, "text/plain"));
  g_assert_true (has_line (r->body, "# TYPE arb_instance_up gauge"));
  g_assert_true (has_line (r->body, "arb_instance_up{instance=\"ingest:replay\",plugin=\"ingest-replay\"} 1"));
  g_assert_true (has_line (r->body, "arb_instance_up{instance=\"sink:events\",plugin=\"sink-jsonl\"} 1"));
  g_assert_true (has_line (r->body, "# TYPE arb_quotes_received_total counter"));
  g_assert_cmpfloat (metric_value (r->body, "arb_quotes_received_total{instance=\"ingest:replay\",plugin=\"ingest-replay\"}"),
                     >, 0);
  g_assert_true (has_line (r->body, "# TYPE arb_sink_published_total counter"));
  g_assert_cmpfloat (metric_value (r->body, "arb_sink_published_total{instance=\"sink:events\",plugin=\"sink-jsonl\"}"),
                     >, 0);
  g_assert_true (has_line (r->body, "# TYPE arb_http_request_duration_seconds histogram"));
  g_assert_cmpfloat (metric_value (r->body, "arb_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\","
                                            "status=\"200\",le=\"+Inf\"}"),
                     ==, 1);
  g_assert_cmpfloat (metric_value (r->body, "arb_http_request_duration_seconds_count{method=\"GET\",route=\"/health\","
                                            "status=\"200\"}"),
                     ==, 1);
  g_assert_cmpfloat (metric_value (r->body, "arb_http_request_duration_seconds_sum{method=\"GET\",route=\"/health\","
                                            "status=\"200\"}"),
                     >=, 0);
  g_clear_pointer (&r, arb_test_reply_free);

  /* X-Correlation-ID: a valid one is echoed, anything else replaced */
  {
    static const char *const valid[] = { "e2e-test.42_ABC", "x",
                                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */ };
    g_autofree char *long_id = g_strnfill (100, 'a');
    const char *const invalid[] = { long_id, "has space", "a/b", "\"quoted\"",
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */, "" };
    for (guint i = 0; i < G_N_ELEMENTS (valid); i++)
      {
        g_autoptr(ArbTestReply) rr = http (fx->session, d, "GET", "/health", valid[i]);
        g_assert_cmpuint (rr->status, ==, 200);
        g_assert_cmpstr (cid_of (rr), ==, valid[i]);
      }
    for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
      {
        g_autoptr(ArbTestReply) rr = http (fx->session, d, "GET", "/health", invalid[i]);
        g_test_message ("X-Correlation-ID \"%s\" -> \"%s\"", invalid[i], cid_of (rr));
        g_assert_cmpuint (rr->status, ==, 200);
        g_assert_nonnull (cid_of (rr));
        g_assert_cmpstr (cid_of (rr), !=, invalid[i]);
        g_assert_true (g_uuid_string_is_valid (cid_of (rr)));
      }
    /* none sent: one generated, fresh each time */
    {
      g_autoptr(ArbTestReply) r1 = http (fx->session, d, "GET", "/health", NULL);
      g_autoptr(ArbTestReply) r2 = http (fx->session, d, "GET", "/health", NULL);
      g_assert_true (g_uuid_string_is_valid (cid_of (r1)));
      g_assert_true (g_uuid_string_is_valid (cid_of (r2)));
      g_assert_cmpstr (cid_of (r1), !=, cid_of (r2));
    }
  }

  /* an unknown path: a JSON error that carries the correlation id */
  r = http (fx->session, d, "GET", "/no/such/thing", "e2e-404");
  g_assert_cmpuint (r->status, ==, 404);
  g_assert_true (g_str_has_prefix (r->content_type, "application/json"));
  g_assert_cmpstr (cid_of (r), ==, "e2e-404");
  g_assert_cmpstr (r->body, ==, "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no route for GET /no/such/thing\","
                                "\"correlationId\":\"e2e-404\"}}");
  g_clear_pointer (&r, arb_test_reply_free);
  r = http (fx->session, d, "GET", "/nope", "has space");
  g_assert_cmpuint (r->status, ==, 404);
  o = parse_object (r->body);
  {
    JsonObject *e = json_object_get_object_member (o, "error");
    g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, "NOT_FOUND");
    g_assert_cmpstr (json_object_get_string_member (e, "correlationId"), ==, cid_of (r));
    g_assert_true (g_uuid_string_is_valid (cid_of (r)));
  }
  g_clear_pointer (&o, json_object_unref);
  g_clear_pointer (&r, arb_test_reply_free);

  /* a known path, the wrong method */
  r = http (fx->session, d, "POST", "/health", NULL);
  g_assert_cmpuint (r->status, ==, 405);
  g_assert_cmpstr (arb_test_reply_header (r, "Allow"), ==, "GET, HEAD");
  o = parse_object (r->body);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "error"), "code"), ==,
                   "METHOD_NOT_ALLOWED");
  g_clear_pointer (&o, json_object_unref);
  g_clear_pointer (&r, arb_test_reply_free);

  /* SIGTERM: drained and gone within seconds, exit 0, no torn line */
  g_assert_cmpint (arb_test_daemon_terminate (d), ==, 0);
  g_assert_true (strstr (arb_test_daemon_get_log (d), "signal received, shutting down") != NULL);
  g_assert_true (strstr (arb_test_daemon_get_log (d), "[host] stopped\n") != NULL);
  after = check_events_file (fx->events, TRUE, NULL);
  g_assert_cmpuint (after, >=, before);
}

static void
test_list_plugins_refused (Fixture *fx, gconstpointer user_data)
{
  g_autofree char *arbiterd = arb_test_arbiterd_path ();
  const char *const argv[] = { arbiterd, "--list-plugins", "--config", fx->conf, NULL };
  const char *const env[] = { "ARBITER_PLUGIN_PATH", fixture_plugins, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *want = g_strdup_printf ("%s/libarb-ingest-abi2.so: built for plugin ABI 2.0, this host speaks "
                                           "%u.%u; rebuild it against arbiter-plugin-1",
                                           fixture_dir, ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR);
  const char *refused;
  int status;

  write_conf (fx, NULL);
  status = arb_test_run (argv, env, &out, &err);
  g_test_message ("--list-plugins:\n%s%s", out, err);
  g_assert_cmpint (status, !=, -1); /* it exited */
  g_assert_cmpint (status, ==, 0);
  g_assert_true (ARB_PLUGIN_ABI_MAJOR == 1 && ARB_PLUGIN_ABI_MINOR == 1); /* "this host speaks 1.1" */

  /* the good ones above, the fixture below "refused:" with its reason */
  refused = strstr (out, "\nrefused:\n");
  g_assert_nonnull (refused);
  g_assert_true (strstr (out, "ingest-replay ") < refused);
  g_assert_true (strstr (out, "sink-jsonl ") < refused);
  g_assert_true (strstr (out, "libarb-ingest-abi2.so") > refused);
  g_assert_true (has_line (refused, want));
}

static void
test_refused_plugin_instance (Fixture *fx, gconstpointer user_data)
{
  g_autoptr(ArbTestDaemon) d = NULL;
  g_autoptr(ArbTestReply) r = NULL;
  g_autoptr(JsonObject) o = NULL;
  g_autofree char *file = g_build_filename (fixture_dir, "libarb-ingest-abi2.so", NULL);
  g_autofree char *why = g_strdup_printf ("built for plugin ABI 2.0, this host speaks %u.%u; rebuild it against "
                                          "arbiter-plugin-1",
                                          ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR);
  g_autofree char *reason = g_strdup_printf ("plugin ingest-abi2 (%s) was refused: %s", file, why);
  JsonObject *inst;
  JsonArray *refused;
  guint quotes = 0;

  write_conf (fx, "[ingest:other]\nplugin=ingest-abi2\n");
  d = daemon_start (fx->conf, TRUE);
  /* said at start, and the daemon runs on without it */
  g_assert_true (strstr (arb_test_daemon_get_log (d), reason) != NULL);

  r = http (fx->session, d, "GET", "/ready", NULL);
  g_assert_cmpuint (r->status, ==, 200);
  o = parse_object (r->body);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ready");
  inst = find_instance (o, "ingest:other");
  g_assert_cmpstr (json_object_get_string_member (inst, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (inst, "health"), ==, "down");
  g_assert_true (json_object_get_null_member (inst, "plugin"));
  g_assert_false (json_object_get_boolean_member (inst, "required"));
  g_assert_cmpstr (json_object_get_string_member (inst, "reason"), ==, reason);
  g_assert_cmpstr (json_object_get_string_member (find_instance (o, "ingest:replay"), "state"), ==, "running");
  g_assert_cmpstr (json_object_get_string_member (find_instance (o, "sink:events"), "state"), ==, "running");
  refused = json_object_get_array_member (o, "refusedModules");
  g_assert_cmpuint (json_array_get_length (refused), ==, 1);
  {
    JsonObject *m = json_array_get_object_element (refused, 0);
    g_assert_cmpstr (json_object_get_string_member (m, "file"), ==, file);
    g_assert_cmpstr (json_object_get_string_member (m, "name"), ==, "ingest-abi2");
    g_assert_cmpstr (json_object_get_string_member (m, "reason"), ==, why);
  }
  g_clear_pointer (&o, json_object_unref);
  g_clear_pointer (&r, arb_test_reply_free);

  /* replay quotes still flow */
  wait_for_lines (fx, MIN_LINES);
  g_assert_cmpuint (check_events_file (fx->events, FALSE, &quotes), >=, MIN_LINES);
  g_assert_cmpuint (quotes, >, 0);

  r = http (fx->session, d, "GET", "/metrics", NULL);
  g_assert_true (has_line (r->body, "arb_instance_up{instance=\"ingest:other\",plugin=\"\"} 0"));
  g_assert_true (has_line (r->body, "arb_instance_up{instance=\"ingest:replay\",plugin=\"ingest-replay\"} 1"));
  g_clear_pointer (&r, arb_test_reply_free);

  g_assert_cmpint (arb_test_daemon_terminate (d), ==, 0);
  check_events_file (fx->events, TRUE, NULL);
}

static void
assert_not_ready (Fixture *fx, ArbTestDaemon *d, const char *name, const char *reason_prefix)
{
  g_autoptr(ArbTestReply) r = NULL;
  g_autoptr(JsonObject) o = NULL;
  JsonObject *inst;
  const char *reason;

  r = http (fx->session, d, "GET", "/ready", NULL);
  g_assert_cmpuint (r->status, ==, 503);
  o = parse_object (r->body);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "not ready");
  inst = find_instance (o, name);
  g_assert_true (json_object_get_boolean_member (inst, "required"));
  g_assert_cmpstr (json_object_get_string_member (inst, "state"), ==, "failed");
  reason = json_object_get_string_member (inst, "reason");
  if (!g_str_has_prefix (reason, reason_prefix))
    g_error ("reason \"%s\" does not start with \"%s\"", reason, reason_prefix);
  /* the others run, and the daemon is alive */
  g_assert_cmpstr (json_object_get_string_member (find_instance (o, "ingest:replay"), "state"), ==, "running");
  g_clear_pointer (&r, arb_test_reply_free);
  r = http (fx->session, d, "GET", "/health", NULL);
  g_assert_cmpuint (r->status, ==, 200);
}

static void
test_required_failure (Fixture *fx, gconstpointer user_data)
{
  g_autofree char *missing = g_build_filename (fx->dir, "missing.jsonl", NULL);
  g_autofree char *prefix = g_strdup_printf ("start: files: cannot read %s", missing);

  /* fails in start: the file is not there */
  {
    g_autofree char *extra = g_strdup_printf ("[ingest:must]\nplugin=ingest-replay\nrequired=true\nfiles=%s\n",
                                              missing);
    g_autoptr(ArbTestDaemon) d = NULL;
    write_conf (fx, extra);
    d = daemon_start (fx->conf, FALSE);
    assert_not_ready (fx, d, "ingest:must", prefix);
    g_assert_cmpint (arb_test_daemon_terminate (d), ==, 0);
  }
  /* refused by the loader */
  {
    g_autoptr(ArbTestDaemon) d = NULL;
    write_conf (fx, "[ingest:must]\nplugin=ingest-abi2\nrequired=true\n");
    d = daemon_start (fx->conf, TRUE);
    assert_not_ready (fx, d, "ingest:must", "plugin ingest-abi2 (");
    g_assert_cmpint (arb_test_daemon_terminate (d), ==, 0);
  }
}

int
main (int argc, char **argv)
{
  const char *build_root;
  g_autofree char *plugin_dir = NULL;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* GSocketClient asks for the default proxy resolver even when the session
   * has its own; GNOME's reads GSettings, whose schemas the isolated dirs hide */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  arb_test_drop_library_debug ();

  build_root = g_getenv ("ARB_BUILD_ROOT");
  source_root = g_strdup (g_getenv ("ARB_SOURCE_ROOT"));
  g_assert_nonnull (build_root);
  g_assert_nonnull (source_root);
  plugin_dir = g_build_filename (build_root, "plugins", NULL);
  fixture_dir = g_build_filename (build_root, "tests", "e2e-fixtures", NULL);
  fixture_plugins = g_strjoin (G_SEARCHPATH_SEPARATOR_S, plugin_dir, fixture_dir, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/e2e/replay-to-jsonl", test_replay_to_jsonl);
  ADD ("/e2e/abi/list-plugins-refused", test_list_plugins_refused);
  ADD ("/e2e/abi/refused-plugin-instance", test_refused_plugin_instance);
  ADD ("/e2e/ready/required-failure", test_required_failure);
#undef ADD

  return g_test_run ();
}
