/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A plugin as a future arbiter-plugin-2 would build it: the loader must refuse
 * it by its ABI major before it reads anything past the descriptor's header,
 * and say so in --list-plugins and /ready (tests/test-e2e.c). */

#include <arbiter/arb-plugin.h>

static const ArbPluginDesc abi2_desc = {
  /* not ARB_PLUGIN_DESC_HEADER: that is the point */
  .abi_major = 2,
  .abi_minor = 0,
  .size = sizeof (ArbPluginDesc),
  .name = "ingest-abi2",
  .version = "2.0.0",
  .summary = "Fixture: an ingest plugin built for plugin ABI 2.0",
  .kind = ARB_PLUGIN_INGEST,
  .config = NULL,
  .vtable = NULL,
};

ARB_PLUGIN_DEFINE (ingest_abi2, abi2_desc)
