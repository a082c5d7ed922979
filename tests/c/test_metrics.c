/* Metrics export: both formats, bad arguments, out string ownership. */
#include "check.h"

static void test_formats(void) {
    char *out = NULL;
    CHECK_OK(fashop_notify_metrics("prometheus", &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "# TYPE fashop_notify_sends_total counter\n") != NULL);
        CHECK(strstr(out, "# HELP fashop_notify_sends_total ") != NULL);
        CHECK(strstr(out, "this process only") != NULL);
        CHECK(strstr(out, "fashop_notify_send_duration_seconds_bucket{le=\"+Inf\"} 0\n") != NULL);
        CHECK(strstr(out, "fashop_notify_log_write_failures_total 0\n") != NULL);
    }
    fashop_notify_string_free(out);

    out = NULL;
    CHECK_OK(fashop_notify_metrics("json", &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(out[0] == '{');
        CHECK(strstr(out, "\"scope\":\"process\"") != NULL);
        CHECK(strstr(out, "\"fashop_notify_sends_total\":[]") != NULL);
        CHECK(strstr(out, "\"fashop_notify_send_duration_seconds\":{") != NULL);
    }
    fashop_notify_string_free(out);
}

static void test_bad_arguments(void) {
    char *out = (char *)0x1;
    CHECK_STATUS(fashop_notify_metrics(NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "metrics: format must not be NULL");
    CHECK(out == NULL);

    CHECK_STATUS(fashop_notify_metrics("json", NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_text must not be NULL");

    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_metrics("xml", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "format must be \"prometheus\" or \"json\", got \"xml\"");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_metrics("", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "got \"\"");
    CHECK_STATUS(fashop_notify_metrics("JSON", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "format must be");

    const char bad_utf8[] = {'j', 's', (char)0xc3, 0};
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_metrics(bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "format is not valid UTF-8");
    CHECK(out == NULL);

    /* a success afterwards clears last_error */
    CHECK_OK(fashop_notify_metrics("prometheus", &out));
    CHECK(strcmp(fashop_notify_last_error(), "") == 0);
    fashop_notify_string_free(out);
}

static void test_log_setting(void) {
    /* An unwritable log path is accepted: lines that cannot be written are counted. */
    CHECK_OK(fashop_notify_configure(
        "{\"log\": {\"path\": \"/nonexistent-dir/fashop-notify.jsonl\", \"level\": \"info\"}}"));
    CHECK_STATUS(fashop_notify_configure("{\"log\": {\"path\": \"\"}}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "log.path must not be empty");
    CHECK_STATUS(fashop_notify_configure("{\"log\": {\"level\": \"verbose\"}}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "log.level: unknown variant `verbose`");
    CHECK_STATUS(fashop_notify_configure("{\"log\": {\"path\": \"/tmp/x\", \"rotate\": 1}}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "unknown field `rotate`");
    CHECK_OK(fashop_notify_configure("{\"log\": {\"level\": \"off\"}}"));
}

int main(void) {
    test_formats();
    test_bad_arguments();
    test_log_setting();
    return check_report("test_metrics");
}
