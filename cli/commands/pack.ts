/** `plugindex pack`: a manifest and its artifacts into a bundle signed by the publisher. */
import path from 'node:path';
import {
  ARCH_VALUES,
  LIBC_OS,
  LIBC_VALUES,
  type Libc,
  OS_VALUES,
  UNIVERSAL_ARCH,
  UNIVERSAL_ARCHES,
} from '../../index-builder/model.ts';
import { type ArtifactInput, packSubmission } from '../../index-builder/submission.ts';
import { listOption, outputOption, type Parsed, requiredOption, stringOption } from '../args.ts';
import { usage } from '../errors.ts';
import { readInput, readPassphrase, readSecretKeyFile, refuseOutputOver, writeOutput } from '../inputs.ts';
import { out } from '../terminal.ts';

/** True for `darwin/universal`: one file for the arches `UNIVERSAL_ARCHES` names for its OS. */
function universalFor(os: string, arch: string): boolean {
  return arch === UNIVERSAL_ARCH && Object.hasOwn(UNIVERSAL_ARCHES, os);
}

/**
 * `--artifact OS/ARCH=PATH` (or `linux/ARCH/musl=PATH`), checked against the spec's platform values before
 * any file is read.
 */
function parseArtifact(spec: string): {
  readonly os: string;
  readonly arch: string;
  readonly libc?: Libc;
  readonly file: string;
} {
  const match = /^([a-z0-9]+)\/([a-z0-9]+)(?:\/([a-z0-9]+))?=(.+)$/.exec(spec);
  if (!match) throw usage(`--artifact must look like OS/ARCH=PATH or linux/ARCH/musl=PATH, found ${spec}`);
  const [, os = '', arch = '', libc, file = ''] = match;
  if (libc !== undefined && (os !== LIBC_OS || !(LIBC_VALUES as readonly string[]).includes(libc)))
    throw usage(
      `--artifact ${spec}: a C library (${LIBC_VALUES.join(', ')}) follows only a ${LIBC_OS} platform's arch`,
    );
  if (!(OS_VALUES as readonly string[]).includes(os))
    throw usage(`--artifact ${spec}: os must be one of ${OS_VALUES.join(', ')}`);
  if (!(ARCH_VALUES as readonly string[]).includes(arch) && !universalFor(os, arch))
    throw usage(
      `--artifact ${spec}: arch must be one of ${ARCH_VALUES.join(', ')}${Object.hasOwn(UNIVERSAL_ARCHES, os) ? `, or ${UNIVERSAL_ARCH} (one file for ${UNIVERSAL_ARCHES[os]?.join(' and ')})` : ''}`,
    );
  return libc === undefined ? { os, arch, file } : { os, arch, libc: libc as Libc, file };
}

export async function run(parsed: Parsed): Promise<number> {
  const manifestFile = parsed.positionals[0];
  if (!manifestFile || parsed.positionals.length > 1) throw usage('pack takes exactly one MANIFEST');
  const keyFile = requiredOption(parsed, 'key');
  const { file: outFile, option: outOption } = outputOption(parsed);
  const specs = listOption(parsed, 'artifact').map(parseArtifact);
  // The bundle is written over any earlier one, never over what it is made of, over a secret key, or into a
  // registry's folder.
  await refuseOutputOver(
    outOption,
    outFile,
    [manifestFile, keyFile, stringOption(parsed, 'passphrase-file'), ...specs.map((s) => s.file)],
    undefined,
    'plugindex publish FILE',
  );
  // Before the artifacts, which may be large: a file that holds no secret key is refused first.
  const secretKey = await readSecretKeyFile(keyFile, '--key');
  const artifacts: ArtifactInput[] = [];
  for (const { os, arch, libc, file } of specs)
    artifacts.push({
      os,
      arch,
      ...(libc !== undefined ? { libc } : {}),
      fileName: path.basename(file),
      body: await readInput(file),
    });
  const passphrase = await readPassphrase(parsed);
  const packed = await packSubmission({
    manifestName: path.basename(manifestFile),
    manifest: await readInput(manifestFile),
    artifacts,
    secretKey,
    ...(passphrase ? { passphrase } : {}),
  });
  await writeOutput(outFile, packed.bundle);
  const { name, version } = packed.manifest;
  out(
    `packed ${name}@${version} -> ${outFile} (${packed.bundle.byteLength} bytes, signed by ${packed.fingerprint})`,
  );
  return 0;
}
