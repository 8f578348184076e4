/*
 * audit/event.c: the audit event record's encoder (audit/event.h) and its context.
 *
 * The encoder is a straight line of appends into the caller's buffer: fixed keys are string
 * literals, the context's node and role are escaped once at init, the timestamp is computed
 * with integer civil-date arithmetic (no gmtime, no locale), and strings are escaped in runs:
 * bytes that need nothing are found with a table and copied with one memcpy per run.
 *
 * Why not jansson: building the record with the JSON library would allocate a tree per event
 * on the audit actor's hot path. The record is flat and has a fixed shape, so the escaping
 * here is the only JSON this file writes; the tests parse every record with jansson and
 * validate it against the JSON Schema with python3-jsonschema.
 */
#include "audit/event.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const type_names[AUDIT_TYPE_END] = {
    [AUDIT_BREAKER_OPEN] = "breaker_open",
    [AUDIT_BREAKER_HALF_OPEN] = "breaker_half_open",
    [AUDIT_BREAKER_CLOSED] = "breaker_closed",
    [AUDIT_INSTANCE_REGISTERED] = "instance_registered",
    [AUDIT_INSTANCE_REMOVED] = "instance_removed",
    [AUDIT_MEMBER_DEAD] = "member_dead",
    [AUDIT_MEMBER_LEFT] = "member_left",
    [AUDIT_READINESS_CHANGED] = "readiness_changed",
    [AUDIT_CONFIG_REJECTED] = "config_rejected",
    [AUDIT_AUDIT_DROPPED] = "audit_dropped",
    [AUDIT_AUTHN_FAILURE] = "authn_failure",
    [AUDIT_ACL_DENIED] = "acl_denied",
    [AUDIT_RATE_LIMITED] = "rate_limited",
    [AUDIT_SIGNATURE_INVALID] = "signature_invalid",
    [AUDIT_MONITOR_EVICTION] = "monitor_eviction",
    [AUDIT_MONITOR_READMITTED] = "monitor_readmitted",
    [AUDIT_MONITOR_EVICTION_HELD] = "monitor_eviction_held",
    [AUDIT_OUTLIER_EJECTED] = "outlier_ejected",
    [AUDIT_OUTLIER_RETURNED] = "outlier_returned",
    [AUDIT_FAULT_INJECTION] = "fault_injection",
    [AUDIT_CERT_ISSUED] = "cert_issued",
    [AUDIT_CERT_DENIED] = "cert_denied",
    [AUDIT_GOSSIP_RECORD_REJECTED] = "gossip_record_rejected",
};

static const char *const outcome_names[AUDIT_OUTCOME_END] = {
    [AUDIT_OUTCOME_SUCCESS] = "success",
    [AUDIT_OUTCOME_FAILURE] = "failure",
    [AUDIT_OUTCOME_DENIED] = "denied",
    [AUDIT_OUTCOME_UNKNOWN] = "unknown",
};

static const char *const source_names[AUDIT_SOURCE_END] = {
    [AUDIT_SOURCE_ETCD] = "etcd",
    [AUDIT_SOURCE_GOSSIP] = "gossip",
    [AUDIT_SOURCE_MONITOR] = "monitor",
    [AUDIT_SOURCE_LEASE_EXPIRY] = "lease_expiry",
};

const char *audit_type_name(audit_type_t type)
{
    return (unsigned)type < AUDIT_TYPE_END ? type_names[type] : NULL;
}

const char *audit_outcome_name(audit_outcome_t outcome)
{
    return (unsigned)outcome < AUDIT_OUTCOME_END ? outcome_names[outcome] : NULL;
}

const char *audit_source_name(audit_source_t source)
{
    return (unsigned)source < AUDIT_SOURCE_END ? source_names[source] : NULL;
}

audit_type_t audit_type_parse(const char *name)
{
    for (unsigned t = 1; name && t < AUDIT_TYPE_END; t++)
        if (strcmp(type_names[t], name) == 0)
            return (audit_type_t)t;
    return (audit_type_t)0;
}

audit_outcome_t audit_event_outcome(const audit_event_t *ev)
{
    if (ev->outcome != AUDIT_OUTCOME_DEFAULT)
        return ev->outcome;
    switch (ev->type) {
    case AUDIT_BREAKER_CLOSED:
    case AUDIT_INSTANCE_REGISTERED:
    case AUDIT_MEMBER_LEFT:
    case AUDIT_MONITOR_READMITTED:
    case AUDIT_OUTLIER_RETURNED:
    case AUDIT_FAULT_INJECTION:
    case AUDIT_CERT_ISSUED:
        return AUDIT_OUTCOME_SUCCESS;
    case AUDIT_INSTANCE_REMOVED:
        /* a deregistration is the normal way out; the others are something failing */
        return ev->source == AUDIT_SOURCE_ETCD ? AUDIT_OUTCOME_SUCCESS : AUDIT_OUTCOME_FAILURE;
    case AUDIT_READINESS_CHANGED:
        return ev->ready ? AUDIT_OUTCOME_SUCCESS : AUDIT_OUTCOME_FAILURE;
    case AUDIT_BREAKER_OPEN:
    case AUDIT_MEMBER_DEAD:
    case AUDIT_CONFIG_REJECTED:
    case AUDIT_AUDIT_DROPPED:
    case AUDIT_MONITOR_EVICTION:
    case AUDIT_OUTLIER_EJECTED:
        return AUDIT_OUTCOME_FAILURE;
    case AUDIT_AUTHN_FAILURE:
    case AUDIT_ACL_DENIED:
    case AUDIT_RATE_LIMITED:
    case AUDIT_SIGNATURE_INVALID:
    case AUDIT_MONITOR_EVICTION_HELD:
    case AUDIT_CERT_DENIED:
    case AUDIT_GOSSIP_RECORD_REJECTED:
        return AUDIT_OUTCOME_DENIED;
    case AUDIT_BREAKER_HALF_OPEN:
    default:
        return AUDIT_OUTCOME_UNKNOWN;
    }
}

/* 9999-12-31T23:59:59.999999Z is the last instant RFC 3339's four-digit year can write. */
#define TS_US_END 253402300800000000LL

const char *audit_event_problem(const audit_event_t *ev)
{
    if (!ev || ev->type <= 0 || ev->type >= AUDIT_TYPE_END)
        return "unknown event type";
    if ((unsigned)ev->outcome >= AUDIT_OUTCOME_END)
        return "unknown outcome";
    if (ev->seq == 0)
        return "no sequence (take one with audit_ctx_next_seq)";
    if (ev->ts_us < 0 || ev->ts_us >= TS_US_END)
        return "timestamp outside 1970..9999";
    if (ev->has_status && (ev->status < 0 || ev->status > 16))
        return "status is not a gRPC status code (0..16)";
    switch (ev->type) {
    case AUDIT_INSTANCE_REMOVED:
        if (ev->source <= AUDIT_SOURCE_NONE || ev->source >= AUDIT_SOURCE_END)
            return "instance_removed needs a source (etcd, gossip, monitor, lease_expiry)";
        /* fall through */
    case AUDIT_INSTANCE_REGISTERED:
    case AUDIT_MONITOR_EVICTION:
    case AUDIT_MONITOR_READMITTED:
    case AUDIT_OUTLIER_EJECTED:
    case AUDIT_OUTLIER_RETURNED:
        if (!ev->instance)
            return "instance events need the instance's address";
        break;
    case AUDIT_MEMBER_DEAD:
    case AUDIT_MEMBER_LEFT:
    case AUDIT_GOSSIP_RECORD_REJECTED:
        if (!ev->member)
            return "member events need the member's name";
        break;
    case AUDIT_AUDIT_DROPPED:
        if (ev->dropped == 0 || ev->dropped > (uint64_t)INT64_MAX)
            return "audit_dropped needs a count from 1 to 2^63-1";
        break;
    default:
        break;
    }
    return NULL;
}

/* ---- the writer ------------------------------------------------------------------------------ */

typedef struct {
    char *p, *end;
    bool over;      /* something did not fit in the buffer */
    bool truncated; /* a field was cut at its cap */
} wr_t;

static inline void put(wr_t *w, const void *s, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->over = true;
        w->p = w->end;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

#define STR_(x) #x
#define STR(x)  STR_(x)

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static inline void put_c(wr_t *w, char c)
{
    if (w->p == w->end) {
        w->over = true;
        return;
    }
    *w->p++ = c;
}

static void put_u64(wr_t *w, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, tmp + i, sizeof(tmp) - i);
}

static const char hex_digits[] = "0123456789abcdef";

/* Bytes that go into a JSON string as they are: printable ASCII (and DEL) but '"' and '\'. */
static inline bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Length of the well-formed UTF-8 sequence of 2..4 bytes at u, or 0 when u[0] does not begin
 * one (RFC 3629, table 3-7 of Unicode: no overlongs, surrogates or code points > U+10FFFF). A
 * NUL is never a continuation byte, so this never reads past the string's end. */
static size_t utf8_seq(const unsigned char *u)
{
    unsigned char c = u[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (u[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return u[1] >= lo && u[1] <= hi && (u[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return u[1] >= lo && u[1] <= hi && (u[2] & 0xC0) == 0x80 && (u[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Writes s as a JSON string (null for NULL) whose text between the quotes is at most cap
 * bytes; a longer value is cut before the first character that would not fit. */
static void put_str(wr_t *w, const char *s, size_t cap)
{
    if (!s) {
        PUT_LIT(w, "null");
        return;
    }
    put_c(w, '"');
    const unsigned char *u = (const unsigned char *)s;
    size_t used = 0;
    while (*u) {
        if (plain(*u)) {
            const unsigned char *r = u + 1;
            while (plain(*r))
                r++;
            size_t n = (size_t)(r - u);
            if (used + n > cap) {
                put(w, u, cap - used);
                w->truncated = true;
                break;
            }
            put(w, u, n);
            used += n;
            u = r;
            continue;
        }
        char esc[6];
        const void *src = esc;
        size_t k, adv = 1;
        unsigned char c = *u;
        if (c < 0x80) {
            esc[0] = '\\';
            k = 2;
            switch (c) {
            case '"':
            case '\\':
                esc[1] = (char)c;
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default: /* the other control characters, DEL stays as it is (it is plain) */
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex_digits[c >> 4];
                esc[5] = hex_digits[c & 15];
                k = 6;
                break;
            }
        } else if ((k = utf8_seq(u)) != 0) {
            src = u;
            adv = k;
        } else {
            src = "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER for this one byte */
            k = 3;
        }
        if (used + k > cap) {
            w->truncated = true;
            break;
        }
        put(w, src, k);
        used += k;
        u += adv;
    }
    put_c(w, '"');
}

static inline void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" (27 bytes) for Unix microseconds us in 0..TS_US_END. The date
 * is the proleptic Gregorian calendar computed from the day count in 400-year eras (each era
 * has 146097 days), with March as the first month so that leap days fall at the end. */
static void put_ts(wr_t *w, int64_t us)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    int64_t days = secs / 86400, sod = secs % 86400;
    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;                                      /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11, 0 = March */
    unsigned day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    unsigned year = (unsigned)(yoe + era * 400 + (month <= 2));

    char t[27];
    put2(t, year / 100);
    put2(t + 2, year % 100);
    t[4] = '-';
    put2(t + 5, month);
    t[7] = '-';
    put2(t + 8, day);
    t[10] = 'T';
    put2(t + 11, (unsigned)(sod / 3600));
    t[13] = ':';
    put2(t + 14, (unsigned)(sod / 60 % 60));
    t[16] = ':';
    put2(t + 17, (unsigned)(sod % 60));
    t[19] = '.';
    unsigned f = (unsigned)frac;
    put2(t + 20, f / 10000);
    put2(t + 22, f / 100 % 100);
    put2(t + 24, f % 100);
    t[26] = 'Z';
    put(w, t, sizeof(t));
}

static void hex16(char *out, uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hex_digits[v & 15];
        v >>= 4;
    }
}

/* ---- the context --------------------------------------------------------------------------- */

/* Escapes s into out (with quotes) when its JSON text fits max bytes; -1 otherwise. */
static int escape_whole(const char *s, size_t max, char *out, size_t outcap, size_t *len)
{
    wr_t w = {.p = out, .end = out + outcap};
    put_str(&w, s, max);
    if (w.over || w.truncated)
        return -1;
    *len = (size_t)(w.p - out);
    return 0;
}

int audit_ctx_init_with_boot_id(audit_ctx_t *ctx, const char *node, const char *role,
                                const uint8_t boot_id[16], char *err, size_t errlen)
{
    memset(ctx, 0, sizeof(*ctx));
    if (!node || !*node ||
        escape_whole(node, AUDIT_MAX_NODE, ctx->node_json, sizeof(ctx->node_json),
                     &ctx->node_len) != 0) {
        snprintf(err, errlen, "audit: the node name must be 1 to %d bytes of JSON text",
                 AUDIT_MAX_NODE);
        return -1;
    }
    if (!role || !*role ||
        escape_whole(role, AUDIT_MAX_ROLE, ctx->role_json, sizeof(ctx->role_json),
                     &ctx->role_len) != 0) {
        snprintf(err, errlen, "audit: the role must be 1 to %d bytes of JSON text", AUDIT_MAX_ROLE);
        return -1;
    }
    memcpy(ctx->boot_id, boot_id, 16);
    for (int i = 0; i < 16; i++) {
        ctx->boot_hex[2 * i] = hex_digits[boot_id[i] >> 4];
        ctx->boot_hex[2 * i + 1] = hex_digits[boot_id[i] & 15];
    }
    ctx->boot_hex[32] = '\0';
    atomic_init(&ctx->seq, 0);
    return 0;
}

int audit_ctx_init(audit_ctx_t *ctx, const char *node, const char *role, char *err, size_t errlen)
{
    uint8_t id[16];
    size_t got = 0;
    while (got < sizeof(id)) {
        ssize_t n = getrandom(id + got, sizeof(id) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "audit: getrandom for the boot id: %s", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    return audit_ctx_init_with_boot_id(ctx, node, role, id, err, errlen);
}

uint64_t audit_ctx_next_seq(audit_ctx_t *ctx)
{
    return atomic_fetch_add_explicit(&ctx->seq, 1, memory_order_relaxed) + 1;
}

void audit_ctx_event_id(const audit_ctx_t *ctx, uint64_t seq, char *out)
{
    memcpy(out, ctx->boot_hex, 32);
    out[32] = '-';
    hex16(out + 33, seq);
    out[AUDIT_EVENT_ID_LEN] = '\0';
}

int64_t audit_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the record ---------------------------------------------------------------------------- */

ssize_t audit_event_encode(const audit_ctx_t *ctx, const audit_event_t *ev, char *buf, size_t cap)
{
    if (audit_event_problem(ev))
        return AUDIT_EINVAL;
    wr_t w = {.p = buf, .end = buf + cap};

    /* {"schema":1,"event_id":"<id>","ts":" */
    PUT_LIT(&w, "{\"schema\":" STR(AUDIT_SCHEMA_VERSION) ",\"event_id\":\"");
    char id[AUDIT_EVENT_ID_LEN + 1];
    audit_ctx_event_id(ctx, ev->seq, id);
    put(&w, id, AUDIT_EVENT_ID_LEN);
    PUT_LIT(&w, "\",\"ts\":\"");
    put_ts(&w, ev->ts_us);
    PUT_LIT(&w, "\",\"type\":\"");
    const char *t = type_names[ev->type];
    put(&w, t, strlen(t));
    PUT_LIT(&w, "\",\"outcome\":\"");
    const char *o = outcome_names[audit_event_outcome(ev)];
    put(&w, o, strlen(o));
    PUT_LIT(&w, "\",\"reason\":");
    put_str(&w, ev->reason, AUDIT_MAX_REASON);
    PUT_LIT(&w, ",\"node\":");
    put(&w, ctx->node_json, ctx->node_len);
    PUT_LIT(&w, ",\"role\":");
    put(&w, ctx->role_json, ctx->role_len);
    PUT_LIT(&w, ",\"service\":");
    put_str(&w, ev->service, AUDIT_MAX_SERVICE);
    PUT_LIT(&w, ",\"method\":");
    put_str(&w, ev->method, AUDIT_MAX_METHOD);
    PUT_LIT(&w, ",\"peer\":{\"address\":");
    put_str(&w, ev->peer_address, AUDIT_MAX_ADDRESS);
    PUT_LIT(&w, ",\"identity\":");
    put_str(&w, ev->peer_identity, AUDIT_MAX_IDENTITY);
    PUT_LIT(&w, "},\"trace_id\":");
    put_str(&w, ev->trace_id, AUDIT_MAX_TRACE_ID);
    PUT_LIT(&w, ",\"status\":");
    if (ev->has_status)
        put_u64(&w, (uint64_t)ev->status);
    else
        PUT_LIT(&w, "null");

    switch (ev->type) {
    case AUDIT_BREAKER_OPEN:
    case AUDIT_BREAKER_HALF_OPEN:
    case AUDIT_BREAKER_CLOSED:
    case AUDIT_INSTANCE_REGISTERED:
    case AUDIT_MONITOR_EVICTION:
    case AUDIT_MONITOR_READMITTED:
    case AUDIT_MONITOR_EVICTION_HELD:
    case AUDIT_OUTLIER_EJECTED:
    case AUDIT_OUTLIER_RETURNED:
        PUT_LIT(&w, ",\"instance\":");
        put_str(&w, ev->instance, AUDIT_MAX_ADDRESS);
        break;
    case AUDIT_INSTANCE_REMOVED: {
        PUT_LIT(&w, ",\"instance\":");
        put_str(&w, ev->instance, AUDIT_MAX_ADDRESS);
        PUT_LIT(&w, ",\"source\":\"");
        const char *s = source_names[ev->source];
        put(&w, s, strlen(s));
        put_c(&w, '"');
        break;
    }
    case AUDIT_MEMBER_DEAD:
    case AUDIT_MEMBER_LEFT:
    case AUDIT_GOSSIP_RECORD_REJECTED:
        PUT_LIT(&w, ",\"member\":");
        put_str(&w, ev->member, AUDIT_MAX_MEMBER);
        break;
    case AUDIT_READINESS_CHANGED:
        if (ev->ready)
            PUT_LIT(&w, ",\"ready\":true");
        else
            PUT_LIT(&w, ",\"ready\":false");
        break;
    case AUDIT_AUDIT_DROPPED:
        PUT_LIT(&w, ",\"dropped\":");
        put_u64(&w, ev->dropped);
        break;
    default:
        break;
    }
    if (w.truncated)
        PUT_LIT(&w, ",\"truncated\":true");
    put_c(&w, '}');
    if (w.over)
        return AUDIT_E2BIG;
    size_t len = (size_t)(w.p - buf);
    if (len < cap)
        buf[len] = '\0';
    return (ssize_t)len;
}
