import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL that can play "the database
 * is down": {@link LoopbackProxy.down} cuts every open connection and drops new
 * ones at once (what a client sees while PostgreSQL restarts), {@link LoopbackProxy.up}
 * forwards again. Loopback only.
 */
export interface LoopbackProxy {
  readonly url: string;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startLoopbackProxy(targetUrl: string): Promise<LoopbackProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 5432);
  const targetHost = target.hostname;
  let isUp = true;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A cut connection errors on both sides; the proxy itself must not crash.
    socket.on('error', () => socket.destroy());
  };

  const server = createServer((client) => {
    track(client);
    if (!isUp) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  return {
    url: url.toString(),
    down() {
      isUp = false;
      for (const socket of sockets) socket.destroy();
    },
    up() {
      isUp = true;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
