/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* sink-jsonl: appends every event to a file, one JSON envelope a line, and
 * acknowledges an event only once it is written and, by the fsync policy,
 * synced. See README.md for the contract with operators. */

#define _GNU_SOURCE /* IOV_MAX, flock */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <arbiter/arb-plugin.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* how often write() checks whether the path still names the open file */
#define ROTATION_CHECK_US G_USEC_PER_SEC

typedef enum {
  FSYNC_ALWAYS,
  FSYNC_INTERVAL,
  FSYNC_NEVER,
} FsyncPolicy;

typedef struct {
  ArbInstance *inst;             /* borrowed; outlives us */
  char        *path;             /* owned, absolute */
  FsyncPolicy  policy;
  gint64       interval_us;
  gsize        max_line_bytes;

  int          fd;               /* -1 while closed */
  dev_t        dev;              /* of fd, to notice rotation */
  ino_t        ino;
  gboolean     need_newline;     /* the file ends in a torn line */
  gboolean     dir_sync_pending; /* we created the file; its directory entry is not durable yet */
  gint64       last_sync_us;     /* monotonic */
  gint64       last_check_us;    /* monotonic, last rotation check */
  gboolean     down;             /* health is DOWN because of us */
  gboolean     warned_multiline;

  GPtrArray   *pending;          /* owned, element-type ArbEvent (refs): written, waiting for a sync */
  GPtrArray   *accepted;         /* owned, element-type ArbEvent (borrowed): scratch for one batch */
  GPtrArray   *copies;           /* owned, element-type utf8: scratch, cleaned-up envelopes */
  GArray      *iov;              /* owned, element-type struct iovec: scratch */
} JsonlSink;

/* the one newline every line ends with; compared by address in write_all() */
static const char newline = '\n';

static const ArbConfigKey jsonl_config[] = {
  { "path", ARB_CFG_PATH, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "file to append to (created with its directories, mode 0640); relative to the config file's directory" },
  { "fsync", ARB_CFG_ENUM, ARB_CFG_NONE, "interval", 0, 0, "always,interval,never",
    "when to fdatasync before acknowledging: after every batch, every fsync_interval and when idle, or never" },
  { "fsync_interval", ARB_CFG_DURATION, ARB_CFG_NONE, "1s", 1, 3600000, NULL,
    "with fsync=interval, the longest time between syncs while events keep coming" },
  { "max_line_bytes", ARB_CFG_INT, ARB_CFG_NONE, "1048576", 64, 1073741824, NULL,
    "longest line written, newline included; a longer event is refused (acknowledged with an error)" },
  { NULL },
};

/* "<what happened>: <errno text>" */
static GError *errno_error (int code, int errsv, const char *format, ...) G_GNUC_PRINTF (3, 4);
static GError *
errno_error (int code, int errsv, const char *format, ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  return g_error_new (ARB_PLUGIN_ERROR, code, "%s: %s", what, g_strerror (errsv));
}

/* errors that retrying cannot cure: the path itself is wrong */
static int
path_error_code (int errsv)
{
  if (errsv == EISDIR || errsv == ENOTDIR || errsv == ENAMETOOLONG || errsv == ELOOP)
    return ARB_PLUGIN_ERROR_CONFIG;
  return ARB_PLUGIN_ERROR_UNAVAILABLE;
}

static void
ack_all (JsonlSink *self, GPtrArray *events, const GError *error)
{
  for (guint i = 0; i < events->len; i++)
    arb_instance_ack (self->inst, g_ptr_array_index (events, i), error);
  g_ptr_array_set_size (events, 0);
}

/* the one way a failure leaves write() or flush(): counted, DOWN, reported */
static gboolean
fail (JsonlSink *self, GError *local, GError **error)
{
  arb_instance_counter_add (self->inst, "write_errors_total", 1);
  arb_instance_set_health (self->inst, ARB_HEALTH_DOWN, "%s", local->message);
  self->down = TRUE;
  g_propagate_error (error, local);
  return FALSE;
}

static void
mark_ok (JsonlSink *self)
{
  if (!self->down)
    return;
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, "appending to %s", self->path);
  self->down = FALSE;
}

static int
open_retry (const char *path, int flags)
{
  int fd;

  do
    fd = open (path, flags, 0640);
  while (fd < 0 && errno == EINTR);
  return fd;
}

static gboolean
open_file (JsonlSink *self, GError **error)
{
  const int flags = O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY;
  g_autofree char *dir = g_path_get_dirname (self->path);
  gboolean readable = TRUE;
  gboolean created;
  struct stat st;
  int fd;

  g_assert (self->fd < 0);

  if (g_mkdir_with_parents (dir, 0750) != 0)
    {
      int errsv = errno;
      g_propagate_error (error, errno_error (path_error_code (errsv), errsv, "cannot create directory %s", dir));
      return FALSE;
    }

  /* a race with another creator only costs one needless directory sync */
  created = g_stat (self->path, &st) != 0 && errno == ENOENT;

  /* read access only serves the torn-line check below; do without it if we must */
  fd = open_retry (self->path, O_RDWR | flags);
  if (fd < 0 && errno == EACCES)
    {
      fd = open_retry (self->path, O_WRONLY | flags);
      readable = FALSE;
    }
  if (fd < 0)
    {
      int errsv = errno;
      g_propagate_error (error, errno_error (path_error_code (errsv), errsv, "cannot open %s for appending",
                                             self->path));
      return FALSE;
    }

  if (fstat (fd, &st) != 0)
    {
      int errsv = errno;
      close (fd);
      g_propagate_error (error, errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "cannot stat %s", self->path));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "%s is not a regular file", self->path);
      return FALSE;
    }

  /* two writers appending to one file would tear each other's lines and
   * defeat the torn-line repair; flock conflicts between open file
   * descriptions, so this also catches two instances of this process */
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int errsv = errno;
      close (fd);
      if (errsv == EWOULDBLOCK)
        g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                     "%s is locked by another writer (another sink instance or process appends to it)",
                     self->path);
      else
        g_propagate_error (error, errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "cannot lock %s", self->path));
      return FALSE;
    }

  self->need_newline = FALSE;
  if (st.st_size > 0 && readable)
    {
      char last = '\n';
      ssize_t r;

      do
        r = pread (fd, &last, 1, st.st_size - 1);
      while (r < 0 && errno == EINTR);
      /* the last line was cut short (a crash mid-write): end it first, so the next line is whole */
      if (r == 1 && last != '\n')
        {
          self->need_newline = TRUE;
          arb_warning (self->inst, "%s ends in an incomplete line; the next write ends it first", self->path);
        }
    }
  else if (st.st_size > 0)
    arb_info (self->inst, "%s is not readable; assuming its last line is whole", self->path);

  self->fd = fd;
  self->dev = st.st_dev;
  self->ino = st.st_ino;
  self->dir_sync_pending = created && self->policy != FSYNC_NEVER;
  self->last_sync_us = g_get_monotonic_time ();
  self->last_check_us = self->last_sync_us;
  return TRUE;
}

/* @reason: why events written but not yet synced are given up, if any are */
static void
close_file (JsonlSink *self, const char *reason)
{
  if (self->pending->len > 0)
    {
      g_autoptr(GError) error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_UNAVAILABLE,
                                             "%s: %s before %u events were synced",
                                             self->path, reason, self->pending->len);
      ack_all (self, self->pending, error);
    }
  if (self->fd < 0)
    return;
  /* the lock goes with the descriptor */
  if (close (self->fd) != 0)
    arb_warning (self->inst, "closing %s: %s", self->path, g_strerror (errno));
  self->fd = -1;
}

static gboolean
sync_dir (JsonlSink *self, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (self->path);
  int fd = open_retry (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc;

  if (fd < 0)
    {
      int errsv = errno;
      g_propagate_error (error, errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "cannot open directory %s", dir));
      return FALSE;
    }
  do
    rc = fsync (fd);
  while (rc != 0 && errno == EINTR);
  if (rc != 0)
    {
      int errsv = errno;
      close (fd);
      g_propagate_error (error, errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "fsync of directory %s failed", dir));
      return FALSE;
    }
  close (fd);
  self->dir_sync_pending = FALSE;
  return TRUE;
}

/* Makes everything written so far durable and acknowledges the pending
 * events, with success or with the error. Never retries a failed
 * fdatasync: the kernel may already have dropped the dirty pages, so a
 * second call that succeeds proves nothing about them. */
static gboolean
sync_pending (JsonlSink *self, GError **error)
{
  g_autoptr(GError) local = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gint64 t1;
  int rc;

  if (self->dir_sync_pending && !sync_dir (self, &local))
    {
      ack_all (self, self->pending, local);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }

  do
    rc = fdatasync (self->fd);
  while (rc != 0 && errno == EINTR);
  t1 = g_get_monotonic_time ();
  arb_instance_histogram_observe (self->inst, "fsync_seconds", (gdouble) (t1 - t0) / G_USEC_PER_SEC);

  if (rc != 0)
    {
      int errsv = errno;
      local = errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "fdatasync of %s failed", self->path);
      ack_all (self, self->pending, local);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }

  arb_instance_counter_add (self->inst, "fsyncs_total", 1);
  self->last_sync_us = t1;
  ack_all (self, self->pending, NULL);
  return TRUE;
}

/* TRUE when the path no longer names the open file: rotated away by a
 * rename, or deleted. Checked at most once a second. */
static gboolean
file_was_replaced (JsonlSink *self)
{
  gint64 now = g_get_monotonic_time ();
  struct stat st;

  if (now - self->last_check_us < ROTATION_CHECK_US)
    return FALSE;
  self->last_check_us = now;
  if (g_stat (self->path, &st) != 0)
    return errno == ENOENT; /* anything else: keep appending where we are */
  return st.st_dev != self->dev || st.st_ino != self->ino;
}

/* opens the file again after a failed open or a rotation */
static gboolean
ensure_open (JsonlSink *self, GError **error)
{
  if (self->fd >= 0 && !file_was_replaced (self))
    return TRUE;

  if (self->fd >= 0)
    {
      arb_info (self->inst, "%s was renamed or deleted; reopening it", self->path);
      /* what went to the old file is acknowledged against the old file;
       * should that sync fail, its events are failed and the batch at hand
       * with them, and the next write opens the new file */
      if (self->pending->len > 0 && !sync_pending (self, error))
        {
          close_file (self, "reopened");
          return FALSE;
        }
      close_file (self, "reopened");
    }
  return open_file (self, error);
}

/* Writes all of @iov, across short writes, EINTR and IOV_MAX. Returns 0 or
 * an errno; @written counts the bytes that reached the file either way and
 * @ends_clean says whether they end on a line boundary. */
static int
write_all (int fd, struct iovec *iov, int iovcnt, gsize *written, gboolean *ends_clean)
{
  *written = 0;
  while (iovcnt > 0)
    {
      ssize_t r = writev (fd, iov, MIN (iovcnt, IOV_MAX));

      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return errno;
      if (r == 0)
        return EIO; /* no progress on a regular file; never spin */
      *written += r;
      while (iovcnt > 0 && (gsize) r >= iov->iov_len)
        {
          r -= iov->iov_len;
          *ends_clean = iov->iov_base == &newline;
          iov++;
          iovcnt--;
        }
      if (r > 0)
        {
          iov->iov_base = (char *) iov->iov_base + r;
          iov->iov_len -= r;
          *ends_clean = FALSE;
        }
    }
  return 0;
}

static void
push_iov (GArray *iov, const void *base, gsize len)
{
  struct iovec v = { (void *) base, len };
  g_array_append_val (iov, v);
}

/* Takes the event into this batch's lines, or acknowledges it with an error
 * now when it cannot be written at all. */
static void
accept_event (JsonlSink *self, ArbEvent *ev)
{
  const char *json = arb_event_get_json (ev);
  gsize len = json != NULL ? arb_event_get_json_length (ev) : 0;

  if (len == 0)
    {
      g_autoptr(GError) error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL,
                                             "event %s has no JSON envelope", arb_event_get_id (ev));
      arb_instance_counter_add (self->inst, "events_rejected_total", 1);
      arb_instance_ack (self->inst, ev, error);
      return;
    }
  if (len + 1 > self->max_line_bytes)
    {
      g_autoptr(GError) error = g_error_new (ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_FATAL,
                                             "event %s is %" G_GSIZE_FORMAT " bytes, above max_line_bytes=%"
                                             G_GSIZE_FORMAT, arb_event_get_id (ev), len, self->max_line_bytes);
      arb_instance_counter_add (self->inst, "events_rejected_total", 1);
      arb_instance_ack (self->inst, ev, error);
      return;
    }

  /* The envelope is promised to be one line. Should a raw CR or LF slip
   * in anyway, it can only be whitespace between JSON tokens (inside a JSON
   * string it would be invalid), so a space in its place keeps the same
   * document and keeps the file one event a line. */
  if (memchr (json, '\n', len) != NULL || memchr (json, '\r', len) != NULL)
    {
      char *copy = g_memdup2 (json, len);

      for (gsize i = 0; i < len; i++)
        if (copy[i] == '\n' || copy[i] == '\r')
          copy[i] = ' ';
      g_ptr_array_add (self->copies, copy);
      json = copy;
      if (!self->warned_multiline)
        {
          arb_warning (self->inst, "event %s came as several lines; writing it as one (reported once)",
                       arb_event_get_id (ev));
          self->warned_multiline = TRUE;
        }
    }

  push_iov (self->iov, json, len);
  push_iov (self->iov, &newline, 1);
  g_ptr_array_add (self->accepted, ev);
}

static void
clear_scratch (JsonlSink *self)
{
  g_ptr_array_set_size (self->accepted, 0);
  g_ptr_array_set_size (self->copies, 0);
  g_array_set_size (self->iov, 0);
}

static gboolean
write_batch (JsonlSink *self, ArbBatch *batch, GError **error)
{
  guint n = arb_batch_get_length (batch);
  g_autoptr(GError) local = NULL;
  gboolean ends_clean = !self->need_newline;
  gsize written = 0;
  off_t start_size = -1;
  struct stat st;
  int errsv;

  if (!ensure_open (self, &local))
    {
      for (guint i = 0; i < n; i++)
        arb_instance_ack (self->inst, arb_batch_get (batch, i), local);
      return fail (self, g_steal_pointer (&local), error);
    }

  if (self->need_newline)
    push_iov (self->iov, &newline, 1);
  for (guint i = 0; i < n; i++)
    accept_event (self, arb_batch_get (batch, i));
  if (self->accepted->len == 0)
    return TRUE;

  /* where to roll back to if the batch goes out only in part */
  if (fstat (self->fd, &st) == 0)
    start_size = st.st_size;

  errsv = write_all (self->fd, (struct iovec *) (gpointer) self->iov->data, (int) self->iov->len,
                     &written, &ends_clean);
  if (errsv != 0)
    {
      local = errno_error (ARB_PLUGIN_ERROR_UNAVAILABLE, errsv, "write to %s failed", self->path);
      /* Take back the part that went out, so the file holds whole lines
       * only and a redelivery does not duplicate it. If that fails too,
       * the next write starts with a newline to end the torn line. */
      if (written > 0 && (start_size < 0 || ftruncate (self->fd, start_size) != 0))
        self->need_newline = !ends_clean;
      ack_all (self, self->accepted, local);
      return fail (self, g_steal_pointer (&local), error);
    }

  self->need_newline = FALSE;
  arb_instance_counter_add (self->inst, "events_written_total", self->accepted->len);
  arb_instance_counter_add (self->inst, "bytes_written_total", written);

  if (self->policy == FSYNC_NEVER)
    {
      ack_all (self, self->accepted, NULL);
      mark_ok (self);
      return TRUE;
    }

  for (guint i = 0; i < self->accepted->len; i++)
    g_ptr_array_add (self->pending, arb_event_ref (g_ptr_array_index (self->accepted, i)));

  if (self->policy == FSYNC_ALWAYS ||
      g_get_monotonic_time () - self->last_sync_us >= self->interval_us)
    {
      if (!sync_pending (self, &local))
        return fail (self, g_steal_pointer (&local), error);
    }
  mark_ok (self);
  return TRUE;
}

static gpointer
jsonl_create (ArbInstance *inst, GError **error)
{
  const char *path = arb_instance_get_path (inst, "path");
  const char *fsync_word = arb_instance_get_string (inst, "fsync");
  gint64 max_line = arb_instance_get_int (inst, "max_line_bytes");
  FsyncPolicy policy;
  JsonlSink *self;

  /* the host checked the schema; these guard against a host that did not */
  if (path == NULL || *path == '\0')
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "path is not set");
      return NULL;
    }
  if (g_strcmp0 (fsync_word, "always") == 0)
    policy = FSYNC_ALWAYS;
  else if (g_strcmp0 (fsync_word, "interval") == 0)
    policy = FSYNC_INTERVAL;
  else if (g_strcmp0 (fsync_word, "never") == 0)
    policy = FSYNC_NEVER;
  else
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "fsync=%s is not one of always, interval, never", fsync_word ? fsync_word : "");
      return NULL;
    }

  self = g_new0 (JsonlSink, 1);
  self->inst = inst;
  self->path = g_strdup (path);
  self->policy = policy;
  self->interval_us = MAX (arb_instance_get_duration_ms (inst, "fsync_interval"), 1) * 1000;
  self->max_line_bytes = max_line > 0 ? (gsize) max_line : 1048576;
  self->fd = -1;
  self->pending = g_ptr_array_new_with_free_func ((GDestroyNotify) arb_event_unref);
  self->accepted = g_ptr_array_new ();
  self->copies = g_ptr_array_new_with_free_func (g_free);
  self->iov = g_array_new (FALSE, FALSE, sizeof (struct iovec));
  return self;
}

static gboolean
jsonl_start (gpointer data, GError **error)
{
  JsonlSink *self = data;

  if (self->fd >= 0)
    return TRUE;
  if (!open_file (self, error))
    return FALSE;
  self->down = TRUE; /* so that mark_ok reports the fresh state */
  mark_ok (self);
  return TRUE;
}

static gboolean
jsonl_write (gpointer data, ArbBatch *batch, GError **error)
{
  JsonlSink *self = data;
  gboolean ok = write_batch (self, batch, error);

  clear_scratch (self);
  return ok;
}

static gboolean
jsonl_flush (gpointer data, GError **error)
{
  JsonlSink *self = data;
  g_autoptr(GError) local = NULL;

  if (self->pending->len == 0)
    return TRUE;
  if (!sync_pending (self, &local))
    return fail (self, g_steal_pointer (&local), error);
  mark_ok (self);
  return TRUE;
}

static void
jsonl_stop (gpointer data)
{
  JsonlSink *self = data;

  /* the host flushes before it stops us, so anything still pending is the
   * rare case of a failed or skipped flush; stop runs on the main context,
   * where we do not block on a sync, so those events are failed and the
   * relay delivers them again */
  close_file (self, "stopped");
}

static void
jsonl_destroy (gpointer data)
{
  JsonlSink *self = data;

  close_file (self, "destroyed");
  g_ptr_array_unref (self->pending);
  g_ptr_array_unref (self->accepted);
  g_ptr_array_unref (self->copies);
  g_array_unref (self->iov);
  g_free (self->path);
  g_free (self);
}

static const ArbSinkVTable jsonl_vtable = {
  .size = sizeof (ArbSinkVTable),
  .create = jsonl_create,
  .start = jsonl_start,
  .write = jsonl_write,
  .flush = jsonl_flush,
  .stop = jsonl_stop,
  .destroy = jsonl_destroy,
};

static const ArbPluginDesc jsonl_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "sink-jsonl",
  .version = "0.1.0",
  .summary = "Append events to a file, one JSON object a line, with an fsync policy",
  .kind = ARB_PLUGIN_SINK,
  .config = jsonl_config,
  .vtable = &jsonl_vtable,
};

ARB_PLUGIN_DEFINE (sink_jsonl, jsonl_desc)
