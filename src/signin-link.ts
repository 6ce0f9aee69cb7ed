/**
 * `npm run signin-link -- --program demo` (and `node dist/signin-link.js --program <slug>`): prints
 * a new one-time cabinet sign-in link for the program's owner (its oldest active owner), valid
 * for 24 hours (`--hours 1..168`). For the owner who lost the banner's link or never set a password.
 *
 * With DATABASE_URL it writes the link straight into PostgreSQL. On the embedded database (one
 * process may open it) it asks the running server over HTTP with the instance admin key
 * (ADMIN_KEY or DATA_DIR/admin.key), and opens the database itself only when no server answers.
 *
 * Exit codes: 0 printed, 1 not found or failed, 2 invalid configuration or arguments.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createSignInLink } from './cabinet/auth.js';
import { ConfigError, derivedPublicUrl, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';

class CliError extends Error {}

function options(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: { program: { type: 'string' }, hours: { type: 'string', default: '24' } } });
  const slug = values.program;
  const hours = Number(values.hours);
  if (!slug || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(slug)) throw new ConfigError(['--program: the program slug, e.g. --program demo']);
  if (!Number.isInteger(hours) || hours < 1 || hours > 168) throw new ConfigError(['--hours: a whole number of hours from 1 to 168']);
  return { slug, ttlMs: hours * 3_600_000 };
}

/** Directly in the database: PostgreSQL (shared safely with running servers) or an embedded one no server holds. */
async function viaDatabase(config: Config, slug: string, ttlMs: number) {
  const database = openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 1 });
  try {
    const owner = await database.db
      .selectFrom('staff_member as m')
      .innerJoin('program as p', 'p.id', 'm.program_id')
      .select(['m.id', 'm.program_id', 'm.name'])
      .where('p.slug', '=', slug)
      .where('m.role', '=', 'owner')
      .where('m.deleted_at', 'is', null)
      .orderBy('m.created_at')
      .limit(1)
      .executeTakeFirst();
    if (!owner) throw new CliError(`No program «${slug}» with an active owner in this database`);
    const link = await createSignInLink(database.db, { staffId: owner.id, programId: owner.program_id, createdBy: 'cli', ttlMs, now: new Date(), publicUrl: config.PUBLIC_URL });
    return { url: link.url, expiresAt: link.expiresAt, name: owner.name };
  } finally {
    await database.close();
  }
}

/** Through the running server's API with the instance admin key. Undefined when no server answers. */
async function viaServer(config: Config, slug: string, ttlMs: number) {
  const file = path.resolve(config.DATA_DIR, 'admin.key');
  const key = config.ADMIN_KEY ?? (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
  if (!key) return undefined;
  // Loopback when the server listens on every interface; otherwise its own host.
  const base = derivedPublicUrl(['0.0.0.0', '::'].includes(config.HOST) ? '127.0.0.1' : config.HOST, config.PORT);
  const call = async (method: string, url: string, body?: unknown) => {
    const response = await fetch(`${base}/api/v1${url}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new CliError(`The server at ${base} answered ${response.status} to ${method} ${url}: ${await response.text()}`);
    return response.json() as Promise<any>;
  };
  let programs: Array<{ id: string; slug: string }>;
  try {
    programs = await call('GET', '/programs');
  } catch (error) {
    if (error instanceof CliError) throw error;
    return undefined; // nothing listens there
  }
  const program = programs.find((p) => p.slug === slug);
  if (!program) throw new CliError(`No program «${slug}» on the server at ${base}`);
  const staff: Array<{ id: string; name: string; role: string; createdAt: string }> = await call('GET', `/programs/${program.id}/staff`);
  const owner = staff.filter((s) => s.role === 'owner').sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0];
  if (!owner) throw new CliError(`Program «${slug}» has no active owner`);
  const link = await call('POST', `/programs/${program.id}/staff/${owner.id}/sign-in-links`, { ttlMinutes: ttlMs / 60_000 });
  return { url: String(link.url), expiresAt: new Date(link.expiresAt), name: owner.name };
}

try {
  const { slug, ttlMs } = options(process.argv.slice(2));
  const config = loadConfig();
  const link = config.DATABASE_URL ? await viaDatabase(config, slug, ttlMs) : ((await viaServer(config, slug, ttlMs)) ?? (await viaDatabase(config, slug, ttlMs)));
  console.log(`One-time cabinet sign-in link for ${link.name} («${slug}»), valid until ${link.expiresAt.toISOString()}:\n  ${link.url}`);
} catch (error) {
  console.error(error instanceof ConfigError || error instanceof CliError ? error.message : error);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
