/*
 * tests/fuzz/audit/fuzz_audit_event.c: libFuzzer harness over audit_event_encode.
 *
 * The input picks the type, outcome, source, status and numbers from its first bytes and
 * splits the rest at 0xFF bytes into the event's strings (so fields hold any other byte:
 * controls, quotes, broken UTF-8). Checks: a valid event always encodes into AUDIT_RECORD_MAX;
 * the record is one line of valid JSON (jansson, which also rejects invalid UTF-8); each
 * string decodes to the input when nothing had to be replaced, and a string cut short is
 * flagged with "truncated"; every smaller buffer gives AUDIT_E2BIG without writing past its end; an
 * invalid event is refused and nothing else is.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/event.h"

#define NSTR 8

static audit_ctx_t ctx;

/* Whether the encoder replaced nothing in a decoded string: it holds no U+FFFD (an input that
 * holds U+FFFD itself is then simply not compared). */
static int nothing_replaced(const char *s)
{
    return strstr(s, "\xef\xbf\xbd") == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        char err[128];
        static const uint8_t boot[16] = {1};
        if (audit_ctx_init_with_boot_id(&ctx, "fuzz-node", "proxy", boot, err, sizeof(err)))
            abort();
        inited = 1;
    }
    if (size < 8)
        return 0;
    audit_event_t e = {0};
    e.type = (audit_type_t)(data[0] % (AUDIT_TYPE_END + 1));
    e.outcome = (audit_outcome_t)(data[1] % (AUDIT_OUTCOME_END + 1));
    e.source = (audit_source_t)(data[2] % (AUDIT_SOURCE_END + 1));
    e.has_status = data[3] & 1;
    e.status = (int32_t)(data[3] >> 1) - 20;
    e.ready = data[4] & 1;
    e.seq = data[5];
    e.dropped = data[6] & 0x80 ? UINT64_MAX - data[6] : data[6];
    e.ts_us = (int64_t)data[7] * 1000003LL * 1000003LL * 251;

    /* the strings: the rest split at 0xFF, NUL-terminated copies; 0xFE alone means NULL */
    char *strs[NSTR] = {0};
    const uint8_t *p = data + 8, *end = data + size;
    for (int i = 0; i < NSTR && p <= end; i++) {
        const uint8_t *q = memchr(p, 0xFF, (size_t)(end - p));
        if (!q)
            q = end;
        size_t n = (size_t)(q - p);
        if (!(n == 1 && p[0] == 0xFE)) {
            strs[i] = malloc(n + 1);
            memcpy(strs[i], p, n);
            strs[i][n] = '\0'; /* an embedded NUL just ends the C string early */
        }
        p = q + 1;
    }
    e.reason = strs[0];
    e.service = strs[1];
    e.method = strs[2];
    e.peer_address = strs[3];
    e.peer_identity = strs[4];
    e.trace_id = strs[5];
    e.instance = strs[6];
    e.member = strs[7];

    static char buf[AUDIT_RECORD_MAX + 1];
    ssize_t n = audit_event_encode(&ctx, &e, buf, AUDIT_RECORD_MAX);
    const char *problem = audit_event_problem(&e);
    if (problem) {
        if (n != AUDIT_EINVAL)
            abort();
        goto out;
    }
    if (n <= 0 || n > AUDIT_RECORD_MAX || memchr(buf, '\n', (size_t)n))
        abort();
    json_error_t jerr;
    json_t *o = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o))
        abort();
    const char *keys[] = {"reason", "service", "method", NULL, NULL, "trace_id"};
    int shorter = 0;
    for (int i = 0; i < 6; i++) {
        json_t *v = i == 3   ? json_object_get(json_object_get(o, "peer"), "address")
                    : i == 4 ? json_object_get(json_object_get(o, "peer"), "identity")
                             : json_object_get(o, keys[i]);
        if (!v)
            abort();
        if (!strs[i]) {
            if (!json_is_null(v))
                abort();
            continue;
        }
        const char *got = json_string_value(v);
        if (!got)
            abort();
        size_t gl = strlen(got), il = strlen(strs[i]);
        if (nothing_replaced(got) && gl == il) {
            if (memcmp(got, strs[i], il) != 0)
                abort();
        }
        if (gl < il && nothing_replaced(got) && memcmp(got, strs[i], gl) == 0)
            shorter = 1;
    }
    if (shorter && !json_is_true(json_object_get(o, "truncated")))
        abort();
    json_decref(o);

    /* smaller buffers: E2BIG, nothing written past the end */
    static char small[AUDIT_RECORD_MAX + 8];
    size_t cap = (size_t)data[4] * 13 % (size_t)n;
    memset(small, 0x5A, sizeof(small));
    if (audit_event_encode(&ctx, &e, small, cap) != AUDIT_E2BIG)
        abort();
    for (size_t k = cap; k < sizeof(small); k++)
        if (small[k] != 0x5A)
            abort();
out:
    for (int i = 0; i < NSTR; i++)
        free(strs[i]);
    return 0;
}
