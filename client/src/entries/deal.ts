/** CRM_DEAL_DETAIL_TAB. */
import { start } from '../mount';
import DealTab from '../views/DealTab.vue';

void start((portal) => {
  const id = Number(portal.options.ID);
  return Number.isInteger(id) && id > 0 ? { component: DealTab, props: { dealId: id } } : null;
});
