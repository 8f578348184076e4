/*
 * node/call_metrics.c: the per-call families, merged from the workers' snapshots (see
 * node/call_metrics.h).
 */
#include "node/call_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "transport/grpc_status.h"

int node_calls_init(node_calls_t *c, int nworkers)
{
    memset(c, 0, sizeof(*c));
    c->nworkers = nworkers > 0 ? nworkers : 0;
    c->last = calloc(c->nworkers ? (size_t)c->nworkers : 1, sizeof(*c->last));
    return c->last ? 0 : -1;
}

void node_calls_destroy(node_calls_t *c)
{
    for (int i = 0; c->last && i < c->nworkers; i++)
        free(c->last[i]);
    free(c->last);
    memset(c, 0, sizeof(*c));
}

void node_calls_take(node_calls_t *c, int worker, mesh_cs_snap_t *s)
{
    if (worker < 0 || worker >= c->nworkers || !c->last) {
        free(s);
        return;
    }
    free(c->last[worker]);
    c->last[worker] = s;
}

static void row_init(mesh_cs_service_t *r, const char *name, size_t len)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, len);
    r->name_len = (uint32_t)len;
    prom_hist_init(&r->latency, prom_latency_bounds, PROM_LATENCY_BOUNDS);
}

int node_calls_merged_init(node_calls_merged_t *m)
{
    memset(m, 0, sizeof(*m));
    m->svc = malloc(4 * sizeof(*m->svc));
    m->inst = calloc(4, sizeof(*m->inst));
    if (!m->svc || !m->inst) {
        node_calls_merged_free(m);
        return -1;
    }
    m->cap_svc = m->cap_inst = 4;
    row_init(&m->svc[0], "other", 5);
    memcpy(m->inst[0].addr, "other", 6);
    m->n_svc = m->n_inst = 1;
    return 0;
}

void node_calls_merged_free(node_calls_merged_t *m)
{
    free(m->svc);
    free(m->inst);
    memset(m, 0, sizeof(*m));
}

/* The merged row of src's service (row 0 for "other"); NULL on OOM. */
static mesh_cs_service_t *row_of(node_calls_merged_t *m, const mesh_cs_service_t *src, int other)
{
    if (other)
        return &m->svc[0];
    for (size_t i = 1; i < m->n_svc; i++)
        if (m->svc[i].name_len == src->name_len &&
            !memcmp(m->svc[i].name, src->name, src->name_len))
            return &m->svc[i];
    if (m->n_svc == m->cap_svc) {
        mesh_cs_service_t *n = realloc(m->svc, 2 * m->cap_svc * sizeof(*n));
        if (!n)
            return NULL;
        m->svc = n;
        m->cap_svc *= 2;
    }
    row_init(&m->svc[m->n_svc], src->name, src->name_len);
    return &m->svc[m->n_svc++];
}

/* The merged column of method i of src in row r: by name, added while there is room. */
static uint32_t column_of(mesh_cs_service_t *r, const mesh_cs_service_t *src, uint32_t i)
{
    if (i >= src->n_methods)
        return MESH_CS_METHODS;
    uint8_t len = src->method_len[i];
    for (uint32_t k = 0; k < r->n_methods; k++)
        if (r->method_len[k] == len && !memcmp(r->methods[k], src->methods[i], len))
            return k;
    if (r->n_methods == MESH_CS_METHODS)
        return MESH_CS_METHODS;
    uint32_t k = r->n_methods++;
    memcpy(r->methods[k], src->methods[i], MESH_CS_METHOD_NAME);
    r->method_len[k] = len;
    return k;
}

int node_calls_merge(node_calls_merged_t *m, const mesh_cs_snap_t *s)
{
    for (uint32_t i = 0; i < s->n_svc; i++) {
        const mesh_cs_service_t *src = &s->svc[i];
        mesh_cs_service_t *r = row_of(m, src, i == MESH_CS_OTHER);
        if (!r)
            return -1;
        for (uint32_t k = 0; k <= MESH_CS_METHODS; k++) {
            uint32_t col = k < MESH_CS_METHODS ? column_of(r, src, k) : MESH_CS_METHODS;
            for (int code = 0; code < MESH_CS_CODES; code++)
                r->calls[col][code] += src->calls[k][code];
        }
        r->req_bytes += src->req_bytes;
        r->resp_bytes += src->resp_bytes;
        r->retries += src->retries;
        prom_hist_merge(&r->latency, &src->latency);
    }
    for (uint32_t i = 0; i < s->n_inst; i++) {
        const mesh_cs_instance_t *src = &s->inst[i];
        size_t k = 0;
        if (i != 0) {
            for (k = 1; k < m->n_inst; k++)
                if (!strcmp(m->inst[k].addr, src->addr))
                    break;
            if (k == m->n_inst) {
                if (m->n_inst == m->cap_inst) {
                    mesh_cs_instance_t *n = realloc(m->inst, 2 * m->cap_inst * sizeof(*n));
                    if (!n)
                        return -1;
                    m->inst = n;
                    m->cap_inst *= 2;
                }
                m->inst[k] = *src;
                m->inst[k].connect_failures = 0;
                m->n_inst++;
            }
        }
        m->inst[k].connect_failures += src->connect_failures;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

static int cmp_rows(const void *a, const void *b)
{
    const mesh_cs_service_t *x = *(const mesh_cs_service_t *const *)a;
    const mesh_cs_service_t *y = *(const mesh_cs_service_t *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_inst(const void *a, const void *b)
{
    const mesh_cs_instance_t *x = *(const mesh_cs_instance_t *const *)a;
    const mesh_cs_instance_t *y = *(const mesh_cs_instance_t *const *)b;
    return strcmp(x->addr, y->addr);
}

/* Method columns of r in name order, "other" (MESH_CS_METHODS) last; returns how many. */
static uint32_t method_order(const mesh_cs_service_t *r, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->n_methods; k++) {
        uint32_t j = n++;
        while (j > 0 && strcmp(r->methods[out[j - 1]], r->methods[k]) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = k;
    }
    out[n++] = MESH_CS_METHODS;
    return n;
}

/* Rows in name order with "other" last; rows with no call are left out. */
static size_t row_order(const node_calls_merged_t *m, const mesh_cs_service_t **out)
{
    size_t n = 0;
    for (size_t i = 1; i < m->n_svc; i++)
        out[n++] = &m->svc[i];
    qsort(out, n, sizeof(*out), cmp_rows);
    out[n++] = &m->svc[0];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i]->latency.count)
            out[k++] = out[i];
    return k;
}

void node_calls_write_merged(const node_calls_merged_t *m, prom_t *p)
{
    const mesh_cs_service_t **rows = malloc(m->n_svc * sizeof(*rows));
    const mesh_cs_instance_t **insts = malloc(m->n_inst * sizeof(*insts));
    if (!rows || !insts) {
        free(rows);
        free(insts);
        mesh_error("node", "out of memory writing the per-call metrics");
        return;
    }
    size_t n = row_order(m, rows);
    prom_family(p, "meshd_calls_total", PROM_COUNTER,
                "Calls that ended, by service, method and the gRPC status the client got "
                "(service and method \"other\": beyond the label bounds or not in the routing "
                "table).");
    for (size_t i = 0; i < n; i++) {
        const mesh_cs_service_t *r = rows[i];
        uint32_t cols[MESH_CS_METHODS + 1];
        uint32_t nc = method_order(r, cols);
        for (uint32_t c = 0; c < nc; c++) {
            const char *method = cols[c] == MESH_CS_METHODS ? "other" : r->methods[cols[c]];
            for (int code = 0; code < MESH_CS_CODES; code++) {
                if (!r->calls[cols[c]][code])
                    continue;
                prom_label_t l[] = {{"service", r->name},
                                    {"method", method},
                                    {"code", mesh_grpc_status_name(code)}};
                prom_sample_u64(p, "meshd_calls_total", l, 3, r->calls[cols[c]][code]);
            }
        }
    }
    prom_family(p, "meshd_call_duration_seconds", PROM_HISTOGRAM,
                "Call duration from the request headers to the end of the call, by service.");
    for (size_t i = 0; i < n; i++) {
        prom_label_t l[] = {{"service", rows[i]->name}};
        prom_histogram(p, "meshd_call_duration_seconds", l, 1, &rows[i]->latency);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } per_svc[] = {
        {"meshd_request_bytes_total", "Request message bytes (gRPC DATA) from clients, by service.",
         offsetof(mesh_cs_service_t, req_bytes)},
        {"meshd_response_bytes_total", "Response message bytes (gRPC DATA) to clients, by service.",
         offsetof(mesh_cs_service_t, resp_bytes)},
        {"meshd_retries_total", "Calls re-sent to another instance, by service.",
         offsetof(mesh_cs_service_t, retries)},
    };
    for (size_t f = 0; f < sizeof(per_svc) / sizeof(per_svc[0]); f++) {
        prom_family(p, per_svc[f].name, PROM_COUNTER, per_svc[f].help);
        for (size_t i = 0; i < n; i++) {
            prom_label_t l[] = {{"service", rows[i]->name}};
            uint64_t v;
            memcpy(&v, (const char *)rows[i] + per_svc[f].off, sizeof(v));
            prom_sample_u64(p, per_svc[f].name, l, 1, v);
        }
    }
    size_t ni = 0;
    for (size_t i = 1; i < m->n_inst; i++)
        insts[ni++] = &m->inst[i];
    qsort(insts, ni, sizeof(*insts), cmp_inst);
    insts[ni++] = &m->inst[0];
    prom_family(p, "meshd_upstream_connect_failures_total", PROM_COUNTER,
                "Failed connection attempts (refused, timed out, unreachable) to an upstream "
                "instance, host:port (\"other\": beyond the label bound).");
    for (size_t i = 0; i < ni; i++) {
        if (!insts[i]->connect_failures)
            continue;
        prom_label_t l[] = {{"upstream", insts[i]->addr}};
        prom_sample_u64(p, "meshd_upstream_connect_failures_total", l, 1,
                        insts[i]->connect_failures);
    }
    free(rows);
    free(insts);
}

void node_calls_write(const node_calls_t *c, prom_t *p)
{
    node_calls_merged_t m;
    if (node_calls_merged_init(&m) != 0) {
        mesh_error("node", "out of memory writing the per-call metrics");
        return;
    }
    for (int i = 0; i < c->nworkers; i++)
        if (c->last[i] && node_calls_merge(&m, c->last[i]) != 0) {
            mesh_error("node", "out of memory merging the per-call metrics");
            break;
        }
    node_calls_write_merged(&m, p);
    node_calls_merged_free(&m);
}
