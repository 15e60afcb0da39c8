/**
 * Branches add migrations in parallel (each its own number), so two of them can create objects
 * of the same name; the second then fails on every fresh store ("relation … already exists"),
 * which no single branch's tests see. Each index and table is created once across all migrations.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '../../../src/store/migrations');

describe('the migrations', () => {
  it('create each index and table name once', () => {
    const seen = new Map<string, string>();
    const twice: string[] = [];
    for (const file of readdirSync(DIR).filter((f) => f.endsWith('.sql')).sort()) {
      const sql = readFileSync(path.join(DIR, file), 'utf8');
      for (const m of sql.matchAll(/CREATE\s+(?:UNIQUE\s+)?(INDEX|TABLE)\s+(?:IF\s+NOT\s+EXISTS\s+)?"?([\w.]+)"?/gi)) {
        const name = m[2]!.toLowerCase();
        const first = seen.get(name);
        if (first) twice.push(`${name}: ${first} and ${file}`);
        else seen.set(name, file);
      }
    }
    expect(twice).toEqual([]);
  });
});
