/*
 * gateway/schema_cache_json.c: the descriptor cache's stats as JSON (jansson), for the admin
 * API's GET /v1/gateway/schemas (schema in docs/gateway.md).
 */
#include <jansson.h>
#include <stdio.h>

#include "actors/actor.h"
#include "gateway/schema_cache_int.h"

static json_t *variant_json(const gw_cache_t *c, const gwc_variant_t *v, uint64_t now)
{
    char mh[24];
    snprintf(mh, sizeof(mh), "%016llx", (unsigned long long)v->mhash);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "version", v->version, "methods_hash", mh,
                  "state", gwc_vstate_name(v->state), "instances", (json_int_t)v->n_instances,
                  "files", (json_int_t)v->n_files, "bytes", (json_int_t)v->bytes);
    if (!o)
        return NULL;
    if (v->fetched_at) {
        json_object_set_new(o, "fetch_us", json_integer((json_int_t)(v->fetch_ns / 1000)));
        json_object_set_new(o, "from", json_string(v->from));
        json_object_set_new(o, "age_ms",
                            json_integer((json_int_t)((now - v->fetched_at) / 1000000)));
    }
    if (!v->n_instances && v->absent_since) {
        uint64_t end = v->absent_since + c->grace_ns;
        json_object_set_new(o, "dropped_in_ms",
                            json_integer((json_int_t)(end > now ? (end - now) / 1000000 : 0)));
    }
    return o;
}

static const char *svc_state(const gwc_svc_t *s)
{
    int have = 0, fetching = 0, failed = 0, norefl = 0;
    for (size_t k = 0; k < s->n_v; k++) {
        have |= s->v[k]->state == GWC_V_HAVE;
        fetching |= s->v[k]->state == GWC_V_FETCHING;
        failed |= s->v[k]->state == GWC_V_FAILED;
        norefl |= s->v[k]->state == GWC_V_NOREFL;
    }
    return fetching ? "fetching"
           : failed ? "failed"
           : have   ? "ok"
           : norefl ? "no_reflection"
                    : "pending";
}

json_t *gw_cache_stats_json(const gw_cache_t *c)
{
    if (!c)
        return json_pack("{s:b}", "running", 0);
    gw_cache_counts_t n;
    gw_cache_counts(c, &n);
    uint64_t now = mesh_now(c->self);
    json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                          "running", 1, "generation", (json_int_t)n.generation, "services",
                          (json_int_t)n.services, "held", (json_int_t)n.held, "fetching",
                          (json_int_t)n.fetching, "queued", (json_int_t)n.queued, "failed",
                          (json_int_t)n.failed, "no_reflection", (json_int_t)n.no_reflection,
                          "fetches", (json_int_t)n.fetches, "fetched", (json_int_t)n.fetched,
                          "timeouts", (json_int_t)n.timeouts, "conflicts", (json_int_t)n.conflicts,
                          "files", (json_int_t)n.files, "bytes", (json_int_t)n.bytes);
    json_t *list = json_array();
    if (!o || !list || json_object_set_new(o, "schemas", list) < 0) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < c->n_buckets; i++)
        for (const gwc_svc_t *s = c->buckets[i]; s; s = s->hnext) {
            json_t *so = json_pack("{s:s, s:s, s:b}", "service", s->name, "state", svc_state(s),
                                   "in_table", s->obj != NULL);
            json_t *vs = json_array();
            if (!so || !vs) {
                json_decref(so);
                json_decref(vs);
                json_decref(o);
                return NULL;
            }
            if (s->last_error[0])
                json_object_set_new(so, "last_error", json_string(s->last_error));
            if (s->in_backoff)
                json_object_set_new(
                    so, "retry_in_ms",
                    json_integer(
                        (json_int_t)(s->retry_at > now ? (s->retry_at - now) / 1000000 : 0)));
            for (size_t k = 0; k < s->n_v; k++)
                json_array_append_new(vs, variant_json(c, s->v[k], now));
            json_object_set_new(so, "versions", vs);
            json_array_append_new(list, so);
        }
    return o;
}
