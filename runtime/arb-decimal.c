/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include <arbiter/arb-decimal.h>

/* __extension__ keeps -Wpedantic builds quiet about the GCC/Clang type */
__extension__ typedef __int128 Wide;

/* longest input arb_decimal_parse() reads; keeps the work and the error text bounded */
#define PARSE_MAX_LEN 400
/* how much of a refused input an error message quotes */
#define QUOTE_MAX_LEN 40
/* an exponent beyond this says the same as any larger one, because no input
 * carries more than PARSE_MAX_LEN digits */
#define EXPONENT_CLAMP 100000
#define RANGE_TEXT "-92233720368.54775808 to 92233720368.54775807"

G_DEFINE_QUARK (arb-decimal-error-quark, arb_decimal_error)

static inline gboolean
rounding_is_valid (ArbRounding rounding)
{
  return (guint) rounding <= ARB_ROUND_EXACT;
}

/* Whether a truncated magnitude must step one unit away from zero, given how
 * the discarded, non-zero part compares with one half (-1, 0, +1) and whether
 * the kept magnitude is odd. Not for ARB_ROUND_EXACT: callers fail first. */
static gboolean
round_away (ArbRounding rounding, gboolean negative, int half_cmp, gboolean odd)
{
  switch (rounding)
    {
    case ARB_ROUND_HALF_EVEN:
      return half_cmp > 0 || (half_cmp == 0 && odd);
    case ARB_ROUND_HALF_UP:
      return half_cmp >= 0;
    case ARB_ROUND_DOWN:
      return FALSE;
    case ARB_ROUND_UP:
      return TRUE;
    case ARB_ROUND_FLOOR:
      return negative;
    case ARB_ROUND_CEILING:
      return !negative;
    case ARB_ROUND_EXACT:
    default:
      /* unreachable: the public functions check @rounding on entry */
      return FALSE;
    }
}

/* n / d rounded as asked; FALSE only for an inexact quotient under
 * ARB_ROUND_EXACT. d != 0, and |n| stays well below 2^127, so the truncating
 * division cannot overflow. */
static gboolean
div_round (Wide n, Wide d, ArbRounding rounding, Wide *quotient)
{
  Wide q = n / d;
  Wide r = n % d;
  Wide twice_r, abs_d;
  gboolean negative;
  int half_cmp;

  if (r == 0)
    {
      *quotient = q;
      return TRUE;
    }
  if (rounding == ARB_ROUND_EXACT)
    return FALSE;

  negative = (n < 0) != (d < 0);
  twice_r = 2 * (r < 0 ? -r : r);
  abs_d = d < 0 ? -d : d;
  half_cmp = (twice_r > abs_d) - (twice_r < abs_d);
  if (round_away (rounding, negative, half_cmp, (q & 1) != 0))
    q += negative ? -1 : 1;
  *quotient = q;
  return TRUE;
}

static inline gboolean
wide_fits (Wide v)
{
  return v >= G_MININT64 && v <= G_MAXINT64;
}

/* @lhs is the left operand as text, so that "a * b / c" can share this */
static gboolean
fail_op (GError **error, ArbDecimalError code, const char *lhs, const char *op, ArbDecimal b)
{
  char bbuf[ARB_DECIMAL_BUFSIZE];

  arb_decimal_format_short (b, bbuf);
  if (code == ARB_DECIMAL_ERROR_OVERFLOW)
    g_set_error (error, ARB_DECIMAL_ERROR, code, "%s %s %s is out of range (" RANGE_TEXT ")",
                 lhs, op, bbuf);
  else if (code == ARB_DECIMAL_ERROR_PRECISION)
    g_set_error (error, ARB_DECIMAL_ERROR, code, "%s %s %s is not exact to 8 decimal places",
                 lhs, op, bbuf);
  else
    g_set_error (error, ARB_DECIMAL_ERROR, code, "%s %s %s: division by zero", lhs, op, bbuf);
  return FALSE;
}

static gboolean
fail_binary (GError **error, ArbDecimalError code, ArbDecimal a, const char *op, ArbDecimal b)
{
  char abuf[ARB_DECIMAL_BUFSIZE];

  return fail_op (error, code, arb_decimal_format_short (a, abuf), op, b);
}

/* the input as an error message shows it: quoted, escaped (so that binary
 * garbage stays readable ASCII) and cut short when long */
static char *
quote_input (const char *text)
{
  gsize len = strnlen (text, QUOTE_MAX_LEN + 1);
  g_autofree char *head = g_strndup (text, MIN (len, QUOTE_MAX_LEN));
  g_autofree char *escaped = g_strescape (head, NULL);

  return g_strdup_printf ("\"%s%s\"", escaped, len > QUOTE_MAX_LEN ? "..." : "");
}

/* @expected NULL: @p is simply not allowed there */
static gboolean
fail_parse (GError **error, const char *text, const char *p, const char *expected)
{
  g_autofree char *quoted = quote_input (text);
  char found[32];

  if (*p == '\0')
    g_strlcpy (found, "the end", sizeof found);
  else if (g_ascii_isprint (*p))
    g_snprintf (found, sizeof found, "'%c'", *p);
  else
    g_snprintf (found, sizeof found, "byte 0x%02x", (guint) (guchar) *p);
  if (expected != NULL)
    g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PARSE,
                 "%s is not a decimal number: expected %s at offset %u, found %s",
                 quoted, expected, (guint) (p - text), found);
  else
    g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PARSE,
                 "%s is not a decimal number: unexpected %s at offset %u",
                 quoted, found, (guint) (p - text));
  return FALSE;
}

static gboolean
fail_parse_overflow (GError **error, const char *text)
{
  g_autofree char *quoted = quote_input (text);

  g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
               "%s is out of range (" RANGE_TEXT ")", quoted);
  return FALSE;
}

/* how the digits dropped by rounding compare with one half of the last kept
 * place: @n digits of @s, preceded by @zeros implicit zeros; 2 means they are
 * all zero (nothing is lost) */
static int
dropped_half_cmp (const char *s, gsize n, gint64 zeros)
{
  gboolean all_zero = TRUE;

  for (gsize i = 0; i < n; i++)
    if (s[i] != '0')
      {
        all_zero = FALSE;
        break;
      }
  if (all_zero)
    return 2;
  if (zeros > 0)
    return -1;
  if (s[0] != '5')
    return s[0] > '5' ? 1 : -1;
  for (gsize i = 1; i < n; i++)
    if (s[i] != '0')
      return 1;
  return 0;
}

gboolean
arb_decimal_parse (const char *text, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  const char *p;
  const char *int_start, *frac_start = NULL;
  gsize int_len, frac_len = 0, n;
  gboolean negative = FALSE;
  gint64 exponent = 0, shift;
  char digits[PARSE_MAX_LEN + 1];
  const char *s;
  guint64 mag = 0, limit;
  int half_cmp = 2;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (*text == '\0')
    {
      g_set_error_literal (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PARSE,
                           "\"\" is not a decimal number: the text is empty");
      return FALSE;
    }
  if (strnlen (text, PARSE_MAX_LEN + 1) > PARSE_MAX_LEN)
    {
      g_autofree char *quoted = quote_input (text);

      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PARSE,
                   "%s is not a decimal number: longer than %d characters", quoted, PARSE_MAX_LEN);
      return FALSE;
    }

  /* [+-] digits [. digits] | [+-] . digits, then [eE [+-] digits] */
  p = text;
  if (*p == '+' || *p == '-')
    negative = *p++ == '-';
  int_start = p;
  while (g_ascii_isdigit (*p))
    p++;
  int_len = (gsize) (p - int_start);
  if (*p == '.')
    {
      frac_start = ++p;
      while (g_ascii_isdigit (*p))
        p++;
      frac_len = (gsize) (p - frac_start);
      if (frac_len == 0)
        return fail_parse (error, text, p, "a digit after '.'");
    }
  if (int_len == 0 && frac_len == 0)
    return fail_parse (error, text, p, "a digit");
  if (*p == 'e' || *p == 'E')
    {
      gboolean exp_negative = FALSE;

      p++;
      if (*p == '+' || *p == '-')
        exp_negative = *p++ == '-';
      if (!g_ascii_isdigit (*p))
        return fail_parse (error, text, p, "an exponent digit");
      for (; g_ascii_isdigit (*p); p++)
        exponent = MIN (exponent * 10 + (*p - '0'), EXPONENT_CLAMP);
      if (exp_negative)
        exponent = -exponent;
    }
  if (*p != '\0')
    return fail_parse (error, text, p, NULL);

  /* the value is digits × 10^(shift - 8), so the raw value is digits × 10^shift;
   * the digits are fewer than the characters, so they fit */
  memcpy (digits, int_start, int_len);
  if (frac_len > 0)
    memcpy (digits + int_len, frac_start, frac_len);
  digits[int_len + frac_len] = '\0';
  shift = exponent - (gint64) frac_len + ARB_DECIMAL_PLACES;

  s = digits;
  while (*s == '0')
    s++;
  n = strlen (s);
  if (n == 0)
    {
      /* "-0", "0e999999": zero has no sign and ignores any exponent */
      *out = ARB_DECIMAL_ZERO;
      return TRUE;
    }

  limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  if (shift >= 0)
    {
      /* s starts with a non-zero digit, so it is at least 10^(n-1) and the raw
       * value at least 10^(n-1+shift); 10^19 is above the range, and 19
       * digits always fit in a guint64 */
      if ((gint64) n + shift > 19)
        return fail_parse_overflow (error, text);
      for (gsize i = 0; i < n; i++)
        mag = mag * 10 + (guint64) (s[i] - '0');
      for (gint64 i = 0; i < shift; i++)
        mag *= 10;
    }
  else
    {
      gint64 drop = -shift;
      gsize kept = (gint64) n > drop ? n - (gsize) drop : 0;

      half_cmp = dropped_half_cmp (s + kept, n - kept, drop - (gint64) (n - kept));
      /* a lost digit is reported before a too large value, as the
       * arithmetic functions do */
      if (half_cmp != 2 && rounding == ARB_ROUND_EXACT)
        {
          g_autofree char *quoted = quote_input (text);

          g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION,
                       "%s has more than 8 decimal places", quoted);
          return FALSE;
        }
      if (kept > 19)
        return fail_parse_overflow (error, text);
      for (gsize i = 0; i < kept; i++)
        mag = mag * 10 + (guint64) (s[i] - '0');
    }
  if (mag > limit)
    return fail_parse_overflow (error, text);

  if (half_cmp != 2)
    {
      if (round_away (rounding, negative, half_cmp, (mag & 1) != 0))
        mag++;
      if (mag > limit)
        return fail_parse_overflow (error, text);
    }

  if (!negative)
    out->raw = (gint64) mag;
  else if (mag == (guint64) G_MAXINT64 + 1)
    out->raw = G_MININT64;
  else
    out->raw = -(gint64) mag;
  return TRUE;
}

char *
arb_decimal_format (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE])
{
  /* unsigned negation, so that INT64_MIN has a magnitude too */
  guint64 mag = d.raw < 0 ? 0 - (guint64) d.raw : (guint64) d.raw;

  g_return_val_if_fail (buf != NULL, NULL);

  guint64 whole = mag / (guint64) ARB_DECIMAL_SCALE;
  guint64 frac = mag % (guint64) ARB_DECIMAL_SCALE;
  char digits[24];
  int n = 0;
  char *p = buf;

  /* by hand rather than printf: every order writes a few dozen of these */
  do
    {
      digits[n++] = (char) ('0' + whole % 10);
      whole /= 10;
    }
  while (whole != 0);
  if (d.raw < 0)
    *p++ = '-';
  while (n > 0)
    *p++ = digits[--n];
  *p++ = '.';
  for (int i = 7; i >= 0; i--)
    {
      p[i] = (char) ('0' + frac % 10);
      frac /= 10;
    }
  p[8] = '\0';
  return buf;
}

char *
arb_decimal_to_string (ArbDecimal d)
{
  char buf[ARB_DECIMAL_BUFSIZE];

  return g_strdup (arb_decimal_format (d, buf));
}

char *
arb_decimal_format_short (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE])
{
  char *end;

  g_return_val_if_fail (buf != NULL, NULL);

  arb_decimal_format (d, buf);
  /* there is always a '.', so this stops there at the latest */
  end = buf + strlen (buf);
  while (end[-1] == '0')
    end--;
  if (end[-1] == '.')
    end--;
  *end = '\0';
  return buf;
}

gboolean
arb_decimal_from_int (gint64 units, ArbDecimal *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (units > G_MAXINT64 / ARB_DECIMAL_SCALE || units < G_MININT64 / ARB_DECIMAL_SCALE)
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
                   "%" G_GINT64_FORMAT " is out of range (" RANGE_TEXT ")", units);
      return FALSE;
    }
  out->raw = units * ARB_DECIMAL_SCALE;
  return TRUE;
}

gboolean
arb_decimal_from_fraction (gint64 numerator, gint64 denominator, ArbRounding rounding,
                           ArbDecimal *out, GError **error)
{
  Wide q;

  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (denominator == 0)
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO,
                   "%" G_GINT64_FORMAT "/0: division by zero", numerator);
      return FALSE;
    }
  if (!div_round ((Wide) numerator * ARB_DECIMAL_SCALE, denominator, rounding, &q))
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION,
                   "%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " is not exact to 8 decimal places",
                   numerator, denominator);
      return FALSE;
    }
  if (!wide_fits (q))
    {
      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
                   "%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " is out of range (" RANGE_TEXT ")",
                   numerator, denominator);
      return FALSE;
    }
  out->raw = (gint64) q;
  return TRUE;
}

gboolean
arb_decimal_add (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error)
{
  gint64 sum;

  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (__builtin_add_overflow (a.raw, b.raw, &sum))
    return fail_binary (error, ARB_DECIMAL_ERROR_OVERFLOW, a, "+", b);
  out->raw = sum;
  return TRUE;
}

gboolean
arb_decimal_sub (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error)
{
  gint64 diff;

  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (__builtin_sub_overflow (a.raw, b.raw, &diff))
    return fail_binary (error, ARB_DECIMAL_ERROR_OVERFLOW, a, "-", b);
  out->raw = diff;
  return TRUE;
}

gboolean
arb_decimal_mul (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  Wide q;

  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* |a.raw × b.raw| <= 2^126 */
  if (!div_round ((Wide) a.raw * b.raw, ARB_DECIMAL_SCALE, rounding, &q))
    return fail_binary (error, ARB_DECIMAL_ERROR_PRECISION, a, "*", b);
  if (!wide_fits (q))
    return fail_binary (error, ARB_DECIMAL_ERROR_OVERFLOW, a, "*", b);
  out->raw = (gint64) q;
  return TRUE;
}

gboolean
arb_decimal_div (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  Wide q;

  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (b.raw == 0)
    return fail_binary (error, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO, a, "/", b);
  if (!div_round ((Wide) a.raw * ARB_DECIMAL_SCALE, b.raw, rounding, &q))
    return fail_binary (error, ARB_DECIMAL_ERROR_PRECISION, a, "/", b);
  if (!wide_fits (q))
    return fail_binary (error, ARB_DECIMAL_ERROR_OVERFLOW, a, "/", b);
  out->raw = (gint64) q;
  return TRUE;
}

static gboolean
fail_mul_div (GError **error, ArbDecimalError code, ArbDecimal a, ArbDecimal b, ArbDecimal c)
{
  char abuf[ARB_DECIMAL_BUFSIZE], bbuf[ARB_DECIMAL_BUFSIZE];
  g_autofree char *lhs = g_strdup_printf ("%s * %s", arb_decimal_format_short (a, abuf),
                                          arb_decimal_format_short (b, bbuf));

  return fail_op (error, code, lhs, "/", c);
}

gboolean
arb_decimal_mul_div (ArbDecimal a, ArbDecimal b, ArbDecimal c, ArbRounding rounding,
                     ArbDecimal *out, GError **error)
{
  Wide q;

  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (c.raw == 0)
    return fail_mul_div (error, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO, a, b, c);
  /* (a/S)(b/S)/(c/S) = ab/c/S: the raw result is a.raw × b.raw / c.raw */
  if (!div_round ((Wide) a.raw * b.raw, c.raw, rounding, &q))
    return fail_mul_div (error, ARB_DECIMAL_ERROR_PRECISION, a, b, c);
  if (!wide_fits (q))
    return fail_mul_div (error, ARB_DECIMAL_ERROR_OVERFLOW, a, b, c);
  out->raw = (gint64) q;
  return TRUE;
}

gboolean
arb_decimal_round (ArbDecimal d, guint places, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  Wide unit = 1, q;

  g_return_val_if_fail (places <= ARB_DECIMAL_PLACES, FALSE);
  g_return_val_if_fail (rounding_is_valid (rounding), FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (guint i = places; i < ARB_DECIMAL_PLACES; i++)
    unit *= 10;
  if (!div_round (d.raw, unit, rounding, &q))
    {
      char buf[ARB_DECIMAL_BUFSIZE];

      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION,
                   "%s has more than %u decimal places", arb_decimal_format_short (d, buf), places);
      return FALSE;
    }
  /* rounding up the largest values leaves the range */
  q *= unit;
  if (!wide_fits (q))
    {
      char buf[ARB_DECIMAL_BUFSIZE];

      g_set_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
                   "%s rounded to %u decimal places is out of range (" RANGE_TEXT ")",
                   arb_decimal_format_short (d, buf), places);
      return FALSE;
    }
  out->raw = (gint64) q;
  return TRUE;
}

gboolean
arb_decimal_neg (ArbDecimal d, ArbDecimal *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* two's complement has no positive counterpart of INT64_MIN */
  if (d.raw == G_MININT64)
    {
      g_set_error_literal (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
                           "-(-92233720368.54775808) is out of range (" RANGE_TEXT ")");
      return FALSE;
    }
  out->raw = -d.raw;
  return TRUE;
}

gboolean
arb_decimal_abs (ArbDecimal d, ArbDecimal *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (d.raw == G_MININT64)
    {
      g_set_error_literal (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW,
                           "abs(-92233720368.54775808) is out of range (" RANGE_TEXT ")");
      return FALSE;
    }
  out->raw = d.raw < 0 ? -d.raw : d.raw;
  return TRUE;
}
