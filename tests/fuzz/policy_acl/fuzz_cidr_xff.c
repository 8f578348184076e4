/*
 * tests/fuzz/policy_acl/fuzz_cidr_xff.c: libFuzzer harness over policy/cidr.h.
 *
 * The first byte picks a mode.
 *   even: the rest is one prefix string for pol_cidr_parse. When it parses, the prefix contains
 *         its own address, and formatting it and parsing "addr/len" again gives the same prefix.
 *   odd:  the rest is split at 0xFF bytes into: prefixes (one per line) for a trusted set, the
 *         peer address, then X-Forwarded-For field values. The set must agree with a naive
 *         check of every prefix for each address seen; pol_xff_client must agree with a
 *         reference walk written the plain way (join the fields with ",", split, go right to
 *         left), and its result must be consistent with its status.
 * Any bytes: never a crash, a leak or a read outside the input (ASan).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/cidr.h"

#define MAXP 16
#define MAXF 6

static char *dupn(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* The address parser against inet_pton on the same bytes. */
static void check_ip_parse(const uint8_t *data, size_t size)
{
    pol_ip_t ip;
    int ours = pol_ip_parse((const char *)data, size, &ip) == 0;
    if (size > 45 || memchr(data, '\0', size)) {
        if (ours)
            abort();
        return;
    }
    char buf[64];
    memcpy(buf, data, size);
    buf[size] = '\0';
    uint8_t b[16];
    int theirs =
        strchr(buf, ':') ? inet_pton(AF_INET6, buf, b) == 1 : inet_pton(AF_INET, buf, b) == 1;
    if (ours != theirs)
        abort();
    if (ours && !strchr(buf, ':') &&
        (!pol_ip_is_v4(&ip) || (uint32_t)ip.lo != ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                                   (uint32_t)b[2] << 8 | b[3])))
        abort();
}

static void fuzz_prefix(const uint8_t *data, size_t size)
{
    check_ip_parse(data, size);
    char *s = dupn(data, size);
    pol_cidr_t c;
    char err[256];
    if (pol_cidr_parse(s, &c, err, sizeof(err)) == 0) {
        if (!pol_cidr_contains(&c, &c.addr))
            abort();
        char a[POL_IP_STRLEN], again[80];
        if (pol_ip_format(&c.addr, a, sizeof(a)) < 0)
            abort();
        /* An IPv4(-mapped) address formats as a.b.c.d, so its length is written without the
         * 96 mapped bits (host bits are zero, so the ::ffff part is inside the prefix). */
        if (pol_ip_is_v4(&c.addr) && c.bits < 96)
            abort();
        unsigned bits = pol_ip_is_v4(&c.addr) ? c.bits - 96 : c.bits;
        snprintf(again, sizeof(again), "%s/%u", a, bits);
        pol_cidr_t d;
        if (pol_cidr_parse(again, &d, err, sizeof(err)) != 0)
            abort();
        if (!pol_ip_equal(&c.addr, &d.addr) || c.bits != d.bits)
            abort();
    } else if (!err[0]) {
        abort(); /* an error always says why */
    }
    free(s);
}

/* The reference walk: join, split, right to left. */
static pol_xff_status_t ref_xff(const pol_cidr_set_t *trusted, const pol_ip_t *peer,
                                const pol_str_t *f, size_t n, pol_ip_t *client)
{
    *client = *peer;
    if (!pol_cidr_set_contains(trusted, peer))
        return POL_XFF_PEER;
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += f[i].len + 1;
    char *all = malloc(total), *w = all;
    for (size_t i = 0; i < n; i++) {
        memcpy(w, f[i].p, f[i].len);
        w += f[i].len;
        *w++ = ',';
    }
    size_t len = (size_t)(w - all);
    /* Split into entries. */
    size_t starts[4096], lens[4096], k = 0, s = 0;
    for (size_t i = 0; i <= len && k < 4096; i++) {
        if (i == len || all[i] == ',') {
            size_t a = s, b = i;
            while (a < b && (all[a] == ' ' || all[a] == '\t'))
                a++;
            while (b > a && (all[b - 1] == ' ' || all[b - 1] == '\t'))
                b--;
            if (b > a) {
                starts[k] = a;
                lens[k] = b - a;
                k++;
            }
            s = i + 1;
        }
    }
    pol_xff_status_t st = POL_XFF_PEER;
    for (size_t j = k; j-- > 0;) {
        pol_ip_t ip;
        if (pol_xff_parse_entry(all + starts[j], lens[j], &ip) != 0) {
            st = POL_XFF_MALFORMED;
            break;
        }
        *client = ip;
        if (!pol_cidr_set_contains(trusted, &ip)) {
            st = POL_XFF_FORWARDED;
            break;
        }
        st = POL_XFF_ALL_TRUSTED;
    }
    free(all);
    return st;
}

static void fuzz_xff(const uint8_t *data, size_t size)
{
    /* Split at 0xFF. */
    const uint8_t *part[2 + MAXF];
    size_t plen[2 + MAXF], np = 0, s = 0;
    for (size_t i = 0; i <= size && np < 2 + MAXF; i++) {
        if (i == size || data[i] == 0xFF) {
            part[np] = data + s;
            plen[np] = i - s;
            np++;
            s = i + 1;
        }
    }
    if (np < 2)
        return;
    /* Prefixes, one per line. */
    char *lines = dupn(part[0], plen[0]);
    const char *pv[MAXP];
    size_t npv = 0;
    for (char *tok = lines, *nl; tok && npv < MAXP; tok = nl) {
        nl = strchr(tok, '\n');
        if (nl)
            *nl++ = '\0';
        pv[npv++] = tok;
    }
    char err[512];
    pol_cidr_set_t *set = pol_cidr_set_new(pv, npv, err, sizeof(err));
    pol_cidr_t cp[MAXP];
    size_t ncp = 0;
    int all_ok = 1;
    for (size_t i = 0; i < npv; i++) {
        char e2[256];
        if (pol_cidr_parse(pv[i], &cp[ncp], e2, sizeof(e2)) == 0)
            ncp++;
        else
            all_ok = 0;
    }
    if (!set != !all_ok)
        abort(); /* the set is built exactly when every prefix parses */

    pol_ip_t peer;
    if (pol_ip_parse((const char *)part[1], plen[1], &peer) != 0)
        peer = (pol_ip_t){0, 0xFFFF0A000001ull}; /* 10.0.0.1 */
    pol_str_t f[MAXF];
    size_t nf = np - 2;
    for (size_t i = 0; i < nf; i++)
        f[i] = (pol_str_t){(const char *)part[2 + i], plen[2 + i]};

    if (set) {
        /* The set against the naive check, on the peer and on every parsable entry. */
        pol_ip_t probes[64];
        size_t npr = 0;
        probes[npr++] = peer;
        for (size_t i = 0; i < nf && npr < 64; i++) {
            pol_ip_t ip;
            if (pol_xff_parse_entry(f[i].p, f[i].len, &ip) == 0)
                probes[npr++] = ip;
        }
        for (size_t i = 0; i < npr; i++) {
            int naive = 0;
            for (size_t j = 0; j < ncp; j++)
                naive |= pol_cidr_contains(&cp[j], &probes[i]);
            if (naive != pol_cidr_set_contains(set, &probes[i]))
                abort();
        }
        if (pol_cidr_set_ranges(set) > pol_cidr_set_size(set))
            abort();
    }

    pol_ip_t client, rclient;
    pol_str_t bad;
    pol_xff_status_t st = pol_xff_client(set, &peer, f, nf, &client, &bad);
    pol_xff_status_t rst = ref_xff(set, &peer, f, nf, &rclient);
    if (st != rst || !pol_ip_equal(&client, &rclient))
        abort();
    switch (st) {
    case POL_XFF_PEER:
        if (!pol_ip_equal(&client, &peer))
            abort();
        break;
    case POL_XFF_FORWARDED:
        if (pol_cidr_set_contains(set, &client))
            abort();
        break;
    case POL_XFF_ALL_TRUSTED:
        if (!pol_cidr_set_contains(set, &client))
            abort();
        break;
    case POL_XFF_MALFORMED: {
        pol_ip_t ip;
        if (!bad.p || bad.len == 0 || pol_xff_parse_entry(bad.p, bad.len, &ip) == 0)
            abort();
        if (!pol_cidr_set_contains(set, &client))
            abort();
        int inside = 0;
        for (size_t i = 0; i < nf; i++)
            inside |= bad.p >= f[i].p && bad.p + bad.len <= f[i].p + f[i].len;
        if (!inside)
            abort();
        break;
    }
    }
    pol_cidr_set_free(set);
    free(lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_xff(data + 1, size - 1);
    else
        fuzz_prefix(data + 1, size - 1);
    return 0;
}
