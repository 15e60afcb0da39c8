/**
 * GET /api/program/versions (SPEC 7, issue 12): the portal's program versions, newest first, at
 * most 50, each with what changed against the version before it (the diff rule's leaf changes).
 * One more version than shown is read, so the oldest listed one still gets its diff; version 1
 * has nothing before it and lists no changes. A portal that never read its program gets
 * version 1 (the default) first, as GET /api/program would.
 */
import type { ProgramVersionsAnswer } from '../contract/admin.js';
import { diffProgram } from '../rules/diff-program.js';
import { currentProgram } from './program-versions.js';
import type { Deps } from './ports.js';

export const MAX_PROGRAM_VERSIONS = 50;

export async function listProgramVersions(deps: Deps, portalId: number): Promise<ProgramVersionsAnswer> {
  await currentProgram(deps.store.programs, portalId, deps.clock.now());
  const rows = await deps.store.programs.list(portalId, MAX_PROGRAM_VERSIONS + 1);
  const shown = rows.slice(0, MAX_PROGRAM_VERSIONS);
  return {
    versions: shown.map((row, i) => {
      const previous = rows[i + 1];
      return {
        version: row.version,
        createdAt: row.createdAt.toISOString(),
        createdBy: row.createdBy,
        changes: previous ? diffProgram(previous.document, row.document) : [],
      };
    }),
  };
}
