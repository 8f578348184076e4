/*
 * node/admin_page.h: GET / on the admin port, the web page: one self-contained HTML document
 * (style and script inline, embedded in the binary at build time from node/webui/; nothing is
 * fetched from elsewhere) showing the node, its etcd and degraded status, services with their
 * methods and instances (source, state, owner), gossip members, the audit pipeline, the
 * monitor's verdicts (on `meshd monitor`) and call counts and rates.
 *
 * Every table is rendered on the server from the same JSON endpoints the API serves
 * (/v1/node, /v1/routes, /v1/members, /v1/audit, /v1/monitor), HTML-escaped, so the page
 * reads without JavaScript; the script then refreshes them from the API every two seconds.
 * The page is narrow-screen friendly (tables scroll sideways inside their section).
 */
#ifndef MESH_ADMIN_PAGE_H
#define MESH_ADMIN_PAGE_H

#include "node/admin.h"

/** Serves GET / on a (called by mesh_admin_new). 0 or -1. */
int mesh_admin_page_init(mesh_admin_t *a);

/** Appends s HTML-escaped (& < > " ') to b; 0 or -1 as h1_body_write(). */
int mesh_admin_html_escape(h1_body_t *b, const char *s);

#endif
