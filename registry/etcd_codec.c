/*
 * registry/etcd_codec.c: base64, request bodies and response decoders for etcd's JSON
 * gateway (see etcd_codec.h for the quirks of etcd 3.4 handled here).
 */
#include "registry/etcd_codec.h"

#include "common/base64.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t etcd_b64_len(size_t n)
{
    return mesh_b64_len(n);
}

void etcd_b64_encode(const void *in, size_t n, char *out)
{
    mesh_b64_encode(in, n, out);
}

long etcd_b64_decode(const char *in, size_t len, char *out)
{
    long n = mesh_b64_decode(in, len, out, len, 0); /* base64 never decodes longer */
    if (n >= 0)
        out[n] = '\0';
    return n;
}

size_t etcd_prefix_end(const char *prefix, size_t len, char *out)
{
    memcpy(out, prefix, len);
    for (size_t i = len; i > 0; i--) {
        if ((unsigned char)out[i - 1] < 0xff) {
            out[i - 1] = (char)((unsigned char)out[i - 1] + 1);
            return i;
        }
    }
    out[0] = '\0'; /* every key */
    return 1;
}

void etcd_decoder_init(etcd_decoder_t *d)
{
    d->buf = NULL;
    d->cap = 0;
}

void etcd_decoder_destroy(etcd_decoder_t *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

static int decoder_reserve(etcd_decoder_t *d, size_t need)
{
    if (d->cap >= need)
        return 0;
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < need)
        cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b)
        return -1;
    d->buf = b;
    d->cap = cap;
    return 0;
}

/* Parses an etcd answer; NULL unless it is a JSON object. */
static json_t *load_object(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/*
 * An int64 as etcd sends it: a JSON string, or a number; missing means 0. Revisions, lease IDs
 * and TTLs are never negative in etcd (a TTL of -1 means "gone", as 0 does): anything negative,
 * out of range or not a number reads as 0.
 */
static int64_t json_int64(const json_t *v)
{
    long long x = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end;
        errno = 0;
        x = strtoll(json_string_value(v), &end, 10);
        if (errno || *end)
            return 0;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d < 9.2e18)) /* also false for NaN */
            return 0;
        x = (long long)d;
    }
    return x > 0 ? (int64_t)x : 0;
}

static int json_boolish(const json_t *v)
{
    return v && (json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0));
}

static void error_from_json(const json_t *root, etcd_error_t *err)
{
    err->code = 0;
    err->message[0] = '\0';
    const json_t *e = json_object_get(root, "error");
    if (!e)
        return;
    const json_t *msg = json_object_get(root, "message");
    const json_t *code = json_object_get(root, "code");
    if (json_is_object(e)) { /* streaming form */
        msg = json_object_get(e, "message");
        code = json_object_get(e, "grpc_code");
        if (!code)
            code = json_object_get(e, "code");
    } else if (!msg && json_is_string(e)) {
        msg = e;
    }
    err->code = (int)json_int64(code);
    if (err->code == 0)
        err->code = -1; /* an error without a code is still an error */
    snprintf(err->message, sizeof(err->message), "%s",
             json_is_string(msg) ? json_string_value(msg) : "unknown etcd error");
}

int etcd_decode_error(const char *body, size_t len, etcd_error_t *err)
{
    json_t *root = load_object(body, len);
    if (!root) {
        err->code = -1;
        snprintf(err->message, sizeof(err->message), "not an etcd answer");
        return -1;
    }
    const json_t *inner = json_object_get(root, "result");
    error_from_json(json_object_get(root, "error") || !inner ? root : inner, err);
    json_decref(root);
    return err->code != 0;
}

/* Decodes the base64 key/value of a JSON kv into the scratch buffer at *off. */
static int kv_from_json(etcd_decoder_t *d, const json_t *j, etcd_kv_t *kv, size_t *off)
{
    const json_t *k = json_object_get(j, "key");
    const json_t *v = json_object_get(j, "value");
    const char *ks = json_is_string(k) ? json_string_value(k) : "";
    const char *vs = json_is_string(v) ? json_string_value(v) : "";
    size_t kl = strlen(ks), vl = strlen(vs);
    if (decoder_reserve(d, *off + kl * 3 / 4 + vl * 3 / 4 + 8) < 0)
        return -1;
    /* Offsets, not pointers: the buffer may have moved; the caller fixes pointers up. */
    long kn = etcd_b64_decode(ks, kl, d->buf + *off);
    if (kn < 0)
        return -1;
    kv->key = (const char *)(uintptr_t)*off;
    kv->key_len = (size_t)kn;
    *off += (size_t)kn + 1;
    long vn = etcd_b64_decode(vs, vl, d->buf + *off);
    if (vn < 0)
        return -1;
    kv->value = (const char *)(uintptr_t)*off;
    kv->value_len = (size_t)vn;
    *off += (size_t)vn + 1;
    kv->create_revision = json_int64(json_object_get(j, "create_revision"));
    kv->mod_revision = json_int64(json_object_get(j, "mod_revision"));
    kv->version = json_int64(json_object_get(j, "version"));
    kv->lease = json_int64(json_object_get(j, "lease"));
    return 0;
}

static void kv_fix(etcd_decoder_t *d, etcd_kv_t *kv)
{
    kv->key = d->buf + (uintptr_t)kv->key;
    kv->value = d->buf + (uintptr_t)kv->value;
}

int etcd_decode_range(etcd_decoder_t *d, const char *body, size_t len, etcd_range_info_t *info,
                      etcd_kv_cb cb, void *ud)
{
    memset(info, 0, sizeof(*info));
    json_t *root = load_object(body, len);
    if (!root) {
        return -1;
    }
    error_from_json(root, &info->err);
    const json_t *hdr = json_object_get(root, "header");
    info->revision = json_int64(json_object_get(hdr, "revision"));
    info->count = json_int64(json_object_get(root, "count"));
    info->more = json_boolish(json_object_get(root, "more"));
    const json_t *kvs = json_object_get(root, "kvs");
    int rc = 0;
    size_t i;
    const json_t *j;
    json_array_foreach(kvs, i, j)
    {
        etcd_kv_t kv;
        size_t off = 0;
        if (kv_from_json(d, j, &kv, &off) < 0) {
            rc = -1;
            break;
        }
        kv_fix(d, &kv);
        if (cb && cb(ud, &kv))
            break;
    }
    json_decref(root);
    return rc;
}

int etcd_decode_watch(etcd_decoder_t *d, const char *line, size_t len, etcd_watch_info_t *info,
                      etcd_event_cb cb, void *ud)
{
    memset(info, 0, sizeof(*info));
    json_t *root = load_object(line, len);
    if (!root) {
        return -1;
    }
    const json_t *res = json_object_get(root, "result");
    if (!res) {
        error_from_json(root, &info->err);
        json_decref(root);
        return info->err.code ? 0 : -1;
    }
    const json_t *hdr = json_object_get(res, "header");
    info->revision = json_int64(json_object_get(hdr, "revision"));
    info->watch_id = json_int64(json_object_get(res, "watch_id"));
    info->created = json_boolish(json_object_get(res, "created"));
    info->canceled = json_boolish(json_object_get(res, "canceled"));
    info->compact_revision = json_int64(json_object_get(res, "compact_revision"));
    const json_t *reason = json_object_get(res, "cancel_reason");
    if (json_is_string(reason))
        snprintf(info->cancel_reason, sizeof(info->cancel_reason), "%s", json_string_value(reason));
    const json_t *evs = json_object_get(res, "events");
    info->n_events = (int)json_array_size(evs);
    int rc = 0;
    size_t i;
    const json_t *j;
    json_array_foreach(evs, i, j)
    {
        etcd_event_t ev;
        memset(&ev, 0, sizeof(ev));
        const json_t *type = json_object_get(j, "type");
        if (json_is_string(type))
            ev.type =
                strcmp(json_string_value(type), "DELETE") == 0 ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
        else if (json_is_integer(type))
            ev.type = json_integer_value(type) == 1 ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
        size_t off = 0;
        const json_t *kv = json_object_get(j, "kv");
        const json_t *prev = json_object_get(j, "prev_kv");
        if (!json_is_object(kv) || kv_from_json(d, kv, &ev.kv, &off) < 0) {
            rc = -1;
            break;
        }
        if (json_is_object(prev)) {
            if (kv_from_json(d, prev, &ev.prev_kv, &off) < 0) {
                rc = -1;
                break;
            }
            ev.has_prev = 1;
        }
        kv_fix(d, &ev.kv);
        if (ev.has_prev)
            kv_fix(d, &ev.prev_kv);
        if (cb && cb(ud, &ev))
            break;
    }
    json_decref(root);
    return rc;
}

int etcd_decode_lease(const char *body, size_t len, etcd_lease_info_t *info)
{
    memset(info, 0, sizeof(*info));
    json_t *root = load_object(body, len);
    if (!root) {
        return -1;
    }
    const json_t *res = json_object_get(root, "result");
    const json_t *o = res ? res : root;
    error_from_json(json_object_get(root, "error") ? root : o, &info->err);
    info->id = json_int64(json_object_get(o, "ID"));
    info->ttl = json_int64(json_object_get(o, "TTL"));
    info->revision = json_int64(json_object_get(json_object_get(o, "header"), "revision"));
    json_decref(root);
    return 0;
}

int etcd_decode_header(const char *body, size_t len, int64_t *revision, int *succeeded,
                       etcd_error_t *err)
{
    json_t *root = load_object(body, len);
    if (!root) {
        return -1;
    }
    error_from_json(root, err);
    if (revision)
        *revision = json_int64(json_object_get(json_object_get(root, "header"), "revision"));
    if (succeeded)
        *succeeded = json_boolish(json_object_get(root, "succeeded"));
    json_decref(root);
    return err->code ? 1 : 0;
}

int etcd_decode_txn(etcd_decoder_t *d, const char *body, size_t len, int64_t *revision,
                    int *succeeded, etcd_error_t *err, etcd_kv_cb cb, void *ud)
{
    memset(err, 0, sizeof(*err));
    json_t *root = load_object(body, len);
    if (!root)
        return -1;
    error_from_json(root, err);
    *revision = json_int64(json_object_get(json_object_get(root, "header"), "revision"));
    *succeeded = json_boolish(json_object_get(root, "succeeded"));
    int rc = err->code ? 1 : 0;
    size_t i, k;
    const json_t *r, *j;
    json_array_foreach(json_object_get(root, "responses"), i, r)
    {
        const json_t *rr = json_object_get(r, "response_range");
        json_array_foreach(json_object_get(rr, "kvs"), k, j)
        {
            etcd_kv_t kv;
            size_t off = 0;
            if (kv_from_json(d, j, &kv, &off) < 0) {
                json_decref(root);
                return -1;
            }
            kv_fix(d, &kv);
            if (cb && cb(ud, &kv))
                break;
        }
    }
    json_decref(root);
    return rc;
}

/* ---- request bodies (built with jansson) -------------------------------------------------- */

/* base64 of n bytes as a new JSON string. */
static json_t *b64_json(const char *s, size_t n)
{
    char *o = malloc(etcd_b64_len(n) + 1);
    if (!o)
        return NULL;
    etcd_b64_encode(s, n, o);
    json_t *j = json_string(o);
    free(o);
    return j;
}

/* etcd's int64 fields are JSON strings. */
static json_t *int64_json(int64_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "%" PRId64, v);
    return json_string(b);
}

/* Sets key (and range_end for a prefix) on o; 0 or -1. */
static int set_key(json_t *o, const char *key, int prefix)
{
    size_t n = strlen(key);
    if (json_object_set_new(o, "key", b64_json(key, n)) < 0)
        return -1;
    if (!prefix)
        return 0;
    char *end = malloc(n + 2);
    if (!end)
        return -1;
    size_t en = etcd_prefix_end(key, n, end);
    int rc = json_object_set_new(o, "range_end", b64_json(end, en));
    free(end);
    return rc;
}

/* Dumps o compactly (and frees it); NULL on failure. */
static char *finish(json_t *o, int ok)
{
    char *s = ok && o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static json_t *op_json(const etcd_op_t *op)
{
    json_t *inner = json_object(), *o = json_object();
    int ok = inner && o && set_key(inner, op->key, op->kind != ETCD_OP_PUT && op->prefix) == 0;
    if (ok && op->kind == ETCD_OP_PUT) {
        ok = json_object_set_new(inner, "value",
                                 b64_json(op->value ? op->value : "", op->value_len)) == 0;
        if (ok && op->lease)
            ok = json_object_set_new(inner, "lease", int64_json(op->lease)) == 0;
    }
    const char *name = op->kind == ETCD_OP_PUT      ? "request_put"
                       : op->kind == ETCD_OP_DELETE ? "request_delete_range"
                                                    : "request_range";
    if (ok && json_object_set_new(o, name, inner) == 0)
        return o;
    if (!ok)
        json_decref(inner);
    json_decref(o);
    return NULL;
}

static int ops_json(json_t *txn, const char *name, const etcd_op_t *ops, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, op_json(&ops[i])) < 0) {
            json_decref(a);
            return -1;
        }
    return a ? json_object_set_new(txn, name, a) : -1;
}

char *etcd_req_txn(const etcd_cmp_t *cmps, size_t n_cmps, const etcd_op_t *success,
                   size_t n_success, const etcd_op_t *failure, size_t n_failure)
{
    static const char *const targets[] = {"VERSION", "CREATE", "MOD", "LEASE"};
    static const char *const fields[] = {"version", "create_revision", "mod_revision", "lease"};
    static const char *const results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
    json_t *txn = json_object(), *cmp = json_array();
    int ok = txn && cmp;
    for (size_t i = 0; ok && i < n_cmps; i++) {
        const etcd_cmp_t *c = &cmps[i];
        json_t *o = json_object();
        ok = o && (unsigned)c->target < 4 && (unsigned)c->result < 4 &&
             set_key(o, c->key, 0) == 0 &&
             json_object_set_new(o, "target", json_string(targets[c->target])) == 0 &&
             json_object_set_new(o, "result", json_string(results[c->result])) == 0 &&
             json_object_set_new(o, fields[c->target], int64_json(c->value)) == 0;
        if (json_array_append_new(cmp, o) < 0)
            ok = 0;
    }
    if (ok)
        ok = json_object_set_new(txn, "compare", cmp) == 0;
    else
        json_decref(cmp);
    ok = ok && ops_json(txn, "success", success, n_success) == 0 &&
         ops_json(txn, "failure", failure, n_failure) == 0;
    return finish(txn, ok);
}

char *etcd_req_range(const char *key, int prefix)
{
    json_t *o = json_object();
    return finish(o, o && set_key(o, key, prefix) == 0);
}

char *etcd_req_range_prefix(const char *prefix)
{
    return etcd_req_range(prefix, 1);
}

char *etcd_req_put(const char *key, const char *value, size_t value_len, int64_t lease)
{
    json_t *o = json_object();
    int ok = o && set_key(o, key, 0) == 0 &&
             json_object_set_new(o, "value", b64_json(value, value_len)) == 0;
    if (ok && lease)
        ok = json_object_set_new(o, "lease", int64_json(lease)) == 0;
    return finish(o, ok);
}

char *etcd_req_delete(const char *key)
{
    json_t *o = json_object();
    return finish(o, o && set_key(o, key, 0) == 0);
}

char *etcd_req_lease_grant(int64_t ttl)
{
    json_t *o = json_object();
    return finish(o, o && json_object_set_new(o, "TTL", int64_json(ttl)) == 0);
}

char *etcd_req_lease_id(int64_t id)
{
    json_t *o = json_object();
    return finish(o, o && json_object_set_new(o, "ID", int64_json(id)) == 0);
}

char *etcd_req_watch_prefix(const char *prefix, int64_t start_revision)
{
    json_t *cr = json_object(), *o = json_object();
    int ok = cr && o && set_key(cr, prefix, 1) == 0 &&
             json_object_set_new(cr, "start_revision", int64_json(start_revision)) == 0 &&
             json_object_set_new(cr, "prev_kv", json_true()) == 0 &&
             json_object_set_new(cr, "progress_notify", json_true()) == 0;
    if (ok)
        ok = json_object_set_new(o, "create_request", cr) == 0;
    else
        json_decref(cr);
    return finish(o, ok);
}
