/**
 * Per-process temporary folders for tests that are removed even when the process does not exit
 * normally. Vitest ends its fork workers without running `process.on('exit')` handlers, so
 * exit-time cleanup alone leaks one folder per test file and run. Each folder lives under
 * `<tmpdir>/<group>/` with the creating process id in its name; creating one first removes the
 * folders of processes that no longer exist.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only, nothing is sent
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sweptGroups = new Set<string>();

function sweepDeadProcessDirs(groupDir: string): void {
  for (const name of readdirSync(groupDir)) {
    const pid = Number(/^pid(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !processIsAlive(pid)) {
      rmSync(path.join(groupDir, name), { recursive: true, force: true });
    }
  }
}

/** A new empty folder under `<tmpdir>/<group>/`, removed at exit or by the next process that creates one. */
export function createTestTempDir(group: string): string {
  const groupDir = path.join(tmpdir(), group);
  mkdirSync(groupDir, { recursive: true });
  if (!sweptGroups.has(group)) {
    sweptGroups.add(group);
    sweepDeadProcessDirs(groupDir);
  }
  const dir = mkdtempSync(path.join(groupDir, `pid${process.pid}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
