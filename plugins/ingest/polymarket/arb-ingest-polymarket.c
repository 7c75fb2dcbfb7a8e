/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-polymarket: Polymarket's prediction markets.
 *
 * - Which markets: Gamma (no auth), by market slug, condition id or event
 *   slug:  GET {base_url}/markets?slug=S, /markets?condition_ids=0x…,
 *   /events?slug=E. Every outcome token of a market becomes our market
 *   `polymarket:<token id>` (77–78 digit decimals, kept as strings).
 *   `outcomes`, `outcomePrices` and `clobTokenIds` are strings holding JSON
 *   arrays, decoded twice.
 * - Prices: the CLOB market WebSocket ({ws_url}, /ws/market): one subscribe
 *   with every asset id, `book` snapshots (an array of them, or single
 *   objects; best level last, but sorted here anyway), `price_change`
 *   (level sizes plus the authoritative `best_bid`/`best_ask`),
 *   `last_trade_price`, `best_bid_ask`, `tick_size_change`,
 *   `market_resolved`; every number a string; text PING/PONG heartbeats.
 * - Events: every token of a market is published to the host as one of
 *   `polymarket-event:<Gamma event id>` (arb_instance_publish_market_event),
 *   from the market's `events[0].id`, or the event it was found through
 *   (event_slugs); a market whose discovery answer says neither is asked
 *   for at once (GET /markets/{id} carries `events[]`). Risk rules add up
 *   the markets of one event (risk-exposure's max_event_exposure_pct).
 * - Statuses: GET {base_url}/markets/{id} every status_interval, because
 *   the socket does not say everything (API-REFERENCE.md §3.2): resolved
 *   (closed, umaResolutionStatus resolved, prices exactly 1/0) settles at 1
 *   or 0 a share, a voided market (0.5/0.5) at 0.5, disputed, closed and
 *   awaiting resolution. A `market_resolved` frame closes the market at
 *   once and asks Gamma for confirmation; only Gamma settles.
 *
 * There is no Polymarket GraphQL subscription API (the subgraphs were
 * query-only and are deprecated); this socket plus the status polling is
 * the real-time path (doc/prediction-markets.md).
 */

#include <string.h>

#include "arb-prediction-common.h"

#define PM_GAMMA_URL "https://gamma-api.polymarket.com"
#define PM_WS_URL    "wss://ws-subscriptions-clob.polymarket.com/ws/market"
/* a few failed requests in a row are "retrying"; more are "down" */
#define PM_FAILURES_BEFORE_DOWN 3
#define PM_BACKOFF_CAP_MS       (5 * 60 * 1000)

typedef enum {
  PM_SEL_SLUG,
  PM_SEL_CONDITION,
  PM_SEL_EVENT,
} PmSelKind;

typedef struct {
  PmSelKind kind;
  char     *value;     /* owned */
  gboolean  found;     /* at least one market came of it */
  gboolean  in_flight;
  char     *problem;   /* owned, nullable: why it found nothing */
} PmSelector;

typedef struct _PmMarket PmMarket;

typedef struct {
  char                *token_id;  /* owned: 77–78 digits */
  char                *market_id; /* owned: polymarket:<token id> */
  char                *outcome;   /* owned: "Yes", "Up", a name */
  PmMarket            *market;    /* borrowed: its market */
  ArbPredictionLevels *bids;      /* owned */
  ArbPredictionLevels *asks;      /* owned */
  gboolean             has_bid, has_ask, has_last;
  ArbDecimal           bid, ask, last;
  gint64               time_us;      /* the upstream's time of the last change, 0: none */
  gint64               published_us; /* monotonic, 0: never */
  gboolean             subscribed;   /* on the current session */
  char                *tick_size;    /* owned, nullable */
} PmToken;

struct _PmMarket {
  char      *gamma_id;     /* owned */
  char      *event_id;     /* owned, nullable: Gamma's event id, once known */
  char      *condition_id; /* owned, lower case */
  char      *slug;         /* owned */
  GPtrArray *tokens;       /* owned: PmToken, in outcome order */
  gboolean   final;        /* resolved or cancelled: nothing to follow */
  gboolean   in_flight;
  gboolean   resolved_on_socket;
};

typedef struct {
  ArbInstance         *inst;         /* borrowed; outlives self */
  char                *base_url;     /* owned: Gamma, without a trailing slash */
  char                *ws_url;       /* owned */
  GPtrArray           *selectors;    /* owned: PmSelector */
  GPtrArray           *markets;      /* owned: PmMarket */
  GHashTable          *by_token;     /* token id → PmToken (borrowed) */
  GHashTable          *by_condition; /* condition id → PmMarket (borrowed) */
  GHashTable          *by_gamma_id;  /* Gamma id → PmMarket (borrowed) */
  gint64               status_interval_ms;
  gint64               timeout_ms;
  gboolean             disputed_halts;
  ArbPredictionWsConfig ws_config;

  ArbPredictionHttp   *http;         /* owned */
  ArbPredictionWs     *ws;           /* owned */
  ArbPredictionStatus *status;       /* owned */
  GSource             *status_timer; /* owned, nullable */
  gboolean             running;
  gboolean             ws_healthy;   /* open and delivering */

  guint                gamma_failures; /* in a row */
  char                *gamma_problem;  /* owned, nullable */
  gint64               gamma_hold_until_us; /* monotonic: rate limited until then */
  GHashTable          *logged;         /* owned: what was logged once */

  /* how a quote leaves: the host, or a benchmark's counter */
  gboolean (*publish_quote) (ArbInstance *inst, ArbQuote *quote, GError **error);
} PmPlugin;

/* ------------------------------------------------------------------------ */
/* Logging once                                                             */

/* TRUE the first time @key is seen: the caller logs, later ones only count */
static gboolean
pm_first (PmPlugin *self, const char *key)
{
  if (g_hash_table_contains (self->logged, key))
    return FALSE;
  g_hash_table_add (self->logged, g_strdup (key));
  return TRUE;
}

static void
pm_malformed (PmPlugin *self, const char *what, const char *why)
{
  g_autofree char *key = g_strdup_printf ("malformed:%s", what);

  arb_instance_counter_add (self->inst, "malformed_messages_total", 1);
  if (pm_first (self, key))
    arb_warning (self->inst, "Polymarket sent a %s that cannot be used (%s); it was dropped, and such messages "
                 "are only counted from now on (malformed_messages_total)", what, why);
}

/* ------------------------------------------------------------------------ */
/* Gamma: decoding (pure)                                                   */

typedef struct {
  char      *id;
  char      *condition_id;
  char      *slug;
  gboolean   closed;
  gboolean   has_accepting;
  gboolean   accepting_orders;
  char      *uma_status;   /* nullable, lower case */
  GPtrArray *outcomes;     /* char * */
  GPtrArray *token_ids;    /* char * */
  GPtrArray *prices;       /* char *, nullable: no outcomePrices */
  gint64     closed_us;    /* 0: none */
  gint64     updated_us;   /* 0: none */
  char      *event_id;     /* nullable: events[0].id, when the answer has it */
} PmGamma;

static void
pm_gamma_clear (PmGamma *g)
{
  g_clear_pointer (&g->id, g_free);
  g_clear_pointer (&g->condition_id, g_free);
  g_clear_pointer (&g->slug, g_free);
  g_clear_pointer (&g->uma_status, g_free);
  g_clear_pointer (&g->outcomes, g_ptr_array_unref);
  g_clear_pointer (&g->token_ids, g_ptr_array_unref);
  g_clear_pointer (&g->prices, g_ptr_array_unref);
  g_clear_pointer (&g->event_id, g_free);
}

static gboolean
pm_is_token_id (const char *s)
{
  gsize n = s != NULL ? strlen (s) : 0;

  if (n == 0 || n > 100)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* a member that is a string holding a JSON array of strings ("[\"Yes\", \"No\"]");
 * a real array of strings is taken too */
static GPtrArray *
pm_string_array (JsonObject *o, const char *member, GError **error)
{
  JsonNode *n = json_object_get_member (o, member);
  g_autoptr(JsonNode) inner = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  JsonArray *a;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "no %s", member);
      return NULL;
    }
  if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
    {
      const char *text = json_node_get_string (n);
      g_autoptr(GError) local = NULL;

      inner = arb_ingest_json_parse (text, strlen (text), &local);
      if (inner == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is not a JSON array in a string: %s", member,
                       local->message);
          return NULL;
        }
      n = inner;
    }
  if (!JSON_NODE_HOLDS_ARRAY (n))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is %s, not an array", member,
                   arb_ingest_json_kind (n));
      return NULL;
    }
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s[%u] is %s, not a string", member, i,
                       arb_ingest_json_kind (e));
          return NULL;
        }
      g_ptr_array_add (out, g_strdup (json_node_get_string (e)));
    }
  return g_steal_pointer (&out);
}

static gboolean
pm_bool (JsonObject *o, const char *member, gboolean *out)
{
  JsonNode *n = json_object_get_member (o, member);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return FALSE;
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* Gamma's closedTime is Postgres-style, "2026-11-19 14:20:16+00" */
static gboolean
pm_parse_gamma_time (const char *text, gint64 *out_us)
{
  g_autoptr(GString) s = NULL;

  if (text == NULL || *text == '\0')
    return FALSE;
  if (arb_ingest_parse_time_us (text, out_us))
    return TRUE;
  s = g_string_new (text);
  if (s->len > 10 && s->str[10] == ' ')
    s->str[10] = 'T';
  /* a zone of hours only: +00 → +00:00 */
  if (s->len > 3 && (s->str[s->len - 3] == '+' || s->str[s->len - 3] == '-') && g_ascii_isdigit (s->str[s->len - 1]))
    g_string_append (s, ":00");
  return arb_ingest_parse_time_us (s->str, out_us);
}

/* a Gamma id (of a market or an event): a string of digits, or a number;
 * NULL when it is neither (transfer full) */
static char *
pm_gamma_id (JsonObject *o)
{
  const char *id = arb_ingest_json_get_string (o, "id");
  gint64 n_id = 0;

  if (id == NULL && arb_ingest_json_get_int (o, "id", &n_id) && n_id > 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT, n_id);
  if (id != NULL && *id != '\0' && strlen (id) <= 40 && strspn (id, "0123456789") == strlen (id))
    return g_strdup (id);
  return NULL;
}

/* the event of a market object: the first of `events[]` with a usable id
 * (Gamma lists one; a market in several is counted in the first) */
static char *
pm_gamma_event_id (JsonObject *o)
{
  JsonNode *n = json_object_get_member (o, "events");
  JsonArray *a;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return NULL;
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      char *id = JSON_NODE_HOLDS_OBJECT (e) ? pm_gamma_id (json_node_get_object (e)) : NULL;
      if (id != NULL)
        return id;
    }
  return NULL;
}

/* one Gamma market object; FALSE with an error saying what is missing */
static gboolean
pm_gamma_decode (JsonObject *o, PmGamma *out, GError **error)
{
  const char *cond = arb_ingest_json_get_string (o, "conditionId");
  const char *uma = arb_ingest_json_get_string (o, "umaResolutionStatus");
  g_autoptr(GError) local = NULL;

  memset (out, 0, sizeof *out);
  /* the id is a string of digits; a number is taken as well */
  out->id = pm_gamma_id (o);
  if (out->id == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "a market without a usable id");
      return FALSE;
    }
  if (cond == NULL || !g_str_has_prefix (cond, "0x") || strlen (cond) != 66
      || strspn (cond + 2, "0123456789abcdefABCDEF") != 64)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "market %s: conditionId is not 0x and 64 hex digits",
                   out->id);
      pm_gamma_clear (out);
      return FALSE;
    }
  out->condition_id = g_ascii_strdown (cond, -1);
  out->slug = g_strdup (arb_ingest_json_get_string (o, "slug"));
  if (!pm_bool (o, "closed", &out->closed))
    out->closed = FALSE;
  out->has_accepting = pm_bool (o, "acceptingOrders", &out->accepting_orders);
  out->uma_status = uma != NULL && *uma != '\0' ? g_ascii_strdown (uma, -1) : NULL;
  out->outcomes = pm_string_array (o, "outcomes", &local);
  if (out->outcomes != NULL)
    out->token_ids = pm_string_array (o, "clobTokenIds", &local);
  if (out->outcomes == NULL || out->token_ids == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "market %s: %s", out->id, local->message);
      pm_gamma_clear (out);
      return FALSE;
    }
  if (out->outcomes->len != out->token_ids->len || out->token_ids->len == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "market %s: %u outcomes but %u clobTokenIds", out->id, out->outcomes->len, out->token_ids->len);
      pm_gamma_clear (out);
      return FALSE;
    }
  for (guint i = 0; i < out->token_ids->len; i++)
    if (!pm_is_token_id (g_ptr_array_index (out->token_ids, i)))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "market %s: clobTokenIds[%u] is not a decimal id",
                     out->id, i);
        pm_gamma_clear (out);
        return FALSE;
      }
  /* absent on brand-new markets; malformed counts as absent, never as a price */
  if (json_object_has_member (o, "outcomePrices"))
    {
      g_clear_error (&local);
      out->prices = pm_string_array (o, "outcomePrices", &local);
      if (out->prices != NULL && out->prices->len != out->token_ids->len)
        g_clear_pointer (&out->prices, g_ptr_array_unref);
    }
  if (!pm_parse_gamma_time (arb_ingest_json_get_string (o, "closedTime"), &out->closed_us))
    out->closed_us = 0;
  if (!pm_parse_gamma_time (arb_ingest_json_get_string (o, "updatedAt"), &out->updated_us))
    out->updated_us = 0;
  out->event_id = pm_gamma_event_id (o);
  return TRUE;
}

typedef struct {
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     settlement;
  char          *reason; /* owned */
} PmStatus;

/* outcomePrices as decimals; FALSE when absent or any is not a price */
static gboolean
pm_prices (const PmGamma *g, ArbDecimal *out)
{
  if (g->prices == NULL)
    return FALSE;
  for (guint i = 0; i < g->prices->len; i++)
    if (!arb_prediction_price (g_ptr_array_index (g->prices, i), &out[i]))
      return FALSE;
  return TRUE;
}

/* The state of outcome @index (API-REFERENCE.md §3.2, DOMAIN.md §2.2): final
 * only when closed, resolved and the prices are exactly terminal (1 and 0s)
 * or a 50-50 void (every price 0.5). */
static void
pm_gamma_status (const PmGamma *g, guint index, gboolean disputed_halts, PmStatus *out)
{
  g_autofree ArbDecimal *prices = g_new0 (ArbDecimal, g->token_ids->len);
  gboolean have_prices = pm_prices (g, prices);
  const char *uma = g->uma_status != NULL ? g->uma_status : "";

  memset (out, 0, sizeof *out);
  if (g->closed)
    {
      if (g_str_equal (uma, "resolved"))
        {
          guint ones = 0, zeros = 0, halves = 0;

          for (guint i = 0; have_prices && i < g->token_ids->len; i++)
            {
              ones += prices[i].raw == ARB_DECIMAL_SCALE;
              zeros += prices[i].raw == 0;
              halves += prices[i].raw == ARB_DECIMAL_SCALE / 2;
            }
          if (have_prices && ones == 1 && zeros == g->token_ids->len - 1)
            {
              guint winner = 0;

              for (guint i = 0; i < g->token_ids->len; i++)
                if (prices[i].raw == ARB_DECIMAL_SCALE)
                  winner = i;
              out->state = ARB_MARKET_RESOLVED;
              out->has_settlement = TRUE;
              out->settlement = prices[index];
              out->reason = g_strdup_printf ("resolved: %s won", (char *) g_ptr_array_index (g->outcomes, winner));
              return;
            }
          if (have_prices && g->token_ids->len == 2 && halves == 2)
            {
              /* voided ("resolves 50-50"): 0.5 a share (DOMAIN.md §2.2) */
              out->state = ARB_MARKET_RESOLVED;
              out->has_settlement = TRUE;
              out->settlement = prices[index];
              out->reason = g_strdup ("resolved 50-50 (voided): 0.5 a share");
              return;
            }
          out->state = ARB_MARKET_CLOSED;
          if (have_prices && zeros == g->token_ids->len)
            out->reason = g_strdup ("resolved without a winner (every price 0): not settled automatically");
          else
            out->reason = g_strdup ("resolved, but the prices are not terminal: not settled automatically");
          return;
        }
      if (g_str_equal (uma, "disputed"))
        {
          out->state = ARB_MARKET_DISPUTED;
          out->reason = g_strdup ("closed; the proposed outcome is disputed (UMA)");
          return;
        }
      out->state = ARB_MARKET_CLOSED;
      out->reason = g_str_equal (uma, "proposed") ? g_strdup ("closed; an outcome is proposed, in its challenge window")
                                                   : g_strdup ("closed, awaiting resolution");
      return;
    }
  if (g_str_equal (uma, "disputed"))
    {
      /* a premature proposal, disputed, on a market that still trades */
      out->state = disputed_halts ? ARB_MARKET_DISPUTED : ARB_MARKET_OPEN;
      out->reason = g_strdup (disputed_halts ? "disputed while trading (disputed_trading=halt)"
                                             : "disputed; trading continues (disputed_trading=open)");
      return;
    }
  if (g_str_equal (uma, "resolved"))
    {
      out->state = ARB_MARKET_CLOSED;
      out->reason = g_strdup ("reported resolved but not closed: waiting for Gamma to close it");
      return;
    }
  if (g->has_accepting && !g->accepting_orders)
    {
      out->state = ARB_MARKET_HALTED;
      out->reason = g_strdup ("not accepting orders");
      return;
    }
  out->state = ARB_MARKET_OPEN;
}

/* ------------------------------------------------------------------------ */
/* Markets and tokens                                                       */

static void
pm_token_free (PmToken *t)
{
  g_free (t->token_id);
  g_free (t->market_id);
  g_free (t->outcome);
  g_free (t->tick_size);
  arb_prediction_levels_free (t->bids);
  arb_prediction_levels_free (t->asks);
  g_free (t);
}

static void
pm_market_free (PmMarket *m)
{
  g_free (m->gamma_id);
  g_free (m->event_id);
  g_free (m->condition_id);
  g_free (m->slug);
  g_ptr_array_unref (m->tokens);
  g_free (m);
}

static void
pm_selector_free (PmSelector *s)
{
  g_free (s->value);
  g_free (s->problem);
  g_free (s);
}

static const char *
pm_selector_kind (const PmSelector *s)
{
  switch (s->kind)
    {
    case PM_SEL_SLUG: return "market slug";
    case PM_SEL_CONDITION: return "condition id";
    case PM_SEL_EVENT: default: return "event slug";
    }
}

/* ------------------------------------------------------------------------ */
/* Health                                                                   */

/* the worst of the socket, Gamma and the markets not found, with reasons */
static void
pm_report_health (PmPlugin *self)
{
  ArbHealth health = ARB_HEALTH_OK;
  g_autoptr(GString) why = g_string_new (NULL);
  guint n_tokens = g_hash_table_size (self->by_token);
  guint n_live = 0;

  if (!self->running)
    return;
  for (guint i = 0; i < self->markets->len; i++)
    n_live += !((PmMarket *) g_ptr_array_index (self->markets, i))->final;

  if (n_live > 0 && !self->ws_healthy)
    {
      const char *reason = arb_prediction_ws_get_reason (self->ws);
      guint failures = arb_prediction_ws_get_failures (self->ws);
      guint refused = arb_prediction_ws_get_refused_status (self->ws);

      if (reason != NULL)
        {
          gboolean down = failures >= PM_FAILURES_BEFORE_DOWN || refused == 401 || refused == 403;
          health = down ? ARB_HEALTH_DOWN : ARB_HEALTH_DEGRADED;
          g_string_append_printf (why, "%s%s", down ? "" : "reconnecting: ", reason);
        }
      else
        {
          health = ARB_HEALTH_DEGRADED;
          g_string_append_printf (why, "connecting to %s", self->ws_url);
        }
    }
  if (self->gamma_problem != NULL)
    {
      ArbHealth h = self->gamma_failures >= PM_FAILURES_BEFORE_DOWN && n_tokens == 0 ? ARB_HEALTH_DOWN
                                                                                     : ARB_HEALTH_DEGRADED;
      health = MAX (health, h);
      g_string_append_printf (why, "%s%s", why->len > 0 ? "; " : "", self->gamma_problem);
    }
  for (guint i = 0; i < self->selectors->len; i++)
    {
      PmSelector *s = g_ptr_array_index (self->selectors, i);
      if (!s->found && s->problem != NULL)
        {
          health = MAX (health, ARB_HEALTH_DEGRADED);
          g_string_append_printf (why, "%s%s", why->len > 0 ? "; " : "", s->problem);
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
pm_publish_token (PmPlugin *self, PmToken *t, gint64 source_us)
{
  g_autoptr(ArbQuote) quote = arb_quote_new (t->market_id);
  g_autoptr(GError) error = NULL;
  gboolean bid = t->has_bid && t->bid.raw > 0;
  gboolean ask = t->has_ask && t->ask.raw > 0;
  gboolean any = FALSE;

  /* a settled market's prices mean nothing any more */
  if (t->market->final)
    return;

  if (bid && ask && t->bid.raw > t->ask.raw)
    {
      /* a crossed top is never published: the book is being rebuilt */
      arb_instance_counter_add (self->inst, "crossed_quotes_total", 1);
      bid = ask = FALSE;
    }
  if (bid)
    arb_quote_set_bid (quote, t->bid), any = TRUE;
  if (ask)
    arb_quote_set_ask (quote, t->ask), any = TRUE;
  if (t->has_last && t->last.raw > 0)
    arb_quote_set_last (quote, t->last), any = TRUE;
  if (!any)
    return;
  if (source_us > 0)
    arb_quote_set_source_time (quote, source_us);
  t->published_us = g_get_monotonic_time ();
  if (self->publish_quote (self->inst, quote, &error))
    {
      arb_instance_counter_add (self->inst, "quotes_published_total", 1);
      return;
    }
  arb_instance_counter_add (self->inst, "publish_errors_total", 1);
  {
    g_autofree char *key = g_strdup_printf ("refused:%s", t->market_id);
    if (pm_first (self, key))
      arb_warning (self->inst, "the host refused the quote for %s: %s (later refusals are only counted, in "
                   "publish_errors_total)", t->market_id, error->message);
  }
}

/* top of book from the levels: the highest bid, the lowest ask */
static void
pm_top_from_book (PmToken *t)
{
  t->has_bid = arb_prediction_levels_max (t->bids, &t->bid, NULL);
  t->has_ask = arb_prediction_levels_min (t->asks, &t->ask, NULL);
}

/* ------------------------------------------------------------------------ */
/* The market WebSocket: decoding and applying                              */

typedef struct {
  PmPlugin  *self;
  GPtrArray *touched; /* PmToken, borrowed, each once */
  gint64     time_us; /* of the frame's last event */
} PmFrame;

static void
pm_touch (PmFrame *f, PmToken *t, gint64 time_us)
{
  if (time_us > 0)
    t->time_us = time_us;
  if (!g_ptr_array_find (f->touched, t, NULL))
    g_ptr_array_add (f->touched, t);
}

static PmToken *
pm_token_of (PmFrame *f, JsonObject *o)
{
  const char *asset = arb_ingest_json_get_string (o, "asset_id");
  PmToken *t;

  if (asset == NULL)
    return NULL;
  t = g_hash_table_lookup (f->self->by_token, asset);
  if (t == NULL)
    arb_instance_counter_add (f->self->inst, "unknown_assets_total", 1);
  return t;
}

typedef struct {
  ArbDecimal price;
  ArbDecimal size;
} PmLevel;

/* [{"price":"0.041","size":"3512.87"}, …] → levels; FALSE when any is bad */
static gboolean
pm_levels (JsonObject *o, const char *member, GArray *out, const char **why)
{
  JsonNode *n = json_object_get_member (o, member);
  JsonArray *a;

  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE; /* an empty side */
  if (!JSON_NODE_HOLDS_ARRAY (n))
    {
      *why = "a side of the book is not an array";
      return FALSE;
    }
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      JsonObject *lo;
      PmLevel lv;

      if (!JSON_NODE_HOLDS_OBJECT (e))
        {
          *why = "a level is not an object";
          return FALSE;
        }
      lo = json_node_get_object (e);
      if (!arb_prediction_price (arb_ingest_json_get_string (lo, "price"), &lv.price)
          || !arb_prediction_decimal (arb_ingest_json_get_string (lo, "size"), &lv.size) || lv.size.raw < 0)
        {
          *why = "a level whose price or size is not a decimal string in range";
          return FALSE;
        }
      g_array_append_val (out, lv);
    }
  return TRUE;
}

/* "" → none; otherwise a price; FALSE when malformed */
static gboolean
pm_optional_price (JsonObject *o, const char *member, gboolean *has, ArbDecimal *out)
{
  const char *s = arb_ingest_json_get_string (o, member);

  if (s == NULL || *s == '\0')
    {
      *has = FALSE;
      /* "" or absent or null: none; anything but a string: malformed */
      return s != NULL || !json_object_has_member (o, member)
             || JSON_NODE_HOLDS_NULL (json_object_get_member (o, member));
    }
  if (!arb_prediction_price (s, out))
    return FALSE;
  *has = out->raw > 0;
  return TRUE;
}

static void
pm_on_book (PmFrame *f, JsonObject *o)
{
  PmToken *t = pm_token_of (f, o);
  g_autoptr(GArray) bids = g_array_new (FALSE, FALSE, sizeof (PmLevel));
  g_autoptr(GArray) asks = g_array_new (FALSE, FALSE, sizeof (PmLevel));
  const char *why = NULL;
  gboolean has_last = FALSE;
  ArbDecimal last = ARB_DECIMAL_ZERO;
  gint64 time_us = 0;

  if (arb_ingest_json_get_string (o, "asset_id") == NULL)
    {
      pm_malformed (f->self, "book without an asset_id", "no asset_id");
      return;
    }
  if (!pm_levels (o, "bids", bids, &why) || !pm_levels (o, "asks", asks, &why))
    {
      /* the whole snapshot or nothing: a partial book would be a wrong price */
      pm_malformed (f->self, "book", why);
      return;
    }
  if (!pm_optional_price (o, "last_trade_price", &has_last, &last))
    {
      pm_malformed (f->self, "book", "last_trade_price is not a price");
      return;
    }
  if (t == NULL)
    return;
  arb_prediction_ms_member (o, "timestamp", &time_us);
  arb_prediction_levels_clear (t->bids);
  arb_prediction_levels_clear (t->asks);
  for (guint i = 0; i < bids->len; i++)
    arb_prediction_levels_set (t->bids, g_array_index (bids, PmLevel, i).price, g_array_index (bids, PmLevel, i).size);
  for (guint i = 0; i < asks->len; i++)
    arb_prediction_levels_set (t->asks, g_array_index (asks, PmLevel, i).price, g_array_index (asks, PmLevel, i).size);
  pm_top_from_book (t);
  if (has_last)
    {
      t->has_last = TRUE;
      t->last = last;
    }
  {
    const char *tick = arb_ingest_json_get_string (o, "tick_size");
    if (tick != NULL && *tick != '\0')
      {
        g_free (t->tick_size);
        t->tick_size = g_strdup (tick);
      }
  }
  arb_instance_counter_add (f->self->inst, "books_total", 1);
  pm_touch (f, t, time_us);
}

/* one change of the 2025-09 schema: {asset_id, price, size, side, hash,
 * best_bid, best_ask}; or (@legacy_token) a change of the old one */
static void
pm_on_change (PmFrame *f, JsonObject *c, PmToken *legacy_token, gint64 time_us)
{
  PmToken *t = legacy_token != NULL ? legacy_token : pm_token_of (f, c);
  const char *side = arb_ingest_json_get_string (c, "side");
  ArbDecimal price, size, bb = ARB_DECIMAL_ZERO, ba = ARB_DECIMAL_ZERO;
  gboolean has_bb = FALSE, has_ba = FALSE;
  gboolean with_best = json_object_has_member (c, "best_bid") || json_object_has_member (c, "best_ask");

  if ((legacy_token == NULL && arb_ingest_json_get_string (c, "asset_id") == NULL)
      || !arb_prediction_price (arb_ingest_json_get_string (c, "price"), &price)
      || !arb_prediction_decimal (arb_ingest_json_get_string (c, "size"), &size) || size.raw < 0
      || side == NULL || (!g_str_equal (side, "BUY") && !g_str_equal (side, "SELL")))
    {
      pm_malformed (f->self, "price_change entry", "asset_id, price, size or side missing or not usable");
      return;
    }
  if (!pm_optional_price (c, "best_bid", &has_bb, &bb) || !pm_optional_price (c, "best_ask", &has_ba, &ba))
    {
      pm_malformed (f->self, "price_change entry", "best_bid or best_ask is not a price");
      return;
    }
  if (t == NULL)
    return;
  arb_prediction_levels_set (g_str_equal (side, "BUY") ? t->bids : t->asks, price, size);
  if (with_best)
    {
      /* the exchange's own top of book wins over ours */
      t->has_bid = has_bb;
      t->bid = bb;
      t->has_ask = has_ba;
      t->ask = ba;
    }
  else
    pm_top_from_book (t);
  pm_touch (f, t, time_us);
}

static void
pm_on_price_change (PmFrame *f, JsonObject *o)
{
  JsonNode *n = json_object_get_member (o, "price_changes");
  gint64 time_us = 0;

  arb_prediction_ms_member (o, "timestamp", &time_us);
  if (n != NULL && JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          if (!JSON_NODE_HOLDS_OBJECT (e))
            {
              pm_malformed (f->self, "price_change entry", "not an object");
              continue;
            }
          pm_on_change (f, json_node_get_object (e), NULL, time_us);
        }
      return;
    }
  n = json_object_get_member (o, "changes");
  if (n != NULL && JSON_NODE_HOLDS_ARRAY (n) && arb_ingest_json_get_string (o, "asset_id") != NULL)
    {
      /* the schema before 2025-09-15: one asset, changes[{price, side, size}] */
      PmToken *t = pm_token_of (f, o);
      JsonArray *a = json_node_get_array (n);

      for (guint i = 0; t != NULL && i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          if (!JSON_NODE_HOLDS_OBJECT (e))
            {
              pm_malformed (f->self, "price_change entry", "not an object");
              continue;
            }
          pm_on_change (f, json_node_get_object (e), t, time_us);
        }
      return;
    }
  pm_malformed (f->self, "price_change", "neither price_changes[] nor asset_id with changes[]");
}

static void
pm_on_last_trade (PmFrame *f, JsonObject *o)
{
  PmToken *t;
  ArbDecimal price;
  gint64 time_us = 0;

  if (arb_ingest_json_get_string (o, "asset_id") == NULL
      || !arb_prediction_price (arb_ingest_json_get_string (o, "price"), &price) || price.raw == 0)
    {
      pm_malformed (f->self, "last_trade_price", "asset_id or price missing or not a price");
      return;
    }
  t = pm_token_of (f, o);
  if (t == NULL)
    return;
  arb_prediction_ms_member (o, "timestamp", &time_us);
  t->has_last = TRUE;
  t->last = price;
  pm_touch (f, t, time_us);
}

static void
pm_on_best_bid_ask (PmFrame *f, JsonObject *o)
{
  PmToken *t;
  ArbDecimal bb = ARB_DECIMAL_ZERO, ba = ARB_DECIMAL_ZERO;
  gboolean has_bb = FALSE, has_ba = FALSE;
  gint64 time_us = 0;

  if (arb_ingest_json_get_string (o, "asset_id") == NULL || !pm_optional_price (o, "best_bid", &has_bb, &bb)
      || !pm_optional_price (o, "best_ask", &has_ba, &ba))
    {
      pm_malformed (f->self, "best_bid_ask", "asset_id missing or a price not usable");
      return;
    }
  t = pm_token_of (f, o);
  if (t == NULL)
    return;
  arb_prediction_ms_member (o, "timestamp", &time_us);
  t->has_bid = has_bb;
  t->bid = bb;
  t->has_ask = has_ba;
  t->ask = ba;
  pm_touch (f, t, time_us);
}

static void
pm_on_tick_size (PmFrame *f, JsonObject *o)
{
  PmToken *t = pm_token_of (f, o);
  const char *tick = arb_ingest_json_get_string (o, "new_tick_size");
  ArbDecimal d;

  if (tick == NULL || !arb_prediction_price (tick, &d) || d.raw == 0)
    {
      pm_malformed (f->self, "tick_size_change", "new_tick_size is not a decimal in (0, 1]");
      return;
    }
  arb_instance_counter_add (f->self->inst, "tick_size_changes_total", 1);
  if (t == NULL)
    return;
  g_free (t->tick_size);
  t->tick_size = g_strdup (tick);
  arb_debug (f->self->inst, "%s: tick size %s", t->market_id, tick);
}

static void pm_poll_market (PmPlugin *self, PmMarket *m);

/* the socket says the market resolved: close it for orders now, and ask
 * Gamma, which alone settles (the event was missing for months in 2026
 * and names the winner by a display label) */
static void
pm_on_market_resolved (PmFrame *f, JsonObject *o)
{
  PmPlugin *self = f->self;
  const char *cond = arb_ingest_json_get_string (o, "market");
  const char *winner = arb_ingest_json_get_string (o, "winning_asset_id");
  const char *label = arb_ingest_json_get_string (o, "winning_outcome");
  g_autofree char *lower = cond != NULL ? g_ascii_strdown (cond, -1) : NULL;
  PmMarket *m = lower != NULL ? g_hash_table_lookup (self->by_condition, lower) : NULL;
  gint64 time_us = 0;

  if (cond == NULL)
    {
      pm_malformed (self, "market_resolved", "no market (condition id)");
      return;
    }
  arb_instance_counter_add (self->inst, "resolutions_seen_total", 1);
  if (m == NULL || m->final)
    return;
  arb_prediction_ms_member (o, "timestamp", &time_us);
  m->resolved_on_socket = TRUE;
  for (guint i = 0; i < m->tokens->len; i++)
    {
      PmToken *t = g_ptr_array_index (m->tokens, i);
      g_autofree char *reason = g_strdup_printf ("resolved on the socket (winner: %s, asset %s); waiting for Gamma to "
                                                 "confirm before settling", label != NULL ? label : "?",
                                                 winner != NULL ? winner : "?");
      arb_prediction_status_publish (self->status, t->market_id, ARB_MARKET_CLOSED, NULL, reason, time_us);
    }
  pm_poll_market (self, m);
}

static void
pm_on_event (PmFrame *f, JsonObject *o)
{
  const char *type = arb_ingest_json_get_string (o, "event_type");

  if (type == NULL)
    {
      pm_malformed (f->self, "message without an event_type", "no event_type");
      return;
    }
  arb_instance_counter_add (f->self->inst, "messages_total", 1);
  if (g_str_equal (type, "book"))
    pm_on_book (f, o);
  else if (g_str_equal (type, "price_change"))
    pm_on_price_change (f, o);
  else if (g_str_equal (type, "last_trade_price"))
    pm_on_last_trade (f, o);
  else if (g_str_equal (type, "best_bid_ask"))
    pm_on_best_bid_ask (f, o);
  else if (g_str_equal (type, "tick_size_change"))
    pm_on_tick_size (f, o);
  else if (g_str_equal (type, "market_resolved"))
    pm_on_market_resolved (f, o);
  else if (g_str_equal (type, "new_market"))
    arb_instance_counter_add (f->self->inst, "new_markets_seen_total", 1);
  else
    {
      g_autofree char *key = g_strdup_printf ("event:%s", type);
      arb_instance_counter_add (f->self->inst, "unknown_messages_total", 1);
      if (pm_first (f->self, key))
        arb_info (f->self->inst, "Polymarket sent an event_type \"%.40s\" this plugin does not know; ignored", type);
    }
}

/* one text frame: JSON (an object, or an array of them) or a bare word */
static void
pm_on_text (PmPlugin *self, const char *data, gsize length)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) touched = g_ptr_array_new ();
  PmFrame f = { self, touched, 0 };
  gsize start = 0;

  while (start < length && g_ascii_isspace (data[start]))
    start++;
  if (start == length || (data[start] != '{' && data[start] != '['))
    {
      g_autofree char *word = arb_ingest_clean_text (data, (gssize) length, 40);

      if (g_str_equal (word, "PONG"))
        return; /* the socket's liveness is all it says */
      if (g_str_equal (word, "NO NEW ASSETS"))
        return;
      arb_instance_counter_add (self->inst, "text_messages_total", 1);
      {
        g_autofree char *key = g_strdup_printf ("text:%s", word);
        if (pm_first (self, key))
          arb_warning (self->inst, "Polymarket said \"%s\" on the socket%s", word,
                       g_str_equal (word, "INVALID OPERATION") ? " (a subscription it did not take)" : "");
      }
      return;
    }
  root = arb_ingest_json_parse (data, length, &error);
  if (root == NULL)
    {
      pm_malformed (self, "frame that is not JSON", error->message);
      return;
    }
  if (JSON_NODE_HOLDS_OBJECT (root))
    pm_on_event (&f, json_node_get_object (root));
  else if (JSON_NODE_HOLDS_ARRAY (root))
    {
      JsonArray *a = json_node_get_array (root);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          if (JSON_NODE_HOLDS_OBJECT (e))
            pm_on_event (&f, json_node_get_object (e));
          else
            pm_malformed (self, "batch element that is not an object", arb_ingest_json_kind (e));
        }
    }
  else
    pm_malformed (self, "frame that is neither an object nor an array", arb_ingest_json_kind (root));

  for (guint i = 0; i < touched->len; i++)
    {
      PmToken *t = g_ptr_array_index (touched, i);
      pm_publish_token (self, t, t->time_us);
    }
  if (!self->ws_healthy && self->ws != NULL && arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_OPEN)
    {
      self->ws_healthy = TRUE;
      pm_report_health (self);
    }
}

/* ------------------------------------------------------------------------ */
/* The socket                                                               */

static char *
pm_subscribe_text (GPtrArray *ids, gboolean initial)
{
  g_autoptr(GString) s = g_string_new ("{\"assets_ids\":[");

  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s\"%s\"", i > 0 ? "," : "", (char *) g_ptr_array_index (ids, i));
  if (initial)
    g_string_append (s, "],\"type\":\"market\",\"initial_dump\":true,\"custom_feature_enabled\":true}");
  else
    g_string_append (s, "],\"operation\":\"subscribe\",\"initial_dump\":true,\"custom_feature_enabled\":true}");
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* subscribes what is not yet: all in the first form on a fresh session
 * (sending that form twice is refused with INVALID OPERATION), the
 * dynamic form afterwards */
static void
pm_subscribe_new (PmPlugin *self, gboolean initial)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autofree char *text = NULL;

  for (guint i = 0; i < self->markets->len; i++)
    {
      PmMarket *m = g_ptr_array_index (self->markets, i);
      for (guint j = 0; !m->final && j < m->tokens->len; j++)
        {
          PmToken *t = g_ptr_array_index (m->tokens, j);
          if (!t->subscribed)
            g_ptr_array_add (ids, t);
        }
    }
  if (ids->len == 0)
    return;
  for (guint i = 0; i < ids->len; i++)
    {
      PmToken *t = g_ptr_array_index (ids, i);
      g_ptr_array_index (ids, i) = t->token_id;
      t->subscribed = TRUE;
    }
  text = pm_subscribe_text (ids, initial);
  if (!arb_prediction_ws_send (self->ws, text))
    return;
  arb_instance_counter_add (self->inst, "subscriptions_total", 1);
  arb_debug (self->inst, "subscribed %u asset%s%s", ids->len, ids->len == 1 ? "" : "s", initial ? "" : " (added)");
}

static void
pm_ws_opened (gpointer data)
{
  PmPlugin *self = data;

  for (guint i = 0; i < self->markets->len; i++)
    {
      PmMarket *m = g_ptr_array_index (self->markets, i);
      for (guint j = 0; j < m->tokens->len; j++)
        ((PmToken *) g_ptr_array_index (m->tokens, j))->subscribed = FALSE;
    }
  pm_subscribe_new (self, TRUE);
}

static void
pm_ws_text (gpointer data, const char *text, gsize length)
{
  pm_on_text (data, text, length);
}

static void
pm_ws_changed (gpointer data)
{
  PmPlugin *self = data;

  if (arb_prediction_ws_get_state (self->ws) != ARB_PREDICTION_WS_OPEN)
    self->ws_healthy = FALSE;
  pm_report_health (self);
}

/* the text PING every ping_interval; a quiet market is published again with
 * the time the socket last proved alive: a live subscription that brought
 * no change means the book did not change */
static void
pm_ws_heartbeat (gpointer data)
{
  PmPlugin *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 last_rx = arb_prediction_ws_get_last_rx (self->ws);
  gint64 alive_us = arb_now_us () - (now - last_rx);
  GHashTableIter it;
  PmToken *t;

  arb_prediction_ws_send (self->ws, "PING");
  if (now - last_rx > self->ws_config.ping_interval_ms * 2000)
    return;
  g_hash_table_iter_init (&it, self->by_token);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &t))
    if (!t->market->final && t->published_us != 0 && now - t->published_us >= self->ws_config.ping_interval_ms * 1000)
      pm_publish_token (self, t, MAX (alive_us, t->time_us));
}

static const ArbPredictionWsFuncs pm_ws_funcs = {
  .prepare = NULL,
  .opened = pm_ws_opened,
  .text = pm_ws_text,
  .changed = pm_ws_changed,
  .heartbeat = pm_ws_heartbeat,
};

/* the socket runs while some market is not settled */
static void
pm_ws_update (PmPlugin *self)
{
  guint live = 0;

  for (guint i = 0; i < self->markets->len; i++)
    live += !((PmMarket *) g_ptr_array_index (self->markets, i))->final;
  if (!self->running)
    return;
  if (live == 0)
    {
      if (arb_prediction_ws_get_state (self->ws) != ARB_PREDICTION_WS_IDLE)
        {
          arb_info (self->inst, "every followed market is settled: the socket is closed");
          arb_prediction_ws_stop (self->ws);
          self->ws_healthy = FALSE;
        }
      return;
    }
  if (arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_IDLE)
    arb_prediction_ws_start (self->ws);
  else if (arb_prediction_ws_get_state (self->ws) == ARB_PREDICTION_WS_OPEN)
    pm_subscribe_new (self, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Gamma: markets and statuses                                              */

static void
pm_apply_status (PmPlugin *self, PmMarket *m, const PmGamma *g)
{
  gboolean final = TRUE;
  gint64 when = g->closed_us != 0 ? g->closed_us : g->updated_us;

  for (guint i = 0; i < m->tokens->len; i++)
    {
      PmToken *t = g_ptr_array_index (m->tokens, i);
      guint index;
      PmStatus st;

      /* by token id: the outcome's place in Gamma's arrays */
      if (!g_ptr_array_find_with_equal_func (g->token_ids, t->token_id, g_str_equal, &index))
        {
          final = FALSE;
          continue;
        }
      pm_gamma_status (g, index, self->disputed_halts, &st);
      /* the socket's market_resolved holds the market closed until Gamma settles it */
      if (m->resolved_on_socket && (st.state == ARB_MARKET_OPEN || st.state == ARB_MARKET_HALTED))
        {
          g_free (st.reason);
          final = FALSE;
          continue;
        }
      arb_prediction_status_publish (self->status, t->market_id, st.state, st.has_settlement ? &st.settlement : NULL,
                                     st.reason, st.state == ARB_MARKET_OPEN ? 0 : when);
      final &= arb_prediction_state_is_final (st.state);
      g_free (st.reason);
    }
  if (final && !m->final)
    {
      m->final = TRUE;
      arb_info (self->inst, "market %s (%s) is settled; no longer followed", m->gamma_id, m->slug);
      pm_ws_update (self);
    }
}

/* @m is in Gamma event @event_id: every one of its tokens is published to
 * the host as in polymarket-event:<id>, again when Gamma moves it */
static void
pm_set_event (PmPlugin *self, PmMarket *m, const char *event_id)
{
  g_autofree char *event = NULL;

  if (event_id == NULL)
    return;
  if (g_strcmp0 (m->event_id, event_id) != 0)
    {
      if (m->event_id != NULL)
        arb_info (self->inst, "Gamma moved market %s (%s) from event %s to event %s", m->gamma_id, m->slug,
                  m->event_id, event_id);
      g_free (m->event_id);
      m->event_id = g_strdup (event_id);
    }
  event = g_strdup_printf ("polymarket-event:%s", event_id);
  /* once per change: the status helper remembers what it published */
  for (guint i = 0; i < m->tokens->len; i++)
    arb_prediction_status_publish_event (self->status, ((PmToken *) g_ptr_array_index (m->tokens, i))->market_id,
                                         event);
}

/* a market from Gamma: new ones are followed, known ones get their status;
 * @via_event (nullable) is the event it was found through, for an answer
 * that does not name the market's events itself */
static void
pm_take_market (PmPlugin *self, const PmGamma *g, const char *via_event)
{
  PmMarket *m = g_hash_table_lookup (self->by_gamma_id, g->id);
  gboolean is_new = m == NULL;

  if (m == NULL)
    {
      m = g_new0 (PmMarket, 1);
      m->gamma_id = g_strdup (g->id);
      m->condition_id = g_strdup (g->condition_id);
      m->slug = g_strdup (g->slug != NULL ? g->slug : "");
      m->tokens = g_ptr_array_new_with_free_func ((GDestroyNotify) pm_token_free);
      for (guint i = 0; i < g->token_ids->len; i++)
        {
          const char *id = g_ptr_array_index (g->token_ids, i);
          PmToken *t;

          if (g_hash_table_contains (self->by_token, id))
            continue; /* the same token twice: keep the first */
          t = g_new0 (PmToken, 1);
          t->token_id = g_strdup (id);
          t->market_id = g_strdup_printf ("polymarket:%s", id);
          t->outcome = g_strdup (g_ptr_array_index (g->outcomes, i));
          t->market = m;
          t->bids = arb_prediction_levels_new ();
          t->asks = arb_prediction_levels_new ();
          g_ptr_array_add (m->tokens, t);
          g_hash_table_insert (self->by_token, t->token_id, t);
        }
      g_ptr_array_add (self->markets, m);
      g_hash_table_insert (self->by_gamma_id, m->gamma_id, m);
      g_hash_table_insert (self->by_condition, m->condition_id, m);
      arb_info (self->inst, "following %s (Gamma market %s): %u outcome%s", m->slug, m->gamma_id, m->tokens->len,
                m->tokens->len == 1 ? "" : "s");
    }
  pm_set_event (self, m, g->event_id != NULL ? g->event_id : via_event);
  pm_apply_status (self, m, g);
  pm_ws_update (self);
  /* a list answer (/markets?slug=) may not carry events[]; the market's own
   * answer does: ask for it now rather than at the next status round, so
   * the event is known before the first order */
  if (is_new && m->event_id == NULL && !m->final)
    pm_poll_market (self, m);
}

static void
pm_gamma_ok (PmPlugin *self)
{
  self->gamma_failures = 0;
  g_clear_pointer (&self->gamma_problem, g_free);
}

static void pm_gamma_failed (PmPlugin *self, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
pm_gamma_failed (PmPlugin *self, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_free (self->gamma_problem);
  self->gamma_problem = g_strdup_vprintf (format, args);
  va_end (args);
  self->gamma_failures++;
}

/* an HTTP error: the reason, and Retry-After on a 429 */
static void
pm_gamma_http_error (PmPlugin *self, SoupMessage *msg, GBytes *body)
{
  guint status = soup_message_get_status (msg);
  gsize length = 0;
  const char *text = g_bytes_get_data (body, &length);
  ArbIngestErrorBody e;
  const char *phrase = arb_ingest_status_phrase (status, soup_message_get_reason_phrase (msg));

  arb_ingest_error_body_decode (text, length, &e);
  if (status == 429)
    {
      const char *retry = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After");
      gint64 wait_ms = 0;

      if (!arb_ingest_retry_after_ms (retry, arb_now_us (), &wait_ms) || wait_ms <= 0)
        wait_ms = MAX (self->status_interval_ms, 10000);
      self->gamma_hold_until_us = g_get_monotonic_time () + wait_ms * 1000;
      arb_instance_counter_add (self->inst, "rate_limited_total", 1);
    }
  pm_gamma_failed (self, "Gamma HTTP %u%s%s%s%s", status, phrase != NULL ? " " : "", phrase != NULL ? phrase : "",
                   e.message != NULL ? ": " : "", e.message != NULL ? e.message : "");
  arb_ingest_error_body_clear (&e);
}

/* the markets of one discovery answer that match @sel */
static guint
pm_take_markets (PmPlugin *self, PmSelector *sel, JsonNode *node, guint *n_bad)
{
  guint taken = 0;
  JsonArray *a;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autoptr(JsonArray) one = json_array_new ();
      json_array_add_element (one, json_node_copy (node));
      g_autoptr(JsonNode) wrapped = json_node_init_array (json_node_alloc (), one);
      return pm_take_markets (self, sel, wrapped, n_bad);
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      (*n_bad)++;
      return 0;
    }
  a = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      JsonObject *o;
      g_autoptr(GError) error = NULL;
      PmGamma g;

      if (!JSON_NODE_HOLDS_OBJECT (e))
        {
          (*n_bad)++;
          continue;
        }
      o = json_node_get_object (e);
      if (sel->kind == PM_SEL_EVENT)
        {
          const char *slug = arb_ingest_json_get_string (o, "slug");
          JsonNode *markets = json_object_get_member (o, "markets");
          g_autofree char *event_id = NULL;

          if (g_strcmp0 (slug, sel->value) != 0)
            continue;
          event_id = pm_gamma_id (o);
          if (markets == NULL || !JSON_NODE_HOLDS_ARRAY (markets))
            {
              (*n_bad)++;
              continue;
            }
          /* every market of the event */
          {
            JsonArray *ma = json_node_get_array (markets);
            for (guint j = 0; j < json_array_get_length (ma); j++)
              {
                JsonNode *me = json_array_get_element (ma, j);
                g_autoptr(GError) merr = NULL;
                PmGamma mg;

                if (!JSON_NODE_HOLDS_OBJECT (me) || !pm_gamma_decode (json_node_get_object (me), &mg, &merr))
                  {
                    (*n_bad)++;
                    if (merr != NULL)
                      pm_malformed (self, "Gamma market", merr->message);
                    continue;
                  }
                pm_take_market (self, &mg, event_id);
                pm_gamma_clear (&mg);
                taken++;
              }
          }
          continue;
        }
      if (!pm_gamma_decode (o, &g, &error))
        {
          (*n_bad)++;
          pm_malformed (self, "Gamma market", error->message);
          continue;
        }
      if ((sel->kind == PM_SEL_SLUG && g_strcmp0 (g.slug, sel->value) == 0)
          || (sel->kind == PM_SEL_CONDITION && g_ascii_strcasecmp (g.condition_id, sel->value) == 0))
        {
          pm_take_market (self, &g, NULL);
          taken++;
        }
      pm_gamma_clear (&g);
    }
  return taken;
}

static void
pm_on_discovered (gpointer data, gpointer tag, SoupMessage *msg, GBytes *body, const GError *error)
{
  PmPlugin *self = data;
  PmSelector *sel = tag;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  gsize length = 0;
  const char *text;
  guint n_bad = 0, taken;

  sel->in_flight = FALSE;
  if (error != NULL)
    {
      pm_gamma_failed (self, "Gamma: %s", error->message);
      pm_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      guint status = soup_message_get_status (msg);
      if (status == 404 || status == 422)
        {
          /* Gamma does not know it: the selector's problem, not Gamma's */
          g_free (sel->problem);
          sel->problem = g_strdup_printf ("Gamma has no market for %s %s (HTTP %u)", pm_selector_kind (sel), sel->value,
                                          status);
          pm_gamma_ok (self);
        }
      else
        pm_gamma_http_error (self, msg, body);
      pm_report_health (self);
      return;
    }
  text = g_bytes_get_data (body, &length);
  root = arb_ingest_json_parse (text, length, &local);
  if (root == NULL)
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      pm_gamma_failed (self, "Gamma: not JSON: %s", local->message);
      pm_report_health (self);
      return;
    }
  pm_gamma_ok (self);
  taken = pm_take_markets (self, sel, root, &n_bad);
  if (taken > 0)
    {
      sel->found = TRUE;
      g_clear_pointer (&sel->problem, g_free);
    }
  else
    {
      g_free (sel->problem);
      sel->problem = g_strdup_printf (n_bad > 0 ? "Gamma's answer for %s %s holds no usable market"
                                                : "Gamma has no market for %s %s",
                                      pm_selector_kind (sel), sel->value);
    }
  pm_report_health (self);
}

static void
pm_discover (PmPlugin *self, PmSelector *sel)
{
  g_autoptr(GString) uri = g_string_new (self->base_url);
  SoupMessage *msg;

  switch (sel->kind)
    {
    case PM_SEL_SLUG:
      g_string_append (uri, "/markets?slug=");
      break;
    case PM_SEL_CONDITION:
      g_string_append (uri, "/markets?condition_ids=");
      break;
    case PM_SEL_EVENT:
    default:
      g_string_append (uri, "/events?slug=");
      break;
    }
  g_string_append_uri_escaped (uri, sel->value, NULL, TRUE);
  msg = soup_message_new (SOUP_METHOD_GET, uri->str);
  if (msg == NULL)
    return;
  sel->in_flight = TRUE;
  arb_prediction_http_send (self->http, msg, pm_on_discovered, self, sel, NULL);
}

static void
pm_on_market_status (gpointer data, gpointer tag, SoupMessage *msg, GBytes *body, const GError *error)
{
  PmPlugin *self = data;
  PmMarket *m = g_hash_table_lookup (self->by_gamma_id, tag);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  JsonNode *node;
  gsize length = 0;
  const char *text;
  PmGamma g;

  if (m == NULL)
    return;
  m->in_flight = FALSE;
  if (error != NULL)
    {
      pm_gamma_failed (self, "Gamma: %s", error->message);
      pm_report_health (self);
      return;
    }
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      pm_gamma_http_error (self, msg, body);
      pm_report_health (self);
      return;
    }
  text = g_bytes_get_data (body, &length);
  root = arb_ingest_json_parse (text, length, &local);
  node = root;
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    {
      /* a list answer: the element with this market's id */
      JsonArray *a = json_node_get_array (node);
      node = NULL;
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          if (JSON_NODE_HOLDS_OBJECT (e)
              && g_strcmp0 (arb_ingest_json_get_string (json_node_get_object (e), "id"), m->gamma_id) == 0)
            node = e;
        }
    }
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      pm_gamma_failed (self, "Gamma: the status of market %s is %s", m->gamma_id,
                       local != NULL ? local->message : "not an object");
      pm_report_health (self);
      return;
    }
  if (!pm_gamma_decode (json_node_get_object (node), &g, &local) || !g_str_equal (g.id, m->gamma_id))
    {
      arb_instance_counter_add (self->inst, "malformed_answers_total", 1);
      pm_gamma_failed (self, "Gamma: the status of market %s: %s", m->gamma_id,
                       local != NULL ? local->message : "another market's");
      if (local == NULL)
        pm_gamma_clear (&g);
      pm_report_health (self);
      return;
    }
  pm_gamma_ok (self);
  pm_set_event (self, m, g.event_id);
  pm_apply_status (self, m, &g);
  pm_gamma_clear (&g);
  pm_report_health (self);
}

static void
pm_poll_market (PmPlugin *self, PmMarket *m)
{
  g_autofree char *uri = NULL;
  SoupMessage *msg;

  if (m->in_flight || m->final || !self->running)
    return;
  uri = g_strdup_printf ("%s/markets/%s", self->base_url, m->gamma_id);
  msg = soup_message_new (SOUP_METHOD_GET, uri);
  if (msg == NULL)
    return;
  m->in_flight = TRUE;
  arb_prediction_http_send (self->http, msg, pm_on_market_status, self, g_strdup (m->gamma_id), g_free);
}

static gboolean pm_on_status_timer (gpointer data);

static void
pm_schedule_status (PmPlugin *self)
{
  gint64 delay = self->status_interval_ms;

  for (guint i = 1; i < self->gamma_failures && delay < PM_BACKOFF_CAP_MS; i++)
    delay *= 2;
  delay = MIN (delay, MAX (PM_BACKOFF_CAP_MS, self->status_interval_ms));
  arb_prediction_timer_clear (&self->status_timer);
  self->status_timer = arb_prediction_timer_new (self->inst, delay, pm_on_status_timer, self);
}

/* every status_interval: what was not found yet, and every market not settled */
static void
pm_status_round (PmPlugin *self)
{
  gint64 hold = self->gamma_hold_until_us - g_get_monotonic_time ();

  if (hold > 0)
    return;
  for (guint i = 0; i < self->selectors->len; i++)
    {
      PmSelector *s = g_ptr_array_index (self->selectors, i);
      if (!s->found && !s->in_flight)
        pm_discover (self, s);
    }
  for (guint i = 0; i < self->markets->len; i++)
    pm_poll_market (self, g_ptr_array_index (self->markets, i));
}

static gboolean
pm_on_status_timer (gpointer data)
{
  PmPlugin *self = data;

  g_clear_pointer (&self->status_timer, g_source_unref);
  if (!self->running)
    return G_SOURCE_REMOVE;
  pm_status_round (self);
  pm_schedule_status (self);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                               */

static const ArbConfigKey pm_config[] = {
  { "market_slugs", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "markets to follow by Gamma slug, comma-separated: will-bitcoin-reach-150000-by-december-31-2026" },
  { "condition_ids", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "markets to follow by condition id (0x and 64 hex digits), comma-separated" },
  { "event_slugs", ARB_CFG_STRV, ARB_CFG_NONE, NULL, 0, 0, NULL,
    "events whose every market is followed, by Gamma event slug, comma-separated" },
  { "base_url", ARB_CFG_STRING, ARB_CFG_NONE, PM_GAMMA_URL, 0, 0, NULL,
    "Gamma's root URL (a proxy, a test server)" },
  { "ws_url", ARB_CFG_STRING, ARB_CFG_NONE, PM_WS_URL, 0, 0, NULL,
    "the CLOB market WebSocket (a proxy, a test server)" },
  { "status_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 86400000, NULL,
    "how often Gamma is asked for the status of every market not yet settled" },
  { "ping_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "period of the text PING heartbeat on the socket (the server closes a socket without one)" },
  { "stale_after", ARB_CFG_DURATION, ARB_CFG_NONE, "30s", 100, 3600000, NULL,
    "a socket with no frame (a PONG included) for this long is a failure: closed and opened again" },
  { "timeout", ARB_CFG_DURATION, ARB_CFG_NONE, "10s", 100, 300000, NULL,
    "a Gamma request or WebSocket handshake without an answer by then is abandoned" },
  ARB_PREDICTION_RECONNECT_KEYS,
  { "disputed_trading", ARB_CFG_ENUM, ARB_CFG_NONE, "open", 0, 0, "open,halt",
    "a disputed market that still trades on Polymarket: open keeps taking orders, halt refuses them (DISPUTED)" },
  { NULL }
};

static void
pm_stop (gpointer data)
{
  PmPlugin *self = data;

  self->running = FALSE;
  self->ws_healthy = FALSE;
  arb_prediction_timer_clear (&self->status_timer);
  if (self->http != NULL)
    arb_prediction_http_cancel_all (self->http);
  if (self->ws != NULL)
    arb_prediction_ws_stop (self->ws);
  for (guint i = 0; i < self->selectors->len; i++)
    ((PmSelector *) g_ptr_array_index (self->selectors, i))->in_flight = FALSE;
  for (guint i = 0; i < self->markets->len; i++)
    ((PmMarket *) g_ptr_array_index (self->markets, i))->in_flight = FALSE;
}

static void
pm_destroy (gpointer data)
{
  PmPlugin *self = data;

  pm_stop (self);
  g_clear_pointer (&self->ws, arb_prediction_ws_free);
  g_clear_pointer (&self->http, arb_prediction_http_free);
  g_clear_pointer (&self->status, arb_prediction_status_free);
  g_clear_pointer (&self->by_token, g_hash_table_unref);
  g_clear_pointer (&self->by_condition, g_hash_table_unref);
  g_clear_pointer (&self->by_gamma_id, g_hash_table_unref);
  g_clear_pointer (&self->markets, g_ptr_array_unref);
  g_clear_pointer (&self->selectors, g_ptr_array_unref);
  g_clear_pointer (&self->logged, g_hash_table_unref);
  g_free (self->gamma_problem);
  g_free (self->base_url);
  g_free (self->ws_url);
  g_free (self);
}

static gboolean
pm_add_selectors (PmPlugin *self, const char *key, PmSelKind kind, GError **error)
{
  const char *const *values = arb_instance_get_strv (self->inst, key);

  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    {
      g_autofree char *v = g_strstrip (g_strdup (values[i]));
      PmSelector *s;

      if (*v == '\0')
        continue;
      if (kind == PM_SEL_CONDITION
          && (!g_str_has_prefix (v, "0x") || strlen (v) != 66 || strspn (v + 2, "0123456789abcdefABCDEF") != 64))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "%s: \"%s\" is not a condition id (0x and 64 hex digits)", key, v);
          return FALSE;
        }
      if (kind != PM_SEL_CONDITION && strpbrk (v, " /?&#%") != NULL)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "%s: \"%s\" is not a slug", key, v);
          return FALSE;
        }
      s = g_new0 (PmSelector, 1);
      s->kind = kind;
      s->value = kind == PM_SEL_CONDITION ? g_ascii_strdown (v, -1) : g_steal_pointer (&v);
      g_ptr_array_add (self->selectors, s);
    }
  return TRUE;
}

static gpointer
pm_create (ArbInstance *inst, GError **error)
{
  PmPlugin *self = g_new0 (PmPlugin, 1);
  g_autofree char *base_url = NULL;
  g_autofree char *ws_url = NULL;

  self->inst = inst;
  self->selectors = g_ptr_array_new_with_free_func ((GDestroyNotify) pm_selector_free);
  self->markets = g_ptr_array_new_with_free_func ((GDestroyNotify) pm_market_free);
  self->by_token = g_hash_table_new (g_str_hash, g_str_equal);
  self->by_condition = g_hash_table_new (g_str_hash, g_str_equal);
  self->by_gamma_id = g_hash_table_new (g_str_hash, g_str_equal);
  self->logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->publish_quote = arb_instance_publish_quote;
  if (!pm_add_selectors (self, "market_slugs", PM_SEL_SLUG, error)
      || !pm_add_selectors (self, "condition_ids", PM_SEL_CONDITION, error)
      || !pm_add_selectors (self, "event_slugs", PM_SEL_EVENT, error))
    {
      pm_destroy (self);
      return NULL;
    }
  if (self->selectors->len == 0)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                           "nothing to follow: set market_slugs, condition_ids or event_slugs");
      pm_destroy (self);
      return NULL;
    }
  base_url = arb_ingest_base_url_check (arb_instance_get_string (inst, "base_url"), error);
  ws_url = base_url != NULL ? arb_prediction_ws_url_check ("ws_url", arb_instance_get_string (inst, "ws_url"), error)
                            : NULL;
  if (ws_url == NULL)
    {
      pm_destroy (self);
      return NULL;
    }
  self->base_url = g_steal_pointer (&base_url);
  self->ws_url = g_steal_pointer (&ws_url);
  self->status_interval_ms = arb_instance_get_duration_ms (inst, "status_interval");
  self->timeout_ms = arb_instance_get_duration_ms (inst, "timeout");
  self->disputed_halts = g_strcmp0 (arb_instance_get_string (inst, "disputed_trading"), "halt") == 0;
  self->ws_config.ping_interval_ms = arb_instance_get_duration_ms (inst, "ping_interval");
  self->ws_config.stale_after_ms = arb_instance_get_duration_ms (inst, "stale_after");
  self->ws_config.connect_timeout_ms = self->timeout_ms;
  self->ws_config.reconnect_min_ms = arb_instance_get_duration_ms (inst, "reconnect_min");
  self->ws_config.reconnect_max_ms = MAX (arb_instance_get_duration_ms (inst, "reconnect_max"),
                                          self->ws_config.reconnect_min_ms);
  self->ws_config.protocol_pings = FALSE;
  self->ws_config.max_payload = 32 * 1024 * 1024;
  self->http = arb_prediction_http_new (inst, self->timeout_ms);
  self->ws = arb_prediction_ws_new (inst, "Polymarket", self->ws_url, &pm_ws_funcs, self, &self->ws_config);
  self->status = arb_prediction_status_new (inst);
  return self;
}

static gboolean
pm_start (gpointer data, GError **error)
{
  PmPlugin *self = data;

  pm_stop (self);
  self->running = TRUE;
  self->gamma_failures = 0;
  self->gamma_hold_until_us = 0;
  arb_info (self->inst, "following %u selector%s through %s, prices from %s, statuses every %" G_GINT64_FORMAT " ms",
            self->selectors->len, self->selectors->len == 1 ? "" : "s", self->base_url, self->ws_url,
            self->status_interval_ms);
  /* an unreachable upstream never fails the start: it is retried and shown as health */
  for (guint i = 0; i < self->selectors->len; i++)
    {
      PmSelector *s = g_ptr_array_index (self->selectors, i);
      if (!s->found)
        pm_discover (self, s);
    }
  for (guint i = 0; i < self->markets->len; i++)
    pm_poll_market (self, g_ptr_array_index (self->markets, i));
  pm_ws_update (self);
  pm_schedule_status (self);
  return TRUE;
}

static const ArbIngestVTable pm_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = pm_create,
  .start = pm_start,
  .stop = pm_stop,
  .destroy = pm_destroy,
};

static const ArbPluginDesc pm_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-polymarket",
  .version = "1.1.0",
  .summary = "Polymarket prediction markets: Gamma metadata and statuses, CLOB market WebSocket prices",
  .kind = ARB_PLUGIN_INGEST,
  .config = pm_config,
  .vtable = &pm_vtable,
};

ARB_PLUGIN_DEFINE (ingest_polymarket, pm_desc)
