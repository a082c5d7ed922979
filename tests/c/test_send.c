/* fashop_notify_send from C against the WeChat sandbox: success, duplicate, NO_PERMIT and
 * WECHAT_ERROR with their outcome JSON, and bad input for every argument. The sandbox's
 * control API (grants, faults) is reached through call_api, which saves the test an HTTP client. */
#include "check.h"

static const char *APP = "wxdemo0000000001";
static const char *PAYLOAD =
    "{\"touser\": \"oCTestBuyer_0001\", \"fields\": {\"order_id\": 7, \"order_sn\": \"%s\","
    " \"order_amount\": \"88\", \"order_total_goods_name\": \"帆布包\", \"pay_time\": 1795426265}}";

/* Copies the value of "key":"…" out of a JSON text (enough for the template id). */
static int json_string(const char *json, const char *key, char *out, size_t cap) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":\"", key);
    const char *p = strstr(json, needle);
    if (!p) return 0;
    p += strlen(needle);
    size_t i = 0;
    while (p[i] && p[i] != '"' && i + 1 < cap) {
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
    return 1;
}

static FashopNotifyStatus send_order(const char *order_sn, char **out) {
    char payload[512];
    snprintf(payload, sizeof payload, PAYLOAD, order_sn);
    return fashop_notify_send(APP, "order_pay_success", payload, out);
}

static void control(const char *path, const char *body) {
    char *out = NULL;
    CHECK_OK(fashop_notify_call_api(APP, "POST", path, body, &out));
    fashop_notify_string_free(out);
}

int main(void) {
    if (setup_demo_app("\"max_retries\": 1")) return check_report("test_send");
    char buf[1024];

    char *out = NULL;
    char tpl[128] = "";
    CHECK_OK(fashop_notify_get_mappings(APP, &out));
    if (out) {
        const char *ev = strstr(out, "\"order_pay_success\"");
        CHECK(ev && json_string(ev, "template_id", tpl, sizeof tpl));
    }
    fashop_notify_string_free(out);

    /* No grant yet: NO_PERMIT, and an outcome all the same. */
    out = NULL;
    CHECK_STATUS(send_order("SN-C-1", &out), FASHOP_NOTIFY_NO_PERMIT, "no usable");
    CHECK(out && strstr(out, "\"status\":\"no_permit\""));
    fashop_notify_string_free(out);

    /* The buyer taps "allow" twice; the shop records both. */
    snprintf(buf, sizeof buf,
             "{\"appid\": \"%s\", \"openid\": \"oCTestBuyer_0001\", \"template_id\": \"%s\", \"count\": 2}", APP, tpl);
    control("/sandbox/grants", buf);
    snprintf(buf, sizeof buf, "{\"openid\": \"oCTestBuyer_0001\", \"kind\": \"subscribe\", \"template_id\": \"%s\", \"count\": 2}",
             tpl);
    CHECK_OK(fashop_notify_add_permit(APP, buf));

    out = NULL;
    CHECK_OK(send_order("SN-C-1", &out));
    CHECK(out && strstr(out, "\"status\":\"sent\"") && strstr(out, "\"remaining\":1"));
    fashop_notify_string_free(out);

    out = NULL;
    CHECK_OK(send_order("SN-C-1", &out));
    CHECK(out && strstr(out, "\"status\":\"duplicate\""));
    fashop_notify_string_free(out);

    /* WeChat says the openid is invalid: WECHAT_ERROR, outcome with the errcode, grant given back. */
    control("/sandbox/faults", "{\"path\": \"/cgi-bin/message/subscribe/send\", \"errcode\": 40003, \"count\": 1}");
    out = NULL;
    CHECK_STATUS(send_order("SN-C-2", &out), FASHOP_NOTIFY_WECHAT_ERROR, "40003");
    CHECK(out && strstr(out, "\"errcode\":40003") && strstr(out, "\"status\":\"failed\""));
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(send_order("SN-C-2", &out));
    CHECK(out && strstr(out, "\"remaining\":0"));
    fashop_notify_string_free(out);

    /* Bad input: a status and a message, never a crash, and no outcome. */
    char payload[512];
    snprintf(payload, sizeof payload, PAYLOAD, "SN-C-3");
    const char bad_utf8[] = {'o', 'r', (char)0xff, 0};
    out = (char *)bad_utf8;
    CHECK_STATUS(fashop_notify_send(NULL, "order_pay_success", payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_send(APP, NULL, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event must not be NULL");
    CHECK_STATUS(fashop_notify_send(APP, "order_pay_success", NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "payload_json must not be NULL");
    CHECK_STATUS(fashop_notify_send(APP, "order_pay_success", payload, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_send(APP, bad_utf8, payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "event is not valid UTF-8");
    CHECK_STATUS(fashop_notify_send(bad_utf8, "order_pay_success", payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_send(APP, "order_pay_success", "{\"touser\": ", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "EOF");
    CHECK_STATUS(fashop_notify_send(APP, "order_pay_success", "{\"touser\": 5, \"fields\": {}}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "touser");
    CHECK_STATUS(fashop_notify_send("wxnotregistered01", "order_pay_success", payload, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_send(APP, "order_shipped_typo", payload, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "order_shipped_typo");
    CHECK(out == NULL);
    return check_report("test_send");
}
