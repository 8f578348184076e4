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

reg_value_status_t reg_value_parse(const char *val, size_t len, reg_value_t *out)
{
    memset(&out->inst, 0, sizeof(out->inst));
    out->json = NULL;
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
    const json_t *md = json_object_get(root, "Metadata");
    if (json_is_object(md)) {
        out->inst.node = opt_string(md, "node");
        out->inst.zone = opt_string(md, "zone");
        out->inst.version = opt_string(md, "version");
        const json_t *w = json_object_get(md, "weight");
        if (w) {
            if (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 1000000)
                goto invalid;
            out->inst.weight = (uint32_t)json_integer_value(w);
        }
        const json_t *ms = json_object_get(md, "methods");
        if (ms) {
            if (!json_is_array(ms))
                goto invalid;
            size_t i, n = 0;
            const json_t *m;
            json_array_foreach(ms, i, m)
            {
                if (!json_is_string(m) || !name_ok(json_string_value(m), json_string_length(m)))
                    goto invalid;
                if (n < sizeof(out->methods_buf) / sizeof(out->methods_buf[0]))
                    out->methods_buf[n++] = json_string_value(m);
            }
            out->inst.methods = out->methods_buf;
            out->inst.n_methods = n;
        }
    } else if (md && !json_is_null(md)) {
        /* The resolver treats Metadata as opaque; a non-object is no meshd data, not an error. */
    }
    out->json = root;
    return REG_VALUE_OK;
invalid:
    json_decref(root);
    return REG_VALUE_INVALID;
}

void reg_value_release(reg_value_t *v)
{
    json_decref((json_t *)v->json);
    v->json = NULL;
}

char *reg_value_format(const reg_instance_t *inst)
{
    json_t *md = json_object();
    json_t *root = json_object();
    json_t *ms = json_array();
    if (!md || !root || !ms)
        goto fail;
    if (inst->node)
        json_object_set_new(md, "node", json_string(inst->node));
    for (size_t i = 0; i < inst->n_methods; i++)
        json_array_append_new(ms, json_string(inst->methods[i]));
    json_object_set_new(md, "methods", ms);
    ms = NULL;
    if (inst->zone)
        json_object_set_new(md, "zone", json_string(inst->zone));
    json_object_set_new(md, "weight", json_integer(inst->weight ? inst->weight : 1));
    if (inst->version)
        json_object_set_new(md, "version", json_string(inst->version));
    json_object_set_new(root, "Op", json_integer(0));
    json_object_set_new(root, "Addr", json_string(inst->addr ? inst->addr : ""));
    json_object_set_new(root, "Metadata", md);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
fail:
    json_decref(md);
    json_decref(root);
    json_decref(ms);
    return NULL;
}
