// Monitor settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';

const MINUTE = 60_000;
const optionalNumber = (min: number, max: number) => z.coerce.number().min(min).max(max).optional();

export const monitorConfigSchema = z.object({
  FW_MONITOR_GROUP: z.string().min(1).default('flywheel.monitor'),
  /** Where the windows and alerts are checkpointed (JSON, with the offsets they reach). */
  FW_MONITOR_DIR: z.string().min(1).default('.flywheel/monitor'),
  FW_MONITOR_HTTP_PORT: env.int(8087, 0, 65535),
  /** How often the monitor looks: exports, alerts, checkpoints. */
  FW_MONITOR_LOOK_MS: env.int(10_000, 50, 3_600_000),
  FW_MONITOR_BUCKET_MS: env.int(MINUTE, 1000, 3_600_000),
  FW_MONITOR_WINDOW_MS: env.int(15 * MINUTE, 1000, 7 * 24 * 3_600_000),
  /** How far behind the newest click the quality window ends (labels land up to the join window late). */
  FW_MONITOR_LABEL_LAG_MS: env.int(35 * MINUTE, 0, 7 * 24 * 3_600_000),
  FW_MONITOR_RETENTION_MS: env.int(6 * 60 * MINUTE, MINUTE, 30 * 24 * 3_600_000),
  /** Hourly figures of buckets past the retention, and dead-letter counts, are kept this long. */
  FW_MONITOR_HISTORY_MS: env.int(400 * 24 * 60 * MINUTE, 0, 10 * 366 * 24 * 60 * MINUTE),
  /** Expected false drift alarms a day, over every group and look (the budget the tests share). */
  FW_MONITOR_FALSE_ALARMS_PER_DAY: env.number(0.1, 1e-6, 1000),
  FW_MONITOR_MIN_RECORDS: env.int(500, 1),
  /** Smallest Jensen-Shannon distance that counts as drift. */
  FW_MONITOR_MIN_DISTANCE: env.number(0.1, 0, 1),
  FW_MONITOR_MAX_LOG_LOSS: optionalNumber(0, 100),
  FW_MONITOR_MIN_AUC: optionalNumber(0, 1),
  FW_MONITOR_MAX_ECE: optionalNumber(0, 1),
  FW_MONITOR_MIN_LABELS: env.int(200, 1),
  /** Least time between two retrain requests, and between two sayings of one open alert. */
  FW_MONITOR_COOLDOWN_MS: env.int(60 * MINUTE, 0, 30 * 24 * 3_600_000),
  /** The trainer's HTTP API, asked for a candidate on drift or poor performance (unset: alerts only). */
  FW_MONITOR_TRAINER_URL: env.optionalUrl(),
  FW_CONSUMER_SESSION_TIMEOUT_MS: env.int(30_000, 6000, 300_000),
});
export type MonitorConfig = z.infer<typeof monitorConfigSchema>;

export function loadMonitorConfig(envVars: Env = process.env): MonitorConfig {
  return loadConfig(monitorConfigSchema, envVars);
}
