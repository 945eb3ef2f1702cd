import { createEmulatorServer, type EmulatorServer, HttpError } from '@statebox/emulator-kit';

export type DaytonaRequestFields = { sdkVersion: string | null; source: string | null };
export type DaytonaServer = EmulatorServer<object, DaytonaRequestFields>;

/**
 * The HTTP side: Daytona's error body (NestJS: `{ statusCode, message, error }`, which the SDK turns into
 * `DaytonaNotFoundError` and friends), a bearer key on every call, and the SDK's headers in the request log.
 */
export function createDaytonaServer(apiKey: string): DaytonaServer {
  const server = createEmulatorServer<object, DaytonaRequestFields>({
    name: 'daytona',
    errorResponse: (error, { requestId }) => ({
      body: {
        statusCode: error.status,
        message: error.message,
        error: error.code ?? 'Error',
        code: error.code,
      },
      headers: { 'x-request-id': requestId },
    }),
    describeRequest: (c) => ({
      sdkVersion: c.req.header('x-daytona-sdk-version') ?? null,
      source: c.req.header('x-daytona-source') ?? null,
    }),
  });
  server.app.use('*', async (c, next) => {
    const path = new URL(c.req.url).pathname;
    if (path.startsWith('/api/') || path.startsWith('/toolbox/')) {
      if (c.req.header('authorization') !== `Bearer ${apiKey}`) {
        return server.errorResponse(c, new HttpError(401, 'Invalid API key', { code: 'Unauthorized' }));
      }
    }
    return next();
  });
  return server;
}
