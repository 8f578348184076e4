/*
 * common/kafka_lib.c: opening librdkafka on first use (see common/kafka_lib.h).
 */
#include "common/kafka_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

/* Each entry's type is the header's prototype: a wrong parameter list fails the build here, not
 * at run time. (typeof does not evaluate its operand: nothing here links librdkafka.) */
#define MESH_KAFKA_CHECK(f, ret, s, args)                                                          \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&s), ret(*) args),                      \
                   #s " in common/kafka_lib.h does not match <librdkafka/rdkafka.h>");
MESH_KAFKA_FUNCS(MESH_KAFKA_CHECK)
#undef MESH_KAFKA_CHECK

#define SONAME "librdkafka.so.1"

static mesh_kafka_t table;
static const mesh_kafka_t *_Atomic loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(load_error, sizeof(load_error),
                 SONAME " has no %s (too old a librdkafka?); install librdkafka1 2.0 or newer",
                 name);
        return -1;
    }
    *(void **)slot = p;
    return 0;
}

static void load(void)
{
    void *lib = dlopen(SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof(load_error),
                 SONAME " cannot be loaded: %s; install librdkafka1", dlerror());
        return;
    }
#define MESH_KAFKA_LOAD(f, ret, s, args)                                                           \
    if (sym(lib, #s, &table.f) != 0) {                                                             \
        dlclose(lib);                                                                              \
        return;                                                                                    \
    }
    MESH_KAFKA_FUNCS(MESH_KAFKA_LOAD)
#undef MESH_KAFKA_LOAD
    atomic_store(&loaded, &table); /* the library stays open for the life of the process */
}

const mesh_kafka_t *mesh_kafka(char *err, size_t errlen)
{
    pthread_once(&once, load);
    const mesh_kafka_t *k = atomic_load(&loaded);
    if (!k && err && errlen)
        snprintf(err, errlen, "%s", load_error);
    return k;
}

int mesh_kafka_loaded(void)
{
    return atomic_load(&loaded) != NULL;
}
