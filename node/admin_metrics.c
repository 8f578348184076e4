/*
 * node/admin_metrics.c: GET /metrics (see node/admin_metrics.h): the process families and the
 * collectors, written into the answer's body.
 */
#include "node/admin_metrics.h"

#include "common/procstat.h"

static int body_write(void *ud, const void *data, size_t n)
{
    return h1_body_write(ud, data, n);
}

/* A gauge or counter from a reading that may be unknown (negative: not written). */
static void known(prom_t *p, const char *name, prom_type_t type, const char *help, double v)
{
    if (v >= 0)
        prom_one(p, name, type, help, v);
}

static void process_families(prom_t *p)
{
    prom_family(p, "meshd_build_info", PROM_GAUGE, "Always 1; the version of this meshd.");
    prom_label_t v[] = {{"version", MESHD_VERSION}};
    prom_sample(p, "meshd_build_info", v, 1, 1);
    mesh_procstat_t s;
    mesh_procstat_read(&s);
    if (s.cpu_user_s >= 0) {
        prom_family(p, "meshd_process_cpu_seconds_total", PROM_COUNTER,
                    "CPU time the process used, user and system.");
        prom_label_t u[] = {{"mode", "user"}}, k[] = {{"mode", "system"}};
        prom_sample(p, "meshd_process_cpu_seconds_total", u, 1, s.cpu_user_s);
        prom_sample(p, "meshd_process_cpu_seconds_total", k, 1, s.cpu_system_s);
    }
    known(p, "meshd_process_resident_memory_bytes", PROM_GAUGE, "Resident set size.", s.rss_bytes);
    known(p, "meshd_process_virtual_memory_bytes", PROM_GAUGE, "Virtual memory size.",
          s.vsize_bytes);
    known(p, "meshd_process_open_fds", PROM_GAUGE, "Open file descriptors.", s.open_fds);
    known(p, "meshd_process_max_fds", PROM_GAUGE, "The soft limit of open file descriptors.",
          s.max_fds);
    known(p, "meshd_process_threads", PROM_GAUGE, "Threads of the process.", s.threads);
    known(p, "meshd_process_start_time_seconds", PROM_GAUGE,
          "When the process started, in seconds since the Unix epoch.", s.start_time_s);
}

void mesh_admin_metrics_write(mesh_admin_t *a, prom_t *p)
{
    process_families(p);
    mesh_admin_collect_metrics(a, p);
}

/* GET /metrics. */
static int metrics_handler(void *ud, const h1_req_t *req, h1_body_t *b)
{
    (void)req;
    h1_body_set_type(b, MESH_ADMIN_METRICS_TYPE);
    prom_t p;
    prom_init(&p, body_write, b);
    mesh_admin_metrics_write(ud, &p);
    return prom_failed(&p) ? 500 : 200;
}

int mesh_admin_metrics_init(mesh_admin_t *a)
{
    return mesh_admin_add(a, "/metrics", metrics_handler, a);
}
