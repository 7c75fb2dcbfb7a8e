/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* arb-bench-sink-kafka: quote -> Kafka delivery latency of sink-kafka, driven
 * through the real host (loader, instance wrappers, relay queue and worker
 * thread, the plugin, librdkafka) against librdkafka's mock cluster
 * (tests/kafka-mock, 3 brokers on loopback).
 *
 *   arb-bench-sink-kafka --mock build/tests/kafka-mock --plugins build/plugins \
 *                        [--rate 20000] [--seconds 10] [--warmup 1] [--linger-ms 5] [--markets 50]
 *
 * The main thread publishes quote events into the relay at a fixed rate
 * (paced every millisecond against a schedule, so a slow moment is made up
 * at once rather than shifting the schedule). Each event's time is the
 * moment it is published, the quote's receive time. The latency of one
 * quote is the moment the sink acknowledges it to the host, which
 * sink-kafka does from librdkafka's delivery report (acks=all), minus that
 * time: relay queue, batching, linger, the produce round trip and the
 * report. To see the acknowledgement, this program defines
 * arb_instance_ack() itself and exports it, so the plugin's call lands here
 * first; it records the latency and calls the host's. Quotes published
 * during the warmup are not counted. */

#define _GNU_SOURCE /* RTLD_NEXT */

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "arb-host-private.h"
#include "arb-hist.h"

typedef void (*AckFunc) (ArbInstance *inst, ArbEvent *event, const GError *error);

static GMutex  lock;
static ArbHist hist;       /* ns, quotes after the warmup */
static gint64  counted_from_us; /* event time from which latencies count */
static guint64 n_ok, n_failed;
static AckFunc real_ack;

G_MODULE_EXPORT void arb_instance_ack (ArbInstance *inst, ArbEvent *event, const GError *error);

G_MODULE_EXPORT void
arb_instance_ack (ArbInstance *inst, ArbEvent *event, const GError *error)
{
  gint64 now = g_get_real_time ();
  gint64 t = arb_event_get_time (event);

  g_mutex_lock (&lock);
  if (error != NULL)
    n_failed++;
  else
    {
      n_ok++;
      if (t >= counted_from_us)
        arb_hist_record (&hist, (guint64) MAX (now - t, 0) * 1000);
    }
  g_mutex_unlock (&lock);
  real_ack (inst, event, error);
}

static char *
start_mock (const char *path, GSubprocess **out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  char *line;
  char *bootstrap;

  *out = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, path, "--brokers",
                           "3", "--partitions", "4", "--topics", "bench", NULL);
  if (*out == NULL)
    g_error ("cannot start %s: %s", path, error->message);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (*out));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  if (line == NULL || !g_str_has_prefix (line, "bootstrap "))
    g_error ("%s did not say where it listens", path);
  bootstrap = g_strdup (line + strlen ("bootstrap "));
  g_free (line);
  return bootstrap;
}

int
main (int argc, char **argv)
{
  g_autofree char *mock = NULL;
  g_autofree char *plugins = NULL;
  gint rate = 20000, seconds = 10, warmup = 1, linger = 5, markets = 50;
  GOptionEntry entries[] = {
    { "mock", 0, 0, G_OPTION_ARG_FILENAME, &mock, "the kafka-mock helper", "PATH" },
    { "plugins", 0, 0, G_OPTION_ARG_FILENAME, &plugins, "the build's plugins directory", "DIR" },
    { "rate", 0, 0, G_OPTION_ARG_INT, &rate, "quotes a second (default 20000)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "measured seconds (default 10)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "seconds not counted first (default 1)", "N" },
    { "linger-ms", 0, 0, G_OPTION_ARG_INT, &linger, "the sink's linger_ms (default 5, its default)", "N" },
    { "markets", 0, 0, G_OPTION_ARG_INT, &markets, "distinct market ids, round robin (default 50)", "N" },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- quote to Kafka delivery latency of sink-kafka");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GSubprocess) mock_proc = NULL;
  g_autofree char *bootstrap = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *text = NULL;
  g_autofree char *log = NULL;
  ArbHost *host;
  ArbInstance *inst;
  gint64 t0, end, sent = 0, total;
  gdouble dropped;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || mock == NULL || plugins == NULL || rate <= 0
      || seconds <= 0 || warmup < 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--mock and --plugins are needed; see --help");
      return 2;
    }
  real_ack = (AckFunc) dlsym (RTLD_NEXT, "arb_instance_ack");
  if (real_ack == NULL)
    g_error ("the host's arb_instance_ack is not found: %s", dlerror ());
  arb_hist_init (&hist);

  bootstrap = start_mock (mock, &mock_proc);
  dir = g_dir_make_tmp ("arb-bench-sink-kafka-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (dir, "arbiter.conf", NULL);
  log = g_build_filename (dir, "arbiterd.log", NULL);
  text = g_strdup_printf ("[runtime]\nlisten=127.0.0.1:0\nstate_dir=state\nshutdown_timeout=5s\n\n"
                          "[sink:kafka]\nplugin=sink-kafka\nbrokers=%s\ntopic_prefix=bench\nlinger_ms=%d\n"
                          "events=quote\nqueue_size=100000\n",
                          bootstrap, linger);
  g_file_set_contents (conf, text, -1, &error);
  g_assert_no_error (error);
  g_setenv ("ARBITER_PLUGIN_PATH", plugins, TRUE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
  arb_log_set_output_file (log);
  problems = arb_config_problems_new ();
  host = arb_host_new (conf, problems, &error);
  if (host == NULL || problems->len > 0)
    g_error ("config: %s", arb_config_problems_join (problems));
  if (!arb_host_start (host, &error))
    g_error ("start: %s", error->message);
  inst = arb_host_find_instance (host, "sink:kafka");
  /* connected before the clock starts */
  for (int i = 0; i < 500 && arb_instance_get_health (inst) != ARB_HEALTH_OK; i++)
    {
      while (g_main_context_iteration (host->context, FALSE))
        ;
      g_usleep (10000);
    }

  t0 = g_get_monotonic_time ();
  counted_from_us = g_get_real_time () + (gint64) warmup * G_USEC_PER_SEC;
  total = (gint64) rate * (warmup + seconds);
  end = t0 + (gint64) (warmup + seconds) * G_USEC_PER_SEC;
  while (sent < total)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 due = MIN (total, (now - t0) * rate / G_USEC_PER_SEC);

      for (; sent < due; sent++)
        {
          g_autofree char *market = g_strdup_printf ("crypto:BENCH%02d-USD", (int) (sent % markets));
          g_autofree char *data = NULL;
          gint64 us = g_get_real_time ();
          g_autoptr(ArbEvent) ev = NULL;

          data = g_strdup_printf ("{\"market\":\"%s\",\"bid\":\"64250.12500000\",\"ask\":\"64251.37500000\","
                                  "\"last\":\"64250.50000000\",\"source\":\"bench\","
                                  "\"sourceTime\":\"2026-01-02T03:04:05.000001Z\","
                                  "\"receiveTime\":\"2026-01-02T03:04:05.000002Z\"}",
                                  market);
          ev = arb_event_new ("quote", market, NULL, NULL, us, data, FALSE);
          arb_relay_publish (host->relay, ev);
        }
      while (g_main_context_iteration (host->context, FALSE))
        ;
      if (now >= end)
        break;
      g_usleep (1000);
    }
  /* the last reports */
  for (int i = 0; i < 1000; i++)
    {
      gboolean done;
      g_mutex_lock (&lock);
      done = n_ok + n_failed >= (guint64) sent;
      g_mutex_unlock (&lock);
      if (done)
        break;
      g_usleep (10000);
    }
  dropped = arb_metrics_get (host->metrics, "arb_sink_dropped_total", inst->labels);

  g_mutex_lock (&lock);
  printf ("sink-kafka, mock cluster (3 brokers), linger_ms=%d, %d markets\n", linger, markets);
  printf ("rate %d quotes/s for %d s (+%d s warmup): sent %" G_GINT64_FORMAT ", delivered %" G_GUINT64_FORMAT
          ", failed %" G_GUINT64_FORMAT ", dropped %.0f\n",
          rate, seconds, warmup, sent, n_ok, n_failed, dropped);
  printf ("quote -> delivery report, %" G_GUINT64_FORMAT " counted: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  "
          "p99.9 %.2f ms  max %.2f ms  mean %.2f ms\n",
          hist.count, arb_hist_percentile (&hist, 50) / 1e6, arb_hist_percentile (&hist, 90) / 1e6,
          arb_hist_percentile (&hist, 99) / 1e6, arb_hist_percentile (&hist, 99.9) / 1e6, hist.max / 1e6,
          arb_hist_mean (&hist) / 1e6);
  g_mutex_unlock (&lock);

  arb_host_stop (host);
  arb_host_free (host);
  arb_log_set_output_file (NULL);
  g_output_stream_close (g_subprocess_get_stdin_pipe (mock_proc), NULL, NULL);
  g_subprocess_wait (mock_proc, NULL, NULL);
  g_remove (log);
  {
    g_autofree char *state = g_build_filename (dir, "state", NULL);
    g_rmdir (state);
  }
  g_remove (conf);
  g_rmdir (dir);
  return n_failed == 0 ? 0 : 1;
}
