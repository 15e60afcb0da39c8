/**
 * The installation health's registration items (issue 12): one per declared field and entity,
 * event, placement and robot, judged by the reconciliation's own diff.
 */
import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../../install/manifest.js';
import { diffRegistration, robotHash, type PortalRegistration, type RobotContext } from '../../../src/bitrix/reconcile.js';
import { registrationItems } from '../../../src/bitrix/registration-health.js';

const BASE = 'https://sarafan.example.com';
const manifest = buildManifest(BASE);

/** Everything registered as Sarafan registers it, with the robots' hashes known. */
function registered(): { current: PortalRegistration; context: RobotContext } {
  const current: PortalRegistration = { userFields: { deal: [], contact: [], lead: [] }, events: [], placements: [], robots: [] };
  let id = 1;
  for (const f of manifest.userFields) {
    current.userFields[f.entity].push({
      ID: String(id++),
      FIELD_NAME: f.fieldName,
      USER_TYPE_ID: f.userTypeId,
      XML_ID: f.xmlId,
      MULTIPLE: 'N',
      EDIT_IN_LIST: f.editInList,
      SETTINGS: { ...f.settings },
    });
  }
  current.events = manifest.events.map((e) => ({ event: e.event, handler: e.handler, offline: false }));
  current.placements = manifest.placements.map((p) => ({ placement: p.placement, handler: p.handler, title: p.title, userId: 0 }));
  current.robots = manifest.robots.map((r) => r.code);
  const hashes = diffRegistration(manifest, { ...current, robots: [] }, { authUserId: 1, registered: {} }).robots;
  return { current, context: { authUserId: 1, registered: hashes } };
}

const itemsOf = (current: PortalRegistration, context: RobotContext) => registrationItems(manifest, current, diffRegistration(manifest, current, context));

describe('registration items', () => {
  it('lists every declared thing once, all present and without problems on a registered portal', () => {
    const { current, context } = registered();
    const items = itemsOf(current, context);
    const expected = manifest.userFields.length + manifest.events.length + manifest.placements.length + manifest.robots.length;
    expect(items).toHaveLength(expected);
    expect(new Set(items.map((i) => `${i.kind} ${i.name}`)).size).toBe(expected);
    expect(items.filter((i) => !i.present || i.problem !== null)).toEqual([]);
    expect(items).toContainEqual({ kind: 'field', name: 'UF_CRM_SARAFAN_CODE (contact)', present: true, problem: null });
    expect(items).toContainEqual({ kind: 'event', name: 'ONCRMDEALUPDATE', present: true, problem: null });
    expect(items).toContainEqual({ kind: 'placement', name: 'CRM_DEAL_DETAIL_TAB', present: true, problem: null });
    expect(items).toContainEqual({ kind: 'robot', name: 'sarafan_accrue', present: true, problem: null });
  });

  it('shows what is missing as absent, and what is wrong as present with its problem', () => {
    const { current, context } = registered();
    current.userFields.deal = current.userFields.deal.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_REWARD');
    const tier = current.userFields.lead.find((f) => f.FIELD_NAME === 'UF_CRM_SARAFAN_TIER')!;
    tier.USER_TYPE_ID = 'integer';
    const xml = current.userFields.contact.find((f) => f.FIELD_NAME === 'UF_CRM_SARAFAN_CODE')!;
    xml.XML_ID = 'something_else';
    current.events = current.events.filter((e) => e.event !== 'ONCRMLEADADD');
    const moved = current.events.find((e) => e.event === 'ONCRMDEALUPDATE')!;
    moved.handler = 'https://old-host.example.net/b24/events';
    current.placements = current.placements.filter((p) => p.placement !== 'CRM_LEAD_DETAIL_TAB');
    current.robots = current.robots!.filter((c) => c !== 'sarafan_promo');
    const outdated = { ...context, registered: { ...context.registered, sarafan_status: robotHash({ old: true }) } };

    const items = itemsOf(current, outdated);
    const wrong = items.filter((i) => !i.present || i.problem !== null);
    expect(wrong.map((i) => [i.kind, i.name, i.present])).toEqual([
      ['field', 'UF_CRM_SARAFAN_CODE (contact)', true],
      ['field', 'UF_CRM_SARAFAN_TIER (lead)', true],
      ['field', 'UF_CRM_SARAFAN_REWARD (deal)', false],
      ['event', 'ONCRMDEALUPDATE', true],
      ['event', 'ONCRMLEADADD', false],
      ['placement', 'CRM_LEAD_DETAIL_TAB', false],
      ['robot', 'sarafan_status', true],
      ['robot', 'sarafan_promo', false],
    ]);
    const problem = (name: string) => items.find((i) => i.name === name)!.problem;
    expect(problem('UF_CRM_SARAFAN_CODE (contact)')).toMatch(/XML_ID/);
    expect(problem('UF_CRM_SARAFAN_TIER (lead)')).toMatch(/USER_TYPE_ID is 'integer', expected 'string'/);
    expect(problem('ONCRMDEALUPDATE')).toBe(`bound to https://old-host.example.net/b24/events instead of ${BASE}/b24/events`);
    expect(problem('sarafan_status')).toMatch(/^outdated/);
    expect(problem('UF_CRM_SARAFAN_REWARD (deal)')).toBeNull();
  });
});
