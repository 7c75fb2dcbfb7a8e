/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest-replay: publishes quotes and market-status changes recorded in
 * JSON-lines files (doc/replay-format.md), at the recorded pace, faster, or as
 * fast as the main loop allows, once or in a loop. It lets the daemon run with
 * no network at all.
 *
 * The files are read and decoded once in start (they are small: a ten-minute
 * session is about 300 KB), merged by their `at_ms` into one sorted array, and
 * then played from a chain of one-shot host timers. Every due time is computed
 * from the monotonic time the pass started, not from the previous timer, so
 * timer lateness does not add up over a long session.
 */

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <arbiter/arb-plugin.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

/* strict JSON, exact decimals, RFC 3339 times and market ids, shared with
 * the HTTP ingest plugins */
#include "arb-ingest-common.h"

/* a file larger than this is refused rather than read on the main loop */
#define REPLAY_MAX_FILE_SIZE   (64 * 1024 * 1024)
/* longer lines are refused before the JSON parser sees them */
#define REPLAY_MAX_LINE_LENGTH (64 * 1024)
/* at_ms is at most 1000 days, which keeps every time sum far from overflow */
#define REPLAY_MAX_AT_MS       G_GINT64_CONSTANT (86400000000)
/* every member of a line is flat, so nesting this deep is refused before
 * json-glib builds the tree */
#define REPLAY_JSON_MAX_DEPTH  16
/* events published from one timer callback at most, so speed=0 leaves the
 * main loop room to breathe between batches */
#define REPLAY_BATCH_MAX       256
/* recorded time between the last event of a pass and the first of the next */
#define REPLAY_LOOP_GAP_MS     1000
/* behind schedule by more than this (a stalled loop, a suspended machine):
 * resume at the recorded pace instead of bursting through the backlog */
#define REPLAY_MAX_LAG_US      (2 * G_USEC_PER_SEC)

typedef enum {
  REPLAY_EVENT_QUOTE,
  REPLAY_EVENT_STATUS,
} ReplayEventType;

typedef struct {
  gint64         at_ms;           /* recorded time, ms since the recording's origin */
  guint32        seq;             /* position in the input, keeps the merge stable */
  guint16        file;            /* index into the instance's paths, for messages */
  guint32        line;            /* 1-based line number in that file */
  ReplayEventType type;
  char          *market;          /* owned */
  gint64         source_time_us;  /* recorded source time, 0 when the line has none */
  /* quote */
  gboolean       has_bid, has_ask, has_last;
  ArbDecimal     bid, ask, last;
  /* status */
  ArbMarketState state;
  gboolean       has_settlement;
  ArbDecimal     settlement;
  char          *reason;          /* owned, nullable */
} ReplayEvent;

typedef enum {
  REPLAY_LINE_EVENT,     /* *out holds an event */
  REPLAY_LINE_BLANK,     /* nothing on the line; not an error */
  REPLAY_LINE_MALFORMED, /* error says what is wrong */
} ReplayLineResult;

/* what loading one file found, for the log line and the counters */
typedef struct {
  guint n_events;
  guint n_malformed;
  char *first_problem; /* owned, nullable: "LINE: what" of the first malformed line */
} ReplayFileReport;

typedef struct {
  ArbInstance *inst;            /* borrowed; outlives self */
  char       **paths;           /* owned: the files, absolute */
  ArbDecimal   speed;
  gboolean     loop;
  gboolean     restamp;
  gint64       start_offset_ms;

  GArray      *events;          /* owned, nullable: ReplayEvent sorted by at_ms */
  guint        first;           /* first event at or after start_offset */
  guint        next;            /* next event to publish */
  gint64       pass_origin_ms;  /* recorded time at which the current pass starts */
  gint64       pass_start_us;   /* monotonic time at which it started */
  guint64      pass;            /* 0 for the first pass */
  guint        timer_id;        /* 0 when no timer is pending */
  GHashTable  *refused;         /* owned, nullable: markets whose refusal was logged */
} ReplayPlugin;

static const char *const replay_state_names[] = {
  [ARB_MARKET_OPEN] = "open",
  [ARB_MARKET_HALTED] = "halted",
  [ARB_MARKET_CLOSED] = "closed",
  [ARB_MARKET_DISPUTED] = "disputed",
  [ARB_MARKET_RESOLVED] = "resolved",
  [ARB_MARKET_CANCELLED] = "cancelled",
};

static const char *const replay_common_members[] = { "at_ms", "type", "market", "source", "source_time", NULL };
static const char *const replay_quote_members[] = { "bid", "ask", "last", NULL };
static const char *const replay_status_members[] = { "state", "settlement", "reason", NULL };

static void
replay_event_clear (ReplayEvent *ev)
{
  g_clear_pointer (&ev->market, g_free);
  g_clear_pointer (&ev->reason, g_free);
}

static void
replay_file_report_clear (ReplayFileReport *report)
{
  g_clear_pointer (&report->first_problem, g_free);
}

/* ------------------------------------------------------------------------ */
/* Decoding one line                                                        */

static gboolean
replay_malformed (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
replay_malformed (GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, message);
  return FALSE;
}

/* a price or settlement: a string is exact (more than eight decimal places is
 * an error); a JSON integer is exact; any other JSON number arrives as a
 * double and is read from its shortest round-trip text, rounded half-even to
 * eight places. Negative values are refused. */
static gboolean
replay_decode_decimal (JsonObject *object, const char *member, ArbDecimal *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  gboolean is_string = JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
  g_autoptr(GError) local_error = NULL;

  if (!arb_ingest_json_to_decimal (node, is_string ? ARB_ROUND_EXACT : ARB_ROUND_HALF_EVEN, out, &local_error))
    return replay_malformed (error, "\"%s\": %s", member, local_error->message);
  if (arb_decimal_is_negative (*out))
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      return replay_malformed (error, "\"%s\": %s is negative", member, arb_decimal_format_short (*out, buf));
    }
  return TRUE;
}

/* an optional string member: NULL when absent; FALSE when present but not a string */
static gboolean
replay_get_optional_string (JsonObject *object, const char *member, const char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return replay_malformed (error, "\"%s\" must be a string, not %s", member, arb_ingest_json_kind (node));
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
replay_decode_quote (JsonObject *object, ReplayEvent *out, GError **error)
{
  struct { const char *member; gboolean *has; ArbDecimal *value; } prices[] = {
    { "bid", &out->has_bid, &out->bid },
    { "ask", &out->has_ask, &out->ask },
    { "last", &out->has_last, &out->last },
  };

  for (guint i = 0; i < G_N_ELEMENTS (prices); i++)
    if (json_object_has_member (object, prices[i].member))
      {
        if (!replay_decode_decimal (object, prices[i].member, prices[i].value, error))
          return FALSE;
        *prices[i].has = TRUE;
      }
  if (!out->has_bid && !out->has_ask && !out->has_last)
    return replay_malformed (error, "a quote needs at least one of \"bid\", \"ask\", \"last\"");
  if (out->has_bid && out->has_ask && arb_decimal_cmp (out->bid, out->ask) > 0)
    {
      char b[ARB_DECIMAL_BUFSIZE], a[ARB_DECIMAL_BUFSIZE];
      return replay_malformed (error, "crossed quote: bid %s is above ask %s",
                               arb_decimal_format_short (out->bid, b), arb_decimal_format_short (out->ask, a));
    }
  return TRUE;
}

static gboolean
replay_decode_status (JsonObject *object, ReplayEvent *out, GError **error)
{
  const char *state;
  const char *reason;
  gboolean found = FALSE;

  if (!replay_get_optional_string (object, "state", &state, error))
    return FALSE;
  if (state == NULL)
    return replay_malformed (error, "\"state\" is missing");
  for (guint i = 0; i < G_N_ELEMENTS (replay_state_names) && !found; i++)
    if (g_str_equal (state, replay_state_names[i]))
      {
        out->state = (ArbMarketState) i;
        found = TRUE;
      }
  if (!found)
    return replay_malformed (error, "\"state\": \"%s\" is not one of open, halted, closed, disputed, "
                             "resolved, cancelled", state);

  if (json_object_has_member (object, "settlement"))
    {
      if (out->state != ARB_MARKET_RESOLVED)
        return replay_malformed (error, "\"settlement\" belongs only to state \"resolved\", not \"%s\"", state);
      if (!replay_decode_decimal (object, "settlement", &out->settlement, error))
        return FALSE;
      out->has_settlement = TRUE;
    }
  else if (out->state == ARB_MARKET_RESOLVED)
    {
      return replay_malformed (error, "state \"resolved\" needs a \"settlement\", the payout of one share");
    }

  if (!replay_get_optional_string (object, "reason", &reason, error))
    return FALSE;
  out->reason = g_strdup (reason);
  return TRUE;
}

/* the members every line has, then the quote's or the status's own */
static gboolean
replay_decode_object (JsonObject *object, ReplayEvent *out, GError **error)
{
  g_autoptr(GList) members = NULL;
  JsonNode *node;
  const char *type;
  const char *market;
  const char *text;
  const char *why = NULL;
  const char *const *type_members;

  /* at_ms: a whole, non-negative number of milliseconds */
  node = json_object_get_member (object, "at_ms");
  if (node == NULL)
    return replay_malformed (error, "\"at_ms\" is missing");
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return replay_malformed (error, "\"at_ms\" must be a whole number of milliseconds, not %s",
                             arb_ingest_json_kind (node));
  out->at_ms = json_node_get_int (node);
  if (out->at_ms < 0 || out->at_ms > REPLAY_MAX_AT_MS)
    return replay_malformed (error, "\"at_ms\": %" G_GINT64_FORMAT " is outside 0..%" G_GINT64_FORMAT,
                             out->at_ms, REPLAY_MAX_AT_MS);

  if (!replay_get_optional_string (object, "type", &type, error))
    return FALSE;
  if (type == NULL)
    return replay_malformed (error, "\"type\" is missing");
  if (g_str_equal (type, "quote"))
    {
      out->type = REPLAY_EVENT_QUOTE;
      type_members = replay_quote_members;
    }
  else if (g_str_equal (type, "status"))
    {
      out->type = REPLAY_EVENT_STATUS;
      type_members = replay_status_members;
    }
  else
    {
      return replay_malformed (error, "\"type\": \"%s\" is neither \"quote\" nor \"status\"", type);
    }

  /* unknown members are errors, so a misspelt "bidd" is not silently lost */
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (replay_common_members, l->data) && !g_strv_contains (type_members, l->data))
      return replay_malformed (error, "unknown member \"%s\" in a %s line", (const char *) l->data, type);

  if (!replay_get_optional_string (object, "market", &market, error))
    return FALSE;
  if (market == NULL)
    return replay_malformed (error, "\"market\" is missing");
  if (!arb_ingest_market_id_check (market, &why))
    return replay_malformed (error, "\"market\": \"%s\" %s", market, why);

  /* source is for people only: the host records the instance as the source */
  if (!replay_get_optional_string (object, "source", &text, error))
    return FALSE;

  if (!replay_get_optional_string (object, "source_time", &text, error))
    return FALSE;
  if (text != NULL && !arb_ingest_parse_time_us (text, &out->source_time_us))
    return replay_malformed (error, "\"source_time\": \"%s\" is not an RFC 3339 time with a zone, "
                             "such as \"2026-11-21T04:00:00.000Z\"", text);

  if (out->type == REPLAY_EVENT_QUOTE ? !replay_decode_quote (object, out, error)
                                      : !replay_decode_status (object, out, error))
    return FALSE;
  out->market = g_strdup (market);
  return TRUE;
}

/* decodes one line of a recording (without its newline) into @out, which the
 * caller clears with replay_event_clear(). Pure: no I/O, no instance. */
static ReplayLineResult
replay_decode_line (const char *line, gsize length, ReplayEvent *out, GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  gboolean blank = TRUE;

  memset (out, 0, sizeof *out);

  for (gsize i = 0; i < length && blank; i++)
    blank = g_ascii_isspace (line[i]);
  if (blank)
    return REPLAY_LINE_BLANK;

  if (length > REPLAY_MAX_LINE_LENGTH)
    {
      replay_malformed (error, "the line is longer than %d bytes", REPLAY_MAX_LINE_LENGTH);
      return REPLAY_LINE_MALFORMED;
    }
  /* strict RFC 8259 (UTF-8, one value, no duplicate member, no wrapped
   * integer, no \u0000), then json-glib's tree */
  root = arb_ingest_json_parse_depth (line, length, REPLAY_JSON_MAX_DEPTH, error);
  if (root == NULL)
    return REPLAY_LINE_MALFORMED;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      replay_malformed (error, "the line must be one JSON object, not %s", arb_ingest_json_kind (root));
      return REPLAY_LINE_MALFORMED;
    }
  if (!replay_decode_object (json_node_get_object (root), out, error))
    return REPLAY_LINE_MALFORMED;
  return REPLAY_LINE_EVENT;
}

/* ------------------------------------------------------------------------ */
/* Loading and merging files                                                */

static int
replay_event_compare (gconstpointer a, gconstpointer b)
{
  const ReplayEvent *x = a, *y = b;

  if (x->at_ms != y->at_ms)
    return x->at_ms < y->at_ms ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* decodes one file's bytes, appending its events to @events. */
static void
replay_load_buffer (const char *data, gsize size, guint16 file_index, guint32 *seq, GArray *events,
                    ReplayFileReport *report)
{
  const char *p = data;
  const char *end = data + size;
  guint32 line_no = 0;

  /* a UTF-8 byte order mark is tolerated at the very start */
  if (size >= 3 && memcmp (p, "\xEF\xBB\xBF", 3) == 0)
    p += 3;

  while (p < end)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      const char *line_end = nl != NULL ? nl : end;
      gsize length = (gsize) (line_end - p);
      g_autoptr(GError) error = NULL;
      ReplayEvent ev;

      line_no++;
      if (length > 0 && p[length - 1] == '\r')
        length--;

      switch (replay_decode_line (p, length, &ev, &error))
        {
        case REPLAY_LINE_EVENT:
          ev.seq = (*seq)++;
          ev.file = file_index;
          ev.line = line_no;
          g_array_append_val (events, ev);
          report->n_events++;
          break;
        case REPLAY_LINE_BLANK:
          break;
        case REPLAY_LINE_MALFORMED:
        default:
          replay_event_clear (&ev);
          if (report->n_malformed++ == 0)
            report->first_problem = g_strdup_printf ("%u: %s", line_no, error->message);
          break;
        }
      p = line_end + 1;
    }
}

/* reads and decodes @paths, merged into one array sorted by at_ms; ties keep
 * the order of the files and then of the lines. @reports gets one entry per
 * path. Fails with ARB_PLUGIN_ERROR_CONFIG for a file that cannot be read;
 * malformed lines are only reported. */
static GArray *
replay_load_files (const char *const *paths, GArray *reports, GError **error)
{
  g_autoptr(GArray) events = g_array_new (FALSE, FALSE, sizeof (ReplayEvent));
  guint32 seq = 0;
  guint n_paths = g_strv_length ((char **) paths);

  g_array_set_clear_func (events, (GDestroyNotify) replay_event_clear);
  g_array_set_clear_func (reports, (GDestroyNotify) replay_file_report_clear);
  g_array_set_size (reports, n_paths);

  if (n_paths > G_MAXUINT16)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "files: %u files is more than the %u a replay instance takes", n_paths, G_MAXUINT16);
      return NULL;
    }

  for (guint i = 0; i < n_paths; i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GMappedFile) mapped = NULL;
      ReplayFileReport *report = &g_array_index (reports, ReplayFileReport, i);
      GStatBuf st;

      if (g_stat (paths[i], &st) != 0)
        {
          int saved_errno = errno;
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "files: cannot read %s: %s", paths[i], g_strerror (saved_errno));
          return NULL;
        }
      if (S_ISDIR (st.st_mode))
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "files: %s is a directory, not a recording", paths[i]);
          return NULL;
        }
      if (!S_ISREG (st.st_mode))
        {
          /* a FIFO or a device could block the main loop */
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "files: %s is not a regular file", paths[i]);
          return NULL;
        }
      if (st.st_size > REPLAY_MAX_FILE_SIZE)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "files: %s is %" G_GINT64_FORMAT " bytes, more than the %d a recording may have",
                       paths[i], (gint64) st.st_size, REPLAY_MAX_FILE_SIZE);
          return NULL;
        }
      mapped = g_mapped_file_new (paths[i], FALSE, &local_error);
      if (mapped == NULL)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "files: %s", local_error->message);
          return NULL;
        }
      /* it may have grown since the stat */
      if (g_mapped_file_get_length (mapped) > REPLAY_MAX_FILE_SIZE)
        {
          g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                       "files: %s is more than the %d bytes a recording may have", paths[i], REPLAY_MAX_FILE_SIZE);
          return NULL;
        }
      replay_load_buffer (g_mapped_file_get_contents (mapped), g_mapped_file_get_length (mapped), (guint16) i, &seq,
                          events, report);
    }

  g_array_sort (events, replay_event_compare);
  return g_steal_pointer (&events);
}

/* turns the configured entries into absolute paths: absolute ones stay, the
 * others are taken from @dir. Empty entries (a trailing comma) are dropped.
 * String work only, no I/O. */
static char **
replay_resolve_files (const char *dir, const char *const *entries)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; entries != NULL && entries[i] != NULL; i++)
    {
      g_autofree char *entry = g_strstrip (g_strdup (entries[i]));

      if (*entry == '\0')
        continue;
      g_ptr_array_add (paths, g_canonicalize_filename (entry, dir));
    }
  g_ptr_array_add (paths, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&paths), FALSE);
}

/* ------------------------------------------------------------------------ */
/* Pacing                                                                   */

/* wall time, in µs, that @delta_ms of recording takes at @speed; speed 0
 * means no waiting at all. */
static gint64
replay_scaled_us (gint64 delta_ms, ArbDecimal speed)
{
  ArbDecimal delta;
  ArbDecimal scaled;

  if (delta_ms <= 0 || arb_decimal_is_zero (speed) || arb_decimal_is_negative (speed))
    return 0;
  if (!arb_decimal_from_int (delta_ms, &delta, NULL)
      || !arb_decimal_div (delta, speed, ARB_ROUND_HALF_EVEN, &scaled, NULL))
    return G_MAXINT64 / 4; /* a pause longer than anyone will wait for */
  /* scaled is milliseconds with eight decimal places: raw / 10^5 is µs */
  return scaled.raw / (ARB_DECIMAL_SCALE / 1000);
}

static gint64
replay_due_us (ReplayPlugin *self, const ReplayEvent *ev)
{
  return self->pass_start_us + replay_scaled_us (ev->at_ms - self->pass_origin_ms, self->speed);
}

static gboolean replay_tick (gpointer user_data);

static void
replay_schedule (ReplayPlugin *self, gint64 now_us)
{
  const ReplayEvent *ev = &g_array_index (self->events, ReplayEvent, self->next);
  gint64 wait_us = replay_due_us (self, ev) - now_us;
  gint64 wait_ms = wait_us <= 0 ? 0 : (wait_us + 999) / 1000;

  self->timer_id = arb_instance_timer_add (self->inst, (guint) MIN (wait_ms, (gint64) G_MAXUINT), replay_tick);
}

static void
replay_publish (ReplayPlugin *self, const ReplayEvent *ev)
{
  g_autoptr(GError) error = NULL;
  gint64 source_time_us = self->restamp ? arb_now_us () : ev->source_time_us;
  gboolean ok;

  if (ev->type == REPLAY_EVENT_QUOTE)
    {
      g_autoptr(ArbQuote) quote = arb_quote_new (ev->market);

      if (ev->has_bid)
        arb_quote_set_bid (quote, ev->bid);
      if (ev->has_ask)
        arb_quote_set_ask (quote, ev->ask);
      if (ev->has_last)
        arb_quote_set_last (quote, ev->last);
      if (source_time_us != 0)
        arb_quote_set_source_time (quote, source_time_us);
      ok = arb_instance_publish_quote (self->inst, quote, &error);
      if (ok)
        arb_instance_counter_add (self->inst, "quotes_published_total", 1);
    }
  else
    {
      ok = arb_instance_publish_status (self->inst, ev->market, ev->state,
                                        ev->has_settlement ? &ev->settlement : NULL,
                                        ev->reason, source_time_us, &error);
      if (ok)
        arb_instance_counter_add (self->inst, "status_published_total", 1);
    }

  if (!ok)
    {
      const char *reason = error != NULL ? error->message : "no reason given";

      arb_instance_counter_add (self->inst, "publish_errors_total", 1);
      /* a market the host refuses is refused on every pass: warn once per market */
      if (g_hash_table_add (self->refused, g_strdup (ev->market)))
        arb_warning (self->inst, "%s:%u: the host refused the %s for %s: %s (further refusals for this "
                     "market are counted in publish_errors_total and logged at debug level)",
                     self->paths[ev->file], ev->line, ev->type == REPLAY_EVENT_QUOTE ? "quote" : "status",
                     ev->market, reason);
      else
        arb_debug (self->inst, "%s:%u: refused: %s", self->paths[ev->file], ev->line, reason);
    }
}

static void
replay_begin_pass (ReplayPlugin *self, gint64 start_us, gint64 origin_ms)
{
  self->next = self->first;
  self->pass_start_us = start_us;
  self->pass_origin_ms = origin_ms;
}

static gboolean
replay_tick (gpointer user_data)
{
  ReplayPlugin *self = user_data;
  gint64 now_us = g_get_monotonic_time ();

  /* this source is gone once we return G_SOURCE_REMOVE; a new one is added below */
  self->timer_id = 0;
  if (self->events == NULL)
    return G_SOURCE_REMOVE;

  for (guint budget = REPLAY_BATCH_MAX; budget > 0; budget--)
    {
      const ReplayEvent *ev = &g_array_index (self->events, ReplayEvent, self->next);
      gint64 due_us = replay_due_us (self, ev);

      if (due_us > now_us)
        break;
      if (now_us - due_us > REPLAY_MAX_LAG_US && !arb_decimal_is_zero (self->speed))
        {
          arb_debug (self->inst, "%" G_GINT64_FORMAT " ms behind the recording; resuming from here",
                     (now_us - due_us) / 1000);
          self->pass_start_us += now_us - due_us;
        }

      replay_publish (self, ev);
      self->next++;

      if (self->next >= self->events->len)
        {
          const ReplayEvent *last = &g_array_index (self->events, ReplayEvent, self->events->len - 1);
          const ReplayEvent *first = &g_array_index (self->events, ReplayEvent, self->first);

          if (!self->loop)
            {
              arb_info (self->inst, "recording finished after %u events", self->events->len - self->first);
              arb_instance_set_health (self->inst, ARB_HEALTH_DOWN, "recording finished");
              return G_SOURCE_REMOVE;
            }
          /* the next pass starts a short recorded gap after this one's last event */
          replay_begin_pass (self, replay_due_us (self, last) + replay_scaled_us (REPLAY_LOOP_GAP_MS, self->speed),
                             first->at_ms);
          self->pass++;
          arb_instance_counter_add (self->inst, "loops_total", 1);
          arb_debug (self->inst, "starting pass %" G_GUINT64_FORMAT, self->pass + 1);
        }
    }

  replay_schedule (self, now_us);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* The plugin                                                               */

static const ArbConfigKey replay_config[] = {
  { "files", ARB_CFG_STRV, ARB_CFG_REQUIRED, NULL, 0, 0, NULL,
    "recordings to replay (JSON lines, doc/replay-format.md), comma-separated; relative names are taken from dir" },
  { "dir", ARB_CFG_PATH, ARB_CFG_NONE, ".", 0, 0, NULL,
    "directory that relative files entries are taken from; itself relative to the config file's directory" },
  { "speed", ARB_CFG_DECIMAL, ARB_CFG_NONE, "1", 0, 100000, NULL,
    "pace: 1 is as recorded, 10 ten times faster, 0.5 half as fast, 0 as fast as possible" },
  { "loop", ARB_CFG_BOOL, ARB_CFG_NONE, "true", 0, 0, NULL,
    "start again from the beginning after the last event; false: stop and report DOWN" },
  { "restamp", ARB_CFG_BOOL, ARB_CFG_NONE, "true", 0, 0, NULL,
    "stamp each event's source time with the time it is published; false keeps the recorded source_time" },
  { "start_offset", ARB_CFG_DURATION, ARB_CFG_NONE, "0ms", 0, REPLAY_MAX_AT_MS, NULL,
    "skip the events recorded before this point of the recording (every pass)" },
  { NULL }
};

static void
replay_stop (gpointer user_data)
{
  ReplayPlugin *self = user_data;

  if (self->timer_id != 0)
    arb_instance_timer_cancel (self->inst, self->timer_id);
  self->timer_id = 0;
  g_clear_pointer (&self->events, g_array_unref);
  g_clear_pointer (&self->refused, g_hash_table_unref);
  self->first = self->next = 0;
}

static void
replay_destroy (gpointer user_data)
{
  ReplayPlugin *self = user_data;

  replay_stop (self);
  g_strfreev (self->paths);
  g_free (self);
}

static gpointer
replay_create (ArbInstance *inst, GError **error)
{
  g_autofree ReplayPlugin *self = g_new0 (ReplayPlugin, 1);
  g_auto(GStrv) paths = NULL;
  const char *dir = arb_instance_get_path (inst, "dir");

  paths = replay_resolve_files (dir, arb_instance_get_strv (inst, "files"));
  if (paths[0] == NULL)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "files: names no recording");
      return NULL;
    }

  self->speed = arb_instance_get_decimal (inst, "speed");
  if (arb_decimal_is_negative (self->speed))
    {
      char buf[ARB_DECIMAL_BUFSIZE];
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "speed: %s is negative; use 0 for as fast as possible",
                   arb_decimal_format_short (self->speed, buf));
      return NULL;
    }
  self->start_offset_ms = arb_instance_get_duration_ms (inst, "start_offset");
  if (self->start_offset_ms < 0)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "start_offset: %" G_GINT64_FORMAT " ms is negative", self->start_offset_ms);
      return NULL;
    }
  self->inst = inst;
  self->loop = arb_instance_get_boolean (inst, "loop");
  self->restamp = arb_instance_get_boolean (inst, "restamp");
  self->paths = g_steal_pointer (&paths);
  return g_steal_pointer (&self);
}

static gboolean
replay_start (gpointer user_data, GError **error)
{
  ReplayPlugin *self = user_data;
  g_autoptr(GArray) reports = g_array_new (FALSE, TRUE, sizeof (ReplayFileReport));
  g_autoptr(GArray) events = NULL;
  guint n_malformed = 0;
  guint n_quotes = 0;
  char speed[ARB_DECIMAL_BUFSIZE];

  replay_stop (self); /* a start after a failed start begins clean */

  events = replay_load_files ((const char *const *) self->paths, reports, error);
  if (events == NULL)
    return FALSE;

  for (guint i = 0; i < reports->len; i++)
    {
      ReplayFileReport *report = &g_array_index (reports, ReplayFileReport, i);

      if (report->n_malformed == 0)
        continue;
      n_malformed += report->n_malformed;
      arb_instance_counter_add (self->inst, "malformed_lines_total", report->n_malformed);
      /* once per file: the first problem, and how many lines were skipped */
      arb_warning (self->inst, "%s:%s (%u malformed line%s skipped in this file)", self->paths[i],
                   report->first_problem, report->n_malformed, report->n_malformed == 1 ? "" : "s");
    }

  if (events->len == 0)
    {
      g_autofree char *names = g_strjoinv (", ", self->paths);
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "files: no valid event in %s (%u malformed line%s)", names, n_malformed,
                   n_malformed == 1 ? "" : "s");
      return FALSE;
    }

  self->first = 0;
  while (self->first < events->len
         && g_array_index (events, ReplayEvent, self->first).at_ms < self->start_offset_ms)
    self->first++;
  if (self->first == events->len)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG,
                   "start_offset: %" G_GINT64_FORMAT " ms is past the last event, recorded at %" G_GINT64_FORMAT " ms",
                   self->start_offset_ms, g_array_index (events, ReplayEvent, events->len - 1).at_ms);
      return FALSE;
    }

  for (guint i = self->first; i < events->len; i++)
    if (g_array_index (events, ReplayEvent, i).type == REPLAY_EVENT_QUOTE)
      n_quotes++;

  self->events = g_steal_pointer (&events);
  self->pass = 0;
  self->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  replay_begin_pass (self, g_get_monotonic_time (), self->start_offset_ms);

  arb_info (self->inst, "replaying %u quotes and %u status changes from %u file%s over %" G_GINT64_FORMAT
            " ms of recording at speed %s%s",
            n_quotes, self->events->len - self->first - n_quotes, g_strv_length (self->paths),
            g_strv_length (self->paths) == 1 ? "" : "s",
            g_array_index (self->events, ReplayEvent, self->events->len - 1).at_ms - self->start_offset_ms,
            arb_decimal_format_short (self->speed, speed), self->loop ? ", looping" : "");
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, "replaying");
  replay_schedule (self, g_get_monotonic_time ());
  return TRUE;
}

static const ArbIngestVTable replay_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = replay_create,
  .start = replay_start,
  .stop = replay_stop,
  .destroy = replay_destroy,
};

static const ArbPluginDesc replay_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-replay",
  .version = "1.0.0",
  .summary = "Replay recorded quotes and market-status changes from JSON-lines files",
  .kind = ARB_PLUGIN_INGEST,
  .config = replay_config,
  .vtable = &replay_vtable,
};

ARB_PLUGIN_DEFINE (ingest_replay, replay_desc)
