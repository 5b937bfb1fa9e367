/**
 * Everything the CLI prints: problems, submission outcomes and `--json` (the lines themselves go through
 * terminal.ts). One home, so a problem or an outcome reads the same from `publish`, `process`, `validate` and the
 * watcher's log.
 */
import { boundProblems, type Problem, problemPath, problemRef } from '../index-builder/errors.ts';
import { statusKey } from '../index-builder/layout.ts';
import type { SubmissionOutcome } from '../index-builder/pipeline/index.ts';
import { out } from './terminal.ts';

/** A machine-readable answer (`--json`): one JSON document on stdout. */
export function outJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * Problems as `--json` gives them: code, JSON pointer, message, and what was expected and what was found
 * where the problem says (the text's "(expected ...; found ...)": `validate --json` gave neither, where a
 * publish's outcome holds both); at most MAX_REPORTED_PROBLEMS of them.
 */
export function problemsJson(
  problems: readonly Problem[],
): { code: string; path: string; message: string; expected?: string; found?: string }[] {
  return boundProblems(problems).map(({ code, path, message, expected, found }) => ({
    code,
    path,
    message,
    ...(expected ? { expected } : {}),
    ...(found ? { found } : {}),
  }));
}

/**
 * One indented line per problem: code, JSON pointer, message, and what was expected and found; at most
 * MAX_REPORTED_PROBLEMS lines, the last counting the rest.
 */
export function formatProblems(problems: readonly Problem[]): string[] {
  return boundProblems(problems).map((p) => {
    const detail = [p.expected ? `expected ${p.expected}` : '', p.found ? `found ${p.found}` : '']
      .filter(Boolean)
      .join('; ');
    return `  ${p.code} ${problemPath(p.path)}: ${p.message}${detail ? ` (${detail})` : ''}`;
  });
}

/**
 * A submission's outcome as text. `full` (a command's answer): the headline, then the published URLs or
 * every problem. `line` (a running service's log): one line, naming the problem codes and where the details
 * are kept.
 */
export function describeOutcome(outcome: SubmissionOutcome, form: 'full' | 'line' = 'full'): string[] {
  // A revoke-key names no plugin: the key it revokes. The upload path only for what names neither (an outcome
  // recorded before the fingerprint was, an upload never read as a submission).
  const subject = outcome.plugin
    ? `${outcome.plugin}${outcome.version !== undefined ? `@${outcome.version}` : ''}`
    : (outcome.fingerprint ?? outcome.submission);
  // An action says what it did: `yank acme@1.2.0`, `revoke-key 0123...CDEF`.
  const what = outcome.action ? `${outcome.action} ${subject}` : subject;
  if (outcome.status === 'rejected') {
    if (form === 'line') {
      const codes = outcome.problems.map(problemRef).join('; ');
      return [`rejected ${what}: ${codes} (details: ${statusKey(outcome.id)})`];
    }
    return [`rejected ${what} (submission ${outcome.id})`, ...formatProblems(outcome.problems)];
  }
  if (form === 'line') return [`${outcome.status} ${what}`];
  const generation = outcome.generation ? `, generation ${outcome.generation}` : '';
  const lines = [`${outcome.status} ${what} (submission ${outcome.id}${generation})`];
  if (outcome.urls) {
    lines.push(`  plugin:   ${outcome.urls.plugin}`, `  manifest: ${outcome.urls.manifest}`);
    for (const url of outcome.urls.artifacts) lines.push(`  artifact: ${url}`);
  }
  return lines;
}
