/**
 * What statebox adapters share, so each adapter holds only what is particular to its backend. Adapters
 * depend on this package and on `@statebox/core`, never on each other; users never need it.
 */
export { type CollectorOptions, ExecCollector, type StopReason } from './collect.js';
export { sha256 } from './hash.js';
export { newId, randomHex } from './ids.js';
export { descendants, type KillTreeOptions, killProcessTree } from './kill-tree.js';
export { KeyedLocks, lockFile, type Release } from './lock.js';
export { parseProviderOptions } from './options.js';
export { concatBytes, OutputBuffer, truncationMarker } from './output.js';
export { type RunOptions, runProcess } from './process.js';
export { shellQuote } from './shell.js';
export { packTar, readFirstEntry, readTar, type TarInput, type TarMember } from './tar.js';
