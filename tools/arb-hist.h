/* arb-hist.h - a bounded log-linear latency histogram (HDR-style)
 *
 * Values are unsigned 64-bit integers (arb-bench records nanoseconds).
 * Values below 2^ARB_HIST_SUB_BITS are counted exactly; above that each
 * power-of-two range [2^e, 2^(e+1)) is split into 2^ARB_HIST_SUB_BITS linear
 * buckets, so a bucket is never wider than 1/128 of its lower bound and a
 * reported value (the bucket's midpoint) is within 0.4% of any value that fell
 * into it.  The top of the range is 2^ARB_HIST_MAX_BITS - 1 (about 68.7 s in
 * nanoseconds); larger values are clamped to it and counted in `clamped`.
 *
 * Memory is fixed (ARB_HIST_BUCKETS counters, about 30 KiB) however many
 * values are recorded.  Not thread-safe: give each thread its own and merge.
 */
#pragma once

#include <stdint.h>

#define ARB_HIST_SUB_BITS 7
#define ARB_HIST_SUB_COUNT (1u << ARB_HIST_SUB_BITS)
#define ARB_HIST_MAX_BITS 36
#define ARB_HIST_MAX_VALUE ((UINT64_C (1) << ARB_HIST_MAX_BITS) - 1)
#define ARB_HIST_BUCKETS \
  (ARB_HIST_SUB_COUNT + (ARB_HIST_MAX_BITS - ARB_HIST_SUB_BITS) * ARB_HIST_SUB_COUNT)

typedef struct {
  uint64_t count;    /* values recorded */
  uint64_t clamped;  /* values above ARB_HIST_MAX_VALUE (recorded as it) */
  uint64_t min;      /* exact, UINT64_MAX when empty */
  uint64_t max;      /* exact (after clamping) */
  double sum;        /* for the mean */
  double sum_sq;     /* for the standard deviation */
  uint64_t buckets[ARB_HIST_BUCKETS];
} ArbHist;

void arb_hist_init (ArbHist *h);
void arb_hist_record (ArbHist *h, uint64_t value);
/* adds src's counts to dst */
void arb_hist_merge (ArbHist *dst, const ArbHist *src);
/* the value at percentile p (0 < p <= 100): the smallest recorded value v such
 * that at least p% of the values are <= v, to within the bucket resolution;
 * 0 when the histogram is empty */
uint64_t arb_hist_percentile (const ArbHist *h, double p);
double arb_hist_mean (const ArbHist *h);
double arb_hist_stdev (const ArbHist *h);

/* bucket helpers, exposed for the unit test */
unsigned arb_hist_index (uint64_t value);
uint64_t arb_hist_bucket_low (unsigned index);
uint64_t arb_hist_bucket_high (unsigned index); /* inclusive */
