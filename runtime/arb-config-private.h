/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include <arbiter/arb-config.h>
#include <arbiter/arb-decimal.h>

G_BEGIN_DECLS

/* One problem found in a config file: everything is collected and printed at
 * once, so an operator fixes the whole file in one go. */
typedef struct {
  char *file;  /* owned */
  char *group; /* owned, nullable */
  char *key;   /* owned, nullable */
  char *message; /* owned: what is wrong and what to do */
} ArbConfigProblem;

void  arb_config_problem_free (ArbConfigProblem *problem);
/* "arbiter.conf: [sink:x] unknown key "brokerz" (did you mean ...)" */
char *arb_config_problem_to_string (const ArbConfigProblem *problem);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbConfigProblem, arb_config_problem_free)

/* A collector of problems; a GPtrArray of ArbConfigProblem */
GPtrArray *arb_config_problems_new (void);
void       arb_config_problems_add (GPtrArray *problems, const char *file, const char *group,
                                    const char *key, const char *format, ...) G_GNUC_PRINTF (5, 6);
/* all of them, one a line, for an error message */
char      *arb_config_problems_join (GPtrArray *problems);

typedef struct _ArbConfig ArbConfig;

/* Reads and parses the key file. Syntax errors, duplicate groups and
 * duplicate keys go into @problems; only an unreadable file is an error. */
ArbConfig  *arb_config_load (const char *path, GPtrArray *problems, GError **error);
ArbConfig  *arb_config_load_from_data (const char *data, const char *path, GPtrArray *problems, GError **error);
void        arb_config_free (ArbConfig *config);
const char *arb_config_get_path (ArbConfig *config);
/* the directory relative paths are taken from */
const char *arb_config_get_dir (ArbConfig *config);
/* (transfer full) the groups in file order */
char      **arb_config_get_groups (ArbConfig *config);
gboolean    arb_config_has_group (ArbConfig *config, const char *group);
/* (transfer full) (nullable) the raw value with any trailing "  # comment" removed */
char       *arb_config_get_raw (ArbConfig *config, const char *group, const char *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbConfig, arb_config_free)

/* The checked, typed values of one group */
typedef struct _ArbConfigValues ArbConfigValues;

/* Checks @group against the schema tables in @schemas (NULL-terminated; the
 * host's keys for that kind of group first, then the plugin's), adds every
 * problem to @problems and returns the values (also when there were problems,
 * with the bad keys left unset). */
ArbConfigValues *arb_config_check_group (ArbConfig *config, const char *group,
                                         const ArbConfigKey *const *schemas, GPtrArray *problems);
void             arb_config_values_free (ArbConfigValues *values);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbConfigValues, arb_config_values_free)

/* lookups; a key missing from the schema is a programming error (g_critical) */
const ArbConfigKey *arb_config_values_lookup_key (ArbConfigValues *values, const char *key);
gboolean     arb_config_values_is_set (ArbConfigValues *values, const char *key);
const char  *arb_config_values_get_string (ArbConfigValues *values, const char *key);
gint64       arb_config_values_get_int (ArbConfigValues *values, const char *key);
gboolean     arb_config_values_get_boolean (ArbConfigValues *values, const char *key);
gint64       arb_config_values_get_duration_ms (ArbConfigValues *values, const char *key);
const char *const *arb_config_values_get_strv (ArbConfigValues *values, const char *key);
ArbDecimal   arb_config_values_get_decimal (ArbConfigValues *values, const char *key);
/* resolves KEY_env / KEY_file; NULL without error when unset and optional */
char        *arb_config_values_get_secret (ArbConfigValues *values, const char *key, GError **error);

/* checks one value text against one schema entry; used for fallbacks too */
gboolean arb_config_key_check_text (const ArbConfigKey *spec, const char *text, GError **error);
const char *arb_config_type_to_string (guint32 type);

/* "json" or "markdown" description of a schema table, for --describe-plugin */
char *arb_config_describe_markdown (const ArbConfigKey *keys);
void  arb_config_describe_json (const ArbConfigKey *keys, gpointer json_builder);

G_END_DECLS
