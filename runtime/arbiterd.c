/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-feed-private.h"
#include "arb-host-private.h"
#include "arb-jwt-private.h"
#include "arb-store-private.h"
#include "arb-trading-private.h"

static char *
default_config_path (void)
{
  g_autofree char *in_tree = g_build_filename (ARB_SOURCE_ROOT, "data", "arbiter.conf", NULL);
  if (g_file_test (in_tree, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&in_tree);
  return g_strdup ("/etc/arbiter/arbiter.conf");
}

static int
check_config (const char *path)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbHost) host = arb_host_new (path, problems, &error);

  if (host == NULL && problems->len == 0)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < problems->len; i++)
    {
      g_autofree char *line = arb_config_problem_to_string (g_ptr_array_index (problems, i));
      g_printerr ("%s\n", line);
    }
  if (problems->len > 0)
    {
      g_printerr ("%s: %u problem%s found\n", path, problems->len, problems->len == 1 ? "" : "s");
      return 1;
    }
  g_print ("%s: OK (%u instance%s)\n", path, host->instances->len, host->instances->len == 1 ? "" : "s");
  return 0;
}

/* a loader over the plugin path the config names, if it can be read */
static ArbPluginLoader *
loader_for (const char *config_path)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(ArbConfig) config = arb_config_load (config_path, problems, NULL);
  g_autoptr(ArbConfigValues) runtime = NULL;
  g_auto(GStrv) dirs = NULL;
  ArbPluginLoader *loader;

  if (config != NULL)
    {
      const ArbConfigKey *schemas[] = { arb_host_runtime_schema (), NULL };
      runtime = arb_config_check_group (config, "runtime", schemas, problems);
    }
  dirs = arb_host_plugin_dirs (config, runtime);
  loader = arb_plugin_loader_new ((const char *const *) dirs);
  arb_plugin_loader_scan (loader);
  return loader;
}

static int
list_plugins (const char *config_path)
{
  g_autoptr(ArbPluginLoader) loader = loader_for (config_path);
  GPtrArray *modules = arb_plugin_loader_get_modules (loader);
  g_autofree char *dirs = g_strjoinv (", ", (char **) arb_plugin_loader_get_dirs (loader));
  guint refused = 0;

  g_print ("plugin path: %s\n", dirs);
  g_print ("%-22s %-7s %-9s %-5s %s\n", "NAME", "KIND", "VERSION", "ABI", "SUMMARY");
  for (guint i = 0; i < modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (modules, i);
      if (m->refused != NULL)
        {
          refused++;
          continue;
        }
      g_print ("%-22s %-7s %-9s %u.%-3u %s\n", m->name, arb_plugin_kind_to_string (m->desc.kind), m->desc.version,
               m->desc.abi_major, m->desc.abi_minor, m->desc.summary);
      g_print ("%-22s   %s\n", "", m->path);
    }
  if (refused > 0)
    {
      g_print ("\nrefused:\n");
      for (guint i = 0; i < modules->len; i++)
        {
          ArbPluginModule *m = g_ptr_array_index (modules, i);
          if (m->refused != NULL)
            g_print ("%s: %s\n", m->path, m->refused);
        }
    }
  return 0;
}

static int
describe_plugin (const char *config_path, const char *name, const char *format)
{
  g_autoptr(ArbPluginLoader) loader = loader_for (config_path);
  ArbPluginModule *m = NULL;
  const ArbConfigKey *keys;
  const ArbConfigKey *host_keys = NULL;
  const char *kind, *version, *summary;
  g_autofree char *abi = NULL;
  /* the host's own groups, described like plugins */
  static const struct {
    const char *name, *group, *summary;
    const ArbConfigKey *(*schema) (void);
  } host_groups[] = {
    { "runtime", "[runtime]", "the daemon's own settings", arb_host_runtime_schema },
    { "api", "[api]", "the REST API's authentication", arb_host_api_schema },
    { "program", "[program:NAME]", "a rule set assessments are created with", arb_trading_program_schema },
    { "market-class", "[market-class:crypto] and [market-class:prediction]",
      "execution defaults of a class of markets", arb_trading_class_schema },
    { "market", "[market:ID]", "overrides of one market's class defaults", arb_trading_market_schema },
    { "feed", "[feed:NAME]", "ingest instances in priority order, with circuit breakers and failover",
      arb_feeds_schema },
  };
  const char *host_group = NULL;
  gboolean is_runtime = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (host_groups); i++)
    if (g_str_equal (name, host_groups[i].name))
      {
        is_runtime = TRUE;
        host_group = host_groups[i].group;
        summary = host_groups[i].summary;
        keys = host_groups[i].schema ();
      }

  if (!g_str_equal (format, "markdown") && !g_str_equal (format, "json"))
    {
      g_printerr ("--format: \"%s\" is not markdown or json\n", format);
      return 2;
    }
  if (is_runtime)
    {
      kind = "host";
      version = ARB_VERSION;
      abi = g_strdup_printf ("%u.%u", ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR);
    }
  else
    {
      m = arb_plugin_loader_find (loader, name);
      if (m == NULL)
        {
          ArbPluginModule *any = arb_plugin_loader_find_any (loader, name);
          if (any != NULL)
            g_printerr ("%s: %s\n", any->path, any->refused);
          else
            g_printerr ("no plugin named \"%s\" (arbiterd --list-plugins shows what there is)\n", name);
          return 1;
        }
      keys = m->desc.config;
      host_keys = arb_host_instance_schema (m->desc.kind);
      kind = arb_plugin_kind_to_string (m->desc.kind);
      version = m->desc.version;
      summary = m->desc.summary;
      abi = g_strdup_printf ("%u.%u", m->desc.abi_major, m->desc.abi_minor);
    }

  if (g_str_equal (format, "markdown"))
    {
      g_autofree char *table = arb_config_describe_markdown (keys);
      g_print ("## %s\n\n%s.\n\nKind: %s · version %s · plugin ABI %s\n\n", name, summary, kind, version, abi);
      if (is_runtime)
        g_print ("Group: `%s`\n\n%s", host_group, table);
      else
        {
          g_autofree char *host_table = arb_config_describe_markdown (host_keys);
          g_print ("Group: `[%s:NAME]` with `plugin=%s`\n\n"
                   "Keys the host reads in every `[%s:NAME]` group:\n\n%s\nKeys of %s:\n\n%s",
                   kind, name, kind, host_table, name,
                   keys != NULL && keys[0].name != NULL ? table : "(none)\n");
        }
      return 0;
    }
  {
    g_autoptr(JsonBuilder) b = json_builder_new ();
    g_autoptr(JsonGenerator) gen = json_generator_new ();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *out = NULL;

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, name);
    json_builder_set_member_name (b, "kind");
    json_builder_add_string_value (b, kind);
    json_builder_set_member_name (b, "version");
    json_builder_add_string_value (b, version);
    json_builder_set_member_name (b, "abi");
    json_builder_add_string_value (b, abi);
    json_builder_set_member_name (b, "summary");
    json_builder_add_string_value (b, summary);
    json_builder_set_member_name (b, "keys");
    arb_config_describe_json (keys, b);
    if (host_keys != NULL)
      {
        json_builder_set_member_name (b, "hostKeys");
        arb_config_describe_json (host_keys, b);
      }
    json_builder_end_object (b);
    root = json_builder_get_root (b);
    json_generator_set_root (gen, root);
    json_generator_set_pretty (gen, TRUE);
    out = json_generator_to_data (gen, NULL);
    g_print ("%s\n", out);
  }
  return 0;
}

static ArbHost *
host_or_report (const char *path)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  ArbHost *host = arb_host_new (path, problems, &error);
  if (host == NULL)
    {
      for (guint i = 0; i < problems->len; i++)
        {
          g_autofree char *line = arb_config_problem_to_string (g_ptr_array_index (problems, i));
          g_printerr ("%s\n", line);
        }
      g_printerr ("arbiterd: %s\n", error->message);
    }
  return host;
}

static int
migrate (const char *path)
{
  g_autoptr(ArbHost) host = host_or_report (path);
  g_autoptr(GError) error = NULL;
  if (host == NULL)
    return 1;
  if (!arb_host_open_store (host, &error))
    {
      g_printerr ("arbiterd: %s\n", error->message);
      return 1;
    }
  g_print ("%s store at schema version %d\n", arb_store_backend (host->store), arb_store_schema_version (host->store));
  return 0;
}

static int
mint_token (const char *path, const char *subject, gboolean admin, gint64 ttl)
{
  g_autoptr(ArbHost) host = host_or_report (path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) secret = NULL;
  g_autofree char *token = NULL;

  if (host == NULL)
    return 1;
  if (!g_str_equal (arb_config_values_get_string (host->api_config, "jwt_alg"), "HS256"))
    {
      g_printerr ("arbiterd: --mint-token signs HS256 tokens; with jwt_alg=RS256 tokens come from the identity "
                  "provider that holds the private key\n");
      return 1;
    }
  if (ttl <= 0)
    {
      g_printerr ("arbiterd: --ttl must be above zero\n");
      return 2;
    }
  secret = arb_host_jwt_secret (host, TRUE, &error);
  if (secret != NULL)
    token = arb_jwt_mint_hs256 (g_bytes_get_data (secret, NULL), g_bytes_get_size (secret), subject, admin, ttl,
                                arb_config_values_get_string (host->api_config, "jwt_issuer"),
                                arb_config_values_get_string (host->api_config, "jwt_audience"), &error);
  if (token == NULL)
    {
      g_printerr ("arbiterd: %s\n", error->message);
      return 1;
    }
  g_print ("%s\n", token);
  return 0;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean check = FALSE, list = FALSE, version = FALSE;
  g_autofree char *describe = NULL;
  g_autofree char *format = NULL;
  g_autofree char *mint = NULL;
  gboolean admin = FALSE, do_migrate = FALSE;
  gint64 ttl = 3600;
  g_autoptr(GOptionContext) ctx = NULL;
  g_autoptr(GError) error = NULL;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "the key file (default: data/arbiter.conf in the "
      "source tree, else /etc/arbiter/arbiter.conf)", "FILE" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &check, "check the config and every plugin it names, print all "
      "problems, start nothing", NULL },
    { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &list, "list the plugins found and the ones refused", NULL },
    { "describe-plugin", 0, 0, G_OPTION_ARG_STRING, &describe, "print a plugin's config keys (\"runtime\" for the "
      "daemon's own)", "NAME" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &format, "for --describe-plugin: markdown or json", "FORMAT" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and the plugin ABI", NULL },
    { "migrate", 0, 0, G_OPTION_ARG_NONE, &do_migrate, "apply the store's migrations and exit", NULL },
    { "mint-token", 0, 0, G_OPTION_ARG_STRING, &mint, "print an HS256 token for user SUB, signed with the "
      "configured secret (development)", "SUB" },
    { "admin", 0, 0, G_OPTION_ARG_NONE, &admin, "with --mint-token: give the token the admin role", NULL },
    { "ttl", 0, 0, G_OPTION_ARG_INT64, &ttl, "with --mint-token: lifetime in seconds (default 3600)", "SECONDS" },
    { NULL }
  };

  setlocale (LC_ALL, "");
  ctx = g_option_context_new ("- trading-assessment engine and market-data runtime");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("arbiterd: %s (try --help)\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("arbiterd: unexpected argument \"%s\" (try --help)\n", argv[1]);
      return 2;
    }
  if (version)
    {
      g_print ("arbiterd %s (plugin ABI %u.%u)\n", ARB_VERSION, ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR);
      return 0;
    }
  if (config_path == NULL)
    config_path = default_config_path ();
  if (list)
    return list_plugins (config_path);
  if (describe != NULL)
    return describe_plugin (config_path, describe, format != NULL ? format : "markdown");
  if (check)
    return check_config (config_path);
  if (do_migrate)
    return migrate (config_path);
  if (mint != NULL)
    return mint_token (config_path, mint, admin, ttl);

  {
    g_autoptr(GPtrArray) problems = arb_config_problems_new ();
    g_autoptr(ArbHost) host = NULL;

    arb_log_setup (ARB_LOG_TEXT, G_LOG_LEVEL_INFO);
    host = arb_host_new (config_path, problems, &error);
    for (guint i = 0; i < problems->len; i++)
      {
        g_autofree char *line = arb_config_problem_to_string (g_ptr_array_index (problems, i));
        arb_log_for (NULL, "config", host != NULL ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_CRITICAL, line);
      }
    if (host == NULL)
      {
        g_printerr ("arbiterd: %s; nothing started (arbiterd --check-config lists the problems)\n",
                    error->message);
        return 1;
      }
    if (!arb_host_start (host, &error))
      {
        g_printerr ("arbiterd: %s\n", error->message);
        arb_host_stop (host);
        return 1;
      }
    return arb_host_run (host);
  }
}
