/*
 * transport/grpc_timeout.h: the grpc-timeout header ("TimeoutValue TimeoutUnit": at most 8
 * ASCII digits followed by one of H M S m u n).
 */
#ifndef MESH_GRPC_TIMEOUT_H
#define MESH_GRPC_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/** Longest formatted grpc-timeout value plus NUL. */
#define MESH_GRPC_TIMEOUT_MAX_LEN 10

/** Parses a grpc-timeout value (not NUL-terminated) into nanoseconds; 0 or -1 if invalid. */
int mesh_grpc_timeout_parse(const char *v, size_t len, uint64_t *out_ns);

/**
 * Formats ns as a grpc-timeout value into out (at least MESH_GRPC_TIMEOUT_MAX_LEN bytes),
 * choosing the finest unit whose value fits in 8 digits and rounding up so a deadline never
 * shrinks to zero. Returns the length.
 */
size_t mesh_grpc_timeout_format(uint64_t ns, char *out);

#endif
