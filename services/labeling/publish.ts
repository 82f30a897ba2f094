// Publishing a human label to fw.labels.human before it is recorded in the queue (http.ts): the
// send is bounded in time, and a send that fails or runs out of time is answered as the 503
// FW_KAFKA_UNAVAILABLE, so the labeler retries and nothing is recorded meanwhile.
import type { Producer } from 'kafkajs';
import type { AvroCodec } from '../common/avro/codec.js';
import type { HumanLabel } from '../common/contracts.js';
import { errorMessage, FlywheelError } from '../common/errors.js';

export function labelPublisher(
  producer: Pick<Producer, 'send'>,
  codec: AvroCodec<HumanLabel>,
  topic: string,
  timeoutMs: number,
): (label: HumanLabel) => Promise<void> {
  return async (label) => {
    const value = await codec.encode(label);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        producer.send({ topic, acks: -1, messages: [{ key: label.userId, value }] }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no acknowledgement within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      throw new FlywheelError(
        'FW_KAFKA_UNAVAILABLE',
        `the label could not be published to ${topic} (${errorMessage(error)}); nothing was recorded, send it again`,
      );
    } finally {
      clearTimeout(timer);
    }
  };
}
