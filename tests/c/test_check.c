/* Checking mappings against the app's live templates in the sandbox, and the keyword types,
 * through the C ABI: bad input for every argument and every kind of problem. */
#include "check.h"

#define DEMO_APPID "wxdemo0000000001"

static const char BAD_UTF8[] = {'w', 'x', (char)0xff, (char)0xfe, 0};

/* Every kind of problem the check reports, one event each (the sandbox's seeded templates). */
static const char *BAD_DOC =
    "{\"version\": 1, \"events\": {"
    "  \"order_pay_success\": {\"template_id\": \"no-such-template\","
    "    \"data\": {\"thing3\": \"{order_total_goods_name}\"}},"
    "  \"order_delivered\": {\"template_id\": \"Ib27Mxy85v0eqHp2ERuLGQZx3NAcZCf_jCmhQdY7Ez-\", \"data\": {"
    "    \"character_string1\": \"{order_sn}\", \"thing2\": \"{express_company}\","
    "    \"character_string3\": \"{tracking_no}\", \"thing9\": \"{order_total_goods_name}\","
    "    \"site01\": \"{express_company}\"}},"
    "  \"order_cancel\": {\"template_id\": \"zFZQHNIcOQTBP6tUWfm0kOqpQyP1OlFdyKhlIB3opX3\", \"data\": {"
    "    \"character_string1\": \"{order_sn}\", \"amount2\": \"{order_sn}\","
    "    \"thing3\": \"{cancel_reason}\", \"time4\": \"{order_cancel_time|datetime}\"}},"
    "  \"order_refund_apply\": {\"template_id\": \"Lt3kQ9vYx2mWnB7cR5sDfH8jK1pZ4aE6uG0iO_tNq-w\", \"data\": {"
    "    \"character_string1\": \"{order_sn}\", \"enum_string2\": \"已退款\","
    "    \"thing3\": \"退款处理中\", \"time4\": \"{refund_apply_time|datetime}\"}}"
    "}}";

/* `out` has a finding with this path and kind. Findings are written {"kind","message","path"}:
 * the finding's own kind is the last `{"kind":` before its path. */
static int has_finding(const char *out, const char *path, const char *kind) {
    char want_path[256], want_kind[128];
    snprintf(want_path, sizeof want_path, "\"path\":\"%s\"", path);
    snprintf(want_kind, sizeof want_kind, "{\"kind\":\"%s\"", kind);
    for (const char *at = strstr(out, want_path); at; at = strstr(at + 1, want_path)) {
        const char *open = NULL;
        for (const char *k = strstr(out, "{\"kind\":"); k && k < at; k = strstr(k + 1, "{\"kind\":")) open = k;
        if (open && strncmp(open, want_kind, strlen(want_kind)) == 0) return 1;
    }
    return 0;
}

static void test_keyword_types(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_keyword_types(&out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"type\":\"enum_string\"") != NULL);
        CHECK(strstr(out, "\"type\":\"short_thing\"") != NULL);
        CHECK(strstr(out, "\"source\":\"unverified\"") != NULL);
        CHECK(strstr(out, "\"source\":\"https://developers.weixin.qq.com/") != NULL);
    }
    fashop_notify_string_free(out);
    CHECK_STATUS(fashop_notify_keyword_types(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "keyword_types: out_json must not be NULL");
}

static void test_bad_input(void) {
    char *out = (char *)0x1;
    CHECK_STATUS(fashop_notify_check_mappings(NULL, NULL, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "check_mappings: appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_check_mappings(BAD_UTF8, NULL, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, BAD_UTF8, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "mappings_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, NULL, BAD_UTF8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "options_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, "{\"version\": ", NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "mappings_json is not valid JSON");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, NULL, "{\"refresh\": ", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "options_json is not valid JSON");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, NULL, "{\"refresh\": \"yes\"}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "refresh must be true or false");
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, NULL, "{\"force\": true}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "unknown field \"force\"");
    CHECK_STATUS(fashop_notify_check_mappings("wxunknown0000001", NULL, NULL, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "wxunknown0000001");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_check_mappings(DEMO_APPID, NULL, NULL, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "check_mappings: out_json must not be NULL");
}

static void test_the_loaded_document_fits(void) {
    char *out = NULL;
    CHECK_OK(fashop_notify_check_mappings(DEMO_APPID, NULL, NULL, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"ok\":true") != NULL);
        CHECK(strstr(out, "\"problems\":[]") != NULL);
        CHECK(strstr(out, "\"cached\":false") != NULL);
    }
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(fashop_notify_check_mappings(DEMO_APPID, NULL, "{}", &out));
    CHECK(out != NULL && strstr(out, "\"cached\":true") != NULL);
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(fashop_notify_check_mappings(DEMO_APPID, NULL, "{\"refresh\": true}", &out));
    CHECK(out != NULL && strstr(out, "\"cached\":false") != NULL);
    fashop_notify_string_free(out);
}

static void test_every_kind_of_problem(void) {
    char *out = NULL;
    CHECK_OK(fashop_notify_check_mappings(DEMO_APPID, BAD_DOC, NULL, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"ok\":false") != NULL);
        CHECK(has_finding(out, "events.order_pay_success.template_id", "unknown_template"));
        CHECK(has_finding(out, "events.order_delivered.data.thing9", "keyword_not_in_template"));
        CHECK(has_finding(out, "events.order_delivered.data.time4", "keyword_not_mapped"));
        CHECK(has_finding(out, "events.order_cancel.data.amount2", "value_cannot_fit"));
        CHECK(has_finding(out, "events.order_refund_apply.data.enum_string2", "enum_value_not_allowed"));
        CHECK(has_finding(out, "events.order_delivered.data.site01", "unknown_keyword_type"));
        CHECK(!has_finding(out, "events.order_cancel.data.thing3", "value_cannot_fit"));
    }
    fashop_notify_string_free(out);

    /* A document that does not load: its own problems, no templates read. */
    out = NULL;
    CHECK_OK(fashop_notify_check_mappings(
        DEMO_APPID, "{\"version\": 1, \"events\": {\"order_cancel\": {\"template_id\": \"t\", \"data\": {\"thing1\": \"{x}\"}}}}",
        NULL, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(has_finding(out, "events.order_cancel.data.thing1", "invalid_mapping"));
        CHECK(strstr(out, "\"templates\":null") != NULL);
    }
    fashop_notify_string_free(out);

    /* The loaded document is untouched by the checks. */
    out = NULL;
    CHECK_OK(fashop_notify_get_mappings(DEMO_APPID, &out));
    CHECK(out != NULL && strstr(out, "no-such-template") == NULL);
    fashop_notify_string_free(out);
}

int main(void) {
    test_keyword_types();
    if (setup_demo_app("\"max_retries\": 0")) return check_report("test_check");
    test_bad_input();
    test_the_loaded_document_fits();
    test_every_kind_of_problem();
    return check_report("test_check");
}
