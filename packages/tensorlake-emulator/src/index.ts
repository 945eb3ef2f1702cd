export {
  EMULATOR_FIDELITY,
  type RequestFields,
  startTensorlakeEmulator,
  TensorlakeEmulator,
  type TensorlakeEmulatorOptions,
} from './emulator.js';
export { NAME_PATTERN, type SandboxStatus } from './state.js';
