import { createServer, type Server, type Socket } from 'node:net';

/** A TCP server on 127.0.0.1 that plays a broken clamd: `onConnection` decides what it does. */
export interface FakeClamd {
  readonly port: number;
  /** Bytes received, over every connection. */
  received(): number;
  close(): Promise<void>;
}

export async function startFakeClamd(onConnection: (socket: Socket, countBytes: (n: number) => void) => void): Promise<FakeClamd> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket, (n) => (bytes += n));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    received: () => bytes,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
