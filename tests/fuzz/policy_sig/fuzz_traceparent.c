/*
 * tests/fuzz/policy_sig/fuzz_traceparent.c: libFuzzer harness over the trace context
 * (policy/trace.h).
 *
 * The input is split at 0xFF bytes into traceparent, tracestate and x-request-id (so each holds
 * any other byte), passed with their lengths and no NUL. Checks: the traceparent parser agrees
 * with an independent position-by-position reading of the W3C grammar; the tracestate and
 * request-id decisions respect their limits; and pol_trace_begin always forwards a valid
 * version-00 traceparent that keeps the caller's trace-id exactly when it was valid, a
 * tracestate only as sent, and a valid x-request-id when one was sent or created (none
 * otherwise).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/trace.h"

static int lhex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The W3C grammar, read naively. */
static int reference_valid(const uint8_t *s, size_t n)
{
    if (n < 55)
        return 0;
    for (size_t i = 0; i < 55; i++) {
        int dash = i == 2 || i == 35 || i == 52;
        if (dash ? s[i] != '-' : !lhex(s[i]))
            return 0;
    }
    if (s[0] == 'f' && s[1] == 'f')
        return 0;
    if (s[0] == '0' && s[1] == '0' && n != 55)
        return 0;
    if (n > 55 && s[55] != '-')
        return 0;
    int nz = 0;
    for (size_t i = 3; i < 35; i++)
        nz |= s[i] != '0';
    if (!nz)
        return 0;
    nz = 0;
    for (size_t i = 36; i < 52; i++)
        nz |= s[i] != '0';
    return nz;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[3] = {data, NULL, NULL};
    size_t len[3] = {size, 0, 0};
    int k = 0;
    for (size_t i = 0; i < size && k < 2; i++) {
        if (data[i] == 0xff) {
            len[k] = (size_t)(data + i - part[k]);
            part[k + 1] = data + i + 1;
            len[k + 1] = size - i - 1;
            k++;
        }
    }
    /* Copies of exactly the right size, so ASan catches any read past a value. */
    char *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = malloc(len[i] ? len[i] : 1);
        if (len[i])
            memcpy(v[i], part[i], len[i]);
    }

    pol_traceparent_t tp;
    int ok = pol_traceparent_parse(v[0], len[0], &tp) == 0;
    if (ok != reference_valid((const uint8_t *)v[0], len[0]))
        abort();
    if (ok) {
        char out[POL_TRACEPARENT_LEN + 1];
        pol_traceparent_format(&tp, out);
        if (tp.version == 0 && memcmp(out, v[0], POL_TRACEPARENT_LEN) != 0)
            abort();
    }
    int ts_ok = pol_tracestate_valid(v[1], len[1]);
    if (ts_ok) {
        if (len[1] > POL_TRACESTATE_MAX)
            abort();
        for (size_t i = 0; i < len[1]; i++)
            if ((uint8_t)v[1][i] < 0x20 && v[1][i] != '\t')
                abort();
    }
    int rid_ok = pol_request_id_valid(v[2], len[2]);
    int rid_ref = len[2] >= 1 && len[2] <= POL_REQUEST_ID_MAX;
    for (size_t i = 0; i < len[2]; i++)
        rid_ref &= (uint8_t)v[2][i] >= 0x21 && (uint8_t)v[2][i] <= 0x7e;
    if (rid_ok != rid_ref)
        abort();

    pol_trace_t t;
    pol_trace_begin(&t, len[0] ? v[0] : NULL, len[0], len[1] ? v[1] : NULL, len[1],
                    len[2] ? v[2] : NULL, len[2], size & 1, (size >> 1) & 1);
    pol_traceparent_t fwd;
    if (strlen(t.traceparent) != POL_TRACEPARENT_LEN ||
        pol_traceparent_parse(t.traceparent, POL_TRACEPARENT_LEN, &fwd) != 0 || fwd.version != 0)
        abort();
    if (t.trace_reused != ok)
        abort();
    if (ok && memcmp(fwd.trace_id, tp.trace_id, 16) != 0)
        abort();
    if (t.tracestate_kept != (ok && ts_ok))
        abort();
    if (t.tracestate_kept ? (t.tracestate_len != len[1] || memcmp(t.tracestate, v[1], len[1]))
                          : t.tracestate_len != 0)
        abort();
    int created = (size >> 1) & 1;
    if ((rid_ok || created) ? !pol_request_id_valid(t.request_id, strlen(t.request_id))
                            : t.request_id[0] != '\0')
        abort();
    if (rid_ok && (strlen(t.request_id) != len[2] || memcmp(t.request_id, v[2], len[2])))
        abort();
    for (int i = 0; i < 3; i++)
        free(v[i]);
    return 0;
}
