/*
 * policy/fault.c: fault injection's per-call decision (see policy/fault.h).
 */
#include "policy/fault.h"

#include <stddef.h>

/* Whether a draw r hits percent (0..100), in millionths. */
static int hits(double percent, uint64_t r)
{
    return (double)(r % 1000000u) < percent * 10000.0;
}

void pol_fault_decide(const pol_fault_t *f, int header_present, uint64_t r_abort, uint64_t r_delay,
                      int *abort_status, uint64_t *delay_ms)
{
    *abort_status = 0;
    *delay_ms = 0;
    if (f->header && !header_present)
        return;
    if (f->abort_status && hits(f->abort_percent, r_abort)) {
        *abort_status = f->abort_status;
        return;
    }
    if (f->delay_ms && hits(f->delay_percent, r_delay))
        *delay_ms = f->delay_ms;
}
