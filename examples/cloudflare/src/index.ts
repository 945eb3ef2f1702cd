// The statebox Worker, as deployed: the routes, the registry, and the Sandbox Durable Object.
export { ContainerProxy, Sandbox, StateboxRegistry } from '@statebox/cloudflare/worker';
export { default } from '@statebox/cloudflare/worker';
