#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regenerate the recordings the ingest-replay plugin ships (doc/replay-format.md).

    /usr/bin/python3 data/replay/generate.py            # rewrite the files next to this script
    /usr/bin/python3 data/replay/generate.py --check    # exit 1 if they are not what it would write

The session is synthetic, not captured: prices start from the upstream fixtures in
../shared/fixtures/upstream (CoinGecko simple/price, Polymarket gamma markets, Kalshi
market_active) and random-walk from there with a fixed seed, so every run writes the same
bytes. Each crypto path is a Brownian bridge (it ends where it started), so a looping replay
has no jump at the seam. The prediction markets are priced from the crypto paths, so the
Polymarket "ETH above $3,000" and the Kalshi "BTC at or above $92,000" quotes move with ETH
and BTC the way the real ones would. Standard library only.
"""

import argparse
import datetime
import decimal
import json
import math
import os
import random
import statistics
import sys

SEED = 20261121
SESSION_START = datetime.datetime(2026, 11, 21, 4, 0, 0, tzinfo=datetime.timezone.utc)
SESSION_MS = 10 * 60 * 1000
SOURCE = "synthetic"
SECONDS_PER_YEAR = 365 * 86400

D = decimal.Decimal


# (market, start price from coingecko/simple_price_full.json, annualised volatility,
#  price tick, spread range in ticks)
CRYPTO = [
    ("crypto:BTC-USD", D("91234.56"), 0.50, D("0.01"), (40, 180)),
    ("crypto:ETH-USD", D("3021.44"), 0.65, D("0.01"), (4, 20)),
    ("crypto:SOL-USD", D("141.87"), 0.80, D("0.01"), (1, 4)),
]

# polymarket/gamma_markets_active.json, id 698421 "Will Ethereum be above $3,000 on
# November 30, 2026?": outcomes ["Yes","No"], outcomePrices ["0.545","0.455"], tick 0.01
POLY_YES = "46096662783338673092330110558598013304958671615798781518556281431378005814059"
POLY_NO = "86246268009048762669948111922835778640552258264973944583659196153404398703833"
POLY_STRIKE = 3000.0
POLY_MID = 0.545

# kalshi/market_active.json: KXBTCD-26NOV2117-T91999.99 "$92,000 or above",
# yes 0.42/0.44, no 0.56/0.58 (no bid = 1 - yes ask), last 0.43
KALSHI_TICKER = "KXBTCD-26NOV2117-T91999.99"
KALSHI_STRIKE = 91999.99
KALSHI_MID = 0.43

# kalshi/market_determined_no.json: KXBTCD-26NOV2017-T92499.99 closed 2026-11-20T22:00:00Z
# and was determined "no" (settlement_value_dollars "0.0000")
DEMO_TICKER = "KXBTCD-26NOV2017-T92499.99"
DEMO_START = datetime.datetime(2026, 11, 20, 21, 59, 52, tzinfo=datetime.timezone.utc)


def iso(start, at_ms):
    t = start + datetime.timedelta(milliseconds=at_ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def money(value, tick):
    return D(value).quantize(tick, rounding=decimal.ROUND_HALF_EVEN)


def line(**fields):
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


def tick_times(rng, lo_ms, hi_ms):
    times, t = [], rng.randint(0, lo_ms)
    while t < SESSION_MS:
        times.append(t)
        t += rng.randint(lo_ms, hi_ms)
    return times


def bridge_path(rng, start, vol, times):
    """log-price random walk through @times, pinned to end where it started"""
    sigma = vol / math.sqrt(SECONDS_PER_YEAR)
    logp, path, prev = math.log(float(start)), [], times[0]
    for t in times:
        logp += rng.gauss(0.0, sigma * math.sqrt((t - prev) / 1000.0))
        path.append(logp)
        prev = t
    drift = path[-1] - path[0]
    span = times[-1] - times[0]
    return [p - drift * (t - times[0]) / span for p, t in zip(path, times)]


def crypto_quotes(rng, market, start, vol, tick, spread_ticks):
    times = tick_times(rng, 1000, 2000)
    path = bridge_path(rng, start, vol, times)
    events, mids = [], []
    for t, logp in zip(times, path):
        mid = D(repr(math.exp(logp)))
        spread = tick * rng.randint(*spread_ticks)
        bid = money(mid - spread / 2, tick)
        ask = bid + spread
        last = bid if rng.random() < 0.5 else ask
        events.append((t, line(at_ms=t, type="quote", market=market, bid=str(bid), ask=str(ask),
                               last=str(last), source=SOURCE, source_time=iso(SESSION_START, t))))
        mids.append((t, float(mid)))
    return events, mids


def price_at(mids, t):
    """the underlying's last mid at or before @t"""
    best = mids[0][1]
    for when, mid in mids:
        if when > t:
            break
        best = mid
    return best


def binary_quotes(rng, mids, strike, fitted_mid, lo_ms, hi_ms, spread_cents, yes_id, no_id):
    """YES priced as N(ln(S/K)/s) with s fitted to the fixture's price; NO mirrors YES"""
    nd = statistics.NormalDist()
    s = math.log(mids[0][1] / strike) / nd.inv_cdf(fitted_mid)
    cent = D("0.01")
    events = []
    for t in tick_times(rng, lo_ms, hi_ms):
        p = nd.cdf(math.log(price_at(mids, t) / strike) / s) + rng.gauss(0.0, 0.004)
        p = min(max(p, 0.02), 0.98)
        yes_bid = money(p - spread_cents / 200.0, cent)
        yes_bid = min(max(yes_bid, cent), D(1) - cent * (spread_cents + 1))
        yes_ask = yes_bid + cent * spread_cents
        yes_last = yes_bid if rng.random() < 0.5 else yes_ask
        when = iso(SESSION_START, t)
        events.append((t, line(at_ms=t, type="quote", market=yes_id, bid=str(yes_bid), ask=str(yes_ask),
                               last=str(yes_last), source=SOURCE, source_time=when)))
        events.append((t, line(at_ms=t, type="quote", market=no_id, bid=str(1 - yes_ask),
                               ask=str(1 - yes_bid), last=str(1 - yes_last), source=SOURCE,
                               source_time=when)))
    return events


def session():
    rng = random.Random(SEED)
    events, mids = [], {}
    poly = ["polymarket:" + POLY_YES, "polymarket:" + POLY_NO]
    kalshi = ["kalshi:%s:yes" % KALSHI_TICKER, "kalshi:%s:no" % KALSHI_TICKER]
    # the prediction markets are open from the first instant; status lines sort first at 0
    for market in poly + kalshi:
        events.append((0, line(at_ms=0, type="status", market=market, state="open",
                               reason="recording start", source=SOURCE,
                               source_time=iso(SESSION_START, 0))))
    for market, start, vol, tick, spread in CRYPTO:
        quotes, mids[market] = crypto_quotes(rng, market, start, vol, tick, spread)
        events += quotes
    events += binary_quotes(rng, mids["crypto:ETH-USD"], POLY_STRIKE, POLY_MID, 2000, 6000, 1, *poly)
    events += binary_quotes(rng, mids["crypto:BTC-USD"], KALSHI_STRIKE, KALSHI_MID, 3000, 8000, 2,
                            *kalshi)
    events.sort(key=lambda e: e[0])  # stable: ties keep the order above
    return [text for _, text in events]


def resolution_demo():
    yes, no = "kalshi:%s:yes" % DEMO_TICKER, "kalshi:%s:no" % DEMO_TICKER
    out = []

    def status(at, state, reason, settlement=None):
        for market, payout in ((yes, "0"), (no, "1")):
            fields = dict(at_ms=at, type="status", market=market, state=state)
            if settlement:
                fields["settlement"] = payout
            fields.update(reason=reason, source=SOURCE, source_time=iso(DEMO_START, at))
            out.append(line(**fields))

    def quote(at, yes_bid, yes_ask, yes_last):
        for market, bid, ask, last in ((yes, yes_bid, yes_ask, yes_last),
                                       (no, 1 - D(yes_ask), 1 - D(yes_bid), 1 - D(yes_last))):
            out.append(line(at_ms=at, type="quote", market=market, bid=str(bid), ask=str(ask),
                            last=str(last), source=SOURCE, source_time=iso(DEMO_START, at)))

    status(0, "open", "recording start")
    quote(0, "0.07", "0.09", "0.08")
    quote(1000, "0.06", "0.08", "0.06")
    status(2000, "halted", "trading paused by the exchange")
    status(4000, "open", "trading resumed")
    quote(4500, "0.05", "0.07", "0.05")
    status(6000, "closed", "close_time 2026-11-20T22:00:00Z reached; awaiting determination")
    status(8000, "resolved", "determined: result no, settlement_value_dollars 0.0000", settlement=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    stale = []
    for name, lines in (("session-10m.jsonl", session()), ("resolution-demo.jsonl", resolution_demo())):
        path = os.path.join(args.dir, name)
        text = "".join(l + "\n" for l in lines)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                stale.append(path)
            continue
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("%s: %d lines, %d bytes" % (path, len(lines), len(text.encode())))
    if stale:
        print("out of date (run data/replay/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
