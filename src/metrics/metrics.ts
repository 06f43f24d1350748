import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MediaPlane } from '../plane/plane.js';
import { streamMetrics } from './streams.js';
import { trackedSizes } from '../core/tracked.js';

/** Prometheus metrics, read from the plane at scrape time. Labels never carry a URL. */
export function createMetrics(plane: MediaPlane): Registry {
  const registry = new Registry();
  // The main thread's event loop, sampled every 50 ms (as each worker's `LoadMonitor` samples its own).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 50 });
  new Gauge({
    name: 'gateway_publishers',
    help: 'Streams being published over WebRTC',
    registers: [registry],
    collect() {
      this.set(plane.status().publishers);
    },
  });
  new Gauge({
    name: 'gateway_transponders',
    help: 'Pushes by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(plane.status().pushes)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'gateway_overloaded',
    help: '1 while new publishes are refused for load (overload_* settings): no worker takes one',
    registers: [registry],
    collect() {
      this.set(plane.status().overloaded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gateway_load',
    help:
      'Each thread that runs streams (worker), the last second: event-loop delay p99 and max (ms), ' +
      'event-loop utilization (0..1), machine CPU (%), publishers, overloaded (0/1)',
    labelNames: ['worker', 'measure'],
    registers: [registry],
    collect() {
      this.reset();
      for (const thread of plane.status().threads) {
        const worker = thread.thread;
        this.set({ worker, measure: 'event_loop_delay_p99_ms' }, thread.eventLoopDelayMs);
        this.set({ worker, measure: 'event_loop_delay_max_ms' }, thread.eventLoopDelayMaxMs);
        this.set({ worker, measure: 'event_loop_utilization' }, thread.eventLoopUtilization);
        this.set({ worker, measure: 'machine_cpu_percent' }, thread.machineCpuPercent);
        this.set({ worker, measure: 'publishers' }, thread.publishers);
        this.set({ worker, measure: 'overloaded' }, thread.overload ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'gateway_tracked_entries',
    help:
      'Entries of each map the gateway keeps per stream, client address, viewer or destination, ' +
      'by thread (main, or a worker): back where they were once what made them has ended',
    labelNames: ['worker', 'map'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [map, size] of Object.entries(trackedSizes())) this.set({ worker: 'main', map }, size);
      for (const thread of plane.status().threads)
        for (const [map, size] of Object.entries(thread.tracked ?? {})) this.set({ worker: thread.thread, map }, size);
    },
  });
  streamMetrics(registry, plane);
  return registry;
}
