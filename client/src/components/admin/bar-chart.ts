/**
 * The dashboard's bar charts, drawn with chart.js. Only ever loaded by a dynamic import
 * (LazyBars.vue), so chart.js lives in its own chunk and the main page's entry does not carry
 * it. It imports no Vue: a lazy chunk that imported Vue would make the bundler split Vue out of
 * the chunk the card tabs share, costing every card tab a request and bytes. Only the pieces
 * bar charts use are registered, so tree-shaking drops the rest of chart.js.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartData, type ChartOptions } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

export interface Series {
  label: string;
  values: number[];
  color: string;
}

export interface BarSpec {
  labels: string[];
  series: Series[];
  horizontal?: boolean;
}

export interface DrawnChart {
  update(spec: BarSpec): void;
  destroy(): void;
}

function data(spec: BarSpec): ChartData<'bar'> {
  return {
    labels: spec.labels,
    datasets: spec.series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color, borderRadius: 4, maxBarThickness: 36 })),
  };
}

function options(spec: BarSpec): ChartOptions<'bar'> {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    indexAxis: spec.horizontal ? 'y' : 'x',
    plugins: { legend: { display: spec.series.length > 1, position: 'bottom' } },
    scales: { x: { beginAtZero: true }, y: { beginAtZero: true } },
  };
}

/** Throws when the canvas has no 2D context (chart.js would only log it, then fail on update). */
export function drawBars(canvas: HTMLCanvasElement, spec: BarSpec): DrawnChart {
  if (!canvas.getContext('2d')) throw new Error('no 2D canvas context');
  const chart = new Chart(canvas, { type: 'bar', data: data(spec), options: options(spec) });
  return {
    update(next) {
      chart.data = data(next);
      chart.options = options(next);
      chart.update();
    },
    destroy: () => chart.destroy(),
  };
}
