/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  ARB_METRIC_COUNTER,
  ARB_METRIC_GAUGE,
  ARB_METRIC_HISTOGRAM,
} ArbMetricType;

/* A registry rendered in the Prometheus text exposition format 0.0.4.
 * Series are keyed by a pre-rendered label set (`instance="sink:a",x="y"`,
 * built with arb_metrics_labels()). Thread-safe. */
typedef struct _ArbMetrics ArbMetrics;

ArbMetrics *arb_metrics_new (void);
void        arb_metrics_free (ArbMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbMetrics, arb_metrics_free)

/* declaring is optional; an undeclared family gets its type from first use */
void  arb_metrics_declare (ArbMetrics *metrics, const char *name, ArbMetricType type, const char *help);
void  arb_metrics_counter_add (ArbMetrics *metrics, const char *name, const char *labels, guint64 delta);
void  arb_metrics_gauge_set (ArbMetrics *metrics, const char *name, const char *labels, gdouble value);
void  arb_metrics_gauge_add (ArbMetrics *metrics, const char *name, const char *labels, gdouble delta);
void  arb_metrics_histogram_observe (ArbMetrics *metrics, const char *name, const char *labels, gdouble value);
/* current value of a counter or gauge series, for tests and /ready */
gdouble arb_metrics_get (ArbMetrics *metrics, const char *name, const char *labels);
char *arb_metrics_render (ArbMetrics *metrics);

/* NULL-terminated name, value pairs → `a="x",b="y"`, values escaped */
char *arb_metrics_labels (const char *first_name, ...) G_GNUC_NULL_TERMINATED;
/* [a-zA-Z_:][a-zA-Z0-9_:]* */
gboolean arb_metrics_name_is_valid (const char *name);

G_END_DECLS
