/*
 * gossip/wire.c: the gossip messages' msgpack encoding (gsp_enc_*, packed by msgpack-c into
 * the caller's buffer, allocating nothing) and their bounded, allocation-free decoding
 * (gsp_dec_*, through the in-place reader of gossip/mp.h).
 *
 * Each message is a msgpack array [type, fields...]; the fields, in order:
 *
 *   PING        seq, target, from, from_addr
 *   PING_REQ    seq, target, target_addr, want_nack (bool), from, from_addr
 *   ACK, NACK   seq
 *   ALIVE       node, addr, incarnation, meta_version, meta (bin)
 *   SUSPECT,
 *   DEAD        node, incarnation, from
 *   STATE       node, addr, incarnation, state, meta_version, meta (bin)
 *   PUSH_PULL   join (bool), reply (bool), n_states[, digest (bool), from_addr]
 *   SET         hash, [names...]
 *   WANT        [nodes...], [hashes...]
 *   CHECK       seq, addr, timeout_ms, from
 *   CHECK_ACK   seq, reached (bool), from
 *   DIGEST      node, incarnation, state, meta_version, meta_known (bool)
 *   HAVE        [hashes...]
 *
 * Strings are msgpack str (no NUL byte inside), the metadata msgpack bin. Both sides check the
 * same rules: names at most GSP_NAME_MAX bytes, addresses GSP_ADDR_MAX, method names
 * GSP_FIELD_MAX, metadata GSP_META_MAX, lists GSP_SET_MAX entries, states up to GSP_ST_LEFT; the
 * member named by ALIVE, SUSPECT, DEAD and STATE is never empty, and a SET's hash is never 0
 * (0 is the hash of "methods not listed", which has no set). An encoder given a message that
 * breaks a rule refuses it (-1), as when it does not fit.
 */
#include "gossip/wire.h"

#include <string.h>

#include "gossip/mp.h"

/* ---- encoding ---------------------------------------------------------------------------- */

/* The compound's array header: array 16 with the count fixed up by gsp_enc_finish. */
#define HDR_LEN 3

void gsp_enc_init(gsp_enc_t *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = cap;
    e->n = 0;
    if (cap < HDR_LEN) {
        e->len = cap; /* nothing fits: every gsp_enc_* refuses */
        return;
    }
    buf[0] = 0xdc;
    buf[1] = buf[2] = 0;
    e->len = HDR_LEN;
}

size_t gsp_enc_finish(gsp_enc_t *e)
{
    if (e->cap >= HDR_LEN) {
        e->buf[1] = (uint8_t)(e->n >> 8);
        e->buf[2] = (uint8_t)e->n;
    }
    return e->len;
}

/* Starts a message of k fields after its type: 0, or -1 when the compound is full. */
static int msg_begin(gsp_enc_t *e, msgpack_packer *pk, gsp_type_t type, size_t k)
{
    if (e->n >= GSP_COMPOUND_MAX || e->cap < HDR_LEN)
        return -1;
    gsp_mp_packer(pk, e);
    return msgpack_pack_array(pk, k + 1) || msgpack_pack_uint8(pk, (uint8_t)type) ? -1 : 0;
}

/* Ends a message begun at start: counts it when everything was written (rc 0), else rolls
 * the buffer back. */
static int msg_end(gsp_enc_t *e, size_t start, int rc)
{
    if (rc) {
        e->len = start;
        return -1;
    }
    e->n++;
    return 0;
}

static int name_ok(gsp_str_t s)
{
    return gsp_mp_str_ok(s, GSP_NAME_MAX);
}

static int member_ok(gsp_str_t s)
{
    return s.n > 0 && name_ok(s);
}

static int addr_ok(gsp_str_t s)
{
    return gsp_mp_str_ok(s, GSP_ADDR_MAX);
}

static int meta_ok(gsp_str_t s)
{
    return s.n <= GSP_META_MAX && (s.n == 0 || s.p);
}

int gsp_enc_ping(gsp_enc_t *e, const gsp_ping_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!name_ok(m->target) || !name_ok(m->from) || !addr_ok(m->from_addr))
        return -1;
    int rc = msg_begin(e, &pk, GSP_PING, 4) || msgpack_pack_uint32(&pk, m->seq) ||
             gsp_mp_pack_str(&pk, m->target, 0) || gsp_mp_pack_str(&pk, m->from, 0) ||
             gsp_mp_pack_str(&pk, m->from_addr, 0);
    return msg_end(e, start, rc);
}

int gsp_enc_ping_req(gsp_enc_t *e, const gsp_ping_req_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!name_ok(m->target) || !addr_ok(m->target_addr) || !name_ok(m->from) ||
        !addr_ok(m->from_addr))
        return -1;
    int rc = msg_begin(e, &pk, GSP_PING_REQ, 6) || msgpack_pack_uint32(&pk, m->seq) ||
             gsp_mp_pack_str(&pk, m->target, 0) || gsp_mp_pack_str(&pk, m->target_addr, 0) ||
             (m->want_nack ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
             gsp_mp_pack_str(&pk, m->from, 0) || gsp_mp_pack_str(&pk, m->from_addr, 0);
    return msg_end(e, start, rc);
}

int gsp_enc_ack(gsp_enc_t *e, gsp_type_t type, uint32_t seq)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (type != GSP_ACK && type != GSP_NACK)
        return -1;
    int rc = msg_begin(e, &pk, type, 1) || msgpack_pack_uint32(&pk, seq);
    return msg_end(e, start, rc);
}

int gsp_enc_alive(gsp_enc_t *e, const gsp_alive_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!member_ok(m->node) || !addr_ok(m->addr) || !meta_ok(m->meta))
        return -1;
    int rc = msg_begin(e, &pk, GSP_ALIVE, 5) || gsp_mp_pack_str(&pk, m->node, 0) ||
             gsp_mp_pack_str(&pk, m->addr, 0) || msgpack_pack_uint32(&pk, m->incarnation) ||
             msgpack_pack_uint64(&pk, m->meta_version) || gsp_mp_pack_str(&pk, m->meta, 1);
    return msg_end(e, start, rc);
}

int gsp_enc_suspect(gsp_enc_t *e, gsp_type_t type, const gsp_suspect_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if ((type != GSP_SUSPECT && type != GSP_DEAD) || !member_ok(m->node) || !name_ok(m->from))
        return -1;
    int rc = msg_begin(e, &pk, type, 3) || gsp_mp_pack_str(&pk, m->node, 0) ||
             msgpack_pack_uint32(&pk, m->incarnation) || gsp_mp_pack_str(&pk, m->from, 0);
    return msg_end(e, start, rc);
}

int gsp_enc_state(gsp_enc_t *e, const gsp_member_state_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!member_ok(m->node) || !addr_ok(m->addr) || m->state > GSP_ST_LEFT || !meta_ok(m->meta))
        return -1;
    int rc = msg_begin(e, &pk, GSP_STATE, 6) || gsp_mp_pack_str(&pk, m->node, 0) ||
             gsp_mp_pack_str(&pk, m->addr, 0) || msgpack_pack_uint32(&pk, m->incarnation) ||
             msgpack_pack_uint8(&pk, m->state) || msgpack_pack_uint64(&pk, m->meta_version) ||
             gsp_mp_pack_str(&pk, m->meta, 1);
    return msg_end(e, start, rc);
}

size_t gsp_enc_state_head(uint8_t *out, size_t cap, const gsp_member_state_t *m)
{
    /* packed as a compound of one message (the packer writes into a gsp_enc_t), without the
     * metadata's body, then copied out without the compound's header */
    gsp_enc_t e;
    msgpack_packer pk;
    if (!member_ok(m->node) || !addr_ok(m->addr) || m->state > GSP_ST_LEFT || !meta_ok(m->meta))
        return 0;
    uint8_t tmp[HDR_LEN + GSP_STATE_HEAD_MAX(GSP_NAME_MAX, GSP_ADDR_MAX)];
    gsp_enc_init(&e, tmp, sizeof tmp);
    int rc = msg_begin(&e, &pk, GSP_STATE, 6) || gsp_mp_pack_str(&pk, m->node, 0) ||
             gsp_mp_pack_str(&pk, m->addr, 0) || msgpack_pack_uint32(&pk, m->incarnation) ||
             msgpack_pack_uint8(&pk, m->state) || msgpack_pack_uint64(&pk, m->meta_version) ||
             msgpack_pack_bin(&pk, m->meta.n);
    size_t n = e.len - HDR_LEN;
    if (rc || n > cap)
        return 0;
    memcpy(out, tmp + HDR_LEN, n);
    return n;
}

int gsp_enc_push_pull(gsp_enc_t *e, const gsp_push_pull_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (m->n_states > GSP_COMPOUND_MAX ||
        (m->digest && (!m->from_addr.n || !addr_ok(m->from_addr))))
        return -1;
    /* without digest, the three fields older nodes send (the same bytes) */
    int rc = msg_begin(e, &pk, GSP_PUSH_PULL, m->digest ? 5 : 3) ||
             (m->join ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
             (m->reply ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
             msgpack_pack_uint32(&pk, m->n_states);
    if (!rc && m->digest)
        rc = msgpack_pack_true(&pk) || gsp_mp_pack_str(&pk, m->from_addr, 0);
    return msg_end(e, start, rc);
}

int gsp_enc_digest(gsp_enc_t *e, const gsp_digest_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!member_ok(m->node) || m->state > GSP_ST_LEFT)
        return -1;
    int rc = msg_begin(e, &pk, GSP_DIGEST, 5) || gsp_mp_pack_str(&pk, m->node, 0) ||
             msgpack_pack_uint32(&pk, m->incarnation) || msgpack_pack_uint8(&pk, m->state) ||
             msgpack_pack_uint64(&pk, m->meta_version) ||
             (m->meta_known ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    return msg_end(e, start, rc);
}

int gsp_enc_have(gsp_enc_t *e, const uint64_t *sets, size_t n)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (n > GSP_SET_MAX || (n && !sets))
        return -1;
    int rc = msg_begin(e, &pk, GSP_HAVE, 1) || msgpack_pack_array(&pk, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = msgpack_pack_uint64(&pk, sets[i]);
    return msg_end(e, start, rc);
}

/* Packs a list of C strings of at most max bytes each; -1 when one breaks the rule. */
static int pack_cstrs(msgpack_packer *pk, const char *const *s, size_t n, uint32_t max)
{
    if (msgpack_pack_array(pk, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!s[i])
            return -1;
        size_t len = strlen(s[i]);
        if (len > max || msgpack_pack_str_with_body(pk, s[i], len))
            return -1;
    }
    return 0;
}

int gsp_enc_set(gsp_enc_t *e, uint64_t hash, const char *const *names, size_t n)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (hash == 0 || n > GSP_SET_MAX || (n && !names))
        return -1;
    int rc = msg_begin(e, &pk, GSP_SET, 2) || msgpack_pack_uint64(&pk, hash) ||
             pack_cstrs(&pk, names, n, GSP_FIELD_MAX);
    return msg_end(e, start, rc);
}

int gsp_enc_want(gsp_enc_t *e, const char *const *nodes, size_t n_nodes, const uint64_t *sets,
                 size_t n_sets)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (n_nodes > GSP_SET_MAX || n_sets > GSP_SET_MAX || (n_nodes && !nodes) || (n_sets && !sets))
        return -1;
    int rc = msg_begin(e, &pk, GSP_WANT, 2) || pack_cstrs(&pk, nodes, n_nodes, GSP_NAME_MAX) ||
             msgpack_pack_array(&pk, n_sets);
    for (size_t i = 0; !rc && i < n_sets; i++)
        rc = msgpack_pack_uint64(&pk, sets[i]);
    return msg_end(e, start, rc);
}

int gsp_enc_raw(gsp_enc_t *e, const void *msg, size_t len)
{
    if (e->n >= GSP_COMPOUND_MAX || e->cap < HDR_LEN || len == 0 || len > e->cap - e->len)
        return -1;
    memcpy(e->buf + e->len, msg, len);
    e->len += len;
    e->n++;
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------------- */

int gsp_dec_init(gsp_decoder_t *d, const void *buf, size_t len)
{
    gsp_mpr_t r = {buf, len, 0};
    uint32_t n;
    d->p = buf;
    d->len = len;
    d->pos = 0;
    d->left = 0;
    d->err = 1;
    if (!buf || gsp_mpr_array(&r, GSP_COMPOUND_MAX, &n) < 0)
        return GSP_WIRE_EBAD;
    d->pos = r.pos;
    d->left = n;
    d->err = 0;
    return GSP_WIRE_OK;
}

/* Field readers: 0, or -1 when the value breaks its rule. */
static int rd_u32(gsp_mpr_t *r, uint32_t *out)
{
    uint64_t v;
    if (gsp_mpr_uint(r, UINT32_MAX, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int rd_u64(gsp_mpr_t *r, uint64_t *out)
{
    return gsp_mpr_uint(r, UINT64_MAX, out);
}

static int rd_name(gsp_mpr_t *r, gsp_str_t *out)
{
    return gsp_mpr_str(r, GSP_NAME_MAX, 0, out);
}

static int rd_member(gsp_mpr_t *r, gsp_str_t *out)
{
    return rd_name(r, out) < 0 || out->n == 0 ? -1 : 0;
}

static int rd_addr(gsp_mpr_t *r, gsp_str_t *out)
{
    return gsp_mpr_str(r, GSP_ADDR_MAX, 0, out);
}

static int rd_meta(gsp_mpr_t *r, gsp_str_t *out)
{
    return gsp_mpr_str(r, GSP_META_MAX, 1, out);
}

/* A list of strings of at most max bytes each into d->names. */
static int rd_strs(gsp_mpr_t *r, gsp_decoder_t *d, uint32_t max, uint32_t *n)
{
    if (gsp_mpr_array(r, GSP_SET_MAX, n) < 0)
        return -1;
    for (uint32_t i = 0; i < *n; i++)
        if (gsp_mpr_str(r, max, 0, &d->names[i]) < 0)
            return -1;
    return 0;
}

int gsp_enc_check(gsp_enc_t *e, const gsp_check_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (m->addr.n == 0 || !addr_ok(m->addr) || !name_ok(m->from))
        return -1;
    int rc = msg_begin(e, &pk, GSP_CHECK, 4) || msgpack_pack_uint32(&pk, m->seq) ||
             gsp_mp_pack_str(&pk, m->addr, 0) || msgpack_pack_uint32(&pk, m->timeout_ms) ||
             gsp_mp_pack_str(&pk, m->from, 0);
    return msg_end(e, start, rc);
}

int gsp_enc_check_ack(gsp_enc_t *e, const gsp_check_ack_t *m)
{
    msgpack_packer pk;
    size_t start = e->len;
    if (!name_ok(m->from))
        return -1;
    int rc = msg_begin(e, &pk, GSP_CHECK_ACK, 3) || msgpack_pack_uint32(&pk, m->seq) ||
             (m->reached ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) ||
             gsp_mp_pack_str(&pk, m->from, 0);
    return msg_end(e, start, rc);
}

/* Fields each message type needs at least (index: type). */
static const uint8_t n_fields[GSP_TYPE_MAX + 1] = {
    [GSP_PING] = 4,      [GSP_PING_REQ] = 6, [GSP_ACK] = 1,  [GSP_NACK] = 1,
    [GSP_ALIVE] = 5,     [GSP_SUSPECT] = 3,  [GSP_DEAD] = 3, [GSP_STATE] = 6,
    [GSP_PUSH_PULL] = 3, [GSP_SET] = 2,      [GSP_WANT] = 2, [GSP_CHECK] = 4,
    [GSP_CHECK_ACK] = 3, [GSP_DIGEST] = 5,   [GSP_HAVE] = 1,
};

/* Reads the fields of a message of a known type into m: 0, or -1. */
static int rd_fields(gsp_mpr_t *r, gsp_decoder_t *d, gsp_msg_t *m)
{
    uint64_t v;
    switch (m->type) {
    case GSP_PING: {
        gsp_ping_t *p = &m->u.ping;
        return rd_u32(r, &p->seq) || rd_name(r, &p->target) || rd_name(r, &p->from) ||
                       rd_addr(r, &p->from_addr)
                   ? -1
                   : 0;
    }
    case GSP_PING_REQ: {
        gsp_ping_req_t *p = &m->u.ping_req;
        return rd_u32(r, &p->seq) || rd_name(r, &p->target) || rd_addr(r, &p->target_addr) ||
                       gsp_mpr_bool(r, &p->want_nack) || rd_name(r, &p->from) ||
                       rd_addr(r, &p->from_addr)
                   ? -1
                   : 0;
    }
    case GSP_ACK:
    case GSP_NACK:
        return rd_u32(r, &m->u.ack.seq);
    case GSP_CHECK: {
        gsp_check_t *c = &m->u.check;
        return rd_u32(r, &c->seq) || rd_addr(r, &c->addr) || rd_u32(r, &c->timeout_ms) ||
                       rd_name(r, &c->from) || c->addr.n == 0
                   ? -1
                   : 0;
    }
    case GSP_CHECK_ACK: {
        gsp_check_ack_t *c = &m->u.check_ack;
        return rd_u32(r, &c->seq) || gsp_mpr_bool(r, &c->reached) || rd_name(r, &c->from) ? -1 : 0;
    }
    case GSP_ALIVE: {
        gsp_alive_t *a = &m->u.alive;
        return rd_member(r, &a->node) || rd_addr(r, &a->addr) || rd_u32(r, &a->incarnation) ||
                       rd_u64(r, &a->meta_version) || rd_meta(r, &a->meta)
                   ? -1
                   : 0;
    }
    case GSP_SUSPECT:
    case GSP_DEAD: {
        gsp_suspect_t *s = &m->u.suspect;
        return rd_member(r, &s->node) || rd_u32(r, &s->incarnation) || rd_name(r, &s->from) ? -1
                                                                                            : 0;
    }
    case GSP_STATE: {
        gsp_member_state_t *s = &m->u.state;
        if (rd_member(r, &s->node) || rd_addr(r, &s->addr) || rd_u32(r, &s->incarnation) ||
            gsp_mpr_uint(r, GSP_ST_LEFT, &v) < 0)
            return -1;
        s->state = (uint8_t)v;
        return rd_u64(r, &s->meta_version) || rd_meta(r, &s->meta) ? -1 : 0;
    }
    case GSP_PUSH_PULL: {
        gsp_push_pull_t *p = &m->u.push_pull;
        if (gsp_mpr_bool(r, &p->join) || gsp_mpr_bool(r, &p->reply) ||
            gsp_mpr_uint(r, GSP_COMPOUND_MAX, &v) < 0)
            return -1;
        p->n_states = (uint32_t)v;
        return 0; /* the optional fields: gsp_dec_next */
    }
    case GSP_DIGEST: {
        gsp_digest_t *g = &m->u.digest;
        if (rd_member(r, &g->node) || rd_u32(r, &g->incarnation) ||
            gsp_mpr_uint(r, GSP_ST_LEFT, &v) < 0)
            return -1;
        g->state = (uint8_t)v;
        return rd_u64(r, &g->meta_version) || gsp_mpr_bool(r, &g->meta_known) ? -1 : 0;
    }
    case GSP_HAVE: {
        gsp_have_t *h = &m->u.have;
        if (gsp_mpr_array(r, GSP_SET_MAX, &h->n_sets) < 0)
            return -1;
        for (uint32_t i = 0; i < h->n_sets; i++)
            if (rd_u64(r, &d->hashes[i]))
                return -1;
        h->sets = d->hashes;
        return 0;
    }
    case GSP_SET: {
        gsp_set_t *s = &m->u.set;
        if (rd_u64(r, &s->hash) || s->hash == 0 || rd_strs(r, d, GSP_FIELD_MAX, &s->n))
            return -1;
        s->names = d->names;
        return 0;
    }
    case GSP_WANT: {
        gsp_want_t *w = &m->u.want;
        if (rd_strs(r, d, GSP_NAME_MAX, &w->n_nodes) ||
            gsp_mpr_array(r, GSP_SET_MAX, &w->n_sets) < 0)
            return -1;
        for (uint32_t i = 0; i < w->n_sets; i++)
            if (rd_u64(r, &d->hashes[i]))
                return -1;
        w->nodes = d->names;
        w->sets = d->hashes;
        return 0;
    }
    }
    return -1;
}

static int dec_fail(gsp_decoder_t *d)
{
    d->err = 1;
    d->left = 0;
    return GSP_WIRE_EBAD;
}

int gsp_dec_next(gsp_decoder_t *d, gsp_msg_t *m, const uint8_t **raw, size_t *raw_len)
{
    if (d->err)
        return GSP_WIRE_EBAD;
    if (d->left == 0)
        return d->pos == d->len ? GSP_WIRE_END : dec_fail(d); /* bytes after the compound */
    gsp_mpr_t r = {d->p, d->len, d->pos};
    uint32_t n;
    uint64_t type;
    if (gsp_mpr_array(&r, UINT32_MAX, &n) < 0 || n < 1 || gsp_mpr_uint(&r, UINT64_MAX, &type))
        return dec_fail(d);
    n--; /* fields after the type */
    int rc = GSP_WIRE_OK;
    memset(m, 0, sizeof(*m));
    if (type == 0 || type > GSP_TYPE_MAX) {
        rc = GSP_WIRE_SKIP;
        m->type = 0;
    } else {
        m->type = (gsp_type_t)type;
        if (n < n_fields[type] || rd_fields(&r, d, m) < 0)
            return dec_fail(d);
        n -= n_fields[type];
        if (m->type == GSP_PUSH_PULL && n >= 2) { /* its optional fields */
            gsp_push_pull_t *p = &m->u.push_pull;
            if (gsp_mpr_bool(&r, &p->digest) || rd_addr(&r, &p->from_addr) ||
                (p->digest && !p->from_addr.n))
                return dec_fail(d);
            n -= 2;
        }
    }
    /* Unknown trailing fields, or the whole body of an unknown message. */
    if (gsp_mpr_skip(&r, n) < 0)
        return dec_fail(d);
    if (raw) {
        *raw = d->p + d->pos;
        *raw_len = r.pos - d->pos;
    }
    d->pos = r.pos;
    d->left--;
    return rc;
}

int gsp_str_eq(gsp_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && (n == 0 || memcmp(a.p, b, n) == 0);
}
