export type { SandboxCapabilities } from './capabilities.js';
export {
  type AdapterModule,
  CONFIG_FILE_NAMES,
  type CreateProviderOptions,
  createProvider,
  isProvider,
  type ProviderConfig,
  type ProviderName,
  providerPackages,
} from './config.js';
export {
  ConfigError,
  FileNotFoundError,
  InvalidPathError,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  StateboxError,
  type StateboxErrorOptions,
  TimeoutError,
  TransientError,
  UnsupportedCapabilityError,
} from './errors.js';
export { parseProviderOptions } from './options.js';
export { concatBytes, OutputBuffer, truncationMarker } from './output.js';
export { DEFAULT_WORKDIR, resolveSandboxPath } from './paths.js';
export type {
  CreateRequest,
  ExecOutput,
  ExecRequest,
  ForkRequest,
  ListFilter,
  SandboxInfo,
  SandboxProvider,
  SandboxStatus,
  WriteFileOptions,
} from './provider.js';
export {
  DEFAULT_MAX_OUTPUT_BYTES,
  type ExecOptions,
  type ExecResult,
  isStateboxError,
  Sandbox,
} from './sandbox.js';
export {
  type CreateOptions,
  createStatebox,
  type Statebox,
  type StateboxOptions,
  statebox,
} from './statebox.js';
