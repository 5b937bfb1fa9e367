/** The time source of the pipeline; tests pass a fixed clock so output is reproducible. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that always returns `at`, or advances by `stepMs` on every call. */
export function fixedClock(at: Date | string, stepMs = 0): Clock {
  let t = new Date(at).getTime();
  return {
    now() {
      const current = new Date(t);
      t += stepMs;
      return current;
    },
  };
}
