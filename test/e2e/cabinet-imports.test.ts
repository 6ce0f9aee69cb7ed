import ExcelJS from 'exceljs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgramWithKeys, startTestApp, waitFor, type TestApp } from '../support/app.js';
import { createStaff, signIn, type CabinetClient } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';

// Issue #12: the owner's upload screen in the cabinet (choose a file → the dry run's report → apply
// → live progress, cancel, the report CSV), through cabinet HTTP with a multipart form like the
// browser's; and XLSX files (imports/xlsx.ts) through the cabinet and the API.

const BOUNDARY = '----walletcardsImportTest';
function multipart(fields: Record<string, string>, file?: { name: string; type: string; data: Buffer }): Buffer {
  const parts: Buffer[] = Object.entries(fields).map(([name, value]) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  if (file) {
    parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`), file.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}
async function upload(client: CabinetClient, body: Buffer) {
  const cookie = [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await client.app.inject({ method: 'POST', url: '/app/imports', remoteAddress: client.remoteAddress, headers: { cookie, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, payload: body });
  client.lastBody = res.body;
  return res;
}
const field = (body: string, name: string) => new RegExp(`data-field="${name}">([^<]*)<`).exec(body)?.[1];

const CSV = Buffer.from(
  ['Номер карты;Телефон;ФИО;Баланс', '5000001;+79161110001;Анна;100', '5000002;+79161110002;Борис;1 200,00', '5000003;8916111;Вера;5', '5000004;+79161110004;Глеб;0'].join('\r\n'),
);

async function xlsxBase(rows: Array<Array<string | number | Date>>): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('Клиенты');
  for (const row of rows) sheet.addRow(row);
  sheet.getColumn(4).numFmt = 'dd.mm.yyyy';
  return Buffer.from(await workbook.xlsx.writeBuffer());
}

describe(`cabinet: the import upload screen (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let owner: CabinetClient;
  let shop: Awaited<ReturnType<typeof createProgramWithKeys>>;
  const cards = () => t.database.handle.db.selectFrom('card').selectAll().where('program_id', '=', shop.program.id).orderBy('external_number').execute();

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createProgramWithKeys(t.app, 'import-screen', { defaultLanguage: 'en' });
    await createStaff(t.app, shop.program.id, { name: 'Olga', role: 'owner', email: 'owner@import.example', password: 'owner password 123' });
    await createStaff(t.app, shop.program.id, { name: 'Mark', role: 'marketer', email: 'marketer@import.example', password: 'marketer password 123' });
    owner = await signIn(t.app, 'owner@import.example', 'owner password 123');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is the owner’s: listed under Program, refused to a marketer before the upload is read', async () => {
    const page = await owner.get('/app/imports?lang=en');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('enctype="multipart/form-data"');
    expect(page.body).toMatch(/href="\/app\/imports"[^>]*>Card import</);
    const marketer = await signIn(t.app, 'marketer@import.example', 'marketer password 123');
    expect((await marketer.get('/app/imports')).statusCode).toBe(403);
    expect((await marketer.get('/app')).body).not.toContain('href="/app/imports"');
    await marketer.get('/app/stats');
    const refused = await upload(marketer, multipart({ _csrf: marketer.csrf() }, { name: 'base.csv', type: 'text/csv', data: CSV }));
    expect(refused.statusCode).toBe(403);
    // A form without the session's CSRF token is refused too, and its file is not kept.
    const held = async () => (await readdir(path.join(tmpdir(), 'walletcards-cabinet-imports')).catch(() => [] as string[])).length;
    const heldBefore = await held();
    const forged = await upload(owner, multipart({ _csrf: 'x'.repeat(43) }, { name: 'base.csv', type: 'text/csv', data: CSV }));
    expect(forged.statusCode).toBe(403);
    expect(await held()).toBe(heldBefore);
    expect(await cards()).toHaveLength(0);
  });

  it('shows the dry run, applies, follows the progress to the end and serves the report CSV', async () => {
    await owner.get('/app/imports?lang=en');
    const report = await upload(owner, multipart({ _csrf: owner.csrf(), mode: 'create' }, { name: 'base.csv', type: 'text/csv', data: CSV }));
    expect(report.statusCode, report.body.slice(0, 500)).toBe(200);
    expect(field(report.body, 'fileName')).toBe('base.csv');
    expect(field(report.body, 'rowsRead')).toBe('4');
    expect(field(report.body, 'rowsValid')).toBe('3');
    expect(field(report.body, 'rowsFailed')).toBe('1');
    expect(report.body).toContain('data-reason="invalid_phone"');
    expect(report.body).toContain('«Номер карты» → card number, «Телефон» → phone, «ФИО» → name, «Баланс» → balance');
    expect(report.body).toMatch(/<td>4<\/td><td>Телефон<\/td><td>8916111<\/td><td>invalid phone<\/td>/);
    // The dry run wrote nothing.
    expect(await cards()).toHaveLength(0);

    const uploadId = owner.hidden('upload');
    const applied = await owner.post('/app/imports/apply', { _csrf: owner.csrf(), upload: uploadId });
    expect(applied.statusCode, applied.body.slice(0, 500)).toBe(303);
    const location = String(applied.headers.location);
    const importId = /^\/app\/imports\/([0-9a-f-]{36})$/.exec(location)![1];
    const progress = await waitFor(
      async () => {
        const res = await owner.get(`/app/imports/${importId}/progress`);
        expect(res.statusCode).toBe(200);
        const json = res.json();
        return json.final ? json : undefined;
      },
      { what: 'the import to finish' },
    );
    expect(progress).toMatchObject({ status: 'finished', percent: 100, fields: { created: '3', failed: '1', done: '3 / 3' } });
    const list = await cards();
    expect(list.map((c) => [c.external_number, c.balance])).toEqual([
      ['5000001', 100],
      ['5000002', 1200],
      ['5000004', 0],
    ]);
    const page = await owner.get(location);
    expect(page.body).toContain(`href="/app/imports/${importId}/report.csv"`);
    expect(page.body).not.toContain('data-poll');
    expect(page.body).not.toContain(`/app/imports/${importId}/cancel`);
    const csv = await owner.get(`/app/imports/${importId}/report.csv`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.body).toBe('\ufeffrow;column;value;reason\r\n4;Телефон;8916111;invalid_phone\r\n');
    // The list shows it.
    expect((await owner.get('/app/imports')).body).toContain(`href="/app/imports/${importId}"`);

    // "Import" again (a second click, the back button): the held file is gone, nothing twice.
    const again = await owner.post('/app/imports/apply', { _csrf: owner.csrf(), upload: uploadId });
    expect(again.statusCode).toBe(410);
    expect(again.body).toContain('no longer kept');
    expect(await cards()).toHaveLength(3);
  });

  it('answers a bad file with a message on the form and keeps nothing', async () => {
    await owner.get('/app/imports?lang=en');
    const noColumns = await upload(owner, multipart({ _csrf: owner.csrf() }, { name: 'x.csv', type: 'text/csv', data: Buffer.from('a;b\r\n1;2\r\n') }));
    expect(noColumns.statusCode).toBe(422);
    expect(noColumns.body).toContain('No card number or phone column found');
    const noFile = await upload(owner, multipart({ _csrf: owner.csrf() }));
    expect(noFile.statusCode).toBe(422);
    expect(noFile.body).toContain('Choose a file.');
    const notXlsx = await upload(owner, multipart({ _csrf: owner.csrf() }, { name: 'x.xlsx', type: 'application/zip', data: Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(200, 7)]) }));
    expect(notXlsx.statusCode).toBe(400);
    expect(notXlsx.body).toContain('cannot be read as CSV or XLSX');
    // Another program's or a made-up upload id is as gone as an expired one.
    const madeUp = await owner.post('/app/imports/apply', { _csrf: owner.csrf(), upload: '00000000-0000-4000-8000-000000000000' });
    expect(madeUp.statusCode).toBe(410);
  });

  it('imports an XLSX file (the first sheet, streamed): dates, numbers and text as in the CSV', async () => {
    const xlsx = await xlsxBase([
      ['Номер карты', 'Телефон', 'ФИО', 'Дата рождения', 'Баланс'],
      ['6000001', 79162220001, 'Дарья', new Date(Date.UTC(1990, 11, 31)), 350.4],
      [6000002, '+7 916 222-00-02', 'Егор; "младший"', '01.02.1985', '1 000'],
      ['6000003', 'нет', 'Жанна', new Date(Date.UTC(1991, 0, 1)), 10],
    ]);
    // Through the API first: a dry run with the XLSX content type.
    const dry = await t.app.inject({
      method: 'POST',
      url: '/api/v1/imports?dryRun=true',
      headers: { ...shop.as('admin'), 'content-type': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
      payload: xlsx,
    });
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json()).toMatchObject({ encoding: 'utf-8', delimiter: ';', rowsRead: 3, rowsValid: 2, rowsFailed: 1, byReason: { invalid_phone: 1 } });

    // Then the cabinet: the same file, applied.
    await owner.get('/app/imports?lang=en');
    const report = await upload(owner, multipart({ _csrf: owner.csrf() }, { name: 'base.xlsx', type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', data: xlsx }));
    expect(report.statusCode, report.body.slice(0, 500)).toBe(200);
    expect(field(report.body, 'rowsValid')).toBe('2');
    const applied = await owner.post('/app/imports/apply', { _csrf: owner.csrf(), upload: owner.hidden('upload') });
    expect(applied.statusCode).toBe(303);
    const importId = String(applied.headers.location).split('/').pop()!;
    await waitFor(async () => (await owner.get(`/app/imports/${importId}/progress`)).json().final === true, { what: 'the XLSX import' });
    const byNumber = Object.fromEntries((await cards()).map((c) => [c.external_number, c]));
    expect(byNumber['6000001']).toMatchObject({ phone: '+79162220001', holder_name: 'Дарья', balance: 350 });
    expect(new Date(byNumber['6000001'].birthday as unknown as string).toISOString().slice(0, 10)).toBe('1990-12-31');
    expect(byNumber['6000002']).toMatchObject({ phone: '+79162220002', holder_name: 'Егор; "младший"', balance: 1000 });
    expect(byNumber['6000003']).toBeUndefined();
  });
});

describe(`cabinet: cancelling an import (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    // No workers: the import stays queued until it is cancelled.
    t = await startTestApp({ runWorkers: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('stops a queued import from its page', async () => {
    const shop = await createProgramWithKeys(t.app, 'import-cancel', { defaultLanguage: 'en' });
    await createStaff(t.app, shop.program.id, { name: 'Olga', role: 'owner', email: 'owner@cancel.example', password: 'owner password 123' });
    const owner = await signIn(t.app, 'owner@cancel.example', 'owner password 123');
    await owner.get('/app/imports?lang=en');
    expect((await upload(owner, multipart({ _csrf: owner.csrf() }, { name: 'base.csv', type: 'text/csv', data: CSV }))).statusCode).toBe(200);
    const applied = await owner.post('/app/imports/apply', { _csrf: owner.csrf(), upload: owner.hidden('upload') });
    const location = String(applied.headers.location);
    const page = await owner.get(location);
    expect(page.body).toContain('data-poll');
    expect(field(page.body, 'status')).toBe('queued');
    const cancelled = await owner.post(`${location}/cancel`, { _csrf: owner.csrf() });
    expect(cancelled.statusCode).toBe(303);
    const after = await owner.get(location);
    expect(field(after.body, 'status')).toBe('cancelled');
    expect(after.body).not.toContain('data-poll');
    expect(await t.database.handle.db.selectFrom('card').select('id').where('program_id', '=', shop.program.id).execute()).toHaveLength(0);
  });
});
