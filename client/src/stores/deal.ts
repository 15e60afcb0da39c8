/**
 * The deal tab's state: the deal's referral, the rewards it caused, its client's balance and the
 * redemption form's limits; its actions set the referral (a code or a person picked in the CRM
 * selector, written to the deal's fields as a manager would) and redeem bonus against the deal.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import { useDeps } from '../context';
import type { CodeCheck, DealAnswer, PersonRef } from '../types';
import { viewError, type LoadState, type ViewError } from './load-state';
import { useNamesStore } from './names';

/** How long the tab waits for Sarafan to process a referral it saved (polls of 1 s). */
const SAVE_POLLS = 15;

export type CodeState =
  | { state: 'empty' }
  | { state: 'checking'; code: string }
  | { state: 'valid'; code: string; referrer: PersonRef }
  | { state: 'invalid'; code: string; reason: 'unknown_code' | 'malformed' }
  | { state: 'failed'; code: string; message: string };

const CODE_SHAPE = /^[A-Za-z0-9-]{4,16}$/;

export const useDealStore = defineStore('deal', () => {
  const { api, portal, newKey, delay } = useDeps();
  const names = useNamesStore();

  const dealId = ref<number | null>(null);
  const deal = ref<DealAnswer | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);
  const code = ref<CodeState>({ state: 'empty' });
  const saving = ref<'idle' | 'saving' | 'waiting' | 'saved'>('idle');
  let codeSeq = 0;

  async function fetchDeal(id: number): Promise<DealAnswer> {
    const answer = await api<DealAnswer>(`/api/deals/${id}`);
    void names.resolve([answer.referral?.referrer, answer.client, ...answer.entries.map((e) => e.member), ...answer.coupons.map((c) => c.member)]);
    return answer;
  }

  async function load(id: number): Promise<void> {
    dealId.value = id;
    state.value = 'loading';
    error.value = null;
    try {
      deal.value = await fetchDeal(id);
      state.value = 'ready';
    } catch (e) {
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  /** Checks a typed code; only the answer to the latest input is kept. */
  async function checkCode(input: string): Promise<void> {
    const typed = input.trim().toUpperCase();
    const seq = ++codeSeq;
    if (!typed) {
      code.value = { state: 'empty' };
      return;
    }
    if (!CODE_SHAPE.test(typed)) {
      code.value = { state: 'invalid', code: typed, reason: 'malformed' };
      return;
    }
    code.value = { state: 'checking', code: typed };
    try {
      const answer = await api<CodeCheck>(`/api/codes/${encodeURIComponent(typed)}`);
      if (seq !== codeSeq) return;
      if (answer.valid) {
        code.value = { state: 'valid', code: answer.code, referrer: answer.referrer };
        void names.resolve([answer.referrer]);
      } else {
        code.value = { state: 'invalid', code: typed, reason: answer.reason };
      }
    } catch (e) {
      if (seq === codeSeq) code.value = { state: 'failed', code: typed, message: e instanceof Error ? e.message : String(e) };
    }
  }

  /** Writes the claim to the deal, then waits for Sarafan to record the referral. */
  async function saveReferral(claim: { code: string } | { referrer: PersonRef }): Promise<void> {
    const id = dealId.value;
    if (id === null) return;
    saving.value = 'saving';
    try {
      await portal.setDealReferral(id, claim);
      saving.value = 'waiting';
      for (let i = 0; i < SAVE_POLLS; i++) {
        await delay(1000);
        const answer = await fetchDeal(id);
        deal.value = answer;
        if (answer.referral) break;
      }
      saving.value = 'saved';
      code.value = { state: 'empty' };
    } catch (e) {
      saving.value = 'idle';
      throw e;
    }
  }

  async function pickReferrer(): Promise<boolean> {
    const picked = await portal.pickPerson();
    if (!picked) return false;
    await saveReferral({ referrer: { entity: picked.entity, id: picked.id } });
    return true;
  }

  /** Redeems bonus against the deal; refusals (409) reach the caller as ApiError. */
  async function redeem(amount: number): Promise<{ amount: number; total: number }> {
    const id = dealId.value;
    if (id === null) throw new Error('no deal');
    await api(`/api/deals/${id}/redeem`, { method: 'POST', body: { amount }, idempotencyKey: newKey() });
    deal.value = await fetchDeal(id);
    return { amount, total: deal.value.dealTotal ?? 0 };
  }

  return { dealId, deal, state, error, code, saving, load, checkCode, saveReferral, pickReferrer, redeem };
});
