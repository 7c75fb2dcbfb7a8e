/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Decoding tests of ingest-polymarket against every recorded Polymarket
 * payload in ../shared/fixtures/upstream/polymarket ($ARB_FIXTURES_DIR):
 * Gamma's markets and events (JSON arrays inside strings, 77–78 digit token
 * ids), the statuses they mean (resolved, voided 50-50, disputed, closed),
 * the market WebSocket's sessions frame by frame (books sorted whatever the
 * order, price_change's own best bid and ask, last trades, tick sizes,
 * market_resolved), and malformed input: every frame cut short and every
 * number replaced by garbage is counted, logged once, and never gives a
 * price the clean frame would not have given. The plugin's source is
 * compiled in; the plugin against a live (fake) upstream is
 * tests/test-ingest-prediction.c.
 */

#include "arb-ingest-polymarket.c"
#include "tests/arb-prediction-test.h"

#define BTC_YES "20773232163871213384917296104489009032842658986967298485532941984084374884614"
#define BTC_NO  "34723739154358735348092883040308839756380110246987612836492306249427626619927"
#define ETH_YES "46096662783338673092330110558598013304958671615798781518556281431378005814059"
#define ETH_NO  "86246268009048762669948111922835778640552258264973944583659196153404398703833"
#define UP      "70945937133212512974150829279089636051757640928559035835817800969929165047649"
#define DOWN    "19302467774626838573549198877594945407906445297103381493617500201477027898258"

static gboolean
need_fixtures (char **dir)
{
  *dir = pt_fixtures ("polymarket");
  if (*dir == NULL)
    {
      g_test_skip ("no Polymarket fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream");
      return FALSE;
    }
  return TRUE;
}

/* a plugin of our own source on the host's instance, quotes captured */
static PmPlugin *
plugin_new (PtHost *h, const char *extra)
{
  g_autoptr(GError) error = NULL;
  PmPlugin *p = pm_create (h->inst, &error);

  g_assert_no_error (error);
  g_assert_nonnull (p);
  p->publish_quote = pt_capture;
  if (extra != NULL && strstr (extra, "halt") != NULL)
    p->disputed_halts = TRUE;
  return p;
}

static PtHost *
host_new (void)
{
  return pt_host_new ("plugin=ingest-polymarket\nbase_url=http://127.0.0.1:9\nws_url=ws://127.0.0.1:9/ws/market\n"
                      "market_slugs=x\n");
}

/* every market object in a Gamma answer (a list, one market, or events) */
static GPtrArray *
gamma_markets (JsonNode *root)
{
  GPtrArray *out = g_ptr_array_new ();
  JsonArray *a;

  if (JSON_NODE_HOLDS_OBJECT (root))
    {
      g_ptr_array_add (out, json_node_get_object (root));
      return out;
    }
  a = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      JsonNode *markets = json_object_get_member (o, "markets");
      if (markets != NULL && JSON_NODE_HOLDS_ARRAY (markets))
        for (guint j = 0; j < json_array_get_length (json_node_get_array (markets)); j++)
          g_ptr_array_add (out, json_array_get_object_element (json_node_get_array (markets), j));
      else
        g_ptr_array_add (out, o);
    }
  return out;
}

/* follows every market of @file (a Gamma answer) */
static void
follow (PmPlugin *p, const char *dir, const char *file)
{
  gsize length = 0;
  g_autofree char *text = pt_read (dir, file, &length);
  g_autoptr(JsonNode) root = arb_ingest_json_parse (text, length, NULL);
  g_autoptr(GPtrArray) markets = NULL;

  g_assert_nonnull (root);
  markets = gamma_markets (root);
  for (guint i = 0; i < markets->len; i++)
    {
      g_autoptr(GError) error = NULL;
      PmGamma g;
      g_assert_true (pm_gamma_decode (g_ptr_array_index (markets, i), &g, &error));
      g_assert_no_error (error);
      pm_take_market (p, &g, NULL);
      pm_gamma_clear (&g);
    }
}

/* ------------------------------------------------------------------------ */
/* Every recorded file                                                      */

typedef struct {
  const char *file;
  guint       markets; /* Gamma market objects in it */
} GammaCount;

static const GammaCount gamma_counts[] = {
  { "gamma_markets_active.json", 2 },
  { "gamma_market_by_id.json", 1 },
  { "gamma_market_resolved_yes.json", 1 },
  { "gamma_market_voided_5050.json", 1 },
  { "gamma_market_disputed.json", 1 },
  { "gamma_events_by_slug.json", 3 },
  { "gamma_markets_unknown_slug.json", 0 },
};

static void
test_every_fixture (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *manifest_text = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  JsonArray *fixtures;
  gsize length = 0;
  guint checked = 0;

  if (!need_fixtures (&dir))
    return;
  manifest_text = pt_read (dir, "manifest.json", &length);
  manifest = arb_ingest_json_parse (manifest_text, length, NULL);
  g_assert_nonnull (manifest);
  fixtures = json_object_get_array_member (json_node_get_object (manifest), "fixtures");
  for (guint i = 0; i < json_array_get_length (fixtures); i++)
    {
      JsonObject *f = json_array_get_object_element (fixtures, i);
      const char *file = json_object_get_string_member (f, "file");
      const char *kind = json_object_get_string_member_with_default (f, "kind", "http");
      gint64 status = json_object_get_int_member_with_default (f, "status", 200);
      g_autofree char *body = pt_read (dir, file, &length);
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = NULL;

      g_test_message ("%s", file);
      checked++;
      if (g_str_equal (kind, "ws"))
        {
          /* the sessions have their own tests below; here, every frame is
           * valid JSON or a known word */
          g_autoptr(GPtrArray) frames = pt_transcript (dir, file);
          g_assert_cmpuint (frames->len, >, 0);
          for (guint k = 0; k < frames->len; k++)
            {
              const char *fr = g_ptr_array_index (frames, k);
              g_autoptr(JsonNode) n = NULL;
              if (*fr != '{' && *fr != '[')
                continue;
              n = arb_ingest_json_parse (fr, strlen (fr), &error);
              g_assert_no_error (error);
            }
          continue;
        }
      if (g_str_has_suffix (file, ".txt") || status >= 400)
        {
          /* an error body, JSON or not, gives its message */
          ArbIngestErrorBody e;
          arb_ingest_error_body_decode (body, length, &e);
          g_assert_nonnull (e.message);
          g_assert_cmpuint (strlen (e.message), >, 0);
          if (g_str_equal (file, "rate_limit_429_cloudflare.txt"))
            g_assert_cmpstr (e.message, ==, "error code: 1015");
          if (g_str_equal (file, "gamma_error_404.json"))
            g_assert_cmpstr (e.message, ==, "not found error: id not found");
          if (g_str_equal (file, "gamma_error_422.json"))
            g_assert_cmpstr (e.message, ==, "validation error: id is invalid");
          arb_ingest_error_body_clear (&e);
          continue;
        }
      root = arb_ingest_json_parse (body, length, &error);
      if (strstr (file, "malformed") != NULL)
        {
          /* refused whole, never a partial list */
          g_assert_null (root);
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
          g_assert_nonnull (strstr (error->message, "truncated"));
          continue;
        }
      g_assert_no_error (error);
      if (g_str_has_prefix (file, "gamma_"))
        {
          g_autoptr(GPtrArray) markets = gamma_markets (root);
          guint want = G_MAXUINT;

          for (guint k = 0; k < G_N_ELEMENTS (gamma_counts); k++)
            if (g_str_equal (gamma_counts[k].file, file))
              want = gamma_counts[k].markets;
          g_assert_cmpuint (markets->len, ==, want);
          for (guint k = 0; k < markets->len; k++)
            {
              g_autoptr(GError) merr = NULL;
              PmGamma g;

              g_assert_true (pm_gamma_decode (g_ptr_array_index (markets, k), &g, &merr));
              g_assert_no_error (merr);
              /* the double-decoded arrays, aligned; token ids as strings */
              g_assert_cmpuint (g.token_ids->len, ==, 2);
              g_assert_cmpuint (g.outcomes->len, ==, 2);
              g_assert_nonnull (g.prices);
              for (guint t = 0; t < 2; t++)
                {
                  gsize n = strlen (g_ptr_array_index (g.token_ids, t));
                  g_assert_cmpuint (n, >=, 76);
                  g_assert_cmpuint (n, <=, 78);
                }
              g_assert_cmpuint (strlen (g.condition_id), ==, 66);
              pm_gamma_clear (&g);
            }
        }
      else if (g_str_equal (file, "clob_book.json"))
        {
          /* the REST book has the socket's book shape: best levels last */
          PtHost *h = host_new ();
          PmPlugin *p = plugin_new (h, NULL);
          g_autoptr(GPtrArray) touched = g_ptr_array_new ();
          PmFrame fr = { p, touched, 0 };

          follow (p, dir, "gamma_markets_active.json");
          pm_on_book (&fr, json_node_get_object (root));
          g_assert_cmpuint (touched->len, ==, 1);
          pt_reset ();
          pm_publish_token (p, g_ptr_array_index (touched, 0), 0);
          g_assert_cmpstr (pt_last ("polymarket:" BTC_YES), ==, "0.041/0.042/0.042");
          pm_destroy (p);
          pt_host_free (h);
        }
      /* the other CLOB and RTDS bodies are not needed by the plugin (the
       * socket carries prices, Gamma the statuses); they parse, strictly */
    }
  g_assert_cmpuint (checked, ==, json_array_get_length (fixtures));
  g_assert_cmpuint (checked, >=, 27);
}

/* ------------------------------------------------------------------------ */
/* Statuses                                                                 */

typedef struct {
  const char *file;
  const char *from[4];  /* replacements in the file, pairs */
  const char *to[4];
  gboolean    halt;
  const char *want[2];  /* "state" or "state@settlement" per outcome */
  const char *reason;   /* the start of outcome 0's reason, NULL: none */
} StatusCase;

static const StatusCase status_cases[] = {
  { "gamma_market_by_id.json", { NULL }, { NULL }, FALSE, { "open", "open" }, NULL },
  { "gamma_market_resolved_yes.json", { NULL }, { NULL }, FALSE, { "resolved@1", "resolved@0" }, "resolved: Yes won" },
  { "gamma_market_resolved_yes.json", { "\"[\\\"1\\\", \\\"0\\\"]\"" }, { "\"[\\\"0\\\", \\\"1\\\"]\"" }, FALSE,
    { "resolved@0", "resolved@1" }, "resolved: No won" },
  { "gamma_market_voided_5050.json", { NULL }, { NULL }, FALSE, { "resolved@0.5", "resolved@0.5" },
    "resolved 50-50 (voided)" },
  { "gamma_market_disputed.json", { NULL }, { NULL }, FALSE, { "disputed", "disputed" }, "closed; the proposed" },
  /* still trading while disputed: by config */
  { "gamma_market_disputed.json", { "\"closed\": true" }, { "\"closed\": false" }, FALSE, { "open", "open" },
    "disputed; trading continues" },
  { "gamma_market_disputed.json", { "\"closed\": true" }, { "\"closed\": false" }, TRUE, { "disputed", "disputed" },
    "disputed while trading" },
  /* closed, no resolution yet; proposed */
  { "gamma_market_resolved_yes.json", { "\"umaResolutionStatus\": \"resolved\"," }, { "" }, FALSE,
    { "closed", "closed" }, "closed, awaiting resolution" },
  { "gamma_market_resolved_yes.json", { "\"umaResolutionStatus\": \"resolved\"" }, { "\"umaResolutionStatus\": \"proposed\"" },
    FALSE, { "closed", "closed" }, "closed; an outcome is proposed" },
  /* legacy oddities: no winner, and prices that are not terminal */
  { "gamma_market_resolved_yes.json", { "\"[\\\"1\\\", \\\"0\\\"]\"" }, { "\"[\\\"0\\\", \\\"0\\\"]\"" }, FALSE,
    { "closed", "closed" }, "resolved without a winner" },
  { "gamma_market_resolved_yes.json", { "\"[\\\"1\\\", \\\"0\\\"]\"" }, { "\"[\\\"0.58\\\", \\\"0.42\\\"]\"" }, FALSE,
    { "closed", "closed" }, "resolved, but the prices are not terminal" },
  /* a 99-cent price is not a resolution */
  { "gamma_market_by_id.json", { "\"[\\\"0.545\\\", \\\"0.455\\\"]\"" }, { "\"[\\\"0.999\\\", \\\"0.001\\\"]\"" }, FALSE,
    { "open", "open" }, NULL },
  /* not accepting orders, not closed */
  { "gamma_market_by_id.json", { "\"acceptingOrders\": true" }, { "\"acceptingOrders\": false" }, FALSE,
    { "halted", "halted" }, "not accepting orders" },
};

static void
test_status (gconstpointer data)
{
  const StatusCase *c = data;
  g_autofree char *dir = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  GString *s;
  gsize length = 0;
  PmGamma g;

  if (!need_fixtures (&dir))
    return;
  text = pt_read (dir, c->file, &length);
  s = g_string_new (text);
  for (guint i = 0; i < G_N_ELEMENTS (c->from) && c->from[i] != NULL; i++)
    g_assert_cmpuint (g_string_replace (s, c->from[i], c->to[i], 0), ==, 1);
  root = arb_ingest_json_parse (s->str, s->len, &error);
  g_string_free (s, TRUE);
  g_assert_no_error (error);
  g_assert_true (pm_gamma_decode (json_node_get_object (root), &g, &error));
  for (guint i = 0; i < 2; i++)
    {
      PmStatus st;
      g_autofree char *got = NULL;
      char buf[ARB_DECIMAL_BUFSIZE];

      pm_gamma_status (&g, i, c->halt, &st);
      got = st.has_settlement ? g_strdup_printf ("%s@%s", arb_market_state_to_string (st.state),
                                                 arb_decimal_format_short (st.settlement, buf))
                              : g_strdup (arb_market_state_to_string (st.state));
      g_assert_cmpstr (got, ==, c->want[i]);
      if (i == 0 && c->reason != NULL)
        g_assert_true (st.reason != NULL && g_str_has_prefix (st.reason, c->reason));
      if (i == 0 && c->reason == NULL)
        g_assert_null (st.reason);
      g_free (st.reason);
    }
  pm_gamma_clear (&g);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */

/* the tokens of every market object in @file */
static GPtrArray *
tokens_of (const char *dir, const char *file)
{
  gsize length = 0;
  g_autofree char *text = pt_read (dir, file, &length);
  g_autoptr(JsonNode) root = arb_ingest_json_parse (text, length, NULL);
  g_autoptr(GPtrArray) markets = gamma_markets (root);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < markets->len; i++)
    {
      PmGamma g;
      g_assert_true (pm_gamma_decode (g_ptr_array_index (markets, i), &g, NULL));
      for (guint t = 0; t < g.token_ids->len; t++)
        g_ptr_array_add (out, g_strdup_printf ("polymarket:%s", (char *) g_ptr_array_index (g.token_ids, t)));
      pm_gamma_clear (&g);
    }
  return out;
}

static void
assert_events (PtHost *h, GPtrArray *markets, const char *want)
{
  for (guint i = 0; i < markets->len; i++)
    {
      g_autofree char *got = pt_event (h, g_ptr_array_index (markets, i));
      g_test_message ("%s: %s", (char *) g_ptr_array_index (markets, i), got);
      g_assert_cmpstr (got, ==, want);
    }
}

/* every token of every market of a Gamma event is published in that event:
 * the event a market was found through, or the market's own events[] */
static void
test_events (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) fed = NULL;
  g_autoptr(GPtrArray) eth = NULL;
  g_autoptr(GPtrArray) btc = g_ptr_array_new ();
  PmSelector sel = { PM_SEL_EVENT, (char *) "fed-decision-in-december-2026", FALSE, FALSE, NULL };
  gsize length = 0;
  guint n_bad = 0;
  PtHost *h;
  PmPlugin *p;

  if (!need_fixtures (&dir))
    return;
  h = host_new ();
  p = plugin_new (h, NULL);
  /* GET /events?slug=…: one negRisk event, three markets, six tokens; the
   * nested markets name no events of their own */
  text = pt_read (dir, "gamma_events_by_slug.json", &length);
  root = arb_ingest_json_parse (text, length, NULL);
  g_assert_cmpuint (pm_take_markets (p, &sel, root, &n_bad), ==, 3);
  g_assert_cmpuint (n_bad, ==, 0);
  fed = tokens_of (dir, "gamma_events_by_slug.json");
  g_assert_cmpuint (fed->len, ==, 6);
  assert_events (h, fed, "polymarket-event:79420");
  /* GET /markets/698421: the market's events[] */
  follow (p, dir, "gamma_market_by_id.json");
  eth = tokens_of (dir, "gamma_market_by_id.json");
  assert_events (h, eth, "polymarket-event:82311");
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 8);
  /* a list answer without events[]: nothing yet (a running plugin asks
   * GET /markets/{id} at once) */
  follow (p, dir, "gamma_markets_active.json");
  g_ptr_array_add (btc, "polymarket:" BTC_YES);
  g_ptr_array_add (btc, "polymarket:" BTC_NO);
  assert_events (h, btc, NULL);
  /* the same answers again publish nothing */
  follow (p, dir, "gamma_market_by_id.json");
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 8);
  /* the BTC market's own answer names its event (an id as a number is taken
   * too), and later another: the new one replaces it */
  for (guint round = 0; round < 2; round++)
    {
      g_autofree char *list = pt_read (dir, "gamma_markets_active.json", &length);
      g_autoptr(JsonNode) node = arb_ingest_json_parse (list, length, NULL);
      JsonObject *o = json_array_get_object_element (json_node_get_array (node), 0);
      g_autoptr(JsonArray) events = json_array_new ();
      g_autoptr(JsonObject) event = json_object_new ();
      PmGamma g;

      json_object_set_int_member (event, "id", round == 0 ? 90001 : 90002);
      json_object_set_string_member (event, "slug", "bitcoin-above-in-2026");
      json_array_add_object_element (events, json_object_ref (event));
      json_object_set_array_member (o, "events", json_array_ref (events));
      g_assert_true (pm_gamma_decode (o, &g, NULL));
      g_assert_cmpstr (g.id, ==, "712034");
      pm_take_market (p, &g, NULL);
      pm_gamma_clear (&g);
      assert_events (h, btc, round == 0 ? "polymarket-event:90001" : "polymarket-event:90002");
    }
  g_assert_cmpfloat (pt_metric (h, "market_events_published_total"), ==, 12);
  g_assert_cmpfloat (pt_metric (h, "publish_errors_total"), ==, 0);
  g_assert_cmpuint (pt_warnings, ==, 0);
  pm_destroy (p);
  pt_host_free (h);
}

/* ------------------------------------------------------------------------ */
/* The market WebSocket, frame by frame                                     */

typedef struct {
  const char *transcript;
  const char *gamma;        /* the markets followed */
  const char *finals[4][2]; /* market, "bid/ask/last" */
  guint       events;       /* messages_total after the session */
} Session;

static const Session sessions[] = {
  { "ws_market_session.jsonl", "gamma_markets_active.json",
    { { "polymarket:" BTC_YES, "0.042/0.043/0.042" }, { "polymarket:" BTC_NO, "0.957/0.958/0.958" },
      { "polymarket:" ETH_YES, "0.54/0.55/0.55" }, { "polymarket:" ETH_NO, "0.45/0.46/0.45" } },
    11 },
  { "ws_market_resolution.jsonl", NULL,
    { { "polymarket:" UP, "0.985/0.999/0.99" }, { "polymarket:" DOWN, "0.001/0.015/0.03" } },
    11 },
};

/* the Up/Down market of ws_market_resolution.jsonl as Gamma would list it */
static void
follow_updown (PmPlugin *p, const char *dir)
{
  g_autofree char *text = pt_read (dir, "gamma_market_resolved_yes.json", NULL);
  GString *s = g_string_new (text);
  g_autoptr(JsonNode) root = NULL;
  PmGamma g;

  g_string_replace (s, "\"705118\"", "\"1188431\"", 0);
  g_string_replace (s, "0x0c85a1c381e532aed95401a9f6ea4de0051bacd7705bc071f70228e972f4e235",
                    "0x8f9c1e2d3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2", 0);
  g_string_replace (s, "75567331243790295716776893460846463905750098398062047253300665451449119091201", UP, 0);
  g_string_replace (s, "20033365468353542744491439332573233596372985272004533723474159387434949387691", DOWN, 0);
  g_string_replace (s, "\"closed\": true", "\"closed\": false", 0);
  g_string_replace (s, "\"umaResolutionStatus\": \"resolved\",", "", 0);
  root = arb_ingest_json_parse (s->str, s->len, NULL);
  g_string_free (s, TRUE);
  g_assert_true (pm_gamma_decode (json_node_get_object (root), &g, NULL));
  pm_take_market (p, &g, NULL);
  pm_gamma_clear (&g);
}

static PmPlugin *
session_plugin (PtHost *h, const Session *s, const char *dir)
{
  PmPlugin *p = plugin_new (h, NULL);

  if (s->gamma != NULL)
    follow (p, dir, s->gamma);
  else
    follow_updown (p, dir);
  return p;
}

static void
feed (PmPlugin *p, const char *frame)
{
  pm_on_text (p, frame, strlen (frame));
}

static void
test_session (gconstpointer data)
{
  const Session *s = data;
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  PtHost *h;
  PmPlugin *p;

  if (!need_fixtures (&dir))
    return;
  frames = pt_transcript (dir, s->transcript);
  h = host_new ();
  p = session_plugin (h, s, dir);
  pt_reset ();
  for (guint i = 0; i < frames->len; i++)
    feed (p, g_ptr_array_index (frames, i));
  for (guint i = 0; i < G_N_ELEMENTS (s->finals) && s->finals[i][0] != NULL; i++)
    g_assert_cmpstr (pt_last (s->finals[i][0]), ==, s->finals[i][1]);
  g_assert_cmpfloat (pt_metric (h, "messages_total"), ==, s->events);
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 0);
  g_assert_cmpfloat (pt_metric (h, "publish_errors_total"), ==, 0);
  g_assert_cmpuint (pt_warnings, ==, 0);
  if (s->gamma == NULL)
    {
      /* market_resolved closes both outcomes; Gamma alone settles */
      g_autofree char *up = pt_status (h, "polymarket:" UP);
      g_autofree char *down = pt_status (h, "polymarket:" DOWN);
      g_assert_cmpstr (up, ==, "closed");
      g_assert_cmpstr (down, ==, "closed");
      g_assert_cmpfloat (pt_metric (h, "tick_size_changes_total"), ==, 2);
      g_assert_cmpstr (((PmToken *) g_hash_table_lookup (p->by_token, UP))->tick_size, ==, "0.001");
    }
  pm_destroy (p);
  pt_host_free (h);
}

/* the ways a frame is broken here: cut short, or a number made garbage */
static const char *const garbage[] = { "abc", "1.5", "-0.01", "0.1e1", " 0.5", "NaN", "", "0x10", "1,5", NULL };

/* @q's prices are @c's, field by field; a field @q leaves unset is fine
 * (an emptied "" last_trade_price means none) */
static gboolean
same_prices (const char *q, const char *c)
{
  g_auto(GStrv) a = g_strsplit (q, "/", 3);
  g_auto(GStrv) b = g_strsplit (c, "/", 3);

  for (guint i = 0; i < 3; i++)
    if (!g_str_equal (a[i], "-") && !g_str_equal (a[i], b[i]))
      return FALSE;
  return TRUE;
}

/* every quote published while a broken frame was handled must carry only
 * prices the clean frame gave that market, or its prices from before that
 * frame: never a new price */
static void
check_subset (GPtrArray *clean_before, GPtrArray *clean_frame, guint first, const char *what)
{
  for (guint i = first; i < pt_quotes->len; i++)
    {
      PtQuote *q = g_ptr_array_index (pt_quotes, i);
      gboolean ok = FALSE;

      for (guint k = 0; !ok && k < clean_frame->len; k++)
        {
          PtQuote *c = g_ptr_array_index (clean_frame, k);
          ok = g_str_equal (c->market, q->market) && same_prices (q->text, c->text);
        }
      for (guint k = clean_before->len; !ok && k > 0; k--)
        {
          PtQuote *c = g_ptr_array_index (clean_before, k - 1);
          if (g_str_equal (c->market, q->market))
            {
              ok = same_prices (q->text, c->text);
              break;
            }
        }
      if (!ok)
        g_error ("%s gave %s %s, which the clean frame does not", what, q->market, q->text);
    }
}

static GPtrArray *
copy_quotes (guint from, guint to)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) pt_quote_free);

  for (guint i = from; i < to; i++)
    {
      PtQuote *q = g_ptr_array_index (pt_quotes, i), *c = g_new0 (PtQuote, 1);
      c->market = g_strdup (q->market);
      c->text = g_strdup (q->text);
      g_ptr_array_add (out, c);
    }
  return out;
}

/* the variants of @frame: cut at several places, and each quoted decimal
 * (a price, a size) replaced by each kind of garbage */
static GPtrArray *
variants (const char *frame)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  static GRegex *re;
  g_autoptr(GMatchInfo) mi = NULL;
  gsize n = strlen (frame);

  if (re == NULL)
    re = g_regex_new ("\"(price|size|best_bid|best_ask|last_trade_price|new_tick_size)\":\"([0-9.]*)\"", 0, 0, NULL);
  for (guint k = 1; k <= 4; k++)
    g_ptr_array_add (out, g_strndup (frame, n * k / 5));
  g_regex_match (re, frame, 0, &mi);
  while (g_match_info_matches (mi))
    {
      int start, end;
      g_match_info_fetch_pos (mi, 2, &start, &end);
      for (guint g = 0; garbage[g] != NULL; g++)
        {
          GString *s = g_string_new_len (frame, start);
          g_string_append (s, garbage[g]);
          g_string_append (s, frame + end);
          g_ptr_array_add (out, g_string_free (s, FALSE));
        }
      g_match_info_next (mi, NULL);
    }
  return out;
}

static void
test_malformed_never_wrong (gconstpointer data)
{
  const Session *s = data;
  g_autofree char *dir = NULL;
  g_autoptr(GPtrArray) frames = NULL;
  g_autoptr(GPtrArray) per_frame = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  PtHost *h;
  PmPlugin *p;
  guint tried = 0;

  if (!need_fixtures (&dir))
    return;
  frames = pt_transcript (dir, s->transcript);
  /* the clean run: what each frame publishes */
  h = host_new ();
  p = session_plugin (h, s, dir);
  pt_reset ();
  for (guint i = 0; i < frames->len; i++)
    {
      guint mark = pt_quotes->len;
      g_ptr_array_add (before, copy_quotes (0, mark));
      feed (p, g_ptr_array_index (frames, i));
      g_ptr_array_add (per_frame, copy_quotes (mark, pt_quotes->len));
    }
  pm_destroy (p);
  pt_host_free (h);

  for (guint i = 0; i < frames->len; i++)
    {
      const char *frame = g_ptr_array_index (frames, i);
      g_autoptr(GPtrArray) vs = NULL;

      if (*frame != '{' && *frame != '[')
        continue;
      vs = variants (frame);
      for (guint v = 0; v < vs->len; v++)
        {
          const char *bad = g_ptr_array_index (vs, v);
          g_autofree char *what = g_strdup_printf ("frame %u variant %u", i, v);
          gdouble malformed;
          guint mark;

          h = host_new ();
          p = session_plugin (h, s, dir);
          pt_reset ();
          for (guint k = 0; k < i; k++)
            feed (p, g_ptr_array_index (frames, k));
          mark = pt_quotes->len;
          malformed = pt_metric (h, "malformed_messages_total");
          feed (p, bad);
          check_subset (g_ptr_array_index (before, i), g_ptr_array_index (per_frame, i), mark, what);
          /* cut short: refused whole and counted */
          if (v < 4)
            {
              g_assert_cmpuint (pt_quotes->len, ==, mark);
              g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, malformed + 1);
            }
          /* logged at most once (per kind) */
          g_assert_cmpuint (pt_warnings, <=, 1);
          pm_destroy (p);
          pt_host_free (h);
          tried++;
        }
    }
  g_test_message ("%u broken frames, none gave a price the clean frame did not", tried);
  g_assert_cmpuint (tried, >, 100);
}

/* fifty broken frames: fifty counted, one line logged */
static void
test_logged_once (void)
{
  PtHost *h = host_new ();
  PmPlugin *p = plugin_new (h, NULL);

  pt_reset ();
  for (guint i = 0; i < 50; i++)
    feed (p, "[{\"event_type\":\"book\",\"asset_id\":\"1\",\"bids\":[{\"price\":\"0.");
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 50);
  g_assert_cmpuint (pt_warnings, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (pt_warning_text, 0), "only counted from now on"));
  /* the socket's words: PONG and NO NEW ASSETS are quiet, others logged once */
  feed (p, "PONG");
  feed (p, "NO NEW ASSETS");
  feed (p, "INVALID OPERATION");
  feed (p, "INVALID OPERATION");
  g_assert_cmpuint (pt_warnings, ==, 2);
  g_assert_cmpfloat (pt_metric (h, "text_messages_total"), ==, 2);
  g_assert_cmpuint (pt_quotes->len, ==, 0);
  pm_destroy (p);
  pt_host_free (h);
}

/* the schema before 2025-09-15, unsorted books, an emptied side */
static void
test_shapes (void)
{
  g_autofree char *dir = NULL;
  PtHost *h;
  PmPlugin *p;

  if (!need_fixtures (&dir))
    return;
  h = host_new ();
  p = plugin_new (h, NULL);
  follow (p, dir, "gamma_markets_active.json");
  pt_reset ();
  /* a single book object, levels in no order: sorted here */
  feed (p, "{\"event_type\":\"book\",\"asset_id\":\"" BTC_YES "\",\"market\":\"0x58\",\"bids\":[{\"price\":\"0.03\","
           "\"size\":\"10\"},{\"price\":\"0.041\",\"size\":\"5\"},{\"price\":\"0.01\",\"size\":\"1\"}],\"asks\":["
           "{\"price\":\"0.05\",\"size\":\"1\"},{\"price\":\"0.042\",\"size\":\"2\"},{\"price\":\"0.9\",\"size\":\"3\"}],"
           "\"timestamp\":\"1795233600212\",\"last_trade_price\":\"\"}");
  g_assert_cmpstr (pt_last ("polymarket:" BTC_YES), ==, "0.041/0.042/-");
  /* legacy price_change: one asset, changes[], no best_bid: from the book */
  feed (p, "{\"event_type\":\"price_change\",\"asset_id\":\"" BTC_YES "\",\"market\":\"0x58\",\"changes\":["
           "{\"price\":\"0.041\",\"side\":\"BUY\",\"size\":\"0\"},{\"price\":\"0.0415\",\"side\":\"SELL\",\"size\":\"7\"}],"
           "\"timestamp\":\"1795233600300\"}");
  g_assert_cmpstr (pt_last ("polymarket:" BTC_YES), ==, "0.03/0.0415/-");
  /* an emptied side in the new schema: best_bid "" */
  feed (p, "{\"event_type\":\"price_change\",\"market\":\"0x58\",\"price_changes\":[{\"asset_id\":\"" BTC_YES "\","
           "\"price\":\"0.03\",\"size\":\"0\",\"side\":\"BUY\",\"hash\":\"x\",\"best_bid\":\"\",\"best_ask\":\"0.0415\"}],"
           "\"timestamp\":\"1795233600400\"}");
  g_assert_cmpstr (pt_last ("polymarket:" BTC_YES), ==, "-/0.0415/-");
  /* a crossed top is not published */
  feed (p, "{\"event_type\":\"best_bid_ask\",\"asset_id\":\"" BTC_YES "\",\"market\":\"0x58\",\"best_bid\":\"0.5\","
           "\"best_ask\":\"0.4\",\"spread\":\"0\",\"timestamp\":\"1795233600500\"}");
  g_assert_cmpstr (pt_last ("polymarket:" BTC_YES), ==, "-/0.0415/-");
  g_assert_cmpfloat (pt_metric (h, "crossed_quotes_total"), ==, 1);
  /* an asset nobody follows */
  feed (p, "{\"event_type\":\"last_trade_price\",\"asset_id\":\"123\",\"price\":\"0.5\",\"market\":\"0x1\"}");
  g_assert_cmpfloat (pt_metric (h, "unknown_assets_total"), ==, 1);
  /* an event type from the future */
  feed (p, "{\"event_type\":\"quantum_update\",\"market\":\"0x1\"}");
  g_assert_cmpfloat (pt_metric (h, "unknown_messages_total"), ==, 1);
  g_assert_cmpfloat (pt_metric (h, "malformed_messages_total"), ==, 0);
  pm_destroy (p);
  pt_host_free (h);
}

/* config errors that the schema cannot see */
static void
test_config (void)
{
  static const struct {
    const char *body;
    const char *message;
  } cases[] = {
    { "plugin=ingest-polymarket\n", "nothing to follow: set market_slugs, condition_ids or event_slugs" },
    { "plugin=ingest-polymarket\ncondition_ids=0x12\n", "condition_ids: \"0x12\" is not a condition id (0x and 64 hex digits)" },
    { "plugin=ingest-polymarket\nmarket_slugs=a b\n", "market_slugs: \"a b\" is not a slug" },
    { "plugin=ingest-polymarket\nmarket_slugs=a\nws_url=http://x/ws\n",
      "ws_url: \"http://x/ws\" is not a ws:// or wss:// URL with a host and no query" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      PtHost *h = pt_host_new (cases[i].body);
      g_autoptr(GError) error = NULL;
      gpointer p = pm_create (h->inst, &error);

      g_assert_null (p);
      g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      pt_host_free (h);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pt_init ();

  g_test_add_func ("/ingest-polymarket/every-fixture", test_every_fixture);
  for (guint i = 0; i < G_N_ELEMENTS (status_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ingest-polymarket/status/%u-%s", i, status_cases[i].want[0]);
      g_test_add_data_func (path, &status_cases[i], test_status);
    }
  for (guint i = 0; i < G_N_ELEMENTS (sessions); i++)
    {
      g_autofree char *a = g_strdup_printf ("/ingest-polymarket/ws/%s", sessions[i].transcript);
      g_autofree char *b = g_strdup_printf ("/ingest-polymarket/ws-malformed/%s", sessions[i].transcript);
      g_test_add_data_func (a, &sessions[i], test_session);
      g_test_add_data_func (b, &sessions[i], test_malformed_never_wrong);
    }
  g_test_add_func ("/ingest-polymarket/ws/logged-once", test_logged_once);
  g_test_add_func ("/ingest-polymarket/ws/shapes", test_shapes);
  g_test_add_func ("/ingest-polymarket/events", test_events);
  g_test_add_func ("/ingest-polymarket/config", test_config);
  return g_test_run ();
}
