/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "arb-metrics-private.h"

/* latency buckets in seconds: 50 µs to 10 s */
static const gdouble default_buckets[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                           2.5,     5,      10 };
#define N_BUCKETS G_N_ELEMENTS (default_buckets)

typedef struct {
  gdouble value;               /* counter, gauge */
  guint64 buckets[N_BUCKETS];  /* histogram: per bucket, not cumulative */
  guint64 count;
  gdouble sum;
} Series;

typedef struct {
  char          *name;
  char          *help;
  ArbMetricType  type;
  GHashTable    *series; /* labels → Series */
} Family;

struct _ArbMetrics {
  GMutex      lock;
  GHashTable *families; /* name → Family */
};

static void
family_free (gpointer data)
{
  Family *f = data;
  g_free (f->name);
  g_free (f->help);
  g_hash_table_unref (f->series);
  g_free (f);
}

ArbMetrics *
arb_metrics_new (void)
{
  ArbMetrics *m = g_new0 (ArbMetrics, 1);
  g_mutex_init (&m->lock);
  m->families = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, family_free);
  return m;
}

void
arb_metrics_free (ArbMetrics *metrics)
{
  if (metrics == NULL)
    return;
  g_hash_table_unref (metrics->families);
  g_mutex_clear (&metrics->lock);
  g_free (metrics);
}

gboolean
arb_metrics_name_is_valid (const char *name)
{
  if (name == NULL || !(g_ascii_isalpha (name[0]) || name[0] == '_' || name[0] == ':'))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '_' || *p == ':'))
      return FALSE;
  return TRUE;
}

/* with the lock held */
static Family *
family_get (ArbMetrics *m, const char *name, ArbMetricType type)
{
  Family *f = g_hash_table_lookup (m->families, name);
  if (f == NULL)
    {
      f = g_new0 (Family, 1);
      f->name = g_strdup (name);
      f->type = type;
      f->series = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_hash_table_insert (m->families, f->name, f);
    }
  return f;
}

static Series *
series_get (Family *f, const char *labels)
{
  Series *s = g_hash_table_lookup (f->series, labels != NULL ? labels : "");
  if (s == NULL)
    {
      s = g_new0 (Series, 1);
      g_hash_table_insert (f->series, g_strdup (labels != NULL ? labels : ""), s);
    }
  return s;
}

void
arb_metrics_declare (ArbMetrics *metrics, const char *name, ArbMetricType type, const char *help)
{
  Family *f;
  g_mutex_lock (&metrics->lock);
  f = family_get (metrics, name, type);
  f->type = type;
  g_free (f->help);
  f->help = g_strdup (help);
  g_mutex_unlock (&metrics->lock);
}

void
arb_metrics_counter_add (ArbMetrics *metrics, const char *name, const char *labels, guint64 delta)
{
  g_mutex_lock (&metrics->lock);
  series_get (family_get (metrics, name, ARB_METRIC_COUNTER), labels)->value += (gdouble) delta;
  g_mutex_unlock (&metrics->lock);
}

void
arb_metrics_gauge_set (ArbMetrics *metrics, const char *name, const char *labels, gdouble value)
{
  g_mutex_lock (&metrics->lock);
  series_get (family_get (metrics, name, ARB_METRIC_GAUGE), labels)->value = value;
  g_mutex_unlock (&metrics->lock);
}

void
arb_metrics_gauge_add (ArbMetrics *metrics, const char *name, const char *labels, gdouble delta)
{
  g_mutex_lock (&metrics->lock);
  series_get (family_get (metrics, name, ARB_METRIC_GAUGE), labels)->value += delta;
  g_mutex_unlock (&metrics->lock);
}

void
arb_metrics_histogram_observe (ArbMetrics *metrics, const char *name, const char *labels, gdouble value)
{
  Series *s;
  g_mutex_lock (&metrics->lock);
  s = series_get (family_get (metrics, name, ARB_METRIC_HISTOGRAM), labels);
  for (guint i = 0; i < N_BUCKETS; i++)
    if (value <= default_buckets[i])
      {
        s->buckets[i]++;
        break;
      }
  s->count++;
  s->sum += value;
  g_mutex_unlock (&metrics->lock);
}

gdouble
arb_metrics_get (ArbMetrics *metrics, const char *name, const char *labels)
{
  gdouble v = 0;
  Family *f;
  g_mutex_lock (&metrics->lock);
  f = g_hash_table_lookup (metrics->families, name);
  if (f != NULL)
    {
      Series *s = g_hash_table_lookup (f->series, labels != NULL ? labels : "");
      if (s != NULL)
        v = f->type == ARB_METRIC_HISTOGRAM ? (gdouble) s->count : s->value;
    }
  g_mutex_unlock (&metrics->lock);
  return v;
}

static void
append_number (GString *out, gdouble v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  if (isnan (v))
    g_string_append (out, "NaN");
  else if (isinf (v))
    g_string_append (out, v > 0 ? "+Inf" : "-Inf");
  else if (v == floor (v) && fabs (v) < 1e15)
    g_string_append_printf (out, "%.0f", v);
  else
    g_string_append (out, g_ascii_dtostr (buf, sizeof buf, v));
}

static void
append_help (GString *out, const char *help)
{
  for (const char *p = help; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

static void
append_series_name (GString *out, const char *name, const char *suffix, const char *labels, const char *extra)
{
  gboolean has_labels = labels != NULL && *labels != '\0';
  g_string_append (out, name);
  g_string_append (out, suffix);
  if (has_labels || extra != NULL)
    {
      g_string_append_c (out, '{');
      if (has_labels)
        g_string_append (out, labels);
      if (extra != NULL)
        {
          if (has_labels)
            g_string_append_c (out, ',');
          g_string_append (out, extra);
        }
      g_string_append_c (out, '}');
    }
  g_string_append_c (out, ' ');
}

char *
arb_metrics_render (ArbMetrics *metrics)
{
  GString *out = g_string_sized_new (4096);
  g_autoptr(GList) names = NULL;

  g_mutex_lock (&metrics->lock);
  names = g_list_sort (g_hash_table_get_keys (metrics->families), (GCompareFunc) strcmp);
  for (GList *l = names; l != NULL; l = l->next)
    {
      Family *f = g_hash_table_lookup (metrics->families, l->data);
      g_autoptr(GList) keys = NULL;
      static const char *const types[] = { "counter", "gauge", "histogram" };

      if (g_hash_table_size (f->series) == 0)
        continue;
      if (f->help != NULL)
        {
          g_string_append_printf (out, "# HELP %s ", f->name);
          append_help (out, f->help);
          g_string_append_c (out, '\n');
        }
      g_string_append_printf (out, "# TYPE %s %s\n", f->name, types[f->type]);
      keys = g_list_sort (g_hash_table_get_keys (f->series), (GCompareFunc) strcmp);
      for (GList *k = keys; k != NULL; k = k->next)
        {
          Series *s = g_hash_table_lookup (f->series, k->data);
          if (f->type != ARB_METRIC_HISTOGRAM)
            {
              append_series_name (out, f->name, "", k->data, NULL);
              append_number (out, s->value);
              g_string_append_c (out, '\n');
              continue;
            }
          {
            guint64 cum = 0;
            for (guint i = 0; i < N_BUCKETS; i++)
              {
                char le[G_ASCII_DTOSTR_BUF_SIZE + 8];
                char num[G_ASCII_DTOSTR_BUF_SIZE];
                cum += s->buckets[i];
                g_snprintf (le, sizeof le, "le=\"%s\"", g_ascii_formatd (num, sizeof num, "%g", default_buckets[i]));
                append_series_name (out, f->name, "_bucket", k->data, le);
                g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", cum);
              }
            append_series_name (out, f->name, "_bucket", k->data, "le=\"+Inf\"");
            g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", s->count);
            append_series_name (out, f->name, "_sum", k->data, NULL);
            append_number (out, s->sum);
            g_string_append_c (out, '\n');
            append_series_name (out, f->name, "_count", k->data, NULL);
            g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", s->count);
          }
        }
    }
  g_mutex_unlock (&metrics->lock);
  return g_string_free (out, FALSE);
}

char *
arb_metrics_labels (const char *first_name, ...)
{
  GString *s = g_string_new (NULL);
  va_list args;
  const char *name = first_name;

  va_start (args, first_name);
  while (name != NULL)
    {
      const char *value = va_arg (args, const char *);
      if (s->len > 0)
        g_string_append_c (s, ',');
      g_string_append_printf (s, "%s=\"", name);
      for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
        {
          if (*p == '\\')
            g_string_append (s, "\\\\");
          else if (*p == '"')
            g_string_append (s, "\\\"");
          else if (*p == '\n')
            g_string_append (s, "\\n");
          else
            g_string_append_c (s, *p);
        }
      g_string_append_c (s, '"');
      name = va_arg (args, const char *);
    }
  va_end (args);
  return g_string_free (s, FALSE);
}
