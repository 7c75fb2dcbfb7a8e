/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-feed-private.h"
#include "arb-trading-private.h"
#include "arb-util-private.h"

G_DEFINE_QUARK (arb-trading-error-quark, arb_trading_error)

static const struct {
  const char *code;
  guint       status;
} error_table[] = {
  [ARB_TRADING_ERROR_VALIDATION] = { "VALIDATION_ERROR", 400 },
  [ARB_TRADING_ERROR_UNAUTHENTICATED] = { "UNAUTHENTICATED", 401 },
  [ARB_TRADING_ERROR_FORBIDDEN] = { "FORBIDDEN", 403 },
  [ARB_TRADING_ERROR_NOT_FOUND] = { "NOT_FOUND", 404 },
  [ARB_TRADING_ERROR_ASSESSMENT_NOT_ACTIVE] = { "ASSESSMENT_NOT_ACTIVE", 409 },
  [ARB_TRADING_ERROR_MARKET_CLOSED] = { "MARKET_CLOSED", 409 },
  [ARB_TRADING_ERROR_IDEMPOTENCY_MISMATCH] = { "IDEMPOTENCY_KEY_REUSED", 422 },
  [ARB_TRADING_ERROR_INSUFFICIENT_BALANCE] = { "INSUFFICIENT_BALANCE", 422 },
  [ARB_TRADING_ERROR_RISK_LIMIT] = { "RISK_LIMIT_EXCEEDED", 422 },
  [ARB_TRADING_ERROR_DRAWDOWN_LIMIT] = { "DRAWDOWN_LIMIT_EXCEEDED", 422 },
  [ARB_TRADING_ERROR_MARKET_DATA] = { "MARKET_DATA_UNAVAILABLE", 503 },
  [ARB_TRADING_ERROR_RISK_UNAVAILABLE] = { "RISK_UNAVAILABLE", 503 },
  [ARB_TRADING_ERROR_STORE] = { "STORE_UNAVAILABLE", 503 },
  [ARB_TRADING_ERROR_PAYLOAD_TOO_LARGE] = { "PAYLOAD_TOO_LARGE", 413 },
  [ARB_TRADING_ERROR_INTERNAL] = { "INTERNAL", 500 },
};

const char *
arb_trading_error_code (int code)
{
  if (code < 0 || (guint) code >= G_N_ELEMENTS (error_table))
    return "INTERNAL";
  return error_table[code].code;
}

guint
arb_trading_error_status (int code)
{
  if (code < 0 || (guint) code >= G_N_ELEMENTS (error_table))
    return 500;
  return error_table[code].status;
}

static const ArbConfigKey program_schema[] = {
  { "starting_balance", ARB_CFG_DECIMAL, ARB_CFG_REQUIRED, NULL, 1, 1000000000, NULL,
    "the virtual balance an assessment of this program starts with" },
  { "leverage", ARB_CFG_DECIMAL, 0, "1", 1, 1000, NULL,
    "crypto margin = notional / leverage; prediction positions always cost their whole notional" },
  { "risk", ARB_CFG_STRV, 0, NULL, 0, 0, NULL, "[risk:INSTANCE] groups whose rules apply to this program" },
  { "timezone", ARB_CFG_STRING, 0, "UTC", 0, 0, NULL,
    "IANA time zone of the trading day, for example Europe/Prague or America/Chicago" },
  { "daily_reset", ARB_CFG_STRING, 0, "00:00", 0, 0, NULL,
    "HH:MM local time at which the trading day starts and the daily anchors are taken" },
  { "profit_target_pct", ARB_CFG_DECIMAL, 0, NULL, 0, 1000, NULL,
    "passed when equity >= start x (1 + pct/100) with no open position; unset: no target" },
  { "min_trading_days", ARB_CFG_INT, 0, "0", 0, 3650, NULL,
    "distinct trading days with a fill (in the program's time zone) needed to pass" },
  { "consistency_pct", ARB_CFG_DECIMAL, 0, NULL, 1, 100, NULL,
    "the best day's profit may be at most this share of the total profit to pass; unset: no such rule" },
  { "max_days", ARB_CFG_INT, 0, "0", 0, 3650, NULL, "failed when this many days pass without passing; 0: unlimited" },
  { "inactivity_days", ARB_CFG_INT, 0, "0", 0, 3650, NULL,
    "failed after this many days without a fill; 0: no such rule" },
  { NULL }
};

static const ArbConfigKey class_schema[] = {
  { "slippage_bps", ARB_CFG_INT, 0, "5", 0, 5000, NULL,
    "a buy fills at ask × (1 + bps/10000), a sell at bid × (1 − bps/10000)" },
  { "fee_bps", ARB_CFG_INT, 0, "10", 0, 5000, NULL, "fee = notional × bps/10000, rounded up to 8 decimals" },
  { "max_quote_age", ARB_CFG_DURATION, 0, "30s", 1, 86400000, NULL,
    "a market is tradable only while its latest quote is younger than this" },
  { NULL }
};

/* [market:ID] overrides whatever it sets; nothing is set by default */
static const ArbConfigKey market_schema[] = {
  { "slippage_bps", ARB_CFG_INT, 0, NULL, 0, 5000, NULL, "overrides the class's slippage_bps" },
  { "fee_bps", ARB_CFG_INT, 0, NULL, 0, 5000, NULL, "overrides the class's fee_bps" },
  { "max_quote_age", ARB_CFG_DURATION, 0, NULL, 1, 86400000, NULL, "overrides the class's max_quote_age" },
  { NULL }
};

typedef struct {
  GPtrArray *list;  /* ArbAccount, borrowed from accounts */
  gboolean   dirty; /* not in order */
} AccountList;

struct _ArbTrading {
  ArbHost        *host;
  GHashTable     *programs;  /* name → ArbProgram */
  ArbMarketRules  classes[2]; /* crypto, prediction */
  GHashTable     *markets;   /* id → ArbMarketRules */
  GHashTable     *accounts;  /* id → ArbAccount */
  /* the same accounts in (created, id) order: every one, and each owner's;
   * appended as they come, sorted again only when one came out of order
   * (GET /assessments pages through them without a sort a request) */
  AccountList     all;
  GHashTable     *by_owner;  /* owner → AccountList */
  GPtrArray      *no_accounts; /* an owner without any: empty */
  GHashTable     *positions; /* id → ArbPositionRow (owned by the account) */
  GHashTable     *position_account; /* position id → ArbAccount */
  GHashTable     *holders;   /* market → set of ArbAccount holding it */
  gint64          last_trade_seq;
};

const ArbConfigKey *
arb_trading_program_schema (void)
{
  return program_schema;
}

const ArbConfigKey *
arb_trading_class_schema (void)
{
  return class_schema;
}

const ArbConfigKey *
arb_trading_market_schema (void)
{
  return market_schema;
}

static void
program_free (gpointer data)
{
  ArbProgram *p = data;
  if (p->timezone != NULL)
    g_time_zone_unref (p->timezone);
  g_free (p->name);
  g_strfreev (p->risk);
  g_free (p);
}

static void
exposure_free (gpointer data)
{
  ArbExposure *e = data;
  g_ptr_array_unref (e->positions);
  g_ptr_array_unref (e->bracketed);
  g_free (e->market);
  g_free (e);
}

static void
account_free (gpointer data)
{
  ArbAccount *a = data;
  g_hash_table_unref (a->exposure);
  arb_assessment_row_free (a->row);
  g_ptr_array_unref (a->positions);
  /* runs still waiting belong to the saga, which is gone by now */
  g_queue_clear (&a->waiting);
  g_free (a);
}

static void
account_list_free (gpointer data)
{
  AccountList *l = data;
  g_ptr_array_unref (l->list);
  g_free (l);
}

static gint
compare_accounts (gconstpointer a, gconstpointer b)
{
  const ArbAccount *x = *(ArbAccount *const *) a;
  const ArbAccount *y = *(ArbAccount *const *) b;
  if (x->row->created_us != y->row->created_us)
    return x->row->created_us < y->row->created_us ? -1 : 1;
  return strcmp (x->row->id, y->row->id);
}

static void
account_list_append (AccountList *l, ArbAccount *a)
{
  if (l->list->len > 0 && compare_accounts (&g_ptr_array_index (l->list, l->list->len - 1), &a) > 0)
    l->dirty = TRUE;
  g_ptr_array_add (l->list, a);
}

static GPtrArray *
account_list_sorted (AccountList *l)
{
  if (l->dirty)
    g_ptr_array_sort (l->list, compare_accounts);
  l->dirty = FALSE;
  return l->list;
}

static void
read_rules (ArbConfigValues *values, ArbMarketRules *rules)
{
  if (arb_config_values_is_set (values, "slippage_bps"))
    rules->slippage_bps = arb_config_values_get_int (values, "slippage_bps");
  if (arb_config_values_is_set (values, "fee_bps"))
    rules->fee_bps = arb_config_values_get_int (values, "fee_bps");
  if (arb_config_values_is_set (values, "max_quote_age"))
    rules->max_quote_age_ms = arb_config_values_get_duration_ms (values, "max_quote_age");
}

ArbTrading *
arb_trading_new (ArbHost *host, GPtrArray *problems)
{
  ArbTrading *t = g_new0 (ArbTrading, 1);
  g_auto(GStrv) groups = arb_config_get_groups (host->config);
  const char *path = arb_config_get_path (host->config);
  static const char *const class_names[] = { "crypto", "prediction", NULL };

  t->host = host;
  t->programs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, program_free);
  t->markets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  /* keyed by a copy of the id: a saga's undo replaces account->row, and a key
   * borrowed from the old row would dangle (the account was then lost: 404) */
  t->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, account_free);
  t->all.list = g_ptr_array_new ();
  t->no_accounts = g_ptr_array_new ();
  t->by_owner = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, account_list_free);
  t->positions = g_hash_table_new (g_str_hash, g_str_equal);
  t->position_account = g_hash_table_new (g_str_hash, g_str_equal);
  t->holders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref);

  /* class defaults come from the schema's fallbacks, also with no group */
  for (guint c = 0; c < 2; c++)
    {
      g_autofree char *group = g_strdup_printf ("market-class:%s", class_names[c]);
      const ArbConfigKey *schemas[] = { class_schema, NULL };
      g_autoptr(ArbConfigValues) v = arb_config_check_group (host->config, group, schemas, problems);
      read_rules (v, &t->classes[c]);
    }

  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *group = groups[i];
      if (g_str_has_prefix (group, "program:"))
        {
          const ArbConfigKey *schemas[] = { program_schema, NULL };
          g_autoptr(ArbConfigValues) v = arb_config_check_group (host->config, group, schemas, problems);
          ArbProgram *p = g_new0 (ArbProgram, 1);
          const char *const *risk;

          p->name = g_strdup (group + strlen ("program:"));
          p->starting_balance = arb_config_values_get_decimal (v, "starting_balance");
          p->leverage = arb_config_values_get_decimal (v, "leverage");
          risk = arb_config_values_get_strv (v, "risk");
          p->risk = g_strdupv ((char **) risk);
          {
            const char *tz = arb_config_values_get_string (v, "timezone");
            const char *reset = arb_config_values_get_string (v, "daily_reset");
            guint64 hh = 0, mm = 0;
            g_auto(GStrv) hm = g_strsplit (reset != NULL ? reset : "", ":", -1);
            p->timezone = tz != NULL ? g_time_zone_new_identifier (tz) : NULL;
            if (p->timezone == NULL)
              {
                arb_config_problems_add (problems, path, group, "timezone",
                                         "timezone=%s is not an IANA time zone this machine knows (for example "
                                         "Europe/Prague, America/New_York, UTC)",
                                         tz != NULL ? tz : "");
                p->timezone = g_time_zone_new_utc ();
              }
            if (g_strv_length (hm) != 2 || strlen (hm[0]) != 2 || strlen (hm[1]) != 2
                || !g_ascii_string_to_unsigned (hm[0], 10, 0, 23, &hh, NULL)
                || !g_ascii_string_to_unsigned (hm[1], 10, 0, 59, &mm, NULL))
              arb_config_problems_add (problems, path, group, "daily_reset",
                                       "daily_reset=%s is not a time of day HH:MM (00:00 to 23:59)",
                                       reset != NULL ? reset : "");
            p->reset_minute = (int) (hh * 60 + mm);
          }
          p->has_profit_target = arb_config_values_is_set (v, "profit_target_pct");
          p->profit_target_pct = arb_config_values_get_decimal (v, "profit_target_pct");
          p->min_trading_days = arb_config_values_get_int (v, "min_trading_days");
          p->has_consistency = arb_config_values_is_set (v, "consistency_pct");
          p->consistency_pct = arb_config_values_get_decimal (v, "consistency_pct");
          p->max_days = arb_config_values_get_int (v, "max_days");
          p->inactivity_days = arb_config_values_get_int (v, "inactivity_days");
          for (guint r = 0; risk[r] != NULL; r++)
            {
              g_autofree char *rg = g_strdup_printf ("risk:%s", risk[r]);
              if (!arb_config_has_group (host->config, rg))
                arb_config_problems_add (problems, path, group, "risk",
                                         "risk=%s names no [%s] group", risk[r], rg);
            }
          if (*p->name == '\0')
            arb_config_problems_add (problems, path, group, NULL, "a program needs a name: [program:NAME]");
          g_hash_table_replace (t->programs, p->name, p);
        }
      else if (g_str_has_prefix (group, "market-class:"))
        {
          const char *name = group + strlen ("market-class:");
          if (!g_strv_contains (class_names, name))
            {
              const char *near = arb_closest_word (name, class_names);
              arb_config_problems_add (problems, path, group, NULL,
                                       "unknown market class \"%s\" (%s%s%sknown: crypto, prediction)", name,
                                       near != NULL ? "did you mean \"" : "", near != NULL ? near : "",
                                       near != NULL ? "\"? " : "");
            }
        }
      else if (g_str_has_prefix (group, "market:"))
        {
          const char *id = group + strlen ("market:");
          const ArbConfigKey *schemas[] = { market_schema, NULL };
          g_autoptr(ArbConfigValues) v = arb_config_check_group (host->config, group, schemas, problems);
          ArbMarketRules *rules = g_new0 (ArbMarketRules, 1);
          const char *cls = arb_market_class (id);

          if (!arb_market_id_is_valid (id))
            arb_config_problems_add (problems, path, group, NULL,
                                     "\"%s\" is not a market id (crypto:BASE-QUOTE, polymarket:TOKEN, "
                                     "kalshi:TICKER:yes|no)",
                                     id);
          *rules = t->classes[cls != NULL && g_str_equal (cls, "prediction") ? 1 : 0];
          read_rules (v, rules);
          g_hash_table_replace (t->markets, g_strdup (id), rules);
        }
    }
  return t;
}

void
arb_trading_free (ArbTrading *trading)
{
  if (trading == NULL)
    return;
  g_hash_table_unref (trading->holders);
  g_hash_table_unref (trading->position_account);
  g_hash_table_unref (trading->positions);
  g_hash_table_unref (trading->by_owner);
  g_ptr_array_unref (trading->all.list);
  g_ptr_array_unref (trading->no_accounts);
  g_hash_table_unref (trading->accounts);
  g_hash_table_unref (trading->markets);
  g_hash_table_unref (trading->programs);
  g_free (trading);
}

ArbProgram *
arb_trading_get_program (ArbTrading *trading, const char *name)
{
  return g_hash_table_lookup (trading->programs, name);
}

GStrv
arb_trading_program_names (ArbTrading *trading)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init (&it, trading->programs);
  while (g_hash_table_iter_next (&it, &k, NULL))
    g_strv_builder_add (b, k);
  return g_strv_builder_end (b);
}

void
arb_trading_market_rules (ArbTrading *trading, const char *market, ArbMarketRules *out)
{
  ArbMarketRules *r = g_hash_table_lookup (trading->markets, market);
  const char *cls;
  if (r != NULL)
    {
      *out = *r;
      return;
    }
  cls = arb_market_class (market);
  *out = trading->classes[cls != NULL && g_str_equal (cls, "prediction") ? 1 : 0];
}

/* ------------------------------------------------------------------------ */
/* The ledger in memory                                                     */

void
arb_trading_add_account (ArbTrading *trading, ArbAssessmentRow *row)
{
  ArbAccount *a = g_new0 (ArbAccount, 1);
  ArbAccount *old = g_hash_table_lookup (trading->accounts, row->id);
  AccountList *mine;

  a->row = row;
  a->positions = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_position_row_free);
  a->exposure = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, exposure_free);
  g_queue_init (&a->waiting);
  /* the same id again replaces the account: out of the lists first */
  if (old != NULL)
    {
      AccountList *theirs = g_hash_table_lookup (trading->by_owner, old->row->owner);
      g_ptr_array_remove (trading->all.list, old);
      if (theirs != NULL)
        g_ptr_array_remove (theirs->list, old);
    }
  g_hash_table_replace (trading->accounts, g_strdup (row->id), a);
  mine = g_hash_table_lookup (trading->by_owner, row->owner);
  if (mine == NULL)
    {
      mine = g_new0 (AccountList, 1);
      mine->list = g_ptr_array_new ();
      g_hash_table_insert (trading->by_owner, g_strdup (row->owner), mine);
    }
  account_list_append (&trading->all, a);
  account_list_append (mine, a);
}

void
arb_trading_add_position (ArbTrading *trading, ArbPositionRow *row)
{
  ArbAccount *a = g_hash_table_lookup (trading->accounts, row->assessment_id);
  if (a == NULL)
    {
      g_warning ("position %s belongs to no known assessment %s; ignored", row->id, row->assessment_id);
      arb_position_row_free (row);
      return;
    }
  arb_trading_insert_position (trading, a, row);
}

ArbAccount *
arb_trading_get_account (ArbTrading *trading, const char *id)
{
  return id != NULL ? g_hash_table_lookup (trading->accounts, id) : NULL;
}

const GPtrArray *
arb_trading_accounts_in_order (ArbTrading *trading, const char *owner)
{
  AccountList *l = owner == NULL ? &trading->all : g_hash_table_lookup (trading->by_owner, owner);
  return l != NULL ? account_list_sorted (l) : trading->no_accounts;
}

GPtrArray *
arb_trading_list_accounts (ArbTrading *trading, const char *owner)
{
  return g_ptr_array_copy ((GPtrArray *) arb_trading_accounts_in_order (trading, owner), NULL, NULL);
}

ArbPositionRow *
arb_trading_get_position (ArbTrading *trading, const char *id, ArbAccount **account_out)
{
  ArbPositionRow *p = g_hash_table_lookup (trading->positions, id);
  if (account_out != NULL)
    *account_out = p != NULL ? g_hash_table_lookup (trading->position_account, id) : NULL;
  return p;
}


/* an exposure's unrealised P&L at @q: longs at the bid, shorts at the ask,
 * the last price when the feed has no book; nothing without a price */
static __int128
exposure_unreal (const ArbExposure *e, const ArbQuote *q)
{
  ArbDecimal bid, ask;
  __int128 u = 0;
  if (q == NULL)
    return 0;
  if (!arb_quote_get_bid (q, &bid) || bid.raw <= 0)
    if (!arb_quote_get_last (q, &bid))
      return 0;
  if (!arb_quote_get_ask (q, &ask) || ask.raw <= 0)
    if (!arb_quote_get_last (q, &ask))
      return 0;
  u += (__int128) bid.raw * e->long_qty - e->long_cost;
  u += e->short_cost - (__int128) ask.raw * e->short_qty;
  return u;
}

static void
exposure_remark (ArbAccount *account, ArbExposure *e, const ArbQuote *q)
{
  __int128 u = exposure_unreal (e, q);
  account->unreal += u - e->unreal;
  e->unreal = u;
}

void
arb_trading_exposure_add (ArbTrading *trading, ArbAccount *account, const ArbPositionRow *pos, int sign)
{
  ArbExposure *e = g_hash_table_lookup (account->exposure, pos->market);
  __int128 qty = (__int128) pos->quantity.raw * sign;
  __int128 cost = (__int128) pos->entry_price.raw * pos->quantity.raw * sign;

  if (e == NULL)
    {
      GHashTable *set = g_hash_table_lookup (trading->holders, pos->market);
      e = g_new0 (ArbExposure, 1);
      e->market = g_strdup (pos->market);
      e->positions = g_ptr_array_new ();
      e->bracketed = g_ptr_array_new ();
      g_hash_table_insert (account->exposure, e->market, e);
      if (set == NULL)
        {
          set = g_hash_table_new (g_direct_hash, g_direct_equal);
          g_hash_table_insert (trading->holders, g_strdup (pos->market), set);
        }
      g_hash_table_add (set, account);
    }
  if (sign > 0)
    g_ptr_array_add (e->positions, (gpointer) pos);
  else
    g_ptr_array_remove_fast (e->positions, (gpointer) pos);
  if (pos->has_stop_loss || pos->has_take_profit)
    {
      if (sign > 0)
        g_ptr_array_add (e->bracketed, (gpointer) pos);
      else
        g_ptr_array_remove_fast (e->bracketed, (gpointer) pos);
    }
  if (pos->side == ARB_SIDE_LONG)
    {
      e->long_qty += qty;
      e->long_cost += cost;
    }
  else
    {
      e->short_qty += qty;
      e->short_cost += cost;
    }
  e->n_positions += sign;
  /* margins are bounded by the balance: an int64 sum cannot overflow */
  account->used_margin.raw += pos->margin.raw * sign;
  {
    g_autoptr(ArbQuote) q = e->n_positions > 0 ? arb_price_book_get (trading->host->book, pos->market) : NULL;
    exposure_remark (account, e, q);
  }
  if (e->n_positions == 0)
    {
      GHashTable *set = g_hash_table_lookup (trading->holders, pos->market);
      if (set != NULL)
        {
          g_hash_table_remove (set, account);
          if (g_hash_table_size (set) == 0)
            g_hash_table_remove (trading->holders, pos->market);
        }
      g_hash_table_remove (account->exposure, pos->market);
    }
}

gboolean
arb_trading_event_notional (ArbTrading *trading, ArbAccount *account, const char *event, ArbDecimal *out)
{
  /* a cost is below 2^126 (two int64s multiplied): the sum is checked
   * against that bound before each addition, so it cannot overflow */
  const __int128 bound = (__int128) 1 << 126;
  __int128 cost = 0;
  GHashTableIter it;
  gpointer v;

  *out = ARB_DECIMAL_ZERO;
  if (event == NULL)
    return TRUE;
  g_hash_table_iter_init (&it, account->exposure);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      const ArbExposure *e = v;
      __int128 c = e->long_cost + e->short_cost;

      if (!arb_price_book_market_in_event (trading->host->book, e->market, event))
        continue;
      if (c > bound - cost)
        {
          *out = arb_decimal_from_raw (G_MAXINT64);
          return FALSE;
        }
      cost += c;
    }
  /* back from scale 10^16 to 10^8 rounding up, as the market notional: a
   * limit is never passed by rounding */
  cost = (cost + ARB_DECIMAL_SCALE - 1) / ARB_DECIMAL_SCALE;
  if (cost > G_MAXINT64)
    {
      *out = arb_decimal_from_raw (G_MAXINT64);
      return FALSE;
    }
  *out = arb_decimal_from_raw ((gint64) cost);
  return TRUE;
}

void
arb_trading_note_fill (ArbTrading *trading, ArbAccount *account, gint64 now_us)
{
  ArbProgram *program = arb_trading_get_program (trading, account->row->program);
  gint64 day = program != NULL ? arb_program_day_start (program, now_us) : now_us;

  if (account->row->last_fill_us == 0 || account->row->last_fill_day_us != day)
    account->row->trading_days++;
  account->row->last_fill_day_us = day;
  account->row->last_fill_us = now_us;
}

GHashTable *
arb_trading_holders (ArbTrading *trading, const char *market)
{
  return g_hash_table_lookup (trading->holders, market);
}

/* local midnight of the day containing @local, plus the reset minute */
static GDateTime *
reset_of_day (const ArbProgram *program, GDateTime *local)
{
  return g_date_time_new (program->timezone, g_date_time_get_year (local), g_date_time_get_month (local),
                          g_date_time_get_day_of_month (local), program->reset_minute / 60,
                          program->reset_minute % 60, 0);
}

gint64
arb_program_day_start (const ArbProgram *program, gint64 t_us)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (t_us / G_USEC_PER_SEC);
  g_autoptr(GDateTime) local = g_date_time_to_timezone (utc, program->timezone);
  g_autoptr(GDateTime) start = reset_of_day (program, local);

  /* before today's reset the trading day began at yesterday's */
  if (g_date_time_to_unix (start) * G_USEC_PER_SEC > t_us)
    {
      g_autoptr(GDateTime) yesterday = g_date_time_add_days (local, -1);
      g_date_time_unref (start);
      start = reset_of_day (program, yesterday);
    }
  return g_date_time_to_unix (start) * G_USEC_PER_SEC;
}

gint64
arb_program_next_day_start (const ArbProgram *program, gint64 t_us)
{
  gint64 start = arb_program_day_start (program, t_us);
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (start / G_USEC_PER_SEC);
  g_autoptr(GDateTime) local = g_date_time_to_timezone (utc, program->timezone);
  /* calendar days, not 24 h: across a DST change a day is 23 or 25 hours */
  g_autoptr(GDateTime) tomorrow = g_date_time_add_days (local, 1);
  g_autoptr(GDateTime) next = reset_of_day (program, tomorrow);
  return g_date_time_to_unix (next) * G_USEC_PER_SEC;
}

void
arb_trading_remove_position (ArbTrading *trading, ArbAccount *account, ArbPositionRow *pos)
{
  arb_trading_exposure_add (trading, account, pos, -1);
  g_hash_table_remove (trading->positions, pos->id);
  g_hash_table_remove (trading->position_account, pos->id);
  g_ptr_array_remove (account->positions, pos); /* frees it */
}

void
arb_trading_insert_position (ArbTrading *trading, ArbAccount *account, ArbPositionRow *pos)
{
  arb_trading_exposure_add (trading, account, pos, +1);
  g_ptr_array_add (account->positions, pos);
  g_hash_table_replace (trading->positions, pos->id, pos);
  g_hash_table_replace (trading->position_account, pos->id, account);
}

gint64
arb_trading_next_trade_seq (ArbTrading *trading)
{
  return ++trading->last_trade_seq;
}

void
arb_trading_set_trade_seq (ArbTrading *trading, gint64 last)
{
  if (last > trading->last_trade_seq)
    trading->last_trade_seq = last;
}

/* ------------------------------------------------------------------------ */
/* Pricing                                                                  */

void
arb_fill_clear (ArbFill *fill)
{
  g_clear_pointer (&fill->quote_source, g_free);
}

gboolean
arb_trading_quote_for (ArbTrading *trading, const char *market, ArbQuote **quote_out, GError **error)
{
  ArbMarketRules rules;
  ArbMarketStatusInfo status = { 0 };
  g_autoptr(ArbQuote) quote = NULL;
  gint64 age_ms, when;

  if (arb_price_book_get_status (trading->host->book, market, &status))
    {
      g_autofree char *reason = status.reason;
      if (status.state != ARB_MARKET_OPEN)
        {
          g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_CLOSED, "market %s is %s%s%s", market,
                       arb_market_state_to_string (status.state), reason != NULL ? ": " : "",
                       reason != NULL ? reason : "");
          return FALSE;
        }
    }
  arb_trading_market_rules (trading, market, &rules);
  if (trading->host->feeds != NULL && !arb_feeds_market_has_healthy_source (trading->host->feeds, market))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA,
                   "the feed of %s has no healthy source now", market);
      return FALSE;
    }
  quote = arb_price_book_get (trading->host->book, market);
  if (quote == NULL)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA, "no quote for %s yet", market);
      return FALSE;
    }
  /* the source's own time when it gives one: a fresh delivery of an old
   * price is still an old price */
  when = quote->source_time_us != 0 ? MIN (quote->source_time_us, quote->receive_time_us) : quote->receive_time_us;
  age_ms = (arb_now_us () - when) / 1000;
  if (age_ms > rules.max_quote_age_ms)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA,
                   "the latest quote for %s is %" G_GINT64_FORMAT " ms old, older than max_quote_age %" G_GINT64_FORMAT
                   " ms",
                   market, age_ms, rules.max_quote_age_ms);
      return FALSE;
    }
  *quote_out = g_steal_pointer (&quote);
  return TRUE;
}

/* price × (1 ± bps/10000), rounded against the trader */
static gboolean
apply_slippage (ArbDecimal ref, gint64 bps, gboolean is_buy, ArbDecimal *out, GError **error)
{
  ArbDecimal factor;
  if (!arb_decimal_from_fraction (is_buy ? 10000 + bps : 10000 - bps, 10000, ARB_ROUND_EXACT, &factor, error))
    return FALSE;
  return arb_decimal_mul (ref, factor, is_buy ? ARB_ROUND_CEILING : ARB_ROUND_FLOOR, out, error);
}

static gboolean
fee_for (ArbDecimal notional, gint64 bps, ArbDecimal *out, GError **error)
{
  ArbDecimal rate;
  if (!arb_decimal_from_fraction (bps, 10000, ARB_ROUND_EXACT, &rate, error))
    return FALSE;
  return arb_decimal_mul (notional, rate, ARB_ROUND_CEILING, out, error);
}

gboolean
arb_trading_estimate (ArbTrading *trading, const ArbProgram *program, const char *market, const ArbQuote *quote,
                      gboolean is_buy, ArbDecimal quantity, ArbFill *out, GError **error)
{
  ArbMarketRules rules;
  ArbDecimal ref;
  gboolean prediction = g_strcmp0 (arb_market_class (market), "prediction") == 0;
  g_autoptr(GError) local = NULL;
  char a[ARB_DECIMAL_BUFSIZE];

  memset (out, 0, sizeof *out);
  arb_trading_market_rules (trading, market, &rules);
  if (!(is_buy ? arb_quote_get_ask (quote, &ref) : arb_quote_get_bid (quote, &ref)) && !arb_quote_get_last (quote, &ref))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA, "the quote for %s has no %s price",
                   market, is_buy ? "ask" : "bid");
      return FALSE;
    }
  if (ref.raw <= 0)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_DATA, "the quote for %s has no %s side",
                   market, is_buy ? "ask" : "bid");
      return FALSE;
    }
  out->is_buy = is_buy;
  out->quantity = quantity;
  out->ref_price = ref;
  if (!apply_slippage (ref, rules.slippage_bps, is_buy, &out->price, &local)
      || !arb_decimal_mul (out->price, quantity, ARB_ROUND_HALF_EVEN, &out->notional, &local)
      || !fee_for (out->notional, rules.fee_bps, &out->fee, &local))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "the order is too large: %s",
                   local->message);
      return FALSE;
    }
  if (prediction && (out->price.raw <= 0 || out->price.raw >= ARB_DECIMAL_SCALE))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_MARKET_CLOSED,
                   "%s would fill at %s, outside (0, 1): the market is effectively decided", market,
                   arb_decimal_format (out->price, a));
      return FALSE;
    }
  if (prediction || program == NULL)
    out->margin = out->notional;
  else if (!arb_decimal_div (out->notional, program->leverage, ARB_ROUND_CEILING, &out->margin, &local))
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION, "margin: %s", local->message);
      return FALSE;
    }
  if (out->notional.raw <= 0)
    {
      g_set_error (error, ARB_TRADING_ERROR, ARB_TRADING_ERROR_VALIDATION,
                   "quantity %s is too small: the notional rounds to zero", arb_decimal_format (quantity, a));
      return FALSE;
    }
  out->quote_source = g_strdup (quote->source);
  out->quote_time_us = quote->source_time_us != 0 ? quote->source_time_us : quote->receive_time_us;
  return TRUE;
}

gboolean
arb_trading_mark (ArbTrading *trading, const ArbPositionRow *pos, ArbDecimal *mark, gint64 *mark_time_us,
                  char **source)
{
  g_autoptr(ArbQuote) q = arb_price_book_get (trading->host->book, pos->market);
  gboolean ok;
  if (q == NULL)
    return FALSE;
  ok = pos->side == ARB_SIDE_LONG ? arb_quote_get_bid (q, mark) : arb_quote_get_ask (q, mark);
  if (!ok || mark->raw <= 0)
    ok = arb_quote_get_last (q, mark);
  if (ok && mark_time_us != NULL)
    *mark_time_us = q->source_time_us != 0 ? q->source_time_us : q->receive_time_us;
  if (ok && source != NULL)
    *source = g_strdup (q->source);
  return ok;
}

gboolean
arb_position_pnl (const ArbPositionRow *pos, ArbDecimal exit_price, ArbDecimal quantity, ArbDecimal *out,
                  GError **error)
{
  ArbDecimal diff;
  gboolean ok = pos->side == ARB_SIDE_LONG ? arb_decimal_sub (exit_price, pos->entry_price, &diff, error)
                                           : arb_decimal_sub (pos->entry_price, exit_price, &diff, error);
  return ok && arb_decimal_mul (diff, quantity, ARB_ROUND_HALF_EVEN, out, error);
}

/* x / 10^8, rounded half to even; FALSE when it does not fit 64 bits */
static gboolean
div_scale_half_even (__int128 x, gint64 *out)
{
  const __int128 scale = ARB_DECIMAL_SCALE;
  __int128 q = x / scale, r = x % scale;
  __int128 twice = (r < 0 ? -r : r) * 2;
  if (twice > scale || (twice == scale && (q % 2) != 0))
    q += x < 0 ? -1 : 1;
  if (q > G_MAXINT64 || q < G_MININT64)
    return FALSE;
  *out = (gint64) q;
  return TRUE;
}

static gboolean
value_from (ArbAccount *account, __int128 unreal, ArbAccountValue *out, GError **error)
{
  gint64 raw;
  if (!div_scale_half_even (unreal, &raw))
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW, "unrealised P&L out of range");
      return FALSE;
    }
  out->unrealized = arb_decimal_from_raw (raw);
  out->used_margin = account->used_margin;
  out->unquoted = NULL;
  if (!arb_decimal_add (account->row->balance, out->unrealized, &out->equity, error)
      || !arb_decimal_sub (out->equity, out->used_margin, &out->free_margin, error))
    return FALSE;
  return TRUE;
}

gboolean
arb_trading_value (ArbTrading *trading, ArbAccount *account, ArbAccountValue *out, GError **error)
{
  return arb_trading_value_full (trading, account, out, NULL, error);
}

gboolean
arb_trading_value_full (ArbTrading *trading, ArbAccount *account, ArbAccountValue *out, GPtrArray *unquoted_all,
                        GError **error)
{
  __int128 unreal = 0; /* scale 10^16 */
  const char *unquoted = NULL;
  GHashTableIter it;
  gpointer v;

  /* every market at the book's price now: the order path and the answers */
  g_hash_table_iter_init (&it, account->exposure);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      ArbExposure *e = v;
      g_autoptr(ArbQuote) q = arb_price_book_get (trading->host->book, e->market);
      if (q == NULL)
        {
          if (unquoted == NULL)
            unquoted = e->market;
          if (unquoted_all != NULL)
            g_ptr_array_add (unquoted_all, e->market);
        }
      unreal += exposure_unreal (e, q);
    }
  if (unquoted_all != NULL)
    g_ptr_array_sort (unquoted_all, arb_compare_strings);
  if (!value_from (account, unreal, out, error))
    return FALSE;
  out->unquoted = unquoted;
  return TRUE;
}

gboolean
arb_trading_value_after_mark (ArbTrading *trading, ArbAccount *account, const char *market, const ArbQuote *quote,
                              ArbAccountValue *out, GError **error)
{
  ArbExposure *e = g_hash_table_lookup (account->exposure, market);
  if (e != NULL)
    exposure_remark (account, e, quote);
  return value_from (account, account->unreal, out, error);
}
