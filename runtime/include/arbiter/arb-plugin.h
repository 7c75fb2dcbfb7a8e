/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/**
 * SECTION:arb-plugin
 * @short_description: the one header a plugin includes
 *
 * A plugin is a shared module `libarb-KIND-NAME.so` that exports exactly one
 * symbol, `arb_plugin_KIND_NAME_describe` (dashes become underscores), which
 * returns a constant #ArbPluginDesc. The host refuses a module whose ABI major
 * differs from its own or whose ABI minor is newer, and never reads past the
 * `size` the plugin was compiled with.
 *
 * Guarantees the host gives every plugin, so a plugin needs no locks of its own
 * for them:
 * - callbacks of one instance never run at the same time (the host serialises
 *   them, timers included);
 * - `create` sees a config group already checked against the plugin's schema;
 * - `stop` is called once after `start`, also after a failed `start`, and
 *   `destroy` last; no callback follows `stop` but `destroy`;
 * - everything runs on the host's main context (arb_instance_get_context()),
 *   except the sink `write` callback, which runs on the instance's own worker
 *   thread;
 * - a callback that returns FALSE must set its #GError; one that does not is
 *   reported as a plugin bug and treated as a failure all the same.
 *
 * Needs only GLib, GIO and libsoup (for the shared #SoupSession). Since: 1.0
 */

#include <glib.h>
#include <gio/gio.h>
#include <gmodule.h>

#include <arbiter/arb-version.h>
#include <arbiter/arb-config.h>
#include <arbiter/arb-decimal.h>

G_BEGIN_DECLS

#define ARB_PLUGIN_ABI_MAJOR 1 /* bump: every plugin must be rebuilt */
#define ARB_PLUGIN_ABI_MINOR 1 /* bump: something was appended; old plugins still load */
/* 1.1: arb_instance_publish_market_event(), arb_order_view_get_event(),
 *      arb_account_view_get_event_notional() */

/**
 * ArbPluginKind:
 * @ARB_PLUGIN_INGEST: speaks one upstream's protocol, publishes quotes and
 *   market status
 * @ARB_PLUGIN_RISK: pure checks on the order path and on every mark
 * @ARB_PLUGIN_SINK: receives events and acknowledges their delivery
 *
 * Since: 1.0
 */
typedef enum {
  ARB_PLUGIN_INGEST = 1,
  ARB_PLUGIN_RISK,
  ARB_PLUGIN_SINK,
} ArbPluginKind;

/**
 * ArbPluginDesc:
 * @abi_major: %ARB_PLUGIN_ABI_MAJOR as the plugin was compiled
 * @abi_minor: %ARB_PLUGIN_ABI_MINOR as the plugin was compiled
 * @size: sizeof (ArbPluginDesc) as the plugin was compiled
 * @name: "sink-jsonl"; must equal the file stem without `libarb-`
 * @version: the plugin's own release
 * @summary: one line, shown by `arbiterd --list-plugins`
 * @kind: an #ArbPluginKind
 * @config: the schema of the plugin's own keys, ended by a zeroed entry
 * @vtable: an #ArbIngestVTable, #ArbRiskVTable or #ArbSinkVTable, after @kind
 * @reserved: must be zero
 *
 * Since: 1.0
 */
typedef struct {
  guint16             abi_major;
  guint16             abi_minor;
  guint32             size;
  const char         *name;
  const char         *version;
  const char         *summary;
  guint32             kind;
  const ArbConfigKey *config;
  const void         *vtable;
  gpointer            reserved[8];
} ArbPluginDesc;

#define ARB_PLUGIN_DESC_HEADER \
  .abi_major = ARB_PLUGIN_ABI_MAJOR, .abi_minor = ARB_PLUGIN_ABI_MINOR, .size = sizeof (ArbPluginDesc)

#define ARB_PLUGIN_DEFINE(ident, desc)                                         \
  G_MODULE_EXPORT const ArbPluginDesc *arb_plugin_##ident##_describe (void);   \
  G_MODULE_EXPORT const ArbPluginDesc *arb_plugin_##ident##_describe (void)    \
  {                                                                            \
    return &(desc);                                                            \
  }

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

#define ARB_PLUGIN_ERROR (arb_plugin_error_quark ())
/**
 * ArbPluginError:
 * @ARB_PLUGIN_ERROR_CONFIG: a config value the schema could not catch is wrong
 * @ARB_PLUGIN_ERROR_UNAVAILABLE: a service is not there now; the host retries
 *   with a backoff that doubles up to a cap
 * @ARB_PLUGIN_ERROR_FATAL: the instance cannot work; it goes FAILED
 * @ARB_PLUGIN_ERROR_BUG: the plugin broke its contract (for example returned
 *   FALSE without an error); set by the host only
 *
 * The host reacts to the code, never to the message text. Since: 1.0
 */
typedef enum {
  ARB_PLUGIN_ERROR_CONFIG,
  ARB_PLUGIN_ERROR_UNAVAILABLE,
  ARB_PLUGIN_ERROR_FATAL,
  ARB_PLUGIN_ERROR_BUG,
} ArbPluginError;

ARB_AVAILABLE_IN_1_0 GQuark arb_plugin_error_quark (void);

/* ------------------------------------------------------------------------ */
/* The instance: everything the host lends a plugin                          */

typedef struct _ArbInstance ArbInstance;

/**
 * ArbHealth:
 * @ARB_HEALTH_OK: working
 * @ARB_HEALTH_DEGRADED: working with trouble (retrying, partial answers)
 * @ARB_HEALTH_DOWN: not working
 *
 * Since: 1.0
 */
typedef enum {
  ARB_HEALTH_OK,
  ARB_HEALTH_DEGRADED,
  ARB_HEALTH_DOWN,
} ArbHealth;

/* "ingest:replay": the config group, which names the instance everywhere */
ARB_AVAILABLE_IN_1_0 const char *arb_instance_get_name (ArbInstance *inst);
/* "replay": the part after the colon */
ARB_AVAILABLE_IN_1_0 const char *arb_instance_get_id (ArbInstance *inst);
/* the host's main context; attach sources there, never to the default one from a thread */
ARB_AVAILABLE_IN_1_0 GMainContext *arb_instance_get_context (ArbInstance *inst);
/* (transfer none): the host's shared SoupSession, as a GObject (SoupSession *) */
ARB_AVAILABLE_IN_1_0 gpointer arb_instance_get_soup_session (ArbInstance *inst);
/* the daemon's state directory, for files a plugin keeps between runs */
ARB_AVAILABLE_IN_1_0 const char *arb_instance_get_state_dir (ArbInstance *inst);

/* Validated config values, by key of the plugin's own schema. A key that is
 * unset and has no fallback reads as NULL, 0 or FALSE; asking for a key that is
 * not in the schema, or with the wrong type, is a plugin bug (g_critical). */
ARB_AVAILABLE_IN_1_0 gboolean     arb_instance_has_key (ArbInstance *inst, const char *key);
ARB_AVAILABLE_IN_1_0 const char  *arb_instance_get_string (ArbInstance *inst, const char *key);
ARB_AVAILABLE_IN_1_0 gint64       arb_instance_get_int (ArbInstance *inst, const char *key);
ARB_AVAILABLE_IN_1_0 gboolean     arb_instance_get_boolean (ArbInstance *inst, const char *key);
ARB_AVAILABLE_IN_1_0 gint64       arb_instance_get_duration_ms (ArbInstance *inst, const char *key);
/* (transfer none) (array zero-terminated=1) */
ARB_AVAILABLE_IN_1_0 const char *const *arb_instance_get_strv (ArbInstance *inst, const char *key);
ARB_AVAILABLE_IN_1_0 ArbDecimal   arb_instance_get_decimal (ArbInstance *inst, const char *key);
/* an absolute path (relative ones are taken from the config file's directory) */
ARB_AVAILABLE_IN_1_0 const char  *arb_instance_get_path (ArbInstance *inst, const char *key);
/**
 * arb_instance_get_secret:
 *
 * Resolves an %ARB_CFG_SECRET key from `KEY_env=VARIABLE` or `KEY_file=PATH`.
 * Reads the file on each call (call it from `create` or `start`, not from a hot
 * path). Returns (transfer full) (nullable): NULL with no error when the secret
 * is optional and unset; NULL with an error naming the variable or file (never
 * the value) when it cannot be read. Free with arb_secret_free().
 */
ARB_AVAILABLE_IN_1_0 char *arb_instance_get_secret (ArbInstance *inst, const char *key, GError **error);
/* wipes and frees a secret */
ARB_AVAILABLE_IN_1_0 void  arb_secret_free (char *secret);

/* Health, kept by the host per instance and shown in /ready, /metrics and
 * D-Bus. A repeated report of the same state and reason is logged once. */
ARB_AVAILABLE_IN_1_0 void arb_instance_set_health (ArbInstance *inst, ArbHealth health,
                                                   const char *reason_format, ...) G_GNUC_PRINTF (3, 4);

/* Logging: every line carries the instance name and the current correlation
 * id, when there is one. */
ARB_AVAILABLE_IN_1_0 void arb_instance_log (ArbInstance *inst, GLogLevelFlags level,
                                            const char *format, ...) G_GNUC_PRINTF (3, 4);
#define arb_debug(inst, ...)   arb_instance_log ((inst), G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define arb_info(inst, ...)    arb_instance_log ((inst), G_LOG_LEVEL_INFO, __VA_ARGS__)
#define arb_message(inst, ...) arb_instance_log ((inst), G_LOG_LEVEL_MESSAGE, __VA_ARGS__)
#define arb_warning(inst, ...) arb_instance_log ((inst), G_LOG_LEVEL_WARNING, __VA_ARGS__)

/* Metrics, exported by the host as `arb_plugin_NAME{instance="..."}`. NAME is
 * [a-z_][a-z0-9_]*; a counter name ends in `_total`, a histogram's in its unit
 * (`_seconds`). Thread-safe. */
ARB_AVAILABLE_IN_1_0 void arb_instance_counter_add (ArbInstance *inst, const char *name, guint64 delta);
ARB_AVAILABLE_IN_1_0 void arb_instance_gauge_set (ArbInstance *inst, const char *name, gdouble value);
ARB_AVAILABLE_IN_1_0 void arb_instance_histogram_observe (ArbInstance *inst, const char *name, gdouble value);

/* Timers on the host's main context. The callback runs through the host's
 * wrapper (serialised with the instance's other callbacks) and every timer of
 * an instance is removed when it stops. Return G_SOURCE_CONTINUE or
 * G_SOURCE_REMOVE. Returns an id for arb_instance_timer_cancel(). */
typedef gboolean (*ArbTimerFunc) (gpointer self);
ARB_AVAILABLE_IN_1_0 guint arb_instance_timer_add (ArbInstance *inst, guint interval_ms, ArbTimerFunc func);
ARB_AVAILABLE_IN_1_0 void  arb_instance_timer_cancel (ArbInstance *inst, guint timer_id);

/* The correlation id of the work in progress on this thread, or NULL. */
ARB_AVAILABLE_IN_1_0 const char *arb_current_correlation_id (void);

/* Microseconds since the Unix epoch, UTC (what every timestamp here means). */
ARB_AVAILABLE_IN_1_0 gint64 arb_now_us (void);

/* ------------------------------------------------------------------------ */
/* Quotes and market status (ingest → host)                                  */

typedef struct _ArbQuote ArbQuote;

/**
 * ArbMarketState:
 * @ARB_MARKET_OPEN: trading
 * @ARB_MARKET_HALTED: paused by the venue; orders refused, positions kept
 * @ARB_MARKET_CLOSED: closed, awaiting resolution; orders refused
 * @ARB_MARKET_DISPUTED: the outcome is contested
 * @ARB_MARKET_RESOLVED: settled; the settlement price per share is set
 * @ARB_MARKET_CANCELLED: voided; positions are refunded at cost
 *
 * Since: 1.0
 */
typedef enum {
  ARB_MARKET_OPEN,
  ARB_MARKET_HALTED,
  ARB_MARKET_CLOSED,
  ARB_MARKET_DISPUTED,
  ARB_MARKET_RESOLVED,
  ARB_MARKET_CANCELLED,
} ArbMarketState;

ARB_AVAILABLE_IN_1_0 const char *arb_market_state_to_string (ArbMarketState state);

/* (transfer full): a quote for @market_id ("crypto:BTC-USD"); set what the
 * upstream gives, leave the rest unset */
ARB_AVAILABLE_IN_1_0 ArbQuote  *arb_quote_new (const char *market_id);
ARB_AVAILABLE_IN_1_0 ArbQuote  *arb_quote_ref (ArbQuote *quote);
ARB_AVAILABLE_IN_1_0 void       arb_quote_unref (ArbQuote *quote);
ARB_AVAILABLE_IN_1_0 void       arb_quote_set_bid (ArbQuote *quote, ArbDecimal bid);
ARB_AVAILABLE_IN_1_0 void       arb_quote_set_ask (ArbQuote *quote, ArbDecimal ask);
ARB_AVAILABLE_IN_1_0 void       arb_quote_set_last (ArbQuote *quote, ArbDecimal last);
/* when the upstream says the price was made, µs since the epoch */
ARB_AVAILABLE_IN_1_0 void       arb_quote_set_source_time (ArbQuote *quote, gint64 unix_us);
ARB_AVAILABLE_IN_1_0 const char *arb_quote_get_market (const ArbQuote *quote);
/* each getter returns FALSE when the field was not set */
ARB_AVAILABLE_IN_1_0 gboolean   arb_quote_get_bid (const ArbQuote *quote, ArbDecimal *out);
ARB_AVAILABLE_IN_1_0 gboolean   arb_quote_get_ask (const ArbQuote *quote, ArbDecimal *out);
ARB_AVAILABLE_IN_1_0 gboolean   arb_quote_get_last (const ArbQuote *quote, ArbDecimal *out);
ARB_AVAILABLE_IN_1_0 gint64     arb_quote_get_source_time (const ArbQuote *quote);
ARB_AVAILABLE_IN_1_0 gint64     arb_quote_get_receive_time (const ArbQuote *quote);
/* the instance name that published it */
ARB_AVAILABLE_IN_1_0 const char *arb_quote_get_source (const ArbQuote *quote);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbQuote, arb_quote_unref)

/**
 * arb_instance_publish_quote:
 * @quote: (transfer none): the host stamps the receive time and the source
 *
 * Thread-safe. Returns FALSE with an error (and counts it) when the quote is
 * not valid: no price at all, a negative price, bid above ask, a market id
 * that is not namespaced.
 */
ARB_AVAILABLE_IN_1_0 gboolean arb_instance_publish_quote (ArbInstance *inst, ArbQuote *quote, GError **error);

/**
 * arb_instance_publish_status:
 * @market_id: the market
 * @state: the new state
 * @settlement: (nullable): for %ARB_MARKET_RESOLVED the payout of one share
 *   (1, 0, 0.5 for a 50-50, or a scalar value); NULL otherwise
 * @reason: (nullable): what the upstream said, for people
 * @source_time_us: when the upstream says it happened, or 0
 *
 * Thread-safe. Since: 1.0
 */
ARB_AVAILABLE_IN_1_0 gboolean arb_instance_publish_status (ArbInstance *inst, const char *market_id,
                                                           ArbMarketState state, const ArbDecimal *settlement,
                                                           const char *reason, gint64 source_time_us,
                                                           GError **error);

/**
 * arb_instance_publish_market_event:
 * @inst: an ingest instance
 * @market_id: the market ("polymarket:<token id>", "kalshi:<TICKER>:yes")
 * @event_id: the event it belongs to, namespaced by the plugin that knows
 *   it and apart from market ids: "polymarket-event:<Gamma event id>",
 *   "kalshi-event:<EVENT_TICKER>" (`NAMESPACE:ID`, the namespace of lower
 *   case letters, digits and '-', not crypto, polymarket or kalshi; the id
 *   of letters, digits and `-_.:`; 200 bytes at most)
 * @error: set when an argument is not valid
 *
 * Tells the host which event a market belongs to: the markets of one event
 * are the outcomes a prediction-market rule adds up (risk-exposure's
 * max_event_exposure_pct, see arb_order_view_get_event() and
 * arb_account_view_get_event_notional()). Publish it for every outcome the
 * plugin follows, as soon as the upstream says it, and again when the
 * upstream moves a market to another event: the latest mapping replaces the
 * one before. Publishing the same mapping again costs a lookup and changes
 * nothing. A market nobody published an event for is an event of its own.
 * The host keeps the mapping in memory, for the life of the process.
 *
 * Thread-safe. Returns FALSE with an %ARB_PLUGIN_ERROR_BUG error naming the
 * argument when @market_id is not a market id or @event_id is not an event
 * id; the host's mapping is then unchanged.
 *
 * Since: 1.1
 */
ARB_AVAILABLE_IN_1_1 gboolean arb_instance_publish_market_event (ArbInstance *inst, const char *market_id,
                                                                 const char *event_id, GError **error);

/* ------------------------------------------------------------------------ */
/* Events (host → sinks)                                                     */

typedef struct _ArbEvent ArbEvent;

ARB_AVAILABLE_IN_1_0 ArbEvent   *arb_event_ref (ArbEvent *event);
ARB_AVAILABLE_IN_1_0 void        arb_event_unref (ArbEvent *event);
/* unique, usable to de-duplicate */
ARB_AVAILABLE_IN_1_0 const char *arb_event_get_id (const ArbEvent *event);
/* "quote", "market.status", "trade.executed", ... */
ARB_AVAILABLE_IN_1_0 const char *arb_event_get_event_type (const ArbEvent *event);
/* the partitioning key: assessment id for ledger events, market id for market events */
ARB_AVAILABLE_IN_1_0 const char *arb_event_get_key (const ArbEvent *event);
/* (nullable) */
ARB_AVAILABLE_IN_1_0 const char *arb_event_get_correlation_id (const ArbEvent *event);
/* µs since the epoch */
ARB_AVAILABLE_IN_1_0 gint64      arb_event_get_time (const ArbEvent *event);
/* the whole envelope as one line of JSON: id, type, time, correlationId, assessmentId?, data */
ARB_AVAILABLE_IN_1_0 const char *arb_event_get_json (const ArbEvent *event);
ARB_AVAILABLE_IN_1_0 gsize       arb_event_get_json_length (const ArbEvent *event);
/* TRUE for ledger events, which come from the outbox and must be acknowledged to leave it */
ARB_AVAILABLE_IN_1_0 gboolean    arb_event_is_ledger (const ArbEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbEvent, arb_event_unref)

typedef struct _ArbBatch ArbBatch;

ARB_AVAILABLE_IN_1_0 guint     arb_batch_get_length (ArbBatch *batch);
/* (transfer none) */
ARB_AVAILABLE_IN_1_0 ArbEvent *arb_batch_get (ArbBatch *batch, guint index);

/**
 * arb_instance_ack:
 * @event: (transfer none): an event this sink was given in a batch
 * @error: (nullable): NULL when the event is durably delivered; otherwise why
 *   not (the host redelivers ledger events later and counts the failure)
 *
 * Tells the host the fate of one event. Thread-safe; may be called from any
 * thread, during or after `write`. Each event is acknowledged exactly once.
 * Since: 1.0
 */
ARB_AVAILABLE_IN_1_0 void arb_instance_ack (ArbInstance *inst, ArbEvent *event, const GError *error);

/* ------------------------------------------------------------------------ */
/* The callback tables, one per kind. Each starts with its own size; the host
 * treats fields past that size as NULL.                                     */

/**
 * ArbIngestVTable:
 * @size: sizeof (ArbIngestVTable)
 * @create: read config through the instance; no I/O. Returns the plugin's
 *   state, passed back as @self
 * @start: begin fetching (asynchronously, on the host context)
 * @stop: stop fetching; idempotent; safe after a failed start
 * @destroy: free @self
 *
 * Since: 1.0
 */
typedef struct {
  guint32  size;
  gpointer (*create) (ArbInstance *inst, GError **error);
  gboolean (*start) (gpointer self, GError **error);
  void     (*stop) (gpointer self);
  void     (*destroy) (gpointer self);
} ArbIngestVTable;

/**
 * ArbSinkVTable:
 * @size: sizeof (ArbSinkVTable)
 * @create: read config through the instance; no I/O
 * @start: connect or open; an %ARB_PLUGIN_ERROR_UNAVAILABLE error is retried
 * @write: hand over a batch; runs on the instance's worker thread and may
 *   block. Each event is acknowledged with arb_instance_ack(), now or later.
 *   Returning FALSE fails every event of the batch not yet acknowledged
 * @flush: wait until what was written is acknowledged (worker thread)
 * @stop: idempotent; safe after a failed start
 * @destroy: free @self
 *
 * The host keeps a bounded queue per sink instance in front of @write, so a
 * slow sink never slows anyone else. Since: 1.0
 */
typedef struct {
  guint32  size;
  gpointer (*create) (ArbInstance *inst, GError **error);
  gboolean (*start) (gpointer self, GError **error);
  gboolean (*write) (gpointer self, ArbBatch *batch, GError **error);
  gboolean (*flush) (gpointer self, GError **error);
  void     (*stop) (gpointer self);
  void     (*destroy) (gpointer self);
} ArbSinkVTable;

/* ------------------------------------------------------------------------ */
/* What risk plugins see: read-only views, valid for the call only, and a
 * verdict to fill in. All amounts are ArbDecimal; the views are computed by
 * the host from the live state, marked at bid (longs) and ask (shorts).     */

typedef struct _ArbOrderView   ArbOrderView;
typedef struct _ArbAccountView ArbAccountView;
typedef struct _ArbRiskVerdict ArbRiskVerdict;

/* the order being checked, with the host's execution estimate */
ARB_AVAILABLE_IN_1_0 const char *arb_order_view_get_market (const ArbOrderView *order);
/* TRUE for polymarket:/kalshi: markets */
ARB_AVAILABLE_IN_1_0 gboolean    arb_order_view_is_prediction (const ArbOrderView *order);
/* a buy opens a long; a sell a short (crypto only) */
ARB_AVAILABLE_IN_1_0 gboolean    arb_order_view_is_buy (const ArbOrderView *order);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_order_view_get_quantity (const ArbOrderView *order);
/* the estimated fill price, slippage included */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_order_view_get_price (const ArbOrderView *order);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_order_view_get_notional (const ArbOrderView *order);
/* the fee of the opening fill */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_order_view_get_fee (const ArbOrderView *order);
/* the market's fee rate in basis points (a close costs notional × this) */
ARB_AVAILABLE_IN_1_0 gint64      arb_order_view_get_fee_bps (const ArbOrderView *order);
/* the market's slippage in basis points (a close at the stop fills that much worse) */
ARB_AVAILABLE_IN_1_0 gint64      arb_order_view_get_slippage_bps (const ArbOrderView *order);
/* the margin it would tie up; for prediction shares their whole cost */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_order_view_get_margin (const ArbOrderView *order);
/* each FALSE when the order has none */
ARB_AVAILABLE_IN_1_0 gboolean    arb_order_view_get_stop_loss (const ArbOrderView *order, ArbDecimal *out);
ARB_AVAILABLE_IN_1_0 gboolean    arb_order_view_get_take_profit (const ArbOrderView *order, ArbDecimal *out);
/**
 * arb_order_view_get_event:
 * @order: the order being checked
 *
 * The event of the order's market, as the market's ingest instance last
 * published it with arb_instance_publish_market_event()
 * ("polymarket-event:903", "kalshi-event:KXHIGHNY-26NOV21"). When nothing
 * was published for the market (a crypto market, a feed that knows no
 * events, a market whose metadata has not arrived yet), the market is its
 * own event and this returns the market id itself, so the result is never
 * NULL and can always be handed to arb_account_view_get_event_notional().
 *
 * Returns: (transfer none): valid for the call only
 *
 * Since: 1.1
 */
ARB_AVAILABLE_IN_1_1 const char *arb_order_view_get_event (const ArbOrderView *order);

/* the assessment */
ARB_AVAILABLE_IN_1_0 const char *arb_account_view_get_id (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 const char *arb_account_view_get_program (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_starting_balance (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_balance (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_equity (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_unrealized_pnl (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_used_margin (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_free_margin (const ArbAccountView *account);
/* the highest equity seen since the start, unrealised P&L included */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_equity_high_water_mark (const ArbAccountView *account);
/* the anchors taken at the program's last daily reset */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_day_start_balance (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_day_start_equity (const ArbAccountView *account);
/* µs since the epoch: now, as the host evaluates */
ARB_AVAILABLE_IN_1_0 gint64      arb_account_view_get_time (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 guint       arb_account_view_get_n_positions (const ArbAccountView *account);
/* the highest balance or equity (@equity) at any daily reset, the start
 * included: what end-of-day trailing floors trail */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_eod_high (const ArbAccountView *account, gboolean equity);
/* the highest balance seen (realised only) */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_balance_high_water_mark (const ArbAccountView *account);
/* the highest equity since the last daily reset */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_day_high_equity (const ArbAccountView *account);
/* µs since the epoch: the start of the current trading day, and of the next */
ARB_AVAILABLE_IN_1_0 gint64      arb_account_view_get_day_start_time (const ArbAccountView *account);
ARB_AVAILABLE_IN_1_0 gint64      arb_account_view_get_next_day_start (const ArbAccountView *account);
/* the notional (entry × open quantity) held in @market, summed over positions */
ARB_AVAILABLE_IN_1_0 ArbDecimal  arb_account_view_get_market_notional (const ArbAccountView *account,
                                                                     const char *market);
/**
 * arb_account_view_get_event_notional:
 * @account: the account
 * @event_id: an event, as arb_order_view_get_event() names it
 * @out: (out): Σ entry × open quantity over the account's positions in every
 *   market of @event_id (longs and shorts alike; for prediction shares their
 *   cost), rounded up to 10⁻⁸ once, after the sum
 *
 * The notional held across all markets of one event: the markets whose
 * published event is @event_id, and a market nobody published an event for
 * when @event_id is that market's own id. So for a market of no event this
 * equals arb_account_view_get_market_notional(). Computed from the host's
 * per-market sums in O(markets the account holds), without I/O; the event
 * of each market is the one published at the time of the call.
 *
 * Returns: FALSE when the sum is beyond the decimal range (@out is then
 *   the largest decimal); TRUE otherwise
 *
 * Since: 1.1
 */
ARB_AVAILABLE_IN_1_1 gboolean    arb_account_view_get_event_notional (const ArbAccountView *account,
                                                                     const char *event_id, ArbDecimal *out);

/**
 * ArbRiskRejection:
 * @ARB_RISK_REJECT_LIMIT: a limit of the rule set (422 RISK_LIMIT_EXCEEDED)
 * @ARB_RISK_REJECT_DRAWDOWN: the order's worst case would breach a drawdown
 *   floor (422 DRAWDOWN_LIMIT_EXCEEDED)
 *
 * Since: 1.0
 */
typedef enum {
  ARB_RISK_REJECT_LIMIT = 1,
  ARB_RISK_REJECT_DRAWDOWN,
} ArbRiskRejection;

/* check_order: refuse the order; the message is shown to the trader, so say
 * the number, the limit and its basis */
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_reject (ArbRiskVerdict *verdict, ArbRiskRejection kind,
                                                   const char *format, ...) G_GNUC_PRINTF (3, 4);
/* on_mark: the rule is breached; the host fails the assessment and closes its
 * positions. Evidence added before or after is kept with it. */
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_breach (ArbRiskVerdict *verdict, const char *rule, const char *format,
                                                   ...) G_GNUC_PRINTF (3, 4);
/* on_mark: a soft limit is hit; the host closes every position at the
 * market and takes no order before @until_us (usually the next day's start,
 * arb_account_view_get_next_day_start); the assessment stays active */
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_pause (ArbRiskVerdict *verdict, gint64 until_us, const char *format, ...)
  G_GNUC_PRINTF (3, 4);
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_add_evidence (ArbRiskVerdict *verdict, const char *key, const char *value);
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_add_evidence_decimal (ArbRiskVerdict *verdict, const char *key,
                                                                 ArbDecimal value);
/**
 * arb_risk_verdict_report_rule:
 * @rule: "max_loss", "daily_loss", "max_risk_per_trade", ...
 * @limit: the floor or cap the rule enforces
 * @current: the value it compares with the limit
 * @room: how far @current may move before a breach (0 or less: breached)
 *
 * on_mark: tells where one rule stands, for `GET /assessments/{id}` (limit,
 * current value, room, and the rule that binds first: the least room). A
 * plugin reports every rule it enforces on every call; the host keeps the
 * reports only when it asks for them. Since: 1.0
 */
ARB_AVAILABLE_IN_1_0 void arb_risk_verdict_report_rule (ArbRiskVerdict *verdict, const char *rule, ArbDecimal limit,
                                                        ArbDecimal current, ArbDecimal room);

/**
 * ArbRiskVTable:
 * @size: sizeof (ArbRiskVTable)
 * @create: read config through the instance; no I/O
 * @start: ready to answer
 * @check_order: before a fill: allow, or reject through @verdict; must not
 *   block
 * @on_mark: after a price move of a market the account holds: report a
 *   breach through @verdict, if any; must not block
 * @stop: idempotent
 * @destroy: free @self
 *
 * Since: 1.0
 */
typedef struct {
  guint32  size;
  gpointer (*create) (ArbInstance *inst, GError **error);
  gboolean (*start) (gpointer self, GError **error);
  gboolean (*check_order) (gpointer self, const ArbOrderView *order, const ArbAccountView *account,
                           ArbRiskVerdict *verdict, GError **error);
  gboolean (*on_mark) (gpointer self, const ArbAccountView *account, ArbRiskVerdict *verdict, GError **error);
  void     (*stop) (gpointer self);
  void     (*destroy) (gpointer self);
} ArbRiskVTable;

/* ------------------------------------------------------------------------ */
/* Feeds (host → ingest)                                                    */

/**
 * arb_instance_get_hold_off_ms:
 * @inst: an ingest instance
 *
 * How long the plugin should wait before it next contacts its upstream, in
 * milliseconds; 0 means go ahead. The host keeps a circuit breaker for every
 * ingest instance named in a `[feed:NAME]` group (see doc/feeds.md). While
 * the breaker is open the host does not use the instance's quotes, and a
 * request would only add load to an upstream that is failing, so it answers
 * with the time left until the breaker lets one probe through. Once that
 * time is up, one call returns 0 (the probe); later calls return a wait
 * again until the probe's outcome is known: a fresh quote closes the
 * breaker, a failure opens it for another cooldown.
 *
 * Call it before each request or reconnection and, when it is not 0, wait
 * that long instead (and ask again). An instance in no feed always gets 0.
 * Thread-safe.
 *
 * Returns: the wait in milliseconds, or 0
 *
 * Since: 1.0
 */
ARB_AVAILABLE_IN_1_0 gint64 arb_instance_get_hold_off_ms (ArbInstance *inst);

G_END_DECLS
