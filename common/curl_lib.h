/*
 * common/curl_lib.h: libcurl, loaded when the first client needs it (etcd, HTTP fetches).
 *
 * libcurl (with OpenSSL, GnuTLS, Kerberos and LDAP behind it) is about 7 MiB of resident pages
 * (bench/rss); a node with only static routes never talks to etcd, so meshd does not link libcurl
 * but opens it on first use (dlopen "libcurl.so.4", the soname of Debian's libcurl4) and calls
 * through this table. The headers still come from libcurl4-openssl-dev, so types and options are
 * checked at compile time.
 */
#ifndef MESH_CURL_LIB_H
#define MESH_CURL_LIB_H

#include <curl/curl.h>
#include <stddef.h>

/** The libcurl functions meshd uses. */
typedef struct mesh_curl {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *e);
    CURLcode (*easy_perform)(CURL *e); /* blocking: one-shot commands only, never a loop */
    const char *(*easy_strerror)(CURLcode code);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *p);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    CURLMcode (*multi_cleanup)(CURLM *m);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} mesh_curl_t;

/**
 * The loaded library (opened and globally initialized once, thread-safe), or NULL when it
 * cannot be loaded; then err (if not NULL) says why.
 */
const mesh_curl_t *mesh_curl(char *err, size_t errlen);

#endif
