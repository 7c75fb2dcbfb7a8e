/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Feeds: failover and circuit breakers for market data, in the host, once,
 * for every ingest plugin (doc/feeds.md).
 *
 * A `[feed:NAME]` group names ingest instances in priority order
 * (`sources=coingecko,coinmarketcap`). Each source has a breaker:
 *
 *   CLOSED --failure_threshold failures in a row, or no fresh quote for stale_after--> OPEN
 *   OPEN --cooldown--> HALF_OPEN (one probe may go out)
 *   HALF_OPEN --a fresh quote--> CLOSED      HALF_OPEN --a failure, or no answer--> OPEN
 *
 * The feed's active source is the first closed one in priority order; a
 * higher one takes over again once it has been closed, without a failure,
 * for recover_after. Only the active source's quotes reach the price book.
 * A switch is logged, counted, exported as metrics and published as an
 * event: feed.failover (to a lower source), feed.recovered (to a higher
 * one), feed.down (none left).
 *
 * A failure is a health report from the instance that is not OK when the
 * instance published no fresh quote since its previous report (a partial
 * answer that still brought quotes is not a failure of the source), or a
 * quote the host refused. A quote is fresh when its source time (its receive
 * time when it has none) is within stale_after of now.
 *
 * Thread-safe: quotes and health reports may come from any thread. The
 * breakers' timers run on the host's main context.
 */

#include "arb-host-private.h"

G_BEGIN_DECLS

typedef struct _ArbFeeds ArbFeeds;

typedef enum {
  ARB_BREAKER_CLOSED,
  ARB_BREAKER_HALF_OPEN,
  ARB_BREAKER_OPEN,
} ArbBreakerState;

const char *arb_breaker_state_to_string (ArbBreakerState state);

/* the keys of a [feed:NAME] group, for the checker and --describe-plugin */
const ArbConfigKey *arb_feeds_schema (void);

/* Reads every [feed:NAME] group of @config, checking each against the
 * schema and its sources against @host's ingest instances (which must be
 * there already); every problem goes into @problems, as
 * arb_config_check_group() does. Returns the feeds (none is fine), also when
 * there were problems. */
ArbFeeds   *arb_feeds_new (ArbHost *host, ArbConfig *config, GPtrArray *problems);
void        arb_feeds_free (ArbFeeds *feeds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArbFeeds, arb_feeds_free)
guint       arb_feeds_get_count (ArbFeeds *feeds);

/* after the ingest instances were started: picks each feed's first source
 * and starts the breakers' timer on the host's context; stop removes it */
void        arb_feeds_start (ArbFeeds *feeds);
void        arb_feeds_stop (ArbFeeds *feeds);

/* The host's hooks. */

/* every quote an ingest instance published and the host accepted, before
 * the price book: TRUE when it may go on to the book (the instance is the
 * active source of its feed, or in no feed) */
gboolean    arb_feeds_accept_quote (ArbFeeds *feeds, ArbInstance *source, ArbQuote *quote);
/* every health report of an instance (arb_instance_set_health), repeated
 * ones included: each one that is not OK may count as a failure */
void        arb_feeds_on_health (ArbFeeds *feeds, ArbInstance *source, ArbHealth health, const char *reason);
/* a quote of @source the host refused (arb_quote_validate failed) */
void        arb_feeds_on_publish_error (ArbFeeds *feeds, ArbInstance *source, const char *why);
/* arb_instance_get_hold_off_ms(): 0, or how long @source should leave its
 * upstream alone */
gint64      arb_feeds_hold_off_ms (ArbFeeds *feeds, ArbInstance *source);
/* the order path: FALSE when @market belongs to a feed (one of its sources
 * quoted it) that has no healthy source now; TRUE otherwise */
gboolean    arb_feeds_market_has_healthy_source (ArbFeeds *feeds, const char *market);
/* adds "feeds": [...] to the /ready object being built (@builder is a
 * JsonBuilder inside an object); clears *ready when a required feed has no
 * healthy source */
void        arb_feeds_add_ready_json (ArbFeeds *feeds, gpointer builder, gboolean *ready);

/* For tests and introspection: the feed's active source (an instance name,
 * transfer full, NULL when it has none), and a source's breaker. */
char           *arb_feeds_dup_active (ArbFeeds *feeds, const char *feed);
ArbBreakerState arb_feeds_get_breaker (ArbFeeds *feeds, ArbInstance *source);

G_END_DECLS
