/*
 * transport/call_stats.c: one worker's per-call table and its snapshot (see
 * transport/call_stats.h).
 */
#include "transport/call_stats.h"

#include <stdlib.h>
#include <string.h>

static mesh_cs_service_t *row_new(const char *name, size_t len)
{
    mesh_cs_service_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->name, name, len);
    r->name_len = (uint32_t)len;
    prom_hist_init(&r->latency, prom_latency_bounds, PROM_LATENCY_BOUNDS);
    return r;
}

int mesh_cs_init(mesh_call_stats_t *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->svc[0] = row_new("other", 5);
    cs->inst = calloc(MESH_CS_INSTANCES + 1, sizeof(*cs->inst));
    if (!cs->svc[0] || !cs->inst) {
        mesh_cs_free(cs);
        return -1;
    }
    memcpy(cs->inst[0].addr, "other", 6);
    cs->n_svc = 1;
    cs->n_inst = 1;
    return 0;
}

void mesh_cs_free(mesh_call_stats_t *cs)
{
    for (uint32_t i = 0; i < MESH_CS_SERVICES + 1; i++)
        free(cs->svc[i]);
    free(cs->inst);
    memset(cs, 0, sizeof(*cs));
}

/* FNV-1a. */
static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

uint32_t mesh_cs_service(mesh_call_stats_t *cs, const char *name, size_t len, int insert)
{
    if (!cs->svc[0] || len == 0 || len >= MESH_CS_NAME)
        return MESH_CS_OTHER;
    uint32_t b = hash(name, len) & (MESH_CS_INDEX - 1);
    for (;; b = (b + 1) & (MESH_CS_INDEX - 1)) {
        uint32_t row = cs->index[b];
        if (row == 0)
            break;
        const mesh_cs_service_t *r = cs->svc[row];
        if (r->name_len == len && memcmp(r->name, name, len) == 0)
            return row;
    }
    if (!insert || cs->n_svc > MESH_CS_SERVICES)
        return MESH_CS_OTHER;
    mesh_cs_service_t *r = row_new(name, len);
    if (!r)
        return MESH_CS_OTHER;
    uint32_t row = cs->n_svc++;
    cs->svc[row] = r;
    cs->index[b] = (uint8_t)row;
    cs->gen++;
    return row;
}

/* Whether m (len bytes) is among the n sorted names of known. */
static int known_has(const char *const *known, size_t n, const char *m, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(known[mid], m, len);
        if (c == 0 && known[mid][len] != '\0')
            c = 1; /* known[mid] is longer: it sorts after m */
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static uint64_t ld8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t ld4(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Whether a and b (len bytes, 0 < len < MESH_CS_METHOD_NAME) are equal: by words, the last
 * one overlapping the one before for lengths that are not a multiple (no byte outside is
 * read), instead of a call to memcmp per call for a name of a few bytes. */
static int name_eq(const char *a, const char *b, size_t len)
{
    if (len < 4) {
        for (size_t i = 0; i < len; i++)
            if (a[i] != b[i])
                return 0;
        return 1;
    }
    if (len < 8)
        return ld4(a) == ld4(b) && ld4(a + len - 4) == ld4(b + len - 4);
    for (size_t i = 0; i + 8 < len; i += 8)
        if (ld8(a + i) != ld8(b + i))
            return 0;
    return ld8(a + len - 8) == ld8(b + len - 8);
}

uint32_t mesh_cs_method(mesh_call_stats_t *cs, uint32_t svc, const char *m, size_t len,
                        const char *const *known, size_t n_known)
{
    mesh_cs_service_t *r = svc < cs->n_svc ? cs->svc[svc] : NULL;
    if (!r || svc == MESH_CS_OTHER || len == 0 || len >= MESH_CS_METHOD_NAME)
        return MESH_CS_METHODS;
    for (uint32_t i = 0; i < r->n_methods; i++)
        if (r->method_len[i] == len && name_eq(r->methods[i], m, len))
            return i;
    if (r->n_methods == MESH_CS_METHODS || memchr(m, '\0', len) ||
        (known && !known_has(known, n_known, m, len)))
        return MESH_CS_METHODS;
    uint32_t i = r->n_methods++;
    memcpy(r->methods[i], m, len);
    r->methods[i][len] = '\0';
    r->method_len[i] = (uint8_t)len;
    cs->gen++;
    return i;
}

void mesh_cs_record(mesh_call_stats_t *cs, uint32_t svc, uint32_t method, int code,
                    uint64_t req_bytes, uint64_t resp_bytes, uint32_t retries, double seconds)
{
    mesh_cs_service_t *r = cs->svc[svc < cs->n_svc ? svc : MESH_CS_OTHER];
    if (!r)
        return;
    if (method > MESH_CS_METHODS)
        method = MESH_CS_METHODS;
    r->calls[method][code >= 0 && code < MESH_CS_CODES ? code : 2 /* UNKNOWN */]++;
    r->req_bytes += req_bytes;
    r->resp_bytes += resp_bytes;
    r->retries += retries;
    prom_hist_observe(&r->latency, seconds);
    cs->gen++;
}

void mesh_cs_connect_failure(mesh_call_stats_t *cs, const char *addr)
{
    if (!cs->inst)
        return;
    size_t len = strlen(addr);
    uint32_t i = 1;
    for (; i < cs->n_inst; i++)
        if (!strcmp(cs->inst[i].addr, addr))
            break;
    if (i == cs->n_inst) {
        if (cs->n_inst <= MESH_CS_INSTANCES && len < MESH_CS_ADDR) {
            memcpy(cs->inst[i].addr, addr, len + 1);
            cs->n_inst++;
        } else {
            i = 0;
        }
    }
    cs->inst[i].connect_failures++;
    cs->gen++;
}

mesh_cs_snap_t *mesh_cs_snapshot(const mesh_call_stats_t *cs)
{
    size_t sz = sizeof(mesh_cs_snap_t) + cs->n_svc * sizeof(mesh_cs_service_t) +
                cs->n_inst * sizeof(mesh_cs_instance_t);
    mesh_cs_snap_t *s = malloc(sz);
    if (!s)
        return NULL;
    s->gen = cs->gen;
    s->n_svc = cs->n_svc;
    s->n_inst = cs->n_inst;
    for (uint32_t i = 0; i < cs->n_svc; i++)
        s->svc[i] = *cs->svc[i];
    s->inst = (mesh_cs_instance_t *)(void *)&s->svc[cs->n_svc];
    if (cs->n_inst)
        memcpy(s->inst, cs->inst, cs->n_inst * sizeof(*cs->inst));
    return s;
}
