/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kalshi's request signatures, with OpenSSL 3's EVP interface. */

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "arb-kalshi-auth.h"

struct _ArbKalshiKey {
  EVP_PKEY *pkey; /* owned */
};

/* OpenSSL's reason for the last failure, without anything of the key */
static char *
openssl_reason (void)
{
  unsigned long e = ERR_get_error ();
  char buf[256];

  ERR_clear_error ();
  if (e == 0)
    return g_strdup ("no reason given");
  ERR_error_string_n (e, buf, sizeof buf);
  return g_strdup (buf);
}

ArbKalshiKey *
arb_kalshi_key_new (const char *pem, gsize length, GError **error)
{
  g_autofree char *why = NULL;
  ArbKalshiKey *key;
  EVP_PKEY *pkey;
  BIO *bio;
  int type;

  if (pem == NULL || length == 0 || length > G_MAXINT)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the private key is empty");
      return NULL;
    }
  ERR_clear_error ();
  bio = BIO_new_mem_buf (pem, (int) length);
  pkey = bio != NULL ? PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL) : NULL;
  BIO_free (bio);
  if (pkey == NULL)
    {
      why = openssl_reason ();
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "the private key is not a PEM RSA or Ed25519 private key (%s)", why);
      return NULL;
    }
  type = EVP_PKEY_get_base_id (pkey);
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519)
    {
      EVP_PKEY_free (pkey);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the private key is neither RSA nor Ed25519: Kalshi signs with RSA-PSS");
      return NULL;
    }
  if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits (pkey) < 2048)
    {
      int bits = EVP_PKEY_get_bits (pkey);
      EVP_PKEY_free (pkey);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the RSA key has %d bits; Kalshi's have 2048 or more",
                   bits);
      return NULL;
    }
  key = g_new0 (ArbKalshiKey, 1);
  key->pkey = pkey;
  return key;
}

void
arb_kalshi_key_free (ArbKalshiKey *key)
{
  if (key == NULL)
    return;
  EVP_PKEY_free (key->pkey);
  g_free (key);
}

char *
arb_kalshi_key_describe (ArbKalshiKey *key)
{
  if (EVP_PKEY_get_base_id (key->pkey) == EVP_PKEY_ED25519)
    return g_strdup ("Ed25519");
  return g_strdup_printf ("RSA %d bits", EVP_PKEY_get_bits (key->pkey));
}

char *
arb_kalshi_sign (ArbKalshiKey *key, const char *timestamp_ms, const char *method, const char *path, GError **error)
{
  g_autofree char *message = g_strconcat (timestamp_ms, method, path, NULL);
  g_autofree guchar *sig = NULL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_PKEY_CTX *pctx = NULL;
  gboolean rsa = EVP_PKEY_get_base_id (key->pkey) == EVP_PKEY_RSA;
  size_t sig_len = 0;
  gboolean ok;

  ERR_clear_error ();
  ok = ctx != NULL && EVP_DigestSignInit (ctx, &pctx, rsa ? EVP_sha256 () : NULL, NULL, key->pkey) == 1;
  if (ok && rsa)
    ok = EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md (pctx, EVP_sha256 ()) == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 32) == 1;
  ok = ok && EVP_DigestSign (ctx, NULL, &sig_len, (const guchar *) message, strlen (message)) == 1;
  if (ok)
    {
      sig = g_malloc (sig_len);
      ok = EVP_DigestSign (ctx, sig, &sig_len, (const guchar *) message, strlen (message)) == 1;
    }
  EVP_MD_CTX_free (ctx);
  if (!ok)
    {
      g_autofree char *why = openssl_reason ();
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot sign the request: %s", why);
      return NULL;
    }
  return g_base64_encode (sig, sig_len);
}
