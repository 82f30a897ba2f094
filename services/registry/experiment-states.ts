// An experiment's states and the one table of moves between them.
export type ExperimentState =
  'queued' | 'running' | 'paused' | 'promoted' | 'rolled-back' | 'inconclusive' | 'aborted' | 'superseded';

export type ExperimentEvent =
  'start' | 'advance' | 'promote' | 'rollback' | 'inconclusive' | 'pause' | 'resume' | 'abort';

/** Every move of an experiment; an event not in its state's row is refused. */
export const EXPERIMENT_TRANSITIONS: Record<
  ExperimentState,
  Partial<Record<ExperimentEvent, ExperimentState>>
> = {
  // Waiting for the running one to end; the trainer's newer candidate supersedes its older one.
  queued: { start: 'running', abort: 'aborted' },
  running: {
    advance: 'running',
    promote: 'promoted',
    rollback: 'rolled-back',
    inconclusive: 'inconclusive',
    pause: 'paused',
    abort: 'aborted',
  },
  // Paused holds the share where it is; the guardrail still rolls back, an operator may promote.
  paused: { resume: 'running', rollback: 'rolled-back', promote: 'promoted', abort: 'aborted' },
  promoted: {},
  'rolled-back': {},
  inconclusive: {},
  aborted: {},
  superseded: {},
};

export function nextState(state: ExperimentState, event: ExperimentEvent): ExperimentState | null {
  return EXPERIMENT_TRANSITIONS[state][event] ?? null;
}

export const ACTIVE_STATES: readonly ExperimentState[] = ['running', 'paused'];
export const ENDED_STATES: readonly ExperimentState[] = [
  'promoted',
  'rolled-back',
  'inconclusive',
  'aborted',
  'superseded',
];
