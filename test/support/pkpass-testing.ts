/**
 * Helpers for inspecting `.pkpass` files in tests: unzip, write to a temp folder, run OpenSSL the
 * way the reference does (section 8.2), parse pass.strings independently of the builder.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { StoreCardPassInput } from '../../src/wallets/apple/pass/types.js';
import { createTestTempDir } from './temp-dirs.js';

export function unzipPkpass(pkpass: Buffer): Record<string, Buffer> {
  const entries = unzipSync(new Uint8Array(pkpass.buffer, pkpass.byteOffset, pkpass.byteLength));
  const files: Record<string, Buffer> = {};
  for (const [name, data] of Object.entries(entries)) files[name] = Buffer.from(data);
  return files;
}

/** Writes the files into a fresh temp folder (see temp-dirs.ts for cleanup) and returns its path. */
export function writeFilesToTempDir(files: Record<string, Buffer>): string {
  const dir = createTestTempDir('walletcards-pkpass-test');
  for (const [name, data] of Object.entries(files)) {
    const filePath = path.join(dir, name);
    mkdirSync(path.dirname(filePath), { recursive: true });
    writeFileSync(filePath, data);
  }
  return dir;
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `openssl cms -verify` exactly as in the reference, section 8.2. */
export function opensslVerifyPass(passDir: string, rootPemPath: string): CommandResult {
  const result = spawnSync(
    'openssl',
    ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'signature', '-content', 'manifest.json',
      '-CAfile', rootPemPath, '-purpose', 'any', '-out', '/dev/null'],
    { cwd: passDir, encoding: 'utf8' },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function opensslPrintSignature(passDir: string): string {
  return execFileSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', 'signature'], {
    cwd: passDir,
    encoding: 'utf8',
  });
}

export function openssl(args: string[], cwd?: string): CommandResult {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Independent pass.strings parser (old-style property-list strings file): BOM-detected UTF-16LE or
 * UTF-8, `/* … *\/` and `//` comments, `"key" = "value";` entries, escapes \\ \" \n \r \t \Uxxxx.
 * Throws on any syntax error, so a test fails on malformed output.
 */
export function parsePassStrings(data: Buffer): Record<string, string> {
  let text: string;
  if (data[0] === 0xff && data[1] === 0xfe) text = data.subarray(2).toString('utf16le');
  else if (data[0] === 0xfe && data[1] === 0xff) throw new Error('UTF-16BE not supported by this parser');
  else text = new TextDecoder('utf-8', { fatal: true }).decode(data);

  let position = 0;
  const fail = (message: string): never => {
    throw new Error(`pass.strings parse error at ${position}: ${message}`);
  };
  const skipWhitespaceAndComments = (): void => {
    for (;;) {
      while (position < text.length && /\s/.test(text[position]!)) position++;
      if (text.startsWith('/*', position)) {
        const end = text.indexOf('*/', position + 2);
        if (end < 0) fail('unterminated comment');
        position = end + 2;
      } else if (text.startsWith('//', position)) {
        const end = text.indexOf('\n', position);
        position = end < 0 ? text.length : end + 1;
      } else return;
    }
  };
  const readQuoted = (): string => {
    if (text[position] !== '"') fail(`expected '"', got ${JSON.stringify(text[position])}`);
    position++;
    let value = '';
    for (;;) {
      if (position >= text.length) fail('unterminated string');
      const character = text[position++]!;
      if (character === '"') return value;
      if (character === '\n') fail('raw newline inside a string');
      if (character !== '\\') {
        value += character;
        continue;
      }
      const escape = text[position++];
      switch (escape) {
        case '\\': value += '\\'; break;
        case '"': value += '"'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'U': {
          const hex = text.slice(position, position + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\U escape');
          value += String.fromCharCode(parseInt(hex, 16));
          position += 4;
          break;
        }
        default:
          fail(`unknown escape \\${escape}`);
      }
    }
  };
  const expect = (character: string): void => {
    skipWhitespaceAndComments();
    if (text[position] !== character) fail(`expected '${character}'`);
    position++;
  };

  const table: Record<string, string> = Object.create(null) as Record<string, string>; // "__proto__" is a valid key
  for (;;) {
    skipWhitespaceAndComments();
    if (position >= text.length) return table;
    const key = readQuoted();
    expect('=');
    skipWhitespaceAndComments();
    const value = readQuoted();
    expect(';');
    if (Object.prototype.hasOwnProperty.call(table, key)) fail(`duplicate key ${JSON.stringify(key)}`);
    table[key] = value;
  }
}

/** A complete, realistic store-card input; tests override what they examine. */
export function sampleStoreCardInput(
  certificates: { passTypeIdentifier: string; teamIdentifier: string },
  overrides: Partial<StoreCardPassInput> = {},
): StoreCardPassInput {
  return {
    passTypeIdentifier: certificates.passTypeIdentifier,
    teamIdentifier: certificates.teamIdentifier,
    organizationName: 'БлокПОСТ',
    serialNumber: 'c7f3a9d2e1b04f5a',
    authenticationToken: 'vN4q8Yp2Lr7Ks1Xw9Tz3Bm6Hd0Fg5Jc8',
    webServiceURL: 'https://cards.example.com/apple',
    defaultLanguage: 'ru',
    description: { ru: 'Карта лояльности БлокПОСТ', en: 'BlokPOST loyalty card' },
    logoText: { ru: 'БлокПОСТ', en: 'BlokPOST' },
    colors: { background: '#0f766e', foreground: '#ffffff', label: '#ccfbf1' },
    card: {
      number: '2000012345674',
      holderName: 'Анна Смирнова',
      balance: 12_450,
      tierName: { ru: 'Стандарт', en: 'Standard' },
    },
    barcode: { message: '2000012345674' },
    frontPromo: { ru: 'Двойные баллы на кофе до воскресенья', en: 'Double points on coffee until Sunday' },
    back: {
      contacts: { ru: 'Телефон: +7 495 123-45-67\nул. Тверская, 1', en: 'Phone: +7 495 123-45-67\n1 Tverskaya St' },
      terms: {
        ru: '1 балл = 1 ₽. Баллами можно оплатить до 30 % чека. «Особые» условия: "см. сайт" \\ офис',
        en: '1 point = 1 RUB. Points pay up to 30 % of a check. "Special" terms: see site \\ office',
      },
      promo: { ru: 'Скидка 10 % на выпечку', en: '10 % off pastries' },
      referral: { text: { ru: 'Приведите друга — 3 000 баллов вам обоим', en: 'Invite a friend: 3,000 points each' }, url: 'https://cards.example.com/join/blokpost?ref=ANNA42' },
    },
    locations: [
      { latitude: 55.7575, longitude: 37.6136, relevantText: { ru: 'БлокПОСТ рядом: покажите карту', en: 'BlokPOST nearby: show your card' } },
    ],
    ...overrides,
  };
}
