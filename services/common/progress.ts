// Progress of long work: a bar on a terminal, a periodic log line elsewhere; both with the
// rate and, when the total is known, the ETA.
import type { Logger } from './logger.js';

export interface ProgressOptions {
  label: string;
  /** Known total units, or null when open-ended. */
  total: number | null;
  logger: Logger;
  intervalMs?: number;
  stream?: NodeJS.WriteStream;
  /** Extra counters shown after the rate. */
  extra?: () => Record<string, number>;
}

export class Progress {
  private done = 0;
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) && process.env.CI !== 'true';
  }

  start(): this {
    this.timer = setInterval(() => this.render(false), this.options.intervalMs ?? (this.tty ? 250 : 2000));
    this.timer.unref();
    return this;
  }

  add(units: number): void {
    this.done += units;
  }

  get count(): number {
    return this.done;
  }

  stop(): void {
    clearInterval(this.timer);
    this.render(true);
  }

  private render(final: boolean): void {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const { total, label } = this.options;
    const eta = total !== null && rate > 0 ? Math.max(0, (total - this.done) / rate) : null;
    const extra = this.options.extra?.() ?? {};
    if (this.tty) {
      const width = 28;
      const fraction = total ? Math.min(1, this.done / total) : 0;
      const bar = total
        ? `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}% `
        : '';
      const extras = Object.entries(extra)
        .map(([k, v]) => `${k} ${v}`)
        .join('  ');
      const line = `${label} ${bar}${this.done}${total ? `/${total}` : ''}  ${rate.toFixed(0)}/s  ${eta !== null ? `ETA ${formatSeconds(eta)}` : `${formatSeconds(elapsed)}`}  ${extras}`;
      this.stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    } else {
      this.options.logger.info(
        {
          label,
          done: this.done,
          total,
          ratePerSec: Math.round(rate),
          etaSec: eta === null ? null : Math.round(eta),
          elapsedSec: Math.round(elapsed),
          ...extra,
        },
        final ? `${label} finished` : `${label} progress`,
      );
    }
  }
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
