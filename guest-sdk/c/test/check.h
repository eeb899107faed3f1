/* The checks the native tests share. */
#ifndef SLUICE_TEST_CHECK_H
#define SLUICE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

extern int checks_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            checks_failed++;                                                           \
        }                                                                              \
    } while (0)

#define CHECK_STR(got, len, want)                                                       \
    do {                                                                                \
        const char *g_ = (const char *)(got);                                           \
        size_t gl_ = (len), wl_ = strlen(want);                                         \
        if (!g_ || gl_ != wl_ || memcmp(g_, want, wl_) != 0) {                          \
            fprintf(stderr, "  %s:%d: got \"%.*s\", want \"%s\"\n", __FILE__, __LINE__, \
                    g_ ? (int)gl_ : 6, g_ ? g_ : "(null)", want);                       \
            checks_failed++;                                                            \
        }                                                                               \
    } while (0)

typedef struct test {
    const char *name;
    void (*fn)(void);
} test;

#define T(f) {#f, f}

/* Runs each test, printing `ok` or `FAIL` and its name. */
void run_tests(const test *tests, size_t n, int *passed, int *failed);

/* test_aggregate.c: JSON, numbers and the aggregator runtime. */
extern const test aggregate_tests[];
extern const size_t aggregate_test_count;

/* test_frames.c: the golden frame vectors of wit/frames/. */
extern const test frame_vector_tests[];
extern const size_t frame_vector_test_count;

#endif
