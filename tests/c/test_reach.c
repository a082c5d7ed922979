/* The owner's reach report through the C ABI: an empty report of a registered app, and bad
 * input for every argument: NULLs, malformed JSON, impossible or reversed dates, a range in
 * the future or older than the kept days, an unknown app. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

#define APP "wxc0000000000000r1"

/* YYYY-MM-DD of China time (UTC+8), `days` from today. */
static void china_day(int days, char *buf, size_t n) {
    time_t t = time(NULL) + 8 * 3600 + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d", &tm);
}

static void query(char *buf, size_t n, int from, int to) {
    char a[16], b[16];
    china_day(from, a, sizeof a);
    china_day(to, b, sizeof b);
    snprintf(buf, n, "{\"from\": \"%s\", \"to\": \"%s\"}", a, b);
}

static void test_empty_report(void) {
    char q[96];
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_register_app("{\"appid\": \"" APP "\", \"secret\": \"reach-c-secret\"}"));
    query(q, sizeof q, -6, 0);
    CHECK_OK(fashop_notify_reach_report(APP, q, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"events\":{}") != NULL);
        CHECK(strstr(out, "\"grants\":[]") != NULL);
        CHECK(strstr(out, "\"keep_days\":90") != NULL);
    }
    fashop_notify_string_free(out);
}

static void test_bad_input(void) {
    char q[96];
    char *out = (char *)0x1;
    query(q, sizeof q, 0, 0);
    CHECK_STATUS(fashop_notify_reach_report(NULL, q, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_reach_report(APP, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "query_json");
    CHECK_STATUS(fashop_notify_reach_report(APP, q, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json");
    CHECK_STATUS(fashop_notify_reach_report(APP, "{\"from\": ", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "reach report query");
    CHECK_STATUS(fashop_notify_reach_report(APP, "{\"from\": \"2026-02-30\", \"to\": \"2026-03-01\"}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "YYYY-MM-DD");
    query(q, sizeof q, 0, -1);
    CHECK_STATUS(fashop_notify_reach_report(APP, q, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "is after to");
    query(q, sizeof q, 0, 1);
    CHECK_STATUS(fashop_notify_reach_report(APP, q, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "in the future");
    query(q, sizeof q, -90, 0);
    CHECK_STATUS(fashop_notify_reach_report(APP, q, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "older than the report keeps");
    query(q, sizeof q, 0, 0);
    CHECK_STATUS(fashop_notify_reach_report("wxc0000000000000r9", q, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED, "wxc0000000000000r9");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_configure("{\"report_keep_days\": 0}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "report_keep_days");
}

int main(void) {
    test_empty_report();
    test_bad_input();
    return check_report("test_reach");
}
