/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* JWT verification and minting (api/arb-jwt.c) against a third-party
 * implementation: every token a case verifies is made by Debian's python3-jwt
 * (tests/mint-jwt.py, run by /usr/bin/python3), or by hand in that script for
 * the forgeries python-jwt refuses to make; the tokens we mint are checked by
 * python-jwt in turn. Keys are made by the openssl command line tool. */

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "arb-jwt-private.h"

#define PYTHON "/usr/bin/python3"
#define OPENSSL "openssl"

/* python-jwt tokens carry fixed times, and verification takes "now" as a
 * parameter, so nothing here depends on the clock except the round trips of
 * tokens we mint (python-jwt decodes with the real time) */
#define NOW      G_GINT64_CONSTANT (1800000000)
#define ISSUER   "arbiter-test"
#define AUDIENCE "arbiter-api"

#define ISS    "\"iss\":\"" ISSUER "\""
#define AUD    "\"aud\":\"" AUDIENCE "\""
#define IAT    "\"iat\":1799999990"
#define EXP    "\"exp\":1800003600"
#define STD    ISS "," AUD "," IAT "," EXP
/* the same, as it appears inside a JSON string */
#define STD_ESCAPED "\\\"iss\\\":\\\"" ISSUER "\\\",\\\"aud\\\":\\\"" AUDIENCE "\\\",\\\"exp\\\":1800003600"
#define S16    "ssssssssssssssss"
#define S256   S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16 S16

#define HS_ENC(payload) \
  "{\"op\":\"encode\",\"alg\":\"HS256\",\"key\":\"hs\",\"payload\":{" payload "}}"
#define RS_ENC(payload) \
  "{\"op\":\"encode\",\"alg\":\"RS256\",\"key\":\"rs\",\"payload\":{" payload "}}"
#define HS_RAW(header, payload) \
  "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header\":" header ",\"payload\":{" payload "}}"

#define ACCEPTED (-1)

typedef struct {
  const char *name;
  const char *verifier;   /* "hs", "rs" (both with issuer and audience) or "open" (HS256, neither) */
  const char *request;    /* for mint-jwt.py; "key" names a key file below */
  gsize       pad;        /* bytes of a "pad" claim added to the payload */
  int         code;       /* ArbJwtError, or ACCEPTED */
  const char *expect;     /* the error message, or the subject when accepted */
  gboolean    admin;
} Case;

static const Case cases[] = {
  /* accepted, with the right principal */
  { "hs256/user", "hs", HS_ENC ("\"sub\":\"alice\"," STD), 0, ACCEPTED, "alice", FALSE },
  { "hs256/admin", "hs",
    HS_ENC ("\"sub\":\"root\",\"roles\":[\"trader\",\"admin\"]," ISS ",\"aud\":[\"other\",\"" AUDIENCE "\"]," IAT "," EXP),
    0, ACCEPTED, "root", TRUE },
  { "hs256/roles-without-admin", "hs", HS_ENC ("\"sub\":\"carol\",\"roles\":[\"trader\",\"Admin\"]," STD),
    0, ACCEPTED, "carol", FALSE },
  { "rs256/user", "rs", RS_ENC ("\"sub\":\"bob\"," STD), 0, ACCEPTED, "bob", FALSE },
  { "rs256/admin", "rs", RS_ENC ("\"sub\":\"ops\",\"roles\":[\"admin\"]," STD), 0, ACCEPTED, "ops", TRUE },
  { "hs256/nbf-within-leeway", "hs", HS_ENC ("\"sub\":\"alice\",\"nbf\":1800000020," STD),
    0, ACCEPTED, "alice", FALSE },
  { "hs256/exp-within-leeway", "hs",
    HS_ENC ("\"sub\":\"alice\"," ISS "," AUD "," IAT ",\"exp\":1799999971"), 0, ACCEPTED, "alice", FALSE },
  { "hs256/fractional-dates", "hs",
    HS_ENC ("\"sub\":\"alice\"," ISS "," AUD ",\"iat\":1799999990.25,\"nbf\":1799999990.5,\"exp\":1800003600.5"),
    0, ACCEPTED, "alice", FALSE },
  { "hs256/sub-256-bytes", "hs", HS_ENC ("\"sub\":\"" S256 "\"," STD), 0, ACCEPTED, S256, FALSE },
  { "hs256/unicode-sub", "hs", HS_ENC ("\"sub\":\"zo\\u00eb\"," STD), 0, ACCEPTED, "zo\xc3\xab", FALSE },
  { "hs256/just-under-8k", "hs", HS_ENC ("\"sub\":\"alice\"," STD), 5900, ACCEPTED, "alice", FALSE },
  { "open/no-iss-no-aud", "open", HS_ENC ("\"sub\":\"dave\"," EXP), 0, ACCEPTED, "dave", FALSE },
  { "open/aud-not-checked", "open", HS_ENC ("\"sub\":\"dave\",\"aud\":\"someone-else\"," EXP),
    0, ACCEPTED, "dave", FALSE },

  /* forged */
  { "rs256/wrong-key", "rs",
    "{\"op\":\"encode\",\"alg\":\"RS256\",\"key\":\"rs-other\",\"payload\":{\"sub\":\"bob\"," STD "}}",
    0, ARB_JWT_ERROR_SIGNATURE, "token signature invalid" },
  { "hs256/wrong-secret", "hs",
    "{\"op\":\"encode\",\"alg\":\"HS256\",\"key\":\"hs-other\",\"payload\":{\"sub\":\"alice\"," STD "}}",
    0, ARB_JWT_ERROR_SIGNATURE, "token signature invalid" },
  /* the classic: HMAC keyed with the public key PEM, as a verifier that takes
   * alg from the token would compute it (libjwt 1.10 accepts this) */
  { "rs256/alg-confusion-pem-as-hmac-secret", "rs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"rs-pub\",\"strip\":false,"
    "\"header\":{\"alg\":\"HS256\",\"typ\":\"JWT\"},\"payload\":{\"sub\":\"ops\",\"roles\":[\"admin\"]," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed" },
  { "rs256/alg-confusion-pem-stripped", "rs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"rs-pub\","
    "\"header\":{\"alg\":\"HS256\",\"typ\":\"JWT\"},\"payload\":{\"sub\":\"ops\"," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed" },
  { "hs256/alg-none", "hs",
    "{\"op\":\"raw\",\"alg\":\"none\",\"header\":{\"alg\":\"none\",\"typ\":\"JWT\"},\"payload\":{\"sub\":\"alice\"," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm none not allowed" },
  { "rs256/alg-none", "rs",
    "{\"op\":\"raw\",\"alg\":\"none\",\"header\":{\"alg\":\"none\"},\"payload\":{\"sub\":\"bob\"," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm none not allowed" },
  { "rs256/alg-None-capitalised", "rs",
    "{\"op\":\"raw\",\"alg\":\"none\",\"header\":{\"alg\":\"None\"},\"payload\":{\"sub\":\"bob\"," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm none not allowed" },
  { "hs256/rs256-token", "hs", RS_ENC ("\"sub\":\"alice\"," STD), 0, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed" },
  { "hs256/hs512-token", "hs",
    "{\"op\":\"encode\",\"alg\":\"HS512\",\"key\":\"hs\",\"payload\":{\"sub\":\"alice\"," STD "}}",
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed" },
  { "hs256/lower-case-alg", "hs", HS_RAW ("{\"alg\":\"hs256\"}", "\"sub\":\"alice\"," STD),
    0, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed" },
  { "hs256/crit-header", "hs", HS_RAW ("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "\"sub\":\"alice\"," STD),
    0, ARB_JWT_ERROR_ALGORITHM, "unsupported critical header" },
  { "hs256/no-alg", "hs", HS_RAW ("{\"typ\":\"JWT\"}", "\"sub\":\"alice\"," STD),
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: header has no alg" },

  /* time */
  { "hs256/expired", "hs", HS_ENC ("\"sub\":\"alice\"," ISS "," AUD ",\"iat\":1799990000,\"exp\":1799996400"),
    0, ARB_JWT_ERROR_EXPIRED, "token expired" },
  { "hs256/expired-just-beyond-leeway", "hs",
    HS_ENC ("\"sub\":\"alice\"," ISS "," AUD "," IAT ",\"exp\":1799999970"), 0, ARB_JWT_ERROR_EXPIRED, "token expired" },
  { "rs256/expired", "rs", RS_ENC ("\"sub\":\"bob\"," ISS "," AUD ",\"exp\":1700000000"),
    0, ARB_JWT_ERROR_EXPIRED, "token expired" },
  { "hs256/nbf-in-the-future", "hs", HS_ENC ("\"sub\":\"alice\",\"nbf\":1800003000," STD),
    0, ARB_JWT_ERROR_NOT_YET_VALID, "token not yet valid" },
  { "hs256/iat-in-the-future", "hs",
    HS_ENC ("\"sub\":\"alice\"," ISS "," AUD ",\"iat\":1800000031,\"exp\":1800003600"),
    0, ARB_JWT_ERROR_NOT_YET_VALID, "token issued in the future" },
  { "hs256/missing-exp", "hs", HS_ENC ("\"sub\":\"alice\"," ISS "," AUD "," IAT),
    0, ARB_JWT_ERROR_CLAIMS, "missing exp claim" },
  { "rs256/missing-exp", "rs", RS_ENC ("\"sub\":\"bob\"," ISS "," AUD),
    0, ARB_JWT_ERROR_CLAIMS, "missing exp claim" },
  { "hs256/exp-as-string", "hs", HS_RAW ("{\"alg\":\"HS256\"}", "\"sub\":\"alice\"," ISS "," AUD ",\"exp\":\"1800003600\""),
    0, ARB_JWT_ERROR_CLAIMS, "invalid exp claim" },
  { "hs256/nbf-as-bool", "hs", HS_RAW ("{\"alg\":\"HS256\"}", "\"sub\":\"alice\",\"nbf\":true," STD),
    0, ARB_JWT_ERROR_CLAIMS, "invalid nbf claim" },

  /* issuer and audience */
  { "hs256/wrong-audience", "hs", HS_ENC ("\"sub\":\"alice\"," ISS ",\"aud\":\"other-api\"," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "audience mismatch" },
  { "rs256/wrong-audience", "rs", RS_ENC ("\"sub\":\"bob\"," ISS ",\"aud\":\"other-api\"," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "audience mismatch" },
  { "hs256/wrong-audience-array", "hs", HS_ENC ("\"sub\":\"alice\"," ISS ",\"aud\":[\"a\",\"b\"]," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "audience mismatch" },
  { "hs256/audience-prefix", "hs", HS_ENC ("\"sub\":\"alice\"," ISS ",\"aud\":\"arbiter-ap\"," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "audience mismatch" },
  { "hs256/missing-audience", "hs", HS_ENC ("\"sub\":\"alice\"," ISS "," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "missing aud claim" },
  { "hs256/wrong-issuer", "hs", HS_ENC ("\"sub\":\"alice\",\"iss\":\"evil\"," AUD "," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "issuer mismatch" },
  { "rs256/wrong-issuer", "rs", RS_ENC ("\"sub\":\"bob\",\"iss\":\"evil\"," AUD "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "issuer mismatch" },
  { "hs256/missing-issuer", "hs", HS_ENC ("\"sub\":\"alice\"," AUD "," IAT "," EXP),
    0, ARB_JWT_ERROR_CLAIMS, "missing iss claim" },

  /* subject and roles */
  { "hs256/missing-sub", "hs", HS_ENC (STD), 0, ARB_JWT_ERROR_CLAIMS, "missing sub claim" },
  { "rs256/missing-sub", "rs", RS_ENC (STD), 0, ARB_JWT_ERROR_CLAIMS, "missing sub claim" },
  { "hs256/empty-sub", "hs", HS_ENC ("\"sub\":\"\"," STD), 0, ARB_JWT_ERROR_CLAIMS, "invalid sub claim" },
  { "hs256/sub-257-bytes", "hs", HS_ENC ("\"sub\":\"x" S256 "\"," STD), 0, ARB_JWT_ERROR_CLAIMS, "invalid sub claim" },
  { "hs256/sub-number", "hs", HS_RAW ("{\"alg\":\"HS256\"}", "\"sub\":42," STD), 0, ARB_JWT_ERROR_CLAIMS, "invalid sub claim" },
  { "hs256/sub-control-char", "hs", HS_ENC ("\"sub\":\"ali\\nce\"," STD), 0, ARB_JWT_ERROR_CLAIMS, "invalid sub claim" },
  { "hs256/roles-not-array", "hs", HS_RAW ("{\"alg\":\"HS256\"}", "\"sub\":\"alice\",\"roles\":\"admin\"," STD),
    0, ARB_JWT_ERROR_CLAIMS, "invalid roles claim" },
  { "hs256/roles-not-strings", "hs", HS_RAW ("{\"alg\":\"HS256\"}", "\"sub\":\"alice\",\"roles\":[\"admin\",1]," STD),
    0, ARB_JWT_ERROR_CLAIMS, "invalid roles claim" },

  /* malformed, properly signed */
  { "hs256/payload-json-garbage", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header\":{\"alg\":\"HS256\"},\"payload_raw\":\"{sub: alice\"}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: payload is not a JSON object" },
  { "hs256/payload-json-array", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header\":{\"alg\":\"HS256\"},\"payload_raw\":\"[\\\"alice\\\"]\"}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: payload is not a JSON object" },
  /* json-glib would cut "alice\u0000admin" short at the NUL */
  { "hs256/payload-escaped-nul", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header\":{\"alg\":\"HS256\"},"
    "\"payload_raw\":\"{\\\"sub\\\":\\\"alice\\\\u0000admin\\\"," STD_ESCAPED "}\"}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: payload is not a JSON object" },
  { "hs256/header-json-garbage", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header_raw\":\"{alg:HS256\",\"payload\":{\"sub\":\"alice\"," STD "}}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: header is not a JSON object" },
  /* a member named twice: the issuer may have read the other one (json-glib
   * keeps the last) */
  { "hs256/payload-duplicate-roles", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header\":{\"alg\":\"HS256\"},"
    "\"payload_raw\":\"{\\\"sub\\\":\\\"bob\\\",\\\"roles\\\":[\\\"trader\\\"],\\\"roles\\\":[\\\"admin\\\"]," STD_ESCAPED "}\"}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: payload names \"roles\" twice" },
  { "hs256/header-duplicate-alg", "hs",
    "{\"op\":\"raw\",\"alg\":\"HS256\",\"key\":\"hs\",\"header_raw\":\"{\\\"alg\\\":\\\"none\\\",\\\"alg\\\":\\\"HS256\\\"}\","
    "\"payload\":{\"sub\":\"alice\"," STD "}}",
    0, ARB_JWT_ERROR_MALFORMED, "malformed token: header names \"alg\" twice" },
  { "hs256/over-8k", "hs", HS_ENC ("\"sub\":\"alice\"," STD), 6300, ARB_JWT_ERROR_TOO_LARGE, "token too large" },
};

typedef struct {
  char           *dir;
  char           *key_files[6];   /* by key_names */
  GBytes         *secret;
  ArbJwtVerifier *hs, *rs, *open;
  GHashTable     *answers;        /* case name → JsonObject from mint-jwt.py */
  JsonNode       *answers_root;
  char           *minted_admin;   /* by arb_jwt_mint_hs256 */
  char           *minted_user;
} Env;

static const char *const key_names[] = { "hs", "hs-other", "rs", "rs-pub", "rs-other", "rs-small-pub" };
static Env env;

/* ---- setup ---------------------------------------------------------------------------- */

static const char *
key_file (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (key_names); i++)
    if (strcmp (key_names[i], name) == 0)
      return env.key_files[i];
  g_test_message ("no key file \"%s\"", name);
  g_assert_not_reached ();
}

static char *
run (const char *const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                     &out, &err, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("%s: %s\n%s", argv[0], error->message, err != NULL ? err : "");
      g_assert_no_error (error);
    }
  return g_steal_pointer (&out);
}

static void
openssl_key_pair (const char *priv, const char *pub, const char *bits)
{
  const char *genrsa[] = { OPENSSL, "genrsa", "-out", priv, bits, NULL };
  const char *pubout[] = { OPENSSL, "rsa", "-in", priv, "-pubout", "-out", pub, NULL };

  g_free (run (genrsa));
  g_free (run (pubout));
}

static char *
in_dir (const char *name)
{
  return g_build_filename (env.dir, name, NULL);
}

static ArbJwtVerifier *
verifier_from_file (const char *alg, const char *path, const char *iss, const char *aud)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = NULL;
  gsize len = 0;
  ArbJwtVerifier *v;

  if (strcmp (alg, "HS256") == 0)
    v = arb_jwt_verifier_new (alg, g_bytes_get_data (env.secret, NULL), g_bytes_get_size (env.secret),
                              iss, aud, -1, &error);
  else
    {
      g_assert_true (g_file_get_contents (path, &pem, &len, NULL));
      v = arb_jwt_verifier_new (alg, (const guint8 *) pem, len, iss, aud, -1, &error);
    }
  g_assert_no_error (error);
  g_assert_nonnull (v);
  return v;
}

static JsonNode *
case_request (const Case *c)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (c->request, &error);
  JsonObject *obj;

  if (error != NULL)
    g_printerr ("case %s: bad request JSON: %s\n", c->name, c->request);
  g_assert_no_error (error);
  obj = json_node_get_object (node);
  if (json_object_has_member (obj, "key"))
    {
      json_object_set_string_member (obj, "key_file", key_file (json_object_get_string_member (obj, "key")));
      json_object_remove_member (obj, "key");
    }
  if (c->pad > 0)
    {
      g_autofree char *pad = g_strnfill (c->pad, 'p');
      json_object_set_string_member (json_object_get_object_member (obj, "payload"), "pad", pad);
    }
  return node;
}

static JsonNode *
decode_request (const char *token, const char *audience, const char *issuer)
{
  JsonObject *obj = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (obj, "op", "decode");
  json_object_set_string_member (obj, "alg", "HS256");
  json_object_set_string_member (obj, "key_file", key_file ("hs"));
  json_object_set_string_member (obj, "token", token);
  if (audience != NULL)
    json_object_set_string_member (obj, "audience", audience);
  if (issuer != NULL)
    json_object_set_string_member (obj, "issuer", issuer);
  json_node_take_object (node, obj);
  return node;
}

/* every token in one run of python: its start-up is most of the cost */
static void
mint_with_python (void)
{
  g_autoptr(JsonArray) requests = json_array_new ();
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
  g_autoptr(GError) error = NULL;
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "mint-jwt.py", NULL);
  g_autofree char *json = NULL;
  g_autofree char *out = NULL;
  JsonArray *answers;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    json_array_add_element (requests, case_request (&cases[i]));
  json_array_add_element (requests, decode_request (env.minted_admin, AUDIENCE, ISSUER));
  json_array_add_element (requests, decode_request (env.minted_user, AUDIENCE, ISSUER));
  json_array_add_element (requests, decode_request (env.minted_admin, "someone-else", ISSUER));
  json_node_set_array (root, requests);
  json = json_to_string (root, FALSE);

  {
    /* -I: Debian's interpreter with Debian's modules, whatever PYTHONPATH says */
    const char *argv[] = { PYTHON, "-I", script, json, NULL };
    out = run (argv);
  }
  env.answers_root = json_from_string (out, &error);
  g_assert_no_error (error);
  answers = json_node_get_array (env.answers_root);
  g_assert_cmpuint (json_array_get_length (answers), ==, G_N_ELEMENTS (cases) + 3);
  env.answers = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_hash_table_insert (env.answers, (gpointer) cases[i].name, json_array_get_object_element (answers, i));
  g_hash_table_insert (env.answers, "decode/admin", json_array_get_object_element (answers, G_N_ELEMENTS (cases)));
  g_hash_table_insert (env.answers, "decode/user", json_array_get_object_element (answers, G_N_ELEMENTS (cases) + 1));
  g_hash_table_insert (env.answers, "decode/wrong-audience",
                       json_array_get_object_element (answers, G_N_ELEMENTS (cases) + 2));
}

static void
env_setup (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *rs_priv = NULL, *rs_other_priv = NULL, *rs_other_pub = NULL, *rs_small_priv = NULL;

  env.dir = g_dir_make_tmp ("arb-test-jwt-XXXXXX", &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (key_names); i++)
    env.key_files[i] = in_dir (key_names[i]);

  g_assert_true (arb_jwt_generate_secret_file (key_file ("hs"), &error));
  g_assert_no_error (error);
  g_assert_true (arb_jwt_generate_secret_file (key_file ("hs-other"), &error));
  g_assert_no_error (error);
  env.secret = arb_jwt_load_secret_file (key_file ("hs"), &error);
  g_assert_no_error (error);

  rs_priv = in_dir ("rs-priv");
  rs_other_priv = in_dir ("rs-other-priv");
  rs_other_pub = in_dir ("rs-other-pub");
  rs_small_priv = in_dir ("rs-small-priv");
  openssl_key_pair (rs_priv, key_file ("rs-pub"), "2048");
  openssl_key_pair (rs_other_priv, rs_other_pub, "2048");
  openssl_key_pair (rs_small_priv, key_file ("rs-small-pub"), "1024");
  /* python-jwt signs with the private keys */
  g_assert_cmpint (g_rename (rs_priv, key_file ("rs")), ==, 0);
  g_assert_cmpint (g_rename (rs_other_priv, key_file ("rs-other")), ==, 0);

  env.hs = verifier_from_file ("HS256", NULL, ISSUER, AUDIENCE);
  env.rs = verifier_from_file ("RS256", key_file ("rs-pub"), ISSUER, AUDIENCE);
  env.open = verifier_from_file ("HS256", NULL, NULL, NULL);

  env.minted_admin = arb_jwt_mint_hs256 (g_bytes_get_data (env.secret, NULL), g_bytes_get_size (env.secret),
                                         "minted-admin", TRUE, 600, ISSUER, AUDIENCE, &error);
  g_assert_no_error (error);
  env.minted_user = arb_jwt_mint_hs256 (g_bytes_get_data (env.secret, NULL), g_bytes_get_size (env.secret),
                                        "minted-user", FALSE, 600, ISSUER, AUDIENCE, &error);
  g_assert_no_error (error);

  mint_with_python ();
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);
        remove_tree (child);
      }
  g_remove (path);
}

static void
env_teardown (void)
{
  remove_tree (env.dir);
  g_free (env.dir);
  for (guint i = 0; i < G_N_ELEMENTS (key_names); i++)
    g_free (env.key_files[i]);
  g_bytes_unref (env.secret);
  arb_jwt_verifier_free (env.hs);
  arb_jwt_verifier_free (env.rs);
  arb_jwt_verifier_free (env.open);
  g_hash_table_unref (env.answers);
  json_node_unref (env.answers_root);
  g_free (env.minted_admin);
  g_free (env.minted_user);
}

static const ArbJwtVerifier *
verifier (const char *name)
{
  if (strcmp (name, "hs") == 0)
    return env.hs;
  if (strcmp (name, "rs") == 0)
    return env.rs;
  return env.open;
}

static const char *
python_token (const char *name)
{
  JsonObject *answer = g_hash_table_lookup (env.answers, name);

  g_assert_nonnull (answer);
  return json_object_get_string_member (answer, "token");
}

/* ---- third-party tokens --------------------------------------------------------------- */

static void
test_case (gconstpointer data)
{
  const Case *c = data;
  const char *token = python_token (c->name);
  g_autoptr(ArbPrincipal) principal = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  g_assert_nonnull (token);
  if (c->pad > 0)
    {
      /* the size cases must straddle the limit, or they test nothing */
      if (c->code == ACCEPTED)
        {
          g_assert_cmpuint (strlen (token), >, ARB_JWT_MAX_TOKEN_LEN - 300);
          g_assert_cmpuint (strlen (token), <=, ARB_JWT_MAX_TOKEN_LEN);
        }
      else
        g_assert_cmpuint (strlen (token), >, ARB_JWT_MAX_TOKEN_LEN);
    }
  ok = arb_jwt_verify (verifier (c->verifier), token, NOW, &principal, &error);
  if (c->code == ACCEPTED)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_nonnull (principal);
      g_assert_cmpstr (principal->subject, ==, c->expect);
      g_assert_cmpint (principal->admin, ==, c->admin);
      g_assert_nonnull (principal->roles);
      g_assert_cmpint (g_strv_contains ((const char *const *) principal->roles, "admin"), ==, c->admin);
      g_assert_cmpint (principal->expires_us, >, (NOW - 30) * G_USEC_PER_SEC);
    }
  else
    {
      g_assert_error (error, ARB_JWT_ERROR, c->code);
      g_assert_cmpstr (error->message, ==, c->expect);
      g_assert_false (ok);
      g_assert_null (principal);
    }
}

static void
test_principal_details (void)
{
  g_autoptr(ArbPrincipal) p = NULL;
  g_autoptr(GError) error = NULL;
  const char *const roles[] = { "trader", "admin", NULL };

  g_assert_true (arb_jwt_verify (env.hs, python_token ("hs256/admin"), NOW, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpint (p->expires_us, ==, G_GINT64_CONSTANT (1800003600) * G_USEC_PER_SEC);
  g_assert_cmpstrv (p->roles, roles);
  g_clear_pointer (&p, arb_principal_free);

  /* no roles claim: an empty list, not NULL */
  g_assert_true (arb_jwt_verify (env.hs, python_token ("hs256/user"), NOW, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (p->roles), ==, 0);
  g_clear_pointer (&p, arb_principal_free);

  /* a fractional exp is rounded down */
  g_assert_true (arb_jwt_verify (env.hs, python_token ("hs256/fractional-dates"), NOW, &p, &error));
  g_assert_cmpint (p->expires_us, ==, G_GINT64_CONSTANT (1800003600) * G_USEC_PER_SEC);

  /* @out is optional */
  g_assert_true (arb_jwt_verify (env.rs, python_token ("rs256/user"), NOW, NULL, &error));
  g_assert_no_error (error);
}

/* the leeway boundaries, on one token: exp 1800003600, iat 1799999990 */
static void
test_time_boundaries (void)
{
  const char *token = python_token ("hs256/user");
  g_autoptr(GError) error = NULL;

  g_assert_true (arb_jwt_verify (env.hs, token, 1800003600 + 29, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (arb_jwt_verify (env.hs, token, 1800003600 + 30, NULL, &error));
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_EXPIRED);
  g_clear_error (&error);
  g_assert_true (arb_jwt_verify (env.hs, token, 1799999990 - 30, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (arb_jwt_verify (env.hs, token, 1799999990 - 31, NULL, &error));
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_NOT_YET_VALID);
  g_assert_cmpstr (error->message, ==, "token issued in the future");
}

/* ---- malformed tokens, made here ------------------------------------------------------ */

static char *
b64url (const char *data, gsize len)
{
  g_autofree char *b64 = g_base64_encode ((const guchar *) data, len);

  g_strdelimit (b64, "+", '-');
  g_strdelimit (b64, "/", '_');
  g_strdelimit (b64, "=", '\0');
  return g_strdup (b64);
}

static void
assert_refused (const ArbJwtVerifier *v, const char *token, ArbJwtError code, const char *reason)
{
  g_autoptr(ArbPrincipal) principal = NULL;
  g_autoptr(GError) error = NULL;

  if (arb_jwt_verify (v, token, NOW, &principal, &error))
    g_test_message ("accepted: %.80s", token);
  g_assert_error (error, ARB_JWT_ERROR, (gint) code);
  g_assert_cmpstr (error->message, ==, reason);
  g_assert_null (principal);
}

static void
test_malformed (void)
{
  const char *good = python_token ("hs256/user");
  g_auto(GStrv) parts = g_strsplit (good, ".", -1);
  g_autofree char *huge = g_strnfill (ARB_JWT_MAX_TOKEN_LEN + 1, 'a');
  g_autofree char *padded = g_strdup_printf ("%s=.%s.%s", parts[0], parts[1], parts[2]);
  g_autofree char *bad_char = g_strdup_printf ("%s.%s!.%s", parts[0], parts[1], parts[2]);
  g_autofree char *space = g_strdup_printf ("%s.%s .%s", parts[0], parts[1], parts[2]);
  g_autofree char *array_header_b64 = b64url ("[\"HS256\"]", 9);
  g_autofree char *array_header = g_strdup_printf ("%s.%s.%s", array_header_b64, parts[1], parts[2]);
  g_autofree char *bad_utf8_b64 = b64url ("{\"alg\":\"HS256\xff\"}", 17);
  g_autofree char *bad_utf8 = g_strdup_printf ("%s.%s.%s", bad_utf8_b64, parts[1], parts[2]);
  g_autofree char *four = g_strdup_printf ("%s.x", good);

  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  assert_refused (env.hs, "", ARB_JWT_ERROR_MALFORMED, "malformed token: not three parts");
  assert_refused (env.hs, "abc", ARB_JWT_ERROR_MALFORMED, "malformed token: not three parts");
  assert_refused (env.hs, "a.b", ARB_JWT_ERROR_MALFORMED, "malformed token: not three parts");
  assert_refused (env.hs, four, ARB_JWT_ERROR_MALFORMED, "malformed token: not three parts");
  assert_refused (env.hs, "..", ARB_JWT_ERROR_MALFORMED, "malformed token: empty part");
  assert_refused (env.hs, "!!!!.e30.sig", ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in header");
  assert_refused (env.hs, padded, ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in header");
  assert_refused (env.hs, bad_char, ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in payload");
  assert_refused (env.hs, space, ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in payload");
  /* a length no base64 text can have */
  assert_refused (env.hs, "eyJhb.e30.sig", ARB_JWT_ERROR_MALFORMED, "malformed token: bad base64 in header");
  assert_refused (env.hs, array_header, ARB_JWT_ERROR_MALFORMED, "malformed token: header is not a JSON object");
  assert_refused (env.hs, bad_utf8, ARB_JWT_ERROR_MALFORMED, "malformed token: header is not a JSON object");
  assert_refused (env.hs, huge, ARB_JWT_ERROR_TOO_LARGE, "token too large");
}

static void
test_tampered (void)
{
  const char *good = python_token ("rs256/user");
  g_auto(GStrv) parts = g_strsplit (good, ".", -1);
  const char *admin_claims = "{\"sub\":\"bob\",\"roles\":[\"admin\"]," STD "}";
  g_autofree char *admin_b64 = b64url (admin_claims, strlen (admin_claims));
  g_autofree char *escalated = g_strdup_printf ("%s.%s.%s", parts[0], admin_b64, parts[2]);
  g_autofree char *flipped = g_strdup (good);
  g_autofree char *no_sig = g_strdup_printf ("%s.%s.", parts[0], parts[1]);
  g_autofree char *short_sig = g_strdup_printf ("%s.%s.%.40s", parts[0], parts[1], parts[2]);
  g_autofree char *hs_noncanonical = g_strdup (python_token ("hs256/user"));
  char *last;

  /* the payload of another token under the original signature */
  assert_refused (env.rs, escalated, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  /* one bit of the signature */
  last = flipped + strlen (flipped) - 10;
  *last = *last == 'A' ? 'B' : 'A';
  assert_refused (env.rs, flipped, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  assert_refused (env.rs, no_sig, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  assert_refused (env.rs, short_sig, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  /* 32 bytes take 43 characters whose last 2 bits are unused: setting them
   * must not give a second valid spelling of the same token */
  last = hs_noncanonical + strlen (hs_noncanonical) - 1;
  g_assert_true (strchr ("AEIMQUYcgkosw048", *last) != NULL);
  *last = *last + 1;
  assert_refused (env.hs, hs_noncanonical, ARB_JWT_ERROR_SIGNATURE, "token signature invalid");
  /* an RS256 signature presented to the HS256 verifier is refused by alg first */
  assert_refused (env.hs, good, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed");
}

/* ---- our tokens, checked by python-jwt and by us -------------------------------------- */

static void
test_minted_by_us (void)
{
  JsonObject *admin = g_hash_table_lookup (env.answers, "decode/admin");
  JsonObject *user = g_hash_table_lookup (env.answers, "decode/user");
  JsonObject *wrong = g_hash_table_lookup (env.answers, "decode/wrong-audience");
  JsonObject *claims;
  JsonArray *roles;
  gint64 now_s = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr(ArbPrincipal) p = NULL;
  g_autoptr(GError) error = NULL;

  if (json_object_has_member (admin, "error"))
    g_test_message ("python-jwt: %s", json_object_get_string_member (admin, "error"));
  g_assert_true (json_object_has_member (admin, "claims"));
  claims = json_object_get_object_member (admin, "claims");
  g_assert_cmpstr (json_object_get_string_member (claims, "sub"), ==, "minted-admin");
  g_assert_cmpstr (json_object_get_string_member (claims, "iss"), ==, ISSUER);
  g_assert_cmpstr (json_object_get_string_member (claims, "aud"), ==, AUDIENCE);
  g_assert_cmpint (json_object_get_int_member (claims, "exp") - json_object_get_int_member (claims, "iat"), ==, 600);
  roles = json_object_get_array_member (claims, "roles");
  g_assert_cmpuint (json_array_get_length (roles), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (roles, 0), ==, "admin");

  g_assert_true (json_object_has_member (user, "claims"));
  claims = json_object_get_object_member (user, "claims");
  g_assert_cmpstr (json_object_get_string_member (claims, "sub"), ==, "minted-user");
  g_assert_false (json_object_has_member (claims, "roles"));

  /* python-jwt does check what it was asked to */
  g_assert_true (g_str_has_prefix (json_object_get_string_member (wrong, "error"), "InvalidAudienceError"));

  g_assert_true (arb_jwt_verify (env.hs, env.minted_admin, now_s, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (p->subject, ==, "minted-admin");
  g_assert_true (p->admin);
  g_clear_pointer (&p, arb_principal_free);
  g_assert_true (arb_jwt_verify (env.hs, env.minted_user, now_s, &p, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (p->subject, ==, "minted-user");
  g_assert_false (p->admin);
  /* and our token is as pinned as theirs */
  assert_refused (env.rs, env.minted_admin, ARB_JWT_ERROR_ALGORITHM, "algorithm not allowed");
}

static void
assert_mint_refused (const guint8 *secret, gsize len, const char *sub, gint64 ttl, const char *iss)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *token = arb_jwt_mint_hs256 (secret, len, sub, FALSE, ttl, iss, NULL, &error);

  g_assert_null (token);
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG);
}

static void
test_mint_refuses (void)
{
  const guint8 *secret = g_bytes_get_data (env.secret, NULL);
  gsize len = g_bytes_get_size (env.secret);
  g_autofree char *long_sub = g_strnfill (ARB_JWT_MAX_SUBJECT_LEN + 1, 'x');

  assert_mint_refused (secret, ARB_JWT_MIN_SECRET_LEN - 1, "alice", 60, NULL);
  assert_mint_refused (secret, len, "", 60, NULL);
  assert_mint_refused (secret, len, long_sub, 60, NULL);
  assert_mint_refused (secret, len, "ali\x01" "ce", 60, NULL);
  assert_mint_refused (secret, len, "alice", 0, NULL);
  assert_mint_refused (secret, len, "alice", -5, NULL);
  assert_mint_refused (secret, len, "alice", ARB_JWT_MAX_TTL_S + 1, NULL);
  assert_mint_refused (secret, len, "alice", 60, "");
}

/* ---- verifier configuration ----------------------------------------------------------- */

static void
assert_config_refused (const char *alg, const guint8 *key, gsize len, gint64 leeway, const char *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbJwtVerifier) v = arb_jwt_verifier_new (alg, key, len, NULL, NULL, leeway, &error);

  g_assert_null (v);
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG);
  if (strstr (error->message, needle) == NULL)
    g_test_message ("\"%s\" not in \"%s\"", needle, error->message);
  g_assert_nonnull (strstr (error->message, needle));
}

static char *
read_file (const char *path, gsize *len)
{
  char *data = NULL;

  g_assert_true (g_file_get_contents (path, &data, len, NULL));
  return data;
}

static void
test_verifier_config (void)
{
  const guint8 *secret = g_bytes_get_data (env.secret, NULL);
  gsize secret_len = g_bytes_get_size (env.secret);
  gsize pub_len, small_len, priv_len;
  g_autofree char *pub = read_file (key_file ("rs-pub"), &pub_len);
  g_autofree char *small = read_file (key_file ("rs-small-pub"), &small_len);
  g_autofree char *priv = read_file (key_file ("rs"), &priv_len);
  g_autoptr(GError) error = NULL;
  g_autoptr(ArbJwtVerifier) v = NULL;
  const guint8 *short_secret = (const guint8 *) "0123456789abcdef0123456789abcde";

  assert_config_refused ("hs256", secret, secret_len, -1, "not supported");
  assert_config_refused ("none", secret, secret_len, -1, "not supported");
  assert_config_refused ("ES256", secret, secret_len, -1, "not supported");
  assert_config_refused ("", secret, secret_len, -1, "not supported");
  assert_config_refused ("HS256", short_secret, 31, -1, "at least 32");
  assert_config_refused ("HS256", (const guint8 *) "", 0, -1, "at least 32");
  assert_config_refused ("HS256", (const guint8 *) pub, pub_len, -1, "jwt_alg=RS256");
  assert_config_refused ("RS256", (const guint8 *) priv, priv_len, -1, "not a PEM public key");
  assert_config_refused ("RS256", secret, secret_len, -1, "not a PEM public key");
  assert_config_refused ("RS256", (const guint8 *) small, small_len, -1, "1024 bits");
  assert_config_refused ("HS256", secret, secret_len, ARB_JWT_MAX_LEEWAY_S + 1, "leeway");

  /* no key material in any message */
  {
    g_autoptr(ArbJwtVerifier) none = arb_jwt_verifier_new ("HS256", short_secret, 31, NULL, NULL, -1, &error);
    g_assert_null (none);
    g_assert_null (strstr (error->message, "0123456789"));
    g_clear_error (&error);
  }

  v = arb_jwt_verifier_new ("HS256", secret, secret_len, "", NULL, -1, &error);
  g_assert_null (v);
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG);
  g_clear_error (&error);

  /* the largest leeway, and leeway 0 */
  v = arb_jwt_verifier_new ("HS256", secret, secret_len, NULL, NULL, ARB_JWT_MAX_LEEWAY_S, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (arb_jwt_verifier_get_alg (v), ==, "HS256");
  g_clear_pointer (&v, arb_jwt_verifier_free);
  v = arb_jwt_verifier_new ("HS256", secret, secret_len, NULL, NULL, 0, &error);
  g_assert_no_error (error);
  /* exp 1800003600 is over at that second without leeway */
  g_assert_true (arb_jwt_verify (v, python_token ("open/no-iss-no-aud"), 1800003599, NULL, &error));
  g_assert_false (arb_jwt_verify (v, python_token ("open/no-iss-no-aud"), 1800003600, NULL, &error));
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_EXPIRED);
  g_clear_error (&error);
  g_clear_pointer (&v, arb_jwt_verifier_free);

  /* the key is not kept: the caller's copy may go */
  {
    g_autofree guint8 *copy = g_memdup2 (pub, pub_len);
    v = arb_jwt_verifier_new ("RS256", copy, pub_len, ISSUER, AUDIENCE, -1, &error);
    g_assert_no_error (error);
    memset (copy, 0, pub_len);
  }
  g_assert_true (arb_jwt_verify (v, python_token ("rs256/user"), NOW, NULL, &error));
  g_assert_no_error (error);
}

/* ---- secret files --------------------------------------------------------------------- */

static void
test_secret_file_generate (void)
{
  g_autofree char *path = in_dir ("generated");
  g_autofree char *other = in_dir ("generated-2");
  g_autofree char *first = NULL, *second = NULL, *again = NULL;
  g_autoptr(GBytes) key = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;
  GStatBuf st;
  gsize len = 0;

  g_assert_true (arb_jwt_generate_secret_file (path, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_true (S_ISREG (st.st_mode));
  first = read_file (path, &len);
  g_assert_cmpuint (len, ==, 65);
  g_assert_cmpint (first[64], ==, '\n');
  for (guint i = 0; i < 64; i++)
    g_assert_true (g_ascii_isxdigit (first[i]) && !g_ascii_isupper (first[i]));

  /* the key is the 64 characters, as they are */
  key = arb_jwt_load_secret_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (key, NULL), g_bytes_get_size (key), first, 64);

  /* never replaced */
  g_assert_false (arb_jwt_generate_secret_file (path, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
  g_clear_error (&error);
  again = read_file (path, NULL);
  g_assert_cmpstr (again, ==, first);

  g_assert_true (arb_jwt_generate_secret_file (other, &error));
  second = read_file (other, NULL);
  g_assert_cmpstr (second, !=, first);

  /* no temporary files left behind */
  dir = g_dir_open (env.dir, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_assert_false (g_str_has_prefix (name, ".arb-jwt-secret-"));

  /* a directory that does not exist */
  {
    g_autofree char *missing = in_dir ("no-such-dir/secret");
    g_assert_false (arb_jwt_generate_secret_file (missing, &error));
    g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error (&error);
  }
  g_remove (path);
  g_remove (other);
}

static void
test_secret_file_load (void)
{
  g_autofree char *crlf = in_dir ("crlf");
  g_autofree char *bare = in_dir ("bare");
  g_autofree char *shorty = in_dir ("short");
  g_autofree char *missing = in_dir ("missing");
  const char *key32 = "k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-";
  g_autoptr(GBytes) key = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (crlf, "k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-\r\n", -1, NULL));
  key = arb_jwt_load_secret_file (crlf, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (key, NULL), g_bytes_get_size (key), key32, 32);
  g_clear_pointer (&key, g_bytes_unref);

  g_assert_true (g_file_set_contents (bare, key32, -1, NULL));
  key = arb_jwt_load_secret_file (bare, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (key), ==, 32);
  g_clear_pointer (&key, g_bytes_unref);

  /* 31 characters and a newline is too short; the message names no secret */
  g_assert_true (g_file_set_contents (shorty, "k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k\n", -1, NULL));
  key = arb_jwt_load_secret_file (shorty, &error);
  g_assert_null (key);
  g_assert_error (error, ARB_JWT_ERROR, ARB_JWT_ERROR_CONFIG);
  g_assert_null (strstr (error->message, "k-k-"));
  g_clear_error (&error);

  key = arb_jwt_load_secret_file (missing, &error);
  g_assert_null (key);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* one verifier, shared by threads: nothing in it may change per call */
static gpointer
verify_many (gpointer data)
{
  for (guint i = 0; i < 300; i++)
    {
      g_autoptr(ArbPrincipal) hs = NULL;
      g_autoptr(ArbPrincipal) rs = NULL;
      g_autoptr(GError) error = NULL;

      if (!arb_jwt_verify (env.hs, python_token ("hs256/admin"), NOW, &hs, &error)
          || !arb_jwt_verify (env.rs, python_token ("rs256/user"), NOW, &rs, &error)
          || arb_jwt_verify (env.rs, python_token ("rs256/wrong-key"), NOW, NULL, NULL)
          || arb_jwt_verify (env.hs, python_token ("hs256/wrong-secret"), NOW, NULL, NULL)
          || !hs->admin || strcmp (rs->subject, "bob") != 0)
        return GINT_TO_POINTER (FALSE);
    }
  return GINT_TO_POINTER (TRUE);
}

static void
test_threads (void)
{
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("verify", verify_many, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (threads[i])));
}

/* ---- speed ---------------------------------------------------------------------------- */

static double
us_per_verify (const ArbJwtVerifier *v, const char *token, guint n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(ArbPrincipal) p = NULL;
      if (!arb_jwt_verify (v, token, NOW, &p, NULL))
        g_assert_not_reached ();
    }
  return (double) (g_get_monotonic_time () - start) / n;
}

static void
test_speed (void)
{
  /* on every request: report it (no bound: sanitiser builds are slow) */
  double hs = us_per_verify (env.hs, python_token ("hs256/admin"), 20000);
  double rs = us_per_verify (env.rs, python_token ("rs256/admin"), 2000);

  g_test_message ("us per verify: HS256 %.2f, RS256 (2048 bit) %.2f", hs, rs);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  env_setup ();

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/jwt/third-party/%s", cases[i].name);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  g_test_add_func ("/jwt/verify/principal", test_principal_details);
  g_test_add_func ("/jwt/verify/time-boundaries", test_time_boundaries);
  g_test_add_func ("/jwt/verify/malformed", test_malformed);
  g_test_add_func ("/jwt/verify/tampered", test_tampered);
  g_test_add_func ("/jwt/verify/threads", test_threads);
  g_test_add_func ("/jwt/mint/round-trip-python-jwt", test_minted_by_us);
  g_test_add_func ("/jwt/mint/refuses", test_mint_refuses);
  g_test_add_func ("/jwt/verifier/config", test_verifier_config);
  g_test_add_func ("/jwt/secret-file/generate", test_secret_file_generate);
  g_test_add_func ("/jwt/secret-file/load", test_secret_file_load);
  g_test_add_func ("/jwt/speed", test_speed);

  rc = g_test_run ();
  env_teardown ();
  return rc;
}
