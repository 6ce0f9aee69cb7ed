/**
 * Assembles a signed `.pkpass`: pass.json, `en.lproj`/`ru.lproj` pass.strings, images,
 * manifest.json and signature, zipped (reference /work/shared/reference/apple-wallet.md, sections 3
 * and 4; Apple: PassKit Package Format Reference – Pass package, Building a Pass).
 */
import { hash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStoreCardPassJson, PassInputError } from './build-pass-json.js';
import type { PassSigner } from './signer.js';
import { crc32Of, prepareStoredZipBlock, startStoredZip, writeStoredZip, type StoredZipBlock, type StoredZipEntry, type StoredZipPart } from './stored-zip.js';
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
  /**
   * A {@link PassSigner}, or anything with the same `sign` (e.g. a proxy to a worker pool). With
   * `signatureSize` too, the archive is written while the signature is being computed.
   */
  signer: Pick<PassSigner, 'sign'> & Partial<Pick<PassSigner, 'signatureSize'>>;
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

/** One-shot crypto.hash (Node ≥ 20.12): no Hash object per file, which cost ~15 % of a build's non-RSA CPU. */
function sha1Hex(data: Uint8Array): string {
  return hash('sha1', data, 'hex');
}

function assertPassImage(name: string, data: Buffer): void {
  if (!STORE_CARD_IMAGE_NAME.test(name)) {
    throw new PassInputError(`Image "${name}" is not a store-card image name (icon|logo|strip, optional @2x/@3x, .png).`);
  }
  if (data.length < PNG_SIGNATURE.length || !data.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    throw new PassInputError(`Image "${name}" is not a PNG file (Wallet accepts PNG only).`);
  }
}

/** `logo@2x.png` → `logo`. */
function imageFamily(name: string): string {
  return STORE_CARD_IMAGE_NAME.exec(name)![1]!;
}

/**
 * Program images override the defaults by name, and an uploaded image replaces its whole family:
 * when a programme uploads any `logo*.png`, no default `logo*.png` remains. Otherwise a programme
 * that uploads only `logo.png` would still show the default `logo@2x.png`/`logo@3x.png` on every
 * Retina device (Wallet picks the file matching the screen scale), i.e. the wrong brand.
 */
export function mergeImages(defaultImages: Record<string, Buffer>, programImages: Record<string, Buffer>): Record<string, Buffer> {
  const uploadedFamilies = new Set<string>();
  for (const [name, data] of Object.entries(programImages)) {
    assertPassImage(name, data);
    uploadedFamilies.add(imageFamily(name));
  }
  const images: Record<string, Buffer> = {};
  for (const [name, data] of Object.entries(defaultImages)) {
    if (!uploadedFamilies.has(imageFamily(name))) images[name] = data;
  }
  return Object.assign(images, programImages);
}

interface ImageChecksums {
  sha1: string;
  crc32: number;
}

/**
 * Everything of a `.pkpass` that is the same for every card of a program version (issue #14, the
 * re-sign path): the merged images in archive order with their names' bytes, CRC-32s, and the
 * manifest's image lines already serialised. Built once per images record — PassService keeps one
 * record per program and image version, the defaults are one record — and reused by every pass.
 */
interface ImageTemplate {
  /** The images' local headers, data and central-directory headers, serialised once. */
  zipBlock: StoredZipBlock;
  /** `,"icon.png":"<sha1>",…` exactly as JSON.stringify writes those manifest members. */
  manifestMembers: string;
}

export function createPassPackager(options: PassPackagerOptions): PassPackager {
  const { signer } = options;
  // Image SHA-1 (manifest) and CRC-32 (zip) are computed once per Buffer: default images never
  // change and program images are expected to be cached Buffers too. Keyed by identity (WeakMap),
  // so a Buffer must not be mutated after it was packaged once; a new upload arrives as a new Buffer.
  const imageChecksums = new WeakMap<Buffer, ImageChecksums>();
  const checksumsOfImage = (data: Buffer): ImageChecksums => {
    let checksums = imageChecksums.get(data);
    if (checksums === undefined) {
      checksums = { sha1: sha1Hex(data), crc32: crc32Of(data) };
      imageChecksums.set(data, checksums);
    }
    return checksums;
  };

  for (const [name, data] of Object.entries(options.defaultImages)) {
    assertPassImage(name, data);
    checksumsOfImage(data);
  }

  // Per images record (by identity, like the checksums): a record must not be changed once packaged.
  const templates = new WeakMap<Record<string, Buffer>, ImageTemplate>();
  const noProgramImages: Record<string, Buffer> = {};
  const templateOf = (programImages: Record<string, Buffer>): ImageTemplate => {
    let template = templates.get(programImages);
    if (template === undefined) {
      const images = mergeImages(options.defaultImages, programImages);
      if (!images['icon.png']) {
        throw new PassInputError('icon.png is required in every pass (Apple: Pass Design – Icon).');
      }
      const entries: StoredZipEntry[] = [];
      let manifestMembers = '';
      for (const name of Object.keys(images).sort()) {
        const checksums = checksumsOfImage(images[name]!);
        entries.push({ name, data: images[name]!, crc32: checksums.crc32 });
        manifestMembers += `,${JSON.stringify(name)}:${JSON.stringify(checksums.sha1)}`;
      }
      template = { zipBlock: prepareStoredZipBlock(entries), manifestMembers };
      templates.set(programImages, template);
    }
    return template;
  };

  return {
    async build(input, signingTime = new Date()) {
      const { passJson, passStrings } = buildStoreCardPassJson(input);
      const template = templateOf(input.images ?? noProgramImages);

      // manifest.json: every file except manifest.json and signature, with its SHA-1 (reference
      // section 4), in the order pass.json, the strings, the images by name — the bytes
      // JSON.stringify would write for that object, the images' part from the template.
      const passJsonBytes = Buffer.from(JSON.stringify(passJson), 'utf8');
      const parts: StoredZipPart[] = [{ name: 'pass.json', data: passJsonBytes }];
      let manifestJson = `{"pass.json":"${sha1Hex(passJsonBytes)}"`;
      for (const language of PASS_LANGUAGES) {
        const stringsPath = `${language}.lproj/pass.strings`;
        parts.push({ name: stringsPath, data: passStrings[language] });
        manifestJson += `,${JSON.stringify(stringsPath)}:"${sha1Hex(passStrings[language])}"`;
      }
      parts.push(template.zipBlock);
      manifestJson += `${template.manifestMembers}}`;

      const manifestBytes = Buffer.from(manifestJson, 'utf8');
      parts.push({ name: 'manifest.json', data: manifestBytes });
      // Stored entries: Wallet accepts uncompressed entries (reference section 4); PNGs are already
      // deflated and the rest is a few kilobytes, so compressing would only cost CPU.
      const signing = signer.sign(manifestBytes, signingTime);
      // The signature's size is known before its bytes: write the rest of the archive while the RSA
      // operation runs on the thread pool (issue #14), then drop the signature in.
      let signatureSize: number | undefined;
      let archive: ReturnType<typeof startStoredZip> | undefined;
      try {
        signatureSize = signer.signatureSize?.(signingTime);
        if (signatureSize !== undefined) archive = startStoredZip(parts, { name: 'signature', size: signatureSize }, signingTime);
      } catch (error) {
        await signing.catch(() => undefined); // no unhandled rejection; the layout error is the one to report
        throw error;
      }
      const signature = await signing;
      if (archive === undefined || signature.length !== signatureSize) return writeStoredZip([...parts, { name: 'signature', data: signature }], signingTime);
      return archive.finish(signature);
    },
  };
}
