/*
 * tests/fuzz/registry/fuzz_etcd_codec.c: libFuzzer harness over registry/etcd_codec.h, the
 * decoders of what etcd's JSON gateway answers.
 *
 * Every input goes to every decoder entry point (error bodies, range answers, watch lines,
 * lease answers, put/txn headers), through one decoder reused across calls as in the client,
 * then to the base64 decoder and the prefix helpers. Checks: return values are in the
 * documented set, messages stay NUL-terminated inside their arrays, every key and value handed
 * to a callback is readable over its length and NUL-terminated, a watch line never reports
 * more events than its header counted, and base64 encode/decode round-trips any bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_codec.h"

/* Reads every byte so that ASan sees a pointer that lies outside its allocation. */
static void touch(const char *p, size_t n)
{
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < n; i++)
        sink ^= (unsigned char)p[i];
    if (p[n] != '\0') /* documented: decoded keys and values are NUL-terminated */
        abort();
    (void)sink;
}

static void check_kv(const etcd_kv_t *kv)
{
    if (!kv->key || !kv->value)
        abort();
    touch(kv->key, kv->key_len);
    touch(kv->value, kv->value_len);
}

static void check_err(const etcd_error_t *e)
{
    if (memchr(e->message, '\0', sizeof(e->message)) == NULL)
        abort();
}

typedef struct {
    size_t n;
    size_t stop_after; /* 0: never stop */
} count_t;

static int on_kv(void *ud, const etcd_kv_t *kv)
{
    count_t *c = ud;
    check_kv(kv);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int on_event(void *ud, const etcd_event_t *ev)
{
    count_t *c = ud;
    if (ev->type != ETCD_EVENT_PUT && ev->type != ETCD_EVENT_DELETE)
        abort();
    check_kv(&ev->kv);
    if (ev->has_prev)
        check_kv(&ev->prev_kv);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void fuzz_decoders(etcd_decoder_t *d, const char *body, size_t len, size_t stop_after)
{
    etcd_error_t err;
    int rc = etcd_decode_error(body, len, &err);
    if (rc < -1 || rc > 1 || (rc == 1 && err.code == 0))
        abort();
    check_err(&err);

    etcd_range_info_t ri;
    count_t c = {0, stop_after};
    rc = etcd_decode_range(d, body, len, &ri, on_kv, &c);
    if (rc != 0 && rc != -1)
        abort();
    check_err(&ri.err);
    etcd_decode_range(d, body, len, &ri, NULL, NULL);

    etcd_watch_info_t wi;
    c = (count_t){0, stop_after};
    rc = etcd_decode_watch(d, body, len, &wi, on_event, &c);
    if (rc != 0 && rc != -1)
        abort();
    if (wi.n_events < 0 || c.n > (size_t)wi.n_events)
        abort();
    if (memchr(wi.cancel_reason, '\0', sizeof(wi.cancel_reason)) == NULL)
        abort();
    check_err(&wi.err);
    etcd_decode_watch(d, body, len, &wi, NULL, NULL);

    etcd_lease_info_t li;
    rc = etcd_decode_lease(body, len, &li);
    if (rc != 0 && rc != -1)
        abort();
    check_err(&li.err);

    int64_t rev = 0;
    int succeeded = 0;
    rc = etcd_decode_header(body, len, &rev, &succeeded, &err);
    if (rc < -1 || rc > 1)
        abort();
    if (rc >= 0)
        check_err(&err);
    etcd_decode_header(body, len, NULL, NULL, &err);
}

static void fuzz_base64(const char *in, size_t len)
{
    /* Decoding arbitrary text: at most len*3/4 bytes plus the NUL. */
    char *out = malloc(len * 3 / 4 + 3);
    if (!out)
        return;
    long n = etcd_b64_decode(in, len, out);
    if (n >= 0) {
        if ((size_t)n > len * 3 / 4 || out[n] != '\0')
            abort();
        /* Re-encoding and decoding again gives the same bytes. */
        char *enc = malloc(etcd_b64_len((size_t)n) + 1);
        char *back = malloc((size_t)n + 3);
        if (enc && back) {
            etcd_b64_encode(out, (size_t)n, enc);
            if (strlen(enc) != etcd_b64_len((size_t)n))
                abort();
            long m = etcd_b64_decode(enc, strlen(enc), back);
            if (m != n || memcmp(back, out, (size_t)n) != 0)
                abort();
        }
        free(enc);
        free(back);
    }
    free(out);

    /* Encoding arbitrary bytes round-trips. */
    char *enc = malloc(etcd_b64_len(len) + 1);
    char *back = malloc(len + 3);
    if (enc && back) {
        etcd_b64_encode(in, len, enc);
        long m = etcd_b64_decode(enc, etcd_b64_len(len), back);
        if (m < 0 || (size_t)m != len || memcmp(back, in, len) != 0)
            abort();
    }
    free(enc);
    free(back);
}

static void fuzz_prefix(const char *in, size_t len)
{
    char *end = malloc(len + 1);
    if (!end)
        return;
    size_t n = etcd_prefix_end(in, len, end);
    if (n == 0 || n > (len ? len : 1))
        abort();
    /* Every key starting with the prefix sorts below the end (unless "\0": every key). */
    if (!(n == 1 && end[0] == '\0') && memcmp(in, end, n) >= 0)
        abort();
    free(end);

    /* Request bodies take NUL-terminated strings: use the input up to its first NUL. */
    char *s = malloc(len + 1);
    if (!s)
        return;
    memcpy(s, in, len);
    s[len] = '\0';
    free(etcd_req_range_prefix(s));
    free(etcd_req_watch_prefix(s, (int64_t)len));
    free(etcd_req_put(s, in, len, (int64_t)len));
    free(etcd_req_put(s, in, len, 0));
    free(etcd_req_delete(s));
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    etcd_decoder_t d;
    etcd_decoder_init(&d);
    /* The last byte picks after how many callbacks the callback asks to stop (0..3). */
    size_t stop_after = size ? data[size - 1] & 3 : 0;
    fuzz_decoders(&d, body, size, stop_after);
    /* Again with the buffer already grown: a reused decoder must behave the same. */
    fuzz_decoders(&d, body, size, 0);
    etcd_decoder_destroy(&d);

    if (size <= 4096) {
        fuzz_base64(body, size);
        fuzz_prefix(body, size);
    }
    return 0;
}
