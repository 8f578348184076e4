/*
 * gateway/path_template.h: google.api.http path templates, parsed once and matched against
 * request paths without allocating.
 *
 * Grammar (googleapis google/api/http.proto):
 *
 *     Template  = "/" [ Segments ] [ Verb ] ;
 *     Segments  = Segment { "/" Segment } ;
 *     Segment   = "*" | "**" | LITERAL | Variable ;
 *     Variable  = "{" FieldPath [ "=" Segments ] "}" ;   no variable inside a variable
 *     FieldPath = IDENT { "." IDENT } ;                 IDENT = [A-Za-z_][A-Za-z0-9_]*
 *     Verb      = ":" LITERAL ;
 *
 * `*` matches one non-empty segment, `**` zero or more segments and must be the last segment
 * (a verb may follow); `{var}` is `{var=*}`. A LITERAL is one or more URI pchars other than
 * ':' (unreserved, sub-delims except '*', '@', %XX), compared with the percent-decoded request
 * segment. "/" alone is the root path.
 *
 * Matching splits the request path at raw '/' only, so an encoded "%2F" never separates
 * segments. Captures point into the request path, still percent-encoded;
 * gw_capture_decode() decodes them into a caller buffer (rules on gw_unescape_t).
 */
#ifndef GW_PATH_TEMPLATE_H
#define GW_PATH_TEMPLATE_H

#include <stddef.h>
#include <sys/types.h>

/** Most variables one template may bind (more is a parse error). */
#define GW_MAX_CAPTURES 16

/** What one template segment matches. */
typedef enum {
    GW_SEG_LITERAL = 0, /**< exactly its text (after percent-decoding the request segment) */
    GW_SEG_STAR = 1,    /**< `*`: any one non-empty segment */
    GW_SEG_DSTAR = 2,   /**< `**`: zero or more segments, last */
} gw_seg_kind_t;

/** One segment; lit is the decoded literal (NUL-terminated), NULL for wildcards. */
typedef struct {
    gw_seg_kind_t kind;
    char *lit;
    size_t lit_len;
} gw_seg_t;

/** One variable: the field path it binds and the segments [first, last) it covers. */
typedef struct {
    char *field;
    size_t first, last;
    /** 1 when it can cover more than one segment (`{v=**}`, `{v=a/b}`): Google's "{+var}". */
    int multi;
} gw_var_t;

/** A parsed template. */
typedef struct {
    char *text; /**< the template as written */
    gw_seg_t *segs;
    size_t n_segs;
    gw_var_t *vars;
    size_t n_vars;
    char *verb; /**< decoded verb without the ':', or NULL */
    size_t verb_len;
} gw_path_template_t;

/** Where and why a template failed to parse (pos is a byte offset into the template). */
typedef struct {
    size_t pos;
    char msg[160];
} gw_tmpl_error_t;

/** Parses template text of len bytes into *t (zeroed first). Returns 0, or -1 with *err set
 * and *t empty. Allocates. */
int gw_path_template_parse(const char *text, size_t len, gw_path_template_t *t,
                           gw_tmpl_error_t *err);

/** Frees what the template owns and zeroes it. */
void gw_path_template_destroy(gw_path_template_t *t);

/** One variable's value in a request path: still percent-encoded, pointing into the path. */
typedef struct {
    const char *field; /**< the variable's field path (owned by the template) */
    const char *value;
    size_t len;
    int multi; /**< as gw_var_t.multi */
} gw_capture_t;

/** Matches a request path (no query string) of len bytes. Returns 1 and fills caps[0..n_vars)
 * (caps may be NULL when t has no variables) on a match, 0 otherwise. Allocates nothing. */
int gw_path_template_match(const gw_path_template_t *t, const char *path, size_t len,
                           gw_capture_t *caps);

/** Precedence of two templates: < 0 when a should be tried before b. Segment by segment, a
 * literal beats `*` beats `**`, and a template that ended beats one continuing with `**`; on
 * equal shapes a template with a verb goes first; otherwise literal text orders them (no
 * preference). 0 means the two match exactly the same requests (a conflict). */
int gw_path_template_compare(const gw_path_template_t *a, const gw_path_template_t *b);

/** How percent-escapes in a capture are decoded. */
typedef enum {
    /** Google's default (and Envoy's): a single-segment variable decodes everything, "%2F"
     * included (it becomes part of the value: it never split the path); a multi-segment
     * variable decodes everything except RFC 6570 reserved characters
     * (":/?#[]@!$&'()*+,;="), which stay as written. */
    GW_UNESCAPE_DEFAULT = 0,
    /** Like Http.fully_decode_reserved_expansion: as DEFAULT, but a multi-segment variable
     * decodes everything except "%2F"/"%2f" (which would be confused with a separator). */
    GW_UNESCAPE_ALL_EXCEPT_SLASH = 1,
    /** Everything is decoded, in every variable. */
    GW_UNESCAPE_ALL = 2,
} gw_unescape_t;

/** Percent-decodes a capture into out (cap bytes; c->len + 1 always suffices), NUL-terminated.
 * Returns the decoded length, or -1 when an escape is malformed ("%" not followed by two hex
 * digits) or out is too small. Allocates nothing. */
ssize_t gw_capture_decode(const gw_capture_t *c, gw_unescape_t mode, char *out, size_t cap);

/** Decodes %XX escapes of src (and '+' as a space when plus_is_space) into out (cap bytes,
 * len + 1 suffices), NUL-terminated. Returns the length, or -1 on a malformed escape or when
 * out is too small. */
ssize_t gw_percent_decode(const char *src, size_t len, int plus_is_space, char *out, size_t cap);

/** 1 when s[0..len) is a field path: IDENT { "." IDENT }. */
int gw_is_field_path(const char *s, size_t len);

#endif
