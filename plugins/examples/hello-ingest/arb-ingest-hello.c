/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ingest-hello: the example of doc/plugin-guide.md. It publishes a quote for
 * one market at a fixed mid price and spread, every `interval`. Useful as a
 * template and as a steady price source in demos; not a market-data feed. */
#include <arbiter/arb-plugin.h>

typedef struct {
  ArbInstance *inst;
  char        *market;
  ArbDecimal   bid;
  ArbDecimal   ask;
  gint64       interval_ms;
  guint        timer;
} Hello;

static const ArbConfigKey hello_config[] = {
  { "market", ARB_CFG_STRING, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "market id to quote, for example crypto:BTC-USD" },
  { "price", ARB_CFG_DECIMAL, ARB_CFG_REQUIRED, NULL, 0, 0, NULL, "mid price" },
  { "spread_bps", ARB_CFG_INT, 0, "10", 0, 10000, NULL, "distance from bid to ask, in basis points of the price" },
  { "interval", ARB_CFG_DURATION, 0, "1s", 10, 86400000, NULL, "how often a quote is published" },
  { NULL }
};

static gpointer
hello_create (ArbInstance *inst, GError **error)
{
  g_autofree Hello *self = g_new0 (Hello, 1);
  ArbDecimal price = arb_instance_get_decimal (inst, "price");
  ArbDecimal half_spread;

  /* config is already checked against hello_config; what the schema cannot
   * say is checked here, still without any I/O */
  if (price.raw <= 0)
    {
      g_set_error (error, ARB_PLUGIN_ERROR, ARB_PLUGIN_ERROR_CONFIG, "price must be above zero");
      return NULL;
    }
  if (!arb_decimal_mul_div (price, arb_decimal_from_raw (arb_instance_get_int (inst, "spread_bps") * ARB_DECIMAL_SCALE),
                            arb_decimal_from_raw (20000 * ARB_DECIMAL_SCALE), ARB_ROUND_HALF_EVEN, &half_spread, error)
      || !arb_decimal_sub (price, half_spread, &self->bid, error)
      || !arb_decimal_add (price, half_spread, &self->ask, error))
    return NULL;
  self->inst = inst;
  self->market = g_strdup (arb_instance_get_string (inst, "market"));
  self->interval_ms = arb_instance_get_duration_ms (inst, "interval");
  return g_steal_pointer (&self);
}

static gboolean
hello_tick (gpointer data)
{
  Hello *self = data;
  g_autoptr(ArbQuote) quote = arb_quote_new (self->market);
  g_autoptr(GError) error = NULL;

  arb_quote_set_bid (quote, self->bid);
  arb_quote_set_ask (quote, self->ask);
  arb_quote_set_source_time (quote, arb_now_us ());
  if (!arb_instance_publish_quote (self->inst, quote, &error))
    {
      /* the host refused it (a bad market id, say): say why, and stop trying */
      arb_instance_set_health (self->inst, ARB_HEALTH_DOWN, "%s", error->message);
      self->timer = 0;
      return G_SOURCE_REMOVE;
    }
  arb_instance_counter_add (self->inst, "hello_quotes_total", 1);
  return G_SOURCE_CONTINUE;
}

static gboolean
hello_start (gpointer data, GError **error)
{
  Hello *self = data;
  /* timers run on the host's main context, serialised with our callbacks */
  self->timer = arb_instance_timer_add (self->inst, (guint) self->interval_ms, hello_tick);
  arb_instance_set_health (self->inst, ARB_HEALTH_OK, NULL);
  return TRUE;
}

static void
hello_stop (gpointer data)
{
  Hello *self = data;
  if (self->timer != 0)
    arb_instance_timer_cancel (self->inst, self->timer);
  self->timer = 0;
}

static void
hello_destroy (gpointer data)
{
  Hello *self = data;
  g_free (self->market);
  g_free (self);
}

static const ArbIngestVTable hello_vtable = {
  .size = sizeof (ArbIngestVTable),
  .create = hello_create,
  .start = hello_start,
  .stop = hello_stop,
  .destroy = hello_destroy,
};

static const ArbPluginDesc hello_desc = {
  ARB_PLUGIN_DESC_HEADER,
  .name = "ingest-hello",
  .version = "1.0.0",
  .summary = "Example: publish a fixed quote for one market at an interval",
  .kind = ARB_PLUGIN_INGEST,
  .config = hello_config,
  .vtable = &hello_vtable,
};

ARB_PLUGIN_DEFINE (ingest_hello, hello_desc)
