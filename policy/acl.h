/*
 * policy/acl.h: allow and deny lists evaluated per call, by client address, identity and
 * service/method.
 *
 * Three dimensions, each with an optional allow list and an optional deny list:
 *   peers       CIDR prefixes ("10.0.0.0/8", "2001:db8::/32", a bare address), matched against
 *               the client address (the TCP peer, or the X-Forwarded-For client when the peer
 *               is a trusted proxy; see pol_xff_client() in policy/cidr.h);
 *   identities  "name" (exact), "prefix*" (any identity starting with prefix) or "*" (any
 *               identity); matched against the identity an earlier filter established (JWT sub,
 *               external authorization, signature client, a peer certificate). A call without
 *               identity matches no identity pattern, not even "*". Patterns of SPIFFE form
 *               (spiffe://<td>/node/<node>, .../node/\*, .../svc/<pkg.Service>, .../svc/\*)
 *               match only identities a certificate proved (identity_mtls), and the svc forms
 *               match the service IDs of the caller's certificate (cert);
 *   methods     "pkg.Svc/Method" (exact), "pkg.Svc/" followed by "*" (every method of a
 *               service) or "*" (every call); a leading "/" is allowed and ignored. Matched
 *               against the gRPC path.
 *
 * Semantics, in order:
 *   1. X-Forwarded-For from a trusted proxy that holds a malformed entry: deny (unless
 *      xff_malformed is POL_ACL_XFF_USE_LAST_TRUSTED, which uses the last trusted hop).
 *   2. Deny wins: a call that matches any deny list (peer, then identity, then method) is
 *      denied, whatever the allow lists say.
 *   3. Every dimension that has an allow list must match: with allow lists for peers and
 *      identities, a call must come from an allowed address AND carry an allowed identity. A
 *      dimension without an allow list (empty) allows everything. A call without identity
 *      fails a configured identity allow list.
 *   4. Otherwise allow.
 * An ACL with no lists at all allows every call.
 *
 * An ACL is built once from a plain description (pol_acl_config_t: lists of strings, which the
 * YAML loader fills) and never changes; any number of threads may evaluate it at once.
 * pol_acl_check() allocates nothing: exact names are binary-searched in sorted arrays, prefixes
 * and CIDR sets are looked up as described in their files.
 */
#ifndef POL_ACL_H
#define POL_ACL_H

#include <stddef.h>

#include "policy/cidr.h"

struct mesh_peer_id;

/** What to do when X-Forwarded-For from a trusted proxy holds an entry that is not an address. */
typedef enum {
    /** Deny the call (default): a trusted proxy that writes garbage cannot be reasoned about. */
    POL_ACL_XFF_DENY = 0,
    /** Take the last trusted hop (the address to the right of the bad entry) as the client. */
    POL_ACL_XFF_USE_LAST_TRUSTED = 1,
} pol_acl_xff_malformed_t;

/** A list of strings (entries need not outlive pol_acl_new(): they are copied). */
typedef struct {
    const char *const *v;
    size_t n;
} pol_acl_list_t;

/** The description an ACL is built from; zero-initialized = no lists, allow everything. */
typedef struct {
    pol_acl_list_t allow_peers, deny_peers;
    pol_acl_list_t allow_identities, deny_identities;
    pol_acl_list_t allow_methods, deny_methods;
    /** Peers whose X-Forwarded-For is believed (CIDR prefixes); empty: XFF is never used. */
    pol_acl_list_t trusted_proxies;
    pol_acl_xff_malformed_t xff_malformed;
} pol_acl_config_t;

/** An immutable ACL (opaque). */
typedef struct pol_acl pol_acl_t;

/** Checks an identity pattern of SPIFFE form (one that starts with "spiffe://"):
 * spiffe://<td>/node/<node> or spiffe://<td>/svc/<pkg.Service>, where the name may also be
 * "*" (every node, every service) or a prefix and "*" ("web-*"); the trust domain and names as
 * ca/spiffe.h allows them. 0, or -1 with the reason in why. pol_acl_new applies it to every
 * such entry. */
int pol_acl_spiffe_pattern_check(const char *pattern, char *why, size_t whylen);

/** Builds an ACL. On a bad entry writes "<list> entry N (\"...\"): why" to err (for example
 * "deny_peers entry 2 (\"10.0.0.1/8\"): 10.0.0.1/8: host bits set after /8 (did you mean
 * 10.0.0.0/8?)") and returns NULL; NULL also on out of memory. */
pol_acl_t *pol_acl_new(const pol_acl_config_t *cfg, char *err, size_t errlen);

/** Frees an ACL (NULL is fine). */
void pol_acl_free(pol_acl_t *acl);

/** One call, as the chain sees it. Strings are not NUL-terminated. */
typedef struct {
    /** The TCP peer's address (pol_ip_from_sockaddr). */
    pol_ip_t peer;
    /** The X-Forwarded-For field values in arrival order (n_xff may be 0). */
    const pol_str_t *xff;
    size_t n_xff;
    /** The established identity; identity.p == NULL means none. */
    pol_str_t identity;
    /** 1 when a certificate proved the identity (source "mtls", at this node or at the meshd
     *  node before): only then do SPIFFE patterns ("spiffe://...") match it, so a JWT subject
     *  that merely looks like a SPIFFE ID never passes for a workload. */
    int identity_mtls;
    /** When the identity is this peer certificate's node ID: the certificate, whose service IDs
     *  (spiffe://<td>/svc/<pkg.Service>) SPIFFE patterns match as well. NULL: none. */
    const struct mesh_peer_id *cert;
    /** The gRPC path, "/pkg.Svc/Method". */
    pol_str_t path;
} pol_acl_call_t;

/** Why a call was denied, or POL_ACL_ALLOWED. */
typedef enum {
    POL_ACL_ALLOWED = 0,
    POL_ACL_PEER_DENIED,          /* the client address matched deny_peers */
    POL_ACL_PEER_NOT_ALLOWED,     /* allow_peers configured, the client address is not in it */
    POL_ACL_IDENTITY_DENIED,      /* the identity matched deny_identities */
    POL_ACL_IDENTITY_NOT_ALLOWED, /* allow_identities configured, the identity is not in it */
    POL_ACL_NO_IDENTITY,          /* allow_identities configured, the call has no identity */
    POL_ACL_METHOD_DENIED,        /* the path matched deny_methods */
    POL_ACL_METHOD_NOT_ALLOWED,   /* allow_methods configured, the path is not in it */
    POL_ACL_XFF_MALFORMED,        /* a trusted proxy's X-Forwarded-For holds a non-address */
} pol_acl_reason_t;

/** The verdict on one call. */
typedef struct {
    pol_acl_reason_t reason;
    /** The client address the peer lists were matched against. */
    pol_ip_t client;
    /** How the client address was found. */
    pol_xff_status_t client_from;
    /** For POL_ACL_XFF_MALFORMED: the bad entry (points into the call's xff). */
    pol_str_t bad_xff;
    /** For POL_ACL_IDENTITY_DENIED: the deny pattern that matched (points into the ACL), without
     *  its trailing '*' when pattern_star is 1 ("*" itself: empty, star 1). */
    pol_str_t pattern;
    int pattern_star;
} pol_acl_result_t;

/** Evaluates call against acl. Returns res->reason: POL_ACL_ALLOWED (0) or why it was denied.
 * Allocates nothing; safe from any thread. */
pol_acl_reason_t pol_acl_check(const pol_acl_t *acl, const pol_acl_call_t *call,
                               pol_acl_result_t *res);

/** A short name of a reason for logs and audit ("peer_denied", "method_not_allowed", ...). */
const char *pol_acl_reason_name(pol_acl_reason_t r);

/** Writes the grpc-message for a denial: "meshd: acl: peer 1.2.3.4 denied", "meshd: acl:
 * identity alice not allowed", "meshd: acl: no identity (an identity allow list is
 * configured)", "meshd: acl: method /pkg.Svc/M denied", "meshd: acl: malformed
 * X-Forwarded-For entry \"unknown\" from trusted proxy 10.0.0.1". Untrusted bytes (identity,
 * path, XFF entry) are cut at 64 bytes and any byte outside printable ASCII, and '"', is written as
 * '?'. Returns the length, or -1 when it did not fit (buf then holds a truncated message). */
int pol_acl_format_reason(const pol_acl_call_t *call, const pol_acl_result_t *res, char *buf,
                          size_t cap);

/** The reason for a record that names the caller's identity in a field of its own (the audit
 * event, whose text is short): "denied by 'spiffe://td/node/\*'" and "not allowed" for the two
 * identity reasons, else pol_acl_format_reason's text without "meshd: acl: ". Returns the
 * length, or -1 when it did not fit (truncated). */
int pol_acl_format_short(const pol_acl_call_t *call, const pol_acl_result_t *res, char *buf,
                         size_t cap);

#endif
