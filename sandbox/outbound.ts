/**
 * What the sandbox portal sends to applications (reference §1.2–1.6, §4.2, §8.2, §12
 * "Emulator-side outbound behaviours"):
 * - after every CRM change, the bound ONCRM… events, form-encoded with bracket keys, to every
 *   handler of an installed app; token-less when a robot made the change; never before
 *   installFinish;
 * - on entering a deal or lead stage, the robots put on that stage, one after another, each
 *   waiting for `bizproc.event.send` unless it does not subscribe; a robot's condition is
 *   evaluated when its turn comes (false: skipped), and its properties may use what earlier
 *   robots returned (`{=A<id>:key}`, sandbox/robot-expressions.ts);
 * - the install: the wizard form POSTed to the app's install URL, ONAPPINSTALL once the frame
 *   (or the headless installer) calls installFinish; ONAPPUNINSTALL on removal.
 * Like Bitrix24, a failed delivery is not retried. Tests can make deliveries drop, repeat,
 * wait or arrive in another order (`setFaults`).
 */
import { randomBytes } from 'node:crypto';
import qs from 'qs';
import { realClock, sleepOn, type SandboxClock } from './clock.js';
import { frameForm, frameUrl } from './frame-request.js';
import { activityName, evaluateCondition, resolveExpressions, type ExpressionScope } from './robot-expressions.js';
import type { ChangeNote, EntityKind, Portal, Row, SandboxApp, StageRobot } from './types.js';

export interface Faults {
  /** Drop the next N event deliveries. */
  drop: number;
  /** Deliver each of the next N events twice. */
  duplicate: number;
  /** Hold every delivery this long before sending it. */
  delayMs: number;
  /** Collect the next N events and deliver them in reverse order. */
  reorder: number;
}

export interface Delivery {
  id: number;
  event: string;
  handler: string;
  /** HTTP status, 0 when the request failed, null while pending. */
  status: number | null;
  error?: string;
  dropped?: boolean;
  at: string;
}

export interface OutboundOptions {
  fetchImpl?: typeof fetch;
  /** Event timestamps, delivery delays and timeouts, robot waits (default the real clock). */
  clock?: SandboxClock;
  /** Per delivery; default 10 s (Bitrix24 drops slow handlers too). */
  timeoutMs?: number;
  /** How long a subscribed robot waits for bizproc.event.send before the next one runs; default 10 min. */
  robotWaitMs?: number;
  log?: (msg: string, extra?: Row) => void;
}

const EVENT_NAMES: Record<EntityKind, Record<ChangeNote['kind'], string>> = {
  deal: { add: 'ONCRMDEALADD', update: 'ONCRMDEALUPDATE', delete: 'ONCRMDEALDELETE' },
  lead: { add: 'ONCRMLEADADD', update: 'ONCRMLEADUPDATE', delete: 'ONCRMLEADDELETE' },
  contact: { add: 'ONCRMCONTACTADD', update: 'ONCRMCONTACTUPDATE', delete: 'ONCRMCONTACTDELETE' },
};

const DOCUMENT_TYPES = {
  deal: ['crm', 'CCrmDocumentDeal', 'DEAL'],
  lead: ['crm', 'CCrmDocumentLead', 'LEAD'],
} as const;

/** One stage entry's automation workflow: its id (shared by its robots) and their return values by activity name. */
interface Workflow {
  id: string | null;
  results: Map<string, Row>;
}

interface Pending {
  event: string;
  handler: string;
  body: string;
}

export class Outbound {
  private faults: Faults = { drop: 0, duplicate: 0, delayMs: 0, reorder: 0 };
  private readonly held: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly robotChains = new Map<string, Promise<void>>();
  readonly deliveries: Delivery[] = [];
  private nextDelivery = 1;
  private readonly unsubscribe: () => void;
  private readonly fetchImpl: typeof fetch;
  private readonly log: NonNullable<OutboundOptions['log']>;
  private readonly clock: SandboxClock;

  constructor(
    private readonly portal: Portal,
    private readonly opts: OutboundOptions = {},
  ) {
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.log = opts.log ?? (() => {});
    this.clock = opts.clock ?? realClock;
    this.unsubscribe = portal.onChange((note) => this.onChange(note));
  }

  setFaults(f: Partial<Faults>): Faults {
    for (const [k, v] of Object.entries(f)) {
      if (!(k in this.faults)) throw new Error(`unknown fault "${k}" (known: ${Object.keys(this.faults).join(', ')})`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`fault "${k}" must be a non-negative integer`);
    }
    this.faults = { ...this.faults, ...f };
    if (this.faults.reorder === 0) this.releaseHeld();
    return { ...this.faults };
  }

  getFaults(): Faults {
    return { ...this.faults };
  }

  /** Resolves once nothing is being delivered and no robot chain is running. */
  async idle(): Promise<void> {
    while (this.inFlight.size || this.robotChains.size) {
      await Promise.allSettled([...this.inFlight, ...this.robotChains.values()]);
    }
  }

  close(): void {
    this.unsubscribe();
  }

  // ---------------------------------------------------------------- install lifecycle

  /**
   * Installs without a browser: POSTs the wizard form like the install slider would (reference
   * §1.3) and then finishes the install as the page's `installFinish()` would.
   */
  async installHeadless(clientId: string, userId = 1): Promise<{ status: number; body: string }> {
    const app = this.requireApp(clientId);
    const form = frameForm(this.portal, app, this.portal.issueTokens(clientId, userId), 'DEFAULT', null);
    const page = await this.postForm(frameUrl(this.portal, app.installUrl, randomBytes(16).toString('hex')), new URLSearchParams(form).toString());
    if (page.status !== 200) return page;
    await this.installFinished(clientId);
    return page;
  }

  /** installFinish was called: the app is installed, ONAPPINSTALL goes to its handlers (reference §1.5). */
  async installFinished(clientId: string): Promise<void> {
    const app = this.portal.setAppInstalled(clientId, true);
    const body = {
      event: 'ONAPPINSTALL',
      data: { VERSION: app.version, ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'ru' },
      ts: this.ts(),
      auth: this.authWithTokens(app, this.firstAdmin(), true),
    };
    await this.sendToBound(app, 'ONAPPINSTALL', body, { immediate: true });
  }

  /** Uninstall: ONAPPUNINSTALL (no tokens, reference §1.6) to the handlers bound before removal. */
  async uninstall(clientId: string, clean: boolean): Promise<void> {
    const app = this.requireApp(clientId);
    if (app.installed && app.applicationToken) {
      const body = { event: 'ONAPPUNINSTALL', data: { LANGUAGE_ID: 'ru', CLEAN: clean ? '1' : '0' }, ts: this.ts(), auth: this.authBase(app) };
      await this.sendToBound(app, 'ONAPPUNINSTALL', body, { immediate: true });
    }
    this.portal.uninstallApp(clientId, clean);
    await this.idle();
  }

  // ---------------------------------------------------------------- CRM events and robots

  private onChange(note: ChangeNote): void {
    const event = EVENT_NAMES[note.entity][note.kind];
    for (const app of this.portal.apps()) {
      if (!app.installed || !app.applicationToken) continue;
      // Reference §4.2: the acting user's tokens (no refresh token); none when a robot acted.
      const auth = note.actor.byRobot ? this.authBase(app) : this.authWithTokens(app, note.actor.userId, false);
      const body = { event, data: { FIELDS: { ID: String(note.id) } }, ts: this.ts(), auth };
      void this.sendToBound(app, event, body, {});
    }
    if (note.enteredStage && (note.entity === 'deal' || note.entity === 'lead')) {
      this.startRobots(note.entity, note.id, note.enteredStage);
    }
  }

  private startRobots(entity: 'deal' | 'lead', id: number, stageId: string): void {
    const docType = entity === 'deal' ? 'DEAL' : 'LEAD';
    const robots = this.portal
      .stageRobots()
      .filter((r) => r.documentType === docType && r.stageId === stageId)
      .sort((a, b) => a.id - b.id);
    if (!robots.length) return;
    // Robots of one document run one after another, like an automation rule chain; the robots of
    // one stage entry are one workflow, whose earlier robots' return values the later ones read.
    const key = `${entity}:${id}`;
    const previous = this.robotChains.get(key) ?? Promise.resolve();
    const chain = previous.then(async () => {
      const workflow: Workflow = { id: null, results: new Map() };
      for (const r of robots) await this.runRobot(r, entity, id, workflow);
    });
    const tracked = chain.catch((e: unknown) => this.log('robot.chain_failed', { error: String(e) })).finally(() => {
      if (this.robotChains.get(key) === tracked) this.robotChains.delete(key);
    });
    this.robotChains.set(key, tracked);
  }

  /**
   * One robot's turn: its condition is evaluated now (with what the earlier robots returned), its
   * properties resolved, the call posted; a subscribed robot holds the chain until
   * bizproc.event.send (or robotWaitMs), and its return values join the workflow's results.
   */
  private async runRobot(stageRobot: StageRobot, entity: 'deal' | 'lead', id: number, workflow: Workflow): Promise<void> {
    const app = this.portal.app(stageRobot.clientId);
    const robot = this.portal.robots().find((r) => r.clientId === stageRobot.clientId && r.code === stageRobot.code);
    if (!app?.installed || !app.applicationToken || !robot) return;
    const document = this.portal.getEntity(entity, id);
    if (!document) return;
    const scope: ExpressionScope = { document, results: workflow.results };
    const base = { clientId: app.clientId, code: robot.code, document: { entity, id }, subscribe: robot.useSubscription, stageRobotId: stageRobot.id };
    if (stageRobot.condition) {
      const verdict = evaluateCondition(stageRobot.condition, scope);
      if (!verdict.pass) {
        const run = this.portal.startRobotRun({ ...base, ...(workflow.id ? { workflowId: workflow.id } : {}), skipped: `Условие не выполнено: ${verdict.explained} — робот пропущен` });
        workflow.id ??= run.workflowId;
        this.log('robot.skipped', { code: robot.code, condition: verdict.explained });
        return;
      }
    }
    const properties: Row = {};
    for (const [k, v] of Object.entries(stageRobot.properties)) properties[k] = resolveExpressions(v, scope);
    const run = this.portal.startRobotRun({ ...base, ...(workflow.id ? { workflowId: workflow.id } : {}), properties });
    workflow.id ??= run.workflowId;
    const body = {
      workflow_id: run.workflowId,
      code: robot.code,
      document_id: [...DOCUMENT_TYPES[entity].slice(0, 2), `${DOCUMENT_TYPES[entity][2]}_${id}`],
      document_type: [...DOCUMENT_TYPES[entity]],
      event_token: run.eventToken,
      properties,
      use_subscription: robot.useSubscription ? 'Y' : 'N',
      timeout_duration: '0',
      ts: this.ts(),
      auth: this.authWithTokens(app, robot.authUserId, true),
    };
    const delivered = await this.deliver({ event: `robot:${robot.code}`, handler: robot.handler, body: qs.stringify(body) });
    if (!delivered || !robot.useSubscription) return;
    await this.waitForAnswer(run.eventToken);
    const answered = this.portal.robotRuns().find((r) => r.eventToken === run.eventToken);
    if (answered?.returnValues) workflow.results.set(activityName(stageRobot.id), answered.returnValues);
  }

  private async waitForAnswer(eventToken: string): Promise<void> {
    const deadline = this.clock.now() + (this.opts.robotWaitMs ?? 600_000);
    while (this.clock.now() < deadline) {
      const run = this.portal.robotRuns().find((r) => r.eventToken === eventToken);
      if (!run || run.status !== 'waiting') return;
      await sleepOn(this.clock, 50);
    }
    this.log('robot.answer_timeout', {});
  }

  // ---------------------------------------------------------------- delivery

  /** Immediate deliveries (the install lifecycle) skip the faults and are awaited; CRM events are scheduled. */
  private async sendToBound(app: SandboxApp, event: string, body: Row, opts: { immediate?: boolean }): Promise<void> {
    const encoded = qs.stringify(body);
    const sent: Promise<void>[] = [];
    for (const b of this.portal.eventBindings()) {
      if (b.clientId !== app.clientId || b.event !== event || b.offline) continue;
      const pending = { event, handler: b.handler, body: `${encoded}&event_handler_id=${encodeURIComponent(String(bindingId(b.handler, event)))}` };
      if (opts.immediate) sent.push(this.deliver(pending).then(() => undefined));
      else this.schedule(pending);
    }
    await Promise.all(sent);
  }

  private schedule(p: Pending): void {
    if (this.faults.drop > 0) {
      this.faults.drop--;
      this.deliveries.push({ id: this.nextDelivery++, event: p.event, handler: p.handler, status: null, dropped: true, at: this.at() });
      return;
    }
    const copies = this.faults.duplicate > 0 ? (this.faults.duplicate--, 2) : 1;
    for (let i = 0; i < copies; i++) {
      if (this.faults.reorder > 0) {
        this.held.push(p);
        if (this.held.length >= this.faults.reorder) {
          this.faults.reorder = 0;
          this.releaseHeld();
        }
        continue;
      }
      this.dispatch(p);
    }
  }

  private releaseHeld(): void {
    const held = this.held.splice(0).reverse();
    for (const p of held) this.dispatch(p);
  }

  private dispatch(p: Pending): void {
    const delay = this.faults.delayMs;
    const run = delay > 0 ? sleepOn(this.clock, delay).then(() => this.deliver(p)) : this.deliver(p);
    this.track(run.then(() => undefined));
  }

  private track(p: Promise<void>): void {
    const t = p.finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
  }

  /** One POST, no retry (Bitrix24 never retries, reference §4.4). */
  private async deliver(p: Pending): Promise<boolean> {
    const d: Delivery = { id: this.nextDelivery++, event: p.event, handler: p.handler, status: null, at: this.at() };
    this.deliveries.push(d);
    if (this.deliveries.length > 1000) this.deliveries.splice(0, this.deliveries.length - 1000);
    const r = await this.postForm(p.handler, p.body);
    d.status = r.status;
    if (r.status < 200 || r.status >= 300) {
      d.error = r.body.slice(0, 200);
      this.log('event.delivery_failed', { event: p.event, handler: p.handler, status: r.status });
      return false;
    }
    return true;
  }

  /**
   * One POST under one deadline for the answer and its body. The deadline settles the delivery by
   * itself: Node's fetch can leave `res.text()` pending forever when its signal aborts while the
   * body is being read (nodejs/node#56917), and a delivery that never settles keeps idle() — and
   * every caller waiting for a quiet portal — waiting forever.
   */
  private async postForm(url: string, form: Row | string): Promise<{ status: number; body: string }> {
    const controller = new AbortController();
    let timer: { cancel(): void } | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      // What AbortSignal.timeout would abort with, but on the sandbox's clock.
      timer = this.clock.setTimer(this.opts.timeoutMs ?? 10_000, () => {
        const error = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
        controller.abort(error);
        reject(error);
      });
    });
    const answer = (async () => {
      const res = await this.fetchImpl(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'Bitrix24 Webhook Engine (sandbox)' },
        body: typeof form === 'string' ? form : qs.stringify(form),
        signal: controller.signal,
        redirect: 'manual',
      });
      return { status: res.status, body: await res.text() };
    })();
    try {
      return await Promise.race([answer, deadline]);
    } catch (e) {
      return { status: 0, body: e instanceof Error ? e.message : String(e) };
    } finally {
      timer?.cancel();
    }
  }

  /** Unix seconds, as the `ts` of every outbound form. */
  private ts(): string {
    return String(Math.floor(this.clock.now() / 1000));
  }

  private at(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private authBase(app: SandboxApp): Row {
    return {
      domain: this.portal.domain,
      client_endpoint: `${this.portal.origin}/rest/`,
      server_endpoint: `${this.portal.origin}/rest/`,
      member_id: this.portal.memberId,
      application_token: app.applicationToken ?? '',
      scope: app.scope,
      status: 'L',
    };
  }

  private authWithTokens(app: SandboxApp, userId: number, withRefresh: boolean): Row {
    const t = this.portal.sessionTokens(app.clientId, userId);
    return {
      ...this.authBase(app),
      access_token: t.accessToken,
      ...(withRefresh ? { refresh_token: t.refreshToken } : {}),
      expires: String(t.expires),
      expires_in: String(t.expiresIn),
      user_id: String(userId),
    };
  }

  private requireApp(clientId: string): SandboxApp {
    const app = this.portal.app(clientId);
    if (!app) throw new Error(`no application ${clientId} on this portal`);
    return app;
  }

  private firstAdmin(): number {
    return this.portal.users().find((u) => u.ADMIN)?.ID ?? 1;
  }
}

/** A stable handler id per (handler, event), like Bitrix24's event_handler_id. */
function bindingId(handler: string, event: string): number {
  let h = 0;
  for (const c of `${event}|${handler}`) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 100_000;
}
