/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* json_parser_load_from_data() that also refuses an object naming a member
 * twice. JSON leaves that open and parsers differ on which value wins
 * (json-glib keeps the last, others the first), so a body or a token that
 * means one thing to its sender and another here is refused instead. On
 * such a refusal *duplicate (nullable) takes the member's name and @error is
 * not set; on a syntax error @error is set. */
gboolean arb_json_load_strict (JsonParser *parser, const char *data, gsize len, char **duplicate, GError **error);

G_END_DECLS
