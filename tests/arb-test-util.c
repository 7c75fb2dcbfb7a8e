/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-test-util.h"

#include <errno.h>

#include <glib/gstdio.h>

static gboolean
removed (int rc, const char *path)
{
  int saved_errno = errno;

  if (rc == 0)
    return TRUE;
  g_test_message ("cannot remove %s: %s", path, g_strerror (saved_errno));
  return FALSE;
}

gboolean
arb_test_remove_tree (const char *path)
{
  g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
  gboolean ok = TRUE;
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        ok = arb_test_remove_tree (child) && ok;
      else
        ok = removed (g_unlink (child), child) && ok;
    }
  return removed (g_rmdir (path), path) && ok;
}

static void
drop_message (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
}

void
arb_test_drop_library_debug (void)
{
  static const char *const domains[] = { "GLib", "GLib-GIO", "libsoup" };

  for (guint i = 0; i < G_N_ELEMENTS (domains); i++)
    g_log_set_handler (domains[i], G_LOG_LEVEL_DEBUG, drop_message, NULL);
}
