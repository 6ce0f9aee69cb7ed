/**
 * The stored-entry ZIP writer used for .pkpass files, checked with two independent readers:
 * fflate's unzipSync and Info-ZIP's `unzip -t` (which verifies every CRC-32).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { crc32Of, writeStoredZip } from '../../src/wallets/apple/pass/stored-zip.js';
import { writeFilesToTempDir } from '../support/pkpass-testing.js';

function unzipTest(archive: Buffer): { status: number | null; output: string } {
  const dir = writeFilesToTempDir({});
  const file = path.join(dir, 'archive.zip');
  writeFileSync(file, archive);
  const result = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

function unzipVerbose(archive: Buffer): string {
  const dir = writeFilesToTempDir({});
  const file = path.join(dir, 'archive.zip');
  writeFileSync(file, archive);
  return spawnSync('unzip', ['-v', file], { encoding: 'utf8' }).stdout;
}

const sample = [
  { name: 'pass.json', data: Buffer.from('{"formatVersion":1}') },
  { name: 'en.lproj/pass.strings', data: Buffer.from('\ufeff"a" = "b";', 'utf16le') },
  { name: 'empty', data: Buffer.alloc(0) },
];

describe('writeStoredZip', () => {
  it('writes stored entries with correct CRC-32 that unzip -t accepts', () => {
    const archive = writeStoredZip(sample, new Date('2031-02-03T04:05:06Z'));
    const tested = unzipTest(archive);
    expect(tested.output).toContain('No errors detected');
    expect(tested.status).toBe(0);
    const listing = unzipVerbose(archive);
    expect(listing.match(/Stored/g)).toHaveLength(sample.length);
    expect(listing).toContain('2031-02-03 04:05'); // DOS time in UTC
  });

  it('uses a supplied CRC-32 as is (so a wrong cached one is caught by readers)', () => {
    const wrong = writeStoredZip([{ ...sample[0]!, crc32: (crc32Of(sample[0]!.data) + 1) >>> 0 }], new Date());
    expect(unzipTest(wrong).status).not.toBe(0);
    const right = writeStoredZip([{ ...sample[0]!, crc32: crc32Of(sample[0]!.data) }], new Date());
    expect(unzipTest(right).status).toBe(0);
  });

  it('matches the well-known CRC-32 check value', () => {
    expect(crc32Of(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips arbitrary entries through fflate', () => {
    const entryName = fc.stringMatching(/^[a-z0-9]{1,12}(\.lproj\/[a-z]{1,8})?(\.[a-z]{1,4})?$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ name: entryName, data: fc.uint8Array({ maxLength: 3000 }) }), { selector: (entry) => entry.name, maxLength: 20 }),
        (entries) => {
          const archive = writeStoredZip(entries, new Date('2026-01-01T00:00:00Z'));
          const read = unzipSync(new Uint8Array(archive));
          expect(Object.keys(read).sort()).toEqual(entries.map((entry) => entry.name).sort());
          for (const entry of entries) expect(Buffer.from(read[entry.name]!).equals(Buffer.from(entry.data))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});
