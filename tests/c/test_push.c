/* WeChat message push through the C ABI: NULL and non-UTF-8 arguments, a bad signature, the
 * URL check, and a plain push that grants a subscribe use. Signatures are made here with a
 * small SHA-1 (checked against a known answer first), over the current time. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "check.h"

#define APP "wxc0000000000000p1"
#define TOKEN "cpushtoken"

/* SHA-1 (FIPS 180-4), enough for short test strings. */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_hex(const char *msg, char hex[41]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t len = strlen(msg);
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *buf = calloc(total, 1);
    if (!buf) abort();
    memcpy(buf, msg, len);
    buf[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)buf[off + 4 * i] << 24 | (uint32_t)buf[off + 4 * i + 1] << 16 |
                   (uint32_t)buf[off + 4 * i + 2] << 8 | (uint32_t)buf[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(buf);
    for (int i = 0; i < 5; i++) snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

/* WeChat's signature: SHA-1 of token, timestamp and nonce sorted and joined. */
static void sign(const char *ts, const char *nonce, char hex[41]) {
    const char *p[3] = {TOKEN, ts, nonce};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (strcmp(p[j], p[i]) < 0) { const char *t = p[i]; p[i] = p[j]; p[j] = t; }
    char joined[256];
    snprintf(joined, sizeof joined, "%s%s%s", p[0], p[1], p[2]);
    sha1_hex(joined, hex);
}

/* Each request gets its own nonce, as WeChat's do: the library takes a
   (timestamp, nonce) pair once per app. */
static void signed_query(char *q, size_t n, const char *extra) {
    static int next_nonce = 0;
    char ts[32], nonce[32], sig[41];
    snprintf(ts, sizeof ts, "%ld", (long)time(NULL));
    snprintf(nonce, sizeof nonce, "cnonce%d", next_nonce++);
    sign(ts, nonce, sig);
    snprintf(q, n, "signature=%s&timestamp=%s&nonce=%s%s", sig, ts, nonce, extra);
}

static void test_sha1_known_answer(void) {
    /* printf '%s' 1409304348pamtestxxxxxx | sha1sum */
    char hex[41];
    sha1_hex("1409304348pamtestxxxxxx", hex);
    CHECK(strcmp(hex, "76480565cbe296026c53aaacd1ad523a1ddba24f") == 0);
}

static void test_bad_arguments(void) {
    char *out = (char *)0x1;
    const char bad_utf8[] = {'G', 'E', (char)0xff, 0};
    CHECK_STATUS(fashop_notify_handle_push(NULL, "GET", "", "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK(out == NULL);
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_handle_push(APP, NULL, "", "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "method must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_handle_push(APP, "GET", NULL, "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "query_string must not be NULL");
    CHECK_STATUS(fashop_notify_handle_push(APP, "POST", "", NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "body must not be NULL");
    CHECK_STATUS(fashop_notify_handle_push(APP, "GET", "", "", NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
    CHECK_STATUS(fashop_notify_handle_push(APP, bad_utf8, "", "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "method is not valid UTF-8");
    CHECK_STATUS(fashop_notify_handle_push(APP, "POST", bad_utf8, "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "query_string is not valid UTF-8");
    CHECK_STATUS(fashop_notify_handle_push(APP, "POST", "", bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "body is not valid UTF-8");
    CHECK_STATUS(fashop_notify_handle_push("wxc00000000000nope", "GET", "", "", &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_handle_push(APP, "DELETE", "", "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "method must be");
    CHECK(out == NULL);
}

static void test_handshake_and_bad_signature(void) {
    char q[512], *out = NULL;
    signed_query(q, sizeof q, "&echostr=c-echo-123");
    CHECK_OK(fashop_notify_handle_push(APP, "GET", q, "", &out));
    CHECK(out != NULL && strstr(out, "\"reply\":\"c-echo-123\"") != NULL);
    fashop_notify_string_free(out);
    out = (char *)0x1;
    char forged[512];
    snprintf(forged, sizeof forged, "signature=0000000000000000000000000000000000000000%s", strchr(q, '&'));
    CHECK_STATUS(fashop_notify_handle_push(APP, "GET", forged, "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "signature does not match");
    CHECK(out == NULL);
    /* The URL check is the signature alone (WeChat's rule): a 1970 timestamp
     * meets the signature check, not the clock window. */
    CHECK_STATUS(fashop_notify_handle_push(APP, "GET", "timestamp=1&nonce=x&signature=y&echostr=z", "", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "signature does not match");
    /* A pushed event keeps the window, and the error names the skew. */
    CHECK_STATUS(fashop_notify_handle_push(APP, "POST", "timestamp=1&nonce=x&signature=y", "<xml></xml>", &out),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "more than 300 s");
    CHECK(out == NULL);
}

static void test_plain_push_grants(void) {
    char q[512], body[512], *out = NULL;
    signed_query(q, sizeof q, "&openid=oCpush");
    snprintf(body, sizeof body,
             "<xml><ToUserName><![CDATA[gh_c]]></ToUserName><FromUserName><![CDATA[oCpush]]></FromUserName>"
             "<CreateTime>%ld</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             "<Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List>"
             "<TemplateId><![CDATA[TPL_C]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
             "<PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>",
             (long)time(NULL));
    CHECK_OK(fashop_notify_handle_push(APP, "POST", q, body, &out));
    CHECK(out != NULL && strstr(out, "\"reply\":\"success\"") != NULL);
    CHECK(out != NULL && strstr(out, "\"effect\":\"grant_added\"") != NULL);
    fashop_notify_string_free(out);
    /* the same push again (WeChat's retry) is applied once */
    out = NULL;
    CHECK_OK(fashop_notify_handle_push(APP, "POST", q, body, &out));
    CHECK(out != NULL && strstr(out, "\"effect\":\"duplicate\"") != NULL);
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(fashop_notify_ledger_stats(APP, "oCpush", &out));
    CHECK(out != NULL && strstr(out, "\"templates\":{\"TPL_C\":1}") != NULL);
    fashop_notify_string_free(out);
    /* the buyer switches the template off: a change event (JSON, List as an object) drops the grant */
    out = NULL;
    signed_query(q, sizeof q, "");
    snprintf(body, sizeof body,
             "{\"ToUserName\":\"gh_c\",\"FromUserName\":\"oCpush\",\"CreateTime\":\"%ld\",\"MsgType\":\"event\","
             "\"Event\":\"subscribe_msg_change_event\",\"List\":{\"TemplateId\":\"TPL_C\",\"SubscribeStatusString\":\"reject\"}}",
             (long)time(NULL));
    CHECK_OK(fashop_notify_handle_push(APP, "POST", q, body, &out));
    CHECK(out != NULL && strstr(out, "\"effect\":\"grants_dropped\"") != NULL);
    CHECK(out != NULL && strstr(out, "\"dropped\":1") != NULL);
    fashop_notify_string_free(out);
    out = NULL;
    CHECK_OK(fashop_notify_ledger_stats(APP, "oCpush", &out));
    CHECK(out != NULL && strstr(out, "\"templates\":{}") != NULL);
    fashop_notify_string_free(out);
    /* an unknown push is answered "success" and reported, never an error */
    out = NULL;
    signed_query(q, sizeof q, "");
    CHECK_OK(fashop_notify_handle_push(APP, "POST", q, "<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>", &out));
    CHECK(out != NULL && strstr(out, "\"reply\":\"success\"") != NULL && strstr(out, "\"effect\":\"ignored\"") != NULL);
    fashop_notify_string_free(out);
    /* with grants "push", the mini program's own report is refused */
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"oCpush\", \"kind\": \"subscribe\", \"template_id\": \"TPL_C\"}"),
                 FASHOP_NOTIFY_INVALID_ARGUMENT, "only from WeChat's message push");
}

int main(void) {
    CHECK_OK(fashop_notify_register_app("{\"appid\": \"" APP "\", \"secret\": \"c-push-secret\", \"grants\": \"push\", "
                                        "\"push\": {\"token\": \"" TOKEN "\", \"format\": \"xml\", \"max_skew_secs\": 300}}"));
    test_sha1_known_answer();
    test_bad_arguments();
    test_handshake_and_bad_signature();
    test_plain_push_grants();
    return check_report("test_push");
}
