import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { JobQueue } from './jobs/queue.js';
import type { CardChangeRecorder } from './updates/card-changes.js';
import type { PassService } from './wallets/apple/pass-service.js';
import type { AppleIdentity } from './programs/service.js';
import type { CardLinks } from './cards/dto.js';
import type { Metrics } from './metrics.js';
import type { Notifications } from './db/notifications.js';
import type { CertificateMonitor } from './wallets/apple/certificate-monitor.js';
import type { QrRenderer } from './enrollment/qr.js';
import type { PhoneVerificationService } from './verification/phone-verification.js';

/** What route plugins get from the composition root (`buildApp`). */
export interface AppContext {
  config: Config;
  db: Db;
  dbKind: 'postgres' | 'embedded';
  /** Cross-instance LISTEN/NOTIFY (db/notifications.ts). */
  notifications: Notifications;
  /** The Apple certificates' expiry (metrics, log warnings, /readyz, the owner's overview). */
  certificates: CertificateMonitor;
  clock: () => Date;
  jobs: JobQueue;
  cardChanges: CardChangeRecorder;
  passes: PassService;
  appleIdentity: AppleIdentity;
  links: CardLinks;
  metrics: Metrics;
  /** The public QR endpoints' renderer (worker thread, cache, limits). */
  qr: QrRenderer;
  /** One-time codes to phones (SMS_GATEWAY_URL); `available` is false without a gateway. */
  verification: PhoneVerificationService;
}
