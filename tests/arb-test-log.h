/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The host logs through g_log_structured_array() (arb_log_for), which
 * g_test_expect_message() cannot see, and GLib's default writer aborts on a
 * structured warning or critical once g_test_init() has made them fatal. So
 * the tests install this writer instead: it records what the host logs, lets
 * a test state what it expects, and fails the test on anything at WARNING or
 * above that nobody expected. Messages from the old g_log() API (GLib's own
 * g_return_if_fail, a plugin's g_warning) still abort as usual. */

/* once, after g_test_init() */
void arb_test_log_install (void);
/* the next record at @level from @instance (an instance name such as
 * "ingest:x", or NULL for any) whose message is exactly @message */
void arb_test_log_expect (GLogLevelFlags level, const char *instance, const char *message);
/* tolerates any number of records at @level from @instance until the next
 * arb_test_log_check(), for failures whose wording is the plugin's own */
void arb_test_log_allow (GLogLevelFlags level, const char *instance);
/* asserts that every expected record came and no unexpected warning or
 * critical did, then starts afresh; call at the end of each test */
void arb_test_log_check (void);

G_END_DECLS
