/**
 * Assembles a signed `.pkpass`: pass.json, `en.lproj`/`ru.lproj` pass.strings, images,
 * manifest.json and signature, zipped (reference /work/shared/reference/apple-wallet.md, sections 3
 * and 4; Apple: PassKit Package Format Reference – Pass package, Building a Pass).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync, type Zippable } from 'fflate';
import { buildStoreCardPassJson, PassInputError } from './build-pass-json.js';
import type { PassSigner } from './signer.js';
import { PASS_LANGUAGES, type StoreCardPassInput } from './types.js';

/** `passes/default` of this repository (src/wallets/apple/pass → four levels up). */
export const DEFAULT_PASS_IMAGES_DIR = fileURLToPath(new URL('../../../../passes/default/', import.meta.url));

export const PKPASS_CONTENT_TYPE = 'application/vnd.apple.pkpass';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Image names a store card may carry: icon (required), logo, strip, each at 1x/2x/3x.
 * Store cards show no thumbnail or background image (reference section 3). Restricting names also
 * keeps uploaded names from reaching into other paths of the archive (`../`, `en.lproj/…`): images
 * live at the top level only, and Apple forbids the same image both at top level and in an `.lproj`.
 */
const STORE_CARD_IMAGE_NAME = /^(icon|logo|strip)(@[23]x)?\.png$/;

export interface PassPackagerOptions {
  signer: PassSigner;
  /** File name → PNG bytes, e.g. from {@link loadDefaultImages}. Must contain icon.png. */
  defaultImages: Record<string, Buffer>;
}

export interface PassPackager {
  /** Builds and signs one `.pkpass` (zip bytes). `signingTime` defaults to now. */
  build(input: StoreCardPassInput, signingTime?: Date): Promise<Buffer>;
}

/** Reads the store-card PNGs (icon/logo/strip at 1x/2x/3x) from a folder such as passes/default. */
export function loadDefaultImages(dirPath: string = DEFAULT_PASS_IMAGES_DIR): Record<string, Buffer> {
  const images: Record<string, Buffer> = {};
  for (const name of readdirSync(dirPath).sort()) {
    if (STORE_CARD_IMAGE_NAME.test(name)) images[name] = readFileSync(path.join(dirPath, name));
  }
  return images;
}

function sha1Hex(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

function assertPassImage(name: string, data: Buffer): void {
  if (!STORE_CARD_IMAGE_NAME.test(name)) {
    throw new PassInputError(`Image "${name}" is not a store-card image name (icon|logo|strip, optional @2x/@3x, .png).`);
  }
  if (data.length < PNG_SIGNATURE.length || !data.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    throw new PassInputError(`Image "${name}" is not a PNG file (Wallet accepts PNG only).`);
  }
}

/** ZIP (DOS) timestamps cannot go below 1980; clamp so that odd signing times still zip. */
function zipTimestamp(date: Date): Date {
  const minimum = Date.UTC(1980, 0, 2);
  return date.getTime() < minimum ? new Date(minimum) : date;
}

export function createPassPackager(options: PassPackagerOptions): PassPackager {
  const { signer } = options;
  // Image SHA-1s are computed once per Buffer: default images never change and program images are
  // expected to be cached Buffers too. Keyed by identity (WeakMap), so a Buffer must not be mutated
  // after it was packaged once; a new upload arrives as a new Buffer.
  const imageDigests = new WeakMap<Buffer, string>();
  const digestOfImage = (data: Buffer): string => {
    let digest = imageDigests.get(data);
    if (digest === undefined) {
      digest = sha1Hex(data);
      imageDigests.set(data, digest);
    }
    return digest;
  };

  for (const [name, data] of Object.entries(options.defaultImages)) {
    assertPassImage(name, data);
    digestOfImage(data);
  }

  return {
    async build(input, signingTime = new Date()) {
      const { passJson, passStrings } = buildStoreCardPassJson(input);

      const images: Record<string, Buffer> = { ...options.defaultImages };
      for (const [name, data] of Object.entries(input.images ?? {})) {
        assertPassImage(name, data);
        images[name] = data; // program images override defaults by name
      }
      if (!images['icon.png']) {
        throw new PassInputError('icon.png is required in every pass (Apple: Pass Design – Icon).');
      }

      // manifest.json: every file except manifest.json and signature, with its SHA-1 (reference section 4).
      const files: Record<string, Uint8Array> = { 'pass.json': Buffer.from(JSON.stringify(passJson), 'utf8') };
      const manifest: Record<string, string> = { 'pass.json': sha1Hex(files['pass.json']!) };
      for (const language of PASS_LANGUAGES) {
        const stringsPath = `${language}.lproj/pass.strings`;
        files[stringsPath] = passStrings[language];
        manifest[stringsPath] = sha1Hex(passStrings[language]);
      }
      for (const name of Object.keys(images).sort()) {
        files[name] = images[name]!;
        manifest[name] = digestOfImage(images[name]!);
      }

      const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
      const signature = await signer.sign(manifestBytes, signingTime);

      const zippable: Zippable = { ...files, 'manifest.json': manifestBytes, signature };
      // Stored (level 0): Wallet accepts uncompressed entries (reference section 4); PNGs are already
      // deflated and the rest is a few kilobytes, so compressing would only cost CPU.
      const zip = zipSync(zippable, { level: 0, mtime: zipTimestamp(signingTime) });
      return Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
    },
  };
}
