import { describe, expect, it } from 'vitest';
import { EDGE_ROUTING_SOURCE } from '../../infra/edge-routing.ts';

type Handler = (event: { request: { uri: string; headers: Record<string, { value: string }> } }) => {
  uri: string;
};
// The same source CloudFront runs, evaluated here.
const handler = new Function(`${EDGE_ROUTING_SOURCE}; return handler;`)() as Handler;
const route = (uri: string, accept?: string): string =>
  handler({ request: { uri, headers: accept ? { accept: { value: accept } } : {} } }).uri;
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('when CloudFront maps the spec endpoints', () => {
  it('serves JSON to clients and HTML to browsers, like the local server', () => {
    expect(route('/plugins')).toBe('/index.json');
    expect(route('/plugins', BROWSER)).toBe('/index.html');
    expect(route('/plugins/kubecost-lens')).toBe('/plugins/kubecost-lens/index.json');
    expect(route('/plugins/kubecost-lens', '*/*')).toBe('/plugins/kubecost-lens/index.json');
    expect(route('/plugins/kubecost-lens', BROWSER)).toBe('/plugins/kubecost-lens/index.html');
    expect(route('/plugins/kubecost-lens', 'application/json;q=0.5, text/html')).toBe(
      '/plugins/kubecost-lens/index.html',
    );
  });

  it('maps manifests, search, the home page and folder indexes', () => {
    expect(route('/plugins/kubecost-lens/1.2.0/manifest')).toBe('/plugins/kubecost-lens/1.2.0/manifest.json');
    expect(route('/search')).toBe('/search.json');
    expect(route('/favicon.ico')).toBe('/favicon.svg');
    expect(route('/')).toBe('/index.html');
    expect(route('/plugins/kubecost-lens/')).toBe('/plugins/kubecost-lens/index.html');
  });

  it('leaves every other path alone', () => {
    for (const uri of [
      '/index.json',
      '/snapshot.json.asc',
      '/plugins/x/1.0.0/artifacts/linux-amd64/x',
      '/plugins/Bad_Name',
    ]) {
      expect(route(uri)).toBe(uri);
    }
  });
});
