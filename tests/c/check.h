/* Tiny assertion helpers shared by the C tests. */
#ifndef FASHOP_NOTIFY_TEST_CHECK_H
#define FASHOP_NOTIFY_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashop_notify.h"

static int check_failures = 0;
static int check_passes = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            check_passes++;                                                      \
        } else {                                                                 \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last_error: %s)\n",        \
                    __FILE__, __LINE__, #cond, fashop_notify_last_error());      \
        }                                                                        \
    } while (0)

/* The call returns `status` and last_error contains `needle`. */
#define CHECK_STATUS(call, status, needle)                                       \
    do {                                                                         \
        FashopNotifyStatus check_st_ = (call);                                   \
        const char *check_le_ = fashop_notify_last_error();                      \
        if (check_st_ == (status) && strstr(check_le_, (needle)) != NULL) {      \
            check_passes++;                                                      \
        } else {                                                                 \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: %s returned %d (want %d), last_error \"%s\" " \
                    "(want it to contain \"%s\")\n", __FILE__, __LINE__, #call,  \
                    (int)check_st_, (int)(status), check_le_, (needle));         \
        }                                                                        \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, FASHOP_NOTIFY_OK, "")

/* Prints the plain closing line and returns the exit code. */
__attribute__((unused)) static int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passes, check_failures);
    return check_failures == 0 ? 0 : 1;
}

/* The sandbox URL the test harness started, or NULL. */
__attribute__((unused)) static const char *sandbox_url(void) { return getenv("FASHOP_NOTIFY_SANDBOX_URL"); }

/* The whole file as a NUL-terminated string the caller frees, or NULL. */
__attribute__((unused)) static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n < 0 ? NULL : malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Points the library at the sandbox (`config_members`: the JSON members after api_base),
 * registers the sandbox's demo app and loads the reference mappings for it. Returns 0,
 * or 1 with the failure counted and said. */
__attribute__((unused)) static int setup_demo_app(const char *config_members) {
    const char *url = sandbox_url();
    if (!url) {
        check_failures++;
        fprintf(stderr, "FASHOP_NOTIFY_SANDBOX_URL is not set: run through scripts/with-sandbox.sh\n");
        return 1;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"api_base\": \"%s\", %s}", url, config_members);
    CHECK_OK(fashop_notify_configure(buf));
    CHECK_OK(fashop_notify_register_app("{\"appid\": \"wxdemo0000000001\", \"secret\": \"demo-app-secret-0001\"}"));
    char *mappings = read_file("examples/mappings.json");
    CHECK(mappings != NULL);
    if (!mappings) return 1;
    CHECK_OK(fashop_notify_load_mappings("wxdemo0000000001", mappings));
    free(mappings);
    return 0;
}

#endif
