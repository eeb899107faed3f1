/*
 * Native tests of the C SDK: the frame codec and the processor runtime,
 * with the WIT imports stubbed (host_stub.c). Prints `N passed, M failed`
 * and exits non-zero on a failure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "host_stub.h"

static sluice_bytes S(const char *s) { return sluice_bytes_str(s); }

/* ------------------------------------------------------------ helpers */

typedef struct in_rec {
    const char *key;   /* NULL: null */
    const char *value; /* NULL: null */
    bool has_ts;
    int64_t ts;
    size_t nh;
    const char *hn[4];
    const char *hv[4]; /* NULL: null value */
} in_rec;

static sluice_record to_record(const in_rec *r, sluice_header *hs) {
    sluice_record rec = sluice_record_new(S(r->key), S(r->value));
    rec.has_timestamp = r->has_ts;
    rec.timestamp = r->ts;
    for (size_t i = 0; i < r->nh; i++) {
        hs[i].name = r->hn[i];
        hs[i].name_len = strlen(r->hn[i]);
        hs[i].value = S(r->hv[i]);
    }
    rec.headers = hs;
    rec.header_count = r->nh;
    return rec;
}

static uint8_t *input_frame(const in_rec *rs, size_t n, size_t *len) {
    sluice_frame_writer w;
    sluice_frame_writer_init(&w, (uint32_t)n, 0);
    for (size_t i = 0; i < n; i++) {
        sluice_header hs[4];
        sluice_record rec = to_record(&rs[i], hs);
        sluice_frame_write_record(&w, &rec);
    }
    return sluice_frame_finish(&w, len);
}

/* An output frame decoded for checking. */
typedef struct out_status {
    bool rejected;
    char code[64];
    char message[256];
    uint32_t count;
    sluice_frame_record recs[4];
} out_status;

static bool decode_output(const uint8_t *buf, size_t len, out_status *st, uint32_t max,
                          uint32_t *count) {
    sluice_frame_reader r;
    sluice_frame_error e;
    if (!sluice_frame_open(&r, buf, len, count, &e) || *count > max) return false;
    for (uint32_t i = 0; i < *count; i++) {
        sluice_frame_status fs;
        if (!sluice_frame_read_status(&r, &fs, &e)) return false;
        memset(&st[i], 0, sizeof st[i]);
        if (fs.kind == SLUICE_STATUS_REJECTED) {
            st[i].rejected = true;
            snprintf(st[i].code, sizeof st[i].code, "%.*s", (int)fs.code_len, fs.code);
            snprintf(st[i].message, sizeof st[i].message, "%.*s", (int)fs.message_len, fs.message);
            continue;
        }
        st[i].count = fs.count;
        for (uint32_t k = 0; k < fs.count; k++) {
            sluice_frame_record tmp;
            if (!sluice_frame_read_record(&r, k < 4 ? &st[i].recs[k] : &tmp, &e)) return false;
        }
    }
    return sluice_frame_at_end(&r, &e);
}

static sluice_header header_at(const sluice_frame_record *fr, uint32_t i) {
    const uint8_t *p = fr->header_bytes;
    sluice_header h;
    for (uint32_t k = 0; k <= i; k++) sluice_frame_next_header(&p, &h);
    return h;
}

static int calls;
/* The last output frame `run` decoded: its records point into it. */
static uint8_t *last_out;

/* Runs fn over the records; decodes the output into st. */
static bool run(sluice_process_fn fn, const in_rec *rs, size_t n, out_status *st, uint32_t *count,
                uint8_t **raw, size_t *raw_len) {
    size_t len;
    uint8_t *in = input_frame(rs, n, &len);
    uint8_t *out;
    size_t out_len;
    sluice_error err;
    bool ok = sluice_runtime_process(fn, in, len, &out, &out_len, &err);
    if (!ok) {
        fprintf(stderr, "  process failed: %s: %s\n", err.code, err.message);
        free(in);
        sluice_arena_reset();
        return false;
    }
    ok = decode_output(out, out_len, st, 16, count);
    if (raw) {
        *raw = out;
        *raw_len = out_len;
    } else {
        free(last_out);
        last_out = out;
    }
    free(in);
    sluice_arena_reset();
    return ok;
}

/* ------------------------------------------------------------ processors */

static sluice_status passthrough(const sluice_record *in, sluice_emitter *out) {
    calls++;
    sluice_emit(out, in);
    return SLUICE_OK;
}

/* "drop" → nothing; "twice" → two records; "bad" → reject; "late" → emit
 * then reject; "plain" → SLUICE_REJECTED without a reason; else pass. */
static sluice_status mixed(const sluice_record *in, sluice_emitter *out) {
    calls++;
    if (sluice_bytes_eq_str(in->value, "drop")) return SLUICE_OK;
    if (sluice_bytes_eq_str(in->value, "twice")) {
        sluice_record a = sluice_record_new(S("a"), S("1"));
        sluice_record b = *in;
        b.value = S("2");
        b.has_timestamp = false;
        sluice_emit(out, &a);
        sluice_emit(out, &b);
        return SLUICE_OK;
    }
    if (sluice_bytes_eq_str(in->value, "bad"))
        return sluice_rejectf(out, "bad-value", "value %.*s at %" PRId64, (int)in->value.len,
                              (const char *)in->value.data, in->timestamp);
    if (sluice_bytes_eq_str(in->value, "late")) {
        sluice_emit(out, in);
        return sluice_reject(out, "late", "emitted, then refused");
    }
    if (sluice_bytes_eq_str(in->value, "plain")) return SLUICE_REJECTED;
    if (sluice_bytes_eq_str(in->value, "utf8")) return sluice_reject(out, "x\xff", "caf\xc3\xa9 \xe2\x82");
    sluice_emit(out, in);
    return SLUICE_OK;
}

static sluice_status headers_proc(const sluice_record *in, sluice_emitter *out) {
    calls++;
    sluice_record rec = *in;
    const sluice_header *before = in->headers;
    sluice_record_set_header(&rec, "h", S("new"));
    sluice_record_set_header(&rec, "added", S("yes"));
    sluice_record_add_header(&rec, "dup", S("1"));
    sluice_record_add_header(&rec, "dup", S("2"));
    sluice_record_remove_header(&rec, "gone");
    CHECK(in->headers == before); /* the input is left alone */
    CHECK(sluice_bytes_eq_str(sluice_record_header_value(&rec, "dup"), "2"));
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

static sluice_status bad_name(const sluice_record *in, sluice_emitter *out) {
    sluice_record rec = *in;
    sluice_record_add_header(&rec, "ok\xc0", S("v"));
    sluice_emit(out, &rec);
    return SLUICE_OK;
}

/* ------------------------------------------------------------ tests */

static void test_frame_round_trip_keeps_nulls_and_headers(void) {
    in_rec rs[] = {
        {NULL, "v1", true, -5, 0, {0}, {0}},
        {"k2", NULL, false, 0, 2, {"a", "b"}, {"1", NULL}},
        {"", "", true, INT64_MAX, 1, {""}, {""}},
    };
    size_t len;
    uint8_t *buf = input_frame(rs, 3, &len);
    sluice_frame_reader r;
    sluice_frame_error e;
    sluice_frame_record fr;
    uint32_t n;
    CHECK(sluice_frame_open(&r, buf, len, &n, &e) && n == 3);
    CHECK(sluice_frame_read_record(&r, &fr, &e));
    CHECK(sluice_bytes_is_null(fr.key) && sluice_bytes_eq_str(fr.value, "v1"));
    CHECK(fr.has_timestamp && fr.timestamp == -5 && fr.header_count == 0);
    CHECK(sluice_frame_read_record(&r, &fr, &e));
    CHECK(sluice_bytes_eq_str(fr.key, "k2") && sluice_bytes_is_null(fr.value));
    CHECK(!fr.has_timestamp && fr.timestamp == 0 && fr.header_count == 2);
    sluice_header h0 = header_at(&fr, 0), h1 = header_at(&fr, 1);
    CHECK_STR(h0.name, h0.name_len, "a");
    CHECK(sluice_bytes_eq_str(h0.value, "1"));
    CHECK_STR(h1.name, h1.name_len, "b");
    CHECK(sluice_bytes_is_null(h1.value));
    CHECK(sluice_frame_read_record(&r, &fr, &e));
    CHECK(!sluice_bytes_is_null(fr.key) && fr.key.len == 0);
    CHECK(!sluice_bytes_is_null(fr.value) && fr.value.len == 0);
    CHECK(fr.timestamp == INT64_MAX && fr.header_count == 1);
    h0 = header_at(&fr, 0);
    CHECK(h0.name_len == 0 && !sluice_bytes_is_null(h0.value) && h0.value.len == 0);
    CHECK(sluice_frame_at_end(&r, &e));
    free(buf);
}

static void test_frame_bytes_match_the_spec(void) {
    in_rec r = {"k", NULL, true, 0x0102, 1, {"h"}, {"v"}};
    size_t len;
    uint8_t *buf = input_frame(&r, 1, &len);
    static const uint8_t want[] = {
        1, 1, 0, 0, 0,                    /* version, count */
        0x02, 0x01, 0, 0, 0, 0, 0, 0, 1,  /* timestamp, flags */
        1, 0, 0, 0, 'k',                  /* key */
        0xff, 0xff, 0xff, 0xff,           /* null value */
        1, 0, 0, 0,                       /* one header */
        1, 0, 0, 0, 'h', 1, 0, 0, 0, 'v', /* name, value */
    };
    CHECK(len == sizeof want && memcmp(buf, want, len) == 0);
    free(buf);
}

static void test_empty_batch_gives_an_empty_output_frame(void) {
    static const uint8_t in[] = {1, 0, 0, 0, 0};
    uint8_t *out;
    size_t len;
    sluice_error err;
    calls = 0;
    CHECK(sluice_runtime_process(passthrough, in, sizeof in, &out, &len, &err));
    CHECK(len == 5 && memcmp(out, in, 5) == 0 && calls == 0);
    free(out);
    sluice_arena_reset();
}

static void test_passthrough_writes_the_input_record_bytes_back(void) {
    in_rec rs[] = {
        {"k", "v", true, 1767225600000, 2, {"card", "x"}, {"4111", NULL}},
        {NULL, NULL, false, 0, 0, {0}, {0}},
    };
    size_t in_len, out_len;
    uint8_t *in = input_frame(rs, 2, &in_len), *out;
    out_status st[2];
    uint32_t n;
    CHECK(run(passthrough, rs, 2, st, &n, &out, &out_len));
    /* out = version, count, then per record: status 0, count 1, the record */
    CHECK(n == 2 && out_len == in_len + 2 * 5);
    CHECK(!st[0].rejected && st[0].count == 1 && !st[1].rejected && st[1].count == 1);
    /* Record 1 is 21 bytes; record 0 starts at 5 in the input, 10 in the output. */
    CHECK(memcmp(out + 10, in + 5, in_len - 5 - 21) == 0);
    CHECK(memcmp(out + out_len - 21, in + in_len - 21, 21) == 0);
    CHECK(sluice_bytes_is_null(st[1].recs[0].key) && sluice_bytes_is_null(st[1].recs[0].value));
    CHECK(!st[1].recs[0].has_timestamp);
    free(in);
    free(out);
}

static void test_filter_flat_map_and_rejections_keep_input_order(void) {
    in_rec rs[] = {
        {"k0", "pass", true, 10, 0, {0}, {0}}, {"k1", "drop", true, 11, 0, {0}, {0}},
        {"k2", "twice", true, 12, 0, {0}, {0}}, {"k3", "bad", true, 13, 0, {0}, {0}},
        {"k4", "late", true, 14, 0, {0}, {0}}, {"k5", "plain", true, 15, 0, {0}, {0}},
        {"k6", "pass", true, 16, 0, {0}, {0}},
    };
    out_status st[7];
    uint32_t n;
    calls = 0;
    CHECK(run(mixed, rs, 7, st, &n, NULL, NULL));
    CHECK(n == 7 && calls == 7);
    CHECK(!st[0].rejected && st[0].count == 1 && sluice_bytes_eq_str(st[0].recs[0].key, "k0"));
    CHECK(!st[1].rejected && st[1].count == 0);
    CHECK(!st[2].rejected && st[2].count == 2);
    CHECK(sluice_bytes_eq_str(st[2].recs[0].key, "a") && !st[2].recs[0].has_timestamp);
    CHECK(sluice_bytes_eq_str(st[2].recs[1].key, "k2") && sluice_bytes_eq_str(st[2].recs[1].value, "2"));
    CHECK(!st[2].recs[1].has_timestamp);
    CHECK(st[3].rejected);
    CHECK_STR(st[3].code, strlen(st[3].code), "bad-value");
    CHECK_STR(st[3].message, strlen(st[3].message), "value bad at 13");
    CHECK(st[4].rejected && strcmp(st[4].code, "late") == 0);
    CHECK(st[5].rejected && strcmp(st[5].code, "rejected") == 0);
    CHECK(!st[6].rejected && st[6].count == 1 && st[6].recs[0].timestamp == 16);
}

static void test_rejection_text_is_made_valid_utf8(void) {
    in_rec r = {"k", "utf8", false, 0, 0, {0}, {0}};
    out_status st[1];
    uint32_t n;
    CHECK(run(mixed, &r, 1, st, &n, NULL, NULL));
    CHECK(st[0].rejected);
    CHECK_STR(st[0].code, strlen(st[0].code), "x?");
    CHECK_STR(st[0].message, strlen(st[0].message), "caf\xc3\xa9 ??");
}

static void test_header_helpers_copy_on_write(void) {
    in_rec r = {"k", "v", true, 1, 4, {"h", "gone", "h", "keep"}, {"1", "x", "2", NULL}};
    out_status st[1];
    uint32_t n;
    calls = 0;
    CHECK(run(headers_proc, &r, 1, st, &n, NULL, NULL));
    CHECK(calls == 1 && !st[0].rejected && st[0].count == 1);
    sluice_frame_record *o = &st[0].recs[0];
    CHECK(o->header_count == 6);
    const char *names[] = {"h", "h", "keep", "added", "dup", "dup"};
    const char *values[] = {"new", "new", NULL, "yes", "1", "2"};
    for (uint32_t i = 0; i < 6 && i < o->header_count; i++) {
        sluice_header h = header_at(o, i);
        CHECK_STR(h.name, h.name_len, names[i]);
        if (values[i]) {
            CHECK(sluice_bytes_eq_str(h.value, values[i]));
        } else {
            CHECK(sluice_bytes_is_null(h.value));
        }
    }
}

static void test_header_lookup_finds_the_last(void) {
    sluice_header hs[3] = {{"a", 1, {(const uint8_t *)"1", 1}},
                           {"b", 1, {NULL, 0}},
                           {"a", 1, {(const uint8_t *)"2", 1}}};
    sluice_record r = sluice_record_new(SLUICE_NULL, SLUICE_NULL);
    r.headers = hs;
    r.header_count = 3;
    CHECK(sluice_record_header(&r, "a") == &hs[2]);
    CHECK(sluice_record_header(&r, "b") == &hs[1]);
    CHECK(sluice_bytes_is_null(sluice_record_header_value(&r, "b")));
    CHECK(sluice_record_header(&r, "c") == NULL);
    CHECK(sluice_header_is(&hs[0], "a") && !sluice_header_is(&hs[0], "ab"));
    CHECK(sluice_record_remove_header(&r, "a") == 2 && r.header_count == 1);
    CHECK(sluice_record_remove_header(&r, "zzz") == 0);
    sluice_arena_reset();
}

static void test_invalid_output_header_name_rejects_the_record(void) {
    in_rec r = {"k", "v", false, 0, 0, {0}, {0}};
    out_status st[1];
    uint32_t n;
    CHECK(run(bad_name, &r, 1, st, &n, NULL, NULL));
    CHECK(st[0].rejected && strcmp(st[0].code, "bad-header-name") == 0);
}

static bool process_fails(const uint8_t *buf, size_t len, const char *message) {
    uint8_t *out = (uint8_t *)1;
    size_t out_len;
    sluice_error err = {NULL, NULL};
    calls = 0;
    bool ok = sluice_runtime_process(passthrough, buf, len, &out, &out_len, &err);
    bool good = !ok && out == NULL && calls == 0 && err.code && strcmp(err.code, "bad-frame") == 0;
    if (good && message && strcmp(err.message, message) != 0) {
        fprintf(stderr, "  message \"%s\", want \"%s\"\n", err.message, message);
        good = false;
    }
    sluice_arena_reset();
    return good;
}

static void test_malformed_frames_fail_the_call_before_any_record(void) {
    CHECK(process_fails(NULL, 0, "frame truncated at byte 0"));
    static const uint8_t v9[] = {9, 0, 0, 0, 0};
    CHECK(process_fails(v9, sizeof v9, "frame version 9 is not supported (expected 1)"));
    static const uint8_t short_count[] = {1, 0, 0};
    CHECK(process_fails(short_count, sizeof short_count, "frame truncated at byte 1"));
    in_rec rs[] = {{"key", "value", true, 1, 1, {"h"}, {"x"}}, {"k", "v", false, 0, 0, {0}, {0}}};
    size_t len;
    uint8_t *buf = input_frame(rs, 2, &len);
    /* Cut anywhere: the first record is never processed. */
    int bad = 0;
    for (size_t cut = 5; cut < len; cut++)
        if (!process_fails(buf, cut, NULL)) bad++;
    CHECK(bad == 0);
    /* More records announced than present. */
    buf[1] = 3;
    CHECK(process_fails(buf, len, NULL));
    buf[1] = 2;
    /* Trailing bytes. */
    uint8_t *longer = malloc(len + 2);
    memcpy(longer, buf, len);
    longer[len] = longer[len + 1] = 0;
    CHECK(process_fails(longer, len + 2, NULL));
    free(longer);
    /* An invalid UTF-8 header name (the name `h` sits at byte 38). */
    CHECK(buf[38] == 'h');
    buf[38] = 0xff;
    CHECK(process_fails(buf, len, "string at byte 34 is not valid UTF-8"));
    /* A length that runs past the end (the key length at byte 14). */
    buf[38] = 'h';
    buf[14] = 0xfe;
    buf[15] = 0xff;
    buf[16] = 0xff;
    buf[17] = 0xff;
    CHECK(process_fails(buf, len, "frame truncated at byte 18"));
    free(buf);
}

static void test_output_reader_refuses_bad_statuses(void) {
    static const uint8_t bad[] = {1, 1, 0, 0, 0, 7};
    sluice_frame_reader r;
    sluice_frame_error e;
    sluice_frame_status fs;
    uint32_t n;
    char msg[64];
    CHECK(sluice_frame_open(&r, bad, sizeof bad, &n, &e) && n == 1);
    CHECK(!sluice_frame_read_status(&r, &fs, &e));
    sluice_frame_error_message(&e, msg, sizeof msg);
    CHECK(strcmp(msg, "unknown record status 7") == 0);
}

static void test_a_large_batch_grows_the_output(void) {
    enum { N = 2000 };
    static in_rec rs[N];
    static char vals[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(vals[i], sizeof vals[i], "value-%d", i);
        rs[i] = (in_rec){"k", vals[i], true, i, 1, {"n"}, {vals[i]}};
    }
    size_t len, out_len;
    uint8_t *in = input_frame(rs, N, &len), *out;
    sluice_error err;
    calls = 0;
    CHECK(sluice_runtime_process(mixed, in, len, &out, &out_len, &err));
    CHECK(calls == N);
    sluice_frame_reader r;
    sluice_frame_error e;
    uint32_t n;
    CHECK(sluice_frame_open(&r, out, out_len, &n, &e) && n == N);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        sluice_frame_status fs;
        sluice_frame_record fr;
        if (!sluice_frame_read_status(&r, &fs, &e) || fs.kind != 0 || fs.count != 1) break;
        if (!sluice_frame_read_record(&r, &fr, &e)) break;
        ok += sluice_bytes_eq_str(fr.value, vals[i]) && fr.timestamp == i;
    }
    CHECK(ok == N && sluice_frame_at_end(&r, &e));
    free(in);
    free(out);
    sluice_arena_reset();
}

/* ------------------------------------------------------------ init/config */

static sluice_init_fn test_init_fn;
static int init_calls;

sluice_status sluice_processor_init_entry(const sluice_config *config) {
    init_calls++;
    return test_init_fn ? test_init_fn(config) : SLUICE_OK;
}

static const char *kept_header;
static int64_t kept_min;

static sluice_status init_checks(const sluice_config *c) {
    kept_header = sluice_config_get_or(c, "header", "card");
    if (!sluice_config_int(c, "min", 5, &kept_min))
        return sluice_init_error("bad-config", "config `min` = %s is not an integer",
                                 sluice_config_get(c, "min"));
    return SLUICE_OK;
}

static sluice_status init_plain_failure(const sluice_config *c) {
    (void)c;
    return SLUICE_REJECTED;
}

static void test_init_keeps_config_and_reports_errors(void) {
    sluice_runtime_reset();
    test_init_fn = init_checks;
    sluice_kv_in cfg[] = {{"header", 6, "pan", 3}, {"min", 3, "42", 2}, {"header", 6, "acct", 4}};
    sluice_error err;
    CHECK(sluice_runtime_init(cfg, 3, &err));
    sluice_arena_reset();
    CHECK(strcmp(kept_header, "acct") == 0 && kept_min == 42); /* the last one wins */
    const sluice_config *c = sluice_config_current();
    CHECK(sluice_config_count(c) == 3);
    const char *k, *v;
    sluice_config_entry(c, 0, &k, &v);
    CHECK(strcmp(k, "header") == 0 && strcmp(v, "pan") == 0);
    CHECK(sluice_config_get(c, "absent") == NULL);
    int64_t x;
    CHECK(sluice_config_int(c, "absent", 7, &x) && x == 7);

    sluice_kv_in bad[] = {{"min", 3, "12x", 3}};
    CHECK(!sluice_runtime_init(bad, 1, &err));
    CHECK(strcmp(err.code, "bad-config") == 0);
    CHECK(strcmp(err.message, "config `min` = 12x is not an integer") == 0);
    sluice_arena_reset();

    test_init_fn = init_plain_failure;
    CHECK(!sluice_runtime_init(NULL, 0, &err) && strcmp(err.code, "init-failed") == 0);
    /* Not initialized: process retries init with the config and fails. */
    static const uint8_t empty[] = {1, 0, 0, 0, 0};
    uint8_t *out;
    size_t len;
    CHECK(!sluice_runtime_process(passthrough, empty, 5, &out, &len, &err));
    CHECK(strcmp(err.code, "init-failed") == 0);
    sluice_arena_reset();

    /* Never initialized: the first process runs init with an empty config. */
    sluice_runtime_reset();
    test_init_fn = init_checks;
    init_calls = 0;
    CHECK(sluice_runtime_process(passthrough, empty, 5, &out, &len, &err));
    free(out);
    CHECK(init_calls == 1 && strcmp(kept_header, "card") == 0 && kept_min == 5);
    CHECK(sluice_runtime_process(passthrough, empty, 5, &out, &len, &err));
    free(out);
    CHECK(init_calls == 1);
    sluice_arena_reset();
    test_init_fn = NULL;
}

static void test_config_int_parses_range_and_sign(void) {
    sluice_runtime_reset();
    sluice_kv_in cfg[] = {{"a", 1, "-9223372036854775808", 20}, {"b", 1, "9223372036854775808", 19},
                          {"c", 1, "+17", 3}, {"d", 1, "", 0}, {"e", 1, "-", 1}};
    sluice_error err;
    CHECK(sluice_runtime_init(cfg, 5, &err));
    const sluice_config *c = sluice_config_current();
    int64_t v;
    CHECK(sluice_config_int(c, "a", 0, &v) && v == INT64_MIN);
    CHECK(!sluice_config_int(c, "b", 3, &v) && v == 3);
    CHECK(sluice_config_int(c, "c", 0, &v) && v == 17);
    CHECK(!sluice_config_int(c, "d", 0, &v));
    CHECK(!sluice_config_int(c, "e", 0, &v));
    sluice_runtime_reset();
}

/* ------------------------------------------------------------ text, log */

static void test_fmt_formats_without_stdio(void) {
    char buf[128];
    size_t n = sluice_fmt(buf, sizeof buf, "%d|%5d|%-4d|%05d|%u|%x|%X|%c|%s|%.3s|%%|%zu|%lld|%i",
                          -42, 7, 3, -12, 4000000000u, 255u, 255u, 'z', "str", "abcdef", (size_t)9,
                          (long long)INT64_MIN, 0);
    const char *want = "-42|    7|3   |-0012|4000000000|ff|FF|z|str|abc|%|9|-9223372036854775808|0";
    CHECK(strcmp(buf, want) == 0);
    CHECK(n == strlen(want));
    char tiny[4];
    CHECK(sluice_fmt(tiny, sizeof tiny, "%s", "hello") == 5 && strcmp(tiny, "hel") == 0);
    CHECK(sluice_fmt(NULL, 0, "%d", 12345) == 5);
    const char *b = "bytes!";
    const char *volatile nothing = NULL;
    sluice_fmt(buf, sizeof buf, "[%.*s][%6s][%-6s][%s]", 5, b, "ab", "ab", nothing);
    CHECK(strcmp(buf, "[bytes][    ab][ab    ][(null)]") == 0);
    sluice_fmt(buf, sizeof buf, "%hhd %hu %ld %jd %td %" PRIu64, (signed char)-1,
               (unsigned short)65535, -1L, (intmax_t)5, (ptrdiff_t)-3, UINT64_MAX);
    CHECK(strcmp(buf, "-1 65535 -1 5 -3 18446744073709551615") == 0);
    char *a = sluice_afmt("%s-%d", "x", 1);
    CHECK(strcmp(a, "x-1") == 0);
    sluice_arena_reset();
}

static void test_log_sends_formatted_valid_utf8_lines(void) {
    stub_reset();
    sluice_log(SLUICE_INFO, "hello %s %d", "world", 3);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    sluice_log(SLUICE_WARN, "%s!", big);
    sluice_log(SLUICE_ERROR, "bad \xff byte");
    CHECK(stub_log_count == 3);
    CHECK(stub_logs[0].level == SLUICE_INFO && strcmp(stub_logs[0].text, "hello world 3") == 0);
    CHECK(stub_logs[1].level == SLUICE_WARN && stub_logs[1].len == 600 && stub_logs[1].text[599] == '!');
    CHECK(strcmp(stub_logs[2].text, "bad ? byte") == 0);
    stub_reset();
    sluice_arena_reset();
}

/* ------------------------------------------------------------ state */

static sluice_status dedup(const sluice_record *in, sluice_emitter *out) {
    sluice_bytes seen;
    int found = sluice_state_get("seen", in->key, &seen);
    if (found < 0) return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
    if (found) return SLUICE_OK;
    if (sluice_state_put("seen", in->key, S("1")) < 0)
        return sluice_reject(out, sluice_last_error()->code, sluice_last_error()->message);
    sluice_emit(out, in);
    return SLUICE_OK;
}

static void test_state_wrappers(void) {
    stub_reset();
    in_rec rs[] = {{"a", "1", false, 0, 0, {0}, {0}}, {"b", "2", false, 0, 0, {0}, {0}},
                   {"a", "3", false, 0, 0, {0}, {0}}};
    out_status st[3];
    uint32_t n;
    CHECK(run(dedup, rs, 3, st, &n, NULL, NULL));
    CHECK(st[0].count == 1 && st[1].count == 1 && st[2].count == 0 && !st[2].rejected);

    sluice_bytes v;
    CHECK(sluice_state_put("seen", S("c"), S("")) == 0);
    CHECK(sluice_state_get("seen", S("c"), &v) == 1 && !sluice_bytes_is_null(v) && v.len == 0);
    CHECK(sluice_state_delete("seen", S("a")) == 0);
    CHECK(sluice_state_get("seen", S("a"), &v) == 0 && sluice_bytes_is_null(v));
    CHECK(sluice_state_put("seen", S("d"), S("4")) == 0);
    const sluice_entry *es;
    long got = sluice_state_range("seen", SLUICE_NULL, SLUICE_NULL, 10, &es);
    CHECK(got == 3);
    if (got == 3)
        CHECK(sluice_bytes_eq_str(es[0].key, "b") && sluice_bytes_eq_str(es[1].key, "c") &&
              sluice_bytes_eq_str(es[2].key, "d") && sluice_bytes_eq_str(es[2].value, "4"));
    got = sluice_state_range("seen", S("c"), S("d"), 10, &es);
    CHECK(got == 1 && sluice_bytes_eq_str(es[0].key, "c"));
    CHECK(sluice_state_range("seen", SLUICE_NULL, SLUICE_NULL, 2, &es) == 2);

    CHECK(sluice_state_get("other", S("a"), &v) == -1);
    CHECK(strcmp(sluice_last_error()->code, "no-store") == 0);
    CHECK(strcmp(sluice_last_error()->message, "store `other` is not declared") == 0);

    stub_state_fail = true;
    out_status st2[1];
    CHECK(run(dedup, rs, 1, st2, &n, NULL, NULL));
    CHECK(st2[0].rejected && strcmp(st2[0].code, "state-failed") == 0);
    stub_reset();
    sluice_arena_reset();
}

/* ------------------------------------------------------------ arena, bytes */

static void test_arena_and_bytes_helpers(void) {
    for (int round = 0; round < 3; round++) {
        uint8_t *big = sluice_alloc(100000);
        memset(big, 1, 100000);
        for (int i = 0; i < 5000; i++) {
            uint8_t *p = sluice_alloc((size_t)i % 100 + 1);
            CHECK(((uintptr_t)p & 15) == 0);
            p[0] = (uint8_t)i;
        }
        CHECK(big[99999] == 1);
        sluice_arena_reset();
    }
    CHECK(sluice_bytes_eq(SLUICE_NULL, SLUICE_NULL));
    CHECK(!sluice_bytes_eq(SLUICE_NULL, S("")));
    CHECK(sluice_bytes_eq(S(""), sluice_bytes_of(NULL, 0)));
    CHECK(!sluice_bytes_eq_str(SLUICE_NULL, ""));
    sluice_bytes c = sluice_bytes_copy(S("abc"));
    CHECK(sluice_bytes_eq_str(c, "abc"));
    CHECK(sluice_bytes_is_null(sluice_bytes_copy(SLUICE_NULL)));
    char *cs = sluice_bytes_cstr(sluice_bytes_of("ab\0c", 2));
    CHECK(strcmp(cs, "ab") == 0);
    CHECK(sluice_bytes_cstr(SLUICE_NULL) == NULL);
    sluice_arena_reset();
}

static void test_utf8_validation_follows_rust(void) {
    CHECK(sluice_utf8_valid((const uint8_t *)"", 0));
    CHECK(sluice_utf8_valid((const uint8_t *)"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12));
    CHECK(!sluice_utf8_valid((const uint8_t *)"\xc0\x80", 2));     /* overlong */
    CHECK(!sluice_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* surrogate */
    CHECK(!sluice_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!sluice_utf8_valid((const uint8_t *)"\xe2\x82", 2));     /* truncated */
    CHECK(!sluice_utf8_valid((const uint8_t *)"\x80", 1));
}

/* ------------------------------------------------------------ main */

int checks_failed;

void run_tests(const test *tests, size_t n, int *passed, int *failed) {
    for (size_t i = 0; i < n; i++) {
        int before = checks_failed;
        tests[i].fn();
        if (checks_failed == before) {
            (*passed)++;
            printf("ok   %s\n", tests[i].name);
        } else {
            (*failed)++;
            printf("FAIL %s\n", tests[i].name);
        }
    }
}

int main(void) {
    static const test tests[] = {
        T(test_frame_round_trip_keeps_nulls_and_headers),
        T(test_frame_bytes_match_the_spec),
        T(test_empty_batch_gives_an_empty_output_frame),
        T(test_passthrough_writes_the_input_record_bytes_back),
        T(test_filter_flat_map_and_rejections_keep_input_order),
        T(test_rejection_text_is_made_valid_utf8),
        T(test_header_helpers_copy_on_write),
        T(test_header_lookup_finds_the_last),
        T(test_invalid_output_header_name_rejects_the_record),
        T(test_malformed_frames_fail_the_call_before_any_record),
        T(test_output_reader_refuses_bad_statuses),
        T(test_a_large_batch_grows_the_output),
        T(test_init_keeps_config_and_reports_errors),
        T(test_config_int_parses_range_and_sign),
        T(test_fmt_formats_without_stdio),
        T(test_log_sends_formatted_valid_utf8_lines),
        T(test_state_wrappers),
        T(test_arena_and_bytes_helpers),
        T(test_utf8_validation_follows_rust),
    };
    int passed = 0, failed = 0;
    run_tests(tests, sizeof tests / sizeof tests[0], &passed, &failed);
    run_tests(aggregate_tests, aggregate_test_count, &passed, &failed);
    run_tests(frame_vector_tests, frame_vector_test_count, &passed, &failed);
    sluice_runtime_reset();
    free(last_out);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
