/* Event catalog, mapping documents and render through the C ABI, with bad input for every argument. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define APP "wxc0000000000map1"
#define OTHER_APP "wxc0000000000map2"

static const char *MAPPING =
    "{\"version\": 1, \"events\": {"
    "  \"order_pay_success\": {"
    "    \"template_id\": \"tmplPaySuccess\","
    "    \"page\": \"/pages/order/detail?id={order_id}\","
    "    \"data\": {"
    "      \"character_string1\": \"{order_sn}\","
    "      \"amount2\": \"{order_amount|money}\","
    "      \"thing3\": \"{order_total_goods_name}\","
    "      \"time4\": \"{pay_time|datetime}\"}},"
    "  \"order_delivered\": {"
    "    \"kind\": \"template\", \"template_id\": \"legacyDelivered\","
    "    \"data\": {\"keyword1\": \"{order_sn}\", \"keyword2\": \"{express_company} {tracking_no}\"},"
    "    \"emphasis_keyword\": \"keyword1.DATA\"}"
    "}}";

static const char *PAYLOAD =
    "{\"touser\": \"oC_user_1\", \"fields\": {\"order_sn\": \"SN20261122\", \"order_amount\": 12.345,"
    " \"order_total_goods_name\": \"法式碎花连衣裙 法式碎花连衣裙 法式碎花连衣裙\","
    " \"pay_time\": 1795354200, \"order_id\": 10086, \"ignored\": {\"x\": [1]}}}";

static const char BAD_UTF8[] = {'w', 'x', (char)0xff, (char)0xfe, 0};

static void test_catalog(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_event_catalog(&out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"event\":\"order_pay_success\"") != NULL);
        CHECK(strstr(out, "\"label\":\"支付成功\"") != NULL);
        CHECK(strstr(out, "\"name\":\"order_id\"") != NULL);
        CHECK(strstr(out, "\"event\":\"order_delivered\"") != NULL);
    }
    fashop_notify_string_free(out);
    CHECK_STATUS(fashop_notify_event_catalog(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event_catalog: out_json must not be NULL");
}

static void test_load_get_render(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_register_app("{\"appid\": \"" APP "\", \"secret\": \"map-secret\"}"));
    CHECK_STATUS(fashop_notify_get_mappings(APP, &out), FASHOP_NOTIFY_MAPPING_ERROR,
                 "no mapping document is loaded for app " APP);
    CHECK(out == NULL);
    CHECK_OK(fashop_notify_load_mappings(APP, MAPPING));
    CHECK(strcmp(fashop_notify_last_error(), "") == 0);

    CHECK_OK(fashop_notify_get_mappings(APP, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"template_id\":\"tmplPaySuccess\"") != NULL);
        CHECK(strstr(out, "\"overflow\":\"truncate\"") != NULL);
        CHECK(strstr(out, "\"kind\":\"template\"") != NULL);
    }
    fashop_notify_string_free(out);

    out = (char *)0x1;
    CHECK_OK(fashop_notify_render(APP, "order_pay_success", PAYLOAD, &out));
    const char *want =
        "{\"data\":{\"amount2\":{\"value\":\"¥12.35\"},\"character_string1\":{\"value\":\"SN20261122\"},"
        "\"thing3\":{\"value\":\"法式碎花连衣裙 法式碎花连衣裙 法式碎…\"},"
        "\"time4\":{\"value\":\"2026-11-22 21:30\"}},\"lang\":\"zh_CN\",\"miniprogram_state\":\"formal\","
        "\"page\":\"pages/order/detail?id=10086\",\"template_id\":\"tmplPaySuccess\",\"touser\":\"oC_user_1\"}";
    CHECK(out != NULL && strcmp(out, want) == 0);
    if (out && strcmp(out, want) != 0) fprintf(stderr, "got  %s\nwant %s\n", out, want);
    fashop_notify_string_free(out);

    out = NULL;
    CHECK_OK(fashop_notify_render(APP, "order_delivered",
                                  "{\"touser\": \"oC_user_1\", \"fields\": {\"order_sn\": \"SN1\","
                                  " \"express_company\": \"顺丰速运\", \"tracking_no\": \"SF1\"}}",
                                  &out));
    CHECK(out != NULL &&
          strcmp(out, "{\"data\":{\"keyword1\":{\"value\":\"SN1\"},\"keyword2\":{\"value\":\"顺丰速运 SF1\"}},"
                      "\"emphasis_keyword\":\"keyword1.DATA\",\"template_id\":\"legacyDelivered\","
                      "\"touser\":\"oC_user_1\"}") == 0);
    fashop_notify_string_free(out);
}

static void test_bad_mapping_keeps_the_old_one(void) {
    CHECK_STATUS(fashop_notify_load_mappings(
                     APP, "{\"version\": 1, \"events\": {\"order_pay_success\": {\"template_id\": \"t\","
                          " \"data\": {\"thing3\": \"{order_snn}\", \"amount2\": \"{order_amount|moneyy}\"},"
                          " \"page\": \"/?x=1\"}}}"),
                 FASHOP_NOTIFY_MAPPING_ERROR,
                 "events.order_pay_success.data.thing3: unknown placeholder {order_snn}");
    const char *le = fashop_notify_last_error();
    CHECK(strstr(le, "load_mappings: mapping document for " APP " has 3 problems") != NULL);
    CHECK(strstr(le, "events.order_pay_success.data.amount2: unknown filter `moneyy`") != NULL);
    CHECK(strstr(le, "events.order_pay_success.page: bad page: must name a page") != NULL);
    CHECK_STATUS(fashop_notify_load_mappings(APP, "{\"version\": 1, \"events\": {\"order_paid\": {}}}"),
                 FASHOP_NOTIFY_MAPPING_ERROR, "events.order_paid: unknown event");
    char *out = NULL;
    CHECK_OK(fashop_notify_get_mappings(APP, &out));
    CHECK(out != NULL && strstr(out, "tmplPaySuccess") != NULL);
    fashop_notify_string_free(out);
}

static void test_bad_arguments(void) {
    char *out = (char *)0x1;
    /* load_mappings */
    CHECK_STATUS(fashop_notify_load_mappings(NULL, MAPPING), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "load_mappings: appid must not be NULL");
    CHECK_STATUS(fashop_notify_load_mappings(BAD_UTF8, MAPPING), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_load_mappings("", MAPPING), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be empty");
    CHECK_STATUS(fashop_notify_load_mappings(OTHER_APP, MAPPING), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK_STATUS(fashop_notify_load_mappings(APP, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "mappings_json must not be NULL");
    CHECK_STATUS(fashop_notify_load_mappings(APP, BAD_UTF8), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "mappings_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_load_mappings(APP, "{\"version\": 1,"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "mappings_json is not valid JSON");
    CHECK_STATUS(fashop_notify_load_mappings(APP, "[]"), FASHOP_NOTIFY_MAPPING_ERROR,
                 "(document): must be an object");

    /* get_mappings */
    CHECK_STATUS(fashop_notify_get_mappings(NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "get_mappings: appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_get_mappings(BAD_UTF8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_get_mappings(OTHER_APP, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK_STATUS(fashop_notify_get_mappings(APP, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");

    /* render */
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_render(NULL, "order_pay_success", PAYLOAD, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "render: appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_render(BAD_UTF8, "order_pay_success", PAYLOAD, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_render(OTHER_APP, "order_pay_success", PAYLOAD, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_render(APP, NULL, PAYLOAD, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event must not be NULL");
    CHECK_STATUS(fashop_notify_render(APP, BAD_UTF8, PAYLOAD, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event is not valid UTF-8");
    CHECK_STATUS(fashop_notify_render(APP, "order_paid", PAYLOAD, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "event `order_paid` is not in the catalog");
    CHECK_STATUS(fashop_notify_render(APP, "order_cancel", PAYLOAD, &out),
                 FASHOP_NOTIFY_MAPPING_ERROR, "event order_cancel is not mapped");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "payload_json must not be NULL");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", BAD_UTF8, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "payload_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", "{\"touser\": ", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "payload_json: EOF");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", "[]", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "payload_json: invalid type");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", "{\"fields\": {}}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "missing field `touser`");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", "{\"touser\": 5}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "touser must be a string");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success",
                                      "{\"touser\": \"o1\", \"fields\": {\"order_sn\": \"SN1\"}}", &out),
                 FASHOP_NOTIFY_MAPPING_ERROR,
                 "event order_pay_success, keyword amount2: field order_amount is missing");
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success",
                                      "{\"touser\": \"o1\", \"fields\": {\"order_sn\": \"订单1\", "
                                      "\"order_amount\": 1, \"order_total_goods_name\": \"x\", "
                                      "\"pay_time\": 0, \"order_id\": 1}}",
                                      &out),
                 FASHOP_NOTIFY_MAPPING_ERROR, "keyword character_string1 (field order_sn)");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_render(APP, "order_pay_success", PAYLOAD, NULL),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
}

#define THREADS 4
#define ROUNDS 300

static void *renderer(void *arg) {
    (void)arg;
    intptr_t failures = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char *out = NULL;
        if (fashop_notify_render(APP, "order_pay_success", PAYLOAD, &out) != FASHOP_NOTIFY_OK ||
            out == NULL || strstr(out, "\"value\":\"¥12.35\"") == NULL)
            failures++;
        fashop_notify_string_free(out);
    }
    return (void *)failures;
}

static void test_render_while_reloading(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, renderer, NULL);
    int reload_failures = 0;
    for (int i = 0; i < ROUNDS; i++)
        if (fashop_notify_load_mappings(APP, MAPPING) != FASHOP_NOTIFY_OK) reload_failures++;
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)(intptr_t)r;
    }
    CHECK(failures == 0);
    CHECK(reload_failures == 0);
}

int main(void) {
    test_catalog();
    test_load_get_render();
    test_bad_mapping_keeps_the_old_one();
    test_bad_arguments();
    test_render_while_reloading();
    return check_report("test_mapping");
}
