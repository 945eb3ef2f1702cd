import type { EmulatorServer } from '@statebox/emulator-kit';
import type { Emulator } from '../emulator.js';
import type { RequestFields, RouteVariables } from '../http.js';
import { agentRoutes } from './agents.js';
import { environmentRoutes } from './environments.js';
import { eventRoutes } from './events.js';
import { memoryStoreRoutes } from './memory-stores.js';
import { sessionRoutes } from './sessions.js';
import { skillRoutes } from './skills.js';
import { workRoutes } from './work.js';

/**
 * Every endpoint the emulator serves, one file per resource. Anything else is answered 501 by the kit,
 * so an SDK upgrade that calls a new endpoint fails loudly instead of reading as "not found".
 */
export function registerRoutes(
  server: EmulatorServer<RouteVariables, RequestFields>,
  emulator: Emulator,
): void {
  agentRoutes(server, emulator);
  environmentRoutes(server, emulator);
  workRoutes(server, emulator);
  sessionRoutes(server, emulator);
  eventRoutes(server, emulator);
  skillRoutes(server, emulator);
  memoryStoreRoutes(server, emulator);
}
