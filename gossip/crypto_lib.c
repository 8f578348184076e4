/*
 * gossip/crypto_lib.c: opening libcrypto on first use (see gossip/crypto_lib.h).
 */
#include "gossip/crypto_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static gsp_crypto_t table;
static const gsp_crypto_t *loaded;
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
    if (sym(lib, "EVP_CIPHER_CTX_new", &table.ctx_new) ||
        sym(lib, "EVP_CIPHER_CTX_free", &table.ctx_free) ||
        sym(lib, "EVP_CIPHER_CTX_ctrl", &table.ctx_ctrl) ||
        sym(lib, "EVP_aes_256_gcm", &table.aes_256_gcm) ||
        sym(lib, "EVP_EncryptInit_ex", &table.encrypt_init) ||
        sym(lib, "EVP_EncryptUpdate", &table.encrypt_update) ||
        sym(lib, "EVP_EncryptFinal_ex", &table.encrypt_final) ||
        sym(lib, "EVP_DecryptInit_ex", &table.decrypt_init) ||
        sym(lib, "EVP_DecryptUpdate", &table.decrypt_update) ||
        sym(lib, "EVP_DecryptFinal_ex", &table.decrypt_final)) {
        dlclose(lib);
        return;
    }
    loaded = &table; /* the library stays open for the life of the process */
}

const gsp_crypto_t *gsp_crypto(char *err, size_t errlen)
{
    pthread_once(&once, load);
    if (!loaded && err && errlen)
        snprintf(err, errlen, "%s", load_error);
    return loaded;
}
