/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ArbDecimal:
 * @raw: the value times 10^8
 *
 * Money, prices and quantities: a signed 64-bit integer with eight decimal
 * places (range about ±92,233,720,368.54775807). Products and quotients use
 * 128-bit intermediates, every lossy step names its rounding, and overflow is
 * an error, never a wrap. A struct rather than a bare integer so that `+` on two
 * amounts does not compile. Since: 1.0
 */
typedef struct {
  gint64 raw;
} ArbDecimal;

#define ARB_DECIMAL_PLACES 8
#define ARB_DECIMAL_SCALE  G_GINT64_CONSTANT (100000000)
/* longest text arb_decimal_format() writes, with the NUL: "-92233720368.54775808" */
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
  ARB_DECIMAL_ERROR_PRECISION,     /* more than 8 decimal places under ARB_ROUND_EXACT */
  ARB_DECIMAL_ERROR_OVERFLOW,      /* outside the 64-bit range */
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
 * @text: e.g. "64250.125", "-0.5", "1e-3" (exponent allowed), "+7"
 * @rounding: how to treat digits past the eighth decimal place; %ARB_ROUND_EXACT
 *   refuses them
 * @out: (out): the value
 * @error: PARSE for anything that is not a finite decimal number (empty,
 *   spaces, "NaN", "inf", "0x10", "1.", ".5" is accepted), PRECISION,
 *   OVERFLOW
 *
 * Since: 1.0
 */
gboolean arb_decimal_parse (const char *text, ArbRounding rounding, ArbDecimal *out, GError **error);

/* writes "-123.45000000" (always eight places) into @buf and returns @buf */
char *arb_decimal_format (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE]);
/* the same, newly allocated */
char *arb_decimal_to_string (ArbDecimal d);
/* shortest form without trailing zeros: "123.45", "0", "-0.00000001" */
char *arb_decimal_format_short (ArbDecimal d, char buf[ARB_DECIMAL_BUFSIZE]);

gboolean arb_decimal_from_int (gint64 units, ArbDecimal *out, GError **error);
/* a ratio n/d, e.g. basis points: arb_decimal_from_fraction (5, 10000, ...) */
gboolean arb_decimal_from_fraction (gint64 numerator, gint64 denominator, ArbRounding rounding,
                                    ArbDecimal *out, GError **error);

gboolean arb_decimal_add (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error);
gboolean arb_decimal_sub (ArbDecimal a, ArbDecimal b, ArbDecimal *out, GError **error);
gboolean arb_decimal_mul (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error);
gboolean arb_decimal_div (ArbDecimal a, ArbDecimal b, ArbRounding rounding, ArbDecimal *out, GError **error);
/* a × b / c with one rounding step and a 128-bit intermediate */
gboolean arb_decimal_mul_div (ArbDecimal a, ArbDecimal b, ArbDecimal c, ArbRounding rounding,
                              ArbDecimal *out, GError **error);
/* round to @places decimal places (0..8), e.g. whole cents with places = 2 */
gboolean arb_decimal_round (ArbDecimal d, guint places, ArbRounding rounding, ArbDecimal *out, GError **error);
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
