/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A real PostgreSQL server for a test: initdb into a temporary directory,
 * pg_ctl start on a free loopback port (TCP on 127.0.0.1 and a socket in the
 * same directory, fsync=on), torn down by arb_test_pg_free(). As root the
 * server runs as the `postgres` user (initdb refuses root). The binaries come
 * from `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin.
 *
 * A watchdog process stops the server and deletes the directory should the
 * test process die without calling arb_test_pg_free() (an assertion abort),
 * so a failing test never leaves a server behind. */

typedef struct _ArbTestPg ArbTestPg;

/* NULL with the reason (missing binaries, initdb or start failing, with the
 * tail of the server log) */
ArbTestPg  *arb_test_pg_new (GError **error);
void        arb_test_pg_free (ArbTestPg *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbTestPg, arb_test_pg_free)

guint16     arb_test_pg_get_port (ArbTestPg *pg);
/* the server's directory (data/, the socket, server.log) */
const char *arb_test_pg_get_dir (ArbTestPg *pg);

/* CREATE DATABASE @name; returns "postgresql://postgres@127.0.0.1:PORT/name" */
char       *arb_test_pg_create_database (ArbTestPg *pg, const char *name, GError **error);
/* the URI of a database, existing or not */
char       *arb_test_pg_uri (ArbTestPg *pg, const char *dbname);

/* pg_ctl stop -m fast (connections are cut, data is kept), and start again
 * on the same port */
gboolean    arb_test_pg_stop (ArbTestPg *pg, GError **error);
gboolean    arb_test_pg_start (ArbTestPg *pg, GError **error);

G_END_DECLS
