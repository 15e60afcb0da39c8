/**
 * The only module that touches the Bitrix24 frame SDK (@bitrix24/b24jssdk, imported as a module).
 * Everything the views need from the portal goes through the `Portal` interface below, so
 * component and store tests hand in a fake one and never load the SDK.
 */
import { initializeB24Frame, type B24Frame } from '@bitrix24/b24jssdk';
import type { PersonRef } from './types';

export type Lang = 'ru' | 'en';

export interface FrameAuth {
  /** The user's access token, sent to our API (SPEC 3); never stored or logged. */
  accessToken: string;
  memberId: string;
}

export interface PickedPerson extends PersonRef {
  title: string;
}

/** What the UI needs of the portal around it. */
export interface Portal {
  lang: Lang;
  placement: string;
  /** The placement's options, e.g. `{ ID: '12' }` for a card tab. */
  options: Record<string, unknown>;
  isAdmin: boolean;
  auth(): FrameAuth;
  /** Fresh tokens from the portal (after our API answered 401). */
  refreshAuth(): Promise<FrameAuth>;
  /** Names of CRM people, read with the user's own rights; a person the user may not see is left out. */
  names(people: PersonRef[]): Promise<Map<string, string>>;
  /** The portal's CRM selector; null when the user closed it without a choice. */
  pickPerson(): Promise<PickedPerson | null>;
  /** Opens a CRM card in the portal's slider. */
  open(person: PersonRef | { entity: 'deal'; id: number }): Promise<void>;
  /** Sets (or clears) the deal's referral fields as a manager would in the card. */
  setDealReferral(dealId: number, claim: { code: string } | { referrer: PersonRef }): Promise<void>;
  /** The portal's deal pipelines (categories), read with the user's rights; sorted as the portal sorts them. */
  pipelines(): Promise<Pipeline[]>;
  /** Names of portal users (who saved a program version), read with the user's rights. */
  userNames(ids: number[]): Promise<Map<number, string>>;
  /** Fits the frame to the content; called after every content change. */
  fit(): void;
}

export interface Pipeline {
  id: number;
  name: string;
}

export const personKey = (p: PersonRef): string => `${p.entity}:${p.id}`;

const CRM_PREFIX = { contact: 'C', lead: 'L' } as const;

/** `C_5` / `L_7`, the portal's CRM binding form (reference §3.3), to a person. */
export function personFromBinding(value: unknown): PersonRef | null {
  const m = /^(C|L)_(\d+)$/.exec(String(value ?? ''));
  if (!m) return null;
  return { entity: m[1] === 'C' ? 'contact' : 'lead', id: Number(m[2]) };
}

function toLang(value: string | null | undefined): Lang {
  return /^(ru|ua|by|kz)$/i.test(String(value ?? '')) ? 'ru' : 'en';
}

function personName(row: Record<string, unknown>): string {
  const parts = [row.NAME, row.LAST_NAME].map((v) => String(v ?? '').trim()).filter(Boolean);
  if (parts.length) return parts.join(' ');
  return String(row.TITLE ?? '').trim();
}

interface CallResult {
  getData(): { result?: unknown } | unknown;
}

class SdkPortal implements Portal {
  readonly lang: Lang;
  readonly placement: string;
  readonly options: Record<string, unknown>;
  readonly isAdmin: boolean;
  private fitQueued = false;

  constructor(private readonly b24: B24Frame) {
    this.lang = toLang(b24.getLang());
    this.placement = b24.placement.placement;
    this.options = (b24.placement.options ?? {}) as Record<string, unknown>;
    this.isAdmin = b24.auth.isAdmin;
  }

  auth(): FrameAuth {
    const data = this.b24.auth.getAuthData();
    if (!data) return { accessToken: '', memberId: '' };
    return { accessToken: data.access_token, memberId: data.member_id ?? '' };
  }

  async refreshAuth(): Promise<FrameAuth> {
    await this.b24.auth.refreshAuth();
    return this.auth();
  }

  private async call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const response = (await this.b24.actions.v2.call.make({ method, params })) as unknown as CallResult & { isSuccess: boolean; getErrorMessages(): string[] };
    if (!response.isSuccess) throw new Error(response.getErrorMessages().join('; ') || `${method} failed`);
    const data = response.getData() as { result?: unknown };
    return data?.result ?? data;
  }

  async names(people: PersonRef[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const entity of ['contact', 'lead'] as const) {
      const ids = [...new Set(people.filter((p) => p.entity === entity).map((p) => p.id))];
      // crm.*.list answers 50 rows a page: ask in slices of 50 ids.
      for (let i = 0; i < ids.length; i += 50) {
        const slice = ids.slice(i, i + 50);
        const select = entity === 'contact' ? ['ID', 'NAME', 'LAST_NAME'] : ['ID', 'NAME', 'LAST_NAME', 'TITLE'];
        const rows = (await this.call(`crm.${entity}.list`, { filter: { ID: slice }, select, start: -1 })) as Record<string, unknown>[];
        for (const row of Array.isArray(rows) ? rows : []) {
          const name = personName(row);
          if (name) out.set(`${entity}:${Number(row.ID)}`, name);
        }
      }
    }
    return out;
  }

  async pipelines(): Promise<Pipeline[]> {
    const result = (await this.call('crm.category.list', { entityTypeId: 2 })) as { categories?: Record<string, unknown>[] } | null;
    return (result?.categories ?? [])
      .map((c) => ({ id: Number(c.id), name: String(c.name ?? ''), sort: Number(c.sort ?? 0) }))
      .filter((c) => Number.isInteger(c.id) && c.id >= 0)
      .sort((a, b) => a.sort - b.sort || a.id - b.id)
      .map(({ id, name }) => ({ id, name }));
  }

  async userNames(ids: number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const wanted = [...new Set(ids)].filter((id) => Number.isInteger(id) && id > 0);
    // user.get answers 50 rows a page.
    for (let i = 0; i < wanted.length; i += 50) {
      const rows = (await this.call('user.get', { FILTER: { ID: wanted.slice(i, i + 50) } })) as Record<string, unknown>[];
      for (const row of Array.isArray(rows) ? rows : []) {
        const name = personName(row);
        if (name) out.set(Number(row.ID), name);
      }
    }
    return out;
  }

  async pickPerson(): Promise<PickedPerson | null> {
    const picked = await this.b24.dialog.selectCRM({ entityType: ['contact', 'lead'], multiple: false, value: [] } as never);
    const item = (picked.contact?.[0] ?? picked.lead?.[0]) as { id?: unknown; title?: unknown } | undefined;
    const person = personFromBinding(item?.id);
    return person ? { ...person, title: String(item?.title ?? '') } : null;
  }

  async open(target: PersonRef | { entity: 'deal'; id: number }): Promise<void> {
    const url = new URL(`/crm/${target.entity}/details/${target.id}/`, this.b24.getTargetOrigin());
    await this.b24.slider.openPath(url);
  }

  async setDealReferral(dealId: number, claim: { code: string } | { referrer: PersonRef }): Promise<void> {
    const fields = 'code' in claim
      ? { UF_CRM_SARAFAN_REF_CODE: claim.code }
      : { UF_CRM_SARAFAN_REFERRER: `${CRM_PREFIX[claim.referrer.entity]}_${claim.referrer.id}`, UF_CRM_SARAFAN_REF_CODE: '' };
    await this.call('crm.deal.update', { id: dealId, fields });
  }

  fit(): void {
    if (this.fitQueued) return;
    this.fitQueued = true;
    requestAnimationFrame(() => {
      this.fitQueued = false;
      const node = document.getElementById('app');
      void this.b24.parent.resizeWindowAuto(node, 120).catch(() => undefined);
    });
  }
}

/** Connects to the portal around the frame; rejects when the page is not inside Bitrix24. */
export async function connectPortal(): Promise<Portal> {
  const b24 = await initializeB24Frame();
  const portal = new SdkPortal(b24);
  // Content changes (data arriving, a form opening) change the height: keep the frame fitted.
  const app = document.getElementById('app');
  if (app && typeof ResizeObserver !== 'undefined') new ResizeObserver(() => portal.fit()).observe(app);
  return portal;
}
