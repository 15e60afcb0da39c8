/**
 * Where the sandbox portal listens: a port another server holds fails the start with the
 * system's error (Express 5 hands it to the listen callback, which once resolved a server that
 * was not listening); a server the caller already listens on is served on, and stays the
 * caller's when the portal closes, so a test can know the portal's address before it composes
 * the app that talks to it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startSandbox } from '../../sandbox/server.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()));
});

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end('someone else'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('the sandbox portal’s server', () => {
  it('fails to start, naming EADDRINUSE, on a port another server holds', async () => {
    const { port } = await listening();
    await expect(startSandbox({ port, dataDir: null })).rejects.toThrow(/EADDRINUSE/);
  });

  it('serves on a server the caller listens on, and leaves it listening when it closes', async () => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;

    const first = await startSandbox({ port: 0, server, dataDir: null });
    expect(first.url).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`${first.url}/rest/server.time.json`)).status).not.toBe(404);
    await first.close();
    expect(server.listening).toBe(true);

    // Served again on the same server: the same address.
    const second = await startSandbox({ port: 0, server, dataDir: null });
    expect(second.url).toBe(first.url);
    expect(second.portal.listEntities('contact', { start: -1, select: ['ID'] }).rows).toEqual([]);
    await second.close();
    expect(server.listening).toBe(true);
  });
});
