/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * JWT (RFC 7519, JWS compact serialisation) for the REST API: verification of
 * bearer tokens on every request, and minting of HS256 tokens for
 * `arbiterd --mint-token`.
 *
 * Verification does not go through libjwt. libjwt 1.10 (Debian 12) trusts the
 * token's own `alg` header (so an HS256 token signed with the RSA public key
 * PEM as the HMAC secret passes an RS256 setup), skips the signature entirely
 * when given a NULL key, re-parses the PEM key on every jwt_decode() (~600 µs
 * a call with OpenSSL 3, against ~30 µs here) and reports a failure as a bare
 * errno, which leaves nothing to tell a client. The verifier instead pins one
 * algorithm, parses the key once with OpenSSL, compares HMACs in constant time
 * and checks the claims itself. libjwt is used for minting, so the tests have
 * two independent implementations to check against each other (and
 * python3-jwt as a third).
 *
 * Rules, in the order they are applied (the first failure wins):
 *  - a token longer than ARB_JWT_MAX_TOKEN_LEN bytes is refused unread;
 *  - three base64url parts (no padding, canonical), header and payload JSON
 *    objects;
 *  - header `alg` must equal the configured algorithm exactly ("none" gets its
 *    own reason); a `crit` header is refused (no extensions are understood);
 *  - the signature, with the configured key only;
 *  - `exp` required: refused when now >= exp + leeway;
 *  - `nbf` optional: refused when now + leeway < nbf;
 *  - `iat` optional: refused when now + leeway < iat (issued in the future);
 *  - `iss` when an issuer is configured: must be present and equal;
 *  - `aud` when an audience is configured: a string equal to it, or an array
 *    of strings containing it. Without a configured audience `aud` is not
 *    looked at (issue 3: "checked when configured");
 *  - `sub` required: a non-empty string of at most ARB_JWT_MAX_SUBJECT_LEN
 *    bytes without control characters;
 *  - `roles` optional: when present, an array of strings; "admin" among them
 *    makes an admin.
 * NumericDate claims may be JSON integers or finite numbers with a fraction
 * (RFC 7519 §2); a fractional `exp` is rounded down, `nbf`/`iat` up.
 *
 * Every refusal carries a short message that names the rule and never any key
 * material or token content, so it can be shown to the client as is:
 *   "token too large", "malformed token: ...", "algorithm none not allowed",
 *   "algorithm not allowed", "unsupported critical header",
 *   "token signature invalid", "token expired", "token not yet valid",
 *   "token issued in the future", "missing exp claim", "invalid exp claim",
 *   "invalid nbf claim", "invalid iat claim", "missing iss claim",
 *   "issuer mismatch", "missing aud claim", "audience mismatch",
 *   "missing sub claim", "invalid sub claim", "invalid roles claim".
 */

#define ARB_JWT_MAX_TOKEN_LEN       8192  /* bytes; checked before any decoding */
#define ARB_JWT_MAX_SUBJECT_LEN     256   /* bytes of `sub` */
#define ARB_JWT_DEFAULT_LEEWAY_S    30    /* clock skew allowed on exp, nbf and iat */
#define ARB_JWT_MAX_LEEWAY_S        300
#define ARB_JWT_MIN_SECRET_LEN      32    /* RFC 7518 §3.2: at least the hash size */
#define ARB_JWT_MAX_SECRET_LEN      4096
#define ARB_JWT_MAX_TTL_S           (366 * 24 * 3600)

#define ARB_JWT_ERROR (arb_jwt_error_quark ())
GQuark arb_jwt_error_quark (void);

/* the REST layer answers every code but CONFIG with 401 UNAUTHENTICATED; the
 * codes exist for tests and metrics, the message is for the client */
typedef enum {
  ARB_JWT_ERROR_CONFIG,         /* bad verifier or minting setup (alg, key, secret, leeway) */
  ARB_JWT_ERROR_TOO_LARGE,      /* over ARB_JWT_MAX_TOKEN_LEN */
  ARB_JWT_ERROR_MALFORMED,      /* not three base64url parts of JSON objects */
  ARB_JWT_ERROR_ALGORITHM,      /* header alg is not the configured one, or a crit header */
  ARB_JWT_ERROR_SIGNATURE,      /* signature does not verify with the configured key */
  ARB_JWT_ERROR_EXPIRED,        /* exp passed */
  ARB_JWT_ERROR_NOT_YET_VALID,  /* nbf or iat in the future */
  ARB_JWT_ERROR_CLAIMS,         /* exp/sub missing or invalid, iss/aud mismatch, bad roles */
} ArbJwtError;

/* who a verified token speaks for */
typedef struct {
  char     *subject;     /* owned: `sub` */
  gboolean  admin;       /* `roles` contains "admin" */
  gint64    expires_us;  /* `exp` in unix µs (saturated), for caches */
  char    **roles;       /* owned, never NULL: `roles`, empty when absent */
} ArbPrincipal;

void arb_principal_free (ArbPrincipal *principal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbPrincipal, arb_principal_free)

typedef struct _ArbJwtVerifier ArbJwtVerifier;

/*
 * arb_jwt_verifier_new:
 * @alg: "HS256" or "RS256" (exactly; from `[api] jwt_alg`)
 * @key: (array length=key_len): HS256: the secret bytes, at least
 *   ARB_JWT_MIN_SECRET_LEN of them (a PEM key here is refused as a likely
 *   misconfiguration); RS256: a PEM "PUBLIC KEY" (SubjectPublicKeyInfo, as
 *   written by `openssl rsa -pubout`), RSA of 2048 bits or more
 * @issuer: (nullable): required `iss`, or NULL to not check
 * @audience: (nullable): required `aud`, or NULL to not check
 * @leeway_s: allowed clock skew in seconds; negative means
 *   ARB_JWT_DEFAULT_LEEWAY_S; above ARB_JWT_MAX_LEEWAY_S is refused
 *
 * The key is parsed here, once; @key is not kept (an HS256 secret lives on
 * only inside OpenSSL's MAC context and is cleansed on free).
 *
 * Returns: (transfer full): a verifier, or NULL with ARB_JWT_ERROR_CONFIG.
 */
ArbJwtVerifier *arb_jwt_verifier_new (const char   *alg,
                                      const guint8 *key,
                                      gsize         key_len,
                                      const char   *issuer,
                                      const char   *audience,
                                      gint64        leeway_s,
                                      GError      **error);
void            arb_jwt_verifier_free (ArbJwtVerifier *verifier);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbJwtVerifier, arb_jwt_verifier_free)

/* "HS256" or "RS256" */
const char     *arb_jwt_verifier_get_alg (const ArbJwtVerifier *verifier);

/*
 * arb_jwt_verify:
 * @token: the bearer token, without "Bearer "
 * @now_s: the current unix time in seconds (g_get_real_time () / G_USEC_PER_SEC);
 *   a parameter so that tests need no clock
 * @out: (out) (transfer full) (optional): the principal on success
 *
 * A verifier never changes after arb_jwt_verifier_new(), so one may be used
 * from several threads at once.
 *
 * Returns: TRUE when the token is valid; FALSE with an ARB_JWT_ERROR whose
 *   message is safe to show to the client.
 */
gboolean        arb_jwt_verify (const ArbJwtVerifier *verifier,
                                const char           *token,
                                gint64                now_s,
                                ArbPrincipal        **out,
                                GError              **error);

/*
 * arb_jwt_mint_hs256:
 * @secret: (array length=secret_len): at least ARB_JWT_MIN_SECRET_LEN bytes
 * @subject: `sub`, with the same rules as verification
 * @admin: add `"roles": ["admin"]`
 * @ttl_s: lifetime, 1 to ARB_JWT_MAX_TTL_S seconds; `iat` is now (wall
 *   clock), `exp` is now + @ttl_s
 * @issuer: (nullable): `iss` when not NULL
 * @audience: (nullable): `aud` (a string) when not NULL
 *
 * For `arbiterd --mint-token` and tests; signed with libjwt.
 *
 * Returns: (transfer full): the compact token, or NULL with ARB_JWT_ERROR_CONFIG.
 */
char           *arb_jwt_mint_hs256 (const guint8 *secret,
                                    gsize         secret_len,
                                    const char   *subject,
                                    gboolean      admin,
                                    gint64        ttl_s,
                                    const char   *issuer,
                                    const char   *audience,
                                    GError      **error);

/*
 * Secret files (`[api] jwt_secret_file`).
 *
 * How a secret file is read: its bytes, minus any trailing "\n" / "\r\n", ARE
 * the HMAC key, used as they are; nothing is hex- or base64-decoded. This is
 * what python-jwt, jwt.io and most tools do with a string key, so
 * `jwt.encode(claims, open(path).read().rstrip("\r\n"), "HS256")` mints a token
 * arbiterd accepts. A generated file holds 64 lower-case hex digits (32 bytes
 * from getrandom(2)) and a newline: the key is those 64 ASCII characters,
 * 256 bits of entropy in a form that survives copy and paste.
 */

/*
 * arb_jwt_generate_secret_file:
 * @path: where to create the file; its directory must exist
 *
 * Creates @path with mode 0600, complete or not at all: the contents are
 * written and fsync'ed under a temporary name in the same directory, then
 * link(2)ed into place, so a crash never leaves a partial secret and an
 * existing file is never replaced (that would invalidate every token in
 * circulation): then it fails with G_FILE_ERROR_EXIST.
 *
 * Returns: TRUE when the file was created; FALSE with a G_FILE_ERROR.
 */
gboolean        arb_jwt_generate_secret_file (const char *path,
                                              GError    **error);

/*
 * arb_jwt_load_secret_file:
 * @path: a secret file, as described above
 *
 * Returns: (transfer full): the key bytes (cleansed when the last reference
 *   goes), or NULL with a G_FILE_ERROR (cannot read) or ARB_JWT_ERROR_CONFIG
 *   (shorter than ARB_JWT_MIN_SECRET_LEN or longer than ARB_JWT_MAX_SECRET_LEN
 *   once the trailing newline is gone).
 */
GBytes         *arb_jwt_load_secret_file (const char *path,
                                          GError    **error);

G_END_DECLS
