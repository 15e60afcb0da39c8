/**
 * A contact or lead named by an API caller, confirmed through the CRM port before Sarafan creates
 * anything for it: ids are the caller's to choose, members are only made for people who exist.
 */
import { AppError } from './errors.js';
import type { CrmPerson, Deps, Installation, Member, PersonRef, Repos } from './ports.js';

export async function readCrmPerson(deps: Deps, installation: Installation, ref: PersonRef): Promise<CrmPerson> {
  const read = (await deps.crm.forInstallation(installation).read({ deals: [], people: [ref] })).people.get(`${ref.entity}:${ref.id}`)!;
  if (read.status === 'not_found') throw new AppError('not_found', `${ref.entity === 'lead' ? 'Lead' : 'Contact'} ${ref.id} not found`);
  if (read.status === 'failed') throw new AppError('portal_unavailable', `The portal did not answer for ${ref.entity} ${ref.id}`);
  return read.record;
}

/**
 * The member of a person read from the CRM, created if needed. A contact converted from a lead
 * that is a member takes over that member (SPEC 5: code, referral and balance follow), as in the
 * referral loop, so a manager acting on the contact never splits the person in two.
 */
export async function memberOfPerson(store: Pick<Repos, 'members'>, portalId: number, person: CrmPerson, now: Date): Promise<Member> {
  if (person.entity === 'contact' && person.leadId) {
    const leadMember = await store.members.findByEntity(portalId, 'lead', person.leadId);
    const taken = leadMember ? await store.members.attachContact(portalId, leadMember.id, person.id) : null;
    if (taken) return taken;
  }
  return store.members.ensure(portalId, person.entity, person.id, now);
}
