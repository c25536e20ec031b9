/* INCRBYFLOAT in Redis is computed in C `long double` (80-bit on x86-64):
 * strtold to parse, add, "%.17Lf" with trailing zeros removed to print.
 * Rust has no long double, so kvick does exactly that here to give the same
 * digits (0.1 + 0.2 is "0.3" in Redis, not "0.30000000000000004"). */
#include <errno.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LD_CHARS 5120

/* Redis' string2ld: the whole string must parse, no leading space, no NaN,
 * no overflow to infinity. Returns 1 on success. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[MAX_LD_CHARS];
    char *end;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long double v = strtold(buf, &end);
    /* The whole value must be the number: "1.5\0" is not (as Redis' string2ld). */
    if (isspace((unsigned char)buf[0]) || end != buf + len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Adds `incr` to `cur` and prints the result as Redis does.
 * Returns the length written to `out`, or -1 if `cur` is not a float,
 * -2 if `incr` is not, -3 if the result is NaN or infinite, -4 if too long. */
long kvick_ld_add(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                  char *out, size_t out_cap) {
    long double a = 0, b;
    if (cur && !parse_ld(cur, cur_len, &a)) return -1;
    if (!parse_ld(incr, incr_len, &b)) return -2;
    long double v = a + b;
    if (isnan(v) || isinf(v)) return -3;
    int len = snprintf(out, out_cap, "%.17Lf", v);
    if (len < 0 || (size_t)len >= out_cap) return -4;
    if (strchr(out, '.') != NULL) {
        while (out[len - 1] == '0') len--;
        if (out[len - 1] == '.') len--;
    }
    if (len == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        len = 1;
    }
    return len;
}
