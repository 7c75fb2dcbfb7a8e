/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The assessment lifecycle in the host (issue 4): an in-process host built
 * from a temporary key file by arb_host_new() and arb_host_start(), with the
 * real saga, marker and SQLite store in a temporary folder and the build's
 * risk plugins. Prices reach it as an ingest plugin's do: published by a
 * real ingest instance (ingest-hello, whose own market is not traded here)
 * through arb_instance_publish_quote(), which hands them to
 * arb_host_on_quote(). Orders and closes go through the saga as the REST
 * layer calls it; the test iterates the main loop until the store has
 * committed.
 *
 * What cannot be waited for (days) is set up in the store before the host
 * starts, through the store's own API: assessments created days ago, with
 * their trading days, last fills, yesterday's day anchors or a pause. The
 * loader reads those rows as it reads any; nothing of the host is faked.
 * arb_marker_take_day_anchors() runs when the host starts, and
 * arb_marker_check_time_rules() is the function the marker's one-minute
 * timer calls.
 *
 * Every market fills at the quote (no slippage, no fee) and every quote has
 * bid = ask, so each amount below is plain arithmetic. */

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "arb-marker-private.h"
#include "arb-risk-private.h"
#include "arb-saga-private.h"
#include "arb-store-private.h"
#include "arb-trading-private.h"
#include "arb-util-private.h"

#define BTC      "crypto:BTC-USD"
#define DAY_US   (G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC)
#define HOUR_US  (G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC)
#define MIN_US   (G_GINT64_CONSTANT (60) * G_USEC_PER_SEC)
#define WAIT_MS  10000
#define OWNER    "trader-1"

static const char base_groups[] =
  "[api]\n"
  "jwt_alg=HS256\n"
  "\n"
  /* the ingest instance the quotes come from; its own market is not traded */
  "[ingest:feed]\n"
  "plugin=ingest-hello\n"
  "market=crypto:HELLO-USD\n"
  "price=1\n"
  "interval=1h\n"
  "\n"
  "[market-class:crypto]\n"
  "slippage_bps=0\n"
  "fee_bps=0\n"
  "max_quote_age=1h\n"
  "\n";

/* ------------------------------------------------------------------------ */
/* The host                                                                 */

typedef struct {
  char        *dir;
  char        *state;
  char        *conf;
  char        *log;
  ArbHost     *host;
  ArbInstance *feed;
} Life;

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

static Life *
life_new (const char *groups)
{
  Life *l = g_new0 (Life, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  l->dir = g_dir_make_tmp ("arb-life-XXXXXX", &error);
  g_assert_no_error (error);
  l->state = g_build_filename (l->dir, "state", NULL);
  l->conf = g_build_filename (l->dir, "arbiter.conf", NULL);
  l->log = g_build_filename (l->dir, "arbiterd.log", NULL);
  g_assert_cmpint (g_mkdir_with_parents (l->state, 0750), ==, 0);
  text = g_strdup_printf ("[runtime]\n"
                          "listen=127.0.0.1:0\n"
                          "state_dir=state\n"
                          "shutdown_timeout=2s\n"
                          "\n%s%s",
                          base_groups, groups);
  g_assert_true (g_file_set_contents (l->conf, text, -1, &error));
  g_assert_no_error (error);
  return l;
}

static void
life_start (Life *l)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;

  g_assert_null (l->host);
  arb_log_set_output_file (l->log);
  l->host = arb_host_new (l->conf, problems, &error);
  all = arb_config_problems_join (problems);
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_true (arb_host_start (l->host, &error));
  g_assert_no_error (error);
  l->feed = arb_host_find_instance (l->host, "ingest:feed");
  g_assert_nonnull (l->feed);
  g_assert_cmpint (arb_instance_get_state (l->feed), ==, ARB_INSTANCE_RUNNING);
}

static void
life_stop (Life *l)
{
  if (l->host == NULL)
    return;
  arb_host_stop (l->host);
  g_clear_pointer (&l->host, arb_host_free);
  l->feed = NULL;
  arb_log_set_output_file (NULL);
}

static void
life_free (Life *l)
{
  life_stop (l);
  remove_tree (l->dir);
  g_free (l->dir);
  g_free (l->state);
  g_free (l->conf);
  g_free (l->log);
  g_free (l);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Life, life_free)

static ArbProgram *
program_of (Life *l, const char *name)
{
  ArbProgram *p = arb_trading_get_program (l->host->trading, name);
  g_assert_nonnull (p);
  return p;
}

static ArbAccount *
account_of (Life *l, const char *id)
{
  ArbAccount *a = arb_trading_get_account (l->host->trading, id);
  g_assert_nonnull (a);
  return a;
}

/* ---- the main loop --------------------------------------------------------- */

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

typedef gboolean (*Condition) (Life *l, gconstpointer data);

static gboolean
wait_for (Life *l, Condition cond, gconstpointer data)
{
  gboolean timed_out = FALSE;
  guint timeout_id = g_timeout_add (WAIT_MS, set_flag, &timed_out);
  guint tick_id = g_timeout_add (20, tick, NULL);

  while (!cond (l, data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  g_source_remove (tick_id);
  return cond (l, data);
}

static void
run_for (guint ms)
{
  gboolean done = FALSE;
  g_timeout_add (ms, set_flag, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* nothing of @id waits for the store */
static gboolean
settled (Life *l, gconstpointer id)
{
  ArbAccount *a = account_of (l, id);
  return !a->busy && g_queue_is_empty (&a->waiting);
}

static gboolean
has_status (Life *l, gconstpointer data)
{
  const char *const *want = data; /* id, status */
  ArbAccount *a = account_of (l, want[0]);
  return settled (l, want[0]) && g_str_equal (arb_assessment_status_to_string (a->row->status), want[1]);
}

static void
wait_status (Life *l, const char *id, const char *status)
{
  const char *want[] = { id, status };
  if (!wait_for (l, has_status, want))
    g_error ("%s is %s, not %s (log: %s)", id, arb_assessment_status_to_string (account_of (l, id)->row->status),
             status, l->log);
}

static void
wait_settled (Life *l, const char *id)
{
  g_assert_true (wait_for (l, settled, id));
}

/* ---- prices, orders, closes ---------------------------------------------------- */

/* a quote published by the ingest instance, as its plugin would: the host
 * puts it in the book and marks the accounts holding the market */
static void
quote (Life *l, const char *market, const char *price)
{
  g_autoptr(ArbQuote) q = arb_quote_new (market);
  g_autoptr(GError) error = NULL;
  ArbDecimal d;

  g_assert_true (arb_decimal_parse (price, ARB_ROUND_EXACT, &d, &error));
  arb_quote_set_bid (q, d);
  arb_quote_set_ask (q, d);
  arb_quote_set_source_time (q, arb_now_us ());
  g_assert_true (arb_instance_publish_quote (l->feed, q, &error));
  g_assert_no_error (error);
}

typedef struct {
  gboolean done;
  GError  *error;
  char    *position_id;
  char    *assessment_id;
} Answer;

static void
answer_clear (Answer *a)
{
  g_clear_error (&a->error);
  g_clear_pointer (&a->position_id, g_free);
  g_clear_pointer (&a->assessment_id, g_free);
  a->done = FALSE;
}

static void
on_answer (ArbSagaResult *result, const GError *error, gpointer data)
{
  Answer *a = data;
  a->done = TRUE;
  if (error != NULL)
    a->error = g_error_copy (error);
  else
    {
      if (result->position != NULL)
        a->position_id = g_strdup (result->position->id);
      if (result->assessment != NULL)
        a->assessment_id = g_strdup (result->assessment->id);
    }
}

static gboolean
answered (Life *l, gconstpointer data)
{
  return ((const Answer *) data)->done;
}

static void
await (Life *l, Answer *a)
{
  g_assert_true (wait_for (l, answered, a));
}

/* POST /orders as the REST layer calls the saga; @stop may be NULL */
static void
order (Life *l, const char *id, gboolean buy, const char *qty, Answer *a)
{
  ArbOrderRequest req = { 0 };
  g_autoptr(GError) error = NULL;

  req.user = (char *) OWNER;
  req.assessment_id = (char *) id;
  req.market = (char *) BTC;
  req.is_buy = buy;
  g_assert_true (arb_decimal_parse (qty, ARB_ROUND_EXACT, &req.quantity, &error));
  answer_clear (a);
  arb_saga_place_order (l->host->saga, &req, NULL, NULL, on_answer, a);
  await (l, a);
}

/* an order that must fill; the position id */
static char *
open_position (Life *l, const char *id, gboolean buy, const char *qty)
{
  Answer a = { 0 };
  order (l, id, buy, qty, &a);
  if (a.error != NULL)
    g_error ("order of %s refused: %s", id, a.error->message);
  g_free (a.assessment_id);
  return a.position_id;
}

static void
close_position (Life *l, const char *position_id)
{
  Answer a = { 0 };
  arb_saga_close_position (l->host->saga, OWNER, position_id, NULL, NULL, on_answer, &a);
  await (l, &a);
  g_assert_no_error (a.error);
  answer_clear (&a);
}

/* POST /assessments */
static char *
create_assessment (Life *l, const char *program)
{
  Answer a = { 0 };
  char *id;
  arb_saga_create_assessment (l->host->saga, OWNER, program, NULL, on_answer, &a);
  await (l, &a);
  g_assert_no_error (a.error);
  id = g_steal_pointer (&a.assessment_id);
  answer_clear (&a);
  return id;
}

/* ---- trading days ------------------------------------------------------------- */

/* the start of the trading day containing @t_us for a program in @tz that
 * resets at @reset_minute: the host's own DST-correct function, on a program
 * built here because the host is not running yet */
static gint64
day_start_in (const char *tz, int reset_minute, gint64 t_us)
{
  ArbProgram p = { 0 };
  gint64 start;

  p.timezone = g_time_zone_new_identifier (tz);
  g_assert_nonnull (p.timezone);
  p.reset_minute = reset_minute;
  start = arb_program_day_start (&p, t_us);
  g_time_zone_unref (p.timezone);
  return start;
}

/* the start of the trading day before the current one */
static gint64
yesterday_in (const char *tz, int reset_minute)
{
  return day_start_in (tz, reset_minute, day_start_in (tz, reset_minute, arb_now_us ()) - 1);
}

/* ---- the store, before and after --------------------------------------------- */

static ArbDecimal
dec (const char *text)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d = ARB_DECIMAL_ZERO;
  g_assert_true (arb_decimal_parse (text, ARB_ROUND_EXACT, &d, &error));
  g_assert_no_error (error);
  return d;
}

static char *
fmt (ArbDecimal d)
{
  return arb_decimal_to_string (d);
}

#define assert_dec(d, text)                                  \
  G_STMT_START                                               \
  {                                                          \
    g_autofree char *got_ = fmt (d);                         \
    g_autofree char *want_ = fmt (dec (text));               \
    g_assert_cmpstr (got_, ==, want_);                       \
  }                                                          \
  G_STMT_END

static ArbStore *
store_open (Life *l)
{
  g_autofree char *migrations = g_build_filename (ARB_SOURCE_ROOT, "data", "migrations", NULL);
  g_autoptr(GError) error = NULL;
  ArbStore *store = arb_store_open ("sqlite:arbiter.db", l->state, migrations, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

/* an assessment as the saga writes a new one, @days_ago days old (its day
 * anchors taken when it was created) */
static ArbAssessmentRow *
old_row (Life *l, const char *id, const char *program_name, const char *start, double days_ago)
{
  ArbAssessmentRow *r = g_new0 (ArbAssessmentRow, 1);
  gint64 now = arb_now_us ();
  ArbDecimal s = dec (start);

  r->id = g_strdup (id);
  r->owner = g_strdup (OWNER);
  r->program = g_strdup (program_name);
  r->status = ARB_ASSESSMENT_ACTIVE;
  r->starting_balance = r->balance = r->equity_hwm = r->day_start_equity = r->day_start_balance = s;
  r->balance_hwm = r->day_high_equity = r->eod_high_balance = r->eod_high_equity = s;
  r->created_us = now - (gint64) (days_ago * DAY_US);
  r->day_start_us = r->created_us;
  r->updated_us = r->created_us;
  r->version = 1;
  return r;
}

/* a closed round trip of @id that made @pnl: its position and two trades,
 * so that the ledger adds up (sum of cash effects = balance − start) */
static void
txn_round_trip (ArbStoreTxn *txn, const ArbAssessmentRow *r, gint64 at_us, const char *entry, const char *exit,
                const char *pnl)
{
  static guint n;
  g_autoptr(ArbPositionRow) p = g_new0 (ArbPositionRow, 1);
  g_autoptr(ArbTradeRow) open = g_new0 (ArbTradeRow, 1);
  g_autoptr(ArbTradeRow) close = g_new0 (ArbTradeRow, 1);

  n++;
  p->id = g_strdup_printf ("%s-pos-%u", r->id, n);
  p->assessment_id = g_strdup (r->id);
  p->order_id = g_strdup_printf ("%s-order-%u", r->id, n);
  p->market = g_strdup (BTC);
  p->side = ARB_SIDE_LONG;
  p->status = ARB_POSITION_CLOSED;
  p->initial_quantity = dec ("1");
  p->entry_price = dec (entry);
  p->realized_pnl = dec (pnl);
  p->close_reason = g_strdup ("close");
  p->opened_us = at_us;
  p->closed_us = p->updated_us = at_us + MIN_US;
  open->id = g_strdup_printf ("%s-open-%u", r->id, n);
  open->seq = 2 * n - 1;
  open->assessment_id = g_strdup (r->id);
  open->order_id = g_strdup (p->order_id);
  open->position_id = g_strdup (p->id);
  open->market = g_strdup (BTC);
  open->is_buy = TRUE;
  open->reason = ARB_TRADE_OPEN;
  open->quantity = dec ("1");
  open->price = dec (entry);
  open->quote_source = g_strdup ("feed");
  open->quote_time_us = open->executed_us = at_us;
  close->id = g_strdup_printf ("%s-close-%u", r->id, n);
  close->seq = 2 * n;
  close->assessment_id = g_strdup (r->id);
  close->position_id = g_strdup (p->id);
  close->market = g_strdup (BTC);
  close->reason = ARB_TRADE_CLOSE;
  close->quantity = dec ("1");
  close->price = dec (exit);
  close->realized_pnl = close->cash_effect = dec (pnl);
  close->quote_source = g_strdup ("feed");
  close->quote_time_us = close->executed_us = at_us + MIN_US;
  arb_store_txn_upsert_position (txn, p);
  arb_store_txn_insert_trade (txn, open);
  arb_store_txn_insert_trade (txn, close);
}

/* writes @rows (NULL-terminated; freed) into the store the host will open */
static void
store_write (Life *l, ArbAssessmentRow **rows, GPtrArray *positions)
{
  g_autoptr(ArbStore) store = store_open (l);
  g_autoptr(ArbStoreTxn) txn = arb_store_txn_new ();
  g_autoptr(GError) error = NULL;

  for (guint i = 0; rows[i] != NULL; i++)
    arb_store_txn_insert_assessment (txn, rows[i]);
  for (guint i = 0; positions != NULL && i < positions->len; i++)
    arb_store_txn_upsert_position (txn, g_ptr_array_index (positions, i));
  g_assert_true (arb_store_commit_sync (store, g_steal_pointer (&txn), &error));
  g_assert_no_error (error);
  for (guint i = 0; rows[i] != NULL; i++)
    arb_assessment_row_free (rows[i]);
}

static void
collect_row (ArbAssessmentRow *row, gpointer data)
{
  g_hash_table_replace (data, row->id, row);
}

static void
drop_position (ArbPositionRow *row, gpointer data)
{
  arb_position_row_free (row);
}

static void
drop_idempotency (ArbIdempotencyRow *row, gpointer data)
{
  arb_idempotency_row_free (row);
}

static void
drop_seq (gint64 seq, gpointer data)
{
}

/* the assessment rows as a restarted host would load them: id → row */
static GHashTable *
store_read (Life *l)
{
  static const ArbStoreLoadFuncs funcs = { collect_row, drop_position, drop_idempotency, drop_seq };
  g_autoptr(ArbStore) store = store_open (l);
  g_autoptr(GError) error = NULL;
  GHashTable *rows = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) arb_assessment_row_free);

  g_assert_true (arb_store_load (store, &funcs, 0, rows, &error));
  g_assert_no_error (error);
  return rows;
}

/* ---- events ------------------------------------------------------------------- */

typedef struct {
  gboolean   done;
  GPtrArray *rows;
} Events;

static void
on_events (GPtrArray *rows, const GError *error, gpointer data)
{
  Events *e = data;
  g_assert_no_error (error);
  e->rows = g_ptr_array_ref (rows);
  e->done = TRUE;
}

static gboolean
events_done (Life *l, gconstpointer data)
{
  return ((const Events *) data)->done;
}

/* the data of the last event of @type of @id in GET /assessments/{id}/events
 * (the store's assessment_events), as JSON; NULL when there is none */
static JsonNode *
last_event (Life *l, const char *id, const char *type)
{
  Events e = { 0 };
  JsonNode *found = NULL;

  arb_store_list_assessment_events_async (l->host->store, id, 100, on_events, &e);
  g_assert_true (wait_for (l, events_done, &e));
  for (guint i = 0; i < e.rows->len; i++)
    {
      ArbOutboxRow *o = g_ptr_array_index (e.rows, i);
      g_autoptr(GError) error = NULL;
      JsonNode *env;
      if (!g_str_equal (o->type, type))
        continue;
      env = json_from_string (o->payload, &error);
      g_assert_no_error (error);
      g_clear_pointer (&found, json_node_unref);
      found = json_node_ref (json_object_get_member (json_node_get_object (env), "data"));
      json_node_unref (env);
    }
  g_ptr_array_unref (e.rows);
  return found;
}

/* a member of an object by a path "evidence.details.floor" */
static const char *
json_at (JsonNode *node, const char *path)
{
  g_auto(GStrv) parts = g_strsplit (path, ".", -1);
  JsonNode *n = node;

  for (guint i = 0; parts[i] != NULL; i++)
    {
      JsonObject *o;
      g_assert_true (JSON_NODE_HOLDS_OBJECT (n));
      o = json_node_get_object (n);
      if (!json_object_has_member (o, parts[i]))
        return NULL;
      n = json_object_get_member (o, parts[i]);
    }
  return JSON_NODE_HOLDS_VALUE (n) ? json_node_get_string (n) : NULL;
}

/* the closed positions of @id, newest first */
static GPtrArray *
closed_positions (Life *l, const char *id)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *rows = arb_store_list_closed_positions_sync (l->host->store, id, NULL, 100, &error);
  g_assert_no_error (error);
  return rows;
}

/* ======================================================================== */
/* The consistency rule: a gate that delays the pass                        */

static const char consistency_groups[] =
  "[program:cons]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "profit_target_pct=10\n"
  "consistency_pct=50\n";

static void
test_consistency (void)
{
  g_autoptr(Life) l = life_new (consistency_groups);
  g_autofree char *p1 = NULL;
  g_autofree char *p2 = NULL;
  g_autoptr(JsonNode) passed = NULL;
  ArbAccount *a;

  /* yesterday made 6,000: the assessment is two days old, its anchors were
   * taken at the start of yesterday (100,000), its balance is 106,000 */
  {
    g_autoptr(ArbStore) store = store_open (l);
    g_autoptr(ArbStoreTxn) txn = arb_store_txn_new ();
    g_autoptr(GError) error = NULL;
    ArbAssessmentRow *r = old_row (l, "cons-1", "cons", "100000", 2);
    gint64 yesterday = arb_now_us () - DAY_US;
    r->day_start_us = yesterday_in ("UTC", 0);
    r->balance = r->equity_hwm = r->balance_hwm = r->day_high_equity = dec ("106000");
    r->trading_days = 1;
    r->last_fill_us = yesterday;
    r->last_fill_day_us = r->day_start_us;
    arb_store_txn_insert_assessment (txn, r);
    txn_round_trip (txn, r, yesterday - MIN_US, "50000", "56000", "6000");
    g_assert_true (arb_store_commit_sync (store, g_steal_pointer (&txn), &error));
    g_assert_no_error (error);
    arb_assessment_row_free (r);
  }
  life_start (l);
  a = account_of (l, "cons-1");
  /* the host's reset at its start closed yesterday: its gain is the best
   * day so far, and today is anchored at 106,000 */
  assert_dec (a->row->best_day_profit, "6000");
  assert_dec (a->row->day_start_balance, "106000");
  assert_dec (a->row->day_start_equity, "106000");
  g_assert_cmpint (a->row->day_start_us, ==, arb_program_day_start (program_of (l, "cons"), arb_now_us ()));

  /* today: +4,000 reaches the target (110,000) with no open position, but
   * the best day (6,000) is above 50% of the total profit (10,000) */
  quote (l, BTC, "50000");
  p1 = open_position (l, "cons-1", TRUE, "1");
  quote (l, BTC, "54000");
  /* an open position: no pass, whatever the equity */
  wait_settled (l, "cons-1");
  g_assert_cmpint (a->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  close_position (l, p1);
  wait_settled (l, "cons-1");
  run_for (200);
  assert_dec (a->row->balance, "110000");
  g_assert_cmpint (a->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  g_assert_cmpint (a->row->trading_days, ==, 2);
  g_assert_null (last_event (l, "cons-1", "assessment.passed"));

  /* +2,000 more: total 12,000, today 6,000, best 6,000 ≤ 50% of 12,000 */
  p2 = open_position (l, "cons-1", TRUE, "1");
  quote (l, BTC, "56000");
  close_position (l, p2);
  wait_status (l, "cons-1", "passed");
  assert_dec (a->row->balance, "112000");
  g_assert_cmpstr (a->row->status_reason, ==, "profit target reached: equity 112000.00000000");
  passed = last_event (l, "cons-1", "assessment.passed");
  g_assert_nonnull (passed);
  g_assert_cmpstr (json_at (passed, "status"), ==, "passed");
  g_assert_cmpstr (json_at (passed, "evidence.rule"), ==, "profit_target");
  g_assert_cmpstr (json_at (passed, "evidence.target"), ==, "110000.00000000");
  g_assert_cmpstr (json_at (passed, "evidence.totalProfit"), ==, "12000.00000000");
  g_assert_cmpstr (json_at (passed, "evidence.bestDayProfit"), ==, "6000.00000000");
  g_assert_cmpstr (json_at (passed, "evidence.consistencyPct"), ==, "50.00000000");
}

/* ======================================================================== */
/* Minimum trading days                                                     */

static const char days_groups[] =
  "[program:days]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "profit_target_pct=10\n"
  "min_trading_days=3\n";

static void
test_min_trading_days (void)
{
  g_autoptr(Life) l = life_new (days_groups);
  ArbAssessmentRow *rows[3];
  const char *ids[] = { "days-1", "days-2" };
  g_autoptr(JsonNode) passed = NULL;
  ArbAccount *one, *two;

  /* both traded before: one on one day, the other on two, the last fill
   * yesterday; today's fills add a day each */
  for (guint i = 0; i < 2; i++)
    {
      rows[i] = old_row (l, ids[i], "days", "100000", 5);
      rows[i]->trading_days = i + 1;
      rows[i]->last_fill_us = arb_now_us () - DAY_US;
      rows[i]->last_fill_day_us = yesterday_in ("UTC", 0);
    }
  rows[2] = NULL;
  store_write (l, rows, NULL);
  life_start (l);
  one = account_of (l, "days-1");
  two = account_of (l, "days-2");

  quote (l, BTC, "50000");
  {
    g_autofree char *p1 = open_position (l, "days-1", TRUE, "1");
    g_autofree char *p2 = open_position (l, "days-2", TRUE, "1");
    quote (l, BTC, "60000");
    close_position (l, p1);
    close_position (l, p2);
  }
  /* both at 110,000, the target; the one with three trading days passes */
  wait_status (l, "days-2", "passed");
  wait_settled (l, "days-1");
  run_for (200);
  g_assert_cmpint (two->row->trading_days, ==, 3);
  g_assert_cmpint (one->row->trading_days, ==, 2);
  assert_dec (one->row->balance, "110000");
  g_assert_cmpint (one->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  passed = last_event (l, "days-2", "assessment.passed");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (json_node_get_object (passed),
                                                                              "evidence"),
                                               "tradingDays"),
                   ==, 3);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (json_node_get_object (passed),
                                                                              "evidence"),
                                               "minTradingDays"),
                   ==, 3);

  /* more fills the same day are not another trading day */
  {
    g_autofree char *p = open_position (l, "days-1", TRUE, "1");
    close_position (l, p);
  }
  wait_settled (l, "days-1");
  run_for (200);
  g_assert_cmpint (one->row->trading_days, ==, 2);
  g_assert_cmpint (one->row->status, ==, ARB_ASSESSMENT_ACTIVE);
}

/* ======================================================================== */
/* max_days and inactivity_days                                             */

static const char time_groups[] =
  "[program:timed]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "profit_target_pct=10\n"
  "max_days=2\n"
  "\n"
  "[program:idle]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "max_days=30\n"
  "inactivity_days=2\n";

static void
test_time_rules (void)
{
  g_autoptr(Life) l = life_new (time_groups);
  ArbAssessmentRow *rows[6];
  g_autoptr(GPtrArray) positions = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_position_row_free);
  g_autoptr(GPtrArray) closed = NULL;
  g_autoptr(JsonNode) failed = NULL;
  gint64 now = arb_now_us ();
  ArbPositionRow *p;

  /* two days and a minute old, a fill an hour ago, a position open */
  rows[0] = old_row (l, "expired", "timed", "100000", 2 + 1.0 / 1440);
  rows[0]->trading_days = 1;
  rows[0]->last_fill_us = now - HOUR_US;
  rows[0]->last_fill_day_us = day_start_in ("UTC", 0, rows[0]->last_fill_us);
  /* a day old: two to go */
  rows[1] = old_row (l, "young", "timed", "100000", 1);
  /* ten days old, the last fill two days and a minute ago */
  rows[2] = old_row (l, "idle", "idle", "100000", 10);
  rows[2]->trading_days = 3;
  rows[2]->last_fill_us = now - 2 * DAY_US - MIN_US;
  rows[2]->last_fill_day_us = day_start_in ("UTC", 0, rows[2]->last_fill_us);
  /* never traded, created two days and a minute ago: inactive since then */
  rows[3] = old_row (l, "never", "idle", "100000", 2 + 1.0 / 1440);
  /* ten days old, a fill a day ago */
  rows[4] = old_row (l, "busy", "idle", "100000", 10);
  rows[4]->trading_days = 5;
  rows[4]->last_fill_us = now - DAY_US;
  rows[4]->last_fill_day_us = day_start_in ("UTC", 0, rows[4]->last_fill_us);
  rows[5] = NULL;
  p = g_new0 (ArbPositionRow, 1);
  p->id = g_strdup ("expired-pos");
  p->assessment_id = g_strdup ("expired");
  p->order_id = g_strdup ("expired-order");
  p->market = g_strdup (BTC);
  p->side = ARB_SIDE_LONG;
  p->status = ARB_POSITION_OPEN;
  p->quantity = p->initial_quantity = dec ("1");
  p->entry_price = dec ("50000");
  p->margin = dec ("5000");
  p->opened_us = p->updated_us = now - HOUR_US;
  g_ptr_array_add (positions, p);
  store_write (l, rows, positions);

  life_start (l);
  g_assert_cmpuint (account_of (l, "expired")->positions->len, ==, 1);
  /* the liquidation of what is open closes at the market */
  quote (l, BTC, "51000");
  wait_settled (l, "expired");
  /* what the marker's one-minute timer runs */
  arb_marker_check_time_rules (l->host->marker);
  wait_status (l, "expired", "failed");
  wait_status (l, "idle", "failed");
  wait_status (l, "never", "failed");
  run_for (200);
  g_assert_cmpint (account_of (l, "young")->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  g_assert_cmpint (account_of (l, "busy")->row->status, ==, ARB_ASSESSMENT_ACTIVE);

  g_assert_cmpstr (account_of (l, "expired")->row->status_reason, ==, "max_days: 2 days passed without passing");
  g_assert_cmpstr (account_of (l, "idle")->row->status_reason, ==, "inactivity: no fill for 2 days");
  g_assert_cmpstr (account_of (l, "never")->row->status_reason, ==, "inactivity: no fill for 2 days");
  /* the open position closed at the market (51,000: +1,000), reason liquidation */
  g_assert_cmpuint (account_of (l, "expired")->positions->len, ==, 0);
  assert_dec (account_of (l, "expired")->row->balance, "101000");
  closed = closed_positions (l, "expired");
  g_assert_cmpuint (closed->len, ==, 1);
  g_assert_cmpstr (((ArbPositionRow *) g_ptr_array_index (closed, 0))->close_reason, ==, "liquidation");
  failed = last_event (l, "expired", "assessment.failed");
  g_assert_nonnull (failed);
  g_assert_cmpstr (json_at (failed, "reason"), ==, "max_days: 2 days passed without passing");
  g_assert_cmpstr (json_at (failed, "evidence.rule"), ==, "max_days");
  g_assert_cmpstr (json_at (failed, "balance"), ==, "101000.00000000");
  {
    g_autoptr(JsonNode) idle = last_event (l, "idle", "assessment.failed");
    g_assert_cmpstr (json_at (idle, "evidence.rule"), ==, "inactivity_days");
  }

  /* the timer's next run changes nothing */
  arb_marker_check_time_rules (l->host->marker);
  run_for (200);
  g_assert_cmpint (account_of (l, "young")->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  g_assert_cmpint (account_of (l, "busy")->row->status, ==, ARB_ASSESSMENT_ACTIVE);
}

/* ======================================================================== */
/* The day anchors, taken at a reset                                        */

static const char anchor_groups[] =
  "[program:prague]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "timezone=Europe/Prague\n"
  "daily_reset=00:00\n"
  "\n"
  "[program:chicago]\n"
  "starting_balance=100000\n"
  "leverage=10\n"
  "timezone=America/Chicago\n"
  "daily_reset=17:00\n";

static void
test_day_anchors (void)
{
  g_autoptr(Life) l = life_new (anchor_groups);
  ArbAssessmentRow *rows[4];
  g_autoptr(GHashTable) stored = NULL;
  gint64 prague_today = day_start_in ("Europe/Prague", 0, arb_now_us ());
  gint64 chicago_today = day_start_in ("America/Chicago", 17 * 60, arb_now_us ());
  ArbAccount *a, *b, *c;
  ArbAccountView view;
  g_autoptr(GError) error = NULL;

  /* yesterday (Prague) rose to 104,000 and ended at 103,000 */
  rows[0] = old_row (l, "prague-1", "prague", "100000", 3);
  rows[0]->day_start_us = yesterday_in ("Europe/Prague", 0);
  rows[0]->balance = dec ("103000");
  rows[0]->equity_hwm = rows[0]->balance_hwm = rows[0]->day_high_equity = dec ("104000");
  /* anchored at today's 17:00 in Chicago already: left alone */
  rows[1] = old_row (l, "chicago-1", "chicago", "100000", 3);
  rows[1]->day_start_us = chicago_today;
  rows[1]->balance = dec ("101000");
  rows[1]->equity_hwm = rows[1]->balance_hwm = rows[1]->day_high_equity = dec ("101500");
  /* a week without a reset (the daemon was down): one new day, at 98,000,
   * below the old end-of-day high of 102,000 */
  rows[2] = old_row (l, "chicago-2", "chicago", "100000", 10);
  rows[2]->day_start_us = day_start_in ("America/Chicago", 17 * 60, chicago_today - 6 * DAY_US);
  rows[2]->balance = dec ("98000");
  rows[2]->eod_high_balance = rows[2]->balance_hwm = rows[2]->equity_hwm = dec ("102000");
  rows[3] = NULL;
  store_write (l, rows, NULL);

  /* the host takes the anchors as it starts (arb_marker_take_day_anchors) */
  life_start (l);
  g_assert_cmpint (prague_today, ==, arb_program_day_start (program_of (l, "prague"), arb_now_us ()));
  a = account_of (l, "prague-1");
  b = account_of (l, "chicago-1");
  c = account_of (l, "chicago-2");

  g_assert_cmpint (a->row->day_start_us, ==, prague_today);
  assert_dec (a->row->day_start_balance, "103000");
  assert_dec (a->row->day_start_equity, "103000");
  assert_dec (a->row->eod_high_balance, "103000");
  assert_dec (a->row->eod_high_equity, "103000");
  /* the day's peak starts again; the high-water marks stay */
  assert_dec (a->row->day_high_equity, "103000");
  assert_dec (a->row->balance_hwm, "104000");
  assert_dec (a->row->equity_hwm, "104000");
  /* the day that ended gained 3,000 */
  assert_dec (a->row->best_day_profit, "3000");

  g_assert_cmpint (b->row->day_start_us, ==, chicago_today);
  assert_dec (b->row->day_start_balance, "100000");
  assert_dec (b->row->day_high_equity, "101500");
  assert_dec (b->row->best_day_profit, "0");

  g_assert_cmpint (c->row->day_start_us, ==, chicago_today);
  assert_dec (c->row->day_start_balance, "98000");
  assert_dec (c->row->day_start_equity, "98000");
  assert_dec (c->row->eod_high_balance, "102000");
  assert_dec (c->row->eod_high_equity, "100000");
  assert_dec (c->row->best_day_profit, "0");

  /* what a risk plugin is told: the bounds of the trading day */
  g_assert_true (arb_account_view_init (&view, l->host->trading, a, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arb_account_view_get_day_start_time (&view), ==, prague_today);
  g_assert_cmpint (arb_account_view_get_next_day_start (&view), ==,
                   arb_program_next_day_start (program_of (l, "prague"), arb_account_view_get_time (&view)));
  g_assert_cmpint (arb_account_view_get_next_day_start (&view), >, arb_account_view_get_time (&view));
  assert_dec (arb_account_view_get_eod_high (&view, FALSE), "103000");
  assert_dec (arb_account_view_get_balance_high_water_mark (&view), "104000");
  assert_dec (arb_account_view_get_day_high_equity (&view), "103000");

  /* the marker writes what changed within a second; a restart reads it */
  run_for (1500);
  life_stop (l);
  stored = store_read (l);
  {
    ArbAssessmentRow *r = g_hash_table_lookup (stored, "prague-1");
    g_assert_nonnull (r);
    g_assert_cmpint (r->day_start_us, ==, prague_today);
    assert_dec (r->day_start_balance, "103000");
    assert_dec (r->eod_high_balance, "103000");
    assert_dec (r->day_high_equity, "103000");
    assert_dec (r->balance_hwm, "104000");
    assert_dec (r->best_day_profit, "3000");
    r = g_hash_table_lookup (stored, "chicago-2");
    g_assert_cmpint (r->day_start_us, ==, chicago_today);
    assert_dec (r->day_start_balance, "98000");
    assert_dec (r->eod_high_balance, "102000");
  }
}

/* The anchors of a day that began while the daemon was down, for accounts
 * with open positions: the equity at the start of the day needs their
 * prices, so the anchors wait for a quote of every market held; at the end
 * of the wait, what still has none counts at its entry price */

static gboolean
anchored (Life *l, gconstpointer id)
{
  ArbAccount *a = account_of (l, id);
  return a->row->day_start_us == arb_program_day_start (program_of (l, a->row->program), arb_now_us ());
}

static ArbPositionRow *
open_row (const char *id, const char *assessment, const char *market, const char *entry, gint64 at)
{
  ArbPositionRow *p = g_new0 (ArbPositionRow, 1);
  p->id = g_strdup (id);
  p->assessment_id = g_strdup (assessment);
  p->order_id = g_strdup_printf ("%s-order", id);
  p->market = g_strdup (market);
  p->side = ARB_SIDE_LONG;
  p->status = ARB_POSITION_OPEN;
  p->quantity = p->initial_quantity = dec ("1");
  p->entry_price = dec (entry);
  p->margin = dec ("1000");
  p->opened_us = p->updated_us = at;
  return p;
}

/* the assessment's answer (GET /assessments/{id}): its "unquotedMarkets"
 * joined with commas, and its equity */
static char *
unquoted_markets (Life *l, ArbAccount *a, char **equity)
{
  g_auto(ArbJson) j = { 0 };
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  g_auto(GStrv) joined = NULL;
  JsonArray *list;

  arb_json_init (&j, 256);
  arb_json_add_assessment (&j, l->host->trading, a);
  text = arb_json_steal (&j, NULL);
  node = json_from_string (text, &error);
  g_assert_no_error (error);
  list = json_object_get_array_member (json_node_get_object (node), "unquotedMarkets");
  g_assert_nonnull (list);
  for (guint i = 0; i < json_array_get_length (list); i++)
    g_strv_builder_add (names, json_array_get_string_element (list, i));
  joined = g_strv_builder_end (names);
  *equity = g_strdup (json_at (node, "equity"));
  return g_strjoinv (",", joined);
}

static void
test_anchors_wait_for_quotes (void)
{
  g_autoptr(Life) l = life_new (anchor_groups);
  g_autoptr(GPtrArray) positions = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_position_row_free);
  g_autoptr(GHashTable) stored = NULL;
  gint64 yesterday = yesterday_in ("Europe/Prague", 0);
  ArbAssessmentRow *rows[4];
  ArbAccount *held, *two, *flat;
  Answer ans = { 0 };

  /* each anchored at the start of yesterday at 100,000, with 1 BTC bought
   * at 50,000 (and "two" 1 ETH at 3,000) */
  rows[0] = old_row (l, "held", "prague", "100000", 3);
  rows[1] = old_row (l, "two", "prague", "100000", 3);
  rows[2] = old_row (l, "flat", "prague", "100000", 3);
  for (guint i = 0; i < 3; i++)
    rows[i]->day_start_us = yesterday;
  rows[3] = NULL;
  g_ptr_array_add (positions, open_row ("held-btc", "held", BTC, "50000", yesterday + HOUR_US));
  g_ptr_array_add (positions, open_row ("two-btc", "two", BTC, "50000", yesterday + HOUR_US));
  g_ptr_array_add (positions, open_row ("two-eth", "two", "crypto:ETH-USD", "3000", yesterday + HOUR_US));
  store_write (l, rows, positions);

  life_start (l);
  held = account_of (l, "held");
  two = account_of (l, "two");
  flat = account_of (l, "flat");
  /* no position: anchored at once; the others wait, yesterday's anchors
   * still in place */
  g_assert_true (anchored (l, "flat"));
  assert_dec (flat->row->day_start_equity, "100000");
  g_assert_cmpint (held->row->day_start_us, ==, yesterday);
  g_assert_cmpint (two->row->day_start_us, ==, yesterday);

  /* BTC at 52,000: "held" is valued, +2,000 unrealised */
  quote (l, BTC, "52000");
  g_assert_true (wait_for (l, anchored, "held"));
  assert_dec (held->row->day_start_balance, "100000");
  assert_dec (held->row->day_start_equity, "102000");
  assert_dec (held->row->day_high_equity, "102000");
  assert_dec (held->row->eod_high_equity, "102000");
  /* yesterday's gain, open positions included */
  assert_dec (held->row->best_day_profit, "2000");
  /* "two" still lacks ETH */
  run_for (100);
  g_assert_cmpint (two->row->day_start_us, ==, yesterday);
  /* and its answer says that ETH counts at entry: 100,000 + 2,000 on BTC */
  {
    g_autofree char *equity = NULL;
    g_autofree char *markets = unquoted_markets (l, two, &equity);
    g_assert_cmpstr (markets, ==, "crypto:ETH-USD");
    g_assert_cmpstr (equity, ==, "102000.00000000");
    g_clear_pointer (&markets, g_free);
    g_clear_pointer (&equity, g_free);
    markets = unquoted_markets (l, held, &equity);
    g_assert_cmpstr (markets, ==, "");
  }
  /* and cannot trade, even BTC: its equity is not known (503, ETH named);
   * "held" can */
  order (l, "two", TRUE, "0.1", &ans);
  g_assert_error (ans.error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA);
  g_assert_nonnull (strstr (ans.error->message, "crypto:ETH-USD"));
  order (l, "held", TRUE, "0.1", &ans);
  g_assert_no_error (ans.error);

  /* the wait ends: ETH counts at its entry price */
  arb_marker_end_anchor_wait (l->host->marker);
  g_assert_true (anchored (l, "two"));
  assert_dec (two->row->day_start_equity, "102000");
  /* orders wait for the quote itself */
  order (l, "two", TRUE, "0.1", &ans);
  g_assert_error (ans.error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA);
  quote (l, "crypto:ETH-USD", "3000");
  {
    g_autofree char *equity = NULL;
    g_autofree char *markets = unquoted_markets (l, two, &equity);
    g_assert_cmpstr (markets, ==, "");
  }
  order (l, "two", TRUE, "0.1", &ans);
  g_assert_no_error (ans.error);
  answer_clear (&ans);

  /* written within a second; a restart reads them */
  run_for (1500);
  life_stop (l);
  stored = store_read (l);
  {
    ArbAssessmentRow *r = g_hash_table_lookup (stored, "held");
    g_assert_cmpint (r->day_start_us, ==, day_start_in ("Europe/Prague", 0, arb_now_us ()));
    assert_dec (r->day_start_equity, "102000");
    assert_dec (r->best_day_profit, "2000");
  }
}

/* ======================================================================== */
/* Accounts in (created, id) order, whatever order the store gives them     */

/* the ids of arb_trading_accounts_in_order (@owner), joined with commas */
static char *
ids_in_order (Life *l, const char *owner)
{
  const GPtrArray *list = arb_trading_accounts_in_order (l->host->trading, owner);
  g_autoptr(GString) out = g_string_new (NULL);
  for (guint i = 0; i < list->len; i++)
    g_string_append_printf (out, "%s%s", i > 0 ? "," : "", ((ArbAccount *) g_ptr_array_index (list, i))->row->id);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_accounts_in_order (void)
{
  g_autoptr(Life) l = life_new (anchor_groups);
  g_autoptr(GPtrArray) none = g_ptr_array_new ();
  ArbAssessmentRow *rows[6];
  g_autofree char *fresh = NULL;

  /* written newest first, one of them another owner's, two at the same
   * instant (the id decides) */
  rows[0] = old_row (l, "c", "prague", "100000", 1);
  rows[1] = old_row (l, "b", "prague", "100000", 2);
  rows[2] = old_row (l, "a2", "prague", "100000", 2);
  rows[2]->created_us = rows[1]->created_us;
  rows[3] = old_row (l, "z", "prague", "100000", 3);
  g_free (rows[3]->owner);
  rows[3]->owner = g_strdup ("trader-2");
  rows[4] = old_row (l, "a", "prague", "100000", 4);
  rows[5] = NULL;
  store_write (l, rows, none);
  life_start (l);

  {
    g_autofree char *all = ids_in_order (l, NULL);
    g_autofree char *mine = ids_in_order (l, OWNER);
    g_autofree char *theirs = ids_in_order (l, "trader-2");
    g_autofree char *nobody = ids_in_order (l, "trader-3");
    g_assert_cmpstr (all, ==, "a,z,a2,b,c");
    g_assert_cmpstr (mine, ==, "a,a2,b,c");
    g_assert_cmpstr (theirs, ==, "z");
    g_assert_cmpstr (nobody, ==, "");
  }
  /* a new one comes last, in both lists; the copy keeps the order */
  fresh = create_assessment (l, "prague");
  {
    g_autofree char *all = ids_in_order (l, NULL);
    g_autofree char *want = g_strdup_printf ("a,z,a2,b,c,%s", fresh);
    g_autoptr(GPtrArray) copy = arb_trading_list_accounts (l->host->trading, OWNER);
    g_assert_cmpstr (all, ==, want);
    g_assert_cmpuint (copy->len, ==, 5);
    g_assert_cmpstr (((ArbAccount *) g_ptr_array_index (copy, 4))->row->id, ==, fresh);
  }
}

/* ======================================================================== */
/* A breach by unrealised loss alone                                        */

static const char breach_groups[] =
  "[program:guarded]\n"
  "starting_balance=100000\n"
  /* the margin of 2 BTC, 1,000, is all an order without a stop can lose */
  "leverage=100\n"
  "risk=floor\n"
  "\n"
  "[risk:floor]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=10\n";

static void
test_unrealised_breach (void)
{
  g_autoptr(Life) l = life_new (breach_groups);
  g_autofree char *id = NULL;
  g_autofree char *pos = NULL;
  g_autoptr(GPtrArray) closed = NULL;
  g_autoptr(JsonNode) failed = NULL;
  ArbAccount *a;
  JsonArray *quotes;

  life_start (l);
  id = create_assessment (l, "guarded");
  a = account_of (l, id);
  quote (l, BTC, "50000");
  pos = open_position (l, id, TRUE, "2");
  /* 2 × −4,999.99999999: equity 90,000.00000002, above the floor 90,000 */
  quote (l, BTC, "45000.00000001");
  wait_settled (l, id);
  run_for (100);
  g_assert_cmpint (a->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  assert_dec (a->row->balance, "100000");
  /* 45,000: equity 90,000 on the floor, the balance untouched */
  quote (l, BTC, "45000");
  wait_status (l, id, "failed");
  g_assert_cmpstr (a->row->status_reason, ==,
                   "max_loss: equity 90000.00 is at or below the max-loss floor 90000.00 (static: start 100000.00 − "
                   "10% of start (10000.00) = 90000.00)");
  /* every position closed at the market */
  g_assert_cmpuint (a->positions->len, ==, 0);
  assert_dec (a->row->balance, "90000");
  closed = closed_positions (l, id);
  g_assert_cmpuint (closed->len, ==, 1);
  g_assert_cmpstr (((ArbPositionRow *) g_ptr_array_index (closed, 0))->id, ==, pos);
  g_assert_cmpstr (((ArbPositionRow *) g_ptr_array_index (closed, 0))->close_reason, ==, "liquidation");
  /* the evidence, as GET /assessments/{id}/events gives it */
  failed = last_event (l, id, "assessment.failed");
  g_assert_nonnull (failed);
  g_assert_cmpstr (json_at (failed, "status"), ==, "failed");
  g_assert_cmpstr (json_at (failed, "balance"), ==, "90000.00000000");
  g_assert_cmpstr (json_at (failed, "evidence.rule"), ==, "max_loss");
  g_assert_cmpstr (json_at (failed, "evidence.riskInstance"), ==, "risk:floor");
  g_assert_cmpstr (json_at (failed, "evidence.equity"), ==, "90000.00000000");
  g_assert_cmpstr (json_at (failed, "evidence.balance"), ==, "100000.00000000");
  g_assert_cmpstr (json_at (failed, "evidence.unrealizedPnl"), ==, "-10000.00000000");
  g_assert_cmpstr (json_at (failed, "evidence.details.floor"), ==, "90000.00000000");
  g_assert_cmpstr (json_at (failed, "evidence.details.floorComputation"), ==,
                   "static: start 100000.00 − 10% of start (10000.00) = 90000.00");
  quotes = json_object_get_array_member (
    json_object_get_object_member (json_node_get_object (failed), "evidence"), "quotes");
  g_assert_cmpuint (json_array_get_length (quotes), ==, 1);
  {
    JsonObject *q = json_array_get_object_element (quotes, 0);
    g_assert_cmpstr (json_object_get_string_member (q, "market"), ==, BTC);
    g_assert_cmpstr (json_object_get_string_member (q, "bid"), ==, "45000.00000000");
    g_assert_cmpstr (json_object_get_string_member (q, "source"), ==, "feed");
    g_assert_true (json_object_has_member (q, "sourceTime"));
  }
}

/* ======================================================================== */
/* A soft daily limit: pause, orders refused, allowed after                 */

static const char pause_groups[] =
  "[program:soft]\n"
  "starting_balance=100000\n"
  "leverage=100\n"
  "risk=pause\n"
  "\n"
  /* a hard floor listed after the soft one */
  "[program:both]\n"
  "starting_balance=100000\n"
  "leverage=100\n"
  "risk=pause,hard\n"
  "\n"
  "[risk:pause]\n"
  "plugin=risk-drawdown\n"
  "daily_loss_pct=5\n"
  "daily_mode=pause\n"
  "\n"
  "[risk:hard]\n"
  "plugin=risk-drawdown\n"
  "max_loss_pct=4\n";

static void
assert_refused_paused (Life *l, const char *id, gint64 until)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (until / G_USEC_PER_SEC);
  g_autofree char *when = g_date_time_format (t, "%Y-%m-%dT%H:%M:%S");
  Answer a = { 0 };

  order (l, id, TRUE, "0.1", &a);
  g_assert_error (a.error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_RISK_LIMIT);
  g_assert_true (g_str_has_prefix (a.error->message, "trading is paused by the daily loss limit until "));
  g_assert_nonnull (strstr (a.error->message, when));
  answer_clear (&a);
}

static void
test_pause (void)
{
  g_autoptr(Life) l = life_new (pause_groups);
  g_autofree char *id = NULL;
  g_autofree char *pos = NULL;
  g_autoptr(GPtrArray) closed = NULL;
  g_autoptr(JsonNode) paused = NULL;
  gint64 until;
  ArbAccount *a;

  life_start (l);
  id = create_assessment (l, "soft");
  a = account_of (l, id);
  quote (l, BTC, "50000");
  pos = open_position (l, id, TRUE, "2");
  quote (l, BTC, "47500.00000001");
  wait_settled (l, id);
  g_assert_cmpint (a->row->paused_until_us, ==, 0);
  /* equity 95,000: the daily floor 100,000 − 5,000 */
  quote (l, BTC, "47500");
  until = arb_program_next_day_start (program_of (l, "soft"), arb_now_us ());
  g_assert_true (wait_for (l, settled, id) && a->row->paused_until_us != 0);
  wait_settled (l, id);
  g_assert_cmpint (a->row->paused_until_us, ==, until);
  g_assert_cmpint (a->row->status, ==, ARB_ASSESSMENT_ACTIVE);
  g_assert_cmpuint (a->positions->len, ==, 0);
  assert_dec (a->row->balance, "95000");
  closed = closed_positions (l, id);
  g_assert_cmpuint (closed->len, ==, 1);
  g_assert_cmpstr (((ArbPositionRow *) g_ptr_array_index (closed, 0))->close_reason, ==, "liquidation");
  paused = last_event (l, id, "assessment.paused");
  g_assert_nonnull (paused);
  g_assert_cmpstr (json_at (paused, "status"), ==, "active");
  g_assert_nonnull (json_at (paused, "pausedUntil"));
  g_assert_cmpstr (json_at (paused, "evidence.rule"), ==, "daily_loss_pause");
  g_assert_cmpstr (json_at (paused, "evidence.details.mode"), ==, "pause");
  g_assert_cmpstr (json_at (paused, "evidence.details.floor"), ==, "95000.00000000");
  g_assert_null (last_event (l, id, "assessment.failed"));

  /* no order until the next reset, even with equity back above the floor */
  quote (l, BTC, "50000");
  assert_refused_paused (l, id, until);
  /* the pause is the assessment's: a restart keeps it */
  life_stop (l);
  life_start (l);
  quote (l, BTC, "50000");
  assert_refused_paused (l, id, until);
  life_stop (l);

  /* the next day: the pause has ended and the reset (missed while down)
   * takes new anchors when the host starts */
  {
    g_autoptr(GHashTable) stored = store_read (l);
    ArbAssessmentRow *r = g_hash_table_lookup (stored, id);
    g_autoptr(ArbStore) store = store_open (l);
    g_autoptr(ArbStoreTxn) txn = arb_store_txn_new ();
    g_autoptr(GError) error = NULL;

    g_assert_cmpint (r->paused_until_us, ==, until);
    r->paused_until_us = arb_now_us () - G_USEC_PER_SEC;
    r->day_start_us = yesterday_in ("UTC", 0);
    arb_store_txn_update_assessment (txn, r);
    g_assert_true (arb_store_commit_sync (store, g_steal_pointer (&txn), &error));
    g_assert_no_error (error);
  }
  life_start (l);
  a = account_of (l, id);
  assert_dec (a->row->day_start_balance, "95000");
  quote (l, BTC, "50000");
  {
    g_autofree char *again = open_position (l, id, TRUE, "0.1");
    g_assert_nonnull (again);
  }
  g_assert_cmpint (a->row->status, ==, ARB_ASSESSMENT_ACTIVE);
}

/* a breach of a hard floor wins over a pause of a rule listed before it */
static void
test_pause_then_breach (void)
{
  g_autoptr(Life) l = life_new (pause_groups);
  g_autofree char *id = NULL;
  g_autofree char *pos = NULL;
  ArbAccount *a;

  life_start (l);
  id = create_assessment (l, "both");
  a = account_of (l, id);
  quote (l, BTC, "50000");
  pos = open_position (l, id, TRUE, "2");
  /* equity 95,000: on the daily floor (pause) and below the max-loss floor
   * 96,000 of the next rule (fail) */
  quote (l, BTC, "47500");
  wait_status (l, id, "failed");
  g_assert_true (g_str_has_prefix (a->row->status_reason, "max_loss: "));
  g_assert_cmpuint (a->positions->len, ==, 0);
  g_assert_cmpint (a->row->paused_until_us, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/lifecycle/pass/consistency-gate", test_consistency);
  g_test_add_func ("/lifecycle/pass/min-trading-days", test_min_trading_days);
  g_test_add_func ("/lifecycle/fail/max-days-and-inactivity", test_time_rules);
  g_test_add_func ("/lifecycle/day-anchors", test_day_anchors);
  g_test_add_func ("/lifecycle/day-anchors/wait-for-quotes", test_anchors_wait_for_quotes);
  g_test_add_func ("/lifecycle/accounts-in-order", test_accounts_in_order);
  g_test_add_func ("/lifecycle/fail/unrealised-loss", test_unrealised_breach);
  g_test_add_func ("/lifecycle/pause", test_pause);
  g_test_add_func ("/lifecycle/pause-then-breach", test_pause_then_breach);
  return g_test_run ();
}
