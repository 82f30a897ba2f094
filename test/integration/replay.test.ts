// History replayed: a shop's backlog of clicks and purchases written as fast as the broker takes
// them before the scorer and joiner start (they follow), and the same events paced while they
// run, with a pause longer than FW_JOIN_IDLE_MS in the middle. With the default liveness (the
// events are hours old, so the clock never closes a window), both give the brute-force labels;
// the last windows close when later input (a click and a purchase on every partition) moves
// the progress.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { loadJoinerConfig } from '../../services/joiner/config.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { partitionOf } from '../../services/common/partitioner.js';
import { initBackend } from '../../services/model/backend.js';
import type { SimEvent } from '../../services/simulator/generator.js';
import { testRuntime } from '../helpers/kafka.js';
import { LabelPipeline, expectedLabels, shopEvents } from '../helpers/pipeline.js';

const WINDOW_MS = 10 * 60_000;
const PARTITIONS = 3;
const IDLE_MS = 1_000;

describe('replays of history', () => {
  const runtime = testRuntime('replay');
  const events = shopEvents(71, 3000, Date.now() - 6 * 3600_000, 2);
  const last = events.at(-1)!.time;
  // What comes after the history, two windows later: a click and a purchase of a new user on
  // every partition (each source's progress must pass the last windows).
  const firstClick = (events.find((e) => e.type === 'click') as Extract<SimEvent, { type: 'click' }>).click;
  const firstPurchase = (events.find((e) => e.type === 'purchase') as Extract<SimEvent, { type: 'purchase' }>)
    .purchase;
  const laterUsers: string[] = [];
  for (let i = 0; new Set(laterUsers.map((u) => partitionOf(u, PARTITIONS))).size < PARTITIONS; i++)
    laterUsers.push(`later-${i}`);
  const at = last + 2 * WINDOW_MS;
  const later: SimEvent[] = laterUsers.flatMap((userId): SimEvent[] => [
    {
      type: 'click',
      time: at,
      click: { ...firstClick, eventId: `${userId}-click`, userId, sessionId: `${userId}-s`, eventTime: at },
      truth: { probability: 0, purchaseEventId: null, purchaseTime: null },
    },
    {
      type: 'purchase',
      time: at,
      purchase: { ...firstPurchase, eventId: `${userId}-purchase`, userId, sessionId: null, eventTime: at },
      clickEventId: `${userId}-click`,
    },
  ]);
  const clickIds = events.flatMap((e) => (e.type === 'click' ? [e.click.eventId] : []));
  let producer: Producer;
  const pipelines: LabelPipeline[] = [];
  const labelsOf = new Map<string, Map<string, 0 | 1>>();

  before(async () => {
    await initBackend(undefined, 'wasm');
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    for (const p of pipelines) await p.close();
    await producer.disconnect();
  });

  const encode = async (e: SimEvent) =>
    e.type === 'click'
      ? {
          topic: 'clicks' as const,
          message: { key: e.click.userId, value: await runtime.codecs.click.encode(e.click) },
        }
      : {
          topic: 'purchases' as const,
          message: { key: e.purchase.userId, value: await runtime.codecs.purchase.encode(e.purchase) },
        };
  const send = async (pipeline: LabelPipeline, part: SimEvent[]) => {
    const encoded = await Promise.all(part.map(encode));
    for (const topic of ['clicks', 'purchases'] as const)
      await sendInChunks(
        producer,
        pipeline.topics.names[topic],
        encoded.filter((e) => e.topic === topic).map((e) => e.message),
      );
  };
  const create = async () => {
    const pipeline = await LabelPipeline.create(runtime, {
      windowMs: WINDOW_MS,
      idleMs: IDLE_MS,
      partitions: PARTITIONS,
    });
    // The default liveness: history this old is never closed by the clock.
    pipeline.joinerConfig.FW_JOIN_LIVE_LAG_MS = loadJoinerConfig({}).FW_JOIN_LIVE_LAG_MS;
    pipelines.push(pipeline);
    return pipeline;
  };

  it('written as fast as the broker takes them, before anything consumes: the brute-force labels', async () => {
    const pipeline = await create();
    await send(pipeline, [...events, ...later]);
    await pipeline.startInProcess();
    const labels = await pipeline.labelsOf(clickIds);
    const got = new Map([...labels].map(([id, e]) => [id, e.label as 0 | 1]));
    assert.deepEqual(got, expectedLabels(events, pipeline.joinerConfig));
    assert.equal(pipeline.labels.records.filter((r) => r.value.revision > 0).length, 0);
    labelsOf.set('fast', got);
  });

  it('paced while the services run, pausing for three idle times: the same labels, none lost', async () => {
    const pipeline = await create();
    await pipeline.startInProcess();
    const half = Math.floor(events.length / 2);
    for (let i = 0; i < half; i += 100) await send(pipeline, events.slice(i, Math.min(i + 100, half)));
    // The replay pauses: every input is caught up and quiet, far longer than FW_JOIN_IDLE_MS.
    await sleep(3 * IDLE_MS + 2 * loadJoinerConfig({}).FW_JOIN_PROGRESS_POLL_MS);
    const decidedInPause = pipeline.labels.records.length;
    for (let i = half; i < events.length; i += 100)
      await send(pipeline, events.slice(i, Math.min(i + 100, events.length)));
    await send(pipeline, later);
    const labels = await pipeline.labelsOf(clickIds);
    const got = new Map([...labels].map(([id, e]) => [id, e.label as 0 | 1]));
    assert.ok(decidedInPause < clickIds.length, 'windows were still open when the pause began');
    assert.equal(
      pipeline.labels.records.filter((r) => r.value.revision > 0).length,
      0,
      `no corrections: ${JSON.stringify(pipeline.joiner?.counters())} ${JSON.stringify(pipeline.labels.records.filter((r) => r.value.revision > 0).map((r) => [r.value.eventId, r.value.clickTime - (events[half - 1] as SimEvent).time, r.value.purchaseTime]))}`,
    );
    const fast = labelsOf.get('fast');
    assert.ok(fast, 'the fast replay ran first');
    assert.deepEqual(
      [...fast].filter(([id, label]) => got.get(id) !== label),
      [],
      'every click labeled as in the fast replay',
    );
  });
});
