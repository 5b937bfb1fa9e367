/**
 * The CloudFront Function (viewer request) that maps the spec's endpoints onto the static files, exactly
 * as the local server does (cli/local/server.ts):
 *   /                                   -> /index.html
 *   /plugins                            -> /index.json, or /index.html when Accept prefers HTML
 *   /plugins/{name}                     -> /plugins/{name}/index.json, or index.html by Accept
 *   /plugins/{name}/{version}/manifest  -> /plugins/{name}/{version}/manifest.json
 *   /search                             -> /search.json
 *   /favicon.ico                        -> /favicon.svg (what browsers ask for on their own)
 *   a path ending in /                  -> that folder's index.html
 * The rewrite happens before the cache lookup, so JSON and HTML are cached under different keys.
 * Written for the cloudfront-js-2.0 runtime; tests run this same source in Node.
 */
export const EDGE_ROUTING_SOURCE = `
function quality(accept, type) {
  var best = 0;
  var major = type.split('/')[0];
  var parts = accept.split(',');
  for (var i = 0; i < parts.length; i++) {
    var fields = parts[i].trim().split(';');
    var range = fields[0].trim();
    var q = 1;
    for (var j = 1; j < fields.length; j++) {
      var p = fields[j].trim();
      if (p.indexOf('q=') === 0) q = parseFloat(p.slice(2));
    }
    if (isNaN(q)) continue;
    var specificity = range === type ? 3 : range === major + '/*' ? 2 : range === '*/*' ? 1 : 0;
    if (specificity > 0) best = Math.max(best, q - (3 - specificity) * 0.0001);
  }
  return best;
}
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var accept = request.headers.accept ? request.headers.accept.value : '';
  var html = accept !== '' && quality(accept, 'text/html') > quality(accept, 'application/json');
  var name = '[a-z0-9]+(?:-[a-z0-9]+)*';
  var plugin = new RegExp('^/plugins/(' + name + ')$').exec(uri);
  var manifest = new RegExp('^/plugins/(' + name + ')/([^/]+)/manifest$').exec(uri);
  if (uri === '/') request.uri = '/index.html';
  else if (uri === '/plugins' || uri === '/plugins/') request.uri = html ? '/index.html' : '/index.json';
  else if (uri === '/search') request.uri = '/search.json';
  else if (uri === '/favicon.ico') request.uri = '/favicon.svg';
  else if (plugin) request.uri = '/plugins/' + plugin[1] + (html ? '/index.html' : '/index.json');
  else if (manifest) request.uri = '/plugins/' + manifest[1] + '/' + manifest[2] + '/manifest.json';
  else if (uri.charAt(uri.length - 1) === '/') request.uri = uri + 'index.html';
  return request;
}
`;
