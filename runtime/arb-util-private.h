/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "250ms", "10s", "5m", "24h", "7d" → milliseconds; a bare number is refused,
 * because a duration without a unit is the classic operator mistake */
gboolean arb_parse_duration_ms (const char *text, gint64 *out_ms, GError **error);
/* 90000 → "90s", 60000 → "1m" */
char    *arb_format_duration_ms (gint64 ms);

/* edit distance, for "did you mean" suggestions */
guint    arb_levenshtein (const char *a, const char *b);
/* the closest of @candidates to @word, or NULL when nothing is near enough */
const char *arb_closest_word (const char *word, const char *const *candidates);
/* strcmp of two elements of an array of strings (qsort, g_ptr_array_sort) */
int      arb_compare_strings (const void *a, const void *b);

/* RFC 9562 version 7 (time-ordered), lower case */
char    *arb_uuid_new (void);
/* RFC 3339 in UTC with microseconds: 2026-11-21T06:04:55.123456Z */
char    *arb_format_time_us (gint64 unix_us);
#define ARB_TIME_BUFSIZE 40
char    *arb_format_time_us_buf (gint64 unix_us, char buf[ARB_TIME_BUFSIZE]);
/* unix µs as "YYYY-MM-DD" @sep "hh:mm:ss.uuuuuu" @suffix (years 0–9999;
 * otherwise "invalid-time" and FALSE) */
gboolean arb_format_utc_us (gint64 unix_us, char sep, const char *suffix, char *buf, gsize size);
/* days since 1970-01-01 of a proleptic Gregorian date, and back */
gint64   arb_days_from_civil (gint64 y, guint m, guint d);
void     arb_civil_from_days (gint64 days, gint64 *y, guint *m, guint *d);

/* [A-Za-z0-9._-]{1,64} */
gboolean arb_correlation_id_is_valid (const char *id);

/* "127.0.0.1:8080", "[::1]:0", ":8080" → host and port */
gboolean arb_parse_listen (const char *text, char **out_host, guint16 *out_port, GError **error);

/* g_strv_builder_take() arrived in GLib 2.80; Debian 12 has 2.74 */
static inline void
arb_strv_builder_take (GStrvBuilder *builder, char *value)
{
  g_strv_builder_add (builder, value);
  g_free (value);
}

G_END_DECLS
