/**
 * Seeds a benchmark database through the public API of a running app (see pos-server.ts):
 * one program, a pos key and `cards` cards, issued like a till would issue them.
 */
import { randomBytes } from 'node:crypto';
import { expectStatus, httpRequest, keepAliveAgent } from './harness.js';

export interface SeededProgram {
  programId: string;
  slug: string;
  posKey: string;
  cards: Array<{ id: string; number: string }>;
}

export async function seedProgramViaApi(port: number, adminKey: string, cards: number, concurrency = 8): Promise<SeededProgram> {
  const agent = keepAliveAgent(concurrency);
  const json = { 'content-type': 'application/json' };
  try {
    const slug = `bench-${randomBytes(3).toString('hex')}`;
    const admin = { ...json, authorization: `Bearer ${adminKey}` };
    const program = JSON.parse(
      (await expectStatus(httpRequest(agent, port, 'POST', '/api/v1/programs', admin, JSON.stringify({ slug, name: `Bench ${slug}` })), 201)).body,
    ) as { id: string };
    const key = JSON.parse(
      (
        await expectStatus(
          httpRequest(agent, port, 'POST', `/api/v1/programs/${program.id}/keys`, admin, JSON.stringify({ role: 'pos', name: 'bench till' })),
          201,
        )
      ).body,
    ) as { key: string };
    const pos = { ...json, authorization: `Bearer ${key.key}` };

    const issued: Array<{ id: string; number: string }> = new Array(cards);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < cards) {
          const i = next++;
          // +7 916 xxx-xx-xx: valid Russian mobile numbers, unique per card.
          const phone = `+7916${String(i).padStart(7, '0')}`;
          const answer = await expectStatus(
            httpRequest(agent, port, 'POST', '/api/v1/cards', pos, JSON.stringify({ holder: { name: `Holder ${i}`, phone } })),
            201,
          );
          const card = JSON.parse(answer.body) as { id: string; number: string };
          issued[i] = { id: card.id, number: card.number };
        }
      }),
    );
    return { programId: program.id, slug, posKey: key.key, cards: issued };
  } finally {
    agent.destroy();
  }
}
