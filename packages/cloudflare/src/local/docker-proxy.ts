import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';

/**
 * A Docker Engine API proxy on a unix socket, for workerd only. Debian's docker.io 20.10 answers
 * `GET /networks/bridge` without `IPAM.Config[0].Gateway`, and workerd binds its container egress
 * listener on that address ("Container ingress proxy is not running" otherwise). The proxy adds the
 * subnet's first address as the gateway and passes every other request through untouched.
 */
export async function startDockerProxy(socketPath: string, upstreamSocket: string): Promise<Server> {
  const server = createServer((request, response) => {
    const isBridgeInspect =
      request.method === 'GET' && /^(\/v[\d.]+)?\/networks\/bridge(\?|$)/.test(request.url ?? '');
    const upstream = httpRequest(
      { socketPath: upstreamSocket, path: request.url, method: request.method, headers: request.headers },
      (upstreamResponse) => {
        if (!isBridgeInspect || upstreamResponse.statusCode !== 200) {
          response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
          upstreamResponse.pipe(response);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamResponse.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamResponse.on('end', () => {
          const network = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] };
          };
          const config = network.IPAM?.Config?.[0];
          if (config?.Subnet && !config.Gateway) {
            const [address] = config.Subnet.split('/');
            const octets = address!.split('.');
            octets[3] = '1';
            config.Gateway = octets.join('.');
          }
          const body = JSON.stringify(network);
          const headers = { ...upstreamResponse.headers, 'content-length': `${Buffer.byteLength(body)}` };
          delete headers['transfer-encoding'];
          response.writeHead(200, headers);
          response.end(body);
        });
      },
    );
    upstream.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502);
      response.end(String(error));
    });
    request.pipe(upstream);
  });
  // Attach and exec streams upgrade the connection; pass those bytes through raw.
  server.on('upgrade', (request, socket, head) => {
    const upstream = connect(upstreamSocket, () => {
      const headers = Object.entries(request.headers)
        .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(', ') : value}`)
        .join('\r\n');
      upstream.write(`${request.method} ${request.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return server;
}
