import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';

export function unpackPkpass(pkpass: Buffer | Uint8Array): Record<string, Buffer> {
  const files = unzipSync(new Uint8Array(pkpass));
  return Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, Buffer.from(bytes)]));
}

export function passJsonOf(pkpass: Buffer | Uint8Array): Record<string, any> {
  return JSON.parse(unpackPkpass(pkpass)['pass.json'].toString('utf8'));
}

/**
 * Verifies the detached CMS signature over manifest.json with openssl against a root
 * (reference 8.2). `-purpose any`: the leaf's EKU is clientAuth, as on real certificates.
 */
export function verifyPkpassWithOpenssl(pkpass: Buffer | Uint8Array, rootPemPath: string, tamper?: (files: Record<string, Buffer>) => void) {
  const files = unpackPkpass(pkpass);
  tamper?.(files);
  const dir = mkdtempSync(path.join(tmpdir(), 'pkpass-'));
  try {
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), bytes);
    }
    try {
      execFileSync(
        'openssl',
        ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'signature', '-content', 'manifest.json', '-CAfile', rootPemPath, '-purpose', 'any', '-out', '/dev/null'],
        { cwd: dir, stdio: 'pipe' },
      );
      return { ok: true as const };
    } catch (error) {
      return { ok: false as const, stderr: String((error as { stderr?: Buffer }).stderr ?? error) };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
