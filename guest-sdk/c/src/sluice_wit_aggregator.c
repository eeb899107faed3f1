/*
 * The glue between the WIT bindings of the `record-aggregator` world
 * (bindings/record_aggregator.c, made by wit-bindgen) and the SDK runtime:
 * the exports of `sluice:plugin/aggregator@0.1.0` and the import of
 * `sluice:plugin/log`. The world has no `state`: the sluice_state_*
 * functions fail with `no-state`. Built for wasm only, instead of
 * sluice_wit.c (the processor's glue).
 *
 * Memory: as in sluice_wit.c, arguments come from cabi_realloc (malloc)
 * and are freed before returning; results are malloc'd and freed by the
 * post-return functions wit-bindgen generates; the arena is reset after
 * every call.
 */
#include <stdlib.h>
#include <string.h>

#include "record_aggregator.h"
#include "sluice_internal.h"

/* The linker's constructor function; see sluice_wit.c. */
extern void __wasm_call_ctors(void);

static void run_ctors_once(void) {
    static bool done;
    if (!done) {
        done = true;
        __wasm_call_ctors();
    }
}

/* assert() failures: logged, then a trap (libc's would need WASI). */
_Noreturn void __assert_fail(const char *expr, const char *file, int line, const char *func) {
    sluice_log(SLUICE_ERROR, "assertion failed: %s (%s:%d, in %s)", expr, file, line, func);
    __builtin_trap();
}

static void set_error(exports_sluice_plugin_aggregator_error_t *out, const sluice_error *e) {
    const char *code = e->code ? e->code : "";
    const char *message = e->message ? e->message : "";
    record_aggregator_string_dup_n(&out->code, code, strlen(code));
    record_aggregator_string_dup_n(&out->message, message, strlen(message));
}

bool exports_sluice_plugin_aggregator_init(record_aggregator_list_tuple2_string_string_t *config,
                                           exports_sluice_plugin_aggregator_error_t *err) {
    run_ctors_once();
    size_t n = config->len;
    sluice_kv_in *kv = sluice_alloc((n ? n : 1) * sizeof *kv);
    for (size_t i = 0; i < n; i++) {
        kv[i].key = (const char *)config->ptr[i].f0.ptr;
        kv[i].key_len = config->ptr[i].f0.len;
        kv[i].value = (const char *)config->ptr[i].f1.ptr;
        kv[i].value_len = config->ptr[i].f1.len;
    }
    sluice_error e = {NULL, NULL};
    bool ok = sluice_aggregator_init(&sluice_aggregator, kv, n, &e);
    if (!ok) set_error(err, &e);
    record_aggregator_list_tuple2_string_string_free(config);
    sluice_arena_reset();
    return ok;
}

bool exports_sluice_plugin_aggregator_add(record_aggregator_list_u8_t *aggregates,
                                          record_aggregator_list_u8_t *batch,
                                          record_aggregator_list_u8_t *ret,
                                          exports_sluice_plugin_aggregator_error_t *err) {
    run_ctors_once();
    uint8_t *out = NULL;
    size_t out_len = 0;
    sluice_error e = {NULL, NULL};
    bool ok = sluice_aggregator_add(&sluice_aggregator, aggregates->ptr, aggregates->len,
                                    batch->ptr, batch->len, &out, &out_len, &e);
    if (ok) {
        ret->ptr = out;
        ret->len = out_len;
    } else {
        set_error(err, &e);
    }
    record_aggregator_list_u8_free(aggregates);
    record_aggregator_list_u8_free(batch);
    sluice_arena_reset();
    return ok;
}

bool exports_sluice_plugin_aggregator_merge(record_aggregator_list_u8_t *maybe_key,
                                            record_aggregator_list_u8_t *a,
                                            record_aggregator_list_u8_t *b,
                                            record_aggregator_list_u8_t *ret,
                                            exports_sluice_plugin_aggregator_error_t *err) {
    run_ctors_once();
    uint8_t *out = NULL;
    size_t out_len = 0;
    sluice_error e = {NULL, NULL};
    sluice_bytes key = maybe_key ? sluice_bytes_of(maybe_key->ptr, maybe_key->len) : SLUICE_NULL;
    bool ok = sluice_aggregator_merge(&sluice_aggregator, key, sluice_bytes_of(a->ptr, a->len),
                                      sluice_bytes_of(b->ptr, b->len), &out, &out_len, &e);
    if (ok) {
        ret->ptr = out;
        ret->len = out_len;
    } else {
        set_error(err, &e);
    }
    if (maybe_key) record_aggregator_list_u8_free(maybe_key);
    record_aggregator_list_u8_free(a);
    record_aggregator_list_u8_free(b);
    sluice_arena_reset();
    return ok;
}

/* ------------------------------------------------------------ imports */

void sluice_host_log(sluice_level level, const char *msg, size_t len) {
    record_aggregator_string_t s = {(uint8_t *)msg, len};
    sluice_plugin_log_log((sluice_plugin_log_level_t)level, &s);
}

/* No `state` in this world. */
static void no_state(sluice_error *err) {
    err->code = "no-state";
    err->message = "an aggregator has no state stores: the host keeps its aggregates";
}

int sluice_host_state_get(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes *value, sluice_error *err) {
    (void)store, (void)store_len, (void)key, (void)value;
    no_state(err);
    return -1;
}

int sluice_host_state_put(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes value, sluice_error *err) {
    (void)store, (void)store_len, (void)key, (void)value;
    no_state(err);
    return -1;
}

int sluice_host_state_delete(const char *store, size_t store_len, sluice_bytes key,
                             sluice_error *err) {
    (void)store, (void)store_len, (void)key;
    no_state(err);
    return -1;
}

long sluice_host_state_range(const char *store, size_t store_len, sluice_bytes start,
                             sluice_bytes end, uint32_t limit, const sluice_entry **entries,
                             sluice_error *err) {
    (void)store, (void)store_len, (void)start, (void)end, (void)limit, (void)entries;
    no_state(err);
    return -1;
}
