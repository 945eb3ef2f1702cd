import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts', 'benchmarks/test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Sandboxes are real processes and mounts; two cores do not gain from more parallel files.
    fileParallelism: false,
    reporters: ['default'],
  },
});
