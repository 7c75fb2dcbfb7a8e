/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <arbiter/arb-plugin.h>

#include "arb-log-private.h"
#include "arb-util-private.h"

static GMutex         log_lock;
static ArbLogFormat   log_format = ARB_LOG_TEXT;
static GLogLevelFlags log_threshold = G_LOG_LEVEL_INFO;
static FILE          *log_out = NULL; /* NULL: stderr */
static gboolean       writer_installed = FALSE;

static GPrivate current_cid = G_PRIVATE_INIT (g_free);

const char *
arb_current_correlation_id (void)
{
  return g_private_get (&current_cid);
}

char *
arb_correlation_set (const char *id)
{
  char *prev = g_private_get (&current_cid);
  /* g_private_replace would free the previous one; hand it back instead */
  g_private_set (&current_cid, g_strdup (id));
  return prev;
}

void
arb_correlation_restore (char *previous)
{
  g_private_replace (&current_cid, previous);
}

static int
level_rank (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return 5;
  if (level & G_LOG_LEVEL_CRITICAL)
    return 4;
  if (level & G_LOG_LEVEL_WARNING)
    return 3;
  if (level & G_LOG_LEVEL_MESSAGE)
    return 2;
  if (level & G_LOG_LEVEL_INFO)
    return 1;
  return 0;
}

static const char *
level_name (GLogLevelFlags level)
{
  static const char *const names[] = { "debug", "info", "notice", "warning", "critical", "error" };
  return names[level_rank (level)];
}

gboolean
arb_log_parse_level (const char *text, GLogLevelFlags *out)
{
  static const struct { const char *name; GLogLevelFlags level; } map[] = {
    { "debug", G_LOG_LEVEL_DEBUG },     { "info", G_LOG_LEVEL_INFO },
    { "notice", G_LOG_LEVEL_MESSAGE },  { "message", G_LOG_LEVEL_MESSAGE },
    { "warning", G_LOG_LEVEL_WARNING }, { "critical", G_LOG_LEVEL_CRITICAL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_ascii_strcasecmp (text, map[i].name) == 0)
      {
        *out = map[i].level;
        return TRUE;
      }
  return FALSE;
}

static void
json_escape (GString *s, const char *text)
{
  g_string_append_c (s, '"');
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '"': g_string_append (s, "\\\""); break;
        case '\\': g_string_append (s, "\\\\"); break;
        case '\n': g_string_append (s, "\\n"); break;
        case '\r': g_string_append (s, "\\r"); break;
        case '\t': g_string_append (s, "\\t"); break;
        default:
          if (*p < 0x20)
            g_string_append_printf (s, "\\u%04x", *p);
          else
            g_string_append_c (s, (char) *p);
        }
    }
  g_string_append_c (s, '"');
}

static GLogWriterOutput
arb_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *message = NULL, *domain = NULL, *instance = NULL, *component = NULL, *cid = NULL;
  g_autofree char *now = NULL;
  g_autoptr(GString) line = g_string_sized_new (256);
  FILE *out;

  for (gsize i = 0; i < n_fields; i++)
    {
      const char *k = fields[i].key;
      if (fields[i].length != -1)
        continue;
      if (g_str_equal (k, "MESSAGE"))
        message = fields[i].value;
      else if (g_str_equal (k, "GLIB_DOMAIN"))
        domain = fields[i].value;
      else if (g_str_equal (k, "ARB_INSTANCE"))
        instance = fields[i].value;
      else if (g_str_equal (k, "ARB_COMPONENT"))
        component = fields[i].value;
      else if (g_str_equal (k, "ARB_CORRELATION_ID"))
        cid = fields[i].value;
    }
  if (cid == NULL)
    cid = arb_current_correlation_id ();
  if (component == NULL)
    component = domain != NULL ? domain : "arbiter";

  g_mutex_lock (&log_lock);
  if (level_rank (level) < level_rank (log_threshold))
    {
      /* GLib's own debug switch still works for a domain named there */
      if (!(level & G_LOG_LEVEL_DEBUG) || g_log_writer_default_would_drop (level, domain))
        {
          g_mutex_unlock (&log_lock);
          return G_LOG_WRITER_HANDLED;
        }
    }
  now = arb_format_time_us (g_get_real_time ());
  if (log_format == ARB_LOG_JSON)
    {
      g_string_append (line, "{\"time\":");
      json_escape (line, now);
      g_string_append (line, ",\"level\":");
      json_escape (line, level_name (level));
      if (instance != NULL)
        {
          g_string_append (line, ",\"instance\":");
          json_escape (line, instance);
        }
      else
        {
          g_string_append (line, ",\"component\":");
          json_escape (line, component);
        }
      if (cid != NULL)
        {
          g_string_append (line, ",\"correlationId\":");
          json_escape (line, cid);
        }
      g_string_append (line, ",\"message\":");
      json_escape (line, message != NULL ? message : "");
      g_string_append (line, "}\n");
    }
  else
    {
      g_string_append_printf (line, "%s %-8s [%s] %s", now, level_name (level),
                              instance != NULL ? instance : component, message != NULL ? message : "");
      if (cid != NULL)
        g_string_append_printf (line, " (correlation-id=%s)", cid);
      g_string_append_c (line, '\n');
    }
  out = log_out != NULL ? log_out : stderr;
  fwrite (line->str, 1, line->len, out);
  fflush (out);
  g_mutex_unlock (&log_lock);
  return G_LOG_WRITER_HANDLED;
}

void
arb_log_setup (ArbLogFormat format, GLogLevelFlags threshold)
{
  g_mutex_lock (&log_lock);
  log_format = format;
  log_threshold = threshold;
  g_mutex_unlock (&log_lock);
  if (!writer_installed)
    {
      writer_installed = TRUE;
      g_log_set_writer_func (arb_log_writer, NULL, NULL);
    }
}

void
arb_log_set_output_file (const char *path)
{
  g_mutex_lock (&log_lock);
  if (log_out != NULL)
    fclose (log_out);
  log_out = path != NULL ? fopen (path, "ae") : NULL;
  g_mutex_unlock (&log_lock);
}

void
arb_log_for (const char *instance, const char *component, GLogLevelFlags level, const char *message)
{
  GLogField fields[5];
  gsize n = 0;
  const char *cid = arb_current_correlation_id ();

  fields[n++] = (GLogField){ "MESSAGE", message, -1 };
  fields[n++] = (GLogField){ "PRIORITY", level & G_LOG_LEVEL_ERROR ? "3"
                                         : level & G_LOG_LEVEL_CRITICAL ? "4"
                                         : level & G_LOG_LEVEL_WARNING ? "4"
                                         : level & G_LOG_LEVEL_MESSAGE ? "5"
                                         : level & G_LOG_LEVEL_INFO ? "6" : "7", -1 };
  fields[n++] = (GLogField){ "GLIB_DOMAIN", "arbiter", -1 };
  if (instance != NULL)
    fields[n++] = (GLogField){ "ARB_INSTANCE", instance, -1 };
  else if (component != NULL)
    fields[n++] = (GLogField){ "ARB_COMPONENT", component, -1 };
  if (cid != NULL)
    fields[n++] = (GLogField){ "ARB_CORRELATION_ID", cid, -1 };
  g_log_structured_array (level, fields, n);
}
