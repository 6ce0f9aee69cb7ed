import { PNG } from 'pngjs';
import { stampLayout, type StampStripStyle } from '../../src/wallets/stamp-strip.js';

/**
 * Reads a stamp strip back: how many circle centres are painted in the filled colour and how many
 * show the background (an empty stamp is a hollow ring). Anything else at a centre counts as
 * neither, so a wrong colour or layout fails the caller's expectation.
 */
export function filledStamps(png: Buffer, style: StampStripStyle, scale: number): { filled: number; hollow: number } {
  const image = PNG.sync.read(png);
  const hex = (x: number, y: number) => {
    const at = (Math.round(y) * image.width + Math.round(x)) * 4;
    return '#' + [0, 1, 2].map((c) => image.data[at + c].toString(16).padStart(2, '0')).join('');
  };
  let filled = 0;
  let hollow = 0;
  for (const centre of stampLayout(style.perReward, scale).circles) {
    const colour = hex(centre.x, centre.y);
    if (colour === style.filled.toLowerCase()) filled++;
    else if (colour === style.background.toLowerCase()) hollow++;
  }
  return { filled, hollow };
}

export function pngSize(png: Buffer): [number, number] {
  const image = PNG.sync.read(png);
  return [image.width, image.height];
}
