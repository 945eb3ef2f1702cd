// The statebox Worker, as deployed: the routes, the registry, and the Sandbox Durable Object.
export { ContainerProxy, default, Sandbox, StateboxRegistry } from '@statebox/cloudflare/worker';
