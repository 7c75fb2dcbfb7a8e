/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  ARB_LOG_TEXT,
  ARB_LOG_JSON,
} ArbLogFormat;

/* Installs the daemon's structured log writer: one line a record on stderr,
 * with time, level, instance or component, message and the correlation id
 * when there is one. Can be called again to change format or level. */
void     arb_log_setup (ArbLogFormat format, GLogLevelFlags threshold);
gboolean arb_log_parse_level (const char *text, GLogLevelFlags *out);
/* for tests: write into @path instead of stderr (NULL: back to stderr) */
void     arb_log_set_output_file (const char *path);

/* The correlation id of the work in progress on this thread (thread-local).
 * Set returns the previous one, to restore when the work is done. */
char    *arb_correlation_set (const char *id);
void     arb_correlation_restore (char *previous);

/* logs on behalf of an instance ("sink:jsonl") or a component ("http") */
void     arb_log_for (const char *instance, const char *component, GLogLevelFlags level, const char *message);

G_END_DECLS
