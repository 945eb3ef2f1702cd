// A local stand-in for Cloudflare's egress/ingress sidecar (`cloudflare/proxy-everything`, pulled by
// wrangler from Docker Hub, which is out of reach here). It meets the contract workerd's
// container-client.c++ expects of the image, and does only the ingress half:
//   - started with `--http-egress-port P --http-ingress-address HOST:PORT --docker-gateway-cidr CIDR
//     --dns-enabled --tls-intercept [--disable-ipv6]` (the app container shares its network namespace);
//   - `PUT /egress {...}` answers 2xx (workerd's readiness probe);
//   - `GET /ca` answers a PEM;
//   - `CONNECT` with `X-Dst-Addr: 127.0.0.1:3000` tunnels to that address (400 while nothing listens,
//     which workerd retries).
// Not reproduced: outbound interception (TPROXY), DNS filtering and TLS interception, so a sandbox's
// `enableInternet: false` is not enforced by this sidecar.
import { createServer } from 'node:http';
import { connect } from 'node:net';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 && args[index + 1] ? args[index + 1] : fallback;
};
const [host, port] = option('--http-ingress-address', '0.0.0.0:39001').split(':');

// A syntactically valid placeholder certificate: nothing is intercepted, so nothing is signed with it.
const CA =
  '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUc3RhdGVib3gtbG9jYWwtZWdyZXNzMAoGCCqGSM49BAMC\n-----END CERTIFICATE-----\n';

const server = createServer((request, response) => {
  if (request.method === 'PUT' && request.url === '/egress') {
    request.resume();
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    return;
  }
  if (request.method === 'GET' && request.url === '/ca') {
    response.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(CA);
    return;
  }
  process.stderr.write(`statebox egress sidecar: unknown request ${request.method} ${request.url}\n`);
  response.writeHead(404).end(`unknown route ${request.method} ${request.url}`);
});

server.on('connect', (request, clientSocket, head) => {
  const target = String(request.headers['x-dst-addr'] ?? request.url ?? '');
  const separator = target.lastIndexOf(':');
  const targetHost = target.slice(0, separator);
  const targetPort = Number(target.slice(separator + 1));
  const upstream = connect(targetPort, targetHost);
  upstream.once('connect', () => {
    clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head?.length) upstream.write(head);
    upstream.pipe(clientSocket);
    clientSocket.pipe(upstream);
  });
  upstream.once('error', () => {
    if (!clientSocket.destroyed) clientSocket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
  });
  clientSocket.on('error', () => upstream.destroy());
  upstream.on('close', () => clientSocket.destroy());
});

server.listen(Number(port), host, () => {
  process.stdout.write(`statebox egress sidecar: ingress on ${host}:${port}\n`);
});
