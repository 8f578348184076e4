/*
 * grpc/descriptors.h: a pool of protobuf file descriptors and the service model built
 * from it.
 *
 * The sidecar learns the local app's API from serialized FileDescriptorProtos (as gRPC server
 * reflection returns them: each answer carries a file and often its dependencies again, so
 * duplicates are expected) or from a FileDescriptorSet file (`protoc --descriptor_set_out
 * --include_imports`). The pool keeps every file (the HTTP/JSON transcoder needs the message
 * definitions) and builds a model: services -> methods, each with its call kind and its input
 * and output message types. Bad input yields -1 and an error string, never a crash.
 *
 * Building is a startup-time job: the pool allocates freely; lookups afterwards do not.
 */
#ifndef MESH_DESCRIPTORS_H
#define MESH_DESCRIPTORS_H

#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/descriptor.pb-c.h"

/** How a gRPC method streams. */
typedef enum {
    MESH_CALL_UNARY = 0,
    MESH_CALL_SERVER_STREAMING = 1,
    MESH_CALL_CLIENT_STREAMING = 2,
    MESH_CALL_BIDI = 3,
} mesh_call_kind_t;

/** One method of a service; strings are owned by the pool. */
typedef struct {
    /** Short name ("SayHello"). */
    const char *name;
    /** The gRPC path ("/demo.v1.Greeter/SayHello"). */
    const char *path;
    /** Fully qualified input message type, without the leading dot ("demo.v1.HelloRequest"). */
    const char *input_type;
    /** Fully qualified output message type, without the leading dot. */
    const char *output_type;
    mesh_call_kind_t kind;
    /** The method's descriptor, inside the pool's files. */
    const Google__Protobuf__MethodDescriptorProto *proto;
} mesh_desc_method_t;

/** One service; strings are owned by the pool. */
typedef struct {
    /** Fully qualified name ("demo.v1.Greeter"). */
    const char *name;
    /** Name of the file that defines it ("demo/v1/greeter.proto"). */
    const char *file;
    mesh_desc_method_t *methods;
    size_t n_methods;
} mesh_desc_service_t;

/** A pool of files and the model built from them. */
typedef struct mesh_desc_pool mesh_desc_pool_t;

/** A new empty pool, or NULL when out of memory. */
mesh_desc_pool_t *mesh_desc_pool_new(void);

/** Frees the pool, its files and its model. */
void mesh_desc_pool_free(mesh_desc_pool_t *p);

/** Adds one serialized FileDescriptorProto. Returns 0 when added, 1 when a file of that name
 * is already in the pool (the new copy is dropped), -1 on bad input (see
 * mesh_desc_pool_error()). */
int mesh_desc_pool_add_file(mesh_desc_pool_t *p, const uint8_t *data, size_t len);

/** Adds every file of a serialized FileDescriptorSet. Returns the number of new files, or -1. */
int mesh_desc_pool_add_set(mesh_desc_pool_t *p, const uint8_t *data, size_t len);

/** Reads a FileDescriptorSet file and adds its files. Returns the number of new files, or -1. */
int mesh_desc_pool_load_set_file(mesh_desc_pool_t *p, const char *path);

/** Number of files in the pool. */
size_t mesh_desc_pool_file_count(const mesh_desc_pool_t *p);

/** The i-th file (in the order added). */
const Google__Protobuf__FileDescriptorProto *mesh_desc_pool_file(const mesh_desc_pool_t *p,
                                                                 size_t i);

/** The file named name, or NULL. */
const Google__Protobuf__FileDescriptorProto *mesh_desc_pool_find_file(const mesh_desc_pool_t *p,
                                                                      const char *name);

/** Writes into out (up to cap names, borrowed from the pool) the names of files that files in
 * the pool import but the pool lacks, each once. Returns how many are missing; when that exceeds
 * cap the count is an upper bound (names past cap are not deduplicated). */
size_t mesh_desc_pool_missing_deps(const mesh_desc_pool_t *p, const char **out, size_t cap);

/** Builds the service model. With only == NULL every service of every file is modelled;
 * otherwise just the n_only named services (a named service not found is an error).
 * Method input/output types must resolve to messages in the pool. Replaces an earlier model.
 * Returns 0, or -1 with the error string set. */
int mesh_desc_pool_build(mesh_desc_pool_t *p, const char *const *only, size_t n_only);

/** Number of services in the model. */
size_t mesh_desc_pool_service_count(const mesh_desc_pool_t *p);

/** The i-th service of the model (sorted by name). */
const mesh_desc_service_t *mesh_desc_pool_service(const mesh_desc_pool_t *p, size_t i);

/** The service with that fully qualified name, or NULL. */
const mesh_desc_service_t *mesh_desc_pool_find_service(const mesh_desc_pool_t *p, const char *name);

/** The method for a gRPC path ("/pkg.Svc/Method"), or NULL. */
const mesh_desc_method_t *mesh_desc_pool_find_method(const mesh_desc_pool_t *p, const char *path);

/** The message type with that fully qualified name (with or without the leading dot,
 * nested types as "pkg.Outer.Inner"), or NULL. */
const Google__Protobuf__DescriptorProto *mesh_desc_pool_find_message(const mesh_desc_pool_t *p,
                                                                     const char *name);

/** The last error, "" if none. */
const char *mesh_desc_pool_error(const mesh_desc_pool_t *p);

/** The name of a call kind: "unary", "server_streaming", "client_streaming", "bidi". */
const char *mesh_call_kind_name(mesh_call_kind_t kind);

#endif
