/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "arb-host-private.h"
#include "arb-api-private.h"
#include "arb-feed-private.h"
#include "arb-marker-private.h"
#include "arb-outbox-private.h"
#include "arb-saga-private.h"
#include "arb-store-private.h"
#include "arb-trading-private.h"
#include "arb-util-private.h"

static const ArbConfigKey runtime_schema[] = {
  { "listen", ARB_CFG_STRING, 0, "127.0.0.1:8080", 0, 0, NULL,
    "HOST:PORT of the HTTP server; port 0 picks a free port and logs the one chosen" },
  { "plugin_path", ARB_CFG_STRV, 0, NULL, 0, 0, NULL,
    "folders searched for plugins after $ARBITER_PLUGIN_PATH, comma-separated; relative to this file" },
  { "state_dir", ARB_CFG_PATH, 0, "state", 0, 0, NULL, "where the daemon keeps its files; relative to this file" },
  { "log_format", ARB_CFG_ENUM, 0, "text", 0, 0, "text,json", "one line a record: text, or a JSON object" },
  { "log_level", ARB_CFG_ENUM, 0, "info", 0, 0, "debug,info,notice,warning", "the least severe level logged" },
  { "shutdown_timeout", ARB_CFG_DURATION, 0, "10s", 0, 600000, NULL,
    "how long SIGTERM waits for sinks to drain before stopping them" },
  { "store", ARB_CFG_STRING, 0, "sqlite:arbiter.db", 0, 0, NULL,
    "the ledger: sqlite:PATH (relative to state_dir) or postgresql://user@host:port/db" },
  { "store_ledger_writers", ARB_CFG_INT, 0, "1", 1, 4, NULL,
    "PostgreSQL: connections that commit the ledger in parallel, each its own groups (doc/store.md, \"Writers\"); "
    "SQLite takes 1" },
  { "migrations_dir", ARB_CFG_PATH, 0, NULL, 0, 0, NULL,
    "folder of the SQL migrations (default: data/migrations of the source tree, else the installed copy)" },
  { "outbox_retention", ARB_CFG_DURATION, 0, "24h", 0, G_GINT64_CONSTANT (90) * 24 * 3600 * 1000, NULL,
    "how long a ledger event stays in the outbox once every sink that takes it has it (doc/outbox.md)" },
  { NULL }
};

static const ArbConfigKey api_schema[] = {
  { "jwt_alg", ARB_CFG_ENUM, 0, "HS256", 0, 0, "HS256,RS256",
    "the only algorithm accepted; a token with any other alg, none included, is refused" },
  { "jwt_secret", ARB_CFG_SECRET, 0, NULL, 0, 0, NULL,
    "HS256 key; when unset, a random one is generated into state_dir/jwt-secret on first start" },
  { "jwt_public_key_file", ARB_CFG_PATH, 0, NULL, 0, 0, NULL, "RS256: the PEM public key tokens are verified with" },
  { "jwt_issuer", ARB_CFG_STRING, 0, NULL, 0, 0, NULL, "when set, tokens must carry this iss" },
  { "jwt_audience", ARB_CFG_STRING, 0, NULL, 0, 0, NULL, "when set, tokens must carry this aud" },
  { "jwt_leeway", ARB_CFG_DURATION, 0, "30s", 0, 300000, NULL, "clock skew allowed on exp, nbf and iat" },
  { NULL }
};

const ArbConfigKey *
arb_host_api_schema (void)
{
  return api_schema;
}

static const ArbConfigKey ingest_schema[] = {
  { "plugin", ARB_CFG_STRING, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "the module, for example ingest-replay" },
  { "required", ARB_CFG_BOOL, 0, "false", 0, 0, NULL, "when true, /ready answers 503 while this instance is down" },
  { NULL }
};

static const ArbConfigKey risk_schema[] = {
  { "plugin", ARB_CFG_STRING, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "the module, for example risk-drawdown" },
  { "required", ARB_CFG_BOOL, 0, "true", 0, 0, NULL,
    "when true, /ready answers 503 while this instance is down; orders are refused either way" },
  { NULL }
};

static const ArbConfigKey sink_schema[] = {
  { "plugin", ARB_CFG_STRING, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "the module, for example sink-jsonl" },
  { "required", ARB_CFG_BOOL, 0, "false", 0, 0, NULL, "when true, /ready answers 503 while this instance is down" },
  { "events", ARB_CFG_STRV, 0, "all", 0, 0, NULL,
    "event types this sink receives: all, market, ledger, or types such as quote, market.status, assessment.*" },
  { "queue_size", ARB_CFG_INT, 0, "10000", 1, 10000000, NULL,
    "bound of the sink's queue; when full, the oldest market event is dropped and counted" },
  { NULL }
};

const ArbConfigKey *
arb_host_runtime_schema (void)
{
  return runtime_schema;
}

const ArbConfigKey *
arb_host_instance_schema (guint32 kind)
{
  switch (kind)
    {
    case ARB_PLUGIN_INGEST: return ingest_schema;
    case ARB_PLUGIN_RISK: return risk_schema;
    case ARB_PLUGIN_SINK: return sink_schema;
    default: return NULL;
    }
}

/* the groups the host knows, and the prefixes of instance groups */
static const char *const fixed_groups[] = { "runtime", "api", NULL };
static const char *const group_prefixes[] = { "ingest:", "risk:", "sink:", "feed:", "program:", "market-class:",
                                              "market:", NULL };
/* groups other parts read and check: the trading core (arb-trading.c) and
 * the feeds (arb-feed.c) */
static const char *const trading_prefixes[] = { "program:", "market-class:", "market:", "feed:", NULL };

static gboolean
is_trading_group (const char *group)
{
  for (guint i = 0; trading_prefixes[i] != NULL; i++)
    if (g_str_has_prefix (group, trading_prefixes[i]))
      return TRUE;
  return FALSE;
}

static guint32
group_kind (const char *group)
{
  if (g_str_has_prefix (group, "ingest:"))
    return ARB_PLUGIN_INGEST;
  if (g_str_has_prefix (group, "risk:"))
    return ARB_PLUGIN_RISK;
  if (g_str_has_prefix (group, "sink:"))
    return ARB_PLUGIN_SINK;
  return 0;
}

static gboolean
instance_id_is_valid (const char *id)
{
  if (*id == '\0')
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '.'))
      return FALSE;
  return TRUE;
}

GStrv
arb_host_plugin_dirs (ArbConfig *config, ArbConfigValues *runtime)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  const char *env = g_getenv ("ARBITER_PLUGIN_PATH");
  const char *system = g_getenv ("ARB_PLUGIN_SYSTEM_PATH");

  if (env != NULL && *env != '\0')
    {
      g_auto(GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; parts[i] != NULL; i++)
        if (*parts[i] != '\0')
          g_strv_builder_add (b, parts[i]);
    }
  if (config != NULL && runtime != NULL)
    {
      /* relative folders are taken from the config file's directory */
      const char *const *dirs = arb_config_values_get_strv (runtime, "plugin_path");
      for (guint i = 0; dirs[i] != NULL; i++)
        arb_strv_builder_take (b, g_canonicalize_filename (dirs[i], arb_config_get_dir (config)));
    }
  /* ARB_PLUGIN_SYSTEM_PATH="" keeps tests away from installed plugins */
  if (system == NULL)
    g_strv_builder_add (b, ARB_PLUGINDIR);
  else if (*system != '\0')
    g_strv_builder_add (b, system);
  return g_strv_builder_end (b);
}

static ArbConfigValues *
check_runtime (ArbConfig *config, GPtrArray *problems)
{
  const ArbConfigKey *schemas[] = { runtime_schema, NULL };
  ArbConfigValues *values = arb_config_check_group (config, "runtime", schemas, problems);
  return values;
}

ArbHost *
arb_host_new (const char *config_path, GPtrArray *problems, GError **error)
{
  g_autoptr(ArbHost) host = g_new0 (ArbHost, 1);
  g_auto(GStrv) groups = NULL;
  g_auto(GStrv) dirs = NULL;
  g_autoptr(GStrvBuilder) known = g_strv_builder_new ();
  g_auto(GStrv) known_groups = NULL;
  g_autoptr(GHashTable) seen_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint before = problems->len;

  host->config = arb_config_load (config_path, problems, error);
  if (host->config == NULL)
    return NULL;
  host->context = g_main_context_ref_thread_default ();
  host->metrics = arb_metrics_new ();
  host->book = arb_price_book_new ();
  host->relay = arb_relay_new (host);
  host->instances = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_instance_free);
  host->started_us = arb_now_us ();

  host->runtime = check_runtime (host->config, problems);
  dirs = arb_host_plugin_dirs (host->config, host->runtime);
  host->state_dir = g_strdup (arb_config_values_get_string (host->runtime, "state_dir"));
  host->loader = arb_plugin_loader_new ((const char *const *) dirs);
  arb_plugin_loader_scan (host->loader);

  g_strv_builder_addv (known, (const char **) fixed_groups);
  for (guint i = 0; group_prefixes[i] != NULL; i++)
    arb_strv_builder_take (known, g_strdup_printf ("%sNAME", group_prefixes[i]));
  known_groups = g_strv_builder_end (known);

  groups = arb_config_get_groups (host->config);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *group = groups[i];
      const char *path = arb_config_get_path (host->config);
      guint32 kind = group_kind (group);
      const char *id;
      g_autofree char *plugin = NULL;
      ArbPluginModule *module = NULL;
      g_autofree char *failure = NULL;
      const ArbConfigKey *schemas[3] = { NULL, NULL, NULL };
      ArbConfigValues *values;

      if (g_strv_contains (fixed_groups, group) || is_trading_group (group))
        continue;
      if (kind == 0)
        {
          const char *near = arb_closest_word (group, (const char *const *) known_groups);
          g_autofree char *list = g_strjoinv (", ", known_groups);
          g_autofree char *guess = NULL;
          const char *colon = strchr (group, ':');
          /* [sinks:x] is far from "sink:NAME" as a whole; its prefix is near */
          if (near == NULL && colon != NULL)
            {
              g_autofree char *prefix = g_strndup (group, (gsize) (colon - group + 1));
              const char *kind_near = arb_closest_word (prefix, group_prefixes);
              if (kind_near != NULL)
                near = guess = g_strconcat (kind_near, colon + 1, NULL);
            }
          if (near != NULL)
            arb_config_problems_add (problems, path, group, NULL,
                                     "unknown group (did you mean [%s]? known: %s)", near, list);
          else
            arb_config_problems_add (problems, path, group, NULL, "unknown group (known: %s)", list);
          continue;
        }
      id = strchr (group, ':') + 1;
      if (!instance_id_is_valid (id))
        {
          arb_config_problems_add (problems, path, group, NULL,
                                   "\"%s\" is not a valid instance name (letters, digits, '-', '_', '.')", id);
          continue;
        }
      if (g_hash_table_contains (seen_ids, (gpointer) group))
        continue;
      g_hash_table_add (seen_ids, g_strdup (group));

      schemas[0] = arb_host_instance_schema (kind);
      plugin = arb_config_get_raw (host->config, group, "plugin");
      if (plugin != NULL && *plugin != '\0')
        {
          ArbPluginModule *any = arb_plugin_loader_find_any (host->loader, plugin);
          module = arb_plugin_loader_find (host->loader, plugin);
          if (module != NULL && module->desc.kind != kind)
            {
              arb_config_problems_add (problems, path, group, "plugin",
                                       "plugin=%s is %s %s plugin; put it in a [%s:NAME] group", plugin,
                                       module->desc.kind == ARB_PLUGIN_INGEST ? "an" : "a",
                                       arb_plugin_kind_to_string (module->desc.kind),
                                       arb_plugin_kind_to_string (module->desc.kind));
              module = NULL;
              continue;
            }
          if (module == NULL && any != NULL)
            failure = g_strdup_printf ("plugin %s (%s) was refused: %s", plugin, any->path, any->refused);
          else if (module == NULL)
            {
              g_auto(GStrv) names = arb_plugin_loader_get_names (host->loader);
              const char *near = arb_closest_word (plugin, (const char *const *) names);
              g_autofree char *where = g_strjoinv (", ", dirs);
              if (near != NULL)
                failure = g_strdup_printf ("no plugin named \"%s\" (did you mean \"%s\"?) in %s", plugin, near,
                                           where);
              else
                failure = g_strdup_printf ("no plugin named \"%s\" in %s", plugin, where);
            }
          if (module != NULL)
            schemas[1] = module->desc.config;
        }
      if (plugin == NULL || *plugin == '\0')
        {
          /* without a module only the host's keys can be checked: an unknown
           * key here may well be the missing plugin's */
          g_autoptr(GPtrArray) all = arb_config_problems_new ();
          values = arb_config_check_group (host->config, group, schemas, all);
          for (guint j = 0; j < all->len; j++)
            {
              ArbConfigProblem *p = g_ptr_array_index (all, j);
              if (p->key != NULL && arb_config_values_lookup_key (values, p->key) != NULL)
                arb_config_problems_add (problems, p->file, p->group, p->key, "%s", p->message);
            }
          /* plugin= with nothing after it is as missing as no plugin= at all */
          if (plugin != NULL)
            arb_config_problems_add (problems, path, group, "plugin", "missing required key \"plugin\": %s",
                                     arb_config_values_lookup_key (values, "plugin")->help);
        }
      else if (failure != NULL)
        {
          /* the daemon runs on without it; --check-config still says so */
          arb_config_problems_add (problems, path, group, "plugin", "%s", failure);
          /* the plugin's own keys cannot be checked without its schema */
          {
            g_autoptr(GPtrArray) ignored = arb_config_problems_new ();
            values = arb_config_check_group (host->config, group, schemas, ignored);
          }
        }
      else
        values = arb_config_check_group (host->config, group, schemas, problems);
      g_ptr_array_add (host->instances, arb_instance_new (host, group, kind, module, values, failure));
    }

  {
    const ArbConfigKey *schemas[] = { api_schema, NULL };
    const char *alg;
    host->api_config = arb_config_check_group (host->config, "api", schemas, problems);
    alg = arb_config_values_get_string (host->api_config, "jwt_alg");
    if (g_strcmp0 (alg, "RS256") == 0 && !arb_config_values_is_set (host->api_config, "jwt_public_key_file"))
      arb_config_problems_add (problems, arb_config_get_path (host->config), "api", "jwt_public_key_file",
                               "jwt_alg=RS256 needs jwt_public_key_file (the PEM public key tokens are checked with)");
    if (g_strcmp0 (alg, "HS256") == 0 && arb_config_values_is_set (host->api_config, "jwt_public_key_file"))
      arb_config_problems_add (problems, arb_config_get_path (host->config), "api", "jwt_public_key_file",
                               "jwt_public_key_file is for jwt_alg=RS256; HS256 uses jwt_secret_env or jwt_secret_file");
  }
  host->trading = arb_trading_new (host, problems);
  host->feeds = arb_feeds_new (host, host->config, problems);

  if (problems->len > before)
    {
      /* only refused or missing plugins: the daemon can still run */
      gboolean fatal = FALSE;
      for (guint i = before; i < problems->len; i++)
        {
          ArbConfigProblem *p = g_ptr_array_index (problems, i);
          gboolean instance_failure = FALSE;
          for (guint j = 0; j < host->instances->len; j++)
            {
              ArbInstance *inst = g_ptr_array_index (host->instances, j);
              /* a refused or missing module; not a group without plugin= */
              if (inst->module == NULL && g_strcmp0 (p->group, inst->name) == 0 && g_strcmp0 (p->key, "plugin") == 0
                  && arb_instance_get_state (inst) == ARB_INSTANCE_FAILED)
                instance_failure = TRUE;
            }
          if (!instance_failure)
            fatal = TRUE;
        }
      if (fatal)
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s has %u problem%s",
                       arb_config_get_path (host->config), problems->len - before,
                       problems->len - before == 1 ? "" : "s");
          return NULL;
        }
    }
  return g_steal_pointer (&host);
}

void
arb_host_free (ArbHost *host)
{
  if (host == NULL)
    return;
  if (host->relay != NULL)
    arb_relay_shutdown (host->relay, 0);
  if (host->instances != NULL)
    for (guint i = host->instances->len; i > 0; i--)
      {
        ArbInstance *inst = g_ptr_array_index (host->instances, i - 1);
        arb_instance_stop (inst);
        arb_instance_destroy (inst);
      }
  for (guint i = 0; i < G_N_ELEMENTS (host->signal_sources); i++)
    if (host->signal_sources[i] != 0)
      {
        GSource *s = g_main_context_find_source_by_id (host->context, host->signal_sources[i]);
        if (s != NULL)
          g_source_destroy (s);
      }
  g_clear_pointer (&host->http, arb_http_free);
  g_clear_pointer (&host->marker, arb_marker_free);
  g_clear_pointer (&host->feeds, arb_feeds_free);
  g_clear_pointer (&host->api, arb_api_free);
  g_clear_pointer (&host->saga, arb_saga_free);
  if (host->relay != NULL)
    arb_outbox_stop (arb_relay_get_outbox (host->relay));
  /* joins the store's threads; their callbacks target this context */
  g_clear_pointer (&host->store, arb_store_free);
  g_clear_pointer (&host->trading, arb_trading_free);
  g_clear_pointer (&host->verifier, arb_jwt_verifier_free);
  g_clear_pointer (&host->api_config, arb_config_values_free);
  g_clear_pointer (&host->relay, arb_relay_free);
  g_clear_pointer (&host->instances, g_ptr_array_unref);
  g_clear_pointer (&host->book, arb_price_book_free);
  g_clear_pointer (&host->loader, arb_plugin_loader_free);
  g_clear_pointer (&host->runtime, arb_config_values_free);
  g_clear_pointer (&host->config, arb_config_free);
  g_clear_pointer (&host->metrics, arb_metrics_free);
  g_clear_object (&host->soup_session);
  g_clear_pointer (&host->loop, g_main_loop_unref);
  g_clear_pointer (&host->context, g_main_context_unref);
  g_free (host->state_dir);
  g_free (host);
}

ArbInstance *
arb_host_find_instance (ArbHost *host, const char *name)
{
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      if (g_str_equal (inst->name, name))
        return inst;
    }
  return NULL;
}

static void
declare_metrics (ArbMetrics *m)
{
  arb_metrics_declare (m, "arb_instance_up", ARB_METRIC_GAUGE, "1 when the instance runs and is not down");
  arb_metrics_declare (m, "arb_instance_health", ARB_METRIC_GAUGE, "0 ok, 1 degraded, 2 down");
  arb_metrics_declare (m, "arb_plugin_calls_total", ARB_METRIC_COUNTER, "plugin callbacks called by the host");
  arb_metrics_declare (m, "arb_plugin_call_errors_total", ARB_METRIC_COUNTER, "plugin callbacks that failed");
  arb_metrics_declare (m, "arb_plugin_call_duration_seconds", ARB_METRIC_HISTOGRAM, "time spent in plugin callbacks");
  arb_metrics_declare (m, "arb_quotes_received_total", ARB_METRIC_COUNTER, "quotes published by ingest instances");
  arb_metrics_declare (m, "arb_quotes_rejected_total", ARB_METRIC_COUNTER, "invalid quotes refused by the host");
  arb_metrics_declare (m, "arb_market_status_received_total", ARB_METRIC_COUNTER, "market status changes published");
  arb_metrics_declare (m, "arb_market_events_received_total", ARB_METRIC_COUNTER,
                       "market-to-event mappings published (repeats included)");
  arb_metrics_declare (m, "arb_sink_published_total", ARB_METRIC_COUNTER, "events a sink acknowledged as delivered");
  arb_metrics_declare (m, "arb_sink_failed_total", ARB_METRIC_COUNTER, "events a sink failed to deliver");
  arb_metrics_declare (m, "arb_sink_dropped_total", ARB_METRIC_COUNTER,
                       "market events dropped because the sink's queue was full");
  arb_metrics_declare (m, "arb_sink_queued", ARB_METRIC_GAUGE, "events waiting in the sink's queue");
  arb_metrics_declare (m, "arb_sink_in_flight", ARB_METRIC_GAUGE, "events handed to the sink, not yet acknowledged");
  arb_metrics_declare (m, "arb_sink_publish_latency_seconds", ARB_METRIC_HISTOGRAM,
                       "time from an event's creation to its acknowledgement");
  arb_metrics_declare (m, "arb_http_request_duration_seconds", ARB_METRIC_HISTOGRAM, "HTTP request latency");
  arb_metrics_declare (m, "arb_markets", ARB_METRIC_GAUGE, "markets in the price book");
  arb_metrics_declare (m, "arb_store_group_duration_seconds", ARB_METRIC_HISTOGRAM,
                       "one group commit of one of the store's writers, sent to committed (retries included)");
  arb_metrics_declare (m, "arb_store_queue_wait_seconds", ARB_METRIC_HISTOGRAM,
                       "time a transaction waited for a store writer to take it into a group");
  arb_metrics_declare (m, "arb_store_groups_total", ARB_METRIC_COUNTER, "group commits the store's writers ran");
  arb_metrics_declare (m, "arb_store_txns_total", ARB_METRIC_COUNTER, "transactions in those groups");
  arb_metrics_declare (m, "arb_store_txns_failed_total", ARB_METRIC_COUNTER,
                       "transactions of those groups that failed");
}

static char *
migrations_dir (ArbHost *host)
{
  g_autofree char *in_tree = g_build_filename (ARB_SOURCE_ROOT, "data", "migrations", NULL);
  const char *configured = arb_config_values_get_string (host->runtime, "migrations_dir");
  if (configured != NULL)
    return g_strdup (configured);
  if (g_file_test (in_tree, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&in_tree);
  return g_build_filename (ARB_PKGDATADIR, "migrations", NULL);
}

gboolean
arb_host_open_store (ArbHost *host, GError **error)
{
  g_autofree char *dir = migrations_dir (host);
  const char *uri = arb_config_values_get_string (host->runtime, "store");

  if (host->store != NULL)
    return TRUE;
  if (g_mkdir_with_parents (host->state_dir, 0750) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "state_dir %s: %s", host->state_dir,
                   g_strerror (saved));
      return FALSE;
    }
  host->store = arb_store_open_full (uri, host->state_dir, dir,
                                     (guint) arb_config_values_get_int (host->runtime, "store_ledger_writers"), error);
  if (host->store == NULL)
    {
      g_prefix_error (error, "[runtime] store: ");
      return FALSE;
    }
  arb_store_set_metrics (host->store, host->metrics);
  return TRUE;
}

GBytes *
arb_host_jwt_secret (ArbHost *host, gboolean generate, GError **error)
{
  g_autofree char *path = g_build_filename (host->state_dir, "jwt-secret", NULL);
  g_autoptr(GError) local = NULL;
  char *configured = arb_config_values_get_secret (host->api_config, "jwt_secret", &local);

  if (configured != NULL)
    {
      gsize len = strlen (configured);
      return g_bytes_new_with_free_func (configured, len, (GDestroyNotify) arb_secret_free, configured);
    }
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  /* the embedded default: a secret of our own, made once, kept in state_dir */
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      if (!generate)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                       "no [api] jwt_secret and no %s yet (start arbiterd once to generate it)", path);
          return NULL;
        }
      g_autoptr(GError) gen_error = NULL;
      if (g_mkdir_with_parents (host->state_dir, 0750) != 0)
        {
          int saved = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "state_dir %s: %s", host->state_dir,
                       g_strerror (saved));
          return NULL;
        }
      if (arb_jwt_generate_secret_file (path, &gen_error))
        arb_log_for (NULL, "api", G_LOG_LEVEL_MESSAGE, "generated a JWT secret into the state directory");
      else if (!g_error_matches (gen_error, G_FILE_ERROR, G_FILE_ERROR_EXIST))
        {
          /* EXIST: another process made it first; use theirs */
          g_propagate_prefixed_error (error, g_steal_pointer (&gen_error), "generating %s: ", path);
          return NULL;
        }
    }
  return arb_jwt_load_secret_file (path, error);
}

static gboolean
make_verifier (ArbHost *host, GError **error)
{
  const char *alg = arb_config_values_get_string (host->api_config, "jwt_alg");
  gint64 leeway = arb_config_values_get_duration_ms (host->api_config, "jwt_leeway") / 1000;
  const char *iss = arb_config_values_get_string (host->api_config, "jwt_issuer");
  const char *aud = arb_config_values_get_string (host->api_config, "jwt_audience");
  g_autoptr(GBytes) key = NULL;

  if (g_str_equal (alg, "RS256"))
    {
      const char *file = arb_config_values_get_string (host->api_config, "jwt_public_key_file");
      g_autofree char *pem = NULL;
      gsize len = 0;
      if (!g_file_get_contents (file, &pem, &len, error))
        {
          g_prefix_error (error, "[api] jwt_public_key_file: ");
          return FALSE;
        }
      key = g_bytes_new_take (g_steal_pointer (&pem), len);
    }
  else if ((key = arb_host_jwt_secret (host, TRUE, error)) == NULL)
    return FALSE;
  host->verifier = arb_jwt_verifier_new (alg, g_bytes_get_data (key, NULL), g_bytes_get_size (key), iss, aud, leeway,
                                         error);
  if (host->verifier == NULL)
    {
      g_prefix_error (error, "[api]: ");
      return FALSE;
    }
  return TRUE;
}

static void
load_assessment (ArbAssessmentRow *row, gpointer data)
{
  arb_trading_add_account (((ArbHost *) data)->trading, row);
}

static void
load_position (ArbPositionRow *row, gpointer data)
{
  arb_trading_add_position (((ArbHost *) data)->trading, row);
}

static void
load_idempotency (ArbIdempotencyRow *row, gpointer data)
{
  arb_api_restore_idempotency (((ArbHost *) data)->api, row);
}

static void
load_trade_seq (gint64 seq, gpointer data)
{
  arb_trading_set_trade_seq (((ArbHost *) data)->trading, seq);
}

/* the store is the truth: the live state is loaded from it before any
 * request is served */
static gboolean
start_trading (ArbHost *host, GError **error)
{
  static const ArbStoreLoadFuncs funcs = { load_assessment, load_position, load_idempotency, load_trade_seq };
  g_autofree char *line = NULL;
  g_autoptr(GPtrArray) accounts = NULL;

  if (!make_verifier (host, error) || !arb_host_open_store (host, error))
    return FALSE;
  host->saga = arb_saga_new (host, host->trading, host->store);
  host->api = arb_api_new (host, host->trading, host->saga, host->store, host->verifier);
  if (!arb_store_load (host->store, &funcs, arb_now_us () - 24 * G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC, host,
                       error))
    {
      g_prefix_error (error, "loading the ledger: ");
      return FALSE;
    }
  accounts = arb_trading_list_accounts (host->trading, NULL);
  host->marker = arb_marker_new (host, host->trading, host->saga);
  line = g_strdup_printf ("ledger loaded from %s store: %u assessment%s", arb_store_backend (host->store),
                          accounts->len, accounts->len == 1 ? "" : "s");
  arb_log_for (NULL, "store", G_LOG_LEVEL_INFO, line);
  return TRUE;
}

gboolean
arb_host_start (ArbHost *host, GError **error)
{
  g_autofree char *listen_host = NULL;
  guint16 port = 0;
  GLogLevelFlags level = G_LOG_LEVEL_INFO;
  static const guint32 start_order[] = { ARB_PLUGIN_SINK, ARB_PLUGIN_RISK, ARB_PLUGIN_INGEST };

  arb_log_parse_level (arb_config_values_get_string (host->runtime, "log_level"), &level);
  arb_log_setup (g_str_equal (arb_config_values_get_string (host->runtime, "log_format"), "json") ? ARB_LOG_JSON
                                                                                                   : ARB_LOG_TEXT,
                 level);
  declare_metrics (host->metrics);
  if (g_mkdir_with_parents (host->state_dir, 0750) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "state_dir %s: %s", host->state_dir,
                   g_strerror (saved));
      return FALSE;
    }
  if (!arb_parse_listen (arb_config_values_get_string (host->runtime, "listen"), &listen_host, &port, error))
    {
      g_prefix_error (error, "[runtime] listen: ");
      return FALSE;
    }
  if (!start_trading (host, error))
    return FALSE;
  /* ledger events reach the sinks from the outbox, before the sinks start */
  arb_relay_set_outbox (host->relay, arb_outbox_new (host));
  host->soup_session = soup_session_new_with_options ("user-agent", "arbiterd/" ARB_VERSION, "timeout", 30,
                                                      NULL);
  host->http = arb_http_new (host);
  if (!arb_http_listen (host->http, listen_host, port, error))
    return FALSE;

  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autoptr(GError) local = NULL;
      if (inst->module == NULL || arb_instance_get_state (inst) == ARB_INSTANCE_FAILED)
        continue;
      if (!arb_instance_create (inst, &local))
        arb_log_for (inst->name, NULL, G_LOG_LEVEL_WARNING, local->message);
    }
  for (guint k = 0; k < G_N_ELEMENTS (start_order); k++)
    for (guint i = 0; i < host->instances->len; i++)
      {
        ArbInstance *inst = g_ptr_array_index (host->instances, i);
        g_autoptr(GError) local = NULL;
        if (inst->kind != start_order[k] || arb_instance_get_state (inst) != ARB_INSTANCE_CREATED)
          continue;
        if (!arb_instance_start (inst, &local) && arb_instance_get_state (inst) == ARB_INSTANCE_FAILED)
          arb_log_for (inst->name, NULL, G_LOG_LEVEL_WARNING, local->message);
      }
  if (host->feeds != NULL)
    arb_feeds_start (host->feeds);
  {
    g_autofree char *line = g_strdup_printf ("arbiterd %s listening on http://%s:%u (config %s, %u instance%s)",
                                             ARB_VERSION, listen_host, arb_http_get_port (host->http),
                                             arb_config_get_path (host->config), host->instances->len,
                                             host->instances->len == 1 ? "" : "s");
    arb_log_for (NULL, "host", G_LOG_LEVEL_MESSAGE, line);
  }
  return TRUE;
}

void
arb_host_stop (ArbHost *host)
{
  static const guint32 stop_order[] = { ARB_PLUGIN_INGEST, ARB_PLUGIN_RISK };

  if (host->stopping)
    return;
  host->stopping = TRUE;
  arb_log_for (NULL, "host", G_LOG_LEVEL_MESSAGE, "stopping: no new requests, draining sinks");
  /* no new connections; requests in flight (waiting on the store) finish
   * and are answered before the connections close */
  arb_http_stop_listening (host->http);
  if (host->api != NULL)
    {
      gint64 deadline = g_get_monotonic_time ()
                        + arb_config_values_get_duration_ms (host->runtime, "shutdown_timeout") * 1000;
      while (arb_api_in_flight (host->api) > 0 && g_get_monotonic_time () < deadline)
        if (!g_main_context_iteration (host->context, FALSE))
          g_usleep (1000);
      /* the marks (high-water marks, day highs) reach the store too */
      while (host->marker != NULL && !arb_marker_flush (host->marker) && g_get_monotonic_time () < deadline)
        if (!g_main_context_iteration (host->context, FALSE))
          g_usleep (1000);
    }
  arb_http_disconnect (host->http);
  if (host->feeds != NULL)
    arb_feeds_stop (host->feeds);
  /* the reverse of the start order: feeds first, so nothing new arrives */
  for (guint k = 0; k < G_N_ELEMENTS (stop_order); k++)
    for (guint i = host->instances->len; i > 0; i--)
      {
        ArbInstance *inst = g_ptr_array_index (host->instances, i - 1);
        if (inst->kind == stop_order[k])
          arb_instance_stop (inst);
      }
  arb_relay_shutdown (host->relay, arb_config_values_get_duration_ms (host->runtime, "shutdown_timeout"));
  for (guint i = host->instances->len; i > 0; i--)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i - 1);
      if (inst->kind == ARB_PLUGIN_SINK)
        arb_instance_stop (inst);
    }
  /* what the sinks acknowledged while they drained, marked delivered */
  arb_outbox_stop (arb_relay_get_outbox (host->relay));
  for (guint i = host->instances->len; i > 0; i--)
    arb_instance_destroy (g_ptr_array_index (host->instances, i - 1));
  arb_log_for (NULL, "host", G_LOG_LEVEL_MESSAGE, "stopped");
}

static gboolean
on_signal (gpointer data)
{
  ArbHost *host = data;
  arb_log_for (NULL, "host", G_LOG_LEVEL_MESSAGE, "signal received, shutting down");
  g_main_loop_quit (host->loop);
  return G_SOURCE_CONTINUE;
}

int
arb_host_run (ArbHost *host)
{
  host->loop = g_main_loop_new (host->context, FALSE);
  host->signal_sources[0] = g_unix_signal_add (SIGINT, on_signal, host);
  host->signal_sources[1] = g_unix_signal_add (SIGTERM, on_signal, host);
  g_main_loop_run (host->loop);
  arb_host_stop (host);
  return host->exit_code;
}

typedef struct {
  ArbHost *host;
  char    *market;
} MarkLater;

static gboolean
mark_later (gpointer data)
{
  MarkLater *ml = data;
  if (ml->host->marker != NULL)
    arb_marker_on_quote (ml->host->marker, ml->market);
  g_free (ml->market);
  g_free (ml);
  return G_SOURCE_REMOVE;
}

void
arb_host_on_quote (ArbHost *host, ArbInstance *inst, ArbQuote *quote)
{
  /* only the active source of a feed reaches the book */
  if (host->feeds != NULL && !arb_feeds_accept_quote (host->feeds, inst, quote))
    return;
  if (!arb_price_book_update (host->book, quote))
    return;
  /* accounts live on the main thread: a quote from a plugin's own thread
   * is marked there */
  if (host->marker != NULL)
    {
      if (g_main_context_is_owner (host->context))
        arb_marker_on_quote (host->marker, quote->market);
      else
        {
          MarkLater *ml = g_new0 (MarkLater, 1);
          ml->host = host;
          ml->market = g_strdup (quote->market);
          g_main_context_invoke (host->context, mark_later, ml);
        }
    }
  arb_metrics_gauge_set (host->metrics, "arb_markets", NULL, (gdouble) arb_price_book_size (host->book));
  {
    g_autoptr(ArbEvent) ev = arb_event_new_quote (quote);
    arb_relay_publish (host->relay, ev);
  }
}

typedef struct {
  ArbHost       *host;
  char          *market;
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     settlement;
} SettleLater;

static gboolean
settle_later (gpointer data)
{
  SettleLater *sl = data;
  if (sl->host->marker != NULL)
    arb_marker_on_status (sl->host->marker, sl->market, sl->state, sl->has_settlement ? &sl->settlement : NULL);
  g_free (sl->market);
  g_free (sl);
  return G_SOURCE_REMOVE;
}

void
arb_host_on_status (ArbHost *host, ArbInstance *inst, const char *market, ArbMarketState state,
                    const ArbDecimal *settlement, const char *reason, gint64 source_time_us)
{
  g_autoptr(ArbEvent) ev = NULL;
  g_autofree char *line = NULL;
  char buf[ARB_DECIMAL_BUFSIZE];

  arb_price_book_set_status (host->book, market, state, settlement, reason, source_time_us);
  line = g_strdup_printf ("%s is %s%s%s%s%s", market, arb_market_state_to_string (state),
                          settlement != NULL ? " at " : "", settlement != NULL ? arb_decimal_format (*settlement, buf) : "",
                          reason != NULL ? ": " : "", reason != NULL ? reason : "");
  arb_log_for (inst->name, NULL, G_LOG_LEVEL_INFO, line);
  ev = arb_event_new_market_status (market, state, settlement, reason, inst->id, source_time_us);
  arb_relay_publish (host->relay, ev);
  if (host->marker != NULL)
    {
      if (g_main_context_is_owner (host->context))
        arb_marker_on_status (host->marker, market, state, settlement);
      else
        {
          SettleLater *sl = g_new0 (SettleLater, 1);
          sl->host = host;
          sl->market = g_strdup (market);
          sl->state = state;
          sl->has_settlement = settlement != NULL;
          if (settlement != NULL)
            sl->settlement = *settlement;
          g_main_context_invoke (host->context, settle_later, sl);
        }
    }
}

void
arb_host_on_market_event (ArbHost *host, ArbInstance *inst, const char *market, const char *event)
{
  g_autofree char *previous = NULL;
  g_autofree char *line = NULL;

  /* the book's lock makes it safe from any thread, and nothing else follows
   * from it: the risk rules read the mapping when they run */
  switch (arb_price_book_set_event (host->book, market, event, &previous))
    {
    case ARB_EVENT_UNCHANGED:
      return;
    case ARB_EVENT_NEW:
      line = g_strdup_printf ("%s is in event %s", market, event);
      arb_log_for (inst->name, NULL, G_LOG_LEVEL_DEBUG, line);
      return;
    case ARB_EVENT_MOVED:
    default:
      line = g_strdup_printf ("%s moved from event %s to event %s", market, previous, event);
      arb_log_for (inst->name, NULL, G_LOG_LEVEL_INFO, line);
      return;
    }
}

char *
arb_host_ready_json (ArbHost *host, gboolean *ready)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  gboolean ok = !host->stopping;
  GPtrArray *modules = arb_plugin_loader_get_modules (host->loader);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "components");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, "http");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, host->stopping ? "stopping" : "running");
  json_builder_end_object (b);
  json_builder_end_array (b);

  json_builder_set_member_name (b, "instances");
  json_builder_begin_array (b);
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autofree char *since = NULL;
      ArbInstanceState state;
      ArbHealth health;
      g_autofree char *reason = NULL;
      g_autofree char *last_error = NULL;
      gboolean up;

      g_mutex_lock (&inst->state_lock);
      state = inst->state;
      health = inst->health;
      reason = g_strdup (inst->reason);
      last_error = g_strdup (inst->last_error);
      since = arb_format_time_us (inst->since_us);
      g_mutex_unlock (&inst->state_lock);
      up = state == ARB_INSTANCE_RUNNING && health != ARB_HEALTH_DOWN;
      if (inst->required && !up)
        ok = FALSE;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, inst->name);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, arb_plugin_kind_to_string (inst->kind));
      json_builder_set_member_name (b, "plugin");
      if (inst->module != NULL)
        json_builder_add_string_value (b, inst->module->name);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "required");
      json_builder_add_boolean_value (b, inst->required);
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, arb_instance_state_to_string (state));
      json_builder_set_member_name (b, "health");
      json_builder_add_string_value (b, arb_health_to_string (state == ARB_INSTANCE_RUNNING ? health
                                                                                            : ARB_HEALTH_DOWN));
      json_builder_set_member_name (b, "reason");
      if (reason != NULL)
        json_builder_add_string_value (b, reason);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "since");
      json_builder_add_string_value (b, since);
      json_builder_set_member_name (b, "lastError");
      if (last_error != NULL)
        json_builder_add_string_value (b, last_error);
      else
        json_builder_add_null_value (b);
      if (inst->kind == ARB_PLUGIN_SINK)
        {
          json_builder_set_member_name (b, "queued");
          json_builder_add_int_value (b, arb_relay_queued (host->relay, inst));
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  if (host->feeds != NULL)
    arb_feeds_add_ready_json (host->feeds, b, &ok);
  json_builder_set_member_name (b, "refusedModules");
  json_builder_begin_array (b);
  for (guint i = 0; i < modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (modules, i);
      if (m->refused == NULL || m->shadowed_by != NULL)
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, m->path);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, m->name);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, m->refused);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, ok ? "ready" : "not ready");
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  *ready = ok;
  return json_generator_to_data (gen, NULL);
}
