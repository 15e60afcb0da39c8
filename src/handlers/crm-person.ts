/**
 * A contact or lead named by an API caller, confirmed through the CRM port before Sarafan creates
 * anything for it: ids are the caller's to choose, members are only made for people who exist.
 */
import { AppError } from './errors.js';
import type { CrmPerson, Deps, Installation, PersonRef } from './ports.js';

export async function readCrmPerson(deps: Deps, installation: Installation, ref: PersonRef): Promise<CrmPerson> {
  const read = (await deps.crm.forInstallation(installation).read({ deals: [], people: [ref] })).people.get(`${ref.entity}:${ref.id}`)!;
  if (read.status === 'not_found') throw new AppError('not_found', `${ref.entity === 'lead' ? 'Lead' : 'Contact'} ${ref.id} not found`);
  if (read.status === 'failed') throw new AppError('portal_unavailable', `The portal did not answer for ${ref.entity} ${ref.id}`);
  return read.record;
}
