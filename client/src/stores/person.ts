/**
 * The contact and lead tab's state: the person's code, link, balance, tier, the people they
 * referred, the ledger (paged), coupons; its actions enrol the person, activate a promo code and
 * (admins) adjust the balance with a mandatory comment.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import { useDeps } from '../context';
import type { LedgerItem, MemberAnswer, PersonEntity, ReferralNode, ReferralTree } from '../types';
import { viewError, type LoadState, type ViewError } from './load-state';
import { useNamesStore } from './names';

export const PAGE = 20;

function peopleOf(nodes: ReferralNode[]): ReferralNode['person'][] {
  return nodes.flatMap((n) => [n.person, ...peopleOf(n.children)]);
}

export const usePersonStore = defineStore('person', () => {
  const { api, newKey } = useDeps();
  const names = useNamesStore();

  const who = ref<{ entity: PersonEntity; id: number } | null>(null);
  const member = ref<MemberAnswer | null>(null);
  const ledger = ref<LedgerItem[]>([]);
  const nextBefore = ref<number | null>(null);
  const tree = ref<ReferralTree | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);
  const loadingMore = ref(false);

  const base = (): string => {
    if (!who.value) throw new Error('no person');
    return `/api/members/${who.value.entity}/${who.value.id}`;
  };

  function take(answer: MemberAnswer): void {
    member.value = answer;
    ledger.value = answer.ledger;
    nextBefore.value = answer.nextBefore;
    void names.resolve([answer.referrer]);
  }

  async function refresh(): Promise<void> {
    const [answer, referred] = await Promise.all([api<MemberAnswer>(`${base()}?limit=${PAGE}`), api<ReferralTree>(`${base()}/referrals`)]);
    take(answer);
    tree.value = referred;
    void names.resolve(peopleOf(referred.referrals));
  }

  async function load(entity: PersonEntity, id: number): Promise<void> {
    who.value = { entity, id };
    state.value = 'loading';
    error.value = null;
    try {
      await refresh();
      state.value = 'ready';
    } catch (e) {
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  async function loadMore(): Promise<void> {
    if (nextBefore.value === null || loadingMore.value) return;
    loadingMore.value = true;
    try {
      const page = await api<MemberAnswer>(`${base()}?limit=${PAGE}&before=${nextBefore.value}`);
      ledger.value = [...ledger.value, ...page.ledger];
      nextBefore.value = page.nextBefore;
    } finally {
      loadingMore.value = false;
    }
  }

  async function enroll(): Promise<void> {
    take(await api<MemberAnswer>(`${base()}/enroll`, { method: 'POST', body: {} }));
  }

  async function activatePromo(code: string): Promise<{ amount: number }> {
    const answer = await api<{ entry: LedgerItem }>(`${base()}/promo`, { method: 'POST', body: { code: code.trim() } });
    await refresh();
    return { amount: answer.entry.amount };
  }

  async function adjust(amount: number, comment: string): Promise<{ amount: number; balance: number }> {
    const answer = await api<{ entry: LedgerItem; balance: number }>(`${base()}/adjust`, { method: 'POST', body: { amount, comment: comment.trim() }, idempotencyKey: newKey() });
    await refresh();
    return { amount: answer.entry.amount, balance: answer.balance };
  }

  return { who, member, ledger, nextBefore, tree, state, error, loadingMore, load, loadMore, enroll, activatePromo, adjust };
});
