/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-test-daemon.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define START_TIMEOUT_MS 10000
#define EXIT_TIMEOUT_MS  5000

struct _ArbTestDaemon {
  GSubprocess       *proc;
  GDataInputStream  *err;     /* its stderr, a line at a time */
  GCancellable      *cancel;
  GString           *log;
  ArbTestDaemonFlags flags;
  gboolean           reading;
  gboolean           waiting; /* for the process to end */
  gboolean           exited;
  guint16            port;
  GString           *answers; /* JSON answers of arb_test_http_request_full, for the OpenAPI check */
};

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
arb_test_wait_for (gboolean (*cond) (gpointer data), gpointer data, guint timeout_ms)
{
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new (timeout_ms);
  GSource *ticker = g_timeout_source_new (20);

  g_source_set_callback (timeout, set_flag, &timed_out, NULL);
  g_source_set_callback (ticker, tick, NULL, NULL);
  g_source_attach (timeout, g_main_context_get_thread_default ());
  g_source_attach (ticker, g_main_context_get_thread_default ());
  while (!cond (data) && !timed_out)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  g_source_destroy (timeout);
  g_source_destroy (ticker);
  g_source_unref (timeout);
  g_source_unref (ticker);
  return cond (data);
}

static gboolean
never (gpointer data)
{
  return FALSE;
}

void
arb_test_run_for (guint ms)
{
  arb_test_wait_for (never, NULL, ms);
}

static void read_next_line (ArbTestDaemon *d);

static void
on_line (GObject *source, GAsyncResult *result, gpointer data)
{
  ArbTestDaemon *d = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL,
                                                                     &error);
  const char *at;

  if (line == NULL)
    {
      /* end of file (the daemon is gone) or cancelled */
      d->reading = FALSE;
      return;
    }
  if (!(d->flags & ARB_TEST_DAEMON_QUIET))
    g_test_message ("arbiterd: %s", line);
  g_string_append (d->log, line);
  g_string_append_c (d->log, '\n');
  at = strstr (line, "listening on http://127.0.0.1:");
  if (at != NULL && d->port == 0)
    {
      guint64 port = g_ascii_strtoull (at + strlen ("listening on http://127.0.0.1:"), NULL, 10);

      g_assert_cmpuint (port, >, 0);
      g_assert_cmpuint (port, <=, 65535);
      d->port = (guint16) port;
    }
  read_next_line (d);
}

static void
read_next_line (ArbTestDaemon *d)
{
  d->reading = TRUE;
  g_data_input_stream_read_line_async (d->err, G_PRIORITY_DEFAULT, d->cancel, on_line, d);
}

#ifdef __linux__
static void
die_with_parent (gpointer data)
{
  /* a failed assertion aborts the test; the daemon must not outlive it */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}
#endif

static GSubprocessLauncher *
launcher_new (GSubprocessFlags flags, const char *const *env)
{
  GSubprocessLauncher *l = g_subprocess_launcher_new (flags);
  g_autofree char *plugins = g_build_filename (g_getenv ("ARB_BUILD_ROOT"), "plugins", NULL);

  g_subprocess_launcher_setenv (l, "ARBITER_PLUGIN_PATH", plugins, TRUE);
  g_subprocess_launcher_setenv (l, "ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
  for (guint i = 0; env != NULL && env[i] != NULL && env[i + 1] != NULL; i += 2)
    g_subprocess_launcher_setenv (l, env[i], env[i + 1], TRUE);
#ifdef __linux__
  g_subprocess_launcher_set_child_setup (l, die_with_parent, NULL, NULL);
#endif
  return l;
}

char *
arb_test_arbiterd_path (void)
{
  const char *build = g_getenv ("ARB_BUILD_ROOT");

  g_assert_nonnull (build);
  return g_build_filename (build, "runtime", "arbiterd", NULL);
}

static gboolean
has_port (gpointer data)
{
  ArbTestDaemon *d = data;
  return d->port != 0 || !d->reading;
}

ArbTestDaemon *
arb_test_daemon_start (const char *conf, const char *const *env)
{
  return arb_test_daemon_start_full (conf, env, ARB_TEST_DAEMON_DEFAULT, 0);
}

ArbTestDaemon *
arb_test_daemon_start_full (const char *conf, const char *const *env, ArbTestDaemonFlags flags,
                            guint start_timeout_ms)
{
  ArbTestDaemon *d = g_new0 (ArbTestDaemon, 1);
  g_autoptr(GSubprocessLauncher) l = launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                                   env);
  g_autofree char *arbiterd = arb_test_arbiterd_path ();
  g_autoptr(GError) error = NULL;

  d->log = g_string_new (NULL);
  d->answers = g_string_new (NULL);
  d->flags = flags;
  d->cancel = g_cancellable_new ();
  d->proc = g_subprocess_launcher_spawn (l, &error, arbiterd, "--config", conf, NULL);
  g_assert_no_error (error);
  d->err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (d->proc));
  read_next_line (d);
  arb_test_wait_for (has_port, d, start_timeout_ms != 0 ? start_timeout_ms : START_TIMEOUT_MS);
  if (d->port == 0)
    {
      g_test_message ("arbiterd did not log the port it listens on; it logged:\n%s", d->log->str);
      arb_test_daemon_free (d);
      return NULL;
    }
  return d;
}

guint16
arb_test_daemon_get_port (ArbTestDaemon *d)
{
  return d->port;
}

const char *
arb_test_daemon_get_log (ArbTestDaemon *d)
{
  return d->log->str;
}

GSubprocess *
arb_test_daemon_get_subprocess (ArbTestDaemon *d)
{
  return d->proc;
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer data)
{
  ArbTestDaemon *d = data;
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  d->exited = TRUE;
  d->waiting = FALSE;
}

static void
wait_async (ArbTestDaemon *d)
{
  if (d->waiting || d->exited)
    return;
  d->waiting = TRUE;
  g_subprocess_wait_async (d->proc, NULL, on_exited, d);
}

void
arb_test_daemon_kill (ArbTestDaemon *d, int signum)
{
  g_subprocess_send_signal (d->proc, signum);
  wait_async (d);
}

gboolean
arb_test_daemon_has_exited (ArbTestDaemon *d)
{
  return d->exited;
}

static gboolean
has_exited (gpointer data)
{
  ArbTestDaemon *d = data;
  return d->exited && !d->reading;
}

int
arb_test_daemon_terminate (ArbTestDaemon *d)
{
  return arb_test_daemon_terminate_within (d, EXIT_TIMEOUT_MS);
}

int
arb_test_daemon_terminate_within (ArbTestDaemon *d, guint timeout_ms)
{
  arb_test_daemon_kill (d, SIGTERM);
  if (!arb_test_wait_for (has_exited, d, timeout_ms))
    return -1;
  if (!g_subprocess_get_if_exited (d->proc))
    {
      g_test_message ("arbiterd died of signal %d", g_subprocess_get_if_signaled (d->proc)
                                                     ? g_subprocess_get_term_sig (d->proc) : -1);
      return -2;
    }
  return g_subprocess_get_exit_status (d->proc);
}

static gboolean
is_not_reading (gpointer data)
{
  return !((ArbTestDaemon *) data)->reading;
}

static gboolean
is_not_waiting (gpointer data)
{
  return !((ArbTestDaemon *) data)->waiting;
}

void
arb_test_daemon_free (ArbTestDaemon *d)
{
  if (d == NULL)
    return;
  if (!d->exited)
    {
      g_subprocess_force_exit (d->proc);
      /* gone before the next daemon opens the same store */
      g_subprocess_wait (d->proc, NULL, NULL);
    }
  /* a wait still pending holds @d */
  arb_test_wait_for (is_not_waiting, d, EXIT_TIMEOUT_MS);
  g_assert_false (d->waiting);
  g_cancellable_cancel (d->cancel);
  arb_test_wait_for (is_not_reading, d, EXIT_TIMEOUT_MS);
  g_assert_false (d->reading);
  g_clear_object (&d->err);
  g_clear_object (&d->proc);
  g_clear_object (&d->cancel);
  g_string_free (d->log, TRUE);
  arb_test_check_openapi (d->answers->str);
  g_string_free (d->answers, TRUE);
  g_free (d);
}

int
arb_test_check_config (const char *conf, char **output)
{
  g_autoptr(GSubprocessLauncher) l = launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                                                   NULL);
  g_autofree char *arbiterd = arb_test_arbiterd_path ();
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;

  proc = g_subprocess_launcher_spawn (l, &error, arbiterd, "--check-config", "--config", conf, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, output, NULL, &error);
  g_assert_no_error (error);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

int
arb_test_run (const char *const *argv, const char *const *env, char **out, char **err)
{
  g_autoptr(GSubprocessLauncher) l = launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                                   env);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;

  proc = g_subprocess_launcher_spawnv (l, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

void
arb_test_reply_free (ArbTestReply *r)
{
  g_free (r->body);
  g_free (r->content_type);
  g_free (r->retry_after);
  g_clear_pointer (&r->headers, soup_message_headers_unref);
  g_free (r);
}

const char *
arb_test_reply_header (ArbTestReply *r, const char *name)
{
  return r->headers != NULL ? soup_message_headers_get_one (r->headers, name) : NULL;
}

char *
arb_test_mint_token (const char *conf, const char *subject, gboolean admin)
{
  g_autofree char *arbiterd = arb_test_arbiterd_path ();
  const char *argv[] = { arbiterd, "--config", conf, "--mint-token", subject, admin ? "--admin" : NULL, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (arb_test_run (argv, NULL, &out, &err) != 0)
    {
      g_test_message ("--mint-token failed: %s", err);
      return NULL;
    }
  return g_strdup (g_strstrip (out));
}

typedef struct {
  GBytes  *body;
  GError  *error;
  gboolean done;
} Pending;

static void
on_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  Pending *p = data;
  p->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &p->error);
  p->done = TRUE;
}

static gboolean
is_done (gpointer data)
{
  return ((Pending *) data)->done;
}

ArbTestReply *
arb_test_http_get (SoupSession *session, ArbTestDaemon *d, const char *path)
{
  return arb_test_http_request (session, d, "GET", path, NULL, NULL);
}

ArbTestReply *
arb_test_http_request (SoupSession *session, ArbTestDaemon *d, const char *method, const char *path,
                       const char *token, const char *body)
{
  return arb_test_http_request_full (session, d, method, path, token, body, NULL);
}

ArbTestReply *
arb_test_http_request_full (SoupSession *session, ArbTestDaemon *d, const char *method, const char *path,
                            const char *token, const char *body, const char *const *headers)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u%s", d->port, path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  ArbTestReply *r = g_new0 (ArbTestReply, 1);
  Pending p = { 0 };
  gsize len = 0;
  const char *data;

  if (token != NULL)
    {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", token);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
    }
  for (guint i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    soup_message_headers_replace (soup_message_get_request_headers (msg), headers[i], headers[i + 1]);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, &p);
  g_assert_true (arb_test_wait_for (is_done, &p, 10000));
  g_assert_no_error (p.error);
  r->status = soup_message_get_status (msg);
  data = g_bytes_get_data (p.body, &len);
  r->body = g_strndup (data != NULL ? data : "", len);
  r->content_type = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                            "Content-Type"));
  r->retry_after = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After"));
  r->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  g_bytes_unref (p.body);
  arb_test_record_answer (d->answers, method, path, r->status, r->body);
  return r;
}

void
arb_test_record_answer (GString *out, const char *method, const char *path, guint status, const char *body)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonBuilder) jb = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;

  if (body == NULL || *body == '\0' || !json_parser_load_from_data (parser, body, -1, NULL)
      || json_parser_get_root (parser) == NULL)
    return;
  jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "method");
  json_builder_add_string_value (jb, method);
  json_builder_set_member_name (jb, "path");
  json_builder_add_string_value (jb, path);
  json_builder_set_member_name (jb, "status");
  json_builder_add_int_value (jb, status);
  json_builder_set_member_name (jb, "body");
  json_builder_add_value (jb, json_node_copy (json_parser_get_root (parser)));
  json_builder_end_object (jb);
  root = json_builder_get_root (jb);
  line = json_to_string (root, FALSE);
  g_string_append_printf (out, "%s\n", line);
}

void
arb_test_check_openapi (const char *answers)
{
  const char *root = g_getenv ("ARB_SOURCE_ROOT");
  g_autofree char *script = NULL;
  g_autofree char *spec = NULL;
  static guint checks;
  g_autofree char *file = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (answers == NULL || *answers == '\0')
    return;
  if (root == NULL)
    {
      g_test_message ("ARB_SOURCE_ROOT is not set: the answers were not checked against doc/openapi.yaml");
      return;
    }
  script = g_build_filename (root, "tests", "openapi-check.py", NULL);
  spec = g_build_filename (root, "doc", "openapi.yaml", NULL);
  /* unique to this process and call; removed after the check */
  file = g_strdup_printf ("%s/arb-openapi-answers-%d-%u.jsonl", g_get_tmp_dir (), (int) getpid (), ++checks);
  g_file_set_contents (file, answers, -1, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { "/usr/bin/python3", "-I", script, spec, file, NULL };
    status = arb_test_run (argv, NULL, &out, &err);
  }
  g_unlink (file);
  g_test_message ("%s%s", out != NULL ? out : "", err != NULL ? err : "");
  if (status != 0)
    g_error ("answers that doc/openapi.yaml does not describe (exit %d):\n%s%s", status, out != NULL ? out : "",
             err != NULL ? err : "");
}

SoupSession *
arb_test_session_new (void)
{
  return arb_test_session_new_full (10, 0);
}

SoupSession *
arb_test_session_new_full (guint timeout_s, guint max_conns_per_host)
{
  /* straight to 127.0.0.1: no proxy from the environment or GSettings */
  g_autoptr(GProxyResolver) direct = g_simple_proxy_resolver_new ("direct://", NULL);

  /* the connection limits are construct-only */
  if (max_conns_per_host == 0)
    return soup_session_new_with_options ("timeout", timeout_s, "proxy-resolver", direct, NULL);
  return soup_session_new_with_options ("timeout", timeout_s, "proxy-resolver", direct, "max-conns-per-host",
                                        max_conns_per_host, "max-conns", 2 * max_conns_per_host, NULL);
}
