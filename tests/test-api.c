/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The REST API (doc/api.md) end to end: the real arbiterd as a subprocess on
 * a temporary config, with replayed market data, spoken to over HTTP by
 * libsoup, on SQLite and again on a real PostgreSQL server (arb-test-pg).
 *
 * Prices: the shipped 10-minute session (moving prices, restamped to now), a
 * fixture feed written here whose prices never change (so fills can be
 * computed to the last unit), a feed of old quotes (stale markets), and the
 * resolution demo (a Kalshi market that halts, closes and resolves).
 *
 * Tokens: Debian's python3-jwt (tests/mint-jwt.py under /usr/bin/python3)
 * and `arbiterd --mint-token`; forgeries are built by that script. Numbers
 * are checked with fixed-point arithmetic written here, not arb-decimal.
 * The store is manipulated from the outside (a SQLite trigger through the C
 * API, a PL/pgSQL trigger through libpq, the PostgreSQL server stopped) to
 * make commits fail in the middle of the saga. */

#include "config.h"

#include <signal.h>
#include <string.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libpq-fe.h>
#include <libsoup/soup.h>
#include <sqlite3.h>

#include "arb-test-daemon.h"
#include "arb-test-pg.h"
#include "arb-test-util.h"

#define PYTHON           "/usr/bin/python3"
#define OPENSSL          "openssl"
#define ISSUER           "arbiter-test"
#define AUDIENCE         "arbiter-api"
#define START_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS  15000
#define HTTP_TIMEOUT_MS  40000

/* the fixture feed: prices that never move */
#define FIX        "crypto:FIX-USD" /* class rules: slippage 5 bps, fee 10 bps */
#define FIX_BID    "2.34567891"
#define FIX_ASK    "2.34577777"
#define FIY        "crypto:FIY-USD" /* [market:] override: slippage 0, fee 25 bps */
#define FIY_BID    "12.34500000"
#define FIY_ASK    "12.34567890"
#define POLY       "polymarket:1001" /* prediction class: slippage 10 bps, fee 20 bps */
#define POLY_BID   "0.40"
#define POLY_ASK   "0.41"
#define POLY_EDGE  "polymarket:1002" /* ask 0.9999 + 5 bps: a fill at or above 1 */
#define KALSHI_RESOLVED "kalshi:KXBTCD-26NOV2017-T92499.99:yes"

static char *source_root;
static ArbTestPg *pg_server; /* shared by the PostgreSQL cases */
static guint db_counter;
static guint cid_counter;

/* ------------------------------------------------------------------------ */
/* Fixed point, independent of arb-decimal.c                                */

#define SCALE G_GINT64_CONSTANT (100000000)

typedef enum { R_CEIL, R_FLOOR, R_HALF_EVEN } Rnd;

/* raw units (the value × 10^8) of a decimal text with at most 8 places */
static gint64
dec (const char *s)
{
  const char *p = s;
  gboolean neg = FALSE;
  gint64 ip = 0, fp = 0;
  int places = 0;

  if (*p == '-')
    {
      neg = TRUE;
      p++;
    }
  if (!g_ascii_isdigit (*p))
    g_error ("\"%s\" is not a decimal", s);
  while (g_ascii_isdigit (*p))
    ip = ip * 10 + (*p++ - '0');
  if (*p == '.')
    for (p++; g_ascii_isdigit (*p); p++, places++)
      {
        if (places == 8)
          g_error ("\"%s\" has more than 8 places", s);
        fp = fp * 10 + (*p - '0');
      }
  if (*p != '\0')
    g_error ("\"%s\" is not a decimal", s);
  for (; places < 8; places++)
    fp *= 10;
  return (neg ? -1 : 1) * (ip * SCALE + fp);
}

/* the way the API writes it: 8 places */
static char *
fmt (gint64 raw)
{
  guint64 a = raw < 0 ? (guint64) (-(raw + 1)) + 1 : (guint64) raw;
  return g_strdup_printf ("%s%" G_GUINT64_FORMAT ".%08" G_GUINT64_FORMAT, raw < 0 ? "-" : "", a / SCALE, a % SCALE);
}

static gint64
div_round (__int128 num, __int128 den, Rnd r)
{
  __int128 q = num / den, rem = num % den;
  g_assert_true (den > 0);
  if (rem != 0)
    switch (r)
      {
      case R_CEIL:
        if (num > 0)
          q++;
        break;
      case R_FLOOR:
        if (num < 0)
          q--;
        break;
      case R_HALF_EVEN:
        {
          __int128 twice = (rem < 0 ? -rem : rem) * 2;
          if (twice > den || (twice == den && q % 2 != 0))
            q += num < 0 ? -1 : 1;
        }
        break;
      }
  return (gint64) q;
}

static gint64
mul (gint64 a, gint64 b, Rnd r)
{
  return div_round ((__int128) a * b, SCALE, r);
}

static gint64
mul_div (gint64 a, gint64 b, gint64 c, Rnd r)
{
  return div_round ((__int128) a * b, c, r);
}

/* a buy fills at ask × (1 + bps), a sell at bid × (1 − bps), against the trader */
static gint64
fill_price (gint64 ref, gint64 bps, gboolean buy)
{
  gint64 factor = (buy ? 10000 + bps : 10000 - bps) * SCALE / 10000;
  return mul (ref, factor, buy ? R_CEIL : R_FLOOR);
}

static gint64
fee_of (gint64 notional, gint64 bps)
{
  return mul (notional, bps * SCALE / 10000, R_CEIL);
}

static void
test_fixed_point (void)
{
  /* the test's own arithmetic, against values worked out by hand */
  g_autofree char *a = fmt (dec ("-0.5"));
  g_autofree char *b = fmt (dec ("64250.125"));
  g_assert_cmpstr (a, ==, "-0.50000000");
  g_assert_cmpstr (b, ==, "64250.12500000");
  g_assert_cmpint (fill_price (dec ("100"), 5, TRUE), ==, dec ("100.05"));
  g_assert_cmpint (fill_price (dec ("100"), 5, FALSE), ==, dec ("99.95"));
  g_assert_cmpint (fill_price (dec ("0.00000001"), 5, TRUE), ==, dec ("0.00000002")); /* 1.0005e-8 up */
  g_assert_cmpint (fill_price (dec ("0.00000003"), 5, FALSE), ==, dec ("0.00000002")); /* 2.9985e-8 down */
  g_assert_cmpint (fee_of (dec ("1000"), 10), ==, dec ("1"));
  g_assert_cmpint (fee_of (dec ("0.00000001"), 10), ==, dec ("0.00000001"));
  g_assert_cmpint (mul (dec ("0.00000001"), dec ("0.5"), R_HALF_EVEN), ==, 0);          /* 0.5e-8 → even 0 */
  g_assert_cmpint (mul (dec ("0.00000003"), dec ("0.5"), R_HALF_EVEN), ==, dec ("0.00000002")); /* 1.5 → 2 */
  g_assert_cmpint (mul (dec ("-0.00000003"), dec ("0.5"), R_HALF_EVEN), ==, dec ("-0.00000002"));
  g_assert_cmpint (mul (dec ("-0.00000001"), dec ("0.5"), R_CEIL), ==, 0);
  g_assert_cmpint (mul (dec ("-0.00000001"), dec ("0.5"), R_FLOOR), ==, dec ("-0.00000001"));
  g_assert_cmpint (mul_div (dec ("10"), dec ("1"), dec ("3"), R_HALF_EVEN), ==, dec ("3.33333333"));
}

/* ------------------------------------------------------------------------ */
/* The daemon                                                               */

/* no sanitizer report and nothing critical in what the daemon logged */
static void
assert_clean_log (ArbTestDaemon *d)
{
  static const char *const bad[] = { "AddressSanitizer", "runtime error:", "LeakSanitizer", " critical ",
                                     "CRITICAL", NULL };
  const char *logged = arb_test_daemon_get_log (d);

  for (guint i = 0; bad[i] != NULL; i++)
    if (strstr (logged, bad[i]) != NULL)
      g_error ("arbiterd logged \"%s\":\n%s", bad[i], logged);
}

/* SIGTERM: gone within EXIT_TIMEOUT_MS, with exit status 0 and a clean log */
static void
daemon_stop (ArbTestDaemon *d)
{
  int status = arb_test_daemon_terminate_within (d, EXIT_TIMEOUT_MS);

  if (status == -1)
    g_error ("arbiterd did not exit within %u ms of SIGTERM:\n%s", EXIT_TIMEOUT_MS, arb_test_daemon_get_log (d));
  if (status != 0)
    g_error ("arbiterd did not exit 0 on SIGTERM (%s %d):\n%s", status == -2 ? "signal" : "status",
             status == -2 ? g_subprocess_get_term_sig (arb_test_daemon_get_subprocess (d)) : status,
             arb_test_daemon_get_log (d));
  assert_clean_log (d);
}

/* ------------------------------------------------------------------------ */
/* Child processes                                                          */

/* @argv to its end, with the build's plugins: what it printed on stdout. Its
 * exit status goes to @exit_status, or must be 0. */
static char *
run_tool (const char *const *argv, int *exit_status, char **err_out)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = arb_test_run (argv, NULL, &out, &err);

  g_assert_cmpint (status, !=, -1); /* it exited */
  if (exit_status != NULL)
    *exit_status = status;
  else if (status != 0)
    g_error ("%s exited %d: %s", argv[0], status, err);
  if (err_out != NULL)
    *err_out = g_steal_pointer (&err);
  return g_steal_pointer (&out);
}

/* `arbiterd --mint-token SUB [--admin]` with @conf */
static char *
mint_token (const char *conf, const char *sub, gboolean admin)
{
  char *out = arb_test_mint_token (conf, sub, admin);

  g_assert_nonnull (out);
  g_assert_cmpuint (strlen (out), >, 20);
  g_assert_null (strchr (out, '\n'));
  return out;
}

/* tests/mint-jwt.py: @requests is a JSON array; the answers, in order */
static JsonArray *
python_jwt (const char *requests)
{
  g_autofree char *script = g_build_filename (source_root, "tests", "mint-jwt.py", NULL);
  const char *argv[] = { PYTHON, "-I", script, requests, NULL };
  g_autofree char *out = run_tool (argv, NULL, NULL);
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (p, out, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (json_parser_get_root (p)));
  return json_array_ref (json_node_get_array (json_parser_get_root (p)));
}

static char *
answer_token (JsonArray *answers, guint i)
{
  JsonObject *o = json_array_get_object_element (answers, i);
  g_assert_nonnull (o);
  g_assert_true (json_object_has_member (o, "token"));
  return g_strdup (json_object_get_string_member (o, "token"));
}

/* ------------------------------------------------------------------------ */
/* The environment of one case                                              */

typedef enum { BACKEND_SQLITE, BACKEND_POSTGRESQL } Backend;

typedef struct {
  Backend      backend;
  char        *dir;
  char        *conf;
  char        *events;
  char        *secret;       /* the HS256 secret file */
  char        *other_secret; /* a secret the daemon does not know */
  char        *db_path;      /* SQLite */
  char        *store_uri;
  char        *pg_conninfo;  /* PostgreSQL: the same database, for libpq */
  SoupSession *session;
  ArbTestDaemon *d;
  char        *admin;        /* --mint-token boss --admin */
  char        *alice;        /* python-jwt */
  char        *bob;          /* --mint-token bob */
  GString     *answers;      /* every JSON answer of req_full, a line each, for check_openapi */
} Env;

static void
write_secret (const char *path)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  for (guint i = 0; i < 32; i++)
    g_string_append_printf (s, "%02x", g_random_int_range (0, 256));
  g_string_append_c (s, '\n');
  g_file_set_contents (path, s->str, -1, &error);
  g_assert_no_error (error);
}

static Env *
env_new (Backend backend)
{
  Env *e = g_new0 (Env, 1);
  g_autoptr(GError) error = NULL;

  e->backend = backend;
  e->dir = g_dir_make_tmp ("arb-test-api-XXXXXX", &error);
  g_assert_no_error (error);
  e->conf = g_build_filename (e->dir, "arbiter.conf", NULL);
  e->events = g_build_filename (e->dir, "events.jsonl", NULL);
  e->secret = g_build_filename (e->dir, "jwt-secret", NULL);
  e->other_secret = g_build_filename (e->dir, "other-secret", NULL);
  write_secret (e->secret);
  write_secret (e->other_secret);
  if (backend == BACKEND_SQLITE)
    {
      e->db_path = g_build_filename (e->dir, "ledger.db", NULL);
      e->store_uri = g_strconcat ("sqlite:", e->db_path, NULL);
    }
  else
    {
      g_autofree char *name = NULL;
      if (pg_server == NULL)
        {
          pg_server = arb_test_pg_new (&error);
          g_assert_no_error (error);
        }
      name = g_strdup_printf ("api_%u", ++db_counter);
      e->store_uri = arb_test_pg_create_database (pg_server, name, &error);
      g_assert_no_error (error);
      e->pg_conninfo = g_strdup (e->store_uri);
    }
  e->session = arb_test_session_new_full (HTTP_TIMEOUT_MS / 1000, 64);
  return e;
}

static void
env_free (Env *e)
{
  if (e->answers != NULL)
    g_string_free (e->answers, TRUE);
  g_clear_pointer (&e->d, arb_test_daemon_free);
  g_clear_object (&e->session);
  arb_test_remove_tree (e->dir);
  g_free (e->dir);
  g_free (e->conf);
  g_free (e->events);
  g_free (e->secret);
  g_free (e->other_secret);
  g_free (e->db_path);
  g_free (e->store_uri);
  g_free (e->pg_conninfo);
  g_free (e->admin);
  g_free (e->alice);
  g_free (e->bob);
  g_free (e);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Env, env_free)

static char *
rfc3339 (gint64 unix_us)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (unix_us / G_USEC_PER_SEC);
  return g_date_time_format (t, "%Y-%m-%dT%H:%M:%S.000Z");
}

/* the fixture feeds: constant prices (restamped, looping), and old quotes */
static void
write_feeds (Env *e)
{
  g_autoptr(GString) fixed = g_string_new (NULL);
  g_autofree char *fixed_path = g_build_filename (e->dir, "fixed.jsonl", NULL);
  g_autofree char *stale_path = g_build_filename (e->dir, "stale.jsonl", NULL);
  g_autofree char *five_s_ago = rfc3339 (g_get_real_time () - 5 * G_USEC_PER_SEC);
  g_autofree char *stale = NULL;
  g_autoptr(GError) error = NULL;

  for (guint at = 0; at <= 800; at += 200)
    {
      g_string_append_printf (fixed, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"%s\",\"ask\":\"%s\"}\n",
                              at, FIX, FIX_BID, FIX_ASK);
      g_string_append_printf (fixed, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"%s\",\"ask\":\"%s\"}\n",
                              at, FIY, FIY_BID, FIY_ASK);
      g_string_append_printf (fixed, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"%s\",\"ask\":\"%s\"}\n",
                              at, POLY, POLY_BID, POLY_ASK);
      g_string_append_printf (fixed, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"0.999\",\"ask\":\"0.9999\"}\n",
                              at, POLY_EDGE);
    }
  g_file_set_contents (fixed_path, fixed->str, -1, &error);
  g_assert_no_error (error);
  /* ADA: years old; LTC and LTC2: 5 s old, LTC with max_quote_age=1s */
  stale = g_strdup_printf (
      "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:ADA-USD\",\"bid\":\"0.5\",\"ask\":\"0.51\","
      "\"source_time\":\"2020-01-01T00:00:00.000Z\"}\n"
      "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:LTC-USD\",\"bid\":\"80\",\"ask\":\"80.1\","
      "\"source_time\":\"%s\"}\n"
      "{\"at_ms\":0,\"type\":\"quote\",\"market\":\"crypto:LTC2-USD\",\"bid\":\"80\",\"ask\":\"80.1\","
      "\"source_time\":\"%s\"}\n",
      five_s_ago, five_s_ago);
  g_file_set_contents (stale_path, stale, -1, &error);
  g_assert_no_error (error);
}

static void
write_conf (Env *e)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *replay_dir = g_build_filename (source_root, "data", "replay", NULL);
  g_autofree char *migrations = g_build_filename (source_root, "data", "migrations", NULL);
  g_autofree char *text = NULL;

  write_feeds (e);
  text = g_strdup_printf (
      "[runtime]\n"
      "listen=127.0.0.1:0\n"
      "state_dir=%s/state\n"
      "store=%s\n"
      "migrations_dir=%s\n"
      "shutdown_timeout=3s\n"
      "\n"
      "[api]\n"
      "jwt_alg=HS256\n"
      "jwt_secret_file=%s\n"
      "jwt_issuer=" ISSUER "\n"
      "jwt_audience=" AUDIENCE "\n"
      "\n"
      "[program:test]\n"
      "starting_balance=100000\n"
      "leverage=1\n"
      "\n"
      "[program:lev10]\n"
      "starting_balance=100000\n"
      "leverage=10\n"
      "\n"
      "[program:guarded]\n"
      "starting_balance=100000\n"
      "risk=missing\n"
      "\n"
      "[risk:missing]\n"
      "plugin=risk-not-installed\n"
      "\n"
      "[market-class:crypto]\n"
      "slippage_bps=5\n"
      "fee_bps=10\n"
      "max_quote_age=30s\n"
      "\n"
      "[market-class:prediction]\n"
      "slippage_bps=10\n"
      "fee_bps=20\n"
      "max_quote_age=30s\n"
      "\n"
      "[market:" FIY "]\n"
      "slippage_bps=0\n"
      "fee_bps=25\n"
      "\n"
      "[market:" POLY_EDGE "]\n"
      "slippage_bps=5\n"
      "\n"
      "[market:crypto:LTC-USD]\n"
      "max_quote_age=1s\n"
      "\n"
      "[ingest:replay]\n"
      "plugin=ingest-replay\n"
      "dir=%s\n"
      "files=session-10m.jsonl\n"
      "speed=1\n"
      "loop=true\n"
      "\n"
      "[ingest:fixed]\n"
      "plugin=ingest-replay\n"
      "dir=%s\n"
      "files=fixed.jsonl\n"
      "speed=1\n"
      "loop=true\n"
      "\n"
      "[ingest:stale]\n"
      "plugin=ingest-replay\n"
      "dir=%s\n"
      "files=stale.jsonl\n"
      "restamp=false\n"
      "loop=false\n"
      "\n"
      "[ingest:resolution]\n"
      "plugin=ingest-replay\n"
      "dir=%s\n"
      "files=resolution-demo.jsonl\n"
      "speed=20\n"
      "loop=false\n"
      "\n"
      "[sink:events]\n"
      "plugin=sink-jsonl\n"
      "path=%s\n"
      "fsync=always\n",
      e->dir, e->store_uri, migrations, e->secret, replay_dir, e->dir, e->dir, replay_dir, e->events);
  g_file_set_contents (e->conf, text, -1, &error);
  g_assert_no_error (error);
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

typedef struct {
  guint               status;
  char               *body;
  SoupMessageHeaders *headers;
  JsonNode           *json;     /* NULL when the body is not JSON */
  GError             *error;    /* transport failure: no answer */
  char               *sent_cid;
} Reply;

static void
reply_free (Reply *r)
{
  if (r == NULL)
    return;
  g_free (r->body);
  if (r->headers != NULL)
    soup_message_headers_unref (r->headers);
  if (r->json != NULL)
    json_node_unref (r->json);
  g_clear_error (&r->error);
  g_free (r->sent_cid);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

typedef struct _Call Call;
typedef void (*CallDone) (Call *call, gpointer data);

struct _Call {
  SoupMessage *msg;
  Reply       *reply;
  gboolean     done;
  CallDone     on_done;
  gpointer     on_done_data;
};

static const char *
hdr (Reply *r, const char *name)
{
  return r->headers != NULL ? soup_message_headers_get_one (r->headers, name) : NULL;
}

static void
on_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  Call *c = data;
  Reply *r = c->reply;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &r->error);

  if (body != NULL)
    {
      gsize len = 0;
      const char *bytes = g_bytes_get_data (body, &len);
      g_autoptr(JsonParser) p = json_parser_new ();
      r->status = soup_message_get_status (c->msg);
      r->headers = soup_message_headers_ref (soup_message_get_response_headers (c->msg));
      r->body = g_strndup (bytes != NULL ? bytes : "", len);
      if (len > 0 && json_parser_load_from_data (p, r->body, -1, NULL) && json_parser_get_root (p) != NULL)
        r->json = json_node_copy (json_parser_get_root (p));
      /* every answer of the API echoes the correlation id it was sent, or
       * one it made when the one sent was not acceptable */
      if (r->sent_cid != NULL)
        g_assert_cmpstr (hdr (r, "X-Correlation-ID"), ==, r->sent_cid);
      else
        {
          g_assert_true (g_uuid_string_is_valid (hdr (r, "X-Correlation-ID")));
          r->sent_cid = g_strdup (hdr (r, "X-Correlation-ID"));
        }
    }
  c->done = TRUE;
  if (c->on_done != NULL)
    c->on_done (c, c->on_done_data);
}

/* @extra: header name, value, ..., NULL; @token NULL sends no Authorization */
static Call *
call_start_full (Env *e, const char *method, const char *path, const char *token, const char *body,
                 const char *const *extra)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u%s", arb_test_daemon_get_port (e->d), path);
  Call *c = g_new0 (Call, 1);
  SoupMessageHeaders *h;

  c->msg = soup_message_new (method, uri);
  g_assert_nonnull (c->msg);
  c->reply = g_new0 (Reply, 1);
  c->reply->sent_cid = g_strdup_printf ("t-%u.%s", ++cid_counter, method);
  h = soup_message_get_request_headers (c->msg);
  soup_message_headers_replace (h, "X-Correlation-ID", c->reply->sent_cid);
  if (token != NULL)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_replace (h, "Authorization", auth);
    }
  for (guint i = 0; extra != NULL && extra[i] != NULL; i += 2)
    {
      soup_message_headers_replace (h, extra[i], extra[i + 1]);
      /* a caller's own: expected back only when valid (1-64 of [A-Za-z0-9._-]) */
      if (g_ascii_strcasecmp (extra[i], "X-Correlation-ID") == 0)
        {
          gboolean valid = strlen (extra[i + 1]) >= 1 && strlen (extra[i + 1]) <= 64;
          for (const char *p = extra[i + 1]; valid && *p != '\0'; p++)
            valid = g_ascii_isalnum (*p) || *p == '.' || *p == '_' || *p == '-';
          g_free (c->reply->sent_cid);
          c->reply->sent_cid = valid ? g_strdup (extra[i + 1]) : NULL;
        }
    }
  if (body != NULL)
    {
      g_autoptr(GBytes) b = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (c->msg, "application/json", b);
    }
  soup_session_send_and_read_async (e->session, c->msg, G_PRIORITY_DEFAULT, NULL, on_sent, c);
  return c;
}


static gboolean
call_is_done (gpointer data)
{
  return ((Call *) data)->done;
}

/* waits; the call is freed, its reply returned */
static Reply *
call_finish (Call *c)
{
  Reply *r;
  if (!arb_test_wait_for (call_is_done, c, HTTP_TIMEOUT_MS))
    g_error ("no answer within %u ms", HTTP_TIMEOUT_MS);
  r = g_steal_pointer (&c->reply);
  g_object_unref (c->msg);
  g_free (c);
  return r;
}

static Reply *
req_full (Env *e, const char *method, const char *path, const char *token, const char *body,
          const char *const *extra)
{
  Reply *r = call_finish (call_start_full (e, method, path, token, body, extra));
  if (r->error != NULL)
    g_error ("%s %s: %s", method, path, r->error->message);
  if (e->answers == NULL)
    e->answers = g_string_new (NULL);
  arb_test_record_answer (e->answers, method, path, r->status, r->body);
  return r;
}

/* every JSON answer so far, against doc/openapi.yaml (tests/openapi-check.py):
 * the file is the contract front ends read, so an answer it does not
 * describe, or describes otherwise, fails the test */
static void
check_openapi (Env *e)
{
  g_assert_nonnull (e->answers);
  arb_test_check_openapi (e->answers->str);
}

static Reply *
req (Env *e, const char *method, const char *path, const char *token, const char *body)
{
  return req_full (e, method, path, token, body, NULL);
}

static JsonObject *
obj (Reply *r)
{
  if (r->json == NULL || !JSON_NODE_HOLDS_OBJECT (r->json))
    g_error ("not a JSON object (status %u): %s", r->status, r->body);
  return json_node_get_object (r->json);
}

static void
expect_status (Reply *r, guint status)
{
  if (r->status != status)
    g_error ("expected status %u, got %u: %s", status, r->status, r->body);
  g_assert_true (g_str_has_prefix (hdr (r, "Content-Type"), "application/json"));
}

/* the one error shape, with the correlation id of the request */
static const char *
expect_error (Reply *r, guint status, const char *code)
{
  JsonObject *o, *err;
  g_autoptr(GList) members = NULL;

  expect_status (r, status);
  o = obj (r);
  g_assert_cmpuint (json_object_get_size (o), ==, 1);
  err = json_object_get_object_member (o, "error");
  g_assert_nonnull (err);
  g_assert_cmpuint (json_object_get_size (err), ==, 3);
  if (g_strcmp0 (json_object_get_string_member (err, "code"), code) != 0)
    g_error ("expected %u %s, got: %s", status, code, r->body);
  g_assert_cmpuint (strlen (json_object_get_string_member (err, "message")), >, 0);
  g_assert_cmpstr (json_object_get_string_member (err, "correlationId"), ==, r->sent_cid);
  if (status == 401)
    g_assert_true (g_str_has_prefix (hdr (r, "WWW-Authenticate"), "Bearer"));
  else
    g_assert_null (hdr (r, "WWW-Authenticate"));
  if (status == 503)
    {
      const char *ra = hdr (r, "Retry-After");
      g_assert_nonnull (ra);
      g_assert_cmpint (g_ascii_strtoll (ra, NULL, 10), >, 0);
    }
  return json_object_get_string_member (err, "message");
}

static void
expect_error_msg (Reply *r, guint status, const char *code, const char *needle)
{
  const char *m = expect_error (r, status, code);
  if (strstr (m, needle) == NULL)
    g_error ("the message of %s does not say \"%s\": %s", code, needle, r->body);
}

/* a decimal member: a string with exactly 8 places */
static gint64
jd (JsonObject *o, const char *member)
{
  static GRegex *re = NULL;
  const char *s;
  if (re == NULL)
    re = g_regex_new ("^-?[0-9]+\\.[0-9]{8}$", G_REGEX_OPTIMIZE, 0, NULL);
  if (!json_object_has_member (o, member) || JSON_NODE_HOLDS_NULL (json_object_get_member (o, member)))
    g_error ("no decimal member %s", member);
  s = json_object_get_string_member (o, member);
  g_assert_nonnull (s);
  if (!g_regex_match (re, s, 0, NULL))
    g_error ("%s = \"%s\" is not a decimal string with 8 places", member, s);
  return dec (s);
}

static void
assert_dec (JsonObject *o, const char *member, gint64 want)
{
  gint64 got = jd (o, member);
  if (got != want)
    {
      g_autofree char *w = fmt (want);
      g_autofree char *g = fmt (got);
      g_error ("%s: expected %s, got %s", member, w, g);
    }
}

static const char *
js (JsonObject *o, const char *member)
{
  JsonNode *n = json_object_get_member (o, member);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    g_error ("no string member %s", member);
  return json_node_get_string (n);
}

static gboolean
is_null (JsonObject *o, const char *member)
{
  JsonNode *n = json_object_get_member (o, member);
  g_assert_nonnull (n);
  return JSON_NODE_HOLDS_NULL (n);
}

/* ------------------------------------------------------------------------ */
/* API steps                                                                */

static char *
create_assessment (Env *e, const char *user, const char *program)
{
  g_autofree char *body = g_strdup_printf ("{\"userId\":\"%s\",\"program\":\"%s\"}", user, program);
  g_autoptr(Reply) r = req (e, "POST", "/assessments", e->admin, body);
  JsonObject *a;
  g_autofree char *location = NULL;

  expect_status (r, 201);
  a = obj (r);
  g_assert_true (g_uuid_string_is_valid (js (a, "id")));
  location = g_strconcat ("/assessments/", js (a, "id"), NULL);
  g_assert_cmpstr (hdr (r, "Location"), ==, location);
  g_assert_cmpstr (js (a, "userId"), ==, user);
  g_assert_cmpstr (js (a, "program"), ==, program);
  g_assert_cmpstr (js (a, "status"), ==, "active");
  g_assert_true (is_null (a, "statusReason"));
  g_assert_true (is_null (a, "statusTime"));
  assert_dec (a, "startingBalance", dec ("100000"));
  assert_dec (a, "balance", dec ("100000"));
  assert_dec (a, "equity", dec ("100000"));
  assert_dec (a, "unrealizedPnl", 0);
  assert_dec (a, "usedMargin", 0);
  assert_dec (a, "freeMargin", dec ("100000"));
  assert_dec (a, "equityHighWaterMark", dec ("100000"));
  assert_dec (a, "dayStartEquity", dec ("100000"));
  assert_dec (a, "dayStartBalance", dec ("100000"));
  g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, 0);
  g_assert_nonnull (g_date_time_new_from_iso8601 (js (a, "createdAt"), NULL));
  return g_strdup (js (a, "id"));
}

static JsonObject *
get_assessment (Env *e, const char *token, const char *id)
{
  g_autofree char *path = g_strconcat ("/assessments/", id, NULL);
  g_autoptr(Reply) r = req (e, "GET", path, token, NULL);
  expect_status (r, 200);
  return json_object_ref (obj (r));
}

static char *
order_body (const char *aid, const char *market, const char *side, const char *qty, const char *more)
{
  return g_strdup_printf ("{\"assessmentId\":\"%s\",\"market\":\"%s\",\"side\":\"%s\",\"quantity\":%s%s}", aid,
                          market, side, qty, more != NULL ? more : "");
}

/* POST /orders → 201: the whole answer */
static JsonObject *
place (Env *e, const char *token, const char *aid, const char *market, const char *side, const char *qty)
{
  g_autofree char *q = g_strdup_printf ("\"%s\"", qty);
  g_autofree char *body = order_body (aid, market, side, q, NULL);
  g_autoptr(Reply) r = req (e, "POST", "/orders", token, body);
  JsonObject *o, *order, *trade, *pos;

  expect_status (r, 201);
  o = obj (r);
  g_assert_cmpuint (json_object_get_size (o), ==, 3);
  order = json_object_get_object_member (o, "order");
  trade = json_object_get_object_member (o, "trade");
  pos = json_object_get_object_member (o, "position");
  g_assert_true (g_uuid_string_is_valid (js (order, "id")));
  g_assert_cmpstr (js (order, "assessmentId"), ==, aid);
  g_assert_cmpstr (js (order, "market"), ==, market);
  g_assert_cmpstr (js (order, "side"), ==, side);
  g_assert_cmpstr (js (order, "status"), ==, "filled");
  assert_dec (order, "quantity", dec (qty));
  g_assert_cmpstr (js (trade, "orderId"), ==, js (order, "id"));
  g_assert_cmpstr (js (trade, "positionId"), ==, js (pos, "id"));
  g_assert_cmpstr (js (trade, "assessmentId"), ==, aid);
  g_assert_cmpstr (js (trade, "market"), ==, market);
  g_assert_cmpstr (js (trade, "side"), ==, side);
  g_assert_cmpstr (js (trade, "positionSide"), ==, g_str_equal (side, "buy") ? "long" : "short");
  g_assert_cmpstr (js (trade, "reason"), ==, "open");
  assert_dec (trade, "quantity", dec (qty));
  assert_dec (trade, "realizedPnl", 0);
  assert_dec (trade, "cashEffect", -jd (trade, "fee"));
  g_assert_cmpstr (js (pos, "orderId"), ==, js (order, "id"));
  g_assert_cmpstr (js (pos, "status"), ==, "open");
  g_assert_cmpstr (js (pos, "side"), ==, g_str_equal (side, "buy") ? "long" : "short");
  assert_dec (pos, "quantity", dec (qty));
  assert_dec (pos, "initialQuantity", dec (qty));
  assert_dec (pos, "entryPrice", jd (trade, "price"));
  assert_dec (pos, "fees", jd (trade, "fee"));
  assert_dec (pos, "realizedPnl", 0);
  return json_object_ref (o);
}

/* POST /positions/{id}/close → 200 */
static JsonObject *
close_position (Env *e, const char *token, const char *pid, const char *qty)
{
  g_autofree char *path = g_strdup_printf ("/positions/%s/close", pid);
  g_autofree char *body = qty != NULL ? g_strdup_printf ("{\"quantity\":\"%s\"}", qty) : NULL;
  g_autoptr(Reply) r = req (e, "POST", path, token, body);
  JsonObject *o, *trade, *pos;

  expect_status (r, 200);
  o = obj (r);
  g_assert_cmpuint (json_object_get_size (o), ==, 2);
  trade = json_object_get_object_member (o, "trade");
  pos = json_object_get_object_member (o, "position");
  if (g_strcmp0 (js (trade, "reason"), "close") != 0 || g_strcmp0 (js (pos, "id"), pid) != 0)
    g_error ("closing %s answered: %s", pid, r->body);
  g_assert_cmpstr (js (trade, "positionId"), ==, pid);
  g_assert_cmpstr (js (pos, "id"), ==, pid);
  g_assert_cmpstr (js (trade, "reason"), ==, "close");
  g_assert_true (is_null (trade, "orderId"));
  g_assert_cmpstr (js (trade, "side"), ==, g_str_equal (js (pos, "side"), "long") ? "sell" : "buy");
  assert_dec (trade, "cashEffect", jd (trade, "realizedPnl") - jd (trade, "fee"));
  return json_object_ref (o);
}

/* every trade of an assessment through GET /trades, page by page */
static GPtrArray *
all_trades (Env *e, const char *token, const char *aid, guint limit)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_autofree char *cursor = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint pages = 0;

  for (;;)
    {
      g_autofree char *path = cursor != NULL
                                  ? g_strdup_printf ("/trades?assessmentId=%s&limit=%u&cursor=%s", aid, limit, cursor)
                                  : g_strdup_printf ("/trades?assessmentId=%s&limit=%u", aid, limit);
      g_autoptr(Reply) r = req (e, "GET", path, token, NULL);
      JsonObject *o;
      JsonArray *list;
      JsonNode *next;

      expect_status (r, 200);
      o = obj (r);
      g_assert_cmpuint (json_object_get_size (o), ==, 2);
      list = json_object_get_array_member (o, "trades");
      next = json_object_get_member (o, "nextCursor");
      g_assert_nonnull (next);
      g_assert_cmpuint (json_array_get_length (list), <=, limit);
      for (guint i = 0; i < json_array_get_length (list); i++)
        {
          JsonObject *t = json_array_get_object_element (list, i);
          g_assert_cmpstr (js (t, "assessmentId"), ==, aid);
          if (!g_hash_table_add (seen, g_strdup (js (t, "id"))))
            g_error ("trade %s on two pages", js (t, "id"));
          /* newest first */
          if (out->len > 0)
            g_assert_cmpstr (js (t, "executedAt"), <=, js (g_ptr_array_index (out, out->len - 1), "executedAt"));
          g_ptr_array_add (out, json_object_ref (t));
        }
      pages++;
      g_clear_pointer (&cursor, g_free);
      if (JSON_NODE_HOLDS_NULL (next))
        break;
      /* a cursor only when the page was full */
      g_assert_cmpuint (json_array_get_length (list), ==, limit);
      cursor = g_strdup (json_node_get_string (next));
      g_assert_nonnull (cursor);
      g_assert_cmpuint (pages, <, 10000);
    }
  return out;
}

/* the ledger: the sum of the cash effects is balance − starting balance;
 * returns the number of trades */
static guint
check_ledger (Env *e, const char *token, const char *aid, guint page)
{
  g_autoptr(GPtrArray) paged = all_trades (e, token, aid, page);
  g_autoptr(GPtrArray) whole = all_trades (e, token, aid, 500);
  g_autoptr(JsonObject) a = get_assessment (e, token, aid);
  gint64 sum = 0;

  g_assert_cmpuint (paged->len, ==, whole->len);
  for (guint i = 0; i < paged->len; i++)
    {
      JsonObject *t = g_ptr_array_index (paged, i);
      g_assert_cmpstr (js (t, "id"), ==, js (g_ptr_array_index (whole, i), "id"));
      sum += jd (t, "cashEffect");
    }
  if (sum != jd (a, "balance") - jd (a, "startingBalance"))
    {
      g_autofree char *s = fmt (sum);
      g_autofree char *b = fmt (jd (a, "balance") - jd (a, "startingBalance"));
      g_error ("ledger of %s: the cash effects sum to %s, balance − starting balance is %s", aid, s, b);
    }
  return paged->len;
}

static guint
trade_count (Env *e, const char *token, const char *aid)
{
  g_autoptr(GPtrArray) t = all_trades (e, token, aid, 500);
  return t->len;
}

/* GET /positions → the list */
static JsonArray *
positions (Env *e, const char *token, const char *aid, const char *status)
{
  g_autofree char *path = status != NULL ? g_strdup_printf ("/positions?assessmentId=%s&status=%s", aid, status)
                                         : g_strdup_printf ("/positions?assessmentId=%s", aid);
  g_autoptr(Reply) r = req (e, "GET", path, token, NULL);
  expect_status (r, 200);
  /* the lists here are short: one page */
  g_assert_cmpuint (json_object_get_size (obj (r)), ==, 2);
  g_assert_true (is_null (obj (r), "nextCursor"));
  return json_array_ref (json_object_get_array_member (obj (r), "positions"));
}

static JsonObject *
find_by_id (JsonArray *list, const char *id)
{
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *o = json_array_get_object_element (list, i);
      if (g_strcmp0 (js (o, "id"), id) == 0)
        return o;
    }
  return NULL;
}

/* GET /markets → market id → JsonObject */
static GHashTable *
markets (Env *e, const char *token)
{
  g_autoptr(Reply) r = req (e, "GET", "/markets", token, NULL);
  GHashTable *out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_object_unref);
  JsonArray *list;

  expect_status (r, 200);
  list = json_object_get_array_member (obj (r), "markets");
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *m = json_array_get_object_element (list, i);
      g_hash_table_replace (out, g_strdup (js (m, "market")), json_object_ref (m));
    }
  return out;
}

typedef struct {
  Env               *e;
  const char *const *tradable;
  const char        *resolved;
} MarketsWanted;

static gboolean
markets_ready (gpointer data)
{
  MarketsWanted *w = data;
  g_autoptr(GHashTable) m = markets (w->e, w->e->alice);
  for (guint i = 0; w->tradable[i] != NULL; i++)
    {
      JsonObject *o = g_hash_table_lookup (m, w->tradable[i]);
      if (o == NULL || !json_object_get_boolean_member (o, "tradable"))
        return FALSE;
    }
  if (w->resolved != NULL)
    {
      JsonObject *o = g_hash_table_lookup (m, w->resolved);
      if (o == NULL || g_strcmp0 (js (o, "status"), "resolved") != 0)
        return FALSE;
    }
  return TRUE;
}

static void
wait_markets (Env *e, const char *const *tradable, const char *resolved)
{
  MarketsWanted w = { e, tradable, resolved };
  if (!arb_test_wait_for (markets_ready, &w, 20000))
    {
      g_autoptr(Reply) r = req (e, "GET", "/markets", e->alice, NULL);
      g_error ("the markets did not become ready: %s", r->body);
    }
}

/* ------------------------------------------------------------------------ */
/* Starting                                                                 */

static const char *const core_markets[] = { FIX, FIY, POLY, "crypto:BTC-USD", "crypto:ETH-USD", NULL };

static void
start (Env *e)
{
  g_assert_null (e->d);
  e->d = arb_test_daemon_start_full (e->conf, NULL, ARB_TEST_DAEMON_QUIET, START_TIMEOUT_MS);
  if (e->d == NULL)
    g_error ("arbiterd did not log the port it listens on (its log is above)");
}

static void
restart (Env *e)
{
  daemon_stop (e->d);
  g_clear_pointer (&e->d, arb_test_daemon_free);
  start (e);
}

/* a daemon on the full config, with tokens for boss (admin), alice, bob */
static void
start_with_tokens (Env *e)
{
  g_autofree char *now = NULL;
  g_autofree char *requests = NULL;
  g_autoptr(JsonArray) answers = NULL;
  gint64 t = g_get_real_time () / G_USEC_PER_SEC;

  write_conf (e);
  start (e);
  e->admin = mint_token (e->conf, "boss", TRUE);
  e->bob = mint_token (e->conf, "bob", FALSE);
  requests = g_strdup_printf ("[{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%s\",\"payload\":"
                              "{\"sub\":\"alice\",\"iat\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT
                              ",\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}}]",
                              e->secret, t, t + 3600);
  answers = python_jwt (requests);
  e->alice = answer_token (answers, 0);
  wait_markets (e, core_markets, NULL);
}

/* ------------------------------------------------------------------------ */
/* The contract, on one backend                                             */

typedef struct {
  char *a1; /* alice, test (leverage 1) */
  char *a2; /* alice, lev10 */
  char *g1; /* alice, guarded (risk instance missing) */
  char *b1; /* bob, test */
  guint a1_trades, a2_trades, b1_trades;
} Book;

static void
book_clear (Book *b)
{
  g_free (b->a1);
  g_free (b->a2);
  g_free (b->g1);
  g_free (b->b1);
}

static void
check_jwt (Env *e)
{
  gint64 t = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *ok = g_strdup_printf ("\"iat\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT, t, t + 600);
  g_autofree char *requests = NULL;
  g_autoptr(JsonArray) answers = NULL;
  static const struct {
    const char *what;
    const char *reason; /* NULL: accepted */
  } cases[] = {
    /* 0 */ { "python-jwt, admin", NULL },
    /* 1 */ { "aud as an array holding ours", NULL },
    /* 2 */ { "another secret", "token signature invalid" },
    /* 3 */ { "alg none", "algorithm none not allowed" },
    /* 4 */ { "expired", "token expired" },
    /* 5 */ { "nbf in the future", "token not yet valid" },
    /* 6 */ { "another audience", "audience mismatch" },
    /* 7 */ { "another issuer", "issuer mismatch" },
    /* 8 */ { "no aud", "missing aud claim" },
    /* 9 */ { "no exp", "missing exp claim" },
    /* 10 */ { "HS512 with the right secret", "algorithm not allowed" },
    /* 11 */ { "no sub", "missing sub claim" },
    /* 12 */ { "roles not an array", "invalid roles claim" },
    /* 13 */ { "no iss", "missing iss claim" },
  };
  const char *iss_aud = "\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"";

  requests = g_strdup_printf (
      "["
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"py-admin\",\"roles\":[\"trader\",\"admin\"],%3$s,%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"iss\":\"" ISSUER "\",\"aud\":[\"x\",\"" AUDIENCE "\"]}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%2$s\",\"payload\":{\"sub\":\"alice\",%3$s,%4$s}},"
      "{\"op\":\"raw\",\"alg\":\"none\",\"header\":{\"alg\":\"none\",\"typ\":\"JWT\"},\"payload\":{\"sub\":\"alice\",%3$s,%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",\"iat\":%5$" G_GINT64_FORMAT ",\"exp\":%6$" G_GINT64_FORMAT ",%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"nbf\":%7$" G_GINT64_FORMAT ",%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"iss\":\"" ISSUER "\",\"aud\":\"someone-else\"}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"iss\":\"evil\",\"aud\":\"" AUDIENCE "\"}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"iss\":\"" ISSUER "\"}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",\"iat\":%5$" G_GINT64_FORMAT ",%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS512\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{%3$s,%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",\"roles\":\"admin\",%3$s,%4$s}},"
      "{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%1$s\",\"payload\":{\"sub\":\"alice\",%3$s,\"aud\":\"" AUDIENCE "\"}}"
      "]",
      e->secret, e->other_secret, ok, iss_aud, t - 4000, t - 600, t + 600);
  answers = python_jwt (requests);
  g_assert_cmpuint (json_array_get_length (answers), ==, G_N_ELEMENTS (cases));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *token = answer_token (answers, i);
      g_autoptr(Reply) r = req (e, "GET", "/assessments", token, NULL);
      g_test_message ("token: %s", cases[i].what);
      if (cases[i].reason == NULL)
        expect_status (r, 200);
      else
        {
          g_autofree char *want = g_strconcat ("invalid token: ", cases[i].reason, NULL);
          expect_error (r, 401, "UNAUTHENTICATED");
          g_assert_cmpstr (js (json_object_get_object_member (obj (r), "error"), "message"), ==, want);
        }
    }
  /* verified tokens are remembered, but only until they expire: a token
   * past its exp, still inside the 30 s leeway, is accepted, used again
   * (from the daemon's cache), and refused once the leeway has passed */
  {
    gint64 now = g_get_real_time () / G_USEC_PER_SEC;
    g_autofree char *one = g_strdup_printf (
        "[{\"op\":\"encode\",\"alg\":\"HS256\",\"key_file\":\"%s\",\"payload\":{\"sub\":\"alice\",\"iat\":%"
        G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT ",%s}}]",
        e->secret, now - 100, now - 28, iss_aud);
    g_autoptr(JsonArray) minted = python_jwt (one);
    g_autofree char *token = answer_token (minted, 0);
    g_autoptr(Reply) first = req (e, "GET", "/assessments", token, NULL);
    g_autoptr(Reply) again = req (e, "GET", "/assessments", token, NULL);
    g_autoptr(Reply) late = NULL;
    expect_status (first, 200);
    expect_status (again, 200);
    while (g_get_real_time () / G_USEC_PER_SEC < now + 3)
      g_usleep (100 * 1000);
    late = req (e, "GET", "/assessments", token, NULL);
    expect_error_msg (late, 401, "UNAUTHENTICATED", "invalid token: token expired");
  }
  /* the python-jwt admin is an admin: it sees every assessment */
  {
    g_autofree char *admin = answer_token (answers, 0);
    g_autoptr(Reply) mine = req (e, "POST", "/assessments", admin, "{\"userId\":\"nobody\",\"program\":\"nope\"}");
    /* past the role check, refused for the program */
    expect_error_msg (mine, 400, "VALIDATION_ERROR", "program \"nope\" is not configured");
  }
  /* a valid token whose payload was swapped after signing */
  {
    g_auto(GStrv) parts = g_strsplit (e->alice, ".", -1);
    g_autofree char *payload = g_strdup_printf ("{\"sub\":\"bob\",%s,%s}", ok, iss_aud);
    g_autofree char *b64 = g_base64_encode ((const guchar *) payload, strlen (payload));
    g_autofree char *forged = NULL;
    g_autoptr(Reply) r = NULL;
    g_strdelimit (b64, "+", '-');
    g_strdelimit (b64, "/", '_');
    for (char *end = b64 + strlen (b64); end > b64 && end[-1] == '='; end--)
      end[-1] = '\0';
    g_assert_cmpuint (g_strv_length (parts), ==, 3);
    forged = g_strjoin (".", parts[0], b64, parts[2], NULL);
    r = req (e, "GET", "/assessments", forged, NULL);
    expect_error_msg (r, 401, "UNAUTHENTICATED", "token signature invalid");
  }
  /* no token, another scheme, an empty one, garbage: 401 with WWW-Authenticate */
  {
    static const char *const auths[] = { NULL, "Basic YWxpY2U6c2VjcmV0", "Bearer ", "Bearer not.a.token",
                                         "Bearer abc" };
    for (guint i = 0; i < G_N_ELEMENTS (auths); i++)
      {
        const char *extra[] = { "Authorization", auths[i], NULL };
        g_autoptr(Reply) r = req_full (e, "GET", "/markets", NULL, NULL, auths[i] != NULL ? extra : NULL);
        expect_error (r, 401, "UNAUTHENTICATED");
      }
  }
  /* every route is behind the token */
  {
    static const char *const routes[][2] = { { "POST", "/assessments" }, { "GET", "/assessments" },
                                             { "GET", "/assessments/x" }, { "POST", "/orders" },
                                             { "GET", "/positions?assessmentId=x" }, { "POST", "/positions/x/close" },
                                             { "GET", "/trades?assessmentId=x" }, { "GET", "/markets" } };
    for (guint i = 0; i < G_N_ELEMENTS (routes); i++)
      {
        g_autoptr(Reply) r = req (e, routes[i][0], routes[i][1], NULL, routes[i][0][0] == 'P' ? "{}" : NULL);
        expect_error (r, 401, "UNAUTHENTICATED");
      }
  }
  /* an error carries the correlation id of its answer: the caller's, or
   * one made for it when the caller's is not acceptable */
  {
    static const char *const cids[] = { "client.Req-42_x", "has space", "a/b" };
    for (guint i = 0; i < G_N_ELEMENTS (cids); i++)
      {
        const char *extra[] = { "X-Correlation-ID", cids[i], NULL };
        g_autoptr(Reply) r = req_full (e, "GET", "/assessments/nope", e->alice, NULL, extra);
        expect_error (r, 404, "NOT_FOUND");
        if (i == 0)
          g_assert_cmpstr (hdr (r, "X-Correlation-ID"), ==, cids[0]);
        else
          g_assert_cmpstr (hdr (r, "X-Correlation-ID"), !=, cids[i]);
      }
  }
  /* what --mint-token signs is a token python-jwt accepts, with the
   * configured issuer and audience */
  {
    g_autofree char *dreq = g_strdup_printf ("[{\"op\":\"decode\",\"token\":\"%s\",\"alg\":\"HS256\",\"key_file\":"
                                             "\"%s\",\"audience\":\"" AUDIENCE "\",\"issuer\":\"" ISSUER "\"}]",
                                             e->admin, e->secret);
    g_autoptr(JsonArray) dec_answers = python_jwt (dreq);
    JsonObject *claims = json_object_get_object_member (json_array_get_object_element (dec_answers, 0), "claims");
    JsonArray *roles;
    if (claims == NULL)
      g_error ("python-jwt refused the minted token: %s",
               json_object_get_string_member (json_array_get_object_element (dec_answers, 0), "error"));
    g_assert_cmpstr (json_object_get_string_member (claims, "sub"), ==, "boss");
    roles = json_object_get_array_member (claims, "roles");
    g_assert_cmpuint (json_array_get_length (roles), ==, 1);
    g_assert_cmpstr (json_array_get_string_element (roles, 0), ==, "admin");
  }
  /* health, readiness and metrics need none */
  {
    g_autoptr(Reply) r = req (e, "GET", "/health", NULL, NULL);
    expect_status (r, 200);
  }
}

static void
check_assessments (Env *e, Book *b)
{
  g_autoptr(Reply) r = NULL;

  b->a1 = create_assessment (e, "alice", "test");
  b->a2 = create_assessment (e, "alice", "lev10");
  b->g1 = create_assessment (e, "alice", "guarded");
  b->b1 = create_assessment (e, "bob", "test");

  /* admin only */
  r = req (e, "POST", "/assessments", e->alice, "{\"userId\":\"alice\",\"program\":\"test\"}");
  expect_error (r, 403, "FORBIDDEN");
  g_clear_pointer (&r, reply_free);
  /* an unknown program lists the configured ones */
  r = req (e, "POST", "/assessments", e->admin, "{\"userId\":\"alice\",\"program\":\"standard-1m\"}");
  expect_error_msg (r, 400, "VALIDATION_ERROR", "lev10");
  g_clear_pointer (&r, reply_free);
  r = req (e, "POST", "/assessments", e->admin, "{\"user\":\"alice\",\"program\":\"test\"}");
  expect_error_msg (r, 400, "VALIDATION_ERROR", "unknown field \"user\"");
  g_clear_pointer (&r, reply_free);
  r = req (e, "POST", "/assessments", e->admin, "{\"program\":\"test\"}");
  expect_error_msg (r, 400, "VALIDATION_ERROR", "userId is required");
  g_clear_pointer (&r, reply_free);
  r = req (e, "POST", "/assessments", e->admin, "{\"userId\":7,\"program\":\"test\"}");
  expect_error (r, 400, "VALIDATION_ERROR");
  g_clear_pointer (&r, reply_free);

  /* its history: assessment.created, for the owner; hidden from another user */
  {
    g_autofree char *path = g_strdup_printf ("/assessments/%s/events", b->a1);
    g_autoptr(Reply) own = req (e, "GET", path, e->alice, NULL);
    g_autoptr(Reply) other = req (e, "GET", path, e->bob, NULL);
    g_autoptr(Reply) q = NULL;
    g_autofree char *qpath = g_strdup_printf ("%s?limit=5", path);
    JsonArray *events;
    JsonObject *first;
    expect_status (own, 200);
    events = json_object_get_array_member (obj (own), "events");
    g_assert_cmpuint (json_array_get_length (events), >=, 1);
    first = json_array_get_object_element (events, 0);
    g_assert_cmpstr (js (first, "type"), ==, "assessment.created");
    g_assert_cmpstr (js (first, "assessmentId"), ==, b->a1);
    g_assert_cmpstr (js (json_object_get_object_member (first, "data"), "id"), ==, b->a1);
    expect_error (other, 404, "NOT_FOUND");
    q = req (e, "GET", qpath, e->alice, NULL);
    expect_error_msg (q, 400, "VALIDATION_ERROR", "this path takes none");
  }
  /* GET /assessments/{id}: the owner and the admin */
  {
    g_autoptr(JsonObject) own = get_assessment (e, e->alice, b->a1);
    g_autoptr(JsonObject) adm = get_assessment (e, e->admin, b->a1);
    g_assert_cmpstr (js (own, "id"), ==, b->a1);
    g_assert_cmpstr (js (adm, "userId"), ==, "alice");
  }
  /* lists: alice her own, oldest first; bob his; the admin all or one user's */
  {
    static const struct {
      int         who; /* 0 alice, 1 bob, 2 admin */
      const char *query;
      guint       n;
    } lists[] = { { 0, "", 3 }, { 0, "?userId=alice", 3 }, { 1, "", 1 }, { 2, "", 4 }, { 2, "?userId=bob", 1 },
                  { 2, "?userId=alice", 3 }, { 2, "?userId=carol", 0 } };
    for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
      {
        const char *token = lists[i].who == 0 ? e->alice : lists[i].who == 1 ? e->bob : e->admin;
        g_autofree char *path = g_strconcat ("/assessments", lists[i].query, NULL);
        g_autoptr(Reply) lr = req (e, "GET", path, token, NULL);
        JsonArray *list;
        expect_status (lr, 200);
        list = json_object_get_array_member (obj (lr), "assessments");
        g_assert_cmpuint (json_array_get_length (list), ==, lists[i].n);
        for (guint j = 0; j < json_array_get_length (list); j++)
          {
            JsonObject *a = json_array_get_object_element (list, j);
            if (lists[i].who == 0)
              g_assert_cmpstr (js (a, "userId"), ==, "alice");
            if (lists[i].who == 1 || g_str_equal (lists[i].query, "?userId=bob"))
              {
                g_assert_cmpstr (js (a, "userId"), ==, "bob");
                g_assert_cmpstr (js (a, "id"), ==, b->b1);
              }
          }
        if (lists[i].who == 0)
          {
            g_assert_cmpstr (js (json_array_get_object_element (list, 0), "id"), ==, b->a1);
            g_assert_cmpstr (js (json_array_get_object_element (list, 1), "id"), ==, b->a2);
            g_assert_cmpstr (js (json_array_get_object_element (list, 2), "id"), ==, b->g1);
          }
      }
  }
  /* in pages: the admin's four, two at a time, oldest first, the same order
   * as in one answer; alice's pages hold only hers */
  {
    g_autoptr(Reply) whole = req (e, "GET", "/assessments", e->admin, NULL);
    JsonArray *all;
    g_autofree char *cursor = NULL;
    guint seen = 0, pages = 0;
    expect_status (whole, 200);
    g_assert_true (is_null (obj (whole), "nextCursor"));
    all = json_object_get_array_member (obj (whole), "assessments");
    do
      {
        g_autofree char *path = cursor == NULL ? g_strdup ("/assessments?limit=3")
                                               : g_strdup_printf ("/assessments?limit=3&cursor=%s", cursor);
        g_autoptr(Reply) pr = req (e, "GET", path, e->admin, NULL);
        JsonArray *page;
        JsonNode *next;
        expect_status (pr, 200);
        page = json_object_get_array_member (obj (pr), "assessments");
        g_assert_cmpuint (json_array_get_length (page), ==, pages == 0 ? 3 : 1);
        for (guint j = 0; j < json_array_get_length (page); j++, seen++)
          g_assert_cmpstr (js (json_array_get_object_element (page, j), "id"), ==,
                           js (json_array_get_object_element (all, seen), "id"));
        next = json_object_get_member (obj (pr), "nextCursor");
        g_free (cursor);
        cursor = JSON_NODE_HOLDS_NULL (next) ? NULL : g_strdup (json_node_get_string (next));
        pages++;
        g_assert_cmpuint (pages, <=, 2);
      }
    while (cursor != NULL);
    g_assert_cmpuint (seen, ==, 4);
  }
  {
    g_autoptr(Reply) p1 = req (e, "GET", "/assessments?limit=2", e->alice, NULL);
    g_autoptr(Reply) p2 = NULL;
    g_autofree char *path = NULL;
    JsonArray *page;
    expect_status (p1, 200);
    path = g_strdup_printf ("/assessments?limit=2&cursor=%s", js (obj (p1), "nextCursor"));
    p2 = req (e, "GET", path, e->alice, NULL);
    expect_status (p2, 200);
    page = json_object_get_array_member (obj (p2), "assessments");
    g_assert_cmpuint (json_array_get_length (page), ==, 1);
    g_assert_cmpstr (js (json_array_get_object_element (page, 0), "id"), ==, b->g1);
    g_assert_true (is_null (obj (p2), "nextCursor"));
  }
  {
    static const char *const bad[][2] = { { "/assessments?limit=0", "limit" },
                                          { "/assessments?limit=1001", "limit" },
                                          { "/assessments?cursor=bm90LWEtY3Vyc29y", "cursor" },
                                          { "/assessments?usrId=bob", "did you mean \"userId\"" } };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(Reply) br = req (e, "GET", bad[i][0], e->admin, NULL);
        expect_error_msg (br, 400, "VALIDATION_ERROR", bad[i][1]);
      }
  }
  /* a user may not list another's */
  r = req (e, "GET", "/assessments?userId=bob", e->alice, NULL);
  expect_error (r, 403, "FORBIDDEN");
  g_clear_pointer (&r, reply_free);
  /* no such assessment */
  r = req (e, "GET", "/assessments/00000000-0000-4000-8000-000000000000", e->admin, NULL);
  expect_error (r, 404, "NOT_FOUND");
  g_clear_pointer (&r, reply_free);
}

/* fills on the fixture market, computed to the last unit */
static void
check_numbers (Env *e, Book *b)
{
  const gint64 bid = dec (FIX_BID), ask = dec (FIX_ASK), start = dec ("100000");
  const gint64 q_long = dec ("1000.5"), q_short = dec ("400"), q_part = dec ("300.25");
  gint64 balance = start;
  gint64 entry_l, notional_l, fee_l, margin_l, entry_s, notional_s, fee_s;
  g_autoptr(JsonObject) lo = NULL;
  g_autoptr(JsonObject) so = NULL;
  g_autofree char *long_id = NULL;
  g_autofree char *short_id = NULL;
  g_autoptr(GHashTable) m = markets (e, e->alice);

  /* GET /markets: the fixture's quote and the rules, class and override */
  {
    JsonObject *fix = g_hash_table_lookup (m, FIX), *fiy = g_hash_table_lookup (m, FIY);
    JsonObject *poly = g_hash_table_lookup (m, POLY), *btc = g_hash_table_lookup (m, "crypto:BTC-USD");
    g_assert_nonnull (fix);
    g_assert_nonnull (fiy);
    g_assert_cmpstr (js (fix, "class"), ==, "crypto");
    g_assert_cmpstr (js (fix, "status"), ==, "open");
    assert_dec (fix, "bid", bid);
    assert_dec (fix, "ask", ask);
    g_assert_cmpstr (js (fix, "source"), ==, "fixed");
    g_assert_true (json_object_get_boolean_member (fix, "tradable"));
    g_assert_cmpint (json_object_get_int_member (fix, "ageMs"), >=, 0);
    g_assert_cmpint (json_object_get_int_member (fix, "ageMs"), <, 30000);
    g_assert_nonnull (g_date_time_new_from_iso8601 (js (fix, "sourceTime"), NULL));
    g_assert_cmpint (json_object_get_int_member (fix, "slippageBps"), ==, 5);
    g_assert_cmpint (json_object_get_int_member (fix, "feeBps"), ==, 10);
    g_assert_cmpint (json_object_get_int_member (fiy, "slippageBps"), ==, 0);
    g_assert_cmpint (json_object_get_int_member (fiy, "feeBps"), ==, 25);
    g_assert_cmpstr (js (poly, "class"), ==, "prediction");
    g_assert_cmpint (json_object_get_int_member (poly, "slippageBps"), ==, 10);
    g_assert_cmpint (json_object_get_int_member (poly, "feeBps"), ==, 20);
    g_assert_cmpstr (js (btc, "source"), ==, "replay");
  }

  /* a long: ask × 1.0005 rounded up, fee 10 bps of the notional rounded up */
  entry_l = fill_price (ask, 5, TRUE);
  notional_l = mul (entry_l, q_long, R_HALF_EVEN);
  fee_l = fee_of (notional_l, 10);
  margin_l = notional_l; /* leverage 1 */
  lo = place (e, e->alice, b->a1, FIX, "buy", "1000.5");
  b->a1_trades++;
  {
    JsonObject *t = json_object_get_object_member (lo, "trade"), *p = json_object_get_object_member (lo, "position");
    assert_dec (t, "price", entry_l);
    assert_dec (t, "fee", fee_l);
    assert_dec (t, "cashEffect", -fee_l);
    g_assert_cmpstr (js (t, "quoteSource"), ==, "fixed");
    g_assert_nonnull (g_date_time_new_from_iso8601 (js (t, "quoteTime"), NULL));
    assert_dec (p, "margin", margin_l);
    assert_dec (p, "entryPrice", entry_l);
    g_assert_true (is_null (p, "stopLoss"));
    g_assert_true (is_null (p, "takeProfit"));
    long_id = g_strdup (js (p, "id"));
    balance -= fee_l;
  }
  /* the assessment: marked at the bid */
  {
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, b->a1);
    gint64 unreal = mul (bid - entry_l, q_long, R_HALF_EVEN);
    assert_dec (a, "balance", balance);
    assert_dec (a, "usedMargin", margin_l);
    assert_dec (a, "unrealizedPnl", unreal);
    assert_dec (a, "equity", balance + unreal);
    assert_dec (a, "freeMargin", balance + unreal - margin_l);
    g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, 1);
  }
  /* a short: bid × 0.9995 rounded down; marked at the ask */
  entry_s = fill_price (bid, 5, FALSE);
  notional_s = mul (entry_s, q_short, R_HALF_EVEN);
  fee_s = fee_of (notional_s, 10);
  so = place (e, e->alice, b->a1, FIX, "sell", "400");
  b->a1_trades++;
  {
    JsonObject *t = json_object_get_object_member (so, "trade"), *p = json_object_get_object_member (so, "position");
    assert_dec (t, "price", entry_s);
    assert_dec (t, "fee", fee_s);
    assert_dec (p, "margin", notional_s);
    short_id = g_strdup (js (p, "id"));
    balance -= fee_s;
  }
  {
    g_autoptr(JsonArray) open = positions (e, e->alice, b->a1, NULL);
    JsonObject *pl = find_by_id (open, long_id), *ps = find_by_id (open, short_id);
    g_assert_cmpuint (json_array_get_length (open), ==, 2);
    assert_dec (pl, "markPrice", bid);
    assert_dec (pl, "unrealizedPnl", mul (bid - entry_l, q_long, R_HALF_EVEN));
    assert_dec (ps, "markPrice", ask);
    assert_dec (ps, "unrealizedPnl", mul (entry_s - ask, q_short, R_HALF_EVEN));
    g_assert_cmpstr (js (ps, "markSource"), ==, "fixed");
    g_assert_nonnull (g_date_time_new_from_iso8601 (js (ps, "markTime"), NULL));
  }

  /* close part of the long: sells at the bid less slippage; the margin is
   * released in proportion */
  {
    g_autoptr(JsonObject) c = close_position (e, e->alice, long_id, "300.25");
    JsonObject *t = json_object_get_object_member (c, "trade"), *p = json_object_get_object_member (c, "position");
    gint64 exit = fill_price (bid, 5, FALSE);
    gint64 pnl = mul (exit - entry_l, q_part, R_HALF_EVEN);
    gint64 fee = fee_of (mul (exit, q_part, R_HALF_EVEN), 10);
    gint64 released = mul_div (margin_l, q_part, q_long, R_HALF_EVEN);
    b->a1_trades++;
    assert_dec (t, "price", exit);
    assert_dec (t, "quantity", q_part);
    assert_dec (t, "realizedPnl", pnl);
    assert_dec (t, "fee", fee);
    assert_dec (t, "cashEffect", pnl - fee);
    g_assert_cmpint (pnl, <, 0); /* the spread and slippage */
    g_assert_cmpstr (js (p, "status"), ==, "open");
    assert_dec (p, "quantity", q_long - q_part);
    assert_dec (p, "initialQuantity", q_long);
    assert_dec (p, "margin", margin_l - released);
    assert_dec (p, "realizedPnl", pnl);
    assert_dec (p, "fees", fee_l + fee);
    balance += pnl - fee;
  }
  /* the rest of it, no body */
  {
    g_autoptr(JsonObject) c = close_position (e, e->alice, long_id, NULL);
    JsonObject *t = json_object_get_object_member (c, "trade"), *p = json_object_get_object_member (c, "position");
    gint64 exit = fill_price (bid, 5, FALSE), q = q_long - q_part;
    gint64 pnl = mul (exit - entry_l, q, R_HALF_EVEN);
    gint64 fee = fee_of (mul (exit, q, R_HALF_EVEN), 10);
    b->a1_trades++;
    assert_dec (t, "quantity", q);
    assert_dec (t, "realizedPnl", pnl);
    assert_dec (t, "cashEffect", pnl - fee);
    g_assert_cmpstr (js (p, "status"), ==, "closed");
    g_assert_cmpstr (js (p, "closeReason"), ==, "close");
    g_assert_nonnull (g_date_time_new_from_iso8601 (js (p, "closedAt"), NULL));
    assert_dec (p, "quantity", 0);
    assert_dec (p, "margin", 0);
    balance += pnl - fee;
  }
  /* the short, all of it by quantity: buys at the ask plus slippage */
  {
    g_autoptr(JsonObject) c = close_position (e, e->alice, short_id, "400");
    JsonObject *t = json_object_get_object_member (c, "trade"), *p = json_object_get_object_member (c, "position");
    gint64 exit = fill_price (ask, 5, TRUE);
    gint64 pnl = mul (entry_s - exit, q_short, R_HALF_EVEN);
    gint64 fee = fee_of (mul (exit, q_short, R_HALF_EVEN), 10);
    b->a1_trades++;
    assert_dec (t, "price", exit);
    assert_dec (t, "realizedPnl", pnl);
    assert_dec (t, "fee", fee);
    g_assert_cmpstr (js (t, "side"), ==, "buy");
    g_assert_cmpstr (js (t, "positionSide"), ==, "short");
    g_assert_cmpstr (js (p, "status"), ==, "closed");
    balance += pnl - fee;
  }
  /* closed, gone from the open list, kept in the closed one */
  {
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, b->a1);
    g_autoptr(JsonArray) open = positions (e, e->alice, b->a1, "open");
    g_autoptr(JsonArray) closed = positions (e, e->alice, b->a1, "closed");
    g_autoptr(JsonArray) all = positions (e, e->admin, b->a1, "all");
    assert_dec (a, "balance", balance);
    assert_dec (a, "usedMargin", 0);
    assert_dec (a, "equity", balance);
    g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, 0);
    g_assert_cmpuint (json_array_get_length (open), ==, 0);
    g_assert_cmpuint (json_array_get_length (closed), ==, 2);
    g_assert_cmpuint (json_array_get_length (all), ==, 2);
    g_assert_nonnull (find_by_id (closed, long_id));
    g_assert_nonnull (find_by_id (closed, short_id));
    g_assert_cmpstr (js (find_by_id (closed, long_id), "status"), ==, "closed");
    assert_dec (find_by_id (closed, long_id), "initialQuantity", q_long);
    g_assert_false (json_object_has_member (find_by_id (closed, long_id), "markPrice"));
  }
  /* a closed position cannot be closed again */
  {
    g_autofree char *path = g_strdup_printf ("/positions/%s/close", long_id);
    g_autoptr(Reply) r = req (e, "POST", path, e->alice, NULL);
    expect_error (r, 404, "NOT_FOUND");
  }

  /* a [market:] override: no slippage, 25 bps */
  {
    g_autoptr(JsonObject) o = place (e, e->alice, b->a1, FIY, "buy", "3.33333333");
    JsonObject *t = json_object_get_object_member (o, "trade");
    gint64 notional = mul (dec (FIY_ASK), dec ("3.33333333"), R_HALF_EVEN);
    b->a1_trades++;
    assert_dec (t, "price", dec (FIY_ASK));
    assert_dec (t, "fee", fee_of (notional, 25));
    assert_dec (json_object_get_object_member (o, "position"), "margin", notional);
    balance -= fee_of (notional, 25);
  }

  /* leverage 10: margin = notional / 10, rounded up */
  {
    g_autoptr(JsonObject) o = place (e, e->alice, b->a2, FIX, "buy", "1000.5");
    JsonObject *p = json_object_get_object_member (o, "position");
    b->a2_trades++;
    assert_dec (p, "margin", div_round ((__int128) notional_l, 10, R_CEIL));
  }
  /* a prediction market costs its whole notional, whatever the leverage */
  {
    g_autoptr(JsonObject) o = place (e, e->alice, b->a2, POLY, "buy", "100");
    JsonObject *t = json_object_get_object_member (o, "trade"), *p = json_object_get_object_member (o, "position");
    gint64 price = fill_price (dec (POLY_ASK), 10, TRUE);
    gint64 notional = mul (price, dec ("100"), R_HALF_EVEN);
    b->a2_trades++;
    assert_dec (t, "price", price);
    assert_dec (t, "fee", fee_of (notional, 20));
    assert_dec (p, "margin", notional);
    g_assert_cmpstr (js (p, "side"), ==, "long");
  }

  /* a moving market: the fill from the quote GET /markets showed just
   * before when the trade used that same quote, and always from the trade's
   * own price */
  {
    g_autoptr(GHashTable) before = markets (e, e->alice);
    JsonObject *btc = g_hash_table_lookup (before, "crypto:BTC-USD");
    g_autoptr(JsonObject) o = place (e, e->alice, b->a1, "crypto:BTC-USD", "buy", "0.1");
    JsonObject *t = json_object_get_object_member (o, "trade"), *p = json_object_get_object_member (o, "position");
    gint64 price = jd (t, "price");
    gint64 notional = mul (price, dec ("0.1"), R_HALF_EVEN);
    g_autoptr(GDateTime) seen = g_date_time_new_from_iso8601 (js (btc, "sourceTime"), NULL);
    g_autoptr(GDateTime) used = g_date_time_new_from_iso8601 (js (t, "quoteTime"), NULL);
    b->a1_trades++;
    g_assert_cmpstr (js (t, "quoteSource"), ==, "replay");
    assert_dec (t, "fee", fee_of (notional, 10));
    assert_dec (t, "cashEffect", -fee_of (notional, 10));
    assert_dec (p, "margin", notional);
    /* within a percent of what the book showed */
    g_assert_cmpint (price, >, jd (btc, "ask") / 100 * 99);
    g_assert_cmpint (price, <, jd (btc, "ask") / 100 * 101);
    if (g_date_time_compare (seen, used) == 0)
      assert_dec (t, "price", fill_price (jd (btc, "ask"), 5, TRUE));
    else
      g_test_message ("the BTC quote moved between GET /markets and the order");
    balance -= fee_of (notional, 10);
    {
      g_autoptr(JsonObject) a = get_assessment (e, e->alice, b->a1);
      assert_dec (a, "balance", balance);
    }
  }

  /* JSON numbers are read through their shortest text; brackets are kept */
  {
    g_autoptr(Reply) r = NULL;
    g_autofree char *body = order_body (b->a1, FIX, "buy", "2.5", ",\"stopLoss\":2,\"takeProfit\":\"2.5\","
                                                                  "\"clientOrderId\":\"alice-7\"");
    JsonObject *order, *p;
    r = req (e, "POST", "/orders", e->alice, body);
    expect_status (r, 201);
    b->a1_trades++;
    order = json_object_get_object_member (obj (r), "order");
    p = json_object_get_object_member (obj (r), "position");
    assert_dec (order, "quantity", dec ("2.5"));
    g_assert_cmpstr (js (order, "clientOrderId"), ==, "alice-7");
    assert_dec (order, "stopLoss", dec ("2"));
    assert_dec (order, "takeProfit", dec ("2.5"));
    assert_dec (p, "stopLoss", dec ("2"));
    assert_dec (p, "takeProfit", dec ("2.5"));
  }
}

static void
check_order_errors (Env *e, Book *b)
{
  guint before = trade_count (e, e->alice, b->a1);
  g_autofree char *big = NULL;
  static const struct {
    const char *body; /* @ID@: the assessment id */
    const char *needle;
  } invalid[] = {
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\",\"stoploss\":\"1\"}",
      "unknown field \"stoploss\" (did you mean \"stopLoss\"?" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"0.123456789\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":0.123456789}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"0\"}", "above zero" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":0}", "above zero" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"-1\"}", "above zero" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":-1}", "above zero" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"NaN\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"nan\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"Infinity\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"-inf\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"\"}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":true}", "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":1e400}", "" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":0.1234567890123456789}",
      "quantity" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\"}", "quantity is required" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"hold\",\"quantity\":\"1\"}", "side" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"BTC-USD\",\"side\":\"buy\",\"quantity\":\"1\"}", "not a market id" },
    { "{\"assessmentId\":\"@ID@\",\"side\":\"buy\",\"quantity\":\"1\"}", "market is required" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\",\"stopLoss\":\"0\"}",
      "stopLoss must be above zero" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\",\"stopLoss\":\"3\"}",
      "stopLoss" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\",\"takeProfit\":\"2\"}",
      "takeProfit" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"sell\",\"quantity\":\"1\",\"stopLoss\":\"2\"}",
      "stopLoss" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" POLY "\",\"side\":\"sell\",\"quantity\":\"1\"}", "long only" },
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\",\"clientOrderId\":"
      "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
      "clientOrderId" },
    { "{\"market\":\"" FIX "\",\"side\":\"buy\",\"quantity\":\"1\"}", "assessmentId is required" },
    /* a field twice: which one counts is not defined, so neither does */
    { "{\"assessmentId\":\"@ID@\",\"market\":\"" FIX "\",\"side\":\"sell\",\"side\":\"buy\",\"quantity\":\"1\"}",
      "the body names \"side\" twice" },
    { "{\"assessmentId\":\"@ID@\",", "not valid JSON" },
    { "[\"@ID@\"]", "JSON object" },
    { "@ID@", "not valid JSON" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(GString) s = g_string_new (invalid[i].body);
      g_autofree char *body = NULL;
      g_string_replace (s, "@ID@", b->a1, 0);
      body = g_string_free (g_steal_pointer (&s), FALSE);
      g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
      g_test_message ("invalid order: %s", body);
      expect_error_msg (r, 400, "VALIDATION_ERROR", invalid[i].needle);
    }
  /* an empty body */
  {
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, "");
    expect_error (r, 400, "VALIDATION_ERROR");
  }
  /* an Idempotency-Key over 255 characters */
  {
    g_autofree char *key = g_strnfill (256, 'k');
    const char *extra[] = { "Idempotency-Key", key, NULL };
    g_autofree char *body = order_body (b->a1, FIX, "buy", "\"1\"", NULL);
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, body, extra);
    expect_error_msg (r, 400, "VALIDATION_ERROR", "Idempotency-Key");
  }
  /* over 64 KiB: refused before anything else, token or not */
  {
    g_autoptr(GString) s = g_string_new ("{\"assessmentId\":\"");
    g_string_append (s, b->a1);
    g_string_append (s, "\",\"clientOrderId\":\"");
    while (s->len < 65 * 1024)
      g_string_append_c (s, 'x');
    g_string_append (s, "\"}");
    big = g_string_free (g_steal_pointer (&s), FALSE);
    for (guint i = 0; i < 2; i++)
      {
        g_autoptr(Reply) r = req (e, "POST", "/orders", i == 0 ? e->alice : NULL, big);
        expect_error (r, 413, "PAYLOAD_TOO_LARGE");
      }
  }
  /* not enough free margin: leverage 1, and leverage 10 */
  {
    g_autofree char *body = order_body (b->a1, "crypto:BTC-USD", "buy", "\"2\"", NULL);
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
    expect_error_msg (r, 422, "INSUFFICIENT_BALANCE", "free margin");
  }
  {
    /* 10 BTC is about 910,000 of notional: its 91,000 of margin at leverage
     * 10 fits in 100,000; 120 BTC does not */
    g_autoptr(JsonObject) o = place (e, e->alice, b->a2, "crypto:BTC-USD", "buy", "10");
    JsonObject *t = json_object_get_object_member (o, "trade"), *p = json_object_get_object_member (o, "position");
    gint64 notional = mul (jd (t, "price"), dec ("10"), R_HALF_EVEN);
    g_autofree char *body = order_body (b->a2, "crypto:BTC-USD", "buy", "\"120\"", NULL);
    g_autoptr(Reply) r = NULL;
    b->a2_trades++;
    assert_dec (p, "margin", div_round ((__int128) notional, 10, R_CEIL));
    assert_dec (t, "fee", fee_of (notional, 10));
    r = req (e, "POST", "/orders", e->alice, body);
    expect_error (r, 422, "INSUFFICIENT_BALANCE");
  }
  /* prediction fills at or above 1, and a market that resolved */
  {
    g_autofree char *body = order_body (b->a1, POLY_EDGE, "buy", "\"1\"", NULL);
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
    expect_error_msg (r, 409, "MARKET_CLOSED", "outside (0, 1)");
  }
  {
    const char *none[] = { NULL };
    g_autofree char *body = order_body (b->a1, KALSHI_RESOLVED, "buy", "\"1\"", NULL);
    g_autoptr(Reply) r = NULL;
    g_autoptr(GHashTable) m = NULL;
    wait_markets (e, none, KALSHI_RESOLVED);
    m = markets (e, e->alice);
    g_assert_false (json_object_get_boolean_member (g_hash_table_lookup (m, KALSHI_RESOLVED), "tradable"));
    assert_dec (g_hash_table_lookup (m, KALSHI_RESOLVED), "settlement", 0);
    r = req (e, "POST", "/orders", e->alice, body);
    expect_error_msg (r, 409, "MARKET_CLOSED", "resolved");
  }
  /* no quote, a quote from 2020, one older than its market's max_quote_age */
  {
    g_autoptr(GHashTable) m = markets (e, e->alice);
    static const char *const stale[][2] = { { "crypto:DOGE-USD", "no quote" },
                                            { "crypto:ADA-USD", "older than max_quote_age" },
                                            { "crypto:LTC-USD", "older than max_quote_age 1000 ms" } };
    g_assert_null (g_hash_table_lookup (m, "crypto:DOGE-USD"));
    g_assert_false (json_object_get_boolean_member (g_hash_table_lookup (m, "crypto:ADA-USD"), "tradable"));
    g_assert_false (json_object_get_boolean_member (g_hash_table_lookup (m, "crypto:LTC-USD"), "tradable"));
    /* the same age without the override is fresh enough */
    g_assert_true (json_object_get_boolean_member (g_hash_table_lookup (m, "crypto:LTC2-USD"), "tradable"));
    for (guint i = 0; i < G_N_ELEMENTS (stale); i++)
      {
        g_autofree char *body = order_body (b->a1, stale[i][0], "buy", "\"1\"", NULL);
        g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
        expect_error_msg (r, 503, "MARKET_DATA_UNAVAILABLE", stale[i][1]);
      }
  }
  /* a program whose risk instance is not running: fail closed */
  {
    g_autofree char *body = order_body (b->g1, FIX, "buy", "\"1\"", NULL);
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
    g_autoptr(JsonObject) g = NULL;
    expect_error_msg (r, 503, "RISK_UNAVAILABLE", "risk:missing");
    g = get_assessment (e, e->alice, b->g1);
    assert_dec (g, "balance", dec ("100000"));
    g_assert_cmpuint (trade_count (e, e->alice, b->g1), ==, 0);
  }
  /* none of the above placed anything */
  g_assert_cmpuint (trade_count (e, e->alice, b->a1), ==, before);

  /* the other routes' validation */
  {
    g_autofree char *p1 = g_strdup_printf ("/positions?assessmentId=%s&status=pending", b->a1);
    g_autofree char *t1 = g_strdup_printf ("/trades?assessmentId=%s&limit=0", b->a1);
    g_autofree char *t2 = g_strdup_printf ("/trades?assessmentId=%s&limit=501", b->a1);
    g_autofree char *t3 = g_strdup_printf ("/trades?assessmentId=%s&limit=ten", b->a1);
    g_autofree char *t4 = g_strdup_printf ("/trades?assessmentId=%s&cursor=bm90LWEtY3Vyc29y", b->a1);
    g_autofree char *t5 = g_strdup_printf ("/trades?assessmentId=%s&cursor=%%21%%21", b->a1);
    const char *const paths[] = { "/positions", p1, "/trades", t1, t2, t3, t4, t5 };
    for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
      {
        g_autoptr(Reply) r = req (e, "GET", paths[i], e->alice, NULL);
        g_test_message ("GET %s", paths[i]);
        expect_error (r, 400, "VALIDATION_ERROR");
      }
  }
  {
    g_autoptr(JsonObject) o = place (e, e->alice, b->a1, FIX, "buy", "10");
    const char *pid = js (json_object_get_object_member (o, "position"), "id");
    g_autofree char *path = g_strdup_printf ("/positions/%s/close", pid);
    static const char *const bodies[][2] = { { "{\"quantity\":\"0\"}", "above zero" },
                                             { "{\"quantity\":\"-1\"}", "above zero" },
                                             { "{\"quantity\":\"10.00000001\"}", "more than the open" },
                                             { "{\"quantity\":\"1.000000001\"}", "quantity" },
                                             { "{\"qty\":\"1\"}", "unknown field \"qty\"" },
                                             { "{\"quantity\":\"1\"", "not valid JSON" } };
    b->a1_trades++;
    for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
      {
        g_autoptr(Reply) r = req (e, "POST", path, e->alice, bodies[i][0]);
        expect_error_msg (r, 400, "VALIDATION_ERROR", bodies[i][1]);
      }
    /* untouched */
    {
      g_autoptr(JsonArray) open = positions (e, e->alice, b->a1, "open");
      assert_dec (find_by_id (open, pid), "quantity", dec ("10"));
    }
  }

  /* a known path with another method: 405 with Allow */
  {
    g_autofree char *one = g_strdup_printf ("/assessments/%s", b->a1);
    static const char *const cases[][3] = { { "DELETE", "/orders", "POST" }, { "GET", "/orders", "POST" },
                                            { "PUT", "/assessments", "GET, POST" }, { "POST", NULL, "GET" },
                                            { "POST", "/positions", "GET" }, { "GET", "/positions/x/close", "POST" },
                                            { "POST", "/trades", "GET" }, { "DELETE", "/markets", "GET" } };
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autoptr(Reply) r = req (e, cases[i][0], cases[i][1] != NULL ? cases[i][1] : one, e->alice, NULL);
        expect_error (r, 405, "METHOD_NOT_ALLOWED");
        g_assert_cmpstr (hdr (r, "Allow"), ==, cases[i][2]);
      }
  }
  /* unknown routes under the API's paths */
  {
    static const char *const paths[] = { "/assessments/x/y", "/positions/x", "/positions/x/open", "/orders/x" };
    for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
      {
        g_autoptr(Reply) r = req (e, "GET", paths[i], e->alice, NULL);
        expect_error (r, 404, "NOT_FOUND");
      }
  }
}

/* user A cannot see or trade user B's assessment; the admin sees all */
static void
check_ownership (Env *e, Book *b)
{
  g_autoptr(JsonObject) bo = place (e, e->bob, b->b1, FIX, "buy", "5");
  const char *bob_pos = js (json_object_get_object_member (bo, "position"), "id");
  g_autofree char *a_path = g_strdup_printf ("/assessments/%s", b->b1);
  g_autofree char *p_path = g_strdup_printf ("/positions?assessmentId=%s&status=all", b->b1);
  g_autofree char *t_path = g_strdup_printf ("/trades?assessmentId=%s", b->b1);
  g_autofree char *c_path = g_strdup_printf ("/positions/%s/close", bob_pos);
  g_autofree char *order = order_body (b->b1, FIX, "buy", "\"1\"", NULL);
  g_autoptr(Reply) missing = req (e, "GET", "/assessments/00000000-0000-4000-8000-000000000000", e->alice, NULL);
  g_autoptr(JsonObject) before = get_assessment (e, e->bob, b->b1);

  b->b1_trades++;
  expect_error (missing, 404, "NOT_FOUND");
  {
    const struct {
      const char *method, *path, *body;
    } cases[] = { { "GET", a_path, NULL }, { "GET", p_path, NULL }, { "GET", t_path, NULL },
                  { "POST", c_path, NULL }, { "POST", c_path, "{\"quantity\":\"1\"}" }, { "POST", "/orders", order } };
    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autoptr(Reply) r = req (e, cases[i].method, cases[i].path, e->alice, cases[i].body);
        g_test_message ("alice: %s %s", cases[i].method, cases[i].path);
        expect_error (r, 404, "NOT_FOUND");
        /* worded like an id that does not exist: nothing tells it apart */
        if (g_str_equal (cases[i].path, a_path))
          {
            const char *m1 = js (json_object_get_object_member (obj (r), "error"), "message");
            const char *m2 = js (json_object_get_object_member (obj (missing), "error"), "message");
            g_assert_true (g_str_has_prefix (m1, "no assessment "));
            g_assert_true (g_str_has_prefix (m2, "no assessment "));
          }
      }
  }
  /* the admin sees it all, but places and closes nothing for bob */
  {
    g_autoptr(JsonObject) a = get_assessment (e, e->admin, b->b1);
    g_autoptr(JsonArray) p = positions (e, e->admin, b->b1, "open");
    g_autoptr(Reply) t = req (e, "GET", t_path, e->admin, NULL);
    g_autoptr(Reply) o = req (e, "POST", "/orders", e->admin, order);
    g_autoptr(Reply) c = req (e, "POST", c_path, e->admin, NULL);
    g_assert_cmpstr (js (a, "userId"), ==, "bob");
    g_assert_nonnull (find_by_id (p, bob_pos));
    expect_status (t, 200);
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj (t), "trades")), ==, 1);
    expect_error (o, 404, "NOT_FOUND");
    expect_error (c, 404, "NOT_FOUND");
  }
  /* and bob's account did not move */
  {
    g_autoptr(JsonObject) after = get_assessment (e, e->bob, b->b1);
    g_autoptr(JsonArray) p = positions (e, e->bob, b->b1, "open");
    assert_dec (after, "balance", jd (before, "balance"));
    g_assert_cmpuint (json_array_get_length (p), ==, 1);
    assert_dec (find_by_id (p, bob_pos), "quantity", dec ("5"));
    g_assert_cmpuint (trade_count (e, e->bob, b->b1), ==, b->b1_trades);
  }
  /* bob closes his own */
  {
    g_autoptr(JsonObject) c = close_position (e, e->bob, bob_pos, "2");
    b->b1_trades++;
  }
}

static void
check_idempotency (Env *e, Book *b)
{
  g_autofree char *body1 = order_body (b->a1, FIX, "buy", "\"1\"", NULL);
  g_autofree char *body2 = order_body (b->a1, FIX, "buy", "\"2\"", NULL);
  g_autofree char *bob_body = order_body (b->b1, FIX, "buy", "\"1\"", NULL);
  const char *k1[] = { "Idempotency-Key", "idem-1", NULL };
  guint n = trade_count (e, e->alice, b->a1);
  g_autoptr(Reply) first = req_full (e, "POST", "/orders", e->alice, body1, k1);
  g_autoptr(Reply) again = req_full (e, "POST", "/orders", e->alice, body1, k1);
  g_autoptr(Reply) other = req_full (e, "POST", "/orders", e->alice, body2, k1);

  expect_status (first, 201);
  g_assert_null (hdr (first, "Idempotent-Replayed"));
  expect_status (again, 201);
  g_assert_cmpstr (hdr (again, "Idempotent-Replayed"), ==, "true");
  g_assert_cmpstr (again->body, ==, first->body);
  expect_error_msg (other, 422, "IDEMPOTENCY_KEY_REUSED", "idem-1");
  b->a1_trades++;
  g_assert_cmpuint (trade_count (e, e->alice, b->a1), ==, n + 1);

  /* keys are per user */
  {
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->bob, bob_body, k1);
    expect_status (r, 201);
    g_assert_null (hdr (r, "Idempotent-Replayed"));
    g_assert_cmpstr (r->body, !=, first->body);
    b->b1_trades++;
  }

  /* two at once: one order, the same answer twice */
  {
    const char *k[] = { "Idempotency-Key", "idem-concurrent", NULL };
    Call *c1 = call_start_full (e, "POST", "/orders", e->alice, body1, k);
    Call *c2 = call_start_full (e, "POST", "/orders", e->alice, body1, k);
    g_autoptr(Reply) r1 = call_finish (c1);
    g_autoptr(Reply) r2 = call_finish (c2);
    g_assert_no_error (r1->error);
    g_assert_no_error (r2->error);
    expect_status (r1, 201);
    expect_status (r2, 201);
    g_assert_cmpstr (r1->body, ==, r2->body);
    g_assert_cmpint ((hdr (r1, "Idempotent-Replayed") != NULL) + (hdr (r2, "Idempotent-Replayed") != NULL), ==, 1);
    b->a1_trades++;
    g_assert_cmpuint (trade_count (e, e->alice, b->a1), ==, n + 2);
  }
  /* a burst of the same: still one */
  {
    const char *k[] = { "Idempotency-Key", "idem-burst", NULL };
    Call *calls[8];
    g_autofree char *answer = NULL;
    guint replayed = 0;
    for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
      calls[i] = call_start_full (e, "POST", "/orders", e->alice, body1, k);
    for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
      {
        g_autoptr(Reply) r = call_finish (calls[i]);
        g_assert_no_error (r->error);
        expect_status (r, 201);
        if (answer == NULL)
          answer = g_strdup (r->body);
        g_assert_cmpstr (r->body, ==, answer);
        replayed += hdr (r, "Idempotent-Replayed") != NULL;
      }
    g_assert_cmpuint (replayed, ==, G_N_ELEMENTS (calls) - 1);
    b->a1_trades++;
    g_assert_cmpuint (trade_count (e, e->alice, b->a1), ==, n + 3);
  }
  /* a refused order is not remembered: a retry tries again */
  {
    const char *k[] = { "Idempotency-Key", "idem-refused", NULL };
    g_autofree char *huge = order_body (b->a1, "crypto:BTC-USD", "buy", "\"500\"", NULL);
    g_autoptr(Reply) r1 = req_full (e, "POST", "/orders", e->alice, huge, k);
    g_autoptr(Reply) r2 = req_full (e, "POST", "/orders", e->alice, huge, k);
    g_autoptr(Reply) r3 = req_full (e, "POST", "/orders", e->alice, body2, k);
    expect_error (r1, 422, "INSUFFICIENT_BALANCE");
    expect_error (r2, 422, "INSUFFICIENT_BALANCE");
    g_assert_null (hdr (r2, "Idempotent-Replayed"));
    g_assert_cmpstr (r1->body, !=, r2->body); /* a fresh answer, its own correlation id */
    expect_status (r3, 201);
    g_assert_null (hdr (r3, "Idempotent-Replayed"));
    b->a1_trades++;
  }
  g_assert_cmpuint (trade_count (e, e->alice, b->a1), ==, n + 4);
}

/* the events of an order reach the sink with the request's correlation id */
typedef struct {
  const char *path;
  const char *cid;
  const char *trade_id;
} EventWanted;

static gboolean
event_written (gpointer data)
{
  EventWanted *w = data;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean trade = FALSE, order = FALSE, opened = FALSE;

  if (!g_file_get_contents (w->path, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *ev;
      const char *type;
      if (strstr (lines[i], w->cid) == NULL || !json_parser_load_from_data (p, lines[i], -1, NULL))
        continue;
      ev = json_node_get_object (json_parser_get_root (p));
      if (g_strcmp0 (json_object_get_string_member_with_default (ev, "correlationId", ""), w->cid) != 0)
        continue;
      type = json_object_get_string_member (ev, "type");
      if (g_str_equal (type, "trade.executed")
          && g_strcmp0 (json_object_get_string_member (json_object_get_object_member (ev, "data"), "id"), w->trade_id)
                 == 0)
        trade = TRUE;
      order |= g_str_equal (type, "order.filled");
      opened |= g_str_equal (type, "position.opened");
    }
  return trade && order && opened;
}

static void
check_events (Env *e, Book *b)
{
  g_autofree char *body = order_body (b->a1, FIX, "buy", "\"1\"", NULL);
  g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
  EventWanted w = { e->events, r->sent_cid, NULL };

  expect_status (r, 201);
  b->a1_trades++;
  w.trade_id = js (json_object_get_object_member (obj (r), "trade"), "id");
  if (!arb_test_wait_for (event_written, &w, 10000))
    g_error ("the events of order %s (correlation id %s) did not reach %s", w.trade_id, w.cid, e->events);
}

static void
check_ledgers (Env *e, Book *b)
{
  g_assert_cmpuint (check_ledger (e, e->alice, b->a1, 3), ==, b->a1_trades);
  g_assert_cmpuint (check_ledger (e, e->admin, b->a2, 2), ==, b->a2_trades);
  g_assert_cmpuint (check_ledger (e, e->bob, b->b1, 1), ==, b->b1_trades);
  g_assert_cmpuint (check_ledger (e, e->alice, b->g1, 1), ==, 0);
}

static int
sort_strings (const char *const *a, const char *const *b)
{
  return strcmp (*a, *b);
}

static char *
snapshot (Env *e, const char *token, const char *aid)
{
  g_autoptr(JsonObject) a = get_assessment (e, token, aid);
  g_autoptr(JsonArray) all = positions (e, token, aid, "all");
  g_autoptr(GPtrArray) trades = all_trades (e, token, aid, 500);
  g_autoptr(GString) s = g_string_new (NULL);

  g_string_append_printf (s, "status=%s balance=%s margin=%s open=%" G_GINT64_FORMAT "\n", js (a, "status"),
                          js (a, "balance"), js (a, "usedMargin"), json_object_get_int_member (a, "openPositions"));
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);

  /* the API promises no order for open positions (a compensated close puts
   * its position back at the end of the list): sorted by id here */
  for (guint i = 0; i < json_array_get_length (all); i++)
    {
      JsonObject *p = json_array_get_object_element (all, i);
      g_ptr_array_add (lines, g_strdup_printf ("position %s %s %s qty=%s margin=%s pnl=%s fees=%s sl=%s tp=%s\n",
                                               js (p, "id"), js (p, "status"), js (p, "market"), js (p, "quantity"),
                                               js (p, "margin"), js (p, "realizedPnl"), js (p, "fees"),
                                               is_null (p, "stopLoss") ? "-" : js (p, "stopLoss"),
                                               is_null (p, "takeProfit") ? "-" : js (p, "takeProfit")));
    }
  g_ptr_array_sort (lines, (GCompareFunc) sort_strings);
  for (guint i = 0; i < lines->len; i++)
    g_string_append (s, g_ptr_array_index (lines, i));
  for (guint i = 0; i < trades->len; i++)
    {
      JsonObject *t = g_ptr_array_index (trades, i);
      g_string_append_printf (s, "trade %s %s %s %s cash=%s\n", js (t, "id"), js (t, "reason"), js (t, "quantity"),
                              js (t, "price"), js (t, "cashEffect"));
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* the value of one sample line of /metrics ("NAME VALUE"), -1 when absent */
static gdouble
sample (const char *text, const char *name)
{
  g_autofree char *needle = g_strconcat ("\n", name, " ", NULL);
  const char *at = strstr (text, needle);
  return at != NULL ? g_ascii_strtod (at + strlen (needle), NULL) : -1;
}

/* the store's writer reports its groups: every committed order went
 * through one, and waited for it */
static void
check_store_metrics (Env *e)
{
  g_autoptr(Reply) r = NULL;
  gdouble groups, txns;

  /* the background writer may be in the middle of a group (an expiry, a
   * mark): its wait is counted when it starts, its txns when it ends */
  for (guint tries = 0;; tries++)
    {
      g_clear_pointer (&r, reply_free);
      r = req (e, "GET", "/metrics", NULL, NULL);
      g_assert_cmpuint (r->status, ==, 200);
      if (sample (r->body, "arb_store_queue_wait_seconds_count") == sample (r->body, "arb_store_txns_total")
          || tries == 20)
        break;
      g_usleep (50 * 1000);
    }
  groups = sample (r->body, "arb_store_groups_total");
  txns = sample (r->body, "arb_store_txns_total");
  g_test_message ("store: %.0f transactions in %.0f groups", txns, groups);
  g_assert_cmpfloat (groups, >, 0);
  g_assert_cmpfloat (txns, >=, groups);
  g_assert_cmpfloat (sample (r->body, "arb_store_group_duration_seconds_count"), ==, groups);
  g_assert_cmpfloat (sample (r->body, "arb_store_queue_wait_seconds_count"), ==, txns);
  g_assert_cmpfloat (sample (r->body, "arb_store_group_duration_seconds_sum"), >, 0);
}

static void sqlite_exec (Env *e, const char *sql);
static void pg_exec (Env *e, const char *sql);

static void
test_contract (gconstpointer data)
{
  g_autoptr(Env) e = env_new (GPOINTER_TO_INT (data));
  Book b = { 0 };
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  start_with_tokens (e);
  check_jwt (e);
  check_assessments (e, &b);
  check_numbers (e, &b);
  check_order_errors (e, &b);
  check_ownership (e, &b);
  check_idempotency (e, &b);
  check_events (e, &b);
  check_ledgers (e, &b);
  check_store_metrics (e);

  /* a key past its 24 h (aged in the store by 25 h): deleted at the start,
   * and then free for a new order */
  {
    g_autofree char *body = order_body (b.a1, FIX, "buy", "\"1\"", NULL);
    const char *k[] = { "Idempotency-Key", "idem-aged", NULL };
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, body, k);
    expect_status (r, 201);
    b.a1_trades++;
    if (e->backend == BACKEND_SQLITE)
      sqlite_exec (e, "UPDATE idempotency_keys SET created_at = created_at - 90000000000 WHERE key = 'idem-aged'");
    else
      pg_exec (e, "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' "
                  "WHERE key = 'idem-aged'");
  }

  /* the store is the truth: the same state after a restart, and an
   * idempotency key still answers with the first answer */
  before = snapshot (e, e->alice, b.a1);
  restart (e);
  wait_markets (e, core_markets, NULL);
  after = snapshot (e, e->alice, b.a1);
  g_assert_cmpstr (after, ==, before);
  {
    g_autofree char *body1 = order_body (b.a1, FIX, "buy", "\"1\"", NULL);
    const char *k1[] = { "Idempotency-Key", "idem-1", NULL };
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, body1, k1);
    expect_status (r, 201);
    g_assert_cmpstr (hdr (r, "Idempotent-Replayed"), ==, "true");
  }
  {
    g_autofree char *body = order_body (b.a1, FIX, "buy", "\"1\"", NULL);
    const char *k[] = { "Idempotency-Key", "idem-aged", NULL };
    guint n = trade_count (e, e->alice, b.a1);
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, body, k);
    g_autoptr(Reply) again = NULL;
    expect_status (r, 201);
    g_assert_null (hdr (r, "Idempotent-Replayed"));
    b.a1_trades++;
    g_assert_cmpuint (trade_count (e, e->alice, b.a1), ==, n + 1);
    again = req_full (e, "POST", "/orders", e->alice, body, k);
    expect_status (again, 201);
    g_assert_cmpstr (hdr (again, "Idempotent-Replayed"), ==, "true");
    g_assert_cmpstr (again->body, ==, r->body);
  }
  check_ledgers (e, &b);
  check_openapi (e);
  daemon_stop (e->d);
  book_clear (&b);
}

/* ------------------------------------------------------------------------ */
/* Closed positions in pages                                                */

/* GET /positions …: the ids in the answer, and its nextCursor (or NULL) */
static GPtrArray *
positions_page (Env *e, const char *query, char **next)
{
  g_autofree char *path = g_strconcat ("/positions?", query, NULL);
  g_autoptr(Reply) r = req (e, "GET", path, e->alice, NULL);
  JsonArray *list;
  JsonNode *n;
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);

  expect_status (r, 200);
  g_assert_cmpuint (json_object_get_size (obj (r)), ==, 2);
  list = json_object_get_array_member (obj (r), "positions");
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *p = json_array_get_object_element (list, i);
      g_ptr_array_add (ids, g_strdup_printf ("%s:%s", js (p, "status"), js (p, "id")));
    }
  n = json_object_get_member (obj (r), "nextCursor");
  g_assert_nonnull (n);
  *next = JSON_NODE_HOLDS_NULL (n) ? NULL : g_strdup (json_node_get_string (n));
  return ids;
}

static void
test_closed_pages (gconstpointer data)
{
  g_autoptr(Env) e = env_new (GPOINTER_TO_INT (data));
  g_autofree char *aid = NULL;
  g_autoptr(GPtrArray) opened = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) want = g_ptr_array_new_with_free_func (g_free); /* newest first */
  g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *cursor = NULL;
  g_autofree char *trades_cursor = NULL;
  guint pages = 0;

  start_with_tokens (e);
  aid = create_assessment (e, "alice", "test");
  /* seven tickets; five closed, the last closed the newest */
  for (guint i = 0; i < 7; i++)
    {
      g_autoptr(JsonObject) o = place (e, e->alice, aid, FIX, "buy", "1");
      g_ptr_array_add (opened, g_strdup (js (json_object_get_object_member (o, "position"), "id")));
    }
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *path = g_strdup_printf ("/positions/%s/close", (char *) opened->pdata[i]);
      g_autoptr(Reply) r = req (e, "POST", path, e->alice, NULL);
      expect_status (r, 200);
      g_ptr_array_insert (want, 0, g_strdup_printf ("closed:%s", (char *) opened->pdata[i]));
    }

  /* pages of two: 2, 2, 1, in order, the last without a cursor */
  do
    {
      g_autofree char *q = cursor == NULL
                               ? g_strdup_printf ("assessmentId=%s&status=closed&limit=2", aid)
                               : g_strdup_printf ("assessmentId=%s&status=closed&limit=2&cursor=%s", aid, cursor);
      g_autofree char *next = NULL;
      g_autoptr(GPtrArray) page = positions_page (e, q, &next);
      g_assert_cmpuint (page->len, ==, pages < 2 ? 2 : 1);
      for (guint i = 0; i < page->len; i++)
        g_ptr_array_add (got, g_strdup (page->pdata[i]));
      g_free (cursor);
      cursor = g_steal_pointer (&next);
      pages++;
      g_assert_cmpuint (pages, <=, 3);
    }
  while (cursor != NULL);
  g_assert_cmpuint (pages, ==, 3);
  g_assert_cmpuint (got->len, ==, want->len);
  for (guint i = 0; i < want->len; i++)
    g_assert_cmpstr (got->pdata[i], ==, want->pdata[i]);

  /* status=all: the open ones on the first page only, then closed ones */
  {
    g_autofree char *q = g_strdup_printf ("assessmentId=%s&status=all&limit=2", aid);
    g_autofree char *next = NULL;
    g_autofree char *next2 = NULL;
    g_autoptr(GPtrArray) first = positions_page (e, q, &next);
    g_autoptr(GPtrArray) second = NULL;
    g_autofree char *q2 = NULL;
    g_assert_cmpuint (first->len, ==, 4);
    g_assert_true (g_str_has_prefix (first->pdata[0], "open:"));
    g_assert_true (g_str_has_prefix (first->pdata[1], "open:"));
    g_assert_cmpstr (first->pdata[2], ==, want->pdata[0]);
    g_assert_cmpstr (first->pdata[3], ==, want->pdata[1]);
    g_assert_nonnull (next);
    q2 = g_strdup_printf ("assessmentId=%s&status=all&limit=2&cursor=%s", aid, next);
    second = positions_page (e, q2, &next2);
    g_assert_cmpuint (second->len, ==, 2);
    g_assert_cmpstr (second->pdata[0], ==, want->pdata[2]);
    g_assert_cmpstr (second->pdata[1], ==, want->pdata[3]);
  }
  /* no limit: every closed one (up to 500), no cursor */
  {
    g_autofree char *q = g_strdup_printf ("assessmentId=%s&status=closed", aid);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) all = positions_page (e, q, &next);
    g_assert_cmpuint (all->len, ==, 5);
    g_assert_null (next);
  }

  /* what is refused */
  {
    g_autofree char *tq = g_strdup_printf ("/trades?assessmentId=%s&limit=1", aid);
    g_autoptr(Reply) t = req (e, "GET", tq, e->alice, NULL);
    expect_status (t, 200);
    trades_cursor = g_strdup (js (obj (t), "nextCursor"));
  }
  {
    static const char *const bad[][2] = {
      { "status=open&limit=2", "status=closed" },
      { "limit=2", "status=closed" },
      { "status=closed&limit=0", "limit" },
      { "status=closed&limit=501", "limit" },
      { "status=closed&limit=two", "limit" },
      { "status=closed&cursor=!!!", "cursor" },
      { "status=closed&cursor=bm90LWEtY3Vyc29y", "cursor" },
      { "status=closed&cursor=@TRADES@", "cursor" },
      /* query parameters are checked like body fields */
      { "staus=closed", "unknown query parameter \"staus\" (did you mean \"status\"?" },
      { "status=closed&status=open", "query parameter \"status\" is given twice" },
    };
    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(GString) q = g_string_new (bad[i][0]);
        g_autofree char *path = NULL;
        g_autoptr(Reply) r = NULL;
        g_string_replace (q, "@TRADES@", trades_cursor, 0);
        path = g_strdup_printf ("/positions?assessmentId=%s&%s", aid, q->str);
        r = req (e, "GET", path, e->alice, NULL);
        g_test_message ("GET %s", path);
        expect_error_msg (r, 400, "VALIDATION_ERROR", bad[i][1]);
      }
  }
  /* a path that takes no parameters refuses them, and places nothing */
  {
    g_autofree char *body = order_body (aid, FIX, "buy", "\"1\"", NULL);
    g_autofree char *tq = g_strdup_printf ("/trades?assessmentId=%s&limit=500", aid);
    g_autoptr(Reply) m = req (e, "GET", "/markets?market=" FIX, e->alice, NULL);
    g_autoptr(Reply) o = req (e, "POST", "/orders?dryRun=1", e->alice, body);
    g_autoptr(Reply) t = NULL;
    expect_error_msg (m, 400, "VALIDATION_ERROR", "unknown query parameter \"market\" (this path takes none)");
    expect_error_msg (o, 400, "VALIDATION_ERROR", "unknown query parameter \"dryRun\"");
    t = req (e, "GET", tq, e->alice, NULL);
    expect_status (t, 200);
    /* seven opened, five closed: twelve trades, no thirteenth */
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj (t), "trades")), ==, 12);
  }
  /* another user's assessment stays hidden, cursor or not */
  {
    g_autofree char *path = g_strdup_printf ("/positions?assessmentId=%s&status=closed&limit=2", aid);
    g_autoptr(Reply) r = req (e, "GET", path, e->bob, NULL);
    expect_error (r, 404, "NOT_FOUND");
  }
  check_openapi (e);
  daemon_stop (e->d);
}

/* ------------------------------------------------------------------------ */
/* A held market without a quote after a restart                            */

/* "unquotedMarkets" of an assessment, joined with commas */
static char *
unquoted_markets (JsonObject *a)
{
  JsonArray *list = json_object_get_array_member (a, "unquotedMarkets");
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_nonnull (list);
  for (guint i = 0; i < json_array_get_length (list); i++)
    g_string_append_printf (out, "%s%s", i > 0 ? "," : "", json_array_get_string_element (list, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_unquoted_after_restart (void)
{
  g_autoptr(Env) e = env_new (BACKEND_SQLITE);
  g_autofree char *both = NULL;
  g_autofree char *one = NULL;
  g_autofree char *fix_pos = NULL;
  g_autofree char *fixed_path = NULL;
  g_autoptr(GString) fixed = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  static const char *const fix_only[] = { FIX, NULL };

  start_with_tokens (e);
  both = create_assessment (e, "alice", "test");
  one = create_assessment (e, "alice", "test");
  {
    g_autoptr(JsonObject) o = place (e, e->alice, both, FIX, "buy", "10");
    g_autoptr(JsonObject) y = place (e, e->alice, both, FIY, "buy", "2");
    g_autoptr(JsonObject) x = place (e, e->alice, one, FIX, "buy", "10");
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, both);
    g_autofree char *none = unquoted_markets (a);
    fix_pos = g_strdup (js (json_object_get_object_member (o, "position"), "id"));
    g_assert_cmpstr (none, ==, "");
  }

  /* after the restart the feed quotes FIX only: FIY, held by "both", has no
   * quote at all */
  daemon_stop (e->d);
  g_clear_pointer (&e->d, arb_test_daemon_free);
  for (guint at = 0; at <= 800; at += 200)
    g_string_append_printf (fixed, "{\"at_ms\":%u,\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"%s\",\"ask\":\"%s\"}\n",
                            at, FIX, FIX_BID, FIX_ASK);
  fixed_path = g_build_filename (e->dir, "fixed.jsonl", NULL);
  g_file_set_contents (fixed_path, fixed->str, -1, &error);
  g_assert_no_error (error);
  start (e);
  wait_markets (e, fix_only, NULL);

  /* the answer says which market counts at its entry price */
  {
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, both);
    g_autoptr(JsonObject) b = get_assessment (e, e->alice, one);
    g_autofree char *ma = unquoted_markets (a);
    g_autofree char *mb = unquoted_markets (b);
    g_assert_cmpstr (ma, ==, FIY);
    g_assert_cmpstr (mb, ==, "");
  }
  /* no order while its equity is not known: 503 with Retry-After, FIY named;
   * the account that holds only FIX trades */
  {
    g_autofree char *body = order_body (both, FIX, "buy", "\"1\"", NULL);
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, body);
    g_autoptr(JsonObject) x = place (e, e->alice, one, FIX, "buy", "1");
    expect_error_msg (r, 503, "MARKET_DATA_UNAVAILABLE", FIY);
  }
  /* a close needs only its own market's quote */
  {
    g_autofree char *path = g_strdup_printf ("/positions/%s/close", fix_pos);
    g_autoptr(Reply) r = req (e, "POST", path, e->alice, NULL);
    expect_status (r, 200);
  }
  check_openapi (e);
  daemon_stop (e->d);
}

/* ------------------------------------------------------------------------ */
/* RS256                                                                    */

static void
openssl_key_pair (const char *priv, const char *pub)
{
  const char *genrsa[] = { OPENSSL, "genrsa", "-out", priv, "2048", NULL };
  const char *pubout[] = { OPENSSL, "rsa", "-in", priv, "-pubout", "-out", pub, NULL };
  g_free (run_tool (genrsa, NULL, NULL));
  g_free (run_tool (pubout, NULL, NULL));
}

static void
test_rs256 (void)
{
  g_autoptr(Env) e = env_new (BACKEND_SQLITE);
  g_autofree char *priv = g_build_filename (e->dir, "rs.pem", NULL);
  g_autofree char *pub = g_build_filename (e->dir, "rs.pub.pem", NULL);
  g_autofree char *other_priv = g_build_filename (e->dir, "other.pem", NULL);
  g_autofree char *other_pub = g_build_filename (e->dir, "other.pub.pem", NULL);
  g_autofree char *conf = NULL;
  g_autofree char *requests = NULL;
  g_autoptr(JsonArray) answers = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *ok = g_strdup_printf ("\"sub\":\"rs-user\",\"iat\":%" G_GINT64_FORMAT ",\"exp\":%" G_GINT64_FORMAT,
                                         t, t + 600);
  static const char *const reasons[] = { NULL, "algorithm not allowed", "algorithm not allowed",
                                         "token signature invalid", "algorithm none not allowed",
                                         "token signature invalid" };

  openssl_key_pair (priv, pub);
  openssl_key_pair (other_priv, other_pub);
  conf = g_strdup_printf ("[runtime]\nlisten=127.0.0.1:0\nstate_dir=%s/state\nstore=%s\nshutdown_timeout=3s\n\n"
                          "[api]\njwt_alg=RS256\njwt_public_key_file=%s\n",
                          e->dir, e->store_uri, pub);
  g_file_set_contents (e->conf, conf, -1, &error);
  g_assert_no_error (error);

  /* tokens come from whoever holds the private key, not from arbiterd */
  {
    g_autofree char *arbiterd = arb_test_arbiterd_path ();
    const char *argv[] = { arbiterd, "--config", e->conf, "--mint-token", "x", NULL };
    g_autofree char *err = NULL;
    int status = 0;
    g_autofree char *out = run_tool (argv, &status, &err);
    g_assert_cmpint (status, ==, 1);
    g_assert_cmpstr (out, ==, "");
    g_assert_nonnull (strstr (err, "--mint-token signs HS256 tokens"));
  }

  start (e);
  requests = g_strdup_printf (
      "["
      "{\"op\":\"encode\",\"alg\":\"RS256\",\"key_file\":\"%1$s\",\"payload\":{%3$s}},"
      /* the classic confusion: HS256 keyed with the public key PEM, with and
       * without its trailing newline */
      "{\"op\":\"raw\",\"alg\":\"HS256\",\"key_file\":\"%2$s\",\"header\":{\"alg\":\"HS256\",\"typ\":\"JWT\"},\"payload\":{%3$s}},"
      "{\"op\":\"raw\",\"alg\":\"HS256\",\"key_file\":\"%2$s\",\"strip\":false,\"header\":{\"alg\":\"HS256\",\"typ\":\"JWT\"},\"payload\":{%3$s}},"
      "{\"op\":\"encode\",\"alg\":\"RS256\",\"key_file\":\"%4$s\",\"payload\":{%3$s}},"
      "{\"op\":\"raw\",\"alg\":\"none\",\"header\":{\"alg\":\"none\"},\"payload\":{%3$s}},"
      /* an HMAC under an RS256 header */
      "{\"op\":\"raw\",\"alg\":\"HS256\",\"key_file\":\"%2$s\",\"header\":{\"alg\":\"RS256\",\"typ\":\"JWT\"},\"payload\":{%3$s}}"
      "]",
      priv, pub, ok, other_priv);
  answers = python_jwt (requests);
  for (guint i = 0; i < G_N_ELEMENTS (reasons); i++)
    {
      g_autofree char *token = answer_token (answers, i);
      g_autoptr(Reply) r = req (e, "GET", "/assessments", token, NULL);
      if (reasons[i] == NULL)
        {
          expect_status (r, 200);
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj (r), "assessments")), ==, 0);
        }
      else
        {
          g_autofree char *want = g_strconcat ("invalid token: ", reasons[i], NULL);
          expect_error (r, 401, "UNAUTHENTICATED");
          g_assert_cmpstr (js (json_object_get_object_member (obj (r), "error"), "message"), ==, want);
        }
    }
  /* an HS256 token from the generated secret means nothing here either */
  {
    g_autoptr(Reply) r = req (e, "GET", "/markets", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", NULL);
    expect_error (r, 401, "UNAUTHENTICATED");
  }
  daemon_stop (e->d);
}

/* ------------------------------------------------------------------------ */
/* Store failures in the middle of the saga                                 */

static void
sqlite_exec (Env *e, const char *sql)
{
  sqlite3 *db = NULL;
  char *err = NULL;
  int rc = sqlite3_open_v2 (e->db_path, &db, SQLITE_OPEN_READWRITE, NULL);
  g_assert_cmpint (rc, ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 10000);
  rc = sqlite3_exec (db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK)
    g_error ("sqlite3: %s: %s", sql, err);
  sqlite3_close (db);
}

static void
pg_exec (Env *e, const char *sql)
{
  PGconn *c = PQconnectdb (e->pg_conninfo);
  PGresult *res;
  if (PQstatus (c) != CONNECTION_OK)
    g_error ("libpq: %s", PQerrorMessage (c));
  res = PQexec (c, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK && PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("libpq: %s: %s", sql, PQresultErrorMessage (res));
  PQclear (res);
  PQfinish (c);
}

/* makes inserts of trades matching @condition (on NEW) fail */
static void
inject (Env *e, const char *name, const char *condition)
{
  g_autofree char *sql = NULL;
  if (e->backend == BACKEND_SQLITE)
    sql = g_strdup_printf ("CREATE TRIGGER %s BEFORE INSERT ON trades WHEN %s BEGIN SELECT RAISE(ABORT, 'injected "
                           "failure'); END;",
                           name, condition);
  else
    sql = g_strdup_printf ("CREATE FUNCTION %1$s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                           "'injected failure'; END $$;"
                           "CREATE TRIGGER %1$s BEFORE INSERT ON trades FOR EACH ROW WHEN (%2$s) "
                           "EXECUTE FUNCTION %1$s();",
                           name, condition);
  if (e->backend == BACKEND_SQLITE)
    sqlite_exec (e, sql);
  else
    pg_exec (e, sql);
}

static void
uninject (Env *e, const char *name)
{
  g_autofree char *sql = e->backend == BACKEND_SQLITE
                             ? g_strdup_printf ("DROP TRIGGER %s;", name)
                             : g_strdup_printf ("DROP TRIGGER %1$s ON trades; DROP FUNCTION %1$s();", name);
  if (e->backend == BACKEND_SQLITE)
    sqlite_exec (e, sql);
  else
    pg_exec (e, sql);
}

static void
test_store_failure (gconstpointer data)
{
  g_autoptr(Env) e = env_new (GPOINTER_TO_INT (data));
  g_autofree char *aid = NULL;
  g_autofree char *s0 = NULL;
  g_autofree char *pid = NULL;
  g_autofree char *eth = NULL;
  g_autofree char *eth_sl = NULL;
  const char *key[] = { "Idempotency-Key", "after-outage", NULL };

  start_with_tokens (e);
  aid = create_assessment (e, "alice", "test");
  {
    g_autoptr(JsonObject) o = place (e, e->alice, aid, "crypto:BTC-USD", "buy", "0.2");
    pid = g_strdup (js (json_object_get_object_member (o, "position"), "id"));
  }
  eth = order_body (aid, "crypto:ETH-USD", "buy", "\"1\"", NULL);
  s0 = snapshot (e, e->alice, aid);

  /* the commit of an ETH trade fails: 503, and nothing is left behind */
  inject (e, "fail_eth", "NEW.market = 'crypto:ETH-USD'");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, eth, i == 0 ? NULL : key);
      g_autofree char *s = NULL;
      expect_error_msg (r, 503, "STORE_UNAVAILABLE", "nothing was changed");
      s = snapshot (e, e->alice, aid);
      g_assert_cmpstr (s, ==, s0);
    }
  /* ... a bracketed one too (the bracket is validated, then the commit fails) */
  eth_sl = order_body (aid, "crypto:ETH-USD", "buy", "\"1\"", ",\"stopLoss\":\"1\"");
  {
    g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, eth_sl);
    g_autofree char *s = NULL;
    expect_error (r, 503, "STORE_UNAVAILABLE");
    s = snapshot (e, e->alice, aid);
    g_assert_cmpstr (s, ==, s0);
  }
  /* other markets still trade, from the state as it was */
  {
    g_autoptr(JsonObject) o = place (e, e->alice, aid, FIX, "buy", "10");
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, aid);
    g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, 2);
    check_ledger (e, e->alice, aid, 2);
  }
  g_free (s0);
  s0 = snapshot (e, e->alice, aid);

  /* closes fail too, partial and whole: the position is as it was */
  inject (e, "fail_close", "NEW.reason = 'close'");
  {
    g_autofree char *path = g_strdup_printf ("/positions/%s/close", pid);
    g_autoptr(Reply) part = req (e, "POST", path, e->alice, "{\"quantity\":\"0.05\"}");
    g_autoptr(Reply) whole = NULL;
    g_autofree char *s1 = NULL;
    g_autofree char *s2 = NULL;
    expect_error (part, 503, "STORE_UNAVAILABLE");
    s1 = snapshot (e, e->alice, aid);
    g_assert_cmpstr (s1, ==, s0);
    whole = req (e, "POST", path, e->alice, NULL);
    expect_error (whole, 503, "STORE_UNAVAILABLE");
    s2 = snapshot (e, e->alice, aid);
    g_assert_cmpstr (s2, ==, s0);
  }
  uninject (e, "fail_close");
  /* and the position is still closable, in two steps */
  {
    g_autoptr(JsonObject) c1 = close_position (e, e->alice, pid, "0.05");
    g_autoptr(JsonObject) c2 = close_position (e, e->alice, pid, NULL);
    assert_dec (json_object_get_object_member (c1, "position"), "quantity", dec ("0.15"));
    g_assert_cmpstr (js (json_object_get_object_member (c2, "position"), "status"), ==, "closed");
  }

  /* the trigger gone, ETH trades; the key of the failed attempt was not kept */
  uninject (e, "fail_eth");
  {
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, eth, key);
    expect_status (r, 201);
    g_assert_null (hdr (r, "Idempotent-Replayed"));
  }
  g_assert_cmpuint (check_ledger (e, e->alice, aid, 2), ==, 5);

  /* PostgreSQL away: 503 while it is, the ledger intact after */
  if (e->backend == BACKEND_POSTGRESQL)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *s1 = snapshot (e, e->alice, aid);
      g_autofree char *fix = order_body (aid, FIX, "buy", "\"1\"", NULL);
      arb_test_pg_stop (pg_server, &error);
      g_assert_no_error (error);
      {
        g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, fix);
        g_autoptr(JsonObject) a = get_assessment (e, e->alice, aid);
        g_autofree char *tp = g_strdup_printf ("/trades?assessmentId=%s", aid);
        g_autoptr(Reply) t = req (e, "GET", tp, e->alice, NULL);
        expect_error (r, 503, "STORE_UNAVAILABLE");
        /* memory serves on; the history needs the store */
        g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, 2);
        expect_error (t, 503, "STORE_UNAVAILABLE");
      }
      arb_test_pg_start (pg_server, &error);
      g_assert_no_error (error);
      {
        g_autofree char *s2 = snapshot (e, e->alice, aid);
        g_assert_cmpstr (s2, ==, s1);
      }
      {
        g_autoptr(JsonObject) o = place (e, e->alice, aid, FIX, "buy", "1");
      }
      g_assert_cmpuint (check_ledger (e, e->alice, aid, 2), ==, 6);
    }

  /* what a restart loads is what the API showed */
  {
    g_autofree char *s1 = snapshot (e, e->alice, aid);
    g_autofree char *s2 = NULL;
    restart (e);
    wait_markets (e, core_markets, NULL);
    s2 = snapshot (e, e->alice, aid);
    g_assert_cmpstr (s2, ==, s1);
  }

  /* an assessment that failed (set in the store: no rule in the tree fails
   * one yet) refuses orders and closes with 409 */
  {
    g_autofree char *sql = g_strdup_printf ("UPDATE assessments SET status = 'failed', status_reason = 'daily "
                                            "drawdown breached' WHERE id = '%s';",
                                            aid);
    g_autoptr(JsonObject) a = NULL;
    g_autoptr(JsonArray) open = NULL;
    g_autofree char *fix = order_body (aid, FIX, "buy", "\"1\"", NULL);
    g_autofree char *path = NULL;
    daemon_stop (e->d);
    g_clear_pointer (&e->d, arb_test_daemon_free);
    if (e->backend == BACKEND_SQLITE)
      sqlite_exec (e, sql);
    else
      pg_exec (e, sql);
    start (e);
    wait_markets (e, core_markets, NULL);
    a = get_assessment (e, e->alice, aid);
    g_assert_cmpstr (js (a, "status"), ==, "failed");
    g_assert_cmpstr (js (a, "statusReason"), ==, "daily drawdown breached");
    {
      g_autoptr(Reply) r = req (e, "POST", "/orders", e->alice, fix);
      expect_error_msg (r, 409, "ASSESSMENT_NOT_ACTIVE", "daily drawdown breached");
    }
    open = positions (e, e->alice, aid, "open");
    g_assert_cmpuint (json_array_get_length (open), >, 0);
    path = g_strdup_printf ("/positions/%s/close", js (json_array_get_object_element (open, 0), "id"));
    {
      g_autoptr(Reply) r = req (e, "POST", path, e->alice, NULL);
      expect_error (r, 409, "ASSESSMENT_NOT_ACTIVE");
    }
  }
  check_openapi (e);
  daemon_stop (e->d);
}

/* ------------------------------------------------------------------------ */
/* kill -9 during a burst                                                   */

#define BURST_ORDERS     200
#define BURST_PARALLEL   12
#define BURST_KILL_AFTER 150

typedef struct _Burst Burst;

typedef struct {
  Burst   *burst;
  guint    index;
  char    *qty;        /* unique: it names the request in the ledger */
  char    *key;        /* Idempotency-Key */
  char    *body;
  gboolean started;
  gboolean answered;   /* a whole HTTP answer arrived */
  guint    status;
  char    *trade_id;   /* of a 201 */
  char    *answer;     /* of a 201 */
  gboolean at_kill;    /* started and not answered when the kill was sent */
  gboolean in_ledger;  /* its trade is in GET /trades after the restart */
} BurstReq;

struct _Burst {
  Env      *e;
  char     *aid;
  BurstReq  reqs[BURST_ORDERS];
  guint     next;
  guint     running;
  guint     ok;
  gboolean  killed;
};

static void burst_launch (Burst *b);

static void
burst_done (Call *c, gpointer data)
{
  BurstReq *r = data;
  Burst *b = r->burst;
  Reply *rep = c->reply;

  b->running--;
  if (rep->error == NULL)
    {
      r->answered = TRUE;
      r->status = rep->status;
      if (rep->status == 201)
        {
          r->trade_id = g_strdup (js (json_object_get_object_member (obj (rep), "trade"), "id"));
          r->answer = g_strdup (rep->body);
          b->ok++;
        }
      else if (!b->killed)
        g_error ("burst order %u: %u %s", r->index, rep->status, rep->body);
    }
  else if (!b->killed)
    g_error ("burst order %u failed before the kill: %s", r->index, rep->error->message);
  reply_free (g_steal_pointer (&c->reply));
  g_object_unref (c->msg);
  g_free (c);

  if (!b->killed && b->ok == BURST_KILL_AFTER)
    {
      for (guint i = 0; i < BURST_ORDERS; i++)
        b->reqs[i].at_kill = b->reqs[i].started && !b->reqs[i].answered;
      b->killed = TRUE;
      arb_test_daemon_kill (b->e->d, SIGKILL);
      return;
    }
  if (!b->killed)
    burst_launch (b);
}

static void
burst_launch (Burst *b)
{
  while (b->running < BURST_PARALLEL && b->next < BURST_ORDERS)
    {
      BurstReq *r = &b->reqs[b->next++];
      const char *extra[] = { "Idempotency-Key", r->key, NULL };
      Call *c = call_start_full (b->e, "POST", "/orders", b->e->alice, r->body, extra);
      c->on_done = burst_done;
      c->on_done_data = r;
      r->started = TRUE;
      b->running++;
    }
}

static gboolean
burst_settled (gpointer data)
{
  Burst *b = data;
  return b->running == 0 && arb_test_daemon_has_exited (b->e->d);
}

static void
test_kill9 (gconstpointer data)
{
  g_autoptr(Env) e = env_new (GPOINTER_TO_INT (data));
  Burst *b = g_new0 (Burst, 1);
  g_autoptr(GHashTable) by_qty = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GHashTable) ledger_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) trades = NULL;
  g_autoptr(JsonArray) open = NULL;
  guint answered_ok = 0, in_flight = 0, unanswered_in_ledger = 0, never_sent = 0;
  gint64 *qty_keys = g_new0 (gint64, BURST_ORDERS);
  BurstReq *committed_unanswered = NULL, *lost = NULL, *ok_one = NULL;

  start_with_tokens (e);
  b->e = e;
  b->aid = create_assessment (e, "alice", "test");
  for (guint i = 0; i < BURST_ORDERS; i++)
    {
      BurstReq *r = &b->reqs[i];
      g_autofree char *q = NULL;
      r->burst = b;
      r->index = i;
      qty_keys[i] = dec ("1") + i + 1;
      r->qty = fmt (qty_keys[i]);
      r->key = g_strdup_printf ("burst-%u", i);
      q = g_strdup_printf ("\"%s\"", r->qty);
      r->body = order_body (b->aid, FIX, "buy", q, NULL);
      g_hash_table_insert (by_qty, &qty_keys[i], r);
    }
  burst_launch (b);
  if (!arb_test_wait_for (burst_settled, b, 60000))
    g_error ("the burst did not settle: %u running, %u answered 201, killed %d", b->running, b->ok, b->killed);
  g_assert_true (b->killed);
  g_assert_true (g_subprocess_get_if_signaled (arb_test_daemon_get_subprocess (e->d)));
  g_assert_cmpint (g_subprocess_get_term_sig (arb_test_daemon_get_subprocess (e->d)), ==, SIGKILL);

  /* the same store, a new daemon */
  g_clear_pointer (&e->d, arb_test_daemon_free);
  start (e);
  wait_markets (e, core_markets, NULL);

  trades = all_trades (e, e->alice, b->aid, 37);
  for (guint i = 0; i < trades->len; i++)
    {
      JsonObject *t = g_ptr_array_index (trades, i);
      gint64 q = jd (t, "quantity");
      BurstReq *r = g_hash_table_lookup (by_qty, &q);
      g_assert_cmpstr (js (t, "reason"), ==, "open");
      if (r == NULL)
        g_error ("trade %s (quantity %s) answers no request of the burst", js (t, "id"), js (t, "quantity"));
      /* one trade a request, even with retries and a crash */
      if (!g_hash_table_add (ledger_ids, g_strdup (js (t, "id"))) || r->in_ledger)
        g_error ("request %u has two trades", r->index);
      if (r->answered)
        {
          /* an answered request is in the ledger only as answered */
          g_assert_cmpuint (r->status, ==, 201);
          g_assert_cmpstr (js (t, "id"), ==, r->trade_id);
        }
      else
        {
          /* committed, its answer lost in the kill: it was in flight */
          if (!r->at_kill)
            g_error ("trade %s is for request %u, which was not in flight at the kill", js (t, "id"), r->index);
          unanswered_in_ledger++;
          committed_unanswered = r;
        }
      r->in_ledger = TRUE;
    }
  for (guint i = 0; i < BURST_ORDERS; i++)
    {
      BurstReq *r = &b->reqs[i];
      if (r->answered && r->trade_id != NULL)
        {
          answered_ok++;
          /* every 201 is in the ledger */
          if (!g_hash_table_contains (ledger_ids, r->trade_id))
            g_error ("request %u was answered 201 with trade %s, which is not in the ledger after the restart",
                     i, r->trade_id);
          ok_one = r;
        }
      in_flight += r->at_kill;
      never_sent += !r->started;
      if (r->at_kill && !r->in_ledger)
        lost = r;
    }
  g_test_message ("burst: %u answered 201, %u in flight at the kill (%u of them committed), %u never sent; "
                  "%u trades after the restart",
                  answered_ok, in_flight, unanswered_in_ledger, never_sent, trades->len);
  g_assert_cmpuint (answered_ok, >=, BURST_KILL_AFTER);
  g_assert_cmpuint (trades->len, ==, answered_ok + unanswered_in_ledger);
  g_assert_cmpuint (unanswered_in_ledger, <=, in_flight);
  g_assert_cmpuint (check_ledger (e, e->alice, b->aid, 50), ==, trades->len);
  /* every trade opened a position, all open, all loaded */
  open = positions (e, e->alice, b->aid, "open");
  g_assert_cmpuint (json_array_get_length (open), ==, trades->len);
  {
    g_autoptr(JsonObject) a = get_assessment (e, e->alice, b->aid);
    g_assert_cmpint (json_object_get_int_member (a, "openPositions"), ==, trades->len);
  }

  /* the keys outlived the kill: an answered one replays its answer */
  {
    const char *extra[] = { "Idempotency-Key", ok_one->key, NULL };
    g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, ok_one->body, extra);
    expect_status (r, 201);
    g_assert_cmpstr (hdr (r, "Idempotent-Replayed"), ==, "true");
    g_assert_cmpstr (r->body, ==, ok_one->answer);
  }
  /* one committed whose answer was lost: the retry gets that trade */
  if (committed_unanswered != NULL)
    {
      const char *extra[] = { "Idempotency-Key", committed_unanswered->key, NULL };
      g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, committed_unanswered->body, extra);
      const char *tid;
      expect_status (r, 201);
      g_assert_cmpstr (hdr (r, "Idempotent-Replayed"), ==, "true");
      tid = js (json_object_get_object_member (obj (r), "trade"), "id");
      g_assert_true (g_hash_table_contains (ledger_ids, tid));
    }
  /* one that never committed: the retry places it now */
  if (lost != NULL)
    {
      const char *extra[] = { "Idempotency-Key", lost->key, NULL };
      g_autoptr(Reply) r = req_full (e, "POST", "/orders", e->alice, lost->body, extra);
      expect_status (r, 201);
      g_assert_null (hdr (r, "Idempotent-Replayed"));
      g_assert_false (g_hash_table_contains (ledger_ids, js (json_object_get_object_member (obj (r), "trade"), "id")));
    }
  g_assert_cmpuint (check_ledger (e, e->alice, b->aid, 500), ==, trades->len + (lost != NULL));
  daemon_stop (e->d);

  for (guint i = 0; i < BURST_ORDERS; i++)
    {
      g_free (b->reqs[i].qty);
      g_free (b->reqs[i].key);
      g_free (b->reqs[i].body);
      g_free (b->reqs[i].trade_id);
      g_free (b->reqs[i].answer);
    }
  g_free (b->aid);
  g_free (b);
  g_free (qty_keys);
}

/* ------------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* GSocketClient asks for the default proxy resolver even when the session
   * has its own; GNOME's reads GSettings, whose schemas the isolated dirs hide */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  arb_test_drop_library_debug ();

  source_root = g_strdup (g_getenv ("ARB_SOURCE_ROOT"));
  g_assert_nonnull (g_getenv ("ARB_BUILD_ROOT"));
  g_assert_nonnull (source_root);

  g_test_add_func ("/api/fixed-point", test_fixed_point);
  g_test_add_data_func ("/api/sqlite/contract", GINT_TO_POINTER (BACKEND_SQLITE), test_contract);
  g_test_add_data_func ("/api/sqlite/store-failure", GINT_TO_POINTER (BACKEND_SQLITE), test_store_failure);
  g_test_add_data_func ("/api/sqlite/kill9-burst", GINT_TO_POINTER (BACKEND_SQLITE), test_kill9);
  g_test_add_func ("/api/rs256", test_rs256);
  g_test_add_func ("/api/sqlite/unquoted-after-restart", test_unquoted_after_restart);
  g_test_add_data_func ("/api/sqlite/closed-positions-pages", GINT_TO_POINTER (BACKEND_SQLITE), test_closed_pages);
  g_test_add_data_func ("/api/postgresql/closed-positions-pages", GINT_TO_POINTER (BACKEND_POSTGRESQL),
                        test_closed_pages);
  g_test_add_data_func ("/api/postgresql/contract", GINT_TO_POINTER (BACKEND_POSTGRESQL), test_contract);
  g_test_add_data_func ("/api/postgresql/store-failure", GINT_TO_POINTER (BACKEND_POSTGRESQL), test_store_failure);
  g_test_add_data_func ("/api/postgresql/kill9-burst", GINT_TO_POINTER (BACKEND_POSTGRESQL), test_kill9);

  rc = g_test_run ();
  g_clear_pointer (&pg_server, arb_test_pg_free);
  return rc;
}
