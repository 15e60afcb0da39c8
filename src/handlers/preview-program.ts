/**
 * POST /api/program/preview (SPEC 3, 7): what a program document — typically the one an admin is
 * editing, not yet saved — would pay for a hypothetical won deal. Validated like PUT (the
 * complete document), priced by the loop's own rule, and nothing is stored. A deal in another
 * currency than the program's is converted with the portal's rates: the ones the loop cached
 * (refreshed daily), else read once through the CRM port and cached the same way.
 */
import { AppError } from './errors.js';
import { previewDeal, type PreviewDeal, type PreviewResult } from '../rules/preview-deal.js';
import { parseCompleteProgram, type Program } from '../rules/program.js';
import { portalRates } from './program-keys.js';
import type { Deps, Installation } from './ports.js';

export interface ProgramPreview {
  program: Program;
  deal: PreviewDeal;
  result: PreviewResult;
}

export async function previewProgram(deps: Deps, installation: Installation, document: unknown, deal: PreviewDeal): Promise<ProgramPreview> {
  const parsed = parseCompleteProgram(document);
  if (!parsed.ok) {
    const details = parsed.errors.map((e) => ({ path: e.path ? `program.${e.path}` : 'program', message: e.message }));
    throw new AppError('bad_request', 'The program document is invalid', details);
  }
  const now = deps.clock.now();
  const rates = deal.currency === parsed.program.currency ? null : await portalRates(deps, installation);
  return { program: parsed.program, deal, result: previewDeal(parsed.program, deal, now, rates) };
}
