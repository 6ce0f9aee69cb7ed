// The QR code PNG renderer's worker thread (see qr.ts): rasterising a 2048-pixel code takes about
// half a second of CPU, which on the main thread would stall every other request. Plain JavaScript
// so it loads the same under `node --import tsx`, in tests and in the container.
import { parentPort } from 'node:worker_threads';
import QRCode from 'qrcode';

parentPort.on('message', async (job) => {
  try {
    const png = await QRCode.toBuffer(job.text, { ...job.options, type: 'png', width: job.size });
    parentPort.postMessage({ id: job.id, png });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String(error && error.message ? error.message : error) });
  }
});
