/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "arb-api-private.h"
#include "arb-host-private.h"
#include "arb-util-private.h"

struct _ArbHttp {
  ArbHost    *host;
  SoupServer *server;
  guint16     port;
};

#define REQUEST_START_KEY "arb-request-start"
#define ROUTE_KEY         "arb-route"
#define CID_KEY           "arb-correlation-id"

static void
escape_json_string (GString *s, const char *text)
{
  g_string_append_c (s, '"');
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (s, "\\%c", *p);
      else if (*p < 0x20)
        g_string_append_printf (s, "\\u%04x", *p);
      else
        g_string_append_c (s, (char) *p);
    }
  g_string_append_c (s, '"');
}

void
arb_http_reply_text (gpointer msg, guint status, const char *content_type, const char *text)
{
  SoupServerMessage *m = msg;
  soup_server_message_set_status (m, status, NULL);
  soup_server_message_set_response (m, content_type, SOUP_MEMORY_COPY, text, strlen (text));
}

void
arb_http_reply_json (gpointer msg, guint status, const char *json)
{
  arb_http_reply_text (msg, status, "application/json", json);
}

static void
reply_error (SoupServerMessage *msg, guint status, const char *code, const char *message)
{
  g_autoptr(GString) s = g_string_new ("{\"error\":{\"code\":");
  const char *cid = g_object_get_data (G_OBJECT (msg), CID_KEY);
  escape_json_string (s, code);
  g_string_append (s, ",\"message\":");
  escape_json_string (s, message);
  g_string_append (s, ",\"correlationId\":");
  escape_json_string (s, cid != NULL ? cid : "");
  g_string_append (s, "}}");
  arb_http_reply_json (msg, status, s->str);
}

static void
on_finished (SoupServerMessage *msg, gpointer user_data)
{
  ArbHttp *http = user_data;
  gint64 *start = g_object_get_data (G_OBJECT (msg), REQUEST_START_KEY);
  const char *route = g_object_get_data (G_OBJECT (msg), ROUTE_KEY);
  g_autofree char *status = g_strdup_printf ("%u", soup_server_message_get_status (msg));
  g_autofree char *labels = arb_metrics_labels ("method", soup_server_message_get_method (msg), "route",
                                                route != NULL ? route : "other", "status", status, NULL);
  if (start != NULL)
    arb_metrics_histogram_observe (http->host->metrics, "arb_http_request_duration_seconds", labels,
                                   (gdouble) (g_get_monotonic_time () - *start) / G_USEC_PER_SEC);
}

/* the route template, so that metrics do not grow a series per id */
static const char *
api_route (const char *path)
{
  if (g_str_has_prefix (path, "/assessments/") && g_str_has_suffix (path, "/events"))
    return "/assessments/{id}/events";
  if (g_str_has_prefix (path, "/assessments/"))
    return "/assessments/{id}";
  if (g_str_has_prefix (path, "/positions/"))
    return "/positions/{id}/close";
  return g_intern_string (path);
}

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  ArbHttp *http = user_data;
  ArbHost *host = http->host;
  const char *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *given = soup_message_headers_get_one (req, "X-Correlation-ID");
  g_autofree char *cid = arb_correlation_id_is_valid (given) ? g_strdup (given) : arb_uuid_new ();
  gint64 *start = g_new (gint64, 1);
  char *prev;
  const char *route = NULL;

  *start = g_get_monotonic_time ();
  g_object_set_data_full (G_OBJECT (msg), REQUEST_START_KEY, start, g_free);
  g_object_set_data_full (G_OBJECT (msg), CID_KEY, g_strdup (cid), g_free);
  g_signal_connect (msg, "finished", G_CALLBACK (on_finished), http);
  soup_message_headers_replace (resp, "X-Correlation-ID", cid);
  soup_message_headers_replace (resp, "Cache-Control", "no-store");
  prev = arb_correlation_set (cid);

  if (g_str_equal (path, "/health") || g_str_equal (path, "/ready") || g_str_equal (path, "/metrics"))
    {
      route = path;
      if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD"))
        {
          soup_message_headers_replace (resp, "Allow", "GET, HEAD");
          reply_error (msg, 405, "METHOD_NOT_ALLOWED", "use GET");
        }
      else if (g_str_equal (path, "/health"))
        {
          /* liveness: the main loop answered; readiness is /ready */
          g_autofree char *body = g_strdup_printf ("{\"status\":\"ok\",\"version\":\"%s\",\"uptimeSeconds\":%"
                                                   G_GINT64_FORMAT "}",
                                                   ARB_VERSION, (arb_now_us () - host->started_us) / G_USEC_PER_SEC);
          arb_http_reply_json (msg, 200, body);
        }
      else if (g_str_equal (path, "/ready"))
        {
          gboolean ready = FALSE;
          g_autofree char *body = arb_host_ready_json (host, &ready);
          arb_http_reply_json (msg, ready ? 200 : 503, body);
        }
      else
        {
          g_autofree char *body = arb_metrics_render (host->metrics);
          arb_http_reply_text (msg, 200, "text/plain; version=0.0.4; charset=utf-8", body);
        }
    }
  else if (host->api != NULL && arb_api_handle (host->api, msg, path, cid))
    route = api_route (path);
  else
    {
      g_autofree char *m = g_strdup_printf ("no route for %s %s", method, path);
      reply_error (msg, 404, "NOT_FOUND", m);
    }
  g_object_set_data_full (G_OBJECT (msg), ROUTE_KEY, g_strdup (route), g_free);
  arb_correlation_restore (prev);
}

/* a body over the limit is refused on its headers, before it is read */
static void
early (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  goffset length = soup_message_headers_get_content_length (req);

  if (soup_message_headers_get_encoding (req) == SOUP_ENCODING_CONTENT_LENGTH && length > ARB_HTTP_MAX_BODY)
    {
      const char *given = soup_message_headers_get_one (req, "X-Correlation-ID");
      g_autofree char *cid = arb_correlation_id_is_valid (given) ? g_strdup (given) : arb_uuid_new ();
      g_autofree char *m = g_strdup_printf ("the body is %" G_GOFFSET_FORMAT " bytes; the limit is %d", length,
                                            ARB_HTTP_MAX_BODY);
      g_object_set_data_full (G_OBJECT (msg), CID_KEY, g_strdup (cid), g_free);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Correlation-ID", cid);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      reply_error (msg, 413, "PAYLOAD_TOO_LARGE", m);
    }
}

ArbHttp *
arb_http_new (ArbHost *host)
{
  ArbHttp *http = g_new0 (ArbHttp, 1);
  g_autofree char *header = g_strdup_printf ("arbiterd/%s", ARB_VERSION);
  http->host = host;
  http->server = soup_server_new ("server-header", header, NULL);
  soup_server_add_early_handler (http->server, NULL, early, http, NULL);
  soup_server_add_handler (http->server, NULL, handle, http, NULL);
  return http;
}

void
arb_http_free (ArbHttp *http)
{
  if (http == NULL)
    return;
  soup_server_disconnect (http->server);
  g_object_unref (http->server);
  g_free (http);
}

gboolean
arb_http_listen (ArbHttp *http, const char *host, guint16 port, GError **error)
{
  g_autoptr(GInetAddress) addr = g_inet_address_new_from_string (host);
  g_autoptr(GSocketAddress) sa = NULL;
  GSList *listeners;

  if (addr == NULL)
    {
      if (g_str_equal (host, "localhost"))
        addr = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      else
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "listen: \"%s\" is not an IP address (write 127.0.0.1, 0.0.0.0 or [::1])", host);
          return FALSE;
        }
    }
  sa = g_inet_socket_address_new (addr, port);
  if (!soup_server_listen (http->server, sa, 0, error))
    {
      g_prefix_error (error, "listen on %s:%u: ", host, port);
      return FALSE;
    }
  /* the port actually bound (listen=HOST:0); soup_server_get_uris() leaks a
   * GSocketAddress in libsoup 3.2, so ask the listening socket directly */
  listeners = soup_server_get_listeners (http->server);
  if (listeners != NULL)
    {
      g_autoptr(GSocketAddress) local = g_socket_get_local_address (listeners->data, NULL);
      if (local != NULL)
        http->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
    }
  g_slist_free (listeners);
  return TRUE;
}

guint16
arb_http_get_port (ArbHttp *http)
{
  return http->port;
}

void
arb_http_stop_listening (ArbHttp *http)
{
  GSList *listeners;
  if (http == NULL)
    return;
  listeners = soup_server_get_listeners (http->server);
  for (GSList *l = listeners; l != NULL; l = l->next)
    g_socket_close (l->data, NULL);
  g_slist_free (listeners);
}

void
arb_http_disconnect (ArbHttp *http)
{
  if (http != NULL)
    soup_server_disconnect (http->server);
}
