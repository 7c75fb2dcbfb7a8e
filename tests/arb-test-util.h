/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small GLib-only helpers the tests share. */

#include <glib.h>

G_BEGIN_DECLS

/* removes @path and everything below it (a symbolic link is removed, not
 * followed); TRUE when all of it went, else each failure is a test message */
gboolean arb_test_remove_tree (const char *path);

/* GLib's, GIO's and libsoup's own debug chatter (isolated dirs, socket
 * client) dropped, so it does not bury the TAP log */
void     arb_test_drop_library_debug (void);

G_END_DECLS
