/*
 * grpc/reflect_server.h: the answering side of gRPC server reflection, sans-I/O (the mesh
 * entry's aggregated reflection; grpc/reflection.h is the asking side).
 *
 * grpc.reflection.v1 and v1alpha share one wire format, so one decoder serves both. A
 * ServerReflectionRequest (untrusted bytes) is answered with a ServerReflectionResponse from an
 * index: an immutable, reference-counted snapshot built on the control loop from a descriptor
 * pool (grpc/descriptors.h) and handed to the worker threads, which answer from it without
 * crossing threads. The index holds each file's serialized bytes and its dependencies (the
 * pool's files, plus health.proto and both reflection.proto, embedded at build time, so the
 * services the entry serves itself are described too), every package-qualified symbol
 * (messages, nested messages, enums, enum values, fields, oneofs, extensions, services,
 * methods) and the extensions by (extended type, number).
 *
 *   list_services                  the caller's service names (the routing table) plus
 *                                  grpc.health.v1.Health and both reflection services, sorted,
 *                                  each once
 *   file_containing_symbol         the file defining the symbol, then the files it imports,
 *   file_by_filename               transitively, each once (as grpc's own servers answer)
 *   file_containing_extension      (extended type, field number) -> its file and imports
 *   all_extension_numbers_of_type  every extension number of a message type
 *
 * What the index does not know is an error_response (NOT_FOUND with the name asked for).
 * Two more cases keep answers honest:
 *   - pending: services of the routing table whose descriptors the index lacks (the caller
 *     names them: mesh_rsrv_index_has_service() tells). A lookup that fails for a symbol in
 *     such a service's package (or under its name), or a file name while any is pending, is a
 *     HOLD when the caller may still wait (the next snapshot may bring it), else NOT_FOUND
 *     saying the descriptors are not fetched yet.
 *   - conflicts: file names that two sources carry with different content and that no release
 *     label decides. An answer that would include such a file is a FAILED_PRECONDITION
 *     error_response naming the file and the sources, never a mixed answer.
 */
#ifndef MESH_REFLECT_SERVER_H
#define MESH_REFLECT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "grpc/descriptors.h"

/** gRPC status codes an error_response carries. */
#define MESH_RSRV_NOT_FOUND           5
#define MESH_RSRV_INVALID_ARGUMENT    3
#define MESH_RSRV_FAILED_PRECONDITION 9
#define MESH_RSRV_UNIMPLEMENTED       12

/** The services list_services always names besides the caller's. */
#define MESH_RSRV_HEALTH_SERVICE  "grpc.health.v1.Health"
#define MESH_RSRV_V1_SERVICE      "grpc.reflection.v1.ServerReflection"
#define MESH_RSRV_V1ALPHA_SERVICE "grpc.reflection.v1alpha.ServerReflection"

typedef struct mesh_rsrv_index mesh_rsrv_index_t;

/**
 * A new index (one reference) of every file of pool (only read: the index copies what it
 * needs, the pool may be freed afterwards; NULL: an empty index). generation is the caller's
 * label of the snapshot. NULL when out of memory or a file cannot be serialized.
 */
mesh_rsrv_index_t *mesh_rsrv_index_new(const mesh_desc_pool_t *pool, uint64_t generation);

/** Marks service (fully qualified) as one whose descriptors cannot be fetched (its instances
 *  serve no reflection): it is never pending, and a miss under it says so (why, copied).
 *  0, or -1 when out of memory. Before the index is shared. */
int mesh_rsrv_index_add_unfetchable(mesh_rsrv_index_t *ix, const char *service, const char *why);

/** 1 when the index describes service (fully qualified) or knows it cannot (unfetchable); 0
 *  when a routed service of that name is pending. ix may be NULL. */
int mesh_rsrv_index_has_service(const mesh_rsrv_index_t *ix, const char *service);

/** Marks the file named file as conflicting; message (copied) says why. A file not in the index
 *  is ignored. 0, or -1 when out of memory. Before the index is shared. */
int mesh_rsrv_index_add_conflict(mesh_rsrv_index_t *ix, const char *file, const char *message);

/** Takes a reference; any thread. */
mesh_rsrv_index_t *mesh_rsrv_index_ref(mesh_rsrv_index_t *ix);

/** Drops a reference (NULL is fine); the last one frees the index. Any thread. */
void mesh_rsrv_index_unref(mesh_rsrv_index_t *ix);

/** The generation given at creation. */
uint64_t mesh_rsrv_index_generation(const mesh_rsrv_index_t *ix);

/** Files and symbols in the index (for logs and tests). */
size_t mesh_rsrv_index_files(const mesh_rsrv_index_t *ix);
size_t mesh_rsrv_index_symbols(const mesh_rsrv_index_t *ix);

/** What mesh_rsrv_answer() produced. */
typedef enum {
    MESH_RSRV_ANSWER = 0, /* *out holds a serialized ServerReflectionResponse */
    MESH_RSRV_HOLD = 1,   /* not known yet but pending: ask again with a newer index */
    MESH_RSRV_BAD = 2,    /* not a ServerReflectionRequest: err says why; end the stream */
} mesh_rsrv_result_t;

/**
 * Answers one serialized ServerReflectionRequest (req/len: untrusted) from ix (NULL: nothing
 * known). services/n_services name the routed services for list_services, pending/n_pending
 * those of them the index lacks (all borrowed). may_hold nonzero allows HOLD; zero turns a
 * pending miss into NOT_FOUND. On ANSWER *out is a malloc'd
 * buffer of *out_len bytes that the caller frees. err (errcap bytes) gets the reason of BAD.
 * Out of memory is BAD with that reason.
 */
mesh_rsrv_result_t mesh_rsrv_answer(const mesh_rsrv_index_t *ix, const char *const *services,
                                    size_t n_services, const char *const *pending, size_t n_pending,
                                    int may_hold, const uint8_t *req, size_t len, uint8_t **out,
                                    size_t *out_len, char *err, size_t errcap);

#endif
