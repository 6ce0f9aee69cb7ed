/**
 * `bench:campaign` child process: the APNs stand-in (test/support/apns-stand-in.ts, real HTTP/2 +
 * TLS with client-certificate checks) and the devices behind the push tokens. Every push that gets
 * a 200 makes its device do what Wallet does: list its changed passes
 * (`GET /apple/v1/devices/{device}/registrations/{passTypeIdentifier}`) and download each one
 * (`GET /apple/v1/passes/...`, a freshly signed pass) from the service, at most
 * BENCH_FETCH_CONCURRENCY requests at a time over keep-alive connections.
 *
 * IPC: `{type:'ready', port}` once listening; `{type:'load', databaseUrl, passTypeIdentifier,
 * servicePort}` reads token → device/serial/auth from the database and answers `loaded`;
 * `{type:'stats'}` answers the counters (wall-clock ms); `{type:'close'}` exits.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startApnsStandIn } from '../../test/support/apns-stand-in.js';
import { getTestCertificates } from '../../test/support/test-certificates.js';

export interface DevicesStats {
  type: 'stats';
  answered: number;
  firstPushAt: number | null;
  lastPushAt: number | null;
  fetched: number;
  fetchErrors: number;
  firstFetchError?: string;
  lastFetchAt: number | null;
  queued: number;
}

export type CampaignDevicesMessage = { type: 'ready'; port: number } | { type: 'loaded'; tokens: number } | DevicesStats;

interface Device {
  device: string;
  serial: string;
  auth: string;
}

async function main() {
  const certs = await getTestCertificates();
  const file = (name: string) => readFileSync(path.join(certs.dir, name), 'utf8');
  const devices = new Map<string, Device>();
  let servicePort = 0;
  let passTypeIdentifier = certs.passTypeIdentifier;
  const concurrency = Number(process.env.BENCH_FETCH_CONCURRENCY ?? 32);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });

  let answered = 0;
  let firstPushAt: number | null = null;
  let lastPushAt: number | null = null;
  let fetched = 0;
  let fetchErrors = 0;
  let firstFetchError: string | undefined;
  let lastFetchAt: number | null = null;
  const queue: Device[] = [];
  let running = 0;

  const get = (urlPath: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port: servicePort, method: 'GET', path: urlPath, agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });

  async function refresh(device: Device) {
    const list = await get(`/apple/v1/devices/${device.device}/registrations/${passTypeIdentifier}`);
    if (list.status !== 200) throw new Error(`list answered ${list.status}`);
    const { serialNumbers } = JSON.parse(list.body.toString('utf8')) as { serialNumbers: string[] };
    for (const serial of serialNumbers) {
      const pass = await get(`/apple/v1/passes/${passTypeIdentifier}/${serial}`, { authorization: `ApplePass ${device.auth}` });
      if (pass.status !== 200 || pass.body.length < 1000) throw new Error(`pass answered ${pass.status}`);
    }
  }

  function pump() {
    while (running < concurrency && queue.length > 0) {
      const device = queue.shift()!;
      running++;
      refresh(device)
        .then(
          () => {
            fetched++;
            lastFetchAt = Date.now();
          },
          (error: unknown) => {
            fetchErrors++;
            firstFetchError ??= error instanceof Error ? error.message : String(error);
          },
        )
        .finally(() => {
          running--;
          pump();
        });
    }
  }

  const standIn = await startApnsStandIn({
    keyPem: file('apns-server.key'),
    certPem: file('apns-server.pem'),
    caPem: file('root.pem') + file('wwdr.pem'),
    expectedTopic: certs.passTypeIdentifier,
    record: false,
    respond: (token) => {
      answered++;
      lastPushAt = Date.now();
      firstPushAt ??= lastPushAt;
      const device = devices.get(token);
      if (device) {
        // The device wakes up after the 200 is on its way.
        setImmediate(() => {
          queue.push(device);
          pump();
        });
      }
      return undefined;
    },
  });

  const send = (message: CampaignDevicesMessage) => process.send?.(message);
  send({ type: 'ready', port: standIn.port });
  process.on('message', (message: { type?: string; databaseUrl?: string; passTypeIdentifier?: string; servicePort?: number }) => {
    if (message?.type === 'load') {
      servicePort = message.servicePort!;
      passTypeIdentifier = message.passTypeIdentifier!;
      void (async () => {
        const client = new pg.Client({ connectionString: message.databaseUrl });
        await client.connect();
        const { rows } = await client.query<{ push_token: string; device: string; serial: string; auth: string }>(
          `SELECT r.push_token, r.device_library_identifier AS device, c.apple_serial AS serial, c.apple_auth_token AS auth
           FROM apple_registration r JOIN card c ON c.apple_serial = r.serial_number`,
        );
        await client.end();
        for (const row of rows) devices.set(row.push_token, { device: row.device, serial: row.serial, auth: row.auth });
        send({ type: 'loaded', tokens: devices.size });
      })();
    } else if (message?.type === 'stats') {
      send({ type: 'stats', answered, firstPushAt, lastPushAt, fetched, fetchErrors, firstFetchError, lastFetchAt, queued: queue.length + running });
    } else if (message?.type === 'close') {
      void standIn.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
