/**
 * POST /api/program/preview (SPEC 3, 7): what a program document — typically the one an admin is
 * editing, not yet saved — would pay for a hypothetical won deal. Validated like PUT (the
 * complete document), priced by the loop's own rule, and nothing is stored or sent anywhere.
 */
import { AppError } from './errors.js';
import { previewDeal, type PreviewDeal, type PreviewResult } from '../rules/preview-deal.js';
import { parseCompleteProgram, type Program } from '../rules/program.js';
import type { Deps } from './ports.js';

export interface ProgramPreview {
  program: Program;
  deal: PreviewDeal;
  result: PreviewResult;
}

export function previewProgram(deps: Pick<Deps, 'clock'>, document: unknown, deal: PreviewDeal): ProgramPreview {
  const parsed = parseCompleteProgram(document);
  if (!parsed.ok) {
    const details = parsed.errors.map((e) => ({ path: e.path ? `program.${e.path}` : 'program', message: e.message }));
    throw new AppError('bad_request', 'The program document is invalid', details);
  }
  return { program: parsed.program, deal, result: previewDeal(parsed.program, deal, deps.clock.now()) };
}
