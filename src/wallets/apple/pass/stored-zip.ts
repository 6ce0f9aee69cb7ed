/**
 * Minimal ZIP writer for `.pkpass` archives: stored entries only (method 0, no compression).
 *
 * Why not fflate's zipSync: it recomputes CRC-32 in JavaScript over every file on every build,
 * ~45 % of the non-signing CPU time of a pass (measured with `npm run bench:passes` + --cpu-prof).
 * Here CRC-32 comes from zlib's native implementation (`zlib.crc32`, Node ≥ 20.15) and callers can
 * pass a precomputed CRC for files that never change (the images), so a build only checksums the
 * few kilobytes that differ per pass. Wallet accepts stored entries (reference
 * /work/shared/reference/apple-wallet.md, section 4), and PNGs are already deflated.
 *
 * Format: PKWARE APPNOTE.TXT 6.3.x, sections 4.3.7 (local file header), 4.3.12 (central
 * directory header), 4.3.16 (end of central directory). No ZIP64: a pass is far below 4 GiB and
 * 65,535 entries.
 */
import { crc32 } from 'node:zlib';

export interface StoredZipEntry {
  /** Path inside the archive, `/`-separated, ASCII. */
  name: string;
  data: Uint8Array;
  /** CRC-32 of `data` if already known (e.g. cached for unchanging images). */
  crc32?: number;
  /** `name` as UTF-8 bytes if already known (entries reused across archives). */
  nameBytes?: Buffer;
}

const LOCAL_FILE_HEADER_SIGNATURE = 0x04034b50;
const CENTRAL_DIRECTORY_SIGNATURE = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY_SIGNATURE = 0x06054b50;
const LOCAL_FILE_HEADER_SIZE = 30;
const CENTRAL_DIRECTORY_HEADER_SIZE = 46;
const END_OF_CENTRAL_DIRECTORY_SIZE = 22;
const VERSION_NEEDED = 20; // 2.0: the common baseline every reader accepts
const METHOD_STORED = 0;

/** Native CRC-32 (IEEE 802.3, as ZIP uses). */
export function crc32Of(data: Uint8Array): number {
  return crc32(data) >>> 0;
}

/** MS-DOS date and time fields (2-second resolution, years 1980–2107), taken in UTC so builds do not depend on the server's zone. */
function dosDateTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getUTCFullYear(), 1980), 2107);
  return {
    time: (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate(),
  };
}

function writeLocalHeader(archive: Buffer, offset: number, name: Buffer, size: number, checksum: number, time: number, date: number): number {
  archive.writeUInt32LE(LOCAL_FILE_HEADER_SIGNATURE, offset);
  archive.writeUInt16LE(VERSION_NEEDED, offset + 4);
  archive.writeUInt16LE(0, offset + 6); // flags: sizes and CRC are in this header, no data descriptor
  archive.writeUInt16LE(METHOD_STORED, offset + 8);
  archive.writeUInt16LE(time, offset + LOCAL_TIME_FIELD);
  archive.writeUInt16LE(date, offset + LOCAL_TIME_FIELD + 2);
  archive.writeUInt32LE(checksum, offset + LOCAL_CRC_FIELD);
  archive.writeUInt32LE(size, offset + 18); // compressed size
  archive.writeUInt32LE(size, offset + 22); // uncompressed size
  archive.writeUInt16LE(name.length, offset + 26);
  archive.writeUInt16LE(0, offset + 28); // extra field length
  return offset + LOCAL_FILE_HEADER_SIZE + name.copy(archive, offset + LOCAL_FILE_HEADER_SIZE);
}

function writeCentralHeader(
  archive: Buffer,
  offset: number,
  name: Buffer,
  size: number,
  checksum: number,
  time: number,
  date: number,
  localHeaderOffset: number,
): number {
  archive.writeUInt32LE(CENTRAL_DIRECTORY_SIGNATURE, offset);
  archive.writeUInt16LE(VERSION_NEEDED, offset + 4); // version made by (MS-DOS, 2.0)
  archive.writeUInt16LE(VERSION_NEEDED, offset + 6);
  archive.writeUInt16LE(0, offset + 8);
  archive.writeUInt16LE(METHOD_STORED, offset + 10);
  archive.writeUInt16LE(time, offset + CENTRAL_TIME_FIELD);
  archive.writeUInt16LE(date, offset + CENTRAL_TIME_FIELD + 2);
  archive.writeUInt32LE(checksum, offset + CENTRAL_CRC_FIELD);
  archive.writeUInt32LE(size, offset + 20);
  archive.writeUInt32LE(size, offset + 24);
  archive.writeUInt16LE(name.length, offset + 28);
  archive.writeUInt16LE(0, offset + 30); // extra field length
  archive.writeUInt16LE(0, offset + 32); // comment length
  archive.writeUInt16LE(0, offset + 34); // disk number start
  archive.writeUInt16LE(0, offset + 36); // internal attributes
  archive.writeUInt32LE(0, offset + 38); // external attributes
  archive.writeUInt32LE(localHeaderOffset, offset + CENTRAL_LOCAL_OFFSET_FIELD);
  return offset + CENTRAL_DIRECTORY_HEADER_SIZE + name.copy(archive, offset + CENTRAL_DIRECTORY_HEADER_SIZE);
}

const LOCAL_TIME_FIELD = 10;
const LOCAL_CRC_FIELD = 14;
const CENTRAL_TIME_FIELD = 12;
const CENTRAL_CRC_FIELD = 16;
const CENTRAL_LOCAL_OFFSET_FIELD = 42;

/**
 * A run of entries already serialised (issue #14, the pass template): their local headers and data
 * as one byte block, their central-directory headers as another, written once and copied into every
 * archive that holds them. Only what differs per archive is written then: the date and time fields
 * and the local-header offsets in the central directory. Made by {@link prepareStoredZipBlock}.
 */
export interface StoredZipBlock {
  /** Local headers, each followed by its data; date and time left zero. */
  local: Buffer;
  /** Central-directory headers; date, time and local-header offsets left zero. */
  central: Buffer;
  /** Offset of each entry's local header within `local`. */
  localHeaderOffsets: number[];
  /** Offset of each entry's central header within `central`. */
  centralHeaderOffsets: number[];
}

export function prepareStoredZipBlock(entries: StoredZipEntry[]): StoredZipBlock {
  const names = entries.map((entry) => entry.nameBytes ?? Buffer.from(entry.name, 'utf8'));
  let localSize = 0;
  let centralSize = 0;
  for (let index = 0; index < entries.length; index++) {
    localSize += LOCAL_FILE_HEADER_SIZE + names[index]!.length + entries[index]!.data.length;
    centralSize += CENTRAL_DIRECTORY_HEADER_SIZE + names[index]!.length;
  }
  const local = Buffer.alloc(localSize);
  const central = Buffer.alloc(centralSize);
  const localHeaderOffsets: number[] = [];
  const centralHeaderOffsets: number[] = [];
  let localOffset = 0;
  let centralOffset = 0;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    const checksum = entry.crc32 ?? crc32Of(entry.data);
    localHeaderOffsets.push(localOffset);
    centralHeaderOffsets.push(centralOffset);
    localOffset = writeLocalHeader(local, localOffset, names[index]!, entry.data.length, checksum, 0, 0);
    local.set(entry.data, localOffset);
    localOffset += entry.data.length;
    centralOffset = writeCentralHeader(central, centralOffset, names[index]!, entry.data.length, checksum, 0, 0, 0);
  }
  return { local, central, localHeaderOffsets, centralHeaderOffsets };
}

/** An archive part: one entry, or a prepared run of entries. */
export type StoredZipPart = StoredZipEntry | StoredZipBlock;

function isBlock(part: StoredZipPart): part is StoredZipBlock {
  return (part as StoredZipBlock).central !== undefined;
}

/** The last entry of a {@link startStoredZip} archive: its size is known, its bytes come later. */
export interface DeferredStoredZipEntry {
  name: string;
  size: number;
}

export interface PendingStoredZip {
  /**
   * Writes the deferred entry's bytes and CRC-32 and returns the finished archive. `data` must be
   * exactly the announced size. The archive is handed out only here, so nobody holds it while it is
   * still being written.
   */
  finish(data: Uint8Array): Buffer;
}

/**
 * Writes an archive of `parts` followed by one entry whose bytes are not known yet (a `.pkpass`'s
 * signature, while the RSA operation runs on the thread pool): everything is laid out and written
 * into one buffer of the exact final size now, and {@link PendingStoredZip.finish} fills in the rest.
 */
export function startStoredZip(parts: StoredZipPart[], deferred: DeferredStoredZipEntry | undefined, modified: Date): PendingStoredZip {
  const { time, date } = dosDateTime(modified);
  const names = parts.map((part) => (isBlock(part) ? EMPTY : (part.nameBytes ?? Buffer.from(part.name, 'utf8'))));
  const deferredName = deferred === undefined ? EMPTY : Buffer.from(deferred.name, 'utf8');
  let entryCount = 0;
  let localSize = 0;
  let centralSize = 0;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    if (isBlock(part)) {
      entryCount += part.localHeaderOffsets.length;
      localSize += part.local.length;
      centralSize += part.central.length;
    } else {
      entryCount++;
      localSize += LOCAL_FILE_HEADER_SIZE + names[index]!.length + part.data.length;
      centralSize += CENTRAL_DIRECTORY_HEADER_SIZE + names[index]!.length;
    }
  }
  if (deferred !== undefined) {
    entryCount++;
    localSize += LOCAL_FILE_HEADER_SIZE + deferredName.length + deferred.size;
    centralSize += CENTRAL_DIRECTORY_HEADER_SIZE + deferredName.length;
  }
  // One allocation of the exact size: the archive is never concatenated or copied again.
  const archive = Buffer.allocUnsafe(localSize + centralSize + END_OF_CENTRAL_DIRECTORY_SIZE);

  // Local headers and data. For a single entry: its header's offset and CRC-32 (written again in
  // the central directory); for a block: where the block starts.
  const partOffsets: number[] = [];
  const checksums: number[] = [];
  let offset = 0;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    partOffsets.push(offset);
    if (isBlock(part)) {
      archive.set(part.local, offset);
      for (const headerOffset of part.localHeaderOffsets) {
        archive.writeUInt16LE(time, offset + headerOffset + LOCAL_TIME_FIELD);
        archive.writeUInt16LE(date, offset + headerOffset + LOCAL_TIME_FIELD + 2);
      }
      offset += part.local.length;
      checksums.push(0);
    } else {
      const checksum = part.crc32 ?? crc32Of(part.data);
      checksums.push(checksum);
      offset = writeLocalHeader(archive, offset, names[index]!, part.data.length, checksum, time, date);
      archive.set(part.data, offset);
      offset += part.data.length;
    }
  }
  const deferredLocalOffset = offset;
  if (deferred !== undefined) offset = writeLocalHeader(archive, offset, deferredName, deferred.size, 0, time, date) + deferred.size;

  const centralDirectoryOffset = offset;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    if (isBlock(part)) {
      archive.set(part.central, offset);
      for (let entry = 0; entry < part.centralHeaderOffsets.length; entry++) {
        const headerOffset = offset + part.centralHeaderOffsets[entry]!;
        archive.writeUInt16LE(time, headerOffset + CENTRAL_TIME_FIELD);
        archive.writeUInt16LE(date, headerOffset + CENTRAL_TIME_FIELD + 2);
        archive.writeUInt32LE(partOffsets[index]! + part.localHeaderOffsets[entry]!, headerOffset + CENTRAL_LOCAL_OFFSET_FIELD);
      }
      offset += part.central.length;
    } else {
      offset = writeCentralHeader(archive, offset, names[index]!, part.data.length, checksums[index]!, time, date, partOffsets[index]!);
    }
  }
  const deferredCentralOffset = offset;
  if (deferred !== undefined) {
    offset = writeCentralHeader(archive, offset, deferredName, deferred.size, 0, time, date, deferredLocalOffset);
  }

  archive.writeUInt32LE(END_OF_CENTRAL_DIRECTORY_SIGNATURE, offset);
  archive.writeUInt16LE(0, offset + 4); // this disk
  archive.writeUInt16LE(0, offset + 6); // disk with the central directory
  archive.writeUInt16LE(entryCount, offset + 8);
  archive.writeUInt16LE(entryCount, offset + 10);
  archive.writeUInt32LE(offset - centralDirectoryOffset, offset + 12);
  archive.writeUInt32LE(centralDirectoryOffset, offset + 16);
  archive.writeUInt16LE(0, offset + 20); // comment length

  let finished = false;
  return {
    finish(data) {
      if (finished) throw new Error('This archive was already finished');
      if (deferred === undefined) {
        if (data.length !== 0) throw new Error('This archive has no deferred entry');
      } else {
        if (data.length !== deferred.size) throw new Error(`The deferred entry is ${deferred.size} bytes, got ${data.length}`);
        archive.set(data, deferredLocalOffset + LOCAL_FILE_HEADER_SIZE + deferredName.length);
        const checksum = crc32Of(data);
        archive.writeUInt32LE(checksum, deferredLocalOffset + LOCAL_CRC_FIELD);
        archive.writeUInt32LE(checksum, deferredCentralOffset + CENTRAL_CRC_FIELD);
      }
      finished = true;
      return archive;
    },
  };
}

const EMPTY = Buffer.alloc(0);

export function writeStoredZip(parts: StoredZipPart[], modified: Date): Buffer {
  return startStoredZip(parts, undefined, modified).finish(EMPTY);
}
