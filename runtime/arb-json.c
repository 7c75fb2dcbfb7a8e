/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "arb-json-private.h"
#include "arb-util-private.h"

void
arb_json_init (ArbJson *j, gsize reserve)
{
  j->out = g_string_sized_new (reserve);
  j->depth = 0;
  j->first = 1;
}

char *
arb_json_steal (ArbJson *j, gsize *length)
{
  if (length != NULL)
    *length = j->out->len;
  return g_string_free (g_steal_pointer (&j->out), FALSE);
}

void
arb_json_clear (ArbJson *j)
{
  if (j->out != NULL)
    g_string_free (g_steal_pointer (&j->out), TRUE);
}

/* a comma before every value but the first of its level; a value right
 * after a key takes none */
static void
separate (ArbJson *j)
{
  guint64 bit = G_GUINT64_CONSTANT (1) << (j->depth & 63);
  if (j->first & bit)
    j->first &= ~bit;
  else if (j->out->len > 0 && j->out->str[j->out->len - 1] != ':')
    g_string_append_c (j->out, ',');
}

static void
open_level (ArbJson *j, char c)
{
  separate (j);
  g_string_append_c (j->out, c);
  j->depth++;
  j->first |= G_GUINT64_CONSTANT (1) << (j->depth & 63);
}

static void
close_level (ArbJson *j, char c)
{
  g_return_if_fail (j->depth > 0);
  j->depth--;
  g_string_append_c (j->out, c);
}

void
arb_json_begin_object (ArbJson *j)
{
  open_level (j, '{');
}

void
arb_json_end_object (ArbJson *j)
{
  close_level (j, '}');
}

void
arb_json_begin_array (ArbJson *j)
{
  open_level (j, '[');
}

void
arb_json_end_array (ArbJson *j)
{
  close_level (j, ']');
}

void
arb_json_escape_append (GString *out, const char *text)
{
  static const char hex[] = "0123456789abcdef";
  const char *run = text;
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, run, p - run);
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          g_string_append (out, "\\u00");
          g_string_append_c (out, hex[c >> 4]);
          g_string_append_c (out, hex[c & 15]);
        }
      run = p + 1;
    }
  g_string_append (out, run);
}

void
arb_json_key (ArbJson *j, const char *key)
{
  separate (j);
  g_string_append_c (j->out, '"');
  arb_json_escape_append (j->out, key);
  g_string_append (j->out, "\":");
}

void
arb_json_string (ArbJson *j, const char *value)
{
  separate (j);
  if (value == NULL)
    {
      g_string_append (j->out, "null");
      return;
    }
  g_string_append_c (j->out, '"');
  arb_json_escape_append (j->out, value);
  g_string_append_c (j->out, '"');
}

void
arb_json_null (ArbJson *j)
{
  separate (j);
  g_string_append (j->out, "null");
}

void
arb_json_bool (ArbJson *j, gboolean value)
{
  separate (j);
  g_string_append (j->out, value ? "true" : "false");
}

void
arb_json_int (ArbJson *j, gint64 value)
{
  separate (j);
  g_string_append_printf (j->out, "%" G_GINT64_FORMAT, value);
}

void
arb_json_decimal (ArbJson *j, ArbDecimal value)
{
  char buf[ARB_DECIMAL_BUFSIZE];
  separate (j);
  g_string_append_c (j->out, '"');
  g_string_append (j->out, arb_decimal_format (value, buf));
  g_string_append_c (j->out, '"');
}

void
arb_json_time (ArbJson *j, gint64 unix_us)
{
  char buf[ARB_TIME_BUFSIZE];
  if (unix_us == 0)
    {
      arb_json_null (j);
      return;
    }
  arb_json_string (j, arb_format_time_us_buf (unix_us, buf));
}

void
arb_json_raw (ArbJson *j, const char *json)
{
  separate (j);
  g_string_append (j->out, json);
}

void
arb_json_kv_string (ArbJson *j, const char *key, const char *value)
{
  arb_json_key (j, key);
  arb_json_string (j, value);
}

void
arb_json_kv_int (ArbJson *j, const char *key, gint64 value)
{
  arb_json_key (j, key);
  arb_json_int (j, value);
}

void
arb_json_kv_bool (ArbJson *j, const char *key, gboolean value)
{
  arb_json_key (j, key);
  arb_json_bool (j, value);
}

void
arb_json_kv_decimal (ArbJson *j, const char *key, ArbDecimal value)
{
  arb_json_key (j, key);
  arb_json_decimal (j, value);
}

void
arb_json_kv_time (ArbJson *j, const char *key, gint64 unix_us)
{
  arb_json_key (j, key);
  arb_json_time (j, unix_us);
}
