// Graceful shutdown: on SIGTERM/SIGINT run the registered closers, newest first (stop consuming
// before closing the producer it writes to), each bounded in time, then exit.
import { FlywheelError } from './errors.js';
import type { Logger } from './logger.js';

type Closer = { name: string; close: () => Promise<void> };

export class Lifecycle {
  private readonly closers: Closer[] = [];
  private stopping: Promise<void> | undefined;
  private installed = false;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs = 30000,
  ) {}

  /** Register something to close at shutdown; later registrations close first. */
  add(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  /** Install signal handlers that stop and exit the process. */
  installSignalHandlers(): void {
    if (this.installed) return;
    this.installed = true;
    const onSignal = (signal: NodeJS.Signals) => {
      this.logger.info({ signal }, 'shutting down');
      this.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  /**
   * A part of the process stopped for good (a consumer that will not restart): close what can be
   * closed and exit non-zero, so a supervisor starts the process again.
   */
  fail(component: string, error: unknown): void {
    this.logger.fatal(
      { component, err: error },
      'stopped for good: exiting so a supervisor restarts the process',
    );
    void this.stop().finally(() => process.exit(1));
  }

  /** Close everything once; later calls wait for the same shutdown. */
  stop(): Promise<void> {
    this.stopping ??= this.closeAll();
    return this.stopping;
  }

  private async closeAll(): Promise<void> {
    let failed = false;
    for (const { name, close } of [...this.closers].reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          close(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`did not close within ${this.timeoutMs} ms`)),
              this.timeoutMs,
            );
          }),
        ]);
        this.logger.debug({ component: name }, 'closed');
      } catch (err) {
        failed = true;
        this.logger.error({ component: name, err }, 'close failed');
      } finally {
        clearTimeout(timer);
      }
    }
    if (failed) throw new FlywheelError('FW_SERVICE_FAILURE', 'shutdown finished with errors');
  }
}
