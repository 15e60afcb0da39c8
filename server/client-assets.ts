/**
 * The built Vue client (client/, `npm run build:client`): its Vite manifest tells which files
 * each placement's entry loads. The frame route composes the page from it — the entry script,
 * the chunks it imports (preloaded), its stylesheets — and the assets are served under
 * /client/assets with content hashes and a year of caching.
 */
import express from 'express';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One entry per placement (client/vite.config.ts). */
export type ClientEntry = 'deal' | 'person' | 'main';

export interface EntryFiles {
  script: string;
  preload: string[];
  styles: string[];
}

export interface ClientAssets {
  /** Directory of the built client (holds `assets/` and `.vite/manifest.json`). */
  dir: string;
  entry(name: ClientEntry): EntryFiles;
}

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  css?: string[];
}
type Manifest = Record<string, ManifestChunk>;

/** dist/client beside the project's sources, from server/ (tsx) and from dist/server/ (build). */
export function defaultClientDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '../..') : path.resolve(here, '..');
  return path.join(root, 'dist', 'client');
}

export class ClientNotBuilt extends Error {
  constructor(dir: string) {
    super(`The Vue client is not built in ${dir}: run "npm run build:client" (npm start builds it when needed)`);
    this.name = 'ClientNotBuilt';
  }
}

function entryKey(manifest: Manifest, name: ClientEntry): string {
  const key = Object.keys(manifest).find((k) => manifest[k]?.isEntry && k.endsWith(`src/entries/${name}.ts`));
  if (!key) throw new Error(`The client manifest has no entry "${name}"`);
  return key;
}

/** Reads the manifest once; throws ClientNotBuilt when there is none. */
export function loadClientAssets(dir = defaultClientDir()): ClientAssets {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(dir, '.vite', 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    throw new ClientNotBuilt(dir);
  }
  const cache = new Map<ClientEntry, EntryFiles>();
  return {
    dir,
    entry(name) {
      const known = cache.get(name);
      if (known) return known;
      const key = entryKey(manifest, name);
      const styles = new Set<string>();
      const preload = new Set<string>();
      const seen = new Set<string>();
      const walk = (k: string): void => {
        if (seen.has(k)) return;
        seen.add(k);
        const chunk = manifest[k];
        if (!chunk) return;
        for (const css of chunk.css ?? []) styles.add(css);
        for (const imported of chunk.imports ?? []) {
          const file = manifest[imported]?.file;
          if (file) preload.add(file);
          walk(imported);
        }
      };
      walk(key);
      const files = { script: manifest[key]!.file, preload: [...preload], styles: [...styles] };
      cache.set(name, files);
      return files;
    },
  };
}

/**
 * GET /client/assets/*: hashed names, so cached for a year and never revalidated. The directory
 * is asked for on each request (the client may be built after the server started).
 */
export function clientAssetRoutes(dir: () => string | null): express.Router {
  const router = express.Router();
  const handlers = new Map<string, express.Handler>();
  router.use('/client/assets', (req, res) => {
    const root = dir();
    if (!root) {
      res.status(404).end();
      return;
    }
    let serve = handlers.get(root);
    if (!serve) {
      serve = express.static(path.join(root, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: true, dotfiles: 'deny' });
      handlers.set(root, serve);
    }
    // Anything not in assets/ is a plain 404 (never the app's other routes, never a directory up).
    serve(req, res, () => {
      res.status(404).type('text').send('Not found');
    });
  });
  return router;
}
