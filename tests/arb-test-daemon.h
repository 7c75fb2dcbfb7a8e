/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The real arbiterd as a subprocess of a test: started on a config, its
 * stderr read a line at a time (the port it listens on comes from there),
 * asked over HTTP from the outside, and stopped with SIGTERM. The same
 * approach as tests/test-e2e.c, reusable by the end-to-end tests of the
 * ingest plugins. Everything runs on the thread-default main context. */

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _ArbTestDaemon ArbTestDaemon;

/* iterates the thread-default context until @cond holds or @timeout_ms
 * passed (a tick every 20 ms lets conditions on files be polled) */
gboolean       arb_test_wait_for (gboolean (*cond) (gpointer data), gpointer data, guint timeout_ms);
/* iterates the thread-default context for @ms */
void           arb_test_run_for (guint ms);

/* $ARB_BUILD_ROOT/runtime/arbiterd --config @conf, with the build's plugins
 * and @env (NULL-terminated NAME, VALUE pairs) added to its environment.
 * Waits until it logs its port; NULL (and the log as a test message) when
 * it does not. */
ArbTestDaemon *arb_test_daemon_start (const char *conf, const char *const *env);
guint16        arb_test_daemon_get_port (ArbTestDaemon *d);
/* every line it logged so far */
const char    *arb_test_daemon_get_log (ArbTestDaemon *d);
/* SIGTERM, then its exit status; -1 when it did not exit in 5 s, -2 when a
 * signal killed it */
int            arb_test_daemon_terminate (ArbTestDaemon *d);
void           arb_test_daemon_free (ArbTestDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTestDaemon, arb_test_daemon_free)

/* arbiterd --check-config @conf: its exit status, and what it printed */
int            arb_test_check_config (const char *conf, char **output);

typedef struct {
  guint  status;
  char  *body;         /* owned */
  char  *content_type; /* owned, nullable */
  char  *retry_after;  /* owned, nullable */
} ArbTestReply;

void           arb_test_reply_free (ArbTestReply *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTestReply, arb_test_reply_free)
/* GET http://127.0.0.1:PORT@path; asserts that an answer came */
ArbTestReply  *arb_test_http_get (SoupSession *session, ArbTestDaemon *d, const char *path);
/* @method http://127.0.0.1:PORT@path with a bearer @token (nullable) and a
 * JSON @body (nullable); asserts that an answer came */
ArbTestReply  *arb_test_http_request (SoupSession *session, ArbTestDaemon *d, const char *method, const char *path,
                                      const char *token, const char *body);
/* arbiterd --config @conf --mint-token @subject [--admin]: the token, or NULL */
char          *arb_test_mint_token (const char *conf, const char *subject, gboolean admin);
/* a session straight to 127.0.0.1, no proxy */
SoupSession   *arb_test_session_new (void);

G_END_DECLS
