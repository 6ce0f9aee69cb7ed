#!/usr/bin/env node
/**
 * `npm run build`: compiles src/ to dist/ with tsc (tsconfig.build.json) and copies the files tsc
 * does not emit (src/cabinet/assets/*) next to the compiled code, so `node dist/server.js` finds
 * everything where src/ had it. migrations/ and passes/ stay at the root: the code resolves them
 * from its own location one level below the root, in src/ and in dist/ alike.
 *
 * `--if-stale`: build only when src/ or the build settings changed since the last build (a hash of
 * them is kept in dist/.build-hash). Tests that run the compiled service call it (test/support/
 * build.ts); parallel callers take turns through a lock directory.
 *
 * Plain JavaScript on purpose: it must run before anything is compiled and without tsx.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const hashFile = path.join(dist, '.build-hash');
const lockDir = path.join(root, '.build-lock');

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

function inputHash() {
  const hash = createHash('sha256');
  const inputs = [...filesUnder(src).sort(), path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.build.json'), fileURLToPath(import.meta.url)];
  for (const file of inputs) {
    hash.update(path.relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

function build(hash) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  let copied = 0;
  for (const file of filesUnder(src)) {
    if (file.endsWith('.ts')) continue;
    const target = path.join(dist, path.relative(src, file));
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(file, target);
    copied++;
  }
  writeFileSync(hashFile, `${hash}\n`);
  console.log(`built dist/ (${copied} asset file${copied === 1 ? '' : 's'} copied)`);
}

const ifStale = process.argv.includes('--if-stale');
if (!ifStale) {
  build(inputHash());
} else {
  // Take turns: mkdir is atomic. A lock older than 5 minutes is left over from a killed build.
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lockDir).mtimeMs > 5 * 60_000) rmSync(lockDir, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new Error(`build lock ${lockDir} held for too long`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    const hash = inputHash();
    const built = existsSync(hashFile) ? readFileSync(hashFile, 'utf8').trim() : '';
    if (built === hash && existsSync(path.join(dist, 'server.js'))) console.log('dist/ is up to date');
    else build(hash);
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}
