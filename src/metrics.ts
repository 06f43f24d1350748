import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PublisherRegistry } from './publishers/registry.js';
import type { TransponderService } from './transponders/service.js';

/** Prometheus metrics, read from the live objects at scrape time. Labels never carry a URL. */
export function createMetrics(publishers: PublisherRegistry, transponders: TransponderService): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'gateway_publishers',
    help: 'Streams being published over WebRTC',
    registers: [registry],
    collect() {
      this.set(publishers.all().length);
    },
  });
  new Gauge({
    name: 'gateway_transponders',
    help: 'Transponders by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of transponders.all()) this.inc({ state: t.state });
    },
  });
  return registry;
}
