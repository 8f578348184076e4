/*
 * tests/unit/audit/test_audit_actor.c: the production audit actor on the simulated executor,
 * its spool over the simulated folder (simulations/sim_fs.h) and a scripted sink in place of
 * Kafka (the actor's factories, audit/audit_actor.h).
 *
 * The scripted sink holds what it is given while "down" (and says all brokers are down), and
 * when "up" acknowledges everything in flight at each serve, except records it was told to fail:
 * such a failure also fails the later records of the same key that are in flight, as Kafka's
 * idempotent producer does within a partition. Every record it is given is kept, so the tests
 * check what a consumer would read: every event, in order per key once duplicates are dropped
 * by event_id.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/prng.h"
#include "actors/sim.h"
#include "audit/audit_actor.h"
#include "audit/audit_api.h"
#include "simulations/sim_fs.h"
#include "tests/check.h"

#define MS 1000000ull

/* ---- the scripted sink ----------------------------------------------------------------------- */

typedef struct rec {
    uint64_t seq;   /* the spool's */
    uint64_t event; /* the event_id's sequence */
    char key[64];
    char type[32];
    char *json;
    int64_t ts_ms;
} rec_t;

typedef struct fake {
    audit_sink_t super;
    audit_sink_cbs_t cbs;
    void *ud;
    int down, said_down;
    rec_t *flight; /* produced, not reported */
    size_t n_flight;
    rec_t *acked; /* every acknowledged record, in acknowledgement order */
    size_t n_acked, cap_acked;
    size_t produced, failed, max_flight;
    uint64_t fail_event[8]; /* event sequences to fail once */
    size_t n_fail;
    int sinks_made;
} fake_t;

static fake_t F;

static uint64_t event_seq(const char *json)
{
    const char *p = strstr(json, "\"event_id\":\"");
    CHECK(p);
    return strtoull(p + 12 + 33, NULL, 16);
}

static int f_produce(audit_sink_t *s, const audit_sink_rec_t *r, char *err, size_t errlen)
{
    fake_t *f = (fake_t *)s;
    rec_t x = {.seq = r->seq, .ts_ms = r->ts_ms};
    x.json = strndup(r->value, r->len);
    CHECK(x.json);
    x.event = event_seq(x.json);
    snprintf(x.key, sizeof(x.key), "%.*s", (int)r->key_len, r->key ? (const char *)r->key : "");
    const char *t = strstr(x.json, "\"type\":\"");
    CHECK(t);
    snprintf(x.type, sizeof(x.type), "%.*s", (int)(strchr(t + 8, '"') - (t + 8)), t + 8);
    f->flight = realloc(f->flight, (f->n_flight + 1) * sizeof(rec_t));
    f->flight[f->n_flight++] = x;
    f->produced++;
    if (f->n_flight > f->max_flight)
        f->max_flight = f->n_flight;
    f->cbs.wake(f->ud);
    return 0;
}

static void f_serve(audit_sink_t *s)
{
    fake_t *f = (fake_t *)s;
    if (f->down) {
        if (!f->said_down)
            f->cbs.link(f->ud, 1, "all brokers down (scripted)");
        f->said_down = 1;
        return;
    }
    f->said_down = 0;
    rec_t *v = f->flight;
    size_t n = f->n_flight;
    f->flight = NULL;
    f->n_flight = 0;
    char failed_keys[8][64];
    size_t nfk = 0;
    for (size_t i = 0; i < n; i++) {
        int fail = 0;
        for (size_t k = 0; k < f->n_fail; k++)
            if (f->fail_event[k] == v[i].event) {
                f->fail_event[k] = f->fail_event[--f->n_fail];
                fail = 1;
                CHECK(nfk < 8);
                snprintf(failed_keys[nfk++], 64, "%s", v[i].key);
                break;
            }
        for (size_t k = 0; !fail && k < nfk; k++)
            fail = !strcmp(failed_keys[k], v[i].key);
        if (fail) {
            f->failed++;
            f->cbs.delivered(f->ud, v[i].seq, strlen(v[i].json), 1, "scripted failure");
            free(v[i].json);
            continue;
        }
        if (f->n_acked == f->cap_acked) {
            f->cap_acked = f->cap_acked ? f->cap_acked * 2 : 256;
            f->acked = realloc(f->acked, f->cap_acked * sizeof(rec_t));
        }
        f->acked[f->n_acked++] = v[i];
        f->cbs.delivered(f->ud, v[i].seq, strlen(v[i].json), 0, "");
    }
    free(v);
}

static void f_flush(audit_sink_t *s, uint64_t ms)
{
    (void)ms;
    f_serve(s);
}

static void f_free(audit_sink_t *s)
{
    fake_t *f = (fake_t *)s;
    for (size_t i = 0; i < f->n_flight; i++) /* lost with the producer: stays in the spool */
        free(f->flight[i].json);
    free(f->flight);
    f->flight = NULL;
    f->n_flight = 0;
}

static const audit_sink_ops_t fake_ops = {
    .name = "fake", .produce = f_produce, .serve = f_serve, .flush = f_flush, .free = f_free};

static audit_sink_t *fake_new(mesh_actor_t *self, const audit_sink_cbs_t *cbs, void *ud, void *arg,
                              char *err, size_t errlen)
{
    (void)self, (void)arg, (void)err, (void)errlen;
    F.super.ops = &fake_ops;
    F.cbs = *cbs;
    F.ud = ud;
    F.sinks_made++;
    return &F.super;
}

static void fake_reset(void)
{
    for (size_t i = 0; i < F.n_acked; i++)
        free(F.acked[i].json);
    free(F.acked);
    memset(&F, 0, sizeof(F));
}

/* ---- the spool's folder -------------------------------------------------------------------- */

static int fs_open(mesh_actor_t *self, void *arg, audit_spool_fs_t *fs, char *err, size_t errlen)
{
    (void)self, (void)err, (void)errlen;
    *fs = sim_fs_layer(arg);
    return 0;
}

static void fs_close(void *arg, audit_spool_fs_t *fs)
{
    (void)fs;
    sim_fs_crash(arg, 0); /* a process that stops closes its files */
}

/* ---- an emitter: a control actor that emits events ----------------------------------------- */

enum { EMIT = 0x54450001u };
typedef struct emit_req {
    uint32_t n;
    uint32_t keys; /* services svc0..svc(keys-1) round robin; 0: no service */
    uint32_t first;
} emit_req_t;

static audit_api_t API;

static int em_message(mesh_actor_t *self, mesh_msg_t *m)
{
    const emit_req_t *r = mesh_msg_as(m, emit_req_t);
    if (m->type != EMIT || !r)
        return 0;
    for (uint32_t i = 0; i < r->n; i++) {
        char svc[32], reason[64];
        snprintf(svc, sizeof(svc), "pkg.Svc%u", (r->first + i) % (r->keys ? r->keys : 1));
        snprintf(reason, sizeof(reason), "flap %u", r->first + i);
        audit_event_t ev = {.type = AUDIT_READINESS_CHANGED,
                            .ready = (i & 1) != 0,
                            .service = r->keys ? svc : NULL,
                            .reason = reason};
        audit_emit(self, &API, &ev);
    }
    return 0;
}

static const mesh_actor_ops_t emitter_ops = {.name = "emitter", .on_message = em_message};

/* ---- the rig ------------------------------------------------------------------------------- */

typedef struct rig {
    mesh_exec_t *sim;
    mesh_prng_t prng;
    sim_fs_t *fs;
    audit_args_t *args;
    mesh_actor_id_t emitter;
} rig_t;

static void rig_start_actor(rig_t *r)
{
    mesh_spawn_opts_t so = {.mailbox = AUDIT_ACTOR_MAILBOX};
    CHECK(mesh_exec_spawn(r->sim, &audit_actor_ops, r->args, &so, &API.actor) == 0);
}

static void rig_init(rig_t *r, uint64_t seed, audit_actor_cfg_t *cfg)
{
    memset(r, 0, sizeof(*r));
    fake_reset();
    char err[200];
    CHECK(audit_api_init(&API, "node-1", "sidecar", err, sizeof(err)) == 0);
    r->sim = mesh_sim_new(seed);
    mesh_prng_seed(&r->prng, seed);
    r->fs = sim_fs_new(&r->prng);
    cfg->api = &API;
    if (cfg->mode == AUDIT_MODE_KAFKA) {
        cfg->sink_new = fake_new;
        cfg->fs = (audit_fs_factory_t){.open = fs_open, .close = fs_close};
        cfg->fs_arg = r->fs;
        cfg->spool_dir = "/sim/spool";
        cfg->brokers = "sim:9092";
        cfg->topic = "meshd.audit";
    }
    r->args = audit_args_new(cfg);
    CHECK(r->args);
    rig_start_actor(r);
    CHECK(mesh_exec_spawn(r->sim, &emitter_ops, NULL, NULL, &r->emitter) == 0);
}

static void rig_run(rig_t *r, uint64_t ms)
{
    mesh_sim_run_until(r->sim, mesh_sim_now(r->sim) + ms * MS);
}

static void rig_emit(rig_t *r, uint32_t n, uint32_t keys, uint32_t first)
{
    emit_req_t q = {.n = n, .keys = keys, .first = first};
    CHECK(mesh_exec_send(r->sim, r->emitter, EMIT, &q, sizeof(q)) == 0);
}

static void rig_free(rig_t *r)
{
    mesh_exec_free(r->sim);
    audit_args_free(r->args);
    sim_fs_delete(r->fs);
    fake_reset();
}

/* Checks what a consumer reads: events 1..n each at least once, the first copies in order per
 * key; returns the number of copies beyond the first. */
static size_t consumer_check(uint64_t n)
{
    uint8_t *seen = calloc(n + 1, 1);
    size_t dups = 0;
    struct {
        char key[64];
        uint64_t last;
    } keys[64];
    size_t nk = 0;
    for (size_t i = 0; i < F.n_acked; i++) {
        rec_t *x = &F.acked[i];
        CHECK(x->event >= 1 && x->event <= n);
        if (seen[x->event]) {
            dups++;
            continue;
        }
        seen[x->event] = 1;
        size_t k = 0;
        while (k < nk && strcmp(keys[k].key, x->key))
            k++;
        if (k == nk) {
            CHECK(nk < 64);
            snprintf(keys[nk].key, 64, "%s", x->key);
            keys[nk++].last = 0;
        }
        if (x->event <= keys[k].last)
            fprintf(stderr, "key %s: event %llu after %llu\n", x->key, (unsigned long long)x->event,
                    (unsigned long long)keys[k].last);
        CHECK(x->event > keys[k].last);
        keys[k].last = x->event;
    }
    for (uint64_t e = 1; e <= n; e++) {
        if (!seen[e])
            fprintf(stderr, "event %llu never arrived\n", (unsigned long long)e);
        CHECK(seen[e]);
    }
    free(seen);
    return dups;
}

static json_t *status(rig_t *r)
{
    return audit_actor_status(r->args);
}

/* ---- the tests ----------------------------------------------------------------------------- */

/* Records reach the sink in order, each once, keyed by service; the spool empties. */
static void test_in_order(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA};
    rig_init(&r, 1, &cfg);
    rig_emit(&r, 500, 3, 0);
    rig_run(&r, 2000);
    CHECK_EQ(F.n_acked, 500);
    CHECK_EQ(consumer_check(500), 0);
    for (size_t i = 0; i < F.n_acked; i++) {
        CHECK_EQ(F.acked[i].event, i + 1); /* one key after the other, in emission order */
        char want[32];
        snprintf(want, sizeof(want), "pkg.Svc%zu", i % 3);
        CHECK_STR(F.acked[i].key, want);
        json_error_t e;
        json_t *o = json_loads(F.acked[i].json, 0, &e);
        CHECK(o);
        CHECK_STR(json_string_value(json_object_get(o, "type")), "readiness_changed");
        CHECK_STR(json_string_value(json_object_get(o, "node")), "node-1");
        CHECK_STR(json_string_value(json_object_get(o, "service")), want);
        json_decref(o);
    }
    audit_actor_stats_t s;
    audit_actor_get_stats(r.args, &s);
    CHECK_EQ(s.acked, 500);
    CHECK_EQ(s.in_flight, 0);
    json_t *st = status(&r);
    CHECK_STR(json_string_value(json_object_get(st, "state")), "connected");
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "spool"), "records")), 0);
    CHECK_EQ(json_integer_value(json_object_get(st, "acknowledged")), 500);
    json_decref(st);
    rig_free(&r);
}

/* Kafka down: records stay in the spool, at most max_in_flight at the sink; back up: every one
 * arrives once, in order. */
static void test_outage(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA, .max_in_flight = 100};
    rig_init(&r, 2, &cfg);
    F.down = 1;
    for (uint32_t i = 0; i < 60; i++) { /* 60 "seconds" of 500 events */
        rig_emit(&r, 500, 5, i * 500);
        rig_run(&r, 1000);
        CHECK(F.n_flight <= 100);
    }
    CHECK_EQ(F.n_acked, 0);
    CHECK_EQ(F.max_flight, 100);
    json_t *st = status(&r);
    CHECK_STR(json_string_value(json_object_get(st, "state")), "spooling");
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "spool"), "records")), 30000);
    CHECK_EQ(json_integer_value(json_object_get(st, "in_flight")), 100);
    json_decref(st);
    F.down = 0;
    rig_run(&r, 30000);
    CHECK_EQ(F.n_acked, 30000);
    CHECK_EQ(consumer_check(30000), 0);
    st = status(&r);
    CHECK_STR(json_string_value(json_object_get(st, "state")), "connected");
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "spool"), "records")), 0);
    json_decref(st);
    rig_free(&r);
}

/* A failed delivery: everything in flight settles first, then the spool rewinds and the records
 * go again in order; nothing is lost, the order per key holds. */
static void test_failure_rewind(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA, .max_in_flight = 50};
    rig_init(&r, 3, &cfg);
    F.down = 1;
    rig_emit(&r, 400, 4, 0);
    rig_run(&r, 500);
    F.fail_event[F.n_fail++] = 10;
    F.fail_event[F.n_fail++] = 33;
    F.down = 0;
    rig_run(&r, 20000);
    CHECK(F.failed >= 2);
    CHECK_EQ(F.n_fail, 0);
    consumer_check(400);
    audit_actor_stats_t s;
    audit_actor_get_stats(r.args, &s);
    CHECK(s.rewinds >= 1);
    CHECK_EQ(s.in_flight, 0);
    json_t *st = status(&r);
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(st, "spool"), "records")), 0);
    CHECK_CONTAINS(json_string_value(json_object_get(st, "last_error")), "scripted failure");
    json_decref(st);
    rig_free(&r);
}

/* A full spool drops new records, counts them, and once Kafka acknowledges again reports them
 * in one audit_dropped event with the exact count. */
static void test_full_spool_reports(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA, .max_in_flight = 10};
    cfg.spool.max_bytes = 64 * 1024;
    rig_init(&r, 4, &cfg);
    F.down = 1;
    rig_emit(&r, 1000, 2, 0);
    rig_run(&r, 1000);
    json_t *st = status(&r);
    json_int_t dropped =
        json_integer_value(json_object_get(json_object_get(st, "dropped"), "spool_full"));
    json_decref(st);
    CHECK(dropped > 500 && dropped < 1000);
    F.down = 0;
    rig_run(&r, 10000);
    size_t reports = 0;
    uint64_t reported = 0;
    for (size_t i = 0; i < F.n_acked; i++)
        if (!strcmp(F.acked[i].type, "audit_dropped")) {
            reports++;
            json_t *o = json_loads(F.acked[i].json, 0, NULL);
            CHECK(o);
            reported += (uint64_t)json_integer_value(json_object_get(o, "dropped"));
            CHECK_STR(json_string_value(json_object_get(o, "outcome")), "failure");
            json_decref(o);
        }
    CHECK_EQ(reports, 1);
    CHECK_EQ(reported, (uint64_t)dropped);
    CHECK_EQ(F.n_acked, 1000 - (size_t)dropped + 1);
    audit_actor_stats_t s;
    audit_actor_get_stats(r.args, &s);
    CHECK_EQ(s.dropped_reported, (uint64_t)dropped);
    rig_free(&r);
}

/* The actor stops (a node restart) with records pending: the next start replays them from the
 * spool, with their event ids, before anything new. */
static void test_restart_replays(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA};
    rig_init(&r, 5, &cfg);
    F.down = 1;
    rig_emit(&r, 300, 3, 0);
    rig_run(&r, 1000);
    CHECK(mesh_exec_stop(r.sim, API.actor) == 0);
    rig_run(&r, 100);
    CHECK_EQ(sim_fs_count(r.fs, ".spool", NULL) >= 1, 1);
    F.down = 0;
    rig_start_actor(&r);
    rig_run(&r, 100);
    rig_emit(&r, 100, 3, 300);
    rig_run(&r, 5000);
    CHECK_EQ(F.sinks_made, 2);
    CHECK_EQ(consumer_check(400), 0);
    json_t *st = status(&r);
    CHECK_EQ(json_integer_value(json_object_get(st, "replayed_at_start")), 300);
    json_decref(st);
    rig_free(&r);
}

/* Worker events (a batch from the node): breaker transitions become breaker_* records with the
 * instance, the reason and the transition's time. */
static void test_worker_batch(void)
{
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_KAFKA};
    rig_init(&r, 6, &cfg);
    audit_batch_t *b = malloc(sizeof(*b) + 4 * sizeof(mesh_event_t));
    b->n = 4;
    static const char inst[] = "127.0.0.1:50051";
    const uint8_t to[4] = {MESH_EV_BREAKER_OPEN, MESH_EV_BREAKER_HALF_OPEN, MESH_EV_BREAKER_CLOSED,
                           0};
    for (int i = 0; i < 4; i++) {
        memset(&b->ev[i], 0, sizeof(b->ev[i]));
        b->ev[i].type = i < 3 ? MESH_EV_BREAKER : MESH_EV_STATS;
        b->ev[i].c = 1796146748000000ull + (uint64_t)i * 1000;
        b->ev[i].breaker.instance = inst;
        b->ev[i].breaker.to = to[i];
        snprintf(b->ev[i].breaker.reason, sizeof(b->ev[i].breaker.reason), "reason %d", i);
    }
    CHECK(mesh_exec_send_ptr(r.sim, API.actor, AUDIT_MSG_BATCH, b, free) == 0);
    rig_run(&r, 1000);
    CHECK_EQ(F.n_acked, 3);
    const char *types[3] = {"breaker_open", "breaker_half_open", "breaker_closed"};
    for (int i = 0; i < 3; i++) {
        json_t *o = json_loads(F.acked[i].json, 0, NULL);
        CHECK(o);
        CHECK_STR(json_string_value(json_object_get(o, "type")), types[i]);
        CHECK_STR(json_string_value(json_object_get(o, "instance")), inst);
        char want[16];
        snprintf(want, sizeof(want), "reason %d", i);
        CHECK_STR(json_string_value(json_object_get(o, "reason")), want);
        CHECK(json_is_null(json_object_get(o, "service")));
        CHECK_STR(F.acked[i].key, "");
        CHECK_EQ(F.acked[i].ts_ms, 1796146748000 + i);
        json_decref(o);
    }
    rig_free(&r);
}

/* File mode: one JSON line per record. */
static void test_file(void)
{
    char path[] = "/tmp/meshd-audit-actor-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    rig_t r;
    audit_actor_cfg_t cfg = {.mode = AUDIT_MODE_FILE, .file = {.path = path}};
    rig_init(&r, 7, &cfg);
    rig_emit(&r, 20, 2, 0);
    rig_run(&r, 1000);
    json_t *st = status(&r);
    CHECK_STR(json_string_value(json_object_get(st, "sink")), "file");
    CHECK_EQ(json_integer_value(json_object_get(st, "written")), 20);
    json_decref(st);
    rig_free(&r);
    FILE *f = fopen(path, "r");
    CHECK(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        CHECK(o);
        CHECK_EQ(event_seq(line), n + 1);
        json_decref(o);
        n++;
    }
    fclose(f);
    unlink(path);
    CHECK_EQ(n, 20);
}

/* Audit off: emitting is a counted no-op. */
static void test_off(void)
{
    audit_api_t api;
    char err[100];
    CHECK(audit_api_init(&api, "n", "proxy", err, sizeof(err)) == 0);
    audit_event_t ev = {.type = AUDIT_READINESS_CHANGED};
    CHECK_EQ(audit_emit(NULL, &api, &ev), -1);
    CHECK_EQ(audit_emit(NULL, NULL, &ev), -1);
    CHECK_EQ(atomic_load(&api.off), 1);
}

/* The record format: header, key, JSON; a null service keeps a null (empty) key. */
static void test_record_format(void)
{
    audit_api_t api;
    char err[100];
    CHECK(audit_api_init(&api, "n", "proxy", err, sizeof(err)) == 0);
    audit_event_t ev = {.type = AUDIT_MEMBER_DEAD,
                        .member = "m1",
                        .seq = 7,
                        .ts_us = 1796146748123456,
                        .service = "pkg.S"};
    uint8_t buf[AUDIT_REC_MAX];
    ssize_t n = audit_rec_encode(&api.ctx, &ev, buf, sizeof(buf));
    CHECK(n > 0);
    audit_rec_view_t v;
    CHECK_EQ(audit_rec_parse(buf, (size_t)n, &v), 0);
    CHECK_EQ(v.key_len, 5);
    CHECK(!memcmp(v.key, "pkg.S", 5));
    CHECK_EQ(v.ts_us, 1796146748123456);
    CHECK(v.json[0] == '{' && v.json[v.json_len - 1] == '}');
    ev.service = NULL;
    n = audit_rec_encode(&api.ctx, &ev, buf, sizeof(buf));
    CHECK_EQ(audit_rec_parse(buf, (size_t)n, &v), 0);
    CHECK(v.key == NULL && v.key_len == 0);
    buf[0] = 9; /* an unknown version */
    CHECK_EQ(audit_rec_parse(buf, (size_t)n, &v), -1);
    CHECK_EQ(audit_rec_parse(buf, 3, &v), -1);
    CHECK_EQ(audit_rec_encode(&api.ctx, &ev, buf, 20), AUDIT_E2BIG);
}

int main(void)
{
    RUN(test_record_format);
    RUN(test_off);
    RUN(test_in_order);
    RUN(test_outage);
    RUN(test_failure_rewind);
    RUN(test_full_spool_reports);
    RUN(test_restart_replays);
    RUN(test_worker_batch);
    RUN(test_file);
    return 0;
}
