/**
 * The PassKit web service's 304 through `app.inject()`, in one process, against hello-world Fastify
 * (issue #14): CPU per request of the route's whole pipeline without the sockets, which cost every
 * side the same. On a machine shared with other work this is steadier than bench:passes section 2's
 * requests per second: the sides take turns in rounds of 1,000 requests (order reversed every other
 * round) on the same CPU, and the medians are compared.
 *
 * Run: `npx tsx scripts/bench-support/pass-web-inject.mts`. BENCH_BASE_TREE=<dir>: also a second
 * checkout (e.g. `git worktree add --detach /tmp/base main`, with node_modules linked) as a third
 * side, to compare a change against its base in the same process. BENCH_ROUNDS (12). Each app runs
 * on the embedded database with its workers off; one card, asked with its own Last-Modified.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const trees: Record<string, string> = { current: here, ...(process.env.BENCH_BASE_TREE ? { base: path.resolve(process.env.BENCH_BASE_TREE) } : {}) };
const sides: Array<{ name: string; run: () => Promise<void>; close: () => Promise<void> }> = [];
for (const [name, dir] of Object.entries(trees)) {
  const support = await import(path.join(dir, 'test/support/app.ts'));
  const t = await support.startTestApp({ runWorkers: false });
  const { keys } = await support.createProgramWithKeys(t.app, `bench-${name}`);
  const issued = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: { authorization: `Bearer ${keys.pos}` }, payload: { holder: { name: 'Bench', phone: '+79161112233' } } });
  if (issued.statusCode >= 300) throw new Error(issued.body);
  const row = await t.database.handle.db.selectFrom('card').select(['apple_serial', 'apple_auth_token', 'updated_at']).where('id', '=', issued.json().id).executeTakeFirstOrThrow();
  const url = `/apple/v1/passes/${t.material.passTypeIdentifier}/${row.apple_serial}`;
  const headers = { authorization: `ApplePass ${row.apple_auth_token}`, 'if-modified-since': new Date(Math.floor(row.updated_at.getTime() / 1000) * 1000).toUTCString() };
  // Past the 304 map's hold on a card this process just changed (not-modified-map.ts), so the map answers.
  await new Promise((resolve) => setTimeout(resolve, 11_000));
  const run = async () => {
    const answer = await t.app.inject({ method: 'GET', url, headers });
    if (answer.statusCode !== 304) throw new Error(`${name}: ${answer.statusCode}`);
  };
  await run();
  sides.push({ name, run, close: () => t.close() });
}
const hello = Fastify();
hello.get('/', async () => ({ hello: 'world' }));
await hello.ready();
sides.push({ name: 'hello-world', run: async () => void (await hello.inject({ method: 'GET', url: '/' })), close: () => hello.close() });

const perRound = 1000;
const rounds = Number(process.env.BENCH_ROUNDS ?? 12);
const cpu: Record<string, number[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 ? [...sides].reverse() : sides) {
    const before = process.cpuUsage();
    for (let i = 0; i < perRound; i++) await side.run();
    const used = process.cpuUsage(before);
    (cpu[side.name] ??= []).push((used.user + used.system) / perRound);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const helloMedian = median(cpu['hello-world']!);
for (const [name, values] of Object.entries(cpu)) {
  const m = median(values);
  console.log(
    `${name.padEnd(12)} median ${m.toFixed(1)} µs CPU per request (min ${Math.min(...values).toFixed(1)}, max ${Math.max(...values).toFixed(1)})` +
      (name === 'hello-world' ? '' : `; over hello-world +${(m - helloMedian).toFixed(1)} µs`),
  );
}
if (cpu.base) console.log(`current / base: ${(median(cpu.current!) / median(cpu.base)).toFixed(2)}`);
for (const side of sides) await side.close();
process.exit(0);
