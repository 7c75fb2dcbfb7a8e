/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The fake upstream's Kalshi: it verifies request signatures the way Kalshi
 * does (API-REFERENCE.md §4.2) with the key's public half. RSA-PSS
 * signatures are randomized, so they are verified, never compared:
 * KALSHI-ACCESS-SIGNATURE must be base64 of an RSA-PSS SHA-256 signature
 * (MGF1 SHA-256, salt length 32) over KALSHI-ACCESS-TIMESTAMP + METHOD +
 * path (no query), KALSHI-ACCESS-KEY the expected key id, and the timestamp
 * within 10 s of now. Refusals carry Kalshi's own 401 bodies. Separate from
 * fake-upstream.c so that its other users need no OpenSSL.
 */

#include "fake-upstream.h"

G_BEGIN_DECLS

typedef struct _FakeKalshiAuth FakeKalshiAuth;

/* @public_pem: the SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY") */
FakeKalshiAuth *fake_kalshi_auth_new (const char *key_id, const char *public_pem, GError **error);
/* checks every request under @prefix ("/trade-api/") of @fu; @auth must
 * outlive @fu */
void            fake_kalshi_auth_install (FakeKalshiAuth *auth, FakeUpstream *fu, const char *prefix);
void            fake_kalshi_auth_free (FakeKalshiAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeKalshiAuth, fake_kalshi_auth_free)

/* signatures verified, and requests refused, since the start */
guint           fake_kalshi_auth_get_verified (FakeKalshiAuth *auth);
guint           fake_kalshi_auth_get_refused (FakeKalshiAuth *auth);
/* (transfer full) (nullable) why the last refusal */
char           *fake_kalshi_auth_dup_last_refusal (FakeKalshiAuth *auth);
/* tolerate requests without any KALSHI-ACCESS header (public REST market
 * data needs none); a request with some of them is still verified */
void            fake_kalshi_auth_allow_unsigned (FakeKalshiAuth *auth, gboolean allow);

/* a fresh RSA key pair of @bits, both halves as PEM (PKCS#8 private,
 * SubjectPublicKeyInfo public), for tests */
gboolean        fake_kalshi_make_key (guint bits, char **private_pem, char **public_pem, GError **error);

G_END_DECLS
