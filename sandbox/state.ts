/**
 * The sandbox portal's persistent state: one plain JSON-serializable object, loaded once and
 * saved (debounced, atomically: write a temporary file, then rename) after every mutation.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { realClock, type SandboxClock, type SandboxTimer } from './clock.js';
import type {
  EntityKind,
  EventBinding,
  Notification,
  PlacementBinding,
  RobotRegistration,
  RobotRun,
  Row,
  SandboxApp,
  SandboxUser,
  Stage,
  StageRobot,
  TimelineComment,
} from './types.js';

export interface AccessTokenRecord {
  clientId: string;
  userId: number;
  /** Unix ms. */
  expiresAt: number;
  refreshToken: string;
}

export interface RefreshTokenRecord {
  clientId: string;
  userId: number;
  accessToken: string;
  /** Unix ms. */
  expiresAt: number;
}

export interface EntityTable {
  nextId: number;
  /** Rows in the legacy read shape (UPPER_CASE keys, strings), keyed by ID. */
  rows: Record<string, Row>;
}

export interface Category {
  id: number;
  name: string;
  sort: number;
  isDefault: boolean;
}

export interface Currency {
  CURRENCY: string;
  AMOUNT_CNT: number;
  AMOUNT: string;
  SORT: number;
  BASE: 'Y' | 'N';
  FULL_NAME: string;
}

export interface Activity {
  id: number;
  ownerTypeId: number;
  ownerId: number;
  title: string;
  description: string;
  deadline: string;
  responsibleId: number;
  created: string;
}

export interface SandboxState {
  version: 1;
  portal: { domain: string; protocol: 'http' | 'https'; memberId: string };
  users: SandboxUser[];
  apps: SandboxApp[];
  accessTokens: Record<string, AccessTokenRecord>;
  refreshTokens: Record<string, RefreshTokenRecord>;
  entities: Record<EntityKind, EntityTable>;
  /** Next id of a multifield value (PHONE/EMAIL rows). */
  nextMultifieldId: number;
  /** User field descriptors per entity, in the userfield.get shape (labels as language maps). */
  userFields: Record<EntityKind, Row[]>;
  nextUserFieldId: number;
  nextEnumId: number;
  eventBindings: EventBinding[];
  placements: PlacementBinding[];
  robots: RobotRegistration[];
  stageRobots: StageRobot[];
  nextStageRobotId: number;
  robotRuns: RobotRun[];
  nextRobotRunId: number;
  appOptions: Record<string, Row>;
  timeline: TimelineComment[];
  nextTimelineId: number;
  notifications: Notification[];
  nextNotificationId: number;
  activities: Activity[];
  nextActivityId: number;
  categories: Category[];
  /** Deal stages of every funnel (CATEGORY_ID tells which). */
  dealStages: Stage[];
  leadStatuses: Stage[];
  currencies: Currency[];
}

const stage = (STATUS_ID: string, NAME: string, SORT: number, SEMANTICS: Stage['SEMANTICS'], COLOR: string, CATEGORY_ID = 0): Stage => ({
  STATUS_ID,
  NAME,
  SORT,
  SEMANTICS,
  COLOR,
  CATEGORY_ID,
});

export function defaultState(portal: SandboxState['portal']): SandboxState {
  return {
    version: 1,
    portal: { ...portal },
    users: [
      { ID: 1, NAME: 'Анна', LAST_NAME: 'Администратор', EMAIL: 'admin@sandbox.local', ADMIN: true },
      { ID: 2, NAME: 'Иван', LAST_NAME: 'Менеджер', EMAIL: 'manager@sandbox.local', ADMIN: false },
    ],
    apps: [],
    accessTokens: {},
    refreshTokens: {},
    entities: {
      lead: { nextId: 1, rows: {} },
      contact: { nextId: 1, rows: {} },
      deal: { nextId: 1, rows: {} },
    },
    nextMultifieldId: 1,
    userFields: { lead: [], contact: [], deal: [] },
    nextUserFieldId: 1,
    nextEnumId: 1,
    eventBindings: [],
    placements: [],
    robots: [],
    stageRobots: [],
    nextStageRobotId: 1,
    robotRuns: [],
    nextRobotRunId: 1,
    appOptions: {},
    timeline: [],
    nextTimelineId: 1,
    notifications: [],
    nextNotificationId: 1,
    activities: [],
    nextActivityId: 1,
    categories: [
      { id: 0, name: 'Общая', sort: 100, isDefault: true },
      { id: 1, name: 'Повторные продажи', sort: 200, isDefault: false },
    ],
    dealStages: [
      stage('NEW', 'Новая', 10, null, '#39A8EF'),
      stage('PREPARATION', 'Подготовка документов', 20, null, '#2FC6F6'),
      stage('PREPAYMENT_INVOICE', 'Счёт на предоплату', 30, null, '#55D0E0'),
      stage('EXECUTING', 'В работе', 40, null, '#47E4C2'),
      stage('FINAL_INVOICE', 'Финальный счёт', 50, null, '#FFA900'),
      stage('WON', 'Сделка успешна', 60, 'S', '#7BD500'),
      stage('LOSE', 'Сделка провалена', 70, 'F', '#FF5752'),
      stage('APOLOGY', 'Анализ причины провала', 80, 'F', '#FF5752'),
      stage('C1:NEW', 'Новая', 10, null, '#39A8EF', 1),
      stage('C1:EXECUTING', 'В работе', 20, null, '#47E4C2', 1),
      stage('C1:WON', 'Сделка успешна', 30, 'S', '#7BD500', 1),
      stage('C1:LOSE', 'Сделка провалена', 40, 'F', '#FF5752', 1),
    ],
    leadStatuses: [
      stage('NEW', 'Не обработан', 10, null, '#39A8EF'),
      stage('IN_PROCESS', 'В работе', 20, null, '#2FC6F6'),
      stage('PROCESSED', 'Обработан', 30, null, '#FFA900'),
      stage('CONVERTED', 'Качественный лид', 40, 'S', '#7BD500'),
      stage('JUNK', 'Некачественный лид', 50, 'F', '#FF5752'),
    ],
    currencies: [
      { CURRENCY: 'RUB', AMOUNT_CNT: 1, AMOUNT: '1.0000', SORT: 100, BASE: 'Y', FULL_NAME: 'Российский рубль' },
      { CURRENCY: 'USD', AMOUNT_CNT: 1, AMOUNT: '90.0000', SORT: 200, BASE: 'N', FULL_NAME: 'Доллар США' },
      { CURRENCY: 'EUR', AMOUNT_CNT: 1, AMOUNT: '100.0000', SORT: 300, BASE: 'N', FULL_NAME: 'Евро' },
    ],
  };
}

/**
 * Reads the state from `file` (when given and present), filling keys a newer version added
 * from `defaults`; otherwise returns `defaults`.
 */
export function loadState(file: string | null, defaults: SandboxState): SandboxState {
  if (!file || !existsSync(file)) return defaults;
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<SandboxState>;
  return { ...defaults, ...raw } as SandboxState;
}

/** Debounced atomic writer of one state object to one file (no-op without a file). */
export class StateSaver {
  private timer: SandboxTimer | null = null;

  constructor(
    private readonly file: string | null,
    private readonly state: () => SandboxState,
    private readonly clock: SandboxClock = realClock,
    private readonly delayMs = 100,
  ) {}

  /** Schedules a save. */
  touch(): void {
    if (!this.file || this.timer) return;
    this.timer = this.clock.setTimer(this.delayMs, () => {
      this.timer = null;
      try {
        this.write();
      } catch (e) {
        console.error('sandbox: cannot save the state', e);
      }
    });
  }

  /** Writes now if a save is pending (or always when `force`). */
  flush(force = false): void {
    if (!this.file) return;
    if (this.timer) {
      this.timer.cancel();
      this.timer = null;
    } else if (!force) return;
    this.write();
  }

  private write(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state()));
    renameSync(tmp, this.file);
  }
}
