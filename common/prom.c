/*
 * common/prom.c: the Prometheus text exposition writer and histograms (see common/prom.h).
 */
#include "common/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(prom_t *p, prom_write_fn write, void *ud)
{
    *p = (prom_t){.write = write, .ud = ud};
}

int prom_failed(const prom_t *p)
{
    return p->failed;
}

static void put(prom_t *p, const char *s, size_t n)
{
    if (p->failed || n == 0)
        return;
    if (p->write(p->ud, s, n) != 0)
        p->failed = 1;
}

static void puts_(prom_t *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Writes s escaped: backslash and newline always, the double quote when quoted (label
 * values; HELP text keeps its quotes). Runs of plain bytes go out in one write. */
static void put_escaped(prom_t *p, const char *s, int quoted)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\'              ? "\\\\"
                          : *s == '\n'            ? "\\n"
                          : (quoted && *s == '"') ? "\\\""
                                                  : NULL;
        if (!rep)
            continue;
        put(p, run, (size_t)(s - run));
        puts_(p, rep);
        run = s + 1;
    }
    put(p, run, (size_t)(s - run));
}

int prom_name_ok(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

void prom_family(prom_t *p, const char *name, prom_type_t type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "untyped"};
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help ? help : "", 0);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, types[type <= PROM_UNTYPED ? type : PROM_UNTYPED]);
    puts_(p, "\n");
    p->families++;
}

/* name{a="x",b="y"[,extra="v"]} */
static void put_series(prom_t *p, const char *name, const char *suffix, const prom_label_t *labels,
                       size_t n, const char *extra_name, const char *extra_value)
{
    puts_(p, name);
    if (suffix)
        puts_(p, suffix);
    if (n == 0 && !extra_name)
        return;
    puts_(p, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            puts_(p, ",");
        puts_(p, labels[i].name);
        puts_(p, "=\"");
        put_escaped(p, labels[i].value ? labels[i].value : "", 1);
        puts_(p, "\"");
    }
    if (extra_name) {
        if (n)
            puts_(p, ",");
        puts_(p, extra_name);
        puts_(p, "=\"");
        put_escaped(p, extra_value, 1);
        puts_(p, "\"");
    }
    puts_(p, "}");
}

/* The format's float: integers plainly, +Inf/-Inf/NaN spelled out, else the shortest %g that
 * reads back the same double. */
static int format_value(char *out, size_t cap, double v)
{
    if (isnan(v))
        return snprintf(out, cap, "NaN");
    if (isinf(v))
        return snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return snprintf(out, cap, "%lld", (long long)v);
    for (int prec = 6; prec <= 17; prec++) {
        int n = snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return n;
    }
    return snprintf(out, cap, "%.17g", v);
}

void prom_sample(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                 double value)
{
    char num[40];
    put_series(p, name, NULL, labels, n_labels, NULL, NULL);
    puts_(p, " ");
    format_value(num, sizeof(num), value);
    puts_(p, num);
    puts_(p, "\n");
    p->samples++;
}

void prom_sample_u64(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                     uint64_t value)
{
    char num[24];
    put_series(p, name, NULL, labels, n_labels, NULL, NULL);
    snprintf(num, sizeof(num), " %" PRIu64 "\n", value);
    puts_(p, num);
    p->samples++;
}

void prom_one(prom_t *p, const char *name, prom_type_t type, const char *help, double value)
{
    prom_family(p, name, type, help);
    prom_sample(p, name, NULL, 0, value);
}

/* ---- histograms ------------------------------------------------------------------------- */

const double prom_latency_bounds[PROM_LATENCY_BOUNDS] = {
    0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.01,   0.02,   0.03,   0.04,   0.05,   0.1,   0.2,   0.3,   0.4,   0.5,
    1,      2,      3,      4,      5,      10,    20,    30,    40,    50,
};

int prom_hist_init(prom_hist_t *h, const double *bounds, uint32_t n)
{
    memset(h, 0, sizeof(*h));
    if (n > PROM_HIST_MAX_BOUNDS || (n && !bounds))
        return -1;
    for (uint32_t i = 0; i < n; i++)
        if (isnan(bounds[i]) || isinf(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
            return -1;
    h->bounds = bounds;
    h->n_bounds = n;
    return 0;
}

void prom_hist_observe(prom_hist_t *h, double v)
{
    uint32_t lo = h->last, n = h->n_bounds;
    /* bucket lo is the answer when bounds[lo - 1] < v <= bounds[lo] (with -Inf and +Inf at the
       ends); latencies of a service come in runs, so most observations stop here */
    if (n && lo <= n && (lo == n || v <= h->bounds[lo]) && (lo == 0 || v > h->bounds[lo - 1]))
        goto found;
    lo = 0;
    uint32_t hi = n; /* the answer is in [lo, hi]; hi = +Inf */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    h->last = lo;
found:
    h->counts[lo]++;
    h->count++;
    h->sum += v;
}

int prom_hist_merge(prom_hist_t *dst, const prom_hist_t *src)
{
    if (dst->n_bounds != src->n_bounds)
        return -1;
    for (uint32_t i = 0; i < src->n_bounds; i++)
        if (dst->bounds[i] != src->bounds[i])
            return -1;
    for (uint32_t i = 0; i <= src->n_bounds; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    return 0;
}

void prom_histogram(prom_t *p, const char *name, const prom_label_t *labels, size_t n_labels,
                    const prom_hist_t *h)
{
    char num[40];
    uint64_t cum = 0;
    for (uint32_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            format_value(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        put_series(p, name, "_bucket", labels, n_labels, "le", num);
        snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
        puts_(p, num);
    }
    put_series(p, name, "_sum", labels, n_labels, NULL, NULL);
    puts_(p, " ");
    format_value(num, sizeof(num), h->sum);
    puts_(p, num);
    puts_(p, "\n");
    put_series(p, name, "_count", labels, n_labels, NULL, NULL);
    snprintf(num, sizeof(num), " %" PRIu64 "\n", h->count);
    puts_(p, num);
    p->samples += h->n_bounds + 3;
}
