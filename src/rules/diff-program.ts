/**
 * What changed between two program documents (GET /api/program/versions, the admin page's version
 * history): one change per leaf, named by its dotted path (`referral.levels.1.percent`). Arrays
 * are compared index by index, so removing the last level reads as `referral.levels.2` removed;
 * a key present on one side only is added (`from` absent) or removed (`to` absent). A value that
 * changes kind (null → object, number → array) is one change of the whole value, not a list of
 * its leaves, so `referee: null → { fixed: 500 }` reads as the admin did it.
 */

export interface ProgramChange {
  path: string;
  /** Absent: the key was added. */
  from?: unknown;
  /** Absent: the key was removed. */
  to?: unknown;
}

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

function sameKind(a: Container, b: Container): boolean {
  return Array.isArray(a) === Array.isArray(b);
}

function keysOf(value: Container): string[] {
  return Array.isArray(value) ? value.map((_, i) => String(i)) : Object.keys(value);
}

function at(value: Container, key: string): unknown {
  return Array.isArray(value) ? value[Number(key)] : value[key];
}

function has(value: Container, key: string): boolean {
  return Array.isArray(value) ? Number(key) < value.length : Object.hasOwn(value, key);
}

function walk(before: unknown, after: unknown, path: string, out: ProgramChange[]): void {
  if (isContainer(before) && isContainer(after) && sameKind(before, after)) {
    // Keys in the order of the document after the change, then the ones it lost.
    const keys = [...new Set([...keysOf(after), ...keysOf(before)])];
    for (const key of keys) {
      const child = path ? `${path}.${key}` : key;
      const inBefore = has(before, key);
      const inAfter = has(after, key);
      if (inBefore && inAfter) walk(at(before, key), at(after, key), child, out);
      else if (inAfter) out.push({ path: child, to: at(after, key) });
      else out.push({ path: child, from: at(before, key) });
    }
    return;
  }
  if (!Object.is(before, after)) out.push({ path, from: before, to: after });
}

/** Leaf changes from `before` to `after`, in document order; empty when they are equal. */
export function diffProgram(before: unknown, after: unknown): ProgramChange[] {
  const out: ProgramChange[] = [];
  walk(before, after, '', out);
  return out;
}
