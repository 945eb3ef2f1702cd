import { defineConfig } from 'tsup';

export default defineConfig({
  // `shell` is its own entry: free of Node built-ins, so a Worker bundle (workerd) can import it.
  entry: ['src/index.ts', 'src/shell.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  target: 'node22',
});
