/*
 * tests/unit/gateway_h1/test_h1_server.c: the gateway's HTTP/1.1 listener (transport/h1_server.h)
 * on a real uv loop and a real loopback port, driven by curl and by raw sockets.
 *
 * The loop runs on the main thread with a small application: every request is answered when
 * its body has ended with "METHOD TARGET BYTES SUM" (so a client sees that every body byte
 * arrived), requests with `Expect: 100-continue` get their 100, and /stream answers a chunked
 * NDJSON stream one line at a time. A client thread runs the scenarios: a chunked upload with
 * curl, a body over the limit (413), two URLs on one curl connection (reused: one accept),
 * three pipelined requests in one write over a raw socket (answers in order), 40 pipelined
 * requests in one write (past the pipeline limit: reading stops and resumes), a stream whose
 * first line reaches the client before the server even produces the second (flushed per
 * message), and Connection: close. Then a request the application never answers keeps a
 * graceful shutdown waiting until a hard close ends it (the application hears status 0). A watchdog
 * timer fails the test if the client never finishes.
 */
#include "transport/h1_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/check.h"

static int port;
static uv_async_t done_async, more_async;
static h1_srv_t *server;
static int server_closed;
static int opened; /* connections opened (atomic: read by the client thread) */
static int hang_fd = -1;
/* /hang is never answered: a graceful shutdown waits for it, a hard close aborts it. */
static int hang_seen, hang_errors, hang_status = -1;
static uv_timer_t force_timer;

/* The /stream request waiting for its next lines. */
static h1_conn_t *stream_conn;
static uint64_t stream_id;

typedef struct {
    size_t bytes[64];
    unsigned sum[64];
    char target[64][64];
    char method[64][8];
} conn_state_t;

static void *app_open(void *srv_ud, h1_conn_t *c)
{
    __atomic_add_fetch(&opened, 1, __ATOMIC_SEQ_CST);
    return calloc(1, sizeof(conn_state_t));
}

static void app_close(void *ud)
{
    free(ud);
}

static void app_head(void *ud, h1_conn_t *c, uint64_t id, const h1_conn_head_t *h)
{
    conn_state_t *st = ud;
    unsigned i = (unsigned)(id % 64);
    st->bytes[i] = 0;
    st->sum[i] = 0;
    snprintf(st->target[i], sizeof(st->target[i]), "%s", h->target);
    snprintf(st->method[i], sizeof(st->method[i]), "%s", h->method);
    if (h->expect_continue)
        CHECK_EQ(h1_conn_continue(c, id), 0);
}

static void app_body(void *ud, h1_conn_t *c, uint64_t id, const char *data, size_t len)
{
    conn_state_t *st = ud;
    unsigned i = (unsigned)(id % 64);
    st->bytes[i] += len;
    for (size_t k = 0; k < len; k++)
        st->sum[i] += (unsigned char)data[k];
}

static void app_end(void *ud, h1_conn_t *c, uint64_t id)
{
    conn_state_t *st = ud;
    unsigned i = (unsigned)(id % 64);
    if (strcmp(st->target[i], "/hang") == 0) {
        __atomic_store_n(&hang_seen, 1, __ATOMIC_SEQ_CST);
        return;
    }
    if (strcmp(st->target[i], "/stream") == 0) {
        h1_conn_hdr_t type = {"Content-Type", 12, "application/x-ndjson", 20};
        CHECK_EQ(h1_conn_respond(c, id, 200, &type, 1, -1), 0);
        CHECK(h1_conn_body(c, id, "{\"n\":1}\n", 8) >= 0);
        stream_conn = c;
        stream_id = id;
        return;
    }
    char body[200];
    int n = snprintf(body, sizeof(body), "%s %s %zu %u", st->method[i], st->target[i], st->bytes[i],
                     st->sum[i]);
    h1_conn_hdr_t type = {"Content-Type", 12, "text/plain", 10};
    CHECK_EQ(h1_conn_respond(c, id, 200, &type, 1, n), 0);
    CHECK(h1_conn_body(c, id, body, (size_t)n) >= 0);
    CHECK_EQ(h1_conn_end(c, id), 0);
}

static void app_error(void *ud, h1_conn_t *c, uint64_t id, int status, const char *why)
{
    conn_state_t *st = ud;
    if (strcmp(st->target[id % 64], "/hang") == 0) {
        hang_errors++;
        hang_status = status;
    }
    if (c == stream_conn && id == stream_id)
        stream_conn = NULL;
}

/* The client read the first line: send the rest (on the loop). */
static void on_more(uv_async_t *a)
{
    CHECK(stream_conn);
    CHECK(h1_conn_body(stream_conn, stream_id, "{\"n\":2}\n", 8) >= 0);
    CHECK(h1_conn_body(stream_conn, stream_id, "{\"n\":3}\n", 8) >= 0);
    CHECK_EQ(h1_conn_end(stream_conn, stream_id), 0);
    stream_conn = NULL;
}

/* ---- client helpers ------------------------------------------------------------------------- */

/* Runs a shell command, returns its stdout (static buffer). */
static const char *sh(const char *cmd)
{
    static char out[65536];
    FILE *p = popen(cmd, "r");
    CHECK(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    pclose(p);
    return out;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    return fd;
}

/* Reads until the peer closes (or until `until` appears, when given). */
static size_t read_all(int fd, char *buf, size_t cap, const char *until)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        CHECK(r >= 0); /* a timeout (-1) fails */
        n += (size_t)r;
        buf[n] = 0;
        if (r == 0 || (until && strstr(buf, until)))
            return n;
        CHECK(n < cap - 1);
    }
}

static void *client(void *arg)
{
    char url[128], cmd[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    char dir[] = "/tmp/h1srvXXXXXX";
    CHECK(mkdtemp(dir));

    /* 1. A chunked upload of 300,000 bytes with curl: every byte arrives. */
    char file[128];
    snprintf(file, sizeof(file), "%s/body", dir);
    FILE *f = fopen(file, "w");
    CHECK(f);
    unsigned sum = 0;
    for (int i = 0; i < 300000; i++) {
        int ch = 'a' + i % 26;
        sum += (unsigned)ch;
        fputc(ch, f);
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "curl -sS --http1.1 -H 'Transfer-Encoding: chunked' --data-binary @%s "
             "-w ' %%{http_code}' %s/upload",
             file, url);
    char want[128];
    snprintf(want, sizeof(want), "POST /upload 300000 %u 200", sum);
    CHECK_STR(sh(cmd), want);

    /* 2. A body over the limit (1 MiB): 413, before the body is sent. */
    snprintf(cmd, sizeof(cmd),
             "head -c 2000000 /dev/zero > %s/big && curl -sS --http1.1 --data-binary @%s/big "
             "-o /dev/null -w '%%{http_code}' %s/big",
             dir, dir, url);
    CHECK_STR(sh(cmd), "413");

    /* 3. Keep-alive: two URLs on one curl run share one connection. */
    int before = __atomic_load_n(&opened, __ATOMIC_SEQ_CST);
    snprintf(cmd, sizeof(cmd), "curl -sS --http1.1 -v %s/one %s/two 2>&1", url, url);
    const char *out = sh(cmd);
    CHECK_CONTAINS(out, "GET /one 0 0");
    CHECK_CONTAINS(out, "GET /two 0 0");
    CHECK_CONTAINS(out, "Re-using existing connection");
    CHECK_EQ(__atomic_load_n(&opened, __ATOMIC_SEQ_CST) - before, 1);

    /* 4. Pipelining: three requests in one write, answered in order; the last closes. */
    int fd = connect_server();
    const char *three = "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                        "GET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(send(fd, three, strlen(three), MSG_NOSIGNAL), (ssize_t)strlen(three));
    static char buf[65536];
    read_all(fd, buf, sizeof(buf), NULL);
    close(fd);
    const char *a1 = strstr(buf, "GET /p1 0 0"), *a2 = strstr(buf, "POST /p2 3 294"),
               *a3 = strstr(buf, "GET /p3 0 0");
    CHECK(a1 && a2 && a3 && a1 < a2 && a2 < a3);
    CHECK_CONTAINS(buf, "Connection: close\r\n");

    /* 4b. 40 pipelined requests in one write, past the pipeline limit (16): the binding stops
     * reading, feeds the rest as answers leave, and all 40 come back in order. Once with
     * Connection: close on the last, once with a half-close (FIN) after the last instead. */
    for (int half = 0; half < 2; half++) {
        fd = connect_server();
        static char many[8192];
        size_t ml = 0;
        for (int i = 0; i < 40; i++)
            ml += (size_t)snprintf(many + ml, sizeof(many) - ml,
                                   "GET /m%d HTTP/1.1\r\nHost: x\r\n%s\r\n", i,
                                   i == 39 && !half ? "Connection: close\r\n" : "");
        CHECK_EQ(send(fd, many, ml, MSG_NOSIGNAL), (ssize_t)ml);
        if (half)
            CHECK(shutdown(fd, SHUT_WR) == 0);
        read_all(fd, buf, sizeof(buf), NULL);
        close(fd);
        const char *at = buf;
        for (int i = 0; i < 40; i++) {
            char want_i[32];
            snprintf(want_i, sizeof(want_i), "GET /m%d 0 0", i);
            const char *p = strstr(at, want_i);
            if (!p)
                fprintf(stderr, "answer %d missing (half-close %d)\n", i, half);
            CHECK(p);
            at = p + strlen(want_i);
        }
    }

    /* 5. Streaming: the first NDJSON line arrives before the server has made the second. */
    fd = connect_server();
    const char *sreq = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(send(fd, sreq, strlen(sreq), MSG_NOSIGNAL), (ssize_t)strlen(sreq));
    read_all(fd, buf, sizeof(buf), "{\"n\":1}\n\r\n");
    CHECK_CONTAINS(buf, "Transfer-Encoding: chunked\r\n");
    CHECK(!strstr(buf, "{\"n\":2}"));
    uv_async_send(&more_async);
    read_all(fd, buf, sizeof(buf), "0\r\n\r\n");
    CHECK_CONTAINS(buf, "8\r\n{\"n\":2}\n\r\n8\r\n{\"n\":3}\n\r\n0\r\n\r\n");
    close(fd);

    /* 6. curl streams it too (-N: no buffering). */
    snprintf(cmd, sizeof(cmd), "curl -sS -N --http1.1 %s/echo -d 'x=1'", url);
    CHECK_STR(sh(cmd), "POST /echo 3 230");

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);

    /* 7. A request the application never answers, then the server stops (see on_done). */
    hang_fd = connect_server();
    const char *hang = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(send(hang_fd, hang, strlen(hang), MSG_NOSIGNAL), (ssize_t)strlen(hang));
    while (!__atomic_load_n(&hang_seen, __ATOMIC_SEQ_CST))
        usleep(1000);
    uv_async_send(&done_async);
    return NULL;
}

static void on_server_closed(void *ud)
{
    server_closed = 1;
}

/* The graceful stop is still waiting for /hang (an answer is owed, however long it takes):
 * close hard; the application hears that /hang is over with status 0. */
static void on_force(uv_timer_t *t)
{
    CHECK(!server_closed);
    CHECK_EQ(hang_errors, 0);
    h1_srv_close(server, NULL, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_done(uv_async_t *a)
{
    h1_srv_shutdown(server, on_server_closed, NULL);
    uv_close((uv_handle_t *)&done_async, NULL);
    uv_close((uv_handle_t *)&more_async, NULL);
    uv_timer_init(a->loop, &force_timer);
    uv_timer_start(&force_timer, on_force, 0, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    fprintf(stderr, "watchdog: the client did not finish in 60 s\n");
    exit(1);
}

int main(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    h1_srv_handler_t h = {
        .on_open = app_open,
        .on_close = app_close,
        .cbs = {.on_head = app_head, .on_body = app_body, .on_end = app_end, .on_error = app_error},
    };
    h1_srv_config_t cfg = {.conn = {.max_body = 1 << 20}, .reuseport = 1};
    server = h1_srv_new(&loop, &cfg, &h, NULL);
    CHECK(server);
    CHECK(h1_srv_listen(server, "127.0.0.1", 0) == 0);
    port = h1_srv_port(server);
    CHECK(port > 0);
    /* SO_REUSEPORT: a second listener (another worker) binds the same port; without it, no. */
    h1_srv_t *twin = h1_srv_new(&loop, &cfg, &h, NULL);
    CHECK(twin && h1_srv_listen(twin, "127.0.0.1", port) == 0);
    h1_srv_close(twin, NULL, NULL);
    h1_srv_config_t plain = cfg;
    plain.reuseport = 0;
    twin = h1_srv_new(&loop, &plain, &h, NULL);
    CHECK(twin && h1_srv_listen(twin, "127.0.0.1", port) == UV_EADDRINUSE);
    h1_srv_close(twin, NULL, NULL);
    CHECK(uv_async_init(&loop, &done_async, on_done) == 0);
    CHECK(uv_async_init(&loop, &more_async, on_more) == 0);
    uv_timer_t watchdog;
    uv_timer_init(&loop, &watchdog);
    uv_timer_start(&watchdog, on_watchdog, 60000, 0);
    uv_unref((uv_handle_t *)&watchdog);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, client, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK(server_closed);
    CHECK_EQ(hang_errors, 1);
    CHECK_EQ(hang_status, 0);
    close(hang_fd);
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    fprintf(stderr, "ok\n");
    return 0;
}
