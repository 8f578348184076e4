/*
 * ca/peer_identity.h: the workload identity a peer's certificate proves: its URI SANs read as
 * meshd SPIFFE IDs (ca/spiffe.h), for the policy chain (allow/deny rules naming identities)
 * once mTLS carries node-to-node calls.
 *
 * Rules: exactly one spiffe://TD/node/NAME; any number of spiffe://TD/svc/NAME; every meshd ID
 * in the same trust domain, and that one when the caller names it; URIs that are not meshd
 * SPIFFE IDs (other schemes, other SPIFFE paths) are ignored. Anything else (no node ID, two,
 * mixed trust domains) is refused with the reason: a certificate that does not say clearly
 * who it is proves nobody.
 */
#ifndef CA_PEER_IDENTITY_H
#define CA_PEER_IDENTITY_H

#include <stddef.h>

#include "ca/ca_pem.h"
#include "ca/spiffe.h"

/** A peer's identity. */
typedef struct ca_peer_identity {
    char trust_domain[SPF_TD_MAX + 1];
    char node[SPF_NAME_MAX + 1];
    char **services;
    size_t n_services;
} ca_peer_identity_t;

/** Reads x's identity; trust_domain NULL accepts any. 0, or -1 with the reason in err (out is
 *  then empty). */
int ca_peer_identity_from_x509(const X509 *x, const char *trust_domain, ca_peer_identity_t *out,
                               char *err, size_t errlen);

/** 1 when the identity holds service, else 0. */
int ca_peer_identity_has_service(const ca_peer_identity_t *id, const char *service);

/** Frees what id holds. */
void ca_peer_identity_destroy(ca_peer_identity_t *id);

#endif
