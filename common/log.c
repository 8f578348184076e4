/*
 * common/log.c: the logger behind common/log.h.
 *
 * A caller formats its line into a stack buffer (the JSON form escapes the message per RFC
 * 8259; the timestamp is UTC with microseconds, RFC 3339) and copies it into the ring; a log
 * thread writes the ring out with writev(2), up to DRAIN_IOV lines per call.
 *
 * The ring is a byte array of a power-of-two size with two monotonic positions: wpos (space
 * reserved by producers, advanced by compare-and-swap) and rpos (space released by the log
 * thread). A record is an 8-byte header and the line, padded to 8 bytes; a record never wraps:
 * a producer that would cross the end reserves the rest of the array as a padding record too.
 * A producer reserves, copies its line, then publishes the record by storing its header
 * (release). The drainer reads records from rpos while their header is nonzero (acquire),
 * writes them, zeroes the bytes it consumed (so a header not yet stored reads 0) and publishes
 * the new rpos (release); a producer reserves only space below rpos + size (acquire), so the
 * zeroing happens before the reuse. A producer that finds no room counts the line as dropped
 * and returns at once; the drainer reports the count in a line of its own after its next
 * batch.
 *
 * Waking the log thread costs a producer one load of `sleeping` per line, and an eventfd
 * write only when the thread went to sleep (it sets `sleeping`, then checks the ring once
 * more before it blocks; the producer reserved before it reads `sleeping`: sequentially
 * consistent on both sides, so a line is never left behind).
 *
 * Exit: an atexit handler stops the thread once the ring is empty (waiting at most
 * EXIT_WAIT_MS for an output that does not drain) and switches to direct writes; a SIGABRT
 * handler (installed only where SIGABRT had its default action) waits the same way for the
 * queued lines before the abort goes on; in a forked child lines are written directly (the
 * ring is the parent's).
 */
#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX  4096
#define REC_HDR       8
#define DRAIN_IOV     256
#define EXIT_WAIT_MS  5000
#define FLUSH_WAIT_MS 5000
#define ABORT_WAIT_MS 2000
#define HDR_LINE      1u /* header: (length << 2) | kind */
#define HDR_PAD       2u

static char log_node[64] = "meshd";
static _Atomic int log_level = MESH_LOG_INFO;
static _Atomic int log_json = 1;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

/* How lines leave the caller: not decided yet, through the ring, or by a direct write. */
enum { MODE_NONE = 0, MODE_ASYNC = 1, MODE_DIRECT = 2 };
static _Atomic int log_mode = MODE_NONE;
static pthread_once_t start_once = PTHREAD_ONCE_INIT;

static struct {
    char *buf;
    size_t cap;               /* a power of two; fixed once logging started */
    _Atomic uint64_t wpos;    /* reserved up to here */
    _Atomic uint64_t rpos;    /* released up to here */
    _Atomic uint64_t dropped; /* not reported yet */
    _Atomic uint64_t dropped_total;
    _Atomic int sleeping; /* the log thread is (about to be) blocked on efd */
    _Atomic int stop;
    int efd;
    pthread_t thread;
    pthread_mutex_t drain_lock; /* one drainer at a time (the thread, the exit handler) */
} R = {.cap = MESH_LOG_BUFFER_DEFAULT, .efd = -1, .drain_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- settings --------------------------------------------------------------------------- */

void mesh_log_init(const char *node, mesh_log_level_t level, mesh_log_format_t format)
{
    if (node)
        snprintf(log_node, sizeof(log_node), "%s", node);
    atomic_store(&log_level, (int)level);
    if (format == MESH_LOG_FORMAT_AUTO)
        atomic_store(&log_json, !isatty(atomic_load(&log_fd)));
    else
        atomic_store(&log_json, format == MESH_LOG_FORMAT_JSON);
}

void mesh_log_set_fd(int fd)
{
    mesh_log_flush();
    atomic_store(&log_fd, fd);
}

int mesh_log_set_buffer(size_t bytes)
{
    if (bytes < 16384 || bytes > (256u << 20) || (bytes & (bytes - 1)))
        return -1;
    if (atomic_load(&log_mode) != MODE_NONE)
        return -1;
    R.cap = bytes;
    return 0;
}

uint64_t mesh_log_dropped(void)
{
    return atomic_load(&R.dropped_total);
}

int mesh_log_level_parse(const char *s, mesh_log_level_t *out)
{
    for (int i = 0; i <= MESH_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (mesh_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = MESH_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *mesh_log_level_name(mesh_log_level_t level)
{
    return (unsigned)level <= MESH_LOG_OFF ? level_names[level] : "?";
}

int mesh_log_enabled(mesh_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed) &&
           level < MESH_LOG_OFF;
}

/* ---- formatting ------------------------------------------------------------------------- */

/* Appends s JSON-escaped to buf[*pos..cap), always leaving room for the closing bytes. */
static void json_escape(char *buf, size_t *pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    for (; *s && p + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[p++] = '\\';
            buf[p++] = (char)c;
        } else if (c == '\n') {
            buf[p++] = '\\';
            buf[p++] = 'n';
        } else if (c == '\t') {
            buf[p++] = '\\';
            buf[p++] = 't';
        } else if (c < 0x20) {
            memcpy(buf + p, "\\u00", 4);
            buf[p + 4] = hex[c >> 4];
            buf[p + 5] = hex[c & 15];
            p += 6;
        } else {
            buf[p++] = (char)c;
        }
    }
    *pos = p;
}

static void append(char *buf, size_t *pos, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 8 > cap)
        n = cap > *pos + 8 ? cap - *pos - 8 : 0;
    memcpy(buf + *pos, s, n);
    *pos += n;
}

/* Formats one line (ending in '\n') into line[cap]; returns its length. */
static size_t format_line(char *line, size_t cap, mesh_log_level_t level, const char *actor,
                          const char *trace_id, const char *msg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%06ldZ", (long)tv.tv_usec);

    size_t p = 0;
    const char *lvl = mesh_log_level_name(level);
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        append(line, &p, cap, "{\"ts\":\"");
        append(line, &p, cap, ts);
        append(line, &p, cap, "\",\"level\":\"");
        append(line, &p, cap, lvl);
        append(line, &p, cap, "\",\"node\":\"");
        json_escape(line, &p, cap, log_node);
        append(line, &p, cap, "\",\"actor\":\"");
        json_escape(line, &p, cap, actor ? actor : "-");
        append(line, &p, cap, "\",\"msg\":\"");
        json_escape(line, &p, cap, msg);
        if (trace_id) {
            append(line, &p, cap, "\",\"trace_id\":\"");
            json_escape(line, &p, cap, trace_id);
        }
        append(line, &p, cap, "\"}\n");
    } else {
        int n =
            snprintf(line, cap, "%s %-5s %s [%s]%s%s %s\n", ts + 11, lvl, log_node,
                     actor ? actor : "-", trace_id ? " trace=" : "", trace_id ? trace_id : "", msg);
        p = n < 0 ? 0 : (size_t)n;
        if (p >= cap) { /* truncated: keep the line ending */
            p = cap - 1;
            line[p - 1] = '\n';
        }
    }
    return p;
}

/* ---- output ----------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Writes every byte of iov[0..n) to fd (the log thread may block here, never a caller);
 * gives up on an error other than EINTR/EAGAIN: there is nobody left to tell. */
static void write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                poll(&p, 1, 1000);
                continue;
            }
            return;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
}

static void write_direct(const char *line, size_t len)
{
    struct iovec v = {.iov_base = (void *)line, .iov_len = len};
    write_all(atomic_load(&log_fd), &v, 1);
}

/* ---- the ring --------------------------------------------------------------------------- */

static inline uint32_t *hdr_at(uint64_t pos)
{
    return (uint32_t *)(void *)(R.buf + (pos & (R.cap - 1)));
}

/* Copies one line into the ring; -1 when it does not fit now. */
static int ring_put(const char *line, size_t len)
{
    size_t cap = R.cap;
    uint64_t rec = REC_HDR + ((len + 7) & ~(uint64_t)7);
    uint64_t pos = atomic_load_explicit(&R.wpos, memory_order_relaxed), need, off;
    for (;;) {
        off = pos & (cap - 1);
        need = off + rec > cap ? (cap - off) + rec : rec;
        uint64_t rp = atomic_load_explicit(&R.rpos, memory_order_acquire);
        if (rp > pos) { /* our wpos is stale: the ring moved past it meanwhile */
            pos = atomic_load_explicit(&R.wpos, memory_order_relaxed);
            continue;
        }
        if (pos + need - rp > cap)
            return -1;
        if (atomic_compare_exchange_weak(&R.wpos, &pos, pos + need))
            break;
    }
    if (need != rec) { /* the rest of the array is padding; the record starts at 0 */
        __atomic_store_n(hdr_at(pos), (uint32_t)(((cap - off) << 2) | HDR_PAD), __ATOMIC_RELEASE);
        pos += cap - off;
    }
    memcpy(R.buf + (pos & (cap - 1)) + REC_HDR, line, len);
    __atomic_store_n(hdr_at(pos), (uint32_t)((len << 2) | HDR_LINE), __ATOMIC_RELEASE);
    return 0;
}

/* Zeroes ring bytes [from, to) (to - from <= cap). */
static void ring_zero(uint64_t from, uint64_t to)
{
    size_t off = from & (R.cap - 1), len = (size_t)(to - from);
    size_t first = off + len > R.cap ? R.cap - off : len;
    memset(R.buf + off, 0, first);
    if (first < len)
        memset(R.buf, 0, len - first);
}

/* Writes a line saying how many lines were dropped since the last report, if any. */
static void report_drops(int fd)
{
    uint64_t d = atomic_exchange(&R.dropped, 0);
    if (!d)
        return;
    char msg[160], line[512];
    snprintf(msg, sizeof(msg), "%llu log line%s dropped: the log buffer (%zu bytes) was full",
             (unsigned long long)d, d == 1 ? "" : "s", R.cap);
    size_t n = format_line(line, sizeof(line), MESH_LOG_WARN, "log", NULL, msg);
    struct iovec v = {.iov_base = line, .iov_len = n};
    write_all(fd, &v, 1);
}

/* One drain pass (under drain_lock): writes the published records at the head of the ring
 * and the drop count, then releases their space. Returns the bytes released. */
static uint64_t drain_once(void)
{
    int fd = atomic_load(&log_fd);
    uint64_t start = atomic_load_explicit(&R.rpos, memory_order_relaxed), rp = start;
    uint64_t wp = atomic_load_explicit(&R.wpos, memory_order_acquire);
    struct iovec iov[DRAIN_IOV];
    int n = 0;
    while (rp < wp && n < DRAIN_IOV) {
        uint32_t h = __atomic_load_n(hdr_at(rp), __ATOMIC_ACQUIRE);
        if (!h)
            break; /* reserved, not published yet */
        uint32_t len = h >> 2;
        if ((h & 3u) == HDR_PAD) {
            rp += len;
            continue;
        }
        iov[n].iov_base = R.buf + (rp & (R.cap - 1)) + REC_HDR;
        iov[n].iov_len = len;
        n++;
        rp += REC_HDR + ((len + 7) & ~7u);
    }
    if (n)
        write_all(fd, iov, n);
    report_drops(fd);
    if (rp != start) {
        ring_zero(start, rp);
        atomic_store_explicit(&R.rpos, rp, memory_order_release);
    }
    return rp - start;
}

static void wake(void)
{
    if (atomic_load(&R.sleeping) && atomic_exchange(&R.sleeping, 0)) {
        uint64_t one = 1;
        ssize_t r = write(R.efd, &one, sizeof(one));
        (void)r; /* the counter cannot overflow: the thread reads it on every wake */
    }
}

static void *log_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&R.drain_lock);
        uint64_t n = drain_once();
        pthread_mutex_unlock(&R.drain_lock);
        if (n)
            continue;
        if (atomic_load(&R.wpos) != atomic_load(&R.rpos)) {
            nap_us(100); /* a producer is between its reservation and its header store */
            continue;
        }
        if (atomic_load(&R.stop))
            break;
        atomic_store(&R.sleeping, 1);
        if (atomic_load(&R.wpos) != atomic_load(&R.rpos) || atomic_load(&R.stop) ||
            atomic_load(&R.dropped)) {
            atomic_store(&R.sleeping, 0);
            continue;
        }
        struct pollfd p = {.fd = R.efd, .events = POLLIN};
        poll(&p, 1, 1000);
        uint64_t v;
        ssize_t r = read(R.efd, &v, sizeof(v));
        (void)r;
        atomic_store(&R.sleeping, 0);
    }
    return NULL;
}

/* Waits (without draining itself) until the log thread has written everything reserved
 * before the call and reported every drop, or until deadline_ms; async-signal-safe. */
static int wait_written(uint64_t wait_ms)
{
    uint64_t target = atomic_load(&R.wpos);
    uint64_t deadline = now_ms() + wait_ms;
    for (;;) {
        if (atomic_load(&R.rpos) >= target && !atomic_load(&R.dropped))
            return 0;
        if (now_ms() >= deadline)
            return -1;
        wake();
        nap_us(200);
    }
}

void mesh_log_flush(void)
{
    if (atomic_load(&log_mode) == MODE_ASYNC && !pthread_equal(pthread_self(), R.thread))
        wait_written(FLUSH_WAIT_MS);
}

static void on_exit_flush(void)
{
    if (atomic_load(&log_mode) != MODE_ASYNC)
        return;
    atomic_store(&R.stop, 1);
    uint64_t one = 1;
    ssize_t r = write(R.efd, &one, sizeof(one));
    (void)r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += EXIT_WAIT_MS / 1000;
    if (pthread_timedjoin_np(R.thread, NULL, &ts) != 0)
        return; /* the output does not drain: do not hold the exit up any longer */
    atomic_store(&log_mode, MODE_DIRECT);
    /* Lines another thread queued while the log thread was finishing. */
    pthread_mutex_lock(&R.drain_lock);
    while (drain_once())
        ;
    pthread_mutex_unlock(&R.drain_lock);
}

static void on_abort(int sig)
{
    (void)sig;
    int saved = errno;
    if (atomic_load(&log_mode) == MODE_ASYNC && !pthread_equal(pthread_self(), R.thread))
        wait_written(ABORT_WAIT_MS);
    errno = saved;
    /* SA_RESETHAND restored the default action: abort() goes on when this returns. */
}

static void on_fork_child(void)
{
    /* The ring and its thread belong to the parent. */
    atomic_store(&log_mode, MODE_DIRECT);
}

static void log_start(void)
{
    /* Zeroed pages from mmap are resident only once a line reaches them (calloc zeroes them). */
    R.buf = mmap(NULL, R.cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (R.buf == MAP_FAILED)
        R.buf = NULL;
    R.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!R.buf || R.efd < 0)
        goto direct;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The log thread takes no signal: SIGTERM and friends reach the loops, and a write to a
     * closed pipe fails with EPIPE instead of killing the process. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&R.thread, &attr, log_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        goto direct;
    pthread_setname_np(R.thread, "meshd-log");
    atexit(on_exit_flush);
    pthread_atfork(NULL, NULL, on_fork_child);
    struct sigaction sa, cur;
    if (sigaction(SIGABRT, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
        !(cur.sa_flags & SA_SIGINFO)) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_abort;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGABRT, &sa, NULL);
    }
    atomic_store(&log_mode, MODE_ASYNC);
    return;
direct:
    if (R.buf)
        munmap(R.buf, R.cap);
    R.buf = NULL;
    if (R.efd >= 0)
        close(R.efd);
    R.efd = -1;
    atomic_store(&log_mode, MODE_DIRECT);
}

static void emit(const char *line, size_t len)
{
    int mode = atomic_load_explicit(&log_mode, memory_order_acquire);
    if (mode == MODE_NONE) {
        pthread_once(&start_once, log_start);
        mode = atomic_load_explicit(&log_mode, memory_order_acquire);
    }
    if (mode != MODE_ASYNC) {
        write_direct(line, len);
        return;
    }
    if (ring_put(line, len) != 0) {
        atomic_fetch_add(&R.dropped, 1);
        atomic_fetch_add_explicit(&R.dropped_total, 1, memory_order_relaxed);
    }
    wake();
}

void mesh_log_vwrite(mesh_log_level_t level, const char *actor, const char *trace_id,
                     const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char msg[LOG_LINE_MAX / 2];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    char line[LOG_LINE_MAX];
    size_t n = format_line(line, sizeof(line), level, actor, trace_id, msg);
    emit(line, n);
    errno = saved_errno;
}

void mesh_log_write(mesh_log_level_t level, const char *actor, const char *trace_id,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_log_vwrite(level, actor, trace_id, fmt, ap);
    va_end(ap);
}
