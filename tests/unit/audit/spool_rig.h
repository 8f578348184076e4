/*
 * tests/unit/audit/spool_rig.h: what the audit spool's unit tests share: a spool over the
 * simulated folder (simulations/sim_fs.h) with a fake clock, a driver that runs the syncs the
 * spool asks for, and records whose bytes are a function of their id (so any record read back
 * can be checked byte for byte).
 */
#ifndef TESTS_AUDIT_SPOOL_RIG_H
#define TESTS_AUDIT_SPOOL_RIG_H

#include <stdint.h>
#include <string.h>

#include "actors/prng.h"
#include "audit/spool.h"
#include "simulations/sim_fs.h"
#include "tests/check.h"

typedef struct rig {
    mesh_prng_t prng;
    sim_fs_t *fs;
    audit_spool_fs_t layer;
    audit_spool_cfg_t cfg;
    audit_spool_t *sp;
    uint64_t now;
} rig_t;

/** Record id's length: 8 to 8 + span - 1 bytes. */
static inline size_t rec_len(uint64_t id, size_t span)
{
    return 8 + (size_t)((id * 7919u) % span);
}

/** Record id's bytes: the id (8 bytes, little endian), then bytes derived from it. */
static inline void rec_fill(uint64_t id, uint8_t *buf, size_t len)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        if (i < 8) {
            buf[i] = (uint8_t)(id >> (8 * i));
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

/** The id of a record read back, or UINT64_MAX when its bytes are not exactly a record's. */
static inline uint64_t rec_check(const uint8_t *p, size_t len, size_t span)
{
    if (len < 8)
        return UINT64_MAX;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id |= (uint64_t)p[i] << (8 * i);
    if (rec_len(id, span) != len)
        return UINT64_MAX;
    uint8_t want[8 + 4096];
    if (len > sizeof(want))
        return UINT64_MAX;
    rec_fill(id, want, len);
    return memcmp(want, p, len) == 0 ? id : UINT64_MAX;
}

#define SPAN 300

static inline void rig_open(rig_t *r)
{
    char err[256] = "";
    r->sp = audit_spool_open(&r->cfg, &r->layer, r->now, err, sizeof(err));
    if (!r->sp)
        fprintf(stderr, "open: %s\n", err);
    CHECK(r->sp != NULL);
}

/** A rig over an empty folder with cfg (NULL: small test defaults); not opened. */
static inline void rig_init(rig_t *r, const audit_spool_cfg_t *cfg)
{
    memset(r, 0, sizeof(*r));
    mesh_prng_seed(&r->prng, 42);
    r->fs = sim_fs_new(&r->prng);
    r->layer = sim_fs_layer(r->fs);
    if (cfg) {
        r->cfg = *cfg;
    } else {
        audit_spool_cfg_default(&r->cfg);
        r->cfg.max_bytes = 1 << 20;
        r->cfg.segment_bytes = 16 << 10;
        r->cfg.max_record = 4096;
        r->cfg.batch_bytes = 2048;
        r->cfg.read_chunk = 1024;
    }
    r->now = 1000;
}

/** Runs every sync the spool asks for, now, successfully unless the folder fails it. */
static inline void rig_syncs(rig_t *r)
{
    audit_spool_sync_t req;
    while (audit_spool_take_sync(r->sp, &req)) {
        int rc = audit_spool_sync_run(r->sp, &req);
        audit_spool_synced(r->sp, &req, rc, r->now);
    }
}

/** Writes the batch and syncs it. */
static inline void rig_settle(rig_t *r)
{
    audit_spool_flush(r->sp, r->now);
    rig_syncs(r);
}

/** Appends record id; returns the append's result, *seq its sequence number. */
static inline audit_spool_result_t rig_append(rig_t *r, uint64_t id, uint64_t *seq)
{
    uint8_t buf[8 + SPAN];
    size_t len = rec_len(id, SPAN);
    rec_fill(id, buf, len);
    return audit_spool_append(r->sp, buf, len, r->now, seq);
}

/** Hands out records into ids[] / seqs[] (at most max); checks each is a record. */
static inline size_t rig_next_all(rig_t *r, uint64_t *ids, uint64_t *seqs, size_t max)
{
    size_t n = 0;
    audit_spool_rec_t rec;
    while (n < max && audit_spool_next(r->sp, &rec)) {
        uint64_t id = rec_check(rec.data, rec.len, SPAN);
        CHECK(id != UINT64_MAX);
        if (ids)
            ids[n] = id;
        if (seqs)
            seqs[n] = rec.seq;
        n++;
    }
    return n;
}

static inline void rig_reopen(rig_t *r)
{
    audit_spool_close(r->sp);
    rig_open(r);
}

static inline void rig_free(rig_t *r)
{
    audit_spool_close(r->sp);
    sim_fs_delete(r->fs);
    r->sp = NULL;
}

/** The name of the i-th segment file in the folder (by number order), or NULL. */
static inline const char *rig_segment(rig_t *r, size_t i, char *buf)
{
    uint64_t nos[256];
    size_t n = 0;
    for (size_t k = 0; sim_fs_name(r->fs, k) && n < 256; k++)
        if (audit_spool_segment_parse(sim_fs_name(r->fs, k), &nos[n]))
            n++;
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (nos[b] < nos[a]) {
                uint64_t t = nos[a];
                nos[a] = nos[b];
                nos[b] = t;
            }
    if (i >= n)
        return NULL;
    audit_spool_segment_name(nos[i], buf);
    return buf;
}

#endif
