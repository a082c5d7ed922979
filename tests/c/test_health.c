/* Store health through the C ABI: a NULL out pointer, a store that is down (a Redis on a
 * port nobody listens on), then a working SQLite store, each with the JSON verdict. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static char dir[] = "/tmp/fashop-notify-c-health-XXXXXX";

/* A loopback port that was free a moment ago: bound, read, closed. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) close(fd);
    return port;
}

static void test_null_out(void) {
    CHECK_STATUS(fashop_notify_store_health(NULL), FASHOP_NOTIFY_INVALID_ARGUMENT,
                 "out_json must not be NULL");
}

/* First in the process: whether configure itself fails or the store fails later,
 * the verdict is not ok and says why, with status OK (the check ran). */
static void test_store_down(void) {
    int port = closed_port();
    CHECK(port > 0);
    char config[128];
    snprintf(config, sizeof config, "{\"store\": \"redis://127.0.0.1:%d/0\"}", port);
    fashop_notify_configure(config);
    char *out = (char *)0x1;
    CHECK_OK(fashop_notify_store_health(&out));
    CHECK(out != NULL);
    if (out) {
        CHECK(strstr(out, "\"ok\":false") != NULL);
        CHECK(strstr(out, "\"error\":\"") != NULL);
        CHECK(strstr(out, "\"latency_ms\":") != NULL);
    }
    fashop_notify_string_free(out);
}

static void test_sqlite_ok(void) {
    CHECK(mkdtemp(dir) != NULL);
    char config[160], store[160];
    snprintf(config, sizeof config, "{\"store\": \"sqlite:%s/notify.db\"}", dir);
    CHECK_OK(fashop_notify_configure(config));
    char *out = NULL;
    CHECK_OK(fashop_notify_store_health(&out));
    snprintf(store, sizeof store, "\"store\":\"sqlite:%s/notify.db\"", dir);
    CHECK(out != NULL && strstr(out, "\"ok\":true") != NULL);
    CHECK(out != NULL && strstr(out, "\"error\":null") != NULL);
    CHECK(out != NULL && strstr(out, store) != NULL);
    fashop_notify_string_free(out);
    CHECK(strcmp(fashop_notify_last_error(), "") == 0);
}

static void remove_dir(void) {
    char p[200];
    const char *names[] = {"notify.db", "notify.db-wal", "notify.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    test_null_out();
    test_store_down();
    test_sqlite_ok();
    remove_dir();
    return check_report("test_health");
}
