/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "arb-jwt-private.h"
#include "arb-json-strict-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

G_DEFINE_QUARK (arb-jwt-error-quark, arb_jwt_error)

typedef enum { ALG_HS256, ALG_RS256 } Alg;

#define HS256_SIG_LEN 32
#define RSA_MIN_BITS  2048
#define RSA_MAX_BITS  16384

struct _ArbJwtVerifier {
  Alg          alg;
  EVP_MAC_CTX *hmac;          /* owned, HS256: keyed; each verify works on a copy */
  EVP_PKEY    *pkey;          /* owned, RS256: the public key, parsed once */
  EVP_PKEY_CTX *rsa;          /* owned, RS256: set up for PKCS#1 v1.5 with SHA-256; copied per verify */
  EVP_MD      *sha256;        /* owned, RS256: fetched once rather than per verify */
  gsize        sig_len;       /* the only signature length the key can produce */
  gsize        sig_b64_len;   /* the same, base64url without padding */
  char        *issuer;        /* owned, nullable */
  char        *audience;      /* owned, nullable */
  gint64       leeway_s;
};

/* OpenSSL keeps a per-thread error queue; whatever a failed call left there
 * must not surface later in someone else's ERR_get_error() */
static void
clear_openssl_errors (void)
{
  ERR_clear_error ();
}

static gboolean
refuse (GError **error, ArbJwtError code, const char *reason)
{
  g_set_error_literal (error, ARB_JWT_ERROR, code, reason);
  return FALSE;
}

static gboolean G_GNUC_PRINTF (3, 4)
refuse_printf (GError **error, ArbJwtError code, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_propagate_error (error, g_error_new_valist (ARB_JWT_ERROR, code, format, ap));
  va_end (ap);
  return FALSE;
}

/* ---- base64url (RFC 4648 §5), strict --------------------------------------------- */

static inline int
b64url_value (guchar c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

static gsize
b64url_encoded_len (gsize n)
{
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/* No padding, no whitespace, and the unused low bits of the last character
 * must be zero, so that every byte string has exactly one encoding and a token
 * cannot be altered without changing what was signed. @out must hold
 * len / 4 * 3 + 2 bytes. */
static gboolean
b64url_decode (const char *in, gsize len, guint8 *out, gsize *out_len)
{
  gsize o = 0, i = 0;

  if (len % 4 == 1)
    return FALSE;
  for (; i + 4 <= len; i += 4)
    {
      int a = b64url_value (in[i]), b = b64url_value (in[i + 1]);
      int c = b64url_value (in[i + 2]), d = b64url_value (in[i + 3]);
      if ((a | b | c | d) < 0)
        return FALSE;
      guint32 v = (guint32) a << 18 | (guint32) b << 12 | (guint32) c << 6 | (guint32) d;
      out[o++] = v >> 16;
      out[o++] = (v >> 8) & 0xff;
      out[o++] = v & 0xff;
    }
  if (len - i == 2)
    {
      int a = b64url_value (in[i]), b = b64url_value (in[i + 1]);
      if ((a | b) < 0 || (b & 0x0f) != 0)
        return FALSE;
      out[o++] = (guint8) (a << 2 | b >> 4);
    }
  else if (len - i == 3)
    {
      int a = b64url_value (in[i]), b = b64url_value (in[i + 1]), c = b64url_value (in[i + 2]);
      if ((a | b | c) < 0 || (c & 0x03) != 0)
        return FALSE;
      out[o++] = (guint8) (a << 2 | b >> 4);
      out[o++] = (guint8) ((b & 0x0f) << 4 | c >> 2);
    }
  *out_len = o;
  return TRUE;
}

/* ---- small helpers ----------------------------------------------------------------- */

/* what `sub` may be: it becomes the owner of assessments and shows up in logs */
static gboolean
subject_is_valid (const char *sub)
{
  gsize len = strlen (sub);

  if (len == 0 || len > ARB_JWT_MAX_SUBJECT_LEN || !g_utf8_validate (sub, len, NULL))
    return FALSE;
  for (const char *p = sub; *p; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

/* JSON text that json-glib would turn into a C string cut short at an
 * escaped NUL: refused rather than silently truncated */
static gboolean
json_text_is_acceptable (const guint8 *data, gsize len)
{
  if (!g_utf8_validate ((const char *) data, len, NULL))   /* also refuses raw NULs */
    return FALSE;
  return g_strstr_len ((const char *) data, len, "\\u0000") == NULL;
}

/* NULL when @data is not a JSON object, or (*twice set) when it names a
 * member twice: the token's issuer may have read the other one */
static JsonObject *
parse_object (JsonParser *parser, const guint8 *data, gsize len, char **twice)
{
  JsonNode *root;

  if (!json_text_is_acceptable (data, len))
    return NULL;
  if (!arb_json_load_strict (parser, (const char *) data, len, twice, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_node_get_object (root);
}

static const char *
member_string (JsonObject *obj, const char *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* RFC 7519 NumericDate: an integer or a finite number with a fraction. Returns
 * FALSE when present but not a number; *present says whether it was there. */
static gboolean
member_numeric_date (JsonObject *obj, const char *name, gboolean round_up,
                     gboolean *present, gint64 *out)
{
  JsonNode *node = json_object_get_member (obj, name);
  GType type;

  *present = node != NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    {
      *out = json_node_get_int (node);
      return TRUE;
    }
  if (type == G_TYPE_DOUBLE)
    {
      double d = json_node_get_double (node);
      /* ±2^53: beyond it a double no longer holds whole seconds */
      if (!isfinite (d) || fabs (d) > 9007199254740992.0)
        return FALSE;
      *out = (gint64) (round_up ? ceil (d) : floor (d));
      return TRUE;
    }
  return FALSE;
}

/* ---- verifier ---------------------------------------------------------------------- */

static gboolean
setup_hs256 (ArbJwtVerifier *v, const guint8 *key, gsize key_len, GError **error)
{
  OSSL_PARAM params[2];
  EVP_MAC *mac;

  if (key_len < ARB_JWT_MIN_SECRET_LEN)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "HS256 secret is %" G_GSIZE_FORMAT " bytes, at least %d are required",
                   key_len, ARB_JWT_MIN_SECRET_LEN);
      return FALSE;
    }
  if (key_len > ARB_JWT_MAX_SECRET_LEN)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "HS256 secret is %" G_GSIZE_FORMAT " bytes, at most %d are allowed",
                   key_len, ARB_JWT_MAX_SECRET_LEN);
      return FALSE;
    }
  /* a public key given as an HMAC secret is the setup the algorithm-confusion
   * attack needs; it is never what was meant */
  if (key_len >= 10 && memcmp (key, "-----BEGIN", 10) == 0)
    return refuse (error, ARB_JWT_ERROR_CONFIG,
                   "HS256 secret is a PEM key; for a public key set jwt_alg=RS256");

  mac = EVP_MAC_fetch (NULL, OSSL_MAC_NAME_HMAC, NULL);
  if (mac == NULL)
    {
      clear_openssl_errors ();
      return refuse (error, ARB_JWT_ERROR_CONFIG, "OpenSSL has no HMAC");
    }
  v->hmac = EVP_MAC_CTX_new (mac);
  EVP_MAC_free (mac);   /* the context holds its own reference */
  params[0] = OSSL_PARAM_construct_utf8_string (OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
  params[1] = OSSL_PARAM_construct_end ();
  if (v->hmac == NULL || !EVP_MAC_init (v->hmac, key, key_len, params))
    {
      clear_openssl_errors ();
      return refuse (error, ARB_JWT_ERROR_CONFIG, "cannot set up HMAC-SHA256");
    }
  v->sig_len = HS256_SIG_LEN;
  return TRUE;
}

static gboolean
setup_rs256 (ArbJwtVerifier *v, const guint8 *key, gsize key_len, GError **error)
{
  BIO *bio;
  int bits;

  if (key_len == 0 || key_len > INT_MAX)
    return refuse (error, ARB_JWT_ERROR_CONFIG, "RS256 public key is empty");
  bio = BIO_new_mem_buf (key, (int) key_len);
  if (bio == NULL)
    {
      clear_openssl_errors ();
      return refuse (error, ARB_JWT_ERROR_CONFIG, "out of memory reading the RS256 public key");
    }
  v->pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
  BIO_free (bio);
  clear_openssl_errors ();
  if (v->pkey == NULL)
    return refuse (error, ARB_JWT_ERROR_CONFIG,
                   "RS256 key is not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\", "
                   "as written by openssl rsa -pubout)");
  if (!EVP_PKEY_is_a (v->pkey, "RSA"))
    return refuse (error, ARB_JWT_ERROR_CONFIG, "RS256 public key is not an RSA key");
  bits = EVP_PKEY_get_bits (v->pkey);
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "RS256 public key has %d bits, %d to %d are accepted",
                   bits, RSA_MIN_BITS, RSA_MAX_BITS);
      return FALSE;
    }
  v->sig_len = (gsize) EVP_PKEY_get_size (v->pkey);
  /* looking up the algorithms is a good part of the cost of a verification
   * with OpenSSL 3, so it is done here once: a copy of a context that is all
   * set up costs less than setting one up */
  v->sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
  v->rsa = EVP_PKEY_CTX_new_from_pkey (NULL, v->pkey, NULL);
  if (v->sha256 == NULL || v->rsa == NULL
      || EVP_PKEY_verify_init (v->rsa) != 1
      || EVP_PKEY_CTX_set_rsa_padding (v->rsa, RSA_PKCS1_PADDING) != 1
      || EVP_PKEY_CTX_set_signature_md (v->rsa, v->sha256) != 1)
    {
      clear_openssl_errors ();
      return refuse (error, ARB_JWT_ERROR_CONFIG, "cannot set up RSA-SHA256 verification");
    }
  return TRUE;
}

ArbJwtVerifier *
arb_jwt_verifier_new (const char   *alg,
                      const guint8 *key,
                      gsize         key_len,
                      const char   *issuer,
                      const char   *audience,
                      gint64        leeway_s,
                      GError      **error)
{
  g_autoptr(ArbJwtVerifier) v = NULL;

  g_return_val_if_fail (alg != NULL, NULL);
  g_return_val_if_fail (key != NULL || key_len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (leeway_s < 0)
    leeway_s = ARB_JWT_DEFAULT_LEEWAY_S;
  if (leeway_s > ARB_JWT_MAX_LEEWAY_S)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "JWT leeway of %" G_GINT64_FORMAT " s is above the maximum of %d s",
                   leeway_s, ARB_JWT_MAX_LEEWAY_S);
      return NULL;
    }
  if (issuer != NULL && *issuer == '\0')
    {
      refuse (error, ARB_JWT_ERROR_CONFIG, "JWT issuer is empty; leave it unset to not check iss");
      return NULL;
    }
  if (audience != NULL && *audience == '\0')
    {
      refuse (error, ARB_JWT_ERROR_CONFIG, "JWT audience is empty; leave it unset to not check aud");
      return NULL;
    }

  v = g_new0 (ArbJwtVerifier, 1);
  v->leeway_s = leeway_s;
  v->issuer = g_strdup (issuer);
  v->audience = g_strdup (audience);

  /* exact spelling: "hs256" is not an algorithm name in RFC 7518 */
  if (g_strcmp0 (alg, "HS256") == 0)
    {
      v->alg = ALG_HS256;
      if (!setup_hs256 (v, key, key_len, error))
        return NULL;
    }
  else if (g_strcmp0 (alg, "RS256") == 0)
    {
      v->alg = ALG_RS256;
      if (!setup_rs256 (v, key, key_len, error))
        return NULL;
    }
  else
    {
      /* the value comes from the operator's own config, so echoing it is fine */
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "JWT algorithm \"%s\" is not supported (allowed: HS256, RS256)", alg);
      return NULL;
    }
  v->sig_b64_len = b64url_encoded_len (v->sig_len);
  return g_steal_pointer (&v);
}

void
arb_jwt_verifier_free (ArbJwtVerifier *v)
{
  if (v == NULL)
    return;
  EVP_MAC_CTX_free (v->hmac);   /* cleanses the key it holds */
  EVP_PKEY_CTX_free (v->rsa);
  EVP_PKEY_free (v->pkey);
  EVP_MD_free (v->sha256);
  g_free (v->issuer);
  g_free (v->audience);
  g_free (v);
}

const char *
arb_jwt_verifier_get_alg (const ArbJwtVerifier *v)
{
  g_return_val_if_fail (v != NULL, NULL);
  return v->alg == ALG_HS256 ? "HS256" : "RS256";
}

void
arb_principal_free (ArbPrincipal *principal)
{
  if (principal == NULL)
    return;
  g_free (principal->subject);
  g_strfreev (principal->roles);
  g_free (principal);
}

static gboolean
signature_is_valid (const ArbJwtVerifier *v, const char *input, gsize input_len,
                    const guint8 *sig, gsize sig_len)
{
  gboolean ok = FALSE;

  if (sig_len != v->sig_len)
    return FALSE;

  if (v->alg == ALG_HS256)
    {
      /* a copy of the keyed context: cheaper than keying a new one, and the
       * shared one is only read, so verification is thread-safe */
      EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup (v->hmac);
      guint8 mac[EVP_MAX_MD_SIZE];
      gsize mac_len = 0;

      if (ctx != NULL
          && EVP_MAC_update (ctx, (const guint8 *) input, input_len)
          && EVP_MAC_final (ctx, mac, &mac_len, sizeof mac)
          && mac_len == HS256_SIG_LEN)
        ok = CRYPTO_memcmp (mac, sig, HS256_SIG_LEN) == 0;
      EVP_MAC_CTX_free (ctx);
      OPENSSL_cleanse (mac, sizeof mac);
    }
  else
    {
      /* RSASSA-PKCS1-v1_5: the context checks the DigestInfo names SHA-256 */
      guint8 digest[EVP_MAX_MD_SIZE];
      unsigned int digest_len = 0;
      EVP_PKEY_CTX *ctx = NULL;

      ok = EVP_Digest (input, input_len, digest, &digest_len, v->sha256, NULL) == 1
           && (ctx = EVP_PKEY_CTX_dup (v->rsa)) != NULL
           && EVP_PKEY_verify (ctx, sig, sig_len, digest, digest_len) == 1;
      EVP_PKEY_CTX_free (ctx);
    }
  clear_openssl_errors ();
  return ok;
}

static gboolean
check_header (const ArbJwtVerifier *v, JsonObject *header, GError **error)
{
  const char *alg = member_string (header, "alg");

  if (alg == NULL)
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: header has no alg");
  if (g_ascii_strcasecmp (alg, "none") == 0)
    return refuse (error, ARB_JWT_ERROR_ALGORITHM, "algorithm none not allowed");
  if (strcmp (alg, arb_jwt_verifier_get_alg (v)) != 0)
    return refuse (error, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed");
  /* RFC 7515 §4.1.11: extensions we do not understand must be refused, and
   * we understand none (b64=false among them) */
  if (json_object_has_member (header, "crit"))
    return refuse (error, ARB_JWT_ERROR_ALGORITHM, "unsupported critical header");
  return TRUE;
}

static gboolean
check_audience (const ArbJwtVerifier *v, JsonObject *claims, GError **error)
{
  JsonNode *aud = json_object_get_member (claims, "aud");

  if (aud == NULL)
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "missing aud claim");
  if (json_node_get_value_type (aud) == G_TYPE_STRING)
    {
      if (strcmp (json_node_get_string (aud), v->audience) == 0)
        return TRUE;
      return refuse (error, ARB_JWT_ERROR_CLAIMS, "audience mismatch");
    }
  if (JSON_NODE_HOLDS_ARRAY (aud))
    {
      JsonArray *array = json_node_get_array (aud);
      guint n = json_array_get_length (array);
      gboolean found = FALSE;

      for (guint i = 0; i < n; i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          if (json_node_get_value_type (item) != G_TYPE_STRING)
            return refuse (error, ARB_JWT_ERROR_CLAIMS, "audience mismatch");
          if (strcmp (json_node_get_string (item), v->audience) == 0)
            found = TRUE;
        }
      if (found)
        return TRUE;
    }
  return refuse (error, ARB_JWT_ERROR_CLAIMS, "audience mismatch");
}

static char **
read_roles (JsonObject *claims, gboolean *admin, GError **error)
{
  JsonNode *node = json_object_get_member (claims, "roles");
  JsonArray *array;
  guint n;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  *admin = FALSE;
  if (node == NULL)
    return g_strv_builder_end (builder);
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid roles claim");
      return NULL;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      const char *role;

      if (json_node_get_value_type (item) != G_TYPE_STRING)
        {
          refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid roles claim");
          return NULL;
        }
      role = json_node_get_string (item);
      if (strcmp (role, "admin") == 0)
        *admin = TRUE;
      g_strv_builder_add (builder, role);
    }
  return g_strv_builder_end (builder);
}

static gboolean
check_claims (const ArbJwtVerifier *v, JsonObject *claims, gint64 now_s,
              ArbPrincipal **out, GError **error)
{
  gboolean present;
  gint64 exp = 0, nbf = 0, iat = 0;
  const char *sub;
  gboolean admin;
  g_auto(GStrv) roles = NULL;

  if (!member_numeric_date (claims, "exp", FALSE, &present, &exp))
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid exp claim");
  if (!present)
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "missing exp claim");
  if (exp <= now_s - v->leeway_s)
    return refuse (error, ARB_JWT_ERROR_EXPIRED, "token expired");

  if (!member_numeric_date (claims, "nbf", TRUE, &present, &nbf))
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid nbf claim");
  if (present && nbf > now_s + v->leeway_s)
    return refuse (error, ARB_JWT_ERROR_NOT_YET_VALID, "token not yet valid");

  if (!member_numeric_date (claims, "iat", TRUE, &present, &iat))
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid iat claim");
  if (present && iat > now_s + v->leeway_s)
    return refuse (error, ARB_JWT_ERROR_NOT_YET_VALID, "token issued in the future");

  if (v->issuer != NULL)
    {
      const char *iss = member_string (claims, "iss");
      if (!json_object_has_member (claims, "iss"))
        return refuse (error, ARB_JWT_ERROR_CLAIMS, "missing iss claim");
      if (iss == NULL || strcmp (iss, v->issuer) != 0)
        return refuse (error, ARB_JWT_ERROR_CLAIMS, "issuer mismatch");
    }
  if (v->audience != NULL && !check_audience (v, claims, error))
    return FALSE;

  if (!json_object_has_member (claims, "sub"))
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "missing sub claim");
  sub = member_string (claims, "sub");
  if (sub == NULL || !subject_is_valid (sub))
    return refuse (error, ARB_JWT_ERROR_CLAIMS, "invalid sub claim");

  roles = read_roles (claims, &admin, error);
  if (roles == NULL)
    return FALSE;

  if (out != NULL)
    {
      ArbPrincipal *p = g_new0 (ArbPrincipal, 1);
      p->subject = g_strdup (sub);
      p->admin = admin;
      p->expires_us = exp > G_MAXINT64 / G_USEC_PER_SEC ? G_MAXINT64 : exp * G_USEC_PER_SEC;
      p->roles = g_steal_pointer (&roles);
      *out = p;
    }
  return TRUE;
}

gboolean
arb_jwt_verify (const ArbJwtVerifier *v,
                const char           *token,
                gint64                now_s,
                ArbPrincipal        **out,
                GError              **error)
{
  const char *dot1, *dot2, *sig_b64;
  gsize len, head_len, body_len, sig_b64_len, n;
  g_autofree guint8 *buf = NULL;
  guint8 *head, *body, *sig;
  gsize head_n, body_n, sig_n;
  g_autoptr(JsonParser) head_parser = NULL;
  g_autoptr(JsonParser) body_parser = NULL;
  g_autofree char *twice = NULL;
  JsonObject *header, *claims;

  g_return_val_if_fail (v != NULL, FALSE);
  g_return_val_if_fail (token != NULL, FALSE);
  /* keeps now ± leeway far from overflow */
  g_return_val_if_fail (now_s >= 0 && now_s < G_MAXINT64 / 2, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (out != NULL)
    *out = NULL;

  len = strnlen (token, ARB_JWT_MAX_TOKEN_LEN + 1);
  if (len > ARB_JWT_MAX_TOKEN_LEN)
    return refuse (error, ARB_JWT_ERROR_TOO_LARGE, "token too large");

  dot1 = memchr (token, '.', len);
  dot2 = dot1 != NULL ? memchr (dot1 + 1, '.', len - (gsize) (dot1 + 1 - token)) : NULL;
  if (dot2 == NULL || memchr (dot2 + 1, '.', len - (gsize) (dot2 + 1 - token)) != NULL)
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: not three parts");
  head_len = (gsize) (dot1 - token);
  body_len = (gsize) (dot2 - dot1 - 1);
  sig_b64 = dot2 + 1;
  sig_b64_len = len - (gsize) (sig_b64 - token);
  if (head_len == 0 || body_len == 0)
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: empty part");

  /* one allocation for the three decoded parts; each needs at most
   * n / 4 * 3 + 2 bytes */
  n = head_len / 4 * 3 + 2 + body_len / 4 * 3 + 2 + sig_b64_len / 4 * 3 + 2;
  buf = g_malloc (n);
  head = buf;
  if (!b64url_decode (token, head_len, head, &head_n))
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in header");
  body = head + head_len / 4 * 3 + 2;
  if (!b64url_decode (dot1 + 1, body_len, body, &body_n))
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in payload");

  head_parser = json_parser_new_immutable ();
  header = parse_object (head_parser, head, head_n, &twice);
  if (header == NULL && twice != NULL)
    return refuse_printf (error, ARB_JWT_ERROR_MALFORMED, "malformed token: header names \"%s\" twice", twice);
  if (header == NULL)
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: header is not a JSON object");
  if (!check_header (v, header, error))
    return FALSE;

  sig = body + body_len / 4 * 3 + 2;
  if (sig_b64_len != v->sig_b64_len || !b64url_decode (sig_b64, sig_b64_len, sig, &sig_n))
    return refuse (error, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  if (!signature_is_valid (v, token, (gsize) (dot2 - token), sig, sig_n))
    return refuse (error, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");

  /* only now, with the signer known, is the payload worth parsing */
  body_parser = json_parser_new_immutable ();
  claims = parse_object (body_parser, body, body_n, &twice);
  if (claims == NULL && twice != NULL)
    return refuse_printf (error, ARB_JWT_ERROR_MALFORMED, "malformed token: payload names \"%s\" twice", twice);
  if (claims == NULL)
    return refuse (error, ARB_JWT_ERROR_MALFORMED, "malformed token: payload is not a JSON object");
  return check_claims (v, claims, now_s, out, error);
}

/* ---- minting ----------------------------------------------------------------------- */

static gboolean
jwt_call (int rc, const char *what, GError **error)
{
  if (rc == 0)
    return TRUE;
  g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
               "cannot mint token: %s: %s", what, g_strerror (rc));
  return FALSE;
}

typedef jwt_t ArbLibJwt;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbLibJwt, jwt_free)

char *
arb_jwt_mint_hs256 (const guint8 *secret,
                    gsize         secret_len,
                    const char   *subject,
                    gboolean      admin,
                    gint64        ttl_s,
                    const char   *issuer,
                    const char   *audience,
                    GError      **error)
{
  g_autoptr(ArbLibJwt) jwt = NULL;
  gint64 now_s = g_get_real_time () / G_USEC_PER_SEC;
  char *encoded;
  char *token;

  g_return_val_if_fail (secret != NULL, NULL);
  g_return_val_if_fail (subject != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (secret_len < ARB_JWT_MIN_SECRET_LEN || secret_len > ARB_JWT_MAX_SECRET_LEN)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "HS256 secret is %" G_GSIZE_FORMAT " bytes, %d to %d are required",
                   secret_len, ARB_JWT_MIN_SECRET_LEN, ARB_JWT_MAX_SECRET_LEN);
      return NULL;
    }
  if (!subject_is_valid (subject))
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "subject must be 1 to %d bytes of UTF-8 without control characters",
                   ARB_JWT_MAX_SUBJECT_LEN);
      return NULL;
    }
  if (ttl_s <= 0 || ttl_s > ARB_JWT_MAX_TTL_S)
    {
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "token lifetime of %" G_GINT64_FORMAT " s is outside 1 to %d s",
                   ttl_s, ARB_JWT_MAX_TTL_S);
      return NULL;
    }
  if ((issuer != NULL && *issuer == '\0') || (audience != NULL && *audience == '\0'))
    {
      refuse (error, ARB_JWT_ERROR_CONFIG, "cannot mint token: empty issuer or audience");
      return NULL;
    }

  if (!jwt_call (jwt_new (&jwt), "jwt_new", error)
      || !jwt_call (jwt_set_alg (jwt, JWT_ALG_HS256, secret, (int) secret_len), "set alg", error)
      || !jwt_call (jwt_add_grant (jwt, "sub", subject), "sub", error)
      || !jwt_call (jwt_add_grant_int (jwt, "iat", (long) now_s), "iat", error)
      || !jwt_call (jwt_add_grant_int (jwt, "exp", (long) (now_s + ttl_s)), "exp", error)
      || (issuer != NULL && !jwt_call (jwt_add_grant (jwt, "iss", issuer), "iss", error))
      || (audience != NULL && !jwt_call (jwt_add_grant (jwt, "aud", audience), "aud", error))
      || (admin && !jwt_call (jwt_add_grants_json (jwt, "{\"roles\":[\"admin\"]}"), "roles", error)))
    return NULL;

  encoded = jwt_encode_str (jwt);
  if (encoded == NULL)
    {
      jwt_call (errno != 0 ? errno : EINVAL, "encode", error);
      return NULL;
    }
  /* libjwt 1.10 allocates with malloc and has no free function of its own */
  token = g_strdup (encoded);
  free (encoded);
  return token;
}

/* ---- secret files ------------------------------------------------------------------ */

static gboolean
fill_random (guint8 *buf, gsize len, GError **error)
{
  gsize got = 0;

  while (got < len)
    {
      ssize_t n = getrandom (buf + got, len - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                       "getrandom: %s", g_strerror (saved));
          return FALSE;
        }
      got += (gsize) n;
    }
  return TRUE;
}

static gboolean
set_errno_error (GError **error, int saved, const char *what, const char *path)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
               "%s %s: %s", what, path, g_strerror (saved));
  return FALSE;
}

/* a temporary file that is closed and removed unless it was handed over */
typedef struct {
  int   fd;
  char *path;
} TmpFile;

static void
tmp_file_free (TmpFile *tmp)
{
  if (tmp->fd >= 0)
    close (tmp->fd);
  if (tmp->path != NULL)
    g_unlink (tmp->path);
  g_free (tmp->path);
  g_free (tmp);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TmpFile, tmp_file_free)

static gboolean
write_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

gboolean
arb_jwt_generate_secret_file (const char *path, GError **error)
{
  static const char hex[] = "0123456789abcdef";
  guint8 raw[32];
  char text[2 * sizeof raw + 1];
  g_autofree char *dir = NULL;
  g_autoptr(TmpFile) tmp = g_new0 (TmpFile, 1);
  gboolean written, closed;
  int saved, dir_fd;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  tmp->fd = -1;
  if (!fill_random (raw, sizeof raw, error))
    return FALSE;
  for (gsize i = 0; i < sizeof raw; i++)
    {
      text[2 * i] = hex[raw[i] >> 4];
      text[2 * i + 1] = hex[raw[i] & 0x0f];
    }
  text[sizeof text - 1] = '\n';
  OPENSSL_cleanse (raw, sizeof raw);

  dir = g_path_get_dirname (path);
  tmp->path = g_build_filename (dir, ".arb-jwt-secret-XXXXXX", NULL);
  tmp->fd = g_mkstemp_full (tmp->path, O_RDWR | O_CLOEXEC, 0600);
  if (tmp->fd < 0)
    {
      saved = errno;
      OPENSSL_cleanse (text, sizeof text);
      g_clear_pointer (&tmp->path, g_free);   /* nothing to remove */
      return set_errno_error (error, saved, "cannot create a temporary file in", dir);
    }
  /* 0600 whatever the umask left of it */
  errno = 0;
  written = fchmod (tmp->fd, 0600) == 0
            && write_all (tmp->fd, text, sizeof text)
            && fsync (tmp->fd) == 0;
  saved = errno != 0 ? errno : EIO;
  OPENSSL_cleanse (text, sizeof text);
  if (!written)
    return set_errno_error (error, saved, "cannot write", tmp->path);
  closed = close (tmp->fd) == 0;
  saved = errno;
  tmp->fd = -1;
  if (!closed)
    return set_errno_error (error, saved, "cannot write", tmp->path);

  /* link(2), unlike rename(2), refuses to replace an existing file */
  if (link (tmp->path, path) != 0)
    {
      saved = errno;
      if (saved == EEXIST)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                       "%s already exists; not replacing a JWT secret", path);
          return FALSE;
        }
      return set_errno_error (error, saved, "cannot create", path);
    }
  /* the temporary name goes in tmp_file_free; make the new entry durable */
  dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0)
    {
      g_unlink (tmp->path);
      g_clear_pointer (&tmp->path, g_free);
      fsync (dir_fd);
      close (dir_fd);
    }
  return TRUE;
}

typedef struct {
  gsize  len;
  guint8 data[];
} SecretBuf;

static void
secret_buf_free (gpointer data)
{
  SecretBuf *buf = data;
  OPENSSL_cleanse (buf->data, buf->len);
  g_free (buf);
}

GBytes *
arb_jwt_load_secret_file (const char *path, GError **error)
{
  char *contents = NULL;
  gsize len = 0, key_len;
  SecretBuf *buf;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  key_len = len;
  while (key_len > 0 && (contents[key_len - 1] == '\n' || contents[key_len - 1] == '\r'))
    key_len--;
  if (key_len < ARB_JWT_MIN_SECRET_LEN || key_len > ARB_JWT_MAX_SECRET_LEN)
    {
      OPENSSL_cleanse (contents, len);
      g_free (contents);
      g_set_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG,
                   "%s: JWT secret is %" G_GSIZE_FORMAT " bytes, %d to %d are required",
                   path, key_len, ARB_JWT_MIN_SECRET_LEN, ARB_JWT_MAX_SECRET_LEN);
      return NULL;
    }
  buf = g_malloc (sizeof (SecretBuf) + key_len);
  buf->len = key_len;
  memcpy (buf->data, contents, key_len);
  OPENSSL_cleanse (contents, len);
  g_free (contents);
  return g_bytes_new_with_free_func (buf->data, key_len, secret_buf_free, buf);
}
