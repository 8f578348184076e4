/*
 * gossip/seal.c: sealing and opening gossip packets (version, cluster label, AES-256-GCM with
 * a keyring through OpenSSL), key files, and stream frames; see gossip/seal.h for the format.
 */
#include "gossip/seal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/random.h>

#include "common/base64.h"
#include "common/crypto_lib.h"
#include "common/file_read.h"

/* ---- errors ------------------------------------------------------------------------------ */

static const char *const err_text[GSP_SEAL_NERR] = {
    [GSP_SEAL_OK] = "ok",
    [GSP_SEAL_ESHORT] = "packet too short or garbled",
    [GSP_SEAL_EVERSION] = "unknown gossip wire version",
    [GSP_SEAL_ELABEL] = "cluster label mismatch",
    [GSP_SEAL_ENOKEY] = "encrypted packet, but no gossip key is configured",
    [GSP_SEAL_EPLAIN] = "plain packet, but a gossip key is configured",
    [GSP_SEAL_EAUTH] = "authentication failed (no key of the keyring fits)",
    [GSP_SEAL_ESPACE] = "buffer too small",
    [GSP_SEAL_ECRYPTO] = "OpenSSL failure",
    [GSP_SEAL_EFRAME] = "stream frame over the size limit",
    [GSP_SEAL_ENOMEM] = "out of memory",
};

static const char *const err_name[GSP_SEAL_NERR] = {
    [GSP_SEAL_OK] = "ok",        [GSP_SEAL_ESHORT] = "short", [GSP_SEAL_EVERSION] = "version",
    [GSP_SEAL_ELABEL] = "label", [GSP_SEAL_ENOKEY] = "nokey", [GSP_SEAL_EPLAIN] = "plain",
    [GSP_SEAL_EAUTH] = "auth",   [GSP_SEAL_ESPACE] = "space", [GSP_SEAL_ECRYPTO] = "crypto",
    [GSP_SEAL_EFRAME] = "frame", [GSP_SEAL_ENOMEM] = "nomem",
};

const char *gsp_seal_strerror(int err)
{
    return err >= 0 && err < GSP_SEAL_NERR ? err_text[err] : "unknown error";
}

const char *gsp_seal_errname(int err)
{
    return err >= 0 && err < GSP_SEAL_NERR ? err_name[err] : "unknown";
}

/* ---- keyring ----------------------------------------------------------------------------- */

int gsp_keyring_parse(const char *text, size_t len, const char *name, gsp_keyring_t *ring,
                      char *err, size_t errlen)
{
    memset(ring, 0, sizeof(*ring));
    size_t pos = 0;
    for (unsigned line = 1; pos < len; line++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t a = pos, b = end;
        pos = end + 1;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        if (a == b || text[a] == '#')
            continue;
        if (ring->n == GSP_KEYRING_MAX) {
            snprintf(err, errlen, "%s:%u: more than %d keys", name, line, GSP_KEYRING_MAX);
            gsp_keyring_clear(ring);
            return -1;
        }
        uint8_t *key = ring->keys[ring->n];
        long n = mesh_b64_decode(text + a, b - a, key, GSP_KEY_LEN, 1);
        if (n < 0 || n != GSP_KEY_LEN) {
            if (n < 0)
                snprintf(err, errlen, "%s:%u: not a base64 key", name, line);
            else if (n > GSP_KEY_LEN)
                snprintf(err, errlen, "%s:%u: key longer than %d bytes (AES-256 needs %d)", name,
                         line, GSP_KEY_LEN, GSP_KEY_LEN);
            else
                snprintf(err, errlen, "%s:%u: key of %ld bytes (AES-256 needs %d)", name, line, n,
                         GSP_KEY_LEN);
            gsp_keyring_clear(ring);
            return -1;
        }
        ring->n++;
    }
    if (ring->n == 0) {
        snprintf(err, errlen, "%s: no key", name);
        return -1;
    }
    return 0;
}

int gsp_keyring_load(const char *path, gsp_keyring_t *ring, char *err, size_t errlen)
{
    /* A key file is small: GSP_KEYRING_MAX keys and some comments. */
    enum { MAX_FILE = 64 << 10 };
    memset(ring, 0, sizeof(*ring));
    size_t n;
    char *text = mesh_file_read(path, MAX_FILE, MESH_FILE_SECRET, &n, err, errlen);
    if (!text)
        return -1;
    int rc = gsp_keyring_parse(text, n, path, ring, err, errlen);
    explicit_bzero(text, n);
    free(text);
    return rc;
}

void gsp_keyring_clear(gsp_keyring_t *ring)
{
    explicit_bzero(ring, sizeof(*ring));
}

/* ---- packets ----------------------------------------------------------------------------- */

/* n bytes from the kernel's CSPRNG; 0 or -1. */
static int random_bytes(uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

struct gsp_sealer {
    uint8_t hdr[3 + GSP_LABEL_LEN_MAX]; /* the header this node writes (flags included) */
    size_t hdr_len;
    uint32_t n_keys;
    EVP_CIPHER_CTX *enc;                  /* the first key's, encrypting */
    EVP_CIPHER_CTX *dec[GSP_KEYRING_MAX]; /* every key's, decrypting */
    uint8_t nonce_prefix[8];
    uint32_t counter;
    const mesh_crypto_t *C; /* libcrypto, loaded for a keyed sealer only */
};

gsp_sealer_t *gsp_sealer_new(const gsp_keyring_t *ring, const char *label)
{
    size_t label_len = label ? strlen(label) : 0;
    if (label_len > GSP_LABEL_LEN_MAX || (ring && ring->n > GSP_KEYRING_MAX))
        return NULL;
    gsp_sealer_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->n_keys = ring ? ring->n : 0;
    s->hdr[0] = GSP_WIRE_VERSION;
    s->hdr[1] = s->n_keys ? GSP_SEAL_FLAG_ENCRYPTED : 0;
    s->hdr[2] = (uint8_t)label_len;
    if (label_len)
        memcpy(s->hdr + 3, label, label_len);
    s->hdr_len = 3 + label_len;
    if (!s->n_keys)
        return s;
    const mesh_crypto_t *C = s->C = mesh_crypto(NULL, 0);
    if (!C || random_bytes(s->nonce_prefix, sizeof(s->nonce_prefix)) != 0)
        goto fail;
    s->enc = C->ctx_new();
    if (!s->enc || C->encrypt_init(s->enc, C->aes_256_gcm(), NULL, ring->keys[0], NULL) != 1)
        goto fail;
    for (uint32_t i = 0; i < s->n_keys; i++) {
        s->dec[i] = C->ctx_new();
        if (!s->dec[i] ||
            C->decrypt_init(s->dec[i], C->aes_256_gcm(), NULL, ring->keys[i], NULL) != 1)
            goto fail;
    }
    return s;
fail:
    gsp_sealer_delete(s);
    return NULL;
}

void gsp_sealer_delete(gsp_sealer_t *s)
{
    if (!s)
        return;
    if (s->C) {
        s->C->ctx_free(s->enc); /* frees the key schedule, wiped */
        for (uint32_t i = 0; i < GSP_KEYRING_MAX; i++)
            s->C->ctx_free(s->dec[i]);
    }
    explicit_bzero(s, sizeof(*s));
    free(s);
}

int gsp_sealer_encrypted(const gsp_sealer_t *s)
{
    return s->n_keys > 0;
}

size_t gsp_seal_prefix(const gsp_sealer_t *s)
{
    return s->hdr_len + (s->n_keys ? GSP_NONCE_LEN : 0);
}

size_t gsp_seal_overhead(const gsp_sealer_t *s)
{
    return gsp_seal_prefix(s) + (s->n_keys ? GSP_TAG_LEN : 0);
}

/* The next nonce: the random prefix and the counter; a new prefix when the counter wraps. */
static int next_nonce(gsp_sealer_t *s, uint8_t *nonce)
{
    if (s->counter == UINT32_MAX) {
        if (random_bytes(s->nonce_prefix, sizeof(s->nonce_prefix)) != 0)
            return -1;
        s->counter = 0;
    }
    uint32_t c = s->counter++;
    memcpy(nonce, s->nonce_prefix, 8);
    nonce[8] = (uint8_t)(c >> 24);
    nonce[9] = (uint8_t)(c >> 16);
    nonce[10] = (uint8_t)(c >> 8);
    nonce[11] = (uint8_t)c;
    return 0;
}

gsp_seal_err_t gsp_seal(gsp_sealer_t *s, const void *body, size_t len, uint8_t *out, size_t cap,
                        size_t *out_len)
{
    size_t prefix = gsp_seal_prefix(s), total = gsp_seal_overhead(s) + len;
    if (len > GSP_FRAME_MAX || total > cap)
        return GSP_SEAL_ESPACE;
    memcpy(out, s->hdr, s->hdr_len);
    if (!s->n_keys) {
        memmove(out + prefix, body, len);
        *out_len = total;
        return GSP_SEAL_OK;
    }
    uint8_t *nonce = out + s->hdr_len, *ct = out + prefix;
    int n, fin;
    const mesh_crypto_t *C = s->C;
    if (next_nonce(s, nonce) < 0 || C->encrypt_init(s->enc, NULL, NULL, NULL, nonce) != 1 ||
        C->encrypt_update(s->enc, NULL, &n, s->hdr, (int)s->hdr_len) != 1 ||
        C->encrypt_update(s->enc, ct, &n, body, (int)len) != 1 ||
        C->encrypt_final(s->enc, ct + n, &fin) != 1 ||
        C->ctx_ctrl(s->enc, EVP_CTRL_GCM_GET_TAG, GSP_TAG_LEN, ct + len) != 1)
        return GSP_SEAL_ECRYPTO;
    *out_len = total;
    return GSP_SEAL_OK;
}

/* Tries to decrypt with one key's context: 1 when it authenticates. */
static int try_key(const mesh_crypto_t *C, EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t aad_len,
                   const uint8_t *nonce, const uint8_t *ct, size_t ct_len, uint8_t *out)
{
    int n, fin;
    uint8_t tag[GSP_TAG_LEN];
    memcpy(tag, ct + ct_len, GSP_TAG_LEN); /* the ctrl takes a non-const pointer */
    return C->decrypt_init(ctx, NULL, NULL, NULL, nonce) == 1 &&
           C->decrypt_update(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
           C->decrypt_update(ctx, out, &n, ct, (int)ct_len) == 1 &&
           C->ctx_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GSP_TAG_LEN, tag) == 1 &&
           C->decrypt_final(ctx, out + n, &fin) == 1;
}

gsp_seal_err_t gsp_open(gsp_sealer_t *s, const uint8_t *pkt, size_t len, uint8_t *scratch,
                        size_t cap, const uint8_t **body, size_t *body_len)
{
    if (len < 3 || (pkt[1] & ~GSP_SEAL_FLAG_ENCRYPTED))
        return pkt && len >= 1 && pkt[0] != GSP_WIRE_VERSION ? GSP_SEAL_EVERSION : GSP_SEAL_ESHORT;
    if (pkt[0] != GSP_WIRE_VERSION)
        return GSP_SEAL_EVERSION;
    size_t hdr_len = 3 + (size_t)pkt[2];
    if (len < hdr_len)
        return GSP_SEAL_ESHORT;
    if (pkt[2] != s->hdr[2] || memcmp(pkt + 3, s->hdr + 3, pkt[2]) != 0)
        return GSP_SEAL_ELABEL;
    int encrypted = pkt[1] & GSP_SEAL_FLAG_ENCRYPTED;
    if (encrypted && !s->n_keys)
        return GSP_SEAL_ENOKEY;
    if (!encrypted && s->n_keys)
        return GSP_SEAL_EPLAIN;
    if (!encrypted) {
        *body = pkt + hdr_len;
        *body_len = len - hdr_len;
        return GSP_SEAL_OK;
    }
    if (len - hdr_len < GSP_NONCE_LEN + GSP_TAG_LEN)
        return GSP_SEAL_ESHORT;
    size_t ct_len = len - hdr_len - GSP_NONCE_LEN - GSP_TAG_LEN;
    if (ct_len > GSP_FRAME_MAX)
        return GSP_SEAL_ESHORT;
    if (cap < ct_len)
        return GSP_SEAL_ESPACE;
    const uint8_t *nonce = pkt + hdr_len, *ct = nonce + GSP_NONCE_LEN;
    for (uint32_t i = 0; i < s->n_keys; i++) {
        if (try_key(s->C, s->dec[i], pkt, hdr_len, nonce, ct, ct_len, scratch)) {
            *body = scratch;
            *body_len = ct_len;
            return GSP_SEAL_OK;
        }
    }
    return GSP_SEAL_EAUTH;
}

/* ---- stream frames ----------------------------------------------------------------------- */

gsp_seal_err_t gsp_frame_seal(gsp_sealer_t *s, const void *body, size_t len, uint8_t *out,
                              size_t cap, size_t *out_len)
{
    size_t n;
    if (cap < GSP_FRAME_HDR || gsp_seal_overhead(s) + len > GSP_FRAME_MAX)
        return GSP_SEAL_ESPACE;
    gsp_seal_err_t rc = gsp_seal(s, body, len, out + GSP_FRAME_HDR, cap - GSP_FRAME_HDR, &n);
    if (rc != GSP_SEAL_OK)
        return rc;
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    *out_len = GSP_FRAME_HDR + n;
    return GSP_SEAL_OK;
}

/* Buffers larger than this are freed once their frame has been handed out. */
#define FRAME_KEEP (64u << 10)

void gsp_frame_reader_init(gsp_frame_reader_t *r, uint32_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max && max < GSP_FRAME_MAX ? max : GSP_FRAME_MAX;
}

void gsp_frame_reader_destroy(gsp_frame_reader_t *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

static int frame_fail(gsp_frame_reader_t *r, gsp_seal_err_t err)
{
    r->err = err;
    return -1;
}

int gsp_frame_read(gsp_frame_reader_t *r, const uint8_t **data, size_t *len, const uint8_t **frame,
                   size_t *frame_len)
{
    if (r->err)
        return -1;
    if (r->delivered) { /* the last frame handed out was in the buffer: done with it */
        r->delivered = 0;
        r->have = 0;
        if (r->cap > FRAME_KEEP) {
            free(r->buf);
            r->buf = NULL;
            r->cap = 0;
        }
    }
    while (*len > 0) {
        if (!r->in_body) {
            /* A whole frame in the chunk: hand it out in place. */
            if (r->hdr_have == 0 && *len >= GSP_FRAME_HDR) {
                const uint8_t *p = *data;
                uint32_t n =
                    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                if (n == 0 || n > r->max)
                    return frame_fail(r, GSP_SEAL_EFRAME);
                if (*len - GSP_FRAME_HDR >= n) {
                    *frame = p + GSP_FRAME_HDR;
                    *frame_len = n;
                    *data += GSP_FRAME_HDR + n;
                    *len -= GSP_FRAME_HDR + n;
                    return 1;
                }
            }
            size_t k = GSP_FRAME_HDR - r->hdr_have;
            if (k > *len)
                k = *len;
            memcpy(r->hdr + r->hdr_have, *data, k);
            r->hdr_have += (uint8_t)k;
            *data += k;
            *len -= k;
            if (r->hdr_have < GSP_FRAME_HDR)
                return 0;
            r->need = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
                      (uint32_t)r->hdr[2] << 8 | r->hdr[3];
            if (r->need == 0 || r->need > r->max) /* a packet is never empty */
                return frame_fail(r, GSP_SEAL_EFRAME);
            r->in_body = 1;
            r->have = 0;
        }
        size_t k = r->need - r->have;
        if (k > *len)
            k = *len;
        if (r->have + k > r->cap) {
            /* Grow with what has arrived (doubling), never past the frame's length. */
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->have + k)
                cap *= 2;
            if (cap > r->need)
                cap = r->need;
            uint8_t *b = realloc(r->buf, cap);
            if (!b)
                return frame_fail(r, GSP_SEAL_ENOMEM);
            r->buf = b;
            r->cap = cap;
        }
        if (k)
            memcpy(r->buf + r->have, *data, k);
        r->have += k;
        *data += k;
        *len -= k;
        if (r->have == r->need) {
            r->in_body = 0;
            r->hdr_have = 0;
            r->delivered = 1;
            *frame = r->buf;
            *frame_len = r->need;
            return 1;
        }
    }
    return 0;
}
