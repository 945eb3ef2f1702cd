import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';
import { DockerApiError, type DockerClient } from './client.js';

const run = promisify(execFile);

/**
 * Networks of `network: 'egress'` sandboxes, and the host firewall rules that keep them apart.
 *
 * Each egress sandbox gets a bridge network of its own (a /29 cut from `egressSubnets`), whose Linux
 * bridge is named `sbx<12 hex digits of the id>`. Docker's own rules already drop traffic between two
 * bridges and NAT the rest to the outside; what they do not block is traffic to the host itself (a server
 * on 0.0.0.0 answers on every bridge's gateway address) nor to link-local addresses. One set of
 * rules matches every statebox bridge by its `sbx+` name prefix, so nothing is added or removed per
 * sandbox and a process killed half-way leaves no rule behind:
 *
 * - `INPUT -i sbx+ ! --ctstate ESTABLISHED,RELATED -j REJECT`: nothing a sandbox starts reaches the host;
 * - `DOCKER-USER -i sbx+ -o sbx+|docker+|br-+ -j REJECT`: nor another sandbox or Docker network;
 * - `DOCKER-USER -i sbx+ -d 169.254.0.0/16 -j REJECT`: nor link-local services (cloud metadata).
 *
 * The rules are checked (and inserted when missing) before every start of an egress container.
 */
export const BRIDGE_PREFIX = 'sbx';

const FIREWALL: readonly (readonly string[])[] = [
  [
    'INPUT',
    '-i',
    `${BRIDGE_PREFIX}+`,
    '-m',
    'conntrack',
    '!',
    '--ctstate',
    'ESTABLISHED,RELATED',
    '-j',
    'REJECT',
  ],
  ['DOCKER-USER', '-i', `${BRIDGE_PREFIX}+`, '-o', `${BRIDGE_PREFIX}+`, '-j', 'REJECT'],
  ['DOCKER-USER', '-i', `${BRIDGE_PREFIX}+`, '-o', 'docker+', '-j', 'REJECT'],
  ['DOCKER-USER', '-i', `${BRIDGE_PREFIX}+`, '-o', 'br-+', '-j', 'REJECT'],
  ['DOCKER-USER', '-i', `${BRIDGE_PREFIX}+`, '-d', '169.254.0.0/16', '-j', 'REJECT'],
];

/** A fixed environment for host tools: nothing from the caller's environment reaches them. */
export const HOST_TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } as const;

export function egressNetworkName(sandboxId: string): string {
  return `statebox-${sandboxId}`;
}

export function isEgressNetwork(networkMode: string): boolean {
  return /^statebox-sb-[0-9a-f]{16}$/.test(networkMode);
}

function bridgeName(sandboxId: string): string {
  return `${BRIDGE_PREFIX}${sandboxId.replace(/^sb-/, '').slice(0, 12)}`;
}

/** Inserts whichever of the firewall rules is missing. Throws with what to do when iptables fails. */
export async function ensureFirewall(): Promise<void> {
  for (const [chain, ...rule] of FIREWALL) {
    const check = await run('iptables', ['-w', '-C', chain!, ...rule], { env: HOST_TOOL_ENV }).then(
      () => true,
      () => false,
    );
    if (check) continue;
    try {
      await run('iptables', ['-w', '-I', chain!, '1', ...rule], { env: HOST_TOOL_ENV });
    } catch (error) {
      throw new Error(
        `cannot install the egress firewall rule \`iptables -I ${chain} ${rule.join(' ')}\` ` +
          `(${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}); ` +
          "network: 'egress' needs iptables on the Docker host and the daemon's DOCKER-USER chain (iptables enabled in dockerd)",
      );
    }
  }
}

type NetworkJson = { Name: string; IPAM?: { Config?: { Subnet?: string }[] | null } };

/** Creates the sandbox's own bridge network on a free /29 of `pool`; returns its name. */
export async function createEgressNetwork(
  client: DockerClient,
  sandboxId: string,
  pool: string,
  labels: Record<string, string>,
): Promise<string> {
  const name = egressNetworkName(sandboxId);
  const [base, bits] = parseCidr(pool);
  const blocks = 2 ** (29 - bits);
  for (let attempt = 0; ; attempt++) {
    const { body: networks } = await client.request<NetworkJson[]>('GET', '/networks');
    const taken = networks.flatMap((network) =>
      (network.IPAM?.Config ?? []).flatMap((config) => (config.Subnet?.includes('.') ? [config.Subnet] : [])),
    );
    let subnet = 0;
    for (let tries = 0; tries < 64; tries++) {
      const candidate = base + randomInt(blocks) * 8;
      if (!taken.some((other) => overlaps(candidate, 29, ...parseCidr(other)))) {
        subnet = candidate;
        break;
      }
    }
    if (subnet === 0) {
      throw new Error(`no free /29 left in egressSubnets ${pool}; destroy egress sandboxes or widen it`);
    }
    try {
      await client.request('POST', '/networks/create', {
        body: {
          Name: name,
          CheckDuplicate: true,
          Driver: 'bridge',
          EnableIPv6: false,
          IPAM: { Driver: 'default', Config: [{ Subnet: `${toIp(subnet)}/29`, Gateway: toIp(subnet + 1) }] },
          Options: {
            'com.docker.network.bridge.name': bridgeName(sandboxId),
            'com.docker.network.bridge.enable_icc': 'false',
            'com.docker.network.bridge.enable_ip_masquerade': 'true',
          },
          Labels: labels,
        },
      });
      return name;
    } catch (error) {
      // Another process took the same block between the listing and the create: pick again.
      const conflict =
        error instanceof DockerApiError && /overlap|already exists|in use/i.test(error.message);
      if (!conflict || attempt >= 8) throw error;
      if (/already exists/i.test(error.message)) return name;
    }
  }
}

export async function removeNetwork(client: DockerClient, name: string): Promise<void> {
  await client.request('DELETE', `/networks/${name}`, { accept: [404] }).catch(() => undefined);
}

function parseCidr(cidr: string): [number, number] {
  const [ip, bits] = cidr.split('/');
  const value = ip!.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const prefix = Number(bits ?? 32);
  const size = 2 ** (32 - prefix);
  return [Math.floor(value / size) * size, prefix];
}

function overlaps(a: number, aBits: number, b: number, bBits: number): boolean {
  const aEnd = a + 2 ** (32 - aBits);
  const bEnd = b + 2 ** (32 - bBits);
  return a < bEnd && b < aEnd;
}

function toIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
