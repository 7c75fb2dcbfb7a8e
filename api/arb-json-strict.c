/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-json-strict-private.h"

typedef struct {
  GHashTable *seen;      /* JsonObject → members parsed into it so far */
  char       *duplicate; /* the first member named twice */
} Strict;

/* emitted after each member is set: more members parsed than the object
 * holds means one replaced another */
static void
on_member (JsonParser *parser, JsonObject *object, const char *name, gpointer data)
{
  Strict *s = data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (s->seen, object)) + 1;

  g_hash_table_insert (s->seen, object, GUINT_TO_POINTER (n));
  if (n > json_object_get_size (object) && s->duplicate == NULL)
    s->duplicate = g_strdup (name);
}

gboolean
arb_json_load_strict (JsonParser *parser, const char *data, gsize len, char **duplicate, GError **error)
{
  Strict s = { g_hash_table_new (NULL, NULL), NULL };
  gulong id = g_signal_connect (parser, "object-member", G_CALLBACK (on_member), &s);
  gboolean ok = json_parser_load_from_data (parser, data, (gssize) len, error);

  g_signal_handler_disconnect (parser, id);
  g_hash_table_unref (s.seen);
  if (ok && s.duplicate != NULL)
    {
      if (duplicate != NULL)
        *duplicate = g_steal_pointer (&s.duplicate);
      ok = FALSE;
    }
  g_free (s.duplicate);
  return ok;
}
