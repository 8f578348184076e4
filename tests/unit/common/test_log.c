/*
 * tests/unit/common/test_log.c: the logger.
 *
 * - Lines are one JSON object each, with the fields a log pipeline reads, escaped correctly,
 *   and filtered by level.
 * - Lines leave the calling thread through a bounded ring written out by a log thread: a
 *   burst from 4 threads that fits the ring loses nothing and keeps each thread's order.
 * - Beyond the bound (the output blocked: a pipe nobody reads), logging threads still never
 *   block; the lines that did not fit are counted and a line says how many, so the lines
 *   written plus the drops reported equal the lines logged.
 * - Lines still queued are written when the process exits (exit(1), as a failing test does)
 *   and before an abort(): a child process logs into a pipe the parent does not read yet
 *   (so its log thread is stuck), then exits or aborts; the parent then reads every line.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/check.h"

#define RING    (64u * 1024u)
#define THREADS 4

/* ---- capturing the output ---------------------------------------------------------------- */

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} sink_t;

/* Reads fd to EOF into s->buf (NUL-terminated). */
static void *sink_read(void *arg)
{
    sink_t *s = arg;
    for (;;) {
        if (s->cap - s->len < 65536) {
            s->cap = s->cap ? s->cap * 2 : 1 << 20;
            s->buf = realloc(s->buf, s->cap);
            CHECK(s->buf);
        }
        ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        s->len += (size_t)n;
    }
    s->buf[s->len] = '\0';
    return NULL;
}

/* Logs into a temporary file; capture_end() flushes, restores stderr and returns the text. */
static FILE *g_capture;

static void capture_begin(void)
{
    g_capture = tmpfile();
    CHECK(g_capture);
    mesh_log_set_fd(fileno(g_capture));
}

static char *capture_end(void)
{
    mesh_log_set_fd(2); /* flushes into the file first */
    fseek(g_capture, 0, SEEK_END);
    long n = ftell(g_capture);
    rewind(g_capture);
    char *buf = malloc((size_t)n + 1);
    CHECK(buf && fread(buf, 1, (size_t)n, g_capture) == (size_t)n);
    buf[n] = '\0';
    fclose(g_capture);
    return buf;
}

/* ---- format ------------------------------------------------------------------------------- */

static void test_format(void)
{
    capture_begin();
    mesh_log_init("node-1", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    mesh_debug("proxy", "hidden %d", 1);
    mesh_info("proxy", "quote \" backslash \\ newline \n tab \t ctl \x01 done");
    mesh_log_write(MESH_LOG_WARN, "registry", "4bf92f3577b34da6a3ce929d0e0e4736", "traced");
    char *buf = capture_end();

    char *save = NULL;
    char *l1 = strtok_r(buf, "\n", &save);
    char *l2 = strtok_r(NULL, "\n", &save);
    CHECK(l1 && l2 && !strtok_r(NULL, "\n", &save)); /* debug filtered: two lines */

    json_error_t je;
    json_t *j = json_loads(l1, 0, &je);
    CHECK(j);
    CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
    CHECK_STR(json_string_value(json_object_get(j, "node")), "node-1");
    CHECK_STR(json_string_value(json_object_get(j, "actor")), "proxy");
    CHECK_STR(json_string_value(json_object_get(j, "msg")),
              "quote \" backslash \\ newline \n tab \t ctl \x01 done");
    CHECK(json_string_length(json_object_get(j, "ts")) == 27); /* 2026-11-25T18:00:00.123456Z */
    CHECK(!json_object_get(j, "trace_id"));
    json_decref(j);

    j = json_loads(l2, 0, &je);
    CHECK(j);
    CHECK_STR(json_string_value(json_object_get(j, "trace_id")),
              "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(j);
    free(buf);
}

/* ---- several threads ---------------------------------------------------------------------- */

typedef struct {
    int index;
    int lines;
} burst_t;

static void *burst(void *arg)
{
    burst_t *b = arg;
    for (int i = 0; i < b->lines; i++)
        mesh_info("burst", "thread %d line %d", b->index, i);
    return NULL;
}

static void run_burst(int lines_per_thread)
{
    pthread_t th[THREADS];
    burst_t arg[THREADS];
    for (int i = 0; i < THREADS; i++) {
        arg[i] = (burst_t){i, lines_per_thread};
        CHECK_EQ(pthread_create(&th[i], NULL, burst, &arg[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

/* Parses the output: checks every "thread T line N" line comes in order per thread, counts
 * them, and sums the counts of the drop reports. */
static void parse_burst(char *buf, int *received, unsigned long long *dropped)
{
    int next[THREADS] = {0};
    *received = 0;
    *dropped = 0;
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        if (!j) {
            fprintf(stderr, "not JSON: %s\n", l);
            CHECK(0);
        }
        const char *actor = json_string_value(json_object_get(j, "actor"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        CHECK(actor && msg);
        int t, n;
        unsigned long long d;
        if (strcmp(actor, "burst") == 0 && sscanf(msg, "thread %d line %d", &t, &n) == 2) {
            CHECK(t >= 0 && t < THREADS);
            /* In order per thread; a gap is a dropped line (reported below). */
            if (n < next[t]) {
                fprintf(stderr, "thread %d: line %d after line %d\n", t, n, next[t] - 1);
                CHECK(0);
            }
            next[t] = n + 1;
            (*received)++;
        } else if (strcmp(actor, "log") == 0 && sscanf(msg, "%llu log line", &d) == 1) {
            CHECK_STR(json_string_value(json_object_get(j, "level")), "warn");
            CHECK_CONTAINS(msg, "the log buffer (65536 bytes) was full");
            *dropped += d;
        } else {
            fprintf(stderr, "unexpected line: %s\n", l);
            CHECK(0);
        }
        json_decref(j);
    }
}

/* A burst that fits the ring (less one longest record, lost to padding at the wrap at worst)
 * loses nothing, whatever the log thread manages meanwhile. */
static void test_burst_within_bound(void)
{
    mesh_log_init("node-1", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    uint64_t dropped0 = mesh_log_dropped();
    capture_begin();
    run_burst(100);
    char *buf = capture_end();
    /* The precondition: 400 records of (8 + line rounded up to 8) bytes fit the ring. */
    size_t len = strlen(buf);
    CHECK(len + 400 * 16 <= RING - 4104);
    int received;
    unsigned long long dropped;
    parse_burst(buf, &received, &dropped);
    CHECK_EQ(received, THREADS * 100);
    CHECK_EQ(dropped, 0);
    CHECK_EQ(mesh_log_dropped(), dropped0);
    free(buf);
}

/* The output blocked: the log thread is stuck on a full 4 KiB pipe, the 64 KiB ring fills.
 * The logging threads return anyway; what did not fit is counted and reported. */
static void test_drops_beyond_bound(void)
{
    mesh_log_init("node-1", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    uint64_t dropped0 = mesh_log_dropped();
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 0);
    mesh_log_set_fd(p[1]);
    enum { LINES = 2000 };
    run_burst(LINES); /* returns although nobody reads the pipe */

    sink_t s = {.fd = p[0]};
    pthread_t reader;
    CHECK_EQ(pthread_create(&reader, NULL, sink_read, &s), 0);
    mesh_log_flush();
    mesh_log_set_fd(2);
    close(p[1]);
    pthread_join(reader, NULL);
    close(p[0]);

    int received;
    unsigned long long dropped;
    parse_burst(s.buf, &received, &dropped);
    printf("beyond the bound: %d lines written, %llu dropped and reported\n", received, dropped);
    CHECK(dropped > 0);
    CHECK_EQ((unsigned long long)received + dropped, THREADS * LINES);
    CHECK_EQ(mesh_log_dropped() - dropped0, dropped);
    free(s.buf);
}

/* ---- exit and abort ----------------------------------------------------------------------- */

enum { CHILD_LINES = 1000 };

/* The child: logs into fd `out` (a 4 KiB pipe the parent reads only later), says so on fd
 * `ctl`, then exits with 1 or aborts. */
static int child_main(const char *how, int out, int ctl)
{
    CHECK_EQ(mesh_log_set_buffer(1u << 20), 0);
    mesh_log_set_fd(out);
    mesh_log_init("child", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    for (int i = 0; i < CHILD_LINES; i++)
        mesh_info("burst", "thread 0 line %d", i);
    CHECK(write(ctl, "x", 1) == 1);
    if (strcmp(how, "abort") == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        abort();
    }
    exit(1);
}

static void test_flush_at_end(const char *self, const char *how)
{
    int out[2], ctl[2];
    CHECK(pipe(out) == 0 && pipe(ctl) == 0);
    CHECK(fcntl(out[1], F_SETPIPE_SZ, 4096) >= 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        close(ctl[0]);
        char a[16], b[16];
        snprintf(a, sizeof(a), "%d", out[1]);
        snprintf(b, sizeof(b), "%d", ctl[1]);
        execl(self, self, "--child", how, a, b, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(ctl[1]);
    char c;
    CHECK(read(ctl[0], &c, 1) == 1); /* the child logged everything and is ending */
    close(ctl[0]);
    /* Give a child that would not wait for its log thread the time to end before anything
     * is read: its log thread is stuck on the full pipe, so the lines it still holds would
     * be lost. A child that waits (as it must) is still alive after this, whatever the
     * machine's speed: its exit waits up to 5 s for us to read. */
    int st, ended = 0;
    for (int i = 0; i < 50 && !ended; i++) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        CHECK(w >= 0);
        ended = w == pid;
        if (!ended)
            usleep(10000);
    }
    sink_t s = {.fd = out[0]};
    sink_read(&s);
    close(out[0]);
    if (!ended)
        CHECK(waitpid(pid, &st, 0) == pid);
    if (strcmp(how, "abort") == 0)
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    int received;
    unsigned long long dropped;
    parse_burst(s.buf, &received, &dropped);
    printf("child %s: %d of %d lines written\n", how, received, CHILD_LINES);
    CHECK_EQ(received, CHILD_LINES);
    CHECK_EQ(dropped, 0);
    free(s.buf);
}

static char g_self[4096];

static void test_flush_on_exit(void)
{
    test_flush_at_end(g_self, "exit");
}

static void test_flush_before_abort(void)
{
    test_flush_at_end(g_self, "abort");
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    signal(SIGPIPE, SIG_IGN);
    /* The ring's size is fixed by the first line: set it first, then never again. */
    CHECK_EQ(mesh_log_set_buffer(1000), -1);
    CHECK_EQ(mesh_log_set_buffer(3 * 16384), -1);
    CHECK_EQ(mesh_log_set_buffer(RING), 0);
    RUN(test_format);
    CHECK_EQ(mesh_log_set_buffer(RING), -1);
    RUN(test_burst_within_bound);
    RUN(test_drops_beyond_bound);
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
    CHECK(n > 0);
    g_self[n] = '\0';
    RUN(test_flush_on_exit);
    RUN(test_flush_before_abort);
    printf("test_log: ok\n");
    return 0;
}
