/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-test-pg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <libpq-fe.h>

struct _ArbTestPg {
  char    *bindir;
  char    *dir;      /* owned by the server's user */
  char    *datadir;
  char    *logfile;
  guint16  port;
  gboolean as_postgres; /* root: run the tools through runuser */
  gboolean running;
  GPid     watchdog;
};

static char *
find_bindir (GError **error)
{
  g_autofree char *out = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autofree char *best = NULL;
  int best_version = -1;
  const char *name;
  int status = 0;
  const char *argv[] = { "pg_config", "--bindir", NULL };

  if (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                    NULL, &status, NULL)
      && g_spawn_check_wait_status (status, NULL))
    {
      g_autofree char *initdb = NULL;
      g_strstrip (out);
      initdb = g_build_filename (out, "initdb", NULL);
      if (g_file_test (initdb, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&out);
    }
  /* Debian's pg_config (libpq-dev) may belong to a newer major than the
   * installed server: fall back to the newest server bin directory */
  dir = g_dir_open ("/usr/lib/postgresql", 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *initdb = g_build_filename ("/usr/lib/postgresql", name, "bin", "initdb", NULL);
      int version = atoi (name);
      if (version > best_version && g_file_test (initdb, G_FILE_TEST_IS_EXECUTABLE))
        {
          best_version = version;
          g_free (best);
          best = g_build_filename ("/usr/lib/postgresql", name, "bin", NULL);
        }
    }
  if (best == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "no PostgreSQL server binaries: neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin has "
                 "initdb (install the postgresql package, see scripts/deps.txt)");
  return g_steal_pointer (&best);
}

static guint16
free_port (GError **error)
{
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0
      || getsockname (fd, (struct sockaddr *) &addr, &len) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "no free loopback port: %s", g_strerror (errno));
      if (fd >= 0)
        close (fd);
      return 0;
    }
  close (fd);
  return ntohs (addr.sin_port);
}

static char *
log_tail (ArbTestPg *pg)
{
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (pg->logfile, &text, &len, NULL) || len == 0)
    return g_strdup ("(the server log is empty)");
  return g_strdup (len > 2000 ? text + len - 2000 : text);
}

/* runs a PostgreSQL tool (as postgres when we are root); the error carries
 * what it printed */
static gboolean
run_tool (ArbTestPg *pg, const char *tool, const char *const *args, GError **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) local = NULL;
  int status = 0;

  if (pg->as_postgres)
    {
      g_ptr_array_add (argv, g_strdup ("runuser"));
      g_ptr_array_add (argv, g_strdup ("-u"));
      g_ptr_array_add (argv, g_strdup ("postgres"));
      g_ptr_array_add (argv, g_strdup ("--"));
    }
  g_ptr_array_add (argv, g_build_filename (pg->bindir, tool, NULL));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  /* the tools must be able to enter the working directory as postgres */
  if (!g_spawn_sync (pg->dir, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                     &local))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", tool, local->message);
      return FALSE;
    }
  if (!g_spawn_check_wait_status (status, &local))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed (%s):\n%s%s", tool, local->message,
                   out != NULL ? out : "", err != NULL ? err : "");
      return FALSE;
    }
  return TRUE;
}

gboolean
arb_test_pg_start (ArbTestPg *pg, GError **error)
{
  g_autofree char *opts = g_strdup_printf ("-k %s -p %u -c listen_addresses=127.0.0.1 -c fsync=on "
                                           "-c max_connections=200",
                                           pg->dir, pg->port);
  const char *args[] = { "-D", pg->datadir, "-l", pg->logfile, "-w", "-t", "60", "-o", opts, "start", NULL };
  g_autoptr(GError) local = NULL;

  if (!run_tool (pg, "pg_ctl", args, &local))
    {
      g_autofree char *tail = log_tail (pg);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "PostgreSQL did not start on 127.0.0.1:%u: %s\nserver log:\n%s",
                   pg->port, local->message, tail);
      return FALSE;
    }
  pg->running = TRUE;
  return TRUE;
}

gboolean
arb_test_pg_stop (ArbTestPg *pg, GError **error)
{
  const char *args[] = { "-D", pg->datadir, "-m", "fast", "-w", "-t", "60", "stop", NULL };

  if (!pg->running)
    return TRUE;
  if (!run_tool (pg, "pg_ctl", args, error))
    return FALSE;
  pg->running = FALSE;
  return TRUE;
}

/* stops the server and deletes the directory if this process dies first */
static void
start_watchdog (ArbTestPg *pg)
{
  g_autofree char *pg_ctl = g_build_filename (pg->bindir, "pg_ctl", NULL);
  g_autofree char *script = g_strdup_printf (
    "while kill -0 %d 2>/dev/null; do sleep 1; done; %s '%s' -D '%s' -m immediate -w stop; rm -rf '%s'",
    (int) getpid (), pg->as_postgres ? "runuser -u postgres --" : "", pg_ctl, pg->datadir, pg->dir);
  const char *argv[] = { "/bin/sh", "-c", script, NULL };

  /* its own output must not keep the test runner's pipes open */
  g_spawn_async ("/", (char **) argv, NULL,
                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL
                   | G_SPAWN_STDIN_FROM_DEV_NULL,
                 NULL, NULL, &pg->watchdog, NULL);
}

ArbTestPg *
arb_test_pg_new (GError **error)
{
  g_autoptr(ArbTestPg) pg = g_new0 (ArbTestPg, 1);
  g_autoptr(GError) local = NULL;
  const char *initdb_args[] = { "-D", NULL, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
                                "--no-sync", NULL };

  pg->bindir = find_bindir (error);
  if (pg->bindir == NULL)
    return NULL;
  pg->dir = g_dir_make_tmp ("arb-pg-XXXXXX", &local);
  if (pg->dir == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "temporary directory: %s", local->message);
      return NULL;
    }
  pg->datadir = g_build_filename (pg->dir, "data", NULL);
  pg->logfile = g_build_filename (pg->dir, "server.log", NULL);
  if (geteuid () == 0)
    {
      struct passwd *pw = getpwnam ("postgres");
      if (pw == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "running as root, and there is no `postgres` user to run the server as");
          return NULL;
        }
      pg->as_postgres = TRUE;
      if (chown (pg->dir, pw->pw_uid, pw->pw_gid) != 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "chown %s: %s", pg->dir,
                       g_strerror (errno));
          return NULL;
        }
    }
  start_watchdog (pg);

  initdb_args[1] = pg->datadir;
  if (!run_tool (pg, "initdb", initdb_args, error))
    return NULL;
  /* a port someone else takes between our probe and the bind: try another */
  for (guint attempt = 0;; attempt++)
    {
      g_clear_error (&local);
      pg->port = free_port (error);
      if (pg->port == 0)
        return NULL;
      if (arb_test_pg_start (pg, &local))
        break;
      if (attempt == 2)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  return g_steal_pointer (&pg);
}

void
arb_test_pg_free (ArbTestPg *pg)
{
  if (pg == NULL)
    return;
  if (pg->running)
    {
      g_autoptr(GError) error = NULL;
      if (!arb_test_pg_stop (pg, &error))
        g_printerr ("# arb-test-pg: %s\n", error->message);
    }
  if (pg->watchdog != 0)
    {
      kill (pg->watchdog, SIGTERM);
      waitpid (pg->watchdog, NULL, 0);
      g_spawn_close_pid (pg->watchdog);
    }
  if (pg->dir != NULL)
    {
      const char *argv[] = { "rm", "-rf", pg->dir, NULL };
      g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  g_free (pg->bindir);
  g_free (pg->dir);
  g_free (pg->datadir);
  g_free (pg->logfile);
  g_free (pg);
}

guint16
arb_test_pg_get_port (ArbTestPg *pg)
{
  return pg->port;
}

const char *
arb_test_pg_get_dir (ArbTestPg *pg)
{
  return pg->dir;
}

char *
arb_test_pg_uri (ArbTestPg *pg, const char *dbname)
{
  return g_strdup_printf ("postgresql://postgres@127.0.0.1:%u/%s", pg->port, dbname);
}

char *
arb_test_pg_create_database (ArbTestPg *pg, const char *name, GError **error)
{
  g_autofree char *admin = arb_test_pg_uri (pg, "postgres");
  g_autofree char *sql = NULL;
  PGconn *conn = PQconnectdb (admin);
  PGresult *res;
  gboolean ok;

  if (PQstatus (conn) != CONNECTION_OK)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "connecting to %s: %s", admin, PQerrorMessage (conn));
      PQfinish (conn);
      return NULL;
    }
  {
    char *quoted = PQescapeIdentifier (conn, name, strlen (name));
    sql = g_strdup_printf ("CREATE DATABASE %s", quoted);
    PQfreemem (quoted);
  }
  res = PQexec (conn, sql);
  ok = PQresultStatus (res) == PGRES_COMMAND_OK;
  if (!ok)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", sql, PQresultErrorMessage (res));
  PQclear (res);
  PQfinish (conn);
  return ok ? arb_test_pg_uri (pg, name) : NULL;
}
