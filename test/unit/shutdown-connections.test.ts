// Shutdown closes the connections that carry no request: idle keep-alive ones, and ones that have
// not sent a request yet (a browser's preconnect, a client's spare socket), which Node's
// closeIdleConnections() leaves open. One such connection held a shutdown until its grace ran out.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { stubApp } from '../support/stub-app.ts';

async function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, closed };
}

describe('shutdown with connections open', () => {
  it('closes a connection that never sent a request and one left idle after a request, at once', async () => {
    const { app, dispose } = await stubApp({});
    const sockets: net.Socket[] = [];
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as net.AddressInfo;
      const silent = await connect(port);
      const used = await connect(port);
      sockets.push(silent.socket, used.socket);
      used.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((resolve) => used.socket.once('data', resolve));

      // Left open, the silent connection would hold the close indefinitely (in the server, until its grace).
      const outcome = await Promise.race([
        app.close().then(() => 'closed'),
        new Promise((resolve) => setTimeout(resolve, 5000, 'still open after 5 s')),
      ]);
      assert.equal(outcome, 'closed');
      await Promise.all([silent.closed, used.closed]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await dispose();
    }
  });
});
