/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "arb-config-private.h"
#include "arb-util-private.h"

struct _ArbConfig {
  char     *path;
  char     *dir;
  GKeyFile *kf;
};

typedef struct {
  const ArbConfigKey *spec;
  gboolean            set;
  char               *text;   /* as written (or the fallback), comment removed */
  char               *str;    /* STRING, ENUM, PATH (absolute) */
  gint64              num;    /* INT, DURATION (ms) */
  gboolean            boolean;
  char              **strv;
  ArbDecimal          dec;
  char               *secret_env;  /* SECRET: variable name */
  char               *secret_file; /* SECRET: absolute path */
} ArbConfigValue;

struct _ArbConfigValues {
  char       *file;
  char       *group;
  GHashTable *values; /* key name → ArbConfigValue */
};

/* ------------------------------------------------------------------------ */

void
arb_config_problem_free (ArbConfigProblem *problem)
{
  if (problem == NULL)
    return;
  g_free (problem->file);
  g_free (problem->group);
  g_free (problem->key);
  g_free (problem->message);
  g_free (problem);
}

char *
arb_config_problem_to_string (const ArbConfigProblem *problem)
{
  if (problem->group != NULL)
    return g_strdup_printf ("%s: [%s] %s", problem->file, problem->group, problem->message);
  return g_strdup_printf ("%s: %s", problem->file, problem->message);
}

GPtrArray *
arb_config_problems_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) arb_config_problem_free);
}

void
arb_config_problems_add (GPtrArray *problems, const char *file, const char *group, const char *key,
                         const char *format, ...)
{
  ArbConfigProblem *p = g_new0 (ArbConfigProblem, 1);
  va_list args;

  p->file = g_strdup (file);
  p->group = g_strdup (group);
  p->key = g_strdup (key);
  va_start (args, format);
  p->message = g_strdup_vprintf (format, args);
  va_end (args);
  g_ptr_array_add (problems, p);
}

char *
arb_config_problems_join (GPtrArray *problems)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < problems->len; i++)
    {
      g_autofree char *line = arb_config_problem_to_string (g_ptr_array_index (problems, i));
      if (i > 0)
        g_string_append_c (s, '\n');
      g_string_append (s, line);
    }
  return g_string_free (s, FALSE);
}

const char *
arb_config_type_to_string (guint32 type)
{
  switch (type)
    {
    case ARB_CFG_STRING: return "string";
    case ARB_CFG_INT: return "integer";
    case ARB_CFG_BOOL: return "boolean";
    case ARB_CFG_DURATION: return "duration";
    case ARB_CFG_STRV: return "list";
    case ARB_CFG_DECIMAL: return "decimal";
    case ARB_CFG_ENUM: return "enum";
    case ARB_CFG_SECRET: return "secret";
    case ARB_CFG_PATH: return "path";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */

/* GKeyFile merges duplicate groups and keeps the last of duplicate keys
 * silently; an operator who wrote a key twice meant one of them, so say so.
 * It also gives no line numbers, so the syntax is checked here first. */
static void
prescan (const char *data, const char *path, GPtrArray *problems)
{
  g_auto(GStrv) lines = g_strsplit (data, "\n", -1);
  g_autoptr(GHashTable) groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) keys = NULL;
  g_autofree char *group = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *line = g_strstrip (g_strdup (lines[i]));
      guint lineno = i + 1;

      if (*line == '\0' || *line == '#' || *line == ';')
        continue;
      if (*line == '[')
        {
          char *close = strchr (line, ']');
          if (close == NULL || close[1] != '\0' || close == line + 1)
            {
              arb_config_problems_add (problems, path, NULL, NULL,
                                       "line %u: \"%s\" is not a group header (write [NAME])", lineno, line);
              continue;
            }
          g_free (group);
          group = g_strndup (line + 1, (gsize) (close - line - 1));
          if (g_hash_table_contains (groups, group))
            arb_config_problems_add (problems, path, group, NULL,
                                     "line %u: the group appears a second time (merge the two)", lineno);
          g_hash_table_add (groups, g_strdup (group));
          g_clear_pointer (&keys, g_hash_table_unref);
          keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
          continue;
        }
      {
        char *eq = strchr (line, '=');
        g_autofree char *key = NULL;
        if (eq == NULL)
          {
            arb_config_problems_add (problems, path, group, NULL,
                                     "line %u: \"%s\" is not KEY=VALUE", lineno, line);
            continue;
          }
        if (group == NULL)
          {
            arb_config_problems_add (problems, path, NULL, NULL,
                                     "line %u: \"%s\" comes before any [group]", lineno, line);
            continue;
          }
        key = g_strstrip (g_strndup (line, (gsize) (eq - line)));
        if (*key == '\0')
          {
            arb_config_problems_add (problems, path, group, NULL, "line %u: a value without a key", lineno);
            continue;
          }
        if (g_hash_table_contains (keys, key))
          arb_config_problems_add (problems, path, group, key,
                                   "line %u: key \"%s\" is set a second time (keep one)", lineno, key);
        else
          g_hash_table_add (keys, g_steal_pointer (&key));
      }
    }
}

ArbConfig *
arb_config_load_from_data (const char *data, const char *path, GPtrArray *problems, GError **error)
{
  g_autoptr(ArbConfig) config = g_new0 (ArbConfig, 1);
  g_autoptr(GError) local = NULL;
  guint before = problems->len;
  g_autofree char *abs = NULL;

  abs = g_path_is_absolute (path) ? g_strdup (path) : g_canonicalize_filename (path, NULL);
  config->path = g_strdup (path);
  config->dir = g_path_get_dirname (abs);
  config->kf = g_key_file_new ();
  g_key_file_set_list_separator (config->kf, ',');

  prescan (data, path, problems);
  if (!g_key_file_load_from_data (config->kf, data, (gsize) -1, G_KEY_FILE_NONE, &local))
    {
      /* the prescan says it better, with a line number */
      if (problems->len == before)
        arb_config_problems_add (problems, path, NULL, NULL, "%s", local->message);
      g_key_file_free (config->kf);
      config->kf = g_key_file_new ();
    }
  return g_steal_pointer (&config);
}

ArbConfig *
arb_config_load (const char *path, GPtrArray *problems, GError **error)
{
  g_autofree char *data = NULL;
  g_autoptr(GError) local = NULL;

  if (!g_file_get_contents (path, &data, NULL, &local))
    {
      g_set_error (error, G_FILE_ERROR, local->code, "cannot read config file: %s", local->message);
      return NULL;
    }
  if (!g_utf8_validate (data, -1, NULL))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not UTF-8 text", path);
      return NULL;
    }
  return arb_config_load_from_data (data, path, problems, error);
}

void
arb_config_free (ArbConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_free (config->dir);
  if (config->kf != NULL)
    g_key_file_free (config->kf);
  g_free (config);
}

const char *
arb_config_get_path (ArbConfig *config)
{
  return config->path;
}

const char *
arb_config_get_dir (ArbConfig *config)
{
  return config->dir;
}

char **
arb_config_get_groups (ArbConfig *config)
{
  return g_key_file_get_groups (config->kf, NULL);
}

gboolean
arb_config_has_group (ArbConfig *config, const char *group)
{
  return g_key_file_has_group (config->kf, group);
}

/* values may carry a trailing comment after white space: `listen=:8080  # x` */
static char *
strip_inline_comment (char *value)
{
  for (char *p = value; *p != '\0'; p++)
    {
      if ((*p == '#') && (p == value || g_ascii_isspace (p[-1])))
        {
          *p = '\0';
          break;
        }
    }
  return g_strstrip (value);
}

char *
arb_config_get_raw (ArbConfig *config, const char *group, const char *key)
{
  char *v = g_key_file_get_value (config->kf, group, key, NULL);
  if (v == NULL)
    return NULL;
  return strip_inline_comment (v);
}

/* ------------------------------------------------------------------------ */
/* Checking values                                                          */

static gboolean
parse_bool (const char *text, gboolean *out)
{
  if (g_ascii_strcasecmp (text, "true") == 0 || g_str_equal (text, "1") || g_ascii_strcasecmp (text, "yes") == 0)
    {
      *out = TRUE;
      return TRUE;
    }
  if (g_ascii_strcasecmp (text, "false") == 0 || g_str_equal (text, "0") || g_ascii_strcasecmp (text, "no") == 0)
    {
      *out = FALSE;
      return TRUE;
    }
  return FALSE;
}

static char **
split_list (const char *text)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      if (*item != '\0')
        g_strv_builder_add (b, item);
    }
  return g_strv_builder_end (b);
}

static gboolean
range_is_set (const ArbConfigKey *spec)
{
  return spec->min != 0 || spec->max != 0;
}

/* fills @value from @text; on error @value is left unset */
static gboolean
value_parse (const ArbConfigKey *spec, const char *text, const char *dir, ArbConfigValue *value, GError **error)
{
  switch (spec->type)
    {
    case ARB_CFG_STRING:
      value->str = g_strdup (text);
      break;
    case ARB_CFG_INT:
      {
        gint64 n;
        g_autoptr(GError) local = NULL;
        if (!g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &n, &local))
          {
            g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "\"%s\" is not a whole number", text);
            return FALSE;
          }
        if (range_is_set (spec) && (n < spec->min || n > spec->max))
          {
            g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                         "%" G_GINT64_FORMAT " is outside the allowed range %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                         n, spec->min, spec->max);
            return FALSE;
          }
        value->num = n;
        break;
      }
    case ARB_CFG_BOOL:
      if (!parse_bool (text, &value->boolean))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "\"%s\" is not a boolean (write true or false)", text);
          return FALSE;
        }
      break;
    case ARB_CFG_DURATION:
      {
        gint64 ms;
        if (!arb_parse_duration_ms (text, &ms, error))
          return FALSE;
        if (range_is_set (spec) && (ms < spec->min || ms > spec->max))
          {
            g_autofree char *lo = arb_format_duration_ms (spec->min);
            g_autofree char *hi = arb_format_duration_ms (spec->max);
            g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                         "%s is %" G_GINT64_FORMAT " ms, %s the %s of %s (%" G_GINT64_FORMAT " ms)", text, ms,
                         ms < spec->min ? "below" : "above", ms < spec->min ? "minimum" : "maximum",
                         ms < spec->min ? lo : hi, ms < spec->min ? spec->min : spec->max);
            return FALSE;
          }
        value->num = ms;
        break;
      }
    case ARB_CFG_STRV:
      value->strv = split_list (text);
      break;
    case ARB_CFG_DECIMAL:
      {
        ArbDecimal d;
        g_autoptr(GError) local = NULL;
        if (!arb_decimal_parse (text, ARB_ROUND_EXACT, &d, &local))
          {
            g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s", local->message);
            return FALSE;
          }
        if (range_is_set (spec))
          {
            ArbDecimal lo, hi;
            if (arb_decimal_from_int (spec->min, &lo, NULL) && arb_decimal_from_int (spec->max, &hi, NULL)
                && (arb_decimal_cmp (d, lo) < 0 || arb_decimal_cmp (d, hi) > 0))
              {
                g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                             "%s is outside the allowed range %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, text,
                             spec->min, spec->max);
                return FALSE;
              }
          }
        value->dec = d;
        break;
      }
    case ARB_CFG_ENUM:
      {
        g_auto(GStrv) choices = split_list (spec->choices != NULL ? spec->choices : "");
        if (!g_strv_contains ((const char *const *) choices, text))
          {
            g_autofree char *allowed = g_strjoinv (", ", choices);
            const char *near = arb_closest_word (text, (const char *const *) choices);
            if (near != NULL)
              g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                           "\"%s\" is not allowed (did you mean \"%s\"? allowed: %s)", text, near, allowed);
            else
              g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                           "\"%s\" is not allowed (allowed: %s)", text, allowed);
            return FALSE;
          }
        value->str = g_strdup (text);
        break;
      }
    case ARB_CFG_PATH:
      if (*text == '\0')
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "empty path");
          return FALSE;
        }
      value->str = g_canonicalize_filename (text, dir);
      break;
    case ARB_CFG_SECRET:
      /* handled by the caller: the value never stands in the file */
      break;
    default:
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "unknown key type %u", spec->type);
      return FALSE;
    }
  value->set = TRUE;
  g_free (value->text);
  value->text = g_strdup (text);
  return TRUE;
}

gboolean
arb_config_key_check_text (const ArbConfigKey *spec, const char *text, GError **error)
{
  ArbConfigValue v = { .spec = spec };
  gboolean ok = value_parse (spec, text, "/", &v, error);
  g_free (v.text);
  g_free (v.str);
  g_strfreev (v.strv);
  return ok;
}

static void
value_free (gpointer data)
{
  ArbConfigValue *v = data;
  g_free (v->text);
  g_free (v->str);
  g_strfreev (v->strv);
  g_free (v->secret_env);
  g_free (v->secret_file);
  g_free (v);
}

static const ArbConfigKey *
find_spec (const ArbConfigKey *const *schemas, const char *key)
{
  for (guint s = 0; schemas[s] != NULL; s++)
    for (const ArbConfigKey *k = schemas[s]; k->name != NULL; k++)
      if (g_str_equal (k->name, key))
        return k;
  return NULL;
}

/* every name a group may carry, secrets spelt out as NAME_env and NAME_file */
static GStrv
allowed_names (const ArbConfigKey *const *schemas)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  for (guint s = 0; schemas[s] != NULL; s++)
    for (const ArbConfigKey *k = schemas[s]; k->name != NULL; k++)
      {
        if (k->type == ARB_CFG_SECRET)
          {
            arb_strv_builder_take (b, g_strdup_printf ("%s_env", k->name));
            arb_strv_builder_take (b, g_strdup_printf ("%s_file", k->name));
          }
        else
          g_strv_builder_add (b, k->name);
      }
  return g_strv_builder_end (b);
}

ArbConfigValues *
arb_config_check_group (ArbConfig *config, const char *group, const ArbConfigKey *const *schemas,
                        GPtrArray *problems)
{
  g_autoptr(ArbConfigValues) values = g_new0 (ArbConfigValues, 1);
  g_auto(GStrv) keys = NULL;
  g_auto(GStrv) allowed = allowed_names (schemas);

  values->file = g_strdup (config->path);
  values->group = g_strdup (group);
  values->values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, value_free);

  /* every key of the schema gets an entry, set from its fallback if any */
  for (guint s = 0; schemas[s] != NULL; s++)
    for (const ArbConfigKey *k = schemas[s]; k->name != NULL; k++)
      {
        ArbConfigValue *v = g_new0 (ArbConfigValue, 1);
        v->spec = k;
        if (k->fallback != NULL && k->type != ARB_CFG_SECRET)
          {
            g_autoptr(GError) local = NULL;
            if (!value_parse (k, k->fallback, config->dir, v, &local))
              arb_config_problems_add (problems, config->path, group, k->name,
                                       "the default of \"%s\" is broken (a plugin bug): %s", k->name, local->message);
          }
        g_hash_table_replace (values->values, (gpointer) k->name, v);
      }

  if (g_key_file_has_group (config->kf, group))
    keys = g_key_file_get_keys (config->kf, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      const char *key = keys[i];
      const ArbConfigKey *spec = find_spec (schemas, key);
      g_autofree char *text = arb_config_get_raw (config, group, key);
      g_autoptr(GError) local = NULL;
      ArbConfigValue *v;

      if (spec == NULL)
        {
          /* NAME_env / NAME_file of a secret */
          g_autofree char *base = NULL;
          gboolean is_env = g_str_has_suffix (key, "_env");
          if (is_env || g_str_has_suffix (key, "_file"))
            {
              base = g_strndup (key, strlen (key) - (is_env ? 4 : 5));
              spec = find_spec (schemas, base);
            }
          if (spec != NULL && spec->type == ARB_CFG_SECRET)
            {
              v = g_hash_table_lookup (values->values, spec->name);
              if (*text == '\0')
                {
                  arb_config_problems_add (problems, config->path, group, key, "%s is empty", key);
                  continue;
                }
              if (is_env)
                v->secret_env = g_strdup (text);
              else
                v->secret_file = g_canonicalize_filename (text, config->dir);
              if (v->secret_env != NULL && v->secret_file != NULL)
                arb_config_problems_add (problems, config->path, group, key,
                                         "both %s_env and %s_file are set (keep one)", spec->name, spec->name);
              v->set = TRUE;
              continue;
            }
          {
            const char *near = arb_closest_word (key, (const char *const *) allowed);
            g_autofree char *list = g_strjoinv (", ", allowed);
            if (near != NULL)
              arb_config_problems_add (problems, config->path, group, key,
                                       "unknown key \"%s\" (did you mean \"%s\"? allowed: %s)", key, near, list);
            else
              arb_config_problems_add (problems, config->path, group, key, "unknown key \"%s\" (allowed: %s)",
                                       key, list);
          }
          continue;
        }

      v = g_hash_table_lookup (values->values, spec->name);
      if (spec->type == ARB_CFG_SECRET)
        {
          arb_config_problems_add (problems, config->path, group, key,
                                   "%s is a secret and is never written in the file: use %s_env=VARIABLE or "
                                   "%s_file=PATH",
                                   key, key, key);
          continue;
        }
      /* reset to unset, then parse what the file says */
      g_clear_pointer (&v->str, g_free);
      g_clear_pointer (&v->strv, g_strfreev);
      v->set = FALSE;
      if (!value_parse (spec, text, config->dir, v, &local))
        arb_config_problems_add (problems, config->path, group, key, "%s=%s: %s", key, text, local->message);
    }

  /* required keys */
  for (guint s = 0; schemas[s] != NULL; s++)
    for (const ArbConfigKey *k = schemas[s]; k->name != NULL; k++)
      {
        ArbConfigValue *v = g_hash_table_lookup (values->values, k->name);
        gboolean present = v->set;
        if (k->type != ARB_CFG_SECRET)
          present = keys != NULL && g_strv_contains ((const char *const *) keys, k->name);
        if ((k->flags & ARB_CFG_REQUIRED) && !present && !(k->fallback != NULL && v->set))
          {
            if (k->type == ARB_CFG_SECRET)
              arb_config_problems_add (problems, config->path, group, k->name,
                                       "missing required secret \"%s\" (set %s_env=VARIABLE or %s_file=PATH): %s",
                                       k->name, k->name, k->name, k->help != NULL ? k->help : "");
            else
              arb_config_problems_add (problems, config->path, group, k->name, "missing required key \"%s\": %s",
                                       k->name, k->help != NULL ? k->help : "");
          }
      }
  return g_steal_pointer (&values);
}

void
arb_config_values_free (ArbConfigValues *values)
{
  if (values == NULL)
    return;
  g_free (values->file);
  g_free (values->group);
  if (values->values != NULL)
    g_hash_table_unref (values->values);
  g_free (values);
}

static ArbConfigValue *
lookup (ArbConfigValues *values, const char *key, guint32 type)
{
  ArbConfigValue *v = g_hash_table_lookup (values->values, key);
  if (v == NULL)
    {
      g_critical ("[%s] asked for key \"%s\", which its schema does not declare", values->group, key);
      return NULL;
    }
  if (type != 0 && v->spec->type != type
      && !(type == ARB_CFG_STRING && (v->spec->type == ARB_CFG_ENUM || v->spec->type == ARB_CFG_PATH)))
    {
      g_critical ("[%s] asked for key \"%s\" as %s, but it is declared as %s", values->group, key,
                  arb_config_type_to_string (type), arb_config_type_to_string (v->spec->type));
      return NULL;
    }
  return v;
}

const ArbConfigKey *
arb_config_values_lookup_key (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = g_hash_table_lookup (values->values, key);
  return v != NULL ? v->spec : NULL;
}

gboolean
arb_config_values_is_set (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, 0);
  return v != NULL && v->set;
}

const char *
arb_config_values_get_string (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_STRING);
  return v != NULL && v->set ? v->str : NULL;
}

gint64
arb_config_values_get_int (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_INT);
  return v != NULL && v->set ? v->num : 0;
}

gboolean
arb_config_values_get_boolean (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_BOOL);
  return v != NULL && v->set ? v->boolean : FALSE;
}

gint64
arb_config_values_get_duration_ms (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_DURATION);
  return v != NULL && v->set ? v->num : 0;
}

const char *const *
arb_config_values_get_strv (ArbConfigValues *values, const char *key)
{
  static const char *const empty[] = { NULL };
  ArbConfigValue *v = lookup (values, key, ARB_CFG_STRV);
  return v != NULL && v->set ? (const char *const *) v->strv : empty;
}

ArbDecimal
arb_config_values_get_decimal (ArbConfigValues *values, const char *key)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_DECIMAL);
  return v != NULL && v->set ? v->dec : ARB_DECIMAL_ZERO;
}

char *
arb_config_values_get_secret (ArbConfigValues *values, const char *key, GError **error)
{
  ArbConfigValue *v = lookup (values, key, ARB_CFG_SECRET);
  g_autofree char *contents = NULL;
  g_autoptr(GError) local = NULL;

  if (v == NULL)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND, "no secret \"%s\" in the schema", key);
      return NULL;
    }
  if (v->secret_env != NULL)
    {
      const char *val = g_getenv (v->secret_env);
      if (val == NULL || *val == '\0')
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "[%s] %s_env: the environment variable %s is not set", values->group, key, v->secret_env);
          return NULL;
        }
      return g_strdup (val);
    }
  if (v->secret_file != NULL)
    {
      gsize len = 0;
      if (!g_file_get_contents (v->secret_file, &contents, &len, &local))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s] %s_file: %s", values->group,
                       key, local->message);
          return NULL;
        }
      /* a trailing newline from `echo secret > file` is not part of it */
      while (len > 0 && (contents[len - 1] == '\n' || contents[len - 1] == '\r'))
        contents[--len] = '\0';
      if (len == 0)
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s] %s_file: %s is empty",
                       values->group, key, v->secret_file);
          return NULL;
        }
      return g_steal_pointer (&contents);
    }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Describing a schema                                                      */

static char *
range_text (const ArbConfigKey *k)
{
  if (!range_is_set (k))
    return g_strdup ("");
  if (k->type == ARB_CFG_DURATION)
    {
      g_autofree char *lo = arb_format_duration_ms (k->min);
      g_autofree char *hi = arb_format_duration_ms (k->max);
      return g_strdup_printf ("%s to %s", lo, hi);
    }
  return g_strdup_printf ("%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, k->min, k->max);
}

char *
arb_config_describe_markdown (const ArbConfigKey *keys)
{
  GString *s = g_string_new ("| key | type | default | range or choices | required | description |\n"
                             "|---|---|---|---|---|---|\n");
  for (const ArbConfigKey *k = keys; k != NULL && k->name != NULL; k++)
    {
      g_autofree char *range = range_text (k);
      g_autofree char *name = k->type == ARB_CFG_SECRET ? g_strdup_printf ("`%s_env` / `%s_file`", k->name, k->name)
                                                          : g_strdup_printf ("`%s`", k->name);
      const char *choices = k->type == ARB_CFG_ENUM && k->choices != NULL ? k->choices : range;
      g_string_append_printf (s, "| %s | %s | %s%s%s | %s | %s | %s |\n", name, arb_config_type_to_string (k->type),
                              k->fallback != NULL ? "`" : "", k->fallback != NULL ? k->fallback : "",
                              k->fallback != NULL ? "`" : "", choices,
                              (k->flags & ARB_CFG_REQUIRED) ? "yes" : "no", k->help != NULL ? k->help : "");
    }
  return g_string_free (s, FALSE);
}

void
arb_config_describe_json (const ArbConfigKey *keys, gpointer json_builder)
{
  JsonBuilder *b = json_builder;
  json_builder_begin_array (b);
  for (const ArbConfigKey *k = keys; k != NULL && k->name != NULL; k++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, k->name);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, arb_config_type_to_string (k->type));
      json_builder_set_member_name (b, "required");
      json_builder_add_boolean_value (b, (k->flags & ARB_CFG_REQUIRED) != 0);
      json_builder_set_member_name (b, "default");
      if (k->fallback != NULL)
        json_builder_add_string_value (b, k->fallback);
      else
        json_builder_add_null_value (b);
      if (range_is_set (k))
        {
          json_builder_set_member_name (b, "min");
          json_builder_add_int_value (b, k->min);
          json_builder_set_member_name (b, "max");
          json_builder_add_int_value (b, k->max);
        }
      if (k->type == ARB_CFG_ENUM && k->choices != NULL)
        {
          g_auto(GStrv) choices = split_list (k->choices);
          json_builder_set_member_name (b, "choices");
          json_builder_begin_array (b);
          for (guint i = 0; choices[i] != NULL; i++)
            json_builder_add_string_value (b, choices[i]);
          json_builder_end_array (b);
        }
      if (k->type == ARB_CFG_SECRET)
        {
          g_autofree char *e = g_strdup_printf ("%s_env", k->name);
          g_autofree char *f = g_strdup_printf ("%s_file", k->name);
          json_builder_set_member_name (b, "keys");
          json_builder_begin_array (b);
          json_builder_add_string_value (b, e);
          json_builder_add_string_value (b, f);
          json_builder_end_array (b);
        }
      json_builder_set_member_name (b, "help");
      json_builder_add_string_value (b, k->help != NULL ? k->help : "");
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}
