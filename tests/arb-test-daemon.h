/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The real arbiterd as a subprocess of a test: started on a config, its
 * stderr read a line at a time (the port it listens on comes from there),
 * asked over HTTP from the outside, and stopped with SIGTERM (or killed).
 * Shared by the end-to-end tests. Everything runs on the thread-default main
 * context. */

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _ArbTestDaemon ArbTestDaemon;

/* iterates the thread-default context until @cond holds or @timeout_ms
 * passed (a tick every 20 ms lets conditions on files be polled) */
gboolean       arb_test_wait_for (gboolean (*cond) (gpointer data), gpointer data, guint timeout_ms);
/* iterates the thread-default context for @ms */
void           arb_test_run_for (guint ms);

/* $ARB_BUILD_ROOT/runtime/arbiterd */
char          *arb_test_arbiterd_path (void);

typedef enum {
  ARB_TEST_DAEMON_DEFAULT = 0,
  /* its lines are kept (arb_test_daemon_get_log) but not repeated as test
   * messages, for a daemon that logs a great deal */
  ARB_TEST_DAEMON_QUIET = 1 << 0,
} ArbTestDaemonFlags;

/* $ARB_BUILD_ROOT/runtime/arbiterd --config @conf, with the build's plugins
 * and @env (NULL-terminated NAME, VALUE pairs, which may replace
 * ARBITER_PLUGIN_PATH) added to its environment. Waits until it logs its
 * port; NULL (and the log as a test message) when it does not. */
ArbTestDaemon *arb_test_daemon_start (const char *conf, const char *const *env);
/* the same, waiting at most @start_timeout_ms (0: 10 s) for the port */
ArbTestDaemon *arb_test_daemon_start_full (const char *conf, const char *const *env, ArbTestDaemonFlags flags,
                                           guint start_timeout_ms);
guint16        arb_test_daemon_get_port (ArbTestDaemon *d);
/* every line it logged so far */
const char    *arb_test_daemon_get_log (ArbTestDaemon *d);
/* the process, to ask how it ended */
GSubprocess   *arb_test_daemon_get_subprocess (ArbTestDaemon *d);
/* sends @signum (SIGKILL: a crash) without waiting; arb_test_daemon_has_exited()
 * turns TRUE once the process is gone */
void           arb_test_daemon_kill (ArbTestDaemon *d, int signum);
gboolean       arb_test_daemon_has_exited (ArbTestDaemon *d);
/* SIGTERM, then its exit status; -1 when it did not exit in 5 s, -2 when a
 * signal killed it */
int            arb_test_daemon_terminate (ArbTestDaemon *d);
/* the same, waiting at most @timeout_ms for it to exit */
int            arb_test_daemon_terminate_within (ArbTestDaemon *d, guint timeout_ms);
/* kills it if it still runs, and waits until it is gone */
void           arb_test_daemon_free (ArbTestDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTestDaemon, arb_test_daemon_free)

/* arbiterd --check-config @conf: its exit status, and what it printed */
int            arb_test_check_config (const char *conf, char **output);

/* runs @argv (arbiterd, or any tool) to its end with the build's plugins and
 * @env (as arb_test_daemon_start) in its environment; its exit status, -1
 * when a signal ended it, and what it wrote to @out and @err (nullable) */
int            arb_test_run (const char *const *argv, const char *const *env, char **out, char **err);

typedef struct {
  guint               status;
  char               *body;         /* owned */
  char               *content_type; /* owned, nullable */
  char               *retry_after;  /* owned, nullable */
  SoupMessageHeaders *headers;      /* owned: all the response's headers */
} ArbTestReply;

void           arb_test_reply_free (ArbTestReply *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTestReply, arb_test_reply_free)
/* the response header @name, or NULL */
const char    *arb_test_reply_header (ArbTestReply *r, const char *name);
/* GET http://127.0.0.1:PORT@path; asserts that an answer came */
ArbTestReply  *arb_test_http_get (SoupSession *session, ArbTestDaemon *d, const char *path);
/* @method http://127.0.0.1:PORT@path with a bearer @token (nullable) and a
 * JSON @body (nullable); asserts that an answer came */
ArbTestReply  *arb_test_http_request (SoupSession *session, ArbTestDaemon *d, const char *method, const char *path,
                                      const char *token, const char *body);
/* the same with more request @headers (NULL-terminated NAME, VALUE pairs) */
ArbTestReply  *arb_test_http_request_full (SoupSession *session, ArbTestDaemon *d, const char *method,
                                           const char *path, const char *token, const char *body,
                                           const char *const *headers);
/* one line for arb_test_check_openapi () on @out, when @body is JSON; the
 * replies of arb_test_http_request*() are recorded so, and checked when
 * their daemon is freed */
void           arb_test_record_answer (GString *out, const char *method, const char *path, guint status,
                                       const char *body);
/* @answers (lines of arb_test_record_answer) against doc/openapi.yaml with
 * tests/openapi-check.py: a failure is fatal, with the script's report */
void           arb_test_check_openapi (const char *answers);
/* arbiterd --config @conf --mint-token @subject [--admin]: the token, or NULL */
char          *arb_test_mint_token (const char *conf, const char *subject, gboolean admin);
/* a session straight to 127.0.0.1, no proxy, a 10 s timeout */
SoupSession   *arb_test_session_new (void);
/* the same with a timeout of @timeout_s and, when not 0, room for
 * @max_conns_per_host connections in parallel */
SoupSession   *arb_test_session_new_full (guint timeout_s, guint max_conns_per_host);

G_END_DECLS
