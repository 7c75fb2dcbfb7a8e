/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-feed-private.h"
#include "arb-host-private.h"
#include "arb-risk-private.h"
#include "arb-util-private.h"

G_DEFINE_QUARK (arb-plugin-error-quark, arb_plugin_error)

#define RETRY_FIRST_MS 1000
#define RETRY_CAP_MS   60000

const char *
arb_instance_state_to_string (ArbInstanceState state)
{
  switch (state)
    {
    case ARB_INSTANCE_CONFIGURED: return "configured";
    case ARB_INSTANCE_CREATED: return "created";
    case ARB_INSTANCE_RUNNING: return "running";
    case ARB_INSTANCE_RETRYING: return "retrying";
    case ARB_INSTANCE_STOPPED: return "stopped";
    case ARB_INSTANCE_FAILED: return "failed";
    default: return "unknown";
    }
}

const char *
arb_health_to_string (ArbHealth health)
{
  switch (health)
    {
    case ARB_HEALTH_OK: return "ok";
    case ARB_HEALTH_DEGRADED: return "degraded";
    case ARB_HEALTH_DOWN: return "down";
    default: return "unknown";
    }
}

gint64
arb_now_us (void)
{
  return g_get_real_time ();
}

static void
export_state (ArbInstance *inst)
{
  ArbMetrics *m = inst->host->metrics;
  gboolean up;
  ArbHealth health;

  g_mutex_lock (&inst->state_lock);
  up = inst->state == ARB_INSTANCE_RUNNING && inst->health != ARB_HEALTH_DOWN;
  health = inst->state == ARB_INSTANCE_RUNNING ? inst->health : ARB_HEALTH_DOWN;
  g_mutex_unlock (&inst->state_lock);
  arb_metrics_gauge_set (m, "arb_instance_up", inst->labels, up ? 1 : 0);
  arb_metrics_gauge_set (m, "arb_instance_health", inst->labels, (gdouble) health);
}

ArbInstance *
arb_instance_new (ArbHost *host, const char *group, guint32 kind, ArbPluginModule *module, ArbConfigValues *values,
                  const char *failure)
{
  ArbInstance *inst = g_new0 (ArbInstance, 1);
  const char *colon = strchr (group, ':');

  inst->host = host;
  inst->name = g_strdup (group);
  inst->id = g_strdup (colon != NULL ? colon + 1 : group);
  inst->kind = kind;
  inst->module = module;
  inst->values = values;
  inst->required = values != NULL && arb_config_values_get_boolean (values, "required");
  inst->labels = arb_metrics_labels ("instance", group, "plugin", module != NULL ? module->name : "", NULL);
  g_mutex_init (&inst->call_lock);
  g_mutex_init (&inst->state_lock);
  inst->timers = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, NULL);
  inst->next_timer_id = 1;
  inst->state = ARB_INSTANCE_CONFIGURED;
  inst->health = ARB_HEALTH_DOWN;
  inst->reason = g_strdup ("not started");
  inst->since_us = arb_now_us ();
  if (kind == ARB_PLUGIN_SINK && values != NULL)
    inst->events = g_strdupv ((char **) arb_config_values_get_strv (values, "events"));
  if (failure != NULL)
    {
      inst->state = ARB_INSTANCE_FAILED;
      g_free (inst->reason);
      inst->reason = g_strdup (failure);
    }
  export_state (inst);
  return inst;
}

static void
remove_timers (ArbInstance *inst)
{
  GHashTableIter it;
  gpointer source;

  g_hash_table_iter_init (&it, inst->timers);
  while (g_hash_table_iter_next (&it, NULL, &source))
    {
      g_source_destroy (source);
      g_source_unref (source);
    }
  g_hash_table_remove_all (inst->timers);
}

void
arb_instance_free (ArbInstance *inst)
{
  if (inst == NULL)
    return;
  if (inst->retry_source != 0)
    {
      GSource *s = g_main_context_find_source_by_id (inst->host->context, inst->retry_source);
      if (s != NULL)
        g_source_destroy (s);
    }
  remove_timers (inst);
  g_hash_table_unref (inst->timers);
  g_free (inst->name);
  g_free (inst->id);
  g_free (inst->labels);
  g_free (inst->reason);
  g_free (inst->last_error);
  g_strfreev (inst->events);
  arb_config_values_free (inst->values);
  g_mutex_clear (&inst->call_lock);
  g_mutex_clear (&inst->state_lock);
  g_free (inst);
}

/* ------------------------------------------------------------------------ */
/* State and health                                                         */

static void
set_state (ArbInstance *inst, ArbInstanceState state, ArbHealth health, const char *reason)
{
  gboolean changed;
  GLogLevelFlags level;
  g_autofree char *line = NULL;

  g_mutex_lock (&inst->state_lock);
  changed = inst->state != state || inst->health != health || g_strcmp0 (inst->reason, reason) != 0;
  inst->state = state;
  inst->health = health;
  g_free (inst->reason);
  inst->reason = g_strdup (reason);
  if (changed)
    inst->since_us = arb_now_us ();
  g_mutex_unlock (&inst->state_lock);

  export_state (inst);
  if (!changed)
    return;
  /* a running instance going down, or a failure, is worth a warning; the
   * ordinary steps of the lifecycle are not */
  level = state == ARB_INSTANCE_FAILED || state == ARB_INSTANCE_RETRYING
              || (state == ARB_INSTANCE_RUNNING && health == ARB_HEALTH_DOWN)
            ? G_LOG_LEVEL_WARNING
            : G_LOG_LEVEL_INFO;
  line = g_strdup_printf ("%s, health %s%s%s", arb_instance_state_to_string (state), arb_health_to_string (health),
                          reason != NULL ? ": " : "", reason != NULL ? reason : "");
  arb_log_for (inst->name, NULL, level, line);
}

void
arb_instance_set_failed (ArbInstance *inst, const char *reason)
{
  set_state (inst, ARB_INSTANCE_FAILED, ARB_HEALTH_DOWN, reason);
}

ArbInstanceState
arb_instance_get_state (ArbInstance *inst)
{
  ArbInstanceState s;
  g_mutex_lock (&inst->state_lock);
  s = inst->state;
  g_mutex_unlock (&inst->state_lock);
  return s;
}

ArbHealth
arb_instance_get_health (ArbInstance *inst)
{
  ArbHealth h;
  g_mutex_lock (&inst->state_lock);
  h = inst->health;
  g_mutex_unlock (&inst->state_lock);
  return h;
}

char *
arb_instance_dup_reason (ArbInstance *inst)
{
  char *r;
  g_mutex_lock (&inst->state_lock);
  r = g_strdup (inst->reason);
  g_mutex_unlock (&inst->state_lock);
  return r;
}

gboolean
arb_instance_is_up (ArbInstance *inst)
{
  gboolean up;
  g_mutex_lock (&inst->state_lock);
  up = inst->state == ARB_INSTANCE_RUNNING && inst->health != ARB_HEALTH_DOWN;
  g_mutex_unlock (&inst->state_lock);
  return up;
}

void
arb_instance_set_health (ArbInstance *inst, ArbHealth health, const char *reason_format, ...)
{
  g_autofree char *reason = NULL;
  ArbInstanceState state;
  va_list args;

  g_return_if_fail (inst != NULL);
  if (reason_format != NULL)
    {
      va_start (args, reason_format);
      reason = g_strdup_vprintf (reason_format, args);
      va_end (args);
    }
  state = arb_instance_get_state (inst);
  /* every report, repeated ones too: the breakers count failures */
  if (inst->host->feeds != NULL && inst->kind == ARB_PLUGIN_INGEST)
    arb_feeds_on_health (inst->host->feeds, inst, health, reason);
  /* health is the plugin's word on a running instance; the host owns the rest */
  if (state != ARB_INSTANCE_RUNNING && state != ARB_INSTANCE_CREATED)
    return;
  g_mutex_lock (&inst->state_lock);
  inst->health_reported = TRUE;
  g_mutex_unlock (&inst->state_lock);
  set_state (inst, state, health, reason);
}

/* ------------------------------------------------------------------------ */
/* The wrapper around every callback                                        */

typedef struct {
  ArbInstance *inst;
  const char  *callback;
  gint64       start;
} CallScope;

static CallScope
call_begin (ArbInstance *inst, const char *callback)
{
  g_mutex_lock (&inst->call_lock);
  return (CallScope){ inst, callback, g_get_monotonic_time () };
}

/* enforces the GError contract and keeps the counters; returns @ok */
static gboolean
call_end (CallScope *scope, gboolean ok, GError **error)
{
  ArbInstance *inst = scope->inst;
  ArbMetrics *m = inst->host->metrics;
  g_autofree char *labels = arb_metrics_labels ("instance", inst->name, "callback", scope->callback, NULL);
  gdouble secs = (gdouble) (g_get_monotonic_time () - scope->start) / G_USEC_PER_SEC;

  g_mutex_unlock (&inst->call_lock);
  arb_metrics_counter_add (m, "arb_plugin_calls_total", labels, 1);
  arb_metrics_histogram_observe (m, "arb_plugin_call_duration_seconds", labels, secs);
  if (ok)
    {
      if (error != NULL && *error != NULL)
        {
          /* TRUE with an error set: keep the answer, drop the stray error */
          g_clear_error (error);
        }
      g_mutex_lock (&inst->state_lock);
      inst->last_success_us = arb_now_us ();
      g_mutex_unlock (&inst->state_lock);
      return TRUE;
    }
  arb_metrics_counter_add (m, "arb_plugin_call_errors_total", labels, 1);
  if (error != NULL && *error == NULL)
    {
      /* create fails with NULL, every other callback with FALSE */
      const char *what = g_str_equal (scope->callback, "create") ? "NULL" : "FALSE";
      g_autofree char *line = g_strdup_printf ("plugin bug: %s() returned %s without setting an error; "
                                               "treated as a failure",
                                               scope->callback, what);
      arb_log_for (inst->name, NULL, G_LOG_LEVEL_CRITICAL, line);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG,
                   "%s() returned %s without an error, a bug in plugin %s; report it to the plugin's authors",
                   scope->callback, what, inst->module->name);
    }
  g_mutex_lock (&inst->state_lock);
  g_free (inst->last_error);
  inst->last_error = g_strdup (error != NULL && *error != NULL ? (*error)->message : "failed");
  g_mutex_unlock (&inst->state_lock);
  return FALSE;
}

/* the lifecycle callbacks every kind has, whatever its table */
typedef struct {
  gpointer (*create) (ArbInstance *inst, GError **error);
  gboolean (*start) (gpointer self, GError **error);
  void (*stop) (gpointer self);
  void (*destroy) (gpointer self);
} Lifecycle;

static Lifecycle
lifecycle_of (ArbInstance *inst)
{
  const ArbPluginModule *m = inst->module;
  switch (inst->kind)
    {
    case ARB_PLUGIN_INGEST:
      return (Lifecycle){ m->ingest.create, m->ingest.start, m->ingest.stop, m->ingest.destroy };
    case ARB_PLUGIN_SINK:
      return (Lifecycle){ m->sink.create, m->sink.start, m->sink.stop, m->sink.destroy };
    case ARB_PLUGIN_RISK:
      return (Lifecycle){ m->risk.create, m->risk.start, m->risk.stop, m->risk.destroy };
    default:
      return (Lifecycle){ NULL, NULL, NULL, NULL };
    }
}

gboolean
arb_instance_create (ArbInstance *inst, GError **error)
{
  CallScope scope;
  gpointer self = NULL;
  g_autoptr(GError) local = NULL;
  gpointer (*create) (ArbInstance *, GError **) = NULL;

  g_return_val_if_fail (inst->state == ARB_INSTANCE_CONFIGURED, FALSE);
  create = lifecycle_of (inst).create;
  scope = call_begin (inst, "create");
  self = create (inst, &local);
  if (!call_end (&scope, self != NULL, &local))
    {
      g_autofree char *reason = g_strdup_printf ("create: %s", local->message);
      arb_instance_set_failed (inst, reason);
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: create: ", inst->name);
      return FALSE;
    }
  inst->self = self;
  set_state (inst, ARB_INSTANCE_CREATED, ARB_HEALTH_DOWN, "created, not started");
  return TRUE;
}

static gboolean retry_start (gpointer data);

static gboolean
call_start (ArbInstance *inst, GError **error)
{
  CallScope scope;
  gboolean ok = FALSE;
  gboolean (*start) (gpointer, GError **) = NULL;

  start = lifecycle_of (inst).start;
  /* a plugin that reports health during start sees a created instance */
  inst->started = TRUE;
  g_mutex_lock (&inst->state_lock);
  inst->health_reported = FALSE;
  g_mutex_unlock (&inst->state_lock);
  scope = call_begin (inst, "start");
  ok = start (inst->self, error);
  return call_end (&scope, ok, error);
}

static void
after_start (ArbInstance *inst, gboolean ok, GError *error)
{
  if (ok)
    {
      g_autofree char *reason = NULL;
      ArbHealth health;
      /* keep a health the plugin reported during start, DOWN included;
       * without a report, a started instance is OK */
      g_mutex_lock (&inst->state_lock);
      health = inst->health_reported ? inst->health : ARB_HEALTH_OK;
      reason = inst->health_reported ? g_strdup (inst->reason) : NULL;
      g_mutex_unlock (&inst->state_lock);
      inst->retry_delay_ms = 0;
      set_state (inst, ARB_INSTANCE_RUNNING, health, reason);
      if (inst->kind == ARB_PLUGIN_SINK)
        arb_relay_attach (inst->host->relay, inst,
                          (guint) arb_config_values_get_int (inst->values, "queue_size"));
      return;
    }
  if (g_error_matches (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE) && !inst->host->stopping)
    {
      g_autofree char *reason = NULL;
      inst->retry_delay_ms = inst->retry_delay_ms == 0 ? RETRY_FIRST_MS : MIN (inst->retry_delay_ms * 2, RETRY_CAP_MS);
      reason = g_strdup_printf ("start: %s (retrying in %u ms)", error->message, inst->retry_delay_ms);
      set_state (inst, ARB_INSTANCE_RETRYING, ARB_HEALTH_DOWN, reason);
      {
        GSource *s = g_timeout_source_new (inst->retry_delay_ms);
        g_source_set_callback (s, retry_start, inst, NULL);
        g_source_set_name (s, "arb-instance-retry");
        inst->retry_source = g_source_attach (s, inst->host->context);
        g_source_unref (s);
      }
      return;
    }
  {
    g_autofree char *reason = g_strdup_printf ("start: %s", error->message);
    arb_instance_set_failed (inst, reason);
  }
}

static gboolean
retry_start (gpointer data)
{
  ArbInstance *inst = data;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  inst->retry_source = 0;
  if (arb_instance_get_state (inst) != ARB_INSTANCE_RETRYING)
    return G_SOURCE_REMOVE;
  /* the failed start gets its stop before the next try */
  arb_instance_stop (inst);
  set_state (inst, ARB_INSTANCE_CREATED, ARB_HEALTH_DOWN, "retrying start");
  ok = call_start (inst, &error);
  after_start (inst, ok, error);
  return G_SOURCE_REMOVE;
}

gboolean
arb_instance_start (ArbInstance *inst, GError **error)
{
  g_autoptr(GError) local = NULL;
  gboolean ok;

  g_return_val_if_fail (inst->state == ARB_INSTANCE_CREATED, FALSE);
  ok = call_start (inst, &local);
  after_start (inst, ok, local);
  if (!ok)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: start: ", inst->name);
      return FALSE;
    }
  return TRUE;
}

void
arb_instance_stop (ArbInstance *inst)
{
  CallScope scope;
  void (*stop) (gpointer) = NULL;
  ArbInstanceState state = arb_instance_get_state (inst);

  if (inst->self == NULL)
    return;
  if (state == ARB_INSTANCE_STOPPED || state == ARB_INSTANCE_CONFIGURED)
    return;
  /* one stop per start: a failed instance stopped again is not stopped twice */
  if (!inst->started)
    return;
  inst->started = FALSE;
  if (inst->retry_source != 0)
    {
      GSource *s = g_main_context_find_source_by_id (inst->host->context, inst->retry_source);
      if (s != NULL)
        g_source_destroy (s);
      inst->retry_source = 0;
    }
  remove_timers (inst);
  stop = lifecycle_of (inst).stop;
  scope = call_begin (inst, "stop");
  stop (inst->self);
  call_end (&scope, TRUE, NULL);
  /* a failed instance keeps its reason; a retry in progress sets its own state */
  if (state == ARB_INSTANCE_RETRYING)
    {
      /* nothing retries it any more, but the failure stays visible */
      g_autofree char *reason = arb_instance_dup_reason (inst);
      g_autofree char *line = g_strdup_printf ("stopped while retrying; %s", reason != NULL ? reason : "");
      set_state (inst, ARB_INSTANCE_STOPPED, ARB_HEALTH_DOWN, line);
    }
  else if (state != ARB_INSTANCE_FAILED)
    set_state (inst, ARB_INSTANCE_STOPPED, ARB_HEALTH_DOWN, "stopped");
}

void
arb_instance_destroy (ArbInstance *inst)
{
  CallScope scope;
  void (*destroy) (gpointer) = NULL;

  if (inst->self == NULL)
    return;
  destroy = lifecycle_of (inst).destroy;
  scope = call_begin (inst, "destroy");
  destroy (inst->self);
  call_end (&scope, TRUE, NULL);
  inst->self = NULL;
}

gboolean
arb_instance_sink_write (ArbInstance *inst, ArbBatch *batch, GError **error)
{
  CallScope scope;
  gboolean ok;

  g_return_val_if_fail (inst->kind == ARB_PLUGIN_SINK, FALSE);
  scope = call_begin (inst, "write");
  ok = inst->module->sink.write (inst->self, batch, error);
  return call_end (&scope, ok, error);
}

gboolean
arb_instance_sink_flush (ArbInstance *inst, GError **error)
{
  CallScope scope;
  gboolean ok;

  if (inst->module->sink.flush == NULL)
    return TRUE;
  scope = call_begin (inst, "flush");
  ok = inst->module->sink.flush (inst->self, error);
  return call_end (&scope, ok, error);
}

gboolean
arb_instance_risk_check_order (ArbInstance *inst, const ArbOrderView *order, const ArbAccountView *account,
                               ArbRiskVerdict *verdict, GError **error)
{
  CallScope scope;
  gboolean ok;

  g_return_val_if_fail (inst->kind == ARB_PLUGIN_RISK, FALSE);
  if (order->event == NULL)
    {
      /* the caller did not look the event up (arb_risk_check_order does,
       * once for every instance): the plugin sees it all the same */
      ArbOrderView with_event = *order;
      char *event = arb_price_book_dup_event (inst->host->book, order->market);

      with_event.event = event != NULL ? event : order->market;
      scope = call_begin (inst, "check_order");
      ok = inst->module->risk.check_order (inst->self, &with_event, account, verdict, error);
      ok = call_end (&scope, ok, error);
      g_clear_pointer (&event, g_ref_string_release);
      return ok;
    }
  scope = call_begin (inst, "check_order");
  ok = inst->module->risk.check_order (inst->self, order, account, verdict, error);
  return call_end (&scope, ok, error);
}

gboolean
arb_instance_risk_on_mark (ArbInstance *inst, const ArbAccountView *account, ArbRiskVerdict *verdict, GError **error)
{
  CallScope scope;
  gboolean ok;

  g_return_val_if_fail (inst->kind == ARB_PLUGIN_RISK, FALSE);
  if (inst->module->risk.on_mark == NULL)
    return TRUE;
  scope = call_begin (inst, "on_mark");
  ok = inst->module->risk.on_mark (inst->self, account, verdict, error);
  return call_end (&scope, ok, error);
}

/* ------------------------------------------------------------------------ */
/* The API plugins see                                                      */

const char *
arb_instance_get_name (ArbInstance *inst)
{
  return inst->name;
}

const char *
arb_instance_get_id (ArbInstance *inst)
{
  return inst->id;
}

GMainContext *
arb_instance_get_context (ArbInstance *inst)
{
  return inst->host->context;
}

gpointer
arb_instance_get_soup_session (ArbInstance *inst)
{
  return inst->host->soup_session;
}

const char *
arb_instance_get_state_dir (ArbInstance *inst)
{
  return inst->host->state_dir;
}

gboolean
arb_instance_has_key (ArbInstance *inst, const char *key)
{
  return arb_config_values_lookup_key (inst->values, key) != NULL && arb_config_values_is_set (inst->values, key);
}

const char *
arb_instance_get_string (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_string (inst->values, key);
}

gint64
arb_instance_get_int (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_int (inst->values, key);
}

gboolean
arb_instance_get_boolean (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_boolean (inst->values, key);
}

gint64
arb_instance_get_duration_ms (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_duration_ms (inst->values, key);
}

const char *const *
arb_instance_get_strv (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_strv (inst->values, key);
}

ArbDecimal
arb_instance_get_decimal (ArbInstance *inst, const char *key)
{
  return arb_config_values_get_decimal (inst->values, key);
}

const char *
arb_instance_get_path (ArbInstance *inst, const char *key)
{
  const ArbConfigKey *spec = arb_config_values_lookup_key (inst->values, key);
  if (spec != NULL && spec->type != ARB_CFG_PATH)
    g_critical ("%s: asked for key \"%s\" as a path, but it is declared as %s", inst->name, key,
                arb_config_type_to_string (spec->type));
  return arb_config_values_get_string (inst->values, key);
}

char *
arb_instance_get_secret (ArbInstance *inst, const char *key, GError **error)
{
  return arb_config_values_get_secret (inst->values, key, error);
}

void
arb_secret_free (char *secret)
{
  if (secret == NULL)
    return;
  /* volatile, so the wipe is not optimised away */
  for (volatile char *p = secret; *p != '\0'; p++)
    *p = '\0';
  g_free (secret);
}

void
arb_instance_log (ArbInstance *inst, GLogLevelFlags level, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  arb_log_for (inst->name, NULL, level, message);
}

static char *
plugin_metric_name (ArbInstance *inst, const char *name)
{
  if (!arb_metrics_name_is_valid (name))
    {
      g_warning ("%s: metric name \"%s\" is not valid ([a-z_][a-z0-9_]*); ignored", inst->name, name);
      return NULL;
    }
  return g_strdup_printf ("arb_plugin_%s", name);
}

void
arb_instance_counter_add (ArbInstance *inst, const char *name, guint64 delta)
{
  g_autofree char *full = plugin_metric_name (inst, name);
  if (full != NULL)
    arb_metrics_counter_add (inst->host->metrics, full, inst->labels, delta);
}

void
arb_instance_gauge_set (ArbInstance *inst, const char *name, gdouble value)
{
  g_autofree char *full = plugin_metric_name (inst, name);
  if (full != NULL)
    arb_metrics_gauge_set (inst->host->metrics, full, inst->labels, value);
}

void
arb_instance_histogram_observe (ArbInstance *inst, const char *name, gdouble value)
{
  g_autofree char *full = plugin_metric_name (inst, name);
  if (full != NULL)
    arb_metrics_histogram_observe (inst->host->metrics, full, inst->labels, value);
}

typedef struct {
  ArbInstance  *inst;
  ArbTimerFunc  func;
  guint         id;
} Timer;

static gboolean
timer_dispatch (gpointer data)
{
  Timer *t = data;
  ArbInstance *inst = t->inst;
  CallScope scope;
  gboolean again;

  scope = call_begin (inst, "timer");
  again = t->func (inst->self);
  call_end (&scope, TRUE, NULL);
  if (!again)
    {
      GSource *s = g_hash_table_lookup (inst->timers, GUINT_TO_POINTER (t->id));
      if (s != NULL)
        {
          g_hash_table_remove (inst->timers, GUINT_TO_POINTER (t->id));
          g_source_unref (s);
        }
    }
  return again;
}

guint
arb_instance_timer_add (ArbInstance *inst, guint interval_ms, ArbTimerFunc func)
{
  Timer *t = g_new0 (Timer, 1);
  GSource *s = g_timeout_source_new (interval_ms);

  t->inst = inst;
  t->func = func;
  t->id = inst->next_timer_id++;
  g_source_set_callback (s, timer_dispatch, t, g_free);
  g_source_set_name (s, "arb-instance-timer");
  g_source_attach (s, inst->host->context);
  g_hash_table_insert (inst->timers, GUINT_TO_POINTER (t->id), s); /* keeps the ref */
  return t->id;
}

void
arb_instance_timer_cancel (ArbInstance *inst, guint timer_id)
{
  GSource *s = g_hash_table_lookup (inst->timers, GUINT_TO_POINTER (timer_id));
  if (s == NULL)
    return;
  g_hash_table_remove (inst->timers, GUINT_TO_POINTER (timer_id));
  g_source_destroy (s);
  g_source_unref (s);
}

gboolean
arb_instance_publish_quote (ArbInstance *inst, ArbQuote *quote, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (!arb_quote_validate (quote, &local))
    {
      arb_metrics_counter_add (inst->host->metrics, "arb_quotes_rejected_total", inst->labels, 1);
      if (inst->host->feeds != NULL)
        arb_feeds_on_publish_error (inst->host->feeds, inst, local->message);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_free (quote->source);
  quote->source = g_strdup (inst->id);
  quote->receive_time_us = arb_now_us ();
  arb_metrics_counter_add (inst->host->metrics, "arb_quotes_received_total", inst->labels, 1);
  arb_host_on_quote (inst->host, inst, quote);
  return TRUE;
}

gboolean
arb_instance_publish_status (ArbInstance *inst, const char *market_id, ArbMarketState state,
                             const ArbDecimal *settlement, const char *reason, gint64 source_time_us,
                             GError **error)
{
  if (!arb_market_id_is_valid (market_id))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "status for \"%s\": not a market id", market_id);
      return FALSE;
    }
  if (state > ARB_MARKET_CANCELLED)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "status for %s: unknown state %d", market_id,
                   (int) state);
      return FALSE;
    }
  if (state == ARB_MARKET_RESOLVED && settlement == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG,
                   "status for %s: resolved without a settlement price", market_id);
      return FALSE;
    }
  if (settlement != NULL && (settlement->raw < 0 || settlement->raw > ARB_DECIMAL_SCALE))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG,
                   "status for %s: a settlement price must lie in [0, 1]", market_id);
      return FALSE;
    }
  arb_metrics_counter_add (inst->host->metrics, "arb_market_status_received_total", inst->labels, 1);
  arb_host_on_status (inst->host, inst, market_id, state, settlement, reason, source_time_us);
  return TRUE;
}

gboolean
arb_instance_publish_market_event (ArbInstance *inst, const char *market_id, const char *event_id, GError **error)
{
  const char *why = NULL;

  if (!arb_market_id_is_valid (market_id))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "event of \"%s\": not a market id",
                   market_id != NULL ? market_id : "(null)");
      return FALSE;
    }
  if (!arb_event_id_is_valid (event_id, &why))
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG, "event of %s: \"%s\" is not an event id: %s",
                   market_id, event_id != NULL ? event_id : "(null)", why);
      return FALSE;
    }
  arb_metrics_counter_add (inst->host->metrics, "arb_market_events_received_total", inst->labels, 1);
  arb_host_on_market_event (inst->host, inst, market_id, event_id);
  return TRUE;
}

void
arb_instance_ack (ArbInstance *inst, ArbEvent *event, const GError *error)
{
  arb_relay_ack (inst->host->relay, inst, event, error);
}

gint64
arb_instance_get_hold_off_ms (ArbInstance *inst)
{
  return inst->host->feeds != NULL ? arb_feeds_hold_off_ms (inst->host->feeds, inst) : 0;
}
