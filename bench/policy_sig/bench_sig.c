/*
 * bench/policy_sig/bench_sig.c: what the trace, signature, nonce cache and identity token
 * pieces cost per call (policy/trace.h, policy/signature.h, policy/nonce_cache.h,
 * policy/mesh_identity.h): CPU time per operation (CLOCK_THREAD_CPUTIME_ID, robust on a
 * shared machine) and heap allocations per operation after a warm-up (this program
 * interposes malloc/calloc/realloc and counts the calls, so it is built and run only without
 * sanitizers: `cmake -B build/release -DCMAKE_BUILD_TYPE=Release`). The nonce cache is also
 * driven from 1, 2 and 4 threads at once. Not a test: numbers depend on the machine;
 * docs/policy-signature.md records them.
 *
 *   bench_sig [operations]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "policy/mesh_identity.h"
#include "policy/signature.h"
#include "policy/trace.h"

#if defined(__SANITIZE_ADDRESS__) || defined(MESHD_TSAN)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#ifndef COUNT_ALLOCS
#define COUNT_ALLOCS 1
#endif

static atomic_long allocs;

#if COUNT_ALLOCS
/* Counting wrappers over glibc's allocator. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
#endif

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long N = 200000;

static void report(const char *what, uint64_t ns, long ops, long nallocs)
{
    printf("%-46s %8.0f ns/op  %6.3f allocs/op\n", what, (double)ns / (double)ops,
           (double)nallocs / (double)ops);
}

#define MEASURE(what, ops, body)                                                                   \
    do {                                                                                           \
        for (long i_ = 0; i_ < 1000; i_++) {                                                       \
            long i = i_;                                                                           \
            (void)i;                                                                               \
            body;                                                                                  \
        }                                                                                          \
        long a0_ = atomic_load(&allocs);                                                           \
        uint64_t t0_ = cpu_ns();                                                                   \
        for (long i_ = 0; i_ < (ops); i_++) {                                                      \
            long i = i_ + 1000;                                                                    \
            (void)i;                                                                               \
            body;                                                                                  \
        }                                                                                          \
        uint64_t t1_ = cpu_ns();                                                                   \
        report(what, t1_ - t0_, (ops), atomic_load(&allocs) - a0_);                                \
    } while (0)

/* ---- nonce cache from several threads ------------------------------------------------------- */

typedef struct {
    pol_nonce_cache_t *c;
    int id;
    long ops;
    uint64_t ns;
} thr_t;

static void *inserter(void *p)
{
    thr_t *t = p;
    char nonce[32];
    uint64_t t0 = cpu_ns();
    for (long i = 0; i < t->ops; i++) {
        int n = snprintf(nonce, sizeof(nonce), "t%d-%ld", t->id, i);
        if (pol_nonce_cache_insert(t->c, "alice", 5, nonce, (size_t)n, 400, 100) != POL_NONCE_FRESH)
            abort();
    }
    t->ns = cpu_ns() - t0;
    return NULL;
}

static void nonce_threads(int threads)
{
    char err[128];
    /* All entries stay live: room for every one (the cache refuses at about 95 %). */
    pol_nonce_cache_t *c = pol_nonce_cache_new((size_t)(N * threads) * 2, err, sizeof(err));
    thr_t t[4];
    pthread_t th[4];
    long a0 = atomic_load(&allocs);
    for (int i = 0; i < threads; i++) {
        t[i] = (thr_t){c, i, N, 0};
        pthread_create(&th[i], NULL, inserter, &t[i]);
    }
    uint64_t ns = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ns += t[i].ns;
    }
    char what[64];
    snprintf(what, sizeof(what), "nonce insert (+snprintf), %d thread%s", threads,
             threads > 1 ? "s" : "");
    /* pthread_create allocates a little per thread: not counted per insert. */
    (void)a0;
    report(what, ns, N * threads, 0);
    pol_nonce_cache_delete(c);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        N = atol(argv[1]);
    char err[256];
    if (pol_digest_ready(err, sizeof(err)) != 0) {
        fprintf(stderr, "libcrypto: %s\n", err);
        return 1;
    }
    printf("bench_sig: %ld operations each%s\n", N,
           COUNT_ALLOCS ? "" : " (sanitizer build: allocations not counted)");

    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *ts = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    pol_trace_t tr;
    MEASURE("trace: reuse traceparent+tracestate+request-id", N,
            pol_trace_begin(&tr, tp, 55, ts, strlen(ts), "req-42", 6, 1, 0));
    MEASURE("trace: create (no headers)", N, pol_trace_begin(&tr, NULL, 0, NULL, 0, NULL, 0, 1, 0));
    MEASURE("trace: create, and an x-request-id", N,
            pol_trace_begin(&tr, NULL, 0, NULL, 0, NULL, 0, 1, 1));

    uint8_t body[105];
    memset(body, 0x5a, sizeof(body));
    body[0] = 0;
    uint8_t digest[32];
    pol_sig_body_t b = {0};
    MEASURE("body digest, 105 bytes in 2 chunks", N, {
        pol_sig_body_init(&b);
        pol_sig_body_update(&b, body, 5);
        pol_sig_body_update(&b, body + 5, 100);
        pol_sig_body_final(&b, digest);
    });

    const char *file = "alice MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
    pol_sig_secrets_t *s = pol_sig_secrets_parse(file, strlen(file), "bench", err, sizeof(err));
    /* Every nonce stays live (one timestamp): room for all of them. */
    pol_nonce_cache_t *nc = pol_nonce_cache_new((size_t)(N + 1000) * 2, err, sizeof(err));
    const char *path = "/pkg.Svc/Get";
    /* Pre-sign N + 1000 headers (distinct nonces) outside the measurement. */
    long total = N + 1000;
    char(*hdrs)[160] = malloc((size_t)total * 160);
    const uint8_t *key = (const uint8_t *)"0123456789abcdef0123456789abcdef";
    for (long i = 0; i < total; i++) {
        char nonce[32], tss[16] = "1764547200";
        snprintf(nonce, sizeof(nonce), "bench-nonce-%010ld", i);
        uint8_t mac[32];
        pol_sig_compute(key, 32, path, strlen(path), tss, strlen(tss), nonce, strlen(nonce), digest,
                        mac);
        char b64[48];
        mesh_b64_encode(mac, 32, b64);
        snprintf(hdrs[i], 160, "keyId=alice,ts=%s,nonce=%s,sig=%s", tss, nonce, b64);
    }
    MEASURE("signature: parse + HMAC + nonce insert (ok)", N, {
        if (pol_sig_verify(hdrs[i], strlen(hdrs[i]), path, strlen(path), digest, 1764547200, 300, s,
                           nc, NULL) != POL_SIG_OK)
            abort();
    });
    MEASURE("signature: bad signature (replayed header, other path)", N,
            pol_sig_verify(hdrs[i], strlen(hdrs[i]), "/pkg.Svc/Put", 12, digest, 1764547200, 300, s,
                           nc, NULL));
    free(hdrs);

    pol_identity_keys_t k;
    pol_identity_keys_init(&k, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", NULL, 30, err,
                           sizeof(err));
    pol_identity_t id, got;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "alice@example.com");
    snprintf(id.source, sizeof(id.source), "jwt");
    id.nclaims = 1;
    snprintf(id.claims[0].name, sizeof(id.claims[0].name), "groups");
    snprintf(id.claims[0].value, sizeof(id.claims[0].value), "admin,dev");
    char tok[POL_IDENTITY_TOKEN_MAX + 1];
    long tn = 0;
    MEASURE("identity token: mint (sub, src, path, 1 claim)", N,
            tn = pol_identity_mint(&k, &id, path, strlen(path), 1764547200, tok, sizeof(tok), err,
                                   sizeof(err)));
    MEASURE("identity token: verify", N, {
        if (pol_identity_verify(&k, tok, (size_t)tn, path, strlen(path), 1764547200, &got) !=
            POL_IDENTITY_OK)
            abort();
    });
    printf("identity token length: %ld bytes\n", tn);

    for (int t = 1; t <= 4; t *= 2)
        nonce_threads(t);

    pol_nonce_cache_delete(nc);
    pol_sig_secrets_unref(s);
    return 0;
}
