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

#endif
