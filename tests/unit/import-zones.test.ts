/**
 * The import directions of eslint.config.js, proven: a probe file placed (virtually) in each zone
 * imports a real module it must not, and ESLint's Node API has to report
 * import/no-restricted-paths; the imports a zone allows must pass. The imported modules exist,
 * because the rule silently skips an import it cannot resolve.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RULE = 'import/no-restricted-paths';

let eslint: ESLint;

beforeAll(async () => {
  eslint = new ESLint({ cwd: ROOT });
  // The first lint loads the parser and plugins (seconds on a busy machine): in the hook, not in a test.
  await eslint.lintText('export {};\n', { filePath: path.join(ROOT, 'server/warm-up.ts') });
});

/** The no-restricted-paths messages for a probe at `file` (relative to the root) importing `specifier`. */
async function zoneErrors(file: string, specifier: string): Promise<string[]> {
  const code = `import * as probe from '${specifier}';\nexport default probe;\n`;
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  if (!result) throw new Error('ESLint returned no result');
  const fatal = result.messages.filter((m) => m.fatal);
  if (fatal.length) throw new Error(`the probe does not parse: ${fatal.map((m) => m.message).join('; ')}`);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe('the sandbox imports nothing of the product', () => {
  it.each([
    ['sandbox/probe.ts', '../src/bitrix/crm-fields.js'],
    ['sandbox/probe.ts', '../src/handlers/ports.js'],
    ['sandbox/web/probe.ts', '../../server/config.js'],
    ['sandbox/probe.ts', '../server/demo/sandbox-demo.js'],
    ['sandbox/rest/probe.ts', '../../install/manifest.js'],
  ])('%s importing %s fails lint', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('The sandbox is a Bitrix24 emulator')]);
  });

  it('its own modules are fine', async () => {
    expect(await zoneErrors('sandbox/web/probe.ts', '../server.js')).toEqual([]);
  });
});

describe('the product does not import the sandbox, except server/demo', () => {
  it.each([
    ['server/main-probe.ts', '../sandbox/server.js'],
    ['server/routes/probe.ts', '../../sandbox/server.js'],
    ['server/jobs/probe.ts', '../../sandbox/types.js'],
    ['src/bitrix/probe.ts', '../../sandbox/portal.js'],
    ['src/store/probe.ts', '../../sandbox/server.js'],
    ['src/handlers/probe.ts', '../../sandbox/server.js'],
    ['src/rules/probe.ts', '../../sandbox/types.js'],
    ['install/probe.ts', '../sandbox/server.js'],
    ['client/probe.ts', '../sandbox/server.js'],
  ])('%s importing %s fails lint', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('Only server/demo')]);
  });

  it('server/demo may', async () => {
    expect(await zoneErrors('server/demo/probe.ts', '../../sandbox/server.js')).toEqual([]);
  });

  it('tests and the bench may (they drive the sandbox)', async () => {
    expect(await zoneErrors('tests/support/probe.ts', '../../sandbox/server.js')).toEqual([]);
    expect(await zoneErrors('bench/probe.ts', '../sandbox/server.js')).toEqual([]);
  });
});

describe('the layers point one way: rules <- handlers <- (bitrix, store) <- server', () => {
  it.each([
    ['src/rules/probe.ts', '../handlers/ports.js'],
    ['src/rules/probe.ts', '../store/open-store.js'],
    ['src/rules/probe.ts', '../../server/config.js'],
    ['src/rules/probe.ts', '../../install/manifest.js'],
  ])('%s importing %s fails lint (rules import nothing)', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('src/rules is pure')]);
  });

  it.each([
    ['src/handlers/probe.ts', '../store/open-store.js'],
    ['src/handlers/probe.ts', '../bitrix/gateway.js'],
    ['src/handlers/probe.ts', '../../server/compose.js'],
    ['src/handlers/probe.ts', '../../install/manifest.js'],
  ])('%s importing %s fails lint (handlers import rules and their ports only)', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('src/handlers imports only src/rules')]);
  });

  it.each([
    ['src/store/probe.ts', '../../server/config.js'],
    ['src/bitrix/probe.ts', '../../server/logger.js'],
  ])('%s importing %s fails lint (adapters never import the process layer)', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('Adapters never import the process layer')]);
  });

  it.each([
    ['src/contract/probe.ts', '../handlers/ports.js'],
    ['src/contract/probe.ts', '../store/open-store.js'],
    ['src/contract/probe.ts', '../bitrix/gateway.js'],
    ['src/contract/probe.ts', '../../server/config.js'],
    ['src/contract/probe.ts', '../../install/manifest.js'],
  ])('%s importing %s fails lint (the contract imports zod and rules only)', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([expect.stringContaining('src/contract is the API contract')]);
  });

  it('rules do not import the contract', async () => {
    expect(await zoneErrors('src/rules/probe.ts', '../contract/api.js')).toEqual([expect.stringContaining('src/rules is pure')]);
  });

  it.each([
    ['src/contract/probe.ts', '../rules/money.js'],
    ['src/contract/probe.ts', './api.js'],
    ['src/contract/probe.ts', 'zod'],
    ['src/handlers/probe.ts', '../contract/api.js'],
    ['server/routes/probe.ts', '../../src/contract/api.js'],
    ['client/src/probe.ts', '../../src/contract/api.js'],
    ['src/rules/probe.ts', './money.js'],
    ['src/handlers/probe.ts', './ports.js'],
    ['src/handlers/probe.ts', '../rules/money.js'],
    ['src/store/probe.ts', '../handlers/ports.js'],
    ['server/probe.ts', '../src/store/open-store.js'],
  ])('%s importing %s passes', async (file, specifier) => {
    expect(await zoneErrors(file, specifier)).toEqual([]);
  });
});
