/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <arbiter/arb-decimal.h>
#include <glib.h>

G_BEGIN_DECLS

/* A small streaming JSON writer for the hot paths (answers and events):
 * no node tree, no hash tables, one GString. Commas are placed by the
 * writer; keys and strings are escaped. json-glib still parses requests. */
typedef struct {
  GString *out;
  guint    depth;
  guint64  first; /* bit per depth: nothing written at that level yet */
} ArbJson;

void  arb_json_init (ArbJson *j, gsize reserve);
/* (transfer full) the text; the writer is empty afterwards */
char *arb_json_steal (ArbJson *j, gsize *length);
void  arb_json_clear (ArbJson *j);

void arb_json_begin_object (ArbJson *j);
void arb_json_end_object (ArbJson *j);
void arb_json_begin_array (ArbJson *j);
void arb_json_end_array (ArbJson *j);
void arb_json_key (ArbJson *j, const char *key);

void arb_json_string (ArbJson *j, const char *value); /* NULL writes null */
void arb_json_null (ArbJson *j);
void arb_json_bool (ArbJson *j, gboolean value);
void arb_json_int (ArbJson *j, gint64 value);
void arb_json_decimal (ArbJson *j, ArbDecimal value); /* "123.45000000" */
void arb_json_time (ArbJson *j, gint64 unix_us);      /* RFC 3339, or null for 0 */
void arb_json_raw (ArbJson *j, const char *json);     /* already valid JSON */

/* key and value in one call */
void arb_json_kv_string (ArbJson *j, const char *key, const char *value);
void arb_json_kv_int (ArbJson *j, const char *key, gint64 value);
void arb_json_kv_bool (ArbJson *j, const char *key, gboolean value);
void arb_json_kv_decimal (ArbJson *j, const char *key, ArbDecimal value);
void arb_json_kv_time (ArbJson *j, const char *key, gint64 unix_us);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ArbJson, arb_json_clear)

/* appends @text to @out escaped as the inside of a JSON string */
void arb_json_escape_append (GString *out, const char *text);

G_END_DECLS
