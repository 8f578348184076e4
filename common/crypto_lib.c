/*
 * common/crypto_lib.c: opening libcrypto on first use (see common/crypto_lib.h).
 */
#include "common/crypto_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static mesh_crypto_t table;
static const mesh_crypto_t *loaded;
static char load_error[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(load_error, sizeof(load_error), "libcrypto.so.3 has no %s", name);
        return -1;
    }
    *(void **)slot = p;
    return 0;
}

static void load(void)
{
    void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof(load_error), "cannot load libcrypto: %s", dlerror());
        return;
    }
#define MESH_CRYPTO_LOAD(f, ret, s, args)                                                          \
    if (sym(lib, #s, &table.f) != 0) {                                                             \
        dlclose(lib);                                                                              \
        return;                                                                                    \
    }
    MESH_CRYPTO_FUNCS(MESH_CRYPTO_LOAD)
#undef MESH_CRYPTO_LOAD
    loaded = &table; /* the library stays open for the life of the process */
}

const mesh_crypto_t *mesh_crypto(char *err, size_t errlen)
{
    pthread_once(&once, load);
    if (!loaded && err && errlen)
        snprintf(err, errlen, "%s", load_error);
    return loaded;
}
