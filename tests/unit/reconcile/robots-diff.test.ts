/**
 * The robot part of the registration diff (SPEC 4.4): `bizproc.robot.list` answers codes only,
 * so a robot is added when its code is missing, updated when the hash of what Sarafan last
 * registered differs from the wanted definition, and left alone otherwise.
 */
import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../../install/manifest.js';
import type { Manifest } from '../../../src/bitrix/manifest-types.js';
import { diffRegistration, robotHash, type PortalRegistration, type RobotContext } from '../../../src/bitrix/reconcile.js';

const BASE = 'https://sarafan.example.com';
const CODES = ['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo'];
/** Fields, events and placements are registered: only robots can differ here. */
const full = buildManifest(BASE);

function portalWith(robots: string[] | null, m: Manifest = full): PortalRegistration {
  const state: PortalRegistration = { userFields: { deal: [], contact: [], lead: [] }, events: [], placements: [], robots };
  let id = 1;
  for (const f of m.userFields) {
    state.userFields[f.entity].push({
      ID: String(id++),
      FIELD_NAME: f.fieldName,
      USER_TYPE_ID: f.userTypeId,
      XML_ID: f.xmlId,
      MULTIPLE: 'N',
      EDIT_IN_LIST: f.editInList,
      SETTINGS: { ...f.settings },
    });
  }
  state.events = m.events.map((e) => ({ event: e.event, handler: e.handler, offline: false }));
  state.placements = m.placements.map((p) => ({ placement: p.placement, handler: p.handler, title: p.title, userId: 0 }));
  return state;
}

/** What a report keeps after registering `m` for user 7. */
function registeredHashes(m: Manifest = full, authUserId: number | null = 7): Record<string, string> {
  return diffRegistration(m, portalWith([], m), { authUserId, registered: {} }).robots;
}

const ctx = (registered: Record<string, string> = registeredHashes()): RobotContext => ({ authUserId: 7, registered });

describe('robots: new', () => {
  const { commands, problems, robots } = diffRegistration(full, portalWith([]), ctx({}));

  it('adds each of the five with its full definition and the installing admin as AUTH_USER_ID', () => {
    expect(problems).toEqual([]);
    expect(commands.map((c) => c.item)).toEqual(CODES.map((c) => `robot:${c}`));
    expect(commands.every((c) => c.command.method === 'bizproc.robot.add')).toBe(true);
    expect(commands[1]!.command.params).toEqual({
      CODE: 'sarafan_redeem',
      HANDLER: `${BASE}/b24/robots/sarafan_redeem`,
      AUTH_USER_ID: 7,
      USE_SUBSCRIPTION: 'Y',
      NAME: { ru: 'Сарафан: списать бонусы', en: 'Sarafan: redeem bonus' },
      DESCRIPTION: {
        ru: 'Списывает бонусы клиента в оплату сделки в пределах правил программы',
        en: "Redeems the client's bonus against the deal within the program's limits",
      },
      PROPERTIES: {
        amount: {
          Name: { ru: 'Сумма списания', en: 'Amount to redeem' },
          Description: {
            ru: 'Сколько списать; пусто — максимум, который разрешает программа',
            en: 'How much to redeem; empty = the most the program allows',
          },
          Type: 'double',
          Required: 'N',
          Multiple: 'N',
        },
      },
      RETURN_PROPERTIES: {
        redeemed: expect.objectContaining({ Type: 'double' }),
        balance: expect.objectContaining({ Type: 'double' }),
        ok: expect.objectContaining({ Type: 'bool' }),
        error: expect.objectContaining({ Type: 'string' }),
      },
      FILTER: { INCLUDE: [['crm', 'CCrmDocumentDeal'], ['crm', 'CCrmDocumentLead']] },
    });
  });

  it('returns one definition hash per robot', () => {
    expect(Object.keys(robots)).toEqual(CODES);
    for (const hash of Object.values(robots)) expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('leaves AUTH_USER_ID to the portal when the installing user is not known', () => {
    const { commands: unknownUser } = diffRegistration(full, portalWith([]), { authUserId: null, registered: {} });
    expect(unknownUser[0]!.command.params).not.toHaveProperty('AUTH_USER_ID');
  });
});

describe('robots: unchanged', () => {
  it('sends nothing when every code is listed and its hash is what was registered last', () => {
    expect(diffRegistration(full, portalWith(CODES), ctx())).toEqual({ commands: [], problems: [], robots: registeredHashes() });
  });

  it('ignores codes of ours that are no longer declared and the list order', () => {
    const { commands } = diffRegistration(full, portalWith(['sarafan_old', ...[...CODES].reverse()]), ctx());
    expect(commands).toEqual([]);
  });
});

describe('robots: changed', () => {
  it('updates a robot whose definition changed since it was registered, with every field but CODE', () => {
    const changed: Manifest = structuredClone(full);
    changed.robots[2]!.returnProperties.tier!.Name = { ru: 'Уровень лояльности', en: 'Loyalty tier' };
    const { commands } = diffRegistration(changed, portalWith(CODES), ctx());
    expect(commands).toHaveLength(1);
    expect(commands[0]!.item).toBe('robot:sarafan_status');
    const { method, params } = commands[0]!.command;
    expect(method).toBe('bizproc.robot.update');
    expect(Object.keys(params!)).toEqual(['CODE', 'FIELDS']);
    expect(params!.CODE).toBe('sarafan_status');
    expect(params!.FIELDS).toMatchObject({
      HANDLER: `${BASE}/b24/robots/sarafan_status`,
      AUTH_USER_ID: 7,
      USE_SUBSCRIPTION: 'Y',
      RETURN_PROPERTIES: { tier: { Name: { ru: 'Уровень лояльности', en: 'Loyalty tier' } } },
    });
    expect(params!.FIELDS).not.toHaveProperty('CODE');
  });

  it('updates every robot when the base URL or the installing admin changes', () => {
    const moved = buildManifest('https://new.example.org');
    expect(diffRegistration(moved, portalWith(CODES, moved), ctx()).commands.map((c) => c.command.method)).toEqual(
      Array<string>(5).fill('bizproc.robot.update'),
    );
    const otherAdmin = diffRegistration(full, portalWith(CODES), { authUserId: 9, registered: registeredHashes() });
    expect(otherAdmin.commands).toHaveLength(5);
  });

  it('updates a listed robot Sarafan has no hash for (registered before hashes were kept)', () => {
    const registered = registeredHashes();
    delete registered.sarafan_enroll;
    const { commands } = diffRegistration(full, portalWith(CODES), ctx(registered));
    expect(commands.map((c) => [c.item, c.command.method])).toEqual([['robot:sarafan_enroll', 'bizproc.robot.update']]);
  });

  it('hashes definitions independently of key order', () => {
    expect(robotHash({ A: 1, B: { C: [1, 2], D: 'x' } })).toBe(robotHash({ B: { D: 'x', C: [1, 2] }, A: 1 }));
    expect(robotHash({ A: 1 })).not.toBe(robotHash({ A: '1' }));
  });
});

describe('robots: missing', () => {
  it('re-adds a robot deleted on the portal even though its hash is known', () => {
    const { commands } = diffRegistration(full, portalWith(CODES.filter((c) => c !== 'sarafan_promo')), ctx());
    expect(commands.map((c) => [c.item, c.command.method])).toEqual([['robot:sarafan_promo', 'bizproc.robot.add']]);
    expect(commands[0]!.command.params).toMatchObject({
      CODE: 'sarafan_promo',
      PROPERTIES: { code: { Type: 'string', Required: 'Y' } },
    });
  });

  it('reports every robot failed, and sends nothing, when the app lacks the bizproc scope', () => {
    const { commands, problems } = diffRegistration(full, portalWith(null), ctx());
    expect(commands).toEqual([]);
    expect(problems.map((p) => p.item)).toEqual(CODES.map((c) => `robot:${c}`));
    expect(problems[0]!.error).toMatch(/^MISSING_SCOPE: .*bizproc/);
  });
});
