/* arb-bench.c - HTTP/1.1 keep-alive load generator for arbiterd
 *
 * N keep-alive connections spread over T threads, each thread with its own
 * epoll set of non-blocking sockets.  Closed loop (default): every connection
 * sends its next request as soon as the previous response is complete.  Open
 * loop (--rate R): requests are scheduled at a constant R req/s in total and a
 * request's latency is measured from its scheduled send time, so time spent
 * waiting for a free connection counts (no coordinated omission).
 *
 * Latency is the time from sending the first byte of a request to receiving
 * the last byte of its response, recorded in nanoseconds into a log-linear
 * histogram (arb-hist.h).  Only requests sent after --warmup and answered
 * before the end are counted.
 *
 * See doc/benchmarking.md.
 */
#define _GNU_SOURCE
#include "arb-hist.h"

#include <glib.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S G_GINT64_CONSTANT (1000000000)
#define NS_PER_MS G_GINT64_CONSTANT (1000000)
#define MAX_HEAD_BYTES (64 * 1024)
#define READ_BUF_BYTES (64 * 1024)
#define HOUSEKEEP_NS (10 * NS_PER_MS)
#define BACKOFF_MIN_NS (10 * NS_PER_MS)
#define BACKOFF_MAX_NS (500 * NS_PER_MS)
#define UUID_LEN 36

/* ------------------------------------------------------------------ */
/* request templates: {{seq}} and {{uuid}}                             */

typedef enum { SEG_LIT, SEG_SEQ, SEG_UUID, SEG_VALUE } SegKind;

/* --values FILE: {{value}} is line (seq mod n) of the file, so requests can
 * spread over several accounts, markets or ids */
static char **value_lines = NULL;
static guint n_value_lines = 0;

typedef struct {
  SegKind kind;
  const char *s; /* SEG_LIT: points into the template's text */
  size_t len;
} Seg;

typedef struct {
  char *text;
  GArray *segs; /* of Seg */
  gboolean dynamic;
} Template;

static void
tmpl_init (Template *t, const char *text, size_t len)
{
  t->text = g_strndup (text, len);
  t->segs = g_array_new (FALSE, FALSE, sizeof (Seg));
  t->dynamic = FALSE;
  const char *p = t->text, *end = t->text + len, *lit = p;
  while (p < end) {
    SegKind kind = SEG_LIT;
    size_t tok = 0;
    if (end - p >= 7 && memcmp (p, "{{seq}}", 7) == 0)
      kind = SEG_SEQ, tok = 7;
    else if (end - p >= 8 && memcmp (p, "{{uuid}}", 8) == 0)
      kind = SEG_UUID, tok = 8;
    else if (end - p >= 9 && memcmp (p, "{{value}}", 9) == 0)
      kind = SEG_VALUE, tok = 9;
    if (kind == SEG_LIT) {
      p++;
      continue;
    }
    if (p > lit) {
      Seg s = { SEG_LIT, lit, (size_t) (p - lit) };
      g_array_append_val (t->segs, s);
    }
    Seg s = { kind, NULL, 0 };
    g_array_append_val (t->segs, s);
    t->dynamic = TRUE;
    p += tok;
    lit = p;
  }
  if (end > lit) {
    Seg s = { SEG_LIT, lit, (size_t) (end - lit) };
    g_array_append_val (t->segs, s);
  }
}

static void
tmpl_expand (const Template *t, GString *out, const char *seq, size_t seq_len, const char *uuid)
{
  for (guint i = 0; i < t->segs->len; i++) {
    const Seg *s = &g_array_index (t->segs, Seg, i);
    switch (s->kind) {
    case SEG_LIT:
      g_string_append_len (out, s->s, (gssize) s->len);
      break;
    case SEG_SEQ:
      g_string_append_len (out, seq, (gssize) seq_len);
      break;
    case SEG_UUID:
      g_string_append_len (out, uuid, UUID_LEN);
      break;
    case SEG_VALUE:
      if (n_value_lines > 0)
        g_string_append (out, value_lines[g_ascii_strtoull (seq, NULL, 10) % n_value_lines]);
      break;
    }
  }
}

/* ------------------------------------------------------------------ */
/* configuration                                                      */

static struct {
  char *url;
  char *method;
  gboolean head_method;          /* HEAD: responses have no body */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  Template head;                 /* request line and headers, without the blank line */
  Template body;
  gboolean send_length;          /* add Content-Length */
  gboolean dynamic;              /* a template uses {{seq}} or {{uuid}} */
  GString *fixed_request;        /* the whole request when not dynamic */
  guint connections;
  guint threads;
  gint64 duration_ns, warmup_ns, timeout_ns;
  double rate;                   /* 0: closed loop */
  gboolean json;
  /* the run's clock */
  gint64 t0, warmup_end, end;
} cfg;

static guint64 global_seq = 1;          /* next {{seq}}, atomic */
static volatile sig_atomic_t stop_requested;

static inline gint64
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* per-thread state                                                   */

typedef enum {
  C_CLOSED,
  C_BACKOFF,     /* waiting to reconnect after a failed connect */
  C_CONNECTING,
  C_WRITING,
  C_READING,
  C_READY,       /* open loop: connected, waiting for a scheduled request */
} ConnState;

typedef enum {
  P_HEAD,
  P_BODY_LEN,
  P_BODY_EOF,
  P_CHUNK_SIZE,
  P_CHUNK_DATA,
  P_CHUNK_CRLF,
  P_TRAILER,
  P_DONE,
} ParseState;

typedef enum { PARSE_MORE, PARSE_DONE, PARSE_ERROR } ParseResult;

typedef enum { E_CONNECT, E_READ, E_WRITE, E_TIMEOUT, E_PARSE, E_CLOSED, E_KINDS } ErrKind;
static const char *const err_names[E_KINDS] = { "connect", "read", "write", "timeout", "parse", "closed" };

typedef struct {
  ArbHist hist;
  guint64 status[600];
  guint64 status_other;
  guint64 errors[E_KINDS];
  guint64 connects;       /* successful connections, all of the run */
  guint64 retries;        /* requests resent after an idle keep-alive connection was closed */
  guint64 bytes_read, bytes_written;
  guint64 unsent;         /* open loop: scheduled but never sent before the end */
} Stats;

typedef struct Worker Worker;

typedef struct {
  Worker *w;
  int fd;
  ConnState state;
  gint64 state_since;     /* connect start, for the connect timeout */
  gint64 backoff_ns, backoff_until;
  int idle_pos;           /* index in w->idle, or -1 */
  gboolean reused;        /* completed a response on this socket */
  /* the request in flight */
  gboolean pending;
  const char *req;
  size_t req_len, req_off;
  GString *own;           /* this connection's expanded request (dynamic templates) */
  gint64 t_start;         /* latency origin: first byte sent, or the scheduled time */
  gint64 t_sent;          /* first byte actually sent, for the timeout */
  /* response parser */
  ParseState ps;
  GString *head;
  size_t head_scan;
  guint64 remaining;
  char line[64];
  size_t line_len;        /* bytes of the current line kept in line[] */
  size_t line_extra;      /* bytes of it beyond that */
  int status;
  gboolean close_after;
  guint64 resp_bytes;
  gboolean write_blocked; /* the request did not fit in one send() */
  gboolean in_ready;      /* in w->ready */
} Conn;

struct Worker {
  guint id;
  GThread *thread;
  int ep;
  int tfd;                /* open loop timer */
  gint64 tfd_armed;       /* absolute time the timer is set for, 0 if not */
  Conn *conns;
  guint nconns;
  Conn **idle;            /* open loop: connected connections without a request */
  guint nidle;
  double interval_ns;     /* open loop: time between this thread's requests */
  double sched_offset_ns;
  guint64 next_k;         /* open loop: index of the next scheduled request */
  Conn **ready;           /* connections to send on once the current batch of events is read */
  guint nready;
  guint64 rng[4];
  GString *scratch;
  char *rbuf;
  Stats st;
};

static void conn_open (Conn *c, gint64 now);

/* ------------------------------------------------------------------ */
/* random UUIDs (xoshiro256** seeded from getrandom)                  */

static inline guint64
rotl (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static guint64
rng_next (guint64 s[4])
{
  guint64 result = rotl (s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl (s[3], 45);
  return result;
}

static void
rng_seed (guint64 s[4])
{
  if (getrandom (s, 4 * sizeof (guint64), 0) != (ssize_t) (4 * sizeof (guint64))) {
    guint64 x = (guint64) now_ns () ^ (guint64) (uintptr_t) s;
    for (int i = 0; i < 4; i++) { /* splitmix64 */
      x += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
      guint64 z = x;
      z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
      z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
      s[i] = z ^ (z >> 31);
    }
  }
  if ((s[0] | s[1] | s[2] | s[3]) == 0)
    s[0] = 1;
}

static void
make_uuid (guint64 s[4], char out[UUID_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  guint8 b[16];
  guint64 hi = rng_next (s), lo = rng_next (s);
  for (int i = 0; i < 8; i++) {
    b[i] = (guint8) (hi >> (56 - 8 * i));
    b[8 + i] = (guint8) (lo >> (56 - 8 * i));
  }
  b[6] = (guint8) ((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (guint8) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  char *o = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *o++ = '-';
    *o++ = hex[b[i] >> 4];
    *o++ = hex[b[i] & 15];
  }
  *o = '\0';
}

/* ------------------------------------------------------------------ */
/* requests                                                           */

static void
build_request (Worker *w, GString *out)
{
  char seq[24], uuid[UUID_LEN + 1];
  size_t seq_len = 0;
  g_string_truncate (out, 0);
  if (!cfg.dynamic) {
    g_string_append_len (out, cfg.fixed_request->str, (gssize) cfg.fixed_request->len);
    return;
  }
  guint64 n = __atomic_fetch_add (&global_seq, 1, __ATOMIC_RELAXED);
  seq_len = (size_t) g_snprintf (seq, sizeof seq, "%" G_GUINT64_FORMAT, n);
  make_uuid (w->rng, uuid);
  g_string_truncate (w->scratch, 0);
  tmpl_expand (&cfg.body, w->scratch, seq, seq_len, uuid);
  tmpl_expand (&cfg.head, out, seq, seq_len, uuid);
  if (cfg.send_length)
    g_string_append_printf (out, "Content-Length: %" G_GSIZE_FORMAT "\r\n", w->scratch->len);
  g_string_append (out, "\r\n");
  g_string_append_len (out, w->scratch->str, (gssize) w->scratch->len);
}

/* ------------------------------------------------------------------ */
/* response parser                                                    */

static void
parser_reset (Conn *c)
{
  c->ps = P_HEAD;
  g_string_truncate (c->head, 0);
  c->head_scan = 0;
  c->remaining = 0;
  c->line_len = 0;
  c->line_extra = 0;
  c->status = 0;
  c->close_after = FALSE;
  c->resp_bytes = 0;
}

/* index just past the blank line ending the head, or -1 */
static gssize
find_head_end (const GString *h, size_t from)
{
  const char *s = h->str, *end = h->str + h->len, *p = s + from;
  while (p < end && (p = memchr (p, '\n', (size_t) (end - p))) != NULL) {
    if (p + 1 < end && p[1] == '\n')
      return (gssize) (p + 2 - s);
    if (p + 2 < end && p[1] == '\r' && p[2] == '\n')
      return (gssize) (p + 3 - s);
    p++;
  }
  return -1;
}

static gboolean
token_in_list (const char *v, size_t len, const char *token)
{
  size_t tl = strlen (token);
  size_t i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t start = i;
    while (i < len && v[i] != ',')
      i++;
    size_t e = i;
    while (e > start && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e - start == tl && g_ascii_strncasecmp (v + start, token, tl) == 0)
      return TRUE;
  }
  return FALSE;
}

/* parses a complete head of `len` bytes; sets the body state */
static gboolean
parse_head (Conn *c, const char *s, size_t len)
{
  const char *end = s + len;
  const char *eol = memchr (s, '\n', len);
  if (eol == NULL || eol - s < 12 || memcmp (s, "HTTP/1.", 7) != 0)
    return FALSE;
  if (s[7] != '0' && s[7] != '1')
    return FALSE;
  gboolean keep_alive = s[7] == '1';
  if (s[8] != ' ' || !g_ascii_isdigit (s[9]) || !g_ascii_isdigit (s[10]) || !g_ascii_isdigit (s[11]))
    return FALSE;
  if (eol - s > 12 && s[12] != ' ' && s[12] != '\r')
    return FALSE;
  int status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (status < 100 || status == 101)
    return FALSE;

  gboolean chunked = FALSE, have_len = FALSE, close = FALSE;
  guint64 length = 0;
  for (const char *line = eol + 1; line < end;) {
    const char *nl = memchr (line, '\n', (size_t) (end - line));
    if (nl == NULL)
      nl = end;
    const char *le = nl;
    if (le > line && le[-1] == '\r')
      le--;
    if (le > line) {
      const char *colon = memchr (line, ':', (size_t) (le - line));
      if (colon == NULL)
        return FALSE;
      size_t nlen = (size_t) (colon - line);
      const char *v = colon + 1;
      while (v < le && (*v == ' ' || *v == '\t'))
        v++;
      size_t vlen = (size_t) (le - v);
      while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
      if (nlen == 14 && g_ascii_strncasecmp (line, "content-length", 14) == 0) {
        guint64 n = 0;
        if (vlen == 0)
          return FALSE;
        for (size_t i = 0; i < vlen; i++) {
          if (!g_ascii_isdigit (v[i]) || n > (G_MAXUINT64 - 9) / 10)
            return FALSE;
          n = n * 10 + (guint64) (v[i] - '0');
        }
        if (have_len && n != length)
          return FALSE;
        have_len = TRUE;
        length = n;
      } else if (nlen == 17 && g_ascii_strncasecmp (line, "transfer-encoding", 17) == 0) {
        if (token_in_list (v, vlen, "chunked"))
          chunked = TRUE;
      } else if (nlen == 10 && g_ascii_strncasecmp (line, "connection", 10) == 0) {
        if (token_in_list (v, vlen, "close"))
          close = TRUE;
        if (token_in_list (v, vlen, "keep-alive"))
          keep_alive = TRUE;
      }
    }
    line = nl + 1;
  }

  if (status < 200) { /* 100 Continue and friends: the real response follows */
    c->ps = P_HEAD;
    return TRUE;
  }
  c->status = status;
  c->close_after = close || !keep_alive;
  if (cfg.head_method || status == 204 || status == 304)
    c->ps = P_DONE;
  else if (chunked)
    c->ps = P_CHUNK_SIZE, c->line_len = 0;
  else if (have_len) {
    c->remaining = length;
    c->ps = length ? P_BODY_LEN : P_DONE;
  } else {
    c->ps = P_BODY_EOF; /* delimited by the server closing the connection */
    c->close_after = TRUE;
  }
  return TRUE;
}

static gboolean
parse_chunk_size (Conn *c)
{
  size_t n = c->line_len;
  while (n > 0 && (c->line[n - 1] == '\r' || c->line[n - 1] == ' ' || c->line[n - 1] == '\t'))
    n--;
  guint64 size = 0;
  size_t i = 0;
  for (; i < n && g_ascii_isxdigit (c->line[i]); i++) {
    if (size >> 60)
      return FALSE;
    size = size * 16 + (guint64) g_ascii_xdigit_value (c->line[i]);
  }
  if (i == 0 || (i < n && c->line[i] != ';' && c->line[i] != ' ' && c->line[i] != '\t'))
    return FALSE;
  c->line_len = 0;
  c->line_extra = 0;
  if (size == 0)
    c->ps = P_TRAILER;
  else {
    c->remaining = size;
    c->ps = P_CHUNK_DATA;
  }
  return TRUE;
}

/* feeds n bytes; *used is how many belong to the current response */
static ParseResult
parse_feed (Conn *c, const char *p, size_t n, size_t *used)
{
  size_t i = 0;
  while (i < n) {
    switch (c->ps) {
    case P_HEAD: {
      size_t old = c->head->len;
      g_string_append_len (c->head, p + i, (gssize) (n - i));
      gssize hend = find_head_end (c->head, c->head_scan);
      if (hend < 0) {
        if (c->head->len > MAX_HEAD_BYTES)
          return PARSE_ERROR;
        c->head_scan = c->head->len >= 3 ? c->head->len - 3 : 0;
        i = n;
        break;
      }
      i += (size_t) hend - old;
      gboolean ok = parse_head (c, c->head->str, (size_t) hend);
      g_string_truncate (c->head, 0);
      c->head_scan = 0;
      if (!ok)
        return PARSE_ERROR;
      break;
    }
    case P_BODY_LEN:
    case P_CHUNK_DATA: {
      size_t take = (size_t) MIN ((guint64) (n - i), c->remaining);
      c->remaining -= take;
      i += take;
      if (c->remaining == 0)
        c->ps = c->ps == P_BODY_LEN ? P_DONE : P_CHUNK_CRLF;
      break;
    }
    case P_BODY_EOF:
      i = n;
      break;
    case P_CHUNK_SIZE: {
      char ch = p[i++];
      if (ch == '\n') {
        if (!parse_chunk_size (c))
          return PARSE_ERROR;
      } else if (c->line_len < sizeof c->line) {
        c->line[c->line_len++] = ch;
      } else if (++c->line_extra > 4096) {
        return PARSE_ERROR; /* absurd chunk extension */
      }
      break;
    }
    case P_CHUNK_CRLF: {
      char ch = p[i++];
      if (ch == '\n')
        c->ps = P_CHUNK_SIZE, c->line_len = 0;
      else if (ch != '\r')
        return PARSE_ERROR;
      break;
    }
    case P_TRAILER: {
      char ch = p[i++];
      if (ch == '\n') {
        if (c->line_len == 0)
          c->ps = P_DONE;
        c->line_len = 0;
      } else if (ch != '\r') {
        c->line_len++;
      }
      break;
    }
    case P_DONE:
      break;
    }
    if (c->ps == P_DONE) {
      *used = i;
      return PARSE_DONE;
    }
  }
  *used = i;
  return PARSE_MORE;
}

/* ------------------------------------------------------------------ */
/* connections                                                        */

static void
idle_push (Conn *c)
{
  Worker *w = c->w;
  if (c->idle_pos >= 0)
    return;
  c->idle_pos = (int) w->nidle;
  w->idle[w->nidle++] = c;
}

static void
idle_remove (Conn *c)
{
  Worker *w = c->w;
  if (c->idle_pos < 0)
    return;
  Conn *last = w->idle[--w->nidle];
  w->idle[c->idle_pos] = last;
  last->idle_pos = c->idle_pos;
  c->idle_pos = -1;
}

static void
conn_close (Conn *c)
{
  idle_remove (c);
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
  c->state = C_CLOSED;
  c->reused = FALSE;
  c->write_blocked = FALSE;
  parser_reset (c);
}

static inline gboolean
in_window (gint64 t)
{
  return t >= cfg.warmup_end && t < cfg.end;
}

static void
count_error (Conn *c, ErrKind kind, gint64 now)
{
  if (in_window (now))
    c->w->st.errors[kind]++;
}

/* a failed request or connection: count it, drop the request, reconnect */
static void
conn_fail (Conn *c, ErrKind kind)
{
  gint64 now = now_ns ();
  count_error (c, kind, now);
  c->pending = FALSE;
  conn_close (c);
  if (kind == E_CONNECT) {
    c->backoff_ns = c->backoff_ns ? MIN (c->backoff_ns * 2, BACKOFF_MAX_NS) : BACKOFF_MIN_NS;
    c->backoff_until = now + c->backoff_ns;
    c->state = C_BACKOFF;
  } else if (now < cfg.end && !stop_requested) {
    conn_open (c, now);
  }
}

/* the server closed an idle keep-alive connection just as a request went out:
 * reconnect and resend it (with the same latency origin) without an error */
static void
conn_retry (Conn *c)
{
  gint64 now = now_ns ();
  c->w->st.retries++;
  conn_close (c);
  c->req_off = 0;
  conn_open (c, now);
}

static void
start_request (Conn *c, gint64 t_start)
{
  if (cfg.dynamic) {
    build_request (c->w, c->own);
    c->req = c->own->str;
    c->req_len = c->own->len;
  } else {
    c->req = cfg.fixed_request->str;
    c->req_len = cfg.fixed_request->len;
  }
  c->req_off = 0;
  c->pending = TRUE;
  c->t_start = t_start;
  c->t_sent = 0;
  c->state = C_WRITING;
}

static void
ready_push (Conn *c)
{
  Worker *w = c->w;
  if (c->in_ready)
    return;
  c->in_ready = TRUE;
  w->ready[w->nready++] = c;
}

/* connected, or finished a response on a keep-alive connection.  Nothing is
 * sent from here: requests go out in flush_ready() once every event of the
 * current epoll batch has been read, so that the time a response is taken as
 * complete does not include sends on other connections. */
static void
conn_ready (Conn *c, gint64 now)
{
  if (c->pending) { /* a retried request */
    c->req_off = 0;
    c->state = C_WRITING;
    ready_push (c);
    return;
  }
  c->state = C_READY;
  if (now >= cfg.end || stop_requested)
    return;
  if (cfg.rate > 0)
    idle_push (c);
  else
    ready_push (c);
}

static void
conn_connected (Conn *c, gint64 now)
{
  c->w->st.connects++;
  c->backoff_ns = 0;
  conn_ready (c, now);
}

static void
conn_open (Conn *c, gint64 now)
{
  const struct sockaddr *sa = (const struct sockaddr *) &cfg.addr;
  int fd = socket (sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    conn_fail (c, E_CONNECT);
    return;
  }
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->reused = FALSE;
  parser_reset (c);
  c->state_since = now;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
  if (epoll_ctl (c->w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    conn_fail (c, E_CONNECT);
    return;
  }
  if (connect (fd, sa, cfg.addrlen) == 0) {
    conn_connected (c, now);
  } else if (errno == EINPROGRESS) {
    c->state = C_CONNECTING;
  } else {
    conn_fail (c, E_CONNECT);
  }
}

static void
conn_complete (Conn *c)
{
  Worker *w = c->w;
  gint64 now = now_ns ();
  /* sent (or, open loop, scheduled) after the warmup and answered before the end */
  if (c->t_start >= cfg.warmup_end && now < cfg.end) {
    gint64 lat = now - c->t_start;
    arb_hist_record (&w->st.hist, lat > 0 ? (guint64) lat : 0);
    if (c->status >= 100 && c->status < 600)
      w->st.status[c->status]++;
    else
      w->st.status_other++;
  }
  c->pending = FALSE;
  if (c->close_after) {
    conn_close (c);
    if (now < cfg.end && !stop_requested)
      conn_open (c, now);
    return;
  }
  c->reused = TRUE;
  parser_reset (c);
  conn_ready (c, now);
}

static void conn_read (Conn *c);

static void
conn_write (Conn *c)
{
  while (c->req_off < c->req_len) {
    if (c->t_sent == 0) {
      c->t_sent = now_ns ();
      if (c->t_start == 0)
        c->t_start = c->t_sent;
    }
    ssize_t n = send (c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->req_off += (size_t) n;
      c->w->st.bytes_written += (guint64) n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->write_blocked = TRUE;
      return; /* EPOLLOUT brings us back */
    } else {
      if (c->reused && (errno == EPIPE || errno == ECONNRESET))
        conn_retry (c);
      else
        conn_fail (c, E_WRITE);
      return;
    }
  }
  c->state = C_READING;
  if (c->write_blocked) {
    /* an early response may have come while we were still writing, and its
     * edge-triggered EPOLLIN was taken then */
    c->write_blocked = FALSE;
    conn_read (c);
  }
  /* otherwise the response's EPOLLIN edge is still to come */
}

static void
conn_read (Conn *c)
{
  Worker *w = c->w;
  for (;;) {
    ssize_t n = recv (c->fd, w->rbuf, READ_BUF_BYTES, 0);
    if (n > 0) {
      w->st.bytes_read += (guint64) n;
      c->resp_bytes += (guint64) n;
      size_t used = 0;
      ParseResult r = parse_feed (c, w->rbuf, (size_t) n, &used);
      if (r == PARSE_ERROR || (r == PARSE_DONE && used < (size_t) n)) {
        conn_fail (c, E_PARSE); /* bad response, or bytes nobody asked for */
        return;
      }
      if (r == PARSE_DONE) {
        conn_complete (c);
        return;
      }
    } else if (n == 0) {
      if (c->ps == P_BODY_EOF) {
        c->close_after = TRUE;
        conn_complete (c);
      } else if (c->reused && c->resp_bytes == 0) {
        conn_retry (c);
      } else {
        conn_fail (c, E_CLOSED);
      }
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      if (c->reused && c->resp_bytes == 0 && errno == ECONNRESET)
        conn_retry (c);
      else
        conn_fail (c, E_READ);
      return;
    }
  }
}

static void
conn_event (Conn *c, uint32_t events)
{
  switch (c->state) {
  case C_CONNECTING: {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
      err = errno;
    if (err != 0) {
      conn_fail (c, E_CONNECT);
    } else if (events & (EPOLLOUT | EPOLLIN)) {
      conn_connected (c, now_ns ());
    } else if (events & (EPOLLHUP | EPOLLERR)) {
      conn_fail (c, E_CONNECT);
    }
    break;
  }
  case C_WRITING:
    conn_write (c);
    break;
  case C_READING:
    conn_read (c);
    break;
  case C_READY: {
    /* an idle connection only hears from the server when it closes */
    char b[256];
    ssize_t n = recv (c->fd, b, sizeof b, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      conn_close (c);
      conn_open (c, now_ns ());
    } else if (n > 0) {
      conn_fail (c, E_PARSE);
    }
    break;
  }
  default:
    break;
  }
}

/* ------------------------------------------------------------------ */
/* open loop                                                          */

static inline gint64
sched_time (Worker *w, guint64 k)
{
  return cfg.t0 + (gint64) (w->sched_offset_ns + (double) k * w->interval_ns);
}

static void
timer_arm (Worker *w, gint64 at)
{
  if (w->tfd_armed == at)
    return;
  struct itimerspec its = { 0 };
  if (at > 0) {
    its.it_value.tv_sec = at / NS_PER_S;
    its.it_value.tv_nsec = at % NS_PER_S;
  }
  timerfd_settime (w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
  w->tfd_armed = at;
}

/* hands every request that is due to a free connection, oldest first */
static void
open_loop_dispatch (Worker *w, gint64 now)
{
  while (w->nidle > 0) {
    gint64 t = sched_time (w, w->next_k);
    if (t > now || t >= cfg.end)
      break;
    Conn *c = w->idle[w->nidle - 1];
    idle_remove (c);
    w->next_k++;
    start_request (c, t);
    conn_write (c);
  }
  gint64 next = sched_time (w, w->next_k);
  /* without a free connection the next one to finish dispatches */
  timer_arm (w, w->nidle > 0 && next < cfg.end ? next : 0);
}

/* ------------------------------------------------------------------ */
/* the thread                                                         */

/* sends on every connection that became ready during the last batch */
static void
flush_ready (Worker *w)
{
  gint64 now = now_ns ();
  while (w->nready > 0) {
    Conn *c = w->ready[--w->nready];
    c->in_ready = FALSE;
    if (c->state == C_WRITING && c->pending) {
      conn_write (c); /* a retried request */
    } else if (c->state == C_READY && !c->pending && cfg.rate <= 0 && now < cfg.end && !stop_requested) {
      start_request (c, 0); /* the origin is set when the first byte goes out */
      conn_write (c);
    }
  }
  if (cfg.rate > 0)
    open_loop_dispatch (w, now);
}

static void
housekeeping (Worker *w, gint64 now)
{
  for (guint i = 0; i < w->nconns; i++) {
    Conn *c = &w->conns[i];
    switch (c->state) {
    case C_BACKOFF:
      if (now >= c->backoff_until)
        conn_open (c, now);
      break;
    case C_CONNECTING:
      if (now - c->state_since > cfg.timeout_ns)
        conn_fail (c, E_CONNECT);
      break;
    case C_WRITING:
    case C_READING:
      if (c->pending && c->t_sent && now - c->t_sent > cfg.timeout_ns)
        conn_fail (c, E_TIMEOUT);
      break;
    default:
      break;
    }
  }
}

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  struct epoll_event events[256];
  gint64 now = now_ns ();
  gint64 next_housekeep = now + HOUSEKEEP_NS;

  for (guint i = 0; i < w->nconns; i++)
    conn_open (&w->conns[i], now);

  while (!stop_requested) {
    now = now_ns ();
    if (now >= cfg.end)
      break;
    if (now >= next_housekeep) {
      housekeeping (w, now);
      next_housekeep = now + HOUSEKEEP_NS;
    }
    flush_ready (w);
    gint64 wait_ns = w->nready > 0 ? 0 : MIN (cfg.end, next_housekeep) - now;
    int timeout_ms = (int) ((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
    int n = epoll_wait (w->ep, events, G_N_ELEMENTS (events), MAX (timeout_ms, 0));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      g_printerr ("arb-bench: epoll_wait: %s\n", g_strerror (errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        guint64 expirations;
        if (read (w->tfd, &expirations, sizeof expirations) < 0) {
          /* EAGAIN: re-armed meanwhile */
        }
        w->tfd_armed = 0; /* flush_ready() dispatches */
      } else {
        conn_event (events[i].data.ptr, events[i].events);
      }
    }
  }

  if (cfg.rate > 0) {
    /* requests scheduled inside the run that never got a connection */
    gint64 stop = MIN (now_ns (), cfg.end);
    while (sched_time (w, w->next_k) < stop) {
      if (sched_time (w, w->next_k) >= cfg.warmup_end)
        w->st.unsent++;
      w->next_k++;
    }
  }
  for (guint i = 0; i < w->nconns; i++)
    conn_close (&w->conns[i]);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* option parsing                                                     */

/* "10s", "500ms", "2m", "1.5s", "3" (seconds) */
static gboolean
parse_duration (const char *s, gint64 *out_ns)
{
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (s, &end);
  if (end == s || errno != 0 || !(v >= 0) || isinf (v))
    return FALSE;
  double mult;
  if (*end == '\0' || strcmp (end, "s") == 0)
    mult = 1e9;
  else if (strcmp (end, "ms") == 0)
    mult = 1e6;
  else if (strcmp (end, "us") == 0)
    mult = 1e3;
  else if (strcmp (end, "m") == 0 || strcmp (end, "min") == 0)
    mult = 60e9;
  else if (strcmp (end, "h") == 0)
    mult = 3600e9;
  else
    return FALSE;
  if (v * mult > 1e18)
    return FALSE;
  *out_ns = (gint64) llround (v * mult);
  return TRUE;
}

typedef struct {
  char *authority; /* as written, for Host */
  char *path;      /* with the query */
} Url;

static gboolean
parse_url (const char *url, Url *u, GError **error)
{
  if (g_ascii_strncasecmp (url, "https://", 8) == 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "https is not supported, use http://");
    return FALSE;
  }
  if (g_ascii_strncasecmp (url, "http://", 7) != 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--url must start with http://");
    return FALSE;
  }
  const char *a = url + 7;
  size_t alen = strcspn (a, "/?#");
  const char *rest = a + alen;
  size_t rlen = strcspn (rest, "#");
  if (alen == 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "no host in %s", url);
    return FALSE;
  }
  char *auth = g_strndup (a, alen);
  char *host;
  const char *port_str = NULL;
  if (auth[0] == '[') {
    char *close = strchr (auth, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "bad IPv6 literal in %s", url);
      g_free (auth);
      return FALSE;
    }
    host = g_strndup (auth + 1, (gsize) (close - auth - 1));
    if (close[1] == ':')
      port_str = close + 2;
  } else {
    char *colon = strchr (auth, ':');
    host = colon ? g_strndup (auth, (gsize) (colon - auth)) : g_strdup (auth);
    if (colon)
      port_str = colon + 1;
  }
  guint64 port = 80;
  if (port_str != NULL && !g_ascii_string_to_unsigned (port_str, 10, 1, 65535, &port, NULL)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "bad port in %s", url);
    g_free (host);
    g_free (auth);
    return FALSE;
  }
  memset (&cfg.addr, 0, sizeof cfg.addr);
  struct sockaddr_in *sin = (struct sockaddr_in *) &cfg.addr;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &cfg.addr;
  const char *v4 = g_ascii_strcasecmp (host, "localhost") == 0 ? "127.0.0.1" : host;
  if (inet_pton (AF_INET, v4, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons ((guint16) port);
    cfg.addrlen = sizeof *sin;
  } else if (inet_pton (AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons ((guint16) port);
    cfg.addrlen = sizeof *sin6;
  } else {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "host '%s' must be an IPv4 or [IPv6] literal or localhost", host);
    g_free (host);
    g_free (auth);
    return FALSE;
  }
  g_free (host);
  u->authority = auth;
  if (rlen == 0)
    u->path = g_strdup ("/");
  else if (rest[0] == '?')
    u->path = g_strdup_printf ("/%.*s", (int) rlen, rest);
  else
    u->path = g_strndup (rest, rlen);
  return TRUE;
}

static gboolean
valid_token (const char *s, size_t len)
{
  if (len == 0)
    return FALSE;
  for (size_t i = 0; i < len; i++)
    if (!g_ascii_isalnum (s[i]) && !strchr ("!#$%&'*+-.^_`|~", s[i]))
      return FALSE;
  return TRUE;
}

static gboolean
has_header (char **headers, const char *name)
{
  size_t nl = strlen (name);
  for (char **h = headers; h && *h; h++)
    if (g_ascii_strncasecmp (*h, name, nl) == 0 && (*h)[nl] == ':')
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* output                                                             */

static void
json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (out, "\\u%04x", *p);
    else
      g_string_append_c (out, (char) *p);
  }
  g_string_append_c (out, '"');
}

static void
format_latency (char *buf, size_t size, double ns)
{
  if (ns < 1e6)
    g_snprintf (buf, size, "%.1f µs", ns / 1e3);
  else if (ns < 1e9)
    g_snprintf (buf, size, "%.2f ms", ns / 1e6);
  else
    g_snprintf (buf, size, "%.3f s", ns / 1e9);
}

static void
format_seconds (char *buf, size_t size, gint64 ns)
{
  g_snprintf (buf, size, "%.2f s", (double) ns / 1e9);
}

typedef struct {
  guint64 requests;
  double seconds;
  guint64 klass[6]; /* [1]..[5]: 1xx..5xx, [0]: other */
  guint64 errors;
} Summary;

static void
print_text (const Stats *st, const Summary *s, gint64 measured_ns, gboolean interrupted)
{
  char a[32], b[32], c[32], d[32], e[32], f[32];
  format_seconds (a, sizeof a, measured_ns);
  format_seconds (b, sizeof b, cfg.warmup_ns);
  printf ("target       %s\n", cfg.url);
  printf ("method       %s\n", cfg.method);
  printf ("connections  %u\n", cfg.connections);
  printf ("threads      %u\n", cfg.threads);
  printf ("duration     %s (after %s warmup)%s\n", a, b, interrupted ? " (interrupted)" : "");
  if (cfg.rate > 0)
    printf ("mode         open loop at %.1f req/s (latency from the scheduled send time)\n", cfg.rate);
  else
    printf ("mode         closed loop\n");
  printf ("requests %" G_GUINT64_FORMAT "  throughput %.1f req/s\n", s->requests,
          s->seconds > 0 ? (double) s->requests / s->seconds : 0.0);
  const ArbHist *h = &st->hist;
  format_latency (a, sizeof a, (double) arb_hist_percentile (h, 50));
  format_latency (b, sizeof b, (double) arb_hist_percentile (h, 90));
  format_latency (c, sizeof c, (double) arb_hist_percentile (h, 99));
  format_latency (d, sizeof d, (double) arb_hist_percentile (h, 99.9));
  format_latency (e, sizeof e, (double) h->max);
  printf ("latency p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", a, b, c, d, e);
  format_latency (a, sizeof a, h->count ? (double) h->min : 0.0);
  format_latency (b, sizeof b, arb_hist_mean (h));
  format_latency (f, sizeof f, arb_hist_stdev (h));
  printf ("        min %s  mean %s  stdev %s\n", a, b, f);
  printf ("status 2xx %" G_GUINT64_FORMAT ", ", s->klass[2]);
  if (s->klass[1])
    printf ("1xx %" G_GUINT64_FORMAT ", ", s->klass[1]);
  if (s->klass[3])
    printf ("3xx %" G_GUINT64_FORMAT ", ", s->klass[3]);
  printf ("4xx %" G_GUINT64_FORMAT ", 5xx %" G_GUINT64_FORMAT ", errors %" G_GUINT64_FORMAT "\n",
          s->klass[4], s->klass[5], s->errors);
  if (s->requests != s->klass[2]) {
    printf ("non-2xx     ");
    for (int code = 100; code < 600; code++)
      if (st->status[code] && (code < 200 || code >= 300))
        printf (" %d x%" G_GUINT64_FORMAT, code, st->status[code]);
    printf ("\n");
  }
  if (s->errors) {
    printf ("errors      ");
    for (int k = 0; k < E_KINDS; k++)
      if (st->errors[k])
        printf (" %s %" G_GUINT64_FORMAT, err_names[k], st->errors[k]);
    printf ("\n");
  }
  if (st->connects > cfg.connections || st->retries)
    printf ("reconnects   %" G_GUINT64_FORMAT " (resent after an idle close: %" G_GUINT64_FORMAT ")\n",
            st->connects > cfg.connections ? st->connects - cfg.connections : 0, st->retries);
  if (st->unsent)
    printf ("unsent       %" G_GUINT64_FORMAT " scheduled requests still waiting for a connection at the end "
            "(more than rate x latency: the server did not keep up with --rate)\n", st->unsent);
}

static void
print_json (const Stats *st, const Summary *s, gint64 measured_ns, gboolean interrupted)
{
  GString *o = g_string_new ("{");
  const ArbHist *h = &st->hist;
  g_string_append (o, "\"target\":");
  json_string (o, cfg.url);
  g_string_append (o, ",\"method\":");
  json_string (o, cfg.method);
  g_string_append_printf (o, ",\"connections\":%u,\"threads\":%u", cfg.connections, cfg.threads);
  g_string_append_printf (o, ",\"duration_s\":%.3f,\"warmup_s\":%.3f,\"interrupted\":%s",
                          (double) measured_ns / 1e9, (double) cfg.warmup_ns / 1e9,
                          interrupted ? "true" : "false");
  g_string_append_printf (o, ",\"mode\":\"%s\"", cfg.rate > 0 ? "open" : "closed");
  if (cfg.rate > 0)
    g_string_append_printf (o, ",\"rate\":%.3f", cfg.rate);
  else
    g_string_append (o, ",\"rate\":null");
  g_string_append_printf (o, ",\"requests\":%" G_GUINT64_FORMAT ",\"throughput_rps\":%.1f", s->requests,
                          s->seconds > 0 ? (double) s->requests / s->seconds : 0.0);
  g_string_append_printf (o, ",\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"stdev\":%.1f,"
                          "\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f}",
                          h->count ? (double) h->min / 1e3 : 0.0, arb_hist_mean (h) / 1e3,
                          arb_hist_stdev (h) / 1e3, (double) arb_hist_percentile (h, 50) / 1e3,
                          (double) arb_hist_percentile (h, 90) / 1e3,
                          (double) arb_hist_percentile (h, 99) / 1e3,
                          (double) arb_hist_percentile (h, 99.9) / 1e3, (double) h->max / 1e3);
  g_string_append_printf (o, ",\"status\":{\"1xx\":%" G_GUINT64_FORMAT ",\"2xx\":%" G_GUINT64_FORMAT
                          ",\"3xx\":%" G_GUINT64_FORMAT ",\"4xx\":%" G_GUINT64_FORMAT
                          ",\"5xx\":%" G_GUINT64_FORMAT ",\"other\":%" G_GUINT64_FORMAT "}",
                          s->klass[1], s->klass[2], s->klass[3], s->klass[4], s->klass[5], s->klass[0]);
  g_string_append (o, ",\"status_codes\":{");
  gboolean first = TRUE;
  for (int code = 100; code < 600; code++) {
    if (!st->status[code])
      continue;
    g_string_append_printf (o, "%s\"%d\":%" G_GUINT64_FORMAT, first ? "" : ",", code, st->status[code]);
    first = FALSE;
  }
  g_string_append_printf (o, "},\"errors\":%" G_GUINT64_FORMAT ",\"error_kinds\":{", s->errors);
  for (int k = 0; k < E_KINDS; k++)
    g_string_append_printf (o, "%s\"%s\":%" G_GUINT64_FORMAT, k ? "," : "", err_names[k], st->errors[k]);
  g_string_append_printf (o, "},\"connects\":%" G_GUINT64_FORMAT ",\"retries\":%" G_GUINT64_FORMAT
                          ",\"unsent\":%" G_GUINT64_FORMAT ",\"bytes_read\":%" G_GUINT64_FORMAT
                          ",\"bytes_written\":%" G_GUINT64_FORMAT "}\n",
                          st->connects, st->retries, st->unsent, st->bytes_read, st->bytes_written);
  fputs (o->str, stdout);
  g_string_free (o, TRUE);
}

/* ------------------------------------------------------------------ */

static void
on_signal (int sig)
{
  (void) sig;
  stop_requested = 1;
}

static void
raise_fd_limit (guint want)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
    return;
  rl.rlim_cur = MIN ((rlim_t) want, rl.rlim_max);
  setrlimit (RLIMIT_NOFILE, &rl);
}

static int
usage_error (GOptionContext *ctx, const char *msg)
{
  g_printerr ("arb-bench: %s\n(see arb-bench --help)\n", msg);
  g_option_context_free (ctx);
  return 2;
}

int
main (int argc, char **argv)
{
  char *url = NULL, *method = NULL, *body = NULL, *body_file = NULL;
  char *duration = NULL, *warmup = NULL, *timeout = NULL;
  char **headers = NULL;
  gint connections = 16, threads = 1;
  gint64 seq_start = 1;
  char *values_file = NULL;
  double rate = 0;
  gboolean json = FALSE;
  GError *error = NULL;

  GOptionEntry entries[] = {
    { "url", 'u', 0, G_OPTION_ARG_STRING, &url, "Target, http://HOST[:PORT]/PATH[?QUERY]; HOST is an IPv4 literal, [IPv6] literal or localhost", "URL" },
    { "method", 'm', 0, G_OPTION_ARG_STRING, &method, "Request method (default GET, or POST with a body)", "METHOD" },
    { "header", 'H', 0, G_OPTION_ARG_STRING_ARRAY, &headers, "Add a request header (repeatable)", "'NAME: VALUE'" },
    { "body", 'b', 0, G_OPTION_ARG_STRING, &body, "Request body", "STRING" },
    { "body-file", 0, 0, G_OPTION_ARG_FILENAME, &body_file, "Request body from a file", "FILE" },
    { "connections", 'c', 0, G_OPTION_ARG_INT, &connections, "Concurrent keep-alive connections (default 16)", "N" },
    { "duration", 'd', 0, G_OPTION_ARG_STRING, &duration, "Measured time, e.g. 10s, 500ms, 2m (default 10s)", "TIME" },
    { "warmup", 'w', 0, G_OPTION_ARG_STRING, &warmup, "Load before the measured time, not counted (default 0s)", "TIME" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads, each with its own epoll set (default 1)", "N" },
    { "rate", 'R', 0, G_OPTION_ARG_DOUBLE, &rate, "Open loop: send R requests/s in total, latency from the scheduled time (default: closed loop)", "R" },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout, "Give up on a connect or request after this long (default 10s)", "TIME" },
    { "seq-start", 0, 0, G_OPTION_ARG_INT64, &seq_start, "First value of {{seq}} (default 1)", "N" },
    { "values", 0, 0, G_OPTION_ARG_FILENAME, &values_file, "{{value}} is line (seq mod lines) of FILE", "FILE" },
    { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print the results as one JSON object", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *ctx = g_option_context_new ("[URL] - HTTP/1.1 keep-alive load generator");
  g_option_context_set_summary (ctx,
    "Sends requests over concurrent keep-alive connections for a fixed time and prints\n"
    "throughput and p50/p90/p99/p99.9 latency (first byte sent to last byte received).\n"
    "In the body and in header values, {{seq}} becomes a unique increasing number and\n"
    "{{uuid}} a random UUID, the same within one request.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    int rc = usage_error (ctx, error->message);
    g_error_free (error);
    return rc;
  }
  if (url == NULL && argc == 2)
    url = g_strdup (argv[1]);
  else if (argc > 1)
    return usage_error (ctx, "unexpected arguments");
  if (url == NULL)
    return usage_error (ctx, "--url is required");
  if (body && body_file)
    return usage_error (ctx, "--body and --body-file are exclusive");
  if (connections < 1 || threads < 1)
    return usage_error (ctx, "--connections and --threads must be at least 1");
  if (threads > connections)
    return usage_error (ctx, "--threads must not exceed --connections");
  if (rate < 0 || isnan (rate) || isinf (rate))
    return usage_error (ctx, "--rate must be positive");
  if (seq_start < 0)
    return usage_error (ctx, "--seq-start must not be negative");
  if (values_file != NULL) {
    char *all = NULL;
    if (!g_file_get_contents (values_file, &all, NULL, &error)) {
      fprintf (stderr, "arb-bench: --values: %s\n", error->message);
      return 2;
    }
    g_strchomp (all);
    value_lines = g_strsplit (all, "\n", -1);
    n_value_lines = g_strv_length (value_lines);
    g_free (all);
    if (n_value_lines == 0)
      return usage_error (ctx, "--values: the file has no lines");
  }
  cfg.duration_ns = 10 * NS_PER_S;
  cfg.warmup_ns = 0;
  cfg.timeout_ns = 10 * NS_PER_S;
  if ((duration && !parse_duration (duration, &cfg.duration_ns)) || cfg.duration_ns <= 0)
    return usage_error (ctx, "bad --duration (use e.g. 10s, 500ms, 2m)");
  if (warmup && !parse_duration (warmup, &cfg.warmup_ns))
    return usage_error (ctx, "bad --warmup (use e.g. 2s, 500ms)");
  if ((timeout && !parse_duration (timeout, &cfg.timeout_ns)) || cfg.timeout_ns <= 0)
    return usage_error (ctx, "bad --timeout (use e.g. 10s)");

  Url u;
  if (!parse_url (url, &u, &error)) {
    int rc = usage_error (ctx, error->message);
    g_error_free (error);
    return rc;
  }

  char *body_text = NULL;
  gsize body_len = 0;
  if (body_file) {
    if (!g_file_get_contents (body_file, &body_text, &body_len, &error)) {
      int rc = usage_error (ctx, error->message);
      g_error_free (error);
      return rc;
    }
  } else if (body) {
    body_text = g_strdup (body);
    body_len = strlen (body);
  }

  cfg.url = url;
  cfg.method = method ? g_strdup (method) : g_strdup (body_text ? "POST" : "GET");
  if (!valid_token (cfg.method, strlen (cfg.method)))
    return usage_error (ctx, "bad --method");
  cfg.head_method = strcmp (cfg.method, "HEAD") == 0;
  cfg.send_length = body_text != NULL || strcmp (cfg.method, "POST") == 0 ||
                    strcmp (cfg.method, "PUT") == 0 || strcmp (cfg.method, "PATCH") == 0;

  GString *head = g_string_new (NULL);
  g_string_append_printf (head, "%s %s HTTP/1.1\r\n", cfg.method, u.path);
  if (!has_header (headers, "Host"))
    g_string_append_printf (head, "Host: %s\r\n", u.authority);
  if (!has_header (headers, "User-Agent"))
    g_string_append (head, "User-Agent: arb-bench\r\n");
  for (char **hp = headers; hp && *hp; hp++) {
    const char *colon = strchr (*hp, ':');
    if (colon == NULL || !valid_token (*hp, (size_t) (colon - *hp)) || strpbrk (*hp, "\r\n"))
      return usage_error (ctx, "--header wants 'Name: value' on one line");
    if (has_header ((char *[]) { *hp, NULL }, "Content-Length") ||
        has_header ((char *[]) { *hp, NULL }, "Transfer-Encoding"))
      return usage_error (ctx, "Content-Length is set from the body; Transfer-Encoding is not supported");
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    g_string_append_printf (head, "%.*s: %s\r\n", (int) (colon - *hp), *hp, v);
  }
  tmpl_init (&cfg.head, head->str, head->len);
  tmpl_init (&cfg.body, body_text ? body_text : "", body_len);
  cfg.dynamic = cfg.head.dynamic || cfg.body.dynamic;
  cfg.fixed_request = g_string_new (head->str);
  if (cfg.send_length)
    g_string_append_printf (cfg.fixed_request, "Content-Length: %" G_GSIZE_FORMAT "\r\n", body_len);
  g_string_append (cfg.fixed_request, "\r\n");
  if (body_text)
    g_string_append_len (cfg.fixed_request, body_text, (gssize) body_len);
  g_string_free (head, TRUE);
  global_seq = (guint64) seq_start;

  cfg.connections = (guint) connections;
  cfg.threads = (guint) threads;
  cfg.rate = rate;
  cfg.json = json;
  g_option_context_free (ctx);

  raise_fd_limit (cfg.connections + cfg.threads * 2 + 64);
  struct sigaction sa = { 0 };
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND; /* a second ^C kills */
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  if (!json && isatty (STDERR_FILENO))
    g_printerr ("arb-bench: %s %s, %u connections, %u threads, %.2f s + %.2f s warmup...\n",
                cfg.method, cfg.url, cfg.connections, cfg.threads,
                (double) cfg.duration_ns / 1e9, (double) cfg.warmup_ns / 1e9);

  Worker *workers = g_new0 (Worker, cfg.threads);
  guint conn_base = 0;
  for (guint i = 0; i < cfg.threads; i++) {
    Worker *w = &workers[i];
    w->id = i;
    w->nconns = cfg.connections / cfg.threads + (i < cfg.connections % cfg.threads ? 1 : 0);
    w->conns = g_new0 (Conn, w->nconns);
    w->idle = g_new0 (Conn *, w->nconns);
    w->ready = g_new0 (Conn *, w->nconns);
    w->ep = epoll_create1 (EPOLL_CLOEXEC);
    w->tfd = -1;
    if (w->ep < 0) {
      g_printerr ("arb-bench: epoll_create1: %s\n", g_strerror (errno));
      return 1;
    }
    if (cfg.rate > 0) {
      w->tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
      if (w->tfd < 0 || epoll_ctl (w->ep, EPOLL_CTL_ADD, w->tfd, &ev) < 0) {
        g_printerr ("arb-bench: timerfd: %s\n", g_strerror (errno));
        return 1;
      }
      /* this thread's share of the rate, and its place among the threads */
      double wrate = cfg.rate * (double) w->nconns / (double) cfg.connections;
      w->interval_ns = 1e9 / wrate;
      w->sched_offset_ns = w->interval_ns * (double) conn_base / (double) cfg.connections;
    }
    conn_base += w->nconns;
    rng_seed (w->rng);
    w->scratch = g_string_sized_new (body_len + 64);
    w->rbuf = g_malloc (READ_BUF_BYTES);
    arb_hist_init (&w->st.hist);
    for (guint j = 0; j < w->nconns; j++) {
      Conn *c = &w->conns[j];
      c->w = w;
      c->fd = -1;
      c->idle_pos = -1;
      c->head = g_string_sized_new (1024);
      c->own = g_string_sized_new (cfg.fixed_request->len + 128);
    }
  }

  cfg.t0 = now_ns ();
  cfg.warmup_end = cfg.t0 + cfg.warmup_ns;
  cfg.end = cfg.warmup_end + cfg.duration_ns;
  for (guint i = 0; i < cfg.threads; i++) {
    char name[16];
    g_snprintf (name, sizeof name, "bench-%u", i);
    workers[i].thread = g_thread_new (name, worker_main, &workers[i]);
  }
  for (guint i = 0; i < cfg.threads; i++)
    g_thread_join (workers[i].thread);
  gint64 finished = MIN (now_ns (), cfg.end);
  gboolean interrupted = stop_requested != 0;

  Stats *total = g_new0 (Stats, 1);
  arb_hist_init (&total->hist);
  for (guint i = 0; i < cfg.threads; i++) {
    Stats *st = &workers[i].st;
    arb_hist_merge (&total->hist, &st->hist);
    for (int code = 0; code < 600; code++)
      total->status[code] += st->status[code];
    total->status_other += st->status_other;
    for (int k = 0; k < E_KINDS; k++)
      total->errors[k] += st->errors[k];
    total->connects += st->connects;
    total->retries += st->retries;
    total->bytes_read += st->bytes_read;
    total->bytes_written += st->bytes_written;
    total->unsent += st->unsent;
  }

  Summary s = { 0 };
  gint64 measured = MAX (finished - cfg.warmup_end, 0);
  s.seconds = (double) measured / 1e9;
  for (int code = 100; code < 600; code++) {
    s.klass[code / 100] += total->status[code];
    s.requests += total->status[code];
  }
  s.klass[0] = total->status_other;
  s.requests += total->status_other;
  for (int k = 0; k < E_KINDS; k++)
    s.errors += total->errors[k];

  if (json)
    print_json (total, &s, measured, interrupted);
  else
    print_text (total, &s, measured, interrupted);
  fflush (stdout);
  return 0;
}
