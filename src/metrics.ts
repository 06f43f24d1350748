import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PublisherRegistry } from './publishers/registry.js';
import type { TransponderService } from './transponders/service.js';
import type { LoadMonitor } from './load.js';

/** Prometheus metrics, read from the live objects at scrape time. Labels never carry a URL. */
export function createMetrics(publishers: PublisherRegistry, transponders: TransponderService, load: LoadMonitor): Registry {
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
  new Gauge({
    name: 'gateway_overloaded',
    help: '1 while new publishes and pushes are refused for load (overload_* settings)',
    registers: [registry],
    collect() {
      this.set(load.overload ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gateway_load',
    help: 'The last second: event-loop delay p99 (ms), event-loop utilization (0..1), machine CPU (%)',
    labelNames: ['measure'],
    registers: [registry],
    collect() {
      const { eventLoopDelayMs, eventLoopUtilization, machineCpuPercent } = load.last;
      this.set({ measure: 'event_loop_delay_p99_ms' }, eventLoopDelayMs);
      this.set({ measure: 'event_loop_utilization' }, eventLoopUtilization);
      this.set({ measure: 'machine_cpu_percent' }, machineCpuPercent);
    },
  });
  return registry;
}
