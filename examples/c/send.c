/* A C host of fashop-notify: register the mini program, load the keyword mappings,
 * record the buyer's subscription grant, and send "payment received".
 *
 * Build: gcc -std=c11 -Iinclude examples/c/send.c -Ltarget/debug -lfashop_notify
 * Run:   FASHOP_NOTIFY_SANDBOX_URL=http://127.0.0.1:PORT ./send examples/mappings.json
 * (`make demo` does both, against the WeChat sandbox.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashop_notify.h"

static const char *APPID = "wxdemo0000000001";
static const char *OPENID = "oDemoBuyer_c_0001";

/* Prints the call's failure and exits: a host would log it and go on. */
static void check(FashopNotifyStatus st, const char *what) {
    if (st != FASHOP_NOTIFY_OK) {
        fprintf(stderr, "%s failed with status %d: %s\n", what, (int)st, fashop_notify_last_error());
        exit(1);
    }
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *sandbox = getenv("FASHOP_NOTIFY_SANDBOX_URL");
    if (argc < 3 || !sandbox) {
        fprintf(stderr, "usage: FASHOP_NOTIFY_SANDBOX_URL=... %s MAPPINGS.json TEMPLATE_ID\n", argv[0]);
        return 2;
    }
    char *mappings = read_file(argv[1]);
    if (!mappings) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    printf("fashop-notify %s (C host)\n", fashop_notify_version());

    char buf[512];
    snprintf(buf, sizeof buf, "{\"api_base\": \"%s\"}", sandbox);
    check(fashop_notify_configure(buf), "configure");
    check(fashop_notify_register_app("{\"appid\": \"wxdemo0000000001\", \"secret\": \"demo-app-secret-0001\"}"),
          "register_app");
    check(fashop_notify_load_mappings(APPID, mappings), "load_mappings");
    free(mappings);

    /* The buyer allowed "payment received" in the mini program; record the grant. */
    snprintf(buf, sizeof buf, "{\"openid\": \"%s\", \"kind\": \"subscribe\", \"template_id\": \"%s\"}", OPENID,
             argv[2]);
    check(fashop_notify_add_permit(APPID, buf), "add_permit");

    const char *payload =
        "{\"touser\": \"oDemoBuyer_c_0001\", \"fields\": {"
        "\"order_id\": 2048, \"order_sn\": \"SN2026112300002048\", \"order_amount\": 59.9,"
        "\"order_total_goods_name\": \"不锈钢保温杯 500ml\", \"order_total_goods_num\": 1,"
        "\"order_create_time\": 1795426200, \"pay_time\": \"2026-11-23 20:11:05\"}}";

    char *out = NULL;
    check(fashop_notify_render(APPID, "order_pay_success", payload, &out), "render");
    printf("\n== render order_pay_success\n%s\n", out);
    fashop_notify_string_free(out);

    FashopNotifyStatus st = fashop_notify_send(APPID, "order_pay_success", payload, &out);
    printf("\n== send order_pay_success: status %d\n%s\n", (int)st, out ? out : "(no outcome)");
    int sent = st == FASHOP_NOTIFY_OK && out && strstr(out, "\"status\":\"sent\"");
    fashop_notify_string_free(out);

    /* Sending again without a grant left: NO_PERMIT, with an outcome all the same. */
    const char *other =
        "{\"touser\": \"oDemoBuyer_c_0001\", \"fields\": {\"order_id\": 2049, \"order_sn\": \"SN2026112300002049\","
        "\"order_amount\": 10, \"order_total_goods_name\": \"茶叶\", \"order_total_goods_num\": 1,"
        "\"order_create_time\": 1795426200, \"pay_time\": 1795426300}}";
    st = fashop_notify_send(APPID, "order_pay_success", other, &out);
    printf("\n== send another order without a grant: status %d (%s)\n%s\n", (int)st, fashop_notify_last_error(),
           out ? out : "(no outcome)");
    int refused = st == FASHOP_NOTIFY_NO_PERMIT;
    fashop_notify_string_free(out);

    check(fashop_notify_ledger_stats(APPID, OPENID, &out), "ledger_stats");
    printf("\n== ledger of %s\n%s\n", OPENID, out);
    fashop_notify_string_free(out);

    printf("\nC demo: %s\n", sent && refused ? "OK" : "FAILED");
    return sent && refused ? 0 : 1;
}
