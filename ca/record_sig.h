/*
 * ca/record_sig.h: signed gossip records: a node signs the instance list it announces with its
 * workload identity key, and receivers check the signature, the signer's certificate and that
 * the identity may register every service listed (docs/gossip.md, "Signed records").
 *
 * What is signed (v2, gossip/meta.h's "vsig"): SHA-256 over "meshd-gossip-record-v2", a NUL
 * byte, the node name, a NUL byte, the metadata version the record is announced at (8 bytes,
 * big endian), then the record (the msgpack bytes of the node's instance array, gossip/meta.h's
 * "i"), with ECDSA (P-256, what `meshd ca` issues; RSA PKCS#1 v1.5 and Ed25519 keys work too).
 * The node name keeps a record from being replayed under another name, the version from being
 * replayed at another version: a receiver checks the signature against the version the gossip
 * message claims, and refuses a version below the member's last accepted one (RSIG_STALE). The
 * owner picks versions that rise across its restarts (node/gossip_bridge.c: at least the wall
 * clock in milliseconds).
 *
 * v1 ("sig", nodes older than v2): the same without the version, tag "meshd-gossip-record-v1".
 * Read during an upgrade, until the member has been accepted with a v2 record once (then a v1
 * record of it is RSIG_STALE: a replay, or a downgrade).
 *
 * Verification, first failure wins (each result has a short name for metrics and audit):
 *   RSIG_UNSIGNED          no signature or no certificate
 *   RSIG_STALE             a version below the member's last accepted one, or a v1 record of a
 *                          member accepted with v2 before
 *   RSIG_BAD_CERT          the certificate is not DER X.509
 *   RSIG_NOT_YET_VALID     the leaf (or the CA) starts after now
 *   RSIG_EXPIRED           the leaf (or the CA) ended before now
 *   RSIG_WRONG_CA          the leaf does not chain to the trusted CA certificates
 *   RSIG_WRONG_IDENTITY    the leaf's SPIFFE node ID (ca/peer_identity.h) is not the gossip
 *                          member's name, or the leaf names no meshd identity
 *   RSIG_BAD_SIGNATURE     the signature does not verify with the leaf's key over the record
 *                          (and, v2, the version claimed)
 *   RSIG_SERVICE_NOT_ALLOWED  a service of the record is neither in the leaf's svc URIs nor
 *                          allowed by the rule table (ca/svc_rules.h) for that identity
 * Sans-I/O: keys, certificates, the record and the time in; a result out (and the trust's
 * certificate cache updated).
 */
#ifndef CA_RECORD_SIG_H
#define CA_RECORD_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca_pem.h"
#include "ca/svc_rules.h"

/** Longest signature rsig_sign writes (RSA 4096). */
#define RSIG_SIG_MAX 512

/** Certificates whose checks the trust keeps (round robin beyond), and for how long. */
#define RSIG_CACHE_MAX   256
#define RSIG_CACHE_TTL_S 600

/** Results of rsig_verify. */
typedef enum {
    RSIG_OK = 0,
    RSIG_UNSIGNED,
    RSIG_BAD_CERT,
    RSIG_NOT_YET_VALID,
    RSIG_EXPIRED,
    RSIG_WRONG_CA,
    RSIG_WRONG_IDENTITY,
    RSIG_BAD_SIGNATURE,
    RSIG_SERVICE_NOT_ALLOWED,
    RSIG_INTERNAL, /* libcrypto missing or out of memory */
    RSIG_STALE,
    RSIG_N_RESULTS
} rsig_result_t;

/** A short name of a result ("wrong_identity", ...). */
const char *rsig_result_name(rsig_result_t r);

/**
 * Signs the record rec[0..len) of node at metadata version version with key (v2) into sig (cap
 * bytes, RSIG_SIG_MAX is enough). The signature's length, or -1 (libcrypto missing, a key it
 * cannot sign with).
 */
int rsig_sign(EVP_PKEY *key, const char *node, uint64_t version, const uint8_t *rec, size_t len,
              uint8_t *sig, size_t cap);

/** As rsig_sign, the way nodes older than v2 sign (no version): for tests of the upgrade. */
int rsig_sign_v1(EVP_PKEY *key, const char *node, const uint8_t *rec, size_t len, uint8_t *sig,
                 size_t cap);

/** The trusted CA certificates (opaque), and a cache of the certificates checked against them:
 *  a certificate's parse, chain and identity are checked once per RSIG_CACHE_TTL_S (keyed by
 *  its SHA-256, and never past its notAfter); each record still gets its signature checked.
 *  Not thread-safe: one trust per actor. */
typedef struct rsig_trust rsig_trust_t;

/** Reads the CA certificates of a PEM text (every certificate in it). The trust, or NULL with
 *  the reason in err (no certificate, libcrypto missing). */
rsig_trust_t *rsig_trust_new(const char *pem, size_t len, const char *name, char *err,
                             size_t errlen);

/** Frees t (NULL is fine). */
void rsig_trust_free(rsig_trust_t *t);

/** What is checked. */
typedef struct rsig_record {
    const char *node;   /* the gossip member's name */
    const uint8_t *rec; /* the signed bytes (the instance array) */
    size_t rec_len;
    const uint8_t *sig, *cert_der; /* NULL or empty: unsigned */
    size_t sig_len, cert_len;
    const char *const *services; /* the services the record lists (repeats are fine) */
    size_t n_services;
    uint64_t version;  /* the metadata version the gossip message claims for the record */
    int v1;            /* the signature is v1 (no version: "sig", not "vsig") */
    uint64_t accepted; /* the version of the member's last record accepted (0: none) */
    int pinned;        /* a v2 record of the member was accepted: v1 is refused (stale) */
} rsig_record_t;

/**
 * Checks r at now (Unix seconds) against the trust and the rules (NULL: the certificate's svc
 * URIs alone). RSIG_OK, or the first failure with a sentence in err naming the node; with
 * RSIG_SERVICE_NOT_ALLOWED, *refused (when not NULL) is the index of the service refused.
 */
rsig_result_t rsig_verify(rsig_trust_t *t, const svr_rules_t *rules, const rsig_record_t *r,
                          int64_t now, size_t *refused, char *err, size_t errlen);

/** How often rsig_verify found a certificate's checks in the cache, and had to run them. */
void rsig_trust_stats(const rsig_trust_t *t, uint64_t *hits, uint64_t *misses);

#endif
