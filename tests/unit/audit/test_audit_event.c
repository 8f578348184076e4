/*
 * tests/unit/audit/test_audit_event.c: the audit record encoder (audit/event.h). Every type
 * is encoded with hostile strings and parsed back with jansson: the values come back as they
 * went in (invalid UTF-8 as U+FFFD, one per byte), timestamps agree with gmtime_r, event_ids
 * are unique and ordered, long fields are cut at their caps and flagged, a short buffer gives
 * AUDIT_E2BIG without writing past its end, and invalid events are refused with a reason.
 *
 * `test_audit_event --emit` prints one record per line for every type and hostile string
 * instead: tests/unit/audit/check_schema.py validates them against the JSON Schema.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/event.h"
#include "tests/check.h"

static const uint8_t BOOT[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
#define BOOT_HEX "0123456789abcdeffedcba9876543210"

/* 2026-12-01T16:40:00.123456Z */
#define TS_EXAMPLE 1796143200123456LL

/* Hostile strings and what a JSON parser must read back from their records. */
typedef struct {
    const char *in, *out;
} nasty_t;

static const nasty_t NASTY[] = {
    {"plain ascii", "plain ascii"},
    {"", ""},
    {"\"quoted\" and \\back\\slash\\", "\"quoted\" and \\back\\slash\\"},
    {"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
     "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f",
     "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
     "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"},
    {"line\nbreak\r\ttab \x1b[31mred\x1b[0m", "line\nbreak\r\ttab \x1b[31mred\x1b[0m"},
    {"h\xc3\xa9llo \xe2\x98\x83 \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac",
     "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac"},
    {"</script>\xe2\x80\xa8\xe2\x80\xa9", "</script>\xe2\x80\xa8\xe2\x80\xa9"},
    /* invalid UTF-8: each offending byte becomes U+FFFD (EF BF BD) */
    {"a\xff\xfe"
     "b",
     "a\xef\xbf\xbd\xef\xbf\xbd"
     "b"},
    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                                 /* overlong '/' */
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 /* a surrogate */
    {"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},                                 /* cut short */
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
    {"\x80x", "\xef\xbf\xbdx"},                                               /* continuation */
    {"\xf8\x88\x80\x80\x80",
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* five bytes */
    {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},         /* overlong NUL */
    {"ok \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", "ok \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"},
};
#define N_NASTY (sizeof(NASTY) / sizeof(NASTY[0]))

static audit_ctx_t ctx;

/* A valid event of type t with every string set to s. */
static audit_event_t make(audit_type_t t, const char *s, uint64_t seq)
{
    audit_event_t e = {
        .type = t,
        .ts_us = TS_EXAMPLE,
        .seq = seq,
        .reason = s,
        .service = s,
        .method = s,
        .peer_address = s,
        .peer_identity = s,
        .trace_id = s,
        .has_status = true,
        .status = 14,
        .instance = s,
        .source = AUDIT_SOURCE_LEASE_EXPIRY,
        .member = s,
        .ready = true,
        .dropped = 42,
    };
    return e;
}

static json_t *parse(const char *buf, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        fprintf(stderr, "jansson: %s at %d in: %.*s\n", err.text, err.position, (int)len, buf);
        exit(1);
    }
    CHECK(json_is_object(o));
    return o;
}

static const char *sget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(v != NULL);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The keys a record of type t has besides the common ones. */
static const char *const *own_keys(audit_type_t t)
{
    static const char *const inst[] = {"instance", NULL},
                             *const removed[] = {"instance", "source", NULL},
                             *const member[] = {"member", NULL}, *const ready[] = {"ready", NULL},
                             *const dropped[] = {"dropped", NULL}, *const none[] = {NULL};
    switch (t) {
    case AUDIT_BREAKER_OPEN:
    case AUDIT_BREAKER_HALF_OPEN:
    case AUDIT_BREAKER_CLOSED:
    case AUDIT_INSTANCE_REGISTERED:
    case AUDIT_MONITOR_EVICTION:
    case AUDIT_MONITOR_READMITTED:
    case AUDIT_MONITOR_EVICTION_HELD:
    case AUDIT_OUTLIER_EJECTED:
    case AUDIT_OUTLIER_RETURNED:
        return inst;
    case AUDIT_INSTANCE_REMOVED:
        return removed;
    case AUDIT_MEMBER_DEAD:
    case AUDIT_MEMBER_LEFT:
    case AUDIT_GOSSIP_RECORD_REJECTED:
        return member;
    case AUDIT_READINESS_CHANGED:
        return ready;
    case AUDIT_AUDIT_DROPPED:
        return dropped;
    default:
        return none;
    }
}

/* 0 when got is want; 1 when got is a shorter prefix of it (a field cut at its cap). */
static int same_or_cut(const char *got, const char *want)
{
    CHECK(got != NULL);
    if (strcmp(got, want) == 0)
        return 0;
    size_t n = strlen(got);
    if (n >= strlen(want) || strncmp(got, want, n) != 0) {
        fprintf(stderr, "expected \"%s\" or a prefix of it, got \"%s\"\n", want, got);
        exit(1);
    }
    return 1;
}

static void test_every_type_round_trips(void)
{
    char buf[AUDIT_RECORD_MAX];
    uint64_t seq = 0;
    for (unsigned t = 1; t < AUDIT_TYPE_END; t++) {
        for (size_t i = 0; i < N_NASTY; i++) {
            audit_event_t e = make((audit_type_t)t, NASTY[i].in, ++seq);
            ssize_t n = audit_event_encode(&ctx, &e, buf, sizeof(buf));
            CHECK(n > 0);
            CHECK_EQ(strlen(buf), n);
            CHECK(memchr(buf, '\n', (size_t)n) == NULL); /* one line, always */
            json_t *o = parse(buf, (size_t)n);
            CHECK_EQ(json_integer_value(json_object_get(o, "schema")), AUDIT_SCHEMA_VERSION);
            CHECK_STR(sget(o, "type"), audit_type_name((audit_type_t)t));
            CHECK_STR(sget(o, "outcome"), audit_outcome_name(audit_event_outcome(&e)));
            CHECK_STR(sget(o, "ts"), "2026-12-01T16:40:00.123456Z");
            CHECK_STR(sget(o, "node"), "node \"a\"\n\xef\xbf\xbd");
            CHECK_STR(sget(o, "role"), "sidecar");
            int cut = 0;
            const char *strs[] = {"reason", "service", "method", "trace_id"};
            for (size_t k = 0; k < 4; k++)
                cut |= same_or_cut(sget(o, strs[k]), NASTY[i].out);
            json_t *peer = json_object_get(o, "peer");
            CHECK(json_is_object(peer));
            CHECK_EQ(json_object_size(peer), 2);
            cut |= same_or_cut(sget(peer, "address"), NASTY[i].out);
            cut |= same_or_cut(sget(peer, "identity"), NASTY[i].out);
            CHECK_EQ(json_integer_value(json_object_get(o, "status")), 14);

            /* exactly the common keys plus the type's own */
            const char *const *own = own_keys((audit_type_t)t);
            size_t n_own = 0;
            for (; own[n_own]; n_own++) {
                json_t *v = json_object_get(o, own[n_own]);
                CHECK(v != NULL);
                if (strcmp(own[n_own], "instance") == 0 || strcmp(own[n_own], "member") == 0)
                    cut |= same_or_cut(json_string_value(v), NASTY[i].out);
            }
            /* "truncated" exactly when a field came back shorter */
            CHECK_EQ(json_is_true(json_object_get(o, "truncated")), cut);
            CHECK_EQ(json_object_size(o), 13 + n_own + cut);
            if (t == AUDIT_INSTANCE_REMOVED)
                CHECK_STR(sget(o, "source"), "lease_expiry");
            if (t == AUDIT_READINESS_CHANGED)
                CHECK(json_is_true(json_object_get(o, "ready")));
            if (t == AUDIT_AUDIT_DROPPED)
                CHECK_EQ(json_integer_value(json_object_get(o, "dropped")), 42);
            json_decref(o);
        }
    }
}

static void test_nulls_and_defaults(void)
{
    char buf[AUDIT_RECORD_MAX];
    audit_event_t e = {.type = AUDIT_BREAKER_HALF_OPEN, .ts_us = 0, .seq = 7};
    ssize_t n = audit_event_encode(&ctx, &e, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_STR(buf, "{\"schema\":1,\"event_id\":\"" BOOT_HEX "-0000000000000007\","
                   "\"ts\":\"1970-01-01T00:00:00.000000Z\",\"type\":\"breaker_half_open\","
                   "\"outcome\":\"unknown\",\"reason\":null,\"node\":\"node \\\"a\\\"\\n"
                   "\xef\xbf\xbd\",\"role\":\"sidecar\",\"service\":null,\"method\":null,"
                   "\"peer\":{\"address\":null,\"identity\":null},\"trace_id\":null,"
                   "\"status\":null,\"instance\":null}");

    /* status 0 (OK) is a status, not "none" */
    e.has_status = true;
    e.status = 0;
    CHECK(audit_event_encode(&ctx, &e, buf, sizeof(buf)) > 0);
    CHECK_CONTAINS(buf, "\"status\":0,");

    /* default outcomes that depend on the event */
    audit_event_t r = {.type = AUDIT_INSTANCE_REMOVED, .seq = 1, .instance = "a:1"};
    r.source = AUDIT_SOURCE_ETCD;
    CHECK_EQ(audit_event_outcome(&r), AUDIT_OUTCOME_SUCCESS);
    r.source = AUDIT_SOURCE_MONITOR;
    CHECK_EQ(audit_event_outcome(&r), AUDIT_OUTCOME_FAILURE);
    audit_event_t rd = {.type = AUDIT_READINESS_CHANGED, .seq = 1, .ready = false};
    CHECK_EQ(audit_event_outcome(&rd), AUDIT_OUTCOME_FAILURE);
    CHECK(audit_event_encode(&ctx, &rd, buf, sizeof(buf)) > 0);
    CHECK_CONTAINS(buf, "\"outcome\":\"failure\"");
    CHECK_CONTAINS(buf, "\"ready\":false}");
    audit_event_t d = {.type = AUDIT_ACL_DENIED, .seq = 1};
    CHECK_EQ(audit_event_outcome(&d), AUDIT_OUTCOME_DENIED);
    d.outcome = AUDIT_OUTCOME_UNKNOWN; /* the caller's outcome wins */
    CHECK(audit_event_encode(&ctx, &d, buf, sizeof(buf)) > 0);
    CHECK_CONTAINS(buf, "\"outcome\":\"unknown\"");

    /* names both ways */
    for (unsigned t = 1; t < AUDIT_TYPE_END; t++)
        CHECK_EQ(audit_type_parse(audit_type_name((audit_type_t)t)), t);
    CHECK_EQ(audit_type_parse("breaker_opened"), 0);
    CHECK_EQ(audit_type_parse(NULL), 0);
    CHECK(audit_type_name(AUDIT_TYPE_END) == NULL);
    CHECK(audit_type_name((audit_type_t)0) == NULL);
}

static void test_timestamps_agree_with_gmtime(void)
{
    static const struct {
        int64_t us;
        const char *want;
    } fixed[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {TS_EXAMPLE, "2026-12-01T16:40:00.123456Z"},
        {951782400000001LL, "2000-02-29T00:00:00.000001Z"},  /* leap day of a 400 year */
        {4107542399999999LL, "2100-02-28T23:59:59.999999Z"}, /* 2100 is not a leap year */
        {253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
    };
    char buf[AUDIT_RECORD_MAX];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        audit_event_t e = {.type = AUDIT_CONFIG_REJECTED, .seq = 1, .ts_us = fixed[i].us};
        CHECK(audit_event_encode(&ctx, &e, buf, sizeof(buf)) > 0);
        json_t *o = parse(buf, strlen(buf));
        CHECK_STR(sget(o, "ts"), fixed[i].want);
        json_decref(o);
    }
    /* many instants against the C library */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = (int64_t)(x % 253402300800000000ULL);
        audit_event_t e = {.type = AUDIT_CONFIG_REJECTED, .seq = 1, .ts_us = us};
        ssize_t n = audit_event_encode(&ctx, &e, buf, sizeof(buf));
        CHECK(n > 0);
        time_t s = (time_t)(us / 1000000);
        struct tm tm;
        CHECK(gmtime_r(&s, &tm) != NULL);
        char want[64];
        size_t l = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + l, sizeof(want) - l, ".%06dZ", (int)(us % 1000000));
        const char *ts = strstr(buf, "\"ts\":\"") + 6;
        if (strncmp(ts, want, 27) != 0) {
            fprintf(stderr, "ts of %lld: got %.27s, want %s\n", (long long)us, ts, want);
            exit(1);
        }
    }
}

static void test_event_ids(void)
{
    char a[AUDIT_EVENT_ID_LEN + 1], b[AUDIT_EVENT_ID_LEN + 1];
    audit_ctx_event_id(&ctx, 1, a);
    CHECK_STR(a, BOOT_HEX "-0000000000000001");
    audit_ctx_event_id(&ctx, UINT64_MAX, a);
    CHECK_STR(a, BOOT_HEX "-ffffffffffffffff");

    /* two processes (fresh boot ids from the OS) never share an id; sequences count up */
    audit_ctx_t c1, c2;
    char err[200];
    CHECK(audit_ctx_init(&c1, "n1", "proxy", err, sizeof(err)) == 0);
    CHECK(audit_ctx_init(&c2, "n1", "proxy", err, sizeof(err)) == 0);
    CHECK(memcmp(c1.boot_id, c2.boot_id, 16) != 0);
    uint64_t s1 = audit_ctx_next_seq(&c1), s2 = audit_ctx_next_seq(&c1);
    CHECK_EQ(s1, 1);
    CHECK_EQ(s2, 2);
    CHECK_EQ(audit_ctx_next_seq(&c2), 1);
    audit_ctx_event_id(&c1, 1, a);
    audit_ctx_event_id(&c2, 1, b);
    CHECK(strcmp(a, b) != 0);
    /* within a boot, ids sort like their sequence (fixed width) */
    audit_ctx_event_id(&c1, 9, a);
    audit_ctx_event_id(&c1, 10, b);
    CHECK(strcmp(a, b) < 0);

    /* the record carries the id of the event's sequence */
    char buf[AUDIT_RECORD_MAX];
    audit_event_t e = {.type = AUDIT_MEMBER_LEFT, .seq = s2, .member = "m"};
    CHECK(audit_event_encode(&c1, &e, buf, sizeof(buf)) > 0);
    json_t *o = parse(buf, strlen(buf));
    audit_ctx_event_id(&c1, s2, a);
    CHECK_STR(sget(o, "event_id"), a);
    json_decref(o);
}

/* Encodes a reason of s and returns the parsed record. */
static json_t *with_reason(const char *s)
{
    static char buf[AUDIT_RECORD_MAX];
    audit_event_t e = {.type = AUDIT_CONFIG_REJECTED, .seq = 1, .reason = s};
    ssize_t n = audit_event_encode(&ctx, &e, buf, sizeof(buf));
    CHECK(n > 0);
    return parse(buf, (size_t)n);
}

static void test_truncation(void)
{
    char big[4 * AUDIT_MAX_REASON];

    /* exactly at the cap: whole, not flagged */
    memset(big, 'x', AUDIT_MAX_REASON);
    big[AUDIT_MAX_REASON] = '\0';
    json_t *o = with_reason(big);
    CHECK_EQ(strlen(sget(o, "reason")), AUDIT_MAX_REASON);
    CHECK(json_object_get(o, "truncated") == NULL);
    json_decref(o);

    /* one byte more: cut to the cap and flagged */
    big[AUDIT_MAX_REASON] = 'y';
    big[AUDIT_MAX_REASON + 1] = '\0';
    o = with_reason(big);
    CHECK_EQ(strlen(sget(o, "reason")), AUDIT_MAX_REASON);
    CHECK(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);

    /* escapes count: 1000 control bytes are 6000 bytes of JSON text, 170 fit */
    memset(big, '\x01', 1000);
    big[1000] = '\0';
    o = with_reason(big);
    CHECK_EQ(strlen(sget(o, "reason")), AUDIT_MAX_REASON / 6);
    CHECK(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);

    /* never cut inside a character: 3-byte characters after one ASCII byte */
    big[0] = 'a';
    size_t p = 1;
    while (p + 3 < sizeof(big) - 1) {
        memcpy(big + p, "\xe2\x98\x83", 3);
        p += 3;
    }
    big[p] = '\0';
    o = with_reason(big);
    const char *r = sget(o, "reason");
    CHECK_EQ(strlen(r), 1 + (AUDIT_MAX_REASON - 1) / 3 * 3); /* 1024 = 1 + 341*3: whole */
    CHECK(strncmp(r, big, strlen(r)) == 0);
    json_decref(o);
    big[0] = 'a';
    big[1] = 'b'; /* now 1025 would be needed: the last snowman does not fit */
    memcpy(big + 2, "\xe2\x98\x83", 3);
    p = 2;
    while (p + 3 < sizeof(big) - 1) {
        memcpy(big + p, "\xe2\x98\x83", 3);
        p += 3;
    }
    big[p] = '\0';
    o = with_reason(big);
    r = sget(o, "reason");
    CHECK_EQ(strlen(r), 2 + (AUDIT_MAX_REASON - 2) / 3 * 3);
    CHECK(strncmp(r, big, strlen(r)) == 0);
    CHECK(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}

/* The longest record any type can make fits AUDIT_RECORD_MAX. */
static void test_worst_case_fits(void)
{
    static char worst[8192], huge_node[AUDIT_MAX_NODE / 6 + 1];
    memset(worst, '\x01', sizeof(worst) - 1);
    memset(huge_node, '\x02', sizeof(huge_node) - 1);
    audit_ctx_t c;
    char err[200];
    CHECK(audit_ctx_init_with_boot_id(&c, huge_node, "monitor_ab_cdefghijklmnopqrstuvw", BOOT, err,
                                      sizeof(err)) == 0);
    char buf[AUDIT_RECORD_MAX + 64];
    ssize_t longest = 0;
    for (unsigned t = 1; t < AUDIT_TYPE_END; t++) {
        audit_event_t e = make((audit_type_t)t, worst, UINT64_MAX);
        e.ts_us = 253402300799999999LL;
        e.dropped = INT64_MAX;
        e.source = AUDIT_SOURCE_LEASE_EXPIRY;
        e.ready = false;
        ssize_t n = audit_event_encode(&c, &e, buf, sizeof(buf));
        CHECK(n > 0);
        if (n > longest)
            longest = n;
        CHECK(n <= AUDIT_RECORD_MAX);
        json_decref(parse(buf, (size_t)n));
    }
    fprintf(stderr, "   longest record: %zd bytes (AUDIT_RECORD_MAX %d)\n", longest,
            AUDIT_RECORD_MAX);
}

static void test_short_buffers(void)
{
    char buf[AUDIT_RECORD_MAX + 16];
    audit_event_t e = make(AUDIT_INSTANCE_REMOVED, "h\xc3\xa9\x01\"x", 3);
    ssize_t full = audit_event_encode(&ctx, &e, buf, AUDIT_RECORD_MAX);
    CHECK(full > 0);
    char want[AUDIT_RECORD_MAX];
    memcpy(want, buf, (size_t)full);
    for (size_t cap = 0; cap < (size_t)full; cap++) {
        memset(buf, '#', sizeof(buf));
        CHECK_EQ(audit_event_encode(&ctx, &e, buf, cap), AUDIT_E2BIG);
        for (size_t k = cap; k < sizeof(buf); k++)
            CHECK(buf[k] == '#'); /* nothing past the end */
    }
    /* exactly the length: fits, no room for a NUL */
    memset(buf, '#', sizeof(buf));
    CHECK_EQ(audit_event_encode(&ctx, &e, buf, (size_t)full), full);
    CHECK(memcmp(buf, want, (size_t)full) == 0);
    CHECK(buf[full] == '#');
}

static void test_invalid_events(void)
{
    char buf[AUDIT_RECORD_MAX];
    struct {
        audit_event_t e;
        const char *why;
    } bad[] = {
        {{.type = 0, .seq = 1}, "unknown event type"},
        {{.type = AUDIT_TYPE_END, .seq = 1}, "unknown event type"},
        {{.type = AUDIT_ACL_DENIED, .seq = 0}, "no sequence"},
        {{.type = AUDIT_ACL_DENIED, .seq = 1, .outcome = AUDIT_OUTCOME_END}, "unknown outcome"},
        {{.type = AUDIT_ACL_DENIED, .seq = 1, .ts_us = -1}, "timestamp"},
        {{.type = AUDIT_ACL_DENIED, .seq = 1, .ts_us = 253402300800000000LL}, "timestamp"},
        {{.type = AUDIT_ACL_DENIED, .seq = 1, .has_status = true, .status = 17}, "status"},
        {{.type = AUDIT_INSTANCE_REMOVED, .seq = 1, .instance = "a:1"}, "needs a source"},
        {{.type = AUDIT_INSTANCE_REMOVED, .seq = 1, .source = AUDIT_SOURCE_END, .instance = "a"},
         "needs a source"},
        {{.type = AUDIT_INSTANCE_REMOVED, .seq = 1, .source = AUDIT_SOURCE_ETCD}, "instance"},
        {{.type = AUDIT_INSTANCE_REGISTERED, .seq = 1}, "instance"},
        {{.type = AUDIT_MEMBER_DEAD, .seq = 1}, "member"},
        {{.type = AUDIT_AUDIT_DROPPED, .seq = 1}, "count"},
        {{.type = AUDIT_AUDIT_DROPPED, .seq = 1, .dropped = (uint64_t)INT64_MAX + 1}, "count"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_CONTAINS(audit_event_problem(&bad[i].e), bad[i].why);
        CHECK_EQ(audit_event_encode(&ctx, &bad[i].e, buf, sizeof(buf)), AUDIT_EINVAL);
    }
    CHECK(audit_event_problem(NULL) != NULL);

    /* contexts refuse what cannot be a node or a role */
    audit_ctx_t c;
    char err[200], longname[AUDIT_MAX_NODE + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(audit_ctx_init(&c, "", "proxy", err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "node name");
    CHECK(audit_ctx_init(&c, longname, "proxy", err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "node name");
    CHECK(audit_ctx_init(&c, "n", NULL, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "role");
    longname[AUDIT_MAX_NODE] = '\0'; /* exactly the cap is fine */
    CHECK(audit_ctx_init(&c, longname, "proxy", err, sizeof(err)) == 0);
}

/* --emit: every type with every hostile string (and the nulls) as JSON lines. */
static int emit(void)
{
    char buf[AUDIT_RECORD_MAX];
    uint64_t seq = 0;
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (unsigned t = 1; t < AUDIT_TYPE_END; t++) {
        for (size_t i = 0; i <= N_NASTY + 1; i++) {
            const char *s = i < N_NASTY ? NASTY[i].in : i == N_NASTY ? big : NULL;
            audit_event_t e = make((audit_type_t)t, s, ++seq);
            if (!s) { /* the minimum each type needs */
                e = (audit_event_t){.type = (audit_type_t)t, .ts_us = audit_now_us(), .seq = seq};
                e.instance = t == AUDIT_INSTANCE_REGISTERED || t == AUDIT_INSTANCE_REMOVED ||
                                     t == AUDIT_MONITOR_EVICTION || t == AUDIT_MONITOR_READMITTED ||
                                     t == AUDIT_OUTLIER_EJECTED || t == AUDIT_OUTLIER_RETURNED
                                 ? "10.0.0.1:50051"
                                 : NULL;
                e.source = AUDIT_SOURCE_GOSSIP;
                e.member = "m";
                e.dropped = 1;
            }
            ssize_t n = audit_event_encode(&ctx, &e, buf, sizeof(buf));
            if (n <= 0) {
                fprintf(stderr, "encode failed: %zd (%s)\n", n, audit_event_problem(&e));
                return 1;
            }
            printf("%s\n", buf);
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[200];
    if (audit_ctx_init_with_boot_id(&ctx, "node \"a\"\n\xff", "sidecar", BOOT, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "--emit") == 0)
        return emit();
    RUN(test_every_type_round_trips);
    RUN(test_nulls_and_defaults);
    RUN(test_timestamps_agree_with_gmtime);
    RUN(test_event_ids);
    RUN(test_truncation);
    RUN(test_worst_case_fits);
    RUN(test_short_buffers);
    RUN(test_invalid_events);
    return 0;
}
