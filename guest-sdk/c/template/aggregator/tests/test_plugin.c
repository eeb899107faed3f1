/*
 * Tests of {{name}}, run on this machine (no broker, no wasm):
 * `sluice plugin test .` The records go through the frames the host uses.
 */
#include "sluice_testing.h"

SLUICE_TEST(keeps_a_running_count_and_total_per_key) {
    sluice_record in[] = {
        sluice_test_record("a", "{\"amount\": 12.5}"),
        sluice_test_record("b", "{\"amount\": 3}"),
        sluice_test_record("a", "{\"amount\": 7.25}"),
    };
    const sluice_test_result *out = sluice_test_add(in, 3);
    SLUICE_CHECK_STR(out[0].aggregate, "{\"count\":1,\"total\":12.5}");
    SLUICE_CHECK_STR(out[1].aggregate, "{\"count\":1,\"total\":3}");
    SLUICE_CHECK_STR(out[2].aggregate, "{\"count\":2,\"total\":19.75}");
}

SLUICE_TEST(a_rejected_record_leaves_the_aggregate_as_it_was) {
    sluice_record stored[] = {sluice_test_record("b", "{\"count\":4,\"total\":10}")};
    sluice_record in[] = {
        sluice_test_record("b", "not json"),
        sluice_test_record("b", "{\"amount\": \"12\"}"),
        sluice_test_record("b", "{\"amount\": 2}"),
    };
    const sluice_test_result *out = sluice_test_add_to(stored, 1, in, 3);
    SLUICE_CHECK(out[0].rejected && out[1].rejected);
    SLUICE_CHECK_STR(out[0].code, "bad-amount");
    SLUICE_CHECK_STR(out[2].aggregate, "{\"count\":5,\"total\":12}");
}

SLUICE_TEST(merges_two_aggregates_of_a_key) {
    const sluice_test_result *out =
        sluice_test_merge("a", "{\"count\":2,\"total\":5}", "{\"count\":1,\"total\":0.5}");
    SLUICE_CHECK_STR(out->aggregate, "{\"count\":3,\"total\":5.5}");
}
