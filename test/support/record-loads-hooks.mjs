/**
 * The module hooks record-loads.mjs registers: each module loaded is appended to the file it names, as it
 * is loaded (a line written at once, so a process that exits abruptly still leaves what it loaded).
 */
import { appendFileSync } from 'node:fs';

/** @type {string | undefined} */
let file;

/** @param {{ file?: string }} data */
export function initialize(data) {
  file = data.file;
}

/**
 * @param {string} url
 * @param {unknown} context
 * @param {(url: string, context: unknown) => Promise<unknown>} next
 */
export async function load(url, context, next) {
  if (file) appendFileSync(file, `${url}\n`);
  return next(url, context);
}
