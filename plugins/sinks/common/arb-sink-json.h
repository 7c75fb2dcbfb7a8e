/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small reader for the event envelope (doc/events.md): walks the members
 * of its "data" object, one level deep, for the sinks that store fields
 * (sink-redis, sink-postgres). The host writes the envelope, so this expects
 * well-formed JSON and refuses anything else; it allocates only for strings
 * with escapes, which keeps it cheap at tens of thousands of quotes a
 * second on the sink's worker thread. */

#include <string.h>

#include <glib.h>

typedef enum {
  SINK_JSON_STRING, /* value: unescaped text */
  SINK_JSON_NUMBER, /* value: the number as written */
  SINK_JSON_BOOL,   /* value: "true" or "false" */
  SINK_JSON_NULL,   /* value: "null" */
  SINK_JSON_OBJECT, /* value: the object as written */
  SINK_JSON_ARRAY,  /* value: the array as written */
} SinkJsonKind;

/* @name and @value are valid for the call only, and not NUL-terminated */
typedef void (*SinkJsonMemberFunc) (const char *name, gsize name_len, SinkJsonKind kind, const char *value,
                                    gsize value_len, gpointer user_data);

typedef struct {
  const char *p;
  const char *end;
  GString    *scratch; /* owned: unescaped strings */
} SinkJsonReader;

static inline void
sink_json_ws (SinkJsonReader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static inline void
sink_json_utf8 (GString *s, gunichar c)
{
  char buf[6];
  gint n = g_unichar_to_utf8 (c, buf);
  g_string_append_len (s, buf, n);
}

static inline gboolean
sink_json_hex4 (const char *p, const char *end, gunichar *out)
{
  gunichar c = 0;

  if (end - p < 4)
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (p[i]);
      if (d < 0)
        return FALSE;
      c = c * 16 + (gunichar) d;
    }
  *out = c;
  return TRUE;
}

/* a string at r->p (on its quote); *out points into the input when it has
 * no escapes, else into r->scratch */
static inline gboolean
sink_json_string (SinkJsonReader *r, const char **out, gsize *out_len)
{
  const char *start;
  gboolean escaped = FALSE;

  if (r->p >= r->end || *r->p != '"')
    return FALSE;
  start = ++r->p;
  while (r->p < r->end && *r->p != '"')
    {
      if (*r->p == '\\')
        {
          escaped = TRUE;
          r->p++;
        }
      r->p++;
    }
  if (r->p >= r->end)
    return FALSE;
  if (!escaped)
    {
      *out = start;
      *out_len = (gsize) (r->p - start);
      r->p++;
      return TRUE;
    }
  g_string_truncate (r->scratch, 0);
  for (const char *q = start; q < r->p; q++)
    {
      gunichar c;

      if (*q != '\\')
        {
          g_string_append_c (r->scratch, *q);
          continue;
        }
      q++;
      switch (*q)
        {
        case 'b': g_string_append_c (r->scratch, '\b'); break;
        case 'f': g_string_append_c (r->scratch, '\f'); break;
        case 'n': g_string_append_c (r->scratch, '\n'); break;
        case 'r': g_string_append_c (r->scratch, '\r'); break;
        case 't': g_string_append_c (r->scratch, '\t'); break;
        case 'u':
          if (!sink_json_hex4 (q + 1, r->p, &c))
            return FALSE;
          q += 4;
          /* a surrogate pair */
          if (c >= 0xD800 && c <= 0xDBFF && r->p - q > 6 && q[1] == '\\' && q[2] == 'u')
            {
              gunichar low;
              if (sink_json_hex4 (q + 3, r->p, &low) && low >= 0xDC00 && low <= 0xDFFF)
                {
                  c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                  q += 6;
                }
            }
          sink_json_utf8 (r->scratch, c);
          break;
        default: g_string_append_c (r->scratch, *q); break; /* \" \\ \/ */
        }
    }
  r->p++;
  *out = r->scratch->str;
  *out_len = r->scratch->len;
  return TRUE;
}

/* skips one value of any kind; *kind says which it was */
static inline gboolean
sink_json_skip (SinkJsonReader *r, SinkJsonKind *kind)
{
  const char *s;
  gsize n;

  sink_json_ws (r);
  if (r->p >= r->end)
    return FALSE;
  switch (*r->p)
    {
    case '"':
      *kind = SINK_JSON_STRING;
      /* no unescaping needed to skip one */
      r->p++;
      while (r->p < r->end && *r->p != '"')
        r->p += *r->p == '\\' ? 2 : 1;
      if (r->p >= r->end)
        return FALSE;
      r->p++;
      return TRUE;
    case '{':
    case '[':
      {
        int depth = 0;
        *kind = *r->p == '{' ? SINK_JSON_OBJECT : SINK_JSON_ARRAY;
        while (r->p < r->end)
          {
            char c = *r->p;
            if (c == '"')
              {
                if (!sink_json_string (r, &s, &n))
                  return FALSE;
                continue;
              }
            r->p++;
            if (c == '{' || c == '[')
              depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
              return TRUE;
          }
        return FALSE;
      }
    case 't':
    case 'f':
      *kind = SINK_JSON_BOOL;
      break;
    case 'n':
      *kind = SINK_JSON_NULL;
      break;
    default:
      *kind = SINK_JSON_NUMBER;
      break;
    }
  while (r->p < r->end && *r->p != ',' && *r->p != '}' && *r->p != ']' && *r->p != ' ' && *r->p != '\n')
    r->p++;
  return TRUE;
}

/* calls @fn for each member of the object at r->p */
static inline gboolean
sink_json_members (SinkJsonReader *r, SinkJsonMemberFunc fn, gpointer user_data)
{
  sink_json_ws (r);
  if (r->p >= r->end || *r->p != '{')
    return FALSE;
  r->p++;
  sink_json_ws (r);
  if (r->p < r->end && *r->p == '}')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      const char *name, *value;
      gsize name_len, value_len;
      g_autofree char *name_copy = NULL;
      SinkJsonKind kind;

      sink_json_ws (r);
      if (!sink_json_string (r, &name, &name_len))
        return FALSE;
      /* the value's unescaping may reuse the scratch buffer */
      if (name == r->scratch->str)
        name = name_copy = g_strndup (name, name_len);
      sink_json_ws (r);
      if (r->p >= r->end || *r->p != ':')
        return FALSE;
      r->p++;
      sink_json_ws (r);
      if (r->p < r->end && *r->p == '"')
        {
          kind = SINK_JSON_STRING;
          if (!sink_json_string (r, &value, &value_len))
            return FALSE;
        }
      else
        {
          value = r->p;
          if (!sink_json_skip (r, &kind))
            return FALSE;
          value_len = (gsize) (r->p - value);
        }
      fn (name, name_len, kind, value, value_len, user_data);
      sink_json_ws (r);
      if (r->p < r->end && *r->p == ',')
        {
          r->p++;
          continue;
        }
      if (r->p < r->end && *r->p == '}')
        {
          r->p++;
          return TRUE;
        }
      return FALSE;
    }
}

typedef struct {
  SinkJsonReader     *r;
  SinkJsonMemberFunc  fn;
  gpointer            user_data;
  gboolean            found;
  gboolean            ok;
} SinkJsonDataWalk;

static inline void
sink_json_data_member (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
                       gpointer user_data)
{
  SinkJsonDataWalk *w = user_data;
  SinkJsonReader inner;

  if (kind != SINK_JSON_OBJECT || name_len != 4 || memcmp (name, "data", 4) != 0)
    return;
  inner.p = value;
  inner.end = value + value_len;
  inner.scratch = w->r->scratch;
  w->found = TRUE;
  w->ok = sink_json_members (&inner, w->fn, w->user_data);
}

/* Calls @fn for every member of the envelope's "data" object. FALSE when
 * @json is not an object or has no such member. @scratch is a buffer the
 * caller keeps between calls. */
static inline gboolean
sink_json_each_data_member (const char *json, gsize len, GString *scratch, SinkJsonMemberFunc fn,
                            gpointer user_data)
{
  SinkJsonReader r = { json, json + len, scratch };
  SinkJsonDataWalk w = { &r, fn, user_data, FALSE, FALSE };

  if (!sink_json_members (&r, sink_json_data_member, &w))
    return FALSE;
  return w.found && w.ok;
}

static inline gboolean
sink_json_name_is (const char *name, gsize name_len, const char *literal)
{
  return strlen (literal) == name_len && memcmp (name, literal, name_len) == 0;
}

typedef struct {
  const char *value;
  gsize       len;
} SinkJsonRaw;

static inline void
sink_json_raw_data (const char *name, gsize name_len, SinkJsonKind kind, const char *value, gsize value_len,
                    gpointer user_data)
{
  SinkJsonRaw *raw = user_data;

  if (kind == SINK_JSON_OBJECT && raw->value == NULL && sink_json_name_is (name, name_len, "data"))
    {
      raw->value = value;
      raw->len = value_len;
    }
}

/* the envelope's "data" object as written (points into @json), or FALSE */
static inline gboolean
sink_json_get_data (const char *json, gsize len, GString *scratch, const char **data, gsize *data_len)
{
  SinkJsonReader r = { json, json + len, scratch };
  SinkJsonRaw raw = { NULL, 0 };

  if (!sink_json_members (&r, sink_json_raw_data, &raw) || raw.value == NULL)
    return FALSE;
  *data = raw.value;
  *data_len = raw.len;
  return TRUE;
}
