/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include <arbiter/arb-decimal.h>

__extension__ typedef __int128 Wide;
__extension__ typedef unsigned __int128 UWide;

#define D(raw) arb_decimal_from_raw (raw)
#define SCALE  ARB_DECIMAL_SCALE
#define RANGE  "(-92233720368.54775808 to 92233720368.54775807)"
/* what an untouched out parameter still holds */
#define POISON G_GINT64_CONSTANT (0x5a5a5a5a)

static const ArbRounding lossy_modes[] = {
  ARB_ROUND_HALF_EVEN, ARB_ROUND_HALF_UP, ARB_ROUND_DOWN,
  ARB_ROUND_UP, ARB_ROUND_FLOOR, ARB_ROUND_CEILING,
};
static const ArbRounding all_modes[] = {
  ARB_ROUND_HALF_EVEN, ARB_ROUND_HALF_UP, ARB_ROUND_DOWN,
  ARB_ROUND_UP, ARB_ROUND_FLOOR, ARB_ROUND_CEILING, ARB_ROUND_EXACT,
};
static const char *const mode_names[] = {
  "half-even", "half-up", "down", "up", "floor", "ceiling", "exact",
};

/* ---- helpers ---------------------------------------------------------- */

static gint64
parse_ok (const char *text, ArbRounding rounding)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d = { POISON };
  gboolean ok = arb_decimal_parse (text, rounding, &d, &error);

  g_assert_no_error (error);
  g_assert_true (ok);
  return d.raw;
}

static void
parse_fails (const char *text, ArbRounding rounding, ArbDecimalError code)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d = { POISON };
  gboolean ok = arb_decimal_parse (text, rounding, &d, &error);

  if (ok)
    g_test_message ("\"%s\" (%s) parsed as raw %" G_GINT64_FORMAT, text, mode_names[rounding], d.raw);
  g_assert_false (ok);
  g_assert_error (error, ARB_DECIMAL_ERROR, (gint) code);
  g_assert_nonnull (error->message);
  g_assert_cmpint (d.raw, ==, POISON);
}

/* text for num × 10^-(8 + extra) units, written without an exponent */
static char *
ulps_text (Wide num, guint extra)
{
  guint decimals = ARB_DECIMAL_PLACES + extra;
  g_autoptr(GString) digits = g_string_new (NULL);
  UWide mag = num < 0 ? -(UWide) num : (UWide) num;

  do
    {
      g_string_prepend_c (digits, (char) ('0' + (int) (mag % 10)));
      mag /= 10;
    }
  while (mag != 0);
  while (digits->len < decimals + 1)
    g_string_prepend_c (digits, '0');
  g_string_insert_c (digits, digits->len - decimals, '.');
  if (num < 0)
    g_string_prepend_c (digits, '-');
  return g_string_free (g_steal_pointer (&digits), FALSE);
}

/* An independent reference for n / d under each mode: floor division with a
 * remainder in [0, |d|), then a decision per mode, unlike the library's
 * truncating division. */
static gboolean
ref_div (Wide n, Wide d, ArbRounding mode, Wide *q)
{
  Wide fl, rem;

  g_assert_true (d != 0);
  if (d < 0)
    {
      n = -n;
      d = -d;
    }
  fl = n / d;
  rem = n % d;
  if (rem < 0)
    {
      fl -= 1;
      rem += d;
    }
  if (rem == 0)
    {
      *q = fl;
      return TRUE;
    }
  /* the exact value lies strictly between fl and fl + 1 */
  switch (mode)
    {
    case ARB_ROUND_FLOOR:
      *q = fl;
      break;
    case ARB_ROUND_CEILING:
      *q = fl + 1;
      break;
    case ARB_ROUND_DOWN:
      *q = fl < 0 ? fl + 1 : fl;
      break;
    case ARB_ROUND_UP:
      *q = fl < 0 ? fl : fl + 1;
      break;
    case ARB_ROUND_HALF_UP:
      if (2 * rem != d)
        *q = 2 * rem > d ? fl + 1 : fl;
      else
        *q = fl < 0 ? fl : fl + 1;
      break;
    case ARB_ROUND_HALF_EVEN:
      if (2 * rem != d)
        *q = 2 * rem > d ? fl + 1 : fl;
      else
        *q = fl % 2 == 0 ? fl : fl + 1;
      break;
    case ARB_ROUND_EXACT:
    default:
      return FALSE;
    }
  return TRUE;
}

static gboolean
wide_fits (Wide v)
{
  return v >= G_MININT64 && v <= G_MAXINT64;
}

typedef enum { EXPECT_OK, EXPECT_PRECISION, EXPECT_OVERFLOW } Expect;

/* what an operation whose exact result is n / d must do under @mode */
static Expect
expect_div (Wide n, Wide d, ArbRounding mode, gint64 *want)
{
  Wide q;

  if (!ref_div (n, d, mode, &q))
    return EXPECT_PRECISION;
  if (!wide_fits (q))
    return EXPECT_OVERFLOW;
  *want = (gint64) q;
  return EXPECT_OK;
}

static void
check_result (Expect expect, gint64 want, gboolean ok, ArbDecimal got, GError *error)
{
  switch (expect)
    {
    case EXPECT_OK:
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (got.raw, ==, want);
      break;
    case EXPECT_PRECISION:
      g_assert_false (ok);
      g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION);
      g_assert_cmpint (got.raw, ==, POISON);
      break;
    case EXPECT_OVERFLOW:
      g_assert_false (ok);
      g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_OVERFLOW);
      g_assert_cmpint (got.raw, ==, POISON);
      break;
    default:
      g_assert_not_reached ();
    }
}

static gint64
rand_bits64 (void)
{
  guint64 bits = ((guint64) (guint32) g_test_rand_int () << 32) | (guint32) g_test_rand_int ();
  gint64 v;

  memcpy (&v, &bits, sizeof v);
  return v;
}

/* raw values of every size, and the edges more often than chance would pick them */
static gint64
rand_raw (void)
{
  static const gint64 edges[] = {
    0, 1, -1, 2, -2, SCALE, -SCALE, SCALE / 2, -SCALE / 2, SCALE - 1, -SCALE + 1,
    G_MAXINT64, G_MININT64, G_MAXINT64 - 1, G_MININT64 + 1, G_MAXINT64 / 2, G_MININT64 / 2,
    G_GINT64_CONSTANT (3037000499), G_GINT64_CONSTANT (-3037000500),
  };
  gint64 v = rand_bits64 ();

  switch (g_test_rand_int_range (0, 8))
    {
    case 0:
      return edges[g_test_rand_int_range (0, G_N_ELEMENTS (edges))];
    case 1:
    case 2:
    case 3:
    case 4:
      {
        /* uniform in the number of bits, then a random sign */
        guint64 mag = (guint64) v >> g_test_rand_int_range (1, 64);
        return g_test_rand_bit () ? -(gint64) mag : (gint64) mag;
      }
    default:
      return v;
    }
}

static guint
rand_iterations (void)
{
  return g_test_thorough () ? 200000 : 20000;
}

/* ---- the quark and the inline helpers --------------------------------- */

static void
test_error_quark (void)
{
  g_assert_cmpstr (g_quark_to_string (ARB_DECIMAL_ERROR), ==, "arb-decimal-error-quark");
  g_assert_cmpuint (ARB_DECIMAL_ERROR, ==, arb_decimal_error_quark ());
}

static void
test_inline_helpers (void)
{
  ArbDecimal a = D (-5), b = D (7);

  g_assert_cmpint (ARB_DECIMAL_ZERO.raw, ==, 0);
  g_assert_cmpint (ARB_DECIMAL_ONE.raw, ==, 100000000);
  g_assert_cmpint (ARB_DECIMAL_SCALE, ==, 100000000);
  g_assert_cmpint (ARB_DECIMAL_PLACES, ==, 8);
  g_assert_cmpint (arb_decimal_from_raw (G_MININT64).raw, ==, G_MININT64);

  g_assert_cmpint (arb_decimal_cmp (a, b), ==, -1);
  g_assert_cmpint (arb_decimal_cmp (b, a), ==, 1);
  g_assert_cmpint (arb_decimal_cmp (a, a), ==, 0);
  g_assert_cmpint (arb_decimal_cmp (D (G_MININT64), D (G_MAXINT64)), ==, -1);
  g_assert_cmpint (arb_decimal_cmp (D (G_MAXINT64), D (G_MININT64)), ==, 1);
  g_assert_true (arb_decimal_is_zero (ARB_DECIMAL_ZERO));
  g_assert_false (arb_decimal_is_zero (D (1)));
  g_assert_true (arb_decimal_is_negative (a));
  g_assert_false (arb_decimal_is_negative (ARB_DECIMAL_ZERO));
  g_assert_false (arb_decimal_is_negative (b));
  g_assert_cmpint (arb_decimal_min (a, b).raw, ==, -5);
  g_assert_cmpint (arb_decimal_max (a, b).raw, ==, 7);
  g_assert_cmpint (arb_decimal_min (D (G_MININT64), D (G_MAXINT64)).raw, ==, G_MININT64);
  g_assert_cmpint (arb_decimal_max (D (G_MININT64), D (G_MAXINT64)).raw, ==, G_MAXINT64);
}

/* ---- formatting ------------------------------------------------------- */

static void
test_format (void)
{
  static const struct {
    gint64      raw;
    const char *full;
    const char *brief;
  } cases[] = {
    { 0, "0.00000000", "0" },
    { 1, "0.00000001", "0.00000001" },
    { -1, "-0.00000001", "-0.00000001" },
    { 10, "0.00000010", "0.0000001" },
    { -10, "-0.00000010", "-0.0000001" },
    { 50000000, "0.50000000", "0.5" },
    { -50000000, "-0.50000000", "-0.5" },
    { 99999999, "0.99999999", "0.99999999" },
    { 100000000, "1.00000000", "1" },
    { -500000000, "-5.00000000", "-5" },
    { 1000000000, "10.00000000", "10" },
    { -1000000000, "-10.00000000", "-10" },
    { 12345000000, "123.45000000", "123.45" },
    { -12345000000, "-123.45000000", "-123.45" },
    { G_GINT64_CONSTANT (6425012500000), "64250.12500000", "64250.125" },
    { G_GINT64_CONSTANT (100000000000000), "1000000.00000000", "1000000" },
    { G_GINT64_CONSTANT (101), "0.00000101", "0.00000101" },
    { G_MAXINT64, "92233720368.54775807", "92233720368.54775807" },
    { G_MININT64, "-92233720368.54775808", "-92233720368.54775808" },
    { G_MAXINT64 - 7, "92233720368.54775800", "92233720368.547758" },
    { G_MININT64 + 8, "-92233720368.54775800", "-92233720368.547758" },
    { G_GINT64_CONSTANT (9223372036800000000), "92233720368.00000000", "92233720368" },
    { G_GINT64_CONSTANT (-9223372036800000000), "-92233720368.00000000", "-92233720368" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      char *ret;
      g_autofree char *owned = NULL;

      memset (buf, 'X', sizeof buf);
      ret = arb_decimal_format (D (cases[i].raw), buf);
      g_assert_true (ret == buf);
      g_assert_cmpstr (buf, ==, cases[i].full);
      g_assert_cmpuint (strlen (buf), <, ARB_DECIMAL_BUFSIZE);

      memset (buf, 'X', sizeof buf);
      ret = arb_decimal_format_short (D (cases[i].raw), buf);
      g_assert_true (ret == buf);
      g_assert_cmpstr (buf, ==, cases[i].brief);

      owned = arb_decimal_to_string (D (cases[i].raw));
      g_assert_cmpstr (owned, ==, cases[i].full);
    }
}

/* ---- parsing ---------------------------------------------------------- */

static void
test_parse_valid (void)
{
  g_autofree char *leading_zeros = NULL;
  g_autofree char *trailing_zeros = NULL;
  static const struct {
    const char *text;
    gint64      raw;
  } cases[] = {
    { "0", 0 },
    { "-0", 0 },
    { "+0", 0 },
    { "0.0", 0 },
    { "-0.00000000", 0 },
    { "-0.000000000000000000000", 0 },
    { "000", 0 },
    { "1", 100000000 },
    { "-1", -100000000 },
    { "+7", 700000000 },
    { ".5", 50000000 },
    { "-.5", -50000000 },
    { "+.5", 50000000 },
    { "0.5", 50000000 },
    { "00001.50", 150000000 },
    { "64250.125", G_GINT64_CONSTANT (6425012500000) },
    { "-64250.125", G_GINT64_CONSTANT (-6425012500000) },
    { "0.00000001", 1 },
    { "-0.00000001", -1 },
    { "0.000000010000", 1 },
    { "123.45", 12345000000 },
    { "92233720368.54775807", G_MAXINT64 },
    { "+92233720368.54775807", G_MAXINT64 },
    { "-92233720368.54775808", G_MININT64 },
    { "92233720368.547758070000000", G_MAXINT64 },
    { "-92233720368.547758080000000", G_MININT64 },
    { "92233720368", G_GINT64_CONSTANT (9223372036800000000) },
    { "-92233720368", G_GINT64_CONSTANT (-9223372036800000000) },
    { "0000000000000000000000000000000000000001", 100000000 },
    /* exponents */
    { "1e-3", 100000 },
    { "1E3", G_GINT64_CONSTANT (100000000000) },
    { "6.18e-06", 618 },
    { "6.18E-06", 618 },
    { "-6.18e-06", -618 },
    { "6.18e+06", G_GINT64_CONSTANT (618000000000000) },
    { "6.18e06", G_GINT64_CONSTANT (618000000000000) },
    { "1.5E+3", G_GINT64_CONSTANT (150000000000) },
    { "1e0", 100000000 },
    { "1e-0", 100000000 },
    { "1e+0", 100000000 },
    { "-.5e1", -500000000 },
    { "1e-8", 1 },
    { "100e-10", 1 },
    { "0.000000015e1", 15 },
    { "123456789e-8", 123456789 },
    { "123456789012345678e-8", G_GINT64_CONSTANT (123456789012345678) },
    { "9223372036854775807e-8", G_MAXINT64 },
    { "-9223372036854775808e-8", G_MININT64 },
    { "9223372036854775807000e-11", G_MAXINT64 },
    { "0.0000000000000000009223372036854775807e29", G_MAXINT64 },
    { "92233720368547758.07e-6", G_MAXINT64 },
    { "9.223372036854775807e10", G_MAXINT64 },
    { "0e5", 0 },
    { "-0e-5", 0 },
    { "0.0e0", 0 },
    { "0e99999999999999999999999999", 0 },
    { "0e-99999999999999999999999999", 0 },
    { "1e00000000000000000000000000000000000000000000000000000000000000", 100000000 },
    { "1e-00000000000000000000000000000000000000000000000000000000000008", 1 },
    { "1e10", G_GINT64_CONSTANT (1000000000000000000) },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("parsing \"%s\"", cases[i].text);
      g_assert_cmpint (parse_ok (cases[i].text, ARB_ROUND_EXACT), ==, cases[i].raw);
      /* exact input gives the same value under every mode */
      for (gsize m = 0; m < G_N_ELEMENTS (lossy_modes); m++)
        g_assert_cmpint (parse_ok (cases[i].text, lossy_modes[m]), ==, cases[i].raw);
    }

  /* exactly 400 characters is still allowed */
  leading_zeros = g_strnfill (400, '0');
  leading_zeros[399] = '7';
  g_assert_cmpint (parse_ok (leading_zeros, ARB_ROUND_EXACT), ==, 700000000);
  trailing_zeros = g_strnfill (400, '0');
  trailing_zeros[0] = '-';
  trailing_zeros[1] = '3';
  trailing_zeros[2] = '.';
  g_assert_cmpint (parse_ok (trailing_zeros, ARB_ROUND_EXACT), ==, -300000000);
}

static void
test_parse_invalid (void)
{
  static const char *const cases[] = {
    "", " ", "  ", " 1", "1 ", "\t1", "1\n", "\n", "1 000", "+ 1", "- 1", "1e 5", "1 e5",
    "1.", "-1.", "+1.", "1.e5", ".", "-.", "+.", "..1", "1..2", "1.2.3", ".e5", ".e",
    "+", "-", "+-1", "-+1", "--1", "++1", "1-", "1+",
    "0x10", "0X1A", "0x", "0b101", "0o7", "1a", "a1", "1d5", "1f", "1L", "5%", "$5",
    "NaN", "nan", "-nan", "NAN", "inf", "-inf", "+inf", "INF", "Infinity", "-Infinity",
    "e5", "E5", "e", "-e5", "1e", "1E", "1e+", "1e-", "1e5.5", "1e5e5", "1e+-5", "1e--5",
    "1ee5", "1e5 ", "1e0x", "1,5", "1,000.00", "1_000", "1'000",
    "\xd9\xa1",             /* ARABIC-INDIC DIGIT ONE */
    "\xef\xbc\x91",         /* FULLWIDTH DIGIT ONE */
    "\xc2\xbd",             /* VULGAR FRACTION ONE HALF */
    "1\xff", "\xff", "\x01", "1\x7f",
    "\342\210\2221",        /* MINUS SIGN, then 1 */
    "(1)", "1/2", "1e5/2",
  };
  g_autofree char *too_long = g_strnfill (401, '1');
  g_autofree char *too_long_zeros = g_strnfill (401, '0');
  g_autofree char *much_too_long = g_strnfill (100000, '9');

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
      parse_fails (cases[i], all_modes[m], ARB_DECIMAL_ERROR_PARSE);

  parse_fails (too_long, ARB_ROUND_DOWN, ARB_DECIMAL_ERROR_PARSE);
  parse_fails (too_long_zeros, ARB_ROUND_EXACT, ARB_DECIMAL_ERROR_PARSE);
  parse_fails (much_too_long, ARB_ROUND_HALF_EVEN, ARB_DECIMAL_ERROR_PARSE);
}

static void
test_parse_precision (void)
{
  static const char *const cases[] = {
    "0.000000001", "-0.000000001", "12.345678901", "0.123456785", "0.123456789999",
    "1e-9", "-1e-9", "6.18e-13", ".5e-8", "0.00000000000000000000000000001",
    "1.000000000000000000000000000001", "92233720368.547758071", "-92233720368.547758081",
    "1e-99999999999999999999",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    parse_fails (cases[i], ARB_ROUND_EXACT, ARB_DECIMAL_ERROR_PRECISION);

  /* trailing zeros past the eighth place are not a loss */
  g_assert_cmpint (parse_ok ("0.123456780000000000", ARB_ROUND_EXACT), ==, 12345678);
}

static void
test_parse_overflow (void)
{
  static const struct {
    const char *text;
    ArbRounding rounding;
  } cases[] = {
    { "92233720368.54775808", ARB_ROUND_EXACT },
    { "-92233720368.54775809", ARB_ROUND_EXACT },
    { "92233720369", ARB_ROUND_EXACT },
    { "-92233720369", ARB_ROUND_EXACT },
    { "100000000000", ARB_ROUND_EXACT },
    { "1e11", ARB_ROUND_EXACT },
    { "-1e11", ARB_ROUND_EXACT },
    { "1e400", ARB_ROUND_EXACT },
    { "1e99999999999999999999999999", ARB_ROUND_DOWN },
    { "-1e99999999999999999999999999", ARB_ROUND_DOWN },
    { "9223372036854775808e-8", ARB_ROUND_EXACT },
    { "18446744073709551616e-8", ARB_ROUND_EXACT },
    /* 2^64 + 1 units of the eighth place: would wrap to 1 in 64 bits */
    { "184467440737.09551617", ARB_ROUND_EXACT },
    { "184467440737.095516171", ARB_ROUND_DOWN },
    { "1844674407370955161700000e-13", ARB_ROUND_DOWN },
    { "99999999999999999999999999999999999999", ARB_ROUND_DOWN },
    { "999999999999999999999999999999.5", ARB_ROUND_DOWN },
    /* in range only before rounding */
    { "92233720368.547758075", ARB_ROUND_HALF_UP },
    { "92233720368.547758075", ARB_ROUND_HALF_EVEN },
    { "92233720368.547758071", ARB_ROUND_UP },
    { "92233720368.547758071", ARB_ROUND_CEILING },
    { "-92233720368.547758085", ARB_ROUND_HALF_UP },
    { "-92233720368.547758081", ARB_ROUND_UP },
    { "-92233720368.547758081", ARB_ROUND_FLOOR },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    parse_fails (cases[i].text, cases[i].rounding, ARB_DECIMAL_ERROR_OVERFLOW);

  /* the same inputs stay in range when rounding goes the other way */
  g_assert_cmpint (parse_ok ("92233720368.547758075", ARB_ROUND_DOWN), ==, G_MAXINT64);
  g_assert_cmpint (parse_ok ("92233720368.547758079", ARB_ROUND_FLOOR), ==, G_MAXINT64);
  g_assert_cmpint (parse_ok ("-92233720368.547758085", ARB_ROUND_HALF_EVEN), ==, G_MININT64);
  g_assert_cmpint (parse_ok ("-92233720368.547758089", ARB_ROUND_CEILING), ==, G_MININT64);
  g_assert_cmpint (parse_ok ("-92233720368.547758089", ARB_ROUND_DOWN), ==, G_MININT64);
}

static void
test_parse_tiny (void)
{
  /* far below one unit of the eighth place, from an exponent or many zeros */
  static const char *const tiny[] = {
    "1e-99999999999999999999", "0.1e-20", "1e-9",
    "0.0000000000000000000000000000000000000000000000000000000000000000000001",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (tiny); i++)
    {
      g_autofree char *negative = g_strconcat ("-", tiny[i], NULL);

      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_HALF_EVEN), ==, 0);
      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_HALF_UP), ==, 0);
      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_DOWN), ==, 0);
      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_UP), ==, 1);
      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_FLOOR), ==, 0);
      g_assert_cmpint (parse_ok (tiny[i], ARB_ROUND_CEILING), ==, 1);
      parse_fails (tiny[i], ARB_ROUND_EXACT, ARB_DECIMAL_ERROR_PRECISION);

      g_assert_cmpint (parse_ok (negative, ARB_ROUND_HALF_EVEN), ==, 0);
      g_assert_cmpint (parse_ok (negative, ARB_ROUND_HALF_UP), ==, 0);
      g_assert_cmpint (parse_ok (negative, ARB_ROUND_DOWN), ==, 0);
      g_assert_cmpint (parse_ok (negative, ARB_ROUND_UP), ==, -1);
      g_assert_cmpint (parse_ok (negative, ARB_ROUND_FLOOR), ==, -1);
      g_assert_cmpint (parse_ok (negative, ARB_ROUND_CEILING), ==, 0);
      parse_fails (negative, ARB_ROUND_EXACT, ARB_DECIMAL_ERROR_PRECISION);
    }

  /* exactly half a unit, and just above it, as digits and as an exponent */
  g_assert_cmpint (parse_ok ("0.000000005", ARB_ROUND_HALF_EVEN), ==, 0);
  g_assert_cmpint (parse_ok ("5e-9", ARB_ROUND_HALF_UP), ==, 1);
  g_assert_cmpint (parse_ok ("-5e-9", ARB_ROUND_HALF_UP), ==, -1);
  g_assert_cmpint (parse_ok ("0.0000000050000000000000000000000000001", ARB_ROUND_HALF_EVEN), ==, 1);
  g_assert_cmpint (parse_ok ("0.0000000049999999999999999999999999999", ARB_ROUND_HALF_UP), ==, 0);
  g_assert_cmpint (parse_ok ("0.000000015", ARB_ROUND_HALF_EVEN), ==, 2);
  g_assert_cmpint (parse_ok ("0.000000025", ARB_ROUND_HALF_EVEN), ==, 2);
  g_assert_cmpint (parse_ok ("0.0000000250000000000000000000000000001", ARB_ROUND_HALF_EVEN), ==, 3);
}

static void
test_parse_roundtrip (void)
{
  static const gint64 raws[] = {
    0, 1, -1, 2, -2, 9, 10, 99, 100, 12345678, -12345678, 99999999, -99999999,
    SCALE, -SCALE, SCALE + 1, -SCALE - 1, SCALE * 10, G_GINT64_CONSTANT (6425012500000),
    G_GINT64_CONSTANT (123456789012345678), G_GINT64_CONSTANT (-123456789012345678),
    G_GINT64_CONSTANT (9223372036800000000), G_GINT64_CONSTANT (-9223372036800000000),
    G_MAXINT64, G_MAXINT64 - 1, G_MININT64, G_MININT64 + 1, G_MAXINT64 / 2, G_MININT64 / 2,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (raws); i++)
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      g_autofree char *exp_form = g_strdup_printf ("%" G_GINT64_FORMAT "e-8", raws[i]);

      g_assert_cmpint (parse_ok (arb_decimal_format (D (raws[i]), buf), ARB_ROUND_EXACT), ==, raws[i]);
      g_assert_cmpint (parse_ok (arb_decimal_format_short (D (raws[i]), buf), ARB_ROUND_EXACT), ==, raws[i]);
      g_assert_cmpint (parse_ok (exp_form, ARB_ROUND_EXACT), ==, raws[i]);
    }
}

/* ---- rounding tables -------------------------------------------------- */

/* the exact result num/den in units of the eighth place, and what each mode
 * must make of it, in the order of ArbRounding */
typedef struct {
  gint64 num, den;
  gint64 want[6];
} RoundCase;

static const RoundCase round_cases[] = {
  /*  num  den     HE  HU DOWN  UP FLOOR CEIL */
  {     0,  10, {   0,  0,  0,   0,  0,  0 } },
  {    10,  10, {   1,  1,  1,   1,  1,  1 } },
  {   -10,  10, {  -1, -1, -1,  -1, -1, -1 } },
  {     1,  10, {   0,  0,  0,   1,  0,  1 } },
  {     5,  10, {   0,  1,  0,   1,  0,  1 } },
  {     9,  10, {   1,  1,  0,   1,  0,  1 } },
  {    15,  10, {   2,  2,  1,   2,  1,  2 } },
  {    24,  10, {   2,  2,  2,   3,  2,  3 } },
  {    25,  10, {   2,  3,  2,   3,  2,  3 } },
  {    26,  10, {   3,  3,  2,   3,  2,  3 } },
  {    35,  10, {   4,  4,  3,   4,  3,  4 } },
  {    45,  10, {   4,  5,  4,   5,  4,  5 } },
  {    -1,  10, {   0,  0,  0,  -1, -1,  0 } },
  {    -5,  10, {   0, -1,  0,  -1, -1,  0 } },
  {    -9,  10, {  -1, -1,  0,  -1, -1,  0 } },
  {   -15,  10, {  -2, -2, -1,  -2, -2, -1 } },
  {   -24,  10, {  -2, -2, -2,  -3, -3, -2 } },
  {   -25,  10, {  -2, -3, -2,  -3, -3, -2 } },
  {   -26,  10, {  -3, -3, -2,  -3, -3, -2 } },
  {   -35,  10, {  -4, -4, -3,  -4, -4, -3 } },
  {   -45,  10, {  -4, -5, -4,  -5, -5, -4 } },
  {    49, 100, {   0,  0,  0,   1,  0,  1 } },
  {    50, 100, {   0,  1,  0,   1,  0,  1 } },
  {    51, 100, {   1,  1,  0,   1,  0,  1 } },
  {   150, 100, {   2,  2,  1,   2,  1,  2 } },
  {   -49, 100, {   0,  0,  0,  -1, -1,  0 } },
  {   -50, 100, {   0, -1,  0,  -1, -1,  0 } },
  {   -51, 100, {  -1, -1,  0,  -1, -1,  0 } },
  {  -150, 100, {  -2, -2, -1,  -2, -2, -1 } },
  {  7500, 1000, {  8,  8,  7,   8,  7,  8 } },
  { -7500, 1000, { -8, -8, -7,  -8, -8, -7 } },
  {     1,   2, {   0,  1,  0,   1,  0,  1 } },
  {     3,   2, {   2,  2,  1,   2,  1,  2 } },
  {    -1,   2, {   0, -1,  0,  -1, -1,  0 } },
  {    -3,   2, {  -2, -2, -1,  -2, -2, -1 } },
  {     1,   3, {   0,  0,  0,   1,  0,  1 } },
  {     2,   3, {   1,  1,  0,   1,  0,  1 } },
  {    -1,   3, {   0,  0,  0,  -1, -1,  0 } },
  {    -2,   3, {  -1, -1,  0,  -1, -1,  0 } },
  {     1,   4, {   0,  0,  0,   1,  0,  1 } },
  {     3,   4, {   1,  1,  0,   1,  0,  1 } },
  {    -3,   4, {  -1, -1,  0,  -1, -1,  0 } },
  {     7,   1, {   7,  7,  7,   7,  7,  7 } },
  {    -7,   1, {  -7, -7, -7,  -7, -7, -7 } },
};

/* an even number of units, so that adding it keeps ties to even where they were */
#define ROUND_OFFSET G_GINT64_CONSTANT (2000000000000000)

typedef gboolean (*RoundOp) (const RoundCase *c, gint64 offset, ArbRounding rounding,
                             ArbDecimal *out, GError **error);

static gint
power_of_ten (gint64 den)
{
  gint j = 0;

  for (; den > 1 && den % 10 == 0; den /= 10)
    j++;
  return den == 1 ? j : -1;
}

/* run @op over the table, plain and moved away from zero by ROUND_OFFSET units */
static void
check_round_table (const char *what, RoundOp op, gboolean (*applies) (const RoundCase *c))
{
  guint checked = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (round_cases); i++)
    {
      const RoundCase *c = &round_cases[i];

      if (applies != NULL && !applies (c))
        continue;
      for (int shifted = 0; shifted < 2; shifted++)
        {
          gint64 offset = !shifted ? 0 : c->num < 0 ? -ROUND_OFFSET : ROUND_OFFSET;

          for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
            {
              ArbRounding mode = all_modes[m];
              g_autoptr(GError) error = NULL;
              ArbDecimal got = { POISON };
              gboolean ok = op (c, offset, mode, &got, &error);

              g_test_message ("%s: %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " + %" G_GINT64_FORMAT
                              " under %s", what, c->num, c->den, offset, mode_names[mode]);
              if (mode == ARB_ROUND_EXACT && c->num % c->den != 0)
                {
                  check_result (EXPECT_PRECISION, 0, ok, got, error);
                }
              else
                {
                  gint64 want = mode == ARB_ROUND_EXACT ? c->num / c->den : c->want[mode];
                  check_result (EXPECT_OK, want + offset, ok, got, error);
                }
              checked++;
            }
        }
    }
  g_assert_cmpuint (checked, >, 0);
}

static gboolean
applies_power_of_ten (const RoundCase *c)
{
  return power_of_ten (c->den) >= 0;
}

static gboolean
op_parse_digits (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  g_autofree char *text = ulps_text ((Wide) c->num + (Wide) offset * c->den, power_of_ten (c->den));

  return arb_decimal_parse (text, rounding, out, error);
}

static gboolean
op_parse_exponent (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT "E-%d", c->num + offset * c->den,
                                           ARB_DECIMAL_PLACES + power_of_ten (c->den));

  return arb_decimal_parse (text, rounding, out, error);
}

static gboolean
op_from_fraction (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  /* from_fraction takes whole units: scale the denominator by 10^8 */
  return arb_decimal_from_fraction (c->num + offset * c->den, c->den * SCALE, rounding, out, error);
}

static gboolean
op_from_fraction_negated (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out,
                          GError **error)
{
  /* the same ratio with both signs flipped */
  return arb_decimal_from_fraction (-(c->num + offset * c->den), -c->den * SCALE, rounding, out, error);
}

static gboolean
op_div (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  return arb_decimal_div (D (c->num + offset * c->den), D (c->den * SCALE), rounding, out, error);
}

static gboolean
op_div_negated (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  return arb_decimal_div (D (-(c->num + offset * c->den)), D (-c->den * SCALE), rounding, out, error);
}

static gboolean
op_mul_div (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  /* num × 3 / (3 den) */
  return arb_decimal_mul_div (D (c->num + offset * c->den), D (3), D (3 * c->den), rounding, out, error);
}

static gboolean
applies_mul (const RoundCase *c)
{
  return SCALE % c->den == 0;
}

static gboolean
op_mul (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  /* (num + offset·den) ulps × 1/den units */
  return arb_decimal_mul (D (c->num + offset * c->den), D (SCALE / c->den), rounding, out, error);
}

static gboolean
applies_round (const RoundCase *c)
{
  gint j = power_of_ten (c->den);

  return j >= 1 && j <= ARB_DECIMAL_PLACES;
}

static gboolean
op_round (const RoundCase *c, gint64 offset, ArbRounding rounding, ArbDecimal *out, GError **error)
{
  gint j = power_of_ten (c->den);
  ArbDecimal rounded;

  /* raw num at places 8 - j is num/den units of that place; scale back down
   * so that the table's answers apply */
  if (!arb_decimal_round (D (c->num + offset * c->den), ARB_DECIMAL_PLACES - j, rounding, &rounded, error))
    return FALSE;
  g_assert_cmpint (rounded.raw % c->den, ==, 0);
  out->raw = rounded.raw / c->den;
  return TRUE;
}

static void
test_round_table_parse (void)
{
  check_round_table ("parse digits", op_parse_digits, applies_power_of_ten);
  check_round_table ("parse exponent", op_parse_exponent, applies_power_of_ten);
}

static void
test_round_table_from_fraction (void)
{
  check_round_table ("from_fraction", op_from_fraction, NULL);
  check_round_table ("from_fraction negated", op_from_fraction_negated, NULL);
}

static void
test_round_table_div (void)
{
  check_round_table ("div", op_div, NULL);
  check_round_table ("div negated", op_div_negated, NULL);
}

static void
test_round_table_mul (void)
{
  check_round_table ("mul", op_mul, applies_mul);
}

static void
test_round_table_mul_div (void)
{
  check_round_table ("mul_div", op_mul_div, NULL);
}

static void
test_round_table_round (void)
{
  check_round_table ("round", op_round, applies_round);
}

/* ---- arithmetic ------------------------------------------------------- */

static void
check_overflow (gboolean ok, ArbDecimal got, GError *error)
{
  check_result (EXPECT_OVERFLOW, 0, ok, got, error);
}

static void
test_from_int (void)
{
  static const gint64 ok_units[] = {
    0, 1, -1, 42, -42, 64250, 1000000, G_GINT64_CONSTANT (92233720368), G_GINT64_CONSTANT (-92233720368),
  };
  static const gint64 bad_units[] = {
    G_GINT64_CONSTANT (92233720369), G_GINT64_CONSTANT (-92233720369),
    G_GINT64_CONSTANT (100000000000), G_MAXINT64, G_MININT64, G_MAXINT64 / 10, G_MININT64 / 10,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (ok_units); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal d = { POISON };

      g_assert_true (arb_decimal_from_int (ok_units[i], &d, &error));
      g_assert_no_error (error);
      g_assert_cmpint (d.raw, ==, ok_units[i] * SCALE);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_units); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal d = { POISON };
      gboolean ok = arb_decimal_from_int (bad_units[i], &d, &error);

      check_overflow (ok, d, error);
    }
}

static void
test_from_fraction (void)
{
  static const struct {
    gint64      n, d;
    ArbRounding rounding;
    gint64      raw;
  } cases[] = {
    { 5, 10000, ARB_ROUND_EXACT, 50000 },              /* 5 bps */
    { 10, 10000, ARB_ROUND_EXACT, 100000 },            /* 10 bps */
    { 15, 100000, ARB_ROUND_EXACT, 15000 },            /* 1.5 bps */
    { 1, 100000000, ARB_ROUND_EXACT, 1 },
    { -1, 100000000, ARB_ROUND_EXACT, -1 },
    { 1, -100000000, ARB_ROUND_EXACT, -1 },
    { -1, -100000000, ARB_ROUND_EXACT, 1 },
    { 1, 3, ARB_ROUND_HALF_EVEN, 33333333 },
    { 2, 3, ARB_ROUND_HALF_EVEN, 66666667 },
    { 2, 3, ARB_ROUND_DOWN, 66666666 },
    { -2, 3, ARB_ROUND_FLOOR, -66666667 },
    { 2, -3, ARB_ROUND_CEILING, -66666666 },
    { 1, 1000000000, ARB_ROUND_HALF_EVEN, 0 },
    { 1, 1000000000, ARB_ROUND_UP, 1 },
    { 0, 7, ARB_ROUND_EXACT, 0 },
    { 0, G_MININT64, ARB_ROUND_EXACT, 0 },
    { G_GINT64_CONSTANT (92233720368), 1, ARB_ROUND_EXACT, G_GINT64_CONSTANT (9223372036800000000) },
    { G_MAXINT64, G_MAXINT64, ARB_ROUND_EXACT, SCALE },
    { G_MININT64, G_MININT64, ARB_ROUND_EXACT, SCALE },
    { G_MININT64, G_MAXINT64, ARB_ROUND_HALF_EVEN, -SCALE },
    { G_MAXINT64, G_MININT64, ARB_ROUND_HALF_EVEN, -SCALE },
    { G_MAXINT64, G_MININT64, ARB_ROUND_DOWN, -SCALE + 1 },
    { G_MAXINT64, SCALE, ARB_ROUND_EXACT, G_MAXINT64 },
    { G_MININT64, SCALE, ARB_ROUND_EXACT, G_MININT64 },
    { 1, G_MAXINT64, ARB_ROUND_HALF_EVEN, 0 },
    { 1, G_MAXINT64, ARB_ROUND_CEILING, 1 },
    { -1, G_MAXINT64, ARB_ROUND_FLOOR, -1 },
  };
  static const struct {
    gint64 n, d;
  } overflow[] = {
    { G_MAXINT64, 1 }, { G_MININT64, 1 }, { G_MININT64, -1 }, { G_MAXINT64, -1 },
    { G_GINT64_CONSTANT (92233720369), 1 }, { G_GINT64_CONSTANT (-92233720369), 1 },
    { G_GINT64_CONSTANT (922337203686), 10 }, { G_MININT64, -SCALE }, { G_MAXINT64, SCALE - 1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal d = { POISON };
      gboolean ok = arb_decimal_from_fraction (cases[i].n, cases[i].d, cases[i].rounding, &d, &error);

      check_result (EXPECT_OK, cases[i].raw, ok, d, error);
    }
  /* under ARB_ROUND_EXACT an inexact quotient is a PRECISION error first */
  for (gsize i = 0; i < G_N_ELEMENTS (overflow); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (lossy_modes); m++)
      {
        g_autoptr(GError) error = NULL;
        ArbDecimal d = { POISON };
        gboolean ok = arb_decimal_from_fraction (overflow[i].n, overflow[i].d, lossy_modes[m], &d, &error);

        check_overflow (ok, d, error);
      }
  for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal d = { POISON };

      g_assert_false (arb_decimal_from_fraction (1, 0, all_modes[m], &d, &error));
      g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO);
      g_assert_cmpint (d.raw, ==, POISON);
      g_clear_error (&error);
      g_assert_false (arb_decimal_from_fraction (0, 0, all_modes[m], &d, &error));
      g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO);
    }
}

static void
test_add_sub (void)
{
  static const struct {
    gint64 a, b, sum, diff;
  } cases[] = {
    { 0, 0, 0, 0 },
    { 1, 2, 3, -1 },
    { SCALE, -SCALE, 0, 2 * SCALE },
    { G_MAXINT64, 0, G_MAXINT64, G_MAXINT64 },
    { G_MININT64, 0, G_MININT64, G_MININT64 },
    { 0, G_MININT64 + 1, G_MININT64 + 1, G_MAXINT64 },
    { G_MAXINT64 - 1, 1, G_MAXINT64, G_MAXINT64 - 2 },
    { G_MININT64 + 1, -1, G_MININT64, G_MININT64 + 2 },
    { -1, G_MAXINT64, G_MAXINT64 - 1, G_MININT64 },
  };
  static const struct {
    gint64 a, b;
  } add_overflow[] = {
    { G_MAXINT64, 1 }, { 1, G_MAXINT64 }, { G_MININT64, -1 }, { -1, G_MININT64 },
    { G_MAXINT64, G_MAXINT64 }, { G_MININT64, G_MININT64 }, { G_MAXINT64 / 2 + 1, G_MAXINT64 / 2 + 1 },
  }, sub_overflow[] = {
    { G_MININT64, 1 }, { G_MAXINT64, -1 }, { 0, G_MININT64 }, { G_MAXINT64, G_MININT64 },
    { G_MININT64, G_MAXINT64 }, { -2, G_MAXINT64 }, { G_MAXINT64, G_MININT64 + 1 },
  };
  ArbDecimal d = { POISON };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (arb_decimal_add (D (cases[i].a), D (cases[i].b), &d, &error));
      g_assert_no_error (error);
      g_assert_cmpint (d.raw, ==, cases[i].sum);
      g_assert_true (arb_decimal_sub (D (cases[i].a), D (cases[i].b), &d, &error));
      g_assert_no_error (error);
      g_assert_cmpint (d.raw, ==, cases[i].diff);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (add_overflow); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal out = { POISON };
      gboolean ok = arb_decimal_add (D (add_overflow[i].a), D (add_overflow[i].b), &out, &error);

      check_overflow (ok, out, error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (sub_overflow); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal out = { POISON };
      gboolean ok = arb_decimal_sub (D (sub_overflow[i].a), D (sub_overflow[i].b), &out, &error);

      check_overflow (ok, out, error);
    }

  /* NULL error is allowed */
  d.raw = POISON;
  g_assert_false (arb_decimal_add (D (G_MAXINT64), D (1), &d, NULL));
  g_assert_cmpint (d.raw, ==, POISON);
}

static void
test_mul (void)
{
  static const struct {
    const char *a, *b;
    ArbRounding rounding;
    const char *want;
  } cases[] = {
    { "2", "3", ARB_ROUND_EXACT, "6" },
    { "-2", "3", ARB_ROUND_EXACT, "-6" },
    { "-2", "-3", ARB_ROUND_EXACT, "6" },
    { "0", "-3", ARB_ROUND_EXACT, "0" },
    { "1.5", "1.5", ARB_ROUND_EXACT, "2.25" },
    { "64250.125", "0.001", ARB_ROUND_EXACT, "64.250125" },     /* 10 bps */
    { "64250.125", "0.0005", ARB_ROUND_EXACT, "32.1250625" },   /* 5 bps */
    { "0.0001", "0.0001", ARB_ROUND_EXACT, "0.00000001" },
    { "0.0001", "0.00001", ARB_ROUND_HALF_EVEN, "0" },
    { "0.0001", "0.00001", ARB_ROUND_UP, "0.00000001" },
    /* 1.851851835: a tie with an odd last digit */
    { "12345.6789", "0.00015", ARB_ROUND_HALF_EVEN, "1.85185184" },
    { "12345.6789", "0.00015", ARB_ROUND_HALF_UP, "1.85185184" },
    { "12345.6789", "0.00015", ARB_ROUND_DOWN, "1.85185183" },
    /* 1.851851805: a tie with an even last digit */
    { "12345.6787", "0.00015", ARB_ROUND_HALF_EVEN, "1.8518518" },
    { "12345.6787", "0.00015", ARB_ROUND_HALF_UP, "1.85185181" },
    { "-12345.6787", "0.00015", ARB_ROUND_HALF_EVEN, "-1.8518518" },
    { "-12345.6787", "0.00015", ARB_ROUND_HALF_UP, "-1.85185181" },
    { "-12345.6787", "0.00015", ARB_ROUND_FLOOR, "-1.85185181" },
    { "-12345.6787", "0.00015", ARB_ROUND_CEILING, "-1.8518518" },
    { "92233720368.54775807", "1", ARB_ROUND_EXACT, "92233720368.54775807" },
    { "92233720368.54775807", "-1", ARB_ROUND_EXACT, "-92233720368.54775807" },
    { "-92233720368.54775808", "1", ARB_ROUND_EXACT, "-92233720368.54775808" },
    { "-46116860184.27387904", "2", ARB_ROUND_EXACT, "-92233720368.54775808" },
    { "303700.04", "303700.04", ARB_ROUND_EXACT, "92233714296.0016" },
    { "-303700.04", "303700.04", ARB_ROUND_EXACT, "-92233714296.0016" },
    { "92233720368.54775807", "0.00000001", ARB_ROUND_HALF_EVEN, "922.33720369" },
    { "92233720368.54775807", "0.00000001", ARB_ROUND_DOWN, "922.33720368" },
    { "-92233720368.54775808", "0.00000001", ARB_ROUND_HALF_UP, "-922.33720369" },
    { "-92233720368.54775808", "0.00000001", ARB_ROUND_CEILING, "-922.33720368" },
  };
  static const struct {
    const char *a, *b;
  } overflow[] = {
    { "92233720368.54775807", "2" },
    { "92233720368.54775807", "1.00000001" },
    { "-92233720368.54775808", "-1" },
    { "-92233720368.54775808", "1.00000001" },
    { "46116860184.27387904", "2" },
    { "1000000", "1000000" },
    { "-1000000", "1000000" },
    { "92233720368.54775807", "92233720368.54775807" },
    { "-92233720368.54775808", "-92233720368.54775808" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal a, b, want, got = { POISON };
      gboolean ok;

      a.raw = parse_ok (cases[i].a, ARB_ROUND_EXACT);
      b.raw = parse_ok (cases[i].b, ARB_ROUND_EXACT);
      want.raw = parse_ok (cases[i].want, ARB_ROUND_EXACT);
      ok = arb_decimal_mul (a, b, cases[i].rounding, &got, &error);
      g_test_message ("%s * %s", cases[i].a, cases[i].b);
      check_result (EXPECT_OK, want.raw, ok, got, error);
      /* multiplication commutes, rounding included */
      ok = arb_decimal_mul (b, a, cases[i].rounding, &got, &error);
      check_result (EXPECT_OK, want.raw, ok, got, error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (overflow); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (lossy_modes); m++)
      {
        g_autoptr(GError) error = NULL;
        ArbDecimal got = { POISON };
        gboolean ok = arb_decimal_mul (D (parse_ok (overflow[i].a, ARB_ROUND_EXACT)),
                                       D (parse_ok (overflow[i].b, ARB_ROUND_EXACT)),
                                       lossy_modes[m], &got, &error);

        check_overflow (ok, got, error);
      }

  /* exact mode refuses a product with a ninth decimal */
  {
    g_autoptr(GError) error = NULL;
    ArbDecimal got = { POISON };
    gboolean ok = arb_decimal_mul (D (1), D (SCALE / 2), ARB_ROUND_EXACT, &got, &error);

    check_result (EXPECT_PRECISION, 0, ok, got, error);
  }
}

static void
test_div (void)
{
  static const struct {
    const char *a, *b;
    ArbRounding rounding;
    const char *want;
  } cases[] = {
    { "10", "4", ARB_ROUND_EXACT, "2.5" },
    { "-10", "4", ARB_ROUND_EXACT, "-2.5" },
    { "10", "-4", ARB_ROUND_EXACT, "-2.5" },
    { "0", "-4", ARB_ROUND_EXACT, "0" },
    { "1", "3", ARB_ROUND_HALF_EVEN, "0.33333333" },
    { "1", "3", ARB_ROUND_UP, "0.33333334" },
    { "-1", "3", ARB_ROUND_FLOOR, "-0.33333334" },
    { "-1", "3", ARB_ROUND_CEILING, "-0.33333333" },
    { "2", "3", ARB_ROUND_DOWN, "0.66666666" },
    { "2", "3", ARB_ROUND_HALF_UP, "0.66666667" },
    { "1", "0.00000001", ARB_ROUND_EXACT, "100000000" },
    { "920", "0.00000001", ARB_ROUND_EXACT, "92000000000" },
    { "0.00000001", "2", ARB_ROUND_HALF_EVEN, "0" },
    { "0.00000003", "2", ARB_ROUND_HALF_EVEN, "0.00000002" },
    { "0.00000001", "2", ARB_ROUND_HALF_UP, "0.00000001" },
    { "-0.00000001", "2", ARB_ROUND_HALF_UP, "-0.00000001" },
    { "64250.125", "10000", ARB_ROUND_EXACT, "6.4250125" },
    { "92233720368.54775807", "1", ARB_ROUND_EXACT, "92233720368.54775807" },
    { "92233720368.54775807", "-1", ARB_ROUND_EXACT, "-92233720368.54775807" },
    { "-92233720368.54775808", "1", ARB_ROUND_EXACT, "-92233720368.54775808" },
    { "-92233720368.54775808", "2", ARB_ROUND_EXACT, "-46116860184.27387904" },
    { "-92233720368.54775808", "-92233720368.54775808", ARB_ROUND_EXACT, "1" },
    { "92233720368.54775807", "-92233720368.54775808", ARB_ROUND_HALF_EVEN, "-1" },
    { "92233720368.54775807", "-92233720368.54775808", ARB_ROUND_DOWN, "-0.99999999" },
    { "1", "92233720368.54775807", ARB_ROUND_HALF_EVEN, "0" },
    { "1", "92233720368.54775807", ARB_ROUND_UP, "0.00000001" },
  };
  static const struct {
    const char *a, *b;
  } overflow[] = {
    { "92233720368.54775807", "0.5" },
    { "92233720368.54775807", "0.99999999" },
    { "-92233720368.54775808", "-1" },
    { "-92233720368.54775808", "0.00000001" },
    { "1000", "0.00000001" },
    { "-1000", "0.00000001" },
    { "92233720368.54775807", "-0.00000001" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal got = { POISON };
      gboolean ok = arb_decimal_div (D (parse_ok (cases[i].a, ARB_ROUND_EXACT)),
                                     D (parse_ok (cases[i].b, ARB_ROUND_EXACT)),
                                     cases[i].rounding, &got, &error);

      g_test_message ("%s / %s", cases[i].a, cases[i].b);
      check_result (EXPECT_OK, parse_ok (cases[i].want, ARB_ROUND_EXACT), ok, got, error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (overflow); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (lossy_modes); m++)
      {
        g_autoptr(GError) error = NULL;
        ArbDecimal got = { POISON };
        gboolean ok = arb_decimal_div (D (parse_ok (overflow[i].a, ARB_ROUND_EXACT)),
                                       D (parse_ok (overflow[i].b, ARB_ROUND_EXACT)),
                                       lossy_modes[m], &got, &error);

        check_overflow (ok, got, error);
      }
  {
    g_autoptr(GError) error = NULL;
    ArbDecimal got = { POISON };
    gboolean ok = arb_decimal_div (ARB_DECIMAL_ONE, D (3 * SCALE), ARB_ROUND_EXACT, &got, &error);

    check_result (EXPECT_PRECISION, 0, ok, got, error);
  }
}

static void
test_divide_by_zero (void)
{
  static const gint64 dividends[] = { 0, 1, -1, SCALE, G_MAXINT64, G_MININT64 };

  for (gsize i = 0; i < G_N_ELEMENTS (dividends); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
      {
        g_autoptr(GError) error = NULL;
        ArbDecimal got = { POISON };

        g_assert_false (arb_decimal_div (D (dividends[i]), ARB_DECIMAL_ZERO, all_modes[m], &got, &error));
        g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO);
        g_assert_cmpint (got.raw, ==, POISON);
        g_clear_error (&error);

        g_assert_false (arb_decimal_mul_div (D (dividends[i]), D (G_MAXINT64), ARB_DECIMAL_ZERO,
                                             all_modes[m], &got, &error));
        g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO);
        g_assert_cmpint (got.raw, ==, POISON);
        g_clear_error (&error);

        g_assert_false (arb_decimal_from_fraction (dividends[i], 0, all_modes[m], &got, &error));
        g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO);
        g_assert_cmpint (got.raw, ==, POISON);
      }
}

static void
test_mul_div (void)
{
  static const struct {
    gint64      a, b, c;
    ArbRounding rounding;
    gint64      want;
  } cases[] = {
    /* 64250.125 × 10 / 10000: a 10 bps fee */
    { G_GINT64_CONSTANT (6425012500000), 10 * SCALE, 10000 * SCALE, ARB_ROUND_EXACT, 6425012500 },
    /* the intermediate needs more than 64 bits, the result does not */
    { G_MAXINT64, G_MAXINT64, G_MAXINT64, ARB_ROUND_EXACT, G_MAXINT64 },
    { G_MININT64, G_MININT64, G_MININT64, ARB_ROUND_EXACT, G_MININT64 },
    { G_MAXINT64, G_MININT64, G_MININT64, ARB_ROUND_EXACT, G_MAXINT64 },
    { G_MININT64, G_MAXINT64, G_MAXINT64, ARB_ROUND_EXACT, G_MININT64 },
    { G_MININT64, G_MAXINT64, G_MININT64, ARB_ROUND_EXACT, G_MAXINT64 },
    { G_MAXINT64, G_MAXINT64 - 1, G_MAXINT64, ARB_ROUND_EXACT, G_MAXINT64 - 1 },
    { G_MAXINT64, 3, 7, ARB_ROUND_DOWN, G_GINT64_CONSTANT (3952873730080618203) },
    /* one rounding step: 0.00000001 × 0.5 / 0.5 stays 0.00000001, where
     * mul then div would round the middle 0.000000005 to 0 */
    { 1, SCALE / 2, SCALE / 2, ARB_ROUND_EXACT, 1 },
    { 1, SCALE / 2, SCALE / 2, ARB_ROUND_HALF_EVEN, 1 },
    /* (2^32 - 1)(2^32 + 1) / 2 = INT64_MAX + 1/2 */
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_DOWN, G_MAXINT64 },
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_FLOOR, G_MAXINT64 },
    { G_GINT64_CONSTANT (-4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_HALF_UP, G_MININT64 },
    { G_GINT64_CONSTANT (-4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_HALF_EVEN, G_MININT64 },
    { G_GINT64_CONSTANT (-4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_CEILING, G_MININT64 + 1 },
  };
  static const struct {
    gint64      a, b, c;
    ArbRounding rounding;
  } overflow[] = {
    { G_MAXINT64, 2 * SCALE, SCALE, ARB_ROUND_EXACT },
    { G_MININT64, -SCALE, SCALE, ARB_ROUND_EXACT },
    { G_MININT64, SCALE, -SCALE, ARB_ROUND_EXACT },
    { G_MAXINT64, G_MAXINT64, 1, ARB_ROUND_DOWN },
    { G_MAXINT64, G_MAXINT64, G_MAXINT64 - 1, ARB_ROUND_DOWN },
    { G_MININT64, G_MININT64, -1, ARB_ROUND_DOWN },
    /* INT64_MAX + 1/2 leaves the range only when rounded up */
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_HALF_UP },
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_HALF_EVEN },
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_UP },
    { G_GINT64_CONSTANT (4294967295), G_GINT64_CONSTANT (4294967297), 2, ARB_ROUND_CEILING },
    { G_GINT64_CONSTANT (-4294967295), G_GINT64_CONSTANT (4294967297), -2, ARB_ROUND_CEILING },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal got = { POISON };
      gboolean ok = arb_decimal_mul_div (D (cases[i].a), D (cases[i].b), D (cases[i].c),
                                         cases[i].rounding, &got, &error);

      g_test_message ("mul_div case %" G_GSIZE_FORMAT, i);
      check_result (EXPECT_OK, cases[i].want, ok, got, error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (overflow); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal got = { POISON };
      gboolean ok = arb_decimal_mul_div (D (overflow[i].a), D (overflow[i].b), D (overflow[i].c),
                                         overflow[i].rounding, &got, &error);

      g_test_message ("mul_div overflow case %" G_GSIZE_FORMAT, i);
      check_overflow (ok, got, error);
    }

  /* the two-step route loses the unit the single step keeps */
  {
    ArbDecimal mid, two_step;

    g_assert_true (arb_decimal_mul (D (1), D (SCALE / 2), ARB_ROUND_HALF_EVEN, &mid, NULL));
    g_assert_true (arb_decimal_div (mid, D (SCALE / 2), ARB_ROUND_HALF_EVEN, &two_step, NULL));
    g_assert_cmpint (two_step.raw, ==, 0);
  }
}

/* fee arithmetic as the saga does it */
static void
test_fees (void)
{
  ArbDecimal price, qty, bps, fee, rate, ten_k, c, p, one_minus_p, t;
  g_autofree char *s = NULL;
  char buf[ARB_DECIMAL_BUFSIZE];

  price.raw = parse_ok ("64250.125", ARB_ROUND_EXACT);

  /* 10 bps of 64250.125, three ways */
  g_assert_true (arb_decimal_from_int (10, &bps, NULL));
  g_assert_true (arb_decimal_from_int (10000, &ten_k, NULL));
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_EXACT, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "64.25012500");
  g_assert_true (arb_decimal_from_fraction (10, 10000, ARB_ROUND_EXACT, &rate, NULL));
  g_assert_true (arb_decimal_mul (price, rate, ARB_ROUND_EXACT, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format_short (fee, buf), ==, "64.250125");
  g_assert_true (arb_decimal_mul (price, bps, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_div (t, ten_k, ARB_ROUND_EXACT, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format_short (fee, buf), ==, "64.250125");

  /* 3 bps of 64250.12345678 is 19.275037037034: needs rounding */
  price.raw = parse_ok ("64250.12345678", ARB_ROUND_EXACT);
  g_assert_true (arb_decimal_from_int (3, &bps, NULL));
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_HALF_EVEN, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "19.27503704");
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_DOWN, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "19.27503703");
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_CEILING, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "19.27503704");
  g_assert_true (arb_decimal_neg (price, &price, NULL));
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_CEILING, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "-19.27503703");
  g_assert_true (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_FLOOR, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format (fee, buf), ==, "-19.27503704");
  {
    g_autoptr(GError) error = NULL;
    g_assert_false (arb_decimal_mul_div (price, bps, ten_k, ARB_ROUND_EXACT, &fee, &error));
    g_assert_error (error, ARB_DECIMAL_ERROR, ARB_DECIMAL_ERROR_PRECISION);
  }

  /* a Kalshi-style taker fee: ceil to the cent of 0.07 × C × P × (1 − P);
   * 10 contracts at 0.50 → 0.175 → 0.18, 100 contracts → 1.75 */
  rate.raw = parse_ok ("0.07", ARB_ROUND_EXACT);
  p.raw = parse_ok ("0.50", ARB_ROUND_EXACT);
  g_assert_true (arb_decimal_sub (ARB_DECIMAL_ONE, p, &one_minus_p, NULL));
  g_assert_true (arb_decimal_from_int (10, &c, NULL));
  g_assert_true (arb_decimal_mul (rate, c, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_mul (t, p, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_mul (t, one_minus_p, ARB_ROUND_EXACT, &t, NULL));
  g_assert_cmpstr (arb_decimal_format_short (t, buf), ==, "0.175");
  g_assert_true (arb_decimal_round (t, 2, ARB_ROUND_CEILING, &fee, NULL));
  g_assert_cmpstr (arb_decimal_format_short (fee, buf), ==, "0.18");
  g_assert_true (arb_decimal_from_int (100, &qty, NULL));
  g_assert_true (arb_decimal_mul (rate, qty, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_mul (t, p, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_mul (t, one_minus_p, ARB_ROUND_EXACT, &t, NULL));
  g_assert_true (arb_decimal_round (t, 2, ARB_ROUND_CEILING, &fee, NULL));
  s = arb_decimal_to_string (fee);
  g_assert_cmpstr (s, ==, "1.75000000");
}

static void
test_round (void)
{
  static const struct {
    const char *in;
    guint       places;
    const char *want[7]; /* by ArbRounding; NULL: PRECISION */
  } cases[] = {
    { "64250.125", 2, { "64250.12", "64250.13", "64250.12", "64250.13", "64250.12", "64250.13", NULL } },
    { "-64250.125", 2, { "-64250.12", "-64250.13", "-64250.12", "-64250.13", "-64250.13", "-64250.12", NULL } },
    { "64250.135", 2, { "64250.14", "64250.14", "64250.13", "64250.14", "64250.13", "64250.14", NULL } },
    { "64250.1251", 2, { "64250.13", "64250.13", "64250.12", "64250.13", "64250.12", "64250.13", NULL } },
    { "64250.1249", 2, { "64250.12", "64250.12", "64250.12", "64250.13", "64250.12", "64250.13", NULL } },
    { "2.5", 0, { "2", "3", "2", "3", "2", "3", NULL } },
    { "-2.5", 0, { "-2", "-3", "-2", "-3", "-3", "-2", NULL } },
    { "0.5", 0, { "0", "1", "0", "1", "0", "1", NULL } },
    { "-0.5", 0, { "0", "-1", "0", "-1", "-1", "0", NULL } },
    { "0.00000001", 0, { "0", "0", "0", "1", "0", "1", NULL } },
    { "-0.00000001", 0, { "0", "0", "0", "-1", "-1", "0", NULL } },
    { "0.00000001", 7, { "0", "0", "0", "0.0000001", "0", "0.0000001", NULL } },
    { "0.00000005", 7, { "0", "0.0000001", "0", "0.0000001", "0", "0.0000001", NULL } },
    { "0.00000015", 7, { "0.0000002", "0.0000002", "0.0000001", "0.0000002", "0.0000001", "0.0000002", NULL } },
    { "1.5", 1, { "1.5", "1.5", "1.5", "1.5", "1.5", "1.5", "1.5" } },
    { "-1.23456789", 8, { "-1.23456789", "-1.23456789", "-1.23456789", "-1.23456789", "-1.23456789",
                           "-1.23456789", "-1.23456789" } },
    { "92233720368.54775807", 8, { "92233720368.54775807", "92233720368.54775807", "92233720368.54775807",
                                   "92233720368.54775807", "92233720368.54775807", "92233720368.54775807",
                                   "92233720368.54775807" } },
    { "92233720368.54775807", 0, { NULL, NULL, "92233720368", NULL, "92233720368", NULL, NULL } },
    { "-92233720368.54775808", 0, { NULL, NULL, "-92233720368", NULL, NULL, "-92233720368", NULL } },
    { "92233720368.54775807", 7, { NULL, NULL, "92233720368.547758", NULL, "92233720368.547758", NULL, NULL } },
    { "-92233720368.54775808", 7, { NULL, NULL, "-92233720368.547758", NULL, NULL, "-92233720368.547758", NULL } },
    { "12345.67895", 4, { "12345.679", "12345.679", "12345.6789", "12345.679", "12345.6789", "12345.679", NULL } },
    { "-12345.67895", 4, { "-12345.679", "-12345.679", "-12345.6789", "-12345.679", "-12345.679", "-12345.6789",
                           NULL } },
    { "-12345.67885", 4, { "-12345.6788", "-12345.6789", "-12345.6788", "-12345.6789", "-12345.6789",
                           "-12345.6788", NULL } },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
      {
        g_autoptr(GError) error = NULL;
        ArbDecimal got = { POISON };
        ArbRounding mode = all_modes[m];
        gint64 in = parse_ok (cases[i].in, ARB_ROUND_EXACT);
        gboolean ok = arb_decimal_round (D (in), cases[i].places, mode, &got, &error);
        const char *want = cases[i].want[mode];

        g_test_message ("round %s to %u places under %s", cases[i].in, cases[i].places, mode_names[mode]);
        if (want != NULL)
          check_result (EXPECT_OK, parse_ok (want, ARB_ROUND_EXACT), ok, got, error);
        else if (mode == ARB_ROUND_EXACT)
          check_result (EXPECT_PRECISION, 0, ok, got, error);
        else
          check_result (EXPECT_OVERFLOW, 0, ok, got, error);
      }
}

static void
test_round_bad_arguments (void)
{
  if (g_test_subprocess ())
    {
      ArbDecimal d = { POISON };

      /* a programmer error: critical, which the test makes fatal */
      arb_decimal_round (ARB_DECIMAL_ONE, ARB_DECIMAL_PLACES + 1, ARB_ROUND_DOWN, &d, NULL);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*places <= ARB_DECIMAL_PLACES*");
}

static void
test_neg_abs (void)
{
  static const struct {
    gint64 in, neg, abs;
  } cases[] = {
    { 0, 0, 0 },
    { 1, -1, 1 },
    { -1, 1, 1 },
    { SCALE, -SCALE, SCALE },
    { G_MAXINT64, -G_MAXINT64, G_MAXINT64 },
    { -G_MAXINT64, G_MAXINT64, G_MAXINT64 },
    { G_MININT64 + 1, G_MAXINT64, G_MAXINT64 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      ArbDecimal d = { POISON };

      g_assert_true (arb_decimal_neg (D (cases[i].in), &d, &error));
      g_assert_no_error (error);
      g_assert_cmpint (d.raw, ==, cases[i].neg);
      g_assert_true (arb_decimal_abs (D (cases[i].in), &d, &error));
      g_assert_no_error (error);
      g_assert_cmpint (d.raw, ==, cases[i].abs);
    }

  {
    g_autoptr(GError) error = NULL;
    ArbDecimal d = { POISON };
    gboolean ok = arb_decimal_neg (D (G_MININT64), &d, &error);

    check_overflow (ok, d, error);
    g_clear_error (&error);
    ok = arb_decimal_abs (D (G_MININT64), &d, &error);
    check_overflow (ok, d, error);
  }
}

/* ---- error messages --------------------------------------------------- */

static void
assert_parse_message (const char *text, ArbRounding rounding, const char *message)
{
  g_autoptr(GError) error = NULL;
  ArbDecimal d;

  gboolean ok = arb_decimal_parse (text, rounding, &d, &error);

  if (ok)
    g_test_message ("\"%s\" parsed as raw %" G_GINT64_FORMAT, text, d.raw);
  g_assert_false (ok);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_messages (void)
{
  g_autofree char *long_text = g_strnfill (401, '1');
  g_autofree char *long_message = NULL;
  g_autofree char *long_bad = NULL;
  g_autoptr(GError) error = NULL;
  ArbDecimal d;

  assert_parse_message ("12.345678901", ARB_ROUND_EXACT, "\"12.345678901\" has more than 8 decimal places");
  assert_parse_message ("", ARB_ROUND_EXACT, "\"\" is not a decimal number: the text is empty");
  assert_parse_message ("1.", ARB_ROUND_EXACT,
                        "\"1.\" is not a decimal number: expected a digit after '.' at offset 2, found the end");
  assert_parse_message ("12x", ARB_ROUND_DOWN, "\"12x\" is not a decimal number: unexpected 'x' at offset 2");
  assert_parse_message (" 1", ARB_ROUND_DOWN,
                        "\" 1\" is not a decimal number: expected a digit at offset 0, found ' '");
  assert_parse_message ("1e", ARB_ROUND_DOWN,
                        "\"1e\" is not a decimal number: expected an exponent digit at offset 2, found the end");
  assert_parse_message ("NaN", ARB_ROUND_DOWN,
                        "\"NaN\" is not a decimal number: expected a digit at offset 0, found 'N'");
  assert_parse_message ("1\n", ARB_ROUND_DOWN,
                        "\"1\\n\" is not a decimal number: unexpected byte 0x0a at offset 1");
  assert_parse_message ("\xff", ARB_ROUND_DOWN,
                        "\"\\377\" is not a decimal number: expected a digit at offset 0, found byte 0xff");
  assert_parse_message ("1e20", ARB_ROUND_EXACT, "\"1e20\" is out of range " RANGE);
  assert_parse_message ("-92233720368.54775809", ARB_ROUND_EXACT,
                        "\"-92233720368.54775809\" is out of range " RANGE);

  /* a long input is quoted only in part */
  long_message = g_strdup_printf ("\"%.40s...\" is not a decimal number: longer than 400 characters", long_text);
  assert_parse_message (long_text, ARB_ROUND_EXACT, long_message);
  long_bad = g_strdup_printf ("%.60s!", long_text);
  g_assert_false (arb_decimal_parse (long_bad, ARB_ROUND_EXACT, &d, &error));
  g_assert_true (g_str_has_prefix (error->message, "\"1111111111111111111111111111111111111111...\""));
  g_assert_true (g_str_has_suffix (error->message, "unexpected '!' at offset 60"));
  g_clear_error (&error);

  g_assert_false (arb_decimal_add (D (G_MAXINT64), D (1), &d, &error));
  g_assert_cmpstr (error->message, ==, "92233720368.54775807 + 0.00000001 is out of range " RANGE);
  g_clear_error (&error);
  g_assert_false (arb_decimal_sub (D (G_MININT64), D (SCALE), &d, &error));
  g_assert_cmpstr (error->message, ==, "-92233720368.54775808 - 1 is out of range " RANGE);
  g_clear_error (&error);
  g_assert_false (arb_decimal_div (ARB_DECIMAL_ONE, ARB_DECIMAL_ZERO, ARB_ROUND_HALF_EVEN, &d, &error));
  g_assert_cmpstr (error->message, ==, "1 / 0: division by zero");
  g_clear_error (&error);
  g_assert_false (arb_decimal_mul (D (1), D (SCALE / 2), ARB_ROUND_EXACT, &d, &error));
  g_assert_cmpstr (error->message, ==, "0.00000001 * 0.5 is not exact to 8 decimal places");
  g_clear_error (&error);
  g_assert_false (arb_decimal_mul_div (D (SCALE), D (SCALE), ARB_DECIMAL_ZERO, ARB_ROUND_DOWN, &d, &error));
  g_assert_cmpstr (error->message, ==, "1 * 1 / 0: division by zero");
  g_clear_error (&error);
  g_assert_false (arb_decimal_from_int (G_GINT64_CONSTANT (100000000000), &d, &error));
  g_assert_cmpstr (error->message, ==, "100000000000 is out of range " RANGE);
  g_clear_error (&error);
  g_assert_false (arb_decimal_from_fraction (1, 3, ARB_ROUND_EXACT, &d, &error));
  g_assert_cmpstr (error->message, ==, "1/3 is not exact to 8 decimal places");
  g_clear_error (&error);
  g_assert_false (arb_decimal_round (D (150000000), 0, ARB_ROUND_EXACT, &d, &error));
  g_assert_cmpstr (error->message, ==, "1.5 has more than 0 decimal places");
  g_clear_error (&error);
  g_assert_false (arb_decimal_neg (D (G_MININT64), &d, &error));
  g_assert_cmpstr (error->message, ==, "-(-92233720368.54775808) is out of range " RANGE);
}

/* ---- randomized properties -------------------------------------------- */

static void
test_random_roundtrip (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      gint64 raw = rand_raw ();
      char buf[ARB_DECIMAL_BUFSIZE];
      g_autofree char *owned = arb_decimal_to_string (D (raw));
      g_autofree char *exp_form = NULL;
      gint shift = g_test_rand_int_range (0, 12);
      g_autofree char *zeros = g_strnfill (shift, '0');

      g_assert_cmpuint (strlen (owned), <, ARB_DECIMAL_BUFSIZE);
      g_assert_cmpint (parse_ok (owned, ARB_ROUND_EXACT), ==, raw);
      g_assert_cmpint (parse_ok (arb_decimal_format_short (D (raw), buf), ARB_ROUND_EXACT), ==, raw);
      g_assert_cmpint (parse_ok (arb_decimal_format (D (raw), buf), ARB_ROUND_EXACT), ==, raw);
      /* raw × 10^shift × 10^-(8 + shift) */
      exp_form = g_strdup_printf ("%" G_GINT64_FORMAT "%se-%d", raw, zeros, 8 + shift);
      g_assert_cmpint (parse_ok (exp_form, ARB_ROUND_EXACT), ==, raw);
    }
}

/* digits past the eighth place, rounded by parse, against the reference */
static void
test_random_parse_rounding (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      Wide num = rand_raw ();
      guint extra = g_test_rand_int_range (1, 12);
      Wide den = 1;
      g_autofree char *digits = NULL;
      g_autofree char *exp_form = NULL;

      for (guint k = 0; k < extra; k++)
        den *= 10;
      /* plenty of exact ties and near-ties */
      if (g_test_rand_bit ())
        num = num * 10 + (g_test_rand_bit () ? 5 : g_test_rand_int_range (-9, 10));
      digits = ulps_text (num, extra);
      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div (num, den, all_modes[m], &want);
          gboolean ok = arb_decimal_parse (digits, all_modes[m], &got, &error);

          check_result (expect, want, ok, got, error);
        }
      if (num >= G_MININT64 && num <= G_MAXINT64)
        {
          ArbRounding mode = all_modes[g_test_rand_int_range (0, G_N_ELEMENTS (all_modes))];
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div (num, den, mode, &want);
          gboolean ok;

          exp_form = g_strdup_printf ("%" G_GINT64_FORMAT "e-%u", (gint64) num, 8 + extra);
          ok = arb_decimal_parse (exp_form, mode, &got, &error);
          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_add_sub (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal a = D (rand_raw ()), b = D (rand_raw ());
      Wide sum = (Wide) a.raw + b.raw, diff = (Wide) a.raw - b.raw;
      g_autoptr(GError) error = NULL;
      ArbDecimal got = { POISON };
      gboolean ok;

      ok = arb_decimal_add (a, b, &got, &error);
      check_result (wide_fits (sum) ? EXPECT_OK : EXPECT_OVERFLOW, (gint64) sum, ok, got, error);
      if (ok)
        {
          ArbDecimal back;

          /* (a + b) - b == a */
          g_assert_true (arb_decimal_sub (got, b, &back, NULL));
          g_assert_cmpint (back.raw, ==, a.raw);
          /* and a + b == b + a */
          g_assert_true (arb_decimal_add (b, a, &back, NULL));
          g_assert_cmpint (back.raw, ==, got.raw);
        }
      g_clear_error (&error);
      got.raw = POISON;
      ok = arb_decimal_sub (a, b, &got, &error);
      check_result (wide_fits (diff) ? EXPECT_OK : EXPECT_OVERFLOW, (gint64) diff, ok, got, error);
      if (ok)
        g_assert_cmpint (arb_decimal_cmp (a, b), ==, (got.raw > 0) - (got.raw < 0));
    }
}

static void
test_random_mul (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal a = D (rand_raw ()), b = D (rand_raw ());

      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div ((Wide) a.raw * b.raw, SCALE, all_modes[m], &want);
          gboolean ok = arb_decimal_mul (a, b, all_modes[m], &got, &error);

          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_div (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal a = D (rand_raw ()), b = D (rand_raw ());

      if (b.raw == 0)
        continue;
      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div ((Wide) a.raw * SCALE, b.raw, all_modes[m], &want);
          gboolean ok = arb_decimal_div (a, b, all_modes[m], &got, &error);

          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_mul_div (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal a = D (rand_raw ()), b = D (rand_raw ()), c = D (rand_raw ());

      if (c.raw == 0)
        continue;
      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div ((Wide) a.raw * b.raw, c.raw, all_modes[m], &want);
          gboolean ok = arb_decimal_mul_div (a, b, c, all_modes[m], &got, &error);

          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_from_fraction (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      gint64 num = rand_raw ();
      gint64 den = g_test_rand_bit () ? rand_raw () : g_test_rand_int_range (-20000, 20000);

      if (den == 0)
        continue;
      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          gint64 want = 0;
          Expect expect = expect_div ((Wide) num * SCALE, den, all_modes[m], &want);
          gboolean ok = arb_decimal_from_fraction (num, den, all_modes[m], &got, &error);

          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_round (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal d = D (rand_raw ());
      guint places = g_test_rand_int_range (0, ARB_DECIMAL_PLACES + 1);
      gint64 unit = 1;

      for (guint k = places; k < ARB_DECIMAL_PLACES; k++)
        unit *= 10;
      for (gsize m = 0; m < G_N_ELEMENTS (all_modes); m++)
        {
          g_autoptr(GError) error = NULL;
          ArbDecimal got = { POISON };
          Wide q;
          Expect expect;
          gint64 want = 0;
          gboolean ok = arb_decimal_round (d, places, all_modes[m], &got, &error);

          if (!ref_div (d.raw, unit, all_modes[m], &q))
            expect = EXPECT_PRECISION;
          else if (!wide_fits (q * unit))
            expect = EXPECT_OVERFLOW;
          else
            {
              expect = EXPECT_OK;
              want = (gint64) (q * unit);
            }
          check_result (expect, want, ok, got, error);
        }
    }
}

static void
test_random_neg (void)
{
  guint n = rand_iterations ();

  for (guint i = 0; i < n; i++)
    {
      ArbDecimal d = D (rand_raw ()), neg, twice, back;
      g_autoptr(GError) error = NULL;

      if (d.raw == G_MININT64)
        continue;
      g_assert_true (arb_decimal_neg (d, &neg, &error));
      g_assert_no_error (error);
      g_assert_true (arb_decimal_neg (neg, &back, NULL));
      g_assert_cmpint (back.raw, ==, d.raw);
      /* d + (-d) == 0 and d - d == 0 */
      g_assert_true (arb_decimal_add (d, neg, &twice, NULL));
      g_assert_true (arb_decimal_is_zero (twice));
      g_assert_true (arb_decimal_sub (d, d, &twice, NULL));
      g_assert_true (arb_decimal_is_zero (twice));
      g_assert_true (arb_decimal_abs (d, &back, NULL));
      g_assert_cmpint (back.raw, ==, MAX (d.raw, neg.raw));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/decimal/error-quark", test_error_quark);
  g_test_add_func ("/decimal/inline-helpers", test_inline_helpers);
  g_test_add_func ("/decimal/format", test_format);
  g_test_add_func ("/decimal/parse/valid", test_parse_valid);
  g_test_add_func ("/decimal/parse/invalid", test_parse_invalid);
  g_test_add_func ("/decimal/parse/precision", test_parse_precision);
  g_test_add_func ("/decimal/parse/overflow", test_parse_overflow);
  g_test_add_func ("/decimal/parse/tiny", test_parse_tiny);
  g_test_add_func ("/decimal/parse/roundtrip", test_parse_roundtrip);
  g_test_add_func ("/decimal/rounding/parse", test_round_table_parse);
  g_test_add_func ("/decimal/rounding/from-fraction", test_round_table_from_fraction);
  g_test_add_func ("/decimal/rounding/div", test_round_table_div);
  g_test_add_func ("/decimal/rounding/mul", test_round_table_mul);
  g_test_add_func ("/decimal/rounding/mul-div", test_round_table_mul_div);
  g_test_add_func ("/decimal/rounding/round", test_round_table_round);
  g_test_add_func ("/decimal/from-int", test_from_int);
  g_test_add_func ("/decimal/from-fraction", test_from_fraction);
  g_test_add_func ("/decimal/add-sub", test_add_sub);
  g_test_add_func ("/decimal/mul", test_mul);
  g_test_add_func ("/decimal/div", test_div);
  g_test_add_func ("/decimal/divide-by-zero", test_divide_by_zero);
  g_test_add_func ("/decimal/mul-div", test_mul_div);
  g_test_add_func ("/decimal/fees", test_fees);
  g_test_add_func ("/decimal/round", test_round);
  g_test_add_func ("/decimal/round/bad-arguments", test_round_bad_arguments);
  g_test_add_func ("/decimal/neg-abs", test_neg_abs);
  g_test_add_func ("/decimal/messages", test_messages);
  g_test_add_func ("/decimal/random/roundtrip", test_random_roundtrip);
  g_test_add_func ("/decimal/random/parse-rounding", test_random_parse_rounding);
  g_test_add_func ("/decimal/random/add-sub", test_random_add_sub);
  g_test_add_func ("/decimal/random/mul", test_random_mul);
  g_test_add_func ("/decimal/random/div", test_random_div);
  g_test_add_func ("/decimal/random/mul-div", test_random_mul_div);
  g_test_add_func ("/decimal/random/from-fraction", test_random_from_fraction);
  g_test_add_func ("/decimal/random/round", test_random_round);
  g_test_add_func ("/decimal/random/neg", test_random_neg);

  return g_test_run ();
}
