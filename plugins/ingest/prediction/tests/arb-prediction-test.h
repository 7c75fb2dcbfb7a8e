/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the decoding tests and the benchmarks of ingest-polymarket and
 * ingest-kalshi share: a real host (not started) whose instance `ingest:x`
 * lends the plugin its config, logging, metrics and statuses, while the
 * plugin's own source, compiled into the test, does the work; quotes are
 * captured instead of published; warnings are counted by a log writer that
 * fails the test on anything critical.
 *
 * Include after the plugin's source. ARB_TEST_PLUGIN_DIR is the build's
 * plugins directory (the host checks the group against the module's schema).
 */

#include <string.h>

#include <glib/gstdio.h>

#include "arb-host-private.h"

typedef struct {
  ArbHost     *host;
  ArbInstance *inst;
  char        *dir;
} PtHost;

typedef struct {
  char *market;
  char *text;   /* "bid/ask/last", "-" where unset */
} PtQuote;

static GPtrArray *pt_quotes;       /* PtQuote: what the plugin published */
static guint      pt_warnings;     /* warnings logged since the last reset */
static GPtrArray *pt_warning_text; /* char * */
static gboolean   pt_quiet;        /* benchmarks: no capture */
static guint64    pt_published;

static void
pt_quote_free (PtQuote *q)
{
  g_free (q->market);
  g_free (q->text);
  g_free (q);
}

G_GNUC_UNUSED static char *
pt_quote_text (const ArbQuote *quote)
{
  char b[ARB_DECIMAL_BUFSIZE], a[ARB_DECIMAL_BUFSIZE], l[ARB_DECIMAL_BUFSIZE];
  ArbDecimal d;

  return g_strdup_printf ("%s/%s/%s", arb_quote_get_bid (quote, &d) ? arb_decimal_format_short (d, b) : "-",
                          arb_quote_get_ask (quote, &d) ? arb_decimal_format_short (d, a) : "-",
                          arb_quote_get_last (quote, &d) ? arb_decimal_format_short (d, l) : "-");
}

/* the plugin's publish_quote: checked like the host does, then kept */
static gboolean
pt_capture (ArbInstance *inst, ArbQuote *quote, GError **error)
{
  PtQuote *q;

  if (!arb_quote_validate (quote, error))
    return FALSE;
  pt_published++;
  if (pt_quiet)
    return TRUE;
  q = g_new0 (PtQuote, 1);
  q->market = g_strdup (arb_quote_get_market (quote));
  q->text = pt_quote_text (quote);
  g_ptr_array_add (pt_quotes, q);
  return TRUE;
}

G_GNUC_UNUSED static void
pt_reset (void)
{
  g_ptr_array_set_size (pt_quotes, 0);
  g_ptr_array_set_size (pt_warning_text, 0);
  pt_warnings = 0;
}

/* the last quote captured for @market, or NULL */
G_GNUC_UNUSED static const char *
pt_last (const char *market)
{
  for (guint i = pt_quotes->len; i > 0; i--)
    {
      PtQuote *q = g_ptr_array_index (pt_quotes, i - 1);
      if (g_str_equal (q->market, market))
        return q->text;
    }
  return NULL;
}

static GLogWriterOutput
pt_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *message = "";

  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    {
      g_printerr ("unexpected: %s\n", message);
      g_assert_not_reached ();
    }
  if (level & G_LOG_LEVEL_WARNING)
    {
      pt_warnings++;
      g_ptr_array_add (pt_warning_text, g_strdup (message));
      if (g_test_verbose ())
        g_test_message ("warning: %s", message);
    }
  return G_LOG_WRITER_HANDLED;
}

/* once, after g_test_init (or at the start of a benchmark) */
static void
pt_init (void)
{
  pt_quotes = g_ptr_array_new_with_free_func ((GDestroyNotify) pt_quote_free);
  pt_warning_text = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (pt_log_writer, NULL, NULL);
  g_setenv ("ARBITER_PLUGIN_PATH", ARB_TEST_PLUGIN_DIR, TRUE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
}

/* a host (not started) with [ingest:x] = @group_body */
G_GNUC_UNUSED static PtHost *
pt_host_new (const char *group_body)
{
  PtHost *h = g_new0 (PtHost, 1);
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *text = NULL;
  g_autofree char *joined = NULL;

  h->dir = g_dir_make_tmp ("arb-prediction-test-XXXXXX", &error);
  g_assert_no_error (error);
  conf = g_build_filename (h->dir, "arbiter.conf", NULL);
  text = g_strdup_printf ("[runtime]\nstate_dir=state\n[ingest:x]\n%s", group_body);
  g_file_set_contents (conf, text, -1, &error);
  g_assert_no_error (error);
  h->host = arb_host_new (conf, problems, &error);
  joined = arb_config_problems_join (problems);
  g_assert_cmpstr (joined, ==, "");
  g_assert_no_error (error);
  h->inst = arb_host_find_instance (h->host, "ingest:x");
  g_assert_nonnull (h->inst);
  return h;
}

static void
pt_host_free (PtHost *h)
{
  g_autofree char *conf = g_build_filename (h->dir, "arbiter.conf", NULL);

  arb_host_free (h->host);
  g_remove (conf);
  g_rmdir (h->dir);
  g_free (h->dir);
  g_free (h);
}

static gdouble
pt_metric (PtHost *h, const char *name)
{
  g_autofree char *full = g_strdup_printf ("arb_plugin_%s", name);
  return arb_metrics_get (h->host->metrics, full, h->inst->labels);
}

/* the market's status in the host's book: "state" or "state@settlement" */
G_GNUC_UNUSED static char *
pt_status (PtHost *h, const char *market)
{
  ArbMarketStatusInfo st = { 0 };
  char buf[ARB_DECIMAL_BUFSIZE];

  if (!arb_price_book_get_status (h->host->book, market, &st))
    return NULL;
  g_free (st.reason);
  if (st.has_settlement)
    return g_strdup_printf ("%s@%s", arb_market_state_to_string (st.state), arb_decimal_format_short (st.settlement, buf));
  return g_strdup (arb_market_state_to_string (st.state));
}

/* the event the plugin published for @market, as the host's book keeps it,
 * or NULL (transfer full) */
G_GNUC_UNUSED static char *
pt_event (PtHost *h, const char *market)
{
  char *ref = arb_price_book_dup_event (h->host->book, market);
  char *copy = g_strdup (ref);

  g_clear_pointer (&ref, g_ref_string_release);
  return copy;
}

G_GNUC_UNUSED static char *
pt_fixtures (const char *provider)
{
  const char *dir = g_getenv ("ARB_FIXTURES_DIR");
  g_autofree char *path = NULL;

  if (dir == NULL)
    return NULL;
  path = g_build_filename (dir, provider, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return NULL;
  return g_steal_pointer (&path);
}

G_GNUC_UNUSED static char *
pt_read (const char *dir, const char *name, gsize *length)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, length, &error);
  g_assert_no_error (error);
  return text;
}

/* the server's text frames of a transcript (API-REFERENCE.md §0), each as
 * its exact payload text */
G_GNUC_UNUSED static GPtrArray *
pt_transcript (const char *dir, const char *name)
{
  g_autofree char *text = pt_read (dir, name, NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      const char *p;
      int depth = 0;
      gboolean in_string = FALSE;
      const char *start;

      if (strstr (line, "\"dir\":\"s2c\"") == NULL || strstr (line, "\"op\":\"text\"") == NULL)
        continue;
      p = strstr (line, "\"json\":");
      if (p == NULL)
        {
          /* {"text":"PONG"} */
          const char *t = strstr (line, "\"text\":\"");
          const char *e;
          if (t == NULL)
            continue;
          t += strlen ("\"text\":\"");
          e = strchr (t, '"');
          g_ptr_array_add (out, g_strndup (t, (gsize) (e - t)));
          continue;
        }
      /* the raw value of "json", so numbers keep their text */
      start = p + strlen ("\"json\":");
      for (p = start; *p != '\0'; p++)
        {
          if (in_string)
            {
              if (*p == '\\' && p[1] != '\0')
                p++;
              else if (*p == '"')
                in_string = FALSE;
              continue;
            }
          if (*p == '"')
            in_string = TRUE;
          else if (*p == '{' || *p == '[')
            depth++;
          else if (*p == '}' || *p == ']')
            {
              depth--;
              if (depth == 0)
                {
                  g_ptr_array_add (out, g_strndup (start, (gsize) (p - start + 1)));
                  break;
                }
            }
        }
    }
  return out;
}
