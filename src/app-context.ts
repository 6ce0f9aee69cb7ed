import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { JobQueue } from './jobs/queue.js';
import type { CardChangeRecorder } from './updates/card-changes.js';
import type { PassService } from './wallets/apple/pass-service.js';
import type { AppleIdentity } from './programs/service.js';
import type { CardLinks } from './cards/dto.js';
import type { Metrics } from './metrics.js';
import type { QrRenderer } from './enrollment/qr.js';
import type { PhoneVerificationService } from './verification/phone-verification.js';

/** What route plugins get from the composition root (`buildApp`). */
export interface AppContext {
  config: Config;
  db: Db;
  dbKind: 'postgres' | 'embedded';
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
