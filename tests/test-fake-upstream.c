/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fake upstream itself (tests/fake-upstream), from the outside, with a
 * plain libsoup client: recorded payloads served with their manifest status
 * and headers, fresh timestamps, moved prices, every fault, request counts,
 * and a WebSocket transcript replayed frame for frame.
 */

#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "fake-upstream/fake-upstream.h"

#define CG_PRICE  "/api/v3/simple/price"
#define CMC_QUOTE "/v2/cryptocurrency/quotes/latest"

typedef struct {
  char         *fixtures;
  FakeUpstream *fu;
  SoupSession  *session;
} Fixture;

typedef struct {
  guint    status;
  char    *body;
  gsize    length;
  char    *content_type;
  char    *retry_after;
  GError  *error;
} Reply;

static void
reply_free (Reply *r)
{
  g_free (r->body);
  g_free (r->content_type);
  g_free (r->retry_after);
  g_clear_error (&r->error);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GProxyResolver) direct = g_simple_proxy_resolver_new ("direct://", NULL);

  fx->fixtures = fake_upstream_find_fixtures ();
  if (fx->fixtures == NULL)
    return;
  fx->fu = fake_upstream_new (fx->fixtures, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fake_upstream_get_port (fx->fu), >, 0);
  fx->session = soup_session_new_with_options ("timeout", 2, "proxy-resolver", direct, NULL);
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->session);
  g_clear_pointer (&fx->fu, fake_upstream_free);
  g_free (fx->fixtures);
}

static gboolean
need_fixtures (Fixture *fx)
{
  if (fx->fixtures != NULL)
    return TRUE;
  g_test_skip ("no fixtures: set ARB_FIXTURES_DIR to shared/fixtures/upstream");
  return FALSE;
}

static void
on_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  Reply *r = data;
  GBytes *body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &r->error);

  if (body != NULL)
    {
      r->body = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
      r->length = g_bytes_get_size (body);
      g_bytes_unref (body);
    }
  else
    r->body = g_strdup ("");
}

static Reply *
get (Fixture *fx, const char *path_and_query, const char *key_header, const char *key)
{
  g_autofree char *uri = fake_upstream_url (fx->fu, path_and_query);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  Reply *r = g_new0 (Reply, 1);

  if (key_header != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), key_header, key);
  soup_session_send_and_read_async (fx->session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, r);
  while (r->body == NULL)
    g_main_context_iteration (NULL, TRUE);
  r->status = soup_message_get_status (msg);
  r->content_type = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                            "Content-Type"));
  r->retry_after = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After"));
  return r;
}

static char *
fixture_text (Fixture *fx, const char *name)
{
  g_autofree char *path = g_build_filename (fx->fixtures, name, NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* the value of the first "last_updated_at" in @body */
static gint64
first_unix (const char *body)
{
  const char *at = strstr (body, "\"last_updated_at\":");
  g_assert_nonnull (at);
  return g_ascii_strtoll (at + strlen ("\"last_updated_at\":"), NULL, 10);
}

/* ------------------------------------------------------------------------ */

static void
test_serve_file (Fixture *fx, gconstpointer data)
{
  g_autoptr(Reply) r = NULL;
  g_autofree char *recorded = NULL;
  g_autofree char *query = NULL;
  g_autofree char *key = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, CG_PRICE, "coingecko/simple_price_full.json");
  r = get (fx, CG_PRICE "?ids=bitcoin&vs_currencies=usd", "x-cg-demo-api-key", "CG-test");
  g_assert_no_error (r->error);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpstr (r->content_type, ==, "application/json; charset=utf-8");
  /* prices as recorded, to the byte; timestamps now */
  g_assert_nonnull (strstr (r->body, "\"usd\":91234.56,"));
  g_assert_nonnull (strstr (r->body, "\"usd_24h_change\":-1.2345678901234567,"));
  g_assert_cmpint (ABS (first_unix (r->body) - now), <=, 5);
  recorded = fixture_text (fx, "coingecko/simple_price_full.json");
  g_assert_cmpuint (r->length, ==, strlen (recorded));

  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PRICE), ==, 1);
  query = fake_upstream_dup_last_query (fx->fu, CG_PRICE);
  g_assert_cmpstr (query, ==, "ids=bitcoin&vs_currencies=usd");
  key = fake_upstream_dup_last_header (fx->fu, CG_PRICE, "X-CG-Demo-API-Key");
  g_assert_cmpstr (key, ==, "CG-test");

  /* a path without a route: 404, counted in the total only */
  g_clear_pointer (&r, reply_free);
  r = get (fx, "/nowhere", NULL, NULL);
  g_assert_cmpuint (r->status, ==, 404);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PRICE), ==, 1);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, NULL), ==, 2);
  fake_upstream_reset_counts (fx->fu);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, NULL), ==, 0);
}

static void
test_clock_and_prices (Fixture *fx, gconstpointer data)
{
  /* 2026-11-21T06:00:00.250Z */
  gint64 t1 = G_GINT64_CONSTANT (1795240800250000);
  gint64 t2 = t1 + 90 * G_USEC_PER_SEC;
  g_autoptr(Reply) r = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_set_clock (fx->fu, t1);
  fake_upstream_serve_file (fx->fu, CG_PRICE, "coingecko/simple_price_full.json");
  fake_upstream_replace (fx->fu, CG_PRICE, "\"usd\":91234.56,", "\"usd\":91300.5,");
  r = get (fx, CG_PRICE, NULL, NULL);
  g_assert_nonnull (strstr (r->body, "\"bitcoin\":{\"usd\":91300.5,"));
  g_assert_null (strstr (r->body, "91234.56"));
  g_assert_cmpint (first_unix (r->body), ==, 1795240800);

  /* CoinMarketCap's ISO times, status.timestamp included */
  fake_upstream_serve_file (fx->fu, CMC_QUOTE, "coinmarketcap/v2_quotes_latest_id.json");
  g_clear_pointer (&r, reply_free);
  r = get (fx, CMC_QUOTE "?id=1,1027&convert=USD", "X-CMC_PRO_API_KEY", "k");
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_nonnull (strstr (r->body, "\"timestamp\": \"2026-11-21T06:00:00.250Z\""));
  g_assert_nonnull (strstr (r->body, "\"last_updated\": \"2026-11-21T06:00:00.250Z\""));
  g_assert_null (strstr (r->body, "2026-11-20T15:03"));
  /* other dates stay */
  g_assert_nonnull (strstr (r->body, "\"date_added\": \"2010-07-13T00:00:00.000Z\""));

  /* stale: the clock moves, the timestamps do not */
  fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_STALE, 0);
  fake_upstream_set_clock (fx->fu, t2);
  g_clear_pointer (&r, reply_free);
  r = get (fx, CG_PRICE, NULL, NULL);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpint (first_unix (r->body), ==, 1795240800);
  /* other paths move on */
  g_clear_pointer (&r, reply_free);
  r = get (fx, CMC_QUOTE, NULL, NULL);
  g_assert_nonnull (strstr (r->body, "\"last_updated\": \"2026-11-21T06:01:30.250Z\""));
  fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_NONE, 0);
  g_clear_pointer (&r, reply_free);
  r = get (fx, CG_PRICE, NULL, NULL);
  g_assert_cmpint (first_unix (r->body), ==, 1795240890);
}

typedef struct {
  FakeFault   fault;
  int         arg;
  const char *path;
  const char *fixture;  /* the route's */
  guint       status;
  const char *body;     /* a fixture name, or the literal body after "=" */
  const char *retry_after;
} FaultCase;

static const FaultCase fault_cases[] = {
  { FAKE_FAULT_429, 7, CG_PRICE, "coingecko/simple_price_full.json", 429, "coingecko/rate_limit_429.json", "7" },
  { FAKE_FAULT_429, -1, CMC_QUOTE, "coinmarketcap/v2_quotes_latest_id.json", 429,
    "coinmarketcap/rate_limit_429_1008.json", NULL },
  { FAKE_FAULT_401, 0, CG_PRICE, "coingecko/simple_price_full.json", 401, "coingecko/auth_401_missing_key.json",
    NULL },
  { FAKE_FAULT_401, 0, CMC_QUOTE, "coinmarketcap/v2_quotes_latest_id.json", 401,
    "coinmarketcap/auth_401_1001_invalid_key.json", NULL },
  { FAKE_FAULT_403, 0, CG_PRICE, "coingecko/simple_price_full.json", 403, "=error code: 1020", NULL },
  { FAKE_FAULT_MALFORMED, 0, CG_PRICE, "coingecko/simple_price_full.json", 200, "coingecko/malformed_truncated.json",
    NULL },
  { FAKE_FAULT_MALFORMED, 0, CMC_QUOTE, "coinmarketcap/v2_quotes_latest_id.json", 200,
    "coinmarketcap/malformed_truncated.json", NULL },
};

/* @body with the values of its timestamps emptied */
static char *
strip_times (const char *body)
{
  g_autoptr(GRegex) re = g_regex_new ("(\"(?:timestamp|last_updated)\"\\s*:\\s*)\"[^\"]*\"", 0, 0, NULL);
  return g_regex_replace (re, body, -1, 0, "\\1\"\"", 0, NULL);
}

static void
test_fault_bodies (Fixture *fx, gconstpointer data)
{
  if (!need_fixtures (fx))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (fault_cases); i++)
    {
      const FaultCase *c = &fault_cases[i];
      g_autoptr(Reply) r = NULL;
      g_autofree char *want = NULL;

      g_test_message ("%s, fault %d: expect %u %s", c->path, c->fault, c->status, c->body);
      fake_upstream_serve_file (fx->fu, c->path, c->fixture);
      fake_upstream_set_fault (fx->fu, c->path, c->fault, c->arg);
      r = get (fx, c->path, NULL, NULL);
      g_assert_no_error (r->error);
      g_assert_cmpuint (r->status, ==, c->status);
      g_assert_cmpstr (r->retry_after, ==, c->retry_after);
      want = c->body[0] == '=' ? g_strdup (c->body + 1) : fixture_text (fx, c->body);
      {
        /* the recorded body, its times set to now */
        g_autofree char *got_plain = strip_times (r->body);
        g_autofree char *want_plain = strip_times (want);
        g_assert_cmpstr (got_plain, ==, want_plain);
      }
      fake_upstream_set_fault (fx->fu, c->path, FAKE_FAULT_NONE, 0);
    }
}

static void
test_fault_500_everywhere (Fixture *fx, gconstpointer data)
{
  g_autoptr(Reply) a = NULL;
  g_autoptr(Reply) b = NULL;
  g_autoptr(Reply) c = NULL;

  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, CG_PRICE, "coingecko/simple_price_full.json");
  fake_upstream_serve_file (fx->fu, CMC_QUOTE, "coinmarketcap/v2_quotes_latest_id.json");
  fake_upstream_set_fault (fx->fu, NULL, FAKE_FAULT_500, 0);
  a = get (fx, CG_PRICE, NULL, NULL);
  b = get (fx, CMC_QUOTE, NULL, NULL);
  g_assert_cmpuint (a->status, ==, 500);
  g_assert_cmpuint (b->status, ==, 500);
  g_assert_cmpstr (a->content_type, ==, "text/html");
  g_assert_nonnull (strstr (a->body, "<title>500 Internal Server Error</title>"));
  /* a path's own fault wins over the global one */
  fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_403, 0);
  c = get (fx, CG_PRICE, NULL, NULL);
  g_assert_cmpuint (c->status, ==, 403);
  fake_upstream_set_fault (fx->fu, NULL, FAKE_FAULT_NONE, 0);
  fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_NONE, 0);
  g_clear_pointer (&c, reply_free);
  c = get (fx, CMC_QUOTE, NULL, NULL);
  g_assert_cmpuint (c->status, ==, 200);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PRICE), ==, 2);
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CMC_QUOTE), ==, 2);
}

static void
test_fault_connection (Fixture *fx, gconstpointer data)
{
  if (!need_fixtures (fx))
    return;
  fake_upstream_serve_file (fx->fu, CG_PRICE, "coingecko/simple_price_full.json");

  /* dropped: no answer at all */
  {
    g_autoptr(Reply) r = NULL;
    fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_DROP, 0);
    r = get (fx, CG_PRICE, NULL, NULL);
    g_assert_nonnull (r->error);
    g_test_message ("drop: %s", r->error->message);
  }
  /* truncated: the body breaks off. libsoup 3.2 hands the short body over as
   * if it were whole (no error for the missing bytes), which is one more
   * reason a client must check the JSON it gets */
  {
    g_autoptr(Reply) r = NULL;
    g_autofree char *whole = fixture_text (fx, "coingecko/simple_price_full.json");
    fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_TRUNCATED, 0);
    r = get (fx, CG_PRICE, NULL, NULL);
    if (r->error != NULL)
      g_test_message ("truncated: %s", r->error->message);
    else
      {
        g_test_message ("truncated: %u with %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", r->status, r->length,
                        strlen (whole));
        g_assert_cmpuint (r->length, ==, strlen (whole) / 2);
        g_assert_true (strncmp (r->body, whole, 100) == 0);
      }
  }
  /* hung: the client's timeout (2 s here) acts; the fake answers later ones */
  {
    g_autoptr(Reply) r = NULL;
    gint64 start = g_get_monotonic_time ();
    fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_HANG, 0);
    r = get (fx, CG_PRICE, NULL, NULL);
    g_assert_error (r->error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC);
  }
  {
    g_autoptr(Reply) r = NULL;
    fake_upstream_set_fault (fx->fu, CG_PRICE, FAKE_FAULT_NONE, 0);
    r = get (fx, CG_PRICE, NULL, NULL);
    g_assert_no_error (r->error);
    g_assert_cmpuint (r->status, ==, 200);
  }
  g_assert_cmpuint (fake_upstream_get_request_count (fx->fu, CG_PRICE), ==, 4);
}

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                */

typedef struct {
  SoupWebsocketConnection *conn;
  GError                  *error;
  GPtrArray               *frames;
  gboolean                 closed;
} WsClient;

static void
on_ws_message (SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer data)
{
  WsClient *c = data;
  g_ptr_array_add (c->frames, g_strndup (g_bytes_get_data (message, NULL), g_bytes_get_size (message)));
}

static void
on_ws_closed (SoupWebsocketConnection *conn, gpointer data)
{
  ((WsClient *) data)->closed = TRUE;
}

static void
on_ws_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  WsClient *c = data;

  c->conn = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &c->error);
  if (c->conn != NULL)
    {
      g_signal_connect (c->conn, "message", G_CALLBACK (on_ws_message), c);
      g_signal_connect (c->conn, "closed", G_CALLBACK (on_ws_closed), c);
    }
}

static void
wait_frames (WsClient *c, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (c->frames->len < n && !c->closed && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE), g_usleep (1000);
  g_assert_cmpuint (c->frames->len, >=, n);
}

/* the s2c text payloads of @transcript, compact, in order */
static GPtrArray *
expected_frames (Fixture *fx, const char *transcript, guint *n_c2s)
{
  g_autofree char *text = fixture_text (fx, transcript);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  *n_c2s = 0;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *o;
      g_autoptr(JsonGenerator) gen = json_generator_new ();

      if (*lines[i] == '\0')
        continue;
      g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
      o = json_node_get_object (json_parser_get_root (p));
      if (g_str_equal (json_object_get_string_member (o, "op"), "text"))
        {
          if (g_str_equal (json_object_get_string_member (o, "dir"), "c2s"))
            {
              (*n_c2s)++;
              continue;
            }
          if (json_object_has_member (o, "text"))
            g_ptr_array_add (out, g_strdup (json_object_get_string_member (o, "text")));
          else
            {
              /* compared as parsed values below: the fake sends the recorded text */
              json_generator_set_root (gen, json_object_get_member (o, "json"));
              g_ptr_array_add (out, json_generator_to_data (gen, NULL));
            }
        }
    }
  return out;
}

static gboolean
same_json (const char *a, const char *b)
{
  g_autoptr(JsonParser) pa = json_parser_new ();
  g_autoptr(JsonParser) pb = json_parser_new ();

  if (!json_parser_load_from_data (pa, a, -1, NULL) || !json_parser_load_from_data (pb, b, -1, NULL))
    return g_strcmp0 (a, b) == 0;
  return json_node_equal (json_parser_get_root (pa), json_parser_get_root (pb));
}

static void
test_ws_replay (Fixture *fx, gconstpointer data)
{
  const char *transcript = "kalshi/ws_session_ticker_orderbook.jsonl";
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) expect = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_auto(GStrv) received = NULL;
  WsClient c = { NULL, NULL, g_ptr_array_new_with_free_func (g_free), FALSE };
  guint n_c2s = 0, before;

  if (!need_fixtures (fx))
    {
      g_ptr_array_unref (c.frames);
      return;
    }
  expect = expected_frames (fx, transcript, &n_c2s);
  g_assert_cmpuint (n_c2s, >, 0);
  g_assert_true (fake_upstream_serve_ws (fx->fu, "/trade-api/ws/v2", transcript, 0, &error));
  g_assert_no_error (error);

  uri = fake_upstream_ws_url (fx->fu, "/trade-api/ws/v2");
  msg = soup_message_new ("GET", uri);
  soup_session_websocket_connect_async (fx->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, on_ws_connected, &c);
  while (c.conn == NULL && c.error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (c.error);

  /* the transcript starts with the client's subscribe: nothing comes before it */
  for (guint i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE), g_usleep (2000);
  g_assert_cmpuint (c.frames->len, ==, 0);
  g_assert_cmpuint (fake_upstream_get_ws_sessions (fx->fu, "/trade-api/ws/v2"), ==, 1);

  /* each client frame releases the server frames up to the next one */
  for (guint k = 0; k < n_c2s; k++)
    {
      g_autofree char *sub = g_strdup_printf ("{\"id\":%u,\"cmd\":\"subscribe\"}", k + 1);
      before = c.frames->len;
      soup_websocket_connection_send_text (c.conn, sub);
      wait_frames (&c, before + 1);
    }
  wait_frames (&c, expect->len);
  g_assert_cmpuint (c.frames->len, ==, expect->len);
  for (guint i = 0; i < expect->len; i++)
    if (!same_json (g_ptr_array_index (c.frames, i), g_ptr_array_index (expect, i)))
      g_error ("frame %u: got %s, want %s", i, (char *) g_ptr_array_index (c.frames, i),
               (char *) g_ptr_array_index (expect, i));
  /* numbers keep their recorded text ("floor_strike":92999.99 is not re-printed) */
  g_assert_nonnull (strstr (g_ptr_array_index (c.frames, 1), "\"price_dollars\":\"0.430\""));
  g_assert_cmpuint (fake_upstream_get_ws_frames_sent (fx->fu, "/trade-api/ws/v2"), ==, expect->len);
  received = fake_upstream_dup_ws_received (fx->fu, "/trade-api/ws/v2");
  g_assert_cmpuint (g_strv_length (received), ==, n_c2s);
  g_assert_cmpstr (received[0], ==, "{\"id\":1,\"cmd\":\"subscribe\"}");

  /* text heartbeats answered on request */
  fake_upstream_ws_reply (fx->fu, "/trade-api/ws/v2", "PING", "PONG");
  before = c.frames->len;
  soup_websocket_connection_send_text (c.conn, "PING");
  wait_frames (&c, before + 1);
  g_assert_cmpstr (g_ptr_array_index (c.frames, before), ==, "PONG");

  soup_websocket_connection_close (c.conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  while (!c.closed)
    g_main_context_iteration (NULL, TRUE);
  g_clear_object (&c.conn);
  g_ptr_array_unref (c.frames);
}

/* the recorded pace: a frame due 1 s in at speed 10 comes after about 100 ms */
static void
test_ws_pace (Fixture *fx, gconstpointer data)
{
  const char *transcript = "polymarket/rtds_crypto_prices_session.jsonl";
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GPtrArray) expect = NULL;
  WsClient c = { NULL, NULL, g_ptr_array_new_with_free_func (g_free), FALSE };
  guint n_c2s = 0;
  gint64 start;

  if (!need_fixtures (fx))
    {
      g_ptr_array_unref (c.frames);
      return;
    }
  expect = expected_frames (fx, transcript, &n_c2s);
  g_assert_true (fake_upstream_serve_ws (fx->fu, "/rtds", transcript, 50, &error));
  g_assert_no_error (error);
  uri = fake_upstream_ws_url (fx->fu, "/rtds");
  msg = soup_message_new ("GET", uri);
  soup_session_websocket_connect_async (fx->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, on_ws_connected, &c);
  while (c.conn == NULL && c.error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (c.error);
  start = g_get_monotonic_time ();
  for (guint k = 0; k < n_c2s; k++)
    soup_websocket_connection_send_text (c.conn, "{\"action\":\"subscribe\"}");
  wait_frames (&c, expect->len);
  g_test_message ("%u frames in %" G_GINT64_FORMAT " ms", c.frames->len, (g_get_monotonic_time () - start) / 1000);
  for (guint i = 0; i < expect->len; i++)
    g_assert_true (same_json (g_ptr_array_index (c.frames, i), g_ptr_array_index (expect, i)));
  soup_websocket_connection_close (c.conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  while (!c.closed)
    g_main_context_iteration (NULL, TRUE);
  g_clear_object (&c.conn);
  g_ptr_array_unref (c.frames);
}

static void
drop_message (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* GSocketClient asks for the default proxy resolver even when the session
   * has its own; GNOME's reads GSettings, whose schemas the isolated dirs hide */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_log_set_handler ("GLib", G_LOG_LEVEL_DEBUG, drop_message, NULL);
  g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG, drop_message, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/fake-upstream/http/serve-file", test_serve_file);
  ADD ("/fake-upstream/http/clock-and-prices", test_clock_and_prices);
  ADD ("/fake-upstream/faults/bodies", test_fault_bodies);
  ADD ("/fake-upstream/faults/500-everywhere", test_fault_500_everywhere);
  ADD ("/fake-upstream/faults/connection", test_fault_connection);
  ADD ("/fake-upstream/ws/replay", test_ws_replay);
  ADD ("/fake-upstream/ws/pace", test_ws_pace);
#undef ADD

  return g_test_run ();
}
