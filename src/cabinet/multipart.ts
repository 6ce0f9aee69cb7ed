/**
 * A small `multipart/form-data` reader for the cabinet's image upload form (one PNG and a few text
 * fields), so the upload works as a plain HTML form without JavaScript and without another
 * dependency. The body is already size-limited by the content-type parser.
 */

export interface UploadedFile {
  filename: string;
  contentType: string;
  data: Buffer;
}

export class MultipartError extends Error {}

const MAX_PARTS = 20;

function boundaryOf(contentType: string): string {
  const match = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  if (!match) throw new MultipartError('multipart body without a boundary');
  return match[1] ?? match[2];
}

function headerParam(header: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}="([^"]*)"`, 'i').exec(header);
  return match?.[1];
}

export function parseMultipart(body: Buffer, contentType: string): Record<string, string | UploadedFile> {
  const boundary = boundaryOf(contentType);
  const delimiter = Buffer.from(`--${boundary}`);
  const between = Buffer.from(`\r\n--${boundary}`);
  const fields: Record<string, string | UploadedFile> = Object.create(null);
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new MultipartError('multipart body without its boundary');
  for (let parts = 0; ; parts++) {
    if (parts > MAX_PARTS) throw new MultipartError('too many parts');
    pos += delimiter.length;
    const after = body.subarray(pos, pos + 2).toString('latin1');
    if (after === '--') break;
    if (after !== '\r\n') throw new MultipartError('malformed multipart body');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos, 'latin1');
    if (headerEnd < 0) throw new MultipartError('malformed part headers');
    const headers = body.subarray(pos, headerEnd).toString('utf8').split('\r\n');
    const contentStart = headerEnd + 4;
    const next = body.indexOf(between, contentStart);
    if (next < 0) throw new MultipartError('unterminated part');
    const content = body.subarray(contentStart, next);
    pos = next + 2;

    const disposition = headers.find((h) => /^content-disposition:/i.test(h));
    const type = headers.find((h) => /^content-type:/i.test(h));
    const name = disposition ? headerParam(disposition, 'name') : undefined;
    if (!name) continue;
    const filename = disposition ? headerParam(disposition, 'filename') : undefined;
    if (filename !== undefined) {
      fields[name] = { filename, contentType: type ? type.split(':')[1].trim() : 'application/octet-stream', data: Buffer.from(content) };
    } else {
      fields[name] = content.toString('utf8');
    }
  }
  return fields;
}

export function isUploadedFile(value: unknown): value is UploadedFile {
  return typeof value === 'object' && value !== null && Buffer.isBuffer((value as UploadedFile).data);
}
