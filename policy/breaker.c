/*
 * policy/breaker.c: the shared circuit breaker behind policy/breaker.h.
 *
 * The state word. One 64-bit atomic holds the state (2 bits), a generation (30 bits, bumped by
 * every transition) and 32 bits whose meaning depends on the state: CLOSED counts consecutive
 * failures (bits 0-30), HALF_OPEN holds the probes issued (bits 16-30) and the probes that
 * succeeded (bits 0-15), OPEN holds nothing. Bit 31 (PENDING) says a transition out of this
 * generation has been decided. Calls change those 32 bits with compare-and-swap, only while
 * the generation is the one they were admitted under and nothing is pending, so a result that
 * arrives after a decision never leaks into the next state.
 *
 * A decision is the CAS that sets PENDING: the failure that makes the count reach the
 * threshold sets it in the same CAS (the count rises by one per CAS, so exactly one thread
 * reaches it), as does the success of the last probe; a failed probe or a ratio over the
 * threshold sets it on its own. From that instant no call is admitted (PENDING reads as open)
 * and no result is counted, and exactly one thread, the one whose CAS set it, carries the
 * transition out: under b->lock it publishes the new word (after open_until_ns, which readers
 * load after the word) and reports the transition, still under the lock, so transitions are
 * reported once each and in order. The circuit thus opens on exactly the configured failure,
 * and exactly `half_open_probes` CASes take a probe slot. OPEN -> HALF_OPEN is decided by the
 * clock: the threads that see the interval over meet on b->lock and the first one moves.
 *
 * The ratio window is a ring of POL_BREAKER_BUCKETS buckets of window/BUCKETS ns, each tagged
 * with the generation (low 16 bits) and epoch (now / bucket length, low 48 bits) its counts
 * belong to. A call whose bucket carries another tag recycles it under b->lock (once per bucket
 * length, not per call); a sum skips buckets of another generation or outside the window, so a
 * transition empties the window without touching it. A result is one atomic add, to the
 * bucket's successes or to its failures; a sum reads failures before successes, so while other
 * threads add it may see a ratio (and a call count) too low for a moment, never too high, and
 * the thread whose result lands last sees every earlier one: the thresholds hold across
 * threads, neither early nor late.
 */
#include "policy/breaker.h"

#include <stdio.h>
#include <string.h>

#define MS(ns) ((unsigned long long)((ns) / 1000000ull))

/* The gRPC status codes that count as failures (same values as transport/grpc_status.h). */
#define BREAKER_DEADLINE_EXCEEDED 4
#define BREAKER_INTERNAL          13
#define BREAKER_UNAVAILABLE       14

/* ---- the state word --------------------------------------------------------------------- */

#define GEN_MASK   0x3FFFFFFFu
#define PENDING    0x80000000u /* a transition out of this generation is decided */
#define COUNT_MAX  0x7FFFFFFFu /* consecutive failures (closed) */
#define PROBE_ONE  (1u << 16)  /* one probe issued (half-open) */
#define EPOCH_MASK ((1ull << 48) - 1)

static inline uint32_t probes_issued(uint32_t low)
{
    return (low >> 16) & 0x7FFFu;
}

static inline uint32_t probes_ok(uint32_t low)
{
    return low & 0xFFFFu;
}

static inline pol_breaker_state_t w_state(uint64_t w)
{
    return (pol_breaker_state_t)(w >> 62);
}

static inline uint32_t w_gen(uint64_t w)
{
    return (uint32_t)(w >> 32) & GEN_MASK;
}

static inline uint32_t w_low(uint64_t w)
{
    return (uint32_t)w;
}

static inline uint64_t w_make(pol_breaker_state_t s, uint32_t gen, uint32_t low)
{
    return ((uint64_t)s << 62) | ((uint64_t)(gen & GEN_MASK) << 32) | low;
}

static inline uint64_t load_word(const pol_breaker_t *b)
{
    return atomic_load_explicit(&((pol_breaker_t *)b)->word, memory_order_acquire);
}

static inline int cas_word(pol_breaker_t *b, uint64_t *expected, uint64_t desired)
{
    return atomic_compare_exchange_weak(&b->word, expected, desired);
}

static inline uint64_t tag_make(uint32_t gen, uint64_t epoch)
{
    return ((uint64_t)(gen & 0xFFFFu) << 48) | (epoch & EPOCH_MASK);
}

/* ---- configuration ---------------------------------------------------------------------- */

void pol_breaker_config_default(pol_breaker_config_t *cfg)
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

int pol_breaker_config_check(const pol_breaker_config_t *cfg, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!(cfg->failure_ratio >= 0.0 && cfg->failure_ratio <= 1.0))
        why = "failure ratio must be within [0, 1]";
    else if (cfg->failure_ratio > 0.0 && cfg->window_ns < POL_BREAKER_BUCKETS)
        why = "the ratio window is shorter than its bucket count in ns";
    else if (cfg->open_ns == 0)
        why = "the open interval must be > 0";
    else if (cfg->open_max_ns < cfg->open_ns)
        why = "the longest open interval is shorter than the first";
    else if (cfg->half_open_probes == 0 || cfg->half_open_probes > POL_BREAKER_PROBES_MAX)
        why = "half-open probes must be within [1, 32767]";
    if (!why)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

int pol_breaker_init(pol_breaker_t *b, const char *service, const pol_breaker_config_t *cfg,
                     pol_breaker_on_transition_fn on_transition, void *ud)
{
    if (!cfg || pol_breaker_config_check(cfg, NULL, 0) != 0)
        return -1;
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->bucket_ns = cfg->window_ns / POL_BREAKER_BUCKETS;
    if (b->bucket_ns == 0)
        b->bucket_ns = 1;
    snprintf(b->service, sizeof(b->service), "%s", service ? service : "");
    b->on_transition = on_transition;
    b->ud = ud;
    b->open_interval_ns = cfg->open_ns;
    /* The zeroed word is CLOSED, generation 0, no failures; a zeroed bucket that happens to
     * match a tag holds zero counts, which is right. */
    atomic_init(&b->word, w_make(POL_BREAKER_CLOSED, 0, 0));
    if (pthread_mutex_init(&b->lock, NULL) != 0)
        return -1;
    return 0;
}

void pol_breaker_destroy(pol_breaker_t *b)
{
    pthread_mutex_destroy(&b->lock);
}

const char *pol_breaker_state_name(pol_breaker_state_t s)
{
    switch (s) {
    case POL_BREAKER_CLOSED:
        return "closed";
    case POL_BREAKER_OPEN:
        return "open";
    case POL_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

/* ---- transitions (under b->lock) -------------------------------------------------------- */

/* Publishes the state after w (same generation + 1) and reports it. */
static void transition_locked(pol_breaker_t *b, uint64_t w, pol_breaker_state_t to, uint64_t now_ns,
                              const char *reason)
{
    uint64_t open_until = 0;
    if (to == POL_BREAKER_OPEN) {
        open_until = now_ns + b->open_interval_ns;
        atomic_store_explicit(&b->open_until_ns, open_until, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->trips, 1, memory_order_relaxed);
    }
    atomic_store(&b->word, w_make(to, w_gen(w) + 1, 0));
    pol_breaker_transition_t t = {
        .service = b->service,
        .from = w_state(w),
        .to = to,
        .reason = reason,
        .now_ns = now_ns,
        .open_until_ns = open_until,
    };
    if (b->on_transition)
        b->on_transition(b->ud, &t);
}

/* Under b->lock: loads the word into *w and tells whether it still is generation gen in state
 * s (only transitions change those, and they hold the lock). */
static int still(pol_breaker_t *b, uint32_t gen, pol_breaker_state_t s, uint64_t *w)
{
    *w = atomic_load(&b->word);
    return w_gen(*w) == gen && w_state(*w) == s;
}

enum { TRIP_CONSECUTIVE, TRIP_RATIO };

static void trip(pol_breaker_t *b, uint32_t gen, uint64_t now_ns, int why, uint64_t n1, uint64_t n2)
{
    char reason[192];
    uint64_t w;
    pthread_mutex_lock(&b->lock);
    if (still(b, gen, POL_BREAKER_CLOSED, &w)) {
        if (why == TRIP_CONSECUTIVE)
            snprintf(reason, sizeof(reason), "%llu consecutive failures; open for %llu ms",
                     (unsigned long long)n1, MS(b->open_interval_ns));
        else
            snprintf(reason, sizeof(reason),
                     "failure ratio %llu/%llu over %llu ms reached %.2f; open for %llu ms",
                     (unsigned long long)n1, (unsigned long long)n2, MS(b->cfg.window_ns),
                     b->cfg.failure_ratio, MS(b->open_interval_ns));
        transition_locked(b, w, POL_BREAKER_OPEN, now_ns, reason);
    }
    pthread_mutex_unlock(&b->lock);
}

static void half_open_begin(pol_breaker_t *b, uint32_t gen, uint64_t now_ns)
{
    char reason[96];
    uint64_t w;
    pthread_mutex_lock(&b->lock);
    if (still(b, gen, POL_BREAKER_OPEN, &w)) {
        snprintf(reason, sizeof(reason),
                 "open interval of %llu ms elapsed; letting %u probe(s) through",
                 MS(b->open_interval_ns), b->cfg.half_open_probes);
        transition_locked(b, w, POL_BREAKER_HALF_OPEN, now_ns, reason);
    }
    pthread_mutex_unlock(&b->lock);
}

static void reopen(pol_breaker_t *b, uint32_t gen, uint64_t now_ns)
{
    char reason[96];
    uint64_t w;
    pthread_mutex_lock(&b->lock);
    if (still(b, gen, POL_BREAKER_HALF_OPEN, &w)) {
        uint64_t next = b->open_interval_ns * 2;
        if (next < b->open_interval_ns || next > b->cfg.open_max_ns)
            next = b->cfg.open_max_ns;
        b->open_interval_ns = next;
        snprintf(reason, sizeof(reason), "probe call failed; open for %llu ms", MS(next));
        transition_locked(b, w, POL_BREAKER_OPEN, now_ns, reason);
    }
    pthread_mutex_unlock(&b->lock);
}

static void close_now(pol_breaker_t *b, uint32_t gen, uint32_t ok, uint64_t now_ns)
{
    char reason[64];
    uint64_t w;
    pthread_mutex_lock(&b->lock);
    if (still(b, gen, POL_BREAKER_HALF_OPEN, &w)) {
        snprintf(reason, sizeof(reason), "%u probe call(s) succeeded", ok);
        b->open_interval_ns = b->cfg.open_ns;
        transition_locked(b, w, POL_BREAKER_CLOSED, now_ns, reason);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- reading ---------------------------------------------------------------------------- */

pol_breaker_state_t pol_breaker_poll(pol_breaker_t *b, uint64_t now_ns)
{
    uint64_t w = load_word(b);
    if (w_state(w) == POL_BREAKER_OPEN &&
        now_ns >= atomic_load_explicit(&b->open_until_ns, memory_order_relaxed)) {
        half_open_begin(b, w_gen(w), now_ns);
        w = load_word(b);
    }
    return w_state(w);
}

pol_breaker_state_t pol_breaker_state(const pol_breaker_t *b)
{
    return w_state(load_word(b));
}

uint32_t pol_breaker_in_flight(const pol_breaker_t *b)
{
    return atomic_load_explicit(&((pol_breaker_t *)b)->in_flight, memory_order_relaxed);
}

void pol_breaker_stats(const pol_breaker_t *b, pol_breaker_stats_t *out)
{
    pol_breaker_t *m = (pol_breaker_t *)b;
    out->trips = atomic_load_explicit(&m->trips, memory_order_relaxed);
    out->rejected_open = atomic_load_explicit(&m->rejected_open, memory_order_relaxed);
    out->rejected_concurrency =
        atomic_load_explicit(&m->rejected_concurrency, memory_order_relaxed);
}

/* Sums the buckets of generation gen that lie in the window ending at now_ns. */
static void window_sum(const pol_breaker_t *b, uint32_t gen, uint64_t now_ns, uint64_t *calls,
                       uint64_t *failures)
{
    pol_breaker_t *m = (pol_breaker_t *)b;
    uint64_t cur = (now_ns / b->bucket_ns) & EPOCH_MASK;
    uint64_t c = 0, f = 0;
    for (int i = 0; i < POL_BREAKER_BUCKETS; i++) {
        pol_breaker_bucket_t *k = &m->buckets[i];
        uint64_t tag = atomic_load(&k->tag);
        if ((tag >> 48) != (gen & 0xFFFFu))
            continue;
        if (((cur - (tag & EPOCH_MASK)) & EPOCH_MASK) >= POL_BREAKER_BUCKETS)
            continue; /* older than the window (or ahead of this thread's clock) */
        uint64_t kf = atomic_load(&k->failures); /* failures first: see the file comment */
        f += kf;
        c += kf + atomic_load(&k->successes);
    }
    *calls = c;
    *failures = f;
}

void pol_breaker_window(const pol_breaker_t *b, uint64_t now_ns, uint64_t *calls,
                        uint64_t *failures)
{
    window_sum(b, w_gen(load_word(b)), now_ns, calls, failures);
}

/* ---- admission -------------------------------------------------------------------------- */

/* Takes a concurrency slot; 0 when the cap is reached. */
static int take_slot(pol_breaker_t *b)
{
    uint32_t cap = b->cfg.max_concurrent;
    if (!cap) {
        atomic_fetch_add_explicit(&b->in_flight, 1, memory_order_relaxed);
        return 1;
    }
    uint32_t n = atomic_load_explicit(&b->in_flight, memory_order_relaxed);
    do {
        if (n >= cap)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&b->in_flight, &n, n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

/* Gives a probe slot of generation gen back (a cancelled probe, or one over the cap). */
static void give_back_probe(pol_breaker_t *b, uint32_t gen)
{
    uint64_t w = load_word(b);
    while (w_gen(w) == gen && w_state(w) == POL_BREAKER_HALF_OPEN && !(w_low(w) & PENDING) &&
           probes_issued(w_low(w)) > 0 && !cas_word(b, &w, w - PROBE_ONE))
        ;
}

static pol_breaker_decision_t reject_open(pol_breaker_t *b)
{
    atomic_fetch_add_explicit(&b->rejected_open, 1, memory_order_relaxed);
    return POL_BREAKER_REJECT_OPEN;
}

pol_breaker_decision_t pol_breaker_allow(pol_breaker_t *b, uint64_t now_ns,
                                         pol_breaker_permit_t *permit)
{
    uint64_t w = load_word(b);
    int probe = 0;
    for (;;) {
        pol_breaker_state_t s = w_state(w);
        if (w_low(w) & PENDING)
            return reject_open(b); /* tripping, or closing after the last probe */
        if (s == POL_BREAKER_CLOSED)
            break;
        if (s == POL_BREAKER_OPEN) {
            if (now_ns < atomic_load_explicit(&b->open_until_ns, memory_order_relaxed))
                return reject_open(b);
            half_open_begin(b, w_gen(w), now_ns);
            w = load_word(b);
            continue;
        }
        /* Half-open: take one of the probe slots, or be rejected like an open circuit. */
        if (probes_issued(w_low(w)) >= b->cfg.half_open_probes)
            return reject_open(b);
        if (cas_word(b, &w, w + PROBE_ONE)) {
            probe = 1;
            break;
        }
    }
    if (!take_slot(b)) {
        if (probe)
            give_back_probe(b, w_gen(w));
        atomic_fetch_add_explicit(&b->rejected_concurrency, 1, memory_order_relaxed);
        return POL_BREAKER_REJECT_CONCURRENCY;
    }
    permit->gen = w_gen(w);
    permit->probe = (uint8_t)probe;
    permit->done = 0;
    return POL_BREAKER_ALLOWED;
}

/* ---- results ---------------------------------------------------------------------------- */

/* The bucket of generation gen for now_ns, recycled if it holds older counts; NULL when the
 * generation ended meanwhile (the result is stale). */
static pol_breaker_bucket_t *bucket_for(pol_breaker_t *b, uint32_t gen, uint64_t now_ns)
{
    uint64_t epoch = now_ns / b->bucket_ns;
    pol_breaker_bucket_t *k = &b->buckets[epoch % POL_BREAKER_BUCKETS];
    uint64_t tag = tag_make(gen, epoch);
    if (atomic_load(&k->tag) == tag)
        return k;
    uint64_t w;
    pthread_mutex_lock(&b->lock);
    int live = still(b, gen, POL_BREAKER_CLOSED, &w);
    if (live && atomic_load(&k->tag) != tag) {
        atomic_store(&k->successes, 0);
        atomic_store(&k->failures, 0);
        atomic_store(&k->tag, tag);
    }
    pthread_mutex_unlock(&b->lock);
    return live ? k : NULL;
}

/* Sets PENDING on the word of generation gen in state st; 1 when this call set it (and so
 * must carry the transition out), 0 when the generation moved on or another thread decided. */
static int decide(pol_breaker_t *b, uint64_t w, uint32_t gen, pol_breaker_state_t st)
{
    while (w_gen(w) == gen && w_state(w) == st && !(w_low(w) & PENDING)) {
        if (cas_word(b, &w, w | PENDING))
            return 1;
    }
    return 0;
}

static void closed_result(pol_breaker_t *b, uint64_t w, pol_breaker_outcome_t outcome,
                          uint64_t now_ns)
{
    uint32_t gen = w_gen(w);
    if (w_low(w) & PENDING)
        return; /* the circuit is tripping: this result comes too late to count */
    int ratio = b->cfg.failure_ratio > 0.0;
    if (ratio) {
        pol_breaker_bucket_t *k = bucket_for(b, gen, now_ns);
        if (!k)
            return;
        atomic_fetch_add(outcome == POL_BREAKER_FAILURE ? &k->failures : &k->successes, 1);
    }
    uint32_t threshold = b->cfg.consecutive_failures;
    if (threshold && outcome == POL_BREAKER_FAILURE) {
        for (;;) {
            if (w_gen(w) != gen || w_state(w) != POL_BREAKER_CLOSED || (w_low(w) & PENDING))
                return; /* the circuit is tripping or tripped: nothing more to count */
            uint32_t n = w_low(w) < COUNT_MAX ? w_low(w) + 1 : COUNT_MAX;
            uint32_t low = n >= threshold ? (n | PENDING) : n;
            if (cas_word(b, &w, w_make(POL_BREAKER_CLOSED, gen, low))) {
                if (low & PENDING) {
                    trip(b, gen, now_ns, TRIP_CONSECUTIVE, n, 0);
                    return;
                }
                break;
            }
        }
    } else if (threshold) {
        while (w_gen(w) == gen && w_state(w) == POL_BREAKER_CLOSED && w_low(w) != 0 &&
               !(w_low(w) & PENDING) && !cas_word(b, &w, w_make(POL_BREAKER_CLOSED, gen, 0)))
            ;
    }
    if (ratio) {
        uint64_t calls, failures;
        window_sum(b, gen, now_ns, &calls, &failures);
        if (calls >= b->cfg.ratio_min_calls && calls > 0 &&
            (double)failures >= b->cfg.failure_ratio * (double)calls &&
            decide(b, load_word(b), gen, POL_BREAKER_CLOSED))
            trip(b, gen, now_ns, TRIP_RATIO, failures, calls);
    }
}

static void half_open_result(pol_breaker_t *b, uint64_t w, pol_breaker_outcome_t outcome,
                             uint64_t now_ns)
{
    uint32_t gen = w_gen(w);
    if (outcome == POL_BREAKER_FAILURE) {
        if (decide(b, w, gen, POL_BREAKER_HALF_OPEN))
            reopen(b, gen, now_ns);
        return;
    }
    for (;;) {
        if (w_gen(w) != gen || w_state(w) != POL_BREAKER_HALF_OPEN || (w_low(w) & PENDING))
            return;
        uint32_t ok = probes_ok(w_low(w)) + 1;
        uint64_t nw = ok >= b->cfg.half_open_probes ? (w + 1) | PENDING : w + 1;
        if (cas_word(b, &w, nw)) {
            if (nw & PENDING)
                close_now(b, gen, ok, now_ns);
            return;
        }
    }
}

void pol_breaker_done(pol_breaker_t *b, pol_breaker_permit_t *permit, pol_breaker_outcome_t outcome,
                      uint64_t now_ns)
{
    if (permit->done)
        return;
    permit->done = 1;
    atomic_fetch_sub_explicit(&b->in_flight, 1, memory_order_relaxed);
    uint32_t gen = permit->gen & GEN_MASK;
    if (outcome == POL_BREAKER_IGNORED) {
        if (permit->probe)
            give_back_probe(b, gen);
        return;
    }
    uint64_t w = load_word(b);
    if (w_gen(w) != gen)
        return; /* admitted before the last transition: its verdict is stale */
    if (w_state(w) == POL_BREAKER_CLOSED && !permit->probe)
        closed_result(b, w, outcome, now_ns);
    else if (w_state(w) == POL_BREAKER_HALF_OPEN && permit->probe)
        half_open_result(b, w, outcome, now_ns);
}

/* ---- messages --------------------------------------------------------------------------- */

pol_breaker_outcome_t pol_breaker_classify_grpc(int grpc_status)
{
    if (grpc_status < 0)
        return POL_BREAKER_FAILURE;
    switch (grpc_status) {
    case BREAKER_UNAVAILABLE:
    case BREAKER_INTERNAL:
    case BREAKER_DEADLINE_EXCEEDED:
        return POL_BREAKER_FAILURE;
    default:
        return POL_BREAKER_SUCCESS;
    }
}

int pol_breaker_format_open_message(const char *service, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "meshd: circuit open for %s", service ? service : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int pol_breaker_reject_message(const pol_breaker_t *b, pol_breaker_decision_t d, char *buf,
                               size_t cap)
{
    if (d == POL_BREAKER_REJECT_CONCURRENCY) {
        int n = snprintf(buf, cap, "meshd: too many concurrent calls to %s (limit %u)", b->service,
                         b->cfg.max_concurrent);
        return n < 0 || (size_t)n >= cap ? -1 : n;
    }
    return pol_breaker_format_open_message(b->service, buf, cap);
}
