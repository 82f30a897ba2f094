// The scoring worker: a thread of the scorer process that runs the scoring pipeline (decode,
// sessions with their own Redis connection, features, models, encode) so the main thread only
// moves bytes between Kafka and here. It keeps its own model set, applying the same model updates
// as the main thread's (which serves the predict API). See worker-protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import { EmbeddedSchemaRegistry } from '../common/avro/registry.js';
import { createCodecs } from '../common/contracts.js';
import { errorMessage, FlywheelError, isRetriable, invariant } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { createRedis } from '../common/redis.js';
import { createSchemaRegistry } from '../common/runtime.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { FileModelRegistry } from '../registry/store.js';
import { ModelManager } from './model-manager.js';
import { ScoringPipeline } from './pipeline.js';
import { Lanes } from './scoring-worker.js';
import { RedisSessionStore } from './session-store.js';
import {
  unpackValues,
  type FromWorker,
  type SerializedError,
  type ToWorker,
  type WorkerSetup,
} from './worker-protocol.js';

const port = parentPort;
invariant(port, 'services/scorer/worker.ts runs as a worker thread of the scorer');
const setup = workerData as WorkerSetup;
const logger = createLogger(setup.service, setup.logLevel as LevelWithSilent).child({ thread: 'scoring' });
const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

function serialize(error: unknown): SerializedError {
  return {
    code: error instanceof FlywheelError ? error.code : null,
    message: errorMessage(error),
    retriable: isRetriable(error),
  };
}

async function start() {
  await initBackend(logger);
  const embedded = new EmbeddedSchemaRegistry();
  const registry = createSchemaRegistry(setup.schemaRegistry, embedded);
  const codecs = createCodecs(registry, embedded);
  const redis = createRedis(setup.redisUrl, logger);
  await redis.connect();
  const spec = new FeatureSpec({ hashBits: setup.hashBits });
  const manager = new ModelManager(new FileModelRegistry(setup.registryDir), spec, logger);
  const pipeline = new ScoringPipeline({
    codecs,
    spec,
    manager,
    sessions: new RedisSessionStore(redis, setup.sessions),
    policy: setup.policy,
    limits: setup.limits,
  });
  return { redis, manager, pipeline };
}

async function score(pipeline: ScoringPipeline, id: number, bytes: Uint8Array, lengths: Int32Array) {
  try {
    const { scored, recorded } = await pipeline.score(unpackValues(bytes, lengths));
    post({ type: 'scored', id, scored }, [
      scored.bytes.buffer as ArrayBuffer,
      scored.ends.buffer as ArrayBuffer,
    ]);
    recorded.then(
      () => post({ type: 'recorded', id }),
      (error: unknown) => post({ type: 'recorded', id, error: serialize(error) }),
    );
  } catch (error) {
    post({ type: 'failed', id, error: serialize(error) });
  }
}

try {
  const { redis, manager, pipeline } = await start();
  const lanes = new Lanes();
  port.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'apply':
        void manager.apply(message.update).then((ok) => post({ type: 'applied', id: message.id, ok }));
        break;
      case 'score':
        void lanes.run(message.lane, () => score(pipeline, message.id, message.bytes, message.lengths));
        break;
      case 'clearSessions':
        pipeline.sessions.clear();
        break;
      case 'close':
        void redis
          .quit()
          .catch(() => undefined)
          .then(() => {
            post({ type: 'closed', id: message.id });
            port.close();
          });
        break;
    }
  });
  post({ type: 'ready' });
} catch (error) {
  logger.error({ err: error }, 'scoring worker failed to start');
  post({ type: 'startFailed', error: serialize(error) });
}
