/*
 * node/gossip_signer.h: this node's gossip signing identity: the key and leaf certificate in
 * --identity-dir (key.pem, cert.pem: node/identity_client.h writes them, or a person does),
 * re-read when cert.pem changes (the first issue, each rotation), and the signature of our
 * instance record with them (ca/record_sig.h). The certificate travels as a set fetched once
 * per hash (gossip/cert_set.h), the signature with every copy of our metadata. The bridge checks
 * for a change every few seconds and announces its record again, signed with the new certificate.
 */
#ifndef MESH_GOSSIP_SIGNER_H
#define MESH_GOSSIP_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "ca/record_sig.h"
#include "gossip/cert_set.h"
#include "gossip/meta.h"

/** A signing identity (in place: gsign_init / gsign_destroy). */
typedef struct gsign {
    char key_path[4096], cert_path[4096];
    EVP_PKEY *key; /* NULL: no identity (yet) */
    uint8_t *cert_der;
    size_t cert_len;
    gsp_cert_set_t cset; /* the certificate as a set (gossip/cert_set.h), what travels */
    int64_t mtime_ns;
    int64_t size;
    int warned; /* a bad identity was logged (once per change of the files) */
} gsign_t;

/** Sets the paths from dir (NULL or "": never signs). */
void gsign_init(gsign_t *s, const char *dir);

/** Re-reads the files when cert.pem changed since the last call. 1 when the identity changed
 *  (appeared, rotated or went away), 0 when not. A pair that cannot be read or does not match
 *  is logged once and leaves the node unsigned. */
int gsign_refresh(gsign_t *s);

/** Signs rec (our instance array) for node at metadata version version (ca/record_sig.h, v2)
 *  into sig (RSIG_SIG_MAX bytes). Its length, or 0 when there is no identity or signing failed
 *  (then the record goes unsigned). */
size_t gsign_sign(const gsign_t *s, const char *node, uint64_t version, const uint8_t *rec,
                  size_t len, uint8_t *sig);

/** Frees what s holds. */
void gsign_destroy(gsign_t *s);

#endif
