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

export function writeStoredZip(entries: StoredZipEntry[], modified: Date): Buffer {
  const { time, date } = dosDateTime(modified);
  const names = entries.map((entry) => entry.nameBytes ?? Buffer.from(entry.name, 'utf8'));
  let localSize = 0;
  let centralSize = 0;
  for (let index = 0; index < entries.length; index++) {
    localSize += LOCAL_FILE_HEADER_SIZE + names[index]!.length + entries[index]!.data.length;
    centralSize += CENTRAL_DIRECTORY_HEADER_SIZE + names[index]!.length;
  }
  const archive = Buffer.allocUnsafe(localSize + centralSize + END_OF_CENTRAL_DIRECTORY_SIZE);

  const localOffsets: number[] = [];
  const checksums: number[] = [];
  let offset = 0;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    const name = names[index]!;
    const checksum = entry.crc32 ?? crc32Of(entry.data);
    localOffsets.push(offset);
    checksums.push(checksum);
    archive.writeUInt32LE(LOCAL_FILE_HEADER_SIGNATURE, offset);
    archive.writeUInt16LE(VERSION_NEEDED, offset + 4);
    archive.writeUInt16LE(0, offset + 6); // flags: sizes and CRC are in this header, no data descriptor
    archive.writeUInt16LE(METHOD_STORED, offset + 8);
    archive.writeUInt16LE(time, offset + 10);
    archive.writeUInt16LE(date, offset + 12);
    archive.writeUInt32LE(checksum, offset + 14);
    archive.writeUInt32LE(entry.data.length, offset + 18); // compressed size
    archive.writeUInt32LE(entry.data.length, offset + 22); // uncompressed size
    archive.writeUInt16LE(name.length, offset + 26);
    archive.writeUInt16LE(0, offset + 28); // extra field length
    offset += LOCAL_FILE_HEADER_SIZE;
    offset += name.copy(archive, offset);
    archive.set(entry.data, offset);
    offset += entry.data.length;
  }

  const centralDirectoryOffset = offset;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    const name = names[index]!;
    archive.writeUInt32LE(CENTRAL_DIRECTORY_SIGNATURE, offset);
    archive.writeUInt16LE(VERSION_NEEDED, offset + 4); // version made by (MS-DOS, 2.0)
    archive.writeUInt16LE(VERSION_NEEDED, offset + 6);
    archive.writeUInt16LE(0, offset + 8);
    archive.writeUInt16LE(METHOD_STORED, offset + 10);
    archive.writeUInt16LE(time, offset + 12);
    archive.writeUInt16LE(date, offset + 14);
    archive.writeUInt32LE(checksums[index]!, offset + 16);
    archive.writeUInt32LE(entry.data.length, offset + 20);
    archive.writeUInt32LE(entry.data.length, offset + 24);
    archive.writeUInt16LE(name.length, offset + 28);
    archive.writeUInt16LE(0, offset + 30); // extra field length
    archive.writeUInt16LE(0, offset + 32); // comment length
    archive.writeUInt16LE(0, offset + 34); // disk number start
    archive.writeUInt16LE(0, offset + 36); // internal attributes
    archive.writeUInt32LE(0, offset + 38); // external attributes
    archive.writeUInt32LE(localOffsets[index]!, offset + 42);
    offset += CENTRAL_DIRECTORY_HEADER_SIZE;
    offset += name.copy(archive, offset);
  }

  archive.writeUInt32LE(END_OF_CENTRAL_DIRECTORY_SIGNATURE, offset);
  archive.writeUInt16LE(0, offset + 4); // this disk
  archive.writeUInt16LE(0, offset + 6); // disk with the central directory
  archive.writeUInt16LE(entries.length, offset + 8);
  archive.writeUInt16LE(entries.length, offset + 10);
  archive.writeUInt32LE(offset - centralDirectoryOffset, offset + 12);
  archive.writeUInt32LE(centralDirectoryOffset, offset + 16);
  archive.writeUInt16LE(0, offset + 20); // comment length
  return archive;
}
