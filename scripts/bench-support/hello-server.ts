/**
 * Benchmark child process: the reference point for HTTP benchmarks, a hello-world Fastify (the
 * project's own Fastify version, default options, no logger) answering `GET /` with a tiny JSON,
 * listening on 127.0.0.1 port 0.
 *
 * IPC like pos-server.ts: sends `{type:'ready', port}`; answers `{type:'stats'}` with its CPU time
 * since the previous one; `{type:'close'}` closes and exits 0.
 */
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';

export type HelloServerMessage = { type: 'ready'; port: number } | { type: 'stats'; cpuMs: number; eventLoopActiveMs: number; eventLoopIdleMs: number };

async function main() {
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const send = (message: HelloServerMessage) => process.send?.(message);
  send({ type: 'ready', port });

  let cpuBase = process.cpuUsage();
  let eluBase = performance.eventLoopUtilization();
  const close = () => void app.close().finally(() => process.exit(0));
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stats') {
      const cpu = process.cpuUsage(cpuBase);
      const elu = performance.eventLoopUtilization(eluBase);
      cpuBase = process.cpuUsage();
      eluBase = performance.eventLoopUtilization();
      send({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000, eventLoopActiveMs: elu.active, eventLoopIdleMs: elu.idle });
    } else if (message?.type === 'close') {
      close();
    }
  });
  process.on('disconnect', close);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
