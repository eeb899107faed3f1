/*
 * Internals of the C SDK: the call-batch frame codec (wit/FRAME.md), the
 * per-call arena, the runtime entry points the WIT glue calls, and the host
 * imports the glue provides. Not for plugin code.
 */
#ifndef SLUICE_INTERNAL_H
#define SLUICE_INTERNAL_H

#include "sluice.h"

#define SLUICE_FRAME_VERSION 1
#define SLUICE_FRAME_NULL 0xFFFFFFFFu
#define SLUICE_FLAG_TIMESTAMP 1
#define SLUICE_STATUS_OK 0
#define SLUICE_STATUS_REJECTED 1

/* ------------------------------------------------------------ frame reader */

typedef enum sluice_frame_error_kind {
    SLUICE_FRAME_TRUNCATED = 1, /* at */
    SLUICE_FRAME_VERSION_ERR,   /* value */
    SLUICE_FRAME_UTF8,          /* at */
    SLUICE_FRAME_STATUS_ERR,    /* value */
    SLUICE_FRAME_TRAILING,      /* at, value = bytes left */
    SLUICE_FRAME_FLAGS_ERR,     /* at, value = the flags byte */
} sluice_frame_error_kind;

typedef struct sluice_frame_error {
    sluice_frame_error_kind kind;
    size_t at;
    size_t value;
} sluice_frame_error;

/* Writes a message like the Rust frame crate's into buf (NUL-terminated). */
void sluice_frame_error_message(const sluice_frame_error *e, char *buf, size_t cap);

/* A malformed frame as the call's error (`bad-frame`, with that message,
 * held until the next malformed frame); returns false. */
bool sluice_bad_frame(const sluice_frame_error *fe, sluice_error *err);

typedef struct sluice_frame_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} sluice_frame_reader;

/* A record read in place; its headers are still encoded. */
typedef struct sluice_frame_record {
    sluice_bytes key;
    sluice_bytes value;
    int64_t timestamp;
    bool has_timestamp;
    uint32_t header_count;
    const uint8_t *header_bytes; /* `header_count` × (name string, value bytes) */
    size_t header_len;
} sluice_frame_record;

typedef struct sluice_frame_status {
    uint8_t kind; /* SLUICE_STATUS_OK or SLUICE_STATUS_REJECTED */
    uint32_t count;          /* ok: records that follow */
    const char *code;        /* rejected */
    size_t code_len;
    const char *message;
    size_t message_len;
} sluice_frame_status;

/* Opens an input or output frame: checks the version, reads the count. */
bool sluice_frame_open(sluice_frame_reader *r, const uint8_t *buf, size_t len, uint32_t *count,
                       sluice_frame_error *err);

/* Reads the next record (header names are checked to be UTF-8). */
bool sluice_frame_read_record(sluice_frame_reader *r, sluice_frame_record *rec,
                              sluice_frame_error *err);

/* Decodes the next of a record's encoded headers (already checked). */
void sluice_frame_next_header(const uint8_t **p, sluice_header *h);

/* Reads the next status of an output frame. */
bool sluice_frame_read_status(sluice_frame_reader *r, sluice_frame_status *st,
                              sluice_frame_error *err);

/* True when the whole frame was read; otherwise a trailing-bytes error. */
bool sluice_frame_at_end(const sluice_frame_reader *r, sluice_frame_error *err);

/* ------------------------------------------------------------ frame writer */

/* Writes a frame into a malloc'd buffer that grows (traps when memory runs
 * out). */
typedef struct sluice_frame_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t group_at; /* offset of the open ok group's count */
    uint32_t group_n;
    bool group_open;
} sluice_frame_writer;

/* Starts an input or output frame of `count` records or statuses, with room
 * for `capacity` bytes. */
void sluice_frame_writer_init(sluice_frame_writer *w, uint32_t count, size_t capacity);
void sluice_frame_begin_ok(sluice_frame_writer *w);
/* Drops everything since the open ok status began, status byte included. */
void sluice_frame_abandon_ok(sluice_frame_writer *w);
void sluice_frame_rejected(sluice_frame_writer *w, const char *code, size_t code_len,
                           const char *message, size_t message_len);
void sluice_frame_write_record(sluice_frame_writer *w, const sluice_record *rec);
/* Closes the open group; returns the buffer (the caller owns it). */
uint8_t *sluice_frame_finish(sluice_frame_writer *w, size_t *len);
void sluice_frame_writer_free(sluice_frame_writer *w);

/* ------------------------------------------------------------ emitter */

/* What a processor or aggregator function writes to. */
struct sluice_emitter {
    sluice_frame_writer *writer; /* a processor's output frame */
    bool rejected;
    const char *code;
    size_t code_len;
    const char *message;
    size_t message_len;
    bool aggregator;        /* set for an aggregator's functions */
    bool has_aggregate;     /* sluice_aggregate() was called */
    sluice_bytes aggregate; /* its JSON, NUL-terminated, in the arena */
};

/* ------------------------------------------------------------ text */

bool sluice_utf8_valid(const uint8_t *s, size_t len);
/* `fmt` formatted into a string of the current call (sluice_alloc); its
 * length goes to `len` when that is not NULL. */
char *sluice_vafmt(size_t *len, const char *fmt, va_list ap);
/* Copies `s` into the arena, NUL-terminated, with every byte of an invalid
 * UTF-8 sequence replaced by '?'. */
char *sluice_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* ------------------------------------------------------------ JSON, numbers */

/* The double nearest to the JSON number at s[0..len) (its syntax already
 * checked), ties to even. */
bool sluice_parse_number(const uint8_t *s, size_t len, double *out);

/* `v` as the shortest text that reads back as it (precision < 0), or
 * rounded to `precision` significant digits; at most 26 bytes and a NUL. */
size_t sluice_format_double(double v, int precision, char *out);

/* True when `json` is one JSON value; otherwise *why (when not NULL) says
 * what is wrong and where (an arena string). */
bool sluice_json_check(sluice_bytes json, const char **why);

/* ------------------------------------------------------------ arena */

/* Frees everything sluice_alloc gave since the last reset. */
void sluice_arena_reset(void);

/* ------------------------------------------------------------ runtime */

/* One config entry, as the glue hands it over (not NUL-terminated). */
typedef struct sluice_kv_in {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} sluice_kv_in;

/* processor.init: keeps a copy of the config and runs the init entry. On
 * failure fills *err (strings live until the next call) and returns false. */
bool sluice_runtime_init(const sluice_kv_in *config, size_t n, sluice_error *err);

/* The same with an init function of its own (NULL: accept any config). */
bool sluice_runtime_init_with(const sluice_kv_in *config, size_t n, sluice_init_fn fn,
                              sluice_error *err);

/* Runs `fn` with the current config unless init already succeeded (the
 * host may call the first batch without init: an empty config). */
bool sluice_runtime_ensure_init(sluice_init_fn fn, sluice_error *err);

/* processor.process: runs `fn` over an input frame. On success *out is a
 * malloc'd output frame the caller frees; on a malformed frame (or an init
 * failure) fills *err and returns false. Call sluice_arena_reset() after
 * the result has been handed over. */
bool sluice_runtime_process(sluice_process_fn fn, const uint8_t *batch, size_t len,
                            uint8_t **out, size_t *out_len, sluice_error *err);

/* Forgets the config and init state (tests only). */
void sluice_runtime_reset(void);

/* aggregator.init: as sluice_runtime_init, with the aggregator's init. */
bool sluice_aggregator_init(const sluice_aggregator_def *def, const sluice_kv_in *config,
                            size_t n, sluice_error *err);

/* aggregator.add: threads each key's aggregate through the batch's records
 * (wit/FRAME.md, "Aggregator calls"). On success *out is a malloc'd output
 * frame; a malformed frame (or a failed init) fills *err. Call
 * sluice_arena_reset() after the result has been handed over. */
bool sluice_aggregator_add(const sluice_aggregator_def *def, const uint8_t *aggregates,
                           size_t aggregates_len, const uint8_t *batch, size_t batch_len,
                           uint8_t **out, size_t *out_len, sluice_error *err);

/* aggregator.merge: `key` null for none. On success *out is the merged
 * aggregate, malloc'd; otherwise *err (bad-aggregate, merge-unsupported,
 * or the plugin's rejection). */
bool sluice_aggregator_merge(const sluice_aggregator_def *def, sluice_bytes key,
                             sluice_bytes a, sluice_bytes b, uint8_t **out, size_t *out_len,
                             sluice_error *err);

/* ------------------------------------------------------------ host imports */

/* Implemented by the WIT glue (sluice_wit.c), or by a test stub. Strings are
 * valid UTF-8. Returned bytes and error strings must live until the end of
 * the call (allocate them with sluice_alloc). */
void sluice_host_log(sluice_level level, const char *msg, size_t len);
/* 1 found, 0 absent, -1 error */
int sluice_host_state_get(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes *value, sluice_error *err);
int sluice_host_state_put(const char *store, size_t store_len, sluice_bytes key,
                          sluice_bytes value, sluice_error *err);
int sluice_host_state_delete(const char *store, size_t store_len, sluice_bytes key,
                             sluice_error *err);
long sluice_host_state_range(const char *store, size_t store_len, sluice_bytes start,
                             sluice_bytes end, uint32_t limit, const sluice_entry **entries,
                             sluice_error *err);

#endif /* SLUICE_INTERNAL_H */
