/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "arb-saga-private.h"

G_BEGIN_DECLS

/* Marking: after every price move of a market, the accounts holding it (an
 * index from market to accounts, and per account from market to positions,
 * so one tick costs what is on that market) are re-valued: stop-loss and
 * take-profit are checked, the equity high-water mark moves, and the risk
 * rules' on_mark may fail the assessment, which closes every position at
 * the market and records the evidence. Main thread only. */
typedef struct _ArbMarker ArbMarker;

ArbMarker *arb_marker_new (ArbHost *host, ArbTrading *trading, ArbSaga *saga);
void       arb_marker_free (ArbMarker *marker);
void       arb_marker_on_quote (ArbMarker *marker, const char *market);
/* takes the day anchors of every account whose trading day has changed;
 * an account holding a market without a quote waits for one, at most a
 * minute after the start (doc/risk-rules.md, "Trading days") */
void       arb_marker_take_day_anchors (ArbMarker *marker);
/* what the timer at the end of that minute runs: the anchors of the
 * accounts still waiting are taken with what there is */
void       arb_marker_end_anchor_wait (ArbMarker *marker);
/* fails the active assessments past max_days or inactivity_days (a timer
 * runs it every minute) */
void       arb_marker_check_time_rules (ArbMarker *marker);
guint64    arb_marker_get_marks (ArbMarker *marker);
/* a market status change: a resolved or voided market settles its positions */
void       arb_marker_on_status (ArbMarker *marker, const char *market, ArbMarketState state,
                                 const ArbDecimal *settlement);
/* at shutdown: writes what marks changed; TRUE once every account is idle
 * (nothing queued, nothing committing): call it until it is */
gboolean   arb_marker_flush (ArbMarker *marker);
/* after a committed change of @account: rules and the lifecycle again */
void       arb_marker_after_change (ArbMarker *marker, ArbAccount *account);

G_END_DECLS
