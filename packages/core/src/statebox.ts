import { z } from 'zod';
import { type CreateProviderOptions, createProvider, type ProviderConfig } from './config.js';
import type { CreateRequest, ListFilter, SandboxProvider } from './provider.js';
import { callProvider, environmentSchema, labelsSchema, parseOptions, Sandbox } from './sandbox.js';

export type StateboxOptions = CreateProviderOptions & {
  /** A provider instance, or a config naming one. Default: config file, then env, then `local`. */
  provider?: SandboxProvider | ProviderConfig;
};

export type CreateOptions = CreateRequest;

const createSchema = z.object({
  labels: labelsSchema.optional(),
  env: environmentSchema.optional(),
  image: z.string().min(1).optional(),
});
const listSchema = z.object({ labels: labelsSchema.optional() });

/** A client bound to one provider. `statebox` below is one bound to the configured provider. */
export type Statebox = {
  /** The provider, created on first use. */
  provider(): Promise<SandboxProvider>;
  create(options?: CreateOptions): Promise<Sandbox>;
  /** A handle to an existing sandbox, from any process. Throws `SandboxNotFoundError` if it is gone. */
  get(sandboxId: string): Promise<Sandbox>;
  list(filter?: ListFilter): Promise<Sandbox[]>;
};

export function createStatebox(options: StateboxOptions = {}): Statebox {
  let pending: Promise<SandboxProvider> | undefined;
  const provider = () => {
    pending ??= createProvider(options.provider, options).catch((error) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
  return {
    provider,
    async create(createOptions = {}) {
      const request = parseOptions(createSchema, createOptions, 'create options');
      const backend = await provider();
      return new Sandbox(backend, await backend.create(request));
    },
    async get(sandboxId) {
      parseOptions(z.string().min(1), sandboxId, 'sandbox id');
      const backend = await provider();
      return new Sandbox(backend, await callProvider('get', () => backend.get(sandboxId)));
    },
    async list(filter = {}) {
      const parsed = parseOptions(listSchema, filter, 'list filter');
      const backend = await provider();
      const infos = await callProvider('list', () => backend.list(parsed));
      return infos.map((info) => new Sandbox(backend, info));
    },
  };
}

/**
 * The configured statebox: `const box = await statebox.create()`. The provider comes from
 * `statebox.config.*`, or `STATEBOX_PROVIDER`, or is the embedded `local` one.
 */
export const statebox: Statebox = createStatebox();
