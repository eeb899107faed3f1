/*
 * Tests of {{name}}, run on this machine (no broker, no wasm):
 * `sluice plugin test .` The records go through the frames the host uses.
 */
#include "sluice_testing.h"

SLUICE_TEST(upper_cases_the_value) {
    sluice_record in[] = {sluice_test_record("a", "hello")};
    const sluice_test_result *out = sluice_test_process(in, 1);
    SLUICE_CHECK(!out[0].rejected && out[0].count == 1);
    SLUICE_CHECK_BYTES(out[0].records[0].key, "a");
    SLUICE_CHECK_BYTES(out[0].records[0].value, "HELLO");
}

SLUICE_TEST(rejects_a_record_without_a_value) {
    sluice_record in[] = {sluice_test_record("b", NULL), sluice_test_record("b", "")};
    const sluice_test_result *out = sluice_test_process(in, 2);
    SLUICE_CHECK(out[0].rejected && out[1].rejected);
    SLUICE_CHECK_STR(out[0].code, "empty");
}
