import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Card-base imports end to end through HTTP (docs/import.md): the parser, the dry run, the staged
// apply job, idempotency, update mode, resume after a crash, the plastic number at the till.

interface BaseRow {
  card: string;
  phone: string;
  name: string;
  birthday: string;
  balance: string;
  tier: string;
  notes: string;
}

/** A small base in the messy formats real exports use. */
const BASE: BaseRow[] = [
  { card: '2000001', phone: '+7 916 123-45-01', name: 'Иванова Мария Петровна', birthday: '31.12.1990', balance: '1 234,00', tier: 'Стандартная', notes: 'VIP\nзвонить после 18' },
  { card: '2000002', phone: '8 (916) 123-45-02', name: 'Пётр Сидоров', birthday: '1985-02-03', balance: '150', tier: 'general', notes: '' },
  { card: '2000003', phone: '9161234503', name: 'Ёлкина "Ёлка" Анна', birthday: '', balance: '0', tier: '', notes: 'клиент; постоянный' },
  { card: '2000004', phone: '+79161234504', name: 'John Smith', birthday: '01/02/1970', balance: '99.50', tier: 'Standard', notes: '' },
];

function render(rows: BaseRow[], options: { delimiter: ',' | ';'; bom?: boolean; encoding?: 'utf-8' | 'windows-1251'; quoteAll?: boolean }): Buffer {
  const d = options.delimiter;
  const cell = (v: string) => (options.quoteAll || v.includes(d) || v.includes('"') || v.includes('\n') ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = [['Номер карты', 'Телефон', 'ФИО', 'Дата рождения', 'Бонусы', 'Уровень', 'Примечание'].map(cell).join(d)];
  for (const r of rows) lines.push([r.card, r.phone, r.name, r.birthday, r.balance, r.tier, r.notes].map(cell).join(d));
  const text = `${lines.join('\r\n')}\r\n`;
  const body = options.encoding === 'windows-1251' ? iconv.encode(text, 'windows-1251') : Buffer.from(text);
  return options.bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]) : body;
}

describe(`card-base imports (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    // Workers off: the tests run the import's chunks themselves (runToEnd), deterministically.
    t = await startTestApp({ runWorkers: false, imports: { chunkSize: 2, maxBytes: 64 * 1024, stallSeconds: 1 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (headers: Record<string, string>, body: Buffer | string, query = '', extra: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url: `/api/v1/imports${query}`, headers: { ...headers, 'content-type': 'text/csv', ...extra }, payload: body });

  async function importAndApply(headers: Record<string, string>, body: Buffer | string, query = '') {
    const res = await post(headers, body, query);
    expect(res.statusCode, res.body).toBe(202);
    await t.app.imports.runToEnd(res.json().id);
    const done = await t.app.inject({ method: 'GET', url: `/api/v1/imports/${res.json().id}`, headers });
    expect(done.statusCode).toBe(200);
    return done.json();
  }

  const cardsOf = (programId: string) =>
    t.database.handle.db
      .selectFrom('card')
      .select(['external_number', 'phone', 'holder_name', 'balance', 'tier', 'notes', 'source', 'verified_via', sql<string>`birthday::text`.as('birthday')])
      .where('program_id', '=', programId)
      .orderBy('external_number')
      .execute();

  const ledgerOf = (programId: string) =>
    t.database.handle.db.selectFrom('ledger_entry').select(['card_id', 'kind', 'points']).where('program_id', '=', programId).orderBy('id').execute();

  it('UTF-8 with BOM, Windows-1251 with ; and quoted fields with line breaks produce the same cards, balances as import ledger entries', async () => {
    const files = {
      bom: render(BASE, { delimiter: ',', bom: true }),
      cp1251: render(BASE, { delimiter: ';', encoding: 'windows-1251' }),
      quoted: render(BASE, { delimiter: ';', quoteAll: true }),
    };
    const results: Record<string, Awaited<ReturnType<typeof cardsOf>>> = {};
    for (const [name, body] of Object.entries(files)) {
      const { program, as } = await createProgramWithKeys(t.app, `imp-${name}`, { rules: { welcomeBonus: 500 } });
      const done = await importAndApply(as('admin'), body);
      expect(done).toMatchObject({ status: 'finished', progress: { rowsRead: 4, rowsValid: 4, created: 4, updated: 0, failed: 0 } });
      results[name] = await cardsOf(program.id);
      // Opening balances are ledger entries of kind import; no welcome bonus for imported holders.
      const ledger = await ledgerOf(program.id);
      expect(ledger.map((e) => [e.kind, Number(e.points)])).toEqual(
        expect.arrayContaining([
          ['import', 1234],
          ['import', 150],
          ['import', 100],
        ]),
      );
      expect(ledger).toHaveLength(3);
    }
    expect(results.cp1251).toEqual(results.bom);
    expect(results.quoted).toEqual(results.bom);
    expect(results.bom!.map((c) => ({ ...c, balance: Number(c.balance) }))).toEqual([
      { external_number: '2000001', phone: '+79161234501', holder_name: 'Иванова Мария Петровна', balance: 1234, tier: 'standard', notes: 'VIP\nзвонить после 18', source: 'import', verified_via: 'legacy', birthday: '1990-12-31' },
      { external_number: '2000002', phone: '+79161234502', holder_name: 'Пётр Сидоров', balance: 150, tier: 'general', notes: null, source: 'import', verified_via: 'legacy', birthday: '1985-02-03' },
      { external_number: '2000003', phone: '+79161234503', holder_name: 'Ёлкина "Ёлка" Анна', balance: 0, tier: 'standard', notes: 'клиент; постоянный', source: 'import', verified_via: 'legacy', birthday: null },
      { external_number: '2000004', phone: '+79161234504', holder_name: 'John Smith', balance: 100, tier: 'standard', notes: null, source: 'import', verified_via: 'legacy', birthday: '1970-02-01' },
    ]);
  });

  it('the shipped sample base (UTF-8 and Windows-1251) dry-runs to the same report and imports', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-sample');
    const utf8 = readFileSync(new URL('../../samples/plastic-base.csv', import.meta.url));
    const cp1251 = readFileSync(new URL('../../samples/plastic-base-cp1251.csv', import.meta.url));
    const a = (await post(as('admin'), utf8, '?dryRun=true')).json();
    const b = (await post(as('admin'), cp1251, '?dryRun=true')).json();
    expect(a).toMatchObject({ encoding: 'utf-8', delimiter: ';', rowsRead: 200 });
    expect(b).toMatchObject({ encoding: 'windows-1251', delimiter: ';', rowsRead: 200 });
    expect({ ...b, encoding: 'utf-8' }).toEqual(a);
    expect(a.rowsFailed).toBeGreaterThan(0);
    expect(Object.keys(a.columns.mapping)).toHaveLength(11);
    const done = await importAndApply(as('admin'), cp1251);
    expect(done.progress).toMatchObject({ created: a.rowsValid, failed: a.rowsFailed });
    const cards = await cardsOf(program.id);
    expect(cards).toHaveLength(a.rowsValid);
    expect(cards.every((c) => /^\+79\d{9}$/.test(c.phone) && /[А-Яа-яЁё]/.test(c.holder_name))).toBe(true);
  });

  it('the same file twice creates nothing the second time; update mode moves balances only by ledger deltas', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-twice');
    await importAndApply(as('admin'), render(BASE, { delimiter: ';' }));
    const cards = await cardsOf(program.id);
    const ledger = await ledgerOf(program.id);

    const again = await importAndApply(as('admin'), render(BASE, { delimiter: ';' }));
    expect(again.progress).toMatchObject({ created: 0, updated: 0, unchanged: 4, failed: 0 });
    expect(await cardsOf(program.id)).toEqual(cards);
    expect(await ledgerOf(program.id)).toEqual(ledger);

    // Update mode: two balances changed in the source system, one unchanged.
    const changed = BASE.map((r) => (r.card === '2000001' ? { ...r, balance: '1000' } : r.card === '2000003' ? { ...r, balance: '75' } : r));
    const updated = await importAndApply(as('admin'), render(changed, { delimiter: ';' }), '?mode=update');
    expect(updated.progress).toMatchObject({ created: 0, updated: 2, unchanged: 2, failed: 0 });
    const after = await ledgerOf(program.id);
    expect(after.slice(ledger.length).map((e) => [e.kind, Number(e.points)])).toEqual([
      ['import', -234],
      ['import', 75],
    ]);
    // The balance is the sum of the ledger for every card.
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM card c
      WHERE c.program_id = ${program.id} AND c.balance <> (SELECT coalesce(sum(points), 0) FROM ledger_entry e WHERE e.card_id = c.id)
    `.execute(t.database.handle.db);
    expect(rows[0]!.n).toBe(0);
    // The same update again: nothing moves.
    const twice = await importAndApply(as('admin'), render(changed, { delimiter: ';' }), '?mode=update');
    expect(twice.progress).toMatchObject({ updated: 0, unchanged: 4 });
    expect(await ledgerOf(program.id)).toHaveLength(after.length);
  });

  it('a dry run reports every reason (row, column, value) and writes nothing', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-dry');
    const file = [
      'Номер карты;Телефон;ФИО;E-mail;Дата рождения;Бонусы;Уровень;Сумма покупок;Согласие;Лишняя колонка',
      '3000001;+79161230001;Ок Ок;ok@example.com;01.01.1990;100;Стандартная;1 000,00;да;x', // valid
      '3000002;12345;Плохой Телефон;;;;;;;', // invalid_phone
      '3000003;+79161230001;Дубль Телефона;;;;;;;', // duplicate_phone
      '3000001;+79161230004;Дубль Карты;;;;;;;', // duplicate_card_number
      '3000005;+79161230005;Минус;;;-10;;;;', // negative_balance
      '3000006;+79161230006;Уровень;;;;Платиновая;;;', // unknown_tier
      '3000007;+79161230007;Дата;;31.02.1990;;;;;', // invalid_date
      '3000008;+79161230008;Сумма;;;12,34,56;;;;', // invalid_amount
      ';;Никто;;;;;;;', // missing_identity
      '3000010;;Без телефона;;;;;;;', // missing_phone
      '3000011;+79161230011;Почта;not-an-email;;;;;;', // invalid_email
      '3000012;+79161230012;Согласие;;;;;;может быть;', // invalid_consent
      '30000-13!;+79161230013;Карта;;;;;;;', // invalid_card_number
      `3000014;+79161230014;${'Я'.repeat(300)};;;;;;;`, // value_too_long
      '3000015;+79161230015;Лишнее;;;;;;;;;;лишнее поле', // wrong_column_count
    ].join('\n');
    const res = await post(as('admin'), file, '?dryRun=true');
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report).toMatchObject({ encoding: 'utf-8', delimiter: ';', rowsRead: 15, rowsValid: 1, rowsFailed: 14, truncated: false });
    expect(report.columns.ignored).toEqual(['Лишняя колонка']);
    const reasons = report.issues.map((i: { row: number; reason: string }) => [i.row, i.reason]);
    expect(reasons).toEqual([
      [3, 'invalid_phone'],
      [4, 'duplicate_phone'],
      [5, 'duplicate_card_number'],
      [6, 'negative_balance'],
      [7, 'unknown_tier'],
      [8, 'invalid_date'],
      [9, 'invalid_amount'],
      [10, 'missing_identity'],
      [11, 'missing_phone'],
      [12, 'invalid_email'],
      [13, 'invalid_consent'],
      [14, 'invalid_card_number'],
      [15, 'value_too_long'],
      [16, 'wrong_column_count'],
    ]);
    expect(report.issues[0]).toEqual({ row: 3, column: 'Телефон', value: '12345', reason: 'invalid_phone' });
    expect(report.issues[5]).toEqual({ row: 8, column: 'Дата рождения', value: '31.02.1990', reason: 'invalid_date' });
    expect(report.byReason).toMatchObject({ invalid_phone: 1, duplicate_phone: 1, missing_identity: 1 });
    const written = await t.database.handle.db.selectFrom('card').select('id').where('program_id', '=', program.id).execute();
    expect(written).toEqual([]);
    expect(await t.database.handle.db.selectFrom('card_import').select('id').where('program_id', '=', program.id).execute()).toEqual([]);

    // Applied, the failed rows stay out and the report (JSON and CSV) lists them; the valid row is created.
    const applied = await importAndApply(as('admin'), file);
    expect(applied.progress).toMatchObject({ rowsRead: 15, rowsValid: 1, created: 1, failed: 14 });
    expect(applied.report.issues).toHaveLength(14);
    const csv = await t.app.inject({ method: 'GET', url: `/api/v1/imports/${applied.id}/report.csv`, headers: as('admin') });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.replace(/^\ufeff/, '').trim().split('\r\n');
    expect(lines[0]).toBe('row;column;value;reason');
    expect(lines).toHaveLength(15);
    expect(lines[1]).toBe('3;Телефон;12345;invalid_phone');
    expect(lines).toContain("6;Бонусы;'-10;negative_balance");
  });

  it('a phone that belongs to another card is refused at apply (phone_taken), the other rows go on', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-taken');
    await importAndApply(as('admin'), 'Номер карты;Телефон;ФИО\n4000001;+79161240001;Первый\n');
    const second = await importAndApply(as('admin'), 'Номер карты;Телефон;ФИО\n4000002;+79161240001;Другой пластик\n4000003;+79161240003;Новый\n');
    expect(second.progress).toMatchObject({ created: 1, failed: 1 });
    expect(second.report.issues).toEqual([{ row: 2, column: 'Телефон', value: '+79161240001', reason: 'phone_taken' }]);
    expect((await cardsOf(program.id)).map((c) => c.external_number)).toEqual(['4000001', '4000003']);
  });

  it('an existing card matched by phone gets the plastic number; by-barcode and search find it by either number', async () => {
    const { as } = await createProgramWithKeys(t.app, 'imp-barcode');
    const issued = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: as('pos'), payload: { holder: { name: 'Кассир Тест', phone: '+79161250001' } } });
    expect(issued.statusCode).toBe(201);
    const walletNumber = issued.json().number;
    const done = await importAndApply(as('admin'), 'Card number,Phone,Name\n5000-0001,+79161250001,Кассир Тест\n5000-0002,+79161250002,Второй\n');
    expect(done.progress).toMatchObject({ created: 1, updated: 1 });

    const byPlastic = await t.app.inject({ method: 'GET', url: '/api/v1/cards/by-barcode/50000001', headers: as('pos') });
    const byWallet = await t.app.inject({ method: 'GET', url: `/api/v1/cards/by-barcode/${walletNumber}`, headers: as('pos') });
    expect(byPlastic.statusCode).toBe(200);
    expect(byWallet.statusCode).toBe(200);
    expect(byPlastic.json().id).toBe(issued.json().id);
    expect(byWallet.json().id).toBe(issued.json().id);
    expect(byPlastic.json().externalNumber).toBe('50000001');
    // A scanner's spaces and dashes are ignored for the plastic number as for the wallet one.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/cards/by-barcode/5000%200002', headers: as('pos') })).json().holder.name).toBe('Второй');
    const search = await t.app.inject({ method: 'GET', url: '/api/v1/cards?query=5000-0001', headers: as('pos') });
    expect(search.json().items.map((c: { id: string }) => c.id)).toEqual([issued.json().id]);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/cards/by-barcode/59999999', headers: as('pos') })).statusCode).toBe(404);
  });

  it('a worker that dies in the middle of a chunk: the import resumes from its checkpoint, every row exactly once', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-crash');
    const rows = Array.from({ length: 7 }, (_, i) => `${6000001 + i};+7916126${String(1000 + i)};Клиент ${i};${(i + 1) * 10}`);
    const res = await post(as('admin'), `Номер карты;Телефон;ФИО;Баланс\n${rows.join('\n')}\n`);
    expect(res.statusCode).toBe(202);
    const id = res.json().id;
    await t.app.imports.runChunk(id, 0);
    // Chunk 1 dies after its writes, before commit (a killed worker): nothing of it stays.
    t.app.imports.fault = (_importId, chunk) => {
      if (chunk === 1) throw new Error('worker killed');
    };
    await expect(t.app.imports.runChunk(id, 1)).rejects.toThrow('worker killed');
    t.app.imports.fault = undefined;
    const mid = await t.app.inject({ method: 'GET', url: `/api/v1/imports/${id}`, headers: as('admin') });
    expect(mid.json()).toMatchObject({ status: 'running', progress: { created: 2 } });
    expect(await cardsOf(program.id)).toHaveLength(2);
    // A stale duplicate of chunk 0 does nothing (the fence).
    await t.app.imports.runChunk(id, 0);
    // The watchdog re-sends the stalled chunk; a restarted worker runs the rest.
    await sql`UPDATE card_import SET progress_at = now() - interval '1 hour' WHERE id = ${id}`.execute(t.database.handle.db);
    expect(await t.app.imports.resumeStalled()).toEqual([id]);
    const done = await t.app.imports.runToEnd(id);
    expect(done).toMatchObject({ status: 'finished', created: 7, failed: 0 });
    const cards = await cardsOf(program.id);
    expect(cards.map((c) => c.external_number)).toEqual(rows.map((r) => r.split(';')[0]));
    const ledger = await ledgerOf(program.id);
    expect(ledger).toHaveLength(7);
    expect(ledger.map((e) => Number(e.points)).sort((a, b) => a - b)).toEqual([10, 20, 30, 40, 50, 60, 70]);
    // Personal data of applied rows is not kept in the staging table.
    const staged = await t.database.handle.db.selectFrom('card_import_row').select('data').where('import_id', '=', id).execute();
    expect(staged.every((r) => r.data === null)).toBe(true);
  });

  it('one chunk job runs the chunks after its own without the queue; a chunk failing mid-run gets its own job; every row once', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-run');
    const rows = Array.from({ length: 9 }, (_, i) => `${6100001 + i};+7916136${String(1000 + i)};Клиент ${i};${(i + 1) * 10}`);
    const res = await post(as('admin'), `Номер карты;Телефон;ФИО;Баланс\n${rows.join('\n')}\n`);
    expect(res.statusCode).toBe(202);
    const id = res.json().id;
    const chunkJobs = async () =>
      (
        await sql<{ chunk: number }>`SELECT (data->>'chunk')::int AS chunk FROM pgboss.job WHERE name = 'import-chunk' AND data->>'importId' = ${id} ORDER BY 1`.execute(
          t.database.handle.db,
        )
      ).rows.map((r) => r.chunk);
    expect(await chunkJobs()).toEqual([0]);
    // Chunk 2 (rows 6–7) fails once, after its writes and before commit.
    let failures = 0;
    t.app.imports.fault = (_importId, chunk) => {
      if (chunk === 2 && failures++ === 0) throw new Error('connection lost');
    };
    await t.app.imports.runChunks(id, 0);
    // Chunks 0 and 1 ran in this job without queueing a job each; the failed chunk 2 has its own.
    expect(await chunkJobs()).toEqual([0, 2]);
    expect((await t.app.imports.find(program.id, id)).next_chunk).toBe(2);
    expect(await cardsOf(program.id)).toHaveLength(4);
    await t.app.imports.runChunks(id, 2);
    t.app.imports.fault = undefined;
    const done = await t.app.imports.find(program.id, id);
    expect(done).toMatchObject({ status: 'finished', created: 9, failed: 0 });
    // No job was queued for the chunks this run did itself.
    expect(await chunkJobs()).toEqual([0, 2]);
    expect((await ledgerOf(program.id)).map((e) => Number(e.points)).sort((a, b) => a - b)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('a multipart/form-data upload (a browser form) imports the same way; a form without a file is a 400', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-multipart');
    const boundary = 'walletcards-test-boundary';
    const file = iconv.encode('Номер карты;Телефон;ФИО\r\n8100001;+79161310001;Форма Первая\r\n', 'windows-1251');
    const payload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="база.csv"\r\nContent-Type: text/csv\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/imports',
      headers: { ...as('admin'), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload,
    });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ fileName: 'база.csv', progress: { rowsValid: 1 } });
    await t.app.imports.runToEnd(res.json().id);
    expect((await cardsOf(program.id)).map((c) => c.holder_name)).toEqual(['Форма Первая']);
    const empty = await t.app.inject({
      method: 'POST',
      url: '/api/v1/imports',
      headers: { ...as('admin'), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nx\r\n--${boundary}--\r\n`,
    });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().code).toBe('import_upload_malformed');
  });

  it('cancel stops an import between chunks; the rows applied stay', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-cancel');
    const rows = Array.from({ length: 5 }, (_, i) => `${7000001 + i};+7916127${String(1000 + i)};Клиент ${i}`);
    const res = await post(as('admin'), `Номер карты;Телефон;ФИО\n${rows.join('\n')}\n`);
    const id = res.json().id;
    await t.app.imports.runChunk(id, 0);
    const cancelled = await t.app.inject({ method: 'POST', url: `/api/v1/imports/${id}/cancel`, headers: as('admin') });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json().status).toBe('cancelled');
    await t.app.imports.runChunk(id, 1);
    expect(await cardsOf(program.id)).toHaveLength(2);
    const again = await t.app.inject({ method: 'POST', url: `/api/v1/imports/${id}/cancel`, headers: as('admin') });
    expect(again.statusCode).toBe(409);
  });

  it('Idempotency-Key: the same file replays the first import; another file with the key is a 422', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-idem');
    const file = 'Телефон;ФИО\n+79161280001;Один\n';
    const first = await post(as('admin'), file, '', { 'idempotency-key': 'import-1' });
    const second = await post(as('admin'), file, '', { 'idempotency-key': 'import-1' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json().id).toBe(first.json().id);
    const other = await post(as('admin'), 'Телефон;ФИО\n+79161280002;Два\n', '', { 'idempotency-key': 'import-1' });
    expect(other.statusCode).toBe(422);
    expect(other.json().code).toBe('idempotency_key_reused');
    expect(await t.database.handle.db.selectFrom('card_import').select('id').where('program_id', '=', program.id).execute()).toHaveLength(1);
  });

  it('bad files answer clear problems and write nothing: too large (413), garbage, wrong encoding, unknown columns, wrong key', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-bad');
    const big = `Телефон\n${'+79161234567\n'.repeat(6000)}`;
    const tooLarge = await post(as('admin'), big);
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.headers['content-type']).toMatch(/problem\+json/);
    expect(tooLarge.json().code).toBe('import_file_too_large');

    const garbage = await post(as('admin'), Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 0x08, 0]));
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json().code).toBe('import_file_malformed');
    const unclosed = await post(as('admin'), 'Телефон;ФИО\n+79161234567;"Иванова\n+79161234568;Петров\n');
    expect(unclosed.statusCode).toBe(400);
    expect(unclosed.json().code).toBe('import_file_malformed');
    const unknown = await post(as('admin'), 'foo;bar\n1;2\n');
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({ code: 'import_columns_unrecognised', header: ['foo', 'bar'] });
    const wrongEncoding = await post(as('admin'), iconv.encode('Телефон;ФИО\n+79161234567;Иванова\n', 'windows-1251'), '?encoding=utf-8');
    expect(wrongEncoding.statusCode).toBe(422);
    expect(wrongEncoding.json().code).toBe('import_wrong_encoding');
    const badMapping = await post(as('admin'), 'a;b\n1;2\n', `?mapping=${encodeURIComponent('{"nope":"a"}')}`);
    expect(badMapping.statusCode).toBe(400);
    const json = await t.app.inject({ method: 'POST', url: '/api/v1/imports', headers: { ...as('admin'), 'content-type': 'application/json' }, payload: { a: 1 } });
    expect(json.statusCode).toBe(415);
    const pos = await post(as('pos'), 'Телефон\n+79161234567\n');
    expect(pos.statusCode).toBe(403);
    // An explicit mapping reads headers the service does not know.
    const mapped = await post(as('admin'), 'Штрих;Моб\n8000001;+79161290001\n', `?dryRun=true&mapping=${encodeURIComponent('{"cardNumber":"Штрих","phone":"Моб"}')}`);
    expect(mapped.statusCode, mapped.body).toBe(200);
    expect(mapped.json()).toMatchObject({ rowsValid: 1, columns: { mapping: { Штрих: 'cardNumber', Моб: 'phone' } } });

    expect(await t.database.handle.db.selectFrom('card_import').select('id').where('program_id', '=', program.id).execute()).toEqual([]);
    expect(await t.database.handle.db.selectFrom('card').select('id').where('program_id', '=', program.id).execute()).toEqual([]);
  });
});

describe(`card-base imports with the workers running (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ imports: { chunkSize: 3 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the job applies the import by itself, retries a chunk whose worker died, and emits one import.finished event', async () => {
    const { program, as } = await createProgramWithKeys(t.app, 'imp-jobs');
    let crashed = false;
    t.app.imports.fault = (_id, chunk) => {
      if (chunk === 1 && !crashed) {
        crashed = true;
        throw new Error('worker killed');
      }
    };
    const rows = Array.from({ length: 8 }, (_, i) => `${9000001 + i};+7916130${String(1000 + i)};Клиент ${i};${i * 100}`);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/imports?fileName=base.csv',
      headers: { ...as('admin'), 'content-type': 'text/csv' },
      payload: `Номер карты;Телефон;ФИО;Бонусы\n${rows.join('\n')}\n`,
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ status: 'queued', fileName: 'base.csv', progress: { rowsRead: 8, rowsValid: 8 } });
    const done = await waitFor(
      async () => {
        const r = await t.app.inject({ method: 'GET', url: `/api/v1/imports/${res.json().id}`, headers: as('admin') });
        return r.json().status === 'finished' ? r.json() : undefined;
      },
      { timeoutMs: 30_000, what: 'import finished' },
    );
    t.app.imports.fault = undefined;
    expect(crashed).toBe(true);
    expect(done.progress).toMatchObject({ created: 8, failed: 0 });
    const cards = await t.database.handle.db.selectFrom('card').select('id').where('program_id', '=', program.id).execute();
    expect(cards).toHaveLength(8);
    const ledger = await t.database.handle.db.selectFrom('ledger_entry').select('id').where('program_id', '=', program.id).execute();
    expect(ledger).toHaveLength(7);
    const events = await t.database.handle.db.selectFrom('webhook_event').select('type').where('program_id', '=', program.id).execute();
    // No endpoint subscribed: no event rows at all (and never one per card).
    expect(events.filter((e) => e.type !== 'import.finished')).toEqual([]);
  });
});
