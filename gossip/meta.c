/*
 * gossip/meta.c: encoding and decoding a node's metadata (the instances it owns) and hashing
 * method sets; the format is described in gossip/meta.h.
 */
#include "gossip/meta.h"

#include <stdlib.h>
#include <string.h>

#include "gossip/mp.h"

#define INST_FIELDS 8 /* fields of an instance this version reads and writes */

/* ---- encoding ---------------------------------------------------------------------------- */

static int inst_ok(const gsp_inst_t *in)
{
    if (in->service.n == 0 || !gsp_mp_str_ok(in->service, GSP_FIELD_MAX) || in->addr.n == 0 ||
        !gsp_mp_str_ok(in->addr, GSP_ADDR_MAX) || !gsp_mp_str_ok(in->node, GSP_NAME_MAX) ||
        !gsp_mp_str_ok(in->zone, GSP_FIELD_MAX) || !gsp_mp_str_ok(in->version, GSP_FIELD_MAX) ||
        in->weight > GSP_WEIGHT_MAX || in->n_labels > GSP_LABEL_MAX)
        return 0;
    for (uint32_t i = 0; i < in->n_labels; i++)
        if (!gsp_mp_str_ok(in->labels[i].key, GSP_FIELD_MAX) ||
            !gsp_mp_str_ok(in->labels[i].value, GSP_FIELD_MAX))
            return 0;
    return 1;
}

static int pack_inst(msgpack_packer *pk, const gsp_inst_t *in)
{
    if (msgpack_pack_array(pk, INST_FIELDS) || gsp_mp_pack_str(pk, in->service, 0) ||
        gsp_mp_pack_str(pk, in->addr, 0) || gsp_mp_pack_str(pk, in->node, 0) ||
        gsp_mp_pack_str(pk, in->zone, 0) || gsp_mp_pack_str(pk, in->version, 0) ||
        msgpack_pack_uint32(pk, in->weight) || msgpack_pack_uint64(pk, in->methods) ||
        msgpack_pack_map(pk, in->n_labels))
        return -1;
    for (uint32_t i = 0; i < in->n_labels; i++)
        if (gsp_mp_pack_str(pk, in->labels[i].key, 0) ||
            gsp_mp_pack_str(pk, in->labels[i].value, 0))
            return -1;
    return 0;
}

int gsp_meta_encode(const gsp_inst_t *insts, size_t n, uint8_t *buf, size_t cap)
{
    if (n > GSP_INST_MAX || (n && !insts))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!inst_ok(&insts[i]))
            return -1;
    /* gsp_mp_packer writes into a gsp_enc_t's buffer: borrow one (no compound header here). */
    gsp_enc_t e = {.buf = buf, .cap = cap < GSP_META_MAX ? cap : GSP_META_MAX, .len = 0};
    msgpack_packer pk;
    gsp_mp_packer(&pk, &e);
    if (msgpack_pack_array(&pk, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (pack_inst(&pk, &insts[i]))
            return -1;
    return (int)e.len;
}

/* ---- decoding ---------------------------------------------------------------------------- */

static int rd_inst(gsp_mpr_t *r, gsp_inst_t *in)
{
    uint32_t k, n_labels;
    uint64_t v;
    if (gsp_mpr_array(r, UINT32_MAX, &k) < 0 || k < INST_FIELDS ||
        gsp_mpr_str(r, GSP_FIELD_MAX, 0, &in->service) < 0 || in->service.n == 0 ||
        gsp_mpr_str(r, GSP_ADDR_MAX, 0, &in->addr) < 0 || in->addr.n == 0 ||
        gsp_mpr_str(r, GSP_NAME_MAX, 0, &in->node) < 0 ||
        gsp_mpr_str(r, GSP_FIELD_MAX, 0, &in->zone) < 0 ||
        gsp_mpr_str(r, GSP_FIELD_MAX, 0, &in->version) < 0 ||
        gsp_mpr_uint(r, GSP_WEIGHT_MAX, &v) < 0)
        return -1;
    in->weight = (uint32_t)v;
    if (gsp_mpr_uint(r, UINT64_MAX, &in->methods) < 0 ||
        gsp_mpr_map(r, GSP_LABEL_MAX, &n_labels) < 0)
        return -1;
    in->n_labels = n_labels;
    for (uint32_t i = 0; i < n_labels; i++)
        if (gsp_mpr_str(r, GSP_FIELD_MAX, 0, &in->labels[i].key) < 0 ||
            gsp_mpr_str(r, GSP_FIELD_MAX, 0, &in->labels[i].value) < 0)
            return -1;
    return gsp_mpr_skip(r, k - INST_FIELDS); /* fields of a newer version */
}

int gsp_meta_decode(const void *buf, size_t len, gsp_inst_t *out, size_t cap, size_t *n)
{
    gsp_mpr_t r = {buf, len, 0};
    uint32_t k;
    *n = 0;
    if (!buf || len > GSP_META_MAX || gsp_mpr_array(&r, GSP_INST_MAX, &k) < 0 || k > cap)
        return -1;
    for (uint32_t i = 0; i < k; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (rd_inst(&r, &out[i]) < 0)
            return -1;
    }
    if (r.pos != len)
        return -1;
    *n = k;
    return 0;
}

/* ---- method set hashes ------------------------------------------------------------------- */

static int str_cmp(const gsp_str_t *x, const gsp_str_t *y)
{
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Moves v[i] down the max-heap v[0..n). */
static void sift_down(gsp_str_t *v, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && str_cmp(&v[c + 1], &v[c]) > 0)
            c++;
        if (str_cmp(&v[c], &v[i]) <= 0)
            return;
        gsp_str_t t = v[i];
        v[i] = v[c];
        v[c] = t;
        i = c;
    }
}

/* Heapsort: in place and O(n log n), where qsort may allocate. */
static void sort_strs(gsp_str_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(v, i, n);
    for (size_t end = n; end > 1; end--) {
        gsp_str_t t = v[0];
        v[0] = v[end - 1];
        v[end - 1] = t;
        sift_down(v, 0, end - 1);
    }
}

/* Sorts v (n entries, writable) and hashes its distinct entries. */
static uint64_t hash_sorted(gsp_str_t *v, size_t n)
{
    sort_strs(v, n);
    uint64_t h = GSP_SET_HASH_EMPTY;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && str_cmp(&v[i - 1], &v[i]) == 0)
            continue;
        uint8_t len[4] = {(uint8_t)v[i].n, (uint8_t)(v[i].n >> 8), (uint8_t)(v[i].n >> 16),
                          (uint8_t)(v[i].n >> 24)};
        h = fnv(h, len, sizeof(len));
        h = fnv(h, v[i].p, v[i].n);
    }
    return h ? h : 1;
}

/* Hashes n names given by get(src, i). */
static uint64_t hash_set(const void *src, size_t n, gsp_str_t (*get)(const void *, size_t))
{
    gsp_str_t local[GSP_SET_MAX];
    gsp_str_t *v = local;
    if (n > GSP_SET_MAX && !(v = malloc(n * sizeof(*v))))
        return UINT64_MAX; /* out of memory for a set too big to travel anyway */
    for (size_t i = 0; i < n; i++)
        v[i] = get(src, i);
    uint64_t h = hash_sorted(v, n);
    if (v != local)
        free(v);
    return h;
}

static gsp_str_t get_cstr(const void *src, size_t i)
{
    const char *s = ((const char *const *)src)[i];
    return (gsp_str_t){s ? s : "", s ? (uint32_t)strlen(s) : 0};
}

static gsp_str_t get_str(const void *src, size_t i)
{
    return ((const gsp_str_t *)src)[i];
}

uint64_t gsp_meta_set_hash(const char *const *names, size_t n)
{
    return hash_set(names, n, get_cstr);
}

uint64_t gsp_meta_set_hash_strs(const gsp_str_t *names, size_t n)
{
    return hash_set(names, n, get_str);
}
