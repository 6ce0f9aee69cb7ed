import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';

/** One purchase a till wants recorded, with its Idempotency-Key. */
export interface TillRequest {
  key: string;
  cardId: string;
  body: { amount: number; redeemPoints?: number };
}

export interface TillAnswer {
  status: number;
  body: any;
  /** Attempts it took (1 = answered the first time). */
  attempts: number;
  /** What went wrong on the attempts before: 5xx statuses, or network errors. */
  failures: string[];
}

/**
 * A till that retries with the same key until it gets an answer that is not a server failure
 * (2xx or 4xx), as a POS integration should: 5xx and network errors (connection refused or reset
 * while the service is down) are retried with a short pause, up to `maxAttempts`.
 */
export async function sendUntilAnswered(
  send: (request: TillRequest) => Promise<{ status: number; body: any }>,
  request: TillRequest,
  options: { maxAttempts?: number; pauseMs?: number } = {},
): Promise<TillAnswer> {
  const failures: string[] = [];
  const maxAttempts = options.maxAttempts ?? 200;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      const answer = await send(request);
      if (answer.status < 500) return { ...answer, attempts: attempt, failures };
      failures.push(String(answer.status));
    } catch (error) {
      failures.push(error instanceof Error ? (((error as { cause?: { code?: string } }).cause?.code ?? error.message) as string) : String(error));
    }
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 25));
  }
  throw new Error(`no answer for ${request.key} after ${maxAttempts} attempts: ${failures.slice(-3).join(', ')}`);
}

/** Runs `requests` through `clients` concurrent tills. */
export async function runTills(clients: number, requests: TillRequest[], till: (request: TillRequest) => Promise<TillAnswer>): Promise<Map<string, TillAnswer>> {
  const answers = new Map<string, TillAnswer>();
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests.length) {
        const request = requests[next++]!;
        answers.set(request.key, await till(request));
      }
    }),
  );
  return answers;
}

/**
 * Exactly once: every answered 201 is one purchase with one accrual entry carrying its key, every
 * refusal left nothing, no purchase exists that no till was answered for, and every card's balance is
 * the sum of its ledger.
 */
export async function expectExactlyOnce(db: Db, answers: Map<string, TillAnswer>, expect: (value: unknown, message?: string) => any) {
  const created = [...answers.entries()].filter(([, a]) => a.status === 201);
  const { rows: entries } = await sql<{ key: string; purchases: number; accruals: number }>`
    SELECT idempotency_key AS key, count(DISTINCT purchase_id)::int AS purchases, count(*) FILTER (WHERE kind = 'accrual')::int AS accruals
    FROM ledger_entry WHERE idempotency_key IS NOT NULL AND kind IN ('accrual', 'redemption') GROUP BY idempotency_key
  `.execute(db);
  const byKey = new Map(entries.map((e) => [e.key, e]));
  for (const [key, answer] of created) {
    expect(byKey.get(key), `ledger of ${key}`).toEqual({ key, purchases: 1, accruals: 1 });
    expect(typeof answer.body.purchaseId).toBe('string');
  }
  for (const [key, answer] of answers) {
    if (answer.status !== 201) expect(byKey.has(key), `a refused ${key} left entries`).toBe(false);
  }
  const { rows: purchases } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM purchase`.execute(db);
  expect(Number(purchases[0]!.n)).toBe(created.length);
  const ids = new Set(created.map(([, a]) => a.body.purchaseId));
  const { rows: stored } = await sql<{ id: string }>`SELECT id FROM purchase`.execute(db);
  for (const row of stored) expect(ids.has(row.id), `purchase ${row.id} answered to a till`).toBe(true);
  const { rows: cards } = await sql<{ id: string; balance: number; ledger: number }>`
    SELECT c.id, c.balance, coalesce((SELECT sum(points) FROM ledger_entry e WHERE e.card_id = c.id), 0)::bigint AS ledger FROM card c
  `.execute(db);
  for (const card of cards) expect(Number(card.ledger), `ledger of card ${card.id}`).toBe(Number(card.balance));
}
