// Simulated shop traffic into a test's own topics, with the defaults tests share: clicks of a
// recent past hour (valid now), no malformed messages, sent as fast as the broker takes them.
import type { Producer } from 'kafkajs';
import type { Runtime } from '../../services/common/runtime.js';
import {
  runSimulator,
  type SimulatorRunOptions,
  type SimulatorStats,
} from '../../services/simulator/runner.js';

export interface TrafficOptions extends Partial<
  Pick<SimulatorRunOptions, 'rate' | 'malformedRate' | 'onEvent' | 'onMalformed'>
> {
  clickTopic: string;
  purchaseTopic: string;
  events: number;
  seed: number;
  /** Events per simulated second (event-time density). */
  trafficRate?: number;
}

export function sendTraffic(
  runtime: Runtime,
  producer: Producer,
  options: TrafficOptions,
): Promise<SimulatorStats> {
  return runSimulator({
    producer,
    codecs: runtime.codecs,
    logger: runtime.logger,
    simulation: {
      seed: options.seed,
      startTime: Date.now() - 3_600_000,
      trafficRate: options.trafficRate ?? 20,
    },
    rate: options.rate ?? 0,
    maxEvents: options.events,
    durationMs: null,
    malformedRate: options.malformedRate ?? 0,
    maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
    showProgress: false,
    clickTopic: options.clickTopic,
    purchaseTopic: options.purchaseTopic,
    onEvent: options.onEvent,
    onMalformed: options.onMalformed,
  });
}
