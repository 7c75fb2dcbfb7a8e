/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Config errors, each with its golden message (STYLE §4, §9): every problem
 * an operator can make in arbiter.conf is found before anything starts, all
 * at once, and each says what is wrong and what to write instead. */

#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "arb-config-private.h"
#include "arb-host-private.h"
#include "arb-util-private.h"
#include "arb-test-util.h"

typedef struct {
  char *dir;  /* owned: a fresh temporary directory */
  char *path; /* owned: the config file in it */
} Fixture;

static char *plugin_dir; /* $ARB_BUILD_ROOT/plugins */

static void
fixture_up (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  fx->dir = g_dir_make_tmp ("arb-test-config-XXXXXX", &error);
  g_assert_no_error (error);
  fx->path = g_build_filename (fx->dir, "arbiter.conf", NULL);
}

static void
fixture_down (Fixture *fx, gconstpointer data)
{
  arb_test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->path);
}

static void
write_conf (Fixture *fx, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_file_set_contents (fx->path, text, -1, &error);
  g_assert_no_error (error);
}

/* the whole check arbiterd does at start and with --check-config: every
 * problem as the operator reads it, one string each */
static GStrv
check (Fixture *fx, gboolean *out_fatal)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbHost) host = arb_host_new (fx->path, problems, &error);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  /* NULL must come with an error, and problems with a NULL host */
  g_assert_true ((host == NULL) == (error != NULL));
  if (host == NULL)
    g_assert_cmpuint (problems->len, >, 0);
  for (guint i = 0; i < problems->len; i++)
    arb_strv_builder_take (b, arb_config_problem_to_string (g_ptr_array_index (problems, i)));
  if (out_fatal != NULL)
    *out_fatal = host == NULL;
  return g_strv_builder_end (b);
}

/* "<path>: " + the rest */
static char *
expect (Fixture *fx, const char *rest)
{
  return g_strdup_printf ("%s: %s", fx->path, rest);
}

/* the file has exactly one problem, @rest after "<path>: ", and it keeps the
 * daemon from starting */
static void
assert_one_problem (Fixture *fx, const char *text, const char *rest)
{
  gboolean fatal = FALSE;
  g_auto(GStrv) got = NULL;
  g_autofree char *want = expect (fx, rest);

  write_conf (fx, text);
  got = check (fx, &fatal);
  if (g_strv_length (got) != 1)
    {
      g_autofree char *all = g_strjoinv ("\n", got);
      g_test_message ("problems found:\n%s", all);
    }
  g_assert_cmpuint (g_strv_length (got), ==, 1);
  g_assert_cmpstr (got[0], ==, want);
  g_assert_true (fatal);
}

static void
assert_no_problem (Fixture *fx, const char *text)
{
  gboolean fatal = TRUE;
  g_auto(GStrv) got = NULL;

  write_conf (fx, text);
  got = check (fx, &fatal);
  if (got[0] != NULL)
    {
      g_autofree char *all = g_strjoinv ("\n", got);
      g_test_message ("problems found:\n%s", all);
    }
  g_assert_cmpuint (g_strv_length (got), ==, 0);
  g_assert_false (fatal);
}

#define SINK_D "[sink:d]\nplugin=sink-jsonl\npath=events.jsonl\n"
#define INGEST_E "[ingest:e]\nplugin=ingest-replay\nfiles=session-10m.jsonl\n"
#define SINK_KEYS "plugin, required, events, queue_size, path, fsync, fsync_interval, max_line_bytes"
#define RUNTIME_KEYS \
  "listen, plugin_path, state_dir, log_format, log_level, shutdown_timeout, store, store_ledger_writers, migrations_dir, outbox_retention"
#define KNOWN_GROUPS "runtime, api, ingest:NAME, risk:NAME, sink:NAME, feed:NAME, program:NAME, market-class:NAME, market:NAME"

/* ------------------------------------------------------------------------ */

static void
test_clean (Fixture *fx, gconstpointer data)
{
  assert_no_problem (fx, "[runtime]\nlisten=127.0.0.1:0\n\n" INGEST_E "\n" SINK_D "fsync=always\n");
}

static void
test_unknown_key_suggestion (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, SINK_D "fsync_intervall=2s\n",
                      "[sink:d] unknown key \"fsync_intervall\" (did you mean \"fsync_interval\"? allowed: "
                      SINK_KEYS ")");
}

static void
test_unknown_key_no_suggestion (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[runtime]\nfrobnicate=1\n",
                      "[runtime] unknown key \"frobnicate\" (allowed: " RUNTIME_KEYS ")");
}

static void
test_unknown_group_suggestion (Fixture *fx, gconstpointer data)
{
  /* a misspelt kind: the prefix is what is near, not the whole name */
  assert_one_problem (fx, "[sinks:x]\nplugin=sink-jsonl\npath=x\n",
                      "[sinks:x] unknown group (did you mean [sink:x]? known: " KNOWN_GROUPS ")");
  assert_one_problem (fx, "[ingst:feed]\nplugin=ingest-replay\n",
                      "[ingst:feed] unknown group (did you mean [ingest:feed]? known: " KNOWN_GROUPS ")");
  assert_one_problem (fx, "[runtme]\nlisten=127.0.0.1:0\n",
                      "[runtme] unknown group (did you mean [runtime]? known: " KNOWN_GROUPS ")");
}

static void
test_unknown_group_no_suggestion (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[database]\nurl=x\n", "[database] unknown group (known: " KNOWN_GROUPS ")");
  assert_one_problem (fx, "[exchange:x]\n", "[exchange:x] unknown group (known: " KNOWN_GROUPS ")");
}

static void
test_bad_instance_name (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[sink:a b]\nplugin=sink-jsonl\npath=x\n",
                      "[sink:a b] \"a b\" is not a valid instance name (letters, digits, '-', '_', '.')");
}

static void
test_type_int (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, SINK_D "max_line_bytes=abc\n",
                      "[sink:d] max_line_bytes=abc: \"abc\" is not a whole number");
  assert_one_problem (fx, SINK_D "max_line_bytes=12k\n",
                      "[sink:d] max_line_bytes=12k: \"12k\" is not a whole number");
  assert_one_problem (fx, SINK_D "queue_size=0\n",
                      "[sink:d] queue_size=0: 0 is outside the allowed range 1 to 10000000");
}

static void
test_type_bool (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, INGEST_E "loop=maybe\n",
                      "[ingest:e] loop=maybe: \"maybe\" is not a boolean (write true or false)");
  assert_one_problem (fx, INGEST_E "required=2\n",
                      "[ingest:e] required=2: \"2\" is not a boolean (write true or false)");
  /* the spellings that are accepted */
  assert_no_problem (fx, INGEST_E "loop=yes\nrestamp=FALSE\nrequired=0\n");
}

static void
test_type_duration_unit (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, SINK_D "fsync_interval=5\n",
                      "[sink:d] fsync_interval=5: \"5\" has no unit (write 250ms, 10s, 5m, 24h or 7d)");
  assert_one_problem (fx, SINK_D "fsync_interval=5sec\n",
                      "[sink:d] fsync_interval=5sec: \"5sec\" has an unknown unit (use ms, s, m, h or d)");
  assert_one_problem (fx, "[runtime]\nshutdown_timeout=\n",
                      "[runtime] shutdown_timeout=: empty duration (write a number with a unit: 250ms, 10s, 5m, "
                      "24h, 7d)");
}

static void
test_type_duration_range (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, SINK_D "fsync_interval=2h\n",
                      "[sink:d] fsync_interval=2h: 2h is 7200000 ms, above the maximum of 1h (3600000 ms)");
  assert_one_problem (fx, SINK_D "fsync_interval=0ms\n",
                      "[sink:d] fsync_interval=0ms: 0ms is 0 ms, below the minimum of 1ms (1 ms)");
  assert_one_problem (fx, "[runtime]\nshutdown_timeout=11m\n",
                      "[runtime] shutdown_timeout=11m: 11m is 660000 ms, above the maximum of 10m (600000 ms)");
  /* the edges themselves are fine */
  assert_no_problem (fx, SINK_D "fsync_interval=1h\n");
}

static void
test_type_enum (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, SINK_D "fsync=alwayz\n",
                      "[sink:d] fsync=alwayz: \"alwayz\" is not allowed (did you mean \"always\"? allowed: always, "
                      "interval, never)");
  assert_one_problem (fx, SINK_D "fsync=sometimes\n",
                      "[sink:d] fsync=sometimes: \"sometimes\" is not allowed (allowed: always, interval, never)");
  assert_one_problem (fx, "[runtime]\nlog_format=jsn\n",
                      "[runtime] log_format=jsn: \"jsn\" is not allowed (did you mean \"json\"? allowed: text, json)");
}

static void
test_type_decimal (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, INGEST_E "speed=1.123456789\n",
                      "[ingest:e] speed=1.123456789: \"1.123456789\" has more than 8 decimal places");
  assert_one_problem (fx, INGEST_E "speed=100001\n",
                      "[ingest:e] speed=100001: 100001 is outside the allowed range 0 to 100000");
  assert_no_problem (fx, INGEST_E "speed=0.12345678\n");
}

static void
test_missing_required (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[sink:d]\nplugin=sink-jsonl\nfsync=never\n",
                      "[sink:d] missing required key \"path\": file to append to (created with its directories, "
                      "mode 0640); relative to the config file's directory");
}

static void
test_missing_plugin (Fixture *fx, gconstpointer data)
{
  /* the plugin's own keys cannot be judged without it: no noise about them */
  assert_one_problem (fx, "[sink:d]\npath=events.jsonl\nfsync=always\n",
                      "[sink:d] missing required key \"plugin\": the module, for example sink-jsonl");
  assert_one_problem (fx, "[ingest:e]\nplugin=\nfiles=a.jsonl\n",
                      "[ingest:e] missing required key \"plugin\": the module, for example ingest-replay");
  assert_one_problem (fx, "[ingest:e]\nplugin=   # later\n",
                      "[ingest:e] missing required key \"plugin\": the module, for example ingest-replay");
  /* the host's keys are still checked */
  {
    g_auto(GStrv) got = NULL;
    g_autofree char *want0 = expect (fx, "[sink:d] required=perhaps: \"perhaps\" is not a boolean (write true or "
                                         "false)");
    g_autofree char *want1 = expect (fx, "[sink:d] missing required key \"plugin\": the module, for example "
                                         "sink-jsonl");
    write_conf (fx, "[sink:d]\nrequired=perhaps\npath=x\n");
    got = check (fx, NULL);
    g_assert_cmpuint (g_strv_length (got), ==, 2);
    g_assert_cmpstr (got[0], ==, want0);
    g_assert_cmpstr (got[1], ==, want1);
  }
}

static void
test_plugin_wrong_kind (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[ingest:x]\nplugin=sink-jsonl\npath=x\n",
                      "[ingest:x] plugin=sink-jsonl is a sink plugin; put it in a [sink:NAME] group");
  assert_one_problem (fx, "[sink:x]\nplugin=ingest-replay\nfiles=a\n",
                      "[sink:x] plugin=ingest-replay is an ingest plugin; put it in a [ingest:NAME] group");
}

static void
test_unknown_plugin (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbHost) host = NULL;
  g_autofree char *want = NULL;
  g_autofree char *want2 = NULL;
  g_autofree char *line = NULL;
  ArbInstance *inst;

  write_conf (fx, "[ingest:x]\nplugin=ingest-replai\nfiles=a.jsonl\n\n[ingest:y]\nplugin=ingest-zzzzzzzzzzzz\n");
  host = arb_host_new (fx->path, problems, &error);
  /* a missing module disables its instance; the daemon still runs */
  g_assert_no_error (error);
  g_assert_nonnull (host);
  g_assert_cmpuint (problems->len, ==, 2);

  want = g_strdup_printf ("%s: [ingest:x] no plugin named \"ingest-replai\" (did you mean \"ingest-replay\"?) in %s",
                          fx->path, plugin_dir);
  line = arb_config_problem_to_string (g_ptr_array_index (problems, 0));
  g_assert_cmpstr (line, ==, want);
  g_clear_pointer (&line, g_free);
  want2 = g_strdup_printf ("%s: [ingest:y] no plugin named \"ingest-zzzzzzzzzzzz\" in %s", fx->path, plugin_dir);
  line = arb_config_problem_to_string (g_ptr_array_index (problems, 1));
  g_assert_cmpstr (line, ==, want2);

  inst = arb_host_find_instance (host, "ingest:x");
  g_assert_nonnull (inst);
  g_assert_cmpint (arb_instance_get_state (inst), ==, ARB_INSTANCE_FAILED);
  {
    g_autofree char *reason = arb_instance_dup_reason (inst);
    g_assert_true (g_str_has_prefix (reason, "no plugin named \"ingest-replai\" (did you mean \"ingest-replay\"?)"));
  }
}

static void
test_duplicate_key (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "# events\n" SINK_D "fsync=always\n\nfsync=never\n",
                      "[sink:d] line 7: key \"fsync\" is set a second time (keep one)");
}

static void
test_duplicate_group (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[runtime]\nlisten=127.0.0.1:0\n\n" SINK_D "\n[runtime]\nlog_level=debug\n",
                      "[runtime] line 8: the group appears a second time (merge the two)");
}

static void
test_syntax_error (Fixture *fx, gconstpointer data)
{
  assert_one_problem (fx, "[runtime]\nlisten=127.0.0.1:0\nlog_level debug\n",
                      "[runtime] line 3: \"log_level debug\" is not KEY=VALUE");
  assert_one_problem (fx, "[runtime]\nlisten=127.0.0.1:0\n[sink:x\n",
                      "line 3: \"[sink:x\" is not a group header (write [NAME])");
  assert_one_problem (fx, "# top\nlisten=127.0.0.1:0\n[runtime]\n",
                      "line 2: \"listen=127.0.0.1:0\" comes before any [group]");
  assert_one_problem (fx, "[runtime]\n=5\n", "[runtime] line 2: a value without a key");
}

/* no plugin built here declares a secret, so this one goes through the
 * checker directly with a schema of its own */
static const ArbConfigKey secret_schema[] = {
  { "endpoint", ARB_CFG_STRING, ARB_CFG_NONE, "https://example.invalid", 0, 0, NULL, "where to send" },
  { "token", ARB_CFG_SECRET, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "API token" },
  { NULL }
};

static GStrv
check_secret_group (const char *text, ArbConfigValues **out_values)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbConfig) config = arb_config_load_from_data (text, "/etc/arbiter/arbiter.conf", problems, &error);
  const ArbConfigKey *schemas[] = { arb_host_instance_schema (ARB_PLUGIN_SINK), secret_schema, NULL };
  g_autoptr(ArbConfigValues) values = NULL;
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  g_assert_no_error (error);
  g_assert_nonnull (config);
  values = arb_config_check_group (config, "sink:x", schemas, problems);
  for (guint i = 0; i < problems->len; i++)
    arb_strv_builder_take (b, arb_config_problem_to_string (g_ptr_array_index (problems, i)));
  if (out_values != NULL)
    *out_values = g_steal_pointer (&values);
  return g_strv_builder_end (b);
}

static void
test_secret_inline (void)
{
  g_auto(GStrv) got = NULL;
  g_autoptr(ArbConfigValues) values = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *secret = NULL;

  got = check_secret_group ("[sink:x]\nplugin=sink-x\ntoken=hunter2\n", NULL);
  g_assert_cmpuint (g_strv_length (got), ==, 2);
  g_assert_cmpstr (got[0], ==, "/etc/arbiter/arbiter.conf: [sink:x] token is a secret and is never written in the "
                               "file: use token_env=VARIABLE or token_file=PATH");
  g_assert_cmpstr (got[1], ==, "/etc/arbiter/arbiter.conf: [sink:x] missing required secret \"token\" (set "
                               "token_env=VARIABLE or token_file=PATH): API token");
  /* the secret itself is never repeated */
  g_assert_null (strstr (got[0], "hunter2"));
  g_clear_pointer (&got, g_strfreev);

  got = check_secret_group ("[sink:x]\nplugin=sink-x\ntoken_env=A\ntoken_file=/run/secret\n", NULL);
  g_assert_cmpuint (g_strv_length (got), ==, 1);
  g_assert_cmpstr (got[0], ==, "/etc/arbiter/arbiter.conf: [sink:x] both token_env and token_file are set (keep one)");
  g_clear_pointer (&got, g_strfreev);

  got = check_secret_group ("[sink:x]\nplugin=sink-x\ntokn_env=A\n", NULL);
  g_assert_cmpuint (g_strv_length (got), ==, 2);
  g_assert_cmpstr (got[0], ==, "/etc/arbiter/arbiter.conf: [sink:x] unknown key \"tokn_env\" (did you mean "
                               "\"token_env\"? allowed: plugin, required, events, queue_size, endpoint, token_env, "
                               "token_file)");
  g_clear_pointer (&got, g_strfreev);

  /* the right way round: resolved from the environment, never stored */
  got = check_secret_group ("[sink:x]\nplugin=sink-x\ntoken_env=ARB_TEST_CONFIG_TOKEN  # from the unit file\n",
                            &values);
  g_assert_cmpuint (g_strv_length (got), ==, 0);
  g_unsetenv ("ARB_TEST_CONFIG_TOKEN");
  secret = arb_config_values_get_secret (values, "token", &error);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  g_assert_cmpstr (error->message, ==, "[sink:x] token_env: the environment variable ARB_TEST_CONFIG_TOKEN is not set");
  g_assert_null (secret);
  g_clear_error (&error);
  g_setenv ("ARB_TEST_CONFIG_TOKEN", "s3cret", TRUE);
  secret = arb_config_values_get_secret (values, "token", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (secret, ==, "s3cret");
  g_unsetenv ("ARB_TEST_CONFIG_TOKEN");
}

static void
test_inline_comment (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = arb_config_problems_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbHost) host = NULL;
  g_autofree char *state = g_build_filename (fx->dir, "st#1", NULL);
  ArbInstance *inst;

  write_conf (fx, "[runtime]\n"
                  "listen=127.0.0.1:0   # pick a port\n"
                  "state_dir=st#1\t# a '#' not after a space is part of the value\n"
                  "log_level=debug # chatty\n\n"
                  SINK_D "fsync=always\t# every batch\n"
                  "fsync_interval=250ms # unused with always\n");
  host = arb_host_new (fx->path, problems, &error);
  g_assert_no_error (error);
  g_assert_nonnull (host);
  g_assert_cmpuint (problems->len, ==, 0);
  g_assert_cmpstr (arb_config_values_get_string (host->runtime, "listen"), ==, "127.0.0.1:0");
  g_assert_cmpstr (arb_config_values_get_string (host->runtime, "log_level"), ==, "debug");
  g_assert_cmpstr (host->state_dir, ==, state);
  inst = arb_host_find_instance (host, "sink:d");
  g_assert_nonnull (inst);
  g_assert_cmpstr (arb_config_values_get_string (inst->values, "fsync"), ==, "always");
  g_assert_cmpint (arb_config_values_get_duration_ms (inst->values, "fsync_interval"), ==, 250);
}

static void
test_all_at_once (Fixture *fx, gconstpointer data)
{
  /* five problems in four groups: every one of them, in file order */
  static const char *const want[] = {
    "[runtime] log_level=loud: \"loud\" is not allowed (allowed: debug, info, notice, warning)",
    "[sinks:audit] unknown group (did you mean [sink:audit]? known: " KNOWN_GROUPS ")",
    "[ingest:e] speed=fast: \"fast\" is not a decimal number: expected a digit at offset 0, found 'f'",
    "[sink:d] fsync_interval=10: \"10\" has no unit (write 250ms, 10s, 5m, 24h or 7d)",
    "[sink:d] missing required key \"path\": file to append to (created with its directories, mode 0640); "
    "relative to the config file's directory",
    NULL
  };
  gboolean fatal = FALSE;
  g_auto(GStrv) got = NULL;

  write_conf (fx, "[runtime]\n"
                  "listen=127.0.0.1:0\n"
                  "log_level=loud\n"
                  "\n"
                  "[sinks:audit]\n"
                  "plugin=sink-jsonl\n"
                  "\n"
                  "[ingest:e]\n"
                  "plugin=ingest-replay\n"
                  "files=session-10m.jsonl\n"
                  "speed=fast\n"
                  "\n"
                  "[sink:d]\n"
                  "plugin=sink-jsonl\n"
                  "fsync=interval\n"
                  "fsync_interval=10\n");
  got = check (fx, &fatal);
  {
    g_autofree char *all = g_strjoinv ("\n", got);
    g_test_message ("problems found:\n%s", all);
  }
  g_assert_true (fatal);
  g_assert_cmpuint (g_strv_length (got), ==, g_strv_length ((GStrv) want));
  for (guint i = 0; want[i] != NULL; i++)
    {
      g_autofree char *w = expect (fx, want[i]);
      g_assert_cmpstr (got[i], ==, w);
    }
}

/* ------------------------------------------------------------------------ */
/* Units                                                                    */

static void
test_parse_duration (void)
{
  static const struct { const char *text; gint64 ms; } good[] = {
    { "250ms", 250 }, { "10s", 10000 }, { "5m", 300000 }, { "24h", 86400000 }, { "7d", 604800000 },
    { "0ms", 0 }, { "0s", 0 }, { "1ms", 1 }, { "90s", 90000 }, { "007s", 7000 },
  };
  static const struct { const char *text; const char *message; } bad[] = {
    { "", "empty duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)" },
    { "10", "\"10\" has no unit (write 250ms, 10s, 5m, 24h or 7d)" },
    { "0", "\"0\" has no unit (write 250ms, 10s, 5m, 24h or 7d)" },
    { "ms", "\"ms\" is not a duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)" },
    { "-1s", "\"-1s\" is not a duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)" },
    { " 5s", "\" 5s\" is not a duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)" },
    { "1.5s", "\"1.5s\" has an unknown unit (use ms, s, m, h or d)" },
    { "10 s", "\"10 s\" has an unknown unit (use ms, s, m, h or d)" },
    { "10S", "\"10S\" has an unknown unit (use ms, s, m, h or d)" },
    { "3w", "\"3w\" has an unknown unit (use ms, s, m, h or d)" },
    { "1h30m", "\"1h30m\" has an unknown unit (use ms, s, m, h or d)" },
    { "99999999999999999999ms", "\"99999999999999999999ms\" is too long a duration" },
    { "9223372036854776d", "\"9223372036854776d\" is too long a duration" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      gint64 ms = -1;
      g_autoptr(GError) error = NULL;
      g_assert_true (arb_parse_duration_ms (good[i].text, &ms, &error));
      g_assert_no_error (error);
      g_assert_cmpint (ms, ==, good[i].ms);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gint64 ms = -1;
      g_autoptr(GError) error = NULL;
      g_test_message ("refusing \"%s\"", bad[i].text);
      g_assert_false (arb_parse_duration_ms (bad[i].text, &ms, &error));
      g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
      g_assert_cmpstr (error->message, ==, bad[i].message);
      g_assert_cmpint (ms, ==, -1);
    }
  /* NULL is an empty duration, not a crash */
  {
    gint64 ms = -1;
    g_autoptr(GError) error = NULL;
    g_assert_false (arb_parse_duration_ms (NULL, &ms, &error));
    g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  }
  /* and the way back, used in range messages */
  {
    static const struct { gint64 ms; const char *text; } fmt[] = {
      { 0, "0ms" }, { 1, "1ms" }, { 1500, "1500ms" }, { 90000, "90s" }, { 60000, "1m" }, { 3600000, "1h" },
      { 86400000, "1d" }, { 604800000, "7d" },
    };
    for (guint i = 0; i < G_N_ELEMENTS (fmt); i++)
      {
        g_autofree char *text = arb_format_duration_ms (fmt[i].ms);
        g_assert_cmpstr (text, ==, fmt[i].text);
      }
  }
}

static void
test_parse_listen (void)
{
  static const struct { const char *text; const char *host; guint16 port; } good[] = {
    { "127.0.0.1:8080", "127.0.0.1", 8080 },
    { "127.0.0.1:0", "127.0.0.1", 0 },
    { "0.0.0.0:65535", "0.0.0.0", 65535 },
    { ":8080", "0.0.0.0", 8080 },
    { "[::1]:0", "::1", 0 },
    { "[::]:9000", "::", 9000 },
    { "localhost:1", "localhost", 1 },
  };
  static const struct { const char *text; const char *message; } bad[] = {
    { "", "empty address" },
    { "8080", "\"8080\" is not HOST:PORT (for example 127.0.0.1:8080)" },
    { "localhost", "\"localhost\" is not HOST:PORT (for example 127.0.0.1:8080)" },
    { "127.0.0.1:", "\"127.0.0.1:\" has no valid port (0 to 65535; 0 picks a free one)" },
    { "127.0.0.1:65536", "\"127.0.0.1:65536\" has no valid port (0 to 65535; 0 picks a free one)" },
    { "127.0.0.1:80x", "\"127.0.0.1:80x\" has no valid port (0 to 65535; 0 picks a free one)" },
    { "127.0.0.1:99999999999999999999999", "\"127.0.0.1:99999999999999999999999\" has no valid port (0 to 65535; 0 "
                                           "picks a free one)" },
    { "[::1]8080", "\"[::1]8080\" is not HOST:PORT ([::1]:8080 for IPv6)" },
    { "[::1", "\"[::1\" is not HOST:PORT ([::1]:8080 for IPv6)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *host = NULL;
      guint16 port = 1234;
      g_autoptr(GError) error = NULL;
      g_assert_true (arb_parse_listen (good[i].text, &host, &port, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (host, ==, good[i].host);
      g_assert_cmpuint (port, ==, good[i].port);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *host = NULL;
      guint16 port = 1234;
      g_autoptr(GError) error = NULL;
      g_test_message ("refusing \"%s\"", bad[i].text);
      g_assert_false (arb_parse_listen (bad[i].text, &host, &port, &error));
      g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
      g_assert_cmpstr (error->message, ==, bad[i].message);
      g_assert_null (host);
      g_assert_cmpuint (port, ==, 1234);
    }
}

/* ------------------------------------------------------------------------ */
/* arbiterd --check-config                                                  */

static int
run_check_config (const char *path, char **out_stdout, char **out_stderr)
{
  g_autofree char *arbiterd = g_build_filename (g_getenv ("ARB_BUILD_ROOT"), "runtime", "arbiterd", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, arbiterd,
                           "--check-config", "--config", path, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out_stdout, out_stderr, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

static void
test_check_config_cli (Fixture *fx, gconstpointer data)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *want = NULL;
  g_autofree char *summary = NULL;
  g_autofree char *ok = NULL;
  g_autofree char *shipped = g_build_filename (g_getenv ("ARB_SOURCE_ROOT"), "data", "arbiter.conf", NULL);
  int status;

  write_conf (fx, "[runtime]\nlisten=127.0.0.1:0\n\n" SINK_D "fsync_intervall=2s\n");
  status = run_check_config (fx->path, &out, &err);
  g_test_message ("stderr:\n%s", err);
  g_assert_cmpint (status, !=, 0);
  want = g_strdup_printf ("%s: [sink:d] unknown key \"fsync_intervall\" (did you mean \"fsync_interval\"? allowed: "
                          SINK_KEYS ")\n%s: 1 problem found\n",
                          fx->path, fx->path);
  g_assert_cmpstr (err, ==, want);
  g_assert_cmpstr (out, ==, "");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a clean file */
  write_conf (fx, "[runtime]\nlisten=127.0.0.1:0  # any port\n\n" INGEST_E "\n" SINK_D "fsync=always\n");
  status = run_check_config (fx->path, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (err, ==, "");
  ok = g_strdup_printf ("%s: OK (2 instances)\n", fx->path);
  g_assert_cmpstr (out, ==, ok);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* the config the project ships is clean, too */
  status = run_check_config (shipped, &out, &err);
  g_test_message ("%s: %s%s", shipped, out, err);
  g_assert_cmpint (status, ==, 0);
  summary = g_strdup_printf ("%s: OK (2 instances)\n", shipped);
  g_assert_cmpstr (out, ==, summary);
}

/* version 7, RFC 9562 variant, lower-case, different every time, its
 * first 48 bits the time in Unix milliseconds, and later ids sort later */
static void
test_uuid (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint variants[4] = { 0 };
  g_autofree char *prev = NULL;

  for (guint i = 0; i < 4000; i++)
    {
      gint64 before_ms = g_get_real_time () / 1000, after_ms;
      char *id = arb_uuid_new ();
      const char *v;
      char hexms[13];

      after_ms = g_get_real_time () / 1000;
      g_assert_true (g_uuid_string_is_valid (id));
      g_assert_cmpuint (strlen (id), ==, 36);
      g_assert_cmpint (id[14], ==, '7');
      memcpy (hexms, id, 8);
      memcpy (hexms + 8, id + 9, 4);
      hexms[12] = '\0';
      g_assert_cmpint ((gint64) g_ascii_strtoull (hexms, NULL, 16), >=, before_ms);
      g_assert_cmpint ((gint64) g_ascii_strtoull (hexms, NULL, 16), <=, after_ms);
      /* the first 18 characters (the milliseconds, the version digit and
       * the sub-millisecond fraction) never go back */
      if (prev != NULL)
        g_assert_cmpint (strncmp (prev, id, 18), <=, 0);
      if (i % 1000 == 999)
        {
          /* two milliseconds on, the id is greater in full */
          g_usleep (2000);
          g_free (prev);
          prev = g_strdup (id);
          g_assert_true (g_hash_table_add (seen, id));
          id = arb_uuid_new ();
          g_assert_cmpint (strcmp (prev, id), <, 0);
          g_assert_cmpint (id[14], ==, '7');
        }
      g_free (prev);
      prev = g_strdup (id);
      v = strchr ("89ab", id[19]);
      g_assert_nonnull (v);
      variants[v - "89ab"]++;
      for (const char *c = id; *c != '\0'; c++)
        g_assert_true (*c == '-' || g_ascii_isdigit (*c) || (*c >= 'a' && *c <= 'f'));
      g_assert_true (g_hash_table_add (seen, id));
    }
  /* the two random bits of the variant nibble are random */
  for (guint i = 0; i < 4; i++)
    g_assert_cmpuint (variants[i], >, 700);
}

int
main (int argc, char **argv)
{
  const char *build_root;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  arb_test_drop_library_debug ();

  /* the two plugins of the build tree, nothing installed */
  build_root = g_getenv ("ARB_BUILD_ROOT");
  g_assert_nonnull (build_root);
  g_assert_nonnull (g_getenv ("ARB_SOURCE_ROOT"));
  plugin_dir = g_build_filename (build_root, "plugins", NULL);
  g_setenv ("ARBITER_PLUGIN_PATH", plugin_dir, TRUE);
  g_setenv ("ARB_PLUGIN_SYSTEM_PATH", "", TRUE);
  /* keep the host's log lines out of the TAP stream's way */
  arb_log_setup (ARB_LOG_TEXT, G_LOG_LEVEL_WARNING);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_up, fn, fixture_down)
  ADD ("/config/clean", test_clean);
  ADD ("/config/unknown-key/suggestion", test_unknown_key_suggestion);
  ADD ("/config/unknown-key/no-suggestion", test_unknown_key_no_suggestion);
  ADD ("/config/unknown-group/suggestion", test_unknown_group_suggestion);
  ADD ("/config/unknown-group/no-suggestion", test_unknown_group_no_suggestion);
  ADD ("/config/bad-instance-name", test_bad_instance_name);
  ADD ("/config/type/int", test_type_int);
  ADD ("/config/type/bool", test_type_bool);
  ADD ("/config/type/duration-unit", test_type_duration_unit);
  ADD ("/config/type/duration-range", test_type_duration_range);
  ADD ("/config/type/enum", test_type_enum);
  ADD ("/config/type/decimal", test_type_decimal);
  ADD ("/config/missing-required", test_missing_required);
  ADD ("/config/missing-plugin", test_missing_plugin);
  ADD ("/config/plugin/wrong-kind", test_plugin_wrong_kind);
  ADD ("/config/plugin/unknown", test_unknown_plugin);
  ADD ("/config/duplicate-key", test_duplicate_key);
  ADD ("/config/duplicate-group", test_duplicate_group);
  ADD ("/config/syntax-error", test_syntax_error);
  ADD ("/config/inline-comment", test_inline_comment);
  ADD ("/config/all-at-once", test_all_at_once);
  ADD ("/config/check-config-cli", test_check_config_cli);
#undef ADD
  g_test_add_func ("/config/secret-inline", test_secret_inline);
  g_test_add_func ("/util/parse-duration", test_parse_duration);
  g_test_add_func ("/util/uuid", test_uuid);
  g_test_add_func ("/util/parse-listen", test_parse_listen);

  return g_test_run ();
}
