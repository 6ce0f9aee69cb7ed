import { Worker } from 'node:worker_threads';
import QRCode from 'qrcode';
import { AppError } from '../http/errors.js';
import { escapeHtml } from '../http/html.js';

/**
 * Print sizes for the QR endpoints, in pixels (PNG) or user units (SVG width/height). 2048 pixels is
 * 17 cm at 300 dpi, an A4 poster's worth; 4096 cost ~1.5–3 s of CPU per code (issue #11).
 */
export const QR_SIZE = { min: 128, max: 2048, default: 1024 } as const;

// Level M survives a crumpled poster or a scuffed sticker (≈15 % damage) and keeps the symbol small;
// 4 modules of quiet zone is what the standard asks for.
const OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

/** A standalone SVG document with explicit width/height, for print. */
export function qrSvgDocument(text: string, size: number): Promise<string> {
  return QRCode.toString(text, { ...OPTIONS, type: 'svg', width: size });
}

/** An SVG to inline into a page: scales with CSS, announced to screen readers by `label`. */
export async function qrSvgInline(text: string, label: string, className = 'qr'): Promise<string> {
  const svg = await QRCode.toString(text, { ...OPTIONS, margin: 2, type: 'svg' });
  return svg.replace(/^<svg /, `<svg class="${escapeHtml(className)}" role="img" aria-label="${escapeHtml(label)}" focusable="false" `);
}

export interface QrRendererOptions {
  /** PNGs waiting for or in the worker; one more is refused with 503 (default 16). */
  maxPending?: number;
  /** Rendered codes kept (least recently used goes first; default 256, ~6 MB at the largest size). */
  cacheEntries?: number;
}

interface Job {
  resolve: (png: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * The public QR endpoints' renderer (`GET /programs/{slug}/qr.png|svg`, no key). Three limits keep
 * public QR traffic from delaying anything else (issue #11: eight 4096-pixel PNGs in parallel kept
 * `/livez` waiting for 26 s):
 *
 * - a size ceiling (QR_SIZE.max);
 * - a cache of rendered codes: a poster's link is fetched again and again;
 * - PNGs are rasterised on one worker thread, never on the main thread, with at most `maxPending`
 *   waiting; more answer 503 `qr_busy` with Retry-After instead of piling up.
 *
 * SVGs are text whose length does not depend on the size: rendered in place, cached too.
 */
export class QrRenderer {
  readonly #cache = new Map<string, Buffer | string>();
  readonly #jobs = new Map<number, Job>();
  readonly #maxPending: number;
  readonly #cacheEntries: number;
  #worker: Worker | undefined;
  #nextId = 1;
  #closed = false;
  /** PNGs rendered by the worker since start (tests count cache hits with it). */
  rendered = 0;

  constructor(options: QrRendererOptions = {}) {
    this.#maxPending = options.maxPending ?? 16;
    this.#cacheEntries = options.cacheEntries ?? 256;
  }

  /** PNGs waiting for or being rendered by the worker now. */
  get pending(): number {
    return this.#jobs.size;
  }

  async png(text: string, size: number): Promise<Buffer> {
    const key = `png:${size}:${text}`;
    const cached = this.#cached(key);
    if (cached !== undefined) return cached as Buffer;
    if (this.#jobs.size >= this.#maxPending) {
      throw new AppError(503, 'qr_busy', 'Too many QR codes are being drawn right now; retry in a few seconds', { retryAfterSeconds: 5 });
    }
    const png = await this.#render(text, size);
    this.rendered++;
    this.#remember(key, png);
    return png;
  }

  async svg(text: string, size: number): Promise<string> {
    const key = `svg:${size}:${text}`;
    const cached = this.#cached(key);
    if (cached !== undefined) return cached as string;
    const svg = await qrSvgDocument(text, size);
    this.#remember(key, svg);
    return svg;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('QR renderer closed'));
    if (worker) await worker.terminate();
  }

  #cached(key: string): Buffer | string | undefined {
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.#cache.delete(key);
      this.#cache.set(key, hit);
    }
    return hit;
  }

  #remember(key: string, value: Buffer | string) {
    this.#cache.set(key, value);
    while (this.#cache.size > this.#cacheEntries) this.#cache.delete(this.#cache.keys().next().value!);
  }

  #render(text: string, size: number): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('QR renderer closed'));
    const worker = this.#workerThread();
    const id = this.#nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      worker.postMessage({ id, text, size, options: OPTIONS });
    });
  }

  #workerThread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./qr-worker.mjs', import.meta.url));
    // An idle worker does not keep the process alive (shutdown closes it anyway).
    worker.unref();
    worker.on('message', (message: { id: number; png?: Uint8Array; error?: string }) => {
      const job = this.#jobs.get(message.id);
      if (!job) return;
      this.#jobs.delete(message.id);
      if (message.png) job.resolve(Buffer.from(message.png.buffer, message.png.byteOffset, message.png.byteLength));
      else job.reject(new Error(`QR rendering failed: ${message.error}`));
    });
    const lost = (error: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#failAll(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`QR worker exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  #failAll(error: Error) {
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    for (const job of jobs) job.reject(error);
  }
}
