/*
 * tests/unit/policy_sig/test_trace.c: W3C Trace Context and x-request-id (policy/trace.h).
 *
 * traceparent cases follow the W3C specification and its test suite (versions, lengths, case,
 * all-zero IDs, separators, future versions); tracestate limits (512 bytes, 32 members, key
 * and value grammar, duplicates); x-request-id reuse rules; and what a call forwards: the
 * caller's trace-id with a new span id, or a new trace, and IDs that are never zero and
 * distinct, also across threads.
 */
#include "policy/trace.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parses(const char *s)
{
    pol_traceparent_t tp;
    return pol_traceparent_parse(s, strlen(s), &tp) == 0;
}

static void test_traceparent(void)
{
    pol_traceparent_t tp;
    CHECK(pol_traceparent_parse(TP_OK, strlen(TP_OK), &tp) == 0);
    CHECK_EQ(tp.version, 0);
    CHECK_EQ(tp.trace_id[0], 0x4b);
    CHECK_EQ(tp.trace_id[15], 0x36);
    CHECK_EQ(tp.parent_id[0], 0x00);
    CHECK_EQ(tp.parent_id[7], 0xb7);
    CHECK_EQ(tp.flags, 1);
    char out[POL_TRACEPARENT_LEN + 1];
    pol_traceparent_format(&tp, out);
    out[POL_TRACEPARENT_LEN] = '\0';
    CHECK_STR(out, TP_OK);

    static const char *valid[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", /* unknown flags parse */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* a future version */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
        "fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-",
        "00-00000000000000000000000000000001-0000000000000001-01",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        if (!parses(valid[i]))
            fprintf(stderr, "rejected: %s\n", valid[i]);
        CHECK(parses(valid[i]));
    }
    static const char *invalid[] = {
        "",
        "00",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 must be 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", /* 54 characters */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what-the-future",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent-id */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01", /* misplaced dash */
        "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (parses(invalid[i]))
            fprintf(stderr, "accepted: %s\n", invalid[i]);
        CHECK(!parses(invalid[i]));
    }
    /* Not NUL-terminated: only len characters are read. */
    char buf[64];
    memcpy(buf, TP_OK "-x", 57);
    CHECK(pol_traceparent_parse(buf, 55, &tp) == 0);
    CHECK(pol_traceparent_parse(NULL, 0, &tp) == -1);
}

static int ts_ok(const char *s)
{
    return pol_tracestate_valid(s, strlen(s));
}

/* Formatting writes every byte value as its two lowercase digits, in order (the ids are hexed
 * several bytes at a time): each of the 256 values in each place of the ids, and as flags. */
static void test_traceparent_format_all_bytes(void)
{
    static const char hexd[] = "0123456789abcdef";
    for (int base = 0; base < 256; base++) {
        pol_traceparent_t tp = {.version = 0, .flags = (uint8_t)base};
        for (int i = 0; i < 16; i++)
            tp.trace_id[i] = (uint8_t)(base + 17 * i);
        for (int i = 0; i < 8; i++)
            tp.parent_id[i] = (uint8_t)(base + 31 * i + 5);
        char want[POL_TRACEPARENT_LEN + 1], out[POL_TRACEPARENT_LEN + 1];
        char *w = want;
        *w++ = '0', *w++ = '0', *w++ = '-';
        for (int i = 0; i < 16; i++)
            *w++ = hexd[tp.trace_id[i] >> 4], *w++ = hexd[tp.trace_id[i] & 15];
        *w++ = '-';
        for (int i = 0; i < 8; i++)
            *w++ = hexd[tp.parent_id[i] >> 4], *w++ = hexd[tp.parent_id[i] & 15];
        *w++ = '-';
        *w++ = hexd[tp.flags >> 4], *w++ = hexd[tp.flags & 15];
        *w = '\0';
        pol_traceparent_format(&tp, out);
        out[POL_TRACEPARENT_LEN] = '\0';
        CHECK_STR(out, want);
        pol_traceparent_t back;
        CHECK(pol_traceparent_parse(out, POL_TRACEPARENT_LEN, &back) == 0 &&
              back.flags == tp.flags);
    }
}

static void test_tracestate(void)
{
    CHECK(ts_ok("rojo=00f067aa0ba902b7"));
    CHECK(ts_ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    CHECK(ts_ok("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE ,,"));
    CHECK(ts_ok("tenant1@vendor=value,a*/-_9=x y"));
    CHECK(ts_ok("1tenant@vendor=x"));
    CHECK(!ts_ok(""));
    CHECK(!ts_ok(" , "));
    CHECK(!ts_ok("Rojo=1"));              /* uppercase key */
    CHECK(!ts_ok("1rojo=1"));             /* a plain key starts with a letter */
    CHECK(!ts_ok("rojo"));                /* no value */
    CHECK(!ts_ok("rojo="));               /* empty value */
    CHECK(!ts_ok("rojo=a=b"));            /* '=' in a value */
    CHECK(!ts_ok("rojo=x\x01y"));         /* control character */
    CHECK(!ts_ok("rojo=1,rojo=2"));       /* duplicate key */
    CHECK(!ts_ok("t@=1"));                /* empty system */
    CHECK(!ts_ok("t@Vendor=1"));          /* system starts lowercase */
    CHECK(!ts_ok("t@abcdefghijklmno=1")); /* system too long (15) */
    CHECK(ts_ok("t@abcdefghijklmn=1"));   /* 14 is fine */

    /* 32 members pass, 33 do not. */
    char s[1024];
    size_t n = 0;
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%sk%d=v", i ? "," : "", i);
    CHECK(!pol_tracestate_valid(s, n));
    char *last = strrchr(s, ',');
    CHECK(pol_tracestate_valid(s, (size_t)(last - s)));

    /* 512 bytes pass, 513 do not. */
    memset(s, 'x', sizeof(s));
    memcpy(s, "k=", 2);
    CHECK(pol_tracestate_valid(s, 2 + 256)); /* a value is at most 256 characters */
    CHECK(!pol_tracestate_valid(s, 2 + 257));
    n = 0;
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%sk%d=%0250d", i ? "," : "", i, 0);
    CHECK(n > 512);
    CHECK(!pol_tracestate_valid(s, n));
    /* Exactly 512: two members of 255 bytes each plus a comma = 512 - 1 ... pad the second. */
    n = (size_t)snprintf(s, sizeof(s), "a=%0253d,b=%0254d", 0, 0);
    CHECK_EQ(n, 512);
    CHECK(pol_tracestate_valid(s, n));
}

static void test_request_id(void)
{
    CHECK(pol_request_id_valid("abc-123", 7));
    CHECK(pol_request_id_valid("!~", 2));
    CHECK(!pol_request_id_valid("", 0));
    CHECK(!pol_request_id_valid("a b", 3));
    CHECK(!pol_request_id_valid("a\tb", 3));
    CHECK(!pol_request_id_valid("caf\xc3\xa9", 5));
    char s[200];
    memset(s, 'a', sizeof(s));
    CHECK(pol_request_id_valid(s, 128));
    CHECK(!pol_request_id_valid(s, 129));

    char u[POL_UUID_LEN + 1];
    pol_uuid4(u);
    CHECK_EQ(strlen(u), 36);
    CHECK(u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-');
    CHECK(u[14] == '4');
    CHECK(strchr("89ab", u[19]) != NULL);
}

static void test_call_reuse(void)
{
    pol_trace_t t;
    const char *st = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
    pol_trace_begin(&t, tp, strlen(tp), st, strlen(st), "req-42", 6, POL_TRACE_FLAG_SAMPLED, 1);
    CHECK(t.trace_reused && t.tracestate_kept && t.request_id_reused);
    CHECK_STR(t.trace_id_hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK_EQ(strlen(t.traceparent), 55);
    /* Same trace, our span as parent, version 00, sampled kept and other flags cleared. */
    CHECK(strncmp(t.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    CHECK(strncmp(t.traceparent + 36, "00f067aa0ba902b7", 16) != 0);
    CHECK(strcmp(t.traceparent + 52, "-01") == 0);
    CHECK(parses(t.traceparent));
    CHECK_EQ(t.parent_id[7], 0xb7);
    CHECK_STR(t.tracestate, st);
    CHECK_EQ(t.tracestate_len, strlen(st));
    CHECK_STR(t.request_id, "req-42");

    /* Unsampled stays unsampled; a future version is answered with 00. */
    tp = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future";
    pol_trace_begin(&t, tp, strlen(tp), NULL, 0, NULL, 0, POL_TRACE_FLAG_SAMPLED, 1);
    CHECK(t.trace_reused && !t.tracestate_kept && !t.request_id_reused);
    CHECK(strncmp(t.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    CHECK(strcmp(t.traceparent + 52, "-00") == 0);
    CHECK_EQ(t.tracestate_len, 0);
    CHECK_STR(t.tracestate, "");
    CHECK_EQ(strlen(t.request_id), 36);

    /* Two hops of the same call get different span ids. */
    pol_trace_t t2;
    pol_trace_begin(&t2, tp, strlen(tp), NULL, 0, NULL, 0, 0, 1);
    CHECK(memcmp(t.span_id, t2.span_id, 8) != 0);
    CHECK(strcmp(t.request_id, t2.request_id) != 0);

    /* The default: an x-request-id is passed on, never created; the trace id is. */
    pol_trace_begin(&t2, NULL, 0, NULL, 0, NULL, 0, POL_TRACE_FLAG_SAMPLED, 0);
    CHECK(!t2.trace_reused && !t2.request_id_reused);
    CHECK_STR(t2.request_id, "");
    CHECK(parses(t2.traceparent));
    pol_trace_begin(&t2, NULL, 0, NULL, 0, "bad id", 6, POL_TRACE_FLAG_SAMPLED, 0);
    CHECK_STR(t2.request_id, "");
    pol_trace_begin(&t2, NULL, 0, NULL, 0, "req-43", 6, POL_TRACE_FLAG_SAMPLED, 0);
    CHECK(t2.request_id_reused);
    CHECK_STR(t2.request_id, "req-43");
}

static void test_call_create(void)
{
    pol_trace_t t;
    /* An invalid traceparent starts a new trace and drops the tracestate with it. */
    const char *tp = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    const char *st = "rojo=1";
    char longid[200];
    memset(longid, 'r', sizeof(longid));
    pol_trace_begin(&t, tp, strlen(tp), st, strlen(st), longid, sizeof(longid), 0, 1);
    CHECK(!t.trace_reused && !t.tracestate_kept && !t.request_id_reused);
    CHECK(parses(t.traceparent));
    CHECK(strcmp(t.traceparent + 52, "-00") == 0);
    CHECK(strncmp(t.traceparent + 3, t.trace_id_hex, 32) == 0);
    static const uint8_t zero[8];
    CHECK(memcmp(t.parent_id, zero, 8) == 0);
    CHECK_EQ(strlen(t.request_id), 36);
    pol_trace_begin(&t, NULL, 0, NULL, 0, "bad id", 6, POL_TRACE_FLAG_SAMPLED, 1);
    CHECK(strcmp(t.traceparent + 52, "-01") == 0);
    CHECK(!t.request_id_reused);
    /* A valid traceparent with an oversized tracestate: trace kept, tracestate dropped. */
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "k=", 2);
    pol_trace_begin(&t, TP_OK, strlen(TP_OK), big, sizeof(big), NULL, 0, 0, 0);
    CHECK(t.trace_reused && !t.tracestate_kept && t.tracestate_len == 0);
}

/* hex of n bytes, byte by byte (the reference the formatted ids are held to). */
static void ref_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        out[2 * i] = hexd[in[i] >> 4], out[2 * i + 1] = hexd[in[i] & 15];
    out[2 * n] = '\0';
}

/* New and continued traces: the traceparent's text and trace_id_hex are the id bytes (drawn
 * several words at once and hexed a register at a time), the span never repeats a half of the
 * trace id, and the bits of the ids are about half ones. */
static void test_new_ids_text(void)
{
    long ones = 0, bits = 0;
    for (int i = 0; i < 4000; i++) {
        pol_trace_t t;
        if (i & 1)
            pol_trace_begin(&t, TP_OK, strlen(TP_OK), NULL, 0, NULL, 0, 0, 0);
        else
            pol_trace_begin(&t, NULL, 0, NULL, 0, NULL, 0, POL_TRACE_FLAG_SAMPLED, 0);
        char hex[33];
        ref_hex(t.trace_id, 16, hex);
        CHECK_STR(t.trace_id_hex, hex);
        CHECK(strncmp(t.traceparent + 3, hex, 32) == 0);
        ref_hex(t.span_id, 8, hex);
        CHECK(strncmp(t.traceparent + 36, hex, 16) == 0);
        CHECK(parses(t.traceparent));
        CHECK(memcmp(t.span_id, t.trace_id, 8) != 0 && memcmp(t.span_id, t.trace_id + 8, 8) != 0);
        if (i & 1) {
            CHECK(t.trace_reused && strncmp(t.trace_id_hex, &TP_OK[3], 32) == 0);
        } else {
            for (int b = 0; b < 16; b++)
                ones += __builtin_popcount(t.trace_id[b]);
            bits += 128;
        }
        for (int b = 0; b < 8; b++)
            ones += __builtin_popcount(t.span_id[b]);
        bits += 64;
    }
    /* 512,000 bits: half of them within 2,000 (over 5 standard deviations of 362). */
    CHECK(ones > bits / 2 - 2000 && ones < bits / 2 + 2000);
}

/* 20000 new trace ids from one thread (plus 20000 from another) are distinct. */
#define NIDS 20000
static uint8_t ids[2][NIDS][16];

static void *make_ids(void *arg)
{
    uint8_t(*out)[16] = arg;
    for (int i = 0; i < NIDS; i++) {
        pol_trace_t t;
        pol_trace_begin(&t, NULL, 0, NULL, 0, NULL, 0, 0, 0);
        memcpy(out[i], t.trace_id, 16);
    }
    return NULL;
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void test_unique_ids(void)
{
    pthread_t th;
    CHECK(pthread_create(&th, NULL, make_ids, ids[1]) == 0);
    make_ids(ids[0]);
    pthread_join(th, NULL);
    qsort(ids, 2 * NIDS, 16, cmp16);
    static const uint8_t zero[16];
    CHECK(memcmp(ids[0][0], zero, 16) != 0);
    for (int i = 1; i < 2 * NIDS; i++)
        CHECK(memcmp(((uint8_t(*)[16])ids)[i - 1], ((uint8_t(*)[16])ids)[i], 16) != 0);
}

int main(void)
{
    RUN(test_traceparent);
    RUN(test_traceparent_format_all_bytes);
    RUN(test_tracestate);
    RUN(test_request_id);
    RUN(test_call_reuse);
    RUN(test_call_create);
    RUN(test_new_ids_text);
    RUN(test_unique_ids);
    return 0;
}
