// The outcome join's vocabulary: its configuration, inputs, decisions, counters and the state it
// persists (join.ts describes the rules).

export type MatchRule = 'same-item' | 'same-session' | 'any-item';
export type Attribution = 'last' | 'first' | 'all';

export interface JoinConfig {
  windowMs: number;
  allowedLatenessMs: number;
  match: MatchRule;
  attribution: Attribution;
  idleMs: number;
  idleLagMs: number;
  /** Progress within this of the wall clock when it last moved counts as live (see above). */
  liveLagMs: number;
  /** How long decided clicks and attributed purchases are held for late input to correct. */
  retentionMs: number;
}

export const DEFAULT_JOIN: JoinConfig = {
  windowMs: 30 * 60 * 1000,
  allowedLatenessMs: 60 * 1000,
  match: 'same-item',
  attribution: 'last',
  idleMs: 30 * 1000,
  idleLagMs: 5 * 1000,
  liveLagMs: 5 * 60 * 1000,
  retentionMs: 10 * 60 * 1000,
};

export interface PendingPrediction {
  predictionId: string;
  /** Event id of the click the prediction scored; its predictions share one label. */
  eventId: string;
  userId: string;
  itemId: string;
  sessionId: string;
  clickTime: number;
}

export interface PurchaseRef {
  eventId: string;
  userId: string;
  itemId: string;
  sessionId: string | null;
  eventTime: number;
}

export interface JoinDecision {
  prediction: PendingPrediction;
  label: 0 | 1;
  source: 'outcome' | 'timeout';
  purchase: PurchaseRef | null;
  late: boolean;
  /** 0 for a prediction's first label; n > 0 for the n-th correction, which replaces the one before. */
  revision: number;
}

/** When a decision's label became knowable in event time: the purchase, or the window's end. */
export function labelTimeOf(purchase: PurchaseRef | null, clickTime: number, windowMs: number): number {
  return purchase ? purchase.eventTime : clickTime + windowMs;
}

export interface JoinCounters {
  predictions: number;
  purchases: number;
  duplicatePredictions: number;
  duplicatePurchases: number;
  latePredictions: number;
  latePurchases: number;
  /** Late purchases that credited no click. */
  lateUnmatchedPurchases: number;
  unattributedPurchases: number;
  positives: number;
  negatives: number;
  /** Published labels replaced by a correction (late input changed them). */
  corrections: number;
  /** Input later than the retention: joined with what was still held. */
  uncorrectable: number;
}

export type JoinInput = 'prediction' | 'purchase';

/** How far an input is complete (see the file comment). */
export interface InputProgress {
  time: number;
  idle: boolean;
}

/** A click as persisted: its predictions with the label each was given, and its credits. */
export interface StoredClick {
  eventId: string;
  userId: string;
  itemId: string;
  sessionId: string;
  clickTime: number;
  decided: boolean;
  /** The click's label once decided. */
  label: 0 | 1 | null;
  /** Event ids of the purchases crediting it. */
  credits: string[];
  /** Its predictions: the label published for each (null: none yet) and its revision. */
  predictions: { predictionId: string; label: 0 | 1 | null; revision: number }[];
}

/** A purchase as persisted: waiting (credited null) or attributed, with the clicks it credits. */
export interface StoredPurchase {
  ref: PurchaseRef;
  credited: string[] | null;
}

/** Receives every change of the join state, in order; what a durable copy must apply. */
export interface JoinJournal {
  /** A new prediction: its payload must be kept until its click is forgotten. */
  predictionAdded(prediction: PendingPrediction): void;
  clickChanged(click: StoredClick): void;
  clickForgotten(click: StoredClick): void;
  purchaseChanged(purchase: StoredPurchase): void;
  purchaseForgotten(eventId: string): void;
  seen(input: JoinInput, id: string, eventTime: number): void;
  forgotten(input: JoinInput, id: string): void;
}

/** Where the join stands in time (persisted with the state). */
export interface JoinPosition {
  watermark: number;
  progress: Record<JoinInput, InputProgress>;
  /** The latest event time read per input (for metrics and stream progress). */
  streamTimes: Record<JoinInput, number>;
  /** When progress last moved: its event time and the wall clock then (liveness). */
  lastAdvance: { eventTime: number; wallTime: number } | null;
  lastPrune: number;
  counters: JoinCounters;
}

/** What `restore` needs: the persisted state of one partition. */
export interface JoinSnapshot extends JoinPosition {
  clicks: StoredClick[];
  purchases: StoredPurchase[];
  seenPredictions: [string, number][];
  seenPurchases: [string, number][];
}

export function emptyCounters(): JoinCounters {
  return {
    predictions: 0,
    purchases: 0,
    duplicatePredictions: 0,
    duplicatePurchases: 0,
    latePredictions: 0,
    latePurchases: 0,
    lateUnmatchedPurchases: 0,
    unattributedPurchases: 0,
    positives: 0,
    negatives: 0,
    corrections: 0,
    uncorrectable: 0,
  };
}

/** A journal that keeps nothing: for a join nobody persists. */
export const UNKEPT_JOURNAL: JoinJournal = {
  predictionAdded: () => undefined,
  clickChanged: () => undefined,
  clickForgotten: () => undefined,
  purchaseChanged: () => undefined,
  purchaseForgotten: () => undefined,
  seen: () => undefined,
  forgotten: () => undefined,
};
