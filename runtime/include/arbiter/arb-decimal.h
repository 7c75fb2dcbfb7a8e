/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ArbDecimal:
 * @raw: the value times 10^8
 *
 * Money, prices and quantities: a signed 64-bit integer with eight decimal
 * places (range -92,233,720,368.54775808 to 92,233,720,368.54775807). Products
 * and quotients use 128-bit intermediates, every lossy step names its rounding,
 * and overflow is an error, never a wrap. A struct rather than a bare integer so
 * that `+` on two amounts does not compile.
 *
 * Every function below that takes a #GError leaves @out untouched when it
 * fails. Since: 1.0
 */
typedef struct {
  gint64 raw;
} ArbDecimal;

#define ARB_DECIMAL_PLACES 8
#define ARB_DECIMAL_SCALE  G_GINT64_CONSTANT (100000000)
/* room for the longest text arb_decimal_format() writes, "-92233720368.54775808"
 * (21 characters), and the NUL */
#define ARB_DECIMAL_BUFSIZE 32

#define ARB_DECIMAL_ZERO ((ArbDecimal){ 0 })
#define ARB_DECIMAL_ONE  ((ArbDecimal){ ARB_DECIMAL_SCALE })

/**
 * ArbRounding:
 * @ARB_ROUND_HALF_EVEN: to nearest, ties to even (banker's rounding)
 * @ARB_ROUND_HALF_UP: to nearest, ties away from zero
 * @ARB_ROUND_DOWN: toward zero (truncate)
 * @ARB_ROUND_UP: away from zero
 * @ARB_ROUND_FLOOR: toward negative infinity
 * @ARB_ROUND_CEILING: toward positive infinity
 * @ARB_ROUND_EXACT: no rounding allowed: a result that needs it is an
 *   %ARB_DECIMAL_ERROR_PRECISION error
 *
 * Since: 1.0
 */
typedef enum {
  ARB_ROUND_HALF_EVEN,
  ARB_ROUND_HALF_UP,
  ARB_ROUND_DOWN,
  ARB_ROUND_UP,
  ARB_ROUND_FLOOR,
  ARB_ROUND_CEILING,
  ARB_ROUND_EXACT,
} ArbRounding;

#define ARB_DECIMAL_ERROR (arb_decimal_error_quark ())
typedef enum {
  ARB_DECIMAL_ERROR_PARSE,         /* not a decimal number at all */
  ARB_DECIMAL_ERROR_PRECISION,     /* the result needs rounding but ARB_ROUND_EXACT was asked */
  ARB_DECIMAL_ERROR_OVERFLOW,      /* outside the 64-bit range, after rounding */
  ARB_DECIMAL_ERROR_DIVIDE_BY_ZERO,
} ArbDecimalError;

GQuark arb_decimal_error_quark (void);

static inline ArbDecimal
arb_decimal_from_raw (gint64 raw)
{
  ArbDecimal d = { raw };
  return d;
}

/**
 * arb_decimal_parse:
 * @text: e.g. "64250.125", "-0.5", ".5", "+7", "1e-3", "6.18E-06": an optional
 *   sign, digits with an optional '.' that must be followed by a digit, and an
 *   optional exponent (`e` or `E`, optional sign, digits); at most 400 characters
 * @rounding: how to treat digits past the eighth decimal place; %ARB_ROUND_EXACT
 *   refuses them
 * @out: (out): the value; "-0" is zero
 * @error: PARSE for anything that is not a finite decimal number in that form
 *   (empty, spaces, "1.", "NaN", "inf", "0x10", too long); PRECISION for a
 *   non-zero digit past the eighth place under %ARB_ROUND_EXACT; OVERFLOW
 *
 * Since: 1.0
 */
gboolean arb_decimal_parse (const char *text, ArbRounding rounding, ArbDecimal *out, GError **error);

/* writes "-123.45000000" (always eight places) into @buf and returns @buf */
char *arb_decimal_format (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE]);
/* the same, newly allocated */
char *arb_decimal_to_string (ArbDecimal d);
/* shortest form, without trailing zeros or a bare '.': "123.45", "0", "-5", "-0.00000001" */
char *arb_decimal_format_short (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE]);

/* whole units; OVERFLOW beyond ±92,233,720,368 */
gboolean arb_decimal_from_int (gint64 units, ArbDecimal *out, GError **error);
/* a ratio n/d, e.g. basis points: arb_decimal_from_fraction (5, 10000, ...);
 * DIVIDE_BY_ZERO, PRECISION (under ARB_ROUND_EXACT), OVERFLOW */
gboolean arb_decimal_from_fraction (gint64 numerator, gint64 denominator, ArbRounding rounding,
                                    ArbDecimal *out, GError **error);

/* exact; OVERFLOW only */
gboolean arb_decimal_add (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error);
gboolean arb_decimal_sub (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error);
/* the product or quotient rounded once to 8 places; div also fails with DIVIDE_BY_ZERO */
gboolean arb_decimal_mul (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error);
gboolean arb_decimal_div (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error);
/* a × b / c with one rounding step and a 128-bit intermediate */
gboolean arb_decimal_mul_div (ArbDecimal a, ArbDecimal b, ArbDecimal c, ArbRounding rounding,
                              ArbDecimal *out, GError **error);
/* round to @places decimal places (0..8; more is a programmer error), e.g. whole
 * cents with places = 2; rounding up the largest values can OVERFLOW */
gboolean arb_decimal_round (ArbDecimal d, guint places, ArbRounding rounding, ArbDecimal *out, GError **error);
/* OVERFLOW for the raw value INT64_MIN, which has no positive counterpart */
gboolean arb_decimal_neg (ArbDecimal d, ArbDecimal *out, GError **error);
gboolean arb_decimal_abs (ArbDecimal d, ArbDecimal *out, GError **error);

static inline int
arb_decimal_cmp (ArbDecimal a, ArbDecimal b)
{
  return (a.raw > b.raw) - (a.raw < b.raw);
}
static inline gboolean
arb_decimal_is_zero (ArbDecimal d)
{
  return d.raw == 0;
}
static inline gboolean
arb_decimal_is_negative (ArbDecimal d)
{
  return d.raw < 0;
}
static inline ArbDecimal
arb_decimal_min (ArbDecimal a, ArbDecimal b)
{
  return a.raw <= b.raw ? a : b;
}
static inline ArbDecimal
arb_decimal_max (ArbDecimal a, ArbDecimal b)
{
  return a.raw >= b.raw ? a : b;
}

G_END_DECLS
