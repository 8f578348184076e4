/*
 * node/outlier_metrics.c: the outlier-ejection families of GET /metrics; see
 * node/outlier_metrics.h.
 */
#include "node/outlier_metrics.h"

static void one_ejected(void *ud, const char *addr, uint64_t until_ms)
{
    (void)until_ms;
    prom_label_t l[] = {{"upstream", addr}};
    prom_sample_u64(ud, "meshd_outlier_ejected", l, 1, 1);
}

void node_outlier_metrics_write(mesh_outlier_board_t *b, prom_t *p)
{
    if (!b)
        return;
    mesh_outlier_board_stats_t st;
    mesh_outlier_board_stats(b, &st);
    prom_one(p, "meshd_outlier_ejections_total", PROM_COUNTER,
             "Upstream instances taken out of balancing by outlier detection (first ejections "
             "and failed probes), every worker together.",
             (double)st.ejections);
    prom_one(p, "meshd_outlier_returns_total", PROM_COUNTER,
             "Ejected upstream instances whose probe call succeeded (back in full traffic).",
             (double)st.returns);
    prom_one(p, "meshd_outlier_held_back_total", PROM_COUNTER,
             "Ejections the max ejection percent forbade (once per streak of failures).",
             (double)st.held_back);
    prom_one(p, "meshd_outlier_panic_picks_total", PROM_COUNTER,
             "Calls sent to an ejected instance because no other instance of the service could "
             "take them (every other one ejected, backing off or gone).",
             (double)st.panic);
    prom_one(p, "meshd_outlier_ejected_instances", PROM_GAUGE, "Upstream instances ejected now.",
             (double)st.ejected);
    prom_family(p, "meshd_outlier_ejected", PROM_GAUGE,
                "1 for each upstream instance ejected now (by address).");
    mesh_outlier_board_each_ejected(b, one_ejected, p);
}
