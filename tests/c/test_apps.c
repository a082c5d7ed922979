/* C ABI basics: version, configure, app registry, string ownership, bad input, threads. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static void test_version(void) {
    const char *v = fashop_notify_version();
    CHECK(v != NULL && strlen(v) > 0);
    CHECK(strchr(v, '.') != NULL);
}

static void test_configure(void) {
    CHECK_OK(fashop_notify_configure("{\"timeout_ms\": 4000, \"max_retries\": 1}"));
    CHECK(strcmp(fashop_notify_last_error(), "") == 0);
    CHECK_STATUS(fashop_notify_configure(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "config_json must not be NULL");
    CHECK_STATUS(fashop_notify_configure("{\"timeout_ms\": "), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "EOF while parsing");
    CHECK_STATUS(fashop_notify_configure("{\"timeuot_ms\": 1}"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "unknown field `timeuot_ms`");
    CHECK_STATUS(fashop_notify_configure("{\"timeout_ms\": \"fast\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "invalid type");
    CHECK_STATUS(fashop_notify_configure("{\"max_retries\": 99}"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "max_retries must be between 0 and 10");
    CHECK_STATUS(fashop_notify_configure("[1,2]"), FASHOP_NOTIFY_INVALID_ARGUMENT, "invalid type");
    const char bad_utf8[] = {'{', '"', (char)0xff, (char)0xfe, '"', '}', 0};
    CHECK_STATUS(fashop_notify_configure(bad_utf8), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "config_json is not valid UTF-8");
    /* last_error is reset by the next success */
    CHECK_OK(fashop_notify_configure("{}"));
    CHECK(strcmp(fashop_notify_last_error(), "") == 0);
}

static void test_registry(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_register_app(
        "{\"appid\": \"wxc0000000000000a1\", \"secret\": \"c-test-secret-value\"}"));
    CHECK_OK(fashop_notify_register_app(
        "{\"appid\": \"wxc0000000000000a1\", \"secret\": \"c-test-secret-value\"}"));
    CHECK_OK(fashop_notify_register_app(
        "{\"appid\": \"wxc0000000000000a2\", \"secret\": \"another\", \"token_mode\": \"classic\"}"));
    CHECK_OK(fashop_notify_list_apps(&out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"appid\":\"wxc0000000000000a1\"") != NULL);
        CHECK(strstr(out, "\"token_mode\":\"classic\"") != NULL);
        CHECK(strstr(out, "c-test-secret-value") == NULL);
    }
    fashop_notify_string_free(out);
    fashop_notify_string_free(NULL);

    CHECK_OK(fashop_notify_unregister_app("wxc0000000000000a2"));
    CHECK_STATUS(fashop_notify_unregister_app("wxc0000000000000a2"),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_unregister_app(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK_STATUS(fashop_notify_unregister_app(""), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be empty");
    const char bad_appid[] = {'w', 'x', (char)0xc3, 0};
    CHECK_STATUS(fashop_notify_unregister_app(bad_appid), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "not valid UTF-8");

    CHECK_STATUS(fashop_notify_register_app(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "app_json must not be NULL");
    CHECK_STATUS(fashop_notify_register_app("{\"appid\": \"wx1\", \"secrett\": \"s\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "unknown field `secrett`");
    CHECK_STATUS(fashop_notify_register_app("{\"appid\": \"\", \"secret\": \"s\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be empty");
    CHECK_STATUS(fashop_notify_register_app("{\"appid\": \"wx1\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "missing field `secret`");
    CHECK_STATUS(fashop_notify_register_app("not json"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "register_app: expected");
    CHECK_STATUS(fashop_notify_register_app("{\"appid\": 5, \"secret\": \"s\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "invalid type");

    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_list_apps(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");
}

#define THREADS 8
#define ROUNDS 200

static void *worker(void *arg) {
    intptr_t id = (intptr_t)arg;
    char app[160];
    int failures = 0;
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(app, sizeof app, "{\"appid\": \"wxthread%02d\", \"secret\": \"s%d\"}", (int)id,
                 i % 3);
        if (fashop_notify_register_app(app) != FASHOP_NOTIFY_OK) failures++;
        char *out = NULL;
        if (fashop_notify_list_apps(&out) != FASHOP_NOTIFY_OK || out == NULL) failures++;
        fashop_notify_string_free(out);
        /* last_error is per thread: a failure here must not leak into other threads */
        if (fashop_notify_unregister_app("wx-never-registered") != FASHOP_NOTIFY_APP_NOT_CONFIGURED)
            failures++;
        if (strstr(fashop_notify_last_error(), "wx-never-registered") == NULL) failures++;
    }
    return (void *)(intptr_t)failures;
}

static void test_threads(void) {
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)(intptr_t)r;
    }
    CHECK(failures == 0);
    char *out = NULL;
    CHECK_OK(fashop_notify_list_apps(&out));
    for (int i = 0; i < THREADS; i++) {
        char needle[40];
        snprintf(needle, sizeof needle, "\"wxthread%02d\"", i);
        CHECK(out && strstr(out, needle) != NULL);
    }
    fashop_notify_string_free(out);
}

int main(void) {
    test_version();
    test_configure();
    test_registry();
    test_threads();
    return check_report("test_apps");
}
