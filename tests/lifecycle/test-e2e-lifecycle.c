/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Issue 4 end to end: the real arbiterd on a temporary config, its prices
 * from a replay recording this test writes (doc/replay-format.md, played ten
 * times as fast), a program with risk-per-trade and risk-drawdown, its
 * events in a JSON-lines file. One trader's assessment follows a price path
 * through a stop-loss, a take-profit, an oversized order that is refused,
 * and a daily-loss breach that fails it and liquidates what is left; the
 * outcome is read over REST and from the events file.
 *
 * The market: slippage 5 bps, fee 10 bps, leverage 10. Every expected amount
 * was computed by hand; the arithmetic is in the comments.
 *
 * The path (recorded ms; played at speed 10, so a tenth of that in real
 * time), one quote of each market a second:
 *
 *   0       BTC 49,990 / 50,010   ETH 1,999 / 2,001   SOL 99.95 / 100.05
 *           (8 s of real time for the test to place its orders)
 *   80,000  BTC 48,950 / 48,970: the BTC long's stop-loss at 49,000
 *   100,000 ETH 2,110 / 2,112: the ETH long's take-profit at 2,100
 *   120,000 SOL 95, 90, 85, 80, 75, 72, 70 (bids), ten seconds each
 *   190,000 SOL 69.50 / 69.60: equity crosses the daily loss floor 95,000
 *   215,000 the end */

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "arb-test-daemon.h"

#define BTC "crypto:BTC-USD"
#define ETH "crypto:ETH-USD"
#define SOL "crypto:SOL-USD"

#define END_MS        215000
#define OPEN_UNTIL_MS 80000
#define WAIT_MS       30000

static JsonNode *
parse (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *n = json_from_string (text, &error);
  if (n == NULL)
    g_error ("not JSON (%s): %s", error->message, text);
  return n;
}

/* a member by a path "evidence.details.floor": a string, or NULL */
static const char *
str_at (JsonNode *node, const char *path)
{
  g_auto(GStrv) parts = g_strsplit (path, ".", -1);
  JsonNode *n = node;

  for (guint i = 0; parts[i] != NULL; i++)
    {
      JsonObject *o;
      if (!JSON_NODE_HOLDS_OBJECT (n))
        return NULL;
      o = json_node_get_object (n);
      if (!json_object_has_member (o, parts[i]))
        return NULL;
      n = json_object_get_member (o, parts[i]);
    }
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                     : NULL;
}

static JsonArray *
array_at (JsonNode *node, const char *member)
{
  JsonObject *o = json_node_get_object (node);
  g_assert_true (json_object_has_member (o, member));
  return json_object_get_array_member (o, member);
}

/* ------------------------------------------------------------------------ */
/* The recording                                                            */

static void
line (GString *out, gint64 at_ms, const char *market, const char *bid, const char *ask)
{
  g_string_append_printf (out,
                          "{\"at_ms\":%" G_GINT64_FORMAT ",\"type\":\"quote\",\"market\":\"%s\",\"bid\":\"%s\","
                          "\"ask\":\"%s\",\"source\":\"synthetic\"}\n",
                          at_ms, market, bid, ask);
}

static char *
recording (void)
{
  static const struct {
    gint64      from_ms;
    const char *bid, *ask;
  } sol[] = {
    { 0, "99.95", "100.05" }, { 120000, "95", "95.10" }, { 130000, "90", "90.10" }, { 140000, "85", "85.10" },
    { 150000, "80", "80.10" }, { 160000, "75", "75.10" }, { 170000, "72", "72.10" }, { 180000, "70", "70.10" },
    { 190000, "69.50", "69.60" },
  };
  GString *out = g_string_new (NULL);

  for (gint64 t = 0; t <= END_MS; t += 1000)
    {
      guint k = 0;
      if (t < 80000)
        line (out, t, BTC, "49990", "50010");
      else
        line (out, t, BTC, "48950", "48970");
      if (t < 100000)
        line (out, t, ETH, "1999", "2001");
      else
        line (out, t, ETH, "2110", "2112");
      while (k + 1 < G_N_ELEMENTS (sol) && sol[k + 1].from_ms <= t)
        k++;
      line (out, t, SOL, sol[k].bid, sol[k].ask);
    }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* The daemon and its API                                                   */

typedef struct {
  char          *dir;
  char          *conf;
  char          *events;
  ArbTestDaemon *daemon;
  SoupSession   *session;
  char          *admin;
  char          *alice;
} Env;

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  g_rmdir (path);
}

static char *
mint_token (Env *e, const char *sub, gboolean admin)
{
  g_autofree char *arbiterd = g_build_filename (g_getenv ("ARB_BUILD_ROOT"), "runtime", "arbiterd", NULL);
  const char *argv[] = { arbiterd, "--config", e->conf, "--mint-token", sub, admin ? "--admin" : NULL, NULL };
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error));
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (proc))
    g_error ("--mint-token: %s", err);
  return g_strstrip (g_steal_pointer (&out));
}

static Env *
env_new (void)
{
  Env *e = g_new0 (Env, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_autofree char *rec = recording ();

  e->dir = g_dir_make_tmp ("arb-e2e-life-XXXXXX", &error);
  g_assert_no_error (error);
  e->conf = g_build_filename (e->dir, "arbiter.conf", NULL);
  e->events = g_build_filename (e->dir, "events.jsonl", NULL);
  secret = g_build_filename (e->dir, "jwt-secret", NULL);
  g_assert_true (g_file_set_contents (secret, "0123456789abcdef0123456789abcdef0123456789abcdef\n", -1, &error));
  path = g_build_filename (e->dir, "path.jsonl", NULL);
  g_assert_true (g_file_set_contents (path, rec, -1, &error));
  text = g_strdup_printf ("[runtime]\n"
                          "listen=127.0.0.1:0\n"
                          "state_dir=state\n"
                          "shutdown_timeout=5s\n"
                          "\n"
                          "[api]\n"
                          "jwt_alg=HS256\n"
                          "jwt_secret_file=%s\n"
                          "\n"
                          "[ingest:replay]\n"
                          "plugin=ingest-replay\n"
                          "files=path.jsonl\n"
                          "speed=10\n"
                          "loop=false\n"
                          "\n"
                          "[sink:jsonl]\n"
                          "plugin=sink-jsonl\n"
                          "path=events.jsonl\n"
                          "fsync=never\n"
                          "events=ledger\n"
                          "\n"
                          "[market-class:crypto]\n"
                          "slippage_bps=5\n"
                          "fee_bps=10\n"
                          "max_quote_age=30s\n"
                          "\n"
                          "[program:challenge]\n"
                          "starting_balance=100000\n"
                          "leverage=10\n"
                          "profit_target_pct=50\n"
                          "risk=per-trade,drawdown\n"
                          "\n"
                          "[risk:per-trade]\n"
                          "plugin=risk-per-trade\n"
                          "max_risk_per_trade_pct=2\n"
                          "\n"
                          "[risk:drawdown]\n"
                          "plugin=risk-drawdown\n"
                          "max_loss_pct=10\n"
                          "daily_loss_pct=5\n",
                          secret);
  g_assert_true (g_file_set_contents (e->conf, text, -1, &error));
  g_assert_no_error (error);
  e->admin = mint_token (e, "boss", TRUE);
  e->alice = mint_token (e, "alice", FALSE);
  e->session = arb_test_session_new ();
  return e;
}

static void
env_free (Env *e)
{
  if (e->daemon != NULL)
    {
      arb_test_daemon_terminate (e->daemon);
      arb_test_daemon_free (e->daemon);
    }
  g_clear_object (&e->session);
  remove_tree (e->dir);
  g_free (e->dir);
  g_free (e->conf);
  g_free (e->events);
  g_free (e->admin);
  g_free (e->alice);
  g_free (e);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Env, env_free)

/* an answer of @status, parsed */
static JsonNode *
call (Env *e, const char *method, const char *path, const char *token, const char *body, guint status)
{
  g_autoptr(ArbTestReply) r = arb_test_http_request (e->session, e->daemon, method, path, token, body);
  if (r->status != status)
    g_error ("%s %s: %u, not %u: %s", method, path, r->status, status, r->body);
  return parse (r->body);
}

static JsonNode *
get (Env *e, const char *path)
{
  return call (e, "GET", path, e->alice, NULL, 200);
}

static JsonNode *
getf (Env *e, const char *format, ...) G_GNUC_PRINTF (2, 3);

static JsonNode *
getf (Env *e, const char *format, ...)
{
  va_list args;
  g_autofree char *path = NULL;

  va_start (args, format);
  path = g_strdup_vprintf (format, args);
  va_end (args);
  return get (e, path);
}

/* POST /orders that must fill: the new position's id */
static char *
place (Env *e, const char *aid, const char *market, const char *qty, const char *stop, const char *tp,
       const char *expect_price)
{
  g_autofree char *body = g_strdup_printf ("{\"assessmentId\":\"%s\",\"market\":\"%s\",\"side\":\"buy\","
                                           "\"quantity\":\"%s\"%s%s%s%s%s%s}",
                                           aid, market, qty, stop != NULL ? ",\"stopLoss\":\"" : "",
                                           stop != NULL ? stop : "", stop != NULL ? "\"" : "",
                                           tp != NULL ? ",\"takeProfit\":\"" : "", tp != NULL ? tp : "",
                                           tp != NULL ? "\"" : "");
  g_autoptr(JsonNode) r = call (e, "POST", "/orders", e->alice, body, 201);
  /* filled at the opening quote: the test was in time */
  g_assert_cmpstr (str_at (r, "trade.price"), ==, expect_price);
  g_assert_cmpstr (str_at (r, "trade.reason"), ==, "open");
  return g_strdup (str_at (r, "position.id"));
}

/* ------------------------------------------------------------------------ */
/* Waiting for what the prices do                                           */

typedef struct {
  Env        *env;
  const char *path;
  const char *member; /* a path into the answer */
  const char *value;
  guint       polls;
} Poll;

static gboolean
poll_once (gpointer data)
{
  Poll *p = data;
  g_autoptr(ArbTestReply) r = NULL;
  g_autoptr(JsonNode) n = NULL;

  /* a few times a second */
  if (p->polls++ > 0)
    arb_test_run_for (150);
  r = arb_test_http_request (p->env->session, p->env->daemon, "GET", p->path, p->env->alice, NULL);
  if (r->status != 200)
    return FALSE;
  n = parse (r->body);
  return g_strcmp0 (str_at (n, p->member), p->value) == 0;
}

static void
wait_until (Env *e, const char *path, const char *member, const char *value)
{
  Poll p = { e, path, member, value, 0 };
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_GINT64_CONSTANT (1000);

  while (!poll_once (&p))
    if (g_get_monotonic_time () > deadline)
      g_error ("%s: %s never became %s; arbiterd logged:\n%s", path, member, value,
               arb_test_daemon_get_log (e->daemon));
}

/* the closed position @id of GET /positions?status=closed, or NULL */
static JsonObject *
find_position (JsonNode *answer, const char *id)
{
  JsonArray *a = array_at (answer, "positions");
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *p = json_array_get_object_element (a, i);
      if (g_strcmp0 (json_object_get_string_member (p, "id"), id) == 0)
        return p;
    }
  return NULL;
}

static gboolean
closed_with (Env *e, const char *aid, const char *pid, const char *reason)
{
  g_autoptr(JsonNode) n = getf (e, "/positions?assessmentId=%s&status=closed", aid);
  JsonObject *p = find_position (n, pid);
  return p != NULL && g_strcmp0 (json_object_get_string_member (p, "closeReason"), reason) == 0;
}

static void
wait_closed (Env *e, const char *aid, const char *pid, const char *reason)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_GINT64_CONSTANT (1000);
  while (!closed_with (e, aid, pid, reason))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("position %s never closed with reason %s; arbiterd logged:\n%s", pid, reason,
                 arb_test_daemon_get_log (e->daemon));
      arb_test_run_for (150);
    }
}

/* ------------------------------------------------------------------------ */

static JsonObject *
rule_of (JsonNode *assessment, const char *rule)
{
  JsonArray *rules = array_at (assessment, "rules");
  for (guint i = 0; i < json_array_get_length (rules); i++)
    {
      JsonObject *r = json_array_get_object_element (rules, i);
      if (g_str_equal (json_object_get_string_member (r, "rule"), rule))
        return r;
    }
  g_error ("no rule %s", rule);
  return NULL;
}

static gboolean
events_written (gpointer data)
{
  g_autofree char *text = NULL;
  return g_file_get_contents (data, &text, NULL, NULL) && strstr (text, "\"assessment.failed\"") != NULL;
}

static void
test_path (void)
{
  g_autoptr(Env) e = env_new ();
  g_autoptr(JsonNode) created = NULL;
  g_autoptr(JsonNode) assessment = NULL;
  g_autoptr(JsonNode) failed = NULL;
  g_autoptr(JsonNode) closed = NULL;
  g_autoptr(JsonNode) open = NULL;
  g_autoptr(JsonNode) trades = NULL;
  g_autoptr(JsonNode) events = NULL;
  g_autofree char *aid = NULL;
  g_autofree char *apath = NULL;
  g_autofree char *btc = NULL;
  g_autofree char *eth = NULL;
  g_autofree char *sol = NULL;
  g_autofree char *btc2 = NULL;
  g_autofree char *text = NULL;
  gint64 started;

  e->daemon = arb_test_daemon_start (e->conf, NULL);
  g_assert_nonnull (e->daemon);
  started = g_get_monotonic_time ();
  /* the opening quotes are in */
  {
    gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    for (;;)
      {
        g_autoptr(JsonNode) m = get (e, "/markets");
        JsonArray *a = array_at (m, "markets");
        guint n = 0;
        for (guint i = 0; i < json_array_get_length (a); i++)
          n += json_object_get_boolean_member (json_array_get_object_element (a, i), "tradable");
        if (n == 3)
          break;
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        arb_test_run_for (50);
      }
  }

  created = call (e, "POST", "/assessments", e->admin, "{\"userId\":\"alice\",\"program\":\"challenge\"}", 201);
  aid = g_strdup (str_at (created, "id"));
  apath = g_strdup_printf ("/assessments/%s", aid);

  /* a: 1 BTC at 50,010 × 1.0005 = 50,035.005, stop 49,000, take-profit
   * 60,000. Risk: the stop fills at 49,000 × 0.9995 = 48,975.50: 1,059.505
   * + fee 50.035005 + 48.9755 = 1,158.515505, within 2% (2,000) */
  btc = place (e, aid, BTC, "1", "49000", "60000", "50035.00500000");
  /* b: 10 ETH at 2,001 × 1.0005 = 2,002.0005, stop 1,900, take-profit 2,100:
   * (2,002.0005 − 1,899.05) × 10 + 20.020005 + 18.9905 = 1,068.515505 */
  eth = place (e, aid, ETH, "10", "1900", "2100", "2002.00050000");
  /* c: 3 BTC with the same stop risks 3,178.515 + 150.105015 + 146.9265 =
   * 3,475.546515: refused before it fills */
  {
    g_autofree char *body = g_strdup_printf ("{\"assessmentId\":\"%s\",\"market\":\"" BTC "\",\"side\":\"buy\","
                                             "\"quantity\":\"3\",\"stopLoss\":\"49000\"}",
                                             aid);
    g_autoptr(JsonNode) r = call (e, "POST", "/orders", e->alice, body, 422);
    g_assert_cmpstr (str_at (r, "error.code"), ==, "RISK_LIMIT_EXCEEDED");
    g_assert_cmpstr (str_at (r, "error.message"), ==,
                     "risk 3475.546515 exceeds 2% of initial balance 100000.00 = 2000.00 (|entry 50035.005 − stop "
                     "49000.00 less 5 bps slippage 48975.50| × 3 = 3178.515 + opening fee 150.105015 + closing fee at "
                     "the stop 146.9265)");
  }
  /* d: 150 SOL at 100.05 × 1.0005 = 100.100025, no stop: risk = the margin
   * 1,501.500375 + fee 15.01500375; e: 0.2 BTC, no stop: 1,000.7001 +
   * 10.007001 */
  sol = place (e, aid, SOL, "150", NULL, NULL, "100.10002500");
  btc2 = place (e, aid, BTC, "0.2", NULL, NULL, "50035.00500000");
  /* all of it while the opening prices held */
  g_assert_cmpint (g_get_monotonic_time () - started, <, OPEN_UNTIL_MS / 10 * G_GINT64_CONSTANT (1000));

  /* where the rules stand: the daily floor 100,000 − 5,000 binds first */
  assessment = get (e, apath);
  g_assert_cmpstr (str_at (assessment, "status"), ==, "active");
  /* 100,000 − the opening fees 50.035005 + 20.020005 + 15.01500375 + 10.007001 */
  g_assert_cmpstr (str_at (assessment, "balance"), ==, "99904.92298525");
  g_assert_cmpstr (json_object_get_string_member (rule_of (assessment, "max_loss"), "limit"), ==,
                   "90000.00000000");
  g_assert_cmpstr (json_object_get_string_member (rule_of (assessment, "daily_loss"), "limit"), ==,
                   "95000.00000000");
  g_assert_true (json_object_get_boolean_member (rule_of (assessment, "daily_loss"), "bindsFirst"));
  g_assert_false (json_object_get_boolean_member (rule_of (assessment, "max_loss"), "bindsFirst"));
  g_assert_cmpstr (json_object_get_string_member (rule_of (assessment, "daily_loss"), "riskInstance"), ==,
                   "risk:drawdown");
  g_clear_pointer (&assessment, json_node_unref);

  /* BTC's bid 48,950 reaches the stop: sold at 48,950 × 0.9995 = 48,925.525 */
  wait_closed (e, aid, btc, "stop_loss");
  /* ETH's bid 2,110 reaches the take-profit: sold at 2,108.945 */
  wait_closed (e, aid, eth, "take_profit");
  /* SOL falls until equity reaches the daily floor */
  wait_until (e, apath, "status", "failed");

  assessment = get (e, apath);
  /* equity 99,794.87301025 − 217.001 (0.2 BTC at 48,950) + 150 × (69.50 −
   * 100.100025) = 94,987.86826025; at a bid of 70 it was 95,062.86826025 */
  g_assert_cmpstr (str_at (assessment, "statusReason"), ==,
                   "daily_loss: equity 94987.86826025 is at or below the daily loss floor 95000.00 (day-start "
                   "balance 100000.00 − 5% of start (5000.00) = 95000.00)");
  /* liquidated at the market: SOL at 69.50 × 0.9995 = 69.46525 (−4,595.21625,
   * fee 10.4197875), BTC at 48,925.525 (−221.896, fee 9.785105) */
  g_assert_cmpstr (str_at (assessment, "balance"), ==, "94957.55586775");
  g_assert_cmpstr (str_at (assessment, "equity"), ==, "94957.55586775");
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (assessment), "openPositions"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (rule_of (assessment, "daily_loss"), "room"), ==,
                   "-42.44413225");

  open = getf (e, "/positions?assessmentId=%s&status=open", aid);
  g_assert_cmpuint (json_array_get_length (array_at (open, "positions")), ==, 0);
  closed = getf (e, "/positions?assessmentId=%s&status=closed", aid);
  g_assert_cmpuint (json_array_get_length (array_at (closed, "positions")), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (find_position (closed, btc), "closeReason"), ==, "stop_loss");
  g_assert_cmpstr (json_object_get_string_member (find_position (closed, eth), "closeReason"), ==, "take_profit");
  g_assert_cmpstr (json_object_get_string_member (find_position (closed, sol), "closeReason"), ==, "liquidation");
  g_assert_cmpstr (json_object_get_string_member (find_position (closed, btc2), "closeReason"), ==, "liquidation");

  /* the trades, newest first: four opens and four closes */
  trades = getf (e, "/trades?assessmentId=%s&limit=50", aid);
  {
    JsonArray *t = array_at (trades, "trades");
    guint n_reason[4] = { 0 };
    static const char *const reasons[] = { "open", "stop_loss", "take_profit", "liquidation" };
    g_assert_cmpuint (json_array_get_length (t), ==, 8);
    for (guint i = 0; i < json_array_get_length (t); i++)
      {
        JsonObject *o = json_array_get_object_element (t, i);
        const char *reason = json_object_get_string_member (o, "reason");
        const char *pos = json_object_get_string_member (o, "positionId");
        for (guint k = 0; k < G_N_ELEMENTS (reasons); k++)
          n_reason[k] += g_str_equal (reason, reasons[k]);
        if (g_str_equal (reason, "stop_loss"))
          {
            g_assert_cmpstr (pos, ==, btc);
            g_assert_cmpstr (json_object_get_string_member (o, "price"), ==, "48925.52500000");
            /* −1,109.48 − fee 48.925525 */
            g_assert_cmpstr (json_object_get_string_member (o, "cashEffect"), ==, "-1158.40552500");
          }
        else if (g_str_equal (reason, "take_profit"))
          {
            g_assert_cmpstr (pos, ==, eth);
            g_assert_cmpstr (json_object_get_string_member (o, "price"), ==, "2108.94500000");
            /* 1,069.445 − 21.08945 */
            g_assert_cmpstr (json_object_get_string_member (o, "cashEffect"), ==, "1048.35555000");
          }
        else if (g_str_equal (reason, "liquidation") && g_str_equal (pos, sol))
          g_assert_cmpstr (json_object_get_string_member (o, "price"), ==, "69.46525000");
        else if (g_str_equal (reason, "liquidation"))
          {
            g_assert_cmpstr (pos, ==, btc2);
            g_assert_cmpstr (json_object_get_string_member (o, "price"), ==, "48925.52500000");
          }
      }
    g_assert_cmpuint (n_reason[0], ==, 4);
    g_assert_cmpuint (n_reason[1], ==, 1);
    g_assert_cmpuint (n_reason[2], ==, 1);
    g_assert_cmpuint (n_reason[3], ==, 2);
  }

  /* the evidence of the breach */
  events = getf (e, "/assessments/%s/events", aid);
  {
    JsonArray *a = array_at (events, "events");
    for (guint i = 0; i < json_array_get_length (a); i++)
      {
        JsonNode *ev = json_array_get_element (a, i);
        if (g_strcmp0 (str_at (ev, "type"), "assessment.failed") == 0)
          failed = json_node_copy (ev);
      }
    g_assert_cmpstr (str_at (json_array_get_element (a, 0), "type"), ==, "assessment.created");
  }
  g_assert_nonnull (failed);
  g_assert_cmpstr (str_at (failed, "data.status"), ==, "failed");
  g_assert_cmpstr (str_at (failed, "data.evidence.rule"), ==, "daily_loss");
  g_assert_cmpstr (str_at (failed, "data.evidence.riskInstance"), ==, "risk:drawdown");
  g_assert_cmpstr (str_at (failed, "data.evidence.equity"), ==, "94987.86826025");
  /* the balance before the liquidation: after the stop-loss and take-profit */
  g_assert_cmpstr (str_at (failed, "data.evidence.balance"), ==, "99794.87301025");
  g_assert_cmpstr (str_at (failed, "data.evidence.details.floor"), ==, "95000.00000000");
  g_assert_cmpstr (str_at (failed, "data.evidence.details.anchor"), ==, "100000.00000000");
  g_assert_cmpstr (str_at (failed, "data.evidence.details.floorComputation"), ==,
                   "day-start balance 100000.00 − 5% of start (5000.00) = 95000.00");
  g_assert_nonnull (str_at (failed, "data.evidence.time"));
  {
    JsonArray *quotes = json_object_get_array_member (
      json_object_get_object_member (json_object_get_object_member (json_node_get_object (failed), "data"),
                                     "evidence"),
      "quotes");
    gboolean seen_sol = FALSE, seen_btc = FALSE;
    g_assert_cmpuint (json_array_get_length (quotes), ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        JsonObject *q = json_array_get_object_element (quotes, i);
        const char *market = json_object_get_string_member (q, "market");
        g_assert_cmpstr (json_object_get_string_member (q, "source"), ==, "replay");
        g_assert_true (json_object_has_member (q, "sourceTime"));
        if (g_str_equal (market, SOL))
          {
            seen_sol = TRUE;
            g_assert_cmpstr (json_object_get_string_member (q, "bid"), ==, "69.50000000");
          }
        else
          {
            seen_btc = TRUE;
            g_assert_cmpstr (market, ==, BTC);
            g_assert_cmpstr (json_object_get_string_member (q, "bid"), ==, "48950.00000000");
          }
      }
    g_assert_true (seen_sol && seen_btc);
  }

  /* the sink's file: every ledger event, one JSON object a line */
  g_assert_cmpint (arb_test_daemon_terminate (e->daemon), ==, 0);
  g_assert_true (events_written (e->events));
  g_assert_true (g_file_get_contents (e->events, &text, NULL, NULL));
  {
    g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
    guint closes = 0, liquidations = 0, fails = 0;
    gboolean sl = FALSE, tp = FALSE;
    for (guint i = 0; lines[i] != NULL; i++)
      {
        g_autoptr(JsonNode) ev = NULL;
        const char *type;
        if (*lines[i] == '\0')
          continue;
        ev = parse (lines[i]);
        if (g_strcmp0 (str_at (ev, "assessmentId"), aid) != 0)
          continue;
        type = str_at (ev, "type");
        if (g_str_equal (type, "position.closed"))
          {
            const char *reason = str_at (ev, "data.closeReason");
            const char *pid = str_at (ev, "data.id");
            closes++;
            if (g_str_equal (reason, "stop_loss"))
              sl = g_str_equal (pid, btc);
            else if (g_str_equal (reason, "take_profit"))
              tp = g_str_equal (pid, eth);
            else
              {
                g_assert_cmpstr (reason, ==, "liquidation");
                g_assert_true (g_str_equal (pid, sol) || g_str_equal (pid, btc2));
                liquidations++;
              }
          }
        else if (g_str_equal (type, "assessment.failed"))
          {
            fails++;
            g_assert_true (g_str_has_prefix (str_at (ev, "data.reason"), "daily_loss: equity 94987.86826025"));
            g_assert_cmpstr (str_at (ev, "data.evidence.details.floor"), ==, "95000.00000000");
            g_assert_cmpstr (str_at (ev, "data.balance"), ==, "94957.55586775");
          }
      }
    g_assert_cmpuint (closes, ==, 4);
    g_assert_true (sl);
    g_assert_true (tp);
    g_assert_cmpuint (liquidations, ==, 2);
    g_assert_cmpuint (fails, ==, 1);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* no GSettings lookups for proxies: the daemon is on 127.0.0.1 */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_test_add_func ("/e2e/lifecycle/stop-take-refuse-breach", test_path);
  return g_test_run ();
}
