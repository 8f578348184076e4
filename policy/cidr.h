/*
 * policy/cidr.h: IP addresses and immutable sets of CIDR prefixes (IPv4 and IPv6), and the
 * client address behind X-Forwarded-For.
 *
 * Every address is held as 128 bits. An IPv4 address a.b.c.d is held as its IPv4-mapped IPv6
 * form ::ffff:a.b.c.d, and an IPv4 prefix a.b.c.d/n as ::ffff:a.b.c.d/(96+n); so an IPv4 peer
 * reached over an IPv6 socket (::ffff:10.1.2.3) matches "10.0.0.0/8", and "::ffff:0:0/96"
 * matches every IPv4 address.
 *
 * A set is built once from strings ("10.0.0.0/8", "2001:db8::/32", "::1/128", or a bare
 * address, which means the host prefix /32 or /128) and never changes; it may be read by any
 * number of threads. Its prefixes are kept as sorted, merged, disjoint ranges of addresses, so
 * a lookup is one binary search (at most log2(prefixes) + 1 steps) and allocates nothing.
 *
 * X-Forwarded-For: pol_xff_client() finds the client of a call from the TCP peer and the
 * X-Forwarded-For field values, trusting only the hops in a set of trusted proxies (the
 * algorithm is described at the function and in docs/policy-acl.md).
 */
#ifndef POL_CIDR_H
#define POL_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** An IPv4 or IPv6 address as a 128-bit number (IPv4 in its IPv4-mapped form). */
typedef struct {
    uint64_t hi; /* bits 127..64 */
    uint64_t lo; /* bits 63..0 */
} pol_ip_t;

/** Longest text pol_ip_format() writes, with its NUL ("ffff:...:255.255.255.255"). */
#define POL_IP_STRLEN 46

/** Parses a numeric address, IPv4 ("10.1.2.3", no leading zeros) or IPv6 ("2001:db8::1",
 * "::ffff:10.1.2.3"; no zone "%eth0"), s[0..len). Returns 0, or -1 when it is not one. */
int pol_ip_parse(const char *s, size_t len, pol_ip_t *out);

/** Takes the address of an AF_INET or AF_INET6 socket address. Returns 0, or -1 for another
 * family (a Unix socket peer has no IP address). */
int pol_ip_from_sockaddr(const struct sockaddr *sa, pol_ip_t *out);

/** Nonzero when ip is IPv4 (IPv4-mapped). */
int pol_ip_is_v4(const pol_ip_t *ip);

/** Writes ip as text: dotted quad for IPv4 (also when it came as ::ffff:a.b.c.d), RFC 5952 for
 * IPv6. Returns the length, or -1 when it does not fit cap (POL_IP_STRLEN always fits). */
int pol_ip_format(const pol_ip_t *ip, char *buf, size_t cap);

/** Nonzero when a and b are the same address. */
int pol_ip_equal(const pol_ip_t *a, const pol_ip_t *b);

/** One prefix: the address with its host bits zero, and its length in the 128-bit space
 * (an IPv4 /8 has bits 104). */
typedef struct {
    pol_ip_t addr;
    unsigned bits;
} pol_cidr_t;

/** Parses "addr/len" or a bare "addr" (host prefix). IPv4 lengths are 0..32, IPv6 0..128. A
 * prefix with host bits set ("10.0.0.1/8") is refused, since it most likely says something other
 * than what was meant. On error writes why to err ("10.0.0.1/8: host bits set after /8 (did you
 * mean 10.0.0.0/8?)") and returns -1. */
int pol_cidr_parse(const char *s, pol_cidr_t *out, char *err, size_t errlen);

/** Nonzero when ip lies in prefix c. */
int pol_cidr_contains(const pol_cidr_t *c, const pol_ip_t *ip);

/** An immutable set of prefixes (opaque). */
typedef struct pol_cidr_set pol_cidr_set_t;

/** Builds a set from n prefix strings (n may be 0: the empty set matches nothing). On a bad
 * string writes "prefix N (\"...\"): why" to err and returns NULL; NULL also on out of memory. */
pol_cidr_set_t *pol_cidr_set_new(const char *const *prefixes, size_t n, char *err, size_t errlen);

/** Frees a set (NULL is fine). */
void pol_cidr_set_free(pol_cidr_set_t *set);

/** Nonzero when ip lies in some prefix of set (a NULL set contains nothing). Allocates
 * nothing; safe from any thread. */
int pol_cidr_set_contains(const pol_cidr_set_t *set, const pol_ip_t *ip);

/** Number of prefixes the set was built from. */
size_t pol_cidr_set_size(const pol_cidr_set_t *set);

/** Number of disjoint address ranges after merging overlapping and adjacent prefixes. */
size_t pol_cidr_set_ranges(const pol_cidr_set_t *set);

/* ---- X-Forwarded-For ------------------------------------------------------------------------ */

/** A byte string that is not NUL-terminated (a header field value as the transport holds it). */
typedef struct {
    const char *p;
    size_t len;
} pol_str_t;

/** How pol_xff_client() found the client. */
typedef enum {
    /** The peer is not a trusted proxy (or there is no X-Forwarded-For): client = peer. Any
     * X-Forwarded-For from an untrusted peer is ignored: anyone can write one. */
    POL_XFF_PEER = 0,
    /** Walking X-Forwarded-For from the right, the first address not in the trusted set. */
    POL_XFF_FORWARDED = 1,
    /** Every hop, the peer and all listed addresses, is a trusted proxy: client = the leftmost
     * listed address (the farthest hop anyone vouched for). */
    POL_XFF_ALL_TRUSTED = 2,
    /** The walk reached an entry that is not an address ("unknown", "_hidden", garbage) before
     * finding an untrusted one: client = the last trusted hop (the address to the right of the
     * bad entry, or the peer); *bad points at the entry. The ACL denies such a call unless
     * configured otherwise. */
    POL_XFF_MALFORMED = 3,
} pol_xff_status_t;

/**
 * Determines the client address of a call.
 *
 * If peer is not in trusted (or trusted is NULL or empty), the client is the peer. Otherwise the
 * X-Forwarded-For values (n fields in arrival order; several fields are one list, as if joined
 * with ",") are walked from the rightmost entry to the left: each entry that is a trusted proxy
 * is skipped, and the first entry that is not is the client. Entries are separated by commas;
 * blanks (space, tab) around them are ignored, and so are empty entries (",,"). An entry is an
 * IPv4 address, an IPv6 address, "[v6]", "[v6]:port" or "v4:port" (ports are dropped). Anything
 * else stops the walk with POL_XFF_MALFORMED. Allocates nothing.
 *
 * bad (may be NULL) receives the malformed entry (trimmed) for POL_XFF_MALFORMED, else {0}.
 */
pol_xff_status_t pol_xff_client(const pol_cidr_set_t *trusted, const pol_ip_t *peer,
                                const pol_str_t *xff, size_t n, pol_ip_t *client, pol_str_t *bad);

/** Parses one X-Forwarded-For entry (trimmed of blanks): an address, "[v6]", "[v6]:port" or
 * "v4:port". Returns 0, or -1 when it is none of those. */
int pol_xff_parse_entry(const char *s, size_t len, pol_ip_t *out);

#endif
