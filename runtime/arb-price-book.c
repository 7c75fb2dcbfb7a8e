/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "arb-host-private.h"
#include "arb-util-private.h"

typedef struct {
  ArbQuote            *quote;  /* owned, nullable */
  ArbMarketStatusInfo  status;
  gboolean             has_status;
} Entry;

struct _ArbPriceBook {
  GMutex      lock;
  GHashTable *markets; /* id → Entry */
  /* market id (owned) → its event (a GRefString, owned), as ingest
   * published it; apart from the markets, so that a mapping does not make a
   * market appear in the book */
  GHashTable *events;
};

static void
entry_free (gpointer data)
{
  Entry *e = data;
  arb_quote_unref (e->quote);
  g_free (e->status.reason);
  g_free (e);
}

ArbPriceBook *
arb_price_book_new (void)
{
  ArbPriceBook *book = g_new0 (ArbPriceBook, 1);
  g_mutex_init (&book->lock);
  book->markets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  book->events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ref_string_release);
  return book;
}

void
arb_price_book_free (ArbPriceBook *book)
{
  if (book == NULL)
    return;
  g_hash_table_unref (book->markets);
  g_hash_table_unref (book->events);
  g_mutex_clear (&book->lock);
  g_free (book);
}

static Entry *
entry_get (ArbPriceBook *book, const char *market)
{
  Entry *e = g_hash_table_lookup (book->markets, market);
  if (e == NULL)
    {
      e = g_new0 (Entry, 1);
      g_hash_table_insert (book->markets, g_strdup (market), e);
    }
  return e;
}

gboolean
arb_price_book_update (ArbPriceBook *book, ArbQuote *quote)
{
  Entry *e;
  gboolean newer = TRUE;

  g_mutex_lock (&book->lock);
  e = entry_get (book, quote->market);
  /* a quote the source says is older than the one we hold is late: keep ours */
  if (e->quote != NULL && quote->source_time_us != 0 && e->quote->source_time_us > quote->source_time_us
      && g_strcmp0 (e->quote->source, quote->source) == 0)
    newer = FALSE;
  if (newer)
    {
      arb_quote_unref (e->quote);
      e->quote = arb_quote_copy (quote);
    }
  g_mutex_unlock (&book->lock);
  return newer;
}

void
arb_price_book_set_status (ArbPriceBook *book, const char *market, ArbMarketState state,
                           const ArbDecimal *settlement, const char *reason, gint64 time_us)
{
  Entry *e;
  g_mutex_lock (&book->lock);
  e = entry_get (book, market);
  e->has_status = TRUE;
  e->status.state = state;
  e->status.has_settlement = settlement != NULL;
  e->status.settlement = settlement != NULL ? *settlement : ARB_DECIMAL_ZERO;
  g_free (e->status.reason);
  e->status.reason = g_strdup (reason);
  e->status.time_us = time_us;
  g_mutex_unlock (&book->lock);
}

ArbQuote *
arb_price_book_get (ArbPriceBook *book, const char *market)
{
  Entry *e;
  ArbQuote *q = NULL;
  g_mutex_lock (&book->lock);
  e = g_hash_table_lookup (book->markets, market);
  if (e != NULL && e->quote != NULL)
    q = arb_quote_ref (e->quote);
  g_mutex_unlock (&book->lock);
  return q;
}

gboolean
arb_price_book_get_status (ArbPriceBook *book, const char *market, ArbMarketStatusInfo *out)
{
  Entry *e;
  gboolean found = FALSE;
  g_mutex_lock (&book->lock);
  e = g_hash_table_lookup (book->markets, market);
  if (e != NULL && e->has_status)
    {
      *out = e->status;
      out->reason = g_strdup (e->status.reason); /* the caller frees it */
      found = TRUE;
    }
  g_mutex_unlock (&book->lock);
  return found;
}

GStrv
arb_price_book_list (ArbPriceBook *book)
{
  GStrv out;
  guint n;

  g_mutex_lock (&book->lock);
  n = g_hash_table_size (book->markets);
  out = g_new0 (char *, n + 1);
  {
    GHashTableIter it;
    gpointer k;
    guint i = 0;
    g_hash_table_iter_init (&it, book->markets);
    while (g_hash_table_iter_next (&it, &k, NULL))
      out[i++] = g_strdup (k);
  }
  g_mutex_unlock (&book->lock);
  qsort (out, n, sizeof (char *), arb_compare_strings);
  return out;
}

guint
arb_price_book_size (ArbPriceBook *book)
{
  guint n;
  g_mutex_lock (&book->lock);
  n = g_hash_table_size (book->markets);
  g_mutex_unlock (&book->lock);
  return n;
}

ArbEventChange
arb_price_book_set_event (ArbPriceBook *book, const char *market, const char *event, char **previous)
{
  char *old;
  ArbEventChange change;

  if (previous != NULL)
    *previous = NULL;
  g_mutex_lock (&book->lock);
  old = g_hash_table_lookup (book->events, market);
  if (old != NULL && g_str_equal (old, event))
    change = ARB_EVENT_UNCHANGED;
  else
    {
      change = old != NULL ? ARB_EVENT_MOVED : ARB_EVENT_NEW;
      if (old != NULL && previous != NULL)
        *previous = g_strdup (old);
      g_hash_table_replace (book->events, g_strdup (market), g_ref_string_new (event));
    }
  g_mutex_unlock (&book->lock);
  return change;
}

char *
arb_price_book_dup_event (ArbPriceBook *book, const char *market)
{
  char *event;

  g_mutex_lock (&book->lock);
  event = g_hash_table_lookup (book->events, market);
  if (event != NULL)
    event = g_ref_string_acquire (event);
  g_mutex_unlock (&book->lock);
  return event;
}

gboolean
arb_price_book_market_in_event (ArbPriceBook *book, const char *market, const char *event)
{
  const char *of;
  gboolean in;

  g_mutex_lock (&book->lock);
  of = g_hash_table_lookup (book->events, market);
  /* a market nobody gave an event is its own */
  in = g_str_equal (of != NULL ? of : market, event);
  g_mutex_unlock (&book->lock);
  return in;
}
