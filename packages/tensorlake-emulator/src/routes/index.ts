import type { TensorlakeEmulator } from '../emulator.js';
import { registerFileRoutes } from './files.js';
import { registerProcessRoutes } from './processes.js';
import { registerSandboxRoutes } from './sandboxes.js';

export function registerRoutes(emulator: TensorlakeEmulator): void {
  registerSandboxRoutes(emulator);
  registerProcessRoutes(emulator);
  registerFileRoutes(emulator);
}
