/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ArbIngestPoll: the request loop of a polling ingest plugin, on the host's
 * main context, asynchronous from end to end (libsoup on the shared session,
 * never a synchronous request, never a blocking read).
 *
 * One request at a time. A single host timer serves both as the wait before
 * the next request and, while a request is in flight, as its timeout. Before
 * each request the loop asks the host whether the instance should hold off
 * (its feed's circuit breaker is open); if so it sleeps that long instead,
 * sending nothing, so an upstream that is failing gets no request storm.
 *
 * The answer is read in chunks up to ARB_INGEST_MAX_BODY, then handed to the
 * plugin, which publishes what it holds and returns a verdict. The loop turns
 * verdicts into health reports, counters and the delay before the next
 * request:
 *
 *   OK, PARTIAL       interval
 *   FAILED            interval; DEGRADED for the first two in a row, then DOWN
 *   RATE_LIMITED      Retry-After (at least the interval), else doubling from
 *                     max(interval, 1 s) up to 10 min
 *   AUTH              DOWN at once; doubling from the interval up to
 *                     max(interval, 5 min)
 */

#include <string.h>

#include "arb-ingest-common.h"

/* a few failed requests in a row are "retrying"; more are "down" */
#define POLL_FAILURES_BEFORE_DOWN 3
#define POLL_RATE_LIMIT_CAP_MS    (10 * 60 * 1000)
#define POLL_AUTH_CAP_MS          (5 * 60 * 1000)
#define POLL_CHUNK                (64 * 1024)

/* Added to the plugin API with the feeds (see doc/feeds.md). Referenced
 * weakly so that these plugins still load, without the hold-off, on a host
 * built before it existed; NULL there. */
extern __typeof__ (arb_instance_get_hold_off_ms) arb_instance_get_hold_off_ms __attribute__ ((weak));

typedef struct _PollRequest PollRequest;

struct _ArbIngestPoll {
  ArbInstance        *inst;          /* borrowed; outlives the poll */
  char               *name;          /* owned: "CoinGecko", for messages */
  ArbIngestPollFuncs  funcs;
  gpointer            plugin;        /* borrowed */
  gint64              interval_ms;
  gint64              timeout_ms;
  ArbTimerFunc        timer_func;
  SoupSession        *own_session;   /* owned, nullable: when the host lends none */
  gboolean            running;
  guint               timer_id;      /* 0 when none is pending */
  PollRequest        *current;       /* in flight, nullable; owned by its callbacks */
  guint               failures;      /* FAILED in a row */
  guint               auth_failures; /* AUTH in a row */
  guint               rate_limits;   /* RATE_LIMITED in a row */
  guint64             requests;
};

struct _PollRequest {
  ArbIngestPoll *poll;      /* NULL once the poll stopped: nothing else is touched */
  SoupMessage   *msg;       /* owned */
  GCancellable  *cancel;    /* owned */
  GInputStream  *stream;    /* owned, nullable */
  GByteArray    *body;      /* owned */
  gboolean       timed_out;
  gint64         started_us;
};

static void
poll_request_free (PollRequest *req)
{
  g_clear_object (&req->msg);
  g_clear_object (&req->cancel);
  g_clear_object (&req->stream);
  g_clear_pointer (&req->body, g_byte_array_unref);
  g_free (req);
}

void
arb_ingest_verdict_set (ArbIngestVerdict *verdict, ArbIngestOutcome outcome, const char *format, ...)
{
  va_list args;

  verdict->outcome = outcome;
  g_clear_pointer (&verdict->reason, g_free);
  if (format != NULL)
    {
      va_start (args, format);
      verdict->reason = g_strdup_vprintf (format, args);
      va_end (args);
    }
}

ArbIngestPoll *
arb_ingest_poll_new (ArbInstance *inst, const char *upstream_name, const ArbIngestPollFuncs *funcs, gpointer plugin,
                     gint64 interval_ms, gint64 timeout_ms, ArbTimerFunc timer)
{
  ArbIngestPoll *poll = g_new0 (ArbIngestPoll, 1);

  poll->inst = inst;
  poll->name = g_strdup (upstream_name);
  poll->funcs = *funcs;
  poll->plugin = plugin;
  poll->interval_ms = MAX (interval_ms, 1);
  poll->timeout_ms = MAX (timeout_ms, 1);
  poll->timer_func = timer;
  return poll;
}

static void
poll_schedule (ArbIngestPoll *poll, gint64 delay_ms)
{
  if (poll->timer_id != 0)
    arb_instance_timer_cancel (poll->inst, poll->timer_id);
  poll->timer_id = arb_instance_timer_add (poll->inst, (guint) CLAMP (delay_ms, 0, (gint64) G_MAXUINT),
                                          poll->timer_func);
}

static SoupSession *
poll_session (ArbIngestPoll *poll)
{
  SoupSession *shared = arb_instance_get_soup_session (poll->inst);

  if (shared != NULL)
    return shared;
  /* a host that lends no session (a test harness): a private one, without
   * proxies, so that it never loads the desktop's proxy settings */
  if (poll->own_session == NULL)
    poll->own_session = soup_session_new_with_options ("user-agent", "arbiter-ingest", "proxy-resolver", NULL, NULL);
  return poll->own_session;
}

static gint64
poll_hold_off_ms (ArbIngestPoll *poll)
{
  if (arb_instance_get_hold_off_ms == NULL)
    return 0;
  return arb_instance_get_hold_off_ms (poll->inst);
}

static gint64
doubling (gint64 base_ms, guint n, gint64 cap_ms)
{
  gint64 ms = base_ms;

  for (guint i = 1; i < n && ms < cap_ms; i++)
    ms *= 2;
  return MIN (ms, cap_ms);
}

static char *
poll_where (SoupMessage *msg)
{
  GUri *uri = soup_message_get_uri (msg);
  int port = g_uri_get_port (uri);

  if (port > 0)
    return g_strdup_printf ("%s://%s:%d", g_uri_get_scheme (uri), g_uri_get_host (uri), port);
  return g_strdup_printf ("%s://%s", g_uri_get_scheme (uri), g_uri_get_host (uri));
}

/* the verdict of a request → health, counters, and when to ask again */
static void
poll_apply (ArbIngestPoll *poll, ArbIngestVerdict *verdict)
{
  ArbInstance *inst = poll->inst;
  const char *reason = verdict->reason != NULL ? verdict->reason : "no reason given";
  gint64 delay_ms = poll->interval_ms;

  switch (verdict->outcome)
    {
    case ARB_INGEST_OK:
      poll->failures = poll->auth_failures = poll->rate_limits = 0;
      arb_instance_set_health (inst, ARB_HEALTH_OK, NULL);
      break;
    case ARB_INGEST_PARTIAL:
      poll->failures = poll->auth_failures = poll->rate_limits = 0;
      arb_instance_set_health (inst, ARB_HEALTH_DEGRADED, "%s", reason);
      break;
    case ARB_INGEST_RATE_LIMITED:
      {
        g_autofree char *wait = NULL;

        poll->rate_limits++;
        arb_instance_counter_add (inst, "rate_limited_total", 1);
        if (verdict->retry_after_ms > 0)
          delay_ms = MAX (verdict->retry_after_ms, poll->interval_ms);
        else
          delay_ms = doubling (MAX (poll->interval_ms, 1000), poll->rate_limits,
                               MAX (POLL_RATE_LIMIT_CAP_MS, poll->interval_ms));
        wait = delay_ms % 1000 == 0 ? g_strdup_printf ("%" G_GINT64_FORMAT " s", delay_ms / 1000)
                                    : g_strdup_printf ("%" G_GINT64_FORMAT " ms", delay_ms);
        arb_instance_set_health (inst, ARB_HEALTH_DEGRADED, "rate limited, next request in %s: %s", wait, reason);
        break;
      }
    case ARB_INGEST_AUTH:
      poll->auth_failures++;
      arb_instance_counter_add (inst, "request_errors_total", 1);
      delay_ms = doubling (poll->interval_ms, poll->auth_failures, MAX (POLL_AUTH_CAP_MS, poll->interval_ms));
      arb_instance_set_health (inst, ARB_HEALTH_DOWN, "%s", reason);
      break;
    case ARB_INGEST_FAILED:
    default:
      poll->failures++;
      arb_instance_counter_add (inst, "request_errors_total", 1);
      if (poll->failures < POLL_FAILURES_BEFORE_DOWN)
        arb_instance_set_health (inst, ARB_HEALTH_DEGRADED, "retrying: %s", reason);
      else
        arb_instance_set_health (inst, ARB_HEALTH_DOWN, "%s", reason);
      break;
    }
  if (poll->running)
    poll_schedule (poll, delay_ms);
}

static void
poll_fail (ArbIngestPoll *poll, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
poll_fail (ArbIngestPoll *poll, const char *format, ...)
{
  ArbIngestVerdict verdict = { ARB_INGEST_FAILED, NULL, 0 };
  va_list args;

  va_start (args, format);
  verdict.reason = g_strdup_vprintf (format, args);
  va_end (args);
  poll_apply (poll, &verdict);
  g_free (verdict.reason);
}

/* the request is over, one way or another: it stops being current */
static ArbIngestPoll *
poll_request_finish (PollRequest *req)
{
  ArbIngestPoll *poll = req->poll;

  if (poll == NULL)
    return NULL;
  poll->current = NULL;
  if (poll->timer_id != 0)
    {
      arb_instance_timer_cancel (poll->inst, poll->timer_id);
      poll->timer_id = 0;
    }
  arb_instance_histogram_observe (poll->inst, "request_duration_seconds",
                                  (gdouble) (g_get_monotonic_time () - req->started_us) / G_USEC_PER_SEC);
  return poll;
}

static void
poll_request_failed (PollRequest *req, GError *error)
{
  ArbIngestPoll *poll = poll_request_finish (req);
  g_autofree char *where = poll_where (req->msg);

  if (req->timed_out)
    poll_fail (poll, "%s: no answer from %s within %" G_GINT64_FORMAT " ms", poll->name, where, poll->timeout_ms);
  else if (req->body->len > 0 || req->stream != NULL)
    poll_fail (poll, "%s: the answer from %s broke off after %u bytes: %s", poll->name, where, req->body->len,
               error->message);
  else
    poll_fail (poll, "%s: cannot reach %s: %s", poll->name, where, error->message);
}

static void
poll_request_complete (PollRequest *req)
{
  ArbIngestPoll *poll = poll_request_finish (req);
  g_autoptr(GBytes) body = g_byte_array_free_to_bytes (g_steal_pointer (&req->body));
  ArbIngestVerdict verdict = { ARB_INGEST_OK, NULL, 0 };

  req->body = g_byte_array_new ();
  poll->funcs.handle_answer (poll->plugin, req->msg, body, &verdict);
  poll_apply (poll, &verdict);
  g_free (verdict.reason);
}

static void poll_on_read (GObject *source, GAsyncResult *result, gpointer data);

static void
poll_read_more (PollRequest *req)
{
  g_input_stream_read_bytes_async (req->stream, POLL_CHUNK, G_PRIORITY_DEFAULT, req->cancel, poll_on_read, req);
}

static void
poll_on_read (GObject *source, GAsyncResult *result, gpointer data)
{
  PollRequest *req = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  if (req->poll == NULL)
    {
      /* stopped: the poll and the plugin may be gone */
      poll_request_free (req);
      return;
    }
  if (chunk == NULL)
    {
      poll_request_failed (req, error);
      poll_request_free (req);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      poll_request_complete (req);
      poll_request_free (req);
      return;
    }
  if (req->body->len + g_bytes_get_size (chunk) > ARB_INGEST_MAX_BODY)
    {
      ArbIngestPoll *poll = poll_request_finish (req);
      g_autofree char *where = poll_where (req->msg);

      g_cancellable_cancel (req->cancel);
      poll_fail (poll, "%s: the answer from %s is larger than %d bytes", poll->name, where, ARB_INGEST_MAX_BODY);
      poll_request_free (req);
      return;
    }
  g_byte_array_append (req->body, g_bytes_get_data (chunk, NULL), (guint) g_bytes_get_size (chunk));
  poll_read_more (req);
}

static void
poll_on_sent (GObject *source, GAsyncResult *result, gpointer data)
{
  PollRequest *req = data;
  g_autoptr(GError) error = NULL;

  req->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (req->poll == NULL)
    {
      poll_request_free (req);
      return;
    }
  if (req->stream == NULL)
    {
      poll_request_failed (req, error);
      poll_request_free (req);
      return;
    }
  poll_read_more (req);
}

static void
poll_send (ArbIngestPoll *poll)
{
  g_autoptr(GError) error = NULL;
  SoupMessage *msg;
  PollRequest *req;
  SoupMessageHeaders *headers;
  gint64 hold_ms = poll_hold_off_ms (poll);

  if (hold_ms > 0)
    {
      /* the feed's breaker for this source is open: ask nothing of the upstream */
      arb_instance_counter_add (poll->inst, "held_off_total", 1);
      poll_schedule (poll, hold_ms);
      return;
    }

  msg = poll->funcs.build_request (poll->plugin, &error);
  if (msg == NULL)
    {
      ArbIngestVerdict verdict = { ARB_INGEST_AUTH, NULL, 0 };
      verdict.reason = g_strdup (error != NULL ? error->message : "cannot build the request");
      poll_apply (poll, &verdict);
      g_free (verdict.reason);
      return;
    }
  headers = soup_message_get_request_headers (msg);
  if (soup_message_headers_get_one (headers, "Accept") == NULL)
    soup_message_headers_replace (headers, "Accept", "application/json");

  req = g_new0 (PollRequest, 1);
  req->poll = poll;
  req->msg = msg;
  req->cancel = g_cancellable_new ();
  req->body = g_byte_array_new ();
  req->started_us = g_get_monotonic_time ();
  poll->current = req;
  poll->requests++;
  arb_instance_counter_add (poll->inst, "requests_total", 1);
  /* while it is in flight, the one timer is its timeout */
  poll_schedule (poll, poll->timeout_ms);
  soup_session_send_async (poll_session (poll), msg, G_PRIORITY_DEFAULT, req->cancel, poll_on_sent, req);
}

gboolean
arb_ingest_poll_on_timer (ArbIngestPoll *poll)
{
  /* the source goes away when we return; a new timer is added as needed */
  poll->timer_id = 0;
  if (!poll->running)
    return G_SOURCE_REMOVE;
  if (poll->current != NULL)
    {
      /* the request's time is up; its callback reports it */
      poll->current->timed_out = TRUE;
      g_cancellable_cancel (poll->current->cancel);
      return G_SOURCE_REMOVE;
    }
  poll_send (poll);
  return G_SOURCE_REMOVE;
}

void
arb_ingest_poll_start (ArbIngestPoll *poll)
{
  arb_ingest_poll_stop (poll);
  poll->running = TRUE;
  poll->failures = poll->auth_failures = poll->rate_limits = 0;
  poll_schedule (poll, 0);
}

void
arb_ingest_poll_stop (ArbIngestPoll *poll)
{
  poll->running = FALSE;
  if (poll->timer_id != 0)
    arb_instance_timer_cancel (poll->inst, poll->timer_id);
  poll->timer_id = 0;
  if (poll->current != NULL)
    {
      /* its callbacks still run, see poll == NULL and only free it */
      poll->current->poll = NULL;
      g_cancellable_cancel (poll->current->cancel);
      poll->current = NULL;
    }
  g_clear_object (&poll->own_session);
}

void
arb_ingest_poll_free (ArbIngestPoll *poll)
{
  if (poll == NULL)
    return;
  arb_ingest_poll_stop (poll);
  g_free (poll->name);
  g_free (poll);
}

guint64
arb_ingest_poll_get_requests (ArbIngestPoll *poll)
{
  return poll->requests;
}
