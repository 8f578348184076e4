/*
 * policy/mesh_identity.c: minting and verifying the node-to-node identity token (see
 * policy/mesh_identity.h).
 */
#include "policy/mesh_identity.h"

#include <stdio.h>
#include <string.h>

#include "common/base64.h"
#include "policy/sig_digest.h"

const char *pol_identity_reason(pol_identity_result_t r)
{
    switch (r) {
    case POL_IDENTITY_OK:
        return "ok";
    case POL_IDENTITY_ABSENT:
        return "absent";
    case POL_IDENTITY_MALFORMED:
        return "malformed";
    case POL_IDENTITY_BAD_SIGNATURE:
        return "bad signature";
    case POL_IDENTITY_EXPIRED:
        return "expired";
    case POL_IDENTITY_WRONG_PATH:
        return "minted for another method";
    case POL_IDENTITY_INTERNAL:
        return "crypto unavailable";
    case POL_IDENTITY_UNTRUSTED:
        return "no mesh secret and not over mTLS from a meshd node";
    }
    return "unknown";
}

/* Decodes a base64 secret into out; its length, or -1 with err. */
static long secret(const char *what, const char *b64, uint8_t *out, char *err, size_t errlen)
{
    uint8_t buf[POL_IDENTITY_SECRET_MAX + 1];
    long n = mesh_b64_decode(b64, strlen(b64), buf, POL_IDENTITY_SECRET_MAX, 1);
    if (n < 0) {
        snprintf(err, errlen, "%s mesh secret is not base64", what);
        return -1;
    }
    if (n < POL_IDENTITY_SECRET_MIN || n > POL_IDENTITY_SECRET_MAX) {
        snprintf(err, errlen, "%s mesh secret must be %d..%d bytes (`openssl rand -base64 32`)",
                 what, POL_IDENTITY_SECRET_MIN, POL_IDENTITY_SECRET_MAX);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    memcpy(out, buf, (size_t)n);
    explicit_bzero(buf, sizeof(buf));
    return n;
}

int pol_identity_keys_init(pol_identity_keys_t *k, const char *current_b64,
                           const char *previous_b64, int64_t ttl, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    if (ttl == 0)
        ttl = POL_IDENTITY_TTL_DEFAULT;
    if (ttl < 1 || ttl > POL_IDENTITY_TTL_MAX) {
        snprintf(err, errlen, "identity token lifetime %lld s: expected 1..%d s", (long long)ttl,
                 POL_IDENTITY_TTL_MAX);
        return -1;
    }
    k->ttl = ttl;
    long n = current_b64 ? secret("current", current_b64, k->current, err, errlen) : -1;
    if (!current_b64)
        snprintf(err, errlen, "current mesh secret missing");
    if (n < 0)
        goto fail;
    k->current_len = (size_t)n;
    if (previous_b64 && *previous_b64) {
        n = secret("previous", previous_b64, k->previous, err, errlen);
        if (n < 0)
            goto fail;
        k->previous_len = (size_t)n;
    }
    if (pol_hmac_key_init(&k->current_hk, k->current, k->current_len) != 0 ||
        (k->previous_len &&
         pol_hmac_key_init(&k->previous_hk, k->previous, k->previous_len) != 0)) {
        pol_digest_ready(err, errlen);
        goto fail;
    }
    return 0;
fail:
    pol_identity_keys_wipe(k);
    return -1;
}

void pol_identity_keys_wipe(pol_identity_keys_t *k)
{
    explicit_bzero(k, sizeof(*k));
}

/* ---- base64url ------------------------------------------------------------------------------- */

/* Encodes n bytes as unpadded base64url into out (mesh_b64_len(n) + 1 bytes); its length. */
static size_t b64url(const void *in, size_t n, char *out)
{
    mesh_b64_encode(in, n, out);
    size_t len = strlen(out);
    while (len && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return len;
}

/* Whether s holds only base64url characters. */
static int b64url_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* ---- payload --------------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int overflow;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_str(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Whether a value is fit for the payload: at most max bytes, no '\n' (NUL ends it). */
static int value_ok(const char *s, size_t n, size_t max)
{
    return n <= max && !memchr(s, '\n', n) && !memchr(s, '\0', n);
}

static int claim_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > POL_IDENTITY_CLAIM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* The MAC of "v1.<payload64>" with a prepared key. */
static int mac_of(const pol_hmac_key_t *key, const char *p64, size_t n, uint8_t mac[POL_SHA256_LEN])
{
    const pol_iov_t iov[] = {{"v1.", 3}, {p64, n}};
    return pol_hmac_sha256_with(key, iov, 2, mac);
}

/* Mints with hk (NULL: unsigned, an empty MAC part) and a lifetime of ttl seconds. */
static long mint(const pol_hmac_key_t *hk, int64_t ttl, const pol_identity_t *id, const char *path,
                 size_t path_len, int64_t now, char *out, size_t cap, char *err, size_t errlen)
{
    size_t sub_n = strnlen(id->sub, sizeof(id->sub));
    size_t src_n = strnlen(id->source, sizeof(id->source));
    if (sub_n < 1 || !value_ok(id->sub, sub_n, POL_IDENTITY_SUB_MAX)) {
        snprintf(err, errlen, "identity sub must be 1..%d bytes without newlines",
                 POL_IDENTITY_SUB_MAX);
        return -1;
    }
    if (!value_ok(id->source, src_n, POL_IDENTITY_SOURCE_MAX)) {
        snprintf(err, errlen, "identity source must be at most %d bytes without newlines",
                 POL_IDENTITY_SOURCE_MAX);
        return -1;
    }
    if (path && (path_len < 1 || !value_ok(path, path_len, POL_IDENTITY_PATH_MAX))) {
        snprintf(err, errlen, "identity path must be 1..%d bytes without newlines or NUL",
                 POL_IDENTITY_PATH_MAX);
        return -1;
    }
    if (id->nclaims < 0 || id->nclaims > POL_IDENTITY_CLAIMS_MAX) {
        snprintf(err, errlen, "identity has %d claims: at most %d", id->nclaims,
                 POL_IDENTITY_CLAIMS_MAX);
        return -1;
    }
    for (int i = 0; i < id->nclaims; i++) {
        const pol_identity_claim_t *c = &id->claims[i];
        size_t vn = strnlen(c->value, sizeof(c->value));
        if (!memchr(c->name, '\0', sizeof(c->name)) || !claim_name_ok(c->name) ||
            !value_ok(c->value, vn, POL_IDENTITY_CLAIM_VALUE_MAX)) {
            snprintf(err, errlen,
                     "identity claim %d: name must be 1..%d of A-Za-z0-9_.- and the value at "
                     "most %d bytes without newlines",
                     i, POL_IDENTITY_CLAIM_NAME_MAX, POL_IDENTITY_CLAIM_VALUE_MAX);
            return -1;
        }
    }
    char payload[POL_IDENTITY_PAYLOAD_MAX];
    buf_t b = {payload, 0, sizeof(payload), 0};
    char num[32];
    snprintf(num, sizeof(num), "exp=%lld\n", (long long)(now + ttl));
    put_str(&b, num);
    put_str(&b, "sub=");
    put(&b, id->sub, sub_n);
    put_str(&b, "\n");
    if (src_n) {
        put_str(&b, "src=");
        put(&b, id->source, src_n);
        put_str(&b, "\n");
    }
    if (path) {
        put_str(&b, "path=");
        put(&b, path, path_len);
        put_str(&b, "\n");
    }
    for (int i = 0; i < id->nclaims; i++) {
        put_str(&b, "c.");
        put_str(&b, id->claims[i].name);
        put_str(&b, "=");
        put_str(&b, id->claims[i].value);
        put_str(&b, "\n");
    }
    if (b.overflow) { /* cannot happen with the bounds above; say so rather than truncate */
        snprintf(err, errlen, "identity payload larger than %d bytes", POL_IDENTITY_PAYLOAD_MAX);
        return -1;
    }
    size_t need = 3 + (b.len + 2) / 3 * 4 + 1 + 44 + 1;
    if (cap < need) {
        snprintf(err, errlen, "identity token needs %zu bytes, buffer has %zu", need, cap);
        return -1;
    }
    memcpy(out, "v1.", 3);
    size_t n = 3 + b64url(payload, b.len, out + 3);
    uint8_t mac[POL_SHA256_LEN];
    if (hk && mac_of(hk, out + 3, n - 3, mac) != 0) {
        snprintf(err, errlen, "identity token: libcrypto unavailable");
        return -1;
    }
    out[n++] = '.';
    if (hk)
        n += b64url(mac, sizeof(mac), out + n);
    else
        out[n] = '\0';
    return (long)n;
}

long pol_identity_mint(const pol_identity_keys_t *k, const pol_identity_t *id, const char *path,
                       size_t path_len, int64_t now, char *out, size_t cap, char *err,
                       size_t errlen)
{
    return mint(&k->current_hk, k->ttl, id, path, path_len, now, out, cap, err, errlen);
}

long pol_identity_mint_unsigned(int64_t ttl, const pol_identity_t *id, const char *path,
                                size_t path_len, int64_t now, char *out, size_t cap, char *err,
                                size_t errlen)
{
    if (ttl <= 0)
        ttl = POL_IDENTITY_TTL_DEFAULT;
    return mint(NULL, ttl, id, path, path_len, now, out, cap, err, errlen);
}

/* Parses "[0-9]+" (or "-[0-9]+") fully into v; 0 or -1. */
static int parse_i64(const char *s, size_t n, int64_t *v)
{
    int neg = n && s[0] == '-';
    size_t i = (size_t)neg;
    if (i == n || n - i > 18)
        return -1;
    int64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = neg ? -x : x;
    return 0;
}

/* Parses a verified payload into out, and the bound path (NULL when none). 0 or -1. */
static int parse_payload(const char *p, size_t len, pol_identity_t *out, const char **bpath,
                         size_t *bpath_len)
{
    int have_exp = 0;
    *bpath = NULL;
    *bpath_len = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        if (!nl)
            return -1; /* every line ends in '\n' */
        const char *l = p + i;
        size_t n = (size_t)(nl - l);
        i += n + 1;
        const char *eq = memchr(l, '=', n);
        if (!eq || memchr(l, '\0', n))
            return -1;
        size_t nn = (size_t)(eq - l), vn = n - nn - 1;
        const char *v = eq + 1;
        if (nn == 3 && memcmp(l, "exp", 3) == 0) {
            if (have_exp || parse_i64(v, vn, &out->exp) != 0)
                return -1;
            have_exp = 1;
        } else if (nn == 3 && memcmp(l, "sub", 3) == 0) {
            if (out->sub[0] || vn < 1 || vn > POL_IDENTITY_SUB_MAX)
                return -1;
            memcpy(out->sub, v, vn);
            out->sub[vn] = '\0';
        } else if (nn == 3 && memcmp(l, "src", 3) == 0) {
            if (out->source[0] || vn < 1 || vn > POL_IDENTITY_SOURCE_MAX)
                return -1;
            memcpy(out->source, v, vn);
            out->source[vn] = '\0';
        } else if (nn == 4 && memcmp(l, "path", 4) == 0) {
            if (*bpath || vn < 1)
                return -1;
            *bpath = v;
            *bpath_len = vn;
        } else if (nn > 2 && memcmp(l, "c.", 2) == 0) {
            size_t cn = nn - 2;
            if (out->nclaims == POL_IDENTITY_CLAIMS_MAX || cn > POL_IDENTITY_CLAIM_NAME_MAX ||
                vn > POL_IDENTITY_CLAIM_VALUE_MAX)
                return -1;
            pol_identity_claim_t *c = &out->claims[out->nclaims++];
            memcpy(c->name, l + 2, cn);
            c->name[cn] = '\0';
            if (!claim_name_ok(c->name))
                return -1;
            memcpy(c->value, v, vn);
            c->value[vn] = '\0';
        } else {
            return -1; /* a field this version does not know */
        }
    }
    return have_exp && out->sub[0] ? 0 : -1;
}

/* Verifies (k set) or only reads (k NULL: the channel vouches for the token) a token. */
static pol_identity_result_t check(const pol_identity_keys_t *k, const char *token, size_t len,
                                   const char *path, size_t path_len, int64_t now,
                                   pol_identity_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!token)
        return POL_IDENTITY_ABSENT;
    if (len < 4 || len > POL_IDENTITY_TOKEN_MAX || memcmp(token, "v1.", 3) != 0)
        return POL_IDENTITY_MALFORMED;
    const char *dot = memchr(token + 3, '.', len - 3);
    if (!dot)
        return POL_IDENTITY_MALFORMED;
    const char *p64 = token + 3, *m64 = dot + 1;
    size_t pn = (size_t)(dot - p64), mn = len - (size_t)(m64 - token);
    uint8_t mac[POL_SHA256_LEN], want[POL_SHA256_LEN];
    if (pn < 1 || !b64url_only(p64, pn) || !b64url_only(m64, mn))
        return POL_IDENTITY_MALFORMED;
    int prev = 0;
    if (!k) {
        if (mn && mesh_b64_decode(m64, mn, mac, sizeof(mac), 1) != (long)POL_SHA256_LEN)
            return POL_IDENTITY_MALFORMED;
        goto payload;
    }
    if (mesh_b64_decode(m64, mn, mac, sizeof(mac), 1) != (long)POL_SHA256_LEN)
        return mn ? POL_IDENTITY_MALFORMED : POL_IDENTITY_BAD_SIGNATURE;
    if (mac_of(&k->current_hk, p64, pn, want) != 0)
        return POL_IDENTITY_INTERNAL;
    if (!pol_ct_equal(mac, want, sizeof(mac))) {
        if (!k->previous_len)
            return POL_IDENTITY_BAD_SIGNATURE;
        if (mac_of(&k->previous_hk, p64, pn, want) != 0)
            return POL_IDENTITY_INTERNAL;
        if (!pol_ct_equal(mac, want, sizeof(mac)))
            return POL_IDENTITY_BAD_SIGNATURE;
        prev = 1;
    }
payload:;
    char payload[POL_IDENTITY_PAYLOAD_MAX];
    long n = mesh_b64_decode(p64, pn, payload, sizeof(payload), 1);
    const char *bpath;
    size_t bpath_len;
    pol_identity_result_t r = POL_IDENTITY_OK;
    if (n < 0 || n > (long)sizeof(payload) ||
        parse_payload(payload, (size_t)n, out, &bpath, &bpath_len) != 0)
        r = POL_IDENTITY_MALFORMED;
    else if (out->exp < now)
        r = POL_IDENTITY_EXPIRED;
    else if (bpath && (!path || bpath_len != path_len || memcmp(bpath, path, path_len) != 0))
        r = POL_IDENTITY_WRONG_PATH;
    if (r != POL_IDENTITY_OK) {
        memset(out, 0, sizeof(*out));
        return r;
    }
    out->previous_key = prev;
    return POL_IDENTITY_OK;
}

pol_identity_result_t pol_identity_verify(const pol_identity_keys_t *k, const char *token,
                                          size_t len, const char *path, size_t path_len,
                                          int64_t now, pol_identity_t *out)
{
    return check(k, token, len, path, path_len, now, out);
}

pol_identity_result_t pol_identity_read(const char *token, size_t len, const char *path,
                                        size_t path_len, int64_t now, pol_identity_t *out)
{
    return check(NULL, token, len, path, path_len, now, out);
}
