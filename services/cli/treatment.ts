// `flywheel simulate --lift VERSION=LOGODDS,…`: the simulated shop's ground truth of an
// experiment. Each click's purchase log-odds gain the lift of the version that serves its user
// now, by the same split the scorers apply (the routing in fw.models.updates, followed here), so
// a candidate given a positive lift truly sells more to the users it serves.
import type { Kafka } from 'kafkajs';
import type { Codecs, Routing } from '../common/contracts.js';
import type { Logger } from '../common/logger.js';
import { readModelState } from '../registry/publisher.js';
import { servedArm } from '../scorer/routing.js';
import { UsageError, numberFlag } from './args.js';

/** `v000002=0.8,v000003=-0.5` → lift by version. */
export function parseLifts(text: string): Map<string, number> {
  const lifts = new Map<string, number>();
  for (const part of text.split(',')) {
    const match = /^\s*(v\d{6})=(.+)$/.exec(part);
    if (!match) throw new UsageError(`--lift takes VERSION=LOGODDS pairs (v000002=0.8), got '${part}'`);
    lifts.set(match[1] as string, numberFlag(match[2]?.trim(), `lift of ${match[1]}`, 0, -5, 5));
  }
  return lifts;
}

/** The lift of the version serving `userId` (in `segment`) under `routing` (shadow never serves). */
export function liftFor(
  userId: string,
  routing: Routing | null,
  lifts: ReadonlyMap<string, number>,
  segment = '',
): number {
  if (!routing) return 0;
  const { version } = servedArm(userId, routing, () => true, segment);
  return version === null ? 0 : (lifts.get(version) ?? 0);
}

/** Follows the routing in fw.models.updates, read again every `everyMs`. */
export async function followRouting(
  kafka: Kafka,
  codecs: Codecs,
  logger: Logger,
  everyMs = 1000,
): Promise<{ current: () => Routing | null; stop: () => void }> {
  let routing = (await readModelState(kafka, codecs)).routing;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const next = (await readModelState(kafka, codecs)).routing;
      if (JSON.stringify(next) !== JSON.stringify(routing))
        logger.info({ routing: next }, 'routing followed');
      routing = next;
    } catch (err) {
      logger.warn({ err }, 'reading the routing failed; the last one holds');
    }
    if (!stopped) timer = setTimeout(() => void poll(), everyMs);
  };
  timer = setTimeout(() => void poll(), everyMs);
  return {
    current: () => routing,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
