/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-kalshi: Kalshi's event contracts.
 *
 * - Which markets: tickers given in `market_tickers`, every market of the
 *   events in `event_tickers` (GET {base_url}/events/{E}
 *   ?with_nested_markets=true) and of the open events of the series in
 *   `series_tickers` (GET {base_url}/events?series_ticker=S&status=open
 *   &with_nested_markets=true). Each becomes two of our markets,
 *   `kalshi:<TICKER>:yes` and `kalshi:<TICKER>:no`.
 * - Prices: the WebSocket ({ws_url}, /trade-api/ws/v2) with `ticker` (top of
 *   book and last price), `orderbook_snapshot`/`orderbook_delta` (the whole
 *   book, applied by `seq`; a gap asks for a new snapshot) and
 *   `market_lifecycle_v2` (pauses, determinations, settlements). Only bids
 *   exist on each side: YES ask = 1 − best NO bid; the NO side's bid is
 *   1 − YES ask and its ask 1 − YES bid.
 * - REST (GET {base_url}/markets?tickers=…, or /markets/{ticker} for one)
 *   is gated: it runs for every market only while the socket is down, and
 *   otherwise only for what the socket does not carry: the first statuses, markets past their close time
 *   (closing has no lifecycle event), disputes and amendments (none either),
 *   settlement values a `determined` event left out. Within request_budget
 *   requests a minute, and never before a 429's Retry-After.
 * - Events: both sides of every market are published to the host as in
 *   `kalshi-event:<event_ticker>` (arb_instance_publish_market_event), from
 *   the market objects REST returns (the first statuses, discovery), again
 *   if Kalshi moves a market. Risk rules add up the markets of one event.
 * - Numbers: prices are `*_dollars` strings ("0.4200", "0.480"), counts
 *   `*_fp` strings; payloads from before 2026-03 with integer cents are
 *   taken too.
 * - Authentication (when a key is configured): KALSHI-ACCESS-KEY,
 *   KALSHI-ACCESS-TIMESTAMP and KALSHI-ACCESS-SIGNATURE on the WebSocket
 *   handshake and every REST request (arb-kalshi-auth.c).
 */

#include <string.h>

#include "arb-kalshi-auth.h"
#include "arb-prediction-common.h"

#define KS_REST_URL "https://external-api.kalshi.com/trade-api/v2"
#define KS_WS_URL   "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
#define KS_FAILURES_BEFORE_DOWN 3
/* tickers per REST request */
#define KS_BATCH 100
/* a snapshot asked for on the socket and not there by then comes over REST */
#define KS_RESNAPSHOT_TIMEOUT_MS 5000

typedef enum {
  KS_SETTLE_DETERMINED,
  KS_SETTLE_FINALIZED,
} KsSettleOn;

typedef struct {
  char                *ticker;   /* owned */
  char                *yes_id;   /* owned: kalshi:<T>:yes */
  char                *no_id;    /* owned: kalshi:<T>:no */
  /* from the ticker channel (or REST while the socket is down) */
  gboolean             t_has_bid, t_has_ask;
  ArbDecimal           t_bid, t_ask;
  gboolean             has_last;
  ArbDecimal           last;
  /* the book: bids only, on each side */
  ArbPredictionLevels *yes_bids; /* owned */
  ArbPredictionLevels *no_bids;  /* owned */
  gboolean             book_valid;
  guint                book_sid;
  gint64               time_us;      /* the upstream's time of the last change */
  gint64               published_us; /* monotonic, 0: never */
  /* status */
  char                *status;       /* owned, nullable: Kalshi's word */
  char                *result;       /* owned, nullable: yes, no, scalar, void */
  gboolean             has_value;
  ArbDecimal           value;        /* settlement value of one YES contract */
  gint64               close_us;     /* 0: unknown */
  gboolean             known;        /* REST described it at least once */
  gboolean             unknown;      /* REST said it has no such market */
  gboolean             final;
  gboolean             subscribed;   /* on the current session */
  gboolean             in_flight;
} KsMarket;

typedef struct _KsPlugin KsPlugin;

typedef struct {
  KsPlugin *self;            /* borrowed: the plugin whose table holds it */
  guint    sid;
  char    *channel;          /* owned */
  gint64   next_seq;         /* 0: no snapshot yet */
  gboolean resnapshot;       /* waiting for a snapshot after a gap */
  GSource *resnapshot_timer; /* owned, nullable */
} KsSub;

typedef struct {
  char      *source;   /* owned: "series KXHIGHNY", for messages */
  char      *path;     /* owned: the REST path and query after base_url */
  gboolean   found;
  gboolean   in_flight;
  char      *problem;  /* owned, nullable */
} KsDiscovery;

struct _KsPlugin {
  ArbInstance         *inst;        /* borrowed; outlives self */
  char                *base_url;    /* owned */
  char                *ws_url;      /* owned */
  char                *ws_path;     /* owned: the path signed for the handshake */
  char                *key_id;      /* owned, nullable */
  ArbKalshiKey        *key;         /* owned, nullable */
  gboolean             reload_key;
  gboolean             want_orderbook;
  KsSettleOn           settle_on;
  gint64               rest_interval_ms;
  gint64               status_interval_ms;
  gint64               timeout_ms;
  gint64               budget_per_min;
  ArbPredictionWsConfig ws_config;

  GPtrArray           *markets;     /* owned: KsMarket */
  GHashTable          *by_ticker;   /* ticker → KsMarket (borrowed) */
  GPtrArray           *discoveries; /* owned: KsDiscovery */
  GHashTable          *subs;        /* sid → KsSub (owned) */
  GHashTable          *commands;    /* command id → channel (owned) */
  guint                next_id;
  gboolean             orderbook_refused; /* the server wants a key for it */

  ArbPredictionHttp   *http;        /* owned */
  ArbPredictionWs     *ws;          /* owned */
  ArbPredictionStatus *status;      /* owned */
  GSource             *rest_timer;  /* owned, nullable */
  gboolean             running;
  gboolean             ws_healthy;

  /* REST budget: a token bucket refilled continuously */
  double               tokens;
  gint64               tokens_at_us;  /* monotonic */
  gint64               hold_until_us; /* monotonic: 429 */
  guint                rest_failures;
  char                *rest_problem;  /* owned, nullable */
  gboolean             auth_refused;
  gint64               last_full_rest_us; /* monotonic: last all-markets round */
  GHashTable          *logged;        /* owned */

  gboolean (*publish_quote) (ArbInstance *inst, ArbQuote *quote, GError **error);
};

/* ------------------------------------------------------------------------ */
/* Logging once                                                             */

static gboolean
ks_first (KsPlugin *self, const char *key)
{
  if (g_hash_table_contains (self->logged, key))
    return FALSE;
  g_hash_table_add (self->logged, g_strdup (key));
  return TRUE;
}

static void
ks_malformed (KsPlugin *self, const char *what, const char *why)
{
  g_autofree char *key = g_strdup_printf ("malformed:%s", what);

  arb_instance_counter_add (self->inst, "malformed_messages_total", 1);
  if (ks_first (self, key))
    arb_warning (self->inst, "Kalshi sent a %s that cannot be used (%s); it was dropped, and such messages are only "
                 "counted from now on (malformed_messages_total)", what, why);
}

/* ------------------------------------------------------------------------ */
/* Numbers (pure)                                                           */

/* a price from "<name>_dollars" (a string), else from <name> in integer
 * cents (before 2026-03); *has FALSE when neither is there */
static gboolean
ks_price (JsonObject *o, const char *name, gboolean *has, ArbDecimal *out)
{
  g_autofree char *dollars = g_strconcat (name, "_dollars", NULL);
  JsonNode *n = json_object_get_member (o, dollars);
  gint64 cents;

  *has = FALSE;
  if (n != NULL && !JSON_NODE_HOLDS_NULL (n))
    {
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        return FALSE;
      if (*json_node_get_string (n) == '\0')
        return TRUE;
      if (!arb_prediction_price (json_node_get_string (n), out))
        return FALSE;
      *has = TRUE;
      return TRUE;
    }
  n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  cents = json_node_get_int (n);
  if (!arb_prediction_cents (cents, out))
    return FALSE;
  *has = TRUE;
  return TRUE;
}

/* one [price, count] level: ["0.4200","1500.00"] or [42, 1500] (cents) */
static gboolean
ks_level (JsonNode *n, gboolean cents, ArbDecimal *price, ArbDecimal *count)
{
  JsonArray *a;
  JsonNode *p, *c;

  if (!JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) != 2)
    return FALSE;
  a = json_node_get_array (n);
  p = json_array_get_element (a, 0);
  c = json_array_get_element (a, 1);
  if (!JSON_NODE_HOLDS_VALUE (p) || !JSON_NODE_HOLDS_VALUE (c))
    return FALSE;
  if (json_node_get_value_type (p) == G_TYPE_STRING && !cents)
    {
      if (!arb_prediction_price (json_node_get_string (p), price))
        return FALSE;
    }
  else if (json_node_get_value_type (p) == G_TYPE_INT64 && cents)
    {
      if (!arb_prediction_cents (json_node_get_int (p), price))
        return FALSE;
    }
  else
    return FALSE;
  if (json_node_get_value_type (c) == G_TYPE_STRING)
    return arb_prediction_decimal (json_node_get_string (c), count) && count->raw >= 0;
  if (json_node_get_value_type (c) == G_TYPE_INT64)
    return arb_decimal_from_int (json_node_get_int (c), count, NULL) && count->raw >= 0;
  return FALSE;
}

/* a side of a book, whichever dialect: the member @fp ("yes_dollars_fp"),
 * else @dollars ("yes_dollars"), else @cents ("yes"); absent or null is an
 * empty side */
static gboolean
ks_side (JsonObject *o, const char *fp, const char *dollars, const char *cents, GArray *out)
{
  const char *names[] = { fp, dollars, cents };

  for (guint k = 0; k < G_N_ELEMENTS (names); k++)
    {
      JsonNode *n = names[k] != NULL ? json_object_get_member (o, names[k]) : NULL;
      JsonArray *a;

      if (n == NULL)
        continue;
      if (JSON_NODE_HOLDS_NULL (n))
        return TRUE;
      if (!JSON_NODE_HOLDS_ARRAY (n))
        return FALSE;
      a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          ArbDecimal lv[2];
          if (!ks_level (json_array_get_element (a, i), k == 2, &lv[0], &lv[1]))
            return FALSE;
          g_array_append_vals (out, lv, 2);
        }
      return TRUE;
    }
  return TRUE;
}

static gboolean
ks_is_ticker (const char *s)
{
  gsize n = s != NULL ? strlen (s) : 0;

  if (n == 0 || n > 120)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!(g_ascii_isalnum (s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
      return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Market objects from REST (pure)                                          */

typedef struct {
  char      *ticker;
  char      *event_ticker; /* nullable: event_ticker, when usable */
  char      *status;    /* nullable */
  char      *result;    /* nullable, "" → NULL */
  gboolean   has_bid, has_ask, has_last, has_value;
  ArbDecimal yes_bid, yes_ask, last, value;
  gint64     close_us;
  gint64     updated_us;
} KsRest;

static void
ks_rest_clear (KsRest *r)
{
  g_clear_pointer (&r->ticker, g_free);
  g_clear_pointer (&r->event_ticker, g_free);
  g_clear_pointer (&r->status, g_free);
  g_clear_pointer (&r->result, g_free);
}

static gboolean
ks_rest_decode (JsonObject *o, KsRest *out, GError **error)
{
  const char *ticker = arb_ingest_json_get_string (o, "ticker");
  const char *status = arb_ingest_json_get_string (o, "status");
  const char *result = arb_ingest_json_get_string (o, "result");
  const char *event = arb_ingest_json_get_string (o, "event_ticker");
  gboolean has_value = FALSE;

  memset (out, 0, sizeof *out);
  if (!ks_is_ticker (ticker))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "a market without a usable ticker");
      return FALSE;
    }
  if (!ks_price (o, "yes_bid", &out->has_bid, &out->yes_bid) || !ks_price (o, "yes_ask", &out->has_ask, &out->yes_ask)
      || !ks_price (o, "last_price", &out->has_last, &out->last)
      || !ks_price (o, "settlement_value", &has_value, &out->value))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "market %s: a price is not a dollar string in [0, 1]",
                   ticker);
      return FALSE;
    }
  out->has_value = has_value;
  out->ticker = g_strdup (ticker);
  /* an event ticker that is not one is left out: the market counts alone */
  out->event_ticker = ks_is_ticker (event) ? g_strdup (event) : NULL;
  out->status = status != NULL && *status != '\0' ? g_ascii_strdown (status, -1) : NULL;
  out->result = result != NULL && *result != '\0' ? g_ascii_strdown (result, -1) : NULL;
  /* "0.0000" bid and "1.0000" ask mean no bid and no ask */
  out->has_bid = out->has_bid && out->yes_bid.raw > 0;
  out->has_ask = out->has_ask && out->yes_ask.raw > 0 && out->yes_ask.raw < ARB_DECIMAL_SCALE;
  out->has_last = out->has_last && out->last.raw > 0;
  if (!arb_ingest_parse_time_us (arb_ingest_json_get_string (o, "close_time"), &out->close_us))
    out->close_us = 0;
  if (!arb_ingest_parse_time_us (arb_ingest_json_get_string (o, "updated_time"), &out->updated_us))
    out->updated_us = 0;
  return TRUE;
}

typedef struct {
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     yes;    /* settlement of a YES contract; NO gets 1 − yes */
  gboolean       cancel; /* void: both sides back at cost */
  char          *reason; /* owned */
} KsStatus;

/* what a status word and a result mean for our markets (API-REFERENCE.md
 * §4.4, DOMAIN.md §2.2). FALSE for a word this plugin does not know */
static gboolean
ks_status_of (const char *status, const char *result, gboolean has_value, ArbDecimal value, KsSettleOn settle_on,
              KsStatus *out)
{
  gboolean settle;

  memset (out, 0, sizeof *out);
  if (status == NULL)
    return FALSE;
  if (g_str_equal (status, "active") || g_str_equal (status, "open"))
    {
      out->state = ARB_MARKET_OPEN;
      return TRUE;
    }
  if (g_str_equal (status, "initialized") || g_str_equal (status, "unopened"))
    {
      out->state = ARB_MARKET_HALTED;
      out->reason = g_strdup ("not open yet (initialized)");
      return TRUE;
    }
  if (g_str_equal (status, "inactive") || g_str_equal (status, "paused"))
    {
      out->state = ARB_MARKET_HALTED;
      out->reason = g_strdup_printf ("paused (%s)", status);
      return TRUE;
    }
  if (g_str_equal (status, "closed"))
    {
      out->state = ARB_MARKET_CLOSED;
      out->reason = g_strdup ("closed, awaiting determination");
      return TRUE;
    }
  if (g_str_equal (status, "disputed"))
    {
      out->state = ARB_MARKET_DISPUTED;
      out->reason = g_strdup_printf ("the determination%s%s is disputed", result != NULL ? " " : "",
                                     result != NULL ? result : "");
      return TRUE;
    }
  if (!g_str_equal (status, "determined") && !g_str_equal (status, "amended") && !g_str_equal (status, "finalized")
      && !g_str_equal (status, "settled"))
    return FALSE;

  settle = settle_on == KS_SETTLE_DETERMINED || g_str_equal (status, "finalized") || g_str_equal (status, "settled");
  if (result == NULL)
    {
      out->state = ARB_MARKET_CLOSED;
      out->reason = g_strdup_printf ("%s without a result yet", status);
      return TRUE;
    }
  if (!settle)
    {
      out->state = ARB_MARKET_CLOSED;
      out->reason = g_strdup_printf ("%s: %s; settles when finalized (settle_on=finalized)", status, result);
      return TRUE;
    }
  if (g_str_equal (result, "yes") || g_str_equal (result, "no"))
    {
      out->state = ARB_MARKET_RESOLVED;
      out->has_settlement = TRUE;
      out->yes = g_str_equal (result, "yes") ? ARB_DECIMAL_ONE : ARB_DECIMAL_ZERO;
      out->reason = g_strdup_printf ("%s: %s", status, result);
      return TRUE;
    }
  if (g_str_equal (result, "void"))
    {
      /* voided: every position back at its cost (DOMAIN.md §2.2) */
      out->state = ARB_MARKET_CANCELLED;
      out->cancel = TRUE;
      out->reason = g_strdup_printf ("%s: void, refunded at cost", status);
      return TRUE;
    }
  if (g_str_equal (result, "scalar"))
    {
      char buf[ARB_DECIMAL_BUFSIZE];

      if (!has_value)
        {
          out->state = ARB_MARKET_CLOSED;
          out->reason = g_strdup_printf ("%s: scalar, its settlement value not published yet", status);
          return TRUE;
        }
      /* a cancelled game settles both sides at 0.5 ("fair value") */
      out->state = ARB_MARKET_RESOLVED;
      out->has_settlement = TRUE;
      out->yes = value;
      out->reason = g_strdup_printf ("%s: scalar at %s a YES contract", status, arb_decimal_format_short (value, buf));
      return TRUE;
    }
  out->state = ARB_MARKET_CLOSED;
  out->reason = g_strdup_printf ("%s with a result \"%.20s\" this plugin does not know: not settled", status, result);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Markets                                                                  */

static void
ks_market_free (KsMarket *m)
{
  g_free (m->ticker);
  g_free (m->yes_id);
  g_free (m->no_id);
  g_free (m->status);
  g_free (m->result);
  arb_prediction_levels_free (m->yes_bids);
  arb_prediction_levels_free (m->no_bids);
  g_free (m);
}

static void
ks_sub_free (KsSub *s)
{
  arb_prediction_timer_clear (&s->resnapshot_timer);
  g_free (s->channel);
  g_free (s);
}

static void
ks_discovery_free (KsDiscovery *d)
{
  g_free (d->source);
  g_free (d->path);
  g_free (d->problem);
  g_free (d);
}

static KsMarket *
ks_add_market (KsPlugin *self, const char *ticker)
{
  KsMarket *m = g_hash_table_lookup (self->by_ticker, ticker);

  if (m != NULL)
    return m;
  m = g_new0 (KsMarket, 1);
  m->ticker = g_strdup (ticker);
  m->yes_id = g_strdup_printf ("kalshi:%s:yes", ticker);
  m->no_id = g_strdup_printf ("kalshi:%s:no", ticker);
  m->yes_bids = arb_prediction_levels_new ();
  m->no_bids = arb_prediction_levels_new ();
  g_ptr_array_add (self->markets, m);
  g_hash_table_insert (self->by_ticker, m->ticker, m);
  return m;
}

static guint
ks_live (KsPlugin *self)
{
  guint n = 0;

  for (guint i = 0; i < self->markets->len; i++)
    n += !((KsMarket *) g_ptr_array_index (self->markets, i))->final;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Health                                                                   */

static void
ks_report_health (KsPlugin *self)
{
  ArbHealth health = ARB_HEALTH_OK;
  g_autoptr(GString) why = g_string_new (NULL);

  if (!self->running)
    return;
  if (ks_live (self) > 0 && !self->ws_healthy)
    {
      const char *reason = arb_prediction_ws_get_reason (self->ws);
      guint failures = arb_prediction_ws_get_failures (self->ws);
      guint refused = arb_prediction_ws_get_refused_status (self->ws);

      if (reason != NULL)
        {
          gboolean down = failures >= KS_FAILURES_BEFORE_DOWN || refused == 401 || refused == 403;
          health = down ? ARB_HEALTH_DOWN : ARB_HEALTH_DEGRADED;
          g_string_append_printf (why, "%s%s", down ? "" : "reconnecting: ", reason);
        }
      else
        {
          health = ARB_HEALTH_DEGRADED;
          g_string_append_printf (why, "connecting to %s", self->ws_url);
        }
    }
  if (self->rest_problem != NULL)
    {
      ArbHealth h = self->auth_refused ? ARB_HEALTH_DOWN : ARB_HEALTH_DEGRADED;
      health = MAX (health, h);
      g_string_append_printf (why, "%s%s", why->len > 0 ? "; " : "", self->rest_problem);
    }
  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      if (m->unknown && !m->known)
        {
          health = MAX (health, ARB_HEALTH_DEGRADED);
          g_string_append_printf (why, "%sKalshi does not know the market %s", why->len > 0 ? "; " : "", m->ticker);
        }
    }
  for (guint i = 0; i < self->discoveries->len; i++)
    {
      KsDiscovery *d = g_ptr_array_index (self->discoveries, i);
      if (!d->found && d->problem != NULL)
        {
          health = MAX (health, ARB_HEALTH_DEGRADED);
          g_string_append_printf (why, "%s%s", why->len > 0 ? "; " : "", d->problem);
        }
    }
  if (health == ARB_HEALTH_OK)
    arb_instance_set_health (self->inst, ARB_HEALTH_OK, NULL);
  else
    arb_instance_set_health (self->inst, health, "%s", why->str);
}

/* ------------------------------------------------------------------------ */
/* Quotes                                                                   */

static void
ks_publish_one (KsPlugin *self, const char *market_id, gboolean has_bid, ArbDecimal bid, gboolean has_ask,
                ArbDecimal ask, gboolean has_last, ArbDecimal last, gint64 source_us)
{
  g_autoptr(ArbQuote) quote = arb_quote_new (market_id);
  g_autoptr(GError) error = NULL;

  has_bid = has_bid && bid.raw > 0;
  has_ask = has_ask && ask.raw > 0;
  has_last = has_last && last.raw > 0;
  if (has_bid && has_ask && bid.raw > ask.raw)
    {
      arb_instance_counter_add (self->inst, "crossed_quotes_total", 1);
      has_bid = has_ask = FALSE;
    }
  if (!has_bid && !has_ask && !has_last)
    return;
  if (has_bid)
    arb_quote_set_bid (quote, bid);
  if (has_ask)
    arb_quote_set_ask (quote, ask);
  if (has_last)
    arb_quote_set_last (quote, last);
  if (source_us > 0)
    arb_quote_set_source_time (quote, source_us);
  if (self->publish_quote (self->inst, quote, &error))
    {
      arb_instance_counter_add (self->inst, "quotes_published_total", 1);
      return;
    }
  arb_instance_counter_add (self->inst, "publish_errors_total", 1);
  {
    g_autofree char *key = g_strdup_printf ("refused:%s", market_id);
    if (ks_first (self, key))
      arb_warning (self->inst, "the host refused the quote for %s: %s (later refusals are only counted, in "
                   "publish_errors_total)", market_id, error->message);
  }
}

/* the YES top of book: the book's when it is valid, else the ticker's */
static void
ks_top (KsMarket *m, gboolean *has_bid, ArbDecimal *bid, gboolean *has_ask, ArbDecimal *ask)
{
  if (m->book_valid)
    {
      ArbDecimal best_no;

      *has_bid = arb_prediction_levels_max (m->yes_bids, bid, NULL);
      *has_ask = arb_prediction_levels_max (m->no_bids, &best_no, NULL);
      if (*has_ask)
        *ask = arb_prediction_complement (best_no);
      return;
    }
  *has_bid = m->t_has_bid;
  *bid = m->t_bid;
  *has_ask = m->t_has_ask;
  *ask = m->t_ask;
}

static void
ks_publish (KsPlugin *self, KsMarket *m, gint64 source_us)
{
  gboolean hb, ha;
  ArbDecimal b = ARB_DECIMAL_ZERO, a = ARB_DECIMAL_ZERO;

  if (m->final)
    return;
  ks_top (m, &hb, &b, &ha, &a);
  /* YES as quoted; NO as its complement: bid 1 − YES ask, ask 1 − YES bid */
  ks_publish_one (self, m->yes_id, hb, b, ha, a, m->has_last, m->last, source_us);
  ks_publish_one (self, m->no_id, ha && a.raw < ARB_DECIMAL_SCALE, arb_prediction_complement (a), hb,
                  arb_prediction_complement (b), m->has_last && m->last.raw < ARB_DECIMAL_SCALE,
                  arb_prediction_complement (m->last), source_us);
  m->published_us = g_get_monotonic_time ();
}

/* ------------------------------------------------------------------------ */
/* Statuses                                                                 */

static void ks_ws_update (KsPlugin *self);

static void
ks_apply_status (KsPlugin *self, KsMarket *m, gint64 when_us)
{
  KsStatus st;
  ArbDecimal no;
  gboolean was_final = m->final;

  if (!ks_status_of (m->status, m->result, m->has_value, m->value, self->settle_on, &st))
    {
      g_autofree char *key = g_strdup_printf ("status:%s", m->status != NULL ? m->status : "");
      if (ks_first (self, key))
        arb_warning (self->inst, "%s: a status \"%.30s\" this plugin does not know; its last known status stands",
                     m->ticker, m->status != NULL ? m->status : "");
      return;
    }
  if (was_final && !arb_prediction_state_is_final (st.state))
    {
      /* a dispute or an amendment after the positions were settled */
      g_autofree char *key = g_strdup_printf ("after-final:%s", m->ticker);
      if (ks_first (self, key))
        arb_warning (self->inst, "%s is %s after it was settled; positions were settled on the earlier outcome: "
                     "review them by hand", m->ticker, m->status);
    }
  no = arb_prediction_complement (st.yes);
  arb_prediction_status_publish (self->status, m->yes_id, st.state, st.has_settlement ? &st.yes : NULL, st.reason,
                                 st.state == ARB_MARKET_OPEN ? 0 : when_us);
  arb_prediction_status_publish (self->status, m->no_id, st.state, st.has_settlement ? &no : NULL, st.reason,
                                 st.state == ARB_MARKET_OPEN ? 0 : when_us);
  m->final = arb_prediction_state_is_final (st.state)
             && (g_str_equal (m->status, "finalized") || g_str_equal (m->status, "settled"));
  /* with settle_on=determined the market is settled now, but a dispute may
   * still come: it stays followed (over REST) until finalized */
  g_free (st.reason);
  if (m->final && !was_final)
    {
      arb_info (self->inst, "%s is final; no longer followed", m->ticker);
      ks_ws_update (self);
    }
}

static void
ks_set_status (KsMarket *m, const char *status, const char *result)
{
  if (status != NULL)
    {
      g_free (m->status);
      m->status = g_ascii_strdown (status, -1);
    }
  if (result != NULL)
    {
      g_free (m->result);
      m->result = *result != '\0' ? g_ascii_strdown (result, -1) : NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* REST                                                                     */

static gboolean
ks_sign (KsPlugin *self, SoupMessage *msg, GError **error)
{
  g_autofree char *ts = NULL;
  g_autofree char *sig = NULL;
  SoupMessageHeaders *h = soup_message_get_request_headers (msg);
  const char *path = g_uri_get_path (soup_message_get_uri (msg));

  if (self->key == NULL)
    return TRUE;
  ts = g_strdup_printf ("%" G_GINT64_FORMAT, arb_now_us () / 1000);
  sig = arb_kalshi_sign (self->key, ts, soup_message_get_method (msg), path, error);
  if (sig == NULL)
    return FALSE;
  soup_message_headers_replace (h, "KALSHI-ACCESS-KEY", self->key_id);
  soup_message_headers_replace (h, "KALSHI-ACCESS-TIMESTAMP", ts);
  soup_message_headers_replace (h, "KALSHI-ACCESS-SIGNATURE", sig);
  return TRUE;
}

static gboolean
ks_read_key (KsPlugin *self, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(ArbKalshiKey) key = NULL;
  char *pem;

  if (self->key_id == NULL)
    return TRUE;
  pem = arb_instance_get_secret (self->inst, "private_key", &local);
  if (pem == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "private_key: %s",
                   local != NULL ? local->message
                                 : "api_key_id is set but private_key is not: set private_key_file=PATH (the .key "
                                   "file Kalshi gave with the key id) or private_key_env=VARIABLE");
      return FALSE;
    }
  key = arb_kalshi_key_new (pem, strlen (pem), &local);
  arb_secret_free (pem);
  if (key == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "private_key: %s", local->message);
      return FALSE;
    }
  arb_kalshi_key_free (self->key);
  self->key = g_steal_pointer (&key);
  return TRUE;
}

/* take one token of the budget; FALSE when there is none now */
static gboolean
ks_take_token (KsPlugin *self)
{
  gint64 now = g_get_monotonic_time ();
  double cap = (double) self->budget_per_min;

  self->tokens = MIN (cap, self->tokens + (double) (now - self->tokens_at_us) * cap / (60.0 * G_USEC_PER_SEC));
  self->tokens_at_us = now;
  if (self->tokens < 1.0)
    {
      arb_instance_counter_add (self->inst, "budget_deferred_total", 1);
      return FALSE;
    }
  self->tokens -= 1.0;
  return TRUE;
}

static void ks_rest_failed (KsPlugin *self, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
ks_rest_failed (KsPlugin *self, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_free (self->rest_problem);
  self->rest_problem = g_strdup_vprintf (format, args);
  va_end (args);
  self->rest_failures++;
}

static void
ks_rest_ok (KsPlugin *self)
{
  self->rest_failures = 0;
  self->auth_refused = FALSE;
  g_clear_pointer (&self->rest_problem, g_free);
}

/* an HTTP error answer: 429 holds REST back, 401/403 re-read the key */
static void
ks_rest_error (KsPlugin *self, guint status, const char *reason_phrase, SoupMessageHeaders *headers, GBytes *body)
{
  gsize length = 0;
  const char *text = body != NULL ? g_bytes_get_data (body, &length) : NULL;
  const char *phrase = arb_ingest_status_phrase (status, reason_phrase);
  ArbIngestErrorBody e;
  g_autofree char *details = NULL;

  arb_ingest_error_body_decode (text, length, &e);
  /* the nested shape's details say which authentication failed */
  if (text != NULL && length > 0)
    {
      g_autoptr(JsonNode) root = arb_ingest_json_parse (text, length, NULL);
      JsonObject *err = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                            ? arb_ingest_json_get_object (json_node_get_object (root), "error")
                            : NULL;
      const char *d = err != NULL ? arb_ingest_json_get_string (err, "details") : NULL;
      if (d != NULL)
        details = arb_ingest_clean_text (d, -1, 120);
    }
  if (status == 429)
    {
      const char *retry = headers != NULL ? soup_message_headers_get_one (headers, "Retry-After") : NULL;
      gint64 wait_ms = 0;

      if (!arb_ingest_retry_after_ms (retry, arb_now_us (), &wait_ms) || wait_ms <= 0)
        wait_ms = MAX (self->rest_interval_ms, 10000);
      self->hold_until_us = g_get_monotonic_time () + wait_ms * 1000;
      arb_instance_counter_add (self->inst, "rate_limited_total", 1);
      /* nothing left in the bucket either */
      self->tokens = 0;
    }
  if (status == 401 || status == 403)
    {
      self->auth_refused = TRUE;
      self->reload_key = TRUE;
    }
  ks_rest_failed (self, "Kalshi HTTP %u%s%s%s%s%s%s%s", status, phrase != NULL ? " " : "", phrase != NULL ? phrase : "",
                  e.message != NULL ? ": " : "", e.message != NULL ? e.message : "", details != NULL ? " (" : "",
                  details != NULL ? details : "", details != NULL ? ")" : "");
  arb_ingest_error_body_clear (&e);
}

static void
ks_rest_http_error (KsPlugin *self, SoupMessage *msg, GBytes *body)
{
  ks_rest_error (self, soup_message_get_status (msg), soup_message_get_reason_phrase (msg),
                 soup_message_get_response_headers (msg), body);
}

/* the markets of a REST answer: {"markets":[…]}, {"market":{…}},
 * {"events":[{…,"markets":[…]}]}, {"event":{…},"markets":[…]}; each market
 * object is handed to @func. FALSE when the answer has none of these */
static gboolean
ks_each_market (JsonNode *root, void (*func) (KsPlugin *, JsonObject *, gpointer), KsPlugin *self, gpointer data)
{
  JsonObject *o;
  JsonNode *n;
  gboolean any = FALSE;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  o = json_node_get_object (root);
  if ((n = json_object_get_member (o, "market")) != NULL && JSON_NODE_HOLDS_OBJECT (n))
    {
      func (self, json_node_get_object (n), data);
      return TRUE;
    }
  if ((n = json_object_get_member (o, "markets")) != NULL && JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        if (JSON_NODE_HOLDS_OBJECT (json_array_get_element (a, i)))
          func (self, json_node_get_object (json_array_get_element (a, i)), data);
      any = TRUE;
    }
  if ((n = json_object_get_member (o, "events")) != NULL && JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          JsonNode *ms = JSON_NODE_HOLDS_OBJECT (e) ? json_object_get_member (json_node_get_object (e), "markets")
                                                    : NULL;
          if (ms == NULL || !JSON_NODE_HOLDS_ARRAY (ms))
            continue;
          for (guint j = 0; j < json_array_get_length (json_node_get_array (ms)); j++)
            {
              JsonNode *me = json_array_get_element (json_node_get_array (ms), j);
              if (JSON_NODE_HOLDS_OBJECT (me))
                func (self, json_node_get_object (me), data);
            }
        }
      any = TRUE;
    }
  return any;
}

typedef struct {
  gboolean discover; /* unknown tickers are followed */
  guint    taken;
  guint    bad;
} KsTake;

static void
ks_take_rest_market (KsPlugin *self, JsonObject *o, gpointer data)
{
  KsTake *take = data;
  g_autoptr(GError) error = NULL;
  KsMarket *m;
  KsRest r;

  if (!ks_rest_decode (o, &r, &error))
    {
      take->bad++;
      ks_malformed (self, "REST market", error->message);
      return;
    }
  m = g_hash_table_lookup (self->by_ticker, r.ticker);
  if (m == NULL && take->discover)
    {
      m = ks_add_market (self, r.ticker);
      arb_info (self->inst, "following %s", r.ticker);
    }
  if (m == NULL)
    {
      ks_rest_clear (&r);
      return;
    }
  take->taken++;
  m->known = TRUE;
  m->unknown = FALSE;
  if (r.event_ticker != NULL)
    {
      /* both sides; once per change (the status helper remembers) */
      g_autofree char *event = g_strdup_printf ("kalshi-event:%s", r.event_ticker);
      arb_prediction_status_publish_event (self->status, m->yes_id, event);
      arb_prediction_status_publish_event (self->status, m->no_id, event);
    }
  if (r.close_us != 0)
    m->close_us = r.close_us;
  ks_set_status (m, r.status, r.result != NULL ? r.result : "");
  if (r.has_value)
    {
      m->has_value = TRUE;
      m->value = r.value;
    }
  ks_apply_status (self, m, r.updated_us);
  /* REST prices only where the socket brings none, and only while trading */
  if (!self->ws_healthy && r.status != NULL && g_str_equal (r.status, "active") && !m->final)
    {
      m->t_has_bid = r.has_bid;
      m->t_bid = r.yes_bid;
      m->t_has_ask = r.has_ask;
      m->t_ask = r.yes_ask;
      if (r.has_last)
        {
          m->has_last = TRUE;
          m->last = r.last;
        }
      m->book_valid = FALSE;
      ks_publish (self, m, 0);
      arb_instance_counter_add (self->inst, "rest_quotes_total", 1);
    }
  ks_rest_clear (&r);
}

static void
ks_on_markets (gpointer data, gpointer tag, SoupMessage *msg, GBytes *body, const GError *error)
{
  KsPlugin *self = data;
  GStrv tickers = tag;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  KsTake take = { FALSE, 0, 0 };
  gsize length = 0;
  const char *text;

  for (guint i = 0; tickers[i] != NULL; i++)
    {
      KsMarket *m = g_hash_table_lookup (self->by_ticker, tickers[i]);
      if (m != NULL)
        m->in_flight = FALSE;
    }
  if (error != NULL)
    {
      ks_rest_failed (self, "Kalshi REST: %s", error->message);
      ks_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) == 404 && g_strv_length (tickers) == 1)
    {
      /* GET /markets/{ticker}: this market is the problem, not Kalshi */
      KsMarket *m = g_hash_table_lookup (self->by_ticker, tickers[0]);
      if (m != NULL)
        m->unknown = TRUE;
      ks_rest_ok (self);
      ks_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      ks_rest_http_error (self, msg, body);
      ks_report_health (self);
      return;
    }
  text = g_bytes_get_data (body, &length);
  root = arb_ingest_json_parse (text, length, &local);
  if (root == NULL || !ks_each_market (root, ks_take_rest_market, self, &take))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      ks_rest_failed (self, "Kalshi REST: %s", local != NULL ? local->message : "an answer without markets");
      ks_report_health (self);
      return;
    }
  ks_rest_ok (self);
  for (guint i = 0; tickers[i] != NULL; i++)
    {
      KsMarket *m = g_hash_table_lookup (self->by_ticker, tickers[i]);
      if (m != NULL && !m->known)
        m->unknown = TRUE;
    }
  ks_report_health (self);
}

static SoupMessage *
ks_rest_message (KsPlugin *self, const char *path_and_query)
{
  g_autofree char *uri = g_strconcat (self->base_url, path_and_query, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, uri);

  if (msg == NULL)
    return NULL;
  if (!ks_sign (self, msg, &error))
    {
      ks_rest_failed (self, "Kalshi: %s", error->message);
      return NULL;
    }
  return g_steal_pointer (&msg);
}

/* GET /markets?tickers=… for @list (KsMarket), or GET /markets/{ticker}
 * for a single one (whose 404 then says the ticker is wrong) */
static void
ks_fetch_markets (KsPlugin *self, GPtrArray *list)
{
  for (guint start = 0; start < list->len; start += KS_BATCH)
    {
      g_autoptr(GString) q = g_string_new (list->len - start == 1 ? "/markets/" : "/markets?tickers=");
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
      SoupMessage *msg;

      if (!ks_take_token (self))
        return;
      for (guint i = start; i < MIN (list->len, start + KS_BATCH); i++)
        {
          KsMarket *m = g_ptr_array_index (list, i);
          g_string_append_printf (q, "%s%s", i > start ? "," : "", m->ticker);
          g_strv_builder_add (b, m->ticker);
          m->in_flight = TRUE;
        }
      msg = ks_rest_message (self, q->str);
      if (msg == NULL)
        {
          for (guint i = start; i < MIN (list->len, start + KS_BATCH); i++)
            ((KsMarket *) g_ptr_array_index (list, i))->in_flight = FALSE;
          return;
        }
      arb_prediction_http_send (self->http, msg, ks_on_markets, self, g_strv_builder_end (b),
                                (GDestroyNotify) g_strfreev);
    }
}

static void
ks_on_discovered (gpointer data, gpointer tag, SoupMessage *msg, GBytes *body, const GError *error)
{
  KsPlugin *self = data;
  KsDiscovery *d = tag;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  KsTake take = { TRUE, 0, 0 };
  gsize length = 0;
  const char *text;

  d->in_flight = FALSE;
  if (error != NULL)
    {
      ks_rest_failed (self, "Kalshi REST: %s", error->message);
      ks_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) == 404)
    {
      g_free (d->problem);
      d->problem = g_strdup_printf ("Kalshi has no %s (HTTP 404)", d->source);
      ks_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      ks_rest_http_error (self, msg, body);
      ks_report_health (self);
      return;
    }
  text = g_bytes_get_data (body, &length);
  root = arb_ingest_json_parse (text, length, &local);
  if (root == NULL || !ks_each_market (root, ks_take_rest_market, self, &take))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      ks_rest_failed (self, "Kalshi REST (%s): %s", d->source,
                      local != NULL ? local->message : "no markets in the answer");
      ks_report_health (self);
      return;
    }
  ks_rest_ok (self);
  g_free (d->problem);
  d->problem = NULL;
  if (take.taken > 0)
    d->found = TRUE;
  else
    d->problem = g_strdup_printf ("Kalshi has no open market in %s", d->source);
  ks_ws_update (self);
  ks_report_health (self);
}

/* which markets need REST this round; see the top of the file */
static void
ks_rest_round (KsPlugin *self)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new ();
  gint64 now = g_get_monotonic_time ();
  gint64 real_now = arb_now_us ();
  gboolean full;

  if (self->hold_until_us > now)
    return;
  if (self->reload_key)
    {
      g_autoptr(GError) error = NULL;
      if (!ks_read_key (self, &error))
        ks_rest_failed (self, "Kalshi: %s", error->message);
      self->reload_key = FALSE;
    }
  for (guint i = 0; i < self->discoveries->len; i++)
    {
      KsDiscovery *d = g_ptr_array_index (self->discoveries, i);
      SoupMessage *msg;

      if (d->found || d->in_flight || !ks_take_token (self))
        continue;
      msg = ks_rest_message (self, d->path);
      if (msg == NULL)
        continue;
      d->in_flight = TRUE;
      arb_prediction_http_send (self->http, msg, ks_on_discovered, self, d, NULL);
    }
  /* everything while the socket is down, at rest_interval */
  full = !self->ws_healthy && now - self->last_full_rest_us >= self->rest_interval_ms * 1000 - 50000;
  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      gboolean need;

      if (m->final || m->in_flight)
        continue;
      need = full || !m->known                                     /* the first status */
             || (m->status != NULL && !g_str_equal (m->status, "active") && !g_str_equal (m->status, "inactive")
                 && !g_str_equal (m->status, "initialized"))        /* disputes, amendments, finalization */
             || (m->close_us != 0 && real_now >= m->close_us);        /* closing has no lifecycle event */
      if (need)
        g_ptr_array_add (list, m);
    }
  if (full)
    self->last_full_rest_us = now;
  if (list->len > 0)
    ks_fetch_markets (self, list);
}

static gboolean ks_on_rest_timer (gpointer data);

static void
ks_schedule_rest (KsPlugin *self)
{
  gint64 delay = self->ws_healthy ? self->status_interval_ms : MIN (self->rest_interval_ms, self->status_interval_ms);
  gint64 hold = (self->hold_until_us - g_get_monotonic_time ()) / 1000;

  for (guint i = 1; i < self->rest_failures && delay < 5 * 60 * 1000; i++)
    delay *= 2;
  delay = MAX (delay, hold);
  arb_prediction_timer_clear (&self->rest_timer);
  self->rest_timer = arb_prediction_timer_new (self->inst, delay, ks_on_rest_timer, self);
}

static gboolean
ks_on_rest_timer (gpointer data)
{
  KsPlugin *self = data;
  gint64 hold;

  g_clear_pointer (&self->rest_timer, g_source_unref);
  if (!self->running)
    return G_SOURCE_REMOVE;
  hold = arb_prediction_hold_off_ms (self->inst);
  if (!self->ws_healthy && hold > 0)
    {
      /* the feed's breaker is open: REST quotes would only load the upstream */
      arb_instance_counter_add (self->inst, "held_off_total", 1);
      arb_prediction_timer_clear (&self->rest_timer);
      self->rest_timer = arb_prediction_timer_new (self->inst, hold, ks_on_rest_timer, self);
      return G_SOURCE_REMOVE;
    }
  ks_rest_round (self);
  ks_schedule_rest (self);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* The socket                                                               */

static KsSub *
ks_sub (KsPlugin *self, guint sid, const char *channel)
{
  KsSub *s = g_hash_table_lookup (self->subs, GUINT_TO_POINTER (sid));

  if (s == NULL)
    {
      s = g_new0 (KsSub, 1);
      s->self = self;
      s->sid = sid;
      s->channel = g_strdup (channel != NULL ? channel : "");
      g_hash_table_insert (self->subs, GUINT_TO_POINTER (sid), s);
    }
  else if (channel != NULL && *s->channel == '\0')
    {
      g_free (s->channel);
      s->channel = g_strdup (channel);
    }
  return s;
}

static guint
ks_send_command (KsPlugin *self, const char *channel, const char *params_json)
{
  guint id = ++self->next_id;
  g_autofree char *text = NULL;

  if (g_str_equal (channel, "update_subscription") || g_str_equal (channel, "unsubscribe"))
    text = g_strdup_printf ("{\"id\":%u,\"cmd\":\"%s\",\"params\":%s}", id, channel, params_json);
  else
    text = g_strdup_printf ("{\"id\":%u,\"cmd\":\"subscribe\",\"params\":%s}", id, params_json);
  if (!arb_prediction_ws_send (self->ws, text))
    return 0;
  g_hash_table_insert (self->commands, GUINT_TO_POINTER (id), g_strdup (channel));
  return id;
}

/* subscribes the markets not yet subscribed on this session: ticker and
 * (with a key) orderbook_delta; the lifecycle channel once per session */
static void
ks_subscribe_new (KsPlugin *self, gboolean session_start)
{
  g_autoptr(GString) tickers = g_string_new ("[");
  guint n = 0;

  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      if (m->final || m->subscribed)
        continue;
      g_string_append_printf (tickers, "%s\"%s\"", n > 0 ? "," : "", m->ticker);
      m->subscribed = TRUE;
      n++;
    }
  g_string_append_c (tickers, ']');
  if (n > 0)
    {
      g_autofree char *p1 = g_strdup_printf ("{\"channels\":[\"ticker\"],\"market_tickers\":%s}", tickers->str);
      ks_send_command (self, "ticker", p1);
      if (self->want_orderbook && self->key != NULL && !self->orderbook_refused)
        {
          g_autofree char *p2 = g_strdup_printf ("{\"channels\":[\"orderbook_delta\"],\"market_tickers\":%s}",
                                                 tickers->str);
          ks_send_command (self, "orderbook_delta", p2);
        }
      arb_instance_counter_add (self->inst, "subscriptions_total", 1);
    }
  if (session_start)
    ks_send_command (self, "market_lifecycle_v2", "{\"channels\":[\"market_lifecycle_v2\"]}");
}

static void
ks_ws_opened (gpointer data)
{
  KsPlugin *self = data;

  self->next_id = 0;
  g_hash_table_remove_all (self->subs);
  g_hash_table_remove_all (self->commands);
  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      m->subscribed = FALSE;
      m->book_valid = FALSE;
    }
  ks_subscribe_new (self, TRUE);
}

static gboolean ks_on_resnapshot_timer (gpointer data);

/* a gap in @s: every book it feeds is suspect until a new snapshot */
static void
ks_resnapshot (KsPlugin *self, KsSub *s, const char *why)
{
  g_autofree char *params = g_strdup_printf ("{\"sids\":[%u],\"action\":\"get_snapshot\"}", s->sid);

  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      if (m->book_sid == s->sid && m->book_valid)
        {
          m->book_valid = FALSE;
          ks_publish (self, m, 0);
        }
    }
  if (s->resnapshot)
    return;
  s->resnapshot = TRUE;
  arb_instance_counter_add (self->inst, "resnapshots_total", 1);
  if (ks_first (self, "gap"))
    arb_message (self->inst, "order book subscription %u: %s; asking for a new snapshot (later gaps are only "
                 "counted, in seq_gaps_total and resnapshots_total)", s->sid, why);
  ks_send_command (self, "update_subscription", params);
  arb_prediction_timer_clear (&s->resnapshot_timer);
  s->resnapshot_timer = arb_prediction_timer_new (self->inst, KS_RESNAPSHOT_TIMEOUT_MS, ks_on_resnapshot_timer, s);
}

/* the book of @m from @sides (a snapshot's msg, or REST's orderbook_fp);
 * FALSE, with the book untouched, when a level is not [price, count] */
static gboolean
ks_install_book (KsMarket *m, JsonObject *sides)
{
  g_autoptr(GArray) yes = g_array_new (FALSE, FALSE, sizeof (ArbDecimal));
  g_autoptr(GArray) no = g_array_new (FALSE, FALSE, sizeof (ArbDecimal));

  if (!ks_side (sides, "yes_dollars_fp", "yes_dollars", "yes", yes)
      || !ks_side (sides, "no_dollars_fp", "no_dollars", "no", no))
    return FALSE;
  arb_prediction_levels_clear (m->yes_bids);
  arb_prediction_levels_clear (m->no_bids);
  for (guint i = 0; i + 1 < yes->len; i += 2)
    arb_prediction_levels_set (m->yes_bids, g_array_index (yes, ArbDecimal, i),
                               g_array_index (yes, ArbDecimal, i + 1));
  for (guint i = 0; i + 1 < no->len; i += 2)
    arb_prediction_levels_set (m->no_bids, g_array_index (no, ArbDecimal, i), g_array_index (no, ArbDecimal, i + 1));
  m->book_valid = TRUE;
  return TRUE;
}

static void
ks_on_snapshot (KsPlugin *self, KsSub *s, gint64 seq, JsonObject *msg)
{
  const char *ticker = arb_ingest_json_get_string (msg, "market_ticker");
  KsMarket *m = ticker != NULL ? g_hash_table_lookup (self->by_ticker, ticker) : NULL;
  g_autoptr(GArray) probe = g_array_new (FALSE, FALSE, sizeof (ArbDecimal));

  /* checked whole first: a malformed snapshot moves neither book nor seq */
  if (ticker == NULL || !ks_side (msg, "yes_dollars_fp", "yes_dollars", "yes", probe)
      || !ks_side (msg, "no_dollars_fp", "no_dollars", "no", probe))
    {
      ks_malformed (self, "orderbook_snapshot", "no market_ticker, or a level that is not [price, count]");
      return;
    }
  if (seq > 0)
    s->next_seq = seq + 1;
  if (m == NULL)
    return;
  ks_install_book (m, msg);
  m->book_sid = s->sid;
  arb_instance_counter_add (self->inst, "snapshots_total", 1);
  if (s->resnapshot)
    {
      gboolean all = TRUE;
      for (guint i = 0; i < self->markets->len; i++)
        {
          KsMarket *o = g_ptr_array_index (self->markets, i);
          all &= o->book_sid != s->sid || o->book_valid || o->final;
        }
      if (all)
        {
          s->resnapshot = FALSE;
          arb_prediction_timer_clear (&s->resnapshot_timer);
        }
    }
  ks_publish (self, m, 0);
}

static void
ks_on_delta (KsPlugin *self, KsSub *s, gint64 seq, JsonObject *msg)
{
  const char *ticker = arb_ingest_json_get_string (msg, "market_ticker");
  const char *side = arb_ingest_json_get_string (msg, "side");
  KsMarket *m;
  ArbDecimal price, delta;
  gboolean has_price = FALSE;
  gint64 time_us = 0, cents_delta;

  if (ticker == NULL || side == NULL || (!g_str_equal (side, "yes") && !g_str_equal (side, "no"))
      || !ks_price (msg, "price", &has_price, &price) || !has_price)
    {
      ks_malformed (self, "orderbook_delta", "market_ticker, side or price missing or not usable");
      return;
    }
  if (arb_ingest_json_get_string (msg, "delta_fp") != NULL)
    {
      if (!arb_prediction_decimal (arb_ingest_json_get_string (msg, "delta_fp"), &delta))
        {
          ks_malformed (self, "orderbook_delta", "delta_fp is not a decimal string");
          return;
        }
    }
  else if (arb_ingest_json_get_int (msg, "delta", &cents_delta) && arb_decimal_from_int (cents_delta, &delta, NULL))
    ;
  else
    {
      ks_malformed (self, "orderbook_delta", "no delta_fp (nor an integer delta)");
      return;
    }
  /* the sequence first: a malformed message does not consume one */
  if (seq > 0 && s->next_seq > 0)
    {
      if (seq < s->next_seq)
        {
          arb_instance_counter_add (self->inst, "seq_duplicates_total", 1);
          return;
        }
      if (seq > s->next_seq)
        {
          g_autofree char *why = g_strdup_printf ("seq %" G_GINT64_FORMAT " came where %" G_GINT64_FORMAT
                                                  " was due", seq, s->next_seq);
          arb_instance_counter_add (self->inst, "seq_gaps_total", 1);
          s->next_seq = seq + 1;
          ks_resnapshot (self, s, why);
          return;
        }
      s->next_seq = seq + 1;
    }
  m = g_hash_table_lookup (self->by_ticker, ticker);
  if (m == NULL || !m->book_valid || m->book_sid != s->sid)
    return;
  if (!arb_prediction_levels_add (g_str_equal (side, "yes") ? m->yes_bids : m->no_bids, price, delta))
    {
      /* a delta that takes a level below zero: our book is wrong */
      ks_resnapshot (self, s, "a delta took a level below zero");
      return;
    }
  arb_prediction_ms_member (msg, "ts_ms", &time_us);
  if (time_us > 0)
    m->time_us = time_us;
  arb_instance_counter_add (self->inst, "deltas_total", 1);
  ks_publish (self, m, m->time_us);
}

static void
ks_on_ticker (KsPlugin *self, JsonObject *msg)
{
  const char *ticker = arb_ingest_json_get_string (msg, "market_ticker");
  KsMarket *m;
  gboolean hb = FALSE, ha = FALSE, hl = FALSE;
  ArbDecimal b = ARB_DECIMAL_ZERO, a = ARB_DECIMAL_ZERO, l = ARB_DECIMAL_ZERO;
  gint64 time_us = 0, ts;

  if (ticker == NULL || !ks_price (msg, "yes_bid", &hb, &b) || !ks_price (msg, "yes_ask", &ha, &a)
      || !ks_price (msg, "price", &hl, &l))
    {
      ks_malformed (self, "ticker", "market_ticker missing or a price that is not a dollar string in [0, 1]");
      return;
    }
  m = g_hash_table_lookup (self->by_ticker, ticker);
  if (m == NULL)
    return;
  if (!arb_prediction_ms_member (msg, "ts_ms", &time_us) && arb_ingest_json_get_int (msg, "ts", &ts) && ts > 0)
    time_us = ts * G_USEC_PER_SEC;
  m->t_has_bid = hb && b.raw > 0;
  m->t_bid = b;
  m->t_has_ask = ha && a.raw > 0 && a.raw < ARB_DECIMAL_SCALE;
  m->t_ask = a;
  if (hl && l.raw > 0)
    {
      m->has_last = TRUE;
      m->last = l;
    }
  if (time_us > 0)
    m->time_us = time_us;
  ks_publish (self, m, m->time_us);
}

static void
ks_on_trade (KsPlugin *self, JsonObject *msg)
{
  const char *ticker = arb_ingest_json_get_string (msg, "market_ticker");
  KsMarket *m;
  gboolean hl = FALSE;
  ArbDecimal l;
  gint64 time_us = 0;

  if (ticker == NULL || !ks_price (msg, "yes_price", &hl, &l) || !hl)
    {
      ks_malformed (self, "trade", "market_ticker or yes_price missing or not usable");
      return;
    }
  m = g_hash_table_lookup (self->by_ticker, ticker);
  if (m == NULL || l.raw == 0)
    return;
  arb_prediction_ms_member (msg, "ts_ms", &time_us);
  m->has_last = TRUE;
  m->last = l;
  if (time_us > 0)
    m->time_us = time_us;
  ks_publish (self, m, m->time_us);
}

static void
ks_on_lifecycle (KsPlugin *self, JsonObject *msg)
{
  const char *ticker = arb_ingest_json_get_string (msg, "market_ticker");
  const char *type = arb_ingest_json_get_string (msg, "event_type");
  KsMarket *m;
  gint64 when = 0, ts = 0;

  if (ticker == NULL || type == NULL)
    {
      ks_malformed (self, "market_lifecycle_v2", "no market_ticker or event_type");
      return;
    }
  m = g_hash_table_lookup (self->by_ticker, ticker);
  if (m == NULL)
    return;
  arb_instance_counter_add (self->inst, "lifecycle_events_total", 1);
  if (g_str_equal (type, "deactivated") || g_str_equal (type, "activated"))
    {
      gboolean off = g_str_equal (type, "deactivated");
      JsonNode *n = json_object_get_member (msg, "is_deactivated");

      /* is_deactivated, when there, says it outright */
      if (n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_BOOLEAN)
        off = json_node_get_boolean (n);
      ks_set_status (m, off ? "inactive" : "active", NULL);
      ks_apply_status (self, m, arb_now_us ());
    }
  else if (g_str_equal (type, "close_date_updated"))
    {
      if (arb_ingest_json_get_int (msg, "close_ts", &ts) && ts > 0)
        m->close_us = ts * G_USEC_PER_SEC;
    }
  else if (g_str_equal (type, "determined"))
    {
      const char *result = arb_ingest_json_get_string (msg, "result");
      const char *value = arb_ingest_json_get_string (msg, "settlement_value");
      ArbDecimal v;

      if (result == NULL)
        {
          ks_malformed (self, "market_lifecycle_v2", "determined without a result");
          return;
        }
      if (value != NULL && *value != '\0')
        {
          if (!arb_prediction_price (value, &v))
            {
              ks_malformed (self, "market_lifecycle_v2", "settlement_value is not a dollar string in [0, 1]");
              return;
            }
          m->has_value = TRUE;
          m->value = v;
        }
      if (arb_ingest_json_get_int (msg, "determination_ts", &ts) && ts > 0)
        when = ts * G_USEC_PER_SEC;
      ks_set_status (m, "determined", result);
      ks_apply_status (self, m, when);
    }
  else if (g_str_equal (type, "settled"))
    {
      if (arb_ingest_json_get_int (msg, "settled_ts", &ts) && ts > 0)
        when = ts * G_USEC_PER_SEC;
      ks_set_status (m, "finalized", NULL);
      ks_apply_status (self, m, when);
    }
}

static void
ks_on_error_reply (KsPlugin *self, JsonObject *root)
{
  JsonObject *msg = arb_ingest_json_get_object (root, "msg");
  gint64 code = 0, id = 0;
  const char *text = msg != NULL ? arb_ingest_json_get_string (msg, "msg") : NULL;
  const char *channel;
  g_autofree char *key = NULL;

  if (msg != NULL)
    arb_ingest_json_get_int (msg, "code", &code);
  arb_ingest_json_get_int (root, "id", &id);
  channel = g_hash_table_lookup (self->commands, GUINT_TO_POINTER ((guint) id));
  arb_instance_counter_add (self->inst, "ws_errors_total", 1);
  if (code == 6)
    return; /* already subscribed */
  key = g_strdup_printf ("error:%" G_GINT64_FORMAT, code);
  if (ks_first (self, key))
    arb_warning (self->inst, "Kalshi refused a command (%s): error %" G_GINT64_FORMAT ": %s",
                 channel != NULL ? channel : "?", code, text != NULL ? text : "no message");
  if (code == 9 && g_strcmp0 (channel, "orderbook_delta") == 0)
    self->orderbook_refused = TRUE;
  /* 10, 17 and 25 end the subscription: start the session over */
  if (code == 10 || code == 17 || code == 25)
    arb_prediction_ws_restart (self->ws, "Kalshi ended a subscription (error 10, 17 or 25): subscribing again");
}

static void
ks_on_text (KsPlugin *self, const char *data, gsize length)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = arb_ingest_json_parse (data, length, &error);
  JsonObject *o, *msg;
  const char *type;
  gint64 sid = 0, seq = 0;

  if (root == NULL)
    {
      ks_malformed (self, "frame that is not JSON", error->message);
      return;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      ks_malformed (self, "frame that is not an object", arb_ingest_json_kind (root));
      return;
    }
  o = json_node_get_object (root);
  type = arb_ingest_json_get_string (o, "type");
  if (type == NULL)
    {
      ks_malformed (self, "frame without a type", "no type");
      return;
    }
  arb_instance_counter_add (self->inst, "messages_total", 1);
  arb_ingest_json_get_int (o, "sid", &sid);
  arb_ingest_json_get_int (o, "seq", &seq);
  msg = arb_ingest_json_get_object (o, "msg");
  if (g_str_equal (type, "subscribed"))
    {
      const char *channel = msg != NULL ? arb_ingest_json_get_string (msg, "channel") : NULL;
      gint64 new_sid = 0;
      if (msg != NULL && arb_ingest_json_get_int (msg, "sid", &new_sid) && new_sid > 0)
        ks_sub (self, (guint) new_sid, channel);
      return;
    }
  if (g_str_equal (type, "error"))
    {
      ks_on_error_reply (self, o);
      return;
    }
  if (g_str_equal (type, "ok") || g_str_equal (type, "unsubscribed") || g_str_equal (type, "event_lifecycle")
      || g_str_equal (type, "event_fee_update"))
    return;
  if (msg == NULL)
    {
      ks_malformed (self, "message without msg", type);
      return;
    }
  if (g_str_equal (type, "ticker"))
    ks_on_ticker (self, msg);
  else if (g_str_equal (type, "orderbook_snapshot"))
    ks_on_snapshot (self, ks_sub (self, (guint) sid, "orderbook_delta"), seq, msg);
  else if (g_str_equal (type, "orderbook_delta"))
    ks_on_delta (self, ks_sub (self, (guint) sid, "orderbook_delta"), seq, msg);
  else if (g_str_equal (type, "trade"))
    ks_on_trade (self, msg);
  else if (g_str_equal (type, "market_lifecycle_v2"))
    ks_on_lifecycle (self, msg);
  else
    {
      g_autofree char *key = g_strdup_printf ("type:%s", type);
      arb_instance_counter_add (self->inst, "unknown_messages_total", 1);
      if (ks_first (self, key))
        arb_info (self->inst, "Kalshi sent a message of type \"%.40s\" this plugin does not know; ignored", type);
    }
}

static gboolean
ks_ws_prepare (gpointer data, SoupMessage *msg, GError **error)
{
  KsPlugin *self = data;
  g_autofree char *ts = NULL;
  g_autofree char *sig = NULL;
  SoupMessageHeaders *h = soup_message_get_request_headers (msg);

  if (self->reload_key)
    {
      if (!ks_read_key (self, error))
        return FALSE;
      self->reload_key = FALSE;
    }
  if (self->key == NULL)
    return TRUE;
  ts = g_strdup_printf ("%" G_GINT64_FORMAT, arb_now_us () / 1000);
  /* the handshake signs GET and the socket's path */
  sig = arb_kalshi_sign (self->key, ts, "GET", self->ws_path, error);
  if (sig == NULL)
    return FALSE;
  soup_message_headers_replace (h, "KALSHI-ACCESS-KEY", self->key_id);
  soup_message_headers_replace (h, "KALSHI-ACCESS-TIMESTAMP", ts);
  soup_message_headers_replace (h, "KALSHI-ACCESS-SIGNATURE", sig);
  return TRUE;
}

static void
ks_ws_text (gpointer data, const char *text, gsize length)
{
  KsPlugin *self = data;

  ks_on_text (self, text, length);
  if (!self->ws_healthy && arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_OPEN)
    {
      self->ws_healthy = TRUE;
      ks_report_health (self);
      ks_schedule_rest (self);
    }
}

static void
ks_ws_changed (gpointer data)
{
  KsPlugin *self = data;

  if (arb_prediction_ws_get_state (self->ws) != ARB_PREDICTION_WS_OPEN)
    {
      gboolean was = self->ws_healthy;
      self->ws_healthy = FALSE;
      if (arb_prediction_ws_get_refused_status (self->ws) == 401)
        self->reload_key = TRUE;
      /* the socket is down: REST takes over the prices at once */
      if (was && self->running)
        {
          self->last_full_rest_us = 0;
          arb_prediction_timer_clear (&self->rest_timer);
          self->rest_timer = arb_prediction_timer_new (self->inst, 0, ks_on_rest_timer, self);
        }
    }
  ks_report_health (self);
}

/* the protocol pings keep the socket alive; a quiet market is published
 * again with the time the socket last proved alive */
static void
ks_ws_heartbeat (gpointer data)
{
  KsPlugin *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 last_rx = arb_prediction_ws_get_last_rx (self->ws);
  gint64 alive_us = arb_now_us () - (now - last_rx);

  if (now - last_rx > self->ws_config.ping_interval_ms * 2000)
    return;
  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      if (!m->final && m->published_us != 0 && now - m->published_us >= self->ws_config.ping_interval_ms * 1000)
        ks_publish (self, m, MAX (alive_us, m->time_us));
    }
}

static const ArbPredictionWsFuncs ks_ws_funcs = {
  .prepare = ks_ws_prepare,
  .opened = ks_ws_opened,
  .text = ks_ws_text,
  .changed = ks_ws_changed,
  .heartbeat = ks_ws_heartbeat,
};

static void
ks_ws_update (KsPlugin *self)
{
  if (!self->running)
    return;
  if (ks_live (self) == 0)
    {
      if (arb_prediction_ws_get_state (self->ws) != ARB_PREDICTION_WS_IDLE)
        {
          arb_info (self->inst, "every followed market is final: the socket is closed");
          arb_prediction_ws_stop (self->ws);
          self->ws_healthy = FALSE;
        }
      return;
    }
  if (arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_IDLE)
    arb_prediction_ws_start (self->ws);
  else if (arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_OPEN)
    ks_subscribe_new (self, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Resnapshot over REST, when the socket does not send one in time          */

typedef struct {
  KsPlugin *self;
  char     *ticker;
  guint     sid;
} KsBookTag;

static void
ks_book_tag_free (KsBookTag *t)
{
  g_free (t->ticker);
  g_free (t);
}

static void
ks_on_rest_book (gpointer data, gpointer tag, SoupMessage *msg, GBytes *body, const GError *error)
{
  KsPlugin *self = data;
  KsBookTag *t = tag;
  KsMarket *m = g_hash_table_lookup (self->by_ticker, t->ticker);
  KsSub *s = g_hash_table_lookup (self->subs, GUINT_TO_POINTER (t->sid));
  g_autoptr(JsonNode) root = NULL;
  JsonObject *book;
  gsize length = 0;
  const char *text;

  if (m == NULL || s == NULL || m->book_valid || error != NULL || soup_message_get_status (msg) != SOUP_STATUS_OK)
    return;
  text = g_bytes_get_data (body, &length);
  root = arb_ingest_json_parse (text, length, NULL);
  book = root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? arb_ingest_json_get_object (json_node_get_object (root),
                                                                                      "orderbook_fp")
                                                        : NULL;
  if (book == NULL && root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    book = arb_ingest_json_get_object (json_node_get_object (root), "orderbook");
  if (book == NULL)
    {
      ks_malformed (self, "REST order book", "no orderbook_fp");
      return;
    }
  if (!ks_install_book (m, book))
    {
      ks_malformed (self, "REST order book", "a level that is not [price, count]");
      return;
    }
  /* the deltas after this one apply to it; the few in between are the
   * price of not having the socket's own snapshot */
  m->book_sid = t->sid;
  arb_instance_counter_add (self->inst, "rest_snapshots_total", 1);
  ks_publish (self, m, 0);
}

static gboolean
ks_on_resnapshot_timer (gpointer data)
{
  KsSub *s = data;
  KsPlugin *self = s->self;

  g_clear_pointer (&s->resnapshot_timer, g_source_unref);
  if (!self->running || !s->resnapshot)
    return G_SOURCE_REMOVE;
  /* no snapshot on the socket in time: each book of the subscription over REST */
  arb_instance_counter_add (self->inst, "resnapshot_timeouts_total", 1);
  s->resnapshot = FALSE;
  for (guint i = 0; i < self->markets->len; i++)
    {
      KsMarket *m = g_ptr_array_index (self->markets, i);
      g_autofree char *path = NULL;
      SoupMessage *msg;
      KsBookTag *tag;

      if (m->book_sid != s->sid || m->book_valid || m->final || !ks_take_token (self))
        continue;
      path = g_strdup_printf ("/markets/%s/orderbook", m->ticker);
      msg = ks_rest_message (self, path);
      if (msg == NULL)
        continue;
      tag = g_new0 (KsBookTag, 1);
      tag->self = self;
      tag->ticker = g_strdup (m->ticker);
      tag->sid = s->sid;
      arb_prediction_http_send (self->http, msg, ks_on_rest_book, self, tag, (GDestroyNotify) ks_book_tag_free);
    }
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                               */

static const ArbConfigKey ks_config[] = {
  { "market_tickers", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "market tickers to follow, comma-separated: KXBTCD-26NOV2117-T91999.99,KXFED-26DEC-T3.75" },
  { "event_tickers", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "event tickers whose every market is followed, comma-separated" },
  { "series_tickers", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "series tickers whose open events' markets are followed (found at start), comma-separated" },
  { "base_url", ARB_CFG_STRING, ARB_CFG_NONE, KS_REST_URL, 0, 0, NULL,
    "REST root URL, with /trade-api/v2 (the demo, a proxy, a test server)" },
  { "ws_url", ARB_CFG_STRING, ARB_CFG_NONE, KS_WS_URL, 0, 0, NULL,
    "the WebSocket, /trade-api/ws/v2 (the demo, a proxy, a test server)" },
  { "api_key_id", ARB_CFG_STRING, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "the API key id (KALSHI-ACCESS-KEY); without one, public channels only (no order book)" },
  { "private_key", ARB_CFG_SECRET, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "the key's RSA private key, PEM: private_key_file=PATH (the .key file) or private_key_env=VARIABLE" },
  { "orderbook", ARB_CFG_BOOL, ARB_CFG_NONE, "true", 0, 0, NULL,
    "subscribe orderbook_delta (needs a key) for the whole book; the ticker channel alone otherwise" },
  { "rest_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "5s", 100, 3600000, NULL,
    "while the socket is down, how often REST is asked for every market's prices and status" },
  { "status_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 86400000, NULL,
    "how often REST is asked for what the socket does not carry (closing, disputes, settlement values)" },
  { "request_budget", ARB_CFG_INT, ARB_CFG_NONE, "60", 1, 100000, NULL,
    "REST requests allowed a minute (Kalshi's Basic tier allows 20 a second)" },
  { "ping_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "period of the protocol pings (whole seconds) and of republishing quiet markets" },
  { "stale_after", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 3600000, NULL,
    "a socket with no frame and no pong for this long is a failure: closed and opened again" },
  { "timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "a REST request or WebSocket handshake without an answer by then is abandoned" },
  ARB_PREDICTION_RECONNECT_KEYS,
  { "settle_on", ARB_CFG_ENUM, ARB_CFG_NONE, "determined", 0, 0, "determined,finalized",
    "settle positions when Kalshi determines the outcome, or only once it is finalized (after the dispute window)" },
  { NULL }
};

static void
ks_stop (gpointer data)
{
  KsPlugin *self = data;

  self->running = FALSE;
  self->ws_healthy = FALSE;
  arb_prediction_timer_clear (&self->rest_timer);
  if (self->http != NULL)
    arb_prediction_http_cancel_all (self->http);
  if (self->ws != NULL)
    arb_prediction_ws_stop (self->ws);
  g_hash_table_remove_all (self->subs);
  for (guint i = 0; i < self->markets->len; i++)
    ((KsMarket *) g_ptr_array_index (self->markets, i))->in_flight = FALSE;
  for (guint i = 0; i < self->discoveries->len; i++)
    ((KsDiscovery *) g_ptr_array_index (self->discoveries, i))->in_flight = FALSE;
  g_clear_pointer (&self->key, arb_kalshi_key_free);
}

static void
ks_destroy (gpointer data)
{
  KsPlugin *self = data;

  ks_stop (self);
  g_clear_pointer (&self->ws, arb_prediction_ws_free);
  g_clear_pointer (&self->http, arb_prediction_http_free);
  g_clear_pointer (&self->status, arb_prediction_status_free);
  g_clear_pointer (&self->subs, g_hash_table_unref);
  g_clear_pointer (&self->commands, g_hash_table_unref);
  g_clear_pointer (&self->by_ticker, g_hash_table_unref);
  g_clear_pointer (&self->markets, g_ptr_array_unref);
  g_clear_pointer (&self->discoveries, g_ptr_array_unref);
  g_clear_pointer (&self->logged, g_hash_table_unref);
  g_free (self->rest_problem);
  g_free (self->base_url);
  g_free (self->ws_url);
  g_free (self->ws_path);
  g_free (self->key_id);
  g_free (self);
}

static gpointer
ks_create (ArbInstance *inst, GError **error)
{
  KsPlugin *self = g_new0 (KsPlugin, 1);
  const char *const *markets = arb_instance_get_strv (inst, "market_tickers");
  const char *const *events = arb_instance_get_strv (inst, "event_tickers");
  const char *const *series = arb_instance_get_strv (inst, "series_tickers");
  const char *key_id = arb_instance_get_string (inst, "api_key_id");
  g_autofree char *base_url = NULL;
  g_autofree char *ws_url = NULL;
  g_autoptr(GUri) ws_uri = NULL;

  self->inst = inst;
  self->markets = g_ptr_array_new_with_free_func ((GDestroyNotify) ks_market_free);
  self->by_ticker = g_hash_table_new (g_str_hash, g_str_equal);
  self->discoveries = g_ptr_array_new_with_free_func ((GDestroyNotify) ks_discovery_free);
  self->subs = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) ks_sub_free);
  self->commands = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  self->logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->publish_quote = arb_instance_publish_quote;

  for (guint i = 0; markets != NULL && markets[i] != NULL; i++)
    {
      g_autofree char *t = g_strstrip (g_strdup (markets[i]));
      if (*t == '\0')
        continue;
      if (!ks_is_ticker (t))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "market_tickers: \"%s\" is not a Kalshi ticker (letters, digits, '-', '_', '.')", t);
          ks_destroy (self);
          return NULL;
        }
      ks_add_market (self, t);
    }
  for (guint k = 0; k < 2; k++)
    {
      const char *const *list = k == 0 ? events : series;
      for (guint i = 0; list != NULL && list[i] != NULL; i++)
        {
          g_autofree char *t = g_strstrip (g_strdup (list[i]));
          KsDiscovery *d;

          if (*t == '\0')
            continue;
          if (!ks_is_ticker (t))
            {
              g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "%s: \"%s\" is not a Kalshi ticker",
                           k == 0 ? "event_tickers" : "series_tickers", t);
              ks_destroy (self);
              return NULL;
            }
          d = g_new0 (KsDiscovery, 1);
          d->source = g_strdup_printf ("%s %s", k == 0 ? "event" : "series", t);
          d->path = k == 0 ? g_strdup_printf ("/events/%s?with_nested_markets=true", t)
                           : g_strdup_printf ("/events?series_ticker=%s&status=open&with_nested_markets=true", t);
          g_ptr_array_add (self->discoveries, d);
        }
    }
  if (self->markets->len == 0 && self->discoveries->len == 0)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "nothing to follow: set market_tickers, event_tickers or series_tickers");
      ks_destroy (self);
      return NULL;
    }
  base_url = arb_ingest_base_url_check (arb_instance_get_string (inst, "base_url"), error);
  ws_url = base_url != NULL ? arb_prediction_ws_url_check ("ws_url", arb_instance_get_string (inst, "ws_url"), error)
                            : NULL;
  if (ws_url == NULL)
    {
      ks_destroy (self);
      return NULL;
    }
  ws_uri = g_uri_parse (ws_url, G_URI_FLAGS_NONE, NULL);
  self->ws_path = g_strdup (ws_uri != NULL && *g_uri_get_path (ws_uri) != '\0' ? g_uri_get_path (ws_uri) : "/");
  self->base_url = g_steal_pointer (&base_url);
  self->ws_url = g_steal_pointer (&ws_url);
  if (key_id != NULL && *key_id != '\0')
    self->key_id = g_strdup (key_id);
  else if (arb_instance_has_key (inst, "private_key"))
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "private_key is set but api_key_id is not: set both, or neither for public data only");
      ks_destroy (self);
      return NULL;
    }
  self->want_orderbook = arb_instance_get_boolean (inst, "orderbook");
  self->settle_on = g_strcmp0 (arb_instance_get_string (inst, "settle_on"), "finalized") == 0 ? KS_SETTLE_FINALIZED
                                                                                             : KS_SETTLE_DETERMINED;
  self->rest_interval_ms = arb_instance_get_duration_ms (inst, "rest_interval");
  self->status_interval_ms = arb_instance_get_duration_ms (inst, "status_interval");
  self->timeout_ms = arb_instance_get_duration_ms (inst, "timeout");
  self->budget_per_min = arb_instance_get_int (inst, "request_budget");
  self->ws_config.ping_interval_ms = arb_instance_get_duration_ms (inst, "ping_interval");
  self->ws_config.stale_after_ms = arb_instance_get_duration_ms (inst, "stale_after");
  self->ws_config.connect_timeout_ms = self->timeout_ms;
  self->ws_config.reconnect_min_ms = arb_instance_get_duration_ms (inst, "reconnect_min");
  self->ws_config.reconnect_max_ms = MAX (arb_instance_get_duration_ms (inst, "reconnect_max"),
                                          self->ws_config.reconnect_min_ms);
  self->ws_config.protocol_pings = TRUE;
  self->ws_config.max_payload = 32 * 1024 * 1024;
  self->http = arb_prediction_http_new (inst, self->timeout_ms);
  self->ws = arb_prediction_ws_new (inst, "Kalshi", self->ws_url, &ks_ws_funcs, self, &self->ws_config);
  self->status = arb_prediction_status_new (inst);
  return self;
}

static gboolean
ks_start (gpointer data, GError **error)
{
  KsPlugin *self = data;
  g_autofree char *what = NULL;

  ks_stop (self);
  /* a key that cannot be read or used is a config error; an unreachable
   * upstream is not: it is retried and shown as health */
  if (!ks_read_key (self, error))
    return FALSE;
  self->running = TRUE;
  self->reload_key = FALSE;
  self->orderbook_refused = FALSE;
  self->tokens = (double) self->budget_per_min;
  self->tokens_at_us = g_get_monotonic_time ();
  self->hold_until_us = 0;
  self->rest_failures = 0;
  self->last_full_rest_us = 0;
  what = self->key != NULL ? arb_kalshi_key_describe (self->key) : NULL;
  arb_info (self->inst, "following %u market%s and %u event or series through %s and %s; %s%s%s",
            self->markets->len, self->markets->len == 1 ? "" : "s", self->discoveries->len, self->base_url,
            self->ws_url, what != NULL ? "requests signed with an " : "no key: public channels only, no order book",
            what != NULL ? what : "", what != NULL ? " key" : "");
  ks_ws_update (self);
  /* the first statuses (and discoveries) at once */
  self->rest_timer = arb_prediction_timer_new (self->inst, 0, ks_on_rest_timer, self);
  return TRUE;
}

static const ArbIngestVTable ks_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = ks_create,
  .start = ks_start,
  .stop = ks_stop,
  .destroy = ks_destroy,
};

static const ArbPluginDesc ks_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-kalshi",
  .version = "1.1.0",
  .summary = "Kalshi event contracts: WebSocket ticker, order book and lifecycle, gated REST, signed requests",
  .kind = ARB_PLUGIN_INGEST,
  .config = ks_config,
  .vtable = &ks_vtable,
};

ARB_PLUGIN_DEFINE (ingest_kalshi, ks_desc)
