/* Access tokens and call_api from C, against the sandbox: managed tokens,
 * external mode, template management through call_api, bad input for every
 * argument, threads, and a fork after the library made its first calls.
 * Secrets and tokens never show up in last_error. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define DEMO_APPID "wxdemo0000000001"
#define DEMO_SECRET "demo-app-secret-0001"
#define EXT_APPID "wxcext0000000001"

static const char bad_utf8[] = {'w', 'x', (char)0xc3, (char)0x28, 0};
static char demo_token[600];

/* last_error of the previous call names neither the secret nor a token we hold. */
static void check_no_secret_in_last_error(void) {
    const char *le = fashop_notify_last_error();
    CHECK(strstr(le, DEMO_SECRET) == NULL);
    CHECK(demo_token[0] == 0 || strstr(le, demo_token) == NULL);
    CHECK(strstr(le, "ext-token-") == NULL);
}

static void register_apps(const char *url) {
    char app[512];
    snprintf(app, sizeof app,
             "{\"appid\": \"%s\", \"secret\": \"%s\", \"api_base\": \"%s\"}", DEMO_APPID,
             DEMO_SECRET, url);
    CHECK_OK(fashop_notify_register_app(app));
    snprintf(app, sizeof app,
             "{\"appid\": \"%s\", \"token_mode\": \"external\", \"api_base\": \"%s\"}", EXT_APPID,
             url);
    CHECK_OK(fashop_notify_register_app(app));
}

static void test_managed_token(void) {
    char *tok = (char *)0x1;
    CHECK_OK(fashop_notify_access_token(DEMO_APPID, &tok));
    CHECK(tok != NULL && strlen(tok) > 0 && strlen(tok) < sizeof demo_token);
    if (tok && strlen(tok) < sizeof demo_token) strcpy(demo_token, tok);
    fashop_notify_string_free(tok);

    /* Cached: the same token again. */
    tok = NULL;
    CHECK_OK(fashop_notify_access_token(DEMO_APPID, &tok));
    CHECK(tok != NULL && strcmp(tok, demo_token) == 0);
    fashop_notify_string_free(tok);

    /* A stale report about some other token keeps the cached one. */
    CHECK_OK(fashop_notify_invalidate_token(DEMO_APPID, "not-the-cached-token"));
    tok = NULL;
    CHECK_OK(fashop_notify_access_token(DEMO_APPID, &tok));
    CHECK(tok != NULL && strcmp(tok, demo_token) == 0);
    fashop_notify_string_free(tok);

    /* Dropping the cached one: the next call fetches (stable: WeChat hands back
     * the same token while it is valid). */
    CHECK_OK(fashop_notify_invalidate_token(DEMO_APPID, demo_token));
    tok = NULL;
    CHECK_OK(fashop_notify_access_token(DEMO_APPID, &tok));
    CHECK(tok != NULL && strlen(tok) > 0);
    fashop_notify_string_free(tok);

    char *apps = NULL;
    CHECK_OK(fashop_notify_list_apps(&apps));
    CHECK(apps != NULL && strstr(apps, demo_token) == NULL && strstr(apps, DEMO_SECRET) == NULL);
    CHECK(apps != NULL && strstr(apps, "\"cached\":true") != NULL);
    fashop_notify_string_free(apps);
}

static void test_call_api(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_call_api(DEMO_APPID, "GET", "/wxaapi/newtmpl/gettemplate", NULL, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"errcode\":0") != NULL);
        CHECK(strstr(out, "\"data\"") != NULL);
        CHECK(strstr(out, "priTmplId") != NULL);
        CHECK(strstr(out, demo_token) == NULL);
    }
    fashop_notify_string_free(out);

    /* A non-zero errcode: WECHAT_ERROR, errcode and errmsg in last_error, and
     * WeChat's JSON still written. */
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "POST", "/wxaapi/newtmpl/deltemplate",
                                        "{\"priTmplId\": \"no-such-template\"}", &out),
                 FASHOP_NOTIFY_WECHAT_ERROR, "errcode");
    CHECK(out != NULL && strstr(out, "\"errcode\"") != NULL && strstr(out, "\"errcode\":0") == NULL);
    check_no_secret_in_last_error();
    fashop_notify_string_free(out);
}

/* openapi/quota/get through the library: the send API's daily figures by
 * default, any API by path; bad input refused before any call. */
static void test_api_quota(void) {
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_api_quota(DEMO_APPID, NULL, &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"cgi_path\":\"/cgi-bin/message/subscribe/send\"") != NULL);
        CHECK(strstr(out, "\"daily_limit\":100000") != NULL);
        CHECK(strstr(out, "\"remain\"") != NULL);
    }
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(fashop_notify_api_quota(DEMO_APPID, "/cgi-bin/stable_token", &out));
    CHECK(out != NULL && strstr(out, "\"used\"") != NULL);
    fashop_notify_string_free(out);

    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_api_quota(NULL, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_api_quota(DEMO_APPID, "https://api.weixin.qq.com/cgi-bin/token", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "without https://api.weixin.qq.com");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_api_quota(DEMO_APPID, "/cgi-bin/token?access_token=x", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "without a query");
    CHECK_STATUS(fashop_notify_api_quota(DEMO_APPID, "\xff\xfe", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "UTF-8");
    CHECK_STATUS(fashop_notify_api_quota(DEMO_APPID, NULL, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json");
    CHECK_STATUS(fashop_notify_api_quota("wxnotregistered01", NULL, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "wxnotregistered01");
    CHECK(out == NULL);
    /* A path WeChat does not know: its answer is still written. */
    CHECK_STATUS(fashop_notify_api_quota(DEMO_APPID, "/cgi-bin/no/such/api", &out),
                 FASHOP_NOTIFY_WECHAT_ERROR, "76021");
    CHECK(out != NULL && strstr(out, "76021") != NULL);
    fashop_notify_string_free(out);
}

static void test_external_mode(void) {
    char *tok = (char *)0x1;
    CHECK_STATUS(fashop_notify_access_token(EXT_APPID, &tok), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "no access token supplied for " EXT_APPID " (token_mode external)");
    CHECK(tok == NULL);

    CHECK_OK(fashop_notify_set_access_token(EXT_APPID, "ext-token-1", 600));
    CHECK_OK(fashop_notify_access_token(EXT_APPID, &tok));
    CHECK(tok != NULL && strcmp(tok, "ext-token-1") == 0);
    fashop_notify_string_free(tok);

    /* Conditional invalidate: another token changes nothing. */
    CHECK_OK(fashop_notify_invalidate_token(EXT_APPID, "ext-token-0"));
    tok = NULL;
    CHECK_OK(fashop_notify_access_token(EXT_APPID, &tok));
    CHECK(tok != NULL && strcmp(tok, "ext-token-1") == 0);
    fashop_notify_string_free(tok);
    CHECK_OK(fashop_notify_invalidate_token(EXT_APPID, "ext-token-1"));
    tok = (char *)0x1;
    CHECK_STATUS(fashop_notify_access_token(EXT_APPID, &tok), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "no access token supplied");
    CHECK(tok == NULL);

    /* The sandbox does not know this token: 40001, dropped, nothing to fetch instead. */
    CHECK_OK(fashop_notify_set_access_token(EXT_APPID, "ext-token-2", 600));
    char *out = (char *)0x1;
    CHECK_STATUS(fashop_notify_call_api(EXT_APPID, "GET", "/wxaapi/newtmpl/gettemplate", NULL, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "errcode 40001");
    check_no_secret_in_last_error();
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_access_token(EXT_APPID, &tok), FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                 "no access token supplied");

    /* A real token from the sandbox works for an external app of the same mini program. */
    char app[512];
    snprintf(app, sizeof app, "{\"appid\": \"%s\", \"token_mode\": \"external\", \"api_base\": \"%s\"}",
             DEMO_APPID, sandbox_url());
    CHECK_OK(fashop_notify_register_app(app));
    CHECK_OK(fashop_notify_set_access_token(DEMO_APPID, demo_token, 300));
    out = NULL;
    CHECK_OK(fashop_notify_call_api(DEMO_APPID, "GET", "/wxaapi/newtmpl/gettemplate", NULL, &out));
    CHECK(out != NULL && strstr(out, "\"errcode\":0") != NULL);
    fashop_notify_string_free(out);
    register_apps(sandbox_url());
}

static void test_bad_input(void) {
    char *out = (char *)0x1;

    /* access_token */
    CHECK_STATUS(fashop_notify_access_token(NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_access_token(bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_access_token("", &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be empty");
    CHECK_STATUS(fashop_notify_access_token("wxnotregistered01", &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "wxnotregistered01 is not registered");
    CHECK_STATUS(fashop_notify_access_token(DEMO_APPID, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_token must not be NULL");

    /* set_access_token */
    CHECK_STATUS(fashop_notify_set_access_token(NULL, "t", 60), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK_STATUS(fashop_notify_set_access_token(bad_utf8, "t", 60), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_set_access_token("wxnotregistered01", "t", 60),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, NULL, 60), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "token must not be NULL");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, bad_utf8, 60),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "token is not valid UTF-8");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, "", 60), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "token must not be empty");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, "ext-token-x y", 60),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "visible ASCII");
    check_no_secret_in_last_error();
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, "ext-token-3", 0),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "expires_in_secs must be between 1 and 86400, got 0");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, "ext-token-3", -5),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "got -5");
    CHECK_STATUS(fashop_notify_set_access_token(EXT_APPID, "ext-token-3", INT64_MAX),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "expires_in_secs");
    CHECK_STATUS(fashop_notify_set_access_token(DEMO_APPID, "ext-token-3", 60),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "token_mode stable");

    /* invalidate_token */
    CHECK_STATUS(fashop_notify_invalidate_token(NULL, "t"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK_STATUS(fashop_notify_invalidate_token(bad_utf8, "t"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_invalidate_token("wxnotregistered01", "t"),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_invalidate_token(DEMO_APPID, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "token must not be NULL");
    CHECK_STATUS(fashop_notify_invalidate_token(DEMO_APPID, bad_utf8),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "token is not valid UTF-8");
    CHECK_STATUS(fashop_notify_invalidate_token(DEMO_APPID, ""), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "token must not be empty");

    /* call_api: every argument; out is NULL after each failure. */
    const char *p = "/wxaapi/newtmpl/gettemplate";
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_call_api(NULL, "GET", p, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_call_api(bad_utf8, "GET", p, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_call_api("wxnotregistered01", "GET", p, NULL, &out),
                 FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, NULL, p, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "method must not be NULL");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, bad_utf8, p, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "method is not valid UTF-8");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "DELETE", p, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "method must be \"GET\" or \"POST\"");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", NULL, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "path must not be NULL");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", bad_utf8, NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "path is not valid UTF-8");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", "wxaapi/newtmpl/gettemplate", NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "path must start with one '/'");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", "/x?access_token=abc", NULL, &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "must not carry access_token");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "POST", "/wxaapi/newtmpl/addtemplate", "{\"tid\": ",
                                        &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "body_json is not valid JSON");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "POST", "/wxaapi/newtmpl/addtemplate", bad_utf8,
                                        &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "body_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", p, "{}", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "body_json must be NULL for a GET");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_call_api(DEMO_APPID, "GET", p, NULL, NULL),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
}

#define THREADS 8

static void *ask_token(void *arg) {
    char *tok = NULL;
    intptr_t bad = 0;
    if (fashop_notify_access_token(DEMO_APPID, &tok) != FASHOP_NOTIFY_OK || tok == NULL) bad = 1;
    if (tok && strcmp(tok, (const char *)arg) != 0) bad = 1;
    fashop_notify_string_free(tok);
    return (void *)bad;
}

static void test_threads(void) {
    char *tok = NULL;
    CHECK_OK(fashop_notify_access_token(DEMO_APPID, &tok));
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, ask_token, tok);
    intptr_t bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (intptr_t)r;
    }
    CHECK(bad == 0);
    fashop_notify_string_free(tok);
}

/* Calls that get their own answer: getcategory answers errcode 0, deleting
 * a template that does not exist answers 20001. */
static int calls_ok(int n, int deleting) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char *out = NULL;
        FashopNotifyStatus st =
            deleting ? fashop_notify_call_api(DEMO_APPID, "POST", "/wxaapi/newtmpl/deltemplate",
                                              "{\"priTmplId\": \"no-such-template\"}", &out)
                     : fashop_notify_call_api(DEMO_APPID, "GET", "/wxaapi/newtmpl/getcategory",
                                              NULL, &out);
        const char *want = deleting ? "\"errcode\":20001" : "\"errcode\":0";
        if (st == (deleting ? FASHOP_NOTIFY_WECHAT_ERROR : FASHOP_NOTIFY_OK) && out != NULL &&
            strstr(out, want) != NULL)
            ok++;
        fashop_notify_string_free(out);
    }
    return ok;
}

/* FaShop forks its workers after loading the library. The parent holds a
 * keep-alive connection; parent and child then call at the same time with
 * different requests: each must use its own connection, or answers would
 * cross. */
static void test_fork(void) {
    CHECK(calls_ok(1, 0) == 1);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(calls_ok(100, 1) == 100 ? 0 : 1);
    int ok = calls_ok(100, 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(ok == 100);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
    const char *url = sandbox_url();
    CHECK(url != NULL);
    if (url == NULL) return check_report("test_token");
    register_apps(url);
    test_managed_token();
    test_call_api();
    test_api_quota();
    test_external_mode();
    test_bad_input();
    test_threads();
    test_fork();
    return check_report("test_token");
}
