/*
 * The glue between the WIT bindings (bindings/record_processor.c, made by
 * wit-bindgen) and the SDK runtime: the exports of
 * `sluice:plugin/processor@0.1.0` and the imports of `sluice:plugin/log` and
 * `sluice:plugin/state`. Built for wasm only; the native tests stub the
 * sluice_host_* functions instead.
 *
 * Memory: the canonical ABI hands over the batch and the config in memory
 * from cabi_realloc (malloc); both are freed before returning. The output
 * frame and error strings are malloc'd and freed by the post-return
 * functions wit-bindgen generates. Everything the plugin took from
 * sluice_alloc is freed at the end of each call.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "record_processor.h"
#include "sluice_internal.h"

/* The linker's constructor function. This module has no _start or
 * _initialize: calling it here (once) also stops wasm-ld from wrapping every
 * export in constructor/destructor calls. */
extern void __wasm_call_ctors(void);

static void run_ctors_once(void) {
    static bool done;
    if (!done) {
        done = true;
        __wasm_call_ctors();
    }
}

/* assert() failures: libc's would print to stderr through WASI, which the
 * host refuses; log the failure instead, and trap. */
_Noreturn void __assert_fail(const char *expr, const char *file, int line, const char *func) {
    sluice_log(SLUICE_ERROR, "assertion failed: %s (%s:%d, in %s)", expr, file, line, func);
    __builtin_trap();
}

static void set_error(exports_sluice_plugin_processor_error_t *out, const sluice_error *e) {
    const char *code = e->code ? e->code : "";
    const char *message = e->message ? e->message : "";
    record_processor_string_dup_n(&out->code, code, strlen(code));
    record_processor_string_dup_n(&out->message, message, strlen(message));
}

bool exports_sluice_plugin_processor_init(record_processor_list_tuple2_string_string_t *config,
                                          exports_sluice_plugin_processor_error_t *err) {
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
    bool ok = sluice_runtime_init(kv, n, &e);
    if (!ok) set_error(err, &e);
    record_processor_list_tuple2_string_string_free(config);
    sluice_arena_reset();
    return ok;
}

bool exports_sluice_plugin_processor_process(record_processor_list_u8_t *batch,
                                             record_processor_list_u8_t *ret,
                                             exports_sluice_plugin_processor_error_t *err) {
    run_ctors_once();
    uint8_t *out = NULL;
    size_t out_len = 0;
    sluice_error e = {NULL, NULL};
    bool ok = sluice_runtime_process(sluice_processor_entry, batch->ptr, batch->len, &out,
                                     &out_len, &e);
    if (ok) {
        ret->ptr = out;
        ret->len = out_len;
    } else {
        set_error(err, &e);
    }
    record_processor_list_u8_free(batch);
    sluice_arena_reset();
    return ok;
}

/* ------------------------------------------------------------ imports */

void sluice_host_log(sluice_level level, const char *msg, size_t len) {
    record_processor_string_t s = {(uint8_t *)msg, len};
    sluice_plugin_log_log((sluice_plugin_log_level_t)level, &s);
}

/* Moves a host error into the arena as C strings. */
static void take_error(sluice_plugin_state_error_t *we, sluice_error *e) {
    e->code = sluice_bytes_cstr(sluice_bytes_of(we->code.ptr, we->code.len));
    e->message = sluice_bytes_cstr(sluice_bytes_of(we->message.ptr, we->message.len));
    sluice_plugin_state_error_free(we);
}

static record_processor_list_u8_t as_list(sluice_bytes b) {
    record_processor_list_u8_t l = {(uint8_t *)b.data, b.data ? b.len : 0};
    return l;
}

int sluice_host_state_get(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes *value, sluice_error *err) {
    record_processor_string_t s = {(uint8_t *)store, store_len};
    record_processor_list_u8_t k = as_list(key);
    record_processor_option_list_u8_t got;
    sluice_plugin_state_error_t we;
    if (!sluice_plugin_state_get(&s, &k, &got, &we)) {
        take_error(&we, err);
        return -1;
    }
    if (!got.is_some) return 0;
    *value = sluice_bytes_copy(sluice_bytes_of(got.val.ptr, got.val.len));
    record_processor_list_u8_free(&got.val);
    return 1;
}

int sluice_host_state_put(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes value, sluice_error *err) {
    record_processor_string_t s = {(uint8_t *)store, store_len};
    record_processor_list_u8_t k = as_list(key), v = as_list(value);
    sluice_plugin_state_error_t we;
    if (!sluice_plugin_state_put(&s, &k, &v, &we)) {
        take_error(&we, err);
        return -1;
    }
    return 0;
}

int sluice_host_state_delete(const char *store, size_t store_len, sluice_bytes key,
                             sluice_error *err) {
    record_processor_string_t s = {(uint8_t *)store, store_len};
    record_processor_list_u8_t k = as_list(key);
    sluice_plugin_state_error_t we;
    if (!sluice_plugin_state_delete(&s, &k, &we)) {
        take_error(&we, err);
        return -1;
    }
    return 0;
}

long sluice_host_state_range(const char *store, size_t store_len, sluice_bytes start,
                             sluice_bytes end, uint32_t limit, const sluice_entry **entries,
                             sluice_error *err) {
    record_processor_string_t s = {(uint8_t *)store, store_len};
    record_processor_list_u8_t lo = as_list(start), hi = as_list(end);
    record_processor_list_tuple2_list_u8_list_u8_t got;
    sluice_plugin_state_error_t we;
    if (!sluice_plugin_state_range(&s, sluice_bytes_is_null(start) ? NULL : &lo,
                                   sluice_bytes_is_null(end) ? NULL : &hi, limit, &got, &we)) {
        take_error(&we, err);
        return -1;
    }
    sluice_entry *es = sluice_alloc((got.len ? got.len : 1) * sizeof *es);
    for (size_t i = 0; i < got.len; i++) {
        es[i].key = sluice_bytes_copy(sluice_bytes_of(got.ptr[i].f0.ptr, got.ptr[i].f0.len));
        es[i].value = sluice_bytes_copy(sluice_bytes_of(got.ptr[i].f1.ptr, got.ptr[i].f1.len));
    }
    long n = (long)got.len;
    record_processor_list_tuple2_list_u8_list_u8_free(&got);
    *entries = es;
    return n;
}
