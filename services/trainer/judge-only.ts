// Judge-only examples: outcomes the gate's holdout judges candidates on but the learner never
// learns (under the replacing policy, the outcome a human label replaced). Marked in the example id,
// so the mark survives the checkpoint and a replay.
const PREFIX = 'judge:';

export const judgeOnlyId = (exampleId: string) => `${PREFIX}${exampleId}`;

export const isJudgeOnly = (exampleId: string) => exampleId.startsWith(PREFIX);
