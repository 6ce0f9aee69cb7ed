import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, requirePostgres, type TestDatabase } from '../support/database.js';
import { getTestCertificates } from '../support/test-certificates.js';
import { expectExactlyOnce, runTills, sendUntilAnswered, type TillAnswer, type TillRequest } from './support.js';

// Issue #11, part 2: the service is killed with SIGKILL in the middle of a burst of purchases. The
// real entry point (src/server.ts, one process) serves 24 tills recording 300 purchases on 8 cards;
// when a third of them are answered it is killed (no graceful shutdown: open transactions die with
// it, answers already committed never leave), and a new process starts on the same port and
// database. The tills retry with their Idempotency-Key until they get an answer. Every purchase must
// be recorded exactly once — a purchase that committed before the kill is replayed, not repeated —
// and every balance must equal the sum of its ledger. PostgreSQL only (CI runs it there).
const postgres = requirePostgres();
const SERVER = path.resolve('src/server.ts');
const ADMIN_KEY = 'sigkill-admin-key-0123456789abcdef';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(postgres.skip)(`purchases survive a SIGKILL of the service during a burst (postgres) ${postgres.reason}`, () => {
  let database: TestDatabase;
  let dataDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), 'walletcards-sigkill-'));
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function startService(port: number): Promise<ChildProcess> {
    const certs = await getTestCertificates();
    // One process (node --import tsx): the SIGKILL reaches the service itself.
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'development',
        DATABASE_URL: database.url!,
        ADMIN_KEY,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        APPLE_CERT_DIR: certs.dir,
        DEMO_PROGRAM: 'false',
        LOG_LEVEL: 'info',
        PASS_UPDATE_DEBOUNCE_SECONDS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`service did not start: ${output.slice(-2000)}`)), 90_000);
      const check = () => {
        if (/Server listening at/.test(output)) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve(child);
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`service exited (${code ?? signal}) before listening: ${output.slice(-2000)}`));
      });
    });
  }

  it('records each of 300 purchases exactly once across a SIGKILL and a restart', { timeout: 240_000 }, async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const first = await startService(port);

    const call = async (method: string, url: string, headers: Record<string, string>, body?: unknown) => {
      const res = await fetch(`${base}${url}`, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null, replayed: res.headers.get('idempotent-replayed') === 'true' };
    };
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    const program = await call('POST', '/api/v1/programs', admin, { slug: 'sigkill', name: 'Killed' });
    expect(program.status).toBe(201);
    const key = await call('POST', `/api/v1/programs/${program.body.id}/keys`, admin, { role: 'pos', name: 'till' });
    const pos = { authorization: `Bearer ${key.body.key}` };
    const cards: string[] = [];
    for (let i = 0; i < 8; i++) cards.push((await call('POST', '/api/v1/cards', pos, { holder: { name: `Card ${i}`, phone: `+7916400000${i}` } })).body.id);

    const requests: TillRequest[] = Array.from({ length: 300 }, (_, i) => ({
      key: `burst-${i}`,
      cardId: cards[i % cards.length]!,
      body: i % 5 === 4 ? { amount: 20_000, redeemPoints: 50 } : { amount: 20_000 },
    }));
    const replayedAfterRetry = new Set<string>();
    const send = async (request: TillRequest) => {
      const res = await call('POST', `/api/v1/cards/${request.cardId}/purchases`, { ...pos, 'idempotency-key': request.key }, request.body);
      if (res.replayed) replayedAfterRetry.add(request.key);
      return res;
    };

    let answered = 0;
    let killedAt = -1;
    let restarted: Promise<ChildProcess> | undefined;
    const till = async (request: TillRequest): Promise<TillAnswer> => {
      const answer = await sendUntilAnswered(send, request, { maxAttempts: 2000, pauseMs: 50 });
      answered++;
      // A third answered: kill the service where it stands, and start a new one.
      if (answered === 100 && killedAt < 0) {
        killedAt = answered;
        first.kill('SIGKILL');
        await new Promise((resolve) => first.once('exit', resolve));
        restarted = startService(port);
      }
      return answer;
    };
    const answers = await runTills(24, requests, till);
    await restarted;

    const failures = [...answers.values()].flatMap((a) => a.failures);
    const interrupted = [...answers.values()].filter((a) => a.attempts > 1).length;
    const replays = [...answers.entries()].filter(([k, a]) => a.attempts > 1 && replayedAfterRetry.has(k)).length;
    console.log(
      `sigkill: ${requests.length} purchases, killed after ${killedAt} answers; ${interrupted} purchases retried across the restart (${failures.length} failed attempts), ` +
        `${replays} of them had committed before the kill and were replayed`,
    );
    expect(first.signalCode).toBe('SIGKILL');
    expect(interrupted).toBeGreaterThan(0);
    for (const answer of answers.values()) expect([201, 422]).toContain(answer.status);
    await expectExactlyOnce(database.handle.db, answers, (value, message) => expect(value, message));
  });
});
