/* arb-hist.c - a bounded log-linear latency histogram; see arb-hist.h */
#include "arb-hist.h"

#include <math.h>
#include <string.h>

void
arb_hist_init (ArbHist *h)
{
  memset (h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

unsigned
arb_hist_index (uint64_t value)
{
  if (value > ARB_HIST_MAX_VALUE)
    value = ARB_HIST_MAX_VALUE;
  if (value < ARB_HIST_SUB_COUNT)
    return (unsigned) value;
  unsigned e = 63u - (unsigned) __builtin_clzll (value); /* >= SUB_BITS */
  unsigned shift = e - ARB_HIST_SUB_BITS;
  /* (value >> shift) is in [SUB_COUNT, 2 * SUB_COUNT) */
  return shift * ARB_HIST_SUB_COUNT + (unsigned) (value >> shift);
}

uint64_t
arb_hist_bucket_low (unsigned index)
{
  if (index < ARB_HIST_SUB_COUNT)
    return index;
  unsigned shift = (index >> ARB_HIST_SUB_BITS) - 1;
  uint64_t m = (index & (ARB_HIST_SUB_COUNT - 1)) + ARB_HIST_SUB_COUNT;
  return m << shift;
}

uint64_t
arb_hist_bucket_high (unsigned index)
{
  if (index < ARB_HIST_SUB_COUNT)
    return index;
  unsigned shift = (index >> ARB_HIST_SUB_BITS) - 1;
  return arb_hist_bucket_low (index) + (UINT64_C (1) << shift) - 1;
}

void
arb_hist_record (ArbHist *h, uint64_t value)
{
  if (value > ARB_HIST_MAX_VALUE) {
    value = ARB_HIST_MAX_VALUE;
    h->clamped++;
  }
  h->buckets[arb_hist_index (value)]++;
  h->count++;
  if (value < h->min)
    h->min = value;
  if (value > h->max)
    h->max = value;
  double v = (double) value;
  h->sum += v;
  h->sum_sq += v * v;
}

void
arb_hist_merge (ArbHist *dst, const ArbHist *src)
{
  for (unsigned i = 0; i < ARB_HIST_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->clamped += src->clamped;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
  dst->sum += src->sum;
  dst->sum_sq += src->sum_sq;
}

uint64_t
arb_hist_percentile (const ArbHist *h, double p)
{
  if (h->count == 0)
    return 0;
  if (p >= 100.0)
    return h->max;
  if (p < 0.0)
    p = 0.0;
  /* rank of the wanted value, 1-based: the smallest with >= p% at or below */
  uint64_t rank = (uint64_t) ceil (p / 100.0 * (double) h->count);
  if (rank < 1)
    rank = 1;
  if (rank > h->count)
    rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < ARB_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t lo = arb_hist_bucket_low (i), hi = arb_hist_bucket_high (i);
      uint64_t v = lo + (hi - lo) / 2;
      if (v < h->min)
        v = h->min;
      if (v > h->max)
        v = h->max;
      return v;
    }
  }
  return h->max;
}

double
arb_hist_mean (const ArbHist *h)
{
  return h->count ? h->sum / (double) h->count : 0.0;
}

double
arb_hist_stdev (const ArbHist *h)
{
  if (h->count < 2)
    return 0.0;
  double n = (double) h->count;
  double mean = h->sum / n;
  double var = h->sum_sq / n - mean * mean;
  return var > 0.0 ? sqrt (var) : 0.0;
}
