/*
 * node/control.c: building a node's control actors from its config (see node/control.h).
 */
#include "node/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_options.h"
#include "audit/spool_fs_posix.h"
#include "common/file_read.h"
#include "common/log.h"
#include "gossip/gossip_options.h"
#include "node/admin.h"
#include "node/ca_options.h"
#include "node/control_metrics.h"
#include "node/node_tls.h"
#include "node/tls_options.h"

void node_control_init(node_control_t *c)
{
    memset(c, 0, sizeof(*c));
    c->sup = (mesh_supervisor_spec_t){
        .name = "control-supervisor",
        .children = c->children,
        .max_restarts = 20,
        .backoff_initial_ns = 100000000ull,
        .backoff_max_ns = 30000000000ull,
    };
}

static int add_child(node_control_t *c, const mesh_actor_ops_t *ops, void *arg, uint32_t mailbox,
                     mesh_actor_id_t *id_out)
{
    if (c->sup.nchildren == NODE_CONTROL_MAX) {
        mesh_error("node", "too many control actors");
        return -1;
    }
    c->children[c->sup.nchildren++] = (mesh_child_spec_t){
        .ops = ops,
        .arg = arg,
        .opts = {.loop = MESH_LOOP_CONTROL, .mailbox = mailbox},
        .id_out = id_out,
    };
    return 0;
}

/* GET /v1/audit. */
static json_t *admin_audit(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    node_control_t *c = ud;
    if (!c->audit_args)
        return json_pack("{s:s,s:s,s:s}", "sink", "off", "state", "off", "boot_id",
                         c->audit.ctx.boot_hex);
    return audit_actor_status(c->audit_args);
}

int node_control_audit(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                       const char *role)
{
    char err[600];
    const char *name = cfg->node && *cfg->node ? cfg->node : "meshd";
    if (audit_api_init(&c->audit, name, role, err, sizeof(err)) != 0) {
        mesh_error("audit", "%s", err);
        return -1;
    }
    mesh_node_set_audit(node, &c->audit);
    mesh_admin_t *admin = mesh_node_admin(node);
    if (admin && (mesh_admin_add_json(admin, "/v1/audit", admin_audit, c) != 0 ||
                  mesh_admin_add_metrics(admin, node_audit_metrics_write, &c->audit_args) != 0)) {
        mesh_error("audit", "cannot serve /v1/audit");
        return -1;
    }
    audit_resolved_t r;
    if (audit_options_resolve(cfg, name, &r, err, sizeof(err)) != 0) {
        mesh_error("audit", "%s", err);
        return -2;
    }
    const audit_options_t *o = audit_options(cfg);
    audit_actor_cfg_t ac = {.mode = r.mode, .api = &c->audit};
    if (r.mode == AUDIT_MODE_OFF) {
        mesh_info("audit", "audit events are off (audit.file off, no audit.kafka)");
        return 0;
    }
    if (r.mode == AUDIT_MODE_FILE) {
        snprintf(c->audit_file, sizeof(c->audit_file), "%s", r.file);
        ac.file = (audit_jsonl_cfg_t){.path = c->audit_file,
                                      .max_bytes = (uint64_t)o->file_max,
                                      .keep = (unsigned)o->file_keep};
        audit_jsonl_t f;
        if (audit_jsonl_open(&f, &ac.file, err, sizeof(err)) != 0) {
            if (!r.file_is_default) {
                mesh_error("audit", "audit.file: %s", err);
                return -2;
            }
            mesh_info("audit",
                      "audit events are off: the default audit file cannot be opened "
                      "(%s); give --audit-file PATH (or --audit-kafka BROKERS)",
                      err);
            return 0;
        }
        audit_jsonl_close(&f);
    } else {
        snprintf(c->audit_spool, sizeof(c->audit_spool), "%s", r.spool);
        /* The spool folder must be usable now: created, and not locked by another process. */
        if (audit_mkdirs(c->audit_spool, err, sizeof(err)) != 0) {
            mesh_error("audit", "audit.spool: %s", err);
            return -2;
        }
        audit_spool_posix_t *probe = audit_spool_posix_new(c->audit_spool, err, sizeof(err));
        if (!probe) {
            mesh_error("audit", "audit.spool: %s", err);
            return -2;
        }
        audit_spool_posix_delete(probe);
        c->audit_fs.dir = c->audit_spool;
        c->audit_kafka.cfg = (audit_kafka_cfg_t){
            .brokers = o->kafka,
            .topic = o->topic,
            .opts = (const char *const *)o->kafka_opts.items,
            .n_opts = o->kafka_opts.n,
            .client_id = "meshd",
        };
        ac.spool.max_bytes = (uint64_t)o->spool_max;
        ac.spool.policy = !strcmp(o->spool_policy, "drop-oldest") ? AUDIT_SPOOL_DROP_OLDEST
                                                                  : AUDIT_SPOOL_DROP_NEWEST;
        ac.sink_new = audit_kafka_factory;
        ac.sink_arg = &c->audit_kafka;
        ac.fs = audit_posix_fs_factory;
        ac.fs_arg = &c->audit_fs;
        ac.spool_dir = c->audit_spool;
        ac.brokers = o->kafka;
        ac.topic = o->topic;
    }
    c->audit_args = audit_args_new(&ac);
    if (!c->audit_args ||
        add_child(c, &audit_actor_ops, c->audit_args, AUDIT_ACTOR_MAILBOX, &c->audit.actor) != 0)
        return -1;
    if (o->test_rate > 0) { /* tests and benchmarks: synthetic events */
        c->audit_load = (audit_load_args_t){.api = &c->audit, .rate = (uint32_t)o->test_rate};
        return add_child(c, &audit_load_ops, &c->audit_load, 0, NULL);
    }
    return 0;
}

int node_control_registry(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                          mesh_routes_t *static_routes, int watch)
{
    /* The static routes serve from the first accepted call on, before any actor runs. */
    if (static_routes)
        mesh_node_publish_routes(node, mesh_routes_ref(static_routes));
    int gossip = gsp_options_enabled(cfg);
    c->watch = watch;
    if (cfg->etcd.n == 0 && !gossip) {
        mesh_routes_unref(static_routes);
        return 0;
    }
    if (cfg->etcd.n == 0) { /* a gossip-only mesh: gossip is the registry */
        reg_actor_cfg_t rc = {
            .prefix = cfg->etcd_prefix,
            .watch = watch,
            .subscriber = watch ? mesh_node_actor(node) : 0,
            .local_registry = 1,
        };
        c->registry = reg_actor_args_new(&rc, static_routes);
        if (!c->registry)
            return -1;
        return add_child(c, &reg_actor_ops, c->registry, REG_ACTOR_MAILBOX, &c->registry_id);
    }
    c->etcd = (reg_curl_factory_t){
        .exec = mesh_node_exec(node),
        .cfg =
            {
                .endpoints = (const char *const *)cfg->etcd.items,
                .n_endpoints = cfg->etcd.n,
                .username = cfg->etcd_user,
                .password = cfg->etcd_password,
                .ca_file = cfg->etcd_cacert,
                .cert_file = cfg->etcd_cert,
                .key_file = cfg->etcd_key,
            },
    };
    reg_actor_cfg_t rc = {
        .etcd_new = reg_etcd_curl_factory,
        .etcd_arg = &c->etcd,
        .prefix = cfg->etcd_prefix,
        .watch = watch,
        .snapshot_path = cfg->snapshot_file,
        .subscriber = watch ? mesh_node_actor(node) : 0,
        .link_subscriber = mesh_node_actor(node), /* etcd's state in the admin API */
        .on_view = watch ? node_reg_metrics_on_view : NULL,
        .hooks_ud = &c->reg_metrics,
    };
    mesh_admin_t *admin = mesh_node_admin(node);
    if (watch && admin && mesh_admin_add_metrics(admin, node_reg_metrics_write, &c->reg_metrics))
        return -1;
    c->registry = reg_actor_args_new(&rc, static_routes);
    if (!c->registry)
        return -1;
    return add_child(c, &reg_actor_ops, c->registry, REG_ACTOR_MAILBOX, &c->registry_id);
}

/* Signed gossip records: our identity, and with verification the CA and the rule table, read
 * now so that a bad file stops the start with its reason. */
static int gossip_signing(gsp_bridge_args_t *a, const mesh_config_t *cfg)
{
    const gsp_options_t *g = gsp_options(cfg);
    const mesh_ca_options_t *o = mesh_ca_options(cfg);
    a->identity_dir = o && o->identity_dir && *o->identity_dir ? o->identity_dir : NULL;
    a->verify = g->verify || (g->ca && *g->ca);
    if (!a->verify) {
        if (g->rules)
            mesh_warn("node", "gossip.rules: ignored without --gossip-verify or --gossip-ca");
        return 0;
    }
    char path[4096], err[700];
    if (g->ca && *g->ca)
        snprintf(path, sizeof(path), "%s", g->ca);
    else if (a->identity_dir)
        snprintf(path, sizeof(path), "%s/ca.pem", a->identity_dir);
    else {
        mesh_error("node", "gossip.verify: needs --gossip-ca FILE or --identity-dir DIR (its "
                           "ca.pem): the CA records must chain to");
        return -1;
    }
    size_t n;
    char *pem = mesh_file_read(path, 1 << 20, 0, &n, err, sizeof(err));
    if (!pem) {
        mesh_error("node", "gossip.ca: %s", err);
        return -1;
    }
    rsig_trust_free(a->trust);
    a->trust = rsig_trust_new(pem, n, path, err, sizeof(err));
    free(pem);
    if (!a->trust) {
        mesh_error("node", "gossip.ca: %s", err);
        return -1;
    }
    svr_rules_free(a->rules);
    a->rules = NULL;
    if (g->rules && *g->rules && !(a->rules = svr_rules_load(g->rules, err, sizeof(err)))) {
        mesh_error("node", "gossip.rules: %s", err);
        return -1;
    }
    mesh_info("node", "gossip: routing only signed records that chain to %s (%zu rules)", path,
              svr_rules_count(a->rules));
    return 0;
}

int node_control_gossip(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg)
{
    if (!gsp_options_enabled(cfg))
        return 0;
    gsp_bridge_args_t *a = &c->gossip;
    char err[600];
    if (gsp_options_actor_cfg(cfg, cfg->node, &a->gossip, err, sizeof(err)) != 0) {
        mesh_error("node", "%s", err);
        return -1;
    }
    a->registry = c->registry ? &c->registry_id : c->monitor_gossip ? &c->monitor_id : NULL;
    a->node = mesh_node_actor(node);
    snprintf(a->prefix, sizeof(a->prefix), "%s",
             cfg->etcd_prefix ? cfg->etcd_prefix : REG_DEFAULT_PREFIX);
    a->admin = mesh_node_admin(node);
    a->routes = c->watch || c->monitor_gossip;
    a->audit = &c->audit;
    if (gossip_signing(a, cfg) != 0)
        return -1;
    c->gossip_on = 1;
    return add_child(c, &gsp_bridge_ops, a, 0, &c->gossip_id);
}

int node_control_sidecar(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         const char *advertise)
{
    sc_args_t *a = &c->sidecar;
    a->cfg = cfg;
    snprintf(a->advertise, sizeof(a->advertise), "%s", advertise);
    a->node = mesh_node_actor(node);
    a->registry = c->registry ? &c->registry_id : NULL;
    a->rpc_new = sc_rpc_grpc_factory;
    a->rpc_arg = mesh_node_exec(node);
    a->exec = mesh_node_exec(node);
    a->audit = &c->audit;
    a->mesh_tls = mesh_node_tls_mesh_served(node);
    if (mesh_tls_options(cfg)->probe) {
        a->probe_tls = mesh_node_tls_admin(node);
        a->probe_tls_timeout_ms = node_tls_handshake_timeout(cfg);
        if (!a->probe_tls) {
            if (!mesh_node_tls_http_wanted(node))
                mesh_error("sidecar", "tls-probe: needs --tls-cert and --tls-key");
            return -1;
        }
    }
    mesh_admin_t *admin = mesh_node_admin(node);
    if (admin && mesh_admin_add_metrics(admin, sc_metrics_write, a) != 0)
        return -1;
    return add_child(c, &sc_actor_ops, a, 0, NULL);
}

/* GET /v1/monitor. */
static json_t *admin_monitor(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    return mon_actor_status(ud);
}

int node_control_monitor(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg,
                         mon_args_t *a)
{
    c->etcd = (reg_curl_factory_t){
        .exec = mesh_node_exec(node),
        .cfg =
            {
                .endpoints = (const char *const *)cfg->etcd.items,
                .n_endpoints = cfg->etcd.n,
                .username = cfg->etcd_user,
                .password = cfg->etcd_password,
                .ca_file = cfg->etcd_cacert,
                .cert_file = cfg->etcd_cert,
                .key_file = cfg->etcd_key,
            },
    };
    a->prefix = cfg->etcd_prefix;
    a->etcd_new = cfg->etcd.n ? reg_etcd_curl_factory : NULL; /* none: gossip-only (report) */
    a->etcd_arg = &c->etcd;
    c->monitor_gossip = cfg->etcd.n == 0;
    a->gossip = &c->gossip_id; /* 0 unless gossip is on: then indirect checks */
    a->rpc_new = mon_rpc_grpc_factory;
    a->rpc_arg = mesh_node_exec(node);
    a->audit = &c->audit;
    mesh_admin_t *admin = mesh_node_admin(node);
    if (admin && (mesh_admin_add_json(admin, "/v1/monitor", admin_monitor, a) != 0 ||
                  mesh_admin_add_metrics(admin, node_monitor_metrics_write, a) != 0)) {
        mesh_error("monitor", "cannot serve /v1/monitor");
        return -1;
    }
    return add_child(c, &mon_actor_ops, a, MON_ACTOR_MAILBOX, &c->monitor_id);
}

int node_control_add(node_control_t *c, const mesh_actor_ops_t *ops, void *arg, uint32_t mailbox,
                     mesh_actor_id_t *id_out)
{
    return add_child(c, ops, arg, mailbox, id_out);
}

int node_control_ca(node_control_t *c, mesh_node_t *node, const mesh_config_t *cfg)
{
    const mesh_ca_options_t *o = mesh_ca_options(cfg);
    mesh_admin_t *admin = mesh_node_admin(node);
    if (o->dir && *o->dir) {
        if (!admin) {
            mesh_error("ca", "--ca-dir serves the CA on the admin API: give --admin-listen too");
            return -2;
        }
        c->ca = (ca_server_args_t){.admin = admin,
                                   .audit = &c->audit,
                                   .dir = o->dir,
                                   .tokens = o->tokens,
                                   .max_lifetime_s = o->max_lifetime_ms / 1000};
        char err[600];
        if (ca_server_precheck(&c->ca, err, sizeof(err)) != 0) {
            mesh_error("ca", "%s", err);
            return -2;
        }
        if (add_child(c, &ca_server_ops, &c->ca, 0, NULL) != 0)
            return -2;
    }
    if (o->url && *o->url) {
        c->identity = (identity_args_t){.admin = admin,
                                        .node = cfg->node,
                                        .url = o->url,
                                        .token_file = o->token_file,
                                        .dir = o->identity_dir,
                                        .lifetime_s = o->lifetime_ms / 1000,
                                        .services = &o->services,
                                        .dns = &o->dns,
                                        .ips = &o->ips};
        if (add_child(c, &identity_client_ops, &c->identity, 0, NULL) != 0)
            return -2;
    }
    return 0;
}

int node_control_start(node_control_t *c, mesh_node_t *node)
{
    if (c->sup.nchildren == 0)
        return 0;
    return mesh_node_supervise(node, &c->sup);
}

void node_control_release(node_control_t *c)
{
    audit_args_free(c->audit_args);
    c->audit_args = NULL;
    reg_actor_args_free(c->registry);
    c->registry = NULL;
    rsig_trust_free(c->gossip.trust);
    c->gossip.trust = NULL;
    svr_rules_free(c->gossip.rules);
    c->gossip.rules = NULL;
}
