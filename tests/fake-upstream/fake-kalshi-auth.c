/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kalshi's request signatures, verified with OpenSSL (see fake-kalshi-auth.h). */

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fake-kalshi-auth.h"

/* ../shared/fixtures/upstream/kalshi/error_401_*.json, compact */
#define BODY_BAD_SIGNATURE \
  "{\"error\":{\"code\":\"authentication_error\",\"message\":\"authentication_error\"," \
  "\"details\":\"INCORRECT_API_KEY_SIGNATURE\"}}"
#define BODY_UNKNOWN_KEY \
  "{\"error\":{\"code\":\"authentication_error\",\"message\":\"authentication_error\",\"details\":\"NOT_FOUND\"}}"
#define BODY_TIMESTAMP_EXPIRED \
  "{\"error\":{\"code\":\"header_timestamp_expired\",\"message\":\"header_timestamp_expired\"}}"

struct _FakeKalshiAuth {
  char     *key_id;     /* owned */
  EVP_PKEY *pkey;       /* owned */
  gboolean  allow_unsigned;
  GMutex    lock;
  guint     verified;
  guint     refused;
  char     *last_refusal; /* owned, nullable */
};

FakeKalshiAuth *
fake_kalshi_auth_new (const char *key_id, const char *public_pem, GError **error)
{
  FakeKalshiAuth *a;
  BIO *bio = BIO_new_mem_buf (public_pem, -1);
  EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL) : NULL;

  BIO_free (bio);
  if (pkey == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a PEM public key");
      return NULL;
    }
  a = g_new0 (FakeKalshiAuth, 1);
  a->key_id = g_strdup (key_id);
  a->pkey = pkey;
  g_mutex_init (&a->lock);
  return a;
}

void
fake_kalshi_auth_free (FakeKalshiAuth *a)
{
  if (a == NULL)
    return;
  EVP_PKEY_free (a->pkey);
  g_free (a->key_id);
  g_free (a->last_refusal);
  g_mutex_clear (&a->lock);
  g_free (a);
}

static gboolean
verify_signature (FakeKalshiAuth *a, const char *message, const char *sig_b64)
{
  gsize sig_len = 0;
  g_autofree guchar *sig = NULL;
  EVP_MD_CTX *ctx;
  EVP_PKEY_CTX *pctx = NULL;
  gboolean rsa = EVP_PKEY_get_base_id (a->pkey) == EVP_PKEY_RSA;
  gboolean ok;

  /* g_base64_decode skips what is not base64; insist on the alphabet */
  if (*sig_b64 == '\0'
      || strspn (sig_b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != strlen (sig_b64))
    return FALSE;
  sig = g_base64_decode (sig_b64, &sig_len);
  if (sig == NULL || sig_len == 0)
    return FALSE;
  ctx = EVP_MD_CTX_new ();
  ok = ctx != NULL && EVP_DigestVerifyInit (ctx, &pctx, rsa ? EVP_sha256 () : NULL, NULL, a->pkey) == 1;
  if (ok && rsa)
    ok = EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md (pctx, EVP_sha256 ()) == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 32) == 1;
  ok = ok && EVP_DigestVerify (ctx, sig, sig_len, (const guchar *) message, strlen (message)) == 1;
  EVP_MD_CTX_free (ctx);
  ERR_clear_error ();
  return ok;
}

static gboolean
refuse (FakeKalshiAuth *a, guint *status, char **body, const char *answer, const char *why)
{
  g_mutex_lock (&a->lock);
  a->refused++;
  g_free (a->last_refusal);
  a->last_refusal = g_strdup (why);
  g_mutex_unlock (&a->lock);
  *status = 401;
  *body = g_strdup (answer);
  return FALSE;
}

static gboolean
check (const char *method, const char *path, GHashTable *headers, gpointer data, guint *status, char **body)
{
  FakeKalshiAuth *a = data;
  const char *key = g_hash_table_lookup (headers, "kalshi-access-key");
  const char *ts = g_hash_table_lookup (headers, "kalshi-access-timestamp");
  const char *sig = g_hash_table_lookup (headers, "kalshi-access-signature");
  g_autofree char *message = NULL;
  gint64 ms, now_ms = g_get_real_time () / 1000;
  char *end = NULL;

  if (key == NULL && ts == NULL && sig == NULL && a->allow_unsigned)
    return TRUE;
  if (key == NULL || ts == NULL || sig == NULL)
    return refuse (a, status, body, BODY_BAD_SIGNATURE, "a KALSHI-ACCESS header is missing");
  if (!g_str_equal (key, a->key_id))
    return refuse (a, status, body, BODY_UNKNOWN_KEY, "an unknown KALSHI-ACCESS-KEY");
  ms = g_ascii_strtoll (ts, &end, 10);
  if (end == NULL || *end != '\0' || *ts == '\0' || ms < now_ms - 10000 || ms > now_ms + 10000)
    return refuse (a, status, body, BODY_TIMESTAMP_EXPIRED, "KALSHI-ACCESS-TIMESTAMP is not within 10 s of now");
  message = g_strconcat (ts, method, path, NULL);
  if (!verify_signature (a, message, sig))
    return refuse (a, status, body, BODY_BAD_SIGNATURE, "the signature does not verify");
  g_mutex_lock (&a->lock);
  a->verified++;
  g_mutex_unlock (&a->lock);
  return TRUE;
}

void
fake_kalshi_auth_install (FakeKalshiAuth *a, FakeUpstream *fu, const char *prefix)
{
  fake_upstream_set_auth (fu, prefix, check, a);
}

void
fake_kalshi_auth_allow_unsigned (FakeKalshiAuth *a, gboolean allow)
{
  g_mutex_lock (&a->lock);
  a->allow_unsigned = allow;
  g_mutex_unlock (&a->lock);
}

guint
fake_kalshi_auth_get_verified (FakeKalshiAuth *a)
{
  guint n;

  g_mutex_lock (&a->lock);
  n = a->verified;
  g_mutex_unlock (&a->lock);
  return n;
}

guint
fake_kalshi_auth_get_refused (FakeKalshiAuth *a)
{
  guint n;

  g_mutex_lock (&a->lock);
  n = a->refused;
  g_mutex_unlock (&a->lock);
  return n;
}

char *
fake_kalshi_auth_dup_last_refusal (FakeKalshiAuth *a)
{
  char *s;

  g_mutex_lock (&a->lock);
  s = g_strdup (a->last_refusal);
  g_mutex_unlock (&a->lock);
  return s;
}

static char *
pem_of (EVP_PKEY *pkey, gboolean private_half)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long n;
  char *out;

  if (private_half)
    PEM_write_bio_PrivateKey (bio, pkey, NULL, NULL, 0, NULL, NULL);
  else
    PEM_write_bio_PUBKEY (bio, pkey);
  n = BIO_get_mem_data (bio, &data);
  out = g_strndup (data, (gsize) n);
  BIO_free (bio);
  return out;
}

gboolean
fake_kalshi_make_key (guint bits, char **private_pem, char **public_pem, GError **error)
{
  EVP_PKEY *pkey = EVP_RSA_gen (bits);

  if (pkey == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make an RSA key");
      return FALSE;
    }
  *private_pem = pem_of (pkey, TRUE);
  *public_pem = pem_of (pkey, FALSE);
  EVP_PKEY_free (pkey);
  return TRUE;
}
