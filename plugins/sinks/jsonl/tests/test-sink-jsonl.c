/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-jsonl through the real host: each test writes a key file, builds the
 * host from it (loader, schema checks, instance wrappers, relay with its
 * worker thread), publishes events into the relay and reads back the file,
 * the acknowledgements the relay counted, the plugin's metrics and its
 * health. */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "arb-host-private.h"

#define WAIT_US (10 * G_USEC_PER_SEC)

typedef struct {
  char      *dir;   /* owned: the test's temporary directory */
  char      *path;  /* owned: where the sink writes, dir/out/events.jsonl */
  char      *log;   /* owned: the host's log, dir/arbiterd.log */
  ArbHost   *host;  /* owned, nullable */
  GPtrArray *sent;  /* owned, element-type ArbEvent */
} Fixture;

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("sink-jsonl-XXXXXX", &error);
  g_assert_no_error (error);
  fx->path = g_build_filename (fx->dir, "out", "events.jsonl", NULL);
  fx->log = g_build_filename (fx->dir, "arbiterd.log", NULL);
  fx->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
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
  g_ptr_array_unref (fx->sent);
  remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->path);
  g_free (fx->log);
}

/* writes the key file with @groups after [runtime], builds and starts the host */
static void
host_up (Fixture *fx, const char *groups)
{
  g_autofree char *conf = g_build_filename (fx->dir, "arbiter.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[runtime]\n"
                                           "listen=127.0.0.1:0\n"
                                           "state_dir=state\n"
                                           "shutdown_timeout=5s\n"
                                           "\n%s",
                                           groups);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (conf, text, -1, &error));
  g_assert_no_error (error);
  arb_log_set_output_file (fx->log);
  fx->host = arb_host_new (conf, problems, &error);
  for (guint i = 0; i < problems->len; i++)
    g_test_message ("config problem: %s", (const char *) g_ptr_array_index (problems, i));
  g_assert_no_error (error);
  g_assert_nonnull (fx->host);
  g_assert_cmpuint (problems->len, ==, 0);
  g_assert_true (arb_host_start (fx->host, &error));
  g_assert_no_error (error);
}

/* one group, path relative to the key file, plus @extra keys */
static void
host_up_jsonl (Fixture *fx, const char *extra)
{
  g_autofree char *group = g_strdup_printf ("[sink:jsonl]\nplugin=sink-jsonl\npath=out/events.jsonl\n%s",
                                            extra != NULL ? extra : "");
  host_up (fx, group);
}

static ArbInstance *
instance (Fixture *fx, const char *name)
{
  ArbInstance *inst = arb_host_find_instance (fx->host, name);
  g_assert_nonnull (inst);
  return inst;
}

static gdouble
metric (Fixture *fx, const char *instance_name, const char *name)
{
  return arb_metrics_get (fx->host->metrics, name, instance (fx, instance_name)->labels);
}

static gdouble
published (Fixture *fx)
{
  return metric (fx, "sink:jsonl", "arb_sink_published_total");
}

static gdouble
failed (Fixture *fx)
{
  return metric (fx, "sink:jsonl", "arb_sink_failed_total");
}

typedef gboolean (*Predicate) (Fixture *fx, gconstpointer data);

/* runs the host's context (retries live there) until @pred holds */
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
  return published (fx) + failed (fx) >= GPOINTER_TO_UINT (data);
}

static gboolean
state_settled (Fixture *fx, gconstpointer data)
{
  ArbInstanceState s = arb_instance_get_state (instance (fx, data));
  return s == ARB_INSTANCE_RUNNING || s == ARB_INSTANCE_RETRYING || s == ARB_INSTANCE_FAILED;
}

/* a ledger event whose data carries @seq and @pad bytes of filler */
static ArbEvent *
publish (Fixture *fx, guint seq, gsize pad)
{
  g_autofree char *filler = g_strnfill (pad, 'x');
  g_autofree char *data = g_strdup_printf ("{\"seq\":%u,\"pad\":\"%s\"}", seq, filler);
  ArbEvent *ev = arb_event_new ("trade.executed", "asm-1", "asm-1", "cid-jsonl", arb_now_us (), data, TRUE);

  g_assert_nonnull (ev);
  g_ptr_array_add (fx->sent, ev);
  arb_relay_publish (fx->host->relay, ev);
  return ev;
}

static char *
read_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  return text;
}

/* the envelopes of @events, one a line */
static char *
lines_of (ArbEvent *const *events, guint n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      g_string_append_len (s, arb_event_get_json (events[i]), (gssize) arb_event_get_json_length (events[i]));
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

static gboolean
log_contains (Fixture *fx, const char *needle)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents (fx->log, &text, NULL, NULL))
    return FALSE;
  return strstr (text, needle) != NULL;
}

/* ------------------------------------------------------------------------ */

static void
test_interval (Fixture *fx, gconstpointer data)
{
  const guint n = 300; /* more than one relay batch */
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;
  struct stat st;

  /* an hour: every sync here comes from the host's idle flush */
  host_up_jsonl (fx, "fsync=interval\nfsync_interval=1h\n");
  g_assert_cmpint (arb_instance_get_state (instance (fx, "sink:jsonl")), ==, ARB_INSTANCE_RUNNING);
  g_assert_cmpint (arb_instance_get_health (instance (fx, "sink:jsonl")), ==, ARB_HEALTH_OK);

  for (guint i = 0; i < n; i++)
    publish (fx, i, 16);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (n)));
  g_assert_cmpfloat (published (fx), ==, n);
  g_assert_cmpfloat (failed (fx), ==, 0);

  /* acknowledged only after a sync covered them */
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_fsyncs_total"), >=, 1);
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_events_written_total"), ==, n);
  /* for a histogram, its count */
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_fsync_seconds"), ==,
                     metric (fx, "sink:jsonl", "arb_plugin_fsyncs_total"));

  expect = lines_of ((ArbEvent *const *) fx->sent->pdata, n);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_bytes_written_total"), ==, strlen (expect));

  g_assert_cmpint (g_stat (fx->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777 & ~0640, ==, 0);
}

static void
test_always (Fixture *fx, gconstpointer data)
{
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;

  host_up_jsonl (fx, "fsync=always\n");
  /* in rounds, so that there are several batches and several syncs */
  for (guint round = 0; round < 3; round++)
    {
      publish (fx, round, 8);
      g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (round + 1)));
    }
  g_assert_cmpfloat (published (fx), ==, 3);
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_fsyncs_total"), >=, 3);

  expect = lines_of ((ArbEvent *const *) fx->sent->pdata, fx->sent->len);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_never (Fixture *fx, gconstpointer data)
{
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;

  host_up_jsonl (fx, "fsync=never\n");
  for (guint i = 0; i < 20; i++)
    publish (fx, i, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (20)));
  g_assert_cmpfloat (published (fx), ==, 20);
  host_down (fx);

  expect = lines_of ((ArbEvent *const *) fx->sent->pdata, fx->sent->len);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_never_syncs (Fixture *fx, gconstpointer data)
{
  host_up_jsonl (fx, "fsync=never\n");
  publish (fx, 1, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));
  g_usleep (400 * 1000); /* past the host's idle flush */
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_fsyncs_total"), ==, 0);
}

static void
test_torn_last_line (Fixture *fx, gconstpointer data)
{
  g_autofree char *out = g_path_get_dirname (fx->path);
  g_autofree char *line = NULL;
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;
  ArbEvent *ev;

  g_assert_cmpint (g_mkdir_with_parents (out, 0750), ==, 0);
  g_assert_true (g_file_set_contents (fx->path, "{\"whole\":1}\n{\"torn\":", -1, NULL));

  host_up_jsonl (fx, NULL);
  g_assert_true (log_contains (fx, "incomplete line"));
  ev = publish (fx, 1, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));
  g_assert_cmpfloat (published (fx), ==, 1);

  line = lines_of (&ev, 1);
  expect = g_strconcat ("{\"whole\":1}\n{\"torn\":\n", line, NULL);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_whole_last_line_untouched (Fixture *fx, gconstpointer data)
{
  g_autofree char *out = g_path_get_dirname (fx->path);
  g_autofree char *line = NULL;
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;
  ArbEvent *ev;

  g_assert_cmpint (g_mkdir_with_parents (out, 0750), ==, 0);
  g_assert_true (g_file_set_contents (fx->path, "{\"whole\":1}\n", -1, NULL));

  host_up_jsonl (fx, NULL);
  ev = publish (fx, 1, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));

  line = lines_of (&ev, 1);
  expect = g_strconcat ("{\"whole\":1}\n", line, NULL);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_path_not_a_directory (Fixture *fx, gconstpointer data)
{
  g_autofree char *blocker = g_build_filename (fx->dir, "out", NULL);
  g_autofree char *reason = NULL;
  ArbInstance *inst;

  /* "out" is a file, so out/events.jsonl can never be created */
  g_assert_true (g_file_set_contents (blocker, "", -1, NULL));
  host_up_jsonl (fx, NULL);
  inst = instance (fx, "sink:jsonl");
  g_assert_true (wait_for (fx, state_settled, "sink:jsonl"));
  /* a wrong path is not retried */
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);
  reason = arb_instance_dup_reason (inst);
  g_test_message ("reason: %s", reason);
  g_assert_nonnull (strstr (reason, blocker));
  g_assert_nonnull (strstr (reason, g_strerror (ENOTDIR)));
  /* stop and destroy after the failed start, in host_down */
}

static void
test_path_not_writable (Fixture *fx, gconstpointer data)
{
  g_autofree char *out = g_build_filename (fx->dir, "out", NULL);
  g_autofree char *reason = NULL;
  ArbInstance *inst;

  if (geteuid () == 0)
    {
      g_test_skip ("root writes anywhere");
      return;
    }
  g_assert_cmpint (g_mkdir (out, 0500), ==, 0);
  host_up_jsonl (fx, NULL);
  inst = instance (fx, "sink:jsonl");
  g_assert_true (wait_for (fx, state_settled, "sink:jsonl"));
  /* permissions can be fixed while we run: retried */
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RETRYING);
  reason = arb_instance_dup_reason (inst);
  g_assert_nonnull (strstr (reason, fx->path));
  g_assert_nonnull (strstr (reason, g_strerror (EACCES)));
  g_chmod (out, 0750);
}

static void
test_locked_by_another_writer (Fixture *fx, gconstpointer data)
{
  g_autofree char *reason = NULL;

  host_up (fx, "[sink:first]\nplugin=sink-jsonl\npath=out/events.jsonl\n\n"
               "[sink:second]\nplugin=sink-jsonl\npath=out/events.jsonl\n");
  g_assert_true (wait_for (fx, state_settled, "sink:second"));
  g_assert_cmpint (arb_instance_get_state (instance (fx, "sink:first")), ==, ARB_INSTANCE_RUNNING);
  g_assert_cmpint (arb_instance_get_state (instance (fx, "sink:second")), ==, ARB_INSTANCE_RETRYING);
  reason = arb_instance_dup_reason (instance (fx, "sink:second"));
  g_assert_nonnull (strstr (reason, "locked"));
}

static void
test_oversized_event (Fixture *fx, gconstpointer data)
{
  ArbEvent *keep[2];
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;

  host_up_jsonl (fx, "max_line_bytes=512\n");
  keep[0] = publish (fx, 1, 8);
  publish (fx, 2, 1024);
  keep[1] = publish (fx, 3, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (3)));
  g_assert_cmpfloat (published (fx), ==, 2);
  g_assert_cmpfloat (failed (fx), ==, 1);
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_events_rejected_total"), ==, 1);
  /* a refused event is not a broken file */
  g_assert_cmpint (arb_instance_get_health (instance (fx, "sink:jsonl")), ==, ARB_HEALTH_OK);

  expect = lines_of (keep, 2);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect);
}

static gboolean
health_is (Fixture *fx, gconstpointer data)
{
  return arb_instance_get_health (instance (fx, "sink:jsonl")) == (ArbHealth) GPOINTER_TO_INT (data);
}

/* A real write error from the kernel: RLIMIT_FSIZE makes write(2) stop short
 * at the limit and then fail with EFBIG, which is what ENOSPC looks like to
 * the sink (a short write, then an error). */
static void
test_write_error (Fixture *fx, gconstpointer data)
{
  struct rlimit saved, low;
  void (*saved_handler) (int);
  g_autofree char *reason = NULL;
  g_autofree char *expect = NULL;
  g_autofree char *got = NULL;
  ArbEvent *keep[2];
  struct stat st;

  host_up_jsonl (fx, "fsync=always\n");
  keep[0] = publish (fx, 1, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));
  g_assert_cmpint (g_stat (fx->path, &st), ==, 0);

  /* room for part of the next event, not all of it */
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &saved), ==, 0);
  low = saved;
  low.rlim_cur = (rlim_t) st.st_size + 2048;
  saved_handler = signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &low), ==, 0);

  publish (fx, 2, 8192);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (2)));
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_DOWN)));

  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &saved), ==, 0);
  signal (SIGXFSZ, saved_handler);

  g_assert_cmpfloat (failed (fx), ==, 1);
  g_assert_cmpfloat (metric (fx, "sink:jsonl", "arb_plugin_write_errors_total"), ==, 1);
  reason = arb_instance_dup_reason (instance (fx, "sink:jsonl"));
  g_test_message ("reason: %s", reason);
  g_assert_nonnull (strstr (reason, fx->path));
  g_assert_nonnull (strstr (reason, g_strerror (EFBIG)));
  /* the part that went out was taken back: whole lines only */
  got = read_file (fx->path);
  expect = lines_of (keep, 1);
  g_assert_cmpstr (got, ==, expect);
  g_clear_pointer (&got, g_free);
  g_clear_pointer (&expect, g_free);

  /* the next write succeeds and health comes back */
  keep[1] = publish (fx, 3, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (3)));
  g_assert_cmpfloat (published (fx), ==, 2);
  g_assert_true (wait_for (fx, health_is, GINT_TO_POINTER (ARB_HEALTH_OK)));
  got = read_file (fx->path);
  expect = lines_of (keep, 2);
  g_assert_cmpstr (got, ==, expect);
}

static void
test_reopen_after_rotation (Fixture *fx, gconstpointer data)
{
  g_autofree char *rotated = g_strconcat (fx->path, ".1", NULL);
  g_autofree char *expect_old = NULL;
  g_autofree char *expect_new = NULL;
  g_autofree char *got = NULL;
  ArbEvent *first, *second;

  host_up_jsonl (fx, NULL);
  first = publish (fx, 1, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (1)));
  g_assert_cmpint (g_rename (fx->path, rotated), ==, 0);
  g_usleep (1100 * 1000); /* the sink looks at most once a second */
  second = publish (fx, 2, 8);
  g_assert_true (wait_for (fx, acked_at_least, GUINT_TO_POINTER (2)));
  g_assert_cmpfloat (published (fx), ==, 2);

  expect_old = lines_of (&first, 1);
  got = read_file (rotated);
  g_assert_cmpstr (got, ==, expect_old);
  g_clear_pointer (&got, g_free);
  expect_new = lines_of (&second, 1);
  got = read_file (fx->path);
  g_assert_cmpstr (got, ==, expect_new);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* run by hand, find the plugin next to this test and nothing installed */
  g_setenv ("ARBITER_PLUGIN_PATH", JSONL_PLUGIN_DIR, FALSE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", FALSE);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/sink-jsonl/fsync/interval", test_interval);
  ADD ("/sink-jsonl/fsync/always", test_always);
  ADD ("/sink-jsonl/fsync/never", test_never);
  ADD ("/sink-jsonl/fsync/never-does-not-sync", test_never_syncs);
  ADD ("/sink-jsonl/start/torn-last-line", test_torn_last_line);
  ADD ("/sink-jsonl/start/whole-last-line", test_whole_last_line_untouched);
  ADD ("/sink-jsonl/start/path-not-a-directory", test_path_not_a_directory);
  ADD ("/sink-jsonl/start/path-not-writable", test_path_not_writable);
  ADD ("/sink-jsonl/start/locked-by-another-writer", test_locked_by_another_writer);
  ADD ("/sink-jsonl/write/oversized-event", test_oversized_event);
  ADD ("/sink-jsonl/write/error-rolls-back-and-recovers", test_write_error);
  ADD ("/sink-jsonl/write/reopen-after-rotation", test_reopen_after_rotation);
#undef ADD

  return g_test_run ();
}
