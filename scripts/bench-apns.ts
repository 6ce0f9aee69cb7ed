/**
 * `npm run bench:apns`: pushes/second of the APNs sender (src/wallets/apple/apns.ts) against the local
 * APNs stand-in, with a bare node:http2 client as the reference. Prints figures; not a test.
 *
 * Setup: a fresh development certificate chain in a temp dir; the stand-in (test/support/apns-stand-in.ts,
 * real HTTP/2 + TLS with client-certificate verification) runs in a CHILD process so the server does not
 * share the client's core; 50,000 distinct tokens per run; one connection and the same concurrency for
 * every client. Each client first sends a warm-up batch (connect + TLS + JIT) that is not timed.
 *
 * Rounds (issue #14): every round measures our sender and the bare node:http2 client back to back, in
 * ABBA order (odd rounds ours first, even rounds bare first), and prints the ratio of that round; the
 * result is the MEDIAN of the per-round ratios, so a busy minute on the shared machine moves one round,
 * not the figure. Each run also reports this process's CPU per delivered push (user + system, from
 * process.cpuUsage; the stand-in's CPU is not in it): steadier than the rate when other processes
 * compete for the cores. Extra clients (node-apn, BENCH_COMPARE_SENDER) run after the pair in each round.
 *
 * Targets: our sender >= 90 % of the bare client's rate in the same run (issue #14); >= 5,000 pushes/s (the
 * issue that introduced the sender).
 *
 * Environment: BENCH_TOKENS (50000), BENCH_CONCURRENCY (100), BENCH_ROUNDS (6), BENCH_NODE_APN=0 to skip
 * the @parse/node-apn row, BENCH_COMPARE_SENDER=<.ts file exporting createApnsSender> to measure another
 * version of the sender in the same rounds (e.g. main's), BENCH_CLIENTS=ours|bare to run one client alone,
 * for a CPU profile: `BENCH_CLIENTS=ours node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx scripts/bench-apns.ts`
 * (the stand-in child is started without --cpu-prof).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApnsSender } from '../src/wallets/apple/apns.js';
import { generateDevCertificates } from '../src/wallets/apple/certificates.js';

const PASS_TYPE_IDENTIFIER = 'pass.dev.walletcards.bench';
const TEAM_IDENTIFIER = 'BENCH12345';
const TARGET_PER_SECOND = 5_000;
/** Issue #14: the sender at >= 90 % of a bare node:http2 client's rate, same run. */
const TARGET_RATIO = 0.9;

interface StandInStats {
  sessions: number;
  answered: number;
  maxOpenStreams: number;
}

type ChildMessage = { type: 'ready'; port: number } | ({ type: 'stats' } & StandInStats);

// ---------------------------------------------------------------------------------------------------
// Child process: the stand-in.
// ---------------------------------------------------------------------------------------------------
async function runStandInChild(dir: string, topic: string): Promise<void> {
  const { startApnsStandIn } = await import('../test/support/apns-stand-in.js');
  const read = (file: string) => readFileSync(path.join(dir, file), 'utf8');
  const standIn = await startApnsStandIn({
    keyPem: read('apns-server.key'),
    certPem: read('apns-server.pem'),
    caPem: read('root.pem') + read('wwdr.pem'),
    expectedTopic: topic,
    record: false, // measure the client, not an ever-growing array in the server
  });
  const send = (message: ChildMessage) => process.send?.(message);
  send({ type: 'ready', port: standIn.port });
  process.on('message', (message: string) => {
    if (message === 'stats') {
      send({ type: 'stats', sessions: standIn.sessions, answered: standIn.answered, maxOpenStreams: standIn.maxOpenStreams });
    } else if (message === 'close') {
      void standIn.close().then(() => process.exit(0));
    }
  });
  // Never outlive the parent.
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------------
// Parent: the clients.
// ---------------------------------------------------------------------------------------------------
interface Measured {
  delivered: number;
  ms: number;
  /** This process's user + system CPU during the run, µs. */
  cpuUs: number;
}

interface Client {
  name: string;
  push(tokens: string[]): Promise<number>; // returns how many got 200
  close(): Promise<void>;
}

function envInt(name: string, fallback: number): number {
  const value = process.env[name];
  return value ? Number.parseInt(value, 10) : fallback;
}

async function measure(client: Client, tokens: string[]): Promise<Measured> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const delivered = await client.push(tokens);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { delivered, ms, cpuUs: used.user + used.system };
}

function perSecond(m: Measured): number {
  return Math.round((m.delivered / m.ms) * 1000);
}

function cpuPerPush(m: Measured): number {
  return m.cpuUs / Math.max(1, m.delivered);
}

/** The reference: a bare node:http2 client, one connection, `concurrency` requests in flight, no retries. */
async function bareHttp2Client(port: number, pem: (f: string) => string, concurrency: number): Promise<Client> {
  const session = http2.connect(`https://localhost:${port}`, {
    cert: pem('signerCert.pem'),
    key: pem('signerKey.pem'),
    ca: pem('root.pem'),
  });
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  const expiration = String(Math.floor(Date.now() / 1000) + 86_400);
  const one = (token: string) =>
    new Promise<number>((resolve) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': `/3/device/${token}`,
        'apns-topic': PASS_TYPE_IDENTIFIER,
        'apns-priority': '10',
        'apns-expiration': expiration,
      });
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', () => {});
      stream.on('error', () => {});
      stream.on('close', () => resolve(status));
      stream.end('{}');
    });
  return {
    name: 'bare node:http2',
    async push(tokens) {
      let next = 0;
      let delivered = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < tokens.length) if ((await one(tokens[next++]!)) === 200) delivered++;
        }),
      );
      return delivered;
    },
    async close() {
      await new Promise<void>((resolve) => session.close(() => resolve()));
    },
  };
}

function ourSender(
  port: number,
  pem: (f: string) => string,
  concurrency: number,
  create: typeof createApnsSender = createApnsSender,
  name = 'walletcards sender',
): Client {
  const sender = create({
    certPem: pem('signerCert.pem'),
    keyPem: pem('signerKey.pem'),
    host: 'localhost',
    port,
    caPem: pem('root.pem'),
    concurrency,
    logger: { warn: (o, m) => console.warn('warn', m, o), error: (o, m) => console.error('error', m, o) },
  });
  return {
    name,
    async push(tokens) {
      const outcomes = await sender.push(tokens, PASS_TYPE_IDENTIFIER);
      return outcomes.filter((o) => o.status === 200).length;
    },
    close: () => sender.close(),
  };
}

/** @parse/node-apn 8.1.0 as the issue first proposed, for the record (see the header of apns.ts). */
async function nodeApnClient(port: number, pem: (f: string) => string, chunk: number): Promise<Client | undefined> {
  let apn: typeof import('@parse/node-apn');
  try {
    apn = (await import('@parse/node-apn')).default as unknown as typeof import('@parse/node-apn');
  } catch {
    return undefined;
  }
  // A non-Apple address makes node-apn assume the sandbox (our dev certificate has both OIDs).
  const provider = new apn.Provider({
    cert: pem('signerCert.pem'),
    key: pem('signerKey.pem'),
    address: 'localhost',
    port,
    ca: pem('root.pem'),
    requestTimeout: 60_000,
  } as unknown as ConstructorParameters<typeof apn.Provider>[0]);
  const note = new apn.Notification();
  note.topic = PASS_TYPE_IDENTIFIER;
  note.priority = 10;
  note.expiry = Math.floor(Date.now() / 1000) + 86_400;
  // parse-community/node-apn#219: `{}` is sent with no body; this is the only way to get one.
  (note as unknown as { rawPayload: unknown }).rawPayload = { aps: {} };
  return {
    name: `@parse/node-apn 8.1 (chunks of ${chunk})`,
    async push(tokens) {
      let delivered = 0;
      for (let i = 0; i < tokens.length; i += chunk) {
        delivered += (await provider.send(note, tokens.slice(i, i + chunk))).sent.length;
      }
      return delivered;
    },
    async close() {
      provider.shutdown();
    },
  };
}

/** Median of a non-empty list. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const tokensPerRun = envInt('BENCH_TOKENS', 50_000);
  const concurrency = envInt('BENCH_CONCURRENCY', 100);
  const rounds = envInt('BENCH_ROUNDS', 6);
  const withNodeApn = process.env.BENCH_NODE_APN !== '0';
  // BENCH_CLIENTS=ours or =bare runs one client alone (for `node --cpu-prof`, see docs/benchmarks.md).
  const only = process.env.BENCH_CLIENTS;

  const dir = mkdtempSync(path.join(tmpdir(), 'walletcards-bench-apns-'));
  let child: ChildProcess | undefined;
  try {
    await generateDevCertificates(dir, { passTypeIdentifier: PASS_TYPE_IDENTIFIER, teamIdentifier: TEAM_IDENTIFIER });
    const pem = (file: string) => readFileSync(path.join(dir, file), 'utf8');

    // Same file, stand-in mode; execArgv is inherited (so the child runs under tsx like this process)
    // except --cpu-prof*: a profile of the clients should not also write one for the stand-in.
    const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--cpu-prof'));
    child = fork(fileURLToPath(import.meta.url), ['--stand-in', dir, PASS_TYPE_IDENTIFIER], { stdio: 'inherit', execArgv });
    const messages = child;
    const next = <T extends ChildMessage['type']>(type: T) =>
      new Promise<Extract<ChildMessage, { type: T }>>((resolve, reject) => {
        const onMessage = (m: ChildMessage) => {
          if (m.type !== type) return;
          messages.off('message', onMessage);
          resolve(m as Extract<ChildMessage, { type: T }>);
        };
        messages.on('message', onMessage);
        messages.once('exit', (code) => reject(new Error(`stand-in exited with ${code}`)));
      });
    const { port } = await next('ready');
    const stats = async () => {
      messages.send('stats');
      return next('stats');
    };

    // The pair whose ratio is the target: measured in alternating order every round.
    const ours = ourSender(port, pem, concurrency);
    const bare = await bareHttp2Client(port, pem, concurrency);
    const pair = only === 'ours' ? [ours] : only === 'bare' ? [bare] : [ours, bare];
    // For the record, once per round after the pair (the library alternative).
    const extras: Client[] = [];
    if (withNodeApn && !only) {
      const nodeApn = await nodeApnClient(port, pem, 1000);
      if (nodeApn) extras.push(nodeApn);
    }
    // BENCH_COMPARE_SENDER=<file exporting createApnsSender>: another version of the sender (e.g. the one on
    // main, `git show main:src/wallets/apple/apns.ts > /tmp/apns-main.ts`), measured in the same rounds.
    const compare = process.env.BENCH_COMPARE_SENDER;
    if (compare && !only) {
      const module = (await import(path.resolve(compare))) as { createApnsSender: typeof createApnsSender };
      extras.unshift(ourSender(port, pem, concurrency, module.createApnsSender, `sender from ${path.basename(compare)}`));
    }
    const clients = [...pair, ...extras];

    const newTokens = (n: number) => Array.from({ length: n }, () => randomBytes(32).toString('hex'));
    for (const client of clients) await client.push(newTokens(2_000)); // warm-up: connect, TLS, JIT

    console.log(
      `APNs push benchmark: ${tokensPerRun} distinct tokens per run, concurrency ${concurrency}, 1 connection per client, ` +
        `stand-in in child process ${child.pid}, Node ${process.version}, ${rounds} round(s), load ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}\n` +
        `CPU/push = this process's user+system CPU during the run / pushes delivered (the stand-in's CPU is not in it).\n`,
    );
    const results = new Map<string, Measured[]>(clients.map((c) => [c.name, []]));
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    let incomplete = false;
    const line = (round: number, client: Client, m: Measured) =>
      console.log(
        `  round ${round}  ${client.name.padEnd(38)} ${String(perSecond(m)).padStart(7)} pushes/s  ` +
          `${cpuPerPush(m).toFixed(1).padStart(6)} µs CPU/push  (${m.delivered}/${tokensPerRun} in ${Math.round(m.ms)} ms)`,
      );
    for (let round = 1; round <= rounds; round++) {
      // ABBA order: neither client always runs first (on a warmer or quieter machine).
      const order = round % 2 === 1 ? [...pair] : [...pair].reverse();
      const byName = new Map<string, Measured>();
      for (const client of [...order, ...extras]) {
        const m = await measure(client, newTokens(tokensPerRun));
        results.get(client.name)!.push(m);
        byName.set(client.name, m);
        if (m.delivered !== tokensPerRun) incomplete = true;
        line(round, client, m);
      }
      if (pair.length === 2) {
        const a = byName.get(ours.name)!;
        const b = byName.get(bare.name)!;
        const ratio = perSecond(a) / perSecond(b);
        const cpuRatio = cpuPerPush(a) / cpuPerPush(b);
        ratios.push(ratio);
        cpuRatios.push(cpuRatio);
        console.log(`  round ${round}  ratio ours/bare: rate ${ratio.toFixed(3)}, CPU/push ${cpuRatio.toFixed(3)}`);
      }
    }
    for (const client of clients) await client.close();
    const server = await stats();

    console.log('\nMedian of rounds:');
    for (const client of clients) {
      const ms = results.get(client.name)!;
      console.log(
        `  ${client.name.padEnd(38)} ${String(Math.round(median(ms.map(perSecond)))).padStart(7)} pushes/s  ` +
          `${median(ms.map(cpuPerPush)).toFixed(1).padStart(6)} µs CPU/push  (best ${Math.max(...ms.map(perSecond))}/s)`,
      );
    }
    if (ratios.length > 0) {
      const medianRatio = median(ratios);
      console.log(
        `\n  ratio walletcards sender / bare node:http2, median of ${ratios.length} rounds: ${medianRatio.toFixed(3)} ` +
          `(per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}); target >= ${TARGET_RATIO}: ${medianRatio >= TARGET_RATIO ? 'MET' : 'NOT MET'}`,
      );
      console.log(
        `  CPU per push, walletcards sender / bare node:http2, median: ${median(cpuRatios).toFixed(3)} ` +
          `(per round: ${cpuRatios.map((r) => r.toFixed(2)).join(' ')})`,
      );
      const oursRate = median(results.get(ours.name)!.map(perSecond));
      console.log(
        `  absolute target >= ${TARGET_PER_SECOND} pushes/s: ${oursRate >= TARGET_PER_SECOND ? 'MET' : 'BELOW TARGET'} (median ${Math.round(oursRate)} pushes/s)`,
      );
    }
    console.log(
      `  stand-in: ${server.answered} requests answered, ${server.sessions} sessions (one per client), ` +
        `max ${server.maxOpenStreams} streams open at once on one session; load now ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );
    if (incomplete) {
      console.error('\nSome pushes were not delivered: the figures above are not valid.');
      process.exitCode = 1;
    }
  } finally {
    child?.send('close');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--stand-in') {
  await runStandInChild(process.argv[3]!, process.argv[4]!);
} else {
  await main();
}
