/*
 * tests/unit/transport/test_http1_parse.c: the probe server's HTTP/1.1 request parser, sans-I/O.
 */
#include "transport/http1_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/check.h"

static int parse(const char *s, h1_req_t *r)
{
    return h1_parse(s, strlen(s), r);
}

int main(void)
{
    h1_req_t r;
    const char *get = "GET /readyz?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: kube-probe/1.29\r\n\r\n";
    CHECK(parse(get, &r) == (int)strlen(get));
    CHECK(h1_req_method_is(&r, "GET") && h1_req_path_is(&r, "/readyz"));
    CHECK(r.minor == 1 && r.keep_alive && r.body_len == 0);
    CHECK(r.query_len == 3 && memcmp(r.query, "x=1", 3) == 0);
    CHECK(r.authorization == NULL && r.authorization_len == 0);

    /* Authorization: trimmed value, any case of the name; two of them are refused. */
    CHECK(parse("GET /v1/node HTTP/1.1\r\nauthorization:  Bearer abc \r\n\r\n", &r) > 0);
    CHECK(r.authorization_len == 10 && memcmp(r.authorization, "Bearer abc", 10) == 0);
    CHECK(parse("GET / HTTP/1.1\r\nAuthorization: a\r\nAUTHORIZATION: b\r\n\r\n", &r) ==
          H1_PARSE_BAD);

    /* Query parameters: found, decoded, absent, malformed, too long. */
    {
        char v[16];
        CHECK(parse("GET /a?x=1&y=a%2Fb+c&z&x=2#frag HTTP/1.1\r\n\r\n", &r) > 0);
        CHECK(h1_req_path_is(&r, "/a"));
        CHECK(h1_req_query(&r, "x", v, sizeof(v)) == 1 && strcmp(v, "1") == 0);
        CHECK(h1_req_query(&r, "y", v, sizeof(v)) == 5 && strcmp(v, "a/b c") == 0);
        CHECK(h1_req_query(&r, "z", v, sizeof(v)) == 0 && v[0] == '\0');
        CHECK(h1_req_query(&r, "frag", v, sizeof(v)) == -1);
        CHECK(h1_req_query(&r, "w", v, sizeof(v)) == -1);
        CHECK(h1_req_query(&r, "y", v, 3) == -2);
        CHECK(parse("GET /a?p=%4 HTTP/1.1\r\n\r\n", &r) > 0);
        CHECK(h1_req_query(&r, "p", v, sizeof(v)) == -2);
        CHECK(parse("GET /a?p=%00 HTTP/1.1\r\n\r\n", &r) > 0);
        CHECK(h1_req_query(&r, "p", v, sizeof(v)) == -2);
        CHECK(parse("GET /a HTTP/1.1\r\n\r\n", &r) > 0 && r.query_len == 0);
        CHECK(h1_req_query(&r, "p", v, sizeof(v)) == -1);
    }

    /* Every prefix is incomplete, never an error. */
    for (size_t i = 0; i < strlen(get); i++)
        CHECK(h1_parse(get, i, &r) == H1_PARSE_INCOMPLETE);

    /* Bare LF line ends, leading empty line, absolute-form target. */
    CHECK(parse("\r\nGET http://h:1/livez HTTP/1.0\nConnection: Keep-Alive\n\n", &r) > 0);
    CHECK(h1_req_path_is(&r, "/livez") && r.minor == 0 && r.keep_alive);
    CHECK(parse("GET /livez HTTP/1.0\r\n\r\n", &r) > 0 && !r.keep_alive);
    CHECK(parse("GET /livez HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r) > 0 && !r.keep_alive);

    /* A body is skipped when complete. */
    const char *post = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
    CHECK(parse(post, &r) == (int)strlen(post) - 3 && r.body_len == 3);
    CHECK(h1_parse(post, strlen(post) - 5, &r) == H1_PARSE_INCOMPLETE);

    /* Malformed. */
    CHECK(parse("GET\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET  /x HTTP/1.1\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET x HTTP/1.1\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1 \r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x FTP/1.1\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("G(T /x HTTP/1.1\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nNo-Colon\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nA : b\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nA: b\x01\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\rA: b\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &r) == H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r) ==
          H1_PARSE_BAD);
    CHECK(parse("GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) == H1_PARSE_BAD);
    /* An error shows as soon as the request line is in, before the headers end. */
    CHECK(parse("BAD LINE\r\nHost: x\r\n", &r) == H1_PARSE_BAD);

    CHECK(parse("GET /x HTTP/2.0\r\n\r\n", &r) == H1_PARSE_VERSION);
    CHECK(parse("GET /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &r) ==
          H1_PARSE_BODY_TOO_LARGE);

    /* Too large: a head over the limit, or too many header lines. */
    static char big[H1_MAX_HEAD + 100];
    int n = snprintf(big, sizeof(big), "GET /x HTTP/1.1\r\nX: ");
    memset(big + n, 'a', sizeof(big) - n - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK(parse(big, &r) == H1_PARSE_TOO_LARGE);
    CHECK(h1_parse(big, H1_MAX_HEAD - 1, &r) == H1_PARSE_INCOMPLETE);
    char many[4096];
    size_t len = (size_t)snprintf(many, sizeof(many), "GET /x HTTP/1.1\r\n");
    for (int i = 0; i < H1_MAX_HEADERS + 1; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "H%d: v\r\n", i);
    len += (size_t)snprintf(many + len, sizeof(many) - len, "\r\n");
    CHECK(h1_parse(many, len, &r) == H1_PARSE_TOO_LARGE);

    printf("test_probe_parse: ok\n");
    return 0;
}
