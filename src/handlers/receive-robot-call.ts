/**
 * POST /b24/robots/:code (issue 10, reference §8.2, SPEC 9): an automation robot of one of
 * Sarafan's five codes ran on a deal or lead. The sender is authenticated first (the portal's
 * `application_token`, constant time, as for events: 401 and nothing stored otherwise), then the
 * call is validated (400 naming the field), stored once per event token and queued as a
 * `robot.run` job keyed by the token's hash; the portal gets its 200 at once and the worker
 * answers the workflow. A repeated event token stores and queues nothing: it is the same call.
 */
import { createHash } from 'node:crypto';
import { AppError } from './errors.js';
import { verifyApplicationToken } from './verify-application-token.js';
import { ROBOT_CODES, type Deps, type RobotAnswer, type RobotCode } from './ports.js';

export interface InboundRobotCall {
  /** The `:code` of the path. */
  pathCode: string;
  memberId: string | null;
  applicationToken: string | null;
  userId: string | null;
  /**
   * The validated call (the route's schema, src/bitrix/robot-payloads.ts): throws a 400 AppError
   * naming the field. Called only once the sender is authenticated.
   */
  readCall: () => RobotCallInput;
}

export interface RobotCallInput {
  code: string;
  event_token: string;
  /** `[module, document class, id]`, e.g. `['crm', 'CCrmDocumentDeal', 'DEAL_12']`. */
  document_id: [string, string, string];
  properties?: Record<string, string>;
}

export type RobotCallResult = { status: 'queued' } | { status: 'repeated'; answer: RobotAnswer | null };

export const robotTokenHash = (eventToken: string): string => createHash('sha256').update(eventToken, 'utf8').digest('hex');

const isRobotCode = (code: string): code is RobotCode => (ROBOT_CODES as readonly string[]).includes(code);

export async function receiveRobotCall(deps: Deps, inbound: InboundRobotCall): Promise<RobotCallResult> {
  if (inbound.memberId === null || inbound.applicationToken === null) {
    deps.log.warn({ memberId: inbound.memberId, reason: 'missing_credentials' }, 'robot.rejected');
    throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  }
  const verdict = await verifyApplicationToken(deps.store.installations, inbound.memberId, inbound.applicationToken);
  if (!verdict.ok) {
    deps.log.warn({ memberId: inbound.memberId, reason: verdict.reason }, 'robot.rejected');
    throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  }
  const installation = verdict.installation;
  if (!isRobotCode(inbound.pathCode)) {
    throw new AppError('bad_request', 'Invalid robot call: code', [{ path: 'code', message: `not one of ${ROBOT_CODES.join(', ')}` }]);
  }
  const call = inbound.readCall();
  // The template salts codes per environment (reference §8.4); Sarafan registers them bare, so they must agree.
  if (call.code !== inbound.pathCode) {
    throw new AppError('bad_request', 'Invalid robot call: code', [{ path: 'code', message: `does not match the robot of this address (${inbound.pathCode})` }]);
  }
  const userId = inbound.userId !== null && /^\d{1,10}$/.test(inbound.userId) ? Number(inbound.userId) : null;
  const tokenHash = robotTokenHash(call.event_token);
  const now = deps.clock.now();
  // The call and its job in one transaction: an acknowledged call is always queued (Bitrix24
  // does not call a robot's handler twice).
  const code: RobotCode = inbound.pathCode;
  const recorded = await deps.store.transaction(async (tx) => {
    const got = await tx.robotCalls.record(
      {
        portalId: installation.id,
        tokenHash,
        eventToken: call.event_token,
        code,
        documentId: call.document_id[2],
        properties: call.properties ?? {},
        userId: userId !== null && userId > 0 ? userId : null,
      },
      now,
    );
    // A repeat of a call not answered yet queues again (its job may have died); the queue
    // coalesces it with a queued job, and a run finds an answered call done.
    if (got.created || got.call.answeredAt === null) {
      await tx.jobs.enqueue({ portalId: installation.id, kind: 'robot.run', key: `robot:${tokenHash}`, payload: { tokenHash } }, now);
    }
    return got;
  });
  if (!recorded.created && recorded.call.answeredAt !== null) {
    deps.log.info({ portalId: installation.id, code: inbound.pathCode }, 'robot.repeated');
    return { status: 'repeated', answer: recorded.call.answer };
  }
  deps.log.info({ portalId: installation.id, code: inbound.pathCode, repeated: !recorded.created }, 'robot.queued');
  return recorded.created ? { status: 'queued' } : { status: 'repeated', answer: null };
}
