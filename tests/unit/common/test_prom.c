/*
 * tests/unit/common/test_prom.c: the Prometheus text writer: headers, escaping of label values
 * and HELP text, value spelling, cumulative histogram buckets, merging, and a failed write
 * that stops the exposition.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "tests/check.h"

typedef struct {
    char data[8192];
    size_t len;
    size_t limit; /* writes beyond fail */
} sink_t;

static int sink_write(void *ud, const void *p, size_t n)
{
    sink_t *s = ud;
    if (s->len + n >= (s->limit ? s->limit : sizeof(s->data)))
        return -1;
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
    return 0;
}

static void t_counter_and_gauge(void)
{
    sink_t s = {0};
    prom_t p;
    prom_init(&p, sink_write, &s);
    prom_family(&p, "meshd_calls_total", PROM_COUNTER, "Calls accepted.");
    prom_label_t l[] = {{"service", "pkg.Kv"}, {"code", "OK"}};
    prom_sample_u64(&p, "meshd_calls_total", l, 2, 18446744073709551615ull);
    prom_one(&p, "meshd_up", PROM_GAUGE, "One.", 1);
    CHECK(!prom_failed(&p));
    CHECK_STR(s.data, "# HELP meshd_calls_total Calls accepted.\n"
                      "# TYPE meshd_calls_total counter\n"
                      "meshd_calls_total{service=\"pkg.Kv\",code=\"OK\"} 18446744073709551615\n"
                      "# HELP meshd_up One.\n"
                      "# TYPE meshd_up gauge\n"
                      "meshd_up 1\n");
    CHECK_EQ(p.families, 2);
    CHECK_EQ(p.samples, 2);
}

static void t_escaping(void)
{
    sink_t s = {0};
    prom_t p;
    prom_init(&p, sink_write, &s);
    prom_family(&p, "m", PROM_GAUGE, "a \"quoted\" back\\slash\nnewline");
    prom_label_t l[] = {{"v", "a\"b\\c\nd"}, {"e", ""}};
    prom_sample(&p, "m", l, 2, 0.25);
    CHECK_STR(s.data, "# HELP m a \"quoted\" back\\\\slash\\nnewline\n"
                      "# TYPE m gauge\n"
                      "m{v=\"a\\\"b\\\\c\\nd\",e=\"\"} 0.25\n");
}

static void t_values(void)
{
    sink_t s = {0};
    prom_t p;
    prom_init(&p, sink_write, &s);
    prom_sample(&p, "a", NULL, 0, INFINITY);
    prom_sample(&p, "b", NULL, 0, -INFINITY);
    prom_sample(&p, "c", NULL, 0, NAN);
    prom_sample(&p, "d", NULL, 0, 0.1);
    prom_sample(&p, "e", NULL, 0, -3);
    prom_sample(&p, "f", NULL, 0, 1e300);
    prom_sample(&p, "g", NULL, 0, 1.0 / 3);
    CHECK_STR(s.data, "a +Inf\nb -Inf\nc NaN\nd 0.1\ne -3\nf 1e+300\ng 0.3333333333333333\n");
}

static void t_names(void)
{
    CHECK(prom_name_ok("meshd_calls_total"));
    CHECK(prom_name_ok("a:b_c9"));
    CHECK(!prom_name_ok("9a"));
    CHECK(!prom_name_ok("a-b"));
    CHECK(!prom_name_ok(""));
}

static void t_histogram(void)
{
    static const double b[] = {0.001, 0.01, 0.1, 1};
    prom_hist_t w1, w2, all;
    CHECK_EQ(prom_hist_init(&w1, b, 4), 0);
    CHECK_EQ(prom_hist_init(&w2, b, 4), 0);
    CHECK_EQ(prom_hist_init(&all, b, 4), 0);
    prom_hist_observe(&w1, 0.001); /* on a bound: that bucket (le is inclusive) */
    prom_hist_observe(&w1, 0.05);
    prom_hist_observe(&w2, 5);
    prom_hist_observe(&w2, 0.0001);
    CHECK_EQ(prom_hist_merge(&all, &w1), 0);
    CHECK_EQ(prom_hist_merge(&all, &w2), 0);
    CHECK_EQ(all.count, 4);
    sink_t s = {0};
    prom_t p;
    prom_init(&p, sink_write, &s);
    prom_family(&p, "meshd_x_seconds", PROM_HISTOGRAM, "X.");
    prom_label_t l[] = {{"service", "s"}};
    prom_histogram(&p, "meshd_x_seconds", l, 1, &all);
    CHECK_STR(s.data, "# HELP meshd_x_seconds X.\n"
                      "# TYPE meshd_x_seconds histogram\n"
                      "meshd_x_seconds_bucket{service=\"s\",le=\"0.001\"} 2\n"
                      "meshd_x_seconds_bucket{service=\"s\",le=\"0.01\"} 2\n"
                      "meshd_x_seconds_bucket{service=\"s\",le=\"0.1\"} 3\n"
                      "meshd_x_seconds_bucket{service=\"s\",le=\"1\"} 3\n"
                      "meshd_x_seconds_bucket{service=\"s\",le=\"+Inf\"} 4\n"
                      "meshd_x_seconds_sum{service=\"s\"} 5.0511\n"
                      "meshd_x_seconds_count{service=\"s\"} 4\n");
    /* different bounds do not merge; bad bounds are refused */
    static const double other[] = {1, 2};
    prom_hist_t o;
    CHECK_EQ(prom_hist_init(&o, other, 2), 0);
    CHECK_EQ(prom_hist_merge(&all, &o), -1);
    static const double bad[] = {2, 1};
    CHECK_EQ(prom_hist_init(&o, bad, 2), -1);
    CHECK_EQ(prom_hist_init(&o, b, PROM_HIST_MAX_BOUNDS + 1), -1);
}

static void t_failed_write(void)
{
    sink_t s = {.limit = 20};
    prom_t p;
    prom_init(&p, sink_write, &s);
    prom_one(&p, "meshd_something_long_total", PROM_COUNTER, "Help text.", 1);
    CHECK(prom_failed(&p));
    size_t len = s.len;
    prom_one(&p, "x", PROM_GAUGE, "y", 1);
    CHECK_EQ(s.len, len); /* nothing after the failure */
}

int main(void)
{
    RUN(t_counter_and_gauge);
    RUN(t_escaping);
    RUN(t_values);
    RUN(t_names);
    RUN(t_histogram);
    RUN(t_failed_write);
    return 0;
}
