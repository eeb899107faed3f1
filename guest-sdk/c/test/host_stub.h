#ifndef SLUICE_HOST_STUB_H
#define SLUICE_HOST_STUB_H

#include "sluice_internal.h"

#define STUB_MAX_LOGS 64

typedef struct stub_log_line {
    sluice_level level;
    char *text;
    size_t len;
} stub_log_line;

/* Log lines received, in order. */
extern stub_log_line stub_logs[STUB_MAX_LOGS];
extern size_t stub_log_count;
/* When set, every state call fails with code `state-failed`. The only
 * store that exists is `seen`. */
extern bool stub_state_fail;

void stub_reset(void);
void stub_state_clear(void);

#endif
