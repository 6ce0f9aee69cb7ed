/**
 * Google Wallet settings and service-account loading (reference google-wallet.md, checklist 1–2).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createGoogleWalletSettings,
  GOOGLE_WALLET_DEFAULTS,
  GoogleWalletConfigError,
  loadServiceAccount,
} from '../../src/wallets/google/config.js';
import { createTestServiceAccount } from '../support/google-fake.js';

const account = createTestServiceAccount();
const dir = mkdtempSync(path.join(tmpdir(), 'google-config-'));
function writeFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('loadServiceAccount (checklist 1)', () => {
  it('loads client_email, private_key and private_key_id from a key file', () => {
    const file = writeFile('ok.json', JSON.stringify(account.serviceAccount));
    const loaded = loadServiceAccount(file);
    expect(loaded).toEqual({
      client_email: account.serviceAccount.client_email,
      private_key: account.serviceAccount.private_key,
      private_key_id: account.serviceAccount.private_key_id,
    });
  });

  it('fails fast on a missing file', () => {
    expect(() => loadServiceAccount(path.join(dir, 'nope.json'))).toThrow(/cannot be read \(ENOENT\)/);
  });

  it('fails on a file that is not JSON, without quoting the file (it may be the bare key)', () => {
    const file = writeFile('pem-instead.json', account.serviceAccount.private_key);
    let error: unknown;
    try {
      loadServiceAccount(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GoogleWalletConfigError);
    expect((error as Error).message).toMatch(/is not valid JSON/);
    expect((error as Error).message).not.toMatch(/BEGIN|PRIVATE|MII/);
  });

  it('fails on a private_key that is not PEM, and never echoes the key', () => {
    const bogus = '-----BEGIN PRIVATE KEY-----\nnot-a-key-SECRETSECRET\n-----END PRIVATE KEY-----\n';
    const file = writeFile('bad-pem.json', JSON.stringify({ ...account.serviceAccount, private_key: bogus }));
    expect(() => loadServiceAccount(file)).toThrow(/private_key is not a valid PEM private key/);
    try {
      loadServiceAccount(file);
    } catch (error) {
      expect((error as Error).message).not.toContain('SECRETSECRET');
    }
  });

  it('rejects a non-RSA key (RS256 is required for tokens and save links)', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const file = writeFile('ec.json', JSON.stringify({ ...account.serviceAccount, private_key: ec }));
    expect(() => loadServiceAccount(file)).toThrow(/must be an RSA key/);
  });

  it.each([
    ['no client_email', { private_key: account.serviceAccount.private_key }, /client_email/],
    ['no private_key', { client_email: 'a@b.c' }, /has no private_key/],
    ['an array', [], /must be a JSON object/],
    ['a numeric private_key_id', { ...account.serviceAccount, private_key_id: 7 }, /private_key_id/],
  ])('rejects a key file with %s', (_label, json, pattern) => {
    const file = writeFile(`bad-${Math.random()}.json`, JSON.stringify(json));
    expect(() => loadServiceAccount(file)).toThrow(pattern);
  });
});

describe('createGoogleWalletSettings (checklist 2)', () => {
  it("applies Google's defaults", () => {
    const settings = createGoogleWalletSettings({ issuerId: '3388000000012345678', serviceAccount: account.serviceAccount });
    expect(settings).toMatchObject({
      apiBaseUrl: 'https://walletobjects.googleapis.com/walletobjects/v1',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      issuerKeysUrl: 'https://pay.google.com/gp/m/issuer/keys',
      callbackSenderId: 'GooglePayPasses',
      saveUrlPrefix: 'https://pay.google.com/gp/v/save/',
      origins: [],
      requestsPerSecond: 20,
    });
    expect(GOOGLE_WALLET_DEFAULTS.requestsPerSecond).toBe(20);
  });

  it('takes every endpoint from the caller (so tests can point at a fake)', () => {
    const settings = createGoogleWalletSettings({
      issuerId: '1',
      serviceAccount: account.serviceAccount,
      apiBaseUrl: 'http://127.0.0.1:1/walletobjects/v1/',
      tokenUrl: 'http://127.0.0.1:1/token',
      issuerKeysUrl: 'http://127.0.0.1:1/keys',
      callbackSenderId: 'GoogleWalletPasses',
      saveUrlPrefix: 'https://wallet.example/save/',
      origins: ['https://cards.example'],
      requestsPerSecond: 5,
    });
    expect(settings.apiBaseUrl).toBe('http://127.0.0.1:1/walletobjects/v1');
    expect(settings.tokenUrl).toBe('http://127.0.0.1:1/token');
    expect(settings.issuerKeysUrl).toBe('http://127.0.0.1:1/keys');
    expect(settings.callbackSenderId).toBe('GoogleWalletPasses');
    expect(settings.saveUrlPrefix).toBe('https://wallet.example/save/');
    expect(settings.origins).toEqual(['https://cards.example']);
    expect(settings.requestsPerSecond).toBe(5);
  });

  it.each([
    [{ issuerId: 'abc' }, /issuerId must be digits/],
    [{ issuerId: '1', apiBaseUrl: 'not a url' }, /apiBaseUrl is not a valid URL/],
    [{ issuerId: '1', requestsPerSecond: 0 }, /requestsPerSecond/],
    [{ issuerId: '1', origins: ['ftp://x'] }, /origins/],
  ])('rejects invalid settings %o', (input, pattern) => {
    expect(() => createGoogleWalletSettings({ serviceAccount: account.serviceAccount, ...input })).toThrow(pattern);
  });
});
