/**
 * The dashboard's bar chart, fetched on first use: a dynamic import keeps chart.js and
 * vue-chartjs out of the main page's entry (its own chunk). One async component for every figure,
 * so the chunk is requested once however many charts a panel shows.
 */
import { defineAsyncComponent } from 'vue';

export const LazyBarChart = defineAsyncComponent({
  loader: () => import('./BarChart.vue').then((m) => m.default),
  // Without the chart the numbers beside it still say everything (ChartFigure).
  errorComponent: { render: () => null },
});
