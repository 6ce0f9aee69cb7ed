/** The part of jstat (no types of its own) that src/economics/statistics.ts uses. */
declare module 'jstat' {
  interface Distribution {
    cdf(x: number, ...parameters: number[]): number;
    inv(p: number, ...parameters: number[]): number;
  }
  export const jStat: { normal: Distribution; studentt: Distribution };
}
