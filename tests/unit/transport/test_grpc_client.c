/*
 * tests/unit/transport/test_grpc_client.c: transport/grpc_client.h against the real Python
 * gRPC echo server (tests/peers/echo_server.py): unary, server streaming, a status error,
 * grpc.health.v1 Check, a deadline, connection refused and a server that goes away; and (argv[2]:
 * tests/tls/mkcerts.sh) a TLS server that accepts and never answers, ended by the handshake
 * timeout.
 *
 * argv[1] is echo_server.py; the server is started here with /usr/bin/python3 on a free
 * loopback port and killed (by its PID) at the end, also when a check fails.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "grpc/health_msg.h"
#include "transport/grpc_client.h"
#include "transport/grpc_status.h"
#include "transport/tls.h"
#include "transport/tls_holder.h"

static pid_t g_server = -1;

static void kill_server(void)
{
    if (g_server > 0) {
        kill(g_server, SIGKILL);
        waitpid(g_server, NULL, 0);
        g_server = -1;
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            kill_server();                                                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Starts echo_server.py and returns its port (read from its "listening on PORT" line). */
static int start_server(const char *script)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    g_server = fork();
    CHECK(g_server >= 0);
    if (g_server == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, "--port", "0", "--id", "py1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[256];
    size_t have = 0;
    int port = -1;
    while (have < sizeof(buf) - 1) {
        ssize_t n = read(fds[0], buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *p = strstr(buf, "listening on ");
        if (p && strchr(p, '\n')) {
            port = atoi(p + 13);
            break;
        }
    }
    close(fds[0]);
    CHECK(port > 0);
    return port;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof(a));
    socklen_t l = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

/* ---- protobuf bits of meshd.test.EchoRequest / EchoReply ---------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* EchoRequest{payload, reply_count, status_code, status_message, sleep_ms}. */
static size_t echo_request(uint8_t *out, const char *payload, unsigned reply_count, unsigned status,
                           const char *status_msg, unsigned sleep_ms)
{
    size_t n = 0;
    if (payload) {
        out[n++] = 0x0a;
        n += put_varint(out + n, strlen(payload));
        memcpy(out + n, payload, strlen(payload));
        n += strlen(payload);
    }
    if (reply_count) {
        out[n++] = 0x10;
        n += put_varint(out + n, reply_count);
    }
    if (status) {
        out[n++] = 0x20;
        n += put_varint(out + n, status);
    }
    if (status_msg) {
        out[n++] = 0x2a;
        n += put_varint(out + n, strlen(status_msg));
        memcpy(out + n, status_msg, strlen(status_msg));
        n += strlen(status_msg);
    }
    if (sleep_ms) {
        out[n++] = 0x30;
        n += put_varint(out + n, sleep_ms);
    }
    return n;
}

/* Finds the length-delimited field `field` of a message; returns its length or -1. */
static long find_bytes(const uint8_t *m, size_t len, unsigned field, const uint8_t **out)
{
    size_t i = 0;
    while (i < len) {
        uint64_t key = 0;
        int shift = 0;
        while (i < len) {
            key |= (uint64_t)(m[i] & 0x7f) << shift;
            shift += 7;
            if (!(m[i++] & 0x80))
                break;
        }
        unsigned wt = key & 7;
        uint64_t v = 0;
        shift = 0;
        if (wt == 0 || wt == 2) {
            while (i < len) {
                v |= (uint64_t)(m[i] & 0x7f) << shift;
                shift += 7;
                if (!(m[i++] & 0x80))
                    break;
            }
        } else {
            return -1;
        }
        if (wt == 2) {
            if ((key >> 3) == field) {
                *out = m + i;
                return (long)v;
            }
            i += v;
        }
    }
    return -1;
}

/* ---- a call recorder ------------------------------------------------------------------------ */

typedef struct rec {
    int messages;
    char last_payload[256];
    char server_id[64];
    int ended;
    int status;
    char message[512];
    int connected_events, disconnected_events;
} rec_t;

static void rec_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    rec_t *r = ud;
    r->messages++;
    const uint8_t *v;
    long n = find_bytes(msg, len, 1, &v);
    if (n >= 0)
        snprintf(r->last_payload, sizeof(r->last_payload), "%.*s", (int)n, (const char *)v);
    n = find_bytes(msg, len, 2, &v);
    if (n >= 0)
        snprintf(r->server_id, sizeof(r->server_id), "%.*s", (int)n, (const char *)v);
}

static void rec_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    rec_t *r = ud;
    r->ended++;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%s", message);
}

static const mesh_grpc_call_ops_t rec_ops = {rec_message, rec_end};

static void on_event(void *ud, mesh_grpc_client_event_t ev, mesh_grpc_conn_reason_t reason,
                     const char *why)
{
    rec_t *r = ud;
    if (ev == MESH_GRPC_CLIENT_CONNECTED)
        r->connected_events++;
    else
        r->disconnected_events++;
}

/* Runs the loop until *flag is nonzero (bounded by a generous deadline). */
static void run_until(uv_loop_t *loop, int *flag)
{
    uint64_t deadline = uv_now(loop) + 20000;
    while (!*flag) {
        CHECK(uv_now(loop) < deadline);
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
}

static void drain_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK(argc >= 2);
    int port = start_server(argv[1]);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t ev = {0};
    mesh_grpc_client_cfg_t cfg = {.addr = addr, .on_event = on_event, .ud = &ev};
    mesh_grpc_client_t *c = mesh_grpc_client_new(&loop, &cfg);
    CHECK(c);
    uint8_t req[512];

    fprintf(stderr, "-- unary\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "hello", 0, 0, NULL, 0);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 5000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == 0);
        CHECK(r.messages == 1);
        CHECK(strcmp(r.last_payload, "hello") == 0);
        CHECK(strcmp(r.server_id, "py1") == 0);
        CHECK(ev.connected_events == 1);
        CHECK(mesh_grpc_client_connected(c));
    }

    fprintf(stderr, "-- server stream\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "s", 4, 0, NULL, 0);
        mesh_grpc_call_t *call =
            mesh_grpc_call_start(c, "/meshd.test.Echo/ServerStream", NULL, 0, 5000, &rec_ops, &r);
        CHECK(call);
        CHECK(mesh_grpc_call_send(call, req, n) == 0);
        mesh_grpc_call_close_send(call);
        CHECK(mesh_grpc_call_send(call, req, n) == -1); /* half-closed */
        run_until(&loop, &r.ended);
        CHECK(r.status == 0);
        CHECK(r.messages == 4);
    }

    fprintf(stderr, "-- status error with a message\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "x", 0, 9, "precondition: 100% failed", 0);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 5000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == MESH_GRPC_FAILED_PRECONDITION);
        CHECK(strcmp(r.message, "precondition: 100% failed") == 0);
        CHECK(r.messages == 0);
    }

    fprintf(stderr, "-- unknown method\n");
    {
        rec_t r = {0};
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Nope", NULL, 0, 5000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == MESH_GRPC_UNIMPLEMENTED);
    }

    fprintf(stderr, "-- health check\n");
    {
        rec_t r = {0};
        uint8_t hb[64];
        int hn = mesh_health_encode_request("", hb, sizeof(hb));
        CHECK(hn >= 0);
        mesh_grpc_call_ops_t ops = rec_ops;
        CHECK(mesh_grpc_unary(c, MESH_HEALTH_CHECK_PATH, hb, (size_t)hn, 5000, &ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == 0 && r.messages == 1);
    }

    fprintf(stderr, "-- deadline\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "slow", 0, 0, NULL, 3000);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 200, &rec_ops, &r));
        run_until(&loop, &r.ended);
        fprintf(stderr, "   status %d %s\n", r.status, r.message);
        CHECK(r.status == MESH_GRPC_DEADLINE_EXCEEDED);
        CHECK(r.ended == 1);
    }

    fprintf(stderr, "-- cancel\n");
    {
        rec_t r = {0}, r2 = {0};
        size_t n = echo_request(req, "slow", 0, 0, NULL, 3000);
        mesh_grpc_call_t *call =
            mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 0, &rec_ops, &r);
        CHECK(call);
        mesh_grpc_call_cancel(call);
        n = echo_request(req, "after", 0, 0, NULL, 0);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 5000, &rec_ops, &r2));
        run_until(&loop, &r2.ended);
        CHECK(r2.status == 0 && r.ended == 0);
    }

    fprintf(stderr, "-- server goes away mid-call\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "slow", 0, 0, NULL, 10000);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 0, &rec_ops, &r));
        for (int i = 0; i < 20; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        kill_server();
        run_until(&loop, &r.ended);
        CHECK(r.status == MESH_GRPC_UNAVAILABLE);
        CHECK(ev.disconnected_events >= 1);
        CHECK(!mesh_grpc_client_connected(c));
    }

    fprintf(stderr, "-- connection refused\n");
    {
        rec_t r = {0};
        size_t n = echo_request(req, "x", 0, 0, NULL, 0);
        CHECK(mesh_grpc_unary(c, "/meshd.test.Echo/Unary", req, n, 5000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == MESH_GRPC_UNAVAILABLE);
        CHECK(strstr(r.message, "refused") != NULL);
        fprintf(stderr, "   message: %s\n", r.message);
    }
    mesh_grpc_client_free(c);

    fprintf(stderr, "-- connection refused on a fresh client, freed with a call in flight\n");
    {
        char a2[64];
        snprintf(a2, sizeof(a2), "127.0.0.1:%d", free_port());
        mesh_grpc_client_cfg_t c2cfg = {.addr = a2};
        mesh_grpc_client_t *c2 = mesh_grpc_client_new(&loop, &c2cfg);
        rec_t r = {0}, r2 = {0};
        CHECK(mesh_grpc_unary(c2, "/meshd.test.Echo/Unary", NULL, 0, 5000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        CHECK(r.status == MESH_GRPC_UNAVAILABLE);
        CHECK(mesh_grpc_unary(c2, "/meshd.test.Echo/Unary", NULL, 0, 5000, &rec_ops, &r2));
        mesh_grpc_client_free(c2);
        drain_loop(&loop);
        CHECK(r2.ended == 0);
    }

    if (argc >= 3) {
        fprintf(stderr, "-- TLS to a server that accepts and never answers\n");
        /* A listening socket nobody accepts from: the kernel completes the TCP handshake, then
         * nothing is ever said. The TLS handshake's own timeout ends the call, long before
         * its deadline, and says so. */
        char dir[] = "/tmp/meshd-gc-tls-XXXXXX", cmd[512], ca[600];
        CHECK(mkdtemp(dir));
        snprintf(cmd, sizeof(cmd), "sh %s %s >/dev/null 2>&1", argv[2], dir);
        CHECK(system(cmd) == 0);
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
        char err[512];
        mesh_tls_conf_t tc = {.ca_file = ca, .alpn = "h2"};
        mesh_tls_holder_t *h = mesh_tls_holder_new(&tc, 0, err, sizeof(err));
        CHECK(h);
        int ls = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        CHECK(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 8) == 0);
        CHECK(getsockname(ls, (struct sockaddr *)&sa, &sl) == 0);
        char a3[64];
        snprintf(a3, sizeof(a3), "127.0.0.1:%d", ntohs(sa.sin_port));
        mesh_grpc_client_cfg_t c3cfg = {
            .addr = a3, .tls = h, .tls_name = "localhost", .tls_handshake_timeout_ms = 300};
        mesh_grpc_client_t *c3 = mesh_grpc_client_new(&loop, &c3cfg);
        CHECK(c3);
        rec_t r = {0};
        CHECK(mesh_grpc_unary(c3, "/meshd.test.Echo/Unary", NULL, 0, 30000, &rec_ops, &r));
        run_until(&loop, &r.ended);
        fprintf(stderr, "   message: %s\n", r.message);
        CHECK(r.status == MESH_GRPC_UNAVAILABLE);
        CHECK(strstr(r.message, "TLS handshake with") && strstr(r.message, "timed out"));
        mesh_grpc_client_free(c3);
        drain_loop(&loop);
        mesh_tls_holder_free(h);
        close(ls);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
    }

    drain_loop(&loop);
    CHECK(uv_loop_close(&loop) == 0);
    kill_server();
    fprintf(stderr, "ok\n");
    return 0;
}
