/*
 * audit/tail_format.h: an audit record as one line for people (`meshd audit tail`).
 *
 *   TIME                        TYPE                OUTCOME  SERVICE        METHOD    PEER ...
 *   2026-12-01T16:40:00.123456Z breaker_open        failure  shop.v1.Cart   -         -    ...
 *
 * Columns: time, type, outcome, service, method, peer (address, and the identity in
 * parentheses), reason; then, in brackets, what else the record says (node, instance, source,
 * member, ready, dropped, status, trace_id, truncated). Columns have fixed widths so that lines
 * of a stream line up; a longer value is shown whole and pushes the rest of its line. Missing
 * and null values are "-", empty strings "". Whatever the record holds, the line is safe for a
 * terminal: control characters (C0, DEL, C1) are shown as \n, \t, \xNN or \u0085, never sent as
 * they are.
 */
#ifndef AUDIT_TAIL_FORMAT_H
#define AUDIT_TAIL_FORMAT_H

#include <jansson.h>
#include <stdio.h>

/** Prints the column titles and a newline. */
void audit_tail_print_header(FILE *out);

/** Prints rec (a parsed record; any JSON object is accepted) as one line and a newline. */
void audit_tail_print(FILE *out, const json_t *rec);

#endif
