/*
 * sluice.h: write Sluice record processors and aggregators in C.
 *
 * A plugin is a function from one record to zero or more records, plus one
 * macro line that exports it as the component's
 * `sluice:plugin/processor@0.1.0`:
 *
 *     #include "sluice.h"
 *
 *     static sluice_status upper(const sluice_record *in, sluice_emitter *out) {
 *         if (sluice_bytes_is_null(in->value))
 *             return sluice_reject(out, "null-value", "the record has no value");
 *         uint8_t *text = sluice_alloc(in->value.len);
 *         for (size_t i = 0; i < in->value.len; i++) {
 *             uint8_t c = in->value.data[i];
 *             text[i] = c >= 'a' && c <= 'z' ? c - 32 : c;
 *         }
 *         sluice_record rec = *in;
 *         rec.value = sluice_bytes_of(text, in->value.len);
 *         sluice_emit(out, &rec);
 *         return SLUICE_OK;
 *     }
 *     SLUICE_PROCESSOR(upper)
 *
 * - sluice_record: key, value, timestamp and headers. Input records point
 *   into the call batch (nothing is copied); they and everything
 *   sluice_alloc() returns are valid until the function returns.
 * - sluice_emit(): writes one output record (copied at once, so it may point
 *   to stack buffers). Emitting nothing filters the record out.
 * - sluice_reject(): refuses the record with a code and a message; the
 *   pipeline's `rejected` policy applies (skip, dead-letter topic, fail).
 *   Records already emitted for it are discarded.
 * - A trap fails the call: __builtin_trap(), abort(), an out-of-bounds
 *   access. The host discards the instance and replays the batch record by
 *   record, so only the record that traps meets the `trap` policy.
 * - SLUICE_PROCESSOR_INIT(fn): optional; fn gets the step's `config` table
 *   from the pipeline file once, before the first record.
 * - sluice_log(): log lines the host prints with the plugin's name.
 * - sluice_state_*(): the task-local stores the step declares
 *   (`stores = [...]`).
 *
 * An aggregator (the `record-aggregator` world) folds the records of each
 * key into an aggregate, JSON text; the host groups by key, stores the
 * aggregates and sends every update downstream:
 *
 *     static sluice_status initial(sluice_bytes key, sluice_emitter *out) {
 *         return sluice_aggregate(out, "{\"n\":0}");
 *     }
 *     static sluice_status add(sluice_bytes agg, const sluice_record *in, sluice_emitter *out) {
 *         int64_t n = 0;
 *         sluice_json_int(agg, "n", &n);
 *         return sluice_aggregatef(out, "{\"n\":%lld}", (long long)n + 1);
 *     }
 *     SLUICE_AGGREGATOR(NULL, initial, add, NULL)
 *
 * (see "aggregators" below; sluice_json_*() read JSON, %g writes numbers).
 *
 * No stdio: the host refuses components that import WASI, and printf and
 * friends do (strtod too). Use sluice_log(), sluice_fmt() and
 * sluice_json_number(). The rest of libc (string.h,
 * stdlib.h, ctype.h) is there.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SLUICE_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- bytes */

/* Bytes that may be null: `data == NULL` is null (a null key, a tombstone
 * value); an empty value has a non-NULL `data` and `len == 0`. */
typedef struct sluice_bytes {
    const uint8_t *data;
    size_t len;
} sluice_bytes;

/* The null bytes. */
#define SLUICE_NULL ((sluice_bytes){NULL, 0})

/* `len` bytes at `data` (never null: NULL gives the empty bytes). */
static inline sluice_bytes sluice_bytes_of(const void *data, size_t len) {
    static const uint8_t empty[1] = {0};
    sluice_bytes b;
    b.data = data ? (const uint8_t *)data : empty;
    b.len = data ? len : 0;
    return b;
}

/* The bytes of a NUL-terminated string, without the NUL; NULL gives null. */
sluice_bytes sluice_bytes_str(const char *s);

static inline bool sluice_bytes_is_null(sluice_bytes b) { return b.data == NULL; }

/* True when both are null, or both hold the same bytes. */
bool sluice_bytes_eq(sluice_bytes a, sluice_bytes b);

/* True when `b` is not null and holds exactly the bytes of `s`. */
bool sluice_bytes_eq_str(sluice_bytes b, const char *s);

/* A copy of `b` that lives until the end of the call (null stays null). */
sluice_bytes sluice_bytes_copy(sluice_bytes b);

/* A NUL-terminated copy of `b` that lives until the end of the call; NULL for
 * null bytes. Bytes after an embedded NUL are invisible to C string code. */
char *sluice_bytes_cstr(sluice_bytes b);

/* ---------------------------------------------------------------- records */

/* A record header. Names are UTF-8 and not NUL-terminated; values may be
 * null. */
typedef struct sluice_header {
    const char *name;
    size_t name_len;
    sluice_bytes value;
} sluice_header;

/* One Kafka record. */
typedef struct sluice_record {
    sluice_bytes key;          /* null for a null key */
    sluice_bytes value;        /* null for a tombstone */
    int64_t timestamp;         /* event time, UTC milliseconds */
    bool has_timestamp;        /* on output, false keeps the input record's */
    const sluice_header *headers;
    size_t header_count;       /* headers in order; names may repeat */
} sluice_record;

/* A record with this key and value, no headers, and no timestamp (on output:
 * the input record's). */
sluice_record sluice_record_new(sluice_bytes key, sluice_bytes value);

/* The last header named `name`, or NULL. */
const sluice_header *sluice_record_header(const sluice_record *r, const char *name);

/* The value of the last header named `name`; null when there is none (or
 * its value is null). */
sluice_bytes sluice_record_header_value(const sluice_record *r, const char *name);

/* Sets the value of every header named `name` (in place, keeping their
 * order), or appends one when there is none. The record gets its own copy of
 * the header list (the input's is left alone); `value` is not copied. */
void sluice_record_set_header(sluice_record *r, const char *name, sluice_bytes value);

/* Appends a header (names may repeat). */
void sluice_record_add_header(sluice_record *r, const char *name, sluice_bytes value);

/* Removes every header named `name`; returns how many there were. */
size_t sluice_record_remove_header(sluice_record *r, const char *name);

/* True when the header's name is `name`. */
bool sluice_header_is(const sluice_header *h, const char *name);

/* ---------------------------------------------------------------- emitting */

typedef enum sluice_status {
    SLUICE_OK = 0,
    SLUICE_REJECTED = 1,
} sluice_status;

/* Where a processor puts its output records and its rejection. */
typedef struct sluice_emitter sluice_emitter;

/* Writes one output record; its bytes are copied at once. A header name
 * that is not UTF-8 rejects the input record (code `bad-header-name`). */
void sluice_emit(sluice_emitter *out, const sluice_record *record);

/* Rejects the input record with a code (e.g. `bad-json`) and a message;
 * returns SLUICE_REJECTED so that `return sluice_reject(...)` reads well.
 * Invalid UTF-8 in either is replaced by '?'. A processor that returns
 * SLUICE_REJECTED without calling this rejects with code `rejected`. */
sluice_status sluice_reject(sluice_emitter *out, const char *code, const char *message);

/* sluice_reject with a formatted message (see sluice_fmt). */
sluice_status sluice_rejectf(sluice_emitter *out, const char *code, const char *fmt, ...)
    SLUICE_PRINTF(3, 4);

/* The processor: one input record, zero or more sluice_emit() calls, then
 * SLUICE_OK, or a rejection. */
typedef sluice_status (*sluice_process_fn)(const sluice_record *in, sluice_emitter *out);

/* ---------------------------------------------------------------- config */

/* The step's `config` table from the pipeline file. */
typedef struct sluice_config sluice_config;

/* The value of `key` (the last one given), or NULL. Valid for the life of
 * the instance, so it may be kept in a global from init. */
const char *sluice_config_get(const sluice_config *c, const char *key);

/* The value of `key`, or `dflt` when absent. */
const char *sluice_config_get_or(const sluice_config *c, const char *key, const char *dflt);

/* `key` as a decimal integer in *out, or `dflt` when absent. False (with
 * *out = dflt) when present but not an integer in range. */
bool sluice_config_int(const sluice_config *c, const char *key, int64_t dflt, int64_t *out);

/* How many entries the table has, and the i-th one. */
size_t sluice_config_count(const sluice_config *c);
void sluice_config_entry(const sluice_config *c, size_t i, const char **key, const char **value);

/* The configuration the instance was initialized with (empty before). */
const sluice_config *sluice_config_current(void);

/* Initialization: check and keep the config; return SLUICE_OK, or fail
 * with `return sluice_init_error("bad-config", "...")`: the plugin does
 * not start, with this message. */
typedef sluice_status (*sluice_init_fn)(const sluice_config *config);

sluice_status sluice_init_error(const char *code, const char *fmt, ...) SLUICE_PRINTF(2, 3);

/* ---------------------------------------------------------------- memory */

/* `size` bytes (16-byte aligned) that live until the end of the current
 * call; freed all at once after it. Traps when memory runs out. Use
 * malloc() for what must outlive the call. */
void *sluice_alloc(size_t size);

/* ---------------------------------------------------------------- text */

/* printf-style formatting without stdio: %d %i %u %x %X %c %s %p %g %%,
 * with flags `-` `0`, a width, a precision (`%.*s` for bytes that are not
 * NUL-terminated) and the length modifiers hh h l ll z j t.
 * %g writes a double as the shortest text that reads back as the same
 * double, laid out as JSON and JavaScript do (19.75, 20, 0.1, 1e+21,
 * 1.5e-7; nan, inf and -inf, which are not JSON); %.Ng rounds it to N
 * significant digits (at most 17) first. No %f or %e.
 * Writes at most `cap` bytes including a NUL (when cap > 0) and returns
 * the length the whole text needs, like snprintf. */
size_t sluice_fmt(char *buf, size_t cap, const char *fmt, ...) SLUICE_PRINTF(3, 4);
size_t sluice_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);

/* A formatted string allocated with sluice_alloc. */
char *sluice_afmt(const char *fmt, ...) SLUICE_PRINTF(1, 2);

/* ---------------------------------------------------------------- logging */

typedef enum sluice_level {
    SLUICE_TRACE = 0,
    SLUICE_DEBUG = 1,
    SLUICE_INFO = 2,
    SLUICE_WARN = 3,
    SLUICE_ERROR = 4,
} sluice_level;

/* Logs one formatted line (sluice:plugin/log). */
void sluice_log(sluice_level level, const char *fmt, ...) SLUICE_PRINTF(2, 3);

/* ---------------------------------------------------------------- state */

/* An error the host returned (code and message live until the end of the
 * call). */
typedef struct sluice_error {
    const char *code;
    const char *message;
} sluice_error;

/* The error of the last state call that failed. */
const sluice_error *sluice_last_error(void);

/* The value of `key` in `store`: 1 and *value when found (valid until the
 * end of the call), 0 when absent, -1 on an error (sluice_last_error). */
int sluice_state_get(const char *store, sluice_bytes key, sluice_bytes *value);

/* Sets `key` to `value` (not null); 0, or -1 on an error. */
int sluice_state_put(const char *store, sluice_bytes key, sluice_bytes value);

/* Removes `key`; 0, or -1 on an error. */
int sluice_state_delete(const char *store, sluice_bytes key);

typedef struct sluice_entry {
    sluice_bytes key;
    sluice_bytes value;
} sluice_entry;

/* Entries with start <= key < end (a null bound is open), in key order, at
 * most `limit`: their number, with *entries valid until the end of the
 * call; -1 on an error. */
long sluice_state_range(const char *store, sluice_bytes start, sluice_bytes end, uint32_t limit,
                        const sluice_entry **entries);

/* ---------------------------------------------------------------- JSON */

/* Small readers for JSON text (record values, aggregates). Each checks
 * that the whole of `json` is valid JSON (RFC 8259, UTF-8) and reads the
 * top-level object's `field` (the last, should it repeat), or the value
 * itself when `field` is NULL. They allocate with sluice_alloc. */

/* True when `json` is one JSON value (whitespace around it allowed). */
bool sluice_json_valid(sluice_bytes json);

/* The JSON text of the field (a slice of `json`, not NUL-terminated, which
 * the readers below take again, for nested fields); null when `json` is
 * not JSON, not an object, or has no such field. */
sluice_bytes sluice_json_get(sluice_bytes json, const char *field);

/* The field as a double (correctly rounded, as strtod would); false when
 * it is missing or not a number. */
bool sluice_json_number(sluice_bytes json, const char *field, double *out);

/* The field as an integer: a number with a whole value in int64 range
 * (3, -7, 2.0, 1e3); false otherwise. */
bool sluice_json_int(sluice_bytes json, const char *field, int64_t *out);

/* The field as a NUL-terminated UTF-8 string, escapes decoded; NULL when
 * it is missing or not a string. (A \u0000 in it ends the C string.) */
char *sluice_json_string(sluice_bytes json, const char *field);

/* `text` as a JSON string literal, quotes included ("null" for NULL;
 * invalid UTF-8 becomes '?'), for sluice_aggregatef("{\"last\":%s}", ...). */
char *sluice_json_quote(const char *text);

/* ---------------------------------------------------------------- aggregators */

/* An aggregator has three functions, each given a sluice_emitter on which
 * it either sets the aggregate (JSON text, copied at once) or rejects:
 *
 * - initial(key, out): the aggregate of a key that has none yet (`key` is
 *   null for a null key). NULL in SLUICE_AGGREGATOR: JSON `null`.
 * - add(aggregate, record, out): the aggregate after one more record. A
 *   rejection (sluice_reject) leaves the key's aggregate as it was, for
 *   the key's next record; the pipeline's `rejected` policy applies.
 * - merge(key, a, b, out): two aggregates of one key made one (session
 *   windows merge when a record bridges two; `a` is the earlier). NULL in
 *   SLUICE_AGGREGATOR: merging is refused with `merge-unsupported`.
 *
 * The aggregates they are given are valid JSON, NUL-terminated (so
 * `(const char *)aggregate.data` is a C string). A stored aggregate that is
 * not JSON rejects the record with code `bad-aggregate`, as does setting
 * one that is not; returning SLUICE_OK without setting one rejects it with
 * `no-aggregate`. Within one call the records of a key see the aggregate
 * the one before left. sluice_emit() is for processors (and rejects).
 * Aggregators have no state stores (sluice_state_* fail). */

/* Sets the new aggregate: `json` is JSON text, NUL-terminated. Returns
 * SLUICE_OK, so that `return sluice_aggregate(out, "{}");` reads well. */
sluice_status sluice_aggregate(sluice_emitter *out, const char *json);

/* The same with bytes (e.g. an aggregate passed on unchanged). */
sluice_status sluice_aggregate_bytes(sluice_emitter *out, sluice_bytes json);

/* The same, formatted (see sluice_fmt; %g for doubles, %lld for integers,
 * %s with sluice_json_quote() for strings). */
sluice_status sluice_aggregatef(sluice_emitter *out, const char *fmt, ...) SLUICE_PRINTF(2, 3);

typedef sluice_status (*sluice_initial_fn)(sluice_bytes key, sluice_emitter *out);
typedef sluice_status (*sluice_add_fn)(sluice_bytes aggregate, const sluice_record *in,
                                       sluice_emitter *out);
typedef sluice_status (*sluice_merge_fn)(sluice_bytes key, sluice_bytes a, sluice_bytes b,
                                         sluice_emitter *out);

/* What SLUICE_AGGREGATOR defines. */
typedef struct sluice_aggregator_def {
    sluice_init_fn init;       /* optional: the step's config, before the first record */
    sluice_initial_fn initial; /* optional: null to start with */
    sluice_add_fn add;         /* required */
    sluice_merge_fn merge;     /* optional: merge-unsupported */
} sluice_aggregator_def;

/* ---------------------------------------------------------------- export */

/* Exports `fn` (a sluice_process_fn) as the plugin's processor. Use once. */
#define SLUICE_PROCESSOR(fn)                                                         \
    sluice_status sluice_processor_entry(const sluice_record *in, sluice_emitter *out) { \
        return (fn)(in, out);                                                        \
    }

/* Runs `fn` (a sluice_init_fn) with the step's config before the first
 * record. Optional; use at most once. */
#define SLUICE_PROCESSOR_INIT(fn)                                            \
    sluice_status sluice_processor_init_entry(const sluice_config *config) { \
        return (fn)(config);                                                 \
    }

/* Exports an aggregator (the `record-aggregator` world) instead of a
 * processor: SLUICE_AGGREGATOR(init_or_NULL, initial_or_NULL, add,
 * merge_or_NULL). Use once, and not with SLUICE_PROCESSOR. */
#define SLUICE_AGGREGATOR(init_fn, initial_fn, add_fn, merge_fn) \
    const sluice_aggregator_def sluice_aggregator = {(init_fn), (initial_fn), (add_fn), (merge_fn)};

/* Defined by SLUICE_AGGREGATOR. */
extern const sluice_aggregator_def sluice_aggregator;

/* Defined by SLUICE_PROCESSOR / SLUICE_PROCESSOR_INIT. */
sluice_status sluice_processor_entry(const sluice_record *in, sluice_emitter *out);
sluice_status sluice_processor_init_entry(const sluice_config *config);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
