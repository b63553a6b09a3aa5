import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Storage tests open real databases; two workers keep a 2-core machine responsive.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
