/**
 * GET /api/session (SPEC 7): who the caller is and what the card tabs need of the program to
 * render limits and tier progress — for any authenticated user, so a manager's tab needs no
 * admin-only call. Tokens, secrets and the member_id never appear in it.
 */
import type { SessionAnswer } from '../contract/api.js';
import type { ApiCaller } from './authenticate-user.js';
import type { Deps } from './ports.js';
import { currentProgram } from './program-versions.js';

export async function readSession(deps: Deps, caller: ApiCaller): Promise<SessionAnswer> {
  const { installation } = caller;
  const { version, program } = await currentProgram(deps.store.programs, installation.id, deps.clock.now());
  return {
    userId: caller.userId,
    isAdmin: caller.isAdmin,
    portal: { domain: installation.domain, lang: installation.lang },
    program: {
      version,
      currency: program.currency,
      referralEnabled: program.referral.enabled,
      levels: program.referral.levels.length,
      tiers: {
        basis: program.tiers.basis,
        levels: program.tiers.levels.map((l) => ({ name: l.name, from: l.from, cashbackPercent: l.cashbackPercent })),
      },
      redemption: { maxPercentOfDeal: program.redemption.maxPercentOfDeal },
      expiryDays: program.expiry.days === 0 ? null : program.expiry.days,
    },
  };
}
