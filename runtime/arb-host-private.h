/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <arbiter/arb-plugin.h>

#include "arb-config-private.h"
#include "arb-log-private.h"
#include "arb-metrics-private.h"
#include "arb-plugin-loader-private.h"

G_BEGIN_DECLS

typedef struct _ArbHost      ArbHost;
typedef struct _ArbPriceBook ArbPriceBook;
typedef struct _ArbRelay     ArbRelay;
typedef struct _ArbSinkQueue ArbSinkQueue;
typedef struct _ArbHttp      ArbHttp;
typedef struct _ArbTrading   ArbTrading;
typedef struct _ArbStore     ArbStore;
typedef struct _ArbSaga      ArbSaga;
typedef struct _ArbApi       ArbApi;

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

/**
 * ArbInstanceState:
 * @ARB_INSTANCE_CONFIGURED: the group was checked, nothing created yet
 * @ARB_INSTANCE_CREATED: `create` succeeded
 * @ARB_INSTANCE_RUNNING: `start` succeeded (health says how well it runs)
 * @ARB_INSTANCE_RETRYING: `start` failed with UNAVAILABLE; it is tried again
 * @ARB_INSTANCE_STOPPED: stopped on purpose
 * @ARB_INSTANCE_FAILED: a failure that is not retried; the reason is kept
 */
typedef enum {
  ARB_INSTANCE_CONFIGURED,
  ARB_INSTANCE_CREATED,
  ARB_INSTANCE_RUNNING,
  ARB_INSTANCE_RETRYING,
  ARB_INSTANCE_STOPPED,
  ARB_INSTANCE_FAILED,
} ArbInstanceState;

const char *arb_instance_state_to_string (ArbInstanceState state);
const char *arb_health_to_string (ArbHealth health);

struct _ArbInstance {
  ArbHost          *host;     /* unowned */
  char             *name;     /* "sink:jsonl" */
  char             *id;       /* "jsonl" */
  guint32           kind;     /* ArbPluginKind */
  ArbPluginModule  *module;   /* unowned, nullable when the plugin was not found */
  ArbConfigValues  *values;   /* owned: the plugin's keys and the host's */
  gboolean          required;
  char             *labels;   /* owned: instance="..." for metrics */

  GMutex            call_lock; /* serialises the plugin's callbacks */
  GMutex            state_lock; /* guards what follows */
  ArbInstanceState  state;
  ArbHealth         health;
  char             *reason;    /* owned, nullable */
  gint64            since_us;  /* when state or health last changed */
  char             *last_error; /* owned, nullable */
  gint64            last_success_us;

  gpointer          self;      /* the plugin's state from create */
  gboolean          started;   /* start was called and stop not yet */
  gboolean          health_reported; /* the plugin reported health since start began */
  GHashTable       *timers;    /* id → GSource; main thread only */
  guint             next_timer_id;
  guint             retry_source;
  guint             retry_delay_ms;

  ArbSinkQueue     *queue;     /* sinks: owned by the relay */
  GStrv             events;    /* sinks: what it subscribes to */
};

/* builds an instance from its config group; a NULL @module means the plugin
 * named in `plugin=` was refused or not found, and the instance is FAILED */
ArbInstance *arb_instance_new (ArbHost *host, const char *group, guint32 kind, ArbPluginModule *module,
                               ArbConfigValues *values, const char *failure);
void         arb_instance_free (ArbInstance *inst);

/* the host's wrappers around every plugin callback: they serialise calls,
 * enforce the GError contract, keep state, health and counters */
gboolean arb_instance_create (ArbInstance *inst, GError **error);
gboolean arb_instance_start (ArbInstance *inst, GError **error);
void     arb_instance_stop (ArbInstance *inst);
void     arb_instance_destroy (ArbInstance *inst);
/* sinks only; on the worker thread */
gboolean arb_instance_sink_write (ArbInstance *inst, ArbBatch *batch, GError **error);
gboolean arb_instance_sink_flush (ArbInstance *inst, GError **error);

ArbInstanceState arb_instance_get_state (ArbInstance *inst);
ArbHealth        arb_instance_get_health (ArbInstance *inst);
/* (transfer full) (nullable) */
char            *arb_instance_dup_reason (ArbInstance *inst);
/* running and not down */
gboolean         arb_instance_is_up (ArbInstance *inst);
void             arb_instance_set_failed (ArbInstance *inst, const char *reason);

/* ------------------------------------------------------------------------ */
/* Quotes, events, batches                                                  */

struct _ArbQuote {
  gint        ref_count;
  char       *market;
  char       *source;
  guint       has; /* bits: 1 bid, 2 ask, 4 last */
  ArbDecimal  bid, ask, last;
  gint64      source_time_us;
  gint64      receive_time_us;
};

/* the host's own copy of a quote, for the book */
ArbQuote *arb_quote_copy (const ArbQuote *quote);
/* checks a published quote; the message says what is wrong */
gboolean  arb_quote_validate (const ArbQuote *quote, GError **error);
/* "crypto" or "prediction" from the namespace, or NULL when not namespaced */
const char *arb_market_class (const char *market_id);
gboolean    arb_market_id_is_valid (const char *market_id);
/* NAMESPACE:ID, apart from the market namespaces (arb-plugin.h,
 * arb_instance_publish_market_event); FALSE with the reason in *@why */
gboolean    arb_event_id_is_valid (const char *event_id, const char **why);

/* (transfer full): a new event with a fresh id; @data_json is an object */
ArbEvent *arb_event_new (const char *type, const char *key, const char *assessment_id, const char *correlation_id,
                         gint64 time_us, const char *data_json, gboolean ledger);
/* a ledger event as the outbox stored it: the envelope is @json */
ArbEvent *arb_event_new_from_outbox (const char *id, const char *type, const char *key, const char *assessment_id,
                                     const char *correlation_id, gint64 time_us, const char *json);
/* (transfer full) a quote event */
ArbEvent *arb_event_new_quote (const ArbQuote *quote);
ArbEvent *arb_event_new_market_status (const char *market, ArbMarketState state, const ArbDecimal *settlement,
                                       const char *reason, const char *source, gint64 source_time_us);

ArbBatch *arb_batch_new (guint reserve);
void      arb_batch_add (ArbBatch *batch, ArbEvent *event); /* takes a ref */
void      arb_batch_free (ArbBatch *batch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbBatch, arb_batch_free)

/* ------------------------------------------------------------------------ */
/* The price book                                                           */

typedef struct {
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     settlement;
  char          *reason;
  gint64         time_us;
} ArbMarketStatusInfo;

ArbPriceBook *arb_price_book_new (void);
void          arb_price_book_free (ArbPriceBook *book);
/* thread-safe; returns TRUE when it is newer than what the book had */
gboolean      arb_price_book_update (ArbPriceBook *book, ArbQuote *quote);
void          arb_price_book_set_status (ArbPriceBook *book, const char *market, ArbMarketState state,
                                         const ArbDecimal *settlement, const char *reason, gint64 time_us);
/* (transfer full) (nullable) */
ArbQuote     *arb_price_book_get (ArbPriceBook *book, const char *market);
gboolean      arb_price_book_get_status (ArbPriceBook *book, const char *market, ArbMarketStatusInfo *out);
/* (transfer full) sorted market ids */
GStrv         arb_price_book_list (ArbPriceBook *book);
guint         arb_price_book_size (ArbPriceBook *book);
/* The events of markets (arb_instance_publish_market_event): thread-safe.
 * set_event records @event for @market, replacing another; *@previous gets
 * (transfer full) the event it replaced, if any (nullable @previous). */
typedef enum {
  ARB_EVENT_UNCHANGED,
  ARB_EVENT_NEW,
  ARB_EVENT_MOVED,
} ArbEventChange;
ArbEventChange arb_price_book_set_event (ArbPriceBook *book, const char *market, const char *event, char **previous);
/* (transfer full) (nullable) a GRefString: release it with
 * g_ref_string_release(); NULL when nothing was published for @market */
char         *arb_price_book_dup_event (ArbPriceBook *book, const char *market);
/* TRUE when @market's event is @event: the one published, else @market itself */
gboolean      arb_price_book_market_in_event (ArbPriceBook *book, const char *market, const char *event);

/* ------------------------------------------------------------------------ */
/* The relay: events to sinks                                               */

ArbRelay *arb_relay_new (ArbHost *host);
void      arb_relay_free (ArbRelay *relay);
/* gives @inst (a started sink) its bounded queue and worker thread */
void      arb_relay_attach (ArbRelay *relay, ArbInstance *inst, guint capacity);
/* hands @event to every attached sink that subscribes to its type; never
 * blocks: a full queue drops its oldest market event and counts it */
void      arb_relay_publish (ArbRelay *relay, ArbEvent *event);
/* stops the worker threads after their queues drained or @timeout_ms passed */
void      arb_relay_shutdown (ArbRelay *relay, gint64 timeout_ms);
/* a sink acknowledged @event */
void      arb_relay_ack (ArbRelay *relay, ArbInstance *inst, ArbEvent *event, const GError *error);
guint     arb_relay_queued (ArbRelay *relay, ArbInstance *inst);
/* TRUE when @types (a sink's events= list) includes @type */
gboolean  arb_event_type_matches (const char *const *types, const char *type, gboolean ledger);

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */

typedef struct _SoupServerMessage ArbSoupMessage;
typedef void (*ArbHttpHandler) (ArbHost *host, gpointer msg, const char *path, gpointer user_data);

/* the largest request body taken (REST bodies are small JSON objects) */
#define ARB_HTTP_MAX_BODY (64 * 1024)

ArbHttp  *arb_http_new (ArbHost *host);
void      arb_http_free (ArbHttp *http);
gboolean  arb_http_listen (ArbHttp *http, const char *host, guint16 port, GError **error);
guint16   arb_http_get_port (ArbHttp *http);
/* stop accepting new connections; the open ones go on */
void      arb_http_stop_listening (ArbHttp *http);
/* close every connection */
void      arb_http_disconnect (ArbHttp *http);
/* answer helpers, also for the REST API */
void      arb_http_reply_json (gpointer msg, guint status, const char *json);
void      arb_http_reply_text (gpointer msg, guint status, const char *content_type, const char *text);

/* ------------------------------------------------------------------------ */
/* The host                                                                 */

struct _ArbHost {
  GMainContext    *context;
  GMainLoop       *loop;
  ArbConfig       *config;
  ArbConfigValues *runtime;    /* [runtime] */
  ArbPluginLoader *loader;
  ArbMetrics      *metrics;
  ArbPriceBook    *book;
  ArbRelay        *relay;
  ArbHttp         *http;
  gpointer         soup_session; /* SoupSession */
  GPtrArray       *instances;  /* ArbInstance, in config order */
  char            *state_dir;
  gint64           started_us;
  gboolean         stopping;
  guint            signal_sources[2];
  int              exit_code;
  ArbConfigValues *api_config; /* [api] */
  ArbTrading      *trading;
  ArbStore        *store;
  ArbSaga         *saga;
  ArbApi          *api;
  gpointer         verifier;   /* ArbJwtVerifier */
  gpointer         marker;     /* ArbMarker */
  gpointer         feeds;      /* ArbFeeds */
};

/* the schema of [runtime] and the host's keys of instance groups */
const ArbConfigKey *arb_host_runtime_schema (void);
const ArbConfigKey *arb_host_api_schema (void);
/* opens the store and applies the migrations (arbiterd --migrate, and start) */
gboolean  arb_host_open_store (ArbHost *host, GError **error);
/* the HS256 secret: [api] jwt_secret, else state_dir/jwt-secret (generated
 * on first use); (transfer full) */
GBytes   *arb_host_jwt_secret (ArbHost *host, gboolean generate, GError **error);
const ArbConfigKey *arb_host_instance_schema (guint32 kind);

/* Checks the whole config and loads every named module. Returns the host (not
 * started) or NULL; every problem found is in @problems. */
ArbHost  *arb_host_new (const char *config_path, GPtrArray *problems, GError **error);
void      arb_host_free (ArbHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbHost, arb_host_free)
/* the plugin search path: $ARBITER_PLUGIN_PATH, then [runtime] plugin_path,
 * then the installed plugin directory */
GStrv     arb_host_plugin_dirs (ArbConfig *config, ArbConfigValues *runtime);
/* creates and starts the instances and the HTTP server */
gboolean  arb_host_start (ArbHost *host, GError **error);
/* stop accepting, drain, stop instances in reverse order */
void      arb_host_stop (ArbHost *host);
/* runs until SIGINT or SIGTERM; returns the exit code */
int       arb_host_run (ArbHost *host);
ArbInstance *arb_host_find_instance (ArbHost *host, const char *name);
/* a quote or status published by an ingest instance (any thread) */
void      arb_host_on_quote (ArbHost *host, ArbInstance *inst, ArbQuote *quote);
void      arb_host_on_status (ArbHost *host, ArbInstance *inst, const char *market, ArbMarketState state,
                              const ArbDecimal *settlement, const char *reason, gint64 source_time_us);
/* an ingest instance says which event @market belongs to (any thread) */
void      arb_host_on_market_event (ArbHost *host, ArbInstance *inst, const char *market, const char *event);
/* JSON for /ready; *ready says whether every required part is up */
char     *arb_host_ready_json (ArbHost *host, gboolean *ready);

G_END_DECLS
