/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How many market WebSocket messages ingest-polymarket decodes per second on
 * one core: the recorded sessions (ws_market_session.jsonl and
 * ws_market_resolution.jsonl, every server text frame: book dumps, price
 * changes, trades, tick sizes, PONGs) fed to the plugin's frame handler in a
 * loop on one thread, the way the socket hands them over. Each message is
 * parsed (strict JSON, exact decimals), applied to the books and turned into
 * quotes; by default the quotes are checked and counted, not published
 * (--host publishes them into a host's price book as arbiterd would).
 *
 *   bench-ingest-polymarket [--seconds N] [--host]
 *
 * Prints one line of JSON: messages (frames), events (a book dump is one
 * frame of several events), CPU seconds of the thread, and the rates per CPU
 * second.
 */

#include <time.h>

#include "arb-ingest-polymarket.c"
#include "tests/arb-prediction-test.h"

static double
cpu_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
follow_file (PmPlugin *p, const char *dir, const char *file, const char *const *replace)
{
  g_autofree char *text = pt_read (dir, file, NULL);
  GString *s = g_string_new (text);
  g_autoptr(JsonNode) root = NULL;
  JsonArray *a;

  for (guint i = 0; replace != NULL && replace[i] != NULL; i += 2)
    g_string_replace (s, replace[i], replace[i + 1], 0);
  root = arb_ingest_json_parse (s->str, s->len, NULL);
  g_string_free (s, TRUE);
  g_assert_nonnull (root);
  if (JSON_NODE_HOLDS_OBJECT (root))
    {
      a = json_array_new ();
      json_array_add_element (a, json_node_copy (root));
    }
  else
    a = json_array_ref (json_node_get_array (root));
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      PmGamma g;
      g_assert_true (pm_gamma_decode (json_array_get_object_element (a, i), &g, NULL));
      pm_take_market (p, &g, NULL);
      pm_gamma_clear (&g);
    }
  json_array_unref (a);
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
  static const char *const updown[] = {
    "\"705118\"", "\"1188431\"",
    "0x0c85a1c381e532aed95401a9f6ea4de0051bacd7705bc071f70228e972f4e235",
    "0x8f9c1e2d3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2",
    "75567331243790295716776893460846463905750098398062047253300665451449119091201",
    "70945937133212512974150829279089636051757640928559035835817800969929165047649",
    "20033365468353542744491439332573233596372985272004533723474159387434949387691",
    "19302467774626838573549198877594945407906445297103381493617500201477027898258",
    "\"closed\": true", "\"closed\": false",
    "\"umaResolutionStatus\": \"resolved\",", "",
    NULL
  };
  GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "how long to run (CPU seconds of the thread)", "N" },
    { "host", 0, 0, G_OPTION_ARG_NONE, &host, "publish the quotes into a host's price book", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- ingest-polymarket decoding benchmark");
  guint64 messages = 0, before_events;
  double start, used;
  PtHost *h;
  PmPlugin *p;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (g_getenv ("ARB_FIXTURES_DIR") == NULL)
    g_setenv ("ARB_FIXTURES_DIR", ARB_TEST_FIXTURES_DIR, TRUE);
  dir = pt_fixtures ("polymarket");
  if (dir == NULL)
    {
      g_printerr ("no fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream\n");
      return 2;
    }
  pt_init ();
  pt_quiet = TRUE;
  h = pt_host_new ("plugin=ingest-polymarket\nbase_url=http://127.0.0.1:9\nws_url=ws://127.0.0.1:9/ws/market\n"
                   "market_slugs=x\n");
  p = pm_create (h->inst, &error);
  g_assert_no_error (error);
  p->publish_quote = host ? arb_instance_publish_quote : pt_capture;
  follow_file (p, dir, "gamma_markets_active.json", NULL);
  follow_file (p, dir, "gamma_market_resolved_yes.json", updown);
  a = pt_transcript (dir, "ws_market_session.jsonl");
  b = pt_transcript (dir, "ws_market_resolution.jsonl");
  /* the resolution session last: its market_resolved closes its market */
  for (guint i = 0; i < a->len; i++)
    g_ptr_array_add (frames, g_ptr_array_index (a, i));
  for (guint i = 0; i < b->len; i++)
    g_ptr_array_add (frames, g_ptr_array_index (b, i));

  before_events = (guint64) pt_metric (h, "messages_total");
  start = cpu_seconds ();
  do
    {
      for (guint i = 0; i < frames->len; i++)
        {
          const char *f = g_ptr_array_index (frames, i);
          pm_on_text (p, f, strlen (f));
        }
      messages += frames->len;
    }
  while (cpu_seconds () - start < seconds);
  used = cpu_seconds () - start;

  g_print ("{\"provider\":\"polymarket\",\"publish\":\"%s\",\"messages\":%" G_GUINT64_FORMAT ",\"events\":%.0f,"
           "\"quotes\":%" G_GUINT64_FORMAT ",\"malformed\":%.0f,\"cpu_seconds\":%.3f,\"messages_per_cpu_second\":%.0f,"
           "\"events_per_cpu_second\":%.0f}\n",
           host ? "host" : "counted", messages, pt_metric (h, "messages_total") - (double) before_events, (guint64) pt_metric (h, "quotes_published_total"),
           pt_metric (h, "malformed_messages_total"), used, (double) messages / used,
           (pt_metric (h, "messages_total") - (double) before_events) / used);
  pm_destroy (p);
  pt_host_free (h);
  return 0;
}
