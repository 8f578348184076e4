/*
 * bench/ratelimit/bench_ratelimit.c: what one policy check costs.
 *
 * Rate limits (policy/ratelimit.h), from 1 and 2 threads, on one shared key and on distinct
 * keys (4096 per thread, each thread its own), in two regimes: "allowed" (rate 1e9/s: every
 * call takes a token, so every call is a compare-and-swap on the key's word) and "limited"
 * (rate 100/s: nearly every call is refused after one load). The time passed in is read once
 * per 64 calls, as a worker would use its loop's cached time. Then one ACL check
 * (policy/acl.h) with a realistic rule set and a call behind a trusted proxy, one with SPIFFE
 * identity rules and a caller's certificate, and the identity step's decision
 * (policy/call_identity.h) from a peer certificate and from a token over mTLS.
 *
 * Prints CPU ns per call (each thread's CPU time, CLOCK_THREAD_CPUTIME_ID, summed and divided by
 * all calls: robust on a shared machine) and wall ns per call per thread. Not a test: numbers
 * depend on the machine; docs/policy-acl.md records them.
 *
 *   bench_ratelimit [calls-per-thread]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/peer_id.h"
#include "policy/acl.h"
#include "policy/call_identity.h"
#include "policy/ratelimit.h"

#define NKEYS 4096

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
    pol_ratelimit_t *rl;
    const pol_acl_t *acl;
    int tid;
    int distinct;
    long calls;
    long allowed;
    uint64_t cpu;
    char (*keys)[32];
    size_t *klen;
} arg_t;

static void *run_rl(void *p)
{
    arg_t *a = p;
    uint64_t c0 = cpu_ns(), now = mono_ns();
    long allowed = 0;
    for (long i = 0; i < a->calls; i++) {
        if ((i & 63) == 0)
            now = mono_ns();
        size_t k = a->distinct ? (size_t)(i & (NKEYS - 1)) : 0;
        allowed +=
            pol_ratelimit_check(a->rl, a->keys[k], a->klen[k], now, NULL) == POL_RATELIMIT_ALLOWED;
    }
    a->allowed = allowed;
    a->cpu = cpu_ns() - c0;
    return NULL;
}

static void measure_rl(int threads, int distinct, double rate, long calls, double *cpu,
                       double *wall, double *allowed_frac)
{
    pol_ratelimit_config_t c;
    pol_ratelimit_config_default(&c);
    c.rate = rate;
    c.burst = 100;
    c.slots = 16384;
    char err[128];
    pol_ratelimit_t *rl = pol_ratelimit_new(&c, err, sizeof(err));
    if (!rl) {
        fprintf(stderr, "bench_ratelimit: %s\n", err);
        exit(1);
    }
    pthread_t th[2];
    arg_t a[2];
    static char keys[2][NKEYS][32];
    static size_t klen[2][NKEYS];
    for (int t = 0; t < threads; t++)
        for (int k = 0; k < NKEYS; k++)
            klen[t][k] = (size_t)snprintf(keys[t][k], 32, "peer:10.%d.%d.%d", t, k / 256, k % 256);
    uint64_t t0 = mono_ns();
    for (int t = 0; t < threads; t++) {
        /* One shared key: both threads use thread 0's first key. */
        int src = distinct ? t : 0;
        a[t] = (arg_t){.rl = rl,
                       .tid = t,
                       .distinct = distinct,
                       .calls = calls,
                       .keys = keys[src],
                       .klen = klen[src]};
        pthread_create(&th[t], NULL, run_rl, &a[t]);
    }
    uint64_t sum = 0;
    long allowed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        sum += a[t].cpu;
        allowed += a[t].allowed;
    }
    uint64_t t1 = mono_ns();
    *cpu = (double)sum / ((double)calls * threads);
    *wall = (double)(t1 - t0) / (double)calls;
    *allowed_frac = (double)allowed / ((double)calls * threads);
    pol_ratelimit_free(rl);
}

#define LIST(...)                                                                                  \
    (pol_acl_list_t)                                                                               \
    {                                                                                              \
        (const char *const[]){__VA_ARGS__},                                                        \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)                      \
    }

static double measure_acl(long calls, const char **verdict)
{
    pol_acl_config_t c = {0};
    c.trusted_proxies = LIST("10.0.0.0/8", "fd00::/8");
    c.allow_peers = LIST("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "172.16.0.0/12",
                         "10.0.0.0/8", "2001:db8::/32", "100.64.0.0/10", "192.168.0.0/16");
    c.deny_peers = LIST("203.0.113.66", "198.51.100.128/25", "2001:db8:dead::/48");
    c.allow_identities = LIST("svc-*", "alice", "bob", "carol", "dave", "erin");
    c.deny_identities = LIST("svc-legacy*", "mallory");
    c.allow_methods =
        LIST("shop.Cart/*", "shop.Orders/Get", "shop.Orders/List", "grpc.health.v1.Health/Check");
    c.deny_methods = LIST("shop.Cart/Drop");
    char err[256];
    pol_acl_t *acl = pol_acl_new(&c, err, sizeof(err));
    if (!acl) {
        fprintf(stderr, "bench_ratelimit: acl: %s\n", err);
        exit(1);
    }
    static const char xff[] = "198.51.100.7, 203.0.113.5, 10.2.0.1";
    pol_str_t f = {xff, sizeof(xff) - 1};
    pol_acl_call_t call = {
        .xff = &f, .n_xff = 1, .identity = {"svc-orders", 10}, .path = {"/shop.Cart/Add", 14}};
    pol_ip_parse("10.0.0.1", 8, &call.peer);
    pol_acl_result_t r;
    long ok = 0;
    uint64_t c0 = cpu_ns();
    for (long i = 0; i < calls; i++)
        ok += pol_acl_check(acl, &call, &r) == POL_ACL_ALLOWED;
    uint64_t c1 = cpu_ns();
    *verdict = ok == calls ? "allowed" : "denied";
    pol_acl_free(acl);
    return (double)(c1 - c0) / (double)calls;
}

/* An identity rule naming SPIFFE IDs, the caller a peer certificate with three services (the
 * allowed one last): the cost of matching a certificate's service IDs. */
static double measure_acl_spiffe(long calls, const char **verdict)
{
    pol_acl_config_t c = {0};
    c.allow_identities = LIST("alice", "svc-*", "spiffe://mesh.test/node/ops-*",
                              "spiffe://mesh.test/svc/pkg.Orders");
    c.deny_identities = LIST("spiffe://mesh.test/node/legacy-*", "spiffe://mesh.test/svc/pkg.Old");
    char err[256];
    pol_acl_t *acl = pol_acl_new(&c, err, sizeof(err));
    const char *svcs[] = {"pkg.Billing", "pkg.Cart", "pkg.Orders"};
    mesh_peer_id_t *peer = mesh_peer_id_new("mesh.test", "client-1", svcs, 3);
    if (!acl || !peer) {
        fprintf(stderr, "bench_ratelimit: acl: %s\n", acl ? "out of memory" : err);
        exit(1);
    }
    pol_acl_call_t call = {.identity = {peer->node_uri.p, peer->node_uri.len},
                           .identity_mtls = 1,
                           .cert = peer,
                           .path = {"/pkg.Orders/Put", 15}};
    pol_ip_parse("10.0.0.1", 8, &call.peer);
    pol_acl_result_t r;
    long ok = 0;
    uint64_t c0 = cpu_ns();
    for (long i = 0; i < calls; i++)
        ok += pol_acl_check(acl, &call, &r) == POL_ACL_ALLOWED;
    uint64_t c1 = cpu_ns();
    *verdict = ok == calls ? "allowed" : "denied";
    pol_acl_free(acl);
    mesh_peer_id_free(peer);
    return (double)(c1 - c0) / (double)calls;
}

/* The identity step's decision (policy/call_identity.h): with_token 0: the peer's node ID;
 * 1: an unsigned token from the node (decoded and parsed). */
static double measure_call_identity(long calls, int with_token)
{
    mesh_peer_id_t *peer = mesh_peer_id_new("mesh.test", "proxy-1", NULL, 0);
    pol_identity_t id;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "alice");
    snprintf(id.source, sizeof(id.source), "jwt");
    char tok[POL_IDENTITY_TOKEN_MAX + 1], err[128];
    long tl = pol_identity_mint_unsigned(30, &id, "/pkg.Orders/Put", 15, 1000, tok, sizeof(tok),
                                         err, sizeof(err));
    if (!peer || tl < 0) {
        fprintf(stderr, "bench_ratelimit: call identity: %s\n", peer ? err : "out of memory");
        exit(1);
    }
    pol_cid_in_t in = {.peer = peer,
                       .peer_forwards = 1,
                       .token = with_token ? tok : NULL,
                       .token_len = (size_t)tl,
                       .path = "/pkg.Orders/Put",
                       .path_len = 15,
                       .now = 1000};
    long ok = 0;
    uint64_t c0 = cpu_ns();
    for (long i = 0; i < calls; i++)
        ok += pol_call_identity(&in, &id, NULL) != POL_CID_NONE;
    uint64_t c1 = cpu_ns();
    if (ok != calls)
        fprintf(stderr, "bench_ratelimit: call identity: %ld of %ld\n", ok, calls);
    mesh_peer_id_free(peer);
    return (double)(c1 - c0) / (double)calls;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 20000000;
    if (calls <= 0)
        calls = 20000000;
    printf("ratelimit check, %ld calls per thread (time read once per 64 calls)\n", calls);
    printf("%-8s %-9s %-9s %10s %12s %9s\n", "threads", "keys", "regime", "cpu ns", "wall ns/thr",
           "allowed");
    for (int distinct = 0; distinct <= 1; distinct++) {
        for (int regime = 0; regime <= 1; regime++) {
            for (int threads = 1; threads <= 2; threads++) {
                double cpu, wall, frac;
                measure_rl(threads, distinct, regime == 0 ? 1e9 : 100, calls, &cpu, &wall, &frac);
                printf("%-8d %-9s %-9s %10.1f %12.1f %8.1f%%\n", threads,
                       distinct ? "distinct" : "one", regime == 0 ? "allowed" : "limited", cpu,
                       wall, 100 * frac);
            }
        }
    }
    const char *verdict;
    double acl = measure_acl(calls / 4, &verdict);
    printf("\nacl check (8+3 peer prefixes, XFF with 3 hops behind a trusted proxy, 6+2 identity\n"
           "patterns, 4+1 method patterns; %s): %.1f cpu ns per call\n",
           verdict, acl);
    acl = measure_acl_spiffe(calls / 4, &verdict);
    printf("acl check, SPIFFE identity rules (4+2 patterns; the caller a certificate with 3\n"
           "service IDs, the last one allowed; %s): %.1f cpu ns per call\n",
           verdict, acl);
    printf("call identity from a peer certificate: %.1f cpu ns per call\n",
           measure_call_identity(calls / 4, 0));
    printf("call identity from an unsigned token over mTLS: %.1f cpu ns per call\n",
           measure_call_identity(calls / 4, 1));
    return 0;
}
