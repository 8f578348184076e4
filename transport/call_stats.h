/*
 * transport/call_stats.h: one worker's per-call figures (calls by service, method and gRPC
 * status; a latency histogram, request and response bytes and retries per service; upstream
 * connect failures per instance) and the snapshot the worker hands to the control loop.
 *
 * The table belongs to one worker and is written on its loop thread only, with plain stores:
 * no lock, no atomic, no allocation per call. A service's row is allocated once, when the
 * service is first seen (the proxy caches the row's index in its per-service state, so a routed
 * call finds it without a lookup by name). Label cardinality is bounded: at most
 * MESH_CS_SERVICES services and MESH_CS_METHODS methods per service get a row or column of
 * their own; the rest count under the service or method "other". Which names may take a place
 * is the caller's choice (mesh_cs_service's insert, mesh_cs_method's known list): the proxy
 * gives one to services of its routing table (and, on a sidecar, to the services its app is
 * called with) and to methods in the table's method list (every method for a service whose
 * instances do not list theirs), never to whatever a client writes in :path.
 *
 * The control loop never reads the live table: the worker copies it into a snapshot
 * (mesh_cs_snapshot: one allocation, names included) at most once per report period when it
 * changed, and passes the pointer through its event ring; the control loop merges the workers'
 * latest snapshots (node/call_metrics.h).
 */
#ifndef MESH_CALL_STATS_H
#define MESH_CALL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/prom.h"

#define MESH_CS_SERVICES    128 /* named services per worker (the "other" row on top) */
#define MESH_CS_METHODS     32  /* named methods per service (the "other" column on top) */
#define MESH_CS_INSTANCES   128 /* named upstream instances for connect failures ("other" on top) */
#define MESH_CS_NAME        128 /* longest service name + 1; longer names count as "other" */
#define MESH_CS_METHOD_NAME 64  /* longest method name + 1 */
#define MESH_CS_ADDR        64  /* longest "host:port" + 1 */
#define MESH_CS_CODES       17  /* gRPC status codes 0..16 */
#define MESH_CS_INDEX       256 /* hash buckets of the rows (a power of two, > 2 x rows) */

/** The row (and method column) index of "other". */
#define MESH_CS_OTHER 0

/** One service's figures. Method column MESH_CS_METHODS is "other". */
typedef struct mesh_cs_service {
    char name[MESH_CS_NAME]; /* "other" for row 0 */
    uint32_t name_len;
    uint32_t n_methods;
    uint8_t method_len[MESH_CS_METHODS];
    char methods[MESH_CS_METHODS][MESH_CS_METHOD_NAME];
    uint64_t calls[MESH_CS_METHODS + 1][MESH_CS_CODES];
    uint64_t req_bytes, resp_bytes, retries;
    prom_hist_t latency; /* seconds, over prom_latency_bounds */
} mesh_cs_service_t;

/** Connect failures of one upstream instance. */
typedef struct mesh_cs_instance {
    char addr[MESH_CS_ADDR]; /* "other" for entry 0 */
    uint64_t connect_failures;
} mesh_cs_instance_t;

/** A worker's live table (its loop thread only). */
typedef struct mesh_call_stats {
    mesh_cs_service_t *svc[MESH_CS_SERVICES + 1]; /* [0] is "other"; n_svc in use */
    uint32_t n_svc;
    uint8_t index[MESH_CS_INDEX]; /* open addressing by name hash: row, 0 = empty */
    mesh_cs_instance_t *inst;     /* MESH_CS_INSTANCES + 1 entries, [0] "other" */
    uint32_t n_inst;
    uint64_t gen; /* bumped by every change: a snapshot is due when it moved */
} mesh_call_stats_t;

/** A copy of a table for the control loop: one allocation, free() it. */
typedef struct mesh_cs_snap {
    uint64_t gen;
    uint32_t n_svc, n_inst;
    mesh_cs_instance_t *inst; /* n_inst entries, inside the allocation */
    mesh_cs_service_t svc[];  /* n_svc entries */
} mesh_cs_snap_t;

/** Initializes an empty table (the "other" rows only). 0, or -1 on OOM. */
int mesh_cs_init(mesh_call_stats_t *cs);

/** Frees the table's rows. */
void mesh_cs_free(mesh_call_stats_t *cs);

/**
 * The row of service name (len bytes, not NUL-terminated). A name without a row gets one when
 * insert is nonzero and there is room (the row's one allocation); otherwise, and for names
 * that are empty or too long, MESH_CS_OTHER.
 */
uint32_t mesh_cs_service(mesh_call_stats_t *cs, const char *name, size_t len, int insert);

/**
 * The column of method m (len bytes) in row svc: its own when it has one or gets one (there
 * is room and known is NULL, meaning every method may, or m is in known: n_known sorted,
 * NUL-terminated names), else MESH_CS_METHODS ("other"). Row MESH_CS_OTHER has "other" only.
 */
uint32_t mesh_cs_method(mesh_call_stats_t *cs, uint32_t svc, const char *m, size_t len,
                        const char *const *known, size_t n_known);

/** Counts one finished call: its status (outside 0..16: UNKNOWN), bytes of request and
 *  response DATA, retries, and duration in seconds. */
void mesh_cs_record(mesh_call_stats_t *cs, uint32_t svc, uint32_t method, int code,
                    uint64_t req_bytes, uint64_t resp_bytes, uint32_t retries, double seconds);

/** Counts a failed connection attempt to upstream addr ("host:port"; a new address takes a
 *  place while there is room, else "other"). */
void mesh_cs_connect_failure(mesh_call_stats_t *cs, const char *addr);

/** A snapshot of the table (only the rows in use), or NULL on OOM. */
mesh_cs_snap_t *mesh_cs_snapshot(const mesh_call_stats_t *cs);

#endif
