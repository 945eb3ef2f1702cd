export { DEFAULT_MAX_BODY_BYTES, readBody, readJsonObject } from './body.js';
export {
  defaultErrorResponse,
  type ErrorResponder,
  type ErrorResponse,
  HttpError,
  type HttpErrorOptions,
  type KitErrorCode,
} from './errors.js';
export { type FaultHandle, FaultInjector, type FaultRule } from './faults.js';
export { assertLoopbackHost, isLoopbackHost } from './loopback.js';
export { RequestLog, type RequestRecord } from './request-log.js';
export {
  BackingSandboxes,
  type BackingSandboxesOptions,
  EMULATOR_LABEL,
  INSTANCE_LABEL,
  VENDOR_ID_LABEL,
} from './sandboxes.js';
export {
  createEmulatorServer,
  type EmulatorContext,
  type EmulatorEnv,
  EmulatorServer,
  type EmulatorServerOptions,
  type KitVariables,
  type ListenOptions,
  param,
  type RouteHandler,
} from './server.js';
export { EventStream, type EventStreamOptions, openEventStream } from './sse.js';
