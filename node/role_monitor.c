/*
 * node/role_monitor.c: `meshd monitor`, the independent prober (docs/monitor.md): run two or
 * three anywhere; one leads through an etcd election and evicts instances that stop answering
 * grpc.health.v1, the others stand by. `meshd monitor status --admin HOST:PORT` prints a running
 * monitor's state.
 *
 * Wiring: a node (node/node.h) with one worker loop and no gRPC listener; the control actors
 * are the audit actor (node/control.h), the monitor actor (monitor/monitor_actor.h) and, with
 * --gossip-bind, the gossip bridge: without --etcd it feeds the monitor the gossip members'
 * instances (a gossip-only mesh: report, evict nothing). With --admin-listen the node serves
 * /v1/monitor.
 */
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "gossip/gossip_options.h"
#include "monitor/monitor_options.h"
#include "node/cli.h"
#include "node/control.h"
#include "node/node.h"

int mesh_cli_monitor(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "status") == 0)
        return mesh_cli_monitor_status(argc - 1, argv + 1);
    mesh_config_t cfg;
    if (mesh_cli_load_config(&cfg, "monitor", MESH_ROLE_MONITOR, argc, argv, NULL) != 0)
        return 2;
    int rc = 2;
    mesh_node_t *node = NULL;
    node_control_t control;
    node_control_init(&control);
    mon_args_t args;
    memset(&args, 0, sizeof(args));
    if (cfg.etcd.n == 0 && !gsp_options_enabled(&cfg)) {
        fprintf(stderr, "meshd monitor: nothing to monitor: give --etcd (the registry; the "
                        "monitor is elected and evicts there) or --gossip-bind (a gossip-only "
                        "mesh: the monitor reports what it would evict, and evicts nothing)\n");
        goto out;
    }
    args.opts = *mon_options(&cfg);
    if (args.opts.check_timeout_ms >= args.opts.interval_ms) {
        fprintf(stderr,
                "meshd monitor: monitor.check-timeout (%lld ms) must be shorter than "
                "monitor.interval (%lld ms)\n",
                (long long)args.opts.check_timeout_ms, (long long)args.opts.interval_ms);
        goto out;
    }
    char host[256] = "meshd";
    gethostname(host, sizeof(host) - 1);
    args.node = cfg.node && *cfg.node ? cfg.node : host;
    if (cfg.workers == 0)
        cfg.workers = 1; /* no data plane: one idle worker loop */
    rc = 1;
    node = mesh_node_new(&cfg);
    if (!node || mesh_node_admin_listen(node, "monitor") != 0)
        goto out;
    int arc = node_control_audit(&control, node, &cfg, "monitor");
    if (arc == 0)
        arc = node_control_ca(&control, node, &cfg); /* the mesh CA, the node's identity */
    if (arc != 0) {
        rc = arc == -2 ? 2 : 1;
        goto out;
    }
    if (node_control_monitor(&control, node, &cfg, &args) != 0 ||
        node_control_gossip(&control, node, &cfg) != 0 || node_control_start(&control, node) != 0)
        goto out;
    rc = mesh_node_run(node);
out:
    mesh_node_free(node);
    node_control_release(&control);
    mesh_config_destroy(&cfg);
    return rc;
}
