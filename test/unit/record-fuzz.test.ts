// Absurd values in every field of every record type, as a producer nobody here wrote could send
// them: each is either refused by the contract checks (then dead-lettered) or goes through the
// pure code behind every consumer without a throw and without a non-finite number coming out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type avro from 'avsc';
import { EmbeddedSchemaRegistry } from '../../services/common/avro/registry.js';
import { findProblems, type RecordKind, type RecordTypes } from '../../services/common/contracts.js';
import { pendingRef, purchaseRef, toLabeledExample } from '../../services/joiner/examples.js';
import { PartitionJoin } from '../../services/joiner/join.js';
import { FeatureSpec } from '../../services/model/features.js';
import { SessionTracker } from '../../services/model/session.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { DEFAULT_LABEL_POLICY } from '../../services/trainer/label-policy.js';
import { TrainingPipeline, exampleProblems } from '../../services/trainer/pipeline.js';
import { mutations } from '../helpers/fuzz.js';
import { sampleRecords } from '../helpers/records.js';

const NOW = Date.UTC(2026, 11, 1, 12);
const limits = { now: NOW, maxClockSkewMs: 5 * 60_000 };
const spec = new FeatureSpec();
const embedded = new EmbeddedSchemaRegistry();
const SUBJECT: Record<RecordKind, string> = {
  click: 'fw.events.click-value',
  purchase: 'fw.events.purchase-value',
  prediction: 'fw.predictions-value',
  labeledExample: 'fw.feedback.labeled-value',
  humanLabel: 'fw.labels.human-value',
  modelUpdate: 'fw.models.updates-value',
  deadLetter: 'fw.dlq-value',
};

/** The pure work each consumer does with a record it accepted; returns numbers that must be finite. */
function consume<K extends RecordKind>(kind: K, value: RecordTypes[K]): number[] {
  switch (kind) {
    case 'click': {
      const click = value as RecordTypes['click'];
      const features = spec.vectorize(click, new SessionTracker().observe(click));
      return features.values;
    }
    case 'purchase': {
      const join = new PartitionJoin();
      join.addPurchase(purchaseRef(value as RecordTypes['purchase']));
      return [join.watermark].filter(Number.isFinite);
    }
    case 'prediction': {
      const prediction = value as RecordTypes['prediction'];
      const join = new PartitionJoin();
      join.addPrediction(pendingRef(prediction));
      const example = toLabeledExample(
        prediction,
        { label: 0, source: 'timeout', purchase: null },
        30 * 60_000,
      );
      return [example.labelTime, example.clickTime];
    }
    case 'labeledExample':
    case 'humanLabel': {
      if (
        kind === 'labeledExample' &&
        exampleProblems(value as RecordTypes['labeledExample'], spec).length > 0
      )
        return [];
      const pipeline = new TrainingPipeline({
        dimension: spec.dimension,
        params: DEFAULT_FTRL,
        holdoutSize: 0,
        policy: DEFAULT_LABEL_POLICY,
        referenceSize: 10,
      });
      const good = { ...sampleRecords(NOW).labeledExample, featureSpecHash: spec.hash };
      pipeline.take({ kind: 'labeledExample', value: good });
      if (kind === 'humanLabel')
        pipeline.take({ kind: 'humanLabel', value: value as RecordTypes['humanLabel'] });
      else pipeline.take({ kind: 'labeledExample', value: value as RecordTypes['labeledExample'] });
      const state = pipeline.learner.state();
      return [...state.z.slice(0, 8), ...Object.values(state.z).filter((_, i) => i % 4096 === 0)];
    }
    default:
      return [];
  }
}

describe('absurd values in every field of every record', () => {
  const samples = sampleRecords(NOW);
  const kinds = Object.keys(SUBJECT) as RecordKind[];
  for (const kind of kinds) {
    it(`${kind}: refused by the checks, or consumed without a throw or a non-finite number`, () => {
      const type = embedded.latest(SUBJECT[kind]).type as avro.types.RecordType;
      const sample =
        kind === 'labeledExample' || kind === 'prediction'
          ? { ...samples[kind], featureSpecHash: spec.hash }
          : samples[kind];
      const cases = mutations(type, sample as unknown as Record<string, unknown>);
      assert.ok(cases.length >= type.fields.length, `${cases.length} mutations`);
      let refused = 0;
      for (const { field, value } of cases) {
        const shown = `${field} = ${JSON.stringify(value[field])?.slice(0, 60)}`;
        // It must survive the wire too: what a producer sends is what the consumer decodes.
        const decoded = type.fromBuffer(type.toBuffer(value)) as RecordTypes[typeof kind];
        let problems: string[] = [];
        assert.doesNotThrow(() => {
          problems = findProblems(kind, decoded, limits);
        }, shown);
        if (problems.length > 0) {
          refused++;
          continue;
        }
        let numbers: number[] = [];
        assert.doesNotThrow(() => {
          numbers = consume(kind, decoded);
        }, shown);
        assert.ok(
          numbers.every((n) => Number.isFinite(n)),
          `${kind} with ${shown} was accepted and produced ${numbers.find((n) => !Number.isFinite(n))}`,
        );
      }
      assert.ok(refused > 0, 'some values are refused');
    });
  }
});
