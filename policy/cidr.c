/*
 * policy/cidr.c: addresses, prefix sets and the X-Forwarded-For walk behind policy/cidr.h.
 *
 * A set keeps its prefixes as address ranges [lo, hi] (a prefix is the range from its address
 * with host bits zero to the same with host bits one), sorted by lo and merged where they overlap
 * or touch, so the ranges are disjoint and ascending. A lookup binary-searches the last range
 * whose lo is <= the address and checks the address against its hi. Both arrays live in the same
 * allocation as the set.
 */
#include "policy/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses ------------------------------------------------------------------------------ */

static void ip_from_bytes(const uint8_t b[16], pol_ip_t *out)
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | b[i];
        lo = lo << 8 | b[8 + i];
    }
    out->hi = hi;
    out->lo = lo;
}

static void ip_to_bytes(const pol_ip_t *ip, uint8_t b[16])
{
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(ip->hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(ip->lo >> (56 - 8 * i));
    }
}

static void ip_from_v4(uint32_t v4, pol_ip_t *out)
{
    out->hi = 0;
    out->lo = 0xFFFF00000000ull | v4;
}

int pol_ip_is_v4(const pol_ip_t *ip)
{
    return ip->hi == 0 && (ip->lo >> 32) == 0xFFFF;
}

int pol_ip_equal(const pol_ip_t *a, const pol_ip_t *b)
{
    return a->hi == b->hi && a->lo == b->lo;
}

/* Strict dotted quad, as inet_pton(AF_INET) takes it (four decimal parts 0..255, no leading
 * zeros), without the copy to a NUL-terminated buffer: XFF walks parse many of these. */
static int parse_v4(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned n = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            n = n * 10 + (unsigned)(s[i++] - '0');
        if (i == start || n > 255 || (i - start > 1 && s[start] == '0'))
            return -1;
        v = v << 8 | n;
    }
    if (i != len)
        return -1;
    *out = v;
    return 0;
}

int pol_ip_parse(const char *s, size_t len, pol_ip_t *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    if (memchr(s, ':', len)) {
        uint8_t b[16];
        if (memchr(s, '\0', len))
            return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (inet_pton(AF_INET6, buf, b) != 1)
            return -1;
        ip_from_bytes(b, out);
        return 0;
    }
    uint32_t v4;
    if (parse_v4(s, len, &v4) != 0)
        return -1;
    ip_from_v4(v4, out);
    return 0;
}

int pol_ip_from_sockaddr(const struct sockaddr *sa, pol_ip_t *out)
{
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        ip_from_v4(ntohl(in->sin_addr.s_addr), out);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        ip_from_bytes(in6->sin6_addr.s6_addr, out);
        return 0;
    }
    return -1;
}

int pol_ip_format(const pol_ip_t *ip, char *buf, size_t cap)
{
    char tmp[POL_IP_STRLEN];
    if (pol_ip_is_v4(ip)) {
        uint32_t v = (uint32_t)ip->lo;
        snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF,
                 v & 0xFF);
    } else {
        uint8_t b[16];
        ip_to_bytes(ip, b);
        if (!inet_ntop(AF_INET6, b, tmp, sizeof(tmp)))
            return -1;
    }
    size_t n = strlen(tmp);
    if (n >= cap)
        return -1;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}

/* ---- prefixes ------------------------------------------------------------------------------- */

/* The network mask of a prefix of `bits` (0..128) in the 128-bit space. */
static pol_ip_t mask_of(unsigned bits)
{
    pol_ip_t m;
    m.hi = bits >= 64 ? ~0ull : bits == 0 ? 0 : ~0ull << (64 - bits);
    m.lo = bits <= 64 ? 0 : bits == 128 ? ~0ull : ~0ull << (128 - bits);
    return m;
}

int pol_cidr_contains(const pol_cidr_t *c, const pol_ip_t *ip)
{
    pol_ip_t m = mask_of(c->bits);
    return (ip->hi & m.hi) == c->addr.hi && (ip->lo & m.lo) == c->addr.lo;
}

int pol_cidr_parse(const char *s, pol_cidr_t *out, char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "empty prefix");
        return -1;
    }
    size_t len = strlen(s);
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    pol_ip_t ip;
    if (pol_ip_parse(s, alen, &ip) != 0) {
        snprintf(err, errlen, "%.*s: not an IPv4 or IPv6 address", (int)(alen > 64 ? 64 : alen), s);
        return -1;
    }
    /* An IPv4 prefix is written without the mapped prefix: a.b.c.d/n. */
    int v4 = !memchr(s, ':', alen);
    unsigned max = v4 ? 32 : 128, n = max;
    if (slash) {
        const char *d = slash + 1;
        size_t dl = len - alen - 1;
        if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0')) {
            snprintf(err, errlen, "%.64s: bad prefix length (want 0..%u)", s, max);
            return -1;
        }
        n = 0;
        for (size_t i = 0; i < dl; i++) {
            if (d[i] < '0' || d[i] > '9') {
                snprintf(err, errlen, "%.64s: bad prefix length (want 0..%u)", s, max);
                return -1;
            }
            n = n * 10 + (unsigned)(d[i] - '0');
        }
        if (n > max) {
            snprintf(err, errlen, "%.64s: prefix length %u is over %u", s, n, max);
            return -1;
        }
    }
    unsigned bits = v4 ? 96 + n : n;
    pol_ip_t m = mask_of(bits);
    if ((ip.hi & ~m.hi) || (ip.lo & ~m.lo)) {
        pol_ip_t net = {ip.hi & m.hi, ip.lo & m.lo};
        char a[POL_IP_STRLEN];
        pol_ip_format(&net, a, sizeof(a));
        snprintf(err, errlen, "%.64s: host bits set after /%u (did you mean %s/%u?)", s, n, a, n);
        return -1;
    }
    out->addr = ip;
    out->bits = bits;
    return 0;
}

/* ---- sets ----------------------------------------------------------------------------------- */

struct pol_cidr_set {
    size_t nprefix;
    size_t nranges;
    pol_ip_t *lo; /* ascending, disjoint */
    pol_ip_t *hi;
};

static int ip_cmp(const pol_ip_t *a, const pol_ip_t *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

typedef struct {
    pol_ip_t lo, hi;
} range_t;

static int range_cmp(const void *a, const void *b)
{
    return ip_cmp(&((const range_t *)a)->lo, &((const range_t *)b)->lo);
}

/* a + 1, saturating at all ones (returns 0 when it saturated). */
static int ip_inc(pol_ip_t *a)
{
    if (a->lo != ~0ull) {
        a->lo++;
        return 1;
    }
    if (a->hi != ~0ull) {
        a->hi++;
        a->lo = 0;
        return 1;
    }
    return 0;
}

pol_cidr_set_t *pol_cidr_set_new(const char *const *prefixes, size_t n, char *err, size_t errlen)
{
    range_t *r = NULL;
    if (n) {
        r = calloc(n, sizeof(*r));
        if (!r) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pol_cidr_t c;
        char why[192];
        if (!prefixes[i] || pol_cidr_parse(prefixes[i], &c, why, sizeof(why)) != 0) {
            if (!prefixes[i])
                snprintf(why, sizeof(why), "missing");
            snprintf(err, errlen, "prefix %zu (\"%.64s\"): %s", i + 1,
                     prefixes[i] ? prefixes[i] : "", why);
            free(r);
            return NULL;
        }
        pol_ip_t m = mask_of(c.bits);
        r[i].lo = c.addr;
        r[i].hi = (pol_ip_t){c.addr.hi | ~m.hi, c.addr.lo | ~m.lo};
    }
    if (n)
        qsort(r, n, sizeof(*r), range_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0) {
            pol_ip_t next = r[k - 1].hi;
            /* Overlapping or adjacent: extend the previous range. */
            if (!ip_inc(&next) || ip_cmp(&r[i].lo, &next) <= 0) {
                if (ip_cmp(&r[i].hi, &r[k - 1].hi) > 0)
                    r[k - 1].hi = r[i].hi;
                continue;
            }
        }
        r[k++] = r[i];
    }
    pol_cidr_set_t *set = malloc(sizeof(*set) + 2 * (k ? k : 1) * sizeof(pol_ip_t));
    if (!set) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    set->nprefix = n;
    set->nranges = k;
    set->lo = (pol_ip_t *)(set + 1);
    set->hi = set->lo + (k ? k : 1);
    for (size_t i = 0; i < k; i++) {
        set->lo[i] = r[i].lo;
        set->hi[i] = r[i].hi;
    }
    free(r);
    return set;
}

void pol_cidr_set_free(pol_cidr_set_t *set)
{
    free(set);
}

int pol_cidr_set_contains(const pol_cidr_set_t *set, const pol_ip_t *ip)
{
    if (!set || set->nranges == 0)
        return 0;
    /* The last range whose lo <= ip. */
    size_t a = 0, b = set->nranges;
    while (b - a > 1) {
        size_t mid = a + (b - a) / 2;
        if (ip_cmp(&set->lo[mid], ip) <= 0)
            a = mid;
        else
            b = mid;
    }
    return ip_cmp(&set->lo[a], ip) <= 0 && ip_cmp(ip, &set->hi[a]) <= 0;
}

size_t pol_cidr_set_size(const pol_cidr_set_t *set)
{
    return set ? set->nprefix : 0;
}

size_t pol_cidr_set_ranges(const pol_cidr_set_t *set)
{
    return set ? set->nranges : 0;
}

/* ---- X-Forwarded-For ------------------------------------------------------------------------ */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Nonzero when s[0..len) is a port: 1 to 5 digits, at most 65535. */
static int is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

int pol_xff_parse_entry(const char *s, size_t len, pol_ip_t *out)
{
    if (len == 0)
        return -1;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        size_t in = (size_t)(close - s) - 1, rest = len - in - 2;
        if (!memchr(s + 1, ':', in)) /* brackets hold IPv6 only */
            return -1;
        if (rest && (close[1] != ':' || !is_port(close + 2, rest - 1)))
            return -1;
        return pol_ip_parse(s + 1, in, out);
    }
    const char *colon = memchr(s, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)) {
        /* Exactly one colon: IPv4 with a port (no IPv6 address has a single colon). */
        size_t al = (size_t)(colon - s);
        if (!is_port(colon + 1, len - al - 1) || memchr(s, ':', al))
            return -1;
        if (pol_ip_parse(s, al, out) != 0 || !pol_ip_is_v4(out))
            return -1;
        return 0;
    }
    return pol_ip_parse(s, len, out);
}

pol_xff_status_t pol_xff_client(const pol_cidr_set_t *trusted, const pol_ip_t *peer,
                                const pol_str_t *xff, size_t n, pol_ip_t *client, pol_str_t *bad)
{
    if (bad)
        *bad = (pol_str_t){0};
    *client = *peer;
    if (!pol_cidr_set_contains(trusted, peer))
        return POL_XFF_PEER;
    int seen = 0;
    for (size_t f = n; f-- > 0;) {
        const char *p = xff[f].p;
        size_t end = p ? xff[f].len : 0;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && p[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && is_blank(p[a]))
                a++;
            while (b > a && is_blank(p[b - 1]))
                b--;
            /* Next entry ends before this one's comma. */
            end = start > 0 ? start - 1 : 0;
            if (a == b)
                continue;
            pol_ip_t ip;
            if (pol_xff_parse_entry(p + a, b - a, &ip) != 0) {
                if (bad)
                    *bad = (pol_str_t){p + a, b - a};
                return POL_XFF_MALFORMED;
            }
            seen = 1;
            if (!pol_cidr_set_contains(trusted, &ip)) {
                *client = ip;
                return POL_XFF_FORWARDED;
            }
            *client = ip;
        }
    }
    return seen ? POL_XFF_ALL_TRUSTED : POL_XFF_PEER;
}
