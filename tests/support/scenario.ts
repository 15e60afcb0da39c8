/** Steps many HTTP scenarios share, driven through the app like Bitrix24 would. */
import request from 'supertest';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import type { Harness } from './harness.js';

export const FORM = 'application/x-www-form-urlencoded';

/** Sarafan installed on the msw portal through the wizard POST, its install work drained: the portal id. */
export async function installApp(h: Harness): Promise<number> {
  const { query, body } = installRequest(h.portal);
  const res = await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body);
  if (res.status !== 200) throw new Error(`the install answered ${res.status}: ${res.text}`);
  const installation = await h.store.installations.findByMemberId(h.portal.memberId);
  if (!installation) throw new Error('the install recorded no installation');
  await h.worker.drain();
  return installation.id;
}

export function sendEvent(h: Harness, body: string): request.Test {
  return request(h.app).post('/b24/events').set('Content-Type', FORM).send(body);
}

/** A contact who wins a first deal and so is enrolled: its contact id and referral code. */
export async function enrolledReferrer(h: Harness, portalId: number, name = 'Реферер'): Promise<{ contact: number; code: string }> {
  const contact = h.portal.add('contact', { NAME: name });
  const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: 1 });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  const member = await h.store.members.findByEntity(portalId, 'contact', contact);
  if (!member?.code) throw new Error('the referrer was not enrolled');
  return { contact, code: member.code };
}

/** A referred client (the code on the contact) whose deal is won, all events processed. */
export async function referredWin(h: Harness, code: string, amount: number, name = 'Клиент'): Promise<{ contact: number; deal: number }> {
  const contact = h.portal.add('contact', { NAME: name, UF_CRM_SARAFAN_REF_CODE: code });
  const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: amount });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', contact));
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  return { contact, deal };
}
