/**
 * `npm run bench:passes`: how many signed .pkpass files per second one process produces.
 * Prints figures and ratios; it is not a test (no thresholds fail the run).
 *
 * Section 1 compares, for the same store card and the same (freshly generated, temporary) certificates:
 *   (a) our builder: createPassPackager + PassSigner (native RSA via async crypto.sign),
 *   (b) passkit-generator 3.6.1 (node-forge: pure-JS SHA-1 and RSA, synchronous),
 *   (c) raw crypto.sign('sha1', …) of a payload the size of our signed attributes: the floor, since
 *       the RSA private-key operation is the one thing every signed pass must pay for.
 * Targets (reference /work/shared/reference/apple-wallet.md, section 5): ours ≥ 60 % of raw,
 * ours > 25× passkit-generator.
 *
 * Threads: the async crypto.sign runs on the libuv thread pool (UV_THREADPOOL_SIZE, default 4).
 * "1 in flight" awaits each pass before starting the next, so at any moment one core works (main
 * thread or one pool thread): that is the per-core figure. "N in flight" keeps N passes going and
 * may use up to N pool threads plus the main thread, i.e. more than one core. The main-thread cost
 * per pass (event-loop utilization × time / passes) shows how long each pass blocks the event loop.
 *
 * A third group runs the RSA operation synchronously (PassSigner `signOn: 'main'` vs crypto.sign
 * without a callback): no thread hand-off, so less CPU per pass, but the event loop is blocked.
 * Every line also gives the process's CPU time per pass (all threads, process.cpuUsage), the
 * steadier figure on a shared machine; the "by CPU" ratios compare those.
 *
 * Contenders run in interleaved rounds of 0.25 s, so load from other processes affects all alike.
 *
 * Section 2 (scripts/bench-support/pass-web.ts): the PassKit web service's 304 answers per second
 * on real PostgreSQL, against a hello-world Fastify in the same run; target ≥ 40 % of hello-world.
 *
 * Environment: BENCH_SECONDS (total per contender, default 2), UV_THREADPOOL_SIZE (read by libuv at startup),
 * BENCH_SECTIONS ("1,2"); section 2 reads DATABASE_URL and BENCH_WEB_* (see its file).
 */
import { sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PKPass } from 'passkit-generator';
import { generateDevCertificates, loadAppleCertificates, type AppleSigningMaterial } from '../src/wallets/apple/certificates.js';
import { buildStoreCardPassJson, escapePassStringsValue } from '../src/wallets/apple/pass/build-pass-json.js';
import { createPassPackager, loadDefaultImages, type PassPackager } from '../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../src/wallets/apple/pass/signer.js';
import type { StoreCardPassInput } from '../src/wallets/apple/pass/types.js';
import { runPassWebBenchmark } from './bench-support/pass-web.js';

// =============================================================================================
// Section 1: signed passes per second
// =============================================================================================

export interface Measurement {
  label: string;
  inFlight: number;
  passes: number;
  seconds: number;
  perSecond: number;
  /** Main-thread (event-loop) busy time per pass, in milliseconds. */
  mainThreadMsPerPass: number;
  /**
   * CPU time of the whole process (main thread, thread pool, GC threads) per pass, in µs, from
   * process.cpuUsage: steadier than the rates on a shared machine, and what "per core" means.
   */
  cpuMicrosPerPass: number;
}

export interface PassBenchmarkContext {
  certificateDir: string;
  material: AppleSigningMaterial;
  packager: PassPackager;
  /** The same builder with `signOn: 'main'` (synchronous RSA). */
  packagerSignOnMain: PassPackager;
  input: StoreCardPassInput;
  passkitGeneratorBuffers: Record<string, Buffer>;
  passkitGeneratorCertificates: { wwdr: Buffer; signerCert: Buffer; signerKey: Buffer };
  /** Bytes our signer hands to crypto.sign (the DER SET of signed attributes). */
  rawSignPayload: Buffer;
  cleanup(): void;
}

const PASS_TYPE_IDENTIFIER = 'pass.dev.walletcards.bench';
const TEAM_IDENTIFIER = 'BENCHTEAM1';

export function benchmarkCardInput(serialNumber = 'bench-000001'): StoreCardPassInput {
  return {
    passTypeIdentifier: PASS_TYPE_IDENTIFIER,
    teamIdentifier: TEAM_IDENTIFIER,
    organizationName: 'БлокПОСТ',
    serialNumber,
    authenticationToken: 'vN4q8Yp2Lr7Ks1Xw9Tz3Bm6Hd0Fg5Jc8',
    webServiceURL: 'https://cards.example.com/apple',
    defaultLanguage: 'ru',
    description: { ru: 'Карта лояльности БлокПОСТ', en: 'BlokPOST loyalty card' },
    logoText: { ru: 'БлокПОСТ', en: 'BlokPOST' },
    colors: { background: '#0f766e', foreground: '#ffffff', label: '#ccfbf1' },
    card: { number: '2000012345674', holderName: 'Анна Смирнова', balance: 12_450, tierName: { ru: 'Стандарт', en: 'Standard' } },
    barcode: { message: '2000012345674' },
    frontPromo: { ru: 'Двойные баллы на кофе до воскресенья', en: 'Double points on coffee until Sunday' },
    back: {
      contacts: { ru: 'Телефон: +7 495 123-45-67', en: 'Phone: +7 495 123-45-67' },
      terms: { ru: '1 балл = 1 ₽. Баллами можно оплатить до 30 % чека.', en: '1 point = 1 RUB. Points pay up to 30 % of a check.' },
      referral: { text: { ru: 'Приведите друга — 3 000 баллов', en: 'Invite a friend: 3,000 points' }, url: 'https://cards.example.com/join/blokpost?ref=ANNA42' },
    },
    locations: [{ latitude: 55.7575, longitude: 37.6136, relevantText: { ru: 'БлокПОСТ рядом', en: 'BlokPOST nearby' } }],
  };
}

/** Size of the DER SET of signed attributes our signer passes to crypto.sign (contentType 26 + signingTime 30 + messageDigest 37 + SET header 2). */
export const SIGNED_ATTRIBUTES_SIZE = 95;

export async function preparePassBenchmark(): Promise<PassBenchmarkContext> {
  const certificateDir = mkdtempSync(path.join(tmpdir(), 'walletcards-bench-certs-'));
  await generateDevCertificates(certificateDir, { passTypeIdentifier: PASS_TYPE_IDENTIFIER, teamIdentifier: TEAM_IDENTIFIER });
  const material = loadAppleCertificates(certificateDir);
  const images = loadDefaultImages();
  const packager = createPassPackager({ signer: new PassSigner(material), defaultImages: images });
  const packagerSignOnMain = createPassPackager({ signer: new PassSigner(material, { signOn: 'main' }), defaultImages: images });
  const input = benchmarkCardInput();

  // passkit-generator gets the same finished content (pass.json, strings, images), its cheapest path.
  const built = buildStoreCardPassJson(input);
  const passkitGeneratorBuffers: Record<string, Buffer> = { 'pass.json': Buffer.from(JSON.stringify(built.passJson)), ...images };
  for (const language of ['en', 'ru'] as const) {
    const lines = Object.entries(built.localizedStrings[language]).map(
      ([key, value]) => `"${escapePassStringsValue(key)}" = "${escapePassStringsValue(value)}";`,
    );
    passkitGeneratorBuffers[`${language}.lproj/pass.strings`] = Buffer.from(lines.join('\n'), 'utf8');
  }

  return {
    certificateDir,
    material,
    packager,
    packagerSignOnMain,
    input,
    passkitGeneratorBuffers,
    passkitGeneratorCertificates: {
      wwdr: readFileSync(path.join(certificateDir, 'wwdr.pem')),
      signerCert: readFileSync(path.join(certificateDir, 'signerCert.pem')),
      signerKey: readFileSync(path.join(certificateDir, 'signerKey.pem')),
    },
    rawSignPayload: Buffer.alloc(SIGNED_ATTRIBUTES_SIZE, 0x31),
    cleanup: () => rmSync(certificateDir, { recursive: true, force: true }),
  };
}

export interface Contender {
  label: string;
  inFlight: number;
  operation: () => Promise<unknown> | unknown;
}

/** Runs `operation` with `inFlight` concurrent loops until `deadline` (performance.now() ms). */
async function runUntil(contender: Contender, deadline: number): Promise<number> {
  let passes = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      await contender.operation();
      passes++;
    }
  };
  await Promise.all(Array.from({ length: contender.inFlight }, loop));
  return passes;
}

/**
 * Measures the contenders in interleaved rounds (A, B, C, A, B, C, …) of `roundSeconds` each, so
 * that load from other processes or CPU frequency changes hit all of them alike and the ratios
 * stay meaningful on a busy machine. Each contender gets `seconds` in total, after a warm-up.
 */
export async function measureInterleaved(contenders: Contender[], seconds: number, roundSeconds = 0.25): Promise<Measurement[]> {
  for (const contender of contenders) await runUntil(contender, performance.now() + Math.min(300, seconds * 150));
  const totals = contenders.map(() => ({ passes: 0, elapsedMs: 0, busyMs: 0, cpuMicros: 0 }));
  const rounds = Math.max(1, Math.round(seconds / roundSeconds));
  for (let round = 0; round < rounds; round++) {
    for (const [index, contender] of contenders.entries()) {
      const eluStart = performance.eventLoopUtilization();
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const passes = await runUntil(contender, start + roundSeconds * 1000);
      const elapsedMs = performance.now() - start;
      const cpu = process.cpuUsage(cpuStart);
      const elu = performance.eventLoopUtilization(eluStart);
      totals[index]!.cpuMicros += cpu.user + cpu.system;
      totals[index]!.passes += passes;
      totals[index]!.elapsedMs += elapsedMs;
      totals[index]!.busyMs += elu.utilization * elapsedMs;
    }
  }
  return contenders.map((contender, index) => {
    const total = totals[index]!;
    return {
      label: contender.label,
      inFlight: contender.inFlight,
      passes: total.passes,
      seconds: total.elapsedMs / 1000,
      perSecond: total.passes / (total.elapsedMs / 1000),
      mainThreadMsPerPass: total.busyMs / total.passes,
      cpuMicrosPerPass: total.cpuMicros / total.passes,
    };
  });
}

function signAsync(payload: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => sign('sha1', payload, key, (error, signature) => (error ? reject(error) : resolve(signature))));
}

export function oursContender(context: PassBenchmarkContext, inFlight: number): Contender {
  return { label: '(a) walletcards builder', inFlight, operation: () => context.packager.build(context.input) };
}

/** Ours with the RSA operation on the main thread (PassSigner signOn 'main'): no thread hand-off. */
export function oursOnMainThreadContender(context: PassBenchmarkContext): Contender {
  return { label: '(a) walletcards builder, sync RSA', inFlight: 1, operation: () => context.packagerSignOnMain.build(context.input) };
}

/** The floor of the sync variant: crypto.sign without a callback, on the main thread. */
export function rawSignSyncContender(context: PassBenchmarkContext): Contender {
  return {
    label: `(c) raw crypto.sign sha1, sync`,
    inFlight: 1,
    operation: () => sign('sha1', context.rawSignPayload, context.material.signerKey),
  };
}

export function passkitGeneratorContender(context: PassBenchmarkContext): Contender {
  // Synchronous: "in flight" is always 1, and every millisecond of it blocks the event loop.
  return {
    label: '(b) passkit-generator 3.6.1',
    inFlight: 1,
    operation: () => new PKPass(context.passkitGeneratorBuffers, context.passkitGeneratorCertificates).getAsBuffer(),
  };
}

export function rawSignContender(context: PassBenchmarkContext, inFlight: number): Contender {
  return {
    label: `(c) raw crypto.sign sha1, ${SIGNED_ATTRIBUTES_SIZE} B`,
    inFlight,
    operation: () => signAsync(context.rawSignPayload, context.material.signerKey),
  };
}

export interface PassBenchmarkResult {
  threadPoolSize: string;
  measurements: Measurement[];
  oursOverRaw: Record<number, number>;
  oursOverPasskitGenerator: number;
}

function formatMeasurement(measurement: Measurement): string {
  return [
    measurement.label.padEnd(40),
    `in flight ${String(measurement.inFlight).padStart(2)}`,
    `${measurement.perSecond.toFixed(0).padStart(7)} passes/s`,
    `${(1000 / measurement.perSecond).toFixed(3).padStart(8)} ms/pass`,
    `main thread ${measurement.mainThreadMsPerPass.toFixed(3).padStart(7)} ms/pass`,
    `CPU ${measurement.cpuMicrosPerPass.toFixed(0).padStart(6)} µs/pass`,
    `(${measurement.passes} in ${measurement.seconds.toFixed(1)} s)`,
  ].join('  ');
}

export async function runPassBenchmark(seconds: number): Promise<PassBenchmarkResult> {
  const threadPoolSize = process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)';
  const manyInFlight = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  console.log('Section 1: signed .pkpass per second');
  console.log(`Node ${process.version}, ${availableParallelism()} CPUs available, UV_THREADPOOL_SIZE=${threadPoolSize}, ${seconds} s per contender in interleaved 0.25 s rounds`);
  console.log('"in flight 1" = sequential awaits: one core busy at a time (per-core figure).');
  console.log(`"in flight ${manyInFlight}" = one per thread-pool thread: may use several cores.\n`);

  const context = await preparePassBenchmark();
  try {
    const print = (results: Measurement[]) => {
      for (const result of results) console.log(formatMeasurement(result));
      return results;
    };
    const [raw1, ours1, passkitGenerator] = print(
      await measureInterleaved([rawSignContender(context, 1), oursContender(context, 1), passkitGeneratorContender(context)], seconds),
    ) as [Measurement, Measurement, Measurement];
    const [rawN, oursN] = print(
      await measureInterleaved([rawSignContender(context, manyInFlight), oursContender(context, manyInFlight)], seconds),
    ) as [Measurement, Measurement];
    // Synchronous RSA (no thread pool): which gives more passes per core-second, and its own ratio.
    const [rawSync, oursSync] = print(await measureInterleaved([rawSignSyncContender(context), oursOnMainThreadContender(context)], seconds)) as [
      Measurement,
      Measurement,
    ];
    const measurements = [raw1, ours1, passkitGenerator, rawN, oursN, rawSync, oursSync];

    const oursOverRaw = { 1: ours1.perSecond / raw1.perSecond, [manyInFlight]: oursN.perSecond / rawN.perSecond };
    const cpuRatio = (raw: Measurement, ours: Measurement) => `${((raw.cpuMicrosPerPass / ours.cpuMicrosPerPass) * 100).toFixed(1)} %`;
    const oursOverPasskitGenerator = ours1.perSecond / passkitGenerator.perSecond;
    const verdict = (ok: boolean) => (ok ? 'meets target' : 'BELOW TARGET');
    console.log('\nRatios');
    console.log(`  ours / raw sign, 1 in flight:            ${(oursOverRaw[1]! * 100).toFixed(1)} %   (target ≥ 60 %: ${verdict(oursOverRaw[1]! >= 0.6)})`);
    console.log(`  ours / raw sign, ${manyInFlight} in flight:            ${(oursOverRaw[manyInFlight]! * 100).toFixed(1)} %`);
    console.log(`  ours / raw sign, sync RSA:               ${((oursSync.perSecond / rawSync.perSecond) * 100).toFixed(1)} %`);
    console.log(`  by CPU per pass (raw µs / ours µs):      1 in flight ${cpuRatio(raw1, ours1)}, ${manyInFlight} in flight ${cpuRatio(rawN, oursN)}, sync ${cpuRatio(rawSync, oursSync)}`);
    console.log(`  passes per core-second, ours: thread pool ${(1e6 / ours1.cpuMicrosPerPass).toFixed(0)}, sync ${(1e6 / oursSync.cpuMicrosPerPass).toFixed(0)}`);
    console.log(`  ours / passkit-generator, 1 in flight:   ${oursOverPasskitGenerator.toFixed(1)} ×   (target > 25 ×: ${verdict(oursOverPasskitGenerator > 25)})`);
    console.log(`  event loop blocked per pass: ours ${ours1.mainThreadMsPerPass.toFixed(3)} ms, passkit-generator ${passkitGenerator.mainThreadMsPerPass.toFixed(1)} ms`);
    return { threadPoolSize, measurements, oursOverRaw, oursOverPasskitGenerator };
  } finally {
    context.cleanup();
  }
}

// =============================================================================================
// Section 2: pass web service 304 vs hello-world Fastify
// In scripts/bench-support/pass-web.ts (it shares the HTTP load harness and the app child process
// with bench:pos); its header describes the setup and its BENCH_WEB_* settings.
// =============================================================================================

export { runPassWebBenchmark };

async function main(): Promise<void> {
  // BENCH_SECTIONS picks sections, e.g. "2" for the web service alone (default "1,2").
  const sections = (process.env.BENCH_SECTIONS ?? '1,2').split(',').map((section) => section.trim());
  const seconds = Number(process.env.BENCH_SECONDS ?? 2);
  if (sections.includes('1')) await runPassBenchmark(seconds);
  if (sections.includes('2')) await runPassWebBenchmark();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
