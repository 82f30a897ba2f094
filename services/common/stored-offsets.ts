// Services that keep their own state with the offsets it reaches (rollout, monitor) resume there.
import type { Consumer } from 'kafkajs';

/**
 * On every assignment, seeks each partition to the offset a service stored with its own state
 * ("topic:partition" → next offset), so what that state already counts is not taken again; a
 * partition it does not name is read from where the group left it.
 */
export function seekToStoredOffsets(
  consumer: Consumer,
  offsets: () => Readonly<Record<string, string>>,
): void {
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
    for (const [topic, partitions] of Object.entries(assignment))
      for (const partition of partitions ?? []) {
        const offset = offsets()[`${topic}:${partition}`];
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
  });
}
