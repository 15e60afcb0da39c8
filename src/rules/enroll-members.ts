/**
 * Enrolment (SPEC 5.1 `enrol`): who is given a referral code and link now. With
 * `onFirstWonDeal`, a client is enrolled when a deal of theirs is won and they have no code yet;
 * a code, once given, is kept (codes are never reused).
 */
import type { Program } from './program.js';

export function membersToEnroll(
  program: Program,
  deals: readonly { won: boolean; deleted: boolean; clientMemberId: number | null }[],
  members: readonly { id: number; code: string | null }[],
): number[] {
  if (!program.enrol.onFirstWonDeal) return [];
  const winners = new Set(deals.filter((d) => d.won && !d.deleted && d.clientMemberId !== null).map((d) => d.clientMemberId!));
  return members.filter((m) => winners.has(m.id) && m.code === null).map((m) => m.id);
}
