/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON for ingest plugins: a strict syntax check before json-glib builds the
 * tree, exact decimals out of JSON numbers, the error bodies upstreams send,
 * Retry-After and market maps. Pure functions: no I/O, no instance.
 */

#include <math.h>
#include <string.h>

#include "arb-ingest-common.h"

/* ------------------------------------------------------------------------ */
/* Strict syntax                                                            */

/* json-glib 1.6 is lenient where leniency loses data: it takes `{…} {…}` as
 * the first value alone, accepts comments, single quotes and leading zeros,
 * wraps integers past 64 bits (99999999999999999999 becomes -1) and keeps only
 * the last of two members with the same name. For a price, each of those can
 * turn into a wrong number, so they are refused here, before parsing. */
typedef struct {
  const char *start;
  const char *p;
  const char *end;
  const char *why;   /* static: what went wrong, at p */
  GArray     *keys;  /* spans of the member names of the open objects */
  guint       max_depth;
} JsonCheck;

typedef struct {
  const char *text;
  gsize       length;
} Span;

static gboolean check_value (JsonCheck *c, guint depth);

static gboolean
check_fail (JsonCheck *c, const char *why)
{
  c->why = why;
  return FALSE;
}

static void
check_ws (JsonCheck *c)
{
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static gboolean
check_literal (JsonCheck *c, const char *word)
{
  gsize n = strlen (word);

  if ((gsize) (c->end - c->p) < n || memcmp (c->p, word, n) != 0)
    return check_fail (c, "unexpected text");
  c->p += n;
  return TRUE;
}

static gboolean
check_string (JsonCheck *c)
{
  c->p++; /* the opening quote */
  while (c->p < c->end)
    {
      guchar ch = (guchar) *c->p;

      if (ch == '"')
        {
          c->p++;
          return TRUE;
        }
      if (ch < 0x20)
        return check_fail (c, "a control character inside a string");
      if (ch != '\\')
        {
          c->p++;
          continue;
        }
      if (c->end - c->p < 2)
        break;
      switch (c->p[1])
        {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          c->p += 2;
          break;
        case 'u':
          if (c->end - c->p < 6)
            return check_fail (c, "a short \\u escape");
          for (int i = 2; i < 6; i++)
            if (!g_ascii_isxdigit (c->p[i]))
              return check_fail (c, "a \\u escape without four hex digits");
          if (memcmp (c->p + 2, "0000", 4) == 0)
            return check_fail (c, "\\u0000 inside a string");
          c->p += 6;
          break;
        default:
          return check_fail (c, "an unknown escape in a string");
        }
    }
  return check_fail (c, "the text ends inside a string (truncated?)");
}

static gboolean
check_number (JsonCheck *c)
{
  const char *digits;

  if (*c->p == '-')
    c->p++;
  digits = c->p;
  if (c->p < c->end && *c->p == '0')
    c->p++;
  else if (c->p < c->end && *c->p >= '1' && *c->p <= '9')
    while (c->p < c->end && g_ascii_isdigit (*c->p))
      c->p++;
  else
    return check_fail (c, "a malformed number");
  if (c->p < c->end && g_ascii_isdigit (*c->p))
    return check_fail (c, "a number with a leading zero");
  /* json-glib wraps integers past 64 bits; 18 digits always fit */
  if (c->p - digits > 18 && (c->p >= c->end || (*c->p != '.' && *c->p != 'e' && *c->p != 'E')))
    return check_fail (c, "an integer with more than 18 digits");
  if (c->p < c->end && *c->p == '.')
    {
      c->p++;
      if (c->p >= c->end || !g_ascii_isdigit (*c->p))
        return check_fail (c, "a number without digits after the point");
      while (c->p < c->end && g_ascii_isdigit (*c->p))
        c->p++;
    }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E'))
    {
      c->p++;
      if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
        c->p++;
      if (c->p >= c->end || !g_ascii_isdigit (*c->p))
        return check_fail (c, "a number without digits in its exponent");
      while (c->p < c->end && g_ascii_isdigit (*c->p))
        c->p++;
    }
  return TRUE;
}

static gboolean
check_container (JsonCheck *c, guint depth)
{
  gboolean object = (*c->p == '{');
  char close = object ? '}' : ']';
  guint first_key = c->keys->len;

  if (depth >= c->max_depth)
    return check_fail (c, "nesting too deep");
  c->p++;
  check_ws (c);
  if (c->p < c->end && *c->p == close)
    {
      c->p++;
      return TRUE;
    }
  for (;;)
    {
      if (object)
        {
          Span key = { c->p, 0 };

          if (c->p >= c->end || *c->p != '"')
            return check_fail (c, "a member name that is not a string");
          if (!check_string (c))
            return FALSE;
          key.length = (gsize) (c->p - key.text);
          /* json-glib keeps the last of two equal names: which one is meant? */
          for (guint i = first_key; i < c->keys->len; i++)
            {
              Span *k = &g_array_index (c->keys, Span, i);
              if (k->length == key.length && memcmp (k->text, key.text, key.length) == 0)
                {
                  c->p = key.text;
                  return check_fail (c, "a member given twice in one object");
                }
            }
          g_array_append_val (c->keys, key);
          check_ws (c);
          if (c->p >= c->end || *c->p != ':')
            return check_fail (c, "a member without ':'");
          c->p++;
        }
      if (!check_value (c, depth + 1))
        return FALSE;
      check_ws (c);
      if (c->p < c->end && *c->p == ',')
        {
          c->p++;
          check_ws (c);
          continue;
        }
      if (c->p < c->end && *c->p == close)
        {
          c->p++;
          g_array_set_size (c->keys, first_key);
          return TRUE;
        }
      if (c->p >= c->end)
        return check_fail (c, "the text ends inside an object or array (truncated?)");
      return check_fail (c, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static gboolean
check_value (JsonCheck *c, guint depth)
{
  check_ws (c);
  if (c->p >= c->end)
    return check_fail (c, "the text ends where a value should be (truncated?)");
  switch (*c->p)
    {
    case '{':
    case '[':
      return check_container (c, depth);
    case '"':
      return check_string (c);
    case 't':
      return check_literal (c, "true");
    case 'f':
      return check_literal (c, "false");
    case 'n':
      return check_literal (c, "null");
    default:
      if (*c->p == '-' || g_ascii_isdigit (*c->p))
        return check_number (c);
      return check_fail (c, "unexpected text");
    }
}

JsonNode *
arb_ingest_json_parse (const char *text, gsize length, GError **error)
{
  return arb_ingest_json_parse_depth (text, length, ARB_INGEST_JSON_MAX_DEPTH, error);
}

JsonNode *
arb_ingest_json_parse_depth (const char *text, gsize length, guint max_depth, GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GArray) keys = g_array_new (FALSE, FALSE, sizeof (Span));
  JsonCheck c = { .start = text, .p = text, .end = text + length, .keys = keys, .max_depth = max_depth };
  JsonNode *root;

  if (length == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: the answer is empty");
      return NULL;
    }
  if (length > ARB_INGEST_MAX_BODY)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: %" G_GSIZE_FORMAT
                   " bytes is more than the %d an answer may have", length, ARB_INGEST_MAX_BODY);
      return NULL;
    }
  if (!g_utf8_validate_len (text, length, NULL))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: not valid UTF-8");
      return NULL;
    }
  if (check_value (&c, 0))
    {
      check_ws (&c);
      if (c.p == c.end)
        c.why = NULL;
      else
        c.why = "more text after the value";
    }
  if (c.why != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: %s at byte %" G_GSIZE_FORMAT " of %"
                   G_GSIZE_FORMAT, c.why, MIN ((gsize) (c.p - c.start) + 1, length), length);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, text, (gssize) length, &local))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: %s", local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not JSON: no value");
      return NULL;
    }
  return json_node_ref (root);
}

const char *
arb_ingest_json_kind (JsonNode *node)
{
  if (node == NULL)
    return "missing";
  if (JSON_NODE_HOLDS_NULL (node))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT (node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY (node))
    return "an array";
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING:
      return "a string";
    case G_TYPE_BOOLEAN:
      return "true or false";
    case G_TYPE_INT64:
      return "a whole number";
    case G_TYPE_DOUBLE:
      return "a fraction";
    default:
      return "a value of an unknown kind";
    }
}

/* ------------------------------------------------------------------------ */
/* Exact numbers                                                            */

void
arb_ingest_double_to_text (double v, char *buf, gsize size)
{
  char sci[G_ASCII_DTOSTR_BUF_SIZE];
  char digits[32];
  gsize n_digits = 0;
  const char *p;
  gboolean negative;
  int exponent;
  int point;
  g_autoptr(GString) out = NULL;

  /* the fewest significant digits that read back as @v */
  for (int precision = 1; precision <= 17; precision++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%de", precision - 1);
      g_ascii_formatd (sci, sizeof sci, format, v);
      if (g_ascii_strtod (sci, NULL) == v)
        break;
    }

  /* sci is "[-]d[.ddd]e[+-]xx": collect the digits and the exponent */
  p = sci;
  negative = (*p == '-');
  if (negative)
    p++;
  for (; *p != 'e' && *p != '\0'; p++)
    if (g_ascii_isdigit (*p) && n_digits < sizeof digits - 1)
      digits[n_digits++] = *p;
  digits[n_digits] = '\0';
  exponent = (*p == 'e') ? (int) g_ascii_strtoll (p + 1, NULL, 10) : 0;
  while (n_digits > 1 && digits[n_digits - 1] == '0')
    digits[--n_digits] = '\0';
  if (n_digits == 1 && digits[0] == '0')
    negative = FALSE; /* -0 */

  /* the decimal point goes after digit number (exponent + 1) */
  point = exponent + 1;
  out = g_string_new (negative ? "-" : "");
  if (point <= 0)
    {
      g_string_append (out, "0.");
      for (int i = point; i < 0; i++)
        g_string_append_c (out, '0');
      g_string_append (out, digits);
    }
  else if ((gsize) point >= n_digits)
    {
      g_string_append (out, digits);
      for (gsize i = n_digits; i < (gsize) point; i++)
        g_string_append_c (out, '0');
    }
  else
    {
      g_string_append_len (out, digits, point);
      g_string_append_c (out, '.');
      g_string_append (out, digits + point);
    }
  g_strlcpy (buf, out->str, size);
}

gboolean
arb_ingest_json_to_decimal (JsonNode *node, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  g_autoptr(GError) local = NULL;
  char text[G_ASCII_DTOSTR_BUF_SIZE + 400];
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s, not a number", arb_ingest_json_kind (node));
      return FALSE;
    }
  type = json_node_get_value_type (node);
  if (type == G_TYPE_STRING)
    {
      const char *s = json_node_get_string (node);
      g_autofree char *shown = arb_ingest_clean_text (s, -1, 40);

      if (!arb_decimal_parse (s, rounding, out, &local))
        {
          if (g_error_matches (local, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "\"%s\" has more than %d decimal places",
                         shown, ARB_DECIMAL_PLACES);
          else if (g_error_matches (local, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "\"%s\" is out of range", shown);
          else
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "\"%s\" is not a decimal number in range",
                         shown);
          return FALSE;
        }
      return TRUE;
    }
  if (type == G_TYPE_INT64)
    {
      g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT, json_node_get_int (node));
      if (!arb_decimal_parse (text, ARB_ROUND_EXACT, out, &local))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is out of range", text);
          return FALSE;
        }
      return TRUE;
    }
  if (type == G_TYPE_DOUBLE)
    {
      double v = json_node_get_double (node);

      /* far outside the decimal range: say so before writing hundreds of digits */
      if (!isfinite (v) || fabs (v) >= 1e12)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is out of range",
                       g_ascii_formatd (text, sizeof text, "%g", v));
          return FALSE;
        }
      arb_ingest_double_to_text (v, text, sizeof text);
      if (!arb_decimal_parse (text, rounding, out, &local))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s cannot be read as a decimal: %s", text,
                       local->message);
          return FALSE;
        }
      return TRUE;
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s, not a number", arb_ingest_json_kind (node));
  return FALSE;
}

gboolean
arb_ingest_json_get_int (JsonObject *object, const char *member, gint64 *out)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *out = json_node_get_int (node);
      return TRUE;
    }
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    {
      const char *s = json_node_get_string (node);
      char *end = NULL;
      gint64 v;

      if (*s == '\0' || strlen (s) > 18)
        return FALSE;
      v = g_ascii_strtoll (s, &end, 10);
      if (end == NULL || *end != '\0' || !(g_ascii_isdigit (*s) || (*s == '-' && g_ascii_isdigit (s[1]))))
        return FALSE;
      *out = v;
      return TRUE;
    }
  return FALSE;
}

const char *
arb_ingest_json_get_string (JsonObject *object, const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

JsonObject *
arb_ingest_json_get_object (JsonObject *object, const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
}

gboolean
arb_ingest_parse_time_us (const char *text, gint64 *out_us)
{
  g_autoptr(GDateTime) dt = NULL;

  if (text == NULL)
    return FALSE;
  /* a NULL default zone makes a time without an offset fail, which we want */
  dt = g_date_time_new_from_iso8601 (text, NULL);
  if (dt == NULL)
    return FALSE;
  *out_us = g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Error bodies                                                             */

char *
arb_ingest_clean_text (const char *text, gssize length, gsize max)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = text;
  const char *end = length < 0 ? text + strlen (text) : text + length;
  gsize n_chars = 0;
  gboolean space = FALSE;

  /* runs of white space become one space; control characters and invalid
   * UTF-8 are dropped; the text is cut at @max characters with an ellipsis */
  while (p < end && n_chars < max)
    {
      gunichar ch = g_utf8_get_char_validated (p, end - p);

      if (ch == (gunichar) -1 || ch == (gunichar) -2)
        {
          p++;
          continue;
        }
      if (g_unichar_isspace (ch))
        space = out->len > 0;
      else if (!g_unichar_iscntrl (ch))
        {
          if (space)
            {
              g_string_append_c (out, ' ');
              n_chars++;
              space = FALSE;
            }
          g_string_append_unichar (out, ch);
          n_chars++;
        }
      p = g_utf8_next_char (p);
    }
  if (p < end && n_chars >= max)
    g_string_append (out, "…");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

const char *
arb_ingest_status_phrase (guint status, const char *given)
{
  if (given != NULL && *given != '\0' && g_strcmp0 (given, "Unknown Error") != 0)
    return given;
  switch (status)
    {
    case 429: return "Too Many Requests";
    case 451: return "Unavailable For Legal Reasons";
    case 522: return "Connection Timed Out";
    default: break;
    }
  given = soup_status_get_phrase (status);
  return g_strcmp0 (given, "Unknown Error") != 0 ? given : "";
}

static char *
html_title (const char *body, gsize length)
{
  g_autofree char *lower = g_ascii_strdown (body, (gssize) MIN (length, 64 * 1024));
  const char *open = strstr (lower, "<title");
  const char *start, *close;

  if (open == NULL || (start = strchr (open, '>')) == NULL)
    return NULL;
  start++;
  close = strstr (start, "</title");
  if (close == NULL)
    return NULL;
  return arb_ingest_clean_text (body + (start - lower), close - start, ARB_INGEST_MAX_MESSAGE);
}

static void
set_message (ArbIngestErrorBody *out, const char *text)
{
  if (out->message == NULL && text != NULL && *text != '\0')
    out->message = arb_ingest_clean_text (text, -1, ARB_INGEST_MAX_MESSAGE);
}

void
arb_ingest_error_body_decode (const char *body, gsize length, ArbIngestErrorBody *out)
{
  g_autoptr(JsonNode) root = NULL;
  gsize start = 0;

  memset (out, 0, sizeof *out);
  if (body == NULL || length == 0)
    return;

  root = arb_ingest_json_parse (body, length, NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *o = json_node_get_object (root);
      JsonObject *status = arb_ingest_json_get_object (o, "status");
      JsonObject *err = arb_ingest_json_get_object (o, "error");
      const char *type = arb_ingest_json_get_string (o, "type");
      const char *error_text = arb_ingest_json_get_string (o, "error");

      out->json = TRUE;
      /* {"status":{"error_code":N,"error_message":"…"}}, or the code beside
       * "status" (CoinGecko 10010/10011) */
      if (arb_ingest_json_get_int (status, "error_code", &out->code)
          || arb_ingest_json_get_int (o, "error_code", &out->code))
        out->has_code = TRUE;
      set_message (out, arb_ingest_json_get_string (status, "error_message"));
      set_message (out, arb_ingest_json_get_string (o, "error_message"));
      /* {"type":"not found error","error":"id not found"} */
      if (error_text != NULL && type != NULL)
        {
          g_autofree char *both = g_strdup_printf ("%s: %s", type, error_text);
          set_message (out, both);
        }
      set_message (out, error_text);
      /* {"error":{"code":…,"message":"…"}} */
      if (err != NULL)
        {
          if (!out->has_code && arb_ingest_json_get_int (err, "code", &out->code))
            out->has_code = TRUE;
          set_message (out, arb_ingest_json_get_string (err, "message"));
        }
      set_message (out, arb_ingest_json_get_string (o, "message"));
      set_message (out, type);
      return;
    }
  if (root != NULL)
    {
      out->json = TRUE;
      return;
    }

  /* not JSON: an HTML page's title, or the first line of text */
  while (start < length && g_ascii_isspace (body[start]))
    start++;
  if (start < length && body[start] == '<')
    {
      out->message = html_title (body + start, length - start);
      if (out->message == NULL)
        out->message = g_strdup ("an HTML page");
      return;
    }
  {
    const char *nl = memchr (body + start, '\n', length - start);
    gsize line = nl != NULL ? (gsize) (nl - (body + start)) : length - start;
    if (line > 0)
      out->message = arb_ingest_clean_text (body + start, (gssize) line, ARB_INGEST_MAX_MESSAGE);
    if (out->message != NULL && *out->message == '\0')
      g_clear_pointer (&out->message, g_free);
  }
}

void
arb_ingest_error_body_clear (ArbIngestErrorBody *e)
{
  g_clear_pointer (&e->message, g_free);
}

/* ------------------------------------------------------------------------ */
/* Retry-After                                                              */

#define RETRY_AFTER_MAX_MS (G_GINT64_CONSTANT (24) * 3600 * 1000)

gboolean
arb_ingest_retry_after_ms (const char *value, gint64 now_unix_us, gint64 *out_ms)
{
  g_autoptr(GDateTime) date = NULL;
  g_autofree char *text = NULL;

  if (value == NULL)
    return FALSE;
  text = g_strstrip (g_strdup (value));
  if (*text != '\0' && strspn (text, "0123456789") == strlen (text))
    {
      /* delta-seconds; a silly number of digits is a day */
      guint64 secs = strlen (text) > 9 ? G_MAXUINT64 : g_ascii_strtoull (text, NULL, 10);
      *out_ms = secs > (guint64) (RETRY_AFTER_MAX_MS / 1000) ? RETRY_AFTER_MAX_MS : (gint64) secs * 1000;
      return TRUE;
    }
  date = soup_date_time_new_from_http_string (text);
  if (date == NULL)
    return FALSE;
  {
    gint64 at_us = g_date_time_to_unix (date) * G_USEC_PER_SEC;
    gint64 ms = (at_us - now_unix_us) / 1000;
    *out_ms = CLAMP (ms, 0, RETRY_AFTER_MAX_MS);
  }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

char *
arb_ingest_base_url_check (const char *text, GError **error)
{
  g_autoptr(GUri) uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  g_autofree char *trimmed = g_strdup (text);
  gsize n = strlen (trimmed);

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 && g_strcmp0 (g_uri_get_scheme (uri), "https") != 0)
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "base_url: \"%s\" is not an http:// or https:// URL without a query", text);
      return NULL;
    }
  while (n > 0 && trimmed[n - 1] == '/')
    trimmed[--n] = '\0';
  return g_steal_pointer (&trimmed);
}

/* ------------------------------------------------------------------------ */
/* Market maps                                                              */

static void
market_free (ArbIngestMarket *m)
{
  g_free (m->upstream);
  g_free (m->market);
  g_free (m);
}

gboolean
arb_ingest_market_id_check (const char *id, const char **why)
{
  const char *unused;
  const char *p = id;

  if (why == NULL)
    why = &unused;
  if (*p == '\0')
    return (*why = "is empty", FALSE);
  if (strlen (id) > ARB_INGEST_MAX_MARKET_ID)
    return (*why = "is longer than " G_STRINGIFY (ARB_INGEST_MAX_MARKET_ID) " characters", FALSE);
  if (!g_ascii_islower (*p))
    return (*why = "must start with a lower-case namespace such as \"crypto:\"", FALSE);
  while (g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_' || *p == '-')
    p++;
  if (*p != ':')
    return (*why = "must be namespaced, such as \"crypto:BTC-USD\"", FALSE);
  if (p[1] == '\0')
    return (*why = "has nothing after the namespace", FALSE);
  for (p = id; *p != '\0'; p++)
    if (*p <= ' ' || *p >= 0x7f)
      return (*why = "may hold only printable ASCII without spaces", FALSE);
  return TRUE;
}

GPtrArray *
arb_ingest_markets_parse (const char *const *entries, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) market_free);
  g_autoptr(GHashTable) upstreams = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) markets = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; entries != NULL && entries[i] != NULL; i++)
    {
      g_autofree char *entry = g_strstrip (g_strdup (entries[i]));
      const char *colon = strchr (entry, ':');
      ArbIngestMarket *m;

      if (*entry == '\0')
        continue;
      if (colon == NULL || colon == entry || colon[1] == '\0')
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "markets: \"%s\" is not UPSTREAM_ID:MARKET, for example bitcoin:crypto:BTC-USD", entry);
          return NULL;
        }
      m = g_new0 (ArbIngestMarket, 1);
      m->upstream = g_strstrip (g_strndup (entry, (gsize) (colon - entry)));
      m->market = g_strstrip (g_strdup (colon + 1));
      g_ptr_array_add (out, m);
      if (*m->upstream == '\0')
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "markets: \"%s\" is not UPSTREAM_ID:MARKET, for example bitcoin:crypto:BTC-USD", entry);
          return NULL;
        }
      if (!arb_ingest_market_id_check (m->market, NULL))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "markets: in \"%s\", \"%s\" is not a market id such as crypto:BTC-USD (a lower-case "
                       "namespace, a colon, printable characters without spaces)", entry, m->market);
          return NULL;
        }
      if (!g_hash_table_add (upstreams, m->upstream))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "markets: \"%s\" is mapped twice",
                       m->upstream);
          return NULL;
        }
      if (!g_hash_table_add (markets, m->market))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "markets: %s is mapped twice; one instance quotes a market from one upstream id",
                       m->market);
          return NULL;
        }
    }
  if (out->len == 0)
    {
      g_set_error_literal (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "markets: names no market");
      return NULL;
    }
  return g_steal_pointer (&out);
}
