/**
 * The pass template's zip pieces (issue #14): a prepared block of entries and a last entry written
 * after the rest must give the same bytes as writing every entry in one go.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prepareStoredZipBlock, startStoredZip, writeStoredZip, type StoredZipEntry } from '../../src/wallets/apple/pass/stored-zip.js';

const entryArbitrary = fc.record({
  name: fc.stringMatching(/^[a-z][a-z0-9./@]{0,20}$/),
  data: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});

describe('stored zip blocks and a deferred last entry', () => {
  it('produce the bytes of writing every entry at once', () => {
    fc.assert(
      fc.property(
        fc.array(entryArbitrary, { maxLength: 4 }),
        fc.array(entryArbitrary, { maxLength: 5 }),
        fc.array(entryArbitrary, { maxLength: 3 }),
        entryArbitrary,
        fc.date({ min: new Date('1980-01-01T00:00:00Z'), max: new Date('2107-12-31T23:59:58Z'), noInvalidDate: true }),
        (before: StoredZipEntry[], blockEntries: StoredZipEntry[], after: StoredZipEntry[], last: StoredZipEntry, modified: Date) => {
          const expected = writeStoredZip([...before, ...blockEntries, ...after, last], modified);
          const block = prepareStoredZipBlock(blockEntries);
          expect(writeStoredZip([...before, block, ...after, last], modified).equals(expected)).toBe(true);
          const pending = startStoredZip([...before, block, ...after], { name: last.name, size: last.data.length }, modified);
          expect(pending.finish(last.data).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('one block reused by many archives with different times stays correct', () => {
    const block = prepareStoredZipBlock([{ name: 'icon.png', data: Buffer.from('icon') }, { name: 'logo.png', data: Buffer.from('logo!') }]);
    for (const modified of [new Date('2031-02-03T04:05:06Z'), new Date('1999-12-31T23:59:58Z')]) {
      const head = { name: 'pass.json', data: Buffer.from(`{"t":"${modified.toISOString()}"}`) };
      const expected = writeStoredZip([head, { name: 'icon.png', data: Buffer.from('icon') }, { name: 'logo.png', data: Buffer.from('logo!') }], modified);
      expect(writeStoredZip([head, block], modified).equals(expected)).toBe(true);
    }
  });

  it('refuses a deferred entry of another size, and finishing twice', () => {
    const pending = startStoredZip([{ name: 'a', data: Buffer.from('a') }], { name: 'signature', size: 3 }, new Date('2031-02-03T04:05:06Z'));
    expect(() => pending.finish(Buffer.from('ab'))).toThrow(/3 bytes/);
    pending.finish(Buffer.from('abc'));
    expect(() => pending.finish(Buffer.from('abc'))).toThrow(/already finished/);
  });
});
