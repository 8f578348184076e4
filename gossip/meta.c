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
    if (msgpack_pack_array(pk, INST_FIELDS + (in->mesh_tls ? 1 : 0)) ||
        gsp_mp_pack_str(pk, in->service, 0) || gsp_mp_pack_str(pk, in->addr, 0) ||
        gsp_mp_pack_str(pk, in->node, 0) || gsp_mp_pack_str(pk, in->zone, 0) ||
        gsp_mp_pack_str(pk, in->version, 0) || msgpack_pack_uint32(pk, in->weight) ||
        msgpack_pack_uint64(pk, in->methods) || msgpack_pack_map(pk, in->n_labels))
        return -1;
    for (uint32_t i = 0; i < in->n_labels; i++)
        if (gsp_mp_pack_str(pk, in->labels[i].key, 0) ||
            gsp_mp_pack_str(pk, in->labels[i].value, 0))
            return -1;
    if (in->mesh_tls && msgpack_pack_uint32(pk, 1))
        return -1;
    return 0;
}

static int attrs_ok(const gsp_node_attrs_t *a)
{
    if (!gsp_mp_str_ok(a->role, GSP_FIELD_MAX) || a->n_evicted > GSP_EVICTED_MAX ||
        a->sig.n > GSP_SIG_MAX || a->vsig.n > GSP_SIG_MAX || a->cert.n > GSP_CERT_MAX ||
        (a->sig.n && !a->sig.p) || (a->vsig.n && !a->vsig.p) || (a->cert.n && !a->cert.p))
        return 0;
    for (uint32_t i = 0; i < a->n_evicted; i++)
        if (a->evicted[i].service.n == 0 || !gsp_mp_str_ok(a->evicted[i].service, GSP_FIELD_MAX) ||
            a->evicted[i].addr.n == 0 || !gsp_mp_str_ok(a->evicted[i].addr, GSP_ADDR_MAX))
            return 0;
    return 1;
}

static int pack_key(msgpack_packer *pk, const char *k)
{
    return gsp_mp_pack_str(pk, (gsp_str_t){k, (uint32_t)strlen(k)}, 0);
}

/* The map form's attributes, after its "i" pair. */
static int pack_attrs(msgpack_packer *pk, const gsp_node_attrs_t *a)
{
    if (a->role.n && (pack_key(pk, "role") || gsp_mp_pack_str(pk, a->role, 0)))
        return -1;
    if (a->sig.n && (pack_key(pk, "sig") || gsp_mp_pack_str(pk, a->sig, 1)))
        return -1;
    if (a->vsig.n && (pack_key(pk, "vsig") || gsp_mp_pack_str(pk, a->vsig, 1)))
        return -1;
    if (a->cert.n && (pack_key(pk, "cert") || gsp_mp_pack_str(pk, a->cert, 1)))
        return -1;
    if (a->cset && (pack_key(pk, "cset") || msgpack_pack_uint64(pk, a->cset)))
        return -1;
    if (!a->n_evicted)
        return 0;
    if (pack_key(pk, "evicted") || msgpack_pack_array(pk, a->n_evicted))
        return -1;
    for (uint32_t i = 0; i < a->n_evicted; i++)
        if (msgpack_pack_array(pk, 2) || gsp_mp_pack_str(pk, a->evicted[i].service, 0) ||
            gsp_mp_pack_str(pk, a->evicted[i].addr, 0))
            return -1;
    return 0;
}

int gsp_meta_encode(const gsp_inst_t *insts, size_t n, uint8_t *buf, size_t cap)
{
    return gsp_meta_encode_node(insts, n, NULL, buf, cap);
}

int gsp_meta_encode_node(const gsp_inst_t *insts, size_t n, const gsp_node_attrs_t *attrs,
                         uint8_t *buf, size_t cap)
{
    if (n > GSP_INST_MAX || (n && !insts) || (attrs && !attrs_ok(attrs)))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!inst_ok(&insts[i]))
            return -1;
    /* gsp_mp_packer writes into a gsp_enc_t's buffer: borrow one (no compound header here). */
    gsp_enc_t e = {.buf = buf, .cap = cap < GSP_META_MAX ? cap : GSP_META_MAX, .len = 0};
    msgpack_packer pk;
    gsp_mp_packer(&pk, &e);
    if (attrs && (attrs->role.n || attrs->n_evicted || attrs->sig.n || attrs->vsig.n ||
                  attrs->cert.n || attrs->cset)) {
        uint32_t pairs = 1 + (attrs->role.n > 0) + (attrs->n_evicted > 0) + (attrs->sig.n > 0) +
                         (attrs->vsig.n > 0) + (attrs->cert.n > 0) + (attrs->cset != 0);
        if (msgpack_pack_map(&pk, pairs) || pack_key(&pk, "i") || msgpack_pack_array(&pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (pack_inst(&pk, &insts[i]))
                return -1;
        return pack_attrs(&pk, attrs) ? -1 : (int)e.len;
    }
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
    in->mesh_tls = 0;
    if (k > INST_FIELDS) { /* tls: uint 1; another value or type is a newer node's: skipped */
        gsp_mpr_t peek = *r;
        if (gsp_mpr_uint(&peek, UINT64_MAX, &v) == 0) {
            in->mesh_tls = v == 1;
            *r = peek;
            k--;
        }
    }
    return gsp_mpr_skip(r, k - INST_FIELDS); /* fields of a newer version */
}

static int rd_insts(gsp_mpr_t *r, gsp_inst_t *out, size_t cap, size_t *n)
{
    uint32_t k;
    if (gsp_mpr_array(r, GSP_INST_MAX, &k) < 0 || k > cap)
        return -1;
    for (uint32_t i = 0; i < k; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (rd_inst(r, &out[i]) < 0)
            return -1;
    }
    *n = k;
    return 0;
}

static int rd_evicted(gsp_mpr_t *r, gsp_node_attrs_t *a)
{
    uint32_t k, two;
    if (gsp_mpr_array(r, GSP_EVICTED_MAX, &k) < 0)
        return -1;
    for (uint32_t i = 0; i < k; i++) {
        gsp_evicted_t ev;
        if (gsp_mpr_array(r, UINT32_MAX, &two) < 0 || two < 2 ||
            gsp_mpr_str(r, GSP_FIELD_MAX, 0, &ev.service) < 0 || ev.service.n == 0 ||
            gsp_mpr_str(r, GSP_ADDR_MAX, 0, &ev.addr) < 0 || ev.addr.n == 0 ||
            gsp_mpr_skip(r, two - 2) < 0)
            return -1;
        a->evicted[i] = ev;
    }
    a->n_evicted = k;
    return 0;
}

static int key_is(gsp_str_t k, const char *s)
{
    return k.n == strlen(s) && !memcmp(k.p, s, k.n);
}

/* The map form: "i", "role", "evicted", and keys of a newer version skipped. */
static int rd_map(gsp_mpr_t *r, gsp_inst_t *out, size_t cap, size_t *n, gsp_node_attrs_t *a)
{
    uint32_t pairs;
    int seen_i = 0;
    if (gsp_mpr_map(r, UINT32_MAX, &pairs) < 0)
        return -1;
    for (uint32_t i = 0; i < pairs; i++) {
        gsp_str_t key;
        if (gsp_mpr_str(r, GSP_FIELD_MAX, 0, &key) < 0)
            return -1;
        int rc;
        if (key_is(key, "i") && !seen_i) {
            size_t at = r->pos;
            rc = rd_insts(r, out, cap, n);
            a->insts_raw = (gsp_str_t){(const char *)r->p + at, (uint32_t)(r->pos - at)};
            seen_i = 1;
        } else if (key_is(key, "sig")) {
            rc = gsp_mpr_str(r, GSP_SIG_MAX, 1, &a->sig);
        } else if (key_is(key, "vsig")) {
            rc = gsp_mpr_str(r, GSP_SIG_MAX, 1, &a->vsig);
        } else if (key_is(key, "cert")) {
            rc = gsp_mpr_str(r, GSP_CERT_MAX, 1, &a->cert);
        } else if (key_is(key, "cset")) {
            rc = gsp_mpr_uint(r, UINT64_MAX, &a->cset);
        } else if (key_is(key, "role")) {
            rc = gsp_mpr_str(r, GSP_FIELD_MAX, 0, &a->role);
        } else if (key_is(key, "evicted")) {
            rc = rd_evicted(r, a);
        } else {
            rc = gsp_mpr_skip(r, 1);
        }
        if (rc < 0)
            return -1;
    }
    return seen_i ? 0 : -1;
}

int gsp_meta_decode(const void *buf, size_t len, gsp_inst_t *out, size_t cap, size_t *n)
{
    return gsp_meta_decode_node(buf, len, out, cap, n, NULL);
}

static void attrs_clear(gsp_node_attrs_t *a)
{
    a->role = a->sig = a->vsig = a->cert = a->insts_raw = (gsp_str_t){"", 0};
    a->n_evicted = 0;
    a->cset = 0;
}

int gsp_meta_decode_node(const void *buf, size_t len, gsp_inst_t *out, size_t cap, size_t *n,
                         gsp_node_attrs_t *attrs)
{
    gsp_mpr_t r = {buf, len, 0};
    gsp_node_attrs_t *a = attrs;
    size_t k = 0;
    *n = 0;
    if (a)
        attrs_clear(a);
    if (!buf || len == 0 || len > GSP_META_MAX)
        return -1;
    int rc;
    if ((((const uint8_t *)buf)[0] & 0xf0) == 0x80 || ((const uint8_t *)buf)[0] == 0xde ||
        ((const uint8_t *)buf)[0] == 0xdf) {
        gsp_node_attrs_t scratch;
        rc = rd_map(&r, out, cap, &k, a ? a : &scratch);
    } else {
        rc = rd_insts(&r, out, cap, &k);
        if (a)
            a->insts_raw = (gsp_str_t){(const char *)buf, (uint32_t)r.pos};
    }
    if (rc < 0 || r.pos != len) {
        if (a)
            attrs_clear(a);
        return -1;
    }
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
