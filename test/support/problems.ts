/** Asserting a rejection by its type and its problems, in one step (the helpers the manifest tests share). */
import { expect } from 'vitest';
import { type Problem, SubmissionError } from '../../index-builder/errors.ts';

/** What WORK is rejected with; fails the test unless it is rejected with an error of TYPE. */
export async function rejectionOf<E>(
  work: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as E;
}

/** The problems WORK is rejected with; fails the test unless it is rejected with a SubmissionError. */
export async function rejectedProblems(work: Promise<unknown>): Promise<readonly Problem[]> {
  return (await rejectionOf(work, SubmissionError)).problems;
}
