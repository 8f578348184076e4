/*
 * gossip/cert_set.h: a signing node's certificate as a content-addressed set, so that it
 * travels once per (certificate, receiver) instead of in every copy of the node's metadata.
 *
 * Method sets already travel by hash (SET / WANT, gossip/wire.h): a node fetches a set it does
 * not know once, from the member that names it, and a set whose names do not hash to its hash
 * is refused. A certificate (DER, up to GSP_CERT_MAX bytes) rides the same way: its bytes are
 * cut into chunks of GSP_CERT_CHUNK bytes, each a "name" "x509:NN:" + base64(chunk) (NN the
 * chunk's index, two decimal digits, so the sorted names are in order); the set's hash
 * (gsp_meta_set_hash) goes in the node's metadata as the "cset" attribute (gossip/meta.h)
 * beside the record's signature. The gossip actor asks for an unknown "cset" as it does for
 * method sets; the bridge reassembles the certificate when the set arrives (node/gossip_bridge.c).
 * The hash only addresses the bytes: trust comes from the chain to the mesh CA (ca/record_sig.h).
 */
#ifndef GSP_CERT_SET_H
#define GSP_CERT_SET_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/meta.h"

#define GSP_CERT_CHUNK     180 /* DER bytes a name: 240 base64 characters + 8 of prefix */
#define GSP_CERT_SET_NAMES ((GSP_CERT_MAX + GSP_CERT_CHUNK - 1) / GSP_CERT_CHUNK)

/** A certificate as set names (in place; gsp_cert_set_destroy frees the names). */
typedef struct gsp_cert_set {
    char *names[GSP_CERT_SET_NAMES];
    size_t n;
    uint64_t hash;
} gsp_cert_set_t;

/** Cuts der[0..len) (1..GSP_CERT_MAX bytes) into names and hashes them. 0, or -1 (too long,
 *  out of memory: then *s is empty). */
int gsp_cert_set_make(gsp_cert_set_t *s, const uint8_t *der, size_t len);

/** Frees the names. */
void gsp_cert_set_destroy(gsp_cert_set_t *s);

/**
 * Reassembles a certificate from a received set's names (any order): the DER's length, or -1
 * when the names are not exactly chunks 00..n-1 of valid base64 (each but the last
 * GSP_CERT_CHUNK bytes long) or the result exceeds cap. names may be NUL-terminated strings.
 */
long gsp_cert_set_read(const char *const *names, size_t n, uint8_t *out, size_t cap);

#endif
