/**
 * The statistics behind a campaign's effect (docs/campaigns.md, "Measuring the effect"): the
 * difference between the treated group and the control group with a 95 % confidence interval.
 *
 * - Shares (conversion, reactivation): the difference of two proportions with the Wald interval
 *   p₁ − p₂ ± z·√(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂), and the two-proportion z-test with the pooled
 *   proportion for the p-value (what R's `prop.test(correct = FALSE)` reports).
 * - Means (revenue, purchases per holder): Welch's t: the difference of the means
 *   ± t(0.975, ν)·√(s₁²/n₁ + s₂²/n₂), with the Welch–Satterthwaite degrees of freedom ν; zeros of the
 *   holders who bought nothing are part of each group's mean. No equal variances are assumed.
 *
 * Quantiles and distribution functions come from jstat.
 */
import jstatModule from 'jstat';

const { jStat } = jstatModule as unknown as typeof import('jstat');

export const CONFIDENCE = 0.95;

export interface Interval {
  /** Treated minus control. */
  difference: number;
  low: number;
  high: number;
  /** Two-sided p-value of "no difference". */
  pValue: number;
  /** The interval excludes zero. */
  significant: boolean;
}

export interface GroupMoments {
  n: number;
  mean: number;
  /** Sample variance (n − 1 in the denominator). */
  variance: number;
}

/** z such that P(|Z| ≤ z) = level (1.959964 for 95 %). */
export function zQuantile(level = CONFIDENCE): number {
  return jStat.normal.inv(1 - (1 - level) / 2, 0, 1);
}

/** t such that P(|T_ν| ≤ t) = level. */
export function tQuantile(df: number, level = CONFIDENCE): number {
  return jStat.studentt.inv(1 - (1 - level) / 2, df);
}

function interval(difference: number, margin: number, pValue: number): Interval {
  const low = difference - margin;
  const high = difference + margin;
  return { difference, low, high, pValue, significant: low > 0 || high < 0 };
}

/**
 * Treated share x₁/n₁ against control share x₂/n₂. Null when either group is empty.
 */
export function twoProportions(x1: number, n1: number, x2: number, n2: number, level = CONFIDENCE): Interval | null {
  if (n1 <= 0 || n2 <= 0) return null;
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const difference = p1 - p2;
  const margin = zQuantile(level) * Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  const pooled = (x1 + x2) / (n1 + n2);
  const se0 = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const pValue = se0 === 0 ? (difference === 0 ? 1 : 0) : 2 * (1 - jStat.normal.cdf(Math.abs(difference / se0), 0, 1));
  return interval(difference, margin, pValue);
}

/**
 * Welch's interval for the difference of two means. Null when a group has fewer than two members
 * (no variance). When both variances are zero the interval is the difference itself.
 */
export function welch(treated: GroupMoments, control: GroupMoments, level = CONFIDENCE): (Interval & { df: number }) | null {
  if (treated.n < 2 || control.n < 2) return null;
  const a = treated.variance / treated.n;
  const b = control.variance / control.n;
  const difference = treated.mean - control.mean;
  const se = Math.sqrt(a + b);
  if (se === 0) return { ...interval(difference, 0, difference === 0 ? 1 : 0), df: treated.n + control.n - 2 };
  const df = (a + b) ** 2 / (a ** 2 / (treated.n - 1) + b ** 2 / (control.n - 1));
  const t = difference / se;
  const pValue = 2 * (1 - jStat.studentt.cdf(Math.abs(t), df));
  return { ...interval(difference, tQuantile(df, level) * se, pValue), df };
}

/** Mean and sample variance of a list (tests, and small groups computed in memory). */
export function moments(values: readonly number[]): GroupMoments {
  const n = values.length;
  const mean = n === 0 ? 0 : values.reduce((s, v) => s + v, 0) / n;
  const variance = n < 2 ? 0 : values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  return { n, mean, variance };
}
