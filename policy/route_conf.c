/*
 * policy/route_conf.c: reading the `routes:` block (see policy/route_conf.h).
 */
#include "policy/route_conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/file_read.h"
#include "transport/grpc_status.h"
#include "transport/tls_holder.h"

/* gRPC's service config caps maxAttempts at 5 (larger values are treated as 5). */
#define MAX_ATTEMPTS_CAP 5

typedef struct ld {
    yaml_document_t doc;
    const char *name;
    char *err;
    size_t errlen;
} ld_t;

static int fail(ld_t *l, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%zu: routes%s%s: %s", l->name, n ? n->start_mark.line + 1 : 0,
             key[0] ? "." : "", key, what);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(ld_t *l, int id)
{
    return yaml_document_get_node(&l->doc, id);
}

/* "500ms", "5s", "2m" (a bare number is seconds). */
static int parse_dur(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || !isfinite(v))
        return -1;
    double mul = !strcmp(end, "ms")  ? 1
                 : !strcmp(end, "s") ? 1000
                 : !*end             ? 1000
                 : !strcmp(end, "m") ? 60000
                                     : -1;
    if (mul < 0 || v * mul > 1e12)
        return -1;
    *ms = (uint64_t)(v * mul + 0.5);
    return 0;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = s ? strtod(s, &end) : NAN;
    if (!s || end == s || *end || errno || !isfinite(d) || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
        *out = 1;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
        *out = 0;
    else
        return -1;
    return 0;
}

/* A gRPC status by name ("UNAVAILABLE") or number ("14"), 1..16. */
static int parse_status(const char *s)
{
    if (!s)
        return -1;
    int c = mesh_grpc_status_from_name(s);
    if (c < 0) {
        double d;
        if (parse_num(s, 1, 16, &d) == 0 && d == floor(d))
            c = (int)d;
    }
    return c >= 1 && c <= 16 ? c : -1;
}

/* Copies a mapping key with "_" as "-". */
static void norm_key(const char *k, char *out, size_t cap)
{
    snprintf(out, cap, "%s", k ? k : "?");
    for (char *c = out; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* Reads one pair of a mapping: its key node, value node, normalised key and full path. */
static yaml_node_t *pair_key(ld_t *l, const yaml_node_pair_t *p, const char *sec, char *key,
                             size_t kcap, char *full, size_t fcap)
{
    yaml_node_t *k = node(l, p->key);
    norm_key(scalar(k), key, kcap);
    snprintf(full, fcap, "%s.%s", sec, key);
    return k;
}

static int want_map(ld_t *l, yaml_node_t *m, const char *sec, const char *shape)
{
    return m->type == YAML_MAPPING_NODE ? 0 : fail(l, m, sec, "expected a mapping %s", shape);
}

/* A duration field. */
static int rd_dur(ld_t *l, yaml_node_t *v, const char *full, uint64_t *out)
{
    const char *s = scalar(v);
    if (!s || parse_dur(s, out) != 0)
        return fail(l, v, full, "'%s' is not a duration (50ms, 1s, 2m)", s ? s : "(not a value)");
    return 0;
}

static int rd_num(ld_t *l, yaml_node_t *v, const char *full, double lo, double hi, double *out)
{
    const char *s = scalar(v);
    if (parse_num(s, lo, hi, out) != 0)
        return fail(l, v, full, "'%s' is not a number from %g to %g", s ? s : "(not a value)", lo,
                    hi);
    return 0;
}

/* A whole number from lo to hi. */
static int rd_whole(ld_t *l, yaml_node_t *v, const char *full, double lo, double hi, uint32_t *out)
{
    double d = 0;
    if (rd_num(l, v, full, lo, hi, &d) != 0)
        return -1;
    if (d != floor(d))
        return fail(l, v, full, "expected a whole number");
    *out = (uint32_t)d;
    return 0;
}

/* ---- the parts of a rule ----------------------------------------------------------------- */

static int read_retry(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec,
                 "{max-attempts: N, initial-backoff: D, max-backoff: D, backoff-multiplier: X, "
                 "retryable-status: [..]}") != 0)
        return -1;
    r->has_retry = 1;
    int have_max = 0;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "max-attempts")) {
            uint32_t n = 0;
            if (rd_whole(l, v, full, 1, 1000, &n) != 0)
                return -1;
            r->retry.max_attempts = n > MAX_ATTEMPTS_CAP ? MAX_ATTEMPTS_CAP : n;
            have_max = 1;
        } else if (!strcmp(key, "initial-backoff")) {
            if (rd_dur(l, v, full, &r->retry.initial_backoff_ms) != 0)
                return -1;
        } else if (!strcmp(key, "max-backoff")) {
            if (rd_dur(l, v, full, &r->retry.max_backoff_ms) != 0)
                return -1;
        } else if (!strcmp(key, "backoff-multiplier")) {
            if (rd_num(l, v, full, 1, 100, &r->retry.backoff_multiplier) != 0)
                return -1;
        } else if (!strcmp(key, "retryable-status")) {
            r->retry.retryable = 0;
            if (v->type == YAML_SCALAR_NODE) {
                int c = parse_status(scalar(v));
                if (c < 0)
                    return fail(l, v, full, "'%s' is not a gRPC status (UNAVAILABLE, ...)",
                                scalar(v));
                r->retry.retryable = 1u << c;
            } else if (v->type == YAML_SEQUENCE_NODE) {
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top; it++) {
                    yaml_node_t *e = node(l, *it);
                    int c = parse_status(scalar(e));
                    if (c < 0)
                        return fail(l, e, full, "'%s' is not a gRPC status (UNAVAILABLE, ...)",
                                    scalar(e) ? scalar(e) : "(not a value)");
                    r->retry.retryable |= 1u << c;
                }
            } else {
                return fail(l, v, full, "expected a status or a list of statuses");
            }
        } else {
            return fail(l, k_, full,
                        "unknown key (max-attempts, initial-backoff, max-backoff, "
                        "backoff-multiplier, retryable-status)");
        }
    }
    if (!have_max)
        return fail(l, m, sec, "max-attempts is required (2 to %d)", MAX_ATTEMPTS_CAP);
    if (r->retry.max_backoff_ms < r->retry.initial_backoff_ms)
        return fail(l, m, sec, "max-backoff is below initial-backoff");
    return 0;
}

static int read_hedging(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec, "{max-attempts: N, delay: D}") != 0)
        return -1;
    int have_max = 0;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "max-attempts")) {
            uint32_t n = 0;
            if (rd_whole(l, v, full, 1, 1000, &n) != 0)
                return -1;
            r->retry.hedge_max_attempts = n > MAX_ATTEMPTS_CAP ? MAX_ATTEMPTS_CAP : n;
            have_max = 1;
        } else if (!strcmp(key, "delay")) {
            if (rd_dur(l, v, full, &r->retry.hedge_delay_ms) != 0)
                return -1;
        } else {
            return fail(l, k_, full, "unknown key (max-attempts, delay)");
        }
    }
    if (!have_max)
        return fail(l, m, sec, "max-attempts is required (2 to %d)", MAX_ATTEMPTS_CAP);
    return 0;
}

static int read_fault(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec,
                 "{abort: {status: S, percent: P}, delay: {duration: D, percent: P}, "
                 "header: NAME}") != 0)
        return -1;
    pol_fault_t *f = &r->fault;
    r->has_fault = 1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "abort")) {
            if (want_map(l, v, full, "{status: S, percent: P}") != 0)
                return -1;
            f->abort_percent = 100;
            for (yaml_node_pair_t *p_ = v->data.mapping.pairs.start; p_ < v->data.mapping.pairs.top;
                 p_++) {
                char k2[64], f2[192];
                yaml_node_t *k_ = pair_key(l, p_, full, k2, sizeof(k2), f2, sizeof(f2));
                yaml_node_t *v2 = node(l, p_->value);
                if (!strcmp(k2, "status")) {
                    if ((f->abort_status = parse_status(scalar(v2))) < 0)
                        return fail(l, v2, f2, "'%s' is not a gRPC error status (1..16 or a name)",
                                    scalar(v2) ? scalar(v2) : "(not a value)");
                } else if (!strcmp(k2, "percent")) {
                    if (rd_num(l, v2, f2, 0, 100, &f->abort_percent) != 0)
                        return -1;
                } else {
                    return fail(l, k_, f2, "unknown key (status, percent)");
                }
            }
            if (!f->abort_status)
                return fail(l, v, full, "status is required");
        } else if (!strcmp(key, "delay")) {
            if (want_map(l, v, full, "{duration: D, percent: P}") != 0)
                return -1;
            f->delay_percent = 100;
            for (yaml_node_pair_t *p_ = v->data.mapping.pairs.start; p_ < v->data.mapping.pairs.top;
                 p_++) {
                char k2[64], f2[192];
                yaml_node_t *k_ = pair_key(l, p_, full, k2, sizeof(k2), f2, sizeof(f2));
                yaml_node_t *v2 = node(l, p_->value);
                if (!strcmp(k2, "duration")) {
                    if (rd_dur(l, v2, f2, &f->delay_ms) != 0)
                        return -1;
                } else if (!strcmp(k2, "percent")) {
                    if (rd_num(l, v2, f2, 0, 100, &f->delay_percent) != 0)
                        return -1;
                } else {
                    return fail(l, k_, f2, "unknown key (duration, percent)");
                }
            }
            if (!f->delay_ms)
                return fail(l, v, full, "a duration above 0 is required");
        } else if (!strcmp(key, "header")) {
            const char *s = scalar(v);
            if (!s || !*s)
                return fail(l, v, full, "expected a header name");
            for (const char *c = s; *c; c++)
                if (*c <= ' ' || *c >= 127 || (*c >= 'A' && *c <= 'Z') || *c == ':')
                    return fail(l, v, full, "'%s' is not a lower-case header name", s);
            free(f->header);
            f->header = strdup(s);
        } else {
            return fail(l, k_, full, "unknown key (abort, delay, header)");
        }
    }
    if (!f->abort_status && !f->delay_ms)
        return fail(l, m, sec, "nothing to inject: give abort and/or delay");
    return 0;
}

/* The rule's per-service settings, made at the first balancer or outlier key. */
static mesh_svc_policy_t *svc_of(ld_t *l, yaml_node_t *at, const char *full, pol_route_rule_t *r)
{
    if (!r->svc && !(r->svc = mesh_svc_policy_new()))
        fail(l, at, full, "out of memory");
    return r->svc;
}

/* A header name as gRPC metadata carries it: lower case, no ':' or spaces. */
static int header_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *c = s; *c; c++)
        if (*c <= ' ' || *c >= 127 || (*c >= 'A' && *c <= 'Z') || *c == ':')
            return 0;
    return 1;
}

/* One subset: {header: H, value: V, version: X} (or zone: Z instead of version). */
static int read_subset(ld_t *l, yaml_node_t *m, const char *sec, mesh_lb_cfg_t *lb)
{
    if (want_map(l, m, sec, "{header: H, value: V, version: X} (or zone: Z)") != 0)
        return -1;
    const char *hdr = NULL, *val = NULL, *want = NULL;
    mesh_lb_by_t by = MESH_LB_BY_VERSION;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        const char *sv = scalar(v);
        if (!sv || !*sv)
            return fail(l, v, full, "expected a value");
        if (!strcmp(key, "header")) {
            if (!header_ok(sv))
                return fail(l, v, full, "'%s' is not a lower-case header name", sv);
            hdr = sv;
        } else if (!strcmp(key, "value")) {
            val = sv;
        } else if (!strcmp(key, "version") || !strcmp(key, "zone")) {
            if (want)
                return fail(l, k_, full, "give one of version and zone");
            by = key[0] == 'z' ? MESH_LB_BY_ZONE : MESH_LB_BY_VERSION;
            want = sv;
        } else {
            return fail(l, k_, full, "unknown key (header, value, version, zone)");
        }
    }
    if (!hdr || !val || !want)
        return fail(l, m, sec, "header, value and version (or zone) are required");
    mesh_lb_subset_t sub = {
        .header = strdup(hdr), .value = strdup(val), .by = by, .want = strdup(want)};
    if (!sub.header || !sub.value || !sub.want || mesh_lb_cfg_add_subset(lb, &sub) != 0) {
        mesh_lb_subset_destroy(&sub);
        return fail(l, m, sec, "out of memory");
    }
    return 0;
}

static int read_balancer(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec, "{policy: p2c|round-robin, zone-affinity: B, subsets: [..]}") != 0)
        return -1;
    mesh_svc_policy_t *sp = svc_of(l, m, sec, r);
    if (!sp)
        return -1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "policy")) {
            if (!scalar(v) || mesh_lb_policy_parse(scalar(v), &sp->lb.policy) != 0)
                return fail(l, v, full, "'%s' is not p2c or round-robin",
                            scalar(v) ? scalar(v) : "(not a value)");
            sp->has_lb_policy = 1;
        } else if (!strcmp(key, "zone-affinity")) {
            if (parse_bool(scalar(v), &sp->zone_affinity) != 0)
                return fail(l, v, full, "expected true or false");
        } else if (!strcmp(key, "subsets")) {
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(l, v, full, "expected a list of {header: H, value: V, version: X}");
            sp->has_subsets = 1;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                char sec2[224];
                snprintf(sec2, sizeof(sec2), "%s[%d]", full,
                         (int)(it - v->data.sequence.items.start));
                if (read_subset(l, node(l, *it), sec2, &sp->lb) != 0)
                    return -1;
            }
        } else {
            return fail(l, k_, full, "unknown key (policy, zone-affinity, subsets)");
        }
    }
    return 0;
}

/* outlier.failure-percent: {threshold: P, min-volume: N, enabled: B} */
static int read_failure_pct(ld_t *l, yaml_node_t *m, const char *sec, mesh_svc_policy_t *sp)
{
    if (want_map(l, m, sec, "{threshold: P, min-volume: N, enabled: B}") != 0)
        return -1;
    sp->has_failure_pct = 1;
    sp->olw.threshold_pct = MESH_OLW_THRESHOLD_PCT;
    int on = 1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[224];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "threshold")) {
            if (rd_whole(l, v, full, 1, 100, &sp->olw.threshold_pct) != 0)
                return -1;
        } else if (!strcmp(key, "min-volume")) {
            if (rd_whole(l, v, full, 1, 1000000, &sp->olw.min_volume) != 0)
                return -1;
        } else if (!strcmp(key, "enabled")) {
            if (parse_bool(scalar(v), &on) != 0)
                return fail(l, v, full, "expected true or false");
        } else {
            return fail(l, k_, full, "unknown key (threshold, min-volume, enabled)");
        }
    }
    if (!on)
        sp->olw.threshold_pct = 0;
    return 0;
}

/* outlier.success-rate: {stdev-factor: X, min-hosts: N, volume: N, enabled: B} */
static int read_success_rate(ld_t *l, yaml_node_t *m, const char *sec, mesh_svc_policy_t *sp)
{
    if (want_map(l, m, sec, "{stdev-factor: X, min-hosts: N, volume: N, enabled: B}") != 0)
        return -1;
    sp->has_success_rate = 1;
    sp->olsr.enabled = 1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[224];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "stdev-factor")) {
            if (rd_num(l, v, full, 0.1, 10, &sp->olsr.stdev_factor) != 0)
                return -1;
        } else if (!strcmp(key, "min-hosts")) {
            if (rd_whole(l, v, full, 2, 100000, &sp->olsr.min_hosts) != 0)
                return -1;
        } else if (!strcmp(key, "volume")) {
            if (rd_whole(l, v, full, 1, 1000000, &sp->olsr.request_volume) != 0)
                return -1;
        } else if (!strcmp(key, "enabled")) {
            if (parse_bool(scalar(v), &sp->olsr.enabled) != 0)
                return fail(l, v, full, "expected true or false");
        } else {
            return fail(l, k_, full, "unknown key (stdev-factor, min-hosts, volume, enabled)");
        }
    }
    return 0;
}

static int read_outlier(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec,
                 "{consecutive: N, base-ejection: D, max-ejection: D, max-ejection-percent: P, "
                 "enabled: B}") != 0)
        return -1;
    mesh_svc_policy_t *sp = svc_of(l, m, sec, r);
    if (!sp)
        return -1;
    mesh_outlier_cfg_t *o = &sp->outlier;
    sp->has_outlier = 1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        if (!strcmp(key, "consecutive") || !strcmp(key, "max-ejection-percent")) {
            int pct = key[0] == 'm';
            if (rd_whole(l, v, full, 1, pct ? 100 : 1000,
                         pct ? &o->max_ejection_percent : &o->consecutive) != 0)
                return -1;
        } else if (!strcmp(key, "base-ejection") || !strcmp(key, "max-ejection")) {
            uint64_t *ms = key[0] == 'b' ? &o->base_ejection_ms : &o->max_ejection_ms;
            if (rd_dur(l, v, full, ms) != 0)
                return -1;
            if (!*ms)
                return fail(l, v, full, "a duration above 0 is required");
        } else if (!strcmp(key, "enabled")) {
            int on;
            if (parse_bool(scalar(v), &on) != 0)
                return fail(l, v, full, "expected true or false");
            o->disabled = !on;
        } else if (!strcmp(key, "failure-percent")) {
            if (read_failure_pct(l, v, full, sp) != 0)
                return -1;
        } else if (!strcmp(key, "success-rate")) {
            if (read_success_rate(l, v, full, sp) != 0)
                return -1;
        } else {
            return fail(l, k_, full,
                        "unknown key (consecutive, base-ejection, max-ejection, "
                        "max-ejection-percent, enabled, failure-percent, success-rate)");
        }
    }
    if (o->max_ejection_ms &&
        o->max_ejection_ms <
            (o->base_ejection_ms ? o->base_ejection_ms : MESH_OUTLIER_BASE_EJECTION_MS))
        return fail(l, m, sec, "max-ejection is below base-ejection");
    return 0;
}

/* "pkg.Svc/Method", "pkg.Svc/\*" or "*". */
static int pattern_ok(const char *p)
{
    if (!strcmp(p, "*"))
        return 1;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1] || strchr(slash + 1, '/'))
        return 0;
    for (const char *c = p; *c; c++) {
        if (*c <= ' ' || *c >= 127)
            return 0;
        if (*c == '*' && !(c == slash + 1 && !c[1]))
            return 0;
    }
    return 1;
}

static int add_match(ld_t *l, yaml_node_t *e, const char *full, pol_route_rule_t *r)
{
    const char *s = scalar(e);
    if (!s || !pattern_ok(s))
        return fail(l, e, full, "'%s' is not pkg.Service/Method, pkg.Service/* or *",
                    s ? s : "(not a value)");
    char **nv = realloc(r->match, (r->n_match + 1) * sizeof(*nv));
    if (!nv || !(nv[r->n_match] = strdup(s))) {
        if (nv)
            r->match = nv;
        return fail(l, e, full, "out of memory");
    }
    r->match = nv;
    r->n_match++;
    return 0;
}

static void rule_defaults(pol_route_rule_t *r)
{
    r->retry.initial_backoff_ms = 50;
    r->retry.max_backoff_ms = 1000;
    r->retry.backoff_multiplier = 2;
    r->retry.retryable = 1u << MESH_GRPC_UNAVAILABLE;
    r->retry.hedge_delay_ms = 0;
}

void pol_routes_each_tls(const pol_routes_conf_t *c,
                         void (*fn)(void *ud, struct mesh_tls_holder *h, int line), void *ud)
{
    for (size_t i = 0; c && i < c->n_rules; i++) {
        const mesh_svc_policy_t *sp = c->rules[i].svc;
        if (sp && sp->upstream_tls == MESH_SVC_TLS_OWN && sp->tls)
            fn(ud, sp->tls, c->rules[i].line);
    }
}

json_t *pol_routes_upstream_tls_json(const mesh_svc_policy_t *sp)
{
    if (sp && sp->upstream_tls == MESH_SVC_TLS_OFF)
        return json_string("off");
    if (sp && sp->upstream_tls == MESH_SVC_TLS_OWN)
        return json_pack("{s:s,s:s?,s:s?,s:s?}", "ca", sp->tls_ca, "server_name", sp->tls_name,
                         "cert", sp->tls_cert, "key", sp->tls_key);
    return NULL;
}

/* upstream-tls: off, or {ca: F, server-name: N, cert: F, key: F}: the service's own client
 * context, made (and its files checked) here, so a bad file is refused with the rule's line. */
static int read_upstream_tls(ld_t *l, yaml_node_t *v, const char *full, pol_route_rule_t *r)
{
    mesh_svc_policy_t *sp = svc_of(l, v, full, r);
    if (!sp)
        return -1;
    const char *sv = scalar(v);
    int on = 0;
    if (sv) {
        if (parse_bool(sv, &on) != 0 || on)
            return fail(l, v, full,
                        "expected off, or {ca: FILE, server-name: NAME, cert: FILE, key: FILE} "
                        "(TLS with the node's settings needs no rule)");
        sp->upstream_tls = MESH_SVC_TLS_OFF;
        return 0;
    }
    if (want_map(l, v, full, "{ca: FILE, server-name: NAME, cert: FILE, key: FILE}") != 0)
        return -1;
    char **dst[4] = {&sp->tls_ca, &sp->tls_name, &sp->tls_cert, &sp->tls_key};
    static const char *const names[4] = {"ca", "server-name", "cert", "key"};
    for (yaml_node_pair_t *p_ = v->data.mapping.pairs.start; p_ < v->data.mapping.pairs.top; p_++) {
        char key[64], f2[256];
        yaml_node_t *k_ = pair_key(l, p_, full, key, sizeof(key), f2, sizeof(f2));
        yaml_node_t *v2 = node(l, p_->value);
        int i = 0;
        while (i < 4 && strcmp(key, names[i]) != 0)
            i++;
        if (i == 4)
            return fail(l, k_, f2, "unknown key (ca, server-name, cert, key)");
        const char *val = scalar(v2);
        if (!val || !*val)
            return fail(l, v2, f2, "expected a %s", i == 1 ? "name" : "file name");
        if (*dst[i])
            return fail(l, k_, f2, "given twice");
        if (!(*dst[i] = strdup(val)))
            return fail(l, v2, f2, "out of memory");
    }
    if (!sp->tls_ca)
        return fail(l, v, full, "ca is required (the CA that verifies the instances)");
    if (!sp->tls_cert != !sp->tls_key)
        return fail(l, v, full, "cert and key go together");
    for (int i = 0; i < 4; i++) { /* (a missing file: say so, before OpenSSL's reasons) */
        FILE *f = i == 1 || !*dst[i] ? NULL : fopen(*dst[i], "r");
        if (i != 1 && *dst[i] && !f)
            return fail(l, v, full, "%s %s: cannot read: %s", names[i], *dst[i], strerror(errno));
        if (f)
            fclose(f);
    }
    mesh_tls_conf_t c = {
        .cert_file = sp->tls_cert, .key_file = sp->tls_key, .ca_file = sp->tls_ca, .alpn = "h2"};
    char err[768];
    sp->tls = mesh_tls_holder_new(&c, 0, err, sizeof(err));
    if (!sp->tls)
        return fail(l, v, full, "%s", err);
    sp->upstream_tls = MESH_SVC_TLS_OWN;
    return 0;
}

/* The keys of a rule. Balancing keys join this list (see route_conf.h). */
static int read_rule(ld_t *l, yaml_node_t *m, const char *sec, pol_route_rule_t *r)
{
    if (want_map(l, m, sec, "(match: ..., retry: ..., ...)") != 0)
        return -1;
    r->line = (int)m->start_mark.line + 1;
    rule_defaults(r);
    static const char *const keys[] = {
        "match", "idempotent", "retry",   "per-try-timeout", "hedging",
        "fault", "balancer",   "outlier", "connect-timeout", "upstream-tls"};
    unsigned seen = 0;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, sec, key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        int rc = 0;
        for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (!strcmp(key, keys[i])) {
                if (seen & (1u << i))
                    return fail(l, k_, full, "given twice in one rule");
                seen |= 1u << i;
            }
        if (!strcmp(key, "match")) {
            if (v->type == YAML_SEQUENCE_NODE) {
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     rc == 0 && it < v->data.sequence.items.top; it++)
                    rc = add_match(l, node(l, *it), full, r);
            } else {
                rc = add_match(l, v, full, r);
            }
        } else if (!strcmp(key, "idempotent")) {
            if (parse_bool(scalar(v), &r->retry.idempotent) != 0)
                rc = fail(l, v, full, "expected true or false");
        } else if (!strcmp(key, "retry")) {
            rc = read_retry(l, v, full, r);
        } else if (!strcmp(key, "per-try-timeout")) {
            rc = rd_dur(l, v, full, &r->retry.per_try_timeout_ms);
        } else if (!strcmp(key, "hedging")) {
            rc = read_hedging(l, v, full, r);
        } else if (!strcmp(key, "fault")) {
            rc = read_fault(l, v, full, r);
        } else if (!strcmp(key, "balancer")) {
            rc = read_balancer(l, v, full, r);
        } else if (!strcmp(key, "outlier")) {
            rc = read_outlier(l, v, full, r);
        } else if (!strcmp(key, "connect-timeout")) {
            mesh_svc_policy_t *sp = svc_of(l, v, full, r);
            rc = sp ? rd_dur(l, v, full, &sp->connect_timeout_ms) : -1;
            if (rc == 0 && (sp->connect_timeout_ms < 1 || sp->connect_timeout_ms > 600000))
                rc = fail(l, v, full, "a connect timeout from 1ms to 10m");
        } else if (!strcmp(key, "upstream-tls")) {
            rc = read_upstream_tls(l, v, full, r);
        } else {
            rc = fail(l, k_, full,
                      "unknown key (match, idempotent, retry, per-try-timeout, hedging, fault, "
                      "balancer, outlier, connect-timeout, upstream-tls)");
        }
        if (rc != 0)
            return -1;
    }
    if (!r->n_match)
        return fail(l, m, sec, "match is required (pkg.Service/Method, pkg.Service/* or *)");
    if (r->retry.hedge_max_attempts > 1 && !r->retry.idempotent)
        return fail(l, m, sec, "hedging needs idempotent: true (a hedged call runs twice)");
    if (r->retry.hedge_max_attempts > 1 && r->has_retry)
        return fail(l, m, sec, "retry and hedging exclude each other (gRPC service config)");
    if (r->svc)
        for (size_t i = 0; i < r->n_match; i++) {
            const char *p = r->match[i];
            size_t n = strlen(p);
            if (!(n >= 1 && p[n - 1] == '*'))
                return fail(
                    l, m, sec,
                    "balancer, outlier, connect-timeout and upstream-tls are per service: match "
                    "'%s' is a method (use pkg.Service/* or *)",
                    p);
        }
    if (!r->has_retry)
        r->retry.max_attempts = 1;
    return 0;
}

static void rule_free(pol_route_rule_t *r)
{
    for (size_t i = 0; i < r->n_match; i++)
        free(r->match[i]);
    free(r->match);
    free(r->fault.header);
    mesh_svc_policy_unref(r->svc);
}

static int read_routes(ld_t *l, yaml_node_t *m, pol_routes_conf_t *c)
{
    if (m->type == YAML_SCALAR_NODE && !*scalar(m))
        return 0; /* `routes:` with nothing under it */
    if (want_map(l, m, "", "(retry-budget: ..., rules: [...])") != 0)
        return -1;
    for (yaml_node_pair_t *p_ = m->data.mapping.pairs.start; p_ < m->data.mapping.pairs.top; p_++) {
        char key[64], full[192];
        yaml_node_t *k_ = pair_key(l, p_, "", key, sizeof(key), full, sizeof(full));
        yaml_node_t *v = node(l, p_->value);
        const char *fk = full + 1; /* (no leading ".") */
        if (!strcmp(key, "retry-budget")) {
            if (want_map(l, v, fk, "{ratio: X, min-per-second: N}") != 0)
                return -1;
            for (yaml_node_pair_t *p_ = v->data.mapping.pairs.start; p_ < v->data.mapping.pairs.top;
                 p_++) {
                char k2[64], f2[192];
                yaml_node_t *k_ = pair_key(l, p_, fk, k2, sizeof(k2), f2, sizeof(f2));
                yaml_node_t *v2 = node(l, p_->value);
                if (!strcmp(k2, "ratio")) {
                    if (rd_num(l, v2, f2, 0, 100, &c->budget.ratio) != 0)
                        return -1;
                } else if (!strcmp(k2, "min-per-second")) {
                    if (rd_num(l, v2, f2, 0, 1e6, &c->budget.min_per_s) != 0)
                        return -1;
                } else {
                    return fail(l, k_, f2, "unknown key (ratio, min-per-second)");
                }
            }
        } else if (!strcmp(key, "rules")) {
            if (c->rules)
                return fail(l, k_, fk, "given twice (one list of rules)");
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(l, v, fk, "expected a list of rules");
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            c->rules = calloc(n ? n : 1, sizeof(*c->rules));
            if (!c->rules)
                return fail(l, v, fk, "out of memory");
            for (size_t i = 0; i < n; i++) {
                char sec[48];
                snprintf(sec, sizeof(sec), "rules[%zu]", i);
                c->n_rules = i + 1;
                if (read_rule(l, node(l, v->data.sequence.items.start[i]), sec, &c->rules[i]) != 0)
                    return -1;
                c->has_svc |= c->rules[i].svc != NULL;
                c->has_fault |= c->rules[i].has_fault;
            }
        } else {
            return fail(l, k_, fk, "unknown key (retry-budget, rules)");
        }
    }
    return 0;
}

pol_routes_conf_t *pol_routes_default(void)
{
    pol_routes_conf_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->budget.ratio = 0.2;
    c->budget.min_per_s = 10;
    return c;
}

void pol_routes_free(pol_routes_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_rules; i++)
        rule_free(&c->rules[i]);
    free(c->rules);
    free(c->file);
    free(c);
}

pol_routes_conf_t *pol_routes_parse(const char *name, const char *yaml, size_t len, char *err,
                                    size_t errlen)
{
    pol_routes_conf_t *c = pol_routes_default();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ld_t l = {.name = name, .err = err, .errlen = errlen};
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    int rc = 0;
    if (!yaml_parser_load(&p, &l.doc)) {
        snprintf(err, errlen, "%s:%zu: %s", name, p.problem_mark.line + 1,
                 p.problem ? p.problem : "YAML error");
        yaml_parser_delete(&p);
        pol_routes_free(c);
        return NULL;
    }
    yaml_parser_delete(&p);
    yaml_node_t *root = yaml_document_get_root_node(&l.doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
             pr < root->data.mapping.pairs.top; pr++) {
            const char *k = scalar(node(&l, pr->key));
            if (k && !strcmp(k, "routes")) {
                c->present = 1;
                rc = read_routes(&l, node(&l, pr->value), c);
                break;
            }
        }
    }
    yaml_document_delete(&l.doc);
    if (rc != 0) {
        pol_routes_free(c);
        return NULL;
    }
    c->file = strdup(name);
    return c;
}

pol_routes_conf_t *pol_routes_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = mesh_file_read(path, 16u << 20, 0, &len, err, errlen);
    if (!buf)
        return NULL;
    pol_routes_conf_t *c = pol_routes_parse(path, buf, len, err, errlen);
    free(buf);
    return c;
}

/* How specifically pattern matches service/method: 3 exact, 2 service wildcard, 1 "*", 0 no.
 * m NULL: the service as a whole (exact patterns never match). */
static int score(const char *pat, const char *svc, size_t sl, const char *m, size_t ml)
{
    if (pat[0] == '*' && !pat[1])
        return 1;
    if (strncmp(pat, svc, sl) != 0 || pat[sl] != '/')
        return 0;
    const char *pm = pat + sl + 1;
    if (pm[0] == '*' && !pm[1])
        return 2;
    return m && strlen(pm) == ml && memcmp(pm, m, ml) == 0 ? 3 : 0;
}

const pol_route_rule_t *pol_routes_match_service(const pol_routes_conf_t *c, const char *service,
                                                 size_t service_len)
{
    return pol_routes_match(c, service, service_len, NULL, 0);
}

const pol_route_rule_t *pol_routes_match(const pol_routes_conf_t *c, const char *service,
                                         size_t service_len, const char *method, size_t method_len)
{
    const pol_route_rule_t *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < c->n_rules; i++)
        for (size_t j = 0; j < c->rules[i].n_match; j++) {
            int s = score(c->rules[i].match[j], service, service_len, method, method_len);
            if (s > best_score) {
                best_score = s;
                best = &c->rules[i];
            }
        }
    return best;
}

/* ---- the admin view ----------------------------------------------------------------------- */

static json_t *statuses(uint32_t bits)
{
    json_t *a = json_array();
    for (int s = 0; s < 32; s++)
        if (bits & (1u << s))
            json_array_append_new(a, json_string(mesh_grpc_status_name(s)));
    return a;
}

static json_t *describe_rule(const pol_route_rule_t *r)
{
    json_t *o = json_object();
    json_t *m = json_array();
    for (size_t i = 0; i < r->n_match; i++)
        json_array_append_new(m, json_string(r->match[i]));
    json_object_set_new(o, "match", m);
    json_object_set_new(o, "line", json_integer(r->line));
    json_object_set_new(o, "idempotent", json_boolean(r->retry.idempotent));
    if (r->has_retry)
        json_object_set_new(o, "retry",
                            json_pack("{s:i,s:I,s:I,s:f,s:o}", "max_attempts",
                                      (int)r->retry.max_attempts, "initial_backoff_ms",
                                      (json_int_t)r->retry.initial_backoff_ms, "max_backoff_ms",
                                      (json_int_t)r->retry.max_backoff_ms, "backoff_multiplier",
                                      r->retry.backoff_multiplier, "retryable_status",
                                      statuses(r->retry.retryable)));
    if (r->retry.per_try_timeout_ms)
        json_object_set_new(o, "per_try_timeout_ms",
                            json_integer((json_int_t)r->retry.per_try_timeout_ms));
    if (r->retry.hedge_max_attempts > 1)
        json_object_set_new(o, "hedging",
                            json_pack("{s:i,s:I}", "max_attempts", (int)r->retry.hedge_max_attempts,
                                      "delay_ms", (json_int_t)r->retry.hedge_delay_ms));
    if (r->has_fault) {
        const pol_fault_t *f = &r->fault;
        json_t *fo = json_object();
        if (f->abort_status)
            json_object_set_new(fo, "abort",
                                json_pack("{s:s,s:f}", "status",
                                          mesh_grpc_status_name(f->abort_status), "percent",
                                          f->abort_percent));
        if (f->delay_ms)
            json_object_set_new(fo, "delay",
                                json_pack("{s:I,s:f}", "duration_ms", (json_int_t)f->delay_ms,
                                          "percent", f->delay_percent));
        if (f->header)
            json_object_set_new(fo, "header", json_string(f->header));
        json_object_set_new(o, "fault", fo);
    }
    const mesh_svc_policy_t *sp = r->svc;
    if (sp && (sp->has_lb_policy || sp->has_subsets || sp->zone_affinity >= 0)) {
        json_t *b = json_object();
        if (sp->has_lb_policy)
            json_object_set_new(b, "policy", json_string(mesh_lb_policy_name(sp->lb.policy)));
        if (sp->zone_affinity >= 0)
            json_object_set_new(b, "zone_affinity", json_boolean(sp->zone_affinity));
        if (sp->has_subsets) {
            json_t *a = json_array();
            for (size_t i = 0; i < sp->lb.n_subsets; i++) {
                const mesh_lb_subset_t *u = &sp->lb.subsets[i];
                json_array_append_new(
                    a, json_pack("{s:s,s:s,s:s}", "header", u->header, "value", u->value,
                                 u->by == MESH_LB_BY_ZONE ? "zone" : "version", u->want));
            }
            json_object_set_new(b, "subsets", a);
        }
        json_object_set_new(o, "balancer", b);
    }
    if (sp && sp->connect_timeout_ms)
        json_object_set_new(o, "connect_timeout_ms",
                            json_integer((json_int_t)sp->connect_timeout_ms));
    json_t *ut = pol_routes_upstream_tls_json(sp);
    if (ut)
        json_object_set_new(o, "upstream_tls", ut);
    if (sp && sp->has_outlier) {
        mesh_outlier_cfg_t oc = sp->outlier;
        mesh_outlier_cfg_fix(&oc);
        json_t *j = json_pack(
            "{s:b,s:i,s:I,s:I,s:i}", "enabled", !oc.disabled, "consecutive", (int)oc.consecutive,
            "base_ejection_ms", (json_int_t)oc.base_ejection_ms, "max_ejection_ms",
            (json_int_t)oc.max_ejection_ms, "max_ejection_percent", (int)oc.max_ejection_percent);
        mesh_olw_cfg_t fp = sp->olw;
        mesh_olsr_cfg_t sr = sp->olsr;
        mesh_olw_cfg_fix(&fp);
        mesh_olsr_cfg_fix(&sr);
        pol_routes_detectors_json(j, sp->has_failure_pct ? &fp : NULL,
                                  sp->has_success_rate ? &sr : NULL);
        json_object_set_new(o, "outlier", j);
    }
    return o;
}

void pol_routes_detectors_json(json_t *o, const mesh_olw_cfg_t *fp, const mesh_olsr_cfg_t *sr)
{
    if (fp)
        json_object_set_new(o, "failure_percent",
                            json_pack("{s:b,s:i,s:i}", "enabled", fp->threshold_pct > 0,
                                      "threshold", (int)fp->threshold_pct, "min_volume",
                                      (int)fp->min_volume));
    if (sr)
        json_object_set_new(o, "success_rate",
                            json_pack("{s:b,s:f,s:i,s:i}", "enabled", sr->enabled, "stdev_factor",
                                      sr->stdev_factor, "min_hosts", (int)sr->min_hosts, "volume",
                                      (int)sr->request_volume));
}

json_t *pol_routes_describe(const pol_routes_conf_t *c)
{
    json_t *rules = json_array();
    for (size_t i = 0; i < c->n_rules; i++)
        json_array_append_new(rules, describe_rule(&c->rules[i]));
    return json_pack("{s:b,s:s?,s:{s:f,s:f,s:i},s:o}", "present", c->present, "file", c->file,
                     "retry_budget", "ratio", c->budget.ratio, "min_per_second",
                     c->budget.min_per_s, "window_s", MESH_RETRY_BUDGET_SLOTS, "rules", rules);
}
