import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { buildApp } from './app.js';
import { ConfigError, derivedPublicUrl, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { withBootLock } from './db/boot.js';
import { migrateToLatest, SchemaTooNewError } from './db/migrate.js';
import { seedDemoProgram } from './demo.js';
import { firstRunBanner, laterStartHint, pickFreePort } from './first-run.js';
import { LOG_SERIALIZERS } from './http/log-redaction.js';
import { createAppleRuntime } from './wallets/apple/runtime.js';
import { createGoogleRuntime } from './wallets/google/runtime.js';

/**
 * The thin entry: configuration, logging, the real dependencies, timeouts, listen and graceful
 * shutdown. Everything else is in `buildApp`.
 */
async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino(
    {
      level: config.LOG_LEVEL,
      // Secrets never reach logs, even when a request carries them; database errors without their data (http/log-redaction.ts).
      redact: ['req.headers.authorization', 'req.headers.cookie', '*.apple_auth_token', '*.key_hash'],
      serializers: LOG_SERIALIZERS,
    },
    prettyLogDestination(config),
  );
  const development = config.NODE_ENV !== 'production';
  if (config.PUBLIC_URL_DERIVED && config.PORT === 0) {
    config.PORT = await pickFreePort(config.HOST);
    config.PUBLIC_URL = derivedPublicUrl(config.HOST, config.PORT);
  }

  const instanceKey = config.ADMIN_KEY ? undefined : developmentAdminKey(config, logger);
  const adminKey = config.ADMIN_KEY ?? instanceKey!.key;
  const apple = await createAppleRuntime(config, logger);

  const database = openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, preparedStatements: config.PG_PREPARED_STATEMENTS });
  const google = createGoogleRuntime(config, logger, { database });
  if (google) logger.info({ issuerId: google.settings.issuerId }, 'Google Wallet enabled');
  else logger.info('Google Wallet is not configured (GOOGLE_ISSUER_ID, GOOGLE_SERVICE_ACCOUNT_FILE): running Apple Wallet only');

  const app = await buildApp({ config, database, adminKey, apple, google, logger });
  app.server.requestTimeout = 30_000;
  app.server.headersTimeout = 15_000;
  app.server.keepAliveTimeout = 65_000;

  // Instances starting together on one database take turns (db/boot.ts): migrations, pg-boss's
  // schema and queues, and the demo program happen once, without racing.
  const demo = await withBootLock(
    database,
    async () => {
      const applied = await migrateToLatest(database.db);
      if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
      logger.info({ database: database.kind === 'embedded' ? `embedded (${path.resolve(config.DATA_DIR)})` : 'postgres', role: config.ROLE }, 'database ready');
      await app.ready();
      // Never in production: a demo program there would be a real program with keys printed to a console (issue #11).
      return config.DEMO_PROGRAM && config.NODE_ENV !== 'production' && config.ROLE !== 'worker' ? seedDemoProgram(app) : undefined;
    },
    logger,
  );
  if (demo) logger.info({ program: demo.slug }, 'demo program created; its keys and links are printed to the terminal once');
  await app.listen({ port: config.PORT, host: config.HOST });
  // After listen, so every printed link already answers. Keys and links go to the terminal
  // (stdout), never into the structured log; production prints none of it.
  if (development && config.ROLE !== 'worker') {
    if (demo || instanceKey?.created) console.log(firstRunBanner({ publicUrl: config.PUBLIC_URL, instanceKey: instanceKey?.created ? instanceKey : undefined, demo }));
    else console.log(laterStartHint(config.PUBLIC_URL));
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, role: config.ROLE }, 'shutting down: no new connections, finishing requests and jobs');
    const force = setTimeout(() => {
      logger.error('graceful shutdown timed out');
      process.exit(1);
    }, 30_000);
    force.unref();
    try {
      // close() stops accepting, waits for in-flight requests, then runs onClose (job workers).
      await app.close();
      await apple.apns.close();
      await database.close();
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * Development only: a generated admin key, kept in DATA_DIR so restarts keep it. `created` when
 * this start generated it: the banner then shows it once (server.ts never logs it).
 */
function developmentAdminKey(config: Config, logger: pino.Logger): { key: string; file: string; created: boolean } {
  const file = path.resolve(config.DATA_DIR, 'admin.key');
  if (existsSync(file)) {
    logger.info({ file }, 'using the development admin key stored in DATA_DIR');
    return { key: readFileSync(file, 'utf8').trim(), file, created: false };
  }
  mkdirSync(config.DATA_DIR, { recursive: true });
  const key = `wc_instance_${randomBytes(32).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, file, created: true };
}

/**
 * Readable log lines for a person at a terminal (pino-pretty, a development dependency, in a
 * worker thread); JSON everywhere else: in production, and whenever stdout is a pipe or a file,
 * where a machine reads the log. Without pino-pretty installed (a production image) JSON too.
 */
function prettyLogDestination(config: Config): pino.DestinationStream | undefined {
  if (config.NODE_ENV === 'production' || !process.stdout.isTTY) return undefined;
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    return undefined;
  }
  return pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } });
}

main().catch((error) => {
  // A schema newer than the code is an operator's situation, not a crash: say it plainly.
  if (error instanceof SchemaTooNewError) {
    console.error(error.message);
    process.exit(3);
  }
  console.error(error);
  process.exit(1);
});
