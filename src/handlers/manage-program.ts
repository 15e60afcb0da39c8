/**
 * GET / PUT /api/program (SPEC 3, 5.1): the program document of a portal. PUT replaces the
 * whole document: every key must be present (a lost key is refused, not reset to its default),
 * the document is validated in full and stored as a new version; credits record the version that priced them,
 * so a change never re-prices deals that were already won.
 */
import { AppError } from './errors.js';
import { parseCompleteProgram, type Program } from '../rules/program.js';
import { currentProgram } from './program-versions.js';
import type { Deps } from './ports.js';

export interface ProgramAnswer {
  version: number;
  program: Program;
}

export async function getProgram(deps: Deps, portalId: number): Promise<ProgramAnswer> {
  return currentProgram(deps.store.programs, portalId, deps.clock.now());
}

export async function updateProgram(deps: Deps, portalId: number, document: unknown, userId: number): Promise<ProgramAnswer> {
  const parsed = parseCompleteProgram(document);
  if (!parsed.ok) {
    throw new AppError('bad_request', 'The program document is invalid', parsed.errors.map((e) => ({ path: e.path || 'body', message: e.message })));
  }
  const stored = await deps.store.programs.create(portalId, parsed.program, userId, deps.clock.now());
  deps.log.info({ portalId, version: stored.version, userId }, 'program.updated');
  return { version: stored.version, program: parsed.program };
}
