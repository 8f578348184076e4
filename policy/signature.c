/*
 * policy/signature.c: request signature header, secrets table and verification (see
 * policy/signature.h).
 */
#include "policy/signature.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/file_read.h"

/* ---- reasons --------------------------------------------------------------------------------- */

const char *pol_sig_reason(pol_sig_result_t r)
{
    switch (r) {
    case POL_SIG_OK:
        return "ok";
    case POL_SIG_MISSING:
        return "missing signature";
    case POL_SIG_MALFORMED:
        return "malformed signature";
    case POL_SIG_EXPIRED:
        return "expired";
    case POL_SIG_UNKNOWN_CLIENT:
        return "unknown client";
    case POL_SIG_BAD_SIGNATURE:
        return "bad signature";
    case POL_SIG_REPLAYED:
        return "replayed";
    case POL_SIG_CACHE_FULL:
        return "replay cache full";
    case POL_SIG_INTERNAL:
        return "signature check unavailable";
    }
    return "unknown";
}

/* ---- the header ------------------------------------------------------------------------------ */

static int client_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '@' || c == '-';
}

/* Whether s is a valid client id. */
static int client_valid(const char *s, size_t n)
{
    if (n < 1 || n > POL_SIG_CLIENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!client_char(s[i]))
            return 0;
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int pol_sig_header_parse(const char *v, size_t len, pol_sig_header_t *out)
{
    if (!v)
        return -1;
    pol_sig_header_t h;
    memset(&h, 0, sizeof(h));
    int have_sig = 0;
    size_t i = 0;
    for (;;) {
        const char *comma = memchr(v + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - v) : len;
        size_t b = i, e = end;
        while (b < e && is_space(v[b]))
            b++;
        while (e > b && is_space(v[e - 1]))
            e--;
        const char *eq = memchr(v + b, '=', e - b);
        if (!eq)
            return -1;
        const char *name = v + b, *val = eq + 1;
        size_t nn = (size_t)(eq - name), vn = (size_t)(v + e - val);
        if (nn == 5 && memcmp(name, "keyId", 5) == 0) {
            if (h.client || !client_valid(val, vn))
                return -1;
            h.client = val;
            h.client_len = vn;
        } else if (nn == 2 && memcmp(name, "ts", 2) == 0) {
            if (h.ts || vn < 1 || vn > 19)
                return -1;
            uint64_t t = 0;
            for (size_t k = 0; k < vn; k++) {
                if (val[k] < '0' || val[k] > '9')
                    return -1;
                t = t * 10 + (uint64_t)(val[k] - '0');
            }
            if (t > (uint64_t)INT64_MAX) /* 19 digits fit uint64 but not always int64 */
                return -1;
            h.ts = val;
            h.ts_len = vn;
            h.ts_value = (int64_t)t;
        } else if (nn == 5 && memcmp(name, "nonce", 5) == 0) {
            if (h.nonce || vn < POL_SIG_NONCE_MIN || vn > POL_SIG_NONCE_MAX)
                return -1;
            for (size_t k = 0; k < vn; k++)
                if (val[k] < 0x21 || val[k] > 0x7e)
                    return -1;
            h.nonce = val;
            h.nonce_len = vn;
        } else if (nn == 3 && memcmp(name, "sig", 3) == 0) {
            if (have_sig ||
                mesh_b64_decode(val, vn, h.sig, sizeof(h.sig), 1) != (long)POL_SHA256_LEN)
                return -1;
            have_sig = 1;
        } else {
            return -1;
        }
        if (!comma)
            break;
        i = end + 1;
    }
    if (!h.client || !h.ts || !h.nonce || !have_sig)
        return -1;
    *out = h;
    return 0;
}

/* ---- the secrets table ----------------------------------------------------------------------- */

typedef struct entry {
    char id[POL_SIG_CLIENT_MAX + 1];
    size_t id_len;
    uint8_t secret[POL_SIG_SECRET_MAX];
    size_t secret_len;
    pol_hmac_key_t key; /* the secret prepared for HMAC */
} entry_t;

struct pol_sig_secrets {
    atomic_int refs;
    size_t n;
    entry_t e[]; /* sorted by id (length, then bytes) */
};

static int entry_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

static int entry_sort(const void *x, const void *y)
{
    const entry_t *a = x, *b = y;
    return entry_cmp(a->id, a->id_len, b->id, b->id_len);
}

pol_sig_secrets_t *pol_sig_secrets_parse(const char *text, size_t len, const char *name, char *err,
                                         size_t errlen)
{
    /* Lines bound the number of entries. */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    pol_sig_secrets_t *s = calloc(1, sizeof(*s) + lines * sizeof(entry_t));
    if (!s) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    size_t lineno = 0, i = 0;
    while (i < len) {
        lineno++;
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *l = text + i;
        size_t n = end - i;
        i = end + 1;
        if (n && l[n - 1] == '\r')
            n--;
        size_t b = 0;
        while (b < n && is_space(l[b]))
            b++;
        while (n > b && is_space(l[n - 1]))
            n--;
        if (b == n || l[b] == '#')
            continue;
        size_t idb = b;
        while (b < n && !is_space(l[b]))
            b++;
        size_t ide = b;
        while (b < n && is_space(l[b]))
            b++;
        size_t sb = b;
        while (b < n && !is_space(l[b]))
            b++;
        size_t se = b;
        if (sb == se || se != n) {
            snprintf(err, errlen, "%s:%zu: expected `client-id secret` (two fields)", name, lineno);
            goto fail;
        }
        if (!client_valid(l + idb, ide - idb)) {
            snprintf(err, errlen,
                     "%s:%zu: client id must be 1..%d characters of A-Z a-z 0-9 . _ : @ -", name,
                     lineno, POL_SIG_CLIENT_MAX);
            goto fail;
        }
        entry_t *e = &s->e[s->n];
        memcpy(e->id, l + idb, ide - idb);
        e->id_len = ide - idb;
        long k = mesh_b64_decode(l + sb, se - sb, e->secret, sizeof(e->secret), 1);
        if (k < 0) {
            snprintf(err, errlen, "%s:%zu: secret of %.*s is not base64", name, lineno,
                     (int)e->id_len, e->id);
            goto fail;
        }
        if (k < POL_SIG_SECRET_MIN || k > POL_SIG_SECRET_MAX) {
            snprintf(err, errlen, "%s:%zu: secret of %.*s must be %d..%d bytes (base64 of %s)",
                     name, lineno, (int)e->id_len, e->id, POL_SIG_SECRET_MIN, POL_SIG_SECRET_MAX,
                     k < POL_SIG_SECRET_MIN ? "too few" : "too many");
            goto fail;
        }
        e->secret_len = (size_t)k;
        if (pol_hmac_key_init(&e->key, e->secret, e->secret_len) != 0) {
            char why[160];
            pol_digest_ready(why, sizeof(why));
            snprintf(err, errlen, "%s: %s", name, why);
            goto fail;
        }
        for (size_t j = 0; j < s->n; j++)
            if (entry_cmp(s->e[j].id, s->e[j].id_len, e->id, e->id_len) == 0) {
                snprintf(err, errlen, "%s:%zu: client %.*s listed twice", name, lineno,
                         (int)e->id_len, e->id);
                goto fail;
            }
        s->n++;
    }
    if (s->n == 0) {
        snprintf(err, errlen, "%s: no clients", name);
        goto fail;
    }
    qsort(s->e, s->n, sizeof(entry_t), entry_sort);
    return s;
fail:
    explicit_bzero(s->e, lines * sizeof(entry_t));
    free(s);
    return NULL;
}

pol_sig_secrets_t *pol_sig_secrets_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = mesh_file_read(path, 64u << 20, MESH_FILE_SECRET, &len, err, errlen);
    if (!buf)
        return NULL;
    pol_sig_secrets_t *s = pol_sig_secrets_parse(buf, len, path, err, errlen);
    explicit_bzero(buf, len);
    free(buf);
    return s;
}

pol_sig_secrets_t *pol_sig_secrets_ref(pol_sig_secrets_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void pol_sig_secrets_unref(pol_sig_secrets_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    explicit_bzero(s->e, s->n * sizeof(entry_t));
    free(s);
}

size_t pol_sig_secrets_count(const pol_sig_secrets_t *s)
{
    return s->n;
}

/* The client's entry (binary search), or NULL. */
static const entry_t *find(const pol_sig_secrets_t *s, const char *client, size_t len)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = entry_cmp(s->e[mid].id, s->e[mid].id_len, client, len);
        if (c == 0)
            return &s->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const uint8_t *pol_sig_secrets_find(const pol_sig_secrets_t *s, const char *client, size_t len,
                                    size_t *secret_len)
{
    const entry_t *e = find(s, client, len);
    if (!e)
        return NULL;
    *secret_len = e->secret_len;
    return e->secret;
}

/* ---- body digest ----------------------------------------------------------------------------- */

int pol_sig_body_init(pol_sig_body_t *b)
{
    return pol_sha256_begin(b);
}

int pol_sig_body_update(pol_sig_body_t *b, const void *d, size_t n)
{
    return pol_sha256_update(b, d, n);
}

int pol_sig_body_final(pol_sig_body_t *b, uint8_t out[POL_SHA256_LEN])
{
    return pol_sha256_finish(b, out);
}

void pol_sig_body_abort(pol_sig_body_t *b)
{
    pol_sha256_abort(b);
}

/* ---- verification ---------------------------------------------------------------------------- */

/* The MAC of the canonical string with a prepared key. */
static int compute(const pol_hmac_key_t *key, const char *path, size_t path_len, const char *ts,
                   size_t ts_len, const char *nonce, size_t nonce_len,
                   const uint8_t body_sha256[POL_SHA256_LEN], uint8_t mac[POL_SHA256_LEN])
{
    char hex[2 * POL_SHA256_LEN + 1];
    pol_hex(body_sha256, POL_SHA256_LEN, hex);
    const pol_iov_t iov[] = {
        {"v1\n", 3}, {path, path_len},   {"\n", 1}, {ts, ts_len},
        {"\n", 1},   {nonce, nonce_len}, {"\n", 1}, {hex, 2 * POL_SHA256_LEN},
    };
    return pol_hmac_sha256_with(key, iov, (int)(sizeof(iov) / sizeof(iov[0])), mac);
}

int pol_sig_compute(const uint8_t *secret, size_t secret_len, const char *path, size_t path_len,
                    const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                    const uint8_t body_sha256[POL_SHA256_LEN], uint8_t mac[POL_SHA256_LEN])
{
    pol_hmac_key_t k;
    int rc = pol_hmac_key_init(&k, secret, secret_len);
    if (rc == 0)
        rc = compute(&k, path, path_len, ts, ts_len, nonce, nonce_len, body_sha256, mac);
    pol_hmac_key_wipe(&k);
    return rc;
}

pol_sig_result_t pol_sig_verify(const char *header, size_t header_len, const char *path,
                                size_t path_len, const uint8_t body_sha256[POL_SHA256_LEN],
                                int64_t now, int64_t window, const pol_sig_secrets_t *secrets,
                                pol_nonce_cache_t *nonces, pol_sig_header_t *hdr)
{
    if (!header)
        return POL_SIG_MISSING;
    pol_sig_header_t h;
    if (pol_sig_header_parse(header, header_len, &h) != 0)
        return POL_SIG_MALFORMED;
    if (hdr)
        *hdr = h;
    if (window < 0)
        window = 0;
    /* |now - ts| > window, without overflow for any ts in 0..INT64_MAX. */
    if (h.ts_value > now ? (uint64_t)h.ts_value - (uint64_t)now > (uint64_t)window
                         : (uint64_t)now - (uint64_t)h.ts_value > (uint64_t)window)
        return POL_SIG_EXPIRED;
    const entry_t *e = secrets ? find(secrets, h.client, h.client_len) : NULL;
    if (!e)
        return POL_SIG_UNKNOWN_CLIENT;
    uint8_t mac[POL_SHA256_LEN];
    if (compute(&e->key, path, path_len, h.ts, h.ts_len, h.nonce, h.nonce_len, body_sha256, mac) !=
        0)
        return POL_SIG_INTERNAL;
    if (!pol_ct_equal(mac, h.sig, POL_SHA256_LEN))
        return POL_SIG_BAD_SIGNATURE;
    if (!nonces)
        return POL_SIG_INTERNAL; /* without a replay cache nothing may pass */
    switch (pol_nonce_cache_insert(nonces, h.client, h.client_len, h.nonce, h.nonce_len,
                                   h.ts_value + window, now)) {
    case POL_NONCE_FRESH:
        return POL_SIG_OK;
    case POL_NONCE_REPLAYED:
        return POL_SIG_REPLAYED;
    case POL_NONCE_FULL:
        break;
    }
    return POL_SIG_CACHE_FULL;
}
