import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCertificateMonitor } from '../../src/wallets/apple/certificate-monitor.js';

// The Apple certificates' expiry while the service runs: log warnings at 30, 7 and 1 days (each once
// per band), an error once expired, the days left in /metrics, and the state for /readyz and the
// owner's overview. On a manual clock.
const DAY = 86_400_000;

describe('certificate monitor', () => {
  const notAfter = new Date('2027-03-01T12:00:00Z');
  const material = { signerNotAfter: notAfter, wwdrNotAfter: new Date('2030-01-01T00:00:00Z'), passTypeIdentifier: 'pass.test.monitor' };

  it('warns once as each of 30, 7 and 1 days is crossed, then errors once expired', () => {
    let now = new Date(notAfter.getTime() - 45 * DAY);
    const logs: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    const monitor = createCertificateMonitor({
      material,
      clock: () => now,
      logger: {
        warn: (fields, msg) => logs.push({ level: 'warn', msg: msg ?? '', fields: fields as Record<string, unknown> }),
        error: (fields, msg) => logs.push({ level: 'error', msg: msg ?? '', fields: fields as Record<string, unknown> }),
      },
    });
    const at = (msBeforeExpiry: number) => {
      now = new Date(notAfter.getTime() - msBeforeExpiry);
      return monitor.check();
    };
    expect(at(45 * DAY)).toEqual([]);
    expect(monitor.report().state).toBe('ok');
    expect(at(30 * DAY - 1000)).toHaveLength(1);
    expect(logs.at(-1)).toMatchObject({ level: 'warn', fields: { certificate: 'pass_type_id', daysLeft: 29 } });
    expect(logs.at(-1)!.msg).toMatch(/Pass Type ID certificate \(pass\.test\.monitor\) expires on 2027-03-01T12:00:00\.000Z \(in 29 days\): renew it/);
    expect(monitor.report().state).toBe('expiring');
    // Hourly checks inside the band say nothing more.
    expect(at(20 * DAY)).toEqual([]);
    expect(at(8 * DAY)).toEqual([]);
    expect(at(7 * DAY - 1000)).toHaveLength(1);
    expect(at(3 * DAY)).toEqual([]);
    expect(at(DAY - 1000)).toHaveLength(1);
    expect(logs.at(-1)!.msg).toMatch(/in 0 days/);
    expect(at(-1000)).toHaveLength(1);
    expect(logs.at(-1)).toMatchObject({ level: 'error' });
    expect(logs.at(-1)!.msg).toMatch(/expired on .*passes can no longer be signed and pushes fail/);
    expect(at(-DAY)).toEqual([]);
    expect(monitor.report()).toMatchObject({ state: 'expired', certificates: [{ certificate: 'pass_type_id', daysLeft: -1, state: 'expired' }, { certificate: 'wwdr', state: 'ok' }] });
    expect(logs.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'error']);
  });

  it('a process that starts inside a band logs that band once (not the ones before it)', () => {
    const logs: string[] = [];
    const monitor = createCertificateMonitor({
      material,
      clock: () => new Date(notAfter.getTime() - 5 * DAY),
      logger: { warn: (_f, msg) => logs.push(msg ?? ''), error: (_f, msg) => logs.push(msg ?? '') },
    });
    monitor.check();
    monitor.check();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/in 5 days/);
  });

  it('exposes the days left per certificate in /metrics, computed at each scrape', async () => {
    let now = new Date(notAfter.getTime() - 10 * DAY);
    const registry = new Registry();
    createCertificateMonitor({ material, clock: () => now, registry });
    expect(await registry.metrics()).toMatch(/apple_certificate_expiry_days\{certificate="pass_type_id"\} 10\n/);
    now = new Date(notAfter.getTime() + DAY / 2);
    const text = await registry.metrics();
    expect(text).toMatch(/apple_certificate_expiry_days\{certificate="pass_type_id"\} -0\.5\n/);
    expect(text).toMatch(/apple_certificate_expiry_days\{certificate="wwdr"\} \d+/);
  });
});
