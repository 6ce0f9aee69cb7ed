import { Gauge, type Registry } from 'prom-client';
import type { AppleSigningMaterial } from './certificates.js';

/**
 * The Apple certificates' expiry, watched while the service runs (issue #13). The Pass Type ID
 * certificate lasts a year; when it expires nothing can be signed or pushed any more (installed
 * passes stay, but stop updating; reference apple-wallet.md section 4: "Alert 30 days before
 * notAfter"). Start-up already refuses an expired certificate (checkAppleCertificates); a process
 * that keeps running for months needs this:
 *
 *   - `/metrics`: `apple_certificate_expiry_days{certificate="pass_type_id"|"wwdr"}`, computed at
 *     each scrape (alert on it, e.g. `< 14`);
 *   - the log: a warning when the Pass Type ID or WWDR certificate is 30, 7 and 1 days from expiry
 *     (at start-up for the band it is already in, then once per band crossed), an error once expired;
 *   - `/readyz` and the owner's cabinet overview: `state()`.
 */
export const EXPIRY_WARNING_DAYS = [30, 7, 1] as const;

const DAY_MS = 24 * 60 * 60 * 1000;

export type CertificateState = 'ok' | 'expiring' | 'expired';

export interface CertificateStatus {
  certificate: 'pass_type_id' | 'wwdr';
  notAfter: Date;
  /** Whole days left (floor); negative once expired. */
  daysLeft: number;
  state: CertificateState;
}

export interface CertificateReport {
  /** The worst of the certificates. */
  state: CertificateState;
  certificates: CertificateStatus[];
}

interface Logger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CertificateMonitor {
  report(): CertificateReport;
  /** Logs the warning of each band newly entered (30/7/1 days, expired); returns what it logged. */
  check(): string[];
  /** Checks now and then every `intervalMs` (default one hour). */
  start(intervalMs?: number): void;
  stop(): void;
}

export function createCertificateMonitor(options: {
  material: Pick<AppleSigningMaterial, 'signerNotAfter' | 'wwdrNotAfter' | 'passTypeIdentifier'>;
  clock: () => Date;
  logger?: Logger;
  registry?: Registry;
}): CertificateMonitor {
  const { material, clock, logger } = options;
  const certificates = [
    { certificate: 'pass_type_id' as const, notAfter: material.signerNotAfter, name: `Pass Type ID certificate (${material.passTypeIdentifier})`, renew: 'renew it for the same pass type ID in the Apple Developer portal and replace signerCert.pem and signerKey.pem (docs/operations.md, Certificate renewal)' },
    { certificate: 'wwdr' as const, notAfter: material.wwdrNotAfter, name: 'Apple WWDR intermediate certificate', renew: 'download the current WWDR G4 certificate from Apple and replace wwdr.pem' },
  ];
  // The band each certificate was last reported in: 0 = fine, then one per threshold, then expired.
  const reported = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;

  const statusOf = (c: (typeof certificates)[number], now: Date): CertificateStatus => {
    const remainingMs = c.notAfter.getTime() - now.getTime();
    const daysLeft = Math.floor(remainingMs / DAY_MS);
    const state: CertificateState = remainingMs <= 0 ? 'expired' : remainingMs <= EXPIRY_WARNING_DAYS[0] * DAY_MS ? 'expiring' : 'ok';
    return { certificate: c.certificate, notAfter: c.notAfter, daysLeft, state };
  };
  const bandOf = (remainingMs: number) => {
    if (remainingMs <= 0) return EXPIRY_WARNING_DAYS.length + 1;
    let band = 0;
    EXPIRY_WARNING_DAYS.forEach((days, index) => {
      if (remainingMs <= days * DAY_MS) band = index + 1;
    });
    return band;
  };

  if (options.registry) {
    new Gauge({
      name: 'apple_certificate_expiry_days',
      help: 'Days until the Apple certificate expires (negative once expired); pushes and pass signing stop then',
      labelNames: ['certificate'],
      registers: [options.registry],
      collect() {
        const now = clock();
        for (const c of certificates) this.set({ certificate: c.certificate }, (c.notAfter.getTime() - now.getTime()) / DAY_MS);
      },
    });
  }

  const monitor: CertificateMonitor = {
    report() {
      const now = clock();
      const statuses = certificates.map((c) => statusOf(c, now));
      const state = statuses.some((s) => s.state === 'expired') ? 'expired' : statuses.some((s) => s.state === 'expiring') ? 'expiring' : 'ok';
      return { state, certificates: statuses };
    },
    check() {
      const now = clock();
      const logged: string[] = [];
      for (const c of certificates) {
        const remainingMs = c.notAfter.getTime() - now.getTime();
        const band = bandOf(remainingMs);
        if (band === 0 || band <= (reported.get(c.certificate) ?? 0)) continue;
        reported.set(c.certificate, band);
        const days = Math.floor(remainingMs / DAY_MS);
        const fields = { certificate: c.certificate, notAfter: c.notAfter.toISOString(), daysLeft: days };
        if (remainingMs <= 0) {
          const message = `The ${c.name} expired on ${c.notAfter.toISOString()}: passes can no longer be signed and pushes fail; ${c.renew}`;
          logger?.error(fields, message);
          logged.push(message);
        } else {
          const message = `The ${c.name} expires on ${c.notAfter.toISOString()} (in ${days} day${days === 1 ? '' : 's'}): ${c.renew}`;
          logger?.warn(fields, message);
          logged.push(message);
        }
      }
      return logged;
    },
    start(intervalMs = 60 * 60 * 1000) {
      monitor.check();
      timer = setInterval(() => monitor.check(), intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return monitor;
}
