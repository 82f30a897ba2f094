// TensorFlow.js backend, chosen once per process: tfjs-node (native TensorFlow) when it is
// installed, else wasm, else the pure-JS cpu backend. FLYWHEEL_TF_BACKEND forces one.
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../common/logger.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export { tf };

let chosen: Promise<BackendName> | undefined;

async function tryNode(): Promise<boolean> {
  try {
    // Optional dependency: absent on machines that cannot download libtensorflow.
    const moduleName = '@tensorflow/tfjs-node';
    await import(moduleName);
    return tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/** Initialise the backend once; later calls return the same choice. */
export function initBackend(
  logger?: Logger,
  preferred = process.env.FLYWHEEL_TF_BACKEND,
): Promise<BackendName> {
  chosen ??= (async () => {
    const order: BackendName[] =
      preferred === 'cpu' ? ['cpu'] : preferred === 'wasm' ? ['wasm', 'cpu'] : ['tensorflow', 'wasm', 'cpu'];
    let name: BackendName = 'cpu';
    for (const candidate of order) {
      const ok =
        candidate === 'tensorflow'
          ? await tryNode()
          : candidate === 'wasm'
            ? await tryWasm()
            : await tf.setBackend('cpu');
      if (ok) {
        name = candidate;
        break;
      }
    }
    await tf.ready();
    // Production mode: no per-op NaN checks, and no console banner about tfjs-node on cpu.
    tf.enableProdMode();
    logger?.info(
      {
        backend: tf.getBackend(),
        tried: order,
        note: name === 'tensorflow' ? 'native' : 'tfjs-node not installed or not chosen',
      },
      `tensorflow.js backend: ${tf.getBackend()}`,
    );
    return tf.getBackend() as BackendName;
  })();
  return chosen;
}
