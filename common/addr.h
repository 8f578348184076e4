/*
 * common/addr.h: "host:port" addresses: parsing, resolving and formatting.
 *
 * Accepts "1.2.3.4:80", "[::1]:80", "localhost:80" and ":80" (all interfaces). Resolution is
 * numeric first and falls back to the resolver (blocking: for start-up and config checks, not
 * for the data plane).
 */
#ifndef MESH_ADDR_H
#define MESH_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/** Splits "host:port" into host (without brackets) and port; returns 0 or -1 when malformed. */
int mesh_addr_split(const char *s, char *host, size_t hostlen, int *port);

/** Resolves "host:port" into a socket address; returns 0 or -1 (err says why). */
int mesh_addr_resolve(const char *s, struct sockaddr_storage *out, char *err, size_t errlen);

/** Formats a socket address as "host:port" ("[v6]:port" for IPv6). */
void mesh_addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
