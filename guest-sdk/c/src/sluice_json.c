/*
 * JSON for aggregators: a validator, readers of one field (raw text,
 * number, integer, string), string quoting, and the number conversions
 * behind them and behind sluice_fmt's %g: decimal text to the nearest
 * double (correctly rounded, as strtod does) and a double to the shortest
 * text that reads back as the same double.
 *
 * wasi-libc's strtod and snprintf would do the conversions, but they pull
 * in its stdio machinery, which imports WASI, which the host refuses. The
 * conversions here are exact: a fast path for short decimals (Clinger's),
 * else big-integer comparisons against the halfway points between doubles.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice_internal.h"

/* ------------------------------------------------------------ big integers */

/* Enough for every comparison below: the largest operand is about 3,000
 * bits (800 decimal digits against 2^1075, or 5^1074 × 2^53). */
#define BN_WORDS 160

typedef struct bn {
    uint32_t w[BN_WORDS]; /* little-endian words */
    size_t n;             /* words in use; w[n-1] != 0 */
} bn;

static void bn_set(bn *b, uint64_t v) {
    b->n = 0;
    while (v) {
        b->w[b->n++] = (uint32_t)v;
        v >>= 32;
    }
}

static void bn_push(bn *b, uint32_t w) {
    if (b->n == BN_WORDS) __builtin_trap(); /* cannot happen: sizes are bounded above */
    b->w[b->n++] = w;
}

static void bn_mul_add(bn *b, uint32_t m, uint32_t a) {
    uint64_t carry = a;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->w[i] * m + carry;
        b->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) bn_push(b, (uint32_t)carry);
}

static void bn_mul_pow5(bn *b, unsigned e) {
    static const uint32_t p5[13] = {1,       5,       25,       125,       625,
                                    3125,    15625,   78125,    390625,    1953125,
                                    9765625, 48828125, 244140625};
    for (; e >= 13; e -= 13) bn_mul_add(b, 1220703125u, 0); /* 5^13 */
    if (e) bn_mul_add(b, p5[e], 0);
}

static void bn_shl(bn *b, unsigned bits) {
    if (b->n == 0 || bits == 0) return;
    size_t words = bits / 32;
    unsigned s = bits % 32;
    if (b->n + words + 1 > BN_WORDS) __builtin_trap();
    uint32_t top = s ? b->w[b->n - 1] >> (32 - s) : 0;
    for (size_t i = b->n; i-- > 0;) {
        uint32_t v = b->w[i] << s;
        if (s && i) v |= b->w[i - 1] >> (32 - s);
        b->w[i + words] = v;
    }
    memset(b->w, 0, words * sizeof b->w[0]);
    b->n += words;
    if (top) b->w[b->n++] = top;
}

static int bn_cmp(const bn *a, const bn *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (size_t i = a->n; i-- > 0;)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

/* b /= d; returns the remainder. */
static uint32_t bn_div_small(bn *b, uint32_t d) {
    uint64_t rem = 0;
    for (size_t i = b->n; i-- > 0;) {
        uint64_t cur = rem << 32 | b->w[i];
        b->w[i] = (uint32_t)(cur / d);
        rem = cur % d;
    }
    while (b->n && b->w[b->n - 1] == 0) b->n--;
    return (uint32_t)rem;
}

/* ------------------------------------------------------------ decimals */

/* Digits kept from a longer number; the rest only count as "something
 * more". Every halfway point between two doubles has fewer significant
 * digits (at most 767), so the rounding comes out the same. */
#define MAX_DIGITS 800

/* The value d[0] d[1] ... d[nd-1] × 10^exp (digits 0-9, no leading or
 * trailing zeros; nd == 0 is zero). */
typedef struct decimal {
    uint8_t d[MAX_DIGITS + 1];
    int nd;
    int exp;
} decimal;

static void decimal_trim(decimal *dec) {
    while (dec->nd > 0 && dec->d[dec->nd - 1] == 0) {
        dec->nd--;
        dec->exp++;
    }
    if (dec->nd == 0) dec->exp = 0;
}

/* Reads the number at s[0..len), which has JSON's syntax (checked by the
 * caller): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool decimal_read(const uint8_t *s, size_t len, decimal *dec) {
    size_t i = 0;
    bool neg = false, more = false, point = false;
    long exp = 0;
    dec->nd = 0;
    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    for (; i < len; i++) {
        uint8_t c = s[i];
        if (c == '.') {
            point = true;
            continue;
        }
        if (c < '0' || c > '9') break;
        if (point) exp--;
        if (c == '0' && dec->nd == 0) continue;
        if (dec->nd < MAX_DIGITS) {
            dec->d[dec->nd++] = (uint8_t)(c - '0');
        } else {
            exp++; /* a digit dropped */
            more |= c != '0';
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        long e = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (e < 100000) e = e * 10 + (s[i] - '0');
        exp += eneg ? -e : e;
    }
    if (more) {
        /* Stands for the dropped digits: above the kept ones, below the
         * next number of MAX_DIGITS digits. */
        dec->d[dec->nd++] = 1;
        exp--;
    }
    if (exp > 100000) exp = 100000;
    if (exp < -100000) exp = -100000;
    dec->exp = (int)exp;
    decimal_trim(dec);
    return neg;
}

/* ------------------------------------------------------------ decimal -> double */

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The digits as a big integer. */
static void decimal_bn(const decimal *dec, bn *b) {
    bn_set(b, 0);
    int i = 0;
    while (i < dec->nd) {
        uint32_t chunk = 0, scale = 1;
        for (int k = 0; k < 9 && i < dec->nd; k++, i++) {
            chunk = chunk * 10 + dec->d[i];
            scale *= 10;
        }
        bn_mul_add(b, scale, chunk);
    }
}

/* Compares the decimal (as the big integer `digits` × 10^exp) with
 * n × 2^q. */
static int compare(const bn *digits, int exp, uint64_t n, int q) {
    bn l = *digits, r;
    bn_set(&r, n);
    /* 10^exp = 5^exp × 2^exp: the powers of two become shifts. */
    long shift_l = 0, shift_r = 0;
    if (exp >= 0) {
        bn_mul_pow5(&l, (unsigned)exp);
        shift_l += exp;
    } else {
        bn_mul_pow5(&r, (unsigned)-exp);
        shift_r -= exp;
    }
    if (q >= 0) {
        shift_r += q;
    } else {
        shift_l -= q;
    }
    long common = shift_l < shift_r ? shift_l : shift_r;
    bn_shl(&l, (unsigned)(shift_l - common));
    bn_shl(&r, (unsigned)(shift_r - common));
    return bn_cmp(&l, &r);
}

/* The nearest double to a positive decimal, ties to even. */
static double decimal_to_double(const decimal *dec) {
    if (dec->nd == 0) return 0.0;
    long top = (long)dec->nd + dec->exp; /* 10^(top-1) <= value < 10^top */
    if (top > 310) return __builtin_inf();
    if (top < -326) return 0.0;
    if (dec->nd <= 15) {
        /* Clinger's fast path: both factors are exact doubles, and one
         * IEEE multiplication or division rounds correctly. */
        uint64_t m = 0;
        for (int i = 0; i < dec->nd; i++) m = m * 10 + dec->d[i];
        double x = (double)m;
        if (dec->exp == 0) return x;
        if (dec->exp > 0 && dec->exp <= 22) return x * pow10_exact[dec->exp];
        if (dec->exp < 0 && dec->exp >= -22) return x / pow10_exact[-dec->exp];
        if (dec->exp > 22 && dec->exp <= 22 + 15 - dec->nd)
            return x * pow10_exact[dec->exp - 22] * 1e22; /* the first product is an exact integer */
    }
    /* A guess from the first 19 digits, then exact comparisons with the
     * halfway points on either side, one step at a time. */
    uint64_t m = 0;
    int used = dec->nd < 19 ? dec->nd : 19;
    for (int i = 0; i < used; i++) m = m * 10 + dec->d[i];
    long e = (long)dec->exp + (dec->nd - used);
    double x = (double)m;
    for (; e > 22 && x < 1e308; e -= 22) x *= 1e22;
    for (; e < -22 && x > 0; e += 22) x /= 1e22;
    if (e > 22) return __builtin_inf(); /* not reached: top <= 310 */
    if (e >= -22) x = e >= 0 ? x * pow10_exact[e] : x / pow10_exact[-e];
    if (!(x < __builtin_inf())) x = 1.7976931348623157e308;
    bn digits;
    decimal_bn(dec, &digits);
    for (;;) {
        uint64_t bits = to_bits(x);
        uint64_t frac = bits & ((1ull << 52) - 1);
        int biased = (int)(bits >> 52);
        uint64_t m2 = biased ? frac | 1ull << 52 : frac;
        int k = biased ? biased - 1075 : -1074;
        bool odd = m2 & 1;
        /* Above x: the halfway point to the next double up. */
        int c = compare(&digits, dec->exp, 2 * m2 + 1, k - 1);
        if (c > 0 || (c == 0 && odd)) {
            if (bits == 0x7FEFFFFFFFFFFFFFull) return __builtin_inf();
            x = from_bits(bits + 1);
            continue;
        }
        if (bits == 0) return x;
        /* Below x: the gap is half as wide when x is a power of two above
         * the smallest normal. */
        c = (frac == 0 && biased > 1) ? compare(&digits, dec->exp, 4 * m2 - 1, k - 2)
                                      : compare(&digits, dec->exp, 2 * m2 - 1, k - 1);
        if (c < 0 || (c == 0 && odd)) {
            x = from_bits(bits - 1);
            continue;
        }
        return x;
    }
}

bool sluice_parse_number(const uint8_t *s, size_t len, double *out) {
    decimal dec;
    bool neg = decimal_read(s, len, &dec);
    double x = decimal_to_double(&dec);
    *out = neg ? -x : x;
    return true;
}

/* ------------------------------------------------------------ double -> text */

/* The exact decimal value of a positive finite double. */
static void double_decimal(double x, decimal *dec) {
    uint64_t bits = to_bits(x);
    uint64_t frac = bits & ((1ull << 52) - 1);
    int biased = (int)(bits >> 52);
    uint64_t m = biased ? frac | 1ull << 52 : frac;
    int k = biased ? biased - 1075 : -1074;
    bn b;
    bn_set(&b, m);
    dec->exp = 0;
    if (k >= 0) {
        bn_shl(&b, (unsigned)k);
    } else {
        bn_mul_pow5(&b, (unsigned)-k); /* m × 2^k = m × 5^-k × 10^k */
        dec->exp = k;
    }
    /* Digits from the low end, nine at a time. */
    uint8_t rev[MAX_DIGITS];
    int n = 0;
    while (b.n) {
        uint32_t chunk = bn_div_small(&b, 1000000000u);
        for (int i = 0; i < 9; i++, chunk /= 10) rev[n++] = (uint8_t)(chunk % 10);
    }
    while (n > 0 && rev[n - 1] == 0) n--;
    dec->nd = n;
    for (int i = 0; i < n; i++) dec->d[i] = rev[n - 1 - i];
    decimal_trim(dec);
}

/* Whether rounding `src` to `n` < src->nd digits, to nearest with ties to
 * even, goes up. */
static bool nearest_is_up(const decimal *src, int n) {
    uint8_t next = src->d[n];
    return next > 5 || (next == 5 && (src->nd > n + 1 || (src->d[n - 1] & 1)));
}

/* `src` to `n` significant digits, rounded up or down (truncated). */
static void decimal_round(const decimal *src, int n, bool up, decimal *dst) {
    int keep = src->nd < n ? src->nd : n;
    memcpy(dst->d, src->d, (size_t)keep); /* not the whole array: this runs often */
    dst->nd = src->nd;
    dst->exp = src->exp;
    if (src->nd <= n) return;
    dst->nd = n;
    dst->exp = src->exp + (src->nd - n);
    if (up) {
        int i = n - 1;
        while (i >= 0 && dst->d[i] == 9) dst->d[i--] = 0;
        if (i >= 0) {
            dst->d[i]++;
        } else {
            dst->d[0] = 1; /* 99.9 -> 100 */
            dst->exp += n;
            dst->nd = 1;
        }
    }
    decimal_trim(dst);
}

static bool reads_back(const decimal *dec, double x) { return decimal_to_double(dec) == x; }

/* Whether an `n`-digit neighbour of x's exact digits reads back as x; it
 * goes to *dec, the nearer one when both do. Only the two neighbours can:
 * any n-digit number that reads back lies between one of them and x. */
static bool shortest_at(const decimal *exact, int n, double x, decimal *dec) {
    if (exact->nd <= n) {
        decimal_round(exact, n, false, dec);
        return true;
    }
    bool up = nearest_is_up(exact, n);
    decimal_round(exact, n, up, dec);
    if (reads_back(dec, x)) return true;
    decimal_round(exact, n, !up, dec);
    return reads_back(dec, x);
}

/* Lays the digits out as JavaScript's Number#toString does: plain from
 * 1e-7 up to 1e21, with an exponent outside that. */
static size_t layout(const decimal *dec, bool neg, char *out) {
    size_t o = 0;
    if (neg) out[o++] = '-';
    int k = dec->nd, point = dec->nd + dec->exp;
    if (k <= point && point <= 21) {
        for (int i = 0; i < k; i++) out[o++] = (char)('0' + dec->d[i]);
        for (int i = k; i < point; i++) out[o++] = '0';
    } else if (0 < point && point <= 21) {
        for (int i = 0; i < k; i++) {
            if (i == point) out[o++] = '.';
            out[o++] = (char)('0' + dec->d[i]);
        }
    } else if (-6 < point && point <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = point; i < 0; i++) out[o++] = '0';
        for (int i = 0; i < k; i++) out[o++] = (char)('0' + dec->d[i]);
    } else {
        out[o++] = (char)('0' + dec->d[0]);
        if (k > 1) {
            out[o++] = '.';
            for (int i = 1; i < k; i++) out[o++] = (char)('0' + dec->d[i]);
        }
        int e = point - 1;
        out[o++] = 'e';
        out[o++] = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        char tmp[4];
        int t = 0;
        do {
            tmp[t++] = (char)('0' + e % 10);
            e /= 10;
        } while (e);
        while (t) out[o++] = tmp[--t];
    }
    out[o] = 0;
    return o;
}

size_t sluice_format_double(double v, int precision, char *out) {
    uint64_t bits = to_bits(v);
    bool neg = bits >> 63;
    double x = neg ? -v : v;
    if (x != x) {
        memcpy(out, "nan", 4);
        return 3;
    }
    if (x == __builtin_inf()) {
        memcpy(out, neg ? "-inf" : "inf", neg ? 5 : 4);
        return neg ? 4 : 3;
    }
    decimal exact, dec;
    if (x == 0) {
        dec.nd = 1;
        dec.d[0] = 0;
        dec.exp = 0;
        return layout(&dec, neg, out);
    }
    double_decimal(x, &exact);
    if (precision >= 0) {
        int n = precision == 0 ? 1 : precision > 17 ? 17 : precision;
        decimal_round(&exact, n, exact.nd > n && nearest_is_up(&exact, n), &dec);
        return layout(&dec, neg, out);
    }
    /* The fewest digits that read back as x; of two such, the nearer.
     * Whether some n-digit text reads back grows with n (a shorter one is
     * a longer one with zeros), so n is found by bisection. */
    int lo = 1, hi = 17; /* 17 digits always read back */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (shortest_at(&exact, mid, x, &dec)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    shortest_at(&exact, lo, x, &dec);
    return layout(&dec, neg, out);
}

/* ------------------------------------------------------------ the scanner */

#define MAX_DEPTH 128

typedef struct jscan {
    const uint8_t *s;
    size_t len;
    size_t pos;
    const char *err; /* the first error */
    size_t err_at;
} jscan;

static bool jfail(jscan *j, const char *what) {
    if (!j->err) {
        j->err = what;
        j->err_at = j->pos;
    }
    return false;
}

static void jws(jscan *j) {
    while (j->pos < j->len) {
        uint8_t c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->pos++;
    }
}

static bool jdigits(jscan *j) {
    size_t start = j->pos;
    while (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
    return j->pos > start;
}

static bool jnumber(jscan *j) {
    if (j->pos < j->len && j->s[j->pos] == '-') j->pos++;
    if (j->pos < j->len && j->s[j->pos] == '0') {
        j->pos++;
    } else if (!jdigits(j)) {
        return jfail(j, "expected a digit");
    }
    if (j->pos < j->len && j->s[j->pos] == '.') {
        j->pos++;
        if (!jdigits(j)) return jfail(j, "expected a digit after the decimal point");
    }
    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) j->pos++;
        if (!jdigits(j)) return jfail(j, "expected a digit in the exponent");
    }
    return true;
}

static int hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At the opening quote; ends after the closing one. */
static bool jstring(jscan *j) {
    j->pos++;
    while (j->pos < j->len) {
        uint8_t c = j->s[j->pos];
        if (c == '"') {
            j->pos++;
            return true;
        }
        if (c < 0x20) return jfail(j, "a control character in a string");
        if (c != '\\') {
            j->pos++;
            continue;
        }
        j->pos++;
        if (j->pos >= j->len) break;
        c = j->s[j->pos];
        if (c == 'u') {
            for (int i = 1; i <= 4; i++)
                if (j->pos + i >= j->len || hex(j->s[j->pos + i]) < 0)
                    return jfail(j, "a bad \\u escape");
            j->pos += 5;
        } else if (c && strchr("\"\\/bfnrt", c)) {
            j->pos++;
        } else {
            return jfail(j, "an unknown escape");
        }
    }
    return jfail(j, "an unterminated string");
}

static bool jword(jscan *j, const char *word) {
    size_t n = strlen(word);
    if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0)
        return jfail(j, "expected a value");
    j->pos += n;
    return true;
}

static bool jvalue(jscan *j, int depth) {
    jws(j);
    if (j->pos >= j->len) return jfail(j, "expected a value");
    uint8_t c = j->s[j->pos];
    if (c == '{' || c == '[') {
        if (depth >= MAX_DEPTH) return jfail(j, "nested too deeply");
        uint8_t close = c == '{' ? '}' : ']';
        j->pos++;
        jws(j);
        if (j->pos < j->len && j->s[j->pos] == close) {
            j->pos++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                jws(j);
                if (j->pos >= j->len || j->s[j->pos] != '"') return jfail(j, "expected a field name");
                if (!jstring(j)) return false;
                jws(j);
                if (j->pos >= j->len || j->s[j->pos] != ':') return jfail(j, "expected `:`");
                j->pos++;
            }
            if (!jvalue(j, depth + 1)) return false;
            jws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->pos < j->len && j->s[j->pos] == close) {
                j->pos++;
                return true;
            }
            return jfail(j, c == '{' ? "expected `,` or `}`" : "expected `,` or `]`");
        }
    }
    if (c == '"') return jstring(j);
    if (c == '-' || (c >= '0' && c <= '9')) return jnumber(j);
    if (c == 't') return jword(j, "true");
    if (c == 'f') return jword(j, "false");
    if (c == 'n') return jword(j, "null");
    return jfail(j, "expected a value");
}

/* Checks that `json` is one JSON value; its span without the whitespace
 * around it goes to *start / *end. */
static bool jcheck(sluice_bytes json, size_t *start, size_t *end, const char **err, size_t *at) {
    jscan j = {json.data, json.data ? json.len : 0, 0, NULL, 0};
    if (!json.data) {
        j.err = "null bytes";
    } else if (!sluice_utf8_valid(json.data, json.len)) {
        j.err = "not valid UTF-8";
    } else {
        jws(&j);
        *start = j.pos;
        if (jvalue(&j, 0)) {
            *end = j.pos;
            jws(&j);
            if (j.pos == j.len) return true;
            jfail(&j, "trailing characters");
        }
    }
    if (err) *err = j.err;
    if (at) *at = j.err_at;
    return false;
}

bool sluice_json_check(sluice_bytes json, const char **why) {
    size_t start, end, at = 0;
    const char *err = NULL;
    if (jcheck(json, &start, &end, &err, &at)) return true;
    if (why) {
        if (!json.data || !sluice_utf8_valid(json.data, json.len))
            *why = err;
        else
            *why = sluice_afmt("%s at byte %zu", err, at);
    }
    return false;
}

bool sluice_json_valid(sluice_bytes json) {
    size_t start, end;
    return jcheck(json, &start, &end, NULL, NULL);
}

/* Appends the UTF-8 of code point `cp` at out. */
static size_t put_utf8(uint8_t *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const uint8_t *p) {
    return (uint32_t)(hex(p[0]) << 12 | hex(p[1]) << 8 | hex(p[2]) << 4 | hex(p[3]));
}

/* Decodes a checked string token (quotes included) into an arena copy,
 * NUL-terminated; a lone surrogate becomes U+FFFD. */
static char *decode_string(const uint8_t *s, size_t len, size_t *out_len) {
    uint8_t *out = sluice_alloc(len + 1);
    size_t o = 0;
    for (size_t i = 1; i + 1 < len;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        uint8_t c = s[i + 1];
        i += 2;
        switch (c) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(s + i);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= len - 1 && s[i] == '\\' && s[i + 1] == 'u') {
                uint32_t lo = hex4(s + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = c; break; /* " \ / */
        }
    }
    out[o] = 0;
    if (out_len) *out_len = o;
    return (char *)out;
}

sluice_bytes sluice_json_get(sluice_bytes json, const char *field) {
    size_t start, end;
    if (!jcheck(json, &start, &end, NULL, NULL)) return SLUICE_NULL;
    if (!field) return sluice_bytes_of(json.data + start, end - start);
    if (json.data[start] != '{') return SLUICE_NULL;
    size_t want = strlen(field);
    jscan j = {json.data, end, start + 1, NULL, 0};
    sluice_bytes found = SLUICE_NULL;
    for (;;) {
        jws(&j);
        if (j.s[j.pos] == '}') break;
        size_t ks = j.pos;
        jstring(&j);
        size_t klen;
        char *key = decode_string(j.s + ks, j.pos - ks, &klen);
        jws(&j);
        j.pos++; /* : */
        jws(&j);
        size_t vs = j.pos;
        jvalue(&j, 0);
        if (klen == want && memcmp(key, field, want) == 0) found = sluice_bytes_of(j.s + vs, j.pos - vs);
        jws(&j);
        if (j.s[j.pos] == ',') j.pos++;
    }
    return found;
}

static bool is_number(sluice_bytes v) {
    return v.data && v.len && (v.data[0] == '-' || (v.data[0] >= '0' && v.data[0] <= '9'));
}

bool sluice_json_number(sluice_bytes json, const char *field, double *out) {
    sluice_bytes v = sluice_json_get(json, field);
    if (!is_number(v)) return false;
    double x;
    sluice_parse_number(v.data, v.len, &x);
    if (out) *out = x;
    return true;
}

bool sluice_json_int(sluice_bytes json, const char *field, int64_t *out) {
    sluice_bytes v = sluice_json_get(json, field);
    if (!is_number(v)) return false;
    bool neg = v.data[0] == '-';
    size_t i = neg;
    uint64_t n = 0;
    bool plain = true;
    for (; i < v.len; i++) {
        uint8_t c = v.data[i];
        if (c < '0' || c > '9') {
            plain = false;
            break;
        }
        if (n > (UINT64_MAX - 9) / 10) {
            plain = false;
            break;
        }
        n = n * 10 + (uint64_t)(c - '0');
    }
    int64_t r;
    if (plain) {
        if (neg ? n > (uint64_t)INT64_MAX + 1 : n > (uint64_t)INT64_MAX) return false;
        r = neg ? (int64_t)(0 - n) : (int64_t)n;
    } else {
        /* 1e3, 2.0: the value must be a whole number in range. */
        double x;
        sluice_parse_number(v.data, v.len, &x);
        if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) return false;
        r = (int64_t)x;
        if ((double)r != x) return false;
    }
    if (out) *out = r;
    return true;
}

char *sluice_json_string(sluice_bytes json, const char *field) {
    sluice_bytes v = sluice_json_get(json, field);
    if (!v.data || v.len < 2 || v.data[0] != '"') return NULL;
    return decode_string(v.data, v.len, NULL);
}

char *sluice_json_quote(const char *text) {
    if (!text) return sluice_afmt("null");
    size_t len = strlen(text);
    const char *s = sluice_utf8_valid((const uint8_t *)text, len)
                        ? text
                        : sluice_utf8_sanitize(text, len, NULL);
    char *out = sluice_alloc(len * 6 + 3), *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (c < 0x20) {
                o += sluice_fmt(o, 7, "\\u%04x", c);
            } else {
                *o++ = (char)c;
            }
        }
    }
    *o++ = '"';
    *o = 0;
    return out;
}
