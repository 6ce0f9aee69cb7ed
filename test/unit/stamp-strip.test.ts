import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { filledStamps } from '../support/stamps.js';
import { renderStampStrip, stampLayout, StampStripCache, stampStripUrl, stampStripVersion, type StampStripStyle } from '../../src/wallets/stamp-strip.js';

const STYLE: StampStripStyle = { perReward: 6, background: '#1f2a44', filled: '#ffcc00', empty: '#c9d3ea' };

describe('stamp strip', () => {
  it('renders Apple strip sizes at 1x, 2x and 3x with exactly the collected stamps filled', () => {
    for (const scale of [1, 2, 3] as const) {
      for (const count of [0, 1, 4, 6]) {
        const png = renderStampStrip(STYLE, count, scale);
        const image = PNG.sync.read(png);
        expect([image.width, image.height]).toEqual([375 * scale, 123 * scale]);
        expect(filledStamps(png, STYLE, scale)).toEqual({ filled: count, hollow: 6 - count });
      }
    }
    // More than perReward never draws more circles than there are.
    expect(filledStamps(renderStampStrip(STYLE, 9, 1), STYLE, 1)).toEqual({ filled: 6, hollow: 0 });
  });

  it('draws an empty stamp as a ring in the label colour, and the corners in the background colour', () => {
    const png = renderStampStrip(STYLE, 0, 2);
    const image = PNG.sync.read(png);
    const { circles, radius } = stampLayout(6, 2);
    const at = (x: number, y: number) => (Math.round(y) * image.width + Math.round(x)) * 4;
    const ringPixel = at(circles[0].x + radius - 3, circles[0].y);
    expect([...image.data.subarray(ringPixel, ringPixel + 3)]).toEqual([0xc9, 0xd3, 0xea]);
    expect([...image.data.subarray(0, 4)]).toEqual([0x1f, 0x2a, 0x44, 255]);
  });

  it('lays more than ten stamps out in rows inside the strip', () => {
    const { circles, radius } = stampLayout(12, 1);
    expect(circles).toHaveLength(12);
    expect(new Set(circles.map((c) => Math.round(c.y))).size).toBe(2);
    for (const c of circles) {
      expect(c.x - radius).toBeGreaterThanOrEqual(0);
      expect(c.x + radius).toBeLessThanOrEqual(375);
      expect(c.y + radius).toBeLessThanOrEqual(123);
    }
    const png = renderStampStrip({ ...STYLE, perReward: 12 }, 7, 1);
    expect(filledStamps(png, { ...STYLE, perReward: 12 }, 1)).toEqual({ filled: 7, hollow: 5 });
  });

  it('caches per program version and count: one rendering each, a colour change is a new version and a new URL', () => {
    const cache = new StampStripCache(10);
    const first = cache.get(STYLE, 3, 2);
    expect(cache.get(STYLE, 3, 2)).toBe(first);
    expect(cache.renders).toBe(1);
    cache.get(STYLE, 4, 2);
    expect(cache.renders).toBe(2);
    const recoloured = { ...STYLE, filled: '#00ff00' };
    expect(stampStripVersion(recoloured)).not.toBe(stampStripVersion(STYLE));
    expect(cache.get(recoloured, 3, 2)).not.toBe(first);
    expect(cache.renders).toBe(3);
    expect(stampStripUrl('https://w.test', 'coffee', STYLE, 3)).toBe(`https://w.test/programs/coffee/stamps/${stampStripVersion(STYLE)}/3.png`);
    // Bounded: the least recently used goes first.
    for (let i = 0; i <= 9; i++) cache.get({ ...STYLE, perReward: 20 }, i, 1);
    expect(cache.get(STYLE, 3, 2)).not.toBe(first);
  });
});
