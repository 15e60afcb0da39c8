/**
 * The schema's messages (src/rules/program.ts, in English because the server answers them too)
 * as `settings.errors.*` keys with their parameters, so a Russian admin reads them in Russian.
 * A message not listed here is shown as it came.
 */
const TABLE: [RegExp, string, (m: RegExpExecArray) => Record<string, string>][] = [
  [/^must be more than (.+)$/, 'gt', (m) => ({ n: m[1]! })],
  [/^must be at most (\d+) characters$/, 'maxLength', (m) => ({ n: m[1]! })],
  [/^must be at most (.+)$/, 'lte', (m) => ({ n: m[1]! })],
  [/^must be at least (.+)$/, 'gte', (m) => ({ n: m[1]! })],
  [/^must have at most (\d+) decimal places$/, 'places', (m) => ({ n: m[1]! })],
  [/^must be an amount with at most (\d+) decimal places$/, 'places', (m) => ({ n: m[1]! })],
  [/^must have exactly one of "percent" or "fixed"$/, 'reward', () => ({})],
  [/^must be upper-case: "(.*)"$/, 'upper', (m) => ({ value: m[1]! })],
  [/^must be up to 6 upper-case Latin letters or digits$/, 'prefix', () => ({})],
  [/^must list at least one level$/, 'minLevels', () => ({})],
  [/^must list at most (\d+) levels$/, 'maxLevels', (m) => ({ n: m[1]! })],
  [/^must not be empty$/, 'empty', () => ({})],
  [/^must be a whole number of deals$/, 'wholeDeals', () => ({})],
  [/^must be greater than the previous level's (.+)$/, 'increasing', (m) => ({ n: m[1]! })],
  [/^duplicates another level's name "(.*)"$/, 'duplicate', (m) => ({ name: m[1]! })],
  [/^must be a 3-letter upper-case currency code/, 'currency', () => ({})],
  [/^must be an http\(s\) URL$/, 'url', () => ({})],
  [/^is required when cashback is enabled and there are no tiers$/, 'cashbackPercent', () => ({})],
  [/^is required$/, 'required', () => ({})],
  [/^is not a known key$/, 'unknownKey', () => ({})],
  [/expected (number|int)/i, 'number', () => ({})],
];

export function errorKey(message: string): { key: string; params: Record<string, string> } | null {
  for (const [re, key, params] of TABLE) {
    const m = re.exec(message);
    if (m) return { key: `settings.errors.${key}`, params: params(m) };
  }
  return null;
}
