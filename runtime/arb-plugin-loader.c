/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "arb-config-private.h"
#include "arb-plugin-loader-private.h"
#include "arb-util-private.h"

struct _ArbPluginLoader {
  GStrv      dirs;
  GPtrArray *modules; /* ArbPluginModule */
};

/* what ABI 1.0 plugins had; older layouts do not exist */
#define DESC_MIN_SIZE   (offsetof (ArbPluginDesc, vtable) + sizeof (gpointer))
#define INGEST_MIN_SIZE (offsetof (ArbIngestVTable, destroy) + sizeof (gpointer))
#define SINK_MIN_SIZE   (offsetof (ArbSinkVTable, destroy) + sizeof (gpointer))
#define RISK_MIN_SIZE   (offsetof (ArbRiskVTable, destroy) + sizeof (gpointer))
/* sanity: a size field bigger than this is garbage, not a newer struct */
#define STRUCT_MAX_SIZE 4096

const char *
arb_plugin_kind_to_string (guint32 kind)
{
  switch (kind)
    {
    case ARB_PLUGIN_INGEST: return "ingest";
    case ARB_PLUGIN_RISK: return "risk";
    case ARB_PLUGIN_SINK: return "sink";
    default: return "unknown";
    }
}

void
arb_plugin_module_free (ArbPluginModule *module)
{
  if (module == NULL)
    return;
  g_free (module->path);
  g_free (module->name);
  g_free (module->refused);
  g_free (module->shadowed_by);
  /* modules are made resident: closing only drops our handle */
  if (module->module != NULL)
    g_module_close (module->module);
  g_free (module);
}

static gboolean
name_is_valid (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '-'))
      return FALSE;
  return TRUE;
}

static gboolean
key_name_is_valid (const char *name)
{
  if (name == NULL || !g_ascii_islower (name[0]))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_'))
      return FALSE;
  return TRUE;
}

/* checks the plugin's config schema as data; NULL when it is fine */
static char *
check_schema (const ArbConfigKey *keys)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  static const char *const host_keys[] = { "plugin", "required", "events", "queue_size", NULL };

  if (keys == NULL)
    return NULL;
  for (guint i = 0; keys[i].name != NULL; i++)
    {
      const ArbConfigKey *k = &keys[i];
      g_autoptr(GError) error = NULL;
      if (i > 512)
        return g_strdup ("the config schema has no end marker (a zeroed entry)");
      if (!key_name_is_valid (k->name))
        return g_strdup_printf ("config key #%u \"%s\" is not a valid key name ([a-z][a-z0-9_]*)", i, k->name);
      if (g_strv_contains (host_keys, k->name))
        return g_strdup_printf ("config key \"%s\" is reserved for the host", k->name);
      if (g_hash_table_contains (seen, k->name))
        return g_strdup_printf ("config key \"%s\" is declared twice; keep one entry", k->name);
      g_hash_table_add (seen, (gpointer) k->name);
      if (k->type < ARB_CFG_STRING || k->type > ARB_CFG_PATH)
        return g_strdup_printf ("config key \"%s\" has an unknown type %u", k->name, k->type);
      if (k->type == ARB_CFG_ENUM && (k->choices == NULL || *k->choices == '\0'))
        return g_strdup_printf ("config key \"%s\" is an enum without choices; list the allowed words in "
                                ".choices, comma-separated",
                                k->name);
      if (k->min > k->max)
        return g_strdup_printf ("config key \"%s\" has min %" G_GINT64_FORMAT " above max %" G_GINT64_FORMAT,
                                k->name, k->min, k->max);
      if ((k->flags & ARB_CFG_REQUIRED) && k->fallback != NULL)
        return g_strdup_printf ("config key \"%s\" is required and has a default; it can be only one", k->name);
      if (k->fallback != NULL && k->type == ARB_CFG_SECRET)
        return g_strdup_printf ("config key \"%s\" is a secret with a default; secrets have none", k->name);
      if (k->fallback != NULL && !arb_config_key_check_text (k, k->fallback, &error))
        return g_strdup_printf ("config key \"%s\" has a default that does not check: %s", k->name, error->message);
    }
  return NULL;
}

/* copies at most @src_size bytes of a struct of @dst_size bytes, zeroing the rest */
static void
copy_sized (void *dst, gsize dst_size, const void *src, gsize src_size)
{
  memset (dst, 0, dst_size);
  memcpy (dst, src, MIN (dst_size, src_size));
}

static char *
check_vtable (ArbPluginModule *m)
{
  const guint32 *size_p = m->desc.vtable;
  guint32 size;
  const char *missing = NULL;
  const char *vtable_type = "ArbIngestVTable";
  const char *required = "every ingest plugin sets create, start, stop and destroy";

  if (m->desc.kind == ARB_PLUGIN_SINK)
    {
      vtable_type = "ArbSinkVTable";
      required = "every sink plugin sets create, start, write, stop and destroy";
    }
  else if (m->desc.kind == ARB_PLUGIN_RISK)
    {
      vtable_type = "ArbRiskVTable";
      required = "every risk plugin sets create, start, check_order, stop and destroy";
    }

  if (size_p == NULL)
    return g_strdup_printf ("malformed descriptor: vtable is NULL; point it at the plugin's %s", vtable_type);
  size = *size_p;
  if (size > STRUCT_MAX_SIZE)
    return g_strdup_printf ("its callback table claims a size of %u bytes, which is garbage", size);
  switch (m->desc.kind)
    {
    case ARB_PLUGIN_INGEST:
      if (size < INGEST_MIN_SIZE)
        return g_strdup_printf ("its ingest callback table is %u bytes, smaller than ABI 1.0's %zu", size,
                                (gsize) INGEST_MIN_SIZE);
      copy_sized (&m->ingest, sizeof m->ingest, size_p, size);
      if (m->ingest.create == NULL) missing = "create";
      else if (m->ingest.start == NULL) missing = "start";
      else if (m->ingest.stop == NULL) missing = "stop";
      else if (m->ingest.destroy == NULL) missing = "destroy";
      break;
    case ARB_PLUGIN_SINK:
      if (size < SINK_MIN_SIZE)
        return g_strdup_printf ("its sink callback table is %u bytes, smaller than ABI 1.0's %zu", size,
                                (gsize) SINK_MIN_SIZE);
      copy_sized (&m->sink, sizeof m->sink, size_p, size);
      if (m->sink.create == NULL) missing = "create";
      else if (m->sink.start == NULL) missing = "start";
      else if (m->sink.write == NULL) missing = "write";
      else if (m->sink.stop == NULL) missing = "stop";
      else if (m->sink.destroy == NULL) missing = "destroy";
      break;
    case ARB_PLUGIN_RISK:
      if (size < RISK_MIN_SIZE)
        return g_strdup_printf ("its risk callback table is %u bytes, smaller than ABI 1.0's %zu", size,
                                (gsize) RISK_MIN_SIZE);
      copy_sized (&m->risk, sizeof m->risk, size_p, size);
      if (m->risk.create == NULL) missing = "create";
      else if (m->risk.start == NULL) missing = "start";
      else if (m->risk.check_order == NULL) missing = "check_order";
      else if (m->risk.stop == NULL) missing = "stop";
      else if (m->risk.destroy == NULL) missing = "destroy";
      break;
    default:
      break;
    }
  if (missing != NULL)
    return g_strdup_printf ("its %s has no %s callback; %s", vtable_type, missing, required);
  return NULL;
}

static char *
check_desc (ArbPluginModule *m, const ArbPluginDesc *raw)
{
  const char *kind_prefix;
  g_autofree char *schema_problem = NULL;

  /* ABI first: a different major may have any layout at all past the header */
  if (raw->abi_major != ARB_PLUGIN_ABI_MAJOR)
    return g_strdup_printf ("built for plugin ABI %u.%u, this host speaks %u.%u; rebuild it against %s",
                            raw->abi_major, raw->abi_minor, ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR,
                            "arbiter-plugin-1");
  if (raw->abi_minor > ARB_PLUGIN_ABI_MINOR)
    return g_strdup_printf ("built for plugin ABI %u.%u, newer than this host's %u.%u; upgrade arbiterd or "
                            "rebuild the plugin against this host's arbiter-plugin-1",
                            raw->abi_major, raw->abi_minor, ARB_PLUGIN_ABI_MAJOR, ARB_PLUGIN_ABI_MINOR);
  if (raw->size < DESC_MIN_SIZE || raw->size > STRUCT_MAX_SIZE)
    return g_strdup_printf ("malformed descriptor: its size field says %u bytes, ABI %u.0 needs at least %zu; "
                            "use ARB_PLUGIN_DESC_HEADER",
                            raw->size, ARB_PLUGIN_ABI_MAJOR, (gsize) DESC_MIN_SIZE);
  copy_sized (&m->desc, sizeof m->desc, raw, raw->size);
  if (!name_is_valid (m->desc.name))
    return g_strdup ("malformed descriptor: its name is missing or not [a-z0-9-]+");
  if (!g_str_equal (m->desc.name, m->name))
    return g_strdup_printf ("malformed descriptor: it calls itself \"%s\" but the file says \"%s\"; the name "
                            "must equal the file stem: rename the file to libarb-%s.so or fix .name",
                            m->desc.name, m->name, m->desc.name);
  if (m->desc.version == NULL || *m->desc.version == '\0')
    return g_strdup ("malformed descriptor: it has no version");
  if (m->desc.summary == NULL || *m->desc.summary == '\0')
    return g_strdup ("malformed descriptor: it has no summary");
  if (m->desc.kind < ARB_PLUGIN_INGEST || m->desc.kind > ARB_PLUGIN_SINK)
    return g_strdup_printf ("malformed descriptor: unknown kind %u (1 ingest, 2 risk, 3 sink)", m->desc.kind);
  kind_prefix = arb_plugin_kind_to_string (m->desc.kind);
  if (!g_str_has_prefix (m->desc.name, kind_prefix) || m->desc.name[strlen (kind_prefix)] != '-')
    return g_strdup_printf ("malformed descriptor: a %s plugin's name starts with \"%s-\"", kind_prefix, kind_prefix);
  for (guint i = 0; i < G_N_ELEMENTS (m->desc.reserved); i++)
    if (m->desc.reserved[i] != NULL)
      return g_strdup ("malformed descriptor: its reserved fields are not zero");
  schema_problem = check_schema (m->desc.config);
  if (schema_problem != NULL)
    return g_strdup_printf ("malformed descriptor: %s", schema_problem);
  return check_vtable (m);
}

ArbPluginModule *
arb_plugin_module_open (const char *path)
{
  g_autoptr(GError) error = NULL;
  ArbPluginModule *m = g_new0 (ArbPluginModule, 1);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *symbol = NULL;
  const ArbPluginDesc *(*describe) (void) = NULL;
  const ArbPluginDesc *raw;

  m->path = g_strdup (path);
  /* libarb-sink-jsonl.so → sink-jsonl */
  if (g_str_has_prefix (base, "libarb-") && g_str_has_suffix (base, ".so"))
    m->name = g_strndup (base + strlen ("libarb-"), strlen (base) - strlen ("libarb-") - strlen (".so"));
  else
    m->name = g_strdup (base);

  /* every symbol resolved now, never lazily: a missing one must fail here,
   * not in the middle of an order */
  m->module = g_module_open_full (path, G_MODULE_BIND_LOCAL, &error);
  if (m->module == NULL)
    {
      m->refused = g_strdup_printf ("cannot be loaded: %s", error->message);
      return m;
    }
  symbol = g_strdup_printf ("arb_plugin_%s_describe", m->name);
  g_strdelimit (symbol, "-", '_');
  if (!g_module_symbol (m->module, symbol, (gpointer *) &describe) || describe == NULL)
    {
      g_autofree char *ident = g_strdelimit (g_strdup (m->name), "-", '_');
      m->refused = g_strdup_printf ("has no entry symbol %s; define it with ARB_PLUGIN_DEFINE (%s, ...), "
                                    "or rename the file after the plugin's name",
                                    symbol, ident);
      return m;
    }
  raw = describe ();
  if (raw == NULL)
    {
      m->refused = g_strdup_printf ("%s returned no descriptor", symbol);
      return m;
    }
  m->refused = check_desc (m, raw);
  if (m->refused == NULL)
    g_module_make_resident (m->module);
  return m;
}

ArbPluginLoader *
arb_plugin_loader_new (const char *const *dirs)
{
  ArbPluginLoader *loader = g_new0 (ArbPluginLoader, 1);
  loader->dirs = g_strdupv ((char **) dirs);
  loader->modules = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_plugin_module_free);
  return loader;
}

void
arb_plugin_loader_free (ArbPluginLoader *loader)
{
  if (loader == NULL)
    return;
  g_strfreev (loader->dirs);
  g_ptr_array_unref (loader->modules);
  g_free (loader);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
collect (const char *dir, guint depth, GPtrArray *files)
{
  g_autoptr(GDir) d = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (depth > 4)
    return;
  d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  /* a stable order, so "the first one wins" means the same thing every run */
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = g_ptr_array_index (names, i);
      g_autofree char *full = g_build_filename (dir, n, NULL);
      if (g_str_has_prefix (n, "libarb-") && g_str_has_suffix (n, ".so")
          && g_file_test (full, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (files, g_steal_pointer (&full));
      else if (n[0] != '.' && !g_str_has_suffix (n, ".p") && g_file_test (full, G_FILE_TEST_IS_DIR)
               && !g_file_test (full, G_FILE_TEST_IS_SYMLINK))
        collect (full, depth + 1, files);
    }
}

void
arb_plugin_loader_scan (ArbPluginLoader *loader)
{
  g_autoptr(GHashTable) first = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; loader->dirs[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
      collect (loader->dirs[i], 0, files);
      for (guint f = 0; f < files->len; f++)
        {
          const char *path = g_ptr_array_index (files, f);
          g_autofree char *base = g_path_get_basename (path);
          ArbPluginModule *earlier = g_hash_table_lookup (first, base);
          ArbPluginModule *m;

          if (earlier != NULL)
            {
              /* never dlopen a second copy of the same plugin */
              m = g_new0 (ArbPluginModule, 1);
              m->path = g_strdup (path);
              m->name = g_strndup (base + strlen ("libarb-"), strlen (base) - strlen ("libarb-") - strlen (".so"));
              m->shadowed_by = g_strdup (earlier->path);
              m->refused = g_strdup_printf ("shadowed by %s, found earlier in the plugin path", earlier->path);
              g_ptr_array_add (loader->modules, m);
              continue;
            }
          m = arb_plugin_module_open (path);
          g_ptr_array_add (loader->modules, m);
          g_hash_table_insert (first, m->path + strlen (m->path) - strlen (base), m);
        }
    }
}

GPtrArray *
arb_plugin_loader_get_modules (ArbPluginLoader *loader)
{
  return loader->modules;
}

ArbPluginModule *
arb_plugin_loader_find (ArbPluginLoader *loader, const char *name)
{
  for (guint i = 0; i < loader->modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (loader->modules, i);
      if (m->refused == NULL && g_str_equal (m->name, name))
        return m;
    }
  return NULL;
}

ArbPluginModule *
arb_plugin_loader_find_any (ArbPluginLoader *loader, const char *name)
{
  for (guint i = 0; i < loader->modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (loader->modules, i);
      if (m->shadowed_by == NULL && g_str_equal (m->name, name))
        return m;
    }
  return NULL;
}

const char *const *
arb_plugin_loader_get_dirs (ArbPluginLoader *loader)
{
  return (const char *const *) loader->dirs;
}

GStrv
arb_plugin_loader_get_names (ArbPluginLoader *loader)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; i < loader->modules->len; i++)
    {
      ArbPluginModule *m = g_ptr_array_index (loader->modules, i);
      if (m->refused == NULL)
        g_strv_builder_add (b, m->name);
    }
  return g_strv_builder_end (b);
}
