// Every Redis key of the scorer, built in one place.
export const scorerKeys = {
  /** Sorted set of a session's clicks: member "eventId\tcategory\titemId\tprice", score = event time (ms). */
  session: (sessionId: string) => `fw:session:${sessionId}`,
};
