import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A local SMTP server (the `smtp-server` package) on 127.0.0.1, port 0, that requires AUTH with the
 * given user and password and records every message it accepts, decoded far enough for tests to
 * read it: headers, subject (RFC 2047 words), and a single text part (quoted-printable, base64 or
 * 7bit, UTF-8). No TLS: nodemailer sends `smtp://` URLs in the clear when the server offers no
 * STARTTLS.
 */
export interface ReceivedMail {
  /** MAIL FROM and RCPT TO of the envelope. */
  envelopeFrom: string;
  envelopeTo: string[];
  /** The authenticated SMTP user. */
  user: string | undefined;
  headers: Map<string, string>;
  subject: string;
  text: string;
  raw: string;
}

export interface SmtpStandIn {
  port: number;
  /** `smtp://user:pass@127.0.0.1:port` for SMTP_URL. */
  url: string;
  received: ReceivedMail[];
  /** Refuse the next `count` messages with a temporary error (451). */
  failNext(count: number): void;
  close(): Promise<void>;
}

export async function startSmtpStandIn(options: { user?: string; password?: string } = {}): Promise<SmtpStandIn> {
  const user = options.user ?? 'mailer';
  const password = options.password ?? 'smtp-test-password';
  const received: ReceivedMail[] = [];
  let failures = 0;
  const server = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) return callback(null, { user });
      return callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (failures > 0) {
          failures -= 1;
          const error = Object.assign(new Error('Try again later'), { responseCode: 451 });
          return callback(error);
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const parsed = parseMessage(raw);
        received.push({
          envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          envelopeTo: session.envelope.rcptTo.map((r) => r.address),
          user: typeof session.user === 'string' ? session.user : undefined,
          ...parsed,
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    received,
    failNext(count) {
      failures = count;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headers (unfolded, names lower-cased, RFC 2047 decoded) and the decoded body of a single-part message. */
export function parseMessage(raw: string): { headers: Map<string, string>; subject: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split + 4) : '';
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()));
  }
  const encoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  let bytes: Buffer;
  if (encoding === 'base64') bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (encoding === 'quoted-printable') bytes = decodeQuotedPrintable(body);
  else bytes = Buffer.from(body, 'utf8');
  return { headers, subject: headers.get('subject') ?? '', text: bytes.toString('utf8').replace(/\r\n/g, '\n').replace(/\n$/, '') };
}

function decodeQuotedPrintable(body: string): Buffer {
  const soft = body.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/**
 * RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`). Adjacent words are one run: the
 * whitespace between them is dropped and their bytes decoded together (a character may span two).
 */
function decodeWords(value: string): string {
  const word = /=\?[^?]+\?([BbQq])\?([^?]*)\?=/y;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const bytes: Buffer[] = [];
    let j = i;
    for (;;) {
      word.lastIndex = j;
      const m = word.exec(value);
      if (!m) break;
      bytes.push(m[1].toUpperCase() === 'B' ? Buffer.from(m[2], 'base64') : decodeQuotedPrintable(m[2].replace(/_/g, ' ')));
      j = word.lastIndex;
      const gap = /^\s+(?==\?)/.exec(value.slice(j));
      if (gap) j += gap[0].length;
    }
    if (bytes.length > 0) {
      out += Buffer.concat(bytes).toString('utf8');
      i = j;
    } else {
      out += value[i];
      i += 1;
    }
  }
  return out;
}
