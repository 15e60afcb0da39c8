/**
 * A customer's browser opens a referral link, `GET /r/:portal/:code` (SPEC 3). Load the
 * installation by its public id and the member by code, decide where the visitor goes, record
 * the click for the funnel (SPEC 8), answer. The click keeps when, which code, a salted hash of
 * the visitor's address and a coarse user-agent class — no address, no user agent, no cookie.
 *
 * Known limits: the page's language is the install wizard's (else the portal's domain's), and
 * the company is named by the portal's domain (Sarafan stores no company name).
 * A retired code still leads to its member, as it still attributes referrals.
 */
import { createHmac } from 'node:crypto';
import { agentClassOf, isLinkShaped, landingLocation, portalLang } from '../rules/referral-landing.js';
import { DEFAULT_PROGRAM, parseProgram, type Program } from '../rules/program.js';
import type { Deps, Installation } from './ports.js';

export interface LinkVisit {
  publicId: string;
  code: string;
  /** The visitor's address as the server sees it (hashed, never stored). */
  ip: string;
  userAgent: string | undefined;
  /** False for a HEAD request: a link checker asking whether the link works has not clicked it. */
  record: boolean;
}

export type LinkAnswer =
  | { kind: 'redirect'; location: string }
  | { kind: 'page'; lang: 'ru' | 'en'; code: string; company: string }
  | { kind: 'not_found'; lang: 'ru' | 'en' };

/** The program in force, read only: a public route never creates the default version. */
async function programOf(deps: Deps, installation: Installation): Promise<Program> {
  const current = await deps.store.programs.current(installation.id);
  if (!current) return DEFAULT_PROGRAM;
  const parsed = parseProgram(current.document);
  return parsed.ok ? parsed.program : DEFAULT_PROGRAM;
}

export function visitorHash(salt: string, ip: string): string {
  return createHmac('sha256', salt).update(ip).digest('hex');
}

export async function followReferralLink(deps: Deps, visit: LinkVisit): Promise<LinkAnswer> {
  if (!isLinkShaped(visit.publicId, visit.code)) return { kind: 'not_found', lang: 'en' };
  const installation = await deps.store.installations.findByPublicId(visit.publicId);
  if (!installation || installation.status !== 'active') return { kind: 'not_found', lang: 'en' };
  const lang = portalLang(installation.domain, installation.lang);
  const member = await deps.store.members.findByCode(installation.id, visit.code);
  if (!member || member.code === null) return { kind: 'not_found', lang };
  const program = await programOf(deps, installation);

  const code = visit.code.toUpperCase();
  const location = landingLocation(program.landingUrl, code);
  const answer: LinkAnswer = location ? { kind: 'redirect', location } : { kind: 'page', lang, code, company: installation.domain };
  if (!visit.record) return answer;

  const agentClass = agentClassOf(visit.userAgent);
  await deps.store.clicks.record({
    portalId: installation.id,
    memberId: member.id,
    code,
    clickedAt: deps.clock.now(),
    visitorHash: visitorHash(installation.linkSalt, visit.ip),
    agentClass,
  });
  deps.log.info({ portalId: installation.id, memberId: member.id, agentClass, redirected: location !== null }, 'link.clicked');
  return answer;
}
