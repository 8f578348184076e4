/*
 * registry/list_cmd.c: `meshd registry list` (see list_cmd.h).
 *
 * One range of the prefix; every record is parsed with registry/instance.h (all three record
 * forms) and kept whole, labels included, then printed sorted by (service, address). Records
 * that are not instances are reported on the error stream and left out.
 */
#include "registry/list_cmd.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_codec.h"
#include "registry/instance.h"

/* One instance record of the range. */
typedef struct list_rec {
    char *key;
    char *service;
    reg_value_t v;
} list_rec_t;

typedef struct list_ctx {
    const char *prefix;
    list_rec_t *recs;
    size_t n, cap;
    FILE *err;
    int oom;
    etcd_decoder_t dec;
    int64_t revision;
    int status;
    int done;
    char message[256];
} list_ctx_t;

static void skipped(list_ctx_t *l, const etcd_kv_t *kv, const char *why)
{
    if (l->err)
        fprintf(l->err, "meshd registry list: skipping %.*s: %s\n", (int)kv->key_len, kv->key, why);
}

static int on_kv(void *ud, const etcd_kv_t *kv)
{
    list_ctx_t *l = ud;
    reg_key_t k;
    if (reg_key_parse(kv->key, kv->key_len, l->prefix, strlen(l->prefix), &k) != 0) {
        skipped(l, kv, "not <prefix>/<package.Service>/<host:port>");
        return 0;
    }
    reg_value_t v;
    reg_value_status_t st = reg_value_parse(kv->value, kv->value_len, &v);
    if (st == REG_VALUE_DELETE) /* a naming-resolver Delete record: no instance */
        return 0;
    if (st != REG_VALUE_OK) {
        skipped(l, kv, "malformed value (not a naming-resolver instance record)");
        return 0;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        list_rec_t *nr = realloc(l->recs, nc * sizeof(*nr));
        if (!nr) {
            reg_value_release(&v);
            l->oom = 1;
            return 1;
        }
        l->recs = nr;
        l->cap = nc;
    }
    list_rec_t *r = &l->recs[l->n];
    r->key = strndup(kv->key, kv->key_len);
    r->service = strndup(k.service, k.service_len);
    r->v = v;
    l->n++;
    if (!r->key || !r->service) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

static void on_range(void *ud, int err, const char *body, size_t len)
{
    list_ctx_t *l = ud;
    l->done = 1;
    l->status = err;
    if (err == ETCD_OK) {
        etcd_range_info_t info = {0};
        if (etcd_decode_range(&l->dec, body, len, &info, on_kv, l) < 0 && !l->oom) {
            l->status = ETCD_ERR_SERVER;
            snprintf(l->message, sizeof(l->message), "malformed range answer");
        }
        l->revision = info.revision;
        if (l->oom) {
            l->status = ETCD_ERR_SERVER;
            snprintf(l->message, sizeof(l->message), "out of memory");
        }
    } else {
        etcd_error_t e = {0, ""};
        if (err == ETCD_ERR_SERVER)
            etcd_decode_error(body, len, &e);
        snprintf(l->message, sizeof(l->message), "%s%s%s", etcd_strerror(err),
                 e.message[0] ? ": " : "", e.message);
    }
}

static int cmp_rec(const void *a, const void *b)
{
    const list_rec_t *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->v.inst.addr, y->v.inst.addr);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The methods of a service (records rs[0..n)): the sorted union of the names its instances
 * list, in *out (malloc'd, *n_out names, borrowed strings). Returns whether every instance
 * lists its methods (else an instance may serve any), or -1 on out of memory.
 */
static int service_methods(const list_rec_t *rs, size_t n, const char ***out, size_t *n_out)
{
    size_t total = 0;
    int all_listed = 1;
    for (size_t i = 0; i < n; i++) {
        total += rs[i].v.inst.n_methods;
        all_listed &= rs[i].v.inst.methods != NULL;
    }
    const char **names = malloc((total ? total : 1) * sizeof(*names));
    if (!names)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < rs[i].v.inst.n_methods; m++)
            names[k++] = rs[i].v.inst.methods[m];
    qsort(names, k, sizeof(*names), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
            names[u++] = names[i];
    *out = names;
    *n_out = u;
    return all_listed;
}

/* Whether an instance lists every name of its service (names: the union, sorted, unique). */
static int lists_all(const reg_instance_t *in, const char **names, size_t n)
{
    if (!in->methods)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t m = 0;
        while (m < in->n_methods && strcmp(in->methods[m], names[i]) != 0)
            m++;
        if (m == in->n_methods)
            return 0;
    }
    return 1;
}

static void print_names(FILE *out, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? "," : "", names[i]);
    if (n == 0)
        fputs("-", out);
}

static json_t *json_names(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* The record's form: "meshd" (current), "metadata" (meshd's former form, which crashes grpc-go
   clients using etcd's resolver) or "plain" (no meshd data: another tool wrote it). */
static const char *form_name(reg_value_form_t f)
{
    return f == REG_VALUE_FORM_MESHD      ? "meshd"
           : f == REG_VALUE_FORM_METADATA ? "metadata"
                                          : "plain";
}

static json_t *json_instance(const list_rec_t *r)
{
    const reg_instance_t *in = &r->v.inst;
    json_t *labels = json_object();
    for (size_t i = 0; labels && i < in->n_labels; i++)
        json_object_set_new(labels, in->labels[i].key, json_string(in->labels[i].value));
    json_t *methods = in->methods ? json_names(in->methods, in->n_methods) : json_null();
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:o,s:o,s:s}", "key", r->key, "addr", in->addr,
                     "node", in->node ? in->node : "", "zone", in->zone ? in->zone : "", "weight",
                     (json_int_t)in->weight, "version", in->version ? in->version : "", "labels",
                     labels, "methods", methods, "record", form_name(r->v.form));
}

static int print_json(const list_ctx_t *l, FILE *out)
{
    json_t *root = json_object(), *svcs = json_array();
    int bad = !root || !svcs;
    for (size_t i = 0; !bad && i < l->n;) {
        size_t j = i;
        while (j < l->n && strcmp(l->recs[j].service, l->recs[i].service) == 0)
            j++;
        const char **names;
        size_t nn;
        int all_listed = service_methods(l->recs + i, j - i, &names, &nn);
        if (all_listed < 0) {
            bad = 1;
            break;
        }
        json_t *insts = json_array();
        for (size_t k = i; insts && k < j; k++)
            bad |= json_array_append_new(insts, json_instance(&l->recs[k])) < 0;
        /* methods: null when an instance does not list its methods (then any is routed) */
        json_t *svc =
            json_pack("{s:s,s:o,s:o}", "name", l->recs[i].service, "methods",
                      all_listed ? json_names(names, nn) : json_null(), "instances", insts);
        free(names);
        bad |= json_array_append_new(svcs, svc) < 0;
        i = j;
    }
    if (!bad) {
        json_object_set_new(root, "prefix", json_string(l->prefix));
        json_object_set_new(root, "revision", json_integer(l->revision));
        json_object_set_new(root, "services", svcs);
        svcs = NULL;
        bad = json_dumpf(root, out, JSON_INDENT(2)) < 0;
        fputc('\n', out);
    }
    json_decref(svcs);
    json_decref(root);
    return bad ? -1 : 0;
}

static int print_table(const list_ctx_t *l, FILE *out)
{
    fprintf(out, "%-32s %-16s %-12s %-6s %-12s %s\n", "SERVICE / INSTANCE", "NODE", "ZONE",
            "WEIGHT", "VERSION", "LABELS");
    for (size_t i = 0; i < l->n;) {
        size_t j = i;
        while (j < l->n && strcmp(l->recs[j].service, l->recs[i].service) == 0)
            j++;
        const char **names;
        size_t nn;
        int all_listed = service_methods(l->recs + i, j - i, &names, &nn);
        if (all_listed < 0)
            return -1;
        fprintf(out, "%s  (%zu instance%s)  methods: ", l->recs[i].service, j - i,
                j - i == 1 ? "" : "s");
        if (all_listed) {
            print_names(out, names, nn);
        } else if (nn == 0) {
            fputs("any (not listed)", out);
        } else {
            fputs("any (not every instance lists its methods; listed: ", out);
            print_names(out, names, nn);
            fputc(')', out);
        }
        fputc('\n', out);
        for (size_t k = i; k < j; k++) {
            const reg_instance_t *in = &l->recs[k].v.inst;
            fprintf(out, "  %-30s %-16s %-12s %-6u %-12s ", in->addr, in->node ? in->node : "-",
                    in->zone ? in->zone : "-", in->weight, in->version ? in->version : "-");
            for (size_t m = 0; m < in->n_labels; m++)
                fprintf(out, "%s%s=%s", m ? "," : "", in->labels[m].key, in->labels[m].value);
            if (in->n_labels == 0)
                fputc('-', out);
            if (!in->methods) {
                fputs("  methods: not listed (serves any)", out);
            } else if (!lists_all(in, names, nn)) {
                fputs("  methods: ", out);
                print_names(out, in->methods, in->n_methods);
            }
            if (l->recs[k].v.form == REG_VALUE_FORM_METADATA)
                fputs("  (former record form: data in Metadata, which grpc-go clients cannot read)",
                      out);
            fputc('\n', out);
        }
        free(names);
        i = j;
    }
    fprintf(out, "%zu instances, revision %lld\n", l->n, (long long)l->revision);
    return 0;
}

int reg_list_run(const etcd_client_cfg_t *cfg, const char *prefix, int json, FILE *out, FILE *err)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return -1;
    list_ctx_t l;
    memset(&l, 0, sizeof(l));
    l.prefix = prefix ? prefix : REG_DEFAULT_PREFIX;
    l.err = err;
    const char *p = l.prefix;
    char *range_prefix = NULL;
    int rc = -1;
    if (asprintf(&range_prefix, "%s%s", p, p[0] && p[strlen(p) - 1] == '/' ? "" : "/") < 0) {
        uv_loop_close(&loop);
        return -1;
    }
    etcd_decoder_init(&l.dec);
    etcd_client_t *c = etcd_client_new(&loop, cfg);
    char *body = etcd_req_range_prefix(range_prefix);
    if (c && body && etcd_client_post(c, "/v3/kv/range", body, on_range, &l)) {
        while (!l.done && uv_run(&loop, UV_RUN_ONCE))
            ;
        if (l.done && l.status == ETCD_OK) {
            if (l.n) /* qsort must not get NULL, even for nothing */
                qsort(l.recs, l.n, sizeof(*l.recs), cmp_rec);
            rc = json ? print_json(&l, out) : print_table(&l, out);
            if (rc != 0 && err)
                fprintf(err, "meshd registry list: out of memory\n");
        } else if (err) {
            fprintf(err, "meshd registry list: %s (%s)\n", l.message[0] ? l.message : "failed",
                    cfg->endpoints);
        }
    } else if (err) {
        fprintf(err, "meshd registry list: bad etcd settings (%s)\n",
                cfg->endpoints ? cfg->endpoints : "none");
    }
    free(body);
    etcd_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (size_t i = 0; i < l.n; i++) {
        free(l.recs[i].key);
        free(l.recs[i].service);
        reg_value_release(&l.recs[i].v);
    }
    free(l.recs);
    etcd_decoder_destroy(&l.dec);
    free(range_prefix);
    return rc;
}
