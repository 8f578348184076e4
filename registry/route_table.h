/*
 * registry/route_table.h: the routing table, an immutable snapshot of
 * (service, method) -> instances, made of immutable services shared between snapshots.
 *
 * A service object (mesh_route_svc_t) holds one service's instances, their methods and every
 * string they use, in one allocation; once built it never changes, and it is reference
 * counted. A table (mesh_routes_t) holds service objects sorted by name, in shared runs. A new
 * table is made from the previous one by mesh_routes_update(), which re-uses every service it
 * is not told about by reference; only changed services are built again (with a
 * mesh_route_svc_builder). So a registry change costs what changed (plus one pointer per run
 * of 32 to 64 services), and two tables share the memory of every service they have in common.
 *
 * The control loop builds tables and publishes them to the workers by pointer; workers read
 * them without locks. A table knows what changed against the one it was made from
 * (mesh_routes_diff()), and a service object has a small id (mesh_routes_index_of()), so a
 * worker keeps per-service state (round-robin position, endpoints) in an array by id and
 * updates only the changed services' state.
 * mesh_route_builder builds a whole table from loose instances (static routes, tests).
 */
#ifndef MESH_ROUTE_TABLE_H
#define MESH_ROUTE_TABLE_H

#include <stddef.h>
#include <stdint.h>

/** Where an instance came from. */
typedef enum {
    MESH_ROUTE_STATIC = 0,
    MESH_ROUTE_ETCD = 1,
    MESH_ROUTE_GOSSIP = 2,
} mesh_route_source_t;

/** One instance of a service: where to send its calls. */
typedef struct mesh_route_instance {
    const char *addr;           /* "host:port" as registered */
    const char *node;           /* node id of the owner, "" when unknown */
    const char *zone;           /* "" when unknown */
    const char *version;        /* release label ("v2", a canary's); "" when unknown */
    const char *const *methods; /* sorted methods this instance serves; NULL when unknown */
    uint32_t n_methods;
    uint32_t weight; /* 1 when unknown; 0: no traffic unless no other instance can take it */
    uint32_t index;  /* position of this instance in its service, 0..n-1 */
    mesh_route_source_t source;
    /* 1: the address is a meshd node's mesh port serving TLS with a mesh identity (its record
     * says so); callers with an identity of their own use mTLS there. 0: unknown, h2c. */
    uint8_t mesh_tls;
} mesh_route_instance_t;

/** A service: its instances (in the order first added) and, when known, its methods. */
typedef struct mesh_route_service {
    const char *name;                       /* "package.Service" */
    const mesh_route_instance_t *instances; /* n_instances entries */
    size_t n_instances;
    /* sorted method names; NULL when unknown (also when one instance does not list its
       methods: that instance may serve any method) */
    const char *const *methods;
    size_t n_methods;
} mesh_route_service_t;

typedef struct mesh_routes mesh_routes_t;
typedef struct mesh_route_svc mesh_route_svc_t;
typedef struct mesh_route_svc_builder mesh_route_svc_builder_t;
typedef struct mesh_route_builder mesh_route_builder_t;

/* ---- service objects ------------------------------------------------------------------------ */

/** A service object's contents (valid as long as the object). */
const mesh_route_service_t *mesh_route_svc_get(const mesh_route_svc_t *s);

/** Takes a reference; safe from any thread. */
mesh_route_svc_t *mesh_route_svc_ref(mesh_route_svc_t *s);

/** Drops a reference; the last one frees the object. Safe from any thread. */
void mesh_route_svc_unref(mesh_route_svc_t *s);

/** Bytes of heap the object holds (for memory accounting). */
size_t mesh_route_svc_memory(const mesh_route_svc_t *s);

/** A reusable builder of service objects (keeps its scratch memory between services). */
mesh_route_svc_builder_t *mesh_route_svc_builder_new(void);
void mesh_route_svc_builder_free(mesh_route_svc_builder_t *b);

/**
 * Adds one instance to the service under construction. The strings (and the methods array)
 * are borrowed until mesh_route_svc_builder_finish(): keep them alive until then. methods
 * (may be NULL: unknown) lists the methods this instance serves; the service's method set is
 * the union over its instances. Adding the same addr again merges the adds into one instance
 * in the place of the first: the later add wins for node, zone, weight and source; its methods
 * are the union of the lists the adds give (unknown only when none gives one; an empty list is
 * a list). Returns 0, or -1 on bad input (empty addr) or out of memory.
 */
int mesh_route_svc_builder_add(mesh_route_svc_builder_t *b, const char *addr,
                               const char *const *methods, size_t n_methods,
                               mesh_route_source_t source, const char *node, const char *zone,
                               uint32_t weight);

/**
 * Sets the release label (`version` of the registration; may be NULL or "": unknown) of the
 * instance added last; borrowed until mesh_route_svc_builder_finish(). When one addr is added
 * more than once the later add's version wins, like node and zone. Returns 0, or -1 when
 * nothing was added yet.
 */
int mesh_route_svc_builder_set_version(mesh_route_svc_builder_t *b, const char *version);

/** Marks the instance added last as a meshd mesh port serving TLS (mesh_route_instance_t's
 *  mesh_tls); like the version, the later add of one addr wins. Returns 0, or -1 when nothing was
 *  added yet. */
int mesh_route_svc_builder_set_mesh_tls(mesh_route_svc_builder_t *b, int mesh_tls);

/** Adds a copy of an instance of another service object (merging sources, version too). */
int mesh_route_svc_builder_add_instance(mesh_route_svc_builder_t *b,
                                        const mesh_route_instance_t *in);

/** Forgets what was added since the last finish. */
void mesh_route_svc_builder_reset(mesh_route_svc_builder_t *b);

/** Instances added since the last finish (before merging equal addresses). */
size_t mesh_route_svc_builder_count(const mesh_route_svc_builder_t *b);

/**
 * Freezes what was added into a service object named name (reference count 1) and empties
 * the builder for the next service. *out is NULL when nothing was added. Returns 0, or -1 on
 * out of memory (the builder is emptied either way).
 */
int mesh_route_svc_builder_finish(mesh_route_svc_builder_t *b, const char *name,
                                  mesh_route_svc_t **out);

/* ---- tables --------------------------------------------------------------------------------- */

/** One change for mesh_routes_update(): the service `name` becomes svc (NULL: removed). */
typedef struct mesh_route_edit {
    const char *name;      /* borrowed during the call; may be NULL when svc is set */
    mesh_route_svc_t *svc; /* the call takes over this reference */
} mesh_route_edit_t;

/**
 * A new table (reference count 1): base (NULL: the empty table) with the edits applied; every
 * other service of base is shared by reference (whole runs of services at once). Edits are
 * sorted in place; names should be unique (of equal names one wins). Costs O(edits log edits)
 * plus O(services / 32) pointer copies. The new table remembers its edits against base (see
 * mesh_routes_diff()). Returns NULL on out of memory; the edits' references are consumed
 * either way.
 */
mesh_routes_t *mesh_routes_update(const mesh_routes_t *base, mesh_route_edit_t *edits,
                                  size_t n_edits);

/**
 * Calls cb for every service whose object differs between tables a and b (either may be
 * NULL): before or after is NULL when the service is only in one of them. When b was made
 * from a by mesh_routes_update() this reads b's log (O(changes)); otherwise it walks both
 * tables in name order comparing objects by pointer. Returns the number of differences.
 */
typedef void (*mesh_routes_diff_cb)(void *ud, const char *name, const mesh_route_svc_t *before,
                                    const mesh_route_svc_t *after);
size_t mesh_routes_diff(const mesh_routes_t *a, const mesh_routes_t *b, mesh_routes_diff_cb cb,
                        void *ud);

/** Takes a reference; safe from any thread. */
mesh_routes_t *mesh_routes_ref(mesh_routes_t *t);

/** Drops a reference; the last one frees the table (and its share of the services). */
void mesh_routes_unref(mesh_routes_t *t);

/** Result of a lookup by gRPC path. */
typedef enum {
    MESH_ROUTE_FOUND = 0,      /* service known and serves the method (or methods unknown) */
    MESH_ROUTE_NO_SERVICE = 1, /* no such service */
    MESH_ROUTE_NO_METHOD = 2,  /* service known, method not among its known methods */
    MESH_ROUTE_BAD_PATH = 3,   /* not of the form /package.Service/Method */
} mesh_route_status_t;

/**
 * Looks up a gRPC request path ("/package.Service/Method", not NUL-terminated). On
 * MESH_ROUTE_FOUND *out is the service; it lives as long as the table. No allocation, no lock.
 */
mesh_route_status_t mesh_routes_lookup(const mesh_routes_t *t, const char *path, size_t len,
                                       const mesh_route_service_t **out);

int mesh_route_instance_lists(const mesh_route_instance_t *in, const char *method, size_t len);

/**
 * Whether an instance serves a method (len bytes, not NUL-terminated): 1 when it listed the
 * method (mesh_route_instance_lists: a binary search) or did not list its methods at all, else
 * 0. During a rolling update the instances of one service may serve different methods; the
 * proxy sends a call only to those that serve it. The balancer asks it of every candidate of
 * every call: inline.
 */
static inline int mesh_route_instance_serves(const mesh_route_instance_t *in, const char *method,
                                             size_t len)
{
    return !in->methods || mesh_route_instance_lists(in, method, len);
}

/** Looks up a service by name (NUL-terminated); NULL when absent. */
const mesh_route_service_t *mesh_routes_service(const mesh_routes_t *t, const char *name);

/** The object of the service named name (NUL-terminated); NULL when absent. */
mesh_route_svc_t *mesh_routes_find(const mesh_routes_t *t, const char *name);

/** Number of services, and the i-th in name order (for listings). */
size_t mesh_routes_count(const mesh_routes_t *t);
const mesh_route_service_t *mesh_routes_at(const mesh_routes_t *t, size_t i);

/**
 * The object of the i-th service in name order (NULL past the end; O(log services)). Two tables
 * hold the same object for a service exactly when the service did not change between them.
 */
mesh_route_svc_t *mesh_routes_svc_at(const mesh_routes_t *t, size_t i);

/**
 * The index of a service returned by a table's lookups: the id of its object, small and
 * unique among live service objects (not its position), so callers keep per-service state
 * (round-robin counters, endpoints) in an array indexed by it, valid across every table that
 * holds the object. O(1).
 */
size_t mesh_routes_index_of(const mesh_routes_t *t, const mesh_route_service_t *s);

/** An upper bound of every index mesh_routes_index_of() returns at this moment. */
size_t mesh_routes_index_bound(void);

/**
 * How many services t changed against parent when t was made from parent by
 * mesh_routes_update() (then mesh_routes_diff(parent, t) costs only that); (size_t)-1 when t
 * was not made from parent.
 */
size_t mesh_routes_changes(const mesh_routes_t *t, const mesh_routes_t *parent);

/** Bytes of heap the table itself holds (root, leaves and log, not the services). */
size_t mesh_routes_memory(const mesh_routes_t *t);

/* ---- building a whole table from loose instances -------------------------------------------- */

/** Starts an empty table. */
mesh_route_builder_t *mesh_route_builder_new(void);

/**
 * Adds one instance of service at addr (strings are copied). Same merging rules as
 * mesh_route_svc_builder_add(). Returns 0, or -1 on bad input (empty service or addr) or out
 * of memory.
 */
int mesh_route_builder_add(mesh_route_builder_t *b, const char *service, const char *addr,
                           const char *const *methods, size_t n_methods, mesh_route_source_t source,
                           const char *node, const char *zone, uint32_t weight);

/** Sets the release label of the instance added last (copied; NULL or "": unknown). Returns
 * 0, or -1 when nothing was added yet or out of memory. */
int mesh_route_builder_set_version(mesh_route_builder_t *b, const char *version);

/** Marks the instance added last as a meshd mesh port serving TLS. Returns 0, or -1 when nothing
 *  was added yet. */
int mesh_route_builder_set_mesh_tls(mesh_route_builder_t *b, int mesh_tls);

/** Freezes the builder into a table (reference count 1) and frees the builder. */
mesh_routes_t *mesh_route_builder_finish(mesh_route_builder_t *b);

/** Discards a builder that will not be finished. */
void mesh_route_builder_free(mesh_route_builder_t *b);

#endif
