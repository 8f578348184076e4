/*
 * tests/integration/ext_authz/authz_rig.c: the shared test rig (see authz_rig.h).
 */
#include "authz_rig.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/check.h"
#include "transport/http_fetch.h"

static pid_t server_pid;
static char ports_dir[64];
static char ports_file[256];

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        for (int i = 0; i < 50; i++) {
            if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
                server_pid = 0;
                break;
            }
            usleep(100 * 1000);
        }
        if (server_pid > 0) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, NULL, 0);
        }
        server_pid = 0;
    }
    if (ports_file[0])
        unlink(ports_file);
    if (ports_dir[0])
        rmdir(ports_dir);
}

void authz_rig_start(authz_rig_t *rig, const char *server_py, const char *proto_dir)
{
    char dir[] = "/tmp/meshd_authz_XXXXXX";
    CHECK(mkdtemp(dir));
    snprintf(ports_dir, sizeof(ports_dir), "%s", dir);
    snprintf(ports_file, sizeof(ports_file), "%s/ports.json", dir);
    server_pid = fork();
    CHECK(server_pid >= 0);
    if (server_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a crashed test leaves no server behind */
        execl("/usr/bin/python3", "python3", server_py, "--ports-file", ports_file, "--proto-dir",
              proto_dir, (char *)NULL);
        _exit(127);
    }
    atexit(stop_server);
    json_t *doc = NULL;
    for (int i = 0; i < 300 && !doc; i++) {
        doc = json_load_file(ports_file, 0, NULL);
        if (!doc)
            usleep(100 * 1000);
        CHECK(waitpid(server_pid, NULL, WNOHANG) == 0); /* still running */
    }
    CHECK(doc);
    rig->http = (int)json_integer_value(json_object_get(doc, "http"));
    rig->grpc = (int)json_integer_value(json_object_get(doc, "grpc"));
    rig->hang = (int)json_integer_value(json_object_get(doc, "hang"));
    json_decref(doc);
    CHECK(rig->http > 0 && rig->grpc > 0 && rig->hang > 0);
}

int authz_rig_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Before each poll: once the flag is set, stop, so the poll does not block (a timer callback
 * that set it would otherwise be followed by a poll up to the deadline). */
static void on_prepare(uv_prepare_t *p)
{
    if (*(const int *)p->data)
        uv_stop(p->loop);
}

int authz_rig_run_until(uv_loop_t *loop, const int *flag, unsigned deadline_ms)
{
    uv_timer_t t;
    uv_prepare_t p;
    int expired = 0;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, deadline_ms, 0);
    uv_prepare_init(loop, &p);
    p.data = (void *)flag;
    uv_prepare_start(&p, on_prepare);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

typedef struct {
    int done;
    char *body;
} get_t;

static void on_get(void *ctx, int status, const mesh_http_response_t *resp, const char *body,
                   size_t len, const char *error)
{
    get_t *g = ctx;
    g->body = status == 200 ? strndup(body, len) : NULL;
    g->done = 1;
}

static char *request(int port, const char *path, const char *body)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_http_fetch_t *f = mesh_http_fetch_new(&loop);
    CHECK(f);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    get_t g = {0};
    mesh_http_request_t q = {
        .url = url, .timeout_ms = 10000, .body = body, .body_len = body ? strlen(body) : 0};
    CHECK(mesh_http_fetch_request(f, &q, on_get, &g));
    CHECK(authz_rig_run_until(&loop, &g.done, 20000) == 0);
    mesh_http_fetch_close(f);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    return g.body;
}

long authz_rig_stat(const authz_rig_t *rig, const char *key)
{
    char *body = authz_rig_get(rig->http, "/_stats");
    CHECK(body);
    json_t *doc = json_loads(body, 0, NULL);
    free(body);
    CHECK(doc);
    long v = (long)json_integer_value(json_object_get(doc, key));
    json_decref(doc);
    return v;
}

char *authz_rig_get(int port, const char *path)
{
    return request(port, path, NULL);
}

void authz_rig_post(int port, const char *path, const char *body)
{
    char *answer = request(port, path, body);
    CHECK(answer);
    free(answer);
}
