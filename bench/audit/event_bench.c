/*
 * bench/audit/event_bench.c: how many audit records one core encodes per second
 * (audit_event_encode into one reused buffer), for three shapes of event:
 *
 *   breaker   a breaker_open with short strings (the common lifecycle event)
 *   denial    an acl_denied with every field set to a realistic value
 *   hostile   a denial whose strings need escaping (quotes, control bytes, bad UTF-8)
 *
 * Usage: bench_audit_event [SECONDS per shape, default 1]. Prints events/s and ns/event;
 * the target is > 1,000,000 events/s per core (docs/benchmarks.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "audit/event.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(const char *name, const audit_ctx_t *ctx, audit_event_t e, double secs)
{
    static char buf[AUDIT_RECORD_MAX];
    size_t bytes = 0;
    unsigned long long n = 0;
    double t0 = now_s(), t1 = t0;
    while (t1 - t0 < secs) {
        for (int i = 0; i < 10000; i++) {
            e.seq++;
            e.ts_us += 17;
            ssize_t len = audit_event_encode(ctx, &e, buf, sizeof(buf));
            if (len <= 0) {
                fprintf(stderr, "encode failed: %zd\n", len);
                exit(1);
            }
            bytes += (size_t)len;
        }
        n += 10000;
        t1 = now_s();
    }
    double el = t1 - t0;
    printf("%-8s %12.0f events/s  %7.1f ns/event  %5.0f bytes/record  %7.1f MB/s\n", name,
           (double)n / el, el * 1e9 / (double)n, (double)bytes / (double)n,
           (double)bytes / el / 1e6);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0)
        secs = 1.0;
    audit_ctx_t ctx;
    char err[200];
    if (audit_ctx_init(&ctx, "node-7.zone-b.example", "sidecar", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t t = audit_now_us();
    audit_event_t breaker = {
        .type = AUDIT_BREAKER_OPEN,
        .ts_us = t,
        .reason = "5 consecutive failures",
        .service = "shop.v1.Cart",
        .instance = "10.1.2.3:50051",
    };
    audit_event_t denial = {
        .type = AUDIT_ACL_DENIED,
        .ts_us = t,
        .reason = "no rule allows spiffe://mesh/ns/web/sa/frontend to call shop.v1.Cart/Checkout",
        .service = "shop.v1.Cart",
        .method = "Checkout",
        .peer_address = "10.1.7.44:39112",
        .peer_identity = "spiffe://mesh/ns/web/sa/frontend",
        .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        .has_status = true,
        .status = 7,
    };
    audit_event_t hostile = denial;
    hostile.reason = "bad \"token\" from\t\x01client\n\xff\xfe with \xc3\xa9 and \\path";
    hostile.peer_identity = "CN=\"x\",O=\\evil\\\x1b[31m";
    run("breaker", &ctx, breaker, secs);
    run("denial", &ctx, denial, secs);
    run("hostile", &ctx, hostile, secs);
    return 0;
}
