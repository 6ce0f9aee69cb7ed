import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAppleCertificates } from '../../src/wallets/apple/certificates.js';
import { PassInputError } from '../../src/wallets/apple/pass/build-pass-json.js';
import { createPassPackager, DEFAULT_PASS_IMAGES_DIR, loadDefaultImages, type PassPackager } from '../../src/wallets/apple/pass/build-pkpass.js';
import { PassSigner } from '../../src/wallets/apple/pass/signer.js';
import type { StoreCardPassInput } from '../../src/wallets/apple/pass/types.js';
import { sampleStoreCardInput, unzipPkpass } from '../support/pkpass-testing.js';
import { getTestCertificates, type TestCertificates } from '../support/test-certificates.js';

// Issue #14, the re-sign path: the images, their SHA-1s and zip entries are prepared once per
// images record (one per program version) and reused by every card's pass. What each pass carries
// must stay exactly what a from-scratch build writes.

let certificates: TestCertificates;
let packager: PassPackager;
let defaultImages: Record<string, Buffer>;

beforeAll(async () => {
  certificates = await getTestCertificates();
  defaultImages = loadDefaultImages(DEFAULT_PASS_IMAGES_DIR);
  packager = createPassPackager({ signer: new PassSigner(loadAppleCertificates(certificates.dir)), defaultImages });
});

const sha1Hex = (data: Buffer) => createHash('sha1').update(data).digest('hex');
const input = (overrides: Partial<StoreCardPassInput> = {}) => sampleStoreCardInput(certificates, overrides);

/** The manifest a from-scratch build writes: pass.json, the strings, the images by name, each file's SHA-1. */
function expectedManifest(files: Record<string, Buffer>): string {
  const images = Object.keys(files).filter((name) => name.endsWith('.png')).sort();
  const manifest: Record<string, string> = { 'pass.json': sha1Hex(files['pass.json']!) };
  for (const strings of ['en.lproj/pass.strings', 'ru.lproj/pass.strings']) manifest[strings] = sha1Hex(files[strings]!);
  for (const name of images) manifest[name] = sha1Hex(files[name]!);
  return JSON.stringify(manifest);
}

describe('the per-version pass template', () => {
  it('passes of different cards sharing one images record carry their own pass.json and the same images, with an exact manifest', async () => {
    const programImages = { 'logo.png': readFileSync(path.join(DEFAULT_PASS_IMAGES_DIR, 'icon.png')) };
    const a = unzipPkpass(await packager.build(input({ serialNumber: 'serial-a', images: programImages })));
    const b = unzipPkpass(await packager.build(input({ serialNumber: 'serial-b', images: programImages })));
    expect(JSON.parse(a['pass.json']!.toString()).serialNumber).toBe('serial-a');
    expect(JSON.parse(b['pass.json']!.toString()).serialNumber).toBe('serial-b');
    for (const files of [a, b]) {
      expect(files['manifest.json']!.toString('utf8')).toBe(expectedManifest(files));
      // The uploaded logo replaced the whole default logo family; icon and strip stay the defaults.
      expect(files['logo.png']).toEqual(programImages['logo.png']);
      expect(files['logo@2x.png']).toBeUndefined();
      expect(files['strip@3x.png']).toEqual(defaultImages['strip@3x.png']);
    }
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  });

  it('a new images record (a new program version) gets its own images, not the previous version’s', async () => {
    const first = { 'logo.png': readFileSync(path.join(DEFAULT_PASS_IMAGES_DIR, 'icon.png')) };
    const second = { 'logo.png': readFileSync(path.join(DEFAULT_PASS_IMAGES_DIR, 'strip.png')) };
    const one = unzipPkpass(await packager.build(input({ images: first })));
    const two = unzipPkpass(await packager.build(input({ images: second })));
    const none = unzipPkpass(await packager.build(input({ images: undefined })));
    expect(one['logo.png']).toEqual(first['logo.png']);
    expect(two['logo.png']).toEqual(second['logo.png']);
    expect(none['logo.png']).toEqual(defaultImages['logo.png']);
    expect(none['logo@3x.png']).toEqual(defaultImages['logo@3x.png']);
    for (const files of [one, two, none]) expect(files['manifest.json']!.toString('utf8')).toBe(expectedManifest(files));
  });

  it('a bad image is refused on every build, not only the first (a failed template is not kept)', async () => {
    const bad = { 'logo.png': Buffer.from('not a png') };
    await expect(packager.build(input({ images: bad }))).rejects.toThrow(PassInputError);
    await expect(packager.build(input({ images: bad }))).rejects.toThrow(PassInputError);
  });
});
