import { createServer } from 'node:http';

/**
 * The loopback payment processor of the relay bench (bench/cards.ts): plain HTTP on 127.0.0.1,
 * keep-alive, answers every POST with a small JSON authorisation after reading the body. A child
 * process of its own, so its CPU time is counted apart from the caller's and Custos's.
 */
const port = Number(process.env.PROCESSOR_PORT);
let n = 0;
const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  let size = 0;
  req.on('data', (chunk: Buffer) => (size += chunk.length));
  req.on('end', () => {
    n += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'authorised', id: `auth_${n}`, received: size }));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
