/**
 * Outgoing SMS: one small interface, one generic provider.
 *
 * `HttpJsonSmsGateway` posts each message to `SMS_GATEWAY_URL`:
 *
 *     POST {SMS_GATEWAY_URL}
 *     Content-Type: application/json
 *     Authorization: Bearer {SMS_GATEWAY_TOKEN}        (only when the token is set)
 *     Idempotency-Key: {message id}
 *
 *     {"id": "<message id>", "to": "+79161234567", "text": "123456 — код для карты «Кофейня»…", "sender": "<SMS_SENDER or null>"}
 *
 * Any 2xx is success; anything else, a timeout (10 s) or a network error is a failure the caller
 * reports (nothing is retried: a one-time code that arrives minutes late is useless, the person asks
 * again). Most SMS providers (or a few lines of glue in front of one) accept this shape. The message
 * text carries a one-time code, so it is never logged: errors name the status and the host only.
 */
export interface SmsMessage {
  /** Unique per message: providers that support it drop a duplicate send. */
  id: string;
  /** E.164. */
  to: string;
  text: string;
}

export interface SmsGateway {
  send(message: SmsMessage): Promise<void>;
}

export class SmsGatewayError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SmsGatewayError';
  }
}

const TIMEOUT_MS = 10_000;

export class HttpJsonSmsGateway implements SmsGateway {
  readonly #host: string;

  constructor(
    private readonly url: string,
    private readonly options: { token?: string; sender?: string; timeoutMs?: number } = {},
  ) {
    this.#host = new URL(url).host;
  }

  async send(message: SmsMessage): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': message.id,
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: JSON.stringify({ id: message.id, to: message.to, text: message.text, sender: this.options.sender ?? null }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (error) {
      // The cause may quote the request; keep only its kind.
      const kind = error instanceof Error ? error.name : 'Error';
      throw new SmsGatewayError(`SMS gateway ${this.#host} unreachable (${kind})`);
    }
    // Drain the body (keep-alive) without ever reading it into a log.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new SmsGatewayError(`SMS gateway ${this.#host} answered ${response.status}`, response.status);
  }
}

/** The configured gateway, or undefined when SMS_GATEWAY_URL is unset (no SMS: codes cannot be sent). */
export function createConfiguredSmsGateway(config: { SMS_GATEWAY_URL?: string; SMS_GATEWAY_TOKEN?: string; SMS_SENDER?: string }): SmsGateway | undefined {
  if (!config.SMS_GATEWAY_URL) return undefined;
  return new HttpJsonSmsGateway(config.SMS_GATEWAY_URL, { token: config.SMS_GATEWAY_TOKEN, sender: config.SMS_SENDER });
}
