import { describe, expect, it } from 'vitest';
import { moments, tQuantile, twoProportions, welch, zQuantile } from '../../src/economics/statistics.js';

// Reference values from SciPy 1.17 (stats.ttest_ind(..., equal_var=False) and its
// confidence_interval(0.95); stats.t.ppf) and R's prop.test(correct = FALSE), computed outside
// this code base.
describe('effect statistics', () => {
  it('quantiles', () => {
    expect(zQuantile()).toBeCloseTo(1.959964, 6);
    expect(tQuantile(10)).toBeCloseTo(2.228138852, 6);
    expect(tQuantile(30)).toBeCloseTo(2.042272456, 6);
  });

  it('two proportions: 60/100 against 45/100', () => {
    const r = twoProportions(60, 100, 45, 100)!;
    expect(r.difference).toBeCloseTo(0.15, 12);
    // Wald interval: 0.15 ± 1.959964 × √(0.6·0.4/100 + 0.45·0.55/100)
    expect(r.low).toBeCloseTo(0.013153, 6);
    expect(r.high).toBeCloseTo(0.286847, 6);
    // prop.test(c(60, 45), c(100, 100), correct = FALSE): X-squared = 4.5113, p-value = 0.03367
    expect(r.pValue).toBeCloseTo(0.033672, 5);
    expect(r.significant).toBe(true);
  });

  it('two proportions: no difference, empty groups, all or nothing', () => {
    expect(twoProportions(5, 10, 5, 10)).toMatchObject({ difference: 0, pValue: 1, significant: false });
    expect(twoProportions(1, 0, 1, 10)).toBeNull();
    expect(twoProportions(0, 10, 0, 20)).toMatchObject({ difference: 0, low: 0, high: 0, pValue: 1, significant: false });
  });

  it("Welch's t: 1..5 against 2, 4, …, 10", () => {
    const r = welch(moments([1, 2, 3, 4, 5]), moments([2, 4, 6, 8, 10]))!;
    expect(r.difference).toBe(-3);
    expect(r.df).toBeCloseTo(5.882352941, 8);
    expect(r.low).toBeCloseTo(-6.887741644, 6);
    expect(r.high).toBeCloseTo(0.887741644, 6);
    expect(r.pValue).toBeCloseTo(0.107531195, 6);
    expect(r.significant).toBe(false);
  });

  it("Welch's t on revenue per holder with most holders at zero", () => {
    const treated = [...Array(80).fill(0), ...Array(15).fill(500), ...Array(5).fill(2000)];
    const control = [...Array(90).fill(0), ...Array(8).fill(500), ...Array(2).fill(2000)];
    const r = welch(moments(treated), moments(control))!;
    expect(r.difference).toBeCloseTo(95, 10);
    expect(r.df).toBeCloseTo(173.362004385, 6);
    expect(r.low).toBeCloseTo(-13.736919368, 5);
    expect(r.high).toBeCloseTo(203.736919368, 5);
    expect(r.pValue).toBeCloseTo(0.086418793, 6);
  });

  it('Welch is undefined below two holders a group, and exact without variance', () => {
    expect(welch(moments([1]), moments([1, 2]))).toBeNull();
    expect(welch(moments([3, 3]), moments([1, 1, 1]))).toMatchObject({ difference: 2, low: 2, high: 2, pValue: 0, significant: true });
  });
});
