/**
 * POST /api/members/:entity/:id/enroll (SPEC 3, 7): a manager enrols a contact or lead in the
 * program — it gets a referral code and link, written to its CRM fields. Idempotent: a member
 * with a code keeps it (codes are never replaced or reused). The person is read through the CRM
 * port first (404 when the portal has no such person); a contact converted from a lead that is
 * already a member takes over that member (SPEC 5), as in the referral loop.
 */
import { generateCode } from '../rules/codes.js';
import { memberOfPerson, readCrmPerson } from './crm-person.js';
import { AppError } from './errors.js';
import { currentProgram } from './program-versions.js';
import { oweProjections, projectNow } from './project-after-commit.js';
import { projectionKey, type Deps, type Installation, type Member, type PersonRef } from './ports.js';

const CODE_ATTEMPTS = 8;

export async function enrollMember(deps: Deps, installation: Installation, ref: PersonRef): Promise<{ member: Member; enrolledNow: boolean }> {
  const { store } = deps;
  const portalId = installation.id;
  const person = await readCrmPerson(deps, installation, ref);
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);

  const { member, enrolledNow, jobKey } = await store.transaction(async (tx) => {
    const member = await memberOfPerson(tx, portalId, person, now);
    if (member.code !== null) return { member, enrolledNow: false, jobKey: null };
    for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
      const result = await tx.members.enroll(portalId, member.id, generateCode(deps.randomBytes, { prefix: program.enrol.codePrefix }), now);
      if (result === 'code_taken') continue;
      const jobKey = await oweProjections(deps, tx, portalId, { memberIds: [result.id], dealIds: [] }, now);
      return { member: result, enrolledNow: true, jobKey };
    }
    throw new AppError('internal', `Could not find a free referral code after ${CODE_ATTEMPTS} attempts`);
  });

  if (jobKey) {
    deps.log.info({ portalId, memberId: member.id, entity: ref.entity }, 'member.enrolled');
    // What the person shows now was just read: only the differences are written.
    await projectNow(deps, installation, { memberIds: [member.id], dealIds: [] }, jobKey, new Map([[projectionKey(person.entity, person.id), person.shown]]));
  }
  return { member, enrolledNow };
}
