/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Feeds: failover and circuit breakers (see arb-feed-private.h and
 * doc/feeds.md). Everything that decides is written against an explicit
 * clock (FeedClock), so that the tests can walk through minutes of breaker
 * life in microseconds; the host's hooks pass the real clocks.
 *
 * Locking: one mutex over all feeds. What a decision sets off (log lines,
 * events for the sinks) is collected while it is held and done after it is
 * released, so no callback into the rest of the host runs under it.
 */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-feed-private.h"
#include "arb-util-private.h"

/* the breakers' timer runs this often at most, and at least once a second */
#define FEED_TICK_MIN_MS 20
#define FEED_TICK_MAX_MS 1000

typedef struct _Feed Feed;

typedef struct {
  gint64 mono; /* g_get_monotonic_time(): for every duration */
  gint64 real; /* arb_now_us(): to judge source times */
} FeedClock;

typedef struct {
  Feed            *feed;               /* unowned: the feed holds its sources */
  ArbInstance     *inst;               /* unowned: outlives the feeds */
  guint            index;              /* priority, 0 first */
  char            *labels;             /* owned: feed="…",source="…" */
  ArbBreakerState  state;
  guint            failures;           /* in a row */
  gboolean         quote_since_report; /* a fresh quote came since its last health report */
  gint64           last_fresh_mono;    /* the last fresh quote, or the start */
  gint64           opened_mono;
  gint64           healthy_since_mono; /* closed and no failure since; 0: not healthy */
  gint64           since_real;         /* when the breaker last changed, for /ready */
  gboolean         probe_out;
  gint64           probe_mono;
  char            *reason;             /* owned, nullable: the last failure or why it opened */
} Source;

struct _Feed {
  char       *name;          /* owned: "feed:crypto" */
  char       *labels;        /* owned: feed="feed:crypto" */
  GPtrArray  *sources;       /* owned: Source, in priority order */
  guint       failure_threshold;
  gint64      stale_after_us;
  gint64      cooldown_us;
  gint64      recover_after_us;
  gboolean    required;
  Source     *active;        /* nullable */
  gint64      active_since_real;
  char       *reason;        /* owned, nullable: why the last switch happened */
};

typedef enum {
  ACTION_LOG,
  ACTION_EVENT,
} ActionKind;

/* what a decision sets off, done once the lock is released */
typedef struct {
  ActionKind     kind;
  char          *who;     /* owned: the feed's name, for the log */
  GLogLevelFlags level;
  char          *text;    /* owned: the log line, or the event type */
  char          *data;    /* owned: the event's data, JSON */
} Action;

struct _ArbFeeds {
  ArbHost    *host;        /* unowned */
  GMutex      lock;
  GPtrArray  *feeds;       /* owned: Feed */
  GHashTable *by_instance; /* ArbInstance → Source */
  GHashTable *by_market;   /* market id (owned) → Feed: who quoted it */
  GPtrArray  *actions;     /* owned: Action, under the lock */
  GSource    *tick;        /* owned, nullable */
  guint       tick_ms;
  gboolean    started;
};

static const ArbConfigKey feed_schema[] = {
  { "sources", ARB_CFG_STRV, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "ingest instances in priority order, by the NAME of [ingest:NAME]: coingecko,coinmarketcap" },
  { "failure_threshold", ARB_CFG_INT, 0, "3", 1, 1000, NULL,
    "failures in a row (health reports without fresh quotes, refused quotes) that open a source's breaker" },
  { "stale_after", ARB_CFG_DURATION, 0, "120s", 100, 86400000, NULL,
    "a source with no fresh quote for this long is open too; a quote older than this is not fresh" },
  { "cooldown", ARB_CFG_DURATION, 0, "30s", 100, 86400000, NULL,
    "how long an open breaker waits before it lets one probe request through (half-open)" },
  { "recover_after", ARB_CFG_DURATION, 0, "60s", 0, 86400000, NULL,
    "a higher source takes over again once it has been closed, without a failure, this long" },
  { "required", ARB_CFG_BOOL, 0, "true", 0, 0, NULL,
    "when true, /ready answers 503 while the feed has no healthy source" },
  { NULL }
};

const ArbConfigKey *
arb_feeds_schema (void)
{
  return feed_schema;
}

const char *
arb_breaker_state_to_string (ArbBreakerState state)
{
  switch (state)
    {
    case ARB_BREAKER_CLOSED: return "closed";
    case ARB_BREAKER_HALF_OPEN: return "half-open";
    case ARB_BREAKER_OPEN: return "open";
    default: return "unknown";
    }
}

static void
action_free (Action *a)
{
  g_free (a->who);
  g_free (a->text);
  g_free (a->data);
  g_free (a);
}

static void
source_free (Source *s)
{
  g_free (s->labels);
  g_free (s->reason);
  g_free (s);
}

static void
feed_free (Feed *f)
{
  g_free (f->name);
  g_free (f->labels);
  g_clear_pointer (&f->sources, g_ptr_array_unref);
  g_free (f->reason);
  g_free (f);
}

static FeedClock
clock_now (void)
{
  return (FeedClock){ g_get_monotonic_time (), arb_now_us () };
}

static char *
duration_text (gint64 us)
{
  return arb_format_duration_ms (us / 1000);
}

/* ------------------------------------------------------------------------ */
/* Actions                                                                  */

static void
feed_log (ArbFeeds *feeds, Feed *f, GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (4, 5);

static void
feed_log (ArbFeeds *feeds, Feed *f, GLogLevelFlags level, const char *format, ...)
{
  Action *a = g_new0 (Action, 1);
  va_list args;

  va_start (args, format);
  a->text = g_strdup_vprintf (format, args);
  va_end (args);
  a->kind = ACTION_LOG;
  a->who = g_strdup (f->name);
  a->level = level;
  g_ptr_array_add (feeds->actions, a);
}

static void
feed_event (ArbFeeds *feeds, Feed *f, const char *type, Source *from, Source *to, const char *reason)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  Action *a = g_new0 (Action, 1);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "feed");
  json_builder_add_string_value (b, f->name);
  json_builder_set_member_name (b, "from");
  if (from != NULL)
    json_builder_add_string_value (b, arb_instance_get_name (from->inst));
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "to");
  if (to != NULL)
    json_builder_add_string_value (b, arb_instance_get_name (to->inst));
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "reason");
  json_builder_add_string_value (b, reason != NULL ? reason : "");
  json_builder_set_member_name (b, "breakers");
  json_builder_begin_object (b);
  for (guint i = 0; i < f->sources->len; i++)
    {
      Source *s = g_ptr_array_index (f->sources, i);
      json_builder_set_member_name (b, arb_instance_get_name (s->inst));
      json_builder_add_string_value (b, arb_breaker_state_to_string (s->state));
    }
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);

  a->kind = ACTION_EVENT;
  a->who = g_strdup (f->name);
  a->text = g_strdup (type);
  a->data = json_generator_to_data (gen, NULL);
  g_ptr_array_add (feeds->actions, a);
}

/* releases the lock, then does what the decisions set off */
static void
feeds_unlock (ArbFeeds *feeds)
{
  g_autoptr(GPtrArray) actions = NULL;

  if (feeds->actions->len == 0)
    {
      g_mutex_unlock (&feeds->lock);
      return;
    }
  actions = g_steal_pointer (&feeds->actions);
  feeds->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) action_free);
  g_mutex_unlock (&feeds->lock);

  for (guint i = 0; i < actions->len; i++)
    {
      Action *a = g_ptr_array_index (actions, i);

      if (a->kind == ACTION_LOG)
        arb_log_for (a->who, NULL, a->level, a->text);
      else
        {
          g_autoptr(ArbEvent) ev = arb_event_new (a->text, a->who, NULL, arb_current_correlation_id (), arb_now_us (),
                                                  a->data, FALSE);
          arb_relay_publish (feeds->host->relay, ev);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */

static void
declare_metrics (ArbMetrics *m)
{
  arb_metrics_declare (m, "arb_feed_up", ARB_METRIC_GAUGE, "1 while the feed has an active (healthy) source");
  arb_metrics_declare (m, "arb_feed_active", ARB_METRIC_GAUGE, "1 for the source whose quotes reach the price book");
  arb_metrics_declare (m, "arb_feed_breaker_state", ARB_METRIC_GAUGE,
                       "a source's breaker: 0 closed, 1 half-open, 2 open");
  arb_metrics_declare (m, "arb_feed_failovers_total", ARB_METRIC_COUNTER, "switches to a lower source (feed.failover)");
  arb_metrics_declare (m, "arb_feed_recoveries_total", ARB_METRIC_COUNTER,
                       "switches back to a higher source (feed.recovered)");
  arb_metrics_declare (m, "arb_feed_down_total", ARB_METRIC_COUNTER, "times the feed lost its last healthy source");
  arb_metrics_declare (m, "arb_feed_breaker_trips_total", ARB_METRIC_COUNTER, "a source's breaker opening");
  arb_metrics_declare (m, "arb_feed_failures_total", ARB_METRIC_COUNTER,
                       "failures of a source: trouble reports without fresh quotes, refused quotes");
  arb_metrics_declare (m, "arb_feed_probes_total", ARB_METRIC_COUNTER, "half-open probes let through");
  arb_metrics_declare (m, "arb_feed_held_off_total", ARB_METRIC_COUNTER,
                       "times a source asked to contact its upstream and was told to wait (breaker open)");
  arb_metrics_declare (m, "arb_feed_standby_quotes_total", ARB_METRIC_COUNTER,
                       "quotes of a source that is not active, kept from the price book");
}

static void
export_source (ArbFeeds *feeds, Source *s)
{
  ArbMetrics *m = feeds->host->metrics;

  arb_metrics_gauge_set (m, "arb_feed_breaker_state", s->labels, (gdouble) s->state);
  arb_metrics_gauge_set (m, "arb_feed_active", s->labels, s->feed->active == s ? 1 : 0);
}

static void
export_feed (ArbFeeds *feeds, Feed *f)
{
  arb_metrics_gauge_set (feeds->host->metrics, "arb_feed_up", f->labels, f->active != NULL ? 1 : 0);
  for (guint i = 0; i < f->sources->len; i++)
    export_source (feeds, g_ptr_array_index (f->sources, i));
}

/* ------------------------------------------------------------------------ */
/* Breakers and the active source                                           */

static gboolean
source_available (Source *s)
{
  return arb_instance_get_state (s->inst) == ARB_INSTANCE_RUNNING;
}

static void
source_set_state (ArbFeeds *feeds, Source *s, ArbBreakerState state, const FeedClock *now)
{
  s->state = state;
  s->since_real = now->real;
  s->probe_out = FALSE;
  if (state == ARB_BREAKER_OPEN)
    {
      s->opened_mono = now->mono;
      s->healthy_since_mono = 0;
    }
  if (state == ARB_BREAKER_CLOSED)
    {
      s->failures = 0;
      s->healthy_since_mono = now->mono;
    }
  export_source (feeds, s);
}

static void
source_open (ArbFeeds *feeds, Source *s, const FeedClock *now, const char *why)
{
  ArbBreakerState was = s->state;

  g_free (s->reason);
  s->reason = g_strdup (why);
  source_set_state (feeds, s, ARB_BREAKER_OPEN, now);
  arb_metrics_counter_add (feeds->host->metrics, "arb_feed_breaker_trips_total", s->labels, 1);
  {
    g_autofree char *cooldown = duration_text (s->feed->cooldown_us);
    feed_log (feeds, s->feed, G_LOG_LEVEL_WARNING, "breaker of %s %s: %s; a probe in %s",
              arb_instance_get_name (s->inst), was == ARB_BREAKER_HALF_OPEN ? "opens again" : "opens", why,
              cooldown);
  }
}

/* switches the feed to @to (NULL: none); what kind of switch it is follows
 * from the priorities */
static void
feed_switch (ArbFeeds *feeds, Feed *f, Source *to, const FeedClock *now, const char *reason)
{
  Source *from = f->active;
  const char *type;
  const char *metric;

  if (to == from)
    return;
  f->active = to;
  f->active_since_real = now->real;
  g_free (f->reason);
  f->reason = g_strdup (reason);
  if (to == NULL)
    {
      type = "feed.down";
      metric = "arb_feed_down_total";
      feed_log (feeds, f, G_LOG_LEVEL_WARNING, "no healthy source left (%s was active): %s",
                from != NULL ? arb_instance_get_name (from->inst) : "none", reason);
    }
  else if (from != NULL ? to->index < from->index : to->index == 0)
    {
      type = "feed.recovered";
      metric = "arb_feed_recoveries_total";
      feed_log (feeds, f, G_LOG_LEVEL_MESSAGE, "back to %s (from %s): %s", arb_instance_get_name (to->inst),
                from != NULL ? arb_instance_get_name (from->inst) : "no source", reason);
    }
  else
    {
      type = "feed.failover";
      metric = "arb_feed_failovers_total";
      feed_log (feeds, f, G_LOG_LEVEL_WARNING, "failover to %s (from %s): %s", arb_instance_get_name (to->inst),
                from != NULL ? arb_instance_get_name (from->inst) : "no source", reason);
    }
  arb_metrics_counter_add (feeds->host->metrics, metric, f->labels, 1);
  export_feed (feeds, f);
  feed_event (feeds, f, type, from, to, reason);
}

/* picks the feed's active source: the current one while it is closed, until
 * a higher one has been healthy for recover_after; else the first closed one */
static void
feed_evaluate (ArbFeeds *feeds, Feed *f, const FeedClock *now)
{
  Source *current = f->active;
  Source *first = NULL;

  /* before arb_feeds_start the instances are still starting: no switches */
  if (!feeds->started)
    return;

  for (guint i = 0; i < f->sources->len && first == NULL; i++)
    {
      Source *s = g_ptr_array_index (f->sources, i);
      if (s->state == ARB_BREAKER_CLOSED && source_available (s))
        first = s;
    }

  if (current != NULL && (current->state != ARB_BREAKER_CLOSED || !source_available (current)))
    {
      g_autofree char *why = NULL;

      if (!source_available (current))
        {
          g_autofree char *r = arb_instance_dup_reason (current->inst);
          why = g_strdup_printf ("%s is %s%s%s", arb_instance_get_name (current->inst),
                                 arb_instance_state_to_string (arb_instance_get_state (current->inst)),
                                 r != NULL ? ": " : "", r != NULL ? r : "");
        }
      else
        why = g_strdup_printf ("breaker of %s is %s: %s", arb_instance_get_name (current->inst),
                               arb_breaker_state_to_string (current->state),
                               current->reason != NULL ? current->reason : "no reason");
      feed_switch (feeds, f, first, now, why);
      return;
    }
  if (current == NULL)
    {
      if (first != NULL)
        {
          g_autofree char *why = g_strdup_printf ("%s is healthy", arb_instance_get_name (first->inst));
          feed_switch (feeds, f, first, now, why);
        }
      return;
    }
  /* the current one works: a higher one takes over once it has been healthy long enough */
  for (guint i = 0; i < current->index; i++)
    {
      Source *s = g_ptr_array_index (f->sources, i);

      if (s->state == ARB_BREAKER_CLOSED && source_available (s) && s->healthy_since_mono != 0
          && now->mono - s->healthy_since_mono >= f->recover_after_us)
        {
          g_autofree char *d = duration_text (now->mono - s->healthy_since_mono);
          g_autofree char *why = g_strdup_printf ("%s has been healthy for %s", arb_instance_get_name (s->inst), d);
          feed_switch (feeds, f, s, now, why);
          return;
        }
    }
}

static void
source_failure (ArbFeeds *feeds, Source *s, const FeedClock *now, const char *why)
{
  s->failures++;
  s->healthy_since_mono = 0;
  g_free (s->reason);
  s->reason = g_strdup (why);
  arb_metrics_counter_add (feeds->host->metrics, "arb_feed_failures_total", s->labels, 1);
  switch (s->state)
    {
    case ARB_BREAKER_CLOSED:
      if (s->failures >= s->feed->failure_threshold)
        {
          g_autofree char *open_why = g_strdup_printf ("%u failure%s in a row, the last: %s", s->failures,
                                                       s->failures == 1 ? "" : "s", why);
          source_open (feeds, s, now, open_why);
        }
      break;
    case ARB_BREAKER_HALF_OPEN:
      {
        g_autofree char *open_why = g_strdup_printf ("the probe failed: %s", why);
        source_open (feeds, s, now, open_why);
        break;
      }
    case ARB_BREAKER_OPEN:
    default:
      break;
    }
  feed_evaluate (feeds, s->feed, now);
}

/* a quote is fresh when the upstream made it within stale_after */
static gboolean
quote_is_fresh (Feed *f, ArbQuote *quote, const FeedClock *now)
{
  gint64 made = arb_quote_get_source_time (quote);

  if (made == 0)
    made = arb_quote_get_receive_time (quote);
  if (made == 0)
    return TRUE;
  return now->real - made <= f->stale_after_us;
}

static gboolean
accept_quote_at (ArbFeeds *feeds, ArbInstance *inst, ArbQuote *quote, const FeedClock *now)
{
  Source *s;
  Feed *f;
  gboolean accepted;

  g_mutex_lock (&feeds->lock);
  s = g_hash_table_lookup (feeds->by_instance, inst);
  if (s == NULL)
    {
      feeds_unlock (feeds);
      return TRUE;
    }
  f = s->feed;
  if (!g_hash_table_contains (feeds->by_market, arb_quote_get_market (quote)))
    g_hash_table_insert (feeds->by_market, g_strdup (arb_quote_get_market (quote)), f);
  /* an open breaker waits for its probe: what comes before is not looked at */
  if (s->state != ARB_BREAKER_OPEN && quote_is_fresh (f, quote, now))
    {
      s->last_fresh_mono = now->mono;
      s->quote_since_report = TRUE;
      if (s->state == ARB_BREAKER_HALF_OPEN)
        {
          g_autofree char *was = g_strdup (s->reason);
          source_set_state (feeds, s, ARB_BREAKER_CLOSED, now);
          feed_log (feeds, f, G_LOG_LEVEL_MESSAGE, "breaker of %s closes: the probe brought a fresh quote (it "
                    "had opened for: %s)", arb_instance_get_name (inst), was != NULL ? was : "no reason");
          g_clear_pointer (&s->reason, g_free);
        }
      else if (s->state == ARB_BREAKER_CLOSED)
        {
          s->failures = 0;
          /* after a failure, the time it has been healthy counts from here */
          if (s->healthy_since_mono == 0)
            s->healthy_since_mono = now->mono;
        }
      feed_evaluate (feeds, f, now);
    }
  accepted = f->active == s;
  if (!accepted)
    arb_metrics_counter_add (feeds->host->metrics, "arb_feed_standby_quotes_total", s->labels, 1);
  feeds_unlock (feeds);
  return accepted;
}

static void
on_health_at (ArbFeeds *feeds, ArbInstance *inst, ArbHealth health, const char *reason, const FeedClock *now)
{
  Source *s;

  g_mutex_lock (&feeds->lock);
  s = g_hash_table_lookup (feeds->by_instance, inst);
  if (s != NULL)
    {
      gboolean delivered = s->quote_since_report;

      s->quote_since_report = FALSE;
      if (health == ARB_HEALTH_OK)
        {
          if (s->state == ARB_BREAKER_CLOSED)
            s->failures = 0;
        }
      else if (!delivered)
        {
          /* trouble, and nothing to show for it since the last report */
          g_autofree char *why = g_strdup_printf ("%s: %s", arb_health_to_string (health),
                                                  reason != NULL ? reason : "no reason given");
          source_failure (feeds, s, now, why);
        }
    }
  feeds_unlock (feeds);
}

static void
on_publish_error_at (ArbFeeds *feeds, ArbInstance *inst, const char *why, const FeedClock *now)
{
  Source *s;

  g_mutex_lock (&feeds->lock);
  s = g_hash_table_lookup (feeds->by_instance, inst);
  if (s != NULL)
    {
      g_autofree char *what = g_strdup_printf ("a quote the host refused: %s", why != NULL ? why : "invalid");
      source_failure (feeds, s, now, what);
    }
  feeds_unlock (feeds);
}

/* a half-open probe without an outcome this long is a failure */
static gint64
probe_timeout_us (Feed *f)
{
  return MAX (f->stale_after_us, f->cooldown_us);
}

static gint64
hold_off_at (ArbFeeds *feeds, ArbInstance *inst, const FeedClock *now)
{
  Source *s;
  gint64 wait_us = 0;

  g_mutex_lock (&feeds->lock);
  s = g_hash_table_lookup (feeds->by_instance, inst);
  if (s != NULL && s->state == ARB_BREAKER_OPEN && now->mono - s->opened_mono >= s->feed->cooldown_us)
    {
      /* the cooldown is over, whether or not the timer saw it yet */
      source_set_state (feeds, s, ARB_BREAKER_HALF_OPEN, now);
      feed_log (feeds, s->feed, G_LOG_LEVEL_INFO, "breaker of %s is half-open: one probe may go out",
                arb_instance_get_name (inst));
    }
  if (s != NULL)
    switch (s->state)
      {
      case ARB_BREAKER_OPEN:
        wait_us = s->opened_mono + s->feed->cooldown_us - now->mono;
        break;
      case ARB_BREAKER_HALF_OPEN:
        if (!s->probe_out)
          {
            s->probe_out = TRUE;
            s->probe_mono = now->mono;
            arb_metrics_counter_add (feeds->host->metrics, "arb_feed_probes_total", s->labels, 1);
          }
        else
          wait_us = MIN (s->probe_mono + probe_timeout_us (s->feed) - now->mono, s->feed->cooldown_us);
        break;
      case ARB_BREAKER_CLOSED:
      default:
        break;
      }
  if (wait_us > 0)
    arb_metrics_counter_add (feeds->host->metrics, "arb_feed_held_off_total", s->labels, 1);
  feeds_unlock (feeds);
  /* round up: a wait of 0.4 ms is still a wait */
  return wait_us > 0 ? (wait_us + 999) / 1000 : 0;
}

/* the breakers' clock: silence, cooldowns, probes without an answer */
static void
tick_at (ArbFeeds *feeds, const FeedClock *now)
{
  g_mutex_lock (&feeds->lock);
  for (guint i = 0; i < feeds->feeds->len; i++)
    {
      Feed *f = g_ptr_array_index (feeds->feeds, i);

      for (guint j = 0; j < f->sources->len; j++)
        {
          Source *s = g_ptr_array_index (f->sources, j);

          /* a source whose instance does not run is left out of the choice,
           * and its breaker waits for it */
          if (!source_available (s))
            {
              s->last_fresh_mono = now->mono;
              continue;
            }
          switch (s->state)
            {
            case ARB_BREAKER_CLOSED:
              if (now->mono - s->last_fresh_mono > f->stale_after_us)
                {
                  g_autofree char *d = duration_text (now->mono - s->last_fresh_mono);
                  g_autofree char *why = g_strdup_printf ("no fresh quote for %s", d);
                  source_open (feeds, s, now, why);
                }
              break;
            case ARB_BREAKER_OPEN:
              if (now->mono - s->opened_mono >= f->cooldown_us)
                {
                  source_set_state (feeds, s, ARB_BREAKER_HALF_OPEN, now);
                  feed_log (feeds, f, G_LOG_LEVEL_INFO, "breaker of %s is half-open: one probe may go out",
                            arb_instance_get_name (s->inst));
                }
              break;
            case ARB_BREAKER_HALF_OPEN:
              if (s->probe_out && now->mono - s->probe_mono > probe_timeout_us (f))
                source_open (feeds, s, now, "the probe brought no fresh quote in time");
              break;
            default:
              break;
            }
        }
      feed_evaluate (feeds, f, now);
    }
  feeds_unlock (feeds);
}

static gboolean
on_tick (gpointer data)
{
  FeedClock now = clock_now ();

  tick_at (data, &now);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* Config                                                                   */

static gboolean
feed_id_is_valid (const char *id)
{
  if (*id == '\0')
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.'))
      return FALSE;
  return TRUE;
}

/* @name ("coingecko" or "ingest:coingecko") → the ingest instance, or NULL */
static ArbInstance *
find_ingest (ArbHost *host, const char *name)
{
  g_autofree char *group = g_str_has_prefix (name, "ingest:") ? g_strdup (name) : g_strconcat ("ingest:", name, NULL);

  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      if (inst->kind == ARB_PLUGIN_INGEST && g_str_equal (inst->name, group))
        return inst;
    }
  return NULL;
}

static char *
ingest_ids (ArbHost *host, GStrv *out_ids)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_autoptr(GString) list = g_string_new (NULL);

  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      if (inst->kind != ARB_PLUGIN_INGEST)
        continue;
      g_strv_builder_add (b, inst->id);
      g_string_append_printf (list, "%s%s", list->len > 0 ? ", " : "", inst->id);
    }
  *out_ids = g_strv_builder_end (b);
  return g_string_free (g_steal_pointer (&list), FALSE);
}

static Feed *
feed_from_group (ArbFeeds *feeds, ArbConfig *config, const char *group, GPtrArray *problems)
{
  const ArbConfigKey *schemas[] = { feed_schema, NULL };
  const char *path = arb_config_get_path (config);
  g_autoptr(ArbConfigValues) values = NULL;
  g_autofree char *ids_text = NULL;
  g_auto(GStrv) ids = NULL;
  const char *const *names;
  guint n_named = 0;
  Feed *f;

  values = arb_config_check_group (config, group, schemas, problems);
  f = g_new0 (Feed, 1);
  f->name = g_strdup (group);
  f->labels = arb_metrics_labels ("feed", group, NULL);
  f->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) source_free);
  f->failure_threshold = (guint) MAX (arb_config_values_get_int (values, "failure_threshold"), 1);
  f->stale_after_us = arb_config_values_get_duration_ms (values, "stale_after") * 1000;
  f->cooldown_us = arb_config_values_get_duration_ms (values, "cooldown") * 1000;
  f->recover_after_us = arb_config_values_get_duration_ms (values, "recover_after") * 1000;
  f->required = arb_config_values_get_boolean (values, "required");

  ids_text = ingest_ids (feeds->host, &ids);
  names = arb_config_values_get_strv (values, "sources");
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      g_autofree char *name = g_strstrip (g_strdup (names[i]));
      ArbInstance *inst;
      Source *other;
      Source *s;

      if (*name == '\0')
        continue;
      n_named++;
      inst = find_ingest (feeds->host, name);
      if (inst == NULL)
        {
          const char *near = arb_closest_word (g_str_has_prefix (name, "ingest:") ? name + 7 : name,
                                               (const char *const *) ids);
          if (near != NULL)
            arb_config_problems_add (problems, path, group, "sources",
                                     "\"%s\" is not an ingest instance (did you mean \"%s\"? there are: %s)", name,
                                     near, ids_text);
          else
            arb_config_problems_add (problems, path, group, "sources",
                                     "\"%s\" is not an ingest instance; a source is the NAME of an [ingest:NAME] "
                                     "group (there are: %s)", name, *ids_text != '\0' ? ids_text : "none");
          continue;
        }
      other = g_hash_table_lookup (feeds->by_instance, inst);
      if (other != NULL)
        {
          if (other->feed == f)
            arb_config_problems_add (problems, path, group, "sources", "%s is listed twice", inst->id);
          else
            arb_config_problems_add (problems, path, group, "sources",
                                     "%s is already a source of [%s]; an instance feeds one feed", inst->id,
                                     other->feed->name);
          continue;
        }
      s = g_new0 (Source, 1);
      s->feed = f;
      s->inst = inst;
      s->index = f->sources->len;
      s->labels = arb_metrics_labels ("feed", group, "source", inst->name, NULL);
      s->state = ARB_BREAKER_CLOSED;
      g_ptr_array_add (f->sources, s);
      g_hash_table_insert (feeds->by_instance, inst, s);
    }
  if (n_named == 0 && arb_config_values_is_set (values, "sources"))
    arb_config_problems_add (problems, path, group, "sources", "names no ingest instance");
  return f;
}

ArbFeeds *
arb_feeds_new (ArbHost *host, ArbConfig *config, GPtrArray *problems)
{
  ArbFeeds *feeds = g_new0 (ArbFeeds, 1);
  g_auto(GStrv) groups = arb_config_get_groups (config);
  gint64 shortest_us = G_MAXINT64;

  feeds->host = host;
  g_mutex_init (&feeds->lock);
  feeds->feeds = g_ptr_array_new_with_free_func ((GDestroyNotify) feed_free);
  feeds->by_instance = g_hash_table_new (g_direct_hash, g_direct_equal);
  feeds->by_market = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  feeds->actions = g_ptr_array_new_with_free_func ((GDestroyNotify) action_free);
  declare_metrics (host->metrics);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *id;
      Feed *f;

      if (!g_str_has_prefix (groups[i], "feed:"))
        continue;
      id = groups[i] + strlen ("feed:");
      if (!feed_id_is_valid (id))
        {
          arb_config_problems_add (problems, arb_config_get_path (config), groups[i], NULL,
                                   "\"%s\" is not a valid feed name (letters, digits, '-', '_', '.')", id);
          continue;
        }
      f = feed_from_group (feeds, config, groups[i], problems);
      /* until arb_feeds_start chooses, a quote of the first source (one
       * published while the instances start) goes to the book */
      f->active = f->sources->len > 0 ? g_ptr_array_index (f->sources, 0) : NULL;
      g_ptr_array_add (feeds->feeds, f);
      shortest_us = MIN (shortest_us, MIN (f->stale_after_us, f->cooldown_us));
      if (f->recover_after_us > 0)
        shortest_us = MIN (shortest_us, f->recover_after_us);
      export_feed (feeds, f);
    }
  /* fine enough for the shortest duration a breaker waits out */
  feeds->tick_ms = (guint) CLAMP (shortest_us / 1000 / 5, FEED_TICK_MIN_MS, FEED_TICK_MAX_MS);
  return feeds;
}

void
arb_feeds_free (ArbFeeds *feeds)
{
  if (feeds == NULL)
    return;
  arb_feeds_stop (feeds);
  g_hash_table_unref (feeds->by_instance);
  g_hash_table_unref (feeds->by_market);
  g_ptr_array_unref (feeds->feeds);
  g_ptr_array_unref (feeds->actions);
  g_mutex_clear (&feeds->lock);
  g_free (feeds);
}

guint
arb_feeds_get_count (ArbFeeds *feeds)
{
  return feeds->feeds->len;
}

static void
start_at (ArbFeeds *feeds, const FeedClock *now)
{
  g_mutex_lock (&feeds->lock);
  feeds->started = TRUE;
  for (guint i = 0; i < feeds->feeds->len; i++)
    {
      Feed *f = g_ptr_array_index (feeds->feeds, i);

      /* every source gets stale_after from now to show it works */
      for (guint j = 0; j < f->sources->len; j++)
        {
          Source *s = g_ptr_array_index (f->sources, j);
          s->last_fresh_mono = now->mono;
          s->healthy_since_mono = now->mono;
          s->since_real = now->real;
        }
      /* the first choice is no switch: no event, nothing counted */
      f->active = NULL;
      for (guint j = 0; j < f->sources->len && f->active == NULL; j++)
        {
          Source *s = g_ptr_array_index (f->sources, j);
          if (source_available (s) && s->state == ARB_BREAKER_CLOSED)
            f->active = s;
        }
      f->active_since_real = now->real;
      if (f->active == NULL)
        {
          f->reason = g_strdup ("none of its sources runs");
          feed_log (feeds, f, G_LOG_LEVEL_WARNING, "none of its %u source%s runs", f->sources->len,
                    f->sources->len == 1 ? "" : "s");
        }
      else if (f->active->index > 0)
        {
          Source *first = g_ptr_array_index (f->sources, 0);
          g_autofree char *r = first->state != ARB_BREAKER_CLOSED ? g_strdup (first->reason)
                                                                  : arb_instance_dup_reason (first->inst);
          const char *what = first->state != ARB_BREAKER_CLOSED
                               ? "open"
                               : arb_instance_state_to_string (arb_instance_get_state (first->inst));

          f->reason = g_strdup_printf ("%s is %s", arb_instance_get_name (first->inst), what);
          feed_log (feeds, f, G_LOG_LEVEL_WARNING, "starts with %s: %s is %s%s%s",
                    arb_instance_get_name (f->active->inst), arb_instance_get_name (first->inst), what,
                    r != NULL ? ": " : "", r != NULL ? r : "");
        }
      else
        feed_log (feeds, f, G_LOG_LEVEL_INFO, "starts with %s (%u source%s)", arb_instance_get_name (f->active->inst),
                  f->sources->len, f->sources->len == 1 ? "" : "s");
      export_feed (feeds, f);
    }
  feeds_unlock (feeds);
}

void
arb_feeds_start (ArbFeeds *feeds)
{
  FeedClock now = clock_now ();

  if (feeds->tick != NULL)
    return;
  start_at (feeds, &now);
  if (feeds->feeds->len == 0)
    return;
  feeds->tick = g_timeout_source_new (feeds->tick_ms);
  g_source_set_callback (feeds->tick, on_tick, feeds, NULL);
  g_source_set_name (feeds->tick, "arb-feeds-tick");
  g_source_attach (feeds->tick, feeds->host->context);
}

void
arb_feeds_stop (ArbFeeds *feeds)
{
  if (feeds->tick != NULL)
    {
      g_source_destroy (feeds->tick);
      g_clear_pointer (&feeds->tick, g_source_unref);
    }
}

/* ------------------------------------------------------------------------ */
/* The host's hooks                                                         */

gboolean
arb_feeds_accept_quote (ArbFeeds *feeds, ArbInstance *source, ArbQuote *quote)
{
  FeedClock now = clock_now ();

  if (feeds == NULL)
    return TRUE;
  return accept_quote_at (feeds, source, quote, &now);
}

void
arb_feeds_on_health (ArbFeeds *feeds, ArbInstance *source, ArbHealth health, const char *reason)
{
  FeedClock now = clock_now ();

  if (feeds != NULL)
    on_health_at (feeds, source, health, reason, &now);
}

void
arb_feeds_on_publish_error (ArbFeeds *feeds, ArbInstance *source, const char *why)
{
  FeedClock now = clock_now ();

  if (feeds != NULL)
    on_publish_error_at (feeds, source, why, &now);
}

gint64
arb_feeds_hold_off_ms (ArbFeeds *feeds, ArbInstance *source)
{
  FeedClock now = clock_now ();

  if (feeds == NULL)
    return 0;
  return hold_off_at (feeds, source, &now);
}

gboolean
arb_feeds_market_has_healthy_source (ArbFeeds *feeds, const char *market)
{
  Feed *f;
  gboolean healthy;

  if (feeds == NULL)
    return TRUE;
  g_mutex_lock (&feeds->lock);
  f = g_hash_table_lookup (feeds->by_market, market);
  healthy = f == NULL || f->active != NULL;
  g_mutex_unlock (&feeds->lock);
  return healthy;
}

char *
arb_feeds_dup_active (ArbFeeds *feeds, const char *feed)
{
  char *name = NULL;

  g_mutex_lock (&feeds->lock);
  for (guint i = 0; i < feeds->feeds->len; i++)
    {
      Feed *f = g_ptr_array_index (feeds->feeds, i);
      if (g_str_equal (f->name, feed) && f->active != NULL)
        name = g_strdup (arb_instance_get_name (f->active->inst));
    }
  g_mutex_unlock (&feeds->lock);
  return name;
}

ArbBreakerState
arb_feeds_get_breaker (ArbFeeds *feeds, ArbInstance *source)
{
  ArbBreakerState state = ARB_BREAKER_CLOSED;
  Source *s;

  g_mutex_lock (&feeds->lock);
  s = g_hash_table_lookup (feeds->by_instance, source);
  if (s != NULL)
    state = s->state;
  g_mutex_unlock (&feeds->lock);
  return state;
}

static void
add_string_or_null (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

void
arb_feeds_add_ready_json (ArbFeeds *feeds, gpointer builder, gboolean *ready)
{
  JsonBuilder *b = builder;

  if (feeds == NULL)
    return;
  g_mutex_lock (&feeds->lock);
  json_builder_set_member_name (b, "feeds");
  json_builder_begin_array (b);
  for (guint i = 0; i < feeds->feeds->len; i++)
    {
      Feed *f = g_ptr_array_index (feeds->feeds, i);
      g_autofree char *since = arb_format_time_us (f->active_since_real);

      if (f->required && f->active == NULL && feeds->started)
        *ready = FALSE;
      json_builder_begin_object (b);
      add_string_or_null (b, "name", f->name);
      json_builder_set_member_name (b, "required");
      json_builder_add_boolean_value (b, f->required);
      add_string_or_null (b, "state", f->active != NULL ? "up" : "down");
      add_string_or_null (b, "active", f->active != NULL ? arb_instance_get_name (f->active->inst) : NULL);
      add_string_or_null (b, "since", f->active_since_real != 0 ? since : NULL);
      add_string_or_null (b, "reason", f->reason);
      json_builder_set_member_name (b, "sources");
      json_builder_begin_array (b);
      for (guint j = 0; j < f->sources->len; j++)
        {
          Source *s = g_ptr_array_index (f->sources, j);
          g_autofree char *changed = arb_format_time_us (s->since_real);

          json_builder_begin_object (b);
          add_string_or_null (b, "name", arb_instance_get_name (s->inst));
          add_string_or_null (b, "breaker", arb_breaker_state_to_string (s->state));
          add_string_or_null (b, "instance", arb_instance_state_to_string (arb_instance_get_state (s->inst)));
          json_builder_set_member_name (b, "failures");
          json_builder_add_int_value (b, s->failures);
          add_string_or_null (b, "since", s->since_real != 0 ? changed : NULL);
          add_string_or_null (b, "reason", s->reason);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  g_mutex_unlock (&feeds->lock);
}
