/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the HTTP ingest plugins share (ingest-coingecko, ingest-coinmarketcap,
 * and the Polymarket and Kalshi ones to come), and ingest-replay with them
 * (strict JSON, exact prices, times, market ids), built as a static library
 * that each plugin links into its own module. Nothing here is part of the
 * plugin ABI: it uses only the public <arbiter/arb-plugin.h>, json-glib and
 * libsoup.
 *
 * - strict JSON: json-glib 1.6 accepts things that lose data (trailing text,
 *   comments, 20-digit integers it wraps, duplicate members of which it keeps
 *   the last); arb_ingest_json_parse() refuses them first;
 * - exact prices: json-glib hands JSON numbers over as doubles, so a price is
 *   read from the shortest text that reads back as the same double (0.1 is
 *   "0.1", not 0.1000000000000000055511151231257827), then rounded once to the
 *   eight places of ArbDecimal;
 * - the error bodies upstreams send, in all their shapes, turned into one line
 *   for people;
 * - Retry-After, market ids and maps (`bitcoin:crypto:BTC-USD`), RFC 3339
 *   times;
 * - ArbIngestPoll: the request loop (interval, timeout, backoff, Retry-After,
 *   the feed breaker's hold-off, health reports, metrics) so that a plugin
 *   only builds its request and decodes the answer.
 */

#include <arbiter/arb-plugin.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* an answer larger than this is refused before it is parsed */
#define ARB_INGEST_MAX_BODY       (4 * 1024 * 1024)
/* nesting deeper than this is refused (real answers nest 5 levels or so) */
#define ARB_INGEST_JSON_MAX_DEPTH 64
/* the longest upstream message kept in a health reason */
#define ARB_INGEST_MAX_MESSAGE    300
/* the longest market id ("polymarket:<77 digits>" fits with room to spare) */
#define ARB_INGEST_MAX_MARKET_ID  256

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

/* Checks @text (which need not be NUL-terminated) against RFC 8259 and the
 * rules above, then parses it. Returns (transfer full) the root, or NULL with
 * a G_IO_ERROR_INVALID_DATA error saying what is wrong and where. */
JsonNode   *arb_ingest_json_parse (const char *text, gsize length, GError **error);
/* the same with nesting limited to @max_depth levels (a format whose values
 * are all flat, such as a replay line, refuses depth early and says so) */
JsonNode   *arb_ingest_json_parse_depth (const char *text, gsize length, guint max_depth, GError **error);

/* "null", "an object", "a string", ... for messages */
const char *arb_ingest_json_kind (JsonNode *node);

/* Writes @v as plain decimal text (no exponent) with the fewest significant
 * digits that read back as the same double. @size of 400 fits every double
 * below 1e300. */
void        arb_ingest_double_to_text (double v, char *buf, gsize size);

/* A number (or a decimal string) as an ArbDecimal: integers exactly, other
 * numbers from their shortest round-trip text, rounded once with @rounding.
 * Errors (G_IO_ERROR_INVALID_DATA): not a number, out of the decimal range,
 * more than eight decimal places in a string read with ARB_ROUND_EXACT. */
gboolean    arb_ingest_json_to_decimal (JsonNode *node, ArbRounding rounding, ArbDecimal *out, GError **error);

/* An integer member (JSON integer, or a string of digits, as CoinMarketCap v3
 * sends error_code); FALSE when absent or anything else. */
gboolean    arb_ingest_json_get_int (JsonObject *object, const char *member, gint64 *out);
/* a string member, or NULL when absent, null or not a string */
const char *arb_ingest_json_get_string (JsonObject *object, const char *member);
/* an object member, or NULL */
JsonObject *arb_ingest_json_get_object (JsonObject *object, const char *member);

/* RFC 3339 / ISO 8601 with a zone ("2026-11-20T15:03:00.000Z") → µs since
 * the epoch */
gboolean    arb_ingest_parse_time_us (const char *text, gint64 *out_us);

/* ------------------------------------------------------------------------ */
/* Error bodies                                                             */

/**
 * ArbIngestErrorBody:
 * @has_code: whether @code was found
 * @code: the upstream's own error code (CoinGecko 10002, CoinMarketCap 1008)
 * @message: (nullable): its message, cleaned of control characters and cut
 *   to %ARB_INGEST_MAX_MESSAGE characters; or an excerpt of a body that is
 *   not JSON ("error code: 1020", an HTML page's title)
 * @json: whether the body was JSON
 *
 * The shapes understood: `{"status":{"error_code":N,"error_message":"…"}}`
 * (CoinGecko, CoinMarketCap), `{"error_code":N,"status":{"error_message":"…"}}`
 * (CoinGecko 10010/10011), `{"error":"…"}` and `{"type":"…","error":"…"}`
 * (CoinGecko 400/404, Polymarket Gamma), `{"error":{"code":…,"message":"…"}}`,
 * `{"message":"…"}`, plain text and HTML.
 */
typedef struct {
  gboolean has_code;
  gint64   code;
  char    *message;
  gboolean json;
} ArbIngestErrorBody;

/* the reason phrase to show for @status: the server's (@given), unless it is
 * empty or libsoup's "Unknown Error"; libsoup 3.2 has no phrase for 429 */
const char *arb_ingest_status_phrase (guint status, const char *given);

void arb_ingest_error_body_decode (const char *body, gsize length, ArbIngestErrorBody *out);
void arb_ingest_error_body_clear (ArbIngestErrorBody *e);
/* printable text of at most @max characters from an upstream, for a reason */
char *arb_ingest_clean_text (const char *text, gssize length, gsize max);

/* ------------------------------------------------------------------------ */
/* Retry-After                                                              */

/* "120" or an HTTP date → milliseconds from @now_unix_us; FALSE when the
 * value is neither. A date in the past gives 0. Capped at one day. */
gboolean arb_ingest_retry_after_ms (const char *value, gint64 now_unix_us, gint64 *out_ms);

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

/* an http:// or https:// URL with a host and no query, returned without its
 * trailing slashes; NULL with an ARB_PLUGIN_ERROR_CONFIG error naming
 * base_url otherwise */
char *arb_ingest_base_url_check (const char *text, GError **error);

/* ------------------------------------------------------------------------ */
/* Market maps                                                              */

/* Whether @id is a market id the host takes: "crypto:BTC-USD",
 * "polymarket:<token id>", "kalshi:<TICKER>:yes" — a lower-case namespace, a
 * colon and at least one more character, all printable ASCII without spaces,
 * at most %ARB_INGEST_MAX_MARKET_ID characters. Which namespaces exist is the
 * host's business. When it is not, @why (nullable) gets what is wrong, to
 * follow the id in a message ("is empty", "must be namespaced, …"). */
gboolean arb_ingest_market_id_check (const char *id, const char **why);

typedef struct {
  char *upstream; /* owned: the provider's id ("bitcoin", "1", "BTC/1") */
  char *market;   /* owned: ours ("crypto:BTC-USD") */
} ArbIngestMarket;

/* Reads `markets=UPSTREAM:NAMESPACE:REST,…`: the upstream id up to the first
 * colon, then our market id, which must be namespaced. Blank entries are
 * skipped. Errors (ARB_PLUGIN_ERROR_CONFIG) name the entry: no colon, an empty
 * part, an id or a market given twice, no entry at all. Returns (transfer
 * full) (element-type ArbIngestMarket). */
GPtrArray *arb_ingest_markets_parse (const char *const *entries, GError **error);

/* ------------------------------------------------------------------------ */
/* The request loop                                                         */

typedef struct _ArbIngestPoll ArbIngestPoll;

/**
 * ArbIngestOutcome:
 * @ARB_INGEST_OK: every market had a price
 * @ARB_INGEST_PARTIAL: some markets had none (the reason names them); the
 *   others were published. Not a failure of the source
 * @ARB_INGEST_RATE_LIMITED: the upstream said to slow down; the next request
 *   waits @retry_after_ms (0: unknown, back off)
 * @ARB_INGEST_AUTH: the key or the plan was refused; DOWN at once, requests
 *   back off, and the plugin re-reads its key before the next one
 * @ARB_INGEST_FAILED: the answer was unusable (HTTP error, malformed)
 */
typedef enum {
  ARB_INGEST_OK,
  ARB_INGEST_PARTIAL,
  ARB_INGEST_RATE_LIMITED,
  ARB_INGEST_AUTH,
  ARB_INGEST_FAILED,
} ArbIngestOutcome;

typedef struct {
  ArbIngestOutcome outcome;
  char            *reason;         /* owned, nullable: for the health report */
  gint64           retry_after_ms; /* RATE_LIMITED only */
} ArbIngestVerdict;

/* sets the verdict (a printf-style reason) */
void arb_ingest_verdict_set (ArbIngestVerdict *verdict, ArbIngestOutcome outcome, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

typedef struct {
  /* (transfer full): the request for this poll, or NULL with @error, which
   * is reported DOWN; the loop tries again after the interval */
  SoupMessage *(*build_request) (gpointer plugin, GError **error);
  /* a whole answer arrived (any status): publish what it holds, and say how
   * it went in @verdict (OK unless set) */
  void         (*handle_answer) (gpointer plugin, SoupMessage *msg, GBytes *body, ArbIngestVerdict *verdict);
} ArbIngestPollFuncs;

/* Everything on the host's main context. @timer is the plugin's trampoline
 * for its host timers: a function that calls arb_ingest_poll_on_timer() with
 * this poll (host timers hand the plugin's own state to their callback). */
ArbIngestPoll *arb_ingest_poll_new (ArbInstance *inst, const char *upstream_name, const ArbIngestPollFuncs *funcs,
                                    gpointer plugin, gint64 interval_ms, gint64 timeout_ms, ArbTimerFunc timer);
/* polls now, then every interval */
void           arb_ingest_poll_start (ArbIngestPoll *poll);
/* cancels the request in flight and the timer; idempotent */
void           arb_ingest_poll_stop (ArbIngestPoll *poll);
void           arb_ingest_poll_free (ArbIngestPoll *poll);
gboolean       arb_ingest_poll_on_timer (ArbIngestPoll *poll);
/* requests sent since start, for tests */
guint64        arb_ingest_poll_get_requests (ArbIngestPoll *poll);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbIngestPoll, arb_ingest_poll_free)

G_END_DECLS
