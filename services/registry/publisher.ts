// Alias changes go to the compacted fw.models.updates topic: one record keyed by the alias (the
// version it points to now) and one keyed "routing" (the whole split). Compaction keeps the
// latest per key, so any service learns the current state at start-up by reading the topic.
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { Codecs, ModelUpdate } from '../common/contracts.js';
import { readTopicToEnd } from '../common/read-topic.js';
import { TOPICS } from '../common/topics.js';
import type { Alias, FileModelRegistry, Routing } from './store.js';

export const ROUTING_KEY = 'routing';

export async function publishAliasChange(
  producer: Producer,
  codecs: Codecs,
  registry: FileModelRegistry,
  change: { alias: Alias; version: string | null; routing: Routing; actor: string; reason: string },
  topic: string = TOPICS.modelUpdates,
): Promise<ModelUpdate[]> {
  const metadata = change.version ? await registry.get(change.version) : null;
  const base = {
    routing: change.routing,
    reason: change.reason,
    actor: change.actor,
    updateTime: Date.now(),
  };
  const aliasUpdate: ModelUpdate = {
    ...base,
    updateId: randomUUID(),
    alias: change.alias,
    version: change.version,
    artifactUri: change.version ? registry.artifactUri(change.version) : null,
    sha256: metadata?.sha256 ?? null,
    modelKind: metadata?.kind ?? null,
    featureSpecHash: metadata?.featureSpecHash ?? null,
  };
  const routingUpdate: ModelUpdate = {
    ...base,
    updateId: randomUUID(),
    alias: ROUTING_KEY,
    version: null,
    artifactUri: null,
    sha256: null,
    modelKind: null,
    featureSpecHash: null,
  };
  const updates = [aliasUpdate, routingUpdate];
  const schemaId = await codecs.modelUpdate.schemaId();
  await producer.send({
    topic,
    acks: -1,
    messages: updates.map((u) => ({ key: u.alias, value: codecs.modelUpdate.encodeWith(schemaId, u) })),
  });
  return updates;
}

export interface ModelState {
  /** Latest update per key: champion, challenger, shadow and routing. */
  latest: Record<string, ModelUpdate>;
  routing: Routing | null;
}

/** Current model state from the compacted topic (the latest record of each key wins). */
export async function readModelState(
  kafka: Kafka,
  codecs: Codecs,
  topic: string = TOPICS.modelUpdates,
): Promise<ModelState> {
  const latest: Record<string, ModelUpdate> = {};
  for (const message of await readTopicToEnd(kafka, topic)) {
    if (!message.key) continue;
    if (message.value === null) {
      delete latest[message.key.toString()]; // a tombstone removes the key
      continue;
    }
    const update = await codecs.modelUpdate.decode(message.value);
    latest[message.key.toString()] = update;
  }
  const routing = latest[ROUTING_KEY]?.routing ?? null;
  return { latest, routing: routing ? { ...routing } : null };
}
