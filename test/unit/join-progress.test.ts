// How far a join input is complete, from its upstream stage's committed progress (pure): lagging
// stages hold it, idle sources do not, and a reading taken in a pause is not read as idle once
// more input came.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UpstreamProgress, type UpstreamSample } from '../../services/joiner/progress.js';

const IDLE = 1000;
type Source = [partition: number, committed: number | null, time: number, end: number];
const sample = (at: number, sources: Source[], ends: Record<number, number>): UpstreamSample => ({
  at,
  sources: sources.map(([partition, committed, time, end]) => ({
    partition,
    committed: committed === null ? null : BigInt(committed),
    time,
    end: BigInt(end),
  })),
  derivedEnds: new Map(Object.entries(ends).map(([p, e]) => [Number(p), BigInt(e)])),
});

describe('input progress from the upstream stage', () => {
  it('is the least progress of the sources still moving; a lagging stage holds it', () => {
    const progress = new UpstreamProgress(IDLE, Infinity);
    progress.add(
      sample(
        0,
        [
          [0, 10, 500, 20],
          [1, 5, 300, 5],
        ],
        { 0: 8 },
      ),
    );
    // Source 1 is caught up but not for long enough: it still counts.
    assert.deepEqual(progress.progressFor(0, 8n), { time: 300, idle: false });
    assert.equal(progress.progressFor(0, 7n), null, 'not read as far as the reading yet');
    progress.add(
      sample(
        2000,
        [
          [0, 10, 500, 20],
          [1, 5, 300, 5],
        ],
        { 0: 8 },
      ),
    );
    // Idle for a second: source 1 no longer holds source 0 back.
    assert.deepEqual(progress.progressFor(0, 8n), { time: 500, idle: false });
  });

  it('holds the join while a source has input its stage has not committed', () => {
    const progress = new UpstreamProgress(IDLE, Infinity);
    progress.add(
      sample(
        0,
        [
          [0, null, -Infinity, 50],
          [1, 5, 900, 5],
        ],
        { 0: 0 },
      ),
    );
    progress.add(
      sample(
        5000,
        [
          [0, null, -Infinity, 50],
          [1, 5, 900, 5],
        ],
        { 0: 0 },
      ),
    );
    assert.deepEqual(progress.progressFor(0, 0n), { time: -Infinity, idle: false });
  });

  it('never-written sources are idle at once; all idle, it is the least advanced source that holds anything', () => {
    const progress = new UpstreamProgress(IDLE, Infinity);
    progress.add(
      sample(
        0,
        [
          [0, 4, 700, 4],
          [1, 2, 400, 2],
          [2, null, -Infinity, 0],
        ],
        { 0: 3 },
      ),
    );
    progress.add(
      sample(
        1500,
        [
          [0, 4, 700, 4],
          [1, 2, 400, 2],
          [2, null, -Infinity, 0],
        ],
        { 0: 3 },
      ),
    );
    assert.deepEqual(progress.progressFor(0, 3n), { time: 400, idle: true });
  });

  it('a reading taken in a pause is not idle once newer input exists beyond what was read', () => {
    const progress = new UpstreamProgress(IDLE, Infinity);
    progress.add(sample(0, [[0, 4, 700, 4]], { 0: 3 }));
    progress.add(sample(2000, [[0, 4, 700, 4]], { 0: 3 }));
    assert.deepEqual(progress.progressFor(0, 3n), { time: 700, idle: true });
    // The replay resumes: the stage moves on, the join has not read the new predictions yet.
    progress.add(sample(2100, [[0, 9, 950, 12]], { 0: 8 }));
    assert.deepEqual(progress.progressFor(0, 3n), { time: 700, idle: false });
    assert.deepEqual(progress.progressFor(0, 8n), { time: 950, idle: false });
  });

  it('is not idle while the join has not read what the stage wrote since a pause', () => {
    const progress = new UpstreamProgress(IDLE, Infinity);
    // A pause in the replay: the stage is idle with the join at the end of its output.
    progress.add(sample(0, [[0, 4, 700, 4]], { 0: 3 }));
    progress.add(sample(2000, [[0, 4, 700, 4]], { 0: 3 }));
    // The replay resumes and ends; the stage takes it all and goes quiet again.
    progress.add(sample(2100, [[0, 9, 950, 12]], { 0: 8 }));
    progress.add(sample(2200, [[0, 12, 990, 12]], { 0: 10 }));
    progress.add(sample(4000, [[0, 12, 990, 12]], { 0: 10 }));
    // The join is still at the pause: idle there would let the other input's watermark pass the
    // records 3..9 it has not read, and they would arrive late (seen in a fast bootstrap).
    assert.deepEqual(progress.progressFor(0, 3n), { time: 700, idle: false });
    assert.deepEqual(progress.progressFor(0, 8n), { time: 950, idle: false });
    assert.deepEqual(progress.progressFor(0, 10n), { time: 990, idle: true });
  });

  it('in a replay of history an idle source still holds the others; live it does not', () => {
    const DAY = 86_400_000;
    const wall = 400 * DAY;
    const sources = (at: number): UpstreamSample =>
      sample(
        at,
        [
          [0, 10, 300, 20],
          [1, 5, 100, 5],
        ],
        { 0: 8 },
      );
    const replay = new UpstreamProgress(IDLE, 5 * 60_000);
    replay.add(sources(wall));
    replay.add(sources(wall + 2 * IDLE));
    // Source 1 is idle, but its next record may be older than source 0's progress.
    assert.deepEqual(replay.progressFor(0, 8n), { time: 100, idle: false });
    const live = new UpstreamProgress(IDLE, 5 * 60_000);
    live.add(sources(300));
    live.add(sources(300 + 2 * IDLE));
    assert.deepEqual(live.progressFor(0, 8n), { time: 300, idle: false });
  });
});
