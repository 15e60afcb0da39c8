/**
 * The referral loop (SPEC 5, 6): a batch of CRM changes of one portal, as queued from
 * ONCRM* events, is turned into referrals, ledger entries and CRM projections.
 *
 * 1. Read every changed entity in one `batch` (events carry only the ID — reference §4.2).
 * 2. Attribute referrals from `UF_CRM_SARAFAN_REF_CODE` / `UF_CRM_SARAFAN_REFERRER`
 *    (first attribution wins; self-referral, cycles and existing customers are rejected with
 *    the reason recorded).
 * 3. Per deal, under a per-client advisory lock: record the deal's state, price the client's
 *    won deals with the program version that first priced them, and append the difference
 *    between what should be credited and what the ledger holds (rules/settle). Idempotency keys
 *    make duplicated, reordered and concurrent events harmless.
 * 4. Write the projections (balance, code, link … on people; referrer, reward on deals) as
 *    absolute values, in one batch, only where they differ from what the entity shows (when we
 *    just read it) or from what we last wrote — so the events our own writes cause end here
 *    with no further write.
 *
 * Known limits: deals in a currency other than the program's are not priced yet (logged);
 * deals without a contact or lead have no referee and pay nothing; lead → contact conversion
 * does not yet move a member from the lead to the contact.
 */
import { checkReferral } from '../rules/attribution.js';
import { generateCode, normalizeCode } from '../rules/codes.js';
import { F, changedFields, crmRef, dealProjection, parseCrmRef, personProjection } from '../rules/crm-fields.js';
import { referralLink } from '../rules/referral-link.js';
import { priceDeal, tierFor, type ClientDeal } from '../rules/rewards.js';
import { settleDeal } from '../rules/settle.js';
import { parseDeal, readEntities, parsePerson, updateMethod, type DealFacts, type PersonFacts, type PersonRef } from './crm-entities.js';
import { currentProgram, programVersion, type LoadedProgram } from './program-versions.js';
import {
  projectionKey,
  type CrmEntity,
  type DealState,
  type Deps,
  type Installation,
  type LedgerEntry,
  type Member,
  type ProjectionValues,
  type Referral,
  type ReferralSource,
  type Repos,
  type TxRepos,
} from './ports.js';

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

interface Run {
  deps: Deps;
  installation: Installation;
  portalId: number;
  now: Date;
  current: LoadedProgram;
  programs: Map<number, LoadedProgram>;
  /** Values read from the portal in this run, keyed by projectionKey. */
  read: Map<string, Record<string, unknown>>;
  /** Members whose projection must be checked at the end of the run. */
  touchedMembers: Set<number>;
  /** Deals whose projection must be checked, with the deal's referrer member. */
  touchedDeals: Map<number, { referrerMemberId: number | null; deleted: boolean }>;
  /** Each settled deal's ledger entries after settling (its REWARD projection reads them). */
  dealEntries: Map<number, LedgerEntry[]>;
}

export async function processCrmChanges(deps: Deps, portalId: number, changes: CrmChange[]): Promise<ChangeOutcome[]> {
  const installation = await deps.store.installations.get(portalId);
  if (!installation || installation.status === 'uninstalled' || !installation.tokens) {
    deps.log.info({ portalId, changes: changes.length }, 'crm.changes_ignored_not_installed');
    return changes.map((c) => ({ entity: c.entity, id: c.id, ok: true }));
  }
  const now = deps.clock.now();
  const run: Run = {
    deps,
    installation,
    portalId,
    now,
    current: await currentProgram(deps.store.programs, portalId, now),
    programs: new Map(),
    read: new Map(),
    touchedMembers: new Set(),
    touchedDeals: new Map(),
    dealEntries: new Map(),
  };
  run.programs.set(run.current.version, run.current);

  const unique = dedupe(changes);
  const gateway = deps.gateways.forInstallation(installation);
  const toRead = unique.filter((c) => !c.deleted);
  const answers = await readEntities(gateway, toRead);

  const outcomes: ChangeOutcome[] = [];
  const deals: { change: CrmChange; facts: DealFacts | null }[] = [];
  const people: PersonFacts[] = [];
  for (const change of unique) {
    if (change.deleted) {
      if (change.entity === 'deal') deals.push({ change, facts: null });
      else outcomes.push({ entity: change.entity, id: change.id, ok: true });
      continue;
    }
    const answer = answers[toRead.indexOf(change)]!;
    if (answer.ok) {
      const raw = (answer.result ?? {}) as Record<string, unknown>;
      run.read.set(projectionKey(change.entity, change.id), raw);
      if (change.entity === 'deal') deals.push({ change, facts: parseDeal(change.id, raw) });
      else people.push(parsePerson(change.entity, change.id, raw));
    } else if (isNotFound(answer.description)) {
      // Deleted since the event was sent (or never visible to the installer): a deal is then
      // treated as deleted so its rewards are reversed.
      if (change.entity === 'deal') deals.push({ change, facts: null });
      else outcomes.push({ entity: change.entity, id: change.id, ok: true });
    } else {
      outcomes.push({ entity: change.entity, id: change.id, ok: false, error: `${answer.error}: ${answer.description}` });
    }
  }

  people.push(...(await readClientsOfNewWins(run, deals.map((d) => d.facts))));
  for (const person of people) {
    outcomes.push(await guarded(run, person.entity, person.id, () => processPerson(run, person)));
  }
  for (const { change, facts } of deals) {
    outcomes.push(await guarded(run, 'deal', change.id, () => processDeal(run, change.id, facts)));
  }
  await writeProjections(run);
  return outcomes;
}

/**
 * Events are unordered and may be lost (reference §4.4): a deal's WON event can be processed
 * before the event of its contact that carries the referral code — and then the referral
 * would later be refused as "already a customer". So when a deal newly reaches a success stage
 * and its client has no referral yet, the client is read in the same run. Only on that
 * transition: the echo events of Sarafan's own writes stay one read.
 */
async function readClientsOfNewWins(run: Run, deals: (DealFacts | null)[]): Promise<PersonFacts[]> {
  const { store } = run.deps;
  const wanted = new Map<string, PersonRef>();
  for (const facts of deals) {
    if (!facts || facts.semantic !== 'S' || !facts.client) continue;
    const key = projectionKey(facts.client.entity, facts.client.id);
    if (run.read.has(key) || wanted.has(key)) continue;
    if ((await store.deals.get(run.portalId, facts.id))?.won) continue;
    const member = await memberOf(run, facts.client, facts.leadId);
    if (member && (await store.referrals.activeFor(run.portalId, member.id))) continue;
    wanted.set(key, facts.client);
  }
  if (!wanted.size) return [];
  const refs = [...wanted.values()];
  const answers = await readEntities(run.deps.gateways.forInstallation(run.installation), refs);
  const people: PersonFacts[] = [];
  refs.forEach((ref, i) => {
    const answer = answers[i]!;
    if (!answer.ok) return; // a client we cannot read has no code to contribute
    const raw = (answer.result ?? {}) as Record<string, unknown>;
    run.read.set(projectionKey(ref.entity, ref.id), raw);
    people.push(parsePerson(ref.entity, ref.id, raw));
  });
  return people;
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

function isNotFound(description: string): boolean {
  return /not found/i.test(description);
}

async function guarded(run: Run, entity: CrmEntity, id: number, fn: () => Promise<void>): Promise<ChangeOutcome> {
  try {
    await fn();
    return { entity, id, ok: true };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    run.deps.log.warn({ portalId: run.portalId, entity, id, error }, 'crm.change_failed');
    return { entity, id, ok: false, error };
  }
}

// ---------------------------------------------------------------------------------------------
// Attribution
// ---------------------------------------------------------------------------------------------

/**
 * A referrer value on the entity is a manager's choice only if Sarafan did not write it: our
 * own REFERRER projection read back must not attribute whoever the deal's client is now (a
 * deal moved to another contact, or copied with its fields).
 */
async function managerReferrer(run: Run, entity: CrmEntity, id: number, ref: PersonRef | null): Promise<PersonRef | null> {
  if (!ref) return null;
  const written = (await run.deps.store.projections.getMany(run.portalId, [{ entity, entityId: id }])).get(projectionKey(entity, id));
  const ours = parseCrmRef(written?.[F.REFERRER]);
  return ours && ours.entity === ref.entity && ours.id === ref.id ? null : ref;
}

async function resolveReferrer(
  run: Run,
  refCode: string | null,
  referrerRef: PersonRef | null,
): Promise<{ referrer: Member | null; code: string | null } | null> {
  const { members } = run.deps.store;
  if (refCode) {
    const code = normalizeCode(refCode);
    const referrer = code ? await members.findByCode(run.portalId, code) : null;
    return { referrer, code: code ?? refCode.slice(0, 64) };
  }
  if (referrerRef) {
    return { referrer: await members.ensure(run.portalId, referrerRef.entity, referrerRef.id, run.now), code: null };
  }
  return null;
}

/** Records the referee's referral unless one is active already (first attribution wins). */
async function attribute(
  run: Run,
  referee: Member,
  resolved: { referrer: Member | null; code: string | null },
  source: ReferralSource,
  sourceRef: string,
): Promise<Referral | null> {
  const { referrals, deals } = run.deps.store;
  const active = await referrals.activeFor(run.portalId, referee.id);
  if (active) return active;
  const referrerId = resolved.referrer?.id ?? null;
  const ancestors = referrerId ? await referrals.chain(run.portalId, referrerId, MAX_CHAIN) : [];
  const refereeDeals = await deals.forClient(run.portalId, referee.id);
  const firstWonAt = earliest(refereeDeals.map((d) => d.firstWonAt));
  const verdict = checkReferral({
    refereeMemberId: referee.id,
    referrerMemberId: referrerId,
    referrerAncestors: ancestors,
    sameIdentity: sameEntity(referee, resolved.referrer),
    refereeFirstWonAt: firstWonAt,
    referralAt: run.now,
  });
  const referral = await referrals.record({
    portalId: run.portalId,
    refereeMemberId: referee.id,
    referrerMemberId: referrerId,
    code: resolved.code,
    source,
    sourceRef,
    status: verdict.ok ? 'active' : 'rejected',
    rejectReason: verdict.ok ? null : verdict.reason,
    createdAt: run.now,
  });
  if (referral.status === 'active') {
    run.deps.log.info({ portalId: run.portalId, referral: referral.id, source: sourceRef }, 'referral.recorded');
    if (referral.referrerMemberId) run.touchedMembers.add(referral.referrerMemberId);
    run.touchedMembers.add(referee.id);
  } else {
    run.deps.log.info({ portalId: run.portalId, source: sourceRef, reason: referral.rejectReason }, 'referral.rejected');
  }
  return referral.status === 'active' ? referral : null;
}

function sameEntity(a: Member, b: Member | null): boolean {
  if (!b) return false;
  return a.id === b.id || (a.contactId !== null && a.contactId === b.contactId) || (a.leadId !== null && a.leadId === b.leadId);
}

function earliest(dates: (Date | null)[]): Date | null {
  let min: Date | null = null;
  for (const d of dates) if (d && (!min || d < min)) min = d;
  return min;
}

// ---------------------------------------------------------------------------------------------
// People (contacts, leads)
// ---------------------------------------------------------------------------------------------

/**
 * The member of a contact or lead. A contact converted from a lead (its or its deal's LEAD_ID)
 * takes over the lead's member, keeping code, referral and balance (SPEC 5).
 */
async function memberOf(run: Run, person: PersonRef, fromLeadId: number | null): Promise<Member | null> {
  const { members } = run.deps.store;
  const member = await members.findByEntity(run.portalId, person.entity, person.id);
  if (member || person.entity !== 'contact' || !fromLeadId) return member;
  const leadMember = await members.findByEntity(run.portalId, 'lead', fromLeadId);
  if (!leadMember) return null;
  const moved = await members.attachContact(run.portalId, leadMember.id, person.id);
  if (moved?.id === leadMember.id) run.deps.log.info({ portalId: run.portalId, memberId: moved.id }, 'member.followed_conversion');
  return moved;
}

async function processPerson(run: Run, person: PersonFacts): Promise<void> {
  const { members } = run.deps.store;
  const resolved = await resolveReferrer(run, person.refCode, await managerReferrer(run, person.entity, person.id, person.referrerRef));
  let member = await memberOf(run, person, person.leadId);
  if (resolved && !member) member = await members.ensure(run.portalId, person.entity, person.id, run.now);
  if (!member) return;
  if (resolved) await attribute(run, member, resolved, person.entity, `${person.entity}:${person.id}`);
  run.touchedMembers.add(member.id);
}

// ---------------------------------------------------------------------------------------------
// Deals
// ---------------------------------------------------------------------------------------------

async function processDeal(run: Run, dealId: number, facts: DealFacts | null): Promise<void> {
  const { store } = run.deps;
  const won = facts?.semantic === 'S';
  const previous = await store.deals.get(run.portalId, dealId);

  let client: Member | null = null;
  if (facts?.client) {
    client = await memberOf(run, facts.client, facts.leadId);
    const resolvedNeeded = facts.refCode !== null || facts.referrerRef !== null;
    if (!client && (won || resolvedNeeded)) {
      client = await store.members.ensure(run.portalId, facts.client.entity, facts.client.id, run.now);
    }
  } else if (!facts && previous?.clientMemberId) {
    // Deleted: the client is the one it had (a deal whose contact was removed has none).
    client = await store.members.get(run.portalId, previous.clientMemberId);
  }

  let dealReferrer: Member | null = null;
  if (facts) {
    const resolved = await resolveReferrer(run, facts.refCode, await managerReferrer(run, 'deal', dealId, facts.referrerRef));
    dealReferrer = resolved?.referrer ?? null;
    if (resolved && client) await attribute(run, client, resolved, 'deal', `deal:${dealId}`);
  }

  // The deal's client now and before: when the deal changed hands, both clients' deals are
  // re-settled (first-won-deal qualification moves with it). Locks in a fixed order.
  const clients = [...new Set([client?.id, previous?.clientMemberId].filter((id): id is number => typeof id === 'number'))].sort((a, b) => a - b);
  const referral = await store.transaction(async (tx) => {
    for (const id of clients) await tx.lock(run.portalId, `client:${id}`);
    if (!clients.length) await tx.lock(run.portalId, `deal:${dealId}`);
    const before = (await tx.deals.get(run.portalId, dealId)) ?? previous;
    const referral = client ? await tx.referrals.activeFor(run.portalId, client.id) : null;
    const state: DealState = {
      portalId: run.portalId,
      dealId,
      clientMemberId: facts ? (client?.id ?? null) : (before?.clientMemberId ?? null),
      categoryId: facts?.categoryId ?? before?.categoryId ?? 0,
      stageId: facts?.stageId ?? before?.stageId ?? '',
      stageSemantic: facts?.semantic ?? before?.stageSemantic ?? 'P',
      amount: facts?.amount ?? before?.amount ?? 0,
      currency: facts?.currency || before?.currency || run.current.program.currency,
      won,
      deleted: facts === null,
      firstWonAt: before?.firstWonAt ?? (won ? run.now : null),
      programVersion: before?.programVersion ?? (won ? run.current.version : null),
      referralId: referral?.id ?? before?.referralId ?? null,
      updatedAt: run.now,
    };
    await tx.deals.upsert(state);

    if (!state.clientMemberId) await settle(run, tx, state, [], null);
    for (const clientId of clients) {
      const clientReferral = clientId === client?.id ? referral : await tx.referrals.activeFor(run.portalId, clientId);
      const related = await tx.deals.forClient(run.portalId, clientId);
      const clientDeals: ClientDeal[] = related.map((d) => ({ dealId: d.dealId, won: d.won, firstWonAt: d.firstWonAt, amount: d.amount }));
      for (const deal of related) {
        if (deal.dealId !== dealId && !deal.won) continue;
        await settle(run, tx, deal, clientDeals, clientReferral);
      }
    }
    return referral;
  });

  if (won && client && !client.code) {
    const { program } = run.current;
    if (program.enrol.onFirstWonDeal) await enroll(run, client, program.enrol.codePrefix);
  }
  if (client) run.touchedMembers.add(client.id);
  // The client's active referral decides the deal's referrer; a rejected one shows none.
  const referrerMemberId = client ? (referral?.referrerMemberId ?? null) : (dealReferrer?.id ?? null);
  run.touchedDeals.set(dealId, { referrerMemberId, deleted: facts === null });
}

async function settle(run: Run, tx: TxRepos, deal: DealState, clientDeals: ClientDeal[], referral: Referral | null): Promise<void> {
  const loaded = deal.programVersion ? await programFor(run, tx, deal.programVersion) : run.current;
  const { program } = loaded;
  let desired: ReturnType<typeof priceDeal> = [];
  if (deal.won && !deal.deleted && deal.currency !== program.currency) {
    run.deps.log.warn({ portalId: run.portalId, dealId: deal.dealId, currency: deal.currency }, 'reward.currency_not_supported');
  } else {
    const levels = program.referral.levels.length;
    const chain = referral && deal.clientMemberId ? await tx.referrals.chain(run.portalId, deal.clientMemberId, levels) : [];
    desired = priceDeal({
      program,
      deal: { dealId: deal.dealId, amount: deal.amount, categoryId: deal.categoryId, won: deal.won && !deal.deleted, wonAt: deal.firstWonAt ?? run.now },
      clientMemberId: deal.clientMemberId,
      clientDeals,
      referral: referral ? { createdAt: referral.createdAt, chain } : null,
      now: run.now,
    });
  }
  const existing = await tx.ledger.forDeal(run.portalId, deal.dealId);
  const planned = settleDeal({ dealId: deal.dealId, desired, existing, now: run.now });
  run.dealEntries.set(deal.dealId, existing);
  if (planned.length === 0) return;
  const { inserted } = await tx.ledger.append(
    planned.map((p) => ({
      portalId: run.portalId,
      memberId: p.memberId,
      amount: p.amount,
      reason: p.reason,
      kind: p.kind,
      dealId: deal.dealId,
      level: p.level,
      programVersion: loaded.version,
      idempotencyKey: p.idempotencyKey,
      availableAt: p.availableAt,
      expiresAt: null,
      causedBy: `deal:${deal.dealId}`,
      comment: null,
      createdAt: run.now,
    })),
  );
  run.dealEntries.set(deal.dealId, [...existing, ...inserted]);
  for (const entry of inserted) {
    run.touchedMembers.add(entry.memberId);
    run.deps.log.info(
      { portalId: run.portalId, dealId: deal.dealId, memberId: entry.memberId, amount: entry.amount, kind: entry.kind, reason: entry.reason },
      entry.kind === 'reversal' ? 'reward.reversed' : 'reward.credited',
    );
  }
  // Another deal of the client may have become (or stopped being) the qualifying one.
  if (!run.touchedDeals.has(deal.dealId)) {
    run.touchedDeals.set(deal.dealId, { referrerMemberId: referral?.referrerMemberId ?? null, deleted: deal.deleted });
  }
}

async function programFor(run: Run, repos: Repos, version: number): Promise<LoadedProgram> {
  const hit = run.programs.get(version);
  if (hit) return hit;
  const loaded = await programVersion(repos.programs, run.portalId, version);
  run.programs.set(version, loaded);
  return loaded;
}

async function enroll(run: Run, member: Member, prefix: string): Promise<Member> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const code = generateCode(run.deps.randomBytes, { prefix });
    const result = await run.deps.store.members.enroll(run.portalId, member.id, code, run.now);
    if (result !== 'code_taken') {
      run.deps.log.info({ portalId: run.portalId, memberId: member.id }, 'member.enrolled');
      return result;
    }
  }
  throw new Error('Could not find a free referral code after 8 attempts');
}

// ---------------------------------------------------------------------------------------------
// Projections
// ---------------------------------------------------------------------------------------------

interface Write {
  entity: CrmEntity;
  id: number;
  fields: ProjectionValues;
}

async function writeProjections(run: Run): Promise<void> {
  const { store } = run.deps;
  const writes: Write[] = [];
  const memberIds = [...run.touchedMembers];
  const members = memberIds.length ? await store.members.getMany(run.portalId, memberIds) : [];
  const byId = new Map(members.map((m) => [m.id, m]));

  // Deals first: their referrer may be a member we have not loaded yet.
  const dealIds = [...run.touchedDeals.keys()];
  const referrerIds = [...new Set([...run.touchedDeals.values()].map((d) => d.referrerMemberId).filter((id): id is number => id !== null))];
  for (const m of referrerIds.length ? await store.members.getMany(run.portalId, referrerIds.filter((id) => !byId.has(id))) : []) byId.set(m.id, m);

  const targets = members.map((m) => ({ member: m, target: personTarget(m) })).filter((t) => t.target !== null) as { member: Member; target: PersonRef }[];
  const keys = [
    ...targets.map((t) => ({ entity: t.target.entity as CrmEntity, entityId: t.target.id })),
    ...dealIds.map((id) => ({ entity: 'deal' as CrmEntity, entityId: id })),
  ];
  const lastWritten = keys.length ? await store.projections.getMany(run.portalId, keys) : new Map<string, ProjectionValues>();

  if (targets.length) {
    const balances = await store.ledger.balances(run.portalId, targets.map((t) => t.member.id), run.now);
    const counts = await store.referrals.countByReferrer(run.portalId, targets.map((t) => t.member.id));
    for (const { member, target } of targets) {
      const key = projectionKey(target.entity, target.id);
      const balance = balances.get(member.id) ?? { available: 0, pending: 0 };
      const referrals = counts.get(member.id) ?? 0;
      const current = run.read.get(key) ?? lastWritten.get(key);
      const referral = await store.referrals.activeFor(run.portalId, member.id);
      const referrer = referral?.referrerMemberId ? (byId.get(referral.referrerMemberId) ?? (await store.members.get(run.portalId, referral.referrerMemberId))) : null;
      const referrerTarget = referrer ? personTarget(referrer) : null;
      const inProgram = member.code || balance.available || balance.pending || referrals || lastWritten.has(key);
      if (!inProgram && !referrerTarget) continue; // a plain client: nothing of ours to show
      const desired: ProjectionValues = {};
      if (inProgram) {
        const tier = tierFor(run.current.program, await clientDealsOf(store, run.portalId, member.id));
        Object.assign(
          desired,
          personProjection({
            code: member.code,
            link: member.code ? referralLink(run.deps.appBaseUrl, run.installation.memberId, member.code) : null,
            balance: balance.available,
            pending: balance.pending,
            referrals,
            tier: tier?.name ?? null,
            joinedAt: member.joinedAt,
          }),
        );
      }
      if (referrerTarget) desired[F.REFERRER] = crmRef(referrerTarget.entity, referrerTarget.id);
      const fields = changedFields(desired, current);
      if (Object.keys(fields).length) writes.push({ entity: target.entity, id: target.id, fields });
    }
  }

  for (const [dealId, { referrerMemberId, deleted }] of run.touchedDeals) {
    if (deleted) continue; // nothing to write to
    const key = projectionKey('deal', dealId);
    const current = run.read.get(key) ?? lastWritten.get(key);
    const referrer = referrerMemberId ? byId.get(referrerMemberId) ?? null : null;
    // Every touched deal was settled in this run; reading the ledger again is only a safety net.
    const entries = run.dealEntries.get(dealId) ?? (await store.ledger.forDeal(run.portalId, dealId));
    if (!referrer && !entries.length && !lastWritten.has(key)) continue; // not ours to touch
    const desired = dealProjection({
      referrer: referrer ? personTarget(referrer) : null,
      reward: rewardOf(entries),
    });
    if (!referrer) delete desired[F.REFERRER]; // never erase a referrer a manager picked
    const fields = changedFields(desired, current);
    if (Object.keys(fields).length) writes.push({ entity: 'deal', id: dealId, fields });
  }

  if (!writes.length) return;
  const gateway = run.deps.gateways.forInstallation(run.installation);
  const outcomes = await gateway.batch(
    writes.map((w) => ({ method: updateMethod(w.entity), params: { id: w.id, fields: w.fields, params: { REGISTER_SONET_EVENT: 'N' } } })),
  );
  for (const [i, w] of writes.entries()) {
    const outcome = outcomes[i]!;
    if (outcome.ok) {
      await store.projections.save(run.portalId, w.entity, w.id, w.fields, run.now);
    } else {
      run.deps.log.warn({ portalId: run.portalId, entity: w.entity, id: w.id, error: outcome.error, description: outcome.description }, 'crm.projection_failed');
    }
  }
  run.deps.log.info({ portalId: run.portalId, writes: writes.length }, 'crm.projections_written');
}

function personTarget(m: Member): PersonRef | null {
  if (m.contactId) return { entity: 'contact', id: m.contactId };
  if (m.leadId) return { entity: 'lead', id: m.leadId };
  return null;
}

function rewardOf(entries: LedgerEntry[]): number {
  return entries.filter((e) => e.reason === 'referral').reduce((sum, e) => sum + e.amount, 0);
}

async function clientDealsOf(store: Repos, portalId: number, memberId: number): Promise<ClientDeal[]> {
  const deals = await store.deals.forClient(portalId, memberId);
  return deals.map((d) => ({ dealId: d.dealId, won: d.won && !d.deleted, firstWonAt: d.firstWonAt, amount: d.amount }));
}

