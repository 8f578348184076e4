/*
 * node/control_metrics.c: the registry, audit and monitor metric families (see
 * node/control_metrics.h).
 */
#include "node/control_metrics.h"

#include <jansson.h>
#include <string.h>

#include "registry/watch_sm.h"

static void counter(prom_t *p, const char *name, const char *help, uint64_t v)
{
    prom_family(p, name, PROM_COUNTER, help);
    prom_sample_u64(p, name, NULL, 0, v);
}

/* ---- registry ---------------------------------------------------------------------------- */

void node_reg_metrics_on_view(void *ud, const reg_view_t *view, int published)
{
    (void)published;
    node_reg_metrics_t *m = ud;
    if (!view) { /* the actor (re)started: its machine counts from zero again */
        m->base_resyncs = m->resyncs;
        m->base_compacted = m->compacted;
        m->watching = 0;
        return;
    }
    const reg_watch_sm_t *sm = reg_view_sm(view);
    m->revision = reg_view_revision(view);
    m->resyncs = m->base_resyncs + sm->resyncs;
    m->compacted = m->base_compacted + sm->compacted;
    int watching = sm->state == REG_WATCH_WATCHING;
    if (watching && !m->watching)
        m->watch_starts++;
    m->watching = watching;
}

void node_reg_metrics_write(void *ud, prom_t *p)
{
    const node_reg_metrics_t *m = ud;
    prom_one(p, "meshd_etcd_revision", PROM_GAUGE,
             "The etcd revision the registry view reflects (0 before any data).",
             (double)m->revision);
    counter(p, "meshd_etcd_resyncs_total", "Full listings of the registry prefix completed.",
            m->resyncs);
    counter(p, "meshd_etcd_watch_compactions_total",
            "Watches lost to etcd compaction (followed by a resync).", m->compacted);
    counter(p, "meshd_etcd_watch_reconnects_total",
            "Times the registry watch was opened again after the first (a broken stream, an "
            "unreachable etcd, a compaction).",
            m->watch_starts ? m->watch_starts - 1 : 0);
}

/* ---- audit ------------------------------------------------------------------------------- */

void node_audit_metrics_write(void *ud, prom_t *p)
{
    audit_args_t *const *args = ud;
    audit_actor_stats_t s;
    const char *sink = "off";
    if (*args) {
        audit_actor_get_stats(*args, &s);
        sink = audit_actor_sink_name(*args);
    } else {
        memset(&s, 0, sizeof(s));
    }
    prom_family(p, "meshd_audit_sink_info", PROM_GAUGE,
                "Always 1; where audit records go (kafka, file or off).");
    prom_label_t l[] = {{"sink", sink}};
    prom_sample(p, "meshd_audit_sink_info", l, 1, 1);
    if (!strcmp(sink, "kafka")) {
        prom_family(p, "meshd_audit_kafka_state", PROM_GAUGE,
                    "1 for the Kafka link's state: connecting, connected or spooling.");
        static const char *const states[] = {"connecting", "connected", "spooling"};
        for (int i = 0; i < 3; i++) {
            prom_label_t k[] = {{"state", states[i]}};
            prom_sample(p, "meshd_audit_kafka_state", k, 1, s.link == i);
        }
    }
    counter(p, "meshd_audit_records_accepted_total", "Audit records the audit actor took in.",
            s.accepted);
    counter(p, "meshd_audit_records_sent_total", "Audit records handed to Kafka.", s.sent);
    counter(p, "meshd_audit_records_acknowledged_total", "Audit records Kafka acknowledged.",
            s.acked);
    counter(p, "meshd_audit_delivery_failures_total", "Kafka deliveries that failed (retried).",
            s.failures);
    counter(p, "meshd_audit_records_written_total", "Audit records written to the audit file.",
            s.file_records);
    prom_one(p, "meshd_audit_spool_records", PROM_GAUGE,
             "Audit records in the disk spool, waiting for Kafka.", (double)s.spool_pending);
    counter(p, "meshd_audit_spool_written_bytes_total", "Bytes written to the disk spool.",
            s.spool_bytes_written);
    prom_family(p, "meshd_audit_records_dropped_total", PROM_COUNTER,
                "Audit records lost, by cause: spool (the spool was full or failed), file (the "
                "audit file failed), off (emitted while audit is off).");
    prom_label_t d1[] = {{"cause", "spool"}}, d2[] = {{"cause", "file"}}, d3[] = {{"cause", "off"}};
    prom_sample_u64(p, "meshd_audit_records_dropped_total", d1, 1, s.dropped_total);
    prom_sample_u64(p, "meshd_audit_records_dropped_total", d2, 1, s.file_lost);
    prom_sample_u64(p, "meshd_audit_records_dropped_total", d3, 1, s.off_dropped);
}

/* ---- monitor ----------------------------------------------------------------------------- */

static uint64_t uint_at(json_t *o, const char *obj, const char *key)
{
    json_t *v = json_object_get(obj ? json_object_get(o, obj) : o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

void node_monitor_metrics_write(void *ud, prom_t *p)
{
    json_t *o = mon_actor_status(ud);
    if (!o)
        return;
    const char *role = json_string_value(json_object_get(o, "role"));
    prom_family(p, "meshd_monitor_role", PROM_GAUGE,
                "1 for the monitor's election role: leader, standby, campaigning, granting, "
                "backoff or stopped.");
    static const char *const roles[] = {"leader",   "standby", "campaigning",
                                        "granting", "backoff", "stopped"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        prom_label_t l[] = {{"role", roles[i]}};
        prom_sample(p, "meshd_monitor_role", l, 1, role && !strcmp(role, roles[i]));
    }
    prom_family(p, "meshd_monitor_instances", PROM_GAUGE,
                "Registered instances the monitor knows, by verdict: checked (all of them in the "
                "last listing), failing, evicted.");
    static const char *const states[] = {"checked", "failing", "evicted"};
    for (int i = 0; i < 3; i++) {
        prom_label_t l[] = {{"state", states[i]}};
        prom_sample_u64(p, "meshd_monitor_instances", l, 1, uint_at(o, "instances", states[i]));
    }
    static const struct {
        const char *key, *name, *help;
    } c[] = {
        {"rounds", "meshd_monitor_rounds_total", "Probing rounds run as leader."},
        {"checks", "meshd_monitor_checks_total", "Health checks made."},
        {"check_failures", "meshd_monitor_check_failures_total", "Health checks that failed."},
        {"evictions", "meshd_monitor_evictions_total", "Instances evicted from the registry."},
        {"readmissions", "meshd_monitor_readmissions_total", "Evicted instances re-admitted."},
        {"stale_verdicts", "meshd_monitor_stale_verdicts_total",
         "Evictions etcd refused because the registration changed since the verdict."},
        {"fenced", "meshd_monitor_fenced_total",
         "Evictions etcd refused because this monitor was no longer the leader."},
        {"held", "meshd_monitor_held_total",
         "Would-be evictions held back and audited: a valve, a dry run, a gossip member's veto, "
         "or a gossip-only mesh (no fencing)."},
        {"indirect_asked", "meshd_monitor_indirect_checks_total",
         "Indirect checks asked of gossip members before an eviction."},
        {"vetoed", "meshd_monitor_indirect_vetoes_total",
         "Evictions vetoed because a gossip member reached the instance."},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        counter(p, c[i].name, c[i].help, uint_at(o, "counters", c[i].key));
    json_t *closed = json_object_get(json_object_get(o, "valve"), "closed");
    prom_one(p, "meshd_monitor_valve_closed", PROM_GAUGE,
             "1 while the safety valve holds evictions back.", json_is_true(closed));
    json_decref(o);
}
