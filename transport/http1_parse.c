/*
 * transport/http1_parse.c: the HTTP/1.1 request parser behind transport/http1_parse.h.
 *
 * Stateless: each call parses from the start of the buffer, line by line, and stops at the
 * first error, so a malformed request line is answered before its headers arrive. Heads are
 * at most H1_MAX_HEAD bytes, so re-scanning on each read costs little.
 */
#include "transport/http1_parse.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds the next line in buf[pos..limit): sets *end (before CR LF / LF) and returns the
 * position after the line break, 0 when no line break yet, -1 on a bare CR. */
static long next_line(const char *buf, size_t pos, size_t limit, size_t *end)
{
    const char *nl = memchr(buf + pos, '\n', limit - pos);
    if (!nl)
        return 0;
    size_t e = (size_t)(nl - buf);
    size_t after = e + 1;
    if (e > pos && buf[e - 1] == '\r')
        e--;
    if (memchr(buf + pos, '\r', e - pos))
        return -1;
    *end = e;
    return (long)after;
}

static int parse_request_line(const char *s, size_t n, h1_req_t *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i > 32 || i >= n || s[i] != ' ')
        return H1_PARSE_BAD;
    req->method = s;
    req->method_len = i;
    size_t t = ++i;
    while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == t || i >= n || s[i] != ' ')
        return H1_PARSE_BAD;
    const char *target = s + t;
    size_t tlen = i - t;
    /* absolute-form: skip "http://authority". */
    if (tlen > 7 && strncasecmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', tlen - 7);
        if (!slash) {
            target = "/";
            tlen = 1;
        } else {
            tlen -= (size_t)(slash - target);
            target = slash;
        }
    }
    if (target[0] != '/')
        return H1_PARSE_BAD;
    size_t plen = 0;
    while (plen < tlen && target[plen] != '?' && target[plen] != '#')
        plen++;
    req->path = target;
    req->path_len = plen;
    if (plen < tlen && target[plen] == '?') {
        size_t q = plen + 1, qe = q;
        while (qe < tlen && target[qe] != '#')
            qe++;
        req->query = target + q;
        req->query_len = qe - q;
    }
    const char *v = s + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return H1_PARSE_BAD;
    if (v[5] != '1')
        return H1_PARSE_VERSION;
    req->minor = v[7] == '0' ? 0 : 1;
    return 0;
}

/* Case-insensitive comparison of a header name with a lowercase literal. */
static int name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* Scans a comma-separated Connection value for "close" and "keep-alive". */
static void parse_connection(const char *v, size_t n, int *close_, int *keep)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t t = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - t == 5 && strncasecmp(v + t, "close", 5) == 0)
            *close_ = 1;
        else if (i - t == 10 && strncasecmp(v + t, "keep-alive", 10) == 0)
            *keep = 1;
    }
}

int h1_parse(const char *buf, size_t len, h1_req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->authorization = NULL;
    size_t limit = len < H1_MAX_HEAD ? len : H1_MAX_HEAD;
    size_t pos = 0, end = 0;
    int empties = 0, have_line = 0, headers = 0, close_ = 0, keep = 0;
    long body = -1;
    for (;;) {
        long after = next_line(buf, pos, limit, &end);
        if (after < 0)
            return H1_PARSE_BAD;
        if (after == 0)
            return len >= H1_MAX_HEAD ? H1_PARSE_TOO_LARGE : H1_PARSE_INCOMPLETE;
        const char *line = buf + pos;
        size_t n = end - pos;
        pos = (size_t)after;
        if (!have_line) {
            /* RFC 9112 2.2: ignore at least one empty line before the request line. */
            if (n == 0) {
                if (++empties > 4)
                    return H1_PARSE_BAD;
                continue;
            }
            int rc = parse_request_line(line, n, req);
            if (rc < 0)
                return rc;
            have_line = 1;
            continue;
        }
        if (n == 0)
            break; /* end of the head */
        if (++headers > H1_MAX_HEADERS)
            return H1_PARSE_TOO_LARGE;
        size_t c = 0;
        while (c < n && is_tchar((unsigned char)line[c]))
            c++;
        if (c == 0 || c >= n || line[c] != ':')
            return H1_PARSE_BAD; /* also rejects obs-fold and space before ':' */
        const char *v = line + c + 1;
        size_t vn = n - c - 1;
        for (size_t k = 0; k < vn; k++) {
            unsigned char ch = (unsigned char)v[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return H1_PARSE_BAD;
        }
        while (vn && (v[0] == ' ' || v[0] == '\t'))
            v++, vn--;
        while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
            vn--;
        if (name_is(line, c, "connection")) {
            parse_connection(v, vn, &close_, &keep);
        } else if (name_is(line, c, "content-length")) {
            if (vn == 0)
                return H1_PARSE_BAD;
            long x = 0;
            for (size_t k = 0; k < vn; k++) {
                if (v[k] < '0' || v[k] > '9')
                    return H1_PARSE_BAD;
                x = x * 10 + (v[k] - '0');
                if (x > H1_MAX_BODY)
                    x = H1_MAX_BODY + 1; /* saturate: too large either way */
            }
            if (body >= 0 && body != x)
                return H1_PARSE_BAD;
            body = x;
        } else if (name_is(line, c, "authorization")) {
            if (req->authorization)
                return H1_PARSE_BAD; /* which one would count? */
            req->authorization = v;
            req->authorization_len = vn;
        } else if (name_is(line, c, "transfer-encoding")) {
            return H1_PARSE_BAD;
        }
    }
    req->head_len = pos;
    req->keep_alive = req->minor == 1 ? !close_ : (keep && !close_);
    if (body > H1_MAX_BODY)
        return H1_PARSE_BODY_TOO_LARGE;
    req->body_len = body > 0 ? (size_t)body : 0;
    if (len - pos < req->body_len)
        return H1_PARSE_INCOMPLETE;
    req->body = req->body_len ? buf + pos : NULL;
    return (int)(pos + req->body_len);
}

int h1_req_method_is(const h1_req_t *req, const char *m)
{
    return strlen(m) == req->method_len && memcmp(req->method, m, req->method_len) == 0;
}

int h1_req_path_is(const h1_req_t *req, const char *p)
{
    return strlen(p) == req->path_len && memcmp(req->path, p, req->path_len) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated); the length or -2. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -2;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -2;
        out[o++] = c;
    }
    if (cap == 0 || o > INT32_MAX)
        return -2;
    out[o] = '\0';
    return (int)o;
}

int h1_req_query(const h1_req_t *req, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *q = req->query;
    size_t n = req->query ? req->query_len : 0;
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && q[e] != '&' && q[e] != ';')
            e++;
        const char *eq = memchr(q + i, '=', e - i);
        size_t klen = eq ? (size_t)(eq - (q + i)) : e - i;
        if (klen == nlen && memcmp(q + i, name, nlen) == 0) {
            if (!eq)
                return decode("", 0, out, cap);
            return decode(eq + 1, (size_t)(q + e - (eq + 1)), out, cap);
        }
        i = e + 1;
    }
    return -1;
}
