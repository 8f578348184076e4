/*
 * node/node_metrics.c: the node's metric families (see node/node_metrics.h).
 */
#include "node/node_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int node_metrics_init(node_metrics_t *m, int nworkers)
{
    memset(m, 0, sizeof(*m));
    size_t n = nworkers > 0 ? (size_t)nworkers : 1;
    m->nworkers = nworkers;
    m->upstream_open = calloc(n, sizeof(*m->upstream_open));
    m->endpoints = calloc(n, sizeof(*m->endpoints));
    m->fe_req_buffered = calloc(n, sizeof(*m->fe_req_buffered));
    if (!m->upstream_open || !m->endpoints || !m->fe_req_buffered) {
        node_metrics_destroy(m);
        return -1;
    }
    return 0;
}

void node_metrics_destroy(node_metrics_t *m)
{
    free(m->upstream_open);
    free(m->endpoints);
    free(m->fe_req_buffered);
    for (size_t i = 0; i < m->n_br; i++)
        free(m->br[i].state);
    free(m->br);
    memset(m, 0, sizeof(*m));
}

void node_metrics_stats(node_metrics_t *m, int worker, const mesh_ev_stats_t *s)
{
    if (worker < 0 || worker >= m->nworkers)
        return;
    m->upstream_conns += s->upstream_conns;
    m->client_conns += s->client_conns;
    m->retry_budget_exhausted += s->retry_budget_exhausted;
    m->faults_aborted += s->faults_aborted;
    m->faults_delayed += s->faults_delayed;
    m->hedges += s->hedges;
    m->upstream_open[worker] = s->upstream_conns_open;
    m->endpoints[worker] = s->endpoints;
    m->fe_req_buffered[worker] = s->fe_req_buffered;
}

/* The entry of instance, added when new; NULL on OOM. */
static node_breaker_t *breaker_of(node_metrics_t *m, const char *instance)
{
    for (size_t i = 0; i < m->n_br; i++)
        if (m->br[i].instance == instance || !strcmp(m->br[i].instance, instance))
            return &m->br[i];
    if (m->n_br == m->cap_br) {
        size_t nc = m->cap_br ? m->cap_br * 2 : 4;
        node_breaker_t *nb = realloc(m->br, nc * sizeof(*nb));
        if (!nb)
            return NULL;
        m->br = nb;
        m->cap_br = nc;
    }
    uint8_t *st = calloc((size_t)m->nworkers, 1); /* MESH_EV_BREAKER_CLOSED is 0 */
    if (!st)
        return NULL;
    m->br[m->n_br] = (node_breaker_t){.instance = instance, .state = st};
    return &m->br[m->n_br++];
}

void node_metrics_breaker(node_metrics_t *m, int worker, const mesh_ev_breaker_t *b)
{
    if (worker < 0 || worker >= m->nworkers || !b->instance)
        return;
    node_breaker_t *e = breaker_of(m, b->instance);
    if (!e)
        return; /* out of memory: the transition is still logged and audited */
    e->state[worker] = b->to;
    if (b->to == MESH_EV_BREAKER_OPEN)
        e->opened++;
}

static void counter(prom_t *p, const char *name, const char *help, uint64_t v)
{
    prom_family(p, name, PROM_COUNTER, help);
    prom_sample_u64(p, name, NULL, 0, v);
}

static void gauge_u64(prom_t *p, const char *name, const char *help, uint64_t v)
{
    prom_family(p, name, PROM_GAUGE, help);
    prom_sample_u64(p, name, NULL, 0, v);
}

static const char *const source_names[] = {"static", "etcd", "gossip"};

static void routes_families(const mesh_routes_t *t, prom_t *p)
{
    size_t services = t ? mesh_routes_count(t) : 0;
    uint64_t by_source[3] = {0};
    gauge_u64(p, "meshd_routes_services", "Services in the routing table the workers use.",
              services);
    prom_family(p, "meshd_service_instances", PROM_GAUGE,
                "Instances of a service in the routing table, by the source that listed them.");
    for (size_t i = 0; i < services; i++) {
        const mesh_route_service_t *s = mesh_routes_at(t, i);
        uint64_t n[3] = {0};
        for (size_t k = 0; k < s->n_instances; k++)
            n[(unsigned)s->instances[k].source < 3 ? s->instances[k].source : 0]++;
        for (int src = 0; src < 3; src++) {
            if (!n[src])
                continue;
            prom_label_t l[] = {{"service", s->name}, {"source", source_names[src]}};
            prom_sample_u64(p, "meshd_service_instances", l, 2, n[src]);
            by_source[src] += n[src];
        }
    }
    prom_family(p, "meshd_routes_instances", PROM_GAUGE,
                "Instances in the routing table, by source (every service together).");
    for (int src = 0; src < 3; src++) {
        prom_label_t l[] = {{"source", source_names[src]}};
        prom_sample_u64(p, "meshd_routes_instances", l, 1, by_source[src]);
    }
}

void node_metrics_write(const node_metrics_t *m, const node_metrics_view_t *v, prom_t *p)
{
    routes_families(v->routes, p);
    prom_family(p, "meshd_etcd_state", PROM_GAUGE,
                "1 for etcd's state as this node sees it: off (no etcd configured), connected "
                "or degraded (unreachable: routing from the last view).");
    static const char *const states[] = {"off", "connected", "degraded"};
    for (int i = 0; i < 3; i++) {
        prom_label_t l[] = {{"state", states[i]}};
        prom_sample(p, "meshd_etcd_state", l, 1, v->etcd && !strcmp(v->etcd, states[i]));
    }
    gauge_u64(p, "meshd_workers", "Data-plane worker loops.", (uint64_t)m->nworkers);
    counter(p, "meshd_calls_failed_total",
            "Calls the mesh itself ended with an error status (no route, no live instance, "
            "circuit open, ...).",
            v->failed);
    counter(p, "meshd_call_retries_total", "Calls re-sent to another instance.", v->retries);
    counter(p, "meshd_client_connections_total", "Client connections accepted.", m->client_conns);
    counter(p, "meshd_retry_budget_exhausted_total",
            "Retries the retry budget refused (routes.retry-budget).", m->retry_budget_exhausted);
    counter(p, "meshd_faults_aborted_total",
            "Calls answered with an injected fault status (routes rules' fault.abort).",
            m->faults_aborted);
    counter(p, "meshd_faults_delayed_total",
            "Calls held by an injected delay (routes rules' fault.delay).", m->faults_delayed);
    counter(p, "meshd_hedges_total",
            "Hedged attempts started (routes rules' hedging: a second attempt after the delay).",
            m->hedges);
    counter(p, "meshd_upstream_connections_total", "Upstream connections opened.",
            m->upstream_conns);
    uint64_t open = 0, eps = 0, feb = 0;
    for (int i = 0; i < m->nworkers; i++) {
        open += m->upstream_open[i];
        eps += m->endpoints[i];
        feb += m->fe_req_buffered[i];
    }
    gauge_u64(p, "meshd_gateway_request_buffered_bytes",
              "Bytes of HTTP request streams (NDJSON bodies of client-streaming and bidi calls) "
              "the gateway holds, every worker together: lines not yet sent and what their "
              "calls buffer.",
              feb);
    gauge_u64(p, "meshd_upstream_connections", "Upstream connections open, every worker together.",
              open);
    gauge_u64(p, "meshd_upstream_endpoints",
              "Upstream endpoints the workers hold (each worker its own).", eps);
    prom_family(p, "meshd_breaker_workers", PROM_GAUGE,
                "Workers whose circuit breaker for an upstream is in a state (upstreams whose "
                "breaker changed state at least once).");
    static const char *const bstates[] = {"closed", "open", "half_open"};
    for (size_t i = 0; i < m->n_br; i++) {
        uint64_t n[3] = {0};
        for (int w = 0; w < m->nworkers; w++)
            n[m->br[i].state[w] < 3 ? m->br[i].state[w] : 0]++;
        for (int s = 0; s < 3; s++) {
            prom_label_t l[] = {{"upstream", m->br[i].instance}, {"state", bstates[s]}};
            prom_sample_u64(p, "meshd_breaker_workers", l, 2, n[s]);
        }
    }
    prom_family(p, "meshd_breaker_opened_total", PROM_COUNTER,
                "Times a worker's circuit breaker for an upstream opened.");
    for (size_t i = 0; i < m->n_br; i++) {
        prom_label_t l[] = {{"upstream", m->br[i].instance}};
        prom_sample_u64(p, "meshd_breaker_opened_total", l, 1, m->br[i].opened);
    }
    counter(p, "meshd_worker_events_dropped_total",
            "Worker events lost because a worker's event ring was full (logged as well).",
            m->events_dropped);
}
