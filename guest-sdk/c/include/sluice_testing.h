/*
 * sluice_testing.h: test a C plugin natively, without a broker or wasm.
 *
 * `sluice plugin test <dir>` compiles the plugin's *.c and its tests
 * (the .c files in tests/) for this machine with the SDK and runs them. The records go
 * through the same frames the host uses; the host is stood in for: log
 * lines go to standard error, state stores live in memory, and each test
 * starts with a fresh plugin (init runs again, with an empty config unless
 * the test calls sluice_test_init), and empty stores.
 *
 *     #include "sluice_testing.h"
 *
 *     SLUICE_TEST(upper_cases_the_value) {
 *         sluice_record in[] = {sluice_test_record("k", "hello")};
 *         const sluice_test_result *out = sluice_test_process(in, 1);
 *         SLUICE_CHECK(out[0].count == 1);
 *         SLUICE_CHECK_BYTES(out[0].records[0].value, "HELLO");
 *     }
 *
 * A failed check marks the test failed and goes on; the run prints `ok` or
 * `FAIL` per test and `N passed, M failed`, and exits non-zero on a
 * failure. A trap (__builtin_trap(), abort(), a crash) ends the run,
 * naming the test.
 */
#ifndef SLUICE_TESTING_H
#define SLUICE_TESTING_H

#include "sluice.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one input record gave. */
typedef struct sluice_test_result {
    bool rejected;                 /* rejected: the code and the message */
    const char *code;
    const char *message;
    size_t count;                  /* the records produced (an aggregator: 1) */
    const sluice_record *records;
    const char *aggregate;         /* an aggregator's new aggregate (JSON), or NULL */
} sluice_test_result;

/* A record with this key and value (NULL: null), no headers, no timestamp. */
sluice_record sluice_test_record(const char *key, const char *value);

/* Runs init with a config: "key", "value", ..., NULL. False on an init
 * error, which goes to *err when that is not NULL. */
bool sluice_test_init(const char *const *config, sluice_error *err);

/* A processor: the records as one call batch; one result per record. */
const sluice_test_result *sluice_test_process(const sluice_record *records, size_t n);

/* An aggregator: the records as one `add` call, the keys with no
 * aggregate yet; one result per record. */
const sluice_test_result *sluice_test_add(const sluice_record *records, size_t n);

/* The same, with stored aggregates: one record per key, its value the
 * key's aggregate (JSON) or NULL for none. */
const sluice_test_result *sluice_test_add_to(const sluice_record *aggregates, size_t n_aggregates,
                                             const sluice_record *records, size_t n);

/* An aggregator's merge of `a` and `b` (JSON) for `key` (NULL: none): the
 * merged aggregate, or the refusal (rejected, with its code). */
const sluice_test_result *sluice_test_merge(const char *key, const char *a, const char *b);

/* Everything the results point to lives until the end of the test. */

/* ---------------------------------------------------------------- tests and checks */

/* Defines a test: SLUICE_TEST(name) { ... }. Tests run in file order. */
#define SLUICE_TEST(name)                                                          \
    static void name(void);                                                        \
    __attribute__((constructor)) static void sluice_register_##name(void) {        \
        sluice_test_register(#name, name, __FILE__, __LINE__);                     \
    }                                                                              \
    static void name(void)

/* The condition holds. */
#define SLUICE_CHECK(cond) sluice_test_check((cond), #cond, __FILE__, __LINE__)

/* Two C strings are equal (NULL equals only NULL). */
#define SLUICE_CHECK_STR(got, want) sluice_test_check_str((got), (want), #got, __FILE__, __LINE__)

/* Bytes hold exactly the C string `want` (NULL: the bytes are null). */
#define SLUICE_CHECK_BYTES(got, want) \
    sluice_test_check_bytes((got), (want), #got, __FILE__, __LINE__)

void sluice_test_register(const char *name, void (*fn)(void), const char *file, int line);
bool sluice_test_check(bool ok, const char *what, const char *file, int line);
bool sluice_test_check_str(const char *got, const char *want, const char *what, const char *file,
                           int line);
bool sluice_test_check_bytes(sluice_bytes got, const char *want, const char *what,
                             const char *file, int line);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_TESTING_H */
