/* `sluice plugin test tests/plugins/sessions-c` */
#include "sluice_testing.h"

SLUICE_TEST(sums_purchases_and_keeps_the_largest) {
    sluice_record in[] = {
        sluice_test_record("c-1", "{\"amount\": 10, \"at\": \"2026-03-02T09:00:00Z\"}"),
        sluice_test_record("c-1", "{\"amount\": \"oops\"}"),
        sluice_test_record("c-1", "{\"amount\": 5.5}"),
        sluice_test_record("c-2", "{\"amount\": -3}"),
    };
    const sluice_test_result *out = sluice_test_add(in, 4);
    SLUICE_CHECK_STR(out[0].aggregate, "{\"purchases\":1,\"total\":10,\"largest\":10}");
    SLUICE_CHECK(out[1].rejected);
    SLUICE_CHECK_STR(out[1].code, "bad-amount");
    SLUICE_CHECK_STR(out[2].aggregate, "{\"purchases\":2,\"total\":15.5,\"largest\":10}");
    SLUICE_CHECK_STR(out[3].aggregate, "{\"purchases\":1,\"total\":-3,\"largest\":-3}");
}

SLUICE_TEST(merging_two_sessions_adds_them) {
    const sluice_test_result *out =
        sluice_test_merge("c-1", "{\"purchases\":2,\"total\":15.5,\"largest\":10}",
                          "{\"purchases\":2,\"total\":32.25,\"largest\":30}");
    SLUICE_CHECK_STR(out->aggregate, "{\"purchases\":4,\"total\":47.75,\"largest\":30}");
    out = sluice_test_merge("c-1", "{\"purchases\":1,\"total\":-1,\"largest\":-1}",
                            "{\"purchases\":0,\"total\":0,\"largest\":0}");
    SLUICE_CHECK_STR(out->aggregate, "{\"purchases\":1,\"total\":-1,\"largest\":-1}");
}
