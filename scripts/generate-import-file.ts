/**
 * `npm run samples:generate -- [--rows 200] [--out samples/plastic-base.csv] [--encoding utf-8|windows-1251]
 *   [--delimiter ';'|','] [--bom] [--seed 12] [--bad-share 0.02]`
 *
 * Writes a card base the way a POS or accounting export looks (docs/import.md): Russian names and
 * phones, plastic card numbers, dates as 31.12.1990 or ISO, amounts as `1 234,50` or `1234.50`,
 * consent as да/нет/1, now and then a quoted note with a line break or a `;`, and a small share of
 * rows a dry run refuses (a bad phone, a negative balance, a duplicate phone). Seeded: the same
 * arguments write the same file. Streams, so 250,000 rows (bench:import) take no memory.
 *
 * samples/plastic-base.csv (shipped) is `--rows 200 --seed 12`; samples/plastic-base-cp1251.csv is
 * the same with `--encoding windows-1251`.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import iconv from 'iconv-lite';

export interface GenerateOptions {
  rows: number;
  seed: number;
  delimiter: ';' | ',';
  encoding: 'utf-8' | 'windows-1251';
  bom: boolean;
  badShare: number;
}

const MALE = ['Александр', 'Дмитрий', 'Максим', 'Сергей', 'Андрей', 'Алексей', 'Артём', 'Илья', 'Кирилл', 'Михаил', 'Никита', 'Иван', 'Егор', 'Роман', 'Владимир', 'Павел', 'Олег', 'Юрий'];
const FEMALE = ['Анна', 'Мария', 'Елена', 'Ольга', 'Наталья', 'Татьяна', 'Ирина', 'Екатерина', 'Светлана', 'Юлия', 'Анастасия', 'Дарья', 'Алёна', 'Ксения', 'Виктория', 'Полина', 'Софья'];
const SURNAMES = ['Иванов', 'Смирнов', 'Кузнецов', 'Попов', 'Васильев', 'Петров', 'Соколов', 'Михайлов', 'Новиков', 'Фёдоров', 'Морозов', 'Волков', 'Алексеев', 'Лебедев', 'Семёнов', 'Егоров', 'Павлов', 'Козлов', 'Степанов', 'Николаев', 'Орлов', 'Андреев', 'Макаров', 'Никитин', 'Захаров'];
const PATRONYMICS = ['Александров', 'Дмитриев', 'Сергеев', 'Андреев', 'Алексеев', 'Иванов', 'Михайлов', 'Владимиров', 'Петров', 'Николаев'];
const STORES = ['ТЦ Европейский', 'ул. Ленина, 12', 'Магазин на Тверской', 'Онлайн', 'ТРЦ Мега'];
const NOTES = ['', '', '', '', '', 'постоянный клиент', 'VIP', 'просит не звонить', 'карта утеряна, перевыпущена', 'оптовик; скидка по договору', 'звонить после 18:00\nлучше в WhatsApp'];

/** mulberry32: a tiny seeded PRNG (the file must be the same for the same seed). */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export async function* generateRows(options: GenerateOptions): AsyncGenerator<string> {
  const random = prng(options.seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const d = options.delimiter;
  const cell = (v: string) => (v.includes(d) || v.includes('"') || v.includes('\n') ? `"${v.replace(/"/g, '""')}"` : v);
  yield ['Номер карты', 'Телефон', 'ФИО', 'E-mail', 'Дата рождения', 'Бонусы', 'Сумма покупок', 'Согласие на рассылку', 'Дата регистрации', 'Магазин', 'Примечание']
    .map(cell)
    .join(d);
  // Unique phones: an odd stride through 10^7 numbers visits each once.
  const phoneBase = Math.floor(random() * 10_000_000);
  for (let i = 0; i < options.rows; i++) {
    const female = random() < 0.55;
    const surname = pick(SURNAMES) + (female ? 'а' : '');
    const first = female ? pick(FEMALE) : pick(MALE);
    const patronymic = pick(PATRONYMICS) + (female ? 'на' : 'ич');
    const name = random() < 0.8 ? `${surname} ${first} ${patronymic}` : `${first} ${surname}`;
    const local = pad((phoneBase + i * 7_919) % 10_000_000, 7);
    const operator = pick(['916', '926', '903', '915', '985', '977', '999']);
    const style = random();
    let phone =
      style < 0.35
        ? `+7 ${operator} ${local.slice(0, 3)}-${local.slice(3, 5)}-${local.slice(5)}`
        : style < 0.6
          ? `8${operator}${local}`
          : style < 0.8
            ? `8 (${operator}) ${local.slice(0, 3)}-${local.slice(3, 5)}-${local.slice(5)}`
            : `+7${operator}${local}`;
    const cardNumber = `2990${pad(1_000_000 + i * 13, 9)}`;
    const year = 1950 + Math.floor(random() * 55);
    const month = 1 + Math.floor(random() * 12);
    const day = 1 + Math.floor(random() * 28);
    const birthdayStyle = random();
    let birthday = birthdayStyle < 0.5 ? `${pad(day)}.${pad(month)}.${year}` : birthdayStyle < 0.8 ? `${year}-${pad(month)}-${pad(day)}` : '';
    const points = random() < 0.15 ? 0 : Math.floor(random() * 5000);
    let balance = random() < 0.5 ? String(points) : `${points},00`;
    if (points >= 1000 && random() < 0.5) balance = `${Math.floor(points / 1000)} ${pad(points % 1000, 3)}`;
    const spendKopecks = Math.floor(random() * 20_000_000);
    const rubles = Math.floor(spendKopecks / 100);
    const spend =
      random() < 0.5
        ? `${rubles.toLocaleString('ru-RU').replace(/\u00a0/g, ' ')},${pad(spendKopecks % 100)}`
        : `${rubles}.${pad(spendKopecks % 100)}`;
    const consent = pick(['да', 'да', 'нет', '1', '0', '']);
    const enrolledYear = 2015 + Math.floor(random() * 10);
    const enrolled = random() < 0.5 ? `${pad(day)}.${pad(month)}.${enrolledYear}` : `${enrolledYear}-${pad(month)}-${pad(day)} 12:00`;
    const email = random() < 0.3 ? `client${i}@example.ru` : '';
    let notes = pick(NOTES);
    // A small share of rows a dry run refuses: how real exports are.
    if (random() < options.badShare) {
      const defect = pick(['phone', 'balance', 'duplicate', 'date'] as const);
      if (defect === 'phone') phone = `8${operator}${local.slice(0, 4)}`;
      else if (defect === 'balance') balance = `-${points || 10}`;
      else if (defect === 'duplicate' && i > 0) phone = `+7${operator}${pad((phoneBase + (i - 1) * 7_919) % 10_000_000, 7)}`;
      else if (defect === 'date') birthday = `31.02.${year}`;
    }
    yield [cardNumber, phone, name, email, birthday, balance, spend, consent, enrolled, pick(STORES), notes].map(cell).join(d);
  }
}

export async function writeImportFile(path: string, options: GenerateOptions): Promise<void> {
  const out = createWriteStream(path);
  if (options.bom && options.encoding === 'utf-8') out.write(Buffer.from([0xef, 0xbb, 0xbf]));
  let buffer = '';
  const flush = async () => {
    const bytes = options.encoding === 'windows-1251' ? iconv.encode(buffer, 'windows-1251') : Buffer.from(buffer);
    buffer = '';
    if (!out.write(bytes)) await once(out, 'drain');
  };
  for await (const line of generateRows(options)) {
    buffer += `${line}\r\n`;
    if (buffer.length > 64 * 1024) await flush();
  }
  await flush();
  out.end();
  await once(out, 'finish');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '200' },
      out: { type: 'string', default: 'samples/plastic-base.csv' },
      encoding: { type: 'string', default: 'utf-8' },
      delimiter: { type: 'string', default: ';' },
      bom: { type: 'boolean', default: false },
      seed: { type: 'string', default: '12' },
      'bad-share': { type: 'string', default: '0.02' },
    },
  });
  const options: GenerateOptions = {
    rows: Number(values.rows),
    seed: Number(values.seed),
    delimiter: values.delimiter === ',' ? ',' : ';',
    encoding: values.encoding === 'windows-1251' ? 'windows-1251' : 'utf-8',
    bom: values.bom,
    badShare: Number(values['bad-share']),
  };
  await writeImportFile(values.out, options);
  console.log(`wrote ${values.out}: ${options.rows} rows, ${options.encoding}, delimiter ${JSON.stringify(options.delimiter)}`);
}
