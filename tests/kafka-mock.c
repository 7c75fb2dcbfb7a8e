/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* kafka-mock: librdkafka's mock cluster (rdkafka_mock.h), a real
 * Kafka-protocol broker set over TCP on 127.0.0.1, for tests and benchmarks.
 *
 *   kafka-mock [--brokers N] [--partitions N] [--topics PREFIX]
 *
 * --topics creates PREFIX.assessments, .orders, .trades, .positions,
 * .quotes, .markets, .feeds and .events (the topics of sink-kafka) with
 * --partitions partitions each (default 4); other topics are created on
 * first use, with 4 partitions.
 *
 * Prints one line, "bootstrap HOST:PORT,HOST:PORT,...", then reads commands
 * from standard input, one a line, and answers each with "ok" or "error
 * WHAT":
 *
 *   down ID              broker ID (1..N) drops its connections and refuses new ones
 *   up ID                broker ID takes connections again
 *   down-all / up-all    every broker
 *   errors API N CODE    the next N requests of Kafka API key API (0 = Produce)
 *                        fail with error CODE (a Kafka error number, e.g. 7 =
 *                        REQUEST_TIMED_OUT, 6 = NOT_LEADER_FOR_PARTITION)
 *   clear API            forget the errors still queued for API
 *   rtt ID MS            broker ID answers MS milliseconds late
 *   topic NAME N         create topic NAME with N partitions
 *   quit                 exit
 *
 * It exits on "quit", at the end of its input (the test that started it went
 * away) and on SIGTERM or SIGINT. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int
reply (const char *what)
{
  if (printf ("%s\n", what) < 0 || fflush (stdout) != 0)
    return -1;
  return 0;
}

static const char *
err_text (rd_kafka_resp_err_t err)
{
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : rd_kafka_err2name (err);
}

static void
set_all (rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
  for (int id = 1; id <= brokers; id++)
    {
      if (up)
        rd_kafka_mock_broker_set_up (mc, id);
      else
        rd_kafka_mock_broker_set_down (mc, id);
    }
}

static int
run_command (rd_kafka_mock_cluster_t *mc, int brokers, char *line, int *quit)
{
  char word[64] = "";
  char name[256] = "";
  int a = 0, b = 0, c = 0;
  char buf[300];

  if (sscanf (line, "%63s", word) != 1)
    return reply ("error empty command");
  if (strcmp (word, "quit") == 0)
    {
      *quit = 1;
      return reply ("ok");
    }
  if (strcmp (word, "down-all") == 0 || strcmp (word, "up-all") == 0)
    {
      set_all (mc, brokers, word[0] == 'u');
      return reply ("ok");
    }
  if ((strcmp (word, "down") == 0 || strcmp (word, "up") == 0) && sscanf (line, "%*s %d", &a) == 1)
    {
      rd_kafka_resp_err_t err = word[0] == 'u' ? rd_kafka_mock_broker_set_up (mc, a)
                                               : rd_kafka_mock_broker_set_down (mc, a);
      snprintf (buf, sizeof buf, "%s%s", err ? "error " : "", err_text (err));
      return reply (buf);
    }
  if (strcmp (word, "errors") == 0 && sscanf (line, "%*s %d %d %d", &a, &b, &c) == 3 && b > 0)
    {
      rd_kafka_resp_err_t *errs = calloc ((size_t) b, sizeof *errs);
      if (errs == NULL)
        return reply ("error out of memory");
      for (int i = 0; i < b; i++)
        errs[i] = (rd_kafka_resp_err_t) c;
      rd_kafka_mock_push_request_errors_array (mc, (int16_t) a, (size_t) b, errs);
      free (errs);
      return reply ("ok");
    }
  if (strcmp (word, "clear") == 0 && sscanf (line, "%*s %d", &a) == 1)
    {
      rd_kafka_mock_clear_request_errors (mc, (int16_t) a);
      return reply ("ok");
    }
  if (strcmp (word, "rtt") == 0 && sscanf (line, "%*s %d %d", &a, &b) == 2)
    {
      rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt (mc, a, b);
      snprintf (buf, sizeof buf, "%s%s", err ? "error " : "", err_text (err));
      return reply (buf);
    }
  if (strcmp (word, "topic") == 0 && sscanf (line, "%*s %255s %d", name, &a) == 2 && a > 0)
    {
      rd_kafka_resp_err_t err = rd_kafka_mock_topic_create (mc, name, a, brokers < 3 ? brokers : 3);
      snprintf (buf, sizeof buf, "%s%s", err ? "error " : "", err_text (err));
      return reply (buf);
    }
  snprintf (buf, sizeof buf, "error unknown command: %.200s", line);
  return reply (buf);
}

static void
usage (const char *argv0)
{
  fprintf (stderr, "usage: %s [--brokers N] [--partitions N] [--topics PREFIX]\n", argv0);
}

int
main (int argc, char **argv)
{
  int brokers = 3;
  int partitions = 4;
  const char *prefix = NULL;
  char errstr[512];
  char line[1024];
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mc;
  int quit = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--brokers") == 0 && i + 1 < argc)
        brokers = atoi (argv[++i]);
      else if (strcmp (argv[i], "--partitions") == 0 && i + 1 < argc)
        partitions = atoi (argv[++i]);
      else if (strcmp (argv[i], "--topics") == 0 && i + 1 < argc)
        prefix = argv[++i];
      else
        {
          usage (argv[0]);
          return 2;
        }
    }
  if (brokers < 1 || brokers > 16 || partitions < 1 || partitions > 256)
    {
      usage (argv[0]);
      return 2;
    }
  /* the test that started us may die first: a write to the closed pipe
   * must end us, and that is SIGPIPE's default */
  signal (SIGPIPE, SIG_DFL);

  /* the cluster lives in a client handle of its own */
  conf = rd_kafka_conf_new ();
  if (rd_kafka_conf_set (conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      fprintf (stderr, "kafka-mock: %s\n", errstr);
      return 1;
    }
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      fprintf (stderr, "kafka-mock: %s\n", errstr);
      return 1;
    }
  mc = rd_kafka_mock_cluster_new (rk, brokers);
  if (mc == NULL)
    {
      fprintf (stderr, "kafka-mock: cannot start the mock cluster\n");
      rd_kafka_destroy (rk);
      return 1;
    }
  {
    static const char *const families[] = { "assessments", "orders", "trades", "positions",
                                            "quotes", "markets", "feeds", "events" };
    for (size_t i = 0; prefix != NULL && i < sizeof families / sizeof families[0]; i++)
      {
        char topic[256];
        snprintf (topic, sizeof topic, "%s.%s", prefix, families[i]);
        rd_kafka_mock_topic_create (mc, topic, partitions, brokers < 3 ? brokers : 3);
      }
  }

  if (printf ("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps (mc)) < 0 || fflush (stdout) != 0)
    quit = 1;
  while (!quit && fgets (line, sizeof line, stdin) != NULL)
    {
      line[strcspn (line, "\r\n")] = '\0';
      if (line[0] == '\0')
        continue;
      if (run_command (mc, brokers, line, &quit) != 0)
        break;
    }

  rd_kafka_mock_cluster_destroy (mc);
  rd_kafka_destroy (rk);
  return 0;
}
