// Drives the simulated shop into Kafka: Avro-encodes events, keys them by userId, paces them
// at the requested rate, injects malformed messages at the requested share, reports progress.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message, Producer } from 'kafkajs';
import type { Codecs } from '../common/contracts.js';
import type { Logger } from '../common/logger.js';
import { Progress } from '../common/progress.js';
import { TOPICS } from '../common/topics.js';
import { ShopSimulation, type SimEvent, type SimulationConfig } from './generator.js';
import { EXPECTED_CODE, MALFORMED_KINDS, makeMalformed, type MalformedKind } from './malformed.js';
import { Random } from '../common/random.js';

export interface SimulatorRunOptions {
  producer: Producer;
  codecs: Codecs;
  logger: Logger;
  simulation: Pick<SimulationConfig, 'seed' | 'startTime'> & Partial<SimulationConfig>;
  /** Messages per wall-clock second; 0 sends as fast as the broker takes them. */
  rate: number;
  /** Stop after this many good events (clicks + purchases). */
  maxEvents: number | null;
  /** Stop at this much simulated time after the start. */
  durationMs: number | null;
  /**
   * After the duration, send no more clicks but keep sending the purchases of clicks already
   * sent for this much simulated time (the attribution window), so the last clicks are not
   * labeled negative only because the run ended before their purchase.
   */
  settleMs?: number;
  /** Share of extra malformed messages, in [0, 1). */
  malformedRate: number;
  /** Consumers' size limit; oversized test messages exceed it. */
  maxMessageBytes: number;
  batchSize?: number;
  signal?: AbortSignal;
  showProgress?: boolean;
  /** Called for every good event sent (tests keep the ground truth). */
  onEvent?: (event: SimEvent) => void;
  /** Called for every malformed message sent, with the dead-letter code it must get. */
  onMalformed?: (info: { kind: MalformedKind; expectedCode: string; topic: string }) => void;
  clickTopic?: string;
  purchaseTopic?: string;
}

export interface SimulatorStats {
  sent: number;
  clicks: number;
  purchases: number;
  malformed: Partial<Record<MalformedKind, number>>;
  malformedTotal: number;
  elapsedMs: number;
  lastEventTime: number | null;
}

export async function runSimulator(options: SimulatorRunOptions): Promise<SimulatorStats> {
  const { producer, codecs, logger, rate } = options;
  const clickTopic = options.clickTopic ?? TOPICS.clicks;
  const purchaseTopic = options.purchaseTopic ?? TOPICS.purchases;
  const batchSize = options.batchSize ?? 500;
  const simulation = new ShopSimulation(options.simulation);
  const malformedRandom = new Random(options.simulation.seed ^ 0x5eed);
  const [clickSchema, purchaseSchema] = await Promise.all([
    codecs.click.schemaId(),
    codecs.purchase.schemaId(),
  ]);
  const stats: SimulatorStats = {
    sent: 0,
    clicks: 0,
    purchases: 0,
    malformed: {},
    malformedTotal: 0,
    elapsedMs: 0,
    lastEventTime: null,
  };
  const endTime = options.durationMs === null ? Infinity : options.simulation.startTime + options.durationMs;
  const settledAt = endTime + (options.settleMs ?? 0);
  const unsentClicks = new Set<string>();
  const progress = new Progress({
    label: 'simulate',
    total: options.maxEvents,
    logger,
    extra: () => ({ clicks: stats.clicks, purchases: stats.purchases, malformed: stats.malformedTotal }),
  });
  if (options.showProgress !== false) progress.start();

  const startedAt = Date.now();
  let pending: { topic: string; message: Message }[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of pending) {
      const list = byTopic.get(topic) ?? [];
      list.push(message);
      byTopic.set(topic, list);
    }
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    stats.sent += pending.length;
    pending = [];
  };

  try {
    for (;;) {
      if (options.signal?.aborted) break;
      const good = stats.clicks + stats.purchases;
      if (options.maxEvents !== null && good >= options.maxEvents) break;
      const event = simulation.next();
      if (event.time > settledAt) break;
      if (event.time > endTime) {
        if (event.type === 'click') unsentClicks.add(event.click.eventId);
        if (event.type === 'click' || unsentClicks.has(event.clickEventId)) continue;
      }

      // Records are stamped with the time of writing (event times are in the events): a shop
      // started in the past (--start) would otherwise be deleted by retention as it is written.
      if (event.type === 'click') {
        pending.push({
          topic: clickTopic,
          message: {
            key: event.click.userId,
            value: codecs.click.encodeWith(clickSchema, event.click),
          },
        });
        stats.clicks++;
      } else {
        pending.push({
          topic: purchaseTopic,
          message: {
            key: event.purchase.userId,
            value: codecs.purchase.encodeWith(purchaseSchema, event.purchase),
          },
        });
        stats.purchases++;
      }
      stats.lastEventTime = event.time;
      progress.add(1);
      options.onEvent?.(event);

      if (options.malformedRate > 0 && malformedRandom.chance(options.malformedRate)) {
        const kind = malformedRandom.pick(MALFORMED_KINDS);
        const bad = await makeMalformed(kind, event, codecs, malformedRandom, {
          oversizedBytes: options.maxMessageBytes + 1024,
          now: Date.now(),
        });
        const topic = event.type === 'click' ? clickTopic : purchaseTopic;
        pending.push({ topic, message: { key: bad.key, value: bad.value } });
        stats.malformed[kind] = (stats.malformed[kind] ?? 0) + 1;
        stats.malformedTotal++;
        options.onMalformed?.({ kind, expectedCode: EXPECTED_CODE[kind], topic });
      }

      const queued = stats.sent + pending.length;
      const dueAt = rate > 0 ? startedAt + (queued / rate) * 1000 : 0;
      const ahead = dueAt - Date.now();
      if (pending.length >= batchSize || ahead > 20) await flush();
      if (ahead > 20) await sleep(ahead, undefined, { signal: options.signal }).catch(() => undefined);
    }
    await flush();
  } finally {
    stats.elapsedMs = Date.now() - startedAt;
    progress.stop();
  }
  return stats;
}
