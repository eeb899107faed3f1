/*
 * The native test runner behind sluice_testing.h: the host's imports stood
 * in for (log to standard error, stores in memory), the plugin run through
 * frames as the host runs it, checks, and main(). Not part of a plugin's
 * wasm build.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_internal.h"
#include "sluice_testing.h"

/* What the plugin defines: one of the two (weak, so either may be
 * missing). */
extern const sluice_aggregator_def sluice_aggregator __attribute__((weak));
sluice_status sluice_processor_entry(const sluice_record *in, sluice_emitter *out)
    __attribute__((weak));

/* ------------------------------------------------------------ memory of one test */

static void **owned;
static size_t owned_n, owned_cap;

static void *keep(void *p) {
    if (!p) abort();
    if (owned_n == owned_cap) {
        owned_cap = owned_cap ? owned_cap * 2 : 64;
        owned = realloc(owned, owned_cap * sizeof *owned);
        if (!owned) abort();
    }
    owned[owned_n++] = p;
    return p;
}

static void *test_alloc(size_t n) { return keep(calloc(1, n ? n : 1)); }

static char *test_strn(const void *s, size_t n) {
    char *p = test_alloc(n + 1);
    if (n) memcpy(p, s, n);
    return p;
}

static void free_owned(void) {
    for (size_t i = 0; i < owned_n; i++) free(owned[i]);
    owned_n = 0;
}

/* ------------------------------------------------------------ host imports */

static const char *const LEVELS[] = {"trace", "debug", "info", "warn", "error"};

void sluice_host_log(sluice_level level, const char *msg, size_t len) {
    fprintf(stdout, "  [%s] %.*s\n", LEVELS[level <= SLUICE_ERROR ? level : SLUICE_ERROR], (int)len,
            msg);
}

/* Every store the plugin names exists (the pipeline file is not read). */
typedef struct entry {
    char *store;
    sluice_bytes key;
    sluice_bytes value;
} entry;

static entry *entries;
static size_t entry_n;

static void clear_state(void) {
    for (size_t i = 0; i < entry_n; i++) {
        free(entries[i].store);
        free((void *)entries[i].key.data);
        free((void *)entries[i].value.data);
    }
    free(entries);
    entries = NULL;
    entry_n = 0;
}

static int cmp_bytes(sluice_bytes a, sluice_bytes b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static sluice_bytes heap_bytes(sluice_bytes b) {
    uint8_t *p = malloc(b.len ? b.len : 1);
    if (!p) abort();
    if (b.len) memcpy(p, b.data, b.len);
    return sluice_bytes_of(p, b.len);
}

static entry *find(const char *store, size_t store_len, sluice_bytes key, size_t *at) {
    for (size_t i = 0; i < entry_n; i++) {
        if (strlen(entries[i].store) == store_len && memcmp(entries[i].store, store, store_len) == 0 &&
            cmp_bytes(entries[i].key, key) == 0) {
            if (at) *at = i;
            return &entries[i];
        }
    }
    return NULL;
}

int sluice_host_state_get(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes *value, sluice_error *err) {
    (void)err;
    entry *e = find(store, store_len, key, NULL);
    if (!e) return 0;
    *value = sluice_bytes_copy(e->value);
    return 1;
}

int sluice_host_state_put(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes value, sluice_error *err) {
    (void)err;
    entry *e = find(store, store_len, key, NULL);
    if (e) {
        free((void *)e->value.data);
        e->value = heap_bytes(value);
        return 0;
    }
    entries = realloc(entries, (entry_n + 1) * sizeof *entries);
    if (!entries) abort();
    e = &entries[entry_n++];
    e->store = malloc(store_len + 1);
    if (!e->store) abort();
    memcpy(e->store, store, store_len);
    e->store[store_len] = 0;
    e->key = heap_bytes(key);
    e->value = heap_bytes(value);
    return 0;
}

int sluice_host_state_delete(const char *store, size_t store_len, sluice_bytes key,
                             sluice_error *err) {
    (void)err;
    size_t at;
    entry *e = find(store, store_len, key, &at);
    if (e) {
        free(e->store);
        free((void *)e->key.data);
        free((void *)e->value.data);
        entries[at] = entries[--entry_n];
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b) {
    return cmp_bytes(((const sluice_entry *)a)->key, ((const sluice_entry *)b)->key);
}

long sluice_host_state_range(const char *store, size_t store_len, sluice_bytes start,
                             sluice_bytes end, uint32_t limit, const sluice_entry **out,
                             sluice_error *err) {
    (void)err;
    sluice_entry *got = sluice_alloc((entry_n + 1) * sizeof *got);
    size_t n = 0;
    for (size_t i = 0; i < entry_n; i++) {
        entry *e = &entries[i];
        if (strlen(e->store) != store_len || memcmp(e->store, store, store_len) != 0) continue;
        if (start.data && cmp_bytes(e->key, start) < 0) continue;
        if (end.data && cmp_bytes(e->key, end) >= 0) continue;
        got[n].key = sluice_bytes_copy(e->key);
        got[n].value = sluice_bytes_copy(e->value);
        n++;
    }
    qsort(got, n, sizeof *got, cmp_entry);
    if (n > limit) n = limit;
    *out = got;
    return (long)n;
}

/* ------------------------------------------------------------ checks */

static const char *current_test;
static int current_failures;

static void failed_at(const char *file, int line) {
    current_failures++;
    fprintf(stdout, "  %s:%d: ", file, line);
}

bool sluice_test_check(bool ok, const char *what, const char *file, int line) {
    if (ok) return true;
    failed_at(file, line);
    fprintf(stdout, "check failed: %s\n", what);
    return false;
}

bool sluice_test_check_str(const char *got, const char *want, const char *what, const char *file,
                           int line) {
    if (got == want || (got && want && strcmp(got, want) == 0)) return true;
    failed_at(file, line);
    fprintf(stdout, "%s is %s%s%s, want %s%s%s\n", what, got ? "\"" : "", got ? got : "NULL",
            got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
    return false;
}

bool sluice_test_check_bytes(sluice_bytes got, const char *want, const char *what,
                             const char *file, int line) {
    bool ok = want ? sluice_bytes_eq_str(got, want) : sluice_bytes_is_null(got);
    if (ok) return true;
    failed_at(file, line);
    if (got.data)
        fprintf(stdout, "%s is \"%.*s\"", what, (int)got.len, (const char *)got.data);
    else
        fprintf(stdout, "%s is null", what);
    fprintf(stdout, want ? ", want \"%s\"\n" : ", want null%s\n", want ? want : "");
    return false;
}

/* ------------------------------------------------------------ running the plugin */

sluice_record sluice_test_record(const char *key, const char *value) {
    return sluice_record_new(sluice_bytes_str(key), sluice_bytes_str(value));
}

static bool is_aggregator(void) { return &sluice_aggregator != NULL; }

static bool copy_error(bool ok, const sluice_error *e, sluice_error *out) {
    if (!ok && out) {
        out->code = test_strn(e->code, strlen(e->code));
        out->message = test_strn(e->message, strlen(e->message));
    }
    return ok;
}

bool sluice_test_init(const char *const *config, sluice_error *err) {
    size_t n = 0;
    while (config && config[n] && config[n + 1]) n += 2;
    sluice_kv_in *kv = test_alloc((n / 2 + 1) * sizeof *kv);
    for (size_t i = 0; i < n / 2; i++) {
        kv[i].key = config[2 * i];
        kv[i].key_len = strlen(config[2 * i]);
        kv[i].value = config[2 * i + 1];
        kv[i].value_len = strlen(config[2 * i + 1]);
    }
    sluice_error e = {"", ""};
    bool ok = is_aggregator() ? sluice_aggregator_init(&sluice_aggregator, kv, n / 2, &e)
                              : sluice_runtime_init(kv, n / 2, &e);
    ok = copy_error(ok, &e, err);
    sluice_arena_reset();
    return ok;
}

static uint8_t *encode(const sluice_record *records, size_t n, size_t *len) {
    sluice_frame_writer w;
    sluice_frame_writer_init(&w, (uint32_t)n, 64);
    for (size_t i = 0; i < n; i++) sluice_frame_write_record(&w, &records[i]);
    return sluice_frame_finish(&w, len);
}

static sluice_bytes test_bytes(sluice_bytes b) {
    return b.data ? sluice_bytes_of(test_strn(b.data, b.len), b.len) : SLUICE_NULL;
}

/* Every result rejected with this error (the call itself failed). */
static sluice_test_result *all_failed(size_t n, const char *code, const char *message) {
    sluice_test_result *rs = test_alloc((n ? n : 1) * sizeof *rs);
    for (size_t i = 0; i < n; i++) {
        rs[i].rejected = true;
        rs[i].code = test_strn(code, strlen(code));
        rs[i].message = test_strn(message, strlen(message));
    }
    current_failures++;
    printf("  the call failed: %s: %s\n", code, message);
    return rs;
}

static sluice_test_result *decode(const uint8_t *buf, size_t len, size_t n, bool aggregates) {
    sluice_test_result *rs = test_alloc((n ? n : 1) * sizeof *rs);
    sluice_frame_reader r;
    sluice_frame_error fe;
    uint32_t count;
    char msg[128];
    if (!sluice_frame_open(&r, buf, len, &count, &fe) || count != n) {
        sluice_frame_error_message(&fe, msg, sizeof msg);
        return all_failed(n, "bad-output", count != n ? "wrong status count" : msg);
    }
    for (size_t i = 0; i < n; i++) {
        sluice_frame_status st;
        if (!sluice_frame_read_status(&r, &st, &fe)) {
            sluice_frame_error_message(&fe, msg, sizeof msg);
            return all_failed(n, "bad-output", msg);
        }
        if (st.kind == SLUICE_STATUS_REJECTED) {
            rs[i].rejected = true;
            rs[i].code = test_strn(st.code, st.code_len);
            rs[i].message = test_strn(st.message, st.message_len);
            continue;
        }
        sluice_record *recs = test_alloc((st.count ? st.count : 1) * sizeof *recs);
        for (uint32_t k = 0; k < st.count; k++) {
            sluice_frame_record fr;
            if (!sluice_frame_read_record(&r, &fr, &fe)) {
                sluice_frame_error_message(&fe, msg, sizeof msg);
                return all_failed(n, "bad-output", msg);
            }
            recs[k] = sluice_record_new(test_bytes(fr.key), test_bytes(fr.value));
            recs[k].timestamp = fr.timestamp;
            recs[k].has_timestamp = fr.has_timestamp;
            sluice_header *hs = test_alloc((fr.header_count ? fr.header_count : 1) * sizeof *hs);
            const uint8_t *p = fr.header_bytes;
            for (uint32_t h = 0; h < fr.header_count; h++) {
                sluice_frame_next_header(&p, &hs[h]);
                hs[h].name = test_strn(hs[h].name, hs[h].name_len);
                hs[h].value = test_bytes(hs[h].value);
            }
            recs[k].headers = hs;
            recs[k].header_count = fr.header_count;
        }
        rs[i].count = st.count;
        rs[i].records = recs;
        if (aggregates && st.count == 1 && recs[0].value.data)
            rs[i].aggregate = (const char *)recs[0].value.data;
    }
    return rs;
}

const sluice_test_result *sluice_test_process(const sluice_record *records, size_t n) {
    if (!sluice_processor_entry)
        return all_failed(n, "no-processor", "the plugin has no SLUICE_PROCESSOR(...)");
    size_t len, out_len;
    uint8_t *in = encode(records, n, &len), *out;
    sluice_error e = {"", ""};
    const sluice_test_result *rs;
    if (sluice_runtime_process(sluice_processor_entry, in, len, &out, &out_len, &e)) {
        rs = decode(out, out_len, n, false);
        free(out);
    } else {
        rs = all_failed(n, e.code, e.message);
    }
    free(in);
    sluice_arena_reset();
    return rs;
}

const sluice_test_result *sluice_test_add_to(const sluice_record *aggregates, size_t n_aggregates,
                                             const sluice_record *records, size_t n) {
    if (!is_aggregator())
        return all_failed(n, "no-aggregator", "the plugin has no SLUICE_AGGREGATOR(...)");
    size_t alen, blen, out_len;
    uint8_t *a = encode(aggregates, n_aggregates, &alen), *b = encode(records, n, &blen), *out;
    sluice_error e = {"", ""};
    const sluice_test_result *rs;
    if (sluice_aggregator_add(&sluice_aggregator, a, alen, b, blen, &out, &out_len, &e)) {
        rs = decode(out, out_len, n, true);
        free(out);
    } else {
        rs = all_failed(n, e.code, e.message);
    }
    free(a);
    free(b);
    sluice_arena_reset();
    return rs;
}

const sluice_test_result *sluice_test_add(const sluice_record *records, size_t n) {
    return sluice_test_add_to(NULL, 0, records, n);
}

const sluice_test_result *sluice_test_merge(const char *key, const char *a, const char *b) {
    if (!is_aggregator())
        return all_failed(1, "no-aggregator", "the plugin has no SLUICE_AGGREGATOR(...)");
    sluice_test_result *r = test_alloc(sizeof *r);
    uint8_t *out;
    size_t len;
    sluice_error e = {"", ""};
    if (sluice_aggregator_merge(&sluice_aggregator, sluice_bytes_str(key), sluice_bytes_str(a),
                                sluice_bytes_str(b), &out, &len, &e)) {
        r->aggregate = test_strn(out, len);
        sluice_record *rec = test_alloc(sizeof *rec);
        *rec = sluice_record_new(test_bytes(sluice_bytes_str(key)),
                                 sluice_bytes_of(r->aggregate, len));
        r->records = rec;
        r->count = 1;
        free(out);
    } else {
        r->rejected = true;
        r->code = test_strn(e.code, strlen(e.code));
        r->message = test_strn(e.message, strlen(e.message));
    }
    sluice_arena_reset();
    return r;
}

/* ------------------------------------------------------------ the runner */

typedef struct registered {
    const char *name;
    void (*fn)(void);
    const char *file;
    int line;
} registered;

static registered *tests;
static size_t test_n, test_cap;

void sluice_test_register(const char *name, void (*fn)(void), const char *file, int line) {
    if (test_n == test_cap) {
        test_cap = test_cap ? test_cap * 2 : 16;
        tests = realloc(tests, test_cap * sizeof *tests);
        if (!tests) abort();
    }
    tests[test_n++] = (registered){name, fn, file, line};
}

static int by_place(const void *a, const void *b) {
    const registered *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static void crashed(int sig) {
    /* Not async-signal-safe in theory; the process is ending anyway. */
    fflush(stdout);
    fprintf(stdout,
            "FAIL %s: the plugin trapped (signal %d: __builtin_trap(), abort(), assert() or a bad "
            "memory access); in a pipeline this record would meet the `trap` policy\n",
            current_test ? current_test : "(between tests)", sig);
    fflush(stdout);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(void) {
    static const int sigs[] = {SIGILL, SIGABRT, SIGSEGV, SIGFPE, SIGTRAP, SIGBUS};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], crashed);
    if (test_n == 0) {
        fprintf(stderr, "no tests: define some with SLUICE_TEST(name) { ... } in tests/*.c\n");
        return 1;
    }
    qsort(tests, test_n, sizeof *tests, by_place);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < test_n; i++) {
        current_test = tests[i].name;
        current_failures = 0;
        sluice_runtime_reset();
        tests[i].fn();
        free_owned();
        clear_state();
        sluice_arena_reset();
        if (current_failures) {
            failed++;
            printf("FAIL %s\n", tests[i].name);
        } else {
            passed++;
            printf("ok   %s\n", tests[i].name);
        }
        fflush(stdout);
    }
    current_test = NULL;
    sluice_runtime_reset();
    free(owned);
    free(tests);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
