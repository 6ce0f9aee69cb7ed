import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium package; `.ci/run` installs it when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Browser tests need a real Chromium. Without one they are skipped, saying why — except in CI
 * (`CI` set), where a missing browser is an error: the suite must not pass by skipping.
 */
export function requireChromium(): { skip: boolean; reason: string } {
  if (existsSync(CHROMIUM_PATH)) return { skip: false, reason: '' };
  if (process.env.CI) throw new Error(`CI is set but ${CHROMIUM_PATH} is missing: install Debian chromium (apt-get install -y chromium)`);
  return { skip: true, reason: `needs Chromium at ${CHROMIUM_PATH}` };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/** Where browser tests leave screenshots (gitignored). */
export function artifactPath(name: string): string {
  const dir = path.resolve('test-artifacts');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
