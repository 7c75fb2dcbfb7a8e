/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * FakeUpstream: a stand-in for the market-data APIs (CoinGecko,
 * CoinMarketCap, Polymarket, Kalshi) that the tests start in-process. A
 * libsoup 3 SoupServer on its own thread and GMainContext, on 127.0.0.1 and a
 * port the kernel picks, serving the recorded payloads of
 * ../shared/fixtures/upstream/<provider>/ in each provider's real format:
 *
 * - HTTP: GET PATH answers a fixture file with the status, content type and
 *   headers its manifest.json records. Timestamps in the body are rewritten
 *   to the fake's clock (now, unless the test sets it), so quotes are fresh;
 *   text replacements let a test move a price.
 * - WebSocket: a JSON-lines transcript (API-REFERENCE.md §0) is replayed: its
 *   server frames at their recorded offsets (scaled by a speed), waiting for
 *   the client's frames where the transcript has them; text replies ("PING" →
 *   "PONG") on request. libsoup answers protocol pings by itself.
 * - Faults on command, per path: 429 with Retry-After, 401, 403, 500, a hang,
 *   a dropped connection, a truncated body, malformed JSON, stale timestamps.
 *   Error bodies come from the provider's own fixtures where it has one.
 * - Every request is counted per path, and the last query and headers kept.
 * - Checks before any handler (a provider's request signatures), per path
 *   prefix, for HTTP and WebSocket handshakes alike.
 *
 * All functions are called from the test's thread; they are thread-safe
 * against the server's.
 */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _FakeUpstream FakeUpstream;

/**
 * FakeFault:
 * @FAKE_FAULT_NONE: answer normally
 * @FAKE_FAULT_429: 429 with `Retry-After: ARG` seconds (ARG < 0: no header)
 *   and the provider's rate-limit body
 * @FAKE_FAULT_401: 401 with the provider's missing-or-invalid-key body
 * @FAKE_FAULT_403: 403, Cloudflare's plain-text `error code: 1020`
 * @FAKE_FAULT_500: 500 with an HTML error page, as a CDN sends
 * @FAKE_FAULT_HANG: never answer (the client's timeout must act)
 * @FAKE_FAULT_DROP: close the connection without an answer
 * @FAKE_FAULT_TRUNCATED: 200 promising the whole body, half of it sent, then
 *   the connection closed (libsoup 3.2 clients get the half as a complete,
 *   short body, without an error)
 * @FAKE_FAULT_MALFORMED: 200 with invalid JSON (the provider's malformed
 *   fixture, else the body cut in half)
 * @FAKE_FAULT_STALE: answer normally, but the timestamps stop moving: they
 *   stay at the clock's value when the fault was set
 */
typedef enum {
  FAKE_FAULT_NONE,
  FAKE_FAULT_429,
  FAKE_FAULT_401,
  FAKE_FAULT_403,
  FAKE_FAULT_500,
  FAKE_FAULT_HANG,
  FAKE_FAULT_DROP,
  FAKE_FAULT_TRUNCATED,
  FAKE_FAULT_MALFORMED,
  FAKE_FAULT_STALE,
} FakeFault;

/* $ARB_FIXTURES_DIR, else $ARB_SOURCE_ROOT/../shared/fixtures/upstream, when
 * it is a directory; NULL otherwise. (transfer full) */
char         *fake_upstream_find_fixtures (void);

/* Starts the server thread and listens. @fixtures_dir: where the provider
 * folders are (fake_upstream_find_fixtures()). */
FakeUpstream *fake_upstream_new (const char *fixtures_dir, GError **error);
/* stops the thread; hung requests and WebSocket sessions are closed */
void          fake_upstream_free (FakeUpstream *fu);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeUpstream, fake_upstream_free)

guint16       fake_upstream_get_port (FakeUpstream *fu);
/* (transfer full) "http://127.0.0.1:PORT" + @path */
char         *fake_upstream_url (FakeUpstream *fu, const char *path);
/* (transfer full) "ws://127.0.0.1:PORT" + @path */
char         *fake_upstream_ws_url (FakeUpstream *fu, const char *path);

/* --- HTTP ---------------------------------------------------------------- */

/* A @path with a query ("/markets?slug=x") is a route of its own, matched
 * on the exact query before the path's route. */

/* GET @path answers @fixture ("coingecko/simple_price_full.json", relative
 * to the fixtures dir) with the status, content type and response headers
 * the provider's manifest.json gives it (200, application/json otherwise).
 * Replaces what @path served before and its replacements. */
void   fake_upstream_serve_file (FakeUpstream *fu, const char *path, const char *fixture);
/* GET @path answers @body */
void   fake_upstream_serve_text (FakeUpstream *fu, const char *path, guint status, const char *content_type,
                                 const char *body);
/* every answer of @path has @from replaced by @to (a price: "91234.56" →
 * "91300.5"); applied in the order given */
void   fake_upstream_replace (FakeUpstream *fu, const char *path, const char *from, const char *to);
/* the time written into timestamps: @unix_us, or the real time when 0 */
void   fake_upstream_set_clock (FakeUpstream *fu, gint64 unix_us);

/* what @path does from now on (NULL: every path). @arg: FAKE_FAULT_429's
 * Retry-After seconds. FAKE_FAULT_NONE clears it, and answers requests held
 * by FAKE_FAULT_HANG. */
void   fake_upstream_set_fault (FakeUpstream *fu, const char *path, FakeFault fault, int arg);

/* requests for @path (NULL: all) since the start or the last reset */
guint  fake_upstream_get_request_count (FakeUpstream *fu, const char *path);
void   fake_upstream_reset_counts (FakeUpstream *fu);
/* (transfer full) (nullable) of the last request for @path */
char  *fake_upstream_dup_last_query (FakeUpstream *fu, const char *path);
char  *fake_upstream_dup_last_header (FakeUpstream *fu, const char *path, const char *header);

/* --- WebSocket ------------------------------------------------------------ */

/* a WebSocket at @path replays @transcript ("kalshi/ws_session_ticker_orderbook.jsonl")
 * to every client: server frames at their `at_ms` divided by @speed (0: no
 * waiting); a client frame in the transcript is waited for (any text frame
 * from the client counts) before the replay goes on. Fails for a transcript
 * that cannot be read. */
gboolean fake_upstream_serve_ws (FakeUpstream *fu, const char *path, const char *transcript, double speed,
                                 GError **error);
/* a client text frame equal to @text is answered with @reply at once
 * (Polymarket's "PING" → "PONG") and does not count for the replay. The
 * transcript's own copies of @text (client) and @reply (server) are then
 * neither waited for nor replayed: the live exchange stands in for them. */
void     fake_upstream_ws_reply (FakeUpstream *fu, const char *path, const char *text, const char *reply);
/* a client text frame containing @needle is answered with @reply (rendered
 * like a server frame); it is kept in the received frames but does not count
 * for the replay (Kalshi's get_snapshot → an orderbook_snapshot) */
void     fake_upstream_ws_reply_containing (FakeUpstream *fu, const char *path, const char *needle,
                                            const char *reply);
/* server frames on @path get the clock's time (fake_upstream_set_clock, else
 * now) in Polymarket's "timestamp" (string ms) and Kalshi's "ts_ms", "ts"
 * and "time", as they are sent. Replacements (fake_upstream_replace) apply
 * to the frames of a WebSocket route whether or not it restamps. */
void     fake_upstream_ws_restamp (FakeUpstream *fu, const char *path, gboolean restamp);
/* closes every open session on @path with @code and @reason; @code 0
 * breaks the connection without a close frame. Returns how many. */
guint    fake_upstream_ws_close (FakeUpstream *fu, const char *path, gushort code, const char *reason);
/* Faults on a WebSocket path (fake_upstream_set_fault): FAKE_FAULT_HANG
 * silences its sessions (no frame, no text reply; libsoup still answers
 * protocol pings); 500, 401, 403 and 429 refuse the handshake with that
 * status; DROP, TRUNCATED and MALFORMED break the handshake's connection. */

/* --- Authentication --------------------------------------------------------- */

/* On the server's thread, for a request whose path starts with the prefix:
 * @headers has lower-case names. TRUE lets it through; FALSE answers it with
 * *@status and *@body (JSON, owned by the fake afterwards) instead of its
 * handler, WebSocket handshakes included. */
typedef gboolean (*FakeAuthFunc) (const char *method, const char *path, GHashTable *headers, gpointer data,
                                  guint *status, char **body);
/* @data must outlive the fake */
void     fake_upstream_set_auth (FakeUpstream *fu, const char *prefix, FakeAuthFunc func, gpointer data);
/* requests refused by a check */
guint    fake_upstream_get_auth_refusals (FakeUpstream *fu);
/* WebSocket sessions opened on @path, and server frames sent */
guint    fake_upstream_get_ws_sessions (FakeUpstream *fu, const char *path);
guint    fake_upstream_get_ws_frames_sent (FakeUpstream *fu, const char *path);
/* (transfer full) the text frames clients sent on @path, in order */
GStrv    fake_upstream_dup_ws_received (FakeUpstream *fu, const char *path);

G_END_DECLS
