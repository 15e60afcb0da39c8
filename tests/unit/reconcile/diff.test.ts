import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../../install/manifest.js';
import type { Manifest } from '../../../src/bitrix/manifest-types.js';
import {
  diffRegistration,
  type PortalRegistration,
  type PortalUserField,
  type RegistrationCommand,
} from '../../../src/bitrix/reconcile.js';

const BASE = 'https://sarafan.example.com';
const OLD = 'https://old-host.example.net';
/** Robots have their own diff tests (robots-diff.test.ts): here fields, events and placements. */
const manifest: Manifest = { ...buildManifest(BASE), robots: [] };

const empty = (): PortalRegistration => ({ userFields: { deal: [], contact: [], lead: [] }, events: [], placements: [], robots: [] });

/** A portal where everything of the manifest is registered, read back the way Bitrix answers. */
function registered(m: Manifest = manifest): PortalRegistration {
  const state = empty();
  let id = 200;
  for (const f of m.userFields) {
    state.userFields[f.entity].push({
      ID: String(id++),
      FIELD_NAME: f.fieldName,
      USER_TYPE_ID: f.userTypeId,
      XML_ID: f.xmlId,
      MULTIPLE: 'N',
      EDIT_IN_LIST: f.editInList,
      // Read back typed by the core: precision as a string, unset CRM flags as null.
      SETTINGS:
        f.userTypeId === 'double'
          ? { PRECISION: '2', SIZE: 20, MIN_VALUE: 0, MAX_VALUE: 0, DEFAULT_VALUE: null }
          : f.userTypeId === 'crm'
            ? { LEAD: 'Y', CONTACT: 'Y', COMPANY: null, DEAL: null }
            : {},
    });
  }
  state.events = m.events.map((e) => ({ event: e.event, handler: e.handler, offline: false }));
  state.placements = m.placements.map((p) => ({ placement: p.placement, handler: p.handler, title: p.title, userId: 0 }));
  return state;
}

function fieldOf(state: PortalRegistration, entity: 'deal' | 'contact' | 'lead', name: string): PortalUserField {
  const f = state.userFields[entity].find((x) => x.FIELD_NAME === name);
  if (!f) throw new Error(`no ${entity} ${name}`);
  return f;
}

const methods = (commands: RegistrationCommand[]) => commands.map((c) => c.command.method);
const count = (commands: RegistrationCommand[], method: string) => commands.filter((c) => c.command.method === method).length;

describe('diffRegistration: an empty portal', () => {
  const { commands, problems } = diffRegistration(manifest, empty());

  it('adds every field, binds every event and placement — exactly 24 + 10 + 3 commands', () => {
    expect(problems).toEqual([]);
    expect(count(commands, 'crm.contact.userfield.add')).toBe(10);
    expect(count(commands, 'crm.lead.userfield.add')).toBe(10);
    expect(count(commands, 'crm.deal.userfield.add')).toBe(4);
    expect(count(commands, 'event.bind')).toBe(10);
    expect(count(commands, 'placement.bind')).toBe(3);
    expect(commands).toHaveLength(37);
  });

  it('names each command after its item', () => {
    const items = commands.map((c) => c.item);
    expect(items).toContain('field:contact:UF_CRM_SARAFAN_CODE');
    expect(items).toContain('field:deal:UF_CRM_SARAFAN_REWARD');
    expect(items).toContain('event:ONCRMDEALUPDATE');
    expect(items).toContain('placement:CRM_DEAL_DETAIL_TAB');
    expect(new Set(items).size).toBe(items.length);
  });

  it('sends a complete field description', () => {
    const add = commands.find((c) => c.item === 'field:lead:UF_CRM_SARAFAN_BALANCE');
    expect(add?.command).toEqual({
      method: 'crm.lead.userfield.add',
      params: {
        fields: {
          FIELD_NAME: 'UF_CRM_SARAFAN_BALANCE',
          USER_TYPE_ID: 'double',
          XML_ID: 'uf_crm_sarafan_balance',
          LABEL: 'Sarafan: available bonus',
          EDIT_FORM_LABEL: { ru: 'Сарафан: доступные бонусы', en: 'Sarafan: available bonus' },
          LIST_COLUMN_LABEL: { ru: 'Сарафан: доступные бонусы', en: 'Sarafan: available bonus' },
          LIST_FILTER_LABEL: { ru: 'Сарафан: доступные бонусы', en: 'Sarafan: available bonus' },
          MULTIPLE: 'N',
          MANDATORY: 'N',
          SHOW_FILTER: 'Y',
          SHOW_IN_LIST: 'Y',
          EDIT_IN_LIST: 'N',
          SORT: expect.any(Number),
          SETTINGS: { PRECISION: 2 },
        },
      },
    });
    const referrer = commands.find((c) => c.item === 'field:deal:UF_CRM_SARAFAN_REFERRER');
    expect((referrer?.command.params as { fields: Record<string, unknown> }).fields.SETTINGS).toEqual({
      LEAD: 'Y',
      CONTACT: 'Y',
      COMPANY: 'N',
      DEAL: 'N',
    });
  });

  it('binds events and placements with the documented parameter names', () => {
    expect(commands.find((c) => c.item === 'event:ONAPPINSTALL')?.command).toEqual({
      method: 'event.bind',
      params: { event: 'ONAPPINSTALL', handler: `${BASE}/b24/events` },
    });
    expect(commands.find((c) => c.item === 'placement:CRM_LEAD_DETAIL_TAB')?.command).toEqual({
      method: 'placement.bind',
      params: {
        PLACEMENT: 'CRM_LEAD_DETAIL_TAB',
        HANDLER: `${BASE}/b24/frame`,
        TITLE: 'Sarafan',
        LANG_ALL: {
          ru: { TITLE: 'Сарафан', DESCRIPTION: expect.any(String) },
          en: { TITLE: 'Sarafan', DESCRIPTION: expect.any(String) },
        },
      },
    });
  });
});

describe('diffRegistration: a registered portal', () => {
  it('needs nothing', () => {
    expect(diffRegistration(manifest, registered())).toEqual({ commands: [], problems: [], robots: {} });
  });

  it('compares event and placement names case-insensitively, handlers exactly', () => {
    const state = registered();
    state.events = state.events.map((e) => ({ ...e, event: e.event.toLowerCase() }));
    state.placements = state.placements.map((p) => ({ ...p, placement: p.placement.toLowerCase() }));
    expect(diffRegistration(manifest, state).commands).toEqual([]);

    const slash = registered();
    slash.events = slash.events.map((e) => (e.event === 'ONCRMLEADADD' ? { ...e, handler: `${e.handler}/` } : e));
    expect(methods(diffRegistration(manifest, slash).commands)).toEqual(['event.unbind', 'event.bind']);
  });

  it('ignores fields, bindings and placements of others, and offline bindings', () => {
    const state = registered();
    state.userFields.contact.push({
      ID: '5',
      FIELD_NAME: 'UF_CRM_1724412832',
      USER_TYPE_ID: 'address',
      XML_ID: null,
      MULTIPLE: 'Y',
      EDIT_IN_LIST: 'Y',
      SETTINGS: {},
    });
    state.events.push(
      { event: 'ONCRMDEALUPDATE', handler: 'https://other-app.example/hook', offline: false },
      { event: 'ONCRMCOMPANYADD', handler: `${OLD}/b24/events`, offline: false },
      { event: 'ONCRMDEALUPDATE', handler: '', offline: true },
    );
    state.placements.push({ placement: 'CRM_DEAL_DETAIL_TAB', handler: 'https://other-app.example/tab', title: 'X', userId: 0 });
    expect(diffRegistration(manifest, state)).toEqual({ commands: [], problems: [], robots: {} });
  });
});

describe('diffRegistration: stale handlers', () => {
  it('unbinds our route on an old base URL and binds the current one, unbinds first', () => {
    const state = registered();
    state.events = state.events.map((e) => (e.event === 'ONCRMDEALUPDATE' ? { ...e, handler: `${OLD}/b24/events` } : e));
    state.userFields.contact = state.userFields.contact.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_TIER');
    const { commands } = diffRegistration(manifest, state);
    expect(commands.map((c) => [c.item, c.command])).toEqual([
      ['event:ONCRMDEALUPDATE', { method: 'event.unbind', params: { event: 'ONCRMDEALUPDATE', handler: `${OLD}/b24/events` } }],
      ['field:contact:UF_CRM_SARAFAN_TIER', expect.objectContaining({ method: 'crm.contact.userfield.add' })],
      ['event:ONCRMDEALUPDATE', { method: 'event.bind', params: { event: 'ONCRMDEALUPDATE', handler: `${BASE}/b24/events` } }],
    ]);
  });

  it('unbinds a stale handler once even when it is bound for several users', () => {
    const state = registered();
    const stale = { event: 'ONAPPUPDATE', handler: `${OLD}/b24/events`, offline: false };
    state.events.push(stale, { ...stale });
    expect(diffRegistration(manifest, state).commands).toEqual([
      { item: 'event:ONAPPUPDATE', command: { method: 'event.unbind', params: { event: 'ONAPPUPDATE', handler: `${OLD}/b24/events` } } },
    ]);
  });

  it('does the same for placements moved to another base URL', () => {
    const state = registered();
    state.placements = state.placements.map((p) =>
      p.placement === 'CRM_CONTACT_DETAIL_TAB' ? { ...p, handler: `${OLD}/sarafan/b24/frame` } : p,
    );
    const { commands } = diffRegistration(manifest, state);
    expect(commands.map((c) => c.command)).toEqual([
      { method: 'placement.unbind', params: { PLACEMENT: 'CRM_CONTACT_DETAIL_TAB', HANDLER: `${OLD}/sarafan/b24/frame` } },
      expect.objectContaining({ method: 'placement.bind', params: expect.objectContaining({ HANDLER: `${BASE}/b24/frame` }) }),
    ]);
  });
});

describe('diffRegistration: drifted fields', () => {
  it('reports a type mismatch as a problem, not a command', () => {
    const state = registered();
    fieldOf(state, 'contact', 'UF_CRM_SARAFAN_BALANCE').USER_TYPE_ID = 'string';
    const { commands, problems } = diffRegistration(manifest, state);
    expect(commands).toEqual([]);
    expect(problems).toEqual([{ item: 'field:contact:UF_CRM_SARAFAN_BALANCE', error: expect.stringMatching(/USER_TYPE_ID is 'string', expected 'double'/) }]);
  });

  it('reports a multiple field as a problem', () => {
    const state = registered();
    fieldOf(state, 'deal', 'UF_CRM_SARAFAN_REFERRER').MULTIPLE = 'Y';
    const { commands, problems } = diffRegistration(manifest, state);
    expect(commands).toEqual([]);
    expect(problems).toEqual([{ item: 'field:deal:UF_CRM_SARAFAN_REFERRER', error: expect.stringMatching(/MULTIPLE is 'Y'/) }]);
  });

  it('updates only the drifted precision, keeping the other settings', () => {
    const state = registered();
    const f = fieldOf(state, 'lead', 'UF_CRM_SARAFAN_PENDING');
    f.SETTINGS = { ...f.SETTINGS, PRECISION: 0 };
    expect(diffRegistration(manifest, state).commands).toEqual([
      {
        item: 'field:lead:UF_CRM_SARAFAN_PENDING',
        command: {
          method: 'crm.lead.userfield.update',
          params: { id: f.ID, fields: { SETTINGS: { PRECISION: 2, SIZE: 20, MIN_VALUE: 0, MAX_VALUE: 0, DEFAULT_VALUE: null } } },
        },
      },
    ]);
  });

  it('updates drifted CRM entity flags and keeps types an admin added', () => {
    const state = registered();
    const f = fieldOf(state, 'contact', 'UF_CRM_SARAFAN_REFERRER');
    f.SETTINGS = { LEAD: null, CONTACT: 'Y', COMPANY: 'Y', DEAL: null, DYNAMIC_1224: 'Y' };
    const { commands } = diffRegistration(manifest, state);
    expect(commands.map((c) => c.command)).toEqual([
      {
        method: 'crm.contact.userfield.update',
        params: { id: f.ID, fields: { SETTINGS: { LEAD: 'Y', CONTACT: 'Y', COMPANY: 'N', DEAL: 'N', DYNAMIC_1224: 'Y' } } },
      },
    ]);
  });

  it('updates only XML_ID or EDIT_IN_LIST when that is all that differs', () => {
    const state = registered();
    const code = fieldOf(state, 'contact', 'UF_CRM_SARAFAN_CODE');
    code.EDIT_IN_LIST = 'Y';
    const reward = fieldOf(state, 'deal', 'UF_CRM_SARAFAN_REWARD');
    reward.XML_ID = null;
    expect(diffRegistration(manifest, state).commands.map((c) => c.command)).toEqual([
      { method: 'crm.contact.userfield.update', params: { id: code.ID, fields: { EDIT_IN_LIST: 'N' } } },
      { method: 'crm.deal.userfield.update', params: { id: reward.ID, fields: { XML_ID: 'uf_crm_sarafan_reward' } } },
    ]);
  });

  it('treats settings read back as `[]` as empty and still adds the missing keys', () => {
    const state = registered();
    const f = fieldOf(state, 'deal', 'UF_CRM_SARAFAN_REDEEMED');
    f.SETTINGS = {};
    expect(diffRegistration(manifest, state).commands.map((c) => c.command)).toEqual([
      { method: 'crm.deal.userfield.update', params: { id: f.ID, fields: { SETTINGS: { PRECISION: 2 } } } },
    ]);
  });
});

describe('diffRegistration is pure', () => {
  it('changes neither input and answers the same twice', () => {
    const state = registered();
    state.events[0] = { ...state.events[0]!, handler: `${OLD}/b24/events` };
    fieldOf(state, 'lead', 'UF_CRM_SARAFAN_BALANCE').SETTINGS = { PRECISION: 4 };
    const before = JSON.stringify([manifest, state]);
    const first = diffRegistration(manifest, state);
    expect(JSON.stringify([manifest, state])).toBe(before);
    expect(diffRegistration(manifest, state)).toEqual(first);
  });
});
