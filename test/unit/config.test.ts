import { describe, expect, it } from 'vitest';
import { ConfigError, derivedPublicUrl, loadConfig, trustProxyOption } from '../../src/config.js';

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      PUBLIC_URL: 'http://localhost:3000',
      DATA_DIR: './data',
      APPLE_CERT_DIR: './certs',
      APNS_HOST: 'api.push.apple.com',
      APNS_PORT: 443,
      NODE_ENV: 'development',
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.ADMIN_KEY).toBeUndefined();
    expect(config.PUBLIC_URL_DERIVED).toBe(true);
  });

  it('without PUBLIC_URL, links follow HOST and PORT (a LAN address for a wildcard host)', () => {
    expect(loadConfig({ PORT: '3520' }).PUBLIC_URL).toBe('http://localhost:3520');
    expect(loadConfig({ PORT: '3520', PUBLIC_URL: 'https://cards.example.com' })).toMatchObject({ PUBLIC_URL: 'https://cards.example.com', PUBLIC_URL_DERIVED: false });
    const lan = { lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }], eth0: [{ address: 'fe80::1', family: 'IPv6', internal: false }, { address: '192.168.1.20', family: 'IPv4', internal: false }] } as any;
    expect(derivedPublicUrl('0.0.0.0', 3520, lan)).toBe('http://192.168.1.20:3520');
    expect(derivedPublicUrl('::', 80, lan)).toBe('http://192.168.1.20');
    expect(derivedPublicUrl('0.0.0.0', 3000, { lo: lan.lo })).toBe('http://localhost:3000');
    expect(derivedPublicUrl('::1', 3000)).toBe('http://localhost:3000');
    expect(derivedPublicUrl('10.0.0.5', 8080)).toBe('http://10.0.0.5:8080');
    expect(derivedPublicUrl('fd00::5', 8080)).toBe('http://[fd00::5]:8080');
  });

  it('converts numbers and strips a trailing slash from PUBLIC_URL', () => {
    const config = loadConfig({ PORT: '8080', PUBLIC_URL: 'https://cards.example.com/', APNS_PORT: '2197' });
    expect(config.PORT).toBe(8080);
    expect(config.APNS_PORT).toBe(2197);
    expect(config.PUBLIC_URL).toBe('https://cards.example.com');
  });

  it('lists every problem at once and never echoes secrets', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', PUBLIC_URL: 'not a url', ADMIN_KEY: 'short-secret-value', DATABASE_URL: 'mysql://u:p@h/db' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/PUBLIC_URL/);
    expect(message).toMatch(/ADMIN_KEY/);
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).not.toContain('short-secret-value');
    expect(message).not.toContain('u:p@h');
  });

  it('requires ADMIN_KEY in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/ADMIN_KEY: required in production/);
    expect(loadConfig({ NODE_ENV: 'production', ADMIN_KEY: 'x'.repeat(32) }).ADMIN_KEY).toHaveLength(32);
  });

  it('takes SMTP_URL and MAIL_FROM for outgoing mail; mail is off without them', () => {
    expect(loadConfig({}).SMTP_URL).toBeUndefined();
    const config = loadConfig({ SMTP_URL: 'smtp://user:s3cret@smtp.example.com:587', MAIL_FROM: 'Cards <no-reply@example.com>' });
    expect(config.SMTP_URL).toBe('smtp://user:s3cret@smtp.example.com:587');
    expect(config.MAIL_FROM).toBe('Cards <no-reply@example.com>');
    expect(loadConfig({ SMTP_URL: 'smtps://smtp.example.com', MAIL_FROM: 'no-reply@example.com' }).SMTP_URL).toBe('smtps://smtp.example.com');
  });

  it('refuses an invalid SMTP_URL without echoing it (it carries the SMTP password)', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).message;
      }
      throw new Error('expected a ConfigError');
    };
    const wrongScheme = problems({ SMTP_URL: 'http://mailer:hunter2-secret@smtp.example.com', MAIL_FROM: 'no-reply@example.com' });
    expect(wrongScheme).toMatch(/SMTP_URL/);
    expect(wrongScheme).not.toContain('hunter2-secret');
    expect(wrongScheme).not.toContain('smtp.example.com');
    const noHost = problems({ SMTP_URL: 'smtp://mailer:hunter2-secret@', MAIL_FROM: 'no-reply@example.com' });
    expect(noHost).toMatch(/SMTP_URL: not a valid URL/);
    expect(noHost).not.toContain('hunter2-secret');
    const noFrom = problems({ SMTP_URL: 'smtp://mailer:hunter2-secret@smtp.example.com:587' });
    expect(noFrom).toMatch(/MAIL_FROM: required when SMTP_URL is set/);
    expect(noFrom).not.toContain('hunter2-secret');
    expect(problems({ SMTP_URL: 'smtp://smtp.example.com', MAIL_FROM: 'not an address' })).toMatch(/MAIL_FROM/);
  });

  it('requires both Google settings or neither', () => {
    expect(() => loadConfig({ GOOGLE_ISSUER_ID: '3388000000012345678' })).toThrow(/GOOGLE_ISSUER_ID and GOOGLE_SERVICE_ACCOUNT_FILE/);
  });
});

describe('TRUST_PROXY', () => {
  it('takes a hop count or a list of addresses and CIDRs, and refuses anything else (including "true")', () => {
    expect(trustProxyOption('127.0.0.1, 10.0.0.0/8,::1,fd00::/8')).toEqual(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
    const hops = trustProxyOption('1');
    expect(typeof hops).toBe('function');
    expect((hops as (a: string, h: number) => boolean)('10.0.0.1', 0)).toBe(true);
    expect((hops as (a: string, h: number) => boolean)('10.0.0.1', 1)).toBe(false);
    for (const bad of ['true', 'proxy.local', '10.0.0.0/33', '::1/129', '1.2.3.4/8/1', ',']) expect(trustProxyOption(bad)).toBeUndefined();
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY/);
    expect(loadConfig({ TRUST_PROXY: '127.0.0.1' }).TRUST_PROXY).toBe('127.0.0.1');
  });

  it('takes ROLE (all by default); api and worker need PostgreSQL', () => {
    expect(loadConfig({}).ROLE).toBe('all');
    expect(loadConfig({ ROLE: 'worker', DATABASE_URL: 'postgres://h/db' }).ROLE).toBe('worker');
    expect(() => loadConfig({ ROLE: 'api' })).toThrow(/ROLE: "api" needs DATABASE_URL/);
    expect(() => loadConfig({ ROLE: 'scheduler', DATABASE_URL: 'postgres://h/db' })).toThrow(/ROLE/);
  });
});
