/*
 * tests/integration/registry/etcd_harness.c: etcd members, etcdctl, the cuttable TCP proxy and
 * deadline waits for the registry's integration tests and benchmark (see etcd_harness.h).
 */
#include "tests/integration/registry/etcd_harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 64
static pid_t pids[MAX_PIDS];
static int n_pids;
static char tmpdirs[8][256];
static int n_tmpdirs;
static int cleanup_installed;
static char tls_dir[256]; /* certificates for https health checks */

static void cleanup(void)
{
    for (int i = 0; i < n_pids; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    for (int i = 0; i < n_tmpdirs && !getenv("MESHD_TEST_KEEP"); i++) {
        pid_t p = fork();
        if (p == 0) {
            execlp("rm", "rm", "-rf", tmpdirs[i], (char *)NULL);
            _exit(127);
        }
        if (p > 0)
            waitpid(p, NULL, 0);
    }
    n_tmpdirs = 0;
}

static void on_signal(int sig)
{
    for (int i = 0; i < n_pids; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    _exit(128 + sig);
}

static void install_cleanup(void)
{
    if (cleanup_installed)
        return;
    cleanup_installed = 1;
    atexit(cleanup);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
}

void h_track_pid(pid_t pid)
{
    install_cleanup();
    for (int i = 0; i < n_pids; i++)
        if (pids[i] == 0) {
            pids[i] = pid;
            return;
        }
    if (n_pids < MAX_PIDS)
        pids[n_pids++] = pid;
}

void h_kill_pid(pid_t pid)
{
    for (int i = 0; i < n_pids; i++)
        if (pids[i] == pid) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pids[i] = 0;
        }
}

double h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

const char *h_tmpdir(const char *tag)
{
    install_cleanup();
    if (n_tmpdirs >= 8)
        return NULL;
    snprintf(tmpdirs[n_tmpdirs], sizeof(tmpdirs[0]), "/tmp/%s-XXXXXX", tag);
    if (!mkdtemp(tmpdirs[n_tmpdirs]))
        return NULL;
    return tmpdirs[n_tmpdirs++];
}

int h_member_start(etcd_cluster_t *c, int i)
{
    etcd_member_t *m = &c->m[i];
    char listen_client[64], listen_peer[64], log[600];
    snprintf(listen_client, sizeof(listen_client), "%s://127.0.0.1:%d",
             c->tls_dir[0] ? "https" : "http", m->client_port);
    char cert[300], key[300], ca[300];
    snprintf(cert, sizeof(cert), "--cert-file=%s/server.crt", c->tls_dir);
    snprintf(key, sizeof(key), "--key-file=%s/server.key", c->tls_dir);
    snprintf(ca, sizeof(ca), "--trusted-ca-file=%s/ca.crt", c->tls_dir);
    int tls = c->tls_dir[0] != 0;
    snprintf(listen_peer, sizeof(listen_peer), "http://127.0.0.1:%d", m->peer_port);
    snprintf(log, sizeof(log), "%s.log", m->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("etcd", "etcd", "--logger=zap",
               getenv("MESHD_ETCD_LOG") ? "--log-level=info" : "--log-level=warn", "--name",
               m->name, "--data-dir", m->dir, "--listen-client-urls", listen_client,
               "--advertise-client-urls", listen_client, "--listen-peer-urls", listen_peer,
               "--initial-advertise-peer-urls", listen_peer, "--initial-cluster",
               c->initial_cluster, "--initial-cluster-state", "new", "--initial-cluster-token",
               c->root, "--heartbeat-interval", "50", "--election-timeout", "500",
               tls ? cert : NULL, key, ca, "--client-cert-auth", (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
    h_track_pid(pid);
    return 0;
}

void h_member_kill(etcd_cluster_t *c, int i)
{
    if (c->m[i].pid > 0)
        h_kill_pid(c->m[i].pid);
    c->m[i].pid = 0;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    char *buf = ud;
    size_t len = strlen(buf), add = s * n;
    if (len + add < 1024) {
        memcpy(buf + len, p, add);
        buf[len + add] = '\0';
    }
    return s * n;
}

/* A blocking request: fine in a test driver, never in meshd. */
static int http(const char *url, const char *body, char *out)
{
    CURL *e = curl_easy_init();
    out[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    char ca[300], cert[300], key[300];
    if (strncmp(url, "https:", 6) == 0) {
        snprintf(ca, sizeof(ca), "%s/ca.crt", tls_dir);
        snprintf(cert, sizeof(cert), "%s/client.crt", tls_dir);
        snprintf(key, sizeof(key), "%s/client.key", tls_dir);
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
        curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
    }
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    return rc == CURLE_OK ? 0 : -1;
}

int h_member_healthy(const char *url)
{
    char u[128], out[1024];
    snprintf(u, sizeof(u), "%s/health", url);
    return http(u, NULL, out) == 0 && strstr(out, "\"true\"") != NULL;
}

int h_cluster_leader(etcd_cluster_t *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->m[i].pid <= 0)
            continue;
        char u[128], out[1024];
        snprintf(u, sizeof(u), "%s/v3/maintenance/status", c->m[i].url);
        if (http(u, "{}", out) < 0)
            continue;
        char *mid = strstr(out, "\"member_id\":\""), *lead = strstr(out, "\"leader\":\"");
        if (mid && lead && strtoull(mid + 13, NULL, 10) == strtoull(lead + 10, NULL, 10))
            return i;
    }
    return -1;
}

static int cluster_start(etcd_cluster_t *c, int n, const char *tls);

int h_cluster_start(etcd_cluster_t *c, int n)
{
    return cluster_start(c, n, NULL);
}

int h_cluster_start_tls(etcd_cluster_t *c, int n, const char *tls)
{
    return cluster_start(c, n, tls);
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

const char *h_tls_make(void)
{
    const char *d = h_tmpdir("meshd-etcd-tls");
    if (!d)
        return NULL;
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "exec >/dev/null 2>&1; cd %s && printf "
             "'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
             "clientAuth\\n' > server.ext && printf 'extendedKeyUsage=clientAuth\\n' > "
             "client.ext && "
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 "
             "-subj /CN=meshd-test-ca && "
             "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
             "-subj /CN=127.0.0.1 && "
             "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out server.crt -days 1 -extfile server.ext && "
             "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
             "-subj /CN=meshd-client && "
             "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out client.crt -days 1 -extfile client.ext",
             d);
    if (sh(cmd) != 0)
        return NULL;
    snprintf(tls_dir, sizeof(tls_dir), "%s", d);
    return d;
}

static int cluster_start(etcd_cluster_t *c, int n, const char *tls)
{
    memset(c, 0, sizeof(*c));
    if (tls)
        snprintf(c->tls_dir, sizeof(c->tls_dir), "%s", tls);
    const char *root = h_tmpdir("meshd-etcd");
    if (!root)
        return -1;
    snprintf(c->root, sizeof(c->root), "%s", root);
    c->n = n;
    size_t il = 0, el = 0;
    for (int i = 0; i < n; i++) {
        etcd_member_t *m = &c->m[i];
        snprintf(m->name, sizeof(m->name), "e%d", i);
        snprintf(m->dir, sizeof(m->dir), "%s/%s", root, m->name);
        m->client_port = h_free_port();
        m->peer_port = h_free_port();
        snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%d", tls ? "https" : "http",
                 m->client_port);
        il += (size_t)snprintf(c->initial_cluster + il, sizeof(c->initial_cluster) - il,
                               "%s%s=http://127.0.0.1:%d", i ? "," : "", m->name, m->peer_port);
        el += (size_t)snprintf(c->endpoints + el, sizeof(c->endpoints) - el, "%s%s", i ? "," : "",
                               m->url);
    }
    for (int i = 0; i < n; i++)
        if (h_member_start(c, i) < 0)
            return -1;
    double deadline = h_now_ms() + 15000;
    for (int i = 0; i < n; i++)
        while (!h_member_healthy(c->m[i].url)) {
            if (h_now_ms() > deadline)
                return -1;
            usleep(50000);
        }
    return 0;
}

int h_etcdctl(const char *endpoints, ...)
{
    const char *argv[32];
    int n = 0;
    char ep[300];
    snprintf(ep, sizeof(ep), "--endpoints=%s", endpoints);
    argv[n++] = "etcdctl";
    argv[n++] = ep;
    argv[n++] = "--command-timeout=5s";
    va_list ap;
    va_start(ap, endpoints);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 30)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        setenv("ETCDCTL_API", "3", 1);
        execvp("etcdctl", (char *const *)argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    h_track_pid(pid);
    int st;
    waitpid(pid, &st, 0);
    for (int i = 0; i < n_pids; i++)
        if (pids[i] == pid)
            pids[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tick(uv_timer_t *t)
{
}

int h_wait(uv_loop_t *loop, int (*pred)(void *), void *ud, uint64_t timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 1, 1);
    double deadline = h_now_ms() + (double)timeout_ms;
    int ok;
    while (!(ok = pred(ud)) && h_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static int never(void *ud)
{
    return 0;
}

void h_run_for(uv_loop_t *loop, uint64_t ms)
{
    h_wait(loop, never, NULL, ms);
}

/* ---- TCP proxy -------------------------------------------------------------------------- */

typedef struct pconn {
    uv_tcp_t down, up;
    uv_connect_t connect;
    int closing;
    int open_handles;
    struct pconn *next;
    h_proxy_t *p;
} pconn_t;

struct h_proxy {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    int port;
    int target;
    pconn_t *conns;
};

static void pconn_closed(uv_handle_t *h)
{
    pconn_t *c = h->data;
    if (--c->open_handles == 0)
        free(c);
}

static void pconn_close(pconn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    h_proxy_t *p = c->p;
    for (pconn_t **pp = &p->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_close((uv_handle_t *)&c->down, pconn_closed);
    uv_close((uv_handle_t *)&c->up, pconn_closed);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void write_done(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    pconn_t *c = s->data;
    if (n < 0) {
        free(buf->base);
        pconn_close(c);
        return;
    }
    if (n == 0) {
        free(buf->base);
        return;
    }
    uv_stream_t *other =
        s == (uv_stream_t *)&c->down ? (uv_stream_t *)&c->up : (uv_stream_t *)&c->down;
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    w->data = buf->base;
    if (uv_write(w, other, &b, 1, write_done) != 0) {
        free(buf->base);
        free(w);
        pconn_close(c);
    }
}

static void on_up_connected(uv_connect_t *req, int status)
{
    pconn_t *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        pconn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->down, alloc_cb, on_read);
    uv_read_start((uv_stream_t *)&c->up, alloc_cb, on_read);
}

static void on_accept(uv_stream_t *server, int status)
{
    h_proxy_t *p = server->data;
    if (status < 0)
        return;
    pconn_t *c = calloc(1, sizeof(*c));
    c->p = p;
    uv_tcp_init(p->loop, &c->down);
    uv_tcp_init(p->loop, &c->up);
    c->down.data = c->up.data = c->connect.data = c;
    c->open_handles = 2;
    c->next = p->conns;
    p->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->down) != 0) {
        pconn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->down, 1);
    uv_tcp_nodelay(&c->up, 1);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", p->target, &a);
    uv_tcp_connect(&c->connect, &c->up, (struct sockaddr *)&a, on_up_connected);
}

static int proxy_listen(h_proxy_t *p)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", p->port, &a);
    uv_tcp_init(p->loop, &p->listener);
    p->listener.data = p;
    if (uv_tcp_bind(&p->listener, (struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&p->listener, 64, on_accept) != 0) {
        uv_close((uv_handle_t *)&p->listener, NULL);
        return -1;
    }
    p->listening = 1;
    return 0;
}

h_proxy_t *h_proxy_start(uv_loop_t *loop, int target_port)
{
    h_proxy_t *p = calloc(1, sizeof(*p));
    p->loop = loop;
    p->target = target_port;
    p->port = h_free_port();
    if (proxy_listen(p) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

int h_proxy_port(const h_proxy_t *p)
{
    return p->port;
}

void h_proxy_cut(h_proxy_t *p)
{
    while (p->conns)
        pconn_close(p->conns);
    if (p->listening) {
        uv_close((uv_handle_t *)&p->listener, NULL);
        p->listening = 0;
    }
    uv_run(p->loop, UV_RUN_NOWAIT);
}

int h_proxy_restore(h_proxy_t *p)
{
    return p->listening ? 0 : proxy_listen(p);
}
