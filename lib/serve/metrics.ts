/**
 * The service's Prometheus metrics (prom-client, in a registry of its own so
 * two servers in one process do not share counters). Rates such as images/s
 * and tokens/s are Prometheus' rate() over the counters, e.g.
 * `rate(tinyemo_images_total[1m])`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'tinyemo_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'tinyemo_http_request_duration_seconds',
    help: 'Time from request to the end of the answer, by route',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly images = new Counter({ name: 'tinyemo_images_total', help: 'Images classified', registers: [this.registry] });
  readonly tokens = new Counter({ name: 'tinyemo_generated_tokens_total', help: 'Tokens generated', registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'tinyemo_classify_batch_size', help: 'Images per tower forward pass', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry] });

  constructor(queue: () => { queued: number; running: number }) {
    new Gauge({ name: 'tinyemo_queue_depth', help: 'Requests admitted and waiting for compute', registers: [this.registry], collect: gaugeOf(() => queue().queued) });
    new Gauge({ name: 'tinyemo_running', help: 'Computations in progress', registers: [this.registry], collect: gaugeOf(() => queue().running) });
    collectDefaultMetrics({ register: this.registry, prefix: 'tinyemo_' });
  }
}

function gaugeOf(read: () => number): (this: Gauge) => void {
  return function (this: Gauge) {
    this.set(read());
  };
}
