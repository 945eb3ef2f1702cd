import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'testkit/index': 'src/testkit/index.ts' },
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'node22',
  external: ['vitest'],
});
