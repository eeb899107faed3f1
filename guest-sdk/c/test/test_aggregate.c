/*
 * Native tests of the C SDK's JSON readers, its number conversions (against
 * glibc's strtod and printf, which are exact) and the aggregator runtime
 * (the same rules as guest-sdk/rust/src/aggregate.rs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "host_stub.h"

static sluice_bytes S(const char *s) { return sluice_bytes_str(s); }

/* ------------------------------------------------------------ numbers */

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static double parse(const char *s) {
    double d = -1;
    CHECK(sluice_parse_number((const uint8_t *)s, strlen(s), &d));
    return d;
}

static bool same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The number of significant digits of a %g text. */
static int sig_digits(const char *s) {
    int n = 0, lead = 1, trailing = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (lead && *s == '0') continue;
        lead = 0;
        n++;
        trailing = *s == '0' ? trailing + 1 : 0;
    }
    return n - trailing;
}

static void test_shortest_text_reads_back_and_is_shortest(void) {
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = rnd();
        if (i % 4 == 1) bits &= 0x000FFFFFFFFFFFFFull; /* subnormals */
        if (i % 4 == 2) bits = (bits & 0x800FFFFFFFFFFFFFull) | (uint64_t)(1000 + rnd() % 60) << 52;
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        char ours[32], theirs[40];
        sluice_format_double(x, -1, ours);
        double back = strtod(ours, NULL);
        /* glibc's shortest: the fewest %.Ne digits that read back. */
        int want = 1;
        for (; want < 17; want++) {
            snprintf(theirs, sizeof theirs, "%.*e", want - 1, x);
            if (strtod(theirs, NULL) == x) break;
        }
        /* Never longer than glibc's nearest rounding; shorter only where
         * the other neighbour reads back (below). */
        if (!same_double(back, x) || sig_digits(ours) > (x == 0 ? 0 : want) ||
            sig_digits(ours) < want - 1) {
            if (bad++ < 5) fprintf(stderr, "  %.17g -> %s (%d digits, want %d)\n", x, ours, sig_digits(ours), want);
        }
    }
    CHECK(bad == 0);
    /* Powers of two, where the gap below is half the gap above: the
     * shortest text may be the rounding away from the nearest (as Python's
     * repr and Ryu give). */
    static const struct {
        int k;
        const char *want;
    } twos[] = {{-1017, "7.120236347223045e-307"}, {-1007, "7.291122019556398e-304"},
                {-957, "8.209073602596753e-289"}, {-808, "5.858190679279809e-244"},
                {-1074, "5e-324"}, {0, "1"}, {-1, "0.5"}, {70, "1.1805916207174113e+21"}, {69, "590295810358705700000"},
                {1023, "8.98846567431158e+307"}};
    for (size_t i = 0; i < sizeof twos / sizeof twos[0]; i++) {
        char buf[32];
        size_t n = sluice_format_double(ldexp(1.0, twos[i].k), -1, buf);
        CHECK_STR(buf, n, twos[i].want);
    }
}

static void test_decimal_text_is_rounded_like_strtod(void) {
    static const char *hard[] = {
        "9007199254740993",        /* 2^53 + 1: a tie, to even */
        "9007199254740995",        "2.2250738585072011e-308", "2.2250738585072014e-308",
        "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
        "1.7976931348623157e308",  "1.7976931348623158e308",  "1.7976931348623159e308",
        "1e309",                   "1e-400",                  "0.1",
        "123456789012345678901234567890", "7.2057594037927933e16", "0.000000000000000000000000001",
        "1e23",                    "8.5e-323",                "-0",
        "0",                       "-12.5e+3",                "1E2",
        "3.0000000000000001",      "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9999999",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
        double got = parse(hard[i]), want = strtod(hard[i], NULL);
        if (!same_double(got, want) && bad++ < 5)
            fprintf(stderr, "  %s: got %.17g, want %.17g\n", hard[i], got, want);
    }
    /* Random decimals: 1-25 digits, a point anywhere, exponents across the
     * whole range; and some of 900 digits (past the 800 kept). */
    char text[1000];
    for (int i = 0; i < 40000; i++) {
        int nd = i % 50 == 0 ? 900 : 1 + (int)(rnd() % 25);
        bool small = i % 2; /* near the fast path: short, with small exponents */
        if (small) nd = 1 + (int)(rnd() % 20);
        size_t o = 0;
        if (rnd() % 2) text[o++] = '-';
        int point = (int)(rnd() % (uint64_t)(nd + 1));
        for (int k = 0; k < nd; k++) {
            if (k == point && k > 0) text[o++] = '.';
            text[o++] = (char)('0' + (k == 0 ? 1 + rnd() % 9 : rnd() % 10));
        }
        int e = small ? (int)(rnd() % 60) - 30 : (int)(rnd() % 680) - 350;
        o += (size_t)sprintf(text + o, "e%d", e);
        text[o] = 0;
        double got = parse(text), want = strtod(text, NULL);
        if (!same_double(got, want) && bad++ < 5)
            fprintf(stderr, "  %.60s: got %.17g, want %.17g\n", text, got, want);
    }
    CHECK(bad == 0);
}

/* The exact decimal of the midpoint between two neighbouring doubles (as a
 * long double, which holds it exactly on x86), and that text nudged up and
 * down in its last digit: ties and near-ties, where rounding is hardest. */
static void test_decimal_text_near_halfway_points(void) {
#if defined(__x86_64__) || defined(__i386__)
    int bad = 0;
    static char text[1600];
    for (int i = 0; i < 3000; i++) {
        uint64_t bits = rnd() & 0x7FFFFFFFFFFFFFFFull;
        if (i % 3 == 0) bits &= 0x7FF0000000000000ull; /* powers of two: the gap below is half */
        if (i % 7 == 0) bits &= 0x000FFFFFFFFFFFFFull; /* subnormals */
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x) || x == 0 || x >= 1.7976931348623157e308) continue;
        double below = nextafter(x, 0);
        long double mid = ((long double)x + (long double)below) / 2;
        int n = snprintf(text, sizeof text, "%.1100Lf", mid);
        /* Trim trailing zeros (keep the text exact). */
        while (n > 0 && text[n - 1] == '0') text[--n] = 0;
        if (text[n - 1] == '.') text[n++] = '0', text[n] = 0;
        for (int nudge = -1; nudge <= 1; nudge++) {
            char *last = &text[n - 1];
            char saved = *last;
            if (nudge < 0 && saved == '0') continue;
            if (nudge > 0 && saved == '9') continue;
            *last = (char)(saved + nudge);
            double got = parse(text), want = strtod(text, NULL);
            if (!same_double(got, want) && bad++ < 5)
                fprintf(stderr, "  %.40s...(%d chars): got %a, want %a\n", text, n, got, want);
            *last = saved;
        }
    }
    CHECK(bad == 0);
#endif
}

static void test_percent_g_writes_json_numbers(void) {
    struct {
        const char *fmt;
        double v;
        const char *want;
    } cases[] = {
        {"%g", 19.75, "19.75"},
        {"%g", 20, "20"},
        {"%g", 0.1, "0.1"},
        {"%g", 0.1 + 0.2, "0.30000000000000004"},
        {"%g", 1e21, "1e+21"},
        {"%g", 1e20, "100000000000000000000"},
        {"%g", 1.5e-7, "1.5e-7"},
        {"%g", 0.000001, "0.000001"},
        {"%g", 123456.789, "123456.789"},
        {"%g", -0.0, "-0"},
        {"%g", 0.0, "0"},
        {"%g", 5e-324, "5e-324"},
        {"%g", 1.7976931348623157e308, "1.7976931348623157e+308"},
        {"%g", NAN, "nan"},
        {"%g", -INFINITY, "-inf"},
        {"%.3g", 3.14159, "3.14"},
        {"%.2g", 1234, "1200"},
        {"%.0g", 7.7, "8"},
        {"%.1g", 9.99, "10"},
        {"%.2g", 9.996, "10"},
        {"%.3g", 99.96, "100"},
        {"%.3g", 0.0009996, "0.001"},
        {"[%8g]", 2.5, "[     2.5]"},
        {"[%-8g]", 2.5, "[2.5     ]"},
        {"[%08g]", -1.5, "[-00001.5]"},
        {"[%06g]", INFINITY, "[   inf]"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = sluice_fmt(buf, sizeof buf, cases[i].fmt, cases[i].v);
        CHECK_STR(buf, n, cases[i].want);
    }
    size_t n = sluice_fmt(buf, sizeof buf, "{\"count\":%lld,\"total\":%g}", 2LL, 19.75);
    CHECK_STR(buf, n, "{\"count\":2,\"total\":19.75}");
}

/* ------------------------------------------------------------ JSON */

static void test_json_validity_follows_the_rfc(void) {
    const char *valid[] = {"{}", "[]", " {\"a\": [1, 2.5e3, -0, true, false, null, \"x\\u00e9\\n\"]} ",
                           "\"s\"", "0", "-1.5E-3", "{\"\":{}}", "[[[]]]"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        if (!sluice_json_valid(S(valid[i]))) fprintf(stderr, "  refused: %s\n", valid[i]);
        CHECK(sluice_json_valid(S(valid[i])));
    }
    const char *invalid[] = {"", " ", "{", "{\"a\"}", "{\"a\":}", "[1,]", "01", "1.", ".5", "+1",
                             "\"\\x\"", "\"ctrl\x01\"", "tru", "{\"a\":1} x", "nan", "\"\xff\"",
                             "{a:1}", "[1 2]", "\"\\u12\"", "'s'", "{\"a\":1,}", "\"open"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (sluice_json_valid(S(invalid[i]))) fprintf(stderr, "  accepted: %s\n", invalid[i]);
        CHECK(!sluice_json_valid(S(invalid[i])));
    }
    CHECK(!sluice_json_valid(SLUICE_NULL));
    char deep[402];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    deep[400] = 0;
    CHECK(!sluice_json_valid(S(deep)));
    deep[100] = 0;
    memset(deep, '[', 50);
    memset(deep + 50, ']', 50);
    CHECK(sluice_json_valid(S(deep)));
    const char *why = NULL;
    CHECK(!sluice_json_check(S("{\"a\":}"), &why) && why && strcmp(why, "expected a value at byte 5") == 0);
    CHECK(!sluice_json_check(S("not json"), &why) && strcmp(why, "expected a value at byte 0") == 0);
    CHECK(!sluice_json_check(S("[1] 2"), &why) && strcmp(why, "trailing characters at byte 4") == 0);
    CHECK(!sluice_json_check(S("\"\xc3\""), &why) && strcmp(why, "not valid UTF-8") == 0);
    sluice_arena_reset();
}

static void test_json_fields_read_numbers_integers_and_strings(void) {
    sluice_bytes doc = S("{\"amount\": 12.5, \"n\": 3, \"s\": \"h\\u00e9\\ud83d\\ude00\\\"\\n\", "
                         "\"nested\": {\"x\": -2e-3, \"n\": [1]}, \"amount\": 7, \"big\": 1e3, "
                         "\"half\": 2.5, \"two\": 2.0, \"t\": true, \"a\\u006dt\": 4}");
    double d = 0;
    int64_t i = 0;
    CHECK(sluice_json_number(doc, "amount", &d) && d == 7); /* the last one */
    CHECK(sluice_json_number(doc, "amt", &d) && d == 4);    /* an escaped name */
    CHECK(sluice_json_int(doc, "n", &i) && i == 3);
    CHECK(sluice_json_int(doc, "big", &i) && i == 1000);
    CHECK(sluice_json_int(doc, "two", &i) && i == 2);
    CHECK(!sluice_json_int(doc, "half", &i));
    CHECK(!sluice_json_number(doc, "s", &d));
    CHECK(!sluice_json_number(doc, "missing", &d));
    CHECK(!sluice_json_number(doc, "t", &d));
    sluice_bytes nested = sluice_json_get(doc, "nested");
    CHECK_STR(nested.data, nested.len, "{\"x\": -2e-3, \"n\": [1]}");
    CHECK(sluice_json_number(nested, "x", &d) && d == -2e-3);
    CHECK(sluice_bytes_eq_str(sluice_json_get(doc, "t"), "true"));
    CHECK(sluice_bytes_is_null(sluice_json_get(doc, "nope")));
    char *s = sluice_json_string(doc, "s");
    CHECK(s && strcmp(s, "h\xc3\xa9\xf0\x9f\x98\x80\"\n") == 0);
    CHECK(sluice_json_string(doc, "n") == NULL);
    /* The value itself, with field NULL; not an object; not JSON. */
    CHECK(sluice_json_number(S("  42 "), NULL, &d) && d == 42);
    CHECK(!sluice_json_number(S("[1]"), "a", &d));
    CHECK(!sluice_json_number(S("{\"amount\": 1"), "amount", &d));
    CHECK(!sluice_json_number(S("not json"), "amount", &d));
    CHECK(sluice_json_int(S("9223372036854775807"), NULL, &i) && i == INT64_MAX);
    CHECK(sluice_json_int(S("-9223372036854775808"), NULL, &i) && i == INT64_MIN);
    CHECK(!sluice_json_int(S("9223372036854775808"), NULL, &i));
    CHECK(!sluice_json_int(S("1e19"), NULL, &i));
    CHECK(!sluice_json_int(S("123456789012345678901"), NULL, &i));
    CHECK(strcmp(sluice_json_string(S("\"\\ud800x\""), NULL), "\xef\xbf\xbdx") == 0);
    sluice_arena_reset();
}

static void test_json_quote_escapes_and_reads_back(void) {
    char *q = sluice_json_quote("a\"b\\c\n\x01\xc3\xa9/");
    CHECK(strcmp(q, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"") == 0);
    CHECK(strcmp(sluice_json_string(S(q), NULL), "a\"b\\c\n\x01\xc3\xa9/") == 0);
    CHECK(strcmp(sluice_json_quote("bad\xff"), "\"bad?\"") == 0);
    CHECK(strcmp(sluice_json_quote(NULL), "null") == 0);
    char a[201], b[101];
    memset(a, 'a', 200);
    a[200] = 0;
    memset(b, 'b', 100);
    b[100] = 0;
    char *both = sluice_afmt("%s|%s", a, b); /* past the first, 256-byte attempt */
    CHECK(strlen(both) == 301 && both[200] == '|' && both[300] == 'b');
    char *doc = sluice_afmt("{\"name\":%s}", sluice_json_quote("tab\there"));
    CHECK(strcmp(sluice_json_string(S(doc), "name"), "tab\there") == 0);
    sluice_arena_reset();
}

/* ------------------------------------------------------------ aggregator */

/* {"count": n, "total": x}; a value without a numeric `amount` is
 * rejected, "skip" returns OK without an aggregate, "badjson" sets text
 * that is not JSON, "emit" emits, "plain" returns SLUICE_REJECTED. */
static int add_calls, initial_calls;

static sluice_status totals_initial(sluice_bytes key, sluice_emitter *out) {
    initial_calls++;
    if (sluice_bytes_eq_str(key, "refuse")) return sluice_reject(out, "no-start", "not this key");
    return sluice_aggregate(out, "{\"count\":0,\"total\":0}");
}

static sluice_status totals_add(sluice_bytes agg, const sluice_record *in, sluice_emitter *out) {
    add_calls++;
    CHECK(agg.data && agg.data[agg.len] == 0 && sluice_json_valid(agg));
    if (sluice_bytes_eq_str(in->value, "skip")) return SLUICE_OK;
    if (sluice_bytes_eq_str(in->value, "badjson")) return sluice_aggregate(out, "{count:1}");
    if (sluice_bytes_eq_str(in->value, "plain")) return SLUICE_REJECTED;
    if (sluice_bytes_eq_str(in->value, "emit")) {
        sluice_emit(out, in);
        return SLUICE_OK;
    }
    double amount, total;
    int64_t count;
    if (!sluice_json_number(in->value, "amount", &amount))
        return sluice_reject(out, "bad-amount", "the value has no numeric `amount`");
    if (!sluice_json_int(agg, "count", &count) || !sluice_json_number(agg, "total", &total))
        return sluice_reject(out, "bad-aggregate-shape", (const char *)agg.data);
    return sluice_aggregatef(out, "{\"count\":%lld,\"total\":%g}", (long long)count + 1,
                             total + amount);
}

static sluice_status totals_merge(sluice_bytes key, sluice_bytes a, sluice_bytes b,
                                  sluice_emitter *out) {
    int64_t ca = 0, cb = 0;
    double ta = 0, tb = 0;
    sluice_json_int(a, "count", &ca);
    sluice_json_int(b, "count", &cb);
    sluice_json_number(a, "total", &ta);
    sluice_json_number(b, "total", &tb);
    if (sluice_bytes_eq_str(key, "nomerge")) return sluice_reject(out, "no-merge", "not for this key");
    if (sluice_bytes_eq_str(key, "unset")) return SLUICE_OK;
    return sluice_aggregatef(out, "{\"count\":%lld,\"total\":%g,\"key\":%s}", (long long)(ca + cb),
                             ta + tb,
                             sluice_bytes_is_null(key) ? "null"
                                                       : sluice_json_quote(sluice_bytes_cstr(key)));
}

static const char *init_want;

static sluice_status totals_init(const sluice_config *c) {
    const char *v = sluice_config_get(c, "need");
    if (init_want && (!v || strcmp(v, init_want) != 0))
        return sluice_init_error("bad-config", "config `need` must be %s", init_want);
    return SLUICE_OK;
}

static const sluice_aggregator_def totals = {totals_init, totals_initial, totals_add, totals_merge};

typedef struct kv {
    const char *key;   /* NULL: null */
    const char *value; /* NULL: null */
} kv;

static uint8_t *frame_of(const kv *rs, size_t n, size_t *len) {
    sluice_frame_writer w;
    sluice_frame_writer_init(&w, (uint32_t)n, 0);
    for (size_t i = 0; i < n; i++) {
        sluice_record rec = sluice_record_new(S(rs[i].key), S(rs[i].value));
        rec.has_timestamp = true;
        rec.timestamp = 1000 + (int64_t)i;
        sluice_frame_write_record(&w, &rec);
    }
    return sluice_frame_finish(&w, len);
}

/* One status of an add result. */
typedef struct agg_out {
    bool rejected;
    char code[64];
    char message[200];
    char value[200];
    bool null_key;
    char key[32];
    bool has_ts;
    uint32_t headers;
    uint32_t records;
} agg_out;

static bool add_call(const sluice_aggregator_def *def, const kv *stored, size_t ns, const kv *batch,
                     size_t nb, agg_out *outs, sluice_error *err_out) {
    size_t alen, blen, out_len;
    uint8_t *a = frame_of(stored, ns, &alen), *b = frame_of(batch, nb, &blen), *out;
    sluice_error err = {NULL, NULL};
    bool ok = sluice_aggregator_add(def, a, alen, b, blen, &out, &out_len, &err);
    if (err_out) *err_out = err;
    if (ok) {
        sluice_frame_reader r;
        sluice_frame_error fe;
        uint32_t count;
        CHECK(sluice_frame_open(&r, out, out_len, &count, &fe) && count == nb);
        for (uint32_t i = 0; i < count && i < nb; i++) {
            sluice_frame_status st;
            agg_out *o = &outs[i];
            memset(o, 0, sizeof *o);
            CHECK(sluice_frame_read_status(&r, &st, &fe));
            if (st.kind == SLUICE_STATUS_REJECTED) {
                o->rejected = true;
                snprintf(o->code, sizeof o->code, "%.*s", (int)st.code_len, st.code);
                snprintf(o->message, sizeof o->message, "%.*s", (int)st.message_len, st.message);
                continue;
            }
            o->records = st.count;
            for (uint32_t k = 0; k < st.count; k++) {
                sluice_frame_record fr;
                CHECK(sluice_frame_read_record(&r, &fr, &fe));
                o->null_key = fr.key.data == NULL;
                snprintf(o->key, sizeof o->key, "%.*s", (int)fr.key.len, fr.key.data ? (const char *)fr.key.data : "");
                snprintf(o->value, sizeof o->value, "%.*s", (int)fr.value.len,
                         fr.value.data ? (const char *)fr.value.data : "");
                o->has_ts = fr.has_timestamp;
                o->headers = fr.header_count;
            }
        }
        CHECK(sluice_frame_at_end(&r, &fe));
        free(out);
    }
    free(a);
    free(b);
    if (!ok && err_out) {
        /* keep the strings past the arena reset */
        static char code[64], message[200];
        snprintf(code, sizeof code, "%s", err.code);
        snprintf(message, sizeof message, "%s", err.message);
        err_out->code = code;
        err_out->message = message;
    }
    sluice_arena_reset();
    return ok;
}

static void test_add_threads_each_key_and_rejections_leave_it(void) {
    sluice_runtime_reset();
    init_want = NULL;
    kv stored[] = {{"c", "{\"count\":10,\"total\":100}"}, {"d", "garbage"}, {"e", NULL}};
    kv batch[] = {
        {"a", "{\"amount\":1.5}"},  {"b", "{\"amount\":2}"},   {"a", "not json"},
        {"a", "{\"amount\":2.25}"}, {NULL, "{\"amount\":1}"},  {"", "{\"amount\":5}"},
        {"c", "{\"amount\":1}"},    {"d", "{\"amount\":1}"},   {"d", "{\"amount\":1}"},
        {"e", "{\"amount\":0.1}"},  {"e", "{\"amount\":0.2}"}, {"refuse", "{\"amount\":1}"},
        {"a", "{\"amount\":-0.75}"},
    };
    enum { N = sizeof batch / sizeof batch[0] };
    agg_out o[N];
    add_calls = initial_calls = 0;
    CHECK(add_call(&totals, stored, 3, batch, N, o, NULL));
    const char *want[N] = {
        "{\"count\":1,\"total\":1.5}", "{\"count\":1,\"total\":2}", NULL,
        "{\"count\":2,\"total\":3.75}", "{\"count\":1,\"total\":1}", "{\"count\":1,\"total\":5}",
        "{\"count\":11,\"total\":101}", NULL, NULL,
        "{\"count\":1,\"total\":0.1}", "{\"count\":2,\"total\":0.30000000000000004}", NULL,
        "{\"count\":3,\"total\":3}",
    };
    for (int i = 0; i < N; i++) {
        if (want[i]) {
            CHECK(!o[i].rejected && o[i].records == 1);
            CHECK_STR(o[i].value, strlen(o[i].value), want[i]);
            CHECK(!o[i].has_ts && o[i].headers == 0);
        } else {
            CHECK(o[i].rejected);
        }
    }
    CHECK(strcmp(o[0].key, "a") == 0 && !o[0].null_key);
    CHECK(o[4].null_key && !o[5].null_key && o[5].key[0] == 0); /* null and empty keys differ */
    CHECK(strcmp(o[2].code, "bad-amount") == 0);
    CHECK(strcmp(o[7].code, "bad-aggregate") == 0);
    CHECK_STR(o[7].message, strlen(o[7].message),
              "the stored aggregate is not JSON: expected a value at byte 0");
    CHECK(strcmp(o[8].code, "bad-aggregate") == 0); /* still the stored one */
    CHECK(strcmp(o[11].code, "no-start") == 0);
    /* initial for a, b, null, "", e (stored null), refuse; add for all but d, d, refuse. */
    CHECK(initial_calls == 6);
    CHECK(add_calls == N - 3);
}

static void test_add_checks_what_the_plugin_returns(void) {
    sluice_runtime_reset();
    kv batch[] = {{"k", "skip"}, {"k", "badjson"}, {"k", "plain"}, {"k", "emit"}, {"k", "{\"amount\":1}"}};
    agg_out o[5];
    CHECK(add_call(&totals, NULL, 0, batch, 5, o, NULL));
    CHECK(o[0].rejected && strcmp(o[0].code, "no-aggregate") == 0);
    CHECK_STR(o[0].message, strlen(o[0].message),
              "add() returned SLUICE_OK without setting the aggregate: call sluice_aggregate() or "
              "sluice_aggregatef()");
    CHECK(o[1].rejected && strcmp(o[1].code, "bad-aggregate") == 0);
    CHECK_STR(o[1].message, strlen(o[1].message),
              "the aggregate add() set is not JSON: expected a field name at byte 1");
    CHECK(o[2].rejected && strcmp(o[2].code, "rejected") == 0);
    CHECK(o[3].rejected && strcmp(o[3].code, "not-a-processor") == 0);
    CHECK(!o[4].rejected && strcmp(o[4].value, "{\"count\":1,\"total\":1}") == 0);
}

static sluice_status count_from_null(sluice_bytes agg, const sluice_record *in, sluice_emitter *out) {
    (void)in;
    int64_t n = 0;
    if (!sluice_bytes_eq_str(agg, "null") && !sluice_json_int(agg, NULL, &n))
        return sluice_reject(out, "odd", "not a count");
    return sluice_aggregatef(out, "%lld", (long long)n + 1);
}

static void test_without_initial_a_key_starts_from_null(void) {
    sluice_runtime_reset();
    sluice_aggregator_def def = {NULL, NULL, count_from_null, NULL};
    kv stored[] = {{"b", "41"}};
    kv batch[] = {{"a", "x"}, {"a", "y"}, {"b", "z"}};
    agg_out o[3];
    CHECK(add_call(&def, stored, 1, batch, 3, o, NULL));
    CHECK(strcmp(o[0].value, "1") == 0 && strcmp(o[1].value, "2") == 0 && strcmp(o[2].value, "42") == 0);
}

static void test_a_malformed_frame_fails_the_call_before_any_record(void) {
    sluice_runtime_reset();
    kv batch[] = {{"a", "{\"amount\":1}"}};
    size_t blen, alen;
    uint8_t *b = frame_of(batch, 1, &blen), *a = frame_of(batch, 1, &alen), *out = NULL;
    size_t out_len;
    sluice_error err = {NULL, NULL};
    add_calls = 0;
    CHECK(!sluice_aggregator_add(&totals, a, alen - 1, b, blen, &out, &out_len, &err));
    CHECK(out == NULL && strcmp(err.code, "bad-frame") == 0);
    CHECK(!sluice_aggregator_add(&totals, a, alen, b, blen - 3, &out, &out_len, &err));
    CHECK(strcmp(err.code, "bad-frame") == 0);
    uint8_t *longer = malloc(blen + 1);
    memcpy(longer, b, blen);
    longer[blen] = 7;
    CHECK(!sluice_aggregator_add(&totals, a, alen, longer, blen + 1, &out, &out_len, &err));
    CHECK(strcmp(err.code, "bad-frame") == 0);
    CHECK(strcmp(err.message, "1 trailing bytes at byte 39 after the last record") == 0);
    CHECK(add_calls == 0);
    free(longer);
    free(a);
    free(b);
    sluice_arena_reset();
}

static bool merge_call(const sluice_aggregator_def *def, sluice_bytes key, const char *a,
                       const char *b, char *got, size_t cap, sluice_error *err) {
    uint8_t *out = NULL;
    size_t len = 0;
    bool ok = sluice_aggregator_merge(def, key, S(a), S(b), &out, &len, err);
    if (ok) {
        snprintf(got, cap, "%.*s", (int)len, (const char *)out);
        free(out);
    } else {
        snprintf(got, cap, "%s: %s", err->code, err->message);
    }
    sluice_arena_reset();
    return ok;
}

static void test_merge_combines_or_refuses(void) {
    sluice_runtime_reset();
    char got[200];
    sluice_error err;
    CHECK(merge_call(&totals, S("u1"), "{\"count\":2,\"total\":3.5}", "{\"count\":1,\"total\":1}",
                     got, sizeof got, &err));
    CHECK(strcmp(got, "{\"count\":3,\"total\":4.5,\"key\":\"u1\"}") == 0);
    CHECK(merge_call(&totals, SLUICE_NULL, "{\"count\":1,\"total\":1}", "{\"count\":1,\"total\":1}",
                     got, sizeof got, &err));
    CHECK(strcmp(got, "{\"count\":2,\"total\":2,\"key\":null}") == 0);
    CHECK(!merge_call(&totals, S("u1"), "{", "{}", got, sizeof got, &err));
    CHECK(strcmp(got, "bad-aggregate: the first aggregate is not JSON: expected a field name at byte 1") == 0);
    CHECK(!merge_call(&totals, S("u1"), "{}", "x", got, sizeof got, &err));
    CHECK(strcmp(got, "bad-aggregate: the second aggregate is not JSON: expected a value at byte 0") == 0);
    CHECK(!merge_call(&totals, S("nomerge"), "{}", "{}", got, sizeof got, &err));
    CHECK(strcmp(got, "no-merge: not for this key") == 0);
    CHECK(!merge_call(&totals, S("unset"), "{}", "{}", got, sizeof got, &err));
    CHECK(strncmp(got, "no-aggregate: merge() returned SLUICE_OK", 40) == 0);
    sluice_aggregator_def no_merge = {NULL, totals_initial, totals_add, NULL};
    CHECK(!merge_call(&no_merge, S("u1"), "{}", "{}", got, sizeof got, &err));
    CHECK(strcmp(got, "merge-unsupported: this aggregator does not implement `merge`") == 0);
}

static void test_aggregator_init_gets_the_config(void) {
    sluice_runtime_reset();
    init_want = "yes";
    sluice_kv_in good[] = {{"need", 4, "yes", 3}}, bad[] = {{"need", 4, "no", 2}};
    sluice_error err;
    CHECK(!sluice_aggregator_init(&totals, bad, 1, &err));
    CHECK(strcmp(err.code, "bad-config") == 0 && strcmp(err.message, "config `need` must be yes") == 0);
    sluice_arena_reset();
    /* Not initialized: add runs init again, and fails with it. */
    kv batch[] = {{"a", "{\"amount\":1}"}};
    agg_out o[1];
    CHECK(!add_call(&totals, NULL, 0, batch, 1, o, &err));
    CHECK(strcmp(err.code, "bad-config") == 0);
    char got[200];
    CHECK(!merge_call(&totals, S("k"), "{}", "{}", got, sizeof got, &err));
    CHECK(strcmp(got, "bad-config: config `need` must be yes") == 0);
    CHECK(sluice_aggregator_init(&totals, good, 1, &err));
    sluice_arena_reset();
    CHECK(add_call(&totals, NULL, 0, batch, 1, o, &err) && !o[0].rejected);
    sluice_aggregator_def no_add = {NULL, NULL, NULL, NULL};
    CHECK(!add_call(&no_add, NULL, 0, batch, 1, o, &err) && strcmp(err.code, "no-add") == 0);
    init_want = NULL;
    sluice_runtime_reset();
}

static sluice_status proc_sets_aggregate(const sluice_record *in, sluice_emitter *out) {
    (void)in;
    return sluice_aggregate(out, "{}");
}

static void test_a_processor_cannot_set_an_aggregate(void) {
    sluice_runtime_reset();
    kv batch[] = {{"a", "v"}};
    size_t len, out_len;
    uint8_t *in = frame_of(batch, 1, &len), *out;
    sluice_error err;
    CHECK(sluice_runtime_process(proc_sets_aggregate, in, len, &out, &out_len, &err));
    sluice_frame_reader r;
    sluice_frame_error fe;
    sluice_frame_status st;
    uint32_t n;
    CHECK(sluice_frame_open(&r, out, out_len, &n, &fe) && sluice_frame_read_status(&r, &st, &fe));
    CHECK(st.kind == SLUICE_STATUS_REJECTED && st.code_len == 17 &&
          memcmp(st.code, "not-an-aggregator", 17) == 0);
    free(in);
    free(out);
    sluice_arena_reset();
    sluice_runtime_reset();
}

static void test_many_keys_in_one_call(void) {
    sluice_runtime_reset();
    enum { N = 3000, KEYS = 500 };
    static kv batch[N];
    static char keys[KEYS][16];
    for (int i = 0; i < KEYS; i++) snprintf(keys[i], sizeof keys[i], "key-%d", i);
    for (int i = 0; i < N; i++) batch[i] = (kv){keys[(i * 7) % KEYS], "{\"amount\":1}"};
    static agg_out o[N];
    CHECK(add_call(&totals, NULL, 0, batch, N, o, NULL));
    int bad = 0;
    for (int i = N - KEYS; i < N; i++) bad += strcmp(o[i].value, "{\"count\":6,\"total\":6}") != 0;
    CHECK(bad == 0);
}

const test aggregate_tests[] = {
    T(test_shortest_text_reads_back_and_is_shortest),
    T(test_decimal_text_is_rounded_like_strtod),
    T(test_decimal_text_near_halfway_points),
    T(test_percent_g_writes_json_numbers),
    T(test_json_validity_follows_the_rfc),
    T(test_json_fields_read_numbers_integers_and_strings),
    T(test_json_quote_escapes_and_reads_back),
    T(test_add_threads_each_key_and_rejections_leave_it),
    T(test_add_checks_what_the_plugin_returns),
    T(test_without_initial_a_key_starts_from_null),
    T(test_a_malformed_frame_fails_the_call_before_any_record),
    T(test_merge_combines_or_refuses),
    T(test_aggregator_init_gets_the_config),
    T(test_a_processor_cannot_set_an_aggregate),
    T(test_many_keys_in_one_call),
};
const size_t aggregate_test_count = sizeof aggregate_tests / sizeof aggregate_tests[0];
