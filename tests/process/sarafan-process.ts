/**
 * Sarafan as a real deployment in a child process (`node --import tsx server/main.ts`, one
 * process, so a SIGKILL kills all of it), configured against a sandbox portal running in the
 * test process: the sandbox's app credentials, its OAuth server, insecure portals allowed, a fixed
 * port and APP_BASE_URL, and the embedded store in a DATA_DIR or a PostgreSQL DATABASE_URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The child's SARAFAN_SECRET_KEY: the test opens the same store with it. */
export const SARAFAN_SECRET_KEY = 'process-test-secret-key-0123456789abcdef';

export interface SarafanProcessOptions {
  clientId: string;
  clientSecret: string;
  oauthUrl: string;
  store: { dataDir: string } | { databaseUrl: string };
  /** Failure guard for a start (the embedded store takes seconds to open on a busy machine). */
  startTimeoutMs?: number;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SarafanProcess {
  readonly url: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** The last lines the child wrote (stdout and stderr), for failure messages. */
  readonly output: string[] = [];
  readonly starts: number[] = [];

  constructor(
    readonly port: number,
    private readonly opts: SarafanProcessOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts the process and waits until `/readyz` answers 200 (store open, migrations applied). */
  async start(): Promise<void> {
    if (this.child) throw new Error('Sarafan is already running');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(this.port),
      APP_BASE_URL: this.url,
      B24_CLIENT_ID: this.opts.clientId,
      B24_CLIENT_SECRET: this.opts.clientSecret,
      B24_OAUTH_URL: this.opts.oauthUrl,
      B24_ALLOW_INSECURE_PORTALS: 'true',
      SARAFAN_SECRET_KEY,
      // The test follows the event path alone: no reconciliation during it.
      SARAFAN_RECONCILE_CRON: '0 0 1 1 *',
      LOG_LEVEL: 'warn',
      ...('dataDir' in this.opts.store ? { DATA_DIR: this.opts.store.dataDir } : { DATABASE_URL: this.opts.store.databaseUrl }),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.starts.push(child.pid ?? 0);
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.output.push(`[${child.pid}] ${line}`);
      if (this.output.length > 400) this.output.splice(0, this.output.length - 400);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let gone = false;
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        gone = true;
        this.output.push(`[${child.pid}] exited (${signal ?? code})`);
        if (this.child === child) this.child = null;
        resolve();
      }),
    );
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 180_000);
    for (;;) {
      if (gone) throw new Error(`Sarafan exited while starting:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`Sarafan did not become ready:\n${this.tail()}`);
      const ready = await fetch(`${this.url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) return;
      await sleep(100);
    }
  }

  /** SIGKILL, at once (synchronously); `dead()` resolves once the process is reaped. */
  kill(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGKILL');
  }

  dead(): Promise<void> {
    return this.exited;
  }

  /** SIGTERM: the graceful shutdown (HTTP, worker, store). */
  async stop(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }

  tail(lines = 60): string {
    return this.output.slice(-lines).join('\n');
  }
}
