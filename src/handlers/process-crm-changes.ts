/**
 * The referral loop (SPEC 5, 6): a batch of CRM changes of one portal, as queued from ONCRM*
 * events and reconciliation, turned into referrals, ledger entries and CRM projections in three
 * phases, each set-based — a handful of queries and requests per batch, not per deal:
 *
 * 1. Read the changed entities through the CRM port (events carry only the ID, reference §4.2),
 *    and load what Sarafan knows of them: members, previous deal states, active referrals.
 * 2. Attribution: referral codes and manager-picked referrers are resolved and checked
 *    (src/rules/attribute-referral: self-referral — same record, or a phone or e-mail shared
 *    (src/rules/contact-identity) — cycles, existing customers, the backfilled history included),
 *    first attribution wins; each new referral or rejection queues its timeline comments.
 * 3. Money, in one transaction under per-client advisory locks: the affected clients' deals, their
 *    referrals, referrer chains and ledger entries are loaded, priced and settled by the pure rules
 *    (rewards, settle: the net invariant), and the difference is appended to the ledger together
 *    with the deal states, the enrolment of first-time winners, a durable `crm.project` job and
 *    the feedback messages of the reward entries (enqueue-feedback.ts: comments, notification).
 *    Bonus redeemed on a deal that is now lost or deleted is returned in the same append
 *    (src/rules/redemption.ts), from the deal's entries loaded under the lock.
 * 4. The projections that job owes are written at once (the job stays as the guarantee that a
 *    crash or a failed write is retried until the CRM equals the ledger).
 *
 * Duplicated, reordered and concurrent events are harmless: settling is a pure function of the
 * state loaded under the lock, and idempotency keys make two workers planning from one snapshot
 * write once. Program keys applied on the way (SPEC 5.1): a deal in another currency is converted
 * with the portal's rates (rate fixed on first win, recorded on the entries); referral rewards
 * meet the referrer's monthly cap in the portal's time zone (the part over it recorded as
 * `capped`); reversals follow the overspend policy (clamp records a `shortfall`); referrers'
 * milestone coupons follow their qualified referrals (helpers in program-keys.ts). The portal's
 * zone and rates are read through the CRM port with the batch and cached per portal for a day.
 * Known limit: deals without a contact or lead have no referee and pay nothing.
 */
import { checkReferral, type PersonRef } from '../rules/attribute-referral.js';
import { generateCode, normalizeCode } from '../rules/codes.js';
import { sharesContactPoint, type ContactPoints } from '../rules/contact-identity.js';
import { membersToEnroll } from '../rules/enroll-members.js';
import type { Projection } from '../rules/project-to-crm.js';
import { capReferrerMonth, monthOf, type CappedEntry } from '../rules/cap-referrer-month.js';
import { clampOverspend } from '../rules/clamp-overspend.js';
import { toMinor } from '../rules/money.js';
import { dealAcceptsRedemption, redemptionReturns } from '../rules/redemption.js';
import { settleDeal, type PlannedEntry } from '../rules/settle-deal.js';
import { expiresAtFor } from '../rules/expiry.js';
import { enqueueFeedback, type FeedbackItem } from './enqueue-feedback.js';
import { currentProgram, programVersion, type LoadedProgram } from './program-versions.js';
import {
  projectionKey,
  type CrmDeal,
  type CrmEntity,
  type CrmPerson,
  type CrmPort,
  type DealState,
  type Deps,
  type FxUsed,
  type Installation,
  type LedgerEntry,
  type Member,
  type NewLedgerEntry,
  type PortalSettings,
  type Referral,
  type ReferralSource,
  type TxRepos,
} from './ports.js';
import { capMonths, monthKey, priceOne, requeueCappedDeals, SettingsCache, SettingsNeeded, settleCoupons } from './program-keys.js';
import { writeProjections } from './write-projections.js';

export interface CrmChange {
  entity: CrmEntity;
  id: number;
  /** The event said the entity was deleted (it is then not read). */
  deleted: boolean;
}

export interface ChangeOutcome {
  entity: CrmEntity;
  id: number;
  ok: boolean;
  error?: string;
}

/** Deepest referrer chain walked for multi-level programs and cycle checks. */
const MAX_CHAIN = 20;
const CODE_ATTEMPTS = 8;

/** A deal of the batch: its facts as read, or null when it is gone. */
interface DealInput {
  id: number;
  facts: CrmDeal | null;
}

/** A referral claim carried by an entity: a code typed in, or a referrer picked by a manager. */
interface Claim {
  referee: PersonRef | null;
  code: string | null;
  referrerRef: PersonRef | null;
  source: ReferralSource;
  sourceRef: string;
  /** Deals: the referrer this claim names, shown on a deal without a client. */
  dealId?: number;
}

const refKey = (r: PersonRef): string => `${r.entity}:${r.id}`;

/** Members indexed by the contact and the lead they are bound to. */
class MemberIndex {
  private readonly byRef = new Map<string, Member>();
  add(members: Member[]): void {
    for (const m of members) {
      if (m.contactId !== null) this.byRef.set(`contact:${m.contactId}`, m);
      if (m.leadId !== null) this.byRef.set(`lead:${m.leadId}`, m);
    }
  }
  get(ref: PersonRef | null): Member | null {
    return ref ? (this.byRef.get(refKey(ref)) ?? null) : null;
  }
}

export async function processCrmChanges(deps: Deps, portalId: number, changes: CrmChange[]): Promise<ChangeOutcome[]> {
  const { store, log } = deps;
  const installation = await store.installations.get(portalId);
  if (!installation || installation.status === 'uninstalled' || !installation.tokens) {
    log.info({ portalId, changes: changes.length }, 'crm.changes_ignored_not_installed');
    return changes.map((c) => ({ entity: c.entity, id: c.id, ok: true }));
  }
  const now = deps.clock.now();
  const current = await currentProgram(store.programs, portalId, now);
  const crm = deps.crm.forInstallation(installation);

  // ---- 1. read and load -----------------------------------------------------------------------
  const unique = dedupe(changes);
  const toRead = unique.filter((c) => !c.deleted);
  // The portal's time zone and rates (cached a day per portal) ride along in the same batch when
  // the program in force needs the zone, or the portal's cache has gone stale.
  const settings = new SettingsCache(await store.portalSettings.get(portalId), now);
  const readDeals = toRead.filter((c) => c.entity === 'deal').map((c) => c.id);
  const read = await crm.read({
    deals: readDeals,
    people: toRead.filter((c) => c.entity !== 'deal').map((c) => ({ entity: c.entity as PersonRef['entity'], id: c.id })),
    settings: readDeals.length > 0 && settings.wantedWith(current.program),
  });
  await settings.take(deps, portalId, read.settings);
  const outcomes: ChangeOutcome[] = [];
  const deals: DealInput[] = [];
  const people: CrmPerson[] = [];
  const shown = new Map<string, Projection>();
  for (const change of unique) {
    const answer = change.deleted ? ({ status: 'not_found' } as const) : change.entity === 'deal' ? read.deals.get(change.id)! : read.people.get(projectionKey(change.entity, change.id))!;
    // What is read is processed as one batch below: a failure there fails the whole run.
    if (answer.status === 'found') {
      shown.set(projectionKey(change.entity, change.id), answer.record.shown);
      if (change.entity === 'deal') deals.push({ id: change.id, facts: answer.record as CrmDeal });
      else people.push(answer.record as CrmPerson);
      outcomes.push({ entity: change.entity, id: change.id, ok: true });
    } else if (answer.status === 'not_found') {
      // Deleted (or never visible to the installer): a deal is then treated as deleted so its
      // rewards are reversed; a person has nothing to contribute.
      if (change.entity === 'deal') deals.push({ id: change.id, facts: null });
      outcomes.push({ entity: change.entity, id: change.id, ok: true });
    } else {
      outcomes.push({ entity: change.entity, id: change.id, ok: false, error: answer.error });
    }
  }

  const index = new MemberIndex();
  const previous = new Map((await store.deals.getMany(portalId, deals.map((d) => d.id))).map((d) => [d.dealId, d]));
  index.add(await store.members.findByEntities(portalId, peopleOf(people, deals)));
  const actives = await store.referrals.activeForMany(portalId, memberIdsOf(index, people, deals));

  // Events are unordered and may be lost (reference §4.4): a deal's WON event can come before the
  // event of its contact that carries the referral code — and the referral would then be refused
  // as "already a customer". So the client of a newly won deal without a referral is read in the
  // same run. Only on that transition: the echoes of Sarafan's own writes stay one read.
  const newWinClients = new Map<string, PersonRef>();
  for (const { id, facts } of deals) {
    if (facts?.semantic !== 'S' || !facts.client || shown.has(refKey(facts.client)) || previous.get(id)?.won) continue;
    const member = index.get(facts.client);
    if (member && actives.has(member.id)) continue;
    newWinClients.set(refKey(facts.client), facts.client);
  }
  // A won deal in another currency needs today's rates unless its rate is fixed already.
  const needRates = !settings.fresh && deals.some(({ id, facts }) => facts?.semantic === 'S' && facts.currency && facts.currency !== current.program.currency && previous.get(id)?.fxCurrency !== facts.currency);
  if (newWinClients.size || needRates) {
    const extra = await crm.read({ deals: [], people: [...newWinClients.values()], settings: needRates });
    await settings.take(deps, portalId, extra.settings);
    for (const answer of extra.people.values()) {
      if (answer.status !== 'found') continue; // a client we cannot read has no code to contribute
      shown.set(refKey(answer.record), answer.record.shown);
      people.push(answer.record);
    }
  }
  await followConversions(deps, portalId, index, people, deals);

  // ---- 2. attribution -------------------------------------------------------------------------
  // What Sarafan last wrote to the entities that show a referrer, read once for the claims and the projections.
  const writtenKeys = [
    ...people.filter((p) => p.referrer).map((p) => ({ entity: p.entity as CrmEntity, entityId: p.id })),
    ...deals.filter((d) => d.facts?.referrer).map((d) => ({ entity: 'deal' as CrmEntity, entityId: d.id })),
  ];
  const written = writtenKeys.length ? await store.projections.getMany(portalId, writtenKeys) : new Map<string, Projection>();
  const claims = claimsOf(people, deals, written);
  const touchedMembers = new Set<number>();
  const dealReferrers = new Map<number, PersonRef | null>();
  for (const p of people) {
    const m = index.get(p);
    if (m) touchedMembers.add(m.id);
  }
  if (claims.length) {
    const known = new Map(people.map((p) => [refKey(p), p]));
    await attribute(deps, crm, portalId, now, claims, index, actives, touchedMembers, dealReferrers, known);
  }

  // ---- 3. money ----------------------------------------------------------------------------
  // The client of each deal: a won deal's client (or one with a claim) becomes a member.
  const needClient = deals.filter((d) => d.facts?.client && !index.get(d.facts.client) && (d.facts.semantic === 'S' || d.facts.refCode !== null || d.facts.referrer !== null));
  if (needClient.length) index.add(await store.members.ensureMany(portalId, needClient.map((d) => d.facts!.client!), now));

  // Echoes of Sarafan's own writes (and edits of fields the ledger does not read) leave a deal as
  // recorded: nothing to settle, so they skip the money transaction — a burst's echoes are two
  // thirds of its events. Their projections are still compared below (a hand-edited field is
  // put back).
  // Not skipped: deals a monthly cap may owe freed room (they are re-queued unchanged), deals of
  // an older program version (whose cap may apply), and won deals whose currency could not be
  // converted yet (the rates may be there now).
  const mayOweMore = (prev: DealState | undefined) =>
    current.program.referral.capPerReferrerMonth !== null ||
    (prev?.programVersion != null && prev.programVersion !== current.version) ||
    (prev?.won === true && prev.currency !== current.program.currency && prev.fxRate == null);
  const unchanged = deals.filter((d) => !mayOweMore(previous.get(d.id)) && sameAsRecorded(d, previous.get(d.id), index, actives)).map((d) => d.id);
  const skipped = new Set(unchanged);
  const toSettle = skipped.size ? deals.filter((d) => !skipped.has(d.id)) : deals;
  const settle = () => store.transaction((tx) => settleDeals(deps, tx, installation, current, now, toSettle, previous, index, settings.value));
  let settled: Settled | null = null;
  if (toSettle.length || !unchanged.length) {
    try {
      settled = await settle();
    } catch (e) {
      // A deal priced by an older, capped version met a portal whose zone was never read (the
      // program in force has no cap): read it now — never inside the transaction — and settle again.
      if (!(e instanceof SettingsNeeded) || settings.value) throw e;
      await settings.take(deps, portalId, (await crm.read({ deals: [], people: [], settings: true })).settings);
      if (!settings.value) throw e;
      settled = await settle();
    }
  }
  for (const id of settled?.touchedMembers ?? []) touchedMembers.add(id);

  // ---- 4. projections (the durable job enqueued above is the guarantee) ------------------------
  const targets = { memberIds: [...touchedMembers], dealIds: [...(settled?.touchedDeals ?? []), ...unchanged] };
  // What this run loaded or settled is what the projections compare against: not read again.
  const knownDeals = new Map<number, DealState>(settled?.dealStates);
  const knownReferrals = new Map<number, Referral | null>(settled?.clientReferrals);
  for (const id of unchanged) {
    const state = knownDeals.get(id) ?? previous.get(id)!;
    knownDeals.set(id, state);
    if (state.clientMemberId !== null && !knownReferrals.has(state.clientMemberId)) knownReferrals.set(state.clientMemberId, actives.get(state.clientMemberId) ?? null);
  }
  try {
    const { failed } = await writeProjections(deps, installation, targets, {
      shown,
      dealReferrers,
      dealEntries: settled?.dealEntries,
      deals: knownDeals,
      clientReferrals: knownReferrals,
      projections: { keys: new Set(writtenKeys.map((k) => projectionKey(k.entity, k.entityId))), values: written },
    });
    if (!failed.memberIds.length && !failed.dealIds.length) {
      // The job's key is this run's own: nothing else can have been merged into it.
      if (settled) await store.jobs.completeQueued(portalId, 'crm.project', settled.jobKey, deps.clock.now());
    } else if (unchanged.length) {
      await deferProjections(deps, portalId, failed);
    }
  } catch (e) {
    log.warn({ portalId, error: e instanceof Error ? e.message : String(e) }, 'crm.projections_deferred');
    if (unchanged.length) await deferProjections(deps, portalId, { memberIds: settled ? [] : targets.memberIds, dealIds: unchanged });
  }
  return outcomes;
}

/**
 * A deal whose facts are those Sarafan recorded, with the same referral: settling it again would
 * append nothing (settling is a pure function of these facts and the ledger).
 */
function sameAsRecorded(d: DealInput, prev: DealState | undefined, index: MemberIndex, actives: Map<number, Referral>): boolean {
  const f = d.facts;
  if (!f || !prev || prev.deleted) return false;
  const client = index.get(f.client)?.id ?? null;
  return (
    f.stageId === prev.stageId &&
    f.semantic === prev.stageSemantic &&
    f.amount === prev.amount &&
    (f.currency === '' || f.currency === prev.currency) &&
    f.categoryId === prev.categoryId &&
    client === prev.clientMemberId &&
    (prev.referralId !== null || client === null || !actives.has(client))
  );
}

/** Projections no run job covers (the deals that skipped settlement), retried by a job of their own. */
async function deferProjections(deps: Deps, portalId: number, targets: { memberIds: number[]; dealIds: number[] }): Promise<void> {
  const now = deps.clock.now();
  await deps.store.jobs.enqueue(
    {
      portalId,
      kind: 'crm.project',
      key: `run:${Buffer.from(deps.randomBytes(8)).toString('hex')}`,
      payload: { members: targets.memberIds, deals: targets.dealIds },
      runAt: new Date(now.getTime() + PROJECTION_GRACE_MS),
    },
    now,
  );
}

function dedupe(changes: CrmChange[]): CrmChange[] {
  const byKey = new Map<string, CrmChange>();
  for (const c of changes) {
    const key = projectionKey(c.entity, c.id);
    const seen = byKey.get(key);
    // A later "deleted" does not win over a read: reading tells the truth either way.
    byKey.set(key, seen ? { ...c, deleted: seen.deleted && c.deleted } : c);
  }
  return [...byKey.values()];
}

/** Every person the batch refers to: changed people, deals' clients, leads they came from. */
function peopleOf(people: CrmPerson[], deals: DealInput[]): PersonRef[] {
  const refs: PersonRef[] = [];
  for (const p of people) {
    refs.push({ entity: p.entity, id: p.id });
    if (p.leadId) refs.push({ entity: 'lead', id: p.leadId });
  }
  for (const { facts } of deals) {
    if (facts?.client) refs.push(facts.client);
    if (facts?.leadId) refs.push({ entity: 'lead', id: facts.leadId });
  }
  return refs;
}

function memberIdsOf(index: MemberIndex, people: CrmPerson[], deals: DealInput[]): number[] {
  return peopleOf(people, deals)
    .map((r) => index.get(r)?.id)
    .filter((id): id is number => id !== undefined);
}

/**
 * A contact converted from a lead (its own or its deal's LEAD_ID) takes over the lead's member,
 * keeping code, referral and balance (SPEC 5). Rare, so one statement per conversion.
 */
async function followConversions(deps: Deps, portalId: number, index: MemberIndex, people: CrmPerson[], deals: DealInput[]): Promise<void> {
  const pairs: { contact: PersonRef; leadId: number }[] = [];
  for (const p of people) if (p.entity === 'contact' && p.leadId) pairs.push({ contact: p, leadId: p.leadId });
  for (const { facts } of deals) if (facts?.client?.entity === 'contact' && facts.leadId) pairs.push({ contact: facts.client, leadId: facts.leadId });
  const missingLeads = pairs.filter((p) => !index.get(p.contact) && !index.get({ entity: 'lead', id: p.leadId }));
  if (missingLeads.length) index.add(await deps.store.members.findByEntities(portalId, missingLeads.map((p) => ({ entity: 'lead' as const, id: p.leadId }))));
  for (const { contact, leadId } of pairs) {
    if (index.get(contact)) continue;
    const leadMember = index.get({ entity: 'lead', id: leadId });
    if (!leadMember) continue;
    const moved = await deps.store.members.attachContact(portalId, leadMember.id, contact.id);
    if (!moved) continue;
    index.add([moved]);
    if (moved.id === leadMember.id) deps.log.info({ portalId, memberId: moved.id }, 'member.followed_conversion');
  }
}

/**
 * The claims of the batch, people first (a deal's claim then meets the referral its contact
 * already brought). A referrer value on an entity is a manager's choice only if Sarafan did not
 * write it: our own REFERRER projection read back must not attribute whoever the client is now.
 */
function claimsOf(people: CrmPerson[], deals: DealInput[], written: Map<string, Projection>): Claim[] {
  const managerRef = (entity: CrmEntity, id: number, ref: PersonRef | null): PersonRef | null => {
    if (!ref) return null;
    const ours = written.get(projectionKey(entity, id))?.referrer;
    return ours && ours.entity === ref.entity && ours.id === ref.id ? null : ref;
  };
  const claims: Claim[] = [];
  for (const p of people) {
    const referrerRef = managerRef(p.entity, p.id, p.referrer);
    if (p.refCode || referrerRef) claims.push({ referee: { entity: p.entity, id: p.id }, code: p.refCode, referrerRef, source: p.entity, sourceRef: `${p.entity}:${p.id}` });
  }
  for (const { id, facts } of deals) {
    if (!facts) continue;
    const referrerRef = managerRef('deal', id, facts.referrer);
    if (facts.refCode || referrerRef) claims.push({ referee: facts.client, code: facts.refCode, referrerRef, source: 'deal', sourceRef: `deal:${id}`, dealId: id });
  }
  return claims;
}

/** Records the referral each claim names unless its referee has one (first attribution wins). */
async function attribute(
  deps: Deps,
  crm: CrmPort,
  portalId: number,
  now: Date,
  claims: Claim[],
  index: MemberIndex,
  actives: Map<number, Referral>,
  touched: Set<number>,
  dealReferrers: Map<number, PersonRef | null>,
  known: Map<string, CrmPerson>,
): Promise<void> {
  const { store, log } = deps;
  const codes = claims.map((c) => (c.code ? normalizeCode(c.code) : null)).filter((c): c is string => c !== null);
  const byCode = await store.members.findByCodes(portalId, codes);
  const people = [...claims.map((c) => c.referrerRef), ...claims.map((c) => c.referee)].filter((r): r is PersonRef => r !== null);
  index.add(await store.members.ensureMany(portalId, people, now));
  for (const m of byCode.values()) index.add([m]);

  const resolved = claims.map((c) => {
    if (c.code) {
      const code = normalizeCode(c.code);
      return { claim: c, referrer: code ? (byCode.get(code) ?? null) : null, code: code ?? c.code.slice(0, 64) };
    }
    return { claim: c, referrer: index.get(c.referrerRef), code: null };
  });
  for (const r of resolved) if (r.claim.dealId !== undefined) dealReferrers.set(r.claim.dealId, personRefOf(r.referrer));

  const referees = resolved.map((r) => index.get(r.claim.referee)).filter((m): m is Member => m !== null);
  const newReferees = referees.filter((m) => !actives.has(m.id));
  if (!newReferees.length) return;
  for (const [id, referral] of await store.referrals.activeForMany(portalId, newReferees.map((m) => m.id))) actives.set(id, referral);
  const referrerIds = [...new Set(resolved.map((r) => r.referrer?.id).filter((id): id is number => id !== undefined))];
  // "Already a customer" counts the wins Sarafan saw and those of the history read on install.
  const refereePeople = newReferees.flatMap((m) => [
    ...(m.contactId !== null ? [{ entity: 'contact' as const, id: m.contactId }] : []),
    ...(m.leadId !== null ? [{ entity: 'lead' as const, id: m.leadId }] : []),
  ]);
  const [chains, refereeDeals, history] = await Promise.all([
    store.referrals.chains(portalId, referrerIds, MAX_CHAIN),
    store.deals.forClients(portalId, newReferees.map((m) => m.id)),
    store.history.firstWonAt(portalId, refereePeople),
  ]);
  // Parent links as stored, plus the ones recorded in this batch, for the cycle check.
  const parentOf = new Map<number, number>();
  for (const [start, chain] of chains) chain.forEach((id, i) => parentOf.set(i === 0 ? start : chain[i - 1]!, id));
  const ancestors = (id: number): number[] => {
    const out: number[] = [];
    for (let at = parentOf.get(id); at !== undefined && out.length < MAX_CHAIN && !out.includes(at); at = parentOf.get(at)) out.push(at);
    return out;
  };
  const firstWon = new Map<number, Date>();
  const won = (memberId: number, at: Date | null | undefined) => {
    const seen = firstWon.get(memberId);
    if (at && (!seen || at < seen)) firstWon.set(memberId, at);
  };
  for (const d of refereeDeals) if (d.clientMemberId !== null) won(d.clientMemberId, d.firstWonAt);
  for (const m of newReferees) {
    if (m.contactId !== null) won(m.id, history.get(`contact:${m.contactId}`));
    if (m.leadId !== null) won(m.id, history.get(`lead:${m.leadId}`));
  }

  const points = await contactPointsOf(
    crm,
    known,
    resolved.flatMap(({ claim, referrer }) => {
      const referee = index.get(claim.referee);
      return referee && referrer && referee.id !== referrer.id && !actives.has(referee.id) ? [[referee, referrer] as [Member, Member]] : [];
    }),
  );
  const pointsOf = (m: Member): ContactPoints[] => refsOfMember(m).flatMap((r) => points.get(refKey(r)) ?? []);

  const feedback: FeedbackItem[] = [];
  for (const { claim, referrer, code } of resolved) {
    const referee = index.get(claim.referee);
    if (!referee || actives.has(referee.id)) continue;
    const verdict = checkReferral({
      refereeMemberId: referee.id,
      referrerMemberId: referrer?.id ?? null,
      referrerAncestors: referrer ? ancestors(referrer.id) : [],
      sameIdentity: sameEntity(referee, referrer) || (referrer !== null && sharesContactPoint(pointsOf(referee), pointsOf(referrer))),
      refereeFirstWonAt: firstWon.get(referee.id) ?? null,
      referralAt: now,
    });
    const referral = await store.referrals.record({
      portalId,
      refereeMemberId: referee.id,
      referrerMemberId: referrer?.id ?? null,
      code,
      source: claim.source,
      sourceRef: claim.sourceRef,
      status: verdict.ok ? 'active' : 'rejected',
      rejectReason: verdict.ok ? null : verdict.reason,
      createdAt: now,
    });
    if (referral.status === 'active') {
      actives.set(referee.id, referral);
      if (referral.referrerMemberId) {
        parentOf.set(referee.id, referral.referrerMemberId);
        touched.add(referral.referrerMemberId);
      }
      touched.add(referee.id);
      log.info({ portalId, referral: referral.id, source: claim.sourceRef }, 'referral.recorded');
    } else {
      log.info({ portalId, source: claim.sourceRef, reason: referral.rejectReason }, 'referral.rejected');
    }
    const event =
      referral.status === 'active'
        ? ({ type: 'referral_attributed', code: referral.code, referrer: personRefOf(referrer), referee: claim.referee } as const)
        : ({ type: 'referral_rejected', code: referral.code, reason: referral.rejectReason!, referrer: personRefOf(referrer) } as const);
    const what = `referral:${referral.id}:${referral.status === 'active' ? 'attributed' : 'rejected'}`;
    if (claim.referee) feedback.push({ key: `${what}:${claim.referee.entity}:${claim.referee.id}`, to: claim.referee, event });
    if (claim.dealId !== undefined) feedback.push({ key: `${what}:deal:${claim.dealId}`, to: { entity: 'deal', id: claim.dealId }, event });
  }
  // Referrals are recorded one statement each (first attribution wins), not in one transaction:
  // their messages follow them, keyed by referral, so a rerun records nothing twice.
  await enqueueFeedback(store, portalId, feedback, now);
}

function refsOfMember(m: Member): PersonRef[] {
  return [...(m.contactId !== null ? [{ entity: 'contact' as const, id: m.contactId }] : []), ...(m.leadId !== null ? [{ entity: 'lead' as const, id: m.leadId }] : [])];
}

/**
 * The phones and e-mails of the people of the batch's new claims (referees and their
 * referrers), for the self-referral check by phone or e-mail (SPEC 5). Who the run read already
 * (changed contacts and leads: PHONE and EMAIL come with the same list commands) costs nothing;
 * the others — mostly referrers, known to Sarafan by their code only — are read in ONE more
 * request (list commands of 50 ids in a `batch`: up to 2 500 people), made only by runs that
 * attribute new referrals. `crm.duplicate.findbycomm` would instead take one command per 20
 * values, per type (PHONE, EMAIL) and per entity type, and still need every referee's values
 * read first: more commands for the same answer. Referrals are attributed once per referee,
 * while deals are credited many times, so the loop's ≤ 0.1 requests per deal holds (SPEC 11).
 * A person the portal will not show has no contact points (the referral is judged without them).
 */
async function contactPointsOf(crm: CrmPort, known: Map<string, CrmPerson>, pairs: [referee: Member, referrer: Member][]): Promise<Map<string, ContactPoints>> {
  const out = new Map<string, ContactPoints>();
  const missing = new Map<string, PersonRef>();
  // A referee read in this run with no phone and no e-mail on any of its records shares none:
  // its referrer need not be read (the common case of a client typed in with a name only).
  const bare = (m: Member) =>
    refsOfMember(m).every((r) => {
      const p = known.get(refKey(r));
      return p !== undefined && !p.phones.length && !p.emails.length;
    });
  for (const m of pairs.flatMap(([referee, referrer]) => (bare(referee) ? [] : [referee, referrer]))) {
    for (const ref of refsOfMember(m)) {
      const key = refKey(ref);
      const person = known.get(key);
      if (person) out.set(key, person);
      else missing.set(key, ref);
    }
  }
  if (!missing.size) return out;
  const read = await crm.read({ deals: [], people: [...missing.values()] });
  for (const [key, answer] of read.people) if (answer.status === 'found') out.set(key, answer.record);
  return out;
}

function personRefOf(m: Member | null): PersonRef | null {
  if (!m) return null;
  if (m.contactId !== null) return { entity: 'contact', id: m.contactId };
  if (m.leadId !== null) return { entity: 'lead', id: m.leadId };
  return null;
}

function sameEntity(a: Member, b: Member | null): boolean {
  if (!b) return false;
  return a.id === b.id || (a.contactId !== null && a.contactId === b.contactId) || (a.leadId !== null && a.leadId === b.leadId);
}

interface Settled {
  /** Key of the durable `crm.project` job this run enqueued. */
  jobKey: string;
  touchedMembers: Set<number>;
  touchedDeals: number[];
  dealEntries: Map<number, LedgerEntry[]>;
  /** Every deal the run settled, as committed (its batch and the affected clients' won deals). */
  dealStates: Map<number, DealState>;
  /** The affected clients' active referrals as loaded under the lock; null = none. */
  clientReferrals: Map<number, Referral | null>;
}

/**
 * One transaction: the batch's deals recorded, every won deal of the affected clients priced by
 * the program version that first priced it and settled against the ledger (a deal that changed
 * hands re-settles both clients: first-won-deal qualification moves with it), first-time winners
 * enrolled, and the `crm.project` job the CRM fields now owe enqueued — all committed together.
 */
async function settleDeals(
  deps: Deps,
  tx: TxRepos,
  installation: Installation,
  current: LoadedProgram,
  now: Date,
  deals: DealInput[],
  previousOutside: Map<number, DealState>,
  index: MemberIndex,
  settings: PortalSettings | null,
): Promise<Settled> {
  const portalId = installation.id;
  const clientOf = (d: DealInput): number | null => (d.facts ? (index.get(d.facts.client)?.id ?? null) : (previousOutside.get(d.id)?.clientMemberId ?? null));
  const lockKeys = new Set<string>();
  for (const d of deals) {
    const ids = [clientOf(d), previousOutside.get(d.id)?.clientMemberId].filter((id): id is number => typeof id === 'number');
    for (const id of ids) lockKeys.add(`client:${id}`);
    // A redemption locks its deal too (redeem-bonus.ts): a deal that closes here then either
    // sees that redemption (and returns it) or makes it refuse — never misses it.
    if (!ids.length || !d.facts || d.facts.semantic === 'F') lockKeys.add(`deal:${d.id}`);
  }
  await tx.lockMany(portalId, [...lockKeys]);

  // Load under the lock: what concurrent runs committed before us is seen here.
  const before = new Map((await tx.deals.getMany(portalId, deals.map((d) => d.id))).map((s) => [s.dealId, s]));
  const clients = new Set<number>();
  const states: DealState[] = deals.map((d) => {
    const prev = before.get(d.id) ?? previousOutside.get(d.id);
    const f = d.facts;
    const won = f?.semantic === 'S';
    const client = clientOf(d);
    if (client !== null) clients.add(client);
    if (prev?.clientMemberId) clients.add(prev.clientMemberId);
    return {
      portalId,
      dealId: d.id,
      clientMemberId: f ? client : (prev?.clientMemberId ?? null),
      categoryId: f?.categoryId ?? prev?.categoryId ?? 0,
      stageId: f?.stageId ?? prev?.stageId ?? '',
      stageSemantic: f?.semantic ?? prev?.stageSemantic ?? 'P',
      amount: f?.amount ?? prev?.amount ?? 0,
      currency: f?.currency || prev?.currency || current.program.currency,
      won,
      deleted: f === null,
      firstWonAt: prev?.firstWonAt ?? (won ? now : null),
      programVersion: prev?.programVersion ?? (won ? current.version : null),
      referralId: prev?.referralId ?? null,
      updatedAt: now,
      fxCurrency: prev?.fxCurrency ?? null,
      fxRate: prev?.fxRate ?? null,
    };
  });
  const clientIds = [...clients];
  const [stored, referrals] = await Promise.all([tx.deals.forClients(portalId, clientIds), tx.referrals.activeForMany(portalId, clientIds)]);
  for (const s of states) if (s.clientMemberId !== null && s.referralId === null) s.referralId = referrals.get(s.clientMemberId)?.id ?? null;

  const batchIds = new Set(states.map((s) => s.dealId));
  const dealsOf = new Map<number, DealState[]>();
  const push = (s: DealState) => {
    if (s.clientMemberId === null) return;
    const list = dealsOf.get(s.clientMemberId);
    if (list) list.push(s);
    else dealsOf.set(s.clientMemberId, [s]);
  };
  for (const s of stored) if (!batchIds.has(s.dealId)) push(s);
  for (const s of states) push(s);

  // What to settle: the batch's deals, and every won deal of an affected client.
  const toSettle = new Map<number, DealState>(states.map((s) => [s.dealId, s]));
  for (const id of clientIds) for (const s of dealsOf.get(id) ?? []) if (s.won && !toSettle.has(s.dealId)) toSettle.set(s.dealId, s);
  const programs = new Map<number, LoadedProgram>([[current.version, current]]);
  for (const v of new Set([...toSettle.values()].map((s) => s.programVersion).filter((v): v is number => v !== null && !programs.has(v)))) {
    programs.set(v, await programVersion(tx.programs, portalId, v));
  }
  const depth = Math.max(...[...programs.values()].map((p) => p.program.referral.levels.length), 0);
  const referredClients = clientIds.filter((id) => referrals.has(id));
  const chains = await tx.referrals.chains(portalId, referredClients, depth);

  // Price every deal to settle: the desired state, before the monthly cap.
  const refixed = new Set<number>();
  const priced = [...toSettle.values()].map((deal) => {
    const loaded = deal.programVersion ? programs.get(deal.programVersion)! : current;
    const one = priceOne(deps, portalId, deal, loaded, settings, now, dealsOf, referrals, chains);
    if (one.fixRate && (deal.fxCurrency !== one.fixRate.currency || deal.fxRate !== one.fixRate.rate)) {
      deal.fxCurrency = one.fixRate.currency;
      deal.fxRate = one.fixRate.rate;
      refixed.add(deal.dealId);
    }
    return { deal, loaded, desired: one.desired, fx: one.fx };
  });

  // The monthly cap (src/rules/cap-referrer-month.ts) needs the referrers' other credits of each
  // month: locked per referrer first, so two runs for two clients of one referrer take turns.
  // The deals' own entries are safe under the client locks; the months they touch include those
  // of referrers who are paid now and of those whose credit may be taken back.
  const settleIds = [...toSettle.keys()];
  const existing = await tx.ledger.forDeals(portalId, settleIds);
  const existingOf = new Map<number, LedgerEntry[]>(settleIds.map((id) => [id, []]));
  for (const e of existing) if (e.dealId !== null) existingOf.get(e.dealId)?.push(e);
  const months = capMonths(priced, existingOf, settings);
  if (months.length) await tx.lockMany(portalId, [...new Set(months.map((m) => `cap:${m.memberId}`))]);
  const usedByOthers = months.length ? await tx.ledger.referralNetInMonths(portalId, months, settleIds) : new Map<string, number>();

  // Deals of the run meet the cap in the order they were first won, each after the ones before.
  const byFirstWin = [...priced].sort((a, b) => (a.deal.firstWonAt?.getTime() ?? 0) - (b.deal.firstWonAt?.getTime() ?? 0) || a.deal.dealId - b.deal.dealId);
  const planned: { deal: DealState; version: number; expiryDays: number; fx: FxUsed | null; entry: PlannedEntry }[] = [];
  for (const { deal, loaded, desired, fx } of byFirstWin) {
    const cap = loaded.program.referral.capPerReferrerMonth === null ? null : toMinor(loaded.program.referral.capPerReferrerMonth);
    let capped: CappedEntry[] = desired.map((d) => ({ ...d, capped: 0 }));
    if (cap !== null && !settings && desired.some((d) => d.reason === 'referral')) {
      // Without the portal's zone the month is unknown: paying uncapped could overpay, so the run
      // fails and its job is retried once the portal answers.
      throw new SettingsNeeded();
    }
    if (cap !== null && settings && deal.firstWonAt) {
      const month = monthOf(deal.firstWonAt, settings.utcOffsetMinutes);
      const used = new Map(desired.map((d) => [d.memberId, usedByOthers.get(monthKey(d.memberId, month.from)) ?? 0]));
      capped = capReferrerMonth(desired, cap, used);
      for (const c of capped) if (c.reason === 'referral') usedByOthers.set(monthKey(c.memberId, month.from), (used.get(c.memberId) ?? 0) + c.amount);
    }
    for (const entry of settleDeal({ dealId: deal.dealId, desired: capped, existing: existingOf.get(deal.dealId) ?? [], now })) {
      planned.push({ deal, version: loaded.version, expiryDays: loaded.program.expiry.days, fx, entry });
    }
  }

  // The overspend policy in force when a reversal is written: clamp meets what members hold.
  const negative = [...new Set(planned.filter((p) => p.entry.amount < 0).map((p) => p.entry.memberId))];
  const held = new Map<number, number>();
  if (current.program.overspend === 'clamp' && negative.length) {
    for (const [id, b] of await tx.ledger.balances(portalId, negative, now)) held.set(id, b.available + b.pending);
  }
  const clamped = clampOverspend(current.program.overspend, planned.map((p) => ({ memberId: p.entry.memberId, amount: p.entry.amount })), held);

  // Bonus redeemed on a deal that is lost or deleted now goes back to whoever redeemed it.
  const returns = states.flatMap((s) =>
    redemptionReturns({ dealId: s.dealId, closed: !dealAcceptsRedemption(s), entries: existingOf.get(s.dealId) ?? [] }).map(
      (r): NewLedgerEntry => ({
        portalId,
        memberId: r.memberId,
        amount: r.amount,
        reason: 'redemption',
        kind: 'reversal',
        dealId: s.dealId,
        level: 0,
        programVersion: null,
        idempotencyKey: r.idempotencyKey,
        availableAt: now,
        expiresAt: null,
        causedBy: `deal:${s.dealId}`,
        comment: null,
        createdAt: now,
      }),
    ),
  );

  // Deals outside the batch are written back only when their conversion was fixed just now.
  await tx.deals.upsertMany([...states, ...[...toSettle.values()].filter((d) => !batchIds.has(d.dealId) && refixed.has(d.dealId))]);
  const { inserted } = await tx.ledger.append([
    ...planned.map(({ deal, version, expiryDays, fx, entry: p }, i): NewLedgerEntry => ({
      portalId,
      memberId: p.memberId,
      amount: clamped[i]!.amount,
      reason: p.reason,
      kind: p.kind,
      dealId: deal.dealId,
      level: p.level,
      programVersion: version,
      idempotencyKey: p.idempotencyKey,
      availableAt: p.availableAt,
      // Bonus credited under a program with expiry lapses N days after it becomes available — and
      // never before it was credited (a deal won long ago and first seen now), which also keeps
      // every expiry ahead of the hourly job's watermark.
      expiresAt: p.amount > 0 ? expiresAtFor(new Date(Math.max(p.availableAt.getTime(), now.getTime())), expiryDays) : null,
      causedBy: `deal:${deal.dealId}`,
      comment: null,
      createdAt: now,
      fx,
      shortfall: clamped[i]!.shortfall,
      capped: p.capped,
    })),
    ...returns,
  ]);
  await requeueCappedDeals(deps, tx, portalId, now, inserted, months, settings);
  inserted.push(...(await settleCoupons(deps, tx, portalId, current, now, inserted)));
  const touchedMembers = new Set<number>(clientIds);
  const touchedDeals = new Set<number>(batchIds);
  for (const entry of inserted) {
    touchedMembers.add(entry.memberId);
    touchedDeals.add(entry.dealId!);
    existingOf.get(entry.dealId!)?.push(entry);
    deps.log.info(
      { portalId, dealId: entry.dealId, memberId: entry.memberId, amount: entry.amount, kind: entry.kind, reason: entry.reason },
      entry.reason === 'redemption' ? 'redemption.returned' : entry.kind === 'reversal' ? 'reward.reversed' : 'reward.credited',
    );
  }
  await enqueueFeedback(tx, portalId, await rewardFeedback(tx, portalId, inserted, states, deals, programs), now);

  // Clients are enrolled (given a code and link) when they first win a deal (SPEC 5.1 enrol).
  const winners = [...new Set(states.filter((s) => s.won && s.clientMemberId !== null).map((s) => s.clientMemberId!))];
  if (winners.length) {
    let open = membersToEnroll(current.program, states, await tx.members.getMany(portalId, winners));
    for (let attempt = 0; open.length && attempt < CODE_ATTEMPTS; attempt++) {
      const { enrolled, taken } = await tx.members.enrollMany(
        portalId,
        open.map((memberId) => ({ memberId, code: generateCode(deps.randomBytes, { prefix: current.program.enrol.codePrefix }) })),
        now,
      );
      for (const m of enrolled) deps.log.info({ portalId, memberId: m.id }, 'member.enrolled');
      open = taken;
    }
    if (open.length) throw new Error(`Could not find free referral codes after ${CODE_ATTEMPTS} attempts`);
  }

  const dealEntries = new Map([...touchedDeals].map((id) => [id, existingOf.get(id) ?? []]));
  const jobKey = `run:${Buffer.from(deps.randomBytes(8)).toString('hex')}`;
  await tx.jobs.enqueue(
    {
      portalId,
      kind: 'crm.project',
      key: jobKey,
      payload: { members: [...touchedMembers], deals: [...touchedDeals] },
      // The run writes these at once; the job is the guarantee, so it waits a little first.
      runAt: new Date(now.getTime() + PROJECTION_GRACE_MS),
    },
    now,
  );
  return {
    jobKey,
    touchedMembers,
    touchedDeals: [...touchedDeals],
    dealEntries,
    dealStates: toSettle,
    clientReferrals: new Map(clientIds.map((id) => [id, referrals.get(id) ?? null])),
  };
}

/** Reasons whose entries are told to the CRM (issue 9): the referral program's rewards. */
const TOLD_REASONS = new Set(['referral', 'welcome']);

/**
 * The CRM feedback of the reward entries a run inserted: a timeline comment on the deal and on the
 * beneficiary, and a notification of the deal's responsible user when a reward is credited. Keyed
 * by entry, whose idempotency key already makes it unique, so a message exists once per entry.
 */
async function rewardFeedback(
  tx: TxRepos,
  portalId: number,
  inserted: LedgerEntry[],
  states: DealState[],
  deals: DealInput[],
  programs: Map<number, LoadedProgram>,
): Promise<FeedbackItem[]> {
  const told = inserted.filter((e) => TOLD_REASONS.has(e.reason) && e.dealId !== null && e.amount !== 0);
  if (!told.length) return [];
  const members = new Map((await tx.members.getMany(portalId, [...new Set(told.map((e) => e.memberId))])).map((m) => [m.id, m]));
  const deleted = new Set(states.filter((s) => s.deleted).map((s) => s.dealId));
  const assignedBy = new Map(deals.map((d) => [d.id, d.facts?.assignedById ?? null]));
  const items: FeedbackItem[] = [];
  for (const e of told) {
    const dealId = e.dealId!;
    const credited = e.kind !== 'reversal' && e.amount > 0;
    const beneficiary = personRefOf(members.get(e.memberId) ?? null);
    const currency = (e.programVersion !== null ? programs.get(e.programVersion) : undefined)?.program.currency ?? '';
    const event = {
      type: credited ? 'reward_credited' : 'reward_reversed',
      amount: e.amount,
      currency,
      dealId,
      level: e.level,
      welcome: e.reason === 'welcome',
      beneficiary,
    } as const;
    // A deleted deal has no timeline left to write to.
    if (!deleted.has(dealId)) items.push({ key: `entry:${e.id}:deal`, to: { entity: 'deal', id: dealId }, event });
    if (beneficiary) items.push({ key: `entry:${e.id}:person`, to: beneficiary, event });
    const userId = assignedBy.get(dealId);
    // The responsible user hears of a new reward, not of later corrections of its amount.
    if (e.kind === 'credit' && userId) items.push({ key: `entry:${e.id}:notify`, to: { userId }, event });
  }
  return items;
}

/** How long the durable projection job waits for the run that enqueued it to write inline. */
export const PROJECTION_GRACE_MS = 30_000;
