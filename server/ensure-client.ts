/**
 * `npm start` on a fresh clone: builds the Vue client when dist/client is missing or older than
 * its sources (client/, the shared contract, the rules it imports), so the demo always serves
 * the current client. Production builds it with `npm run build` and never runs this.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = path.join(root, 'dist', 'client', '.vite', 'manifest.json');
const SOURCES = ['client', 'src/contract', 'src/rules', 'package-lock.json'];

function newest(p: string): number {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let latest = st.mtimeMs;
  for (const name of readdirSync(p)) {
    if (name === 'node_modules' || name.startsWith('.b24ui')) continue;
    latest = Math.max(latest, newest(path.join(p, name)));
  }
  return latest;
}

export function clientIsStale(): boolean {
  if (!existsSync(manifest)) return true;
  const built = statSync(manifest).mtimeMs;
  return SOURCES.some((s) => newest(path.join(root, s)) > built);
}

export async function ensureClient(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<void> {
  if (!clientIsStale()) return;
  log('sarafan: building the Vue client (dist/client)…');
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'client', 'vite.config.ts'), logLevel: 'warn' });
  log('sarafan: the Vue client is built');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await ensureClient();
}
