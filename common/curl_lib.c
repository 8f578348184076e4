/*
 * common/curl_lib.c: opening libcurl on first use (see common/curl_lib.h).
 */
#include "common/curl_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static mesh_curl_t curl_table;
static const mesh_curl_t *curl_loaded;
static char curl_error[256];
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

/* Resolves one symbol into *slot; returns 0 or -1 (curl_error says which). */
static int sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(curl_error, sizeof(curl_error), "libcurl.so.4 has no %s", name);
        return -1;
    }
    *(void **)slot = p;
    return 0;
}

/*
 * GnuTLS is mapped with libcurl only as a dependency of librtmp and libldap (rtmp:// and ldap://
 * URLs, which meshd never uses: curl's TLS here is OpenSSL). Its library constructor would
 * initialize it all the same (p11-kit, ASN.1 trees: about 1 MiB of RSS). This is GnuTLS's
 * documented override for that (GNUTLS_SKIP_GLOBAL_INIT in gnutls/gnutls.h); code that uses
 * GnuTLS calls gnutls_global_init() itself. The binary exports it (registry/CMakeLists.txt).
 */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void)
{
    return 1;
}

static void curl_load(void)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(curl_error, sizeof(curl_error), "cannot load libcurl: %s", dlerror());
        return;
    }
    mesh_curl_t *t = &curl_table;
    CURLcode (*global_init)(long) = NULL;
    if (sym(lib, "curl_global_init", &global_init) || sym(lib, "curl_easy_init", &t->easy_init) ||
        sym(lib, "curl_easy_setopt", &t->easy_setopt) ||
        sym(lib, "curl_easy_getinfo", &t->easy_getinfo) ||
        sym(lib, "curl_easy_cleanup", &t->easy_cleanup) ||
        sym(lib, "curl_easy_perform", &t->easy_perform) ||
        sym(lib, "curl_easy_strerror", &t->easy_strerror) ||
        sym(lib, "curl_multi_init", &t->multi_init) ||
        sym(lib, "curl_multi_setopt", &t->multi_setopt) ||
        sym(lib, "curl_multi_add_handle", &t->multi_add_handle) ||
        sym(lib, "curl_multi_remove_handle", &t->multi_remove_handle) ||
        sym(lib, "curl_multi_assign", &t->multi_assign) ||
        sym(lib, "curl_multi_socket_action", &t->multi_socket_action) ||
        sym(lib, "curl_multi_info_read", &t->multi_info_read) ||
        sym(lib, "curl_multi_cleanup", &t->multi_cleanup) ||
        sym(lib, "curl_slist_append", &t->slist_append) ||
        sym(lib, "curl_slist_free_all", &t->slist_free_all)) {
        dlclose(lib);
        return;
    }
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_error, sizeof(curl_error), "curl_global_init failed");
        dlclose(lib);
        return;
    }
    curl_loaded = t; /* the library stays loaded for the life of the process */
}

const mesh_curl_t *mesh_curl(char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_load);
    if (!curl_loaded && err)
        snprintf(err, errlen, "%s", curl_error);
    return curl_loaded;
}
