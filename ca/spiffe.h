/*
 * ca/spiffe.h: SPIFFE IDs of meshd workloads, as strings (no OpenSSL here).
 *
 * A node's certificate names who it is with URI subject alternative names:
 *   spiffe://<trust-domain>/node/<node>      exactly one: the meshd node
 *   spiffe://<trust-domain>/svc/<service>    one per gRPC service the node owns
 *                                            (the full name, "package.Service")
 * A trust domain is 1..255 characters of [a-z0-9._-] (the SPIFFE spec's set); a node or a
 * service name is 1..SPF_NAME_MAX characters of [A-Za-z0-9._-] and neither "." nor "..".
 * These sets are strict on purpose: nothing that could be read as a URI delimiter, a path
 * segment trick or an OpenSSL configuration separator (',' ':') ever reaches a certificate.
 */
#ifndef SPF_SPIFFE_H
#define SPF_SPIFFE_H

#include <stddef.h>

/** Longest trust domain. */
#define SPF_TD_MAX 255
/** Longest node or service name. */
#define SPF_NAME_MAX 128
/** Longest SPIFFE URI meshd writes: "spiffe://" TD "/node/" NAME. */
#define SPF_URI_MAX (9 + SPF_TD_MAX + 6 + SPF_NAME_MAX)

/** What a URI names. */
typedef enum { SPF_KIND_NODE = 1, SPF_KIND_SVC = 2 } spf_kind_t;

/** 1 when td is a valid trust domain, else 0. */
int spf_trust_domain_ok(const char *td);

/** 1 when name is a valid node or service name, else 0. */
int spf_name_ok(const char *name);

/** Writes "spiffe://td/node/name" or ".../svc/name" into out. 0, or -1 when td or name is
 *  invalid or out is too small. */
int spf_format(char *out, size_t outlen, const char *td, spf_kind_t kind, const char *name);

/**
 * Reads a meshd SPIFFE URI of len bytes (not NUL-terminated; untrusted: from a peer's
 * certificate): on success 0 with the trust domain and the name copied (NUL-terminated) and
 * *kind set; -1 when it is not exactly spiffe://TD/node/NAME or spiffe://TD/svc/NAME with valid
 * parts (other SPIFFE IDs are not meshd workloads).
 */
int spf_parse(const char *uri, size_t len, char td[SPF_TD_MAX + 1], spf_kind_t *kind,
              char name[SPF_NAME_MAX + 1]);

#endif
