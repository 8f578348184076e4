/*
 * policy/trace.c: W3C Trace Context and x-request-id for a call (see policy/trace.h).
 */
#include "policy/trace.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actors/prng.h"
#include "policy/sig_digest.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- per-thread PRNG (xoshiro256**, seeded from getrandom) ---------------------------------- */

static _Thread_local uint64_t rng[4];
static _Thread_local int rng_seeded;

static void seed(void)
{
    uint64_t s[4] = {0};
    if (getrandom(s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        /* No entropy yet (early boot): uniqueness is all IDs need, so time, pid and the
         * thread's address will do. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&rng_seeded;
        for (int i = 0; i < 4; i++)
            s[i] ^= mesh_splitmix64(&x);
    }
    if (!(s[0] | s[1] | s[2] | s[3]))
        s[0] = 1; /* xoshiro's one forbidden state */
    memcpy(rng, s, sizeof(rng));
    rng_seeded = 1;
}

/* The next n (1..3) words of the thread's sequence: the state is read and written back once
 * (a call's trace needs two or three words; one at a time they cost about 30 instructions
 * each, most of it loading and storing the thread-local state). */
static inline __attribute__((always_inline)) void next_n(uint64_t *out, int n)
{
    if (__builtin_expect(!rng_seeded, 0))
        seed();
    uint64_t s[4] = {rng[0], rng[1], rng[2], rng[3]};
    for (int i = 0; i < n; i++)
        out[i] = mesh_xoshiro_step(s);
    rng[0] = s[0];
    rng[1] = s[1];
    rng[2] = s[2];
    rng[3] = s[3];
}

static uint64_t next(void)
{
    uint64_t r;
    next_n(&r, 1);
    return r;
}

void pol_trace_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        uint64_t r = next();
        size_t k = n < 8 ? n : 8;
        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

/* ---- parsing --------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is invalid in traceparent */
}

/* Decodes 2n lowercase hex digits into n bytes; -1 on any other character. */
static int unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= p[i];
    return d == 0;
}

int pol_traceparent_parse(const char *s, size_t len, pol_traceparent_t *out)
{
    /* VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-PPPPPPPPPPPPPPPP-FF
     * 0  3                                36               53 */
    if (!s || len < POL_TRACEPARENT_LEN)
        return -1;
    pol_traceparent_t tp;
    if (unhex(s, 1, &tp.version) != 0 || tp.version == 0xff)
        return -1;
    if (tp.version == 0 && len != POL_TRACEPARENT_LEN)
        return -1;
    if (len > POL_TRACEPARENT_LEN && s[POL_TRACEPARENT_LEN] != '-')
        return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    if (unhex(s + 3, 16, tp.trace_id) != 0 || unhex(s + 36, 8, tp.parent_id) != 0 ||
        unhex(s + 53, 1, &tp.flags) != 0)
        return -1;
    if (all_zero(tp.trace_id, 16) || all_zero(tp.parent_id, 8))
        return -1;
    *out = tp;
    return 0;
}

/* n (a multiple of 8) bytes as 2n lowercase hex digits, without a terminator. Without SSE2,
 * four bytes at a time: their nibbles spread into the bytes of one 64-bit word, each turned into
 * its digit with no branch (10..15 get 'a' - '0' - 10 more), the word stored at once: about four
 * instructions a byte, against nine for a table of digit pairs (pol_hex). */
static void hex_words(const uint8_t *in, size_t n, char *out)
{
#if defined(__SSE2__)
    /* With SSE2 (every x86-64), eight bytes per 128-bit register: the nibbles split into two
     * registers, interleaved high first, and 0x30 added to each digit plus 0x27 more where it
     * is over 9: about a dozen instructions for a 16-byte id instead of about seventy. */
    const __m128i nib = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9), zero = _mm_set1_epi8('0'),
                  alpha = _mm_set1_epi8('a' - '0' - 10);
    for (size_t i = 0; i < n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(in + i));
        __m128i d =
            _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), nib), _mm_and_si128(b, nib));
        d = _mm_add_epi8(_mm_add_epi8(d, zero), _mm_and_si128(_mm_cmpgt_epi8(d, nine), alpha));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 * i), d);
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w;
        memcpy(&w, in + i, 4);
        uint64_t x = w;
        x = (x | x << 16) & 0x0000ffff0000ffffull;
        x = (x | x << 8) & 0x00ff00ff00ff00ffull; /* byte k of the four: bits 16k..16k+7 */
        /* the high nibble first (the lower address), then the low one */
        uint64_t v = (x >> 4 & 0x000f000f000f000full) | (x & 0x000f000f000f000full) << 8;
        uint64_t ten = (v + 0x0606060606060606ull) >> 4 & 0x0101010101010101ull; /* >= 10 */
        v += 0x3030303030303030ull + ten * ('a' - '0' - 10);
        memcpy(out + 2 * i, &v, 8);
    }
#else
    char tmp[2 * 16 + 1];
    pol_hex(in, n, tmp);
    memcpy(out, tmp, 2 * n);
#endif
}

void pol_traceparent_format(const pol_traceparent_t *tp, char *out)
{
    static const char digit[] = "0123456789abcdef";
    memcpy(out, "00-", 3);
    hex_words(tp->trace_id, 16, out + 3);
    out[35] = '-';
    hex_words(tp->parent_id, 8, out + 36);
    out[52] = '-';
    out[53] = digit[tp->flags >> 4];
    out[54] = digit[tp->flags & 15];
}

static int lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

static int keychar(char c)
{
    return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

/* A tracestate key: `lcalpha 0*255keychar`, or `(lcalpha/DIGIT) 0*240keychar "@" lcalpha
 * 0*13keychar`. */
static int key_valid(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at) {
        if (n < 1 || n > 256 || !lcalpha(k[0]))
            return 0;
        for (size_t i = 1; i < n; i++)
            if (!keychar(k[i]))
                return 0;
        return 1;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14)
        return 0;
    if (!lcalpha(k[0]) && !digit(k[0]))
        return 0;
    for (size_t i = 1; i < tn; i++)
        if (!keychar(k[i]))
            return 0;
    if (!lcalpha(at[1]))
        return 0;
    for (size_t i = 1; i < sn; i++)
        if (!keychar(at[1 + i]))
            return 0;
    return 1;
}

/* A tracestate value: 1..256 of 0x20..0x7e without ',' and '=', not ending in a space. */
static int value_valid(const char *v, size_t n)
{
    if (n < 1 || n > 256 || v[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return 0;
    return 1;
}

int pol_tracestate_valid(const char *s, size_t len)
{
    if (!s || len > POL_TRACESTATE_MAX)
        return 0;
    struct {
        const char *k;
        size_t n;
    } keys[POL_TRACESTATE_MEMBERS_MAX];
    int nkeys = 0;
    size_t i = 0;
    while (i <= len) {
        const char *comma = memchr(s + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - s) : len;
        size_t b = i, e = end;
        while (b < e && (s[b] == ' ' || s[b] == '\t'))
            b++;
        while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        if (e > b) { /* an empty member is allowed and ignored */
            const char *eq = memchr(s + b, '=', e - b);
            if (!eq)
                return 0;
            size_t kn = (size_t)(eq - (s + b));
            if (!key_valid(s + b, kn) || !value_valid(eq + 1, e - b - kn - 1))
                return 0;
            if (nkeys == POL_TRACESTATE_MEMBERS_MAX)
                return 0;
            for (int j = 0; j < nkeys; j++)
                if (keys[j].n == kn && memcmp(keys[j].k, s + b, kn) == 0)
                    return 0;
            keys[nkeys].k = s + b;
            keys[nkeys].n = kn;
            nkeys++;
        }
        if (!comma)
            break;
        i = end + 1;
    }
    return nkeys > 0; /* nothing but empty members: nothing to pass on */
}

int pol_request_id_valid(const char *s, size_t len)
{
    if (!s || len < 1 || len > POL_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

void pol_uuid4(char *out)
{
    uint8_t b[16];
    pol_trace_random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    char hex[32];
    hex_words(b, 16, hex);
    /* 8-4-4-4-12 */
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

/* A trace id and a span id: random and not all zero (an all-zero id is invalid); the first
 * draw takes the words it needs at once (next_n), a redraw (about once in 2^64 calls) one at a
 * time. The sequence of words is the same either way: trace id, then span id. */
static void random_ids(uint8_t trace_id[16], uint8_t span_id[8])
{
    uint64_t w[3];
    next_n(w, 3);
    while (!(w[0] | w[1])) {
        w[0] = w[2];
        w[1] = next();
        w[2] = next();
    }
    while (!w[2])
        w[2] = next();
    memcpy(trace_id, w, 16);
    memcpy(span_id, &w[2], 8);
}

static void random_span_id(uint8_t id[8])
{
    uint64_t a;
    next_n(&a, 1);
    while (!a)
        a = next();
    memcpy(id, &a, 8);
}

void pol_trace_begin(pol_trace_t *t, const char *traceparent, size_t tp_len, const char *tracestate,
                     size_t ts_len, const char *request_id, size_t rid_len, uint8_t new_flags,
                     int create_request_id)
{
    pol_traceparent_t in, outp;
    t->trace_reused = traceparent && pol_traceparent_parse(traceparent, tp_len, &in) == 0;
    if (t->trace_reused) {
        memcpy(t->trace_id, in.trace_id, 16);
        memcpy(t->parent_id, in.parent_id, 8);
        t->flags = in.flags & POL_TRACE_FLAG_SAMPLED;
        random_span_id(t->span_id);
    } else {
        random_ids(t->trace_id, t->span_id);
        memset(t->parent_id, 0, 8);
        t->flags = new_flags & POL_TRACE_FLAG_SAMPLED;
    }
    outp.version = 0;
    memcpy(outp.trace_id, t->trace_id, 16);
    memcpy(outp.parent_id, t->span_id, 8);
    outp.flags = t->flags;
    pol_traceparent_format(&outp, t->traceparent);
    t->traceparent[POL_TRACEPARENT_LEN] = '\0';
    memcpy(t->trace_id_hex, t->traceparent + 3, 32); /* (the trace id, hexed just above) */
    t->trace_id_hex[32] = '\0';

    t->tracestate_kept =
        t->trace_reused && tracestate && ts_len > 0 && pol_tracestate_valid(tracestate, ts_len);
    t->tracestate_len = t->tracestate_kept ? ts_len : 0;
    if (t->tracestate_kept)
        memcpy(t->tracestate, tracestate, ts_len);
    t->tracestate[t->tracestate_len] = '\0';

    t->request_id_reused = request_id && pol_request_id_valid(request_id, rid_len);
    if (t->request_id_reused) {
        memcpy(t->request_id, request_id, rid_len);
        t->request_id[rid_len] = '\0';
    } else if (create_request_id) {
        pol_uuid4(t->request_id);
    } else {
        t->request_id[0] = '\0';
    }
}
