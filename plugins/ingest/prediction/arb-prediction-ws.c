/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ArbPredictionWs: one WebSocket client that keeps itself connected, on the
 * host's main context, through libsoup 3 on the host's shared session.
 *
 *   IDLE --start--> WAITING --timer--> CONNECTING --handshake--> OPEN
 *                      ^                    |                     |
 *                      +--- failure: wait, doubling from reconnect_min
 *                           up to reconnect_max ------------------+
 *
 * Before every attempt the feed's hold-off is asked (doc/feeds.md): while the
 * instance's breaker is open no handshake is sent. While open, one timer
 * serves both the heartbeat (the plugin's text PING, or nothing when the
 * protocol's pings serve) and the watch for silence: a socket that brings
 * no frame and no pong for stale_after is closed and counted as a failure.
 * The wait before the next attempt goes back to reconnect_min once a session
 * has delivered its first frame.
 */

#include <string.h>

#include "arb-prediction-common.h"

typedef struct _Attempt Attempt;

struct _ArbPredictionWs {
  ArbInstance            *inst;        /* borrowed */
  char                   *upstream;    /* owned: "Polymarket", for messages */
  char                   *url;         /* owned */
  ArbPredictionWsFuncs    funcs;
  gpointer                plugin;      /* borrowed */
  ArbPredictionWsConfig   config;
  SoupSession            *own_session; /* owned, nullable: when the host lends none */

  gboolean                running;
  ArbPredictionWsState    state;
  GSource                *timer;       /* owned, nullable */
  Attempt                *attempt;     /* in flight, nullable; owned by its callback */
  SoupWebsocketConnection *conn;       /* owned, nullable */
  char                   *reason;      /* owned, nullable */
  char                   *error_text;  /* owned, nullable: the last "error" signal */
  guint                   failures;
  guint                   sessions;
  guint                   refused_status;
  gboolean                got_frame;   /* this session delivered something */
  gint64                  last_rx_us;  /* monotonic */
  gint64                  next_ping_us;
};

struct _Attempt {
  ArbPredictionWs *ws;       /* NULL once stopped or abandoned */
  SoupMessage     *msg;      /* owned */
  GCancellable    *cancel;   /* owned */
  gboolean         timed_out;
};

/* Added with the feeds; weak so the plugins still load, without the
 * hold-off, on a host built before. */
extern __typeof__ (arb_instance_get_hold_off_ms) arb_instance_get_hold_off_ms __attribute__ ((weak));

static void ws_schedule (ArbPredictionWs *ws, gint64 delay_ms);
static void ws_arm_open_timer (ArbPredictionWs *ws);

/* ------------------------------------------------------------------------ */
/* Small helpers shared by the library                                      */

GSource *
arb_prediction_timer_new (ArbInstance *inst, gint64 delay_ms, GSourceFunc func, gpointer data)
{
  GSource *s = g_timeout_source_new ((guint) CLAMP (delay_ms, 0, (gint64) G_MAXUINT));

  g_source_set_callback (s, func, data, NULL);
  g_source_attach (s, arb_instance_get_context (inst));
  return s;
}

void
arb_prediction_timer_clear (GSource **timer)
{
  if (*timer == NULL)
    return;
  g_source_destroy (*timer);
  g_source_unref (*timer);
  *timer = NULL;
}

gint64
arb_prediction_hold_off_ms (ArbInstance *inst)
{
  if (arb_instance_get_hold_off_ms == NULL)
    return 0;
  return arb_instance_get_hold_off_ms (inst);
}

char *
arb_prediction_format_ms (gint64 ms)
{
  if (ms >= 1000 && ms % 1000 == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT " s", ms / 1000);
  if (ms >= 1000 && ms % 100 == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT " s", ms / 1000, (ms % 1000) / 100);
  return g_strdup_printf ("%" G_GINT64_FORMAT " ms", ms);
}

char *
arb_prediction_where (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return g_strdup_printf ("%s://%s:%d", g_uri_get_scheme (uri), g_uri_get_host (uri), port);
  return g_strdup_printf ("%s://%s", g_uri_get_scheme (uri), g_uri_get_host (uri));
}

char *
arb_prediction_ws_url_check (const char *key, const char *text, GError **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *copy = NULL;
  const char *scheme;
  gsize len;

  if (text == NULL || *text == '\0')
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "%s: empty", key);
      return NULL;
    }
  uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || scheme == NULL
      || (g_ascii_strcasecmp (scheme, "ws") != 0 && g_ascii_strcasecmp (scheme, "wss") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' || g_uri_get_query (uri) != NULL
      || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "%s: \"%s\" is not a ws:// or wss:// URL with a host and no query", key, text);
      return NULL;
    }
  copy = g_strdup (text);
  len = strlen (copy);
  while (len > 0 && copy[len - 1] == '/')
    copy[--len] = '\0';
  return g_steal_pointer (&copy);
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */

static SoupSession *
ws_session (ArbPredictionWs *ws)
{
  SoupSession *shared = arb_instance_get_soup_session (ws->inst);

  if (shared != NULL)
    return shared;
  if (ws->own_session == NULL)
    ws->own_session = soup_session_new_with_options ("user-agent", "arbiter-ingest", "proxy-resolver", NULL, NULL);
  return ws->own_session;
}

static gboolean
unref_later (gpointer data)
{
  g_object_unref (data);
  return G_SOURCE_REMOVE;
}

/* lets go of the connection: no signal of it reaches us any more. The last
 * reference goes from an idle callback, since this may run inside one of
 * its own signals. */
static void
ws_drop_conn (ArbPredictionWs *ws)
{
  SoupWebsocketConnection *conn = g_steal_pointer (&ws->conn);
  GSource *idle;

  if (conn == NULL)
    return;
  g_signal_handlers_disconnect_by_data (conn, ws);
  if (soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
  idle = g_idle_source_new ();
  g_source_set_callback (idle, unref_later, conn, NULL);
  g_source_attach (idle, arb_instance_get_context (ws->inst));
  g_source_unref (idle);
}

static gint64
ws_backoff_ms (ArbPredictionWs *ws)
{
  gint64 ms = MAX (ws->config.reconnect_min_ms, 1);

  for (guint i = 1; i < ws->failures && ms < ws->config.reconnect_max_ms; i++)
    ms *= 2;
  return MIN (ms, MAX (ws->config.reconnect_max_ms, 1));
}

/* an attempt failed or a session died: count it, say why, wait, retry */
static void
ws_failed (ArbPredictionWs *ws, const char *why)
{
  ws_drop_conn (ws);
  ws->failures++;
  g_free (ws->reason);
  ws->reason = g_strdup (why);
  arb_instance_counter_add (ws->inst, "ws_failures_total", 1);
  if (!ws->running)
    return;
  ws_schedule (ws, ws_backoff_ms (ws));
  if (ws->funcs.changed != NULL)
    ws->funcs.changed (ws->plugin);
}

static void
ws_on_message (SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer data)
{
  ArbPredictionWs *ws = data;
  gsize length = 0;
  const char *text = g_bytes_get_data (message, &length);

  ws->last_rx_us = g_get_monotonic_time ();
  arb_instance_counter_add (ws->inst, "ws_frames_total", 1);
  if (!ws->got_frame)
    {
      /* a session that delivers is a success: the next failure waits little */
      ws->got_frame = TRUE;
      ws->failures = 0;
    }
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      arb_instance_counter_add (ws->inst, "ws_binary_frames_total", 1);
      return;
    }
  ws->funcs.text (ws->plugin, text != NULL ? text : "", length);
}

static void
ws_on_pong (SoupWebsocketConnection *conn, GBytes *message, gpointer data)
{
  ArbPredictionWs *ws = data;
  ws->last_rx_us = g_get_monotonic_time ();
}

static void
ws_on_error (SoupWebsocketConnection *conn, GError *error, gpointer data)
{
  ArbPredictionWs *ws = data;

  g_free (ws->error_text);
  ws->error_text = g_strdup (error->message);
}

static void
ws_on_closed (SoupWebsocketConnection *conn, gpointer data)
{
  ArbPredictionWs *ws = data;
  gushort code = soup_websocket_connection_get_close_code (conn);
  const char *reason = soup_websocket_connection_get_close_data (conn);
  g_autofree char *where = arb_prediction_where (soup_websocket_connection_get_uri (conn));
  g_autofree char *why = NULL;

  if (code != 0 && code != SOUP_WEBSOCKET_CLOSE_NO_STATUS && code != SOUP_WEBSOCKET_CLOSE_ABNORMAL)
    why = g_strdup_printf ("%s closed the socket at %s: %u%s%s", ws->upstream, where, code,
                           reason != NULL && *reason != '\0' ? " " : "", reason != NULL ? reason : "");
  else
    why = g_strdup_printf ("%s: the socket at %s broke off%s%s", ws->upstream, where,
                           ws->error_text != NULL ? ": " : "", ws->error_text != NULL ? ws->error_text : "");
  g_clear_pointer (&ws->error_text, g_free);
  arb_prediction_timer_clear (&ws->timer);
  ws_failed (ws, why);
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                               */

static void
attempt_free (Attempt *a)
{
  g_clear_object (&a->msg);
  g_clear_object (&a->cancel);
  g_free (a);
}

static void
ws_on_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  Attempt *a = data;
  ArbPredictionWs *ws = a->ws;
  g_autoptr(GError) error = NULL;
  SoupWebsocketConnection *conn = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  g_autofree char *where = NULL;
  g_autofree char *why = NULL;
  guint status;

  if (ws == NULL)
    {
      /* stopped meanwhile */
      g_clear_object (&conn);
      attempt_free (a);
      return;
    }
  ws->attempt = NULL;
  arb_prediction_timer_clear (&ws->timer);
  where = arb_prediction_where (soup_message_get_uri (a->msg));
  status = soup_message_get_status (a->msg);
  if (conn == NULL)
    {
      if (a->timed_out)
        why = g_strdup_printf ("%s: no WebSocket handshake from %s within %" G_GINT64_FORMAT " ms", ws->upstream,
                               where, ws->config.connect_timeout_ms);
      else if (status >= 300)
        {
          const char *phrase = arb_ingest_status_phrase (status, soup_message_get_reason_phrase (a->msg));
          ws->refused_status = status;
          why = g_strdup_printf ("%s refused the WebSocket handshake at %s: HTTP %u%s%s", ws->upstream, where, status,
                                 phrase != NULL ? " " : "", phrase != NULL ? phrase : "");
        }
      else
        why = g_strdup_printf ("%s: cannot open the socket at %s: %s", ws->upstream, where, error->message);
      attempt_free (a);
      ws_failed (ws, why);
      return;
    }
  attempt_free (a);

  ws->conn = conn;
  ws->refused_status = 0;
  ws->got_frame = FALSE;
  ws->sessions++;
  ws->state = ARB_PREDICTION_WS_OPEN;
  ws->last_rx_us = g_get_monotonic_time ();
  ws->next_ping_us = ws->last_rx_us + ws->config.ping_interval_ms * 1000;
  g_clear_pointer (&ws->reason, g_free);
  arb_instance_counter_add (ws->inst, "ws_sessions_total", 1);
  soup_websocket_connection_set_max_incoming_payload_size (conn, ws->config.max_payload);
  if (ws->config.protocol_pings)
    soup_websocket_connection_set_keepalive_interval (conn, (guint) MAX (1, ws->config.ping_interval_ms / 1000));
  g_signal_connect (conn, "message", G_CALLBACK (ws_on_message), ws);
  g_signal_connect (conn, "pong", G_CALLBACK (ws_on_pong), ws);
  g_signal_connect (conn, "error", G_CALLBACK (ws_on_error), ws);
  g_signal_connect (conn, "closed", G_CALLBACK (ws_on_closed), ws);
  ws_arm_open_timer (ws);
  if (ws->funcs.changed != NULL)
    ws->funcs.changed (ws->plugin);
  ws->funcs.opened (ws->plugin);
}

static void
ws_connect (ArbPredictionWs *ws)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, ws->url);
  Attempt *a;

  arb_instance_counter_add (ws->inst, "ws_connects_total", 1);
  if (msg == NULL)
    {
      g_autofree char *why = g_strdup_printf ("%s: %s is not a usable URL", ws->upstream, ws->url);
      ws_failed (ws, why);
      return;
    }
  if (ws->funcs.prepare != NULL && !ws->funcs.prepare (ws->plugin, msg, &error))
    {
      g_autofree char *why = g_strdup_printf ("%s: cannot prepare the handshake: %s", ws->upstream,
                                              error != NULL ? error->message : "no reason given");
      ws_failed (ws, why);
      return;
    }
  a = g_new0 (Attempt, 1);
  a->ws = ws;
  a->msg = g_steal_pointer (&msg);
  a->cancel = g_cancellable_new ();
  ws->attempt = a;
  ws->state = ARB_PREDICTION_WS_CONNECTING;
  ws_schedule (ws, ws->config.connect_timeout_ms);
  soup_session_websocket_connect_async (ws_session (ws), a->msg, NULL, NULL, G_PRIORITY_DEFAULT, a->cancel,
                                        ws_on_connected, a);
}

/* the one timer: the wait before an attempt, the handshake's timeout, or
 * (open) the heartbeat and the watch for silence */
static gboolean
ws_on_timer (gpointer data)
{
  ArbPredictionWs *ws = data;
  gint64 now, hold;

  g_clear_pointer (&ws->timer, g_source_unref);
  if (!ws->running)
    return G_SOURCE_REMOVE;
  switch (ws->state)
    {
    case ARB_PREDICTION_WS_WAITING:
      hold = arb_prediction_hold_off_ms (ws->inst);
      if (hold > 0)
        {
          /* the feed's breaker is open: leave the upstream alone */
          arb_instance_counter_add (ws->inst, "held_off_total", 1);
          ws_schedule (ws, hold);
          return G_SOURCE_REMOVE;
        }
      ws_connect (ws);
      return G_SOURCE_REMOVE;
    case ARB_PREDICTION_WS_CONNECTING:
      if (ws->attempt != NULL)
        {
          /* its callback reports it */
          ws->attempt->timed_out = TRUE;
          g_cancellable_cancel (ws->attempt->cancel);
        }
      return G_SOURCE_REMOVE;
    case ARB_PREDICTION_WS_OPEN:
      now = g_get_monotonic_time ();
      if (now - ws->last_rx_us >= ws->config.stale_after_ms * 1000)
        {
          g_autofree char *quiet = arb_prediction_format_ms ((now - ws->last_rx_us) / 1000);
          g_autofree char *where = arb_prediction_where (soup_websocket_connection_get_uri (ws->conn));
          g_autofree char *why = g_strdup_printf ("%s: the socket at %s was silent for %s (stale_after), closed",
                                                  ws->upstream, where, quiet);
          arb_instance_counter_add (ws->inst, "ws_stale_total", 1);
          ws_failed (ws, why);
          return G_SOURCE_REMOVE;
        }
      if (now >= ws->next_ping_us)
        {
          ws->next_ping_us = now + ws->config.ping_interval_ms * 1000;
          if (ws->funcs.heartbeat != NULL)
            ws->funcs.heartbeat (ws->plugin);
        }
      if (ws->conn != NULL)
        ws_arm_open_timer (ws);
      return G_SOURCE_REMOVE;
    case ARB_PREDICTION_WS_IDLE:
    default:
      return G_SOURCE_REMOVE;
    }
}

static void
ws_arm_open_timer (ArbPredictionWs *ws)
{
  gint64 now = g_get_monotonic_time ();
  gint64 stale_at = ws->last_rx_us + ws->config.stale_after_ms * 1000;
  gint64 due = MIN (stale_at, ws->next_ping_us);

  arb_prediction_timer_clear (&ws->timer);
  ws->timer = arb_prediction_timer_new (ws->inst, MAX (0, (due - now + 999) / 1000), ws_on_timer, ws);
}

static void
ws_schedule (ArbPredictionWs *ws, gint64 delay_ms)
{
  arb_prediction_timer_clear (&ws->timer);
  if (ws->state != ARB_PREDICTION_WS_CONNECTING || ws->attempt == NULL)
    ws->state = ARB_PREDICTION_WS_WAITING;
  ws->timer = arb_prediction_timer_new (ws->inst, delay_ms, ws_on_timer, ws);
}

/* ------------------------------------------------------------------------ */
/* API                                                                      */

ArbPredictionWs *
arb_prediction_ws_new (ArbInstance *inst, const char *upstream, const char *url, const ArbPredictionWsFuncs *funcs,
                       gpointer plugin, const ArbPredictionWsConfig *config)
{
  ArbPredictionWs *ws = g_new0 (ArbPredictionWs, 1);

  ws->inst = inst;
  ws->upstream = g_strdup (upstream);
  ws->url = g_strdup (url);
  ws->funcs = *funcs;
  ws->plugin = plugin;
  ws->config = *config;
  if (ws->config.ping_interval_ms <= 0)
    ws->config.ping_interval_ms = 10000;
  if (ws->config.stale_after_ms <= 0)
    ws->config.stale_after_ms = 30000;
  if (ws->config.connect_timeout_ms <= 0)
    ws->config.connect_timeout_ms = 10000;
  if (ws->config.max_payload == 0)
    ws->config.max_payload = 16 * 1024 * 1024;
  ws->state = ARB_PREDICTION_WS_IDLE;
  return ws;
}

void
arb_prediction_ws_start (ArbPredictionWs *ws)
{
  arb_prediction_ws_stop (ws);
  ws->running = TRUE;
  ws->failures = 0;
  ws_schedule (ws, 0);
}

void
arb_prediction_ws_stop (ArbPredictionWs *ws)
{
  ws->running = FALSE;
  arb_prediction_timer_clear (&ws->timer);
  if (ws->attempt != NULL)
    {
      /* its callback still runs, sees ws == NULL and only frees it */
      ws->attempt->ws = NULL;
      g_cancellable_cancel (ws->attempt->cancel);
      ws->attempt = NULL;
    }
  ws_drop_conn (ws);
  ws->state = ARB_PREDICTION_WS_IDLE;
}

void
arb_prediction_ws_free (ArbPredictionWs *ws)
{
  if (ws == NULL)
    return;
  arb_prediction_ws_stop (ws);
  g_clear_object (&ws->own_session);
  g_free (ws->upstream);
  g_free (ws->url);
  g_free (ws->reason);
  g_free (ws->error_text);
  g_free (ws);
}

gboolean
arb_prediction_ws_send (ArbPredictionWs *ws, const char *text)
{
  if (ws->conn == NULL || soup_websocket_connection_get_state (ws->conn) != SOUP_WEBSOCKET_STATE_OPEN)
    return FALSE;
  soup_websocket_connection_send_text (ws->conn, text);
  arb_instance_counter_add (ws->inst, "ws_sent_total", 1);
  return TRUE;
}

void
arb_prediction_ws_restart (ArbPredictionWs *ws, const char *why)
{
  if (!ws->running)
    return;
  arb_prediction_timer_clear (&ws->timer);
  ws_failed (ws, why);
}

ArbPredictionWsState
arb_prediction_ws_get_state (ArbPredictionWs *ws)
{
  return ws->state;
}

const char *
arb_prediction_ws_get_reason (ArbPredictionWs *ws)
{
  return ws->reason;
}

guint
arb_prediction_ws_get_failures (ArbPredictionWs *ws)
{
  return ws->failures;
}

guint
arb_prediction_ws_get_sessions (ArbPredictionWs *ws)
{
  return ws->sessions;
}

guint
arb_prediction_ws_get_refused_status (ArbPredictionWs *ws)
{
  return ws->refused_status;
}

gint64
arb_prediction_ws_get_last_rx (ArbPredictionWs *ws)
{
  return ws->last_rx_us;
}

const char *
arb_prediction_ws_get_url (ArbPredictionWs *ws)
{
  return ws->url;
}
