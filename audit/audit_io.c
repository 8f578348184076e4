/*
 * audit/audit_io.c: the audit actor's production factories (see audit/audit_io.h).
 */
#include "audit/audit_io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit/spool_fs_posix.h"

audit_sink_t *audit_kafka_factory(mesh_actor_t *self, const audit_sink_cbs_t *cbs, void *ud,
                                  void *arg, char *err, size_t errlen)
{
    audit_kafka_factory_t *f = arg;
    uv_loop_t *loop = mesh_uv_loop(self);
    if (!loop) {
        snprintf(err, errlen, "the Kafka sink needs a libuv loop");
        return NULL;
    }
    return audit_kafka_new(loop, &f->cfg, cbs, ud, err, errlen);
}

int audit_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (!dir || !*dir || snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "bad folder name");
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "create folder %s: %s", path, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

static int posix_open(mesh_actor_t *self, void *arg, audit_spool_fs_t *fs, char *err, size_t errlen)
{
    (void)self;
    audit_posix_factory_t *f = arg;
    if (audit_mkdirs(f->dir, err, errlen) != 0)
        return -1;
    f->h = audit_spool_posix_new(f->dir, err, errlen);
    if (!f->h)
        return -1;
    *fs = audit_spool_posix_fs(f->h);
    return 0;
}

static void posix_close(void *arg, audit_spool_fs_t *fs)
{
    (void)fs;
    audit_posix_factory_t *f = arg;
    audit_spool_posix_delete(f->h);
    f->h = NULL;
}

const audit_fs_factory_t audit_posix_fs_factory = {.open = posix_open, .close = posix_close};
