/**
 * Mounting a view as the entry does, with a fake portal (the frame SDK's place) and a fake API
 * that answers only the requests a test declares — any other request fails the test.
 */
import { mount, flushPromises, type VueWrapper } from '@vue/test-utils';
import { createPinia, setActivePinia } from 'pinia';
import { defineComponent, h, type Component } from 'vue';
import b24UiPlugin from '@bitrix24/b24ui-nuxt/vue-plugin';
import { ApiError, type Api, type RequestOptions } from '../../client/src/api';
import { DEPS, FORMATS } from '../../client/src/context';
import { formats } from '../../client/src/format';
import type { Lang, PickedPerson, Pipeline, Portal } from '../../client/src/frame';
import { createTexts } from '../../client/src/i18n';
import adminEn from '../../client/src/i18n/admin/en';
import adminRu from '../../client/src/i18n/admin/ru';
import en from '../../client/src/i18n/en';
import ru from '../../client/src/i18n/ru';
import type { PersonRef } from '../../client/src/types';

export interface Call {
  method: string;
  path: string;
  body: unknown;
  idempotencyKey: string | undefined;
}

type Answer = unknown | ((call: Call) => unknown);

/** Routes are "METHOD /path" (query included); an answer that is an ApiError is thrown. */
export class FakeApi {
  readonly calls: Call[] = [];
  private readonly routes = new Map<string, Answer[]>();
  private readonly pending = new Map<string, { resolve: () => void; promise: Promise<void> }>();

  on(route: string, ...answers: Answer[]): this {
    this.routes.set(route, answers);
    return this;
  }

  /** The next request to `route` waits until release(route). */
  hold(route: string): this {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.pending.set(route, { resolve, promise });
    return this;
  }

  release(route: string): void {
    this.pending.get(route)?.resolve();
    this.pending.delete(route);
  }

  readonly api: Api = async <T>(path: string, options: RequestOptions = {}): Promise<T> => {
    const call: Call = { method: options.method ?? 'GET', path, body: options.body, idempotencyKey: options.idempotencyKey };
    this.calls.push(call);
    const route = `${call.method} ${path}`;
    const held = this.pending.get(route);
    if (held) await held.promise;
    const answers = this.routes.get(route);
    if (!answers || answers.length === 0) throw new Error(`unexpected request: ${route}`);
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    const value = typeof answer === 'function' ? (answer as (c: Call) => unknown)(call) : answer;
    if (value instanceof ApiError) throw value;
    return structuredClone(value) as T;
  };

  // Downloads (CSV exports): recorded as `GET path` calls; only declared paths answer.
  private readonly files = new Map<string, Blob | ApiError>();

  onDownload(path: string, file: Blob | ApiError): this {
    this.files.set(path, file);
    return this;
  }

  readonly download = async (path: string): Promise<Blob> => {
    this.calls.push({ method: 'GET', path, body: undefined, idempotencyKey: undefined });
    const file = this.files.get(path);
    if (!file) throw new Error(`unexpected download: ${path}`);
    if (file instanceof ApiError) throw file;
    return file;
  };
}

export class FakePortal implements Portal {
  lang: Lang = 'en';
  placement = 'CRM_DEAL_DETAIL_TAB';
  options: Record<string, unknown> = {};
  isAdmin = false;
  fits = 0;
  opened: (PersonRef | { entity: 'deal'; id: number })[] = [];
  dealWrites: { dealId: number; claim: unknown }[] = [];
  picks: (PickedPerson | null)[] = [];
  people = new Map<string, string>();
  refreshes = 0;

  auth() {
    return { accessToken: 'user-token', memberId: 'member-1' };
  }
  async refreshAuth() {
    this.refreshes++;
    return this.auth();
  }
  async names(people: PersonRef[]) {
    return new Map(people.map((p) => [`${p.entity}:${p.id}`, this.people.get(`${p.entity}:${p.id}`)]).filter((e): e is [string, string] => !!e[1]));
  }
  async pickPerson() {
    return this.picks.shift() ?? null;
  }
  async open(target: PersonRef | { entity: 'deal'; id: number }) {
    this.opened.push(target);
  }
  async setDealReferral(dealId: number, claim: unknown) {
    this.dealWrites.push({ dealId, claim });
  }
  pipelineList: Pipeline[] = [{ id: 0, name: 'Общее' }];
  users = new Map<number, string>();
  async pipelines() {
    return this.pipelineList;
  }
  async userNames(ids: number[]) {
    return new Map(ids.map((id) => [id, this.users.get(id)]).filter((e): e is [number, string] => !!e[1]));
  }
  fit() {
    this.fits++;
  }
}

export interface Mounted {
  wrapper: VueWrapper;
  api: FakeApi;
  portal: FakePortal;
  delays: number[];
}

export async function mountView(view: Component, props: Record<string, unknown>, setup: { api: FakeApi; portal?: FakePortal; lang?: Lang; currency?: string; now?: Date }): Promise<Mounted> {
  const portal = setup.portal ?? new FakePortal();
  if (setup.lang) portal.lang = setup.lang;
  const pinia = createPinia();
  setActivePinia(pinia);
  const delays: number[] = [];
  let keys = 0;
  const Root = defineComponent({ render: () => h(view, props) });
  const wrapper = mount(Root, {
    attachTo: document.body,
    global: {
      plugins: [pinia, createTexts(portal.lang, portal.lang === 'ru' ? { ...ru, ...adminRu } : { ...en, ...adminEn }), b24UiPlugin],
      provide: {
        [DEPS as symbol]: {
          api: setup.api.api,
          portal,
          newKey: () => `key-${++keys}`,
          delay: async (ms: number) => {
            delays.push(ms);
          },
          download: setup.api.download,
          // A fixed day unless the test names one: no assertion depends on the wall clock.
          now: () => new Date(setup.now ?? '2026-12-03T10:00:00.000Z'),
        },
        [FORMATS as symbol]: formats(portal.lang, () => setup.currency ?? 'RUB'),
      },
    },
  });
  await flushPromises();
  return { wrapper, api: setup.api, portal, delays };
}

export const byTestId = (w: VueWrapper, id: string) => w.find(`[data-testid="${id}"]`);

export { flushPromises };

/** An element's text with the non-breaking spaces Intl puts into amounts made plain. */
export const textOf = (w: VueWrapper, id: string): string => byTestId(w, id).text().replace(/[\u00a0\u202f]/g, ' ');
