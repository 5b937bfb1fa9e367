/** What a version's record says of its manifest: the one definition the pipeline and a client share. */
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../index-builder/model.ts';
import { type VersionPlacement, versionRecordOf } from '../../index-builder/records.ts';
import { validManifest } from '../support/fixtures.ts';

const placement: VersionPlacement = {
  published: '2026-11-01T00:00:00.000Z',
  manifest_url: 'https://registry.example.com/plugins/demo-plugin/1.0.0/manifest.json',
  manifest_signature_url: 'https://registry.example.com/plugins/demo-plugin/1.0.0/manifest.json.asc',
  manifest_sha256: 'e'.repeat(64),
  manifest_size: 100,
  source_sha256: 'f'.repeat(64),
  publisher: 'A'.repeat(40),
  artifacts: [],
};

describe('when a manifest declares its security scan', () => {
  it('carries it into the record as security_scan, its fields in one order whatever the manifest wrote', () => {
    const manifest = validManifest({
      security_scan_results: {
        scan_version: 'trivy 0.60.0',
        last_scan: '2026-10-30T12:00:00Z',
        vulnerabilities: [
          { url: 'https://sec.example/1', summary: 'Bad', severity: 'high', id: 'CVE-2026-1234' },
          { id: 'GHSA-aaaa-bbbb-cccc' },
        ],
        status: 'vulnerable',
      },
    }) as unknown as Manifest;
    const record = versionRecordOf(manifest, placement);
    expect(record.security_scan).toEqual({
      status: 'vulnerable',
      vulnerabilities: [
        { id: 'CVE-2026-1234', severity: 'high', summary: 'Bad', url: 'https://sec.example/1' },
        { id: 'GHSA-aaaa-bbbb-cccc' },
      ],
      last_scan: '2026-10-30T12:00:00Z',
      scan_version: 'trivy 0.60.0',
    });
    // Same bytes for the same scan, wherever the record is made.
    expect(JSON.stringify(record.security_scan)).toBe(
      '{"status":"vulnerable","vulnerabilities":[{"id":"CVE-2026-1234","severity":"high","summary":"Bad","url":"https://sec.example/1"},{"id":"GHSA-aaaa-bbbb-cccc"}],"last_scan":"2026-10-30T12:00:00Z","scan_version":"trivy 0.60.0"}',
    );
  });

  it('keeps only the known fields (a record is also made from manifests no registry checked)', () => {
    const manifest = validManifest({
      security_scan_results: { status: 'unknown', vulnerabilities: [{ id: 'X-1', cvss: 9 }], extra: 1 },
    }) as unknown as Manifest;
    expect(versionRecordOf(manifest, placement).security_scan).toEqual({
      status: 'unknown',
      vulnerabilities: [{ id: 'X-1' }],
    });
  });

  it('leaves security_scan out when the manifest declares none', () => {
    expect(versionRecordOf(validManifest() as unknown as Manifest, placement)).not.toHaveProperty(
      'security_scan',
    );
  });
});
