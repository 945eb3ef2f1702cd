import type { EmulatorContext } from '@statebox/emulator-kit';
import { HttpError, param, readJsonObject } from '@statebox/emulator-kit';
import type { RequestFields, TensorlakeEmulator } from '../emulator.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { freeze, thaw } from '../freeze.js';
import { isGone, type SandboxRecord, sandboxInfo } from '../state.js';
import { requireKey } from './auth.js';

type Context = EmulatorContext<object, RequestFields>;
const BASE = '/v1/namespaces/:namespace/sandboxes';

/** Lifecycle routes, as `crates/cloud-sdk/src/sandboxes/mod.rs` of tensorlake 0.5.89 calls them on localhost. */
export function registerSandboxRoutes(emulator: TensorlakeEmulator): void {
  const { server, table } = emulator;
  const auth = requireKey(emulator);
  const info = (record: SandboxRecord) => sandboxInfo(record, emulator.url);
  const lookup = (c: Context): SandboxRecord => {
    const record = table.require(param(c, 'namespace'), param(c, 'id'));
    if (isGone(record.status)) throw notFound(`sandbox ${record.id}`);
    return record;
  };

  server.post(BASE, auth, async (c) => {
    const namespace = param(c, 'namespace');
    const body = await readJsonObject(c);
    if (body.snapshot_id != null) {
      throw new HttpError(501, 'the tensorlake emulator does not implement restore from snapshot_id', {
        code: 'not_implemented',
      });
    }
    const name = body.name == null ? null : table.checkName(namespace, body.name);
    const resources = (body.resources ?? {}) as Record<string, unknown>;
    const record = newRecord(emulator, namespace, name, body, resources);
    table.add(record);
    // Creation is asynchronous on the service: the answer says `pending`, a poll later says `running`.
    void emulator.serialize(record, async () => {
      await emulator.pause();
      try {
        await emulator.backing.create(record.id);
      } catch (error) {
        record.status = 'terminated';
        record.terminationReason = `startup failed: ${(error as Error).message}`;
        record.terminatedAt = new Date();
        return;
      }
      if (record.status === 'pending') record.status = 'running';
      else await emulator.backing.destroy(record.id);
    });
    return c.json({ sandbox_id: record.id, status: record.status, name, sandbox_url: emulator.url });
  });

  server.get(BASE, auth, (c) =>
    c.json({ sandboxes: table.live(param(c, 'namespace')).map((record) => info(record)) }),
  );

  server.get(`${BASE}/:id`, auth, (c) => c.json(info(table.require(param(c, 'namespace'), param(c, 'id')))));

  server.patch(`${BASE}/:id`, auth, async (c) => {
    const record = lookup(c);
    const body = await readJsonObject(c);
    if (body.name !== undefined) record.name = table.checkName(record.namespace, body.name, record.id);
    return c.json(info(record));
  });

  server.delete(`${BASE}/:id`, auth, (c) => {
    const record = lookup(c);
    record.status = 'terminated';
    record.terminatedAt = new Date();
    record.terminationReason = 'deleted';
    emulator.cutStreams(record);
    void emulator.serialize(record, () => emulator.backing.destroy(record.id));
    return c.json({});
  });

  server.post(`${BASE}/:id/suspend`, auth, (c) => {
    const record = lookup(c);
    if (!record.name) {
      throw badRequest(`sandbox ${record.id} is ephemeral: only named sandboxes can be suspended`);
    }
    if (record.status === 'suspended' || record.status === 'suspending') return c.json({});
    if (record.status !== 'running') throw conflict(`sandbox ${record.id} is ${record.status}`);
    record.status = 'suspending';
    emulator.cutStreams(record);
    void emulator.serialize(record, async () => {
      const sandbox = emulator.backing.get(record.id);
      try {
        if (sandbox) await freeze(sandbox);
      } catch {
        // A failed suspend leaves the sandbox running, as the service does.
        if (record.status === 'suspending') record.status = 'running';
        return;
      }
      await emulator.pause();
      if (record.status === 'suspending') record.status = 'suspended';
    });
    return c.json({});
  });

  server.post(`${BASE}/:id/resume`, auth, (c) => {
    const record = lookup(c);
    if (record.status === 'running' || record.status === 'pending') return c.json({});
    if (record.status !== 'suspended' && record.status !== 'suspending') {
      throw conflict(`sandbox ${record.id} is ${record.status}`);
    }
    void emulator.serialize(record, async () => {
      if (record.status !== 'suspended') return;
      // No `resuming` status exists in the SDK's enum; the service's value during a resume is UNCONFIRMED.
      record.status = 'pending';
      await emulator.pause();
      const sandbox = emulator.backing.get(record.id);
      if (sandbox) await thaw(sandbox);
      if (record.status === 'pending') record.status = 'running';
    });
    return c.json({});
  });

  server.post(`${BASE}/:id/copy`, auth, async (c) => {
    const source = lookup(c);
    const times = Number(c.req.query('times') ?? '1');
    if (!Number.isInteger(times) || times < 1 || times > 100) {
      throw new HttpError(422, `times must be an integer from 1 to 100, got ${c.req.query('times')}`);
    }
    if (source.status !== 'running')
      throw conflict(`sandbox ${source.id} is ${source.status}: only a running sandbox can be copied`);
    const copies: Record<string, unknown>[] = [];
    await emulator.serialize(source, async () => {
      for (let index = 0; index < times; index += 1) {
        const child = newRecord(
          emulator,
          source.namespace,
          null,
          { image: source.image, timeout_secs: source.timeoutSecs },
          {
            cpus: source.resources.cpus,
            memory_mb: source.resources.memory_mb,
          },
        );
        try {
          if (source.status !== 'running') throw new Error(`source is ${source.status}`);
          // The local provider's fork restarts the source's processes: the one behaviour of a live copy
          // this emulator cannot reproduce (see EMULATOR_FIDELITY).
          emulator.cutStreams(source);
          await emulator.backing.fork(source.id, child.id);
          child.status = 'running';
          table.add(child);
          copies.push({ sandbox_id: child.id, status: 'running', name: null, sandbox_url: emulator.url });
        } catch (error) {
          copies.push({ sandbox_id: child.id, status: 'failed', reason: (error as Error).message });
        }
      }
    });
    return c.json({ source_sandbox_id: source.id, sandboxes: copies });
  });
}

function newRecord(
  emulator: TensorlakeEmulator,
  namespace: string,
  name: string | null,
  body: Record<string, unknown>,
  resources: Record<string, unknown>,
): SandboxRecord {
  return {
    id: emulator.table.newId(),
    namespace,
    name,
    status: 'pending',
    createdAt: new Date(),
    terminatedAt: null,
    terminationReason: null,
    image: typeof body.image === 'string' ? body.image : 'tensorlake/ubuntu-minimal',
    resources: {
      cpus: typeof resources.cpus === 'number' ? resources.cpus : 1,
      memory_mb: typeof resources.memory_mb === 'number' ? resources.memory_mb : 1024,
      ephemeral_disk_mb: typeof resources.disk_mb === 'number' ? resources.disk_mb : 10_240,
    },
    timeoutSecs: typeof body.timeout_secs === 'number' ? body.timeout_secs : 600,
    streams: new Set(),
    transition: Promise.resolve(),
  };
}
