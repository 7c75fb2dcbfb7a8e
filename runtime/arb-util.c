/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>
#include <time.h>

#include "arb-util-private.h"

gboolean
arb_parse_duration_ms (const char *text, gint64 *out_ms, GError **error)
{
  const char *p = text;
  guint64 value = 0;
  guint64 mult;
  gboolean any = FALSE;

  if (text == NULL || *text == '\0')
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "empty duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)");
      return FALSE;
    }
  while (g_ascii_isdigit (*p))
    {
      if (value > G_MAXINT64 / 10)
        goto too_big;
      value = value * 10 + (guint64) (*p - '0');
      any = TRUE;
      p++;
    }
  if (!any)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "\"%s\" is not a duration (write a number with a unit: 250ms, 10s, 5m, 24h, 7d)", text);
      return FALSE;
    }
  if (g_str_equal (p, "ms"))
    mult = 1;
  else if (g_str_equal (p, "s"))
    mult = 1000;
  else if (g_str_equal (p, "m"))
    mult = 60 * 1000;
  else if (g_str_equal (p, "h"))
    mult = 3600 * 1000;
  else if (g_str_equal (p, "d"))
    mult = 24 * 3600 * 1000;
  else
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   *p == '\0' ? "\"%s\" has no unit (write 250ms, 10s, 5m, 24h or 7d)"
                              : "\"%s\" has an unknown unit (use ms, s, m, h or d)",
                   text);
      return FALSE;
    }
  if (value > (guint64) G_MAXINT64 / mult)
    goto too_big;
  *out_ms = (gint64) (value * mult);
  return TRUE;

too_big:
  g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "\"%s\" is too long a duration", text);
  return FALSE;
}

char *
arb_format_duration_ms (gint64 ms)
{
  if (ms != 0 && ms % (24 * 3600 * 1000) == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT "d", ms / (24 * 3600 * 1000));
  if (ms != 0 && ms % (3600 * 1000) == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT "h", ms / (3600 * 1000));
  if (ms != 0 && ms % (60 * 1000) == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT "m", ms / (60 * 1000));
  if (ms != 0 && ms % 1000 == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT "s", ms / 1000);
  return g_strdup_printf ("%" G_GINT64_FORMAT "ms", ms);
}

guint
arb_levenshtein (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *prev = g_new (guint, lb + 1);
  g_autofree guint *cur = g_new (guint, lb + 1);

  for (gsize j = 0; j <= lb; j++)
    prev[j] = (guint) j;
  for (gsize i = 1; i <= la; i++)
    {
      cur[0] = (guint) i;
      for (gsize j = 1; j <= lb; j++)
        {
          guint cost = g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 1]) ? 0 : 1;
          guint best = prev[j] + 1;
          if (cur[j - 1] + 1 < best)
            best = cur[j - 1] + 1;
          if (prev[j - 1] + cost < best)
            best = prev[j - 1] + cost;
          cur[j] = best;
        }
      memcpy (prev, cur, (lb + 1) * sizeof (guint));
    }
  return prev[lb];
}

int
arb_compare_strings (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

const char *
arb_closest_word (const char *word, const char *const *candidates)
{
  const char *best = NULL;
  guint best_dist = G_MAXUINT;
  guint limit;

  if (candidates == NULL)
    return NULL;
  /* near enough: a third of the word, at least two edits */
  limit = MAX (2, (guint) strlen (word) / 3);
  for (guint i = 0; candidates[i] != NULL; i++)
    {
      guint d = arb_levenshtein (word, candidates[i]);
      if (d < best_dist)
        {
          best_dist = d;
          best = candidates[i];
        }
    }
  return best_dist <= limit ? best : NULL;
}

char *
arb_uuid_new (void)
{
  /* a version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 12
   * bits of the sub-millisecond fraction (its method 3), then 62 random
   * bits. Ids made later sort later, so a B-tree index on them takes
   * new entries at its right edge, as it does for a sequence, instead
   * of in random pages all over (fewer page splits, less WAL, a hot set
   * that stays in cache); written without printf: an order takes six */
  static const char hex[] = "0123456789abcdef";
  guint8 bytes[16];
  char *out = g_malloc (37), *p = out;
  gint64 now_us = g_get_real_time ();
  guint64 ms = (guint64) (now_us / 1000);
  guint32 frac = (guint32) ((now_us % 1000) * 4096 / 1000);

  for (guint i = 8; i < 16; i += 4)
    {
      guint32 r = g_random_int ();
      memcpy (bytes + i, &r, 4);
    }
  for (guint i = 0; i < 6; i++)
    bytes[i] = (guint8) (ms >> (40 - 8 * i));
  bytes[6] = (guint8) (0x70 | (frac >> 8)); /* version 7 */
  bytes[7] = (guint8) (frac & 0xff);
  bytes[8] = (guint8) ((bytes[8] & 0x3f) | 0x80); /* RFC 9562 variant */
  for (guint i = 0; i < 16; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        *p++ = '-';
      *p++ = hex[bytes[i] >> 4];
      *p++ = hex[bytes[i] & 0x0f];
    }
  *p = '\0';
  return out;
}

/* days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant) */
gint64
arb_days_from_civil (gint64 y, guint m, guint d)
{
  gint64 era;
  guint yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (guint) (y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (gint64) doe - 719468;
}

void
arb_civil_from_days (gint64 z, gint64 *y, guint *m, guint *d)
{
  gint64 era;
  guint doe, yoe, doy, mp;

  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (guint) (z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (gint64) yoe + era * 400 + (*m <= 2);
}

/* @n digits of @v, zero-padded, at @p; the end */
static char *
put_digits (char *p, guint64 v, int n)
{
  for (int i = n - 1; i >= 0; i--)
    {
      p[i] = (char) ('0' + v % 10);
      v /= 10;
    }
  return p + n;
}

/* "YYYY-MM-DD?hh:mm:ss.uuuuuu" + @suffix, with @sep between date and time,
 * for years 0000 to 9999; by hand rather than strftime or printf: every
 * event and every stored row carries a few of these */
gboolean
arb_format_utc_us (gint64 unix_us, char sep, const char *suffix, char *buf, gsize size)
{
  gint64 days = unix_us / (G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC);
  gint64 rest = unix_us % (G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC);
  gsize suffix_len = strlen (suffix);
  gint64 y;
  guint m, d;
  char *p = buf;

  if (rest < 0)
    {
      rest += G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC;
      days--;
    }
  arb_civil_from_days (days, &y, &m, &d);
  if (y < 0 || y > 9999 || size < 26 + suffix_len + 1)
    {
      g_strlcpy (buf, "invalid-time", size);
      return FALSE;
    }
  p = put_digits (p, (guint64) y, 4);
  *p++ = '-';
  p = put_digits (p, m, 2);
  *p++ = '-';
  p = put_digits (p, d, 2);
  *p++ = sep;
  p = put_digits (p, (guint64) (rest / (G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC)), 2);
  *p++ = ':';
  p = put_digits (p, (guint64) (rest / (60 * G_USEC_PER_SEC) % 60), 2);
  *p++ = ':';
  p = put_digits (p, (guint64) (rest / G_USEC_PER_SEC % 60), 2);
  *p++ = '.';
  p = put_digits (p, (guint64) (rest % G_USEC_PER_SEC), 6);
  memcpy (p, suffix, suffix_len + 1);
  return TRUE;
}

char *
arb_format_time_us_buf (gint64 unix_us, char buf[ARB_TIME_BUFSIZE])
{
  arb_format_utc_us (unix_us, 'T', "Z", buf, ARB_TIME_BUFSIZE);
  return buf;
}

char *
arb_format_time_us (gint64 unix_us)
{
  char buf[ARB_TIME_BUFSIZE];
  return g_strdup (arb_format_time_us_buf (unix_us, buf));
}

gboolean
arb_correlation_id_is_valid (const char *id)
{
  gsize n = 0;

  if (id == NULL)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++, n++)
    {
      if (!(g_ascii_isalnum (*p) || *p == '.' || *p == '_' || *p == '-'))
        return FALSE;
      if (n >= 64)
        return FALSE;
    }
  return n >= 1;
}

gboolean
arb_parse_listen (const char *text, char **out_host, guint16 *out_port, GError **error)
{
  const char *colon;
  g_autofree char *host = NULL;
  guint64 port;
  char *end = NULL;

  if (text == NULL || *text == '\0')
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "empty address");
      return FALSE;
    }
  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');
      if (close == NULL || close[1] != ':')
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "\"%s\" is not HOST:PORT ([::1]:8080 for IPv6)", text);
          return FALSE;
        }
      host = g_strndup (text + 1, (gsize) (close - text - 1));
      colon = close + 1;
    }
  else
    {
      colon = strrchr (text, ':');
      if (colon == NULL)
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "\"%s\" is not HOST:PORT (for example 127.0.0.1:8080)", text);
          return FALSE;
        }
      host = g_strndup (text, (gsize) (colon - text));
    }
  port = g_ascii_strtoull (colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port > 65535)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "\"%s\" has no valid port (0 to 65535; 0 picks a free one)", text);
      return FALSE;
    }
  if (*host == '\0')
    {
      g_free (host);
      host = g_strdup ("0.0.0.0");
    }
  *out_host = g_steal_pointer (&host);
  *out_port = (guint16) port;
  return TRUE;
}
