import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files run in parallel worker processes; each database test file creates its own database.
    pool: 'forks',
    // The default output, then a list of skipped tests with the reason each needs (test/support).
    reporters: ['default', './test/support/skip-reasons-reporter.ts'],
  },
});
