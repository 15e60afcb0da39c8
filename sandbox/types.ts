/**
 * The sandbox portal's shared vocabulary: its persistent state and the facade every part uses
 * (REST methods, the web CRM, outbound delivery, the demo seed). One portal, one OAuth server,
 * several users and the applications installed on it.
 */

export type EntityKind = 'lead' | 'contact' | 'deal';

/** The operators of a robot condition (sandbox/robot-expressions.ts). */
export const CONDITION_OPERATORS = ['>', '>=', '<', '<=', '=', '!='] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

/** A stage robot's condition: run only if `operand operator value` holds (expressions resolved). */
export interface RobotCondition {
  /** An expression such as `{=A1:balance}` or `{=Document:OPPORTUNITY}`, or plain text. */
  operand: string;
  operator: ConditionOperator;
  value: string;
}
export type Row = Record<string, unknown>;

/** A row of an import: its fields and the dates it had where it came from (Unix ms, not after now). */
export interface ImportRow {
  fields: Row;
  createdAt: number;
  /** Close date / last stage move (default createdAt). */
  closedAt?: number;
}

export interface SandboxUser {
  ID: number;
  NAME: string;
  LAST_NAME: string;
  EMAIL: string;
  ADMIN: boolean;
}

/** An application known to the portal (a local app: its keys work only here). */
export interface SandboxApp {
  clientId: string;
  clientSecret: string;
  code: string;
  title: string;
  version: string;
  scope: string;
  /** The app's main page (PLACEMENT=DEFAULT) and the install wizard (reference §1.2). */
  handlerUrl: string;
  installUrl: string;
  /** The per-portal secret sent as auth[application_token]; set when the app is installed. */
  applicationToken: string | null;
  /** installFinish was called (reference §1.4): events are delivered, tabs are shown. */
  installed: boolean;
}

/** Who made a change: a user through REST or the web CRM, or a robot/workflow (token-less events). */
export interface Actor {
  userId: number;
  byRobot?: boolean;
  /** The application whose token made the REST call, if any. */
  clientId?: string;
}

export interface ChangeNote {
  kind: 'add' | 'update' | 'delete';
  entity: EntityKind;
  id: number;
  actor: Actor;
  /** Deal STAGE_ID or lead STATUS_ID entered by this change (add included), for robots. */
  enteredStage?: string;
}

export interface Stage {
  STATUS_ID: string;
  NAME: string;
  SORT: number;
  /** null = in progress, 'S' success, 'F' failure (crm.status.list SEMANTICS). */
  SEMANTICS: null | 'S' | 'F';
  COLOR: string;
  CATEGORY_ID: number;
}

export interface EventBinding {
  clientId: string;
  event: string;
  handler: string;
  authType: number;
  offline: number;
}

export interface PlacementBinding {
  clientId: string;
  placement: string;
  handler: string;
  title: string;
  description: string;
  langAll: Row;
  userId: number;
}

export interface RobotRegistration {
  clientId: string;
  code: string;
  handler: string;
  authUserId: number;
  useSubscription: boolean;
  name: string;
  description: string;
  properties: Row;
  returnProperties: Row;
  documentType: string[];
  /**
   * FILTER of bizproc.robot.add: where the robot is offered. Items are edition strings
   * (`b24`, `box`) or (partial) document types such as `['crm','CCrmDocumentDeal']`.
   */
  filter?: { include: (string | string[])[]; exclude: (string | string[])[] } | null;
}

/** A robot put on a stage on the automation page. */
export interface StageRobot {
  id: number;
  clientId: string;
  code: string;
  /** 'DEAL' or 'LEAD' */
  documentType: 'DEAL' | 'LEAD';
  stageId: string;
  /**
   * Property values, possibly with expressions resolved at run time: `{=Document:FIELD}`, and
   * `{=A<id>:key}` for a return value of an earlier robot on the same stage (sandbox/robot-expressions.ts).
   */
  properties: Record<string, string>;
  /** Run only if this holds when the robot's turn comes; otherwise the run is logged as skipped. */
  condition?: RobotCondition | null;
}

/** One robot run: waiting for bizproc.event.send unless the robot does not subscribe. */
export interface RobotRun {
  id: number;
  workflowId: string;
  eventToken: string;
  clientId: string;
  code: string;
  document: { entity: 'deal' | 'lead'; id: number };
  /** The stage robot this run is of, and its activity name (`A<id>`); absent on runs recorded before chains. */
  stageRobotId?: number | null;
  activity?: string;
  /** The property values sent, expressions resolved. */
  properties?: Row;
  /** `skipped`: its condition did not hold (the log says why); no call was made. */
  status: 'waiting' | 'done' | 'failed' | 'skipped';
  startedAt: number;
  finishedAt: number | null;
  returnValues: Row | null;
  log: string[];
}

export interface TimelineComment {
  ID: number;
  ENTITY_TYPE: string;
  ENTITY_ID: number;
  COMMENT: string;
  AUTHOR_ID: number;
  CREATED: string;
}

export interface Notification {
  ID: number;
  USER_ID: number;
  MESSAGE: string;
  TAG: string | null;
  FROM_CLIENT_ID: string | null;
  CREATED: string;
}

export interface ListQuery {
  filter?: Row;
  order?: Record<string, string>;
  select?: string[];
  /** 0, 50, 100 … or -1 (no COUNT: total 0, no next). */
  start?: number;
}

export interface ListPage {
  rows: Row[];
  /** 0 when start = -1. */
  total: number;
  next?: number;
}

/** A refused operation: the REST layer turns it into Bitrix24's error envelope. */
export class PortalError extends Error {
  constructor(
    /** Bitrix24 error code; '' for legacy CRM errors (reference §3.2). */
    readonly code: string,
    readonly description: string,
    readonly status = 400,
    readonly argument?: string,
  ) {
    super(`${code || '(empty code)'}: ${description}`);
  }
}

/**
 * What the portal can do, independent of how it is reached (REST, web CRM, seed). Every
 * mutation persists the state and reports a ChangeNote to the listeners (outbound events,
 * robots). Values read back are in the legacy CRM shape: UPPER_CASE keys, strings.
 */
export interface Portal {
  readonly domain: string;
  readonly memberId: string;
  readonly protocol: 'http' | 'https';
  /** `${protocol}://${domain}` */
  readonly origin: string;

  users(): SandboxUser[];
  user(id: number): SandboxUser | null;

  apps(): SandboxApp[];
  app(clientId: string): SandboxApp | null;
  /** The app's options (app.option.get / setAppOption from a frame). */
  appOptions(clientId: string): Row;
  setAppOptions(clientId: string, options: Row): void;
  /** Registers (or updates) an application known to the portal. */
  upsertApp(app: Omit<SandboxApp, 'applicationToken' | 'installed'>): SandboxApp;

  /** A token pair for a user of an app (what the portal hands to a page or an event). */
  issueTokens(clientId: string, userId: number): { accessToken: string; refreshToken: string; expires: number; expiresIn: number };
  /** The user's current pair for an app, as events and robot calls carry it (reused while fresh). */
  sessionTokens(clientId: string, userId: number): { accessToken: string; refreshToken: string; expires: number; expiresIn: number };

  addEntity(kind: EntityKind, fields: Row, actor: Actor): number;
  /** An import: rows added with the dates they had elsewhere (DATE_CREATE kept, closed at closedAt); returns their ids. */
  importEntities(kind: EntityKind, items: readonly ImportRow[], actor: Actor): number[];
  updateEntity(kind: EntityKind, id: number, fields: Row, actor: Actor): void;
  deleteEntity(kind: EntityKind, id: number, actor: Actor): void;
  getEntity(kind: EntityKind, id: number): Row | null;
  listEntities(kind: EntityKind, query: ListQuery): ListPage;
  /** Lead → contact (+ a deal when withDeal); the lead moves to CONVERTED. */
  convertLead(leadId: number, actor: Actor, opts?: { withDeal?: boolean }): { contactId: number; dealId: number | null };

  /** Deal stages of a funnel (category) or lead statuses. */
  stages(kind: 'deal' | 'lead', categoryId?: number): Stage[];
  categories(): { id: number; name: string; sort: number; isDefault: boolean }[];
  /** A new deal pipeline (stages NEW, EXECUTING, WON, LOSE prefixed C<id>:); an existing name returns its id. */
  addCategory(name: string): number;

  userFields(kind: EntityKind): Row[];

  eventBindings(): EventBinding[];
  placements(): PlacementBinding[];
  robots(): RobotRegistration[];
  stageRobots(): StageRobot[];
  addStageRobot(r: Omit<StageRobot, 'id'>): StageRobot;
  removeStageRobot(id: number): void;
  robotRuns(): RobotRun[];
  timeline(entity: EntityKind, id: number): TimelineComment[];
  notifications(userId?: number): Notification[];

  /** installFinish (reference §1.4): a fresh application token unless one is given; events flow from now on. */
  setAppInstalled(clientId: string, installed: boolean): SandboxApp;
  /** Uninstall (reference §1.6): drops the app's event and placement bindings and stage robots; CLEAN drops its options too. */
  uninstallApp(clientId: string, clean: boolean): void;

  /**
   * A run starts waiting (or done at once when the robot does not subscribe); `skipped` records a
   * run whose condition did not hold, with `reason` in its log. Robots of one stage entry share
   * `workflowId` (one automation workflow); the event token carries the robot's activity name.
   */
  startRobotRun(
    run: Pick<RobotRun, 'clientId' | 'code' | 'document'> & { subscribe: boolean; stageRobotId?: number; workflowId?: string; properties?: Row; skipped?: string },
  ): RobotRun;
  /** bizproc.event.send: a token works once; unknown or used → PortalError ACCESS_DENIED 403. */
  finishRobotRun(eventToken: string, returnValues: Row, logMessage?: string): RobotRun;
  /** bizproc.activity.log. */
  logRobotRun(eventToken: string, message: string): void;

  onChange(listener: (note: ChangeNote) => void): () => void;
}
