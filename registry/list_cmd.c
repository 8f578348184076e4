/*
 * registry/list_cmd.c: `meshd registry list` (see list_cmd.h).
 */
#include "registry/list_cmd.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_codec.h"

typedef struct list_ctx {
    reg_table_t table;
    etcd_decoder_t dec;
    int64_t revision;
    int err;
    int done;
    char message[256];
} list_ctx_t;

static int on_kv(void *ud, const etcd_kv_t *kv)
{
    list_ctx_t *l = ud;
    reg_table_put(&l->table, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision,
                  kv->lease);
    return 0;
}

static void on_range(void *ud, int err, const char *body, size_t len)
{
    list_ctx_t *l = ud;
    l->done = 1;
    l->err = err;
    if (err == ETCD_OK) {
        etcd_range_info_t info;
        if (etcd_decode_range(&l->dec, body, len, &info, on_kv, l) < 0) {
            l->err = ETCD_ERR_SERVER;
            snprintf(l->message, sizeof(l->message), "malformed range answer");
        }
        l->revision = info.revision;
    } else {
        etcd_error_t e = {0, ""};
        if (err == ETCD_ERR_SERVER)
            etcd_decode_error(body, len, &e);
        snprintf(l->message, sizeof(l->message), "%s%s%s", etcd_strerror(err),
                 e.message[0] ? ": " : "", e.message);
    }
}

/* Methods of a service: the sorted union over its instances, comma-separated. */
static void service_methods(const reg_entry_t **es, size_t n, char *buf, size_t cap)
{
    const char *names[256];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < es[i]->n_methods; m++) {
            size_t j = 0;
            while (j < k && strcmp(names[j], es[i]->methods[m]) != 0)
                j++;
            if (j == k && k < 256)
                names[k++] = es[i]->methods[m];
        }
    for (size_t i = 1; i < k; i++) /* insertion sort: few names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "", names[i]);
    if (k == 0)
        snprintf(buf, cap, "-");
}

int reg_list_print(const reg_table_t *t, int64_t revision, int json, FILE *out)
{
    size_t n = t->n_valid;
    const reg_entry_t **es = calloc(n ? n : 1, sizeof(*es));
    if (!es)
        return -1;
    n = reg_table_sorted(t, es, n);
    char methods[4096];
    if (json) {
        json_t *root = json_object(), *svcs = json_array();
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(es[j]->service, es[i]->service) == 0)
                j++;
            json_t *svc = json_object(), *ms = json_array(), *insts = json_array();
            service_methods(es + i, j - i, methods, sizeof(methods));
            for (char *save = NULL, *m = strtok_r(methods, ",", &save); m;
                 m = strtok_r(NULL, ",", &save))
                if (strcmp(m, "-") != 0)
                    json_array_append_new(ms, json_string(m));
            for (size_t k = i; k < j; k++) {
                json_t *im = json_array();
                for (size_t m = 0; m < es[k]->n_methods; m++)
                    json_array_append_new(im, json_string(es[k]->methods[m]));
                json_array_append_new(insts,
                                      json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:o}", "key", es[k]->key,
                                                "addr", es[k]->addr, "node", es[k]->node, "zone",
                                                es[k]->zone, "weight", (json_int_t)es[k]->weight,
                                                "version", es[k]->version, "methods", im));
            }
            json_object_set_new(svc, "name", json_string(es[i]->service));
            json_object_set_new(svc, "methods", ms);
            json_object_set_new(svc, "instances", insts);
            json_array_append_new(svcs, svc);
            i = j;
        }
        json_object_set_new(root, "prefix", json_string(t->prefix));
        json_object_set_new(root, "revision", json_integer(revision));
        json_object_set_new(root, "services", svcs);
        json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(root);
    } else {
        fprintf(out, "%-32s %-24s %-8s %-12s %-8s %-6s %s\n", "SERVICE/INSTANCE", "METHODS", "",
                "NODE", "ZONE", "WEIGHT", "VERSION");
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(es[j]->service, es[i]->service) == 0)
                j++;
            service_methods(es + i, j - i, methods, sizeof(methods));
            fprintf(out, "%s  (%zu instance%s)  methods: %s\n", es[i]->service, j - i,
                    j - i == 1 ? "" : "s", methods);
            for (size_t k = i; k < j; k++)
                fprintf(out, "  %-30s %-24s %-8s %-12s %-8s %-6u %s\n", es[k]->addr, "", "",
                        *es[k]->node ? es[k]->node : "-", *es[k]->zone ? es[k]->zone : "-",
                        es[k]->weight, *es[k]->version ? es[k]->version : "-");
            i = j;
        }
        fprintf(out, "%zu instances, revision %lld\n", n, (long long)revision);
    }
    free(es);
    return 0;
}

int reg_list_run(const etcd_client_cfg_t *cfg, const char *prefix, int json, FILE *out, FILE *err)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return -1;
    list_ctx_t l;
    memset(&l, 0, sizeof(l));
    const char *p = prefix ? prefix : REG_DEFAULT_PREFIX;
    char *range_prefix = NULL;
    int rc = -1;
    if (asprintf(&range_prefix, "%s%s", p, p[0] && p[strlen(p) - 1] == '/' ? "" : "/") < 0)
        range_prefix = NULL;
    if (!range_prefix || reg_table_init(&l.table, p) < 0) {
        free(range_prefix);
        uv_loop_close(&loop);
        return -1;
    }
    etcd_decoder_init(&l.dec);
    etcd_client_t *c = etcd_client_new(&loop, cfg);
    char *body = etcd_req_range_prefix(range_prefix);
    if (c && body && etcd_client_post(c, "/v3/kv/range", body, on_range, &l)) {
        while (!l.done && uv_run(&loop, UV_RUN_ONCE))
            ;
        if (l.done && l.err == ETCD_OK)
            rc = reg_list_print(&l.table, l.revision, json, out);
        else if (err)
            fprintf(err, "meshd registry list: %s (%s)\n", l.message[0] ? l.message : "failed",
                    cfg->endpoints);
    } else if (err) {
        fprintf(err, "meshd registry list: bad etcd settings (%s)\n",
                cfg->endpoints ? cfg->endpoints : "none");
    }
    free(body);
    etcd_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    reg_table_destroy(&l.table);
    etcd_decoder_destroy(&l.dec);
    free(range_prefix);
    return rc;
}
