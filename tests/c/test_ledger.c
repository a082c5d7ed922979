/* Permit ledger through the C ABI on a SQLite store: add, stats, purge, bad input for every
 * argument and field, and a forked worker process sharing the store. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define APP "wxc0000000000000l1"

static void test_add_and_stats(void) {
    char *out = (char *)0x1;
    char json[256];
    CHECK_OK(fashop_notify_register_app("{\"appid\": \"" APP "\", \"secret\": \"ledger-c-secret\"}"));
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC1\", \"kind\": \"subscribe\", \"template_id\": \"TPL1\"}"));
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC1\", \"kind\": \"subscribe\", \"template_id\": \"TPL1\", \"count\": 2}"));
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC1\", \"kind\": \"form_id\", \"value\": \"fid-c-1\"}"));
    /* the same form_id twice is stored once */
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC1\", \"kind\": \"form_id\", \"value\": \"fid-c-1\"}"));
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC2\", \"kind\": \"prepay_id\", \"value\": \"wx-pre-c\", \"order_sn\": \"SN-C\"}"));
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oC2\", \"kind\": \"prepay_id\", \"value\": \"wx-pre-c\", \"order_sn\": \"SN-C\", \"paid\": true}"));
    long created = (long)time(NULL) - 86400;
    snprintf(json, sizeof json, "{\"openid\": \"oC2\", \"kind\": \"form_id\", \"value\": \"fid-c-2\", \"created_at\": %ld}", created);
    CHECK_OK(fashop_notify_add_permit(APP, json));

    CHECK_OK(fashop_notify_ledger_stats(APP, "oC1", &out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"templates\":{\"TPL1\":3}") != NULL);
        CHECK(strstr(out, "\"form_id\":{\"permits\":1,\"uses\":1}") != NULL);
        CHECK(strstr(out, "\"openid\":\"oC1\"") != NULL);
    }
    fashop_notify_string_free(out);

    out = NULL;
    CHECK_OK(fashop_notify_ledger_stats(APP, NULL, &out));
    if (out) {
        char soonest[64];
        snprintf(soonest, sizeof soonest, "\"soonest_expiry\":%ld", created + 7 * 86400);
        CHECK(strstr(out, "\"prepay_id\":{\"permits\":1,\"unpaid\":0,\"uses\":3}") != NULL);
        CHECK(strstr(out, "\"total_uses\":8") != NULL);
        CHECK(strstr(out, "\"openid\":null") != NULL);
        CHECK(strstr(out, soonest) != NULL);
    }
    CHECK(out != NULL);
    fashop_notify_string_free(out);

    out = NULL;
    CHECK_OK(fashop_notify_ledger_purge(APP, &out));
    CHECK(out != NULL && strstr(out, "\"removed\":0") != NULL);
    fashop_notify_string_free(out);
}

static void test_bad_arguments(void) {
    char *out = (char *)0x1;
    const char bad_utf8[] = {'w', 'x', (char)0xff, 0};
    const char bad_json_utf8[] = {'{', '"', 'o', 'p', 'e', 'n', 'i', 'd', '"', ':', '"', (char)0xc3, '"', '}', 0};
    const char *ok_permit = "{\"openid\": \"o\", \"kind\": \"subscribe\", \"template_id\": \"T\"}";
    char long_appid[100];
    memset(long_appid, 'w', sizeof long_appid - 1);
    long_appid[sizeof long_appid - 1] = 0;

    /* appid */
    CHECK_STATUS(fashop_notify_add_permit(NULL, ok_permit), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK_STATUS(fashop_notify_add_permit(bad_utf8, ok_permit), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_add_permit("", ok_permit), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be empty");
    CHECK_STATUS(fashop_notify_add_permit(long_appid, ok_permit), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must be 1 to 64");
    CHECK_STATUS(fashop_notify_add_permit("wxnotregistered", ok_permit), FASHOP_NOTIFY_APP_NOT_CONFIGURED, "wxnotregistered");
    /* permit_json */
    CHECK_STATUS(fashop_notify_add_permit(APP, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "permit_json must not be NULL");
    CHECK_STATUS(fashop_notify_add_permit(APP, bad_json_utf8), FASHOP_NOTIFY_INVALID_ARGUMENT, "permit_json is not valid UTF-8");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": "), FASHOP_NOTIFY_INVALID_ARGUMENT, "add_permit: EOF");
    CHECK_STATUS(fashop_notify_add_permit(APP, "[]"), FASHOP_NOTIFY_INVALID_ARGUMENT, "must be a JSON object");
    /* every field */
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"kind\": \"form_id\", \"value\": \"f\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "missing field `openid`");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": 1, \"kind\": \"form_id\", \"value\": \"f\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "openid must be a string");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"mail\", \"value\": \"f\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "unknown kind \"mail\"");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": true}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "kind must be a string");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"the formId is a mock one\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "fake form_id");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"undefined\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "value is \"undefined\"");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "value must not be empty");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": 12}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "value must be a string");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"subscribe\", \"template_id\": null}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "template_id must be a string, got null");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"prepay_id\", \"value\": \"p\", \"order_sn\": 5}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "order_sn must be a string");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"prepay_id\", \"value\": \"p\", \"order_sn\": \"s\", \"paid\": 1}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "paid must be true or false");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"f\", \"created_at\": 4102444800}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "is in the future");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"f\", \"created_at\": 1500000000}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "already expired");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"f\", \"created_at\": \"1\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "created_at must be a number");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"subscribe\", \"template_id\": \"T\", \"count\": 0}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "count must be between 1 and 1000");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"subscribe\", \"template_id\": \"T\", \"count\": 1.5}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "count must be a whole number");
    CHECK_STATUS(fashop_notify_add_permit(APP, "{\"openid\": \"o\", \"kind\": \"subscribe\", \"template_id\": \"T\", \"colour\": 1}"), FASHOP_NOTIFY_INVALID_ARGUMENT, "unknown field `colour`");
    char long_permit[512];
    snprintf(long_permit, sizeof long_permit, "{\"openid\": \"o\", \"kind\": \"form_id\", \"value\": \"%0200d\"}", 7);
    CHECK_STATUS(fashop_notify_add_permit(APP, long_permit), FASHOP_NOTIFY_INVALID_ARGUMENT, "value is longer than 128 bytes");

    /* stats */
    CHECK_STATUS(fashop_notify_ledger_stats(NULL, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_ledger_stats(bad_utf8, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "not valid UTF-8");
    CHECK_STATUS(fashop_notify_ledger_stats(long_appid, NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must be 1 to 64");
    CHECK_STATUS(fashop_notify_ledger_stats("wxnotregistered", NULL, &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_ledger_stats(APP, bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "openid is not valid UTF-8");
    CHECK_STATUS(fashop_notify_ledger_stats(APP, "", &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "openid must not be empty");
    CHECK_STATUS(fashop_notify_ledger_stats(APP, long_permit, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "openid is longer than 128 bytes");
    CHECK_STATUS(fashop_notify_ledger_stats(APP, NULL, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");
    CHECK(out == NULL);

    /* purge */
    out = (char *)0x1;
    CHECK_STATUS(fashop_notify_ledger_purge(NULL, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must not be NULL");
    CHECK(out == NULL);
    CHECK_STATUS(fashop_notify_ledger_purge(bad_utf8, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "not valid UTF-8");
    CHECK_STATUS(fashop_notify_ledger_purge(long_appid, &out), FASHOP_NOTIFY_INVALID_ARGUMENT, "appid must be 1 to 64");
    CHECK_STATUS(fashop_notify_ledger_purge("wxnotregistered", &out), FASHOP_NOTIFY_APP_NOT_CONFIGURED, "not registered");
    CHECK_STATUS(fashop_notify_ledger_purge(APP, NULL), FASHOP_NOTIFY_INVALID_ARGUMENT, "out_json must not be NULL");

    /* none of the refused permits was stored */
    out = NULL;
    CHECK_OK(fashop_notify_ledger_stats(APP, "o", &out));
    CHECK(out != NULL && strstr(out, "\"total_uses\":0") != NULL);
    fashop_notify_string_free(out);
}

static char db_path[128];
static char store_json[200];

static void test_open_store(void) {
    CHECK_STATUS(fashop_notify_configure("{\"store\": \"sqlite:/nonexistent-fashop-dir/ledger.db\"}"),
                 FASHOP_NOTIFY_STORE_ERROR, "/nonexistent-fashop-dir/ledger.db");
    /* nothing listens on port 1: a Redis that is down is named, its password is not */
    CHECK_STATUS(fashop_notify_configure("{\"store\": \"redis://:c-redis-pass@127.0.0.1:1/0\"}"),
                 FASHOP_NOTIFY_STORE_ERROR, "127.0.0.1:1");
    CHECK(strstr(fashop_notify_last_error(), "c-redis-pass") == NULL);
    /* the same through a Unix socket that is not there: its path is named, the password is not */
    CHECK_STATUS(fashop_notify_configure(
                     "{\"store\": \"redis+unix:///nonexistent-fashop-dir/redis.sock?db=0&pass=c-redis-pass\"}"),
                 FASHOP_NOTIFY_STORE_ERROR, "/nonexistent-fashop-dir/redis.sock");
    CHECK(strstr(fashop_notify_last_error(), "c-redis-pass") == NULL);
    CHECK_STATUS(fashop_notify_configure("{\"store\": \"redis+unix://\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "redis+unix:///path/to/redis.sock");
    snprintf(db_path, sizeof db_path, "/tmp/fashop-notify-c-ledger-%ld.db", (long)getpid());
    snprintf(store_json, sizeof store_json, "{\"store\": \"sqlite:%s\"}", db_path);
    CHECK_OK(fashop_notify_configure(store_json));
    struct stat st;
    CHECK(stat(db_path, &st) == 0 && (st.st_mode & 0777) == 0600);
}

static void test_store_switch(void) {
    /* permits were added: another store would strand them */
    CHECK_STATUS(fashop_notify_configure("{\"store\": \"memory\"}"), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "after permits were added");
    CHECK_OK(fashop_notify_configure(store_json));
}

/* How many descriptors of this process are open on `path`. */
static int open_descriptors(const char *path) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int n = 0;
    struct dirent *e;
    char link[300], target[300];
    while ((e = readdir(dir)) != NULL) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0) continue;
        target[len] = 0;
        if (strcmp(target, path) == 0) n++;
    }
    closedir(dir);
    return n;
}

/* Whether process `pid` holds a POSIX lock on `path` (from /proc/locks). */
static int holds_lock(pid_t pid, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return 0;
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        /* "1: POSIX  ADVISORY  READ 1234 fe:00:5678 128 128" */
        char kind[16];
        long lpid;
        unsigned maj, min;
        unsigned long ino;
        if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", kind, &lpid, &maj, &min, &ino) == 5 &&
            strcmp(kind, "POSIX") == 0 && lpid == (long)pid && maj == major(st.st_dev) &&
            min == minor(st.st_dev) && ino == (unsigned long)st.st_ino)
            found = 1;
    }
    fclose(f);
    return found;
}

/* FaShop forks workers after loading the library: the child closes every connection it
 * inherited and opens its own, which takes its own locks (SQLite's lock bookkeeping copied
 * from the parent would otherwise make it skip them), and the parent keeps working. */
static void test_forked_worker(void) {
    int parent_fds = open_descriptors(db_path);
    CHECK(parent_fds >= 1);
    pid_t child = fork();
    if (child == 0) {
        /* stats touch the ledger's store only: the one descriptor left is the ledger's own */
        int inherited = open_descriptors(db_path);
        char *first = NULL;
        int ok = fashop_notify_ledger_stats(APP, "oFork", &first) == FASHOP_NOTIFY_OK;
        fashop_notify_string_free(first);
        int own = open_descriptors(db_path);
        ok = ok && fashop_notify_add_permit(APP, "{\"openid\": \"oFork\", \"kind\": \"subscribe\", \"template_id\": \"TPL-FORK\"}") == FASHOP_NOTIFY_OK;
        char *out = NULL;
        ok = ok && fashop_notify_ledger_stats(APP, "oFork", &out) == FASHOP_NOTIFY_OK && out != NULL &&
             strstr(out, "\"TPL-FORK\":1") != NULL;
        if (!ok) fprintf(stderr, "child: %s\n", fashop_notify_last_error());
        if (inherited < 1 || own != 1) {
            fprintf(stderr, "child: did not trade the inherited connections for one of its own (%d descriptors, inherited %d)\n",
                    own, inherited);
            ok = 0;
        }
        if (!holds_lock(getpid(), db_path)) {
            fprintf(stderr, "child: holds no lock of its own on the database\n");
            ok = 0;
        }
        fashop_notify_string_free(out);
        exit(ok ? 0 : 1);
    }
    CHECK(child > 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the parent sees what the child wrote, and its own connection still works */
    CHECK_OK(fashop_notify_add_permit(APP, "{\"openid\": \"oFork\", \"kind\": \"subscribe\", \"template_id\": \"TPL-FORK\"}"));
    char *out = NULL;
    CHECK_OK(fashop_notify_ledger_stats(APP, "oFork", &out));
    CHECK(out != NULL && strstr(out, "\"TPL-FORK\":2") != NULL);
    fashop_notify_string_free(out);
    CHECK(open_descriptors(db_path) == parent_fds);
}

static void remove_store(void) {
    char p[160];
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
}

int main(void) {
    test_open_store();
    test_add_and_stats();
    test_bad_arguments();
    test_store_switch();
    test_forked_worker();
    remove_store();
    return check_report("test_ledger");
}
