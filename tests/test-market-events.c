/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The host's market-to-event mapping (plugin ABI 1.1) through the real host:
 * arb_instance_publish_market_event() checks its arguments and replaces an
 * older mapping; arb_order_view_get_event() falls back to the market;
 * arb_account_view_get_event_notional() sums the per-market exposure of the
 * markets of one event, rounded once, and says when the sum leaves the
 * decimal range. The rule that uses them is risk-exposure
 * (plugins/risk/exposure/tests). */

#include <string.h>

#include "arb-risk-test-host.h"

#define M1_YES "polymarket:1001"
#define M1_NO  "polymarket:1002"
#define M2_YES "polymarket:1003"
#define LONE   "polymarket:3001"
#define E903   "polymarket-event:903"
#define E904   "polymarket-event:904"

static const char groups[] =
  "[program:p]\n"
  "starting_balance=100000\n"
  "leverage=1\n"
  "\n"
  "[program:big]\n"
  "starting_balance=100000\n"
  "leverage=1000\n"
  "\n"
  "[risk:event]\n"
  "plugin=risk-exposure\n"
  "max_event_exposure_pct=5\n";

static ArbInstance *
some_instance (ArbRiskTestHost *h)
{
  return g_ptr_array_index (h->host->instances, 0);
}

static char *
event_of (ArbRiskTestHost *h, const char *market)
{
  char *ref = arb_price_book_dup_event (h->host->book, market);
  char *copy = g_strdup (ref);

  g_clear_pointer (&ref, g_ref_string_release);
  return copy;
}

static gdouble
received (ArbRiskTestHost *h)
{
  return arb_metrics_get (h->host->metrics, "arb_market_events_received_total", some_instance (h)->labels);
}

typedef struct {
  const char *market;
  const char *event;
  const char *message;
} Invalid;

static const Invalid invalid[] = {
  { NULL, E903, "event of \"(null)\": not a market id" },
  { "BTC-USD", E903, "event of \"BTC-USD\": not a market id" },
  { "kalshi:KXFED-26DEC-T3.75", "kalshi-event:KXFED-26DEC", "event of \"kalshi:KXFED-26DEC-T3.75\": not a market id" },
  { M1_YES, NULL, "event of polymarket:1001: \"(null)\" is not an event id: no event id" },
  { M1_YES, "", "event of polymarket:1001: \"\" is not an event id: no event id" },
  { M1_YES, "903",
    "event of polymarket:1001: \"903\" is not an event id: not namespaced (NAMESPACE:ID, for example "
    "polymarket-event:903)" },
  { M1_YES, ":903",
    "event of polymarket:1001: \":903\" is not an event id: not namespaced (NAMESPACE:ID, for example "
    "polymarket-event:903)" },
  { M1_YES, "polymarket-event:",
    "event of polymarket:1001: \"polymarket-event:\" is not an event id: not namespaced (NAMESPACE:ID, for example "
    "polymarket-event:903)" },
  { M1_YES, "Polymarket-Event:903",
    "event of polymarket:1001: \"Polymarket-Event:903\" is not an event id: the namespace is not lower case "
    "letters, digits and '-'" },
  /* an event named like a market would be that market's own event */
  { M1_YES, "polymarket:903",
    "event of polymarket:1001: \"polymarket:903\" is not an event id: in a market namespace (crypto, polymarket, "
    "kalshi); use the plugin's own, such as polymarket-event" },
  { M1_YES, "kalshi:KXFED-26DEC",
    "event of polymarket:1001: \"kalshi:KXFED-26DEC\" is not an event id: in a market namespace (crypto, "
    "polymarket, kalshi); use the plugin's own, such as polymarket-event" },
  { M1_YES, "polymarket-event:9 03",
    "event of polymarket:1001: \"polymarket-event:9 03\" is not an event id: the id has a character other than "
    "letters, digits and -_.:" },
};

static void
test_invalid (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  g_autofree char *long_event = g_strnfill (201, 'x');

  memcpy (long_event, "a-event:", strlen ("a-event:"));
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *now = NULL;

      g_test_message ("%s → %s", invalid[i].market, invalid[i].event);
      g_assert_false (arb_instance_publish_market_event (some_instance (h), invalid[i].market, invalid[i].event,
                                                          &error));
      g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG);
      g_assert_cmpstr (error->message, ==, invalid[i].message);
      /* nothing changed */
      now = invalid[i].market != NULL ? event_of (h, invalid[i].market) : NULL;
      g_assert_null (now);
    }
  {
    g_autoptr(GError) error = NULL;
    g_assert_false (arb_instance_publish_market_event (some_instance (h), M1_YES, long_event, &error));
    g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG);
    g_assert_true (g_str_has_suffix (error->message, "is not an event id: longer than 200 bytes"));
  }
  /* a bad mapping does not replace a good one */
  arb_risk_test_publish_event (h, M1_YES, E903);
  g_assert_false (arb_instance_publish_market_event (some_instance (h), M1_YES, "polymarket:904", NULL));
  {
    g_autofree char *now = event_of (h, M1_YES);
    g_assert_cmpstr (now, ==, E903);
  }
  /* only the valid one was counted */
  g_assert_cmpfloat (received (h), ==, 1);
  /* the separators an id may hold, and a namespace of digits and '-' */
  arb_risk_test_publish_event (h, M1_NO, "kalshi-event:KXHIGHNY-26NOV21");
  arb_risk_test_publish_event (h, M1_NO, "x-2:a_b.c:d-e");
}

static gboolean
log_has (ArbRiskTestHost *h, const char *needle)
{
  g_autofree char *text = NULL;

  g_file_get_contents (h->log, &text, NULL, NULL);
  return text != NULL && strstr (text, needle) != NULL;
}

static void
test_replace (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  g_autofree char *first = NULL;
  g_autofree char *again = NULL;
  g_autofree char *moved = NULL;
  g_autofree char *none = event_of (h, M1_YES);

  g_assert_null (none);
  g_assert_true (arb_price_book_market_in_event (h->host->book, M1_YES, M1_YES));
  arb_risk_test_publish_event (h, M1_YES, E903);
  first = event_of (h, M1_YES);
  g_assert_cmpstr (first, ==, E903);
  g_assert_true (arb_price_book_market_in_event (h->host->book, M1_YES, E903));
  /* once in an event, a market is no longer its own */
  g_assert_false (arb_price_book_market_in_event (h->host->book, M1_YES, M1_YES));
  /* the same again changes nothing and logs nothing */
  arb_risk_test_publish_event (h, M1_YES, E903);
  again = event_of (h, M1_YES);
  g_assert_cmpstr (again, ==, E903);
  g_assert_false (log_has (h, "moved from event"));
  /* another replaces it, and says so */
  arb_risk_test_publish_event (h, M1_YES, E904);
  moved = event_of (h, M1_YES);
  g_assert_cmpstr (moved, ==, E904);
  g_assert_false (arb_price_book_market_in_event (h->host->book, M1_YES, E903));
  g_assert_true (log_has (h, "polymarket:1001 moved from event polymarket-event:903 to event polymarket-event:904"));
  /* a mapping is not a market of the book: /markets lists only priced ones */
  g_assert_cmpuint (arb_price_book_size (h->host->book), ==, 0);
  g_assert_cmpfloat (received (h), ==, 3);
}

static void
test_order_view (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  ArbOrderView order = { .market = M1_YES, .prediction = TRUE };

  /* nothing looked up: the market is its own event */
  g_assert_cmpstr (arb_order_view_get_event (&order), ==, M1_YES);
  order.event = E903;
  g_assert_cmpstr (arb_order_view_get_event (&order), ==, E903);
}

/* Σ over the markets of an event, rounded up once */
static void
test_event_notional (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "p" });
  g_autoptr(GError) error = NULL;
  ArbAccountView view;
  ArbDecimal d;
  char buf[ARB_DECIMAL_BUFSIZE];

  arb_risk_test_publish_event (h, M1_YES, E903);
  arb_risk_test_publish_event (h, M1_NO, E903);
  arb_risk_test_publish_event (h, M2_YES, E904);
  /* 0.00000001 × 0.3 = 0.000000003 each: a market's notional rounds up to
   * 0.00000001, the event's three-thousandths of a hundred-millionth do too */
  arb_risk_test_add_position (h, a, M1_YES, TRUE, "0.3", "0.00000001");
  arb_risk_test_add_position (h, a, M1_NO, TRUE, "0.3", "0.00000001");
  arb_risk_test_add_position (h, a, M1_NO, TRUE, "0.3", "0.00000001");
  arb_risk_test_add_position (h, a, M2_YES, TRUE, "100", "0.25");
  arb_risk_test_add_position (h, a, LONE, TRUE, "10", "0.5");
  /* crypto markets in an event of their own (the host does not mind): a long
   * and a short count alike */
  arb_risk_test_publish_event (h, "crypto:BTC-USD", "basket:majors");
  arb_risk_test_publish_event (h, "crypto:ETH-USD", "basket:majors");
  arb_risk_test_add_position (h, a, "crypto:BTC-USD", TRUE, "0.5", "50000");
  arb_risk_test_add_position (h, a, "crypto:ETH-USD", FALSE, "2", "2000");
  g_assert_true (arb_account_view_init (&view, h->host->trading, a, &error));
  g_assert_no_error (error);

  g_assert_true (arb_account_view_get_event_notional (&view, E903, &d));
  g_assert_cmpstr (arb_decimal_format (d, buf), ==, "0.00000001");
  g_assert_cmpstr (arb_decimal_format (arb_account_view_get_market_notional (&view, M1_NO), buf), ==, "0.00000001");
  g_assert_true (arb_account_view_get_event_notional (&view, E904, &d));
  g_assert_cmpstr (arb_decimal_format (d, buf), ==, "25.00000000");
  /* a market of no event is its own, and the same as its market notional */
  g_assert_true (arb_account_view_get_event_notional (&view, LONE, &d));
  g_assert_cmpstr (arb_decimal_format (d, buf), ==, "5.00000000");
  /* a market in an event is not its own event any more */
  g_assert_true (arb_account_view_get_event_notional (&view, M1_YES, &d));
  g_assert_cmpstr (arb_decimal_format (d, buf), ==, "0.00000000");
  /* 25,000 + 4,000 */
  g_assert_true (arb_account_view_get_event_notional (&view, "basket:majors", &d));
  g_assert_cmpstr (arb_decimal_format (d, buf), ==, "29000.00000000");
  /* nothing held */
  g_assert_true (arb_account_view_get_event_notional (&view, "polymarket-event:1", &d));
  g_assert_cmpint (d.raw, ==, 0);
}

/* two holdings each within the decimal range, together beyond it */
static void
test_event_notional_range (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  ArbAccount *a = arb_risk_test_add_account (h, &(ArbRiskTestAccount){ .id = "a1", .program = "big" });
  g_autoptr(GError) error = NULL;
  ArbAccountView view;
  ArbDecimal d;

  arb_risk_test_publish_event (h, "crypto:AAA-USD", "basket:big");
  arb_risk_test_publish_event (h, "crypto:BBB-USD", "basket:big");
  arb_risk_test_add_position (h, a, "crypto:AAA-USD", TRUE, "1", "50000000000");
  arb_risk_test_add_position (h, a, "crypto:BBB-USD", TRUE, "1", "50000000000");
  g_assert_true (arb_account_view_init (&view, h->host->trading, a, &error));
  g_assert_no_error (error);
  g_assert_false (arb_account_view_get_event_notional (&view, "basket:big", &d));
  g_assert_cmpint (d.raw, ==, G_MAXINT64);
}

/* publishing is thread-safe: an ingest plugin's own thread may do it while
 * the main thread reads */
static gpointer
publish_many (gpointer data)
{
  ArbRiskTestHost *h = data;

  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *market = g_strdup_printf ("polymarket:%u", 5000 + i % 50);
      g_assert_true (arb_instance_publish_market_event (some_instance (h), market, i % 2 ? E903 : E904, NULL));
    }
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(ArbRiskTestHost) h = arb_risk_test_host_new (groups);
  GThread *t = g_thread_new ("publisher", publish_many, h);
  guint in = 0;

  for (guint i = 0; i < 2000; i++)
    in += arb_price_book_market_in_event (h->host->book, "polymarket:5001", E903);
  g_thread_join (t);
  /* the last word for 5001 (i = 1951, odd) */
  g_assert_true (arb_price_book_market_in_event (h->host->book, "polymarket:5001", E903));
  g_assert_cmpfloat (received (h), ==, 2000);
  g_test_message ("read %u times as in event 903 while it moved", in);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/market-events/publish/invalid", test_invalid);
  g_test_add_func ("/market-events/publish/replace", test_replace);
  g_test_add_func ("/market-events/publish/threads", test_threads);
  g_test_add_func ("/market-events/order-view", test_order_view);
  g_test_add_func ("/market-events/event-notional", test_event_notional);
  g_test_add_func ("/market-events/event-notional/range", test_event_notional_range);
  return g_test_run ();
}
