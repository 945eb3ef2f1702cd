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
  FileTooLargeError,
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
export type {
  PruneItem,
  PruneOptions,
  PruneReport,
  SandboxUsage,
  TerminalRequest,
  TerminalSession,
} from './operator.js';
export { DEFAULT_WORKDIR, resolveSandboxPath } from './paths.js';
export type {
  CreateRequest,
  ExecOutput,
  ExecRequest,
  ForkRequest,
  ListFilter,
  ReadFileOptions,
  SandboxInfo,
  SandboxProvider,
  SandboxStatus,
  WriteFileOptions,
} from './provider.js';
export {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_READ_BYTES,
  type ExecOptions,
  type ExecResult,
  isStateboxError,
  type ReadOptions,
  Sandbox,
} from './sandbox.js';
export {
  type CreateOptions,
  createStatebox,
  type Statebox,
  type StateboxOptions,
  statebox,
} from './statebox.js';
