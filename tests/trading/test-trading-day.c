/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The trading day of a program: where it starts, in its own time zone, across
 * daylight-saving changes. Hand-computed instants (UTC). */
#include "config.h"

#include "arb-trading-private.h"

static gint64
utc (int y, int mo, int d, int h, int mi)
{
  g_autoptr(GDateTime) t = g_date_time_new_utc (y, mo, d, h, mi, 0);
  return g_date_time_to_unix (t) * G_USEC_PER_SEC;
}

static ArbProgram *
program (const char *tz, int reset_minute)
{
  ArbProgram *p = g_new0 (ArbProgram, 1);
  p->timezone = g_time_zone_new_identifier (tz);
  g_assert_nonnull (p->timezone);
  p->reset_minute = reset_minute;
  return p;
}

static void
program_free (ArbProgram *p)
{
  g_time_zone_unref (p->timezone);
  g_free (p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbProgram, program_free)

static void
test_utc_midnight (void)
{
  g_autoptr(ArbProgram) p = program ("UTC", 0);
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 21, 6, 4)), ==, utc (2026, 11, 21, 0, 0));
  g_assert_cmpint (arb_program_next_day_start (p, utc (2026, 11, 21, 6, 4)), ==, utc (2026, 11, 22, 0, 0));
  /* the reset instant itself belongs to the new day */
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 22, 0, 0)), ==, utc (2026, 11, 22, 0, 0));
}

/* Breakout: 00:30 UTC; before it, the day began yesterday */
static void
test_utc_half_past (void)
{
  g_autoptr(ArbProgram) p = program ("UTC", 30);
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 21, 0, 10)), ==, utc (2026, 11, 20, 0, 30));
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 21, 0, 40)), ==, utc (2026, 11, 21, 0, 30));
}

/* FTMO: midnight Prague. CET is UTC+1, CEST UTC+2; 2026-03-29 02:00 CET
 * jumps to 03:00 CEST, 2026-10-25 03:00 CEST falls back to 02:00 CET. */
static void
test_prague_spring_forward (void)
{
  g_autoptr(ArbProgram) p = program ("Europe/Prague", 0);
  gint64 start = arb_program_day_start (p, utc (2026, 3, 29, 12, 0));
  gint64 next = arb_program_next_day_start (p, utc (2026, 3, 29, 12, 0));

  g_assert_cmpint (start, ==, utc (2026, 3, 28, 23, 0));   /* 00:00 CET */
  g_assert_cmpint (next, ==, utc (2026, 3, 29, 22, 0));    /* 00:00 CEST */
  g_assert_cmpint (next - start, ==, 23 * G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC);
}

static void
test_prague_fall_back (void)
{
  g_autoptr(ArbProgram) p = program ("Europe/Prague", 0);
  gint64 start = arb_program_day_start (p, utc (2026, 10, 25, 12, 0));
  gint64 next = arb_program_next_day_start (p, utc (2026, 10, 25, 12, 0));

  g_assert_cmpint (start, ==, utc (2026, 10, 24, 22, 0));  /* 00:00 CEST */
  g_assert_cmpint (next, ==, utc (2026, 10, 25, 23, 0));   /* 00:00 CET */
  g_assert_cmpint (next - start, ==, 25 * G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC);
}

/* Topstep: 17:00 Chicago. CST is UTC-6, CDT UTC-5; DST ends 2026-11-01. */
static void
test_chicago_five_pm (void)
{
  g_autoptr(ArbProgram) p = program ("America/Chicago", 17 * 60);

  /* 2026-10-30 20:00 CDT is after that day's 17:00 CDT reset (22:00 UTC) */
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 10, 31, 1, 0)), ==, utc (2026, 10, 30, 22, 0));
  /* across the change: 17:00 CDT on Oct 31 to 17:00 CST on Nov 1 */
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 1, 12, 0)), ==, utc (2026, 10, 31, 22, 0));
  g_assert_cmpint (arb_program_next_day_start (p, utc (2026, 11, 1, 12, 0)), ==, utc (2026, 11, 1, 23, 0));
  /* just before 17:00 CST the day is still the one that began at 17:00 CDT */
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 11, 1, 22, 59)), ==, utc (2026, 10, 31, 22, 0));
}

/* MT5 server time: UTC+2 in winter, UTC+3 in summer (Europe/Athens follows it) */
static void
test_server_time (void)
{
  g_autoptr(ArbProgram) p = program ("Europe/Athens", 0);
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 7, 1, 12, 0)), ==, utc (2026, 6, 30, 21, 0));
  g_assert_cmpint (arb_program_day_start (p, utc (2026, 1, 15, 12, 0)), ==, utc (2026, 1, 14, 22, 0));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/trading-day/utc/midnight", test_utc_midnight);
  g_test_add_func ("/trading-day/utc/half-past", test_utc_half_past);
  g_test_add_func ("/trading-day/prague/spring-forward", test_prague_spring_forward);
  g_test_add_func ("/trading-day/prague/fall-back", test_prague_fall_back);
  g_test_add_func ("/trading-day/chicago/five-pm", test_chicago_five_pm);
  g_test_add_func ("/trading-day/server-time", test_server_time);
  return g_test_run ();
}
