// Every Kafka topic of Flywheel with its configuration. Event topics share one partition count
// and are keyed by userId, so one user's clicks, purchases and predictions meet in one partition.

export const TOPICS = {
  clicks: 'fw.events.click',
  purchases: 'fw.events.purchase',
  repartitionedPurchases: 'fw.purchases.repartitioned',
  predictions: 'fw.predictions',
  feedback: 'fw.feedback.labeled',
  humanLabels: 'fw.labels.human',
  modelUpdates: 'fw.models.updates',
  deadLetters: 'fw.dlq',
} as const;
export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export interface TopicSpec {
  name: TopicName;
  /** null = the configured event-topic partition count (co-partitioned topics). */
  partitions: number | null;
  configs: Record<string, string>;
  description: string;
}

const WEEK_MS = String(7 * 24 * 3600 * 1000);
const MONTH_MS = String(30 * 24 * 3600 * 1000);

export const TOPIC_SPECS: readonly TopicSpec[] = [
  {
    name: TOPICS.clicks,
    partitions: null,
    configs: { 'retention.ms': WEEK_MS },
    description: 'ClickEvent from producers, key userId',
  },
  {
    name: TOPICS.purchases,
    partitions: null,
    configs: { 'retention.ms': WEEK_MS },
    description: 'PurchaseEvent from producers, key userId',
  },
  {
    name: TOPICS.repartitionedPurchases,
    partitions: null,
    configs: { 'retention.ms': WEEK_MS },
    description:
      'PurchaseEvent moved by the joiner onto murmur2(userId): co-partitioned with the predictions',
  },
  {
    name: TOPICS.predictions,
    partitions: null,
    configs: { 'retention.ms': WEEK_MS },
    description: 'Prediction per scored click, key userId',
  },
  {
    name: TOPICS.feedback,
    partitions: null,
    configs: { 'retention.ms': MONTH_MS },
    description: 'LabeledExample: prediction joined with its outcome, key userId',
  },
  {
    name: TOPICS.humanLabels,
    partitions: null,
    configs: { 'retention.ms': MONTH_MS },
    description: 'HumanLabel from the labeling queue, key userId',
  },
  {
    name: TOPICS.modelUpdates,
    // One partition keeps a single total order of alias moves; compaction keeps the latest per key.
    partitions: 1,
    configs: {
      'cleanup.policy': 'compact',
      'min.compaction.lag.ms': '0',
      'segment.ms': String(3600 * 1000),
      'min.cleanable.dirty.ratio': '0.1',
    },
    description: 'ModelUpdate per alias or routing change, key = alias or "routing" (compacted)',
  },
  {
    name: TOPICS.deadLetters,
    partitions: null,
    configs: { 'retention.ms': MONTH_MS },
    description: 'DeadLetter: original bytes + reason + source topic/partition/offset',
  },
];
