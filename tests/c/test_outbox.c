/* The outbox from C against the WeChat sandbox: enqueue (and its duplicate), flush, stats,
 * a dead letter requeued and one dropped, and bad input for every argument of the five
 * exports. The sandbox's control API is reached through call_api. */
#include "check.h"

static const char *APP = "wxdemo0000000001";
static const char *EVENT = "order_pay_success";
static const char *PAYLOAD =
    "{\"touser\": \"oCOutboxBuyer_001\", \"fields\": {\"order_id\": 7, \"order_sn\": \"%s\","
    " \"order_amount\": \"88\", \"order_total_goods_name\": \"帆布包\", \"pay_time\": 1795426265}}";

static FashopNotifyStatus enqueue(const char *order_sn, char **out) {
    char payload[512];
    snprintf(payload, sizeof payload, PAYLOAD, order_sn);
    return fashop_notify_enqueue(APP, EVENT, payload, out);
}

static void control(const char *path, const char *body) {
    char *out = NULL;
    CHECK_OK(fashop_notify_call_api(APP, "POST", path, body, &out));
    fashop_notify_string_free(out);
}

/* Runs flush(appid, 10) and checks that its report contains `needle`. */
static void flush_expect(const char *appid, const char *needle) {
    char *out = NULL;
    CHECK_OK(fashop_notify_flush(appid, 10, &out));
    CHECK(out && strstr(out, needle));
    if (out && !strstr(out, needle)) fprintf(stderr, "flush report: %s\n", out);
    fashop_notify_string_free(out);
}

static void stats_expect(const char *appid, const char *needle) {
    char *out = NULL;
    CHECK_OK(fashop_notify_outbox_stats(appid, &out));
    CHECK(out && strstr(out, needle));
    if (out && !strstr(out, needle)) fprintf(stderr, "outbox stats: %s\n", out);
    fashop_notify_string_free(out);
}

int main(void) {
    if (setup_demo_app("\"max_retries\": 0, \"outbox\": {\"max_attempts\": 3}")) return check_report("test_outbox");
    char buf[1024];
    const char *tpl = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";
    snprintf(buf, sizeof buf,
             "{\"appid\": \"%s\", \"openid\": \"oCOutboxBuyer_001\", \"template_id\": \"%s\", \"count\": 3}", APP, tpl);
    control("/sandbox/grants", buf);
    snprintf(buf, sizeof buf, "{\"openid\": \"oCOutboxBuyer_001\", \"kind\": \"subscribe\", \"template_id\": \"%s\", \"count\": 3}",
             tpl);
    CHECK_OK(fashop_notify_add_permit(APP, buf));

    /* Enqueue, the pay callback's second call, the send, nothing left. */
    char *out = NULL;
    CHECK_OK(enqueue("SN-OB-1", &out));
    CHECK(out && strstr(out, "\"id\":1") && strstr(out, "\"duplicate\":false") &&
          strstr(out, "\"idempotency_key\":\"wxdemo0000000001:order_pay_success:oCOutboxBuyer_001:SN-OB-1\"") &&
          strstr(out, "\"due_at\":"));
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(enqueue("SN-OB-1", &out));
    CHECK(out && strstr(out, "\"id\":1") && strstr(out, "\"duplicate\":true"));
    fashop_notify_string_free(out);
    stats_expect(APP, "\"pending\":1");
    flush_expect(NULL, "\"sent\":1");
    flush_expect(APP, "\"sent\":0");
    stats_expect(NULL, "\"sent\":1");

    /* WeChat refuses one: a dead letter with its errcode, requeued, then sent. */
    control("/sandbox/faults", "{\"path\": \"/cgi-bin/message/subscribe/send\", \"errcode\": 40003, \"count\": 1}");
    out = NULL;
    CHECK_OK(enqueue("SN-OB-2", &out));
    fashop_notify_string_free(out);
    flush_expect(APP, "\"dead\":1");
    stats_expect(APP, "\"errcode\":40003");
    CHECK_OK(fashop_notify_outbox_requeue(APP, 2));
    CHECK_STATUS(fashop_notify_outbox_requeue(APP, 2), FASHOP_NOTIFY_INVALID_ARGUMENT, "is pending");
    flush_expect(APP, "\"sent\":1");

    /* Another dead letter, dropped. */
    control("/sandbox/faults", "{\"path\": \"/cgi-bin/message/subscribe/send\", \"errcode\": 40003, \"count\": 1}");
    out = NULL;
    CHECK_OK(enqueue("SN-OB-3", &out));
    fashop_notify_string_free(out);
    flush_expect(APP, "\"dead\":1");
    CHECK_OK(fashop_notify_outbox_drop(APP, 3));
    stats_expect(APP, "\"dead\":0");
    CHECK_STATUS(fashop_notify_outbox_drop(APP, 3), FASHOP_NOTIFY_INVALID_ARGUMENT, "no outbox message 3");

    /* Bad input: a status and a message, never a crash, never an out string. */
    char payload[512];
    snprintf(payload, sizeof payload, PAYLOAD, "SN-OB-4");
    const char bad_utf8[] = {'w', 'x', (char)0xff, 0};
    out = (char *)bad_utf8;
    CHECK_STATUS(fashop_notify_enqueue(NULL, EVENT, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "enqueue: appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_enqueue(APP, NULL, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event must not be NULL");
    CHECK_STATUS(fashop_notify_enqueue(APP, EVENT, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "payload_json must not be NULL");
    CHECK_STATUS(fashop_notify_enqueue(APP, EVENT, payload, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_enqueue(bad_utf8, EVENT, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_enqueue(APP, bad_utf8, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event is not valid UTF-8");
    CHECK_STATUS(fashop_notify_enqueue(APP, EVENT, bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "payload_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_enqueue(APP, EVENT, "{\"touser\": ", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "EOF");
    CHECK_STATUS(fashop_notify_enqueue(APP, EVENT, "{\"touser\": 5, \"fields\": {}}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "touser");
    CHECK_STATUS(fashop_notify_enqueue("wxnotregistered01", EVENT, payload, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK_STATUS(fashop_notify_enqueue(APP, "order_shipped_typo", payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "order_shipped_typo");
    CHECK(out == NULL);
    stats_expect(APP, "\"pending\":0");

    CHECK_STATUS(fashop_notify_flush(APP, 0, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "max_messages");
    CHECK_STATUS(fashop_notify_flush(APP, 10, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_flush(bad_utf8, 10, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid_or_null is not valid UTF-8");
    CHECK_STATUS(fashop_notify_flush("wxnotregistered01", 10, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK(out == NULL);

    CHECK_STATUS(fashop_notify_outbox_stats(APP, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_outbox_stats(bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid_or_null is not valid UTF-8");
    CHECK_STATUS(fashop_notify_outbox_stats("wxnotregistered01", &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK(out == NULL);

    CHECK_STATUS(fashop_notify_outbox_requeue(NULL, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK_STATUS(fashop_notify_outbox_requeue(bad_utf8, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "not valid UTF-8");
    CHECK_STATUS(fashop_notify_outbox_requeue("wxnotregistered01", 1), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK_STATUS(fashop_notify_outbox_requeue(APP, 0), FASHOP_NOTIFY_INVALID_ARGUMENT, "id must be");
    CHECK_STATUS(fashop_notify_outbox_requeue(APP, 999), FASHOP_NOTIFY_INVALID_ARGUMENT, "no outbox message 999");
    CHECK_STATUS(fashop_notify_outbox_requeue(APP, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "is sent");

    CHECK_STATUS(fashop_notify_outbox_drop(NULL, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK_STATUS(fashop_notify_outbox_drop(bad_utf8, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "not valid UTF-8");
    CHECK_STATUS(fashop_notify_outbox_drop("wxnotregistered01", 1), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    CHECK_STATUS(fashop_notify_outbox_drop(APP, 0), FASHOP_NOTIFY_INVALID_ARGUMENT, "id must be");
    CHECK_STATUS(fashop_notify_outbox_drop(APP, 999), FASHOP_NOTIFY_INVALID_ARGUMENT, "no outbox message 999");
    CHECK_STATUS(fashop_notify_outbox_drop(APP, 1), FASHOP_NOTIFY_INVALID_ARGUMENT, "is sent");
    return check_report("test_outbox");
}
