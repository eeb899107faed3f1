/*
 * The host imports (sluice:plugin/log, sluice:plugin/state) stubbed for
 * native tests: log lines are kept for inspection, stores are an in-memory
 * sorted list.
 */
#include <stdlib.h>
#include <string.h>

#include "host_stub.h"

stub_log_line stub_logs[STUB_MAX_LOGS];
size_t stub_log_count;
bool stub_state_fail;

void sluice_host_log(sluice_level level, const char *msg, size_t len) {
    if (stub_log_count == STUB_MAX_LOGS) return;
    stub_log_line *l = &stub_logs[stub_log_count++];
    l->level = level;
    l->text = malloc(len + 1);
    memcpy(l->text, msg, len);
    l->text[len] = 0;
    l->len = len;
}

void stub_reset(void) {
    for (size_t i = 0; i < stub_log_count; i++) free(stub_logs[i].text);
    stub_log_count = 0;
    stub_state_fail = false;
    stub_state_clear();
}

typedef struct entry {
    char *store;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
} entry;

static entry *entries;
static size_t entry_count;

void stub_state_clear(void) {
    for (size_t i = 0; i < entry_count; i++) {
        free(entries[i].store);
        free(entries[i].key);
        free(entries[i].value);
    }
    free(entries);
    entries = NULL;
    entry_count = 0;
}

static int cmp_key(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

static bool check(const char *store, size_t store_len, sluice_error *err) {
    if (stub_state_fail) {
        err->code = "state-failed";
        err->message = "the stub was told to fail";
        return false;
    }
    if (store_len == 0 || strncmp(store, "seen", store_len) != 0 || store_len != 4) {
        err->code = "no-store";
        err->message = sluice_afmt("store `%.*s` is not declared", (int)store_len, store);
        return false;
    }
    return true;
}

static long find(const char *store, sluice_bytes key) {
    for (size_t i = 0; i < entry_count; i++)
        if (strcmp(entries[i].store, store) == 0 &&
            cmp_key(entries[i].key, entries[i].key_len, key.data, key.len) == 0)
            return (long)i;
    return -1;
}

int sluice_host_state_get(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes *value, sluice_error *err) {
    if (!check(store, store_len, err)) return -1;
    long i = find(store, key);
    if (i < 0) return 0;
    *value = sluice_bytes_copy(sluice_bytes_of(entries[i].value, entries[i].value_len));
    return 1;
}

int sluice_host_state_put(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes value, sluice_error *err) {
    if (!check(store, store_len, err)) return -1;
    long i = find(store, key);
    if (i < 0) {
        entries = realloc(entries, (entry_count + 1) * sizeof *entries);
        i = (long)entry_count++;
        entries[i].store = strdup(store);
        entries[i].key = malloc(key.len + 1);
        memcpy(entries[i].key, key.data, key.len);
        entries[i].key_len = key.len;
    } else {
        free(entries[i].value);
    }
    entries[i].value = malloc(value.len + 1);
    memcpy(entries[i].value, value.data, value.len);
    entries[i].value_len = value.len;
    return 0;
}

int sluice_host_state_delete(const char *store, size_t store_len, sluice_bytes key,
                             sluice_error *err) {
    if (!check(store, store_len, err)) return -1;
    long i = find(store, key);
    if (i >= 0) {
        free(entries[i].store);
        free(entries[i].key);
        free(entries[i].value);
        entries[i] = entries[--entry_count];
    }
    return 0;
}

long sluice_host_state_range(const char *store, size_t store_len, sluice_bytes start,
                             sluice_bytes end, uint32_t limit, const sluice_entry **out,
                             sluice_error *err) {
    if (!check(store, store_len, err)) return -1;
    sluice_entry *got = sluice_alloc((entry_count + 1) * sizeof *got);
    size_t n = 0;
    for (size_t i = 0; i < entry_count; i++) {
        entry *e = &entries[i];
        if (strcmp(e->store, store) != 0) continue;
        if (start.data && cmp_key(e->key, e->key_len, start.data, start.len) < 0) continue;
        if (end.data && cmp_key(e->key, e->key_len, end.data, end.len) >= 0) continue;
        got[n].key = sluice_bytes_copy(sluice_bytes_of(e->key, e->key_len));
        got[n].value = sluice_bytes_copy(sluice_bytes_of(e->value, e->value_len));
        n++;
    }
    /* key order, then the limit */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp_key(got[j].key.data, got[j].key.len, got[j - 1].key.data,
                                            got[j - 1].key.len) < 0;
             j--) {
            sluice_entry t = got[j];
            got[j] = got[j - 1];
            got[j - 1] = t;
        }
    if (n > limit) n = limit;
    *out = got;
    return (long)n;
}
