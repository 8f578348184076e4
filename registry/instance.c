/*
 * registry/instance.c: parsing and formatting of instance keys and values (see instance.h).
 */
#include "registry/instance.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '/' || c == 0x7f)
            return 0;
    }
    return 1;
}

int reg_key_parse(const char *key, size_t len, const char *prefix, size_t prefix_len,
                  reg_key_t *out)
{
    while (prefix_len > 0 && prefix[prefix_len - 1] == '/')
        prefix_len--;
    if (len < prefix_len + 4 || memcmp(key, prefix, prefix_len) != 0 || key[prefix_len] != '/')
        return -1;
    const char *s = key + prefix_len + 1, *end = key + len;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    if (!slash)
        return -1;
    out->service = s;
    out->service_len = (size_t)(slash - s);
    out->addr = slash + 1;
    out->addr_len = (size_t)(end - slash - 1);
    if (!name_ok(out->service, out->service_len) || !name_ok(out->addr, out->addr_len))
        return -1;
    return 0;
}

int reg_key_format(char *buf, size_t cap, const char *prefix, const char *service, const char *addr)
{
    size_t pl = strlen(prefix);
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    int n = snprintf(buf, cap, "%.*s/%s/%s", (int)pl, prefix, service, addr);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static const char *opt_string(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/*
 * Reads meshd's data object md into out->inst. The method and label arrays share one
 * allocation (out->arrays). Returns 0, or -1 when md breaks the rules (see instance.h) or
 * memory runs out.
 */
static int parse_meshd(const json_t *md, reg_value_t *out)
{
    reg_instance_t *in = &out->inst;
    in->node = opt_string(md, "node");
    in->zone = opt_string(md, "zone");
    in->version = opt_string(md, "version");
    in->schema = opt_string(md, "schema");
    const char *tls = opt_string(md, "tls");
    in->mesh_tls = tls && strcmp(tls, "mtls") == 0;
    const json_t *w = json_object_get(md, "weight");
    if (w) {
        if (!json_is_integer(w) || json_integer_value(w) < 0 ||
            json_integer_value(w) > REG_MAX_WEIGHT)
            return -1;
        in->weight = (uint32_t)json_integer_value(w);
    }
    const json_t *ms = json_object_get(md, "methods");
    if (ms && (!json_is_array(ms) || json_array_size(ms) > REG_MAX_METHODS))
        return -1;
    const json_t *ls = json_object_get(md, "labels");
    if (ls && !json_is_object(ls))
        return -1;
    size_t n_methods = ms ? json_array_size(ms) : 0, n_labels = ls ? json_object_size(ls) : 0;
    if (!ms && !n_labels)
        return 0;
    /* One block: the method pointers (at least one, so that an empty list is not NULL), then
       the labels. */
    size_t mbytes = (n_methods ? n_methods : 1) * sizeof(char *);
    mbytes = (mbytes + _Alignof(reg_label_t) - 1) / _Alignof(reg_label_t) * _Alignof(reg_label_t);
    char *block = malloc(mbytes + n_labels * sizeof(reg_label_t));
    if (!block)
        return -1;
    out->arrays = block;
    if (ms) {
        const char **names = (const char **)(void *)block;
        size_t i;
        const json_t *m;
        json_array_foreach(ms, i, m)
        {
            if (!json_is_string(m) || !name_ok(json_string_value(m), json_string_length(m)))
                return -1;
            names[i] = json_string_value(m);
        }
        in->methods = names;
        in->n_methods = n_methods;
    }
    if (n_labels) {
        reg_label_t *labels = (reg_label_t *)(void *)(block + mbytes);
        size_t i = 0;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)ls, k, v)
        {
            if (!*k || !json_is_string(v))
                return -1;
            labels[i].key = k;
            labels[i].value = json_string_value(v);
            i++;
        }
        in->labels = labels;
        in->n_labels = n_labels;
    }
    return 0;
}

reg_value_status_t reg_value_parse(const char *val, size_t len, reg_value_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return REG_VALUE_INVALID;
    if (!json_is_object(root))
        goto invalid;
    const json_t *op = json_object_get(root, "Op");
    if (op && !json_is_integer(op))
        goto invalid;
    if (op && json_integer_value(op) == 1) {
        json_decref(root);
        return REG_VALUE_DELETE;
    }
    if (op && json_integer_value(op) != 0)
        goto invalid;
    const json_t *addr = json_object_get(root, "Addr");
    if (!json_is_string(addr) || !name_ok(json_string_value(addr), json_string_length(addr)))
        goto invalid;
    out->inst.addr = json_string_value(addr);
    out->inst.weight = 1;
    /* meshd's data: the sibling object when the record has one (null: none), else an object in
       Metadata (meshd's former format); any other Metadata belongs to another tool. */
    const json_t *md = json_object_get(root, "meshd");
    if (md) {
        if (!json_is_object(md) && !json_is_null(md))
            goto invalid;
        out->form = json_is_object(md) ? REG_VALUE_FORM_MESHD : REG_VALUE_FORM_PLAIN;
    } else {
        md = json_object_get(root, "Metadata");
        out->form = json_is_object(md) ? REG_VALUE_FORM_METADATA : REG_VALUE_FORM_PLAIN;
    }
    if (out->form != REG_VALUE_FORM_PLAIN && parse_meshd(md, out) < 0)
        goto invalid;
    out->json = root;
    return REG_VALUE_OK;
invalid:
    free(out->arrays);
    json_decref(root);
    memset(out, 0, sizeof(*out));
    return REG_VALUE_INVALID;
}

void reg_value_release(reg_value_t *v)
{
    json_decref((json_t *)v->json);
    free(v->arrays);
    v->json = NULL;
    v->arrays = NULL;
}

/* Sets o[name] to a new value; returns 0, or -1 when the value could not be built or set. */
static int set_new(json_t *o, const char *name, json_t *v)
{
    return v ? json_object_set_new(o, name, v) : -1;
}

char *reg_value_format(const reg_instance_t *inst)
{
    json_t *root = json_object(), *md = json_object();
    int bad = !root || !md;
    bad |= set_new(root, "Op", json_integer(0)) < 0;
    bad |= set_new(root, "Addr", json_string(inst->addr ? inst->addr : "")) < 0;
    bad |= set_new(root, "Metadata", json_null()) < 0;
    if (inst->node)
        bad |= set_new(md, "node", json_string(inst->node)) < 0;
    if (inst->methods) {
        json_t *ms = json_array();
        for (size_t i = 0; ms && i < inst->n_methods; i++)
            bad |= json_array_append_new(ms, json_string(inst->methods[i])) < 0;
        bad |= set_new(md, "methods", ms) < 0;
    }
    if (inst->zone)
        bad |= set_new(md, "zone", json_string(inst->zone)) < 0;
    bad |= set_new(md, "weight", json_integer(inst->weight ? inst->weight : 1)) < 0;
    if (inst->version)
        bad |= set_new(md, "version", json_string(inst->version)) < 0;
    if (inst->n_labels) {
        json_t *ls = json_object();
        for (size_t i = 0; ls && i < inst->n_labels; i++)
            bad |= set_new(ls, inst->labels[i].key, json_string(inst->labels[i].value)) < 0;
        bad |= set_new(md, "labels", ls) < 0;
    }
    if (inst->schema)
        bad |= set_new(md, "schema", json_string(inst->schema)) < 0;
    if (inst->mesh_tls)
        bad |= set_new(md, "tls", json_string("mtls")) < 0;
    if (md) {
        bad |= json_object_set(root, "meshd", md) < 0;
        json_decref(md);
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

int reg_marker_key_format(char *buf, size_t cap, const char *prefix, const char *service,
                          const char *addr)
{
    size_t pl = strlen(prefix);
    while (pl && prefix[pl - 1] == '/')
        pl--;
    size_t root = pl;
    while (root && prefix[root - 1] != '/')
        root--;
    int n = root ? snprintf(buf, cap, "%.*sevicted/%s/%s", (int)root, prefix, service, addr)
                 : snprintf(buf, cap, "evicted/%s/%s", service, addr);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int64_t reg_marker_lease(const char *val, size_t len)
{
    json_t *root = json_loadb(val, len, 0, NULL);
    const json_t *l = json_object_get(root, "lease");
    int64_t lease = 0;
    if (json_is_integer(l))
        lease = (int64_t)json_integer_value(l);
    else if (json_is_string(l))
        lease = strtoll(json_string_value(l), NULL, 10);
    json_decref(root);
    return lease;
}
