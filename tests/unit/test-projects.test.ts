/**
 * The vitest projects cover the suite: every test file under tests/ belongs to exactly one
 * project, so running the projects one by one runs everything `npm test` runs.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import config from '../../vitest.config.js';

interface Project {
  test: { name: string; include: string[] };
}

/** The glob forms the config uses: `**` (any folders) and `*` (within one name). */
function globToRegExp(glob: string): RegExp {
  const source = glob
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === '**/' ? '(?:[^/]+/)*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

describe('vitest projects', () => {
  const projects = (config.test?.projects ?? []) as Project[];
  const files = readdirSync('tests', { recursive: true, encoding: 'utf8' })
    .map((f) => `tests/${f.split('\\').join('/')}`)
    .filter((f) => f.endsWith('.test.ts'))
    .sort();

  it('are unit, contract, http, sandbox, client and e2e', () => {
    expect(projects.map((p) => p.test.name)).toEqual(['unit', 'contract', 'http', 'sandbox', 'client', 'e2e']);
  });

  it('put every test file in exactly one project', () => {
    expect(files.length).toBeGreaterThan(30);
    const owners = files.map((file) => ({ file, projects: projects.filter((p) => p.test.include.some((g) => globToRegExp(g).test(file))).map((p) => p.test.name) }));
    expect(owners.filter((o) => o.projects.length !== 1)).toEqual([]);
  });
});
