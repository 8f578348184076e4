/*
 * common/addr.h: "host:port" addresses: the one place that parses, resolves, formats and
 * compares them.
 *
 * Accepted forms: "1.2.3.4:80", "[::1]:80", "name:80", and ":80" (all interfaces, where a
 * listen address is meant). A bare IPv6 address without brackets ("::1:80") is refused
 * everywhere: its port cannot be told from its last group. mesh_addr_parse is numeric only
 * (what the I/O seams take); mesh_addr_resolve falls back to the system resolver and blocks,
 * so it is for start-up and config checks, never a data-plane loop.
 */
#ifndef MESH_ADDR_H
#define MESH_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/** A socket address (IPv4 or IPv6) with its length. */
typedef struct mesh_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} mesh_addr_t;

/** Splits "host:port" into host (without brackets) and port; returns 0 or -1 when malformed. */
int mesh_addr_split(const char *s, char *host, size_t hostlen, int *port);

/** Resolves "host:port" into a socket address (blocking resolver after numeric forms); returns
 *  0 or -1 (err says why). */
int mesh_addr_resolve(const char *s, struct sockaddr_storage *out, char *err, size_t errlen);

/** Resolves "host:port" into every address the name has (a Kubernetes headless service lists
 *  one per pod), without duplicates, at most cap of them, in the resolver's order; a numeric
 *  form gives one. Returns how many (at least 1), or -1 (err says why). Blocking. */
int mesh_addr_resolve_all(const char *s, struct sockaddr_storage *out, size_t cap, char *err,
                          size_t errlen);

/** Formats a socket address as "host:port" ("[v6]:port" for IPv6). */
void mesh_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/** Parses a numeric "1.2.3.4:80" or "[::1]:80" (no resolver); returns 0 or -1. */
int mesh_addr_parse(const char *hostport, mesh_addr_t *out);

/** Formats as "host:port" into buf; returns 0 or -1 when it does not fit. */
int mesh_addr_str(const mesh_addr_t *a, char *buf, size_t n);

/** Nonzero when a and b are the same address and port. */
int mesh_addr_equal(const mesh_addr_t *a, const mesh_addr_t *b);

/** Nonzero when a and b have the same host (port ignored). */
int mesh_addr_same_host(const mesh_addr_t *a, const mesh_addr_t *b);

#endif
