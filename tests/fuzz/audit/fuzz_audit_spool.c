/*
 * tests/fuzz/audit/fuzz_audit_spool.c: libFuzzer harness over the audit spool's replay path
 * (audit/spool.h): arbitrary bytes become segment files in a simulated folder
 * (simulations/sim_fs.h), the spool opens it and hands out what it replays.
 *
 * The first byte picks the shape of the rest:
 *   bit 0 clear: raw files: the rest is cut into 1-3 files (sizes from two bytes), each
 *                optionally given a valid segment header (bit 3) so the frames behind it count;
 *   bit 0 set:   built files: a program of operations: append a record (a valid frame around
 *                the next bytes), start the next file, flip a byte, cut the file, append zeros,
 *                overwrite a length field; so the fuzzer starts from valid frames and breaks them.
 *   bits 1-2: the number of files less one; bits 4-5: read chunk (tiny to large); bit 6: the
 *   last file name is not a segment's (ignored); bit 7: drop-oldest.
 * Checked besides "no crash, no leak, no read out of bounds":
 *   - what the spool replays is exactly what an independent reader (written here, with a
 *     bitwise CRC-32C) finds: per file in number order, the valid frames up to the first bad
 *     one; so no record whose CRC fails is ever handed out, and none that is good is lost;
 *   - the replay count matches, the last file is cut where its valid frames end, and the
 *     spool keeps working: new records append, come back, and acknowledging everything leaves
 *     only the segment being written.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/prng.h"
#include "audit/spool.h"
#include "common/log.h"
#include "simulations/sim_fs.h"

#define MAX_FILE (64u * 1024u)

static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct file {
    uint8_t b[MAX_FILE];
    size_t n;
    uint64_t no;
} file_t;

static file_t files[3];

static void put_header(file_t *f)
{
    uint8_t *h = f->b;
    memset(h, 0, 32);
    memcpy(h, "MSHDSPL\n", 8);
    wr32(h + 8, 1);
    wr32(h + 12, 32);
    wr32(h + 16, (uint32_t)f->no);
    wr32(h + 20, (uint32_t)(f->no >> 32));
    wr32(h + 28, crc_ref(0, h, 28));
    f->n = 32;
}

static void put_frame(file_t *f, const uint8_t *p, size_t len)
{
    if (f->n + 8 + len > MAX_FILE)
        return;
    uint8_t *fr = f->b + f->n;
    wr32(fr, (uint32_t)len);
    memcpy(fr + 8, p, len);
    wr32(fr + 4, crc_ref(crc_ref(0, fr, 4), fr + 8, len));
    f->n += 8 + len;
}

/* The independent reader: the valid frames of a file, up to the first bad one. Returns the
 * count and where they end (0 when the header is bad). */
typedef struct ref_rec {
    const uint8_t *p;
    uint32_t len;
} ref_rec_t;

static size_t ref_read(const file_t *f, ref_rec_t *out, size_t max, size_t *end)
{
    *end = 0;
    const uint8_t *h = f->b;
    if (f->n < 32 || memcmp(h, "MSHDSPL\n", 8) != 0 || rd32(h + 8) != 1 || rd32(h + 12) != 32 ||
        rd32(h + 16) != (uint32_t)f->no || rd32(h + 20) != (uint32_t)(f->no >> 32) ||
        rd32(h + 28) != crc_ref(0, h, 28))
        return 0;
    size_t off = 32, k = 0;
    while (off + 8 <= f->n) {
        uint32_t len = rd32(f->b + off);
        if (len == 0 || len > AUDIT_SPOOL_RECORD_MAX || off + 8 + len > f->n)
            break;
        if (crc_ref(crc_ref(0, f->b + off, 4), f->b + off + 8, len) != rd32(f->b + off + 4))
            break;
        if (k < max)
            out[k] = (ref_rec_t){f->b + off + 8, len};
        k++;
        off += 8 + len;
    }
    *end = off;
    return k;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_audit_spool: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        mesh_log_init("fuzz", MESH_LOG_OFF, MESH_LOG_FORMAT_TEXT);
        inited = 1;
    }
    if (size < 3 || size > 3 * MAX_FILE)
        return 0;
    uint8_t mode = data[0];
    int nfiles = 1 + (mode >> 1) % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    for (int i = 0; i < 3; i++) {
        files[i].n = 0;
        files[i].no = (uint64_t)i + 1 + (i == 2 ? (uint64_t)p[0] << 32 : 0);
    }
    if (!(mode & 1)) {
        /* raw files */
        size_t cut1 = n * p[0] / 256, cut2 = cut1 + (n - cut1) * p[1] / 256;
        size_t bounds[4] = {2, nfiles > 1 ? cut1 : n, nfiles > 2 ? cut2 : n, n};
        if (bounds[1] < 2)
            bounds[1] = 2;
        if (bounds[2] < bounds[1])
            bounds[2] = bounds[1];
        for (int i = 0; i < nfiles; i++) {
            size_t a = bounds[i], b = i + 1 == nfiles ? n : bounds[i + 1];
            if (mode & 8)
                put_header(&files[i]);
            size_t len = b - a;
            if (files[i].n + len > MAX_FILE)
                len = MAX_FILE - files[i].n;
            memcpy(files[i].b + files[i].n, p + a, len);
            files[i].n += len;
        }
    } else {
        /* built files: a program */
        int cur = 0;
        for (int i = 0; i < 3; i++)
            put_header(&files[i]);
        size_t i = 1;
        while (i < n) {
            uint8_t op = p[i++];
            file_t *f = &files[cur];
            switch (op % 8) {
            case 0:
            case 1:
            case 2: { /* a record of the next (op / 8) + 1 bytes */
                size_t len = (size_t)(op >> 3) + 1;
                if (len > n - i)
                    len = n - i;
                if (len)
                    put_frame(f, p + i, len);
                i += len;
                break;
            }
            case 3: /* next file */
                if (cur + 1 < nfiles)
                    cur++;
                break;
            case 4: { /* flip a byte */
                if (i + 2 > n)
                    break;
                size_t at = ((size_t)p[i] << 8 | p[i + 1]) % (f->n ? f->n : 1);
                if (f->n)
                    f->b[at] ^= (uint8_t)(op | 1);
                i += 2;
                break;
            }
            case 5: { /* cut */
                if (i + 2 > n)
                    break;
                size_t at = (size_t)p[i] << 8 | p[i + 1];
                if (at < f->n)
                    f->n = at;
                i += 2;
                break;
            }
            case 6: { /* zeros */
                size_t z = (size_t)(op >> 3) * 4;
                if (f->n + z <= MAX_FILE) {
                    memset(f->b + f->n, 0, z);
                    f->n += z;
                }
                break;
            }
            case 7: { /* a length field that lies: a frame header with no payload behind it */
                if (i + 4 > n || f->n + 8 > MAX_FILE)
                    break;
                memcpy(f->b + f->n, p + i, 4);
                memset(f->b + f->n + 4, 0, 4);
                f->n += 8;
                i += 4;
                break;
            }
            }
        }
    }

    mesh_prng_t prng;
    mesh_prng_seed(&prng, 1);
    sim_fs_t *fs = sim_fs_new(&prng);
    char name[AUDIT_SPOOL_NAME_LEN + 1];
    for (int i = 0; i < nfiles; i++) {
        audit_spool_segment_name(files[i].no, name);
        if (i + 1 == nfiles && (mode & 64))
            name[3] = 'x'; /* not a segment name: ignored */
        sim_fs_put(fs, name, files[i].b, files[i].n);
    }
    int last = (mode & 64) ? nfiles - 2 : nfiles - 1; /* the last segment file */

    audit_spool_cfg_t cfg;
    audit_spool_cfg_default(&cfg);
    cfg.max_bytes = 16u << 20;
    cfg.segment_bytes = 64u << 10;
    cfg.max_record = 64u << 10;
    cfg.read_chunk = (uint32_t)(16u << (4 * ((mode >> 4) & 3)));
    cfg.policy = mode & 128 ? AUDIT_SPOOL_DROP_OLDEST : AUDIT_SPOOL_DROP_NEWEST;
    audit_spool_fs_t layer = sim_fs_layer(fs);
    char err[256];
    audit_spool_t *sp = audit_spool_open(&cfg, &layer, 0, err, sizeof(err));
    check(sp != NULL, "open failed");

    /* What the independent reader expects, file by file in number order. */
    static ref_rec_t want[3][MAX_FILE / 9 + 1];
    size_t nwant[3] = {0}, ends[3] = {0}, total = 0;
    for (int i = 0; i <= last; i++) {
        nwant[i] = ref_read(&files[i], want[i], MAX_FILE / 9 + 1, &ends[i]);
        total += nwant[i];
    }
    const audit_spool_stats_t *st = audit_spool_stats(sp);
    check(st->replayed == total, "replay count differs from the reference reader");
    /* The last segment is cut where its valid frames end (or deleted when it has none). */
    if (last >= 0) {
        size_t len = 0;
        audit_spool_segment_name(files[last].no, name);
        const uint8_t *f = sim_fs_get(fs, name, &len);
        if (nwant[last])
            check(f && len == ends[last], "the last segment was not cut at its valid end");
        else
            check(!f, "a segment without a valid record was kept");
    }
    audit_spool_rec_t rec;
    uint64_t got = 0;
    for (int i = 0; i <= last; i++)
        for (size_t k = 0; k < nwant[i]; k++) {
            check(audit_spool_next(sp, &rec) == 1, "a valid record was not replayed");
            check(rec.len == want[i][k].len && memcmp(rec.data, want[i][k].p, rec.len) == 0,
                  "a replayed record differs from the file's");
            got++;
            audit_spool_ack(sp, rec.seq);
        }
    check(audit_spool_next(sp, &rec) == 0, "a record the reference reader rejects was replayed");
    check(st->segments == 0, "acknowledged segments were kept");
    /* It keeps working. */
    uint8_t rec_bytes[100];
    memset(rec_bytes, 0xA5, sizeof(rec_bytes));
    for (int i = 0; i < 5; i++)
        check(audit_spool_append(sp, rec_bytes, sizeof(rec_bytes), 0, NULL) == AUDIT_SPOOL_OK,
              "append failed after replay");
    for (int i = 0; i < 5; i++) {
        check(audit_spool_next(sp, &rec) == 1 && rec.len == 100, "a new record was not handed out");
        audit_spool_ack(sp, rec.seq);
    }
    check(st->pending == 0, "records pending after acknowledging everything");
    audit_spool_close(sp);
    sim_fs_delete(fs);
    (void)got;
    return 0;
}
