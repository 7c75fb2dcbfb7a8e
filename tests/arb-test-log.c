/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-test-log.h"

typedef struct {
  GLogLevelFlags level;
  char          *instance; /* owned, nullable */
  char          *message;  /* owned */
} Record;

static GMutex     lock;
static GPtrArray *expected;   /* Record, in order */
static GPtrArray *allowed;    /* Record, message unused */
static GPtrArray *unexpected; /* Record: warnings and worse nobody asked for */

static void
record_free (Record *r)
{
  g_free (r->instance);
  g_free (r->message);
  g_free (r);
}

static Record *
record_new (GLogLevelFlags level, const char *instance, const char *message)
{
  Record *r = g_new0 (Record, 1);
  r->level = level & G_LOG_LEVEL_MASK;
  r->instance = g_strdup (instance);
  r->message = g_strdup (message != NULL ? message : "");
  return r;
}

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR) return "ERROR";
  if (level & G_LOG_LEVEL_CRITICAL) return "CRITICAL";
  if (level & G_LOG_LEVEL_WARNING) return "WARNING";
  if (level & G_LOG_LEVEL_MESSAGE) return "MESSAGE";
  if (level & G_LOG_LEVEL_INFO) return "INFO";
  return "DEBUG";
}

static GLogWriterOutput
writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *message = NULL, *instance = NULL, *domain = NULL;
  GLogLevelFlags masked = level & G_LOG_LEVEL_MASK;
  gboolean matched = FALSE;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (fields[i].length != -1)
        continue;
      if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
      else if (g_str_equal (fields[i].key, "ARB_INSTANCE"))
        instance = fields[i].value;
      else if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
        domain = fields[i].value;
    }

  g_mutex_lock (&lock);
  for (guint i = 0; i < expected->len; i++)
    {
      Record *e = g_ptr_array_index (expected, i);
      if (e->level == masked && (e->instance == NULL || g_strcmp0 (e->instance, instance) == 0)
          && g_strcmp0 (e->message, message) == 0)
        {
          g_ptr_array_remove_index (expected, i);
          matched = TRUE;
          break;
        }
    }
  for (guint i = 0; !matched && i < allowed->len; i++)
    {
      Record *a = g_ptr_array_index (allowed, i);
      matched = a->level == masked && g_strcmp0 (a->instance, instance) == 0;
    }
  if (!matched && (masked & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)))
    g_ptr_array_add (unexpected, record_new (masked, instance, message));
  g_mutex_unlock (&lock);

  /* stderr is not the TAP stream; keep it for whoever reads the test log */
  if (g_test_verbose () || (!matched && masked <= G_LOG_LEVEL_WARNING))
    g_printerr ("%s%s [%s] %s\n", matched ? "(expected) " : "", level_name (masked),
                instance != NULL ? instance : domain != NULL ? domain : "?", message != NULL ? message : "");
  return G_LOG_WRITER_HANDLED;
}

void
arb_test_log_install (void)
{
  expected = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  allowed = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  unexpected = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  g_log_set_writer_func (writer, NULL, NULL);
}

void
arb_test_log_expect (GLogLevelFlags level, const char *instance, const char *message)
{
  g_mutex_lock (&lock);
  g_ptr_array_add (expected, record_new (level, instance, message));
  g_mutex_unlock (&lock);
}

void
arb_test_log_allow (GLogLevelFlags level, const char *instance)
{
  g_mutex_lock (&lock);
  g_ptr_array_add (allowed, record_new (level, instance, NULL));
  g_mutex_unlock (&lock);
}

void
arb_test_log_check (void)
{
  g_autoptr(GString) problems = g_string_new (NULL);

  g_mutex_lock (&lock);
  for (guint i = 0; i < expected->len; i++)
    {
      Record *r = g_ptr_array_index (expected, i);
      g_string_append_printf (problems, "\n  expected, never logged: %s [%s] %s", level_name (r->level),
                              r->instance != NULL ? r->instance : "*", r->message);
    }
  for (guint i = 0; i < unexpected->len; i++)
    {
      Record *r = g_ptr_array_index (unexpected, i);
      g_string_append_printf (problems, "\n  logged, not expected: %s [%s] %s", level_name (r->level),
                              r->instance != NULL ? r->instance : "-", r->message);
    }
  g_ptr_array_set_size (expected, 0);
  g_ptr_array_set_size (allowed, 0);
  g_ptr_array_set_size (unexpected, 0);
  g_mutex_unlock (&lock);
  if (problems->len > 0)
    g_test_fail_printf ("log check failed:%s", problems->str);
}
