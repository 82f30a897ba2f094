// The joiner's memory bound, as a decision over its partitions (pure). Above the cap of pending
// predictions, reading predictions pauses on the partitions where that helps: where purchases
// have a backlog and lag behind the predictions, so they hold the watermark back and reading
// them closes windows. Under 90% of the cap, or once pausing no longer helps, reading resumes.
// When nothing can be paused usefully the join goes on (stopping it would stall it for good)
// and `stalled` says the cap is below one window of predictions.

export interface PartitionFlow {
  partition: number;
  paused: boolean;
  predictionTime: number;
  purchaseTime: number;
  /** The purchases input was at the end of its partition when last read. */
  purchasesCaughtUp: boolean;
}

export interface BackpressurePlan {
  pause: number[];
  resume: number[];
  /** Over the cap with nothing paused: the cap is below one window of predictions. */
  stalled: boolean;
}

export const RESUME_BELOW = 0.9;

export function planBackpressure(
  pending: number,
  cap: number,
  partitions: readonly PartitionFlow[],
): BackpressurePlan {
  const plan: BackpressurePlan = { pause: [], resume: [], stalled: false };
  let pausedAfter = 0;
  for (const p of partitions) {
    const helps = !p.purchasesCaughtUp && p.purchaseTime < p.predictionTime;
    if (!p.paused && pending >= cap && helps) plan.pause.push(p.partition);
    else if (p.paused && (pending < cap * RESUME_BELOW || !helps)) plan.resume.push(p.partition);
    if ((p.paused && !plan.resume.includes(p.partition)) || plan.pause.includes(p.partition)) pausedAfter++;
  }
  plan.stalled = pending >= cap && pausedAfter === 0;
  return plan;
}
