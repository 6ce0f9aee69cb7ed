import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSms {
  id: string;
  to: string;
  text: string;
  sender: string | null;
  headers: http.IncomingHttpHeaders;
}

export interface SmsStandIn {
  url: string;
  /** Every message accepted (2xx) or refused, in order. */
  received: ReceivedSms[];
  /** Messages to one phone. */
  to(phone: string): ReceivedSms[];
  /** The 6-digit code of the latest message to `phone`. */
  lastCode(phone: string): string;
  /** The status the gateway answers from now on (default 202). */
  status: number;
  close(): Promise<void>;
}

/**
 * A local stand-in for an SMS provider behind the generic HTTP JSON gateway (src/sms/gateway.ts):
 * records each POST `{id, to, text, sender}` and answers `status`.
 */
export async function startSmsStandIn(): Promise<SmsStandIn> {
  const received: ReceivedSms[] = [];
  const state = { status: 202 };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        received.push({ id: json.id, to: json.to, text: json.text, sender: json.sender ?? null, headers: request.headers });
      } catch {
        // recorded as nothing: a malformed request is the gateway's 400
        response.writeHead(400).end();
        return;
      }
      response.writeHead(state.status, { 'content-type': 'application/json' });
      response.end(state.status < 300 ? '{"queued":true}' : '{"error":"unavailable"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const standIn: SmsStandIn = {
    url: `http://127.0.0.1:${port}/sms`,
    received,
    to: (phone) => received.filter((m) => m.to === phone),
    lastCode(phone) {
      const last = received.filter((m) => m.to === phone).at(-1);
      const code = last && /\b(\d{6})\b/.exec(last.text)?.[1];
      if (!code) throw new Error(`no code sent to ${phone}`);
      return code;
    },
    get status() {
      return state.status;
    },
    set status(value: number) {
      state.status = value;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standIn;
}
