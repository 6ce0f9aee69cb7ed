import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as signed. */
  body: string;
  json: any;
  at: number;
}

export interface WebhookReceiver {
  port: number;
  url(path: string): string;
  received: ReceivedWebhook[];
  at(path: string): ReceivedWebhook[];
  /** The status a path answers (default 200); `redirect` answers 302 to another path. */
  respond(path: string, status: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

/** A local HTTP server on 127.0.0.1 (port 0) that records every request it gets. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const responses = new Map<string, { status: number; headers: Record<string, string> }>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const path = (request.url ?? '/').split('?')[0];
      received.push({ path, method: request.method ?? '', headers: request.headers, body, json, at: Date.now() });
      const answer = responses.get(path) ?? { status: 200, headers: {} };
      response.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      response.end(answer.status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    at: (path) => received.filter((r) => r.path === path),
    respond(path, status, headers = {}) {
      responses.set(path, { status, headers });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
