/**
 * The process-wide token bucket for Wallet API calls (reference google-wallet.md section 5, checklist 38),
 * on a manual clock: no real time, no timing thresholds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTokenBucket, processRateLimiter } from '../../src/wallets/google/rate-limiter.js';

/** A manual clock + timer queue; `advance` fires due timers in time order and lets promises settle. */
function manualClock() {
  let t = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const delays: number[] = [];
  const flush = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return {
    now: () => t,
    setTimer: (fn: () => void, ms: number) => {
      delays.push(ms);
      timers.push({ at: t + ms, fn });
    },
    delays,
    pending: () => timers.length,
    async advance(ms: number) {
      // Settle what is already resolved before time moves.
      await flush();
      const target = t + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > target) break;
        timers = timers.slice(1);
        t = next.at;
        next.fn();
        await flush();
      }
      t = target;
      await flush();
    },
    async runAll() {
      while (timers.length > 0) await this.advance(Math.max(0, Math.min(...timers.map((x) => x.at)) - t));
    },
  };
}

/** Largest number of acquisitions inside any half-open window [s, s + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    for (let j = i; j < times.length && times[j]! < times[i]! + windowMs; j++) n++;
    best = Math.max(best, n);
  }
  return best;
}

describe('token bucket', () => {
  it('lets one call through at once and spaces the rest 1/rate apart (burst 1)', async () => {
    const clock = manualClock();
    const limiter = createTokenBucket({ ratePerSecond: 20, now: clock.now, setTimer: clock.setTimer });
    const times: number[] = [];
    for (let i = 0; i < 60; i++) void limiter.acquire().then(() => times.push(clock.now()));
    await clock.advance(0);
    expect(times).toEqual([0]);
    await clock.runAll();
    expect(times).toHaveLength(60);
    expect(times.slice(0, 4)).toEqual([0, 50, 100, 150]);
    expect(times.at(-1)).toBe(59 * 50);
    expect(maxInWindow(times, 1000)).toBe(20);
  });

  it('property: never more than `rate` acquisitions in any 1 s window with burst 1, any arrival pattern; FIFO; no spinning', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 3, 7, 20, 50),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 120 }),
        async (rate, gaps) => {
          const clock = manualClock();
          const limiter = createTokenBucket({ ratePerSecond: rate, now: clock.now, setTimer: clock.setTimer });
          const order: number[] = [];
          const times: number[] = [];
          for (const [i, gap] of gaps.entries()) {
            await clock.advance(gap);
            void limiter.acquire().then(() => {
              order.push(i);
              times.push(clock.now());
            });
          }
          await clock.advance(0);
          await clock.runAll();
          expect(order).toEqual(gaps.map((_, i) => i));
          expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(rate);
          // Timers are only armed for a real wait (≥ 1 ms), and never more than once per waiter plus rounding.
          expect(Math.min(...clock.delays, Infinity)).toBeGreaterThanOrEqual(1);
          expect(clock.delays.length).toBeLessThanOrEqual(2 * gaps.length);
          expect(limiter.waiting).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('property: with burst b, any window of W ms holds at most b − 1 + rate·W/1000 acquisitions (rounded up)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(5, 20),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 100 }),
        fc.constantFrom(250, 1000, 3000),
        async (rate, burst, gaps, windowMs) => {
          const clock = manualClock();
          const limiter = createTokenBucket({ ratePerSecond: rate, burst, now: clock.now, setTimer: clock.setTimer });
          const times: number[] = [];
          for (const gap of gaps) {
            await clock.advance(gap);
            void limiter.acquire().then(() => times.push(clock.now()));
          }
          await clock.runAll();
          expect(times).toHaveLength(gaps.length);
          expect(maxInWindow(times, windowMs)).toBeLessThanOrEqual(Math.ceil(burst - 1 + (rate * windowMs) / 1000));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a caller arriving while others wait queues behind them (FIFO), even when a token is free', async () => {
    const clock = manualClock();
    const limiter = createTokenBucket({ ratePerSecond: 10, now: clock.now, setTimer: clock.setTimer });
    const order: string[] = [];
    void limiter.acquire().then(() => order.push('a'));
    void limiter.acquire().then(() => order.push('b'));
    await clock.advance(100); // b's token becomes available exactly now
    void limiter.acquire().then(() => order.push('c'));
    await clock.runAll();
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('an idle limiter accumulates at most `burst` tokens', async () => {
    const clock = manualClock();
    const limiter = createTokenBucket({ ratePerSecond: 10, burst: 3, now: clock.now, setTimer: clock.setTimer });
    await clock.advance(60_000);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) void limiter.acquire().then(() => times.push(clock.now()));
    await clock.runAll();
    expect(times).toEqual([60_000, 60_000, 60_000, 60_100, 60_200]);
  });

  it('rejects nonsense rates', () => {
    expect(() => createTokenBucket({ ratePerSecond: 0 })).toThrow(RangeError);
    expect(() => createTokenBucket({ ratePerSecond: 5, burst: 0 })).toThrow(RangeError);
  });

  it('processRateLimiter returns one limiter per process and reports a conflicting rate', () => {
    const first = processRateLimiter(20);
    const mismatches: number[] = [];
    const second = processRateLimiter(50, (active) => mismatches.push(active));
    expect(second).toBe(first);
    expect(mismatches).toEqual([20]);
  });
});
