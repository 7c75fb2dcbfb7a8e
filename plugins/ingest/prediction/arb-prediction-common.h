/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the two prediction-market ingest plugins (ingest-polymarket,
 * ingest-kalshi) share beyond plugins/common: a WebSocket client loop, one-off
 * REST requests, price-level books, and market statuses published once per
 * change. A static library linked into each module with hidden visibility;
 * nothing here is part of the plugin ABI.
 *
 * Everything runs on the host's main context (arb_instance_get_context()):
 * libsoup's asynchronous calls on the host's shared session, and GLib
 * timeout sources attached to that context, removed on stop.
 */

#include "arb-ingest-common.h"

G_BEGIN_DECLS

/* ------------------------------------------------------------------------ */
/* Timers on the host's context                                             */

/* a one-shot timeout source on @inst's context calling @func (@data);
 * returns the source (owned by the caller: destroy and unref it with
 * arb_prediction_timer_clear) */
GSource *arb_prediction_timer_new (ArbInstance *inst, gint64 delay_ms, GSourceFunc func, gpointer data);
void     arb_prediction_timer_clear (GSource **timer);

/* 0 on a host built before the feeds existed (weak reference) */
gint64   arb_prediction_hold_off_ms (ArbInstance *inst);

/* "1.5 s", "250 ms", for messages; (transfer full) */
char    *arb_prediction_format_ms (gint64 ms);

/* ------------------------------------------------------------------------ */
/* One-off REST requests                                                    */

typedef struct _ArbPredictionHttp ArbPredictionHttp;

/* a whole answer (any status), or @error (no answer: refused, timed out,
 * broken off). @msg is the request; @tag what the caller passed */
typedef void (*ArbPredictionHttpDone) (gpointer plugin, gpointer tag, SoupMessage *msg, GBytes *body,
                                       const GError *error);

ArbPredictionHttp *arb_prediction_http_new (ArbInstance *inst, gint64 timeout_ms);
/* sends @msg (transfer full); @done runs on the host context unless the
 * request is cancelled first. @tag is freed with @tag_free afterwards */
void               arb_prediction_http_send (ArbPredictionHttp *http, SoupMessage *msg, ArbPredictionHttpDone done,
                                             gpointer plugin, gpointer tag, GDestroyNotify tag_free);
/* requests in flight */
guint              arb_prediction_http_in_flight (ArbPredictionHttp *http);
/* cancels everything in flight: no callback runs for it any more */
void               arb_prediction_http_cancel_all (ArbPredictionHttp *http);
void               arb_prediction_http_free (ArbPredictionHttp *http);
SoupSession       *arb_prediction_http_session (ArbPredictionHttp *http);

/* "http://127.0.0.1:8080", for messages; (transfer full) */
char              *arb_prediction_where (GUri *uri);

/* ------------------------------------------------------------------------ */
/* A WebSocket client loop                                                  */

typedef struct _ArbPredictionWs ArbPredictionWs;

typedef enum {
  ARB_PREDICTION_WS_IDLE,       /* not started, or stopped */
  ARB_PREDICTION_WS_WAITING,    /* waiting to (re)connect */
  ARB_PREDICTION_WS_CONNECTING, /* handshake in flight */
  ARB_PREDICTION_WS_OPEN,
} ArbPredictionWsState;

typedef struct {
  /* adds headers to the handshake (authentication); FALSE with @error
   * when it cannot (a key that cannot be used): the attempt fails */
  gboolean (*prepare) (gpointer plugin, SoupMessage *msg, GError **error);
  /* the socket is open: subscribe */
  void     (*opened) (gpointer plugin);
  /* a text frame, not NUL-terminated */
  void     (*text) (gpointer plugin, const char *data, gsize length);
  /* the socket went away or an attempt failed; arb_prediction_ws_get_reason()
   * says why, arb_prediction_ws_get_failures() how often in a row */
  void     (*changed) (gpointer plugin);
  /* time for an application heartbeat (Polymarket's text PING); NULL when
   * the protocol's own pings serve */
  void     (*heartbeat) (gpointer plugin);
} ArbPredictionWsFuncs;

typedef struct {
  gint64   ping_interval_ms;    /* heartbeat period */
  gint64   stale_after_ms;      /* no frame (nor pong) for this long: a failure */
  gint64   connect_timeout_ms;  /* a handshake taking longer is abandoned */
  gint64   reconnect_min_ms;    /* first wait after a failure, doubling… */
  gint64   reconnect_max_ms;    /* …up to this */
  gboolean protocol_pings;      /* libsoup's keepalive pings (whole seconds) */
  guint64  max_payload;         /* largest frame accepted */
} ArbPredictionWsConfig;

ArbPredictionWs     *arb_prediction_ws_new (ArbInstance *inst, const char *upstream, const char *url,
                                            const ArbPredictionWsFuncs *funcs, gpointer plugin,
                                            const ArbPredictionWsConfig *config);
void                 arb_prediction_ws_free (ArbPredictionWs *ws);
/* connects now (or after the feed's hold-off) and keeps connecting */
void                 arb_prediction_ws_start (ArbPredictionWs *ws);
/* closes the socket, cancels the handshake and every timer; idempotent */
void                 arb_prediction_ws_stop (ArbPredictionWs *ws);
/* FALSE when the socket is not open */
gboolean             arb_prediction_ws_send (ArbPredictionWs *ws, const char *text);
/* the plugin closes the socket on purpose (a protocol error it cannot
 * recover from); counts as a failure with @why, then reconnects */
void                 arb_prediction_ws_restart (ArbPredictionWs *ws, const char *why);
ArbPredictionWsState arb_prediction_ws_get_state (ArbPredictionWs *ws);
/* why the last attempt or session ended, NULL while all is well */
const char          *arb_prediction_ws_get_reason (ArbPredictionWs *ws);
/* failed attempts (or sessions that died) in a row */
guint                arb_prediction_ws_get_failures (ArbPredictionWs *ws);
/* sessions opened since the start */
guint                arb_prediction_ws_get_sessions (ArbPredictionWs *ws);
/* the HTTP status of the last refused handshake (401 …), 0 otherwise */
guint                arb_prediction_ws_get_refused_status (ArbPredictionWs *ws);
/* µs (monotonic) of the last frame or pong */
gint64               arb_prediction_ws_get_last_rx (ArbPredictionWs *ws);
const char          *arb_prediction_ws_get_url (ArbPredictionWs *ws);

/* a ws:// or wss:// URL with a host, without its trailing slash; NULL with
 * an ARB_PLUGIN_ERROR_CONFIG error naming @key otherwise */
char *arb_prediction_ws_url_check (const char *key, const char *text, GError **error);

/* ------------------------------------------------------------------------ */
/* Price levels                                                             */

/* one side of a book: price → size, both ArbDecimal raw values */
typedef struct _ArbPredictionLevels ArbPredictionLevels;

ArbPredictionLevels *arb_prediction_levels_new (void);
void                 arb_prediction_levels_free (ArbPredictionLevels *l);
void                 arb_prediction_levels_clear (ArbPredictionLevels *l);
/* the size at @price becomes @size; 0 or less removes the level */
void                 arb_prediction_levels_set (ArbPredictionLevels *l, ArbDecimal price, ArbDecimal size);
/* adds @delta (signed) to the size at @price; FALSE (nothing changed) when
 * the result would be negative */
gboolean             arb_prediction_levels_add (ArbPredictionLevels *l, ArbDecimal price, ArbDecimal delta);
/* the highest or lowest price with a size; FALSE when empty */
gboolean             arb_prediction_levels_max (ArbPredictionLevels *l, ArbDecimal *price, ArbDecimal *size);
gboolean             arb_prediction_levels_min (ArbPredictionLevels *l, ArbDecimal *price, ArbDecimal *size);
guint                arb_prediction_levels_count (ArbPredictionLevels *l);
/* the size at @price, 0 when none */
ArbDecimal           arb_prediction_levels_get (ArbPredictionLevels *l, ArbDecimal price);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbPredictionLevels, arb_prediction_levels_free)

/* ------------------------------------------------------------------------ */
/* Decimals from the wire                                                   */

/* A decimal string the way both providers write them ("0.420", "1500.00",
 * "-120.00"): exact, at most 8 places, no exponent or blanks. FALSE for
 * anything else (empty included). */
gboolean arb_prediction_decimal (const char *text, ArbDecimal *out);
/* a price: a decimal in [0, 1] */
gboolean arb_prediction_price (const char *text, ArbDecimal *out);
/* a whole number of cents (legacy Kalshi integers) as dollars, 0–100 */
gboolean arb_prediction_cents (gint64 cents, ArbDecimal *out);
/* 1 − @p */
ArbDecimal arb_prediction_complement (ArbDecimal p);
/* a string or integer member holding milliseconds since the epoch ("1795233600212" or
 * 1795233600212) → µs; FALSE when absent or not plausible */
gboolean arb_prediction_ms_member (JsonObject *o, const char *member, gint64 *out_us);

/* ------------------------------------------------------------------------ */
/* Market statuses, published once per change                               */

typedef struct _ArbPredictionStatus ArbPredictionStatus;

ArbPredictionStatus *arb_prediction_status_new (ArbInstance *inst);
void                 arb_prediction_status_free (ArbPredictionStatus *s);
/* publishes @state for @market unless it is the state (and settlement)
 * last published for it; TRUE when published */
gboolean             arb_prediction_status_publish (ArbPredictionStatus *s, const char *market, ArbMarketState state,
                                                    const ArbDecimal *settlement, const char *reason,
                                                    gint64 source_time_us);
/* FALSE when nothing was published for @market yet */
gboolean             arb_prediction_status_get (ArbPredictionStatus *s, const char *market, ArbMarketState *state,
                                                ArbDecimal *settlement, gboolean *has_settlement);
/* resolved or cancelled: settled, nothing to follow any more */
gboolean             arb_prediction_state_is_final (ArbMarketState state);

/* publishes that @market belongs to @event (arb_instance_publish_market_event)
 * unless it is what was last published for it; TRUE when published. A
 * refusal is counted (publish_errors_total) and logged as a warning. */
gboolean             arb_prediction_status_publish_event (ArbPredictionStatus *s, const char *market,
                                                          const char *event);
/* (transfer none) (nullable): what was last published for @market */
const char          *arb_prediction_status_get_event (ArbPredictionStatus *s, const char *market);

/* the reconnect backoff keys, the same for every socket-driven ingestor */
#define ARB_PREDICTION_RECONNECT_KEYS \
  { "reconnect_min", ARB_CFG_DURATION, ARB_CFG_NONE, "1s", 10, 600000, NULL, \
    "the wait before reconnecting after a failure, doubling with each failure in a row" }, \
  { "reconnect_max", ARB_CFG_DURATION, ARB_CFG_NONE, "60s", 10, 3600000, NULL, \
    "the longest wait before reconnecting" }

G_END_DECLS
