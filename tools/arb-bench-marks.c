/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* arb-bench-marks: how fast the host marks accounts to market.
 *
 * Builds a real host (the library arbiterd runs) from a key file with its
 * store in a scratch folder, puts N open positions spread over M markets and
 * A accounts into the live state, then publishes quotes on random markets
 * for a fixed time and runs the marker on each, as arbiterd does for every
 * quote of an ingest plugin: stop-loss/take-profit checks, the account's
 * value, the equity high-water mark, every risk instance's on_mark. Prints
 * quotes/s, account evaluations (marks)/s, and the per-quote latency.
 *
 *   arb-bench-marks [--positions 10000] [--markets 100] [--accounts 100]
 *                   [--duration 5s] [--risk-plugin-dir DIR]
 *
 * With --risk-plugin-dir (a folder holding libarb-risk-drawdown.so), each
 * program also runs a risk-drawdown instance, so on_mark is in the figure. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "arb-hist.h"
#include "arb-marker-private.h"
#include "arb-store-private.h"
#include "arb-trading-private.h"
#include "arb-util-private.h"

static gint64
parse_duration (const char *text)
{
  gint64 ms = 0;
  g_autoptr(GError) error = NULL;
  if (!arb_parse_duration_ms (text, &ms, &error))
    {
      g_printerr ("--duration: %s\n", error->message);
      exit (2);
    }
  return ms;
}

int
main (int argc, char **argv)
{
  gint positions = 10000, markets = 100, accounts = 100;
  g_autofree char *duration = g_strdup ("5s");
  g_autofree char *risk_dir = NULL;
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- mark-to-market throughput of arbiterd's host");
  const GOptionEntry entries[] = {
    { "positions", 0, 0, G_OPTION_ARG_INT, &positions, "open positions in all", "N" },
    { "markets", 0, 0, G_OPTION_ARG_INT, &markets, "markets they are spread over", "N" },
    { "accounts", 0, 0, G_OPTION_ARG_INT, &accounts, "assessments they belong to", "N" },
    { "duration", 'd', 0, G_OPTION_ARG_STRING, &duration, "how long to publish quotes", "T" },
    { "risk-plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &risk_dir, "folder with libarb-risk-drawdown.so", "DIR" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *conf_path = NULL;
  g_autoptr(GString) conf = g_string_new (NULL);
  g_autoptr(GPtrArray) problems = NULL;
  ArbHost *host;
  ArbHist hist;
  gint64 duration_us, start, end, quotes = 0;
  guint64 marks_before;
  GRand *rand = g_rand_new_with_seed (42);

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (positions < 1 || markets < 1 || accounts < 1)
    {
      g_printerr ("--positions, --markets and --accounts must be at least 1\n");
      return 2;
    }
  duration_us = parse_duration (duration) * 1000;
  tmp = g_dir_make_tmp ("arb-bench-marks-XXXXXX", &error);
  if (tmp == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  g_string_append_printf (conf,
                          "[runtime]\nlisten=127.0.0.1:0\nstate_dir=%s\nlog_level=warning\n"
                          "[api]\njwt_alg=HS256\n"
                          "[program:bench]\nstarting_balance=1000000000\nleverage=100\n",
                          tmp);
  if (risk_dir != NULL)
    {
      g_string_append (conf, "risk=drawdown\n[risk:drawdown]\nplugin=risk-drawdown\nmax_loss_pct=10\n");
      g_setenv ("ARBITER_PLUGIN_PATH", risk_dir, TRUE);
      g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
    }
  conf_path = g_build_filename (tmp, "bench.conf", NULL);
  if (!g_file_set_contents (conf_path, conf->str, -1, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  arb_log_setup (ARB_LOG_TEXT, G_LOG_LEVEL_WARNING);
  problems = arb_config_problems_new ();
  host = arb_host_new (conf_path, problems, &error);
  if (host == NULL || !arb_host_start (host, &error))
    {
      g_autofree char *all = arb_config_problems_join (problems);
      g_printerr ("host: %s\n%s\n", error != NULL ? error->message : "", all);
      return 1;
    }

  /* the live state: accounts, then positions round-robin over markets, each
   * with a stop-loss and a take-profit far away (checked, never hit) */
  for (gint a = 0; a < accounts; a++)
    {
      ArbAssessmentRow *row = g_new0 (ArbAssessmentRow, 1);
      row->id = g_strdup_printf ("acct-%05d", a);
      row->owner = g_strdup ("bench");
      row->program = g_strdup ("bench");
      row->status = ARB_ASSESSMENT_ACTIVE;
      row->starting_balance = row->balance = row->equity_hwm = row->day_start_equity = row->day_start_balance
        = arb_decimal_from_raw (1000000000 * ARB_DECIMAL_SCALE);
      row->day_start_us = row->created_us = row->updated_us = arb_now_us ();
      {
        /* in the store too, so the marker's writes of the high-water mark land */
        g_autoptr(ArbStoreTxn) txn = arb_store_txn_new ();
        arb_store_txn_insert_assessment (txn, row);
        if (!arb_store_commit_sync (host->store, g_steal_pointer (&txn), &error))
          {
            g_printerr ("store: %s\n", error->message);
            return 1;
          }
      }
      arb_trading_add_account (host->trading, row);
    }
  for (gint i = 0; i < positions; i++)
    {
      ArbPositionRow *p = g_new0 (ArbPositionRow, 1);
      p->id = g_strdup_printf ("pos-%06d", i);
      /* each market's positions spread over the accounts */
      p->assessment_id = g_strdup_printf ("acct-%05d", (i / markets) % accounts);
      p->order_id = g_strdup (p->id);
      p->market = g_strdup_printf ("crypto:M%03d-USD", i % markets);
      p->side = i % 2 == 0 ? ARB_SIDE_LONG : ARB_SIDE_SHORT;
      p->status = ARB_POSITION_OPEN;
      p->quantity = p->initial_quantity = arb_decimal_from_raw (ARB_DECIMAL_SCALE);
      p->entry_price = arb_decimal_from_raw (100 * ARB_DECIMAL_SCALE);
      p->margin = arb_decimal_from_raw (ARB_DECIMAL_SCALE);
      p->has_stop_loss = p->has_take_profit = TRUE;
      p->stop_loss = arb_decimal_from_raw ((p->side == ARB_SIDE_LONG ? 1 : 1000) * ARB_DECIMAL_SCALE);
      p->take_profit = arb_decimal_from_raw ((p->side == ARB_SIDE_LONG ? 1000 : 1) * ARB_DECIMAL_SCALE);
      p->opened_us = p->updated_us = arb_now_us ();
      arb_trading_add_position (host->trading, p);
    }

  arb_hist_init (&hist);
  marks_before = arb_marker_get_marks (host->marker);
  start = g_get_monotonic_time ();
  end = start + duration_us;
  while (g_get_monotonic_time () < end)
    {
      g_autofree char *market = g_strdup_printf ("crypto:M%03d-USD", g_rand_int_range (rand, 0, markets));
      g_autoptr(ArbQuote) q = arb_quote_new (market);
      /* prices wander between 99 and 101: no rule triggers, every check runs */
      gint64 cents = 9900 + g_rand_int_range (rand, 0, 200);
      gint64 t0;

      arb_quote_set_bid (q, arb_decimal_from_raw (cents * (ARB_DECIMAL_SCALE / 100)));
      arb_quote_set_ask (q, arb_decimal_from_raw ((cents + 1) * (ARB_DECIMAL_SCALE / 100)));
      q->source = g_strdup ("bench");
      q->receive_time_us = q->source_time_us = arb_now_us ();
      t0 = g_get_monotonic_time ();
      arb_price_book_update (host->book, q);
      arb_marker_on_quote (host->marker, market);
      arb_hist_record (&hist, (guint64) (g_get_monotonic_time () - t0) * 1000);
      quotes++;
      /* let the host breathe: persistence timers, nothing else runs */
      if ((quotes & 1023) == 0)
        while (g_main_context_iteration (host->context, FALSE))
          ;
    }
  {
    gdouble secs = (gdouble) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
    guint64 marks = arb_marker_get_marks (host->marker) - marks_before;
    g_print ("positions %d  markets %d  accounts %d  risk on_mark %s\n", positions, markets, accounts,
             risk_dir != NULL ? "risk-drawdown" : "none");
    g_print ("quotes %" G_GINT64_FORMAT "  %.0f quotes/s  marks %" G_GUINT64_FORMAT "  %.0f marks/s  "
             "positions checked %.0f/s\n",
             quotes, quotes / secs, marks, marks / secs, (gdouble) quotes * positions / markets / secs);
    g_print ("per quote  p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
             arb_hist_percentile (&hist, 50) / 1000.0, arb_hist_percentile (&hist, 99) / 1000.0,
             arb_hist_percentile (&hist, 99.9) / 1000.0, arb_hist_percentile (&hist, 100) / 1000.0);
  }
  arb_host_stop (host);
  arb_host_free (host);
  g_rand_free (rand);
  return 0;
}
