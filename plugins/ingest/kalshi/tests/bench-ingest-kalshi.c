/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How many WebSocket messages ingest-kalshi decodes per second on one core:
 * the recorded sessions (ws_session_ticker_orderbook.jsonl and
 * ws_lifecycle_session.jsonl, every server text frame: acks, tickers, the
 * order book snapshot and its deltas by seq, trades, lifecycle events) fed to
 * the plugin's frame handler in a loop on one thread. Each message is parsed
 * (strict JSON, exact decimals), applied (the book by seq: every loop starts
 * with the snapshot, so the sequence holds) and turned into quotes for both
 * sides; by default the quotes are checked and counted, not published
 * (--host publishes them into a host's price book as arbiterd would).
 *
 *   bench-ingest-kalshi [--seconds N] [--host]
 */

#include <time.h>

#include "arb-ingest-kalshi.c"
#include "tests/arb-prediction-test.h"

static double
cpu_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
  double seconds = 3;
  gboolean host = FALSE;
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = g_ptr_array_new ();
  g_autoptr(GPtrArray) a = NULL;
  g_autoptr(GPtrArray) b = NULL;
  g_autoptr(GError) error = NULL;
  GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "how long to run (CPU seconds of the thread)", "N" },
    { "host", 0, 0, G_OPTION_ARG_NONE, &host, "publish the quotes into a host's price book", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- ingest-kalshi decoding benchmark");
  guint64 messages = 0;
  double start, used, before;
  PtHost *h;
  KsPlugin *p;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (g_getenv ("ARB_FIXTURES_DIR") == NULL)
    g_setenv ("ARB_FIXTURES_DIR", ARB_TEST_FIXTURES_DIR, TRUE);
  dir = pt_fixtures ("kalshi");
  if (dir == NULL)
    {
      g_printerr ("no fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream\n");
      return 2;
    }
  pt_init ();
  pt_quiet = TRUE;
  h = pt_host_new ("plugin=ingest-kalshi\nbase_url=http://127.0.0.1:9/trade-api/v2\n"
                   "ws_url=ws://127.0.0.1:9/trade-api/ws/v2\nmarket_tickers=KXBTCD-26NOV2117-T91999.99,"
                   "KXFED-26DEC-T3.75,KXHIGHNY-26NOV20-B51.5,KXHIGHNY-26NOV20-B53.5,KXNFLGAME-26NOV22KCDEN-KC\n");
  p = ks_create (h->inst, &error);
  g_assert_no_error (error);
  p->publish_quote = host ? arb_instance_publish_quote : pt_capture;
  a = pt_transcript (dir, "ws_session_ticker_orderbook.jsonl");
  b = pt_transcript (dir, "ws_lifecycle_session.jsonl");
  for (guint i = 0; i < a->len; i++)
    g_ptr_array_add (frames, g_ptr_array_index (a, i));
  for (guint i = 0; i < b->len; i++)
    g_ptr_array_add (frames, g_ptr_array_index (b, i));

  before = pt_metric (h, "messages_total");
  start = cpu_seconds ();
  do
    {
      for (guint i = 0; i < frames->len; i++)
        {
          const char *f = g_ptr_array_index (frames, i);
          ks_on_text (p, f, strlen (f));
        }
      messages += frames->len;
    }
  while (cpu_seconds () - start < seconds);
  used = cpu_seconds () - start;

  g_print ("{\"provider\":\"kalshi\",\"publish\":\"%s\",\"messages\":%" G_GUINT64_FORMAT ",\"quotes\":%" G_GUINT64_FORMAT
           ",\"seq_gaps\":%.0f,\"malformed\":%.0f,\"cpu_seconds\":%.3f,\"messages_per_cpu_second\":%.0f}\n",
           host ? "host" : "counted", messages, (guint64) pt_metric (h, "quotes_published_total"), pt_metric (h, "seq_gaps_total"),
           pt_metric (h, "malformed_messages_total"), used, (double) messages / used);
  g_assert_cmpfloat (pt_metric (h, "messages_total") - before, ==, (double) messages);
  ks_destroy (p);
  pt_host_free (h);
  return 0;
}
