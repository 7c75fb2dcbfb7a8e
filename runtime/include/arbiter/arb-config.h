/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ArbConfigType:
 * @ARB_CFG_STRING: any UTF-8 string
 * @ARB_CFG_INT: a signed 64-bit integer, range checked with min/max
 * @ARB_CFG_BOOL: true or false
 * @ARB_CFG_DURATION: a number with a unit (`250ms`, `10s`, `5m`, `24h`, `7d`),
 *   read in milliseconds; min/max are milliseconds
 * @ARB_CFG_STRV: a comma-separated list
 * @ARB_CFG_DECIMAL: a fixed-point decimal (see arb-decimal.h); min/max are
 *   whole units
 * @ARB_CFG_ENUM: one of the comma-separated words in `choices`
 * @ARB_CFG_SECRET: never written in the file itself: the group carries
 *   `NAME_env=VARIABLE` or `NAME_file=PATH` and the host resolves it; never
 *   logged or echoed
 * @ARB_CFG_PATH: a file or directory name; relative names are taken from the
 *   directory of the config file
 *
 * The type of one config key. Since: 1.0
 */
typedef enum {
  ARB_CFG_STRING = 1,
  ARB_CFG_INT,
  ARB_CFG_BOOL,
  ARB_CFG_DURATION,
  ARB_CFG_STRV,
  ARB_CFG_DECIMAL,
  ARB_CFG_ENUM,
  ARB_CFG_SECRET,
  ARB_CFG_PATH,
} ArbConfigType;

/**
 * ArbConfigFlags:
 * @ARB_CFG_REQUIRED: the group must set the key
 *
 * Since: 1.0
 */
typedef enum {
  ARB_CFG_NONE = 0,
  ARB_CFG_REQUIRED = 1 << 0,
} ArbConfigFlags;

/**
 * ArbConfigKey:
 * @name: the key as written in the key file
 * @type: an #ArbConfigType
 * @flags: #ArbConfigFlags
 * @fallback: (nullable): the default, as it would be written in the key file;
 *   NULL means "unset" for an optional key
 * @min: lowest allowed value (INT, DURATION in ms, DECIMAL in whole units);
 *   @min == @max == 0 means no range
 * @max: highest allowed value
 * @choices: (nullable): for ARB_CFG_ENUM, the allowed words, comma-separated
 * @help: one line shown by `arbiterd --describe-plugin`
 *
 * One entry of a plugin's config schema; a table ends with a zeroed entry.
 * The host checks every instance group against the table before `create`.
 * Since: 1.0
 */
typedef struct {
  const char *name;
  guint32     type;
  guint32     flags;
  const char *fallback;
  gint64      min;
  gint64      max;
  const char *choices;
  const char *help;
} ArbConfigKey;

G_END_DECLS
