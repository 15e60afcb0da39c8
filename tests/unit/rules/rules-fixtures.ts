import { parseProgram, type Program } from '../../../src/rules/program.js';

export const DAY = 86_400_000;
export const T0 = new Date('2026-03-01T09:00:00Z');

export function at(days: number, ms = 0): Date {
  return new Date(T0.getTime() + days * DAY + ms);
}

/** A valid program from a partial document; fails the test when the document is invalid. */
export function program(doc: Record<string, unknown> = {}): Program {
  const result = parseProgram(doc);
  if (!result.ok) throw new Error(`invalid test program: ${JSON.stringify(result.errors)}`);
  return result.program;
}
