/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Kalshi's request signatures (API-REFERENCE.md §4.2): the headers
 * KALSHI-ACCESS-KEY (the key id), KALSHI-ACCESS-TIMESTAMP (unix ms) and
 * KALSHI-ACCESS-SIGNATURE = base64 (RSA-PSS with SHA-256, MGF1 SHA-256 and
 * a 32-byte salt over timestamp + METHOD + path, the path without its
 * query). Ed25519 keys, which Kalshi was reported to accept in 2026, sign
 * the same string. OpenSSL's libcrypto; nothing here blocks.
 */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _ArbKalshiKey ArbKalshiKey;

/* a PEM private key (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY");
 * NULL with a G_IO_ERROR_INVALID_DATA error that never quotes the key */
ArbKalshiKey *arb_kalshi_key_new (const char *pem, gsize length, GError **error);
void          arb_kalshi_key_free (ArbKalshiKey *key);
/* "RSA 2048 bits", "Ed25519", for messages */
char         *arb_kalshi_key_describe (ArbKalshiKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbKalshiKey, arb_kalshi_key_free)

/* the base64 signature of @timestamp_ms + @method + @path; (transfer full) */
char *arb_kalshi_sign (ArbKalshiKey *key, const char *timestamp_ms, const char *method, const char *path,
                       GError **error);

G_END_DECLS
