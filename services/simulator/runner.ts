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
  /**
   * Asked before each event is sent, with its simulated time: a promise holds the traffic (what
   * is queued is sent first) until it settles; undefined sends on. Tests use it to make the
   * stream wait for the loop, so a busy machine changes the timing, not the outcome.
   */
  hold?: (eventTime: number) => Promise<void> | undefined;
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
  const [clickSchema, purchaseSchema] = await Promise.all([
    options.codecs.click.schemaId(),
    options.codecs.purchase.schemaId(),
  ]);
  return new SimulatorRun(options, clickSchema, purchaseSchema).run();
}

class SimulatorRun {
  private readonly simulation: ShopSimulation;
  private readonly malformedRandom: Random;
  private readonly clickTopic: string;
  private readonly purchaseTopic: string;
  private readonly stats: SimulatorStats = {
    sent: 0,
    clicks: 0,
    purchases: 0,
    malformed: {},
    malformedTotal: 0,
    elapsedMs: 0,
    lastEventTime: null,
  };
  private readonly progress: Progress;
  private pending: { topic: string; message: Message }[] = [];
  /** Wall time spent held (options.hold), left out of the pace. */
  private heldMs = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly options: SimulatorRunOptions,
    private readonly clickSchema: number,
    private readonly purchaseSchema: number,
  ) {
    this.simulation = new ShopSimulation(options.simulation);
    this.malformedRandom = new Random(options.simulation.seed ^ 0x5eed);
    this.clickTopic = options.clickTopic ?? TOPICS.clicks;
    this.purchaseTopic = options.purchaseTopic ?? TOPICS.purchases;
    const { stats } = this;
    this.progress = new Progress({
      label: 'simulate',
      total: options.maxEvents,
      logger: options.logger,
      extra: () => ({ clicks: stats.clicks, purchases: stats.purchases, malformed: stats.malformedTotal }),
    });
  }

  async run(): Promise<SimulatorStats> {
    const { options, stats } = this;
    const endTime =
      options.durationMs === null ? Infinity : options.simulation.startTime + options.durationMs;
    const settledAt = endTime + (options.settleMs ?? 0);
    const unsentClicks = new Set<string>();
    if (options.showProgress !== false) this.progress.start();
    try {
      for (;;) {
        if (options.signal?.aborted) break;
        if (options.maxEvents !== null && stats.clicks + stats.purchases >= options.maxEvents) break;
        const event = this.simulation.next();
        if (event.time > settledAt) break;
        if (event.time > endTime) {
          if (event.type === 'click') unsentClicks.add(event.click.eventId);
          if (event.type === 'click' || unsentClicks.has(event.clickEventId)) continue;
        }
        const held = options.hold?.(event.time);
        if (held) {
          await this.flush();
          const since = Date.now();
          await held;
          // The pace goes on from here: no burst to catch up the time held.
          this.heldMs += Date.now() - since;
        }
        this.queue(event);
        if (options.malformedRate > 0 && this.malformedRandom.chance(options.malformedRate))
          await this.queueMalformed(event);
        await this.pace();
      }
      await this.flush();
    } finally {
      stats.elapsedMs = Date.now() - this.startedAt;
      this.progress.stop();
    }
    return stats;
  }

  /**
   * Records are stamped with the time of writing (event times are in the events): a shop started
   * in the past (--start) would otherwise be deleted by retention as it is written.
   */
  private queue(event: SimEvent): void {
    const { codecs } = this.options;
    if (event.type === 'click') {
      const value = codecs.click.encodeWith(this.clickSchema, event.click);
      this.pending.push({ topic: this.clickTopic, message: { key: event.click.userId, value } });
      this.stats.clicks++;
    } else {
      const value = codecs.purchase.encodeWith(this.purchaseSchema, event.purchase);
      this.pending.push({ topic: this.purchaseTopic, message: { key: event.purchase.userId, value } });
      this.stats.purchases++;
    }
    this.stats.lastEventTime = event.time;
    this.progress.add(1);
    this.options.onEvent?.(event);
  }

  private async queueMalformed(event: SimEvent): Promise<void> {
    const kind = this.malformedRandom.pick(MALFORMED_KINDS);
    const bad = await makeMalformed(kind, event, this.options.codecs, this.malformedRandom, {
      oversizedBytes: this.options.maxMessageBytes + 1024,
      now: Date.now(),
    });
    const topic = event.type === 'click' ? this.clickTopic : this.purchaseTopic;
    this.pending.push({ topic, message: { key: bad.key, value: bad.value } });
    this.stats.malformed[kind] = (this.stats.malformed[kind] ?? 0) + 1;
    this.stats.malformedTotal++;
    this.options.onMalformed?.({ kind, expectedCode: EXPECTED_CODE[kind], topic });
  }

  /** Sends a full batch, and waits while ahead of the rate. */
  private async pace(): Promise<void> {
    const { rate } = this.options;
    const queued = this.stats.sent + this.pending.length;
    const dueAt = rate > 0 ? this.startedAt + this.heldMs + (queued / rate) * 1000 : 0;
    const ahead = dueAt - Date.now();
    if (this.pending.length >= (this.options.batchSize ?? 500) || ahead > 20) await this.flush();
    if (ahead > 20) await sleep(ahead, undefined, { signal: this.options.signal }).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of this.pending) {
      const list = byTopic.get(topic) ?? [];
      list.push(message);
      byTopic.set(topic, list);
    }
    await this.options.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    this.stats.sent += this.pending.length;
    this.pending = [];
  }
}
