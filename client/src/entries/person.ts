/** CRM_CONTACT_DETAIL_TAB and CRM_LEAD_DETAIL_TAB. */
import { start } from '../mount';
import PersonTab from '../views/PersonTab.vue';

void start((portal) => {
  const id = Number(portal.options.ID);
  const entity = portal.placement === 'CRM_LEAD_DETAIL_TAB' ? 'lead' : 'contact';
  return Number.isInteger(id) && id > 0 ? { component: PersonTab, props: { entity, id } } : null;
});
