/*
 * common/prom.h: the Prometheus text exposition format (version 0.0.4), written, and the
 * per-worker histogram that metrics are merged from.
 *
 * A prom_t writes one exposition through a write callback (the admin server's body, a buffer
 * in a test): families with their # HELP and # TYPE lines, then their samples. Label values
 * are escaped (backslash, double quote, newline), HELP text too (backslash, newline); values
 * are integers when they are whole, else shortest-round-trip doubles, with +Inf, -Inf and NaN
 * spelled as the format wants. The writer allocates nothing; the first failed write makes
 * every later call a no-op and prom_failed() tells.
 *
 * Families must be written one at a time, every sample of a family right after its header
 * (the format's rule): collectors own disjoint sets of names.
 *
 * prom_hist_t is a histogram with fixed upper bounds, counts per bucket (not cumulative),
 * a sum and a count. A worker owns one and observes into it with plain stores (no atomics,
 * no allocation); the control loop merges copies (prom_hist_merge) shipped by the worker's
 * periodic snapshot, and prom_histogram() writes the cumulative _bucket series, _sum and
 * _count.
 */
#ifndef MESH_PROM_H
#define MESH_PROM_H

#include <stddef.h>
#include <stdint.h>

/** Metric types (the # TYPE line). */
typedef enum { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_UNTYPED } prom_type_t;

/** One label: name (a valid label name, written as is) and value (escaped when written). */
typedef struct prom_label {
    const char *name;
    const char *value;
} prom_label_t;

/** Writes n bytes; 0, or -1 to fail the exposition. */
typedef int (*prom_write_fn)(void *ud, const void *data, size_t n);

/** A writer. */
typedef struct prom {
    prom_write_fn write;
    void *ud;
    int failed;
    size_t families, samples;
} prom_t;

/** Starts a writer over write(ud, ...). */
void prom_init(prom_t *p, prom_write_fn write, void *ud);

/** Nonzero once a write failed. */
int prom_failed(const prom_t *p);

/** Writes a family's header: "# HELP name help" and "# TYPE name type". */
void prom_family(prom_t *p, const char *name, prom_type_t type, const char *help);

/** Writes one sample "name{labels} value" with a double value. */
void prom_sample(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                 double value);

/** Writes one sample with an exact unsigned integer value (counters beyond 2^53 stay exact). */
void prom_sample_u64(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                     uint64_t value);

/** A family of one unlabelled sample: header and value (counters and gauges). */
void prom_one(prom_t *p, const char *name, prom_type_t type, const char *help, double value);

/** Nonzero when s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int prom_name_ok(const char *s);

/* ---- histograms ------------------------------------------------------------------------- */

/** Most finite bounds a histogram may have (the +Inf bucket comes on top). */
#define PROM_HIST_MAX_BOUNDS 32

/** A histogram: bounds shared (static), counts per bucket, the last for +Inf. The fields an
 *  observation writes besides its bucket come first, beside the low buckets (one cache line
 *  for most observations, with the fields of the struct before it). */
typedef struct prom_hist {
    const double *bounds; /* ascending upper bounds, n_bounds of them */
    uint32_t n_bounds;
    uint32_t last; /* the bucket of the last observation: observations come in runs */
    uint64_t count;
    double sum;
    uint64_t counts[PROM_HIST_MAX_BOUNDS + 1];
} prom_hist_t;

/** Log-linear latency bounds in seconds, as Linkerd's: 1, 2, 3, 4, 5 in each decade from
 *  100 us to 50 s (PROM_LATENCY_BOUNDS of them). */
#define PROM_LATENCY_BOUNDS 30
extern const double prom_latency_bounds[PROM_LATENCY_BOUNDS];

/** Initializes h over bounds (n at most PROM_HIST_MAX_BOUNDS, ascending; not copied).
 *  0, or -1 when the bounds are not usable. */
int prom_hist_init(prom_hist_t *h, const double *bounds, uint32_t n);

/** Observes v: the first bucket whose bound is >= v, else +Inf (the last observation's bucket
 *  when it is that one, else a binary search). */
void prom_hist_observe(prom_hist_t *h, double v);

/** Adds src's counts into dst (same bounds). 0, or -1 when the bounds differ. */
int prom_hist_merge(prom_hist_t *dst, const prom_hist_t *src);

/** Writes the samples name_bucket{labels,le="..."} (cumulative), name_sum and name_count; the
 *  family's header comes from prom_family(p, name, PROM_HISTOGRAM, help). */
void prom_histogram(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                    const prom_hist_t *h);

#endif
