/*
 * tests/fuzz/registry/fuzz_instance.c: libFuzzer harness over registry/instance.h (instance
 * keys and the naming-resolver JSON values anyone can write into etcd) and the view table
 * (registry/view_table.h) they fill.
 *
 * 1. The whole input is parsed as a value and as a key. A parsed value formats and parses back
 *    to the same instance (methods "not listed" stay apart from an empty list, labels keep
 *    their order); a parsed key formats back to the same bytes.
 * 2. The input is then read as a sequence of table operations (put, delete, mark, sweep, clear,
 *    build routes); keys and values are either built from a few input bytes (so that the same
 *    keys recur and most values are well-formed, in every record form: meshd's sibling
 *    "meshd" object, meshd's data inside "Metadata", and no meshd data as other tools write
 *    it) or taken raw from the input. A small model
 *    kept by the harness says which keys the table must hold, valid or not, at which
 *    mod_revision; after every operation the table must agree with it and with its own
 *    counters (entries, valid entries, bytes, buckets), and routes built from it must hold
 *    every valid instance; an instance that does not list its methods is routed any method.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/instance.h"
#include "registry/route_table.h"
#include "registry/view_table.h"

#define PREFIX    "meshd/services"
#define MAX_KEY   96
#define MAX_MODEL 128
#define MAX_OPS   512
#define MAX_VALUE 512

/* ---- input reader ---- */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
} rd_t;

static uint8_t u8(rd_t *r)
{
    return r->pos < r->n ? r->p[r->pos++] : 0;
}

/* Up to max raw bytes, as many as the next byte says. */
static size_t raw(rd_t *r, char *out, size_t max)
{
    size_t n = u8(r) % (max + 1);
    if (n > r->n - r->pos)
        n = r->n - r->pos;
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return n;
}

/* ---- part 1: values and keys on their own ---- */

static uint32_t norm_weight(uint32_t w)
{
    return w ? w : 1; /* 0 and 1 mean the same everywhere (routes, snapshots) */
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_value(const char *val, size_t len)
{
    reg_value_t v;
    reg_value_status_t st = reg_value_parse(val, len, &v);
    if (st != REG_VALUE_OK && st != REG_VALUE_DELETE && st != REG_VALUE_INVALID)
        abort();
    if (st != REG_VALUE_OK)
        return;
    const reg_instance_t *in = &v.inst;
    if (!in->addr || !in->addr[0] || strchr(in->addr, '/') || in->weight > REG_MAX_WEIGHT ||
        in->n_methods > REG_MAX_METHODS || (in->n_methods && !in->methods) ||
        (in->n_labels && !in->labels) || v.form > REG_VALUE_FORM_METADATA ||
        (v.form == REG_VALUE_FORM_PLAIN && (in->methods || in->n_labels || in->node)))
        abort();
    for (size_t i = 0; i < in->n_methods; i++)
        if (!in->methods[i] || !in->methods[i][0])
            abort();
    for (size_t i = 0; i < in->n_labels; i++)
        if (!in->labels[i].key || !in->labels[i].key[0] || !in->labels[i].value)
            abort();
    char *s = reg_value_format(in);
    if (s) {
        reg_value_t w;
        if (reg_value_parse(s, strlen(s), &w) != REG_VALUE_OK || w.form != REG_VALUE_FORM_MESHD)
            abort();
        const reg_instance_t *b = &w.inst;
        if (strcmp(in->addr, b->addr) != 0 || !same_str(in->node, b->node) ||
            !same_str(in->zone, b->zone) || !same_str(in->version, b->version) ||
            !same_str(in->schema, b->schema) || norm_weight(in->weight) != norm_weight(b->weight) ||
            !in->methods != !b->methods || in->n_methods != b->n_methods ||
            in->n_labels != b->n_labels)
            abort();
        for (size_t i = 0; i < in->n_methods; i++)
            if (strcmp(in->methods[i], b->methods[i]) != 0)
                abort();
        for (size_t i = 0; i < in->n_labels; i++)
            if (strcmp(in->labels[i].key, b->labels[i].key) != 0 ||
                strcmp(in->labels[i].value, b->labels[i].value) != 0)
                abort();
        if (!strstr(s, "\"Metadata\":null,\"meshd\":{")) /* what grpc-go's resolver can read */
            abort();
        reg_value_release(&w);
        free(s);
    }
    reg_value_release(&v);
}

static void check_key(const char *key, size_t len, const char *prefix)
{
    reg_key_t k;
    if (reg_key_parse(key, len, prefix, strlen(prefix), &k) != 0)
        return;
    if (k.service < key || k.service + k.service_len > key + len || k.addr < key ||
        k.addr + k.addr_len > key + len || !k.service_len || !k.addr_len ||
        memchr(k.service, '/', k.service_len) || memchr(k.addr, '/', k.addr_len))
        abort();
    char svc[MAX_KEY * 4], addr[MAX_KEY * 4], buf[MAX_KEY * 8];
    if (k.service_len >= sizeof(svc) || k.addr_len >= sizeof(addr))
        return;
    memcpy(svc, k.service, k.service_len);
    svc[k.service_len] = '\0';
    memcpy(addr, k.addr, k.addr_len);
    addr[k.addr_len] = '\0';
    int n = reg_key_format(buf, sizeof(buf), prefix, svc, addr);
    if (n < 0 || (size_t)n != len || memcmp(buf, key, len) != 0)
        abort();
}

/* ---- part 2: the table against a model ---- */

typedef struct {
    char key[MAX_KEY];
    size_t klen;
    int valid;
    int64_t mod_revision;
    uint32_t gen;
} model_entry_t;

typedef struct {
    model_entry_t e[MAX_MODEL];
    size_t n;
    uint32_t gen;
} model_t;

static model_entry_t *model_find(model_t *m, const char *key, size_t klen)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].klen == klen && memcmp(m->e[i].key, key, klen) == 0)
            return &m->e[i];
    return NULL;
}

static void model_remove(model_t *m, model_entry_t *e)
{
    *e = m->e[--m->n];
}

static size_t model_valid(const model_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += (size_t)m->e[i].valid;
    return n;
}

/* A key built from one selector byte (mostly well-formed, few distinct) or raw bytes. */
static size_t make_key(rd_t *r, char *out)
{
    uint8_t sel = u8(r);
    static const char *const odd[] = {
        PREFIX "/svc0",    /* no addr */
        "other/svc0/h0:1", /* outside the prefix */
        PREFIX "x/svc0/h0:1",
        PREFIX "/svc0/h0:1/x", /* '/' in the addr */
        PREFIX "//h0:1",       /* empty service */
        PREFIX "/svc0/",       /* empty addr */
        PREFIX "/svc 0/h0:1",  /* space */
        PREFIX,
    };
    if (sel < 0xc0)
        return (size_t)snprintf(out, MAX_KEY, PREFIX "/demo.v%u.Svc/10.0.0.%u:%u", sel & 3,
                                (sel >> 2) & 7, 5000u + ((sel >> 5) & 1));
    if (sel < 0xe0) {
        const char *s = odd[sel & 7];
        memcpy(out, s, strlen(s));
        return strlen(s);
    }
    /* Raw: the prefix and '/' then arbitrary bytes (NULs included), or everything raw. */
    if (sel & 1) {
        size_t pl = strlen(PREFIX "/");
        memcpy(out, PREFIX "/", pl);
        return pl + raw(r, out + pl, MAX_KEY - pl);
    }
    return raw(r, out, MAX_KEY);
}

/* A value built from a few bytes (mostly well-formed, in every record form) or raw bytes. */
static size_t make_value(rd_t *r, char *out)
{
    uint8_t sel = u8(r);
    if ((sel & 3) == 0)
        return raw(r, out, MAX_VALUE - 1);
    uint8_t a = u8(r), b = u8(r), c = u8(r), d = u8(r);
    static const char *const ops[] = {"", "\"Op\":0,", "\"Op\":1,", "\"Op\":2,"};
    static const char *const meths[] = {
        "",
        ",\"methods\":[]",
        ",\"methods\":[\"Get\"]",
        ",\"methods\":[\"Get\",\"Put\",\"Get\"]",
        ",\"methods\":[\"bad name\"]",
        ",\"methods\":\"Get\"",
        ",\"methods\":[1]",
        ",\"methods\":[\"\"]",
    };
    static const char *const weights[] = {
        "",
        ",\"weight\":0",
        ",\"weight\":3",
        ",\"weight\":-1",
        ",\"weight\":1000001",
        ",\"weight\":\"2\"",
        ",\"weight\":1000000",
        ",\"weight\":1.5",
    };
    static const char *const labels[] = {
        "",
        ",\"labels\":{}",
        ",\"labels\":{\"team\":\"core\"}",
        ",\"labels\":{\"b\":\"2\",\"a\":\"\",\"x.io/c\":\"3\"}",
        ",\"labels\":{\"a\":1}",
        ",\"labels\":[\"a=b\"]",
        ",\"labels\":{\"\":\"x\"}",
        ",\"schema\":\"sha256:01\"",
    };
    /* Where the data goes: the sibling object (what meshd writes now), inside Metadata (what it
       wrote before), both (the sibling wins), or nowhere (other tools: no Metadata, {}, null, a
       string, "meshd":null). */
    static const char *const forms[] = {
        "\"Metadata\":null,\"meshd\":%s",
        "\"Metadata\":%s",
        "\"Metadata\":{\"x\":1},\"meshd\":%s",
        "\"Metadata\":%s,\"meshd\":{}",
        "\"Metadata\":null",
        "\"Metadata\":{}",
        "\"Metadata\":\"opaque\"",
        "\"meshd\":null",
    };
    char md[320];
    snprintf(md, sizeof(md), "{\"node\":\"n%u\",\"zone\":\"%s\"%s%s,\"version\":\"v%u\"%s}",
             (a >> 2) & 3, (a & 0x10) ? "" : "z1", meths[(b >> 3) & 7], weights[(c >> 1) & 7],
             (c >> 4) & 3, labels[d & 7]);
    char data[384];
    const char *form = forms[(d >> 3) & 7];
    if (strstr(form, "%s"))
        snprintf(data, sizeof(data), form, md);
    else
        snprintf(data, sizeof(data), "%s", form);
    int n = snprintf(out, MAX_VALUE, "{%s\"Addr\":\"10.0.%u.%u:%u\"%s%s}", ops[(sel >> 2) & 3],
                     a & 3, b & 7, 5000u + (c & 1), (d & 0xc0) == 0xc0 ? "" : ",",
                     (d & 0xc0) == 0xc0 ? "" : data);
    return n < 0 ? 0 : (size_t)n;
}

static void check_table(const reg_table_t *t, const model_t *m)
{
    if (t->n_entries != m->n || t->n_valid != model_valid(m))
        abort();
    size_t n = 0, nv = 0, bytes = 0;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (const reg_entry_t *e = t->buckets[i]; e; e = e->next) {
            if ((e->hash & (t->n_buckets - 1)) != i)
                abort();
            n++;
            bytes += e->alloc_size;
            if (!e->key || !e->service || !e->addr || !e->node || !e->zone || !e->version)
                abort();
            if (e->valid) {
                nv++;
                if (!e->service[0] || !e->addr[0] || strchr(e->service, '/') ||
                    (!e->methods && e->n_methods))
                    abort();
                for (size_t j = 0; j < e->n_methods; j++)
                    if (!e->methods[j] || !e->methods[j][0])
                        abort();
            }
        }
    if (n != t->n_entries || nv != t->n_valid || bytes != t->bytes)
        abort();
    for (size_t i = 0; i < m->n; i++) {
        const model_entry_t *me = &m->e[i];
        const reg_entry_t *e = reg_table_find(t, me->key, me->klen);
        if (!e || e->valid != me->valid || e->mod_revision != me->mod_revision ||
            memcmp(e->key, me->key, me->klen) != 0 || e->key[me->klen] != '\0')
            abort();
    }
    if (reg_table_memory(t) < t->bytes)
        abort();
}

static void check_routes(const reg_table_t *t)
{
    size_t cap = t->n_valid + 1;
    const reg_entry_t **v = calloc(cap, sizeof(*v));
    if (!v)
        return;
    size_t n = reg_table_sorted(t, v, cap);
    if (n != t->n_valid)
        abort();
    for (size_t i = 1; i < n; i++) {
        int c = strcmp(v[i - 1]->service, v[i]->service);
        if (c > 0 || (c == 0 && strcmp(v[i - 1]->addr, v[i]->addr) > 0))
            abort();
    }
    mesh_routes_t *rt = reg_table_build_routes(t);
    if (rt) {
        size_t total = 0;
        for (size_t i = 0; i < mesh_routes_count(rt); i++) {
            const mesh_route_service_t *s = mesh_routes_at(rt, i);
            total += s->n_instances;
            if (mesh_routes_index_of(rt, s) >= mesh_routes_index_bound() ||
                mesh_route_svc_get(mesh_routes_find(rt, s->name)) != s)
                abort();
        }
        if (total > n)
            abort();
        for (size_t i = 0; i < n; i++) {
            const mesh_route_service_t *s = mesh_routes_service(rt, v[i]->service);
            if (!s)
                abort();
            int found = 0;
            for (size_t j = 0; j < s->n_instances; j++)
                found |= strcmp(s->instances[j].addr, v[i]->addr) == 0;
            if (!found)
                abort();
            /* A listed method is routed to its service; an instance that does not list its
               methods is routed any method ("Zz" is in no generated list), and serves it.
               Entries of one service with the same Addr are one instance: it lists methods
               when any of them does. */
            int unlisted = 1;
            for (size_t j = i; j > 0 && strcmp(v[j - 1]->service, v[i]->service) == 0 &&
                               strcmp(v[j - 1]->addr, v[i]->addr) == 0;
                 j--)
                unlisted &= !v[j - 1]->methods;
            for (size_t j = i; j < n && strcmp(v[j]->service, v[i]->service) == 0 &&
                               strcmp(v[j]->addr, v[i]->addr) == 0;
                 j++)
                unlisted &= !v[j]->methods;
            const char *m = v[i]->n_methods ? v[i]->methods[0] : "Zz";
            char path[256];
            int pl = snprintf(path, sizeof(path), "/%s/%s", v[i]->service, m);
            const mesh_route_service_t *got = NULL;
            if (pl > 0 && (size_t)pl < sizeof(path)) {
                mesh_route_status_t st = mesh_routes_lookup(rt, path, (size_t)pl, &got);
                if ((v[i]->n_methods || unlisted) && (st != MESH_ROUTE_FOUND || got != s))
                    abort();
                if (unlisted && s->methods)
                    abort(); /* the service's method set must be unknown too */
                for (size_t j = 0; j < s->n_instances; j++)
                    if (strcmp(s->instances[j].addr, v[i]->addr) == 0 && unlisted &&
                        !mesh_route_instance_serves(&s->instances[j], m, strlen(m)))
                        abort();
            }
        }
        mesh_routes_unref(rt);
    }
    free(v);
}

static void op_put(reg_table_t *t, model_t *m, rd_t *r)
{
    char key[MAX_KEY], val[MAX_VALUE];
    size_t klen = make_key(r, key);
    size_t vlen = make_value(r, val);
    int64_t mod = u8(r) & 15, lease = u8(r);
    int rc = reg_table_put(t, key, klen, val, vlen, mod, lease);
    if (rc < 0)
        return; /* out of memory: nothing to compare against */
    size_t pl = strlen(PREFIX);
    if (klen < pl + 1 || memcmp(key, PREFIX, pl) != 0 || key[pl] != '/') {
        if (rc != REG_TABLE_UNCHANGED || model_find(m, key, klen))
            abort();
        return;
    }
    model_entry_t *me = model_find(m, key, klen);
    int was_valid = me && me->valid;
    if (me && mod != 0 && me->mod_revision == mod) {
        me->gen = m->gen;
        if (rc != REG_TABLE_UNCHANGED)
            abort();
        return;
    }
    reg_key_t k;
    reg_value_t v;
    int key_ok = reg_key_parse(key, klen, PREFIX, pl, &k) == 0;
    reg_value_status_t st = key_ok ? reg_value_parse(val, vlen, &v) : REG_VALUE_INVALID;
    if (st == REG_VALUE_OK)
        reg_value_release(&v);
    if (st == REG_VALUE_DELETE) {
        if (rc != (was_valid ? REG_TABLE_CHANGED : REG_TABLE_UNCHANGED))
            abort();
        if (me)
            model_remove(m, me);
        return;
    }
    int valid = st == REG_VALUE_OK;
    if (rc == REG_TABLE_CHANGED && !valid && !was_valid)
        abort();
    if (rc == REG_TABLE_UNCHANGED && valid && !was_valid)
        abort();
    if (!me) {
        if (m->n == MAX_MODEL)
            abort(); /* cannot happen: make_key bounds the number of distinct keys per run */
        me = &m->e[m->n++];
        memcpy(me->key, key, klen);
        me->klen = klen;
    }
    me->valid = valid;
    me->mod_revision = mod;
    me->gen = m->gen;
}

static void op_delete(reg_table_t *t, model_t *m, rd_t *r)
{
    char key[MAX_KEY];
    size_t klen = make_key(r, key);
    model_entry_t *me = model_find(m, key, klen);
    int rc = reg_table_delete(t, key, klen);
    if (rc != (me && me->valid ? REG_TABLE_CHANGED : REG_TABLE_UNCHANGED))
        abort();
    if (me)
        model_remove(m, me);
    if (reg_table_find(t, key, klen))
        abort();
}

static void op_sweep(reg_table_t *t, model_t *m)
{
    size_t removed = 0;
    for (size_t i = 0; i < m->n;) {
        if (m->e[i].gen != m->gen) {
            removed += (size_t)m->e[i].valid;
            model_remove(m, &m->e[i]);
        } else {
            i++;
        }
    }
    if (reg_table_sweep(t) != removed)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        mesh_log_init("fuzz", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT); /* warnings are expected */
    }
    const char *s = (const char *)data;
    check_value(s, size);
    check_key(s, size, PREFIX);
    check_key(s, size, PREFIX "/");
    check_key(s, size, "");

    reg_table_t t;
    if (reg_table_init(&t, PREFIX "/") != 0)
        return 0;
    model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        reg_table_destroy(&t);
        return 0;
    }
    rd_t r = {data, size, 0};
    /* Raw keys could outnumber the model's slots: allow only as many puts as it holds. */
    size_t puts = 0;
    for (size_t i = 0; i < MAX_OPS && r.pos < r.n; i++) {
        switch (u8(&r) % 8) {
        case 0:
        case 1:
        case 2:
            if (puts++ < MAX_MODEL)
                op_put(&t, m, &r);
            break;
        case 3:
            op_delete(&t, m, &r);
            break;
        case 4:
            reg_table_mark(&t);
            m->gen++;
            break;
        case 5:
            op_sweep(&t, m);
            break;
        case 6:
            check_routes(&t);
            break;
        case 7:
            if (u8(&r) == 0xff) {
                reg_table_clear(&t);
                m->n = 0;
            }
            break;
        }
        check_table(&t, m);
    }
    check_routes(&t);
    reg_table_destroy(&t);
    free(m);
    return 0;
}
