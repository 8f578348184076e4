/*
 * registry/route_table.h: the routing table, an immutable snapshot of
 * (service, method) -> instances.
 *
 * The control loop builds a table with a mesh_route_builder from every source (static routes,
 * the etcd view, later gossip), then publishes it to the workers by pointer; a table never
 * changes after mesh_route_builder_finish(), so workers read it without locks. Tables are
 * reference counted: a worker holds its current table and drops it when a newer one arrives.
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
    const char *addr; /* "host:port" as registered */
    const char *node; /* node id of the owner, "" when unknown */
    const char *zone; /* "" when unknown */
    uint32_t weight;  /* 1 when unknown */
    mesh_route_source_t source;
    uint32_t index;             /* position of this instance in its service, 0..n-1 */
    const char *const *methods; /* sorted methods this instance serves; NULL when unknown */
    size_t n_methods;
} mesh_route_instance_t;

/** A service: its instances and, when known, the methods it serves. */
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
typedef struct mesh_route_builder mesh_route_builder_t;

/** Starts an empty table. */
mesh_route_builder_t *mesh_route_builder_new(void);

/**
 * Adds one instance of service at addr. methods (may be NULL) lists the methods this instance
 * serves; a service's method set is the union over its instances. Adding the same
 * (service, addr) twice merges the two (the later source wins, also for the instance's own
 * method list). Returns 0, or -1 on bad input (empty service or addr) or out of memory.
 */
int mesh_route_builder_add(mesh_route_builder_t *b, const char *service, const char *addr,
                           const char *const *methods, size_t n_methods, mesh_route_source_t source,
                           const char *node, const char *zone, uint32_t weight);

/** Freezes the builder into a table (reference count 1) and frees the builder. */
mesh_routes_t *mesh_route_builder_finish(mesh_route_builder_t *b);

/** Discards a builder that will not be finished. */
void mesh_route_builder_free(mesh_route_builder_t *b);

/** Takes a reference; safe from any thread. */
mesh_routes_t *mesh_routes_ref(mesh_routes_t *t);

/** Drops a reference; the last one frees the table. Safe from any thread. */
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
 * MESH_ROUTE_FOUND *out is the service; it lives as long as the table.
 */
mesh_route_status_t mesh_routes_lookup(const mesh_routes_t *t, const char *path, size_t len,
                                       const mesh_route_service_t **out);

/**
 * Whether an instance serves a method (len bytes, not NUL-terminated): 1 when it listed the
 * method or did not list its methods at all, else 0. During a rolling update the instances of
 * one service may serve different methods; the proxy sends a call only to those that serve it.
 */
int mesh_route_instance_serves(const mesh_route_instance_t *in, const char *method, size_t len);

/** Looks up a service by name (NUL-terminated); NULL when absent. */
const mesh_route_service_t *mesh_routes_service(const mesh_routes_t *t, const char *name);

/** Number of services, and the i-th in name order (for listings). */
size_t mesh_routes_count(const mesh_routes_t *t);
const mesh_route_service_t *mesh_routes_at(const mesh_routes_t *t, size_t i);

/**
 * The position (0..count-1) of a service returned by this table's lookups, so callers can
 * keep per-service state (round-robin counters) in an array beside the table.
 */
size_t mesh_routes_index_of(const mesh_routes_t *t, const mesh_route_service_t *s);

#endif
