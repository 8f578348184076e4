/*
 * transport/tls_holder.h: the current TLS context of a listener (or of upstream calls), and its
 * reload from the same files.
 *
 * Workers take a reference to the current context for each new connection (a mutex held for a
 * pointer copy, once per connection, never per frame). A reload makes a new context from the
 * files, checks it as at start and swaps it in; connections already up keep the context they
 * were made with (they hold a reference) and are not dropped. A reload that fails (a garbage
 * file, a key that does not match a certificate yet because only one of the two was replaced)
 * keeps the current context and says why; it is tried again when the files change again.
 */
#ifndef MESH_TLS_HOLDER_H
#define MESH_TLS_HOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "transport/tls.h"

typedef struct mesh_tls_holder mesh_tls_holder_t;

/** Makes the first context (mesh_tls_ctx_new's checks and errors). */
mesh_tls_holder_t *mesh_tls_holder_new(const mesh_tls_conf_t *conf, int server, char *err,
                                       size_t errlen);

/** The same for files that may not be there yet (a mesh identity before the CA answered): when
 *  they do not make a context, the holder starts empty (mesh_tls_holder_get returns NULL) and the
 *  first reload that works fills it. Why it is empty goes to err. NULL only when out of memory. */
mesh_tls_holder_t *mesh_tls_holder_new_waiting(const mesh_tls_conf_t *conf, int server, char *err,
                                               size_t errlen);

void mesh_tls_holder_free(mesh_tls_holder_t *h);

/** The current context, with a reference the caller drops (mesh_tls_ctx_unref); NULL while a
 *  waiting holder has none yet. Any thread. */
mesh_tls_ctx_t *mesh_tls_holder_get(mesh_tls_holder_t *h);

/** Reloads when forced (SIGHUP) or when a file changed (size, time or inode) since the last
 *  attempt. Returns 1 when a new context is in place, 0 when nothing changed, -1 when the files
 *  are bad (err says why; the current context stays). */
int mesh_tls_holder_reload(mesh_tls_holder_t *h, int force, char *err, size_t errlen);

/** Successful reloads so far. */
uint64_t mesh_tls_holder_reloads(const mesh_tls_holder_t *h);

/** The certificate file (for logs), or the CA file of a client context. */
const char *mesh_tls_holder_desc(const mesh_tls_holder_t *h);

#endif
