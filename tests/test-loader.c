/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The plugin loader against plugins broken on purpose (tests/fixtures/plugins),
 * each with its golden refusal, and the host's wrappers against plugins that
 * break the GError contract. */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-host-private.h"
#include "arb-plugin-loader-private.h"
#include "arb-test-log.h"
#include "arb-test-util.h"

typedef struct {
  const char *name;
  const char *refused; /* the golden message; NULL: loads */
} Golden;

/* Every fixture in build/tests/fixtures/plugins, with what the loader must
 * say about it. The scan test fails on a fixture missing from this table. */
static const Golden goldens[] = {
  { "ingest-wrong-abi",
    "built for plugin ABI 2.0, this host speaks 1.1; rebuild it against arbiter-plugin-1" },
  /* a plugin of 1.2 may call what a 1.1 host lacks, as one of 1.1 (which may
   * call arb_instance_publish_market_event) may on a 1.0 host */
  { "ingest-newer-minor",
    "built for plugin ABI 1.2, newer than this host's 1.1; upgrade arbiterd or rebuild the plugin against this "
    "host's arbiter-plugin-1" },
  /* a plugin of 1.0 on this 1.1 host: everything it may call is here */
  { "ingest-older-minor", NULL },
  { "ingest-no-symbol",
    "has no entry symbol arb_plugin_ingest_no_symbol_describe; define it with ARB_PLUGIN_DEFINE "
    "(ingest_no_symbol, ...), or rename the file after the plugin's name" },
  { "ingest-small-desc",
    "malformed descriptor: its size field says 8 bytes, ABI 1.0 needs at least 56; use ARB_PLUGIN_DESC_HEADER" },
  { "ingest-wrong-name",
    "malformed descriptor: it calls itself \"ingest-other-name\" but the file says \"ingest-wrong-name\"; the name "
    "must equal the file stem: rename the file to libarb-ingest-other-name.so or fix .name" },
  { "ingest-null-vtable",
    "malformed descriptor: vtable is NULL; point it at the plugin's ArbIngestVTable" },
  { "ingest-enum-no-choices",
    "malformed descriptor: config key \"mode\" is an enum without choices; list the allowed words in .choices, "
    "comma-separated" },
  { "ingest-dup-key",
    "malformed descriptor: config key \"url\" is declared twice; keep one entry" },
  { "risk-no-check-order",
    "its ArbRiskVTable has no check_order callback; every risk plugin sets create, start, check_order, stop and "
    "destroy" },
  { "risk-ok", NULL },
  { "ingest-false-no-error", NULL },
  { "ingest-create-null", NULL },
};

/* what the wrappers say about a plugin that broke the GError contract */
#define GOLDEN_START_BUG                                                                                      \
  "start() returned FALSE without an error, a bug in plugin ingest-false-no-error; report it to the plugin's " \
  "authors"
#define GOLDEN_CREATE_BUG                                                                                     \
  "create() returned NULL without an error, a bug in plugin ingest-create-null; report it to the plugin's "   \
  "authors"

static char *
fixture_dir (void)
{
  return g_test_build_filename (G_TEST_BUILT, "fixtures", "plugins", NULL);
}

static char *
fixture_path (const char *name)
{
  g_autofree char *dir = fixture_dir ();
  g_autofree char *file = g_strdup_printf ("libarb-%s.so", name);
  return g_build_filename (dir, file, NULL);
}

static char *
plugin_build_dir (void)
{
  const char *env = g_getenv ("ARB_BUILD_ROOT");
  return g_build_filename (env != NULL ? env : ARB_BUILD_ROOT, "plugins", NULL);
}

/* ------------------------------------------------------------------------ */
/* One file at a time                                                       */

static void
test_open_fixture (gconstpointer data)
{
  const Golden *golden = data;
  g_autofree char *path = fixture_path (golden->name);
  ArbPluginModule *m;

  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  m = arb_plugin_module_open (path);
  g_assert_cmpstr (m->path, ==, path);
  g_assert_cmpstr (m->name, ==, golden->name);
  g_assert_cmpstr (m->refused, ==, golden->refused);
  g_assert_null (m->shadowed_by);
  if (golden->refused == NULL)
    {
      g_assert_nonnull (m->module);
      g_assert_cmpstr (m->desc.name, ==, golden->name);
      g_assert_cmpuint (m->desc.abi_major, ==, ARB_PLUGIN_ABI_MAJOR);
    }
  arb_plugin_module_free (m);
  arb_test_log_check ();
}

static void
test_open_not_a_plugin (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("arb-loader-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (tmp, "libarb-ingest-garbage.so", NULL);
  ArbPluginModule *m;

  g_assert_true (g_file_set_contents (path, "not an ELF file\n", -1, NULL));
  m = arb_plugin_module_open (path);
  g_assert_cmpstr (m->name, ==, "ingest-garbage");
  g_assert_null (m->module);
  /* the rest is dlerror()'s, which names the file; ours is the prefix */
  g_assert_nonnull (m->refused);
  g_assert_true (g_str_has_prefix (m->refused, "cannot be loaded: "));
  arb_plugin_module_free (m);
  g_assert_true (arb_test_remove_tree (tmp));
  arb_test_log_check ();
}

/* ------------------------------------------------------------------------ */
/* The scan over a path                                                     */

static const Golden *
find_golden (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (goldens); i++)
    if (g_str_equal (goldens[i].name, name))
      return &goldens[i];
  return NULL;
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (from, &data, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (to, data, (gssize) len, &error);
  g_assert_no_error (error);
}

static void
test_scan (void)
{
  g_autofree char *fixtures = fixture_dir ();
  g_autofree char *plugins = plugin_build_dir ();
  g_autofree char *later = g_dir_make_tmp ("arb-loader-XXXXXX", NULL);
  g_autofree char *fixtures_prefix = g_strconcat (fixtures, G_DIR_SEPARATOR_S, NULL);
  g_autofree char *plugins_prefix = g_strconcat (plugins, G_DIR_SEPARATOR_S, NULL);
  g_autofree char *later_prefix = g_strconcat (later, G_DIR_SEPARATOR_S, NULL);
  const char *shadow_names[] = { "risk-ok", "ingest-wrong-abi" };
  const char *dirs[] = { fixtures, plugins, later, NULL };
  g_autoptr(ArbPluginLoader) loader = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *modules;
  guint n_built = 0, n_shadowed = 0;

  /* the same file names later in the path: never opened, marked shadowed */
  for (guint i = 0; i < G_N_ELEMENTS (shadow_names); i++)
    {
      g_autofree char *from = fixture_path (shadow_names[i]);
      g_autofree char *file = g_strdup_printf ("libarb-%s.so", shadow_names[i]);
      g_autofree char *to = g_build_filename (later, file, NULL);
      copy_file (from, to);
    }

  loader = arb_plugin_loader_new (dirs);
  arb_plugin_loader_scan (loader);
  modules = arb_plugin_loader_get_modules (loader);

  for (guint i = 0; i < modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (modules, i);

      if (g_str_has_prefix (m->path, fixtures_prefix))
        {
          const Golden *golden = find_golden (m->name);
          if (golden == NULL)
            {
              g_test_fail_printf ("fixture %s has no golden message in test-loader.c's table", m->path);
              continue;
            }
          g_test_message ("%s: %s", m->name, m->refused != NULL ? m->refused : "loaded");
          g_assert_cmpstr (m->refused, ==, golden->refused);
          g_assert_null (m->shadowed_by);
          g_hash_table_add (seen, (gpointer) golden->name);
        }
      else if (g_str_has_prefix (m->path, plugins_prefix))
        {
          /* every plugin the project builds loads */
          if (m->refused != NULL)
            {
              g_test_fail_printf ("%s was refused: %s", m->path, m->refused);
              continue;
            }
          g_assert_nonnull (m->module);
          g_assert_null (m->shadowed_by);
          g_assert_true (arb_plugin_loader_find (loader, m->name) == m);
          n_built++;
        }
      else
        {
          g_autofree char *first = fixture_path (m->name);
          g_autofree char *reason = g_strdup_printf ("shadowed by %s, found earlier in the plugin path", first);
          g_assert_true (g_str_has_prefix (m->path, later_prefix));
          g_assert_cmpstr (m->shadowed_by, ==, first);
          g_assert_cmpstr (m->refused, ==, reason);
          g_assert_null (m->module);
          n_shadowed++;
        }
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, G_N_ELEMENTS (goldens));
  g_assert_cmpuint (n_shadowed, ==, G_N_ELEMENTS (shadow_names));
  g_assert_cmpuint (n_built, >, 0);

  /* the first file of a name is the one the host sees */
  {
    g_autofree char *risk_ok = fixture_path ("risk-ok");
    g_autofree char *wrong_abi = fixture_path ("ingest-wrong-abi");
    g_auto(GStrv) names = arb_plugin_loader_get_names (loader);
    g_assert_cmpstr (arb_plugin_loader_find (loader, "risk-ok")->path, ==, risk_ok);
    g_assert_null (arb_plugin_loader_find (loader, "ingest-wrong-abi"));
    g_assert_cmpstr (arb_plugin_loader_find_any (loader, "ingest-wrong-abi")->path, ==, wrong_abi);
    g_assert_true (g_strv_contains ((const char *const *) names, "risk-ok"));
    g_assert_false (g_strv_contains ((const char *const *) names, "ingest-wrong-abi"));
    g_assert_false (g_strv_contains ((const char *const *) names, "risk-no-check-order"));
  }

  g_assert_true (arb_test_remove_tree (later));
  arb_test_log_check ();
}

/* ------------------------------------------------------------------------ */
/* The host in-process                                                      */

typedef struct {
  char      *tmp;      /* owned: removed at the end */
  char      *conf;     /* owned */
  GPtrArray *problems; /* owned */
  ArbHost   *host;     /* owned */
} HostFixture;

static void
host_up (HostFixture *f, const char *groups)
{
  g_autofree char *fixtures = fixture_dir ();
  g_autofree char *state = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp ("arb-loader-XXXXXX", &error);
  g_assert_no_error (error);
  state = g_build_filename (f->tmp, "state", NULL);
  f->conf = g_build_filename (f->tmp, "arbiter.conf", NULL);
  text = g_strdup_printf ("[runtime]\nstate_dir=%s\n%s", state, groups);
  g_file_set_contents (f->conf, text, -1, &error);
  g_assert_no_error (error);

  g_assert_true (g_setenv ("ARBITER_PLUGIN_PATH", fixtures, TRUE));
  f->problems = arb_config_problems_new ();
  f->host = arb_host_new (f->conf, f->problems, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->host);
}

static void
host_down (HostFixture *f)
{
  g_clear_pointer (&f->host, arb_host_free);
  g_clear_pointer (&f->problems, g_ptr_array_unref);
  g_assert_true (arb_test_remove_tree (f->tmp));
  g_clear_pointer (&f->tmp, g_free);
  g_clear_pointer (&f->conf, g_free);
  g_unsetenv ("ARBITER_PLUGIN_PATH");
  arb_test_log_check ();
}

static void
assert_no_problems (HostFixture *f)
{
  g_autofree char *all = arb_config_problems_join (f->problems);
  /* compared as a string, so a failure prints the problems */
  g_assert_cmpstr (all, ==, "");
}

/* the /ready document, parsed; @ready gets its verdict */
static JsonNode *
ready_json (ArbHost *host, gboolean *ready)
{
  g_autofree char *text = arb_host_ready_json (host, ready);
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  g_test_message ("/ready: %s", text);
  root = json_from_string (text, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return root;
}

static JsonObject *
ready_instance (JsonNode *root, const char *name)
{
  JsonArray *instances = json_object_get_array_member (json_node_get_object (root), "instances");
  for (guint i = 0; i < json_array_get_length (instances); i++)
    {
      JsonObject *o = json_array_get_object_element (instances, i);
      if (g_strcmp0 (json_object_get_string_member (o, "name"), name) == 0)
        return o;
    }
  g_error ("/ready has no instance %s", name);
  return NULL;
}

static void
test_start_false_without_error (void)
{
  HostFixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *reason = NULL;
  ArbInstance *inst;
  JsonObject *o;
  gboolean ready = FALSE;

  host_up (&f, "[ingest:x]\nplugin=ingest-false-no-error\n");
  assert_no_problems (&f);
  inst = arb_host_find_instance (f.host, "ingest:x");
  g_assert_nonnull (inst);

  g_assert_true (arb_instance_create (inst, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_CREATED);

  /* the host says so at CRITICAL level, and the instance goes FAILED */
  arb_test_log_expect (G_LOG_LEVEL_CRITICAL, "ingest:x",
                       "plugin bug: start() returned FALSE without setting an error; treated as a failure");
  arb_test_log_expect (G_LOG_LEVEL_WARNING, "ingest:x", "failed, health down: start: " GOLDEN_START_BUG);
  g_assert_false (arb_instance_start (inst, &error));
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG);
  g_assert_cmpstr (error->message, ==, "ingest:x: start: " GOLDEN_START_BUG);

  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);
  g_assert_cmpint (arb_instance_get_health (inst), ==, ARB_HEALTH_DOWN);
  reason = arb_instance_dup_reason (inst);
  g_assert_cmpstr (reason, ==, "start: " GOLDEN_START_BUG);

  root = ready_json (f.host, &ready);
  o = ready_instance (root, "ingest:x");
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (o, "health"), ==, "down");
  g_assert_cmpstr (json_object_get_string_member (o, "reason"), ==, "start: " GOLDEN_START_BUG);
  g_assert_cmpstr (json_object_get_string_member (o, "lastError"), ==, GOLDEN_START_BUG);
  g_assert_cmpstr (json_object_get_string_member (o, "plugin"), ==, "ingest-false-no-error");
  /* an ingest instance is not required unless the config says so */
  g_assert_false (json_object_get_boolean_member (o, "required"));
  g_assert_true (ready);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root), "status"), ==, "ready");

  /* stop after a failed start, then destroy: the reason stays */
  arb_instance_stop (inst);
  arb_instance_destroy (inst);
  g_clear_pointer (&reason, g_free);
  reason = arb_instance_dup_reason (inst);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);
  g_assert_cmpstr (reason, ==, "start: " GOLDEN_START_BUG);

  host_down (&f);
}

static void
test_create_null_without_error (void)
{
  HostFixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  ArbInstance *inst;

  host_up (&f, "[ingest:x]\nplugin=ingest-create-null\n");
  assert_no_problems (&f);
  inst = arb_host_find_instance (f.host, "ingest:x");
  g_assert_nonnull (inst);

  arb_test_log_expect (G_LOG_LEVEL_CRITICAL, "ingest:x",
                       "plugin bug: create() returned NULL without setting an error; treated as a failure");
  arb_test_log_expect (G_LOG_LEVEL_WARNING, "ingest:x", "failed, health down: create: " GOLDEN_CREATE_BUG);
  g_assert_false (arb_instance_create (inst, &error));
  g_assert_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_BUG);
  g_assert_cmpstr (error->message, ==, "ingest:x: create: " GOLDEN_CREATE_BUG);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);
  reason = arb_instance_dup_reason (inst);
  g_assert_cmpstr (reason, ==, "create: " GOLDEN_CREATE_BUG);

  /* nothing was created: stop and destroy have nothing to call */
  arb_instance_stop (inst);
  arb_instance_destroy (inst);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);

  host_down (&f);
}

static void
start_instance (ArbHost *host, const char *name)
{
  ArbInstance *inst = arb_host_find_instance (host, name);
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (inst);
  g_assert_true (arb_instance_create (inst, &error));
  g_assert_no_error (error);
  g_assert_true (arb_instance_start (inst, &error));
  g_assert_no_error (error);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_RUNNING);
}

static void
test_risk_ok_is_ready (void)
{
  HostFixture f = { 0 };
  g_autoptr(JsonNode) root = NULL;
  gboolean ready = FALSE;
  JsonObject *o;

  host_up (&f, "[risk:limits]\nplugin=risk-ok\n");
  assert_no_problems (&f);
  /* not started yet: a required risk instance that is not running */
  g_clear_pointer (&root, json_node_unref);
  root = ready_json (f.host, &ready);
  g_assert_false (ready);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root), "status"), ==, "not ready");

  start_instance (f.host, "risk:limits");
  g_clear_pointer (&root, json_node_unref);
  root = ready_json (f.host, &ready);
  o = ready_instance (root, "risk:limits");
  g_assert_true (json_object_get_boolean_member (o, "required"));
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "running");
  g_assert_true (ready);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root), "status"), ==, "ready");

  host_down (&f);
}

static void
test_risk_refused_not_ready (gconstpointer data)
{
  gboolean required = GPOINTER_TO_INT (data);
  HostFixture f = { 0 };
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *groups = NULL;
  g_autofree char *path = fixture_path ("risk-no-check-order");
  g_autofree char *failure = NULL;
  g_autofree char *problem = NULL;
  const Golden *golden = find_golden ("risk-no-check-order");
  JsonArray *refused;
  gboolean listed = FALSE;
  gboolean ready = TRUE;
  JsonObject *o;

  /* risk instances are required unless the config says otherwise */
  groups = g_strdup_printf ("[risk:limits]\nplugin=risk-ok\n[risk:broken]\nplugin=risk-no-check-order\n%s",
                            required ? "" : "required=false\n");
  host_up (&f, groups);

  /* the daemon runs on without it, and the config check says why */
  failure = g_strdup_printf ("plugin risk-no-check-order (%s) was refused: %s", path, golden->refused);
  problem = g_strdup_printf ("%s: [risk:broken] %s", f.conf, failure);
  g_assert_cmpuint (f.problems->len, ==, 1);
  {
    g_autofree char *text = arb_config_problem_to_string (g_ptr_array_index (f.problems, 0));
    g_assert_cmpstr (text, ==, problem);
  }
  g_assert_cmpint (arb_instance_get_state (arb_host_find_instance (f.host, "risk:broken")), ==,
                   ARB_INSTANCE_FAILED);

  start_instance (f.host, "risk:limits");
  root = ready_json (f.host, &ready);
  o = ready_instance (root, "risk:broken");
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "failed");
  g_assert_cmpstr (json_object_get_string_member (o, "reason"), ==, failure);
  g_assert_true (json_object_get_null_member (o, "plugin"));
  g_assert_true (json_object_get_boolean_member (o, "required") == required);
  g_assert_cmpstr (json_object_get_string_member (ready_instance (root, "risk:limits"), "state"), ==, "running");

  /* fail closed: a required risk check that is not running */
  g_assert_true (ready == !required);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root), "status"), ==,
                   required ? "not ready" : "ready");

  refused = json_object_get_array_member (json_node_get_object (root), "refusedModules");
  for (guint i = 0; i < json_array_get_length (refused); i++)
    {
      JsonObject *m = json_array_get_object_element (refused, i);
      if (g_strcmp0 (json_object_get_string_member (m, "name"), "risk-no-check-order") != 0)
        continue;
      g_assert_cmpstr (json_object_get_string_member (m, "file"), ==, path);
      g_assert_cmpstr (json_object_get_string_member (m, "reason"), ==, golden->refused);
      listed = TRUE;
    }
  g_assert_true (listed);

  host_down (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  arb_test_log_install ();

  for (guint i = 0; i < G_N_ELEMENTS (goldens); i++)
    {
      g_autofree char *path = g_strdup_printf ("/loader/open/%s", goldens[i].name);
      g_test_add_data_func (path, &goldens[i], test_open_fixture);
    }
  g_test_add_func ("/loader/open/not-a-plugin", test_open_not_a_plugin);
  g_test_add_func ("/loader/scan", test_scan);
  g_test_add_func ("/loader/host/start-false-without-error", test_start_false_without_error);
  g_test_add_func ("/loader/host/create-null-without-error", test_create_null_without_error);
  g_test_add_func ("/loader/host/risk-ok/ready", test_risk_ok_is_ready);
  g_test_add_data_func ("/loader/host/risk-refused/required/not-ready", GINT_TO_POINTER (TRUE),
                        test_risk_refused_not_ready);
  g_test_add_data_func ("/loader/host/risk-refused/not-required/ready", GINT_TO_POINTER (FALSE),
                        test_risk_refused_not_ready);
  return g_test_run ();
}
