/*
 * gossip/meta.h: a node's gossiped metadata: the instances it owns, as the registry knows them
 * (registry/instance.h), and the hash that stands for an instance's method set.
 *
 * Format: the metadata (the `meta` bytes of ALIVE and STATE messages, gossip/wire.h) is a
 * msgpack array of at most GSP_INST_MAX instances, GSP_META_MAX bytes at most; an instance is
 * an array of fields, in this order:
 *
 *   service   str, 1..GSP_FIELD_MAX bytes ("package.Service")
 *   addr      str, 1..GSP_ADDR_MAX bytes ("host:port")
 *   node      str, 0..GSP_NAME_MAX bytes (empty: unknown)
 *   zone      str, 0..GSP_FIELD_MAX bytes (empty: no zone)
 *   version   str, 0..GSP_FIELD_MAX bytes (release label; empty: none)
 *   weight    uint, 0..GSP_WEIGHT_MAX
 *   methods   uint 64: the method set's hash (gsp_meta_set_hash); 0: the instance does not list
 *             its methods (it may serve every method of its service)
 *   labels    map of str to str, at most GSP_LABEL_MAX pairs of 0..GSP_FIELD_MAX bytes each
 *   tls       uint 1, only when set (else the array has the 8 fields above, as before): the
 *             address is a meshd mesh port serving TLS with a mesh identity
 *
 * Node attributes: a node that has some (a monitor: its role and the instances it evicted)
 * sends a msgpack map instead of the bare array, with these keys (others are skipped):
 *
 *   "i"        the array of instances above
 *   "role"     str, 0..GSP_FIELD_MAX bytes: what the node is besides its instances ("monitor")
 *   "evicted"  array of at most GSP_EVICTED_MAX [service, addr] pairs: instances the node (the
 *              leading monitor) evicted from etcd; proxies keep them out of gossip-sourced routes
 *   "vsig"     bin, 1..GSP_SIG_MAX bytes: the node's signature over its "i" value's bytes and
 *              the metadata version it announces them at (ca/record_sig.h says what exactly is
 *              signed); what meshd sends
 *   "sig"      bin, 1..GSP_SIG_MAX bytes: the same without the version, as nodes older than
 *              "vsig" sign (still read during an upgrade: docs/gossip.md, "Signed records")
 *   "cert"     bin, 1..GSP_CERT_MAX bytes: the signing node's leaf certificate, DER, inline
 *   "cset"     uint, not 0: the hash of the set that carries the leaf instead (fetched once per
 *              hash like a method set: gossip/cert_set.h); what meshd sends
 *
 * A node without attributes sends the bare array (so sidecars' metadata is what it always was).
 *
 * Fields after these are ignored (a newer node may add some); strings hold no NUL byte. The
 * method names themselves do not travel with the metadata: nodes exchange the sets by hash
 * (SET and WANT messages), once per set, since most instances of a service share one.
 *
 * Decoding is bounded and allocation-free like the messages': decoded strings borrow from the
 * input, and metadata that breaks any rule above is refused whole.
 */
#ifndef GSP_META_H
#define GSP_META_H

#include <stddef.h>
#include <stdint.h>

#include "gossip/wire.h"

#define GSP_LABEL_MAX   16      /* labels of one instance */
#define GSP_WEIGHT_MAX  1000000 /* as the registry's REG_MAX_WEIGHT */
#define GSP_EVICTED_MAX 256     /* instances in a node's "evicted" attribute */
#define GSP_SIG_MAX     512     /* a record signature (RSA 4096; ECDSA P-256 needs 72) */
#define GSP_CERT_MAX    8192    /* a leaf certificate, DER (meshd ca's: about 600-900) */

/** The role attribute of a `meshd monitor` node. */
#define GSP_ROLE_MONITOR "monitor"

/** A label; borrowed strings. */
typedef struct gsp_label {
    gsp_str_t key, value;
} gsp_label_t;

/** One instance a node owns; borrowed strings (empty where the registry has NULL). */
typedef struct gsp_inst {
    gsp_str_t service, addr;
    gsp_str_t node, zone, version;
    uint32_t weight;
    uint64_t methods; /* method set hash; 0: not listed (an empty list hashes to non-zero) */
    uint32_t n_labels;
    gsp_label_t labels[GSP_LABEL_MAX];
    uint8_t mesh_tls; /* the 9th field: a meshd mesh port serving TLS (registry's "tls":"mtls") */
} gsp_inst_t;

/** A [service, addr] pair of a node's "evicted" attribute; borrowed strings. */
typedef struct gsp_evicted {
    gsp_str_t service, addr;
} gsp_evicted_t;

/** A node's attributes (see the format above); borrowed strings. */
typedef struct gsp_node_attrs {
    gsp_str_t role;      /* empty: none */
    gsp_str_t sig;       /* the record signature without version (v1; empty: none) */
    gsp_str_t vsig;      /* the record signature with the meta version (v2; empty: none) */
    gsp_str_t cert;      /* the signer's leaf certificate, DER, inline (empty: none) */
    uint64_t cset;       /* the hash of the set carrying the leaf (0: none) */
    gsp_str_t insts_raw; /* decoding only: the bytes of the instance array (what is signed) */
    uint32_t n_evicted;
    gsp_evicted_t evicted[GSP_EVICTED_MAX];
} gsp_node_attrs_t;

/**
 * Encodes n instances into buf (cap bytes; at most GSP_META_MAX are used). Returns the length,
 * or -1 when they do not fit or break a rule of the format (too many instances or labels, a
 * field too long or empty where it may not be, a NUL byte in a string, a weight too big).
 * Allocates nothing.
 */
int gsp_meta_encode(const gsp_inst_t *insts, size_t n, uint8_t *buf, size_t cap);

/**
 * Decodes metadata (len bytes, the whole of it) into out[0..cap) and sets *n. Returns 0, or -1
 * when it is malformed, breaks a rule or holds more than cap instances (cap = GSP_INST_MAX
 * takes any valid metadata). The strings in out point into buf.
 */
int gsp_meta_decode(const void *buf, size_t len, gsp_inst_t *out, size_t cap, size_t *n);

/**
 * As gsp_meta_encode, with the node's attributes (attrs NULL, or with no role and nothing
 * evicted: the bare array). Fails (-1) also when an attribute breaks a rule of the format.
 */
int gsp_meta_encode_node(const gsp_inst_t *insts, size_t n, const gsp_node_attrs_t *attrs,
                         uint8_t *buf, size_t cap);

/**
 * As gsp_meta_decode, and fills *attrs (when not NULL) with the node's attributes (zeroed for
 * the bare array). gsp_meta_decode takes either form too and ignores the attributes.
 */
int gsp_meta_decode_node(const void *buf, size_t len, gsp_inst_t *out, size_t cap, size_t *n,
                         gsp_node_attrs_t *attrs);

/**
 * The hash of a set of method names: the same for any order and any repetition of the names,
 * never 0 (0 means "not listed"), and the empty set's hash is a fixed non-zero value. FNV-1a 64
 * over the distinct names in byte order, each preceded by its length (4 bytes, little endian).
 * Sets of up to GSP_SET_MAX names are hashed without allocating.
 */
uint64_t gsp_meta_set_hash(const char *const *names, size_t n);

/** The same hash over borrowed strings (to check a received SET against its hash). */
uint64_t gsp_meta_set_hash_strs(const gsp_str_t *names, size_t n);

/** The hash of the empty method set. */
#define GSP_SET_HASH_EMPTY 0xcbf29ce484222325ULL

#endif
