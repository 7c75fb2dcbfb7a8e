/* test-hist.c - accuracy and bounds of arb-bench's latency histogram */
#include "arb-hist.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* the exact percentile by the same definition: the value of rank ceil(p*n) */
static uint64_t
exact_percentile (const uint64_t *sorted, size_t n, double p)
{
  size_t rank = (size_t) ceil (p / 100.0 * (double) n);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return sorted[rank - 1];
}

static void
check_against_exact (uint64_t *values, size_t n)
{
  ArbHist *h = g_new (ArbHist, 1);
  arb_hist_init (h);
  for (size_t i = 0; i < n; i++)
    arb_hist_record (h, values[i]);
  qsort (values, n, sizeof *values, cmp_u64);

  static const double ps[] = { 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100 };
  for (size_t i = 0; i < G_N_ELEMENTS (ps); i++) {
    uint64_t want = exact_percentile (values, n, ps[i]);
    uint64_t got = arb_hist_percentile (h, ps[i]);
    double rel = want ? fabs ((double) got - (double) want) / (double) want : (double) got;
    if (rel > 0.01)
      g_error ("p%g: histogram %" G_GUINT64_FORMAT ", exact %" G_GUINT64_FORMAT
               " (relative error %.4f)", ps[i], got, want, rel);
  }
  g_assert_cmpuint (h->count, ==, n);
  g_assert_cmpuint (h->min, ==, values[0]);
  g_assert_cmpuint (h->max, ==, values[n - 1]);
  g_free (h);
}

/* every bucket is contiguous with the next and no wider than 1% of its low end */
static void
test_buckets (void)
{
  g_assert_cmpuint (arb_hist_bucket_low (0), ==, 0);
  for (unsigned i = 0; i < ARB_HIST_BUCKETS; i++) {
    uint64_t lo = arb_hist_bucket_low (i), hi = arb_hist_bucket_high (i);
    g_assert_cmpuint (lo, <=, hi);
    g_assert_cmpuint (arb_hist_index (lo), ==, i);
    g_assert_cmpuint (arb_hist_index (hi), ==, i);
    if (lo >= 100)
      g_assert_cmpfloat ((double) (hi - lo + 1) / (double) lo, <=, 0.01);
    if (i + 1 < ARB_HIST_BUCKETS)
      g_assert_cmpuint (arb_hist_bucket_low (i + 1), ==, hi + 1);
  }
  g_assert_cmpuint (arb_hist_bucket_high (ARB_HIST_BUCKETS - 1), ==, ARB_HIST_MAX_VALUE);
  /* 60 s in nanoseconds is inside the range */
  g_assert_cmpuint (ARB_HIST_MAX_VALUE, >, UINT64_C (60000000000));
}

static void
test_empty (void)
{
  ArbHist h;
  arb_hist_init (&h);
  g_assert_cmpuint (arb_hist_percentile (&h, 50), ==, 0);
  g_assert_cmpfloat (arb_hist_mean (&h), ==, 0.0);
}

static void
test_single (void)
{
  ArbHist h;
  arb_hist_init (&h);
  arb_hist_record (&h, 123456);
  for (double p = 1; p <= 100; p += 9)
    g_assert_cmpuint (arb_hist_percentile (&h, p), ==, 123456);
  g_assert_cmpfloat (arb_hist_mean (&h), ==, 123456.0);
}

static void
test_clamp (void)
{
  ArbHist h;
  arb_hist_init (&h);
  arb_hist_record (&h, UINT64_C (100000000000000)); /* 100000 s */
  g_assert_cmpuint (h.clamped, ==, 1);
  g_assert_cmpuint (h.max, ==, ARB_HIST_MAX_VALUE);
  g_assert_cmpuint (arb_hist_percentile (&h, 50), ==, ARB_HIST_MAX_VALUE);
}

/* uniform over 1 us .. 60 s on a log scale: every decade is exercised */
static void
test_log_uniform (void)
{
  GRand *r = g_rand_new_with_seed (42);
  size_t n = 200000;
  uint64_t *v = g_new (uint64_t, n);
  for (size_t i = 0; i < n; i++)
    v[i] = (uint64_t) exp (g_rand_double_range (r, log (1000.0), log (60e9)));
  check_against_exact (v, n);
  g_free (v);
  g_rand_free (r);
}

/* a realistic latency shape: a tight body around 80 us and a long tail */
static void
test_latency_shape (void)
{
  GRand *r = g_rand_new_with_seed (7);
  size_t n = 300000;
  uint64_t *v = g_new (uint64_t, n);
  for (size_t i = 0; i < n; i++) {
    double us = 60 + 40 * g_rand_double (r);
    if (g_rand_int_range (r, 0, 100) == 0)
      us *= 1 + 200 * g_rand_double (r);        /* 1% up to 200x slower */
    v[i] = (uint64_t) (us * 1000);
  }
  check_against_exact (v, n);
  g_free (v);
  g_rand_free (r);
}

/* merging per-thread histograms gives the histogram of all the values */
static void
test_merge (void)
{
  ArbHist *a = g_new (ArbHist, 1), *b = g_new (ArbHist, 1), *all = g_new (ArbHist, 1);
  arb_hist_init (a);
  arb_hist_init (b);
  arb_hist_init (all);
  for (uint64_t i = 1; i <= 10000; i++) {
    uint64_t x = i * 997;
    arb_hist_record (i % 2 ? a : b, x);
    arb_hist_record (all, x);
  }
  arb_hist_merge (a, b);
  g_assert_cmpuint (a->count, ==, all->count);
  g_assert_cmpuint (a->min, ==, all->min);
  g_assert_cmpuint (a->max, ==, all->max);
  for (double p = 0.5; p <= 100; p += 0.5)
    g_assert_cmpuint (arb_hist_percentile (a, p), ==, arb_hist_percentile (all, p));
  g_assert_cmpfloat (fabs (arb_hist_mean (a) - arb_hist_mean (all)), <, 1e-6);
  g_free (a);
  g_free (b);
  g_free (all);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hist/buckets", test_buckets);
  g_test_add_func ("/hist/empty", test_empty);
  g_test_add_func ("/hist/single", test_single);
  g_test_add_func ("/hist/clamp", test_clamp);
  g_test_add_func ("/hist/log-uniform", test_log_uniform);
  g_test_add_func ("/hist/latency-shape", test_latency_shape);
  g_test_add_func ("/hist/merge", test_merge);
  return g_test_run ();
}
