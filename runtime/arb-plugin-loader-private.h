/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <arbiter/arb-plugin.h>

G_BEGIN_DECLS

/* One module found in the plugin path: loaded and checked, or refused with a
 * reason that says what to do. */
typedef struct {
  char           *path;      /* owned */
  char           *name;      /* owned: the file stem, "sink-jsonl" */
  GModule        *module;    /* owned, nullable: NULL when refused before opening */
  ArbPluginDesc   desc;      /* a copy, zero past the plugin's size */
  ArbIngestVTable ingest;    /* the vtable for desc.kind, zero past its size */
  ArbSinkVTable   sink;
  ArbRiskVTable   risk;
  char           *refused;   /* owned, nullable: why it was refused */
  char           *shadowed_by; /* owned, nullable: another file of the same name came first */
} ArbPluginModule;

/* Opens and checks one file. Always returns a module; check ->refused. */
ArbPluginModule *arb_plugin_module_open (const char *path);
void             arb_plugin_module_free (ArbPluginModule *module);
const char      *arb_plugin_kind_to_string (guint32 kind);

typedef struct _ArbPluginLoader ArbPluginLoader;

/* @dirs: searched in order, each recursively (a build tree has a folder per
 * plugin); the first module of a name wins. */
ArbPluginLoader *arb_plugin_loader_new (const char *const *dirs);
void             arb_plugin_loader_free (ArbPluginLoader *loader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbPluginLoader, arb_plugin_loader_free)
/* opens every libarb-*.so found */
void             arb_plugin_loader_scan (ArbPluginLoader *loader);
/* (element-type ArbPluginModule) every module found, refused ones included */
GPtrArray       *arb_plugin_loader_get_modules (ArbPluginLoader *loader);
/* the loaded (not refused) module of that name, or NULL */
ArbPluginModule *arb_plugin_loader_find (ArbPluginLoader *loader, const char *name);
/* any module of that name, refused or not */
ArbPluginModule *arb_plugin_loader_find_any (ArbPluginLoader *loader, const char *name);
const char *const *arb_plugin_loader_get_dirs (ArbPluginLoader *loader);
/* names of the loaded modules, for suggestions */
GStrv            arb_plugin_loader_get_names (ArbPluginLoader *loader);

G_END_DECLS
