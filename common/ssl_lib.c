/*
 * common/ssl_lib.c: opening libssl on first use (see common/ssl_lib.h).
 */
#include "common/ssl_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static mesh_ssl_t table;
static const mesh_ssl_t *_Atomic loaded;
static char load_error[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(load_error, sizeof(load_error), "libssl.so.3 has no %s", name);
        return -1;
    }
    *(void **)slot = p;
    return 0;
}

static void load(void)
{
    void *lib = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof(load_error), "cannot load libssl: %s", dlerror());
        return;
    }
#define MESH_SSL_LOAD(f, ret, s, args)                                                             \
    if (sym(lib, #s, &table.f) != 0) {                                                             \
        dlclose(lib);                                                                              \
        return;                                                                                    \
    }
    MESH_SSL_FUNCS(MESH_SSL_LOAD)
#undef MESH_SSL_LOAD
    atomic_store(&loaded, &table); /* the library stays open for the life of the process */
}

const mesh_ssl_t *mesh_ssl(char *err, size_t errlen)
{
    pthread_once(&once, load);
    const mesh_ssl_t *s = atomic_load(&loaded);
    if (!s && err && errlen)
        snprintf(err, errlen, "%s", load_error);
    return s;
}

int mesh_ssl_loaded(void)
{
    return atomic_load(&loaded) != NULL;
}
