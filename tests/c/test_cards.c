/* Service cards from C against the WeChat sandbox: a buyer who never tapped "allow"
 * sees the order paid and shipped as card statuses; fashop_notify_card_status reads
 * the card from the store and from WeChat; bad input for every argument of the export
 * and of a card send gets a status and a message, and loses nothing. */
#include <time.h>

#include "check.h"

static const char *APP = "wxdemo0000000001";
static const char *BUYER = "oCCardBuyer_000000000001";
static const char *TX = "4200002187202611230115260001";
static const char *MAPPINGS =
    "{\"version\": 1, \"events\": {"
    " \"order_pay_success\": {\"channel\": \"card\", \"card\": {\"notify_type\": 2001, \"status\": 1, \"fields\": {"
    "   \"wxa_path_query\": \"pages/order/detail?id={order_id}\", \"product_count\": \"{order_total_goods_num}\","
    "   \"product_list\": \"{order_goods}\"}}},"
    " \"order_delivered\": {\"channel\": \"card\", \"card\": {\"notify_type\": 2001, \"status\": 4, \"fields\": {"
    "   \"wxa_path_query\": \"pages/order/detail?id={order_id}\"}}}}}";

static void control(const char *path, const char *body) {
    char *out = NULL;
    CHECK_OK(fashop_notify_call_api(APP, "POST", path, body, &out));
    fashop_notify_string_free(out);
}

static void payload(char *buf, size_t n, const char *tx, long pay_time) {
    snprintf(buf, n,
             "{\"touser\": \"%s\", \"fields\": {\"order_sn\": \"SN-CARD-1\", \"order_id\": 7, \"transaction_id\": \"%s\","
             " \"order_amount\": \"88.00\", \"pay_time\": %ld, \"order_total_goods_num\": 1,"
             " \"order_goods\": [{\"title\": \"帆布包\", \"image\": \"https://img.example/1.png\", \"count\": 1,"
             " \"price\": \"88\"}]}}",
             BUYER, tx, pay_time);
}

/* send(event) is OK and its outcome contains `needle`. */
static void send_expect(const char *event, const char *body, const char *needle) {
    char *out = NULL;
    CHECK_OK(fashop_notify_send(APP, event, body, &out));
    CHECK(out && strstr(out, needle));
    if (out && !strstr(out, needle)) fprintf(stderr, "outcome: %s\n", out);
    fashop_notify_string_free(out);
}

static void status_expect(const char *query, const char *needle) {
    char *out = NULL;
    CHECK_OK(fashop_notify_card_status(APP, query, &out));
    CHECK(out && strstr(out, needle));
    if (out && !strstr(out, needle)) fprintf(stderr, "card status: %s\n", out);
    fashop_notify_string_free(out);
}

int main(void) {
    if (setup_demo_app("\"max_retries\": 0")) return check_report("test_cards");
    CHECK_OK(fashop_notify_load_mappings(APP, MAPPINGS));
    long now = (long)time(NULL);
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"appid\": \"%s\", \"openid\": \"%s\"}", APP, BUYER);
    control("/sandbox/users", buf);
    snprintf(buf, sizeof buf,
             "{\"appid\": \"%s\", \"transaction_id\": \"%s\", \"openid\": \"%s\", \"amount\": 8800, \"pay_time\": %ld,"
             " \"valid_after_secs\": 0}",
             APP, TX, BUYER, now);
    control("/sandbox/payments", buf);

    char body[1024];
    payload(body, sizeof body, TX, now);
    send_expect("order_pay_success", body, "\"result\":\"applied\"");
    send_expect("order_pay_success", body, "\"result\":\"duplicate\"");
    send_expect("order_delivered", body, "\"status\":4,\"result\":\"applied\"");
    char query[256];
    snprintf(query, sizeof query, "{\"transaction_id\": \"%s\"}", TX);
    status_expect(query, "\"statuses\":[1,4]");
    snprintf(query, sizeof query, "{\"transaction_id\": \"%s\", \"openid\": \"%s\", \"notify_type\": 2001}", TX, BUYER);
    status_expect(query, "\"code_state\":0");

    /* The card definitions, for an admin screen. */
    char *defs = NULL;
    CHECK_OK(fashop_notify_card_definitions(&defs));
    CHECK(defs && strstr(defs, "\"notify_type\": 2001") && strstr(defs, "\"tid\": 10000001"));
    fashop_notify_string_free(defs);
    CHECK_STATUS(fashop_notify_card_definitions(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "card_definitions: out_json must not be NULL");

    /* Bad input: a status and a message, never a crash, never an out string. */
    const char bad_utf8[] = {'w', 'x', (char)0xff, 0};
    char *out = (char *)bad_utf8;
    CHECK_STATUS(fashop_notify_card_status(NULL, query, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "card_status: appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_card_status(APP, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "query_json must not be NULL");
    CHECK_STATUS(fashop_notify_card_status(APP, query, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_card_status(bad_utf8, query, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_card_status(APP, bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "query_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_card_status(APP, "{\"transaction_id\": ", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "not valid JSON");
    CHECK_STATUS(fashop_notify_card_status(APP, "{\"transaction_id\": \"12345\"}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "transaction id");
    CHECK_STATUS(fashop_notify_card_status("wxnotregistered01", query, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "not registered");
    snprintf(query, sizeof query, "{\"transaction_id\": \"%s\", \"openid\": \"%s\", \"notify_type\": 1001}", TX, BUYER);
    CHECK_STATUS(fashop_notify_card_status(APP, query, &out), FASHOP_NOTIFY_WECHAT_ERROR, "85434");
    CHECK(out == NULL);

    /* A card send with a transaction id that is not one, or a mapping with a
     * status the card lacks: refused with what to fix; the card is untouched. */
    payload(body, sizeof body, "2025021211194014791", now);
    CHECK_STATUS(fashop_notify_send(APP, "order_delivered", body, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "is not a WeChat Pay transaction id");
    CHECK_STATUS(fashop_notify_load_mappings(APP,
                     "{\"version\": 1, \"events\": {\"order_delivered\": {\"channel\": \"card\", \"card\":"
                     " {\"notify_type\": 2001, \"status\": 42, \"fields\": {}}}}}"),
                 FASHOP_NOTIFY_MAPPING_ERROR, "events.order_delivered.card.status: card 2001 has no status 42");
    CHECK_STATUS(fashop_notify_load_mappings(APP,
                     "{\"version\": 1, \"events\": {\"order_delivered\": {\"channel\": \"card\", \"card\":"
                     " {\"notify_type\": 3001, \"status\": 1, \"fields\": {}}}}}"),
                 FASHOP_NOTIFY_MAPPING_ERROR, "unknown card type 3001");
    snprintf(query, sizeof query, "{\"transaction_id\": \"%s\"}", TX);
    status_expect(query, "\"statuses\":[1,4]");
    return check_report("test_cards");
}
