// `flywheel <command>`: one entry point for every service and operator command. Each command
// is a module exporting `run(args)`; later services add theirs to COMMANDS.
import { ConfigError } from '../common/errors.js';
import { UsageError } from './args.js';
import { runSimulate } from './simulate.js';
import { runStack } from './stack.js';
import { runTopics } from './topics.js';
import { runDlq } from './dlq.js';
import { runModels } from './models.js';
import { runRegistryServer } from '../registry/server.js';
import { runScorer } from '../scorer/service.js';
import { createRuntime } from '../common/runtime.js';
import { createRedis } from '../common/redis.js';
import { runLabeling } from '../labeling/server.js';
import { runJoiner } from '../joiner/service.js';
import { runMonitor } from '../monitor/service.js';
import { runConsole } from '../console/server.js';
import { runLabels } from './labels.js';
import { runTrainer } from '../trainer/service.js';
import { loadRegistryConfig } from '../registry/config.js';
import { queueReviewSink } from './review.js';
import { TRAIN_USAGE, runTrain, runTrainerPropose } from './train.js';
import { BOOTSTRAP_USAGE, runBootstrap } from './bootstrap.js';
import { ROLLOUT_USAGE, runRolloutCommand } from './rollout.js';

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  stack: {
    summary: 'start, stop or inspect the local Kafka + Redis stack',
    usage: 'flywheel stack up|down|status|reset',
    run: runStack,
  },
  topics: {
    summary: 'create every Flywheel topic (idempotent) or list them',
    usage: 'flywheel topics ensure|list [--records]',
    run: runTopics,
  },
  simulate: {
    summary: 'send simulated shop traffic (clicks, purchases) to Kafka',
    usage:
      'flywheel simulate [--rate N] [--duration S] [--count N] [--seed K] [--traffic N] [--malformed R] [--purchase-delay-scale F] [--drift-at S --drift-category C --drift-shift X --drift-share F]',
    run: runSimulate,
  },
  models: {
    summary: 'model registry: list, show, promote, rollback, upload, diff, train, retrain',
    usage:
      'flywheel models ls|show|promote|demote|rollback|upload|diff|train|retrain|history (see flywheel models)',
    run: runModels,
  },
  scorer: {
    summary: 'score clicks from Kafka into fw.predictions, and serve the predict API',
    usage: 'flywheel scorer',
    run: async () => {
      const runtime = createRuntime('scorer');
      // Review tasks go to the labeling queue in the same Redis.
      const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
      await redis.connect();
      runtime.lifecycle.add('review-queue', async () => {
        await redis.quit();
      });
      return runScorer(runtime, queueReviewSink(redis, runtime.logger, runtime.metrics));
    },
  },
  joiner: {
    summary: 'join predictions with purchases into fw.feedback.labeled (exactly once)',
    usage: 'flywheel joiner',
    run: () => runJoiner(createRuntime('joiner')),
  },
  trainer: {
    summary:
      'learn continuously from fw.feedback.labeled and fw.labels.human; `propose` asks it for a candidate now',
    usage: 'flywheel trainer [propose --reason TEXT [--url URL]]',
    run: (args) =>
      args[0] === 'propose' ? runTrainerPropose(args.slice(1)) : runTrainer(createRuntime('trainer')),
  },
  monitor: {
    summary:
      'watch every model version and arm: live quality, drift against its reference, alerts, retrain requests',
    usage: 'flywheel monitor',
    run: () => runMonitor(createRuntime('monitor')),
  },
  console: {
    summary: 'the operator console (admin token): models, experiments, monitoring, labeling on one web page',
    usage: 'flywheel console',
    run: () => runConsole(createRuntime('console')),
  },
  train: {
    summary: 'backfill: train a fresh model from Kafka history between two points (optionally distilled)',
    usage: TRAIN_USAGE,
    run: runTrain,
  },
  bootstrap: {
    summary:
      "replay a shop's history (JSON lines of clicks and purchases) through the running loop in event time: a champion and a trainer checkpoint to go on from",
    usage: BOOTSTRAP_USAGE,
    run: runBootstrap,
  },
  labels: {
    summary:
      'publish externally labeled examples to fw.feedback.labeled; export the human labels with their outcomes',
    usage:
      'flywheel labels import FILE [--topic T] | flywheel labels export [--out FILE] [--format ndjson|csv] [--topic T]',
    run: runLabels,
  },
  labeling: {
    summary: 'serve the labeler API (review tasks, labels to fw.labels.human)',
    usage: 'flywheel labeling',
    run: () => runLabeling(createRuntime('labeling'), loadRegistryConfig().FW_ADMIN_TOKEN),
  },
  registry: {
    summary: 'serve the registry admin HTTP API (needs FW_ADMIN_TOKEN)',
    usage: 'flywheel registry',
    run: () => runRegistryServer(),
  },
  rollout: {
    summary:
      'experiments and canary rollouts decided on live outcomes: `controller` runs them; start, ls, status, pause, resume, abort, promote',
    usage: ROLLOUT_USAGE,
    run: runRolloutCommand,
  },
  dlq: {
    summary: 'show the newest dead letters with their reasons',
    usage: 'flywheel dlq [--count N] [--json]',
    run: runDlq,
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: flywheel <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'flywheel <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`flywheel: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`flywheel ${name}: ${error.message}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      console.error(`flywheel ${name}: ${error.message}`);
      return 2;
    }
    console.error(
      `flywheel ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return 1;
  }
}
