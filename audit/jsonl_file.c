/*
 * audit/jsonl_file.c: the JSON-lines audit file (audit/jsonl_file.h): appends, size rotation,
 * and the error streaks that are counted and logged instead of stopping the node.
 */
#include "audit/jsonl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"

#define ACTOR "audit"

/* Notes a failed operation: counts it, keeps "PATH: op: strerror" and logs the first failure
 * of a streak (the rest of the streak is summed up when it ends). */
static void fail(audit_jsonl_t *f, const char *what, const char *path, int err)
{
    f->stats.errors++;
    snprintf(f->last_error, sizeof(f->last_error), "%s: %s: %s", path, what, strerror(err));
    if (!f->failing) {
        f->failing = true;
        f->lost_at_failure = f->stats.lost;
        mesh_warn(ACTOR, "audit file %s (records are counted as lost until it works again)",
                  f->last_error);
    }
}

/* A rotation failed: the current file keeps growing past max_bytes and nothing is lost, so
 * this is its own streak, logged once, and rotation is tried again after a pause. */
static void rotate_failed(audit_jsonl_t *f, const char *what, const char *path, int err,
                          int64_t now_ms)
{
    f->stats.errors++;
    snprintf(f->last_error, sizeof(f->last_error), "%s: %s: %s", path, what, strerror(err));
    f->rotate_at = now_ms + AUDIT_JSONL_RETRY_MS;
    if (!f->rotate_failing) {
        f->rotate_failing = true;
        mesh_warn(ACTOR, "audit file %s (writing on to %s past its size, retrying every %d ms)",
                  f->last_error, f->path, AUDIT_JSONL_RETRY_MS);
    }
}

/* A record went out whole: ends a streak of failures. */
static void recovered(audit_jsonl_t *f)
{
    if (!f->failing)
        return;
    f->failing = false;
    mesh_warn(ACTOR, "audit file %s: writing again; %llu record%s lost (%s)", f->path,
              (unsigned long long)(f->stats.lost - f->lost_at_failure),
              f->stats.lost - f->lost_at_failure == 1 ? "" : "s", f->last_error);
}

/* Opens PATH for appending and learns its size and whether it ends inside a line. */
static int open_file(audit_jsonl_t *f)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    f->fd = fd;
    f->regular = S_ISREG(st.st_mode);
    f->size = f->regular ? (uint64_t)st.st_size : 0;
    f->torn = false;
    if (f->regular && st.st_size > 0) {
        /* O_APPEND|O_WRONLY cannot read: look at the last byte through a second descriptor */
        int rfd = open(f->path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
        f->torn = last != '\n';
    }
    return 0;
}

static void name_of(const audit_jsonl_t *f, char *out, unsigned i)
{
    sprintf(out, "%s.%u", f->path, i);
}

/* Shifts PATH -> PATH.1 -> ... -> PATH.keep (the oldest goes) and opens a fresh PATH. On a
 * failure the current file stays in use (it only grows past max_bytes) and rotation is tried
 * again after AUDIT_JSONL_RETRY_MS. */
static void rotate(audit_jsonl_t *f, int64_t now_ms)
{
    if (f->keep == 0) {
        if (unlink(f->path) != 0 && errno != ENOENT) {
            rotate_failed(f, "rotate: unlink", f->path, errno, now_ms);
            return;
        }
    } else {
        name_of(f, f->name_a, f->keep);
        if (unlink(f->name_a) != 0 && errno != ENOENT) {
            rotate_failed(f, "rotate: unlink", f->name_a, errno, now_ms);
            return;
        }
        for (unsigned i = f->keep - 1; i >= 1; i--) {
            name_of(f, f->name_a, i);
            name_of(f, f->name_b, i + 1);
            if (rename(f->name_a, f->name_b) != 0 && errno != ENOENT) {
                rotate_failed(f, "rotate: rename", f->name_a, errno, now_ms);
                return;
            }
        }
        name_of(f, f->name_a, 1);
        if (rename(f->path, f->name_a) != 0) {
            rotate_failed(f, "rotate: rename", f->path, errno, now_ms);
            return;
        }
    }
    close(f->fd);
    f->fd = -1;
    f->stats.rotations++;
    if (f->rotate_failing) {
        f->rotate_failing = false;
        mesh_warn(ACTOR, "audit file %s: rotating again", f->path);
    }
    if (open_file(f) != 0) {
        fail(f, "open", f->path, errno);
        f->retry_at = now_ms + AUDIT_JSONL_RETRY_MS;
    }
}

int audit_jsonl_open(audit_jsonl_t *f, const audit_jsonl_cfg_t *cfg, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    if (!cfg->path || !*cfg->path) {
        snprintf(err, errlen, "audit file: no path");
        return -1;
    }
    if (cfg->keep > AUDIT_JSONL_KEEP_MAX) {
        snprintf(err, errlen, "audit file %s: keep %u files at most, not %u", cfg->path,
                 AUDIT_JSONL_KEEP_MAX, cfg->keep);
        return -1;
    }
    size_t n = strlen(cfg->path);
    f->path = strdup(cfg->path);
    f->name_a = malloc(n + 16);
    f->name_b = malloc(n + 16);
    if (!f->path || !f->name_a || !f->name_b) {
        snprintf(err, errlen, "audit file %s: out of memory", cfg->path);
        audit_jsonl_close(f);
        return -1;
    }
    f->max_bytes = cfg->max_bytes;
    f->keep = cfg->keep;
    if (open_file(f) != 0) {
        snprintf(err, errlen, "%s: open: %s", cfg->path, strerror(errno));
        audit_jsonl_close(f);
        return -1;
    }
    return 0;
}

int audit_jsonl_reopen(audit_jsonl_t *f, int64_t now_ms)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (open_file(f) != 0) {
        fail(f, "open", f->path, errno);
        f->retry_at = now_ms + AUDIT_JSONL_RETRY_MS;
        return -1;
    }
    return 0;
}

int audit_jsonl_write(audit_jsonl_t *f, const char *rec, size_t len, int64_t now_ms)
{
    if (f->fd < 0) {
        if (!f->path || now_ms < f->retry_at || audit_jsonl_reopen(f, now_ms) != 0) {
            f->stats.lost++;
            return -1;
        }
    }
    if (f->regular && f->max_bytes && f->size > 0 && now_ms >= f->rotate_at &&
        f->size + len + 1 + f->torn > f->max_bytes) {
        rotate(f, now_ms);
        if (f->fd < 0) {
            f->stats.lost++;
            return -1;
        }
    }

    struct iovec iov[3];
    int n = 0;
    if (f->torn)
        iov[n++] = (struct iovec){.iov_base = "\n", .iov_len = 1};
    iov[n++] = (struct iovec){.iov_base = (void *)rec, .iov_len = len};
    iov[n++] = (struct iovec){.iov_base = "\n", .iov_len = 1};
    size_t total = len + 1 + f->torn, done = 0;
    struct iovec *v = iov;
    while (done < total) {
        ssize_t w = writev(f->fd, v, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            /* take back a partial line so that the file holds whole records only */
            if (done > 0 && f->regular) {
                if (ftruncate(f->fd, (off_t)f->size) == 0)
                    done = 0;
                else
                    f->torn = true;
            }
            f->size += done;
            f->stats.bytes += done;
            fail(f, "write", f->path, e);
            f->stats.lost++;
            return -1;
        }
        done += (size_t)w;
        /* skip what was written */
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    f->size += total;
    f->stats.bytes += total;
    f->stats.records++;
    f->torn = false;
    recovered(f);
    return 0;
}

void audit_jsonl_close(audit_jsonl_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    free(f->path);
    free(f->name_a);
    free(f->name_b);
    f->path = f->name_a = f->name_b = NULL;
}
