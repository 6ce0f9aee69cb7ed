import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { detectDelimiter, detectEncoding, mapColumns, openImportFile, parseAmount, parseConsent, parseDate } from '../../src/imports/parse.js';

const NOW = new Date('2026-12-05T10:00:00Z');

async function* chunks(buffer: Buffer, size = 7) {
  // Small chunks: multi-byte characters and quoted line breaks cross chunk borders.
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

async function readAll(buffer: Buffer, options: Parameters<typeof openImportFile>[1] = { maxBytes: 1 << 20 }) {
  const file = await openImportFile(chunks(buffer), options);
  const rows = [];
  for await (const record of file.records) rows.push(record);
  return { file, rows };
}

describe('import file parsing', () => {
  it('reads amounts the way exports write them', () => {
    expect(parseAmount('1 234,50')).toBe(1234.5);
    expect(parseAmount('1\u00a0234.50')).toBe(1234.5);
    expect(parseAmount('1,234.50')).toBe(1234.5);
    expect(parseAmount('1.234,50')).toBe(1234.5);
    expect(parseAmount('150')).toBe(150);
    expect(parseAmount('150,5')).toBe(150.5);
    expect(parseAmount('150 ₽')).toBe(150);
    expect(parseAmount('-20')).toBe(-20);
    expect(parseAmount('12,34,5')).toBeNaN();
    expect(parseAmount('abc')).toBeNaN();
    expect(parseAmount('')).toBeNaN();
  });

  it('reads dates as 31.12.1990, 31/12/1990, 31.12.90 and ISO, and refuses impossible ones', () => {
    expect(parseDate('31.12.1990', NOW)?.day).toBe('1990-12-31');
    expect(parseDate('31/12/1990', NOW)?.day).toBe('1990-12-31');
    expect(parseDate('01.02.90', NOW)?.day).toBe('1990-02-01');
    expect(parseDate('01.02.05', NOW)?.day).toBe('2005-02-01');
    expect(parseDate('1990-12-31', NOW)?.day).toBe('1990-12-31');
    expect(parseDate('2021-03-04 14:30', NOW)?.at).toBe('2021-03-04T14:30:00.000Z');
    expect(parseDate('04.03.2021 14:30', NOW)?.at).toBe('2021-03-04T14:30:00.000Z');
    expect(parseDate('2021-03-04T14:30:00+03:00', NOW)?.at).toBe('2021-03-04T11:30:00.000Z');
    expect(parseDate('29.02.2023', NOW)).toBeUndefined();
    expect(parseDate('31.04.2000', NOW)).toBeUndefined();
    expect(parseDate('0000-01-01', NOW)).toBeUndefined();
    expect(parseDate('12/31/1990', NOW)).toBeUndefined();
    expect(parseDate('вчера', NOW)).toBeUndefined();
  });

  it('reads consent as да/нет/yes/no/1/0', () => {
    expect(parseConsent('Да')).toBe(true);
    expect(parseConsent('нет')).toBe(false);
    expect(parseConsent('1')).toBe(true);
    expect(parseConsent('no')).toBe(false);
    expect(parseConsent('может быть')).toBeUndefined();
  });

  it('detects the encoding and the delimiter', () => {
    const text = 'Номер карты;Телефон;ФИО\n';
    expect(detectEncoding(Buffer.from(text), true)).toBe('utf-8');
    expect(detectEncoding(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), true)).toBe('utf-8');
    expect(detectEncoding(iconv.encode(text, 'windows-1251'), true)).toBe('windows-1251');
    // A UTF-8 sample cut inside a two-byte letter is still UTF-8.
    expect(detectEncoding(Buffer.from('Телефон').subarray(0, 3), false)).toBe('utf-8');
    expect(detectDelimiter('a;b;c')).toBe(';');
    expect(detectDelimiter('a,b,c')).toBe(',');
    expect(detectDelimiter('"a;x",b,c')).toBe(',');
    expect(detectDelimiter('a\tb\tc')).toBe('\t');
  });

  it('maps Russian and English headers; an explicit mapping wins; no identity column is a 422', () => {
    const mapped = mapColumns(['Номер карты', 'Телефон', 'Ф.И.О.', 'E-mail', 'Дата рождения', 'Бонусы', 'Уровень', 'Сумма покупок', 'Согласие', 'Дата регистрации', 'Магазин', 'Примечание', 'Лишнее']);
    expect(mapped.headers).toMatchObject({
      cardNumber: 'Номер карты',
      phone: 'Телефон',
      name: 'Ф.И.О.',
      email: 'E-mail',
      birthday: 'Дата рождения',
      balance: 'Бонусы',
      tier: 'Уровень',
      lifetimeSpend: 'Сумма покупок',
      consent: 'Согласие',
      enrolledAt: 'Дата регистрации',
      store: 'Магазин',
      notes: 'Примечание',
    });
    expect(mapped.ignored).toEqual(['Лишнее']);
    expect(mapColumns(['Card number', 'Phone', 'Name', 'Balance']).headers).toEqual({ cardNumber: 'Card number', phone: 'Phone', name: 'Name', balance: 'Balance' });
    expect(mapColumns(['Штрих', 'Моб'], { cardNumber: 'Штрих', phone: 'моб' }).headers).toEqual({ cardNumber: 'Штрих', phone: 'Моб' });
    expect(() => mapColumns(['a', 'b'])).toThrow(expect.objectContaining({ status: 422, code: 'import_columns_unrecognised' }));
    expect(() => mapColumns(['Телефон'], { cardNumber: 'Нет такой' })).toThrow(expect.objectContaining({ status: 422, code: 'import_mapping_column_missing' }));
  });

  it('streams UTF-8 with BOM, Windows-1251 with ; and quoted line breaks into the same records', async () => {
    const utf8 = Buffer.from('\ufeffНомер карты,Телефон,ФИО,Примечание\r\n1001,+79161234567,Иванова Мария,"первая\nвторая строка"\r\n1002,89161234568,Пётр,\r\n');
    const cp1251 = iconv.encode('Номер карты;Телефон;ФИО;Примечание\r\n1001;+79161234567;Иванова Мария;"первая\nвторая строка"\r\n1002;89161234568;Пётр;\r\n', 'windows-1251');
    const a = await readAll(utf8);
    const b = await readAll(cp1251);
    expect(a.file.encoding).toBe('utf-8');
    expect(a.file.delimiter).toBe(',');
    expect(b.file.encoding).toBe('windows-1251');
    expect(b.file.delimiter).toBe(';');
    expect(a.file.header).toEqual(['Номер карты', 'Телефон', 'ФИО', 'Примечание']);
    expect(b.file.header).toEqual(a.file.header);
    expect(a.rows).toEqual([
      { row: 2, values: ['1001', '+79161234567', 'Иванова Мария', 'первая\nвторая строка'] },
      { row: 3, values: ['1002', '89161234568', 'Пётр', ''] },
    ]);
    expect(b.rows).toEqual(a.rows);
  });

  it('refuses a file over the limit (413), an unclosed quote (400), a binary file (400), an empty file (400)', async () => {
    const big = Buffer.from(`Телефон\n${'+79161234567\n'.repeat(2000)}`);
    await expect(readAll(big, { maxBytes: 5000 })).rejects.toMatchObject({ status: 413, code: 'import_file_too_large' });
    await expect(readAll(Buffer.from('Телефон;ФИО\n+79161234567;"Иванова\n'))).rejects.toMatchObject({ status: 400, code: 'import_file_malformed' });
    await expect(readAll(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]))).rejects.toMatchObject({ status: 400, code: 'import_file_malformed' });
    await expect(readAll(Buffer.alloc(0))).rejects.toMatchObject({ status: 400, code: 'import_file_empty' });
    // Windows-1251 declared as UTF-8: the header is garbled, said so.
    await expect(readAll(iconv.encode('Телефон;ФИО\n', 'windows-1251'), { maxBytes: 1 << 20, encoding: 'utf-8' })).rejects.toMatchObject({
      status: 422,
      code: 'import_wrong_encoding',
    });
  });
});
