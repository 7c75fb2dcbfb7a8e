/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Health of a sink that talks to a server (sink-kafka, sink-redis,
 * sink-postgres): the reports come from several threads (the relay's worker,
 * the plugin's own thread, a client library's threads), so the state lives
 * here under a lock and every report is passed on to the host, which logs a
 * repeated one only once.
 *
 * A server that cannot be reached is DEGRADED for the first `down_after`
 * milliseconds and DOWN after that: a connection that drops and comes back at
 * once (a broker restart, a failover) does not flap /ready, and a sink
 * started before its server is up is "connecting", not down. Whoever notices
 * that the server is back calls sink_health_ok(). */

#include <stdarg.h>

#include <arbiter/arb-plugin.h>

typedef struct {
  ArbInstance *inst;              /* borrowed */
  GMutex       lock;
  ArbHealth    health;            /* as last reported */
  char        *reason;            /* owned, nullable */
  gint64       trouble_since_us;  /* monotonic; 0 while the server answers */
  gint64       down_after_us;
} SinkHealth;

static inline void
sink_health_init (SinkHealth *h, ArbInstance *inst, gint64 down_after_ms)
{
  h->inst = inst;
  g_mutex_init (&h->lock);
  h->health = ARB_HEALTH_OK;
  h->reason = NULL;
  h->trouble_since_us = 0;
  h->down_after_us = down_after_ms * 1000;
}

static inline void
sink_health_clear (SinkHealth *h)
{
  g_mutex_clear (&h->lock);
  g_clear_pointer (&h->reason, g_free);
}

/* with the lock held; reports after the lock is released */
static inline void
sink_health_set_locked (SinkHealth *h, ArbHealth health, char *reason /* owned */)
{
  g_free (h->reason);
  h->reason = reason;
  h->health = health;
}

static inline void
sink_health_report (SinkHealth *h)
{
  ArbHealth health;
  g_autofree char *reason = NULL;

  g_mutex_lock (&h->lock);
  health = h->health;
  reason = g_strdup (h->reason);
  g_mutex_unlock (&h->lock);
  arb_instance_set_health (h->inst, health, "%s", reason != NULL ? reason : "");
}

/* the server answers */
static inline void sink_health_ok (SinkHealth *h, const char *format, ...) G_GNUC_PRINTF (2, 3);
static inline void
sink_health_ok (SinkHealth *h, const char *format, ...)
{
  va_list args;
  char *reason;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_mutex_lock (&h->lock);
  h->trouble_since_us = 0;
  sink_health_set_locked (h, ARB_HEALTH_OK, reason);
  g_mutex_unlock (&h->lock);
  sink_health_report (h);
}

/* the server cannot be reached: DEGRADED within the grace, DOWN after it */
static inline void sink_health_unreachable (SinkHealth *h, const char *format, ...) G_GNUC_PRINTF (2, 3);
static inline void
sink_health_unreachable (SinkHealth *h, const char *format, ...)
{
  gint64 now = g_get_monotonic_time ();
  va_list args;
  char *what;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_mutex_lock (&h->lock);
  if (h->trouble_since_us == 0)
    h->trouble_since_us = now;
  if (now - h->trouble_since_us >= h->down_after_us)
    sink_health_set_locked (h, ARB_HEALTH_DOWN, what);
  else
    {
      sink_health_set_locked (h, ARB_HEALTH_DEGRADED, g_strdup_printf ("%s (down after %" G_GINT64_FORMAT " ms)",
                                                                       what, h->down_after_us / 1000));
      g_free (what);
    }
  g_mutex_unlock (&h->lock);
  sink_health_report (h);
}

/* working with trouble (a failed delivery while the server answers) */
static inline void sink_health_degraded (SinkHealth *h, const char *format, ...) G_GNUC_PRINTF (2, 3);
static inline void
sink_health_degraded (SinkHealth *h, const char *format, ...)
{
  va_list args;
  char *reason;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_mutex_lock (&h->lock);
  /* an unreachable server is the bigger news */
  if (h->trouble_since_us != 0)
    g_free (reason);
  else
    sink_health_set_locked (h, ARB_HEALTH_DEGRADED, reason);
  g_mutex_unlock (&h->lock);
  sink_health_report (h);
}

/* not working, whatever the grace (a fatal client error) */
static inline void sink_health_down (SinkHealth *h, const char *format, ...) G_GNUC_PRINTF (2, 3);
static inline void
sink_health_down (SinkHealth *h, const char *format, ...)
{
  va_list args;
  char *reason;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_mutex_lock (&h->lock);
  if (h->trouble_since_us == 0)
    h->trouble_since_us = g_get_monotonic_time () - h->down_after_us;
  sink_health_set_locked (h, ARB_HEALTH_DOWN, reason);
  g_mutex_unlock (&h->lock);
  sink_health_report (h);
}

static inline gboolean
sink_health_is_ok (SinkHealth *h)
{
  gboolean ok;

  g_mutex_lock (&h->lock);
  ok = h->health == ARB_HEALTH_OK;
  g_mutex_unlock (&h->lock);
  return ok;
}

/* Called now and then by the plugin's own thread: turns a DEGRADED outage
 * into DOWN once the grace is over, and reports the state again (the host
 * drops repeats), which also heals a report that raced with start. */
static inline void
sink_health_tick (SinkHealth *h)
{
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&h->lock);
  if (h->trouble_since_us != 0 && h->health == ARB_HEALTH_DEGRADED && now - h->trouble_since_us >= h->down_after_us
      && h->reason != NULL)
    {
      /* the reason without the "(down after N ms)" tail */
      char *cut = g_strrstr (h->reason, " (down after ");
      char *reason = cut != NULL ? g_strndup (h->reason, (gsize) (cut - h->reason)) : g_strdup (h->reason);
      sink_health_set_locked (h, ARB_HEALTH_DOWN, reason);
    }
  g_mutex_unlock (&h->lock);
  sink_health_report (h);
}
