/**
 * Process-wide client-side rate limit for the Wallet Objects API.
 *
 * Reference: /work/shared/reference/google-wallet.md, section 5 ("Calls to the Google Wallet API are
 * rate limited to 20 requests per second", Google: Wallet FAQ; no rate-limit headers published) and
 * checklist 38.
 *
 * A token bucket: `ratePerSecond` tokens per second, at most `burst` stored. Waiters are served strictly
 * in arrival order (FIFO): a caller that arrives while others wait queues behind them even if a token has
 * just become free. One timer is armed for the moment the next token exists; nothing polls.
 *
 * Default burst is 1, i.e. calls are spaced 1/rate apart. Why: a bucket with burst b lets b + rate·W calls
 * through in any window of W seconds, so the common "burst = rate" would allow 40 calls within one
 * second. Google does not say how its 20/s window is measured; with burst 1 no 1-second window ever sees
 * more than `ratePerSecond` calls, whatever the window. A single call still goes out at once when the
 * API is idle.
 */

export interface RateLimiter {
  /** Resolves when the caller may send one request. */
  acquire(): Promise<void>;
  /** Callers currently waiting. */
  readonly waiting: number;
}

export interface TokenBucketOptions {
  ratePerSecond: number;
  /** Tokens that may accumulate while idle (default 1, see the module comment). */
  burst?: number;
  /** Milliseconds clock (monotonic by default). */
  now?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
}

export function createTokenBucket(opts: TokenBucketOptions): RateLimiter {
  const rate = opts.ratePerSecond;
  const burst = opts.burst ?? 1;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be positive, got ${rate}`);
  if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`burst must be >= 1, got ${burst}`);
  const now = opts.now ?? (() => performance.now());
  const setTimer = opts.setTimer ?? ((callback: () => void, ms: number) => setTimeout(callback, ms));

  let tokens = burst;
  let refilledAt = now();
  let timerArmed = false;
  const queue: Array<() => void> = [];

  function refill(): void {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - refilledAt) * rate) / 1000);
    refilledAt = t;
  }

  function drain(): void {
    refill();
    while (queue.length > 0 && tokens >= 1) {
      tokens -= 1;
      queue.shift()!();
    }
    if (queue.length > 0 && !timerArmed) {
      timerArmed = true;
      // Math.ceil (at least 1 ms): waking up a hair early would only re-arm the timer, never spin.
      const wait = Math.max(1, Math.ceil(((1 - tokens) * 1000) / rate));
      setTimer(() => {
        timerArmed = false;
        drain();
      }, wait);
    }
  }

  return {
    acquire() {
      return new Promise<void>((resolve) => {
        queue.push(resolve);
        drain();
      });
    },
    get waiting() {
      return queue.length;
    },
  };
}

let shared: { limiter: RateLimiter; ratePerSecond: number } | undefined;

/**
 * The one limiter of this process (checklist 38 is "per process": every client instance must share it).
 * The first caller's rate wins; a later, different rate is ignored and reported through `onMismatch`.
 */
export function processRateLimiter(ratePerSecond: number, onMismatch?: (active: number) => void): RateLimiter {
  if (!shared) shared = { limiter: createTokenBucket({ ratePerSecond }), ratePerSecond };
  else if (shared.ratePerSecond !== ratePerSecond) onMismatch?.(shared.ratePerSecond);
  return shared.limiter;
}
