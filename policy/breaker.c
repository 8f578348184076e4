/*
 * policy/breaker.c: the circuit breaker state machine behind policy/breaker.h.
 *
 * The ratio window is a ring of MESH_BREAKER_BUCKETS buckets, each covering window/BUCKETS ns
 * and tagged with its epoch (now / bucket length); a bucket whose epoch is stale is reset when
 * reused and skipped when summed, so the window slides without any timer. Transitions bump a
 * generation number; a call admitted under an older generation only gives its concurrency
 * slot back when it ends, so a slow call admitted while closed cannot close or reopen a
 * half-open breaker.
 */
#include "policy/breaker.h"

#include <stdio.h>
#include <string.h>

#define MS(ns) ((unsigned long long)((ns) / 1000000ull))

/* The gRPC status codes that count as failures (same values as transport/grpc_status.h). */
#define BREAKER_DEADLINE_EXCEEDED 4
#define BREAKER_INTERNAL          13
#define BREAKER_UNAVAILABLE       14

void mesh_breaker_config_default(mesh_breaker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->consecutive_failures = 5;
    cfg->failure_ratio = 0.5;
    cfg->ratio_min_calls = 20;
    cfg->window_ns = 10ull * 1000000000ull;
    cfg->max_concurrent = 0;
    cfg->open_ns = 5ull * 1000000000ull;
    cfg->open_max_ns = 60ull * 1000000000ull;
    cfg->half_open_probes = 1;
}

static int config_valid(const mesh_breaker_config_t *cfg)
{
    if (!(cfg->failure_ratio >= 0.0 && cfg->failure_ratio <= 1.0))
        return 0;
    if (cfg->failure_ratio > 0.0 && cfg->window_ns < MESH_BREAKER_BUCKETS)
        return 0;
    if (cfg->open_ns == 0 || cfg->open_max_ns < cfg->open_ns)
        return 0;
    if (cfg->half_open_probes == 0)
        return 0;
    return 1;
}

static void window_clear(mesh_breaker_t *b)
{
    memset(b->buckets, 0, sizeof(b->buckets));
}

int mesh_breaker_reconfigure(mesh_breaker_t *b, const mesh_breaker_config_t *cfg)
{
    if (!cfg || !config_valid(cfg))
        return -1;
    uint64_t bucket_ns = cfg->window_ns / MESH_BREAKER_BUCKETS;
    if (bucket_ns == 0)
        bucket_ns = 1;
    if (bucket_ns != b->bucket_ns)
        window_clear(b);
    b->bucket_ns = bucket_ns;
    b->cfg = *cfg;
    if (b->open_interval_ns < cfg->open_ns)
        b->open_interval_ns = cfg->open_ns;
    if (b->open_interval_ns > cfg->open_max_ns)
        b->open_interval_ns = cfg->open_max_ns;
    return 0;
}

int mesh_breaker_init(mesh_breaker_t *b, const char *service, const mesh_breaker_config_t *cfg,
                      mesh_breaker_on_transition_fn on_transition, void *ud)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->service, sizeof(b->service), "%s", service ? service : "");
    b->on_transition = on_transition;
    b->ud = ud;
    b->state = MESH_BREAKER_CLOSED;
    return mesh_breaker_reconfigure(b, cfg);
}

const char *mesh_breaker_state_name(mesh_breaker_state_t s)
{
    switch (s) {
    case MESH_BREAKER_CLOSED:
        return "closed";
    case MESH_BREAKER_OPEN:
        return "open";
    case MESH_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

static void transition(mesh_breaker_t *b, mesh_breaker_state_t to, uint64_t now_ns,
                       const char *reason)
{
    mesh_breaker_transition_t t = {
        .service = b->service,
        .from = b->state,
        .to = to,
        .reason = reason,
        .now_ns = now_ns,
        .open_until_ns = to == MESH_BREAKER_OPEN ? b->open_until_ns : 0,
    };
    b->state = to;
    b->gen++;
    b->probes_issued = 0;
    b->probes_ok = 0;
    b->consecutive = 0;
    window_clear(b);
    if (b->on_transition)
        b->on_transition(b->ud, &t);
}

static void open_now(mesh_breaker_t *b, uint64_t now_ns, const char *reason)
{
    b->open_until_ns = now_ns + b->open_interval_ns;
    b->trips++;
    transition(b, MESH_BREAKER_OPEN, now_ns, reason);
}

mesh_breaker_state_t mesh_breaker_poll(mesh_breaker_t *b, uint64_t now_ns)
{
    if (b->state == MESH_BREAKER_OPEN && now_ns >= b->open_until_ns) {
        char reason[96];
        snprintf(reason, sizeof(reason),
                 "open interval of %llu ms elapsed; letting %u probe(s) through",
                 MS(b->open_interval_ns), b->cfg.half_open_probes);
        transition(b, MESH_BREAKER_HALF_OPEN, now_ns, reason);
    }
    return b->state;
}

mesh_breaker_state_t mesh_breaker_state(const mesh_breaker_t *b)
{
    return b->state;
}

uint32_t mesh_breaker_in_flight(const mesh_breaker_t *b)
{
    return b->in_flight;
}

mesh_breaker_decision_t mesh_breaker_allow(mesh_breaker_t *b, uint64_t now_ns,
                                           mesh_breaker_permit_t *permit)
{
    mesh_breaker_poll(b, now_ns);
    if (b->state == MESH_BREAKER_OPEN) {
        b->rejected_open++;
        return MESH_BREAKER_REJECT_OPEN;
    }
    if (b->state == MESH_BREAKER_HALF_OPEN && b->probes_issued >= b->cfg.half_open_probes) {
        b->rejected_open++;
        return MESH_BREAKER_REJECT_OPEN;
    }
    if (b->cfg.max_concurrent && b->in_flight >= b->cfg.max_concurrent) {
        b->rejected_concurrency++;
        return MESH_BREAKER_REJECT_CONCURRENCY;
    }
    b->in_flight++;
    permit->gen = b->gen;
    permit->done = 0;
    permit->probe = b->state == MESH_BREAKER_HALF_OPEN;
    if (permit->probe)
        b->probes_issued++;
    return MESH_BREAKER_ALLOWED;
}

static mesh_breaker_bucket_t *bucket_at(mesh_breaker_t *b, uint64_t now_ns)
{
    uint64_t epoch = now_ns / b->bucket_ns;
    mesh_breaker_bucket_t *k = &b->buckets[epoch % MESH_BREAKER_BUCKETS];
    if (k->epoch != epoch) {
        k->epoch = epoch;
        k->calls = 0;
        k->failures = 0;
    }
    return k;
}

void mesh_breaker_window(const mesh_breaker_t *b, uint64_t now_ns, uint32_t *calls,
                         uint32_t *failures)
{
    uint64_t cur = now_ns / b->bucket_ns;
    uint32_t c = 0, f = 0;
    for (int i = 0; i < MESH_BREAKER_BUCKETS; i++) {
        const mesh_breaker_bucket_t *k = &b->buckets[i];
        if (k->epoch <= cur && k->epoch + MESH_BREAKER_BUCKETS > cur) {
            c += k->calls;
            f += k->failures;
        }
    }
    *calls = c;
    *failures = f;
}

static void closed_result(mesh_breaker_t *b, mesh_breaker_outcome_t outcome, uint64_t now_ns)
{
    char reason[160];
    mesh_breaker_bucket_t *k = bucket_at(b, now_ns);
    k->calls++;
    if (outcome == MESH_BREAKER_SUCCESS) {
        b->consecutive = 0;
    } else {
        k->failures++;
        b->consecutive++;
        if (b->cfg.consecutive_failures && b->consecutive >= b->cfg.consecutive_failures) {
            snprintf(reason, sizeof(reason), "%u consecutive failures; open for %llu ms",
                     b->consecutive, MS(b->open_interval_ns));
            open_now(b, now_ns, reason);
            return;
        }
    }
    if (b->cfg.failure_ratio > 0.0) {
        uint32_t calls, failures;
        mesh_breaker_window(b, now_ns, &calls, &failures);
        if (calls >= b->cfg.ratio_min_calls && calls > 0 &&
            (double)failures >= b->cfg.failure_ratio * (double)calls) {
            snprintf(reason, sizeof(reason),
                     "failure ratio %u/%u over %llu ms reached %.2f; open for %llu ms", failures,
                     calls, MS(b->cfg.window_ns), b->cfg.failure_ratio, MS(b->open_interval_ns));
            open_now(b, now_ns, reason);
        }
    }
}

static void half_open_result(mesh_breaker_t *b, mesh_breaker_outcome_t outcome, uint64_t now_ns)
{
    char reason[128];
    if (outcome == MESH_BREAKER_FAILURE) {
        uint64_t next = b->open_interval_ns * 2;
        if (next < b->open_interval_ns || next > b->cfg.open_max_ns)
            next = b->cfg.open_max_ns;
        b->open_interval_ns = next;
        snprintf(reason, sizeof(reason), "probe call failed; open for %llu ms", MS(next));
        open_now(b, now_ns, reason);
        return;
    }
    b->probes_ok++;
    if (b->probes_ok >= b->cfg.half_open_probes) {
        snprintf(reason, sizeof(reason), "%u probe call(s) succeeded", b->probes_ok);
        b->open_interval_ns = b->cfg.open_ns;
        transition(b, MESH_BREAKER_CLOSED, now_ns, reason);
    }
}

void mesh_breaker_done(mesh_breaker_t *b, mesh_breaker_permit_t *permit,
                       mesh_breaker_outcome_t outcome, uint64_t now_ns)
{
    if (permit->done)
        return;
    permit->done = 1;
    if (b->in_flight > 0)
        b->in_flight--;
    if (permit->gen != b->gen)
        return; /* admitted before the last transition: its verdict is stale */
    if (outcome == MESH_BREAKER_IGNORED) {
        if (permit->probe && b->probes_issued > 0)
            b->probes_issued--;
        return;
    }
    if (b->state == MESH_BREAKER_CLOSED)
        closed_result(b, outcome, now_ns);
    else if (b->state == MESH_BREAKER_HALF_OPEN && permit->probe)
        half_open_result(b, outcome, now_ns);
}

mesh_breaker_outcome_t mesh_breaker_classify_grpc(int grpc_status)
{
    if (grpc_status < 0)
        return MESH_BREAKER_FAILURE;
    switch (grpc_status) {
    case BREAKER_UNAVAILABLE:
    case BREAKER_INTERNAL:
    case BREAKER_DEADLINE_EXCEEDED:
        return MESH_BREAKER_FAILURE;
    default:
        return MESH_BREAKER_SUCCESS;
    }
}

int mesh_breaker_format_open_message(const char *service, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "meshd: circuit open for %s", service ? service : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int mesh_breaker_reject_message(const mesh_breaker_t *b, mesh_breaker_decision_t d, char *buf,
                                size_t cap)
{
    if (d == MESH_BREAKER_REJECT_CONCURRENCY) {
        int n = snprintf(buf, cap, "meshd: too many concurrent calls to %s (limit %u)", b->service,
                         b->cfg.max_concurrent);
        return n < 0 || (size_t)n >= cap ? -1 : n;
    }
    return mesh_breaker_format_open_message(b->service, buf, cap);
}
