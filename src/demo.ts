import type { App } from './app.js';
import { hashApiKey, newApiKey } from './http/auth.js';
import { cardUrls } from './cards/dto.js';
import { issueCard } from './enrollment/service.js';
import { createProgram } from './programs/service.js';
import { createSignInLink } from './cabinet/auth.js';

/**
 * A demo program for a fresh installation: only when the database has no program yet, so it never
 * touches a real deployment's data. Returns the keys once; they are stored only as hashes.
 */
export async function seedDemoProgram(app: App) {
  const { db, cardChanges, config } = app.ctx;
  const any = await db.selectFrom('program').select('id').limit(1).executeTakeFirst();
  if (any) return undefined;
  const program = await createProgram(db, {
    slug: 'demo',
    name: 'Кофейня «Демо»',
    defaultLanguage: 'ru',
    currency: 'RUB',
    timeZone: 'Europe/Moscow',
    design: {
      backgroundColor: '#3b2417',
      foregroundColor: '#fff8ee',
      labelColor: '#f0c987',
      logoText: { ru: 'Кофейня «Демо»', en: 'Demo Coffee' },
    },
    apple: { organizationName: 'Кофейня «Демо»' },
    texts: {
      contacts: { ru: '+7 495 000-00-00, ул. Примерная, 1', en: '+7 495 000-00-00, 1 Example St.' },
      terms: { ru: '5 % баллами с каждой покупки, 10 % от 50 000 ₽. 1 балл = 1 ₽.', en: '5 % back in points, 10 % from 50,000 RUB. 1 point = 1 RUB.' },
      promo: { ru: 'Капучино за 1 ₽ по понедельникам', en: 'Cappuccino for 1 RUB on Mondays' },
    },
    locations: [{ latitude: 55.7558, longitude: 37.6173, relevantText: { ru: 'Кофейня «Демо» рядом', en: 'Demo Coffee is nearby' } }],
  });
  const posKey = newApiKey('pos');
  const adminKey = newApiKey('admin');
  await db
    .insertInto('api_key')
    .values([
      { program_id: program.id, role: 'pos', name: 'Demo till', key_hash: hashApiKey(posKey) },
      { program_id: program.id, role: 'admin', name: 'Demo owner', key_hash: hashApiKey(adminKey) },
    ])
    .execute();
  const { card } = await db
    .transaction()
    .execute((trx) => issueCard(trx, cardChanges, program, { holder: { name: 'Анна Демо', phone: '+79160000000' }, consent: true, source: 'demo' }, 'demo'));
  const urls = cardUrls(config.PUBLIC_URL, card);
  // The cabinet's first owner: a one-time sign-in link (a week), printed with the keys.
  const owner = await db.insertInto('staff_member').values({ program_id: program.id, name: 'Владелец Демо', role: 'owner' }).returning('id').executeTakeFirstOrThrow();
  const ownerLink = await createSignInLink(db, {
    staffId: owner.id,
    programId: program.id,
    createdBy: 'demo',
    ttlMs: 7 * 24 * 60 * 60 * 1000,
    now: app.ctx.clock(),
    publicUrl: config.PUBLIC_URL,
  });
  return { slug: program.slug, posKey, adminKey, cardUrl: urls.installUrl, passUrl: urls.applePassUrl, ownerSignInUrl: ownerLink.url };
}

export type DemoProgram = NonNullable<Awaited<ReturnType<typeof seedDemoProgram>>>;
