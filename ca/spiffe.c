/*
 * ca/spiffe.c: formatting and strict parsing of meshd's SPIFFE IDs (see ca/spiffe.h).
 */
#include "ca/spiffe.h"

#include <stdio.h>
#include <string.h>

#define SCHEME "spiffe://"

static int td_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int td_ok_n(const char *s, size_t n)
{
    if (n == 0 || n > SPF_TD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!td_char(s[i]))
            return 0;
    return 1;
}

static int name_ok_n(const char *s, size_t n)
{
    if (n == 0 || n > SPF_NAME_MAX)
        return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

int spf_trust_domain_ok(const char *td)
{
    return td && td_ok_n(td, strlen(td));
}

int spf_name_ok(const char *name)
{
    return name && name_ok_n(name, strlen(name));
}

int spf_format(char *out, size_t outlen, const char *td, spf_kind_t kind, const char *name)
{
    if (!spf_trust_domain_ok(td) || !spf_name_ok(name) ||
        (kind != SPF_KIND_NODE && kind != SPF_KIND_SVC))
        return -1;
    int n =
        snprintf(out, outlen, SCHEME "%s/%s/%s", td, kind == SPF_KIND_NODE ? "node" : "svc", name);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int spf_parse(const char *uri, size_t len, char td[SPF_TD_MAX + 1], spf_kind_t *kind,
              char name[SPF_NAME_MAX + 1])
{
    size_t sl = strlen(SCHEME);
    if (len < sl || memcmp(uri, SCHEME, sl) != 0)
        return -1;
    const char *p = uri + sl, *end = uri + len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash || !td_ok_n(p, (size_t)(slash - p)))
        return -1;
    size_t tdn = (size_t)(slash - p);
    const char *k = slash + 1;
    const char *slash2 = memchr(k, '/', (size_t)(end - k));
    if (!slash2)
        return -1;
    size_t kn = (size_t)(slash2 - k);
    spf_kind_t kd;
    if (kn == 4 && memcmp(k, "node", 4) == 0)
        kd = SPF_KIND_NODE;
    else if (kn == 3 && memcmp(k, "svc", 3) == 0)
        kd = SPF_KIND_SVC;
    else
        return -1;
    const char *nm = slash2 + 1;
    size_t nn = (size_t)(end - nm);
    if (!name_ok_n(nm, nn)) /* also refuses a further '/', '?', '#' or a NUL inside */
        return -1;
    memcpy(td, p, tdn);
    td[tdn] = '\0';
    memcpy(name, nm, nn);
    name[nn] = '\0';
    *kind = kd;
    return 0;
}
