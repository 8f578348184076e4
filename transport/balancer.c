/*
 * transport/balancer.c: the endpoint connect backoff of the proxy's balancer (round robin
 * itself is inline in transport/balancer.h). Sans-I/O: the time is an argument.
 */
#include "transport/balancer.h"

void mesh_bal_backoff_cfg_fix(mesh_bal_backoff_cfg_t *cfg)
{
    if (!cfg->initial_ms)
        cfg->initial_ms = MESH_BAL_BACKOFF_INITIAL_MS;
    if (!cfg->max_ms)
        cfg->max_ms = MESH_BAL_BACKOFF_MAX_MS;
    if (cfg->max_ms < cfg->initial_ms)
        cfg->max_ms = cfg->initial_ms;
}

void mesh_bal_backoff_init(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg)
{
    b->down_until_ms = 0;
    b->next_ms = cfg->initial_ms;
}

uint64_t mesh_bal_backoff_failed(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg,
                                 uint64_t now_ms)
{
    uint64_t out = b->next_ms;
    b->down_until_ms = now_ms + out;
    b->next_ms = out > cfg->max_ms / 2 ? cfg->max_ms : out * 2;
    return out;
}

void mesh_bal_backoff_connected(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg)
{
    b->next_ms = cfg->initial_ms;
}

void mesh_bal_backoff_reset(mesh_bal_backoff_t *b, const mesh_bal_backoff_cfg_t *cfg)
{
    b->down_until_ms = 0;
    b->next_ms = cfg->initial_ms;
}
