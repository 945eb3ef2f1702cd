import Anthropic from '@anthropic-ai/sdk';
import { ConfigError } from '@statebox/core';

/** Names under which `statebox session` finds (or creates) its agent and environment. */
export const AGENT_NAME = 'statebox';
export const ENVIRONMENT_NAME = 'statebox';

export type AppConfig = {
  apiKey: string;
  baseURL?: string;
  agentId?: string;
  environmentId?: string;
  model: string;
};

/**
 * The application side's config, from the environment: `ANTHROPIC_API_KEY` (required),
 * `ANTHROPIC_BASE_URL`, `STATEBOX_AGENT_ID`, `STATEBOX_ENVIRONMENT_ID`, `STATEBOX_MODEL`.
 */
export function appConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const apiKey = env.ANTHROPIC_API_KEY;
  if (!apiKey) {
    throw new ConfigError(
      'ANTHROPIC_API_KEY',
      'statebox session needs ANTHROPIC_API_KEY (or run `statebox demo`, which brings its own offline emulator).',
    );
  }
  return {
    apiKey,
    ...(env.ANTHROPIC_BASE_URL && { baseURL: env.ANTHROPIC_BASE_URL }),
    ...(env.STATEBOX_AGENT_ID && { agentId: env.STATEBOX_AGENT_ID }),
    ...(env.STATEBOX_ENVIRONMENT_ID && { environmentId: env.STATEBOX_ENVIRONMENT_ID }),
    model: env.STATEBOX_MODEL ?? 'claude-sonnet-4-6',
  };
}

export function appClient(config: AppConfig): Anthropic {
  return new Anthropic({ apiKey: config.apiKey, ...(config.baseURL && { baseURL: config.baseURL }) });
}

/** Reuses the configured (or same-named) agent and self-hosted environment, creating them on first use. */
export async function ensureAgentAndEnvironment(
  client: Anthropic,
  config: AppConfig,
): Promise<{ agentId: string; environmentId: string }> {
  let agentId = config.agentId;
  if (!agentId) {
    for await (const agent of client.beta.agents.list()) {
      if (agent.name === AGENT_NAME) {
        agentId = agent.id;
        break;
      }
    }
  }
  agentId ??= (
    await client.beta.agents.create({
      name: AGENT_NAME,
      model: config.model,
      system:
        'You work in a persistent sandbox. Your files in /workspace, and your shell, survive between sessions.',
      tools: [
        {
          type: 'agent_toolset_20260401',
          default_config: { enabled: true, permission_policy: { type: 'always_allow' } },
        },
      ],
    } as Parameters<typeof client.beta.agents.create>[0])
  ).id;
  let environmentId = config.environmentId;
  if (!environmentId) {
    for await (const environment of client.beta.environments.list()) {
      if (
        environment.name === ENVIRONMENT_NAME &&
        !environment.archived_at &&
        environment.config.type === 'self_hosted'
      ) {
        environmentId = environment.id;
        break;
      }
    }
  }
  environmentId ??= (
    await client.beta.environments.create({ name: ENVIRONMENT_NAME, config: { type: 'self_hosted' } })
  ).id;
  return { agentId, environmentId };
}
