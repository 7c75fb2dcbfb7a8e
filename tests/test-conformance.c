/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Conformance: every plugin the build made (whatever the loader finds under
 * build/plugins, so a new plugin is covered without touching this file) goes
 * create -> start -> stop -> destroy with its tests/minimal.conf, and stop ->
 * destroy after a start that failed.
 *
 * The config is always copied into a temporary directory, with a [runtime]
 * group whose state_dir is there too. Relative path keys (ARB_CFG_PATH in the
 * plugin's schema) that name something existing next to the original file are
 * inputs, and are made absolute so they still resolve; the others are outputs,
 * and stay relative, so they land in the temporary directory and never in the
 * source tree (which the test checks).
 *
 * A start that fails: the plugin's tests/failing-start.conf when it has one;
 * otherwise minimal.conf with every path key pointed under /proc, in a
 * directory that does not exist and cannot be created. A plugin with neither
 * cannot be made to fail, and that test is skipped, saying so. */

#include "config.h"

#include <string.h>

#include "arb-host-private.h"
#include "arb-plugin-loader-private.h"
#include "arb-test-log.h"
#include "arb-test-util.h"

#define UNREACHABLE_DIR "/proc/arbiter-conformance"
#define RUN_MS          300

static ArbPluginLoader *loader; /* every module under build/plugins */

static const char *
source_root (void)
{
  const char *env = g_getenv ("ARB_SOURCE_ROOT");
  return env != NULL ? env : ARB_SOURCE_ROOT;
}

static const char *
build_root (void)
{
  const char *env = g_getenv ("ARB_BUILD_ROOT");
  return env != NULL ? env : ARB_BUILD_ROOT;
}

static char *
plugin_build_dir (void)
{
  return g_build_filename (build_root (), "plugins", NULL);
}

/* The plugin's source directory, holding tests/minimal.conf: by its name
 * (sink-jsonl -> plugins/sinks/jsonl, ingest-replay -> plugins/ingest/replay,
 * risk-x -> plugins/risk/x), else where the build tree put it, which mirrors
 * the source tree (plugins/examples/hello-ingest). NULL when neither has a
 * minimal.conf; @tried then lists where it looked. */
static char *
plugin_source_dir (ArbPluginModule *m, GString *tried)
{
  static const struct { const char *kind, *dir; } kind_dirs[] = {
    { "ingest", "ingest" }, { "sink", "sinks" }, { "risk", "risk" },
  };
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  const char *dash = strchr (m->name, '-');
  g_autofree char *built_in = g_path_get_dirname (m->path);
  g_autofree char *build_prefix = g_strconcat (build_root (), G_DIR_SEPARATOR_S, NULL);

  for (guint i = 0; dash != NULL && i < G_N_ELEMENTS (kind_dirs); i++)
    if (strncmp (m->name, kind_dirs[i].kind, (gsize) (dash - m->name)) == 0
        && kind_dirs[i].kind[dash - m->name] == '\0')
      g_ptr_array_add (candidates, g_build_filename (source_root (), "plugins", kind_dirs[i].dir, dash + 1, NULL));
  if (g_str_has_prefix (built_in, build_prefix))
    {
      g_autofree char *mirror = g_build_filename (source_root (), built_in + strlen (build_prefix), NULL);
      if (candidates->len == 0 || !g_str_equal (g_ptr_array_index (candidates, 0), mirror))
        g_ptr_array_add (candidates, g_steal_pointer (&mirror));
    }

  for (guint i = 0; i < candidates->len; i++)
    {
      const char *dir = g_ptr_array_index (candidates, i);
      g_autofree char *conf = g_build_filename (dir, "tests", "minimal.conf", NULL);
      if (g_file_test (conf, G_FILE_TEST_IS_REGULAR))
        return g_strdup (dir);
      g_string_append_printf (tried, "%s%s", tried->len > 0 ? ", " : "", conf);
    }
  return NULL;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* the names in @dir, sorted, to notice a plugin writing into the source tree */
static char *
list_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (d == NULL)
    return g_strdup ("");
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv ("\n", (char **) names->pdata);
}

typedef enum {
  CONF_AS_IS,        /* minimal.conf, or failing-start.conf */
  CONF_PATHS_BROKEN, /* minimal.conf with every path key under UNREACHABLE_DIR */
} ConfMode;

/* Writes @source into @tmp as a config the host can load from there. Returns
 * its path, and in *n_instances how many groups use @m; *n_paths counts the
 * path keys pointed under UNREACHABLE_DIR. */
static char *
prepare_conf (ArbPluginModule *m, const char *source, const char *tmp, ConfMode mode, guint *n_instances,
              guint *n_paths)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(ArbConfig) config = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) groups = NULL;
  g_autofree char *source_dir = g_path_get_dirname (source);
  g_autofree char *base = g_path_get_basename (source);
  g_autofree char *state = g_build_filename (tmp, "state", NULL);
  g_autofree char *out = g_build_filename (tmp, base, NULL);
  g_autofree char *data = NULL;

  *n_instances = 0;
  *n_paths = 0;
  g_key_file_set_list_separator (kf, ',');
  g_key_file_load_from_file (kf, source, G_KEY_FILE_KEEP_COMMENTS, &error);
  g_assert_no_error (error);
  config = arb_config_load (source, problems, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config);

  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *group = groups[i];
      g_autofree char *plugin = arb_config_get_raw (config, group, "plugin");
      ArbPluginModule *module;

      if (g_str_equal (group, "runtime") || plugin == NULL)
        continue;
      module = arb_plugin_loader_find (loader, plugin);
      if (module == m)
        (*n_instances)++;
      if (module == NULL || module->desc.config == NULL)
        continue;
      for (const ArbConfigKey *k = module->desc.config; k->name != NULL; k++)
        {
          g_autofree char *raw = NULL;
          g_autofree char *resolved = NULL;

          if (k->type != ARB_CFG_PATH)
            continue;
          if (mode == CONF_PATHS_BROKEN && module == m)
            {
              g_autofree char *broken = g_build_filename (UNREACHABLE_DIR, k->name, NULL);
              g_key_file_set_value (kf, group, k->name, broken);
              (*n_paths)++;
              continue;
            }
          raw = arb_config_get_raw (config, group, k->name);
          if (raw == NULL)
            raw = g_strdup (k->fallback);
          if (raw == NULL || *raw == '\0' || g_path_is_absolute (raw))
            continue;
          /* an input next to the original file: keep pointing at it */
          resolved = g_canonicalize_filename (raw, source_dir);
          if (g_file_test (resolved, G_FILE_TEST_EXISTS))
            g_key_file_set_value (kf, group, k->name, resolved);
        }
    }
  g_key_file_set_value (kf, "runtime", "state_dir", state);

  data = g_key_file_to_data (kf, NULL, NULL);
  g_file_set_contents (out, data, -1, &error);
  g_assert_no_error (error);
  if (g_test_verbose ())
    g_test_message ("%s:\n%s", out, data);
  return g_steal_pointer (&out);
}

static ArbHost *
host_new (const char *conf)
{
  g_autofree char *plugins = plugin_build_dir ();
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *all = NULL;
  ArbHost *host;

  /* only the plugins the build made: no fixtures, nothing installed */
  g_assert_true (g_setenv ("ARBITER_PLUGIN_PATH", plugins, TRUE));
  g_assert_true (g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE));
  host = arb_host_new (conf, problems, &error);
  all = arb_config_problems_join (problems);
  /* compared as strings, so a failure prints the problems */
  g_assert_cmpstr (all, ==, "");
  g_assert_no_error (error);
  g_assert_nonnull (host);
  return host;
}

static gboolean
set_true (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* runs the host's main context for @ms, so the plugins' timers fire */
static void
run_for (ArbHost *host, guint ms)
{
  gboolean done = FALSE;
  GSource *s = g_timeout_source_new (ms);

  g_source_set_callback (s, set_true, &done, NULL);
  g_source_attach (s, host->context);
  while (!done)
    g_main_context_iteration (host->context, TRUE);
  g_source_unref (s);
}

static void
create_all (ArbHost *host)
{
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autoptr(GError) error = NULL;
      g_test_message ("%s: create", inst->name);
      g_assert_true (arb_instance_create (inst, &error));
      g_assert_no_error (error);
      g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_CREATED);
      g_assert_nonnull (inst->self);
    }
}

/* as the host does it: feeds first, then the risk checks, then the sinks
 * once their queues are drained */
static void
stop_all (ArbHost *host)
{
  static const guint32 order[] = { ARB_PLUGIN_INGEST, ARB_PLUGIN_RISK };

  for (guint k = 0; k < G_N_ELEMENTS (order); k++)
    for (guint i = host->instances->len; i > 0; i--)
      {
        ArbInstance *inst = g_ptr_array_index (host->instances, i - 1);
        if (inst->kind == order[k])
          arb_instance_stop (inst);
      }
  arb_relay_shutdown (host->relay, 5000);
  for (guint i = host->instances->len; i > 0; i--)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i - 1);
      if (inst->kind == ARB_PLUGIN_SINK)
        arb_instance_stop (inst);
    }
}

static void
test_loads (gconstpointer data)
{
  ArbPluginModule *m = (ArbPluginModule *) data;

  g_test_message ("%s", m->path);
  if (m->refused != NULL)
    g_test_fail_printf ("%s was refused: %s", m->path, m->refused);
}

static void
test_lifecycle (gconstpointer data)
{
  ArbPluginModule *m = (ArbPluginModule *) data;
  static const guint32 start_order[] = { ARB_PLUGIN_SINK, ARB_PLUGIN_RISK, ARB_PLUGIN_INGEST };
  g_autoptr(GString) tried = g_string_new (NULL);
  g_autofree char *dir = plugin_source_dir (m, tried);
  g_autofree char *tests_dir = NULL;
  g_autofree char *source = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *conf = NULL;
  g_autoptr(ArbHost) host = NULL;
  guint n_instances, n_paths;

  if (dir == NULL)
    {
      g_test_fail_printf ("plugin %s has no tests/minimal.conf (looked for %s); every plugin needs one, with the "
                          "smallest config that starts, for this test",
                          m->name, tried->str);
      return;
    }
  tests_dir = g_build_filename (dir, "tests", NULL);
  source = g_build_filename (tests_dir, "minimal.conf", NULL);
  before = list_dir (tests_dir);
  tmp = g_dir_make_tmp ("arb-conformance-XXXXXX", NULL);
  g_assert_nonnull (tmp);
  conf = prepare_conf (m, source, tmp, CONF_AS_IS, &n_instances, &n_paths);
  if (n_instances == 0)
    g_test_fail_printf ("%s has no instance group with plugin=%s", source, m->name);

  host = host_new (conf);
  create_all (host);
  for (guint k = 0; k < G_N_ELEMENTS (start_order); k++)
    for (guint i = 0; i < host->instances->len; i++)
      {
        ArbInstance *inst = g_ptr_array_index (host->instances, i);
        g_autoptr(GError) error = NULL;
        if (inst->kind != start_order[k])
          continue;
        g_test_message ("%s: start", inst->name);
        g_assert_true (arb_instance_start (inst, &error));
        g_assert_no_error (error);
        g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RUNNING);
      }

  run_for (host, RUN_MS);
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autofree char *reason = arb_instance_dup_reason (inst);
      g_test_message ("%s: %s, health %s%s%s", inst->name, arb_instance_state_to_string (inst->state),
                      arb_health_to_string (arb_instance_get_health (inst)), reason != NULL ? ": " : "",
                      reason != NULL ? reason : "");
      /* health is the plugin's business; the state must still be running */
      g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RUNNING);
    }

  stop_all (host);
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_STOPPED);
      arb_instance_destroy (inst);
      g_assert_null (inst->self);
    }
  g_clear_pointer (&host, arb_host_free);

  after = list_dir (tests_dir);
  g_assert_cmpstr (after, ==, before);
  g_assert_true (arb_test_remove_tree (tmp));
  arb_test_log_check ();
}

/* the host's loader has its own ArbPluginModule for the same file: compare names */
static gboolean
uses_plugin (ArbInstance *inst, ArbPluginModule *m)
{
  return inst->module != NULL && g_str_equal (inst->module->name, m->name);
}

static void
test_stop_after_failed_start (gconstpointer data)
{
  ArbPluginModule *m = (ArbPluginModule *) data;
  g_autoptr(GString) tried = g_string_new (NULL);
  g_autofree char *dir = plugin_source_dir (m, tried);
  g_autofree char *source = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *conf = NULL;
  g_autoptr(ArbHost) host = NULL;
  guint n_instances, n_paths = 0;
  guint n_failed = 0;

  if (dir == NULL)
    {
      g_test_fail_printf ("plugin %s has no tests/minimal.conf (looked for %s)", m->name, tried->str);
      return;
    }
  tmp = g_dir_make_tmp ("arb-conformance-XXXXXX", NULL);
  g_assert_nonnull (tmp);
  source = g_build_filename (dir, "tests", "failing-start.conf", NULL);
  if (g_file_test (source, G_FILE_TEST_IS_REGULAR))
    conf = prepare_conf (m, source, tmp, CONF_AS_IS, &n_instances, &n_paths);
  else
    {
      g_free (source);
      source = g_build_filename (dir, "tests", "minimal.conf", NULL);
      conf = prepare_conf (m, source, tmp, CONF_PATHS_BROKEN, &n_instances, &n_paths);
      if (n_paths == 0)
        {
          g_autofree char *msg = g_strdup_printf ("%s has no path key and no tests/failing-start.conf: nothing "
                                                  "makes its start fail, so stop after a failed start is not "
                                                  "exercised",
                                                  m->name);
          g_assert_true (arb_test_remove_tree (tmp));
          g_test_skip (msg);
          return;
        }
    }
  if (n_instances == 0)
    g_test_fail_printf ("%s has no instance group with plugin=%s", source, m->name);

  host = host_new (conf);
  /* create does no I/O, so a path that cannot work is no reason to fail yet */
  create_all (host);
  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autoptr(GError) error = NULL;
      g_autofree char *reason = NULL;
      ArbInstanceState state;

      if (!uses_plugin (inst, m))
        continue;
      /* FAILED or RETRYING, in the plugin's own words */
      arb_test_log_allow (G_LOG_LEVEL_WARNING, inst->name);
      g_test_message ("%s: start, to fail", inst->name);
      if (arb_instance_start (inst, &error))
        {
          g_test_fail_printf ("%s: start succeeded with %s; give the plugin a tests/failing-start.conf", inst->name,
                              n_paths > 0 ? "every path key under " UNREACHABLE_DIR : source);
          continue;
        }
      g_assert_nonnull (error);
      g_test_message ("%s", error->message);
      /* the plugin set its own error, in the plugin domain */
      g_assert_true (error->domain == ARB_PLUGIN_ERROR);
      g_assert_cmpint (error->code, !=, ARB_PLUGIN_ERROR_BUG);
      state = arb_instance_get_state (inst);
      g_assert_true (state == ARB_INSTANCE_FAILED || state == ARB_INSTANCE_RETRYING);
      reason = arb_instance_dup_reason (inst);
      g_assert_nonnull (reason);
      g_assert_true (g_str_has_prefix (reason, "start: "));
      n_failed++;
    }
  if (!g_test_failed ())
    g_assert_cmpuint (n_failed, ==, n_instances);

  run_for (host, RUN_MS / 3);

  for (guint i = 0; i < host->instances->len; i++)
    {
      ArbInstance *inst = g_ptr_array_index (host->instances, i);
      g_autofree char *reason_before = arb_instance_dup_reason (inst);
      g_autofree char *reason_after = NULL;
      ArbInstanceState state = arb_instance_get_state (inst);

      if (!uses_plugin (inst, m))
        continue;
      /* twice: the host calls the plugin's stop once per start, so the
       * second is the host's no-op */
      g_test_message ("%s: stop, stop, destroy", inst->name);
      arb_instance_stop (inst);
      arb_instance_stop (inst);
      arb_instance_destroy (inst);
      g_assert_null (inst->self);
      reason_after = arb_instance_dup_reason (inst);
      /* the failure stays visible: a failed instance keeps its state and
       * reason; one that was retrying is stopped, with the reason kept */
      if (state == ARB_INSTANCE_RETRYING)
        {
          g_autofree char *expected = g_strdup_printf ("stopped while retrying; %s", reason_before);
          g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_STOPPED);
          g_assert_cmpstr (reason_after, ==, expected);
        }
      else
        {
          g_assert_cmpint (arb_instance_get_state (inst), ==, state);
          g_assert_cmpstr (reason_after, ==, reason_before);
        }
    }
  g_clear_pointer (&host, arb_host_free);
  g_assert_true (arb_test_remove_tree (tmp));
  arb_test_log_check ();
}

static void
test_no_plugins (gconstpointer data)
{
  g_test_fail_printf ("no plugin found under %s", (const char *) data);
}

int
main (int argc, char **argv)
{
  g_autofree char *plugins = NULL;
  const char *dirs[2] = { NULL, NULL };
  GPtrArray *modules;
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  arb_test_log_install ();

  plugins = plugin_build_dir ();
  dirs[0] = plugins;
  loader = arb_plugin_loader_new (dirs);
  arb_plugin_loader_scan (loader);
  modules = arb_plugin_loader_get_modules (loader);
  if (modules->len == 0)
    g_test_add_data_func ("/conformance/no-plugins", plugins, test_no_plugins);
  for (guint i = 0; i < modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (modules, i);
      g_autofree char *loads = g_strdup_printf ("/conformance/%s/loads", m->name);
      g_autofree char *lifecycle = g_strdup_printf ("/conformance/%s/lifecycle", m->name);
      g_autofree char *failed = g_strdup_printf ("/conformance/%s/stop-after-failed-start", m->name);

      g_test_add_data_func (loads, m, test_loads);
      if (m->refused != NULL)
        continue;
      g_test_add_data_func (lifecycle, m, test_lifecycle);
      g_test_add_data_func (failed, m, test_stop_after_failed_start);
    }
  rc = g_test_run ();
  arb_plugin_loader_free (loader);
  return rc;
}
